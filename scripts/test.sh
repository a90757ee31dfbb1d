#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: a
# normal build, and host code under ASan+UBSan. Then the host runtime and
# daemon tests once more under Valgrind memcheck, the static analysers
# (scripts/lint.sh), and every fuzz harness for $FUZZ_SECONDS (default 60)
# each. Ends with one summary line "N passed, N failed, N skipped" over all
# of it; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh || { echo "test: dependency installation failed" >&2; exit 1; }

status=0
run_suite() {
    local dir=$1 label=$2
    shift 2
    echo "=== $label ==="
    if ! bash scripts/build.sh "$@"; then
        echo "test: build of $dir failed" >&2
        ninja -C "$dir" 2>&1 | tail -30
        status=1
        return
    fi
    # ASan: leaks are checked by the leak-sanitizer where the process ends cleanly.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        meson test -C "$dir" --print-errorlogs --num-processes 2 || status=1
}

run_suite build "tests (release build)"
run_suite build-asan "tests (ASan+UBSan)" asan

# The tests that drive the untrusted runtime and spmd, on the release
# build, each under memcheck with every SPM program it starts
# (tests/valgrind/memcheck.sh): in the migration test both hosts' spmd run
# under memcheck, while the kvs CRIU moves does not (CRIU cannot dump a
# process running under Valgrind).
memcheck_tests=(
    "basic enclave" "checkpoint engine" "control protocol" "checkpoint gate"
    "checkpoint round trip with spmd" "migration enclave and spmd"
    "migration enclaves_ attestation and key hand-over" "kvs enclave batch ecall"
    "net_tls" "platform_test_store" "public libspm API"
    "migrate spm - kvs a->b under load, state, key, counter, replays refused"
)
echo "=== tests under Valgrind memcheck ==="
# meson names the log after --logbase and the wrapper: memcheck-memcheck.sh.json
rm -f build/meson-logs/memcheck*.json
meson test -C build --wrapper "$PWD/tests/valgrind/memcheck.sh" --logbase memcheck \
    --print-errorlogs --num-processes 2 --timeout-multiplier 10 "${memcheck_tests[@]}" || status=1

echo "=== static analysis ==="
lint_status=0
bash scripts/lint.sh build || { lint_status=1; status=1; }

# Fuzz harnesses (fuzz/): each replays its regressions, then fuzzes.
run_suite build-fuzz "fuzz harnesses, ${FUZZ_SECONDS:-60} s each" fuzz

python3 - $lint_status build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
    build/meson-logs/memcheck-memcheck.sh.json build-fuzz/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
if sys.argv[1] == "0":
    passed += 1
else:
    failed += 1
    print("test: FAILED static analysis (scripts/lint.sh)")
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        print(f"test: no results in {path} (build failed?)")
        continue
    for line in lines:
        r = json.loads(line)
        res = r.get("result")
        if res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
            print(f"test: SKIPPED {r.get('name')} ({path})")
        else:
            failed += 1
            print(f"test: FAILED {r.get('name')} ({path}): {res}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
summary=$?
[ $summary -ne 0 ] && status=1
exit $status
