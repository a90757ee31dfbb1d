#!/usr/bin/env python3
"""A client that holds one established TCP connection to a RESP server
(redis, kvs) across a migration and measures what a client sees: it sends
PING every few milliseconds on that one connection and records the longest
gap between two answers. A connection that breaks (reset, EOF, a wrong
answer) is an error: the point of live migration is that it does not.

usage: resp_probe.py HOST PORT STOPFILE RESULTFILE [--interval-ms N] [--max-s N]

Runs until STOPFILE exists (bounded by --max-s, default 300 s), then writes
one JSON object to RESULTFILE: pings, errors, max_gap_ms, first_error,
client_id_before, client_id_after (CLIENT ID on this connection at start
and end, equal when the server kept the same connection) and exits 0 if
there was no error.
"""
import json
import os
import socket
import sys
import time


def read_line(sock, buf):
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    line, _, rest = buf.partition(b"\r\n")
    return line, rest


def command(sock, buf, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    return read_line(sock, buf)


def main():
    args = sys.argv[1:]
    if len(args) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, stopfile, resultfile = args[0], int(args[1]), args[2], args[3]
    interval = 0.005
    max_s = 300.0
    rest = args[4:]
    while rest:
        if rest[0] == "--interval-ms" and len(rest) > 1:
            interval = float(rest[1]) / 1000.0
        elif rest[0] == "--max-s" and len(rest) > 1:
            max_s = float(rest[1])
        else:
            print("resp_probe: unknown argument %s" % rest[0], file=sys.stderr)
            return 2
        rest = rest[2:]

    result = {"pings": 0, "errors": 0, "max_gap_ms": 0.0, "first_error": None,
              "client_id_before": None, "client_id_after": None}
    sock = socket.create_connection((host, port), timeout=10)
    # A stalled connection during the migration is expected: wait long for
    # an answer rather than call a slow answer an error.
    sock.settimeout(60)
    buf = b""
    line, buf = command(sock, buf, "CLIENT", "ID")
    result["client_id_before"] = line.decode(errors="replace")
    # Tell the test the connection is up.
    with open(resultfile + ".ready", "w") as f:
        f.write("ready\n")
    start = time.monotonic()
    last = start
    while not os.path.exists(stopfile) and time.monotonic() - start < max_s:
        try:
            line, buf = command(sock, buf, "PING")
        except (OSError, ConnectionError) as e:
            result["errors"] += 1
            result["first_error"] = result["first_error"] or repr(e)
            break
        now = time.monotonic()
        if line != b"+PONG":
            result["errors"] += 1
            result["first_error"] = result["first_error"] or ("answer %r" % line)
            break
        result["pings"] += 1
        result["max_gap_ms"] = max(result["max_gap_ms"], (now - last) * 1000.0)
        last = now
        time.sleep(interval)
    if result["errors"] == 0:
        try:
            line, buf = command(sock, buf, "CLIENT", "ID")
            result["client_id_after"] = line.decode(errors="replace")
        except (OSError, ConnectionError) as e:
            result["errors"] += 1
            result["first_error"] = repr(e)
    result["max_gap_ms"] = round(result["max_gap_ms"], 1)
    sock.close()
    with open(resultfile + ".tmp", "w") as f:
        json.dump(result, f)
    os.rename(resultfile + ".tmp", resultfile)
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
