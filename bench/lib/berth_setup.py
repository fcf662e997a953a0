#!/usr/bin/env python3
"""Configure a fresh Berth for bench/tls-accept and bench/session-abuse (admin API).

    berth_setup.py ADMIN_HOST:PORT [--mail-domain test.local]
                   --port NAME,ENCRYPTION,NUMBER[,CERT,KEY] ...   (protocol smtp)
                   [--limits N] [--library CERT,KEY ...]
    (admin password in env BERTH_ADMIN_PASSWORD)

Adds 127.0.0.1 to the IP list when missing; with --mail-domain creates the domain and
user "user" (password bench-pw-1); creates each port assigned to 127.0.0.1.
--limits N sets maxConnections and maxConnectionsPerClient on every port; a binary that
refuses them with 422 gets the port again without them, one that ignores them is noted.
--library registers certificates with POST /api/v1/certificates (SNI library); 404/405
means the binary has no library yet.

Prints human lines, and machine lines for the caller:
    RESULT limits=applied|refused|ignored|unset
    RESULT library=registered|absent|refused|unset
    RESULT port NAME id=ID
Exits non-zero with the server's answer on any other failure.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berth_admin import Api, items  # noqa: E402  (same directory)


def fail(method, path, body, status, doc):
    sys.exit("berth admin: %s %s %s -> HTTP %d %s" % (
        method, path, json.dumps(body) if body is not None else "", status,
        json.dumps(doc) if not isinstance(doc, str) else doc))


def ensure_ip(api):
    ips = items(api.must("GET", "/api/v1/ip-addresses"), "ipAddresses", "items", "addresses")
    if not any(isinstance(ip, dict) and ip.get("address") == "127.0.0.1" for ip in ips):
        api.must("POST", "/api/v1/ip-addresses", {"address": "127.0.0.1"})
        print("ip 127.0.0.1: added (was not listed)")


def mail_domain(api, name):
    body = {"name": name}
    status, doc = api.call("POST", "/api/v1/domains", body)
    if status == 422:  # older binaries want the optional fields spelled out
        body = {"name": name, "ipAddress": None,
                "outbound": {"ipv4": {"mode": "system", "addresses": []},
                             "ipv6": {"mode": "system", "addresses": []}}}
        status, doc = api.call("POST", "/api/v1/domains", body)
    if status not in (200, 201, 204):
        fail("POST", "/api/v1/domains", body, status, doc)
    api.must("POST", "/api/v1/domains/%s/users" % name, {"name": "user", "password": "bench-pw-1"})
    print("domain %s, user user@%s: created" % (name, name))


def add_port(api, spec, limits, state):
    parts = spec.split(",")
    if len(parts) not in (3, 5):
        sys.exit("bad --port %r (NAME,ENCRYPTION,NUMBER[,CERT,KEY])" % spec)
    name, enc, number = parts[0], parts[1], int(parts[2])
    body = {"name": name, "protocol": "smtp", "encryption": enc, "port": number,
            "assignedTo": ["127.0.0.1"]}
    if len(parts) == 5:
        body["certificatePath"] = parts[3]
        body["privateKeyPath"] = parts[4]
    want = {}
    if limits and state["limits"] != "refused":
        want = {"maxConnections": limits, "maxConnectionsPerClient": limits}
    status, doc = api.call("POST", "/api/v1/ports", dict(body, **want))
    if status == 422 and want:
        err = doc.get("error", {}) if isinstance(doc, dict) else {}
        print("port %s: limits refused (HTTP 422 %s); retrying without them" % (name, json.dumps(err)))
        state["limits"] = "refused"
        want = {}
        status, doc = api.call("POST", "/api/v1/ports", body)
    if status not in (200, 201):
        fail("POST", "/api/v1/ports", dict(body, **want), status, doc)
    pid = doc.get("id") if isinstance(doc, dict) else None
    if want:
        got = api.must("GET", "/api/v1/ports/%s" % pid)
        if isinstance(got, dict) and got.get("maxConnections") == limits \
                and got.get("maxConnectionsPerClient") == limits:
            state["limits"] = "applied" if state["limits"] in ("unset", "applied") else state["limits"]
        else:
            state["limits"] = "ignored"
    warn = doc.get("warnings") if isinstance(doc, dict) else None
    print("port %s: smtp/%s 127.0.0.1:%d id=%s%s" % (
        name, enc, number, pid, (" warnings=%s" % warn) if warn else ""))
    print("RESULT port %s id=%s" % (name, pid))


def add_library(api, spec, state):
    cert, key = spec.split(",", 1)
    body = {"certificatePath": cert, "privateKeyPath": key}
    status, doc = api.call("POST", "/api/v1/certificates", body)
    if status in (404, 405):
        print("certificate library: POST /api/v1/certificates -> HTTP %d (not in this binary)" % status)
        state["library"] = "absent"
        return
    if status not in (200, 201):
        print("certificate library: POST /api/v1/certificates %s -> HTTP %d %s" % (
            json.dumps(body), status, json.dumps(doc) if not isinstance(doc, str) else doc))
        state["library"] = "refused"
        return
    d = doc if isinstance(doc, dict) else {}
    print("certificate library: registered id=%s subject=%s dnsNames=%s" % (
        d.get("id"), d.get("subject"), d.get("dnsNames")))
    state["library"] = "registered"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("admin")
    ap.add_argument("--mail-domain")
    ap.add_argument("--port", action="append", default=[])
    ap.add_argument("--limits", type=int, default=0)
    ap.add_argument("--library", action="append", default=[])
    a = ap.parse_args()
    host = a.admin.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        sys.exit("refusing non-loopback admin address %s" % a.admin)
    api = Api(a.admin, os.environ["BERTH_ADMIN_PASSWORD"])
    state = {"limits": "unset", "library": "unset"}
    ensure_ip(api)
    if a.mail_domain:
        mail_domain(api, a.mail_domain)
    # library first: a port's TLS context may be built with the library already in place
    for spec in a.library:
        if state["library"] in ("absent",):
            break
        add_library(api, spec, state)
    for spec in a.port:
        add_port(api, spec, a.limits, state)
    print("RESULT limits=%s" % state["limits"])
    print("RESULT library=%s" % state["library"])


if __name__ == "__main__":
    main()
