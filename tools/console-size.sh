#!/usr/bin/env bash
# The staff console's size budget: every file of assets/console/ gzip-compressed (best,
# as the daemon serves them), listed and summed. Exit 1 when over the budget (100 KB).
#   tools/console-size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=$((100 * 1024))
total=0
raw=0
for f in assets/console/*; do
    n=$(wc -c <"$f")
    gz=$(gzip -9 -n -c "$f" | wc -c)
    # The daemon sends a file plain when gzip would not make it smaller.
    [ "$gz" -lt "$n" ] || gz=$n
    printf '%-28s %8d B %8d B gzip\n' "$(basename "$f")" "$n" "$gz"
    raw=$((raw + n))
    total=$((total + gz))
done
printf '%-28s %8d B %8d B gzip (budget %d B)\n' total "$raw" "$total" "$BUDGET"
[ "$total" -le "$BUDGET" ] || { echo "console-size: over budget" >&2; exit 1; }
