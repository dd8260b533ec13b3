#!/usr/bin/env bash
# The staff console's budgets (issue 19, item 9), measured and printed:
#   (a) the gallery's first page on a kiosk with 10,000 captures whose thumbnails exist:
#       GET /admin/captures?limit=60 then its 60 thumbnails, p50/p95 over >= 50 runs
#       (target <= 50 ms for the whole page);
#   (b) one thumbnail of the 2048x1536 ~1.6 MB photo against a full decode (target <= 1/3);
#   (c) the console's assets, gzip-compressed, summed (tools/console-size.sh; <= 100 KB);
#   (d) with --binary-growth: the kiosk profile's stripped binary, the commit before the
#       console landed (parent of the first commit touching assets/console or
#       src/api/console.rs) against this working tree (target <= 300 KB growth). Two
#       release builds with fat LTO in target/bench-console-kiosk/ (its own CARGO_TARGET_DIR):
#       minutes, run it once.
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
"$target_dir/release/examples/bench_console" --bin "$target_dir/release/selfie-kiosk" \
    ${args[@]+"${args[@]}"} || status=1

if [ "$growth" -eq 1 ]; then
    echo "== (d) binary growth, kiosk profile (stripped)"
    first=$(git log --format=%H --reverse -- assets/console src/api/console.rs | head -1)
    before=$(git rev-parse "$first^")
    kdir="$root/target/bench-console-kiosk"
    src="$kdir/src-before"
    rm -rf "$src"
    mkdir -p "$src"
    git archive "$before" | tar -x -C "$src"
    echo "before: $(git log -1 --format='%h %s' "$before" | cut -c1-100)"
    (cd "$src" && SELFIE_KIOSK_COMMIT="$(git -C "$root" rev-parse --short "$before")" \
        CARGO_TARGET_DIR="$kdir/target" cargo build --profile kiosk --bin selfie-kiosk --locked)
    cp "$kdir/target/kiosk/selfie-kiosk" "$kdir/selfie-kiosk.before"
    CARGO_TARGET_DIR="$kdir/target" cargo build --profile kiosk --bin selfie-kiosk --locked
    cp "$kdir/target/kiosk/selfie-kiosk" "$kdir/selfie-kiosk.head"
    rm -rf "$src"
    b=$(stat -c %s "$kdir/selfie-kiosk.before")
    h=$(stat -c %s "$kdir/selfie-kiosk.head")
    d=$((h - b))
    verdict=ok
    [ "$d" -le $((300 * 1024)) ] || { verdict=MISSED; status=1; }
    printf 'kiosk binary: before %d B, now (%s) %d B, growth %d B = %d KB (target <= 300 KB) %s\n' \
        "$b" "$(git rev-parse --short HEAD)" "$h" "$d" $((d / 1024)) "$verdict"
    printf '{"bench":"console-binary","before":"%s","before_bytes":%d,"head_bytes":%d,"growth_bytes":%d}\n' \
        "$(git rev-parse --short "$before")" "$b" "$h" "$d"
fi
exit "$status"
