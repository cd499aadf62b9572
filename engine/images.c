/* Images (images.h). Two kinds: a directory of --images is an image as it is
 * (a root filesystem, source "dir"); an imported one is an ordered list of
 * layer dirs in STATE/imports/layers, each a layer of an OCI image unpacked
 * once (unpack.c) and named by its blob's digest, shared by every image that
 * lists it. An imported image's config, STATE/imports/images/NAME.json, is
 * what lists its layers: a layer dir no config (nor a running import) lists
 * is removed. An import runs on a worker; nothing half-made reaches
 * layers/ or images/ (temporary dirs in tmp/, renamed into place). */
#define _GNU_SOURCE
#include "images.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "oci.h"
#include "pool.h"
#include "pull.h"
#include "sandbox.h"
#include "tar.h"
#include "unpack.h"

#define IMPORTS_MAX 2 /* at once: each holds a worker thread */
#define LAYER_ID_MAX VMM_IMAGE_LAYER_ID_MAX
#define LOWERS_MAX VMM_IMAGE_LAYERS_MAX
#define HELD_MAX (OCI_LAYERS_MAX + 1)
#define UNPACKING_MAX 16
#define RESERVE_MAX_BYTES (64ull << 20) /* kept free on STATE while unpacking */
#define ENTRIES_MAX 4000000ull          /* entries of one layer */
#define SOURCE_MAX (PATH_MAX + 160)
#define PULL_TIMEOUT_SEC 1800ull /* a registry pull; SANDBOXFS_PULL_TIMEOUT (seconds) for another */

enum img_state { IMG_IMPORTING, IMG_READY, IMG_FAILED };
static const char *const state_names[] = {"importing", "ready", "failed"};

struct image {
	struct engine *eng; /* whose image it is */
	struct image *next; /* the store's list */
	_Atomic int refs;   /* the list's, and each pin */
	uint32_t id;
	char name[SBX_NAME_MAX + 1];
	bool dir;           /* a directory of --images */
	/* Under the store's lock: */
	int state;
	int pins;           /* creates between their check and the registry */
	bool removing;
	char error[SBX_ERRMSG_MAX];
	char source[SOURCE_MAX];
	char *config;       /* an imported, ready image's config (JSON) */
	char lowers[LOWERS_MAX][LAYER_ID_MAX]; /* bottom first */
	int nlowers;
	char (*held)[LAYER_ID_MAX]; /* importing: the layer dirs it has or makes */
	int nheld;
	uint64_t created_wall_usec;
	_Atomic uint64_t done_bytes, total_bytes;
	_Atomic bool cancel;
};

/* The part's state in the engine (eng->images, made by images_init). */
struct images {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a layer being made is done */
	struct image *list;
	uint32_t next_id;
	int imports;
	char unpacking[UNPACKING_MAX][LAYER_ID_MAX];
	int nunpacking;
	uint64_t tmp_seq;
	char dir[PATH_MAX], configs[PATH_MAX], layers[PATH_MAX], tmp[PATH_MAX];
	bool started;
	atomic_bool quitting;
	/* Whether a warm pool's spec names an image (warm.c's, given at its init). */
	bool (*pool_user)(struct engine *eng, const char *image, char *pool, size_t cap);
};

/* --- the list (st->lock held) --- */

static struct image *find(struct engine *eng, const char *name)
{
	struct images *st = eng->images;
	for (struct image *im = st->list; im; im = im->next)
		if (strcmp(im->name, name) == 0)
			return im;
	return NULL;
}

static struct image *find_id(struct engine *eng, uint32_t id)
{
	struct images *st = eng->images;
	for (struct image *im = st->list; im; im = im->next)
		if (im->id == id)
			return im;
	return NULL;
}

static void image_free(struct image *im)
{
	free(im->config);
	free(im->held);
	free(im);
}

void image_put(struct image *im)
{
	if (im && atomic_fetch_sub(&im->refs, 1) == 1)
		image_free(im);
}

static struct image *image_new(struct engine *eng, const char *name, bool dir)
{
	struct images *st = eng->images;
	if (st->next_id > IMAGE_ID_MAX)
		return NULL;
	struct image *im = calloc(1, sizeof(*im));
	if (!im)
		return NULL;
	atomic_init(&im->refs, 1);
	im->id = st->next_id++;
	im->eng = eng;
	snprintf(im->name, sizeof(im->name), "%s", name);
	im->dir = dir;
	im->created_wall_usec = wall_usec();
	im->next = st->list;
	st->list = im;
	return im;
}

static void unlink_image(struct engine *eng, struct image *im)
{
	struct images *st = eng->images;
	for (struct image **p = &st->list; *p; p = &(*p)->next)
		if (*p == im) {
			*p = im->next;
			image_put(im);
			return;
		}
}

static bool is_dir_image(struct engine *eng, const char *name, struct stat *out)
{
	char path[PATH_MAX + 80];
	struct stat s;
	snprintf(path, sizeof(path), "%s/%s", eng->o.images_dir, name);
	if (stat(path, &s) < 0 || !S_ISDIR(s.st_mode))
		return false;
	if (out)
		*out = s;
	return true;
}

/* The directories of --images as images: new ones added, gone ones dropped. */
static void sync_dirs(struct engine *eng)
{
	struct images *st = eng->images;
	for (struct image *im = st->list, *next; im; im = next) {
		next = im->next;
		if (im->dir && !is_dir_image(eng, im->name, NULL))
			unlink_image(eng, im);
	}
	DIR *d = opendir(eng->o.images_dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat s;
		if (de->d_name[0] == '.' || ctl_check_name(de->d_name, NULL) < 0 || find(eng, de->d_name) ||
		    !is_dir_image(eng, de->d_name, &s))
			continue;
		struct image *im = image_new(eng, de->d_name, true);
		if (!im)
			break;
		im->state = IMG_READY;
		im->created_wall_usec = (uint64_t)s.st_mtim.tv_sec * 1000000u +
					(uint64_t)s.st_mtim.tv_nsec / 1000u;
		snprintf(im->source, sizeof(im->source), "dir");
	}
	closedir(d);
}

/* The image called name, the directories looked at again when it is not
 * known or its directory went. */
static struct image *find_fresh(struct engine *eng, const char *name)
{
	struct image *im = find(eng, name);
	if (!im || (im->dir && !is_dir_image(eng, name, NULL))) {
		sync_dirs(eng);
		im = find(eng, name);
	}
	return im;
}

/* --- the FUSE layer's view --- */

uint32_t image_lookup(struct engine *eng, const char *name)
{
	struct images *st = eng->images;
	pthread_mutex_lock(&st->lock);
	struct image *im = find_fresh(eng, name);
	uint32_t id = im ? im->id : 0;
	pthread_mutex_unlock(&st->lock);
	return id;
}

bool image_exists(void *eng, const char *name) { return image_lookup(eng, name) != 0; }

struct image *image_get(struct engine *eng, uint32_t id)
{
	struct images *st = eng->images;
	pthread_mutex_lock(&st->lock);
	struct image *im = find_id(eng, id);
	if (im)
		atomic_fetch_add(&im->refs, 1);
	pthread_mutex_unlock(&st->lock);
	return im;
}

uint64_t image_created_wall_usec(const struct image *im) { return im->created_wall_usec; }

int image_list(struct engine *eng, char (**names)[64], uint32_t **ids, size_t *n)
{
	struct images *st = eng->images;
	pthread_mutex_lock(&st->lock);
	sync_dirs(eng);
	size_t cnt = 0;
	for (struct image *im = st->list; im; im = im->next)
		cnt++;
	*names = malloc((cnt ? cnt : 1) * sizeof(**names));
	*ids = malloc((cnt ? cnt : 1) * sizeof(**ids));
	int r = *names && *ids ? 0 : -ENOMEM;
	size_t i = 0;
	for (struct image *im = st->list; im && r == 0; im = im->next, i++) {
		snprintf((*names)[i], 64, "%s", im->name);
		(*ids)[i] = im->id;
	}
	pthread_mutex_unlock(&st->lock);
	if (r < 0) {
		free(*names);
		free(*ids);
		return r;
	}
	*n = cnt;
	return 0;
}

static void iso_time(uint64_t usec, char out[32])
{
	time_t sec = (time_t)(usec / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int image_show_config(struct image *im, struct buf *b)
{
	struct engine *eng = im->eng;
	struct images *st = eng->images;
	pthread_mutex_lock(&st->lock);
	if (im->config) {
		int r = buf_printf(b, "%s\n", im->config);
		pthread_mutex_unlock(&st->lock);
		return r;
	}
	char created[32], path[PATH_MAX + 80];
	iso_time(im->created_wall_usec, created);
	snprintf(path, sizeof(path), "%s/%s", eng->o.images_dir, im->name);
	json_t *j = json_pack("{s:s, s:s, s:o, s:n, s:n, s:[], s:s, s:I}", "name", im->name,
			      "source", im->source, "path", im->dir ? json_string(path) : json_null(),
			      "digest", "size", "layers", "created", created, "created_usec",
			      (json_int_t)im->created_wall_usec);
	pthread_mutex_unlock(&st->lock);
	char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	int r = text ? buf_printf(b, "%s\n", text) : -ENOMEM;
	free(text);
	return r;
}

int image_show_status(struct image *im, struct buf *b)
{
	struct images *st = im->eng->images;
	pthread_mutex_lock(&st->lock);
	int s = im->state;
	pthread_mutex_unlock(&st->lock);
	return buf_printf(b, "%s\n", state_names[s]);
}

int image_show_progress(struct image *im, struct buf *b)
{
	return buf_printf(b, "done_bytes %" PRIu64 "\ntotal_bytes %" PRIu64 "\n",
			  atomic_load(&im->done_bytes), atomic_load(&im->total_bytes));
}

int image_show_error(struct image *im, struct buf *b)
{
	struct images *st = im->eng->images;
	pthread_mutex_lock(&st->lock);
	int r = im->error[0] ? buf_printf(b, "%s\n", im->error) : 0;
	pthread_mutex_unlock(&st->lock);
	return r;
}

/* --- what the engine asks --- */

static int check_locked(struct engine *eng, const char *name, struct image **out, struct err *e)
{
	struct image *im = find_fresh(eng, name);
	if (!im || im->removing)
		return err_set(e, -ENOENT, "unknown image '%s' (see /images)", name);
	if (im->state == IMG_IMPORTING)
		return err_set(e, -EBUSY, "image '%s' is still being imported (see images/%s/status)",
			       name, name);
	if (im->state == IMG_FAILED)
		return err_set(e, -EBUSY, "image '%s' failed to import (see images/%s/error); remove "
			       "it with rmdir", name, name);
	if (im->dir) {
		char path[PATH_MAX + 80];
		snprintf(path, sizeof(path), "%s/%s", eng->o.images_dir, name);
		if (strpbrk(path, ",:\\"))
			return err_set(e, -EINVAL, "image path %s has a character overlayfs cannot take",
				       path);
	}
	*out = im;
	return 0;
}

/* Without a started store (unit tests), an image is a directory of --images. */
static int check_dir_only(struct engine *eng, const char *name, struct err *e)
{
	char path[PATH_MAX + 80];
	if (!is_dir_image(eng, name, NULL))
		return err_set(e, -ENOENT, "unknown image '%s' (see /images)", name);
	snprintf(path, sizeof(path), "%s/%s", eng->o.images_dir, name);
	if (strpbrk(path, ",:\\"))
		return err_set(e, -EINVAL, "image path %s has a character overlayfs cannot take", path);
	return 0;
}

int engine_image_check(struct engine *eng, const char *image, struct err *e)
{
	struct images *st = eng->images;
	if (!st->started)
		return check_dir_only(eng, image, e);
	struct image *im;
	pthread_mutex_lock(&st->lock);
	int r = check_locked(eng, image, &im, e);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int image_pin(struct engine *eng, const char *name, struct err *e)
{
	struct images *st = eng->images;
	if (!st->started)
		return check_dir_only(eng, name, e);
	struct image *im;
	pthread_mutex_lock(&st->lock);
	int r = check_locked(eng, name, &im, e);
	if (r == 0)
		im->pins++;
	pthread_mutex_unlock(&st->lock);
	return r;
}

void image_unpin(struct engine *eng, const char *name)
{
	struct images *st = eng->images;
	pthread_mutex_lock(&st->lock);
	struct image *im = find(eng, name);
	if (im && im->pins > 0)
		im->pins--;
	pthread_mutex_unlock(&st->lock);
}

void image_resolve(struct engine *eng, const char *name, struct vmm_inst *vm)
{
	struct images *st = eng->images;
	snprintf(vm->image_dir, sizeof(vm->image_dir), "%s/%s", eng ? eng->o.images_dir : "", name);
	vm->nimage_layers = 0;
	vm->user[0] = '\0';
	if (!st->started)
		return;
	pthread_mutex_lock(&st->lock);
	struct image *im = find(eng, name);
	json_t *j = NULL;
	if (im && !im->dir && im->state == IMG_READY) {
		for (int i = 0; i < im->nlowers; i++)
			snprintf(vm->image_layers[i], sizeof(vm->image_layers[i]), "%s",
				 im->lowers[im->nlowers - 1 - i]);
		vm->nimage_layers = im->nlowers;
		j = im->config ? json_loads(im->config, 0, NULL) : NULL;
	}
	pthread_mutex_unlock(&st->lock);
	/* The config's User, checked at import; a config that no longer passes
	 * (written by an older daemon, or edited) runs as root, said in the log. */
	const char *user = json_string_value(json_object_get(json_object_get(j, "config"), "User"));
	if (user && ctl_user_ok(user) && strlen(user) <= VMM_USER_MAX)
		snprintf(vm->user, sizeof(vm->user), "%s", user);
	else if (user)
		log_warn("image %s: its User '%.64s' is not one sandboxfs runs as; commands run as root",
			 name, user);
	json_decref(j);
}

/* --- layers: made once, kept while an image lists them --- */

static bool layer_listed(struct engine *eng, const char *id)
{
	struct images *st = eng->images;
	for (int i = 0; i < st->nunpacking; i++)
		if (strcmp(st->unpacking[i], id) == 0)
			return true;
	for (struct image *im = st->list; im; im = im->next) {
		for (int i = 0; i < im->nlowers; i++)
			if (strcmp(im->lowers[i], id) == 0)
				return true;
		for (int i = 0; i < im->nheld; i++)
			if (strcmp(im->held[i], id) == 0)
				return true;
	}
	return false;
}

/* Removes the layer dirs nothing lists: moved aside under the lock (so an
 * import that looks next makes the layer anew), removed outside it. */
static void gc_layers(struct engine *eng)
{
	struct images *st = eng->images;
	char (*gone)[LAYER_ID_MAX + 32] = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&st->lock);
	DIR *d = opendir(st->layers);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || layer_listed(eng, de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			void *g = realloc(gone, cap * sizeof(*gone));
			if (!g)
				break;
			gone = g;
		}
		char from[PATH_MAX + 300], to[PATH_MAX + 300];
		snprintf(gone[n], sizeof(gone[n]), "gc-%" PRIu64, ++st->tmp_seq);
		snprintf(from, sizeof(from), "%s/%s", st->layers, de->d_name);
		snprintf(to, sizeof(to), "%s/%s", st->tmp, gone[n]);
		if (rename(from, to) == 0)
			n++;
		else
			log_warn("images: cannot move the unused layer %s aside: %s", de->d_name,
				 strerror(errno));
	}
	if (d)
		closedir(d);
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 300];
		snprintf(path, sizeof(path), "%s/%s", st->tmp, gone[i]);
		vmm_remove_tree(path);
	}
	if (n)
		log_info("images: removed %zu layer(s) no image lists", n);
	free(gone);
}

/* A temporary dir in tmp/ (st->lock not held). */
static void tmp_path(struct engine *eng, const char *kind, char *out, size_t cap)
{
	struct images *st = eng->images;
	pthread_mutex_lock(&st->lock);
	uint64_t seq = ++st->tmp_seq;
	pthread_mutex_unlock(&st->lock);
	snprintf(out, cap, "%s/%s-%" PRIu64, st->tmp, kind, seq);
}

/* Holds layer id for im; then, unless another import is making it, 1 when it
 * is there already, or 0 and the caller makes it (then calls made_layer). */
static int want_layer(struct engine *eng, struct image *im, const char *id)
{
	struct images *st = eng->images;
	char path[PATH_MAX + 100];
	snprintf(path, sizeof(path), "%s/%s", st->layers, id);
	pthread_mutex_lock(&st->lock);
	if (im->nheld < HELD_MAX)
		snprintf(im->held[im->nheld++], LAYER_ID_MAX, "%s", id);
	for (;;) {
		bool busy = false;
		for (int i = 0; i < st->nunpacking; i++)
			busy |= strcmp(st->unpacking[i], id) == 0;
		if (!busy)
			break;
		pthread_cond_wait(&st->cond, &st->lock);
	}
	int r = access(path, F_OK) == 0;
	if (!r && st->nunpacking < UNPACKING_MAX)
		snprintf(st->unpacking[st->nunpacking++], LAYER_ID_MAX, "%s", id);
	pthread_mutex_unlock(&st->lock);
	return r;
}

static void made_layer(struct engine *eng, const char *id)
{
	struct images *st = eng->images;
	pthread_mutex_lock(&st->lock);
	for (int i = 0; i < st->nunpacking; i++)
		if (strcmp(st->unpacking[i], id) == 0) {
			st->nunpacking--;
			memcpy(st->unpacking[i], st->unpacking[st->nunpacking], LAYER_ID_MAX);
			break;
		}
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/* The temporary dir tmp, complete, becomes layers/id (synced first). */
static int place_layer(struct engine *eng, const char *tmp, int fd, const char *id, struct err *e)
{
	struct images *st = eng->images;
	char path[PATH_MAX + 100];
	snprintf(path, sizeof(path), "%s/%s", st->layers, id);
	if (syncfs(fd) < 0)
		return err_set(e, -errno, "cannot sync %s: %s", tmp, strerror(errno));
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
		return err_set(e, -errno, "cannot move the layer into %s: %s", path, strerror(errno));
	return 0;
}

/* The room an unpack may take on STATE: what is free, less a reserve. */
static int room(struct engine *eng, struct unpack_limits *lim, struct err *e)
{
	struct images *st = eng->images;
	struct statvfs sv;
	if (statvfs(st->dir, &sv) < 0)
		return err_set(e, -errno, "cannot stat %s: %s", st->dir, strerror(errno));
	uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize, avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t reserve = total / 32 < RESERVE_MAX_BYTES ? total / 32 : RESERVE_MAX_BYTES;
	lim->reserve_bytes = reserve;
	lim->where = st->dir;
	lim->max_bytes = avail > reserve ? avail - reserve : 0;
	lim->max_entries = ENTRIES_MAX;
	if (sv.f_files) {
		uint64_t keep = sv.f_files / 64, fav = (uint64_t)sv.f_favail;
		uint64_t inodes = fav > keep ? fav - keep : 0;
		if (inodes < lim->max_entries)
			lim->max_entries = inodes;
	}
	if (lim->max_bytes == 0)
		return err_set(e, -ENOSPC, "%s has %" PRIu64 " MB free, no more than the %" PRIu64
			       " MB kept free", st->dir, avail >> 20, reserve >> 20);
	return 0;
}

static int unpack_one(struct engine *eng, struct image *im, struct oci_src *src,
		      const struct oci_desc *d, const char *diff_id, const char *id, struct err *e)
{
	char tmp[PATH_MAX + 64];
	struct unpack_limits lim = {.cancel = &im->cancel};
	struct unpack_stats us;
	struct oci_layer l;
	struct tar t;
	int fd = -1, r = room(eng, &lim, e);
	tmp_path(eng, "L", tmp, sizeof(tmp));
	if (r < 0)
		return r;
	if (mkdir(tmp, 0755) < 0 || (fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = err_set(e, -errno, "cannot make %s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((r = oci_layer_open(src, d, &l, &im->done_bytes, &im->cancel, e)) < 0)
		goto out;
	l.max_out = lim.max_bytes + (1ull << 30);
	struct tar_src ts = {.read = oci_layer_read, .arg = &l};
	tar_init(&t, &ts);
	r = unpack_layer(&t, fd, &lim, &us, e);
	if (r == 0)
		r = oci_layer_finish(&l, diff_id, e);
	tar_free(&t);
	oci_layer_close(&l);
	if (r == 0)
		r = place_layer(eng, tmp, fd, id, e);
	if (r == 0)
		log_info("image %s: layer %s unpacked: %" PRIu64 " entries, %" PRIu64 " MB, %" PRIu64
			 " xattrs", im->name, d->digest, us.entries, us.bytes >> 20, us.xattrs);
	if (r == 0 && us.xattrs_skipped)
		log_warn("image %s: layer %s: %" PRIu64 " xattrs not set (only user.* and "
			 "security.capability are), the first %s", im->name, d->digest,
			 us.xattrs_skipped, us.skipped);
out:
	if (fd >= 0)
		close(fd);
	if (r < 0)
		vmm_remove_tree(tmp);
	return r;
}

/* A layer of the manifest, as layers/sha256-HEX (made unless some image has
 * it): HEX the blob's digest. A legacy docker-archive layer has none of its
 * own and is checked by its diff_id (the digest of the tar it unpacks to):
 * diffid-HEX, a name of its own, so that a blob whose digest equals another
 * layer's diff_id (bytes that read as a gzip and as a tar) never stands for
 * it. */
static int get_layer(struct image *im, struct oci_src *src, const struct oci_desc *d,
		     const char *diff_id, char id[LAYER_ID_MAX], int i, int n, struct err *e)
{
	struct engine *eng = im->eng;
	snprintf(id, LAYER_ID_MAX, "%s-%s", d->by_diff_id ? "diffid" : "sha256", d->digest + 7);
	if (want_layer(eng, im, id) == 1) {
		atomic_fetch_add(&im->done_bytes, d->size);
		return 0;
	}
	int r = unpack_one(eng, im, src, d, diff_id, id, e);
	made_layer(eng, id);
	return r < 0 ? err_wrap(e, "layer %d of %d (%.19s...)", i + 1, n, d->digest) : 0;
}

/* The layers past the first LOWERS_MAX-1 (bottom first), merged into one
 * dir as overlayfs would show them stacked: merged-<sha256 of their ids>. */
static int merge_top(struct engine *eng, struct image *im, char ids[][LAYER_ID_MAX], int n,
		     char out[LAYER_ID_MAX], struct err *e)
{
	struct images *st = eng->images;
	struct sha256 h;
	uint8_t dg[SHA256_BYTES];
	char hex[SHA256_HEX], tmp[PATH_MAX + 64], src[PATH_MAX + 100];
	sha256_init(&h);
	for (int i = LOWERS_MAX - 1; i < n; i++)
		sha256_update(&h, ids[i], strlen(ids[i]) + 1);
	sha256_final(&h, dg);
	sha256_hex(dg, hex);
	snprintf(out, LAYER_ID_MAX, "merged-%s", hex);
	if (want_layer(eng, im, out) == 1)
		return 0;
	tmp_path(eng, "M", tmp, sizeof(tmp));
	snprintf(src, sizeof(src), "%s/%s", st->layers, ids[LOWERS_MAX - 1]);
	int r = vmm_copy_tree(src, tmp, "flattening the image's top layers", 0, e);
	for (int i = LOWERS_MAX; i < n && r == 0; i++) {
		snprintf(src, sizeof(src), "%s/%s", st->layers, ids[i]);
		r = vmm_merge_layer(src, tmp, e);
	}
	int fd = r == 0 ? open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (r == 0 && fd < 0)
		r = err_set(e, -errno, "cannot open %s: %s", tmp, strerror(errno));
	if (r == 0)
		r = place_layer(eng, tmp, fd, out, e);
	if (fd >= 0)
		close(fd);
	if (r < 0)
		vmm_remove_tree(tmp);
	made_layer(eng, out);
	return r;
}

/* A layer listed twice (empty layers often are) is stacked once, where it is
 * highest: the lower copy shows nothing the higher one does not cover. */
static int dedup(char ids[][LAYER_ID_MAX], int n)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		bool later = false;
		for (int j = i + 1; j < n && !later; j++)
			later = strcmp(ids[i], ids[j]) == 0;
		if (!later)
			memmove(ids[k++], ids[i], LAYER_ID_MAX);
	}
	return k;
}

/* --- import --- */

struct import {
	struct image *im; /* pinned */
	char kind[16];
	char path[PATH_MAX]; /* docker: the reference after docker:// */
	char tag[OCI_TAG_MAX];
	bool tls_verify_off; /* docker: tls-verify=false (plain HTTP or any certificate) */
	char pulled[PATH_MAX]; /* docker: tmp/pull-N, where skopeo writes (removed after) */
};

/* The manifest's descriptor: from index.json, through one nested index. */
static int find_manifest(struct engine *eng, struct import *imp, struct oci_src *src,
			 struct oci_desc *md, struct err *e)
{
	char *text = NULL;
	size_t len;
	int r = oci_read_json(src, "index.json", &text, &len, e);
	if (r == 0)
		r = oci_parse_index(text, len, imp->tag, oci_host_arch(), md, e);
	free(text);
	if (r < 0)
		return err_wrap(e, "index.json");
	if (!oci_is_index(md))
		return 0;
	struct oci_desc nested = *md;
	if ((r = oci_blob_slurp(src, &nested, &text, &len, &imp->im->done_bytes, e)) == 0)
		r = oci_parse_index(text, len, "", oci_host_arch(), md, e);
	free(text);
	if (r == 0 && oci_is_index(md))
		r = err_set(e, -EOPNOTSUPP, "an index nested in an index is not supported");
	return r < 0 ? err_wrap(e, "the index %.19s...", nested.digest) : 0;
}

/* The image config m names (its blob counted in total_bytes with the
 * layers'), parsed and checked against the host and the manifest. */
static int read_config(struct import *imp, struct oci_src *src, struct oci_manifest *m,
		       struct oci_image_config *c, char **out, size_t *out_len, struct err *e)
{
	char *text = NULL;
	size_t len;
	uint64_t total = atomic_load(&imp->im->done_bytes) + m->config.size;
	for (int i = 0; i < m->nlayers; i++)
		total += m->layers[i].size;
	atomic_store(&imp->im->total_bytes, total);
	int r = oci_blob_slurp(src, &m->config, &text, &len, &imp->im->done_bytes, e);
	if (r == 0)
		r = oci_parse_config(text, len, c, e);
	if (r == 0 && out) {
		*out = text;
		*out_len = len;
	} else {
		free(text);
	}
	if (r < 0)
		return err_wrap(e, "the image config %.19s...", m->config.digest[0] ? m->config.digest
									  : m->config.member);
	if (c->os[0] && strcmp(c->os, "linux") != 0)
		return err_set(e, -EINVAL, "the image is for os '%s', not linux", c->os);
	if (c->arch[0] && strcmp(c->arch, oci_host_arch()) != 0)
		return err_set(e, -EINVAL, "the image is for architecture '%s'; this host is %s",
			       c->arch, oci_host_arch());
	if (c->ndiff_ids && c->ndiff_ids != m->nlayers)
		return err_set(e, -EINVAL, "the image config lists %d diff_ids for the manifest's %d "
			       "layers", c->ndiff_ids, m->nlayers);
	return 0;
}

static int read_manifest(struct engine *eng, struct import *imp, struct oci_src *src,
			 struct oci_desc *md, struct oci_manifest *m, struct oci_image_config *c,
			 struct err *e)
{
	char *text = NULL;
	size_t len;
	int r = find_manifest(eng, imp, src, md, e);
	if (r < 0)
		return r;
	if ((r = oci_blob_slurp(src, md, &text, &len, &imp->im->done_bytes, e)) == 0)
		r = oci_parse_manifest(text, len, m, e);
	free(text);
	if (r < 0)
		return err_wrap(e, "the manifest %.19s...", md->digest);
	return read_config(imp, src, m, c, NULL, NULL, e);
}

/* A docker-archive: manifest.json names the config and the layers by their
 * members. A layer whose name is not its digest (docker's ID/layer.tar) is
 * known by its diff_id, checked as it is unpacked; the image's digest is its
 * config's (docker's image ID). */
static int read_docker(struct engine *eng, struct import *imp, struct oci_src *src,
		       struct oci_desc *md, struct oci_manifest *m, struct oci_image_config *c,
		       struct err *e)
{
	char *text = NULL, hex[SHA256_HEX];
	size_t len;
	int r = oci_read_json(src, "manifest.json", &text, &len, e);
	if (r == 0)
		r = oci_parse_docker_manifest(text, len, imp->tag, m, e);
	free(text);
	text = NULL;
	if (r == 0)
		r = oci_docker_resolve(src, m, e);
	if (r < 0)
		return r; /* the sentences name manifest.json */
	if ((r = read_config(imp, src, m, c, &text, &len, e)) < 0)
		return r;
	memset(md, 0, sizeof(*md));
	sha256_hex_of(text, len, hex);
	snprintf(md->digest, sizeof(md->digest), "sha256:%s", hex);
	free(text);
	for (int i = 0; i < m->nlayers; i++) {
		if (!m->layers[i].by_diff_id)
			continue;
		if (c->ndiff_ids != m->nlayers)
			return err_set(e, -EINVAL, "layer %d ('%.80s') has no digest of its own and the "
				       "image config lists no diff_ids to check it by", i + 1,
				       m->layers[i].member);
		snprintf(m->layers[i].digest, OCI_DIGEST_MAX, "%s", c->diff_ids[i]);
	}
	return 0;
}

/* The config file of a ready image: what `config` shows, and what lists its
 * layers for the next daemon. */
static char *config_text(struct import *imp, const struct oci_desc *md,
			 const struct oci_manifest *m, struct oci_image_config *c,
			 char lowers[][LAYER_ID_MAX], int nlowers)
{
	char created[32];
	uint64_t size = 0;
	json_t *layers = json_array(), *lw = json_array();
	for (int i = 0; i < m->nlayers; i++) {
		json_array_append_new(layers, json_string(m->layers[i].digest));
		size += m->layers[i].size;
	}
	for (int i = 0; i < nlowers; i++)
		json_array_append_new(lw, json_string(lowers[i]));
	iso_time(imp->im->created_wall_usec, created);
	json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:s, s:I, s:o, s:s, s:s, s:O}",
			      "name", imp->im->name, "source", imp->im->source, "digest", md->digest,
			      "size", (json_int_t)size, "layers", layers, "lowers", lw, "created",
			      created, "created_usec", (json_int_t)imp->im->created_wall_usec,
			      "image_created", c->created[0] ? json_string(c->created) : json_null(),
			      "os", c->os[0] ? c->os : "linux", "architecture",
			      c->arch[0] ? c->arch : oci_host_arch(), "config", c->run);
	char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	return text;
}

/* --- registry pulls: skopeo copies the image into an OCI layout in tmp/ --- */

/* skopeo: SANDBOXFS_SKOPEO (tests: a host without it), else Debian's. */
static const char *skopeo_bin(void)
{
	const char *env = getenv("SANDBOXFS_SKOPEO");
	return env && *env ? env : "/usr/bin/skopeo";
}

static uint64_t pull_timeout_usec(void)
{
	const char *env = getenv("SANDBOXFS_PULL_TIMEOUT");
	unsigned long long sec = env && *env ? strtoull(env, NULL, 10) : 0;
	if (sec > 7 * 86400) /* a week: no overflow, and still a bound */
		sec = 7 * 86400;
	return (sec ? sec : PULL_TIMEOUT_SEC) * 1000000ull;
}

/* The bytes skopeo has written so far (its blobs, finished or not), as the
 * import's progress while it pulls; never going back. */
static void pull_tick(void *arg)
{
	struct import *imp = arg;
	char dirs[2][PATH_MAX + 32];
	uint64_t sum = 0;
	snprintf(dirs[0], sizeof(dirs[0]), "%s", imp->path);
	snprintf(dirs[1], sizeof(dirs[1]), "%s/blobs/sha256", imp->path);
	for (int i = 0; i < 2; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			struct stat sb;
			if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(sb.st_mode))
				sum += (uint64_t)sb.st_size;
		}
		if (d)
			closedir(d);
	}
	if (sum > atomic_load(&imp->im->done_bytes))
		atomic_store(&imp->im->done_bytes, sum);
}

/* docker://REF into tmp/pull-N/oci (a fixed argv, no shell, no host
 * credentials, bounded in time: skopeo ends itself too, should the daemon
 * die first); then the import reads that layout as oci:DIR. */
static int pull(struct import *imp, struct err *e)
{
	struct engine *eng = imp->im->eng;
	char ref[PATH_MAX + 16], dest[PATH_MAX + 16], timeout[32], home[PATH_MAX + 16],
		tmpdir[PATH_MAX + 16], what[PATH_MAX + 64];
	tmp_path(eng, "pull", imp->pulled, sizeof(imp->pulled));
	if (mkdir(imp->pulled, 0700) < 0)
		return err_set(e, -errno, "cannot make %s: %s", imp->pulled, strerror(errno));
	uint64_t limit = pull_timeout_usec();
	snprintf(ref, sizeof(ref), "docker://%s", imp->path);
	snprintf(what, sizeof(what), "the pull of %s", ref);
	snprintf(timeout, sizeof(timeout), "%llus", (unsigned long long)(limit / 1000000) + 10);
	snprintf(home, sizeof(home), "HOME=%s", imp->pulled);
	snprintf(tmpdir, sizeof(tmpdir), "TMPDIR=%s", imp->pulled);
	snprintf(imp->path, sizeof(imp->path), "%s/oci", imp->pulled);
	snprintf(dest, sizeof(dest), "oci:%s", imp->path);
	char *argv[12] = {"skopeo", "--command-timeout", timeout, "copy", "--quiet",
			  "--src-no-creds"};
	int n = 6;
	if (imp->tls_verify_off)
		argv[n++] = "--src-tls-verify=false";
	argv[n++] = ref;
	argv[n++] = dest;
	argv[n] = NULL;
	const char *const env[] = {home, tmpdir, NULL};
	const char *const tools[] = {skopeo_bin()};
	struct vmm_tool_opts o = {.timeout_usec = limit, .cancel = &imp->im->cancel, .env = env,
				  .tick = pull_tick, .arg = imp, .reason = pull_reason};
	uint64_t t0 = now_usec();
	int r = vmm_run_tool_opts(tools, 1, argv, "skopeo", what, &o, e);
	if (r < 0)
		return r;
	pull_tick(imp);
	log_info("image %s: pulled %s in %" PRIu64 " ms (%" PRIu64 " bytes)", imp->im->name, ref,
		 (now_usec() - t0) / 1000, atomic_load(&imp->im->done_bytes));
	snprintf(imp->kind, sizeof(imp->kind), "oci");
	imp->tag[0] = '\0'; /* the layout holds the one manifest skopeo chose */
	return 0;
}

static int do_import(struct engine *eng, struct import *imp, struct err *e)
{
	struct images *st = eng->images;
	struct image *im = imp->im;
	struct oci_src src;
	struct oci_desc md;
	struct oci_manifest *m = calloc(1, sizeof(*m));
	struct oci_image_config *c = calloc(1, sizeof(*c));
	char (*ids)[LAYER_ID_MAX] = calloc(OCI_LAYERS_MAX, LAYER_ID_MAX);
	char lowers[LOWERS_MAX][LAYER_ID_MAX], path[PATH_MAX + 80];
	char *text = NULL;
	int nlowers = 0, r;
	if (!m || !c || !ids) {
		free(m);
		free(c);
		free(ids);
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (!strcmp(imp->kind, "docker") && (r = pull(imp, e)) < 0)
		goto out;
	if ((r = oci_src_open(imp->kind, imp->path, &src, e)) < 0)
		goto out;
	r = !strcmp(imp->kind, "docker-archive") ? read_docker(eng, imp, &src, &md, m, c, e)
						 : read_manifest(eng, imp, &src, &md, m, c, e);
	for (int i = 0; i < m->nlayers && r == 0; i++)
		r = get_layer(im, &src, &m->layers[i], c->ndiff_ids ? c->diff_ids[i] : "", ids[i], i,
			      m->nlayers, e);
	oci_src_close(&src);
	if (r < 0)
		goto out;
	int n = dedup(ids, m->nlayers);
	nlowers = n < LOWERS_MAX ? n : LOWERS_MAX;
	memcpy(lowers, ids, (size_t)nlowers * LAYER_ID_MAX);
	if (n > LOWERS_MAX && (r = merge_top(eng, im, ids, n, lowers[LOWERS_MAX - 1], e)) < 0)
		goto out;
	if (!(text = config_text(imp, &md, m, c, lowers, nlowers))) {
		r = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s.json", st->configs, im->name);
	if ((r = write_file_atomic(path, text, strlen(text), true)) < 0) {
		r = err_set(e, r, "cannot write %s: %s", path, strerror(-r));
		goto out;
	}
	pthread_mutex_lock(&st->lock);
	im->config = text;
	text = NULL;
	memcpy(im->lowers, lowers, sizeof(lowers));
	im->nlowers = nlowers;
	pthread_mutex_unlock(&st->lock);
out:
	free(text);
	json_decref(c->run);
	free(c);
	free(m);
	free(ids);
	return r;
}

static void import_job(void *arg)
{
	struct import *imp = arg;
	struct engine *eng = imp->im->eng;
	struct images *st = eng->images;
	struct image *im = imp->im;
	struct err e = {0};
	uint64_t t0 = now_usec();
	int r = do_import(eng, imp, &e);
	if (imp->pulled[0])
		vmm_remove_tree(imp->pulled);
	pthread_mutex_lock(&st->lock);
	st->imports--;
	im->state = r == 0 ? IMG_READY : IMG_FAILED;
	if (r < 0)
		snprintf(im->error, sizeof(im->error), "%s", e.msg);
	im->nheld = 0;
	pthread_mutex_unlock(&st->lock);
	if (r == 0)
		log_info("image %s: imported from %s in %" PRIu64 " ms (%d layer dirs)", im->name,
			 im->source, (now_usec() - t0) / 1000, im->nlowers);
	else
		log_warn("image %s: the import from %s failed: %s", im->name, im->source, e.msg);
	gc_layers(eng);
	image_put(im);
	free(imp);
}

#define SOURCE_FORMS                                                                   \
	"oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME[:TAG]] or "   \
	"docker://HOST[:PORT]/REPO[:TAG|@DIGEST]"

/* docker://REF: checked here, pulled by the worker. */
static int parse_docker(const char *ref, struct import *imp, struct err *e)
{
	struct pull_ref pr;
	int r = pull_parse_ref(ref, &pr, e);
	if (r < 0)
		return err_wrap(e, "source docker://%.200s", ref);
	if (access(skopeo_bin(), X_OK) < 0)
		return err_set(e, -EOPNOTSUPP, "a registry pull needs skopeo (%s), and this host has "
			       "none (apt-get install skopeo)", skopeo_bin());
	snprintf(imp->kind, sizeof(imp->kind), "docker");
	snprintf(imp->path, sizeof(imp->path), "%s", ref);
	return 0;
}

/* SOURCE: one of SOURCE_FORMS, an absolute path or a registry reference. */
static int parse_source(const char *source, struct import *imp, struct err *e)
{
	if (!strncmp(source, "docker://", 9))
		return parse_docker(source + 9, imp, e);
	static const char *const kinds[] = {"oci-archive", "docker-archive", "oci"};
	const char *rest = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds) && !rest; i++) {
		size_t n = strlen(kinds[i]);
		if (!strncmp(source, kinds[i], n) && source[n] == ':') {
			snprintf(imp->kind, sizeof(imp->kind), "%s", kinds[i]);
			rest = source + n + 1;
		}
	}
	if (!rest)
		return err_set(e, -EINVAL, "source '%.200s' is not " SOURCE_FORMS, source);
	const char *colon = strchr(rest, ':');
	size_t plen = colon ? (size_t)(colon - rest) : strlen(rest);
	if (rest[0] != '/')
		return err_set(e, -EINVAL, "the path of source '%.200s' is not absolute", source);
	if (plen >= sizeof(imp->path) || (colon && strlen(colon + 1) >= sizeof(imp->tag)))
		return err_set(e, -EINVAL, "source '%.200s' is too long", source);
	if (colon && !colon[1])
		return err_set(e, -EINVAL, "source '%.200s' has an empty tag", source);
	memcpy(imp->path, rest, plen);
	imp->path[plen] = '\0';
	snprintf(imp->tag, sizeof(imp->tag), "%s", colon ? colon + 1 : "");
	struct stat s;
	bool dir = !strcmp(imp->kind, "oci");
	if (stat(imp->path, &s) < 0)
		return err_set(e, -ENOENT, "source %.200s: %s", imp->path, strerror(errno));
	if (dir ? !S_ISDIR(s.st_mode) : !S_ISREG(s.st_mode))
		return err_set(e, -EINVAL, "source %.200s is not %s", imp->path,
			       dir ? "a directory (an OCI layout)"
			       : !strcmp(imp->kind, "oci-archive") ? "a file (a tar of an OCI layout)"
								   : "a file (a tar docker save wrote)");
	return 0;
}

/* The import line's option: tls-verify=false|true, for a registry. */
static int parse_option(const char *opt, struct import *imp, struct err *e)
{
	if (strcmp(opt, "tls-verify=false") != 0 && strcmp(opt, "tls-verify=true") != 0)
		return err_set(e, -EINVAL, "unknown import option '%.64s' (tls-verify=false|true)",
			       opt);
	if (strcmp(imp->kind, "docker") != 0)
		return err_set(e, -EINVAL, "tls-verify= is for a registry (docker://) source");
	imp->tls_verify_off = !strcmp(opt, "tls-verify=false");
	return 0;
}

/* Validates, adds the image as importing and queues the work: returns at once. */
static int import_start(struct engine *eng, const char *name, const char *source, const char *opt,
			struct err *e)
{
	struct images *st = eng->images;
	int r = ctl_check_name(name, NULL);
	if (r < 0)
		return err_set(e, -EINVAL, "image name '%.80s' is not valid ([A-Za-z0-9_.-], 1 to "
			       "63 characters, not starting with '.', not a top-level file name)", name);
	struct import *imp = calloc(1, sizeof(*imp));
	if (!imp)
		return err_set(e, -ENOMEM, "out of memory");
	if ((r = parse_source(source, imp, e)) < 0 || (opt && (r = parse_option(opt, imp, e)) < 0)) {
		free(imp);
		return r;
	}
	pthread_mutex_lock(&st->lock);
	struct image *im = NULL;
	if (!st->started || atomic_load(&st->quitting))
		r = err_set(e, -ESHUTDOWN, "the daemon is not taking imports now");
	else if (find_fresh(eng, name) || is_dir_image(eng, name, NULL))
		r = err_set(e, -EEXIST, "image '%s' already exists", name);
	else if (st->imports >= IMPORTS_MAX)
		r = err_set(e, -EBUSY, "%d imports are running; wait for one to end", st->imports);
	else if (!(im = image_new(eng, name, false)))
		r = err_set(e, -ENOSPC, "no more images can be made until the daemon restarts");
	else if (!(im->held = calloc(HELD_MAX, LAYER_ID_MAX)))
		r = err_set(e, -ENOMEM, "out of memory");
	if (r == 0) {
		im->state = IMG_IMPORTING;
		snprintf(im->source, sizeof(im->source), "%s", source);
		st->imports++;
		atomic_fetch_add(&im->refs, 1);
		imp->im = im;
	} else if (im) {
		unlink_image(eng, im);
	}
	pthread_mutex_unlock(&st->lock);
	if (r < 0) {
		free(imp);
		return r;
	}
	if ((r = pool_submit(eng, import_job, imp)) < 0) {
		pthread_mutex_lock(&st->lock);
		st->imports--;
		unlink_image(eng, im);
		pthread_mutex_unlock(&st->lock);
		image_put(im);
		free(imp);
		return err_set(e, r, "cannot queue the import of %s", name);
	}
	log_info("image %s: importing from %s", name, source);
	return 0;
}

int images_ctl(struct engine *eng, const char *buf, size_t len)
{
	struct ctl_cmd cmd;
	struct err e = {0};
	int r = ctl_split(buf, len, &cmd, &e);
	if (r == 0 && strcmp(cmd.argv[0], "import") != 0)
		r = err_set(&e, -EINVAL, "unknown command '%.64s' (import NAME SOURCE)", cmd.argv[0]);
	else if (r == 0 && cmd.argc != 3 && cmd.argc != 4)
		r = err_set(&e, -EINVAL, "import takes a name and a source: import NAME "
			    SOURCE_FORMS " [tls-verify=false]");
	else if (r == 0)
		r = import_start(eng, cmd.argv[1], cmd.argv[2], cmd.argc == 4 ? cmd.argv[3] : NULL, &e);
	if (r < 0)
		engine_note_error(eng, "images/ctl: %s", e.msg);
	return r;
}

/* --- rmdir --- */

struct user {
	const char *image;
	char name[SBX_NAME_MAX + 1];
	const char *state;
};

static int user_one(struct reg_node *n, void *arg)
{
	struct user *u = arg;
	struct sbx *s = caa_container_of(n, struct sbx, node);
	if (strcmp(s->cfg.image, u->image) != 0)
		return 0;
	snprintf(u->name, sizeof(u->name), "%s", n->name);
	u->state = sbx_state_name(atomic_load(&s->state));
	return 1;
}

/* The image's VM root disks that no VM uses go too: on a worker, since the
 * sweep waits for a start that is choosing a disk (a build takes seconds). */
static void disks_gc_job(void *arg)
{
	vmm_root_disks_gc(arg, true);
	free(arg);
}

static void disks_gc_later(struct engine *eng, const char *name)
{
	char *copy = strdup(name);
	if (!copy || pool_submit(eng, disks_gc_job, copy) < 0) {
		log_warn("image %s: its VM root disks are left for the next sweep (at start)", name);
		free(copy);
	}
}

static int rmdir_locked(struct engine *eng, const char *name, struct image **out, struct err *e)
{
	struct image *im = find_fresh(eng, name);
	if (!im || im->removing)
		return err_set(e, -ENOENT, "no image '%s'", name);
	if (im->dir)
		return err_set(e, -EPERM, "image '%s' is the directory %s/%s (--images); remove it "
			       "there", name, eng->o.images_dir, name);
	if (im->state == IMG_IMPORTING)
		return err_set(e, -EBUSY, "image '%s' is being imported", name);
	if (im->pins)
		return err_set(e, -EBUSY, "image '%s' is being used by a create", name);
	im->removing = true;
	atomic_fetch_add(&im->refs, 1);
	*out = im;
	return 0;
}

int image_rmdir(struct engine *eng, const char *name)
{
	struct images *st = eng->images;
	struct err e = {0};
	struct image *im = NULL;
	pthread_mutex_lock(&st->lock);
	int r = rmdir_locked(eng, name, &im, &e);
	pthread_mutex_unlock(&st->lock);
	if (r == 0) {
		struct user u = {.image = name};
		char pool[SBX_NAME_MAX + 1];
		if (eng && eng->reg && reg_foreach(eng->reg, user_one, &u) && u.name[0])
			r = err_set(&e, -EBUSY, "image '%s' is used by sandbox %s (%s); remove the "
				    "sandbox first", name, u.name, u.state);
		else if (st->pool_user && st->pool_user(eng, name, pool, sizeof(pool)))
			r = err_set(&e, -EBUSY, "image '%s' is in the spec of warm pool %s", name, pool);
	}
	if (r == 0) {
		char path[PATH_MAX + 80];
		snprintf(path, sizeof(path), "%s/%s.json", st->configs, name);
		if (unlink(path) < 0 && errno != ENOENT)
			r = err_set(&e, -errno, "cannot remove %s: %s", path, strerror(errno));
	}
	if (im) {
		pthread_mutex_lock(&st->lock);
		im->removing = false;
		if (r == 0)
			unlink_image(eng, im);
		pthread_mutex_unlock(&st->lock);
		image_put(im);
	}
	if (r < 0) {
		engine_note_error(eng, "rmdir images/%s: %s", name, e.msg);
		return r;
	}
	log_info("image %s: removed", name);
	gc_layers(eng);
	disks_gc_later(eng, name);
	return 0;
}

/* --- start-up and exit --- */

/* sha256-HEX (a blob's digest), diffid-HEX (a layer known by its diff_id)
 * or merged-HEX. */
static bool lower_id_ok(const char *id)
{
	static const char *const kinds[] = {"sha256-", "diffid-", "merged-"};
	size_t n = strlen(id);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t k = strlen(kinds[i]);
		if (!strncmp(id, kinds[i], k) && n == k + 64 &&
		    strspn(id + k, "0123456789abcdef") == 64)
			return true;
	}
	return false;
}

/* An imported image from its config file: ready, or failed with why. */
static int load_one(struct engine *eng, const char *name, const char *path, struct err *e)
{
	struct images *st = eng->images;
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *lw, *v;
	size_t i;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return err_set(e, -EINVAL, "%s is not a JSON object%s%s", path, j ? "" : ": ",
			       j ? "" : je.text);
	}
	lw = json_object_get(j, "lowers");
	int r = 0;
	if (!json_is_array(lw) || json_array_size(lw) < 1 || json_array_size(lw) > LOWERS_MAX)
		r = err_set(e, -EINVAL, "%s: lowers is not a list of 1 to %d layer ids", path,
			    LOWERS_MAX);
	json_array_foreach(lw, i, v) {
		if (r == 0 && (!json_is_string(v) || !lower_id_ok(json_string_value(v))))
			r = err_set(e, -EINVAL, "%s: lowers[%zu] is not a layer id", path, i);
	}
	char *text = r == 0 ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	struct image *im = r == 0 ? image_new(eng, name, false) : NULL;
	if (r == 0 && (!text || !im))
		r = err_set(e, -ENOMEM, "out of memory");
	if (r == 0) {
		json_t *cu = json_object_get(j, "created_usec"), *src = json_object_get(j, "source");
		im->state = IMG_READY;
		im->config = text;
		text = NULL;
		if (json_is_integer(cu) && json_integer_value(cu) > 0)
			im->created_wall_usec = (uint64_t)json_integer_value(cu);
		snprintf(im->source, sizeof(im->source), "%s",
			 json_is_string(src) ? json_string_value(src) : "");
		json_array_foreach(lw, i, v) {
			char dir[PATH_MAX + 100];
			snprintf(im->lowers[i], LAYER_ID_MAX, "%s", json_string_value(v));
			snprintf(dir, sizeof(dir), "%s/%s", st->layers, im->lowers[i]);
			if (access(dir, F_OK) < 0 && im->state == IMG_READY) {
				im->state = IMG_FAILED;
				snprintf(im->error, sizeof(im->error), "its layer %s is missing from %s",
					 im->lowers[i], st->layers);
			}
		}
		im->nlowers = (int)json_array_size(lw);
	}
	free(text);
	json_decref(j);
	return r;
}

/* Every config in images/; false when one could not be read (then no layer is
 * removed: it may list some). */
static bool load_all(struct engine *eng)
{
	struct images *st = eng->images;
	bool all = true;
	DIR *d = opendir(st->configs);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char name[SBX_NAME_MAX + 1], path[PATH_MAX + 300];
		snprintf(path, sizeof(path), "%s/%s", st->configs, de->d_name);
		if (de->d_name[0] == '.')
			continue;
		if (n > 4 && !strcmp(de->d_name + n - 4, ".tmp")) { /* a write cut off */
			unlink(path);
			continue;
		}
		if (n <= 5 || n - 5 > SBX_NAME_MAX || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 5), de->d_name);
		struct err e = {0};
		int r = ctl_check_name(name, &e) < 0 ? -EINVAL : find(eng, name) ? -EEXIST : 0;
		if (r == 0)
			r = load_one(eng, name, path, &e);
		else
			err_set(&e, r, "%s does not name an image of its own", path);
		if (r < 0) {
			all = false;
			engine_note_error(eng, "image %s: skipped: %s", name, e.msg);
		}
	}
	if (d)
		closedir(d);
	return all;
}

int images_init(struct engine *eng)
{
	struct images *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->next_id = 1;
	eng->images = st;
	return 0;
}

void images_set_pool_user(struct engine *eng, bool (*fn)(struct engine *eng, const char *image,
							  char *pool, size_t cap))
{
	eng->images->pool_user = fn;
}

int images_start(struct engine *eng)
{
	struct images *st = eng->images;
	snprintf(st->dir, sizeof(st->dir), "%s/imports", eng->o.state_dir);
	snprintf(st->configs, sizeof(st->configs), "%s/images", st->dir);
	snprintf(st->layers, sizeof(st->layers), "%s/layers", st->dir);
	snprintf(st->tmp, sizeof(st->tmp), "%s/tmp", st->dir);
	vmm_remove_tree(st->tmp); /* what a dead daemon was making or removing */
	int r;
	if ((r = mkdir_p(st->configs, 0700)) < 0 || (r = mkdir_p(st->layers, 0700)) < 0 ||
	    (r = mkdir_p(st->tmp, 0700)) < 0)
		return r;
	pthread_mutex_lock(&st->lock);
	bool all = load_all(eng);
	sync_dirs(eng);
	st->started = true;
	pthread_mutex_unlock(&st->lock);
	if (all)
		gc_layers(eng);
	return 0;
}

void images_quiesce(struct engine *eng)
{
	struct images *st = eng->images;
	atomic_store(&st->quitting, true);
	pthread_mutex_lock(&st->lock);
	for (struct image *im = st->list; im; im = im->next)
		atomic_store(&im->cancel, true);
	pthread_mutex_unlock(&st->lock);
}

/* --- the image's OCI config at run time: Env, WorkingDir, Entrypoint, Cmd --- */

/* Appends s to out (len so far) in single quotes, for sh. */
static int sh_quote(const char *s, char *out, size_t cap, size_t *len)
{
	if (*len + 2 >= cap)
		return -ENOSPC;
	out[(*len)++] = '\'';
	for (; *s; s++) {
		const char *piece = *s == '\'' ? "'\\''" : NULL;
		size_t n = piece ? 4 : 1;
		if (*len + n + 2 >= cap)
			return -ENOSPC;
		if (piece)
			memcpy(out + *len, piece, n);
		else
			out[*len] = *s;
		*len += n;
	}
	out[(*len)++] = '\'';
	out[*len] = '\0';
	return 0;
}

static int append(char *out, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > cap)
		return -ENOSPC;
	memcpy(out + *len, s, n + 1);
	*len += n;
	return 0;
}

/* The words of a list (Entrypoint, then Cmd), each quoted, joined by blanks. */
static int quote_words(json_t *list, char *out, size_t cap, size_t *len, size_t start)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		if (!json_is_string(v))
			continue;
		if ((*len > start && append(out, cap, len, " ") < 0) ||
		    sh_quote(json_string_value(v), out, cap, len) < 0)
			return -ENOSPC;
	}
	return 0;
}

/* export NAME='VALUE'; for kv (NAME=VALUE). */
static int export_var(const char *kv, size_t name_len, char *out, size_t cap, size_t *len)
{
	char name[CTL_WRITE_MAX + 16];
	int r;
	snprintf(name, sizeof(name), "export %.*s=", (int)name_len, kv);
	if ((r = append(out, cap, len, name)) < 0 || (r = sh_quote(kv + name_len + 1, out, cap, len)) < 0)
		return r;
	return append(out, cap, len, "; ");
}

/* cd 'DIR' || exit 126; */
static int enter_dir(const char *dir, char *out, size_t cap, size_t *len)
{
	int r;
	if ((r = append(out, cap, len, "cd ")) < 0 || (r = sh_quote(dir, out, cap, len)) < 0)
		return r;
	return append(out, cap, len, " || exit 126; ");
}

int image_command(struct engine *eng, const char *image, const char *line,
		  const struct ctl_run_opts *ro, bool fold, char *out, size_t cap, size_t *cmd_at,
		  struct err *e)
{
	struct images *st = eng->images;
	json_t *cfg = NULL;
	if (st->started) {
		pthread_mutex_lock(&st->lock);
		struct image *im = find(eng, image);
		json_t *j = im && !im->dir && im->config ? json_loads(im->config, 0, NULL) : NULL;
		pthread_mutex_unlock(&st->lock);
		cfg = j ? json_incref(json_object_get(j, "config")) : NULL;
		json_decref(j);
	}
	size_t len = 0;
	int r = 0;
	out[0] = '\0';
	/* Env and WorkingDir as a prefix: exported, then cd (a missing dir ends it). */
	json_t *env = cfg ? json_object_get(cfg, "Env") : NULL, *v;
	size_t i;
	json_array_foreach(env, i, v) {
		const char *kv = json_string_value(v), *eq = kv ? strchr(kv, '=') : NULL;
		if (!eq || !ctl_env_name_ok(kv, (size_t)(eq - kv)))
			continue; /* not something sh can export */
		if (ro && ctl_run_env_has(ro, kv, (size_t)(eq - kv)))
			continue; /* env= sets it */
		if ((r = export_var(kv, (size_t)(eq - kv), out, cap, &len)) < 0)
			break;
	}
	for (int k = 0; r == 0 && fold && ro && k < ro->nenv; k++)
		r = export_var(ro->env[k], strcspn(ro->env[k], "="), out, cap, &len);
	const char *wd = cfg ? json_string_value(json_object_get(cfg, "WorkingDir")) : NULL;
	if (ro && ro->cwd)
		wd = fold ? ro->cwd : NULL; /* cwd= instead (the backend enters it, or the shell) */
	if (r == 0 && wd && *wd)
		r = enter_dir(wd, out, cap, &len);
	*cmd_at = len;
	if (r == 0 && *line) {
		r = append(out, cap, &len, line);
	} else if (r == 0) {
		size_t before = len;
		r = quote_words(json_object_get(cfg, "Entrypoint"), out, cap, &len, before);
		if (r == 0)
			r = quote_words(json_object_get(cfg, "Cmd"), out, cap, &len, before);
		if (r == 0 && len == before)
			r = err_set(e, -EINVAL, "empty command line, and image '%s' has no Entrypoint "
				    "or Cmd to run instead", image);
	}
	json_decref(cfg);
	if (r == -ENOSPC)
		return err_set(e, -E2BIG, "the command with image '%s''s Env and WorkingDir (and "
			       "cwd=, env=) is more than %zu bytes", image, cap - 1);
	return r;
}
