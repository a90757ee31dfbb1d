#!/usr/bin/env bash
# Nothing secret on the wire or on disk in an spm migrate (DESIGN.md section
# 7): the checkpoint test enclave, filled from a random seed (8 MiB heap,
# globals, the stack of a thread parked in an ocall), runs in host a and is
# migrated to host b while both hosts' links are captured. Before the move
# the scanner must find the secret in the live process's memory (so the
# clean scans below can fail); after it the process runs in b only, its
# parked thread returns with its stack secret and heap and globals are
# intact at the same addresses; and no 16-byte window of the secret is in
# either capture, in either spmd's state (migration journals and images
# included), in any log, or in a kept copy of the images. The capture on
# a's link must hold at least the enclave bytes the report says were sent,
# so a clean scan of it is not a scan of nothing.
set -euo pipefail
# shellcheck source=spm_lib.sh
source "${SPM_LIB:?run from meson}"
mig_require python3 tcpdump
spm_setup
spm_host_up a b

HEAP=$((8 << 20)) # several 1 MiB chunks, as in tests/cr/test_cr_enclave.sh
SEED=$(cr_random_seed)

# secrets_host_start HOST: cr_host (CR_IMAGE_MAIN) in HOST's network
# namespace with HOST's platform and spmd, detached, its command directory
# $MIGRATE_WORK/host (cr_host_cmd's CR_WORK is MIGRATE_WORK). Sets HOST_PID,
# HOST_BASE. cr_start_host's logic, but inside the host: a migration moves
# the process from a namespace host, and the spmd it checkpoints through
# is that host's.
secrets_host_start() {
    local host=$1 dir=$MIGRATE_WORK/host hdir=$MIGRATE_WORK/$1 i ready
    mkdir -p "$dir"
    rm -f "$dir/ready" "$dir/cmd" "$dir/reply"
    SPM_PLATFORM=$hdir/platform SPM_SPMD_SOCKET=$hdir/spmd.sock setsid nsenter \
        --net="/run/netns/spm-$host" -- "$CR_HOST" --enclave "$CR_IMAGE_MAIN" \
        --platform "$hdir/platform" --dir "$dir" </dev/null >>"$dir/out.log" 2>>"$dir/err.log" &
    HOST_PID=$!
    MIGRATE_PIDS+=("$HOST_PID")
    for ((i = 0; i < 300; i++)); do
        [ -f "$dir/ready" ] && break
        kill -0 "$HOST_PID" 2>/dev/null || mig_fail "cr_host exited before it was ready: $(tail -3 "$dir/err.log")"
        sleep 0.05
    done
    [ -f "$dir/ready" ] || mig_fail "cr_host not ready after 15 s"
    ready=$(<"$dir/ready")
    [[ $ready =~ ^pid=([0-9]+)\ base=(0x[0-9a-f]+)\ size=(0x[0-9a-f]+)$ ]] ||
        mig_fail "unexpected ready line: $ready"
    [ "${BASH_REMATCH[1]}" == "$HOST_PID" ] ||
        mig_fail "cr_host says pid ${BASH_REMATCH[1]}, started as $HOST_PID (nsenter did not exec?)"
    HOST_BASE=${BASH_REMATCH[2]}
    cr_log "cr_host: pid $HOST_PID in host $host, ELRANGE $HOST_BASE + ${BASH_REMATCH[3]}"
}

# expect PID LINE REGEX: cr_expect_reply, failing through mig_fail.
expect() {
    local reply
    reply=$(cr_host_cmd host "$1" "$2")
    [[ $reply =~ $3 ]] || mig_fail "'$2' to cr_host (pid $1): expected /$3/, got [$reply]"
    cr_log "cr_host: $2 -> $reply"
}

secrets_host_start a
PID=$HOST_PID
[ "$(mig_pid_host "$PID")" == a ] || mig_fail "cr_host runs in [$(mig_pid_host "$PID")], not in host a"
reply=$(cr_host_cmd host "$PID" "fill $SEED $HEAP")
[[ $reply =~ ^ok\ heap=(0x[0-9a-f]+)\ globals= ]] || mig_fail "fill: [$reply]"
HEAP_ADDR=${BASH_REMATCH[1]}
cr_log "cr_host: filled, heap secret at $HEAP_ADDR"
expect "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
expect "$PID" park '^ok parked$'

# ---- The scanner can fail: the secret is in plain memory on this path ----
CR_SCAN_REGIONS="heap globals stack" cr_scan_found "live process memory in host a" "$SEED" "$HEAP" \
    "pid:$PID"

# ---- The migration, both links captured ----
CAP_A=$MIGRATE_WORK/wire-a.pcap
CAP_B=$MIGRATE_WORK/wire-b.pcap
KEPT=$MIGRATE_WORK/kept
mig_capture_start a "$CAP_A"
mig_capture_start b "$CAP_B"
cr_log "migrating pid $PID a -> b (captures on both links, images kept in $KEPT)"
spm_migrate a "$PID" b --keep-images "$KEPT" --json
mig_capture_stop a
mig_capture_stop b
[ "$MIGRATE_STATUS" -eq 0 ] || mig_fail "spm migrate failed ($MIGRATE_STATUS)"
report=$(tail -n 1 "$MIGRATE_WORK/migrate.out")
ENCLAVE_BYTES=$(python3 - "$report" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
assert r["ok"] is True, r
for k in ("enclave_bytes", "criu_bytes", "total_ms", "downtime_ms"):
    assert isinstance(r[k], (int, float)) and r[k] > 0, k
# The 8 MiB heap secret alone is in the enclave's export.
assert r["enclave_bytes"] > 8 << 20, r["enclave_bytes"]
assert r["criu_bytes"] >= r["enclave_bytes"], r
print(int(r["enclave_bytes"]))
EOF
) || mig_fail "the --json report is not what it should be: $report"
cr_log "report: enclave bytes $ENCLAVE_BYTES"

# ---- The process runs in b only, its secrets intact ----
spm_assert_one_copy "$PID" b
expect "$PID" info "^ok pid=$PID base=$HOST_BASE "
expect "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'
cr_log "the thread parked in an ocall across the migration returned into the enclave on b; its 16 KiB stack secret is intact"
expect "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"

# ---- The captures are not trivially empty ----
size_a=$(stat -c %s "$CAP_A")
size_b=$(stat -c %s "$CAP_B")
cr_log "captures: a's link $size_a B, b's link $size_b B"
[ "$size_a" -ge "$ENCLAVE_BYTES" ] ||
    mig_fail "the capture on a's link holds $size_a B, less than the $ENCLAVE_BYTES enclave bytes sent across it"
[ "$size_b" -ge "$ENCLAVE_BYTES" ] ||
    mig_fail "the capture on b's link holds $size_b B, less than the $ENCLAVE_BYTES enclave bytes sent across it"

# ---- The kept images and the state dirs hold what they should ----
pages=$(find "$KEPT" -name 'pages-*.img' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
[ "$pages" -ge "$ENCLAVE_BYTES" ] ||
    mig_fail "the kept images hold $pages B of pages, less than the $ENCLAVE_BYTES enclave bytes"
[ -d "$MIGRATE_WORK/a/state/migrations" ] || mig_fail "no migrations/ in a's spmd state"
[ -d "$MIGRATE_WORK/b/state/migrations" ] || mig_fail "no migrations/ in b's spmd state"

# ---- Clean: no 16-byte window of the secret anywhere it could have leaked ----
cr_scan_clean "capture on a's link" "$SEED" "$HEAP" "$CAP_A"
cr_scan_clean "capture on b's link" "$SEED" "$HEAP" "$CAP_B"
cr_scan_clean "spmd state of a and b (migrations/ included)" "$SEED" "$HEAP" \
    "$MIGRATE_WORK/a/state" "$MIGRATE_WORK/b/state"
cr_scan_clean "logs (spmd a and b, spm migrate, cr_host)" "$SEED" "$HEAP" \
    "$MIGRATE_WORK/a/spmd.log" "$MIGRATE_WORK/b/spmd.log" "$MIGRATE_WORK/migrate.out" \
    "$MIGRATE_WORK/migrate.err" "$MIGRATE_WORK/host"
cr_scan_clean "kept copy of the images" "$SEED" "$HEAP" "$KEPT"
# Everything else the test wrote (platforms, TLS, run directory), as a whole.
cr_scan_clean "the whole work directory" "$SEED" "$HEAP" "$MIGRATE_WORK"

expect "$PID" quit '^ok bye$'
cr_wait_gone "$PID" 10 || mig_fail "cr_host did not exit on quit"
cr_log "PASS"
