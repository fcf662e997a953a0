"""Fuzz-style: random and mutated bodies against every writing route of the admin API.

Each gets a 4xx with the contract's error shape (never a 5xx, never a crash), and the
bindings, domains and listeners are exactly as before. Seeded and bounded."""
import json
import random

from conftest import add_ips, create_port, setup_domain

ROUTES = [
    ("POST", "/api/v1/ports"),
    ("PUT", "/api/v1/ports/{id}"),
    ("POST", "/api/v1/ports/delete"),
    ("POST", "/api/v1/ip-addresses"),
    ("PUT", "/api/v1/ip-addresses/127.0.0.2"),
    ("POST", "/api/v1/domains"),
    ("PUT", "/api/v1/domains/example.com"),
    ("POST", "/api/v1/domains/example.com/users"),
]

VALID = {
    "name": "fuzz", "protocol": "smtp", "encryption": "tls", "port": 2600, "tlsRequired": True,
    "certificatePath": "/nonexistent.pem", "assignedTo": ["127.0.0.2"], "address": "127.0.0.9",
    "ids": ["999"], "ports": ["999"], "hostname": "h.example", "password": "x", "ipAddress": "10.0.0.1",
    "outbound": {"ipv4": {"mode": "address", "addresses": []}},
}

JUNK_VALUES = [None, True, -1, 0, 65536, 1e309, "", " ", "\u0000", "x" * 5000, [], {}, [1, "a"], {"a": {"b": []}},
               "0.0.0.0", "::", "999.1.1.1", "none", "ssl", "imap", "../../etc/passwd"]


def snapshot(b):
    return (b.ok("GET", "/api/v1/bindings"), b.ok("GET", "/api/v1/domains"),
            sorted((l["address"], l["port"], l["state"]) for l in b.listeners()))


def mutated_body(rng):
    kind = rng.randrange(4)
    if kind == 0:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 1:  # truncated valid JSON
        text = json.dumps(VALID)
        return text[: rng.randrange(1, len(text))].encode()
    body = {k: v for k, v in VALID.items() if rng.random() < 0.6}
    for key in rng.sample(sorted(body), k=min(len(body), rng.randrange(1, 4))):
        body[key] = rng.choice(JUNK_VALUES)
    if kind == 3:
        return json.dumps(rng.choice([body, [body], "str", 42, None])).encode()
    return json.dumps(body).encode()


def test_fuzzed_bodies_refused_change_nothing(server):
    add_ips(server)
    port = create_port(server, "keep", port=2599, assignedTo=["127.0.0.2"])
    setup_domain(server)
    rng = random.Random(20261125)
    refused = 0
    before = snapshot(server)
    for i in range(250):
        method, path = rng.choice(ROUTES)
        path = path.replace("{id}", port["id"])
        raw = mutated_body(rng)
        status, js = server.api(method, path, raw=raw)
        assert 400 <= status < 500 or status in (200, 201), f"#{i} {method} {path} {raw[:80]!r} -> {status} {js!r}"
        after = snapshot(server)
        if status >= 400:
            refused += 1
            assert isinstance(js, dict) and {"code", "message"} <= set(js.get("error", {})), f"#{i} {status} {js!r}"
            assert after == before, f"#{i} refused {method} {path} {raw[:120]!r} changed the configuration"
        before = after  # a fuzzed body can be a valid partial edit (e.g. a domain's outbound reset)
    assert refused > 200
    assert server.running()
