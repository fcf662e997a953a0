#!/usr/bin/env python3
"""Configure a fresh Berth through its admin API for the inbound SMTP bench.

    berth_admin.py ADMIN_HOST:PORT SMTP_PORT      (password in env BERTH_ADMIN_PASSWORD)

Creates domain test.local, user user@test.local, adds 127.0.0.1 to the IP list when it
is not there yet, and a port "bench" (smtp, no encryption, SMTP_PORT) assigned to
127.0.0.1. Prints what it did; exits non-zero with the server's answer on any failure.
"""
import base64
import json
import os
import sys
import urllib.error
import urllib.request


class Api:
    def __init__(self, admin, password):
        self.base = "http://%s" % admin
        tok = base64.b64encode(("admin:%s" % password).encode()).decode()
        self.auth = "Basic " + tok

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", self.auth)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode(errors="replace")
        return status, doc

    def must(self, method, path, body=None, ok=(200, 201, 204)):
        status, doc = self.call(method, path, body)
        if status not in ok:
            sys.exit("berth admin: %s %s %s -> HTTP %d %s" % (
                method, path, json.dumps(body) if body is not None else "", status,
                json.dumps(doc) if not isinstance(doc, str) else doc))
        return doc


def items(doc, *keys):
    """A list response, bare or wrapped in an object under one of keys."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for k in keys:
            if isinstance(doc.get(k), list):
                return doc[k]
    sys.exit("berth admin: unexpected list response %r" % (doc,))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    admin, smtp_port = sys.argv[1], int(sys.argv[2])
    host = admin.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        sys.exit("refusing non-loopback admin address %s" % admin)
    api = Api(admin, os.environ["BERTH_ADMIN_PASSWORD"])

    status, doc = api.call("POST", "/api/v1/domains", {"name": "test.local"})
    err = doc.get("error", {}) if isinstance(doc, dict) else {}
    if status == 422 and isinstance(err, dict) and err.get("field") in ("outbound", "ipAddress"):
        # BINDINGS.md leaves these optional in spirit; say so, then spell out the defaults
        print("WARNING: POST /api/v1/domains {\"name\":\"test.local\"} -> 422 %s; retrying with "
              "explicit ipAddress null, outbound system" % json.dumps(err))
        api.must("POST", "/api/v1/domains", {
            "name": "test.local", "ipAddress": None,
            "outbound": {"ipv4": {"mode": "system", "addresses": []},
                         "ipv6": {"mode": "system", "addresses": []}}})
    elif status not in (200, 201, 204):
        sys.exit("berth admin: POST /api/v1/domains -> HTTP %d %s" % (status, json.dumps(doc)))
    api.must("POST", "/api/v1/domains/test.local/users",
             {"name": "user", "password": "bench-pw-1"})
    print("domain test.local, user user@test.local: created")

    ips = items(api.must("GET", "/api/v1/ip-addresses"), "ipAddresses", "items", "addresses")
    if any(isinstance(ip, dict) and ip.get("address") == "127.0.0.1" for ip in ips):
        print("ip 127.0.0.1: already listed")
    else:
        api.must("POST", "/api/v1/ip-addresses", {"address": "127.0.0.1"})
        print("ip 127.0.0.1: added (was not listed)")

    # Every bench client comes from 127.0.0.1: lift the per-client limit (default 100)
    # so 1,000 idle sessions measure memory, not the limit. Postfix's anvil limits are
    # off for loopback in its bench config likewise.
    port = api.must("POST", "/api/v1/ports", {
        "name": "bench", "protocol": "smtp", "encryption": "none", "port": smtp_port,
        "assignedTo": ["127.0.0.1"], "maxConnections": 100000, "maxConnectionsPerClient": 100000})
    pid = port.get("id") if isinstance(port, dict) else None
    warn = port.get("warnings") if isinstance(port, dict) else None
    print("port bench: smtp/none 127.0.0.1:%d id=%s%s" % (
        smtp_port, pid, (" warnings=%s" % warn) if warn else ""))


if __name__ == "__main__":
    main()
