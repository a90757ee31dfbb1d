#!/usr/bin/env bash
# spmd is killed with SIGKILL between checkpoint and restore and started
# again on the same state directory: the escrowed key was durable before
# the checkpoint completed, so the restore succeeds and the state verifies.
set -euo pipefail
# shellcheck source=cr_lib.sh
source "${CR_LIB:?run from meson}"
cr_require_root_and_criu
cr_find_pieces
cr_setup
cr_start_spmd || fail "spmd did not start (see $CR_WORK/spmd.log)"

HEAP=$((4 << 20))
SEED=$(cr_random_seed)
cr_start_host host
PID=$CR_HOST_PID
cr_expect_reply host "$PID" "fill $SEED $HEAP" '^ok heap=(0x[0-9a-f]+) '
HEAP_ADDR=${BASH_REMATCH[1]}
cr_expect_reply host "$PID" park '^ok parked$'
cr_spm_checkpoint "$PID" "$CR_WORK/img" || fail "spm checkpoint failed"
cr_assert_gone "$PID" "after spm checkpoint"

OLD_SPMD=$CR_SPMD_PID
cr_stop_spmd KILL
cr_wait_gone "$OLD_SPMD" 10 || fail "spmd survived SIGKILL"
cr_log "spmd (pid $OLD_SPMD) killed with SIGKILL; state directory: $(ls "$CR_SPMD_STATE" | tr '\n' ' ')"
cr_start_spmd spmd-2 || fail "spmd did not start again on its state (see $CR_WORK/spmd-2.log)"
cr_log "spmd restarted (pid $CR_SPMD_PID)"

cr_spm_restore "$CR_WORK/img" || fail "spm restore after the spmd restart failed"
cr_expect_reply host "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_scan_clean "images + spmd state after restart" "$SEED" "$HEAP" "$CR_WORK/img" "$CR_SPMD_STATE"
echo "PASS"
