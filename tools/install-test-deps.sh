#!/usr/bin/env bash
# Install what the integration tests need on a fresh Debian (12+) machine, as root:
#   - PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) — package `postgresql`
#   - nginx with the WebDAV module — package `nginx-light` (falls back to `nginx`)
#   - curl
#   - moto (S3-compatible server for tests/s3.rs) — PyPI `moto[server]`, into a venv at
#     .venv-tools/ unless a working `moto_server` is already on PATH
#   - LibreOffice Calc, headless (soffice) — package `libreoffice-calc-nogui`: the Excel
#     export test converts the workbook with it to prove a real spreadsheet opens it
#   - Prometheus and promtool (tests/metrics.rs scrapes the daemon with a real Prometheus
#     of its own, on a free port, and lints a scrape) — package `prometheus`
#   - schemathesis and openapi-spec-validator (tests/openapi.rs, tools/schemathesis.sh) —
#     PyPI, into the same .venv-tools/ (the tests call them there)
#   - PgBouncer (tests/pgbouncer.rs, tools/bench-fleet.sh: the remote path through
#     transaction pooling) — package `pgbouncer`
#   - tzdata (the zone files: KIOSK_TZ's tests use Europe/Paris)
#   - chromium (Debian) and, from npm, playwright-core and axe-core (tests/browser/, lock
#     file committed): the staff console's end-to-end tests (tests/console.rs)
# Idempotent: does nothing (and no `apt-get update`) when everything is already there.
# The tests start their own throw-away PostgreSQL cluster and nginx on loopback, so the
# Debian system services are kept from starting (policy-rc.d during install) and are
# stopped/disabled afterwards in case they were started anyway.
set -euo pipefail

log() { printf 'install-test-deps: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (apt-get install); try: sudo $0" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

have_pg_server() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            return 0
        fi
    done
    return 1
}

have_nginx_dav() {
    local bin
    bin="$(command -v nginx || true)"
    [ -z "$bin" ] && [ -x /usr/sbin/nginx ] && bin=/usr/sbin/nginx
    [ -n "$bin" ] || return 1
    # The dav module is either compiled in or available as a dynamic module; the
    # Debian nginx-light / nginx builds compile it in.
    "$bin" -V 2>&1 | grep -q -- '--with-http_dav_module'
}

# moto comes from PyPI, not Debian: installed here, before the apt part (which may stop
# early when every Debian package is there).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MOTO_VERSION=5.2.1
have_moto() {
    [ -x "$ROOT/.venv-tools/bin/moto_server" ] ||
        moto_server --help >/dev/null 2>&1
}
if have_moto; then
    log "moto_server already installed"
else
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        log "python3 with venv is needed for moto (apt-get install python3 python3-venv)" >&2
        exit 1
    fi
    log "installing moto[server] $MOTO_VERSION into $ROOT/.venv-tools"
    python3 -m venv "$ROOT/.venv-tools"
    # Never committed: the directory ignores itself.
    [ -f "$ROOT/.venv-tools/.gitignore" ] || printf '*\n' >"$ROOT/.venv-tools/.gitignore"
    "$ROOT/.venv-tools/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    if ! have_moto; then
        log "moto_server still missing after pip install" >&2
        exit 1
    fi
fi

SCHEMATHESIS_VERSION=4.32.5
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
have_openapi_tools() {
    [ -x "$ROOT/.venv-tools/bin/schemathesis" ] &&
        [ -x "$ROOT/.venv-tools/bin/openapi-spec-validator" ]
}
if have_openapi_tools; then
    log "schemathesis and openapi-spec-validator already installed"
else
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        log "python3 with venv is needed for schemathesis (apt-get install python3 python3-venv)" >&2
        exit 1
    fi
    log "installing schemathesis $SCHEMATHESIS_VERSION and openapi-spec-validator" \
        "$OPENAPI_SPEC_VALIDATOR_VERSION into $ROOT/.venv-tools"
    [ -x "$ROOT/.venv-tools/bin/pip" ] || python3 -m venv "$ROOT/.venv-tools"
    [ -f "$ROOT/.venv-tools/.gitignore" ] || printf '*\n' >"$ROOT/.venv-tools/.gitignore"
    "$ROOT/.venv-tools/bin/pip" install -q --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" \
        "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
    if ! have_openapi_tools; then
        log "schemathesis or openapi-spec-validator still missing after pip install" >&2
        exit 1
    fi
fi

# The staff console's browser tests (tests/console.rs → tests/browser/): playwright-core
# and axe-core from npm at the versions of tests/browser/package-lock.json (Debian's
# chromium is installed below; playwright-core downloads no browser of its own).
if [ -d "$ROOT/tests/browser/node_modules/playwright-core" ] &&
    [ -d "$ROOT/tests/browser/node_modules/axe-core" ]; then
    log "playwright-core and axe-core already installed"
elif command -v npm >/dev/null 2>&1; then
    log "npm ci --prefix tests/browser"
    npm ci --prefix "$ROOT/tests/browser" --no-audit --no-fund
else
    log "npm is needed for the console's browser tests (apt-get install nodejs npm)" >&2
    exit 1
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
have_pg_server || missing+=(postgresql)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
have_nginx_dav || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v soffice >/dev/null 2>&1 || missing+=(libreoffice-calc-nogui)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing+=(prometheus)
# QR codes of share links are decoded by zbarimg in tests/share.rs (issue 20).
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
{ command -v pgbouncer || [ -x /usr/sbin/pgbouncer ]; } >/dev/null 2>&1 || missing+=(pgbouncer)
# The zone files (KIOSK_TZ: src/localtime tests and tests/local_time.rs read Europe/Paris).
[ -f /usr/share/zoneinfo/Europe/Paris ] || missing+=(tzdata)

if [ "${#missing[@]}" -eq 0 ]; then
    log "everything already installed (postgresql server, psql, nginx with dav, curl, soffice, prometheus)"
    exit 0
fi

log "missing: ${missing[*]}"

# Keep Debian's maintainer scripts from starting postgresql/nginx system services.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    log "creating temporary $policy (exit 101) so services do not autostart"
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then
        log "removing temporary $policy"
        rm -f "$policy"
    fi
}
trap cleanup EXIT

log "apt-get update"
apt-get update -q

pkgs=()
for m in "${missing[@]}"; do
    case "$m" in
    nginx)
        if apt-cache show nginx-light >/dev/null 2>&1 &&
            [ -n "$(apt-cache policy nginx-light | awk '/Candidate:/ {print $2}' | grep -v '(none)' || true)" ]; then
            pkgs+=(nginx-light)
        else
            log "nginx-light not available, falling back to nginx"
            pkgs+=(nginx)
        fi
        ;;
    *) pkgs+=("$m") ;;
    esac
done

log "apt-get install ${pkgs[*]}"
apt-get install -y -q --no-install-recommends "${pkgs[@]}"

# Make sure no system service was left running (the tests use their own instances).
for svc in nginx postgresql prometheus pgbouncer; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        if systemctl is-active --quiet "$svc" 2>/dev/null; then
            log "stopping system service $svc"
            systemctl stop "$svc" || true
        fi
        if systemctl is-enabled --quiet "$svc" 2>/dev/null; then
            log "disabling system service $svc"
            systemctl disable --quiet "$svc" || true
        fi
    elif [ -x "/etc/init.d/$svc" ]; then
        "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done
if command -v pg_lsclusters >/dev/null 2>&1; then
    # Debian may have created (and started) a default cluster: stop any running one.
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
        if [ "$status" = "online" ]; then
            log "stopping Debian cluster $ver/$name"
            pg_ctlcluster "$ver" "$name" stop || true
        fi
    done
fi

if ! have_pg_server; then
    log "PostgreSQL server binaries still missing after install" >&2
    exit 1
fi
if ! have_nginx_dav; then
    log "nginx with http_dav_module still missing after install" >&2
    exit 1
fi
if ! command -v soffice >/dev/null 2>&1; then
    log "soffice (libreoffice-calc-nogui) still missing after install" >&2
    exit 1
fi
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    log "prometheus or promtool still missing after install" >&2
    exit 1
fi
log "done: postgresql $(ls -d /usr/lib/postgresql/*/bin | sed 's#.*/postgresql/\([^/]*\)/bin#\1#' | sort -V | tail -n1), $(nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1)"
