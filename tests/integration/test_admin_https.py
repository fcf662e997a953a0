"""The admin listener over HTTPS (`--admin-certificate`), and the web admin's session
cookie, CSRF and security headers as a client that is not a browser sees them.

The browser itself is driven in test_web_admin.py; these run without chromium."""
from __future__ import annotations

import http.client
import os
import ssl
import subprocess

from conftest import ADMIN_PASSWORD, BERTH_BIN, free_port


def admin_cert(directory):
    """A self-signed certificate naming 127.0.0.1, the address the CLI connects to."""
    cert, key = directory / "admin.crt.pem", directory / "admin.key.pem"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", "/CN=admin.example.test",
                        "-addext", "subjectAltName=DNS:admin.example.test,IP:127.0.0.1"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return cert, key


def test_admin_over_https_with_secure_session_cookie(make_server, tmp_path):
    cert, key = admin_cert(tmp_path)
    server = make_server(extra_args=["--admin-certificate", str(cert), "--admin-private-key", str(key)])
    # The API answers over TLS with the certificate given, TLS 1.2 at least.
    der = ssl.get_server_certificate(("127.0.0.1", server.admin_port))
    assert "BEGIN CERTIFICATE" in der
    status, headers, body = server.http("GET", "/api/v1/ports")
    assert status == 401
    status, headers, body = server.http("POST", "/api/v1/session", {"password": ADMIN_PASSWORD})
    assert status == 200, body
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("__Host-berth_session=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/"):
        assert attribute in cookie, cookie
    session = cookie.split(";")[0]
    status, _, ports = server.http("GET", "/api/v1/ports", headers={"Cookie": session})
    assert status == 200 and ports == []
    # Plain HTTP on the HTTPS port gets no API.
    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=10)
    try:
        try:
            conn.request("GET", "/healthz")
            assert conn.getresponse().status != 200
        except (http.client.HTTPException, ConnectionError):
            pass
    finally:
        conn.close()
    # The CLI reaches it when told which certificate to trust.
    env = dict(os.environ, BERTH_ADMIN_PASSWORD=ADMIN_PASSWORD)
    p = subprocess.run([str(BERTH_BIN), "ports", "list", "--server", server.admin_url, "--server-ca", str(cert)],
                       capture_output=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    p = subprocess.run([str(BERTH_BIN), "ports", "list", "--server", server.admin_url],
                       capture_output=True, env=env, timeout=90)
    assert p.returncode == 1 and b"not trusted" in p.stderr, p.stderr.decode()


def test_bad_admin_certificate_stops_the_start_with_the_reason(make_server, tmp_path):
    missing = tmp_path / "nope.pem"
    server = make_server(start=False, extra_args=["--admin-certificate", str(missing)])
    p = subprocess.run(server.argv(), capture_output=True, timeout=60,
                       env=dict(os.environ, BERTH_ADMIN_PASSWORD=ADMIN_PASSWORD))
    assert p.returncode != 0
    out = (p.stdout + p.stderr).decode()
    assert "--admin-certificate" in out and str(missing) in out, out


def test_pages_and_api_carry_the_security_headers(server):
    import urllib.request
    with urllib.request.urlopen(server.admin_url + "/", timeout=10) as r:
        assert r.status == 200
        page = r.read().decode()
        policy = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" in page and "type=\"module\"" in page
    # No inline script: every <script> names a file.
    for chunk in page.split("<script")[1:]:
        assert "src=" in chunk.split(">")[0], chunk[:80]


def test_login_failures_are_delayed_counted_and_banned(make_server):
    server = make_server()
    server.ok("PUT", "/api/v1/settings", {"authBanThreshold": 3, "authBanWindowSeconds": 60, "authBanSeconds": 60,
                                           "authFailureDelayMs": 50})
    statuses = []
    for _ in range(4):
        st, js = server.api("POST", "/api/v1/session", {"password": "wrong-password"}, auth=False)
        statuses.append(st)
    # The failure that reaches the threshold is answered with the ban, as in every protocol.
    assert statuses == [401, 401, 429, 429], statuses
    # Banned means banned: the right password is refused too until the ban ends.
    st, js = server.api("POST", "/api/v1/session", {"password": ADMIN_PASSWORD}, auth=False)
    assert st == 429 and js["error"]["code"] == "banned"
    assert "admin" in server.log and "wrong-password" not in server.log, "passwords are never logged"


def test_the_admin_address_is_never_taken_by_a_port(make_server):
    """A port over the admin listener's own address and number is refused; one stored
    before (the admin moved --admin onto it) fails alone at start, and the admin API starts."""
    server = make_server()
    st, js = server.api("POST", "/api/v1/ports", {"name": "Over admin", "protocol": "smtp", "encryption": "none",
                                                  "port": server.admin_port, "assignedTo": ["127.0.0.1"]})
    assert st == 409 and js["error"]["code"] == "port_conflict" and "admin API" in js["error"]["message"], js
    st, js = server.api("POST", "/api/v1/ports", {"name": "Wildcard over admin", "protocol": "smtp",
                                                  "encryption": "none", "port": server.admin_port,
                                                  "assignedTo": ["0.0.0.0"]})
    assert st == 409, js
    # Stored before: a port on 127.0.0.1 at the number the admin will move to.
    other = free_port()
    port = server.ok("POST", "/api/v1/ports", {"name": "Future clash", "protocol": "smtp", "encryption": "none",
                                               "port": other, "assignedTo": ["127.0.0.1"]})
    assert server.stop() == 0
    server.admin_port = other
    server.start()
    listener = next(l for l in server.listeners() if l["portId"] == port["id"])
    assert listener["state"] == "failed" and "reserved for the admin API" in listener["error"], listener
    assert server.ok("GET", "/healthz") == {"status": "ok"}
