"""The long-running categories of tools/hostile.py: a replay --loops 0 under hostile
control-socket sessions, signals, or HTTP connections to its metrics port. Each returns
[(what, findings)], one entry per session; the last one carries the final report's check."""
import os
import re
import signal
import socket
import time

import hostile_inputs as hi
from hostile import ROOT, Run, read, verdict, write, seed_with  # noqa: F401

PCAP = os.path.join(ROOT, "pcaps/seed.pcap")


def wait_for(pred, secs):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def reply(s, secs=15):
    """Lines of one reply, up to its end line (.ok/.error/.bye), or None on a timeout/close."""
    s.settimeout(secs)
    buf = b""
    end = time.time() + secs
    try:
        while time.time() < end:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
            for line in buf.split(b"\n")[:-1]:
                if line.startswith(b".") and not line.startswith(b".."):
                    return buf
    except OSError:
        return None
    return None


def health_control(sock):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        if reply(s) is None:
            return "no greeting"
        s.sendall(b"display current-configuration | count\n")
        r = reply(s)
        s.close()
        return None if r and b".ok" in r else f"no reply to a display: {r!r}"[:300]
    except OSError as e:
        return f"cannot connect: {e}"


def start_replay(bin_, d, extra, rng):
    cfg = write(d, "c.toml", read("pcaps/seed.toml"))
    cmd = [bin_, "replay", "--config", cfg, "--loops", "0", "--pps", str(rng.choice([500, 2000, 20000])),
           "--json", *extra, PCAP]
    return cfg, cmd, Run(cmd, d, 60)


def stop(run, cmd, results, files):
    if run.p.poll() is None:
        run.p.send_signal(signal.SIGTERM)
    run.finish(stop_after=20)
    f = verdict(run, files, want_report=True)
    if run.rc != 0 and not f:
        f = [("exit", f"exit {run.rc} after SIGTERM: {run.err[-300:]}")]
    results.append((cmd, f))
    return results


def live_control(rng, bin_, d, n):
    sock = os.path.join(d, "c.sock")
    cfg, cmd, run = start_replay(bin_, d, ["--control", sock] + (["--workers", "2"] if rng.random() < 0.3 else []), rng)
    if not wait_for(lambda: os.path.exists(sock) or run.p.poll() is not None, 30) or run.p.poll() is not None:
        run.finish(stop_after=5)
        return [(cmd, [("setup", f"no control socket: exit {run.rc}: {run.err[-300:]}")])]
    results = []
    for _ in range(n):
        what, f = None, []
        r = rng.random()
        if r < 0.1:  # SIGHUP with a mutated config (or a FIFO, or a directory)
            os.replace(cfg, cfg + ".old")
            k = rng.random()
            if k < 0.1:
                os.mkfifo(cfg)
            elif k < 0.15:
                os.mkdir(cfg)
            else:
                text = hi.raw_text_bytes(rng, hi.mutate_text(rng, read("pcaps/seed.toml").decode()))
                write(d, "c.toml", text)
                write(d, f"hup-{len(results)}.toml", text)  # kept with a finding
            run.p.send_signal(signal.SIGHUP)
            time.sleep(0.2)
            what = ["kill", "-HUP", "(mutated config)"]
            if os.path.isdir(cfg):
                os.rmdir(cfg)
            else:
                os.unlink(cfg)
            os.replace(cfg + ".old", cfg)
        elif r < 0.18:  # popgo ctl interactive, hostile stdin
            what = [bin_, "ctl", "--socket", sock, "(stdin)"]
            c = Run(what[:4], d, 60, stdin=b"".join(hi.control_line(rng) for _ in range(rng.randint(1, 10)))).finish()
            f = verdict(c, [sock])
            if c.stopped:
                f.append(("hang", "popgo ctl did not end in 60 s"))
        elif r < 0.25:  # popgo ctl with hostile arguments
            lines = [hi.control_line(rng).decode("utf-8", "replace").rstrip("\n")[:5000] for _ in range(rng.randint(1, 6))]
            what = [bin_, "ctl", "--socket", sock, "; ".join(lines)]
            c = Run(what, d, 60).finish()
            f = verdict(c, [sock])
            if c.stopped:
                f.append(("hang", "popgo ctl did not end in 60 s"))
        else:  # a raw session
            lines = [hi.control_line(rng) for _ in range(rng.randint(1, 25))]
            what = ["session", [l[:200].decode("utf-8", "replace") for l in lines]]
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                reply(s)
                mode = rng.random()
                if mode < 0.2:  # all at once, no reading, then close
                    s.sendall(b"".join(lines))
                elif mode < 0.3:  # a partial line, then close
                    s.sendall(lines[0][:-1])
                else:
                    for line in lines:
                        s.sendall(line)
                        if reply(s, 30) is None:
                            break
                s.close()
            except OSError:
                pass
        if run.p.poll() is not None:
            time.sleep(0.5)
            tail = b"".join(run.bufs[1])[-700:].decode("utf-8", "replace")
            out = b"".join(run.bufs[0])[-300:].decode("utf-8", "replace")
            f.append(("died", f"replay exited {run.p.returncode} during the session: {tail} stdout: {out}"))
            results.append((what, f))
            break
        h = health_control(sock)
        if h:
            f.append(("control-dead", h))
        results.append((what, f))
        if f:
            break
    return stop(run, cmd, results, [cfg])


SIGS = [signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGSTOP, signal.SIGCONT, signal.SIGWINCH, signal.SIGPIPE]


def live_signals(rng, bin_, d, n):
    sock = os.path.join(d, "c.sock")
    extra = []
    if rng.random() < 0.5:
        extra += ["--control", sock]
    if rng.random() < 0.3:
        extra += ["--stats", rng.choice(["0.02", "0.05", "1"])]
    if rng.random() < 0.3:
        extra += ["--workers", "2"]
    cfg, cmd, run = start_replay(bin_, d, extra, rng)
    time.sleep(rng.choice([0, 0.01, 0.1, 0.3, 0.6]))
    sent, stopped = [], False
    for _ in range(rng.randint(1, 8)):
        sig = rng.choice(SIGS)
        if sig == signal.SIGHUP and rng.random() < 0.5:
            write(d, "c.toml", hi.raw_text_bytes(rng, hi.mutate_text(rng, read("pcaps/seed.toml").decode())))
        try:
            run.p.send_signal(sig)
        except ProcessLookupError:
            break
        sent.append(sig.name)
        stopped |= sig in (signal.SIGINT, signal.SIGTERM)
        time.sleep(rng.choice([0, 0.001, 0.02, 0.1]))
    run.p.send_signal(signal.SIGCONT)
    if not stopped:
        run.p.send_signal(rng.choice([signal.SIGINT, signal.SIGTERM]))
    run.finish(stop_after=15)
    what = cmd + ["signals:", *sent]
    if run.stopped:
        return [(what, [("hang", f"not stopped 15 s after {sent}; {run.diag}")])]
    if run.rc in (-signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP, -signal.SIGPIPE):
        return [(what, [])]  # a signal before the handlers were installed: its default action
    f = verdict(run, [cfg], want_report=True)
    if run.rc != 0 and not f:
        f = [("exit", f"exit {run.rc} after {sent}: {run.err[-300:]}")]
    return [(what, f)]


def scrape(port, secs=10):
    """One good scrape within `secs`. A 429 (the endpoint's request-rate bound, which a
    request of many pipelined GETs reaches) is an answer: wait its Retry-After, as
    Prometheus would at its next interval, and ask again."""
    end = time.time() + secs
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=max(0.1, end - time.time()))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            buf = b""
            while time.time() < end:
                c = s.recv(65536)
                if not c:
                    break
                buf += c
            s.close()
        except OSError:
            return False
        if buf.startswith(b"HTTP/1.1 200") and b"popgo_" in buf:
            return True
        m = re.search(rb"\r\nRetry-After: (\d+)\r\n", buf) if buf.startswith(b"HTTP/1.1 429") else None
        if not m or time.time() + int(m.group(1)) >= end:
            return False
        time.sleep(int(m.group(1)))


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def live_metrics(rng, bin_, d, n):
    for _ in range(5):
        port = rng.randint(20000, 60000)
        cfg, cmd, run = start_replay(bin_, d, ["--metrics", f"127.0.0.1:{port}"], rng)
        if wait_for(lambda: scrape(port, 2) or run.p.poll() is not None, 30) and run.p.poll() is None:
            break
        run.finish(stop_after=5)
    else:
        return [(cmd, [("setup", f"no metrics endpoint: {run.err[-300:]}")])]
    idle = rss_kb(run.p.pid)
    results = []
    for _ in range(n):
        f = []
        k = rng.random()
        socks = []
        try:
            if k < 0.6:
                req = hi.http_request(rng)
                what = ["http", req[:200].decode("latin-1")]
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                s.sendall(req)
                if rng.random() < 0.5:
                    try:
                        s.recv(65536)
                    except OSError:
                        pass
            elif k < 0.85:
                m = rng.choice([20, 100, 300])
                what = ["flood", m]
                for _ in range(m):
                    s = socket.create_connection(("127.0.0.1", port), timeout=5)
                    socks.append(s)
                    s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * rng.choice([0, 1000, 60000]))
            else:
                what = ["drip"]
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
                    s.send(bytes([b]))
                    time.sleep(0.01)
        except OSError:
            pass
        peak = rss_kb(run.p.pid)
        for s in socks:
            s.close()
        if run.p.poll() is not None:
            results.append((what, [("died", f"replay exited {run.p.returncode}")]))
            break
        if peak > idle + 64 * 1024:
            f.append(("rss", f"RSS {peak} kB under {what[0]}, idle {idle} kB"))
        if not scrape(port, 15):
            f.append(("metrics-dead", f"no scrape after {what[0]}"))
        results.append((what, f))
        if f:
            break
    return stop(run, cmd, results, [cfg])


LIVE = {"control": live_control, "signals": live_signals, "metrics": live_metrics}
