#!/usr/bin/env bash
# Regenerates the seed corpora of the image group from a normal build:
#   fuzz/image/make-seeds.sh BUILD_DIR [FUZZ_BUILD_DIR]
# BUILD_DIR has the spm CLI and the image test fixture (meson setup with
# tests enabled). The fixture enclave, stripped to 14 KB with its .spm_meta
# kept, is the smallest real enclave the build makes (the runtime's own
# enclaves carry BearSSL and are 340 KB); it is signed with a throwaway key
# in two configurations. Seeds:
#   elf/            the stripped ELF unsigned and signed
#   enclave_image/  the two signed files
#   sigstruct/      the SIGSTRUCT of each (1808 bytes from .spm_meta + 96)
#                   after the harness's two bytes that pick a bit to flip
#   ckpt/           (with FUZZ_BUILD_DIR) headers and run lists valid for the
#                   geometry each one's prefix picks, written by the harness
#                   itself (SPM_FUZZ_CKPT_SEEDS=DIR fuzz_ckpt), which knows it
set -euo pipefail
build=$(realpath "$1")
fuzz_build=${2:+$(realpath "$2")}
corpus=$(realpath "$(dirname "$0")/../corpus")
spm=$build/src/cli/spm
fixture=$build/tests/unit/image/image-fixture-enclave
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export SOURCE_DATE_EPOCH=1735689600 # 2025-01-01: the same DATE every time
"$spm" keygen --out "$work/key.pem" >/dev/null
objcopy --strip-all --keep-section=.spm_meta "$fixture" "$work/fixture.elf"
"$spm" sign --key "$work/key.pem" --in "$work/fixture.elf" --out "$work/small.signed" \
    --tcs 1 --heap 4K --stack 8K --ssa-frames 1 >/dev/null
"$spm" sign --key "$work/key.pem" --in "$work/fixture.elf" --out "$work/debug-2tcs.signed" \
    --tcs 2 --heap 16K --stack 8K --ssa-frames 2 --debug --isvprodid 7 --isvsvn 3 >/dev/null

# The SIGSTRUCT follows magic, version, size (16 bytes) and the config (80).
meta_offset() {
    local hex
    hex=$(readelf -SW "$1" | sed -n 's/.* \.spm_meta *PROGBITS *[0-9a-f]* \([0-9a-f]*\) .*/\1/p')
    echo $((16#$hex))
}

mkdir -p "$corpus/elf" "$corpus/enclave_image" "$corpus/sigstruct"
install -m 644 "$work/fixture.elf" "$corpus/elf/fixture-unsigned"
cp "$work/small.signed" "$corpus/elf/fixture-signed"
for s in small debug-2tcs; do
    cp "$work/$s.signed" "$corpus/enclave_image/fixture-$s"
    off=$(($(meta_offset "$work/$s.signed") + 96))
    { printf '\x10\x27'; # bit 10000 of 14464, in the signature
      tail -c +$((off + 1)) "$work/$s.signed" | head -c 1808; } >"$corpus/sigstruct/fixture-$s"
done

if [ -n "$fuzz_build" ]; then
    mkdir -p "$corpus/ckpt"
    SPM_FUZZ_CKPT_SEEDS="$corpus/ckpt" "$fuzz_build/fuzz/image/fuzz_ckpt"
fi
ls -l "$corpus"/{elf,enclave_image,sigstruct}/ ${fuzz_build:+"$corpus/ckpt/"}
