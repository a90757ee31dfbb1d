#!/usr/bin/env python3
"""Finds the encrypted enclave checkpoint image (include/spm/abi/
checkpoint_abi.h) inside CRIU's page images and edits it the way an
attacker on the host would. Work on a COPY of the image directory.

usage: ckpt_image.py info DIR
       ckpt_image.py tamper DIR OP
OP is one of
  header:OFFSET     flip the low bit of header byte OFFSET (fixed part or runs)
  tag:I             flip a bit of chunk I's tag
  cipher:I          flip a bit in the middle of chunk I's ciphertext
  swap:I:J          exchange chunks I and J, each with its tag
  drop:I            remove chunk I and its tag, move later ones down, zero the end
  truncate          zero the second half of the last chunk
The image is located by its magic "SPMCKPT\\0" and checked for consistency
(version, header_size = 256 + 16 * run_count, image_size) so that a stray
copy of the magic is not taken for it. The image may cross page boundaries
of pages-*.img only where its pages were stored consecutively, which CRIU
does for one mapping; info says where it found it."""
import glob
import hashlib
import os
import struct
import sys

MAGIC = b"SPMCKPT\0"
FIXED = 256
HEADER = struct.Struct("<QII32s32sHHIQQQ16s16sQIIQQQII64s")
assert HEADER.size == FIXED


def parse(data, at):
    if at + FIXED > len(data):
        return None
    (magic, version, header_size, mr_enclave, mr_signer, prod, svn, _r0, attrs, base, size,
     ckpt_id, lineage, generation, run_count, chunk_count, chunk_size, payload_size,
     image_size, tcs_count, _r1, _reserved) = HEADER.unpack_from(data, at)
    if magic != struct.unpack("<Q", MAGIC)[0] or version != 1:
        return None
    if header_size != FIXED + 16 * run_count or chunk_size == 0:
        return None
    if image_size != header_size + 16 * chunk_count + payload_size:
        return None
    if chunk_count != (payload_size + chunk_size - 1) // chunk_size:
        return None
    # What the ME keys the escrow by (struct spm_me_checkpoint_ref): SHA-256
    # over the fixed header and the runs, computed here independently.
    if at + header_size > len(data):
        return None
    digest = hashlib.sha256(data[at:at + header_size]).hexdigest()
    return dict(offset=at, header_size=header_size, run_count=run_count,
                chunk_count=chunk_count, chunk_size=chunk_size, payload_size=payload_size,
                image_size=image_size, generation=generation, base=base, size=size,
                tcs_count=tcs_count, svn=svn, checkpoint_id=ckpt_id.hex(),
                lineage_id=lineage.hex(), mr_enclave=mr_enclave.hex(), header_digest=digest)


def find(directory):
    found = []
    for path in sorted(glob.glob(os.path.join(directory, "pages-*.img"))):
        data = open(path, "rb").read()
        at = data.find(MAGIC)
        while at >= 0:
            h = parse(data, at)
            if h:
                if at + h["image_size"] > len(data):
                    raise SystemExit(f"{path}: image at {at} runs past the end of the file")
                found.append((path, h))
            at = data.find(MAGIC, at + 1)
    return found


def chunk_range(h, i):
    start = h["offset"] + h["header_size"] + 16 * h["chunk_count"] + i * h["chunk_size"]
    size = min(h["chunk_size"], h["payload_size"] - i * h["chunk_size"])
    return start, size


def tag_offset(h, i):
    return h["offset"] + h["header_size"] + 16 * i


def tamper(data, h, op):
    words = op.split(":")
    n = h["chunk_count"]

    def index(text):
        i = int(text)
        if not 0 <= i < n:
            raise SystemExit(f"chunk {i} does not exist (the image has {n})")
        return i

    if words[0] == "header":
        off = int(words[1], 0)
        if not 0 <= off < h["header_size"]:
            raise SystemExit(f"header offset {off} is outside 0..{h['header_size']}")
        data[h["offset"] + off] ^= 1
        return f"flipped header byte {off}"
    if words[0] == "tag":
        i = index(words[1])
        data[tag_offset(h, i) + 5] ^= 0x10
        return f"flipped a bit of chunk {i}'s tag"
    if words[0] == "cipher":
        i = index(words[1])
        start, size = chunk_range(h, i)
        data[start + size // 2] ^= 0x80
        return f"flipped a bit at byte {size // 2} of chunk {i}'s ciphertext"
    if words[0] == "swap":
        i, j = index(words[1]), index(words[2])
        (si, zi), (sj, zj) = chunk_range(h, i), chunk_range(h, j)
        if zi != zj:
            raise SystemExit("swap needs two chunks of the same size")
        a, b = bytes(data[si:si + zi]), bytes(data[sj:sj + zj])
        data[si:si + zi], data[sj:sj + zj] = b, a
        ti, tj = tag_offset(h, i), tag_offset(h, j)
        a, b = bytes(data[ti:ti + 16]), bytes(data[tj:tj + 16])
        data[ti:ti + 16], data[tj:tj + 16] = b, a
        return f"swapped chunks {i} and {j} with their tags"
    if words[0] == "drop":
        i = index(words[1])
        t0, t_end = tag_offset(h, i), tag_offset(h, n)
        data[t0:t_end] = bytes(data[t0 + 16:t_end]) + bytes(16)
        c0, _ = chunk_range(h, i)
        c_end = h["offset"] + h["image_size"]
        shift = h["chunk_size"]
        data[c0:c_end] = bytes(data[c0 + shift:c_end]) + bytes(min(shift, c_end - c0))
        return f"dropped chunk {i} (tags and ciphertext after it moved down, end zeroed)"
    if words[0] == "truncate":
        start, size = chunk_range(h, n - 1)
        data[start + size // 2:start + size] = bytes(size - size // 2)
        return f"zeroed the last {size - size // 2} bytes of the last chunk ({n - 1})"
    raise SystemExit(f"unknown operation {op}")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("info", "tamper"):
        print(__doc__, file=sys.stderr)
        return 2
    found = find(sys.argv[2])
    if not found:
        print(f"no checkpoint image (magic SPMCKPT) in {sys.argv[2]}/pages-*.img",
              file=sys.stderr)
        return 1
    if sys.argv[1] == "info":
        for path, h in found:
            print(os.path.basename(path), " ".join(f"{k}={v}" for k, v in h.items()))
        return 0
    if len(found) != 1:
        print(f"{len(found)} checkpoint images found; expected one", file=sys.stderr)
        return 1
    path, h = found[0]
    data = bytearray(open(path, "rb").read())
    before = bytes(data)
    what = tamper(data, h, sys.argv[3])
    if bytes(data) == before:
        print(f"{what}: nothing changed", file=sys.stderr)
        return 1
    with open(path, "r+b") as f:
        f.write(data)
    print(f"{os.path.basename(path)}: {what} (image at offset {h['offset']}, "
          f"{h['chunk_count']} chunks of {h['chunk_size']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
