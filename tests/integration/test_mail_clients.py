"""Real mail clients against Berth: mbsync (isync) syncing a mailbox both ways over IMAP,
fetchmail pulling over POP3 with STLS, and mutt reading Berth's Maildir directly.

Each test skips with the reason when its client binary is absent (.ci/run installs
isync, fetchmail and mutt). mutt has no batch mode for reading: it runs under a pseudo
terminal (`script`), its commands pushed from a generated muttrc, and pipes the messages
it selects to a file; the same Maildir is also read with Python's mailbox.Maildir.
MAIL_PEER=dovecot runs them against a private Dovecot (conftest.MailTarget).
"""
from __future__ import annotations

import mailbox
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import ALICE, MailTarget, run, strip_trace_headers, tls_client_context

imapclient = pytest.importorskip("imapclient", reason="pip install imapclient (tests/integration/requirements.txt)")
from imapclient import IMAPClient  # noqa: E402

FOLDERS = ["Sent", "Drafts", "Trash", "Junk", "Archive"]


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (apt-get install {'isync' if binary == 'mbsync' else binary})")
    return path


def message(subject: str, body: str = "hello") -> bytes:
    return (f"From: Bob <bob@remote.test>\r\nTo: Alice <{ALICE}>\r\nSubject: {subject}\r\n"
            f"Date: Thu, 26 Nov 2026 04:00:00 +0000\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@remote.test>\r\n\r\n{body}\r\n.dot line\r\n").encode()


def deliver(t: MailTarget, msgs: list[bytes]) -> None:
    before = len(t.files())
    for m in msgs:
        t.deliver(m)
    assert len(t.wait_files(before + len(msgs))) >= before + len(msgs)


def lf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n")


def server_cert_pem(t: MailTarget, proto: str = "imap") -> str:
    """The certificate the tls (STARTTLS) port presents, as PEM."""
    s = socket.create_connection((t.host, t.imap["tls"] if proto == "imap" else t.pop["tls"]), timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a STARTTLS\r\n" if proto == "imap" else b"STLS\r\n")
    line = f.readline()
    assert b"OK" in line, line
    tls = tls_client_context().wrap_socket(s)
    der = tls.getpeercert(binary_form=True)
    tls.close()
    return ssl.DER_cert_to_PEM_cert(der)


def imap(t: MailTarget) -> IMAPClient:
    """The tests' own view of the server (plain port; TLS is the clients' and test_imap's part)."""
    c = IMAPClient(t.host, port=t.imap["none"], ssl=False, timeout=20)
    c.login(t.user, t.password)
    return c


def server_subjects(c: IMAPClient, folder: str) -> dict[int, bytes]:
    c.select_folder(folder)
    uids = c.search(["ALL"])
    if not uids:
        return {}
    got = c.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    return {u: v[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip().split(b": ", 1)[1] for u, v in got.items()}


# --------------------------------------------------------------------------- mbsync


def cert_name(pem_path: Path) -> str:
    """The first DNS subjectAltName of a certificate, else its CN."""
    info = ssl._ssl._test_decode_cert(str(pem_path))
    for kind, value in info.get("subjectAltName", ()):
        if kind == "DNS" and "*" not in value:
            return value
    for rdn in info.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    raise AssertionError(f"no name in the server certificate: {info}")


def mbsyncrc(t: MailTarget, d: Path, mode: str) -> tuple[Path, Path | None]:
    """mode: 'plain' (no TLS) or 'starttls' (the server's certificate pinned with
    CertificateFile). mbsync checks the certificate's name against Host even for a pinned
    certificate, so for STARTTLS it connects by the certificate's name, which a private
    /etc/hosts (bind-mounted in a mount namespace of mbsync's own) maps to the server's
    address. Returns (rc, that hosts file or None)."""
    local = d / "local"
    local.mkdir(exist_ok=True)
    host, hosts = t.host, None
    if mode != "plain":
        cert = d / "server.pem"
        cert.write_text(server_cert_pem(t))
        host = cert_name(cert)
        hosts = d / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n{t.host} {host}\n")
    lines = [
        "IMAPAccount berth",
        f"Host {host}",
        f"Port {t.imap['none'] if mode == 'plain' else t.imap['tls']}",
        f"User {t.user}",
        f"Pass {t.password}",
        "Timeout 20",
    ]
    if mode == "plain":
        lines += ["SSLType None", "AuthMechs LOGIN"]
    else:
        lines += ["SSLType STARTTLS", f"CertificateFile {d / 'server.pem'}", "AuthMechs PLAIN"]
    lines += [
        "",
        "IMAPStore remote",
        "Account berth",
        "",
        "MaildirStore local",
        f"Path {local}/",
        f"Inbox {local}/INBOX",
        "SubFolders Verbatim",
        "",
        "Channel all",
        "Far :remote:",
        "Near :local:",
        "Patterns *",
        "Create Both",
        "Remove None",
        "Expunge Both",
        "SyncState *",
        "CopyArrivalDate yes",
        "",
    ]
    rc = d / "mbsyncrc"
    rc.write_text("\n".join(lines))
    rc.chmod(0o600)
    return rc, hosts


def mbsync(rc: Path, hosts: Path | None) -> str:
    argv = [need("mbsync"), "-c", str(rc), "-a"]
    if hosts is not None:
        unshare = need("unshare")
        probe = run([unshare, "-m", "sh", "-c", f"mount --bind {hosts} /etc/hosts"], timeout=20)
        if probe.returncode != 0:
            pytest.skip(f"STARTTLS by name needs a private /etc/hosts (unshare -m): {probe.stderr.decode()[:200]}")
        argv = [unshare, "-m", "sh", "-c", f'mount --bind {hosts} /etc/hosts && exec "$0" "$@"'] + argv
    p = run(argv, timeout=90)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, f"mbsync exited {p.returncode}:\n{out}"
    return out


def no_tuid(b: bytes) -> bytes:
    """mbsync adds an X-TUID header to the messages it copies; leave it out of comparisons."""
    head, sep, body = b.partition(b"\n\n")
    return b"\n".join(l for l in head.split(b"\n") if not l.startswith(b"X-TUID: ")) + sep + body


def local_box(d: Path, folder: str) -> mailbox.Maildir:
    return mailbox.Maildir(d / "local" / folder, factory=None, create=False)


@pytest.mark.parametrize("mode", ["plain", "starttls"])
def test_mbsync_both_ways(mail_target, tmp_path, mode):
    need("mbsync")
    t = mail_target
    sent = [message(f"mbsync in {i}", f"body {i}") for i in range(3)]
    deliver(t, sent)
    rc, hosts = mbsyncrc(t, tmp_path, mode)
    mbsync(rc, hosts)
    # server -> local: every folder, every message, the same bytes (mbsync stores LF)
    for f in ["INBOX"] + FOLDERS:
        assert (tmp_path / "local" / f / "cur").is_dir(), f"mbsync did not create local {f}: " \
            f"{sorted(p.name for p in (tmp_path / 'local').iterdir())}"
    inbox = local_box(tmp_path, "INBOX")
    got = sorted(no_tuid(strip_trace_headers(lf(inbox.get_bytes(k)))[1]) for k in inbox.keys())
    assert got == sorted(lf(m) for m in sent), got

    # local -> server: a new message in Archive, flags on one INBOX message, one deleted locally
    arch = local_box(tmp_path, "Archive")
    local_msg = message("mbsync out", "made locally")
    mm = mailbox.MaildirMessage(lf(local_msg))
    mm.set_subdir("cur")
    mm.set_flags("S")
    arch.add(mm)
    by_subject = {inbox[k]["Subject"]: k for k in inbox.keys()}
    k0 = by_subject["mbsync in 0"]
    m0 = inbox[k0]
    m0.set_subdir("cur")
    m0.set_flags("FS")
    inbox[k0] = m0
    k1 = by_subject["mbsync in 1"]
    m1 = inbox[k1]
    m1.set_subdir("cur")
    m1.set_flags("ST")  # trashed: mbsync marks \Deleted and expunges (Expunge Both)
    inbox[k1] = m1
    mbsync(rc, hosts)
    with imap(t) as c:
        assert list(server_subjects(c, "Archive").values()) == [b"mbsync out"]
        c.select_folder("Archive")
        uid = c.search(["ALL"])[0]
        assert b"\\Seen" in c.get_flags([uid])[uid]
        body = c.fetch([uid], [b"BODY.PEEK[]"])[uid][b"BODY[]"]
        assert no_tuid(lf(body)) == lf(local_msg), "mbsync's upload arrives as it was written"
        assert b"\n" not in body.replace(b"\r\n", b""), "BODY[] has a bare LF"
        subjects = server_subjects(c, "INBOX")
        assert sorted(subjects.values()) == [b"mbsync in 0", b"mbsync in 2"], subjects
        c.select_folder("INBOX")
        flags = {subjects[u]: set(f) for u, f in c.get_flags(list(subjects)).items()}
        assert {b"\\Seen", b"\\Flagged"} <= flags[b"mbsync in 0"], flags
        assert b"\\Seen" not in flags[b"mbsync in 2"], flags
        # server-side change: delete one, flag the other, deliver a new one
        u2 = [u for u, s in subjects.items() if s == b"mbsync in 2"][0]
        u0 = [u for u, s in subjects.items() if s == b"mbsync in 0"][0]
        c.add_flags([u2], [b"\\Deleted"])
        c.expunge()
        c.add_flags([u0], [b"\\Answered"])
    deliver(t, [message("mbsync in 3")])
    mbsync(rc, hosts)
    inbox = local_box(tmp_path, "INBOX")
    local = {inbox[k]["Subject"]: inbox[k].get_flags() for k in inbox.keys()}
    assert set(local) == {"mbsync in 0", "mbsync in 3"}, local
    assert "R" in local["mbsync in 0"] and "F" in local["mbsync in 0"], local
    # a second sync with nothing changed changes nothing
    before = sorted(p.name for p in (tmp_path / "local" / "INBOX").rglob("*") if p.is_file())
    mbsync(rc, hosts)
    after = sorted(p.name for p in (tmp_path / "local" / "INBOX").rglob("*") if p.is_file())
    assert before == after


# --------------------------------------------------------------------------- fetchmail


def test_fetchmail_over_pop3_stls(mail_target, tmp_path):
    fetchmail = need("fetchmail")
    t = mail_target
    sent = [message(f"fetchmail {i}", f"body {i}") for i in range(3)]
    deliver(t, sent)
    out = tmp_path / "out"
    out.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text(f"#!/bin/sh\nexec cat > \"$(mktemp -p {out} msg.XXXXXXXX)\"\n")
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f'poll {t.host} service {t.pop["tls"]} protocol pop3 auth password timeout 20 uidl\n'
        f'  user "{t.user}" there with password "{t.password}" is "root" here\n'
        "  sslproto 'TLS1.2+' no sslcertck\n"
        f'  mda "{mda}"\n'
        "  fetchall nokeep\n")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    p = run([fetchmail, "-f", str(rc), "-v", "--nosyslog", "--nodetach", "--invisible",
             "-i", str(tmp_path / "fetchids"), "--pidfile", str(tmp_path / "fetchmail.pid")], timeout=120, env=env)
    log = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, f"fetchmail exited {p.returncode} (0 = mail retrieved):\n{log}"
    assert "STLS" in log, f"fetchmail did not use STLS:\n{log}"
    got = sorted(f.read_bytes() for f in out.iterdir())
    assert len(got) == 3, (got, log[-3000:])
    bodies = sorted(lf(strip_trace_headers(lf(g))[1]) for g in got)
    assert bodies == sorted(lf(m) for m in sent), bodies
    # nokeep: DELE + QUIT emptied the maildrop
    files = t.files()
    for _ in range(50):
        if not files:
            break
        time.sleep(0.1)
        files = t.files()
    assert files == [], files
    # nothing new: exit code 1 ("no mail")
    p = run([fetchmail, "-f", str(rc), "--nosyslog", "--nodetach", "-i", str(tmp_path / "fetchids"),
             "--pidfile", str(tmp_path / "fetchmail.pid")], timeout=120, env=env)
    assert p.returncode == 1, (p.returncode, (p.stdout + p.stderr).decode(errors="replace"))


# --------------------------------------------------------------------------- mutt on the Maildir


def mutt_pipe(maildir: Path, pattern: str, tmp: Path) -> list[bytes]:
    """The raw messages of `maildir` that match mutt's `pattern`, as mutt reads them."""
    mutt = need("mutt")
    script = need("script")
    out = tmp / f"mutt-{uuid.uuid4().hex}.out"
    rc = tmp / "muttrc"
    # folder/spoolfile/record/postponed set: no "create ~/Mail?" prompt eats the pushed keys
    rc.write_text(
        f'set folder="{maildir}"\nset spoolfile="{maildir}"\nset record=""\nset postponed=""\n'
        "set wait_key=no\nset pipe_split=yes\nset pipe_decode=no\n"
        'set pipe_sep="\\n==MUTT-SEP==\\n"\nset mbox_type=Maildir\nset auto_tag=yes\nset quit=yes\n'
        'set read_only=yes\nset header_cache=""\nset move=no\nset mark_old=no\n'
        f'push "<tag-pattern>{pattern}<enter><pipe-entry>cat >> {out}<enter><quit>"\n')
    env = dict(os.environ, TERM="xterm", HOME=str(tmp), MAIL=str(maildir))
    p = subprocess.run([script, "-qec", f"{mutt} -n -F {rc} -R -f {maildir}", "/dev/null"], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    if not out.exists():
        return []
    parts = out.read_bytes().split(b"\n==MUTT-SEP==\n")
    return [x for x in parts if x.strip()]


def test_mutt_reads_the_maildir(mail_target, tmp_path):
    need("mutt")
    need("script")
    t = mail_target
    sent = [message(f"mutt {i}", f"body {i}") for i in range(3)]
    deliver(t, sent)
    with imap(t) as c:
        c.select_folder("INBOX")
        subjects = server_subjects(c, "INBOX")
        u1 = [u for u, s in subjects.items() if s == b"mutt 1"][0]
        c.add_flags([u1], [b"\\Flagged", b"\\Seen"])
        c.append("Sent", message("mutt sent"), flags=[b"\\Seen"])
    for _ in range(50):
        if any(p.name.endswith(":2,FS") for p in t.files()):
            break
        time.sleep(0.1)
    root = t.maildir()
    everything = mutt_pipe(root, "~A", tmp_path)
    assert len(everything) == 3, everything
    assert sorted(lf(strip_trace_headers(lf(m))[1]) for m in everything) == sorted(lf(m) for m in sent)
    flagged = mutt_pipe(root, "~F", tmp_path)
    assert len(flagged) == 1 and b"Subject: mutt 1" in flagged[0], flagged
    unread = mutt_pipe(root, "~U", tmp_path)
    assert sorted(b"Subject: mutt 0" in m or b"Subject: mutt 2" in m for m in unread) == [True, True], unread
    sent_folder = mutt_pipe(t.folder_dir("Sent"), "~A", tmp_path)
    assert len(sent_folder) == 1 and b"Subject: mutt sent" in sent_folder[0], sent_folder
    # Python's mailbox reads the same layout: Maildir++ folders, flags in the names
    md = mailbox.Maildir(root, factory=None, create=False)
    assert sorted(md.list_folders()) >= sorted(FOLDERS), md.list_folders()
    flags = {md[k]["Subject"]: md[k].get_flags() for k in md.keys()}
    assert flags["mutt 1"] == "FS" and flags["mutt 0"] == "", flags
    assert len(md.get_folder("Sent")) == 1


# --------------------------------------------------------------------------- Dovecot on Berth's Maildir


SYSTEM_FLAGS = {b"\\Seen", b"\\Answered", b"\\Flagged", b"\\Deleted", b"\\Draft"}


def folder_views(host: str, port: int, user: str, password: str) -> dict[str, list]:
    """folder -> sorted [(system flags, BODY[])] as an IMAP server shows them."""
    out = {}
    with IMAPClient(host, port=port, ssl=False, timeout=30) as c:
        c.login(user, password)
        for flags, _, name in c.list_folders():
            if b"\\Noselect" in flags:
                continue
            c.select_folder(name, readonly=True)
            uids = c.search(["ALL"])
            data = c.fetch(uids, [b"FLAGS", b"BODY.PEEK[]"]) if uids else {}
            out[name] = sorted((sorted(set(d[b"FLAGS"]) & SYSTEM_FLAGS), d[b"BODY[]"]) for d in data.values())
    return out


def test_dovecot_reads_berths_maildir_as_it_is(mail_target):
    """README: the store is Maildir++ with flags in the file names, 'so mutt -f and Dovecot read
    it as it is'. A private Dovecot on a copy of Berth's Maildir shows the same folders, bytes
    and system flags. .ci/run installs dovecot-imapd for it."""
    from conftest import DOVECOT_BIN, DovecotMailTarget, dovecot_protocols
    t = mail_target
    if t.kind != "berth":
        pytest.skip("compares Berth with Dovecot")
    if not os.path.exists(DOVECOT_BIN) or "imap" not in dovecot_protocols():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd to run this check)")
    deliver(t, [message("dc 1"), message("dc 2"), message("dc 3")])
    with imap(t) as c:
        c.create_folder("Projects/2026")
        c.append("Projects/2026", message("in a subfolder"), flags=[b"\\Flagged", b"\\Seen"])
        c.append("Archive", message("archived"), flags=[b"\\Answered"])
        c.append("Drafts", message("draft"), flags=[b"\\Draft"])
        c.select_folder("INBOX")
        uids = sorted(c.search(["ALL"]))
        c.add_flags([uids[0]], [b"\\Seen", b"\\Flagged"])
        c.add_flags([uids[1]], [b"\\Deleted"])
        c.expunge()
        c.add_flags([uids[2]], [b"\\Answered"])
    berth = folder_views(t.host, t.imap["none"], t.user, t.password)
    assert "Projects/2026" in berth and len(berth["INBOX"]) == 2, berth.keys()
    t.stop()
    d = DovecotMailTarget()
    try:
        shutil.copytree(t.maildir(), d.maildir(), symlinks=True)
        d.start()  # chowns mail/ to vmail at its top; the copied tree too:
        run(["chown", "-R", "vmail:vmail", str(d.dir / "mail")], timeout=30)
        dc = folder_views(d.host, d.imap["none"], t.user, t.password)
    finally:
        d.cleanup()
    assert sorted(dc) == sorted(berth), (sorted(dc), sorted(berth))
    for folder in berth:
        assert dc[folder] == berth[folder], f"{folder}: Dovecot reads other bytes or flags than Berth serves"
