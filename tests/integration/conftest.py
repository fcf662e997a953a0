"""Fixtures and helpers for Berth's end-to-end integration tests.

Everything runs on loopback. Every wait is bounded in count and time.
The server binary comes from $BERTH_BIN (default: <repo>/.build/debug/berth).
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BERTH_BIN = Path(os.environ.get("BERTH_BIN", REPO_ROOT / ".build" / "debug" / "berth"))
if not BERTH_BIN.is_absolute():
    BERTH_BIN = (REPO_ROOT / BERTH_BIN).resolve()

ADMIN_PASSWORD = "secret-admin-pw"
SERVER_HOSTNAME = "mx.test.local"
IP2 = "127.0.0.2"
IP3 = "127.0.0.3"
CLIENT_NAME = "client.test"
ALICE = "alice@example.com"
ALICE_PW = "alice-pw-123"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# The contract says a change applies within 1 s; we poll with a little tolerance.
APPLY_DEADLINE = 1.5

# --------------------------------------------------------------------------- ports

_rng = random.Random(os.getpid() ^ int(time.time() * 1000))
_handed_out: set[int] = set()


def _port_is_free(port: int, hosts=("0.0.0.0",)) -> bool:
    # Binding the wildcard fails if any address already holds this port.
    for addr in hosts:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port() -> int:
    """A random free high port below the ephemeral range, never handed out twice."""
    for _ in range(500):
        p = _rng.randint(20000, 32000)
        if p in _handed_out:
            continue
        if _port_is_free(p):
            _handed_out.add(p)
            return p
    raise RuntimeError("no free port found after 500 tries")


# --------------------------------------------------------------------------- sockets


def connect_state(host: str, port: int, timeout: float = 0.5) -> str:
    """'ok', 'refused' or 'timeout'/'error:<x>' for one TCP connect attempt."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    except OSError as e:  # pragma: no cover - diagnostic
        return f"error:{e}"
    s.close()
    return "ok"


def wait_connect_state(host: str, port: int, want: str, deadline: float = APPLY_DEADLINE) -> str:
    """Poll until a connect gives `want`; returns the last state seen."""
    end = time.monotonic() + deadline
    state = connect_state(host, port)
    for _ in range(1000):
        if state == want or time.monotonic() >= end:
            break
        time.sleep(0.05)
        state = connect_state(host, port)
    return state


def tls_client_context(**kw) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


class SMTPReplyError(AssertionError):
    pass


class RawClient:
    """A raw (optionally TLS) socket to a mail server and the bytes read but not yet taken:
    what the byte-exact SMTP, IMAP and POP3 clients share."""

    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None,
                 source: str | None = None):
        # source: connect from this local address (e.g. "127.0.0.77"), so per-client limits and bans
        # hit that address and never the suite's own 127.0.0.1
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock)
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed (pending {self.buf[:200]!r})")
        self.buf += chunk

    def line(self, limit: int = 1 << 20) -> bytes:
        """The next CRLF-terminated line, without its CRLF."""
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + 2:]
                return out
            assert len(self.buf) <= limit, "line too long"
            self._fill()
        raise AssertionError("no line")

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def starttls(self, ctx: ssl.SSLContext | None = None) -> None:
        """After the server's go-ahead: nothing may have come after it (STARTTLS injection)."""
        assert self.buf == b"", f"server sent data after the STARTTLS reply: {self.buf!r}"
        self.sock = (ctx or tls_client_context()).wrap_socket(self.sock)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class RawSMTP(RawClient):
    """A byte-exact SMTP client over a raw (optionally TLS) socket."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, tls: ssl.SSLContext | None = None,
                 read_banner: bool = True, source: str | None = None):
        super().__init__(host, port, timeout=timeout, tls=tls, source=source)
        self.banner = self.reply() if read_banner else None

    def readline(self, limit: int = 65536) -> bytes:
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > limit:
                raise SMTPReplyError(f"reply line longer than {limit}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SMTPReplyError(f"connection closed (pending {self.buf!r})")
            self.buf += chunk
        raise SMTPReplyError("readline: too many reads")

    def reply(self) -> tuple[int, list[str]]:
        lines: list[str] = []
        for _ in range(1000):
            raw = self.readline()
            line = raw.decode("utf-8", "replace")
            if len(line) < 3 or not line[:3].isdigit():
                raise SMTPReplyError(f"malformed reply line {raw!r}")
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), lines
            if line[3] != "-":
                raise SMTPReplyError(f"malformed reply line {raw!r}")
        raise SMTPReplyError("reply with more than 1000 lines")

    def cmd(self, line: str | bytes) -> tuple[int, list[str]]:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def nothing_pending(self, wait: float = 0.5) -> bytes:
        """Return any bytes that arrive within `wait` s (expected: b'')."""
        extra = self.buf
        old = self.sock.gettimeout()
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
            extra += chunk
        except (socket.timeout, ssl.SSLWantReadError):
            pass
        finally:
            self.sock.settimeout(old)
        return extra

    def at_eof(self, wait: float = 5.0) -> bool:
        """True if the server closes the connection within `wait` s."""
        end = time.monotonic() + wait
        for _ in range(1000):
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            except ssl.SSLError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False


def banner_of(host: str, port: int, tls: ssl.SSLContext | None = None) -> str:
    with RawSMTP(host, port, timeout=10, tls=tls) as c:
        code, lines = c.banner
        assert code == 220, lines
        c.cmd("QUIT")
        return lines[0]


# --------------------------------------------------------------------------- server

# A DNS server address nothing answers on (discard port, loopback).
NO_DNS = "127.0.0.1:9"
_serve_help: str | None = None


def serve_supports(option: str) -> bool:
    """True if `berth serve --help` lists `option` (read once per run)."""
    global _serve_help
    if _serve_help is None:
        try:
            p = subprocess.run([str(BERTH_BIN), "serve", "--help"], capture_output=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            _serve_help = (p.stdout + p.stderr).decode(errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            _serve_help = ""
    return option in _serve_help



class Berth:
    """One berth server process with its data directory and admin endpoint."""

    def __init__(self, data_dir: Path, *, default_ports: bool = False, hostname: str = SERVER_HOSTNAME,
                 password: str | None = ADMIN_PASSWORD, admin_port: int | None = None,
                 extra_args: list[str] | None = None, preexec_fn=None):
        self.data = Path(data_dir)
        # appended to `berth serve ...` (e.g. ["--idle-timeout", "3"])
        self.extra_args = list(extra_args or [])
        # run in the child before exec (e.g. to set its RLIMIT_NOFILE)
        self.preexec_fn = preexec_fn
        self.data.mkdir(parents=True, exist_ok=True)
        self.default_ports = default_ports
        self.hostname = hostname
        self.password = password  # env password at start; also the password the API helper uses
        self.admin_port = admin_port or free_port()
        self.log_path = self.data.parent / f"{self.data.name}-berth.log"
        self.proc: subprocess.Popen | None = None
        self._logf = None
        self.starts = 0

    # -- process

    @property
    def admin_tls(self) -> bool:
        """The admin listener serves HTTPS (`--admin-certificate`)."""
        return "--admin-certificate" in self.extra_args

    @property
    def admin_url(self) -> str:
        return f"{'https' if self.admin_tls else 'http'}://127.0.0.1:{self.admin_port}"

    def _urlopen(self, request, timeout: float):
        # The admin's own certificate is whatever the test made: check the TLS, not the name.
        context = None
        if self.admin_tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return urllib.request.urlopen(request, timeout=timeout, context=context)

    def argv(self) -> list[str]:
        a = [str(BERTH_BIN), "serve", "--data", str(self.data), "--admin", f"127.0.0.1:{self.admin_port}",
             "--hostname", self.hostname]
        if not self.default_ports:
            a.append("--no-default-ports")
        a.extend(self.extra_args)
        if "--dns" not in self.extra_args and serve_supports("--dns"):
            # Outbound delivery (issue 6) resolves recipient domains: point it at a closed
            # loopback port so no test ever looks up, or sends mail to, a real host.
            a.extend(["--dns", NO_DNS])
        return a

    def start(self, timeout: float = START_TIMEOUT, env_password: str | None = "__same__") -> None:
        if not BERTH_BIN.exists():
            pytest.fail(f"berth binary not found at {BERTH_BIN} (set BERTH_BIN)")
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = dict(os.environ)
        pw = self.password if env_password == "__same__" else env_password
        env.pop("BERTH_ADMIN_PASSWORD", None)
        if pw is not None:
            env["BERTH_ADMIN_PASSWORD"] = pw
        self._logf = open(self.log_path, "ab")
        self._logf.write(f"\n===== start #{self.starts + 1}: {' '.join(self.argv())}\n".encode())
        self._logf.flush()
        self.log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(self.argv(), stdout=self._logf, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=self.preexec_fn)
        self.starts += 1
        end = time.monotonic() + timeout
        last = None
        for _ in range(10000):
            if self.proc.poll() is not None:
                pytest.fail(f"berth exited with {self.proc.returncode} during start-up:\n{self.log_tail()}")
            try:
                with self._urlopen(self.admin_url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
                    last = r.status
            except urllib.error.HTTPError as e:
                last = e.code
            except (OSError, urllib.error.URLError) as e:
                last = repr(e)
            if time.monotonic() > end:
                break
            time.sleep(0.1)
        self.kill()
        pytest.fail(f"berth did not answer /healthz with 200 within {timeout}s (last: {last}):\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send `sig`, wait up to `timeout` s; return the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        rc = self.proc.returncode
        self._close_log()
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        self._close_log()

    def _close_log(self):
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def restart(self, **kw) -> None:
        rc = self.stop()
        assert rc == 0, f"berth exit code on SIGTERM was {rc}:\n{self.log_tail()}"
        self.start(**kw)

    @property
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.splitlines()[-n:])

    # -- admin API

    def api(self, method: str, path: str, body=None, *, auth: bool = True, password: str | None = None,
            raw: bytes | None = None, timeout: float = 15.0):
        """Return (status, parsed JSON or text or None)."""
        url = self.admin_url + path
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            pw = self.password if password is None else password
            headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{pw}".encode()).decode()
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._urlopen(req, timeout=timeout) as r:
                status, payload = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, payload = e.code, e.read()
        if not payload:
            return status, None
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload.decode("utf-8", "replace")

    def http(self, method: str, path: str, body=None, headers=None):
        """One request as a client that is not a browser, nothing added but a JSON body's
        Content-Type (no auth): (status, headers, parsed JSON or raw bytes). HTTPS when the
        admin listener is (its certificate is the test's: not verified)."""
        if self.admin_tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.admin_port, context=context, timeout=15)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=15)
        try:
            data = json.dumps(body).encode() if body is not None else None
            all_headers = {"Content-Type": "application/json"} if data is not None else {}
            all_headers.update(headers or {})
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            payload = response.read()
            try:
                parsed = json.loads(payload) if payload else None
            except ValueError:
                parsed = payload
            return response.status, response.headers, parsed
        finally:
            conn.close()

    def ok(self, method: str, path: str, body=None, statuses=(200, 201, 204)):
        st, js = self.api(method, path, body)
        assert st in statuses, f"{method} {path} {body!r} -> {st} {js!r}"
        return js

    # -- convenience

    def ports(self) -> list[dict]:
        js = self.ok("GET", "/api/v1/ports")
        return js["ports"] if isinstance(js, dict) and "ports" in js else js

    def port(self, pid: str) -> dict:
        return unwrap(self.ok("GET", f"/api/v1/ports/{pid}"), "port")

    def ips(self) -> list[dict]:
        js = self.ok("GET", "/api/v1/ip-addresses")
        return js["ipAddresses"] if isinstance(js, dict) and "ipAddresses" in js else js

    def ip(self, addr: str) -> dict:
        return unwrap(self.ok("GET", f"/api/v1/ip-addresses/{addr}"), "ipAddress")

    def listeners(self) -> list[dict]:
        js = self.ok("GET", "/api/v1/listeners")
        return js["listeners"] if isinstance(js, dict) and "listeners" in js else js

    def listener(self, addr: str, port: int) -> dict | None:
        for l in self.listeners():
            if l.get("address") == addr and l.get("port") == port:
                return l
        return None

    def wait_listener(self, addr: str, port: int, states=("listening",), timeout: float = 5.0) -> dict | None:
        end = time.monotonic() + timeout
        l = None
        for _ in range(1000):
            l = self.listener(addr, port)
            if l is not None and l.get("state") in states:
                return l
            if time.monotonic() > end:
                break
            time.sleep(0.1)
        return l

    def bindings(self) -> dict:
        return self.ok("GET", "/api/v1/bindings")


def unwrap(js, key):
    if isinstance(js, dict) and "id" not in js and "address" not in js and key in js and isinstance(js[key], dict):
        return js[key]
    return js


def error_of(js) -> dict:
    assert isinstance(js, dict) and isinstance(js.get("error"), dict), f"not an error body: {js!r}"
    return js["error"]


def warning_texts(obj: dict) -> list[str]:
    out = []
    for w in obj.get("warnings") or []:
        out.append(w if isinstance(w, str) else json.dumps(w))
    return out


# --------------------------------------------------------------------------- setup helpers


def add_ip(b: Berth, addr: str, **fields) -> dict:
    body = {"address": addr}
    body.update(fields)
    return unwrap(b.ok("POST", "/api/v1/ip-addresses", body, statuses=(200, 201)), "ipAddress")


def add_ips(b: Berth) -> None:
    add_ip(b, IP2)
    add_ip(b, IP3)


def create_port(b: Berth, name: str, protocol: str = "smtp", encryption: str = "none", port: int | None = None,
                assigned: list[str] | None = None, **extra) -> dict:
    body = {"name": name, "protocol": protocol, "encryption": encryption,
            "port": port if port is not None else free_port()}
    if assigned is not None:
        body["assignedTo"] = assigned
    body.update(extra)
    st, js = b.api("POST", "/api/v1/ports", body)
    assert st in (200, 201), f"POST /api/v1/ports {body} -> {st} {js}"
    js = unwrap(js, "port")
    assert isinstance(js, dict) and js.get("id"), js
    return js


def set_ip(b: Berth, addr: str, **fields) -> dict:
    """PUT an IP address, keeping the fields not given (ports, hostname, description)."""
    cur = b.ip(addr)
    body = {"ports": cur.get("ports", []), "hostname": cur.get("hostname"), "description": cur.get("description", "")}
    body.update(fields)
    return unwrap(b.ok("PUT", f"/api/v1/ip-addresses/{addr}", body), "ipAddress")


def setup_domain(b: Berth, domain: str = "example.com", user: str = "alice", password: str = ALICE_PW) -> None:
    b.ok("POST", "/api/v1/domains", {"name": domain}, statuses=(200, 201))
    b.ok("POST", f"/api/v1/domains/{domain}/users",
         {"name": user, "password": password, "displayName": user.title()}, statuses=(200, 201))


def maildir_new(b: Berth, domain: str = "example.com", user: str = "alice") -> list[Path]:
    d = b.data / "mail" / domain / user / "new"
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file())


def wait_maildir_count(b: Berth, n: int, timeout: float = 5.0, **kw) -> list[Path]:
    end = time.monotonic() + timeout
    files = maildir_new(b, **kw)
    for _ in range(1000):
        if len(files) >= n or time.monotonic() > end:
            break
        time.sleep(0.05)
        files = maildir_new(b, **kw)
    return files


def smtp_message(subject: str, body: str, frm: str = "bob@remote.test", to: str = ALICE) -> str:
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n\r\n{body}\r\n")


def run(argv: list[str], timeout: float = 60, input: bytes | None = None, env: dict | None = None):
    return subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL if input is None else None)


# `since` in /api/v1/listeners may have 1-second resolution: wait this long before a change
# whose "was the listener rebound?" answer is read from `since`.
SINCE_RESOLUTION = 1.1


def cert_subject(der: bytes) -> str:
    p = run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


def peer_cert_der(host: str, port: int, starttls: bool = False) -> bytes:
    ctx = tls_client_context()
    if starttls:
        with RawSMTP(host, port) as c:
            c.cmd(f"EHLO {CLIENT_NAME}")
            code, lines = c.cmd("STARTTLS")
            assert code == 220, lines
            c.starttls(ctx)
            return c.sock.getpeercert(binary_form=True)
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def make_cert(dirpath: Path, cn: str, name: str | None = None, days: int = 30) -> tuple[Path, Path]:
    """Self-signed EC P-256 cert + key (PEM) with CN and SAN `cn`."""
    name = name or cn
    cert, key = dirpath / f"{name}.crt.pem", dirpath / f"{name}.key.pem"
    p = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", f"/CN={cn}",
             "-addext", f"subjectAltName=DNS:{cn}"], timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return cert, key


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(**kw) -> started Berth; all are stopped (SIGTERM, exit 0) at teardown."""
    made: list[Berth] = []

    def factory(start: bool = True, name: str = "data", **kw) -> Berth:
        b = Berth(tmp_path / name, **kw)
        made.append(b)
        if start:
            b.start()
        return b

    yield factory
    problems = []
    for b in made:
        if b.running():
            rc = b.stop()
            if rc != 0:
                problems.append(f"{b.data}: exit code on SIGTERM {rc} (None = killed after {STOP_TIMEOUT}s)\n"
                                f"{b.log_tail()}")
        b.kill()
    assert not problems, "\n".join(problems)


@pytest.fixture
def server(make_server) -> Berth:
    return make_server()


@pytest.fixture
def berth_env(server):
    """Server with 127.0.0.2/.3 added and example.com/alice set up."""
    add_ips(server)
    setup_domain(server)
    return server


def pytest_report_header(config):
    return f"berth binary: {BERTH_BIN} (exists: {BERTH_BIN.exists()})"


# --------------------------------------------------------------------------- abuse / limits / auth helpers


def reply_code(lines: list[str]) -> tuple[int, str]:
    """(code, enhanced status code) of an SMTP reply; '' if the reply has no enhanced code."""
    first = lines[0]
    rest = first[4:].split(" ", 1)[0] if len(first) > 4 else ""
    parts = rest.split(".")
    enhanced = rest if len(parts) == 3 and all(p.isdigit() for p in parts) else ""
    return int(first[:3]), enhanced


def assert_reply(lines: list[str], code: int, enhanced: str, what: str = "") -> None:
    """Match a reply by code and enhanced code, never by its text."""
    got = reply_code(lines)
    assert got == (code, enhanced), f"{what}: want {code} {enhanced}, got {lines!r}"


def set_settings(b: Berth, **fields) -> dict:
    """Partial PUT /api/v1/settings; returns the settings after the change."""
    js = b.ok("PUT", "/api/v1/settings", fields)
    return unwrap(js, "settings") if js is not None else unwrap(b.ok("GET", "/api/v1/settings"), "settings")


def active_connections(b: Berth, addr: str, port: int) -> int | None:
    l = b.listener(addr, port)
    return None if l is None else l.get("activeConnections")


def wait_active_connections(b: Berth, addr: str, port: int, pred, timeout: float) -> int | None:
    """Poll the listener's activeConnections until pred(n) holds; returns the last value seen."""
    end = time.monotonic() + timeout
    n = active_connections(b, addr, port)
    for _ in range(10000):
        if (n is not None and pred(n)) or time.monotonic() > end:
            break
        time.sleep(0.1)
        n = active_connections(b, addr, port)
    return n


@pytest.fixture
def make_mail_server(make_server):
    """Factory: make_mail_server(*serve_args, preexec_fn=None) -> started Berth with 127.0.0.2/.3
    added and example.com/alice set up; serve_args go after `berth serve ...`
    (e.g. "--idle-timeout", "3")."""

    def factory(*serve_args: str, preexec_fn=None, name: str = "data") -> Berth:
        b = make_server(name=name, extra_args=list(serve_args), preexec_fn=preexec_fn)
        add_ips(b)
        setup_domain(b)
        return b

    return factory


# --------------------------------------------------------------------------- mail log helpers
# The mail log (CONTRACT-NOTES "Mail log"): `--log-format text` lines are
# `TIME LEVEL EVENT key=value...` (values with spaces or quotes are double-quoted with
# backslash escapes); `--log-format json` lines are one object each, the event in `msg`.


def parse_log_line(line: str) -> dict | None:
    """One log line as {"event", "level", "ts", fields...} (all values strings), or None if it
    is not a log line (the harness' own header, stdout text)."""
    import shlex
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        out = {k: (v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v))
               for k, v in obj.items()}
        out["event"] = str(obj.get("msg", obj.get("event", obj.get("message", ""))))
        return out
    parts = line.split(" ", 2)
    if len(parts) < 3 or not parts[0][:4].isdigit() or "T" not in parts[0]:
        return None
    ts, level, rest = parts
    try:
        tokens = shlex.split(rest, posix=True)
    except ValueError:
        tokens = rest.split()
    words, fields = [], {}
    for t in tokens:
        if "=" in t:
            k, v = t.split("=", 1)
            fields[k] = v
        elif not fields:
            words.append(t)
        else:  # a bare word after the fields began: keep it visible
            fields["_extra"] = (fields.get("_extra", "") + " " + t).strip()
    out = {"ts": ts, "level": level, "event": " ".join(words)}
    out.update(fields)
    return out


def log_events(b: Berth, since: int | None = None) -> list[dict]:
    """Parsed log lines of `b` from byte offset `since` (default: the start of the current run)."""
    off = getattr(b, "log_offset", 0) if since is None else since
    try:
        with open(b.log_path, "rb") as f:
            f.seek(off)
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    out = []
    for raw in text.splitlines():
        ev = parse_log_line(raw)
        if ev is not None:
            ev["_raw"] = raw
            out.append(ev)
    return out


def wait_log_event(b: Berth, pred, timeout: float = 5.0, since: int | None = None) -> dict | None:
    """Poll the log until a parsed line satisfies pred(event); return it (None on timeout)."""
    end = time.monotonic() + timeout
    for _ in range(10000):
        for ev in log_events(b, since):
            if pred(ev):
                return ev
        if time.monotonic() > end:
            return None
        time.sleep(0.1)
    return None


def log_size(b: Berth) -> int:
    """Current size of the server log: pass as `since` to see only what comes after."""
    try:
        return b.log_path.stat().st_size
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------- IMAP / POP3 targets
# The IMAP, POP3, mail-client and recovery tests (test_imap.py, test_pop3.py,
# test_mail_clients.py, test_mail_recovery.py) run against a `MailTarget`: normally a Berth
# with IMAP and POP3 ports on 127.0.0.2. With MAIL_PEER=dovecot they run against a private
# Dovecot on 127.0.0.1 instead (its own config, users and Maildir under /var/tmp, started and
# stopped by pid), which checks the tests' own client logic against a reference server;
# tests of Berth-only behaviour skip there.

MAIL_PEER = os.environ.get("MAIL_PEER", "berth")
BOB = "bob@example.com"
BOB_PW = "bob-pw-4567"
SPECIAL_FOLDERS = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk",
                   "Archive": "\\Archive"}


def _maildir_files(folder: Path) -> list[Path]:
    out = []
    for sub in ("new", "cur"):
        d = folder / sub
        if d.is_dir():
            out.extend(p for p in d.iterdir() if p.is_file())
    return sorted(out)


# The ports a MailTarget has for each of IMAP and POP3, by encryption: "none", "ssl"
# (implicit TLS), "tls" (STARTTLS offered), "tls_required" (STARTTLS required).
MAIL_PORT_KINDS = ("none", "ssl", "tls", "tls_required")
STARTTLS_KINDS = ("tls", "tls_required")


class MailTarget:
    """Where the mail tests connect: host, ports by encryption, the user, its Maildir.

    imap / pop: {"none": port, "ssl": port, "tls": port (STARTTLS offered),
                 "tls_required": port (STARTTLS required) or None}
    """

    kind = "berth"
    host = IP2

    def __init__(self):
        self.imap: dict[str, int | None] = {}
        self.pop: dict[str, int | None] = {}
        self.user = ALICE
        self.password = ALICE_PW
        self.server: Berth | None = None

    def make_ports(self, make) -> None:
        """Fills `imap` and `pop`: make(protocol, kind) is the port of that protocol ("imap",
        "pop") and kind (MAIL_PORT_KINDS), or None where the target has none."""
        for proto, table in (("imap", self.imap), ("pop", self.pop)):
            for kind in MAIL_PORT_KINDS:
                table[kind] = make(proto, kind)

    def mail_ports(self) -> list[int]:
        """Every IMAP and POP3 port the target listens on, once each."""
        ports = [p for table in (self.imap, self.pop) for p in table.values() if p]
        return list(dict.fromkeys(ports))

    # -- mailbox on disk
    def maildir(self, user: str | None = None) -> Path:
        raise NotImplementedError

    def folder_dir(self, folder: str = "INBOX", user: str | None = None) -> Path:
        root = self.maildir(user)
        return root if folder.upper() == "INBOX" else root / ("." + folder.replace("/", "."))

    def files(self, folder: str = "INBOX", user: str | None = None) -> list[Path]:
        return _maildir_files(self.folder_dir(folder, user))

    def wait_files(self, n: int, folder: str = "INBOX", timeout: float = 10.0, user: str | None = None) -> list[Path]:
        end = time.monotonic() + timeout
        files = self.files(folder, user)
        for _ in range(1000):
            if len(files) >= n or time.monotonic() > end:
                break
            time.sleep(0.05)
            files = self.files(folder, user)
        return files

    # -- delivery
    def deliver(self, msg: bytes | str, frm: str = "bob@remote.test", to: str | None = None) -> None:
        raise NotImplementedError

    # -- process control (recovery test)
    def pids(self) -> list[int]:
        raise NotImplementedError

    def kill9(self) -> None:
        raise NotImplementedError

    def start_again(self) -> None:
        raise NotImplementedError


class BerthMailTarget(MailTarget):
    kind = "berth"
    host = IP2

    def __init__(self, b: Berth):
        super().__init__()
        self.server = b
        self.smtp_port: int | None = None

    def maildir(self, user=None):
        local, domain = (user or self.user).split("@")
        return self.server.data / "mail" / domain / local

    def deliver(self, msg, frm="bob@remote.test", to=None):
        import smtplib
        data = msg.encode() if isinstance(msg, str) else msg
        with smtplib.SMTP(self.host, self.smtp_port, local_hostname=CLIENT_NAME, timeout=30) as s:
            refused = s.sendmail(frm, [to or self.user], data)
            assert refused == {}, refused

    def pids(self):
        return [self.server.pid]

    def kill9(self):
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(timeout=10)
        self.server._close_log()

    def start_again(self):
        self.server.start()
        for port in self.mail_ports() + [self.smtp_port]:
            if port:
                wait_connect_state(self.host, port, "ok", deadline=10)

    def stop(self):
        rc = self.server.stop()
        assert rc == 0, f"berth exit code on SIGTERM was {rc}:\n{self.server.log_tail()}"

    def restart(self):
        """SIGTERM (exit 0), start again, ports answering."""
        self.stop()
        self.start_again()


def _not_served_reason(b: Berth, addr: str, port: int) -> str | None:
    l = b.wait_listener(addr, port, states=("listening", "notServing", "failed"), timeout=5)
    if l is None:
        return f"no listener for {addr}:{port}"
    if l.get("state") == "listening":
        return None
    return f"{l.get('state')}: {l.get('error') or l.get('reason') or l}"


# The IMAP and POP3 ports make_berth_mail_target creates, by kind: (port name after the
# protocol, encryption, fields beyond those create_port sets).
_BERTH_MAIL_PORTS = {
    "none": ("plain", "none", {}),
    "ssl": ("ssl", "ssl", {}),
    "tls": ("starttls", "tls", {"tlsRequired": False}),
    "tls_required": ("starttls required", "tls", {"tlsRequired": True}),
}


def make_berth_mail_target(make_server, *serve_args: str, tls_required: bool = True,
                           plaintext_auth: bool = True) -> BerthMailTarget:
    """A Berth with 127.0.0.2, example.com/alice and /bob, an SMTP port and IMAP and POP3
    ports (none, ssl, tls, tls with tlsRequired) on 127.0.0.2; `--allow-plaintext-auth`
    unless plaintext_auth=False (LOGIN on the plain port is part of what is tested). Skips
    the test when this build lists IMAP/POP3 ports but does not serve them yet."""
    args = list(serve_args)
    if plaintext_auth and "--allow-plaintext-auth" not in args:
        args.append("--allow-plaintext-auth")
    b = make_server(extra_args=args)
    add_ip(b, IP2)
    setup_domain(b)
    b.ok("POST", "/api/v1/domains/example.com/users", {"name": "bob", "password": BOB_PW, "displayName": "Bob"},
         statuses=(200, 201))
    t = BerthMailTarget(b)
    t.smtp_port = create_port(b, "SMTP", "smtp", "none", assigned=[IP2])["port"]

    def make(proto: str, kind: str) -> int | None:
        if kind == "tls_required" and not tls_required:
            return None
        name, encryption, extra = _BERTH_MAIL_PORTS[kind]
        return create_port(b, f"{proto} {name}", proto, encryption, assigned=[IP2], **extra)["port"]

    t.make_ports(make)
    assert wait_connect_state(IP2, t.smtp_port, "ok", deadline=5) == "ok"
    for proto, table in (("imap", t.imap), ("pop", t.pop)):
        why = _not_served_reason(b, IP2, table["none"])
        if why is not None:
            pytest.skip(f"this berth does not serve {proto} yet ({why})")
        for port in table.values():
            if port:
                assert wait_connect_state(IP2, port, "ok", deadline=5) == "ok", (proto, port)
    return t


# ---- a private Dovecot (MAIL_PEER=dovecot): reference behaviour for the tests' client logic

DOVECOT_BIN = "/usr/sbin/dovecot"


def dovecot_protocols() -> list[str]:
    """The protocols whose Dovecot daemons are installed: dovecot-imapd and dovecot-pop3d are
    separate packages, and Dovecot refuses to start with a protocol it has no binary for."""
    return [p for p in ("imap", "pop3") if os.path.exists(f"/usr/lib/dovecot/{p}")]

_DOVECOT_CONF = """\
instance_name = berth-test-{tag}
base_dir = {d}/run
state_dir = {d}/state
listen = 127.0.0.1
protocols = {protocols}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=vmail gid=vmail home={d}/home/%d/%n
}}
first_valid_uid = 100
mail_location = maildir:{d}/mail/%d/%n
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}
mail_plugins = quota
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=1G
}}
pop3_lock_session = yes
mail_max_userip_connections = 1000
imap_max_line_length = 64k
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pops}
    ssl = yes
  }}
}}
service doveadm {{
  inet_listener {{
    port = 0
  }}
}}
"""


class DovecotMailTarget(MailTarget):
    kind = "dovecot"
    host = "127.0.0.1"

    def __init__(self):
        super().__init__()
        import tempfile
        self.dir = Path(tempfile.mkdtemp(prefix="berth-test-dovecot.", dir="/var/tmp"))
        self.dir.chmod(0o755)
        self.master: int | None = None

    def maildir(self, user=None):
        local, domain = (user or self.user).split("@")
        return self.dir / "mail" / domain / local

    def start(self):
        import pwd
        d = self.dir
        for sub in ("run", "state", "home", "mail"):
            (d / sub).mkdir(exist_ok=True)
        vm = pwd.getpwnam("vmail")
        for sub in ("home", "mail"):
            os.chown(d / sub, vm.pw_uid, vm.pw_gid)
        if not (d / "cert.pem").exists():
            make_cert(d, "mx.test.local", name="dc")
            os.rename(d / "dc.crt.pem", d / "cert.pem")
            os.rename(d / "dc.key.pem", d / "key.pem")
        (d / "passwd").write_text(f"{ALICE}:{{PLAIN}}{ALICE_PW}\n{BOB}:{{PLAIN}}{BOB_PW}\n")
        if not self.imap:
            # Dovecot offers STARTTLS on its plain port and has no port that requires it.
            own = {proto: {"none": free_port(), "ssl": free_port()} for proto in ("imap", "pop")}
            self.make_ports(lambda proto, kind: own[proto].get("none" if kind == "tls" else kind))
        (d / "dovecot.conf").write_text(_DOVECOT_CONF.format(
            tag=d.name.rsplit(".", 1)[-1], d=d, protocols=" ".join(dovecot_protocols()),
            imap=self.imap["none"], imaps=self.imap["ssl"],
            pop=self.pop["none"], pops=self.pop["ssl"]))
        # dovecot daemonizes: its output goes to a file, never to a pipe it would keep open
        with open(d / "start.log", "wb") as out:
            p = subprocess.run([DOVECOT_BIN, "-c", str(d / "dovecot.conf")], stdout=out, stderr=out,
                               stdin=subprocess.DEVNULL, timeout=30)
        assert p.returncode == 0, (d / "start.log").read_text()
        for _ in range(100):
            pidf = d / "run" / "master.pid"
            if pidf.exists() and pidf.read_text().strip():
                self.master = int(pidf.read_text().strip())
                break
            time.sleep(0.1)
        assert self.master, "dovecot wrote no master.pid"
        served = [self.imap] + ([self.pop] if "pop3" in dovecot_protocols() else [])
        for port in dict.fromkeys(p for table in served for p in table.values() if p):
            assert wait_connect_state(self.host, port, "ok", deadline=10) == "ok", port

    def deliver(self, msg, frm="bob@remote.test", to=None):
        """What Berth stores for an SMTP delivery: trace headers prepended, LF line ends."""
        import pwd
        data = msg.encode() if isinstance(msg, str) else msg
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        head = (f"Return-Path: <{frm}>\r\nReceived: from {CLIENT_NAME} (localhost [127.0.0.1])\r\n"
                f"\tby mx.test.local with ESMTP id T{random.randrange(10**9)}\r\n\tfor <{to or self.user}>; {stamp}\r\n")
        data = (head.encode() + data).replace(b"\r\n", b"\n")
        root = self.maildir(to)
        vm = pwd.getpwnam("vmail")
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for p in [root.parent.parent, root.parent, root, root / "tmp", root / "new", root / "cur"]:
            if str(p).startswith(str(self.dir / "mail")):
                os.chown(p, vm.pw_uid, vm.pw_gid)
        name = f"{time.time_ns()}.P{os.getpid()}R{random.randrange(10**9)}.test"
        tmp = root / "tmp" / name
        tmp.write_bytes(data)
        os.chown(tmp, vm.pw_uid, vm.pw_gid)
        os.rename(tmp, root / "new" / name)

    def children(self) -> list[int]:
        out = []
        if not self.master:
            return out
        for dname in os.listdir("/proc"):
            if not dname.isdigit():
                continue
            try:
                st = Path(f"/proc/{dname}/stat").read_text()
            except OSError:
                continue
            if int(st[st.rindex(")") + 2:].split()[1]) == self.master:
                out.append(int(dname))
        return out

    def pids(self):
        return ([self.master] if self.master else []) + self.children()

    def kill9(self):
        for p in self.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
        (self.dir / "run" / "master.pid").unlink(missing_ok=True)
        self.master = None

    def start_again(self):
        self.start()

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        if self.master:
            try:
                kids = self.children()
                os.kill(self.master, signal.SIGTERM)
                for _ in range(100):
                    if not Path(f"/proc/{self.master}").exists():
                        break
                    time.sleep(0.1)
                for k in kids:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            except ProcessLookupError:
                pass
            self.master = None

    def cleanup(self):
        import shutil
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def make_mail_target(make_server):
    """Factory: make_mail_target(*serve_args) -> a started MailTarget (Berth, or Dovecot with
    MAIL_PEER=dovecot)."""
    made: list[DovecotMailTarget] = []

    def factory(*serve_args: str, tls_required: bool = True, plaintext_auth: bool = True) -> MailTarget:
        if MAIL_PEER == "dovecot":
            if not os.path.exists(DOVECOT_BIN):
                pytest.skip("MAIL_PEER=dovecot but /usr/sbin/dovecot is absent")
            t = DovecotMailTarget()
            made.append(t)
            t.start()
            return t
        return make_berth_mail_target(make_server, *serve_args, tls_required=tls_required,
                                      plaintext_auth=plaintext_auth)

    yield factory
    for t in made:
        t.cleanup()


@pytest.fixture
def mail_target(make_mail_target) -> MailTarget:
    return make_mail_target()


def mail_client(t: MailTarget, proto: str, enc: str, *, connect, starttls, login=None,
                user: str | None = None, password: str | None = None):
    """A client of `t`'s `proto` ("imap" or "pop") port of encryption `enc`, set up as every
    IMAP and POP3 test sets one up: TLS from the first byte on "ssl", STARTTLS (STLS) on "tls"
    and "tls_required", then, when `login` is given, logged in as `user` (the target's own
    by default). The client library's own steps are given:

    connect(host, port, ctx) -> client: over TLS from the start when ctx is not None;
    starttls(client, ctx): asks for TLS and asserts the server agreed;
    login(client, user, password): logs in and asserts the server accepted it.
    """
    ctx = tls_client_context()
    ports = t.imap if proto == "imap" else t.pop
    client = connect(t.host, ports[enc], ctx if enc == "ssl" else None)
    if enc in STARTTLS_KINDS:
        starttls(client, ctx)
    if login is not None:
        login(client, user or t.user, password or t.password)
    return client


def berth_only(t: MailTarget, why: str) -> None:
    if t.kind != "berth":
        pytest.skip(f"Berth-specific: {why}")


def strip_trace_headers(data: bytes) -> tuple[bytes, bytes]:
    """Split a stored message into (the Return-Path/Received header lines the server
    prepended, with their continuation lines; the rest)."""
    pos = 0
    trace_names = (b"return-path:", b"received:")
    in_trace = False
    for _ in range(10000):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line = data[pos:end + 1]
        if line[:1] in (b" ", b"\t") and in_trace:
            pos = end + 1
            continue
        if line.lower().startswith(trace_names):
            in_trace = True
            pos = end + 1
            continue
        break
    return data[:pos], data[pos:]


def has_bare_lf(data: bytes) -> bool:
    return data.replace(b"\r\n", b"").find(b"\n") >= 0
