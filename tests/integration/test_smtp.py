"""SMTP on two addresses: per-IP listeners, per-IP hostnames, local delivery, replies and limits."""
from __future__ import annotations

import smtplib
import time
import uuid

import pytest

from conftest import (ALICE, APPLY_DEADLINE, CLIENT_NAME, IP2, IP3, SERVER_HOSTNAME, RawSMTP, banner_of, connect_state,
                      create_port, maildir_new, set_ip, smtp_message, wait_connect_state, wait_maildir_count)


@pytest.fixture
def smtp_env(berth_env):
    b = berth_env
    b.port_a = create_port(b, "Port A", "smtp", "none", assigned=[IP2])
    b.port_b = create_port(b, "Port B", "smtp", "none", assigned=[IP3])
    assert wait_connect_state(IP2, b.port_a["port"], "ok", deadline=5) == "ok"
    assert wait_connect_state(IP3, b.port_b["port"], "ok", deadline=5) == "ok"
    b.A = b.port_a["port"]
    b.B = b.port_b["port"]
    return b


def smtp(host, port) -> smtplib.SMTP:
    s = smtplib.SMTP(host, port, local_hostname=CLIENT_NAME, timeout=15)
    return s


def test_ports_answer_only_on_their_addresses(smtp_env):
    b = smtp_env
    assert banner_of(IP2, b.A).startswith("220 ")
    assert banner_of(IP3, b.B).startswith("220 ")
    assert connect_state(IP3, b.A) == "refused"
    assert connect_state(IP2, b.B) == "refused"
    assert connect_state("127.0.0.1", b.A) == "refused"
    la = b.listener(IP2, b.A)
    assert la and la["state"] == "listening" and la["portId"] == b.port_a["id"], la
    assert la["protocol"] == "smtp" and la["encryption"] == "none"
    assert b.listener(IP3, b.A) is None
    # log line per listener change
    assert f"listener {IP2}:{b.A} smtp/none: listening" in b.log, b.log_tail()


def test_banner_format_and_default_hostname(smtp_env):
    line = banner_of(IP2, smtp_env.A)
    assert line == f"220 {SERVER_HOSTNAME} ESMTP Berth", line


def test_per_ip_hostname(smtp_env):
    b = smtp_env
    set_ip(b, IP2, hostname="mx2.example.com")
    assert b.ip(IP2)["hostname"] == "mx2.example.com"
    with RawSMTP(IP2, b.A) as c:
        code, lines = c.banner
        assert code == 220 and lines[0].startswith("220 mx2.example.com "), lines
        code, lines = c.cmd(f"EHLO {CLIENT_NAME}")
        assert code == 250, lines
        assert lines[0][4:].startswith("mx2.example.com"), lines
    # the other IP keeps the server hostname
    assert banner_of(IP3, b.B).startswith(f"220 {SERVER_HOSTNAME} ")
    # HELO too
    with RawSMTP(IP2, b.A) as c:
        code, lines = c.cmd(f"HELO {CLIENT_NAME}")
        assert code == 250 and "mx2.example.com" in lines[0], lines


def test_domain_ip_address_hostname(smtp_env):
    """A domain whose ipAddress is an IP names the banner on that IP (when the IP has no hostname)."""
    b = smtp_env
    b.ok("POST", "/api/v1/domains", {"name": "other.test", "ipAddress": IP3}, statuses=(200, 201))
    # The contract: a change applies within 1 s (the listeners reconcile after the commit).
    end = time.monotonic() + APPLY_DEADLINE
    for _ in range(100):
        line = banner_of(IP3, b.B)
        if "other.test" in line or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert "other.test" in line, line


def test_deliver_mail(smtp_env):
    b = smtp_env
    token = uuid.uuid4().hex
    assert maildir_new(b) == []
    with smtp(IP2, b.A) as s:
        assert s.ehlo()[0] == 250
        code, msg = s.mail("bob@remote.test")
        assert code == 250, msg
        code, msg = s.rcpt(ALICE)
        assert code == 250, msg
        code, msg = s.data(smtp_message("hello alice", f"body token {token}"))
        assert code == 250, msg
        code, msg = s.quit()
        assert code == 221, msg
    files = wait_maildir_count(b, 1)
    assert len(files) == 1, files
    text = files[0].read_bytes().decode("utf-8", "replace")
    assert "Received:" in text and "Return-Path:" in text, text[:800]
    assert "<bob@remote.test>" in text.split("Return-Path:", 1)[1].splitlines()[0]
    assert f"body token {token}" in text
    assert "Subject: hello alice" in text
    # Maildir: nothing left in tmp/
    assert list((b.data / "mail" / "example.com" / "alice" / "tmp").iterdir()) == []
    # metrics count it
    st, metrics = b.api("GET", "/metrics")
    line = [l for l in metrics.splitlines() if l.startswith("berth_smtp_messages_accepted_total")]
    assert line and float(line[0].rsplit(" ", 1)[1]) >= 1, line


def test_two_messages_two_files(smtp_env):
    b = smtp_env
    with smtp(IP3, b.B) as s:
        for i in range(2):
            s.sendmail("bob@remote.test", [ALICE], smtp_message(f"m{i}", f"n{i}"))
    assert len(wait_maildir_count(b, 2)) == 2


def test_unknown_user_550_511(smtp_env):
    with smtp(IP2, smtp_env.A) as s:
        s.ehlo()
        assert s.mail("bob@remote.test")[0] == 250
        code, msg = s.rcpt("nobody@example.com")
        assert code == 550, msg
        assert msg.startswith(b"5.1.1"), msg
        # the session continues
        assert s.rcpt(ALICE)[0] == 250


def test_relay_denied_without_auth(smtp_env):
    with smtp(IP2, smtp_env.A) as s:
        s.ehlo()
        assert s.mail("bob@remote.test")[0] == 250
        code, msg = s.rcpt("user@elsewhere.org")
        assert code == 554, msg
        assert msg.startswith(b"5.7.1"), msg
    queue = smtp_env.data / "queue"
    assert not queue.exists() or not any(p.is_file() for p in queue.rglob("*")), "refused relay mail was queued"


def test_simple_commands(smtp_env):
    with RawSMTP(IP2, smtp_env.A) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        code, lines = c.cmd("VRFY alice")
        assert code == 252, lines
        code, lines = c.cmd("HELP")
        assert code == 214, lines
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("RSET")[0] == 250
        code, lines = c.cmd("EXPN staff")
        assert 500 <= code < 600 or code == 252, lines
        code, lines = c.cmd("QUIT")
        assert code == 221, lines
        assert c.at_eof(5)


def test_ehlo_extensions_no_auth_on_plain(smtp_env):
    with smtp(IP2, smtp_env.A) as s:
        code, _ = s.ehlo()
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes"):
            assert s.has_extn(ext), (ext, s.esmtp_features)
        assert s.esmtp_features["size"].strip() == "26214400", s.esmtp_features
        assert not s.has_extn("auth"), s.esmtp_features
        assert not s.has_extn("starttls"), "encryption none must not offer STARTTLS"
        code, msg = s.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGFsaWNlLXB3LTEyMw==")
        assert 500 <= code < 600, (code, msg)
        # still not authenticated: relay refused
        assert s.mail("alice@example.com")[0] == 250
        assert s.rcpt("user@elsewhere.org")[0] == 554


def test_mail_sequence_errors(smtp_env):
    with RawSMTP(IP2, smtp_env.A) as c:
        code, _ = c.cmd("MAIL FROM:<bob@remote.test>")
        assert code == 503, "MAIL before EHLO/HELO"
        c.cmd(f"EHLO {CLIENT_NAME}")
        assert c.cmd("RCPT TO:<alice@example.com>")[0] == 503, "RCPT before MAIL"
        assert c.cmd("DATA")[0] == 503, "DATA before RCPT"
        assert c.cmd("MAIL FROM:<bob@remote.test>")[0] == 250
        assert c.cmd("MAIL FROM:<bob@remote.test>")[0] == 503, "nested MAIL"
        assert c.cmd("DATA")[0] in (503, 554), "DATA without RCPT (RFC 5321 3.3: 503 or 554)"
        assert c.cmd("MAIL FROM:bob")[0] in (250, 501, 503)
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("MAIL FROM:<>")[0] == 250, "null reverse path is valid"
        code, lines = c.cmd("RCPT TO:<not an address>")
        assert code in (501, 553), lines


def test_pipelining(smtp_env):
    b = smtp_env
    with RawSMTP(IP2, b.A) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        c.send("MAIL FROM:<bob@remote.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 550
        assert c.reply()[0] == 354
        c.send("Subject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 221
    assert len(wait_maildir_count(b, 1)) == 1


def test_dot_stuffing(smtp_env):
    b = smtp_env
    with RawSMTP(IP2, b.A) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        c.cmd("MAIL FROM:<bob@remote.test>")
        c.cmd("RCPT TO:<alice@example.com>")
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: dots\r\n\r\n..leading dot\r\n.\r\n")
        assert c.reply()[0] == 250
    files = wait_maildir_count(b, 1)
    body = files[0].read_bytes()
    assert b"\r\n.leading dot" in body or b"\n.leading dot" in body
    assert b"..leading dot" not in body


def test_101st_recipient_gets_452(smtp_env):
    with smtp(IP2, smtp_env.A) as s:
        s.ehlo()
        assert s.mail("bob@remote.test")[0] == 250
        for i in range(100):
            code, msg = s.rcpt(ALICE)
            assert code == 250, (i, code, msg)
        code, msg = s.rcpt(ALICE)
        assert code == 452, msg
        assert msg.startswith(b"4.5.3"), msg
        assert s.rset()[0] == 250


def test_declared_size_over_limit_552(smtp_env):
    with smtp(IP2, smtp_env.A) as s:
        s.ehlo()
        code, msg = s.mail("bob@remote.test", ["SIZE=26214401"])
        assert code == 552, msg
        code, msg = s.mail("bob@remote.test", ["SIZE=1000"])
        assert code == 250, msg


def test_actual_size_over_limit_552(smtp_env):
    b = smtp_env
    with RawSMTP(IP2, b.A, timeout=60) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        assert c.cmd("MAIL FROM:<bob@remote.test>")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.com>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        line = b"x" * 998 + b"\r\n"
        chunk = line * 1024  # 1 MiB
        for _ in range(26):
            c.send(chunk)
        c.send(chunk)  # > 26 MiB in total
        c.send(b".\r\n")
        code, lines = c.reply()
        assert code == 552, lines
    assert maildir_new(b) == []


def test_8bit_message_accepted(smtp_env):
    b = smtp_env
    with RawSMTP(IP2, b.A) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        assert c.cmd("MAIL FROM:<bob@remote.test> BODY=8BITMIME")[0] == 250
        assert c.cmd("RCPT TO:<alice@example.com>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße aus Köln\r\n.\r\n".encode())
        assert c.reply()[0] == 250
    files = wait_maildir_count(b, 1)
    assert "Grüße aus Köln".encode() in files[0].read_bytes()


def test_duplicate_recipients_get_one_copy(smtp_env):
    """The same mailbox in To and Cc (and case variants) is delivered once, not refused."""
    b = smtp_env
    with smtp(IP2, b.A) as s:
        s.ehlo()
        refused = s.sendmail("bob@remote.test", [ALICE, ALICE.upper(), "alice@EXAMPLE.com"],
                             smtp_message("dup", "one copy"))
        assert refused == {}
    files = wait_maildir_count(b, 1)
    assert len(files) == 1


@pytest.mark.parametrize("rcpt", ["postmaster", "Postmaster@example.com"])
def test_postmaster_is_always_accepted(smtp_env, rcpt):
    """RFC 5321 4.5.1: mail to postmaster of a local domain MUST be accepted."""
    b = smtp_env
    with smtp(IP2, b.A) as s:
        s.ehlo()
        assert s.mail("bob@remote.test")[0] == 250
        code, msg = s.rcpt(rcpt)
        assert code == 250, msg
        code, msg = s.data(smtp_message("to postmaster", "hello postmaster", to=rcpt))
        assert code == 250, msg
    assert wait_maildir_count(b, 1, user="postmaster")


def test_maildir_files_use_lf_line_ends(smtp_env):
    b = smtp_env
    with smtp(IP2, b.A) as s:
        s.sendmail("bob@remote.test", [ALICE], smtp_message("lf", "line one\r\nline two"))
    data = wait_maildir_count(b, 1)[0].read_bytes()
    assert b"\r" not in data
    assert data.startswith(b"Return-Path: <bob@remote.test>\nReceived: ")
    assert b"\n\nline one\nline two\n" in data


def test_quoted_local_part_is_a_valid_address(smtp_env):
    with smtp(IP2, smtp_env.A) as s:
        s.ehlo()
        assert s.mail('"john doe"@remote.test')[0] == 250
