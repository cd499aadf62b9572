/* libFuzzer target: sbx-init's event reports as the daemon reads them.
 *
 * The input is one SOCK_SEQPACKET message on a sandbox's ctl socket (what
 * sbx-init's send_report/send_msg, or the qemu backend's reader thread, write:
 * "E<id> <exit code> <signal>", "P<id> <pid>[ <pts>[ e| j]]" (e, j: the
 * agent's warm shell took that exec or job), or the warm shell's "w3"). It is sent on a socketpair
 * and read with vmm_read_event (vmm/vmm.c), exactly as the backends' event op
 * does. Then, from the first bytes of the input, a well-formed report is
 * formatted the way sbx-init formats it, and read back. Besides the
 * sanitizers, it asserts:
 *   - vmm_read_event returns 0, reads exactly one message, and sees EAGAIN as
 *     VMM_EV_NONE and the peer's close as VMM_EV_HANGUP;
 *   - the kind follows the first byte ('E' exit, 'P' pid, "w3" warm shell
 *     wanted, else none, a bare "w" (an older init's) too; an empty
 *     message reads as a hangup, as EOF does), and the fields a kind does not
 *     carry are left alone;
 *   - the id agrees with an independent reading of the digits (strtoull of
 *     the first 127 bytes: the reader's buffer truncates longer messages);
 *   - warm is 'e' or 'j' only for a pid report that ends in " e" or " j",
 *     else 0;
 *   - a report formatted as sbx-init formats it reads back exactly.
 * vmm.c is linked alone: the few backend symbols it refers to are stubs here
 * that abort if called (the event reader never calls them).
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../vmm/cgroup.h"
#include "../../vmm/proto.h"
#include "../../vmm/vmm.h"

#define MUST(cond)                                                                         \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_event: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                       \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Link stubs for what vmm.c refers to beyond the event reader. */
const struct vmm_ops vmm_ns_ops, vmm_qemu_ops;
void vmm_ns_probe(void) { abort(); }
int cg_host_init(struct err *e) { abort(); }
int cg_destroy(struct cg *cg) { abort(); }
int vmm_trash_held(const char *path, int held_fd, struct err *e) { abort(); }
int vmm_trash(const char *path, struct err *e) { abort(); }
void vmm_qemu_spares_sweep(void) { abort(); }
void vmm_spawn_init(void) { abort(); }
void vmm_qemu_spares_drop_layer(const char *dir) { abort(); }

#define SENT_ID 0x5a5a5a5a5a5a5a5aull
#define SENT_INT 0x5a5a5a5a

static void sentinel(struct vmm_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = (enum vmm_event_kind)77;
	ev->exec_id = SENT_ID;
	ev->exit_code = ev->signal = ev->pid = SENT_INT;
	ev->warm = 'S';
	ev->lost = true;
}

/* Sends msg as one message and reads it back; checks the generic contract. */
static void read_one(const char *msg, size_t n, struct vmm_event *ev)
{
	int sv[2];
	MUST(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	MUST(send(sv[0], msg, n, MSG_NOSIGNAL) == (ssize_t)n);
	sentinel(ev);
	MUST(vmm_read_event(sv[1], ev) == 0);
	MUST(ev->kind == VMM_EV_NONE || ev->kind == VMM_EV_EXEC_EXIT ||
	     ev->kind == VMM_EV_EXEC_PID || ev->kind == VMM_EV_HANGUP ||
	     ev->kind == VMM_EV_WARM_WANTED);
	/* The reader's buffer holds 127 bytes; its text ends at a NUL. */
	size_t text = strnlen(msg, n < 127 ? n : 127);
	MUST(ev->warm == 0 || ((ev->warm == 'e' || ev->warm == 'j') && ev->kind == VMM_EV_EXEC_PID &&
			       text >= 2 && msg[text - 2] == ' ' && msg[text - 1] == ev->warm));
	/* lost: only an exit report that ends in " lost". */
	MUST(!ev->lost || (ev->kind == VMM_EV_EXEC_EXIT && text >= 5 &&
			   memcmp(msg + text - 5, " lost", 5) == 0));
	/* Exactly one message was taken: the socket is empty now (EAGAIN). */
	struct vmm_event again;
	sentinel(&again);
	MUST(vmm_read_event(sv[1], &again) == 0);
	MUST(again.kind == VMM_EV_NONE && again.exec_id == SENT_ID);
	/* The peer's close is a hangup. */
	close(sv[0]);
	sentinel(&again);
	MUST(vmm_read_event(sv[1], &again) == 0);
	MUST(again.kind == VMM_EV_HANGUP && again.exec_id == SENT_ID);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmm_event ev;
	read_one((const char *)data, size, &ev);

	char text[128];
	size_t t = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	memcpy(text, data, t);
	text[t] = '\0';
	if (size == 0) {
		MUST(ev.kind == VMM_EV_HANGUP);
	} else if (text[0] == MSG_EXEC_EXIT) {
		MUST(ev.kind == VMM_EV_EXEC_EXIT);
		MUST(ev.exec_id == strtoull(text + 1, NULL, 10));
		MUST(ev.pid == SENT_INT);
	} else if (text[0] == MSG_EXEC_PID) {
		MUST(ev.kind == VMM_EV_EXEC_PID);
		MUST(ev.exec_id == strtoull(text + 1, NULL, 10));
		MUST(ev.exit_code == SENT_INT && ev.signal == SENT_INT);
		MUST(ev.tty >= -1 && ev.tty < (1 << 20));
	} else if (text[0] == MSG_WARM_WANTED && text[1] == '3') {
		MUST(ev.kind == VMM_EV_WARM_WANTED);
	} else {
		MUST(ev.kind == VMM_EV_NONE);
	}
	if (ev.kind != VMM_EV_EXEC_EXIT && ev.kind != VMM_EV_EXEC_PID)
		MUST(ev.exec_id == SENT_ID && ev.exit_code == SENT_INT && ev.signal == SENT_INT &&
		     ev.pid == SENT_INT);

	/* Round trip: the values from the input's first 17 bytes, formatted as
	 * sbx-init formats its reports (vmm/init/sbx-init.c). */
	uint8_t v[17] = {0};
	memcpy(v, data, size < sizeof(v) ? size : sizeof(v));
	unsigned long long id;
	int32_t a, b;
	memcpy(&id, v, 8);
	memcpy(&a, v + 8, 4);
	memcpy(&b, v + 12, 4);
	char msg[128];
	int n;
	if (v[16] & 1) {
		n = snprintf(msg, sizeof(msg), "%c%llu %d %d", MSG_EXEC_EXIT, id, (int)a, (int)b);
		read_one(msg, (size_t)n, &ev);
		MUST(ev.kind == VMM_EV_EXEC_EXIT && ev.exec_id == id && ev.exit_code == a &&
		     ev.signal == b && ev.pid == SENT_INT && !ev.lost);
		/* The qemu reader's for a command it gave up. */
		n = snprintf(msg, sizeof(msg), "%c%llu %d %d lost", MSG_EXEC_EXIT, id, (int)a, (int)b);
		read_one(msg, (size_t)n, &ev);
		MUST(ev.kind == VMM_EV_EXEC_EXIT && ev.exec_id == id && ev.exit_code == a &&
		     ev.signal == b && ev.lost);
	} else {
		n = snprintf(msg, sizeof(msg), "%c%llu %d", MSG_EXEC_PID, id, (int)a);
		read_one(msg, (size_t)n, &ev);
		MUST(ev.kind == VMM_EV_EXEC_PID && ev.exec_id == id && ev.pid == a &&
		     ev.exit_code == SENT_INT && ev.signal == SENT_INT && ev.tty == -1);
		/* The qemu reader's, with a terminal's number (or -1). */
		n = snprintf(msg, sizeof(msg), "%c%llu %d %d", MSG_EXEC_PID, id, (int)a, (int)b);
		read_one(msg, (size_t)n, &ev);
		MUST(ev.kind == VMM_EV_EXEC_PID && ev.exec_id == id && ev.pid == a &&
		     ev.tty == (b >= 0 && b < (1 << 20) ? b : -1) && !ev.warm);
		/* And one its agent's warm shell took (an exec or a job). */
		char w = v[16] & 2 ? 'j' : 'e';
		n = snprintf(msg, sizeof(msg), "%c%llu %d -1 %c", MSG_EXEC_PID, id, (int)a, w);
		read_one(msg, (size_t)n, &ev);
		MUST(ev.kind == VMM_EV_EXEC_PID && ev.exec_id == id && ev.pid == a &&
		     ev.tty == -1 && ev.warm == w);
	}
	return 0;
}
