#ifndef CBERTHSYSTEM_H
#define CBERTHSYSTEM_H
/* Linux calls that Swift's Glibc module does not expose (they need _GNU_SOURCE). */
int cberth_syncfs(int fd);
#endif
