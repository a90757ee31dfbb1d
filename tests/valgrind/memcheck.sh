#!/usr/bin/env bash
# Runs a test under Valgrind memcheck, and every SPM program it starts with
# it (spmd, test hosts), but not system tools: `meson test --wrapper
# tests/valgrind/memcheck.sh` (scripts/test.sh's memcheck stage).
#
# Each process writes its own log. The test fails when any log reports a
# memory error or a definite or indirect leak, even when the process that
# made it was killed (spmd is ended by a signal; its errors are logged as
# they happen), and prints those logs.
set -uo pipefail
logs=$(mktemp -d /tmp/spm-memcheck.XXXXXX)
valgrind --tool=memcheck --quiet --trace-children=yes \
    --trace-children-skip='/usr/*,/bin/*,/sbin/*,/opt/*,*/criu,*python*' \
    --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --track-origins=yes \
    --suppressions="$(dirname "$0")/spm.supp" \
    --log-file="$logs/%p.log" "$@"
rc=$?
bad=0
for log in "$logs"/*.log; do
    [ -s "$log" ] || continue
    if grep -qE '^==[0-9]+== +(Invalid|Conditional|Use of uninitialised|Syscall param|Mismatched|Source and destination|Argument|[0-9,]+ bytes in [0-9,]+ blocks are (definitely|indirectly) lost)' "$log" ||
        grep -qE 'ERROR SUMMARY: [1-9]' "$log"; then
        echo "memcheck: errors in $log:" >&2
        cat "$log" >&2
        bad=1
    fi
done
if [ $bad -eq 0 ]; then
    echo "memcheck: $(ls "$logs" | wc -l) process logs, no memory errors or leaks"
    rm -rf "$logs"
fi
[ $rc -ne 0 ] && exit $rc
exit $bad
