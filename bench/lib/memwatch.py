#!/usr/bin/env python3
"""Sample a server's memory every 100 ms until SIGTERM (bounded), for bench/session-abuse.

    memwatch.py --pid PID [--tree | --deep] [--interval 0.1] [--max-secs 900] [--reset-hwm]

One process (Berth): VmRSS every interval (/proc/PID/status) and PSS (smaps_rollup);
with --reset-hwm the peak RSS (VmHWM) is reset first (echo 5 > /proc/PID/clear_refs) and
read again at the end, so it is this load's exact peak, not start-up's.
--tree (Postfix): PID and its children (every Postfix daemon is a child of the master;
--deep: all descendants, which costs one more /proc read per process), RSS (statm)
summed every interval, PSS
(smaps_rollup) summed every interval too while the tree is small; above 200 processes
the PSS sweep runs every 1 s instead. Sweeps never take more than ~25 % of a CPU
(RSS) / ~10 % (PSS): when one takes longer, the next waits 4x / 10x its duration, so the
sampler does not starve the server it measures (thousands of processes on 2 CPUs); the
achieved intervals are reported.

After the first sample it prints "READY rss_kib=R pss_kib=P procs=N" (the baseline); on
SIGTERM/SIGINT or --max-secs it prints one line of KiB figures:
    RESULT samples=N interval_ms=I pss_samples=M pss_interval_ms=J procs_base=B procs_max=X
           rss_base=R pss_base=P rss_peak=R2 pss_peak=P2 rss_end=R3 pss_end=P3 hwm=H alive=0|1
(hwm: VmHWM of PID itself; -1 without --reset-hwm).
"""
import argparse
import os
import signal
import sys
import time

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def children_of(pid):
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def main_task_children(pid):
    """Children of a process's main thread: one read (Postfix daemons are single-threaded)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def tree(pid):
    """pid, its children (of every thread) and their descendants (main threads)."""
    seen, todo = [pid], children_of(pid)
    while todo and len(seen) < 100000:
        p = todo.pop()
        seen.append(p)
        todo.extend(main_task_children(p))
    return seen


def rss_statm(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return None


def pss(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def status_field(pid, name):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--tree", action="store_true")
    ap.add_argument("--deep", action="store_true")
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--max-secs", type=float, default=900.0)
    ap.add_argument("--reset-hwm", action="store_true")
    a = ap.parse_args()
    a.interval = max(0.01, a.interval)
    a.max_secs = min(a.max_secs, 3600.0)
    stop = {"flag": False}

    def on_signal(_s, _f):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    st = {"samples": 0, "pss_samples": 0, "procs_max": 0, "rss_peak": 0, "pss_peak": 0,
          "rss_end": 0, "pss_end": 0}
    last_pss_t = [-1e9]
    last_pss_sum = [0]

    cost = {"rss": 0.0, "pss": 0.0}

    def sample(first=False):
        ts = time.monotonic()
        if a.deep:
            pids = tree(a.pid)
        elif a.tree:
            pids = [a.pid] + children_of(a.pid)
        else:
            pids = [a.pid]
        rss_sum = 0
        n = 0
        for p in pids:
            r = rss_statm(p)
            if r:  # a zombie has none
                rss_sum += r
                n += 1
        now = time.monotonic()
        cost["rss"] = now - ts
        pss_every = max(a.interval if n <= 200 else 1.0, 10 * cost["pss"])
        if first or now - last_pss_t[0] >= pss_every - 1e-3:
            s = 0
            for p in pids:
                v = pss(p)
                if v is not None:
                    s += v
            cost["pss"] = time.monotonic() - now
            last_pss_t[0] = now
            last_pss_sum[0] = s
            st["pss_samples"] += 1
            st["pss_peak"] = max(st["pss_peak"], s)
        st["samples"] += 1
        st["procs_max"] = max(st["procs_max"], n)
        st["rss_peak"] = max(st["rss_peak"], rss_sum)
        st["rss_end"] = rss_sum
        st["pss_end"] = last_pss_sum[0]
        return n, rss_sum, last_pss_sum[0]

    n0, r0, p0 = sample(first=True)
    if a.reset_hwm:
        try:
            with open("/proc/%d/clear_refs" % a.pid, "w") as f:
                f.write("5")
        except OSError as e:
            print("cannot reset VmHWM: %r" % e, file=sys.stderr)
    print("READY rss_kib=%d pss_kib=%d procs=%d" % (r0, p0, n0), flush=True)
    t0 = time.monotonic()
    nxt = t0
    while not stop["flag"] and time.monotonic() - t0 < a.max_secs:
        nxt += max(a.interval, 4 * cost["rss"])
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()   # a sweep overran: do not try to catch up
        if not alive(a.pid):
            break
        sample()
    el = time.monotonic() - t0
    hwm = -1
    if a.reset_hwm:
        h = status_field(a.pid, "VmHWM")
        hwm = h if h is not None else -1
        if hwm > st["rss_peak"]:
            st["rss_peak"] = hwm
    print("RESULT samples=%d interval_ms=%.0f pss_samples=%d pss_interval_ms=%.0f procs_base=%d "
          "procs_max=%d rss_base=%d pss_base=%d rss_peak=%d pss_peak=%d rss_end=%d pss_end=%d "
          "hwm=%d alive=%d" % (
              st["samples"], 1000 * el / max(1, st["samples"] - 1), st["pss_samples"],
              1000 * el / max(1, st["pss_samples"] - 1), n0, st["procs_max"], r0, p0,
              st["rss_peak"], st["pss_peak"], st["rss_end"], st["pss_end"], hwm,
              1 if alive(a.pid) else 0), flush=True)


if __name__ == "__main__":
    main()
