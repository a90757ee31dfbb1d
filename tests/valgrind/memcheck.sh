#!/usr/bin/env bash
# Runs a test under Valgrind memcheck, with every SPM program it starts:
# `meson test --wrapper tests/valgrind/memcheck.sh` (scripts/test.sh's
# memcheck stage). A test program runs under memcheck with its children
# traced (spmd started by tests/common/spmd_child.c is one); system tools
# are not traced. A test script runs as it is, and starts SPM programs
# through $SPM_TEST_WRAP, which runs them under memcheck
# (tests/unit/control/with_spmd.sh does).
#
# Each process writes its own log. The test fails when any log reports a
# memory error or a definite or indirect leak, even when the process that
# made it was killed (spmd is ended by a signal; its errors are logged as
# they happen), and prints those logs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SPM_MEMCHECK_LOGS=$(mktemp -d /tmp/spm-memcheck.XXXXXX)
export SPM_MEMCHECK_LOGS
export SPM_TEST_WRAP=$here/memcheck-exec.sh
if head -c 4 "$1" | grep -q 'ELF'; then
    "$SPM_TEST_WRAP" "$@"
else
    "$@"
fi
rc=$?
bad=0
traced=0
for log in "$SPM_MEMCHECK_LOGS"/*.log; do
    [ -e "$log" ] || continue
    traced=$((traced + 1))
    if grep -qE '^==[0-9]+== +(Invalid|Conditional|Use of uninitialised|Syscall param|Mismatched|Source and destination|Argument|[0-9,]+ bytes in [0-9,]+ blocks are (definitely|indirectly) lost)' "$log" ||
        grep -qE 'ERROR SUMMARY: [1-9]' "$log"; then
        echo "memcheck: errors in $log:" >&2
        cat "$log" >&2
        bad=1
    fi
done
if [ $traced -eq 0 ]; then
    echo "memcheck: no process ran under memcheck" >&2
    bad=1
elif [ $bad -eq 0 ]; then
    echo "memcheck: $traced process(es) under memcheck, no memory errors or leaks"
    rm -rf "$SPM_MEMCHECK_LOGS"
fi
[ $rc -ne 0 ] && exit $rc
exit $bad
