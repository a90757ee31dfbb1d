#!/usr/bin/env python3
"""Loads kvs with a known data set and verifies it later, over raw RESP
(pipelined), so a checkpoint test can prove every key, value and counter
came back. Values are SHAKE-256(seed || index) of the requested size;
counters ctr:J end at J*7+1 after INCRBY J*7 and one INCR.

usage: kvs_data.py load   PORT SEED TOTAL_BYTES VALUE_SIZE
       kvs_data.py verify PORT SEED TOTAL_BYTES VALUE_SIZE
Prints what it did; exits 1 on the first mismatch."""
import hashlib
import socket
import sys

COUNTERS = 100


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""

    def _fill(self):
        data = self.s.recv(1 << 20)
        if not data:
            raise SystemExit("kvs closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return (kind, rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value
        raise SystemExit(f"unexpected reply {line[:80]!r}")

    def pipeline(self, commands):
        self.s.sendall(b"".join(commands))
        return [self.reply() for _ in commands]


def value(seed, i, size):
    return hashlib.shake_256(seed + b"%d" % i).digest(size)


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ("load", "verify"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, port, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
    total, size = int(sys.argv[4]), int(sys.argv[5])
    count = max(1, total // size)
    conn = Conn(port)
    batch = max(1, (4 << 20) // size)
    if mode == "load":
        for start in range(0, count, batch):
            ids = range(start, min(count, start + batch))
            replies = conn.pipeline([command("SET", f"val:{i}", value(seed, i, size)) for i in ids])
            if any(r != (b"+", b"OK") for r in replies):
                raise SystemExit(f"SET failed: {[r for r in replies if r != (b'+', b'OK')][:1]}")
        replies = conn.pipeline([command("INCRBY", f"ctr:{j}", j * 7) for j in range(COUNTERS)] +
                                [command("INCR", f"ctr:{j}") for j in range(COUNTERS)])
        want = [j * 7 for j in range(COUNTERS)] + [j * 7 + 1 for j in range(COUNTERS)]
        if replies != want:
            raise SystemExit("INCRBY/INCR replies differ from what was asked")
        print(f"loaded {count} values of {size} bytes ({count * size} bytes) and {COUNTERS} counters")
        return 0
    bad = 0
    for start in range(0, count, batch):
        ids = list(range(start, min(count, start + batch)))
        replies = conn.pipeline([command("GET", f"val:{i}") for i in ids])
        for i, got in zip(ids, replies):
            if got != value(seed, i, size):
                bad += 1
                if bad <= 3:
                    print(f"val:{i}: {'missing' if got is None else 'different bytes'}")
    counters = conn.pipeline([command("GET", f"ctr:{j}") for j in range(COUNTERS)])
    for j, got in enumerate(counters):
        if got != b"%d" % (j * 7 + 1):
            bad += 1
            print(f"ctr:{j}: {got!r}, expected {j * 7 + 1}")
    if bad:
        print(f"{bad} of {count} values / {COUNTERS} counters wrong")
        return 1
    print(f"verified {count} values of {size} bytes ({count * size} bytes) and {COUNTERS} counters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
