#!/usr/bin/env bash
# Regenerates the shipped fixtures and, optionally, synthetic benchmark inputs.
#   tools/make-pcaps.sh                 pcaps/seed.pcap (deterministic; tests check it)
#   tools/make-pcaps.sh bench DIR       DIR/bench-64.pcap + DIR/bench.toml: 2M 64-byte
#                                       frames, labels uniform over 100,000 ILM entries
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
P="${CARGO_TARGET_DIR:-target}/release/popgo"
case "${1:-seed}" in
  seed) $P gen seed --out pcaps/seed.pcap --describe ;;
  bench)
    D=${2:-/tmp/popgo-bench}; mkdir -p "$D"
    $P gen synth --out "$D/bench-64.pcap" --count "${COUNT:-2000000}" --labels "${LABELS:-100000}" \
      --size "${SIZE:-64}" --dist "${DIST:-uniform}" --v6-share "${V6:-0}" --depth "${DEPTH:-1}" \
      --config-out "$D/bench.toml" ;;
  *) echo "usage: $0 [seed | bench DIR]" >&2; exit 2 ;;
esac
