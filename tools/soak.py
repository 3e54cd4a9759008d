#!/usr/bin/env python3
"""Soak test: `popgo replay --loops 0 --control` under RATE commits per second for SECS
seconds. Samples the process's RSS every INTERVAL seconds and the rx counter from the
metrics endpoint; at the end stops popgo with SIGINT and checks its final report
(rx = tx + drops). Fails (exit 1) if RSS grew by more than --max-growth-mb between the
first sample after warm-up and the last, or if the report does not balance.

  tools/soak.py [--secs 600] [--rate 100] [--interval 10] [--popgo BIN] [--dir DIR]
"""
import argparse, json, os, signal, subprocess, sys, tempfile, time

from popgo_ctl import connect, rss_kb, rx_packets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=600.0)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--max-growth-mb", type=float, default=8.0)
    ap.add_argument("--popgo", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "popgo"))
    ap.add_argument("--dir", default=tempfile.mkdtemp(prefix="popgo-soak-"))
    ap.add_argument("--metrics-port", type=int, default=19465)
    a = ap.parse_args()
    pcap, cfg = os.path.join(a.dir, "s.pcap"), os.path.join(a.dir, "s.toml")
    if not os.path.exists(pcap):
        subprocess.run([a.popgo, "gen", "synth", "--out", pcap, "--count", "200000", "--labels", "100000",
                        "--config-out", cfg], check=True, stdout=subprocess.DEVNULL)
    sock = os.path.join(a.dir, "ctl.sock")
    url = f"http://127.0.0.1:{a.metrics_port}/metrics"
    p = subprocess.Popen([a.popgo, "replay", "--config", cfg, "--control", sock, "--loops", "0",
                          "--metrics", f"127.0.0.1:{a.metrics_port}", "--json", pcap],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        c = connect(sock, p)
        cmd = c.cmd

        def rx():
            return rx_packets(url)

        cmd("system-view")
        time.sleep(2.0)  # warm-up: tables built, ring and histograms allocated
        start, nxt, commits, flip = time.time(), time.time(), 0, False
        samples = [(0.0, rss_kb(p.pid), rx())]
        print(f"t=0s rss {samples[0][1] / 1024:.1f} MiB rx {samples[0][2]}", flush=True)
        next_sample = start + a.interval
        while time.time() - start < a.secs:
            now = time.time()
            if now >= nxt:
                old, new = ("192.168.0.1", "192.168.1.1") if not flip else ("192.168.1.1", "192.168.0.1")
                cmd(f"ip route-static 10.0.0.16 32 {new}")
                cmd(f"undo ip route-static 10.0.0.16 32 {old}")
                cmd("commit")
                commits, flip, nxt = commits + 1, not flip, nxt + 1.0 / a.rate
            if now >= next_sample:
                t = now - start
                samples.append((t, rss_kb(p.pid), rx()))
                print(f"t={t:.0f}s rss {samples[-1][1] / 1024:.1f} MiB rx {samples[-1][2]} commits {commits}", flush=True)
                next_sample += a.interval
            time.sleep(max(0.0, min(nxt, next_sample) - time.time()))
        samples.append((time.time() - start, rss_kb(p.pid), rx()))
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        rep = json.loads(out.decode().strip().splitlines()[-1])
        growth = (samples[-1][1] - samples[0][1]) / 1024
        drops = sum(rep["drops"].values())
        print(f"soak: {samples[-1][0]:.0f}s, {commits} commits ({commits / samples[-1][0]:.1f}/s); "
              f"rss start {samples[0][1] / 1024:.1f} MiB end {samples[-1][1] / 1024:.1f} MiB (growth {growth:+.1f} MiB); "
              f"rx {rep['rx_packets']} = tx {sum(rep['tx_packets'].values())} + drops {drops}: "
              f"{'balanced' if rep['balanced'] else 'NOT BALANCED'}")
        ok = rep["balanced"] and growth <= a.max_growth_mb
        sys.exit(0 if ok else 1)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
