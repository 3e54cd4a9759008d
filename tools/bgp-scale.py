#!/usr/bin/env python3
"""BGP at full-table scale: popgo with N labelled routes (default 1M) and one eBGP peer
(GoBGP, `gobgpd`) in two network namespaces of its own.

1. Full table: time from Established until the peer holds all N routes.
2. One-route commits with the session up: COMMITS commits through the control socket,
   each an `undo network P 32` or a `network P 32 label L` of one table route. For
   each: the commit's own report (`total`), the end-to-end time through the socket
   (the `commit` line sent -> its reply), and the time until the peer's RIB shows the
   change (`gobgp monitor global rib`, read as it streams: an upper bound, since it
   includes GoBGP's own processing and its gRPC stream). p50 / p99 / max of each.
With --bird (needs `bird` and `birdc`, Debian's bird2) instead: the full table from
popgo to a BIRD (D), then from that BIRD to a second one (E), in the same run: the
time from each session's Established until the receiver holds all N routes.

Root only (namespaces). Namespaces and veths are named pgbg-*-PID / bg*PID and removed
at the end, whatever happens. Figures on a loaded machine are noisy: run it when the
machine is quiet, and say so next to any figure taken otherwise.

  tools/bgp-scale.py [--routes 1000000] [--commits 200] [--popgo BIN] [--dir DIR]
                     [--max-p99-us 200] [--max-e2e-ms 1] [--max-peer-ms 10]
Exits 1 if a limit given is exceeded or the peer does not get the table.
"""
import argparse, json, os, re, subprocess, sys, tempfile, threading, time

from popgo_ctl import connect

PID = os.getpid()
NS_C, NS_D, NS_E = f"pgbg-c-{PID}", f"pgbg-d-{PID}", f"pgbg-e-{PID}"
VETH_C, VETH_D = f"bgc{PID}"[:15], f"bgd{PID}"[:15]
VETH_DE, VETH_E = f"bgx{PID}"[:15], f"bge{PID}"[:15]


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def netns_up():
    for ns in (NS_C, NS_D):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", NS_C, "link", "add", VETH_C, "type", "veth", "peer", "name", VETH_D, "netns", NS_D)
    for ns, dev, addr in ((NS_C, VETH_C, "198.18.0.2/30"), (NS_D, VETH_D, "198.18.0.1/30")):
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def netns_e_up():
    sh("ip", "netns", "add", NS_E)
    sh("ip", "-n", NS_E, "link", "set", "lo", "up")
    sh("ip", "-n", NS_D, "link", "add", VETH_DE, "type", "veth", "peer", "name", VETH_E, "netns", NS_E)
    for ns, dev, addr in ((NS_D, VETH_DE, "198.18.0.5/30"), (NS_E, VETH_E, "198.18.0.6/30")):
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")


def netns_down():
    for ns in (NS_C, NS_D, NS_E):
        for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
            sh("kill", "-KILL", pid, check=False)
        sh("ip", "netns", "del", ns, check=False)


def birdc(ns, ctl, *cmd):
    return sh("ip", "netns", "exec", ns, "birdc", "-s", ctl, *cmd, check=False).stdout


def bird_count(ns, ctl):
    m = re.search(r"(\d+) of \d+ routes", birdc(ns, ctl, "show", "route", "table", "t4", "count"))
    return int(m.group(1)) if m else 0


def bird_established(ns, ctl, proto):
    return "Established" in birdc(ns, ctl, "show", "protocols", proto)


def wait_count(ns, ctl, n, since, failed, what, popgo):
    while bird_count(ns, ctl) < n:
        if time.monotonic() - since > 900 or popgo.poll() is not None:
            failed.append(f"{what}: not all {n} routes after {time.monotonic() - since:.0f} s "
                          f"(popgo {'exited' if popgo.poll() is not None else 'runs'})")
            break
        time.sleep(0.1)
    return time.monotonic() - since


def bird_compare(a, d, n, asn, pcfg, pcap, procs, failed):
    """popgo -> BIRD D, then BIRD D -> BIRD E: full-table times in the same run."""
    netns_e_up()
    dconf, econf = os.path.join(d, "bird-d.conf"), os.path.join(d, "bird-e.conf")
    dctl, ectl = os.path.join(d, "bird-d.ctl"), os.path.join(d, "bird-e.ctl")
    open(dconf, "w").write(
        'router id 198.18.0.1;\nprotocol device {}\nipv4 table t4;\n'
        f'protocol bgp c {{ local 198.18.0.1 as 200; neighbor 198.18.0.2 as {asn};\n'
        '  ipv4 mpls { table t4; import all; export none; }; }\n'
        'protocol bgp e { disabled; local 198.18.0.5 as 200; neighbor 198.18.0.6 as 300;\n'
        '  ipv4 mpls { table t4; import none; export all; }; }\n')
    open(econf, "w").write(
        'router id 198.18.0.6;\nprotocol device {}\nipv4 table t4;\n'
        'protocol bgp d { local 198.18.0.6 as 300; neighbor 198.18.0.5 as 200;\n'
        '  ipv4 mpls { table t4; import all; export none; }; }\n')
    for ns, conf, ctl, name in ((NS_D, dconf, dctl, "d"), (NS_E, econf, ectl, "e")):
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "bird", "-f", "-c", conf, "-s", ctl],
                                      stdout=subprocess.DEVNULL,
                                      stderr=open(os.path.join(d, f"bird-{name}.log"), "w")))
    sock = os.path.join(d, "ctl.sock")
    p = subprocess.Popen(["ip", "netns", "exec", NS_C, a.popgo, "replay", "--config", pcfg, "--control", sock,
                          "--loops", "0", "--pps", "100", pcap], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "popgo.log"), "w"))
    procs.append(p)
    connect(sock, p, timeout=300)
    while not bird_established(NS_D, dctl, "c"):
        if p.poll() is not None:
            sys.exit("popgo exited (see popgo.log)")
        time.sleep(0.02)
    popgo_s = wait_count(NS_D, dctl, n, time.monotonic(), failed, "popgo -> BIRD", p)
    birdc(NS_D, dctl, "enable", "e")
    while not bird_established(NS_E, ectl, "d"):
        time.sleep(0.02)
    bird_s = wait_count(NS_E, ectl, n, time.monotonic(), failed, "BIRD -> BIRD", p)
    print(f"full table of {n} routes, from Established until the receiver holds them all: "
          f"popgo -> BIRD {popgo_s:.1f} s, BIRD -> BIRD {bird_s:.1f} s (same run)")
    if popgo_s > bird_s * 1.1:
        failed.append(f"popgo -> BIRD {popgo_s:.1f} s is more than BIRD -> BIRD {bird_s:.1f} s (+10%)")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round((len(v) - 1) * p)))]


def summary(name, v, unit):
    return f"{name}: p50 {pct(v, 0.5):.3f} {unit}, p99 {pct(v, 0.99):.3f} {unit}, max {max(v):.3f} {unit}"


class Monitor:
    """`gobgp monitor global rib` in D: the time each prefix was last seen, and how."""

    def __init__(self):
        self.p = subprocess.Popen(["ip", "netns", "exec", NS_D, "gobgp", "-u", "127.0.0.1", "monitor", "global",
                                   "rib", "-a", "ipv4-labelled", "-j"], stdout=subprocess.PIPE, text=True)
        self.seen = {}
        self.cv = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.p.stdout:
            t = time.monotonic()
            try:
                paths = json.loads(line)
            except ValueError:
                continue
            with self.cv:
                for path in paths if isinstance(paths, list) else [paths]:
                    nlri = path.get("nlri", {}).get("prefix")
                    if nlri:
                        self.seen[nlri] = (t, bool(path.get("withdrawal")))
                self.cv.notify_all()

    def wait(self, prefix, withdrawn, since, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                s = self.seen.get(prefix)
                if s and s[0] >= since and s[1] == withdrawn:
                    return s[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)


def rib_count():
    out = sh("ip", "netns", "exec", NS_D, "gobgp", "-u", "127.0.0.1", "global", "rib", "summary", "-a",
             "ipv4-labelled", check=False)
    out = out.stdout + out.stderr
    m = re.search(r"Destination: (\d+)", out)
    if os.environ.get("BGP_SCALE_DEBUG"):
        print(repr(out), flush=True)
    return int(m.group(1)) if m else 0


def gobgp_run(a, d, n, asn, pcfg, pcap, gcfg, table, procs, failed):
    """The full table to GoBGP, then one-route commits (see the module's docs)."""
    procs.append(subprocess.Popen(["ip", "netns", "exec", NS_D, "gobgpd", "-f", gcfg, "-p", "--api-hosts",
                                   "127.0.0.1:50051", "--pprof-disable"], stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(d, "gobgpd.log"), "w")))
    sock = os.path.join(d, "ctl.sock")
    p = subprocess.Popen(["ip", "netns", "exec", NS_C, a.popgo, "replay", "--config", pcfg, "--control", sock,
                          "--loops", "0", "--pps", "100", pcap], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "popgo.log"), "w"))
    procs.append(p)
    c = connect(sock, p, timeout=300)
    print(f"popgo up with {n} routes; waiting for the session", flush=True)
    t0 = None
    while t0 is None:
        if any("Established" in l for l in c.cmd("display bgp peer")):
            t0 = time.monotonic()
        else:
            time.sleep(0.02)
    have = 0
    while have < n:
        have = rib_count()
        if time.monotonic() - t0 > 600:
            failed.append(f"the peer has {have} of {n} routes after 600 s")
            break
        time.sleep(0.1)
    full_s = time.monotonic() - t0
    print(f"1. full table: {n} routes at the peer {full_s:.1f} s after Established")

    mon = Monitor()
    procs.append(mon.p)
    time.sleep(1.0)
    rows = [l.split() for l in open(table) if l[0].isdigit()]
    c.cmd("system-view")
    c.cmd(f"bgp {asn}")
    totals, e2e, peer, bgp = [], [], [], []
    for i in range(a.commits):
        pfx, _, label = rows[(i // 2 * 7919) % len(rows)]
        addr, plen = pfx.split("/")
        line = f"undo network {addr} {plen}" if i % 2 == 0 else f"network {addr} {plen} label {label}"
        c.cmd(line)
        t = time.monotonic()
        r = " ".join(c.cmd("commit"))
        e2e.append((time.monotonic() - t) * 1000)
        m = re.search(r"total ([\d.]+) us", r)
        if not m:
            sys.exit(f"no total in the commit reply: {r}")
        totals.append(float(m.group(1)))
        b = re.search(r"bgp ([\d.]+) us", r)
        bgp.append(float(b.group(1)) if b else 0.0)
        seen = mon.wait(pfx, i % 2 == 0, t)
        if seen is None:
            failed.append(f"the peer did not see {line}")
            break
        peer.append((seen - t) * 1000)
    print(f"2. {len(totals)} one-route commits at {n} routes, session Established")
    print("  " + summary("commit report total", totals, "us"))
    print("  " + summary("of which BGP on the control thread (diff + hand-off)", bgp, "us"))
    for l in c.cmd("display popgo statistics | include speaker's thread"):
        print("  " + l.strip())
    print("  " + summary("end to end through the control socket", e2e, "ms"))
    print("  " + summary("until the peer's RIB shows it (gobgp monitor)", peer, "ms"))
    for lim, v, p_, name in ((a.max_p99_us, totals, 0.99, "commit p99 us"),
                             (a.max_e2e_ms, e2e, 0.5, "end-to-end median ms"),
                             (a.max_peer_ms, peer, 0.99, "peer p99 ms")):
        if lim is not None and v and pct(v, p_) > lim:
            failed.append(f"{name} {pct(v, p_):.3f} > {lim}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", type=int, default=1_000_000)
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--popgo", default="target/release/popgo")
    ap.add_argument("--dir")
    ap.add_argument("--max-p99-us", type=float)
    ap.add_argument("--max-e2e-ms", type=float)
    ap.add_argument("--max-peer-ms", type=float)
    ap.add_argument("--bird", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bgp-scale.py needs root (network namespaces)")
    d = a.dir or tempfile.mkdtemp(prefix="popgo-bgp-scale-")
    os.makedirs(d, exist_ok=True)
    n = a.routes
    cfg, table, pcap = (os.path.join(d, f"b{n}.{x}") for x in ("toml", "txt", "pcap"))
    if not os.path.exists(cfg):
        subprocess.run([a.popgo, "gen", "synth", "--out", pcap, "--count", "1000", "--labels", str(n),
                        "--config-out", cfg, "--table-out", table], check=True, stdout=subprocess.DEVNULL)
    text = open(cfg).read().replace("[bgp]\n", "[bgp]\nrouter_id = \"198.18.0.2\"\n", 1)
    text += '\n[[bgp.peer]]\naddress = "198.18.0.1"\nas = 200\nfamilies = ["ipv4-labeled-unicast"]\n'
    pcfg = os.path.join(d, "peer.toml")
    open(pcfg, "w").write(text)
    asn = re.search(r"^as = (\d+)", text, re.M).group(1)
    gcfg = os.path.join(d, "gobgpd.toml")
    open(gcfg, "w").write(
        '[global.config]\n  as = 200\n  router-id = "198.18.0.1"\n  local-address-list = ["198.18.0.1"]\n'
        f'[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "198.18.0.2"\n    peer-as = {asn}\n'
        '[[neighbors.afi-safis]]\n  [neighbors.afi-safis.config]\n    afi-safi-name = "ipv4-labelled-unicast"\n')
    procs, failed = [], []
    print(f"load: {open('/proc/loadavg').read().strip()} (1, 5, 15 min; {os.cpu_count()} CPUs)", flush=True)
    netns_up()
    try:
        if a.bird:
            bird_compare(a, d, n, asn, pcfg, pcap, procs, failed)
        else:
            gobgp_run(a, d, n, asn, pcfg, pcap, gcfg, table, procs, failed)
    finally:
        for pr in reversed(procs):
            pr.terminate()
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()
        netns_down()
    print(f"load at the end: {open('/proc/loadavg').read().strip()}")
    for f in failed:
        print("FAILED: " + f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
