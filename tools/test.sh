#!/usr/bin/env bash
# The whole test suite: system packages, format, lints, unit + integration tests,
# bench compilation, and a smoke run of the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Layering: no import cycles between top-level modules, nothing imports the CLI.
python3 tools/layers.py
LOG=$(mktemp)
cargo test --workspace --all-targets --quiet 2>&1 | tee -a "$LOG"
cargo test --workspace --doc --quiet 2>&1 | tee -a "$LOG"
# Model check of the QSBR publication/reclamation protocol (qsbr) with loom.
if [ -z "${POPGO_SKIP_LOOM:-}" ]; then
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom" RUSTFLAGS="--cfg loom" \
    cargo test --release --quiet -p popgo-core --lib loom 2>&1 | tee -a "$LOG"
fi
cargo bench --no-run --quiet
OUT=$(mktemp -d) bash tools/demo.sh >/dev/null
# The Debian package with the systemd unit (systemd-analyze verify inside).
DEB_OUT=$(mktemp -d)
bash tools/deb.sh "$DEB_OUT" >/dev/null
rm -rf "$DEB_OUT"
echo "test.sh: all checks passed (fmt, clippy, layers, tests, loom, benches build, demo, deb)"
# One closing line over every test binary run above.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$LOG"
rm -f "$LOG"
