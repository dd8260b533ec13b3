#!/usr/bin/env bash
# Fuzzes the live API against its own OpenAPI document (GET /openapi.json) with
# schemathesis: no answer may be a 5xx, every status must be one the document lists for
# the operation, and every JSON answer must match its schema. Destructive admin routes are
# fuzzed too: the daemon is a throw-away one, on a temp data dir and a free loopback port.
#
#   tools/schemathesis.sh [path/to/selfie-kiosk]    (default: target/debug/selfie-kiosk)
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 50 per operation: about a minute on two
# cores), SCHEMATHESIS_SEED (default: fixed, so runs are reproducible), SCHEMATHESIS_WORKERS
# (default 1: with several threads, hypothesis trips a CPython 3.11 bug, "AST constructor
# recursion depth mismatch").
# Needs schemathesis in .venv-tools/ (tools/install-test-deps.sh installs it). Exit code:
# 0 when both passes are clean, non-zero on any failure (the daemon's log is printed).
#
# SMS is configured with an unreachable OVH endpoint (nothing is ever sent), so send-sms
# answers as on a real kiosk instead of 503 `sms_not_configured`. `PUT /admin/config` runs
# in a second pass, alone: the settings it fuzzes (SMS switched off, a disk reserve larger
# than the disk) make other routes answer 503/507 on purpose.
set -euo pipefail

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/debug/selfie-kiosk}
ST="$ROOT/.venv-tools/bin/schemathesis"
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
SEED=${SCHEMATHESIS_SEED:-20261124}
WORKERS=${SCHEMATHESIS_WORKERS:-1}
# Every check but negative_data_rejection and positive_data_acceptance: those judge how
# strict input validation is against the document, which describes free-form fields (dates,
# phone numbers, names) loosely on purpose and leaves the exact rules to the daemon.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance
CHECKS=$CHECKS,response_schema_conformance,response_headers_conformance
CHECKS=$CHECKS,missing_required_header,unsupported_method,allow_header_conformance
CHECKS=$CHECKS,ignored_auth,use_after_free,ensure_resource_availability

if [ ! -x "$ST" ]; then
    log "schemathesis is missing ($ST): run tools/install-test-deps.sh as root" \
        "(or: python3 -m venv .venv-tools && .venv-tools/bin/pip install schemathesis)"
    exit 2
fi
if [ ! -x "$BIN" ]; then
    log "no daemon binary at $BIN (cargo build first, or pass its path)"
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
pid=
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
base="http://127.0.0.1:$port"

env -i PATH="$PATH" HOME="$tmp" \
    KIOSK_DATA_DIR="$tmp/data" KIOSK_LISTEN="127.0.0.1:$port" KIOSK_ID=schemathesis \
    ADMIN_API_KEY="$key" KIOSK_LOG=info \
    PUBLIC_BASE_URL="http://127.0.0.1:9/uploads/" OVH_ENDPOINT="http://127.0.0.1:9/1.0" \
    OVH_APP_KEY=schemathesis-app-key OVH_APP_SECRET=schemathesis-app-secret \
    OVH_CONSUMER_KEY=schemathesis-consumer-key SMS_SERVICE_NAME=sms-st00000-1 \
    SMS_SENDER=Kiosk OVH_TIMEOUT_SECS=1 \
    "$BIN" serve >"$tmp/daemon.log" 2>&1 &
pid=$!

for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
        log "the daemon exited at start:"
        cat "$tmp/daemon.log" >&2
        exit 1
    fi
    if python3 -c "import urllib.request, sys; urllib.request.urlopen('$base/openapi.json', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

# Seed data, so fuzzing reaches past "404 no such id": captures, backgrounds and an SMS
# request, made through the API itself (the capture image is the document's own example),
# and a schemathesis config whose dictionaries offer their ids (and a valid image and
# phone numbers) for about half of the generated values.
if ! python3 - "$base" "$key" "$tmp/schemathesis.toml" <<'PY'
import base64, json, sys, urllib.request

base, key, out = sys.argv[1:4]

def call(method, path, body=None, ctype="application/json", admin=False):
    data = json.dumps(body).encode() if ctype == "application/json" and body is not None else body
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    if admin:
        req.add_header("X-API-Key", key)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)

doc = call("GET", "/openapi.json")
image = doc["components"]["schemas"]["CaptureJson"]["properties"]["image"]["example"]
captures = [call("POST", "/api/capture", {"image": image, "id": f"st-seed-{i}"})["id"] for i in range(1, 4)]
backgrounds = [
    call("POST", f"/admin/backgrounds?name=seed-{i}", base64.b64decode(image), "image/jpeg", admin=True)["id"]
    for i in range(1, 4)
]
sms = [call("POST", "/api/send-sms", {"capture_id": c, "phone": "0612345678"})["sms_id"] for c in captures[:2]]
ids = captures + backgrounds + sms

def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"

with open(out, "w") as f:
    f.write(f"""
[dictionaries.ids]
values = {toml_list(ids)}
[dictionaries.id_lists]
values = {toml_list([",".join(captures), captures[0], captures[0] + ",unknown-id"])}
[dictionaries.files]
values = {toml_list([c + ".jpg" for c in captures])}
[dictionaries.images]
values = {toml_list([image, "data:image/jpeg;base64," + image])}
[dictionaries.phones]
values = {toml_list(["0612345678", "+33612345679", "06 12 34 56 70"])}

[parameters]
"path.id" = {{ dictionary = "ids", probability = 0.5 }}
"path.sms_id" = {{ dictionary = "ids", probability = 0.5 }}
"path.file" = {{ dictionary = "files", probability = 0.5 }}
"query.ids" = {{ dictionary = "id_lists", probability = 0.5 }}
"body.image" = {{ dictionary = "images", probability = 0.5 }}
"body.captures[*].image" = {{ dictionary = "images", probability = 0.5 }}
"body.capture_id" = {{ dictionary = "ids", probability = 0.5 }}
"body.phone" = {{ dictionary = "phones", probability = 0.5 }}
""")
print(f"seeded {len(captures)} captures, {len(backgrounds)} backgrounds, {len(sms)} SMS requests", file=sys.stderr)
PY
then
    log "seeding the daemon through the API failed; daemon log:"
    tail -n 100 "$tmp/daemon.log" >&2
    exit 1
fi

run() {
    "$ST" --config-file "$tmp/schemathesis.toml" run "$base/openapi.json" \
        --checks "$CHECKS" \
        --max-examples "$MAX_EXAMPLES" \
        --seed "$SEED" \
        --workers "$WORKERS" \
        --request-timeout 20 \
        --generation-database none \
        --no-color \
        -H "X-API-Key: $key" \
        "$@"
}

# schemathesis keeps a cache (.schemathesis/) in its working directory: not in the repo.
cd "$tmp"
status=0
log "pass 1: every operation but PUT /admin/config ($MAX_EXAMPLES examples each)"
run --exclude-operation-id put_config || status=1
log "pass 2: PUT /admin/config"
run --include-operation-id put_config || status=1

if ! kill -0 "$pid" 2>/dev/null; then
    log "the daemon died during the run"
    status=1
fi
if [ "$status" -ne 0 ]; then
    log "FAILED; daemon log (last 200 lines):"
    tail -n 200 "$tmp/daemon.log" >&2
fi
exit "$status"
