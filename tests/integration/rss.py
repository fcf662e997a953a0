"""Helpers for the abuse tests: a process's memory, CPU and descriptors read from /proc,
descriptor limits, many sockets at once, and the "a fresh client is served within 1 s"
liveness check.

Linux only (reads /proc). Every wait is bounded.
"""
from __future__ import annotations

import errno
import os
import resource
import selectors
import socket
import ssl
import threading
import time
import urllib.request

KiB = 1024
MiB = 1024 * 1024

# The liveness check the issue asks for during every abuse load.
LIVENESS_DEADLINE = 1.0


# --------------------------------------------------------------------------- /proc


def rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of `pid`, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                parts = line.split()
                assert parts[2].lower() == "kb", line
                return int(parts[1]) * KiB
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class RSSSampler:
    """Samples VmRSS of `pid` every `interval` s in a thread; `.peak` and `.samples`.

        with RSSSampler(pid) as s:
            ...load...
        growth = s.peak - s.baseline
    """

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid = pid
        self.interval = interval
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                v = rss_bytes(self.pid)
            except (FileNotFoundError, ProcessLookupError, AssertionError):
                break
            self.samples.append((time.monotonic() - t0, v))
            if v > self.peak:
                self.peak = v
            self._stop.wait(self.interval)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def describe(self) -> str:
        last = self.samples[-1][1] if self.samples else self.baseline
        return (f"RSS baseline {self.baseline / MiB:.1f} MiB, peak {self.peak / MiB:.1f} MiB "
                f"(+{self.growth / MiB:.1f} MiB), last {last / MiB:.1f} MiB, {len(self.samples)} samples")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- descriptor limits


def raise_nofile(want: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to at least `want` (capped by the hard limit).
    Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:  # root (CAP_SYS_RESOURCE) may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ValueError, OSError):
            pass
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_preexec(soft: int, hard: int):
    """A Popen preexec_fn that sets the child's RLIMIT_NOFILE (like `ulimit -n`)."""

    def _set():
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return _set


# --------------------------------------------------------------------------- many sockets


def open_many(host: str, port: int, n: int, *, source: str | None = None, batch: int = 250,
              batch_timeout: float = 5.0) -> list[socket.socket]:
    """Open `n` TCP connections without blocking on any one of them (non-blocking connect in
    batches; each batch waits up to `batch_timeout` s for its handshakes). Returns every socket,
    connected or still pending; the caller closes them (see close_all)."""
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    try:
        for start in range(0, n, batch):
            pending = []
            for _ in range(min(batch, n - start)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                if source:
                    s.bind((source, 0))
                s.setblocking(False)
                err = s.connect_ex((host, port))
                if err == errno.EINPROGRESS:
                    sel.register(s, selectors.EVENT_WRITE)
                    pending.append(s)
                elif err != 0:
                    raise OSError(err, f"connect #{len(socks)} to {host}:{port}: {os.strerror(err)}")
            end = time.monotonic() + batch_timeout
            left = len(pending)
            for _ in range(100000):
                if left == 0 or time.monotonic() >= end:
                    break
                for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
                    sel.unregister(key.fileobj)
                    left -= 1
            for s in pending:
                try:
                    sel.unregister(s)
                except KeyError:
                    pass
    except BaseException:
        close_all(socks)
        raise
    finally:
        sel.close()
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
    socks.clear()


def first_lines(socks: list[socket.socket], timeout: float) -> list[bytes | None]:
    """For each non-blocking socket: the first CRLF-terminated line received within `timeout` s,
    b"" if the peer closed (or reset) before sending one, None if nothing came."""
    out: list[bytes | None] = [None] * len(socks)
    bufs = [b""] * len(socks)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        try:
            sel.register(s, selectors.EVENT_READ, i)
        except (ValueError, OSError):
            out[i] = b""
    left = sum(1 for x in out if x is None)
    end = time.monotonic() + timeout
    try:
        for _ in range(1000000):
            if left == 0 or time.monotonic() >= end:
                break
            for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
                i = key.data
                try:
                    chunk = key.fileobj.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    bufs[i] += chunk
                    j = bufs[i].find(b"\r\n")
                    if j < 0:
                        continue
                    out[i] = bufs[i][:j]
                else:
                    out[i] = b""
                sel.unregister(key.fileobj)
                left -= 1
    finally:
        sel.close()
    return out


def read_until_closed(s: socket.socket, wait: float) -> tuple[bytes, bool]:
    """Read from `s` until the peer closes (EOF or reset) or `wait` s pass.
    Returns (bytes received, closed?)."""
    end = time.monotonic() + wait
    data = b""
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ)
    try:
        for _ in range(1000000):
            left = end - time.monotonic()
            if left <= 0:
                return data, False
            if not sel.select(timeout=left):
                continue
            try:
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                continue
            except OSError:
                return data, True
            if not chunk:
                return data, True
            data += chunk
        return data, False
    finally:
        sel.close()


def still_open_after(socks: list[socket.socket], wait: float) -> list[int]:
    """Wait up to `wait` s for the peer to close every socket in `socks` (EOF or reset; data
    is read and dropped). Returns the indices of those still open at the end (empty: all closed).
    The sockets are left non-blocking."""
    sel = selectors.DefaultSelector()
    open_ = set()
    for i, s in enumerate(socks):
        try:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            open_.add(i)
        except (ValueError, OSError):
            pass
    end = time.monotonic() + wait
    try:
        for _ in range(1000000):
            if not open_ or time.monotonic() >= end:
                break
            for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
                try:
                    chunk = key.fileobj.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_.discard(key.data)
    finally:
        sel.close()
    return sorted(open_)


# --------------------------------------------------------------------------- liveness


def banner_within(host: str, port: int, within: float = LIVENESS_DEADLINE, *, tls: ssl.SSLContext | None = None,
                  source: str | None = None) -> tuple[str, float]:
    """Connect (TLS if `tls`), read the greeting line; returns (line, seconds from connect() to
    the greeting). A greeting that does not come within `within` (+1 s grace to read it) gives
    ("<timeout>", elapsed); a close gives ("<closed>", elapsed)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection((host, port), timeout=within + 1.0,
                                     source_address=(source, 0) if source else None)
    except OSError as e:
        return f"<connect failed: {e}>", time.monotonic() - t0
    try:
        if tls is not None:
            s = tls.wrap_socket(s)
        buf = b""
        for _ in range(1000):
            i = buf.find(b"\r\n")
            if i >= 0:
                line = buf[:i].decode("utf-8", "replace")
                elapsed = time.monotonic() - t0
                try:
                    s.sendall(b"QUIT\r\n")
                except OSError:
                    pass
                return line, elapsed
            chunk = s.recv(4096)
            if not chunk:
                return "<closed>", time.monotonic() - t0
            buf += chunk
        return "<no line>", time.monotonic() - t0
    except (socket.timeout, TimeoutError):
        return "<timeout>", time.monotonic() - t0
    except (OSError, ssl.SSLError) as e:
        return f"<error: {e}>", time.monotonic() - t0
    finally:
        try:
            s.close()
        except OSError:
            pass


def assert_fresh_client_served(host: str, port: int, what: str, *, tls: ssl.SSLContext | None = None,
                               source: str | None = None, within: float = LIVENESS_DEADLINE,
                               attempts: int = 2) -> None:
    """The issue's liveness check: during an abuse load a fresh client gets its 220 within 1 s.
    A second client is tried if the first is late, so one scheduling hiccup on a busy
    2-core machine is not taken for a stalled server (a stalled one fails both)."""
    seen = []
    for _ in range(attempts):
        line, elapsed = banner_within(host, port, within, tls=tls, source=source)
        if line.startswith("220 ") and elapsed <= within:
            return
        seen.append(f"{line!r} after {elapsed:.2f}s")
    raise AssertionError(f"during {what}: fresh clients got {'; '.join(seen)} (want a 220 within {within}s)")


def healthz_within(admin_url: str, within: float = LIVENESS_DEADLINE) -> tuple[int | str, float]:
    """GET /healthz: (status or error text, seconds)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(admin_url + "/healthz", timeout=within + 1.0) as r:
            r.read()
            return r.status, time.monotonic() - t0
    except Exception as e:  # noqa: BLE001 - reported in the assertion message
        return f"{type(e).__name__}: {e}", time.monotonic() - t0


def assert_healthz_within(admin_url: str, what: str, within: float = LIVENESS_DEADLINE, attempts: int = 2) -> None:
    """/healthz answers 200 within 1 s (a second try if the first is late, as above)."""
    seen = []
    for _ in range(attempts):
        st, dt = healthz_within(admin_url, within)
        if st == 200 and dt <= within:
            return
        seen.append(f"{st} after {dt:.2f}s")
    raise AssertionError(f"/healthz during {what}: {'; '.join(seen)} (want 200 within {within}s)")
