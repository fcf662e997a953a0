"""Authentication throttling (issue 5, section 1): server settings, a failure delay that
grows per failure in a session, a per-client-IP ban shared by SMTP and the admin API, its
expiry, fail2ban-ready log lines, and liveness under a guessing storm.

The whole suite runs from 127.0.0.1, so every client that fails on purpose connects from
another loopback address (127.0.0.2x-1xx) and the suite itself is never banned. Bans are
short (a few seconds) so their expiry is tested too."""
from __future__ import annotations

import base64
import http.client
import json
import threading
import time

import pytest

from conftest import (ADMIN_PASSWORD, ALICE, ALICE_PW, APPLY_DEADLINE, CLIENT_NAME, IP2, RawSMTP, assert_reply,
                      create_port, error_of, free_port, set_settings, tls_client_context, unwrap, wait_connect_state)
from rss import assert_fresh_client_served, assert_healthz_within, banner_within

FIELDS = ("authFailureDelayMs", "authBanThreshold", "authBanWindowSeconds", "authBanSeconds")


def auth_plain(user: str, pw: str) -> str:
    return "AUTH PLAIN " + base64.b64encode(f"\0{user}\0{pw}".encode()).decode()


@pytest.fixture
def auth_env(make_mail_server):
    """AUTH over implicit TLS on SSL; ban refusals seen at connect on the plain MX port."""
    b = make_mail_server()
    b.SSL = create_port(b, "SMTPS", "smtp", "ssl", assigned=[IP2])["port"]
    b.MX = create_port(b, "MX", "smtp", "none", assigned=[IP2])["port"]
    for p in (b.SSL, b.MX):
        assert wait_connect_state(IP2, p, "ok", deadline=5) == "ok"
    return b


def get_settings(b) -> dict:
    return unwrap(b.ok("GET", "/api/v1/settings"), "settings")


def api_from(b, source: str, method: str, path: str, password: str | None, timeout: float = 15.0):
    """An admin API request from `source`: (status, headers (lower-case names), parsed body)."""
    conn = http.client.HTTPConnection("127.0.0.1", b.admin_port, timeout=timeout, source_address=(source, 0))
    try:
        headers = {"Accept": "application/json"}
        if password is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return r.status, hdrs, body
    finally:
        conn.close()


def smtp_auth_failure(b, source: str) -> tuple[int, list[str]]:
    """One session from `source` with one wrong-password AUTH; returns its reply."""
    with RawSMTP(IP2, b.SSL, tls=tls_client_context(), source=source, timeout=15) as c:
        code, lines = c.banner
        assert code == 220, f"{source}: {lines}"
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        return c.cmd(auth_plain(ALICE, "wrong-password"))


def banned_at_connect(port: int, source: str) -> tuple[bool, str]:
    """(refused with 421 4.7.0 and closed?, what came) for a plain SMTP connect from `source`."""
    try:
        c = RawSMTP(IP2, port, read_banner=False, source=source, timeout=5)
    except OSError as e:
        return False, f"connect failed: {e}"
    try:
        try:
            code, lines = c.reply()
        except Exception as e:  # noqa: BLE001
            return False, f"no greeting: {e}"
        first = lines[0]
        if not first.startswith("421 4.7.0"):
            return False, first
        return c.at_eof(3), first
    finally:
        c.close()


def wait_unbanned(port: int, source: str, deadline: float) -> tuple[str, float]:
    """Poll a plain connect from `source` until it gets a 220; (last line, when, from now)."""
    t0 = time.monotonic()
    line = ""
    for _ in range(1000):
        line, _ = banner_within(IP2, port, source=source)
        if line.startswith("220 ") or time.monotonic() - t0 > deadline:
            break
        time.sleep(0.2)
    return line, time.monotonic() - t0


def auth_log_lines(b, ip: str) -> list[str]:
    return [l for l in b.log.splitlines()
            if ip in l and "auth" in l.lower() and "fail" in l.lower()]


# ------------------------------------------------------------------ settings


def test_settings_get_partial_put_validate_persist(make_mail_server):
    b = make_mail_server()
    s = get_settings(b)
    for f in FIELDS:
        assert isinstance(s.get(f), int) and not isinstance(s.get(f), bool) and s[f] >= 0, f"{f}: {s.get(f)!r} in {s}"
    assert s["authBanThreshold"] >= 1 and s["authBanSeconds"] >= 1 and s["authBanWindowSeconds"] >= 1, s
    assert isinstance(s.get("proxyTrustedNetworks"), list), s
    after = set_settings(b, authBanSeconds=7)
    assert after["authBanSeconds"] == 7, after
    for f in FIELDS:
        if f != "authBanSeconds":
            assert after[f] == s[f], f"partial PUT changed {f}: {s} -> {after}"
    assert get_settings(b) == after
    for f in FIELDS:
        st, js = b.api("PUT", "/api/v1/settings", {f: -1})
        assert st == 422, (f, st, js)
        assert error_of(js).get("field") == f, js
    assert get_settings(b) == after, "a refused PUT changed the settings"
    b.restart()
    assert get_settings(b) == after, "settings lost across a restart"


# ------------------------------------------------------------------ failure delay


DELAY_MS = 400


def test_auth_failure_delay_grows_within_a_session(auth_env):
    """The n-th failed AUTH in a session is answered after about n × authFailureDelayMs."""
    b = auth_env
    set_settings(b, authFailureDelayMs=DELAY_MS, authBanThreshold=50, authBanWindowSeconds=60, authBanSeconds=60)
    d = DELAY_MS / 1000
    times = []
    with RawSMTP(IP2, b.SSL, tls=tls_client_context(), source="127.0.0.21", timeout=20) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        for n in range(1, 4):
            t0 = time.monotonic()
            code, lines = c.cmd(auth_plain(ALICE, f"wrong-{n}"))
            times.append(time.monotonic() - t0)
            assert_reply(lines, 535, "5.7.8", f"failure {n}")
        shown = ", ".join(f"{t:.2f}s" for t in times)
        for n, t in enumerate(times, 1):
            assert t >= 0.8 * n * d, f"failure {n} answered after {t:.2f}s, want ~{n * d:.1f}s ({shown})"
            assert t <= 1.5 * n * d + 1.5, f"failure {n} answered after {t:.2f}s, want ~{n * d:.1f}s ({shown})"
        assert times[2] - times[0] >= d, f"the delay does not grow: {shown}"
        code, lines = c.cmd(auth_plain(ALICE, ALICE_PW))
        assert code == 235, f"right password after 3 failures: {lines}"
    assert auth_log_lines(b, "127.0.0.21"), "no log line with the client IP, 'auth' and 'failed'"


# ------------------------------------------------------------------ bans


BAN = 3


def test_smtp_failures_ban_the_ip_everywhere_then_expire(auth_env):
    """authBanThreshold failures from one IP (in separate sessions) inside the window ban it:
    421 4.7.0 at connect on SMTP and 429 "banned" with Retry-After on the admin API; other
    clients are untouched; failures are logged with the IP; the ban ends after authBanSeconds."""
    b = auth_env
    src = "127.0.0.31"
    set_settings(b, authFailureDelayMs=50, authBanThreshold=3, authBanWindowSeconds=60, authBanSeconds=BAN)
    for i in range(3):
        code, lines = smtp_auth_failure(b, src)
        assert code == 535 or (i == 2 and code == 421), f"failure {i + 1}: {lines}"
    t_ban = time.monotonic()
    banned, what = banned_at_connect(b.MX, src)
    assert banned, f"after 3 failures (threshold 3) a connect from {src} got {what!r}, want 421 4.7.0 and close"
    assert_fresh_client_served(IP2, b.MX, f"a ban on {src}")  # the suite's own 127.0.0.1
    assert_fresh_client_served(IP2, b.MX, f"a ban on {src}", source="127.0.0.32")
    # shared with the admin API, even with the right password
    st, hdrs, body = api_from(b, src, "GET", "/api/v1/ports", ADMIN_PASSWORD)
    assert st == 429, (st, body)
    assert error_of(body).get("code") == "banned", body
    assert "retry-after" in hdrs, hdrs
    assert 1 <= int(hdrs["retry-after"]) <= BAN, hdrs["retry-after"]
    assert b.api("GET", "/api/v1/settings")[0] == 200, "the suite's own address must not be banned"
    lines = auth_log_lines(b, src)
    assert len(lines) >= 3, f"want a log line per failure with {src}, 'auth' and 'failed'; got {lines}"
    # still banned a moment later, then expired
    if time.monotonic() - t_ban < BAN - 1.5:
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t_ban)))
        banned, what = banned_at_connect(b.MX, src)
        assert banned, f"ban of {BAN}s already over after {time.monotonic() - t_ban:.1f}s: {what!r}"
    line, _ = wait_unbanned(b.MX, src, deadline=BAN + 3 - (time.monotonic() - t_ban))
    assert line.startswith("220 "), f"ban of {BAN}s still in force after {time.monotonic() - t_ban:.1f}s: {line!r}"
    with RawSMTP(IP2, b.SSL, tls=tls_client_context(), source=src) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        code, lines = c.cmd(auth_plain(ALICE, ALICE_PW))
        assert code == 235, f"after the ban expired: {lines}"
    st, _, body = api_from(b, src, "GET", "/api/v1/ports", ADMIN_PASSWORD)
    assert st == 200, f"admin API after the ban expired: {st} {body}"


def test_admin_api_failures_ban_the_ip_then_expire(auth_env):
    """Wrong admin passwords count as failures too: the IP gets 429 "banned" + Retry-After on
    the API (right password or not) and 421 4.7.0 on SMTP; the ban expires."""
    b = auth_env
    src = "127.0.0.41"
    set_settings(b, authFailureDelayMs=50, authBanThreshold=3, authBanWindowSeconds=60, authBanSeconds=BAN)
    for i in range(3):
        st, _, body = api_from(b, src, "GET", "/api/v1/ports", "wrong-admin-pw")
        assert st == 401 or (i == 2 and st == 429), f"wrong password {i + 1}: {st} {body}"
    t_ban = time.monotonic()
    st, hdrs, body = api_from(b, src, "GET", "/api/v1/ports", ADMIN_PASSWORD)
    assert st == 429, f"after 3 wrong admin passwords (threshold 3): {st} {body}"
    assert error_of(body).get("code") == "banned", body
    assert 1 <= int(hdrs.get("retry-after", "0")) <= BAN, hdrs
    banned, what = banned_at_connect(b.MX, src)
    assert banned, f"API failures must ban SMTP too: {what!r}"
    assert_healthz_within(b.admin_url, f"a ban on {src}")
    assert b.api("GET", "/api/v1/ports")[0] == 200
    assert auth_log_lines(b, src), f"no log line with {src}, 'auth' and 'failed'"
    end = t_ban + BAN + 3
    st = None
    for _ in range(100):
        st, _, body = api_from(b, src, "GET", "/api/v1/ports", ADMIN_PASSWORD)
        if st == 200 or time.monotonic() > end:
            break
        time.sleep(0.2)
    assert st == 200, f"ban of {BAN}s still in force on the API after {time.monotonic() - t_ban:.1f}s: {st} {body}"


def test_failures_outside_the_window_do_not_ban(auth_env):
    b = auth_env
    src = "127.0.0.51"
    set_settings(b, authFailureDelayMs=50, authBanThreshold=3, authBanWindowSeconds=2, authBanSeconds=30)
    for _ in range(2):
        assert smtp_auth_failure(b, src)[0] == 535
    time.sleep(2.5)
    assert smtp_auth_failure(b, src)[0] == 535
    line, _ = banner_within(IP2, b.MX, source=src)
    assert line.startswith("220 "), f"3 failures spread over more than the 2 s window banned {src}: {line!r}"


# ------------------------------------------------------------------ guessing storm


def test_guessing_storm_does_not_starve_others(auth_env):
    """10 SMTP and 10 admin API password guessers (threshold high, so no bans): /healthz and a
    fresh SMTP client answer within 1 s, a real login works, a port change applies within 1 s."""
    b = auth_env
    set_settings(b, authFailureDelayMs=100, authBanThreshold=10000, authBanWindowSeconds=60, authBanSeconds=60)
    stop = threading.Event()
    counts = {"smtp": 0, "api": 0}
    errors: list[str] = []
    lock = threading.Lock()

    def smtp_guesser(i: int):
        src = f"127.0.0.{100 + i}"
        for _ in range(1000):
            if stop.is_set():
                return
            try:
                with RawSMTP(IP2, b.SSL, tls=tls_client_context(), source=src, timeout=20) as c:
                    c.cmd(f"EHLO {CLIENT_NAME}")
                    for _ in range(3):
                        if stop.is_set():
                            return
                        code, _ = c.cmd(auth_plain(ALICE, "guess"))
                        with lock:
                            counts["smtp"] += 1
                        if code != 535:
                            break
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(f"smtp {src}: {type(e).__name__}: {e}")
                return

    def api_guesser(i: int):
        src = f"127.0.0.{120 + i}"
        for _ in range(10000):
            if stop.is_set():
                return
            try:
                st, _, _ = api_from(b, src, "GET", "/api/v1/ports", f"guess-{i}", timeout=20)
                with lock:
                    counts["api"] += 1
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"api {src}: {type(e).__name__}: {e}")
                return

    threads = [threading.Thread(target=smtp_guesser, args=(i,), daemon=True) for i in range(10)]
    threads += [threading.Thread(target=api_guesser, args=(i,), daemon=True) for i in range(10)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        assert_healthz_within(b.admin_url, f"a password-guessing storm ({counts})")
        assert_fresh_client_served(IP2, b.MX, "a password-guessing storm", source="127.0.0.98")
        with RawSMTP(IP2, b.SSL, tls=tls_client_context(), source="127.0.0.99", timeout=20) as c:
            assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
            code, lines = c.cmd(auth_plain(ALICE, ALICE_PW))
            assert code == 235, lines
        n = free_port()
        create_port(b, "During storm", "smtp", "none", port=n, assigned=[IP2])
        assert wait_connect_state(IP2, n, "ok", deadline=APPLY_DEADLINE) == "ok", \
            f"a port added under a guessing storm was not listening within {APPLY_DEADLINE}s"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert counts["smtp"] > 0 and counts["api"] > 0, counts
    assert not errors, errors[:5]
