#!/usr/bin/env python3
"""Bounded loopback rate clients for bench/tls-accept (stdlib only).

    rate_clients.py tls --port P [--servername mail.example.test] [--tls 1.3|1.2]
                        [--procs 8] [--secs 10] [--count 1000000] [--no-greeting]
        full TLS handshakes on an implicit-TLS port: each connection is new, no session
        is ever offered for resumption (no session= / tickets unused), SNI = --servername;
        after the handshake it reads the SMTP 220 greeting (unless --no-greeting), closes.
    rate_clients.py accept --port P [--procs 4] [--secs 10] [--count 100000] [--quit]
        connect, read the 220 greeting, close (--quit: QUIT and wait for the close).
    rate_clients.py tlslat --port P [--servername N] [--tls 1.3|1.2] [--count 50] [--secs 20]
        sequential full handshakes, one at a time: median/p90 of the handshake time and of
        the time from the end of the handshake to the complete 220 greeting. Prints
        n=N errors=E hs_median_ms=.. hs_p90_ms=.. greet_median_ms=.. greet_p90_ms=..

Every worker process starts at the same instant and stops at --count (split between
workers) or --secs, whichever comes first. Prints one line:
    ok=N errors=E elapsed=S rate=R
(elapsed from the common start to the last worker's end) and the last error on stderr.
Only loopback targets.
"""
import argparse
import multiprocessing as mp
import resource
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def read_greeting(sock):
    buf = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the greeting (%r)" % buf[:60])
        buf += chunk
        # a complete reply: last line "220 ..." ended by CRLF
        lines = buf.split(b"\r\n")
        for line in lines[:-1]:
            if line[:3] != b"220":
                raise ValueError("unexpected greeting %r" % line[:80])
            if line[3:4] != b"-":
                return buf
        if len(buf) > 8192:
            raise ValueError("greeting too long")


def tls_context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE      # self-signed; the check is done once by the bench
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = v
    ctx.maximum_version = v
    return ctx


def worker(kind, a, count, t0, deadline, q):
    ok = err = 0
    last = ""
    ctx = tls_context(a.tls) if kind == "tls" else None
    while time.monotonic() < t0:
        time.sleep(0.001)
    for i in range(count):
        if (i & 7) == 0 and time.monotonic() >= deadline:
            break
        s = None
        try:
            s = socket.create_connection((HOST, a.port), timeout=10)
            if kind == "tls":
                # a fresh SSLSocket with no session: always a full handshake
                s = ctx.wrap_socket(s, server_hostname=a.servername)
                if a.greeting:
                    read_greeting(s)
            else:
                read_greeting(s)
                if a.quit:
                    s.sendall(b"QUIT\r\n")
                    while s.recv(4096):
                        pass
            ok += 1
        except Exception as e:  # counted; the loop is bounded anyway
            err += 1
            last = repr(e)
        finally:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
    q.put((ok, err, last, time.monotonic()))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))] if xs else float("nan")


def latency(a):
    ctx = tls_context(a.tls)
    hs, greet, errs, last = [], [], 0, ""
    deadline = time.monotonic() + a.secs
    for _ in range(min(a.count, 10000)):
        if time.monotonic() >= deadline:
            break
        s = None
        try:
            s = socket.create_connection((HOST, a.port), timeout=10)
            t0 = time.monotonic()
            s = ctx.wrap_socket(s, server_hostname=a.servername)
            t1 = time.monotonic()
            read_greeting(s)
            t2 = time.monotonic()
            hs.append(1000 * (t1 - t0))
            greet.append(1000 * (t2 - t1))
        except Exception as e:
            errs += 1
            last = repr(e)
        finally:
            if s is not None:
                s.close()
    if last:
        print("last error: " + last, file=sys.stderr)
    print("n=%d errors=%d hs_median_ms=%.1f hs_p90_ms=%.1f greet_median_ms=%.1f greet_p90_ms=%.1f" % (
        len(hs), errs, pct(hs, 0.5), pct(hs, 0.9), pct(greet, 0.5), pct(greet, 0.9)))
    return 0 if hs else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("tls", "accept", "tlslat"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--procs", type=int, default=0)
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--servername", default="mail.example.test")
    ap.add_argument("--tls", choices=("1.3", "1.2"), default="1.3")
    ap.add_argument("--no-greeting", dest="greeting", action="store_false")
    ap.add_argument("--quit", action="store_true")
    a = ap.parse_args()
    a.procs = max(1, min(a.procs or (8 if a.kind == "tls" else 4), 256))
    a.count = max(1, min(a.count or 1_000_000, 5_000_000))
    a.secs = max(0.5, min(a.secs, 600.0))
    if a.kind == "tlslat":
        return latency(a)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    q = mp.Queue()
    per = [a.count // a.procs + (1 if i < a.count % a.procs else 0) for i in range(a.procs)]
    t0 = time.monotonic() + 0.3          # common start, after every fork
    deadline = t0 + a.secs
    procs = [mp.Process(target=worker, args=(a.kind, a, n, t0, deadline, q)) for n in per]
    for p in procs:
        p.start()
    res = []
    for _ in procs:
        try:
            res.append(q.get(timeout=a.secs + 60))
        except Exception:  # a worker died: count what came back
            break
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    end = max([r[3] for r in res] or [time.monotonic()])
    el = max(end - t0, 1e-6)
    ok = sum(r[0] for r in res)
    err = sum(r[1] for r in res)
    last = [r[2] for r in res if r[2]]
    if last:
        print("last error: " + last[-1], file=sys.stderr)
    if len(res) < len(procs):
        print("only %d of %d workers reported" % (len(res), len(procs)), file=sys.stderr)
    print("ok=%d errors=%d elapsed=%.3f rate=%.1f" % (ok, err, el, ok / el))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
