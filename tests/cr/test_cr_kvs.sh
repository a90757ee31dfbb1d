#!/usr/bin/env bash
# kvs across checkpoint/restore (zdtm protocol), for 1 MiB and 64 MiB of
# values, with `spm checkpoint`/`spm restore` and then plain `criu dump`/
# `criu restore` with the plugin: every key and value, the INCR counters
# and the enclave's signing key (a signature made after restore verifies
# with the public key fetched before) come back. redis-benchmark clients
# are connected and running while the checkpoint is taken; their TCP
# connections are restored (--tcp-established) and they finish with no
# error and an exact INCR count; an idle connection opened before answers
# PING after; fresh clients connect after. Prints export/import and CRIU
# dump/restore times for each size.
set -euo pipefail
# shellcheck source=cr_lib.sh
source "${CR_LIB:?run from meson}"
for tool in redis-cli redis-benchmark openssl python3; do
    command -v "$tool" >/dev/null || cr_skip "$tool is not installed (Debian: redis-tools, openssl, python3)"
done
cr_require_root_and_criu
cr_find_pieces
cr_setup
cr_start_spmd || fail "spmd did not start (see $CR_WORK/spmd.log)"
DATA=$(dirname "$CR_LIB")/kvs_data.py
BENCH_PID=
TIMINGS=()

kvs_cleanup() {
    exec 3<&- 2>/dev/null || true
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -KILL "$BENCH_PID" 2>/dev/null || true
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    cr_cleanup
}
trap kvs_cleanup EXIT

cli() {
    redis-cli -p "$PORT" "$@"
}

expect() {
    local want=$1 got
    shift
    got=$(cli --no-raw "$@" 2>&1) || true
    [ "$got" == "$want" ] || fail "redis-cli $*: expected [$want], got [$got]"
}

# start_background_clients N: a redis-benchmark doing N INCRs on 8
# connections, plus an idle raw connection on fd 3.
start_background_clients() {
    local n=$1
    redis-benchmark -p "$PORT" -t incr -n "$n" -c 8 -q >"$CR_WORK/bench.out" 2>&1 &
    BENCH_PID=$!
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    sleep 1
    kill -0 "$BENCH_PID" 2>/dev/null ||
        fail "redis-benchmark finished before the checkpoint: raise -n (it must be connected during it)"
    cr_log "redis-benchmark (pid $BENCH_PID, $n INCRs on 8 connections) and an idle connection are attached"
}

# finish_background_clients LABEL: the benchmark ends cleanly, the idle
# connection answers.
finish_background_clients() {
    local label=$1 status=0 line
    printf 'PING\r\n' >&3
    IFS= read -r -t 30 line <&3 || fail "$label: the idle connection opened before the checkpoint got no reply"
    [ "${line%$'\r'}" == "+PONG" ] || fail "$label: idle connection got [$line]"
    exec 3<&-
    wait "$BENCH_PID" || status=$?
    BENCH_PID=
    local out clean
    out=$(<"$CR_WORK/bench.out")
    clean=$(tr '\r' '\n' <<<"$out" | grep -v 'rps=' | grep -v '^[[:space:]]*$' || true)
    [ $status -eq 0 ] || fail "$label: redis-benchmark exited with $status: $clean"
    if grep -qiE 'error|fail|refused|reset' <<<"$clean"; then
        fail "$label: redis-benchmark reported: $clean"
    fi
    grep -qE '^INCR: [0-9.]+ requests per second' <<<"$clean" || fail "$label: no INCR result: $clean"
    cr_log "$label: the clients attached across the checkpoint finished cleanly; the idle connection answered PONG"
}

# report_numbers LABEL LOG...: the timing lines of spm's reports.
report_numbers() {
    local label=$1 line
    shift
    while IFS= read -r line; do
        TIMINGS+=("$label: $line")
    done < <(grep -hiE '[0-9]+(\.[0-9]+)? *(us|ms|s)\b|_us=|_ms=|time|took' "$@" || true)
}

run_size() {
    local label=$1 total=$2 value_size=$3
    local seed
    seed=$(cr_random_seed)
    local log=$CR_WORK/kvs-$label.log
    setsid "$CR_KVS" --enclave "$CR_KVS_IMAGE" --platform "$SPM_PLATFORM" --port 0 \
        </dev/null >>"$CR_WORK/kvs-$label.out" 2>>"$log" &
    local pid=$!
    CR_PIDS+=("$pid")
    local ready='' i
    for ((i = 0; i < 300; i++)); do
        ready=$(grep -m1 '^kvs: serving on ' "$log" || true)
        [ -n "$ready" ] && break
        kill -0 "$pid" 2>/dev/null || fail "kvs exited before it was ready"
        sleep 0.1
    done
    [[ $ready =~ ^kvs:\ serving\ on\ 127\.0\.0\.1:([0-9]+)\  ]] || fail "kvs not ready: [$ready]"
    PORT=${BASH_REMATCH[1]}
    cr_log "kvs $label: pid $pid, port $PORT"

    python3 "$DATA" load "$PORT" "$seed" "$total" "$value_size" || fail "loading kvs failed"
    redis-benchmark -p "$PORT" -t incr -n 20000 -q >/dev/null 2>&1 || fail "initial redis-benchmark failed"
    expect '"20000"' GET 'counter:__rand_int__'
    local incrs=20000
    local pub
    pub=$(cli --raw KVS.PUBKEY)
    [[ $pub =~ ^04[0-9a-f]{128}$ ]] || fail "KVS.PUBKEY: [$pub]"
    python3 "$CR_KVS_DER" pubkey "$pub" >"$CR_WORK/pub.pem" || fail "cannot encode the public key"

    local cycle
    for cycle in spm criu; do
        local dir=$CR_WORK/img-$label-$cycle n=400000
        start_background_clients $n
        incrs=$((incrs + n))
        local t0 t1 t2
        t0=$(date +%s%N)
        if [ $cycle == spm ]; then
            cr_spm_checkpoint "$pid" "$dir" || fail "$label: spm checkpoint failed"
            t1=$(date +%s%N)
            kill -0 "$BENCH_PID" 2>/dev/null || cr_log "note: redis-benchmark ended during the checkpoint"
            cr_assert_gone "$pid" "$label: after spm checkpoint"
            cr_spm_restore "$dir" || fail "$label: spm restore failed"
            t2=$(date +%s%N)
            report_numbers "kvs $label spm checkpoint" "$dir.checkpoint.log"
            report_numbers "kvs $label spm restore" "$CR_LAST_RESTORE_LOG"
        else
            cr_criu_dump "$pid" "$dir" || fail "$label: criu dump failed: $(tail -n 5 "$dir/dump.log")"
            t1=$(date +%s%N)
            cr_assert_gone "$pid" "$label: after criu dump"
            cr_criu_restore "$dir" || fail "$label: criu restore failed"
            t2=$(date +%s%N)
            # CRIU does not report the enclave's part: ask the process.
            local state
            state=$(cr_control "$pid" "status wait_ms=30000") || fail "$label: no control status after criu restore"
            [[ $state =~ state=live ]] || fail "$label: after criu restore the enclave is not live: $state"
            [[ $state =~ export_us=([0-9]+)\ import_us=([0-9]+) ]] &&
                TIMINGS+=("kvs $label criu: enclave export ${BASH_REMATCH[1]} us, import ${BASH_REMATCH[2]} us (control status)")
        fi
        TIMINGS+=("kvs $label $cycle: wall clock checkpoint $(((t1 - t0) / 1000000)) ms, restore $(((t2 - t1) / 1000000)) ms")
        kill -0 "$pid" 2>/dev/null || fail "$label: kvs not running after the $cycle restore"
        finish_background_clients "$label $cycle"
        python3 "$DATA" verify "$PORT" "$seed" "$total" "$value_size" ||
            fail "$label: data lost across the $cycle checkpoint"
        expect "\"$incrs\"" GET 'counter:__rand_int__'
        [ "$(cli --raw KVS.PUBKEY)" == "$pub" ] || fail "$label: the public key changed across the $cycle checkpoint"
        local msg sig
        msg="restored by $cycle at $(date +%s%N)"
        sig=$(cli --raw KVS.SIGN "$msg")
        [[ $sig =~ ^[0-9a-f]{128}$ ]] || fail "KVS.SIGN: [$sig]"
        python3 "$CR_KVS_DER" sig "$sig" "$CR_WORK/sig.der" || fail "cannot encode the signature"
        printf '%s' "$msg" >"$CR_WORK/msg"
        local verify
        verify=$(openssl dgst -sha256 -verify "$CR_WORK/pub.pem" -signature "$CR_WORK/sig.der" \
            "$CR_WORK/msg" 2>&1) || fail "$label: a signature made after the $cycle restore does not verify with the key fetched before: $verify"
        cr_log "$label $cycle: all values, counters (INCR total $incrs exact) and the signing key survived; post-restore signature verified by openssl"
        # Fresh clients after the restore.
        redis-benchmark -p "$PORT" -t set,get,incr -n 20000 -c 20 -q >"$CR_WORK/bench2.out" 2>&1 ||
            fail "$label: redis-benchmark after the $cycle restore failed: $(<"$CR_WORK/bench2.out")"
        incrs=$((incrs + 20000))
        expect "\"$incrs\"" GET 'counter:__rand_int__'
        cr_log "$label $cycle: new clients after restore: 20000 SET/GET/INCR each, counter exact"
    done
    kill -TERM "$pid"
    cr_wait_gone "$pid" 15 || fail "kvs did not stop on SIGTERM"
    grep -m1 '^kvs: stopped; served ' "$log" || true
}

run_size 1MiB $((1 << 20)) $((16 << 10))
run_size 64MiB $((64 << 20)) $((256 << 10))

echo "==== measured (kvs holding 1 MiB and 64 MiB of values) ===="
for line in "${TIMINGS[@]}"; do
    echo "  $line"
done
echo "PASS"
