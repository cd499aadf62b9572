/* The QMP client (vmm/qmp.c) against a scripted fake QEMU on a socketpair:
 * greeting and capabilities, events skipped, error replies, a reply to an
 * older command skipped, EOF, timeouts and garbage. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../engine/common.h"
#include "../../vmm/qmp.h"
#include "unit.h"

/* One step of the fake: "<" reads a command line, anything else is sent as is
 * with "$ID" replaced by the id of the last command read. */
struct fake {
	int fd;
	const char *const *script;
	char last_cmd[64];
	char last_arg[64]; /* the last command's "uri" or "fdname" */
	int got_fd;        /* a fd that came with a command (SCM_RIGHTS), -1: none */
	char fd_cmd[64];   /* the command it came with */
};

static void fake_send(int fd, const char *line, long id)
{
	char out[512];
	const char *p = strstr(line, "$ID");
	if (p)
		snprintf(out, sizeof(out), "%.*s%ld%s\r\n", (int)(p - line), line, id, p + 3);
	else
		snprintf(out, sizeof(out), "%s\r\n", line);
	if (send(fd, out, strlen(out), MSG_NOSIGNAL) < 0)
		return;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char buf[4096];
	size_t len = 0;
	long id = 0;
	for (const char *const *s = f->script; *s; s++) {
		if (strcmp(*s, "<") != 0) {
			fake_send(f->fd, *s, id);
			continue;
		}
		char *nl;
		int passed = -1;
		while (!(nl = memchr(buf, '\n', len))) {
			char cbuf[CMSG_SPACE(sizeof(int))];
			struct iovec iov = {buf + len, sizeof(buf) - len};
			struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
					    .msg_controllen = sizeof(cbuf)};
			ssize_t n = recvmsg(f->fd, &mh, MSG_CMSG_CLOEXEC);
			if (n <= 0)
				goto out;
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			if (c && c->cmsg_type == SCM_RIGHTS)
				memcpy(&passed, CMSG_DATA(c), sizeof(int));
			len += (size_t)n;
		}
		json_t *j = json_loadb(buf, (size_t)(nl - buf), 0, NULL);
		id = (long)json_integer_value(json_object_get(j, "id"));
		snprintf(f->last_cmd, sizeof(f->last_cmd), "%s",
			 json_string_value(json_object_get(j, "execute")) ?: "");
		json_t *a = json_object_get(j, "arguments");
		snprintf(f->last_arg, sizeof(f->last_arg), "%s",
			 json_string_value(json_object_get(a, "uri")) ?:
			 json_string_value(json_object_get(a, "fdname")) ?: "");
		if (passed >= 0) {
			f->got_fd = passed;
			snprintf(f->fd_cmd, sizeof(f->fd_cmd), "%s %s", f->last_cmd, f->last_arg);
		}
		json_decref(j);
		len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len);
	}
out:
	shutdown(f->fd, SHUT_WR);
	return NULL;
}

static const char *greeting = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}";

struct run {
	struct qmp q;
	struct fake f;
	pthread_t t;
};

static void run_start(struct run *r, const char *const *script)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	qmp_init(&r->q, sv[0]);
	r->f = (struct fake){.fd = sv[1], .script = script, .got_fd = -1};
	pthread_create(&r->t, NULL, fake_main, &r->f);
}

static void run_end(struct run *r)
{
	qmp_close(&r->q); /* the fake sees EOF and ends */
	pthread_join(r->t, NULL);
	close(r->f.fd);
	if (r->f.got_fd >= 0)
		close(r->f.got_fd);
}

static void test_handshake_and_events(void)
{
	const char *const script[] = {greeting, "<", "{\"return\": {}, \"id\": $ID}", "<",
				      "{\"event\": \"STOP\", \"timestamp\": {}}",
				      "{\"return\": {\"status\": \"paused\"}, \"id\": $ID}", NULL};
	struct run r;
	struct err e = {0};
	run_start(&r, script);
	CHECK(qmp_handshake(&r.q, 2000, &e) == 0);
	json_t *ret = NULL;
	CHECK(qmp_cmd(&r.q, "query-status", NULL, &ret, 2000, &e) == 0);
	CHECK(ret && strcmp(json_string_value(json_object_get(ret, "status")) ?: "", "paused") == 0);
	CHECK(strcmp(r.f.last_cmd, "query-status") == 0);
	json_decref(ret);
	run_end(&r);
}

static void test_error_reply_and_stale_id(void)
{
	const char *const script[] = {greeting, "<", "{\"return\": {}, \"id\": $ID}", "<",
				      "{\"return\": {}, \"id\": 999}",
				      "{\"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}, \"id\": $ID}",
				      NULL};
	struct run r;
	struct err e = {0};
	run_start(&r, script);
	CHECK(qmp_handshake(&r.q, 2000, &e) == 0);
	CHECK(qmp_cmd(&r.q, "cont", json_pack("{s:b}", "x", 1), NULL, 2000, &e) == -EIO);
	CHECK(strstr(e.msg, "boom") != NULL);
	run_end(&r);
}

static void test_eof_timeout_garbage(void)
{
	struct err e = {0};
	struct run r;
	/* QEMU gone before its greeting */
	const char *const eof[] = {NULL};
	run_start(&r, eof);
	CHECK(qmp_handshake(&r.q, 2000, &e) == -EPIPE);
	run_end(&r);
	/* a greeting, then silence: the 100 ms timeout ends the wait (a wait
	 * that never ends fails the case at unit.h's case timeout) */
	const char *const quiet[] = {greeting, "<", "<", NULL};
	run_start(&r, quiet);
	CHECK(qmp_handshake(&r.q, 100, &e) == -ETIMEDOUT);
	run_end(&r);
	/* not JSON */
	const char *const junk[] = {"this is not json", NULL};
	run_start(&r, junk);
	CHECK(qmp_handshake(&r.q, 2000, &e) == -EPROTO);
	run_end(&r);
	/* a first message that is not a greeting */
	const char *const nogreet[] = {"{\"return\": {}}", NULL};
	run_start(&r, nogreet);
	CHECK(qmp_handshake(&r.q, 2000, &e) == -EPROTO);
	run_end(&r);
	/* closed client */
	struct qmp q;
	qmp_init(&q, -1);
	CHECK(qmp_cmd(&q, "stop", NULL, NULL, 100, &e) == -ENOTCONN);
	qmp_close(&q);
}

/* A migration through a fd: getfd carries it (SCM_RIGHTS), then the
 * command names it; QEMU gets our file itself. */
static void test_migrate_fd(void)
{
	const char *const script[] = {greeting, "<", "{\"return\": {}, \"id\": $ID}", "<",
				      "{\"return\": {}, \"id\": $ID}", "<",
				      "{\"return\": {}, \"id\": $ID}", NULL};
	struct run r;
	struct err e = {0};
	int p[2];
	char c = 0;
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	run_start(&r, script);
	CHECK(qmp_handshake(&r.q, 2000, &e) == 0);
	CHECK(qmp_migrate_fd(&r.q, "migrate-incoming", p[1], 2000, &e) == 0);
	CHECK(strcmp(r.f.fd_cmd, "getfd sbx-migration") == 0);
	CHECK(strcmp(r.f.last_cmd, "migrate-incoming") == 0);
	CHECK(strcmp(r.f.last_arg, "fd:sbx-migration") == 0);
	CHECK(r.f.got_fd >= 0 && write(r.f.got_fd, "x", 1) == 1); /* our pipe */
	CHECK(read(p[0], &c, 1) == 1 && c == 'x');
	close(p[0]);
	close(p[1]);
	run_end(&r);
}

int main(void)
{
	RUN(test_handshake_and_events);
	RUN(test_error_reply_and_stale_id);
	RUN(test_eof_timeout_garbage);
	RUN(test_migrate_fd);
	UNIT_DONE("qmp");
}
