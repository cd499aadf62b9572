/* A layer's tar stream made into a directory overlayfs can stack (unpack.h).
 * Each entry is created in its parent directory, opened with openat2 from the
 * layer's root (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a path with a link
 * in it fails, and nothing is ever created through one. Parents a layer does
 * not list are made (0755). The parent of the last entry stays open: tar
 * streams list a directory's entries together. */
#define _GNU_SOURCE
#include "unpack.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define OPAQUE_XATTR "trusted.overlay.opaque"
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define BLOCK_BYTES 4096u
#define COPY_CHUNK (64u << 10)
#define RECHECK_BYTES (64ull << 20) /* written between two looks at the free space */

struct unpacker {
	int root;
	const struct unpack_limits *lim;
	struct unpack_stats *st;
	struct err *e;
	char dir[TAR_PATH_MAX]; /* the parent kept open, relative to root */
	int dir_fd;             /* -1: none */
	uint64_t since_check;
	char *buf;
};

static int open_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		/* No O_NOFOLLOW: with O_DIRECTORY it turns a link into ENOTDIR, where
		 * RESOLVE_NO_SYMLINKS says ELOOP (any link, the last one too). */
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_XDEV,
	};
	long fd = syscall(SYS_openat2, dirfd, path[0] ? path : ".", &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

static int mb_up(uint64_t bytes) { return (int)((bytes + (1u << 20) - 1) >> 20); }

static int no_room(struct unpacker *u, const char *what, uint64_t need)
{
	struct statvfs sv;
	uint64_t avail = fstatvfs(u->root, &sv) == 0 ? (uint64_t)sv.f_bavail * sv.f_frsize : 0;
	return err_set(u->e, -ENOSPC, "%s needs more than %d MB on %s, %" PRIu64 " MB free "
		       "(%" PRIu64 " MB kept free)", what, mb_up(need), u->lim->where, avail >> 20,
		       u->lim->reserve_bytes >> 20);
}

/* Counts an entry and its bytes against the limits, before it is made. */
static int charge(struct unpacker *u, const char *path, uint64_t bytes)
{
	if (u->lim->cancel && atomic_load(u->lim->cancel))
		return err_set(u->e, -ECANCELED, "the daemon is stopping");
	if (++u->st->entries > u->lim->max_entries)
		return err_set(u->e, -ENOSPC, "the layer has more entries than the %" PRIu64
			       " inodes free on %s allow (at '%.200s')", u->lim->max_entries,
			       u->lim->where, path);
	uint64_t blocks = (bytes + BLOCK_BYTES - 1) / BLOCK_BYTES * BLOCK_BYTES;
	if (blocks > u->lim->max_bytes - u->st->bytes || u->st->bytes > u->lim->max_bytes)
		return no_room(u, "unpacking the layer", u->st->bytes + blocks);
	u->st->bytes += blocks;
	return 0;
}

/* The directory `dir` (relative to root), opened beneath it; the missing
 * components are made. Kept open for the next entry. */
static int parent_fd(struct unpacker *u, const char *dir, const char *path)
{
	if (u->dir_fd >= 0 && strcmp(u->dir, dir) == 0)
		return u->dir_fd;
	if (u->dir_fd >= 0)
		close(u->dir_fd);
	u->dir_fd = -1;
	int fd = open_beneath(u->root, dir, O_RDONLY | O_DIRECTORY);
	if (fd == -ENOENT) { /* made one component at a time, each opened beneath the last */
		char part[TAR_PATH_MAX];
		snprintf(part, sizeof(part), "%s", dir);
		fd = open_beneath(u->root, "", O_RDONLY | O_DIRECTORY);
		for (char *save, *c = strtok_r(part, "/", &save); c && fd >= 0;
		     c = strtok_r(NULL, "/", &save)) {
			int next = open_beneath(fd, c, O_RDONLY | O_DIRECTORY);
			if (next == -ENOENT) {
				int r = charge(u, path, BLOCK_BYTES);
				if (r < 0) {
					close(fd);
					return r;
				}
				if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST)
					next = -errno;
				else
					next = open_beneath(fd, c, O_RDONLY | O_DIRECTORY);
			}
			close(fd);
			fd = next;
		}
	}
	if (fd == -ELOOP || fd == -EXDEV)
		return err_set(u->e, -EINVAL, "entry '%.200s' goes through a symbolic link "
			       "(in '%.200s'), which is not followed", path, dir);
	if (fd == -ENOTDIR)
		return err_set(u->e, -EINVAL, "entry '%.200s': a component of '%.200s' is not a "
			       "directory", path, dir);
	if (fd < 0)
		return err_set(u->e, fd, "entry '%.200s': cannot open its directory: %s", path,
			       strerror(-fd));
	snprintf(u->dir, sizeof(u->dir), "%s", dir);
	u->dir_fd = fd;
	return fd;
}

/* Splits a cleaned, non-empty path into its directory and its last name. */
static const char *split(const char *path, char dir[TAR_PATH_MAX])
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		dir[0] = '\0';
		return path;
	}
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return slash + 1;
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static int set_opaque(struct unpacker *u, int dfd, const char *path)
{
	if (fsetxattr(dfd, OPAQUE_XATTR, "y", 1, 0) < 0)
		return err_set(u->e, -errno, "entry '%.200s': cannot mark its directory opaque "
			       "(%s): %s", path, OPAQUE_XATTR, strerror(errno));
	return 0;
}

/* Makes room for name in pfd: a non-directory there goes (a later entry
 * replaces an earlier one). Returns 1 when a directory is there and the new
 * entry is one too (it stays), 0 when the name is free; *hid says whether a
 * whiteout was there (a directory made over it must stay opaque). */
static int clear_slot(struct unpacker *u, int pfd, const char *name, const char *path,
		      bool new_dir, bool *hid)
{
	struct stat st;
	*hid = false;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : err_set(u->e, -errno, "entry '%.200s': %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		if (new_dir)
			return 1;
		return err_set(u->e, -EINVAL, "entry '%.200s' would replace a directory of the same "
			       "layer", path);
	}
	*hid = is_whiteout(&st);
	if (unlinkat(pfd, name, 0) < 0)
		return err_set(u->e, -errno, "entry '%.200s': cannot replace the earlier one: %s",
			       path, strerror(errno));
	return 0;
}

static int owner_mode_times(struct unpacker *u, int fd, const struct tar_entry *ent)
{
	struct timespec ts[2] = {{.tv_sec = (time_t)ent->mtime}, {.tv_sec = (time_t)ent->mtime}};
	/* chown first: it clears setuid and setgid bits that chmod then sets. */
	if (fchown(fd, ent->uid, ent->gid) < 0 || fchmod(fd, ent->mode) < 0 ||
	    futimens(fd, ts) < 0)
		return err_set(u->e, -errno, "entry '%.200s': cannot set its owner, mode or time: %s",
			       ent->path, strerror(errno));
	return 0;
}

static bool xattr_allowed(const char *name)
{
	return !strncmp(name, "user.", 5) || !strcmp(name, "security.capability");
}

static void skip_xattr(struct unpacker *u, const char *name, const char *path)
{
	if (u->st->xattrs_skipped++ == 0)
		snprintf(u->st->skipped, sizeof(u->st->skipped), "%.64s on '%.200s'", name, path);
}

/* The entry's xattrs a layer may set, on fd (the file or directory made,
 * after its owner: a chown drops security.capability); the others skipped. */
static int set_xattrs(struct unpacker *u, int fd, const struct tar_entry *ent)
{
	for (int i = 0; i < ent->nxattrs; i++) {
		const struct tar_xattr *x = &ent->xattrs[i];
		if (!xattr_allowed(x->name)) {
			skip_xattr(u, x->name, ent->path);
			continue;
		}
		if (fsetxattr(fd, x->name, x->value, x->len, 0) < 0)
			return err_set(u->e, -errno, "entry '%.200s': cannot set its xattr %.64s: %s",
				       ent->path, x->name, strerror(errno));
		u->st->xattrs++;
	}
	return 0;
}

static uint64_t xattr_bytes(const struct tar_entry *ent)
{
	uint64_t n = 0;
	for (int i = 0; i < ent->nxattrs; i++)
		n += strlen(ent->xattrs[i].name) + ent->xattrs[i].len;
	return n;
}

/* An entry made and open as fd, r what its making said: its owner, mode,
 * time and xattrs set through fd (when r is 0), fd closed. */
static int finish_entry(struct unpacker *u, int fd, const struct tar_entry *ent, int r)
{
	if (r == 0)
		r = owner_mode_times(u, fd, ent);
	if (r == 0)
		r = set_xattrs(u, fd, ent);
	close(fd);
	return r;
}

static int make_dir(struct unpacker *u, int pfd, const char *name, const struct tar_entry *ent)
{
	bool hid;
	int r = clear_slot(u, pfd, name, ent->path, true, &hid);
	if (r < 0)
		return r;
	if (r == 0 && mkdirat(pfd, name, 0700) < 0)
		return err_set(u->e, -errno, "entry '%.200s': mkdir: %s", ent->path, strerror(errno));
	int fd = open_beneath(pfd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return err_set(u->e, fd, "entry '%.200s': cannot open it: %s", ent->path, strerror(-fd));
	return finish_entry(u, fd, ent, hid ? set_opaque(u, fd, ent->path) : 0);
}

static bool all_zero(const char *p, size_t n)
{
	return n && p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* The file's data: zero chunks become holes. */
static int copy_data(struct unpacker *u, struct tar *t, int fd, const struct tar_entry *ent)
{
	uint64_t done = 0;
	while (done < ent->size) {
		ssize_t n = tar_read(t, u->buf, COPY_CHUNK, u->e);
		if (n < 0)
			return (int)n;
		if (all_zero(u->buf, (size_t)n)) {
			if (lseek(fd, n, SEEK_CUR) < 0)
				return err_set(u->e, -errno, "entry '%.200s': seek: %s", ent->path,
					       strerror(errno));
		} else {
			for (ssize_t w = 0; w < n;) {
				ssize_t k = write(fd, u->buf + w, (size_t)(n - w));
				if (k < 0 && errno == ENOSPC)
					return no_room(u, "unpacking the layer", u->st->bytes);
				if (k < 0)
					return err_set(u->e, -errno, "entry '%.200s': write: %s",
						       ent->path, strerror(errno));
				w += k;
			}
		}
		done += (uint64_t)n;
		if ((u->since_check += (uint64_t)n) >= RECHECK_BYTES) {
			struct statvfs sv;
			u->since_check = 0;
			if (fstatvfs(fd, &sv) == 0 &&
			    (uint64_t)sv.f_bavail * sv.f_frsize < u->lim->reserve_bytes)
				return no_room(u, "unpacking the layer", u->st->bytes);
			if (u->lim->cancel && atomic_load(u->lim->cancel))
				return err_set(u->e, -ECANCELED, "the daemon is stopping");
		}
	}
	if (ftruncate(fd, (off_t)ent->size) < 0)
		return err_set(u->e, -errno, "entry '%.200s': truncate: %s", ent->path, strerror(errno));
	return 0;
}

static int make_file(struct unpacker *u, struct tar *t, int pfd, const char *name,
		     const struct tar_entry *ent)
{
	bool hid;
	int r = clear_slot(u, pfd, name, ent->path, false, &hid);
	if (r < 0)
		return r;
	int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(u->e, -errno, "entry '%.200s': create: %s", ent->path, strerror(errno));
	return finish_entry(u, fd, ent, copy_data(u, t, fd, ent));
}

/* A symbolic link or a FIFO: made, then given its owner, mode and time
 * without following anything. */
static int make_node(struct unpacker *u, int pfd, const char *name, const struct tar_entry *ent)
{
	bool hid;
	int r = clear_slot(u, pfd, name, ent->path, false, &hid);
	if (r < 0)
		return r;
	bool link = ent->type == TAR_SYMLINK;
	if ((link ? symlinkat(ent->link, pfd, name) : mknodat(pfd, name, S_IFIFO | 0600, 0)) < 0)
		return err_set(u->e, -errno, "entry '%.200s': %s: %s", ent->path,
			       link ? "symlink" : "mkfifo", strerror(errno));
	struct timespec ts[2] = {{.tv_sec = (time_t)ent->mtime}, {.tv_sec = (time_t)ent->mtime}};
	if (fchownat(pfd, name, ent->uid, ent->gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (!link && fchmodat(pfd, name, ent->mode, AT_SYMLINK_NOFOLLOW) < 0) ||
	    utimensat(pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set(u->e, -errno, "entry '%.200s': cannot set its owner, mode or time: %s",
			       ent->path, strerror(errno));
	/* No fd of its own to set them through, and the kernel keeps user.*
	 * off links and FIFOs anyway. */
	for (int i = 0; i < ent->nxattrs; i++)
		skip_xattr(u, ent->xattrs[i].name, ent->path);
	return 0;
}

/* A hard link: to an earlier entry of this layer, reached beneath its root. */
static int make_hardlink(struct unpacker *u, int pfd, const char *name, const struct tar_entry *ent)
{
	char tdir[TAR_PATH_MAX];
	const char *tname = split(ent->link, tdir);
	int tfd = open_beneath(u->root, tdir, O_RDONLY | O_DIRECTORY);
	struct stat ts, ds;
	int r = 0;
	if (tfd < 0 || fstatat(tfd, tname, &ts, AT_SYMLINK_NOFOLLOW) < 0)
		r = err_set(u->e, -EINVAL, "hard link '%.200s': its target '%.200s' is not an earlier "
			    "entry of the layer", ent->path, ent->link);
	else if (S_ISDIR(ts.st_mode) || S_ISCHR(ts.st_mode) || S_ISBLK(ts.st_mode))
		r = err_set(u->e, -EINVAL, "hard link '%.200s': its target '%.200s' is a directory "
			    "or a device", ent->path, ent->link);
	else if (fstatat(pfd, name, &ds, AT_SYMLINK_NOFOLLOW) == 0 && ds.st_dev == ts.st_dev &&
		 ds.st_ino == ts.st_ino)
		r = 0; /* already that file */
	else {
		bool hid;
		if ((r = clear_slot(u, pfd, name, ent->path, false, &hid)) == 0 &&
		    linkat(tfd, tname, pfd, name, 0) < 0)
			r = err_set(u->e, -errno, "hard link '%.200s': %s", ent->path, strerror(errno));
	}
	if (tfd >= 0)
		close(tfd);
	return r;
}

/* `.wh.NAME`: NAME of the layers below is hidden; `.wh..wh..opq`: all of
 * its directory's entries of the layers below are. */
static int make_whiteout(struct unpacker *u, int pfd, const char *name, const char *path)
{
	if (strcmp(name, WH_OPAQUE) == 0)
		return set_opaque(u, pfd, path);
	if (strncmp(name, WH_PREFIX WH_PREFIX, 8) == 0)
		return 0; /* aufs's own bookkeeping (.wh..wh.plnk): nothing for overlayfs */
	const char *hidden = name + strlen(WH_PREFIX);
	if (!hidden[0] || strcmp(hidden, ".") == 0 || strcmp(hidden, "..") == 0)
		return err_set(u->e, -EINVAL, "whiteout '%.200s' names no entry", path);
	struct stat st;
	if (fstatat(pfd, hidden, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* This layer has the name too: it shows, over nothing of the layers below. */
		if (!S_ISDIR(st.st_mode))
			return 0;
		int fd = open_beneath(pfd, hidden, O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			return err_set(u->e, fd, "whiteout '%.200s': %s", path, strerror(-fd));
		int r = set_opaque(u, fd, path);
		close(fd);
		return r;
	}
	if (mknodat(pfd, hidden, S_IFCHR | 0, makedev(0, 0)) < 0)
		return err_set(u->e, -errno, "whiteout '%.200s': mknod: %s", path, strerror(errno));
	return 0;
}

static int unpack_entry(struct unpacker *u, struct tar *t, const struct tar_entry *ent)
{
	int r = charge(u, ent->path, (ent->type == TAR_FILE  ? ent->size
				      : ent->type == TAR_DIR ? BLOCK_BYTES
							     : 0) + xattr_bytes(ent));
	if (r < 0)
		return r;
	if (ent->type == TAR_CHAR || ent->type == TAR_BLOCKDEV)
		return err_set(u->e, -EPERM, "entry '%.200s' is a device node (%u:%u); an image "
			       "layer may not hold one", ent->path, ent->devmajor, ent->devminor);
	if (!ent->path[0]) { /* the layer's root itself */
		if (ent->type != TAR_DIR)
			return err_set(u->e, -EINVAL, "the archive's root entry is not a directory");
		r = owner_mode_times(u, u->root, ent);
		return r < 0 ? r : set_xattrs(u, u->root, ent);
	}
	char dir[TAR_PATH_MAX];
	const char *name = split(ent->path, dir);
	int pfd = parent_fd(u, dir, ent->path);
	if (pfd < 0)
		return pfd;
	if (strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0)
		return make_whiteout(u, pfd, name, ent->path);
	switch (ent->type) {
	case TAR_DIR:
		return make_dir(u, pfd, name, ent);
	case TAR_FILE:
		return make_file(u, t, pfd, name, ent);
	case TAR_HARDLINK:
		return make_hardlink(u, pfd, name, ent);
	default:
		return make_node(u, pfd, name, ent);
	}
}

int unpack_layer(struct tar *t, int root, const struct unpack_limits *lim,
		 struct unpack_stats *st, struct err *e)
{
	struct unpacker u = {.root = root, .lim = lim, .st = st, .e = e, .dir_fd = -1};
	struct tar_entry *ent = malloc(sizeof(*ent));
	u.buf = malloc(COPY_CHUNK);
	memset(st, 0, sizeof(*st));
	int r = ent && u.buf ? 0 : err_set(e, -ENOMEM, "out of memory");
	while (r == 0 && (r = tar_next(t, ent, e)) > 0)
		r = unpack_entry(&u, t, ent);
	if (u.dir_fd >= 0)
		close(u.dir_fd);
	free(u.buf);
	free(ent);
	return r;
}
