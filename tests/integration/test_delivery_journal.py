"""Issue 8: small local deliveries are acknowledged through the delivery journal.

A `kill -9` keeps the page cache, so to stand for a power loss the test removes what the
crash would have lost (the Maildir files written before the 250 but not yet flushed) and
checks that the restart brings every acknowledged message back, byte for byte, with IMAP
seeing it; and that a message the user expunged is not brought back.
"""
from __future__ import annotations

import imaplib
import signal
import smtplib

from conftest import ALICE, ALICE_PW, CLIENT_NAME, IP2, create_port, maildir_new, smtp_message, \
    wait_connect_state, wait_maildir_count


def journal_entries(b) -> int:
    """How many messages the journal file holds in its live generation (a rough read of the
    record framing; the server's own reader is the unit-tested one)."""
    data = (b.data / "journal").read_bytes()
    generation = data[8:16]
    offset, count = 4096, 0
    while offset + 32 <= len(data):
        if data[offset:offset + 4] != b"BJRC" or data[offset + 4:offset + 12] != generation:
            break
        length = int.from_bytes(data[offset + 12:offset + 16], "little")
        count += int.from_bytes(data[offset + 16:offset + 20], "little")
        offset += 32 + length
    return count


def imap_bodies(port: int) -> list[bytes]:
    with imaplib.IMAP4(IP2, port, timeout=15) as c:
        c.login(ALICE, ALICE_PW)
        c.select("INBOX")
        typ, data = c.fetch("1:*", "(BODY.PEEK[TEXT])")
        assert typ == "OK", data
        return sorted(part[1] for part in data if isinstance(part, tuple))


def test_acknowledged_messages_lost_with_their_files_come_back_from_the_journal(make_mail_server):
    # A checkpoint an hour away: the crash below comes long before it.
    b = make_mail_server("--journal-checkpoint-seconds", "3600", "--allow-plaintext-auth")
    smtp = create_port(b, "In", assigned=[IP2])
    imap = create_port(b, "Imap", protocol="imap", assigned=[IP2])
    assert wait_connect_state(IP2, smtp["port"], "ok", deadline=5) == "ok"
    sent = []
    with smtplib.SMTP(IP2, smtp["port"], local_hostname=CLIENT_NAME, timeout=15) as s:
        for i in range(5):
            body = f"journaled message {i}\r\n"
            s.sendmail("bob@remote.test", [ALICE], smtp_message(f"journal {i}", body))
            sent.append((body + "\r\n").encode())
    files = wait_maildir_count(b, 5)
    assert journal_entries(b) == 5, "each acknowledged message is in the journal"

    # Expunged over IMAP: the expunge checkpoints first, so the journal cannot bring it back.
    with imaplib.IMAP4(IP2, imap["port"], timeout=15) as c:
        c.login(ALICE, ALICE_PW)
        c.select("INBOX")
        c.store("1", "+FLAGS", "(\\Deleted)")
        c.expunge()
    assert journal_entries(b) == 0, "the expunge checkpointed the journal"
    with smtplib.SMTP(IP2, smtp["port"], local_hostname=CLIENT_NAME, timeout=15) as s:
        s.sendmail("bob@remote.test", [ALICE], smtp_message("journal 5", "journaled message 5\r\n"))
        sent.append(b"journaled message 5\r\n\r\n")
    assert journal_entries(b) == 1
    # The 250 follows the journal's flush; the file follows it on the store's own thread.
    wait_maildir_count(b, 1)

    b.stop(sig=signal.SIGKILL)
    # What a power loss could take: the file written since the checkpoint (the SELECT moved
    # the earlier ones to cur/, and the expunge's checkpoint made them durable).
    box = b.data / "mail" / "example.com" / "alice"
    newest = sorted((box / "new").iterdir())[-1]
    newest.unlink()
    b.start()
    log = b.log[b.log_offset:]
    assert "restored" in log and "delivery journal" in log, log
    got = imap_bodies(imap["port"])
    assert got == sorted(sent[1:]), "the four left by the expunge, and the lost one restored"
    assert len(maildir_new(b)) + len(list((box / "cur").iterdir())) == 5
    assert len(files) == 5


def test_a_short_file_is_rewritten_and_a_clean_stop_leaves_nothing_to_replay(make_mail_server):
    b = make_mail_server("--journal-checkpoint-seconds", "3600")
    smtp = create_port(b, "In", assigned=[IP2])
    assert wait_connect_state(IP2, smtp["port"], "ok", deadline=5) == "ok"
    with smtplib.SMTP(IP2, smtp["port"], local_hostname=CLIENT_NAME, timeout=15) as s:
        s.sendmail("bob@remote.test", [ALICE], smtp_message("short", "a body the crash cut short\r\n" * 20))
    [path] = wait_maildir_count(b, 1)
    whole = path.read_bytes()
    b.stop(sig=signal.SIGKILL)
    path.write_bytes(whole[:10])
    b.start()
    assert path.read_bytes() == whole, "rewritten from the journal, not removed as truncated"

    b.stop()  # SIGTERM: the writer checkpoints the journal on its way out
    assert journal_entries(b) == 0
    b.start()
    assert "maildir recovery" not in b.log[b.log_offset:]
