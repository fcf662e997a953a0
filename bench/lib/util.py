#!/usr/bin/env python3
"""Small helpers for bench/smtp-inbound (stdlib only).

    util.py free-ports N                 N distinct free TCP ports on 127.0.0.1 (20000-30000), one a line
    util.py wait-smtp [HOST:]PORT SECS [PID]
                                         wait (bounded) until HOST:PORT (default 127.0.0.1) sends a 220 greeting
    util.py wait-http URL SECS [PID]     wait (bounded) until URL answers 200
      (with PID: give up as soon as that process has exited)
    util.py mem PID                      "procs=1 rss_kib=R pss_kib=P" for one process
    util.py mem-children PID COMM        the same, summed over PID's children named COMM
"""
import os
import socket
import sys
import time
import urllib.request


def free_ports(n):
    """Ports below the ephemeral range (so client sockets never take them meanwhile)."""
    import random
    socks = []
    start = random.randrange(20000, 29000)
    try:
        for port in range(start, start + 1000):
            if len(socks) == n:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
                socks.append(s)
            except OSError:
                s.close()
        for s in socks:
            print(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return 0 if len(socks) == n else 1


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # a zombie has exited too
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_smtp(port, secs, pid=None, host="127.0.0.1"):
    deadline = time.monotonic() + min(secs, 600)
    last = ""
    while time.monotonic() < deadline:
        if not alive(pid):
            print("process %d exited while waiting for %s:%d" % (pid, host, port), file=sys.stderr)
            return 1
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                buf = b""
                while b"\n" not in buf:
                    c = s.recv(1024)
                    if not c:
                        break
                    buf += c
                if buf.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    print(buf.decode(errors="replace").strip())
                    return 0
                last = "greeting %r" % buf[:80]
        except OSError as e:
            last = repr(e)
        time.sleep(0.1)
    print("%s:%d gave no 220 greeting in %ss (%s)" % (host, port, secs, last), file=sys.stderr)
    return 1


def wait_http(url, secs, pid=None):
    deadline = time.monotonic() + min(secs, 600)
    last = ""
    while time.monotonic() < deadline:
        if not alive(pid):
            print("process %d exited while waiting for %s" % (pid, url), file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return 0
                last = "status %d" % r.status
        except Exception as e:  # not up yet
            last = repr(e)
        time.sleep(0.2)
    print("%s did not answer 200 in %ss (%s)" % (url, secs, last), file=sys.stderr)
    return 1


def proc_mem(pid):
    """(rss_kib, pss_kib) of one process; pss falls back to rss without smaps_rollup."""
    rss = pss = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1])
        except OSError:
            pass
    except OSError:
        return None
    if rss is None:
        return None
    return rss, (pss if pss is not None else rss)


def children(ppid, comm):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'
        name = st[st.index("(") + 1:st.rindex(")")]
        ppid_field = int(st[st.rindex(")") + 2:].split()[1])
        if ppid_field == ppid and name == comm:
            out.append(int(d))
    return out


def print_mem(pids):
    n = rss = pss = 0
    for p in pids:
        m = proc_mem(p)
        if m:
            n += 1
            rss += m[0]
            pss += m[1]
    print("procs=%d rss_kib=%d pss_kib=%d" % (n, rss, pss))
    return 0 if n else 1


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "free-ports":
        return free_ports(int(argv[2]))
    if cmd == "wait-smtp":
        host, _, port = argv[2].rpartition(":")
        return wait_smtp(int(port), float(argv[3]), int(argv[4]) if len(argv) > 4 else None, host or "127.0.0.1")
    if cmd == "wait-http":
        return wait_http(argv[2], float(argv[3]), int(argv[4]) if len(argv) > 4 else None)
    if cmd == "mem":
        return print_mem([int(argv[2])])
    if cmd == "mem-children":
        return print_mem(children(int(argv[2]), argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
