/* Reads of a few small files (cgroup counters) in one system call: an
 * io_uring per thread, made at its first use. Where the kernel has none or
 * refuses it (io_uring_disabled, a seccomp filter), the caller reads with
 * pread; a system call costs about 1 µs on this project's machine, and a
 * stats read takes five counters. */
#ifndef SBX_URING_H
#define SBX_URING_H

#include <sys/types.h>

#define URING_READS_MAX 8
#define URING_READ_BYTES 1024

/* Reads up to URING_READ_BYTES - 1 bytes at offset 0 of each of the n fds
 * (n <= URING_READS_MAX) into data[i], NUL-terminated, and says each read's
 * result in got[i] (bytes, or -errno). 0 once every read has ended; -errno
 * (nothing read) when this thread has no ring: read them with pread. */
int uring_read_all(const int *fds, int n, char (*data)[URING_READ_BYTES], ssize_t *got);

#endif
