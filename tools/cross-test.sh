#!/usr/bin/env bash
# Run the black-box suite tests/cross_arch.rs against the daemon built for another
# architecture, under qemu-user, with the real PostgreSQL, nginx (WebDAV) and OVH-faithful
# SMS server the harness starts on this host.
#
#   tools/cross-test.sh TARGET                  aarch64-unknown-linux-gnu or
#                                               armv7-unknown-linux-gnueabihf
#   tools/cross-test.sh --profile NAME TARGET   another cargo profile for the daemon
#
# The daemon is built by tools/cross-build.sh (which, as root, installs Debian's Rust, the
# target's standard library, the cross gcc and qemu-user-static) with the `dev` profile by
# default: the kiosk profile's fat LTO takes many times longer to build, and the suite
# proves behaviour on the architecture, not speed (emulated timings mean nothing anyway).
# The test program itself is built for the host by the usual cargo (and $CARGO_TARGET_DIR)
# and points the harness at the cross binary through SELFIE_KIOSK_BIN and
# SELFIE_KIOSK_RUNNER. qemu runs without -L: the multiarch libc the standard library
# package pulls in provides the dynamic loader (see the README's "Cross builds").
set -euo pipefail

log() { printf 'cross-test: %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
profile=dev
target=
while [ $# -gt 0 ]; do
    case "$1" in
    --profile) profile=${2:?--profile needs a name}; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) target=$1; shift ;;
    esac
done
[ -n "$target" ] || die "usage: $0 [--profile NAME] TARGET"

# Rust's name of the architecture, what `file` says of such a binary, and the emulator.
case "$target" in
aarch64-unknown-linux-gnu) arch=aarch64 elf='ELF 64-bit LSB .*ARM aarch64' qemu=qemu-aarch64-static ;;
armv7-unknown-linux-gnueabihf) arch=arm elf='ELF 32-bit LSB .*ARM, EABI5' qemu=qemu-arm-static ;;
*) die "unsupported target $target (aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" ;;
esac

start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bash "$ROOT/tools/cross-build.sh" --profile "$profile" "$target" | tee "$out"
bin=$(tail -n 1 "$out")
built=$(date +%s)

command -v "$qemu" >/dev/null 2>&1 || die "$qemu not found (as root: tools/cross-build.sh --install-only $target)"
# The binary really is the target's: checked here and again inside the test program
# (ELF header, and the architecture the running daemon reports in its diag bundle).
desc=$(file -b "$bin")
printf '%s\n' "$desc" | grep -Eq "$elf" || die "$bin is not a $target binary: $desc"
log "$bin: $desc"
version=$("$qemu" "$bin" --version) || die "$qemu $bin --version failed"
log "under $qemu: $version"

log "cargo test --test cross_arch (daemon: $target $profile under $qemu)"
cd "$ROOT"
SELFIE_KIOSK_BIN=$bin SELFIE_KIOSK_RUNNER=$qemu SELFIE_KIOSK_EXPECT_ARCH=$arch \
    cargo test --locked --test cross_arch -- --test-threads=2
end=$(date +%s)
log "$target: build $((built - start)) s, tests $((end - built)) s"
