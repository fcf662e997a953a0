#!/usr/bin/env python3
"""Configure a fresh Berth for bench/smtp-relay (admin API), or wait for its queue.

    berth_relay_setup.py setup ADMIN_HOST:PORT --submission PORT
                         --route DOMAIN=HOST:PORT [--route ...] [--domain example.com]
    berth_relay_setup.py queue-wait ADMIN_HOST:PORT SECS
    (admin password in env BERTH_ADMIN_PASSWORD)

setup: adds 127.0.0.1 to the IP list when missing; creates the sender domain (DKIM keys
are generated with it) and its user "user" (password bench-pw-1); a port "bench-submission"
(protocol submission, encryption none, assigned to 127.0.0.1; AUTH in clear needs
`serve --allow-plaintext-auth`) with maxConnections/maxConnectionsPerClient 100,000 when
the binary takes them; one static route per --route (PUT /api/v1/routes/DOMAIN).
Prints human lines and machine lines:
    RESULT routes=ok|absent          absent: the binary has no /api/v1/routes (exit 3)
    RESULT dkim=ALG,ALG|absent       keys of GET /api/v1/domains/DOMAIN/dkim
    RESULT settings=k=v,...          the outbound* and queue* settings in effect
Exits 3 when the binary has no routes (no outbound delivery yet), 1 on other failures.

queue-wait: polls GET /api/v1/queue until it lists nothing (bounded); prints the number
left and exits 1 when it did not empty in time (0 also when the binary has no queue API).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berth_admin import Api  # noqa: E402  (same directory)
from berth_setup import ensure_ip, fail, mail_domain  # noqa: E402


def loopback_api(admin):
    host = admin.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        sys.exit("refusing non-loopback admin address %s" % admin)
    return Api(admin, os.environ["BERTH_ADMIN_PASSWORD"])


def add_submission(api, number):
    body = {"name": "bench-submission", "protocol": "submission", "encryption": "none",
            "port": number, "assignedTo": ["127.0.0.1"]}
    limits = {"maxConnections": 100000, "maxConnectionsPerClient": 100000}
    status, doc = api.call("POST", "/api/v1/ports", dict(body, **limits))
    if status == 422:
        print("port bench-submission: limits refused (HTTP 422 %s); retrying without them"
              % json.dumps(doc))
        status, doc = api.call("POST", "/api/v1/ports", body)
    if status not in (200, 201):
        fail("POST", "/api/v1/ports", body, status, doc)
    warn = doc.get("warnings") if isinstance(doc, dict) else None
    print("port bench-submission: submission/none 127.0.0.1:%d id=%s%s" % (
        number, doc.get("id") if isinstance(doc, dict) else None,
        (" warnings=%s" % warn) if warn else ""))


def setup(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="berth_relay_setup.py setup")
    ap.add_argument("admin")
    ap.add_argument("--submission", type=int, required=True)
    ap.add_argument("--route", action="append", default=[])
    ap.add_argument("--domain", default="example.com")
    a = ap.parse_args(argv)
    api = loopback_api(a.admin)
    ensure_ip(api)

    # routes first: without them there is nothing to measure
    for spec in a.route:
        dom, hp = spec.split("=", 1)
        host, port = hp.rsplit(":", 1)
        body = {"host": host, "port": int(port)}
        status, doc = api.call("PUT", "/api/v1/routes/%s" % dom, body)
        if status in (404, 405):
            print("routes: PUT /api/v1/routes/%s -> HTTP %d (this binary has no outbound "
                  "delivery yet)" % (dom, status))
            print("RESULT routes=absent")
            return 3
        if status not in (200, 201):
            fail("PUT", "/api/v1/routes/%s" % dom, body, status, doc)
        print("route %s -> %s:%s %s" % (dom, host, port, json.dumps(doc)))
    print("RESULT routes=ok")

    mail_domain(api, a.domain)
    add_submission(api, a.submission)

    status, doc = api.call("GET", "/api/v1/domains/%s/dkim" % a.domain)
    keys = doc.get("keys") if status == 200 and isinstance(doc, dict) else None
    if keys:
        algs = [k.get("algorithm", "?") for k in keys]
        print("dkim %s: %s" % (a.domain, ", ".join(
            "%s selector %s" % (k.get("algorithm"), k.get("selector")) for k in keys)))
        print("RESULT dkim=%s" % ",".join(algs))
    else:
        print("dkim %s: GET -> HTTP %d %s" % (a.domain, status, json.dumps(doc)[:200]))
        print("RESULT dkim=absent")

    # BERTH_RELAY_SETTINGS='{"outboundMaxConnectionsPerDestination": 4}': settings to try
    # (the report prints the settings in effect, so a run says what it measured).
    extra = os.environ.get("BERTH_RELAY_SETTINGS")
    if extra:
        status, doc = api.call("PUT", "/api/v1/settings", json.loads(extra))
        print("settings %s -> HTTP %d" % (extra, status))
    status, doc = api.call("GET", "/api/v1/settings")
    if status == 200 and isinstance(doc, dict):
        keep = ["%s=%s" % (k, v) for k, v in sorted(doc.items())
                if k.startswith("outbound") or k.startswith("queue")]
        print("RESULT settings=%s" % ",".join(keep))
    else:
        print("RESULT settings=")
    return 0


def queue_wait(argv):
    api = loopback_api(argv[0])
    secs = float(argv[1])
    deadline = time.monotonic() + min(secs, 3600)
    left = None
    while True:
        status, doc = api.call("GET", "/api/v1/queue")
        if status in (404, 405):
            print("0 (no queue API)")
            return 0
        if status == 200:
            items = doc if isinstance(doc, list) else (doc or {}).get("items", [])
            left = len(items)
            if left == 0:
                print(0)
                return 0
        if time.monotonic() > deadline:
            print(left if left is not None else "unknown (HTTP %d)" % status)
            return 1
        time.sleep(0.1)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("setup", "queue-wait"):
        sys.exit(__doc__)
    if sys.argv[1] == "setup":
        return setup(sys.argv[2:])
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    return queue_wait(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
