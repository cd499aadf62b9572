/* Internals of the qemu backend shared by qemu.c (the VM's life: spawn, QMP,
 * stop, reap) and qemu_agent.c (the host end of the guest agent's channel). */
#ifndef SBX_QEMU_H
#define SBX_QEMU_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_proto.h"
#include "qmp.h"

/* The name of the agent's virtio-serial port (the guest's sbx.port=). */
#define AGENT_VPORT "sbx.agent"

struct err;
struct buf;

struct qemu_exec {
	uint64_t id;
	int fd; /* where the command's output goes (the engine's pipe); -1 once closed */
	/* A job: stdout to fd and stderr to err_fd (files: written at once), its
	 * stdin read from in_fd (the engine's pipe) while the agent gives credit. */
	bool job;
	int err_fd, in_fd;
	size_t in_credit;
	bool done;       /* the agent reported the exit; freed once buf is flushed */
	size_t off, len; /* output received, not yet in the pipe: buf[off, off+len) */
	size_t uncredited; /* bytes passed on and not yet credited back to the agent */
	char *buf;       /* AGENT_WINDOW bytes */
	bool warned;     /* said once in the log: a guest's flood of frames is not a flood of lines */
	int veofs;       /* a terminal's eof asked for, sent once stdin before it has gone */
	bool warm;       /* the agent said its warm shell took it (told the engine once) */
	struct qemu_exec *next;
};

/* A files request in flight (qemu_agent.c): the requester's and the
 * reader thread's, under the VM's xlock; wake tells of a change (nobody
 * waits on a thread for it: looks never block). */
struct qemu_file {
	uint64_t id;    /* AGENT_FILE_ID set */
	int verb;       /* enum vmm_file_verb */
	int answers;    /* AG_FRES taken (a put has two) */
	int want_answers; /* the requester's write waits for this many (put: 2 once all is sent) */
	bool want_end;  /* and for the end of the records (stat, list) */
	struct err *fail; /* the failure: every later call gives it; NULL: none */
	uint64_t size;  /* get, stat, list: the bytes the agent announced; put: to send */
	uint64_t got;   /* bytes received of them (put: sent) */
	bool ended;     /* the empty AG_FDATA came */
	char *buf;      /* get: AGENT_WINDOW bytes; stat, list: size bytes of records */
	size_t off, len; /* get: received, not yet read: buf[off, off+len) */
	size_t uncredited;
	size_t credit_due; /* get: read, for the reader thread to credit (never a reader's send) */
	uint64_t wait_usec; /* when a look (the requester's, then a get's reader's) began
			     * to find nothing (0: none has) */
	uint64_t wait_got;  /* got then: bytes since are progress */
	/* Sent without waiting (the requester's look never holds its thread):
	 * req, the request's AG_FILE payload while the channel had no room for
	 * it (NULL once it went); want_room, a look found no room for it or for
	 * a put's bytes (the reader thread wakes it when there is, and clears
	 * it); room_usec, when a look first found none (0: none has, or bytes
	 * went since), for the send bound. */
	char *req;
	uint32_t req_len;
	bool want_room;
	uint64_t room_usec;
	/* A put's bytes its writes handed over that the channel had no room
	 * for: kept[koff, koff+klen), sent in order by the reader thread when
	 * there is room (under xlock); taken, all its writes handed over. */
	char *kept;
	size_t koff, klen;
	uint64_t taken;
	void (*wake)(void *arg); /* a look may find more (vmm_file_req's) */
	void *wake_arg;
	char shown[4 * 4096 + 1]; /* the path, escaped (for sentences) */
	struct qemu_file *next;
};

/* A control frame the channel had no room for (struct qemu_vm's queue). */
struct qemu_frame {
	struct qemu_frame *next;
	uint64_t seq; /* the VM's count of queued frames: a sender's ticket */
	uint32_t len;
	char buf[]; /* a header and its payload */
};

/* The queue's bound: frames and their structs. 31 commands of a ctl line's
 * 4 KiB fit (the agent runs at most 64 at once), or thousands of kills. */
#define QEMU_QUEUE_MAX (128u << 10)
/* A put's bytes the channel has no room for, kept for the reader thread to
 * send: a buffer of QEMU_PUT_KEPT each, QEMU_KEPT_MAX a VM (beyond, the
 * write waits, parked). */
#define QEMU_PUT_KEPT (1u << 20)
#define QEMU_KEPT_MAX (4u << 20)

struct qemu_vm {
	struct qmp qmp;
	int agent_fd; /* our end of the agent's port (QEMU's socket chardev holds the other) */
	int note_wr;  /* reader thread -> monitor: "E<id> <code>"; vm->ctl_fd is the read end */
	int quit_fd;  /* eventfd: ends the reader thread */
	int wake_fd;  /* eventfd: a new job's stdin for the reader thread to watch */
	int pidfd;    /* QEMU's, our own copy: stop may still use it after the reap */
	int refs;     /* under qemu.c's priv_lock */
	pthread_t reader;
	bool reader_running;
	pthread_mutex_t wlock; /* one writer at a time on agent_fd, and w* below */
	/* A frame a send left half written when the guest stopped reading: its
	 * rest goes before any other frame; wstalled: a send or a request's
	 * look found no room for the send bound and the channel has not drained
	 * since, so those do not wait (qagent_send_synced, files). */
	char wpend[sizeof(struct agent_hdr) + AGENT_FDATA_MAX + AGENT_SYNC_LEN];
	size_t wpend_off, wpend_len;
	bool wstalled;
	/* The reader thread polls for room in the channel: a rest in wpend, a
	 * queued frame, a request that waits for room (want_room). */
	_Atomic bool room_wanted;
	pthread_mutex_t xlock; /* the execs list */
	struct qemu_exec *execs;
	char shm_path[PATH_MAX]; /* our own guest RAM file; "" when RAM is a private map */
	char ram_path[PATH_MAX]; /* the file guest RAM maps (shm_path or a snapshot's) */
	bool ram_shared;         /* share=on: a checkpoint leaves RAM out of the stream */
	int agent_version;       /* its last hello's (AGENT_VERSION_TTY: terminals, user=) */
	bool nic;                /* a virtio-net device on a TAP (vm->nic) */
	bool vserial;            /* the agent's channel is a virtio-serial port, not ttyS1 */
	unsigned mem_mib, vcpus;
	/* files requests (under xlock); reader_gone once the reader thread
	 * ended (they fail). */
	struct qemu_file *files;
	uint64_t file_seq;
	bool reader_gone;
	bool files_credit; /* some get's credit_due waits for the reader thread (wake_fd) */
	int files_wait_ms; /* how long a request waits for the agent without progress */
	int send_wait_ms;  /* how long a send, or a request's look, waits for room */
	size_t kept_bytes; /* the puts' kept buffers (under xlock), at most QEMU_KEPT_MAX */
	/* Control frames (a command, its kill, stdin, credit, a request's
	 * AG_FEND) that found the channel full: sent in order before any later
	 * frame, by the next sender or the reader thread when there is room.
	 * Added under xlock; only a holder of wlock takes the first out.
	 * queue_bytes: their size with their struct, at most QEMU_QUEUE_MAX. */
	struct qemu_frame *queue, *queue_last;
	size_t queue_bytes;
	/* Frames queued (the last seq), and the last run of them dropped,
	 * [drop_from, drop_to] (0: none): one that left the queue otherwise
	 * was sent. */
	uint64_t queue_seq, drop_from, drop_to;
	/* The queue's deadline (the reader thread): frames wait at most
	 * stall_ms with the channel taking nothing (owed_usec: its last
	 * progress, or the queue's start); then they are dropped, every
	 * command ends (lost) and lost says so: a send fails at once (never
	 * queued) until the channel takes bytes again. held: the VM's vCPUs
	 * are stopped on purpose (pause, a checkpoint): no deadline runs.
	 * outq_seen: the bytes the guest had not read at the last look
	 * (SIOCOUTQ): fewer now is progress too, though no send could go yet
	 * (a socket takes more once only a quarter is left). */
	int stall_ms;
	_Atomic uint64_t owed_usec;
	_Atomic int outq_seen;
	_Atomic bool lost;
	_Atomic bool held;
	size_t in_len; /* agent bytes received, not yet a whole frame */
	char in[2 * (sizeof(struct agent_hdr) + AGENT_OUT_MAX)];
};

/* The agent channel's framing, pure (no fd, no lock) so that the fuzz target
 * tests/fuzz/fuzz_agent.c links it alone; qemu_agent.c reads through these.
 *
 * Takes the first whole frame out of in[0, *in_len): 1 with the header in *h
 * and its payload in payload (AGENT_OUT_MAX + 1 bytes of room;
 * NUL-terminated) and the rest moved to the front; 0 when more bytes are
 * needed; -EPROTO when the header announces more than AGENT_OUT_MAX.
 * On 0 and -EPROTO, in and *in_len are left alone. */
static inline int qagent_take_frame(char *in, size_t *in_len, struct agent_hdr *h, char *payload)
{
	if (*in_len < sizeof(*h))
		return 0;
	memcpy(h, in, sizeof(*h));
	if (h->len > AGENT_OUT_MAX)
		return -EPROTO;
	size_t n = sizeof(*h) + h->len;
	if (*in_len < n)
		return 0;
	memcpy(payload, in + sizeof(*h), h->len);
	payload[h->len] = '\0';
	memmove(in, in + n, *in_len - n);
	*in_len -= n;
	return 1;
}

/* An AG_PID's payload p (NUL-terminated, any bytes): "PID", a terminal's
 * job's "PID PTS", or "PID -1 w" for a command the agent's warm shell took.
 * *pts is -1 unless 0 to 2^20; true when it says warm. */
static inline bool qagent_pid_report(const char *p, int *pid, int *pts)
{
	char *end;
	*pid = (int)strtol(p, &end, 10);
	long n = *end == ' ' ? strtol(end, &end, 10) : -1;
	*pts = n >= 0 && n < (1 << 20) ? (int)n : -1;
	return strcmp(end, " w") == 0;
}

/* The answer marker after AG_FORK / AG_RESYNC: when want[0, wn) occurs in
 * in[0, *in_len), drops everything through its first occurrence and returns 1.
 * version: what the hello it ends says (qagent_hello_version), 0 when the
 * bytes before it are not in.
 * Otherwise returns 0 and, when the buffer is full (*in_len == cap), keeps
 * only its last wn bytes (where a match could start), so there is room for
 * more. wn must be at most cap. */
/* The version an agent's hello states ("sbx-agent N", agent_proto.h) in
 * p[0, n): the last "sbx-agent " there, then 1 to 4 digits that end p or a
 * word. 0 when p has none (an agent that says no number is of before). */
static inline int qagent_hello_version(const char *p, size_t n)
{
	static const char tag[] = "sbx-agent ";
	const size_t tl = sizeof(tag) - 1;
	int v = 0;
	for (size_t i = 0; i + tl < n; i++) {
		if (memcmp(p + i, tag, tl) != 0)
			continue;
		size_t d = i + tl;
		int x = 0;
		while (d < n && d - (i + tl) < 4 && p[d] >= '0' && p[d] <= '9')
			x = x * 10 + (p[d++] - '0');
		v = d > i + tl && (d == n || p[d] == ' ') ? x : 0;
	}
	return v;
}

static inline int qagent_take_answer(char *in, size_t *in_len, size_t cap, const char *want,
				     size_t wn, int *version)
{
	char *hit = memmem(in, *in_len, want, wn);
	if (hit) {
		/* The hello's words before the marker: "sbx-agent N". */
		size_t back = (size_t)(hit - in) < 24 ? (size_t)(hit - in) : 24;
		if (version)
			*version = qagent_hello_version(hit - back, back);
		size_t end = (size_t)(hit - in) + wn;
		memmove(in, in + end, *in_len - end);
		*in_len -= end;
		return 1;
	}
	if (*in_len == cap) {
		memmove(in, in + *in_len - wn, wn);
		*in_len = wn;
	}
	return 0;
}

/* The console's tail (data[0, n), guest-written, any bytes) as the one line
 * an error shows: what follows the last AGENT_FATAL (the agent's reason for
 * giving up at boot) when there is one, else the last line; cut at the line's
 * end and at cap - 1 bytes, NUL-terminated, control characters and NULs as '?'. */
#define AGENT_FATAL "sbx-agent: fatal: "
static inline void qemu_console_reason(const char *data, size_t n, char *out, size_t cap)
{
	const size_t fl = sizeof(AGENT_FATAL) - 1;
	size_t start = 0;
	if (!cap)
		return;
	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n; i++)
		if (data[i] == '\n')
			start = i + 1;
	for (const char *f = data; (f = memmem(f, n - (size_t)(f - data), AGENT_FATAL, fl));
	     f += fl)
		start = (size_t)(f - data) + fl;
	size_t o = 0;
	for (size_t i = start; i < n && data[i] != '\n' && data[i] != '\r' && o + 1 < cap; i++)
		out[o++] = (unsigned char)data[i] < 0x20 || data[i] == 0x7f ? '?' : data[i];
	out[o] = '\0';
}

/* The agent's answers to files requests (qemu_files.c, pure): AG_FRES's
 * payload p[0, n) (p[n] == NUL): 0 with the size it announces, or its
 * -errno with the daemon's sentence about shown; the records of a stat or
 * a list (raw[0, n)) into the lines of engine/files.c, names escaped. */
int qfiles_result(const char *p, size_t n, const char *shown, uint64_t *size, struct err *e);
int qfiles_answer(bool list, const char *raw, size_t n, const char *shown, struct buf *out,
		  struct err *e);
/* files requests through the agent (struct vmm_files_ops, for qemu.c):
 * q pinned by the caller until close. */
struct vmm_file_req;
void qagent_files_init(struct qemu_vm *q);
/* None waits for the agent (vmm_files_ops): open and write send what the
 * channel takes at once, answer_try and read_try look: -EAGAIN with
 * *wait_ms, and r's wake when there is more (or room). */
int qagent_file_open(struct qemu_vm *q, const struct vmm_file_req *r, struct qemu_file **out,
		     struct err *e);
int qagent_file_write(struct qemu_vm *q, struct qemu_file *f, const char *buf, size_t len,
		      size_t *took, unsigned *wait_ms, struct err *e);
int qagent_file_answer_try(struct qemu_vm *q, struct qemu_file *f, struct buf *answer,
			   unsigned *wait_ms, struct err *e);
ssize_t qagent_file_read_try(struct qemu_vm *q, struct qemu_file *f, char *buf, size_t size,
			     unsigned *wait_ms, struct err *e);
bool qagent_file_readable(struct qemu_vm *q, struct qemu_file *f);
void qagent_file_close(struct qemu_vm *q, struct qemu_file *f);

/* Waits for the agent's hello frame (the guest is up). */
int qagent_wait_hello(struct qemu_vm *q, int timeout_ms, struct err *e);
/* After a restore or a reconnect: waits for the agent's answer to AG_FORK
 * (what "fork") or AG_RESYNC ("resync"). */
int qagent_wait_answer(struct qemu_vm *q, const char *what, const char *nonce, int timeout_ms,
		       struct err *e);
/* Takes a job of an earlier daemon back (after AG_RESYNC). */
int qagent_attach(struct qemu_vm *q, uint64_t id, int out_fd, int err_fd, uint64_t out_off,
		  uint64_t err_off, struct err *e);
/* The reader thread: exec output to its fd, exits to note_wr. */
int qagent_start_reader(struct qemu_vm *q, struct err *e);
/* Ends the reader thread and closes every exec's output (readers see EOF). */
void qagent_stop_reader(struct qemu_vm *q);
/* A restore's or adopt's first frame (no reader thread runs yet): waits
 * for room, up to the send bound. */
int qagent_send_synced(struct qemu_vm *q, uint8_t type, const char *payload);
/* One frame, never waiting for the guest: sent now, or queued behind what
 * the channel owes (the reader thread sends it when there is room). 0,
 * -EBUSY when the queue is full, -ETIMEDOUT while the agent is taken for
 * lost (q->lost) and the channel has no room, -errno. */
int qagent_send(struct qemu_vm *q, uint8_t type, uint64_t id, const void *p, uint32_t len);
/* qagent_send, and *ticket: 0 when the frame went at once, else its place
 * in the queue, for qagent_wait_sent. */
int qagent_send_ticket(struct qemu_vm *q, uint8_t type, uint64_t id, const void *p, uint32_t len,
		       uint64_t *ticket);
/* Waits, up to timeout_ms, for a queued frame to go into the channel: 0
 * once it has; -ETIMEDOUT when the channel took nothing for the send bound
 * (the guest does not read; a slow reader's progress keeps it waiting), or
 * at timeout_ms; -ENOTCONN when it was dropped (the VM stops, or the
 * agent was taken for lost). */
int qagent_wait_sent(struct qemu_vm *q, uint64_t ticket, int timeout_ms);
/* The VM's vCPUs stop (hold) or run again on purpose: the queue's
 * deadline does not run while they are stopped. */
void qagent_hold(struct qemu_vm *q, bool hold);
/* A failed send of what ("the command") as the caller's sentence. */
int qagent_send_err(const struct qemu_vm *q, int r, const char *what, struct err *e);
/* How a command runs in the guest beyond its line: user= (NULL: root) and
 * a terminal's size (cols 0: none; a job only). */
struct qagent_opts {
	const char *user;
	unsigned cols, rows;
};
/* An exec (fds[0] the output pipe, n 1) or a job (fds stdin, stdout, stderr; n 3). */
int qagent_exec(struct qemu_vm *q, uint64_t id, const char *cmd, const struct qagent_opts *o,
		const int *fds, int n, struct err *e);
/* A terminal's job: its new size; or (cols 0) its end-of-file character
 * after the stdin written before this call. */
int qagent_tty(struct qemu_vm *q, uint64_t id, unsigned cols, unsigned rows, struct err *e);

#endif
