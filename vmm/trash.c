/* The removal backlog: a tree of the state dir that is done with (a removed
 * sandbox's state dir, a layer no one uses) is renamed into STATE/trash at
 * once, which frees its name, and one background thread unmounts what is
 * mounted under it and removes it. The rename is the journal of the
 * removal: a daemon that dies first finds the entries at its next start
 * and removes them then. An entry may come with a fd the thread closes
 * before it touches the entry (a sandbox's mount namespace: its unmounts,
 * and the sync they do, are the thread's too); a daemon that dies first
 * closes it by dying. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm.h"

/* An entry whose fd the thread has not closed yet: the scan leaves it alone.
 * Listed before its rename, placed after it: only a placed one is the
 * thread's to close. */
struct held {
	struct held *next;
	int fd;
	bool placed;
	char name[]; /* in the trash dir */
};

/* An entry that cannot be removed (a mount that will not go) is tried again
 * after RETRY_MSEC, then twice as long each time up to RETRY_MAX_MSEC, and
 * at daemon exit EXIT_TRIES times before it is left to the next daemon. */
#define RETRY_MSEC 1000
#define RETRY_MAX_MSEC 60000
#define EXIT_TRIES 3
/* A pass starts once puts have been quiet QUIET_USEC, QUIET_MAX_USEC after
 * the first at most: a burst of removals (rmdirs at once) has the CPU for
 * the processes that must end before each returns; the unmounts, syncs
 * and unlinks of a pass beside them made a burst of 100 a fifth slower. */
#define QUIET_USEC 20000
#define QUIET_MAX_USEC 1000000

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, quit;
	uint64_t work; /* bumped by each put: the thread scans again */
	uint64_t put_usec; /* the last put (monotonic) */
	struct held *held; /* under lock */
	char dir[PATH_MAX];
	_Atomic uint64_t seq;
	_Atomic uint64_t pending; /* entries in dir not removed yet */
} trash = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

uint64_t vmm_trash_pending(void) { return atomic_load(&trash.pending); }

/* Decodes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static int longer_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Unmounts every mount at or under path (a sandbox's disk=), deepest first;
 * a busy one is detached (its device goes with its last open file). The
 * removal walk never crosses a mount, so nothing is removed through one. */
static int unmount_under(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	size_t plen = strlen(path), n = 0, cap = 0;
	char **list = NULL, *line = NULL;
	size_t lcap = 0;
	int r = 0;
	while (getline(&line, &lcap, f) > 0) {
		char mnt[PATH_MAX];
		/* id parent major:minor root mount-point ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		unescape(mnt);
		if (strncmp(mnt, path, plen) != 0 || (mnt[plen] != '/' && mnt[plen] != '\0'))
			continue;
		if (n == cap) {
			char **l = realloc(list, (cap = cap ? cap * 2 : 4) * sizeof(*l));
			if (!l) {
				r = -ENOMEM;
				break;
			}
			list = l;
		}
		if (!(list[n] = strdup(mnt))) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	free(line);
	fclose(f);
	if (n)
		qsort(list, n, sizeof(*list), longer_first);
	for (size_t i = 0; i < n; i++) {
		if (umount2(list[i], UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT &&
		    !(errno == EBUSY && umount2(list[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)) {
			if (r == 0)
				r = -errno;
			log_warn("cannot unmount %s: %s", list[i], strerror(errno));
		}
		free(list[i]);
	}
	free(list);
	return r;
}

/* Unmounts, then removes path and everything under it. */
static int remove_now(const char *path)
{
	int r = unmount_under(path);
	int r2 = vmm_remove_tree(path);
	return r2 < 0 ? r2 : r;
}

static bool is_held(const char *name)
{
	pthread_mutex_lock(&trash.lock);
	struct held *h = trash.held;
	while (h && strcmp(h->name, name) != 0)
		h = h->next;
	pthread_mutex_unlock(&trash.lock);
	return h != NULL;
}

/* Closes the fds of the entries placed so far: theirs can be removed now. */
static void release_held(void)
{
	struct held *mine = NULL;
	pthread_mutex_lock(&trash.lock);
	for (struct held **pp = &trash.held, *h; (h = *pp);) {
		if (h->placed) {
			*pp = h->next;
			h->next = mine;
			mine = h;
		} else {
			pp = &h->next;
		}
	}
	pthread_mutex_unlock(&trash.lock);
	while (mine) {
		struct held *next = mine->next;
		close(mine->fd);
		free(mine);
		mine = next;
	}
}

/* One pass over the trash: every entry there is removed (or tried), but
 * one whose fd is still held (put during the pass: the next pass has it).
 * Returns how many are left (-1: the trash cannot be read), *held of them held. */
static int64_t scan(bool quiet, int64_t *held)
{
	DIR *d = opendir(trash.dir);
	if (!d) {
		log_warn("cannot read %s: %s", trash.dir, strerror(errno));
		return -1;
	}
	int64_t left = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char path[PATH_MAX + 256];
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (is_held(de->d_name)) {
			left++;
			(*held)++;
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", trash.dir, de->d_name);
		int r = remove_now(path);
		struct stat st;
		if (lstat(path, &st) < 0 && errno == ENOENT)
			continue;
		left++;
		if (!quiet)
			log_warn("cannot remove %s yet (%s); trying again", path, strerror(-r));
	}
	closedir(d);
	return left;
}

/* With trash.lock held: until puts have been quiet (or the daemon quits). */
static void wait_quiet(void)
{
	uint64_t until = now_usec() + QUIET_MAX_USEC;
	while (!trash.quit) {
		uint64_t now = now_usec(), quiet = trash.put_usec + QUIET_USEC;
		uint64_t t = quiet < until ? quiet : until;
		if (now >= t)
			break;
		struct timespec ts = {.tv_sec = (time_t)(t / 1000000), .tv_nsec = (long)(t % 1000000) * 1000};
		pthread_cond_timedwait(&trash.cond, &trash.lock, &ts);
	}
}

static void *trash_main(void *arg)
{
	(void)arg;
	uint64_t seen = 0;
	int exit_tries = 0, retry_ms = RETRY_MSEC, failed_scans = 0;
	pthread_mutex_lock(&trash.lock);
	for (;;) {
		bool busy = atomic_load(&trash.pending) > 0;
		if (trash.quit && (!busy || exit_tries >= EXIT_TRIES))
			break;
		if (seen == trash.work && !trash.quit) {
			if (!busy) {
				pthread_cond_wait(&trash.cond, &trash.lock);
			} else { /* what is left failed: again, later, less often */
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				ts.tv_sec += retry_ms / 1000;
				pthread_cond_timedwait(&trash.cond, &trash.lock, &ts);
				retry_ms = retry_ms * 2 > RETRY_MAX_MSEC ? RETRY_MAX_MSEC : retry_ms * 2;
			}
		}
		if (trash.quit)
			exit_tries++;
		else
			wait_quiet();
		seen = trash.work;
		pthread_mutex_unlock(&trash.lock);
		release_held();
		/* A warning per entry for the first failures, then one in ten. */
		int64_t held = 0, left = scan(failed_scans > 3 && failed_scans % 10, &held);
		pthread_mutex_lock(&trash.lock);
		/* What is there, counted again: an entry removed by someone else
		 * is not waited for. A put during the scan moved trash.work, so
		 * the loop scans again and counts it. */
		if (left >= 0)
			atomic_store(&trash.pending, (uint64_t)left);
		failed_scans = left > held ? failed_scans + 1 : 0;
		if (left == held)
			retry_ms = RETRY_MSEC;
	}
	pthread_mutex_unlock(&trash.lock);
	uint64_t left = atomic_load(&trash.pending);
	if (left)
		log_warn("%llu entries of %s are left for the next start", (unsigned long long)left,
			 trash.dir);
	return NULL;
}

int vmm_trash_start(const char *dir, struct err *e)
{
	snprintf(trash.dir, sizeof(trash.dir), "%s", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, -errno, "cannot create %s: %s", dir, strerror(errno));
	/* What a dead daemon renamed here and did not remove: the thread's first scan. */
	DIR *d = opendir(dir);
	if (!d)
		return err_set(e, -errno, "cannot read %s: %s", dir, strerror(errno));
	struct dirent *de;
	uint64_t n = 0;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	atomic_store(&trash.pending, n);
	if (n)
		log_info("%llu entries left in %s by an earlier daemon: removing them",
			 (unsigned long long)n, dir);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&trash.cond, &ca);
	pthread_condattr_destroy(&ca);
	trash.quit = false;
	trash.work = n ? 1 : 0;
	int r = pthread_create(&trash.thread, NULL, trash_main, NULL);
	if (r != 0)
		return err_set(e, -r, "cannot start the removal thread: %s", strerror(r));
	trash.started = true;
	return 0;
}

void vmm_trash_stop(void)
{
	if (!trash.started)
		return;
	pthread_mutex_lock(&trash.lock);
	trash.quit = true;
	pthread_cond_broadcast(&trash.cond);
	pthread_mutex_unlock(&trash.lock);
	pthread_join(trash.thread, NULL);
	trash.started = false;
	release_held(); /* none: a put after quit closes its own */
}

int vmm_trash(const char *path, struct err *e)
{
	return vmm_trash_held(path, -1, e);
}

int vmm_trash_held(const char *path, int held_fd, struct err *e)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (held_fd >= 0)
			close(held_fd);
		return errno == ENOENT ? 0 : err_set(e, -errno, "cannot stat %s: %s", path,
						     strerror(errno));
	}
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char dest[PATH_MAX + 64];
	int n = snprintf(dest, sizeof(dest), "%s/%llx-%llu-%s", trash.dir,
			 (unsigned long long)wall_usec(),
			 (unsigned long long)atomic_fetch_add(&trash.seq, 1), base);
	/* Counted before it is there: the thread may remove it before we return. */
	atomic_fetch_add(&trash.pending, 1);
	bool fits = n > 0 && (size_t)n < sizeof(dest);
	const char *leaf = dest + strlen(trash.dir) + 1;
	struct held *h = NULL;
	if (held_fd >= 0 && fits && (h = calloc(1, sizeof(*h) + strlen(leaf) + 1))) {
		h->fd = held_fd;
		strcpy(h->name, leaf);
	}
	/* Listed before the rename: a pass that sees the entry leaves it alone. */
	pthread_mutex_lock(&trash.lock);
	bool open = trash.started && !trash.quit && (h || held_fd < 0);
	if (open && h) {
		h->next = trash.held;
		trash.held = h;
	}
	pthread_mutex_unlock(&trash.lock);
	bool renamed = open && fits && rename(path, dest) == 0;
	pthread_mutex_lock(&trash.lock);
	if (renamed) {
		if (h)
			h->placed = true;
		trash.work++;
		trash.put_usec = now_usec();
		pthread_cond_signal(&trash.cond);
	} else if (open && h) { /* not renamed: not the thread's */
		struct held **pp = &trash.held;
		while (*pp != h)
			pp = &(*pp)->next;
		*pp = h->next;
	}
	pthread_mutex_unlock(&trash.lock);
	if (renamed)
		return 0;
	free(h);
	if (held_fd >= 0)
		close(held_fd);
	atomic_fetch_sub(&trash.pending, 1);
	/* No trash (daemon exit, a path elsewhere): removed here and now. */
	int r = remove_now(path);
	return r < 0 ? err_set(e, r, "cannot remove %s: %s", path, strerror(-r)) : 0;
}
