"""Issue 5, finding 7: the admin API's JSON is strict and complete, and every `--json` CLI
output and error is JSON."""
from __future__ import annotations

import json
import os

import pytest

from conftest import ADMIN_PASSWORD, BERTH_BIN, IP2, add_ips, create_port, error_of, free_port, run, setup_domain


def cli(b, *args, password=ADMIN_PASSWORD, server_url=None):
    env = dict(os.environ)
    env.pop("BERTH_ADMIN_PASSWORD", None)
    if password is not None:
        env["BERTH_ADMIN_PASSWORD"] = password
    p = run([str(BERTH_BIN), *args, "--server", server_url or b.admin_url], env=env, timeout=60)
    p.out, p.err = p.stdout.decode(), p.stderr.decode()
    return p


def test_unset_ip_address_is_null(server):
    setup_domain(server)
    js = server.ok("GET", "/api/v1/domains/example.com")
    assert "ipAddress" in js and js["ipAddress"] is None, js
    assert all("ipAddress" in d and d["ipAddress"] is None for d in server.ok("GET", "/api/v1/domains"))


@pytest.mark.parametrize("method,path,body,field", [
    ("POST", "/api/v1/ports", {"name": "X", "protocol": "smtp", "encryption": "none", "port": 2525, "maxConnection": 5},
     "maxConnection"),
    ("POST", "/api/v1/ports", {"name": "X", "protocol": "smtp", "encryption": "none", "port": 2525, "Name": "Y"}, "Name"),
    ("POST", "/api/v1/ip-addresses", {"address": "127.0.0.9", "hostName": "mx.example.net"}, "hostName"),
    ("PUT", "/api/v1/ip-addresses/127.0.0.1", {"port": []}, "port"),
    ("POST", "/api/v1/domains", {"name": "example.org", "ipaddress": "127.0.0.1"}, "ipaddress"),
    ("POST", "/api/v1/domains", {"name": "example.org", "outbound": {"ipv4": {"mode": "system", "adresses": []}}},
     "outbound.ipv4.adresses"),
    ("POST", "/api/v1/ports/delete", {"ids": ["1"], "force": True}, "force"),
    ("PUT", "/api/v1/settings", {"authBanTreshold": 3}, "authBanTreshold"),
])
def test_unknown_fields_are_422_naming_the_field(server, method, path, body, field):
    st, js = server.api(method, path, body)
    assert st == 422, js
    err = error_of(js)
    assert err["code"] == "validation_failed" and err["field"] == field, js
    assert field in err["message"]
    assert server.ports() == [] and server.ok("GET", "/api/v1/domains") == []


def test_unknown_field_in_a_user_body(server):
    setup_domain(server)
    st, js = server.api("POST", "/api/v1/domains/example.com/users", {"name": "bob", "password": "long enough pw",
                                                                       "displayname": "Bob"})
    assert st == 422 and error_of(js)["field"] == "displayname", js


@pytest.mark.parametrize("raw,field", [
    (b'{"name": "A", "name": "B", "protocol": "smtp", "encryption": "none", "port": 2525}', "name"),
    (b'{"name": "A", "protocol": "smtp", "encryption": "none", "port": 2525, "port": 2526}', "port"),
    (b'{"name": "A", "protocol": "smtp", "encryption": "none", "port": 2525.0}', "port"),
    (b'{"name": "A", "protocol": "smtp", "encryption": "none", "port": 2.525e3}', "port"),
    (b'{"name": "A", "protocol": "smtp", "encryption": "none", "port": 2525.5}', "port"),
])
def test_duplicate_keys_and_non_integers_are_422(server, raw, field):
    st, js = server.api("POST", "/api/v1/ports", raw=raw)
    assert st == 422, js
    assert error_of(js)["field"] == field, js
    assert server.ports() == []


def test_ids_as_numbers_or_strings(server):
    add_ips(server)
    a = create_port(server, "A")
    b = create_port(server, "B")
    c = create_port(server, "C")
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", {"ports": [int(a["id"]), b["id"]]})
    assert st == 200, js
    assert js["ports"] == [a["id"], b["id"]], "ids are returned as strings"
    st, js = server.api("POST", "/api/v1/ip-addresses", {"address": "127.0.0.9", "ports": [int(c["id"])]})
    assert st == 201 and js["ports"] == [c["id"]], js
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", {"ports": [int(a["id"]), 99999]})
    assert st == 422 and error_of(js)["field"] == "ports[1]", js
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", {"ports": [1.5]})
    assert st == 422 and error_of(js)["field"] == "ports[0]", js
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", {"ports": [True]})
    assert st == 422 and error_of(js)["field"] == "ports[0]", js
    st, js = server.api("POST", "/api/v1/ports/delete", {"ids": [int(a["id"]), b["id"]]})
    assert st == 200, js
    assert [p["id"] for p in server.ports()] == [c["id"]]


def test_cli_json_outputs_are_json(server):
    add_ips(server)
    setup_domain(server)
    server.ok("POST", "/api/v1/domains", {"name": "spare.example"}, statuses=(201,))
    port = create_port(server, "Doomed")
    server.ok("POST", "/api/v1/ip-addresses", {"address": "127.0.0.9"}, statuses=(201,))
    commands = [
        ("ports", "list"), ("ips", "list"), ("domains", "list"), ("users",), ("users", "list", "example.com"),
        ("listeners",), ("settings", "show"), ("settings", "set", "--auth-ban-threshold", "4"),
        ("ports", "edit", port["id"], "--description", "d"),
        ("users", "add", "example.com", "bob", "--password", "bobs long pw"),
        ("users", "delete", "example.com", "bob"),
        ("ports", "delete", port["id"]),
        ("ips", "delete", "127.0.0.9"),
        ("domains", "delete", "spare.example"),
    ]
    for args in commands:
        p = cli(server, *args, "--json")
        assert p.returncode == 0, (args, p.err)
        try:
            json.loads(p.out)
        except ValueError:
            pytest.fail(f"`berth {' '.join(args)} --json` printed non-JSON: {p.out!r}")


def test_cli_json_errors_are_json(server):
    n = free_port()
    create_port(server, "Holder", port=n, assigned=["127.0.0.1"])
    cases = [
        (("ports", "add", "--name", "Holder", "--protocol", "smtp", "--port", str(n + 1), "--json"), {}, "name_taken"),
        (("ports", "edit", "424242", "--description", "x", "--json"), {}, "not_found"),
        (("ports", "list", "--json"), {"password": "wrong-password"}, "unauthorized"),
        (("ports", "list", "--json"), {"password": None}, "no_password"),
        (("ports", "list", "--json"), {"server_url": f"http://127.0.0.1:{free_port()}"}, "unreachable"),
        (("ports", "add", "--port", "not-a-number", "--json"), {}, "usage"),
    ]
    for args, kw, code in cases:
        p = cli(server, *args, **kw)
        assert p.returncode != 0, args
        try:
            err = json.loads(p.err)["error"]
        except (ValueError, KeyError):
            pytest.fail(f"`berth {' '.join(args)}` error is not JSON: stdout {p.out!r} stderr {p.err!r}")
        assert err["code"] == code and err["message"], (args, err)
        assert p.out == "", (args, p.out)
