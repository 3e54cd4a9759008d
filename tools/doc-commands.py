#!/usr/bin/env python3
"""Runs the commands the documentation shows, as shown, and reports what fails.

Commands come from the fenced ```sh blocks (a block is one shell session: its lines run
in order, `&` jobs in the background, `kill %1` stops one and collects its exit code),
the `$ ` lines of ```console blocks (the output shown under them is compared line by
line, skipping timings and lines that differ from machine to machine), and the inline
`popgo ...` and `tools/...` examples in the prose. Synopses with placeholders (FILE, N,
[OPTIONAL] ...), builds, package installs, the suite and long measurement tools are
listed as skipped with the reason.

Everything runs in a scratch copy of the repository (target/doc-commands/, the files
git knows, target/ linked), with `popgo` and `popgo-lab` on PATH from target/release.
As root, each block runs in private mount and network namespaces with their own /tmp
and /run (so /tmp/pop.toml, /run/popgo/control.sock and the veth lab's namespaces are
private, no user file is touched and no packet leaves); without root, blocks that need
root or namespaces are skipped and /tmp/ in a command is replaced by the scratch copy's
tmp/. One line per command: ok, FAIL (with the exit code and output) or skip (reason);
exit 1 if any failed.

  tools/doc-commands.py [--bin-dir DIR] [--only SUBSTRING] [FILE...]
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", *sorted(glob.glob("docs/*.md", root_dir=ROOT)), "pcaps/README.md", "examples/README.md"]
PLACEHOLDER = re.compile(r"\b(FILE|DIR|PATH|N|L|SECS|SHELL|RUNS|OUT_DIR|INPUT|ADDR|PORT|NAME|LIST|X)\b|\[|\.\.\.")
SKIP = [
    (re.compile(r"tools/test\.sh"), "the whole suite (CI runs it; it runs tools/demo.sh too)"),
    (re.compile(r"tools/demo\.sh"), "builds the release binary and installs packages (tools/test.sh runs it)"),
    (re.compile(r"^cargo\b|tools/(setup|deb|make-pcaps)\.sh"), "a build or package step"),
    (re.compile(r"tools/(bench-gate|bench-noise|vs-testpmd|vs-limit|instr-budget|instr-stack)\.sh|"
                r"tools/(scale|soak|bgp-scale|churn-bench|hostile|commit-instr)\.py"),
     "a measurement tool or campaign that runs for minutes"),
    (re.compile(r"^(sudo |systemctl|apt|dpkg)"), "changes the system (service, packages)"),
    (re.compile(r"/etc/popgo/"), "the installed service's command line (the package's /etc/popgo)"),
    (re.compile(r"^popgo ctl\b(?!.*--socket)(?!.*;)"), "needs a running instance with --control"),
]
# An inline span is an example to run if it names a file or is one of these; otherwise it
# names a command or an option in the prose (`popgo replay --control`).
RUNNABLE_INLINE = re.compile(r"^popgo(-lab)? (--help|--version|man|completions \w+|ctl)|[\w.-]+/[\w.-]|\.(toml|pcap|json)\b")
NEEDS_ROOT = re.compile(r"ip netns|tools/lab\.sh|popgo run\b|popgo-lab (send|redirect)")
VOLATILE = re.compile(r"elapsed|Mpps|Gbit/s|latency|ns/pkt|noise|machine:|popgo 0\.|rep |^\s+\d+\s+[\d.]+\s+[\d.]+|"
                      r"per (burst|packet)|median|core\(s\)|commit ok|grace|\.\.\.")


def extract(path):
    """[(line, kind, [(line, command, comment)], shown_output)] of one Markdown file."""
    items, lines = [], open(os.path.join(ROOT, path), encoding="utf-8").read().split("\n")
    i, fence = 0, None
    while i < len(lines):
        l = lines[i]
        if l.startswith("```"):
            lang, start, body = l[3:].strip(), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append((i + 1, lines[i]))
                i += 1
            if lang in ("sh", "bash"):
                cmds, cont = [], ""
                prose = next((lines[k] for k in range(start - 2, max(start - 5, -1), -1) if lines[k].strip()), "")
                pre = re.search(r"[Aa]fter `([^`]+)`", prose)
                if pre:  # "By hand, after `tools/lab.sh up`:" runs that first
                    cmds.append((start - 1, ("bash " if pre.group(1).startswith("tools/") else "") + pre.group(1), "from the prose"))
                for n, t in body:
                    if t.lstrip().startswith("#"):
                        if cmds:
                            cmds[-1] = (cmds[-1][0], cmds[-1][1], cmds[-1][2] + " " + t.strip())
                        continue
                    if cont:
                        t, cont = cont + t, ""
                    if t.endswith("\\"):
                        cont = t[:-1]
                        continue
                    m = re.match(r"(.*?)\s+#\s(.*)$", t)
                    cmd, comment = (m.group(1), m.group(2)) if m else (t, "")
                    if cmd.strip():
                        cmds.append((n, cmd.strip(), comment.strip()))
                items.append((start, "block", cmds, None))
            elif lang == "console":
                cur = None
                for n, t in body:
                    if t.startswith("$ "):
                        cur = (n, "console", [(n, t[2:].strip(), "")], [])
                        items.append(cur)
                    elif cur:
                        cur[3].append(t)
            i += 1
            continue
        for m in re.finditer(r"`((?:bash |python3 )?(?:popgo|tools/)[^`]*)`", l):
            cmd = m.group(1)
            if re.match(r"popgo(-lab)? ?(\w+)?$", cmd) and not cmd.startswith("popgo --") and cmd != "popgo man":
                continue  # a command's name, not an example
            if not re.match(r"(bash |python3 )?(popgo(-lab)? |tools/\S+)", cmd) or cmd.startswith(("popgo: ", "popgo.", "popgo_")):
                continue
            items.append((i + 1, "inline", [(i + 1, cmd, "")], None))
        i += 1
    return items


def skip_reason(cmd, root, inline=False):
    if inline and (cmd.startswith(("tools/", "bash tools/", "python3 tools/")) or not RUNNABLE_INLINE.search(cmd)):
        if not PLACEHOLDER.search(cmd):
            return "names a tool, command or option in the prose, not a complete command"
    for rx, why in SKIP:
        if not inline and rx.pattern.startswith("^popgo ctl"):
            continue
        if rx.search(cmd):
            return why
    if PLACEHOLDER.search(re.sub(r"'[^']*'|\"[^\"]*\"", "", cmd)):
        return "a synopsis with placeholders"
    if NEEDS_ROOT.search(cmd) and not root:
        return "needs root and network namespaces"
    return None


def script_of(cmds):
    """A bash session that runs the commands in order and reports each exit code."""
    out = ["cd \"$SCRATCH\"", "r() { echo \"@@rc $1 $2\" >&2; }"]
    for n, cmd, _ in cmds:
        if cmd.endswith("&"):
            out.append(f"{cmd}\nsleep 1.5")  # as a person would: the next line a moment later
        elif re.match(r"kill %(\d)$", cmd):
            out.append(f"{cmd}; wait {cmd[5:]}; r {n} $?")
        else:
            out.append(f"{cmd}\nr {n} $?")
    out.append("kill $(jobs -p) 2>/dev/null; wait")
    return "\n".join(out) + "\n"


def run_block(cmds, scratch, env, root, secs):
    """Runs one block as a bash session in the page's scratch copy; as root inside private
    mount and network namespaces whose /tmp and /run are the page's own directories."""
    text = script_of(cmds)
    if not root:
        text = text.replace("/tmp/", os.path.join(scratch, "tmp") + "/")
    path = os.path.join(scratch, "..", os.path.basename(scratch) + ".sh")
    with open(path, "w") as fh:
        fh.write(text)
    if root:
        priv = " && ".join(f"mount --bind {scratch}-{d} /{d}" for d in ("tmp", "run"))
        inner = f"mount --make-rprivate / && {priv} && ip link set lo up && exec bash {path}"
        argv = ["unshare", "--mount", "--net", "--fork", "--", "bash", "-c", inner]
    else:
        argv = ["bash", path]
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=secs, errors="replace")
        out, err, hung = p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:
        out, err, hung = (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace"), True
    rcs = {int(n): int(rc) for n, rc in re.findall(r"@@rc (\d+) (\d+)", err)}
    err = re.sub(r"@@rc \d+ \d+\n", "", err)
    return rcs, out, err, hung


def compare(shown, out):
    """Shown output lines (stable ones) missing from the real output."""
    got = {re.sub(r"\s+", " ", l.strip()) for l in out.splitlines()}
    return [l for l in shown if l.strip() and not VOLATILE.search(l) and re.sub(r"\s+", " ", l.strip()) not in got]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target/release"))
    ap.add_argument("--only", default="")
    ap.add_argument("files", nargs="*", default=DOCS)
    a = ap.parse_args()
    for b in ("popgo", "popgo-lab"):
        if not os.access(os.path.join(a.bin_dir, b), os.X_OK):
            sys.exit(f"doc-commands.py: error: --bin-dir {a.bin_dir}: no {b} (cargo build --release)")
    root = os.geteuid() == 0 and shutil.which("unshare") is not None
    work = os.path.join(ROOT, "target", "doc-commands")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ)
    bindir = tempfile.mkdtemp(prefix="bin-", dir=work)
    for b in ("popgo", "popgo-lab"):
        os.symlink(os.path.join(os.path.abspath(a.bin_dir), b), os.path.join(bindir, b))
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    counts = {"ok": 0, "FAIL": 0, "skip": 0}
    for doc in a.files:
        # One scratch copy, /tmp and /run per page: its blocks are one procedure.
        scratch = tempfile.mkdtemp(prefix="s-", dir=work)
        for f in files:
            if f and os.path.isfile(os.path.join(ROOT, f)):
                os.makedirs(os.path.dirname(os.path.join(scratch, f)) or scratch, exist_ok=True)
                shutil.copy2(os.path.join(ROOT, f), os.path.join(scratch, f))
        os.symlink(os.path.join(ROOT, "target"), os.path.join(scratch, "target"))
        for d in ("tmp", "run"):
            os.makedirs(f"{scratch}-{d}", exist_ok=True)
        os.makedirs(os.path.join(scratch, "tmp"), exist_ok=True)
        env["SCRATCH"] = scratch
        for line, kind, cmds, shown in extract(doc):
            if a.only and not any(a.only in c for _, c, _ in cmds):
                continue
            reasons = [skip_reason(c, root, kind == "inline") for _, c, _ in cmds]
            if any(reasons):
                why = next(r for r in reasons if r)
                for (n, c, _), r in zip(cmds, reasons):
                    print(f"skip {doc}:{n}: {c}  ({r or 'in a block with a skipped command: ' + why})")
                    counts["skip"] += 1
                continue
            rcs, out, err, hung = run_block(cmds, scratch, env, root, 300)
            for n, c, comment in cmds:
                want = {0} | {int(x) for x in re.findall(r"exit (\d+)", comment)}
                rc = rcs.get(n)
                bad = None
                if hung:
                    bad = "did not end in 300 s"
                elif c.endswith("&"):
                    pass
                elif rc is None:
                    bad = "did not run (an earlier line ended the session)"
                elif rc not in want:
                    bad = f"exit {rc}"
                if kind == "console" and not bad:
                    missing = compare(shown, out)
                    if missing:
                        bad = "output differs from the docs: missing " + " | ".join(m.strip() for m in missing[:4])
                if bad:
                    counts["FAIL"] += 1
                    print(f"FAIL {doc}:{n}: {c}: {bad}\n  stdout: {out[-600:]!r}\n  stderr: {err[-600:]!r}")
                else:
                    counts["ok"] += 1
                    print(f"ok   {doc}:{n}: {c}")
        for d in (scratch, f"{scratch}-tmp", f"{scratch}-run", f"{scratch}.sh"):
            shutil.rmtree(d, ignore_errors=True) if os.path.isdir(d) else os.path.exists(d) and os.unlink(d)
    shutil.rmtree(bindir, ignore_errors=True)
    print(f"doc-commands: {counts['ok']} ok, {counts['FAIL']} failed, {counts['skip']} skipped"
          f"{'' if root else ' (not root: namespace blocks skipped)'}")
    sys.exit(1 if counts["FAIL"] else 0)


if __name__ == "__main__":
    main()
