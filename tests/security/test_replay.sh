#!/usr/bin/env bash
# Fork and rollback attacks (DESIGN.md section 7): the attacker keeps copies
# of checkpoint images and restores them again.
#   A = checkpoint 1; restore A (ok, verified)
#   B = checkpoint 2 of the restored process; restore B (ok, verified)
#   restore A again            -> refused: older than B, and already resumed
#   restore B again            -> refused: the same images twice
# A refusal must leave nothing running with that state: `spm restore`
# fails and the PID is gone (the process exited 75, control.h); with plain
# `criu restore -d` the task exits 75 and says why.
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
cr_expect_reply host "$PID" count '^ok count=1$'

cr_spm_checkpoint "$PID" "$CR_WORK/A" || fail "checkpoint A failed"
cr_assert_gone "$PID" "after checkpoint A"
cp -a "$CR_WORK/A" "$CR_WORK/A-copy"
cr_spm_restore "$CR_WORK/A" || fail "first restore of A failed"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 "
cr_expect_reply host "$PID" count '^ok count=2$'

cr_spm_checkpoint "$PID" "$CR_WORK/B" || fail "checkpoint B failed"
cr_assert_gone "$PID" "after checkpoint B"
cp -a "$CR_WORK/B" "$CR_WORK/B-copy"
python3 "$CR_TAMPER" info "$CR_WORK/A-copy"
python3 "$CR_TAMPER" info "$CR_WORK/B-copy"
cr_spm_restore "$CR_WORK/B" || fail "first restore of B failed"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 "
cr_expect_reply host "$PID" count '^ok count=3$'
kill -KILL "$PID"
cr_assert_gone "$PID" "after kill"

# refused_restore LABEL DIR: spm restore must fail and leave nothing running.
refused_restore() {
    local label=$1 dir=$2 status=0
    cr_spm_restore "$dir" || status=$?
    [ $status -ne 0 ] || fail "$label: spm restore succeeded"
    cr_assert_gone "$PID" "$label"
    cr_log "$label: refused (spm restore status $status), pid $PID not running"
}

refused_restore "older checkpoint A after newer B was restored" "$CR_WORK/A-copy"
refused_restore "the same images B a second time" "$CR_WORK/B-copy"

# Plain criu with the plugin: criu itself succeeds (the import runs as the
# task resumes and CRIU ignores that hook's result), so the refusal shows
# as the restored task exiting 75 with the reason on its stderr.
log_lines=$(wc -l <"$CR_WORK/host/err.log")
cr_criu_restore "$CR_WORK/B-copy" || cr_log "plain criu restore of B a second time: criu failed"
cr_assert_gone "$PID" "plain criu restore of B a second time"
tail -n +$((log_lines + 1)) "$CR_WORK/host/err.log" >"$CR_WORK/plain.log"
grep -q 'status 75' "$CR_WORK/plain.log" ||
    fail "plain criu restore of B a second time: the process did not say it exits 75: $(<"$CR_WORK/plain.log")"
cr_log "plain criu restore of B a second time: refused, the task exited 75: $(tail -n 1 "$CR_WORK/plain.log")"
echo "PASS"
