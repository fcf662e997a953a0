#ifndef CBERTHSYSTEM_H
#define CBERTHSYSTEM_H
/* Linux calls that Swift's Glibc module does not expose (they need _GNU_SOURCE). */
int cberth_syncfs(int fd);
/* The calling thread's id (for cberth_set_thread_idle). */
int cberth_gettid(void);
/* Thread `tid` to SCHED_IDLE (runs only on CPU time no other thread wants) or back to
   SCHED_OTHER. 0 or -1 with errno. */
int cberth_set_thread_idle(int tid, int idle);
/* 1 if thread `tid` is in SCHED_IDLE, 0 if not, -1 with errno. */
int cberth_thread_is_idle(int tid);
/* The CPUs this process may run on, ascending, at most `capacity`: the count, or -1. */
int cberth_allowed_cpus(int *cpus, int capacity);
/* Pins the calling thread to `cpus`. 0 or -1 with errno. */
int cberth_set_thread_cpus(const int *cpus, int count);
#endif
