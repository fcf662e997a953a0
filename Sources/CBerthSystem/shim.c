#define _GNU_SOURCE
#include <unistd.h>
#include "CBerthSystem.h"

/* syncfs(2): one flush for every file written to a filesystem, which lets the
   Maildir writer make a whole batch of messages durable with one call. */
int cberth_syncfs(int fd) { return syncfs(fd); }
