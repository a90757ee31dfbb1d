#!/usr/bin/env bash
# Part 1: enclave state encryption and decryption GB/s, 1 thread and all cores, vs openssl speed and memcpy.
#
# How fast enclave state is encrypted at checkpoint and decrypted at
# restore, with one thread and with every core, next to OpenSSL's
# AES-256-GCM on one core and memcpy, all measured in the same run.
#
# The enclave figures come from the real path: the benchmark enclave holds
# S MiB of state (256; 64 with --quick) and is exported and imported again
# in place through its control socket, exactly as the CRIU plugin asks for
# it, but without CRIU around it. One process per thread count T, its
# enclave signed with T TCSs, so that both the export (threads=T) and the
# import (one worker per idle TCS) run on T threads. Throughput is the
# state's bytes over the CKPT_ENCRYPT phase (encryption), and over
# RESTORE_VERIFY + RESTORE_DECRYPT (authenticated decryption), as libspm
# logs them. trusted_gcm_speed runs the same crypto adapter outside the
# enclave to show where the time goes (one-pass encryption, CTR and GHASH
# alone, in cache; the export's shape straight into a buffer, pre-faulted
# and freshly mapped; the import's copy-in shape), with memcpy over the same
# buffers.
# Ratios are computed per run: the enclave's one-thread encryption against
# OpenSSL's one-core figure of the same run, T threads against one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

state_mib=256
[ "${BENCH_QUICK:-0}" = 1 ] && state_mib=64
nproc=$(nproc)
thread_counts=$(printf '%s\n' 1 2 "$nproc" | awk '$1 <= n' n="$nproc" | sort -nu)

plot() {
    local dir=$1 summary=$1/../summary.csv data
    data=$(mktemp)
    # threads, then median/min/max of each figure in GB/s.
    for t in $thread_counts; do
        local row="$t"
        for m in enclave_encrypt enclave_decrypt adapter_encrypt_cache memcpy; do
            row+=$(awk -F, -v g="threads=$t" -v m="$m" \
                '$1 == "1-crypto" && $2 == g && $3 == m { printf ",%s,%s,%s", $6, $7, $8 }' "$summary")
        done
        echo "$row"
    done >"$data"
    local openssl
    openssl=$(awk -F, '$1 == "1-crypto" && $3 == "openssl_gcm" { print $6 }' "$summary")
    {
        bench_gnuplot_head "$dir/crypto-throughput.png" \
            "Enclave state encryption / decryption (GB/s), median with min-max"
        cat <<EOF2
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set ylabel "GB/s (10^9 bytes/s)"
set xlabel "threads"
set yrange [0:*]
set key outside right top vertical
set arrow from graph 0, first ${openssl:-0} to graph 1, first ${openssl:-0} nohead lw 2 dt 2 lc rgb "black"
set label sprintf("openssl speed aes-256-gcm, 1 core: %.2f GB/s", ${openssl:-0}) at graph 0.01, first ${openssl:-0} left offset 0,0.8
plot "$data" using 2:3:4:xtic(1) title "checkpoint encrypt (in enclave)", \
     "" using 5:6:7 title "restore verify+decrypt (in enclave)", \
     "" using 8:9:10 title "adapter one-pass AES-GCM, 16 KiB in cache", \
     "" using 11:12:13 title "memcpy, same bytes"
EOF2
    } | gnuplot
    rm -f "$data"
}

# profile PID DIR: perf profiles of one export and one import of the
# one-thread process, summarized by bench/lib/profile.py into the results
# directory and an info row each.
profile() {
    local pid=$1 dir=$2 step request base
    for step in export import; do
        request=$([ $step = export ] && echo "export threads=1" || echo resume)
        perf record -q -g -o "$BENCH_WORK/$step.perf" -p "$pid" -- sleep 3 2>/dev/null &
        local perf_pid=$!
        sleep 0.5
        bench_control "$pid" "$request" >/dev/null
        wait "$perf_pid" || bench_die "perf record failed"
        base=$(grep -o 'exported the enclave at 0x[0-9a-f]*' "$dir/err.log" | tail -n 1)
        python3 "$BENCH_SOURCE/bench/lib/profile.py" "$BENCH_WORK/$step.perf" "$BENCH_ELF" \
            "${base##* }" "$step of $state_mib MiB, 1 thread" >"$BENCH_OUT/profile-$step.txt" ||
            bench_die "cannot summarize the $step profile"
        cat "$BENCH_OUT/profile-$step.txt" >&2
        bench_info "profile_$step" "$(tail -n 1 "$BENCH_OUT/profile-$step.txt")"
    done
}

run() {
    bench_setup
    bench_start_spmd
    local t img dir
    declare -A pid_of dir_of
    export SPM_LOG=info
    for t in $thread_counts; do
        img=$BENCH_WORK/enclave-t$t.signed
        bench_sign "$img" "$(bench_heap_for_mib "$state_mib")" --tcs "$t"
        dir=$BENCH_WORK/host-t$t
        bench_start_holder "$dir" "$BENCH_BIN/bench_host" --enclave "$img" --state "${state_mib}M"
        pid_of[$t]=$HOLD_PID
        dir_of[$t]=$dir
        bench_log "enclave process with $t TCS: $HOLD_READY"
    done
    unset SPM_LOG
    local state
    state=$(bench_ready_value state)
    bench_info state_bytes "$state"
    bench_info threads "${thread_counts//$'\n'/ }"
    bench_info openssl "$(openssl version)"
    bench_info method "enclave figures: export/import in place through the control socket of an SPM process holding $state_mib MiB; adapter figures: trusted_gcm_speed over $state_mib MiB"

    local run openssl enc1=0 dec1=0
    for run in $(bench_runs); do
        bench_log "run $run of $BENCH_RUNS (0 is the warm-up)"
        openssl=$(bench_openssl_gcm 1)
        [ "$run" -gt 0 ] && bench_sample "one core" openssl_gcm GB/s "$run" "$openssl"
        for t in $thread_counts; do
            local group="threads=$t" reply
            reply=$(bench_control "${pid_of[$t]}" "export threads=$t")
            [[ $reply == ok* ]] || bench_die "export with $t threads: $reply"
            reply=$(bench_control "${pid_of[$t]}" "resume")
            [[ $reply == ok* ]] || bench_die "import with $t threads: $reply"
            bench_last_export "${dir_of[$t]}/err.log"
            bench_last_import "${dir_of[$t]}/err.log"
            if [ "$EXPORT_THREADS" != "$t" ] || [ "$IMPORT_THREADS" != "$t" ]; then
                bench_die "wanted $t threads, export ran $EXPORT_THREADS, import $IMPORT_THREADS"
            fi
            local enc dec
            enc=$(bench_calc "$EXPORT_BYTES / $EXPORT_ENCRYPT_US / 1e3")
            dec=$(bench_calc "$IMPORT_BYTES / ($IMPORT_VERIFY_US + $IMPORT_DECRYPT_US) / 1e3")
            if [ "$t" = 1 ]; then
                enc1=$enc dec1=$dec
            fi
            local speed
            speed=$("$BENCH_BIN/trusted_gcm_speed" --threads "$t" --size "$state_mib" --csv) ||
                bench_die "trusted_gcm_speed --threads $t failed"
            [ "$run" -gt 0 ] || continue
            bench_sample "$group" enclave_encrypt GB/s "$run" "$enc"
            bench_sample "$group" enclave_decrypt GB/s "$run" "$dec"
            bench_sample "$group" export_ms ms "$run" "$(bench_calc "$EXPORT_TOTAL_US / 1e3")"
            bench_sample "$group" import_ms ms "$run" "$(bench_calc "$IMPORT_TOTAL_US / 1e3")"
            local name rate
            while IFS=, read -r name _ rate; do
                bench_sample "$group" "adapter_$name" GB/s "$run" "$rate"
            done < <(grep -v '^memcpy,' <<<"$speed")
            bench_sample "$group" memcpy GB/s "$run" "$(awk -F, '$1 == "memcpy" { print $3 }' <<<"$speed")"
            if [ "$t" = 1 ]; then
                bench_sample "$group" encrypt_vs_openssl x "$run" "$(bench_calc "$enc / $openssl")"
                bench_sample "$group" decrypt_vs_openssl x "$run" "$(bench_calc "$dec / $openssl")"
                bench_sample "$group" adapter_encrypt_vs_openssl x "$run" \
                    "$(bench_calc "$(awk -F, '$1 == "encrypt_cache" { print $3 }' <<<"$speed") / $openssl")"
            else
                bench_sample "$group" encrypt_vs_1_thread x "$run" "$(bench_calc "$enc / $enc1")"
                bench_sample "$group" decrypt_vs_1_thread x "$run" "$(bench_calc "$dec / $dec1")"
            fi
        done
    done
    if [ "${BENCH_PROFILE:-0}" = 1 ]; then
        profile "${pid_of[1]}" "${dir_of[1]}"
    fi
    for t in $thread_counts; do
        bench_check "${dir_of[$t]}" "${pid_of[$t]}" "$state"
    done
    bench_log "every enclave still holds all $state bytes after $((BENCH_RUNS + 1)) export/import cycles"
    bench_target "threads=1" encrypt_vs_openssl ">=" 0.8 \
        "encryption with one thread >= 0.8 x openssl speed AES-256-GCM on one core"
    if [ "$nproc" -ge 2 ]; then
        bench_target "threads=2" encrypt_vs_1_thread ">=" 1.6 \
            "encryption with two threads >= 1.6 x the one-thread figure"
    fi
}

case "${1:-}" in
run) run ;;
plot) plot "$2" ;;
*)
    echo "usage: $0 run | plot DIR (started by bench/run)" >&2
    exit 2
    ;;
esac
