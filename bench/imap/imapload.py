#!/usr/bin/env python3
"""IMAP load generator and helpers for bench/imap (stdlib only, loopback only).

    imapload.py gen --count N --out DIR
        N deterministic messages (1-24 KiB, LF line ends, the Return-Path/Received
        headers an MTA prepends) as DIR/NNNNN.eml; every third one is marked seen
        (DIR/seen lists them)
    imapload.py fill-maildir --msgs DIR --maildir PATH [--owner USER]
        the messages as Maildir files in PATH/cur (":2,S" for the seen ones, ":2," else)
    imapload.py fill-imap --port P --users U1,U2,... --password PW --msgs DIR [--host H]
        APPEND every message to each user's INBOX (\\Seen for the seen ones); prints counts
    imapload.py run --port P --users U1,... --password PW --sessions S --seconds T
                    [--procs N] [--host H] [--sources 127.0.1.1-20]
                    [--cycles 10]
        S concurrent sessions (threads spread over N processes), each looping: connect,
        LOGIN, then --cycles rounds of (SELECT INBOX, FETCH headers of 50 messages, FETCH
        5 bodies, SEARCH, STORE flags, IDLE + DONE), LOGOUT. Prints one line:
        RESULT ops=.. rounds=.. errors=.. seconds=.. ops_per_s=.. rounds_per_s=..
               gen_cpu_s=.. gen_cores=.. per_op_ms=cmd:mean,...
    imapload.py latency --port P --users U1 --password PW [--repeat 20]
        one session, each command of the load alone --repeat times: prints
        "LATENCY name=ms ..." (mean milliseconds per command)
    imapload.py idle --port P --users U1,... --password PW --count N [--sources ...]
                     [--connect-secs 180] [--hold-secs 900]
        N sessions: LOGIN, SELECT INBOX, IDLE, then hold. Prints
        "READY established=N failed=F elapsed=S" and holds until SIGTERM or --hold-secs.

Every loop is bounded in count and time; every socket has a timeout.
"""
import argparse
import ipaddress
import multiprocessing
import os
import random
import re
import resource
import selectors
import signal
import socket
import sys
import threading
import time

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu report invoice meeting budget "
         "release server mail queue folder flag search idle berth dovecot").split()
SENDERS = ["ann@one.test", "ben@two.test", "carl@three.test", "dora@four.test", "eve@five.test"]


def assert_loopback(host):
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("refusing non-loopback target %s" % host)


def sources_of(spec):
    """'127.0.1.1-20' -> ['127.0.1.1', ..., '127.0.1.20']; '' -> [None]."""
    if not spec:
        return [None]
    base, _, last = spec.partition("-")
    a = ipaddress.ip_address(base)
    assert a.is_loopback, spec
    n = int(last) if last else 1
    first = int(str(a).rsplit(".", 1)[1])
    return [str(a).rsplit(".", 1)[0] + "." + str(first + i) for i in range(n - first + 1)] if last else [str(a)]


# ------------------------------------------------------------------ messages


def gen(count, out):
    os.makedirs(out, exist_ok=True)
    seen = []
    for i in range(count):
        rnd = random.Random(i)
        size = rnd.choice([1, 2, 2, 4, 4, 8, 16, 24]) * 1024
        subj = " ".join(rnd.choice(WORDS) for _ in range(4))
        frm = SENDERS[i % len(SENDERS)]
        day = 1 + i % 28
        head = ("Return-Path: <%s>\nReceived: from client.bench (localhost [127.0.0.1])\n"
                "\tby mx.bench.test with ESMTP id B%06d\n\tfor <user@test.local>; "
                "Wed, %d Oct 2026 10:00:00 +0000\n"
                "From: Sender %d <%s>\nTo: <user@test.local>\nSubject: %s %d\n"
                "Date: Wed, %d Oct 2026 10:00:00 +0000\nMessage-ID: <m%d@bench.test>\n"
                "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n") % (
                    frm, i, day, i % 5, frm, subj, i, day, i)
        body = []
        total = len(head)
        for _ in range(100000):
            if total >= size:
                break
            line = " ".join(rnd.choice(WORDS) for _ in range(11))
            body.append(line)
            total += len(line) + 1
        with open(os.path.join(out, "%05d.eml" % i), "wb") as f:
            f.write((head + "\n".join(body) + "\n").encode())
        if i % 3 == 0:
            seen.append(i)
    with open(os.path.join(out, "seen"), "w") as f:
        f.write("\n".join(str(i) for i in seen) + "\n")
    print("generated %d messages in %s" % (count, out))


def messages(d):
    names = sorted(n for n in os.listdir(d) if n.endswith(".eml"))
    seen = set()
    try:
        with open(os.path.join(d, "seen")) as f:
            seen = {int(x) for x in f.read().split()}
    except OSError:
        pass
    for n in names:
        i = int(n.split(".")[0])
        with open(os.path.join(d, n), "rb") as f:
            yield i, f.read(), i in seen


def fill_maildir(msgs, maildir, owner):
    import pwd
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    n = 0
    base = int(time.time()) - 86400
    for i, data, seen in messages(msgs):
        name = "%d.M%dP1.bench:2,%s" % (base + i, i, "S" if seen else "")
        with open(os.path.join(maildir, "cur", name), "wb") as f:
            f.write(data)
        n += 1
    if owner:
        pw = pwd.getpwnam(owner)
        for root, dirs, files in os.walk(os.path.dirname(maildir.rstrip("/"))):
            for x in dirs + files:
                os.chown(os.path.join(root, x), pw.pw_uid, pw.pw_gid)
        os.chown(os.path.dirname(maildir.rstrip("/")), pw.pw_uid, pw.pw_gid)
    print("wrote %d files to %s/cur" % (n, maildir))


# ------------------------------------------------------------------ a minimal IMAP session


class Conn:
    __slots__ = ("sock", "buf", "n", "tagp")

    def __init__(self, host, port, source=None, timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0
        self.tagp = b"Zq%x" % random.randrange(1 << 30)
        self.line()  # greeting

    def line(self):
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + 2:]
                return out
            c = self.sock.recv(262144)
            if not c:
                raise EOFError("closed")
            self.buf += c
        raise RuntimeError("line too long")

    def cmd(self, text):
        """Send one command; read through its tagged reply. Returns (ok, bytes before it)."""
        self.n += 1
        tag = self.tagp + b"%d" % self.n
        self.sock.sendall(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        """Read through the tagged reply `tag`: (ok, everything before it)."""
        head = tag + b" "
        needle = b"\r\n" + head
        scanned = 0
        start = 0 if self.buf.startswith(head) else -1
        for _ in range(1000000):
            if start < 0:
                if self.buf.startswith(head):
                    start = 0
                else:
                    i = self.buf.find(needle, max(0, scanned - len(needle)))
                    if i >= 0:
                        start = i + 2
            if start >= 0:
                j = self.buf.find(b"\r\n", start)
                if j >= 0:
                    before, status = self.buf[:start], self.buf[start:j]
                    self.buf = self.buf[j + 2:]
                    return status.split(b" ", 2)[1:2] == [b"OK"], before
            scanned = len(self.buf)
            c = self.sock.recv(262144)
            if not c:
                raise EOFError("closed")
            self.buf += c
        raise RuntimeError("no tagged reply")

    def idle_round(self):
        self.n += 1
        tag = self.tagp + b"%d" % self.n
        self.sock.sendall(tag + b" IDLE\r\n")
        for _ in range(1000):
            l = self.line()
            if l.startswith(b"+"):
                break
        else:
            raise RuntimeError("no IDLE continuation")
        self.sock.sendall(b"DONE\r\n")
        return self.until(tag)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


SEARCHES = [b"SEARCH FROM ben@two.test", b"SEARCH SUBJECT invoice", b"SEARCH UNSEEN", b"SEARCH TEXT dovecot",
            b"SEARCH LARGER 10000", b"SEARCH SINCE 10-Oct-2026"]


def session_loop(host, port, user, password, source, deadline, seed, stats, lock, cycles):
    rnd = random.Random(seed)
    local = {}
    ops = rounds = errors = 0

    def timed(name, fn):
        nonlocal ops
        t0 = time.perf_counter()
        ok, data = fn()
        dt = time.perf_counter() - t0
        s = local.setdefault(name, [0, 0.0])
        s[0] += 1
        s[1] += dt
        ops += 1
        if not ok:
            raise RuntimeError("%s: NO/BAD" % name)
        return data

    for _ in range(1000000):
        if time.monotonic() >= deadline:
            break
        c = None
        try:
            t0 = time.perf_counter()
            c = Conn(host, port, source)
            s = local.setdefault("connect", [0, 0.0])
            s[0] += 1
            s[1] += time.perf_counter() - t0
            timed("login", lambda: c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), password.encode())))
            for _ in range(cycles):
                if time.monotonic() >= deadline:
                    break
                data = timed("select", lambda: c.cmd(b"SELECT INBOX"))
                m = re.search(rb"\* (\d+) EXISTS", data)
                exists = int(m.group(1)) if m else 0
                if exists:
                    a = rnd.randrange(1, max(2, exists - 49))
                    timed("fetch_headers", lambda: c.cmd(
                        b"FETCH %d:%d (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT "
                        b"DATE MESSAGE-ID)])" % (a, min(exists, a + 49))))
                    seqs = b",".join(b"%d" % rnd.randrange(1, exists + 1) for _ in range(5))
                    timed("fetch_bodies", lambda: c.cmd(b"FETCH " + seqs + b" BODY.PEEK[]"))
                    timed("search", lambda: c.cmd(rnd.choice(SEARCHES)))
                    n = rnd.randrange(1, exists + 1)
                    timed("store", lambda: c.cmd(
                        b"STORE %d %sFLAGS.SILENT (\\Flagged)" % (n, rnd.choice([b"+", b"-"]))))
                timed("idle", c.idle_round)
                rounds += 1
            timed("logout", lambda: c.cmd(b"LOGOUT"))
        except Exception as e:
            errors += 1
            # Which command failed and how, for the report: a server fault and a generator
            # timeout at the end of the window look the same in a count.
            if errors <= 3:
                print("session error: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
            time.sleep(0.05)
        finally:
            if c is not None:
                c.close()
    with lock:
        stats["ops"] = stats.get("ops", 0) + ops
        stats["rounds"] = stats.get("rounds", 0) + rounds
        stats["errors"] = stats.get("errors", 0) + errors
        for k, (cnt, tot) in local.items():
            a = stats.setdefault("lat_" + k, [0, 0.0])
            a[0] += cnt
            a[1] += tot


def proc_main(args, indices, deadline, q):
    users = args.users.split(",")
    sources = sources_of(args.sources)
    stats, lock = {}, threading.Lock()
    threads = []
    for i in indices:
        th = threading.Thread(target=session_loop, daemon=True, args=(
            args.host, args.port, users[i % len(users)], args.password, sources[i % len(sources)], deadline,
            i * 7919, stats, lock, args.cycles))
        threads.append(th)
        th.start()
    for th in threads:
        th.join(timeout=max(1, deadline - time.monotonic()) + 60)
    r = resource.getrusage(resource.RUSAGE_SELF)
    stats["cpu"] = r.ru_utime + r.ru_stime
    q.put(stats)


def run(args):
    assert_loopback(args.host)
    procs = args.procs or min(args.sessions, max(2, os.cpu_count() or 2))
    per = [list(range(p, args.sessions, procs)) for p in range(procs)]
    q = multiprocessing.Queue()
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    ps = [multiprocessing.Process(target=proc_main, args=(args, idx, deadline, q)) for idx in per if idx]
    for p in ps:
        p.start()
    results = []
    for _ in ps:
        try:
            results.append(q.get(timeout=args.seconds + 120))
        except Exception:
            break
    for p in ps:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    elapsed = time.monotonic() - t0
    tot = {"ops": 0, "rounds": 0, "errors": 0, "cpu": 0.0}
    lat = {}
    for r in results:
        for k in ("ops", "rounds", "errors", "cpu"):
            tot[k] += r.get(k, 0)
        for k, v in r.items():
            if k.startswith("lat_"):
                a = lat.setdefault(k[4:], [0, 0.0])
                a[0] += v[0]
                a[1] += v[1]
    per_op = ",".join("%s:%.2f" % (k, 1000 * v[1] / v[0]) for k, v in sorted(lat.items()) if v[0])
    print("RESULT ops=%d rounds=%d errors=%d seconds=%.2f ops_per_s=%.1f rounds_per_s=%.1f gen_cpu_s=%.2f "
          "gen_cores=%.2f procs=%d per_op_ms=%s" % (
              tot["ops"], tot["rounds"], tot["errors"], elapsed, tot["ops"] / elapsed, tot["rounds"] / elapsed,
              tot["cpu"], tot["cpu"] / elapsed, len(ps), per_op))
    return 0 if results and tot["ops"] else 1


# ------------------------------------------------------------------ fill over IMAP


def fill_imap(args):
    assert_loopback(args.host)
    msgs = list(messages(args.msgs))
    users = args.users.split(",")
    done = {"n": 0, "err": []}
    lock = threading.Lock()

    def one(user):
        c = Conn(args.host, args.port, timeout=60)
        ok, _ = c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), args.password.encode()))
        if not ok:
            with lock:
                done["err"].append("%s: LOGIN refused" % user)
            return
        for i, data, seen in msgs:
            wire = data.replace(b"\n", b"\r\n")
            c.n += 1
            tag = c.tagp + b"%d" % c.n
            flags = b"(\\Seen) " if seen else b""
            c.sock.sendall(tag + b" APPEND INBOX " + flags + b"{%d+}\r\n" % len(wire) + wire + b"\r\n")
            ok, _ = c.until(tag)
            if not ok:
                with lock:
                    done["err"].append("%s: APPEND %d refused" % (user, i))
                break
            with lock:
                done["n"] += 1
        c.cmd(b"LOGOUT")
        c.close()

    ths = [threading.Thread(target=one, args=(u,)) for u in users]
    for t in ths:
        t.start()
    for t in ths:
        t.join(timeout=1800)
    print("appended %d messages for %d users%s" % (done["n"], len(users),
                                                   ("; errors: " + "; ".join(done["err"][:5])) if done["err"] else ""))
    return 1 if done["err"] else 0


# ------------------------------------------------------------------ single-session latency

LATENCY_CMDS = [
    ("noop", b"NOOP"), ("select", b"SELECT INBOX"),
    ("fetch_50_headers", b"FETCH 1:50 (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT "
                         b"DATE MESSAGE-ID)])"),
    ("fetch_5_bodies", b"FETCH 1,3,5,7,9 BODY.PEEK[]"), ("store", b"STORE 2 +FLAGS.SILENT (\\Flagged)"),
] + [("search_" + c.split(b" ")[1].lower().decode(), c) for c in SEARCHES] + [("idle_done", None)]


def latency(args):
    assert_loopback(args.host)
    user = args.users.split(",")[0]
    c = Conn(args.host, args.port)
    ok, _ = c.cmd(b'LOGIN "%s" "%s"' % (user.encode(), args.password.encode()))
    if not ok:
        sys.exit("LOGIN refused")
    c.cmd(b"SELECT INBOX")
    out = []
    for name, cmd in LATENCY_CMDS:
        c.idle_round() if cmd is None else c.cmd(cmd)  # once unmeasured
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            ok, _ = c.idle_round() if cmd is None else c.cmd(cmd)
            if not ok:
                sys.exit("%s refused" % name)
        out.append("%s=%.2f" % (name, 1000 * (time.perf_counter() - t0) / args.repeat))
    c.cmd(b"LOGOUT")
    c.close()
    print("LATENCY " + " ".join(out))
    return 0


# ------------------------------------------------------------------ idle sessions


def idle(args):
    assert_loopback(args.host)
    users = args.users.split(",")
    sources = sources_of(args.sources)
    sel = selectors.DefaultSelector()
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__("flag", True))
    signal.signal(signal.SIGINT, lambda *a: stop.__setitem__("flag", True))
    t0 = time.monotonic()
    established, failed, pending = [], 0, {}
    started = 0
    end = t0 + args.connect_secs
    for _ in range(10000000):
        if stop["flag"] or time.monotonic() > end:
            break
        while started < args.count and len(pending) < args.parallel:
            i = started
            started += 1
            s = socket.socket()
            src = sources[i % len(sources)]
            if src:
                s.bind((src, 0))
            s.setblocking(False)
            try:
                s.connect_ex((args.host, args.port))
            except OSError:
                failed += 1
                s.close()
                continue
            u = users[i % len(users)]
            pending[s] = [b"", ('a LOGIN "%s" "%s"\r\nb SELECT INBOX\r\nc IDLE\r\n' % (u, args.password)).encode(),
                          time.monotonic()]
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
        if not pending and started >= args.count:
            break
        for key, ev in sel.select(timeout=0.5):
            s = key.fileobj
            st = pending.get(s)
            if st is None:
                continue
            try:
                if ev & selectors.EVENT_WRITE and st[1]:
                    n = s.send(st[1])
                    st[1] = st[1][n:]
                    if not st[1]:
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    c = s.recv(65536)
                    if not c:
                        raise EOFError
                    st[0] += c
                    if b"\r\n+ " in st[0] or st[0].endswith(b"\r\n+\r\n"):
                        sel.unregister(s)
                        del pending[s]
                        established.append(s)
                    elif re.search(rb"\r\n[abc] (NO|BAD)", st[0]) or b"* BYE" in st[0]:
                        raise EOFError
            except (OSError, EOFError):
                sel.unregister(s)
                del pending[s]
                s.close()
                failed += 1
        now = time.monotonic()
        for s, st in list(pending.items()):
            if now - st[2] > 60:
                sel.unregister(s)
                del pending[s]
                s.close()
                failed += 1
    for s in list(pending):
        s.close()
        failed += 1
    print("READY established=%d failed=%d elapsed=%.1f" % (len(established), failed, time.monotonic() - t0), flush=True)
    hold_end = time.monotonic() + args.hold_secs
    for _ in range(100000):
        if stop["flag"] or time.monotonic() > hold_end:
            break
        time.sleep(0.2)
    alive = 0
    for s in established:
        try:
            s.setblocking(False)
            try:
                alive += 1 if s.recv(1, socket.MSG_PEEK) != b"" else 0
            except BlockingIOError:
                alive += 1
            s.close()
        except OSError:
            pass
    print("CLOSED alive=%d" % alive, flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--out", required=True)
    f = sub.add_parser("fill-maildir")
    f.add_argument("--msgs", required=True)
    f.add_argument("--maildir", required=True)
    f.add_argument("--owner", default="")
    for name in ("fill-imap", "run", "idle", "latency"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--users", required=True)
        p.add_argument("--password", required=True)
        if name == "fill-imap":
            p.add_argument("--msgs", required=True)
        if name == "run":
            p.add_argument("--sessions", type=int, required=True)
            p.add_argument("--seconds", type=float, default=10)
            p.add_argument("--procs", type=int, default=0)
            p.add_argument("--sources", default="")
            p.add_argument("--cycles", type=int, default=10)
        if name == "latency":
            p.add_argument("--repeat", type=int, default=20)
        if name == "idle":
            p.add_argument("--count", type=int, required=True)
            p.add_argument("--parallel", type=int, default=50)
            p.add_argument("--sources", default="")
            p.add_argument("--connect-secs", type=float, default=180)
            p.add_argument("--hold-secs", type=float, default=900)
    args = ap.parse_args()
    if args.cmd == "gen":
        return gen(args.count, args.out) or 0
    if args.cmd == "fill-maildir":
        return fill_maildir(args.msgs, args.maildir, args.owner) or 0
    if args.cmd == "fill-imap":
        return fill_imap(args)
    if args.cmd == "run":
        if args.seconds > 600:
            sys.exit("--seconds is bounded at 600")
        return run(args)
    if args.cmd == "idle":
        return idle(args)
    if args.cmd == "latency":
        if not 1 <= args.repeat <= 1000:
            sys.exit("--repeat is bounded at 1000")
        return latency(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
