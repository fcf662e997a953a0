"""Issue 5, finding 10: after kill -9, start-up reconciles the Maildir with the index."""
from __future__ import annotations

import shutil
import signal
import smtplib
import sqlite3

from conftest import ALICE, CLIENT_NAME, IP2, add_ips, create_port, maildir_new, setup_domain, smtp_message, \
    wait_connect_state, wait_maildir_count

# No process has this pid (above the kernel's pid_max).
DEAD_PID = 4194400


def indexed(b) -> set[str]:
    """Full paths of the messages the mail index holds (INBOX: the account's Maildir)."""
    with sqlite3.connect(f"file:{b.data / 'berth.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT mailbox.domain, mailbox.user, mailbox.name, mail.file "
                          "FROM mail JOIN mailbox ON mailbox.id = mail.mailbox")
        return {str(b.data / "mail" / d / u / f) for d, u, name, f in rows if name == "INBOX"}


def test_kill_9_leftovers_are_reconciled_at_start(server):
    b = server
    add_ips(b)
    setup_domain(b)
    p = create_port(b, "In", assigned=[IP2])
    assert wait_connect_state(IP2, p["port"], "ok", deadline=5) == "ok"
    with smtplib.SMTP(IP2, p["port"], local_hostname=CLIENT_NAME, timeout=15) as s:
        s.sendmail("bob@remote.test", [ALICE], smtp_message("before crash", "one"))
    files = wait_maildir_count(b, 1)
    assert len(files) == 1
    b.stop(sig=signal.SIGKILL)

    box = b.data / "mail" / "example.com" / "alice"
    leftover = box / "tmp" / f"1700000000.M1P{DEAD_PID}Q9.mx.test.local,S=12"
    leftover.write_text("half written")
    # Renamed into new/ but the index commit never happened.
    unindexed = box / "new" / f"1700000001.M2P{DEAD_PID}Q10.mx.test.local,S={files[0].stat().st_size}"
    shutil.copyfile(files[0], unindexed)
    assert str(unindexed) not in indexed(b)

    b.start()
    assert not leftover.exists(), "tmp/ leftovers are removed at start"
    assert list((box / "tmp").iterdir()) == []
    assert indexed(b) == {str(files[0]), str(unindexed)}
    log = b.log[b.log_offset:]
    assert "removed unfinished delivery" in log and str(leftover) in log, log
    assert "indexed" in log and str(unindexed) in log, log
    assert len(maildir_new(b)) == 2

    # A clean restart after that has nothing to do.
    b.restart()
    assert "maildir recovery" not in b.log[b.log_offset:]
