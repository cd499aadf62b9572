/* libFuzzer target: QEMU's QMP lines as the qemu backend reads them.
 *
 * The input (after its first byte) is what QEMU writes on the QMP socket: a
 * greeting, replies and events, one JSON object a line. It is sent on a
 * SOCK_SEQPACKET socketpair (so each write arrives as one recv, and the
 * reader sees the lines split where the writes split them: the first byte of
 * the input is the size of each write, 0 for one write of it all), then the
 * peer shuts down its side, and vmm/qmp.c reads it as the daemon does:
 * qmp_handshake (greeting, qmp_capabilities with id 1), then two qmp_cmd.
 * Besides the sanitizers, it asserts, against an independent reading of the
 * lines (split at '\n', each one parsed alone with jansson):
 *   - each call returns what the model of the protocol says: 0, -EIO for a
 *     reply with "error", -EPROTO for a line that is not a JSON object (or a
 *     greeting without "QMP"), -EPIPE when the lines run out; never a time out;
 *   - an error comes with a NUL-terminated, non-empty sentence;
 *   - a failed command leaves *ret alone; a successful one returns the
 *     reply's "return" value (the same JSON);
 *   - what the client wrote back is its commands, one JSON object a line.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../engine/common.h"
#include "../../vmm/qmp.h"

#define MUST(cond)                                                                       \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_qmp: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                     \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* The model: the input's whole lines, read one after another. */
struct model {
	const char *p;
	size_t left;
};

/* 0 and a new object, -EPROTO (line consumed), -EPIPE (no whole line left). */
static int model_read(struct model *m, json_t **out)
{
	const char *nl = memchr(m->p, '\n', m->left);
	if (!nl)
		return -EPIPE;
	size_t n = (size_t)(nl - m->p) + 1;
	json_error_t je;
	json_t *j = json_loadb(m->p, n, 0, &je);
	m->p += n;
	m->left -= n;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return -EPROTO;
	}
	*out = j;
	return 0;
}

/* What cmd_locked does with the replies to the command with this id. */
static int model_cmd(struct model *m, json_int_t id, json_t **ret)
{
	for (;;) {
		json_t *j = NULL;
		int r = model_read(m, &j);
		if (r < 0)
			return r;
		json_t *mid = json_object_get(j, "id");
		if (!json_is_integer(mid) || json_integer_value(mid) != id) {
			json_decref(j);
			continue;
		}
		r = json_object_get(j, "error") ? -EIO : 0;
		if (r == 0 && ret)
			*ret = json_incref(json_object_get(j, "return"));
		json_decref(j);
		return r;
	}
}

static void check_err(int r, const struct err *e)
{
	MUST(r == 0 || r == -EIO || r == -EPROTO || r == -EPIPE);
	if (r < 0) {
		MUST(e->code == r);
		MUST(memchr(e->msg, '\0', sizeof(e->msg)) != NULL);
		MUST(e->msg[0] != '\0');
	}
}

#define SENTINEL ((json_t *)(uintptr_t)0x5a5a5a5a)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	/* At most 64 writes: they all wait in the socket before the first read,
	 * and a socket holds only so many messages (more would block here). */
	size_t chunk = data[0] ? data[0] : size;
	if (chunk < (len + 63) / 64)
		chunk = (len + 63) / 64;

	int sv[2];
	MUST(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		MUST(send(sv[0], in + off, n, MSG_NOSIGNAL) == (ssize_t)n);
	}
	MUST(shutdown(sv[0], SHUT_WR) == 0);

	static struct qmp q; /* 64 KiB buffer: keep it off the stack */
	qmp_init(&q, sv[1]);
	struct model m = {in, len};
	json_int_t next_id = 1;

	/* The handshake: the greeting, then qmp_capabilities. */
	struct err e = {0};
	int r = qmp_handshake(&q, 2000, &e);
	check_err(r, &e);
	json_t *g = NULL;
	int want = model_read(&m, &g);
	if (want == 0 && !json_object_get(g, "QMP"))
		want = -EPROTO;
	json_decref(g);
	if (want == 0)
		want = model_cmd(&m, next_id++, NULL);
	MUST(r == want);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_qmp: handshake %d\n", r);

	/* Two commands: one that wants the return value, one that does not. */
	for (int i = 0; i < 2; i++) {
		json_t *ret = SENTINEL, *want_ret = SENTINEL;
		struct err e2 = {0};
		r = qmp_cmd(&q, "query-status", NULL, i == 0 ? &ret : NULL, 2000, &e2);
		check_err(r, &e2);
		want = model_cmd(&m, next_id++, i == 0 ? &want_ret : NULL);
		MUST(r == want);
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "fuzz_qmp: command %d: %d\n", i, r);
		if (i == 0) {
			if (r < 0) {
				MUST(ret == SENTINEL && want_ret == SENTINEL);
			} else {
				MUST(ret != SENTINEL && want_ret != SENTINEL);
				MUST((ret == NULL) == (want_ret == NULL));
				MUST(ret == NULL || json_equal(ret, want_ret));
				json_decref(ret);
				json_decref(want_ret);
			}
		}
	}

	/* What the client sent: its commands, one JSON object a line, with
	 * increasing ids. */
	char out[4096];
	ssize_t n;
	json_int_t last = 0;
	while ((n = recv(sv[0], out, sizeof(out) - 1, MSG_DONTWAIT)) > 0) {
		json_error_t je;
		MUST(out[n - 1] == '\n');
		json_t *c = json_loadb(out, (size_t)n, 0, &je);
		MUST(json_is_object(c));
		MUST(json_is_string(json_object_get(c, "execute")));
		json_int_t id = json_integer_value(json_object_get(c, "id"));
		MUST(id == last + 1);
		last = id;
		json_decref(c);
	}
	MUST(last == next_id - 1);
	qmp_close(&q);
	close(sv[0]);
	return 0;
}
