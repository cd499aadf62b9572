/* Root disks of qemu VMs: an image's files (a directory of --images, or an
 * imported image's layers as overlayfs stacks them) as one read-only erofs
 * file that QEMU gives the guest as a virtio-blk device. Made once per image
 * state with mkfs.erofs in STATE/vmimages and shared by every VM of it: the
 * name says what the image was, so a changed image gets a new file and
 * running VMs (and their forks) keep the one they booted. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "vmm.h"

/* One build at a time: two creates of one image make it once. */
static pthread_mutex_t build_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* What the image is now: its layer ids (content-addressed), or for a
 * directory (dir: its real path) its identity and what a walk of it finds. */
static int image_key(const struct vmm_inst *vm, const char *dir, uint64_t *key, struct err *e)
{
	uint64_t h = 0xcbf29ce484222325ull;
	if (vm->nimage_layers > 0) {
		for (int i = 0; i < vm->nimage_layers; i++)
			h = fnv1a(h, vm->image_layers[i], strlen(vm->image_layers[i]) + 1);
		*key = h;
		return 0;
	}
	struct stat st;
	struct vmm_tree_stamp ts;
	if (stat(dir, &st) < 0)
		return err_set(e, -errno, "image %s: %s", vm->image_dir, strerror(errno));
	int r = vmm_tree_stamp(dir, &ts, e);
	if (r < 0)
		return r;
	uint64_t v[] = {st.st_dev, st.st_ino, ts.entries, ts.bytes, ts.newest_ctime_nsec};
	*key = fnv1a(h, v, sizeof(v));
	return 0;
}

/* An imported image's layers as one read-only tree: an overlay of them on
 * mnt (made here). */
static int layers_mount(const struct vmm_inst *vm, const char *mnt, struct err *e)
{
	char opts[4096];
	size_t o = (size_t)snprintf(opts, sizeof(opts), "lowerdir=");
	for (int i = 0; i < vm->nimage_layers && o < sizeof(opts); i++)
		o += (size_t)snprintf(opts + o, sizeof(opts) - o, "%s%s/%s", i ? ":" : "",
				      vmm_host()->image_layers_dir, vm->image_layers[i]);
	if (o >= sizeof(opts))
		return err_set(e, -E2BIG, "image %s: its layers' paths are too long to stack",
			       vm->image_dir);
	if (mkdir(mnt, 0700) < 0)
		return err_set(e, -errno, "cannot create %s: %s", mnt, strerror(errno));
	if (mount("overlay", mnt, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, opts) < 0) {
		int r = err_set(e, -errno, "cannot stack the layers of image %s: %s",
				vm->image_dir, strerror(errno));
		rmdir(mnt);
		return r;
	}
	return 0;
}

static int mkfs_erofs(const char *src, const char *out, const char *image, struct err *e)
{
	const char *env = getenv("SANDBOXFS_MKFS_EROFS"); /* tests: a host without it */
	const char *const defaults[] = {"/usr/bin/mkfs.erofs", "/usr/sbin/mkfs.erofs", "mkfs.erofs"};
	const char *const given[] = {env};
	char what[128];
	char *argv[] = {"mkfs.erofs", "--quiet", (char *)out, (char *)src, NULL};
	snprintf(what, sizeof(what), "a VM of image %s", image);
	int r = env && *env ? vmm_run_tool(given, 1, argv, "erofs-utils", what, e)
			    : vmm_run_tool(defaults, ARRAY_SIZE(defaults), argv, "erofs-utils", what, e);
	if (r == -ENOENT)
		r = err_set(e, -EOPNOTSUPP, "a VM of image %s needs mkfs.erofs to make its root "
			    "disk, and this host has none (apt-get install erofs-utils)", image);
	return r;
}

static int build(const struct vmm_inst *vm, const char *dir, const char *image, const char *out,
		 struct err *e)
{
	const char *cache = vmm_host()->vm_images_dir;
	char tmp[PATH_MAX + 32], mnt[PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	snprintf(mnt, sizeof(mnt), "%s.mnt", out);
	unlink(tmp); /* a daemon that died in a build */
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	int r = mkdir_p(cache, 0700);
	if (r < 0)
		return err_set(e, r, "cannot create %s: %s", cache, strerror(-r));
	const char *src = dir;
	if (vm->nimage_layers > 0) {
		if ((r = layers_mount(vm, mnt, e)) < 0)
			return r;
		src = mnt;
	}
	r = mkfs_erofs(src, tmp, image, e);
	if (vm->nimage_layers > 0) {
		if (umount2(mnt, MNT_DETACH) < 0)
			log_warn("image %s: cannot unmount %s: %s", image, mnt, strerror(errno));
		rmdir(mnt);
	}
	if (r == 0 && rename(tmp, out) < 0)
		r = err_set(e, -errno, "cannot rename %s: %s", tmp, strerror(errno));
	if (r < 0)
		unlink(tmp);
	return r;
}

int vmm_root_disk(const struct vmm_inst *vm, char *out, size_t cap, uint64_t *made_usec,
		  struct err *e)
{
	char img[PATH_MAX], dir[PATH_MAX] = "";
	uint64_t key = 0, t0 = now_usec();
	snprintf(img, sizeof(img), "%s", vm->image_dir);
	const char *image = basename(img);
	*made_usec = 0;
	/* A directory of --images may be a link to the tree (the user's). */
	if (!vm->nimage_layers && !realpath(vm->image_dir, dir))
		return err_set(e, -errno, "image %s: %s", vm->image_dir, strerror(errno));
	int r = image_key(vm, dir, &key, e);
	if (r < 0)
		return r;
	snprintf(out, cap, "%s/%s-%016" PRIx64 ".erofs", vmm_host()->vm_images_dir, image, key);
	if (access(out, R_OK) == 0)
		return 0;
	pthread_mutex_lock(&build_lock);
	if (access(out, R_OK) < 0) {
		if ((r = build(vm, dir, image, out, e)) == 0) {
			*made_usec = now_usec() - t0;
			log_info("image %s: VM root disk %s made in %" PRIu64 " ms", image, out,
				 *made_usec / 1000);
		}
	}
	pthread_mutex_unlock(&build_lock);
	return r;
}
