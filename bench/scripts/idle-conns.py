#!/usr/bin/env python3
"""Idle cost per connection of a running tollgate: RSS before, with N idle
connections open, and after they close, over several rounds.

  idle-conns.py --pid PID --port PORT [--count 10000] [--rounds 3]
                [--db DB --token TOKEN]   # authenticated sessions

Without --token the connections are opened and say nothing (unauthenticated:
the gateway waits for a start-up packet). With --token each connection logs
in (StartupMessage + PasswordMessage) and waits at ReadyForQuery: each holds
an upstream session too, so the server needs max_connections above --count.
The gateway's `auth_timeout` must exceed the time a round takes (the idle
unauthenticated connections are closed by it otherwise).
RSS is read from /proc/PID/status (VmRSS); "after" is read once the gateway
has closed every session (its RSS settles within the wait below).
"""

import argparse
import resource
import socket
import struct
import sys
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS")


def startup(db):
    body = struct.pack("!I", 196608)
    for k, v in (("user", "bench"), ("database", db)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def recv_until(s, tag):
    """Read messages until one of type `tag`; fail on ErrorResponse."""
    buf = b""
    while True:
        while len(buf) >= 5:
            t, n = buf[0:1], struct.unpack("!I", buf[1:5])[0]
            if len(buf) < 1 + n:
                break
            buf = buf[1 + n:]
            if t == b"E":
                raise SystemExit("login refused")
            if t == tag:
                return
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("gateway closed a connection")
        buf += chunk


def open_conns(port, count, db, token):
    conns = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if token:
            s.sendall(startup(db))
            recv_until(s, b"R")
            pw = token.encode() + b"\0"
            s.sendall(b"p" + struct.pack("!I", len(pw) + 4) + pw)
            recv_until(s, b"Z")
        conns.append(s)
    return conns


def settle(pid, seconds=3.0):
    """RSS once it has stopped moving (sessions end asynchronously)."""
    last = rss(pid)
    deadline = time.time() + 30
    while time.time() < deadline:
        time.sleep(seconds)
        now = rss(pid)
        if now == last:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", default="postgres")
    ap.add_argument("--token")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.count + 1024), hard))
    kind = "authenticated" if a.token else "unauthenticated"
    print(f"{a.count} idle {kind} connections, {a.rounds} rounds")
    print("round  rss_before_MB  rss_open_MB  per_conn_KB  rss_after_close_MB")
    for r in range(a.rounds):
        before = settle(a.pid, 1.0)
        conns = open_conns(a.port, a.count, a.db, a.token)
        opened = settle(a.pid, 1.0)
        for s in conns:
            s.close()
        after = settle(a.pid)
        per = (opened - before) / a.count / 1024
        print(f"{r + 1:5d}  {before / 1e6:13.1f}  {opened / 1e6:11.1f}  {per:11.1f}  {after / 1e6:18.1f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
