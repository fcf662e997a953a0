"""Bad input: malformed / oversized admin API requests and abusive SMTP clients."""
from __future__ import annotations

import base64
import http.client
import json
import random

import pytest

from conftest import (ADMIN_PASSWORD, CLIENT_NAME, IP2, RawSMTP, SMTPReplyError, banner_of, create_port, error_of,
                      free_port, maildir_new, wait_connect_state)


def bindings_snapshot(b):
    js = b.bindings()
    return (sorted(json.dumps(p, sort_keys=True) for p in js["ports"]),
            sorted(json.dumps(i, sort_keys=True) for i in js["ipAddresses"] if i["source"] != "interface"))


# ------------------------------------------------------------------ admin API


def test_invalid_json_400(server):
    create_port(server, "Existing")
    before = bindings_snapshot(server)
    for raw in (b"{not json", b"", b"{\"name\": \"x\",", b"\xff\xfe\x00garbage", b"null"):
        st, js = server.api("POST", "/api/v1/ports", raw=raw)
        assert st in (400, 422), (raw, st, js)
        if raw in (b"{not json", b"{\"name\": \"x\",", b"\xff\xfe\x00garbage"):
            assert st == 400, (raw, js)
            assert error_of(js)["code"] == "invalid_json", js
    st, js = server.api("POST", "/api/v1/ports", raw=b"{not json")
    assert st == 400 and error_of(js)["code"] == "invalid_json"
    pid = server.ports()[0]["id"]
    st, js = server.api("PUT", f"/api/v1/ports/{pid}", raw=b"{\"description\": ")
    assert st == 400 and error_of(js)["code"] == "invalid_json", js
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", raw=b"[[[")
    assert st in (400, 404), js
    st, js = server.api("POST", "/api/v1/ports/delete", raw=b"{ids: [1]}")
    assert st == 400 and error_of(js)["code"] == "invalid_json", js
    assert bindings_snapshot(server) == before


@pytest.mark.parametrize("body", [
    [1, 2, 3],
    {"name": 5, "protocol": "smtp", "encryption": "none", "port": 2525},
    {"name": "x", "protocol": "smtp", "encryption": "none", "port": "2525"},
    {"name": "x", "protocol": "smtp", "encryption": "none", "port": 25.5},
    {"name": "x", "protocol": "smtp", "encryption": "none", "port": 2525, "tlsRequired": "yes"},
    {"name": "x", "protocol": "smtp", "encryption": "none", "port": 2525, "assignedTo": "127.0.0.2"},
    {"protocol": "smtp", "encryption": "none", "port": 2525},
    {"name": "x", "encryption": "none", "port": 2525},
    {"name": "x", "protocol": "smtp", "encryption": "none"},
])
def test_wrong_types_and_missing_fields(server, body):
    before = bindings_snapshot(server)
    st, js = server.api("POST", "/api/v1/ports", body)
    assert st in (400, 422), (st, js)
    assert error_of(js)["code"] in ("invalid_json", "validation_failed"), js
    assert bindings_snapshot(server) == before


def test_oversized_body(server):
    create_port(server, "Existing")
    before = bindings_snapshot(server)
    big = json.dumps({"name": "big", "protocol": "smtp", "encryption": "none", "port": free_port(),
                      "description": "x" * (2 * 1024 * 1024)}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=30)
    auth = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    status = None
    try:
        conn.putrequest("POST", "/api/v1/ports")
        conn.putheader("Authorization", "Basic " + auth)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(big)))
        conn.endheaders()
        try:
            conn.send(big)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer early and close; read the answer below
        try:
            r = conn.getresponse()
            status = r.status
            r.read()
        except (ConnectionResetError, http.client.RemoteDisconnected) as e:
            pytest.fail(f"server dropped the connection without an HTTP answer: {e!r}")
    finally:
        conn.close()
    assert status in (413, 400), status
    assert bindings_snapshot(server) == before
    st, _ = server.api("GET", "/healthz", auth=False)
    assert st == 200


def test_unknown_route_404(server):
    st, js = server.api("GET", "/api/v1/nothing-here")
    assert st == 404


# ------------------------------------------------------------------ SMTP abuse


@pytest.fixture
def smtp_port(berth_env):
    p = create_port(berth_env, "Abuse", "smtp", "none", assigned=[IP2])
    assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok"
    berth_env.P = p["port"]
    return berth_env


def test_bare_lf_in_data_refused(smtp_port):
    b = smtp_port
    with RawSMTP(IP2, b.P) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        assert c.cmd("MAIL FROM:<bob@remote.test>")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.com>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: bare lf\r\n\r\nline\nmore\r\n.\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, lines
    assert maildir_new(b) == []
    # smuggling attempt: bare LF before the dot must not end DATA early
    with RawSMTP(IP2, b.P) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        c.cmd("MAIL FROM:<bob@remote.test>")
        c.cmd("RCPT TO:<alice@example.com>")
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<evil@remote.test>\r\n.\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, lines
        assert c.nothing_pending(0.5) == b"", "a smuggled command was answered"
    assert maildir_new(b) == []


def test_command_line_too_long_500(smtp_port):
    with RawSMTP(IP2, smtp_port.P) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        code, lines = c.cmd("NOOP " + "A" * 600)
        assert code == 500, lines
        assert lines[0].startswith("500 5.5.2"), lines
        # The session ends after the error (issue 5: a stream with no CRLF is never waited for).
        assert c.sock.recv(1) == b""
    with RawSMTP(IP2, smtp_port.P) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        c.send(b"MAIL FROM:<" + b"b" * 20000 + b"@remote.test>\r\n")
        code, lines = c.reply()
        assert code == 500, lines
    assert banner_of(IP2, smtp_port.P).startswith("220 ")


def test_text_line_too_long_in_data(smtp_port):
    b = smtp_port
    with RawSMTP(IP2, b.P) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        c.cmd("MAIL FROM:<bob@remote.test>")
        c.cmd("RCPT TO:<alice@example.com>")
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: long\r\n\r\n" + b"y" * 1500 + b"\r\n.\r\n")
        code, lines = c.reply()
        assert code in (500, 554), lines
    assert maildir_new(b) == []


def garbage_lines(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        line = bytes(rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(rng.randint(5, 200)))
        out.append(b"\x00" + line)
    return out


def test_garbage_bytes(smtp_port):
    b = smtp_port
    with RawSMTP(IP2, b.P) as c:
        for line in garbage_lines(1234, 5):
            code, lines = c.cmd(line)
            assert 500 <= code < 600, (line, lines)
        assert c.cmd("NOOP")[0] == 250
    # random binary including CR/LF, in one write: server must not crash
    rng = random.Random(99)
    blob = bytes(rng.randrange(256) for _ in range(8192)) + b"\x00\x00\r\n"
    c = RawSMTP(IP2, b.P)
    try:
        c.send(blob)
        for _ in range(50):
            try:
                code, lines = c.reply()
            except (SMTPReplyError, OSError):
                break
            assert 400 <= code < 600, lines
    finally:
        c.close()
    assert b.running()
    assert banner_of(IP2, b.P).startswith("220 ")
    with RawSMTP(IP2, b.P) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250


def test_too_many_errors_421(smtp_port):
    with RawSMTP(IP2, smtp_port.P) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        codes = []
        for i in range(15):
            try:
                code, lines = c.cmd(f"XYZZY{i}")
            except (SMTPReplyError, OSError) as e:
                codes.append(f"closed: {e}")
                break
            codes.append(code)
            if code == 421:
                break
        assert 421 in codes, codes
        assert all(isinstance(x, int) and 500 <= x < 600 for x in codes[:-1]), codes
        assert 10 <= len(codes) <= 12, f"421 expected after 10 errors: {codes}"
        assert c.at_eof(5), "server must close after 421"
    assert banner_of(IP2, smtp_port.P).startswith("220 ")


def test_tls_hello_on_plain_port(smtp_port):
    """A TLS ClientHello sent to a plain SMTP port is garbage to the server; it must cope."""
    import socket
    import ssl
    raw = socket.create_connection((IP2, smtp_port.P), timeout=10)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, OSError)):
        ctx.wrap_socket(raw).close()
    raw.close()
    assert banner_of(IP2, smtp_port.P).startswith("220 ")
