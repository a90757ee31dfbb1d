#!/usr/bin/env python3
"""Turns what KVS.PUBKEY and KVS.SIGN return (hex of a raw P-256 point and
of r || s) into the DER/PEM forms `openssl dgst -verify` reads, so the
end-to-end test checks the enclave's signatures with an independent
implementation. Standard library only.

usage: kvs_ecdsa_der.py pubkey HEX        -> PEM SubjectPublicKeyInfo on stdout
       kvs_ecdsa_der.py sig HEX OUT.der   -> DER ECDSA-Sig-Value in OUT.der
"""
import base64
import sys

# SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes) }
SPKI_P256_PREFIX = bytes.fromhex(
    "3059301306072a8648ce3d020106082a8648ce3d030107034200")


def der_integer(value: bytes) -> bytes:
    value = value.lstrip(b"\0") or b"\0"
    if value[0] & 0x80:  # keep it positive
        value = b"\0" + value
    return bytes([0x02, len(value)]) + value


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "pubkey":
        point = bytes.fromhex(sys.argv[2])
        if len(point) != 65 or point[0] != 4:
            print("not a 65-byte uncompressed P-256 point", file=sys.stderr)
            return 1
        der = SPKI_P256_PREFIX + point
        body = base64.encodebytes(der).decode().replace("\n", "")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        print("-----BEGIN PUBLIC KEY-----")
        print("\n".join(lines))
        print("-----END PUBLIC KEY-----")
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "sig":
        raw = bytes.fromhex(sys.argv[2])
        if len(raw) != 64:
            print("not a 64-byte r || s signature", file=sys.stderr)
            return 1
        body = der_integer(raw[:32]) + der_integer(raw[32:])
        with open(sys.argv[3], "wb") as out:
            out.write(bytes([0x30, len(body)]) + body)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
