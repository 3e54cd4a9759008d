#!/usr/bin/env python3
"""Instructions per one-route commit, with a BGP peer configured, under callgrind:
counts that do not depend on the machine's load.

For each table size N (default 10,000 and 200,000 labelled routes from `popgo gen
synth`): `popgo replay --control` runs under `valgrind --tool=callgrind`, collecting
only inside `ControlPlane::commit` on the control thread (`--toggle-collect`); COMMITS
one-route commits (`undo network` / `network ... label`) go through the control
socket. Printed per commit: the whole commit, and inside it the BGP part (`advertise`:
the LSP tables' diff and the hand-off to the speaker), the ILM patch and the
publication (`Publisher::publish`, which includes waiting for the grace period: the
one part that varies with scheduling). Equal counts at both sizes show a commit's cost
does not grow with the table.

The peer is 127.0.0.1 (nothing answers there; the speaker's threads are not counted)
and the speaker listens on a loopback port, so nothing leaves the host. Needs
valgrind; a release build (`--popgo`, default target/release/popgo).

  tools/commit-instr.py [--popgo BIN] [--sizes 10000,200000] [--commits 50] [--dir DIR]
"""
import argparse, os, re, signal, subprocess, sys, tempfile

from popgo_ctl import connect

PARTS = (("commit (all)", "ControlPlane>::commit "), ("  BGP: diff + hand-off", "ControlPlane>::advertise "),
         ("  ILM patch", "ilm::patch::patch "), ("  publish + grace wait", "Publisher<T>::publish "))


def inclusive(out):
    """Inclusive instruction counts by function name, from callgrind_annotate."""
    r = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                       capture_output=True, text=True, check=True).stdout
    rows = []
    for l in r.splitlines():
        # "  1,234 (12.3%)  /path/file.rs:crate::module::function [/path/binary]"
        m = re.match(r"\s*([\d,]+)(?: \(\s*[\d.]+%\))?\s+[^\s:]+:(.*)", l)
        if m:
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows


def run(a, d, n):
    cfg, table, pcap = (os.path.join(d, f"c{n}.{x}") for x in ("toml", "txt", "pcap"))
    subprocess.run([a.popgo, "gen", "synth", "--out", pcap, "--count", "10", "--labels", str(n),
                    "--config-out", cfg, "--table-out", table], check=True, stdout=subprocess.DEVNULL)
    text = open(cfg).read().replace("[bgp]\n", "[bgp]\nlisten = \"127.0.0.1:0\"\n", 1)
    text += '\n[[bgp.peer]]\naddress = "127.0.0.1"\nas = 65002\nfamilies = ["ipv4-labeled-unicast"]\n'
    open(cfg, "w").write(text)
    asn = re.search(r"^as = (\d+)", text, re.M).group(1)
    out, sock = os.path.join(d, f"callgrind.{n}.out"), os.path.join(d, f"ctl{n}.sock")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                          "--toggle-collect=*ControlPlane>::commit", a.popgo, "replay", "--config", cfg,
                          "--control", sock, "--loops", "0", "--pps", "10", pcap],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, f"popgo{n}.log"), "w"))
    try:
        c = connect(sock, p, timeout=900)
        rows = [l.split() for l in open(table) if l[0].isdigit()]
        c.cmd("system-view")
        c.cmd(f"bgp {asn}")
        for i in range(a.commits):
            pfx, _, label = rows[(i // 2 * 7919) % len(rows)]
            addr, plen = pfx.split("/")
            c.cmd(f"undo network {addr} {plen}" if i % 2 == 0 else f"network {addr} {plen} label {label}")
            c.cmd("commit")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=300)
    got = inclusive(out)
    res = {}
    for name, pat in PARTS:
        res[name] = max((v for v, f in got if pat in f), default=0) / a.commits
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--popgo", default="target/release/popgo")
    ap.add_argument("--sizes", default="10000,200000")
    ap.add_argument("--commits", type=int, default=50)
    ap.add_argument("--dir")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="popgo-commit-instr-")
    os.makedirs(d, exist_ok=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    res = {n: run(a, d, n) for n in sizes}
    print(f"instructions per one-route commit ({a.commits} commits, a peer configured), callgrind:")
    print(f"  {'':<26}" + "".join(f"{n:>14,}" for n in sizes))
    for name, _ in PARTS:
        print(f"  {name:<26}" + "".join(f"{res[n][name]:>14,.0f}" for n in sizes))
    if not any(res[n]["commit (all)"] for n in sizes):
        sys.exit("no counts: was the binary built with symbols (debug = \"line-tables-only\")?")


if __name__ == "__main__":
    main()
