"""TLS: implicit TLS, STARTTLS, AUTH, submission with tlsRequired, protocol versions,
STARTTLS command injection, and certificate validation / hot swap."""
from __future__ import annotations

import base64
import os
import select
import smtplib
import socket
import ssl
import subprocess
import time
import uuid
import warnings

import pytest

from conftest import (ALICE, ALICE_PW, APPLY_DEADLINE, SINCE_RESOLUTION, CLIENT_NAME, IP2, IP3, SERVER_HOSTNAME, RawSMTP,
                      cert_subject, create_port, error_of, free_port, make_cert, maildir_new, peer_cert_der, run, set_ip,
                      tls_client_context, wait_connect_state, wait_maildir_count)


def plain_b64(user: str, pw: str) -> str:
    return base64.b64encode(f"\0{user}\0{pw}".encode()).decode()


@pytest.fixture
def tls_env(berth_env):
    b = berth_env
    b.ssl_port = create_port(b, "SMTP SSL", "smtp", "ssl", assigned=[IP2])
    b.stls_port = create_port(b, "SMTP STARTTLS", "smtp", "tls", assigned=[IP2])
    b.sub_port = create_port(b, "Submission", "submission", "tls", assigned=[IP2])
    b.SSL, b.STLS, b.SUB = b.ssl_port["port"], b.stls_port["port"], b.sub_port["port"]
    for p in (b.SSL, b.STLS, b.SUB):
        assert wait_connect_state(IP2, p, "ok", deadline=5) == "ok"
    return b


def s_client(args: list[str], send: bytes, wait_for: bytes = b"220 ", timeout: float = 20.0):
    """Run openssl s_client; once `wait_for` shows on stdout, send `send`; return (rc, stdout, stderr)."""
    p = subprocess.Popen(["openssl", "s_client", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = b""
    end = time.monotonic() + timeout
    try:
        for _ in range(10000):
            left = end - time.monotonic()
            if left <= 0 or wait_for in out:
                break
            r, _, _ = select.select([p.stdout], [], [], min(left, 0.5))
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        if wait_for in out:
            try:
                p.stdin.write(send)
                p.stdin.flush()
            except BrokenPipeError:
                pass
        try:
            more, err = p.communicate(timeout=max(1.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            more, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    return p.returncode, out + more, err


# ------------------------------------------------------------------ implicit TLS


def test_implicit_tls_smtplib(tls_env):
    ctx = tls_client_context()
    with smtplib.SMTP_SSL(IP2, tls_env.SSL, local_hostname=CLIENT_NAME, context=ctx, timeout=15) as s:
        code, msg = s.ehlo()
        assert code == 250, msg
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3"), s.sock.version()
        assert not s.has_extn("starttls"), "STARTTLS must not be offered inside implicit TLS"
        assert s.has_extn("auth") and "PLAIN" in s.esmtp_features["auth"].upper().split()
        s.mail("bob@remote.test")
        assert s.rcpt(ALICE)[0] == 250
        assert s.data("Subject: over ssl\r\n\r\nhi\r\n")[0] == 250
    assert len(wait_maildir_count(tls_env, 1)) == 1
    text = maildir_new(tls_env)[0].read_text(errors="replace")
    assert "Received:" in text


def test_implicit_tls_openssl(tls_env):
    rc, out, err = s_client(["-connect", f"{IP2}:{tls_env.SSL}", "-quiet"], b"QUIT\r\n")
    assert b"220 " in out, (out, err)
    assert f"220 {SERVER_HOSTNAME}".encode() in out
    assert b"221" in out, (out, err)


def test_plain_client_on_ssl_port_gets_no_banner(tls_env):
    s = socket.create_connection((IP2, tls_env.SSL), timeout=3)
    try:
        s.sendall(b"EHLO plain\r\n")
        try:
            data = s.recv(100)
        except (socket.timeout, ConnectionResetError):
            data = b""
        assert not data.startswith(b"220"), data
    finally:
        s.close()


# ------------------------------------------------------------------ STARTTLS + AUTH


def test_starttls_then_auth(tls_env):
    with smtplib.SMTP(IP2, tls_env.STLS, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.ehlo()
        assert s.has_extn("starttls"), s.esmtp_features
        assert not s.has_extn("auth"), "AUTH must not be offered before TLS"
        code, msg = s.starttls(context=tls_client_context())
        assert code == 220, msg
        code, msg = s.ehlo()
        assert code == 250
        assert not s.has_extn("starttls"), "no second STARTTLS"
        assert s.has_extn("auth"), s.esmtp_features
        assert "PLAIN" in s.esmtp_features["auth"].upper().split()
        code, msg = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, ALICE_PW))
        assert code == 235, msg
        code, msg = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, ALICE_PW))
        assert code == 503, "AUTH twice"


def test_auth_wrong_password_535(tls_env):
    with smtplib.SMTP(IP2, tls_env.STLS, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.starttls(context=tls_client_context())
        s.ehlo()
        code, msg = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, "wrong-pw"))
        assert code == 535, msg
        code, msg = s.docmd("AUTH", "PLAIN " + plain_b64("nobody@example.com", ALICE_PW))
        assert code == 535, msg
        # smtplib's own login (any offered mechanism) with the right password works
        s.login(ALICE, ALICE_PW)


def test_auth_login_mechanism(tls_env):
    with smtplib.SMTP_SSL(IP2, tls_env.SSL, local_hostname=CLIENT_NAME, context=tls_client_context(),
                          timeout=15) as s:
        s.ehlo()
        if "LOGIN" not in s.esmtp_features.get("auth", "").upper().split():
            pytest.skip("AUTH LOGIN not offered")
        code, msg = s.docmd("AUTH", "LOGIN")
        assert code == 334, msg
        code, msg = s.docmd(base64.b64encode(ALICE.encode()).decode())
        assert code == 334, msg
        code, msg = s.docmd(base64.b64encode(ALICE_PW.encode()).decode())
        assert code == 235, msg


def test_starttls_openssl(tls_env):
    rc, out, err = s_client(["-starttls", "smtp", "-connect", f"{IP2}:{tls_env.STLS}", "-quiet"],
                            f"EHLO {CLIENT_NAME}\r\nQUIT\r\n".encode(), wait_for=b"", timeout=20)
    # with -starttls, s_client consumes the banner and the STARTTLS exchange itself
    assert b"250" in out and b"AUTH" in out.upper(), (out, err)
    assert b"221" in out, (out, err)


def test_starttls_command_injection(tls_env):
    """Commands pipelined after STARTTLS in the same packet must be discarded, not run after TLS."""
    with RawSMTP(IP2, tls_env.STLS) as c:
        code, lines = c.cmd(f"EHLO {CLIENT_NAME}")
        assert code == 250
        c.send(b"STARTTLS\r\nRSET\r\n")
        code, lines = c.reply()
        assert code == 220, lines
        c.starttls()
        c.send(f"EHLO {CLIENT_NAME}\r\n")
        code, ehlo = c.reply()
        assert code == 250, ehlo
        assert len(ehlo) > 1 and ehlo[0].startswith("250-"), \
            f"first reply after TLS is not the EHLO reply (RSET was executed?): {ehlo}"
        assert SERVER_HOSTNAME in ehlo[0], ehlo
        c.send(b"NOOP\r\n")
        code, noop = c.reply()
        assert code == 250 and len(noop) == 1, noop
        extra = c.nothing_pending(0.5)
        assert extra == b"", f"unexpected extra replies: {extra!r}"


def test_starttls_injection_before_tls_is_not_answered_in_clear(tls_env):
    with RawSMTP(IP2, tls_env.STLS) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        c.send(b"STARTTLS\r\nNOOP\r\nNOOP\r\n")
        code, lines = c.reply()
        assert code == 220, lines
        assert c.nothing_pending(0.3) == b"", "server answered pipelined commands in clear text after 220"


# ------------------------------------------------------------------ TLS versions


def test_tls11_refused(tls_env):
    # control: prove this client can speak TLS 1.1 at all (else the refusal proves nothing)
    cert, key = make_cert(tls_env.data.parent, "control.test")
    port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key",
                            str(key), "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-quiet"],
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_connect_state("127.0.0.1", port, "ok", deadline=10) == "ok"
        ctl = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_1", "-cipher",
                   "DEFAULT:@SECLEVEL=0"], input=b"", timeout=20)
        control_ok = b"Protocol  : TLSv1.1" in ctl.stdout or b"TLSv1.1" in ctl.stdout
    finally:
        srv.kill()
        srv.wait(timeout=10)
    if not control_ok:
        pytest.skip("local OpenSSL cannot negotiate TLS 1.1 even with itself")

    p = run(["openssl", "s_client", "-connect", f"{IP2}:{tls_env.SSL}", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
            input=b"QUIT\r\n", timeout=20)
    assert b"220 " not in p.stdout, p.stdout
    assert p.returncode != 0, p.stdout

    ctx = tls_client_context()
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        with socket.create_connection((IP2, tls_env.SSL), timeout=10) as raw:
            with ctx.wrap_socket(raw) as s:
                s.recv(10)
    # the same over STARTTLS
    with RawSMTP(IP2, tls_env.STLS) as c:
        c.cmd(f"EHLO {CLIENT_NAME}")
        assert c.cmd("STARTTLS")[0] == 220
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            c.starttls(ctx)
    # TLS 1.2 is fine
    p = run(["openssl", "s_client", "-connect", f"{IP2}:{tls_env.SSL}", "-tls1_2"], input=b"", timeout=20)
    assert b"TLSv1.2" in p.stdout, p.stdout


# ------------------------------------------------------------------ submission, tlsRequired


def test_submission_requires_tls_then_auth(tls_env):
    with smtplib.SMTP(IP2, tls_env.SUB, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert not s.has_extn("auth")
        code, msg = s.mail(ALICE)
        assert code == 530, msg
        assert s.noop()[0] == 250
        assert s.rset()[0] == 250
        code, msg = s.docmd("VRFY", "alice")
        assert code == 530, msg
        code, msg = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, ALICE_PW))
        assert code == 530 or code == 538, msg
        s.starttls(context=tls_client_context())
        s.ehlo()
        assert s.has_extn("auth")
        code, msg = s.mail(ALICE)
        assert code == 530, msg
        assert msg.startswith(b"5.7.0"), msg
        code, msg = s.docmd("AUTH", "PLAIN " + plain_b64(ALICE, ALICE_PW))
        assert code == 235, msg
        assert s.mail(ALICE)[0] == 250
        assert s.rcpt(ALICE)[0] == 250
        code, msg = s.rcpt("someone@elsewhere.org")
        assert code == 250, f"authenticated relay is queued for outbound delivery (issue 6): {code} {msg!r}"
        assert s.data("Subject: submitted\r\n\r\nhi\r\n")[0] == 250
    assert len(wait_maildir_count(tls_env, 1)) == 1


def test_tls_required_applies_to_smtp_port_live(tls_env):
    b = tls_env
    with smtplib.SMTP(IP2, b.STLS, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.ehlo()
        assert s.mail("bob@remote.test")[0] == 250, "tlsRequired is false by default for smtp"
    b.ok("PUT", f"/api/v1/ports/{b.stls_port['id']}", {"tlsRequired": True})
    assert b.port(b.stls_port["id"])["tlsRequired"] is True
    end = time.monotonic() + APPLY_DEADLINE
    code = None
    for _ in range(50):
        with smtplib.SMTP(IP2, b.STLS, local_hostname=CLIENT_NAME, timeout=15) as s:
            s.ehlo()
            code, msg = s.mail("bob@remote.test")
        if code == 530 or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert code == 530, msg


def swaks(args: list[str]):
    return run(["swaks", "--timeout", "20", "--helo", CLIENT_NAME, *args], timeout=90)


def test_swaks_auth_submission(tls_env):
    b = tls_env
    p = swaks(["--server", f"{IP2}:{b.SUB}", "--tls", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password",
               ALICE_PW, "--to", ALICE, "--from", ALICE])
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert len(wait_maildir_count(b, 1)) == 1
    # authenticated relay to a non-local address: queued for outbound delivery (issue 6)
    p = swaks(["--server", f"{IP2}:{b.SUB}", "--tls", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password",
               ALICE_PW, "--to", "someone@elsewhere.org", "--from", ALICE])
    out = p.stdout.decode()
    assert p.returncode == 0, out
    lines = out.splitlines()
    i = next(i for i, l in enumerate(lines) if "RCPT TO:<someone@elsewhere.org>" in l)
    assert "250" in lines[i + 1], lines[i:i + 2]
    # a forged sender after AUTH: 553 5.7.1 (sender/login mismatch)
    p = swaks(["--server", f"{IP2}:{b.SUB}", "--tls", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password",
               ALICE_PW, "--to", ALICE, "--from", "ceo@example.com"])
    out = p.stdout.decode()
    assert p.returncode != 0, out
    assert "553 5.7.1" in out, out
    # wrong password fails
    p = swaks(["--server", f"{IP2}:{b.SUB}", "--tls", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password",
               "nope", "--to", ALICE, "--from", ALICE])
    assert p.returncode != 0
    assert "535" in p.stdout.decode(), p.stdout.decode()
    # implicit TLS with swaks
    p = swaks(["--server", f"{IP2}:{b.SSL}", "--tls-on-connect", "--auth", "PLAIN", "--auth-user", ALICE,
               "--auth-password", ALICE_PW, "--to", ALICE, "--from", ALICE])
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert len(wait_maildir_count(b, 2)) == 2


def test_authenticated_relay_is_queued(tls_env):
    """Issue 6 (superseding issue 5 §6.1's 451): authenticated mail to other domains is
    accepted and queued; the test server's DNS answers nothing, so it stays in the queue."""
    b = tls_env
    with smtplib.SMTP_SSL(IP2, b.SSL, local_hostname=CLIENT_NAME, context=tls_client_context(), timeout=15) as s:
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, ["someone@elsewhere.org"], "Subject: relay\r\n\r\nx\r\n") == {}
    q = b.ok("GET", "/api/v1/queue")
    assert [r["address"] for m in q for r in m["recipients"]] == ["someone@elsewhere.org"], q
    for m in q:
        assert b.api("DELETE", f"/api/v1/queue/{m['id']}")[0] == 204


# ------------------------------------------------------------------ certificates


def check_bad_cert(b, port_id: str, body: dict):
    before = b.port(port_id)
    st, js = b.api("PUT", f"/api/v1/ports/{port_id}", body)
    assert st == 422, (body, st, js)
    err = error_of(js)
    assert err["code"] == "bad_certificate", err
    assert err.get("field") == "certificatePath", err
    assert err.get("message")
    assert b.port(port_id) == before, "refused certificate change was applied"
    return err


def test_bad_certificates_refused(tls_env, tmp_path):
    b = tls_env
    pid = b.ssl_port["id"]
    check_bad_cert(b, pid, {"certificatePath": str(tmp_path / "does-not-exist.pem")})
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all !!!\n-----END CERTIFICATE-----\n" +
                        os.urandom(200))
    check_bad_cert(b, pid, {"certificatePath": str(garbage)})
    cert1, key1 = make_cert(tmp_path, "one.test")
    cert2, key2 = make_cert(tmp_path, "two.test")
    check_bad_cert(b, pid, {"certificatePath": str(cert1), "privateKeyPath": str(key2)})
    combined = tmp_path / "mismatch-combined.pem"
    combined.write_bytes(cert1.read_bytes() + key2.read_bytes())
    check_bad_cert(b, pid, {"certificatePath": str(combined)})
    # cert without any key
    check_bad_cert(b, pid, {"certificatePath": str(cert1)})
    unreadable = tmp_path / "dir-not-file"
    unreadable.mkdir()
    check_bad_cert(b, pid, {"certificatePath": str(unreadable)})
    # creating a port with a bad cert creates nothing
    n = len(b.ports())
    st, js = b.api("POST", "/api/v1/ports", {"name": "Bad", "protocol": "smtp", "encryption": "ssl",
                                             "port": free_port(), "assignedTo": [IP3],
                                             "certificatePath": str(garbage)})
    assert st == 422 and error_of(js)["code"] == "bad_certificate", js
    assert len(b.ports()) == n
    # still serving the default certificate
    assert "CN" in cert_subject(peer_cert_der(IP2, b.SSL))


def wait_subject(host, port, needle, starttls=False, deadline=APPLY_DEADLINE):
    end = time.monotonic() + deadline
    subj = ""
    for _ in range(100):
        subj = cert_subject(peer_cert_der(host, port, starttls=starttls))
        if needle in subj or time.monotonic() > end:
            break
        time.sleep(0.1)
    return subj


def test_good_certificate_hot_swap(tls_env, tmp_path):
    b = tls_env
    pid = b.ssl_port["id"]
    old_subject = cert_subject(peer_cert_der(IP2, b.SSL))
    assert "custom.test" not in old_subject
    before = b.wait_listener(IP2, b.SSL)
    assert before and before["state"] == "listening", before
    cert, key = make_cert(tmp_path, "custom.test")
    time.sleep(SINCE_RESOLUTION)
    st, js = b.api("PUT", f"/api/v1/ports/{pid}", {"certificatePath": str(cert), "privateKeyPath": str(key)})
    assert st == 200, js
    p = b.port(pid)
    assert "custom.test" in p["certificate"]["subject"], p["certificate"]
    assert "custom.test" in p["certificate"]["dnsNames"], p["certificate"]
    assert p["certificatePath"] == str(cert)
    subj = wait_subject(IP2, b.SSL, "custom.test")
    assert "CN = custom.test" in subj or "CN=custom.test" in subj, subj
    after = b.listener(IP2, b.SSL)
    assert after["since"] == before["since"], f"listener was rebound: {before} -> {after}"
    assert after["state"] == "listening"
    # STARTTLS port with a combined PEM (cert + key in one file)
    cert2, key2 = make_cert(tmp_path, "combined.test")
    combined = tmp_path / "combined.pem"
    combined.write_bytes(cert2.read_bytes() + key2.read_bytes())
    before2 = b.listener(IP2, b.STLS)
    time.sleep(SINCE_RESOLUTION)
    b.ok("PUT", f"/api/v1/ports/{b.stls_port['id']}", {"certificatePath": str(combined)})
    subj = wait_subject(IP2, b.STLS, "combined.test", starttls=True)
    assert "combined.test" in subj, subj
    assert b.listener(IP2, b.STLS)["since"] == before2["since"]
    # mail still flows over the new certificate
    with smtplib.SMTP_SSL(IP2, b.SSL, local_hostname=CLIENT_NAME, context=tls_client_context(), timeout=15) as s:
        s.login(ALICE, ALICE_PW)
    # back to the default certificate with an empty path
    b.ok("PUT", f"/api/v1/ports/{pid}", {"certificatePath": "", "privateKeyPath": ""})
    subj = wait_subject(IP2, b.SSL, old_subject.split("=", 1)[-1].strip())
    assert subj == old_subject


def test_pkcs12_certificate(tls_env, tmp_path):
    b = tls_env
    cert, key = make_cert(tmp_path, "p12.test")
    p12 = tmp_path / "bundle.p12"
    p = run(["openssl", "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-out", str(p12),
             "-passout", "pass:p12pw"])
    assert p.returncode == 0, p.stderr
    pid = b.ssl_port["id"]
    check_bad_cert(b, pid, {"certificatePath": str(p12), "certificatePassword": "wrong"})
    st, js = b.api("PUT", f"/api/v1/ports/{pid}", {"certificatePath": str(p12), "certificatePassword": "p12pw"})
    assert st == 200, js
    port = b.port(pid)
    assert "certificatePassword" not in port or port["certificatePassword"] in (None, ""), \
        "certificatePassword is write-only"
    assert "p12pw" not in str(b.bindings())
    subj = wait_subject(IP2, b.SSL, "p12.test")
    assert "p12.test" in subj, subj


def test_certificate_warning_expiring(tls_env, tmp_path):
    b = tls_env
    cert, key = make_cert(tmp_path, "soon.test", days=5)
    b.ok("PUT", f"/api/v1/ports/{b.ssl_port['id']}", {"certificatePath": str(cert), "privateKeyPath": str(key)})
    p = b.port(b.ssl_port["id"])
    assert any("expire" in str(w).lower() for w in p.get("warnings", [])), p.get("warnings")
