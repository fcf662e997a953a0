"""The LDAP address book on ldap bindings (issue 9), driven with ldap-utils (ldapsearch,
ldapwhoami) and Python ldap3 against the binary: root DSE, binds by DN and by address,
searches, StartTLS (-ZZ), LDAPS, paging, read-only answers, malformed input."""
from __future__ import annotations

import glob
import os
import shutil
import smtplib
import socket
import sqlite3
import ssl
import time

import pytest

from conftest import (ADMIN_PASSWORD, ALICE, ALICE_PW, BERTH_BIN, CLIENT_NAME, IP2, create_port, log_size, maildir_new,
                      make_cert, run, set_settings, setup_domain, smtp_message, wait_connect_state, wait_log_event,
                      wait_maildir_count)

pytestmark = pytest.mark.skipif(shutil.which("ldapsearch") is None, reason="ldap-utils is not installed")

ALICE_DN = "uid=alice,ou=people,dc=example,dc=com"
# The test certificates are self-signed: the clients are told not to check them.
TLS_ENV = {**os.environ, "LDAPTLS_REQCERT": "never"}


@pytest.fixture
def ldap_env(berth_env):
    b = berth_env
    b.ldap = {}
    for enc, extra in (("none", {}), ("tls", {"tlsRequired": True}), ("ssl", {})):
        p = create_port(b, f"LDAP {enc}", "ldap", enc, assigned=[IP2], **extra)
        b.ldap[enc] = p["port"]
        assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok", b.log_tail()
    return b


def url(b, enc="none") -> str:
    return f"{'ldaps' if enc == 'ssl' else 'ldap'}://{IP2}:{b.ldap[enc]}"


def ldapsearch(b, *args, enc="none", bind=(ALICE_DN, ALICE_PW), env=None):
    argv = ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", url(b, enc)]
    if bind:
        argv += ["-D", bind[0], "-w", bind[1]]
    return run(argv + list(args), timeout=30, env=env or TLS_ENV)


def test_root_dse_readable_before_bind(ldap_env):
    r = ldapsearch(ldap_env, "-b", "", "-s", "base", "(objectClass=*)", "+", "*", bind=None)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "namingContexts: dc=example,dc=com" in out
    assert "supportedLDAPVersion: 3" in out
    assert "supportedExtension: 1.3.6.1.4.1.1466.20037" in out  # StartTLS
    assert "supportedExtension: 1.3.6.1.4.1.4203.1.11.3" in out  # Who am I?
    assert "supportedSASLMechanisms: PLAIN" in out
    assert "vendorName: Berth" in out


def test_bind_by_dn_then_search_with_a_nested_filter(ldap_env):
    r = ldapsearch(ldap_env, "-b", "dc=example,dc=com",
                   "(&(objectClass=inetOrgPerson)(|(mail=ALICE@example.com)(cn=nobody))(!(uid=bob)))", "cn", "mail", "uid")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert f"dn: {ALICE_DN}" in out
    assert "mail: alice@example.com" in out and "uid: alice" in out and "cn: Alice" in out
    assert "objectClass" not in out  # only what was asked for


def test_bind_by_mail_address_and_who_am_i(ldap_env):
    r = run(["ldapwhoami", "-x", "-H", url(ldap_env), "-D", ALICE, "-w", ALICE_PW], timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == f"u:{ALICE}"


def test_wrong_password_is_invalid_credentials_and_logged(ldap_env):
    r = ldapsearch(ldap_env, "-b", "dc=example,dc=com", bind=(ALICE_DN, "wrong"))
    assert r.returncode == 49, (r.returncode, r.stderr)
    assert b"Invalid credentials" in r.stderr
    r = ldapsearch(ldap_env, "-b", "dc=example,dc=com", bind=("uid=nobody,ou=people,dc=example,dc=com", "x"))
    assert r.returncode == 49, (r.returncode, r.stderr)
    deadline = time.monotonic() + 5
    while "service=ldap" not in ldap_env.log and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "service=ldap" in ldap_env.log, ldap_env.log_tail()


def test_anonymous_search_needs_a_bind(ldap_env):
    r = ldapsearch(ldap_env, "-b", "dc=example,dc=com", "(uid=alice)", bind=None)
    assert r.returncode == 50, (r.returncode, r.stdout, r.stderr)  # insufficientAccessRights
    r = run(["ldapwhoami", "-x", "-H", url(ldap_env)], timeout=30)
    assert r.returncode == 0 and r.stdout.decode().strip() == "anonymous", (r.returncode, r.stdout, r.stderr)


def test_starttls_required_before_simple_bind(ldap_env):
    r = ldapsearch(ldap_env, "-b", "dc=example,dc=com", "(uid=alice)", enc="tls")
    assert r.returncode == 13, (r.returncode, r.stderr)  # confidentialityRequired
    r = ldapsearch(ldap_env, "-ZZ", "-b", "dc=example,dc=com", "(uid=alice)", "mail", enc="tls")
    assert r.returncode == 0, r.stderr
    assert "mail: alice@example.com" in r.stdout.decode()
    assert "tls established" in ldap_env.log


def test_ldaps(ldap_env):
    r = ldapsearch(ldap_env, "-b", "ou=people,dc=example,dc=com", "-s", "one", "(mail=*)", "mail", enc="ssl")
    assert r.returncode == 0, r.stderr
    assert "mail: alice@example.com" in r.stdout.decode()


def test_ldap3_paged_search_compare_read_only_and_new_users(ldap_env):
    ldap3 = pytest.importorskip("ldap3")
    b = ldap_env
    for i in range(24):
        b.ok("POST", "/api/v1/domains/example.com/users", {"name": f"user{i:02d}", "password": "pw-123456"}, statuses=(200, 201))
    server = ldap3.Server(IP2, port=b.ldap["none"], get_info=ldap3.NONE)
    c = ldap3.Connection(server, user=ALICE_DN, password=ALICE_PW, auto_bind=True)
    try:
        entries = c.extend.standard.paged_search("dc=example,dc=com", "(mail=*)", attributes=["mail"], paged_size=7,
                                                 generator=False)
        mails = sorted(str(e["attributes"]["mail"][0]) for e in entries if e.get("type") == "searchResEntry")
        assert len(mails) == 25 and mails[0] == "alice@example.com", mails
        assert c.compare(ALICE_DN, "mail", "ALICE@example.com") is True
        assert c.compare(ALICE_DN, "mail", "bob@example.com") is False
        assert c.delete("uid=user00,ou=people,dc=example,dc=com") is False
        assert c.result["description"] == "unwillingToPerform", c.result
        # A user added through the admin API is found at once.
        b.ok("POST", "/api/v1/domains/example.com/users", {"name": "zed", "password": "pw-123456", "displayName": "Zed Z"},
             statuses=(200, 201))
        deadline = time.monotonic() + 1
        found = False
        while not found and time.monotonic() < deadline:
            c.search("dc=example,dc=com", "(uid=zed)", attributes=["cn", "mail"])
            found = bool(c.entries)
        assert found and str(c.entries[0].cn) == "Zed Z", c.entries
    finally:
        c.unbind()


def test_other_domains_are_not_visible(ldap_env):
    b = ldap_env
    setup_domain(b, "other.test", "olga", "olga-pw-123")
    r = ldapsearch(b, "-b", "", "-s", "sub", "(mail=*)", "mail")
    assert r.returncode == 0, r.stderr
    assert "alice@example.com" in r.stdout.decode() and "olga@other.test" not in r.stdout.decode()
    r = ldapsearch(b, "-b", "dc=other,dc=test", "(mail=*)")
    assert r.returncode == 32, (r.returncode, r.stderr)  # noSuchObject


def test_garbage_gets_a_notice_of_disconnection_and_the_server_goes_on(ldap_env):
    with socket.create_connection((IP2, ldap_env.ldap["none"]), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"\x30") and b"1.3.6.1.4.1.1466.20036" in data, data
    # A length past the limit is refused from the header, before any byte of it arrives.
    with socket.create_connection((IP2, ldap_env.ldap["none"]), timeout=5) as s:
        s.sendall(b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01")
        data = s.recv(4096)
        assert b"1.3.6.1.4.1.1466.20036" in data, data
    r = ldapsearch(ldap_env, "-b", "", "-s", "base", "(objectClass=*)", "namingContexts", bind=None)
    assert r.returncode == 0 and b"dc=example,dc=com" in r.stdout


def test_idle_session_after_a_bind_is_closed_with_a_notice(make_server):
    from conftest import add_ips
    b = make_server(extra_args=["--idle-timeout", "2"])
    add_ips(b)
    setup_domain(b)
    port = create_port(b, "LDAP idle", "ldap", "none", assigned=[IP2])["port"]
    assert wait_connect_state(IP2, port, "ok", deadline=5) == "ok"
    dn, pw = ALICE_DN.encode(), ALICE_PW.encode()
    bind = bytes([0x02, 1, 3, 0x04, len(dn)]) + dn + bytes([0x80, len(pw)]) + pw
    request = bytes([0x30, 5 + len(bind), 0x02, 1, 1, 0x60, len(bind)]) + bind
    with socket.create_connection((IP2, port), timeout=10) as s:
        s.sendall(request)
        reply = s.recv(4096)
        assert reply[7:10] == b"\x0a\x01\x00", reply  # bind success
        started = time.monotonic()
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        waited = time.monotonic() - started
    # The idle clock ran again once the password check was done.
    assert b"1.3.6.1.4.1.1466.20036" in data and 1.5 < waited < 8, (data, waited)


def berth_cli(b, *args):
    env = {**os.environ, "BERTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    r = run([str(BERTH_BIN), *args, "--server", b.admin_url], timeout=60, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout.decode()


def ldif_values(out: str, attribute: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in out.splitlines() if line.lower().startswith(attribute.lower() + ": ")]


def test_names_and_aliases_from_the_cli_are_in_the_address_book_and_an_alias_takes_mail(ldap_env):
    b = ldap_env
    out = berth_cli(b, "users", "edit", "example.com", "alice", "--given-name", "Alice", "--surname", "Liddell",
                    "--display-name", "Alice Liddell", "--aliases", "a.liddell, Rabbit")
    assert "a.liddell,rabbit" in out and "Liddell" in out, out
    r = ldapsearch(b, "-b", "dc=example,dc=com", "(mail=rabbit@EXAMPLE.com)", "givenName", "sn", "cn", "displayName", "mail")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert ldif_values(out, "givenName") == ["Alice"] and ldif_values(out, "sn") == ["Liddell"], out
    assert ldif_values(out, "cn") == ["Alice Liddell"] and ldif_values(out, "displayName") == ["Alice Liddell"], out
    assert ldif_values(out, "mail") == ["alice@example.com", "a.liddell@example.com", "rabbit@example.com"], out
    # (sn=Lid*) and (givenName~=Alise): substrings and approximate match on the new fields.
    r = ldapsearch(b, "-b", "dc=example,dc=com", "(&(sn=Lid*)(givenName~=Alise))", "uid")
    assert r.returncode == 0 and ldif_values(r.stdout.decode(), "uid") == ["alice"], (r.stdout, r.stderr)

    # The alias is an address: SMTP delivers it to alice's mailbox; a name that is
    # neither user nor alias is still 550 5.1.1.
    smtp = create_port(b, "SMTP", "smtp", "none", assigned=[IP2])["port"]
    assert wait_connect_state(IP2, smtp, "ok", deadline=5) == "ok"
    before = len(maildir_new(b))
    with smtplib.SMTP(IP2, smtp, local_hostname=CLIENT_NAME, timeout=15) as s:
        s.sendmail("bob@remote.test", ["Rabbit@example.com"], smtp_message("to the alias", "hello", to="rabbit@example.com"))
        assert s.mail("bob@remote.test")[0] == 250
        assert s.rcpt("hatter@example.com")[0] == 550
    files = wait_maildir_count(b, before + 1)
    assert len(files) == before + 1 and b"Subject: to the alias" in files[-1].read_bytes()

    # An alias that is another user's name is a conflict, and changes nothing.
    status, body = b.api("POST", "/api/v1/domains/example.com/users", {"name": "bob", "password": "pw-123456",
                                                                        "aliases": ["rabbit"]})
    assert status == 409, (status, body)
    assert b.ok("GET", "/api/v1/domains/example.com/users")[0]["aliases"] == ["a.liddell", "rabbit"]


def until(check, timeout: float = 2.0) -> bool:
    """Settings reach the running server a moment after the API answers."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_settings_open_anonymous_search_and_every_domain_live(ldap_env):
    b = ldap_env
    setup_domain(b, "other.test", "olga", "olga-pw-123")
    r = ldapsearch(b, "-b", "", "-s", "sub", "(mail=*)", "mail", bind=None)
    assert r.returncode == 50, (r.returncode, r.stderr)
    # One session stays open across the change: the settings apply to it at its next search.
    ldap3 = pytest.importorskip("ldap3")
    c = ldap3.Connection(ldap3.Server(IP2, port=b.ldap["none"], get_info=ldap3.NONE), auto_bind=True)
    try:
        assert c.search("dc=example,dc=com", "(uid=alice)") is False
        set_settings(b, ldapAnonymousSearch=True)
        assert until(lambda: c.search("dc=example,dc=com", "(uid=alice)", attributes=["mail"]))
        assert str(c.entries[0].mail) == ALICE
    finally:
        c.unbind()
    r = ldapsearch(b, "-b", "", "-s", "sub", "(mail=*)", "mail", bind=None)
    assert r.returncode == 0, r.stderr
    assert {"alice@example.com", "olga@other.test"} <= set(ldif_values(r.stdout.decode(), "mail"))

    # A bound user sees their own domain, or all with ldapSearchAllDomains.
    r = ldapsearch(b, "-b", "dc=other,dc=test", "(uid=olga)", "mail")
    assert r.returncode == 32, (r.returncode, r.stderr)
    assert set_settings(b, ldapSearchAllDomains=True)["ldapSearchAllDomains"] is True
    assert until(lambda: ldapsearch(b, "-b", "dc=other,dc=test", "(uid=olga)", "mail").returncode == 0)
    r = ldapsearch(b, "-b", "dc=other,dc=test", "(uid=olga)", "mail")
    assert r.returncode == 0 and ldif_values(r.stdout.decode(), "mail") == ["olga@other.test"], (r.stdout, r.stderr)
    out = berth_cli(b, "settings", "set", "--ldap-anonymous-search", "false", "--ldap-search-all-domains", "false")
    assert out.split()[-2:] == ["no", "no"], out
    assert until(lambda: ldapsearch(b, "-b", "dc=other,dc=test", "(uid=olga)", "mail").returncode == 32)
    r = ldapsearch(b, "-b", "", "-s", "sub", "(mail=*)", "mail", bind=None)
    assert r.returncode == 50, (r.returncode, r.stderr)


def seed_people(b, domain: str, count: int) -> None:
    """`count` users in `domain` written straight into the configuration database (the
    API would spend a bcrypt hash on each), then one added through the API so that the
    directory is rebuilt from all of them."""
    with sqlite3.connect(b.data / "berth.sqlite", timeout=30) as db:
        row = db.execute("SELECT passwordHash FROM user LIMIT 1").fetchone()
        any_hash = row[0]
        db.executemany(
            "INSERT INTO user(domain, name, displayName, givenName, surname, passwordHash) VALUES (?, ?, ?, ?, ?, ?)",
            [(domain, f"p{i:05d}", f"Person {i:05d}", "Person", f"{i:05d}", any_hash) for i in range(count)])
    b.ok("POST", f"/api/v1/domains/{domain}/users", {"name": "zz-last", "password": "pw-123456"}, statuses=(200, 201))


def test_paged_search_over_10000_entries(ldap_env):
    ldap3 = pytest.importorskip("ldap3")
    b = ldap_env
    seed_people(b, "example.com", 10_000)
    c = ldap3.Connection(ldap3.Server(IP2, port=b.ldap["none"], get_info=ldap3.NONE), user=ALICE_DN, password=ALICE_PW,
                         auto_bind=True, receive_timeout=30)
    try:
        # The directory is rebuilt off the event loops once the API's change is committed.
        started = time.monotonic()
        assert until(lambda: c.search("dc=example,dc=com", "(uid=zz-last)") and len(c.entries) == 1, timeout=20)
        print(f"directory of 10,002 people rebuilt within {time.monotonic() - started:.2f} s")
        # Without paging the server's limit (1,000) applies: sizeLimitExceeded.
        c.search("ou=people,dc=example,dc=com", "(objectClass=inetOrgPerson)", attributes=["uid"])
        assert c.result["description"] == "sizeLimitExceeded" and len(c.entries) == 1000, (c.result, len(c.entries))
        # Paged: every entry once, in pages no larger than asked.
        uids = []
        pages = 0
        cookie = None
        while True:
            c.search("ou=people,dc=example,dc=com", "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=500,
                     paged_cookie=cookie)
            assert c.result["result"] == 0, c.result
            assert len(c.entries) <= 500
            uids += [str(e.uid) for e in c.entries]
            pages += 1
            cookie = c.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            if not cookie:
                break
        assert len(uids) == 10_002 and len(set(uids)) == 10_002 and pages == 21, (len(uids), pages)
        # An indexed lookup among them.
        c.search("dc=example,dc=com", "(mail=p04242@example.com)", attributes=["cn"])
        assert [str(e.cn) for e in c.entries] == ["Person 04242"]
    finally:
        c.unbind()


def test_sasl_plain_bind(ldap_env):
    ldap3 = pytest.importorskip("ldap3")
    b = ldap_env
    server = ldap3.Server(IP2, port=b.ldap["none"], get_info=ldap3.NONE)
    c = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.PLAIN,
                         sasl_credentials=(None, ALICE, ALICE_PW))
    try:
        assert c.bind(), c.result
        assert c.extend.standard.who_am_i() == f"u:{ALICE}"
        assert c.search("dc=example,dc=com", "(uid=alice)", attributes=["mail"]) and str(c.entries[0].mail) == ALICE
    finally:
        c.unbind()
    # A wrong password is 49 like a simple bind's; another authorization identity is refused.
    for creds, code in (((None, ALICE, "wrong-password"), 49), (("u:bob@example.com", ALICE, ALICE_PW), 50)):
        c = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.PLAIN, sasl_credentials=creds)
        assert not c.bind() and c.result["result"] == code, c.result
        c.unbind()
    # The mechanisms slapd's clients try first, DIGEST-MD5 and others, are not offered.
    c = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.DIGEST_MD5,
                         sasl_credentials=(None, "alice", ALICE_PW, None, "sign"))
    try:
        assert not c.bind() and c.result["result"] == 7, c.result  # authMethodNotSupported
    except ldap3.core.exceptions.LDAPException:
        pass  # ldap3 may give up on the mechanism itself
    finally:
        c.unbind()


@pytest.mark.skipif(not glob.glob("/usr/lib/*/sasl2/libplain.so*"),
                    reason="the Cyrus SASL PLAIN plugin (libsasl2-modules) is not installed")
def test_ldapsearch_sasl_plain_after_starttls(ldap_env):
    b = ldap_env
    argv = ["ldapsearch", "-LLL", "-Y", "PLAIN", "-U", ALICE, "-w", ALICE_PW, "-H", url(b, "tls"),
            "-b", "dc=example,dc=com", "(uid=alice)", "mail"]
    # Cyrus SASL itself keeps PLAIN off a connection without TLS; told to allow it
    # (-O none), it meets the server's refusal.
    r = run(argv[:1] + ["-O", "none"] + argv[1:], timeout=30, env=TLS_ENV)
    assert r.returncode == 13, (r.returncode, r.stderr)  # confidentialityRequired before StartTLS
    r = run(argv[:1] + ["-ZZ"] + argv[1:], timeout=30, env=TLS_ENV)
    assert r.returncode == 0, r.stderr
    assert f"mail: {ALICE}" in r.stdout.decode()


# --------------------------------------------------------------------------- the session kit


def ber(tag: int, content: bytes) -> bytes:
    n = len(content)
    return bytes([tag]) + (bytes([n]) if n < 0x80 else bytes([0x82, n >> 8, n & 0xFF])) + content


def simple_bind(msgid: int, dn: str, password: str) -> bytes:
    op = ber(0x60, ber(0x02, b"\x03") + ber(0x04, dn.encode()) + ber(0x80, password.encode()))
    return ber(0x30, ber(0x02, bytes([msgid])) + op)


def bind_result(sock) -> int | None:
    """The resultCode of the first BindResponse read, or None if the server closed first."""
    data = b""
    sock.settimeout(10)
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        data += chunk
        pos = data.find(b"\x61")  # [APPLICATION 1] BindResponse, then ENUMERATED resultCode
        if pos > 0 and len(data) >= pos + 5:
            return data[pos + 4]


def test_proxy_protocol_header_gives_the_client_address(ldap_env):
    b = ldap_env
    set_settings(b, proxyTrustedNetworks=["127.0.0.0/8"])
    port = create_port(b, "LDAP behind a proxy", "ldap", "none", assigned=[IP2], proxyProtocol=True)["port"]
    assert wait_connect_state(IP2, port, "ok", deadline=5) == "ok"
    since = log_size(b)
    with socket.create_connection((IP2, port), timeout=10) as s:
        s.sendall(f"PROXY TCP4 192.0.2.77 {IP2} 5000 {port}\r\n".encode() + simple_bind(1, ALICE_DN, ALICE_PW))
        assert bind_result(s) == 0
    event = wait_log_event(b, lambda e: e.get("event") == "connect" and e.get("client") == "192.0.2.77", since=since)
    assert event is not None and event.get("proto") == "ldap", b.log_tail(20)


def test_ldaps_certificate_chosen_by_sni(ldap_env, tmp_path):
    b = ldap_env
    cert, key = make_cert(tmp_path, "directory.alpha.test", name="alpha")
    b.ok("POST", "/api/v1/certificates", {"certificatePath": str(cert), "privateKeyPath": str(key)}, statuses=(200, 201))

    def subject(servername: str) -> str:
        r = run(["openssl", "s_client", "-connect", f"{IP2}:{b.ldap['ssl']}", "-servername", servername], input=b"",
                timeout=15)
        return run(["openssl", "x509", "-noout", "-subject"], input=r.stdout, timeout=15).stdout.decode()

    assert until(lambda: "directory.alpha.test" in subject("directory.alpha.test"), timeout=5)
    assert "directory.alpha.test" not in subject("other.test")


def test_failed_binds_ban_the_address_for_ldap_too(ldap_env):
    b = ldap_env
    set_settings(b, authFailureDelayMs=0, authBanThreshold=3, authBanWindowSeconds=60, authBanSeconds=60)
    source = "127.0.0.41"
    codes = []
    for _ in range(3):
        with socket.create_connection((IP2, b.ldap["none"]), timeout=10, source_address=(source, 0)) as s:
            s.sendall(simple_bind(1, ALICE_DN, "wrong-password"))
            codes.append(bind_result(s))
    assert codes[:2] == [49, 49], codes
    # Banned: the next connection from that address is told so and closed before any bind.
    with socket.create_connection((IP2, b.ldap["none"]), timeout=10, source_address=(source, 0)) as s:
        s.settimeout(5)
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert b"1.3.6.1.4.1.1466.20036" in data, data  # the Notice of Disconnection, unsolicited
    # Everyone else is served.
    r = ldapsearch(b, "-b", "dc=example,dc=com", "(uid=alice)", "mail")
    assert r.returncode == 0, r.stderr


def search_request(msgid: int, base: str) -> bytes:
    """(objectClass=*) over the subtree, attribute cn."""
    body = (ber(0x04, base.encode()) + ber(0x0A, b"\x02") + ber(0x0A, b"\x00") + ber(0x02, b"\x00") + ber(0x02, b"\x00")
            + ber(0x01, b"\x00") + ber(0x87, b"objectClass") + ber(0x30, ber(0x04, b"cn")))
    return ber(0x30, ber(0x02, msgid.to_bytes(2, "big")) + ber(0x63, body))


def test_a_client_that_pipelines_searches_and_never_reads_costs_bounded_memory(ldap_env):
    """Searches answered with 1,000 entries each, pipelined as fast as the server takes them
    and never read: the server stops reading once its replies back up, its memory stays
    bounded, and other clients are served meanwhile."""
    ldap3 = pytest.importorskip("ldap3")
    from rss import MiB, RSSSampler
    b = ldap_env
    seed_people(b, "example.com", 2_000)
    reader = ldap3.Connection(ldap3.Server(IP2, port=b.ldap["none"], get_info=ldap3.NONE), user=ALICE_DN,
                              password=ALICE_PW, auto_bind=True, receive_timeout=10)
    assert until(lambda: reader.search("dc=example,dc=com", "(uid=zz-last)") and len(reader.entries) == 1, timeout=20)
    hostile = socket.create_connection((IP2, b.ldap["none"]), timeout=10)
    hostile.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = 0
    try:
        hostile.sendall(simple_bind(1, ALICE_DN, ALICE_PW))
        assert bind_result(hostile) == 0
        hostile.setblocking(False)
        burst = b"".join(search_request(2 + i % 60000, "dc=example,dc=com") for i in range(1000))
        with RSSSampler(b.pid) as rss:
            t0 = last = time.monotonic()
            while time.monotonic() - t0 < 20 and time.monotonic() - last < 2:
                try:
                    sent += hostile.send(burst)
                    last = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.01)
            # The server has stopped taking requests; others are still answered.
            assert reader.search("dc=example,dc=com", "(uid=alice)", attributes=["mail"]) and len(reader.entries) == 1
        requests = sent // len(search_request(2, "dc=example,dc=com"))
        # What the kernel's socket buffers hold (a few MiB) and no more: before the read
        # gate worked for LDAP, 70 million were taken in 20 s and the server died at 4 GiB.
        assert requests < 1_000_000, f"{requests} searches taken from a client that reads nothing"
        assert rss.growth <= 48 * MiB, f"{requests} pipelined searches never read: {rss.describe()}"
        print(f"pipelined, never read: {requests} searches taken, {rss.describe()}")
    finally:
        hostile.close()
        reader.unbind()
