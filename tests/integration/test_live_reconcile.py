"""Live reconcile: bindings changes applied to running listeners without dropping sessions,
and a listener that cannot bind (address in use) not stopping the others."""
from __future__ import annotations

import smtplib
import socket
import ssl
import time

import pytest

from conftest import (ALICE, APPLY_DEADLINE, SINCE_RESOLUTION, CLIENT_NAME, IP2, IP3, RawSMTP, banner_of, connect_state,
                      create_port, free_port, set_ip, smtp_message, tls_client_context, wait_connect_state,
                      wait_maildir_count)


@pytest.fixture
def live_env(berth_env):
    b = berth_env
    b.port_a = create_port(b, "Port A", "smtp", "none", assigned=[IP2])
    assert wait_connect_state(IP2, b.port_a["port"], "ok", deadline=5) == "ok"
    b.A = b.port_a["port"]
    return b


def test_add_and_delete_while_session_open(live_env):
    b = live_env
    s = smtplib.SMTP(IP2, b.A, local_hostname=CLIENT_NAME, timeout=15)
    try:
        assert s.ehlo()[0] == 250
        assert s.mail("bob@remote.test")[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        l = b.listener(IP2, b.A)
        assert l["activeConnections"] >= 1, l
        assert l["totalConnections"] >= 1, l

        # add port C: answers within the deadline
        c_num = free_port()
        assert connect_state(IP2, c_num) == "refused"
        create_port(b, "Port C", "smtp", "none", port=c_num, assigned=[IP2])
        assert wait_connect_state(IP2, c_num, "ok") == "ok", "new listener did not answer within 1 s"
        assert banner_of(IP2, c_num).startswith("220 ")

        # delete port A: new connections refused, the open session goes on
        b.ok("DELETE", f"/api/v1/ports/{b.port_a['id']}")
        assert wait_connect_state(IP2, b.A, "refused") == "refused", "deleted listener still accepts"
        code, msg = s.data(smtp_message("during reconcile", "still here"))
        assert code == 250, msg
        code, msg = s.quit()
        assert code == 221, msg
    finally:
        s.close()
    files = wait_maildir_count(b, 1)
    assert len(files) == 1 and b"still here" in files[0].read_bytes()
    # the listener is gone from the API once the session ended
    end = time.monotonic() + 5
    for _ in range(100):
        if b.listener(IP2, b.A) is None or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert b.listener(IP2, b.A) is None


def test_change_port_number_rebinds(live_env):
    b = live_env
    new = free_port()
    b.ok("PUT", f"/api/v1/ports/{b.port_a['id']}", {"port": new})
    assert wait_connect_state(IP2, new, "ok") == "ok"
    assert wait_connect_state(IP2, b.A, "refused") == "refused"
    assert banner_of(IP2, new).startswith("220 ")
    l = b.wait_listener(IP2, new)
    assert l and l["state"] == "listening" and l["portId"] == b.port_a["id"], l


def test_change_encryption_rebinds(live_env):
    b = live_env
    before = b.wait_listener(IP2, b.A)
    time.sleep(SINCE_RESOLUTION)
    b.ok("PUT", f"/api/v1/ports/{b.port_a['id']}", {"encryption": "ssl"})
    end = time.monotonic() + APPLY_DEADLINE
    banner = None
    for _ in range(50):
        try:
            banner = banner_of(IP2, b.A, tls=tls_client_context())
            break
        except (ssl.SSLError, OSError, AssertionError):
            if time.monotonic() > end:
                break
            time.sleep(0.1)
    assert banner and banner.startswith("220 "), "port did not switch to implicit TLS within the deadline"
    after = b.wait_listener(IP2, b.A)
    assert after["encryption"] == "ssl" and after["since"] != before["since"], (before, after)


def test_assign_and_unassign_via_ip(live_env):
    b = live_env
    assert connect_state(IP3, b.A) == "refused"
    set_ip(b, IP3, ports=[b.port_a["id"]])
    assert wait_connect_state(IP3, b.A, "ok") == "ok"
    assert sorted(b.port(b.port_a["id"])["assignedTo"]) == [IP2, IP3]
    set_ip(b, IP2, ports=[])
    assert wait_connect_state(IP2, b.A, "refused") == "refused"
    assert connect_state(IP3, b.A) == "ok"
    # the .3 listener was not disturbed by the .2 change
    assert banner_of(IP3, b.A).startswith("220 ")


def test_unchanged_listener_not_rebound(live_env):
    b = live_env
    before = b.wait_listener(IP2, b.A)
    time.sleep(SINCE_RESOLUTION)
    b.ok("PUT", f"/api/v1/ports/{b.port_a['id']}", {"description": "only the text", "name": "Renamed A"})
    create_port(b, "Other", assigned=[IP3])
    time.sleep(0.3)
    after = b.listener(IP2, b.A)
    assert after["since"] == before["since"] and after["state"] == "listening", (before, after)


def test_wildcard_listener(live_env):
    b = live_env
    n = free_port()
    create_port(b, "Wild", port=n, assigned=["0.0.0.0"])
    assert wait_connect_state("127.0.0.1", n, "ok") == "ok"
    assert wait_connect_state(IP3, n, "ok") == "ok"
    l = b.wait_listener("0.0.0.0", n)
    assert l and l["state"] == "listening", l


def test_address_in_use(berth_env):
    b = berth_env
    p_num = free_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind((IP3, p_num))
        blocker.listen(5)
        p = create_port(b, "Blocked", "smtp", "none", port=p_num, assigned=[IP3])
        q = create_port(b, "Fine", "smtp", "none", assigned=[IP2])
        lq = b.wait_listener(IP2, q["port"])
        assert lq and lq["state"] == "listening", lq
        lp = b.wait_listener(IP3, p_num, states=("failed",))
        assert lp and lp["state"] == "failed", lp
        assert "address already in use" in (lp.get("error") or "").lower(), lp
        assert banner_of(IP2, q["port"]).startswith("220 ")
        end = time.monotonic() + 3
        want = f"listener {IP3}:{p_num} smtp/none: failed: address already in use"
        for _ in range(60):
            if want in b.log or time.monotonic() > end:
                break
            time.sleep(0.05)
        assert want in b.log, b.log_tail()
        port = b.port(p["id"])
        assert port["assignedTo"] == [IP3]
        assert any(f"not listening on {IP3}" in w and "address already in use" in w for w in port["warnings"]), port
    finally:
        blocker.close()
    # any bindings change retries the failed listener
    b.ok("PUT", f"/api/v1/ports/{q['id']}", {"description": "poke"})
    lp = b.wait_listener(IP3, p_num, timeout=3)
    assert lp and lp["state"] == "listening", lp
    assert not lp.get("error"), lp
    assert banner_of(IP3, p_num).startswith("220 ")
    assert f"listener {IP3}:{p_num} smtp/none: listening" in b.log
    assert not any("not listening" in w for w in b.port(p["id"])["warnings"])


def test_counters(live_env):
    b = live_env
    before = b.wait_listener(IP2, b.A)["totalConnections"]
    for _ in range(3):
        banner_of(IP2, b.A)
    end = time.monotonic() + 3
    l = b.listener(IP2, b.A)
    for _ in range(60):
        if (l["totalConnections"] >= before + 3 and l["activeConnections"] == 0) or time.monotonic() > end:
            break
        time.sleep(0.05)
        l = b.listener(IP2, b.A)
    assert l["totalConnections"] >= before + 3, l
    assert l["activeConnections"] == 0, l
