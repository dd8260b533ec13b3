#!/usr/bin/env bash
# Fleet benchmark (issue 21 item 5): 50 kiosks, each with a backlog of 40 photo-like
# captures seeded offline, start at the same moment against one empty PostgreSQL and one
# nginx; then the same through PgBouncer in transaction pooling. Reports drain time, the
# most PostgreSQL client connections at once, VPS-side CPU (postgres, nginx, pgbouncer
# from /proc) and an extrapolation. See examples/bench_fleet.rs.
#
#   tools/bench-fleet.sh [--kiosks 50] [--captures 40] [--width 640] [--height 480]
#                        [--pool 10] [--timeout 240]
#
# BUILD=release builds and runs release binaries (default: the debug build the tests use,
# which makes the 50 daemons — on the same machine as the "VPS" — slower, not the VPS).
# Needs PostgreSQL, nginx-light and pgbouncer (tools/install-test-deps.sh installs them).
# Data lives in /dev/shm (or $KIOSK_TEST_PG_DIR) and is removed at the end. The last line
# of the output is a JSON summary.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

missing=()
{ command -v pgbouncer || [ -x /usr/sbin/pgbouncer ]; } >/dev/null 2>&1 || missing+=(pgbouncer)
{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 || missing+=(nginx-light)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench-fleet: missing: ${missing[*]}; install them with tools/install-test-deps.sh (as root)" >&2
    exit 1
fi

if [ "${BUILD:-debug}" = release ]; then
    cargo build --release --bin selfie-kiosk --example bench_fleet
    dir="$target_dir/release"
else
    cargo build --bin selfie-kiosk --example bench_fleet
    dir="$target_dir/debug"
fi
exec "$dir/examples/bench_fleet" --bin "$dir/selfie-kiosk" "$@"
