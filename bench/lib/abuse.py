#!/usr/bin/env python3
"""Abuse loads and a fresh-client probe for bench/session-abuse (stdlib only, loopback only).

    abuse.py slowloris --port P [--count 5000] [--parallel 100] [--connect-secs 120] [--hold-secs 15]
        silent connections: connect, wait for the 220 (so the server holds a session), then
        send nothing and read nothing more; hold them, counting the ones the server closes.
    abuse.py noop --port P [--conns 2] [--count 2000000] [--secs 20] [--hold-secs 3]
        each connection pipelines --count "NOOP\\r\\n" and never reads (not even the 220);
        sending stops when all is written or --secs has passed (a server that stops
        reading blocks the writes); then holds --hold-secs (within --secs) and closes.
    abuse.py nocrlf --port P [--bytes 104857600] [--secs 20] [--hold-secs 2]
        reads the 220, then streams bytes with no CRLF, reading (and keeping the first)
        replies; stops at --bytes, --secs or when the server closes.
    abuse.py tlsstall --ssl-port P --plain-port Q [--count 20] [--hold-secs 20] [--servername N]
        half on the implicit-TLS port, half after EHLO/STARTTLS/220 on the plain port: a
        partial ClientHello (a record header announcing 512 bytes, then 14 of them), then
        nothing; hold, counting the ones the server closes.
    abuse.py data --port P [--conns 10] [--mib 24] [--secs 120] [--rcpt user@test.local]
        concurrent sessions, each sending one message of --mib MiB (78-byte lines), reading
        every reply (no pipelining); each bounded by --secs.
    abuse.py probe --port P [--tls --servername N] [--every 1] [--limit 1] [--wait 5] [--secs 900]
                   [--source 127.0.0.2]
        until SIGTERM: every --every s a new connection from --source (another client
        address than the loads' 127.0.0.1, so per-client limits do not apply to it) times
        connect -> 220 (after a full TLS handshake with --tls); within --limit s counts as
        served, a probe gives up after --wait s.

Every load prints progress on stderr and one "RESULT key=value ..." line on stdout.
Every loop is bounded in count and time; SIGTERM/SIGINT end a load early (it still
reports). RLIMIT_NOFILE is raised to the hard limit at start. Only 127.0.0.0/8.
"""
import argparse
import errno
import ipaddress
import os
import resource
import selectors
import signal
import socket
import ssl
import statistics
import sys
import threading
import time

HOST = "127.0.0.1"
STOP = threading.Event()


def now():
    return time.monotonic()


def log(msg):
    print("  [abuse] " + msg, file=sys.stderr, flush=True)


def clean(b, n=120):
    """Bytes from the server, printable and short, for a report."""
    t = b.decode("latin-1").replace("\r", "").replace("\n", " | ").strip(" |")
    t = "".join(c if 32 <= ord(c) < 127 else "?" for c in t).replace('"', "'")
    return t[:n]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def reply_state(buf):
    """(code, complete) for the reply at the start of buf; code None when not yet known."""
    lines = buf.split(b"\r\n")
    for line in lines[:-1]:
        if line[3:4] != b"-":
            return line[:3], True
    return (lines[0][:3] if len(lines[0]) >= 3 else None), False


def read_reply(sock, deadline):
    """Blocking read of one complete SMTP reply (bounded by deadline) -> (code, text)."""
    buf = b""
    while True:
        left = deadline - now()
        if left <= 0:
            raise TimeoutError("no complete reply (%r)" % buf[:80])
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by server (%r)" % buf[:80])
        buf += chunk
        code, done = reply_state(buf)
        if done:
            return code.decode("latin-1"), buf
        if len(buf) > 65536:
            raise ValueError("reply too long")


def expect(sock, deadline, code):
    got, text = read_reply(sock, deadline)
    if got != code:
        raise ValueError("expected %s, got %s" % (code, clean(text)))
    return text


# ---------------------------------------------------------------- slowloris
def cmd_slowloris(a):
    sel = selectors.DefaultSelector()
    held, failed, in_flight = [], 0, 0
    reasons = {}
    t0 = now()
    deadline = t0 + a.connect_secs

    def drop(sk, why):
        nonlocal failed, in_flight
        failed += 1
        in_flight -= 1
        reasons[why] = reasons.get(why, 0) + 1
        try:
            sel.unregister(sk)
        except (KeyError, ValueError):
            pass
        sk.close()

    while not STOP.is_set() and len(held) < a.count and now() < deadline:
        while in_flight < a.parallel and len(held) + in_flight < a.count and failed < a.count:
            sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sk.setblocking(False)
            e = sk.connect_ex((HOST, a.port))
            if e not in (0, errno.EINPROGRESS):
                sk.close()
                failed += 1
                why = "connect: " + os.strerror(e)
                reasons[why] = reasons.get(why, 0) + 1
                break
            sel.register(sk, selectors.EVENT_WRITE, [b"", False])
            in_flight += 1
        if failed >= a.count:
            break
        for key, _ev in sel.select(timeout=0.2):
            sk, st = key.fileobj, key.data
            try:
                if not st[1]:
                    e = sk.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if e:
                        drop(sk, "connect: " + os.strerror(e))
                        continue
                    st[1] = True
                    sel.modify(sk, selectors.EVENT_READ, st)
                    continue
                chunk = sk.recv(4096)
                if not chunk:
                    drop(sk, "closed before the 220 (%r)" % st[0][:60])
                    continue
                st[0] += chunk
                code, done = reply_state(st[0])
                if done:
                    if code != b"220":
                        drop(sk, "greeting %s" % clean(st[0]))
                        continue
                    sel.unregister(sk)
                    in_flight -= 1
                    held.append(sk)   # from now on: silent, never read
            except OSError as e:
                drop(sk, repr(e))
    for key in list(sel.get_map().values()):
        drop(key.fileobj, "still waiting for the 220 when connecting stopped" if now() < deadline
             else "no 220 within --connect-secs")
    sel.close()
    t_conn = now() - t0
    top = sorted(reasons.items(), key=lambda kv: -kv[1])
    why = "; ".join("%dx %s" % (n, r) for r, n in top[:2])
    log("slowloris: %d held, %d failed in %.1fs%s" % (
        len(held), failed, t_conn, (" (%s)" % why) if why else ""))

    closed, first_close, replies = 0, None, b""
    hsel = selectors.DefaultSelector()
    for sk in held:
        hsel.register(sk, selectors.EVENT_READ)
    t_hold = now()
    hold_end = t_hold + a.hold_secs
    while not STOP.is_set() and now() < hold_end and hsel.get_map():
        for key, _ev in hsel.select(timeout=0.2):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if data:
                if len(replies) < 200:
                    replies += data
                continue
            closed += 1
            if first_close is None:
                first_close = now() - t_hold
            hsel.unregister(key.fileobj)
    for sk in held:
        sk.close()
    print("RESULT held=%d of=%d failed=%d connect_s=%.1f hold_s=%.1f closed_by_server=%d "
          "first_close_s=%s said=\"%s\" errors=\"%s\"" % (
              len(held), a.count, failed, t_conn, now() - t_hold, closed,
              "%.1f" % first_close if first_close is not None else "-", clean(replies, 80),
              clean(why.encode(), 140)), flush=True)


# ---------------------------------------------------------------- NOOP flood, never read
def cmd_noop(a):
    unit = b"NOOP\r\n"
    chunk = unit * 10923
    view = memoryview(chunk)
    L = len(chunk)
    total = a.count * len(unit)
    t0 = now()
    deadline = t0 + a.secs
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(a.conns):
        sk = socket.create_connection((HOST, a.port), timeout=5)
        sk.setblocking(False)
        c = {"sk": sk, "pos": 0, "done": None, "closed": None}
        conns.append(c)
        sel.register(sk, selectors.EVENT_WRITE, c)
    while not STOP.is_set() and sel.get_map() and now() < deadline:
        for key, _ev in sel.select(timeout=0.2):
            c = key.data
            off = c["pos"] % L
            n = min(L - off, total - c["pos"])
            try:
                sent = c["sk"].send(view[off:off + n])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                c["closed"] = "%s after %d bytes" % (errno.errorcode.get(e.errno, e.errno), c["pos"])
                sel.unregister(c["sk"])
                continue
            c["pos"] += sent
            if c["pos"] >= total:
                c["done"] = now() - t0
                sel.unregister(c["sk"])
    sel.close()
    t_send = now() - t0
    done = [c["done"] for c in conns if c["done"] is not None]
    if len(done) == len(conns):
        hold_end = min(deadline, t0 + max(done) + a.hold_secs)
        while not STOP.is_set() and now() < hold_end:
            time.sleep(0.1)
    sent = sum(c["pos"] for c in conns)
    closed = [c["closed"] for c in conns if c["closed"]]
    for c in conns:
        c["sk"].close()
    log("noop: %d of %d bytes written in %.1fs" % (sent, total * len(conns), t_send))
    print("RESULT conns=%d sent_bytes=%d of=%d sent_cmds=%d all_written=%d send_s=%.1f total_s=%.1f "
          "closed_by_server=%d detail=\"%s\"" % (
              len(conns), sent, total * len(conns), sent // len(unit), len(done), t_send, now() - t0,
              len(closed), "; ".join(closed)[:120]), flush=True)


# ---------------------------------------------------------------- one line without CRLF
def cmd_nocrlf(a):
    t0 = now()
    deadline = t0 + a.secs
    sk = socket.create_connection((HOST, a.port), timeout=5)
    expect(sk, min(deadline, now() + 10), "220")
    sk.setblocking(False)
    chunk = memoryview(b"A" * 65536)
    sent, replies, closed_at, why = 0, b"", None, ""
    sel = selectors.DefaultSelector()
    sel.register(sk, selectors.EVENT_READ | selectors.EVENT_WRITE)
    done_t = None
    while not STOP.is_set() and now() < deadline and closed_at is None:
        if sent >= a.bytes and done_t is None:
            done_t = now()
            sel.modify(sk, selectors.EVENT_READ)
        if done_t is not None and now() > done_t + a.hold_secs:
            break
        for _key, ev in sel.select(timeout=0.2):
            if ev & selectors.EVENT_READ:
                try:
                    data = sk.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError as e:
                    data = b""
                    why = errno.errorcode.get(e.errno, str(e.errno))
                if data == b"":
                    closed_at = (sent, now() - t0)
                    break
                if data and len(replies) < 400:
                    replies += data
            if ev & selectors.EVENT_WRITE and sent < a.bytes:
                try:
                    sent += sk.send(chunk[:min(len(chunk), a.bytes - sent)])
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    why = errno.errorcode.get(e.errno, str(e.errno))
                    closed_at = (sent, now() - t0)
                    break
    sel.close()
    sk.close()
    el = now() - t0
    log("nocrlf: %d of %d bytes in %.1fs, %s" % (
        sent, a.bytes, el, "closed by server after %d bytes (%.1fs)%s" % (
            closed_at[0], closed_at[1], " " + why if why else "") if closed_at else "not closed"))
    print("RESULT sent_bytes=%d of=%d elapsed=%.1f closed_by_server=%d closed_after_bytes=%s "
          "closed_after_s=%s said=\"%s\"" % (
              sent, a.bytes, el, 1 if closed_at else 0, closed_at[0] if closed_at else "-",
              "%.1f" % closed_at[1] if closed_at else "-", clean(replies, 100)), flush=True)


# ---------------------------------------------------------------- stalled TLS handshakes
PARTIAL_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00,      # handshake record, 512 bytes announced
                       0x01, 0x00, 0x01, 0xfc,            # ClientHello, 508 bytes announced
                       0x03, 0x03]) + b"\x00" * 3         # legacy_version, 3 bytes of random


def stall_one(kind, a):
    dl = now() + 10
    if kind == "implicit":
        sk = socket.create_connection((HOST, a.ssl_port), timeout=5)
    else:
        sk = socket.create_connection((HOST, a.plain_port), timeout=5)
        expect(sk, dl, "220")
        sk.sendall(b"EHLO stall.bench.test\r\n")
        ehlo = expect(sk, dl, "250")
        if b"STARTTLS" not in ehlo.upper():
            sk.close()
            raise ValueError("STARTTLS not offered")
        sk.sendall(b"STARTTLS\r\n")
        expect(sk, dl, "220")
    sk.sendall(PARTIAL_HELLO)
    sk.setblocking(False)
    return sk


def cmd_tlsstall(a):
    kinds = ["implicit" if i % 2 == 0 else "starttls" for i in range(a.count)]
    held, errs = [], []
    for k in kinds:
        if STOP.is_set():
            break
        try:
            held.append((k, stall_one(k, a)))
        except Exception as e:
            errs.append("%s: %r" % (k, e))
    n_imp = sum(1 for k, _ in held if k == "implicit")
    n_st = len(held) - n_imp
    log("tlsstall: %d implicit + %d STARTTLS handshakes stalled%s" % (
        n_imp, n_st, (" (%d failed: %s)" % (len(errs), errs[-1])) if errs else ""))
    sel = selectors.DefaultSelector()
    for k, sk in held:
        sel.register(sk, selectors.EVENT_READ, k)
    closed = {"implicit": 0, "starttls": 0}
    first_close = None
    t_hold = now()
    while not STOP.is_set() and now() < t_hold + a.hold_secs and sel.get_map():
        for key, _ev in sel.select(timeout=0.2):
            try:
                data = key.fileobj.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                continue    # an alert, say; the close follows
            closed[key.data] += 1
            if first_close is None:
                first_close = now() - t_hold
            sel.unregister(key.fileobj)
    sel.close()
    for _k, sk in held:
        sk.close()
    print("RESULT implicit=%d starttls=%d of=%d failed=%d hold_s=%.1f closed_implicit=%d "
          "closed_starttls=%d first_close_s=%s error=\"%s\"" % (
              n_imp, n_st, a.count, len(errs), now() - t_hold, closed["implicit"],
              closed["starttls"], "%.1f" % first_close if first_close is not None else "-",
              clean((errs[-1] if errs else "").encode(), 100)), flush=True)


# ---------------------------------------------------------------- big DATA in parallel
def make_body(mib):
    head = (b"From: <load@bench.test>\r\nTo: <%s>\r\nSubject: bench %d MiB\r\n"
            b"Message-ID: <%d.%d@bench.test>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n")
    return head, mib * 1024 * 1024


def data_one(i, a, out, t0):
    deadline = t0 + a.secs
    r = {"code": "-", "err": "", "sent": 0, "secs": 0.0}
    sk = None
    try:
        sk = socket.create_connection((HOST, a.port), timeout=10)
        expect(sk, deadline, "220")
        sk.sendall(b"EHLO data%d.bench.test\r\n" % i)
        expect(sk, deadline, "250")
        sk.sendall(b"MAIL FROM:<load@bench.test>\r\n")
        expect(sk, deadline, "250")
        sk.sendall(b"RCPT TO:<%s>\r\n" % a.rcpt.encode())
        expect(sk, deadline, "250")
        sk.sendall(b"DATA\r\n")
        expect(sk, deadline, "354")
        head, size = make_body(a.mib)
        head = head % (a.rcpt.encode(), a.mib, os.getpid(), i)
        line = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/0123456789ab\r\n")
        block = line * (1048576 // len(line))          # ~1 MiB of 78-byte lines
        sk.sendall(head)
        sent = len(head)
        while sent < size and not STOP.is_set():
            left = deadline - now()
            if left <= 0:
                raise TimeoutError("DATA not sent within --secs")
            sk.settimeout(left)
            rest = size - sent
            if rest >= len(block):
                piece = block
            else:   # whole lines, then one short line (never a line over 78 bytes)
                piece = line * (rest // len(line))
                if rest % len(line) >= 2:
                    piece += b"x" * (rest % len(line) - 2) + b"\r\n"
                if not piece:
                    break
            sk.sendall(piece)
            sent += len(piece)
            r["sent"] = sent
        sk.sendall(b".\r\n")
        code, text = read_reply(sk, deadline)
        r["code"] = code
        if code != "250":
            r["err"] = clean(text, 80)
        try:
            sk.settimeout(2)
            sk.sendall(b"QUIT\r\n")
        except OSError:
            pass
    except Exception as e:
        r["err"] = repr(e)[:100]
    finally:
        if sk is not None:
            sk.close()
    r["secs"] = now() - t0
    out[i] = r


def cmd_data(a):
    t0 = now()
    out = {}
    th = [threading.Thread(target=data_one, args=(i, a, out, t0), daemon=True) for i in range(a.conns)]
    for t in th:
        t.start()
    for t in th:
        t.join(timeout=max(0.1, t0 + a.secs + 15 - now()))
    el = now() - t0
    res = [out.get(i, {"code": "-", "err": "still running", "sent": 0, "secs": el}) for i in range(a.conns)]
    ok = sum(1 for r in res if r["code"] == "250")
    codes = ",".join(r["code"] for r in res)
    errs = [r["err"] for r in res if r["err"]]
    log("data: %d of %d messages of %d MiB accepted in %.1fs" % (ok, a.conns, a.mib, el))
    print("RESULT conns=%d accepted=%d mib_each=%d sent_mib=%.1f elapsed=%.1f codes=%s error=\"%s\"" % (
        a.conns, ok, a.mib, sum(r["sent"] for r in res) / 1048576.0, el, codes,
        clean((errs[-1] if errs else "").encode(), 100)), flush=True)


# ---------------------------------------------------------------- fresh-client probe
def probe_once(a, ctx):
    t = now()
    sk = None
    try:
        sk = socket.create_connection((HOST, a.port), timeout=a.wait,
                                      source_address=(a.source, 0) if a.source else None)
        if ctx is not None:
            sk.settimeout(max(0.01, t + a.wait - now()))
            sk = ctx.wrap_socket(sk, server_hostname=a.servername)
        expect(sk, t + a.wait, "220")
        lat = now() - t
        try:
            sk.settimeout(0.5)
            sk.sendall(b"QUIT\r\n")
        except OSError:
            pass
        return lat, ""
    except Exception as e:
        return None, repr(e)[:80]
    finally:
        if sk is not None:
            sk.close()


def cmd_probe(a):
    ctx = None
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    lats, fails, slow = [], [], 0
    t0 = now()
    nxt = t0
    while not STOP.is_set() and now() - t0 < a.secs:
        lat, err = probe_once(a, ctx)
        if lat is None:
            fails.append(err)
        else:
            lats.append(lat)
            if lat > a.limit:
                slow += 1
        nxt += a.every
        while not STOP.is_set() and now() < nxt:
            time.sleep(min(0.05, max(0.0, nxt - now())))
        if now() > nxt:
            nxt = now()
    n = len(lats) + len(fails)
    ok = sum(1 for x in lats if x <= a.limit)
    print("RESULT probes=%d served=%d slow=%d failed=%d max_ms=%s median_ms=%s error=\"%s\"" % (
        n, ok, slow, len(fails),
        "%.0f" % (1000 * max(lats)) if lats else "-",
        "%.0f" % (1000 * statistics.median(lats)) if lats else "-",
        clean((fails[-1] if fails else "").encode(), 80)), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("slowloris")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--parallel", type=int, default=100)
    p.add_argument("--connect-secs", type=float, default=120)
    p.add_argument("--hold-secs", type=float, default=15)
    p = sub.add_parser("noop")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=2)
    p.add_argument("--count", type=int, default=2_000_000)
    p.add_argument("--secs", type=float, default=20)
    p.add_argument("--hold-secs", type=float, default=3)
    p = sub.add_parser("nocrlf")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int, default=100 * 1024 * 1024)
    p.add_argument("--secs", type=float, default=20)
    p.add_argument("--hold-secs", type=float, default=2)
    p = sub.add_parser("tlsstall")
    p.add_argument("--ssl-port", type=int, required=True)
    p.add_argument("--plain-port", type=int, required=True)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--hold-secs", type=float, default=20)
    p = sub.add_parser("data")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=10)
    p.add_argument("--mib", type=int, default=24)
    p.add_argument("--secs", type=float, default=120)
    p.add_argument("--rcpt", default="user@test.local")
    p = sub.add_parser("probe")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--servername", default="mail.example.test")
    p.add_argument("--every", type=float, default=1.0)
    p.add_argument("--limit", type=float, default=1.0)
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--secs", type=float, default=900)
    p.add_argument("--source", default="127.0.0.2",
                   help="client address (another loopback address: not the loads' 127.0.0.1)")
    a = ap.parse_args()

    # hard bounds, whatever the caller asks
    caps = {"count": 50_000_000 if a.cmd == "noop" else 20000, "parallel": 1000, "conns": 100,
            "bytes": 1 << 32, "mib": 64, "secs": 900.0, "connect_secs": 600.0,
            "hold_secs": 600.0, "every": 60.0, "wait": 30.0}
    floors = {"count": 1, "parallel": 1, "conns": 1, "bytes": 1, "mib": 1, "every": 0.05, "wait": 0.1}
    for k, cap in caps.items():
        if hasattr(a, k):
            setattr(a, k, max(floors.get(k, 0), min(getattr(a, k), cap)))

    def on_signal(_s, _f):
        STOP.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    nofile = raise_nofile()
    if a.cmd == "slowloris" and nofile < a.count + 64:
        log("RLIMIT_NOFILE is %d: fewer than %d connections possible" % (nofile, a.count))
    assert ipaddress.ip_address(HOST).is_loopback
    if getattr(a, "source", "") and not ipaddress.ip_address(a.source).is_loopback:
        sys.exit("refusing non-loopback source %s" % a.source)
    {"slowloris": cmd_slowloris, "noop": cmd_noop, "nocrlf": cmd_nocrlf, "tlsstall": cmd_tlsstall,
     "data": cmd_data, "probe": cmd_probe}[a.cmd](a)


if __name__ == "__main__":
    main()
