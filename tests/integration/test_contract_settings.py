"""Server settings (BINDINGS.md): GET/PUT /api/v1/settings and `berth settings`."""
from __future__ import annotations

import json
import os

import pytest

from conftest import ADMIN_PASSWORD, BERTH_BIN, error_of, run

DEFAULTS = {"proxyTrustedNetworks": [], "authFailureDelayMs": 1000, "authBanThreshold": 10,
            "authBanWindowSeconds": 600, "authBanSeconds": 900,
            # issue 6: the outbound queue
            "queueRetryInitialSeconds": 300, "queueRetryMaxSeconds": 14400, "queueLifetimeSeconds": 432000,
            "queueDelayWarningSeconds": 14400, "outboundMaxConnections": 100,
            "outboundMaxConnectionsPerDestination": 20, "outboundConnectTimeoutSeconds": 30,
            "outboundFailureMemorySeconds": 600,
            # issue 9: who reads the LDAP address book
            "ldapAnonymousSearch": False, "ldapSearchAllDomains": False}


def cli(b, *args):
    env = dict(os.environ, BERTH_ADMIN_PASSWORD=ADMIN_PASSWORD)
    p = run([str(BERTH_BIN), *args, "--server", b.admin_url], env=env)
    p.out, p.err = p.stdout.decode(), p.stderr.decode()
    return p


def test_defaults(server):
    assert server.ok("GET", "/api/v1/settings") == DEFAULTS


def test_partial_put_keeps_the_rest_and_survives_restart(server):
    js = server.ok("PUT", "/api/v1/settings", {"authBanThreshold": 5, "proxyTrustedNetworks": ["10.1.2.3/8", "::1"]})
    assert js == {**DEFAULTS, "authBanThreshold": 5, "proxyTrustedNetworks": ["10.0.0.0/8", "::1/128"]}
    js = server.ok("PUT", "/api/v1/settings", {"authBanSeconds": 60})
    assert js["authBanThreshold"] == 5 and js["authBanSeconds"] == 60 and js["proxyTrustedNetworks"] == ["10.0.0.0/8", "::1/128"]
    server.restart()
    assert server.ok("GET", "/api/v1/settings") == js


@pytest.mark.parametrize("body,field", [
    ({"authFailureDelayMs": 60001}, "authFailureDelayMs"),
    ({"authFailureDelayMs": -1}, "authFailureDelayMs"),
    ({"authBanThreshold": 0}, "authBanThreshold"),
    ({"authBanWindowSeconds": 604801}, "authBanWindowSeconds"),
    ({"authBanSeconds": 0}, "authBanSeconds"),
    ({"proxyTrustedNetworks": ["10.0.0.0/8", "10.0.0.0/33"]}, "proxyTrustedNetworks[1]"),
    ({"proxyTrustedNetworks": ["proxy.example.com"]}, "proxyTrustedNetworks[0]"),
    ({"proxyTrustedNetworks": "10.0.0.0/8"}, "proxyTrustedNetworks"),
    ({"authBanSeconds": 1.5}, "authBanSeconds"),
    ({"authBanSecs": 10}, "authBanSecs"),
    ({"queueRetryInitialSeconds": 0}, "queueRetryInitialSeconds"),
    ({"queueRetryMaxSeconds": 0}, "queueRetryMaxSeconds"),
    ({"queueLifetimeSeconds": 0}, "queueLifetimeSeconds"),
    ({"queueDelayWarningSeconds": -1}, "queueDelayWarningSeconds"),
    ({"outboundMaxConnections": 0}, "outboundMaxConnections"),
    ({"outboundMaxConnectionsPerDestination": 0}, "outboundMaxConnectionsPerDestination"),
    ({"outboundConnectTimeoutSeconds": 0}, "outboundConnectTimeoutSeconds"),
    ({"outboundFailureMemorySeconds": 0}, "outboundFailureMemorySeconds"),
    ({"queueRetryInitialSeconds": "300"}, "queueRetryInitialSeconds"),
    ({"ldapAnonymousSearch": "yes"}, "ldapAnonymousSearch"),
    ({"ldapSearchAllDomains": 1}, "ldapSearchAllDomains"),
])
def test_bad_values_are_422_naming_the_field_and_change_nothing(server, body, field):
    server.ok("PUT", "/api/v1/settings", {"authBanThreshold": 4})
    before = server.ok("GET", "/api/v1/settings")
    st, js = server.api("PUT", "/api/v1/settings", {"authBanThreshold": 9, **body})
    assert st == 422, js
    assert error_of(js)["field"] == field, js
    assert server.ok("GET", "/api/v1/settings") == before


def test_settings_need_auth(server):
    st, _ = server.api("GET", "/api/v1/settings", auth=False)
    assert st == 401


def test_cli_show_set_and_clear(server):
    p = cli(server, "settings", "set", "--auth-failure-delay-ms", "250", "--auth-ban-threshold", "3",
            "--auth-ban-window-seconds", "60", "--auth-ban-seconds", "120",
            "--proxy-trusted-network", "192.0.2.0/24", "--proxy-trusted-network", "2001:db8::/32")
    assert p.returncode == 0, p.err
    assert server.ok("GET", "/api/v1/settings") == {
        **DEFAULTS, "proxyTrustedNetworks": ["192.0.2.0/24", "2001:db8::/32"], "authFailureDelayMs": 250,
        "authBanThreshold": 3, "authBanWindowSeconds": 60, "authBanSeconds": 120}
    p = cli(server, "settings", "show")
    assert p.returncode == 0 and "192.0.2.0/24" in p.out and "250" in p.out, p.out
    p = cli(server, "settings", "--json")
    assert p.returncode == 0 and json.loads(p.out)["authBanThreshold"] == 3, p.out
    p = cli(server, "settings", "set", "--clear-proxy-trusted-networks")
    assert p.returncode == 0, p.err
    assert server.ok("GET", "/api/v1/settings")["proxyTrustedNetworks"] == []
    assert server.ok("GET", "/api/v1/settings")["authBanThreshold"] == 3
    p = cli(server, "settings", "set", "--auth-ban-threshold", "0")
    assert p.returncode != 0 and "authBanThreshold" in p.err, p.err


def test_queue_settings_minimums_and_cli(server):
    """Issue 6: every queue/outbound setting's minimum is 1, except queueDelayWarningSeconds
    (0 = never warn); `berth settings set` takes them all."""
    ones = {k: 1 for k in DEFAULTS if k.startswith(("queue", "outbound"))}
    ones["queueDelayWarningSeconds"] = 0
    js = server.ok("PUT", "/api/v1/settings", ones)
    assert {k: js[k] for k in ones} == ones, js
    p = cli(server, "settings", "set", "--queue-retry-initial-seconds", "60", "--queue-retry-max-seconds", "600",
            "--queue-lifetime-seconds", "86400", "--queue-delay-warning-seconds", "3600",
            "--outbound-max-connections", "50", "--outbound-max-connections-per-destination", "5",
            "--outbound-connect-timeout-seconds", "10", "--outbound-failure-memory-seconds", "120")
    assert p.returncode == 0, p.err
    got = server.ok("GET", "/api/v1/settings")
    assert {k: got[k] for k in ones} == {
        "queueRetryInitialSeconds": 60, "queueRetryMaxSeconds": 600, "queueLifetimeSeconds": 86400,
        "queueDelayWarningSeconds": 3600, "outboundMaxConnections": 50, "outboundMaxConnectionsPerDestination": 5,
        "outboundConnectTimeoutSeconds": 10, "outboundFailureMemorySeconds": 120}, got
