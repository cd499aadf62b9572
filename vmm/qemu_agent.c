/* The host end of the guest agent's channel (agent/agent_proto.h): the
 * hello that marks a booted guest, and a reader thread per VM that streams
 * each command's output into the engine's pipe and turns the agent's exit
 * reports into datagrams on the sandbox's ctl_fd, which the engine's monitor
 * already watches. Output is flow-controlled per command (AGENT_WINDOW): a
 * reader that stalls one command holds at most one window here and never
 * stalls the channel. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "qemu.h"
#include "vmm.h"

/* How long a send waits for a guest that does not read its port. Only a
 * restore's or adopt's first frame waits (qagent_send_synced: an engine
 * worker's, before the reader thread runs); every other frame goes at once
 * or is queued (qagent_send), so no FUSE worker and no lock waits for the
 * guest. A files request's look fails once it found no room this long. */
#define AGENT_SEND_WAIT_MS 5000
/* How many send bounds queued frames wait, the channel taking nothing, before
 * the agent is taken for lost (30 s by default): far beyond a loaded
 * host's hiccup, short of a guest that never reads holding its commands
 * for ever. */
#define AGENT_STALL_SENDS 6
/* The channel's send buffer (the kernel doubles it for its accounting). */
#define AGENT_SNDBUF (1 << 20)

/* With wlock held: writes buf[0, n) until done or deadline. Bytes written,
 * or -errno (never -EAGAIN). */
static ssize_t send_until(struct qemu_vm *q, const char *buf, size_t n, uint64_t deadline)
{
	size_t off = 0;
	while (off < n) {
		if (q->agent_fd < 0)
			return off ? (ssize_t)off : -ENOTCONN;
		ssize_t w = send(q->agent_fd, buf + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			/* The guest reads: the queue's deadline starts again, and
			 * an agent taken for lost is back. */
			atomic_store(&q->owed_usec, now_usec());
			atomic_store(&q->lost, false);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return off ? (ssize_t)off : w < 0 ? -errno : -EIO;
		uint64_t now = now_usec();
		if (now >= deadline)
			break;
		struct pollfd pf = {.fd = q->agent_fd, .events = POLLOUT};
		if (poll(&pf, 1, (int)((deadline - now + 999) / 1000)) < 0 && errno != EINTR)
			return off ? (ssize_t)off : -errno;
	}
	return (ssize_t)off;
}

/* The reader thread looks again (a new stdin, a deadline, room wanted). */
static void reader_kick(struct qemu_vm *q)
{
	uint64_t one = 1;
	if (write(q->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("cannot wake the agent reader: %s", strerror(errno));
}

/* Something waits for room in the channel: the reader thread polls for it. */
static void want_room(struct qemu_vm *q)
{
	if (!atomic_exchange(&q->room_wanted, true))
		reader_kick(q);
}

/* With wlock held: the channel has not taken a send for the whole bound;
 * later sends do not wait until it takes one again. */
static void channel_stalled(struct qemu_vm *q)
{
	if (!q->wstalled)
		log_warn("qemu: the guest agent has not read its channel for %d ms; files requests "
			 "to it fail at once until it reads again", q->send_wait_ms);
	q->wstalled = true;
}

/* With wlock held and nothing owed: buf[0, n), a frame, whole or not at all
 * as the guest sees it: 0 sent, or committed (its rest kept in wpend, n
 * fits it, for the next send or the reader thread); -EAGAIN: none of it
 * went by deadline; -errno. */
static int send_start_locked(struct qemu_vm *q, const char *buf, size_t n, uint64_t deadline)
{
	ssize_t w = send_until(q, buf, n, deadline);
	if (w <= 0)
		return w < 0 ? (int)w : -EAGAIN;
	if ((size_t)w < n) {
		memcpy(q->wpend, buf + w, n - (size_t)w);
		q->wpend_off = 0;
		q->wpend_len = n - (size_t)w;
		want_room(q);
	}
	return 0;
}

/* The guest took bytes of the channel since the last look (fewer wait in
 * our socket): progress, as a send's is, for the queue's deadline. */
static void channel_progress(struct qemu_vm *q)
{
	int outq;
	if (q->agent_fd < 0 || ioctl(q->agent_fd, SIOCOUTQ, &outq) < 0)
		return;
	if (outq < atomic_exchange(&q->outq_seen, outq))
		atomic_store(&q->owed_usec, now_usec());
}

/* With xlock held: frame buf[0, n) at the end of the queue, for the next
 * sender or the reader thread; *ticket (unless NULL) its seq. 0, -EBUSY when the queue
 * is full (a guest that does not read its channel), -ETIMEDOUT while the
 * agent is taken for lost, -ENOTCONN once nothing sends it. */
static int queue_frame_locked(struct qemu_vm *q, const char *buf, size_t n, uint64_t *ticket)
{
	if (q->reader_gone)
		return -ENOTCONN;
	if (atomic_load(&q->lost))
		return -ETIMEDOUT;
	if (q->queue_bytes + sizeof(struct qemu_frame) + n > QEMU_QUEUE_MAX)
		return -EBUSY;
	struct qemu_frame *fr = malloc(sizeof(*fr) + n);
	if (!fr)
		return -ENOMEM;
	fr->next = NULL;
	fr->seq = ++q->queue_seq;
	fr->len = (uint32_t)n;
	memcpy(fr->buf, buf, n);
	if (q->queue) {
		q->queue_last->next = fr;
	} else {
		q->queue = fr;
		/* The deadline runs from here (or the channel's next progress);
		 * the reader thread learns of it. */
		atomic_store(&q->owed_usec, now_usec());
		reader_kick(q);
	}
	q->queue_last = fr;
	q->queue_bytes += sizeof(*fr) + n;
	if (ticket)
		*ticket = fr->seq;
	want_room(q);
	return 0;
}

/* With wlock and xlock held: the first queued frame goes (sent, or dropped
 * with the rest when the reader thread ends or the agent is lost). */
static void queue_pop_locked(struct qemu_vm *q, bool sent)
{
	struct qemu_frame *fr = q->queue;
	q->queue = fr->next;
	q->queue_bytes -= sizeof(*fr) + fr->len;
	if (!sent) {
		if (q->drop_to + 1 != fr->seq)
			q->drop_from = fr->seq;
		q->drop_to = fr->seq;
	}
	free(fr);
}

/* With wlock held: what the channel owes before any new frame, by deadline
 * (0: what goes at once): the rest of a frame a send left half written,
 * then the queued frames. 0 once all went; -EAGAIN while some is owed (the
 * reader thread sends it when there is room); -errno. */
static int send_owed_locked(struct qemu_vm *q, uint64_t deadline)
{
	for (;;) {
		if (q->wpend_len > q->wpend_off) {
			ssize_t w = send_until(q, q->wpend + q->wpend_off,
					       q->wpend_len - q->wpend_off, deadline);
			if (w < 0)
				return (int)w;
			q->wpend_off += (size_t)w;
			if (q->wpend_off < q->wpend_len) {
				want_room(q);
				return -EAGAIN;
			}
			q->wpend_off = q->wpend_len = 0;
		}
		/* Senders add at the end; only a holder of wlock takes the first,
		 * so it stays while the send runs without xlock. */
		pthread_mutex_lock(&q->xlock);
		struct qemu_frame *fr = q->queue;
		pthread_mutex_unlock(&q->xlock);
		if (!fr)
			return 0;
		int r = send_start_locked(q, fr->buf, fr->len, deadline);
		if (r == -EAGAIN)
			want_room(q);
		if (r < 0)
			return r;
		pthread_mutex_lock(&q->xlock);
		queue_pop_locked(q, true);
		bool drained = !q->queue;
		pthread_mutex_unlock(&q->xlock);
		if (drained)
			reader_kick(q); /* stdin held back while frames waited (pump_stdin) */
	}
}

/* With wlock held: one frame (raw bytes: a sync marker, a header and its
 * payload), whole or not at all as the guest sees it, after what is owed.
 * wait: up to send_wait_ms (none once the channel stalled): 0 sent or
 * committed, -ETIMEDOUT when not started (the channel stalls); else none:
 * -EAGAIN when it has no room now (-ETIMEDOUT when stalled already). */
static int send_frame_locked(struct qemu_vm *q, const char *buf, size_t n, bool wait)
{
	uint64_t deadline = wait && !q->wstalled ? now_usec() + q->send_wait_ms * 1000ull : 0;
	int r = send_owed_locked(q, deadline);
	if (r == 0)
		r = send_start_locked(q, buf, n, deadline);
	if (r == 0 && q->wpend_len == q->wpend_off) {
		q->wstalled = false;
		return 0;
	}
	if (r < 0 && r != -EAGAIN)
		return r;
	if (!wait)
		return r == -EAGAIN && q->wstalled ? -ETIMEDOUT : r;
	channel_stalled(q); /* a frame committed stays sent (0) */
	return r == -EAGAIN ? -ETIMEDOUT : 0;
}

enum send_how {
	SEND_NOW,   /* none, nor behind another sender's: -EAGAIN then */
	SEND_WAIT,  /* the bounded send (qagent_send_synced) */
	SEND_QUEUE, /* none: what cannot go now is queued (qagent_send) */
};

/* One frame of type with payload p, sent as how says; *ticket (when not
 * NULL): 0, or the frame's seq when it was queued. */
static int send_frame(struct qemu_vm *q, uint8_t type, uint64_t id, const void *p, uint32_t len,
		      enum send_how how, uint64_t *ticket)
{
	uint64_t seq = 0;
	char buf[sizeof(struct agent_hdr) + AGENT_FDATA_MAX];
	struct agent_hdr h = {.type = type, .len = len, .id = id};
	if (len > (type == AG_FDATA ? AGENT_FDATA_MAX : AGENT_PAYLOAD_MAX))
		return -E2BIG;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), p, len);
	bool locked = true;
	if (how == SEND_WAIT)
		pthread_mutex_lock(&q->wlock);
	else
		locked = pthread_mutex_trylock(&q->wlock) == 0;
	int r = !locked ? -EAGAIN : q->agent_fd < 0 ? -ENOTCONN
			  : send_frame_locked(q, buf, sizeof(h) + len, how == SEND_WAIT);
	/* Behind another sender, or a channel that has no room: the queue,
	 * after what it holds (wlock, when held, keeps the order plain). */
	if (how == SEND_QUEUE && (r == -EAGAIN || r == -ETIMEDOUT)) {
		pthread_mutex_lock(&q->xlock);
		r = queue_frame_locked(q, buf, sizeof(h) + len, &seq);
		pthread_mutex_unlock(&q->xlock);
	}
	if (locked)
		pthread_mutex_unlock(&q->wlock);
	if (ticket)
		*ticket = seq;
	return r;
}

int qagent_send(struct qemu_vm *q, uint8_t type, uint64_t id, const void *p, uint32_t len)
{
	return send_frame(q, type, id, p, len, SEND_QUEUE, NULL);
}

int qagent_send_ticket(struct qemu_vm *q, uint8_t type, uint64_t id, const void *p, uint32_t len,
		       uint64_t *ticket)
{
	return send_frame(q, type, id, p, len, SEND_QUEUE, ticket);
}

int qagent_wait_sent(struct qemu_vm *q, uint64_t ticket, int timeout_ms)
{
	const struct timespec tick = {0, 10 * 1000 * 1000};
	uint64_t end = now_usec() + (uint64_t)timeout_ms * 1000;
	for (;;) {
		pthread_mutex_lock(&q->xlock);
		bool dropped = q->drop_to && ticket >= q->drop_from && ticket <= q->drop_to;
		bool queued = q->queue && q->queue->seq <= ticket;
		pthread_mutex_unlock(&q->xlock);
		if (dropped)
			return -ENOTCONN;
		if (!queued)
			return 0; /* sent */
		channel_progress(q);
		uint64_t now = now_usec(), since = atomic_load(&q->owed_usec);
		bool idle = !atomic_load(&q->held) && now > since &&
			    now - since >= (uint64_t)q->send_wait_ms * 1000;
		if (idle || now >= end)
			return -ETIMEDOUT;
		nanosleep(&tick, NULL);
	}
}

void qagent_hold(struct qemu_vm *q, bool hold)
{
	atomic_store(&q->held, hold);
	if (!hold) { /* the guest runs again: its deadline starts afresh */
		atomic_store(&q->owed_usec, now_usec());
		reader_kick(q);
	}
}

int qagent_send_err(const struct qemu_vm *q, int r, const char *what, struct err *e)
{
	if (r == -EBUSY)
		return err_set(e, r, "cannot send %s to the guest agent: it has not read its "
			       "channel, where %u KiB wait for it already; nothing was sent (try "
			       "again once it reads)", what, QEMU_QUEUE_MAX >> 10);
	if (r == -ETIMEDOUT)
		return err_set(e, r, "cannot send %s to the guest agent: it read nothing of its "
			       "channel for %d s with frames waiting, so the daemon took it for "
			       "lost (dropped them, ended its commands); nothing was sent, and "
			       "nothing is until it reads again (stop ends the VM through QEMU)",
			       what, q->stall_ms / 1000);
	return err_set(e, r, "cannot send %s to the guest agent: %s", what, strerror(-r));
}

/* AGENT_SYNC, raw, then the frame, twice: the agent drops its input up to
 * the marker; should the first marker land inside a frame the agent had half
 * read from its old host, the second one is whole (the agent acts once per
 * nonce). These wait for room, bounded: no reader thread runs yet to send
 * a queued frame, and the caller (an engine worker's restore or adopt)
 * waits for the agent's answer next anyway. */
int qagent_send_synced(struct qemu_vm *q, uint8_t type, const char *payload)
{
	for (int i = 0; i < 2; i++) {
		pthread_mutex_lock(&q->wlock);
		int r = q->agent_fd < 0 ? -ENOTCONN
					: send_frame_locked(q, AGENT_SYNC, AGENT_SYNC_LEN, true);
		pthread_mutex_unlock(&q->wlock);
		if (r == 0)
			r = send_frame(q, type, 0, payload, (uint32_t)strlen(payload), SEND_WAIT, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Takes the first whole frame out of q->in. 1: got one, 0: need more, <0: garbage. */
static int next_frame(struct qemu_vm *q, struct agent_hdr *h, char *payload)
{
	return qagent_take_frame(q->in, &q->in_len, h, payload);
}

/* Receives what is there into q->in. 0, or -EPIPE when QEMU closed the channel. */
static int fill(struct qemu_vm *q)
{
	ssize_t n = recv(q->agent_fd, q->in + q->in_len, sizeof(q->in) - q->in_len, MSG_DONTWAIT);
	if (n == 0)
		return -EPIPE;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	q->in_len += (size_t)n;
	return 0;
}

int qagent_wait_hello(struct qemu_vm *q, int timeout_ms, struct err *e)
{
	uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
	struct agent_hdr h;
	static __thread char payload[AGENT_OUT_MAX + 1];
	for (;;) {
		int r = next_frame(q, &h, payload);
		if (r < 0)
			return err_set(e, r, "the guest agent sent a malformed frame");
		if (r > 0) {
			if (h.type == AG_HELLO) {
				q->agent_version = qagent_hello_version(payload, h.len);
				return 0;
			}
			return err_set(e, -EPROTO, "the guest agent's first frame is '%c', not hello", h.type);
		}
		uint64_t now = now_usec();
		if (now >= deadline)
			return err_set(e, -ETIMEDOUT, "the guest agent did not say hello within %d s "
				       "(the guest did not boot; see log)", timeout_ms / 1000);
		struct pollfd pfd = {.fd = q->agent_fd, .events = POLLIN};
		r = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
		if (r < 0 && errno != EINTR)
			return err_set(e, -errno, "poll on the agent channel: %s", strerror(errno));
		if (r > 0 && (r = fill(q)) < 0)
			return err_set(e, r == -EPIPE ? -ECHILD : r,
				       "QEMU exited before the guest agent said hello");
	}
}

/* After AG_FORK (or AG_RESYNC): the bytes before the agent's "fork NONCE"
 * ("resync NONCE") hello are what the source (or the old host) had in
 * flight, dropped; framing starts right after it. */
int qagent_wait_answer(struct qemu_vm *q, const char *what, const char *nonce, int timeout_ms,
		       struct err *e)
{
	uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
	char want[64];
	int wn = snprintf(want, sizeof(want), " %s %s", what, nonce);
	for (;;) {
		/* Found: framing starts after it. Not found in a full buffer: keeps
		 * the tail a match could start in. */
		if (qagent_take_answer(q->in, &q->in_len, sizeof(q->in), want, (size_t)wn,
				       &q->agent_version))
			return 0;
		uint64_t now = now_usec();
		if (now >= deadline)
			return err_set(e, -ETIMEDOUT, "the guest agent did not answer '%s' within %d s "
				       "(see log)", what, timeout_ms / 1000);
		struct pollfd pfd = {.fd = q->agent_fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
		if (r < 0 && errno != EINTR)
			return err_set(e, -errno, "poll on the agent channel: %s", strerror(errno));
		if (r > 0 && (r = fill(q)) < 0)
			return err_set(e, r == -EPIPE ? -ECHILD : r,
				       "QEMU exited before the guest agent answered '%s'", what);
	}
}

/* Waits until fd is writable or the reader is told to quit (then -1). */
static int wait_writable(struct qemu_vm *q, int fd)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLOUT}, {.fd = q->quit_fd, .events = POLLIN}};
	while (poll(p, 2, -1) < 0)
		if (errno != EINTR)
			return -1;
	return p[1].revents ? -1 : 0;
}

static struct qemu_exec *exec_find(struct qemu_vm *q, uint64_t id)
{
	for (struct qemu_exec *x = q->execs; x; x = x->next)
		if (x->id == id)
			return x;
	return NULL;
}

static void exec_free(struct qemu_exec *x)
{
	int fds[] = {x->fd, x->err_fd, x->in_fd}; /* fd: EOF for the engine's reader */
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(x->buf);
	free(x);
}

/* Gives the agent back what left our hands, in batches. */
static void credit(struct qemu_vm *q, struct qemu_exec *x, size_t n, bool now)
{
	x->uncredited += n;
	if (x->done || x->uncredited == 0 || (!now && x->uncredited < AGENT_WINDOW / 4))
		return;
	char p[24];
	int len = snprintf(p, sizeof(p), "%zu", x->uncredited);
	if (qagent_send(q, AG_CREDIT, x->id, p, (uint32_t)len) == 0)
		x->uncredited = 0;
}

/* Moves buffered output into the pipe without blocking. Output of a handle
 * that was closed (EPIPE) is dropped, and still credited, so the agent keeps
 * draining the command until the engine's kill arrives. */
static void flush(struct qemu_vm *q, struct qemu_exec *x)
{
	while (x->len) {
		ssize_t w = x->fd >= 0 ? write(x->fd, x->buf + x->off, x->len) : (ssize_t)x->len;
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0) {
			close(x->fd);
			x->fd = -1;
			continue;
		}
		x->off += (size_t)w;
		x->len -= (size_t)w;
		credit(q, x, (size_t)w, false);
	}
	if (!x->len)
		x->off = 0;
}

/* Only the reader thread removes entries (and a sender its own, unsent), so
 * x stays valid between the locks. */
static void exec_remove(struct qemu_vm *q, struct qemu_exec *x)
{
	pthread_mutex_lock(&q->xlock);
	for (struct qemu_exec **pp = &q->execs; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	pthread_mutex_unlock(&q->xlock);
	exec_free(x);
}

/* A sender's own exec whose frame never went: freed unless the reader
 * thread ended it meanwhile (agent_lost), found by its id (x may be gone). */
static void exec_forget(struct qemu_vm *q, uint64_t id)
{
	pthread_mutex_lock(&q->xlock);
	struct qemu_exec *x = NULL;
	for (struct qemu_exec **pp = &q->execs; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			x = *pp;
			*pp = x->next;
			break;
		}
	pthread_mutex_unlock(&q->xlock);
	if (x)
		exec_free(x);
}

/* A job's output goes into its files at once (regular files do not stall). */
static void deliver_job(struct qemu_vm *q, struct qemu_exec *x, bool err, const char *p, size_t n)
{
	int fd = err ? x->err_fd : x->fd;
	size_t off = 0;
	while (fd >= 0 && off < n) {
		ssize_t w = write(fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!x->warned)
				log_warn("job output of exec %" PRIu64 " lost: %s", x->id,
					 w < 0 ? strerror(errno) : "short write");
			x->warned = true;
			break;
		}
		off += (size_t)w;
	}
	credit(q, x, n, false);
}

static void deliver(struct qemu_vm *q, uint64_t id, bool err, const char *p, size_t n)
{
	pthread_mutex_lock(&q->xlock);
	struct qemu_exec *x = exec_find(q, id);
	pthread_mutex_unlock(&q->xlock);
	if (!x || x->done)
		return;
	if (x->job) {
		deliver_job(q, x, err, p, n);
		return;
	}
	size_t room = AGENT_WINDOW - x->off - x->len;
	if (n > room && x->off) {
		memmove(x->buf, x->buf + x->off, x->len);
		x->off = 0;
		room = AGENT_WINDOW - x->len;
	}
	if (n > room) { /* the agent overran its window: a bug, never a hang */
		if (!x->warned)
			log_warn("guest agent overran the output window of exec %" PRIu64, id);
		x->warned = true;
		n = room;
	}
	memcpy(x->buf + x->off + x->len, p, n);
	x->len += n;
	flush(q, x);
}

/* A report for the engine's monitor on note_wr. */
static int note(struct qemu_vm *q, const char *msg, int n)
{
	while (send(q->note_wr, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		if (errno != EINTR && (errno != EAGAIN || wait_writable(q, q->note_wr) < 0))
			return -1;
	return 0;
}

/* The agent took n bytes of a job's stdin into its pipe. */
static void stdin_credit(struct qemu_vm *q, uint64_t id, const char *n)
{
	pthread_mutex_lock(&q->xlock);
	struct qemu_exec *x = exec_find(q, id);
	long c = atol(n);
	if (x && c > 0 && x->in_credit + (size_t)c <= AGENT_IN_WINDOW)
		x->in_credit += (size_t)c;
	pthread_mutex_unlock(&q->xlock);
}

/* Forwards what the engine wrote to a job's stdin (EOF: an empty AG_IN).
 * 1: bytes went, 0: nothing there now, -1: at its end, -EAGAIN: frames
 * wait for room in the channel, so stdin waits in the engine's pipe (its
 * writer parks there) rather than in the queue the commands need. */
static int pump_stdin(struct qemu_vm *q, struct qemu_exec *x)
{
	char buf[AGENT_PAYLOAD_MAX];
	pthread_mutex_lock(&q->xlock);
	bool full = q->queue != NULL;
	pthread_mutex_unlock(&q->xlock);
	if (full)
		return -EAGAIN;
	size_t want = x->in_credit < sizeof(buf) ? x->in_credit : sizeof(buf);
	ssize_t n = read(x->in_fd, buf, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		close(x->in_fd);
		x->in_fd = -1;
		qagent_send(q, AG_IN, x->id, NULL, 0);
		return -1;
	}
	x->in_credit -= (size_t)n;
	qagent_send(q, AG_IN, x->id, buf, (uint32_t)n);
	return 1;
}

/* A terminal's eof goes once every stdin byte written before it was asked
 * has gone (the pipe is empty): the agent writes it after them. Stdin that
 * waits for credit holds it back; the next AG_CREDIT brings it here again. */
static void send_veofs(struct qemu_vm *q)
{
	/* New entries go in at the head; only this thread takes any out. */
	pthread_mutex_lock(&q->xlock);
	struct qemu_exec *head = q->execs;
	pthread_mutex_unlock(&q->xlock);
	for (struct qemu_exec *x = head; x; x = x->next) {
		pthread_mutex_lock(&q->xlock);
		int owed = x->veofs;
		pthread_mutex_unlock(&q->xlock);
		if (!owed || x->in_fd < 0)
			continue;
		int r = 0;
		while (x->in_credit && (r = pump_stdin(q, x)) > 0)
			;
		if (x->in_credit == 0 || x->in_fd < 0 || r != 0)
			continue; /* again on the next credit, or once the queue drained */
		pthread_mutex_lock(&q->xlock);
		x->veofs -= owed;
		pthread_mutex_unlock(&q->xlock);
		while (owed-- > 0)
			qagent_send(q, AG_VEOF, x->id, NULL, 0);
	}
}

/* Reports the exit at once; the output pipe closes when its last byte is in. */
static int exited(struct qemu_vm *q, uint64_t id, const char *code)
{
	pthread_mutex_lock(&q->xlock);
	struct qemu_exec *x = exec_find(q, id);
	pthread_mutex_unlock(&q->xlock);
	if (x) {
		x->done = true;
		if (!x->len)
			exec_remove(q, x);
	}
	qagent_send(q, AG_ACK, id, NULL, 0); /* the agent may forget the command now */
	char msg[64], *sig;
	int c = (int)strtol(code, &sig, 10);
	int n = snprintf(msg, sizeof(msg), "E%" PRIu64 " %d %d", id, c, atoi(sig));
	return note(q, msg, n);
}

/* The command's pid and a terminal's number (-1: none); one the agent's warm
 * shell took adds 'e' (an exec) or 'j' (a job) for the engine's count, once
 * for a command of ours: the guest may say it of anything, any number of
 * times. */
static int started(struct qemu_vm *q, uint64_t id, const char *p)
{
	int pid, pts;
	const char *warm = "";
	if (qagent_pid_report(p, &pid, &pts)) {
		pthread_mutex_lock(&q->xlock);
		struct qemu_exec *x = exec_find(q, id);
		if (x && !x->warm) {
			x->warm = true;
			warm = x->job ? " j" : " e";
		}
		pthread_mutex_unlock(&q->xlock);
	}
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "P%" PRIu64 " %d %d%s", id, pid, pts, warm);
	return note(q, msg, n);
}

#define READER_MAX_FDS 64

static void file_result(struct qemu_vm *q, uint64_t id, const char *p, size_t n);
static void file_data(struct qemu_vm *q, uint64_t id, const char *p, size_t n);
static void file_credits(struct qemu_vm *q);
static int files_expire(struct qemu_vm *q);
static int queue_expire(struct qemu_vm *q);
static void file_changed(struct qemu_vm *q, struct qemu_file *f);
static void channel_room(struct qemu_vm *q);
static int files_send_kept_locked(struct qemu_vm *q);
static void file_unkeep(struct qemu_vm *q, struct qemu_file *f);
static int file_send_failed(struct qemu_vm *q, struct qemu_file *f, int r);

/* Acts on every whole frame in q->in; <0 when the channel is unusable. */
static int handle_frames(struct qemu_vm *q)
{
	static __thread char payload[AGENT_OUT_MAX + 1];
	struct agent_hdr h;
	int r, bad = 0;
	while (!bad && (r = next_frame(q, &h, payload)) > 0) {
		if (h.type == AG_OUT || h.type == AG_ERR) {
			deliver(q, h.id, h.type == AG_ERR, payload, h.len);
		} else if (h.type == AG_EXIT) {
			bad = exited(q, h.id, payload);
		} else if (h.type == AG_CREDIT) {
			stdin_credit(q, h.id, payload);
		} else if (h.type == AG_FRES) {
			file_result(q, h.id, payload, h.len);
		} else if (h.type == AG_FDATA) {
			file_data(q, h.id, payload, h.len);
		} else if (h.type == AG_PID) {
			bad = started(q, h.id, payload);
		}
	}
	return bad || r < 0 ? -1 : 0;
}

static void *reader_main(void *arg)
{
	struct qemu_vm *q = arg;
	sigset_t pipe_sig;
	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE); /* a closed exec handle is EPIPE, not a signal */
	pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
	/* Frames that came with the hello (or after a restore's resync) first. */
	if (handle_frames(q) < 0)
		return NULL;
	for (;;) {
		short ev = POLLIN | (atomic_load(&q->room_wanted) ? POLLOUT : 0);
		struct pollfd p[3 + READER_MAX_FDS] = {{.fd = q->agent_fd, .events = ev},
						       {.fd = q->quit_fd, .events = POLLIN},
						       {.fd = q->wake_fd, .events = POLLIN}};
		struct qemu_exec *who[3 + READER_MAX_FDS];
		int n = 3;
		pthread_mutex_lock(&q->xlock);
		for (struct qemu_exec *x = q->execs; x && n < 3 + READER_MAX_FDS; x = x->next)
			if (x->len && x->fd >= 0) {
				who[n] = x;
				p[n++] = (struct pollfd){.fd = x->fd, .events = POLLOUT};
			} else if (x->job && x->in_fd >= 0 && x->in_credit && !x->done && !q->queue) {
				who[n] = x;
				p[n++] = (struct pollfd){.fd = x->in_fd, .events = POLLIN};
			}
		pthread_mutex_unlock(&q->xlock);
		/* A stalled reader of the first 64 still lets the rest go; poll again
		 * soon. A get's deadline, too, comes without its reader's look. */
		int ms = n == 3 + READER_MAX_FDS ? 100 : -1, due = files_expire(q);
		if (due >= 0 && (ms < 0 || due < ms))
			ms = due;
		if ((due = queue_expire(q)) >= 0 && (ms < 0 || due < ms))
			ms = due;
		if (poll(p, (nfds_t)n, ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		uint64_t woke;
		if (p[2].revents && read(q->wake_fd, &woke, sizeof(woke)) < 0 && errno != EAGAIN)
			break;
		for (int i = 3; i < n; i++)
			if (p[i].revents && who[i]->job) {
				pump_stdin(q, who[i]);
			} else if (p[i].revents) {
				flush(q, who[i]);
				if (who[i]->done && !who[i]->len)
					exec_remove(q, who[i]);
			}
		if (p[0].revents & POLLOUT)
			channel_room(q);
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && fill(q) < 0)
			break;
		if (handle_frames(q) < 0)
			break;
		send_veofs(q);
		file_credits(q);
	}
	return NULL;
}

int qagent_start_reader(struct qemu_vm *q, struct err *e)
{
	/* A put's bytes queue in the channel's send buffer while the guest takes
	 * 4 KiB at a time: room is seen when a quarter is left (POLLOUT), and
	 * this thread refills it (a put's kept bytes; a parked write's through
	 * the waiters' thread). A larger one keeps the guest fed meanwhile on a
	 * loaded host; every frame waits behind what it holds (ms at the
	 * guest's rate). As root the host's cap does not apply (SO_SNDBUFFORCE). */
	int sz = AGENT_SNDBUF;
	if (q->agent_fd >= 0 &&
	    setsockopt(q->agent_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0 &&
	    setsockopt(q->agent_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0)
		log_debug("qemu: the agent channel's send buffer stays: %s", strerror(errno));
	int r = pthread_create(&q->reader, NULL, reader_main, q);
	if (r)
		return err_set(e, -r, "cannot start the agent reader thread: %s", strerror(r));
	q->reader_running = true;
	return 0;
}

void qagent_stop_reader(struct qemu_vm *q)
{
	if (q->reader_running) {
		uint64_t one = 1;
		if (write(q->quit_fd, &one, sizeof(one)) < 0)
			log_warn("cannot wake the agent reader: %s", strerror(errno));
		pthread_join(q->reader, NULL);
		q->reader_running = false;
	}
	pthread_mutex_lock(&q->wlock); /* a sender may be sending the first queued */
	pthread_mutex_lock(&q->xlock);
	q->reader_gone = true; /* files requests fail: nothing answers them now */
	while (q->queue) /* nothing sends them now */
		queue_pop_locked(q, false);
	pthread_mutex_unlock(&q->wlock);
	for (struct qemu_file *f = q->files; f; f = f->next)
		file_changed(q, f);
	while (q->execs) {
		struct qemu_exec *x = q->execs;
		q->execs = x->next;
		exec_free(x);
	}
	pthread_mutex_unlock(&q->xlock);
}

/* The command line, then each option after a NUL (AG_EXEC); its length. */
static int exec_payload(const char *cmd, const struct qagent_opts *o, char *out, size_t cap,
			struct err *e)
{
	char opt[2][80];
	int nopt = 0;
	if (o && o->user)
		snprintf(opt[nopt++], sizeof(opt[0]), "user=%s", o->user);
	if (o && o->cols)
		snprintf(opt[nopt++], sizeof(opt[0]), "tty=%ux%u", o->cols, o->rows);
	size_t len = strlen(cmd), need = len;
	for (int i = 0; i < nopt; i++)
		need += 1 + strlen(opt[i]);
	if (need > cap)
		return err_set(e, -E2BIG, "command line too long");
	memcpy(out, cmd, len);
	for (int i = 0; i < nopt; i++) {
		out[len++] = '\0';
		memcpy(out + len, opt[i], strlen(opt[i]));
		len += strlen(opt[i]);
	}
	return (int)len;
}

int qagent_exec(struct qemu_vm *q, uint64_t id, const char *cmd, const struct qagent_opts *o,
		const int *fds, int nfds, struct err *e)
{
	static __thread char payload[AGENT_PAYLOAD_MAX];
	if ((o && (o->user || o->cols)) && q->agent_version < AGENT_VERSION_TTY)
		return err_set(e, -EOPNOTSUPP, "this VM's guest agent (version %d, from an older "
			       "initramfs) has no %s: restart the sandbox on a new one (make guest)",
			       q->agent_version, o->cols ? "terminals" : "user=");
	int len = exec_payload(cmd, o, payload, sizeof(payload), e);
	if (len < 0)
		return len;
	bool job = nfds == 3;
	struct qemu_exec *x = calloc(1, sizeof(*x));
	if (!x || (!job && !(x->buf = malloc(AGENT_WINDOW)))) {
		free(x);
		return err_set(e, -ENOMEM, "out of memory");
	}
	x->id = id;
	x->job = job;
	x->fd = fcntl(fds[job ? 1 : 0], F_DUPFD_CLOEXEC, 0);
	x->err_fd = job ? fcntl(fds[2], F_DUPFD_CLOEXEC, 0) : -1;
	x->in_fd = job ? fcntl(fds[0], F_DUPFD_CLOEXEC, 0) : -1;
	x->in_credit = AGENT_IN_WINDOW;
	if (x->fd < 0 || (job && (x->err_fd < 0 || x->in_fd < 0))) {
		int r = -errno;
		exec_free(x);
		return err_set(e, r, "dup: %s", strerror(-r));
	}
	/* Only our ends of the engine's pipes: the reader thread must never block on them. */
	fcntl(job ? x->in_fd : x->fd, F_SETFL, O_NONBLOCK);
	pthread_mutex_lock(&q->xlock);
	x->next = q->execs;
	q->execs = x;
	pthread_mutex_unlock(&q->xlock);
	/* Queued when the channel is full: the engine answers at once, the
	 * output comes once the guest reads its channel again. */
	int r = qagent_send(q, job ? AG_JOB : AG_EXEC, id, payload, (uint32_t)len);
	if (r < 0) {
		exec_forget(q, id); /* never sent: the reader has nothing of it */
		return qagent_send_err(q, r, "the command", e);
	}
	/* The reader thread polls the new stdin from its next round on. */
	if (job)
		reader_kick(q);
	return 0;
}

/* A job of an earlier daemon: output goes on into its files from the
 * offsets they have (the agent resends the rest); its stdin is gone. */
int qagent_attach(struct qemu_vm *q, uint64_t id, int out_fd, int err_fd, uint64_t out_off,
		  uint64_t err_off, struct err *e)
{
	struct qemu_exec *x = calloc(1, sizeof(*x));
	if (!x)
		return err_set(e, -ENOMEM, "out of memory");
	x->id = id;
	x->job = true;
	x->in_fd = -1;
	x->fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
	x->err_fd = fcntl(err_fd, F_DUPFD_CLOEXEC, 0);
	if (x->fd < 0 || x->err_fd < 0) {
		int r = -errno;
		exec_free(x);
		return err_set(e, r, "dup: %s", strerror(-r));
	}
	pthread_mutex_lock(&q->xlock);
	x->next = q->execs;
	q->execs = x;
	pthread_mutex_unlock(&q->xlock);
	char p[64];
	int n = snprintf(p, sizeof(p), "%" PRIu64 " %" PRIu64, out_off, err_off);
	int r = qagent_send(q, AG_ATTACH, id, p, (uint32_t)n);
	return r < 0 ? qagent_send_err(q, r, "the job's attach", e) : 0;
}

int qagent_tty(struct qemu_vm *q, uint64_t id, unsigned cols, unsigned rows, struct err *e)
{
	if (cols) {
		char p[32];
		int n = snprintf(p, sizeof(p), "%u %u", cols, rows);
		int r = qagent_send(q, AG_WINSZ, id, p, (uint32_t)n);
		return r < 0 ? qagent_send_err(q, r, "the terminal's size", e) : 0;
	}
	/* After the stdin in the engine's pipe: the reader thread sends it. */
	pthread_mutex_lock(&q->xlock);
	struct qemu_exec *x = exec_find(q, id);
	bool ok = x && x->job && !x->done && x->in_fd >= 0 && x->veofs < 1024;
	if (ok)
		x->veofs++;
	pthread_mutex_unlock(&q->xlock);
	if (!ok)
		return err_set(e, -EPIPE, "the job's terminal takes no input");
	reader_kick(q);
	return 0;
}

/* --- files (NAME/files): requests the agent serves in the guest --- */

/* How long a request waits for the agent to answer or to send more: a
 * guest that stops answering holds a worker this long, once (the request
 * then fails at once); a get's read is parked meanwhile, never held. */
#define FILES_WAIT_MS 10000
/* The records of one stat or list the daemon takes (a list's 100000
 * entries of long names fit). */
#define FILES_ANSWER_MAX (64u << 20)

static const char *const file_verbs[] = {
	[VMM_FILE_GET] = "get", [VMM_FILE_PUT] = "put", [VMM_FILE_STAT] = "stat",
	[VMM_FILE_LIST] = "list", [VMM_FILE_MKDIR] = "mkdir",
};

void qagent_files_init(struct qemu_vm *q)
{
	q->files_wait_ms = FILES_WAIT_MS;
	/* Tests: a longer bound, so that a guest stopped on purpose for a
	 * while is not taken for one that never reads on a slow host. */
	const char *env = getenv("SANDBOXFS_AGENT_SEND_MS");
	long ms = env ? strtol(env, NULL, 10) : 0;
	q->send_wait_ms = ms > 0 && ms <= 600000 ? (int)ms : AGENT_SEND_WAIT_MS;
	q->stall_ms = AGENT_STALL_SENDS * q->send_wait_ms;
}

static struct qemu_file *file_find(struct qemu_vm *q, uint64_t id)
{
	for (struct qemu_file *f = q->files; f; f = f->next)
		if (f->id == id)
			return f;
	return NULL;
}

/* With xlock held: f changed for whoever looks at it (a request's parked
 * write, a get's parked read, a poller) through its wake. */
static void file_changed(struct qemu_vm *q, struct qemu_file *f)
{
	(void)q;
	if (f->wake)
		f->wake(f->wake_arg);
}

/* With xlock held: f fails with this sentence, unless it failed already. */
static int file_fail(struct qemu_vm *q, struct qemu_file *f, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int file_fail(struct qemu_vm *q, struct qemu_file *f, int code, const char *fmt, ...)
{
	if (!f->fail && (f->fail = calloc(1, sizeof(*f->fail)))) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(f->fail->msg, sizeof(f->fail->msg), fmt, ap);
		va_end(ap);
		f->fail->code = code;
	}
	file_changed(q, f);
	return f->fail ? f->fail->code : code;
}

/* With xlock held: f's frames could not be sent (r: why, -ETIMEDOUT past
 * the send bound), as a send's failure is said. */
static int file_send_failed(struct qemu_vm *q, struct qemu_file *f, int r)
{
	return file_fail(q, f, r, "cannot send %s to the guest agent: %s%s", f->shown, strerror(-r),
			 f->verb == VMM_FILE_PUT ? "; nothing was put" : "");
}

/* Reader thread: AG_FRES. */
static void file_result(struct qemu_vm *q, uint64_t id, const char *p, size_t n)
{
	struct err e = {0};
	uint64_t size = 0;
	pthread_mutex_lock(&q->xlock);
	struct qemu_file *f = file_find(q, id);
	if (!f || f->fail) {
		pthread_mutex_unlock(&q->xlock);
		return;
	}
	int r = qfiles_result(p, n, f->shown, &size, &e);
	bool records = f->verb == VMM_FILE_STAT || f->verb == VMM_FILE_LIST;
	if (r < 0)
		file_fail(q, f, r, "%s", e.msg);
	else if (++f->answers > (f->verb == VMM_FILE_PUT ? 2 : 1))
		file_fail(q, f, -EPROTO, "the guest agent answered about %s once too often", f->shown);
	else if (f->answers == 1 && records && size > FILES_ANSWER_MAX)
		file_fail(q, f, -E2BIG, "the guest's answer about %s is %" PRIu64 " bytes, more "
			  "than the %u the daemon takes", f->shown, size, FILES_ANSWER_MAX);
	else if (f->answers == 1 && (records || f->verb == VMM_FILE_GET)) {
		f->size = size;
		f->buf = malloc(records ? (size ? size : 1) : AGENT_WINDOW);
		if (!f->buf)
			file_fail(q, f, -ENOMEM, "out of memory");
	}
	file_changed(q, f);
	pthread_mutex_unlock(&q->xlock);
}

/* Reader thread: AG_FDATA, never more than the agent announced, nor more
 * than its window; a stat's or list's records are credited at once. */
static void file_data(struct qemu_vm *q, uint64_t id, const char *p, size_t n)
{
	pthread_mutex_lock(&q->xlock);
	struct qemu_file *f = file_find(q, id);
	bool records = f && (f->verb == VMM_FILE_STAT || f->verb == VMM_FILE_LIST);
	if (!f || f->fail) {
		pthread_mutex_unlock(&q->xlock);
		return;
	}
	/* A get's parked read waits for bytes in an empty window; a stat's or
	 * list's write for the end alone. */
	bool was_empty = !f->len && !records;
	if (f->answers != 1 || !f->buf || f->ended)
		file_fail(q, f, -EPROTO, "the guest agent sent bytes of %s that were not asked for",
			  f->shown);
	else if (n > f->size - f->got)
		file_fail(q, f, -EPROTO, "the guest agent sent more of %s than the %" PRIu64 " bytes "
			  "it announced", f->shown, f->size);
	else if (n == 0)
		f->ended = true;
	else if (records) {
		memcpy(f->buf + f->got, p, n);
	} else if (f->len + n > AGENT_WINDOW) {
		file_fail(q, f, -EPROTO, "the guest agent overran the window of %s", f->shown);
	} else {
		if (f->off + f->len + n > AGENT_WINDOW) {
			memmove(f->buf, f->buf + f->off, f->len);
			f->off = 0;
		}
		memcpy(f->buf + f->off + f->len, p, n);
		f->len += n;
	}
	if (!f->fail)
		f->got += n;
	if (was_empty || f->ended || f->fail)
		file_changed(q, f);
	pthread_mutex_unlock(&q->xlock);
	if (records && n) {
		char c[24];
		int len = snprintf(c, sizeof(c), "%zu", n);
		qagent_send(q, AG_CREDIT, id, c, (uint32_t)len);
	}
}

/* f's failure as the caller's sentence. */
static int file_err(struct qemu_file *f, int r, struct err *e)
{
	return f->fail ? err_set(e, f->fail->code, "%s", f->fail->msg) : r;
}

static void file_unlink(struct qemu_vm *q, struct qemu_file *f)
{
	for (struct qemu_file **pp = &q->files; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
}

void qagent_file_close(struct qemu_vm *q, struct qemu_file *f)
{
	pthread_mutex_lock(&q->xlock);
	file_unlink(q, f);
	/* The agent holds nothing of one that is over (one it failed, it
	 * forgot: an AG_FEND for it is ignored). */
	bool over = q->reader_gone || f->req ||
		    (f->verb == VMM_FILE_PUT ? f->answers == 2 :
		     f->verb == VMM_FILE_MKDIR ? f->answers == 1 : f->ended);
	/* Its AG_FEND goes before any later frame, without waiting here: the
	 * reader thread sends it when the channel has room (a closer never
	 * waits for a guest that does not read). */
	struct agent_hdr h = {.type = AG_FEND, .id = f->id};
	int r = over ? 0 : queue_frame_locked(q, (const char *)&h, sizeof(h), NULL);
	file_unkeep(q, f);
	pthread_mutex_unlock(&q->xlock);
	if (r < 0)
		log_warn("qemu: the end of request %" PRIu64 " cannot be queued for the guest "
			 "agent (%s); the agent keeps it until it ends", f->id, strerror(-r));
	free(f->req);
	free(f->fail);
	free(f->buf);
	free(f);
}

int qagent_file_open(struct qemu_vm *q, const struct vmm_file_req *r, struct qemu_file **out,
		     struct err *e)
{
	char payload[AGENT_PAYLOAD_MAX];
	if (q->agent_version < AGENT_VERSION_FILES)
		return err_set(e, -EOPNOTSUPP, "this VM's guest agent (version %d, from an older "
			       "initramfs) has no files: restart the sandbox on a new one (make guest)",
			       q->agent_version);
	int head = snprintf(payload, sizeof(payload), "%s %o %" PRIu64, file_verbs[r->verb],
			    r->mode, r->size);
	size_t pl = strlen(r->path);
	if ((size_t)head + 1 + pl > sizeof(payload))
		return err_set(e, -ENAMETOOLONG, "%s: too long a path for the guest agent", r->shown);
	memcpy(payload + head + 1, r->path, pl);
	struct qemu_file *f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(e, -ENOMEM, "out of memory");
	f->verb = (int)r->verb;
	f->wake = r->wake;
	f->wake_arg = r->wake_arg;
	/* What its first write waits for: the agent's answer (a put of nothing:
	 * the file in place too), a stat's or list's records whole. */
	f->want_answers = r->verb == VMM_FILE_PUT && r->size == 0 ? 2 : 1;
	f->want_end = r->verb == VMM_FILE_STAT || r->verb == VMM_FILE_LIST;
	if (r->verb == VMM_FILE_PUT)
		f->size = r->size;
	snprintf(f->shown, sizeof(f->shown), "%s", r->shown);
	pthread_mutex_lock(&q->xlock);
	f->id = AGENT_FILE_ID | ++q->file_seq;
	f->next = q->files;
	q->files = f;
	pthread_mutex_unlock(&q->xlock);
	/* Never waiting for room: without it, the first look sends it. */
	uint32_t len = (uint32_t)(head + 1 + pl);
	int ret = send_frame(q, AG_FILE, f->id, payload, len, SEND_NOW, NULL);
	if (ret == -EAGAIN && (f->req = malloc(len))) {
		memcpy(f->req, payload, len);
		f->req_len = len;
		ret = 0;
	} else if (ret == -EAGAIN) {
		ret = -ENOMEM;
	}
	if (ret < 0) {
		pthread_mutex_lock(&q->xlock);
		file_unlink(q, f);
		pthread_mutex_unlock(&q->xlock);
		free(f);
		return err_set(e, ret, "cannot send the request to the guest agent: %s",
			       strerror(-ret));
	}
	*out = f;
	return 0;
}

/* With xlock held: the reader thread ended (the VM stops): f fails. */
static int file_stopped(struct qemu_vm *q, struct qemu_file *f)
{
	return file_fail(q, f, -EBUSY, "the sandbox stopped during the request on %s; nothing "
			 "more of it happens", f->shown);
}

/* The request's frame, if it has not gone yet (no room at the open):
 * 0 once it has, -EAGAIN, or -errno. The requester's alone. */
static int file_send_req(struct qemu_vm *q, struct qemu_file *f)
{
	if (!f->req)
		return 0;
	int r = send_frame(q, AG_FILE, f->id, f->req, f->req_len, SEND_NOW, NULL);
	if (r == 0) {
		free(f->req);
		f->req = NULL;
	}
	return r;
}

/* A look found no room in the channel for f's frames (r: -EAGAIN, or
 * -ETIMEDOUT when it stalled already): -EAGAIN with *wait_ms, the time left
 * of the send bound since a look first found none (the reader thread wakes
 * f when there is room); past it, f fails as a send that timed out. */
static int file_no_room(struct qemu_vm *q, struct qemu_file *f, int r, unsigned *wait_ms,
			struct err *e)
{
	uint64_t now = now_usec(), limit = (uint64_t)q->send_wait_ms * 1000;
	pthread_mutex_lock(&q->xlock);
	if (q->reader_gone) { /* nothing polls for room now */
		r = file_stopped(q, f);
		pthread_mutex_unlock(&q->xlock);
		return file_err(f, r, e);
	}
	f->want_room = true; /* before the send: room made meanwhile wakes it */
	if (!f->room_usec)
		f->room_usec = now;
	if (r == -EAGAIN && now - f->room_usec < limit) {
		*wait_ms = (unsigned)((limit - (now - f->room_usec) + 999) / 1000);
		pthread_mutex_unlock(&q->xlock);
		want_room(q);
		return -EAGAIN;
	}
	f->want_room = false;
	r = file_send_failed(q, f, -ETIMEDOUT);
	pthread_mutex_unlock(&q->xlock);
	/* As a send that waited the bound: later ones do not wait (another
	 * sender holding the lock marks it itself when its send times out). */
	if (pthread_mutex_trylock(&q->wlock) == 0) {
		channel_stalled(q);
		pthread_mutex_unlock(&q->wlock);
	}
	return file_err(f, r, e);
}

/* With xlock held: up to n of p kept in f's buffer for the reader thread
 * (bytes the channel has no room for now); how many. */
static size_t file_keep(struct qemu_vm *q, struct qemu_file *f, const char *p, size_t n)
{
	if (!f->kept && q->kept_bytes + QEMU_PUT_KEPT <= QEMU_KEPT_MAX &&
	    (f->kept = malloc(QEMU_PUT_KEPT)))
		q->kept_bytes += QEMU_PUT_KEPT;
	if (!f->kept)
		return 0;
	if (f->koff + f->klen + n > QEMU_PUT_KEPT && f->koff) {
		memmove(f->kept, f->kept + f->koff, f->klen);
		f->koff = 0;
	}
	n = n < QEMU_PUT_KEPT - f->koff - f->klen ? n : QEMU_PUT_KEPT - f->koff - f->klen;
	memcpy(f->kept + f->koff + f->klen, p, n);
	f->klen += n;
	if (n && !f->room_usec)
		f->room_usec = now_usec(); /* the send bound runs for what waits */
	return n;
}

/* With xlock held: f's buffer goes (sent, or f failed or ends). */
static void file_unkeep(struct qemu_vm *q, struct qemu_file *f)
{
	if (f->kept)
		q->kept_bytes -= QEMU_PUT_KEPT;
	free(f->kept);
	f->kept = NULL;
	f->koff = f->klen = 0;
}

/* A put's bytes go to the channel behind its request (the agent takes them
 * in order, and drops those of a request it failed): its first write need
 * not wait for the temporary before sending them. None waits for room:
 * what the channel does not take now is kept for the reader thread (a
 * buffer of QEMU_PUT_KEPT), and what does not fit there waits in the
 * caller's (-EAGAIN). */
int qagent_file_write(struct qemu_vm *q, struct qemu_file *f, const char *buf, size_t len,
		      size_t *took, unsigned *wait_ms, struct err *e)
{
	*took = 0;
	pthread_mutex_lock(&q->xlock);
	int r = f->fail ? f->fail->code : len > f->size - f->taken ? -EFBIG : 0;
	bool direct = !f->klen; /* kept bytes go first, by the reader thread */
	if (r == 0)
		f->want_room = true; /* before the send: room made meanwhile wakes it */
	pthread_mutex_unlock(&q->xlock);
	if (r < 0)
		return r == -EFBIG ? err_set(e, r, "%s: past its size; nothing was put", f->shown)
				   : file_err(f, r, e);
	size_t at = 0, kept = 0;
	r = file_send_req(q, f);
	while (r == 0 && direct && at < len) {
		size_t n = len - at < AGENT_FDATA_MAX ? len - at : AGENT_FDATA_MAX;
		if ((r = send_frame(q, AG_FDATA, f->id, buf + at, (uint32_t)n, SEND_NOW, NULL)) == 0)
			at += n;
	}
	if (r == 0 && at < len)
		r = -EAGAIN;
	pthread_mutex_lock(&q->xlock);
	f->got += at;
	if (at)
		f->room_usec = 0; /* progress: the send bound starts again */
	if (r == -EAGAIN && !f->req && !f->fail && (kept = file_keep(q, f, buf + at, len - at)) &&
	    at + kept == len)
		r = 0;
	f->taken += at + kept;
	*took = at + kept;
	if (f->taken == f->size)
		f->want_answers = 2; /* the last: its write waits for the rename */
	if (r == 0)
		f->want_room = false;
	if (r < 0 && r != -EAGAIN && r != -ETIMEDOUT)
		r = file_send_failed(q, f, r);
	else if (r == 0 && f->fail)
		r = f->fail->code;
	pthread_mutex_unlock(&q->xlock);
	if (kept)
		want_room(q); /* the reader thread sends them */
	if (r == -EAGAIN || r == -ETIMEDOUT)
		return file_no_room(q, f, r, wait_ms, e);
	return file_err(f, r, e);
}

/* With xlock held: a request has a look that found nothing (its write's,
 * a get's read or poll): the clock of its deadline starts, unless it runs;
 * the reader thread learns of a new one (files_expire). True once the
 * deadline passed. */
static bool file_waited_out(struct qemu_vm *q, struct qemu_file *f, uint64_t now)
{
	if (!f->wait_usec || f->got != f->wait_got) {
		f->wait_usec = now;
		f->wait_got = f->got;
		reader_kick(q);
	}
	return now - f->wait_usec >= (uint64_t)q->files_wait_ms * 1000;
}

static int file_timed_out(struct qemu_vm *q, struct qemu_file *f)
{
	return file_fail(q, f, -ETIMEDOUT, "the guest agent did not answer about %s for %d s (a "
			 "guest stuck or too busy): the request is abandoned", f->shown,
			 q->files_wait_ms / 1000);
}

/* With xlock held: the requester's write has what it waits for. */
static bool file_answered(const struct qemu_file *f)
{
	return f->answers >= f->want_answers && (!f->want_end || f->ended);
}

/* With xlock held: a look finds nothing (a request's write its answer, a
 * get's reader its bytes). -EAGAIN with the time left before its deadline
 * (files_wait_ms since a look first found nothing, the agent sending
 * nothing meanwhile), or its failure. */
static int file_nothing_yet(struct qemu_vm *q, struct qemu_file *f, unsigned *wait_ms)
{
	if (q->reader_gone)
		return file_stopped(q, f);
	uint64_t now = now_usec(), limit = (uint64_t)q->files_wait_ms * 1000;
	if (file_waited_out(q, f, now))
		return file_timed_out(q, f);
	*wait_ms = (unsigned)((limit - (now - f->wait_usec) + 999) / 1000);
	return -EAGAIN;
}

int qagent_file_answer_try(struct qemu_vm *q, struct qemu_file *f, struct buf *answer,
			   unsigned *wait_ms, struct err *e)
{
	if (f->req) { /* its request waits for room: nothing can have come */
		pthread_mutex_lock(&q->xlock);
		int r = f->fail ? f->fail->code : 0;
		if (r == 0)
			f->want_room = true; /* before the send: room made meanwhile wakes it */
		pthread_mutex_unlock(&q->xlock);
		if (r == 0 && (r = file_send_req(q, f)) < 0 && r != -EAGAIN && r != -ETIMEDOUT)
			r = err_set(e, r, "cannot send the request to the guest agent: %s",
				    strerror(-r));
		if (r == -EAGAIN || r == -ETIMEDOUT)
			return file_no_room(q, f, r, wait_ms, e);
		if (r < 0)
			return file_err(f, r, e);
		pthread_mutex_lock(&q->xlock);
		f->want_room = false;
		f->room_usec = 0;
		pthread_mutex_unlock(&q->xlock);
	}
	pthread_mutex_lock(&q->xlock);
	int r = f->fail ? f->fail->code : 0;
	if (r == 0 && !file_answered(f)) {
		r = file_nothing_yet(q, f, wait_ms);
	} else if (r == 0) {
		f->wait_usec = 0; /* a get's reader starts its own clock */
		if (f->want_end)
			r = qfiles_answer(f->verb == VMM_FILE_LIST, f->buf, f->got, f->shown, answer, e);
	}
	pthread_mutex_unlock(&q->xlock);
	return r == -EAGAIN || r == 0 ? r : file_err(f, r, e);
}

/* Reader thread: the queue's deadline passed. Its frames are dropped (a
 * poweroff among them ends QEMU instead, SIGTERM: a `kill TERM` that
 * succeeded still ends the VM), and every command ends, reason lost: what
 * it waited for (its credit, stdin, kill) may be among them. Sends fail at
 * once until the channel takes bytes again. */
static void agent_lost(struct qemu_vm *q)
{
	size_t frames = 0;
	bool poweroff = false;
	pthread_mutex_lock(&q->wlock);
	pthread_mutex_lock(&q->xlock);
	while (q->queue) {
		struct agent_hdr h;
		memcpy(&h, q->queue->buf, sizeof(h));
		poweroff |= h.type == AG_POWEROFF;
		queue_pop_locked(q, false);
		frames++;
	}
	atomic_store(&q->lost, true);
	/* Every command ends: those with output still to flush once it is in
	 * their pipe (as on an exit), the rest now (their fds close: EOF). A
	 * sender whose frame failed meanwhile finds its own gone (exec_forget). */
	size_t n = 0, cap = 0;
	uint64_t *ended = NULL;
	struct qemu_exec *gone = NULL;
	for (struct qemu_exec **pp = &q->execs; *pp;) {
		struct qemu_exec *x = *pp;
		if (x->done) {
			pp = &x->next;
			continue;
		}
		uint64_t *more = n < cap ? ended : realloc(ended, (cap = cap ? 2 * cap : 16) * sizeof(*ended));
		if (!more)
			break; /* out of memory: the rest end with the VM */
		ended = more;
		ended[n++] = x->id;
		x->done = true;
		if (x->len) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		x->next = gone;
		gone = x;
	}
	pthread_mutex_unlock(&q->xlock);
	pthread_mutex_unlock(&q->wlock);
	log_warn("qemu: the guest agent read nothing of its channel for %d s with %zu frames "
		 "waiting: taken for lost (they are dropped, its commands end with reason lost; "
		 "sends fail until it reads again)%s", q->stall_ms / 1000, frames,
		 poweroff ? "; a poweroff was among them: QEMU is told to end" : "");
	if (poweroff && q->pidfd >= 0)
		vmm_pidfd_signal(q->pidfd, SIGTERM); /* QEMU quits as on QMP quit */
	while (gone) {
		struct qemu_exec *next = gone->next;
		exec_free(gone);
		gone = next;
	}
	for (size_t i = 0; i < n; i++) {
		char msg[64];
		int len = snprintf(msg, sizeof(msg), "E%" PRIu64 " 137 9 lost", ended[i]);
		note(q, msg, len);
	}
	free(ended);
}

/* Reader thread: the queue's deadline (frames waited stall_ms, the channel
 * taking nothing, the VM not held): milliseconds to it, -1 when none runs;
 * past it, the agent is lost. */
static int queue_expire(struct qemu_vm *q)
{
	pthread_mutex_lock(&q->xlock);
	bool owed = q->queue != NULL;
	pthread_mutex_unlock(&q->xlock);
	if (!owed || atomic_load(&q->held))
		return -1;
	channel_progress(q);
	uint64_t now = now_usec(), at = atomic_load(&q->owed_usec) + (uint64_t)q->stall_ms * 1000;
	if (at > now)
		return (int)((at - now + 999) / 1000);
	agent_lost(q);
	return -1;
}

/* Reader thread: requests whose looks found nothing for files_wait_ms
 * fail now, and are woken (a poller, too, learns of it then). Milliseconds
 * to the next such deadline; -1: none. */
static int files_expire(struct qemu_vm *q)
{
	uint64_t now = now_usec(), limit = (uint64_t)q->files_wait_ms * 1000, next = 0;
	pthread_mutex_lock(&q->xlock);
	for (struct qemu_file *f = q->files; f; f = f->next) {
		/* Kept bytes the channel took nothing of for the send bound. */
		uint64_t kept_at = f->room_usec + (uint64_t)q->send_wait_ms * 1000;
		if (f->klen && !f->fail && f->room_usec && kept_at <= now)
			file_send_failed(q, f, -ETIMEDOUT);
		else if (f->klen && !f->fail && f->room_usec && (!next || kept_at < next))
			next = kept_at;
		/* Its write has its answer; a get's reader waits for bytes then. */
		bool has = file_answered(f) && (f->verb != VMM_FILE_GET || f->len || f->ended);
		if (!f->wait_usec || f->fail || has || f->got != f->wait_got)
			continue;
		uint64_t at = f->wait_usec + limit;
		if (at <= now)
			file_timed_out(q, f);
		else if (!next || at < next)
			next = at;
	}
	pthread_mutex_unlock(&q->xlock);
	return next ? (int)((next - now + 999) / 1000) : -1;
}

ssize_t qagent_file_read_try(struct qemu_vm *q, struct qemu_file *f, char *buf, size_t size,
			     unsigned *wait_ms, struct err *e)
{
	pthread_mutex_lock(&q->xlock);
	int r = f->fail ? f->fail->code : 0;
	size_t n = 0;
	bool credit = false;
	if (r == 0 && !f->len && !f->ended) {
		r = file_nothing_yet(q, f, wait_ms);
	} else if (r == 0) {
		f->wait_usec = 0;
		n = f->len < size ? f->len : size;
		memcpy(buf, f->buf + f->off, n);
		f->off += n;
		f->len -= n;
		if (!f->len)
			f->off = 0;
		f->uncredited += n;
		/* The agent's window back, by the reader thread (a send may wait). */
		if (!f->ended && (f->uncredited >= AGENT_WINDOW / 4 || (!f->len && f->uncredited))) {
			f->credit_due += f->uncredited;
			f->uncredited = 0;
			credit = q->files_credit = true;
		}
	}
	pthread_mutex_unlock(&q->xlock);
	if (credit)
		reader_kick(q);
	if (r == -EAGAIN)
		return r;
	if (r < 0)
		return file_err(f, r, e);
	return (ssize_t)n;
}

bool qagent_file_readable(struct qemu_vm *q, struct qemu_file *f)
{
	pthread_mutex_lock(&q->xlock);
	bool ready = f->fail || f->len || f->ended || q->reader_gone;
	if (!ready && f->answers == 1 && f->verb == VMM_FILE_GET)
		file_waited_out(q, f, now_usec()); /* a poller waits too: the deadline runs */
	pthread_mutex_unlock(&q->xlock);
	return ready;
}

/* Reader thread: the credits gets' readers left (see qagent_file_read_try). */
static void file_credits(struct qemu_vm *q)
{
	for (;;) {
		uint64_t id = 0;
		size_t n = 0;
		pthread_mutex_lock(&q->xlock);
		for (struct qemu_file *f = q->files; f && q->files_credit && !id; f = f->next)
			if (f->credit_due) {
				id = f->id;
				n = f->ended ? 0 : f->credit_due; /* the agent forgot one that ended */
				f->credit_due = 0;
			}
		if (!id)
			q->files_credit = false;
		pthread_mutex_unlock(&q->xlock);
		if (!id)
			return;
		char c[24];
		int len = snprintf(c, sizeof(c), "%zu", n);
		if (n)
			qagent_send(q, AG_CREDIT, id, c, (uint32_t)len);
	}
}

/* Reader thread, wlock held, nothing owed: the puts' kept bytes, in order,
 * as far as the channel takes them now. 0 when all went, -EAGAIN while
 * some wait (a frame committed half counts as sent). */
static int files_send_kept_locked(struct qemu_vm *q)
{
	static char frame[sizeof(struct agent_hdr) + AGENT_FDATA_MAX];
	int r = 0;
	pthread_mutex_lock(&q->xlock);
	for (struct qemu_file *f = q->files; f && r == 0; f = f->next) {
		while (r == 0 && f->klen && !f->fail) {
			size_t n = f->klen < AGENT_FDATA_MAX ? f->klen : AGENT_FDATA_MAX;
			struct agent_hdr h = {.type = AG_FDATA, .len = (uint32_t)n, .id = f->id};
			memcpy(frame, &h, sizeof(h));
			memcpy(frame + sizeof(h), f->kept + f->koff, n);
			r = send_start_locked(q, frame, sizeof(h) + n, 0);
			if (r < 0 && r != -EAGAIN) {
				file_send_failed(q, f, r);
				r = 0;
				break;
			}
			if (r < 0)
				break;
			f->koff += n;
			f->klen -= n;
			f->got += n;
			/* The send bound runs from the last progress while some wait
			 * (a guest that stops reading fails them with no write looking). */
			f->room_usec = f->klen ? now_usec() : 0;
			if (q->wpend_len > q->wpend_off)
				r = -EAGAIN; /* the channel is full again */
		}
		if (!f->klen || f->fail)
			file_unkeep(q, f);
	}
	pthread_mutex_unlock(&q->xlock);
	return r;
}

/* Reader thread: the channel has room. What it owes goes first (a frame's
 * rest, AG_FENDs); once all has, the requests whose looks found no room are
 * woken to send theirs (from their own looks: never from here). */
static void channel_room(struct qemu_vm *q)
{
	atomic_store(&q->room_wanted, false);
	pthread_mutex_lock(&q->wlock);
	int r = q->agent_fd < 0 ? -ENOTCONN : send_owed_locked(q, 0);
	if (r == 0)
		q->wstalled = false; /* the guest reads again */
	bool kept = r == 0 && files_send_kept_locked(q) == -EAGAIN;
	pthread_mutex_unlock(&q->wlock);
	if (r == -EAGAIN)
		return; /* room wanted again: the next POLLOUT */
	if (kept)
		want_room(q);
	/* Writes that wait find room now, in the channel or in their buffer. */
	pthread_mutex_lock(&q->xlock);
	for (struct qemu_file *f = q->files; f; f = f->next)
		if (f->want_room) {
			f->want_room = false;
			file_changed(q, f);
		}
	pthread_mutex_unlock(&q->xlock);
}
