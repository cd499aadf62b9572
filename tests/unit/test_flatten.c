/* Flattening a chain of overlay layers (vmm_merge_layer): the merge, bottom
 * up, must show what overlayfs shows for the chain, and a real overlay mount
 * of image + flattened layer must list the same tree as image + the chain. */
#define _GNU_SOURCE
#include <fcntl.h>
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

static char root[PATH_MAX];

static void put(const char *rel, const char *text)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
}

static void dir(const char *rel)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	mkdir(p, 0755);
}

static void whiteout(const char *rel)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	mknod(p, S_IFCHR | 0000, makedev(0, 0));
}

static void opaque(const char *rel)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	lsetxattr(p, "trusted.overlay.opaque", "y", 1, 0);
}

static bool is_opaque(const char *rel)
{
	char p[PATH_MAX + 64], v[4];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lgetxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

static int kind(const char *rel) /* 'f' file, 'd' dir, 'w' whiteout, '-' none */
{
	char p[PATH_MAX + 64];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (lstat(p, &st) < 0)
		return '-';
	return S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f'
	       : S_ISCHR(st.st_mode) && st.st_rdev == 0 ? 'w' : '?';
}

static bool has(const char *rel, const char *text)
{
	char p[PATH_MAX + 64], buf[256];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	int n = read_file_str(p, buf, sizeof(buf));
	return n >= 0 && strcmp(buf, text) == 0;
}

/* A listing of a tree: "path kind content" lines, sorted. */
static void listing(const char *top, char *out, size_t cap)
{
	char cmd[PATH_MAX * 2];
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && find . -mindepth 1 | sort | while read -r f; do "
		 "if [ -f \"$f\" ]; then echo \"$f $(cat \"$f\")\"; else echo \"$f\"; fi; done", top);
	FILE *p = popen(cmd, "r");
	size_t n = p ? fread(out, 1, cap - 1, p) : 0;
	out[n] = '\0';
	if (p)
		pclose(p);
}

/* The image and a chain of three layers, oldest (L2) to newest (L0). */
static void make_tree(void)
{
	const char *dirs[] = {"img", "img/a", "img/b", "img/d", "img/g", "L2", "L2/a", "L2/b",
			      "L2/d", "L1", "L1/a", "L1/b", "L1/c", "L0", "L0/a", "L0/g", "F",
			      "m1", "m2", "w1", "w2", "u1", "u2"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		dir(dirs[i]);
	/* the image */
	put("img/a/file1", "img");
	put("img/b/x", "img-x");
	put("img/c", "img-c");
	put("img/d/keep", "img-keep");
	put("img/g/old", "img-old");
	/* L2 (oldest): changes a file, adds files */
	put("L2/a/file1", "two");
	put("L2/b/x2", "two-x2");
	put("L2/d/new", "two-new");
	/* L1: deletes a/file1, makes b opaque (only y), c a directory over a file */
	whiteout("L1/a/file1");
	opaque("L1/b");
	put("L1/b/y", "one-y");
	put("L1/c/z", "one-z");
	put("L1/e", "one-e");
	/* L0 (newest): a/file1 again, d deleted, g emptied by an opaque dir */
	put("L0/a/file1", "again");
	whiteout("L0/d");
	opaque("L0/g");
	put("L0/g/fresh", "zero");
}

/* Merged bottom up into F, the chain gives what overlayfs would show. */
static void test_merge(void)
{
	char src[PATH_MAX + 16], dst[PATH_MAX + 16];
	struct err e = {0};
	snprintf(dst, sizeof(dst), "%s/F", root);
	const char *chain[] = {"L2", "L1", "L0"};
	for (int i = 0; i < 3; i++) {
		snprintf(src, sizeof(src), "%s/%s", root, chain[i]);
		CHECK(vmm_merge_layer(src, dst, &e) == 0);
	}
	CHECK(kind("F/a/file1") == 'f' && has("F/a/file1", "again"));
	CHECK(kind("F/b") == 'd' && is_opaque("F/b") && kind("F/b/y") == 'f' &&
	      kind("F/b/x2") == '-' && kind("F/b/x") == '-');
	/* (over the image's file c, a plain directory hides it already) */
	CHECK(kind("F/c") == 'd' && has("F/c/z", "one-z"));
	CHECK(kind("F/d") == 'w');
	CHECK(has("F/e", "one-e"));
	CHECK(kind("F/g") == 'd' && is_opaque("F/g") && has("F/g/fresh", "zero"));
}

static void test_overlay_agrees(void)
{
	/* The proof: overlayfs shows the same tree for image+chain and image+F. */
	char o1[PATH_MAX * 4], o2[PATH_MAX * 4], m1[PATH_MAX + 8], m2[PATH_MAX + 8];
	snprintf(o1, sizeof(o1), "lowerdir=%s/L0:%s/L1:%s/L2:%s/img,upperdir=%s/u1,workdir=%s/w1",
		 root, root, root, root, root, root);
	snprintf(o2, sizeof(o2), "lowerdir=%s/F:%s/img,upperdir=%s/u2,workdir=%s/w2", root, root,
		 root, root);
	snprintf(m1, sizeof(m1), "%s/m1", root);
	snprintf(m2, sizeof(m2), "%s/m2", root);
	bool ok1 = mount("overlay", m1, "overlay", 0, o1) == 0;
	bool ok2 = mount("overlay", m2, "overlay", 0, o2) == 0;
	CHECK(ok1 && ok2);
	if (ok1 && ok2) {
		static char l1[65536], l2[65536];
		listing(m1, l1, sizeof(l1));
		listing(m2, l2, sizeof(l2));
		CHECK(strlen(l1) > 0 && strcmp(l1, l2) == 0);
		if (strcmp(l1, l2) != 0)
			fprintf(stderr, "chain:\n%s\nflattened:\n%s\n", l1, l2);
	}
	if (ok1)
		umount2(m1, MNT_DETACH);
	if (ok2)
		umount2(m2, MNT_DETACH);
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/sbx-unit-flatten.XXXXXX");
	CHECK(mkdtemp(root) != NULL);
	make_tree();
	RUN(test_merge);
	RUN(test_overlay_agrees);
	rm_rf(root);
	UNIT_DONE("flatten");
}
