"""Contract additions to ports (BINDINGS.md): maxConnections, maxConnectionsPerClient,
proxyProtocol — in the API, the CLI and across a restart, applied without a rebind."""
from __future__ import annotations

import json
import os
import time

import pytest

from conftest import (ADMIN_PASSWORD, BERTH_BIN, IP2, SINCE_RESOLUTION, add_ips, create_port, error_of, run,
                      wait_connect_state)

LIMIT_FIELDS = ("maxConnections", "maxConnectionsPerClient", "proxyProtocol")


def cli(b, *args, password=ADMIN_PASSWORD):
    env = dict(os.environ, BERTH_ADMIN_PASSWORD=password)
    p = run([str(BERTH_BIN), *args, "--server", b.admin_url], env=env)
    p.out, p.err = p.stdout.decode(), p.stderr.decode()
    return p


def test_defaults_are_returned(server):
    p = create_port(server, "Plain")
    assert (p["maxConnections"], p["maxConnectionsPerClient"], p["proxyProtocol"]) == (10000, 100, False)
    got = server.port(p["id"])
    assert all(k in got for k in LIMIT_FIELDS), got
    assert all(k in q for q in server.bindings()["ports"] for k in LIMIT_FIELDS)


def test_create_and_partial_put(server):
    p = create_port(server, "Edge", maxConnections=500, maxConnectionsPerClient=20, proxyProtocol=True)
    assert (p["maxConnections"], p["maxConnectionsPerClient"], p["proxyProtocol"]) == (500, 20, True)
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"maxConnectionsPerClient": 7})
    assert st == 200, js
    assert (js["maxConnections"], js["maxConnectionsPerClient"], js["proxyProtocol"]) == (500, 7, True)
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"proxyProtocol": False, "description": "x"})
    assert st == 200 and js["proxyProtocol"] is False and js["maxConnections"] == 500, js


@pytest.mark.parametrize("fields,field", [
    ({"maxConnections": 0}, "maxConnections"),
    ({"maxConnections": 1000001}, "maxConnections"),
    ({"maxConnectionsPerClient": 0}, "maxConnectionsPerClient"),
    ({"maxConnections": 10, "maxConnectionsPerClient": 11}, "maxConnectionsPerClient"),
    ({"maxConnections": "10"}, "maxConnections"),
    ({"maxConnections": 10.5}, "maxConnections"),
    ({"maxConnections": 10.0}, "maxConnections"),
    ({"proxyProtocol": "yes"}, "proxyProtocol"),
])
def test_bad_limits_are_422_naming_the_field(server, fields, field):
    body = {"name": "Bad", "protocol": "smtp", "encryption": "none", "port": 2525, **fields}
    st, js = server.api("POST", "/api/v1/ports", body)
    assert st == 422, js
    assert error_of(js)["field"] == field, js
    assert server.ports() == []


def test_per_client_above_a_lowered_max_is_refused(server):
    p = create_port(server, "Lower", maxConnections=50, maxConnectionsPerClient=40)
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"maxConnections": 30})
    assert st == 422 and error_of(js)["field"] == "maxConnectionsPerClient", js
    assert "40" in error_of(js)["message"] and "30" in error_of(js)["message"]
    assert server.port(p["id"])["maxConnections"] == 50


def test_limits_change_without_rebinding(server):
    add_ips(server)
    p = create_port(server, "Live", assigned=[IP2])
    assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok"
    before = server.wait_listener(IP2, p["port"])
    time.sleep(SINCE_RESOLUTION)
    server.ok("PUT", f"/api/v1/ports/{p['id']}", {"maxConnections": 1234, "maxConnectionsPerClient": 12,
                                                  "proxyProtocol": True})
    time.sleep(1.0)
    after = server.wait_listener(IP2, p["port"])
    assert after["state"] == "listening", after
    assert after["since"] == before["since"], "a limit or PROXY change must not rebind the socket"


def test_limits_survive_restart(server):
    p = create_port(server, "Kept", maxConnections=77, maxConnectionsPerClient=7, proxyProtocol=True)
    server.restart()
    got = server.port(p["id"])
    assert (got["maxConnections"], got["maxConnectionsPerClient"], got["proxyProtocol"]) == (77, 7, True)


def test_cli_add_edit_and_list(server):
    p = cli(server, "ports", "add", "--name", "Cli", "--protocol", "smtp", "--encryption", "none", "--port", "2526",
            "--max-connections", "300", "--max-connections-per-client", "30", "--proxy-protocol", "--json")
    assert p.returncode == 0, p.err
    made = json.loads(p.out)
    assert (made["maxConnections"], made["maxConnectionsPerClient"], made["proxyProtocol"]) == (300, 30, True)
    p = cli(server, "ports", "edit", made["id"], "--no-proxy-protocol", "--max-connections", "301")
    assert p.returncode == 0, p.err
    got = server.port(made["id"])
    assert (got["maxConnections"], got["maxConnectionsPerClient"], got["proxyProtocol"]) == (301, 30, False)
    p = cli(server, "ports", "list")
    assert p.returncode == 0, p.err
    header = p.out.splitlines()[0]
    for column in ("MAXCONNECTIONS", "MAXCONNECTIONSPERCLIENT", "PROXYPROTOCOL"):
        assert column in header, header
    row = [line for line in p.out.splitlines() if "Cli" in line][0]
    assert "301" in row and " 30 " in row, row
    p = cli(server, "ports", "edit", made["id"], "--max-connections-per-client", "400")
    assert p.returncode != 0 and "maxConnectionsPerClient" in p.err, p.err
