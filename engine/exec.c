/* exec sessions: each open handle of /sbx/NAME/exec runs one command. Its
 * output streams through a pipe (flow control for free: a slow reader stalls
 * the command, nothing is buffered here); after EOF, one more read returns
 * "exit_code N". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "sbx.h"

struct sbx_exec {
	struct sbx *s; /* pinned */
	struct sbx_exec *next;
	uint64_t id;
	int rfd;
	bool started, exited, eof, status_read;
	int exit_code;
	uint64_t start_usec;
};

int sbx_exec_open(struct sbx *s, struct sbx_exec **out)
{
	struct sbx_exec *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	reg_tryget(&s->node);
	x->s = s;
	x->rfd = -1;
	pthread_mutex_lock(&s->lock);
	x->id = ++s->next_exec_id;
	x->next = s->execs;
	s->execs = x;
	pthread_mutex_unlock(&s->lock);
	*out = x;
	return 0;
}

int sbx_exec_write(struct sbx_exec *x, const char *buf, size_t len)
{
	struct sbx *s = x->s;
	char line[CTL_WRITE_MAX + 1];
	struct err e = {0};
	int pfd[2], r;
	r = ctl_command_line(buf, len, line, &e);
	pthread_mutex_lock(&s->lock);
	if (r < 0)
		goto out;
	if (x->started) {
		r = err_set(&e, -EBUSY, "this exec handle already ran a command; open exec again");
		goto out;
	}
	sbx_wait_settled(s, 60);
	int st = atomic_load(&s->state);
	if (st != SBX_RUNNING) {
		r = err_set(&e, -EBUSY, "cannot exec in sandbox %s: it is %s", s->node.name,
			    sbx_state_name(st));
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		r = err_set(&e, -errno, "pipe: %s", strerror(errno));
		goto out;
	}
	r = s->ops->exec(&s->vm, x->id, line, pfd[1], &e);
	close(pfd[1]);
	if (r < 0) {
		close(pfd[0]);
		goto out;
	}
	x->rfd = pfd[0];
	x->started = true;
	x->start_usec = now_usec();
out:
	if (r < 0)
		sbx_fail(s, r, e.msg);
	pthread_mutex_unlock(&s->lock);
	return r;
}

ssize_t sbx_exec_read(struct sbx_exec *x, char *buf, size_t size, const struct sbx_cancel *c)
{
	struct sbx *s = x->s;
	if (!x->started || x->status_read)
		return 0;
	if (!x->eof) {
		ssize_t n;
		for (;;) {
			struct pollfd pfd = {.fd = x->rfd, .events = POLLIN};
			if (poll(&pfd, 1, 200) == 0) {
				if (c && c->fn(c->arg))
					return -EINTR;
				continue;
			}
			n = read(x->rfd, buf, size);
			if (n >= 0 || (errno != EINTR && errno != EAGAIN))
				break;
		}
		if (n != 0)
			return n < 0 ? -errno : n;
		x->eof = true;
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	while (!x->exited) {
		if (c && c->fn(c->arg)) {
			pthread_mutex_unlock(&s->lock);
			return -EINTR;
		}
		uint64_t until = now_usec() + 200000;
		struct timespec ts = {.tv_sec = (time_t)(until / 1000000),
				      .tv_nsec = (long)(until % 1000000) * 1000};
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	x->status_read = true;
	return snprintf(buf, size, "exit_code %d\n", x->exit_code);
}

void sbx_exec_close(struct sbx_exec *x)
{
	struct sbx *s = x->s;
	pthread_mutex_lock(&s->lock);
	if (x->started && !x->exited)
		s->ops->exec_kill(&s->vm, x->id, SIGKILL);
	for (struct sbx_exec **p = &s->execs; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	if (x->rfd >= 0)
		close(x->rfd);
	free(x);
	sbx_put(s);
}

/* Called with s->lock held. */
void sbx_exec_exited(struct sbx *s, uint64_t id, int code)
{
	for (struct sbx_exec *x = s->execs; x; x = x->next)
		if (x->id == id) {
			x->exit_code = code;
			x->exited = true;
			lat_add(LAT_EXEC, now_usec() - x->start_usec);
		}
	pthread_cond_broadcast(&s->cond);
}

/* The sandbox ended: commands that did not report end with `code`. */
void sbx_exec_fail_all(struct sbx *s, int code)
{
	for (struct sbx_exec *x = s->execs; x; x = x->next)
		if (x->started && !x->exited) {
			x->exit_code = code;
			x->exited = true;
		}
	pthread_cond_broadcast(&s->cond);
}
