/* The host end of the guest agent channel (vmm/qemu_agent.c) against a fake
 * agent on a socketpair: hello (also split across reads), exec output into
 * the engine's pipe with credits back, the exit report on ctl_fd, a closed
 * handle drained and credited, a stalled reader that never blocks the
 * reader thread's shutdown, and frames queued, in order, for a guest that
 * does not read; a queued poweroff's wait; the queue's deadline. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "../../vmm/vmm.h"

#include "../../engine/common.h"
#include "../../vmm/qemu.h"
#include "unit.h"

static int agent_side; /* the fake agent's end */

static void send_frame(uint8_t type, uint64_t id, const void *p, uint32_t len)
{
	struct agent_hdr h = {.type = type, .len = len, .id = id};
	if (send(agent_side, &h, sizeof(h), MSG_NOSIGNAL) != sizeof(h) ||
	    (len && send(agent_side, p, len, MSG_NOSIGNAL) != (ssize_t)len))
		fprintf(stderr, "fake agent: send failed\n");
}

static void send_text_frame(uint8_t type, uint64_t id, const char *s)
{
	send_frame(type, id, s, (uint32_t)strlen(s));
}

static bool read_full(int fd, void *p, size_t n, int timeout_ms)
{
	char *c = p;
	while (n) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return false;
		ssize_t r = recv(fd, c, n, 0);
		if (r <= 0)
			return false;
		c += r;
		n -= (size_t)r;
	}
	return true;
}

static bool recv_frame(struct agent_hdr *h, char *payload, int timeout_ms)
{
	if (!read_full(agent_side, h, sizeof(*h), timeout_ms) || h->len > AGENT_FDATA_MAX)
		return false;
	if (!read_full(agent_side, payload, h->len, timeout_ms))
		return false;
	payload[h->len] = '\0';
	return true;
}

static struct qemu_vm *vm_new(int *ctl_fd)
{
	int sv[2], nv[2];
	struct qemu_vm *q = calloc(1, sizeof(*q));
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, nv);
	q->agent_fd = sv[0];
	agent_side = sv[1];
	q->note_wr = nv[1];
	*ctl_fd = nv[0];
	q->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->pidfd = -1;
	pthread_mutex_init(&q->wlock, NULL);
	pthread_mutex_init(&q->xlock, NULL);
	qagent_files_init(q);
	return q;
}

static void vm_free(struct qemu_vm *q, int ctl_fd)
{
	qagent_stop_reader(q);
	close(q->agent_fd);
	close(q->note_wr);
	close(q->quit_fd);
	close(q->wake_fd);
	close(ctl_fd);
	close(agent_side);
	pthread_mutex_destroy(&q->wlock);
	pthread_mutex_destroy(&q->xlock);
	free(q);
}

static void test_hello(void)
{
	int ctl;
	struct err e = {0};
	struct qemu_vm *q = vm_new(&ctl);
	struct agent_hdr h = {.type = AG_HELLO, .len = 11};
	char frame[sizeof(h) + 11];
	memcpy(frame, &h, sizeof(h));
	memcpy(frame + sizeof(h), "sbx-agent 1", 11);
	CHECK(send(agent_side, frame, 5, 0) == 5);
	CHECK(qagent_wait_hello(q, 100, &e) == -ETIMEDOUT); /* half a header is not a hello */
	CHECK(send(agent_side, frame + 5, sizeof(frame) - 5, 0) == (ssize_t)sizeof(frame) - 5);
	CHECK(qagent_wait_hello(q, 2000, &e) == 0);
	CHECK(q->agent_version == 1);
	vm_free(q, ctl);

	q = vm_new(&ctl);
	send_frame(AG_OUT, 1, "x", 1);
	CHECK(qagent_wait_hello(q, 2000, &e) == -EPROTO);
	vm_free(q, ctl);

	q = vm_new(&ctl);
	shutdown(agent_side, SHUT_WR); /* QEMU exited */
	CHECK(qagent_wait_hello(q, 2000, &e) == -ECHILD);
	vm_free(q, ctl);
}

/* Reads the pipe to EOF; returns the byte count. */
static size_t drain(int fd)
{
	char buf[65536];
	size_t total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

static bool recv_note(int ctl, char *msg, size_t cap)
{
	struct pollfd pfd = {.fd = ctl, .events = POLLIN};
	if (poll(&pfd, 1, 2000) != 1)
		return false;
	ssize_t n = recv(ctl, msg, cap - 1, 0);
	if (n <= 0)
		return false;
	msg[n] = '\0';
	return true;
}

static void test_exec_output_credit_exit(void)
{
	int ctl, p[2];
	struct err e = {0};
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1], chunk[4096];
	struct qemu_vm *q = vm_new(&ctl);
	CHECK(qagent_start_reader(q, &e) == 0);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(qagent_exec(q, 7, "echo hi", NULL, &p[1], 1, &e) == 0);
	close(p[1]); /* as the engine does */
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_EXEC && h.id == 7 &&
	      strcmp(payload, "echo hi") == 0);
	/* Taken by the agent's warm shell: an exec's (e). */
	char msg[64];
	send_text_frame(AG_PID, 7, "40 -1 w");
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "P7 40 -1 e") == 0);

	/* A full window: more than the pipe holds, so the host buffers the rest. */
	memset(chunk, 'z', sizeof(chunk));
	for (int i = 0; i < AGENT_WINDOW / (int)sizeof(chunk); i++)
		send_frame(AG_OUT, 7, chunk, sizeof(chunk));
	send_frame(AG_EXIT, 7, "3", 1);
	/* Credited: at least what the pipe took before the exit came (after
	 * it nothing more comes, so the rest need not be), in batches of at
	 * most a quarter window. */
	int pipe_bytes = fcntl(p[0], F_GETPIPE_SZ);
	size_t want = (size_t)(pipe_bytes < AGENT_WINDOW ? pipe_bytes : AGENT_WINDOW);
	want -= want % (AGENT_WINDOW / 4) ? want % (AGENT_WINDOW / 4) : 0;
	CHECK(drain(p[0]) == AGENT_WINDOW);
	close(p[0]);
	size_t credited = 0;
	while (credited < want && recv_frame(&h, payload, 2000))
		if (h.type == AG_CREDIT && h.id == 7)
			credited += strtoull(payload, NULL, 10);
	CHECK(want > 0 && credited >= want && credited <= AGENT_WINDOW);

	CHECK(recv_note(ctl, msg, sizeof(msg)) && strncmp(msg, "E7 3", 4) == 0);
	vm_free(q, ctl);
}

/* The agent's frames may be larger than the host's (one 32 KiB write). */
static void test_large_output_frame(void)
{
	int ctl, p[2];
	struct err e = {0};
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1], chunk[AGENT_OUT_MAX];
	struct qemu_vm *q = vm_new(&ctl);
	CHECK(qagent_start_reader(q, &e) == 0);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(qagent_exec(q, 12, "head -c 32752 /dev/zero", NULL, &p[1], 1, &e) == 0);
	close(p[1]);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_EXEC && h.id == 12);
	memset(chunk, 'L', sizeof(chunk));
	send_frame(AG_OUT, 12, chunk, sizeof(chunk));
	send_frame(AG_EXIT, 12, "0", 1);
	CHECK(drain(p[0]) == AGENT_OUT_MAX);
	close(p[0]);
	char msg[64];
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strncmp(msg, "E12 0", 5) == 0);
	vm_free(q, ctl);
}

static void test_closed_handle_is_drained(void)
{
	int ctl, p[2];
	struct err e = {0};
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1], chunk[4096];
	struct qemu_vm *q = vm_new(&ctl);
	CHECK(qagent_start_reader(q, &e) == 0);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(qagent_exec(q, 8, "cat /dev/zero", NULL, &p[1], 1, &e) == 0);
	close(p[1]);
	close(p[0]); /* the user closed the exec handle */
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_EXEC);
	memset(chunk, 'z', sizeof(chunk));
	for (int i = 0; i < AGENT_WINDOW / (int)sizeof(chunk); i++)
		send_frame(AG_OUT, 8, chunk, sizeof(chunk));
	size_t credited = 0;
	while (credited < AGENT_WINDOW && recv_frame(&h, payload, 2000))
		if (h.type == AG_CREDIT && h.id == 8)
			credited += strtoull(payload, NULL, 10);
	CHECK(credited == AGENT_WINDOW);
	vm_free(q, ctl);
}

static void test_stalled_reader_does_not_block_shutdown(void)
{
	int ctl, p[2];
	struct err e = {0};
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1], chunk[4096];
	struct qemu_vm *q = vm_new(&ctl);
	CHECK(qagent_start_reader(q, &e) == 0);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(qagent_exec(q, 9, "yes", NULL, &p[1], 1, &e) == 0);
	close(p[1]);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_EXEC);
	memset(chunk, 'y', sizeof(chunk));
	for (int i = 0; i < AGENT_WINDOW / (int)sizeof(chunk); i++)
		send_frame(AG_OUT, 9, chunk, sizeof(chunk));
	/* A second command still gets through while the first one's reader sleeps. */
	int p2[2];
	CHECK(pipe2(p2, O_CLOEXEC) == 0);
	CHECK(qagent_exec(q, 10, "echo ok", NULL, &p2[1], 1, &e) == 0);
	close(p2[1]);
	send_frame(AG_OUT, 10, "ok\n", 3);
	send_frame(AG_EXIT, 10, "0", 1);
	char out[8] = "";
	struct pollfd pfd = {.fd = p2[0], .events = POLLIN};
	CHECK(poll(&pfd, 1, 2000) == 1 && read(p2[0], out, sizeof(out)) == 3 &&
	      memcmp(out, "ok\n", 3) == 0);
	/* Joins the reader thread: a join that never returns fails the case at
	 * unit.h's case timeout. */
	vm_free(q, ctl);
	CHECK(drain(p[0]) > 0); /* what was in the pipe, then EOF: the fd was closed */
	close(p[0]);
	close(p2[0]);
}

/* A guest that never reads its port and floods exit reports of ids nobody
 * ran (each one is answered with an ACK): neither the reader thread's sends
 * nor a worker's (an exec_kill) wait for it (one that did fails the case
 * at unit.h's case timeout, or says -ETIMEDOUT): they are queued, and once
 * the queue is full refused with a sentence; a guest that reads again gets
 * whole frames (the one a send left half written first). */
/* A VM with its reader thread, on a host's usual send buffer, not the
 * channel's larger one (it fills sooner). */
static struct qemu_vm *vm_started_small(int *ctl)
{
	struct err e = {0};
	struct qemu_vm *q = vm_new(ctl);
	CHECK(qagent_start_reader(q, &e) == 0);
	int sz = 106496;
	CHECK(setsockopt(q->agent_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) == 0);
	return q;
}

static void test_guest_that_never_reads_does_not_hold_senders(void)
{
	int ctl;
	struct err e = {0};
	/* The reader's ACKs fill the channel before the flood stops. */
	struct qemu_vm *q = vm_started_small(&ctl);
	CHECK(fcntl(agent_side, F_SETFL, O_NONBLOCK) == 0);
	char fr[sizeof(struct agent_hdr) + 3];
	int full = 0;
	for (long i = 0; i < 1000000 && full < 2000; i++) {
		struct agent_hdr h = {.type = AG_EXIT, .len = 3, .id = 100000 + (uint64_t)i};
		memcpy(fr, &h, sizeof(h));
		memcpy(fr + sizeof(h), "0 0", 3);
		if (send(agent_side, fr, sizeof(fr), MSG_NOSIGNAL) < 0) {
			full++;
			usleep(1000);
		}
	}
	/* Both directions are full now: the reader's ACKs filled the queue. */
	int r = 0;
	for (uint64_t id = 1; r == 0 && id < 100000; id++)
		r = qagent_send(q, AG_KILL, id, "9", 1);
	CHECK(r == -EBUSY);
	CHECK(qagent_send_err(q, r, "the signal", &e) == -EBUSY);
	CHECK(strstr(e.msg, "cannot send the signal to the guest agent: it has not read its "
			    "channel") == e.msg);
	/* The guest reads again: every frame it gets is whole. */
	CHECK(fcntl(agent_side, F_SETFL, 0) == 0);
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1];
	int frames = 0;
	while (recv_frame(&h, payload, 300)) {
		CHECK(h.type == AG_ACK || h.type == AG_KILL);
		frames++;
	}
	CHECK(frames > 0);
	vm_free(q, ctl);
}

/* Frames past what the channel takes are queued, in order behind what it
 * holds, up to the queue's bound (then -EBUSY); the reader thread sends
 * them when the guest reads again: every one, whole, in the order sent. */
static void test_queued_frames_keep_order(void)
{
	int ctl;
	struct qemu_vm *q = vm_started_small(&ctl);
	int r = 0;
	uint64_t id = 0;
	while (r == 0 && id < 1000000)
		r = qagent_send(q, AG_KILL, ++id, "9", 1);
	CHECK(r == -EBUSY);
	CHECK(q->queue != NULL);
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1];
	uint64_t want = 1;
	while (want < id && recv_frame(&h, payload, 2000)) {
		CHECK(h.type == AG_KILL && h.id == want && strcmp(payload, "9") == 0);
		if (h.id != want)
			break;
		want++;
	}
	CHECK(want == id); /* all but the refused one */
	/* Drained: the next goes at once again. */
	CHECK(qagent_send(q, AG_KILL, id, "9", 1) == 0);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_KILL && h.id == id);
	vm_free(q, ctl);
}

/* Fills the channel of a VM whose guest reads nothing: frames until one is
 * queued; the next id. */
static uint64_t fill_until_queued(struct qemu_vm *q, uint64_t id)
{
	uint64_t ticket = 0;
	while (!ticket && id < 1000000)
		CHECK(qagent_send_ticket(q, AG_KILL, ++id, "9", 1, &ticket) == 0);
	CHECK(ticket != 0);
	return id + 1;
}

/* A guest that reads slowly, 64 bytes every 20 ms, until it finds a
 * poweroff; reads counts its reads. */
struct slow_reader {
	pthread_t t;
	atomic_bool found;
	atomic_int reads;
};

static void *slow_reader_main(void *arg)
{
	struct slow_reader *sr = arg;
	static char buf[sizeof(struct agent_hdr) + AGENT_PAYLOAD_MAX + 1];
	size_t have = 0;
	while (!atomic_load(&sr->found)) {
		struct pollfd pfd = {.fd = agent_side, .events = POLLIN};
		if (poll(&pfd, 1, 5000) <= 0)
			break;
		ssize_t n = recv(agent_side, buf + have, 64 < sizeof(buf) - have ? 64
										 : sizeof(buf) - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
		atomic_fetch_add(&sr->reads, 1);
		struct agent_hdr h;
		while (have >= sizeof(h)) {
			memcpy(&h, buf, sizeof(h));
			if (have < sizeof(h) + h.len)
				break;
			if (h.type == AG_POWEROFF)
				atomic_store(&sr->found, true);
			memmove(buf, buf + sizeof(h) + h.len, have - sizeof(h) - h.len);
			have -= sizeof(h) + h.len;
		}
		usleep(20000);
	}
	return NULL;
}

/* A poweroff queued behind a full channel: a guest that reads, slowly,
 * gets it however long the drain takes (each read is progress, though the
 * socket takes no send until three quarters are read); one that reads
 * nothing makes the wait end at the send bound, the frame queued. */
static void test_queued_poweroff_waits_for_a_reading_guest(void)
{
	int ctl;
	struct qemu_vm *q = vm_started_small(&ctl);
	q->send_wait_ms = 200;
	uint64_t ticket = 0;
	fill_until_queued(q, 0);
	CHECK(qagent_send_ticket(q, AG_POWEROFF, 0, "9", 1, &ticket) == 0 && ticket);
	CHECK(qagent_wait_sent(q, ticket, 60000) == -ETIMEDOUT); /* nothing read */
	CHECK(q->queue != NULL && !atomic_load(&q->lost));
	struct slow_reader sr = {0};
	CHECK(pthread_create(&sr.t, NULL, slow_reader_main, &sr) == 0);
	while (atomic_load(&sr.reads) == 0)
		usleep(1000);
	uint64_t t0 = now_usec();
	CHECK(qagent_wait_sent(q, ticket, 60000) == 0);
	uint64_t waited_ms = (now_usec() - t0) / 1000;
	pthread_join(sr.t, NULL);
	CHECK(atomic_load(&sr.found));
	/* Not an assertion on time: whether the case was the one meant. */
	printf("# the slow guest took the poweroff after %" PRIu64 " ms (send bound %d ms)\n",
	       waited_ms, q->send_wait_ms);
	vm_free(q, ctl);
}

/* Frames queued for a guest that reads nothing for the queue's deadline
 * (not while the VM is held) are dropped: every command ends, reported
 * lost, a queued frame's wait ends, sends fail at once with the sentence;
 * once the guest reads again, sends go again. */
static void test_guest_that_never_reads_is_lost(void)
{
	int ctl, p[2];
	struct err e = {0};
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1];
	struct qemu_vm *q = vm_started_small(&ctl);
	q->send_wait_ms = 100;
	q->stall_ms = 400;
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(qagent_exec(q, 5, "sleep 300", NULL, &p[1], 1, &e) == 0);
	close(p[1]);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_EXEC && h.id == 5);
	qagent_hold(q, true); /* paused: the deadline does not run */
	uint64_t ticket = 0, id = fill_until_queued(q, 100);
	CHECK(qagent_send_ticket(q, AG_POWEROFF, 0, "9", 1, &ticket) == 0 && ticket);
	usleep(1000 * 1000);
	CHECK(!atomic_load(&q->lost) && q->queue != NULL);
	qagent_hold(q, false);
	char msg[64];
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "E5 137 9 lost") == 0);
	CHECK(atomic_load(&q->lost));
	CHECK(drain(p[0]) == 0); /* its output ends */
	close(p[0]);
	CHECK(qagent_wait_sent(q, ticket, 60000) == -ENOTCONN); /* dropped */
	int r = qagent_send(q, AG_KILL, id, "9", 1);
	CHECK(r == -ETIMEDOUT);
	CHECK(qagent_send_err(q, r, "the signal", &e) == -ETIMEDOUT);
	CHECK(strstr(e.msg, "cannot send the signal to the guest agent: it read nothing of its "
			    "channel for 0 s with frames waiting, so the daemon took it for lost") ==
	      e.msg);
	CHECK(qagent_exec(q, 6, "echo hi", NULL, &ctl, 1, &e) == -ETIMEDOUT);
	/* The guest reads again: everything up to the drop, then sends go. */
	while (recv_frame(&h, payload, 300))
		CHECK(h.type == AG_KILL || h.type == AG_ACK);
	CHECK(qagent_send(q, AG_KILL, id, "9", 1) == 0);
	CHECK(!atomic_load(&q->lost));
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_KILL && h.id == id);
	vm_free(q, ctl);
}

/* A job's stdio as the engine hands it over: stdin a pipe (its write end in
 * in[1]), stdout and stderr temporary files. */
struct job_io {
	char out_path[32], err_path[32];
	int fds[3], in[2];
};

static void job_io_open(struct job_io *io)
{
	snprintf(io->out_path, sizeof(io->out_path), "/tmp/sbx-unit-out.XXXXXX");
	snprintf(io->err_path, sizeof(io->err_path), "/tmp/sbx-unit-err.XXXXXX");
	io->fds[1] = mkstemp(io->out_path);
	io->fds[2] = mkstemp(io->err_path);
	CHECK(io->fds[1] >= 0 && io->fds[2] >= 0 && pipe2(io->in, O_CLOEXEC) == 0);
	io->fds[0] = io->in[0];
}

static void job_io_close(struct job_io *io)
{
	close(io->fds[1]);
	close(io->fds[2]);
	unlink(io->out_path);
	unlink(io->err_path);
}

/* A job: stdout and stderr into their files, stdin pumped to the agent under
 * its credit window (EOF as an empty AG_IN), the guest pid and the signal
 * that ended it reported on ctl_fd. */
static void test_job_streams_stdin_pid_signal(void)
{
	int ctl;
	struct err e = {0};
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1], chunk[AGENT_IN_WINDOW + 100];
	struct job_io io;
	job_io_open(&io);
	int *fds = io.fds, *in = io.in;
	struct qemu_vm *q = vm_new(&ctl);
	CHECK(qagent_start_reader(q, &e) == 0);
	CHECK(qagent_exec(q, 11, "cat", NULL, fds, 3, &e) == 0);
	close(in[0]);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_JOB && h.id == 11 &&
	      strcmp(payload, "cat") == 0);
	send_frame(AG_PID, 11, "42", 2);
	char msg[64];
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "P11 42 -1") == 0);
	/* The agent's warm shell took it ("PID -1 w"): the note says a job's
	 * (j) for the engine's count, once; a repeat, or an id the host never
	 * sent, counts nothing. */
	send_text_frame(AG_PID, 11, "42 -1 w");
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "P11 42 -1 j") == 0);
	send_text_frame(AG_PID, 11, "42 -1 w");
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "P11 42 -1") == 0);
	send_text_frame(AG_PID, 99, "1 -1 w");
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "P99 1 -1") == 0);

	/* More stdin than one window: the host stops at the window until credited. */
	memset(chunk, 'i', sizeof(chunk));
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	CHECK(write(in[1], chunk, sizeof(chunk)) > AGENT_IN_WINDOW / 2);
	size_t got = 0;
	while (got < AGENT_IN_WINDOW && recv_frame(&h, payload, 500))
		if (h.type == AG_IN && h.id == 11)
			got += h.len;
	CHECK(got == AGENT_IN_WINDOW);
	CHECK(!recv_frame(&h, payload, 200)); /* nothing beyond the window */
	send_frame(AG_CREDIT, 11, "100", 3);
	close(in[1]);
	size_t more = 0;
	bool eof = false;
	while (!eof && recv_frame(&h, payload, 2000))
		if (h.type == AG_IN && h.id == 11) {
			more += h.len;
			eof = h.len == 0;
		}
	CHECK(eof);
	CHECK(got + more <= sizeof(chunk));

	send_frame(AG_OUT, 11, "to-out", 6);
	send_frame(AG_ERR, 11, "to-err", 6);
	send_frame(AG_EXIT, 11, "137 9", 5);
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "E11 137 9") == 0);
	char buf[16] = "";
	CHECK(pread(fds[1], buf, sizeof(buf), 0) == 6 && memcmp(buf, "to-out", 6) == 0);
	CHECK(pread(fds[2], buf, sizeof(buf), 0) == 6 && memcmp(buf, "to-err", 6) == 0);
	vm_free(q, ctl);
	job_io_close(&io);
}

/* After a restore, what the source had in flight (half a frame) is dropped
 * up to the agent's "fork NONCE" hello, and framing resumes after it. */
static void test_wait_fork_resyncs(void)
{
	int ctl;
	struct err e = {0};
	struct qemu_vm *q = vm_new(&ctl);
	struct agent_hdr h = {.type = AG_OUT, .len = 4000, .id = 3};
	CHECK(send(agent_side, &h, sizeof(h), 0) == sizeof(h));
	CHECK(send(agent_side, "partial", 7, 0) == 7);
	CHECK(qagent_wait_answer(q, "fork", "abc", 100, &e) == -ETIMEDOUT);
	send_frame(AG_HELLO, 0, "sbx-agent 2 fork abd", 20); /* another nonce */
	CHECK(qagent_wait_answer(q, "fork", "abc", 100, &e) == -ETIMEDOUT);
	send_frame(AG_HELLO, 0, "sbx-agent 2 fork abc", 20);
	send_frame(AG_EXIT, 5, "0 0", 3);
	CHECK(qagent_wait_answer(q, "fork", "abc", 2000, &e) == 0);
	CHECK(q->agent_version == 2);
	CHECK(qagent_start_reader(q, &e) == 0);
	char msg[64];
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "E5 0 0") == 0);
	vm_free(q, ctl);
}

/* A terminal's job: refused with a sentence by an agent of before; with one
 * that has terminals, user= and tty= go after NULs, the pid report carries
 * the pts, resize is a frame, and eof goes after the stdin written before it. */
static void test_tty_job_user_resize_eof(void)
{
	int ctl;
	struct err e = {0};
	struct agent_hdr h;
	static char payload[AGENT_PAYLOAD_MAX + 1];
	struct job_io io;
	job_io_open(&io);
	int *fds = io.fds, *in = io.in;
	struct qemu_vm *q = vm_new(&ctl);
	CHECK(qagent_start_reader(q, &e) == 0);
	struct qagent_opts o = {.user = "nobody", .cols = 80, .rows = 24};
	q->agent_version = 2;
	CHECK(qagent_exec(q, 13, "sh", &o, fds, 3, &e) == -EOPNOTSUPP);
	CHECK(strstr(e.msg, "version 2") && strstr(e.msg, "no terminals"));
	struct qagent_opts u = {.user = "nobody"};
	CHECK(qagent_exec(q, 13, "id", &u, &fds[1], 1, &e) == -EOPNOTSUPP);
	CHECK(strstr(e.msg, "no user="));
	CHECK(!recv_frame(&h, payload, 200)); /* nothing went to the agent */
	CHECK(qagent_exec(q, 13, "id", NULL, &fds[1], 1, &e) == 0); /* plain: as before */
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_EXEC && h.len == 2);

	q->agent_version = AGENT_VERSION_TTY;
	CHECK(qagent_exec(q, 14, "sh", &o, fds, 3, &e) == 0);
	close(in[0]);
	static const char want[] = "sh\0user=nobody\0tty=80x24";
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_JOB && h.id == 14 &&
	      h.len == sizeof(want) - 1 && memcmp(payload, want, sizeof(want) - 1) == 0);
	send_frame(AG_PID, 14, "42 3", 4);
	char msg[64];
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "P14 42 3") == 0);
	CHECK(qagent_tty(q, 14, 100, 30, &e) == 0);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_WINSZ && h.id == 14 &&
	      strcmp(payload, "100 30") == 0);
	/* Written before the eof: it goes first. */
	CHECK(write(in[1], "typed\n", 6) == 6);
	CHECK(qagent_tty(q, 14, 0, 0, &e) == 0);
	size_t got = 0;
	bool veof = false;
	while (!veof && recv_frame(&h, payload, 2000)) {
		if (h.type == AG_IN && h.id == 14)
			got += h.len;
		veof = h.type == AG_VEOF && h.id == 14;
	}
	CHECK(veof && got == 6);
	/* Ended: no terminal input left to end. */
	send_frame(AG_EXIT, 14, "0 0", 3);
	CHECK(recv_note(ctl, msg, sizeof(msg)) && strcmp(msg, "E14 0 0") == 0);
	CHECK(qagent_tty(q, 14, 0, 0, &e) == -EPIPE);
	close(in[1]);
	vm_free(q, ctl);
	job_io_close(&io);
}


/* --- files: requests the agent serves --- */

/* A request's wake (vmm_file_req): counted, as the engine's kick would be. */
static atomic_int wakes;
static void count_wake(void *arg)
{
	(void)arg;
	atomic_fetch_add(&wakes, 1);
}

/* As a parked request after a look that said -EAGAIN with ms: until a wake
 * comes after seen, or ms passed. */
static void wait_woken(int seen, unsigned ms, int limit_ms)
{
	CHECK(ms > 0 && ms <= (unsigned)limit_ms);
	uint64_t until = now_usec() + ms * 1000ull;
	while (atomic_load(&wakes) == seen && now_usec() < until)
		usleep(1000);
}

/* As a parked write: a look for the answer, then (-EAGAIN) another once
 * woken or once the time it gave is up: the answer's deadline, or the send
 * bound's while its request waits for room (the open's send found the
 * channel busy: another sender, the reader thread's credit or end, held it). */
static int answer_woken(struct qemu_vm *q, struct qemu_file *f, struct buf *answer,
			struct err *e)
{
	for (;;) {
		int seen = atomic_load(&wakes);
		unsigned ms = 0;
		int r = qagent_file_answer_try(q, f, answer, &ms, e);
		if (r != -EAGAIN)
			return r;
		wait_woken(seen, ms, q->files_wait_ms > q->send_wait_ms ? q->files_wait_ms
									  : q->send_wait_ms);
	}
}

/* A request's write on its own thread (its start, then its looks), while
 * this one plays the agent; f closed when it fails. */
struct opener {
	struct qemu_vm *q;
	struct vmm_file_req r;
	struct buf answer;
	struct qemu_file *f;
	struct err e;
	int ret;
	pthread_t t;
};

static void *open_main(void *arg)
{
	struct opener *o = arg;
	o->ret = qagent_file_open(o->q, &o->r, &o->f, &o->e);
	if (o->ret == 0 && (o->ret = answer_woken(o->q, o->f, &o->answer, &o->e)) < 0) {
		qagent_file_close(o->q, o->f);
		o->f = NULL;
	}
	return NULL;
}

static void open_start(struct opener *o, struct qemu_vm *q, enum vmm_file_verb verb,
		       const char *path, uint64_t size)
{
	*o = (struct opener){.q = q, .r = {.verb = verb, .mode = 0644, .size = size, .path = path,
					   .shown = path, .wake = count_wake}};
	CHECK(pthread_create(&o->t, NULL, open_main, o) == 0);
}

/* The request as the agent gets it; its id. */
static uint64_t agent_takes(const char *want_head, const char *want_path)
{
	static char payload[AGENT_FDATA_MAX + 1];
	struct agent_hdr h;
	bool ok;
	/* Credits and ends of the requests before come first. */
	while ((ok = recv_frame(&h, payload, 2000)) && (h.type == AG_CREDIT || h.type == AG_FEND))
		;
	ok = ok && h.type == AG_FILE;
	CHECK(ok && (h.id & AGENT_FILE_ID));
	CHECK(ok && strcmp(payload, want_head) == 0);
	CHECK(ok && strlen(payload) + 1 + strlen(want_path) == h.len &&
	      memcmp(payload + strlen(payload) + 1, want_path, strlen(want_path)) == 0);
	return ok ? h.id : 0;
}

/* The agent's answer to a stat or list: its records (n bytes), then the end. */
static void send_records(uint64_t id, const char *recs, size_t n)
{
	char head[32];
	snprintf(head, sizeof(head), "0 %zu", n);
	send_text_frame(AG_FRES, id, head);
	send_frame(AG_FDATA, id, recs, (uint32_t)n);
	send_frame(AG_FDATA, id, NULL, 0);
}

/* As a parked read: a look, then (-EAGAIN) another once woken or once the
 * time it gave is up. */
static ssize_t read_woken(struct qemu_vm *q, struct qemu_file *f, char *out, size_t cap,
			  struct err *e)
{
	for (;;) {
		int seen = atomic_load(&wakes);
		unsigned ms = 0;
		ssize_t n = qagent_file_read_try(q, f, out, cap, &ms, e);
		if (n != -EAGAIN)
			return n;
		wait_woken(seen, ms, q->files_wait_ms);
	}
}

/* Reads the get to its end (or a failure: its -errno). */
static ssize_t read_all(struct qemu_vm *q, struct qemu_file *f, char *out, size_t cap,
			struct err *e)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = read_woken(q, f, out + got, cap - got, e);
		if (n <= 0)
			return n < 0 ? n : (ssize_t)got;
		got += (size_t)n;
	}
}

/* A VM whose agent serves files, its reader thread running. */
static struct qemu_vm *files_vm_new(int *ctl)
{
	struct err e = {0};
	struct qemu_vm *q = vm_new(ctl);
	q->agent_version = AGENT_VERSION_FILES;
	CHECK(qagent_start_reader(q, &e) == 0);
	return q;
}

static void test_files_need_agent_4(void)
{
	int ctl;
	struct err e = {0};
	struct qemu_file *f;
	struct qemu_vm *q = vm_new(&ctl);
	q->agent_version = AGENT_VERSION_TTY;
	struct vmm_file_req r = {.verb = VMM_FILE_GET, .path = "/x", .shown = "/x"};
	CHECK(qagent_file_open(q, &r, &f, &e) == -EOPNOTSUPP);
	CHECK(strstr(e.msg, "guest agent (version 3, from an older initramfs) has no files") != NULL);
	vm_free(q, ctl);
}

static void test_files_get_stat_list(void)
{
	int ctl;
	struct err e = {0};
	struct opener o;
	char back[64];
	struct qemu_vm *q = files_vm_new(&ctl);

	/* get: the size announced, the bytes in two frames, the end. */
	open_start(&o, q, VMM_FILE_GET, "/etc/x", 0);
	uint64_t id = agent_takes("get 644 0", "/etc/x");
	send_text_frame(AG_FRES, id, "0 10");
	send_text_frame(AG_FDATA, id, "hello ");
	send_text_frame(AG_FDATA, id, "you!");
	send_frame(AG_FDATA, id, NULL, 0);
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	CHECK(read_all(q, o.f, back, sizeof(back), &e) == 10 && memcmp(back, "hello you!", 10) == 0);
	qagent_file_close(q, o.f);

	/* A guest that sends more than it announced: the read fails. */
	open_start(&o, q, VMM_FILE_GET, "/y", 0);
	id = agent_takes("get 644 0", "/y");
	send_text_frame(AG_FRES, id, "0 4");
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	send_text_frame(AG_FDATA, id, "12345678");
	CHECK(read_all(q, o.f, back, sizeof(back), &e) == -EPROTO);
	CHECK(strstr(e.msg, "sent more of /y than the 4 bytes it announced") != NULL);
	qagent_file_close(q, o.f);

	/* A refusal: the daemon's sentence from the guest's word. */
	open_start(&o, q, VMM_FILE_GET, "/dev/null", 0);
	id = agent_takes("get 644 0", "/dev/null");
	send_text_frame(AG_FRES, id, "1 0 type c");
	pthread_join(o.t, NULL);
	CHECK(o.ret == -EPERM);
	CHECK(strcmp(o.e.msg, "/dev/null is not a regular file (type c): get reads regular files "
			      "only") == 0);

	/* list: records with raw names, escaped in the answer. */
	static const char recs[] = "f 644 3 100 a\nb\0d 755 0 5 sub\0";
	open_start(&o, q, VMM_FILE_LIST, "/w", 0);
	id = agent_takes("list 644 0", "/w");
	send_records(id, recs, sizeof(recs) - 1);
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	CHECK(o.answer.len && strcmp(o.answer.data, "f 0644 3 100 a\\x0ab\nd 0755 0 5 sub\n") == 0);
	buf_free(&o.answer);
	qagent_file_close(q, o.f);

	/* A name with a slash is no entry: the list fails, nothing is shown. */
	static const char bad[] = "f 644 3 100 ../x\0";
	open_start(&o, q, VMM_FILE_LIST, "/w", 0);
	id = agent_takes("list 644 0", "/w");
	send_records(id, bad, sizeof(bad) - 1);
	pthread_join(o.t, NULL);
	CHECK(o.ret == -EPROTO && strstr(o.e.msg, "list of /w is malformed") != NULL);
	buf_free(&o.answer);

	/* stat of a link: its target escaped. */
	static const char st[] = "l 777 7 0 0 1 99 /a\tb\0";
	open_start(&o, q, VMM_FILE_STAT, "/l", 0);
	id = agent_takes("stat 644 0", "/l");
	send_records(id, st, sizeof(st) - 1);
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	CHECK(o.answer.len && strcmp(o.answer.data, "type l\nmode 0777\nsize 7\nuid 0\ngid 0\n"
				     "nlink 1\nmtime 99\ntarget /a\\x09b\n") == 0);
	buf_free(&o.answer);
	qagent_file_close(q, o.f);
	vm_free(q, ctl);
}

static void test_files_put_and_stalled_guest(void)
{
	int ctl;
	struct err e = {0};
	struct opener o;
	struct agent_hdr h;
	static char payload[AGENT_FDATA_MAX + 1], data[40000];
	struct qemu_vm *q = files_vm_new(&ctl);

	/* put: the temporary made, the bytes in frames of at most
	 * AGENT_FDATA_MAX, the last write's look says once it is in place. */
	open_start(&o, q, VMM_FILE_PUT, "/tmp/p", sizeof(data));
	uint64_t id = agent_takes("put 644 40000", "/tmp/p");
	send_text_frame(AG_FRES, id, "0 0");
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	memset(data, 'p', sizeof(data));
	send_text_frame(AG_FRES, id, "0 40000"); /* early: it waits in the channel */
	size_t took = 0;
	unsigned ms = 0;
	CHECK(qagent_file_write(q, o.f, data, sizeof(data), &took, &ms, &e) == 0 &&
	      took == sizeof(data));
	CHECK(answer_woken(q, o.f, NULL, &e) == 0);
	size_t got = 0;
	while (got < sizeof(data) && recv_frame(&h, payload, 2000) && h.type == AG_FDATA &&
	       h.id == id && h.len <= AGENT_FDATA_MAX)
		got += h.len;
	CHECK(got == sizeof(data));
	CHECK(qagent_file_write(q, o.f, "x", 1, &took, &ms, &e) == -EFBIG && took == 0);
	qagent_file_close(q, o.f);

	/* A guest that never answers holds the request a bounded time; then
	 * it fails, and the agent is told to forget it. */
	q->files_wait_ms = 300;
	uint64_t t0 = now_usec();
	open_start(&o, q, VMM_FILE_GET, "/slow", 0);
	id = agent_takes("get 644 0", "/slow");
	pthread_join(o.t, NULL);
	CHECK(o.ret == -ETIMEDOUT && strstr(o.e.msg, "did not answer about /slow") != NULL);
	CHECK(now_usec() - t0 < 5 * 1000 * 1000);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_FEND && h.id == id);

	/* A VM that stops while a request waits: it fails at once. */
	q->files_wait_ms = 60000;
	open_start(&o, q, VMM_FILE_GET, "/gone", 0);
	id = agent_takes("get 644 0", "/gone");
	qagent_stop_reader(q);
	pthread_join(o.t, NULL);
	CHECK(o.ret == -EBUSY && strstr(o.e.msg, "stopped during the request on /gone") != NULL);
	vm_free(q, ctl);
}

/* A get whose bytes are late never holds its reader: a look says -EAGAIN
 * at once, the agent's data frame wakes it, and what it read goes back to
 * the agent as credit from the reader thread. A guest that then sends
 * nothing fails the read (or a poller's wait) at its deadline; a VM that
 * stops wakes it. */
static void test_files_get_late_bytes_wake_reader(void)
{
	int ctl;
	struct err e = {0};
	struct opener o;
	struct agent_hdr h;
	static char payload[AGENT_FDATA_MAX + 1];
	char back[64];
	unsigned ms = 0;
	struct qemu_vm *q = files_vm_new(&ctl);

	open_start(&o, q, VMM_FILE_GET, "/fifo", 0);
	uint64_t id = agent_takes("get 644 0", "/fifo");
	send_text_frame(AG_FRES, id, "0 10");
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	int w0 = atomic_load(&wakes);
	uint64_t t0 = now_usec();
	CHECK(qagent_file_read_try(q, o.f, back, sizeof(back), &ms, &e) == -EAGAIN);
	CHECK(now_usec() - t0 < 100 * 1000); /* no wait on the caller */
	CHECK(ms > 9000 && ms <= 10000);
	CHECK(!qagent_file_readable(q, o.f));
	usleep(200 * 1000); /* the agent is slow */
	CHECK(atomic_load(&wakes) == w0);
	send_text_frame(AG_FDATA, id, "late!");
	for (int i = 0; i < 2000 && atomic_load(&wakes) == w0; i++)
		usleep(1000);
	CHECK(atomic_load(&wakes) > w0);
	CHECK(qagent_file_readable(q, o.f));
	CHECK(qagent_file_read_try(q, o.f, back, sizeof(back), &ms, &e) == 5 &&
	      memcmp(back, "late!", 5) == 0);
	/* Taken all: its credit goes back, sent by the reader thread. */
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_CREDIT && h.id == id &&
	      strcmp(payload, "5") == 0);
	/* Nothing more for the deadline: the read fails, and says why. */
	q->files_wait_ms = 300;
	t0 = now_usec();
	CHECK(read_woken(q, o.f, back, sizeof(back), &e) == -ETIMEDOUT);
	CHECK(now_usec() - t0 >= 290 * 1000 && now_usec() - t0 < 3000 * 1000);
	CHECK(strstr(e.msg, "did not answer about /fifo") != NULL);
	CHECK(qagent_file_readable(q, o.f));
	qagent_file_close(q, o.f);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_FEND && h.id == id);

	/* A poller alone (no read): the deadline runs as well, and its end
	 * wakes the poller, from the reader thread. */
	open_start(&o, q, VMM_FILE_GET, "/poll", 0);
	id = agent_takes("get 644 0", "/poll");
	send_text_frame(AG_FRES, id, "0 3");
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	w0 = atomic_load(&wakes);
	CHECK(!qagent_file_readable(q, o.f));
	for (int i = 0; i < 3000 && atomic_load(&wakes) == w0; i++)
		usleep(1000);
	CHECK(atomic_load(&wakes) > w0 && qagent_file_readable(q, o.f));
	CHECK(qagent_file_read_try(q, o.f, back, sizeof(back), &ms, &e) == -ETIMEDOUT);
	CHECK(strstr(e.msg, "did not answer about /poll") != NULL);
	qagent_file_close(q, o.f);

	/* A VM that stops: the waiting read is woken and fails. */
	q->files_wait_ms = 60000;
	open_start(&o, q, VMM_FILE_GET, "/gone", 0);
	id = agent_takes("get 644 0", "/gone");
	send_text_frame(AG_FRES, id, "0 3");
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	CHECK(qagent_file_read_try(q, o.f, back, sizeof(back), &ms, &e) == -EAGAIN);
	w0 = atomic_load(&wakes);
	qagent_stop_reader(q);
	CHECK(atomic_load(&wakes) > w0);
	CHECK(qagent_file_read_try(q, o.f, back, sizeof(back), &ms, &e) == -EBUSY);
	CHECK(strstr(e.msg, "stopped during the request on /gone") != NULL);
	qagent_file_close(q, o.f);
	vm_free(q, ctl);
}

/* A request's write never waits for the agent: the request goes, a look
 * says -EAGAIN at once with the time left, the agent's late answer wakes
 * it (a stat's records, a put's temporary and then its rename); a guest
 * that never answers fails it at its deadline, the reader thread waking
 * the parked write without a look of its own. */
static void test_files_answer_late_never_holds_writer(void)
{
	int ctl;
	struct err e = {0};
	struct buf answer = {0};
	struct qemu_file *f = NULL;
	struct agent_hdr h;
	static char payload[AGENT_FDATA_MAX + 1];
	unsigned ms = 0;
	struct qemu_vm *q = files_vm_new(&ctl);

	struct vmm_file_req r = {.verb = VMM_FILE_STAT, .mode = 0644, .path = "/s", .shown = "/s",
				 .wake = count_wake};
	uint64_t t0 = now_usec();
	CHECK(qagent_file_open(q, &r, &f, &e) == 0);
	CHECK(qagent_file_answer_try(q, f, &answer, &ms, &e) == -EAGAIN);
	CHECK(now_usec() - t0 < 100 * 1000); /* no wait on the caller */
	CHECK(ms > 9000 && ms <= 10000);
	uint64_t id = agent_takes("stat 644 0", "/s");
	int w0 = atomic_load(&wakes);
	usleep(200 * 1000); /* the agent is slow */
	CHECK(atomic_load(&wakes) == w0);
	static const char st[] = "f 600 3 0 0 1 7 \0";
	send_records(id, st, sizeof(st) - 1);
	for (int i = 0; i < 2000 && qagent_file_answer_try(q, f, &answer, &ms, &e) == -EAGAIN; i++)
		usleep(1000);
	CHECK(atomic_load(&wakes) > w0);
	CHECK(answer.len && strcmp(answer.data, "type f\nmode 0600\nsize 3\nuid 0\ngid 0\n"
				   "nlink 1\nmtime 7\n") == 0);
	buf_free(&answer);
	qagent_file_close(q, f);

	/* put: its first write waits for the temporary, its last for the rename;
	 * the bytes go at once, neither write waits on its thread. */
	r = (struct vmm_file_req){.verb = VMM_FILE_PUT, .mode = 0644, .size = 5, .path = "/p",
				  .shown = "/p", .wake = count_wake};
	CHECK(qagent_file_open(q, &r, &f, &e) == 0);
	id = agent_takes("put 644 5", "/p");
	CHECK(qagent_file_answer_try(q, f, NULL, &ms, &e) == -EAGAIN);
	send_text_frame(AG_FRES, id, "0 0");
	CHECK(answer_woken(q, f, NULL, &e) == 0);
	t0 = now_usec();
	size_t took = 0;
	CHECK(qagent_file_write(q, f, "hello", 5, &took, &ms, &e) == 0 && took == 5);
	CHECK(qagent_file_answer_try(q, f, NULL, &ms, &e) == -EAGAIN);
	CHECK(now_usec() - t0 < 100 * 1000);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_FDATA && h.id == id && h.len == 5);
	w0 = atomic_load(&wakes);
	send_text_frame(AG_FRES, id, "0 5");
	CHECK(answer_woken(q, f, NULL, &e) == 0);
	CHECK(atomic_load(&wakes) > w0);
	qagent_file_close(q, f);

	/* No answer at all: the reader thread fails it at the deadline and
	 * wakes it; the look then says why. */
	q->files_wait_ms = 300;
	r = (struct vmm_file_req){.verb = VMM_FILE_MKDIR, .mode = 0755, .path = "/d", .shown = "/d",
				  .wake = count_wake};
	CHECK(qagent_file_open(q, &r, &f, &e) == 0);
	id = agent_takes("mkdir 755 0", "/d");
	t0 = now_usec();
	CHECK(qagent_file_answer_try(q, f, NULL, &ms, &e) == -EAGAIN && ms <= 300);
	w0 = atomic_load(&wakes);
	for (int i = 0; i < 3000 && atomic_load(&wakes) == w0; i++)
		usleep(1000);
	CHECK(atomic_load(&wakes) > w0);
	CHECK(now_usec() - t0 >= 290 * 1000);
	CHECK(qagent_file_answer_try(q, f, NULL, &ms, &e) == -ETIMEDOUT);
	CHECK(strstr(e.msg, "did not answer about /d") != NULL);
	qagent_file_close(q, f);
	CHECK(recv_frame(&h, payload, 2000) && h.type == AG_FEND && h.id == id);
	vm_free(q, ctl);
}

/* The fake agent reading its port on a thread: a put's bytes (checked
 * against put_byte), its end, and the last other frame; until a second
 * passes without one. */
struct drainer {
	uint64_t id;
	size_t got;
	bool bad, fend;
	uint8_t other_type;
	uint64_t other_id;
	pthread_t t;
};

static char put_byte(size_t i) { return (char)('a' + i % 23); }

static void *drain_main(void *arg)
{
	struct drainer *d = arg;
	static char payload[AGENT_FDATA_MAX + 1];
	struct agent_hdr h;
	while (recv_frame(&h, payload, 1000)) {
		if (h.type == AG_FDATA && h.id == d->id) {
			for (uint32_t i = 0; i < h.len; i++)
				d->bad |= payload[i] != put_byte(d->got + i);
			d->got += h.len;
		} else if (h.type == AG_FEND && h.id == d->id) {
			d->fend = true;
		} else {
			d->other_type = h.type;
			d->other_id = h.id;
		}
	}
	return NULL;
}

/* A put whose guest does not read: its writes never wait for room (what
 * the channel does not take is kept, up to a buffer, then -EAGAIN with
 * what went and the time left), room wakes them, and every byte gets
 * there, in order, once the guest reads; a request opened meanwhile waits for room in
 * its looks, not in its open. A guest that never reads fails the put at the
 * send bound, with the send's sentence, and the agent is told to forget it
 * once it reads again. */
static void test_files_put_never_waits_for_room(void)
{
	int ctl;
	struct err e = {0};
	struct opener o;
	struct buf answer = {0};
	struct drainer d = {0};
	const size_t size = 4u << 20, chunk = 1u << 20;
	char *data = malloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = put_byte(i);
	struct qemu_vm *q = files_vm_new(&ctl);
	q->send_wait_ms = 60000;
	open_start(&o, q, VMM_FILE_PUT, "/big", size);
	d.id = agent_takes("put 644 4194304", "/big");
	send_text_frame(AG_FRES, d.id, "0 0");
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);

	/* The guest reads nothing: the channel fills, a write says -EAGAIN. */
	size_t sent = 0, took = 0;
	unsigned ms = 0;
	int r = 0;
	while (sent < size && (r = qagent_file_write(q, o.f, data + sent, chunk - sent % chunk,
						     &took, &ms, &e)) == 0)
		sent += took;
	sent += took;
	CHECK(r == -EAGAIN && sent < size && ms > 0 && ms <= 60000);
	struct qemu_file *st = NULL;
	struct vmm_file_req sr = {.verb = VMM_FILE_STAT, .mode = 0644, .path = "/s", .shown = "/s",
				  .wake = count_wake};
	CHECK(qagent_file_open(q, &sr, &st, &e) == 0);
	CHECK(qagent_file_answer_try(q, st, &answer, &ms, &e) == -EAGAIN && ms <= 60000);

	/* The guest reads: room wakes the write, the rest goes. */
	CHECK(pthread_create(&d.t, NULL, drain_main, &d) == 0);
	while (sent < size) {
		int seen = atomic_load(&wakes);
		r = qagent_file_write(q, o.f, data + sent, chunk - sent % chunk, &took, &ms, &e);
		sent += took;
		if (r == -EAGAIN)
			wait_woken(seen, ms, q->send_wait_ms);
		else if (r < 0)
			break;
	}
	CHECK(sent == size && r == 0);
	for (int i = 0; i < 5000 && st->req; i++) { /* its request goes once there is room */
		CHECK(qagent_file_answer_try(q, st, &answer, &ms, &e) == -EAGAIN);
		usleep(1000);
	}
	CHECK(!st->req);
	pthread_join(d.t, NULL);
	CHECK(d.got == size && !d.bad);
	CHECK(d.other_type == AG_FILE && d.other_id == st->id);
	send_text_frame(AG_FRES, d.id, "0 4194304");
	CHECK(answer_woken(q, o.f, NULL, &e) == 0);
	qagent_file_close(q, o.f);
	qagent_file_close(q, st);
	CHECK(q->kept_bytes == 0);

	/* A guest that never reads: the put fails at the bound (no write waits
	 * for it), as a send that timed out; its end waits for room. */
	q->send_wait_ms = 300;
	open_start(&o, q, VMM_FILE_PUT, "/never", size);
	d = (struct drainer){.id = agent_takes("put 644 4194304", "/never")};
	send_text_frame(AG_FRES, d.id, "0 0");
	pthread_join(o.t, NULL);
	CHECK(o.ret == 0);
	sent = 0;
	for (;;) {
		int seen = atomic_load(&wakes);
		r = qagent_file_write(q, o.f, data + sent, chunk - sent % chunk, &took, &ms, &e);
		sent += took;
		if (r != -EAGAIN && (r < 0 || sent == size))
			break;
		if (r == -EAGAIN)
			wait_woken(seen, ms, q->send_wait_ms);
	}
	CHECK(r == -ETIMEDOUT && sent < size);
	CHECK(strcmp(e.msg, "cannot send /never to the guest agent: Connection timed out; "
		     "nothing was put") == 0);
	qagent_file_close(q, o.f);
	CHECK(pthread_create(&d.t, NULL, drain_main, &d) == 0);
	pthread_join(d.t, NULL);
	CHECK(d.got > 0 && d.got <= sent && !d.bad && d.fend); /* kept bytes are dropped */
	CHECK(q->kept_bytes == 0);
	free(data);
	buf_free(&answer);
	vm_free(q, ctl);
}

int main(void)
{
	RUN(test_job_streams_stdin_pid_signal);
	RUN(test_wait_fork_resyncs);
	RUN(test_tty_job_user_resize_eof);
	RUN(test_hello);
	RUN(test_exec_output_credit_exit);
	RUN(test_large_output_frame);
	RUN(test_closed_handle_is_drained);
	RUN(test_stalled_reader_does_not_block_shutdown);
	RUN(test_guest_that_never_reads_does_not_hold_senders);
	RUN(test_queued_frames_keep_order);
	RUN(test_queued_poweroff_waits_for_a_reading_guest);
	RUN(test_guest_that_never_reads_is_lost);
	RUN(test_files_need_agent_4);
	RUN(test_files_get_stat_list);
	RUN(test_files_put_and_stalled_guest);
	RUN(test_files_get_late_bytes_wake_reader);
	RUN(test_files_answer_late_never_holds_writer);
	RUN(test_files_put_never_waits_for_room);
	UNIT_DONE("qemu_agent");
}
