#!/usr/bin/env python3
"""Configure a fresh Berth for bench/imap through its admin API.

    berth_setup.py ADMIN_HOST:PORT IMAP_PORT USERS PASSWORD    (admin password in env BERTH_ADMIN_PASSWORD)

Adds 127.0.0.1 to the IP list when missing, domain test.local, users user1..userUSERS with
PASSWORD, and a port "bench imap" (imap, no encryption, IMAP_PORT) assigned to 127.0.0.1
with maxConnections and maxConnectionsPerClient raised to 100000 (the idle-memory test holds
thousands of sessions from loopback). Exits non-zero with the server's answer on failure.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from berth_relay_setup import loopback_api  # noqa: E402
from berth_setup import ensure_ip  # noqa: E402


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    admin, port, users, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    api = loopback_api(admin)
    ensure_ip(api)
    api.must("POST", "/api/v1/domains", {"name": "test.local"})
    for i in range(1, users + 1):
        api.must("POST", "/api/v1/domains/test.local/users", {"name": "user%d" % i, "password": password})
    body = {"name": "bench imap", "protocol": "imap", "encryption": "none", "port": port,
            "assignedTo": ["127.0.0.1"], "maxConnections": 100000, "maxConnectionsPerClient": 100000}
    doc = api.must("POST", "/api/v1/ports", body)
    if isinstance(doc, dict) and isinstance(doc.get("port"), dict):
        doc = doc["port"]
    print("berth: domain test.local, %d users, imap port %d on 127.0.0.1 (id %s)" % (
        users, port, doc.get("id", "?") if isinstance(doc, dict) else "?"))


if __name__ == "__main__":
    main()
