"""Helpers for the outbound-delivery tests (issue 6): a local DNS server (Debian's dnsmasq),
receiving SMTP servers (aiosmtpd) on 127.0.0.x / ::1, and loopback address helpers.

Not a test file: test_outbound.py imports it. Everything listens on loopback only and every
wait is bounded.
"""
from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

DNSMASQ = os.environ.get("DNSMASQ_BIN", "/usr/sbin/dnsmasq")
DNS_START_TIMEOUT = 10.0


# --------------------------------------------------------------------------- ports / addresses


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `host` (DNS serves both)."""
    from conftest import free_port
    for _ in range(200):
        p = free_port()
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind((host, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise RuntimeError("no port free for both UDP and TCP")


def free_port_on(hosts: list[str]) -> int:
    """A TCP port free on every one of `hosts` (v4 or v6 literals), e.g. the one --mx-port names."""
    from conftest import free_port
    for _ in range(200):
        p = free_port()
        ok = True
        for h in hosts:
            fam = socket.AF_INET6 if ":" in h else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.bind((h, p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return p
    raise RuntimeError(f"no port free on all of {hosts}")


_ipv6_ok: bool | None = None


def ipv6_loopback_usable() -> bool:
    """True if a TCP listener on [::1] accepts a connection from [::1]."""
    global _ipv6_ok
    if _ipv6_ok is not None:
        return _ipv6_ok
    ok = False
    try:
        srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            srv.bind(("::1", 0))
            srv.listen(1)
            port = srv.getsockname()[1]
            c = socket.create_connection(("::1", port), timeout=2)
            c.close()
            ok = True
        finally:
            srv.close()
    except OSError:
        ok = False
    _ipv6_ok = ok
    return ok


def require_ipv6() -> None:
    if not ipv6_loopback_usable():
        pytest.skip("environment: ::1 is not usable (IPv6 disabled on lo); this test needs an IPv6 loopback")


def _ip(*args: str) -> subprocess.CompletedProcess:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    return subprocess.run([ip, *args], capture_output=True, timeout=15, stdin=subprocess.DEVNULL)


def address_on_lo(addr: str) -> bool:
    p = _ip("-o", "addr", "show", "dev", "lo")
    return p.returncode == 0 and f" {addr}/" in p.stdout.decode()


class LoAddress:
    """An address added to `lo` for the length of a test (`ip addr add ADDR/32 dev lo`).

    The constructor skips the test when the process lacks CAP_NET_ADMIN (or has no `ip`).
    `remove()` may be called early; `cleanup()` (idempotent) removes it if still there."""

    def __init__(self, addr: str, prefix: int | None = None):
        self.addr = addr
        self.prefix = prefix if prefix is not None else (128 if ":" in addr else 32)
        if shutil.which("ip") is None and not Path("/usr/sbin/ip").exists():
            pytest.skip("environment: no `ip` command to add an address to lo")
        if address_on_lo(addr):
            # left over from an interrupted run: take it over
            self.added = True
            return
        p = _ip("addr", "add", f"{addr}/{self.prefix}", "dev", "lo")
        if p.returncode != 0:
            err = p.stderr.decode(errors="replace").strip()
            if "not permitted" in err.lower() or "permission" in err.lower():
                pytest.skip(f"environment: cannot add {addr} to lo without CAP_NET_ADMIN ({err})")
            raise AssertionError(f"ip addr add {addr}/{self.prefix} dev lo failed: {err}")
        self.added = True
        # the address is bindable at once for /32 on lo, but wait (bounded) to be sure
        end = time.monotonic() + 5
        for _ in range(100):
            if can_bind(addr) or time.monotonic() > end:
                break
            time.sleep(0.05)

    def remove(self) -> None:
        if self.added:
            p = _ip("addr", "del", f"{self.addr}/{self.prefix}", "dev", "lo")
            assert p.returncode == 0 or not address_on_lo(self.addr), p.stderr.decode(errors="replace")
            self.added = False

    cleanup = remove


def can_bind(addr: str) -> bool:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
        return True
    except OSError as e:
        if e.errno == errno.EADDRNOTAVAIL:
            return False
        raise
    finally:
        s.close()


# --------------------------------------------------------------------------- DNS (dnsmasq)


def split_txt(s: str, size: int = 255) -> list[str]:
    """A TXT value as character-strings of at most `size` bytes (RFC 1035 3.3.14)."""
    b = s.encode()
    return [b[i:i + size].decode() for i in range(0, len(b), size)] or [""]


class DNSServer:
    """dnsmasq serving a fixed zone on 127.0.0.1:<port>, nothing forwarded.

    Records: `mx(domain, host, pref)`, `null_mx(domain)`, `host(name, v4, v6)`, `txt(name, value)`;
    every name outside them answers NXDOMAIN (`--local=/#/`). Changes apply on `restart()`.
    """

    def __init__(self, workdir: Path, port: int | None = None, addr: str = "127.0.0.1"):
        if not Path(DNSMASQ).exists():
            pytest.fail(f"{DNSMASQ} not found: install Debian's dnsmasq-base")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.addr = addr
        self.port = port or free_udp_tcp_port(addr)
        self.mx_records: list[tuple[str, str, int]] = []
        self.null_mx_domains: list[str] = []
        self.hosts: dict[str, tuple[str | None, str | None]] = {}
        self.txts: dict[str, list[str]] = {}
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "dnsmasq.log"
        self._logf = None

    # -- records

    def mx(self, domain: str, host: str, pref: int = 10) -> "DNSServer":
        self.mx_records.append((domain, host, pref))
        return self

    def null_mx(self, domain: str) -> "DNSServer":
        """RFC 7505: `domain. MX 0 .`"""
        self.null_mx_domains.append(domain)
        return self

    def host(self, name: str, v4: str | None = None, v6: str | None = None) -> "DNSServer":
        assert v4 or v6
        self.hosts[name] = (v4, v6)
        return self

    def txt(self, name: str, value: str | list[str]) -> "DNSServer":
        """A TXT record; a str longer than 255 bytes is split into several character-strings."""
        self.txts[name.rstrip(".")] = split_txt(value) if isinstance(value, str) else list(value)
        return self

    def clear(self) -> None:
        self.mx_records.clear()
        self.null_mx_domains.clear()
        self.hosts.clear()
        self.txts.clear()

    # -- process

    @property
    def address(self) -> str:
        """The `--dns` argument for berth."""
        return f"{self.addr}:{self.port}"

    def conf_text(self) -> str:
        """The records as a dnsmasq config file (its parser handles quoted TXT strings)."""
        lines = []
        for domain, host, pref in self.mx_records:
            lines.append(f"mx-host={domain},{host},{pref}")
        for domain in self.null_mx_domains:
            lines.append(f"dns-rr={domain},15,000000")  # preference 0, exchange "." (the root label)
        for name, (v4, v6) in self.hosts.items():
            lines.append("host-record=" + ",".join([name] + [x for x in (v4, v6) if x]))
        for name, strings in self.txts.items():
            for s in strings:
                assert '"' not in s and "\\" not in s, f"TXT string needs escaping: {s!r}"
                assert len(s.encode()) <= 255, "TXT character-string longer than 255 bytes"
            lines.append("txt-record=" + name + "," + ",".join(f'"{s}"' for s in strings))
        return "\n".join(lines) + "\n"

    def argv(self) -> list[str]:
        conf = self.workdir / "records.conf"
        conf.write_text(self.conf_text())
        return [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces",
                f"--listen-address={self.addr}", f"--port={self.port}", f"--conf-file={conf}",
                "--pid-file=", "--user=root", "--group=root", "--log-facility=-", "--log-queries",
                "--local=/#/", "--no-negcache", "--local-ttl=1", "--cache-size=0", "--edns-packet-max=4096"]

    def start(self, timeout: float = DNS_START_TIMEOUT) -> "DNSServer":
        assert self.proc is None or self.proc.poll() is not None, "dnsmasq already running"
        self._logf = open(self.log_path, "ab")
        self._logf.write(("\n===== " + " ".join(self.argv()) + "\n").encode())
        self._logf.flush()
        self.proc = subprocess.Popen(self.argv(), stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + timeout
        last = None
        for _ in range(1000):
            if self.proc.poll() is not None:
                raise AssertionError(f"dnsmasq exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.query("berth-dns-probe.invalid", "A")
                return self
            except Exception as e:  # noqa: BLE001 - any answer (NXDOMAIN included) means it is up
                import dns.resolver
                if isinstance(e, (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)):
                    return self
                last = e
            if time.monotonic() > end:
                break
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"dnsmasq did not answer within {timeout}s (last: {last!r}):\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def restart(self) -> "DNSServer":
        """Apply the current records: stop and start again on the same port."""
        self.stop()
        return self.start()

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    # -- client side (dnspython)

    def resolver(self, timeout: float = 3.0):
        import dns.resolver
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [self.addr]
        r.port = self.port
        r.timeout = timeout
        r.lifetime = timeout
        r.cache = None
        return r

    def query(self, name: str, rdtype: str, tcp: bool = False):
        return self.resolver().resolve(name, rdtype, tcp=tcp, search=False)

    def dkim_dnsfunc(self) -> Callable[..., bytes | None]:
        """For dkim.verify(dnsfunc=...): the TXT record at `name`, its strings joined."""
        import dns.resolver

        def get_txt(name: bytes, timeout: float = 5):
            qname = name.decode() if isinstance(name, bytes) else name
            try:
                ans = self.resolver(timeout=timeout).resolve(qname, "TXT", tcp=True, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return None
            for r in ans:
                return b"".join(r.strings)
            return None

        return get_txt

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


# --------------------------------------------------------------------------- receiving SMTP (aiosmtpd)


@dataclass
class Received:
    peer: str              # the client's address (Berth's source address)
    peer_port: int
    local: str             # the receiver address it connected to
    helo: str | None       # EHLO/HELO name
    esmtp: bool
    tls: bool
    mail_from: str
    rcpt_tos: list[str]
    content: bytes         # the message as received (dot-stuffing removed), CRLF line ends
    mail_options: list[str] = field(default_factory=list)
    at: float = 0.0


@dataclass
class Attempt:
    """One SMTP transaction the receiver refused (or accepted) at some step."""
    peer: str
    helo: str | None
    step: str             # "rcpt" | "data" | "mail"
    arg: str
    reply: str


class Receiver:
    """An aiosmtpd server on (host, port) that records what it receives.

    Replies can be forced: `rcpt_reply` / `data_reply` / `mail_reply` are None (accept) or a
    reply string ("450 4.2.0 Try later") or a callable(address_or_envelope) -> str | None.
    Every connection is counted in `connections` (peer addresses). With `tls=(cert, key)` it
    offers STARTTLS. The object lives independently of Berth, so a Berth restart changes
    nothing for it; `restart()` rebinds the same address and port and keeps the records."""

    def __init__(self, host: str, port: int, *, tls: tuple[Path, Path] | None = None, hostname: str | None = None,
                 data_size_limit: int = 64 * 1024 * 1024):
        self.host = host
        self.port = port
        self.tls = tls
        self.hostname = hostname or f"rx-{host.replace(':', '_').replace('.', '-')}.test"
        self.data_size_limit = data_size_limit
        self.rcpt_reply: str | Callable | None = None
        self.data_reply: str | Callable | None = None
        self.mail_reply: str | Callable | None = None
        self.messages: list[Received] = []
        self.refused: list[Attempt] = []
        self.connections: list[str] = []  # peer address of each TCP connection
        self._seen: set[tuple[str, int]] = set()
        self._active: set[tuple[str, int]] = set()
        self.max_active = 0  # most TCP connections open at once
        self._lock = threading.Lock()
        self.controller = None
        self._probing = False

    # -- handler hooks (called in the controller's loop thread)

    def _reply(self, what, arg):
        r = what(arg) if callable(what) else what
        return r

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        r = self._reply(self.mail_reply, address)
        if r:
            with self._lock:
                self.refused.append(Attempt(_peer(session), session.host_name, "mail", address, r))
            return r
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        r = self._reply(self.rcpt_reply, address)
        if r:
            with self._lock:
                self.refused.append(Attempt(_peer(session), session.host_name, "rcpt", address, r))
            return r
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        r = self._reply(self.data_reply, envelope)
        if r:
            with self._lock:
                self.refused.append(Attempt(_peer(session), session.host_name, "data",
                                            ",".join(envelope.rcpt_tos), r))
            return r
        peer = session.peer
        content = envelope.original_content if envelope.original_content is not None else envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        sock = server.transport.get_extra_info("sockname") if server.transport else None
        rec = Received(peer=_norm(peer[0]), peer_port=peer[1], local=_norm(sock[0]) if sock else self.host,
                       helo=session.host_name, esmtp=bool(session.extended_smtp),
                       tls=session.ssl is not None, mail_from=envelope.mail_from,
                       rcpt_tos=list(envelope.rcpt_tos), content=content,
                       mail_options=list(envelope.mail_options), at=time.monotonic())
        with self._lock:
            self.messages.append(rec)
        return "250 2.0.0 OK queued"

    # -- lifecycle

    def _tls_context(self):
        if not self.tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        return ctx

    def start(self) -> "Receiver":
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        receiver = self

        class _Handler:
            handle_MAIL = receiver.handle_MAIL
            handle_RCPT = receiver.handle_RCPT
            handle_DATA = receiver.handle_DATA

        class _SMTP(SMTP):
            def connection_made(self, transport):
                peer = transport.get_extra_info("peername")
                if peer and not receiver._probing:
                    with receiver._lock:
                        # STARTTLS calls connection_made again for the same TCP connection
                        key = (_norm(peer[0]), peer[1])
                        if key not in receiver._seen:
                            receiver._seen.add(key)
                            receiver.connections.append(key[0])
                            receiver._active.add(key)
                            receiver.max_active = max(receiver.max_active, len(receiver._active))
                        self._berth_key = key
                super().connection_made(transport)

            def connection_lost(self, exc):
                key = getattr(self, "_berth_key", None)
                if key is not None:
                    with receiver._lock:
                        receiver._active.discard(key)
                super().connection_lost(exc)

        kw = dict(data_size_limit=self.data_size_limit, decode_data=False,
                  enable_SMTPUTF8=True, ident="Berth test receiver")
        tls = self._tls_context()
        if tls is not None:
            kw.update(tls_context=tls, require_starttls=False)

        class Ctl(Controller):
            def factory(self):
                return _SMTP(self.handler, **self.SMTP_kwargs)

        self.controller = Ctl(_Handler(), hostname=self.host, port=self.port, ready_timeout=10,
                              server_hostname=self.hostname, **kw)
        self._probing = True
        try:
            self.controller.start()
        finally:
            # the controller's own start-up probe connects once; do not count it
            time.sleep(0.05)
            self._probing = False
        return self

    def stop(self) -> None:
        if self.controller is not None:
            try:
                self.controller.stop()
            except (AssertionError, RuntimeError):
                pass
            self.controller = None

    def restart(self) -> "Receiver":
        self.stop()
        return self.start()

    # -- queries

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def wait_messages(self, n: int, timeout: float = 15.0, pred=None) -> list[Received]:
        """Poll until at least `n` messages (matching pred) arrived; returns them (maybe fewer)."""
        end = time.monotonic() + timeout
        got = []
        for _ in range(100000):
            got = [m for m in self.snapshot() if pred is None or pred(m)]
            if len(got) >= n or time.monotonic() > end:
                break
            time.sleep(0.05)
        return got

    def wait_refused(self, n: int, timeout: float = 15.0) -> list[Attempt]:
        end = time.monotonic() + timeout
        got = []
        for _ in range(100000):
            with self._lock:
                got = list(self.refused)
            if len(got) >= n or time.monotonic() > end:
                break
            time.sleep(0.05)
        return got

    def with_token(self, token: str) -> list[Received]:
        t = token.encode()
        return [m for m in self.snapshot() if t in m.content]

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def _norm(addr: str) -> str:
    if addr.startswith("::ffff:") and "." in addr:
        return addr[7:]
    return addr.split("%", 1)[0]


def _peer(session) -> str:
    return _norm(session.peer[0]) if session.peer else ""


# --------------------------------------------------------------------------- message helpers


def header_value(raw: bytes, name: str) -> str | None:
    from email.parser import BytesHeaderParser
    msg = BytesHeaderParser().parsebytes(raw)
    v = msg.get(name)
    return None if v is None else str(v)


def dkim_signatures(raw: bytes) -> list[dict[str, str]]:
    """The tags of each DKIM-Signature header, in order."""
    from email.parser import BytesHeaderParser
    msg = BytesHeaderParser().parsebytes(raw)
    out = []
    for v in msg.get_all("DKIM-Signature") or []:
        tags = {}
        for part in "".join(str(v).split()).split(";"):
            if "=" in part:
                k, val = part.split("=", 1)
                tags[k.strip()] = val.strip()
        out.append(tags)
    return out


def dkim_verify_all(raw: bytes, dnsfunc) -> list[tuple[dict[str, str], bool]]:
    """Verify every DKIM-Signature of `raw` separately: [(tags, ok)]."""
    import dkim
    sigs = dkim_signatures(raw)
    d = dkim.DKIM(raw)
    res = []
    for i, tags in enumerate(sigs):
        try:
            ok = bool(d.verify(idx=i, dnsfunc=dnsfunc))
        except dkim.DKIMException:
            ok = False
        res.append((tags, ok))
    return res


# --------------------------------------------------------------------------- a scripted (misbehaving) SMTP server


@dataclass
class ScriptedConnection:
    peer: str
    commands: list[str] = field(default_factory=list)
    injected: bool = False          # STARTTLS answered with extra bytes after the 220
    after_starttls: bytes = b""     # what the client sent next (b"" = it closed)
    messages: list[bytes] = field(default_factory=list)


class ScriptedSMTP:
    """A plain-socket SMTP server for client misbehaviour tests. It offers STARTTLS and answers
    it with `220` followed by `inject` in the same write (RFC 3207 §5's command injection
    seen from the client side), then waits `wait` s for what the client does: a correct client
    closes; one that goes on sends a TLS ClientHello (0x16...). Without STARTTLS (a client that
    retries in plaintext) it accepts mail. Every connection is recorded."""

    def __init__(self, host: str, port: int, inject: bytes = b"250 2.0.0 injected\r\n", wait: float = 3.0,
                 ehlo: bool = True):
        self.host, self.port, self.inject, self.wait = host, port, inject, wait
        self.ehlo = ehlo  # False: an RFC 821 server, EHLO is 502 and HELO works (no extensions)
        self.connections: list[ScriptedConnection] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = None
        self._thread = None

    def start(self) -> "ScriptedSMTP":
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(16)
        s.settimeout(0.2)
        self._sock = s
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    def snapshot(self) -> list[ScriptedConnection]:
        with self._lock:
            return list(self.connections)

    def _accept_loop(self):
        for _ in range(10 ** 9):
            if self._stop.is_set():
                return
            try:
                c, addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = ScriptedConnection(peer=_norm(addr[0]))
            with self._lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(c, conn), daemon=True).start()

    def _serve(self, c: socket.socket, conn: ScriptedConnection):
        c.settimeout(15)
        buf = b""

        def line():
            nonlocal buf
            for _ in range(10000):
                i = buf.find(b"\r\n")
                if i >= 0:
                    out, buf = buf[:i], buf[i + 2:]
                    return out
                chunk = c.recv(65536)
                if not chunk:
                    return None
                buf += chunk
            return None

        try:
            c.sendall(b"220 scripted.test ESMTP\r\n")
            for _ in range(100000):
                ln = line()
                if ln is None:
                    return
                cmd = ln.decode("utf-8", "replace")
                conn.commands.append(cmd)
                verb = cmd.split(" ", 1)[0].upper()
                if verb == "EHLO" and not self.ehlo:
                    c.sendall(b"502 5.5.1 EHLO not implemented\r\n")
                elif verb == "HELO":
                    c.sendall(b"250 scripted.test\r\n")
                elif verb == "EHLO":
                    c.sendall(b"250-scripted.test\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SIZE 10000000\r\n")
                elif verb == "STARTTLS":
                    conn.injected = True
                    c.sendall(b"220 2.0.0 Ready to start TLS\r\n" + self.inject)
                    c.settimeout(self.wait)
                    try:
                        conn.after_starttls = buf + c.recv(65536)
                    except socket.timeout:
                        conn.after_starttls = buf + b"<timeout>"
                    except OSError:
                        conn.after_starttls = buf
                    return
                elif verb == "DATA":
                    c.sendall(b"354 go ahead\r\n")
                    data = []
                    for _ in range(10 ** 7):
                        l2 = line()
                        if l2 is None:
                            return
                        if l2 == b".":
                            break
                        data.append(l2[1:] if l2.startswith(b"..") else l2)
                    conn.messages.append(b"\r\n".join(data) + b"\r\n")
                    c.sendall(b"250 2.0.0 accepted\r\n")
                elif verb == "QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                elif verb == "RSET" or verb == "NOOP" or verb in ("MAIL", "RCPT"):
                    c.sendall(b"250 2.0.0 ok\r\n")
                else:
                    c.sendall(b"502 5.5.1 unknown\r\n")
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass
