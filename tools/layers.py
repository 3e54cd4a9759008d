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

It also checks cycles between files (modules) inside each crate, e.g. `io/xdp/attach.rs`
and `offload/mod.rs` must not use each other: paths through `crate::`, `super::` and
`self::` (and `use` groups) resolve to the longest module prefix that is a file. A
file's uses of the modules that contain it (its parent `mod.rs` and above) are left
out: a child uses its parent's items while the parent declares and re-exports it.
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


def module_files(crate_src):
    out = {}
    for dirpath, _, files in os.walk(crate_src):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(dirpath, f)
                rel = os.path.relpath(p, crate_src)[:-3].split(os.sep)
                if rel[-1] == "mod":
                    rel = rel[:-1]
                if rel in (["lib"], ["main"]):
                    rel = []
                out[tuple(rel)] = p
    return out


def file_graph(crate_src):
    mods = module_files(crate_src)
    path = re.compile(r"\b(crate|super|self)((?:::[a-z_][a-z0-9_]*)+)")
    group = re.compile(r"\b(crate|super|self)((?:::[a-z_][a-z0-9_]*)*)::\{([^}]*)\}")
    g = {}
    for m, p in mods.items():
        if os.path.basename(p) == "tests.rs" or os.sep + "tests" + os.sep in p:
            continue
        code = "\n".join(line.split("//")[0] for line in open(p, encoding="utf-8").read().splitlines())
        base = list(m) if os.path.basename(p) in ("mod.rs", "lib.rs", "main.rs") else list(m[:-1])
        deps = set()

        def add(root, rest):
            parts = [x for x in rest.split("::") if x]
            full = parts if root == "crate" else base + parts if root == "self" else base[:-1] + parts
            for k in range(len(full), 0, -1):
                r = tuple(full[:k])
                if r in mods:
                    if r != m and m[: len(r)] != r:
                        deps.add(r)
                    return

        for root, rest, inner in group.findall(code):
            for item in inner.split(","):
                item = item.strip().split(" as ")[0]
                add(root, rest + "::" + item if re.match(r"[a-z_]", item) and item != "self" else rest)
        for root, rest in path.findall(code):
            add(root, rest)
        g["::".join(m)] = {"::".join(d) for d in deps}
    return g


def main():
    bad = 0
    for crate in ("core/src", "src"):
        g = graph(os.path.join(ROOT, crate))
        for c in cycles(g):
            print(f"layers: {crate}: import cycle: {' -> '.join(c)}")
            bad += 1
        for c in cycles(file_graph(os.path.join(ROOT, crate))):
            print(f"layers: {crate}: import cycle between files: {' -> '.join(c)}")
            bad += 1
        if "cli" in g and any("cli" in deps for deps in g.values()):
            users = sorted(m for m, deps in g.items() if "cli" in deps)
            print(f"layers: {crate}: modules import cli: {', '.join(users)}")
            bad += 1
    if bad == 0:
        print("layers: no import cycles between top-level modules or between files; nothing imports cli")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
