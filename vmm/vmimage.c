/* Root disks of qemu VMs: an image's files (a directory of --images, or an
 * imported image's layers as overlayfs stacks them) as one read-only erofs
 * file that QEMU gives the guest as a virtio-blk device. Made once per image
 * state with mkfs.erofs in STATE/vmimages and shared by every VM of it: the
 * name says what the image was, so a changed image gets a new file and
 * running VMs (and their forks) keep the one they booted. A disk goes once
 * nothing can boot it again: its image removed or made anew, and no VM,
 * spare or saved machine (a snapshot, a fork's checkpoint, a standby) names
 * it in its rootdisk file. */
#define _GNU_SOURCE
#include <dirent.h>
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
/* Shared by a start from its disk's choice until its rootdisk file names it
 * (vmm_root_disk_hold); the sweep takes it alone, so it never removes a
 * disk a start has chosen but not recorded yet. */
static pthread_rwlock_t use_lock = PTHREAD_RWLOCK_INITIALIZER;

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
	/* Chosen again: the newest of its image, which the sweep keeps. */
	if (utimensat(AT_FDCWD, out, NULL, 0) == 0)
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

void vmm_root_disk_hold(void) { pthread_rwlock_rdlock(&use_lock); }
void vmm_root_disk_release(void) { pthread_rwlock_unlock(&use_lock); }

/* IMAGE-KEY.erofs: the length of IMAGE, or 0 for a name of something else
 * (a build's .tmp or .mnt, a file not ours). */
static size_t disk_image_len(const char *name)
{
	size_t n = strlen(name);
	if (n < 1 + 1 + 16 + 6 || strcmp(name + n - 6, ".erofs") != 0)
		return 0;
	const char *key = name + n - 6 - 16;
	if (key[-1] != '-' || strspn(key, "0123456789abcdef") < 16)
		return 0;
	return (size_t)(key - 1 - name);
}

void vmm_root_disks_decide(struct vmm_disk_entry *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t li = disk_image_len(d[i].name);
		bool newer = false;
		for (size_t j = 0; j < n && li && !newer; j++)
			newer = j != i && disk_image_len(d[j].name) == li &&
				!strncmp(d[i].name, d[j].name, li) &&
				(d[j].mtime_nsec > d[i].mtime_nsec ||
				 (d[j].mtime_nsec == d[i].mtime_nsec && strcmp(d[j].name, d[i].name) > 0));
		d[i].remove = li && !d[i].in_use && (!d[i].image_exists || newer);
	}
}

struct names {
	char (*v)[NAME_MAX + 1];
	size_t n, cap;
};

static int names_add(struct names *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		void *v = realloc(s->v, cap * sizeof(*s->v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	snprintf(s->v[s->n++], NAME_MAX + 1, "%s", name);
	return 0;
}

/* The disks of vm_images_dir the rootdisk files under dir name (each
 * DIR/X/rootdisk: a sandbox's, a checkpoint's, a spare's). */
static int uses_in(const char *dir, struct names *used)
{
	const char *cache = vmm_host()->vm_images_dir;
	size_t cl = strlen(cache);
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		char p[PATH_MAX + NAME_MAX + 16], disk[PATH_MAX];
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/rootdisk", dir, de->d_name);
		int k = read_file_str(p, disk, sizeof(disk));
		if (k > 0)
			disk[strcspn(disk, "\n")] = '\0';
		if (k > 0 && !strncmp(disk, cache, cl) && disk[cl] == '/' && !strchr(disk + cl + 1, '/'))
			r = names_add(used, disk + cl + 1);
		else if (k < 0 && k != -ENOENT && k != -ENOTDIR)
			r = k; /* unreadable: it may name one */
	}
	closedir(d);
	return r;
}

/* What the disks in the cache (those of image only, when given) are, for
 * vmm_root_disks_decide. */
static int disks_list(const char *image, const struct names *used, struct vmm_disk_entry **out,
		      size_t *n)
{
	const struct vmm_host *h = vmm_host();
	DIR *d = opendir(h->vm_images_dir);
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *de;
	int r = 0;
	while (r == 0 && (de = readdir(d))) {
		size_t li = disk_image_len(de->d_name);
		struct stat sb;
		if (!li || (image && (strlen(image) != li || strncmp(image, de->d_name, li))) ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			void *v = realloc(*out, cap * sizeof(**out));
			if (!v) {
				r = -ENOMEM;
				break;
			}
			*out = v;
		}
		struct vmm_disk_entry *e = &(*out)[(*n)++];
		char img[NAME_MAX + 1];
		snprintf(e->name, sizeof(e->name), "%s", de->d_name);
		snprintf(img, sizeof(img), "%.*s", (int)li, de->d_name);
		e->mtime_nsec = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
		e->in_use = false;
		for (size_t i = 0; i < used->n && !e->in_use; i++)
			e->in_use = !strcmp(used->v[i], e->name);
		e->image_exists = !h->image_exists || h->image_exists(h->image_arg, img);
		e->remove = false;
	}
	closedir(d);
	return r;
}

int vmm_root_disks_gc(const char *image, bool wait)
{
	const struct vmm_host *h = vmm_host();
	const char *const dirs[] = {h->sandboxes_dir, h->layers_dir, h->spares_dir};
	struct names used = {0};
	struct vmm_disk_entry *d = NULL;
	size_t n = 0;
	int r = 0, gone = 0;
	if (!h->vm_images_dir[0])
		return 0;
	if (!wait && pthread_rwlock_trywrlock(&use_lock) != 0)
		return 0; /* a start is choosing a disk: the sweep is left for later */
	if (wait)
		pthread_rwlock_wrlock(&use_lock);
	for (size_t i = 0; i < ARRAY_SIZE(dirs) && r == 0; i++)
		if (dirs[i][0])
			r = uses_in(dirs[i], &used);
	if (r == 0)
		r = disks_list(image, &used, &d, &n);
	if (r == 0)
		vmm_root_disks_decide(d, n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char p[PATH_MAX + NAME_MAX + 2];
		if (!d[i].remove)
			continue;
		snprintf(p, sizeof(p), "%s/%s", h->vm_images_dir, d[i].name);
		if (unlink(p) == 0) {
			gone++;
			log_info("VM root disk %s removed: %s, and no VM uses it", d[i].name,
				 d[i].image_exists ? "its image changed" : "its image is gone");
		} else if (errno != ENOENT) {
			log_warn("cannot remove the VM root disk %s: %s", p, strerror(errno));
		}
	}
	pthread_rwlock_unlock(&use_lock);
	if (r < 0)
		log_warn("VM root disks not swept: %s (a rootdisk file or %s could not be read)",
			 strerror(-r), h->vm_images_dir);
	free(used.v);
	free(d);
	return r < 0 ? r : gone;
}
