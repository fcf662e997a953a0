#!/usr/bin/env python3
"""Load generator and helpers for bench/smtp-relay (stdlib only).

    relay_load.py run --host H --port P --sessions S --messages M --size BYTES
                      --mail-from ADDR --rcpt ADDR --sink-log FILE
                      [--auth USER:PASS] [--procs N] [--per-conn K]
                      [--limit-secs T] [--no-pipelining]
    relay_load.py sink-count FILE             the last "mesg=N" of an `smtp-sink -c` log
    relay_load.py smoke --host H --port P --mail-from A --rcpt B [--auth USER:PASS]
                                              one message, prints the final reply
    relay_load.py dump-check FILE RCPT        what the last message to RCPT in an
                                              `smtp-sink -D` dump carried: one line

`run`: S SMTP sessions spread over N worker processes (asyncio inside each). Every
session connects, reads the 220, sends EHLO and (with --auth) AUTH PLAIN with an initial
response, then waits at a barrier: connection setup and AUTH are outside the timed window.
When every session is ready the clock starts (t0) and the sessions send the M messages
(split evenly) on their connection: MAIL FROM, RCPT TO and DATA pipelined when the server
offers PIPELINING (RFC 2920), then the body and ".", one message at a time per session.
With --per-conn K a session QUITs and reconnects (EHLO, AUTH again, inside the timed
window) after every K messages; 0 keeps one connection for all of them.
The clock stops when `smtp-sink -c` (whose log is --sink-log) has counted as many new
messages as the server accepted with 250, bounded by --limit-secs from t0.

Prints human lines on stderr and one machine line on stdout:
    RESULT accepted=N rejected=N ready=S/S submit_s=F e2e_s=F sink=N e2e_rate=F
           submit_rate=F timeout=0|1 error="first error or empty"
Messages are exactly BYTES long (headers + body, CRLF line ends, before dot-stuffing;
no line starts with "."), each with its own Message-ID.
"""
import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import re
import socket
import sys
import time

MESG_RE = re.compile(rb"mesg=(\d+)")


# ---------------------------------------------------------------- sink counter
class SinkCounter:
    """Reads the running counter of `smtp-sink -c` ("sess=A quit=B mesg=N\\r", flushed
    per event) from the tail of its log file."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")

    def count(self):
        self.f.seek(0, os.SEEK_END)
        size = self.f.tell()
        self.f.seek(max(0, size - 256))
        tail = self.f.read()
        found = MESG_RE.findall(tail)
        # the last record may be cut short while smtp-sink writes it: take the largest
        return max((int(x) for x in found), default=0)


# ---------------------------------------------------------------- message
def make_message(size, mail_from, rcpt, tag):
    """A message of exactly `size` bytes whose Message-ID holds `tag` (fixed width)."""
    head = ("From: Bench Sender <%s>\r\nTo: <%s>\r\nSubject: smtp-relay bench\r\n"
            "Date: Tue, 25 Nov 2026 12:00:00 +0000\r\nMessage-ID: <%s@bench.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            % (mail_from, rcpt, tag))
    body_len = size - len(head)          # body including its final CRLF
    if body_len < 2:
        raise SystemExit("--size %d is smaller than the headers (%d bytes)" % (size, len(head)))
    text = ("The quick brown fox jumps over the lazy dog 0123456789 " * 2)[:76]
    full, rem = divmod(body_len, 78)
    lines = [text + "\r\n"] * full
    if rem == 1:                          # no 1-byte line: make one line a byte longer
        lines[-1] = text + "x\r\n"
    elif rem >= 2:
        lines.append(text[:rem - 2] + "\r\n")
    msg = (head + "".join(lines)).encode()
    assert len(msg) == size, (len(msg), size)
    return msg


# ---------------------------------------------------------------- one session
class SMTPError(Exception):
    pass


async def reply(reader):
    """One (possibly multiline) reply -> (code, text of the last line)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise SMTPError("connection closed by server" + (" after %r" % lines[-1] if lines else ""))
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    last = lines[-1].decode(errors="replace").strip()
    try:
        code = int(last[:3])
    except ValueError:
        raise SMTPError("bad reply %r" % last)
    return code, last, lines


class Session:
    def __init__(self, cfg, idx, n_msgs):
        self.cfg = cfg
        self.idx = idx
        self.n = n_msgs
        self.r = self.w = None
        self.pipelining = False
        self.accepted = 0
        self.rejected = 0
        self.error = ""
        self.t_last = 0.0

    async def connect(self):
        c = self.cfg
        self.r, self.w = await asyncio.open_connection(c.host, c.port, limit=1 << 16)
        code, text, _ = await reply(self.r)
        if code != 220:
            raise SMTPError("greeting: %s" % text)
        self.w.write(b"EHLO load.bench.test\r\n")
        code, text, lines = await reply(self.r)
        if code != 250:
            raise SMTPError("EHLO: %s" % text)
        exts = [ln[4:].strip().upper() for ln in lines]
        self.pipelining = (not c.no_pipelining) and any(e == b"PIPELINING" for e in exts)
        if c.auth:
            user, pw = c.auth.split(":", 1)
            tok = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode())
            self.w.write(b"AUTH PLAIN " + tok + b"\r\n")
            code, text, _ = await reply(self.r)
            if code != 235:
                raise SMTPError("AUTH: %s" % text)

    async def quit(self):
        try:
            self.w.write(b"QUIT\r\n")
            await asyncio.wait_for(reply(self.r), 5)
        except Exception:
            pass
        try:
            self.w.close()
        except Exception:
            pass

    def fail(self, what):
        self.rejected += 1
        if not self.error:
            self.error = what

    async def one_message(self, seq):
        c = self.cfg
        env = b"MAIL FROM:<" + c.mail_from.encode() + b">\r\n"
        rc = b"RCPT TO:<" + c.rcpt.encode() + b">\r\n"
        tag = "%s.%06d.%06d" % (c.run_tag, self.idx, seq)
        data = c.template.replace(c.template_tag, tag.encode()) + b".\r\n"
        if self.pipelining:
            self.w.write(env + rc + b"DATA\r\n")
            m = await reply(self.r)
            r = await reply(self.r)
            d = await reply(self.r)
        else:
            self.w.write(env)
            m = await reply(self.r)
            if m[0] != 250:
                self.fail("MAIL: %s" % m[1])
                await self.rset()
                return
            self.w.write(rc)
            r = await reply(self.r)
            if r[0] not in (250, 251):
                self.fail("RCPT: %s" % r[1])
                await self.rset()
                return
            self.w.write(b"DATA\r\n")
            d = await reply(self.r)
        if d[0] == 421 or m[0] == 421 or r[0] == 421:
            raise SMTPError("421: %s" % (d[1] if d[0] == 421 else (m[1] if m[0] == 421 else r[1])))
        if d[0] != 354:
            bad = m if m[0] != 250 else (r if r[0] not in (250, 251) else d)
            self.fail({id(m): "MAIL", id(r): "RCPT", id(d): "DATA"}[id(bad)] + ": " + bad[1])
            await self.rset()
            return
        self.w.write(data)
        e = await reply(self.r)
        if e[0] == 250 and m[0] == 250 and r[0] in (250, 251):
            self.accepted += 1
            self.t_last = time.monotonic()
        else:
            self.fail("end of DATA: %s" % e[1])
            if e[0] == 421:
                raise SMTPError("421: %s" % e[1])

    async def rset(self):
        self.w.write(b"RSET\r\n")
        code, text, _ = await reply(self.r)
        if code == 421:
            raise SMTPError("421: %s" % text)

    async def send_all(self):
        c = self.cfg
        seq = 0
        try:
            while seq < self.n:
                if self.r is None:
                    await self.connect()
                await self.one_message(seq)
                seq += 1
                if c.per_conn and seq % c.per_conn == 0 and seq < self.n:
                    await self.quit()
                    self.r = self.w = None
        except (OSError, SMTPError, asyncio.IncompleteReadError) as e:
            # the rest of this session's messages are not sent (counted as n - accepted)
            if not self.error:
                self.error = "session %d: %s" % (self.idx, e)
        if self.r is not None:
            await self.quit()


# ---------------------------------------------------------------- worker process
def worker(wid, cfg, plan, q, start_ev, stop_at):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sessions = [Session(cfg, idx, n) for idx, n in plan]

    async def setup_one(s):
        try:
            await asyncio.wait_for(s.connect(), cfg.limit_secs)
            return True
        except Exception as e:
            s.error = "session %d setup: %s" % (s.idx, e or type(e).__name__)
            s.rejected = s.n
            s.r = s.w = None
            return False

    oks = loop.run_until_complete(asyncio.gather(*(setup_one(s) for s in sessions)))
    q.put(("ready", wid, sum(oks), [s.error for s in sessions if s.error][:1]))
    if not start_ev.wait(cfg.limit_secs):
        q.put(("done", wid, 0, sum(s.n for s in sessions), "start never came", 0.0))
        return
    live = [s for s, ok in zip(sessions, oks) if ok]

    async def run_all():
        remaining = max(1.0, stop_at.value - time.monotonic())
        try:
            await asyncio.wait_for(asyncio.gather(*(s.send_all() for s in live)), remaining)
        except asyncio.TimeoutError:
            for s in live:
                if not s.error:
                    s.error = "session %d: time limit" % s.idx

    loop.run_until_complete(run_all())
    acc = sum(s.accepted for s in sessions)
    rej = sum(s.n for s in sessions) - acc
    err = next((s.error for s in sessions if s.error), "")
    t_last = max((s.t_last for s in sessions), default=0.0)
    q.put(("done", wid, acc, rej, err, t_last))


class Cfg:
    pass


def cmd_run(a):
    cfg = Cfg()
    for k in ("host", "port", "auth", "mail_from", "rcpt", "per_conn", "limit_secs", "no_pipelining"):
        setattr(cfg, k, getattr(a, k))
    cfg.run_tag = "%x" % int(time.time() * 1000)
    cfg.template_tag = b"TAG" + b"#" * (len(cfg.run_tag) + 14 - 3)
    assert len(cfg.template_tag) == len("%s.%06d.%06d" % (cfg.run_tag, 0, 0))
    cfg.template = make_message(a.size, a.mail_from, a.rcpt, cfg.template_tag.decode())

    s_n = a.sessions
    per = [a.messages // s_n + (1 if i < a.messages % s_n else 0) for i in range(s_n)]
    procs = max(1, min(a.procs or os.cpu_count() or 1, s_n))
    plans = [[] for _ in range(procs)]
    for i in range(s_n):
        plans[i % procs].append((i, per[i]))

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    start_ev = ctx.Event()
    stop_at = ctx.Value("d", 0.0)
    counter = SinkCounter(a.sink_log)
    ps = [ctx.Process(target=worker, args=(w, cfg, plans[w], q, start_ev, stop_at), daemon=True)
          for w in range(procs)]
    for p in ps:
        p.start()

    # barrier: every worker has its sessions connected (and authenticated)
    ready, ready_sessions, errors = 0, 0, []
    deadline = time.monotonic() + a.limit_secs
    while ready < procs and time.monotonic() < deadline:
        try:
            kind, wid, n_ok, errs = q.get(timeout=0.5)
        except Exception:
            if any(not p.is_alive() for p in ps):   # a worker died before it was ready
                break
            continue
        if kind == "ready":
            ready += 1
            ready_sessions += n_ok
            errors += errs
    if ready < procs:
        for p in ps:
            p.terminate()
        print("RESULT accepted=0 rejected=%d ready=%d/%d submit_s=0 e2e_s=0 sink=0 e2e_rate=0 "
              "submit_rate=0 timeout=1 error=%s" % (a.messages, ready_sessions, s_n,
                                                     quote("workers not ready in time")))
        return 1
    if errors:
        print("setup: %s" % errors[0], file=sys.stderr)

    base = counter.count()
    t0 = time.monotonic()
    stop_at.value = t0 + a.limit_secs
    start_ev.set()

    done, accepted, rejected, err, t_last = 0, 0, 0, "", t0
    sink = 0
    t_sink = None
    timed_out = False
    while True:
        while True:
            try:
                msg = q.get_nowait()
            except Exception:
                break
            if msg[0] == "done":
                done += 1
                accepted += msg[2]
                rejected += msg[3]
                err = err or msg[4]
                t_last = max(t_last, msg[5])
        now = time.monotonic()
        sink = counter.count() - base
        if done == procs and sink >= accepted:
            t_sink = now
            break
        if now > t0 + a.limit_secs + (5 if done < procs else 0):
            timed_out = True
            break
        time.sleep(0.002)
    for p in ps:
        p.join(5)
        if p.is_alive():
            p.terminate()
    t_end = t_sink if t_sink is not None else time.monotonic()
    submit_s = max(t_last - t0, 1e-9) if accepted else 0.0
    e2e_s = t_end - t0
    e2e_rate = min(sink, accepted) / e2e_s if e2e_s > 0 else 0.0
    submit_rate = accepted / submit_s if accepted else 0.0
    if timed_out and not err:
        err = "sink counted %d of %d accepted within %ss" % (sink, accepted, a.limit_secs)
    print("RESULT accepted=%d rejected=%d ready=%d/%d submit_s=%.3f e2e_s=%.3f sink=%d "
          "e2e_rate=%.1f submit_rate=%.1f timeout=%d error=%s" % (
              accepted, rejected, ready_sessions, s_n, submit_s, e2e_s, sink, e2e_rate,
              submit_rate, 1 if timed_out else 0, quote(err)))
    return 0


def quote(s):
    return '"' + s.replace("\\", "/").replace('"', "'").replace("\n", " ")[:300] + '"'


# ---------------------------------------------------------------- small commands
def cmd_smoke(a):
    """One message, no barrier; prints the final reply (or the error) and exits 0 on 250."""
    cfg = Cfg()
    for k in ("host", "port", "auth", "mail_from", "rcpt"):
        setattr(cfg, k, getattr(a, k))
    cfg.per_conn, cfg.limit_secs, cfg.no_pipelining = 0, 30, False
    cfg.run_tag = "smoke%x" % int(time.time())
    cfg.template_tag = b"TAG" + b"#" * (len(cfg.run_tag) + 14 - 3)
    cfg.template = make_message(a.size, a.mail_from, a.rcpt, cfg.template_tag.decode())
    s = Session(cfg, 0, 1)

    async def go():
        await asyncio.wait_for(s.connect(), 30)
        await asyncio.wait_for(s.send_all(), 30)

    try:
        asyncio.run(go())
    except Exception as e:
        print("smoke: %s" % (e or type(e).__name__))
        return 1
    print("smoke: accepted=%d %s" % (s.accepted, s.error))
    return 0 if s.accepted == 1 else 1


def cmd_dump_check(path, rcpt):
    """The last message for rcpt in an smtp-sink -D dump (each one starts with the
    X-Client-Addr pseudo-header): relay address, EHLO name, DKIM-Signature headers."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace").replace("\r\n", "\n")
    msgs = re.split(r"(?m)^(?=X-Client-Addr: )", text)
    mine = [m for m in msgs if re.search(r"(?mi)^X-Rcpt-Args: <%s>" % re.escape(rcpt), m)]
    if not mine:
        print("no message for %s in the dump" % rcpt)
        return 1
    m = mine[-1]
    head = m.split("\n\n", 1)[0]
    unfolded = re.sub(r"\n[ \t]+", " ", head)
    addr = re.search(r"(?m)^X-Client-Addr: (.*)$", unfolded)
    helo = re.search(r"(?m)^X-Helo-Args: (.*)$", unfolded)
    sigs = re.findall(r"(?mi)^DKIM-Signature:(.*)$", unfolded)
    algs = [(re.search(r"(?:^|;)\s*a=\s*([A-Za-z0-9-]+)", v) or [None, "?"])[1] for v in sigs]
    print("from %s EHLO %s, DKIM-Signature headers: %d%s" % (
        addr.group(1).strip() if addr else "?", helo.group(1).strip() if helo else "?",
        len(sigs), (" (%s)" % ", ".join(algs)) if sigs else ""))
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "dump-check":
        return cmd_dump_check(sys.argv[2], sys.argv[3])
    if len(sys.argv) >= 2 and sys.argv[1] == "sink-count":
        print(SinkCounter(sys.argv[2]).count())
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "smoke"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--mail-from", required=True)
        p.add_argument("--rcpt", required=True)
        p.add_argument("--auth", default="")
        p.add_argument("--size", type=int, default=1024)
        if name == "run":
            p.add_argument("--sessions", type=int, default=20)
            p.add_argument("--messages", type=int, default=2000)
            p.add_argument("--sink-log", required=True)
            p.add_argument("--procs", type=int, default=0)
            p.add_argument("--per-conn", type=int, default=0)
            p.add_argument("--limit-secs", type=float, default=180)
            p.add_argument("--no-pipelining", action="store_true")
    a = ap.parse_args()
    if a.cmd == "smoke":
        return cmd_smoke(a)
    if a.sessions < 1 or a.messages < a.sessions:
        ap.error("need --sessions >= 1 and --messages >= --sessions")
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
