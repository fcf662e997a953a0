"""`kill -9` during an IMAP APPEND/MOVE load, restart, then the mailbox index and the Maildir
must agree: every message IMAP lists has a file, every file in cur/ and new/ of every folder
is listed, UIDs are unique, and nothing acknowledged (APPENDUID / MOVE OK) is missing.
MAIL_PEER=dovecot runs it against a private Dovecot (conftest.MailTarget).
"""
from __future__ import annotations

import collections
import random
import re
import threading
import time
import uuid

import pytest

from conftest import ALICE, MailTarget

imapclient = pytest.importorskip("imapclient", reason="pip install imapclient (tests/integration/requirements.txt)")
from imapclient import IMAPClient  # noqa: E402

LOAD_SECONDS = 2.0
WORKERS = 6  # half append only, half append then MOVE to Archive


def client(t: MailTarget, timeout: float = 10) -> IMAPClient:
    c = IMAPClient(t.host, port=t.imap["none"], ssl=False, timeout=timeout)
    c.login(t.user, t.password)
    return c


def msg(token: str, size: int) -> bytes:
    return (f"From: Load <load@remote.test>\r\nTo: <{ALICE}>\r\nSubject: load {token}\r\n"
            f"Message-ID: <{token}@load.test>\r\n\r\n").encode() + (b"x" * 70 + b"\r\n") * size


class Ledger:
    """What the server acknowledged, and what was in flight when it died."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked: dict[str, tuple[str, int | None]] = {}  # token -> (folder, uid or None)
        self.in_flight: dict[int, tuple[str, str]] = {}  # worker -> (op, token)
        self.errors: list[str] = []
        self.ops = collections.Counter()


def worker(t: MailTarget, n: int, ledger: Ledger, stop: threading.Event, mover: bool) -> None:
    rnd = random.Random(n)
    try:
        c = client(t)
        c.select_folder("INBOX")
    except Exception as e:  # the server may already be dead
        with ledger.lock:
            ledger.errors.append(f"worker {n} connect: {e!r}")
        return
    mine: list[str] = []
    try:
        for _ in range(100000):
            if stop.is_set():
                break
            if mover and mine and rnd.random() < 0.5:
                token = mine.pop(0)
                folder, uid = ledger.acked[token]
                with ledger.lock:
                    ledger.in_flight[n] = ("move", token)
                c.move([uid], "Archive")  # raises unless tagged OK
                with ledger.lock:
                    ledger.acked[token] = ("Archive", None)
                    ledger.ops["move"] += 1
                    del ledger.in_flight[n]
                continue
            token = uuid.uuid4().hex
            with ledger.lock:
                ledger.in_flight[n] = ("append", token)
            resp = c.append("INBOX", msg(token, rnd.randrange(1, 60)),
                            flags=[b"\\Seen"] if rnd.random() < 0.3 else [])
            m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", resp or b"")
            if not m:
                with ledger.lock:
                    ledger.errors.append(f"APPEND without APPENDUID: {resp!r}")
                    del ledger.in_flight[n]
                continue
            with ledger.lock:
                ledger.acked[token] = ("INBOX", int(m.group(2)))
                ledger.ops["append"] += 1
                del ledger.in_flight[n]
            if mover:
                mine.append(token)
    except Exception:
        pass  # the kill: what was in flight stays in ledger.in_flight
    finally:
        try:
            c.shutdown()
        except Exception:
            pass


def imap_view(t: MailTarget) -> dict[str, list[tuple[int, int, str]]]:
    """folder -> [(uid, RFC822.SIZE, Message-ID token)] as IMAP lists them."""
    out = {}
    with client(t, timeout=30) as c:
        for flags, _, name in c.list_folders():
            if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                continue
            c.select_folder(name, readonly=True)
            uids = c.search(["ALL"])
            rows = []
            if uids:
                data = c.fetch(uids, [b"RFC822.SIZE", b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                for uid, d in data.items():
                    mid = d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode(errors="replace")
                    m = re.search(r"<([^@>]+)@", mid)
                    rows.append((uid, d[b"RFC822.SIZE"], m.group(1) if m else mid.strip()))
            # UID FETCH 1:* lists the same UIDs as SEARCH ALL
            typ, data = c._imap.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
            fetched = sorted(int(m.group(1)) for d in data if isinstance(d, bytes)
                             for m in [re.search(rb"UID (\d+)", d)] if m) if uids else []
            assert typ == "OK" and fetched == sorted(uids), (name, typ, fetched[:10], sorted(uids)[:10])
            out[name] = rows
    return out


def disk_view(t: MailTarget, folder: str) -> list[tuple[int, str, str]]:
    """[(size with CRLF line ends, Message-ID token, file name)] of the files in cur/ and new/."""
    rows = []
    for p in t.files(folder):
        data = p.read_bytes()
        crlf = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        m = re.search(rb"(?im)^Message-ID:\s*<([^@>]+)@", data)
        rows.append((len(crlf), m.group(1).decode() if m else "?", p.name))
    return rows


def test_kill9_during_append_and_move_keeps_index_and_maildir_in_agreement(mail_target):
    t = mail_target
    # a few messages delivered before the load, and Archive touched once
    with client(t) as c:
        for i in range(5):
            c.append("INBOX", msg(f"seed{i}", 3))
        c.select_folder("Archive")
    ledger = Ledger()
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(t, n, ledger, stop, n % 2 == 1), daemon=True)
               for n in range(WORKERS)]
    for th in threads:
        th.start()
    kill_at = random.uniform(0.6, LOAD_SECONDS - 0.4)
    time.sleep(kill_at)
    t.kill9()
    stop.set()
    for th in threads:
        th.join(timeout=15)
    assert not any(th.is_alive() for th in threads), "a load thread did not end after the kill"
    assert ledger.ops["append"] > 10, f"the load barely ran before the kill: {ledger.ops} {ledger.errors[:3]}"
    assert not [e for e in ledger.errors if "APPENDUID" in e], ledger.errors[:5]

    t.start_again()
    view = imap_view(t)
    problems = []
    # 1. UIDs unique per folder
    for folder, rows in view.items():
        dup = [u for u, k in collections.Counter(r[0] for r in rows).items() if k > 1]
        if dup:
            problems.append(f"{folder}: duplicate UIDs {dup[:10]}")
    # 2. index and Maildir agree, folder by folder: same messages (by Message-ID and size)
    for folder, rows in view.items():
        listed = collections.Counter((size, tok) for _, size, tok in rows)
        on_disk_rows = disk_view(t, folder)
        on_disk = collections.Counter((size, tok) for size, tok, _ in on_disk_rows)
        missing_files = listed - on_disk
        unlisted_files = on_disk - listed
        if missing_files:
            problems.append(f"{folder}: {sum(missing_files.values())} listed by IMAP without a file: "
                            f"{list(missing_files)[:5]}")
        if unlisted_files:
            names = [n for s, tok, n in on_disk_rows if (s, tok) in unlisted_files]
            problems.append(f"{folder}: {sum(unlisted_files.values())} files in cur/ or new/ IMAP does not list: "
                            f"{names[:5]}")
    # 3. nothing acknowledged is missing; nothing is there twice
    where: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for folder, rows in view.items():
        for uid, _, tok in rows:
            where[tok].append((folder, uid))
    in_flight = {tok: op for op, tok in ledger.in_flight.values()}
    for tok, (folder, uid) in ledger.acked.items():
        found = where.get(tok, [])
        if tok in in_flight and in_flight[tok] == "move":
            ok = len(found) == 1 and found[0][0] in ("INBOX", "Archive")
        elif uid is not None:
            ok = found == [(folder, uid)]
        else:
            ok = len(found) == 1 and found[0][0] == folder
        if not ok:
            problems.append(f"acknowledged {tok} ({folder} uid {uid}, in flight: {in_flight.get(tok)}) "
                            f"is at {found}")
    for tok, found in where.items():
        if len(found) > 1:
            problems.append(f"{tok} is there {len(found)} times: {found}")
    # an APPEND in flight at the kill may or may not be there, but at most once
    for i in range(5):
        if len(where.get(f"seed{i}", [])) != 1:
            problems.append(f"seed{i} at {where.get(f'seed{i}')}")
    assert not problems, (f"{len(problems)} problems after kill -9 at {kill_at:.2f}s "
                          f"({ledger.ops}, in flight {ledger.in_flight}):\n" + "\n".join(problems[:40]))

    print(f"kill -9 at {kill_at:.2f}s: {dict(ledger.ops)} acknowledged, in flight {ledger.in_flight}; "
          f"after restart {sum(len(r) for r in view.values())} messages in {len(view)} folders")
    # 4. the store goes on: a new APPEND gets a UID above every listed one
    with client(t) as c:
        info = c.select_folder("INBOX")
        top = max([r[0] for r in view["INBOX"]] or [0])
        assert info[b"UIDNEXT"] > top, (info[b"UIDNEXT"], top)
        resp = c.append("INBOX", msg("after-restart", 2))
        new_uid = int(re.search(rb"APPENDUID \d+ (\d+)", resp).group(1))
        assert new_uid > top, (new_uid, top)
