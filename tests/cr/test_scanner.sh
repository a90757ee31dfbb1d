#!/usr/bin/env bash
# The secret scanner must be able to fail: it finds one planted 16-byte
# window of each region at an odd offset deep in a directory tree, the
# windows straddling the end of a file, and the secret in a live process's
# memory; it finds nothing for a window with one byte changed, for 15
# bytes of the secret, or for another seed.
set -euo pipefail
: "${CR_SCAN:?run from meson (tests/cr/meson.build sets CR_SCAN)}"
WORK=$(mktemp -d /tmp/spm-scan.XXXXXX)
HOLDER=
cleanup() {
    if [ -n "$HOLDER" ] && kill -0 "$HOLDER" 2>/dev/null; then
        kill -KILL "$HOLDER" 2>/dev/null || true
        wait "$HOLDER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

SEED=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
OTHER=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
HEAP=$((1 << 20))

# The expansion rule of cr_abi.h, independently in Python.
python3 - "$SEED" "$WORK" <<'PY'
import hashlib, os, sys
seed, work = bytes.fromhex(sys.argv[1]), sys.argv[2]
def region(tag, size):
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(seed + tag + i.to_bytes(8, "little")).digest()
        i += 1
    return bytes(out[:size])
heap, glob, stack = region(b"H", 1 << 20), region(b"G", 64 << 10), region(b"S", 16 << 10)
os.makedirs(f"{work}/tree/a/b", exist_ok=True)
noise = os.urandom(3 << 20)
def plant(path, at, piece):
    data = bytearray(noise)
    data[at:at + len(piece)] = piece
    open(path, "wb").write(data)
plant(f"{work}/tree/a/b/heap.img", 1234567, heap[777777:777777 + 16])
plant(f"{work}/tree/a/globals.img", 33, glob[4097:4097 + 16])
# The stack window ends exactly at the end of the file.
open(f"{work}/tree/stack.img", "wb").write(noise[:1001] + stack[16000:16016])
w = bytearray(heap[5000:5016]); w[7] ^= 1
plant(f"{work}/flipped.img", 99, bytes(w))
plant(f"{work}/short.img", 99, heap[5000:5015])
open(f"{work}/secret.bin", "wb").write(heap[:4096])
PY

run() {
    local status=0
    OUT=$("$CR_SCAN" "$@" 2>&1) || status=$?
    sed 's/^/    /' <<<"$OUT"
    return $status
}

run --seed "$SEED" --heap $HEAP --expect-found "$WORK/tree" || fail "planted windows not found"
[[ $OUT =~ windows\ found\ in\ 3\ inputs\ \(heap\ ([0-9]+),\ globals\ ([0-9]+),\ stack\ ([0-9]+)\) ]] ||
    fail "expected hits in exactly 3 files"
[ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[2]}" -ge 1 ] && [ "${BASH_REMATCH[3]}" -ge 1 ] ||
    fail "each region must be hit once"
echo "ok: one window of each region found (heap, globals, and a stack window ending the file)"

status=0
run --seed "$SEED" --heap $HEAP "$WORK/flipped.img" "$WORK/short.img" || status=$?
[ $status -eq 0 ] || fail "a flipped window or 15 bytes counted as a hit (status $status)"
echo "ok: a window with one flipped bit and a 15-byte piece are not hits"

status=0
run --seed "$OTHER" --heap $HEAP "$WORK/tree" || status=$?
[ $status -eq 0 ] || fail "another seed's secret was found"
status=0
run --seed "$SEED" --heap $HEAP "$WORK/tree" || status=$?
[ $status -eq 1 ] || fail "without --expect-found, hits must exit 1 (got $status)"
echo "ok: another seed finds nothing; hits make the default mode fail"

# Live memory: a process holding 4 KiB of the heap secret.
python3 -c 'import sys, time; d = open(sys.argv[1], "rb").read(); print("ready", flush=True); time.sleep(60)' \
    "$WORK/secret.bin" >"$WORK/holder.out" &
HOLDER=$!
for _ in $(seq 100); do
    [ -s "$WORK/holder.out" ] && break
    sleep 0.05
done
rm -f "$WORK/secret.bin"
run --seed "$SEED" --heap $HEAP --expect-found "pid:$HOLDER" || fail "secret in a live process not found"
echo "ok: the secret is found in a live process's memory"

status=0
run --seed "$SEED" --heap $HEAP "$WORK/does-not-exist" || status=$?
[ $status -eq 2 ] || fail "an unreadable input must be an error (status $status)"
echo "PASS"
