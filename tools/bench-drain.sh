#!/usr/bin/env bash
# Sync drain benchmark: the daemon collects captures while its WebDAV remote is down, then
# a real nginx comes up and we time the backlog drain; the reference is the same files
# uploaded by `xargs -P 4 curl -T`. See examples/bench_drain.rs.
#
#   tools/bench-drain.sh [--count 1000] [--pg-url postgresql://...] [--images 8]
#                        [--parallel 4] [--timeout 600] [--dir DIR] [--keep] [--bin PATH]
#
# Needs nginx with the WebDAV module (nginx-light) and curl; installs nothing itself.
# Data (daemon data dir, nginx root/logs/config, reference files) lives in a fresh temp dir
# (bench-drain-XXXXXX) under --dir (default $TMPDIR or /tmp), removed at the end unless
# --keep. About 3 × count × 1.6 MB of disk is used (1000 captures: ~5 GB).
# The last line of the output is a JSON summary.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

missing=()
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] && [ ! -x /usr/local/sbin/nginx ]; then
    missing+=(nginx)
fi
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v xargs >/dev/null 2>&1 || missing+=(xargs)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench-drain: missing: ${missing[*]}" >&2
    echo "bench-drain: install them with tools/install-test-deps.sh (as root; nginx-light has the WebDAV module)" >&2
    exit 1
fi

cargo build --release --bin selfie-kiosk --example bench_drain

echo "bench-drain: data in a temp dir under ${TMPDIR:-/tmp} unless --dir is given (see 'bench root' below)"
exec "$target_dir/release/examples/bench_drain" --bin "$target_dir/release/selfie-kiosk" "$@"
