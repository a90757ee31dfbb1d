#!/usr/bin/env bash
# Part 2: spm checkpoint+restore vs plain CRIU dump+restore, S = 1..256 MiB, overhead split.
#
# What SPM adds to a CRIU checkpoint and restore. For each size S
# (1, 16, 64 and 256 MiB; 1 and 16 with --quick), in every run:
#   - an enclave process (bench_host) whose enclave holds S MiB of state,
#     its enclave signed with a heap of S + 1 MiB and max(4, nproc) TCSs,
#     goes through `spm checkpoint` + `spm restore` (CRIU with the spm
#     plugin: export, key hand-over to the Migration Enclave, dump; restore,
#     rebuild, key release, import);
#   - a control process (bench_plain) with no enclave and the same memory
#     (anonymous resident memory, RssAnon + RssShmem: what CRIU dumps; the
#     file-backed pages of programs and libraries are dumped by neither)
#     goes through plain `criu dump` + `criu restore`, with the same
#     options spm gives CRIU and --libdir on an empty directory, so that no
#     plugin is loaded;
# in alternating order, both verified after the restore (every byte of the
# state or memory is checked). The overhead is the difference of the two
# wall-clock totals, and is split with what `spm checkpoint`, `spm restore`
# and the process's own log (SPM_LOG=info) report:
#   export        drain + CKPT_BEGIN + CKPT_ENCRYPT (the state encrypted)
#   key_handover  CKPT_END (escrow with the ME, then ELRANGE torn down) +
#                 RESTORE_BEGIN (key released by the ME) + RESTORE_END
#                 (commit with the ME, then the image buffer unmapped)
#   criu_dump     `spm checkpoint`'s criu dump time minus the export
#   criu_restore  `spm restore`'s criu restore time minus the import
#   rebuild       the enclave created again at its base: load, measure, EINIT
#   import        RESTORE_VERIFY + RESTORE_DECRYPT
#   spm_cli       what is left: the spm commands' own time outside CRIU
#                 (start, reading the export records, asking the restored
#                 process whether its enclave runs)
# The issue's budget, 10 ms + 2.5 x (S / one-core AES-GCM rate), takes the
# rate from `openssl speed` in the same run; overhead_vs_budget is the ratio.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

sizes="1 16 64 256"
[ "${BENCH_QUICK:-0}" = 1 ] && sizes="1 16"
nproc=$(nproc)
tcs=$((nproc > 4 ? nproc : 4))

plot() {
    local dir=$1 summary=$1/../summary.csv data
    data=$(mktemp)
    # S, medians of the split, plain total, overhead, spm_cli; overhead min, max; budget.
    for s in $sizes; do
        awk -F, -v g="S=${s}MiB" -v s="$s" '
            $1 == "2-checkpoint" && $2 == g { med[$3] = $6; lo[$3] = $7; hi[$3] = $8 }
            END {
                printf "%s", s
                n = split("export key_handover criu_dump criu_restore rebuild import plain_total overhead spm_cli", m, " ")
                for (i = 1; i <= n; i++) printf ",%s", med[m[i]]
                printf ",%s,%s,%s\n", lo["overhead"], hi["overhead"], med["budget"]
            }' "$summary"
    done >"$data"
    {
        bench_gnuplot_head "$dir/checkpoint-split.png" \
            "spm checkpoint + restore: where the time goes (median ms)"
        cat <<EOF2
set style data histogram
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.6
set ylabel "ms"
set xlabel "enclave state S (MiB)"
set key outside right top vertical
plot "$data" using 2:xtic(1) title "export (encrypt)", \
     "" using 3 title "key hand-over (+ teardown)", \
     "" using 4 title "CRIU dump", \
     "" using 5 title "CRIU restore", \
     "" using 6 title "enclave rebuild", \
     "" using 7 title "import (verify + decrypt)", \
     "" using 10 title "spm command outside CRIU"
EOF2
    } | gnuplot
    {
        bench_gnuplot_head "$dir/checkpoint-overhead.png" \
            "Overhead of spm checkpoint+restore over plain CRIU (median, min-max)"
        cat <<EOF2
set logscale x 2
set xlabel "enclave state S (MiB)"
set ylabel "ms"
set xtics (1, 4, 16, 64, 256)
set offsets graph 0.03, graph 0.03, 0, 0
set key top left
plot "$data" using 1:9:11:12 with yerrorlines lw 2 title "measured overhead", \
     "" using 1:13 with linespoints lw 2 dt 2 title "target: 10 ms + 2.5 x S / openssl rate", \
     "" using 1:8 with linespoints lw 1 title "plain criu dump + restore"
EOF2
    } | gnuplot
    rm -f "$data"
}

# The value of a "  NAME: N ms" line of spm's report.
report_ms() {
    local value
    value=$(sed -n "s/^  $2: *\([0-9.]*\) ms.*/\1/p" "$1" | tail -n 1)
    [ -n "$value" ] || bench_die "no '$2' in $1: $(cat "$1")"
    echo "$value"
}

image_bytes() { du -sb "$1" | cut -f1; }

# plain_cycle DIR: the control process through plain CRIU; sets
# PLAIN_DUMP_MS, PLAIN_RESTORE_MS, PLAIN_IMAGE_BYTES.
plain_cycle() {
    local dir=$1 images=$1/images t0 t1 t2 pid
    pid=$(bench_ready_value pid)
    mkdir -p "$images"
    t0=$(bench_now_ns)
    criu dump -t "$pid" -D "$images" -o dump.log --tcp-established --network-lock nftables \
        --libdir "$BENCH_WORK/no-plugins" || bench_die "criu dump of the control: $(tail -n 5 "$images/dump.log")"
    t1=$(bench_now_ns)
    bench_dumped "$images"
    bench_wait_gone "$pid" 10 || bench_die "control pid $pid still there after criu dump"
    PLAIN_IMAGE_BYTES=$(image_bytes "$images")
    local t1r
    t1r=$(bench_now_ns)
    criu restore -d -D "$images" -o restore.log --tcp-established --network-lock nftables \
        --libdir "$BENCH_WORK/no-plugins" || bench_die "criu restore of the control: $(tail -n 5 "$images/restore.log")"
    t2=$(bench_now_ns)
    bench_restored "$images"
    bench_track "$pid"
    PLAIN_DUMP_MS=$(bench_calc "($t1 - $t0) / 1e6")
    PLAIN_RESTORE_MS=$(bench_calc "($t2 - $t1r) / 1e6")
    bench_check "$dir" "$pid" "$(bench_ready_value state)"
    bench_stop "$pid"
    rm -rf "$images"
}

# spm_cycle DIR: the enclave process through spm; sets SPM_* figures.
spm_cycle() {
    local dir=$1 images=$1/images t0 t1 t2 pid
    pid=$(bench_ready_value pid)
    mkdir -p "$images"
    t0=$(bench_now_ns)
    "$SPM" checkpoint "$pid" -D "$images" >"$dir/checkpoint.out" 2>&1 ||
        bench_die "spm checkpoint: $(tail -n 12 "$dir/checkpoint.out")"
    t1=$(bench_now_ns)
    bench_dumped "$images"
    bench_wait_gone "$pid" 10 || bench_die "enclave pid $pid still there after spm checkpoint"
    SPM_IMAGE_BYTES=$(image_bytes "$images")
    local t1r
    t1r=$(bench_now_ns)
    "$SPM" restore -D "$images" >"$dir/restore.out" 2>&1 ||
        bench_die "spm restore: $(tail -n 12 "$dir/restore.out")"
    t2=$(bench_now_ns)
    bench_restored "$images"
    bench_track "$pid"
    SPM_CHECKPOINT_MS=$(bench_calc "($t1 - $t0) / 1e6")
    SPM_RESTORE_MS=$(bench_calc "($t2 - $t1r) / 1e6")
    SPM_EXPORT_REPORTED_MS=$(report_ms "$dir/checkpoint.out" "export time")
    SPM_CRIU_DUMP_MS=$(report_ms "$dir/checkpoint.out" "criu dump time")
    SPM_IMPORT_REPORTED_MS=$(report_ms "$dir/restore.out" "import time")
    SPM_CRIU_RESTORE_MS=$(report_ms "$dir/restore.out" "criu restore time")
    bench_check "$dir" "$pid" "$(bench_ready_value state)"
    bench_last_export "$dir/err.log"
    bench_last_import "$dir/err.log"
    bench_stop "$pid"
    rm -rf "$images"
}

run() {
    [ "$(id -u)" -eq 0 ] || bench_die "CRIU needs root (uid is $(id -u)); run bench/run as root"
    command -v criu >/dev/null || bench_die "criu is not installed (scripts/install-deps.sh)"
    command -v nft >/dev/null || bench_die "nft is missing: --network-lock nftables needs it"
    bench_setup
    bench_start_spmd
    bench_info criu "$(criu --version | sed -n 's/^Version: *//p')"
    bench_info enclave "heap S + 1 MiB; $tcs TCS; export and import on up to $nproc threads (spm's default: online CPUs)"
    bench_info control "bench_plain: no enclave; anonymous memory grown to the enclave process's"
    local s run
    for s in $sizes; do
        local group="S=${s}MiB" img=$BENCH_WORK/enclave-$s.signed
        bench_sign "$img" "$(bench_heap_for_mib "$s")" --tcs "$tcs"
        for run in $(bench_runs); do
            bench_log "S = $s MiB, run $run of $BENCH_RUNS (0 is the warm-up)"
            local edir=$BENCH_WORK/enclave-$s-$run pdir=$BENCH_WORK/plain-$s-$run
            SPM_LOG=info bench_start_holder "$edir" "$BENCH_BIN/bench_host" --enclave "$img" \
                --state "${s}M"
            local eready=$HOLD_READY anon
            anon=$(bench_ready_value anon)
            bench_start_holder "$pdir" "$BENCH_BIN/bench_plain" --anon "$anon"
            local pready=$HOLD_READY
            if ((run % 2 == 0)); then
                HOLD_READY=$pready plain_cycle "$pdir"
                HOLD_READY=$eready spm_cycle "$edir"
            else
                HOLD_READY=$eready spm_cycle "$edir"
                HOLD_READY=$pready plain_cycle "$pdir"
            fi
            local openssl
            openssl=$(bench_openssl_gcm 1)
            rm -rf "$edir" "$pdir"
            [ "$run" -gt 0 ] || continue
            local plain_total spm_total overhead budget
            plain_total=$(bench_calc "$PLAIN_DUMP_MS + $PLAIN_RESTORE_MS")
            spm_total=$(bench_calc "$SPM_CHECKPOINT_MS + $SPM_RESTORE_MS")
            overhead=$(bench_calc "$spm_total - $plain_total")
            budget=$(bench_calc "10 + 2.5 * $s * 1048576 / ($openssl * 1e9) * 1e3")
            bench_sample "$group" plain_dump ms "$run" "$PLAIN_DUMP_MS"
            bench_sample "$group" plain_restore ms "$run" "$PLAIN_RESTORE_MS"
            bench_sample "$group" plain_total ms "$run" "$plain_total"
            bench_sample "$group" spm_checkpoint ms "$run" "$SPM_CHECKPOINT_MS"
            bench_sample "$group" spm_restore ms "$run" "$SPM_RESTORE_MS"
            bench_sample "$group" spm_total ms "$run" "$spm_total"
            bench_sample "$group" overhead ms "$run" "$overhead"
            bench_sample "$group" export ms "$run" \
                "$(bench_calc "($EXPORT_DRAIN_US + $EXPORT_BEGIN_US + $EXPORT_ENCRYPT_US) / 1e3")"
            bench_sample "$group" key_handover ms "$run" \
                "$(bench_calc "($EXPORT_END_US + $IMPORT_BEGIN_US + $IMPORT_END_US) / 1e3")"
            bench_sample "$group" criu_dump ms "$run" \
                "$(bench_calc "$SPM_CRIU_DUMP_MS - $SPM_EXPORT_REPORTED_MS")"
            bench_sample "$group" criu_restore ms "$run" \
                "$(bench_calc "$SPM_CRIU_RESTORE_MS - $SPM_IMPORT_REPORTED_MS")"
            bench_sample "$group" rebuild ms "$run" "$(bench_calc "$IMPORT_REBUILD_US / 1e3")"
            bench_sample "$group" import ms "$run" \
                "$(bench_calc "($IMPORT_VERIFY_US + $IMPORT_DECRYPT_US) / 1e3")"
            bench_sample "$group" spm_cli ms "$run" "$(bench_calc "$spm_total - \
                ($SPM_CRIU_DUMP_MS - $SPM_EXPORT_REPORTED_MS) - ($SPM_CRIU_RESTORE_MS - \
                $SPM_IMPORT_REPORTED_MS) - ($EXPORT_TOTAL_US + $IMPORT_TOTAL_US) / 1e3")"
            bench_sample "$group" budget ms "$run" "$budget"
            bench_sample "$group" overhead_vs_budget x "$run" "$(bench_calc "$overhead / $budget")"
            bench_sample "$group" spm_vs_plain x "$run" "$(bench_calc "$spm_total / $plain_total")"
            bench_sample "$group" enclave_bytes bytes "$run" "$EXPORT_BYTES"
            bench_sample "$group" spm_image_bytes bytes "$run" "$SPM_IMAGE_BYTES"
            bench_sample "$group" plain_image_bytes bytes "$run" "$PLAIN_IMAGE_BYTES"
            bench_sample "$group" openssl_gcm GB/s "$run" "$openssl"
            bench_sample "$group" enclave_process_anon bytes "$run" \
                "$(HOLD_READY=$eready bench_ready_value anon)"
            bench_sample "$group" control_process_anon bytes "$run" \
                "$(HOLD_READY=$pready bench_ready_value anon)"
            bench_sample "$group" enclave_process_rss bytes "$run" \
                "$(HOLD_READY=$eready bench_ready_value rss)"
            bench_sample "$group" control_process_rss bytes "$run" \
                "$(HOLD_READY=$pready bench_ready_value rss)"
        done
        bench_target "$group" overhead_vs_budget "<=" 1 \
            "overhead over plain CRIU <= 10 ms + 2.5 x (S / one-core AES-GCM rate)"
    done
}

case "${1:-}" in
run) run ;;
plot) plot "$2" ;;
*)
    echo "usage: $0 run | plot DIR (started by bench/run)" >&2
    exit 2
    ;;
esac
