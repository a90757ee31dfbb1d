#!/usr/bin/env bash
# zdtm-style checkpoint/restore of the test enclave (DESIGN.md section 5):
# set up secrets in heap, globals and the stack of a thread parked in an
# ocall; get checkpointed and restored, first with `spm checkpoint`/`spm
# restore`, then with plain `criu dump`/`criu restore` and the plugin;
# verify after each: the parked thread returns into the restored enclave
# with its stack secret intact, CHECK finds heap and globals intact at the
# same addresses, and no 16-byte window of the secret is in any file CRIU
# wrote or in spmd's state. Before that, the scanner must find the secret
# in the live process's memory and in a dump made without the plugin, so
# a clean scan means something.
set -euo pipefail
# shellcheck source=cr_lib.sh
source "${CR_LIB:?run from meson}"
cr_require_root_and_criu
cr_find_pieces
cr_setup
cr_start_spmd || fail "spmd did not start (see $CR_WORK/spmd.log)"

HEAP=$((8 << 20)) # several 1 MiB chunks
SEED=$(cr_random_seed)
cr_start_host host
PID=$CR_HOST_PID
BASE=$CR_BASE
cr_expect_reply host "$PID" "fill $SEED $HEAP" '^ok heap=(0x[0-9a-f]+) globals='
HEAP_ADDR=${BASH_REMATCH[1]}
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 "
cr_expect_reply host "$PID" park '^ok parked$'

# ---- The scanner can fail: the secret is in plain memory before export ----
CR_SCAN_REGIONS="heap globals stack" cr_scan_found "live process memory" "$SEED" "$HEAP" "pid:$PID"
# A dump without the plugin (empty plugin directory), left running: the
# simulated enclave's pages go to pages-*.img as they are.
mkdir -p "$CR_WORK/no-plugin"
if ! criu dump -t "$PID" -D "$CR_WORK/no-plugin" -o dump.log --leave-running \
    --libdir "$CR_WORK/no-plugins" "${cr_criu_common[@]}"; then
    fail "criu dump without the plugin failed: $(tail -n 5 "$CR_WORK/no-plugin/dump.log")"
fi
kill -0 "$PID" || fail "the process did not survive --leave-running"
CR_SCAN_REGIONS="heap globals stack" cr_scan_found "criu dump without the plugin" "$SEED" "$HEAP" \
    "$CR_WORK/no-plugin"
rm -rf "$CR_WORK/no-plugin"
cr_expect_reply host "$PID" count '^ok count=1$'

# ---- Cycle 1: spm checkpoint / spm restore ----
cr_log "spm checkpoint $PID"
cr_spm_checkpoint "$PID" "$CR_WORK/img1" || fail "spm checkpoint failed"
cr_assert_gone "$PID" "after spm checkpoint"
python3 "$CR_TAMPER" info "$CR_WORK/img1" || fail "no checkpoint image in CRIU's pages"
cr_scan_clean "spm checkpoint images + spmd state" "$SEED" "$HEAP" \
    "$CR_WORK/img1" "$CR_SPMD_STATE" "$CR_WORK/host"
cr_log "spm restore"
cr_spm_restore "$CR_WORK/img1" || fail "spm restore failed"
kill -0 "$PID" 2>/dev/null || fail "pid $PID is not running after spm restore"
cr_expect_reply host "$PID" info "^ok pid=$PID base=$BASE "
cr_expect_reply host "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'
cr_log "the thread parked in an ocall across checkpoint/restore returned into the restored enclave; its 16 KiB stack secret is intact"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_expect_reply host "$PID" count '^ok count=2$'

# ---- Cycle 2: plain criu with the plugin, a thread parked again ----
cr_expect_reply host "$PID" park '^ok parked$'
cr_log "criu dump -t $PID (plain, plugin loaded)"
cr_criu_dump "$PID" "$CR_WORK/img2" || fail "criu dump failed: $(tail -n 5 "$CR_WORK/img2/dump.log")"
cr_log "criu dump took $CR_CRIU_MS ms"
cr_assert_gone "$PID" "after criu dump"
python3 "$CR_TAMPER" info "$CR_WORK/img2" || fail "no checkpoint image in plain criu's pages"
cr_scan_clean "plain criu images + spmd state" "$SEED" "$HEAP" \
    "$CR_WORK/img2" "$CR_SPMD_STATE" "$CR_WORK/host"
cr_criu_restore "$CR_WORK/img2" || fail "criu restore failed"
cr_log "criu restore took $CR_CRIU_MS ms"
cr_expect_reply host "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_expect_reply host "$PID" count '^ok count=3$'
cr_expect_reply host "$PID" quit '^ok bye$'
cr_wait_gone "$PID" 10 || fail "cr_host did not exit on quit"
echo "PASS"
