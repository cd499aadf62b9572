/* The keep-N-ready loop of things made ahead (ahead.h): wait for room, make
 * one unlocked at low priority, add it under the lock, stop at the first
 * failure with one log line. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ahead.h"
#include "vmm.h"

static void *refill_main(void *arg)
{
	struct vmm_ahead *a = arg;
	/* Refills yield to creates: the thread's own nice value. */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	struct err e = {0};
	int r = 0;
	pthread_mutex_lock(&a->lock);
	while (r == 0) {
		while (a->n >= a->want)
			pthread_cond_wait(&a->cond, &a->lock);
		pthread_mutex_unlock(&a->lock);
		int fd[2] = {-1, -1};
		r = a->make(fd, &e);
		pthread_mutex_lock(&a->lock);
		if (r == 0) {
			a->fds[a->n][0] = fd[0];
			a->fds[a->n++][1] = fd[1];
		}
	}
	pthread_mutex_unlock(&a->lock);
	log_warn("no %s made ahead (%s): each create makes its own", a->what,
		 e.msg[0] ? e.msg : strerror(-r));
	return NULL;
}

int vmm_ahead_take(struct vmm_ahead *a, int fd[2])
{
	int r = -1;
	fd[0] = fd[1] = -1;
	pthread_mutex_lock(&a->lock);
	if (!a->started) {
		pthread_t t;
		a->started = true; /* once, whether or not the thread starts */
		if (a->want > VMM_AHEAD_MAX)
			a->want = VMM_AHEAD_MAX;
		if (pthread_create(&t, NULL, refill_main, a) == 0)
			pthread_detach(t);
	}
	if (a->n > 0) {
		a->n--;
		fd[0] = a->fds[a->n][0];
		fd[1] = a->fds[a->n][1];
		r = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

void vmm_ahead_done(struct vmm_ahead *a)
{
	pthread_mutex_lock(&a->lock);
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}
