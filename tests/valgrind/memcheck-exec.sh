#!/usr/bin/env bash
# Runs one program under memcheck, logging to $SPM_MEMCHECK_LOGS/PID.log
# (tests/valgrind/memcheck.sh reads the logs). Children are traced too,
# except system tools.
exec valgrind --tool=memcheck --quiet --trace-children=yes \
    --trace-children-skip='/usr/*,/bin/*,/sbin/*,/opt/*,*/criu' \
    --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --track-origins=yes ${SPM_MEMCHECK_EXTRA:-} \
    --suppressions="$(dirname "$0")/spm.supp" \
    --log-file="${SPM_MEMCHECK_LOGS:?run through tests/valgrind/memcheck.sh}/%p.log" "$@"
