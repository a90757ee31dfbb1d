#!/usr/bin/env bash
# Part 5: kvs vs redis-server under redis-benchmark (SET, GET, INCR; 50 clients).
#
# The kvs example (a Redis-protocol store whose data lives in an
# enclave) against Debian's redis-server on the same machine, both driven by
# the same `redis-benchmark -t set,get,incr -c 50 -n N --csv` (N = 100000;
# 20000 with --quick). redis-server runs with persistence off (--save ''
# --appendonly no), as kvs has none, on 127.0.0.1 like kvs; everything else
# is its default (one main thread serving clients). kvs runs as shipped
# (one worker thread per TCS of its enclave) and, for a like-for-like
# thread count, with --threads 1. In every run the three servers are
# benchmarked one after the other, in rotating order, and the ratio of
# requests/s is taken within the run.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "$0")/../lib/common.sh"

requests=100000
[ "${BENCH_QUICK:-0}" = 1 ] && requests=20000
tests="SET GET INCR"
servers="redis kvs kvs1"

plot() {
    local dir=$1 summary=$1/../summary.csv data
    data=$(mktemp)
    for t in $tests; do
        awk -F, -v g="$t" '
            $1 == "5-kvs" && $2 == g { med[$3] = $6; lo[$3] = $7; hi[$3] = $8 }
            END {
                printf "%s", g
                n = split("redis_rps kvs_rps kvs1_rps", m, " ")
                for (i = 1; i <= n; i++) printf ",%s,%s,%s", med[m[i]], lo[m[i]], hi[m[i]]
                printf "\n"
            }' "$summary"
    done >"$data"
    {
        bench_gnuplot_head "$dir/kvs-vs-redis.png" \
            "redis-benchmark -c 50: requests/s (median, min-max)"
        cat <<EOF2
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set ylabel "requests/s"
set yrange [0:*]
set key outside right top vertical
plot "$data" using 2:3:4:xtic(1) title "redis-server (1 main thread)", \
     "" using 5:6:7 title "kvs (one worker per TCS)", \
     "" using 8:9:10 title "kvs --threads 1"
EOF2
    } | gnuplot
    rm -f "$data"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: redis-cli PING answers.
wait_port() {
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

threads_of() { sed -n 's/^Threads:[[:space:]]*//p' "/proc/$1/status"; }

declare -A port_of pid_of

start_kvs() { # NAME [KVS-OPTIONS...]
    local name=$1 log=$BENCH_WORK/$1.log ready='' i
    shift
    setsid "$KVS" --enclave "$KVS_IMAGE" --platform "$SPM_PLATFORM" --port 0 "$@" \
        </dev/null >"$BENCH_WORK/$name.out" 2>"$log" &
    pid_of[$name]=$!
    bench_track "${pid_of[$name]}"
    for ((i = 0; i < 300; i++)); do
        ready=$(grep -m1 '^kvs: serving on ' "$log" || true)
        [ -n "$ready" ] && break
        kill -0 "${pid_of[$name]}" 2>/dev/null || bench_die "kvs exited: $(cat "$log")"
        sleep 0.05
    done
    [[ $ready =~ ^kvs:\ serving\ on\ 127\.0\.0\.1:([0-9]+)\ with\ ([0-9]+)\ threads ]] ||
        bench_die "kvs not ready: [$ready]"
    port_of[$name]=${BASH_REMATCH[1]}
    bench_info "${name}_workers" "${BASH_REMATCH[2]} worker threads; $(threads_of "${pid_of[$name]}") threads in the process"
}

# bench_one NAME: one redis-benchmark against server NAME; sets RPS[TEST].
declare -A RPS
bench_one() {
    local name=$1 out line test rps
    out=$(timeout 600 redis-benchmark -h 127.0.0.1 -p "${port_of[$name]}" -t set,get,incr \
        -c 50 -n "$requests" --csv 2>&1) || bench_die "redis-benchmark against $name failed: $out"
    RPS=()
    while IFS= read -r line; do
        [[ $line =~ ^\"([A-Z]+)\",\"([0-9.]+)\" ]] || continue
        test=${BASH_REMATCH[1]} rps=${BASH_REMATCH[2]}
        RPS[$test]=$rps
    done <<<"$out"
    for test in $tests; do
        [ -n "${RPS[$test]:-}" ] || bench_die "no $test result from redis-benchmark against $name: $out"
    done
}

run() {
    for tool in redis-server redis-benchmark redis-cli; do
        command -v "$tool" >/dev/null || bench_die "$tool is missing (scripts/install-deps.sh installs it)"
    done
    bench_setup
    KVS=$BENCH_BUILD/examples/kvs/kvs
    KVS_IMAGE=$BENCH_BUILD/examples/kvs/kvs_enclave.signed
    if [ ! -x "$KVS" ] || [ ! -f "$KVS_IMAGE" ]; then
        bench_die "kvs is not built in $BENCH_BUILD"
    fi
    local tcs
    tcs=$("$SPM" inspect "$KVS_IMAGE" | sed -n 's/^TCS count *//p')
    bench_info kvs_enclave "$tcs TCS; $("$SPM" inspect "$KVS_IMAGE" | sed -n 's/^heap *//p') heap"
    port_of[redis]=$(free_port)
    mkdir -p "$BENCH_WORK/redis"
    setsid redis-server --bind 127.0.0.1 --port "${port_of[redis]}" --save '' --appendonly no \
        --dir "$BENCH_WORK/redis" </dev/null >"$BENCH_WORK/redis.log" 2>&1 &
    pid_of[redis]=$!
    bench_track "${pid_of[redis]}"
    wait_port "${port_of[redis]}" "${pid_of[redis]}" ||
        bench_die "redis-server did not start: $(tail -n 5 "$BENCH_WORK/redis.log")"
    bench_info redis "$(redis-server --version | cut -d' ' -f1-3); io-threads $(redis-cli -p "${port_of[redis]}" CONFIG GET io-threads | tail -n 1); $(threads_of "${pid_of[redis]}") threads in the process"
    start_kvs kvs
    start_kvs kvs1 --threads 1
    bench_info client "redis-benchmark -t set,get,incr -c 50 -n $requests --csv (same for every server); $(nproc) CPUs shared by servers and client"

    local run name order
    for run in $(bench_runs); do
        bench_log "run $run of $BENCH_RUNS (0 is the warm-up)"
        # Rotate the order so that no server always runs first.
        order=$(awk -v r="$run" '{ n = split($0, s, " "); for (i = 0; i < n; i++) printf "%s ", s[(i + r) % n + 1] }' <<<"$servers")
        declare -A result=()
        for name in $order; do
            bench_one "$name"
            local test
            for test in $tests; do
                result[$name.$test]=${RPS[$test]}
            done
        done
        [ "$run" -gt 0 ] || continue
        for test in $tests; do
            for name in $servers; do
                bench_sample "$test" "${name}_rps" requests/s "$run" "${result[$name.$test]}"
            done
            bench_sample "$test" kvs_vs_redis x "$run" \
                "$(bench_calc "${result[kvs.$test]} / ${result[redis.$test]}")"
            bench_sample "$test" kvs1_vs_redis x "$run" \
                "$(bench_calc "${result[kvs1.$test]} / ${result[redis.$test]}")"
        done
    done
    for name in kvs kvs1; do
        kill -TERM "${pid_of[$name]}" 2>/dev/null || true
        bench_wait_gone "${pid_of[$name]}" 15 || bench_log "warning: $name did not stop on SIGTERM"
        grep -m1 '^kvs: stopped' "$BENCH_WORK/$name.log" >&2 || true
    done
    local test
    for test in $tests; do
        bench_target "$test" kvs_vs_redis ">=" 0.5 "kvs >= 0.5 x redis-server requests/s"
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
