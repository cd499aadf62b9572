/* A QMP client (QEMU Machine Protocol: one JSON object a line) over a
 * connected stream socket, with jansson. Commands are serialised by a mutex;
 * asynchronous events that arrive in between are skipped. */
#ifndef SBX_QMP_H
#define SBX_QMP_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct err;

struct qmp {
	int fd; /* -1 when closed */
	pthread_mutex_t lock;
	unsigned long next_id;
	size_t len;      /* bytes in buf */
	char buf[65536]; /* received, not yet parsed */
};

/* Takes ownership of fd (a socket whose peer is QEMU's QMP monitor). */
void qmp_init(struct qmp *q, int fd);
/* Reads the greeting and negotiates capabilities: QMP is ready after it. */
int qmp_handshake(struct qmp *q, int timeout_ms, struct err *e);
/* Runs one command. args (may be NULL) is stolen; *ret (may be NULL) gets a
 * new reference to the "return" value. A QMP "error" reply fails with -EIO
 * and QEMU's description in e. */
int qmp_cmd(struct qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
	    struct err *e);
void qmp_close(struct qmp *q);
/* A migration out ("migrate") or in ("migrate-incoming") through fd, a
 * file QEMU writes or reads itself (getfd, then the URI fd:NAME): no
 * exec: helper forked from QEMU, a copy of its whole address space (10 to
 * 25 ms of a live fork's pause under TCG here). */
int qmp_migrate_fd(struct qmp *q, const char *cmd, int fd, int timeout_ms, struct err *e);
/* The x-ignore-shared migration capability: RAM in a shared file is not sent. */
int qmp_set_ignore_shared(struct qmp *q, bool on, struct err *e);
/* Waits until the current migration (out or in) completed. */
int qmp_wait_migration(struct qmp *q, int timeout_ms, struct err *e);

#endif
