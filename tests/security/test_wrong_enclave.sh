#!/usr/bin/env bash
# Another enclave asks the ME for the key: between checkpoint and restore
# the signed enclave image at the path the process loads from is replaced
# (the restored process rebuilds its enclave from that path) by
#   svn4   same code and signer, higher ISVSVN
#   heap   same signer, different MRENCLAVE (another heap size)
#   other  same code, another author (different MRSIGNER)
# Each restore is refused and leaves nothing running with that state: the
# process exits 75 (the ME refused the key: svn4, whose MRENCLAVE and
# MRSIGNER are the original's), or, where libspm already sees that the
# image is not the one the enclave was loaded from (other: MRSIGNER; heap:
# ELRANGE layout) so no key is even asked for, the process stays up with
# its enclave not running (the control socket says state=failed) and the
# failure is retryable. With the right image back
# in place the untouched checkpoint restores and verifies.
set -euo pipefail
# shellcheck source=../cr/cr_lib.sh
source "${CR_LIB:?run from meson}"
cr_require_root_and_criu
cr_find_pieces
cr_setup
cr_start_spmd || fail "spmd did not start (see $CR_WORK/spmd.log)"

IMAGE=$CR_WORK/enclave.signed
cp "$CR_IMAGE_MAIN" "$IMAGE"
HEAP=$((2 << 20))
SEED=$(cr_random_seed)
cr_start_host host "$IMAGE"
PID=$CR_HOST_PID
cr_expect_reply host "$PID" "fill $SEED $HEAP" '^ok heap='
cr_expect_reply host "$PID" park '^ok parked$'
cr_spm_checkpoint "$PID" "$CR_WORK/orig" || fail "spm checkpoint failed"
cr_assert_gone "$PID" "after spm checkpoint"

for variant in svn4 other heap; do
    var=CR_IMAGE_${variant^^}
    cp "${!var}" "$IMAGE"
    dir=$CR_WORK/try-$variant
    rm -rf "$dir"
    cp -a "$CR_WORK/orig" "$dir"
    log_lines=$(wc -l <"$CR_WORK/host/err.log")
    status=0
    cr_spm_restore "$dir" || status=$?
    [ $status -ne 0 ] || fail "$variant: the checkpoint restored into a different enclave"
    if ! cr_wait_gone "$PID" 5; then
        # Still up: only acceptable if its enclave is not running.
        state=$(cr_control "$PID" status) || fail "$variant: pid $PID runs and its control socket does not answer"
        [[ $state =~ state=(exported|failed) ]] ||
            fail "$variant: pid $PID runs after a refused restore and its enclave state is [$state]"
        cr_log "$variant: pid $PID stays up with its enclave not running: $state"
        reply=$(cr_host_cmd host "$PID" count 3)
        [[ ! $reply =~ ^ok ]] || fail "$variant: an ecall ran in a process whose restore was refused: $reply"
        cr_log "$variant: an application ecall does not run there: $reply"
        kill -KILL "$PID"
        cr_assert_gone "$PID" "$variant: after kill"
    fi
    tail -n +$((log_lines + 1)) "$CR_WORK/host/err.log" >"$dir.host.log"
    why=$(grep -hiE 'refus|identity|mrenclave|mrsigner|svn|denied|mismatch|layout|not the one' \
        "$CR_LAST_RESTORE_LOG" "$dir.host.log" | tail -n 1) || true
    cr_log "$variant: refused (status $status): ${why:-<no reason found in the logs>}"
    [ -n "$why" ] || fail "$variant: refused without saying why"
done

cp "$CR_IMAGE_MAIN" "$IMAGE"
cr_spm_restore "$CR_WORK/orig" || fail "the right enclave no longer restores its checkpoint"
cr_expect_reply host "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 "
echo "PASS"
