"""Restart persistence, admin password handling, and graceful drain on SIGTERM/SIGINT."""
from __future__ import annotations

import re
import signal
import smtplib
import time

import pytest

from conftest import (ALICE, ALICE_PW, CLIENT_NAME, IP2, IP3, RawSMTP, banner_of, create_port, free_port,
                      maildir_new, set_ip, smtp_message, tls_client_context, wait_connect_state, wait_maildir_count)


def db_bytes(b) -> bytes:
    files = sorted(b.data.glob("berth.sqlite*"))
    assert files, "no berth.sqlite in the data dir"
    return b"".join(f.read_bytes() for f in files)


def port_view(b):
    return sorted((p["id"], p["name"], p["protocol"], p["encryption"], p["port"], p["tlsRequired"],
                   p["description"], tuple(sorted(p["assignedTo"]))) for p in b.ports())


def test_restart_keeps_everything(berth_env):
    b = berth_env
    a = create_port(b, "Plain", "smtp", "none", assigned=[IP2], description="inbound")
    sub = create_port(b, "Sub", "submission", "tls", assigned=[IP2, IP3])
    ssl_ = create_port(b, "Implicit", "smtp", "ssl", assigned=[IP3])
    idle = create_port(b, "Idle", "smtp", "none")
    set_ip(b, IP2, hostname="mx2.example.com", description="primary")
    with smtplib.SMTP(IP2, a["port"], local_hostname=CLIENT_NAME, timeout=15) as s:
        s.sendmail("bob@remote.test", [ALICE], smtp_message("before restart", "persisted body"))
    files_before = wait_maildir_count(b, 1)
    assert len(files_before) == 1
    view = port_view(b)
    ip2 = b.ip(IP2)

    b.restart()

    assert port_view(b) == view
    ip2_after = b.ip(IP2)
    assert ip2_after["hostname"] == "mx2.example.com" and ip2_after["description"] == "primary"
    assert sorted(ip2_after["ports"]) == sorted(ip2["ports"])
    assert sorted(b.ip(IP3)["ports"]) == sorted([sub["id"], ssl_["id"]])
    for addr, num in ((IP2, a["port"]), (IP2, sub["port"]), (IP3, sub["port"]), (IP3, ssl_["port"])):
        l = b.wait_listener(addr, num, timeout=5)
        assert l and l["state"] == "listening", (addr, num, l)
    assert b.listener(IP2, idle["port"]) is None
    assert banner_of(IP2, a["port"]).startswith("220 mx2.example.com ")
    # the user can still authenticate
    with smtplib.SMTP(IP3, sub["port"], local_hostname=CLIENT_NAME, timeout=15) as s:
        s.starttls(context=tls_client_context())
        s.login(ALICE, ALICE_PW)
    with smtplib.SMTP_SSL(IP3, ssl_["port"], local_hostname=CLIENT_NAME, context=tls_client_context(),
                          timeout=15) as s:
        s.login(ALICE, ALICE_PW)
    # old mail still there, untouched
    assert maildir_new(b) == files_before
    assert b"persisted body" in files_before[0].read_bytes()
    # domains and users survive
    st, js = b.api("GET", "/api/v1/domains/example.com/users")
    assert st == 200 and "alice" in str(js), js
    # ids are never reused, even across restarts
    new = create_port(b, "After restart")
    assert new["id"] not in {p[0] for p in view}
    b.ok("DELETE", f"/api/v1/ports/{new['id']}")
    b.restart()
    newer = create_port(b, "After second restart")
    assert newer["id"] != new["id"] and newer["id"] not in {p[0] for p in view}


def test_env_password_only_at_first_start(make_server):
    b = make_server()
    b.restart(env_password="a-different-password")
    st, _ = b.api("GET", "/api/v1/ports")
    assert st == 200, "the stored password must stay; BERTH_ADMIN_PASSWORD only applies at first start"
    st, _ = b.api("GET", "/api/v1/ports", password="a-different-password")
    assert st == 401


def test_generated_admin_password(make_server):
    b = make_server(password=None, start=False)
    b.start(env_password=None)
    m = re.findall(r"admin password: (\S+)", b.log)
    assert len(m) == 1, b.log_tail()
    b.password = m[0]
    st, js = b.api("GET", "/api/v1/ports")
    assert st == 200, js
    assert m[0].encode() not in db_bytes(b), "admin password stored in clear"
    b.restart(env_password=None)
    assert len(re.findall(r"admin password: (\S+)", b.log)) == 1, "password must be printed once only"
    st, js = b.api("GET", "/api/v1/ports")
    assert st == 200, js


def test_user_password_stored_hashed(berth_env):
    raw = db_bytes(berth_env)
    assert ALICE_PW.encode() not in raw
    assert b"secret-admin-pw" not in raw


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_drain_on_signal(berth_env, sig):
    b = berth_env
    p = create_port(b, "Drain", "smtp", "none", assigned=[IP2])
    assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok"
    c = RawSMTP(IP2, p["port"])
    try:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        assert c.cmd("MAIL FROM:<bob@remote.test>")[0] == 250
        b.proc.send_signal(sig)
        # wait until the server stopped accepting (the signal has been handled)
        assert wait_connect_state(IP2, p["port"], "refused", deadline=10) == "refused"
        assert b.running(), "server exited while a session was still open"
        code, lines = c.cmd("RCPT TO:<alice@example.com>")
        assert code == 421, lines
        assert lines[0].startswith("421 4.3.2"), lines
        assert c.at_eof(5), "connection must be closed after 421"
    finally:
        c.close()
    try:
        rc = b.proc.wait(timeout=15)
    except Exception:
        b.kill()
        pytest.fail("server did not exit within 15 s after the last session ended")
    assert rc == 0, b.log_tail()
    assert maildir_new(b) == []


def test_sigterm_with_idle_server_exits_zero(server):
    rc = server.stop(signal.SIGTERM)
    assert rc == 0, server.log_tail()
