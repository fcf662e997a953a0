"""Event loops pinned one per CPU, and a connection served by the loop on the CPU that
received it (README, "Performance": CPU steering; `--no-cpu-affinity` turns it off).

On loopback the kernel takes a SYN on the client's CPU, so a client thread pinned to CPU c
must be served by the loop pinned to c. Which loop served is read from the loops' own CPU
time (/proc/PID/task/TID/schedstat, nanoseconds)."""
from __future__ import annotations

import os
import re
import smtplib
import threading
from pathlib import Path

import pytest

from conftest import CLIENT_NAME, IP2, create_port, wait_connect_state

CPUS = sorted(os.sched_getaffinity(0))
pytestmark = pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs")


def loop_threads(pid: int) -> dict[int, str]:
    """tid -> name of the process's NIO event loop threads."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        if name.startswith("NIO-SGLTN-"):
            found[int(tid)] = name
    return found


def cpu_ns(pid: int, tid: int) -> int:
    return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])


def sessions_from_cpu(port: int, cpu: int, count: int) -> None:
    """`count` SMTP sessions (banner, EHLO, QUIT) from a thread pinned to `cpu`."""
    failure: list[BaseException] = []

    def client():
        try:
            os.sched_setaffinity(0, {cpu})  # pid 0: this thread only
            for _ in range(count):
                with smtplib.SMTP(IP2, port, local_hostname=CLIENT_NAME, timeout=10) as s:
                    assert s.ehlo()[0] == 250
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(e)

    t = threading.Thread(target=client)
    t.start()
    t.join(120)
    assert not t.is_alive(), "client thread hung"
    if failure:
        raise failure[0]


def test_each_loop_pinned_and_sessions_served_on_the_clients_cpu(berth_env):
    b = berth_env
    pid = b.proc.pid
    m = re.search(r"event loops: (\d+), pinned to CPUs ([\d,]+)", b.log)
    assert m, f"no pinning in the log:\n{b.log_tail()}"
    assert int(m.group(1)) == len(CPUS) and [int(c) for c in m.group(2).split(",")] == CPUS
    loops = loop_threads(pid)
    assert len(loops) == len(CPUS), loops
    pinned = {tid: os.sched_getaffinity(tid) for tid in loops}
    assert sorted(cpu for cpus in pinned.values() for cpu in cpus) == CPUS, pinned
    loop_of_cpu = {next(iter(cpus)): tid for tid, cpus in pinned.items()}

    port = create_port(b, "Steered", "smtp", "none", assigned=[IP2])["port"]
    assert wait_connect_state(IP2, port, "ok", deadline=5) == "ok"
    for cpu in CPUS[:2]:
        before = {tid: cpu_ns(pid, tid) for tid in loops}
        sessions_from_cpu(port, cpu, 150)
        used = {tid: cpu_ns(pid, tid) - before[tid] for tid in loops}
        mine = used[loop_of_cpu[cpu]]
        others = max(v for tid, v in used.items() if tid != loop_of_cpu[cpu])
        # Every session on the client's CPU's loop; the others only run their timers.
        assert mine > 5 * others, f"client on CPU {cpu}: loop CPU time in ns {used} (loop of CPU {cpu}: {loop_of_cpu[cpu]})"


def test_no_cpu_affinity_leaves_the_loops_free(make_server):
    b = make_server(extra_args=["--no-cpu-affinity"])
    assert "pinned to CPUs" not in b.log
    loops = loop_threads(b.proc.pid)
    assert loops
    for tid in loops:
        assert sorted(os.sched_getaffinity(tid)) == CPUS, (tid, loops[tid])
