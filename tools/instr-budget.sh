#!/usr/bin/env bash
# Instruction budget of replay's worker thread against the yardstick (a bare POPGO loop
# kept outside this repository, by default at ../shared/bench/limit; LIMIT=DIR points
# elsewhere), counted with callgrind: deterministic, so it means something on a busy
# machine where wall-clock rates do not.
#   tools/instr-budget.sh        (env: COUNT, LABELS, LOOPS, DIR, LIMIT, POPGO, BUDGET)
# Both run the same synthetic pcap (COUNT 64-byte frames, LABELS labels):
#   popgo      `replay --loops LOOPS`; the worker thread's instructions / (COUNT * LOOPS);
#   yardstick  (instructions with --loops 3 - with --loops 1) / (2 * COUNT), --repeat 1,
#              so its setup and indexing cancel out.
# POPGO=BINARY measures that build instead of building this tree. Prints
#   popgo worker: N instr/pkt, yardstick: M instr/pkt, ratio R (budget <= 1.15)
# Exit status: 0 within the budget, 1 over it, 2 when the yardstick or valgrind is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-200000}; LABELS=${LABELS:-100000}; LOOPS=${LOOPS:-5}; BUDGET=${BUDGET:-1.15}
DIR=${DIR:-/tmp/popgo-instr-budget}; LIMIT=${LIMIT:-../shared/bench/limit}
if [ ! -f "$LIMIT/Cargo.toml" ]; then
  echo "instr-budget: the yardstick source is not at $LIMIT (it is not part of this repository; set LIMIT=DIR)" >&2
  exit 2
fi
command -v valgrind >/dev/null || { echo "instr-budget: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$DIR"
if [ -n "${POPGO:-}" ]; then
  P=$POPGO
else
  cargo build --quiet --release
  P="${CARGO_TARGET_DIR:-target}/release/popgo"
fi
CARGO_TARGET_DIR="$DIR/limit-target" cargo build --quiet --release --manifest-path "$LIMIT/Cargo.toml"
Y="$DIR/limit-target/release/popgo-limit"
"$P" gen synth --out "$DIR/b.pcap" --count "$COUNT" --labels "$LABELS" --config-out "$DIR/b.toml" >/dev/null

# popgo: one callgrind file per thread; the worker's is the one that ran the worker loop.
rm -f "$DIR"/popgo.cg*
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$DIR/popgo.cg" \
  "$P" replay --config "$DIR/b.toml" --loops "$LOOPS" --json "$DIR/b.pcap" >"$DIR/popgo.json" 2>"$DIR/popgo.err"
worker=$(grep -l 'WorkerLoop' "$DIR"/popgo.cg-* | head -n 1)
[ -n "$worker" ] || { echo "instr-budget: no worker thread in the callgrind output ($DIR)" >&2; exit 1; }
summary() { awk '/^summary:/ { print $2 }' "$1"; }
pw=$(summary "$worker")

# Yardstick: the difference of two runs is two passes over the pcap.
for l in 1 3; do
  valgrind --tool=callgrind --callgrind-out-file="$DIR/limit-$l.cg" \
    "$Y" --pcap "$DIR/b.pcap" --loops "$l" --repeat 1 >/dev/null 2>"$DIR/limit-$l.err"
done
y1=$(summary "$DIR/limit-1.cg"); y3=$(summary "$DIR/limit-3.cg")

python3 - "$pw" "$COUNT" "$LOOPS" "$y1" "$y3" "$BUDGET" <<'PY'
import sys
pw, count, loops, y1, y3, budget = (float(x) for x in sys.argv[1:])
p = pw / (count * loops)
y = (y3 - y1) / (2 * count)
r = p / y
print(f"popgo worker: {p:.1f} instr/pkt, yardstick: {y:.1f} instr/pkt, ratio {r:.3f} (budget <= {budget:g})")
sys.exit(0 if r <= budget else 1)
PY
