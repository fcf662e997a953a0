"""Admin API for bindings: ports, IP addresses, listeners, validation, auth, defaults."""
from __future__ import annotations

import copy

import pytest

from conftest import (IP2, IP3, add_ips, connect_state, create_port, error_of, free_port, set_ip, unwrap,
                      wait_connect_state, warning_texts, banner_of, SERVER_HOSTNAME)

PORT_FIELDS = {"id", "name", "protocol", "encryption", "tlsRequired", "port", "description", "assignedTo", "warnings"}
IP_FIELDS = {"address", "family", "interface", "source", "present", "hostname", "description", "ports"}


def snapshot(b):
    """The parts of the bindings a refused change must not touch."""
    js = b.bindings()
    ports = sorted(js["ports"], key=lambda p: p["id"])
    ips = sorted((ip for ip in js["ipAddresses"] if ip["source"] != "interface"), key=lambda i: i["address"])
    return {"ports": ports, "ips": ips}


def by_address(ips, addr):
    for ip in ips:
        if ip["address"] == addr:
            return ip
    raise AssertionError(f"{addr} not in {[i['address'] for i in ips]}")


def test_create_assign_and_bindings_shape(server):
    add_ips(server)
    a = create_port(server, "Plain SMTP", "smtp", "none", assigned=[IP2])
    s = create_port(server, "SMTP SSL", "smtp", "ssl")
    t = create_port(server, "Submission", "submission", "tls", description="for MUAs")
    assert a["assignedTo"] == [IP2]
    assert s["assignedTo"] == [] and t["assignedTo"] == []
    assert t["tlsRequired"] is True, "tlsRequired defaults to true for submission"
    assert a["tlsRequired"] is False and s["tlsRequired"] is False
    assert t["description"] == "for MUAs"
    assert len({a["id"], s["id"], t["id"]}) == 3

    # Assign via PUT /api/v1/ip-addresses/{addr}
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", {"ports": [a["id"], s["id"], t["id"]]})
    assert st == 200, js
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP3}", {"ports": [t["id"]]})
    assert st == 200, js

    bind = server.bindings()
    assert set(bind) >= {"ports", "ipAddresses"}
    ports = {p["id"]: p for p in bind["ports"]}
    assert set(ports) == {a["id"], s["id"], t["id"]}
    for p in ports.values():
        assert PORT_FIELDS <= set(p), f"missing {PORT_FIELDS - set(p)} in {p}"
        assert "certificatePassword" not in p or p["certificatePassword"] in (None, "")
    assert sorted(ports[a["id"]]["assignedTo"]) == [IP2]
    assert sorted(ports[s["id"]]["assignedTo"]) == [IP2]
    assert sorted(ports[t["id"]]["assignedTo"]) == [IP2, IP3]
    assert ports[s["id"]]["protocol"] == "smtp" and ports[s["id"]]["encryption"] == "ssl"
    assert ports[t["id"]]["protocol"] == "submission" and ports[t["id"]]["encryption"] == "tls"
    for pid in (s["id"], t["id"]):
        cert = ports[pid].get("certificate")
        assert isinstance(cert, dict), ports[pid]
        assert {"subject", "dnsNames", "notAfter", "selfSigned"} <= set(cert)
        assert cert["selfSigned"] is True

    ips = bind["ipAddresses"]
    ip2 = by_address(ips, IP2)
    assert ip2["family"] == "ipv4" and ip2["source"] == "manual" and ip2["present"] is True
    assert sorted(ip2["ports"]) == sorted([a["id"], s["id"], t["id"]])
    assert by_address(ips, IP3)["ports"] == [t["id"]]
    wild4 = by_address(ips, "0.0.0.0")
    assert wild4["source"] == "wildcard" and wild4["family"] == "ipv4" and wild4.get("interface") is None
    wild6 = by_address(ips, "::")
    assert wild6["source"] == "wildcard" and wild6["family"] == "ipv6"
    lo = by_address(ips, "127.0.0.1")
    assert lo["source"] == "interface" and lo["interface"] == "lo" and lo["present"] is True
    assert not any(i["address"].lower().startswith("fe80") for i in ips), "link-local addresses are left out"

    # single GETs agree with the aggregate
    assert unwrap(server.ok("GET", f"/api/v1/ports/{t['id']}"), "port")["assignedTo"] in ([IP2, IP3], [IP3, IP2])
    assert server.ip(IP3)["ports"] == [t["id"]]

    # every field of the contract is present, null ones as null (BINDINGS.md: "interface: null for
    # wildcards and manual ones"; hostname is "string?")
    for ip in ips:
        assert IP_FIELDS <= set(ip), f"missing {IP_FIELDS - set(ip)} in {ip}"


def test_partial_put_edits_only_given_fields(server):
    add_ips(server)
    p = create_port(server, "Edit me", "smtp", "none", assigned=[IP2], description="before")
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"description": "after"})
    assert st == 200, js
    got = server.port(p["id"])
    assert got["description"] == "after"
    for k in ("name", "protocol", "encryption", "port", "tlsRequired"):
        assert got[k] == p[k], k
    assert got["assignedTo"] == [IP2]
    new_num = free_port()
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"port": new_num, "name": "Edited"})
    assert st == 200, js
    got = server.port(p["id"])
    assert (got["port"], got["name"], got["description"], got["assignedTo"]) == (new_num, "Edited", "after", [IP2])
    # full PUT
    body = {"name": "Full", "protocol": "smtp", "encryption": "none", "port": new_num, "description": "",
            "assignedTo": [IP3]}
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", body)
    assert st == 200, js
    got = server.port(p["id"])
    assert (got["name"], got["description"], got["assignedTo"]) == ("Full", "", [IP3])
    assert server.ip(IP2)["ports"] == []
    assert server.ip(IP3)["ports"] == [p["id"]]


def test_delete_one_and_many(server):
    add_ips(server)
    ps = [create_port(server, f"P{i}", assigned=[IP2]) for i in range(4)]
    st, js = server.api("DELETE", f"/api/v1/ports/{ps[0]['id']}")
    assert st in (200, 204), js
    st, js = server.api("GET", f"/api/v1/ports/{ps[0]['id']}")
    assert st == 404 and error_of(js)["code"] == "not_found"
    assert ps[0]["id"] not in server.ip(IP2)["ports"]

    st, js = server.api("POST", "/api/v1/ports/delete", {"ids": [ps[1]["id"], ps[2]["id"]]})
    assert st in (200, 204), js
    remaining = [p["id"] for p in server.ports()]
    assert remaining == [ps[3]["id"]]
    assert server.ip(IP2)["ports"] == [ps[3]["id"]]
    # deleted ports stop listening
    for p in ps[:3]:
        assert wait_connect_state(IP2, p["port"], "refused") == "refused"
    assert wait_connect_state(IP2, ps[3]["port"], "ok") == "ok"


def test_bulk_delete_with_unknown_id_deletes_nothing(server):
    a = create_port(server, "Keep A")
    st, js = server.api("POST", "/api/v1/ports/delete", {"ids": [a["id"], "no-such-port-id"]})
    assert st == 404, js
    assert error_of(js)["code"] == "not_found"
    assert [p["id"] for p in server.ports()] == [a["id"]]


def test_ids_are_never_reused(server):
    seen = set()
    for i in range(3):
        p = create_port(server, "Same name")
        assert p["id"] not in seen
        seen.add(p["id"])
        server.ok("DELETE", f"/api/v1/ports/{p['id']}")


def test_unassigned_port_has_warning(server):
    add_ips(server)
    p = create_port(server, "Nowhere")
    assert any("no ip" in w.lower() for w in warning_texts(p)), p.get("warnings")
    assert any("no ip" in w.lower() for w in warning_texts(server.port(p["id"]))), server.port(p["id"])
    q = create_port(server, "Somewhere", assigned=[IP2])
    assert not any("no ip" in w.lower() for w in warning_texts(q)), q.get("warnings")
    # the warning goes away once assigned
    set_ip(server, IP3, ports=[p["id"]])
    assert not any("no ip" in w.lower() for w in warning_texts(server.port(p["id"])))


def test_conflict_same_number_same_ip(server):
    add_ips(server)
    num = free_port()
    alpha = create_port(server, "Alpha", port=num, assigned=[IP2])
    before = snapshot(server)

    # via POST with assignedTo
    st, js = server.api("POST", "/api/v1/ports",
                        {"name": "Beta", "protocol": "smtp", "encryption": "none", "port": num, "assignedTo": [IP2]})
    assert st == 409, js
    err = error_of(js)
    assert err["code"] == "port_conflict"
    for needle in ("Alpha", "Beta", IP2):
        assert needle in err["message"], f"{needle!r} not in {err['message']!r}"
    assert snapshot(server) == before, "a refused change must not be half-applied"

    # same number on another IP is fine
    beta = create_port(server, "Beta", port=num, assigned=[IP3])
    before = snapshot(server)
    # via PUT ip-addresses
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", {"ports": [alpha["id"], beta["id"]]})
    assert st == 409, js
    err = error_of(js)
    assert err["code"] == "port_conflict"
    for needle in ("Alpha", "Beta", IP2):
        assert needle in err["message"], f"{needle!r} not in {err['message']!r}"
    # via PUT port assignedTo
    st, js = server.api("PUT", f"/api/v1/ports/{beta['id']}", {"assignedTo": [IP3, IP2]})
    assert st == 409, js
    assert error_of(js)["code"] == "port_conflict"
    # via PUT port number change
    gamma = create_port(server, "Gamma", assigned=[IP2])
    before = snapshot(server)
    st, js = server.api("PUT", f"/api/v1/ports/{gamma['id']}", {"port": num})
    assert st == 409, js
    err = error_of(js)
    assert err["code"] == "port_conflict"
    for needle in ("Alpha", "Gamma", IP2):
        assert needle in err["message"], f"{needle!r} not in {err['message']!r}"
    assert snapshot(server) == before
    # and the listeners are untouched
    assert wait_connect_state(IP2, num, "ok") == "ok"
    assert wait_connect_state(IP3, num, "ok") == "ok"
    assert wait_connect_state(IP2, gamma["port"], "ok") == "ok"


def test_wildcard_conflicts_with_specific_address(server):
    add_ips(server)
    num = free_port()
    create_port(server, "Specific", port=num, assigned=[IP2])
    before = snapshot(server)
    st, js = server.api("POST", "/api/v1/ports",
                        {"name": "Everywhere", "protocol": "smtp", "encryption": "none", "port": num,
                         "assignedTo": ["0.0.0.0"]})
    assert st == 409, js
    err = error_of(js)
    assert err["code"] == "port_conflict"
    assert "Specific" in err["message"] and "Everywhere" in err["message"], err
    assert "0.0.0.0" in err["message"] or IP2 in err["message"], err
    assert snapshot(server) == before

    # and the other way round: wildcard first
    num2 = free_port()
    create_port(server, "Wild", port=num2, assigned=["0.0.0.0"])
    before = snapshot(server)
    st, js = server.api("POST", "/api/v1/ports",
                        {"name": "Narrow", "protocol": "smtp", "encryption": "none", "port": num2,
                         "assignedTo": [IP3]})
    assert st == 409, js
    assert error_of(js)["code"] == "port_conflict"
    assert snapshot(server) == before
    # an IPv6 wildcard on the same number is a different family: no conflict
    create_port(server, "Wild6", port=num2, assigned=["::"])


def test_duplicate_name_case_insensitive(server):
    create_port(server, "Mail Port")
    before = snapshot(server)
    st, js = server.api("POST", "/api/v1/ports",
                        {"name": "mail PORT", "protocol": "smtp", "encryption": "none", "port": free_port()})
    assert st == 409, js
    assert error_of(js)["code"] == "name_taken"
    other = create_port(server, "Other")
    before = snapshot(server)
    st, js = server.api("PUT", f"/api/v1/ports/{other['id']}", {"name": "MAIL port"})
    assert st == 409, js
    assert error_of(js)["code"] == "name_taken"
    assert snapshot(server) == before


@pytest.mark.parametrize("override, field", [
    ({"port": 0}, "port"),
    ({"port": 70000}, "port"),
    ({"port": -1}, "port"),
    ({"protocol": "ftp"}, "protocol"),
    ({"encryption": "starttls"}, "encryption"),
    ({"encryption": "none", "tlsRequired": True}, "tlsRequired"),
    ({"encryption": "ssl", "tlsRequired": True}, "tlsRequired"),
    ({"name": ""}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"description": "d" * 513}, "description"),
    ({"encryption": "none", "certificatePath": "/etc/hostname"}, "certificatePath"),
])
def test_invalid_port_is_422(server, override, field):
    body = {"name": "Valid", "protocol": "smtp", "encryption": "none", "port": free_port()}
    body.update(override)
    before = snapshot(server)
    st, js = server.api("POST", "/api/v1/ports", body)
    assert st == 422, js
    err = error_of(js)
    codes = ("validation_failed", "bad_certificate") if field == "certificatePath" else ("validation_failed",)
    assert err["code"] in codes, err
    assert err.get("field") == field, err
    assert err.get("message")
    assert snapshot(server) == before


def test_boundary_values_accepted(server):
    create_port(server, "n" * 64, port=65535, description="d" * 512)
    create_port(server, "low", port=1)  # stored; binding may need privileges, not checked here


def test_invalid_edit_is_422_and_unchanged(server):
    p = create_port(server, "Edit")
    before = snapshot(server)
    for body, field in (({"port": 70000}, "port"), ({"tlsRequired": True}, "tlsRequired"),
                        ({"protocol": "gopher"}, "protocol")):
        st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", body)
        assert st == 422, (body, js)
        assert error_of(js)["code"] == "validation_failed" and error_of(js).get("field") == field, js
    assert snapshot(server) == before


def test_unknown_ids_are_404(server):
    for method, path, body in (("GET", "/api/v1/ports/nope", None),
                               ("PUT", "/api/v1/ports/nope", {"description": "x"}),
                               ("DELETE", "/api/v1/ports/nope", None),
                               ("GET", "/api/v1/ip-addresses/198.51.100.9", None),
                               ("GET", "/api/v1/domains/nope.example", None)):
        st, js = server.api(method, path, body)
        assert st == 404, (method, path, js)
        assert error_of(js)["code"] == "not_found", js


def test_assign_unlisted_ip_or_unknown_port_refused(server):
    add_ips(server)
    p = create_port(server, "P")
    before = snapshot(server)
    st, js = server.api("POST", "/api/v1/ports", {"name": "Q", "protocol": "smtp", "encryption": "none",
                                                  "port": free_port(), "assignedTo": ["198.51.100.77"]})
    assert st in (404, 422), js
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"assignedTo": ["198.51.100.77"]})
    assert st in (404, 422), js
    st, js = server.api("PUT", f"/api/v1/ip-addresses/{IP2}", {"ports": [p["id"], "no-such-id"]})
    assert st in (404, 422), js
    assert snapshot(server) == before


def test_manual_ip_must_be_literal(server):
    before = snapshot(server)
    for bad in ("not-an-ip", "999.1.1.1", "127.0.0.2/8", ""):
        st, js = server.api("POST", "/api/v1/ip-addresses", {"address": bad})
        assert st == 422, (bad, js)
        assert error_of(js)["code"] == "validation_failed", js
    assert snapshot(server) == before


def test_manual_ip_canonical_and_delete(server):
    st, js = server.api("POST", "/api/v1/ip-addresses", {"address": "2001:DB8:0:0::1", "description": "failover"})
    assert st in (200, 201), js
    ip = unwrap(js, "ipAddress")
    assert ip["address"] == "2001:db8::1" and ip["family"] == "ipv6" and ip["source"] == "manual"
    assert ip["present"] is False
    st, js = server.api("DELETE", "/api/v1/ip-addresses/2001:db8::1")
    assert st in (200, 204), js
    st, js = server.api("GET", "/api/v1/ip-addresses/2001:db8::1")
    assert st == 404
    # an interface address that is present cannot be deleted
    st, js = server.api("DELETE", "/api/v1/ip-addresses/127.0.0.1")
    assert st in (400, 409, 422), js


def test_auth_required(server):
    for method, path in (("GET", "/api/v1/bindings"), ("GET", "/api/v1/ports"), ("GET", "/api/v1/listeners"),
                         ("POST", "/api/v1/ports"), ("GET", "/api/v1/domains")):
        body = {"name": "x", "protocol": "smtp", "encryption": "none", "port": 2} if method == "POST" else None
        st, js = server.api(method, path, body, auth=False)
        assert st == 401, (method, path, js)
        assert error_of(js)["code"] == "unauthorized"
        st, js = server.api(method, path, body, password="wrong-password")
        assert st == 401, (method, path, js)
        assert error_of(js)["code"] == "unauthorized"
    assert server.ports() == [], "unauthenticated POST must not create anything"
    st, js = server.api("GET", "/healthz", auth=False)
    assert st == 200 and js == {"status": "ok"}


def test_metrics_endpoint(berth_env):
    p = create_port(berth_env, "Metered", assigned=[IP2])
    assert wait_connect_state(IP2, p["port"], "ok") == "ok"
    banner_of(IP2, p["port"])
    st, text = berth_env.api("GET", "/metrics")
    assert st == 200 and isinstance(text, str), (st, text)
    assert "berth_listener_connections_total" in text
    assert "berth_listener_active_connections" in text
    assert "berth_smtp_messages_accepted_total" in text
    lines = [l for l in text.splitlines()
             if l.startswith("berth_listener_connections_total") and f'port="{p["port"]}"' in l]
    assert lines, text
    assert float(lines[0].rsplit(" ", 1)[1]) >= 1


# ------------------------------------------------------------------ defaults on first start

DEFAULTS = [
    ("SMTP", "smtp", "tls", 25),
    ("SMTP SSL", "smtp", "ssl", 465),
    ("Submission", "submission", "tls", 587),
    ("IMAP", "imap", "tls", 143),
    ("IMAP SSL", "imap", "ssl", 993),
    ("POP", "pop", "tls", 110),
    ("POP SSL", "pop", "ssl", 995),
    ("LDAP", "ldap", "tls", 389),
    ("LDAP SSL", "ldap", "ssl", 636),
]


def test_default_ports_on_first_start(make_server):
    b = make_server(default_ports=True)
    ports = b.ports()
    got = sorted((p["name"], p["protocol"], p["encryption"], p["port"]) for p in ports)
    assert got == sorted(DEFAULTS)
    for p in ports:
        assert p["tlsRequired"] is (p["name"] == "Submission"), p
        assert p["certificate"]["selfSigned"] is True, p
        assert any("self" in w.lower() and "signed" in w.lower() for w in warning_texts(p)), p.get("warnings")
        assert "127.0.0.1" in p["assignedTo"], p
        assert not any(a.lower().startswith("fe80") for a in p["assignedTo"]), p
    assert (b.data / "certs" / "default.pem").is_file()
    text = (b.data / "certs" / "default.pem").read_text()
    assert "BEGIN CERTIFICATE" in text and "PRIVATE KEY" in text
    by_id = {p["id"]: p for p in ports}
    listeners = b.listeners()
    assert listeners, "one listener per (IP, port) assignment expected"
    for l in listeners:
        # Served (or, when a system daemon holds the well-known port, failed saying why).
        assert l["state"] in ("listening", "failed"), l
        assert l["state"] == "listening" or l.get("error"), l
    # the default cert is for the host name given with --hostname
    assert any(SERVER_HOSTNAME in (p["certificate"].get("subject") or "") or
               SERVER_HOSTNAME in (p["certificate"].get("dnsNames") or []) for p in ports), ports[0]["certificate"]
    # a restart does not re-create the defaults
    ids = sorted(by_id)
    b.restart()
    assert sorted(p["id"] for p in b.ports()) == ids
