#!/bin/sh
# End to end through the spm CLI: keygen, sign, inspect, then a flipped
# measured byte must make inspect fail; usage errors exit 2.
# usage: test_cli.sh SPM ENCLAVE_FIXTURE
set -u
spm=$1
fixture=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/spm-cli-test-XXXXXX")
trap 'rm -rf "$dir"' EXIT
failures=0

check() { # expected-status description command...
    want=$1; what=$2; shift 2
    "$@" >"$dir/out" 2>"$dir/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: $what: exit $got, wanted $want"; cat "$dir/out" "$dir/err"
        failures=$((failures + 1))
    else
        echo "ok: $what"
    fi
}
expect_output() { # pattern description
    if ! grep -q -- "$1" "$dir/out" "$dir/err"; then
        echo "FAIL: $2: no '$1' in output"; cat "$dir/out" "$dir/err"
        failures=$((failures + 1))
    fi
}

check 0 "keygen" "$spm" keygen --out "$dir/key.pem"
expect_output "MRSIGNER" "keygen prints MRSIGNER"
[ "$(stat -c %a "$dir/key.pem")" = 600 ] || { echo "FAIL: key mode"; failures=$((failures + 1)); }
check 1 "keygen refuses to overwrite" "$spm" keygen --out "$dir/key.pem"
expect_output "already exists" "overwrite refusal says why"
check 0 "keygen --force replaces" "$spm" keygen --out "$dir/key.pem" --force
check 2 "keygen without --out" "$spm" keygen

check 0 "sign" "$spm" sign --key "$dir/key.pem" --in "$fixture" --out "$dir/e.signed" \
    --heap 1M --stack 64K --tcs 2 --isvprodid 7 --isvsvn 9 --debug --ssa-frames 3
expect_output "MRENCLAVE [0-9a-f]\{64\}" "sign prints MRENCLAVE"
mrenclave=$(sed -n 's/^MRENCLAVE *//p' "$dir/out")
check 0 "inspect" "$spm" inspect "$dir/e.signed"
expect_output "MRENCLAVE    $mrenclave" "inspect shows the signed MRENCLAVE"
expect_output "debug: yes" "inspect shows debug"
expect_output "ISVSVN       9" "inspect shows ISVSVN"
expect_output "verified     yes" "inspect verifies"
check 0 "inspect --json" "$spm" inspect --json "$dir/e.signed"
expect_output '"verified": true' "json verdict"
expect_output "\"mrenclave\": \"$mrenclave\"" "json MRENCLAVE"

# Byte 10 is ELF header padding: inside the first PT_LOAD (measured) but
# ignored by the parser, so only the measurement can catch it.
cp "$dir/e.signed" "$dir/flipped.signed"
printf 'Z' | dd of="$dir/flipped.signed" bs=1 seek=10 conv=notrunc 2>/dev/null
check 1 "inspect of a modified image fails" "$spm" inspect "$dir/flipped.signed"
expect_output "MRENCLAVE mismatch" "the failure names MRENCLAVE"
expect_output "verified     NO" "inspect reports NO"

check 1 "inspect of an unsigned ELF" "$spm" inspect "$fixture"
check 1 "inspect of a missing file" "$spm" inspect "$dir/missing"
check 1 "sign with a missing key" "$spm" sign --key "$dir/nokey" --in "$fixture" --out "$dir/x"
check 2 "sign with a bad size" "$spm" sign --key "$dir/key.pem" --in "$fixture" --out "$dir/x" --heap 1X
check 2 "sign with an unknown flag" "$spm" sign --key "$dir/key.pem" --in "$fixture" --out "$dir/x" --frob
check 2 "sign with --tcs 0" "$spm" sign --key "$dir/key.pem" --in "$fixture" --out "$dir/x" --tcs 0
check 1 "sign with an odd heap" "$spm" sign --key "$dir/key.pem" --in "$fixture" --out "$dir/x" --heap 5000
check 2 "inspect without an image" "$spm" inspect

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all CLI checks passed"
