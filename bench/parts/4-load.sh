#!/usr/bin/env bash
# Part 4: enclave load time (measure + EINIT signature check) vs heap and ELRANGE size.
#
# Enclave load time (spm_enclave_load: read the image, add and
# measure every page, check the SIGSTRUCT signature and MRENCLAVE, first
# entry) against the heap size (ELRANGE the smallest that fits), and
# against the ELRANGE size with a 1 MiB heap. The benchmark enclave is
# signed once per point, with 4 TCSs of 256 KiB stacks. One load_time
# process loads every image in turn, once as a warm-up and then once per
# run, so each run holds one load of each image under the same conditions;
# load_vs_smallest is, per run, a load's time over the 1 MiB-heap load of
# that run.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

heaps="1 4 16 64 256 1024"
elranges="64 256 1024 4096"
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    heaps="1 16 256"
    elranges="256 4096"
fi

plot() {
    local dir=$1 summary=$1/../summary.csv heap_data elrange_data
    heap_data=$(mktemp)
    elrange_data=$(mktemp)
    awk -F, '$1 == "4-load" && $2 ~ /^heap=/ && $3 == "load" {
        h = $2; sub(/^heap=/, "", h); sub(/MiB$/, "", h); print h "," $6 "," $7 "," $8 }' \
        "$summary" | sort -t, -k1,1n >"$heap_data"
    awk -F, '$1 == "4-load" && $2 ~ /^elrange=/ && $3 == "load" {
        e = $2; sub(/^elrange=/, "", e); sub(/MiB.*$/, "", e); print e "," $6 "," $7 "," $8 }' \
        "$summary" | sort -t, -k1,1n >"$elrange_data"
    {
        bench_gnuplot_head "$dir/load-time.png" \
            "Enclave load time (measure + EINIT signature check), median with min-max"
        cat <<EOF2
set logscale x 2
set xlabel "MiB"
set ylabel "ms"
set yrange [0:*]
plot "$heap_data" using 1:2:3:4 with yerrorlines lw 2 title "vs heap size (ELRANGE: smallest that fits)", \
     "$elrange_data" using 1:2:3:4 with yerrorlines lw 2 title "vs ELRANGE size (1 MiB heap)"
EOF2
    } | gnuplot
    rm -f "$heap_data" "$elrange_data"
}

run() {
    bench_setup
    bench_info method "load_time: spm_enclave_load then spm_enclave_destroy of every image in turn; one warm-up round then $BENCH_RUNS; 4 TCS of 256 KiB stacks"
    local h e images=() groups=()
    for h in $heaps; do
        images+=("$BENCH_WORK/heap-$h.signed")
        groups+=("heap=${h}MiB")
        bench_sign "${images[-1]}" "${h}M" --tcs 4
    done
    for e in $elranges; do
        images+=("$BENCH_WORK/elrange-$e.signed")
        groups+=("elrange=${e}MiB")
        bench_sign "${images[-1]}" 1M --tcs 4 --elrange "${e}M"
    done
    bench_log "loading ${#images[@]} images, $BENCH_RUNS runs after a warm-up"
    local out
    out=$("$BENCH_BIN/load_time" "$SPM_PLATFORM" "$BENCH_RUNS" "${images[@]}") ||
        bench_die "load_time failed: $out"
    local line index elrange
    while read -r line; do
        [[ $line =~ ^#\ image=([0-9]+)\ elrange=([0-9]+) ]] || continue
        index=${BASH_REMATCH[1]} elrange=${BASH_REMATCH[2]}
        bench_info "elrange_of_${groups[$index]}" "$((elrange >> 20)) MiB"
    done <<<"$out"
    local run load destroy first=""
    while IFS=, read -r run index load destroy; do
        if ! [[ $run =~ ^[0-9]+$ ]] || [ "$run" -eq 0 ]; then
            continue
        fi
        [ "$index" -eq 0 ] && first=$load
        bench_sample "${groups[$index]}" load ms "$run" "$load"
        bench_sample "${groups[$index]}" destroy ms "$run" "$destroy"
        bench_sample "${groups[$index]}" load_vs_smallest x "$run" "$(bench_calc "$load / $first")"
    done <<<"$out"
}

case "${1:-}" in
run) run ;;
plot) plot "$2" ;;
*)
    echo "usage: $0 run | plot DIR (started by bench/run)" >&2
    exit 2
    ;;
esac
