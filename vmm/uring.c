/* A small io_uring per thread for uring_read_all: the reads of a stats
 * request's counters in one io_uring_enter instead of a pread each. Raw
 * system calls on <linux/io_uring.h> (no liburing); a thread that cannot
 * make its ring says why once and its callers use pread from then on. */
#define _GNU_SOURCE
#include "uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm.h"

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	void *sq_map, *cq_map;
	size_t sq_len, cq_len, sqes_len;
	/* The reads land here, not in the caller's memory: a ring given up on
	 * with reads in flight keeps them (see give_up). */
	char buf[URING_READS_MAX][URING_READ_BYTES];
};

static __thread struct ring *ring;
static __thread int ring_err; /* -errno once this thread cannot have one */
static pthread_key_t ring_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void ring_free(struct ring *r)
{
	if (r->sqes && r->sqes != MAP_FAILED)
		munmap(r->sqes, r->sqes_len);
	if (r->cq_map && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map)
		munmap(r->cq_map, r->cq_len);
	if (r->sq_map && r->sq_map != MAP_FAILED)
		munmap(r->sq_map, r->sq_len);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

/* FUSE worker threads come and go: a thread's ring goes with it. */
static void ring_at_exit(void *r) { ring_free(r); }
static void make_key(void) { pthread_key_create(&ring_key, ring_at_exit); }

static int ring_map(struct ring *r, const struct io_uring_params *p)
{
	r->sq_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	r->cq_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	bool one = p->features & IORING_FEAT_SINGLE_MMAP;
	if (one && r->cq_len > r->sq_len)
		r->sq_len = r->cq_len;
	r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 r->fd, IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED)
		return -errno;
	r->cq_map = one ? r->sq_map
			: mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			       r->fd, IORING_OFF_CQ_RING);
	if (r->cq_map == MAP_FAILED)
		return -errno;
	r->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
		       IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	char *sq = r->sq_map, *cq = r->cq_map;
	r->sq_tail = (unsigned *)(sq + p->sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p->sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p->sq_off.array);
	r->cq_head = (unsigned *)(cq + p->cq_off.head);
	r->cq_tail = (unsigned *)(cq + p->cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p->cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
	return 0;
}

static int ring_make(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int fd = (int)syscall(SYS_io_uring_setup, URING_READS_MAX, &p); /* O_CLOEXEC */
	if (fd < 0)
		return -errno;
	/* IORING_OP_READ came with 5.6, as this feature bit did. */
	if (!(p.features & IORING_FEAT_RW_CUR_POS)) {
		close(fd);
		return -EOPNOTSUPP;
	}
	struct ring *r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return -ENOMEM;
	}
	r->fd = fd;
	int e = ring_map(r, &p);
	if (e < 0) {
		ring_free(r);
		return e;
	}
	pthread_once(&key_once, make_key);
	pthread_setspecific(ring_key, r);
	ring = r;
	return 0;
}

/* An io_uring_enter that failed with reads perhaps in flight: the ring and
 * its buffers are left to them (not freed; a few KiB, once per thread at
 * most) and this thread reads with pread from now on. */
static int give_up(int e)
{
	log_warn("io_uring: cannot read cgroup counters through it (%s); using pread",
		 strerror(-e));
	pthread_setspecific(ring_key, NULL);
	ring = NULL;
	ring_err = e;
	return e;
}

int uring_read_all(const int *fds, int n, char (*data)[URING_READ_BYTES], ssize_t *got)
{
	if (n < 0 || n > URING_READS_MAX)
		return -EINVAL;
	if (!ring && !ring_err) {
		int e = ring_make();
		if (e < 0) {
			log_debug("io_uring: none for this thread (%s); cgroup counters read with pread",
				  strerror(-e));
			ring_err = e;
		}
	}
	struct ring *r = ring;
	if (!r)
		return ring_err;
	unsigned tail = *r->sq_tail; /* this thread alone writes it */
	for (int i = 0; i < n; i++) {
		unsigned idx = (tail + (unsigned)i) & *r->sq_mask;
		struct io_uring_sqe *sqe = &r->sqes[idx];
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_READ;
		sqe->fd = fds[i];
		sqe->addr = (uintptr_t)r->buf[i];
		sqe->len = URING_READ_BYTES - 1;
		sqe->off = 0;
		sqe->user_data = (uint64_t)i;
		r->sq_array[idx] = idx;
		got[i] = -ECANCELED;
	}
	__atomic_store_n(r->sq_tail, tail + (unsigned)n, __ATOMIC_RELEASE);
	/* A read that fails to start ends at once (its CQE says why) and may stop
	 * the submission there: the next call submits the rest. */
	int submitted = 0, done = 0;
	while (done < n) {
		long rc = syscall(SYS_io_uring_enter, r->fd, (unsigned)(n - submitted),
				  (unsigned)(n - done), IORING_ENTER_GETEVENTS, NULL, 0);
		if (rc < 0 && errno != EINTR)
			return give_up(-errno);
		if (rc > 0)
			submitted += (int)rc;
		unsigned head = *r->cq_head, end = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
		for (; head != end; head++) {
			const struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];
			if (c->user_data < (uint64_t)n) {
				got[c->user_data] = c->res;
				done++;
			}
		}
		__atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
	}
	for (int i = 0; i < n; i++) {
		if (got[i] < 0)
			continue;
		memcpy(data[i], r->buf[i], (size_t)got[i]);
		data[i][got[i]] = '\0';
	}
	return 0;
}
