#!/usr/bin/env bash
# Lint the packaging: the Yocto layer with oelint-adv (for every release in
# LAYERSERIES_COMPAT), the generated crate list against Cargo.lock, and the shell scripts
# with shellcheck. Exits non-zero on any error; oelint-adv warnings are printed and allowed.
# Needs tools/install-packaging-deps.sh (oelint-adv in .venv-tools/, shellcheck, python3).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAYER=$ROOT/yocto/meta-selfie-kiosk
cd "$ROOT"

fail=0
say() { printf 'check-packaging: %s\n' "$*"; }
hint="run tools/install-packaging-deps.sh (as root)"

# --- oelint-adv -------------------------------------------------------------------------
OELINT=$ROOT/.venv-tools/bin/oelint-adv
[ -x "$OELINT" ] || OELINT=$(command -v oelint-adv || true)
if [ -z "$OELINT" ]; then
    say "FAIL: oelint-adv not found; $hint"
    exit 1
fi

releases=$(sed -n 's/^LAYERSERIES_COMPAT_selfie-kiosk *= *"\(.*\)"/\1/p' "$LAYER/conf/layer.conf")
if [ -z "$releases" ]; then
    say "FAIL: no LAYERSERIES_COMPAT_selfie-kiosk in $LAYER/conf/layer.conf"
    exit 1
fi
mapfile -t files < <(find "$LAYER" -name '*.bb' -o -name '*.bbappend' -o -name 'layer.conf' | sort)

for release in $releases; do
    # homepageping needs the network (and the HOMEPAGE is a placeholder). Findings are
    # "file:line:severity:rule:message".
    out=$("$OELINT" --quiet --mode all --release "$release" --jobs 1 \
        --suppress oelint.vars.homepageping "${files[@]}" 2>&1 || true)
    errors=0
    warnings=0
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        case "$line" in
            # The generated -crates.inc is OE-Core's own format (`SRC_URI += " \`),
            # byte for byte what `bitbake -c update_crates` writes: not ours to restyle.
            *-crates.inc:*:oelint.vars.inconspaces:* | *-crates.inc:*:oelint.vars.notneededspace:*) ;;
            *:error:*) errors=$((errors + 1)); say "[$release] $line" ;;
            *:warning:*) warnings=$((warnings + 1)); say "[$release] $line" ;;
            *:info:*) ;;
            *) errors=$((errors + 1)); say "[$release] unexpected oelint-adv output: $line" ;;
        esac
    done <<<"$out"
    say "oelint-adv --release $release: $errors error(s), $warnings warning(s)"
    [ "$errors" -eq 0 ] || fail=1
done

# --- crate list -------------------------------------------------------------------------
if python3 "$ROOT/tools/gen-yocto-crates.py" --check; then
    say "selfie-kiosk-crates.inc matches Cargo.lock"
else
    say "FAIL: selfie-kiosk-crates.inc is stale: run tools/gen-yocto-crates.py"
    fail=1
fi

# --- shell scripts ----------------------------------------------------------------------
if ! command -v shellcheck >/dev/null 2>&1; then
    say "FAIL: shellcheck not found; $hint"
    exit 1
fi
if shellcheck -s sh assets/usb/selfie-kiosk-usb-diag &&
    shellcheck -s bash tools/check-packaging.sh tools/install-packaging-deps.sh; then
    say "shellcheck: clean"
else
    say "FAIL: shellcheck"
    fail=1
fi

if [ "$fail" -ne 0 ]; then
    say "FAILED"
    exit 1
fi
say "all packaging checks passed"
