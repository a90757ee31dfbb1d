#!/usr/bin/env bash
# Rollback of the ME's sealed state (DESIGN.md section 5): after checkpoint
# A the attacker copies spmd's escrow.sealed (A not yet consumed); A is
# restored (consumed); the attacker stops spmd, puts the old file back and
# restarts it, hoping to restore A a second time. spmd must refuse to start
# on the old state (its version is behind the platform's monotonic
# counter), or at least the restore must be refused. The current state
# file put back makes spmd start again.
set -euo pipefail
# shellcheck source=../cr/cr_lib.sh
source "${CR_LIB:?run from meson}"
cr_require_root_and_criu
cr_find_pieces
cr_setup
cr_start_spmd || fail "spmd did not start (see $CR_WORK/spmd.log)"

HEAP=$((2 << 20))
SEED=$(cr_random_seed)
cr_start_host host
PID=$CR_HOST_PID
cr_expect_reply host "$PID" "fill $SEED $HEAP" '^ok heap='
cr_spm_checkpoint "$PID" "$CR_WORK/A" || fail "checkpoint A failed"
cr_assert_gone "$PID" "after checkpoint A"
ESCROW=$CR_SPMD_STATE/escrow.sealed
[ -f "$ESCROW" ] || fail "no $ESCROW after a checkpoint (state directory: $(ls -A "$CR_SPMD_STATE"))"
cp -a "$ESCROW" "$CR_WORK/escrow.old"
cp -a "$CR_WORK/A" "$CR_WORK/A-copy"

cr_spm_restore "$CR_WORK/A" || fail "restore of A failed"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 "
kill -KILL "$PID"
cr_assert_gone "$PID" "after kill"
cmp -s "$ESCROW" "$CR_WORK/escrow.old" && fail "escrow.sealed did not change when A was consumed"
cp -a "$ESCROW" "$CR_WORK/escrow.current"

cr_stop_spmd TERM
cp -a "$CR_WORK/escrow.old" "$ESCROW"
cr_log "escrow.sealed replaced by the copy taken before A was consumed"
if cr_start_spmd spmd-rolled-back; then
    cr_log "spmd started on the old state; the restore must be refused"
    status=0
    cr_spm_restore "$CR_WORK/A-copy" || status=$?
    [ $status -ne 0 ] || fail "A restored a second time from a rolled-back escrow"
    cr_assert_gone "$PID" "restore on a rolled-back escrow"
    cr_log "restore refused (status $status)"
    cr_stop_spmd TERM
else
    why=$(tail -n 3 "$CR_WORK/spmd-rolled-back.log")
    [ -n "$why" ] || fail "spmd refused the old state without saying why"
    cr_log "spmd refused to start on the rolled-back state: $why"
    CR_SPMD_PID=
fi

cp -a "$CR_WORK/escrow.current" "$ESCROW"
cr_start_spmd spmd-current || fail "spmd does not start on the current state (see $CR_WORK/spmd-current.log)"
cr_log "spmd starts on the current state"
echo "PASS"
