"""PROXY protocol v1 and v2 (contract: port `proxyProtocol`, `settings.proxyTrustedNetworks`;
CONTRACT-NOTES "Sessions (every protocol)"), behind a real HAProxy and by hand.

HAProxy (Debian package `haproxy`) runs as a child of the test (`haproxy -f CFG -db`) with
`mode tcp` frontends on 127.0.0.1 and backends `server b 127.0.0.2:PORT send-proxy-v2` (or
`send-proxy` for v1) `source 127.0.0.1`, so Berth sees every proxied connection come from
127.0.0.1, the only trusted network. Clients connect to HAProxy from other loopback
addresses (127.0.0.9, .10, ...): the address in the header is the one Berth must use for
the banner session, the log, per-client limits and the `Received:` header.
"""
from __future__ import annotations

import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (ALICE, APPLY_DEADLINE, CLIENT_NAME, IP2, RawSMTP, assert_reply, create_port, free_port, log_events,
                      log_size, maildir_new, set_settings, tls_client_context, wait_log_event,
                      wait_maildir_count)

PROXY_HOST = "127.0.0.1"       # where HAProxy's frontends listen and where it connects from
TRUSTED = ["127.0.0.1/32"]
HEADER_TIMEOUT = 5.0           # contract: a PROXY header must arrive within 5 s

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


# --------------------------------------------------------------------------- HAProxy


def _listening_ports() -> set[tuple[str, int]]:
    """(address, port) of every IPv4 TCP socket in LISTEN state, from /proc/net/tcp."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[3] != "0A":
                continue
            hexaddr, hexport = cols[1].split(":")
            addr = socket.inet_ntoa(struct.pack("<I", int(hexaddr, 16)))
            out.add((addr, int(hexport, 16)))
    return out


class HAProxy:
    """One haproxy process (`-db`: foreground, child of the test) with tcp frontends.

    routes: list of (name, backend_port, send_proxy) where send_proxy is "send-proxy-v2" or
    "send-proxy"; each gets a frontend on 127.0.0.1:<free port> (`self.front[name]`)."""

    def __init__(self, workdir: Path, routes: list[tuple[str, int, str]]):
        exe = shutil.which("haproxy")
        if exe is None:
            pytest.fail("haproxy is not installed (Debian package `haproxy`; .ci/run installs it)")
        self.exe = exe
        self.front: dict[str, int] = {}
        cfg = ["global", "    maxconn 512", "",
               "defaults", "    mode tcp", "    timeout connect 5s", "    timeout client 30s",
               "    timeout server 30s", ""]
        for name, backend_port, send_proxy in routes:
            fp = free_port()
            self.front[name] = fp
            cfg += [f"frontend fe_{name}", f"    bind {PROXY_HOST}:{fp}", f"    default_backend be_{name}", "",
                    f"backend be_{name}",
                    f"    server b {IP2}:{backend_port} {send_proxy} source {PROXY_HOST}", ""]
        self.cfg_path = workdir / "haproxy.cfg"
        self.cfg_path.write_text("\n".join(cfg) + "\n")
        self.log_path = workdir / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        check = subprocess.run([self.exe, "-c", "-f", str(self.cfg_path)], capture_output=True, timeout=20)
        assert check.returncode == 0, f"haproxy config check failed:\n{check.stdout.decode()}{check.stderr.decode()}"
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.exe, "-f", str(self.cfg_path), "-db"], stdout=self._logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        want = {(PROXY_HOST, p) for p in self.front.values()}
        end = time.monotonic() + timeout
        for _ in range(1000):
            if self.proc.poll() is not None:
                pytest.fail(f"haproxy exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            if want <= _listening_ports():
                return
            if time.monotonic() > end:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"haproxy frontends {sorted(want)} not listening within {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_logf", None) is not None:
            self._logf.close()
            self._logf = None


@pytest.fixture
def haproxy(tmp_path):
    """Factory: haproxy(routes) -> started HAProxy; stopped at teardown."""
    made: list[HAProxy] = []

    def factory(routes: list[tuple[str, int, str]]) -> HAProxy:
        d = tmp_path / f"haproxy{len(made)}"
        d.mkdir()
        h = HAProxy(d, routes)
        made.append(h)
        h.start()
        return h

    yield factory
    for h in made:
        h.stop()


# --------------------------------------------------------------------------- helpers


def proxy_port(b, name: str = "Proxied", encryption: str = "none", **extra) -> dict:
    p = create_port(b, name, "smtp", encryption, assigned=[IP2], proxyProtocol=True, **extra)
    assert p.get("proxyProtocol") is True, p
    # wait via the API, not by connecting (a bare connect is itself a header-less session)
    l = b.wait_listener(IP2, p["port"], timeout=5)
    assert l is not None and l.get("state") == "listening", l
    return p


def received_header(text: str) -> str:
    """The first Received: header of a stored message, unfolded."""
    m = re.search(r"^Received:.*?(?=^\S)", text, re.S | re.M)
    assert m, f"no Received: header in:\n{text[:2000]}"
    return " ".join(m.group(0).split())


def deliver(host: str, port: int, source: str, subject: str, *, ssl_ctx=None) -> None:
    cls = smtplib.SMTP_SSL if ssl_ctx is not None else smtplib.SMTP
    kw = {"context": ssl_ctx} if ssl_ctx is not None else {}
    with cls(host, port, local_hostname=CLIENT_NAME, timeout=10, source_address=(source, 0), **kw) as s:
        code, msg = s.ehlo()
        assert code == 250, msg
        s.mail("bob@remote.test")
        assert s.rcpt(ALICE)[0] == 250
        code, msg = s.data(f"Subject: {subject}\r\nFrom: <bob@remote.test>\r\n\r\nthrough the proxy\r\n")
        assert code == 250, msg


def message_with_subject(b, subject: str) -> str:
    files = wait_maildir_count(b, 1)
    end = time.monotonic() + 5
    for _ in range(100):
        for f in maildir_new(b):
            t = f.read_text(errors="replace")
            if f"Subject: {subject}" in t:
                return t
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    raise AssertionError(f"no stored message with subject {subject!r} (files: {files})")


def session_event(b, event: str, client: str, since: int | None = None, timeout: float = 5.0) -> dict | None:
    return wait_log_event(b, lambda e: e.get("event") == event and e.get("client") == client,
                          timeout=timeout, since=since)


def proxy_refusals(b, since: int) -> list[dict]:
    return [e for e in log_events(b, since) if e.get("event") == "refused" and "PROXY" in e.get("reason", "")]


def wait_proxy_refusal(b, since: int, peer: str, timeout: float = 5.0) -> dict | None:
    return wait_log_event(b, lambda e: e.get("event") == "refused" and "PROXY" in e.get("reason", "")
                          and peer in e["_raw"], timeout=timeout, since=since)


def metric(b, name: str) -> float:
    st, text = b.api("GET", "/metrics")
    assert st == 200, (st, text)
    total = 0.0
    for line in str(text).splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def closed_without_banner(sock: socket.socket, wait: float) -> tuple[bool, bytes, float]:
    """(closed within `wait`, bytes received before the close, seconds until the close)."""
    t0 = time.monotonic()
    got = b""
    end = t0 + wait
    for _ in range(1000):
        left = end - time.monotonic()
        if left <= 0:
            return False, got, time.monotonic() - t0
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return False, got, time.monotonic() - t0
        except (ConnectionResetError, BrokenPipeError):
            return True, got, time.monotonic() - t0
        if not chunk:
            return True, got, time.monotonic() - t0
        got += chunk
    return False, got, time.monotonic() - t0


def raw_conn(port: int, source: str = PROXY_HOST) -> socket.socket:
    return socket.create_connection((IP2, port), timeout=5, source_address=(source, 0))


def v2_header(src: str, dst: str, sport: int, dport: int) -> bytes:
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def smtp_on(sock: socket.socket) -> RawSMTP:
    """A RawSMTP over a socket that already sent its PROXY header (banner not read yet)."""
    c = RawSMTP.__new__(RawSMTP)
    c.sock, c.buf, c.banner = sock, b"", None
    return c


V2_LOCAL = V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)


@pytest.fixture
def proxy_env(make_mail_server):
    b = make_mail_server()
    s = set_settings(b, proxyTrustedNetworks=TRUSTED)
    assert s.get("proxyTrustedNetworks") == TRUSTED, s
    return b


# --------------------------------------------------------------------------- through HAProxy


def test_haproxy_v2_client_address_everywhere(proxy_env, haproxy):
    """send-proxy-v2: a client at 127.0.0.9 delivering through HAProxy is 127.0.0.9 in the
    Received: header and in the log's connect line; HAProxy's own 127.0.0.1 is not."""
    b = proxy_env
    P = proxy_port(b)["port"]
    h = haproxy([("v2", P, "send-proxy-v2")])
    since = log_size(b)
    deliver(PROXY_HOST, h.front["v2"], "127.0.0.9", "via haproxy v2")
    text = message_with_subject(b, "via haproxy v2")
    rec = received_header(text)
    assert "[127.0.0.9]" in rec, rec
    assert "127.0.0.1" not in rec, f"the proxy's address leaked into Received: {rec}"
    ev = session_event(b, "connect", "127.0.0.9", since)
    assert ev is not None, "no `connect ... client=127.0.0.9` line:\n" + b.log_tail(30)
    assert ev.get("listener") == f"{IP2}:{P}", ev
    assert not [e for e in log_events(b, since) if e.get("event") == "connect" and e.get("client") == PROXY_HOST], \
        "a session was logged with the proxy's address:\n" + b.log_tail(30)
    assert not proxy_refusals(b, since), b.log_tail(30)


def test_haproxy_v1_send_proxy(proxy_env, haproxy):
    """send-proxy (v1 text header): the same, client 127.0.0.11."""
    b = proxy_env
    P = proxy_port(b)["port"]
    h = haproxy([("v1", P, "send-proxy")])
    since = log_size(b)
    deliver(PROXY_HOST, h.front["v1"], "127.0.0.11", "via haproxy v1")
    rec = received_header(message_with_subject(b, "via haproxy v1"))
    assert "[127.0.0.11]" in rec, rec
    assert session_event(b, "connect", "127.0.0.11", since) is not None, b.log_tail(30)


def test_haproxy_per_client_limit_uses_header_address(proxy_env, haproxy):
    """maxConnectionsPerClient 2 on the proxied port: the 3rd connection through HAProxy from
    127.0.0.9 gets 421 4.7.0 and is closed, while one from 127.0.0.10 (same proxy peer
    127.0.0.1, 3rd connection from it) is served."""
    b = proxy_env
    P = proxy_port(b, maxConnectionsPerClient=2)["port"]
    h = haproxy([("v2", P, "send-proxy-v2")])
    F = h.front["v2"]
    held = []
    try:
        for _ in range(2):
            c = RawSMTP(PROXY_HOST, F, source="127.0.0.9", timeout=5)
            held.append(c)
            assert c.banner[0] == 220, c.banner
        third = RawSMTP(PROXY_HOST, F, source="127.0.0.9", timeout=5, read_banner=False)
        held.append(third)
        code, lines = third.reply()
        assert_reply(lines, 421, "4.7.0", "3rd connection from 127.0.0.9 through HAProxy (per-client limit 2)")
        assert third.at_eof(3), "not closed after 421"
        other = RawSMTP(PROXY_HOST, F, source="127.0.0.10", timeout=5)
        held.append(other)
        assert other.banner[0] == 220, f"127.0.0.10 through the same proxy was refused: {other.banner}"
        assert other.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        for c in held[:2]:
            assert c.cmd("NOOP")[0] == 250
    finally:
        for c in held:
            c.close()


def test_haproxy_implicit_tls_port(proxy_env, haproxy):
    """An `ssl` port with proxyProtocol: the header comes before the TLS handshake; delivery over
    TLS through HAProxy (send-proxy-v2) stores [127.0.0.12] in Received:."""
    b = proxy_env
    P = proxy_port(b, name="Proxied SSL", encryption="ssl")["port"]
    h = haproxy([("ssl", P, "send-proxy-v2")])
    since = log_size(b)
    deliver(PROXY_HOST, h.front["ssl"], "127.0.0.12", "via haproxy ssl", ssl_ctx=tls_client_context())
    rec = received_header(message_with_subject(b, "via haproxy ssl"))
    assert "[127.0.0.12]" in rec, rec
    assert session_event(b, "connect", "127.0.0.12", since) is not None, b.log_tail(30)
    # a TLS client straight to the port (no header): its ClientHello is no PROXY header
    since = log_size(b)
    s = raw_conn(P)
    try:
        ctx = tls_client_context()
        with pytest.raises((OSError, ConnectionResetError)):
            ctx.wrap_socket(s).recv(10)
    finally:
        s.close()
    assert wait_proxy_refusal(b, since, PROXY_HOST) is not None, b.log_tail(30)


def test_untrusted_proxy_is_refused(proxy_env, haproxy):
    """With proxyTrustedNetworks cleared, HAProxy itself is untrusted: its connections are closed
    without a banner, logged `refused` with "PROXY", counted; trusting it again serves them."""
    b = proxy_env
    P = proxy_port(b)["port"]
    h = haproxy([("v2", P, "send-proxy-v2")])
    before = metric(b, "berth_proxy_refused_total")
    assert set_settings(b, proxyTrustedNetworks=[]).get("proxyTrustedNetworks") == []
    since = log_size(b)
    # settings apply live; allow the contract's 1 s for the change to reach the listeners
    end = time.monotonic() + APPLY_DEADLINE
    for _ in range(100):
        s = socket.create_connection((PROXY_HOST, h.front["v2"]), timeout=5, source_address=("127.0.0.9", 0))
        try:
            # An untrusted proxy is closed at once; a banner means the change has not
            # reached the listener yet, so try again rather than wait on that session.
            closed, got, _ = closed_without_banner(s, 0.5)
        finally:
            s.close()
        if (closed and b"220" not in got) or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert closed, "connection from an untrusted proxy stayed open"
    assert b"220" not in got, f"untrusted proxy's client got {got!r} {APPLY_DEADLINE} s after the change"
    assert wait_proxy_refusal(b, since, PROXY_HOST) is not None, b.log_tail(30)
    assert metric(b, "berth_proxy_refused_total") >= before + 1
    set_settings(b, proxyTrustedNetworks=TRUSTED)
    end = time.monotonic() + APPLY_DEADLINE
    banner = None
    for _ in range(100):
        try:
            with RawSMTP(PROXY_HOST, h.front["v2"], source="127.0.0.9", timeout=5) as c:
                banner = c.banner
        except (OSError, AssertionError) as e:
            banner = repr(e)
        if (isinstance(banner, tuple) and banner[0] == 220) or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert isinstance(banner, tuple) and banner[0] == 220, f"trusted again, the client got {banner!r}"


# --------------------------------------------------------------------------- by hand


def test_direct_connection_from_untrusted_address(proxy_env):
    """127.0.0.5 is not in proxyTrustedNetworks (127.0.0.1/32): a direct connection to the proxy
    port gets no banner, is closed at once, and is logged `refused` with "PROXY"; even a valid
    header from it is not believed."""
    b = proxy_env
    P = proxy_port(b)["port"]
    before = metric(b, "berth_proxy_refused_total")
    since = log_size(b)
    s = raw_conn(P, source="127.0.0.5")
    try:
        closed, got, dt = closed_without_banner(s, 3)
    finally:
        s.close()
    assert closed, "untrusted connection stayed open for 3 s"
    assert got == b"", f"untrusted client got {got!r}"
    ev = wait_proxy_refusal(b, since, "127.0.0.5")
    assert ev is not None, "no `refused ... PROXY ...` line naming 127.0.0.5:\n" + b.log_tail(30)
    # a well-formed header from the untrusted address changes nothing
    s = raw_conn(P, source="127.0.0.5")
    try:
        try:
            s.sendall(b"PROXY TCP4 192.0.2.50 127.0.0.2 5000 25\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed, got, _ = closed_without_banner(s, 3)
    finally:
        s.close()
    assert closed and b"220" not in got, got
    assert not [e for e in log_events(b, since) if e.get("client") == "192.0.2.50" and e.get("event") == "connect"]
    assert metric(b, "berth_proxy_refused_total") >= before + 2


def test_trusted_connection_without_header_times_out(proxy_env):
    """A trusted peer that sends nothing is closed within the 5 s header timeout (not at once,
    not never), without a banner, logged `refused` with "PROXY"."""
    b = proxy_env
    P = proxy_port(b)["port"]
    since = log_size(b)
    s = raw_conn(P)
    try:
        closed, got, dt = closed_without_banner(s, HEADER_TIMEOUT + 2.0)
    finally:
        s.close()
    assert closed, f"header-less trusted connection still open after {HEADER_TIMEOUT + 2.0} s"
    assert got == b"", f"got {got!r} before any PROXY header"
    assert dt >= 1.0, f"closed after {dt:.2f} s: a trusted proxy must get time to send its header"
    assert dt <= HEADER_TIMEOUT + 1.5, f"closed only after {dt:.2f} s"
    assert wait_proxy_refusal(b, since, PROXY_HOST) is not None, b.log_tail(30)


def test_garbage_instead_of_header_closed_at_once(proxy_env):
    """Bytes that cannot start a PROXY header (an SMTP command, an HTTP request, a broken v1 line)
    end the connection at once, without a banner, logged `refused` with "PROXY"."""
    b = proxy_env
    P = proxy_port(b)["port"]
    for garbage in (b"EHLO client.test\r\n", b"GET / HTTP/1.0\r\n\r\n", b"PROXY TCP4 not-an-ip 127.0.0.2 1 2\r\n",
                    b"PROXY TCP4 192.0.2.7 127.0.0.2 99999 25\r\n", V2_SIG + b"\x99\x11\x00\x0c" + b"\0" * 12):
        since = log_size(b)
        s = raw_conn(P)
        try:
            s.sendall(garbage)
            closed, got, dt = closed_without_banner(s, 2.0)
        finally:
            s.close()
        assert closed, f"{garbage!r}: still open after 2 s"
        assert dt < 1.5, f"{garbage!r}: closed after {dt:.2f} s, not at once"
        assert b"220" not in got, f"{garbage!r}: got {got!r}"
        assert wait_proxy_refusal(b, since, PROXY_HOST) is not None, f"{garbage!r}:\n" + b.log_tail(20)


def test_hand_written_headers(proxy_env):
    """A v1 line and a v2 binary header sent by hand from the trusted 127.0.0.1: the banner
    session is logged with the header's address and the message's Received: shows it.
    IPv6 sources (TCP6) are logged in canonical form. LOCAL (v2) and UNKNOWN (v1) headers, as
    health checks send, keep the peer's address."""
    b = proxy_env
    P = proxy_port(b)["port"]
    # v1
    since = log_size(b)
    s = raw_conn(P)
    s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.2 5000 25\r\n")
    with smtp_on(s) as c:
        code, lines = c.reply()
        assert code == 220, lines
        assert c.cmd(f"EHLO {CLIENT_NAME}")[0] == 250
        assert c.cmd("MAIL FROM:<bob@remote.test>")[0] == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, lines = c.cmd("Subject: by hand v1\r\n\r\nhello\r\n.")
        assert code == 250, lines
        c.cmd("QUIT")
    ev = session_event(b, "connect", "192.0.2.7", since)
    assert ev is not None, "no `connect ... client=192.0.2.7` line:\n" + b.log_tail(30)
    assert "[192.0.2.7]" in received_header(message_with_subject(b, "by hand v1"))
    # v2 PROXY TCP4
    since = log_size(b)
    s = raw_conn(P)
    s.sendall(v2_header("198.51.100.23", IP2, 40000, P))
    with smtp_on(s) as c:
        assert c.reply()[0] == 220
        assert c.cmd("QUIT")[0] == 221
    assert session_event(b, "connect", "198.51.100.23", since) is not None, b.log_tail(30)
    # IPv6 client addresses, v1 TCP6 and v2 TCP6 (logged in canonical form)
    v2_tcp6 = (V2_SIG + bytes([0x21, 0x21]) + struct.pack("!H", 36)
               + socket.inet_pton(socket.AF_INET6, "2001:db8:0:0::6") + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
               + struct.pack("!HH", 40000, P))
    # ... and v2 LOCAL and v1 UNKNOWN keep the peer's own address.
    for hdr, want in ((b"PROXY TCP6 2001:db8::7 2001:db8::1 5000 25\r\n", "2001:db8::7"), (v2_tcp6, "2001:db8::6"),
                      (V2_LOCAL, PROXY_HOST), (b"PROXY UNKNOWN\r\n", PROXY_HOST)):
        since = log_size(b)
        s = raw_conn(P)
        s.sendall(hdr)
        with smtp_on(s) as c:
            code, lines = c.reply()
            assert code == 220, (hdr, lines)
            assert c.cmd("QUIT")[0] == 221
        assert session_event(b, "connect", want, since) is not None, f"{hdr!r}:\n" + b.log_tail(30)


def test_plain_port_ignores_proxy_settings(proxy_env):
    """A port without proxyProtocol is untouched by proxyTrustedNetworks: 127.0.0.1 gets its
    banner at once, and a PROXY line is just a bad command there (never believed)."""
    b = proxy_env
    p = create_port(b, "Plain", "smtp", "none", assigned=[IP2])
    assert p.get("proxyProtocol") is False, p
    assert b.wait_listener(IP2, p["port"], timeout=5) is not None
    since = log_size(b)
    with RawSMTP(IP2, p["port"], timeout=5) as c:
        assert c.banner[0] == 220
        code, lines = c.cmd("PROXY TCP4 192.0.2.99 127.0.0.2 5000 25")
        assert 500 <= code < 600, lines
    assert not [e for e in log_events(b, since) if e.get("client") == "192.0.2.99"], b.log_tail(20)
