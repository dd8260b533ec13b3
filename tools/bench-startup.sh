#!/usr/bin/env bash
# Start-up benchmark: time to READY with 100,000 captures against an empty data directory,
# measured alternately (target: ≤ 3×), and when the recovery after READY is done.
# See examples/bench_startup.rs.
#   tools/bench-startup.sh [--captures N] [--runs N] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin selfie-kiosk --example bench_startup
exec target/release/examples/bench_startup --bin target/release/selfie-kiosk "$@"
