"""Issue 5, findings 3, 4, 5 and 9: certificate fields that go together, warnings that
tell the truth, loopback addresses that come and go, domains and users, CLI wording."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time

import pytest

from conftest import (ADMIN_PASSWORD, BERTH_BIN, IP2, IP3, Berth, add_ips, create_port, error_of, free_port,
                      make_cert, run, setup_domain, warning_texts)


def cli(b, *args, password=ADMIN_PASSWORD, server_url=None, cwd=None):
    env = dict(os.environ)
    env.pop("BERTH_ADMIN_PASSWORD", None)
    if password is not None:
        env["BERTH_ADMIN_PASSWORD"] = password
    p = subprocess.run([str(BERTH_BIN), *args, "--server", server_url or b.admin_url], env=env, cwd=cwd,
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    p.out, p.err = p.stdout.decode(), p.stderr.decode()
    return p


def stored_port_body(b, pid) -> str:
    with sqlite3.connect(f"file:{b.data / 'berth.sqlite'}?mode=ro", uri=True) as db:
        return db.execute("SELECT body FROM port WHERE id = ?", (pid,)).fetchone()[0]


# ---------------------------------------------------------------- finding 3


def test_new_certificate_holding_its_own_key_drops_the_old_key_path(server, tmp_path):
    add_ips(server)
    cert, key = make_cert(tmp_path, "split.test", "split")
    p = create_port(server, "Split", "smtp", "ssl", assigned=[IP2], certificatePath=str(cert), privateKeyPath=str(key))
    combined = tmp_path / "combined.pem"
    other_cert, other_key = make_cert(tmp_path, "combined.test", "other")
    combined.write_bytes(other_cert.read_bytes() + other_key.read_bytes())
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"certificatePath": str(combined)})
    assert st == 200, js
    assert js["certificatePath"] == str(combined) and js["privateKeyPath"] is None, js
    assert "combined.test" in js["certificate"]["subject"]


def test_renewed_certificate_keeps_its_key_file(server, tmp_path):
    cert, key = make_cert(tmp_path, "renew.test", "renew")
    p = create_port(server, "Renew", "smtp", "ssl", certificatePath=str(cert), privateKeyPath=str(key))
    renewed = tmp_path / "renewed.pem"
    p2 = subprocess.run(["openssl", "req", "-x509", "-key", str(key), "-out", str(renewed), "-days", "60",
                         "-subj", "/CN=renew.test"], capture_output=True, timeout=30)
    assert p2.returncode == 0, p2.stderr
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"certificatePath": str(renewed)})
    assert st == 200, js
    assert js["privateKeyPath"] == str(key)


def test_cli_empty_certificate_alone_returns_to_the_default(server, tmp_path):
    cert, key = make_cert(tmp_path, "own.test", "own")
    p = create_port(server, "Own", "smtp", "ssl", certificatePath=str(cert), privateKeyPath=str(key))
    r = cli(server, "ports", "edit", p["id"], "--certificate", "")
    assert r.returncode == 0, r.err
    got = server.port(p["id"])
    assert got["certificatePath"] is None and got["privateKeyPath"] is None, got
    assert got["certificate"]["selfSigned"] is True
    assert "own.test" not in got["certificate"]["subject"]


def test_relative_paths_are_stored_absolute(server, tmp_path):
    (tmp_path / "certs").mkdir()
    cert, key = make_cert(tmp_path / "certs", "rel.test", "rel")
    p = create_port(server, "Rel", "smtp", "ssl")
    # The CLI resolves against its own working directory.
    r = cli(server, "ports", "edit", p["id"], "--certificate", "certs/rel.crt.pem", "--private-key",
            "./certs/../certs/rel.key.pem", cwd=tmp_path)
    assert r.returncode == 0, r.err
    got = server.port(p["id"])
    assert got["certificatePath"] == str(cert) and got["privateKeyPath"] == str(key), got
    # The API resolves against the server's working directory (this test's).
    rel = os.path.relpath(cert, os.getcwd())
    q = create_port(server, "RelAPI", "smtp", "ssl", certificatePath=rel, privateKeyPath=os.path.relpath(key))
    assert q["certificatePath"] == str(cert) and q["privateKeyPath"] == str(key), q


def test_encryption_none_and_back_keeps_nothing_stale(server, tmp_path):
    cert, key = make_cert(tmp_path, "stale.test", "stale")
    p = create_port(server, "Flip", "smtp", "ssl", certificatePath=str(cert), privateKeyPath=str(key),
                    certificatePassword="unused-secret")
    assert "unused-secret" in stored_port_body(server, p["id"])
    js = server.ok("PUT", f"/api/v1/ports/{p['id']}", {"encryption": "none"})
    assert js["certificatePath"] is None and js["privateKeyPath"] is None and js["certificate"] is None, js
    assert "unused-secret" not in stored_port_body(server, p["id"])
    js = server.ok("PUT", f"/api/v1/ports/{p['id']}", {"encryption": "ssl"})
    assert js["certificatePath"] is None and js["privateKeyPath"] is None, js
    assert js["certificate"]["selfSigned"] is True and "stale.test" not in js["certificate"]["subject"]
    body = stored_port_body(server, p["id"])
    assert "unused-secret" not in body and str(cert) not in body and str(key) not in body, body


# ---------------------------------------------------------------- finding 4


class PlaintextBerth(Berth):
    def argv(self):
        return super().argv() + ["--allow-plaintext-auth"]


def test_plaintext_auth_warning_does_not_say_clients_cannot_send(tmp_path):
    b = PlaintextBerth(tmp_path / "plain")
    b.start()
    try:
        p = create_port(b, "Sub", "submission", "none")
        texts = " ".join(warning_texts(b.port(p["id"])))
        assert "clients cannot send through this port" not in texts, texts
        assert "in clear" in texts, texts
    finally:
        assert b.stop() == 0
        b.kill()


def test_plaintext_warning_without_the_flag(server):
    p = create_port(server, "Sub", "submission", "none")
    assert any("clients cannot send through this port" in w for w in warning_texts(server.port(p["id"])))


def test_broken_certificate_after_restart_claims_no_last_good_one(server, tmp_path):
    add_ips(server)
    cert, key = make_cert(tmp_path, "broken.test", "broken")
    p = create_port(server, "Breaks", "smtp", "ssl", assigned=[IP2], certificatePath=str(cert),
                    privateKeyPath=str(key))
    assert server.wait_listener(IP2, p["port"])["state"] == "listening"
    # Broken while running: the listener keeps what it loaded, and the warning says so.
    cert.write_text("not a certificate\n")
    texts = []
    for _ in range(100):
        texts = warning_texts(server.port(p["id"]))
        if any("certificate unusable" in w for w in texts):
            break
        time.sleep(0.1)
    assert any("certificate unusable" in w and "still serve" in w for w in texts), texts
    # After a restart there is nothing loaded before: no claim that one is kept.
    server.restart()
    listener = server.wait_listener(IP2, p["port"], states=("failed",))
    assert listener and listener["state"] == "failed", listener
    texts = warning_texts(server.port(p["id"]))
    joined = " ".join(texts)
    assert "certificate unusable" in joined, texts
    assert "last good" not in joined and "still serve" not in joined, texts
    assert any("not listening on 127.0.0.2" in w for w in texts), texts


# ---------------------------------------------------------------- finding 5

LOOPBACK_EXTRA = "127.0.0.213"


def _ip(*args) -> bool:
    if shutil.which("ip") is None:
        return False
    return subprocess.run(["ip", *args], capture_output=True, timeout=10).returncode == 0


def test_loopback_address_removed_from_lo_turns_absent_and_is_deletable(server):
    if not _ip("addr", "add", f"{LOOPBACK_EXTRA}/8", "dev", "lo"):
        pytest.skip("cannot add an address to lo here (needs CAP_NET_ADMIN)")
    removed = False
    try:
        # Discovery runs every 5 s; wait for the address to show up as an interface address.
        entry = None
        for _ in range(150):
            st, entry = server.api("GET", f"/api/v1/ip-addresses/{LOOPBACK_EXTRA}")
            if st == 200:
                break
            time.sleep(0.1)
        assert entry and entry.get("source") == "interface" and entry["present"] is True, entry
        st, js = server.api("DELETE", f"/api/v1/ip-addresses/{LOOPBACK_EXTRA}")
        assert st == 409, js
        removed = _ip("addr", "del", f"{LOOPBACK_EXTRA}/8", "dev", "lo")
        assert removed
        for _ in range(150):
            entry = server.ip(LOOPBACK_EXTRA)
            if entry["present"] is False:
                break
            time.sleep(0.1)
        assert entry["present"] is False, entry
        st, js = server.api("DELETE", f"/api/v1/ip-addresses/{LOOPBACK_EXTRA}")
        assert st == 204, js
        st, _ = server.api("GET", f"/api/v1/ip-addresses/{LOOPBACK_EXTRA}")
        assert st == 404
    finally:
        if not removed:
            _ip("addr", "del", f"{LOOPBACK_EXTRA}/8", "dev", "lo")


# ---------------------------------------------------------------- finding 9


def test_two_domains_cannot_claim_one_ip(server):
    add_ips(server)
    server.ok("POST", "/api/v1/domains", {"name": "one.example", "ipAddress": IP2}, statuses=(201,))
    st, js = server.api("POST", "/api/v1/domains", {"name": "two.example", "ipAddress": IP2})
    assert st == 409 and error_of(js)["field"] == "ipAddress" and "one.example" in error_of(js)["message"], js
    server.ok("POST", "/api/v1/domains", {"name": "two.example", "ipAddress": IP3}, statuses=(201,))
    st, js = server.api("PUT", "/api/v1/domains/two.example", {"ipAddress": IP2})
    assert st == 409, js
    assert server.ok("GET", "/api/v1/domains/two.example")["ipAddress"] == IP3
    # A partial PUT without ipAddress keeps it; null clears it.
    js = server.ok("PUT", "/api/v1/domains/two.example", {"outbound": {"ipv6": {"mode": "disabled"}}})
    assert js["ipAddress"] == IP3, js
    js = server.ok("PUT", "/api/v1/domains/two.example", {"ipAddress": None})
    assert js["ipAddress"] is None, js


def test_version():
    p = run([str(BERTH_BIN), "--version"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().strip()[:1].isdigit(), p.stdout


def test_users_lists_every_user(server):
    setup_domain(server)
    setup_domain(server, "example.org", "bob", "bobs long password")
    setup_domain(server, "example.net", "carol", "carols long password")
    p = cli(server, "users")
    assert p.returncode == 0, p.err
    for address in ("alice@example.com", "bob@example.org", "carol@example.net"):
        assert address in p.out, p.out
    js = server.ok("GET", "/api/v1/users")
    assert [u["address"] for u in js] == ["alice@example.com", "carol@example.net", "bob@example.org"]
    p = cli(server, "users", "example.org")
    assert "bob@example.org" in p.out and "alice" not in p.out, p.out


def test_deleting_a_domain_with_users_needs_force(server):
    setup_domain(server)
    server.ok("POST", "/api/v1/domains/example.com/users", {"name": "bob", "password": "bobs long password"},
              statuses=(201,))
    st, js = server.api("DELETE", "/api/v1/domains/example.com")
    assert st == 409 and "2 users" in error_of(js)["message"], js
    assert len(server.ok("GET", "/api/v1/domains/example.com/users")) == 2
    p = cli(server, "domains", "delete", "example.com")
    assert p.returncode != 0 and "--force" in p.err and "2 users" in p.err, p.err
    st, js = server.api("DELETE", "/api/v1/domains/example.com?force=maybe")
    assert st == 422 and error_of(js)["field"] == "force", js
    p = cli(server, "domains", "delete", "example.com", "--force")
    assert p.returncode == 0, p.err
    st, _ = server.api("GET", "/api/v1/domains/example.com")
    assert st == 404
    assert server.ok("GET", "/api/v1/users") == []
    # Without users, no force is needed.
    server.ok("POST", "/api/v1/domains", {"name": "empty.example"}, statuses=(201,))
    server.ok("DELETE", "/api/v1/domains/empty.example", statuses=(204,))


def test_cli_errors_in_plain_words(server):
    p = cli(server, "ports", "list", password="not-the-password")
    assert p.returncode != 0 and "wrong password" in p.err, p.err
    url = f"http://127.0.0.1:{free_port()}"
    p = cli(server, "ports", "list", server_url=url)
    assert p.returncode != 0, p.err
    assert f"cannot reach the server at {url}" in p.err and "connection refused" in p.err, p.err
    assert "NIO" not in p.err and "Error(" not in p.err, p.err
