#!/usr/bin/env python3
"""LDAP search load for bench/ldap: the same searches against any LDAPv3 server.

    ldapload.py run --port P --base DN --bind-dn DN --password PW --people N
                    --sessions S --seconds T --procs K
    ldapload.py ldif --base DN --domain D --people N --password PW     (slapd seed, stdout)

`run`: S sessions spread over K processes, each bound once (simple bind), then searching
back to back, one request in flight per session (as a mail client does), for T seconds.
Requests are BER built once per query and written with raw sockets; answers are framed
by their BER length and only the op tag and result code are read, so the generator
spends little CPU per search. The mix, alternating:
  - lookup: (mail=pNNNNN@D) under the base, attributes cn mail (one entry);
  - complete: (|(cn=Person NNNN*)(mail=pNNNN*)(givenName=pNNNN*)(sn=NNNN*)), the way
    Thunderbird completes a name typed into the To field, attributes cn mail (ten entries).
Prints one line: RESULT searches_per_s=… entries_per_s=… errors=… gen_cores=…
"""
import argparse
import os
import random
import resource
import selectors
import socket
import sys
import time
from multiprocessing import Process, Queue


def ber_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + ber_len(len(content)) + content


def integer(n, tag=0x02):
    return tlv(tag, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def octets(s, tag=0x04):
    return tlv(tag, s.encode() if isinstance(s, str) else s)


def message(msgid, op):
    return tlv(0x30, integer(msgid) + op)


def bind_request(msgid, dn, password):
    return message(msgid, tlv(0x60, integer(3) + octets(dn) + octets(password, 0x80)))


def equality(attr, value):
    return tlv(0xA3, octets(attr) + octets(value))


def initial(attr, prefix):
    return tlv(0xA4, octets(attr) + tlv(0x30, octets(prefix, 0x80)))


def search_request(msgid, base, flt, attrs):
    body = (octets(base) + integer(2, 0x0A) + integer(0, 0x0A) + integer(0) + integer(0) + tlv(0x01, b"\x00")
            + flt + tlv(0x30, b"".join(octets(a) for a in attrs)))
    return message(msgid, tlv(0x63, body))


def queries(base, domain, people, count, seed):
    """`count` pre-encoded searches (message id 2), alternating lookup and completion."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        n = rnd.randrange(people)
        if i % 2 == 0:
            flt = equality("mail", "p%05d@%s" % (n, domain))
        else:
            stem = "%04d" % (n // 10)
            flt = tlv(0xA1, initial("cn", "Person " + stem) + initial("mail", "p" + stem)
                      + initial("givenName", "p" + stem) + initial("sn", stem))
        out.append(search_request(2, base, flt, ["cn", "mail"]))
    return out


class Session:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.entries = 0

    def messages(self):
        """Whole BER messages at the front of the buffer: (op tag, result code or None)."""
        while len(self.buf) >= 2:
            first = self.buf[1]
            if first < 0x80:
                head, length = 2, first
            else:
                k = first & 0x7F
                if len(self.buf) < 2 + k:
                    return
                head, length = 2 + k, int.from_bytes(self.buf[2:2 + k], "big")
            if len(self.buf) < head + length:
                return
            msg = bytes(self.buf[head:head + length])
            del self.buf[:head + length]
            # messageID INTEGER, then the protocol op
            pos = 2 + msg[1]
            op = msg[pos]
            code = None
            if op in (0x61, 0x65):  # bindResponse, searchResultDone: LDAPResult first is ENUMERATED
                lpos = pos + 1
                lb = msg[lpos]
                lpos += 1 + (lb & 0x7F if lb >= 0x80 else 0)
                code = msg[lpos + 2]
            yield op, code


def connect(port, bind_dn, password):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(bind_request(1, bind_dn, password))
    sess = Session(s)
    while True:
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed during bind")
        sess.buf += data
        for op, code in sess.messages():
            if op == 0x61:
                if code != 0:
                    raise ConnectionError("bind failed with result %d" % code)
                s.setblocking(False)
                return sess


def worker(args, sessions, seed, out):
    reqs = queries(args.base, args.domain, args.people, 2000, seed)
    sel = selectors.DefaultSelector()
    live = []
    errors = 0
    for _ in range(sessions):
        try:
            live.append(connect(args.port, args.bind_dn, args.password))
        except (OSError, ConnectionError) as e:
            errors += 1
            print("session error: %s" % e, file=sys.stderr)
    searches = entries = 0
    k = 0
    start = time.monotonic()
    deadline = start + args.seconds
    for sess in live:
        sel.register(sess.sock, selectors.EVENT_READ, sess)
        sess.sock.send(reqs[k % len(reqs)])
        k += 1
    while live and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            sess = key.data
            try:
                data = sess.sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError as e:
                data = b""
                print("session error: %s" % e, file=sys.stderr)
            if not data:
                errors += 1
                sel.unregister(sess.sock)
                live.remove(sess)
                continue
            sess.buf += data
            for op, code in sess.messages():
                if op == 0x64:
                    entries += 1
                elif op == 0x65:
                    if code == 0:
                        searches += 1
                    else:
                        errors += 1
                    if time.monotonic() < deadline:
                        sess.sock.send(reqs[k % len(reqs)])
                        k += 1
    elapsed = time.monotonic() - start
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.put((searches, entries, errors, elapsed, ru.ru_utime + ru.ru_stime))
    for sess in live:
        sess.sock.close()


def run(args):
    procs = max(1, min(args.procs, args.sessions))
    out = Queue()
    per = [args.sessions // procs + (1 if i < args.sessions % procs else 0) for i in range(procs)]
    ps = [Process(target=worker, args=(args, n, 1000 + i, out)) for i, n in enumerate(per)]
    for p in ps:
        p.start()
    results = [out.get(timeout=args.seconds + 120) for _ in ps]
    for p in ps:
        p.join(30)
    searches = sum(r[0] for r in results)
    entries = sum(r[1] for r in results)
    errors = sum(r[2] for r in results)
    elapsed = max(r[3] for r in results)
    cpu = sum(r[4] for r in results)
    print("RESULT searches_per_s=%.1f entries_per_s=%.1f searches=%d errors=%d gen_cores=%.2f" % (
        searches / elapsed, entries / elapsed, searches, errors, cpu / elapsed))


def ldif(args):
    w = sys.stdout.write
    dc = args.domain.split(".")
    w("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: %s\n\n" % (args.base, dc[0], args.domain))
    w("dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n" % args.base)
    for i in range(args.people):
        w("dn: uid=p%05d,ou=people,%s\nobjectClass: inetOrgPerson\nuid: p%05d\ncn: Person %05d\nsn: %05d\n"
          "givenName: Person\ndisplayName: Person %05d\nmail: p%05d@%s\nuserPassword: %s\n\n"
          % (i, args.base, i, i, i, i, i, args.domain, args.password))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--base", required=True)
    r.add_argument("--domain", required=True)
    r.add_argument("--bind-dn", required=True)
    r.add_argument("--password", required=True)
    r.add_argument("--people", type=int, required=True)
    r.add_argument("--sessions", type=int, default=10)
    r.add_argument("--seconds", type=float, default=10)
    r.add_argument("--procs", type=int, default=os.cpu_count() or 2)
    g = sub.add_parser("ldif")
    g.add_argument("--base", required=True)
    g.add_argument("--domain", required=True)
    g.add_argument("--people", type=int, required=True)
    g.add_argument("--password", required=True)
    args = ap.parse_args()
    if args.cmd == "run":
        if not (0 < args.seconds <= 300 and 0 < args.sessions <= 10000):
            sys.exit("seconds is bounded at 300, sessions at 10000")
        run(args)
    else:
        ldif(args)


if __name__ == "__main__":
    main()
