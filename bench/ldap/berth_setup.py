#!/usr/bin/env python3
"""Configure a fresh Berth for bench/ldap.

    berth_setup.py ADMIN_HOST:PORT LDAP_PORT DOMAIN PASSWORD PEOPLE DATABASE
    (admin password in env BERTH_ADMIN_PASSWORD)

Through the admin API: 127.0.0.1 in the IP list, the domain, user "reader" (PASSWORD;
the bench binds as it), and a port "bench ldap" (ldap, no encryption, LDAP_PORT) on
127.0.0.1 with connection limits raised. Then PEOPLE users pNNNNN, written straight
into the configuration DATABASE (sharing reader's bcrypt hash: the API would spend a
hash on each, minutes for 10,000), and one more user through the API, whose change
rebuilds the LDAP directory from all of them.
"""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from berth_relay_setup import loopback_api  # noqa: E402
from berth_setup import ensure_ip  # noqa: E402


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    admin, port, domain, password, people, database = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], \
        int(sys.argv[5]), sys.argv[6]
    api = loopback_api(admin)
    ensure_ip(api)
    api.must("POST", "/api/v1/domains", {"name": domain})
    api.must("POST", "/api/v1/domains/%s/users" % domain, {"name": "reader", "password": password})
    with sqlite3.connect(database, timeout=30) as db:
        (hash_,) = db.execute("SELECT passwordHash FROM user WHERE domain = ? AND name = 'reader'", (domain,)).fetchone()
        db.executemany(
            "INSERT INTO user(domain, name, displayName, givenName, surname, passwordHash) VALUES (?, ?, ?, ?, ?, ?)",
            [(domain, "p%05d" % i, "Person %05d" % i, "Person", "%05d" % i, hash_) for i in range(people)])
    api.must("POST", "/api/v1/domains/%s/users" % domain, {"name": "zz-rebuild", "password": password})
    body = {"name": "bench ldap", "protocol": "ldap", "encryption": "none", "port": port,
            "assignedTo": ["127.0.0.1"], "maxConnections": 100000, "maxConnectionsPerClient": 100000}
    api.must("POST", "/api/v1/ports", body)
    print("berth: domain %s, %d people + reader, ldap port %d on 127.0.0.1" % (domain, people, port))


if __name__ == "__main__":
    main()
