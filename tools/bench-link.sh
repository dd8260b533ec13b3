#!/usr/bin/env bash
# Time to link: 201 → the guest's SMS at the OVH-faithful server, with PostgreSQL, nginx
# (WebDAV) and the OVH server reached through the test proxy's shaping mode (8 Mbit/s up,
# 40 ms round trip by default), against the floor measured in the same run (the same
# photo PUT through the same proxy by a plain HTTP client + the protocol's round trips).
# See examples/bench_link.rs.
#
#   tools/bench-link.sh [--count 30] [--up-mbit 8] [--rtt-ms 40] [--images 3]
#
# BENCH_PROFILE=debug uses the debug build (no release build: quicker on a busy machine;
# the daemon is then slower, never faster, than the release one).
# Needs nginx with the WebDAV module and PostgreSQL (tools/install-test-deps.sh); installs
# nothing itself. The last line of the output is a JSON summary.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
profile="${BENCH_PROFILE:-release}"

missing=()
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] && [ ! -x /usr/local/sbin/nginx ]; then
    missing+=(nginx)
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench-link: missing: ${missing[*]}" >&2
    echo "bench-link: install them with tools/install-test-deps.sh (as root)" >&2
    exit 1
fi

case "$profile" in
    release)
        cargo build --release --bin selfie-kiosk --example bench_link
        dir="$target_dir/release"
        ;;
    debug)
        cargo build --bin selfie-kiosk --example bench_link
        dir="$target_dir/debug"
        ;;
    *)
        echo "bench-link: BENCH_PROFILE must be release or debug, not $profile" >&2
        exit 64
        ;;
esac
exec "$dir/examples/bench_link" --bin "$dir/selfie-kiosk" "$@"
