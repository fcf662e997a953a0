"""Abuse on loopback (issue 5, section 1): the server stays bounded in memory, descriptors and
CPU, drops clients that will not behave, and keeps serving a fresh client within 1 s
during every load.

RSS is read from /proc/PID/status (VmRSS) and asserted against a bound; the only timing
asserted is the issue's own: "a fresh client is served within 1 s" (and /healthz answers
within 1 s), plus the time-outs the server is started with.
"""
from __future__ import annotations

import os
import selectors
import signal
import socket
import ssl
import threading
import time
import uuid

import pytest

from conftest import (ALICE, CLIENT_NAME, IP2, RawSMTP, assert_reply, create_port, maildir_new, tls_client_context,
                      wait_active_connections, wait_connect_state)
from rss import (KiB, MiB, RSSSampler, assert_fresh_client_served, assert_healthz_within, banner_within, close_all,
                 cpu_seconds, fd_count, first_lines, nofile_preexec, open_many, raise_nofile, read_until_closed,
                 still_open_after)

# Limits set on every abuse port, so the load is not cut short by a per-port/per-client cap.
HIGH = 100_000
# The goal for a session's buffers, whatever the client does.
PER_SESSION = 64 * KiB


def abuse_port(b, name="Abuse", protocol="smtp", encryption="none") -> int:
    p = create_port(b, name, protocol, encryption, assigned=[IP2], maxConnections=HIGH, maxConnectionsPerClient=HIGH)
    assert p.get("maxConnections") == HIGH and p.get("maxConnectionsPerClient") == HIGH, \
        f"precondition: the port's maxConnections/maxConnectionsPerClient were not taken: {p}"
    assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok"
    return p["port"]


def first_reply_line(data: bytes, skip_banner: bool = True) -> str:
    lines = [l.decode("utf-8", "replace") for l in data.split(b"\r\n") if l]
    if skip_banner and lines and lines[0].startswith("220"):
        lines = lines[1:]
    return lines[0] if lines else ""


# ------------------------------------------------------------------ slowloris


N_SLOWLORIS = 5000
SLOWLORIS_SOURCES = 50
SLOWLORIS_IDLE = 15


def test_slowloris_5000_silent_connections(make_mail_server):
    """5,000 connections that never send a byte: bounded RSS (≤ 64 KiB per session), a fresh
    client and /healthz still served within 1 s, and every one of them dropped with
    421 4.4.2 once the idle timeout passes."""
    soft = raise_nofile(N_SLOWLORIS + 1000)
    assert soft >= N_SLOWLORIS + 200, f"test process RLIMIT_NOFILE {soft} is too low for {N_SLOWLORIS} sockets"
    b = make_mail_server("--idle-timeout", str(SLOWLORIS_IDLE))
    P = abuse_port(b)
    fds_before = fd_count(b.pid)
    socks: list[socket.socket] = []
    try:
        with RSSSampler(b.pid) as rss:
            t_open = time.monotonic()
            # from 50 addresses (127.0.1.1-50), 100 each: the load does not lean on the port's
            # per-client limit being raised
            for k in range(SLOWLORIS_SOURCES):
                socks += open_many(IP2, P, N_SLOWLORIS // SLOWLORIS_SOURCES, source=f"127.0.1.{k + 1}")
            n = wait_active_connections(b, IP2, P, lambda n: n >= N_SLOWLORIS, timeout=20)
            t_opened = time.monotonic()
            assert n is not None and n >= N_SLOWLORIS, \
                (f"listener shows {n} active connections after opening {N_SLOWLORIS} "
                 f"(opening took {t_opened - t_open:.1f}s, idle timeout {SLOWLORIS_IDLE}s)\n{b.log_tail()}")
            assert_fresh_client_served(IP2, P, f"{N_SLOWLORIS} silent connections")
            assert_healthz_within(b.admin_url, f"{N_SLOWLORIS} silent connections")
            time.sleep(0.5)
        assert rss.growth <= N_SLOWLORIS * PER_SESSION, \
            f"{N_SLOWLORIS} silent sessions: {rss.describe()} (bound {N_SLOWLORIS * PER_SESSION / MiB:.0f} MiB)"
        # the idle timeout (from the banner) drops every one of them
        left = SLOWLORIS_IDLE - (time.monotonic() - t_open) + 8
        n = wait_active_connections(b, IP2, P, lambda n: n == 0, timeout=max(left, 1))
        assert n == 0, f"{n} silent sessions still open {SLOWLORIS_IDLE}+8 s after they connected"
        sample = socks[:: N_SLOWLORIS // 25]
        for i, s in enumerate(sample):
            data, closed = read_until_closed(s, 2)
            assert closed, f"sample {i}: server did not close a silent session"
            assert data.startswith(b"220 "), f"sample {i}: {data[:200]!r}"
            assert_reply([first_reply_line(data)], 421, "4.4.2", f"silent session {i} at idle timeout")
        assert fd_count(b.pid) <= fds_before + 20, f"descriptors: {fds_before} before, {fd_count(b.pid)} after"
    finally:
        close_all(socks)
    assert b.running()


# ------------------------------------------------------------------ 2 M NOOP never read


N_NOOP = 2_000_000
BURST_IDLE = 3


def small_buffer_client(port: int) -> socket.socket:
    """A plain connection with small kernel buffers (set before connect, so the TCP window
    stays small): unread replies and unsent commands pile up in the server, not in our kernel."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * KiB)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * KiB)
    s.settimeout(10)
    s.connect((IP2, port))
    banner = s.recv(4096)
    assert banner.startswith(b"220 "), banner
    s.setblocking(False)
    return s


def test_unread_noop_burst_is_bounded_and_dropped(make_mail_server):
    """2 connections pipeline 2 M NOOPs each and never read a reply: the server stops reading
    once its reply backlog is full (RSS stays bounded), a fresh client is served within 1 s,
    and both are closed after the idle timeout."""
    b = make_mail_server("--idle-timeout", str(BURST_IDLE))
    P = abuse_port(b)
    payload = memoryview(b"NOOP\r\n" * N_NOOP)
    socks = [small_buffer_client(P) for _ in range(2)]
    sent = [0, 0]
    done = [False, False]
    try:
        with RSSSampler(b.pid) as rss:
            t0 = time.monotonic()
            last_progress = t0
            checked = False
            # send until the server stops taking commands (nothing taken for 2 s), all 2 M are
            # sent, or 30 s pass
            for _ in range(10_000_000):
                now = time.monotonic()
                if all(done) or now - last_progress > 2.0 or now - t0 > 30:
                    break
                if not checked and now - t0 > 1.0:
                    assert_fresh_client_served(IP2, P, "an unread NOOP burst")
                    checked = True
                    last_progress = time.monotonic()
                for i, s in enumerate(socks):
                    if done[i]:
                        continue
                    try:
                        n = s.send(payload[sent[i]:sent[i] + 64 * KiB])
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:  # closed by the server: fine, it is not holding it
                        done[i] = True
                        continue
                    sent[i] += n
                    last_progress = time.monotonic()
                    done[i] = sent[i] >= len(payload)
                time.sleep(0.005)
            t_stall = time.monotonic()
            if not checked:
                assert_fresh_client_served(IP2, P, "an unread NOOP burst")
            # held, unread: still bounded, others still served
            time.sleep(0.5)
            assert_fresh_client_served(IP2, P, "two clients that never read")
        sent_noops = [x // 6 for x in sent]
        assert rss.growth <= 16 * MiB, \
            f"NOOPs sent {sent_noops} (of {N_NOOP} each) in {t_stall - t0:.1f}s, never read: {rss.describe()}"
        # never read: both closed once the idle timeout passes
        n = wait_active_connections(b, IP2, P, lambda n: n == 0,
                                    timeout=BURST_IDLE + 8 - (time.monotonic() - t_stall))
        waited = time.monotonic() - t_stall
        assert n == 0, (f"{n} non-reading clients still open {waited:.0f}s after they stopped sending "
                        f"(--idle-timeout {BURST_IDLE}, NOOPs sent {sent_noops} in {t_stall - t0:.1f}s)")
    finally:
        for s in socks:
            s.close()
    assert_fresh_client_served(IP2, P, "after the NOOP burst")


# ------------------------------------------------------------------ no CRLF


def test_stream_without_crlf_gets_500_and_close(make_mail_server):
    """An endless command line with no CRLF: 500 5.5.2 once it passes 512 octets, then close."""
    b = make_mail_server()
    P = abuse_port(b)
    c = RawSMTP(IP2, P)
    s = c.sock
    s.setblocking(False)
    chunk = b"A" * (16 * KiB)
    got, sent, closed = b"", 0, False
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    try:
        with RSSSampler(b.pid) as rss:
            t0 = time.monotonic()
            checked = False
            for _ in range(1_000_000):
                if closed or sent >= 256 * MiB or time.monotonic() - t0 > 8:
                    break
                if not checked and sent > 1 * MiB:
                    assert_fresh_client_served(IP2, P, "a stream without CRLF")
                    checked = True
                for key, ev in sel.select(timeout=0.2):
                    if ev & selectors.EVENT_READ:
                        try:
                            data = s.recv(65536)
                        except (BlockingIOError, InterruptedError):
                            data = None
                        except OSError:
                            closed = True
                            break
                        if data == b"":
                            closed = True
                            break
                        if data:
                            got += data
                    if ev & selectors.EVENT_WRITE:
                        try:
                            sent += s.send(chunk)
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            closed = True
                            break
            if closed:
                more, _ = read_until_closed(s, 1)
                got += more
        line = first_reply_line(c.buf + got, skip_banner=False)
        assert line, f"no reply after {sent} octets without CRLF (closed: {closed})"
        assert_reply([line], 500, "5.5.2", f"after {sent} octets without CRLF")
        assert closed, f"connection still open after {sent} octets without CRLF and {got[:200]!r}"
        assert rss.growth <= 16 * MiB, f"no-CRLF stream of {sent / MiB:.0f} MiB: {rss.describe()}"
    finally:
        sel.close()
        c.close()
    assert_fresh_client_served(IP2, P, "after a stream without CRLF")


def test_line_over_512_without_crlf_ends_session_at_once(make_mail_server):
    """600 octets and no CRLF, then nothing: the server answers 500 5.5.2 and closes without
    waiting for the end of the line or for the idle timeout."""
    b = make_mail_server()
    P = abuse_port(b)
    with RawSMTP(IP2, P) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        c.send(b"MAIL FROM:<" + b"a" * 600)
        data, closed = read_until_closed(c.sock, 5)
        line = first_reply_line(c.buf + data, skip_banner=False)
        assert line, "no reply within 5 s to a 611-octet line without CRLF"
        assert_reply([line], 500, "5.5.2", "611 octets without CRLF")
        assert closed, f"not closed within 5 s after 500 for an over-long line: {data!r}"


# ------------------------------------------------------------------ trickle


TRICKLE_IDLE = 3


def test_trickled_bytes_do_not_keep_a_session_alive(make_mail_server):
    """One byte a second never completes a command: 421 4.4.2 and close once the idle timeout
    (measured from the previous reply) passes. A client that completes a NOOP each second
    on another connection stays."""
    b = make_mail_server("--idle-timeout", str(TRICKLE_IDLE))
    P = abuse_port(b)
    trickle = RawSMTP(IP2, P)
    t_banner = time.monotonic()
    control = RawSMTP(IP2, P, timeout=5)
    text = b"NOOP NOOP NOOP NOOP NOOP NOOP"  # never a CRLF, never over 512 octets
    try:
        s = trickle.sock
        s.setblocking(False)
        got, closed, t_reply, i = b"", False, None, 0
        control_codes = []
        for _ in range(12):
            if closed:
                break
            try:
                s.send(text[i:i + 1])
                i += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed = True
            code, lines = control.cmd("NOOP")
            control_codes.append(code)
            end = time.monotonic() + 1.0
            for _ in range(1000):
                left = end - time.monotonic()
                if left <= 0 or closed:
                    break
                r = selectors.DefaultSelector()
                r.register(s, selectors.EVENT_READ)
                ready = r.select(timeout=left)
                r.close()
                if not ready:
                    continue
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    closed = True
                    break
                if not data:
                    closed = True
                    break
                if t_reply is None:
                    t_reply = time.monotonic()
                got += data
        if not closed:
            more, closed = read_until_closed(s, 0.5)
            got += more
        elapsed = None if t_reply is None else t_reply - t_banner
        assert got, f"no reply to a trickle of {i} bytes over {time.monotonic() - t_banner:.1f}s"
        assert_reply([first_reply_line(got, skip_banner=False)], 421, "4.4.2", "trickled command")
        assert elapsed is not None and TRICKLE_IDLE - 0.5 <= elapsed <= TRICKLE_IDLE + 3.5, \
            f"421 came {elapsed}s after the banner (idle timeout {TRICKLE_IDLE}s, a byte each second)"
        assert closed, "connection not closed after 421 4.4.2"
        assert control_codes and all(c == 250 for c in control_codes), \
            f"a client completing a NOOP each second was not served: {control_codes}"
        assert control.cmd("NOOP")[0] == 250, "the NOOP-each-second client must still be served"
    finally:
        trickle.close()
        control.close()


# ------------------------------------------------------------------ stalled TLS handshakes


HANDSHAKE_TIMEOUT = 2


def client_hello_bytes() -> bytes:
    """A real TLS ClientHello, as the first flight of a Python TLS client."""
    ctx = tls_client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="mx.test.local")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:5]
    return hello


def open_stalled_handshakes(ssl_port: int, stls_port: int, n: int) -> tuple[list[socket.socket], list[str]]:
    """n silent connects to the implicit-TLS port, n with half a ClientHello there, and n that
    got 220 to STARTTLS and then send nothing. Returns (sockets, labels)."""
    socks, labels = [], []
    hello = client_hello_bytes()
    for i in range(n):
        socks.append(socket.create_connection((IP2, ssl_port), timeout=5))
        labels.append(f"implicit TLS, silent #{i}")
    for i in range(n):
        s = socket.create_connection((IP2, ssl_port), timeout=5)
        s.sendall(hello[: len(hello) // 2])
        socks.append(s)
        labels.append(f"implicit TLS, half a ClientHello #{i}")
    for i in range(n):
        c = RawSMTP(IP2, stls_port)
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        code, lines = c.cmd("STARTTLS")
        assert code == 220, lines
        socks.append(c.sock)
        labels.append(f"after STARTTLS, silent #{i}")
    return socks, labels


def test_stalled_tls_handshakes_time_out(make_mail_server):
    """Handshakes that never finish (implicit TLS and after STARTTLS) are closed once
    --tls-handshake-timeout passes; fresh TLS and plain clients are served within 1 s meanwhile."""
    b = make_mail_server("--tls-handshake-timeout", str(HANDSHAKE_TIMEOUT), "--idle-timeout", "60")
    SSL = abuse_port(b, "SSL", "smtp", "ssl")
    STLS = abuse_port(b, "STARTTLS", "smtp", "tls")
    socks: list[socket.socket] = []
    try:
        t0 = time.monotonic()
        socks, labels = open_stalled_handshakes(SSL, STLS, 10)
        assert_fresh_client_served(IP2, SSL, "stalled handshakes (implicit TLS client)", tls=tls_client_context())
        assert_fresh_client_served(IP2, STLS, "stalled handshakes (plain client)")
        open_ = still_open_after(socks, HANDSHAKE_TIMEOUT + 4 - (time.monotonic() - t0))
        assert not open_, (f"{len(open_)} stalled handshakes still open {HANDSHAKE_TIMEOUT}+4 s after they started "
                           f"(--tls-handshake-timeout {HANDSHAKE_TIMEOUT}): {[labels[i] for i in open_][:6]}")
        # a completed STARTTLS handshake is not cut by the handshake timeout
        with RawSMTP(IP2, STLS) as c:
            c.cmd(f"EHLO {CLIENT_NAME}")
            assert c.cmd("STARTTLS")[0] == 220
            c.starttls()
            time.sleep(HANDSHAKE_TIMEOUT + 1)
            assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
    finally:
        close_all(socks)


SHUTDOWN_DRAIN = 10  # seconds a shutdown waits for sessions (README: SIGTERM drain)


def test_sigterm_exits_with_stalled_handshakes_open(make_mail_server):
    """SIGTERM with handshakes stalled (default 30 s handshake timeout, so still stalled):
    berth exits 0 within the shutdown drain."""
    b = make_mail_server()
    SSL = abuse_port(b, "SSL", "smtp", "ssl")
    STLS = abuse_port(b, "STARTTLS", "smtp", "tls")
    socks: list[socket.socket] = []
    try:
        socks, _ = open_stalled_handshakes(SSL, STLS, 5)
        time.sleep(0.5)
        t0 = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        try:
            rc = b.proc.wait(timeout=SHUTDOWN_DRAIN + 3)
        except Exception:  # subprocess.TimeoutExpired
            b.kill()
            pytest.fail(f"berth did not exit within {SHUTDOWN_DRAIN}+3 s of SIGTERM with stalled handshakes open\n"
                        f"{b.log_tail()}")
        assert rc == 0, f"exit code {rc} after {time.monotonic() - t0:.1f}s\n{b.log_tail()}"
    finally:
        close_all(socks)


# ------------------------------------------------------------------ DATA size and memory


def data_session(c: RawSMTP, size_hint: int | None = None) -> None:
    assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
    mail = "MAIL FROM:<bob@remote.test>" + (f" SIZE={size_hint}" if size_hint else "")
    code, lines = c.cmd(mail)
    assert code == 250, lines
    code, lines = c.cmd(f"RCPT TO:<{ALICE}>")
    assert code == 250, lines
    code, lines = c.cmd("DATA")
    assert code == 354, lines


def send_body(c: RawSMTP, header: bytes, size: int, token: bytes) -> None:
    """Send a body of about `size` octets (998-octet lines), `token` in its last line, and the dot."""
    line = b"x" * 998 + b"\r\n"
    chunk = line * 1024  # 1,000 KiB
    c.send(header + b"\r\n")
    n = len(header)
    for _ in range(100000):
        if n + len(chunk) > size:
            break
        c.send(chunk)
        n += len(chunk)
    c.send(token + b"\r\n.\r\n")


def files_containing(root, token: bytes) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = os.path.join(dirpath, name)
            try:
                if os.path.getsize(p) > 200 * MiB:
                    continue
                with open(p, "rb") as f:
                    if token in f.read():
                        out.append(p)
            except OSError:
                pass
    return out


def test_oversize_data_552_loses_nothing_else(make_mail_server):
    """A body over --max-message-size gets 552 5.3.4 and is not held in memory; the message
    before it in the same session and the one after it are delivered; nothing of it stays."""
    limit = 1 * MiB
    b = make_mail_server("--max-message-size", str(limit))
    P = abuse_port(b)
    token = uuid.uuid4().hex.encode()
    with RawSMTP(IP2, P, timeout=60) as c:
        data_session(c)
        c.send(b"Subject: before\r\n\r\nfirst message\r\n.\r\n")
        assert c.reply()[0] == 250
        data_session(c)
        with RSSSampler(b.pid) as rss:
            sender = threading.Thread(target=send_body, args=(c, b"Subject: too big\r\n", 24 * MiB, token))
            sender.start()
            time.sleep(0.3)
            assert_fresh_client_served(IP2, P, "an oversize DATA")
            sender.join(timeout=60)
            assert not sender.is_alive(), "sending 24 MiB did not finish within 60 s"
            code, lines = c.reply()
        assert_reply(lines, 552, "5.3.4", "24 MiB body, --max-message-size 1 MiB")
        assert rss.growth <= 16 * MiB, f"24 MiB oversize body: {rss.describe()}"
        # the session goes on
        data_session(c)
        c.send(b"Subject: after\r\n\r\nthird message\r\n.\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        assert c.cmd("QUIT")[0] == 221
    time.sleep(1.0)
    files = maildir_new(b)
    bodies = [f.read_bytes() for f in files]
    assert len(files) == 2, f"want the 2 small messages, got {len(files)}: {files}"
    assert any(b"first message" in x for x in bodies) and any(b"third message" in x for x in bodies)
    leftovers = files_containing(b.data, token)
    assert not leftovers, f"the refused body is still on disk: {leftovers}"


N_BIG = 10
BIG = 24 * MiB


def test_ten_concurrent_24mib_messages_are_streamed(make_mail_server):
    """10 sessions each sending a 24 MiB message at once: server RSS grows by at most ~50 MB
    (bodies go to disk as they arrive), all 10 are delivered whole, a fresh client is
    served within 1 s meanwhile."""
    b = make_mail_server()
    P = abuse_port(b)
    # warm-up: one 24 MiB message first, so one-time allocations are in the baseline
    with RawSMTP(IP2, P, timeout=120) as c:
        data_session(c, size_hint=BIG + 2000)
        send_body(c, b"Subject: warm-up\r\n", BIG, b"warm-up")
        code, lines = c.reply()
        assert code == 250, lines
    for f in maildir_new(b):
        f.unlink()
    clients = [RawSMTP(IP2, P, timeout=120) for _ in range(N_BIG)]
    tokens = [uuid.uuid4().hex.encode() for _ in range(N_BIG)]
    results: list = [None] * N_BIG
    try:
        for c in clients:
            data_session(c, size_hint=BIG + 2000)
        barrier = threading.Barrier(N_BIG)

        def one(i: int):
            try:
                barrier.wait(timeout=30)
                send_body(clients[i], f"Subject: big {i}\r\n".encode(), BIG, tokens[i])
                results[i] = clients[i].reply()
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(N_BIG)]
        with RSSSampler(b.pid) as rss:
            for t in threads:
                t.start()
            time.sleep(1.0)
            assert_fresh_client_served(IP2, P, f"{N_BIG} concurrent 24 MiB DATA")
            for t in threads:
                t.join(timeout=180)
            time.sleep(0.3)
        assert not any(t.is_alive() for t in threads), "senders did not finish within 180 s"
        for i, r in enumerate(results):
            assert isinstance(r, tuple) and r[0] == 250, f"message {i}: {r!r}"
        assert rss.growth <= 50 * MiB, f"{N_BIG} x 24 MiB in flight: {rss.describe()}"
    finally:
        for c in clients:
            c.close()
    files = maildir_new(b)
    try:
        assert len(files) == N_BIG, f"{len(files)} of {N_BIG} messages in the Maildir"
        for f in files:
            assert f.stat().st_size >= BIG - MiB, f"{f}: {f.stat().st_size} octets"
        found = set()
        for f in files:
            with open(f, "rb") as fh:
                fh.seek(-4096, os.SEEK_END)
                tail = fh.read()
            found |= {i for i, t in enumerate(tokens) if t in tail}
        assert found == set(range(N_BIG)), f"messages whose end arrived: {sorted(found)}"
    finally:
        for f in files:  # 240 MB: do not leave them in pytest's kept temp dirs
            try:
                f.unlink()
            except OSError:
                pass


# ------------------------------------------------------------------ descriptor exhaustion


FD_LIMIT = 1024
N_FD_CLIENTS = 1100


def test_fd_exhaustion_ulimit_1024(make_mail_server):
    """Berth under `ulimit -n 1024` with 1,100 clients: it logs its descriptor limit, refuses
    the excess with 421 4.7.0, /healthz answers within 1 s, the CPU does not spin, and once
    clients leave a fresh one gets its 220."""
    soft = raise_nofile(N_FD_CLIENTS + 500)
    assert soft >= N_FD_CLIENTS + 100, f"test process RLIMIT_NOFILE {soft} is too low"
    b = make_mail_server(preexec_fn=nofile_preexec(FD_LIMIT, FD_LIMIT))
    with open(f"/proc/{b.pid}/limits") as f:
        limits = f.read()
    assert any(l.startswith("Max open files") and f" {FD_LIMIT} " in l for l in limits.splitlines()), limits
    assert "file descriptor" in b.log.lower(), f"no start-up line about the descriptor limit:\n{b.log_tail()}"
    P = abuse_port(b)
    socks: list[socket.socket] = []
    try:
        # from 22 addresses (127.0.2.1-22), 50 each: only the descriptor budget can refuse them
        for k in range(N_FD_CLIENTS // 50):
            socks += open_many(IP2, P, 50, source=f"127.0.2.{k + 1}", batch_timeout=2.0)
        lines = first_lines(socks, timeout=5.0)
        served = [i for i, l in enumerate(lines) if l is not None and l.startswith(b"220 ")]
        refused = [i for i, l in enumerate(lines) if l is not None and l.startswith(b"421")]
        # b"": closed without a word (a silent drop is not the protocol's refusal)
        other = [l for l in lines if l is not None and not l.startswith((b"220 ", b"421"))]
        silent = sum(1 for l in lines if l is None)
        summary = f"{len(served)} got 220, {len(refused)} got 421, {silent} nothing yet, other: {other[:5]!r}"
        assert b.running(), f"berth died under descriptor exhaustion ({summary})\n{b.log_tail()}"
        assert fd_count(b.pid) <= FD_LIMIT
        assert FD_LIMIT // 2 <= len(served) < FD_LIMIT, summary
        assert refused, f"the excess clients got no 421 4.7.0: {summary}"
        for i in refused[:50]:
            assert_reply([lines[i].decode("utf-8", "replace")], 421, "4.7.0", f"client {i} over the fd budget")
        assert not other, f"clients neither served nor refused with 421: {summary}"

        assert_healthz_within(b.admin_url, f"descriptor exhaustion ({summary})")
        cpu0 = cpu_seconds(b.pid)
        time.sleep(3.0)
        cpu = cpu_seconds(b.pid) - cpu0
        assert cpu < 0.5, f"berth used {cpu:.2f} CPU-seconds in 3 s while saturated and idle (spinning?) ({summary})"
        assert_healthz_within(b.admin_url, "descriptor exhaustion, 3 s later")

        # release some: a fresh client is served again
        release = set(served[:300]) | set(i for i, l in enumerate(lines) if l is None or l == b"" or l.startswith(b"421"))
        keep = []
        for i, s in enumerate(socks):
            if i in release:
                s.close()
            else:
                keep.append(s)
        socks[:] = keep
        end = time.monotonic() + 5
        line = ""
        for _ in range(50):
            line, _ = banner_within(IP2, P)
            if line.startswith("220 ") or time.monotonic() > end:
                break
            time.sleep(0.2)
        assert line.startswith("220 "), f"after releasing 300 sessions a fresh client got {line!r}"
    finally:
        close_all(socks)
    assert b.running()
