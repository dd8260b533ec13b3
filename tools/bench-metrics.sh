#!/usr/bin/env bash
# /metrics benchmark: the daemon's CPU time per scrape on a realistic state (captures in
# the sync backlog, every worker running, a spread of routes requested), and the share of
# one core that is at one scrape every 15 s (target < 1 %). See examples/bench_metrics.rs.
#
#   tools/bench-metrics.sh [--captures 2000] [--scrapes 1000] [--bin PATH]
#
# The last line of the output is a JSON summary.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build --release --bin selfie-kiosk --example bench_metrics

exec "$target_dir/release/examples/bench_metrics" --bin "$target_dir/release/selfie-kiosk" "$@"
