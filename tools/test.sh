#!/usr/bin/env bash
# The whole test suite: system packages, format, lints, unit + integration tests,
# bench compilation, and a smoke run of the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets --quiet 2>&1 | tee /tmp/popgo-test.log
cargo test --doc --quiet
# Model check of the QSBR publication/reclamation protocol (ilm::swap) with loom.
if [ -z "${POPGO_SKIP_LOOM:-}" ]; then
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom" RUSTFLAGS="--cfg loom" cargo test --release --quiet --lib loom
fi
cargo bench --no-run --quiet
OUT=$(mktemp -d) bash tools/demo.sh >/dev/null
echo "test.sh: all checks passed"
