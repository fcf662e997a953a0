"""The mail log (CONTRACT-NOTES "Mail log"; issue 5 section 3): one line per event with the
session id, client, listener and TLS state; the queue id the same in the 250 reply, the
Received: header and the log; `--log-format json|text`, `--log-level`; admin API changes
logged; passwords never logged.
"""
from __future__ import annotations

import base64
import json
import re
import time

from conftest import (ADMIN_PASSWORD, ALICE, ALICE_PW, CLIENT_NAME, IP2, RawSMTP, assert_reply, create_port,
                      log_events, log_size, set_settings, wait_log_event, wait_maildir_count)

WRONG_PW = "Wrong-Passw0rd-XYZZY"
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def plain(user: str, pw: str) -> str:
    return base64.b64encode(f"\0{user}\0{pw}".encode()).decode()


def server_lines(b) -> list[str]:
    """Every line the server wrote in this run (the harness' `=====` header left out)."""
    with open(b.log_path, "rb") as f:
        f.seek(b.log_offset)
        text = f.read().decode("utf-8", "replace")
    return [l for l in text.splitlines() if l.strip()]


def session_of(b, event: str, client: str, since: int | None = None, timeout: float = 5.0) -> str:
    ev = wait_log_event(b, lambda e: e.get("event") == event and e.get("client") == client, timeout=timeout,
                        since=since)
    assert ev is not None, f"no `{event}` line for client={client}:\n" + b.log_tail(40)
    assert ev.get("session"), ev
    return ev["session"]


def session_events(b, session: str, until: str = "disconnect", timeout: float = 5.0) -> list[dict]:
    """The session's lines, once its `until` event is logged."""
    wait_log_event(b, lambda e: e.get("session") == session and e.get("event") == until, timeout=timeout)
    return [e for e in log_events(b) if e.get("session") == session]


def in_order(names: list[str], want: list[str]) -> bool:
    it = iter(names)
    return all(any(n == w for n in it) for w in want)


def one(events: list[dict], name: str) -> dict:
    found = [e for e in events if e.get("event") == name]
    assert len(found) == 1, f"want one `{name}` line, got {len(found)}: {[e['_raw'] for e in events]}"
    return found[0]


# --------------------------------------------------------------------------- a full session, JSON


def test_json_full_session(make_mail_server):
    """EHLO, STARTTLS, AUTH (fail, then ok), MAIL, RCPT accepted, RCPT refused, DATA, QUIT with
    --log-format json: every line parses; the session's lines share one `session`, carry the
    client, listener and proto, and hold the contract's events with their fields; the queue id
    is the same in the 250 reply, the Received: header and the `accepted` line; no password
    (in clear or base64) is in the log."""
    b = make_mail_server("--log-format", "json")
    set_settings(b, authFailureDelayMs=100)
    P = create_port(b, "SMTP", "smtp", "tls", assigned=[IP2])["port"]
    assert b.wait_listener(IP2, P, timeout=5) is not None
    client = "127.0.0.31"
    with RawSMTP(IP2, P, source=client) as c:
        assert c.banner[0] == 220, c.banner
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls()
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        code, lines = c.cmd(f"AUTH PLAIN {plain(ALICE, WRONG_PW)}")
        assert code == 535, lines
        code, lines = c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}")
        assert code == 235, lines
        assert c.cmd(f"MAIL FROM:<{ALICE}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        code, lines = c.cmd("RCPT TO:<nobody@example.com>")
        assert_reply(lines, 550, "5.1.1", "unknown local user")
        assert c.cmd("DATA")[0] == 354
        code, lines = c.cmd("Subject: mail log\r\nFrom: <alice@example.com>\r\n\r\nhello log\r\n.")
        assert code == 250, lines
        m = re.search(r"queued as (\S+)", lines[-1])
        assert m, lines
        queue_id = m.group(1)
        assert c.cmd("QUIT")[0] == 221

    session = session_of(b, "connect", client)
    evs = session_events(b, session)
    names = [e["event"] for e in evs]
    want = ["connect", "tls established", "auth failed", "auth", "mail from", "rcpt accepted", "rcpt refused",
            "accepted", "disconnect"]
    assert in_order(names, want), f"session events {names}, want in order {want}"
    for e in evs:
        assert e.get("client") == client, e["_raw"]
        assert e.get("listener") == f"{IP2}:{P}", e["_raw"]
        assert e.get("proto") == "smtp", e["_raw"]

    failed = one(evs, "auth failed")
    assert failed.get("user") == ALICE and failed.get("service") == "smtp", failed["_raw"]
    ok = one(evs, "auth")
    assert ok.get("result") == "ok" and ok.get("user") == ALICE, ok["_raw"]
    mail = one(evs, "mail from")
    assert ALICE in mail["_raw"], mail["_raw"]
    acc = one(evs, "rcpt accepted")
    assert ALICE in acc["_raw"], acc["_raw"]
    ref = one(evs, "rcpt refused")
    assert ref.get("code") == "550", ref["_raw"]
    assert ref.get("text"), ref["_raw"]
    assert "nobody@example.com" in ref["_raw"], ref["_raw"]
    accepted = one(evs, "accepted")
    assert accepted.get("queue") == queue_id, (accepted["_raw"], queue_id)
    assert queue_id.startswith(session + "."), f"queue id {queue_id} is not SESSIONID.N for session {session}"
    assert accepted.get("rcpts") == "1", accepted["_raw"]
    assert accepted.get("from") == ALICE, accepted["_raw"]
    assert (accepted.get("size") or "").isdigit() and int(accepted["size"]) > 0, accepted["_raw"]
    assert re.fullmatch(r"tlsv1\.[23]", (accepted.get("tls") or "").lower()), f"tls= after STARTTLS: {accepted['_raw']}"
    assert accepted.get("user") == ALICE, accepted["_raw"]
    disc = one(evs, "disconnect")
    assert (disc.get("messages"), disc.get("rcpt_accepted"), disc.get("rcpt_refused")) == ("1", "1", "1"), disc["_raw"]

    files = wait_maildir_count(b, 1)
    assert len(files) == 1, files
    text = files[0].read_text(errors="replace")
    rec = re.search(r"^Received:.*?(?=^\S)", text, re.S | re.M)
    assert rec, text[:1000]
    assert re.search(rf"\bid {re.escape(queue_id)}\b", " ".join(rec.group(0).split())), rec.group(0)

    lines = server_lines(b)
    bad = [l for l in lines if not l.startswith("=====")]
    unparsed = []
    for l in bad:
        try:
            obj = json.loads(l)
            assert isinstance(obj, dict)
        except (ValueError, AssertionError):
            unparsed.append(l)
    assert not unparsed, "lines that are not JSON objects with --log-format json:\n" + "\n".join(unparsed[:10])
    whole = "\n".join(lines)
    for secret in (WRONG_PW, ALICE_PW, plain(ALICE, WRONG_PW), plain(ALICE, ALICE_PW), ADMIN_PASSWORD):
        assert secret not in whole, f"a password is in the log: {secret!r}"


# --------------------------------------------------------------------------- text format


def test_text_format_session_lines(make_mail_server):
    """Default text format: `TIME LEVEL EVENT key=value...`, session lines carry session= and
    client= (and listener=, proto=); connect and disconnect of one session share its id."""
    b = make_mail_server()
    P = create_port(b, "SMTP", "smtp", "none", assigned=[IP2])["port"]
    assert b.wait_listener(IP2, P, timeout=5) is not None
    client = "127.0.0.32"
    since = log_size(b)
    with RawSMTP(IP2, P, source=client) as c:
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        assert c.cmd("MAIL FROM:<bob@remote.test>")[0] == 250
        assert c.cmd("RCPT TO:<nobody@example.com>")[0] == 550
        assert c.cmd("QUIT")[0] == 221
    session = session_of(b, "connect", client, since)
    evs = session_events(b, session)
    assert in_order([e["event"] for e in evs], ["connect", "mail from", "rcpt refused", "disconnect"]), \
        [e["_raw"] for e in evs]
    for e in evs:
        raw = e["_raw"]
        assert TIME_RE.match(raw), raw
        assert f"session={session}" in raw and f"client={client}" in raw, raw
        assert f"listener={IP2}:{P}" in raw and "proto=smtp" in raw, raw
        assert not raw.lstrip().startswith("{"), raw
    connect = evs[0]["_raw"]
    assert re.match(rf"^\S+ \S+ connect .*session={re.escape(session)} .*client={re.escape(client)}\b", connect), connect
    disc = one(evs, "disconnect")
    assert disc.get("messages") == "0" and disc.get("rcpt_refused") == "1", disc["_raw"]


def test_log_level_warning_hides_info(make_mail_server):
    """--log-level warning: the server starts and serves, and nothing below warning is logged
    (an ordinary session's connect/disconnect are info)."""
    b = make_mail_server("--log-level", "warning")
    P = create_port(b, "SMTP", "smtp", "none", assigned=[IP2])["port"]
    assert b.wait_listener(IP2, P, timeout=5) is not None
    since = log_size(b)
    with RawSMTP(IP2, P, source="127.0.0.33") as c:
        assert c.cmd("QUIT")[0] == 221
    time.sleep(0.5)
    evs = [e for e in log_events(b, since) if e.get("client") == "127.0.0.33"]
    assert not [e for e in evs if e.get("event") in ("connect", "disconnect")], [e["_raw"] for e in evs]
    below = ("trace", "debug", "info", "notice")
    assert not [e for e in log_events(b) if e.get("level") in below], \
        [e["_raw"] for e in log_events(b) if e.get("level") in below][:5]


# --------------------------------------------------------------------------- admin changes


def test_admin_changes_logged(make_mail_server):
    """A POST of a port logs `admin change` with the request and its status; a refused one
    (409 port conflict) logs `admin change refused` with the request and 409; a user's
    password in a request body is never logged."""
    b = make_mail_server()
    since = log_size(b)
    p = create_port(b, "Logged", "smtp", "none", assigned=[IP2])
    ev = wait_log_event(b, lambda e: e.get("event") == "admin change" and "/api/v1/ports" in e.get("request", ""),
                        since=since)
    assert ev is not None, "no `admin change` line for POST /api/v1/ports:\n" + b.log_tail(20)
    assert ev.get("request") == "POST /api/v1/ports", ev["_raw"]
    assert ev.get("status") in ("200", "201"), ev["_raw"]
    assert ev.get("client") == "127.0.0.1", ev["_raw"]

    since = log_size(b)
    st, js = b.api("POST", "/api/v1/ports", {"name": "Clash", "protocol": "smtp", "encryption": "none",
                                             "port": p["port"], "assignedTo": [IP2]})
    assert st == 409, (st, js)
    ev = wait_log_event(b, lambda e: e.get("event") == "admin change refused", since=since)
    assert ev is not None, "no `admin change refused` line for a 409:\n" + b.log_tail(20)
    assert ev.get("request") == "POST /api/v1/ports" and ev.get("status") == "409", ev["_raw"]
    assert not [e for e in log_events(b, since) if e.get("event") == "admin change"], \
        "a refused change was also logged as a change"

    secret = "User-Secret-Pw-31337"
    since = log_size(b)
    b.ok("POST", "/api/v1/domains/example.com/users", {"name": "carol", "password": secret}, statuses=(200, 201))
    ev = wait_log_event(b, lambda e: e.get("event") == "admin change" and "/users" in e.get("request", ""),
                        since=since)
    assert ev is not None, b.log_tail(20)
    assert secret not in b.log and ADMIN_PASSWORD not in b.log
