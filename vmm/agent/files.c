/* Files in and out of the guest (AG_FILE, agent_proto.h): the host's
 * NAME/files requests, their paths resolved in the guest's own root with
 * openat2 (no magic links), refused as the ns backend's engine/files.c
 * refuses them: a get reads regular files only, never on procfs or sysfs;
 * a put goes into a temporary renamed over its target with its last byte. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define XFERS_MAX 16
#define FILES_LIST_MAX 100000 /* entries of one list, as engine/files.c */
#define FILES_TMP_TRIES 8
#define EROFS_MAGIC 0xE0F5E1E2
/* Frames one get sends in a row before the loop serves the rest. */
#define PUMP_BURST 8

struct xfer {
	bool used, put;
	uint64_t id;
	int fd;                /* get: the file; put: the temporary; -1: mem */
	int dir;               /* put: its directory */
	char *mem;             /* stat, list: their records */
	uint64_t size, done;   /* get: bytes to send, sent; put: announced, written */
	uint32_t credit;       /* get: AGENT_WINDOW less what the host has not credited */
	char tmp[32], name[NAME_MAX + 1];
};

static struct xfer xfers[XFERS_MAX];

static struct xfer *xfer_find(uint64_t id)
{
	for (int i = 0; i < XFERS_MAX; i++)
		if (xfers[i].used && xfers[i].id == id)
			return &xfers[i];
	return NULL;
}

static void xfer_free(struct xfer *x, bool keep)
{
	if (x->put && !keep && x->dir >= 0)
		unlinkat(x->dir, x->tmp, 0);
	if (x->fd >= 0)
		close(x->fd);
	if (x->dir >= 0)
		close(x->dir);
	free(x->mem);
	memset(x, 0, sizeof(*x));
}

/* AG_FRES: "ERRNO SIZE [WHAT]". */
static void answer(uint64_t id, int err, uint64_t size, const char *what)
{
	char p[96];
	int n = snprintf(p, sizeof(p), "%d %llu%s%s", err, (unsigned long long)size, what ? " " : "",
			 what ? what : "");
	send_frame(AG_FRES, id, p, (uint32_t)n);
}

/* Fails the request with errno err (what failed: agent_proto.h's words). */
static void fail(struct xfer *x, int err, const char *what)
{
	answer(x->id, err ? err : EIO, 0, what);
	xfer_free(x, false);
}

/* path opened in the guest's root: its links, `..` and mounts stay in it,
 * /proc's magic links (a process's fd/, root) are refused. */
static int root_open(const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
	int saved = errno;
	close(root);
	errno = saved;
	return fd;
}

/* The guest's own files (its root, a tmpfs, a disk), never procfs or
 * sysfs: 0, or the errno with what in its word. */
static int fs_ok(int fd, char *what, size_t cap)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0) {
		snprintf(what, cap, "path");
		return errno;
	}
	switch ((unsigned long)sfs.f_type) {
	case OVERLAYFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case EROFS_MAGIC:
		return 0;
	}
	snprintf(what, cap, "fs %lx", (unsigned long)sfs.f_type);
	return EPERM;
}

static char file_type(mode_t m)
{
	return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISCHR(m) ? 'c' :
	       S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p' : 's';
}

/* get: opened O_PATH, then, once it proved a regular file of the guest's,
 * for reading (a FIFO or a device is never opened). */
static void file_get(struct xfer *x, const char *path)
{
	char what[32] = "path", proc[40];
	struct stat st;
	int err = 0, p = root_open(path, O_PATH);
	if (p < 0)
		{ fail(x, errno, "path"); return; }
	if (fstat(p, &st) < 0)
		err = errno;
	else if (S_ISDIR(st.st_mode))
		err = EISDIR, snprintf(what, sizeof(what), "isdir");
	else if (!S_ISREG(st.st_mode))
		err = EPERM, snprintf(what, sizeof(what), "type %c", file_type(st.st_mode));
	else
		err = fs_ok(p, what, sizeof(what));
	if (!err) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", p);
		x->fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (x->fd < 0)
			err = errno, snprintf(what, sizeof(what), "path");
	}
	close(p);
	if (err)
		{ fail(x, err, what); return; }
	x->size = (uint64_t)st.st_size;
	x->credit = AGENT_WINDOW;
	answer(x->id, 0, x->size, NULL);
}

/* Appends n bytes to x->mem (size: its length, cap its room). */
static int mem_add(struct xfer *x, size_t *cap, const char *p, size_t n)
{
	if (x->size + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < x->size + n)
			c *= 2;
		char *m = realloc(x->mem, c);
		if (!m)
			return -1;
		x->mem = m;
		*cap = c;
	}
	memcpy(x->mem + x->size, p, n);
	x->size += n;
	return 0;
}

/* stat and list: their records go out as a get's bytes do. */
static void records_go(struct xfer *x)
{
	x->credit = AGENT_WINDOW;
	answer(x->id, 0, x->size, NULL);
}

static void file_stat(struct xfer *x, const char *path)
{
	char rec[128 + PATH_MAX], target[PATH_MAX];
	struct stat st;
	size_t cap = 0;
	int fd = root_open(path, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		{ fail(x, errno, "path"); return; }
	if (fstat(fd, &st) < 0) {
		int err = errno;
		close(fd);
		{ fail(x, err, "path"); return; }
	}
	ssize_t t = S_ISLNK(st.st_mode) ? readlinkat(fd, "", target, sizeof(target) - 1) : 0;
	target[t > 0 ? t : 0] = '\0';
	close(fd);
	int n = snprintf(rec, sizeof(rec), "%c %o %llu %u %u %llu %lld %s", file_type(st.st_mode),
			 (unsigned)(st.st_mode & 07777), (unsigned long long)st.st_size,
			 (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned long long)st.st_nlink,
			 (long long)st.st_mtime, target);
	if (mem_add(x, &cap, rec, (size_t)n + 1) < 0)
		{ fail(x, ENOMEM, "nomem"); return; }
	records_go(x);
}

static void file_list(struct xfer *x, const char *path)
{
	char rec[128 + NAME_MAX];
	size_t cap = 0, count = 0;
	int fd = root_open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		{ fail(x, errno, "path"); return; }
	DIR *d = fdopendir(fd);
	if (!d) {
		int err = errno;
		close(fd);
		{ fail(x, err, "path"); return; }
	}
	int err = 0;
	const char *what = NULL;
	struct dirent *de;
	while (!err && (errno = 0, de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (++count > FILES_LIST_MAX) {
			err = E2BIG, what = "big";
			break;
		}
		int n = snprintf(rec, sizeof(rec), "%c %o %llu %lld %s", file_type(st.st_mode),
				 (unsigned)(st.st_mode & 07777), (unsigned long long)st.st_size,
				 (long long)st.st_mtime, de->d_name);
		if (mem_add(x, &cap, rec, (size_t)n + 1) < 0)
			err = ENOMEM, what = "nomem";
	}
	if (!err && errno)
		err = errno, what = "read";
	closedir(d);
	if (err)
		{ fail(x, err, what); return; }
	records_go(x);
}

/* The directory of path (put, mkdir), opened in the root; its last name
 * into x->name (the host checked that there is one). */
static int parent_open(struct xfer *x, const char *path, char *what, size_t cap)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash || !slash[1] || strlen(slash + 1) > NAME_MAX || !strcmp(slash + 1, ".") ||
	    !strcmp(slash + 1, "..") || (size_t)(slash - path) >= sizeof(dir)) {
		snprintf(what, cap, "path");
		errno = EINVAL;
		return -1;
	}
	snprintf(x->name, sizeof(x->name), "%s", slash + 1);
	snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	int d = root_open(dir, O_PATH | O_DIRECTORY);
	if (d < 0) {
		snprintf(what, cap, "path");
		return -1;
	}
	int err = fs_ok(d, what, cap);
	if (err) {
		close(d);
		errno = err;
		return -1;
	}
	return d;
}

/* With its last byte in: the temporary becomes the target. */
static void put_finish(struct xfer *x)
{
	if (renameat(x->dir, x->tmp, x->dir, x->name) < 0)
		{ fail(x, errno, "rename"); return; }
	answer(x->id, 0, x->size, NULL);
	xfer_free(x, true);
}

static void file_put(struct xfer *x, const char *path, unsigned mode, uint64_t size)
{
	char what[32];
	x->put = true;
	x->dir = parent_open(x, path, what, sizeof(what));
	if (x->dir < 0)
		{ fail(x, errno, what); return; }
	for (int i = 0; i < FILES_TMP_TRIES && x->fd < 0; i++) {
		unsigned long long rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
			rnd = (unsigned long long)time(NULL) ^ (unsigned long long)i << 32 ^ x->id;
		snprintf(x->tmp, sizeof(x->tmp), ".sbx-put.%016llx", rnd);
		x->fd = openat(x->dir, x->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			       0600);
		if (x->fd < 0 && errno != EEXIST)
			break;
	}
	if (x->fd < 0) {
		int err = errno;
		x->tmp[0] = '\0'; /* nothing of ours to remove */
		x->put = false;
		{ fail(x, err, "tmp"); return; }
	}
	if (fchmod(x->fd, mode & 07777) < 0)
		{ fail(x, errno, "tmp"); return; }
	x->size = size;
	answer(x->id, 0, 0, NULL);
	if (size == 0)
		put_finish(x);
}

static void file_mkdir(struct xfer *x, const char *path, unsigned mode)
{
	char what[32];
	int d = parent_open(x, path, what, sizeof(what)), err = 0;
	if (d < 0)
		{ fail(x, errno, what); return; }
	if (mkdirat(d, x->name, 0700) < 0) {
		err = errno;
		snprintf(what, sizeof(what), "mkdir");
	} else {
		/* Its mode without our umask, on the directory just made. */
		int fd = openat(d, x->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, mode & 07777) < 0)
			err = errno, snprintf(what, sizeof(what), "mode");
		if (fd >= 0)
			close(fd);
	}
	close(d);
	if (err)
		{ fail(x, err, what); return; }
	answer(x->id, 0, 0, NULL);
	xfer_free(x, true);
}

void files_request(uint64_t id, const char *payload, uint32_t len)
{
	char verb[8];
	unsigned mode = 0;
	unsigned long long size = 0;
	size_t head = strnlen(payload, len);
	const char *path = payload + head + 1;
	if (xfer_find(id)) /* a host that reuses an id: the old request goes */
		xfer_free(xfer_find(id), false);
	struct xfer *x = NULL;
	for (int i = 0; i < XFERS_MAX && !x; i++)
		if (!xfers[i].used)
			x = &xfers[i];
	if (!x)
		{ answer(id, EBUSY, 0, "busy"); return; }
	*x = (struct xfer){.used = true, .id = id, .fd = -1, .dir = -1};
	if (head >= len || sscanf(payload, "%7s %o %llu", verb, &mode, &size) != 3 ||
	    path[0] != '/')
		{ fail(x, EINVAL, "path"); return; }
	if (!strcmp(verb, "get"))
		file_get(x, path);
	else if (!strcmp(verb, "put"))
		file_put(x, path, mode, size);
	else if (!strcmp(verb, "stat"))
		file_stat(x, path);
	else if (!strcmp(verb, "list"))
		file_list(x, path);
	else if (!strcmp(verb, "mkdir"))
		file_mkdir(x, path, mode);
	else
		fail(x, EINVAL, "path");
}

/* Bytes of a put, written where they go; the last renames it into place. */
void files_data(uint64_t id, const char *p, uint32_t len)
{
	struct xfer *x = xfer_find(id);
	if (!x || !x->put || x->fd < 0)
		return; /* failed already (the host has its answer), or ended */
	if (len > x->size - x->done)
		{ fail(x, EFBIG, "big"); return; }
	for (uint32_t at = 0; at < len;) {
		ssize_t n = pwrite(x->fd, p + at, len - at, (off_t)(x->done + at));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			{ fail(x, n < 0 ? errno : EIO, "write"); return; }
		at += (uint32_t)n;
	}
	x->done += len;
	if (x->done == x->size)
		put_finish(x);
}

bool files_credit(uint64_t id, long n)
{
	struct xfer *x = xfer_find(id);
	if (!x)
		return (id & AGENT_FILE_ID) != 0;
	if (n > 0 && x->credit + (uint64_t)n <= AGENT_WINDOW)
		x->credit += (uint32_t)n;
	return true;
}

void files_end(uint64_t id)
{
	struct xfer *x = xfer_find(id);
	if (x)
		xfer_free(x, false);
}

void files_drop_all(void)
{
	for (int i = 0; i < XFERS_MAX; i++)
		if (xfers[i].used)
			xfer_free(&xfers[i], false);
}

/* Up to PUMP_BURST frames of one get (its file or its records); the end,
 * an empty AG_FDATA, once all went (or the file ended early). */
static void pump_one(struct xfer *x)
{
	static char buf[sizeof(struct agent_hdr) + AGENT_OUT_MAX];
	char *data = buf + sizeof(struct agent_hdr);
	for (int k = 0; k < PUMP_BURST && x->credit > 0; k++) {
		uint64_t left = x->size - x->done;
		size_t want = left < AGENT_OUT_MAX ? (size_t)left : AGENT_OUT_MAX;
		if (want > x->credit)
			want = x->credit;
		ssize_t n = 0;
		if (want && x->fd >= 0) {
			while ((n = pread(x->fd, data, want, (off_t)x->done)) < 0 && errno == EINTR)
				;
			if (n < 0)
				{ fail(x, errno, "read"); return; }
		} else if (want) {
			memcpy(data, x->mem + x->done, want);
			n = (ssize_t)want;
		}
		if (n == 0) { /* all of it, or the file shrank meanwhile */
			send_built(buf, AG_FDATA, x->id, 0);
			xfer_free(x, true);
			return;
		}
		send_built(buf, AG_FDATA, x->id, (uint32_t)n);
		x->done += (uint64_t)n;
		x->credit -= (uint32_t)n;
	}
}

bool files_pump(void)
{
	bool more = false;
	for (int i = 0; i < XFERS_MAX; i++) {
		struct xfer *x = &xfers[i];
		if (!x->used || x->put || x->credit == 0)
			continue;
		pump_one(x);
		more |= x->used && x->credit > 0;
	}
	return more;
}
