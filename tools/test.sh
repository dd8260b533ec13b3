#!/usr/bin/env bash
# The full test suite, on a fresh Debian machine or a developer's: installs what the tests
# need (PostgreSQL server binaries, nginx with WebDAV, systemd-analyze, mkfs tools,
# oelint-adv, Debian's Rust with the aarch64 standard library, the cross gcc and
# qemu-user-static), then runs formatting, lints, every test, and tests/cross_arch.rs again
# against the daemon built for aarch64 and run under qemu-user (tools/cross-test.sh).
#
#   tools/test.sh            everything
#   tools/test.sh --quick    skip fmt/clippy (tests only)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
CROSS_TARGET=aarch64-unknown-linux-gnu
[ "${1:-}" = "--quick" ] && quick=1

if [ "$(id -u)" -eq 0 ]; then
    bash tools/install-test-deps.sh
    [ -f tools/install-packaging-deps.sh ] && bash tools/install-packaging-deps.sh
    bash tools/cross-build.sh --install-only "$CROSS_TARGET"
else
    echo "test.sh: not root: assuming the test dependencies are installed (tools/install-test-deps.sh)"
fi

if [ "$quick" -eq 0 ]; then
    echo "== cargo fmt --check"
    cargo fmt --all -- --check
    echo "== cargo clippy"
    cargo clippy --all-targets --locked -- -D warnings
fi

[ -x tools/check-packaging.sh ] && { echo "== packaging checks"; bash tools/check-packaging.sh; }

echo "== cargo test"
# Test binaries run one after another; tests inside a binary run in parallel, each with
# its own daemon, PostgreSQL cluster and nginx on free loopback ports. Examples (the
# benchmarks) are built by clippy above; they hold no tests.
log=$(mktemp)
set +e
cargo test --locked --no-fail-fast --lib --bins --tests -- --test-threads=4 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

echo "== cross tests: $CROSS_TARGET under qemu-user"
cross_log=$(mktemp)
bash tools/cross-test.sh "$CROSS_TARGET" 2>&1 | tee "$cross_log"
cross_status=${PIPESTATUS[0]}
cat "$cross_log" >>"$log"
# A cross build that fails never reaches a "test result" line: count it as one failure.
cross_broken=0
if [ "$cross_status" -ne 0 ] && ! grep -q '^test result:' "$cross_log"; then
    cross_broken=1
fi
rm -f "$cross_log"
[ "$status" -eq 0 ] && status=$cross_status
set -e
# One closing line for the whole suite, the cross tests included.
awk -v extra="$cross_broken" \
    '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f + extra }' "$log"
rm -f "$log"
exit "$status"
