/* The QMP client of the qemu backend. QEMU writes one JSON object per line
 * (a greeting, replies, events); we send one per line. Every read is bounded
 * by a deadline, so a wedged QEMU costs a timeout, never a hung thread. */
#define _GNU_SOURCE
#include "qmp.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../engine/common.h"

void qmp_init(struct qmp *q, int fd)
{
	q->fd = fd;
	q->len = 0;
	q->next_id = 1;
	pthread_mutex_init(&q->lock, NULL);
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	pthread_mutex_destroy(&q->lock);
}

/* Reads one line into a new JSON object. 0 on success, -ETIMEDOUT, -EPIPE (QEMU closed it). */
static int read_msg(struct qmp *q, uint64_t deadline_usec, json_t **out, struct err *e)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			size_t n = (size_t)(nl - q->buf) + 1;
			json_error_t je;
			json_t *j = json_loadb(q->buf, n, 0, &je);
			memmove(q->buf, q->buf + n, q->len - n);
			q->len -= n;
			if (!j || !json_is_object(j)) {
				json_decref(j);
				return err_set(e, -EPROTO, "QMP sent something that is not a JSON object: %s",
					       je.text);
			}
			*out = j;
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return err_set(e, -EPROTO, "QMP sent a line longer than %zu bytes", sizeof(q->buf));
		uint64_t now = now_usec();
		if (now >= deadline_usec)
			return err_set(e, -ETIMEDOUT, "QEMU did not answer on QMP in time");
		struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
		int r = poll(&pfd, 1, (int)((deadline_usec - now + 999) / 1000));
		if (r < 0 && errno != EINTR)
			return err_set(e, -errno, "poll on QMP: %s", strerror(errno));
		if (r <= 0)
			continue;
		ssize_t got = recv(q->fd, q->buf + q->len, sizeof(q->buf) - q->len, MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno == ECONNRESET))
			return err_set(e, -EPIPE, "QEMU closed its QMP connection (it exited)");
		if (got < 0 && errno != EAGAIN && errno != EINTR)
			return err_set(e, -errno, "reading QMP: %s", strerror(errno));
		if (got > 0)
			q->len += (size_t)got;
	}
}

/* One JSON line; fd (-1: none) rides on its first bytes (SCM_RIGHTS), where
 * QEMU's monitor takes it for the command (getfd). */
static int send_json(struct qmp *q, json_t *j, int fd, struct err *e)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		return err_set(e, -ENOMEM, "out of memory");
	size_t n = strlen(s), off = 0;
	s[n++] = '\n'; /* json_dumps leaves room: its NUL */
	while (off < n) {
		char cbuf[CMSG_SPACE(sizeof(int))] = {0};
		struct iovec iov = {s + off, n - off};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (fd >= 0 && off == 0) {
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof(int));
		}
		ssize_t w = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int r = -errno;
			free(s);
			return err_set(e, r, "writing QMP: %s", strerror(-r));
		}
		off += (size_t)w;
	}
	free(s);
	return 0;
}

/* Sends cmd and waits for the reply with our id; events in between are dropped. */
static int cmd_locked(struct qmp *q, const char *cmd, json_t *args, int fd, json_t **ret,
		      int timeout_ms, struct err *e)
{
	if (q->fd < 0) {
		json_decref(args);
		return err_set(e, -ENOTCONN, "no QMP connection to QEMU");
	}
	json_int_t id = (json_int_t)q->next_id++;
	json_t *j = json_pack("{s:s, s:I}", "execute", cmd, "id", id);
	if (!j) {
		json_decref(args);
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (args)
		json_object_set_new(j, "arguments", args);
	int r = send_json(q, j, fd, e);
	json_decref(j);
	if (r < 0)
		return r;
	uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
	for (;;) {
		json_t *m = NULL;
		if ((r = read_msg(q, deadline, &m, e)) < 0)
			return r;
		json_t *mid = json_object_get(m, "id");
		if (!json_is_integer(mid) || json_integer_value(mid) != id) {
			json_decref(m); /* an event, or a late reply to a command that timed out */
			continue;
		}
		json_t *err = json_object_get(m, "error");
		if (err) {
			const char *desc = json_string_value(json_object_get(err, "desc"));
			r = err_set(e, -EIO, "QMP %s failed: %s", cmd, desc ? desc : "unknown error");
		} else if (ret) {
			*ret = json_incref(json_object_get(m, "return"));
		}
		json_decref(m);
		return r;
	}
}

int qmp_cmd(struct qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
	    struct err *e)
{
	pthread_mutex_lock(&q->lock);
	int r = cmd_locked(q, cmd, args, -1, ret, timeout_ms, e);
	pthread_mutex_unlock(&q->lock);
	return r;
}

int qmp_handshake(struct qmp *q, int timeout_ms, struct err *e)
{
	json_t *m = NULL;
	pthread_mutex_lock(&q->lock);
	int r = read_msg(q, now_usec() + (uint64_t)timeout_ms * 1000, &m, e);
	if (r == 0 && !json_object_get(m, "QMP"))
		r = err_set(e, -EPROTO, "QEMU's first QMP message is not a greeting");
	json_decref(m);
	if (r == 0)
		r = cmd_locked(q, "qmp_capabilities", NULL, -1, NULL, timeout_ms, e);
	pthread_mutex_unlock(&q->lock);
	return r;
}

int qmp_migrate_fd(struct qmp *q, const char *cmd, int fd, int timeout_ms, struct err *e)
{
	pthread_mutex_lock(&q->lock);
	int r = cmd_locked(q, "getfd", json_pack("{s:s}", "fdname", "sbx-migration"), fd, NULL,
			   timeout_ms, e);
	if (r == 0)
		r = cmd_locked(q, cmd, json_pack("{s:s}", "uri", "fd:sbx-migration"), -1, NULL,
			       timeout_ms, e);
	pthread_mutex_unlock(&q->lock);
	return r;
}

int qmp_set_ignore_shared(struct qmp *q, bool on, struct err *e)
{
	json_t *a = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "x-ignore-shared",
			      "state", on);
	return qmp_cmd(q, "migrate-set-capabilities", a, NULL, 10000, e);
}

/* Polls query-migrate (QEMU 7.2 has no synchronous migrate) until the
 * migration in either direction completed; a failed one says QEMU's reason. */
int qmp_wait_migration(struct qmp *q, int timeout_ms, struct err *e)
{
	uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
	unsigned nap_us = 200;
	for (;;) {
		json_t *ret = NULL;
		int r = qmp_cmd(q, "query-migrate", NULL, &ret, timeout_ms, e);
		if (r < 0)
			return r;
		const char *st = json_string_value(json_object_get(ret, "status"));
		if (st && !strcmp(st, "completed")) {
			json_decref(ret);
			return 0;
		}
		if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
			const char *why = json_string_value(json_object_get(ret, "error-desc"));
			r = err_set(e, -EIO, "migration %s: %s", st, why ? why : "no reason given");
			json_decref(ret);
			return r;
		}
		json_decref(ret);
		if (now_usec() >= deadline)
			return err_set(e, -ETIMEDOUT, "migration did not complete in %d s (status %s)",
				       timeout_ms / 1000, st ? st : "none");
		struct timespec ts = {0, (long)nap_us * 1000};
		nanosleep(&ts, NULL);
		if (nap_us < 5000)
			nap_us *= 2;
	}
}
