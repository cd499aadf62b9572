/* The tree walker (vmm/copy.c) against what a hostile sandbox can leave in
 * its upper layer: trees 10 000 levels deep and paths past PATH_MAX (copied,
 * merged and removed on a small thread stack), a 1 TB sparse file, hard
 * links, links to host files, xattrs and overlay whiteouts, FIFOs and device
 * nodes, a destination without the room, and a tree past the depth bound. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../engine/common.h"
#include "../../vmm/vmm.h"
#include "unit.h"

#define DEEP 10000
/* A recursive walk needs far more than this for DEEP levels. */
#define SMALL_STACK (512 * 1024)

static char root[PATH_MAX];
static bool mount_ns; /* tmpfs mounts of this test are its own */

static void path(char *out, const char *rel)
{
	snprintf(out, PATH_MAX, "%s/%s", root, rel);
}

/* A fresh empty dir root/rel (whatever was there removed). */
static void fresh(const char *rel)
{
	char p[PATH_MAX];
	path(p, rel);
	vmm_remove_tree(p);
	mkdir(p, 0755);
}

static void put(const char *rel, const char *text)
{
	char p[PATH_MAX];
	path(p, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
}

static int lstat_rel(const char *rel, struct stat *st)
{
	char p[PATH_MAX];
	path(p, rel);
	return lstat(p, st);
}

static bool exists(const char *rel)
{
	struct stat st;
	return lstat_rel(rel, &st) == 0;
}

/* levels nested dirs called name under dir rel; then file `leaf` with text at
 * the bottom. Done fd-relative: the path is far past PATH_MAX. */
static int make_chain(const char *rel, const char *name, int levels, const char *leaf,
		      const char *text)
{
	char p[PATH_MAX];
	path(p, rel);
	int fd = open(p, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < levels && fd >= 0; i++) {
		int next = -1;
		if (mkdirat(fd, name, 0755) == 0 || errno == EEXIST)
			next = openat(fd, name, O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = next;
	}
	if (fd < 0)
		return -1;
	int f = leaf ? openat(fd, leaf, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
	int r = !leaf || (f >= 0 && write(f, text, strlen(text)) == (ssize_t)strlen(text)) ? 0 : -1;
	if (f >= 0)
		close(f);
	close(fd);
	return r;
}

/* The text of `leaf` at the bottom of levels dirs called name under rel ("" if none). */
static void read_chain(const char *rel, const char *name, int levels, const char *leaf,
		       char *out, size_t cap)
{
	char p[PATH_MAX];
	path(p, rel);
	out[0] = '\0';
	int fd = open(p, O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < levels && fd >= 0; i++) {
		int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		close(fd);
		fd = next;
	}
	if (fd < 0)
		return;
	int f = openat(fd, leaf, O_RDONLY | O_NOFOLLOW);
	ssize_t n = f >= 0 ? read(f, out, cap - 1) : -1;
	out[n > 0 ? n : 0] = '\0';
	if (f >= 0)
		close(f);
	close(fd);
}

/* Runs fn on a thread with a small stack: a walk that recursed would die. */
struct on_stack {
	int (*fn)(void *);
	void *arg;
	int r;
};

static void *stack_thread(void *p)
{
	struct on_stack *s = p;
	s->r = s->fn(s->arg);
	return NULL;
}

static int on_small_stack(int (*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	struct on_stack s = {.fn = fn, .arg = arg, .r = -1};
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, SMALL_STACK);
	if (pthread_create(&t, &a, stack_thread, &s) != 0)
		return -1;
	pthread_join(t, NULL);
	pthread_attr_destroy(&a);
	return s.r;
}

struct job {
	const char *src, *dst;
	bool merge;
	uint64_t max_bytes; /* the source's disk=, 0 none */
	struct err e;
};

static int do_copy(void *p)
{
	struct job *j = p;
	char s[PATH_MAX], d[PATH_MAX];
	path(s, j->src);
	path(d, j->dst);
	return j->merge ? vmm_merge_layer(s, d, &j->e) : vmm_copy_tree(s, d, "test copy", j->max_bytes, &j->e);
}

static int do_remove(void *p)
{
	char d[PATH_MAX];
	path(d, p);
	return vmm_remove_tree(d);
}

/* A small tmpfs of our own, in a mount namespace of this process only. */
static bool small_fs(const char *rel, const char *opts)
{
	char p[PATH_MAX];
	path(p, rel);
	mkdir(p, 0755);
	return mount("tmpfs", p, "tmpfs", 0, opts) == 0;
}

static void unmount(const char *rel)
{
	char p[PATH_MAX];
	path(p, rel);
	umount2(p, MNT_DETACH);
	rmdir(p);
}

static void test_deep_tree(void)
{
	char text[64];
	/* On a tmpfs when we can: this host's disk takes 20 s to free 10 000
	 * directory blocks; the walk is the same. */
	bool tmpfs = mount_ns && small_fs("deep", "size=256m");
	fresh("deep/src");
	CHECK(make_chain("deep/src", "d", DEEP, "bottom", "found") == 0);
	put("deep/src/top", "top");

	struct job j = {.src = "deep/src", .dst = "deep/copy"};
	int r = on_small_stack(do_copy, &j);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "copy: %s\n", j.e.msg);
	read_chain("deep/copy", "d", DEEP, "bottom", text, sizeof(text));
	CHECK(strcmp(text, "found") == 0);
	CHECK(exists("deep/copy/top"));
	CHECK(!exists("deep/copy.links.tmp"));

	/* A merge over a tree as deep, which has a file halfway down of its own. */
	fresh("deep/merged");
	CHECK(make_chain("deep/merged", "d", DEEP / 2, "middle", "lower") == 0);
	struct job m = {.src = "deep/src", .dst = "deep/merged", .merge = true};
	r = on_small_stack(do_copy, &m);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "merge: %s\n", m.e.msg);
	read_chain("deep/merged", "d", DEEP, "bottom", text, sizeof(text));
	CHECK(strcmp(text, "found") == 0);
	read_chain("deep/merged", "d", DEEP / 2, "middle", text, sizeof(text));
	CHECK(strcmp(text, "lower") == 0);

	CHECK(on_small_stack(do_remove, "deep/src") == 0);
	CHECK(on_small_stack(do_remove, "deep/copy") == 0);
	CHECK(on_small_stack(do_remove, "deep/merged") == 0);
	CHECK(!exists("deep/src") && !exists("deep/copy") && !exists("deep/merged"));
	if (tmpfs)
		unmount("deep");
	else
		do_remove("deep");
}

static void test_long_path(void)
{
	char name[64], text[64];
	memset(name, 'n', 60);
	name[60] = '\0';
	fresh("long");
	fresh("long/src");
	/* 120 levels of 60 characters: 7 320 characters, far past PATH_MAX. */
	CHECK(make_chain("long/src", name, 120, "f", "far") == 0);
	char p[PATH_MAX];
	path(p, "long/src");
	CHECK(strlen(p) + 120 * 61 > PATH_MAX);
	struct job j = {.src = "long/src", .dst = "long/copy"};
	CHECK(do_copy(&j) == 0);
	read_chain("long/copy", name, 120, "f", text, sizeof(text));
	CHECK(strcmp(text, "far") == 0);
	path(p, "long");
	CHECK(vmm_remove_tree(p) == 0);
	CHECK(!exists("long"));
}

static void test_sparse(void)
{
	const off_t tb = (off_t)1 << 40;
	char p[PATH_MAX], buf[8] = "";
	fresh("sparse");
	fresh("sparse/src");
	path(p, "sparse/src/big");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, tb) == 0);
	CHECK(pwrite(fd, "middle", 6, tb / 2) == 6);
	if (fd >= 0)
		close(fd);
	struct job j = {.src = "sparse/src", .dst = "sparse/copy"};
	CHECK(do_copy(&j) == 0);
	struct stat st;
	CHECK(lstat_rel("sparse/copy/big", &st) == 0);
	CHECK(st.st_size == tb);
	CHECK((uint64_t)st.st_blocks * 512 <= 1024 * 1024); /* one extent, not a terabyte */
	path(p, "sparse/copy/big");
	fd = open(p, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, 6, tb / 2) == 6 && memcmp(buf, "middle", 6) == 0);
	CHECK(fd >= 0 && pread(fd, buf, 6, 4096) == 6 && memcmp(buf, "\0\0\0\0\0\0", 6) == 0);
	if (fd >= 0)
		close(fd);
	path(p, "sparse");
	vmm_remove_tree(p);
}

static void test_hard_links(void)
{
	char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];
	fresh("hl");
	fresh("hl/src");
	fresh("hl/src/sub");
	put("hl/src/a", "shared");
	path(a, "hl/src/a");
	path(b, "hl/src/sub/b");
	path(c, "hl/src/c");
	CHECK(link(a, b) == 0 && link(a, c) == 0);
	put("hl/src/single", "one");
	struct job j = {.src = "hl/src", .dst = "hl/copy"};
	CHECK(do_copy(&j) == 0);
	struct stat sa, sb, sc, ss, orig;
	CHECK(lstat_rel("hl/copy/a", &sa) == 0 && lstat_rel("hl/copy/sub/b", &sb) == 0 &&
	      lstat_rel("hl/copy/c", &sc) == 0 && lstat_rel("hl/copy/single", &ss) == 0);
	CHECK(sa.st_ino == sb.st_ino && sa.st_ino == sc.st_ino);
	CHECK(sa.st_nlink == 3 && ss.st_nlink == 1);
	CHECK(lstat_rel("hl/src/a", &orig) == 0 && orig.st_ino != sa.st_ino);
	CHECK(!exists("hl/copy.links.tmp"));
	path(a, "hl");
	vmm_remove_tree(a);
}

static void test_links_not_followed(void)
{
	char p[PATH_MAX], t[PATH_MAX];
	fresh("ln");
	fresh("ln/src");
	path(p, "ln/src/shadow");
	CHECK(symlink("/etc/shadow", p) == 0);
	path(p, "ln/src/etc");
	CHECK(symlink("/etc", p) == 0);
	path(p, "ln/src/dangling");
	CHECK(symlink("../../nowhere", p) == 0);
	struct job j = {.src = "ln/src", .dst = "ln/copy"};
	CHECK(do_copy(&j) == 0);
	struct stat st;
	CHECK(lstat_rel("ln/copy/shadow", &st) == 0 && S_ISLNK(st.st_mode));
	path(p, "ln/copy/shadow");
	ssize_t n = readlink(p, t, sizeof(t) - 1);
	CHECK(n == 11 && memcmp(t, "/etc/shadow", 11) == 0);
	CHECK(lstat_rel("ln/copy/etc", &st) == 0 && S_ISLNK(st.st_mode));
	CHECK(lstat_rel("ln/copy/dangling", &st) == 0 && S_ISLNK(st.st_mode));
	/* A source that is itself a link is refused, not followed. */
	path(p, "ln/srclink");
	path(t, "ln/src");
	CHECK(symlink(t, p) == 0);
	struct job l = {.src = "ln/srclink", .dst = "ln/copy2"};
	CHECK(do_copy(&l) < 0);
	CHECK(!exists("ln/copy2"));
	/* Removal removes the links, never what they point to. */
	path(p, "ln");
	CHECK(vmm_remove_tree(p) == 0);
	CHECK(access("/etc/passwd", F_OK) == 0);
}

static void test_xattrs_whiteouts(void)
{
	char p[PATH_MAX], v[32];
	fresh("xa");
	fresh("xa/src");
	fresh("xa/src/opq");
	put("xa/src/opq/inside", "x");
	put("xa/src/file", "x");
	path(p, "xa/src/opq");
	CHECK(lsetxattr(p, "trusted.overlay.opaque", "y", 1, 0) == 0);
	path(p, "xa/src/file");
	CHECK(lsetxattr(p, "user.note", "hello", 5, 0) == 0);
	CHECK(lsetxattr(p, "trusted.big", root, strlen(root), 0) == 0);
	path(p, "xa/src/gone");
	CHECK(mknod(p, S_IFCHR | 0000, makedev(0, 0)) == 0);
	path(p, "xa/src/link");
	CHECK(symlink("file", p) == 0);
	CHECK(lsetxattr(p, "trusted.on-link", "L", 1, 0) == 0);
	struct job j = {.src = "xa/src", .dst = "xa/copy"};
	CHECK(do_copy(&j) == 0);
	path(p, "xa/copy/opq");
	CHECK(lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y');
	path(p, "xa/copy/file");
	CHECK(lgetxattr(p, "user.note", v, sizeof(v)) == 5 && memcmp(v, "hello", 5) == 0);
	CHECK(lgetxattr(p, "trusted.big", v, sizeof(v)) == (ssize_t)strlen(root));
	path(p, "xa/copy/link");
	CHECK(lgetxattr(p, "trusted.on-link", v, sizeof(v)) == 1 && v[0] == 'L');
	struct stat st;
	CHECK(lstat_rel("xa/copy/gone", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0);
	path(p, "xa");
	vmm_remove_tree(p);
}

static void test_special_files(void)
{
	char p[PATH_MAX];
	fresh("sp");
	fresh("sp/src");
	path(p, "sp/src/fifo");
	CHECK(mkfifo(p, 0640) == 0);
	path(p, "sp/src/null");
	CHECK(mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0 && chmod(p, 0666) == 0);
	path(p, "sp/src/blk");
	CHECK(mknod(p, S_IFBLK | 0600, makedev(7, 0)) == 0);
	path(p, "sp/src/sock");
	CHECK(mknod(p, S_IFSOCK | 0755, 0) == 0);
	put("sp/src/suid", "#!/bin/sh\n");
	path(p, "sp/src/suid");
	CHECK(chown(p, 1234, 5678) == 0 && chmod(p, 04755) == 0);
	struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1234567890, .tv_nsec = 5}};
	CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
	fresh("sp/src/sgid");
	path(p, "sp/src/sgid");
	CHECK(chown(p, 42, 43) == 0 && chmod(p, 02770) == 0);
	struct job j = {.src = "sp/src", .dst = "sp/copy"};
	CHECK(do_copy(&j) == 0);
	struct stat st;
	CHECK(lstat_rel("sp/copy/fifo", &st) == 0 && S_ISFIFO(st.st_mode) &&
	      (st.st_mode & 07777) == 0640);
	CHECK(lstat_rel("sp/copy/null", &st) == 0 && S_ISCHR(st.st_mode) &&
	      st.st_rdev == makedev(1, 3) && (st.st_mode & 07777) == 0666);
	CHECK(lstat_rel("sp/copy/blk", &st) == 0 && S_ISBLK(st.st_mode) &&
	      st.st_rdev == makedev(7, 0));
	CHECK(lstat_rel("sp/copy/sock", &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK(lstat_rel("sp/copy/suid", &st) == 0 && (st.st_mode & 07777) == 04755 &&
	      st.st_uid == 1234 && st.st_gid == 5678);
	CHECK(st.st_mtim.tv_sec == 1234567890 && st.st_mtim.tv_nsec == 5);
	CHECK(lstat_rel("sp/copy/sgid", &st) == 0 && S_ISDIR(st.st_mode) &&
	      (st.st_mode & 07777) == 02770 && st.st_uid == 42 && st.st_gid == 43);
	path(p, "sp");
	vmm_remove_tree(p);
}

static void test_no_room(void)
{
	char p[PATH_MAX];
	if (!mount_ns)
		SKIP("no mount namespace of our own");
	fresh("room");
	fresh("room/src");
	if (!small_fs("room/small", "size=4m"))
		SKIP("cannot mount a tmpfs: %s", strerror(errno));
	/* 8 MB of data in a 4 MB filesystem: refused up front, nothing made. */
	path(p, "room/src/data");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char block[1 << 20];
	memset(block, 'x', sizeof(block));
	for (int i = 0; i < 8 && fd >= 0; i++)
		CHECK(write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	struct job j = {.src = "room/src", .dst = "room/small/layer"};
	CHECK(do_copy(&j) == -ENOSPC);
	unsigned need = 0, avail = 99;
	CHECK(sscanf(j.e.msg, "test copy needs %u MB on %*s %u MB free", &need, &avail) == 2);
	CHECK(need >= 8 && need <= 9 && avail <= 4);
	fprintf(stderr, "# %s\n", j.e.msg);
	CHECK(!exists("room/small/layer") && !exists("room/small/layer.links.tmp"));

	/* 3 MB with three names (counted once) and a 1 TB sparse file fit. */
	path(p, "room/src/data");
	CHECK(truncate(p, 3 << 20) == 0);
	char a[PATH_MAX];
	path(a, "room/src/data2");
	CHECK(link(p, a) == 0);
	path(a, "room/src/data3");
	CHECK(link(p, a) == 0);
	put("room/src/big", "");
	path(p, "room/src/big");
	CHECK(truncate(p, (off_t)1 << 40) == 0);
	struct job k = {.src = "room/src", .dst = "room/small/layer"};
	int r = do_copy(&k);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "copy: %s\n", k.e.msg);
	struct stat st;
	CHECK(lstat_rel("room/small/layer/big", &st) == 0 && st.st_size == (off_t)1 << 40);
	unmount("room/small");

	/* Out of inodes: 64 files into a tmpfs of 16. */
	if (!small_fs("room/few", "size=4m,nr_inodes=16"))
		SKIP("cannot mount a tmpfs: %s", strerror(errno));
	fresh("room/src");
	for (int i = 0; i < 64; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "room/src/f%d", i);
		put(rel, "");
	}
	struct job n = {.src = "room/src", .dst = "room/few/layer"};
	CHECK(do_copy(&n) == -ENOSPC);
	CHECK(strstr(n.e.msg, "inodes on ") != NULL);
	fprintf(stderr, "# %s\n", n.e.msg);
	CHECK(!exists("room/few/layer"));
	unmount("room/few");
	path(p, "room");
	vmm_remove_tree(p);
}

/* A checkpoint of a sandbox with disk= never holds more than its disk:
 * measured first, refused with ENOSPC and a sentence, nothing made. */
static void test_disk_limit(void)
{
	char p[PATH_MAX];
	fresh("lim");
	fresh("lim/src");
	path(p, "lim/src/data");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static char block[1 << 20];
	memset(block, 'y', sizeof(block));
	for (int i = 0; i < 2 && fd >= 0; i++)
		CHECK(write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	put("lim/src/sparse", "");
	path(p, "lim/src/sparse");
	CHECK(truncate(p, (off_t)1 << 40) == 0); /* a hole costs nothing */
	struct job j = {.src = "lim/src", .dst = "lim/layer", .max_bytes = 1 << 20};
	CHECK(do_copy(&j) == -ENOSPC);
	unsigned need = 0, limit = 0;
	CHECK(sscanf(j.e.msg, "test copy needs %u MB, more than its disk limit of %u MB", &need,
		     &limit) == 2);
	CHECK(need >= 2 && need <= 3 && limit == 1);
	fprintf(stderr, "# %s\n", j.e.msg);
	CHECK(!exists("lim/layer") && !exists("lim/layer.links.tmp"));
	struct job k = {.src = "lim/src", .dst = "lim/layer", .max_bytes = 4 << 20};
	CHECK(do_copy(&k) == 0);
	struct stat st;
	CHECK(lstat_rel("lim/layer/data", &st) == 0 && st.st_size == 2 << 20);
	CHECK(lstat_rel("lim/layer/sparse", &st) == 0 && st.st_size == (off_t)1 << 40);
	path(p, "lim");
	vmm_remove_tree(p);
}

static void test_existing_destination(void)
{
	fresh("ex");
	fresh("ex/src");
	fresh("ex/dst");
	put("ex/dst/mine", "keep");
	struct job j = {.src = "ex/src", .dst = "ex/dst"};
	CHECK(do_copy(&j) == -EEXIST);
	CHECK(exists("ex/dst/mine")); /* never removes what it did not make */
	char p[PATH_MAX];
	path(p, "ex");
	vmm_remove_tree(p);
}

static void test_depth_bound(void)
{
	/* On a tmpfs: 100 000 directories cost no disk blocks there. */
	if (!mount_ns)
		SKIP("no mount namespace of our own");
	if (!small_fs("bound", "size=64m"))
		SKIP("cannot mount a tmpfs: %s", strerror(errno));
	fresh("bound/src");
	CHECK(make_chain("bound/src", "d", VMM_WALK_MAX_DEPTH + 1, NULL, NULL) == 0);
	struct job j = {.src = "bound/src", .dst = "bound/copy"};
	int r = on_small_stack(do_copy, &j);
	CHECK(r == -EFBIG);
	CHECK(strstr(j.e.msg, "deeper than") != NULL);
	fprintf(stderr, "# %s\n", j.e.msg);
	CHECK(!exists("bound/copy") && !exists("bound/copy.links.tmp"));
	/* Removal has no bound: a hostile tree always goes. */
	CHECK(on_small_stack(do_remove, "bound/src") == 0);
	CHECK(!exists("bound/src"));
	unmount("bound");
}

/* The stamp a VM root disk is named by (vmimage.c): it moves with a change
 * deep in the tree, never through a link, and stays when nothing changed. */
static void test_tree_stamp(void)
{
	char p[PATH_MAX];
	struct err e = {0};
	struct vmm_tree_stamp a, b, c, d;
	fresh("st");
	fresh("st/a");
	fresh("st/a/b");
	put("st/a/b/file", "one");
	path(p, "st/a/b/etc");
	CHECK(symlink("/etc", p) == 0);
	path(p, "st");
	CHECK(vmm_tree_stamp(p, &a, &e) == 0);
	CHECK(a.entries == 4); /* a, b, file, the link: not what it points to */
	CHECK(vmm_tree_stamp(p, &b, &e) == 0);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	usleep(10000); /* ctime granularity: the clock tick */
	put("st/a/b/file", "two"); /* same size, same entries: only the ctime says it */
	CHECK(vmm_tree_stamp(p, &c, &e) == 0);
	CHECK(c.entries == a.entries && c.newest_ctime_nsec > a.newest_ctime_nsec);
	path(p, "st/a/b/file");
	CHECK(unlink(p) == 0);
	path(p, "st");
	CHECK(vmm_tree_stamp(p, &d, &e) == 0);
	CHECK(d.entries == 3);
	path(p, "st/nowhere");
	CHECK(vmm_tree_stamp(p, &d, &e) == -ENOENT && e.msg[0]);
	path(p, "st");
	vmm_remove_tree(p);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/sbx-unit-copy.XXXXXX");
	CHECK(mkdtemp(root) != NULL);
	umask(022);
	mount_ns = unshare(CLONE_NEWNS) == 0 &&
		   mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
	RUN(test_deep_tree);
	RUN(test_long_path);
	RUN(test_sparse);
	RUN(test_hard_links);
	RUN(test_links_not_followed);
	RUN(test_xattrs_whiteouts);
	RUN(test_special_files);
	RUN(test_existing_destination);
	RUN(test_depth_bound);
	RUN(test_no_room);
	RUN(test_disk_limit);
	RUN(test_tree_stamp);
	CHECK(vmm_remove_tree(root) == 0);
	UNIT_DONE("copy");
}
