/* Copies a directory tree in-process (no cp subprocess on the fork path),
 * keeping what an overlay layer needs: modes, owners, times, symlinks, device
 * nodes (whiteouts are 0:0 char devices) and extended attributes (opaque dirs
 * carry trusted.overlay.opaque). Regular files go through copy_file_range, so
 * filesystems that can share extents do. Hard links become separate copies. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "vmm.h"

static int copy_xattrs(int sfd, int dfd, const char *spath, const char *dpath)
{
	char names[4096], val[4096];
	ssize_t n = sfd >= 0 ? flistxattr(sfd, names, sizeof(names))
			     : llistxattr(spath, names, sizeof(names));
	for (ssize_t off = 0; n > 0 && off < n; off += (ssize_t)strlen(names + off) + 1) {
		const char *k = names + off;
		ssize_t vl = sfd >= 0 ? fgetxattr(sfd, k, val, sizeof(val))
				      : lgetxattr(spath, k, val, sizeof(val));
		if (vl < 0)
			continue;
		int r = dfd >= 0 ? fsetxattr(dfd, k, val, (size_t)vl, 0)
				 : lsetxattr(dpath, k, val, (size_t)vl, 0);
		if (r < 0 && errno != ENOTSUP && errno != EPERM)
			return -errno;
	}
	return 0;
}

static int copy_file(const char *s, const char *d, const struct stat *st)
{
	int in = open(s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -errno;
	int out = open(d, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
	if (out < 0) {
		int r = -errno;
		close(in);
		return r;
	}
	int r = 0;
	off_t left = st->st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP)) {
			char buf[65536];
			n = read(in, buf, sizeof(buf));
			if (n > 0 && write(out, buf, (size_t)n) != n)
				n = -1;
		}
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		left -= n;
	}
	if (r == 0)
		r = copy_xattrs(in, out, NULL, NULL);
	if (r == 0 && (fchown(out, st->st_uid, st->st_gid) < 0 ||
		       fchmod(out, st->st_mode & 07777) < 0))
		r = -errno;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (r == 0)
		futimens(out, ts);
	close(in);
	if (close(out) < 0 && r == 0)
		r = -errno;
	return r;
}

static int copy_node(const char *s, const char *d, struct err *e);

/* fn(s/NAME, d/NAME) for every entry of directory s, until one fails. */
static int each_child(const char *s, const char *d,
		      int (*fn)(const char *s, const char *d, struct err *e), struct err *e)
{
	DIR *dir = opendir(s);
	if (!dir)
		return err_set(e, -errno, "opendir %s: %s", s, strerror(errno));
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char cs[PATH_MAX], cd[PATH_MAX];
		if (snprintf(cs, sizeof(cs), "%s/%s", s, de->d_name) >= (int)sizeof(cs) ||
		    snprintf(cd, sizeof(cd), "%s/%s", d, de->d_name) >= (int)sizeof(cd))
			r = err_set(e, -ENAMETOOLONG, "path too long under %s", s);
		else
			r = fn(cs, cd, e);
	}
	closedir(dir);
	return r;
}

static int copy_dir(const char *s, const char *d, const struct stat *st, struct err *e)
{
	if (mkdir(d, st->st_mode & 07777) < 0 && errno != EEXIST)
		return err_set(e, -errno, "mkdir %s: %s", d, strerror(errno));
	int r = each_child(s, d, copy_node, e);
	if (r < 0)
		return r;
	if ((r = copy_xattrs(-1, -1, s, d)) < 0)
		return err_set(e, r, "xattrs of %s: %s", s, strerror(-r));
	if (lchown(d, st->st_uid, st->st_gid) < 0 || chmod(d, st->st_mode & 07777) < 0)
		return err_set(e, -errno, "owner of %s: %s", d, strerror(errno));
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	utimensat(AT_FDCWD, d, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int copy_node(const char *s, const char *d, struct err *e)
{
	struct stat st;
	if (lstat(s, &st) < 0)
		return errno == ENOENT ? 0 : err_set(e, -errno, "stat %s: %s", s, strerror(errno));
	int r = 0;
	if (S_ISDIR(st.st_mode))
		return copy_dir(s, d, &st, e);
	if (S_ISREG(st.st_mode)) {
		r = copy_file(s, d, &st);
	} else if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(s, target, sizeof(target) - 1);
		if (n < 0)
			r = -errno;
		else {
			target[n] = '\0';
			if (symlink(target, d) < 0 || lchown(d, st.st_uid, st.st_gid) < 0)
				r = -errno;
		}
	} else {
		if (mknod(d, st.st_mode, st.st_rdev) < 0 || lchown(d, st.st_uid, st.st_gid) < 0)
			r = -errno;
	}
	if (r == 0 && !S_ISREG(st.st_mode))
		r = copy_xattrs(-1, -1, s, d);
	if (r < 0)
		return err_set(e, r, "copy %s: %s", s, strerror(-r));
	return 0;
}

int vmm_copy_tree(const char *src, const char *dst, struct err *e)
{
	return copy_node(src, dst, e);
}

/* A sparse copy: only the extents with data (SEEK_DATA/SEEK_HOLE), so a guest
 * RAM file costs what the guest touched, not its size. */
int vmm_copy_sparse(const char *src, const char *dst, struct err *e)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0) {
		r = err_set(e, -errno, "cannot open %s: %s", src, strerror(errno));
		goto out;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0 || ftruncate(out, st.st_size) < 0) {
		r = err_set(e, -errno, "cannot create %s: %s", dst, strerror(errno));
		goto out;
	}
	off_t pos = 0;
	while (pos < st.st_size) {
		off_t data = lseek(in, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		off_t hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (data < 0 || hole < 0) {
			r = err_set(e, -errno, "cannot map %s: %s", src, strerror(errno));
			goto out;
		}
		for (off_t o = data; o < hole;) {
			loff_t io = o, oo = o;
			ssize_t n = copy_file_range(in, &io, out, &oo, (size_t)(hole - o), 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
				      errno == EINVAL)) {
				char buf[1 << 16];
				size_t want = hole - o < (off_t)sizeof(buf) ? (size_t)(hole - o) : sizeof(buf);
				n = pread(in, buf, want, o);
				if (n > 0 && pwrite(out, buf, (size_t)n, o) != n)
					n = -1;
			}
			if (n <= 0) {
				r = err_set(e, n < 0 ? -errno : -EIO, "cannot copy %s: %s", src,
					    n < 0 ? strerror(errno) : "short copy");
				goto out;
			}
			o += n;
		}
		pos = hole;
	}
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && r == 0)
		r = err_set(e, -errno, "cannot write %s: %s", dst, strerror(errno));
	if (r < 0 && out >= 0)
		unlink(dst);
	return r;
}

/* --- flattening: layers applied one over another, as overlayfs sees them --- */

#define OPAQUE_XATTR "trusted.overlay.opaque"

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

static bool is_opaque(const char *p)
{
	char v[4];
	ssize_t n = lgetxattr(p, OPAQUE_XATTR, v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static int merge_node(const char *s, const char *d, struct err *e);

static int merge_children(const char *s, const char *d, struct err *e)
{
	return each_child(s, d, merge_node, e);
}

/* Puts s (an entry of an upper layer) over d (the merge of the layers below):
 * a plain directory over a directory merges; anything else replaces. A
 * directory over what hid the image's entry (a whiteout or a non-directory)
 * becomes opaque, so it still hides it. Whiteouts are kept: the image is
 * still below the flattened layer. */
static int merge_node(const char *s, const char *d, struct err *e)
{
	struct stat ss, ds;
	if (lstat(s, &ss) < 0)
		return errno == ENOENT ? 0 : err_set(e, -errno, "stat %s: %s", s, strerror(errno));
	bool have = lstat(d, &ds) == 0;
	if (S_ISDIR(ss.st_mode) && have && S_ISDIR(ds.st_mode) && !is_opaque(s)) {
		int r = merge_children(s, d, e);
		if (r < 0)
			return r;
		if (lchown(d, ss.st_uid, ss.st_gid) < 0 || chmod(d, ss.st_mode & 07777) < 0)
			return err_set(e, -errno, "owner of %s: %s", d, strerror(errno));
		struct timespec ts[2] = {ss.st_atim, ss.st_mtim};
		utimensat(AT_FDCWD, d, ts, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	bool hid = have && (is_whiteout(&ds) || !S_ISDIR(ds.st_mode));
	if (have) {
		int r = rm_rf(d);
		if (r < 0)
			return err_set(e, r, "cannot remove %s: %s", d, strerror(-r));
	}
	int r = copy_node(s, d, e);
	if (r == 0 && S_ISDIR(ss.st_mode) && hid && lsetxattr(d, OPAQUE_XATTR, "y", 1, 0) < 0)
		return err_set(e, -errno, "cannot mark %s opaque: %s", d, strerror(errno));
	return r;
}

int vmm_merge_layer(const char *src, const char *dst, struct err *e)
{
	return merge_children(src, dst, e);
}
