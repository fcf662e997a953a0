"""Outbound delivery (issue 6; interface in the spec the implementation follows):
authenticated submission to remote recipients is queued and delivered by MX (through a local
dnsmasq given with `--dns`) to aiosmtpd receivers on 127.0.0.x / ::1, all on the port given
with `--mx-port`; the source address and EHLO name follow the sender domain's `outbound`
setting; 4xx is retried, 5xx / null MX / NXDOMAIN bounce with an RFC 3464 DSN in the
sender's Maildir; DKIM (rsa-sha256 + ed25519-sha256) verifies with dkimpy against the
records served by dnsmasq; the queue API/CLI, static routes, metrics and the `delivery` log
line; nothing acknowledged is lost across `kill -9`.
"""
from __future__ import annotations

import email
import email.utils
import email.policy
import json
import os
import re
import signal
import smtplib
import threading
import time
import uuid

import pytest

from conftest import (ADMIN_PASSWORD, ALICE, ALICE_PW, BERTH_BIN, CLIENT_NAME, IP2, IP3, SERVER_HOSTNAME, add_ip,
                      add_ips, create_port, error_of, log_events, log_size, maildir_new, make_cert, run,
                      set_settings, setup_domain, tls_client_context, wait_connect_state, wait_log_event)
from outbound import (DNSServer, LoAddress, Receiver, ScriptedSMTP, can_bind, dkim_signatures, dkim_verify_all, free_port_on,
                      ipv6_loopback_usable, require_ipv6)

BOB = "bob@example.org"
BOB_PW = "bob-pw-456"

OUT1, OUT1_NAME = "127.0.0.5", "out1.example.com"
OUT2, OUT2_NAME = "127.0.0.6", "out2.example.org"
DOMAIN_IP = "127.0.0.7"          # example.org's ipAddress in `domain` mode; no hostname in the IP list
ROTATE_GONE = "198.18.0.6"       # added to lo, saved, removed: binding it fails

MX1 = "127.0.0.11"   # example.net's MX (STARTTLS offered)
MX2 = "127.0.0.12"
MX3 = "127.0.0.13"
AHOST = "127.0.0.14"  # amx.test: no MX, an A record
DUAL4 = "127.0.0.15"  # dual.test MX host's A; its AAAA is ::1
DEAD = "127.0.0.21"   # nothing listens here: connections refused
ROUTE = "127.0.0.17"  # static route target, on its own port
SMALL = "127.0.0.18"  # small.test's MX: advertises SIZE 4000
SMALL_LIMIT = 4000
INJECT = "127.0.0.19"  # inject.test's MX: a scripted server that injects bytes after STARTTLS's 220
OLDSMTP = "127.0.0.20"  # helo.test's MX: a scripted server without EHLO

DELIVER_TIMEOUT = 20.0


# --------------------------------------------------------------------------- the world: DNS + receivers


class Policy:
    """Replies the receivers give, chosen by the recipient's local part:
    `defer-*` → 450 on RCPT until released; `datadefer-*` → 451 after DATA until released;
    `reject-*` → 550 on RCPT; anything else accepted."""

    def __init__(self):
        self.released: set[str] = set()

    def reset(self):
        self.released.clear()

    def rcpt(self, address: str):
        local = address.split("@", 1)[0].lower()
        if local.startswith("defer-") and address.lower() not in self.released:
            return "450 4.2.0 Mailbox busy, try later"
        if local.startswith("reject-"):
            return "550 5.1.1 No such user here"
        return None

    def data(self, envelope):
        for r in envelope.rcpt_tos:
            if r.split("@", 1)[0].lower().startswith("datadefer-") and r.lower() not in self.released:
                return "451 4.3.0 Temporary local problem"
        return None


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outbound-world")
    v6 = ipv6_loopback_usable()
    mx_port = free_port_on([MX1, MX2, MX3, AHOST, DUAL4, DEAD, SMALL, INJECT, OLDSMTP] + (["::1"] if v6 else []))
    dns = DNSServer(tmp / "dns")
    dns.mx("example.net", "mx1.example.net", 10).host("mx1.example.net", MX1)
    # pref.test: the lowest preference refuses connections, the next one takes the mail
    dns.mx("pref.test", "mx3.pref.test", 30).mx("pref.test", "dead.pref.test", 5).mx("pref.test", "mx2.pref.test", 20)
    dns.host("dead.pref.test", DEAD).host("mx2.pref.test", MX2).host("mx3.pref.test", MX3)
    # order.test: listed highest first; the lowest preference must be used
    dns.mx("order.test", "mx3.order.test", 50).mx("order.test", "mx2.order.test", 10)
    dns.host("mx3.order.test", MX3).host("mx2.order.test", MX2)
    dns.host("amx.test", AHOST)                                   # no MX: A fallback
    dns.null_mx("nullmx.test")                                   # RFC 7505
    dns.mx("dual.test", "mx.dual.test", 10).host("mx.dual.test", DUAL4, "::1")
    dns.mx("v6only.test", "mx.v6only.test", 10).host("mx.v6only.test", None, "::1")
    dns.mx("routed.test", "mx1.example.net", 10)
    dns.mx("small.test", "mx.small.test", 10).host("mx.small.test", SMALL)
    dns.mx("inject.test", "mx.inject.test", 10).host("mx.inject.test", INJECT)
    dns.mx("helo.test", "mx.helo.test", 10).host("mx.helo.test", OLDSMTP)
    dns.start()
    cert, key = make_cert(tmp, "mx1.example.net")
    rx = {
        "mx1": Receiver(MX1, mx_port, tls=(cert, key), hostname="mx1.example.net"),
        "mx2": Receiver(MX2, mx_port, hostname="mx2.test"),
        "mx3": Receiver(MX3, mx_port, hostname="mx3.test"),
        "a": Receiver(AHOST, mx_port, hostname="amx.test"),
        "dual4": Receiver(DUAL4, mx_port, hostname="mx.dual.test"),
        "route": Receiver(ROUTE, free_port_on([ROUTE]), hostname="route.test"),
        "small": Receiver(SMALL, mx_port, hostname="mx.small.test", data_size_limit=SMALL_LIMIT),
    }
    if v6:
        rx["v6"] = Receiver("::1", mx_port, hostname="mx6.test")
    policy = Policy()
    started = []
    scripted = ScriptedSMTP(INJECT, mx_port).start()
    old = ScriptedSMTP(OLDSMTP, mx_port, ehlo=False).start()
    try:
        for r in rx.values():
            r.rcpt_reply = policy.rcpt
            r.data_reply = policy.data
            r.start()
            started.append(r)
        w = type("World", (), {})()
        w.dns, w.rx, w.mx_port, w.policy, w.v6, w.tmp = dns, rx, mx_port, policy, v6, tmp
        w.scripted, w.old = scripted, old
        yield w
    finally:
        scripted.stop()
        old.stop()
        for r in started:
            r.stop()
        dns.stop()


@pytest.fixture
def ob(world, make_server):
    """A Berth using the world's DNS and MX port, with: 127.0.0.2/.3; out1 (127.0.0.5,
    out1.example.com), out2 (127.0.0.6, out2.example.org) and 127.0.0.7 in the IP list;
    example.com/alice and example.org/bob; a submission port (implicit TLS + AUTH) on
    127.0.0.2 and an MX port (no TLS) on 127.0.0.3; retries after 1 s, at most 2 s apart."""
    world.policy.reset()
    b = make_server(extra_args=["--dns", world.dns.address, "--mx-port", str(world.mx_port)])
    add_ips(b)
    add_ip(b, OUT1, hostname=OUT1_NAME)
    add_ip(b, OUT2, hostname=OUT2_NAME)
    add_ip(b, DOMAIN_IP)
    setup_domain(b, "example.com", "alice", ALICE_PW)
    setup_domain(b, "example.org", "bob", BOB_PW)
    b.SUB = create_port(b, "Submission", "smtp", "ssl", assigned=[IP2])["port"]
    b.MX = create_port(b, "MX", "smtp", "none", assigned=[IP3])["port"]
    assert wait_connect_state(IP2, b.SUB, "ok", deadline=5) == "ok"
    assert wait_connect_state(IP3, b.MX, "ok", deadline=5) == "ok"
    set_settings(b, queueRetryInitialSeconds=1, queueRetryMaxSeconds=2)
    b.world = world
    return b


# --------------------------------------------------------------------------- helpers


def set_outbound(b, domain: str, ipv4=("system", []), ipv6=("system", [])) -> dict:
    body = {"outbound": {"ipv4": {"mode": ipv4[0], "addresses": list(ipv4[1])},
                         "ipv6": {"mode": ipv6[0], "addresses": list(ipv6[1])}}}
    return b.ok("PUT", f"/api/v1/domains/{domain}", body)


def token() -> str:
    return uuid.uuid4().hex[:16]


def message(frm: str, to: list[str], tok: str, subject: str | None = None, body: str | None = None) -> bytes:
    subject = subject or f"outbound {tok}"
    body = body if body is not None else f"hello from the outbound test\r\ntoken {tok}\r\n"
    return (f"From: <{frm}>\r\nTo: {', '.join('<%s>' % t for t in to)}\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate()}\r\nMessage-ID: <{tok}@test.local>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()


def connect_submission(b, user: str = ALICE, pw: str = ALICE_PW) -> smtplib.SMTP_SSL:
    s = smtplib.SMTP_SSL(IP2, b.SUB, local_hostname=CLIENT_NAME, timeout=30, context=tls_client_context())
    s.login(user, pw)
    return s


def send_on(s: smtplib.SMTP, frm: str, to: list[str], data: bytes) -> str:
    """One transaction; returns the queue id from `250 ... queued as ID`."""
    code, msg = s.mail(frm)
    assert code == 250, (code, msg)
    for r in to:
        code, msg = s.rcpt(r)
        assert code == 250, (r, code, msg)
    code, msg = s.data(data)
    assert code == 250, (code, msg)
    m = re.search(rb"queued as (\S+)", msg)
    assert m, msg
    return m.group(1).decode()


def submit(b, to: list[str], tok: str | None = None, user: str = ALICE, pw: str = ALICE_PW,
           frm: str | None = None, data: bytes | None = None) -> tuple[str, str]:
    tok = tok or token()
    frm = user if frm is None else frm
    with connect_submission(b, user, pw) as s:
        qid = send_on(s, frm, to, data or message(frm or "mailer-daemon@example.com", to, tok))
    return qid, tok


def wait_for(pred, timeout: float, step: float = 0.1, what: str = ""):
    """Poll pred() until truthy (returned) or the deadline (returns the last value)."""
    end = time.monotonic() + timeout
    v = None
    for _ in range(100000):
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)
    return v


def queue(b) -> list[dict]:
    js = b.ok("GET", "/api/v1/queue")
    assert isinstance(js, list), f"GET /api/v1/queue should be a JSON array: {js!r}"
    return js


def queued(b, qid: str) -> dict | None:
    for m in queue(b):
        if m.get("id") == qid:
            return m
    return None


def wait_dequeued(b, qid: str, timeout: float = DELIVER_TIMEOUT) -> bool:
    return bool(wait_for(lambda: queued(b, qid) is None, timeout, step=0.2))


def received(rx: Receiver, tok: str, n: int = 1, timeout: float = DELIVER_TIMEOUT):
    return rx.wait_messages(n, timeout=timeout, pred=lambda m: tok.encode() in m.content)


def dsns(b, user: str = "alice", domain: str = "example.com") -> list[email.message.Message]:
    out = []
    for p in maildir_new(b, domain=domain, user=user):
        msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.compat32)
        if msg.get_content_type() == "multipart/report":
            msg.path = p
            out.append(msg)
    return out


def wait_dsns(b, n: int, timeout: float = DELIVER_TIMEOUT, **kw) -> list:
    got = []
    end = time.monotonic() + timeout
    for _ in range(10000):
        got = dsns(b, **kw)
        if len(got) >= n or time.monotonic() > end:
            break
        time.sleep(0.1)
    return got


def check_dsn(msg, rcpt: str, action: str = "failed", status: str = r"5\.\d{1,3}\.\d{1,3}") -> str:
    """Assert an RFC 3464 DSN for `rcpt` (CONTRACT-NOTES "Outbound delivery": text,
    message/delivery-status, text/rfc822-headers; sent from <>); return its whole text.
    `status` is a regex for the Status: field."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert (msg.get_param("report-type") or "").lower() == "delivery-status", msg.get("Content-Type")
    parts = [p.get_content_type() for p in msg.walk()]
    assert "message/delivery-status" in parts, parts
    assert "text/rfc822-headers" in parts or "message/rfc822" in parts, f"no copy of the original headers: {parts}"
    rp = msg.get("Return-Path")
    assert rp is None or rp.strip() == "<>", f"a DSN is sent from the null sender, Return-Path: {rp}"
    text = msg.as_string()
    assert re.search(rf"(?im)^Final-Recipient:\s*rfc822;\s*<?{re.escape(rcpt)}>?\s*$", text), text[:3000]
    assert re.search(rf"(?im)^Action:\s*{action}\s*$", text), text[:3000]
    assert re.search(rf"(?im)^Status:\s*{status}\s*$", text), f"want Status {status}:\n{text[:3000]}"
    return text


def wait_delivery_events(b, pred, qid: str | None = None, since: int | None = None,
                         timeout: float = 5.0) -> list[dict]:
    """Poll the `delivery` lines (of `qid`) until pred(lines) holds; return the last lines read.
    The receiver records a message before Berth has read its 250 and logged it."""
    evs = wait_for(lambda: (lambda e: e if pred(e) else None)(delivery_events(b, qid, since)), timeout)
    return evs or delivery_events(b, qid, since)


def delivery_events(b, qid: str | None = None, since: int | None = None) -> list[dict]:
    return [e for e in log_events(b, since) if e.get("event") == "delivery" and (qid is None or e.get("queue") == qid)]


def metrics(b) -> str:
    st, text = b.api("GET", "/metrics")
    assert st == 200, st
    return text


def metric_value(text: str, name: str, **labels) -> float | None:
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def cli(b, *args, timeout: float = 60):
    env = dict(os.environ)
    env["BERTH_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    p = run([str(BERTH_BIN), *args, "--server", b.admin_url], timeout=timeout, env=env)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def cli_ok(b, *args):
    p = cli(b, *args)
    assert p.returncode == 0, f"berth {' '.join(args)}: rc={p.returncode}\nstdout:\n{p.out}\nstderr:\n{p.err}"
    return p


# --------------------------------------------------------------------------- source address per domain


def test_address_mode_two_domains_two_source_ips(ob):
    """Each sender domain's mail leaves from its own `address`, with that IP's hostname as EHLO."""
    b, mx1 = ob, ob.world.rx["mx1"]
    set_outbound(b, "example.com", ipv4=("address", [OUT1]))
    set_outbound(b, "example.org", ipv4=("address", [OUT2]))
    q1, t1 = submit(b, ["carol@example.net"])
    q2, t2 = submit(b, ["dave@example.net"], user=BOB, pw=BOB_PW)
    m1, m2 = received(mx1, t1), received(mx1, t2)
    assert m1 and m2, f"not delivered: {t1}:{bool(m1)} {t2}:{bool(m2)}\n{b.log_tail(30)}"
    m1, m2 = m1[0], m2[0]
    assert (m1.peer, m1.helo) == (OUT1, OUT1_NAME), f"example.com mail came from {m1.peer} EHLO {m1.helo}"
    assert (m2.peer, m2.helo) == (OUT2, OUT2_NAME), f"example.org mail came from {m2.peer} EHLO {m2.helo}"
    assert m1.mail_from == ALICE and m1.rcpt_tos == ["carol@example.net"], (m1.mail_from, m1.rcpt_tos)
    assert m2.mail_from == BOB and m2.rcpt_tos == ["dave@example.net"], (m2.mail_from, m2.rcpt_tos)
    assert m1.esmtp, "EHLO expected, not HELO"
    assert m1.tls, "mx1 offers STARTTLS: opportunistic TLS expected"
    assert wait_dequeued(b, q1) and wait_dequeued(b, q2), queue(b)


def test_system_mode_lets_the_os_choose(ob):
    """`system`: no bind; from loopback the kernel picks 127.0.0.1, which has no hostname in the
    IP list and belongs to no domain: EHLO is the server hostname."""
    b, mx1 = ob, ob.world.rx["mx1"]
    set_outbound(b, "example.com", ipv4=("system", []))
    _, t = submit(b, ["erin@example.net"])
    m = received(mx1, t)
    assert m, b.log_tail(30)
    assert m[0].peer == "127.0.0.1", m[0].peer
    assert m[0].helo == SERVER_HOSTNAME, m[0].helo


def test_domain_mode_uses_the_domains_ip_address(ob):
    """`domain`: the source is the domain's ipAddress; that IP has no hostname in the IP list, so
    the EHLO name is the domain whose ipAddress it is."""
    b, mx1 = ob, ob.world.rx["mx1"]
    b.ok("PUT", "/api/v1/domains/example.org",
         {"ipAddress": DOMAIN_IP, "outbound": {"ipv4": {"mode": "domain", "addresses": []},
                                               "ipv6": {"mode": "system", "addresses": []}}})
    _, t = submit(b, ["frank@example.net"], user=BOB, pw=BOB_PW)
    m = received(mx1, t)
    assert m, b.log_tail(30)
    assert (m[0].peer, m[0].helo) == (DOMAIN_IP, "example.org"), (m[0].peer, m[0].helo)


def test_rotate_falls_over_to_the_next_address(ob):
    """`rotate` [gone, 127.0.0.6]: the first address is on lo when saved, then removed so
    binding it fails; the mail leaves from the second, with its EHLO name."""
    b, mx1 = ob, ob.world.rx["mx1"]
    lo = LoAddress(ROTATE_GONE)
    try:
        set_outbound(b, "example.com", ipv4=("rotate", [ROTATE_GONE, OUT2]))
        lo.remove()
        assert not can_bind(ROTATE_GONE)
        since = log_size(b)
        q1, t1 = submit(b, ["gina@example.net"])
        q2, t2 = submit(b, ["hank@example.net"])
        for q, t in ((q1, t1), (q2, t2)):
            m = received(mx1, t)
            assert m, f"{q} not delivered via the second address:\n{b.log_tail(30)}"
            assert (m[0].peer, m[0].helo) == (OUT2, OUT2_NAME), (m[0].peer, m[0].helo)
        evs = wait_delivery_events(b, lambda e: {q1, q2} <= {x.get("queue") for x in e if x.get("status") == "sent"},
                                   since=since)
        sent = [e for e in evs if e.get("status") == "sent"]
        assert {e.get("source") for e in sent} == {OUT2}, [e["_raw"] for e in sent]
    finally:
        lo.cleanup()


def test_outbound_address_not_present_is_refused_at_save(ob):
    b = ob
    for family, addr in (("ipv4", "192.0.2.55"), ("ipv6", "2001:db8::55")):
        for mode in ("address", "rotate"):
            addrs = [addr] if mode == "address" else ([OUT1, addr] if family == "ipv4" else [addr])
            body = {"outbound": {family: {"mode": mode, "addresses": addrs}}}
            st, js = b.api("PUT", "/api/v1/domains/example.com", body)
            # CONTRACT-NOTES: 422 validation_failed (the API's status for a value it refuses)
            assert st == 422, f"{body} -> {st} {js}"
            assert error_of(js).get("code") == "validation_failed", js
            assert error_of(js).get("field") == f"outbound.{family}", js
    st, js = b.api("POST", "/api/v1/domains",
                   {"name": "new.test", "outbound": {"ipv4": {"mode": "address", "addresses": ["192.0.2.56"]}}})
    assert st == 422 and error_of(js).get("field") == "outbound.ipv4", (st, js)
    assert b.api("GET", "/api/v1/domains/new.test")[0] == 404
    # a present address is accepted
    set_outbound(b, "example.com", ipv4=("address", [OUT1]))


# --------------------------------------------------------------------------- MX selection


def test_mx_lowest_preference_first(ob):
    b, rx = ob, ob.world.rx
    _, t = submit(b, ["ivan@order.test"])
    m = received(rx["mx2"], t)
    assert m, f"order.test: not delivered to its preference-10 MX {MX2}:\n{b.log_tail(30)}"
    assert not rx["mx3"].with_token(t), "delivered to the preference-50 MX as well"


def test_mx_falls_to_the_next_when_the_first_refuses(ob):
    b, rx = ob, ob.world.rx
    since = log_size(b)
    q, t = submit(b, ["judy@pref.test"])
    m = received(rx["mx2"], t)
    assert m, f"pref.test: not delivered to the second MX after the first refused:\n{b.log_tail(30)}"
    assert not rx["mx3"].with_token(t), "the third MX was used although the second accepted"
    evs = wait_delivery_events(b, lambda e: any(x.get("status") == "sent" for x in e), q, since)
    sent = [e for e in evs if e.get("status") == "sent"]
    assert sent and sent[-1].get("ip") == MX2 and sent[-1].get("mx") in ("mx2.pref.test", "mx2.pref.test."), \
        [e["_raw"] for e in delivery_events(b, q, since)]


def test_a_fallback_when_no_mx(ob):
    b, rx = ob, ob.world.rx
    _, t = submit(b, ["kim@amx.test"])
    assert received(rx["a"], t), f"amx.test has no MX: its A record {AHOST} should be used\n{b.log_tail(30)}"


@pytest.mark.parametrize("rcpt,status", [("leo@nullmx.test", r"5\.1\.10"), ("mia@nxdomain.test", r"5\.1\.2")],
                         ids=["null-mx", "nxdomain"])
def test_null_mx_and_nxdomain_bounce_with_dsn(ob, rcpt, status):
    b = ob
    since = log_size(b)
    q, t = submit(b, [rcpt])
    got = wait_dsns(b, 1)
    assert got, f"no DSN in alice's Maildir for {rcpt}:\n{b.log_tail(30)}"
    text = check_dsn(got[0], rcpt, status=status)
    assert t in text, "the DSN's text/rfc822-headers should carry the original headers"
    assert wait_dequeued(b, q), queued(b, q)
    ev = wait_delivery_events(b, lambda e: any(x.get("status") == "bounced" for x in e), q, since)
    assert ev and ev[-1].get("status") == "bounced", [e["_raw"] for e in ev]
    assert wait_log_event(b, lambda e: e.get("event") == "dsn", since=since, timeout=5), "no `dsn` log line"


def test_dns_failure_defers_then_delivers(ob):
    """DNS server down: a deferral (pending, lastError), never a bounce; back up: delivered."""
    b, w = ob, ob.world
    mx1 = w.rx["mx1"]
    set_settings(b, queueRetryInitialSeconds=3600, queueRetryMaxSeconds=3600)
    w.dns.stop()
    try:
        q, t = submit(b, ["gus@example.net"])
        m = wait_for(lambda: (lambda x: x if x and x["recipients"][0]["attempts"] >= 1 else None)(queued(b, q)),
                     60, step=0.25)
        assert m, f"no attempt recorded with DNS down: {queued(b, q)}\n{b.log_tail(20)}"
        r = m["recipients"][0]
        assert r["state"] == "pending" and r["lastError"], r
        assert not dsns(b), "a DNS failure is temporary: no DSN"
    finally:
        w.dns.start()
    assert b.api("POST", f"/api/v1/queue/{q}/retry")[0] == 200
    assert received(mx1, t), f"not delivered once DNS answers again:\n{b.log_tail(20)}"


# --------------------------------------------------------------------------- disabled families


def test_disabled_ipv6_never_connects_over_ipv6(ob):
    require_ipv6()
    b, rx = ob, ob.world.rx
    v6_before = len(rx["v6"].connections)
    set_outbound(b, "example.com", ipv4=("system", []), ipv6=("disabled", []))
    toks = [submit(b, [f"nick{i}@dual.test"])[1] for i in range(3)]
    for t in toks:
        assert received(rx["dual4"], t), f"dual.test over IPv4 ({DUAL4}) expected:\n{b.log_tail(30)}"
    assert len(rx["v6"].connections) == v6_before, f"ipv6 disabled, yet {rx['v6'].connections[v6_before:]} connected"
    # the counterpart: ipv4 disabled → the AAAA (::1) is used; so the check above is not vacuous
    set_outbound(b, "example.org", ipv4=("disabled", []), ipv6=("system", []))
    _, t = submit(b, ["olga@dual.test"], user=BOB, pw=BOB_PW)
    m = received(rx["v6"], t)
    assert m and m[0].peer == "::1", f"ipv4 disabled: mail for dual.test should go over ::1\n{b.log_tail(30)}"
    assert not rx["dual4"].with_token(t)


def test_mx_reachable_only_over_a_disabled_family_defers(ob):
    require_ipv6()
    b, rx = ob, ob.world.rx
    v6_before = len(rx["v6"].connections)
    set_outbound(b, "example.com", ipv4=("system", []), ipv6=("disabled", []))
    q, t = submit(b, ["paul@v6only.test"])

    def deferred():
        m = queued(b, q)
        if not m:
            return None
        r = m["recipients"][0]
        return m if r.get("attempts", 0) >= 1 and r.get("lastError") else None

    m = wait_for(deferred, DELIVER_TIMEOUT, step=0.2)
    assert m, f"no deferred attempt recorded: {queued(b, q)}\n{b.log_tail(30)}"
    r = m["recipients"][0]
    assert r["state"] == "pending" and r["address"] == "paul@v6only.test", r
    time.sleep(2.5)  # a retry or two (1 s, 2 s) happen meanwhile
    m = queued(b, q)
    assert m and m["recipients"][0]["state"] == "pending", f"must stay queued, not bounce: {m}"
    assert not dsns(b), "a disabled family is a deferral, not a bounce"
    assert len(rx["v6"].connections) == v6_before, rx["v6"].connections[v6_before:]
    assert not rx["v6"].with_token(t)


# --------------------------------------------------------------------------- retries and bounces


@pytest.mark.parametrize("step", ["rcpt", "data"])
def test_4xx_is_retried_then_delivered(ob, step):
    b, w = ob, ob.world
    mx1 = w.rx["mx1"]
    rcpt = f"{'defer' if step == 'rcpt' else 'datadefer'}-{token()}@example.net"
    since = log_size(b)
    before = len(mx1.refused)
    q, t = submit(b, [rcpt])
    refused = mx1.wait_refused(before + 2, timeout=DELIVER_TIMEOUT)
    mine = [a for a in refused[before:] if rcpt in a.arg]
    assert len(mine) >= 2, f"want the 4xx retried (2+ attempts), saw {len(mine)}:\n{b.log_tail(30)}"
    assert all(a.step == step for a in mine), mine
    m = queued(b, q)
    assert m is not None, "a deferred message stays in the queue"
    r = m["recipients"][0]
    assert r["state"] == "pending" and r["attempts"] >= 1 and r["lastError"], r
    assert ("450" if step == "rcpt" else "451") in r["lastError"], r["lastError"]
    w.policy.released.add(rcpt.lower())
    got = received(mx1, t)
    assert got, f"not delivered once the receiver accepts:\n{b.log_tail(30)}"
    assert wait_dequeued(b, q), queued(b, q)
    time.sleep(2.5)  # longer than the retry interval: a copy the queue did not count would come again
    copies = mx1.with_token(t)
    assert len(copies) == 1, (f"the receiver accepted the message {len(copies)} times (no crash in between): "
                              + "; ".join(e["_raw"] for e in delivery_events(b, q, since)))
    assert not dsns(b), "a 4xx followed by success must not produce a DSN"
    evs = delivery_events(b, q, since)
    statuses = [e.get("status") for e in evs]
    assert statuses.count("deferred") >= 2 and statuses[-1] == "sent", [e["_raw"] for e in evs]
    assert statuses.count("sent") == 1, [e["_raw"] for e in evs]


def test_5xx_bounces_with_dsn_and_leaves_the_queue(ob):
    b, mx1 = ob, ob.world.rx["mx1"]
    rcpt = f"reject-{token()}@example.net"
    ok_rcpt = "quinn@example.net"
    since = log_size(b)
    q, t = submit(b, [rcpt, ok_rcpt])
    got = wait_dsns(b, 1)
    assert got, f"no DSN after 550:\n{b.log_tail(30)}"
    text = check_dsn(got[0], rcpt, status=r"5\.1\.1")
    assert re.search(r"(?im)^Diagnostic-Code:\s*smtp;\s*550", text), "the DSN quotes the remote reply"
    assert re.search(rf"(?im)^Remote-MTA:\s*dns;\s*(mx1\.example\.net\.?|{re.escape(MX1)})\s*$", text), text[:3000]
    assert ok_rcpt not in re.findall(r"(?im)^Final-Recipient:\s*rfc822;\s*<?([^>\s]+)", text), \
        "the accepted recipient must not be reported as failed"
    assert received(mx1, t), "the other recipient is still delivered"
    assert wait_dequeued(b, q), queued(b, q)
    assert len([a for a in mx1.refused if a.arg == rcpt]) == 1, "a 5xx is not retried"
    evs = wait_delivery_events(b, lambda e: {(rcpt, "bounced"), (ok_rcpt, "sent")}
                               <= {(x.get("to"), x.get("status")) for x in e}, q, since)
    by = {(e.get("to"), e.get("status")) for e in evs}
    assert (rcpt, "bounced") in by and (ok_rcpt, "sent") in by, [e["_raw"] for e in evs]
    time.sleep(1.5)
    assert len(dsns(b)) == 1, "exactly one DSN"


def test_null_sender_gets_no_dsn(ob):
    b, mx1 = ob, ob.world.rx["mx1"]
    rcpt = f"reject-{token()}@example.net"
    tok = token()
    q, _ = submit(b, [rcpt], tok=tok, frm="", data=message("mailer-daemon@example.com", [rcpt], tok))
    refused = wait_for(lambda: [a for a in mx1.refused if a.arg == rcpt], DELIVER_TIMEOUT)
    assert refused, f"never attempted:\n{b.log_tail(30)}"
    assert wait_dequeued(b, q), queued(b, q)
    time.sleep(2)
    assert not dsns(b), "no DSN for a null sender"
    assert not maildir_new(b), maildir_new(b)


def test_delay_warning_once_then_expiry_bounce(ob):
    """queueDelayWarningSeconds: one "delayed" DSN while the recipient still waits;
    queueLifetimeSeconds: then a "failed" DSN and the message leaves the queue."""
    b = ob
    set_settings(b, queueDelayWarningSeconds=2, queueLifetimeSeconds=6)
    rcpt = f"defer-{token()}@example.net"
    q, _ = submit(b, [rcpt])
    got = wait_dsns(b, 1, timeout=15)
    assert got, f"no delay warning after 2 s of deferrals:\n{b.log_tail(30)}"
    check_dsn(got[0], rcpt, action="delayed", status=r"4\.\d{1,3}\.\d{1,3}")
    m = queued(b, q)
    assert m and m["recipients"][0]["state"] == "pending", "a delay warning does not end delivery"
    got = wait_dsns(b, 2, timeout=20)
    assert len(got) == 2, f"no expiry DSN after queueLifetimeSeconds:\n{b.log_tail(30)}"
    failed = [g for g in got if re.search(r"(?im)^Action:\s*failed", g.as_string())]
    assert len(failed) == 1, [g.as_string()[:500] for g in got]
    check_dsn(failed[0], rcpt, action="failed", status=r"4\.4\.7")
    assert wait_dequeued(b, q, timeout=5), queued(b, q)
    delayed = [g for g in dsns(b) if re.search(r"(?im)^Action:\s*delayed", g.as_string())]
    assert len(delayed) == 1, "exactly one delay warning"


def test_size_limit_of_the_receiver_is_respected(ob):
    """The receiver advertises SIZE 4000: a larger message is not sent to it (no DATA) and
    bounces back to the sender; a small one goes through."""
    b, rs = ob, ob.world.rx["small"]
    t_big = token()
    big = message(ALICE, ["uma@small.test"], t_big, body=f"token {t_big}\r\n" + ("x" * 76 + "\r\n") * 100)
    q, _ = submit(b, ["uma@small.test"], data=big)
    got = wait_dsns(b, 1)
    assert got, f"no DSN for a message over the receiver's SIZE:\n{b.log_tail(30)}"
    check_dsn(got[0], "uma@small.test", status=r"5\.3\.4")
    assert not rs.with_token(t_big)
    assert wait_dequeued(b, q)
    _, t = submit(b, ["vic@small.test"])
    assert received(rs, t), b.log_tail(30)
    assert any(o.upper().startswith("SIZE=") for o in received(rs, t)[0].mail_options), \
        "MAIL FROM should declare SIZE= to a server that offers SIZE"


def test_deferred_message_survives_a_restart(ob):
    """A deferred recipient is still queued after a clean restart, with its attempts, and is
    delivered once the receiver accepts."""
    b, w = ob, ob.world
    mx1 = w.rx["mx1"]
    set_settings(b, queueRetryInitialSeconds=2, queueRetryMaxSeconds=2)
    rcpt = f"defer-{token()}@example.net"
    q, t = submit(b, [rcpt])
    m = wait_for(lambda: (lambda x: x if x and x["recipients"][0]["attempts"] >= 1 else None)(queued(b, q)),
                 DELIVER_TIMEOUT)
    assert m, queue(b)
    b.restart()
    m2 = queued(b, q)
    assert m2 is not None, f"{q} lost across a restart: {queue(b)}"
    assert m2["sender"] == ALICE and m2["size"] == m["size"] and m2["receivedAt"] == m["receivedAt"], (m, m2)
    r = m2["recipients"][0]
    assert r["address"] == rcpt and r["state"] == "pending" and r["attempts"] >= m["recipients"][0]["attempts"], r
    w.policy.released.add(rcpt.lower())
    assert received(mx1, t), f"not delivered after the restart:\n{b.log_tail(20)}"
    assert wait_dequeued(b, q)


def test_one_message_to_several_domains(ob):
    """Recipients in three domains: each destination gets one copy with only its recipients;
    one rejected recipient bounces alone."""
    b, rx = ob, ob.world.rx
    bad = f"reject-{token()}@example.net"
    rcpts = ["cy@example.net", "di@example.net", bad, "ed@order.test", "fi@amx.test"]
    q, t = submit(b, rcpts)
    m1, m2, ma = received(rx["mx1"], t), received(rx["mx2"], t), received(rx["a"], t)
    assert m1 and m2 and ma, (bool(m1), bool(m2), bool(ma), b.log_tail(20))
    assert sorted(m1[0].rcpt_tos) == ["cy@example.net", "di@example.net"], m1[0].rcpt_tos
    assert m2[0].rcpt_tos == ["ed@order.test"] and ma[0].rcpt_tos == ["fi@amx.test"], (m2[0].rcpt_tos, ma[0].rcpt_tos)
    assert len(m1) == 1, "one copy for the two example.net recipients"
    got = wait_dsns(b, 1)
    assert got, b.log_tail(20)
    text = check_dsn(got[0], bad, status=r"5\.1\.1")
    finals = re.findall(r"(?im)^Final-Recipient:\s*rfc822;\s*<?([^>\s]+)", text)
    assert finals == [bad], finals
    assert wait_dequeued(b, q)


# --------------------------------------------------------------------------- content on the wire


def test_local_and_remote_in_one_transaction_and_content_intact(ob):
    b, mx1 = ob, ob.world.rx["mx1"]
    t = token()
    body = f"token {t}\r\n.leading dot line\r\n..two dots\r\n.\r\nutf-8 body: caf\u00e9 \u2603\r\n"
    data = message(ALICE, [ALICE, "rita@example.net"], t, body=body)
    with connect_submission(b) as s:
        q = send_on(s, ALICE, [ALICE, "rita@example.net"], data)
    m = received(mx1, t)
    assert m, b.log_tail(30)
    assert m[0].rcpt_tos == ["rita@example.net"], m[0].rcpt_tos
    assert body.encode() in m[0].content, "dot-stuffing or 8-bit content damaged on the way"
    assert "BODY=8BITMIME" in [o.upper() for o in m[0].mail_options], \
        f"8-bit content to a server offering 8BITMIME: MAIL FROM options {m[0].mail_options}"
    local = wait_for(lambda: [p for p in maildir_new(b) if t.encode() in p.read_bytes()], 5)
    assert local and len(local) == 1, "the local recipient is delivered locally"
    assert wait_dequeued(b, q)


def test_connection_reused_for_several_messages(ob):
    """Several messages due at once for one destination, one connection allowed to it: they
    share connections (fewer connections than messages). The receiver is down while they are
    submitted, so they are all pending together when retried."""
    b, ra = ob, ob.world.rx["a"]
    set_settings(b, outboundMaxConnectionsPerDestination=1, queueRetryInitialSeconds=3600,
                 queueRetryMaxSeconds=3600)
    ra.stop()
    try:
        sent = []
        with connect_submission(b) as s:
            for i in range(6):
                t = token()
                rcpt = f"sam{i}@amx.test"
                sent.append((send_on(s, ALICE, [rcpt], message(ALICE, [rcpt], t)), t))
        tried = lambda: all((queued(b, q) or {"recipients": [{}]})["recipients"][0].get("attempts", 0) >= 1
                            for q, _ in sent)
        assert wait_for(tried, DELIVER_TIMEOUT, step=0.2), f"first attempts not all made: {queue(b)}"
    finally:
        ra.start()
    before = len(ra.connections)
    cli_ok(b, "queue", "retry", "--all")
    for q, t in sent:
        assert received(ra, t), f"{q} not delivered after retry --all:\n{b.log_tail(30)}"
    conns = len(ra.connections) - before
    assert conns < len(sent), f"{conns} connections for {len(sent)} messages to one host: no reuse"


def test_bytes_after_starttls_220_end_the_connection(ob):
    """The receiving server answers STARTTLS with `220` plus an injected line in one write:
    the client must not go on with that connection (no TLS handshake, no command) and the
    attempt ends (a `delivery` line: deferred, or a plaintext retry on a new connection)."""
    b, sc = ob, ob.world.scripted
    before = len(sc.snapshot())
    q, t = submit(b, ["ann@inject.test"])
    injected = wait_for(lambda: [c for c in sc.snapshot()[before:] if c.injected], DELIVER_TIMEOUT)
    assert injected, f"the client never sent STARTTLS to a server offering it:\n{b.log_tail(30)}"
    time.sleep(sc.wait + 0.5)
    for c in sc.snapshot()[before:]:
        if c.injected:
            assert c.after_starttls == b"", (f"after `220` + injected bytes the client went on with "
                                             f"{c.after_starttls[:40]!r} instead of closing")
    assert b.running(), f"berth died after the injected STARTTLS reply:\n{b.log_tail(40)}"
    ev = wait_log_event(b, lambda e: e.get("event") == "delivery" and e.get("queue") == q, timeout=10)
    assert ev, f"no `delivery` line for the attempt that met the injection (stuck?):\n{b.log_tail(20)}"
    assert ev.get("status") in ("deferred", "sent"), ev["_raw"]
    if ev.get("status") == "sent":
        assert any(c.messages and not c.injected for c in sc.snapshot()[before:]), "sent, but not in plaintext?"


def test_helo_fallback_when_ehlo_is_refused(ob):
    b, old = ob, ob.world.old
    before = len(old.snapshot())
    _, t = submit(b, ["bea@helo.test"])
    got = wait_for(lambda: [c for c in old.snapshot()[before:] if any(t.encode() in m for m in c.messages)],
                   DELIVER_TIMEOUT)
    assert got, f"not delivered to a server that answers EHLO with 502:\n{b.log_tail(20)}"
    cmds = [x.split(" ", 1)[0].upper() for x in got[0].commands]
    assert cmds[:2] == ["EHLO", "HELO"], got[0].commands
    assert got[0].commands[1] == f"HELO {SERVER_HOSTNAME}", got[0].commands
    mail = [x for x in got[0].commands if x.upper().startswith("MAIL FROM")]
    assert mail and mail[0].upper() == f"MAIL FROM:<{ALICE}>".upper(), f"no ESMTP parameters after HELO: {mail}"


def test_per_destination_connection_limit(ob):
    """outboundMaxConnectionsPerDestination=2: with 12 messages due at once for one host, the
    receiver never has more than 2 connections from Berth open together."""
    b, ra = ob, ob.world.rx["a"]
    set_settings(b, outboundMaxConnectionsPerDestination=2, queueRetryInitialSeconds=3600,
                 queueRetryMaxSeconds=3600)
    ra.stop()
    try:
        sent = []
        with connect_submission(b) as s:
            for i in range(12):
                t = token()
                rcpt = f"lim{i}@amx.test"
                sent.append((send_on(s, ALICE, [rcpt], message(ALICE, [rcpt], t)), t))
        tried = lambda: all((queued(b, q) or {"recipients": [{}]})["recipients"][0].get("attempts", 0) >= 1
                            for q, _ in sent)
        assert wait_for(tried, DELIVER_TIMEOUT, step=0.2), f"first attempts not all made: {queue(b)}"
    finally:
        ra.max_active = 0
        ra.start()
    assert b.api("POST", "/api/v1/queue/retry")[0] in (200, 202, 204)
    for q, t in sent:
        assert received(ra, t), f"{q} not delivered:\n{b.log_tail(20)}"
    assert 1 <= ra.max_active <= 2, f"{ra.max_active} connections at once to one destination (limit 2)"


# --------------------------------------------------------------------------- DKIM


def publish_dkim(b, dns: DNSServer, domain: str = "example.com") -> dict:
    js = b.ok("GET", f"/api/v1/domains/{domain}/dkim")
    assert js.get("domain") == domain, js
    keys = js["keys"]
    assert sorted(k["algorithm"] for k in keys) == ["ed25519-sha256", "rsa-sha256"], keys
    for k in keys:
        assert k["name"] == f"{k['selector']}._domainkey.{domain}", k
        assert k["record"].startswith("v=DKIM1;"), k
        dns.txt(k["name"], k["record"])
    dns.restart()
    for k in keys:
        assert dns.dkim_dnsfunc()(k["name"].encode()) == k["record"].encode(), k["name"]
    return js


def check_signed(raw: bytes, dns: DNSServer, selectors: set[str], domain: str = "example.com"):
    sigs = dkim_signatures(raw)
    assert len(sigs) == 2, f"want two DKIM-Signature headers, got {len(sigs)}"
    assert sorted(s.get("a") for s in sigs) == ["ed25519-sha256", "rsa-sha256"], sigs
    for s in sigs:
        assert s.get("d") == domain, s
        assert s.get("c") == "relaxed/relaxed", s
        h = [x.strip().lower() for x in s.get("h", "").split(":")]
        for need in ("from", "to", "subject", "date", "message-id"):
            assert need in h, f"h= misses {need}: {s.get('h')}"
    assert {s.get("s") for s in sigs} == selectors, (sigs, selectors)
    results = dkim_verify_all(raw, dns.dkim_dnsfunc())
    bad = [(t.get("a"), t.get("s")) for t, ok in results if not ok]
    assert not bad, f"DKIM signatures that do not verify with dkimpy: {bad}"


def test_dkim_both_signatures_verify_and_rotate(ob):
    b, w = ob, ob.world
    mx1 = w.rx["mx1"]
    try:
        js = publish_dkim(b, w.dns)
        sel1 = {k["selector"] for k in js["keys"]}
        _, t = submit(b, ["tom@example.net"])
        m = received(mx1, t)
        assert m, b.log_tail(30)
        check_signed(m[0].content, w.dns, sel1)

        # the CLI prints the zone lines to publish, strings of at most 255 characters
        p = cli_ok(b, "domains", "dkim", "example.com")
        for k in js["keys"]:
            line = [l for l in p.out.splitlines() if l.startswith(k["name"] + ".")]
            assert line, f"no zone line for {k['name']}:\n{p.out}"
            assert re.search(r"\bIN\s+TXT\b", line[0]), line[0]
            strings = re.findall(r'"([^"]*)"', line[0])
            assert strings and all(len(s) <= 255 for s in strings), line[0]
            assert "".join(strings) == k["record"], line[0]

        # rotate: new selectors; mail signed with the new keys verifies against their records
        rot = b.ok("POST", "/api/v1/domains/example.com/dkim/rotate")
        sel2 = {k["selector"] for k in rot["keys"]}
        assert sel2.isdisjoint(sel1), (sel1, sel2)
        js2 = publish_dkim(b, w.dns)  # old records stay published too
        assert {k["selector"] for k in js2["keys"]} == sel2, js2
        _, t2 = submit(b, ["uma@example.net"])
        m2 = received(mx1, t2)
        assert m2, b.log_tail(30)
        check_signed(m2[0].content, w.dns, sel2)
    finally:
        w.dns.txts.clear()
        w.dns.restart()


def test_each_sender_domain_signs_with_its_own_keys(ob):
    """Each sender domain signs with its own keys (d= the sender's domain)."""
    b, w = ob, ob.world
    js = b.ok("GET", "/api/v1/domains/example.org/dkim")
    sels = {k["selector"] for k in js["keys"]}
    _, t = submit(b, ["vera@example.net"], user=BOB, pw=BOB_PW)
    m = received(w.rx["mx1"], t)
    assert m, b.log_tail(30)
    sigs = dkim_signatures(m[0].content)
    assert {s.get("d") for s in sigs} == {"example.org"} and {s.get("s") for s in sigs} == sels, sigs


def test_dkim_cli_json_and_rotate(ob):
    """`berth domains dkim NAME --json` is the API's JSON; `--rotate` makes new keys (new
    selectors, one per algorithm) and the API then shows those; unknown domain → 404."""
    b = ob
    api = b.ok("GET", "/api/v1/domains/example.org/dkim")
    p = cli_ok(b, "domains", "dkim", "example.org", "--json")
    assert json.loads(p.out) == api, p.out
    for k in api["keys"]:
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", k["createdAt"]), k
        assert ("k=rsa;" if k["algorithm"] == "rsa-sha256" else "k=ed25519;") in k["record"].replace(" ", ""), k
    time.sleep(1.1)  # rotations within one second: test_dkim_rotations_never_reuse_a_selector
    p = cli_ok(b, "domains", "dkim", "example.org", "--rotate")
    after = b.ok("GET", "/api/v1/domains/example.org/dkim")
    assert sorted(k["algorithm"] for k in after["keys"]) == ["ed25519-sha256", "rsa-sha256"], after
    assert {k["selector"] for k in after["keys"]}.isdisjoint({k["selector"] for k in api["keys"]}), (api, after)
    for k in after["keys"]:
        assert k["name"] + "." in p.out, f"--rotate should print the new zone lines:\n{p.out}"
    assert b.api("GET", "/api/v1/domains/nope.test/dkim")[0] == 404
    assert b.api("POST", "/api/v1/domains/nope.test/dkim/rotate")[0] == 404


def test_dkim_rotations_never_reuse_a_selector(ob):
    """A selector names one published key: two rotations in a row (same second) must not give
    a new key under a selector already handed out, or receivers would check mail signed with
    the new key against the record published for the old one."""
    b = ob
    seen: dict[str, str] = {}
    for k in b.ok("GET", "/api/v1/domains/example.com/dkim")["keys"]:
        seen[k["selector"]] = k["record"]
    for _ in range(2):
        js = b.ok("POST", "/api/v1/domains/example.com/dkim/rotate")
        for k in js["keys"]:
            assert k["selector"] not in seen, (f"rotation reused selector {k['selector']} with a different key"
                                               if seen[k["selector"]] != k["record"] else
                                               f"rotation kept selector {k['selector']}")
            seen[k["selector"]] = k["record"]


# --------------------------------------------------------------------------- queue API and CLI, routes


def test_queue_api_and_cli(ob):
    b, w = ob, ob.world
    mx1 = w.rx["mx1"]
    set_settings(b, queueRetryInitialSeconds=3600, queueRetryMaxSeconds=3600)
    r1 = f"defer-{token()}@example.net"
    r2 = f"defer-{token()}@example.net"
    q1, t1 = submit(b, [r1])
    q2, _ = submit(b, [r2])
    assert wait_for(lambda: len([a for a in mx1.refused if a.arg in (r1, r2)]) >= 2, DELIVER_TIMEOUT), \
        f"first attempts not made:\n{b.log_tail(30)}"

    m = wait_for(lambda: (lambda x: x if x and x["recipients"][0]["attempts"] >= 1 else None)(queued(b, q1)), 5)
    assert m, queue(b)
    assert m["sender"] == ALICE and isinstance(m["size"], int) and m["size"] > 0, m
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", m["receivedAt"]), m
    r = m["recipients"][0]
    assert r["address"] == r1 and r["state"] == "pending" and r["attempts"] == 1, r
    assert r["nextAttemptAt"] and r["lastError"] and "450" in r["lastError"], r
    st, one = b.api("GET", f"/api/v1/queue/{q1}")
    assert st == 200 and one["id"] == q1 and one["recipients"][0]["address"] == r1, (st, one)
    assert b.api("GET", "/api/v1/queue/no-such-id")[0] == 404

    p = cli_ok(b, "queue", "list")
    assert q1 in p.out and q2 in p.out, p.out
    p = cli_ok(b, "queue", "show", q1)
    assert q1 in p.out and r1 in p.out, p.out

    # retry now (API): a second attempt right away, although the schedule says an hour
    n = len([a for a in mx1.refused if a.arg == r1])
    st, js = b.api("POST", f"/api/v1/queue/{q1}/retry")
    assert st == 200 and js["id"] == q1, (st, js)
    assert wait_for(lambda: len([a for a in mx1.refused if a.arg == r1]) > n, 10), "retry made no attempt"
    assert wait_for(lambda: (queued(b, q1) or {"recipients": [{}]})["recipients"][0].get("attempts", 0) >= 2, 5)
    # retry via the CLI; once the receiver accepts, the message goes
    w.policy.released.add(r1.lower())
    cli_ok(b, "queue", "retry", q1)
    assert received(mx1, t1, timeout=10), "not delivered after `berth queue retry`"
    assert wait_dequeued(b, q1, timeout=10)
    assert b.api("POST", "/api/v1/queue/no-such-id/retry")[0] == 404

    # delete: 204, gone, no DSN, no further attempt
    st, _ = b.api("DELETE", f"/api/v1/queue/{q2}")
    assert st == 204, st
    assert queued(b, q2) is None and b.api("GET", f"/api/v1/queue/{q2}")[0] == 404
    assert b.api("DELETE", f"/api/v1/queue/{q2}")[0] == 404
    q3, _ = submit(b, [f"defer-{token()}@example.net"])
    assert wait_for(lambda: queued(b, q3), 5)
    cli_ok(b, "queue", "delete", q3)
    assert queued(b, q3) is None
    time.sleep(1)
    assert not dsns(b), "deleting from the queue sends no DSN"


def test_queue_retry_all_cli(ob):
    b, w = ob, ob.world
    mx1 = w.rx["mx1"]
    set_settings(b, queueRetryInitialSeconds=3600, queueRetryMaxSeconds=3600)
    rcpts = [f"defer-{token()}@example.net" for _ in range(2)]
    qs = [submit(b, [r]) for r in rcpts]
    assert wait_for(lambda: all(any(a.arg == r for a in mx1.refused) for r in rcpts), DELIVER_TIMEOUT)
    for r in rcpts:
        w.policy.released.add(r.lower())
    cli_ok(b, "queue", "retry", "--all")
    for q, t in qs:
        assert received(mx1, t, timeout=10), "`berth queue retry --all` did not retry every message"
    # the API route for all
    r3 = f"defer-{token()}@example.net"
    q3, t3 = submit(b, [r3])
    assert wait_for(lambda: any(a.arg == r3 for a in mx1.refused), DELIVER_TIMEOUT)
    w.policy.released.add(r3.lower())
    st, _ = b.api("POST", "/api/v1/queue/retry")
    assert st in (200, 202, 204), st
    assert received(mx1, t3, timeout=10), "POST /api/v1/queue/retry did not retry"


def test_static_route_overrides_mx(ob):
    b, w = ob, ob.world
    rroute, mx1 = w.rx["route"], w.rx["mx1"]
    st, js = b.api("PUT", "/api/v1/routes/routed.test", {"host": ROUTE, "port": rroute.port})
    assert st == 200, (st, js)
    want = {"domain": "routed.test", "host": ROUTE, "port": rroute.port, "requireTLS": False,
            "verifyCertificate": False}
    assert {k: js.get(k) for k in want} == want, js
    listed = [r for r in b.ok("GET", "/api/v1/routes") if r.get("domain") == "routed.test"]
    assert len(listed) == 1 and {k: listed[0].get(k) for k in want} == want, listed
    st, js = b.api("PUT", "/api/v1/routes/other.test", {"host": ROUTE})
    assert st == 200 and js.get("port") == 25 and js.get("requireTLS") is False, (st, js)
    assert b.api("DELETE", "/api/v1/routes/other.test")[0] == 204
    _, t = submit(b, ["walt@routed.test"])
    m = received(rroute, t)
    assert m, f"the static route was not used:\n{b.log_tail(30)}"
    assert not mx1.with_token(t), "delivered to the MX despite the route"
    assert b.api("DELETE", "/api/v1/routes/routed.test")[0] == 204
    assert b.api("DELETE", "/api/v1/routes/routed.test")[0] == 404
    _, t2 = submit(b, ["xena@routed.test"])
    assert received(mx1, t2), "after deleting the route, MX lookup again"

    # CLI
    cli_ok(b, "routes", "set", "routed.test", f"{ROUTE}:{rroute.port}")
    p = cli_ok(b, "routes", "list")
    assert "routed.test" in p.out and ROUTE in p.out and str(rroute.port) in p.out, p.out
    _, t3 = submit(b, ["yuri@routed.test"])
    assert received(rroute, t3), "route set by the CLI not used"
    cli_ok(b, "routes", "delete", "routed.test")
    assert b.ok("GET", "/api/v1/routes") == []


def test_route_requiring_tls_never_sends_in_clear(ob):
    """requireTLS on a route to a receiver without STARTTLS: never sent in clear, stays queued.
    verifyCertificate to a receiver with a self-signed certificate: not sent either; with
    verification off the same route delivers over TLS."""
    b, w = ob, ob.world
    rroute, mx1 = w.rx["route"], w.rx["mx1"]
    b.ok("PUT", "/api/v1/routes/routed.test", {"host": ROUTE, "port": rroute.port, "requireTLS": True})
    q, t = submit(b, ["zack@routed.test"])

    def tried(qid):
        x = queued(b, qid)
        return x if x and x["recipients"][0]["attempts"] >= 1 else None

    m = wait_for(lambda: tried(q), DELIVER_TIMEOUT)
    assert m and m["recipients"][0]["state"] == "pending" and m["recipients"][0]["lastError"], queued(b, q)
    assert not rroute.with_token(t), "sent in clear although the route requires TLS"
    assert b.api("DELETE", f"/api/v1/queue/{q}")[0] == 204

    b.ok("PUT", "/api/v1/routes/routed.test", {"host": MX1, "port": w.mx_port, "requireTLS": True,
                                               "verifyCertificate": True})
    q, t = submit(b, ["zoe@routed.test"])
    m = wait_for(lambda: tried(q), DELIVER_TIMEOUT)
    assert m and m["recipients"][0]["state"] == "pending", queued(b, q)
    assert not mx1.with_token(t), "delivered although the self-signed certificate cannot be verified"
    b.ok("PUT", "/api/v1/routes/routed.test", {"host": MX1, "port": w.mx_port, "requireTLS": True})
    assert b.api("POST", f"/api/v1/queue/{q}/retry")[0] == 200
    got = received(mx1, t)
    assert got and got[0].tls, "with verification off, the route delivers over TLS"


# --------------------------------------------------------------------------- metrics and the mail log


def test_metrics_and_delivery_log_line(ob):
    b, mx1 = ob, ob.world.rx["mx1"]
    set_outbound(b, "example.com", ipv4=("address", [OUT1]))
    since = log_size(b)
    q, t = submit(b, ["amy@example.net"])
    assert received(mx1, t), b.log_tail(30)
    ev = wait_log_event(b, lambda e: e.get("event") == "delivery" and e.get("queue") == q, since=since, timeout=5)
    assert ev, f"no `delivery` log line for {q}:\n{b.log_tail(30)}"
    assert ev.get("to") == "amy@example.net", ev["_raw"]
    assert (ev.get("mx") or "").rstrip(".") == "mx1.example.net", ev["_raw"]
    assert ev.get("ip") == MX1 and ev.get("source") == OUT1, ev["_raw"]
    assert re.fullmatch(r"TLSv1\.[23]", ev.get("tls") or ""), ev["_raw"]
    assert ev.get("status") == "sent" and (ev.get("reply") or "").startswith("250"), ev["_raw"]
    assert len(delivery_events(b, q, since)) == 1, "one line per attempt per recipient"

    text = metrics(b)
    for name in ("berth_queue_messages", "berth_queue_recipients"):
        assert metric_value(text, name) is not None, f"{name} missing"
    v = metric_value(text, "berth_outbound_deliveries_total", outcome="delivered", source=OUT1)
    assert v is not None and v >= 1, [l for l in text.splitlines() if "outbound" in l]

    # deferred and bounced outcomes are counted too
    set_outbound(b, "example.com", ipv4=("system", []))
    r = f"reject-{token()}@example.net"
    submit(b, [r])
    assert wait_dsns(b, 1)
    r2 = f"defer-{token()}@example.net"
    q2, _ = submit(b, [r2])
    assert wait_for(lambda: [a for a in mx1.refused if a.arg == r2], DELIVER_TIMEOUT)
    text = wait_for(lambda: (lambda t: t if metric_value(t, "berth_queue_recipients") else None)(metrics(b)), 5)
    assert text, "berth_queue_recipients should count the deferred recipient"
    assert metric_value(text, "berth_queue_messages") >= 1
    assert (metric_value(text, "berth_outbound_deliveries_total", outcome="bounced", source="system") or 0) >= 1, \
        [l for l in text.splitlines() if "outbound" in l]
    assert (metric_value(text, "berth_outbound_deliveries_total", outcome="deferred", source="system") or 0) >= 1, \
        [l for l in text.splitlines() if "outbound" in l]
    d = wait_log_event(b, lambda e: e.get("event") == "delivery" and e.get("queue") == q2, since=since)
    assert d and d.get("status") == "deferred" and "450" in (d.get("reply") or ""), d and d["_raw"]
    assert d.get("tls") in ("TLSv1.2", "TLSv1.3"), d["_raw"]


# --------------------------------------------------------------------------- no open relay


def test_unauthenticated_relay_still_refused(ob):
    b, mx1 = ob, ob.world.rx["mx1"]
    t = token()
    with smtplib.SMTP(IP3, b.MX, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.ehlo()
        assert s.mail("spammer@elsewhere.test")[0] == 250
        code, msg = s.rcpt("victim@example.net")
        assert code == 554 and msg.startswith(b"5.7.1"), (code, msg)
        # a local sender without AUTH is no key either
        s.rset()
        assert s.mail(ALICE)[0] == 250
        code, msg = s.rcpt("victim@example.net")
        assert code == 554 and msg.startswith(b"5.7.1"), (code, msg)
    # TLS is no key either: the submission port without AUTH, MAIL as alice, a remote recipient
    with smtplib.SMTP_SSL(IP2, b.SUB, local_hostname=CLIENT_NAME, timeout=15, context=tls_client_context()) as s:
        s.ehlo()
        code, msg = s.mail(ALICE)
        if code == 250:
            code, msg = s.rcpt("victim@example.net")
        assert code >= 500, (code, msg)
    time.sleep(1)
    assert queue(b) == [], queue(b)
    assert not mx1.with_token(t)


# --------------------------------------------------------------------------- kill -9 under load


LOAD_MESSAGES = 1000
LOAD_CONNECTIONS = 8


def test_kill_9_during_load_loses_no_acknowledged_message(ob):
    """1,000 messages over several submission connections; `kill -9` once 40 % are
    acknowledged; restart; the rest of the load is sent to the restarted server. Every
    message whose 250 the client saw arrives at the receiver (duplicates allowed)."""
    b, mx1 = ob, ob.world.rx["mx1"]
    set_settings(b, queueRetryInitialSeconds=1, queueRetryMaxSeconds=1)
    acked: dict[str, str] = {}          # token -> queue id, for every 250 received
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(LOAD_MESSAGES))
    errors: list[str] = []

    def worker(n: int):
        s = None
        i = None
        for _ in range(LOAD_MESSAGES * 20):
            if stop.is_set():
                break
            if i is None:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
            t = f"load{i:04d}x{token()}"   # a fresh token per try: an unacknowledged try may still arrive
            rcpt = f"load{i % 17}@example.net"
            try:
                if s is None:
                    s = connect_submission(b)
                qid = send_on(s, ALICE, [rcpt], message(ALICE, [rcpt], t))
            except (OSError, smtplib.SMTPException, AssertionError) as e:
                errors.append(f"{n}: {type(e).__name__}: {e}")
                s = None
                time.sleep(0.05)
                continue
            with lock:
                acked[t] = qid
            i = None
        if s is not None:
            try:
                s.close()
            except OSError:
                pass

    def run_load():
        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(LOAD_CONNECTIONS)]
        for th in threads:
            th.start()
        return threads

    threads = run_load()
    # kill -9 once a good part of the load is acknowledged (and some already delivered)
    assert wait_for(lambda: len(acked) >= LOAD_MESSAGES * 0.4, 120, step=0.02), \
        f"only {len(acked)} acknowledged in 120 s; errors: {errors[:5]}"
    os.kill(b.pid, signal.SIGKILL)
    stop.set()
    b.proc.wait(timeout=10)
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads), "load threads did not stop"
    at_kill = len(acked)
    b.kill()  # closes the log handle
    b.start()
    stop.clear()
    threads = run_load()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "the rest of the load did not finish in 300 s"
    with lock:
        want = dict(acked)
    # at most one message per connection was in flight at the kill and is not retried
    assert len(want) >= LOAD_MESSAGES - LOAD_CONNECTIONS, (len(want), errors[-5:])
    assert len(want) > at_kill

    def missing():
        got = set()
        for m in mx1.snapshot():
            found = re.search(rb"load\d{4}x[0-9a-f]{16}", m.content)
            if found:
                got.add(found.group(0).decode())
        return [t for t in want if t not in got]

    left = wait_for(lambda: not missing(), 180, step=0.5)
    miss = missing()
    assert left and not miss, (f"{len(miss)} of {len(want)} acknowledged messages never arrived after kill -9 "
                               f"and restart, e.g. {[(t, want[t]) for t in miss[:5]]}; queue: {queue(b)[:3]}")
    assert wait_for(lambda: queue(b) == [], 30, step=0.5), f"queue not empty: {queue(b)[:3]}"
    assert not dsns(b), "nothing should have bounced"
