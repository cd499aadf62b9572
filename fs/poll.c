/* poll(2) on the files that change: each open file's wait (events, a job's
 * stdout and stderr), and their wakeups from the engine's watch callbacks.
 * The waits are file-level state, as the engine's callbacks carry no
 * context: they are found by the sandbox (0: the top level) and job. */
#include "node.h"

#include <string.h>

/* One per open file: a notify on any poll handle of a file wakes every
 * poller of that file. */
struct poll_wait {
	uint64_t id;
	uint32_t job;
	const struct fsx_handle *h;
	uint64_t seq; /* tells this wait from a later one at the same address */
	struct fuse_pollhandle *ph;
	struct poll_wait *next;
};
static pthread_mutex_t poll_lock = PTHREAD_MUTEX_INITIALIZER;
static struct poll_wait *poll_waits;
static uint64_t poll_seq;

/* With poll_lock held: unlinks the waits of handle h, or else of (id, job). */
static struct poll_wait *waits_take(uint64_t id, uint32_t job, const struct fsx_handle *h)
{
	struct poll_wait *out = NULL;
	for (struct poll_wait **p = &poll_waits; *p;) {
		struct poll_wait *w = *p;
		if (h ? w->h == h : w->id == id && w->job == job) {
			*p = w->next;
			w->next = out;
			out = w;
		} else {
			p = &w->next;
		}
	}
	return out;
}

/* Outside poll_lock: wakes the pollers (or not), frees the waits. */
static void waits_end(struct poll_wait *w, bool notify)
{
	while (w) {
		struct poll_wait *next = w->next;
		if (notify)
			fuse_lowlevel_notify_poll(w->ph);
		fuse_pollhandle_destroy(w->ph);
		free(w);
		w = next;
	}
}

/* With poll_lock held: w becomes its handle's wait. Returns the one it replaces. */
static struct poll_wait *wait_add_locked(struct poll_wait *w)
{
	struct poll_wait *old = waits_take(0, 0, w->h);
	w->seq = ++poll_seq;
	w->next = poll_waits;
	poll_waits = w;
	return old;
}

bool fsx_poll_wait(const struct fsx_handle *h, uint64_t id, uint32_t job,
		   struct fuse_pollhandle *ph, bool (*changed)(void *arg), void *arg)
{
	struct poll_wait *w = ph ? calloc(1, sizeof(*w)) : NULL, *old = NULL;
	pthread_mutex_lock(&poll_lock);
	bool ch = changed(arg);
	if (!ch && w) {
		*w = (struct poll_wait){.id = id, .job = job, .h = h, .ph = ph};
		old = wait_add_locked(w);
		w = NULL;
		ph = NULL;
	}
	pthread_mutex_unlock(&poll_lock);
	waits_end(old, false);
	free(w);
	if (ph)
		fuse_pollhandle_destroy(ph);
	return ch;
}

uint64_t fsx_poll_add(const struct fsx_handle *h, uint64_t id, uint32_t job,
		      struct fuse_pollhandle *ph)
{
	struct poll_wait *w = ph ? calloc(1, sizeof(*w)) : NULL;
	if (!w) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		return 0;
	}
	*w = (struct poll_wait){.id = id, .job = job, .h = h, .ph = ph};
	pthread_mutex_lock(&poll_lock);
	struct poll_wait *old = wait_add_locked(w);
	uint64_t seq = w->seq;
	pthread_mutex_unlock(&poll_lock);
	waits_end(old, false);
	return seq;
}

/* The wait numbered seq, unless it fired or was replaced meanwhile. */
void fsx_poll_cancel(uint64_t seq)
{
	struct poll_wait *w = NULL;
	pthread_mutex_lock(&poll_lock);
	for (struct poll_wait **p = &poll_waits; *p; p = &(*p)->next) {
		if ((*p)->seq == seq) {
			w = *p;
			*p = w->next;
			w->next = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&poll_lock);
	waits_end(w, false);
}

static void fire_waits(uint64_t id, uint32_t job)
{
	pthread_mutex_lock(&poll_lock);
	struct poll_wait *w = waits_take(id, job, NULL);
	pthread_mutex_unlock(&poll_lock);
	waits_end(w, true);
}

/* A change makes the kernel's attributes old, then wakes pollers and the
 * reads parked on it: any read of that sandbox for a change of its own (the
 * top level's: one may be gone). */
void fsx_changed(uint64_t id, bool gone)
{
	fsx_inval_sized(id, gone);
	fire_waits(id, 0);
	if (id)
		waiters_kick(id, WAKE_ANY, 0);
	else
		waiters_kick_gone();
}

void fsx_job_changed(uint64_t id, uint32_t job)
{
	fire_waits(id, job);
	waiters_kick(id, WAKE_JOB, job);
}

/* Under the backend's lock (engine_set_files_watch): it only wakes pollers;
 * their reads are kicked by the engine. */
void fsx_files_changed(uint64_t id)
{
	fire_waits(id, FSX_POLL_FILES);
}

/* A closed file: its waits go, unfired (nothing polls it any more). */
void fsx_poll_release(struct fsx_handle *h)
{
	pthread_mutex_lock(&poll_lock);
	struct poll_wait *w = waits_take(0, 0, h);
	pthread_mutex_unlock(&poll_lock);
	waits_end(w, false);
}
