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
