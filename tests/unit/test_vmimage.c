/* VM root disks (vmm/vmimage.c): which cached disks the sweep removes (the
 * pure decision), and the sweep itself over a state dir made here: rootdisk
 * files of sandboxes, checkpoints and spares keep theirs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../engine/common.h"
#include "../../vmm/vmm.h"
#include "unit.h"

#define K1 "-0123456789abcdef.erofs"
#define K2 "-fedcba9876543210.erofs"

static struct vmm_disk_entry ent(const char *name, int64_t mtime, bool in_use, bool exists)
{
	struct vmm_disk_entry d = {.mtime_nsec = mtime, .in_use = in_use, .image_exists = exists};
	snprintf(d.name, sizeof(d.name), "%s", name);
	return d;
}

static void test_decide(void)
{
	struct vmm_disk_entry d[] = {
		ent("debian" K1, 100, false, true),   /* 0: an older state of debian: goes */
		ent("debian" K2, 200, false, true),   /* 1: debian's newest: stays */
		ent("alp-ine" K1, 100, false, false), /* 2: image gone, unused: goes */
		ent("old" K1, 100, true, false),      /* 3: image gone, a VM uses it: stays */
		ent("web" K1, 100, true, true),       /* 4: older but in use: stays */
		ent("web" K2, 300, false, true),      /* 5: newest: stays */
		ent("deb" K1, 50, false, true),       /* 6: alone of its image ("deb", not debian): stays */
		ent("debian" K1 ".tmp", 1, false, false), /* 7: a build's: never */
		ent("x-0123.erofs", 1, false, false), /* 8: not a key: never */
		ent("-0123456789abcdef.erofs", 1, false, false), /* 9: no image: never */
	};
	vmm_root_disks_decide(d, ARRAY_SIZE(d));
	bool want[] = {true, false, true, false, false, false, false, false, false, false};
	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		CHECK(d[i].remove == want[i]);
		if (d[i].remove != want[i])
			fprintf(stderr, "entry %zu (%s)\n", i, d[i].name);
	}
	/* Same mtime: one of the two is kept (the greater name), never both gone. */
	struct vmm_disk_entry t[] = {ent("a" K1, 5, false, true), ent("a" K2, 5, false, true)};
	vmm_root_disks_decide(t, 2);
	CHECK(t[0].remove && !t[1].remove);
}

static char root[PATH_MAX];

static bool exists_stub(void *arg, const char *name)
{
	(void)arg;
	return strcmp(name, "gone") != 0;
}

static void put(const char *rel, const char *text)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	CHECK(write_file_atomic(p, text, strlen(text), false) == 0);
}

static bool there(const char *disk)
{
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/vmimages/%s", root, disk);
	return access(p, F_OK) == 0;
}

static void age(const char *disk, time_t sec)
{
	char p[PATH_MAX * 2];
	struct timespec ts[2] = {{sec, 0}, {sec, 0}};
	snprintf(p, sizeof(p), "%s/vmimages/%s", root, disk);
	CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
}

static void test_sweep(void)
{
	snprintf(root, sizeof(root), "/tmp/sbx-unit-vmimage-%d", getpid());
	struct vmm_host h = {.image_exists = exists_stub};
	snprintf(h.vm_images_dir, sizeof(h.vm_images_dir), "%s/vmimages", root);
	snprintf(h.sandboxes_dir, sizeof(h.sandboxes_dir), "%s/sandboxes", root);
	snprintf(h.layers_dir, sizeof(h.layers_dir), "%s/layers", root);
	snprintf(h.spares_dir, sizeof(h.spares_dir), "%s/spares", root);
	const char *dirs[] = {"vmimages", "sandboxes/v1", "layers/l1", "spares/s1", "sandboxes/v2"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char p[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
		CHECK(mkdir_p(p, 0700) == 0);
	}
	vmm_host_set(&h);
	const char *disks[] = {"img" K1, "img" K2, "gone" K1, "gone" K2, "snap" K1, "snap" K2,
			       "spare" K1, "spare" K2, "img" K1 ".tmp"};
	for (size_t i = 0; i < ARRAY_SIZE(disks); i++) {
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "vmimages/%s", disks[i]);
		put(rel, "erofs");
		age(disks[i], 1000 + (time_t)i); /* the later in the list, the newer */
	}
	char p[PATH_MAX * 2];
	snprintf(p, sizeof(p), "%s/vmimages/gone" K1 "\n", root);
	put("sandboxes/v1/rootdisk", p); /* a VM of a removed image */
	snprintf(p, sizeof(p), "%s/vmimages/snap" K1, root);
	put("layers/l1/rootdisk", p); /* a checkpoint of an older state */
	snprintf(p, sizeof(p), "%s/vmimages/spare" K1, root);
	put("spares/s1/rootdisk", p);
	put("sandboxes/v2/rootdisk", "/elsewhere/img" K1); /* not the cache's: no use */
	/* Only one image's: the others wait. */
	CHECK(vmm_root_disks_gc("img", true) == 1);
	CHECK(!there("img" K1) && there("img" K2) && there("img" K1 ".tmp"));
	CHECK(there("gone" K2));
	CHECK(vmm_root_disks_gc(NULL, true) == 1);
	CHECK(there("gone" K1) && !there("gone" K2)); /* in use / gone with its image */
	CHECK(there("snap" K1) && there("snap" K2) && there("spare" K1) && there("spare" K2));
	/* The VM goes: its disk of the removed image follows. */
	snprintf(p, sizeof(p), "%s/sandboxes/v1/rootdisk", root);
	CHECK(unlink(p) == 0);
	CHECK(vmm_root_disks_gc(NULL, true) == 1 && !there("gone" K1));
	CHECK(vmm_root_disks_gc(NULL, true) == 0);
	/* A start between its choice and its record: a sweep that may not wait
	 * leaves everything; one that may, waits for it. */
	put("vmimages/late" K1, "erofs");
	age("late" K1, 1000);
	put("vmimages/late" K2, "erofs");
	vmm_root_disk_hold();
	CHECK(vmm_root_disks_gc(NULL, false) == 0 && there("late" K1));
	vmm_root_disk_release();
	CHECK(vmm_root_disks_gc(NULL, false) == 1 && !there("late" K1));
	vmm_remove_tree(root);
}

int main(void)
{
	RUN(test_decide);
	RUN(test_sweep);
	UNIT_DONE("vmimage");
}
