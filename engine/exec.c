/* exec sessions: each open handle of /sbx/NAME/exec runs one command. Its
 * output streams through a pipe (flow control for free: a slow reader stalls
 * the command, nothing is buffered here); after EOF, one more read returns
 * "exit_code N". Reads never block: one that would wait says what to wait
 * for (the pipe, the exit report) and is parked by its caller (waiters.h).
 * The session ends when its command exits: what is in the pipe then is
 * delivered, and a background child that keeps the pipe open holds nobody. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "exec.h"
#include "images.h"
#include "sandbox.h"
#include "stats.h"

#define EXEC_PIPE_BYTES (1 << 20)

struct sbx_exec {
	struct sbx *s; /* pinned */
	struct sbx_exec *next;
	uint64_t id;
	int rfd;               /* the pipe's read end, O_NONBLOCK */
	_Atomic bool started;  /* rfd is set; stored after it */
	_Atomic bool exited;   /* the exit report came; exit_code is set before it */
	int exit_code;
	uint64_t start_usec;
	uint64_t deadline_usec; /* timeout=: monotonic; 0 none */
	bool timed_out;         /* killed at its deadline: exit_code 124 */
	bool warm;              /* ran in the warm shell */
	/* The reading side, under rlock (reads of one handle may run at once). */
	pthread_mutex_t rlock;
	bool eof, status_read;
	bool draining;         /* exited: only what was in the pipe then is left */
	uint64_t drain_bytes;  /* how much of it */
};

int sbx_exec_open(struct sbx *s, struct sbx_exec **out)
{
	struct sbx_exec *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	reg_tryget(&s->node);
	x->s = s;
	x->rfd = -1;
	pthread_mutex_init(&x->rlock, NULL);
	pthread_mutex_lock(&s->lock);
	x->id = ++s->next_exec_id;
	x->next = s->execs;
	s->execs = x;
	pthread_mutex_unlock(&s->lock);
	*out = x;
	return 0;
}

int sbx_command_prepare(struct sbx *s, const char *line, bool job, struct sbx_command *c,
			struct err *e)
{
	struct ctl_run_opts *ro = &c->ro;
	size_t cmd_at = 0;
	bool native = s->ops->caps & VMM_CAP_RUN_OPTS;
	bool user_ok = s->ops->caps & (VMM_CAP_RUN_OPTS | VMM_CAP_RUN_USER);
	int r = ctl_run_options(line, ro, &cmd_at, e);
	if (r < 0)
		return r;
	if (ro->tty && !job)
		return err_set(e, -EINVAL, "exec has no terminal: tty= is an option of run (a job)");
	if (ro->user && !user_ok)
		return err_set(e, -EOPNOTSUPP, "backend %s runs every command as root: user= "
			       "does not work in its sandboxes", s->cfg.backend);
	if (!job && !line[cmd_at])
		return err_set(e, -EINVAL, "options but no command: exec runs the command after "
			       "them");
	if ((r = image_command(s->eng, s->cfg.image, line + cmd_at, ro, !native, c->full, sizeof(c->full),
			       &c->cmd_at, e)) < 0)
		return r;
	c->vo = (struct vmm_run_opts){.cwd = ro->cwd, .user = ro->user, .env = ro->env,
				      .nenv = ro->nenv};
	if (!native) /* cwd= and env= are in the shell line */
		c->vo = (struct vmm_run_opts){.user = ro->user};
	c->opts = user_ok ? &c->vo : NULL;
	return 0;
}

/* With s->lock held: the earliest deadline of a command (the monitor looks then). */
void sbx_cmd_deadline(struct sbx *s, uint64_t deadline_usec)
{
	if (deadline_usec && (!s->cmd_deadline_usec || deadline_usec < s->cmd_deadline_usec))
		s->cmd_deadline_usec = deadline_usec;
}

/* An exec's output pipe: only our end, pfd[0], is non-blocking: the command
 * writes as to any pipe. */
static int exec_pipe(int pfd[2], struct err *e)
{
	if (pipe2(pfd, O_CLOEXEC) < 0 || fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0)
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	/* A FUSE read takes up to 128 KiB: a pipe of 1 MiB (the default
	 * pipe-max-size; best effort) fills whole replies and lets the command
	 * run ahead of its reader, bounded still. */
	(void)fcntl(pfd[0], F_SETPIPE_SZ, EXEC_PIPE_BYTES);
	return 0;
}

void sbx_warm_drop(struct sbx *s)
{
	close_fds(s->warm_fds, 3);
}

/* The shell gets a job's three pipes, so that either an exec or a job can
 * take it: ours are stdin's write end and the output pipes' read ends
 * (exec_pipe's, which a job's are too: non-blocking, 1 MiB). */
void sbx_warm_arm(struct sbx *s)
{
	struct err e = {0};
	int ours[3] = {-1, -1, -1}, its[3] = {-1, -1, -1}, p[2];
	sbx_warm_drop(s);
	if (!s->ops->warm || atomic_load(&s->state) != SBX_RUNNING)
		return;
	int r = pipe2(p, O_CLOEXEC) < 0 ? err_set(&e, -errno, "pipe: %s", strerror(errno)) : 0;
	if (r == 0) {
		its[0] = p[0];
		ours[0] = p[1];
	}
	for (int k = 1; k < 3 && r == 0; k++)
		if ((r = exec_pipe(p, &e)) == 0) {
			ours[k] = p[0];
			its[k] = p[1];
		}
	if (r == 0)
		r = s->ops->warm(&s->vm, its, &e);
	close_fds(its, 3);
	if (r < 0) {
		close_fds(ours, 3);
		log_warn("sandbox %s: no warm shell, commands run cold: %s", s->node.name, e.msg);
		return;
	}
	memcpy(s->warm_fds, ours, sizeof(ours));
}

bool sbx_warm_fits(const struct sbx *s, const struct sbx_command *c)
{
	return s->warm_fds[1] >= 0 && !c->ro.cwd && !c->ro.user && !c->ro.nenv && !c->ro.tty &&
	       !strchr(c->full, '\n');
}

/* With s->lock held: one more warm exec or job, in the sandbox's stats and
 * the daemon's. */
static void warm_count(struct sbx *s, bool job)
{
	*(job ? &s->jobs_warm : &s->execs_warm) += 1;
	stats_count_warm(s->eng, job);
}

int sbx_warm_take(struct sbx *s, uint64_t id, const struct sbx_command *c, bool job, int fds[3],
		  struct err *e)
{
	int r = s->ops->exec_warm(&s->vm, id, c->full, job, e);
	if (r < 0)
		return r;
	memcpy(fds, s->warm_fds, sizeof(s->warm_fds));
	s->warm_fds[0] = s->warm_fds[1] = s->warm_fds[2] = -1;
	s->warm_due = true;
	warm_count(s, job);
	return 0;
}

void sbx_warm_reported(struct sbx *s, char warm)
{
	/* A backend that the daemon hands warm commands to counted them at the
	 * hand-over (sbx_warm_take); what its sandbox says (ns: init, which
	 * runs inside it) is not taken as well. */
	if (warm && !s->ops->exec_warm)
		warm_count(s, warm == 'j');
}

/* With s->lock held: x's command goes to the warm shell, whose stdout x
 * reads: its stderr joins it there and its stdin is /dev/null (WARM_SCRIPT),
 * so the other two pipes are not needed. */
static int exec_warm(struct sbx *s, struct sbx_exec *x, const struct sbx_command *c,
		     struct err *e)
{
	int fds[3];
	int r = sbx_warm_take(s, x->id, c, false, fds, e);
	if (r < 0)
		return r;
	x->rfd = fds[1];
	fds[1] = -1;
	close_fds(fds, 3);
	x->warm = true;
	return 0;
}

/* With s->lock held: x's command in a new process, writing a new pipe. */
static int exec_cold(struct sbx *s, struct sbx_exec *x, const struct sbx_command *c,
		     struct err *e)
{
	int pfd[2];
	int r = exec_pipe(pfd, e);
	if (r < 0)
		return r;
	r = s->ops->exec(&s->vm, x->id, c->full, c->opts, pfd[1], e);
	close(pfd[1]);
	if (r < 0) {
		close(pfd[0]);
		return r;
	}
	x->rfd = pfd[0];
	return 0;
}

int sbx_exec_write(struct sbx_exec *x, const char *buf, size_t len)
{
	struct sbx *s = x->s;
	char line[CTL_WRITE_MAX + 1];
	struct sbx_command *c = calloc(1, sizeof(*c));
	struct err e = {0};
	int r;
	r = c ? ctl_command_line(buf, len, line, &e) : err_set(&e, -ENOMEM, "out of memory");
	if (r == 0) /* its options, the image's Env and WorkingDir (an imported image's) */
		r = sbx_command_prepare(s, line, false, c, &e);
	pthread_mutex_lock(&s->lock);
	if (r < 0)
		goto out;
	if (atomic_load(&x->started)) {
		r = err_set(&e, -EBUSY, "this exec handle already ran a command; open exec again");
		goto out;
	}
	if ((r = sbx_require_running(s, "exec", &e)) < 0)
		goto out;
	r = sbx_warm_fits(s, c) ? exec_warm(s, x, c, &e) : exec_cold(s, x, c, &e);
	if (r < 0)
		goto out;
	x->start_usec = now_usec();
	if (c->ro.timeout_ms) {
		x->deadline_usec = x->start_usec + c->ro.timeout_ms * 1000;
		sbx_cmd_deadline(s, x->deadline_usec);
	}
	atomic_store(&x->started, true);
out:
	if (r < 0)
		sbx_fail(s, r, e.msg);
	pthread_mutex_unlock(&s->lock);
	free(c);
	return r;
}

bool sbx_deadline_passed(uint64_t *deadline_usec, uint64_t now, uint64_t *next)
{
	if (!*deadline_usec)
		return false;
	if (now < *deadline_usec) {
		*next = !*next || *deadline_usec < *next ? *deadline_usec : *next;
		return false;
	}
	*deadline_usec = 0; /* once */
	return true;
}

/* With s->lock held: commands past their timeout= are killed (their process
 * group, SIGKILL), once. The next deadline of those left, 0 none. */
uint64_t sbx_execs_expire(struct sbx *s, uint64_t now)
{
	uint64_t next = 0;
	for (struct sbx_exec *x = s->execs; x; x = x->next) {
		if (atomic_load(&x->exited) || !sbx_deadline_passed(&x->deadline_usec, now, &next))
			continue;
		x->timed_out = true;
		log_info("sandbox %s: exec %" PRIu64 ": timeout= reached, killed", s->node.name, x->id);
		s->ops->exec_kill(&s->vm, x->id, SIGKILL);
	}
	return next;
}

/* Whether the command's own processes hold the pipe's write end (ns), so that
 * a background child can keep it open for ever. Where the daemon writes the
 * pipe for the sandbox (qemu: vmm.h's job_attach is set exactly there), it
 * closes the pipe after the last byte and output may still be on its way
 * when the exit is reported: there the pipe's EOF ends the output. */
static bool pipe_held_by_command(const struct sbx *s)
{
	return !s->ops->job_attach;
}

static void wait_for(struct sbx_exec *x, int fd, struct sbx_wake *wk)
{
	*wk = (struct sbx_wake){.eng = x->s->eng, .sbx = x->s->node.id, .kind = WAKE_EXEC,
				.sub = x->id, .fd = fd};
}

/* The output part of a read (rlock held): bytes, 0 at its end, -EAGAIN. */
static ssize_t read_output(struct sbx_exec *x, char *buf, size_t size, struct sbx_wake *wk)
{
	/* Looked at before the pipe: what the command wrote came before its exit,
	 * so once the exit is seen, that read finds all of it in the pipe. */
	bool exited = atomic_load(&x->exited);
	if (exited && !x->draining && pipe_held_by_command(x->s)) {
		int avail = 0;
		if (ioctl(x->rfd, FIONREAD, &avail) < 0)
			avail = 0;
		x->draining = true;
		x->drain_bytes = avail > 0 ? (uint64_t)avail : 0;
	}
	if (x->draining && size > x->drain_bytes)
		size = (size_t)x->drain_bytes;
	if (size == 0)
		return 0;
	ssize_t n;
	while ((n = read(x->rfd, buf, size)) < 0 && errno == EINTR)
		;
	if (n > 0 && x->draining)
		x->drain_bytes -= (uint64_t)n;
	if (n >= 0 || errno != EAGAIN)
		return n < 0 ? -errno : n;
	if (x->draining) /* someone else's read took it: nothing is left */
		return 0;
	wait_for(x, x->rfd, wk);
	return -EAGAIN;
}

ssize_t sbx_exec_read_try(struct sbx_exec *x, char *buf, size_t size, struct sbx_wake *wk)
{
	if (!atomic_load(&x->started))
		return 0;
	ssize_t n = 0;
	bool at_eof = false;
	pthread_mutex_lock(&x->rlock);
	if (x->status_read || size == 0) {
		n = 0;
	} else if (!x->eof) {
		n = read_output(x, buf, size, wk);
		if (n == 0)
			x->eof = at_eof = true;
	} else if (!atomic_load(&x->exited)) {
		wait_for(x, -1, wk); /* the exit report kicks */
		n = -EAGAIN;
	} else {
		int len = snprintf(buf, size, "exit_code %d\n", x->exit_code);
		n = len < 0 ? 0 : (size_t)len < size ? len : (ssize_t)size;
		x->status_read = true;
	}
	pthread_mutex_unlock(&x->rlock);
	if (at_eof && x->warm) { /* before the reader sees its EOF (sbx_warm_next) */
		pthread_mutex_lock(&x->s->lock);
		sbx_warm_next(x->s);
		pthread_mutex_unlock(&x->s->lock);
	}
	return n;
}

bool sbx_exec_started(struct sbx_exec *x)
{
	return atomic_load(&x->started);
}

/* The next warm shell is asked for once per warm command, when an exec or
 * a job of ours ends, or when a warm exec's output reaches its end before
 * init said so (or its handle closes before either), so that its fork and
 * exec never take CPU from the command. At the output's end it is asked for
 * before that EOF is answered: a reader that closes there and writes the
 * next exec at once finds the shell, though the kernel sends the close's
 * RELEASE without waiting for it. */
void sbx_warm_next(struct sbx *s)
{
	if (!s->warm_due)
		return;
	s->warm_due = false;
	sbx_warm_arm(s);
}

void sbx_exec_close(struct sbx_exec *x)
{
	struct sbx *s = x->s;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&x->started) && !atomic_load(&x->exited))
		s->ops->exec_kill(&s->vm, x->id, SIGKILL);
	for (struct sbx_exec **p = &s->execs; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			break;
		}
	if (x->warm)
		sbx_warm_next(s);
	pthread_mutex_unlock(&s->lock);
	if (x->rfd >= 0)
		close(x->rfd);
	pthread_mutex_destroy(&x->rlock);
	free(x);
	sbx_put(s);
}

/* s->lock held: x's command is over; its readers look again. */
static void exec_ended(struct sbx *s, struct sbx_exec *x, int code)
{
	x->exit_code = x->timed_out ? SBX_EXEC_TIMEOUT_CODE : code;
	atomic_store(&x->exited, true);
	waiters_kick(s->node.id, WAKE_EXEC, x->id);
}

/* Called with s->lock held. */
void sbx_exec_exited(struct sbx *s, uint64_t id, int code)
{
	bool ended = false;
	for (struct sbx_exec *x = s->execs; x; x = x->next)
		if (x->id == id && !atomic_load(&x->exited)) {
			lat_add(s->eng, LAT_EXEC, now_usec() - x->start_usec);
			exec_ended(s, x, code);
			ended = true;
		}
	if (ended) /* an exec of ours, not any message */
		sbx_warm_next(s);
}

/* The sandbox ended: commands that did not report end with `code`. */
void sbx_exec_fail_all(struct sbx *s, int code)
{
	for (struct sbx_exec *x = s->execs; x; x = x->next)
		if (atomic_load(&x->started) && !atomic_load(&x->exited))
			exec_ended(s, x, code);
}
