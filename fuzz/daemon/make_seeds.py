#!/usr/bin/env python3
"""Writes the seed corpora of the daemon group's harnesses into
fuzz/corpus/{wire,tls_frame,journal,criu_ids,control}/ (run from anywhere;
it replaces files of the same names only).

Each seed is the harness's selector bytes (see the harness's opening
comment) and a body laid out as spmd writes it (src/daemon/wire.h,
src/host/net/tls.h, journal.c, control.h), little-endian packed structs.
The criu_ids seeds are real: an inventory.img and the first line of a
dump.log that criu 4.2.1 wrote in a tests/migrate post-copy run, and the
journal seeds are the two journals that run left (source and destination).
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'corpus')


def put(corpus, name, data):
    d = os.path.join(ROOT, corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# ---- wire: byte 0 the message type, byte 1 the receiver's context ----
HELLO, ME, FILE_BEGIN, FILE_DATA, FILE_END, IMAGES_DONE, RESTORE, RESTORED, GO, \
    RUNNING, DISCARD, QUERY, STATE, OK, ERROR, TUNNEL_DATA, TUNNEL_END = range(1, 18)
MIGRATION_ID = bytes.fromhex('9dd69c80cd95d3ffe83d6a1dec2f3ecb')


def wire(name, type_, body, context=0):
    put('wire', name, bytes([type_, context]) + body)


def hello(flags, mode, version=1, source=b'10.77.0.1:7786', name=b'host-a'):
    return struct.pack('<II16sII64s64s', version, flags, MIGRATION_ID, 20483, mode,
                       source, name)


def me_header(type_, size):
    return struct.pack('<IHHII', 0x454D5053, 1, type_, size, 0)


def file_begin(name, size=2556, mode=0o600, reserved=0):
    return struct.pack('<QIHH', size, mode, len(name), reserved) + name


wire('name-core', 0, b'core-1.img')
wire('name-dotdot', 0, b'..')
wire('hello-migrate', HELLO, hello(1, 0))
wire('hello-tunnel-post', HELLO, hello(4, 1))
wire('hello-resume-unterminated', HELLO, hello(2, 2, source=b'A' * 64, name=b'B' * 64))
wire('hello-version-2', HELLO, hello(1, 0, version=2))
wire('me-peer-offer', ME, me_header(17, 8) + bytes(8))
wire('me-peer-sealed', ME, me_header(19, 4) + bytes(4))
wire('file-begin', FILE_BEGIN, file_begin(b'pages-1.img', 1 << 20))
wire('file-begin-slash', FILE_BEGIN, file_begin(b'../etc/passwd'))
wire('file-begin-long-name', FILE_BEGIN, file_begin(b'x' * 128))
wire('file-data', FILE_DATA, struct.pack('<QQ', 4096, 1024) + b'\xaa' * 64)
wire('file-end', FILE_END, bytes(range(32)))
wire('images-done', IMAGES_DONE, struct.pack('<IIQ', 42, 0, 17 << 20))
wire('restore-stop', RESTORE, struct.pack('<II64s', 0, 0, b'10.77.0.100/24'), context=0)
wire('restore-post-lazy', RESTORE, struct.pack('<II64s', 1, 0, b''), context=1)
wire('restore-bad-ip', RESTORE, struct.pack('<II64s', 0, 0, b'10.0.0.1;reboot'), context=0)
wire('restored', RESTORED, struct.pack('<IIQ', 20483, 0, 235000))
wire('go', GO, b'')
wire('running', RUNNING, struct.pack('<IIQQ', 20483, 0, 1200, 800))
wire('discard', DISCARD, b'')
wire('query', QUERY, struct.pack('<16sII', MIGRATION_ID, 0, 0))
wire('state-handed-over', STATE, struct.pack('<16sII', MIGRATION_ID, 2, 0))
wire('ok', OK, b'')
text = b'criu restore of pid 20483 failed here; nothing of it runs here'
wire('error', ERROR, struct.pack('<iHH', -5, len(text), 0) + text, context=255)
wire('error-cut-text', ERROR, struct.pack('<iHH', -71, len(text), 0) + text, context=16)
wire('error-control-bytes', ERROR, struct.pack('<iHH', -22, 6, 0) + b'a\nb\x00\x7f\xff',
     context=255)
wire('tunnel-data', TUNNEL_DATA, b'\x01\x02\x03')
wire('tunnel-end', TUNNEL_END, struct.pack('<iI', 0, 0))

# ---- tls_frame: byte 0 bit 0 = the ACCEPTED frame is awaited ----
MAGIC = 0x574D5053


def frame(type_, size, version=1, reserved=0, magic=MAGIC):
    return struct.pack('<IHHII', magic, version, type_, size, reserved)


put('tls_frame', 'accepted', b'\x01' + frame(0, 0))
put('tls_frame', 'hello', b'\x00' + frame(HELLO, 160))
put('tls_frame', 'file-data-max', b'\x00' + frame(FILE_DATA, 4 * 1024 * 1024 + 64 * 1024))
put('tls_frame', 'oversize', b'\x00' + frame(FILE_DATA, 4 * 1024 * 1024 + 64 * 1024 + 1))
put('tls_frame', 'type-0-unasked', b'\x00' + frame(0, 0))
put('tls_frame', 'tls-alert', b'\x00' + bytes.fromhex('15030300020230') + bytes(9))

# ---- journal: the file's text ----
put('journal', 'destination', b'id=9dd69c80cd95d3ffe83d6a1dec2f3ecb\nrole=destination\n'
    b'phase=discarded\npid=20483\nmode=1\npeer=10.77.0.1:7786\nip=10.77.0.100/24\nrefs=\n')
put('journal', 'source', b'id=9dd69c80cd95d3ffe83d6a1dec2f3ecb\nrole=source\nphase=kept\n'
    b'pid=20483\nmode=1\npeer=10.77.0.2\nip=10.77.0.100/24\n'
    b'refs=62d878a928e64e219895ac8836d0d718:1:7e834fea91ff84112eab03a6f6b1fe2b:'
    b'459bd8af747c32f1b403833d284cddfb79742db79d1a160489311531bb792b6d\n')
put('journal', 'handover-no-mode', b'id=00112233445566778899AABBCCDDEEFF\nrole=source\n'
    b'phase=handover\npid=1\npeer=[fd00::2]:7786\n')

# ---- criu_ids: byte 0 = (id buffer size - 1) << 1 | (1: dump.log) ----
INVENTORY = bytes.fromhex(
    '1631315853000000080210011a1808011001180120012801300238034004480650075808600520012801'
    '300058016205620373706d6a2432346566316333632d663931392d343766302d383431362d3964393239'
    '63663961633064')
put('criu_ids', 'inventory', bytes([63 << 1]) + INVENTORY)
put('criu_ids', 'inventory-small-id-buffer', bytes([20 << 1]) + INVENTORY)
put('criu_ids', 'dump-log', bytes([63 << 1 | 1]) +
    b'(00.000000) CRIU run id = 01d7019f-329e-4412-867c-a48616ab596b\n'
    b'(00.000383) Version: 4.2.1 (gitid 0)\n')

# ---- control: byte 0 what (0 request, 1 reply, 2 value), byte 1 a choice ----
put('control', 'request-export', b'\x00\x00export timeout_ms=10000 threads=4 lazy=1\n')
put('control', 'request-resume', b'\x00\x00resume platform=/var/lib/spm/platform '
    b'spmd=/run/spm/spmd%20a.sock\n')
put('control', 'request-status', b'\x00\x00status wait_ms=60000\ntrailing bytes\n')
ref = ('62d878a928e64e219895ac8836d0d718:1:7e834fea91ff84112eab03a6f6b1fe2b:'
       '459bd8af747c32f1b403833d284cddfb79742db79d1a160489311531bb792b6d').encode()
put('control', 'reply-export', b'\x01\x04ok enclaves=2 bytes=1048576 chunks=16 threads=4 '
    b'export_us=1234 refs=' + ref + b',' + ref.upper().replace(b':1:', b':7:'))
put('control', 'reply-error', b'\x01\x78error errno=71 msg=the enclave refs=x is busy')
put('control', 'value-encoded', b'\x02\x10/run/spm/a%20b%25c%7E')
