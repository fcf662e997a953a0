"""Admin API edges an administrator runs into: edits that must not lose data, explicit
nulls, references between objects, conflict messages, and errors in the contract's shape."""
from __future__ import annotations

import time
import smtplib

from conftest import (ALICE, ALICE_PW, IP2, IP3, add_ips, create_port, error_of, free_port, setup_domain,
                      wait_connect_state)


def test_domain_edit_keeps_its_users(server):
    setup_domain(server)
    add_ips(server)
    server.ok("PUT", "/api/v1/domains/example.com", {"ipAddress": IP2})
    server.ok("PUT", "/api/v1/domains/example.com", {"outbound": {"ipv6": {"mode": "disabled"}}})
    users = server.ok("GET", "/api/v1/domains/example.com/users")
    assert [u["address"] for u in users] == [ALICE]


def test_domain_cannot_be_renamed_by_put(server):
    setup_domain(server)
    st, js = server.api("PUT", "/api/v1/domains/example.com", {"name": "renamed.example"})
    assert st == 422 and error_of(js)["field"] == "name", js
    assert [d["name"] for d in server.ok("GET", "/api/v1/domains")] == ["example.com"]


def test_ip_used_by_a_domain_cannot_be_deleted(server):
    add_ips(server)
    server.ok("POST", "/api/v1/domains", {"name": "four.example", "ipAddress": IP3})
    st, js = server.api("DELETE", f"/api/v1/ip-addresses/{IP3}")
    assert st == 409, js
    assert "four.example" in error_of(js)["message"]
    assert server.ip(IP3)["address"] == IP3


def test_explicit_null_clears_a_path(server, tmp_path):
    from conftest import make_cert
    add_ips(server)
    cert, key = make_cert(tmp_path, "split.test", "split")
    p = create_port(server, "Split", "smtp", "ssl", assigned=[IP2], certificatePath=str(cert), privateKeyPath=str(key))
    combined = tmp_path / "combined.pem"
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"certificatePath": str(combined), "privateKeyPath": None})
    assert st == 200, js
    assert js["privateKeyPath"] is None and js["certificatePath"] == str(combined)


def test_conflict_names_the_new_port_as_the_one_refused(server):
    add_ips(server)
    number = free_port()
    create_port(server, "Holder", "smtp", "none", port=number, assigned=[IP2])
    st, js = server.api("POST", "/api/v1/ports", {"name": "Newcomer", "protocol": "smtp", "encryption": "none",
                                                  "port": number, "assignedTo": ["0.0.0.0"]})
    assert st == 409, js
    message = error_of(js)["message"]
    assert "already used by port 'Holder'" in message and "the new port 'Newcomer'" in message, message
    assert "0.0.0.0" in message and IP2 in message


def test_same_port_on_wildcard_and_address_is_explained(server):
    add_ips(server)
    p = create_port(server, "Twice", "smtp", "none", assigned=[IP2])
    st, js = server.api("PUT", f"/api/v1/ports/{p['id']}", {"assignedTo": ["0.0.0.0", IP2]})
    assert st == 409, js
    assert "cannot listen on both 0.0.0.0 and 127.0.0.2" in error_of(js)["message"]


def test_unknown_routes_answer_in_the_error_shape(server):
    for method, path in [("GET", "/api/v1/nothing"), ("PATCH", "/api/v1/ports/1"), ("DELETE", "/api/v1/ports")]:
        st, js = server.api(method, path)
        assert st in (404, 405), (method, path, st, js)
        assert error_of(js)["code"] in ("not_found", "method_not_allowed"), js


def test_wrong_enum_and_type_errors_name_the_field(server):
    st, js = server.api("POST", "/api/v1/ports", {"name": "X", "protocol": "smtps", "encryption": "none", "port": 2525})
    assert st == 422 and error_of(js)["field"] == "protocol", js
    assert "smtp, submission, imap, pop, ldap" in error_of(js)["message"]
    st, js = server.api("PUT", "/api/v1/ip-addresses/127.0.0.1", {"ports": [7]})
    assert st == 422 and error_of(js)["field"] == "ports[0]", js


def test_protocol_names_are_case_insensitive(server):
    p = create_port(server, "Upper", "SMTP", "NONE")
    assert p["protocol"] == "smtp" and p["encryption"] == "none"


def test_percent_encoded_ipv6_path(server):
    st, js = server.api("GET", "/api/v1/ip-addresses/%3A%3A1")
    assert st == 200 and js["address"] == "::1", js


def test_multicast_and_broadcast_are_not_listening_addresses(server):
    for address in ["255.255.255.255", "224.0.0.1", "ff02::1", "::ffff:127.0.0.5"]:
        st, js = server.api("POST", "/api/v1/ip-addresses", {"address": address})
        assert st == 422, (address, js)


def test_ip_literal_is_not_a_domain_name(server):
    st, js = server.api("POST", "/api/v1/domains", {"name": "127.0.0.1"})
    assert st == 422, js


def test_metrics_forget_removed_listeners(server):
    add_ips(server)
    p = create_port(server, "Gone", "smtp", "none", assigned=[IP2])
    assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok"
    label = f'address="{IP2}",port="{p["port"]}"'
    st, text = server.api("GET", "/metrics", auth=False)
    assert label in text
    server.ok("DELETE", f"/api/v1/ports/{p['id']}")
    assert wait_connect_state(IP2, p["port"], "refused", deadline=5) == "refused"
    # The listener's series go once it has closed, within the contract's second.
    deadline = time.monotonic() + 2
    while True:
        st, text = server.api("GET", "/metrics", auth=False)
        if label not in text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert label not in text, text


def test_authenticated_user_can_submit_after_domain_edit(server):
    """End to end of the first defect: a domain edit used to delete its users."""
    setup_domain(server)
    add_ips(server)
    p = create_port(server, "Sub", "submission", "tls", assigned=[IP2])
    assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok"
    server.ok("PUT", "/api/v1/domains/example.com", {"ipAddress": IP2})
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(IP2, p["port"], timeout=15) as s:
        s.starttls(context=ctx)
        s.login(ALICE, ALICE_PW)
