#!/usr/bin/env python3
"""Full-table scale: load time and memory, commit latency and the data path following a
commit, at 100k, 500k and 1M labelled routes.

1. Load + build: for each size, `popgo gen synth --labels N --config-out --table-out`,
   then `/usr/bin/time -v popgo check` REPEAT times; medians of wall time and peak RSS.
2. Live (largest size): `popgo replay --control --loops 0` on a capture whose frames
   all carry the first label. Steady-state RSS over a 1,000-route baseline, per route,
   and the control plane's own memory breakdown (`display popgo statistics`).
3. Commits: COMMITS one-route commits through the socket (a route moved between two
   next hops on different ports; other labels than the traffic's), their total time
   from each `Info: commit ok` line: p50, p99, max; pop-go toggles (every ILM entry).
4. The traffic follows a commit: the traffic's route is moved from port p0 to p1 and
   back; between two counter samples after each commit only the new port transmits.
5. `display mpls lsp protocol bgp | count` over the socket: the streamed display.

Exits 1 if a check fails (the traffic does not follow, a limit given with --max-* is
exceeded).

  tools/scale.py [--sizes 100000,500000,1000000] [--repeat 5] [--commits 2000]
                 [--popgo BIN] [--dir DIR] [--max-p99-us 100] [--max-load-s 3]
                 [--max-rss-mb 600] [--vpn]

--vpn: the same table inside a VPN instance (vpna, every port bound to it, the routes
in a `[[bgp.vpn_instance]] table`, labels from the dynamic range in table order, so
the same ones), and the commits are `ip route-static vpn-instance vpna ...`.
"""
import argparse, os, re, statistics, subprocess, sys, tempfile, time

from popgo_ctl import connect, rss_kb


def gen(popgo, d, n, count=2000, dist="uniform"):
    cfg, table, pcap = (os.path.join(d, f"s{n}.{x}") for x in ("toml", "txt", "pcap"))
    if not os.path.exists(cfg):
        subprocess.run([popgo, "gen", "synth", "--out", pcap, "--count", str(count), "--labels", str(n),
                        "--dist", dist, "--config-out", cfg, "--table-out", table],
                       check=True, stdout=subprocess.DEVNULL)
    return cfg, pcap


def vpnify(cfg):
    """The VPN form of a synth config and its table (written beside them, once)."""
    out = cfg.replace(".toml", "-vpn.toml")
    table = cfg.replace(".toml", ".txt")
    vtable = cfg.replace(".toml", "-vpn.txt")
    if os.path.exists(out):
        return out
    with open(table) as f, open(vtable, "w") as o:
        for l in f:
            if l.startswith("#"):
                continue
            o.write(" ".join(l.split()[:2]) + "\n")
    text = open(cfg).read()
    text = re.sub(r"(\[\[port\]\]\n(?:[^\[\n][^\n]*\n)*)", lambda m: m.group(1) + 'vpn_instance = "vpna"\n', text)
    text = re.sub(r"\ntable = .*\n", "\n", text)
    text += ('\n[[vpn_instance]]\nname = "vpna"\n[vpn_instance.ipv4]\nroute_distinguisher = "100:1"\n'
             'label_mode = "per-route"\npop_go = true\n\n[[bgp.vpn_instance]]\nname = "vpna"\nfamily = "ipv4"\n'
             f'table = {os.path.basename(vtable)!r}\n'.replace("'", '"'))
    open(out, "w").write(text)
    return out


def timed_check(popgo, cfg):
    r = subprocess.run(["/usr/bin/time", "-v", popgo, "check", "--config", cfg],
                       capture_output=True, text=True, check=True)
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", r.stderr)
    h, m, s = wall.groups()
    secs = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return secs, rss_kb


def start_replay(popgo, cfg, pcap, sock, core):
    p = subprocess.Popen([popgo, "replay", "--config", cfg, "--control", sock, "--loops", "0",
                          "--cores", core, pcap], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         preexec_fn=lambda: os.sched_setaffinity(0, range(os.cpu_count())))
    return p, connect(sock, p, timeout=120)


def counters(c):
    out = {}
    for l in c.cmd("display popgo statistics | include ^  port\\.p[0-9]\\.tx_pkts"):
        k, v = l.split()
        out[k] = int(v)
    return out


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round((len(v) - 1) * p)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,500000,1000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--popgo", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "popgo"))
    ap.add_argument("--dir", default=None)
    ap.add_argument("--core", default=str(os.cpu_count() - 1))
    ap.add_argument("--rt", action="store_true",
                    help="run the worker and control threads SCHED_FIFO (root): on a shared VM other load "
                         "otherwise preempts the worker for a scheduler tick, and a commit waits that long "
                         "for its grace period")
    ap.add_argument("--max-p99-us", type=float, default=None)
    ap.add_argument("--max-load-s", type=float, default=None)
    ap.add_argument("--max-rss-mb", type=float, default=None)
    ap.add_argument("--vpn", action="store_true", help="the table inside a VPN instance")
    a = ap.parse_args()
    # Off the worker's core: a client that the scheduler puts there time-slices with
    # the worker, and commits then wait a scheduler tick for its grace period.
    others = set(range(os.cpu_count())) - {int(a.core)}
    if others:
        os.sched_setaffinity(0, others)
    d = a.dir or tempfile.mkdtemp(prefix="popgo-scale-")
    os.makedirs(d, exist_ok=True)
    sizes = [int(x) for x in a.sizes.split(",")]
    failed = []

    print(f"1. load + build ({a.repeat} runs each, medians; {d})")
    print(f"  {'routes':>9} {'table MB':>9} {'seconds':>8} {'peak RSS MB':>12} {'bytes/route':>12}")
    for n in sizes:
        cfg, _ = gen(a.popgo, d, n)
        if a.vpn:
            cfg = vpnify(cfg)
        runs = [timed_check(a.popgo, cfg) for _ in range(a.repeat)]
        secs = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        mb = os.path.getsize(cfg.replace(".toml", ".txt")) / 1e6
        print(f"  {n:>9} {mb:>9.1f} {secs:>8.2f} {rss / 1024:>12.0f} {rss * 1024 / n:>12.0f}")
        if n == max(sizes):
            if a.max_load_s and secs > a.max_load_s:
                failed.append(f"load of {n} routes took {secs:.2f} s > {a.max_load_s} s")
            if a.max_rss_mb and rss / 1024 > a.max_rss_mb:
                failed.append(f"peak RSS of {n} routes {rss / 1024:.0f} MB > {a.max_rss_mb} MB")

    n = max(sizes)
    print(f"2. live: replay --control on {n} routes" + (" in VPN instance vpna" if a.vpn else ""))
    cfg, _ = gen(a.popgo, d, n)
    if a.vpn:
        cfg = vpnify(cfg)
    route_cmd = "ip route-static vpn-instance vpna" if a.vpn else "ip route-static"
    # Every frame carries label 16: 10.0.0.16/32 via 192.168.0.1 (port p0).
    pcap = os.path.join(d, "single.pcap")
    if not os.path.exists(pcap):
        subprocess.run([a.popgo, "gen", "synth", "--out", pcap, "--count", "4096", "--labels", "16",
                        "--dist", "single"], check=True, stdout=subprocess.DEVNULL)
    base_cfg, _ = gen(a.popgo, d, 1000)
    sock = os.path.join(d, "ctl.sock")
    p, c = start_replay(a.popgo, base_cfg, pcap, sock, a.core)
    time.sleep(0.5)
    base = rss_kb(p.pid)
    p.terminate()
    p.wait()
    p, c = start_replay(a.popgo, cfg, pcap, sock, a.core)
    try:
        if a.rt:
            for t in os.listdir(f"/proc/{p.pid}/task"):
                name = open(f"/proc/{p.pid}/task/{t}/comm").read().strip()
                if name.startswith("popgo-w") or name == "popgo-ctl":
                    subprocess.run(["chrt", "-f", "-p", "1", t], check=True)
        time.sleep(1.0)
        rss, hwm = rss_kb(p.pid), rss_kb(p.pid, "VmHWM")
        print(f"  RSS {rss / 1024:.0f} MB (baseline with 1,000 routes {base / 1024:.0f} MB): "
              f"{(rss - base) * 1024 / n:.0f} bytes per route; peak {hwm / 1024:.0f} MB = "
              f"{(hwm - base) / max(1, rss - base):.2f} x steady (over the baseline)")
        for l in c.cmd("display popgo statistics | include memory:|last full-table build"):
            print("  " + l.strip())

        print(f"3. {a.commits} one-route commits")
        c.cmd("system-view")
        state = {}
        totals, parts = [], {k: [] for k in ("build", "publish", "grace", "reclaim")}
        for i in range(a.commits):
            l = 17 + (i * 7919) % (n - 1)  # not the traffic's label 16
            k = l % 64
            pfx = f"10.{(l >> 16) & 255}.{(l >> 8) & 255}.{l & 255}"
            x, y = f"192.168.{l % 16}.1", f"192.168.{(l + 1) % 16}.1"
            frm, to = (y, x) if state.get(l) else (x, y)
            state[l] = not state.get(l)
            c.cmd(f"{route_cmd} {pfx} 32 {to}")
            c.cmd(f"undo {route_cmd} {pfx} 32 {frm}")
            r = " ".join(c.cmd("commit"))
            m = re.search(r"incremental build ([\d.]+) us.*total ([\d.]+) us", r)
            if not m:
                sys.exit(f"not an incremental commit: {r}")
            totals.append(float(m.group(2)))
            for k in parts:
                parts[k].append(float(re.search(k + r" ([\d.]+) us", r).group(1)))
        p50, p99 = pct(totals, 0.5), pct(totals, 0.99)
        print(f"  total: p50 {p50:.1f} us, p99 {p99:.1f} us, max {max(totals):.1f} us ("
              + ", ".join(f"{k} {pct(v, 0.5):.1f}/{pct(v, 0.99):.1f}" for k, v in parts.items()) + " us p50/p99)")
        for l in c.cmd("display popgo statistics | include incremental commit total"):
            print("  statistics:" + l.strip())
        if a.max_p99_us and p99 > a.max_p99_us:
            failed.append(f"one-route commit p99 {p99:.1f} us > {a.max_p99_us} us")
        c.cmd("ip vpn-instance vpna" if a.vpn else "bgp 100")
        if a.vpn:
            c.cmd("ipv4-family")
        toggles = []
        for on in ["undo apply-label per-route pop-go", "apply-label per-route pop-go"] * 3:
            c.cmd("apply-label per-route" if a.vpn and on.startswith("undo") else on)
            r = " ".join(c.cmd("commit"))
            toggles.append(float(re.search(r"total ([\d.]+) us", r).group(1)))
        print(f"  pop-go toggle over {n} entries: median {statistics.median(toggles) / 1000:.2f} ms, "
              f"max {max(toggles) / 1000:.2f} ms")
        c.cmd("return")
        c.cmd("system-view")

        print("4. the traffic follows a commit (label 16: 10.0.0.16/32)")
        for frm, to, old, new in [("192.168.0.1", "192.168.1.1", "p0", "p1"),
                                  ("192.168.1.1", "192.168.0.1", "p1", "p0")]:
            c.cmd(f"{route_cmd} 10.0.0.16 32 {to}")
            c.cmd(f"undo {route_cmd} 10.0.0.16 32 {frm}")
            c.cmd("commit")
            time.sleep(0.2)
            s0 = counters(c)
            time.sleep(0.5)
            s1 = counters(c)
            d_old = s1[f"port.{old}.tx_pkts"] - s0[f"port.{old}.tx_pkts"]
            d_new = s1[f"port.{new}.tx_pkts"] - s0[f"port.{new}.tx_pkts"]
            row = " ".join(c.cmd("display mpls lsp protocol bgp | include ^10\\.0\\.0\\.16/32 "))
            verdict = "ok" if d_old == 0 and d_new > 0 and f"-/{new} " in row else "FAILED"
            print(f"  via {to}: {old} +{d_old} frames, {new} +{d_new} frames; LSP row: {row.split()}: {verdict}")
            if verdict != "ok":
                failed.append(f"traffic did not follow the commit to {new}")

        print("5. display mpls lsp protocol bgp | count (streamed over the socket)")
        t = time.time()
        body = c.cmd("display mpls lsp protocol bgp | count")
        print(f"  {body[0]} in {time.time() - t:.2f} s")
        t = time.time()
        lines = len(c.cmd("display mpls lsp protocol bgp"))
        print(f"  the whole display: {lines} lines in {time.time() - t:.2f} s; "
              f"RSS after it {rss_kb(p.pid) / 1024:.0f} MB")
    finally:
        p.terminate()
        p.wait()
    if failed:
        print("FAILED: " + "; ".join(failed))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
