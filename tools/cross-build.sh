#!/usr/bin/env bash
# Build the daemon for another architecture with Debian's own Rust (rustup cannot fetch
# other targets' standard libraries here; Debian packages them), then print the stripped
# size of the binary.
#
#   tools/cross-build.sh TARGET                  the kiosk profile (size-optimised, fat LTO)
#   tools/cross-build.sh --profile release TARGET
#   tools/cross-build.sh --install-only TARGET   only the packages
#
# TARGET: aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf, or
# x86_64-unknown-linux-gnu (the host, built with the same Debian toolchain so the sizes
# compare). As root it first installs what it needs, idempotently (nothing, and no
# `apt-get update`, when everything is there):
#   - the target's Debian architecture (dpkg --add-architecture arm64 / armhf)
#   - rustc-web, cargo-web (Debian's Rust: /usr/bin/rustc, /usr/bin/cargo) and the target's
#     standard library, libstd-rust-web-dev:ARCH
#   - the cross C compiler and libc headers (bundled SQLite and ring compile C)
#   - qemu-user-static (runs the result; tools/cross-test.sh), from bookworm-backports on
#     Debian 12: its 10.0 is the version seen working (see the README's "Cross builds")
# Not root: assumes those packages are installed and says so.
#
# The binary lands in $CROSS_TARGET_DIR/TARGET/PROFILE/selfie-kiosk (default target dir
# target/cross, apart from the host builds: another compiler would rebuild everything
# there). The last line printed is that path; the one before, the size.
set -euo pipefail

log() { printf 'cross-build: %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
profile=kiosk
install_only=0
target=
while [ $# -gt 0 ]; do
    case "$1" in
    --profile) profile=${2:?--profile needs a name}; shift 2 ;;
    --install-only) install_only=1; shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) target=$1; shift ;;
    esac
done
[ -n "$target" ] || die "usage: $0 [--profile NAME] [--install-only] TARGET"

case "$target" in
aarch64-unknown-linux-gnu) arch=arm64 gnu=aarch64-linux-gnu qemu=qemu-aarch64-static ;;
armv7-unknown-linux-gnueabihf) arch=armhf gnu=arm-linux-gnueabihf qemu=qemu-arm-static ;;
x86_64-unknown-linux-gnu) arch=amd64 gnu=x86_64-linux-gnu qemu= ;;
*) die "unsupported target $target (aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf, x86_64-unknown-linux-gnu)" ;;
esac
host_arch=$(dpkg --print-architecture)

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# Packages for this target. The standard library is "Multi-Arch: same" (one per
# architecture can be installed), so it is always named with its architecture.
pkgs=(rustc-web cargo-web "libstd-rust-web-dev:$arch")
if [ "$arch" != "$host_arch" ]; then
    # The cross gcc's Debian names: arm64 → gcc-aarch64-linux-gnu, libc6-dev-arm64-cross.
    pkgs+=("gcc-$gnu" "libc6-dev-$arch-cross")
fi

install_deps() {
    export DEBIAN_FRONTEND=noninteractive
    local missing=() p need_update=0
    for p in "${pkgs[@]}"; do
        installed "$p" || missing+=("$p")
    done
    local qemu_missing=0
    if [ -n "$qemu" ] && ! command -v "$qemu" >/dev/null 2>&1; then
        qemu_missing=1
    fi
    if [ "${#missing[@]}" -eq 0 ] && [ "$qemu_missing" -eq 0 ]; then
        log "everything already installed (${pkgs[*]}${qemu:+, $qemu})"
        return 0
    fi
    [ "$qemu_missing" -eq 1 ] && log "missing: $qemu (qemu-user-static)"
    [ "${#missing[@]}" -gt 0 ] && log "missing: ${missing[*]}"

    if [ "$arch" != "$host_arch" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        log "dpkg --add-architecture $arch"
        dpkg --add-architecture "$arch"
        need_update=1
    fi

    # qemu-user-static 10.0 comes from bookworm-backports on Debian 12 (the release's own
    # 7.2 was never tried without -L). The backports entry uses the mirror bookworm's own
    # entry names, so no host is written here.
    local codename backports=
    codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
    if [ "$qemu_missing" -eq 1 ] && [ "$codename" = bookworm ]; then
        backports=bookworm-backports
        if ! grep -rqs "$backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            local mirror
            mirror=$(awk '/^URIs:/ && !done { print $2; done = 1 }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
            [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
            [ -n "$mirror" ] || die "no bookworm entry in /etc/apt/sources.list{,.d/debian.sources} to copy the mirror from; add $backports yourself"
            log "adding $backports ($mirror) to /etc/apt/sources.list.d/$backports.sources"
            printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$mirror" "$backports" >"/etc/apt/sources.list.d/$backports.sources"
        fi
        need_update=1
    fi

    if [ "$need_update" -eq 1 ] || [ "${#missing[@]}" -gt 0 ]; then
        log "apt-get update"
        apt-get update -q
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    if [ "$qemu_missing" -eq 1 ]; then
        log "apt-get install qemu-user-static${backports:+ (from $backports)}"
        apt-get install -y -q --no-install-recommends ${backports:+-t "$backports"} qemu-user-static
    fi
    for p in "${pkgs[@]}"; do
        installed "$p" || die "$p still missing after apt-get install"
    done
    if [ -n "$qemu" ] && ! command -v "$qemu" >/dev/null 2>&1; then
        die "$qemu still missing after installing qemu-user-static"
    fi
}

hint="as root, tools/cross-build.sh --install-only $target installs them"
if [ "$(id -u)" -eq 0 ]; then
    install_deps
else
    log "not root: assuming ${pkgs[*]}${qemu:+ and qemu-user-static} are installed ($hint)"
fi
[ "$install_only" -eq 1 ] && exit 0

{ [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ]; } || die "Debian's /usr/bin/rustc or /usr/bin/cargo missing ($hint)"
sysroot=$(/usr/bin/rustc --print sysroot)
[ -d "$sysroot/lib/rustlib/$target/lib" ] || die "no standard library for $target in $sysroot ($hint)"
cc=$gnu-gcc
[ "$arch" = "$host_arch" ] && cc=cc
command -v "$cc" >/dev/null 2>&1 || die "$cc not found ($hint)"

# Debian's toolchain, explicitly: rustup's cargo and rustc stay first on PATH. cc-rs
# reads CC_<target>/AR_<target> (underscores) for the C parts, cargo the linker.
env_target=$(printf '%s' "$target" | tr '[:lower:]-' '[:upper:]_')
c_target=$(printf '%s' "$target" | tr '-' '_')
export RUSTC=/usr/bin/rustc
export "CARGO_TARGET_${env_target}_LINKER=$cc"
export "CC_${c_target}=$cc"
if [ "$arch" != "$host_arch" ]; then
    export "AR_${c_target}=$gnu-ar"
fi
# Whatever the caller set for the host's builds does not apply to this toolchain.
unset RUSTUP_TOOLCHAIN RUSTFLAGS CARGO_BUILD_TARGET
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-$ROOT/target/cross}

log "$(/usr/bin/rustc --version), profile $profile, target dir $CARGO_TARGET_DIR"
start=$(date +%s)
(cd "$ROOT" && /usr/bin/cargo build --locked --profile "$profile" --target "$target" --bin selfie-kiosk)
took=$(($(date +%s) - start))

dir=$profile
[ "$profile" = dev ] && dir=debug
bin=$CARGO_TARGET_DIR/$target/$dir/selfie-kiosk
[ -f "$bin" ] || die "cargo built no $bin"

# The kiosk profile strips already; other profiles are measured on a stripped copy.
strip=$gnu-strip
command -v "$strip" >/dev/null 2>&1 || strip="strip"
stripped=$(mktemp)
trap 'rm -f "$stripped"' EXIT
"$strip" -o "$stripped" "$bin"
size=$(stat -c %s "$stripped")
log "built in ${took}s: $(file -b "$bin" | cut -d, -f1-2)"
printf 'cross-build: %s %s: stripped size %s bytes (%s MiB)\n' "$target" "$profile" "$size" \
    "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')"
printf '%s\n' "$bin"
