#!/usr/bin/env bash
# Retention cleanup benchmark: 100,000 expired captures (rows + files) removed by
# POST /admin/cleanup while a client measures the API's latency. See examples/bench_cleanup.rs.
#   tools/bench-cleanup.sh [--rows N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin selfie-kiosk --example bench_cleanup
exec target/release/examples/bench_cleanup --bin target/release/selfie-kiosk "$@"
