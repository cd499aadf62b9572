/* The output pump (see output.h): one thread, one epoll set of pipe read
 * ends armed one-shot. Jobs' pipes belong to jobs.c (the pump only calls
 * the job_readable it is given at start); consoles are found here, each
 * second, in the fd table of every running sandbox's init: its stdout is
 * the console pipe (ns), opened again for reading through /proc. A console
 * that is a plain file (qemu, whose serial port QEMU writes on the host) is
 * only bounded, each second. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "disk.h"
#include "output.h"
#include "sandbox.h"

#define TICK_MS 1000
#define KEY_WAKE (~0ull) /* the eventfd that ends the thread */
#define KEY_DISCARD (1ull << 62) /* | fd: a pipe nobody reads any more */

/* A sandbox's console as the pump knows it; only the pump thread touches these. */
struct console {
	uint64_t id;
	pid_t pid;       /* the init it belongs to: a new one (a restart) has a new pipe */
	int rfd;         /* the pipe's read end; -1: console.log is written by the backend */
	bool seen;       /* found running at the last tick */
	bool lost;       /* console.log could not be written (said once in the log) */
	char path[PATH_MAX + 16]; /* console.log */
	struct console *next;
};

/* One pump thread for the process (pthread_once): jobs arm their pipes
 * (out_pump_arm, out_pump_discard) with no engine at hand. It serves the
 * engine of its first start. */
static struct {
	pthread_once_t once;
	int start_err;
	int epfd, wake_fd;
	pthread_t thread;
	bool running;
	_Atomic bool quit;
	struct console *consoles;
	/* Whose sandboxes it pumps and ticks: the first start's (engine_start's),
	 * and whom it tells of a job's readable pipe (that start's job_readable). */
	struct engine *_Atomic eng;
	void (*_Atomic job_readable)(struct engine *eng, uint64_t sbx_id, uint32_t n, int stream);
} pump = {.once = PTHREAD_ONCE_INIT, .epfd = -1, .wake_fd = -1};

int out_pump_arm(int fd, uint64_t key, bool add)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = key};
	if (pump.epfd < 0)
		return -ENOTCONN;
	return epoll_ctl(pump.epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

uint64_t out_front_cut(uint64_t size, uint64_t blksize, uint64_t cap)
{
	if (size <= cap || !blksize || (blksize & (blksize - 1)))
		return 0;
	uint64_t keep = cap / 2 ? cap / 2 : 1; /* a drop may not reach the end */
	return (size - keep) & ~(blksize - 1);
}

int64_t out_drop_front(int fd, uint64_t cap)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	uint64_t cut = out_front_cut((uint64_t)st.st_size, (uint64_t)st.st_blksize, cap);
	if (cut == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)cut) < 0)
		return errno == EINVAL || errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	return (int64_t)cut;
}

/* Where the front cannot be dropped (tmpfs): the last 64 KiB, copied to the
 * front. A console has no offsets to keep. */
static void keep_tail(int fd)
{
	static char tail[64 << 10];
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size <= OUT_CONSOLE_MAX_BYTES)
		return;
	ssize_t n = pread(fd, tail, sizeof(tail), st.st_size - (off_t)sizeof(tail));
	if (n < 0 || ftruncate(fd, 0) < 0 || pwrite(fd, tail, (size_t)n, 0) != n)
		log_warn("cannot bound a console log: %s", strerror(errno));
}

static void bound_console(const struct console *c, int fd)
{
	int64_t r = out_drop_front(fd, OUT_CONSOLE_MAX_BYTES);
	if (r == -EOPNOTSUPP)
		keep_tail(fd);
	else if (r < 0)
		log_warn("cannot bound %s: %s", c->path, strerror((int)-r));
}

/* Moves what the console pipe holds (at most the budget) into console.log.
 * False at its end: init is gone. */
static bool drain_console(struct console *c)
{
	static char buf[64 << 10];
	int fd = open(c->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600); /* keep_tail reads */
	size_t budget = OUT_PUMP_BUDGET_BYTES;
	bool open_end = true;
	while (budget > 0) {
		ssize_t n = read(c->rfd, buf, budget < sizeof(buf) ? budget : sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			open_end = n < 0 && errno == EAGAIN;
			break;
		}
		budget -= (size_t)n;
		/* A full disk (disk=) is the sandbox's own doing: said once, not per write. */
		if (fd >= 0) {
			bool ok = write(fd, buf, (size_t)n) >= 0;
			if (!ok && !c->lost)
				log_warn("sandbox console %s cannot be written (%s): output is dropped "
					 "until it can", c->path, strerror(errno));
			c->lost = !ok;
		}
		if (fd >= 0)
			bound_console(c, fd);
	}
	if (fd >= 0)
		close(fd);
	return open_end;
}

static void console_forget(struct console *c)
{
	for (struct console **p = &pump.consoles; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	if (c->rfd >= 0)
		close(c->rfd); /* leaves the epoll set */
	free(c);
}

static void console_readable(uint64_t id)
{
	for (struct console *c = pump.consoles; c; c = c->next) {
		if (c->id != id || c->rfd < 0)
			continue;
		if (drain_console(c))
			out_pump_arm(c->rfd, id << 20, false);
		else
			console_forget(c);
		return;
	}
}

int out_pump_discard(int fd)
{
	/* Watched already as a job's stream, mostly: its key changes. */
	int r = out_pump_arm(fd, KEY_DISCARD | (uint64_t)fd, false);
	if (r == -ENOENT)
		r = out_pump_arm(fd, KEY_DISCARD | (uint64_t)fd, true);
	if (r < 0)
		close(fd);
	return r;
}

/* A pipe handed over by out_pump_discard: emptied, until its end. */
static void discard_readable(int fd)
{
	static char sink[64 << 10];
	size_t budget = OUT_PUMP_BUDGET_BYTES;
	ssize_t n = 0;
	while (budget > 0 && ((n = read(fd, sink, sizeof(sink))) > 0 || (n < 0 && errno == EINTR)))
		budget -= n > 0 ? (size_t)n : 0;
	if (n == 0 || (n < 0 && errno != EAGAIN))
		close(fd);
	else
		out_pump_arm(fd, KEY_DISCARD | (uint64_t)fd, false);
}

static int pidfd_alive(int pidfd)
{
	return pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
}

/* With s->lock held: a read end of the pipe that s's init writes its console
 * to; -ESPIPE when its console is a file; another -errno: not now. */
static int console_pipe_of(struct sbx *s)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/fd/1", (int)s->vm.pid);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), r = fd;
	if (fd < 0)
		return -errno;
	/* Still that init after the open: its pid was not given to another process. */
	if (!pidfd_alive(s->vm.pidfd))
		r = -ESRCH;
	else if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		r = -ESPIPE;
	if (r < 0)
		close(fd);
	return r;
}

/* One sandbox at a tick: its console found (a new init: a new pipe), or bounded. */
static void console_look(struct sbx *s)
{
	pthread_mutex_lock(&s->lock);
	int st = atomic_load(&s->state);
	bool live = (st == SBX_RUNNING || st == SBX_PAUSED || st == SBX_STOPPING) &&
		    s->vm.pid > 0 && s->vm.pidfd >= 0;
	pid_t pid = s->vm.pid;
	struct console *c = pump.consoles;
	while (c && c->id != s->node.id)
		c = c->next;
	if (live && c && c->pid != pid) { /* restarted: the rest of the old pipe, then the new */
		if (c->rfd >= 0)
			drain_console(c);
		console_forget(c);
		c = NULL;
	}
	int fd = live && !c ? console_pipe_of(s) : -ESRCH;
	if ((fd >= 0 || fd == -ESPIPE) && (c = calloc(1, sizeof(*c)))) {
		c->id = s->node.id;
		c->pid = pid;
		snprintf(c->path, sizeof(c->path), "%s/console.log", s->vm.dir);
		c->rfd = fd;
		c->next = pump.consoles;
		pump.consoles = c;
		if (fd >= 0 && out_pump_arm(fd, c->id << 20, true) < 0) {
			console_forget(c); /* looked for again at the next tick */
			c = NULL;
		}
	} else if (fd >= 0) {
		close(fd);
	}
	pthread_mutex_unlock(&s->lock);
	if (!c || !live)
		return;
	c->seen = true;
	if (c->rfd < 0) { /* the backend writes console.log itself: bound it */
		int fd = open(c->path, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			bound_console(c, fd);
			close(fd);
		}
	}
}

static void tick(void)
{
	struct sbx_pinned p;
	for (struct console *c = pump.consoles; c; c = c->next)
		c->seen = false;
	sbx_pin_all(atomic_load(&pump.eng), &p);
	for (size_t i = 0; i < p.n; i++) {
		console_look(p.list[i]);
		sbx_disk_check(p.list[i]); /* what is stored here may fill a sandbox's disk */
	}
	sbx_unpin_all(&p);
	/* Gone or stopped: a file console is forgotten, a pipe at its EOF. */
	for (struct console *c = pump.consoles, *next; c; c = next) {
		next = c->next;
		if (!c->seen && c->rfd < 0)
			console_forget(c);
	}
}

static void *pump_main(void *arg)
{
	(void)arg;
	engine_thread_online();
	uint64_t last_tick = 0;
	while (!atomic_load(&pump.quit)) {
		struct epoll_event evs[64];
		int n = epoll_wait(pump.epfd, evs, 64, TICK_MS);
		for (int i = 0; i < n && !atomic_load(&pump.quit); i++) {
			uint64_t key = evs[i].data.u64, id = key >> 20;
			if (key == KEY_WAKE)
				continue;
			if (key & KEY_DISCARD) {
				discard_readable((int)(key & 0x7fffffff));
				continue;
			}
			uint32_t job = (uint32_t)(key & 0xfffff) >> 1;
			if (job)
				atomic_load(&pump.job_readable)(atomic_load(&pump.eng), id, job,
								(int)(key & 1));
			else
				console_readable(id);
		}
		if (now_usec() - last_tick >= TICK_MS * 1000ull) {
			last_tick = now_usec();
			tick();
		}
	}
	reg_thread_offline();
	return NULL;
}

static void start_once(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = KEY_WAKE};
	pump.epfd = epoll_create1(EPOLL_CLOEXEC);
	pump.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pump.epfd < 0 || pump.wake_fd < 0 ||
	    epoll_ctl(pump.epfd, EPOLL_CTL_ADD, pump.wake_fd, &ev) < 0) {
		pump.start_err = -errno;
		return;
	}
	pump.start_err = -pthread_create(&pump.thread, NULL, pump_main, NULL);
	pump.running = pump.start_err == 0;
}

int out_pump_start(struct engine *eng, void (*job_readable)(struct engine *eng, uint64_t sbx_id,
							    uint32_t n, int stream))
{
	struct engine *none = NULL;
	void (*no_fn)(struct engine *, uint64_t, uint32_t, int) = NULL;
	atomic_compare_exchange_strong(&pump.job_readable, &no_fn, job_readable);
	atomic_compare_exchange_strong(&pump.eng, &none, eng);
	pthread_once(&pump.once, start_once);
	return pump.start_err;
}

void out_pump_stop(void)
{
	uint64_t one = 1;
	if (!pump.running)
		return;
	atomic_store(&pump.quit, true);
	if (write(pump.wake_fd, &one, sizeof(one)) < 0)
		log_warn("cannot wake the output pump: %s", strerror(errno));
	pthread_join(pump.thread, NULL);
	pump.running = false;
	/* Pipes not drained stay open in the sandboxes' inits for the next daemon. */
	while (pump.consoles)
		console_forget(pump.consoles);
}
