/* Parked reads: a read of a blocking file (wait, exec, a job's output) that
 * has nothing to return yet, or a write whose answer has not come (a qemu
 * sandbox's files request), is handed to one waiters' thread instead of
 * holding the thread that took it. That thread looks again when something
 * that may end the read happens (a kick, a readable fd, a deadline, an
 * interrupt) and ends the read from there. Nothing here knows FUSE, nor a
 * read from a write: the owner supplies how to look (try) and how to
 * answer (end). */
#ifndef SBX_WAITERS_H
#define SBX_WAITERS_H

#include <stdbool.h>
#include <stdint.h>

/* What a parked read waits for; kicks name the same things. */
enum wake_kind { WAKE_ANY = 0, WAKE_STATE, WAKE_JOB, WAKE_EXEC, WAKE_FILES };

struct sbx_wake {
	struct engine *eng;  /* the engine the sandbox is in */
	uint64_t sbx;        /* the sandbox's id */
	enum wake_kind kind;
	uint64_t sub;        /* WAKE_JOB: the job number; WAKE_EXEC: the exec id; WAKE_FILES: the handle's */
	int fd;              /* look again once readable (-1: no fd); the waiter keeps a dup */
	bool out;            /* fd: once writable instead */
	unsigned poll_ms;    /* look again after this long in any case (0: never) */
};

struct waiter;
struct waiter_ops {
	/* Looks once and never blocks. -EAGAIN: nothing yet, and wk says what to
	 * wait for; anything else ends the read (the owner keeps what it found
	 * for end). final: the deadline passed, answer with what there is. */
	int (*try)(struct waiter *w, bool final, struct sbx_wake *wk);
	/* Answers the read with r (try's result, -EINTR when interrupted,
	 * -ENOTCONN at daemon exit) and frees it. Called exactly once. */
	void (*end)(struct waiter *w, int r);
};

/* Embedded in the owner's read; the fields after ops are waiters.c's. */
struct waiter {
	const struct waiter_ops *ops;
	uint64_t deadline_usec; /* monotonic; 0: none */
	struct sbx_wake wk;
	int state;
	bool again, interrupted;
	int fd;                 /* the dup of wk.fd in the epoll set, or -1 */
	uint64_t wake_at_usec;  /* deadline or poll_ms, whichever comes first; 0 none */
	struct waiter *prev, *next, *due_next;
};

void waiter_init(struct waiter *w, const struct waiter_ops *ops, uint64_t deadline_usec);
/* w's try just answered -EAGAIN with wk: the waiters' thread looks once more
 * (so what happened since that look is not lost), then whenever wk says.
 * From here on w belongs to the waiters: end (maybe before this returns) is
 * the only way out. */
void waiter_park(struct waiter *w, const struct sbx_wake *wk);
/* The reader was interrupted: w ends with -EINTR soon. Any thread, before or
 * after waiter_park, never after end began (the owner fences that). */
void waiter_interrupt(struct waiter *w);

/* Something parked reads may wait for happened: kind WAKE_ANY wakes every
 * read parked on sandbox sbx. Any thread, any lock held (it only marks). */
void waiters_kick(uint64_t sbx, enum wake_kind kind, uint64_t sub);
/* A sandbox went: reads parked on one that no longer exists look again. */
void waiters_kick_gone(void);
/* Daemon exit: every parked read ends with -ENOTCONN and the thread stops;
 * a read parked later ends at once. */
void waiters_stop(void);

#endif
