#!/usr/bin/env bash
# Runs one libFuzzer harness as a test: replays its regression inputs, then
# fuzzes for $FUZZ_SECONDS (default 60) from its seed corpus.
#   run-one.sh HARNESS NAME FUZZ_SOURCE_DIR WORK_DIR
# New inputs go to a work corpus in WORK_DIR/NAME ($FUZZ_WORK overrides
# WORK_DIR), never into the checked-in seeds; a crash leaves
# its input there as crash-*, and the test fails naming it. Each run
# appends a line to WORK_DIR/stats.tsv: date, harness, seconds,
# executions, edges covered (cov), features (ft), corpus size.
set -uo pipefail
harness=$1
name=$2
src=$3
seconds=${FUZZ_SECONDS:-60}
base=$(realpath -m "${FUZZ_WORK:-$4}")
work=$base/$name
seeds=$src/corpus/$name
regressions=$src/regressions/$name
mkdir -p "$work/corpus"

if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    echo "fuzz $name: no seed corpus in $seeds" >&2
    exit 1
fi

# Every kept crash, and every seed, once: each must run clean.
replay=("$seeds"/*)
if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    replay+=("$regressions"/*)
fi
if ! "$harness" -runs=1 "${replay[@]}" >"$work/replay.log" 2>&1; then
    echo "fuzz $name: a seed or regression input fails:" >&2
    tail -40 "$work/replay.log" >&2
    exit 1
fi
echo "fuzz $name: ${#replay[@]} seed and regression inputs replayed clean"

log=$work/fuzz.log
start=$(date +%s)
"$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/corpus" "$seeds" >"$log" 2>&1
rc=$?
elapsed=$(($(date +%s) - start))

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
last=$(grep -E '^#[0-9]+' "$log" | tail -1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$name" "$elapsed" "${execs:-0}" \
    "${cov:-0}" "${ft:-0}" "${corp:-0}" >>"$base/stats.tsv"
echo "fuzz $name: ${elapsed}s, ${execs:-0} executions, cov ${cov:-0}, ft ${ft:-0}, corpus ${corp:-0}"

if [ $rc -ne 0 ]; then
    echo "fuzz $name: libFuzzer exited $rc; input(s) kept:" >&2
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null >&2
    grep -E 'ERROR|SUMMARY|runtime error|Assertion' "$log" | head -20 >&2
    tail -60 "$log" >&2
    exit 1
fi
