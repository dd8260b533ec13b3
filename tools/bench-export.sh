#!/usr/bin/env bash
# Excel export benchmark: 100,000 captures generated straight into a fresh catalog, the
# release daemon started on it, GET /admin/export/excel timed (3 runs) while the daemon's
# VmRSS is sampled every 20 ms. Targets: ≤ 3 s per export, RSS growth ≤ 50 MB over idle.
# See examples/bench_export.rs.
#
#   tools/bench-export.sh [--rows 100000] [--runs 3] [--dir DIR] [--keep] [--no-verify] [--bin PATH]
#
# Data lives in a fresh temp dir (bench-export-XXXXXX) under --dir (default $TMPDIR or
# /tmp), removed at the end unless --keep. The last line of the output is a JSON summary;
# the exit status is 1 when a target is missed.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build --release --bin selfie-kiosk --example bench_export

exec "$target_dir/release/examples/bench_export" --bin "$target_dir/release/selfie-kiosk" "$@"
