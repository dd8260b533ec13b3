#!/usr/bin/env bash
# The staff console's budgets (issue 19, item 9), measured and printed:
#   (a) the gallery's first page on a kiosk with 10,000 captures whose thumbnails exist:
#       GET /admin/captures?limit=60 then its 60 thumbnails, p50/p95 over >= 50 runs
#       (target <= 50 ms for the whole page);
#   (b) one thumbnail of the 2048x1536 ~1.6 MB photo against a full decode (target <= 1/3);
#   (c) the console's assets, gzip-compressed, summed (tools/console-size.sh; <= 100 KB);
#   (d) with --binary-growth: what issue 19 added to the kiosk profile's stripped binary
#       (target <= 300 KB). Other issues' work landed between the console's merges, so the
#       growth is the sum, over the commits that carried issue 19 (listed in PAIRS below:
#       each "before after"), of the size after minus the size before, plus this working
#       tree against the last of them. Twelve release builds with fat LTO in
#       target/bench-console-kiosk/ (its own CARGO_TARGET_DIR): most of an hour, run it once.
#
#   tools/bench-console.sh [--binary-growth] [bench_console flags: --captures N --runs N --dir DIR --keep]
#
# (a) and (b) are examples/bench_console.rs (release build). Exit status 1 when a target is
# missed.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
target_dir="${CARGO_TARGET_DIR:-target}"
growth=0
args=()
for a in "$@"; do
    case "$a" in
    --binary-growth) growth=1 ;;
    *) args+=("$a") ;;
    esac
done
status=0

echo "== (c) console assets, gzip -9 (as served)"
tools/console-size.sh || status=1

echo "== (a) gallery first page, (b) thumbnail against a full decode"
cargo build --release --bin selfie-kiosk --example bench_console
# An absolute path: the daemon is started in its data directory.
target_abs=$(cd "$target_dir" && pwd)
"$target_abs/release/examples/bench_console" --bin "$target_abs/release/selfie-kiosk" \
    ${args[@]+"${args[@]}"} || status=1

# The commits that brought issue 19 into main, each as "before after" (first parent, merge):
# the console's API (thumbnails, detail, SMS listing and retry), its pages, the detail view
# and retry by number, ADMIN_LISTEN + KIOSK_TZ + console_idle_minutes, the admin photo route.
PAIRS=(
    "20e1900 db064db"
    "db064db b5fa5cb"
    "7465aea 912dc00"
    "c99e38b 5369f33"
    "2dcd72c 3b76b56"
)
# The last commit of those merges' era; the working tree is measured against it.
LAST=9ea3f62

kiosk_size() { # commit or "tree" -> stripped size in bytes
    local kdir="$root/target/bench-console-kiosk" src="$root/target/bench-console-kiosk/src"
    rm -rf "$src"
    mkdir -p "$src"
    if [ "$1" = tree ]; then
        git ls-files -z | tar --null -T - -c | tar -x -C "$src"
    else
        git archive "$1" | tar -x -C "$src"
    fi
    # One source path and one stamp for every build, so nothing but the code differs.
    (cd "$src" && SELFIE_KIOSK_COMMIT=0000000 SOURCE_DATE_EPOCH=0 \
        CARGO_TARGET_DIR="$kdir/target" cargo build -q --profile kiosk --bin selfie-kiosk --locked)
    stat -c %s "$kdir/target/kiosk/selfie-kiosk"
}

if [ "$growth" -eq 1 ]; then
    echo "== (d) binary growth, kiosk profile (stripped)"
    total=0
    for pair in "${PAIRS[@]}" "$LAST tree"; do
        read -r before after <<<"$pair"
        b=$(kiosk_size "$before")
        a=$(kiosk_size "$after")
        total=$((total + a - b))
        printf '%s -> %s: %d -> %d B (%+d B)\n' "$before" "$after" "$b" "$a" $((a - b))
    done
    verdict=ok
    [ "$total" -le $((300 * 1024)) ] || { verdict=MISSED; status=1; }
    printf 'issue 19 in the kiosk binary: %+d B = %d KB (target <= 300 KB) %s\n' \
        "$total" $((total / 1024)) "$verdict"
    printf '{"bench":"console-binary","growth_bytes":%d}\n' "$total"
fi
exit "$status"
