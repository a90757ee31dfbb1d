#!/usr/bin/env bash
# Runs a command next to a real spmd: a fresh CA and platform in a temporary
# directory, spmd hosting the Migration Enclave on it, and SPM_PLATFORM /
# SPM_SPMD_SOCKET / SPM_RUN_DIR exported for the command. Used by the tests
# that need a checkpoint's key to reach escrow and come back. Under
# tests/valgrind/memcheck.sh, spmd and the command run through $SPM_TEST_WRAP.
# args: spm spmd me_enclave.signed command...
set -euo pipefail
spm=$1 spmd=$2 me=$3
shift 3
tmp=$(mktemp -d /tmp/spm-withspmd-XXXXXX)
spmd_pid=
cleanup() {
    [[ -n $spmd_pid ]] && kill "$spmd_pid" 2>/dev/null && wait "$spmd_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
"$spm" ca init --dir "$tmp/ca" >/dev/null
"$spm" platform init --platform "$tmp/platform" --ca "$tmp/ca" >/dev/null
export SPM_PLATFORM=$tmp/platform SPM_SPMD_SOCKET=$tmp/spmd.sock SPM_RUN_DIR=$tmp/run
${SPM_TEST_WRAP:+"$SPM_TEST_WRAP"} "$spmd" --platform "$tmp/platform" --state "$tmp/state" --socket "$tmp/spmd.sock" --me "$me" \
    >"$tmp/spmd.log" 2>&1 &
spmd_pid=$!
for _ in $(seq 1200); do [[ -S $tmp/spmd.sock ]] && break; sleep 0.05; done
[[ -S $tmp/spmd.sock ]] || { cat "$tmp/spmd.log" >&2; echo "spmd did not start" >&2; exit 1; }
set +e
${SPM_TEST_WRAP:+"$SPM_TEST_WRAP"} "$@"
rc=$?
set -e
((rc == 0)) || { echo "--- spmd log" >&2; cat "$tmp/spmd.log" >&2; }
exit $rc
