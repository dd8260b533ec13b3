#!/usr/bin/env bash
# Install what the packaging tests (tests/packaging.rs) and tools/check-packaging.sh need on
# a Debian (12+) machine, as root. Complements tools/install-test-deps.sh (PostgreSQL,
# nginx, curl):
#   - systemd          systemd-analyze, systemd-sysusers, systemd-tmpfiles (unit checks)
#   - e2fsprogs        mkfs.ext4, debugfs (the test's USB stick image), mkfs.ext2 (the
#                      disk-full test's file system without fallocate)
#   - dosfstools       mkfs.vfat (used instead of ext4 when the kernel has vfat)
#   - util-linux       mount, losetup, setpriv (the USB diagnostics script)
#   - apache2          the VPS Apache configuration is checked and exercised for real
#   - shellcheck       lint of the shell scripts
#   - python3 (3.11+: tomllib) and a venv at .venv-tools/ with oelint-adv (Yocto recipe lint)
# Idempotent: no `apt-get update` and no pip run when everything is already there.
set -euo pipefail

log() { printf 'install-packaging-deps: %s\n' "$*"; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$ROOT/.venv-tools
OELINT_VERSION=9.11.2

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (apt-get install); try: sudo $0" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

python_ok() {
    python3 -c 'import sys, tomllib, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

missing=()
have systemd-analyze || missing+=(systemd)
{ have systemd-sysusers && have systemd-tmpfiles; } || missing+=(systemd)
{ have mkfs.ext4 && have debugfs; } || missing+=(e2fsprogs)
have mkfs.vfat || missing+=(dosfstools)
{ have mount && have losetup && have setpriv; } || missing+=(util-linux mount)
have apache2 || missing+=(apache2)
have shellcheck || missing+=(shellcheck)
have md5sum || missing+=(coreutils)
python_ok || missing+=(python3 python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
    # Keep Debian's maintainer scripts from starting apache2 (the tests run their own).
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        created_policy=1
    fi
    cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
    trap cleanup EXIT

    log "missing: ${missing[*]}; apt-get update"
    apt-get update -q
    # shellcheck disable=SC2046  # word splitting wanted: unique package names
    apt-get install -y -q --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now --quiet apache2 2>/dev/null || true
    elif [ -x /etc/init.d/apache2 ]; then
        /etc/init.d/apache2 stop >/dev/null 2>&1 || true
    fi
else
    log "system packages already installed"
fi

if ! python_ok; then
    log "python3 >= 3.11 with venv is still missing" >&2
    exit 1
fi

if [ -x "$VENV/bin/oelint-adv" ] && [ "$("$VENV/bin/oelint-adv" --version 2>/dev/null)" = "oelint-adv $OELINT_VERSION" ]; then
    log "oelint-adv $OELINT_VERSION already in $VENV"
else
    log "creating $VENV with oelint-adv $OELINT_VERSION"
    python3 -m venv "$VENV"
    # Never committed: the directory ignores itself.
    printf '*\n' >"$VENV/.gitignore"
    "$VENV/bin/pip" install -q --disable-pip-version-check "oelint-adv==$OELINT_VERSION"
fi

log "done: $(systemd-analyze --version | head -n1), $("$VENV/bin/oelint-adv" --version)"
