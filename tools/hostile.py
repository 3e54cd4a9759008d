#!/usr/bin/env python3
"""Hostile-input campaign against a built popgo (default target/release/popgo).

Each run feeds popgo one random or mutated input of a category and checks what came
back: no panic (exit 101, "panicked"), no hang (still running after its time and 10 s
after SIGTERM), no abort (SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, exit 134/139), every
report balanced (rx = tx + drops), every error one line naming its source (file, key,
line, offset or option) with exit 2 for bad input, and no --out-dir left describing two
runs. Categories:

  config   mutated TOML configs (seed, l3vpn, 6pe, lab) through replay --json
  table    mutated route table files named by the seed config
  mrt      mutated MRT TABLE_DUMP_V2 dumps (plain, gzip, bzip2) named by the seed config
  capture  mutated pcap/pcapng/SLL/SLL2 captures through replay --json, some with
           --out-dir --overwrite over a previous run, some with a small file-size limit
  numeric  random and hostile values of every numeric option (replay, gen, bench,
           diff, display, run inside a private network namespace when root)
  control  hostile sessions on the control socket of a running replay (one run = one
           session), SIGHUP with a mutated config, then SIGTERM and the final report
  signals  random sequences of SIGHUP/SIGINT/SIGTERM/SIGSTOP/SIGCONT/SIGWINCH/SIGPIPE at
           random times to replay --loops 0
  metrics  hostile HTTP connections to --metrics of a running replay (one run = one
           connection or flood), a scrape after each, RSS bounded, then the final report

  tools/hostile.py [--runs N] [--secs S] [--jobs J] [--seed X] [--only a,b] [--bin PATH]
                   [--out DIR]

Findings are written with their inputs and command to OUT/findings/ (default
target/hostile); the summary gives runs and findings per category; exit 1 on a finding.
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile_inputs as hi  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSIZE = 256 << 20  # file-size limit of every run (a runaway output stops at EFBIG)
AS_LIMIT = 6 << 30  # address-space limit: a runaway allocation aborts rather than swaps
# Run counts per process for the long-running categories.
SESSIONS = {"control": 25, "metrics": 25, "signals": 1}
WEIGHTS = {"config": 30, "table": 12, "mrt": 12, "capture": 30, "numeric": 20,
           "control": 2, "signals": 6, "metrics": 2}
DEADLY = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}
SOURCE = re.compile(r"line \d+|offset \d+|byte \d+|record \d+|--[a-z][a-z0-9-]+|`[^`]+`|\bkey\b|"
                    r"\binput \S|\bconfig \S|stdin|<[A-Z_]+>|'[^']+'|\bargument\b|\b(port|interface) \"[^\"]+\"")


def limits(fsize):
    def pre():
        os.nice(5)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        os.setsid()
    return pre


def diagnose(pid):
    """What a process that outlived its time was doing, and how loaded the machine was
    (a niced process on a busy machine can be slow rather than stuck)."""
    try:
        load = open("/proc/loadavg").read().split()[:3]
        tasks = os.listdir(f"/proc/{pid}/task")
        states = []
        for t in tasks[:16]:
            st = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
            wchan = open(f"/proc/{pid}/task/{t}/wchan").read()
            states.append(f"{st[0]}:{wchan or '-'}:cpu{int(st[11]) + int(st[12])}")
        return f"loadavg {' '.join(load)}; threads {' '.join(states)}"
    except (OSError, IndexError, ValueError):
        return ""


EXITS = []  # exit codes of this job's processes, for the summary
RUNS = []  # this job's processes: whatever still runs when the job ends is killed


class Run:
    """One process and what came of it. Its output is drained by threads (a full pipe is
    no hang) and goes through pipes, which the file-size limit does not cover."""

    def __init__(self, cmd, cwd, secs, fsize=FSIZE, stdin=None):
        self.cmd, self.cwd, self.secs, self.stopped, self.hung, self.diag = cmd, cwd, secs, False, False, ""
        self.p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limits(fsize))
        RUNS.append(self)
        self.bufs = [[], []]
        self.threads = [threading.Thread(target=self._drain, args=(f, b), daemon=True)
                        for f, b in ((self.p.stdout, self.bufs[0]), (self.p.stderr, self.bufs[1]))]
        for t in self.threads:
            t.start()
        if stdin:
            try:
                self.p.stdin.write(stdin)
                self.p.stdin.close()
            except OSError:
                pass

    @staticmethod
    def _drain(f, buf):
        for chunk in iter(lambda: f.read1(65536), b""):
            if sum(map(len, buf)) < 4 << 20:
                buf.append(chunk)

    def finish(self, stop_after=None):
        try:
            self.p.wait(timeout=stop_after or self.secs)
        except subprocess.TimeoutExpired:
            self.stopped = True
            self.diag = diagnose(self.p.pid)
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.hung = True
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        for t in self.threads:
            t.join(timeout=5)
        self.out = b"".join(self.bufs[0]).decode("utf-8", "replace")
        self.err = b"".join(self.bufs[1]).decode("utf-8", "replace")
        self.rc = self.p.returncode
        EXITS.append("stopped" if self.stopped else str(self.rc))
        return self


def verdict(r, files=(), want_report=False, input_exit=None):
    """The findings of a finished run: a list of (kind, detail). `input_exit`: the exit
    code an error must have (2 where the input is all that was hostile)."""
    f = []
    if r.hung:
        return [("hang", "still running 10 s after SIGTERM; " + r.diag)]
    if r.rc == 101 or "panicked" in r.err:
        f.append(("panic", r.err[-600:]))
    if r.rc in (134, 139) or (r.rc < 0 and -r.rc in DEADLY):
        f.append(("abort", f"exit {r.rc}: {r.err[-600:]}"))
    if f:
        return f
    if r.stopped and r.rc == 1 and "interrupted by a signal" in r.err:
        pass  # our SIGTERM at the time limit: bench's documented answer
    elif r.rc not in (0, None) and r.rc > 0:
        lines = [l for l in r.err.splitlines() if l.strip() and not re.match(r"^\s*(\S+Z\s+)?(WARN|INFO|DEBUG)", l)]
        if len(lines) != 1:
            f.append(("error-lines", f"exit {r.rc}, {len(lines)} error lines: {r.err[-800:]}"))
        elif not lines[0].startswith("popgo: error: ") and not lines[0].startswith("Error: "):
            f.append(("error-form", lines[0][:400]))
        elif not (SOURCE.search(lines[0]) or any(os.path.basename(x) in lines[0] for x in files if x)):
            f.append(("error-source", lines[0][:400]))
        if r.rc not in (1, 2, 3) or (input_exit and r.rc != input_exit):
            f.append(("exit-code", f"exit {r.rc}: {lines[:1]}"))
    if r.rc == 0 and want_report:
        f += balance(r.out, r.stopped)
    if r.stopped and input_exit:
        f.append(("slow", f"bounded input still running after {r.secs} s (then exit {r.rc}); {r.diag}"))
    return f


def balance(out, stopped=False):
    """The final report's findings: rx = tx + drops, and every record of every loop read."""
    last = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        j = json.loads(last)
    except ValueError:
        m = re.search(r"rx = tx \+ drops\s+(\S+)", out)
        return [] if m and m.group(1) == "ok" else [("report", "no balanced report: " + out[-400:])]
    if j.get("schema") != "popgo.replay/1":
        return []
    tx = sum(j["tx_packets"].values())
    dr = sum(j["drops"].values())
    if j["rx_packets"] != tx + dr or not j["balanced"]:
        return [("unbalanced", f"rx {j['rx_packets']} tx {tx} drops {dr}")]
    if j["loops"] and not stopped and j["rx_packets"] != j["records"] * j["loops"]:
        return [("rx-count", f"rx {j['rx_packets']} of {j['records']} records x {j['loops']} loops")]
    return []


# ---- the fast categories: one process per run ----

SEEDS = {"seed": ("pcaps/seed.toml", "pcaps/seed.pcap"), "l3vpn": ("pcaps/l3vpn.toml", "pcaps/l3vpn.pcap"),
         "6pe": ("examples/6pe.toml", "pcaps/seed.pcap"), "lab": ("examples/lab.toml", "pcaps/seed.pcap")}


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as fh:
        return fh.read()


def write(d, name, data):
    p = os.path.join(d, name)
    with open(p, "wb") as fh:
        fh.write(data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape"))
    return p


def replay_args(rng):
    a = []
    if rng.random() < 0.3:
        a += ["--workers", str(rng.randint(1, 3))]
    if rng.random() < 0.3:
        a += ["--burst", str(rng.choice([1, 7, 32, 256]))]
    return a


def cat_config(rng, bin_, d):
    cfg, pcap = SEEDS[rng.choice(list(SEEDS))]
    text = hi.mutate_text(rng, read(cfg).decode())
    c = write(d, "c.toml", hi.raw_text_bytes(rng, text))
    cmd = [bin_, "replay", "--config", c, "--json", *replay_args(rng), os.path.join(ROOT, pcap)]
    if rng.random() < 0.2:
        sub = rng.choice(["check", "display"])
        cmd = [bin_, sub, "--config", c] + (["mpls", "lsp", "protocol", "bgp"] if sub == "display" else [])
    r = Run(cmd, d, 30).finish()
    return cmd, verdict(r, [c], want_report=cmd[1] == "replay", input_exit=2)


def seed_with(key, value):
    text = read("pcaps/seed.toml").decode()
    return text.replace("label_base = 48000", f"label_base = 48000\n{key} = {json.dumps(value)}")


def special_path(rng, d):
    """Now and then a file that is no file: a FIFO, a directory, a device, a missing one."""
    r = rng.random()
    if r < 0.03:
        os.mkfifo(os.path.join(d, "fifo"))
        return "fifo"
    if r < 0.05:
        os.mkdir(os.path.join(d, "dir"))
        return "dir"
    if r < 0.1:
        return rng.choice(["/dev/zero", "/dev/urandom", "/dev/null", "/proc/self/mem", "missing", "/"])
    return None


def cat_table(rng, bin_, d):
    t = hi.table_text(rng)
    t = hi.mutate_text(rng, t) if rng.random() < 0.85 else t
    tb = write(d, "t.txt", hi.raw_text_bytes(rng, t))
    name = special_path(rng, d) or "t.txt"
    c = write(d, "c.toml", seed_with("table", name))
    cmd = [bin_, "replay", "--config", c, "--json", os.path.join(ROOT, "pcaps/seed.pcap")]
    r = Run(cmd, d, 30).finish()
    return cmd, verdict(r, [c, tb], want_report=True, input_exit=2)


def cat_mrt(rng, bin_, d):
    m = hi.mutate_mrt(rng, hi.mrt_dump(rng))
    mp = write(d, "rib.mrt", m)
    text = seed_with("mrt", special_path(rng, d) or "rib.mrt").replace("label_base = 48000", "label_base = 16")
    text += '\n[[neighbor]]\nip = "fd00::1"\nmac = "02:00:00:00:00:0c"\nport = "to-A"\n' if rng.random() < 0.6 else ""
    if rng.random() < 0.3:
        text = text.replace('mrt = "rib.mrt"', 'mrt = "rib.mrt"\nmrt_peer = "10.0.0.1"')
    c = write(d, "c.toml", text)
    cmd = [bin_, rng.choice(["replay", "check"]), "--config", c]
    cmd += ["--json", os.path.join(ROOT, "pcaps/seed.pcap")] if cmd[1] == "replay" else []
    r = Run(cmd, d, 30).finish()
    return cmd, verdict(r, [c, mp], want_report=cmd[1] == "replay", input_exit=2)


_CAPS = {}


def captures():
    if not _CAPS:
        _CAPS.update(hi.capture_variants({"seed.pcap": read("pcaps/seed.pcap"), "l3vpn.pcap": read("pcaps/l3vpn.pcap")}))
    return _CAPS


def snapshot(dirpath):
    return {n: open(os.path.join(dirpath, n), "rb").read() for n in sorted(os.listdir(dirpath))}


def pcap_count(b):
    return len(hi.pcap_records(b)[2]) if len(b) >= 24 else -1


def cat_capture(rng, bin_, d):
    name = rng.choice(list(captures()))
    data = hi.mutate_capture(rng, captures()[name])
    cp = write(d, "in.pcap", data)
    cfg = os.path.join(ROOT, "pcaps/l3vpn.toml" if name.startswith("l3vpn") else "pcaps/seed.toml")
    cmd = [bin_, "replay", "--config", cfg, "--json", *replay_args(rng)]
    out, before, fsize = None, None, FSIZE
    if rng.random() < 0.35:
        out = os.path.join(d, "out")
        prev = Run([bin_, "replay", "--config", cfg, "--out-dir", out, "--loops", str(rng.randint(1, 3)),
                    os.path.join(ROOT, "pcaps", name.split(".pcap")[0] + ".pcap")], d, 30).finish()
        if prev.rc != 0:
            return cmd, [("setup", prev.err[-300:])]
        before = snapshot(out)
        cmd += ["--out-dir", out, "--overwrite", "--loops", str(rng.randint(1, 20))]
        if rng.random() < 0.4:
            fsize = rng.choice([24, 100, 2048, 8192])
    cmd.append(cp)
    r = Run(cmd, d, 30, fsize=fsize).finish()
    f = verdict(r, [cp, out or ""], want_report=True, input_exit=2 if fsize == FSIZE else None)
    if out and not f:
        after = snapshot(out)
        if r.rc != 0 and after != before:
            f.append(("out-dir", f"exit {r.rc} but the directory changed: {sorted(after)} vs {sorted(before)}"))
        if r.rc == 0:
            j = json.loads(r.out)
            tx = {p: n for p, n in j["tx_packets"].items() if n}
            have = {n[:-5]: pcap_count(b) for n, b in after.items()}
            if have != tx:
                f.append(("out-dir", f"files {have} but this run sent {tx}"))
    return cmd, f


NUMERIC = [
    ("replay", ["--loops", "--workers", "--burst", "--pps", "--mbps", "--speed", "--stats", "--metrics-lsps", "--cores"]),
    ("diff", ["--workers", "--burst"]),
    ("gen synth", ["--count", "--labels", "--first-label", "--size", "--v6-share", "--depth", "--seed", "--transport-label"]),
    ("bench", ["--warmup", "--duration", "--repeat", "--loops", "--workers", "--burst", "--max-regression"]),
    ("run", ["--stats-interval", "--workers", "--metrics-lsps", "--cores"]),
]
# What each command gets besides the options drawn (an option drawn replaces its default here).
NUMERIC_BASE = {"gen synth": {"--count": "2000", "--labels": "100"},
                "bench": {"--repeat": "1", "--duration": "0.1", "--warmup": "0"}}


def cat_numeric(rng, bin_, d):
    sub, opts = rng.choice(NUMERIC)
    cfg = os.path.join(ROOT, "pcaps/seed.toml")
    pcap = os.path.join(ROOT, "pcaps/seed.pcap")
    prof = write(d, "p.toml", read("examples/gate.toml").replace(b"packets = 200000", b"packets = 2000"))
    base = {"replay": ["--config", cfg, "--json", pcap], "diff": ["--config", cfg, pcap],
            "gen synth": ["--out", os.path.join(d, "g.pcap")], "bench": ["--profile", prof, "--json"],
            "run": ["--config", cfg]}[sub]
    args, chosen = [], rng.sample(opts, rng.randint(1, min(3, len(opts))))
    for o in chosen:
        v = rng.choice(hi.HOSTILE_NUMBERS) if rng.random() < 0.7 else str(rng.choice([rng.randint(-5, 70000), rng.uniform(-1, 1e6)]))
        if rng.random() < 0.5 or v.startswith("-"):
            args.append(f"{o}={v}")
        else:
            args += [o, v]
    for o, v in NUMERIC_BASE.get(sub, {}).items():
        if o not in chosen:
            args += [o, v]
    if sub == "run" and "--stats-interval" not in chosen:
        args += ["--stats-interval", "0"]
    cmd = [bin_, *sub.split(), *args, *base]
    if sub == "run":
        if os.geteuid() != 0:
            return cmd, []
        cmd = ["unshare", "--net", "--", *cmd]
    r = Run(cmd, d, 8 if sub != "gen synth" else 30).finish()
    return cmd, verdict(r, [], want_report=(sub == "replay"))


FAST = {"config": cat_config, "table": cat_table, "mrt": cat_mrt, "capture": cat_capture, "numeric": cat_numeric}


def one(cat, seed, bin_, outdir):
    rng = random.Random(seed)
    # The live categories import this file as `hostile` (a module apart from __main__).
    lists = {id(EXITS): EXITS, **({id(m.EXITS): m.EXITS} if (m := sys.modules.get("hostile")) else {})}
    for x in lists.values():
        x.clear()
    d = tempfile.mkdtemp(prefix=f"hd-{cat}-", dir=os.environ.get("HOSTILE_TMP"))
    try:
        try:
            if cat in FAST:
                results = [FAST[cat](rng, bin_, d)]
            else:
                from hostile_live import LIVE
                results = LIVE[cat](rng, bin_, d, SESSIONS[cat])
        except Exception as e:  # the harness's own failure: reported, never counted as a run
            return cat, seed, 0, 1, [], [(["harness"], [("setup", repr(e))])], []
        found = [(cmd, f) for cmd, f in results if f and f[0][0] != "setup"]
        setup = sum(1 for _, f in results if f and f[0][0] == "setup")
        if found:
            keep = os.path.join(outdir, "findings", f"{cat}-{seed}")
            shutil.copytree(d, keep, dirs_exist_ok=True, ignore=lambda dd, names: [
                n for n in names if not (os.path.isfile(os.path.join(dd, n)) or os.path.isdir(os.path.join(dd, n)))])
            with open(os.path.join(keep, "finding.json"), "w") as fh:
                json.dump([{"cmd": cmd, "findings": f} for cmd, f in found], fh, indent=1)
        return cat, seed, len(results) - setup, setup, [k for _, f in found for k, _ in f], found[:1], [e for x in lists.values() for e in x]
    finally:
        # A job that ended early (a finding, an exception of the harness) may leave its
        # target running: a replay --loops 0 would outlive the campaign.
        runs = {id(RUNS): RUNS, **({id(m.RUNS): m.RUNS} if (m := sys.modules.get("hostile")) else {})}
        for x in runs.values():
            for r in x:
                if r.p.poll() is None:
                    try:
                        os.killpg(r.p.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    r.p.wait()
            x.clear()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--secs", type=float, default=0, help="stop starting runs after this long (0: no limit)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--only", default="")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/popgo"))
    ap.add_argument("--out", default=os.path.join(ROOT, "target/hostile"))
    a = ap.parse_args()
    cats = [c for c in (a.only.split(",") if a.only else WEIGHTS)]
    bad = [c for c in cats if c not in WEIGHTS]
    if bad:
        sys.exit(f"hostile.py: error: --only: unknown category {bad[0]} (one of {', '.join(WEIGHTS)})")
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"hostile.py: error: --bin {a.bin}: not an executable (cargo build --release)")
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    # Runs per category in proportion to the weights (a live job counts its sessions).
    plan = []
    total_w = sum(WEIGHTS[c] * SESSIONS.get(c, 1) for c in cats)
    for c in cats:
        n = max(1, round(a.runs * WEIGHTS[c] / total_w))
        plan += [c] * n
    rng.shuffle(plan)
    start, stats = time.time(), {c: {"runs": 0, "setup": 0, "findings": {}, "exits": {}} for c in cats}
    log = open(os.path.join(a.out, "runs.jsonl"), "a")
    print(f"hostile: seed {a.seed}, {len(plan)} jobs, {a.jobs} at a time, bin {a.bin}", flush=True)
    with ProcessPoolExecutor(a.jobs) as ex:
        futs, it = set(), iter(enumerate(plan))
        done_jobs = 0

        def submit():
            if a.secs and time.time() - start > a.secs:
                return False
            try:
                i, c = next(it)
            except StopIteration:
                return False
            futs.add(ex.submit(one, c, a.seed * 1_000_003 + i, a.bin, a.out))
            return True
        for _ in range(a.jobs * 2):
            submit()
        while futs:
            fut = next(as_completed(futs))
            futs.discard(fut)
            cat, seed, n, setup, kinds, example, exits = fut.result()
            s = stats[cat]
            for e in exits:
                s["exits"][e] = s["exits"].get(e, 0) + 1
            s["runs"] += n
            s["setup"] += setup
            for k in kinds:
                s["findings"][k] = s["findings"].get(k, 0) + 1
            log.write(json.dumps({"cat": cat, "seed": seed, "runs": n, "findings": kinds, "exits": exits}) + "\n")
            if kinds:
                print(f"hostile: FINDING {cat} seed {seed}: {kinds} {json.dumps(example)[:600]}", flush=True)
            done_jobs += 1
            if done_jobs % 200 == 0:
                print(f"hostile: {done_jobs} jobs, {sum(x['runs'] for x in stats.values())} runs, {time.time() - start:.0f} s", flush=True)
            submit()
    total = sum(s["runs"] for s in stats.values())
    nfind = sum(sum(s["findings"].values()) for s in stats.values())
    for c in cats:
        s = stats[c]
        ex = " ".join(f"{k}:{v}" for k, v in sorted(s["exits"].items()))
        print(f"hostile: {c:8} {s['runs']:6} runs, findings {s['findings'] or 0}; processes by exit: {ex}"
              + (f"; {s['setup']} setup failures" if s["setup"] else ""))
    print(f"hostile: {total} runs in {time.time() - start:.0f} s, {nfind} findings (seed {a.seed}; {a.out}/findings)")
    sys.exit(1 if nfind else 0)


if __name__ == "__main__":
    main()
