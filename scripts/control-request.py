#!/usr/bin/env python3
"""Sends one request line to an SPM process's control socket and prints the
reply line (protocol: src/host/control/control.h). For tests, benchmarks and
operators looking at a process by hand.

usage: control-request.py SOCKET REQUEST [TIMEOUT_SECONDS]"""
import socket
import sys

if len(sys.argv) not in (3, 4):
    sys.exit(__doc__)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[3]) if len(sys.argv) == 4 else 30)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
reply = b""
while not reply.endswith(b"\n"):
    data = s.recv(4096)
    if not data:
        break
    reply += data
print(reply.decode().strip())
