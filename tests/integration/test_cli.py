"""The `berth` CLI talking to a running server's admin API."""
from __future__ import annotations

import json
import os
import smtplib
import subprocess

import pytest

from conftest import (ADMIN_PASSWORD, BERTH_BIN, CLIENT_NAME, IP2, IP3, add_ips, banner_of, create_port, free_port,
                      run, wait_connect_state)


def cli(b, *args, password: str | None = ADMIN_PASSWORD, timeout: float = 60):
    env = dict(os.environ)
    env.pop("BERTH_ADMIN_PASSWORD", None)
    if password is not None:
        env["BERTH_ADMIN_PASSWORD"] = password
    p = run([str(BERTH_BIN), *args, "--server", b.admin_url], timeout=timeout, env=env)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    return p


def ok(p):
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.out}\nstderr:\n{p.err}"
    return p


@pytest.fixture
def cli_env(server):
    add_ips(server)
    return server


def test_ports_list_table_and_json(cli_env):
    b = cli_env
    a = create_port(b, "Inbound Alpha", assigned=[IP2])
    create_port(b, "Spare Beta")
    p = ok(cli(b, "ports", "list"))
    assert "Inbound Alpha" in p.out and "Spare Beta" in p.out, p.out
    assert str(a["port"]) in p.out
    p = ok(cli(b, "ports", "list", "--json"))
    data = json.loads(p.out)
    ports = data["ports"] if isinstance(data, dict) else data
    assert sorted(x["name"] for x in ports) == ["Inbound Alpha", "Spare Beta"]


def test_ports_add_edit_delete(cli_env):
    b = cli_env
    n = free_port()
    p = ok(cli(b, "ports", "add", "--name", "From CLI", "--protocol", "smtp", "--encryption", "none", "--port", str(n),
              "--ip", IP2))
    made = [x for x in b.ports() if x["name"] == "From CLI"]
    assert len(made) == 1, b.ports()
    port = made[0]
    assert port["port"] == n and port["assignedTo"] == [IP2] and port["protocol"] == "smtp"
    assert port["id"] in p.out, "ports add should print the new id"
    assert wait_connect_state(IP2, n, "ok") == "ok"
    assert banner_of(IP2, n).startswith("220 ")

    ok(cli(b, "ports", "edit", port["id"], "--description", "set by cli"))
    assert b.port(port["id"])["description"] == "set by cli"

    ok(cli(b, "ports", "delete", port["id"]))
    st, _ = b.api("GET", f"/api/v1/ports/{port['id']}")
    assert st == 404
    assert wait_connect_state(IP2, n, "refused") == "refused"


def test_ports_add_conflict_fails(cli_env):
    b = cli_env
    n = free_port()
    create_port(b, "Holder", port=n, assigned=[IP2])
    p = cli(b, "ports", "add", "--name", "Intruder", "--protocol", "smtp", "--encryption", "none", "--port", str(n),
            "--ip", IP2)
    assert p.returncode != 0, p.out
    text = p.out + p.err
    assert "Holder" in text and "Intruder" in text and IP2 in text, text
    assert [x["name"] for x in b.ports()] == ["Holder"]


def test_ports_add_invalid_fails(cli_env):
    p = cli(cli_env, "ports", "add", "--name", "Bad", "--protocol", "smtp", "--encryption", "none", "--port", "70000")
    assert p.returncode != 0
    assert cli_env.ports() == []


def test_ips_list_and_edit(cli_env):
    b = cli_env
    p = ok(cli(b, "ips", "list"))
    for addr in ("127.0.0.1", IP2, IP3, "0.0.0.0"):
        assert addr in p.out, p.out
    ok(cli(b, "ips", "edit", IP2, "--hostname", "h.example.net"))
    assert b.ip(IP2)["hostname"] == "h.example.net"
    port = create_port(b, "Greeter", assigned=[IP2])
    assert wait_connect_state(IP2, port["port"], "ok") == "ok"
    assert banner_of(IP2, port["port"]).startswith("220 h.example.net ")


def test_domains_and_users(cli_env):
    b = cli_env
    ok(cli(b, "domains", "add", "example.org"))
    st, js = b.api("GET", "/api/v1/domains/example.org")
    assert st == 200, js
    ok(cli(b, "users", "add", "example.org", "bob", "--password", "pw-bob-1"))
    st, js = b.api("GET", "/api/v1/domains/example.org/users")
    assert st == 200 and "bob" in json.dumps(js), js
    assert "pw-bob-1" not in json.dumps(js), "password is write-only"
    port = create_port(b, "Auth", "smtp", "ssl", assigned=[IP2])
    assert wait_connect_state(IP2, port["port"], "ok") == "ok"
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP_SSL(IP2, port["port"], local_hostname=CLIENT_NAME, context=ctx, timeout=15) as s:
        s.login("bob@example.org", "pw-bob-1")
    p = cli(b, "domains", "add", "example.org")
    assert p.returncode != 0, "duplicate domain must fail"


def test_listeners(cli_env):
    b = cli_env
    port = create_port(b, "Listed", assigned=[IP2])
    b.wait_listener(IP2, port["port"])
    p = ok(cli(b, "listeners"))
    line = [l for l in p.out.splitlines() if IP2 in l and str(port["port"]) in l]
    assert line, p.out
    assert "listening" in line[0], line


def test_wrong_password_fails(cli_env):
    try:
        p = cli(cli_env, "ports", "list", password="not-the-password", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("`berth ports list` with a wrong BERTH_ADMIN_PASSWORD hung for 30 s instead of exiting non-zero")
    assert p.returncode != 0
    assert "401" in p.out + p.err or "unauthorized" in (p.out + p.err).lower(), p.out + p.err


def test_help(cli_env):
    p = run([str(BERTH_BIN), "--help"])
    assert p.returncode == 0
    out = p.stdout.decode()
    for sub in ("serve", "ports", "ips", "domains", "users", "listeners"):
        assert sub in out, out
    p = run([str(BERTH_BIN), "serve", "--help"])
    assert p.returncode == 0 and b"--no-default-ports" in p.stdout
