#!/usr/bin/env bash
# An attacker edits the encrypted checkpoint image in CRIU's pages-*.img
# (each case on a fresh copy): a header byte (checkpoint id, generation, a
# run), a tag, a ciphertext byte, two chunks swapped with their tags, a
# chunk dropped with the rest moved down, the last chunk truncated. Each
# restore must be refused with a clear error and leave nothing running;
# afterwards the untouched original still restores and verifies (the key
# stayed in escrow, nothing was consumed).
set -euo pipefail
# shellcheck source=../cr/cr_lib.sh
source "${CR_LIB:?run from meson}"
cr_require_root_and_criu
cr_find_pieces
cr_setup
cr_start_spmd || fail "spmd did not start (see $CR_WORK/spmd.log)"

HEAP=$((5 << 20)) # several 1 MiB chunks
SEED=$(cr_random_seed)
cr_start_host host
PID=$CR_HOST_PID
cr_expect_reply host "$PID" "fill $SEED $HEAP" '^ok heap=(0x[0-9a-f]+) '
HEAP_ADDR=${BASH_REMATCH[1]}
cr_expect_reply host "$PID" park '^ok parked$'
cr_spm_checkpoint "$PID" "$CR_WORK/orig" || fail "spm checkpoint failed"
cr_assert_gone "$PID" "after spm checkpoint"
info=$(python3 "$CR_TAMPER" info "$CR_WORK/orig") || fail "no checkpoint image found"
echo "    $info"
[[ $info =~ chunk_count=([0-9]+) ]] || fail "cannot read chunk_count"
CHUNKS=${BASH_REMATCH[1]}
[ "$CHUNKS" -ge 3 ] || fail "expected at least 3 chunks for a $HEAP-byte heap, got $CHUNKS"
LAST=$((CHUNKS - 1))

# header offsets: 112 checkpoint_id, 144 generation, 16 MRENCLAVE, 256 first run
cases=(header:112 header:144 header:16 header:256 tag:1 cipher:0 cipher:$LAST
    swap:0:1 drop:1 truncate)
refused=0
for op in "${cases[@]}"; do
    dir=$CR_WORK/t-${op//:/-}
    rm -rf "$dir"
    cp -a "$CR_WORK/orig" "$dir"
    what=$(python3 "$CR_TAMPER" tamper "$dir" "$op") || fail "cannot apply $op"
    cr_log "case $op: $what"
    log_lines=$(wc -l <"$CR_WORK/host/err.log")
    status=0
    cr_spm_restore "$dir" || status=$?
    [ $status -ne 0 ] || fail "$op: restore of a tampered image succeeded"
    cr_assert_gone "$PID" "$op: refused restore"
    # The clear error: spm restore's own output or what the process logged
    # during this attempt says why.
    tail -n +$((log_lines + 1)) "$CR_WORK/host/err.log" >"$dir.host.log"
    why=$(grep -hiE 'refus|tamper|authent|tag|invalid|mismatch|EBADMSG|bad message' \
        "$CR_LAST_RESTORE_LOG" "$dir.host.log" | tail -n 1) || true
    [ -n "$why" ] || fail "$op: refused without saying why (no error message in spm restore's output or the process's log)"
    cr_log "case $op: refused (status $status): $why"
    refused=$((refused + 1))
    rm -rf "$dir"
done

cr_log "all $refused tampered images refused; restoring the untouched original"
cr_spm_restore "$CR_WORK/orig" || fail "the untouched original no longer restores"
cr_expect_reply host "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
echo "PASS ($refused tampering cases refused, original verified)"
