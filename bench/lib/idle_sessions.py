#!/usr/bin/env python3
"""Open N idle SMTP sessions on a loopback server and hold them (bounded).

    idle_sessions.py --port P [--host 127.0.0.1] [--count 1000] [--parallel 50]
                     [--connect-secs 90] [--hold-secs 180]

Each session: connect, read the 220 greeting, send EHLO, read the whole 250 reply,
then stay idle. At most --parallel handshakes are in flight at once. When all are
established (or --connect-secs has passed) it prints one line to stdout:
    READY established=N failed=F elapsed=S
then holds the sessions until --hold-secs passes or SIGTERM/SIGINT arrives, prints "CLOSED alive=N" and exits. Plain sockets, stdlib only.
"""
import argparse
import errno
import ipaddress
import os
import selectors
import signal
import socket
import sys
import time

CONNECTING, BANNER, EHLO, IDLE = range(4)


class Sess:
    __slots__ = ("sock", "state", "buf")

    def __init__(self, sock):
        self.sock = sock
        self.state = CONNECTING
        self.buf = b""


def reply_done(buf, code):
    """True when buf holds a complete (possibly multi-line) reply ending 'code '."""
    for line in buf.split(b"\r\n")[:-1]:  # the last piece is partial (or empty)
        if line[:3] != code:
            raise ValueError("unexpected reply %r" % line[:80])
        if line[3:4] == b" " or len(line) == 3:
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=50)
    ap.add_argument("--connect-secs", type=float, default=90.0)
    ap.add_argument("--hold-secs", type=float, default=180.0)
    a = ap.parse_args()
    if not ipaddress.ip_address(a.host).is_loopback:
        sys.exit("refusing non-loopback host %s" % a.host)
    a.count = max(1, min(a.count, 20000))
    a.connect_secs = min(a.connect_secs, 600.0)
    a.hold_secs = min(a.hold_secs, 1800.0)

    stop = {"flag": False}

    def on_signal(_sig, _frm):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sel = selectors.DefaultSelector()
    started = failed = 0
    idle = []
    in_flight = 0
    last_err = ""
    t0 = time.monotonic()
    deadline = t0 + a.connect_secs

    def fail(s, why):
        nonlocal failed, in_flight, last_err
        failed += 1
        in_flight -= 1
        last_err = why
        try:
            sel.unregister(s.sock)
        except (KeyError, ValueError):
            pass
        s.sock.close()

    while not stop["flag"] and len(idle) < a.count and time.monotonic() < deadline:
        # keep up to --parallel handshakes going; retries replace failures (bounded by time)
        while in_flight < a.parallel and len(idle) + in_flight < a.count and failed < a.count:
            sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sk.setblocking(False)
            err = sk.connect_ex((a.host, a.port))
            if err not in (0, errno.EINPROGRESS):
                sk.close()
                failed += 1
                last_err = os.strerror(err)
                break
            s = Sess(sk)
            sel.register(sk, selectors.EVENT_WRITE, s)
            started += 1
            in_flight += 1
        if failed >= a.count:
            break
        for key, _ev in sel.select(timeout=0.5):
            s = key.data
            try:
                if s.state == CONNECTING:
                    e = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if e:
                        fail(s, "connect: " + os.strerror(e))
                        continue
                    s.state = BANNER
                    sel.modify(s.sock, selectors.EVENT_READ, s)
                    continue
                chunk = s.sock.recv(65536)
                if not chunk:
                    fail(s, "closed by server in state %d after %r" % (s.state, s.buf[:80]))
                    continue
                s.buf += chunk
                if s.state == BANNER and reply_done(s.buf, b"220"):
                    s.buf = b""
                    s.state = EHLO
                    s.sock.sendall(b"EHLO idle.bench.test\r\n")
                elif s.state == EHLO and reply_done(s.buf, b"250"):
                    s.buf = b""
                    s.state = IDLE
                    sel.unregister(s.sock)
                    in_flight -= 1
                    idle.append(s)
            except (OSError, ValueError) as e:
                fail(s, repr(e))

    # anything still mid-handshake at the deadline counts as failed
    for key in list(sel.get_map().values()):
        fail(key.data, "handshake not finished in time")
    el = time.monotonic() - t0
    if last_err:
        print("last error: " + last_err, file=sys.stderr)
    print("READY established=%d failed=%d elapsed=%.2f" % (len(idle), failed, el), flush=True)

    # hold, watching the idle sockets (a server closing one counts it out)
    hold_end = time.monotonic() + a.hold_secs
    hsel = selectors.DefaultSelector()
    for s in idle:
        hsel.register(s.sock, selectors.EVENT_READ, s)
    alive = len(idle)
    while not stop["flag"] and time.monotonic() < hold_end:
        for key, _ev in hsel.select(timeout=0.5):
            try:
                data = key.data.sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                alive -= 1
                hsel.unregister(key.data.sock)
    print("CLOSED alive=%d" % alive, flush=True)
    for s in idle:
        s.sock.close()


if __name__ == "__main__":
    main()
