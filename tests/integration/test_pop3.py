"""POP3 (RFC 1939 + CAPA, STLS, AUTH PLAIN, UIDL, TOP) with Python's poplib and a byte-exact
raw client, against a Berth with POP3 ports on 127.0.0.2 (none, ssl, tls, tls + tlsRequired).
Mail comes in over SMTP. MAIL_PEER=dovecot runs them against a private Dovecot instead
(conftest.MailTarget); Berth-only checks skip there.
"""
from __future__ import annotations

import base64
import poplib
import re
import socket
import ssl
import time
import uuid

import pytest

from conftest import (ALICE, MailTarget, RawClient, berth_only, has_bare_lf, mail_client, strip_trace_headers,
                      tls_client_context)


# --------------------------------------------------------------------------- clients


def pop(t: MailTarget, enc: str = "none", login: bool = True) -> poplib.POP3:
    def connect(host, port, ctx):
        if ctx is not None:
            return poplib.POP3_SSL(host, port, context=ctx, timeout=20)
        return poplib.POP3(host, port, timeout=20)

    def stls(p, ctx):
        assert p.stls(ctx).startswith(b"+OK")

    def log_in(p, user, password):
        assert p.user(user).startswith(b"+OK")
        assert p.pass_(password).startswith(b"+OK")

    return mail_client(t, "pop", enc, connect=connect, starttls=stls, login=log_in if login else None)


class RawPOP(RawClient):
    """POP3 over a raw socket: single-line and multi-line replies, bytes as sent."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None, timeout: float = 15.0,
                 source: str | None = None):
        super().__init__(host, port, timeout=timeout, tls=tls, source=source)
        self.greeting = self.line()

    def cmd(self, text: str | bytes) -> bytes:
        self.sock.sendall((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.line()

    def multiline_raw(self) -> bytes:
        """The raw bytes of a multi-line body up to and including the terminating CRLF.CRLF."""
        for _ in range(1000000):
            i = self.buf.find(b"\r\n.\r\n")
            if self.buf.startswith(b".\r\n"):
                out, self.buf = b".\r\n", self.buf[3:]
                return out
            if i >= 0:
                out, self.buf = self.buf[:i + 5], self.buf[i + 5:]
                return out
            self._fill()
        raise AssertionError("no end of multi-line reply")

    def multi(self, text: str) -> tuple[bytes, bytes]:
        """(status line, body with the dot-stuffing undone and the terminator removed)."""
        status = self.cmd(text)
        if not status.startswith(b"+OK"):
            return status, b""
        return status, unstuff(self.multiline_raw())


def unstuff(raw: bytes) -> bytes:
    assert raw.endswith(b".\r\n"), raw[-20:]
    body = raw[:-3]
    lines = body.split(b"\r\n")
    # body ends with CRLF, so the split leaves one empty last element
    assert lines[-1] == b"", raw[-20:]
    out = [l[1:] if l.startswith(b".") else l for l in lines[:-1]]
    return b"".join(l + b"\r\n" for l in out)


def rawpop(t: MailTarget, enc: str = "none", login: bool = True, **kw) -> RawPOP:
    def stls(c, ctx):
        assert c.cmd("STLS").startswith(b"+OK")
        c.starttls(ctx)

    def log_in(c, user, password):
        assert c.cmd(f"USER {user}").startswith(b"+OK")
        r = c.cmd(f"PASS {password}")
        assert r.startswith(b"+OK"), r

    return mail_client(t, "pop", enc, connect=lambda host, port, ctx: RawPOP(host, port, tls=ctx, **kw),
                       starttls=stls, login=log_in if login else None)


def message(subject: str, body: str = "hello") -> bytes:
    return (f"From: Bob <bob@remote.test>\r\nTo: Alice <{ALICE}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@remote.test>\r\n\r\n{body}\r\n").encode()


def dotty_message(token: str) -> bytes:
    return (f"From: Bob <bob@remote.test>\r\nTo: Alice <{ALICE}>\r\nSubject: dots {token}\r\n"
            "X-Folded: a\r\n\tb\r\n\r\n"
            ".\r\n"
            "..\r\n"
            ".leading dot\r\n"
            "line\r\n"
            "\r\n"
            "trailing blanks  \r\n"
            + "y" * 995 + "\r\n"
            f"end {token}\r\n").encode()


def deliver(t: MailTarget, msgs: list[bytes]) -> None:
    before = len(t.files())
    for m in msgs:
        t.deliver(m)
    assert len(t.wait_files(before + len(msgs))) >= before + len(msgs)


@pytest.fixture
def t(mail_target) -> MailTarget:
    return mail_target


# --------------------------------------------------------------------------- login, TLS


@pytest.mark.parametrize("enc", ["none", "ssl", "tls"])
def test_user_pass_on_each_port(t, enc):
    deliver(t, [message("one")])
    p = pop(t, enc)
    try:
        count, size = p.stat()
        assert count == 1 and size > 0, (count, size)
    finally:
        assert p.quit().startswith(b"+OK")


def test_capa(t):
    with RawPOP(t.host, t.pop["tls"]) as c:
        assert c.greeting.startswith(b"+OK"), c.greeting
        status, body = c.multi("CAPA")
        assert status.startswith(b"+OK"), status
        caps = {l.split()[0].upper(): l.upper() for l in body.decode().splitlines() if l.strip()}
        for want in ("TOP", "UIDL", "USER", "STLS", "SASL", "RESP-CODES"):
            assert want in caps, f"CAPA lacks {want}: {body!r}"
        assert "PLAIN" in caps["SASL"].split(), caps["SASL"]
        assert c.cmd("STLS").startswith(b"+OK")
        c.starttls()
        status, body = c.multi("CAPA")
        assert b"STLS" not in body.upper(), f"STLS offered again after TLS: {body!r}"
    if t.pop["none"] != t.pop["tls"]:
        with RawPOP(t.host, t.pop["none"]) as c:
            status, body = c.multi("CAPA")
            assert b"STLS" not in body.upper(), "encryption none must not offer STLS"
            assert c.cmd("STLS").startswith(b"-ERR")


def test_auth_plain(t):
    deliver(t, [message("auth plain")])
    cred = base64.b64encode(f"\0{t.user}\0{t.password}".encode()).decode()
    # initial response on the command line (RFC 5034)
    with rawpop(t, "ssl", login=False) as c:
        r = c.cmd(f"AUTH PLAIN {cred}")
        assert r.startswith(b"+OK"), r
        assert c.cmd("STAT").startswith(b"+OK 1 ")
        assert c.cmd("QUIT").startswith(b"+OK")
    # and in a second step after "+ "
    with rawpop(t, "none", login=False) as c:
        r = c.cmd("AUTH PLAIN")
        assert r.startswith(b"+"), r
        r = c.cmd(cred)
        assert r.startswith(b"+OK"), r
        assert c.cmd("QUIT").startswith(b"+OK")
    # a wrong password, from another loopback source (never the suite's own address)
    with RawPOP(t.host, t.pop["ssl"], tls=tls_client_context(), source="127.0.0.62", timeout=30) as c:
        bad = base64.b64encode(f"\0{t.user}\0wrong".encode()).decode()
        r = c.cmd(f"AUTH PLAIN {bad}")
        assert r.startswith(b"-ERR"), r
        assert c.cmd("STAT").startswith(b"-ERR"), "STAT before login"


def test_plaintext_refused_before_stls_on_tls_required_port(t):
    berth_only(t, "Dovecot has no per-listener tlsRequired")
    with RawPOP(t.host, t.pop["tls_required"]) as c:
        status, body = c.multi("CAPA")
        assert status.startswith(b"+OK") and b"STLS" in body, body
        r = c.cmd(f"USER {t.user}")
        assert r.startswith(b"-ERR"), f"USER before STLS on a tlsRequired port: {r!r}"
        r = c.cmd(f"PASS {t.password}")
        assert r.startswith(b"-ERR"), r
        cred = base64.b64encode(f"\0{t.user}\0{t.password}".encode()).decode()
        r = c.cmd(f"AUTH PLAIN {cred}")
        assert r.startswith(b"-ERR"), f"AUTH before STLS on a tlsRequired port: {r!r}"
        assert c.cmd("STAT").startswith(b"-ERR")
        assert c.cmd("STLS").startswith(b"+OK")
        c.starttls()
        assert c.cmd(f"USER {t.user}").startswith(b"+OK")
        assert c.cmd(f"PASS {t.password}").startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")


def test_stls_injection_is_discarded(t):
    c = RawPOP(t.host, t.pop["tls"])
    try:
        c.sock.sendall(b"STLS\r\nUSER " + t.user.encode() + b"\r\n")
        r = c.line()
        assert r.startswith(b"+OK"), r
        assert c.buf == b"", f"the injected command was answered in plaintext: {c.buf!r}"
        try:
            c.starttls()
            r = c.cmd(f"PASS {t.password}")
        except (ssl.SSLError, EOFError, OSError):
            return  # closing on injected bytes is fine too
        assert r.startswith(b"-ERR"), f"injected USER took effect: {r!r}"
    finally:
        c.close()


# --------------------------------------------------------------------------- transaction state


def test_stat_list_uidl_retr_top(t):
    msgs = [message(f"m{i}", "body line 1\r\nbody line 2\r\nbody line 3" + "z" * i * 100) for i in range(3)]
    deliver(t, msgs)
    with rawpop(t) as c:
        r = c.cmd("STAT")
        m = re.match(rb"\+OK (\d+) (\d+)$", r)
        assert m and int(m.group(1)) == 3, r
        total = int(m.group(2))
        status, body = c.multi("LIST")
        sizes = {int(a): int(b) for a, b in (l.split() for l in body.decode().splitlines())}
        assert sorted(sizes) == [1, 2, 3] and sum(sizes.values()) == total, (sizes, total)
        r = c.cmd("LIST 2")
        assert r == f"+OK 2 {sizes[2]}".encode(), r
        assert c.cmd("LIST 9").startswith(b"-ERR")
        status, body = c.multi("UIDL")
        uidl = dict(l.split() for l in body.decode().splitlines())
        assert sorted(uidl) == ["1", "2", "3"] and len(set(uidl.values())) == 3, uidl
        for v in uidl.values():
            assert 1 <= len(v) <= 70 and all(0x21 <= ord(ch) <= 0x7E for ch in v), v
        assert c.cmd("UIDL 3") == f"+OK 3 {uidl['3']}".encode()
        for i in (1, 2, 3):
            status, data = c.multi(f"RETR {i}")
            assert status.startswith(b"+OK"), status
            assert len(data) == sizes[i], f"LIST says {sizes[i]} octets, RETR {i} gave {len(data)}"
            assert data.endswith(msgs[i - 1]), (data[-200:], msgs[i - 1])
        status, top0 = c.multi("TOP 1 0")
        assert status.startswith(b"+OK"), status
        status, full = c.multi("RETR 1")
        data_head = full.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        assert top0 == data_head, (top0, data_head)
        status, top2 = c.multi("TOP 3 2")
        assert top2.endswith(b"Subject: m2\r\n" + top2.split(b"Subject: m2\r\n", 1)[1].split(b"\r\n\r\n")[0]
                             + b"\r\n\r\nbody line 1\r\nbody line 2\r\n"), top2[-120:]
        assert c.cmd("TOP 9 1").startswith(b"-ERR")
        assert c.cmd("RETR 0").startswith(b"-ERR")
        assert c.cmd("NOOP").startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")


def test_retr_is_byte_identical_to_what_smtp_sent(t):
    token = uuid.uuid4().hex
    sent = dotty_message(token)
    deliver(t, [sent])
    with rawpop(t) as c:
        r = c.cmd("RETR 1")
        assert r.startswith(b"+OK"), r
        raw = c.multiline_raw()
        assert b"\r\n..\r\n" in raw and b"\r\n...\r\n" in raw and b"\r\n..leading dot\r\n" in raw, \
            "lines starting with '.' are dot-stuffed on the wire"
        data = unstuff(raw)
        assert not has_bare_lf(raw), "RETR has a bare LF (POP3 needs CRLF)"
        trace, rest = strip_trace_headers(data)
        assert trace.startswith(b"Return-Path: <bob@remote.test>\r\nReceived: "), trace[:200]
        assert rest == sent, (rest[:300], sent[:300])
        assert c.cmd("QUIT").startswith(b"+OK")
    # poplib agrees
    p = pop(t)
    try:
        resp, lines, octets = p.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == data
    finally:
        p.quit()


def test_dele_then_quit_removes(t):
    deliver(t, [message("keep 1"), message("delete me"), message("keep 3")])
    files_before = t.files()
    with rawpop(t) as c:
        _, body = c.multi("UIDL")
        uidl = dict(l.split() for l in body.decode().splitlines())
        _, m2 = c.multi("TOP 2 0")
        assert b"Subject: delete me" in m2
        assert c.cmd("DELE 2").startswith(b"+OK")
        assert c.cmd("DELE 2").startswith(b"-ERR"), "DELE of a deleted message"
        assert c.cmd("RETR 2").startswith(b"-ERR"), "RETR of a deleted message"
        assert c.cmd("STAT").startswith(b"+OK 2 "), "STAT leaves out deleted messages"
        status, body = c.multi("LIST")
        assert [l.split()[0] for l in body.decode().splitlines()] == ["1", "3"], body
        r = c.cmd("QUIT")
        assert r.startswith(b"+OK"), r
        assert c.sock.recv(10) == b"", "the server closes after QUIT"
    files_after = t.files()
    assert len(files_after) == len(files_before) - 1, (files_before, files_after)
    with rawpop(t) as c:
        assert c.cmd("STAT").startswith(b"+OK 2 ")
        _, body = c.multi("UIDL")
        after = [l.split()[1] for l in body.decode().splitlines()]
        assert after == [uidl["1"], uidl["3"]], (after, uidl)
        for i in (1, 2):
            _, data = c.multi(f"TOP {i} 0")
            assert b"Subject: delete me" not in data
        c.cmd("QUIT")


def test_dele_then_connection_drop_removes_nothing(t):
    deliver(t, [message("a"), message("b")])
    before = t.files()
    c = rawpop(t)
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.cmd("DELE 2").startswith(b"+OK")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    # the server notices the drop; then the mailbox must be as before, and unlocked
    end = time.monotonic() + 5
    for _ in range(100):
        try:
            c = rawpop(t)
            break
        except AssertionError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)
    with c:
        r = c.cmd("STAT")
        assert r.startswith(b"+OK 2 "), f"a dropped session's DELE took effect: {r!r}"
        c.cmd("QUIT")
    assert t.files() == before or len(t.files()) == len(before)


def test_rset_undeletes(t):
    deliver(t, [message("r1")])
    with rawpop(t) as c:
        assert c.cmd("DELE 1").startswith(b"+OK")
        assert c.cmd("STAT").startswith(b"+OK 0 0")
        assert c.cmd("RSET").startswith(b"+OK")
        assert c.cmd("STAT").startswith(b"+OK 1 ")
        assert c.cmd("QUIT").startswith(b"+OK")
    assert len(t.files()) == 1


def test_uidl_is_stable_across_sessions(t):
    deliver(t, [message("u1"), message("u2")])
    with rawpop(t) as c:
        _, first = c.multi("UIDL")
        c.cmd("QUIT")
    with rawpop(t) as c:
        _, second = c.multi("UIDL")
        c.cmd("QUIT")
    assert first == second and first, (first, second)
    # a new message gets a new id; the old ones keep theirs
    deliver(t, [message("u3")])
    with rawpop(t) as c:
        _, third = c.multi("UIDL")
        c.cmd("QUIT")
    lines = third.decode().splitlines()
    assert lines[:2] == first.decode().splitlines(), (first, third)
    assert len(lines) == 3 and lines[2].split()[1] not in first.decode()


def test_second_concurrent_session_is_refused_in_use(t):
    deliver(t, [message("lock")])
    a = rawpop(t)
    try:
        with RawPOP(t.host, t.pop["none"]) as b:
            assert b.cmd(f"USER {t.user}").startswith(b"+OK")
            r = b.cmd(f"PASS {t.password}")
            assert r.startswith(b"-ERR [IN-USE]"), f"second session on a locked maildrop: {r!r}"
        assert a.cmd("STAT").startswith(b"+OK 1 "), "the first session goes on"
        assert a.cmd("QUIT").startswith(b"+OK")
    finally:
        a.close()
    # once the first session ended, a new one gets in
    with rawpop(t) as c:
        assert c.cmd("STAT").startswith(b"+OK 1 ")
        c.cmd("QUIT")


def test_bad_commands_get_err_and_the_session_goes_on(t):
    with rawpop(t, login=False) as c:
        for junk in (b"FOO", b"RETR 1", b"PASS early"):
            try:
                r = c.cmd(junk)
            except (EOFError, OSError) as e:
                raise AssertionError(f"connection closed after {junk!r}: {e!r}")
            assert r.startswith(b"-ERR"), (junk, r)
        assert c.cmd(f"USER {t.user}").startswith(b"+OK")
        assert c.cmd(f"PASS {t.password}").startswith(b"+OK")
        for junk in (b"FOO", b"RETR x", b"TOP 1", b"DELE", b"LIST 1 2 3", b"A" * 300):
            r = c.cmd(junk)
            assert r.startswith(b"-ERR"), (junk, r)
        assert c.cmd("NOOP").startswith(b"+OK")
        assert c.cmd("QUIT").startswith(b"+OK")
    # binary junk: -ERR, or the server hangs up (Dovecot does)
    with rawpop(t, login=False) as c:
        try:
            r = c.cmd(b"\x01\xff\x00junk")
        except (EOFError, OSError):
            r = b"-ERR (closed)"
        assert r.startswith(b"-ERR"), r


def test_empty_maildrop(t):
    with rawpop(t) as c:
        assert c.cmd("STAT") == b"+OK 0 0"
        status, body = c.multi("LIST")
        assert status.startswith(b"+OK") and body == b"", body
        status, body = c.multi("UIDL")
        assert body == b""
        assert c.cmd("QUIT").startswith(b"+OK")


def test_auth_plain_authzid_of_another_user_is_refused(t):
    with RawPOP(t.host, t.pop["none"], source="127.0.0.64", timeout=30) as c:
        other = base64.b64encode(f"bob@example.com\0{t.user}\0{t.password}".encode()).decode()
        r = c.cmd(f"AUTH PLAIN {other}")
        assert r.startswith(b"-ERR"), f"alice's password authorizing as bob: {r!r}"
        c.cmd("AUTH PLAIN")
        r = c.cmd("*")
        assert r.startswith(b"-ERR"), f"a cancelled AUTH: {r!r}"
