#!/usr/bin/env bash
# Capture-path benchmark: POST /api/capture (base64 JSON and raw image/jpeg, 1 and 4
# clients) against the reference "write + fsync + rename + fsync dir" on the same disk,
# plus the daemon's RSS idle and under load. See examples/bench_capture.rs.
#
#   tools/bench-capture.sh [--requests 200] [--ref-iters N] [--dir DIR] [--keep] [--bin PATH]
#
# Data lives in a fresh temp dir (bench-capture-XXXXXX) under --dir (default $TMPDIR or
# /tmp): the reference files and the daemon's data dir are both there, so both hit the
# same disk. Point --dir at the disk you care about (not a tmpfs). The temp dir is removed
# at the end unless --keep. The last line of the output is a JSON summary.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build --release --bin selfie-kiosk --example bench_capture

echo "bench-capture: data in a temp dir under ${TMPDIR:-/tmp} unless --dir is given (see 'bench root' below)"
exec "$target_dir/release/examples/bench_capture" --bin "$target_dir/release/selfie-kiosk" "$@"
