/* The one walker over sandbox trees on the host: fork and snapshots copy a
 * sandbox's upper layer with it, flattening merges layers with it, and it
 * removes what it made. A sandbox's files are hostile input, so the walk is
 * iterative (an explicit, bounded stack), fd-relative (openat: no PATH_MAX),
 * never follows a link, never leaves the source's filesystem, keeps holes,
 * hard links, xattrs (overlay whiteouts and opaque dirs), owners, modes,
 * times, device nodes and FIFOs, and measures the source against the room on
 * the destination before it writes anything. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "vmm.h"

/* Directories kept open (two fds each) at the bottom of the stack; those
 * above are closed, their unread names kept in memory, and reopened through
 * ".." (checked to be the same directory) when the walk climbs back. */
#define FD_WINDOW 16
/* Unread names held for closed directories, over the whole stack. */
#define NAMES_MAX_BYTES ((size_t)64 << 20)
#define XATTR_BUF (64 * 1024) /* XATTR_LIST_MAX and XATTR_SIZE_MAX */
#define OPAQUE_XATTR "trusted.overlay.opaque"
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

enum {
	F_MERGE = 1,  /* its entries merge into what the destination has */
	F_ATTRS = 2,  /* on leaving: owner, mode and times of the source dir */
	F_XATTRS = 4, /* on leaving: its xattrs too */
	F_OPAQUE = 8, /* on leaving: marked opaque (it now hides what it replaced) */
	F_EMPTY = 16, /* another filesystem: made, never entered */
};

struct frame {
	DIR *dir;    /* its listing, while its fds are open */
	char *names; /* once closed: the names not visited yet, NUL-separated */
	size_t nlen, noff;
	int sfd, dfd;     /* -1 while closed; dfd also when there is no destination */
	ino_t sino, dino; /* what ".." must lead back to */
	char *name;       /* its name in its parent (removal only) */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec atim, mtim;
	unsigned flags;
};

/* Inode numbers of hard-linked files already counted (one filesystem). */
struct inoset {
	ino_t *v;
	size_t cap, n;
	bool zero;
};

enum walk_kind { W_MEASURE, W_COPY, W_REMOVE };

struct walk {
	enum walk_kind kind;
	const char *what; /* the subject of its sentences ("checkpoint of web") */
	struct frame *f;
	size_t n, cap;
	dev_t sdev, ddev;
	uint64_t entries, bytes, inodes;
	uint64_t newest_ctime_nsec; /* measure: the newest change of any entry */
	size_t names_bytes;
	struct inoset seen;
	int links_fd; /* hard links staged by inode number: the inode map */
	char *xnames, *xval;
	struct err *e;
};

/* A name from the sandbox, made fit for one line of a message. */
static const char *shown(const char *name, char out[80])
{
	size_t i = 0;
	for (; name[i] && i < 72; i++)
		out[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
	snprintf(out + i, 80 - i, "%s", name[i] ? "..." : "");
	return out;
}

static int walk_fail(struct walk *w, int code, const char *op, const char *name)
{
	char s[80];
	return err_set(w->e, code, "%s: cannot %s '%s' (%zu levels down): %s", w->what, op,
		       shown(name, s), w->n, strerror(-code));
}

/* 1 if ino is new, 0 if it was there. */
static int inoset_add(struct inoset *s, ino_t ino)
{
	if (ino == 0) {
		bool had = s->zero;
		s->zero = true;
		return !had;
	}
	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		ino_t *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			for (size_t j = s->v[i] % cap; s->v[i]; j = (j + 1) % cap)
				if (!v[j]) {
					v[j] = s->v[i];
					break;
				}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	size_t j = ino % s->cap;
	for (; s->v[j]; j = (j + 1) % s->cap)
		if (s->v[j] == ino)
			return 0;
	s->v[j] = ino;
	s->n++;
	return 1;
}

/* --- the stack --- */

static void frame_close(struct frame *f)
{
	if (f->dir)
		closedir(f->dir);
	else if (f->sfd >= 0)
		close(f->sfd);
	if (f->dfd >= 0)
		close(f->dfd);
	f->dir = NULL;
	f->sfd = f->dfd = -1;
}

static void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++) {
		frame_close(&w->f[i]);
		free(w->f[i].names);
		free(w->f[i].name);
	}
	free(w->f);
	free(w->seen.v);
	free(w->xnames);
	free(w->xval);
	w->f = NULL;
	w->n = w->cap = 0;
}

/* Closes a frame's fds, keeping the names it has not given out yet. */
static int frame_evict(struct walk *w, struct frame *f)
{
	struct dirent *de;
	while (f->dir && (errno = 0, de = readdir(f->dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		size_t len = strlen(de->d_name) + 1;
		if (w->names_bytes + len > NAMES_MAX_BYTES)
			return err_set(w->e, -EFBIG, "%s: the source's directories list more than "
				       "%zu MB of names", w->what, NAMES_MAX_BYTES >> 20);
		char *p = realloc(f->names, f->nlen + len);
		if (!p)
			return err_set(w->e, -ENOMEM, "%s: out of memory", w->what);
		memcpy(p + f->nlen, de->d_name, len);
		f->names = p;
		f->nlen += len;
		w->names_bytes += len;
	}
	if (f->dir && errno)
		return walk_fail(w, -errno, "list", ".");
	frame_close(f);
	return 0;
}

/* Takes sfd and dfd (-1: none): the directory st the walk goes into. */
static int frame_push(struct walk *w, int sfd, int dfd, const struct stat *st, unsigned flags,
		      char *name)
{
	int r = 0;
	if (w->kind != W_REMOVE && w->n >= VMM_WALK_MAX_DEPTH)
		r = err_set(w->e, -EFBIG, "%s: the source is deeper than %d levels, more than "
			    "is copied", w->what, VMM_WALK_MAX_DEPTH);
	if (r == 0 && w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct frame *f = realloc(w->f, cap * sizeof(*f));
		if (f) {
			w->f = f;
			w->cap = cap;
		} else {
			r = err_set(w->e, -ENOMEM, "%s: out of memory", w->what);
		}
	}
	DIR *dir = NULL;
	if (r == 0 && !(flags & F_EMPTY) && !(dir = fdopendir(sfd)))
		r = walk_fail(w, -errno, "list", name ? name : ".");
	if (r < 0) {
		if (sfd >= 0)
			close(sfd);
		if (dfd >= 0)
			close(dfd);
		free(name);
		return r;
	}
	struct stat ds = {0};
	if (dfd >= 0)
		fstat(dfd, &ds);
	w->f[w->n++] = (struct frame){
		.dir = dir, .sfd = sfd, .dfd = dfd, .sino = st->st_ino, .dino = ds.st_ino,
		.name = name, .mode = st->st_mode, .uid = st->st_uid, .gid = st->st_gid,
		.atim = st->st_atim, .mtim = st->st_mtim, .flags = flags,
	};
	if (w->n > FD_WINDOW)
		return frame_evict(w, &w->f[w->n - 1 - FD_WINDOW]);
	return 0;
}

/* The next name of f, or NULL at its end. */
static int frame_next(struct walk *w, struct frame *f, const char **name)
{
	*name = NULL;
	if (f->dir) {
		struct dirent *de;
		do {
			errno = 0;
			de = readdir(f->dir);
		} while (de && (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")));
		if (!de && errno)
			return walk_fail(w, -errno, "list", ".");
		*name = de ? de->d_name : NULL;
	} else if (f->noff < f->nlen) {
		*name = f->names + f->noff;
		f->noff += strlen(*name) + 1;
	}
	return 0;
}

static int reopen_parent(struct walk *w, int child_fd, dev_t dev, ino_t ino)
{
	struct stat st;
	int fd = openat(child_fd, "..", DIR_FLAGS);
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
		return fd;
	if (fd >= 0)
		close(fd);
	return err_set(w->e, -ESTALE, "%s: a directory %zu levels down moved while it was "
		       "walked", w->what, w->n - 1);
}

/* Before c (the top) is closed: its parent p gets its fds back if it had lost them. */
static int frame_reopen(struct walk *w, struct frame *p, struct frame *c)
{
	if (p->sfd >= 0)
		return 0;
	int sfd = reopen_parent(w, c->sfd, w->sdev, p->sino);
	if (sfd < 0)
		return sfd;
	if (c->dfd >= 0 && (p->dfd = reopen_parent(w, c->dfd, w->ddev, p->dino)) < 0) {
		close(sfd);
		return p->dfd;
	}
	p->sfd = sfd;
	return 0;
}

/* An entry's directory, opened without following a link and checked to be
 * the one stat saw. */
static int open_dir(struct walk *w, int dirfd, const char *name, const struct stat *st)
{
	struct stat os;
	int fd = openat(dirfd, name, DIR_FLAGS);
	if (fd < 0)
		return walk_fail(w, -errno, "open", name);
	if (fstat(fd, &os) < 0 || os.st_ino != st->st_ino || os.st_dev != st->st_dev) {
		close(fd);
		return walk_fail(w, -ESTALE, "open (it changed)", name);
	}
	return fd;
}

/* --- copying one entry --- */

/* The xattrs of a node onto its copy: through their fds where there are (files,
 * dirs), else through /proc/self/fd/DIR/NAME with the l* calls, which never
 * follow the last component (links, device nodes, FIFOs). */
static int copy_xattrs(struct walk *w, int sfd, int dfd, int sdir, int ddir, const char *name)
{
	char sp[64 + NAME_MAX], dp[64 + NAME_MAX];
	if (sfd < 0) {
		snprintf(sp, sizeof(sp), "/proc/self/fd/%d/%s", sdir, name);
		snprintf(dp, sizeof(dp), "/proc/self/fd/%d/%s", ddir, name);
	}
	if (!w->xnames)
		w->xnames = malloc(XATTR_BUF);
	if (!w->xval)
		w->xval = malloc(XATTR_BUF);
	if (!w->xnames || !w->xval)
		return -ENOMEM;
	ssize_t n = sfd >= 0 ? flistxattr(sfd, w->xnames, XATTR_BUF)
			     : llistxattr(sp, w->xnames, XATTR_BUF);
	if (n < 0)
		return errno == ENOTSUP ? 0 : -errno;
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(w->xnames + off) + 1) {
		const char *k = w->xnames + off;
		ssize_t vl = sfd >= 0 ? fgetxattr(sfd, k, w->xval, XATTR_BUF)
				      : lgetxattr(sp, k, w->xval, XATTR_BUF);
		if (vl < 0)
			continue;
		int r = sfd >= 0 ? fsetxattr(dfd, k, w->xval, (size_t)vl, 0)
				 : lsetxattr(dp, k, w->xval, (size_t)vl, 0);
		if (r < 0 && errno != ENOTSUP && errno != EPERM)
			return -errno;
	}
	return 0;
}

/* Bytes [o, end) of in to the same offsets of out: copy_file_range shares
 * extents where the filesystem can, else read and write. */
static int copy_range(int in, int out, off_t o, off_t end)
{
	while (o < end) {
		loff_t io = o, oo = o;
		ssize_t n = copy_file_range(in, &io, out, &oo, (size_t)(end - o), 0);
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
			      errno == EINVAL)) {
			char buf[1 << 16];
			size_t want = end - o < (off_t)sizeof(buf) ? (size_t)(end - o) : sizeof(buf);
			n = pread(in, buf, want, o);
			if (n > 0 && pwrite(out, buf, (size_t)n, o) != n)
				n = -1;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* it shrank under us */
		o += n;
	}
	return 0;
}

/* The data extents of in (size bytes) to the same offsets of out, which is
 * sized first: holes stay holes (SEEK_DATA/SEEK_HOLE). A file with as many
 * blocks as bytes has no hole to keep and is copied whole. */
static int copy_extents(int in, int out, off_t size, blkcnt_t blocks)
{
	if (blocks * 512 >= size)
		return copy_range(in, out, 0, size);
	if (ftruncate(out, size) < 0)
		return -errno;
	for (off_t pos = 0; pos < size;) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno; /* only a hole is left */
		off_t hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if (hole > size)
			hole = size;
		int r = copy_range(in, out, data, hole);
		if (r < 0)
			return r;
		pos = hole;
	}
	return 0;
}

static int copy_file(struct walk *w, struct frame *f, const char *name, const struct stat *st)
{
	struct stat is;
	int out = -1, r = 0;
	int in = openat(f->sfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in < 0 || fstat(in, &is) < 0)
		r = -errno;
	else if (!S_ISREG(is.st_mode) || is.st_ino != st->st_ino)
		r = -ESTALE;
	else if ((out = openat(f->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			       0600)) < 0)
		r = -errno;
	if (r == 0)
		r = copy_extents(in, out, is.st_size, is.st_blocks);
	/* Owner before mode (chown drops setuid), xattrs after both (chown drops
	 * security.capability), times last. */
	if (r == 0 && (fchown(out, st->st_uid, st->st_gid) < 0 ||
		       fchmod(out, st->st_mode & 07777) < 0))
		r = -errno;
	if (r == 0)
		r = copy_xattrs(w, in, out, -1, -1, NULL);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (r == 0 && futimens(out, ts) < 0)
		r = -errno;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Symbolic links, device nodes (whiteouts are 0:0 char devices), FIFOs, sockets. */
static int copy_special(struct walk *w, struct frame *f, const char *name, const struct stat *st)
{
	if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(f->sfd, name, target, PATH_MAX);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		if (symlinkat(target, f->dfd, name) < 0)
			return -errno;
	} else if (mknodat(f->dfd, name, st->st_mode & (S_IFMT | 07777), st->st_rdev) < 0) {
		return -errno;
	}
	/* The mode again after the owner: past the umask, and chown drops setuid. */
	if (fchownat(f->dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (!S_ISLNK(st->st_mode) && fchmodat(f->dfd, name, st->st_mode & 07777, 0) < 0))
		return -errno;
	int r = copy_xattrs(w, -1, -1, f->sfd, f->dfd, name);
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (r == 0 && utimensat(f->dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	return r;
}

/* A later name of a hard-linked inode becomes a link to its first copy,
 * found in the staging dir under its inode number. 1: linked; 0: first. */
static int link_earlier(struct walk *w, struct frame *f, const char *name, const struct stat *st)
{
	char key[32];
	snprintf(key, sizeof(key), "%jx", (uintmax_t)st->st_ino);
	if (linkat(w->links_fd, key, f->dfd, name, 0) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	/* The copy has as many links as the filesystem allows, the staged name
	 * included: that name becomes this one. */
	if (errno == EMLINK && renameat(w->links_fd, key, f->dfd, name) == 0)
		return 1;
	return -errno;
}

static int copy_node(struct walk *w, struct frame *f, const char *name, const struct stat *st,
		     unsigned dir_flags)
{
	if (S_ISDIR(st->st_mode)) {
		if (mkdirat(f->dfd, name, 0700) < 0)
			return walk_fail(w, -errno, "make", name);
		int sfd = open_dir(w, f->sfd, name, st);
		if (sfd < 0)
			return sfd;
		int dfd = openat(f->dfd, name, DIR_FLAGS);
		if (dfd < 0) {
			close(sfd);
			return walk_fail(w, -errno, "open", name);
		}
		dir_flags |= F_ATTRS | F_XATTRS | (st->st_dev != w->sdev ? F_EMPTY : 0);
		return frame_push(w, sfd, dfd, st, dir_flags, NULL);
	}
	/* Inode numbers name an inode on the source's filesystem only. */
	bool linked = st->st_nlink > 1 && st->st_dev == w->sdev;
	int r = linked ? link_earlier(w, f, name, st) : 0;
	if (r == 0)
		r = S_ISREG(st->st_mode) ? copy_file(w, f, name, st) : copy_special(w, f, name, st);
	if (r == 0 && linked) {
		char key[32];
		snprintf(key, sizeof(key), "%jx", (uintmax_t)st->st_ino);
		if (linkat(f->dfd, name, w->links_fd, key, 0) < 0)
			r = -errno;
	}
	return r < 0 ? walk_fail(w, r, "copy", name) : 0;
}

static int remove_at(int dirfd, const char *name, struct err *e);

/* Puts a layer's entry over the merge of the layers below (dst), as overlayfs
 * shows them: a plain directory over a directory merges; anything else
 * replaces. A directory over what hid the image's entry (a whiteout or a
 * non-directory) becomes opaque, so it still hides it. Whiteouts are kept:
 * the image is still below the flattened layer. */
static int merge_entry(struct walk *w, struct frame *f, const char *name, const struct stat *ss)
{
	struct stat ds;
	bool have = fstatat(f->dfd, name, &ds, AT_SYMLINK_NOFOLLOW) == 0;
	if (!have && errno != ENOENT)
		return walk_fail(w, -errno, "stat the copy of", name);
	if (S_ISDIR(ss->st_mode) && have && S_ISDIR(ds.st_mode) && ss->st_dev == w->sdev) {
		char v[4];
		int sfd = open_dir(w, f->sfd, name, ss);
		if (sfd < 0)
			return sfd;
		if (fgetxattr(sfd, OPAQUE_XATTR, v, sizeof(v)) != 1 || v[0] != 'y') {
			int dfd = openat(f->dfd, name, DIR_FLAGS);
			if (dfd < 0) {
				close(sfd);
				return walk_fail(w, -errno, "open the copy of", name);
			}
			return frame_push(w, sfd, dfd, ss, F_MERGE | F_ATTRS, NULL);
		}
		close(sfd);
	}
	bool hid = have && ((S_ISCHR(ds.st_mode) && ds.st_rdev == 0) || !S_ISDIR(ds.st_mode));
	int r = have ? remove_at(f->dfd, name, w->e) : 0;
	if (r < 0)
		return r;
	return copy_node(w, f, name, ss, hid ? F_OPAQUE : 0);
}

/* Counts what a copy needs: bytes of the blocks in use (a hard-linked inode
 * once) and inodes. */
static int measure_entry(struct walk *w, struct frame *f, const char *name, const struct stat *st)
{
	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1 && st->st_dev == w->sdev) {
		int r = inoset_add(&w->seen, st->st_ino);
		if (r <= 0)
			return r < 0 ? err_set(w->e, r, "%s: out of memory", w->what) : 0;
	}
	w->bytes += (uint64_t)st->st_blocks * 512;
	w->inodes++;
	uint64_t ct = (uint64_t)st->st_ctim.tv_sec * 1000000000u + (uint64_t)st->st_ctim.tv_nsec;
	if (ct > w->newest_ctime_nsec)
		w->newest_ctime_nsec = ct;
	if (!S_ISDIR(st->st_mode) || st->st_dev != w->sdev)
		return 0;
	int fd = open_dir(w, f->sfd, name, st);
	return fd < 0 ? fd : frame_push(w, fd, -1, st, 0, NULL);
}

static int remove_entry(struct walk *w, struct frame *f, const char *name, const struct stat *st)
{
	if (S_ISDIR(st->st_mode) && st->st_dev == w->sdev) {
		char *copy = strdup(name);
		if (!copy)
			return err_set(w->e, -ENOMEM, "out of memory");
		int fd = open_dir(w, f->sfd, name, st);
		if (fd < 0) {
			free(copy);
			return fd;
		}
		return frame_push(w, fd, -1, st, 0, copy);
	}
	if (unlinkat(f->sfd, name, S_ISDIR(st->st_mode) ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
		return walk_fail(w, -errno, "remove", name);
	return 0;
}

static int walk_entry(struct walk *w, struct frame *f, const char *name)
{
	struct stat st;
	if (fstatat(f->sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : walk_fail(w, -errno, "stat", name);
	if (w->kind != W_REMOVE && ++w->entries > VMM_WALK_MAX_ENTRIES)
		return err_set(w->e, -EFBIG, "%s: the source has more than %d entries, more than "
			       "is copied", w->what, VMM_WALK_MAX_ENTRIES);
	switch (w->kind) {
	case W_MEASURE:
		return measure_entry(w, f, name, &st);
	case W_REMOVE:
		return remove_entry(w, f, name, &st);
	default:
		return f->flags & F_MERGE ? merge_entry(w, f, name, &st)
					  : copy_node(w, f, name, &st, 0);
	}
}

/* Leaving a copied directory: its attributes now that its entries are made. */
static int dir_attrs(struct walk *w, struct frame *f)
{
	if (!(f->flags & F_ATTRS))
		return 0;
	int r = 0;
	if (fchown(f->dfd, f->uid, f->gid) < 0 || fchmod(f->dfd, f->mode & 07777) < 0)
		r = -errno;
	if (r == 0 && (f->flags & F_XATTRS))
		r = copy_xattrs(w, f->sfd, f->dfd, -1, -1, NULL);
	if (r == 0 && (f->flags & F_OPAQUE) && fsetxattr(f->dfd, OPAQUE_XATTR, "y", 1, 0) < 0)
		r = -errno;
	struct timespec ts[2] = {f->atim, f->mtim};
	if (r == 0 && futimens(f->dfd, ts) < 0)
		r = -errno;
	if (r < 0)
		err_set(w->e, r, "%s: cannot set the owner, mode, xattrs or times of a directory "
			"%zu levels down: %s", w->what, w->n - 1, strerror(-r));
	return r;
}

static int walk_pop(struct walk *w)
{
	struct frame *f = &w->f[w->n - 1], *p = w->n > 1 ? f - 1 : NULL;
	int r = w->kind == W_COPY ? dir_attrs(w, f) : 0;
	if (r == 0 && p)
		r = frame_reopen(w, p, f);
	if (r < 0)
		return r;
	frame_close(f);
	if (w->kind == W_REMOVE && p && unlinkat(p->sfd, f->name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		r = walk_fail(w, -errno, "remove", f->name);
	w->names_bytes -= f->nlen;
	free(f->names);
	free(f->name);
	w->n--;
	return r;
}

static int walk_run(struct walk *w)
{
	int r = 0;
	while (r == 0 && w->n > 0) {
		const char *name;
		struct frame *f = &w->f[w->n - 1];
		if ((r = frame_next(w, f, &name)) == 0)
			r = name ? walk_entry(w, f, name) : walk_pop(w);
	}
	return r;
}

/* --- removal --- */

/* dirfd/name and everything under it, never leaving its filesystem. */
static int remove_at(int dirfd, const char *name, struct err *e)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : err_set(e, -errno, "cannot stat %s: %s", name,
						     strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		struct walk w = {.kind = W_REMOVE, .what = "removal", .sdev = st.st_dev, .e = e};
		int fd = open_dir(&w, dirfd, name, &st), r = fd;
		if (fd >= 0 && (r = frame_push(&w, fd, -1, &st, 0, NULL)) == 0)
			r = walk_run(&w);
		walk_free(&w);
		if (r < 0)
			return r;
	}
	if (unlinkat(dirfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
		return err_set(e, -errno, "cannot remove %s: %s", name, strerror(errno));
	return 0;
}

/* parent/base of a path of ours, both into buf (parent, NUL, base); base is
 * never empty, "." or "..". */
static int split_path(const char *path, char *buf, size_t cap, const char **base)
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	size_t b = len;
	while (b > 0 && path[b - 1] != '/')
		b--;
	size_t blen = len - b, plen = b;
	while (plen > 1 && path[plen - 1] == '/')
		plen--;
	if (blen == 0 || (blen == 1 && path[b] == '.') ||
	    (blen == 2 && path[b] == '.' && path[b + 1] == '.'))
		return -EINVAL;
	if (plen + blen + 3 > cap)
		return -ENAMETOOLONG;
	if (plen == 0)
		buf[plen++] = '.';
	else
		memcpy(buf, path, plen);
	buf[plen] = '\0';
	memcpy(buf + plen + 1, path + b, blen);
	buf[plen + 1 + blen] = '\0';
	*base = buf + plen + 1;
	return 0;
}

int vmm_remove_tree(const char *path)
{
	char parent[PATH_MAX + 2];
	const char *base;
	int r = split_path(path, parent, sizeof(parent), &base);
	if (r < 0)
		return r;
	int pfd = open(parent, DIR_FLAGS & ~O_NOFOLLOW);
	if (pfd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct err e = {0};
	/* A late writer (the output pump draining a dead init's console) may add
	 * a file while the walk runs: walk again, a few times. */
	for (int tries = 0; tries < 5; tries++) {
		err_clear(&e);
		r = remove_at(pfd, base, &e);
		if (r != -ENOTEMPTY)
			break;
	}
	close(pfd);
	return r;
}

/* --- copy and merge --- */

static uint64_t mb_up(uint64_t bytes) { return (bytes + (1u << 20) - 1) >> 20; }

/* Measures the source (root: its open dir) and fails with a sentence when the
 * filesystem of dst_dir has not the room for it, or when it holds more than
 * max_bytes (0: no bound). */
static int check_room(int root, const struct stat *st, bool count_root, const char *dst_dir,
		      uint64_t max_bytes, const char *what, struct err *e)
{
	struct walk m = {.kind = W_MEASURE, .what = what, .sdev = st->st_dev, .e = e};
	int fd = openat(root, ".", DIR_FLAGS), r; /* its own offset, not root's */
	if (fd < 0)
		return err_set(e, -errno, "%s: %s", what, strerror(errno));
	if (count_root) {
		m.bytes = (uint64_t)st->st_blocks * 512;
		m.inodes = 1;
	}
	if ((r = frame_push(&m, fd, -1, st, 0, NULL)) == 0)
		r = walk_run(&m);
	walk_free(&m);
	if (r < 0)
		return r;
	if (max_bytes && m.bytes > max_bytes)
		return err_set(e, -ENOSPC, "%s needs %" PRIu64 " MB, more than its disk limit of %"
			       PRIu64 " MB (disk=)", what, mb_up(m.bytes), mb_up(max_bytes));
	struct statvfs sv;
	if (statvfs(dst_dir, &sv) < 0)
		return err_set(e, -errno, "%s: cannot stat %s: %s", what, dst_dir, strerror(errno));
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (m.bytes > avail)
		return err_set(e, -ENOSPC, "%s needs %" PRIu64 " MB on %s, %" PRIu64 " MB free",
			       what, mb_up(m.bytes), dst_dir, avail >> 20);
	if (sv.f_files && m.inodes > sv.f_favail)
		return err_set(e, -ENOSPC, "%s needs %" PRIu64 " inodes on %s, %" PRIu64 " free",
			       what, m.inodes, dst_dir, (uint64_t)sv.f_favail);
	return 0;
}

int vmm_tree_stamp(const char *path, struct vmm_tree_stamp *out, struct err *e)
{
	struct stat st;
	int fd = open(path, DIR_FLAGS), r;
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = err_set(e, -errno, "cannot open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	struct walk m = {.kind = W_MEASURE, .what = path, .sdev = st.st_dev, .e = e};
	m.newest_ctime_nsec = (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec;
	if ((r = frame_push(&m, fd, -1, &st, 0, NULL)) == 0)
		r = walk_run(&m);
	walk_free(&m);
	if (r < 0)
		return r;
	out->entries = m.inodes;
	out->bytes = m.bytes;
	out->newest_ctime_nsec = m.newest_ctime_nsec;
	return 0;
}

/* merge: src's entries go over dst's (dst exists); else dst is made as a copy of src. */
static int tree_copy(const char *src, const char *dst, bool merge, const char *what,
		     uint64_t max_bytes, struct err *e)
{
	char room_dir[PATH_MAX + 2], links[PATH_MAX + 16];
	const char *base;
	struct stat st;
	struct walk w = {.kind = W_COPY, .what = what, .links_fd = -1, .e = e};
	bool made = false;
	int sfd = -1, dfd = -1, r = split_path(dst, room_dir, sizeof(room_dir), &base);
	if (r < 0)
		return err_set(e, r, "%s: bad destination %s", what, dst);
	if (merge)
		snprintf(room_dir, sizeof(room_dir), "%s", dst);
	snprintf(links, sizeof(links), "%s.links.tmp", dst);
	if ((sfd = open(src, DIR_FLAGS)) < 0 || fstat(sfd, &st) < 0) {
		r = err_set(e, -errno, "%s: cannot open %s: %s", what, src, strerror(errno));
		goto out;
	}
	if ((r = check_room(sfd, &st, !merge, room_dir, max_bytes, what, e)) < 0)
		goto out;
	vmm_remove_tree(links); /* left by a daemon that died in a copy */
	if (mkdir(links, 0700) < 0 || (w.links_fd = open(links, DIR_FLAGS)) < 0) {
		r = err_set(e, -errno, "%s: cannot make %s: %s", what, links, strerror(errno));
		goto out;
	}
	if (!merge && !(made = mkdir(dst, 0700) == 0)) {
		r = err_set(e, -errno, "%s: cannot make %s: %s", what, dst, strerror(errno));
		goto out;
	}
	struct stat ds;
	if ((dfd = open(dst, DIR_FLAGS)) < 0 || fstat(dfd, &ds) < 0) {
		r = err_set(e, -errno, "%s: cannot open %s: %s", what, dst, strerror(errno));
		goto out;
	}
	w.sdev = st.st_dev;
	w.ddev = ds.st_dev;
	r = frame_push(&w, sfd, dfd, &st, merge ? F_MERGE : F_ATTRS | F_XATTRS, NULL);
	sfd = dfd = -1;
	if (r == 0)
		r = walk_run(&w);
out:
	walk_free(&w);
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	if (w.links_fd >= 0) {
		close(w.links_fd);
		vmm_remove_tree(links);
	}
	if (r < 0 && made)
		vmm_remove_tree(dst); /* no half-made layer */
	return r;
}

int vmm_copy_tree(const char *src, const char *dst, const char *what, uint64_t max_bytes,
		  struct err *e)
{
	return tree_copy(src, dst, false, what, max_bytes, e);
}

int vmm_merge_layer(const char *src, const char *dst, struct err *e)
{
	return tree_copy(src, dst, true, "merging a layer", 0, e);
}

/* A sparse copy of one file (guest RAM images): it costs what the guest
 * touched, not its size; checked against the room first. */
int vmm_copy_sparse(const char *src, const char *dst, bool into, struct err *e)
{
	char dir[PATH_MAX + 2];
	const char *base;
	struct stat st;
	struct statvfs sv;
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
	if (in < 0 || fstat(in, &st) < 0) {
		r = err_set(e, -errno, "cannot open %s: %s", src, strerror(errno));
		goto out;
	}
	if (split_path(dst, dir, sizeof(dir), &base) == 0 && statvfs(dir, &sv) == 0 &&
	    (uint64_t)st.st_blocks * 512 > (uint64_t)sv.f_bavail * sv.f_frsize) {
		r = err_set(e, -ENOSPC, "the copy of %s needs %" PRIu64 " MB on %s, %" PRIu64
			    " MB free", src, mb_up((uint64_t)st.st_blocks * 512), dir,
			    ((uint64_t)sv.f_bavail * sv.f_frsize) >> 20);
		goto out;
	}
	out = open(dst, O_WRONLY | O_CLOEXEC | (into ? O_NOFOLLOW : O_CREAT | O_EXCL), 0600);
	if (out < 0) {
		r = err_set(e, -errno, "cannot %s %s: %s", into ? "open" : "create", dst, strerror(errno));
		goto out;
	}
	if ((r = copy_extents(in, out, st.st_size, st.st_blocks)) < 0)
		err_set(e, r, "cannot copy %s: %s", src, strerror(-r));
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && r == 0)
		r = err_set(e, -errno, "cannot write %s: %s", dst, strerror(errno));
	if (r < 0 && out >= 0 && !into)
		unlink(dst);
	return r;
}
