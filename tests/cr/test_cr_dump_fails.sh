#!/usr/bin/env bash
# A dump that fails after the enclave was exported (an action script that
# exits non-zero at post-dump, so CRIU aborts with every image written and
# the tasks still alive): the process must keep serving with its state —
# the plugin's resume rebuilds the enclave in place — and its parked
# thread must return with its stack secret. The images of that failed dump
# are spent (the checkpoint was consumed by the resume): restoring them
# later is refused and nothing runs with that state. The process can still
# be checkpointed and restored normally afterwards.
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

cat >"$CR_WORK/fail-post-dump.sh" <<SH
#!/bin/sh
# Fails the dump after everything was written, keeping the frozen, exported
# process's mappings to look at.
if [ "\$CRTOOLS_SCRIPT_ACTION" = post-dump ]; then
    cat /proc/$PID/maps >"$CR_WORK/exported.maps"
    echo "action script: failing post-dump on purpose" >&2
    exit 1
fi
exit 0
SH
chmod +x "$CR_WORK/fail-post-dump.sh"

cr_log "criu dump with an action script that fails at post-dump"
if cr_criu_dump "$PID" "$CR_WORK/failed" --action-script "$CR_WORK/fail-post-dump.sh"; then
    fail "criu dump succeeded although the post-dump script failed"
fi
grep -q 'post-dump' "$CR_WORK/failed/dump.log" ||
    fail "the dump did not reach post-dump (it failed for another reason): $(tail -n 5 "$CR_WORK/failed/dump.log")"
python3 "$CR_TAMPER" info "$CR_WORK/failed" ||
    fail "the failed dump holds no checkpoint image: was the enclave exported before post-dump?"
cr_log "criu dump failed at post-dump as arranged ($CR_CRIU_MS ms)"
kill -0 "$PID" 2>/dev/null || fail "the process died with the failed dump"
# While exported, ELRANGE is held by an inaccessible mapping of its own: a
# dump killed with its parasite still mapped, or any other mapping, cannot
# take the addresses the resume rebuilds the enclave at.
python3 - "$CR_WORK/exported.maps" "$HEAP_ADDR" <<'EOF' || fail "ELRANGE is not held while the enclave is out"
import sys
addr = int(sys.argv[2], 16)
for line in open(sys.argv[1]):
    f = line.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    if lo <= addr < hi:
        assert f[1] == "---p" and len(f) == 5, "the enclave heap's addresses are mapped by: " + line
        assert hi - lo >= 1 << 20, line
        sys.exit(0)
sys.exit("nothing holds the enclave heap's addresses %#x while the enclave is out" % addr)
EOF

# The resume runs as the process runs again: ecalls wait for it.
cr_expect_reply host "$PID" release '^ok status=0 stack_ok=16384 stack=0x[0-9a-f]+ ocall_status=0$'
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_expect_reply host "$PID" count '^ok count=1$'
cr_log "after the failed dump the process serves on with its state and its parked thread returned"

# It still checkpoints and restores normally.
cr_spm_checkpoint "$PID" "$CR_WORK/good" || fail "spm checkpoint after the failed dump failed"
cr_assert_gone "$PID" "after spm checkpoint"
cr_spm_restore "$CR_WORK/good" || fail "spm restore after the failed dump failed"
cr_expect_reply host "$PID" check "^ok heap_ok=$HEAP globals_ok=65536 heap=$HEAP_ADDR$"
cr_expect_reply host "$PID" count '^ok count=2$'

# The failed dump's images are spent.
kill -KILL "$PID"
cr_assert_gone "$PID" "after kill"
log_lines=$(wc -l <"$CR_WORK/host/err.log")
status=0
cr_spm_restore "$CR_WORK/failed" || status=$?
[ $status -ne 0 ] || fail "spm restore of the spent images of a failed dump succeeded"
cr_assert_gone "$PID" "restore of the spent images of a failed dump"
tail -n +$((log_lines + 1)) "$CR_WORK/host/err.log" >"$CR_WORK/spent.log"
grep -q 'status 75' "$CR_WORK/spent.log" ||
    fail "the restored process did not say it exits with status 75: $(<"$CR_WORK/spent.log")"
cr_log "restore of the failed dump's (spent) images refused (spm restore status $status): $(tail -n 1 "$CR_WORK/spent.log")"
echo "PASS"
