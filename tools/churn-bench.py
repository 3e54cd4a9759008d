#!/usr/bin/env python3
"""Replay throughput while the control thread commits N times per second.

Starts `popgo replay --control` on a synthetic 100,000-route capture (one worker pinned
to the last core), then alternates steady and churn phases. In churn phases a client on
the control socket flips one route between two next hops (two out ports) and commits,
RATE times per second. Throughput per phase comes from the Prometheus endpoint
(`--metrics`: popgo_packets_total{direction="rx"} sampled at the phase edges). Prints
per-phase Mpps, medians and the ratio.

  tools/churn-bench.py [--rate 100] [--phases 5] [--phase-secs 2] [--popgo BIN] [--dir DIR]
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

from popgo_ctl import connect, rx_packets

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--phases", type=int, default=5)
    ap.add_argument("--phase-secs", type=float, default=2.0)
    ap.add_argument("--popgo", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "popgo"))
    ap.add_argument("--dir", default=tempfile.mkdtemp(prefix="popgo-churn-"))
    ap.add_argument("--core", default=str(os.cpu_count() - 1))
    ap.add_argument("--metrics-port", type=int, default=19464)
    a = ap.parse_args()
    pcap, cfg = os.path.join(a.dir, "c.pcap"), os.path.join(a.dir, "c.toml")
    if not os.path.exists(pcap):
        subprocess.run([a.popgo, "gen", "synth", "--out", pcap, "--count", "2000000", "--labels", "100000",
                        "--config-out", cfg], check=True, stdout=subprocess.DEVNULL)
    sock = os.path.join(a.dir, "ctl.sock")
    p = subprocess.Popen([a.popgo, "replay", "--config", cfg, "--control", sock, "--loops", "0",
                          "--cores", a.core, "--metrics", f"127.0.0.1:{a.metrics_port}", "--json", pcap], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        c = connect(sock, p)
        cmd = c.cmd
        url = f"http://127.0.0.1:{a.metrics_port}/metrics"

        def rx():
            return rx_packets(url)

        cmd("system-view")
        time.sleep(1.0)  # warm-up
        steady, churn, commits = [], [], 0
        for ph in range(2 * a.phases):
            churning = ph % 2 == 1
            r0, t0 = rx(), time.time()
            nxt, flip = t0, False
            while time.time() - t0 < a.phase_secs:
                if churning and time.time() >= nxt:
                    old, new = ("192.168.0.1", "192.168.1.1") if not flip else ("192.168.1.1", "192.168.0.1")
                    cmd(f"ip route-static 10.0.0.16 32 {new}")
                    cmd(f"undo ip route-static 10.0.0.16 32 {old}")
                    cmd("commit")
                    commits += 1
                    flip = not flip
                    nxt += 1.0 / a.rate
                else:
                    time.sleep(min(0.001, max(0.0, nxt - time.time())) if churning else 0.01)
            r1, t1 = rx(), time.time()
            mpps = (r1 - r0) / (t1 - t0) / 1e6
            (churn if churning else steady).append(mpps)
            print(f"phase {ph}: {'churn ' if churning else 'steady'} {mpps:.2f} Mpps", flush=True)
        ms, mc = statistics.median(steady), statistics.median(churn)
        secs = a.phases * a.phase_secs
        print(f"steady median {ms:.2f} Mpps, churn median {mc:.2f} Mpps at {commits / secs:.0f} commits/s, "
              f"ratio {mc / ms:.3f} (target >= 0.95)")
    finally:
        p.terminate()
        p.wait(timeout=30)

if __name__ == "__main__":
    main()
