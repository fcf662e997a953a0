#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include "CBerthSystem.h"

/* syncfs(2): one flush for every file written to a filesystem, which lets the
   Maildir writer make a whole batch of messages durable with one call. */
int cberth_syncfs(int fd) { return syncfs(fd); }

int cberth_gettid(void) { return gettid(); }

/* sched_setscheduler(2) on a thread id changes only that thread. */
int cberth_set_thread_idle(int tid, int idle) {
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(tid, idle ? SCHED_IDLE : SCHED_OTHER, &param);
}

int cberth_thread_is_idle(int tid) {
    int policy = sched_getscheduler(tid);
    return policy < 0 ? -1 : policy == SCHED_IDLE;
}

/* sched_getaffinity(2) for the process: the CPUs it may run on, ascending, at most
   `capacity` of them. The count, or -1 with errno. */
int cberth_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++)
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    return count;
}

/* sched_setaffinity(2) with pid 0 changes the calling thread only. 0 or -1 with errno. */
int cberth_set_thread_cpus(const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++)
        if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) CPU_SET(cpus[i], &set);
    return sched_setaffinity(0, sizeof(set), &set);
}
