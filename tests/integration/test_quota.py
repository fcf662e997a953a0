"""Per-user quota: the admin API and CLI field, SMTP 452 4.2.2 / 552 5.2.2, `berth reindex`."""
from __future__ import annotations

import json
import smtplib

import pytest

from conftest import (ADMIN_PASSWORD, ALICE, BERTH_BIN, CLIENT_NAME, IP2, create_port, error_of, run, smtp_message,
                      unwrap, wait_connect_state, wait_maildir_count)


@pytest.fixture
def quota_env(berth_env):
    b = berth_env
    b.smtp_port = create_port(b, "MX", "smtp", "none", assigned=[IP2])["port"]
    assert wait_connect_state(IP2, b.smtp_port, "ok", deadline=5) == "ok"
    return b


def user(b, name="alice"):
    users = unwrap(b.ok("GET", "/api/v1/domains/example.com/users"), "users")
    return next(u for u in users if u["name"] == name)


def test_quota_field_in_api(berth_env):
    b = berth_env
    assert user(b)["quotaBytes"] is None, "always present, null for none"
    st, js = b.api("POST", "/api/v1/domains/example.com/users", {"name": "bob", "password": "bob-pw-1234", "quotaBytes": 1000})
    assert st == 201, js
    assert unwrap(js, "user")["quotaBytes"] == 1000
    st, js = b.api("PUT", "/api/v1/domains/example.com/users/bob", {"displayName": "Bob"})
    assert st == 200 and unwrap(js, "user")["quotaBytes"] == 1000, "a PUT without quotaBytes keeps it"
    st, js = b.api("PUT", "/api/v1/domains/example.com/users/bob", {"quotaBytes": None})
    assert st == 200 and unwrap(js, "user")["quotaBytes"] is None, "null removes it"
    for bad in (0, -5, "big"):
        st, js = b.api("PUT", "/api/v1/domains/example.com/users/bob", {"quotaBytes": bad})
        assert st in (400, 422) and error_of(js)["field"] in ("quotaBytes", None), (bad, st, js)
    assert user(b, "bob")["quotaBytes"] is None, "a refused change changes nothing"


def test_quota_in_cli(berth_env):
    b = berth_env

    def cli(*args):
        p = run([str(BERTH_BIN), *args, "--server", b.admin_url], env={"BERTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
        assert p.returncode == 0, p.stderr
        return p.stdout

    cli("users", "edit", "example.com", "alice", "--quota", "2M")
    assert user(b)["quotaBytes"] == 2 * 1024 * 1024
    out = cli("users", "list", "example.com", "--json")
    assert json.loads(out)[0]["quotaBytes"] == 2 * 1024 * 1024
    cli("users", "edit", "example.com", "alice", "--quota", "none")
    assert user(b)["quotaBytes"] is None
    p = run([str(BERTH_BIN), "users", "edit", "example.com", "alice", "--quota", "lots", "--server", b.admin_url],
            env={"BERTH_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert p.returncode != 0 and "--quota" in p.stderr.decode()


def test_smtp_refuses_when_mailbox_is_full(quota_env):
    b = quota_env
    b.ok("PUT", "/api/v1/domains/example.com/users/alice", {"quotaBytes": 3000})
    with smtplib.SMTP(IP2, b.smtp_port, local_hostname=CLIENT_NAME, timeout=15) as s:
        # 552 5.2.2: bigger than the room left, and alice is its only recipient.
        big = smtp_message("big", ("x" * 70 + "\r\n") * 70)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            s.sendmail("bob@remote.test", [ALICE], big)
        assert refused.value.smtp_code == 552 and b"5.2.2" in refused.value.smtp_error
        # Fits: delivered.
        s.sendmail("bob@remote.test", [ALICE], smtp_message("fits", ("y" * 70 + "\r\n") * 20))
    wait_maildir_count(b, 1)
    # The quota lowered below what alice holds: the next RCPT gets 452 4.2.2 at once.
    b.ok("PUT", "/api/v1/domains/example.com/users/alice", {"quotaBytes": 1000})
    with smtplib.SMTP(IP2, b.smtp_port, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.ehlo()
        s.mail("bob@remote.test")
        code, text = s.rcpt(ALICE)
        assert code == 452 and b"4.2.2" in text, (code, text)
    assert "code=552" in b.log and "Mailbox full" in b.log
    # More room: accepted again at once.
    b.ok("PUT", "/api/v1/domains/example.com/users/alice", {"quotaBytes": None})
    with smtplib.SMTP(IP2, b.smtp_port, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.sendmail("bob@remote.test", [ALICE], smtp_message("after", "z"))
    wait_maildir_count(b, 2)


def test_reindex_rebuilds_the_index(quota_env):
    b = quota_env
    with smtplib.SMTP(IP2, b.smtp_port, local_hostname=CLIENT_NAME, timeout=15) as s:
        for n in range(3):
            s.sendmail("bob@remote.test", [ALICE], smtp_message(f"m{n}", "body"))
    wait_maildir_count(b, 3)
    # Refused while the server holds the data directory.
    p = run([str(BERTH_BIN), "reindex", "--data", str(b.data)])
    assert p.returncode != 0 and "already using the data directory" in p.stderr.decode(), p.stderr
    b.stop()
    p = run([str(BERTH_BIN), "reindex", "--data", str(b.data)])
    assert p.returncode == 0, p.stderr
    assert "3 message(s)" in p.stdout.decode(), p.stdout
    b.start()
    wait_maildir_count(b, 3)
