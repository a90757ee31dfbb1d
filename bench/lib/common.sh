# shellcheck shell=bash disable=SC2034
# Shared by the benchmark parts (bench/parts/*.sh); sourced, not run.
#
# A part is an executable script that bench/run starts as
#     PART run          print result rows on stdout, progress on stderr
#     PART plot DIR     draw its PNGs into DIR from DIR/../summary.csv
# with BENCH_BUILD, BENCH_SOURCE, BENCH_RUNS, BENCH_QUICK and BENCH_PART in
# its environment. Result rows are CSV (fields never hold a comma):
#     sample,PART,GROUP,METRIC,UNIT,RUN,VALUE   one measurement; RUN 1..N
#     info,PART,KEY,VALUE                       a fact the reader needs
#     target,PART,GROUP,METRIC,OP,LIMIT,TEXT    the issue's target: the
#                                               median of METRIC OP LIMIT
# bench/lib/aggregate.py turns them into medians, min and max. Every
# comparison is a ratio a part computes from figures of the same run and
# prints as its own sample, so the median of the ratios is reported, never
# a ratio of medians taken at different times.
#
# Each part works in its own directory under /tmp (its own CA, simulated
# platform, spmd state and socket, control-socket run directory and CRIU
# plugin directory), ends every process it started by PID, and removes the
# nftables table of any dump of its own that was not restored.

bench_log() { echo "[$(date +%T)] ${BENCH_PART:-bench}: $*" >&2; }

bench_die() {
    echo "[$(date +%T)] ${BENCH_PART:-bench}: FAILED: $*" >&2
    exit 1
}

bench_sample() { # GROUP METRIC UNIT RUN VALUE
    printf 'sample,%s,%s,%s,%s,%s,%s\n' "$BENCH_PART" "$1" "$2" "$3" "$4" "$5"
}

bench_info() { # KEY VALUE...
    local key=$1
    shift
    printf 'info,%s,%s,%s\n' "$BENCH_PART" "$key" "$*"
}

bench_target() { # GROUP METRIC OP LIMIT TEXT...
    local group=$1 metric=$2 op=$3 limit=$4
    shift 4
    printf 'target,%s,%s,%s,%s,%s,%s\n' "$BENCH_PART" "$group" "$metric" "$op" "$limit" "$*"
}

bench_now_ns() { date +%s%N; }

# Floating-point arithmetic for the rows: bench_calc EXPR (awk syntax).
bench_calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

# Runs counted by the driver: run 0 is the warm-up and is never printed.
bench_runs() { seq 0 "${BENCH_RUNS:?}"; }

BENCH_PIDS=() # "PID:START" of each process started here and not yet ended
BENCH_WORK=
BENCH_SPMD_PID=
BENCH_SPMD_START=

# The start time of PID (field 22 of /proc/PID/stat), empty if gone: with
# the PID it names one process, not whichever later gets its number.
bench_start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $stat
    echo "${20}"
}

bench_untrack() {
    local kept=() entry
    for entry in "${BENCH_PIDS[@]}"; do
        [ "${entry%%:*}" = "$1" ] || kept+=("$entry")
    done
    BENCH_PIDS=("${kept[@]}")
}

# bench_track PID: ended at exit, if it is still the same process (a
# restored process is tracked again: CRIU gives it a new start time).
# Background processes are disowned: the shell still reaps them, but
# reports no "Killed" line when they are ended, and they are waited for
# through /proc.
bench_track() {
    bench_untrack "$1"
    BENCH_PIDS+=("$1:$(bench_start_time "$1")")
    disown "$1" 2>/dev/null || true
}

# bench_wait_gone PID SECONDS: true once PID no longer exists.
bench_wait_gone() {
    local pid=$1 seconds=${2:-10} i
    for ((i = 0; i < seconds * 50; i++)); do
        [ -e "/proc/$pid" ] || return 0
        sleep 0.02
    done
    return 1
}

# bench_stop PID: SIGKILL and wait until the PID is free again.
bench_stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    bench_untrack "$pid"
    kill -KILL "$pid" 2>/dev/null || true
    bench_wait_gone "$pid" 10 || bench_log "warning: pid $pid still present"
}

# CRIU's network lock (--network-lock nftables) is a table named after the
# dump's uuid, removed by the restore. A dump that is never restored (a
# failed run) leaves it behind: bench_dumped records the images directory,
# bench_restored forgets it, and cleanup drops the tables still recorded.
BENCH_DUMPS=()

bench_dumped() { BENCH_DUMPS+=("$1"); }

bench_restored() {
    local kept=() dir
    for dir in "${BENCH_DUMPS[@]}"; do
        [ "$dir" = "$1" ] || kept+=("$dir")
    done
    BENCH_DUMPS=("${kept[@]}")
}

bench_drop_lock_table() {
    local uuid
    uuid=$(grep -aom1 '[0-9a-f]\{8\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{4\}-[0-9a-f]\{12\}' \
        "$1/inventory.img" 2>/dev/null) || return 0
    # CRIU cuts the name to 26 characters.
    nft delete table inet "CRIU-${uuid:0:21}" 2>/dev/null || true
}

bench_cleanup() {
    local entry pid ended=() dir
    for dir in "${BENCH_DUMPS[@]}"; do
        bench_drop_lock_table "$dir"
    done
    [ -n "$BENCH_SPMD_PID" ] && BENCH_PIDS+=("$BENCH_SPMD_PID:$BENCH_SPMD_START")
    for entry in "${BENCH_PIDS[@]}"; do
        pid=${entry%%:*}
        if [ -z "$pid" ] || [ "$(bench_start_time "$pid")" != "${entry#*:}" ]; then
            continue # gone, or its number now belongs to another process
        fi
        kill -KILL "$pid" 2>/dev/null || true
        ended+=("$pid")
    done
    for pid in "${ended[@]}"; do
        bench_wait_gone "$pid" 10 || bench_log "warning: pid $pid still present after cleanup"
    done
    if [ -n "$BENCH_WORK" ] && [ -z "${BENCH_KEEP:-}" ]; then
        rm -rf "$BENCH_WORK"
    elif [ -n "$BENCH_WORK" ]; then
        bench_log "BENCH_KEEP set: work directory kept at $BENCH_WORK"
    fi
}

# The build's programs.
bench_find_pieces() {
    : "${BENCH_BUILD:?run through bench/run}" "${BENCH_SOURCE:?}"
    SPM=$BENCH_BUILD/src/cli/spm
    SPMD=$BENCH_BUILD/src/daemon/spmd
    ME_IMAGE=$BENCH_BUILD/src/enclaves/me/me_enclave.signed
    PLUGIN=$BENCH_BUILD/src/criu-plugin/spm_criu.so
    BENCH_BIN=$BENCH_BUILD/bench
    BENCH_KEY=$BENCH_BIN/bench-signing-key.pem
    BENCH_ELF=$BENCH_BIN/bench_enclave.elf
    local f
    for f in "$SPM" "$SPMD" "$ME_IMAGE" "$BENCH_KEY" "$BENCH_ELF" "$BENCH_BIN/bench_host"; do
        [ -e "$f" ] || bench_die "$f is not built (bench/run builds $BENCH_BUILD)"
    done
}

# bench_setup: a private work directory with its own CA and platform;
# exports what spm, libspm and spmd read.
bench_setup() {
    bench_find_pieces
    BENCH_WORK=$(mktemp -d "/tmp/bench-${BENCH_PART:-part}.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$BENCH_WORK/run" "$BENCH_WORK/plugins" "$BENCH_WORK/no-plugins" \
        "$BENCH_WORK/spmd-state"
    "$SPM" ca init --dir "$BENCH_WORK/ca" >/dev/null || bench_die "spm ca init failed"
    "$SPM" platform init --platform "$BENCH_WORK/platform" --ca "$BENCH_WORK/ca" >/dev/null ||
        bench_die "spm platform init failed"
    export SPM_PLATFORM=$BENCH_WORK/platform
    export SPM_RUN_DIR=$BENCH_WORK/run
    export SPM_SPMD_SOCKET=$BENCH_WORK/spmd.sock
    # This build's plugin, whatever is installed in CRIU's default directory
    # (--libdir replaces the default, so no other copy is loaded).
    ln -s "$PLUGIN" "$BENCH_WORK/plugins/spm_criu.so"
    export SPM_CRIU_PLUGIN_DIR=$BENCH_WORK/plugins
    unset SPM_LOG
    bench_log "work directory $BENCH_WORK"
}

bench_start_spmd() {
    rm -f "$SPM_SPMD_SOCKET"
    setsid "$SPMD" --state "$BENCH_WORK/spmd-state" --socket "$SPM_SPMD_SOCKET" \
        --platform "$SPM_PLATFORM" --me "$ME_IMAGE" </dev/null >>"$BENCH_WORK/spmd.log" 2>&1 &
    BENCH_SPMD_PID=$!
    BENCH_SPMD_START=$(bench_start_time "$BENCH_SPMD_PID")
    disown "$BENCH_SPMD_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
        [ -S "$SPM_SPMD_SOCKET" ] && return 0
        kill -0 "$BENCH_SPMD_PID" 2>/dev/null || bench_die "spmd exited: $(tail -n 5 "$BENCH_WORK/spmd.log")"
        sleep 0.05
    done
    bench_die "spmd did not create $SPM_SPMD_SOCKET in 15 s"
}

# bench_sign OUT HEAP [SPM-SIGN-OPTIONS...]: the benchmark enclave signed
# with this heap (and e.g. --tcs N, --elrange SIZE).
bench_sign() {
    local out=$1 heap=$2
    shift 2
    "$SPM" sign --key "$BENCH_KEY" --in "$BENCH_ELF" --out "$out" --heap "$heap" "$@" \
        >"$out.sign.log" 2>&1 || bench_die "spm sign --heap $heap $*: $(cat "$out.sign.log")"
}

# Heap for STATE MiB of benchmark state: the state plus the allocator's
# margin (bench_abi.h), in whole MiB.
bench_heap_for_mib() { echo "$(($1 + 1))M"; }

# bench_wait_file FILE SECONDS [PID]: true once FILE exists; false after
# SECONDS or as soon as PID has exited.
bench_wait_file() {
    local file=$1 seconds=$2 pid=${3:-} i
    for ((i = 0; i < seconds * 100; i++)); do
        [ -f "$file" ] && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.01
    done
    return 1
}

# bench_start_holder DIR COMMAND...: starts bench_host or bench_plain
# detached with stdio in DIR, waits for DIR/ready. Sets HOLD_PID and
# HOLD_READY (the ready line).
bench_start_holder() {
    local dir=$1
    shift
    mkdir -p "$dir"
    rm -f "$dir/ready" "$dir/check"
    setsid "$@" --dir "$dir" </dev/null >>"$dir/out.log" 2>>"$dir/err.log" &
    HOLD_PID=$!
    bench_track "$HOLD_PID"
    bench_wait_file "$dir/ready" 120 "$HOLD_PID" ||
        bench_die "$1 did not start: $(tail -n 5 "$dir/err.log")"
    HOLD_READY=$(<"$dir/ready")
}

# bench_ready_value KEY: a value of the last ready line.
bench_ready_value() {
    [[ " $HOLD_READY " =~ \ $1=([^ ]+)\  ]] || bench_die "no $1 in '$HOLD_READY'"
    echo "${BASH_REMATCH[1]}"
}

# bench_check DIR PID BYTES: the held memory came back, every byte of it.
bench_check() {
    local dir=$1 pid=$2 bytes=$3 reply
    rm -f "$dir/check"
    kill -USR1 "$pid" 2>/dev/null || bench_die "pid $pid is gone"
    bench_wait_file "$dir/check" 120 "$pid" || bench_die "pid $pid did not answer the check"
    reply=$(<"$dir/check")
    [ "$reply" == "ok bytes=$bytes" ] || bench_die "check of pid $pid: $reply (want $bytes bytes)"
}

# bench_control PID REQUEST: one request on the process's control socket
# (src/host/control/control.h); prints the reply line.
BENCH_CONTROL_REQUEST=$(readlink -f "$(dirname "${BASH_SOURCE[0]}")/../../scripts/control-request.py")
bench_control() {
    "$BENCH_CONTROL_REQUEST" "$SPM_RUN_DIR/$1.ctl" "$2" 300
}

# bench_openssl_gcm: OpenSSL's AES-256-GCM on one core over 16 KiB
# buffers, in GB/s (10^9 bytes/s).
bench_openssl_gcm() {
    local out rate
    out=$(openssl speed -evp aes-256-gcm -seconds "${1:-1}" -bytes 16384 -mr 2>/dev/null) ||
        bench_die "openssl speed failed"
    rate=$(sed -n 's/^+F:[0-9]*:[^:]*:\([0-9.]*\).*/\1/p' <<<"$out" | tail -n 1)
    [ -n "$rate" ] || bench_die "cannot parse openssl speed: $out"
    bench_calc "$rate / 1e9"
}

# The phase times of the last export and import logged by an SPM process
# run with SPM_LOG=info (src/host/urts/checkpoint.c), in microseconds:
# sets EXPORT_{TOTAL,DRAIN,BEGIN,ENCRYPT,END}_US and EXPORT_BYTES, or
# IMPORT_{TOTAL,REBUILD,BEGIN,VERIFY,DECRYPT,END}_US and IMPORT_BYTES.
bench_last_export() {
    local line
    line=$(grep 'spm: exported the enclave' "$1" | tail -n 1)
    [[ $line =~ :\ ([0-9]+)\ bytes,\ [0-9]+\ chunks,\ ([0-9]+)\ threads,\ ([0-9]+)\ us\ \(drain\ ([0-9]+),\ begin\ ([0-9]+),\ encrypt\ ([0-9]+),\ end\+teardown\ ([0-9]+)\) ]] ||
        bench_die "no export record in $1: [$line]"
    EXPORT_BYTES=${BASH_REMATCH[1]} EXPORT_THREADS=${BASH_REMATCH[2]}
    EXPORT_TOTAL_US=${BASH_REMATCH[3]} EXPORT_DRAIN_US=${BASH_REMATCH[4]}
    EXPORT_BEGIN_US=${BASH_REMATCH[5]} EXPORT_ENCRYPT_US=${BASH_REMATCH[6]}
    EXPORT_END_US=${BASH_REMATCH[7]}
}

bench_last_import() {
    local line
    line=$(grep 'spm: imported the enclave' "$1" | tail -n 1)
    [[ $line =~ :\ ([0-9]+)\ bytes,\ [0-9]+\ chunks,\ ([0-9]+)\ threads,\ ([0-9]+)\ us\ \(rebuild\ ([0-9]+),\ begin\ ([0-9]+),\ verify\ ([0-9]+),\ decrypt\ ([0-9]+),\ end\ ([0-9]+)\) ]] ||
        bench_die "no import record in $1: [$line]"
    IMPORT_BYTES=${BASH_REMATCH[1]} IMPORT_THREADS=${BASH_REMATCH[2]}
    IMPORT_TOTAL_US=${BASH_REMATCH[3]} IMPORT_REBUILD_US=${BASH_REMATCH[4]}
    IMPORT_BEGIN_US=${BASH_REMATCH[5]} IMPORT_VERIFY_US=${BASH_REMATCH[6]}
    IMPORT_DECRYPT_US=${BASH_REMATCH[7]} IMPORT_END_US=${BASH_REMATCH[8]}
}

# gnuplot's common settings for every part's PNGs.
bench_gnuplot_head() { # OUT.png TITLE
    cat <<EOF2
set terminal pngcairo size 1000,520 font "sans,10"
set output "$1"
set title "$2"
set grid ytics
set key top left
set datafile separator ","
EOF2
}
