#!/usr/bin/env bash
# The fuzzing ledger: fuzz/runs.tsv keeps every recorded fuzz run (date,
# harness, seconds, executions, cov, ft, corpus), so time spent fuzzing adds
# up across machines and build directories.
#   fuzz/ledger.sh add STATS.TSV...   merge run-one.sh's stats files in
#   fuzz/ledger.sh                    totals per harness
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = add ]; then
    shift
    cat "$here/runs.tsv" "$@" | grep -v '^#' | sort -u >"$here/runs.tsv.new"
fi
cd "$here"
if [ -f runs.tsv.new ]; then
    { echo "# date	harness	seconds	executions	cov	ft	corpus"; cat runs.tsv.new; } >runs.tsv
    rm -f runs.tsv.new
fi
printf '%-14s %9s %14s %6s %6s\n' harness seconds executions cov ft
grep -v '^#' runs.tsv | awk -F'\t' '{ t[$2] += $3; e[$2] += $4; if ($5 > c[$2]) c[$2] = $5; if ($6 > f[$2]) f[$2] = $6 }
    END { for (k in t) printf "%-14s %9d %14d %6d %6d\n", k, t[k], e[k], c[k], f[k] }' | sort
