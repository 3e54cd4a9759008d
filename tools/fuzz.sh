#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: cargo-afl with Debian's afl++.
# Targets (fuzz/src): pcap (capture reader), config (TOML), vrp (control-plane lines),
# burst (frames through the worker loop, rx = tx + drops asserted). Seed corpora are in
# fuzz/seeds/TARGET. Each target runs SECS seconds; the summary gives executions per
# second, coverage (bitmap) and crashes; exit 1 if any target crashed.
#   tools/fuzz.sh [SECS] [TARGET...]       (default 600 s, all targets; OUT=dir)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(pcap config vrp burst)
OUT=$(realpath -m "${OUT:-${CARGO_TARGET_DIR:-target}/fuzz}")
bash tools/setup.sh
if ! command -v afl-fuzz >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi
command -v cargo-afl >/dev/null || cargo install --quiet cargo-afl --version 0.18.2
# cargo-afl builds its compiler runtime once per machine.
cargo afl config --build >/dev/null 2>&1 || true
(cd fuzz && cargo afl build --release --quiet)
mkdir -p "$OUT"
export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
crashed=0
for t in "${TARGETS[@]}"; do
  rm -rf "${OUT:?}/$t"
  echo "fuzz: $t for ${SECS}s"
  (cd fuzz && cargo afl fuzz -i "seeds/$t" -o "$OUT/$t" -V "$SECS" "target/release/$t") >"$OUT/$t.log" 2>&1 || {
    echo "fuzz: $t: afl-fuzz failed; see $OUT/$t.log" >&2
    tail -n 20 "$OUT/$t.log" >&2
    exit 1
  }
  st="$OUT/$t/default/fuzzer_stats"
  get() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$st"; }
  crashes=$(get saved_crashes)
  echo "fuzz: $t: execs $(get execs_done), $(get execs_per_sec) exec/s, coverage $(get bitmap_cvg), corpus $(get corpus_count), crashes $crashes, hangs $(get saved_hangs)"
  [ "${crashes:-0}" = "0" ] || crashed=1
done
exit "$crashed"
