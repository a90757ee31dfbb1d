#!/usr/bin/env bash
# The installable libspm exports exactly the symbols of its version script,
# and a program that links only libspm.so and includes only spm/urts.h can
# load, enter and leave an enclave.
# Usage: check_public_api.sh SPM LIBSPM_SO LIBSPM_MAP CLIENT ENCLAVE
set -euo pipefail
spm=$1 lib=$2 map=$3 client=$4 enclave=$5
exported=$(nm -D --defined-only "$lib" | awk '$3 ~ /^spm_/ {sub(/@.*/, "", $3); print $3}' | sort)
declared=$(grep -oE '^\s+spm_[a-z_]+;' "$map" | tr -d ' ;\t' | sort)
if [ "$exported" != "$declared" ]; then
    echo "FAIL: libspm.so exports differ from $map"
    diff <(echo "$declared") <(echo "$exported") || true
    exit 1
fi
others=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TDB]/ && $3 !~ /^spm_enclave_/ {print $3}')
if [ -n "$others" ]; then
    echo "FAIL: libspm.so leaks internal symbols: $others"
    exit 1
fi
echo "ok: libspm.so exports exactly $(echo "$exported" | wc -l) public symbols"
libraries=$(ldd "$client") # not piped into grep -q: SIGPIPE would fail the pipeline
if [[ "$libraries" != *libspm.so* ]]; then
    echo "FAIL: $client does not link libspm.so"; exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$spm" ca init --dir "$dir/ca" >/dev/null
"$spm" platform init --platform "$dir/platform" --ca "$dir/ca" >/dev/null
out=$(${SPM_TEST_WRAP:+"$SPM_TEST_WRAP"} "$client" "$enclave" "$dir/platform") # memcheck: tests/valgrind
echo "$out"
grep -q "empty ecall round trip" <<<"$out" || { echo "FAIL: client did not run"; exit 1; }
