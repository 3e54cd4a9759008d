#!/usr/bin/env python3
"""Module layering check: no import cycles between the top-level modules of each crate,
and nothing outside the command line imports `cli`.

For every crate (core/src, src) it collects which top-level modules each module's
files name (`crate::m`, `super::m` from a top-level file, `popgo::m` in the binary),
then reports every cycle. Exits 1 when it finds one. Test modules in their own files
(`tests.rs`, or files under a `tests/` directory) are left out: a test may check a
module against a layer above it (e.g. the XDP offload program against
`process_burst`) without that being a dependency of the library. Inline
`#[cfg(test)]` blocks are not separated: keep such tests in test files.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def top_module(crate_src, path):
    rel = os.path.relpath(path, crate_src)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def graph(crate_src):
    g = {}
    ref = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
    for dirpath, _, files in os.walk(crate_src):
        for f in files:
            if not f.endswith(".rs") or f == "tests.rs" or os.sep + "tests" + os.sep in os.path.join(dirpath, ""):
                continue
            p = os.path.join(dirpath, f)
            m = top_module(crate_src, p)
            if m in ("lib", "main"):
                continue
            text = open(p, encoding="utf-8").read()
            # Comments and doc comments do not import anything.
            code = "\n".join(line.split("//")[0] for line in text.splitlines())
            for dep in ref.findall(code):
                if dep != m:
                    g.setdefault(m, set()).add(dep)
            g.setdefault(m, set())
    return g


def cycles(g):
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(g.get(n, ())):
            if d not in g:
                continue
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(g):
        if n not in state:
            visit(n)
    return found


def main():
    bad = 0
    for crate in ("core/src", "src"):
        g = graph(os.path.join(ROOT, crate))
        for c in cycles(g):
            print(f"layers: {crate}: import cycle: {' -> '.join(c)}")
            bad += 1
        if "cli" in g and any("cli" in deps for deps in g.values()):
            users = sorted(m for m, deps in g.items() if "cli" in deps)
            print(f"layers: {crate}: modules import cli: {', '.join(users)}")
            bad += 1
    if bad == 0:
        print("layers: no import cycles between top-level modules; nothing imports cli")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
