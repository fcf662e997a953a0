"""The certificate library (/api/v1/certificates, `berth certificates`) and the default
certificate following the host name. Handshake-level SNI is test_sni.py's."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from conftest import (ADMIN_PASSWORD, BERTH_BIN, IP2, add_ip, create_port, error_of, wait_connect_state)

API = "/api/v1/certificates"


# ------------------------------------------------------------------ helpers


def ec_cert(directory: Path, name: str, dns: list[str], days: int = 90, subject: str | None = None,
            combined: bool = False) -> tuple[Path, Path | None]:
    """A self-signed EC P-256 certificate; `combined`: one PEM file holding cert and key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    san = ",".join(f"DNS:{d}" for d in dns)
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", str(days),
                        "-subj", subject or f"/CN={dns[0]}", "-addext", f"subjectAltName={san}"],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    if combined:
        both = directory / f"{name}.pem"
        both.write_bytes(cert.read_bytes() + key.read_bytes())
        return both, None
    return cert, key


def served_san(host: str, port: int, servername: str | None = None) -> str:
    """`openssl s_client ... </dev/null | openssl x509 -noout -ext subjectAltName`."""
    args = ["openssl", "s_client", "-connect", f"{host}:{port}"]
    if servername:
        args += ["-servername", servername]
    hello = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    x509 = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=hello.stdout,
                          capture_output=True, timeout=30)
    assert x509.returncode == 0, f"no certificate from {host}:{port}: {hello.stderr.decode()[-400:]}"
    return x509.stdout.decode()


def cli(b, *args, password: str | None = ADMIN_PASSWORD, env_extra: dict | None = None, cwd: Path | None = None):
    env = dict(os.environ)
    env.pop("BERTH_ADMIN_PASSWORD", None)
    if password is not None:
        env["BERTH_ADMIN_PASSWORD"] = password
    env.update(env_extra or {})
    p = subprocess.run([str(BERTH_BIN), *args, "--server", b.admin_url], capture_output=True, timeout=60, env=env,
                       cwd=cwd, stdin=subprocess.DEVNULL)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def ok(p):
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.out}\nstderr:\n{p.err}"
    return p


def library(b) -> list[dict]:
    st, js = b.api("GET", API)
    assert st == 200, (st, js)
    return js


# ------------------------------------------------------------------ API


def test_post_get_list_delete(server, tmp_path):
    b = server
    cert, key = ec_cert(tmp_path / "certs", "mail", ["mail.example.org", "*.example.org"])
    st, made = b.api("POST", API, {"certificatePath": str(cert), "privateKeyPath": str(key)})
    assert st == 201, made
    assert isinstance(made["id"], str) and made["id"]
    assert made["certificatePath"] == str(cert) and made["privateKeyPath"] == str(key)
    assert made["dnsNames"] == ["mail.example.org", "*.example.org"]
    assert "CN=mail.example.org" in made["subject"] and made["issuer"] == made["subject"]
    assert made["selfSigned"] is True
    assert made["notAfter"].endswith("Z")
    assert made["usedBy"] == ["sni"], "no port names the file; SNI can pick it"
    assert "certificatePassword" not in made
    assert not any("expires" in w for w in made["warnings"]), made["warnings"]

    assert [c["id"] for c in library(b)] == [made["id"]]
    st, one = b.api("GET", f"{API}/{made['id']}")
    assert st == 200 and one == made

    st, _ = b.api("DELETE", f"{API}/{made['id']}")
    assert st in (200, 204)
    st, js = b.api("GET", f"{API}/{made['id']}")
    assert st == 404 and error_of(js)["code"] == "not_found"
    assert library(b) == []
    st, js = b.api("DELETE", f"{API}/{made['id']}")
    assert st == 404, js


def test_expiring_certificate_warns_and_password_is_write_only(server, tmp_path):
    b = server
    cert, key = ec_cert(tmp_path, "soon", ["soon.example.org"], days=10)
    p12 = tmp_path / "soon.p12"
    p = subprocess.run(["openssl", "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-out", str(p12),
                        "-passout", "pass:p12-Secret-9"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    st, js = b.api("POST", API, {"certificatePath": str(p12), "certificatePassword": "wrong"})
    assert st == 422 and error_of(js)["code"] == "bad_certificate", js
    assert "password" in error_of(js)["message"]
    st, made = b.api("POST", API, {"certificatePath": str(p12), "certificatePassword": "p12-Secret-9"})
    assert st == 201, made
    assert any(w.startswith("certificate expires in") for w in made["warnings"]), made["warnings"]
    st, raw = b.api("GET", API)
    assert "p12-Secret-9" not in json.dumps(raw)


def test_bad_files_are_refused_and_nothing_is_stored(server, tmp_path):
    b = server
    cert, key = ec_cert(tmp_path, "good", ["good.example.org"])
    _, other_key = ec_cert(tmp_path, "other", ["other.example.org"])
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cases = [
        ({"certificatePath": str(tmp_path / "missing.pem")}, "does not exist"),
        ({"certificatePath": str(junk)}, "no PEM certificate"),
        ({"certificatePath": str(cert)}, "no private key"),
        ({"certificatePath": str(cert), "privateKeyPath": str(other_key)}, "does not match"),
        ({"certificatePath": str(cert), "privateKeyPath": str(tmp_path / "none.key")}, "does not exist"),
    ]
    for body, reason in cases:
        st, js = b.api("POST", API, body)
        assert st == 422, (body, st, js)
        err = error_of(js)
        assert err["code"] == "bad_certificate" and err["field"] == "certificatePath", (body, err)
        assert reason in err["message"], (body, err)
    for body, field in [({"certificatePath": str(cert), "privateKeypath": str(key)}, "privateKeypath"),
                        ({"privateKeyPath": str(key)}, "certificatePath"),
                        ({"certificatePath": ""}, "certificatePath")]:
        st, js = b.api("POST", API, body)
        assert st == 422 and error_of(js)["code"] == "validation_failed" and error_of(js)["field"] == field, (body, js)
    st, js = b.api("POST", API, raw=b'{"certificatePath": ')
    assert st == 400 and error_of(js)["code"] == "invalid_json"
    assert library(b) == []


def test_relative_path_is_stored_absolute(server, tmp_path):
    b = server
    both, _ = ec_cert(tmp_path / "rel", "rel", ["rel.example.org"], combined=True)
    relative = os.path.relpath(both, os.getcwd())  # berth serve runs in this process's directory
    st, made = b.api("POST", API, {"certificatePath": relative})
    assert st == 201, made
    assert made["certificatePath"] == os.path.normpath(str(both))
    st, js = b.api("POST", API, {"certificatePath": str(both)})
    assert st == 409 and error_of(js)["code"] == "conflict", "the same file twice"


def test_delete_refused_while_a_port_names_the_file(server, tmp_path):
    b = server
    add_ip(b, IP2)
    cert, key = ec_cert(tmp_path, "shared", ["shared.example.org"])
    port = create_port(b, "Shared SSL", "smtp", "ssl", assigned=[IP2], certificatePath=str(cert),
                       privateKeyPath=str(key))
    st, made = b.api("POST", API, {"certificatePath": str(cert), "privateKeyPath": str(key)})
    assert st == 201, made
    assert made["usedBy"] == [port["id"], "sni"]
    st, js = b.api("DELETE", f"{API}/{made['id']}")
    assert st == 409, js
    err = error_of(js)
    assert err["code"] == "conflict" and "Shared SSL" in err["message"], err
    assert [c["id"] for c in library(b)] == [made["id"]]
    # Once the port is back on the default certificate, the library certificate can go.
    b.ok("PUT", f"/api/v1/ports/{port['id']}", {"certificatePath": ""})
    assert b.api("GET", f"{API}/{made['id']}")[1]["usedBy"] == ["sni"]
    st, _ = b.api("DELETE", f"{API}/{made['id']}")
    assert st in (200, 204)
    assert library(b) == []


def test_restart_keeps_the_library_and_ids_are_not_reused(server, tmp_path):
    b = server
    a, _ = ec_cert(tmp_path, "a", ["a.example.org"], combined=True)
    c, _ = ec_cert(tmp_path, "c", ["c.example.org"], combined=True)
    d, _ = ec_cert(tmp_path, "d", ["d.example.org"], combined=True)
    first = b.ok("POST", API, {"certificatePath": str(a)})
    second = b.ok("POST", API, {"certificatePath": str(c)})
    b.ok("DELETE", f"{API}/{second['id']}")
    b.restart()
    assert [x["id"] for x in library(b)] == [first["id"]]
    assert library(b)[0]["dnsNames"] == ["a.example.org"]
    third = b.ok("POST", API, {"certificatePath": str(d)})
    assert third["id"] not in (first["id"], second["id"]), "ids are never reused"


def test_server_loads_the_library_and_logs_a_bad_file_once(server, tmp_path):
    """CertificateLibraryService (run by BerthApp): loads at start and on each change; a
    file that goes bad is logged once (not every 5 s) and the last good certificate is kept."""
    b = server
    both, _ = ec_cert(tmp_path, "svc", ["svc.example.org"], combined=True)
    made = b.ok("POST", API, {"certificatePath": str(both)})
    wait_log(b, f"certificate library: loaded {made['id']}")
    both.write_text("gone bad\n")
    line = f"certificate library: certificate {made['id']}"
    wait_log(b, line, timeout=12)
    b.ok("POST", "/api/v1/domains", {"name": "unrelated.example"})  # another change: no new line
    time.sleep(6)
    assert b.log.count(line) == 1, b.log_tail()
    assert "keeping the last good certificate" in b.log
    b.restart()
    wait_log(b, line, since_start=True)
    assert "SNI does not offer it" in b.log.split("===== start #")[-1]


def wait_log(b, text: str, timeout: float = 8.0, since_start: bool = False) -> None:
    end = time.monotonic() + timeout
    for _ in range(1000):
        log = b.log.split("===== start #")[-1] if since_start else b.log
        if text in log:
            return
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{b.log_tail()}")


# ------------------------------------------------------------------ CLI


def test_cli_add_list_show_delete(server, tmp_path):
    b = server
    certs = tmp_path / "cli"
    cert, key = ec_cert(certs, "cli", ["cli.example.org"])
    # Relative paths are resolved where the command runs.
    p = ok(cli(b, "certificates", "add", "cli.crt", "--key", "cli.key", "--json", cwd=certs))
    made = json.loads(p.out)
    assert made["certificatePath"] == str(cert) and made["privateKeyPath"] == str(key)
    cid = made["id"]

    p = ok(cli(b, "certificates", "list"))
    assert "cli.example.org" in p.out and str(cert) in p.out and "ID" in p.out, p.out
    p = ok(cli(b, "certificates", "--json"))
    assert [x["id"] for x in json.loads(p.out)] == [cid]
    p = ok(cli(b, "certificates", "show", cid))
    assert "CN=cli.example.org" in p.out, p.out
    p = ok(cli(b, "certificates", "show", cid, "--json"))
    assert json.loads(p.out)["dnsNames"] == ["cli.example.org"]

    p = cli(b, "certificates", "add", str(certs / "missing.pem"), "--json")
    assert p.returncode == 1, p.out + p.err
    err = json.loads(p.err)["error"]
    assert err["code"] == "bad_certificate" and err["field"] == "certificatePath" and err["status"] == 422

    p = ok(cli(b, "certificates", "delete", cid))
    assert cid in p.out
    p = cli(b, "certificates", "delete", cid)
    assert p.returncode == 1 and "404" in p.err, p.err
    p = cli(b, "certificates", "show", cid, "--json")
    assert p.returncode == 1 and json.loads(p.err)["error"]["code"] == "not_found"
    p = ok(cli(b, "certificates", "list", "--json"))
    assert json.loads(p.out) == []


def test_cli_password_from_environment(server, tmp_path):
    b = server
    cert, key = ec_cert(tmp_path, "pfx", ["pfx.example.org"])
    p12 = tmp_path / "pfx.p12"
    r = subprocess.run(["openssl", "pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-out", str(p12),
                        "-passout", "pass:from-env-7"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    p = cli(b, "certificates", "add", str(p12), "--password-env", "BERTH_TEST_UNSET_VAR", "--json")
    assert p.returncode == 64, (p.returncode, p.err)
    assert json.loads(p.err)["error"]["code"] == "usage"
    p = ok(cli(b, "certificates", "add", str(p12), "--password-env", "P12_PW", "--json",
              env_extra={"P12_PW": "from-env-7"}))
    assert json.loads(p.out)["dnsNames"] == ["pfx.example.org"]
    assert "from-env-7" not in p.out
    p = cli(b, "certificates", "add", str(p12), "--password-env", "P12_PW", env_extra={"P12_PW": "wrong"})
    assert p.returncode == 1 and "422 bad_certificate" in p.err and "wrong password" in p.err, p.err
    p = cli(b, "certificates", "add", str(p12), "--password-env", "P12_PW", env_extra={"P12_PW": "from-env-7"})
    assert p.returncode == 1 and "409 conflict" in p.err and "already in the library" in p.err, p.err


def test_cli_delete_refused_names_the_port(server, tmp_path):
    b = server
    add_ip(b, IP2)
    both, _ = ec_cert(tmp_path, "named", ["named.example.org"], combined=True)
    create_port(b, "Named SSL", "smtp", "ssl", assigned=[IP2], certificatePath=str(both))
    cid = json.loads(ok(cli(b, "certificates", "add", str(both), "--json")).out)["id"]
    p = cli(b, "certificates", "delete", cid)
    assert p.returncode == 1 and "409" in p.err and "Named SSL" in p.err, p.err


# ------------------------------------------------------------------ default certificate


def default_cert_san(b, port: int) -> str:
    assert wait_connect_state(IP2, port, "ok", deadline=5) == "ok"
    return served_san(IP2, port)


def test_default_certificate_follows_the_host_name(make_server, tmp_path):
    b = make_server(hostname="one.test.local")
    add_ip(b, IP2)
    port = create_port(b, "Default SSL", "smtp", "ssl", assigned=[IP2])["port"]
    assert "DNS:one.test.local" in default_cert_san(b, port)
    default = b.data / "certs" / "default.pem"

    # A new --hostname: Berth's own certificate is made anew for it.
    b.stop()
    b.hostname = "two.test.local"
    b.start()
    san = default_cert_san(b, port)
    assert "DNS:two.test.local" in san and "one.test.local" not in san, san
    assert "generated a new self-signed certificate for two.test.local" in b.log
    assert oct(default.stat().st_mode & 0o777) == "0o600"

    # Same host name again: kept as it is.
    before = default.read_bytes()
    b.restart()
    assert default.read_bytes() == before

    # Berth's own certificate expiring within 30 days is made anew.
    b.stop()
    soon, _ = ec_cert(tmp_path / "soon", "soon", ["two.test.local"], days=10,
                      subject="/O=Berth self-signed/CN=two.test.local", combined=True)
    default.write_bytes(soon.read_bytes())
    b.start()
    assert default.read_bytes() != soon.read_bytes()
    assert "generated a new self-signed certificate for two.test.local" in b.log.split("===== start #")[-1]
    enddate = subprocess.run(["openssl", "x509", "-noout", "-checkend", str(300 * 86400), "-in", str(default)],
                             capture_output=True, timeout=30)
    assert enddate.returncode == 0, "the new one is good for far more than 300 days"


def test_admins_default_certificate_is_never_replaced(make_server, tmp_path):
    b = make_server(hostname="one.test.local")
    add_ip(b, IP2)
    port = create_port(b, "Default SSL", "smtp", "ssl", assigned=[IP2])["port"]
    b.stop()
    mine, _ = ec_cert(tmp_path / "mine", "mine", ["admin.example.org"], days=5, combined=True)
    default = b.data / "certs" / "default.pem"
    default.write_bytes(mine.read_bytes())
    b.hostname = "three.test.local"
    b.start()
    assert default.read_bytes() == mine.read_bytes(), "the admin's certificate is left alone"
    san = default_cert_san(b, port)
    assert "DNS:admin.example.org" in san and "three.test.local" not in san, san


def test_port_warns_of_a_self_signed_certificate_and_an_uncovered_host_name(server, tmp_path):
    """The Ports list shows what the listener found: the certificate is self-signed, and it
    does not cover the host name clients reach that address by (issue 7)."""
    b = server
    add_ip(b, IP2, hostname="mx.other.example")
    cert, key = ec_cert(tmp_path / "w", "web", ["web.example.org"])
    port = create_port(b, "Warned", encryption="ssl", assigned=[IP2], certificatePath=str(cert),
                       privateKeyPath=str(key))
    deadline = time.monotonic() + 5
    while True:
        warnings = b.port(port["id"])["warnings"]
        covered = [w for w in warnings if "does not cover the host name mx.other.example" in w]
        if covered or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any("self-signed" in w for w in warnings), warnings
    assert covered and covered[0].startswith(f"on {IP2}:"), warnings
