#!/usr/bin/env bash
# popgo replay against the yardstick (../shared/bench/limit): same pcap, same core, the
# build users get (`cargo build --release`: fat LTO, 1 codegen unit; the yardstick also
# aborts on panic, popgo unwinds), interleaved runs, medians and ratio.
#   tools/vs-limit.sh [RUNS]        (env: COUNT, LABELS, LOOPS, CORE, DIR, LIMIT, BEFORE)
# Needs the yardstick's source (a bare POPGO loop kept outside this repository, by
# default at ../shared/bench/limit; LIMIT=DIR points elsewhere). BEFORE=BINARY adds an
# older popgo build to the same interleaved runs (1 worker), for before/after ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
# LOOPS: 20 passes (40M packets) make each timed window 0.2-0.5 s; with 5, a 2-worker
# replay lasts about 60 ms and the workers' start-up skew shows in its rate.
RUNS=${1:-5}; COUNT=${COUNT:-2000000}; LABELS=${LABELS:-100000}; LOOPS=${LOOPS:-20}
CORE=${CORE:-$(( $(nproc) - 1 ))}; DIR=${DIR:-/tmp/popgo-vs-limit}
LIMIT=${LIMIT:-../shared/bench/limit}
[ -f "$LIMIT/Cargo.toml" ] || { echo "vs-limit: the yardstick is not at $LIMIT (it is not part of this repository; set LIMIT=DIR)" >&2; exit 2; }
BEFORE=${BEFORE:-}
mkdir -p "$DIR"
cargo build --quiet --release
CARGO_TARGET_DIR="$DIR/limit-target" cargo build --quiet --release --manifest-path "$LIMIT/Cargo.toml"
Y="$DIR/limit-target/release/popgo-limit"
P="${CARGO_TARGET_DIR:-target}/release/popgo"
[ -f "$DIR/b.pcap" ] || "$Y" --make-pcap "$DIR/b.pcap" --make-config "$DIR/b.toml" --count "$COUNT" --labels "$LABELS" >/dev/null
lim=(); one=(); two=(); old=()
mpps() { python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["mpps"])'; }
for i in $(seq "$RUNS"); do
  lim+=("$(taskset -c "$CORE" "$Y" --pcap "$DIR/b.pcap" --loops "$LOOPS" | awk '/^limit_mpps/{print $2}')")
  one+=("$("$P" replay --config "$DIR/b.toml" --loops "$LOOPS" --cores "$CORE" --json "$DIR/b.pcap" | mpps)")
  if [ -n "$BEFORE" ]; then
    old+=("$("$BEFORE" replay --config "$DIR/b.toml" --loops "$LOOPS" --cores "$CORE" --json "$DIR/b.pcap" | mpps)")
  fi
  if [ "$(nproc)" -ge 2 ]; then
    two+=("$("$P" replay --config "$DIR/b.toml" --loops "$LOOPS" --workers 2 --cores 0,1 --json "$DIR/b.pcap" | mpps)")
  fi
  echo "run $i: limit ${lim[-1]} Mpps, popgo 1w ${one[-1]} Mpps${two:+, popgo 2w ${two[-1]} Mpps}${old:+, before 1w ${old[-1]} Mpps}"
done
python3 - "${lim[*]}" "${one[*]}" "${two[*]:-}" "${old[*]:-}" <<'PY'
import statistics as st, sys
lim, one = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()]
two = [float(x) for x in sys.argv[3].split()] if sys.argv[3].strip() else []
old = [float(x) for x in sys.argv[4].split()] if sys.argv[4].strip() else []
ml, m1 = st.median(lim), st.median(one)
print(f"median: limit {ml:.2f} Mpps, popgo 1 worker {m1:.2f} Mpps, ratio {m1/ml:.2f} (target >= 0.80)")
if two:
    m2 = st.median(two)
    print(f"median: popgo 2 workers {m2:.2f} Mpps, scaling {m2/m1:.2f}x (target >= 1.70)")
if old:
    mo = st.median(old)
    print(f"median: before {mo:.2f} Mpps, popgo 1 worker {m1:.2f} Mpps, after/before {m1/mo:.2f}")
PY
