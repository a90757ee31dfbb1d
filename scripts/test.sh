#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: a
# normal build, and host code under ASan+UBSan. Ends with one summary line
# "N passed, N failed, N skipped" over both runs; exits non-zero on any failure.
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

python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
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
