#!/usr/bin/env bash
# The main job: replay the seed scenario (pcaps/) with POPGO and without, and show the
# BGP LSP table, the reports and the diff. Usage: tools/demo.sh [extra replay args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cargo build --release --quiet
P="${CARGO_TARGET_DIR:-target}/release/popgo"
OUT=${OUT:-out}
rm -rf "$OUT" && mkdir -p "$OUT"
sed 's/^pop_go = true/pop_go = false/' pcaps/seed.toml > "$OUT/seed-pop.toml"

echo "== display mpls lsp protocol bgp (apply-label per-route pop-go)"
$P display --config pcaps/seed.toml mpls lsp protocol bgp
echo
echo "== replay pcaps/seed.pcap with POPGO"
$P replay --config pcaps/seed.toml --in-port to-D --out-dir "$OUT/popgo" "$@" pcaps/seed.pcap
echo
echo "== display mpls lsp protocol bgp (pop_go = false)"
$P display --config "$OUT/seed-pop.toml" mpls lsp protocol bgp
echo
echo "== replay pcaps/seed.pcap without POPGO (POP + longest-match lookup)"
$P replay --config "$OUT/seed-pop.toml" --in-port to-D --out-dir "$OUT/pop" "$@" pcaps/seed.pcap
echo
echo "== diff: packets that leave through a different port without POPGO"
$P diff --config pcaps/seed.toml pcaps/seed.pcap
if command -v tshark >/dev/null; then
  for d in popgo pop; do
    for f in "$OUT/$d"/*.pcap; do
      echo
      echo "== $f (tshark)"
      tshark -r "$f" -o ip.check_checksum:TRUE -T fields -E header=y -e eth.dst -e ip.dst -e ip.ttl -e ip.checksum.status 2>/dev/null
    done
  done
fi
