/* The waiters' thread (see waiters.h). Parked reads sit in one list under
 * one lock; kicks, readable fds (one epoll set), deadlines and interrupts
 * only mark them due, from any thread and under any lock; the thread alone
 * looks again (outside the lock), rearms or ends them, and frees them, so
 * what the epoll set points to is alive whenever epoll_wait returns it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "sandbox.h"
#include "waiters.h"

/* NEW: not parked yet; IDLE: parked, nothing to do; DUE: in the due queue;
 * BUSY: the thread is looking; DONE: being answered. */
enum { W_NEW, W_IDLE, W_DUE, W_BUSY, W_DONE };

/* Without an fd to watch (no descriptor left for a dup), a read looks again this often. */
#define FALLBACK_POLL_MS 100

/* The process's parked reads, not an engine's: one waker thread (started
 * once), woken by sandbox id from any part (waiters_kick has no engine). */
static struct {
	pthread_mutex_t lock;
	pthread_once_t once;
	int start_err;
	bool started, stopping;
	bool sweep;          /* look for reads parked on a sandbox that went */
	pthread_t thread;
	int epfd, evfd;
	struct waiter *all;  /* every parked read: idle, due or busy */
	struct waiter *due, **due_tail;
} ws = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.once = PTHREAD_ONCE_INIT,
	.epfd = -1,
	.evfd = -1,
	.due_tail = &ws.due,
};

static void wake_thread(void)
{
	uint64_t one = 1;
	if (ws.evfd >= 0 && write(ws.evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("cannot wake the waiters' thread: %s", strerror(errno));
}

/* Lock held. True when w became due (the thread must be woken); a busy w
 * is looked at once more when its look ends. */
static bool make_due(struct waiter *w)
{
	if (w->state == W_BUSY)
		w->again = true;
	if (w->state != W_IDLE)
		return false;
	w->state = W_DUE;
	w->due_next = NULL;
	*ws.due_tail = w;
	ws.due_tail = &w->due_next;
	return true;
}

static struct waiter *pop_due(void)
{
	struct waiter *w = ws.due;
	if (w) {
		ws.due = w->due_next;
		if (!ws.due)
			ws.due_tail = &ws.due;
	}
	return w;
}

static void list_add(struct waiter *w)
{
	w->prev = NULL;
	w->next = ws.all;
	if (ws.all)
		ws.all->prev = w;
	ws.all = w;
}

static void list_del(struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		ws.all = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

void waiter_init(struct waiter *w, const struct waiter_ops *ops, uint64_t deadline_usec)
{
	memset(w, 0, sizeof(*w));
	w->ops = ops;
	w->deadline_usec = deadline_usec;
	w->state = W_NEW;
	w->fd = -1;
	w->wk.fd = -1;
}

/* Lock held, w busy: it waits again for what wk says. */
static void rearm(struct waiter *w, const struct sbx_wake *wk)
{
	w->state = W_IDLE;
	w->wk = *wk;
	unsigned poll_ms = wk->poll_ms;
	if (wk->fd >= 0) {
		struct epoll_event ev = {.events = (wk->out ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT,
					 .data.ptr = w};
		/* The first time a dup of its own (two reads of one file may wait at
		 * once; epoll takes an fd once); then re-enabled, which also reports
		 * an fd that turned readable while it was off. */
		int op = EPOLL_CTL_MOD;
		if (w->fd < 0) {
			w->fd = fcntl(wk->fd, F_DUPFD_CLOEXEC, 0);
			op = EPOLL_CTL_ADD;
		}
		if (w->fd >= 0 && epoll_ctl(ws.epfd, op, w->fd, &ev) < 0) {
			close(w->fd);
			w->fd = -1;
		}
		if (w->fd < 0 && (!poll_ms || poll_ms > FALLBACK_POLL_MS))
			poll_ms = FALLBACK_POLL_MS;
	} else if (w->fd >= 0) {
		epoll_ctl(ws.epfd, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
		w->fd = -1;
	}
	uint64_t at = poll_ms ? now_usec() + (uint64_t)poll_ms * 1000 : 0;
	if (w->deadline_usec && (!at || w->deadline_usec < at))
		at = w->deadline_usec;
	w->wake_at_usec = at;
}

/* Lock held: w leaves the waiters and is answered (outside the lock). */
static void finish(struct waiter *w, int r)
{
	if (w->state != W_NEW)
		list_del(w);
	w->state = W_DONE;
	if (w->fd >= 0) {
		epoll_ctl(ws.epfd, EPOLL_CTL_DEL, w->fd, NULL);
		close(w->fd);
		w->fd = -1;
	}
	pthread_mutex_unlock(&ws.lock);
	w->ops->end(w, r);
	pthread_mutex_lock(&ws.lock);
}

/* Lock held: looks again at every due read. */
static void run_due(void)
{
	struct waiter *w;
	while (!ws.stopping && (w = pop_due())) {
		w->state = W_BUSY;
		w->again = false;
		bool interrupted = w->interrupted;
		bool final = w->deadline_usec && now_usec() >= w->deadline_usec;
		pthread_mutex_unlock(&ws.lock);
		struct sbx_wake wk = {.fd = -1};
		int r = interrupted ? -EINTR : w->ops->try(w, final, &wk);
		pthread_mutex_lock(&ws.lock);
		if (r == -EAGAIN && final)
			r = -ETIMEDOUT; /* a try must answer at its deadline; never wait on */
		if (r != -EAGAIN) {
			finish(w, r);
			continue;
		}
		bool again = w->again || w->interrupted;
		rearm(w, &wk);
		if (again)
			make_due(w);
	}
}

/* Lock held: the reads whose deadline or poll time came. */
static void expire(void)
{
	uint64_t now = now_usec();
	for (struct waiter *w = ws.all; w; w = w->next)
		if (w->state == W_IDLE && w->wake_at_usec && w->wake_at_usec <= now)
			make_due(w);
}

/* Lock held: milliseconds until the next deadline or poll time, -1 none. */
static int next_timeout_ms(void)
{
	uint64_t first = 0;
	for (struct waiter *w = ws.all; w; w = w->next)
		if (w->state == W_IDLE && w->wake_at_usec && (!first || w->wake_at_usec < first))
			first = w->wake_at_usec;
	if (!first)
		return -1;
	uint64_t now = now_usec();
	return first <= now ? 0 : (int)((first - now + 999) / 1000);
}

/* Lock held (dropped meanwhile): reads parked on a sandbox that is gone are
 * due. The lookups run outside the lock: a last sbx_put frees a sandbox,
 * and that kicks. */
static void sweep_gone(void)
{
	size_t n = 0, cap = 0;
	struct {
		struct engine *eng;
		uint64_t id;
	} *ids = NULL;
	for (struct waiter *w = ws.all; w; w = w->next) {
		size_t i = 0;
		while (i < n && (ids[i].id != w->wk.sbx || ids[i].eng != w->wk.eng))
			i++;
		if (i < n)
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			void *p = realloc(ids, c * sizeof(*ids));
			if (!p)
				break;
			ids = p;
			cap = c;
		}
		ids[n].eng = w->wk.eng;
		ids[n++].id = w->wk.sbx;
	}
	pthread_mutex_unlock(&ws.lock);
	size_t gone = 0;
	for (size_t i = 0; i < n; i++) {
		/* No engine: no sandbox to look for (it is gone, as id 0 is). */
		struct sbx *s = ids[i].eng ? sbx_get_id(ids[i].eng, ids[i].id) : NULL;
		if (s)
			sbx_put(s);
		else
			ids[gone++] = ids[i];
	}
	pthread_mutex_lock(&ws.lock);
	for (struct waiter *w = ws.all; w && gone; w = w->next)
		for (size_t i = 0; i < gone; i++)
			if (w->wk.sbx == ids[i].id && w->wk.eng == ids[i].eng)
				make_due(w);
	free(ids);
}

static void *waiters_main(void *arg)
{
	(void)arg;
	engine_thread_online();
	pthread_mutex_lock(&ws.lock);
	while (!ws.stopping) {
		int timeout = next_timeout_ms();
		pthread_mutex_unlock(&ws.lock);
		struct epoll_event evs[64];
		int n = epoll_wait(ws.epfd, evs, 64, timeout);
		pthread_mutex_lock(&ws.lock);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr) {
				make_due(evs[i].data.ptr);
				continue;
			}
			uint64_t v;
			if (read(ws.evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warn("waiters: eventfd: %s", strerror(errno));
		}
		expire();
		if (ws.sweep) {
			ws.sweep = false;
			sweep_gone();
		}
		run_due();
	}
	while (ws.all)
		finish(ws.all, -ENOTCONN);
	ws.due = NULL;
	ws.due_tail = &ws.due;
	pthread_mutex_unlock(&ws.lock);
	reg_thread_offline();
	return NULL;
}

static void waiters_start(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int r = 0;
	ws.epfd = epoll_create1(EPOLL_CLOEXEC);
	ws.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ws.epfd < 0 || ws.evfd < 0 || epoll_ctl(ws.epfd, EPOLL_CTL_ADD, ws.evfd, &ev) < 0)
		r = -errno;
	else
		r = -pthread_create(&ws.thread, NULL, waiters_main, NULL);
	pthread_mutex_lock(&ws.lock);
	ws.start_err = r;
	ws.started = r == 0;
	pthread_mutex_unlock(&ws.lock);
	if (r < 0)
		log_err("cannot start the waiters' thread: %s; blocking reads fail", strerror(-r));
}

void waiter_park(struct waiter *w, const struct sbx_wake *wk)
{
	pthread_once(&ws.once, waiters_start);
	pthread_mutex_lock(&ws.lock);
	if (!ws.started || ws.stopping) {
		int r = ws.start_err ? ws.start_err : -ENOTCONN;
		finish(w, r);
		pthread_mutex_unlock(&ws.lock);
		return;
	}
	w->wk = *wk;
	w->wk.fd = -1; /* the thread's own look arms what it needs */
	list_add(w);
	w->state = W_IDLE;
	make_due(w);
	pthread_mutex_unlock(&ws.lock);
	wake_thread();
}

void waiter_interrupt(struct waiter *w)
{
	pthread_mutex_lock(&ws.lock);
	w->interrupted = true;
	bool wake = make_due(w);
	pthread_mutex_unlock(&ws.lock);
	if (wake)
		wake_thread();
}

void waiters_kick(uint64_t sbx, enum wake_kind kind, uint64_t sub)
{
	bool wake = false;
	pthread_mutex_lock(&ws.lock);
	for (struct waiter *w = ws.all; w; w = w->next)
		if (w->wk.sbx == sbx &&
		    (kind == WAKE_ANY || (w->wk.kind == kind && w->wk.sub == sub)))
			wake |= make_due(w);
	pthread_mutex_unlock(&ws.lock);
	if (wake)
		wake_thread();
}

void waiters_kick_gone(void)
{
	pthread_mutex_lock(&ws.lock);
	bool wake = ws.all && !ws.sweep;
	if (ws.all)
		ws.sweep = true;
	pthread_mutex_unlock(&ws.lock);
	if (wake)
		wake_thread();
}

void waiters_stop(void)
{
	pthread_mutex_lock(&ws.lock);
	bool started = ws.started;
	ws.stopping = true;
	pthread_mutex_unlock(&ws.lock);
	if (!started)
		return;
	wake_thread();
	pthread_join(ws.thread, NULL);
}
