#!/usr/bin/env bash
# Instructions per packet of replay's worker thread (callgrind: deterministic, so it
# means something on a busy machine) for one POPGO label and for the egress's own
# transport label on top of it (L3VPN without PHP), on the same 100k labels:
#   tools/instr-stack.sh          (env: POPGO, COUNT, LABELS, LOOPS, DIR)
# Prints one line per case: name, rx, tx, instr/pkt, and the ratio of the two.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-200000}; LABELS=${LABELS:-100000}; LOOPS=${LOOPS:-5}; DIR=${DIR:-/tmp/popgo-instr-stack}
command -v valgrind >/dev/null || { echo "instr-stack: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
if [ -n "${POPGO:-}" ]; then P=$POPGO; else cargo build --quiet --release; P="${CARGO_TARGET_DIR:-target}/release/popgo"; fi
mkdir -p "$DIR"
"$P" gen synth --out "$DIR/one.pcap" --count "$COUNT" --labels "$LABELS" --first-label 100 --config-out "$DIR/one.toml" >/dev/null
"$P" gen synth --out "$DIR/two.pcap" --count "$COUNT" --labels "$LABELS" --first-label 100 --transport-label 18 \
  --config-out "$DIR/two.toml" >/dev/null
for k in one two; do
  rm -f "$DIR/$k".cg*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$DIR/$k.cg" \
    "$P" replay --config "$DIR/$k.toml" --loops "$LOOPS" --json "$DIR/$k.pcap" >"$DIR/$k.json" 2>"$DIR/$k.err"
  w=$(grep -l WorkerLoop "$DIR/$k".cg-* | head -n 1)
  awk '/^summary:/ { print $2 }' "$w" >"$DIR/$k.instr"
done
python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
per = {}
for k in ("one", "two"):
    j = json.load(open(f"{d}/{k}.json"))
    n = int(open(f"{d}/{k}.instr").read())
    per[k] = n / j["rx_packets"]
    print(f"{k}: rx {j['rx_packets']}, tx {sum(j['tx_packets'].values())}, {per[k]:.1f} instr/pkt")
print(f"transport + POPGO / one label: {per['two'] / per['one']:.3f}")
PY
