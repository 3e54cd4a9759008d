#!/usr/bin/env python3
"""Per-LSP counters against per-port counters at scale, across live commits.

Generates a synthetic capture over N labels (default 1,000,000; `popgo gen synth`,
uniform), replays it in a loop with the control socket and the metrics endpoint, and
while it runs:

  1. scrapes the metrics: the top-N per-LSP series plus label="other" against
     popgo_packets_total{direction="tx"} (the two are read at slightly different times,
     so the difference is printed, not checked);
  2. types a commit through the control socket that turns every LSP from POPGO into POP
     (`undo apply-label per-route pop-go`), then one that turns it back, with traffic
     flowing;
  3. streams `display mpls statistics lsp` (every LSP of the table) and times it, and
     reads one LSP with `in-label`;
  4. stops the replay with SIGINT and checks the final report: the sum over the per-LSP
     counters equals the packets and bytes forwarded through the ports (exact: the
     report reads both after the workers stopped), and the labels the commits moved.

Exit 1 when the sums disagree or a display is wrong. Prints the figures.

  tools/lsp-agree.py [--labels 1000000] [--count 2000000] [--secs 6] [--workers 2]
                     [--pps 0] [--popgo target/release/popgo] [--dir DIR]
"""
import argparse, json, os, re, signal, subprocess, sys, tempfile, time, urllib.request

from popgo_ctl import connect


def scrape(url):
    text = urllib.request.urlopen(url, timeout=120).read().decode()
    lsp = [float(v) for v in re.findall(r'^popgo_lsp_packets_total\{label="[^"]+"\} (\S+)$', text, re.M)]
    tx = re.search(r'^popgo_packets_total\{direction="tx"\} (\S+)$', text, re.M)
    return int(sum(lsp)), len(lsp), int(float(tx.group(1))) if tx else None


def wait_for(path, pat, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = open(path).read() if os.path.exists(path) else ""
        m = re.search(pat, text)
        if m:
            return m.group(1)
        if proc.poll() is not None:
            sys.exit(f"popgo replay exited: {text}")
        time.sleep(0.1)
    sys.exit(f"no {pat!r} in {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", type=int, default=1_000_000)
    ap.add_argument("--count", type=int, default=2_000_000, help="packets in the capture")
    ap.add_argument("--secs", type=float, default=6.0, help="seconds of traffic around each commit")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pps", type=float, default=0, help="pace the replay (0: top speed)")
    ap.add_argument("--popgo", default="target/release/popgo")
    ap.add_argument("--dir", help="keep the generated files here (reused when present)")
    ap.add_argument("--no-full-display", action="store_true",
                    help="skip streaming the whole display (slow in a debug build)")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="popgo-lsp-agree-")
    os.makedirs(d, exist_ok=True)
    cfg, table, pcap = (os.path.join(d, f"s{a.labels}.{x}") for x in ("toml", "txt", "pcap"))
    if not os.path.exists(cfg):
        t = time.time()
        subprocess.run([a.popgo, "gen", "synth", "--out", pcap, "--count", str(a.count), "--labels", str(a.labels),
                        "--config-out", cfg, "--table-out", table], check=True, stdout=subprocess.DEVNULL)
        print(f"generated {a.count} packets over {a.labels} labels in {time.time() - t:.1f} s")
    asn = re.search(r"^as = (\d+)", open(cfg).read(), re.M).group(1)
    sock, err = os.path.join(d, "ctl.sock"), os.path.join(d, "stderr")
    args = [a.popgo, "replay", "--config", cfg, "--loops", "0", "--workers", str(a.workers), "--json",
            "--control", sock, "--metrics", "127.0.0.1:0", "--metrics-lsps", "20"]
    if a.pps:
        args += ["--pps", str(a.pps)]
    t0 = time.time()
    proc = subprocess.Popen(args + [pcap], stdout=subprocess.PIPE, stderr=open(err, "w"), text=True)
    try:
        url = wait_for(err, r"metrics at (\S+)", proc)
        c = connect(sock, proc, timeout=300)
        print(f"replay up (table of {a.labels} labels loaded) in {time.time() - t0:.1f} s")
        time.sleep(a.secs)
        lsp, series, tx = scrape(url)
        print(f"metrics: {series} per-LSP series (top 20 + other) sum {lsp}, tx {tx} "
              f"(read live vs as last published: difference {lsp - (tx or 0)})")
        for undo in ("undo ", ""):
            t = time.time()
            for line in ("system-view", f"bgp {asn}", f"{undo}apply-label per-route pop-go", "commit", "return"):
                c.cmd(line)
            print(f"commit '{undo}apply-label per-route pop-go' ({a.labels} LSPs) in {time.time() - t:.2f} s")
            time.sleep(a.secs)
        bad = []
        label = 16
        if not a.no_full_display:
            t = time.time()
            body = c.cmd("display mpls statistics lsp")
            secs = time.time() - t
            total = re.match(r"Total: (\d+) LSP\(s\), (\d+) packets, (\d+) bytes", body[-1])
            rows = len(body) - 6
            print(f"display mpls statistics lsp: {rows} rows in {secs:.2f} s; {body[-1]}")
            if not total or int(total.group(1)) != rows or rows < a.labels:
                bad.append(f"display: {rows} rows, last line {body[-1]!r}")
            label = int(body[4].split()[1])
            del body
        one = c.cmd(f"display mpls statistics lsp in-label {label}")
        if len(one) != 7 or one[4].split()[1] != str(label):
            bad.append(f"in-label {label}: {one}")
        print(f"display mpls statistics lsp in-label {label}: {one[4].split()}")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=1800)
    v = json.loads(out.strip().splitlines()[-1])
    tx_pkts = sum(v["tx_packets"].values())
    lsp_pkts = sum(l["packets"] for l in v["lsps"])
    lsp_bytes = sum(l["bytes"] for l in v["lsps"])
    print(f"final report: rx {v['rx_packets']} tx {tx_pkts} ({v['tx_bytes']} bytes) dropped "
          f"{sum(v['drops'].values())}; per LSP: {len(v['lsps'])} labels, {lsp_pkts} packets, {lsp_bytes} bytes; "
          f"moves: {len(v['moves'])} labels; {v['mpps']:.2f} Mpps over {v['elapsed_ns'] / 1e9:.1f} s")
    if (lsp_pkts, lsp_bytes) != (tx_pkts, v["tx_bytes"]):
        bad.append(f"per-LSP sums {lsp_pkts} packets {lsp_bytes} bytes != ports {tx_pkts} packets {v['tx_bytes']} bytes")
    if not v["balanced"]:
        bad.append("rx != tx + drops")
    for b in bad:
        print("FAIL:", b)
    print("per-LSP counters agree with the per-port counters" if not bad else "")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
