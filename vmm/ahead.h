/* Things kept made ahead, each held by an fd or two (network namespaces,
 * with or without a veth pair inside and a route socket in it: netns.c): one
 * low-priority thread per kind keeps `want` ready, and a create takes one
 * instead of making its own. */
#ifndef SBX_AHEAD_H
#define SBX_AHEAD_H

#include <pthread.h>
#include <stdbool.h>

struct err;

#define VMM_AHEAD_MAX 8

struct vmm_ahead {
	const char *what; /* "network namespaces", for the one log line of a failure */
	int want;         /* how many to keep, at most VMM_AHEAD_MAX */
	/* Makes one on the kind's thread, no lock held: its fds in fd (fd[1]
	 * may stay -1), 0, or -errno with the reason in e. The first failure
	 * ends the thread (creates make their own from then on). */
	int (*make)(int fd[2], struct err *e);
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fds[VMM_AHEAD_MAX][2];
	int n;
	bool started;
};

#define VMM_AHEAD_INIT(what_, want_, make_)                                               \
	{ .what = (what_), .want = (want_), .make = (make_), .lock = PTHREAD_MUTEX_INITIALIZER, \
	  .cond = PTHREAD_COND_INITIALIZER }

/* One made ahead, its fds into fd (the caller's): 0, or -1 when none is
 * ready (fd[] -1). The first call starts the kind's thread. */
int vmm_ahead_take(struct vmm_ahead *a, int fd[2]);
/* The caller's create is done with what it took: the thread may make the
 * next one now. Making one takes locks of the kernel's (rtnl) that the
 * create's own steps wait for, so refills wait for the create to end. */
void vmm_ahead_done(struct vmm_ahead *a);

#endif
