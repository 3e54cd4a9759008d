#!/usr/bin/env python3
"""TCP MD5 (RFC 2385) between popgo and BIRD 2, in two network namespaces of its own.

1. popgo (`replay --control`, a small synthetic table) and BIRD (D) share a key: the
   session comes up and BIRD holds every route.
2. popgo's key is changed to a wrong one (`peer X password simple ...` + `commit`):
   the session goes down and stays down; popgo counts the failed connections
   (`display popgo statistics`), shows the reason (`display bgp peer`: "TCP MD5") and
   logs it.
3. The right key again: the session comes back.

BIRD is not a suite dependency (tools/setup.sh does not install it): this script is
how the MD5 interop with BIRD is checked (Debian: `apt-get install bird2`).

Root only (namespaces). Namespaces and veths are named pgbm-*-PID / bm*PID and removed
at the end, whatever happens. Every wait is bounded (60 s).

  tools/bird-md5.py [--popgo BIN] [--routes 1000] [--dir DIR]
Exits 1 if a step fails, 0 when all three hold.
"""
import argparse, os, re, subprocess, sys, tempfile, time

from popgo_ctl import connect

PID = os.getpid()
NS_C, NS_D = f"pgbm-c-{PID}", f"pgbm-d-{PID}"
VETH_C, VETH_D = f"bmc{PID}"[:15], f"bmd{PID}"[:15]
KEY, WRONG = "s3cret-md5", "wrong-key"


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def birdc(ctl, *cmd):
    return sh("ip", "netns", "exec", NS_D, "birdc", "-s", ctl, *cmd, check=False).stdout


def until(what, f, secs=60):
    t = time.monotonic()
    while time.monotonic() - t < secs:
        v = f()
        if v:
            return v
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {secs} s waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--popgo", default="target/debug/popgo")
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--dir")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bird-md5.py needs root (network namespaces)")
    d = a.dir or tempfile.mkdtemp(prefix="popgo-bird-md5-")
    os.makedirs(d, exist_ok=True)
    cfg, pcap = os.path.join(d, "c.toml"), os.path.join(d, "c.pcap")
    subprocess.run([a.popgo, "gen", "synth", "--out", pcap, "--count", "10", "--labels", str(a.routes),
                    "--config-out", cfg], check=True, stdout=subprocess.DEVNULL)
    text = open(cfg).read().replace("[bgp]\n", "[bgp]\nrouter_id = \"198.18.0.2\"\n", 1)
    text += ('\n[[bgp.peer]]\naddress = "198.18.0.1"\nas = 200\nfamilies = ["ipv4-labeled-unicast"]\n'
             f'password = "{KEY}"\n')
    open(cfg, "w").write(text)
    asn = re.search(r"^as = (\d+)", text, re.M).group(1)
    bconf, bctl = os.path.join(d, "bird.conf"), os.path.join(d, "bird.ctl")
    open(bconf, "w").write(
        'router id 198.18.0.1;\nprotocol device {}\nipv4 table t4;\n'
        f'protocol bgp c {{ local 198.18.0.1 as 200; neighbor 198.18.0.2 as {asn}; password "{KEY}";\n'
        '  ipv4 mpls { table t4; import all; export none; }; }\n')
    procs, failed = [], []
    log = os.path.join(d, "popgo.log")
    try:
        for ns in (NS_C, NS_D):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", NS_C, "link", "add", VETH_C, "type", "veth", "peer", "name", VETH_D, "netns", NS_D)
        for ns, dev, addr in ((NS_C, VETH_C, "198.18.0.2/30"), (NS_D, VETH_D, "198.18.0.1/30")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        procs.append(subprocess.Popen(["ip", "netns", "exec", NS_D, "bird", "-f", "-c", bconf, "-s", bctl],
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "bird.log"), "w")))
        sock = os.path.join(d, "ctl.sock")
        p = subprocess.Popen(["ip", "netns", "exec", NS_C, a.popgo, "replay", "--config", cfg, "--control", sock,
                              "--loops", "0", "--pps", "10", pcap], stdout=subprocess.DEVNULL,
                             stderr=open(log, "w"), env={**os.environ, "RUST_LOG": "info"})
        procs.append(p)
        c = connect(sock, p, timeout=60)
        version = sh("bird", "--version", check=False)
        print(f"BIRD: {(version.stdout + version.stderr).strip()}")

        def count():
            m = re.search(r"(\d+) of \d+ routes", birdc(bctl, "show", "route", "table", "t4", "count"))
            return int(m.group(1)) if m else 0

        def established():
            return "Established" in birdc(bctl, "show", "protocols", "c")

        until("the MD5 session and BIRD holding every route", lambda: established() and count() >= a.routes)
        print(f"1. same key: Established, BIRD holds {count()} routes")

        c.cmd("system-view")
        c.cmd(f"bgp {asn}")
        c.cmd(f"peer 198.18.0.1 password simple {WRONG}")
        c.cmd("commit")

        def failures():
            s = " ".join(c.cmd("display popgo statistics | include peer 198.18.0.1"))
            m = re.search(r"connects \d+ \(failed (\d+)\)", s)
            return (int(m.group(1)), s) if m and int(m.group(1)) >= 2 and "Established" not in s else None

        n, line = until("two failed connections counted", failures)
        peer = " ".join(c.cmd("display bgp peer"))
        logged = [l for l in open(log) if "TCP MD5" in l]
        if established():
            failed.append("wrong key: BIRD still shows the session Established")
        if "TCP MD5" not in peer:
            failed.append(f"wrong key: `display bgp peer` does not name TCP MD5: {peer}")
        if not logged:
            failed.append("wrong key: no log line names TCP MD5")
        print(f"2. wrong key: down, {n} failed connections counted; `display bgp peer`: "
              f"{'names TCP MD5' if 'TCP MD5' in peer else 'no reason'}; log: {logged[0].strip() if logged else '-'}")

        c.cmd(f"peer 198.18.0.1 password simple {KEY}")
        c.cmd("commit")
        until("the session back with the right key", established)
        print("3. right key again: Established")
    except RuntimeError as e:
        failed.append(str(e))
        print(birdc(bctl, "show", "protocols", "all", "c"))
    finally:
        for pr in reversed(procs):
            pr.terminate()
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()
        for ns in (NS_C, NS_D):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-KILL", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)
    for f in failed:
        print("FAILED: " + f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
