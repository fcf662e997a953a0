"""IMAP (RFC 3501 + IDLE, UIDPLUS, MOVE, NAMESPACE, ID, LITERAL+, SPECIAL-USE, ENABLE,
UNSELECT, CHILDREN, CONDSTORE/QRESYNC, ESEARCH, QUOTA, STARTTLS, AUTHENTICATE PLAIN) with
Python's imaplib, imapclient and a byte-exact raw client, against a Berth with IMAP ports
on 127.0.0.2 (none, ssl, tls, tls + tlsRequired). Mail comes in over SMTP, like real mail.

MAIL_PEER=dovecot runs the same tests against a private Dovecot (conftest.MailTarget), which
checks the tests' own client logic; Berth-only checks skip there.
"""
from __future__ import annotations

import base64
import datetime
import imaplib
import re
import socket
import ssl
import time
import uuid

import pytest

from conftest import (ALICE, ALICE_PW, BOB, BOB_PW, SPECIAL_FOLDERS, MailTarget, RawClient, berth_only, has_bare_lf,
                      mail_client, strip_trace_headers, tls_client_context)

imapclient = pytest.importorskip("imapclient", reason="pip install imapclient (tests/integration/requirements.txt)")
from imapclient import IMAPClient  # noqa: E402

DEFAULT_FOLDERS = ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"]
IDLE_DEADLINE = 1.0

# --------------------------------------------------------------------------- clients


def ic(t: MailTarget, enc: str = "none", login: bool = True, user: str | None = None,
       password: str | None = None) -> IMAPClient:
    """An imapclient session on the port of encryption `enc` (tls = STARTTLS), logged in."""
    return mail_client(
        t, "imap", enc,
        connect=lambda host, port, ctx: IMAPClient(host, port=port, ssl=ctx is not None, ssl_context=ctx, timeout=20),
        starttls=lambda c, ctx: c.starttls(ctx),
        login=(lambda c, name, secret: c.login(name, secret)) if login else None,
        user=user, password=password)


def il(t: MailTarget, enc: str = "none", login: bool = True) -> imaplib.IMAP4:
    """An imaplib session (byte-level answers), logged in."""
    def connect(host, port, ctx):
        if ctx is not None:
            return imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=20)
        return imaplib.IMAP4(host, port, timeout=20)

    def starttls(m, ctx):
        typ, data = m.starttls(ssl_context=ctx)
        assert typ == "OK", data

    def log_in(m, user, password):
        typ, data = m.login(user, password)
        assert typ == "OK", data

    return mail_client(t, "imap", enc, connect=connect, starttls=starttls, login=log_in if login else None)


class RawIMAP(RawClient):
    """A byte-exact IMAP client: send lines, read responses with their literals."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None, timeout: float = 15.0,
                 source: str | None = None):
        super().__init__(host, port, timeout=timeout, tls=tls, source=source)
        self.n = 0
        self.greeting = self.response_line()

    def readline(self, limit: int = 1 << 20) -> bytes:
        return self.line(limit)

    def read_exact(self, n: int) -> bytes:
        for _ in range(1000000):
            if len(self.buf) >= n:
                break
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response_line(self) -> bytes:
        """One response line with any literals it carries inlined (`{N}\\r\\n` kept)."""
        out = b""
        for _ in range(10000):
            line = self.readline()
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return out + line
            out += line + b"\r\n" + self.read_exact(int(m.group(1)))
        raise AssertionError("too many literals")

    def tag(self) -> str:
        self.n += 1
        return f"t{self.n}"

    def cmd(self, text: bytes | str, tag: str | None = None) -> tuple[bytes, list[bytes]]:
        """Send `TAG text`; return (tagged reply line, untagged lines before it)."""
        tag = tag or self.tag()
        raw = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + raw + b"\r\n")
        return self.until_tagged(tag)

    def until_tagged(self, tag: str) -> tuple[bytes, list[bytes]]:
        untagged = []
        for _ in range(100000):
            line = self.response_line()
            if line.startswith(tag.encode() + b" "):
                return line, untagged
            untagged.append(line)
            if line.startswith(b"* BYE"):
                # the server may close after BYE; the tagged reply may still follow
                try:
                    return self.until_tagged_after_bye(tag, untagged)
                except (EOFError, OSError):
                    return b"", untagged
        raise AssertionError("no tagged reply")

    def until_tagged_after_bye(self, tag, untagged):
        for _ in range(100):
            line = self.response_line()
            if line.startswith(tag.encode() + b" "):
                return line, untagged
            untagged.append(line)
        raise AssertionError("no tagged reply after BYE")

    def login(self, user: str, password: str) -> bytes:
        line, _ = self.cmd(f'LOGIN "{user}" "{password}"')
        return line


def raw(t: MailTarget, enc: str = "none", login: bool = True, **kw) -> RawIMAP:
    def starttls(c, ctx):
        line, _ = c.cmd("STARTTLS")
        assert b" OK" in line, line
        c.starttls(ctx)

    def log_in(c, user, password):
        line = c.login(user, password)
        assert b" OK" in line, line

    return mail_client(t, "imap", enc, connect=lambda host, port, ctx: RawIMAP(host, port, tls=ctx, **kw),
                       starttls=starttls, login=log_in if login else None)


def ok(line: bytes) -> bool:
    return line.split(b" ", 2)[1:2] == [b"OK"]


def status_word(line: bytes) -> bytes:
    parts = line.split(b" ", 2)
    return parts[1] if len(parts) > 1 else b""


def caps_of(lines: list[bytes], tagged: bytes = b"") -> set[str]:
    caps: set[str] = set()
    for l in lines + [tagged]:
        m = re.match(rb"\* CAPABILITY (.*)$", l)
        if m:
            caps |= {c.decode().upper() for c in m.group(1).split()}
        m = re.search(rb"\[CAPABILITY ([^\]]*)\]", l)
        if m:
            caps |= {c.decode().upper() for c in m.group(1).split()}
    return caps


# --------------------------------------------------------------------------- messages


def text_message(subject: str, body: str = "hello", frm: str = "bob@remote.test", to: str = ALICE,
                 extra_headers: str = "") -> bytes:
    return (f"From: Bob Remote <{frm}>\r\nTo: Alice <{to}>\r\nSubject: {subject}\r\n"
            f"Date: Thu, 26 Nov 2026 04:00:00 +0000\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@remote.test>\r\n{extra_headers}\r\n{body}\r\n").encode()


def tricky_message(token: str) -> bytes:
    """Folded headers, a dot line, trailing blanks, an empty line run, a 900-octet line,
    a 'From ' line, tabs: what a store can mangle."""
    long_line = "x" * 900
    return ("From: Bob Remote <bob@remote.test>\r\n"
            "To: Alice <alice@example.com>\r\n"
            f"Subject: byte identity {token}\r\n"
            "Date: Thu, 26 Nov 2026 04:00:00 +0000\r\n"
            f"Message-ID: <{token}@remote.test>\r\n"
            "X-Folded: first part\r\n"
            "\tsecond part after a tab\r\n"
            "  third part after spaces\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n"
            "\r\n"
            "line one\r\n"
            ".a line starting with a dot\r\n"
            "..two dots\r\n"
            "trailing blanks   \r\n"
            "\ttab first\r\n"
            "\r\n"
            "\r\n"
            "From the start of a line\r\n"
            f"{long_line}\r\n"
            f"token {token}\r\n").encode()


def multipart_message(token: str) -> tuple[bytes, bytes]:
    """multipart/mixed { multipart/alternative { text/plain, text/html }, application/pdf }."""
    pdf = bytes(range(256)) * 12  # 3072 octets
    pdf_b64 = base64.encodebytes(pdf).replace(b"\n", b"\r\n")
    msg = ("From: =?utf-8?q?J=C3=BCrgen_B=C3=B6hm?= <juergen@remote.test>\r\n"
           "To: Alice <alice@example.com>, carol@example.org\r\n"
           "Cc: Dave <dave@remote.test>\r\n"
           "Reply-To: replies@remote.test\r\n"
           f"Subject: =?utf-8?b?{base64.b64encode(f'Grüße {token}'.encode()).decode()}?=\r\n"
           "Date: Wed, 25 Nov 2026 10:11:12 +0100\r\n"
           f"Message-ID: <{token}@remote.test>\r\n"
           "In-Reply-To: <parent@remote.test>\r\n"
           "MIME-Version: 1.0\r\n"
           'Content-Type: multipart/mixed; boundary="outer-b"\r\n'
           "\r\n"
           "This is a multi-part message.\r\n"
           "--outer-b\r\n"
           'Content-Type: multipart/alternative; boundary="inner-b"\r\n'
           "\r\n"
           "--inner-b\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n"
           "\r\n"
           "Grüße aus Köln\r\n"
           "second line\r\n"
           "--inner-b\r\n"
           "Content-Type: text/html; charset=utf-8\r\n"
           "Content-Transfer-Encoding: quoted-printable\r\n"
           "\r\n"
           "<p>Gr=C3=BC=C3=9Fe aus K=C3=B6ln</p>\r\n"
           "--inner-b--\r\n"
           "\r\n"
           "--outer-b\r\n"
           'Content-Type: application/pdf; name="report.pdf"\r\n'
           'Content-Disposition: attachment; filename="report.pdf"\r\n'
           "Content-Transfer-Encoding: base64\r\n"
           "\r\n").encode() + pdf_b64 + b"--outer-b--\r\n"
    return msg, pdf_b64


def deliver_and_wait(t: MailTarget, msgs: list[bytes], folder_count_before: int | None = None) -> None:
    before = len(t.files()) if folder_count_before is None else folder_count_before
    for m in msgs:
        t.deliver(m)
    files = t.wait_files(before + len(msgs))
    assert len(files) >= before + len(msgs), f"{len(files)} files in INBOX, want {before + len(msgs)}"


def fetch_body(c: IMAPClient, uid: int, item: bytes = b"BODY.PEEK[]") -> bytes:
    data = c.fetch([uid], [item])
    assert uid in data, data
    key = item.replace(b".PEEK", b"")
    got = data[uid]
    for k, v in got.items():
        if k.upper() == key.upper() or k.upper().startswith(key.upper().split(b"<")[0]) and b"<" in key:
            return v
    raise AssertionError(f"no {key!r} in {got!r}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def t(mail_target) -> MailTarget:
    return mail_target


# --------------------------------------------------------------------------- login, TLS


@pytest.mark.parametrize("enc", ["none", "ssl", "tls"])
def test_login_select_on_each_port(t, enc):
    m = il(t, enc, login=False)
    try:
        typ, data = m.capability()
        caps = {c.upper() for c in data[0].decode().split()}
        assert "IMAP4REV1" in caps, caps
        if enc == "tls":
            assert "STARTTLS" not in caps, "STARTTLS offered again after TLS is up"
        typ, data = m.login(t.user, t.password)
        assert typ == "OK", data
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        typ, data = m.logout()
        assert typ == "BYE", (typ, data)
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def test_starttls_offered_on_tls_port_only(t):
    with RawIMAP(t.host, t.imap["tls"]) as c:
        line, un = c.cmd("CAPABILITY")
        assert ok(line) and "STARTTLS" in caps_of(un), (line, un)
    if t.imap["none"] != t.imap["tls"]:
        with RawIMAP(t.host, t.imap["none"]) as c:
            line, un = c.cmd("CAPABILITY")
            assert ok(line) and "STARTTLS" not in caps_of(un), "encryption none must not offer STARTTLS"
            line, _ = c.cmd("STARTTLS")
            assert status_word(line) in (b"BAD", b"NO"), line
            assert ok(c.cmd("NOOP")[0])


def test_authenticate_plain(t):
    for enc in ("ssl", "none"):
        m = il(t, enc, login=False)
        try:
            typ, data = m.authenticate("PLAIN", lambda _: f"\0{t.user}\0{t.password}".encode())
            assert typ == "OK", data
            assert m.select("INBOX")[0] == "OK"
        finally:
            m.logout()


def test_wrong_password_is_refused_and_session_goes_on(t):
    # from another loopback source, so the suite's own address is never throttled
    with RawIMAP(t.host, t.imap["ssl"], tls=tls_client_context(), source="127.0.0.61", timeout=30) as c:
        line = c.login(t.user, "not-the-password")
        assert status_word(line) == b"NO", line
        line, _ = c.cmd("SELECT INBOX")
        assert status_word(line) in (b"NO", b"BAD"), f"SELECT before a successful login: {line!r}"
        line = c.login(t.user, t.password)
        assert ok(line), line


def test_logindisabled_before_starttls_on_tls_required_port(t):
    berth_only(t, "Dovecot has no per-listener tlsRequired")
    with RawIMAP(t.host, t.imap["tls_required"]) as c:
        line, un = c.cmd("CAPABILITY")
        caps = caps_of(un)
        assert ok(line), line
        assert "LOGINDISABLED" in caps and "STARTTLS" in caps, caps
        assert not any(x.startswith("AUTH=") for x in caps), f"AUTH= offered before TLS: {caps}"
        line = c.login(t.user, t.password)
        assert status_word(line) in (b"NO", b"BAD"), f"LOGIN before STARTTLS on a tlsRequired port: {line!r}"
        line, _ = c.cmd("AUTHENTICATE PLAIN " + base64.b64encode(f"\0{t.user}\0{t.password}".encode()).decode())
        assert status_word(line) in (b"NO", b"BAD"), line
        line, _ = c.cmd("SELECT INBOX")
        assert status_word(line) in (b"NO", b"BAD"), line
        assert ok(c.cmd("NOOP")[0])
        line, _ = c.cmd("STARTTLS")
        assert ok(line), line
        c.starttls()
        line, un = c.cmd("CAPABILITY")
        caps = caps_of(un)
        assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps, caps
        assert "AUTH=PLAIN" in caps, caps
        assert ok(c.login(t.user, t.password))


def test_plain_port_without_allow_plaintext_auth_has_logindisabled(make_mail_target):
    t = make_mail_target(plaintext_auth=False, tls_required=False)
    berth_only(t, "Berth's --allow-plaintext-auth")
    with RawIMAP(t.host, t.imap["none"]) as c:
        line, un = c.cmd("CAPABILITY")
        assert "LOGINDISABLED" in caps_of(un), un
        assert status_word(c.login(t.user, t.password)) in (b"NO", b"BAD")
    with ic(t, "ssl") as c:
        assert c.select_folder("INBOX") is not None


def test_starttls_injection_is_discarded(t):
    """Commands pipelined after STARTTLS in the same packet are not executed (CVE-2011-0411 kind)."""
    c = RawIMAP(t.host, t.imap["tls"])
    try:
        c.send(b"s1 STARTTLS\r\ns2 LOGIN \"" + t.user.encode() + b"\" \"" + t.password.encode() + b"\"\r\n")
        line = c.readline()
        assert line.startswith(b"s1 OK"), line
        assert c.buf == b"", f"the injected command was answered in plaintext: {c.buf!r}"
        try:
            c.starttls()
            # the injected LOGIN must not have logged us in
            line, _ = c.cmd("SELECT INBOX")
        except (ssl.SSLError, EOFError, OSError):
            return  # closing the connection on injected bytes is a fine answer too
        assert status_word(line) in (b"NO", b"BAD"), f"injected LOGIN took effect: {line!r}"
    finally:
        c.close()


# --------------------------------------------------------------------------- CAPABILITY, LIST


def test_capability_lists_the_extensions(t):
    want = {"IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "ID", "LITERAL+", "SPECIAL-USE", "ENABLE",
            "UNSELECT", "CHILDREN", "CONDSTORE", "QRESYNC", "ESEARCH", "QUOTA"}
    with raw(t, "ssl", login=False) as c:
        line, un = c.cmd("CAPABILITY")
        pre = caps_of(un)
        assert "AUTH=PLAIN" in pre, pre
        line, un = c.cmd(f'LOGIN "{t.user}" "{t.password}"')
        assert ok(line), line
        line2, un2 = c.cmd("CAPABILITY")
        post = caps_of(un2)
        assert not want - post, f"missing after login: {sorted(want - post)} (have {sorted(post)})"
        assert "LOGINDISABLED" not in post and "STARTTLS" not in post


def test_namespace_id_enable_unselect(t):
    with raw(t) as c:
        line, un = c.cmd("NAMESPACE")
        assert ok(line), line
        ns = [u for u in un if u.startswith(b"* NAMESPACE")]
        assert ns and ns[0].startswith(b'* NAMESPACE (("" "/")) '), ns
        line, un = c.cmd('ID ("name" "berth-tests" "version" "1")')
        assert ok(line) and any(u.startswith(b"* ID ") for u in un), (line, un)
        line, un = c.cmd("ENABLE CONDSTORE")
        assert ok(line), line
        assert any(u.upper().startswith(b"* ENABLED") and b"CONDSTORE" in u.upper() for u in un), un
        assert ok(c.cmd("SELECT INBOX")[0])
        line, _ = c.cmd("UNSELECT")
        assert ok(line), line
        line, _ = c.cmd("FETCH 1 FLAGS")
        assert status_word(line) == b"BAD" or status_word(line) == b"NO", f"FETCH after UNSELECT: {line!r}"


def test_list_shows_the_six_folders_with_special_use(t):
    with ic(t) as c:
        folders = c.list_folders()
        names = [f[2] for f in folders]
        for want in DEFAULT_FOLDERS:
            assert want in names, f"{want} not listed: {folders}"
        for flags, delim, name in folders:
            assert delim == b"/", (flags, delim, name)
            if name in SPECIAL_FOLDERS:
                assert SPECIAL_FOLDERS[name].encode() in flags, f"{name}: {flags}"
            if name == "INBOX":
                assert not any(f in flags for f in (b"\\Sent", b"\\Trash", b"\\Junk", b"\\Drafts", b"\\Archive"))
            assert (b"\\HasNoChildren" in flags) or (b"\\HasChildren" in flags) or (b"\\Noinferiors" in flags), \
                f"CHILDREN: {name} has neither \\HasChildren nor \\HasNoChildren: {flags}"
    with raw(t) as c:
        line, un = c.cmd('LIST (SPECIAL-USE) "" "*"')
        assert ok(line), line
        listed = {u.rsplit(b" ", 1)[-1].strip(b'"').decode() for u in un if u.startswith(b"* LIST")}
        assert listed == set(SPECIAL_FOLDERS), un
        line, un = c.cmd('LIST "" ""')
        assert ok(line) and un and b'"/"' in un[0], ("hierarchy delimiter query", un)


# --------------------------------------------------------------------------- SELECT / EXAMINE


def test_select_and_examine(t):
    deliver_and_wait(t, [text_message("one"), text_message("two")])
    with raw(t) as c:
        line, un = c.cmd("SELECT INBOX")
        assert ok(line) and b"[READ-WRITE]" in line, line
        text = b"\n".join(un)
        assert b"* 2 EXISTS" in text, un
        assert re.search(rb"\* OK \[UIDVALIDITY \d+\]", text), un
        assert re.search(rb"\* OK \[UIDNEXT \d+\]", text), un
        assert re.search(rb"\* FLAGS \(.*\\Seen.*\)", text), un
        assert re.search(rb"\* OK \[PERMANENTFLAGS \(.*\\\*.*\)\]", text), un
        uidvalidity = re.search(rb"UIDVALIDITY (\d+)", text).group(1)
        line, un = c.cmd("EXAMINE INBOX")
        assert ok(line) and b"[READ-ONLY]" in line, line
        assert re.search(rb"UIDVALIDITY (\d+)", b"\n".join(un)).group(1) == uidvalidity
        line, un = c.cmd("FETCH 1 BODY[]")
        assert ok(line), line
        line, _ = c.cmd("STORE 1 +FLAGS (\\Flagged)")
        assert status_word(line) in (b"NO", b"BAD", b"OK"), line
        line, un = c.cmd("FETCH 1 FLAGS")
        assert b"\\Seen" not in b"".join(un), f"FETCH BODY[] in EXAMINE set \\Seen: {un}"
        assert b"\\Flagged" not in b"".join(un), f"STORE in a read-only (EXAMINEd) mailbox took effect: {un}"
    with ic(t) as c:
        info = c.select_folder("Sent")
        assert info[b"EXISTS"] == 0
        with pytest.raises(imapclient.exceptions.IMAPClientError):
            c.select_folder("No/Such/Folder")


def test_recent_goes_to_the_first_session_only(t):
    """RFC 3501 §2.3.2: a new message is \\Recent in the first session that sees it."""
    deliver_and_wait(t, [text_message("fresh one"), text_message("fresh two")])
    with raw(t) as a, raw(t) as b:
        line, un = a.cmd("STATUS INBOX (RECENT MESSAGES)")
        assert ok(line) and re.search(rb"RECENT 2", b"".join(un)), un
        line, un = a.cmd("EXAMINE INBOX")
        assert b"* 2 RECENT" in b"\n".join(un), "EXAMINE sees them recent without claiming"
        line, un = a.cmd("SELECT INBOX")
        assert ok(line) and b"* 2 RECENT" in b"\n".join(un), un
        line, un = a.cmd("FETCH 1:* FLAGS")
        assert all(b"\\Recent" in u for u in un if b"FETCH" in u), un
        line, un = a.cmd("SEARCH NEW")
        assert re.search(rb"\* SEARCH 1 2", b"".join(un)), un
        line, un = b.cmd("SELECT INBOX")
        assert ok(line) and b"* 0 RECENT" in b"\n".join(un), f"the second session claims nothing: {un}"
        # A delivery while both have INBOX selected: recent in one of them only.
        t.deliver(text_message("fresh three"))
        t.wait_files(3)
        _, ua = a.cmd("NOOP")
        _, ub = b.cmd("NOOP")
        counts = [int(m.group(1)) for u in ua + ub for m in [re.search(rb"\* (\d+) RECENT", u)] if m]
        assert sorted(counts)[-1] in (1, 3) and (3 in counts or 1 in counts), (ua, ub)
        line, un = b.cmd("SEARCH RECENT")
        line2, un2 = a.cmd("SEARCH RECENT")
        recent_b = b"".join(un).split()[2:]
        recent_a = b"".join(un2).split()[2:]
        assert b"3" in recent_a + recent_b and not (b"3" in recent_a and b"3" in recent_b), (un, un2)


# --------------------------------------------------------------------------- bytes through FETCH


def test_body_is_byte_identical_to_what_smtp_sent(t):
    token = uuid.uuid4().hex
    sent = tricky_message(token)
    deliver_and_wait(t, [sent])
    with raw(t) as c:
        assert ok(c.cmd("SELECT INBOX")[0])
        line, un = c.cmd("UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])")
        assert ok(line), line
        assert len(un) == 1, un
        m = re.search(rb"BODY\[\] \{(\d+)\}\r\n", un[0])
        assert m, un[0][:300]
        n = int(m.group(1))
        body = un[0][m.end():m.end() + n]
        assert len(body) == n
        size = int(re.search(rb"RFC822\.SIZE (\d+)", un[0]).group(1))
        assert size == n, f"RFC822.SIZE {size} != length of BODY[] {n}"
    assert not has_bare_lf(body), "BODY[] has a bare LF (IMAP needs CRLF)"
    trace, rest = strip_trace_headers(body)
    assert trace.startswith(b"Return-Path: <bob@remote.test>\r\nReceived: "), trace[:200]
    assert rest == sent, ("BODY[] after the trace headers differs from what SMTP sent",
                          _first_difference(rest, sent))
    # BODY.PEEK kept it unseen; BODY[] sets \Seen
    with ic(t) as c:
        c.select_folder("INBOX")
        uid = c.search(["ALL"])[0]
        assert b"\\Seen" not in c.get_flags([uid])[uid]
        data = c.fetch([uid], [b"BODY[]"])
        assert data[uid][b"BODY[]"] == body
        assert b"\\Seen" in c.get_flags([uid])[uid], "FETCH BODY[] did not set \\Seen"
        data = c.fetch([uid], [b"RFC822"])
        assert data[uid][b"RFC822"] == body


def _first_difference(a: bytes, b: bytes) -> str:
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return f"at {i}: got {a[max(0, i - 40):i + 40]!r} want {b[max(0, i - 40):i + 40]!r}"
    return f"lengths {len(a)} vs {len(b)}"


def test_envelope_and_bodystructure_of_a_multipart(t):
    token = uuid.uuid4().hex[:12]
    sent, pdf_b64 = multipart_message(token)
    deliver_and_wait(t, [sent])
    with ic(t) as c:
        c.select_folder("INBOX", readonly=True)
        uid = c.search(["ALL"])[0]
        d = c.fetch([uid], ["ENVELOPE", "BODYSTRUCTURE", "BODY"])[uid]
        env = d[b"ENVELOPE"]
        assert env.subject == f"=?utf-8?b?{base64.b64encode(f'Grüße {token}'.encode()).decode()}?=".encode(), env
        assert env.message_id == f"<{token}@remote.test>".encode()
        assert env.in_reply_to == b"<parent@remote.test>"
        assert env.date is not None and env.date.year == 2026 and env.date.day == 25, env.date
        assert len(env.from_) == 1 and env.from_[0].mailbox == b"juergen" and env.from_[0].host == b"remote.test"
        assert env.from_[0].name == b"=?utf-8?q?J=C3=BCrgen_B=C3=B6hm?=", env.from_[0]
        # Sender defaults to From (RFC 3501 7.4.2)
        assert env.sender and env.sender[0].mailbox == b"juergen"
        assert env.reply_to and env.reply_to[0].mailbox == b"replies"
        assert [(a.mailbox, a.host) for a in env.to] == [(b"alice", b"example.com"), (b"carol", b"example.org")]
        assert env.to[0].name == b"Alice"
        assert [(a.mailbox, a.host) for a in env.cc] == [(b"dave", b"remote.test")]
        assert not env.bcc

        bs = d[b"BODYSTRUCTURE"]
        assert bs.is_multipart, bs
        parts, subtype = bs[0], bs[1]
        assert subtype.lower() == b"mixed", bs
        assert len(parts) == 2, bs
        alt = parts[0]
        assert alt.is_multipart and alt[1].lower() == b"alternative", alt
        plain, html = alt[0]
        assert plain[0].lower() == b"text" and plain[1].lower() == b"plain", plain
        assert (b"charset", b"utf-8") in _pairs(plain[2]) or (b"CHARSET", b"utf-8") in _pairs(plain[2]), plain
        # the CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1)
        plain_body = "Grüße aus Köln\r\nsecond line".encode()
        assert plain[5].lower() == b"8bit" and plain[6] == len(plain_body), plain
        assert plain[7] in (1, 2), f"text/plain line count: {plain}"
        assert html[1].lower() == b"html" and html[5].lower() == b"quoted-printable", html
        att = parts[1]
        assert att[0].lower() == b"application" and att[1].lower() == b"pdf", att
        assert (b"name", b"report.pdf") in [(k.lower(), v) for k, v in _pairs(att[2])], att
        assert att[5].lower() == b"base64" and att[6] == len(pdf_b64) - 2, (att, len(pdf_b64))
        # the non-extensible BODY form too
        assert d[b"BODY"].is_multipart
        # sections
        got = c.fetch([uid], [b"BODY.PEEK[1.1]", b"BODY.PEEK[1.2.MIME]", b"BODY.PEEK[2]", b"BODY.PEEK[1]"])[uid]
        assert got[b"BODY[1.1]"] == plain_body, got[b"BODY[1.1]"]
        assert got[b"BODY[1.2.MIME]"].startswith(b"Content-Type: text/html; charset=utf-8\r\n"), got
        assert got[b"BODY[1.2.MIME]"].endswith(b"\r\n\r\n"), got[b"BODY[1.2.MIME]"]
        assert got[b"BODY[2]"] == pdf_b64[:-2], (len(got[b"BODY[2]"]), len(pdf_b64))
        assert got[b"BODY[1]"].startswith(b"--inner-b\r\n"), got[b"BODY[1]"][:40]


def _pairs(params) -> list[tuple[bytes, bytes]]:
    if not params:
        return []
    return [(params[i], params[i + 1]) for i in range(0, len(params) - 1, 2)]


def test_header_fields_and_partial_fetch(t):
    token = uuid.uuid4().hex
    sent = text_message(f"partial {token}", "0123456789abcdefghij" * 10)
    deliver_and_wait(t, [sent])
    with ic(t) as c:
        c.select_folder("INBOX")
        uid = c.search(["ALL"])[0]
        whole = c.fetch([uid], [b"BODY.PEEK[]"])[uid][b"BODY[]"]
        d = c.fetch([uid], [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]", b"BODY.PEEK[]<0.10>", b"BODY.PEEK[]<10.25>",
                            b"BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT RECEIVED RETURN-PATH)]", b"BODY.PEEK[TEXT]",
                            b"BODY.PEEK[HEADER]", b"RFC822.SIZE", b"INTERNALDATE"])[uid]
        hf = [v for k, v in d.items() if k.startswith(b"BODY[HEADER.FIELDS (")][0]
        assert hf == f"Subject: partial {token}\r\n\r\n".encode(), hf
        assert d[b"BODY[]<0>"] == whole[:10], d
        assert d[b"BODY[]<10>"] == whole[10:35], d
        hfn = [v for k, v in d.items() if k.startswith(b"BODY[HEADER.FIELDS.NOT")][0]
        assert b"Subject:" not in hfn and b"Received:" not in hfn and hfn.startswith(b"From: Bob Remote"), hfn
        assert d[b"BODY[TEXT]"] == ("0123456789abcdefghij" * 10 + "\r\n").encode()
        assert d[b"BODY[HEADER]"] + d[b"BODY[TEXT]"] == whole
        assert d[b"RFC822.SIZE"] == len(whole)
        age = abs((datetime.datetime.now(datetime.timezone.utc) - d[b"INTERNALDATE"].astimezone(
            datetime.timezone.utc)).total_seconds()) if d[b"INTERNALDATE"].tzinfo else 0
        assert age < 600, f"INTERNALDATE is the delivery time: {d[b'INTERNALDATE']}"
        # a partial past the end is empty, not an error
        d = c.fetch([uid], [b"BODY.PEEK[]<100000.10>"])[uid]
        assert d[b"BODY[]<100000>"] in (b"", None), d
        assert b"\\Seen" not in c.get_flags([uid])[uid]


# --------------------------------------------------------------------------- SEARCH


def test_search(t):
    msgs = [
        text_message("alpha report", "the quick brown fox", frm="ann@one.test"),
        text_message("beta notes", "lazy dog\r\n" + ("z" * 76 + "\r\n") * 65, frm="ben@two.test"),
        text_message("gamma", "nothing special", frm="ann@one.test"),
        text_message("Grüße aus Köln", "Umlaute: äöü", frm="carl@three.test",
                     extra_headers="Content-Type: text/plain; charset=utf-8\r\n").replace(
            b"Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln",
            b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?="),
        text_message("delta", "needle-" + uuid.uuid4().hex, frm="dora@four.test"),
    ]
    deliver_and_wait(t, msgs)
    with ic(t) as c:
        c.select_folder("INBOX")
        uids = sorted(c.search(["ALL"]))
        assert len(uids) == 5, uids
        by = dict(zip(["alpha", "beta", "gamma", "gruesse", "delta"], uids))  # delivery order
        assert sorted(c.search(["FROM", "ann@one.test"])) == [by["alpha"], by["gamma"]]
        assert c.search(["SUBJECT", "beta"]) == [by["beta"]]
        assert c.search(["SUBJECT", "BETA"]) == [by["beta"]], "SEARCH is case-insensitive"
        assert sorted(c.search(["UNSEEN"])) == uids
        c.add_flags([by["alpha"]], [b"\\Seen"])
        assert sorted(c.search(["UNSEEN"])) == [u for u in uids if u != by["alpha"]]
        assert c.search(["SEEN"]) == [by["alpha"]]
        assert c.search(["LARGER", "4000"]) == [by["beta"]]
        assert sorted(c.search(["SMALLER", "4000"])) == [u for u in uids if u != by["beta"]]
        yesterday = (datetime.date.today() - datetime.timedelta(days=1))
        tomorrow = (datetime.date.today() + datetime.timedelta(days=2))
        assert sorted(c.search(["SINCE", yesterday])) == uids
        assert c.search(["SINCE", tomorrow]) == []
        assert sorted(c.search(["BEFORE", tomorrow])) == uids
        assert c.search(["TEXT", "lazy dog"]) == [by["beta"]]
        assert c.search(["BODY", "brown fox"]) == [by["alpha"]]
        assert c.search(["TEXT", "ann@one.test", "SUBJECT", "gamma"]) == [by["gamma"]]
        assert sorted(c.search(["OR", "SUBJECT", "alpha", "SUBJECT", "delta"])) == [by["alpha"], by["delta"]]
        assert sorted(c.search(["NOT", "FROM", "ann@one.test"])) == [by["beta"], by["gruesse"], by["delta"]]
        assert sorted(c.search(["UID", f"{by['beta']}:{by['gruesse']}"])) == [by["beta"], by["gamma"], by["gruesse"]]
        assert sorted(c.search(["UID", f"{by['delta']}:*"])) == [by["delta"]]
        assert c.search(["SUBJECT", "Grüße"], charset="UTF-8") == [by["gruesse"]], "RFC 2047 subject, UTF-8 search"
        assert c.search(["BODY", "äöü"], charset="UTF-8") == [by["gruesse"]]
        assert c.search(["HEADER", "Message-ID", "remote.test"]) != []
    with raw(t) as c:
        assert ok(c.cmd("SELECT INBOX")[0])
        line, un = c.cmd("SEARCH 2:4 NOT DELETED")
        assert ok(line) and un == [b"* SEARCH 2 3 4"], un
        line, un = c.cmd("UID SEARCH RETURN (MIN MAX COUNT) ALL")
        assert ok(line), line
        es = [u for u in un if u.startswith(b"* ESEARCH")]
        assert es and b"UID" in es[0] and f"MIN {uids[0]}".encode() in es[0] and \
            f"MAX {uids[-1]}".encode() in es[0] and b"COUNT 5" in es[0], un
        line, un = c.cmd("SEARCH CHARSET X-NO-SUCH-CHARSET SUBJECT x")
        assert status_word(line) == b"NO" and b"BADCHARSET" in line, line
        line, un = c.cmd(b"SEARCH CHARSET UTF-8 SUBJECT {6+}\r\nGr\xc3\xbc\xc3\x9f")
        assert ok(line) and un == [b"* SEARCH 4"], (line, un)


# --------------------------------------------------------------------------- two sessions


def test_store_and_expunge_are_seen_by_a_second_session(t):
    deliver_and_wait(t, [text_message("s1"), text_message("s2"), text_message("s3")])
    with ic(t) as a, ic(t) as b:
        a.select_folder("INBOX")
        b.select_folder("INBOX")
        uids = sorted(a.search(["ALL"]))
        res = a.add_flags([uids[1]], [b"\\Flagged", b"$Label1", b"Work"])
        assert set(res[uids[1]]) >= {b"\\Flagged", b"$Label1", b"Work"}, res
        _, responses = b.noop()
        fetches = [r for r in responses if len(r) >= 3 and r[1] == b"FETCH"]
        assert fetches, f"second session's NOOP got no FETCH FLAGS: {responses}"
        seq, _, attrs = fetches[-1]
        assert seq == 2, fetches
        flags = dict(zip(attrs[::2], attrs[1::2])).get(b"FLAGS")
        assert flags is not None and {b"\\Flagged", b"$Label1", b"Work"} <= set(flags), fetches
        # keywords are listed in FLAGS for sessions selecting afterwards
        with ic(t) as c3:
            info = c3.select_folder("INBOX")
            assert b"$Label1" in info[b"FLAGS"] and b"Work" in info[b"FLAGS"], info[b"FLAGS"]
        # \Deleted + EXPUNGE in a; b sees EXPUNGE on NOOP
        a.add_flags([uids[0]], [b"\\Deleted"])
        b.noop()
        exp = a.expunge()
        assert (1, b"EXPUNGE") in exp[1] if isinstance(exp, tuple) else True, exp
        _, responses = b.noop()
        assert (1, b"EXPUNGE") in responses, f"second session's NOOP got no EXPUNGE: {responses}"
        assert sorted(b.search(["ALL"])) == uids[1:]
        assert b.fetch([uids[1]], ["FLAGS"])[uids[1]][b"FLAGS"]


def test_idle_gets_exists_within_1s_of_an_smtp_delivery(t):
    deliver_and_wait(t, [text_message("before idle")])
    with ic(t) as c:
        c.select_folder("INBOX")
        c.idle()
        try:
            assert c.idle_check(timeout=0.3) == [] or True
            for i in range(2):
                t.deliver(text_message(f"during idle {i}"))
                t0 = time.monotonic()
                got = []
                for _ in range(50):
                    left = IDLE_DEADLINE + 2 - (time.monotonic() - t0)
                    if left <= 0:
                        break
                    got += c.idle_check(timeout=left)
                    if any(r[1:2] == (b"EXISTS",) and r[0] == 2 + i for r in got):
                        break
                took = time.monotonic() - t0
                assert any(r[1:2] == (b"EXISTS",) and r[0] == 2 + i for r in got), \
                    f"no '* {2 + i} EXISTS' during IDLE within {IDLE_DEADLINE + 2}s: {got}"
                assert took <= IDLE_DEADLINE, f"EXISTS came {took:.3f}s after the 250 (goal <= {IDLE_DEADLINE}s)"
        finally:
            text, _ = c.idle_done()
        assert c.noop()[0]


# --------------------------------------------------------------------------- APPEND, COPY, MOVE, UID EXPUNGE


def _code(resp: bytes, name: bytes) -> list[bytes]:
    m = re.search(rb"\[" + name + rb" ([^\]]*)\]", resp)
    assert m, f"no [{name.decode()}] in {resp!r}"
    return m.group(1).split()


def test_append_copy_move_uid_expunge(t):
    with ic(t) as c:
        info = c.select_folder("INBOX")
        validity = info[b"UIDVALIDITY"]
        msg = text_message("appended", "appended body")
        resp = c.append("INBOX", msg, flags=[b"\\Seen", b"\\Flagged"],
                        msg_time=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc))
        v, uid = _code(resp, b"APPENDUID")
        assert int(v) == validity, (v, validity)
        uid = int(uid)
        c.noop()
        d = c.fetch([uid], [b"BODY.PEEK[]", b"FLAGS", b"INTERNALDATE"])[uid]
        assert d[b"BODY[]"] == msg
        assert {b"\\Seen", b"\\Flagged"} <= set(d[b"FLAGS"])
        assert d[b"INTERNALDATE"].astimezone(datetime.timezone.utc).replace(tzinfo=None) == \
            datetime.datetime(2026, 1, 2, 3, 4, 5), d[b"INTERNALDATE"]
        uid2 = int(_code(c.append("INBOX", text_message("second")), b"APPENDUID")[1])
        uid3 = int(_code(c.append("INBOX", text_message("third")), b"APPENDUID")[1])
        assert uid < uid2 < uid3
        # APPEND to a folder that does not exist: NO [TRYCREATE]
        with pytest.raises(imapclient.exceptions.IMAPClientError, match="TRYCREATE"):
            c.append("NoSuchFolder", text_message("x"))
    with raw(t) as c:
        assert ok(c.cmd("SELECT INBOX")[0])
        line, un = c.cmd('STATUS Archive (UIDVALIDITY UIDNEXT)')
        st = re.search(rb"UIDVALIDITY (\d+)", b"".join(un)), re.search(rb"UIDNEXT (\d+)", b"".join(un))
        arch_validity, arch_next = int(st[0].group(1)), int(st[1].group(1))
        # COPY -> [COPYUID validity src dst]
        line, un = c.cmd(f"UID COPY {uid} Archive")
        assert ok(line), line
        v, src, dst = _code(line, b"COPYUID")
        assert int(v) == arch_validity and int(src) == uid and int(dst) >= arch_next, (line, arch_next)
        # MOVE -> COPYUID in an untagged OK before the EXPUNGE (RFC 6851)
        line, un = c.cmd(f"UID MOVE {uid2} Trash")
        assert ok(line), line
        assert any(u.startswith(b"* OK [COPYUID ") for u in un), f"MOVE sent no untagged OK [COPYUID]: {un}"
        assert b"* 2 EXPUNGE" in un, f"MOVE sent no EXPUNGE for message 2: {un}"
        line, un = c.cmd("UID SEARCH ALL")
        assert un == [f"* SEARCH {uid} {uid3}".encode()], un
        # UID EXPUNGE removes only the given UID
        assert ok(c.cmd(f"UID STORE {uid},{uid3} +FLAGS.SILENT (\\Deleted)")[0])
        line, un = c.cmd(f"UID EXPUNGE {uid3}")
        assert ok(line) and un == [b"* 2 EXPUNGE"], (line, un)
        line, un = c.cmd("UID SEARCH ALL")
        assert un == [f"* SEARCH {uid}".encode()], un
        # CLOSE expunges the rest silently
        line, un = c.cmd("CLOSE")
        assert ok(line) and not any(b"EXPUNGE" in u for u in un), (line, un)
        line, un = c.cmd("SELECT INBOX")
        assert b"* 0 EXISTS" in un and f"[UIDVALIDITY {validity}]".encode() in b"".join(un), un
    with ic(t) as c:
        c.select_folder("Trash")
        trash = c.fetch(c.search(["ALL"]), [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        assert [v[b"BODY[HEADER.FIELDS (SUBJECT)]"] for v in trash.values()] == [b"Subject: second\r\n\r\n"], trash
        c.select_folder("Archive")
        arch_msgs = c.fetch(c.search(["ALL"]), [b"FLAGS", b"BODY.PEEK[]"])
        assert len(arch_msgs) == 1 and list(arch_msgs.values())[0][b"BODY[]"] == msg
        assert b"\\Flagged" in list(arch_msgs.values())[0][b"FLAGS"], "COPY keeps flags"


def test_appended_seen_message_is_in_cur_with_S(t):
    with ic(t) as c:
        c.append("Archive", text_message("seen on disk"), flags=[b"\\Seen"])
        c.append("INBOX", text_message("flagged on disk"), flags=[b"\\Seen", b"\\Flagged", b"\\Answered"])
        c.append("INBOX", text_message("unseen on disk"))
    arch = t.wait_files(1, "Archive")
    assert len(arch) == 1, arch
    assert arch[0].parent.name == "cur" and arch[0].name.endswith(":2,S"), arch[0]
    inbox = t.wait_files(2, "INBOX")
    names = sorted(p.name.split(":2,")[-1] if ":2," in p.name else "" for p in inbox)
    assert "FRS" in names, f"flags are 'FRS' in ASCII order: {[p.name for p in inbox]}"
    seen = [p for p in inbox if p.name.endswith(":2,FRS")][0]
    assert seen.parent.name == "cur"
    assert b"\r" not in seen.read_bytes() or t.kind != "berth", "Berth stores LF line ends"
    with ic(t) as c:
        c.select_folder("INBOX")
        uid = [u for u, d in c.fetch(c.search(["ALL"]), [b"FLAGS"]).items() if b"\\Answered" not in d[b"FLAGS"]][0]
        c.add_flags([uid], [b"\\Draft"])
    for _ in range(50):
        names = [p.name for p in t.files("INBOX")]
        if any(n.endswith(":2,D") for n in names):
            break
        time.sleep(0.1)
    assert any(n.endswith(":2,D") for n in names), f"STORE \\Draft is in the file name: {names}"


# --------------------------------------------------------------------------- folders


def test_create_rename_delete_subscribe_status(t):
    with ic(t) as c:
        c.create_folder("Projects")
        c.create_folder("Projects/2026")
        flags = {f[2]: f[0] for f in c.list_folders()}
        assert "Projects/2026" in flags and b"\\HasChildren" in flags["Projects"], flags
        assert t.folder_dir("Projects/2026").is_dir(), f"Maildir++ folder {t.folder_dir('Projects/2026')}"
        with pytest.raises(imapclient.exceptions.IMAPClientError):
            c.create_folder("Projects")  # exists
        c.append("Projects/2026", text_message("in project"))
        st = c.folder_status("Projects/2026", [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"RECENT"])
        assert st[b"MESSAGES"] == 1 and st[b"UNSEEN"] == 1 and st[b"UIDNEXT"] >= 2, st
        c.subscribe_folder("Projects/2026")
        subs = [f[2] for f in c.list_sub_folders()]
        assert "Projects/2026" in subs, subs
        typ, data = c._imap.lsub('""', "*")
        assert typ == "OK" and any(b"Projects/2026" in d for d in data), data
        c.unsubscribe_folder("Projects/2026")
        assert "Projects/2026" not in [f[2] for f in c.list_sub_folders()]
        c.rename_folder("Projects/2026", "Done")
        names = [f[2] for f in c.list_folders()]
        assert "Done" in names and "Projects/2026" not in names, names
        assert c.folder_status("Done", [b"MESSAGES"])[b"MESSAGES"] == 1, "RENAME keeps the messages"
        assert t.folder_dir("Done").is_dir() and not t.folder_dir("Projects/2026").exists()
        c.delete_folder("Done")
        c.delete_folder("Projects")
        names = [f[2] for f in c.list_folders()]
        assert "Done" not in names and "Projects" not in names, names
        with pytest.raises(imapclient.exceptions.IMAPClientError):
            c.delete_folder("INBOX")
        # RENAME INBOX moves its messages and leaves INBOX empty (RFC 3501 6.3.5); a server
        # may refuse it (Dovecot: NO [CANNOT]), but INBOX must stay whole then
        c.append("INBOX", text_message("to be moved by rename"))
        try:
            c.rename_folder("INBOX", "Old")
        except imapclient.exceptions.IMAPClientError:
            assert c.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 1
        else:
            assert c.folder_status("Old", [b"MESSAGES"])[b"MESSAGES"] == 1
            assert c.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 0


def test_lsub_and_recursivematch_give_a_subscribed_childs_parent(t):
    """RFC 3501 6.3.9: LSUB with % returns the unsubscribed parent of a subscribed child,
    flagged \\Noselect; RFC 5258 3: LIST (SUBSCRIBED RECURSIVEMATCH) gives it CHILDINFO."""
    m = il(t)
    try:
        for name in ("Lists", "Lists/Swift"):
            assert m.create(name)[0] == "OK"
        assert m.unsubscribe("Lists")[0] == "OK"
        assert m.subscribe("Lists/Swift")[0] == "OK"
        typ, data = m.lsub('""', "%")
        assert typ == "OK", data
        lists = [d for d in data if d and re.search(rb' "/" "?Lists"?$', d)]
        assert len(lists) == 1 and b"\\Noselect" in lists[0], data
        assert not any(b"Lists/Swift" in d for d in data if d), data
        typ, data = m.lsub('""', "*")
        assert any(re.search(rb' "/" "?Lists/Swift"?$', d) for d in data if d), data
        assert not any(re.search(rb' "/" "?Lists"?$', d) for d in data if d), "LSUB * lists only the subscribed"
        typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "%")
        typ, data = m._untagged_response(typ, data, "LIST")
        assert typ == "OK", data
        lists = [d for d in data if d and re.search(rb' "/" "?Lists"?( |$)', d)]
        assert len(lists) == 1 and b'("CHILDINFO" ("SUBSCRIBED"))' in lists[0], data
        assert b"\\Subscribed" not in lists[0], lists
    finally:
        m.logout()


# --------------------------------------------------------------------------- CONDSTORE, QUOTA


def test_condstore_highestmodseq_and_unchangedsince(t):
    deliver_and_wait(t, [text_message("c1"), text_message("c2")])
    with raw(t) as c:
        line, un = c.cmd("SELECT INBOX (CONDSTORE)")
        assert ok(line), line
        m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"\n".join(un))
        assert m, f"no HIGHESTMODSEQ in SELECT (CONDSTORE): {un}"
        hms = int(m.group(1))
        line, un = c.cmd("FETCH 1:2 (UID MODSEQ)")
        assert ok(line), line
        modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", u).group(1)) for u in un if b"FETCH" in u]
        assert len(modseqs) == 2 and max(modseqs) <= hms, (modseqs, hms)
        line, un = c.cmd(f"STORE 1 (UNCHANGEDSINCE {modseqs[0]}) +FLAGS (\\Flagged)")
        assert ok(line) and b"MODIFIED" not in line, line
        new = int(re.search(rb"MODSEQ \((\d+)\)", b"".join(un)).group(1))
        assert new > hms, (new, hms)
        # a second store with the old modseq is refused for that message: [MODIFIED 1]
        line, un = c.cmd(f"STORE 1 (UNCHANGEDSINCE {modseqs[0]}) +FLAGS (\\Answered)")
        assert ok(line) and b"[MODIFIED 1]" in line, line
        line, un = c.cmd("FETCH 1 FLAGS")
        assert b"\\Answered" not in b"".join(un), un
        line, un = c.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
        assert ok(line) and len([u for u in un if b"FETCH" in u]) == 1, un
        line, un = c.cmd(f"SEARCH MODSEQ {new}")
        assert ok(line) and un and un[0].startswith(b"* SEARCH 1"), un
        line, un = c.cmd("STATUS INBOX (HIGHESTMODSEQ)")
        assert ok(line) and any(b"HIGHESTMODSEQ" in u for u in un), un


def test_qresync_select(t):
    deliver_and_wait(t, [text_message("q1"), text_message("q2")])
    with raw(t) as c:
        assert ok(c.cmd("ENABLE QRESYNC")[0])
        line, un = c.cmd("SELECT INBOX")
        text = b"\n".join(un)
        validity = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
        hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
        assert ok(c.cmd("STORE 1 +FLAGS (\\Deleted)")[0])
        assert ok(c.cmd("EXPUNGE")[0])
        assert ok(c.cmd("UNSELECT")[0])
        line, un = c.cmd(f"SELECT INBOX (QRESYNC ({validity} {hms}))")
        assert ok(line), line
        assert any(u.startswith(b"* VANISHED (EARLIER)") for u in un), f"no VANISHED (EARLIER): {un}"


def test_getquotaroot_inbox(t):
    if t.kind == "berth":
        # no quota: "* QUOTAROOT INBOX" without a root is the RFC 2087 answer
        with raw(t) as c:
            line, un = c.cmd("GETQUOTAROOT INBOX")
            assert ok(line) and any(u.upper().startswith(b"* QUOTAROOT INBOX") for u in un), (line, un)
        t.server.ok("PUT", "/api/v1/domains/example.com/users/alice", {"quotaBytes": 10 * 1024 * 1024})
        deliver_and_wait(t, [text_message("quota", "q" * 60 + "\r\n")])
    with raw(t) as c:
        line, un = c.cmd("GETQUOTAROOT INBOX")
        assert ok(line), line
        roots = [u for u in un if u.upper().startswith(b"* QUOTAROOT")]
        m = re.match(rb'\* QUOTAROOT "?INBOX"? ("[^"]*"|\S+)', roots[0] if roots else b"", re.I)
        assert m, f"no quota root named for INBOX: {un}"
        root = m.group(1)
        quotas = [u for u in un if u.upper().startswith(b"* QUOTA ")]
        q = re.search(rb"\(STORAGE (\d+) (\d+)", quotas[0] if quotas else b"", re.I)
        assert q, f"no QUOTA (STORAGE used limit): {un}"
        if t.kind == "berth":
            assert int(q.group(2)) == 10 * 1024, f"STORAGE limit in KiB: {quotas}"
            assert int(q.group(1)) >= 1, f"STORAGE usage counts the delivered message: {quotas}"
        line, un = c.cmd(b"GETQUOTA " + root)
        assert ok(line) and any(b"STORAGE" in u.upper() for u in un), (line, un)


# --------------------------------------------------------------------------- bad input


def test_garbage_gets_bad_and_the_session_goes_on(t):
    with raw(t) as c:
        for junk in [b"t1 FOOBAR", b"t2 FETCH", b"t3 SELECT", b"t4 FETCH 1:* (NOSUCHITEM)", b"t5 SEARCH ((",
                     b"t6 STORE x +FLAGS (\\Seen)", b"\x01\x02\xff garbage", b"t7 LOGIN a b c d",
                     b"t8 UID NOSUCH 1"]:
            c.send(junk + b"\r\n")
            line = c.response_line()
            assert line.split(b" ", 2)[1:2] == [b"BAD"], f"{junk!r} -> {line!r}"
            if junk.startswith(b"t"):
                assert line.startswith(junk.split(b" ")[0] + b" "), (junk, line)
        assert ok(c.cmd("NOOP")[0])
        assert ok(c.cmd("SELECT INBOX")[0])
        line, _ = c.cmd("FETCH 99 FLAGS")
        assert status_word(line) in (b"BAD", b"NO", b"OK"), line
        assert ok(c.cmd("NOOP")[0])


def test_over_long_literal_is_refused_without_growth(t):
    with raw(t, "none", login=False) as c:
        c.send(b"t1 LOGIN {1000000000}\r\n")
        line = c.response_line()
        assert not line.startswith(b"+"), f"server invited a 1 GB LOGIN literal: {line!r}"
        assert line.startswith(b"t1 BAD") or line.startswith(b"t1 NO") or line.startswith(b"* BYE"), line
    with raw(t) as c:
        c.send(b"t1 APPEND INBOX {2000000000}\r\n")
        line = c.response_line()
        assert not line.startswith(b"+"), f"server invited a 2 GB APPEND literal: {line!r}"
        assert line.startswith(b"t1 NO") or line.startswith(b"t1 BAD") or line.startswith(b"* BYE"), line
        if not line.startswith(b"* BYE"):
            assert ok(c.cmd("NOOP")[0]), "session goes on after a refused literal"
    if t.kind != "berth":
        return
    # LITERAL+: the client sends without waiting; the server must not buffer it
    from rss import MiB, rss_bytes
    pid = t.server.pid
    before = rss_bytes(pid)
    with raw(t) as c:
        c.send(b"t1 SEARCH TEXT {200000000+}\r\n")
        chunk = b"y" * (1 << 20)
        sent = 0
        closed = False
        c.sock.settimeout(5)
        for _ in range(40):
            try:
                c.send(chunk)
                sent += len(chunk)
            except OSError:
                closed = True
                break
        peak = rss_bytes(pid)
        assert peak - before < 24 * MiB, f"server grew {(peak - before) / MiB:.1f} MiB on a {sent} B literal"
        if not closed:
            try:
                data = c.sock.recv(4096)
            except (OSError, socket.timeout):
                data = b""
            assert data == b"" or b"BAD" in data or b"BYE" in data or b"NO" in data, data


def test_append_with_nul_is_refused_and_the_session_goes_on(t):
    """RFC 3501 4.3 / 9: a literal's CHAR8 excludes NUL. A message holding one (here past
    the spool's 32 KiB in memory, so its start is already on disk) is refused with NO,
    nothing is stored or left in the spool, and the session goes on."""
    berth_only(t, "what a server does with NUL in APPEND varies; Berth refuses it")
    m = il(t)
    try:
        before = int(m.select("INBOX")[1][0])
        line = b"x" * 78 + b"\r\n"
        message = b"Subject: nul\r\n\r\n" + line * 600 + b"bin\x00ary\r\n" + line * 10
        typ, data = m.append("INBOX", None, None, message)
        assert typ == "NO" and b"NUL" in data[0], (typ, data)
        assert m.noop()[0] == "OK"
        assert int(m.select("INBOX")[1][0]) == before, "nothing stored"
        typ, data = m.append("INBOX", None, None, b"Subject: fine\r\n\r\nno nul here\r\n")
        assert typ == "OK", data
    finally:
        m.logout()
    spool = t.server.data / "spool"
    assert not spool.is_dir() or not [p for p in spool.iterdir() if ".imap." in p.name], list(spool.iterdir())


def test_too_many_bad_commands_end_the_session(t):
    berth_only(t, "Berth's error limit")
    with raw(t) as c:
        got_bye = False
        for i in range(60):
            try:
                c.send(b"x%d FOOBAR\r\n" % i)
                line = c.response_line()
            except (EOFError, OSError):
                got_bye = True
                break
            if line.startswith(b"* BYE"):
                got_bye = True
                break
        assert got_bye, "60 bad commands in a row and the session goes on"


def test_second_user_sees_only_own_mail(t):
    deliver_and_wait(t, [text_message("for alice")])
    t.deliver(text_message("for bob", to=BOB), to=BOB)
    assert t.wait_files(1, user=BOB)
    with ic(t, user=BOB, password=BOB_PW) as c:
        c.select_folder("INBOX")
        subjects = [v[b"BODY[HEADER.FIELDS (SUBJECT)]"] for v in
                    c.fetch(c.search(["ALL"]), [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]).values()]
        assert subjects == [b"Subject: for bob\r\n\r\n"], subjects
        with pytest.raises(imapclient.exceptions.IMAPClientError):
            c.select_folder("../alice")


# --------------------------------------------------------------------------- persistence


def _snapshot(t: MailTarget) -> dict:
    """folder -> (UIDVALIDITY, {uid: (flags, BODY[])}) over every selectable folder."""
    out = {}
    with ic(t) as c:
        for flags, _, name in c.list_folders():
            if b"\\Noselect" in flags:
                continue
            info = c.select_folder(name, readonly=True)
            uids = c.search(["ALL"])
            data = c.fetch(uids, [b"FLAGS", b"BODY.PEEK[]"]) if uids else {}
            out[name] = (info[b"UIDVALIDITY"],
                         {u: (frozenset(f for f in d[b"FLAGS"] if f != b"\\Recent"), d[b"BODY[]"])
                          for u, d in data.items()})
    return out


def _populate(t: MailTarget) -> None:
    deliver_and_wait(t, [text_message("persist 1"), text_message("persist 2")])
    with ic(t) as c:
        c.create_folder("Projects/2026")
        c.append("Projects/2026", text_message("in a subfolder"), flags=[b"\\Flagged"])
        c.append("Archive", text_message("archived"), flags=[b"\\Seen", b"\\Answered"])
        c.select_folder("INBOX")
        uids = sorted(c.search(["ALL"]))
        c.add_flags([uids[0]], [b"\\Seen", b"$Important"])
        c.add_flags([uids[1]], [b"\\Deleted"])
        c.expunge()
        c.append("INBOX", text_message("appended"), flags=[b"\\Draft"])


def test_uids_flags_and_folders_survive_a_restart(t):
    _populate(t)
    before = _snapshot(t)
    with raw(t) as c:
        line, un = c.cmd("STATUS INBOX (UIDNEXT HIGHESTMODSEQ)")
        status_before = b"".join(un)
    t.restart()
    after = _snapshot(t)
    assert after == before, "IMAP state changed across a restart"
    with raw(t) as c:
        line, un = c.cmd("STATUS INBOX (UIDNEXT HIGHESTMODSEQ)")
        assert b"".join(un) == status_before, (status_before, un)
    # POP3 UIDL too
    import poplib
    p = poplib.POP3(t.host, t.pop["none"], timeout=20)
    p.user(t.user)
    p.pass_(t.password)
    uidl1 = p.uidl()[1]
    p.quit()
    t.restart()
    p = poplib.POP3(t.host, t.pop["none"], timeout=20)
    p.user(t.user)
    p.pass_(t.password)
    assert p.uidl()[1] == uidl1
    p.quit()


def test_reindex_rebuilds_from_the_files_with_new_uidvalidity(t):
    """Messages and system flags come from the files; keywords, the special use of a renamed
    folder and subscriptions, which only the index holds, are carried over from it."""
    berth_only(t, "berth reindex")
    import subprocess
    from conftest import BERTH_BIN
    _populate(t)
    with ic(t) as c:
        c.rename_folder("Sent", "Sent Items")
        c.unsubscribe_folder("Junk")
        c.select_folder("Archive")
        c.add_flags(c.search(["ALL"]), [b"Receipt"])
        folders_before = sorted((name, frozenset(flags)) for flags, _, name in c.list_folders())
        subscribed_before = sorted(name for _, _, name in c.list_sub_folders())
    assert ("Sent Items", frozenset({b"\\HasNoChildren", b"\\Sent"})) in folders_before, folders_before
    assert "Junk" not in subscribed_before and "Archive" in subscribed_before, subscribed_before
    before = _snapshot(t)
    t.stop()
    p = subprocess.run([str(BERTH_BIN), "reindex", "--data", str(t.server.data)], capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, (p.returncode, p.stdout.decode()[-2000:], p.stderr.decode()[-2000:])
    t.start_again()
    after = _snapshot(t)
    assert sorted(after) == sorted(before), (sorted(after), sorted(before))
    for folder, (validity, msgs) in before.items():
        v2, msgs2 = after[folder]
        if msgs:
            assert v2 != validity, f"{folder}: UIDVALIDITY kept ({validity}) though UIDs were rebuilt"
        # by body first: frozensets order by inclusion, which does not sort a list
        got = sorted((body, sorted(f)) for f, body in msgs2.values())
        want = sorted((body, sorted(f)) for f, body in msgs.values())
        assert got == want, f"{folder}: messages, flags or keywords differ after reindex"
    assert any(b"$Important" in f for f, _ in after["INBOX"][1].values()), after["INBOX"]
    with ic(t) as c:
        assert sorted((name, frozenset(flags)) for flags, _, name in c.list_folders()) == folders_before
        assert sorted(name for _, _, name in c.list_sub_folders()) == subscribed_before


# --------------------------------------------------------------------------- sessions, protocols, sizes


def test_changes_reach_an_idling_session(t):
    deliver_and_wait(t, [text_message("i1"), text_message("i2"), text_message("i3")])
    with ic(t) as watcher, ic(t) as actor:
        watcher.select_folder("INBOX")
        actor.select_folder("INBOX")
        uids = sorted(actor.search(["ALL"]))
        watcher.idle()
        try:
            actor.add_flags([uids[0]], [b"\\Flagged"])
            got = []
            end = time.monotonic() + 3
            for _ in range(30):
                got += watcher.idle_check(timeout=max(0.1, end - time.monotonic()))
                if any(r[1:2] == (b"FETCH",) for r in got) or time.monotonic() > end:
                    break
            assert any(r[0] == 1 and r[1] == b"FETCH" for r in got), f"no FETCH FLAGS during IDLE: {got}"
            actor.move([uids[1]], "Archive")
            got = []
            end = time.monotonic() + 3
            for _ in range(30):
                got += watcher.idle_check(timeout=max(0.1, end - time.monotonic()))
                if any(r[1:2] == (b"EXPUNGE",) for r in got) or time.monotonic() > end:
                    break
            assert (2, b"EXPUNGE") in got, f"no EXPUNGE during IDLE for a MOVE by another session: {got}"
        finally:
            watcher.idle_done()
        assert sorted(watcher.search(["ALL"])) == [uids[0], uids[2]]


def test_delivery_shows_at_the_next_command(t):
    deliver_and_wait(t, [text_message("n1")])
    with ic(t) as c:
        c.select_folder("INBOX")
        t.deliver(text_message("n2"))
        t.wait_files(2)
        seen = []
        for _ in range(20):
            _, responses = c.noop()
            seen += responses
            if (2, b"EXISTS") in seen:
                break
            time.sleep(0.1)
        assert (2, b"EXISTS") in seen, seen
        assert len(c.search(["ALL"])) == 2


def test_pop3_and_imap_see_the_same_maildrop(t):
    import poplib
    deliver_and_wait(t, [text_message("both 1"), text_message("both 2")])
    with ic(t) as c:
        c.select_folder("INBOX")
        c.append("INBOX", text_message("appended over imap"))
        p = poplib.POP3(t.host, t.pop["none"], timeout=20)
        try:
            p.user(t.user)
            p.pass_(t.password)
            count, _ = p.stat()
            assert count == 3, "POP3 sees what IMAP appended"
            resp, lines, _ = p.top(1, 0)
            assert any(l.startswith(b"Subject: both 1") for l in lines), lines
            p.dele(1)
            p.quit()
        finally:
            p.close()
        seen = []
        for _ in range(20):
            _, responses = c.noop()
            seen += responses
            if (1, b"EXPUNGE") in seen:
                break
            time.sleep(0.1)
        assert (1, b"EXPUNGE") in seen, f"POP3 DELE+QUIT did not reach the IMAP session: {seen}"
        subjects = sorted(v[b"BODY[HEADER.FIELDS (SUBJECT)]"] for v in
                          c.fetch(c.search(["ALL"]), [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]).values())
        assert subjects == [b"Subject: appended over imap\r\n\r\n", b"Subject: both 2\r\n\r\n"], subjects


def test_big_message_through_smtp_imap_and_pop3(t):
    import poplib
    line = b"0123456789" * 7 + b"\r\n"
    sent = text_message("big", "start\r\n").rstrip(b"\r\n") + b"\r\n" + line * 70000 + b"end\r\n"  # ~5 MiB
    deliver_and_wait(t, [sent])
    with ic(t) as c:
        c.select_folder("INBOX", readonly=True)
        uid = c.search(["ALL"])[0]
        d = c.fetch([uid], [b"BODY.PEEK[]", b"RFC822.SIZE", b"BODY.PEEK[]<4000000.100>"])[uid]
        assert strip_trace_headers(d[b"BODY[]"])[1] == sent
        assert d[b"RFC822.SIZE"] == len(d[b"BODY[]"])
        assert d[b"BODY[]<4000000>"] == d[b"BODY[]"][4000000:4000100]
        # APPEND of a 10 MiB literal
        big = text_message("big append", "x").rstrip(b"\r\n") + b"\r\n" + line * 140000
        resp = c.append("Archive", big)
        assert b"APPENDUID" in resp
        c.select_folder("Archive", readonly=True)
        auid = c.search(["ALL"])[0]
        assert c.fetch([auid], [b"BODY.PEEK[]"])[auid][b"BODY[]"] == big
    p = poplib.POP3(t.host, t.pop["none"], timeout=60)
    try:
        p.user(t.user)
        p.pass_(t.password)
        _, lines, octets = p.retr(1)
        assert strip_trace_headers(b"\r\n".join(lines) + b"\r\n")[1] == sent
        p.quit()
    finally:
        p.close()


def test_international_folder_names(t):
    name = "Ärger/Überblick €"
    with ic(t) as c:
        c.create_folder(name)  # imapclient encodes modified UTF-7
        names = [f[2] for f in c.list_folders()]
        assert name in names and "Ärger" in names, names
        c.append(name, text_message("umlaut folder"))
        assert c.folder_status(name, [b"MESSAGES"])[b"MESSAGES"] == 1
    with raw(t) as c:
        line, un = c.cmd('LIST "" "*"')
        assert any(b'"&AMQ-rger/&ANw-berblick &IKw-"' in u or b"&AMQ-rger/&ANw-berblick &IKw-" in u for u in un), un
        line, _ = c.cmd('CREATE "bad&name"')
        assert status_word(line) in (b"NO", b"BAD"), f"invalid modified UTF-7 accepted: {line!r}"


# --------------------------------------------------------------------------- RFC corners


def test_no_expunge_during_fetch_store_search(t):
    """RFC 3501 7.4.1: no untagged EXPUNGE while answering FETCH, STORE or SEARCH (the
    client's sequence numbers would shift under it); it comes with NOOP."""
    deliver_and_wait(t, [text_message("x1"), text_message("x2"), text_message("x3")])
    with raw(t) as a, raw(t) as b:
        assert ok(a.cmd("SELECT INBOX")[0]) and ok(b.cmd("SELECT INBOX")[0])
        assert ok(a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")[0])
        line, un = a.cmd("EXPUNGE")
        assert ok(line) and b"* 1 EXPUNGE" in un, un
        for cmd in ("FETCH 1:3 (FLAGS)", "STORE 3 +FLAGS (\\Seen)", "SEARCH ALL"):
            line, un = b.cmd(cmd)
            assert not any(u.endswith(b" EXPUNGE") for u in un), f"EXPUNGE sent during {cmd}: {un}"
        line, un = b.cmd("NOOP")
        assert b"* 1 EXPUNGE" in un, f"NOOP after another session's EXPUNGE: {un}"
        line, un = b.cmd("SEARCH ALL")
        assert un == [b"* SEARCH 1 2"], un


def test_list_wildcards_and_hierarchy(t):
    with ic(t) as c:
        c.create_folder("Top/Mid/Leaf")
    with raw(t) as c:
        line, un = c.cmd('LIST "" "%"')
        names = {u.rsplit(b" ", 1)[-1].strip(b'"') for u in un if u.startswith(b"* LIST")}
        assert b"Top" in names and b"INBOX" in names and not any(b"/" in n for n in names), names
        line, un = c.cmd('LIST "Top/" "%"')
        names = {u.rsplit(b" ", 1)[-1].strip(b'"') for u in un if u.startswith(b"* LIST")}
        assert names == {b"Top/Mid"}, names
        line, un = c.cmd('LIST "" "Top/*"')
        names = {u.rsplit(b" ", 1)[-1].strip(b'"') for u in un if u.startswith(b"* LIST")}
        assert names == {b"Top/Mid", b"Top/Mid/Leaf"}, names
        line, un = c.cmd('LIST "" "inbox"')
        assert any(u.endswith(b"INBOX") or u.endswith(b'"INBOX"') for u in un), f"INBOX is case-insensitive: {un}"


def test_search_by_sent_date(t):
    msgs = [text_message("d1").replace(b"Date: Thu, 26 Nov 2026 04:00:00 +0000", b"Date: Mon, 02 Mar 2026 10:00:00 +0000"),
            text_message("d2").replace(b"Date: Thu, 26 Nov 2026 04:00:00 +0000", b"Date: Sat, 15 Aug 2026 10:00:00 +0000")]
    deliver_and_wait(t, msgs)
    with ic(t) as c:
        c.select_folder("INBOX")
        uids = sorted(c.search(["ALL"]))
        assert c.search(["SENTBEFORE", datetime.date(2026, 6, 1)]) == [uids[0]]
        assert c.search(["SENTSINCE", datetime.date(2026, 6, 1)]) == [uids[1]]
        assert c.search(["SENTON", datetime.date(2026, 8, 15)]) == [uids[1]]
        assert c.search(["ON", datetime.date(2026, 8, 15)]) == [], "ON is the internal (delivery) date"


def test_login_with_a_literal_and_quoted_specials(make_mail_target):
    t = make_mail_target()
    pw = 'pa ss"wo\\rd{7}'
    if t.kind == "berth":
        t.server.ok("POST", "/api/v1/domains/example.com/users", {"name": "carol", "password": pw}, statuses=(200, 201))
    else:
        with open(t.dir / "passwd", "a") as f:
            f.write(f"carol@example.com:{{PLAIN}}{pw}\n")
    with RawIMAP(t.host, t.imap["none"]) as c:
        enc = pw.encode()
        c.send(b"t1 LOGIN carol@example.com {%d}\r\n" % len(enc))
        line = c.readline()
        assert line.startswith(b"+"), line
        c.send(enc + b"\r\n")
        line, _ = c.until_tagged("t1")
        assert ok(line), line
    with RawIMAP(t.host, t.imap["none"]) as c:
        quoted = pw.replace("\\", "\\\\").replace('"', '\\"')
        line, _ = c.cmd(f'LOGIN "carol@example.com" "{quoted}"')
        assert ok(line), line
    with RawIMAP(t.host, t.imap["none"]) as c:
        c.send(b"t1 LOGIN carol@example.com {%d+}\r\n" % len(pw.encode()) + pw.encode() + b"\r\n")
        line, _ = c.until_tagged("t1")
        assert ok(line), f"LITERAL+ password: {line!r}"


def test_authenticate_plain_initial_response_and_cancel(t):
    cred = base64.b64encode(f"\0{t.user}\0{t.password}".encode()).decode()
    with RawIMAP(t.host, t.imap["none"]) as c:
        c.send(b"t1 AUTHENTICATE PLAIN\r\n")
        line = c.readline()
        assert line.startswith(b"+"), line
        c.send(b"*\r\n")
        line, _ = c.until_tagged("t1")
        assert status_word(line) == b"BAD", f"a cancelled AUTHENTICATE: {line!r}"
        # SASL-IR: the response on the command line
        line, _ = c.cmd(f"AUTHENTICATE PLAIN {cred}")
        assert ok(line), line
    with RawIMAP(t.host, t.imap["none"], source="127.0.0.63", timeout=30) as c:
        other = base64.b64encode(f"{BOB}\0{t.user}\0{t.password}".encode()).decode()
        line, _ = c.cmd(f"AUTHENTICATE PLAIN {other}")
        assert status_word(line) == b"NO", f"alice's password authorizing as bob: {line!r}"


def test_unread_fetch_responses_do_not_grow_the_server(t):
    """A client that pipelines FETCH BODY[] of 100 MiB and never reads: the server stops
    reading from it (backpressure) instead of buffering the answers."""
    berth_only(t, "reads one process's RSS")
    from rss import MiB, rss_bytes
    line = b"z" * 76 + b"\r\n"
    with ic(t) as c:
        for i in range(10):
            c.append("INBOX", text_message(f"big {i}", "b").rstrip(b"\r\n") + b"\r\n" + line * 26000)  # 2 MiB
    pid = t.server.pid
    time.sleep(0.5)
    before = rss_bytes(pid)
    c = raw(t)
    try:
        assert ok(c.cmd("SELECT INBOX")[0])
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sock.settimeout(0.2)
        sent = 0
        for i in range(2000):
            try:
                c.sock.send(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i)
                sent += 1
            except (socket.timeout, BlockingIOError):
                break
        peak = before
        for _ in range(30):
            time.sleep(0.1)
            peak = max(peak, rss_bytes(pid))
        assert peak - before < 32 * MiB, \
            f"server grew {(peak - before) / MiB:.1f} MiB for an unread client ({sent} FETCHes of 20 MiB queued)"
    finally:
        c.close()
    # and it serves others meanwhile / afterwards
    with raw(t) as c2:
        assert ok(c2.cmd("NOOP")[0])
