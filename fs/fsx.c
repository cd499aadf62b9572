/* FUSE low-level operations over the tree of fs/files.c, its nodes numbered
 * by fs/inode.c. Every operation replies; none answers ENOSYS. */
#define _GNU_SOURCE
#include "fsx.h"
#include "inode.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ENTRY_TIMEOUT 1.0

static struct timespec start_time;

void fsx_set_start_time(void) { clock_gettime(CLOCK_REALTIME, &start_time); }

struct node {
	enum ino_kind kind;
	uint64_t id; /* 0: top level */
	uint32_t seq; /* INO_SNAP: the snapshot; INO_JOB, INO_JOB_FILE: the job number;
		       * INO_POOL*: the pool; INO_IMAGE, INO_IMAGE_FILE: the image */
	const struct fsx_file *f; /* INO_TOP_FILE, INO_SBX_FILE, INO_POOL_FILE, INO_IMAGE*_FILE */
	const struct fsx_job_file *jf; /* INO_JOB_FILE */
};

static fuse_ino_t ino_of(enum ino_kind kind, uint64_t id, uint32_t obj, size_t file)
{
	return ino_encode(&(struct ino_node){.kind = kind, .sbx = id, .obj = obj, .file = (uint32_t)file});
}

static fuse_ino_t ino_top_file(size_t i) { return ino_of(INO_TOP_FILE, 0, 0, i); }
static fuse_ino_t ino_pool(uint32_t id, size_t k)
{
	return k ? ino_of(INO_POOL_FILE, 0, id, k - 1) : ino_of(INO_POOL, 0, id, 0);
}
static fuse_ino_t ino_images_file(size_t i) { return ino_of(INO_IMAGES_FILE, 0, 0, i); }
static fuse_ino_t ino_image(uint32_t id, size_t k)
{
	return k ? ino_of(INO_IMAGE_FILE, 0, id, k - 1) : ino_of(INO_IMAGE, 0, id, 0);
}
static fuse_ino_t ino_sbx_dir(uint64_t id) { return ino_of(INO_SBX, id, 0, 0); }
static fuse_ino_t ino_sbx_file(uint64_t id, size_t i) { return ino_of(INO_SBX_FILE, id, 0, i); }
static fuse_ino_t ino_snapdir(uint64_t id) { return ino_of(INO_SNAPS, id, 0, 0); }
static fuse_ino_t ino_snap(uint64_t id, uint32_t seq) { return ino_of(INO_SNAP, id, seq, 0); }
static fuse_ino_t ino_jobsdir(uint64_t id) { return ino_of(INO_JOBS, id, 0, 0); }
static fuse_ino_t ino_job(uint64_t id, uint32_t n, int k)
{
	return k ? ino_of(INO_JOB_FILE, id, n, (size_t)k - 1) : ino_of(INO_JOB, id, n, 0);
}

static int decode(fuse_ino_t ino, struct node *n)
{
	static const struct {
		const struct fsx_file *tab;
		const size_t *n;
	} tabs[INO_NKINDS] = {
		[INO_TOP_FILE] = {fsx_top_files, &fsx_top_nfiles},
		[INO_SBX_FILE] = {fsx_sbx_files, &fsx_sbx_nfiles},
		[INO_POOL_FILE] = {fsx_pool_files, &fsx_pool_nfiles},
		[INO_IMAGES_FILE] = {fsx_images_files, &fsx_images_nfiles},
		[INO_IMAGE_FILE] = {fsx_image_files, &fsx_image_nfiles},
	};
	struct ino_node i;
	memset(n, 0, sizeof(*n));
	if (ino_decode(ino, &i) < 0)
		return -ENOENT;
	if ((tabs[i.kind].n && i.file >= *tabs[i.kind].n) ||
	    (i.kind == INO_JOB_FILE && i.file >= fsx_job_nfiles))
		return -ENOENT;
	n->kind = i.kind;
	n->id = i.sbx;
	n->seq = i.obj;
	n->f = tabs[i.kind].tab ? &tabs[i.kind].tab[i.file] : NULL;
	n->jf = i.kind == INO_JOB_FILE ? &fsx_job_files[i.file] : NULL;
	return 0;
}

static bool is_dir(const struct node *n) { return !n->f && !n->jf; }

static mode_t file_mode(const struct fsx_file *f)
{
	if (!f)
		return S_IFDIR | 0755;
	return f->link ? S_IFLNK | 0777 : S_IFREG | f->mode;
}

static mode_t node_mode(const struct node *n)
{
	return n->jf ? S_IFREG | n->jf->mode : file_mode(n->f);
}

/* Access: root only (the owner bits of the table), or with --group, the
 * same rights for that group; nobody else. The kernel checks (default_permissions). */
static bool group_set;
static gid_t group_gid;

void fsx_set_group(gid_t gid)
{
	group_set = true;
	group_gid = gid;
}

static void fill_attr(struct stat *st, fuse_ino_t ino, mode_t mode, uint64_t created_usec)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (!S_ISLNK(mode)) {
		mode_t owner = mode & 0700;
		mode = (mode & S_IFMT) | owner | (group_set ? owner >> 3 : 0);
	}
	st->st_mode = mode;
	st->st_gid = group_set ? group_gid : 0;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_blksize = 4096;
	if (created_usec) {
		st->st_mtim.tv_sec = (time_t)(created_usec / 1000000);
		st->st_mtim.tv_nsec = (long)(created_usec % 1000000) * 1000;
	} else {
		st->st_mtim = start_time;
	}
	st->st_atim = st->st_ctim = st->st_mtim;
}

/* Attributes of a node; for sandbox nodes the sandbox (and snapshot) must still exist. */
static int node_attr(fuse_ino_t ino, struct stat *st)
{
	struct node n;
	int r = decode(ino, &n);
	if (r < 0)
		return r;
	if (n.kind == INO_POOL || n.kind == INO_POOL_FILE) {
		struct warm_pool *p = warm_pool_get(n.seq);
		if (!p)
			return -ENOENT;
		fill_attr(st, ino, file_mode(n.f), warm_pool_created_wall_usec(p));
		warm_pool_put(p);
		return 0;
	}
	if (n.kind == INO_IMAGE || n.kind == INO_IMAGE_FILE) {
		struct image *im = image_get(n.seq);
		if (!im)
			return -ENOENT;
		fill_attr(st, ino, file_mode(n.f), image_created_wall_usec(im));
		image_put(im);
		return 0;
	}
	if (n.id == 0) {
		fill_attr(st, ino, file_mode(n.f), 0);
		return 0;
	}
	struct sbx *s = sbx_get_id(n.id);
	if (!s)
		return -ENOENT;
	if ((n.kind == INO_SNAP && !sbx_snapshot_exists(s, n.seq)) ||
	    ((n.kind == INO_JOB || n.kind == INO_JOB_FILE) && !sbx_job_exists(s, n.seq)))
		r = -ENOENT;
	else
		fill_attr(st, ino, node_mode(&n), sbx_created_wall_usec(s));
	sbx_put(s);
	return r;
}

/* An error answering something a user did (not a lookup miss): counted for metrics. */
static void reply_user_err(fuse_req_t req, int err)
{
	engine_count_error(err);
	fuse_reply_err(req, err);
}

static void reply_entry(fuse_req_t req, fuse_ino_t ino)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	int r = node_attr(ino, &e.attr);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	e.ino = ino;
	e.attr_timeout = ENTRY_TIMEOUT;
	e.entry_timeout = ENTRY_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static int find_file(const struct fsx_file *tab, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	engine_thread_online();
	struct node p;
	if (decode(parent, &p) < 0 || !is_dir(&p)) {
		fuse_reply_err(req, p.f ? ENOTDIR : ENOENT);
		return;
	}
	fuse_ino_t ino = 0;
	int i;
	if (p.kind == INO_ROOT) {
		if ((i = find_file(fsx_top_files, fsx_top_nfiles, name)) >= 0) {
			ino = ino_top_file((size_t)i);
		} else if (strcmp(name, "pools") == 0) {
			ino = ino_of(INO_POOLS, 0, 0, 0);
		} else if (strcmp(name, "images") == 0) {
			ino = ino_of(INO_IMAGES, 0, 0, 0);
		} else {
			struct sbx *s = sbx_get(name);
			if (s) {
				ino = ino_sbx_dir(sbx_id(s));
				sbx_put(s);
			}
		}
	} else if (p.kind == INO_SBX) {
		if ((i = find_file(fsx_sbx_files, fsx_sbx_nfiles, name)) >= 0)
			ino = ino_sbx_file(p.id, (size_t)i);
		else if (strcmp(name, "snapshots") == 0)
			ino = ino_snapdir(p.id);
		else if (strcmp(name, "jobs") == 0)
			ino = ino_jobsdir(p.id);
	} else if (p.kind == INO_JOBS) {
		char *end;
		unsigned long jn = strtoul(name, &end, 10);
		struct sbx *s = sbx_get_id(p.id);
		if (s && !*end && jn > 0 && jn <= SBX_JOB_ID_MAX && sbx_job_exists(s, (uint32_t)jn))
			ino = ino_job(p.id, (uint32_t)jn, 0);
		if (s)
			sbx_put(s);
	} else if (p.kind == INO_JOB) {
		for (size_t k = 0; k < fsx_job_nfiles; k++)
			if (strcmp(fsx_job_files[k].name, name) == 0)
				ino = ino_job(p.id, p.seq, (int)k + 1);
	} else if (p.kind == INO_SNAPS) {
		struct sbx *s = sbx_get_id(p.id);
		uint32_t seq;
		if (s && sbx_snapshot_lookup(s, name, &seq) == 0)
			ino = ino_snap(p.id, seq);
		if (s)
			sbx_put(s);
	} else if (p.kind == INO_POOLS) {
		uint32_t id = warm_pool_lookup(name);
		if (id)
			ino = ino_pool(id, 0);
	} else if (p.kind == INO_POOL) {
		if ((i = find_file(fsx_pool_files, fsx_pool_nfiles, name)) >= 0)
			ino = ino_pool(p.seq, (size_t)i + 1);
	} else if (p.kind == INO_IMAGES) {
		uint32_t id;
		if ((i = find_file(fsx_images_files, fsx_images_nfiles, name)) >= 0)
			ino = ino_images_file((size_t)i);
		else if ((id = image_lookup(name)))
			ino = ino_image(id, 0);
	} else if (p.kind == INO_IMAGE) {
		if ((i = find_file(fsx_image_files, fsx_image_nfiles, name)) >= 0)
			ino = ino_image(p.seq, (size_t)i + 1);
	}
	if (!ino)
		fuse_reply_err(req, ENOENT);
	else
		reply_entry(req, ino);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	engine_thread_online();
	struct stat st;
	int r = node_attr(ino, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ENTRY_TIMEOUT);
}

/* Only what `echo x > file` needs: truncation to 0 (and times, for touch). */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	engine_thread_online();
	int allowed = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
	if ((to_set & ~allowed) || ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	struct stat st;
	int r = node_attr(ino, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ENTRY_TIMEOUT);
}

/* --- directories: a snapshot of the entries per opendir --- */

struct dir_ent {
	char name[64];
	fuse_ino_t ino;
	mode_t mode;
};

struct dir_handle {
	struct dir_ent *ents;
	size_t n;
};

static int dir_add(struct dir_handle *d, size_t *cap, const char *name, fuse_ino_t ino,
		   mode_t mode)
{
	if (d->n == *cap) {
		size_t c = *cap ? *cap * 2 : 32;
		struct dir_ent *e = realloc(d->ents, c * sizeof(*e));
		if (!e)
			return -ENOMEM;
		d->ents = e;
		*cap = c;
	}
	snprintf(d->ents[d->n].name, sizeof(d->ents[0].name), "%s", name);
	d->ents[d->n].ino = ino;
	d->ents[d->n].mode = mode;
	d->n++;
	return 0;
}

static int fill_root(struct dir_handle *d, size_t *cap)
{
	int r = 0;
	for (size_t i = 0; i < fsx_top_nfiles && r == 0; i++)
		r = dir_add(d, cap, fsx_top_files[i].name, ino_top_file(i),
			    file_mode(&fsx_top_files[i]));
	char(*names)[64];
	uint64_t *ids;
	size_t n;
	if (r == 0)
		r = dir_add(d, cap, "pools", ino_of(INO_POOLS, 0, 0, 0), S_IFDIR);
	if (r == 0)
		r = dir_add(d, cap, "images", ino_of(INO_IMAGES, 0, 0, 0), S_IFDIR);
	if (r == 0 && (r = engine_list(&names, &ids, &n)) == 0) {
		for (size_t i = 0; i < n && r == 0; i++)
			r = dir_add(d, cap, names[i], ino_sbx_dir(ids[i]), S_IFDIR);
		free(names);
		free(ids);
	}
	return r;
}

static int fill_pools(struct dir_handle *d, size_t *cap, const struct node *n)
{
	int r = 0;
	if (n->kind == INO_POOL) {
		struct warm_pool *p = warm_pool_get(n->seq);
		if (!p)
			return -ENOENT;
		warm_pool_put(p);
		for (size_t i = 0; i < fsx_pool_nfiles && r == 0; i++)
			r = dir_add(d, cap, fsx_pool_files[i].name, ino_pool(n->seq, i + 1),
				    file_mode(&fsx_pool_files[i]));
		return r;
	}
	char(*names)[64];
	uint32_t *ids;
	size_t cnt;
	if ((r = warm_pool_list(&names, &ids, &cnt)) == 0) {
		for (size_t i = 0; i < cnt && r == 0; i++)
			r = dir_add(d, cap, names[i], ino_pool(ids[i], 0), S_IFDIR);
		free(names);
		free(ids);
	}
	return r;
}

static int fill_images(struct dir_handle *d, size_t *cap, const struct node *n)
{
	int r = 0;
	if (n->kind == INO_IMAGE) {
		struct image *im = image_get(n->seq);
		if (!im)
			return -ENOENT;
		image_put(im);
		for (size_t i = 0; i < fsx_image_nfiles && r == 0; i++)
			r = dir_add(d, cap, fsx_image_files[i].name, ino_image(n->seq, i + 1),
				    file_mode(&fsx_image_files[i]));
		return r;
	}
	for (size_t i = 0; i < fsx_images_nfiles && r == 0; i++)
		r = dir_add(d, cap, fsx_images_files[i].name, ino_images_file(i),
			    file_mode(&fsx_images_files[i]));
	char(*names)[64];
	uint32_t *ids;
	size_t cnt;
	if (r == 0 && (r = image_list(&names, &ids, &cnt)) == 0) {
		for (size_t i = 0; i < cnt && r == 0; i++)
			r = dir_add(d, cap, names[i], ino_image(ids[i], 0), S_IFDIR);
		free(names);
		free(ids);
	}
	return r;
}

static int fill_sbx_dir(struct dir_handle *d, size_t *cap, const struct node *n)
{
	struct sbx *s = sbx_get_id(n->id);
	if (!s)
		return -ENOENT;
	int r = 0;
	if (n->kind == INO_SBX) {
		for (size_t i = 0; i < fsx_sbx_nfiles && r == 0; i++)
			r = dir_add(d, cap, fsx_sbx_files[i].name, ino_sbx_file(n->id, i),
				    file_mode(&fsx_sbx_files[i]));
		if (r == 0)
			r = dir_add(d, cap, "snapshots", ino_snapdir(n->id), S_IFDIR);
		if (r == 0)
			r = dir_add(d, cap, "jobs", ino_jobsdir(n->id), S_IFDIR);
	} else if (n->kind == INO_JOBS) {
		uint32_t *ns;
		size_t cnt;
		if ((r = sbx_job_list(s, &ns, &cnt)) == 0) {
			for (size_t i = 0; i < cnt && r == 0; i++) {
				char nm[16];
				snprintf(nm, sizeof(nm), "%u", ns[i]);
				r = dir_add(d, cap, nm, ino_job(n->id, ns[i], 0), S_IFDIR);
			}
			free(ns);
		}
	} else if (n->kind == INO_JOB) {
		if (!sbx_job_exists(s, n->seq))
			r = -ENOENT;
		for (size_t k = 0; k < fsx_job_nfiles && r == 0; k++)
			r = dir_add(d, cap, fsx_job_files[k].name, ino_job(n->id, n->seq, (int)k + 1),
				    S_IFREG | fsx_job_files[k].mode);
	} else if (n->kind == INO_SNAPS) {
		char(*names)[64];
		uint32_t *seqs;
		size_t cnt;
		if ((r = sbx_snapshot_list(s, &names, &seqs, &cnt)) == 0) {
			for (size_t i = 0; i < cnt && r == 0; i++)
				r = dir_add(d, cap, names[i], ino_snap(n->id, seqs[i]), S_IFDIR);
			free(names);
			free(seqs);
		}
	} else if (n->kind == INO_SNAP && !sbx_snapshot_exists(s, n->seq)) {
		r = -ENOENT;
	}
	sbx_put(s);
	return r;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	engine_thread_online();
	struct node n;
	if (decode(ino, &n) < 0 || !is_dir(&n)) {
		fuse_reply_err(req, n.f ? ENOTDIR : ENOENT);
		return;
	}
	struct dir_handle *d = calloc(1, sizeof(*d));
	size_t cap = 0;
	int r = d ? 0 : -ENOMEM;
	if (r == 0)
		r = dir_add(d, &cap, ".", ino, S_IFDIR);
	if (r == 0)
		r = dir_add(d, &cap, "..", FUSE_ROOT_ID, S_IFDIR);
	if (r == 0)
		r = n.kind == INO_ROOT ? fill_root(d, &cap)
		    : n.kind == INO_POOLS || n.kind == INO_POOL	 ? fill_pools(d, &cap, &n)
		    : n.kind == INO_IMAGES || n.kind == INO_IMAGE ? fill_images(d, &cap, &n)
								 : fill_sbx_dir(d, &cap, &n);
	if (r < 0) {
		if (d)
			free(d->ents);
		free(d);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = {.st_ino = d->ents[i].ino, .st_mode = d->ents[i].mode};
		size_t len = fuse_add_direntry(req, buf + used, size - used, d->ents[i].name, &st,
					       (off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	free(d->ents);
	free(d);
	fuse_reply_err(req, 0);
}

/* --- files: content generated once per open; writes are commands --- */

struct fsx_handle {
	const struct fsx_file *f;
	uint64_t id;
	struct buf content;
	struct sbx_exec *x;
	uint64_t gen;   /* generation the content shows (events, wait) */
	bool made;      /* wait: content made */
	bool nonblock;  /* wait: opened O_NONBLOCK */
	const struct fsx_job_file *jf; /* a job's file */
	uint32_t pool;  /* a warm pool's file: the pool */
	uint32_t image; /* an image's file: the image */
	uint32_t job;   /* its job number; run: the job it started */
	bool started;   /* run: a job was started through this handle */
	size_t pos;     /* run: how much of the id was read */
	uint64_t read_end; /* stdout, stderr: the furthest a read got, where poll looks on */
	uint64_t skew;     /* stdout, stderr: how far reads were moved past dropped output */
	pthread_mutex_t lock;
	/* The open file's, and one per parked read: the kernel releases a file
	 * only after its reads returned, but a parked read never relies on it. */
	_Atomic int refs;
};

static struct fsx_handle *handle_new(void)
{
	struct fsx_handle *h = calloc(1, sizeof(*h));
	if (h) {
		pthread_mutex_init(&h->lock, NULL);
		atomic_init(&h->refs, 1);
	}
	return h;
}

static struct fsx_handle *handle_get(struct fsx_handle *h)
{
	atomic_fetch_add(&h->refs, 1);
	return h;
}

static void handle_put(struct fsx_handle *h)
{
	if (atomic_fetch_sub(&h->refs, 1) != 1)
		return;
	if (h->x)
		sbx_exec_close(h->x);
	buf_free(&h->content);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

#define WAIT_DEFAULT_MS 30000

static uint64_t current_gen(struct sbx *s)
{
	return s ? sbx_generation(s) : engine_generation();
}

static int make_content(struct fsx_handle *h, struct sbx *s)
{
	buf_free(&h->content);
	h->gen = current_gen(s);
	return s ? h->f->show(s, &h->content) : h->f->show_top(&h->content);
}

static void open_job_file(fuse_req_t req, const struct node *n, struct fuse_file_info *fi)
{
	const struct fsx_job_file *jf = n->jf;
	int acc = fi->flags & O_ACCMODE;
	bool writable = jf->kind == JF_STDIN || jf->kind == JF_CTL;
	if ((acc != O_RDONLY) != writable || acc == O_RDWR) {
		fuse_reply_err(req, EACCES);
		return;
	}
	struct fsx_handle *h = handle_new();
	struct sbx *s = sbx_get_id(n->id);
	int r = !h ? -ENOMEM : !s || !sbx_job_exists(s, n->seq) ? -ENOENT : 0;
	if (r == 0) {
		h->id = n->id;
		h->jf = jf;
		h->job = n->seq;
		h->nonblock = fi->flags & O_NONBLOCK;
		if (jf->kind == JF_SHOW)
			r = sbx_job_show(s, n->seq, jf->name, &h->content);
	}
	if (s)
		sbx_put(s);
	if (r < 0) {
		if (h)
			handle_put(h);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fuse_reply_open(req, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	engine_thread_online();
	struct node n;
	if (decode(ino, &n) < 0 || is_dir(&n)) {
		fuse_reply_err(req, decode(ino, &n) < 0 ? ENOENT : EISDIR);
		return;
	}
	if (n.jf) {
		open_job_file(req, &n, fi);
		return;
	}
	const struct fsx_file *f = n.f;
	int acc = fi->flags & O_ACCMODE;
	bool readable = f->show || f->show_top || f->session || f->wait || f->clone || f->show_pool ||
			f->show_image;
	bool writable = f->write || f->write_top || f->session || f->clone || f->write_pool;
	/* Root passes the kernel's permission check; the file's nature still decides. */
	if (((acc == O_WRONLY || acc == O_RDWR) && !writable) ||
	    ((acc == O_RDONLY || acc == O_RDWR) && !readable)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	struct fsx_handle *h = handle_new();
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->f = f;
	h->id = n.id;
	int r = 0;
	struct sbx *s = NULL;
	struct warm_pool *pool = NULL;
	if (n.kind == INO_POOL_FILE) {
		h->pool = n.seq;
		if (!(pool = warm_pool_get(n.seq)))
			r = -ENOENT;
		else if (acc != O_WRONLY)
			r = f->show_pool(pool, &h->content);
		if (pool)
			warm_pool_put(pool);
	} else if (n.kind == INO_IMAGE_FILE) {
		struct image *im = image_get(n.seq);
		h->image = n.seq;
		r = im ? f->show_image(im, &h->content) : -ENOENT;
		image_put(im);
	} else if (n.id && !(s = sbx_get_id(n.id)))
		r = -ENOENT;
	else if (f->session)
		r = sbx_exec_open(s, &h->x);
	else if (f->wait)
		h->gen = sbx_generation(s), h->nonblock = fi->flags & O_NONBLOCK;
	else if (f->clone)
		; /* content (the job id) comes with the first read after the write */
	else if (acc != O_WRONLY)
		r = make_content(h, s);
	if (s)
		sbx_put(s);
	if (r < 0) {
		handle_put(h);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	fi->nonseekable = f->session || f->clone;
	fuse_reply_open(req, fi);
}

/* --- blocking reads (wait, exec, a job's stdout and stderr) ---
 * A read with nothing to return yet is parked (engine/waiters.h) and answered
 * later from the waiters' thread; the FUSE thread returns at once. A parked
 * read pins its handle; an interrupted reader (a signal, ^C, kill) gets EINTR. */

struct fsx_read {
	struct waiter w; /* first: a read is its waiter */
	fuse_req_t req;
	struct fsx_handle *h; /* pinned */
	size_t size;
	off_t off;
	char *data; /* what the last look found, for the answer */
	size_t len;
};

static bool is_blocking(const struct fsx_handle *h)
{
	return h->x || (h->jf && h->jf->kind == JF_STREAM) || (h->f && h->f->wait);
}

static int exec_try(struct fsx_read *rd, struct sbx_wake *wk)
{
	char *buf = malloc(rd->size ? rd->size : 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = sbx_exec_read_try(rd->h->x, buf, rd->size, wk);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	rd->data = buf;
	rd->len = (size_t)n;
	return 0;
}

static int stream_try(struct fsx_read *rd, struct sbx_wake *wk)
{
	struct fsx_handle *h = rd->h;
	struct sbx *s = sbx_get_id(h->id);
	if (!s)
		return -ENODEV;
	char *buf = malloc(rd->size ? rd->size : 1);
	ssize_t n = !buf ? -ENOMEM
			 : sbx_job_read_try(s, h->job, h->jf->stream, buf, rd->size, rd->off,
					    &h->skew, h->nonblock ? NULL : wk);
	sbx_put(s);
	if (n == -EAGAIN && h->nonblock)
		n = 0; /* O_NONBLOCK: the end for now, as a growing regular file */
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	pthread_mutex_lock(&h->lock);
	if ((uint64_t)rd->off + (uint64_t)n > h->read_end)
		h->read_end = (uint64_t)rd->off + (uint64_t)n;
	pthread_mutex_unlock(&h->lock);
	rd->data = buf;
	rd->len = (size_t)n;
	return 0;
}

/* wait: the content is made once, by the first read at offset 0 that finds
 * the sandbox changed since the open (or at the deadline, or at once with
 * O_NONBLOCK); a removed sandbox keeps what was made. */
static int wait_try(struct fsx_read *rd, bool final, struct sbx_wake *wk)
{
	struct fsx_handle *h = rd->h;
	int r = 0;
	pthread_mutex_lock(&h->lock);
	if (!h->made && rd->off == 0) {
		struct sbx *s = sbx_get_id(h->id);
		if (!s) {
			r = -ENODEV;
		} else if (!final && !h->nonblock && sbx_generation(s) == h->gen) {
			*wk = (struct sbx_wake){.sbx = h->id, .kind = WAKE_STATE, .fd = -1};
			r = -EAGAIN;
		} else if ((r = h->f->show(s, &h->content)) == 0) {
			h->made = true;
		}
		if (s)
			sbx_put(s);
	}
	if (r == 0 && rd->off >= 0 && (size_t)rd->off < h->content.len) {
		size_t n = h->content.len - (size_t)rd->off;
		n = n < rd->size ? n : rd->size;
		if ((rd->data = malloc(n))) {
			memcpy(rd->data, h->content.data + rd->off, n);
			rd->len = n;
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

static int read_try(struct waiter *w, bool final, struct sbx_wake *wk)
{
	struct fsx_read *rd = (struct fsx_read *)w;
	free(rd->data);
	rd->data = NULL;
	rd->len = 0;
	if (rd->h->x)
		return exec_try(rd, wk);
	if (rd->h->jf)
		return stream_try(rd, wk);
	return wait_try(rd, final, wk);
}

static void read_end(struct waiter *w, int r)
{
	struct fsx_read *rd = (struct fsx_read *)w;
	/* libfuse runs an interrupt callback under the request's lock, which this
	 * takes: none is running when it returns, and none comes after. */
	fuse_req_interrupt_func(rd->req, NULL, NULL);
	if (r < 0)
		fuse_reply_err(rd->req, -r);
	else
		fuse_reply_buf(rd->req, rd->data, rd->len);
	handle_put(rd->h);
	free(rd->data);
	free(rd);
}

static const struct waiter_ops read_ops = {.try = read_try, .end = read_end};

/* Only marks the read (the thread that parked it may still hold it): the
 * waiters' thread answers. */
static void read_interrupted(fuse_req_t req, void *data)
{
	(void)req;
	waiter_interrupt(&((struct fsx_read *)data)->w);
}

static void read_blocking(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	struct fsx_read *rd = calloc(1, sizeof(*rd));
	if (!rd) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rd->req = req;
	rd->h = handle_get(h);
	rd->size = size;
	rd->off = off;
	waiter_init(&rd->w, &read_ops,
		    h->f && h->f->wait ? now_usec() + WAIT_DEFAULT_MS * 1000ull : 0);
	struct sbx_wake wk = {.fd = -1};
	int r = read_try(&rd->w, false, &wk);
	if (r != -EAGAIN) {
		read_end(&rd->w, r);
		return;
	}
	/* Before the park: from there on the waiters' thread may answer and free rd. */
	fuse_req_interrupt_func(req, read_interrupted, rd);
	waiter_park(&rd->w, &wk);
}

void fsx_shutdown(void) { waiters_stop(); }

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	engine_thread_online();
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	if (is_blocking(h)) {
		read_blocking(req, h, size, off);
		return;
	}
	if (h->f && h->f->clone) {
		/* The write moved the file offset; the id is read from our own cursor,
		 * advanced under the handle's lock (reads may run on several threads). */
		char out[32];
		size_t n = 0;
		pthread_mutex_lock(&h->lock);
		if (!h->made && h->started) {
			h->made = true;
			buf_printf(&h->content, "%u\n", h->job);
		}
		if (h->content.len > h->pos) {
			n = h->content.len - h->pos < size ? h->content.len - h->pos : size;
			n = n < sizeof(out) ? n : sizeof(out);
			memcpy(out, h->content.data + h->pos, n);
			h->pos += n;
		}
		pthread_mutex_unlock(&h->lock);
		fuse_reply_buf(req, out, n);
		return;
	}
	/* events: lseek(0) + read after poll sees the change; a removed sandbox
	 * keeps the last content. Reads of one file may run at once: the lock. */
	pthread_mutex_lock(&h->lock);
	if (off == 0 && h->f && h->f->pollable) {
		struct sbx *s = h->id ? sbx_get_id(h->id) : NULL;
		int r = 0;
		if ((s || !h->id) && h->gen != current_gen(s))
			r = make_content(h, s);
		if (s)
			sbx_put(s);
		if (r < 0) {
			pthread_mutex_unlock(&h->lock);
			fuse_reply_err(req, -r);
			return;
		}
	}
	size_t n = off < 0 || (size_t)off >= h->content.len ? 0 : h->content.len - (size_t)off;
	n = n < size ? n : size;
	/* Copied out and answered after the unlock: once the reply is sent the
	 * reader may close the file, and its release (another thread) frees h
	 * and its lock; another read may remake the content meanwhile. */
	char *data = n ? malloc(n) : NULL;
	if (data)
		memcpy(data, h->content.data + off, n);
	pthread_mutex_unlock(&h->lock);
	if (n && !data)
		fuse_reply_err(req, ENOMEM);
	else
		fuse_reply_buf(req, data, n);
	free(data);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;
	engine_thread_online();
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	int r;
	if (h->jf || (h->f && h->f->clone)) {
		struct sbx *s = sbx_get_id(h->id);
		if (!s)
			r = -ENOENT;
		else if (h->jf)
			r = h->jf->kind == JF_STDIN ? sbx_job_stdin(s, h->job, buf, size)
						   : sbx_job_ctl(s, h->job, buf, size);
		else if (h->started)
			r = -EBUSY; /* one job per handle: open run again */
		else if ((r = h->f->clone(s, buf, size, &h->job)) == 0)
			h->started = true;
		if (s)
			sbx_put(s);
	} else if (h->x) {
		r = sbx_exec_write(h->x, buf, size);
	} else if (h->pool) {
		struct warm_pool *p = warm_pool_get(h->pool);
		r = p ? h->f->write_pool(p, buf, size) : -ENOENT;
		if (p)
			warm_pool_put(p);
	} else if (h->id == 0) {
		r = h->f->write_top(buf, size);
	} else {
		/* A handle may outlive its sandbox: a removed sandbox takes no commands. */
		struct sbx *s = sbx_get_id(h->id);
		r = s ? h->f->write(s, buf, size) : -ENOENT;
		if (s)
			sbx_put(s);
	}
	if (r < 0)
		reply_user_err(req, -r);
	else
		fuse_reply_write(req, size);
}

static void poll_release(const struct fsx_handle *h);

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	engine_thread_online();
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	poll_release(h);
	handle_put(h);
	fuse_reply_err(req, 0);
}

/* Poll handles waiting for a change of sandbox `id` (0: the top level) or,
 * with `job` set, for output or the end of that job of it. One per open file:
 * a notify on any poll handle of a file wakes every poller of that file. */
struct poll_wait {
	uint64_t id;
	uint32_t job;
	const struct fsx_handle *h;
	uint64_t seq; /* tells this wait from a later one at the same address */
	struct fuse_pollhandle *ph;
	struct poll_wait *next;
};
static pthread_mutex_t poll_lock = PTHREAD_MUTEX_INITIALIZER;
static struct poll_wait *poll_waits;
static uint64_t poll_seq;

/* With poll_lock held: unlinks the waits of handle h, or else of (id, job). */
static struct poll_wait *waits_take(uint64_t id, uint32_t job, const struct fsx_handle *h)
{
	struct poll_wait *out = NULL;
	for (struct poll_wait **p = &poll_waits; *p;) {
		struct poll_wait *w = *p;
		if (h ? w->h == h : w->id == id && w->job == job) {
			*p = w->next;
			w->next = out;
			out = w;
		} else {
			p = &w->next;
		}
	}
	return out;
}

/* Outside poll_lock: wakes the pollers (or not), frees the waits. */
static void waits_end(struct poll_wait *w, bool notify)
{
	while (w) {
		struct poll_wait *next = w->next;
		if (notify)
			fuse_lowlevel_notify_poll(w->ph);
		fuse_pollhandle_destroy(w->ph);
		free(w);
		w = next;
	}
}

/* With poll_lock held: w becomes its handle's wait. Returns the one it replaces. */
static struct poll_wait *wait_add_locked(struct poll_wait *w)
{
	struct poll_wait *old = waits_take(0, 0, w->h);
	w->seq = ++poll_seq;
	w->next = poll_waits;
	poll_waits = w;
	return old;
}

/* The wait numbered seq, unless it fired or was replaced meanwhile. */
static void wait_cancel(uint64_t seq)
{
	struct poll_wait *w = NULL;
	pthread_mutex_lock(&poll_lock);
	for (struct poll_wait **p = &poll_waits; *p; p = &(*p)->next) {
		if ((*p)->seq == seq) {
			w = *p;
			*p = w->next;
			w->next = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&poll_lock);
	waits_end(w, false);
}

static void fire_waits(uint64_t id, uint32_t job)
{
	pthread_mutex_lock(&poll_lock);
	struct poll_wait *w = waits_take(id, job, NULL);
	pthread_mutex_unlock(&poll_lock);
	waits_end(w, true);
}

/* A change wakes pollers and the reads parked on it: any read of that
 * sandbox for a change of its own (the top level's: one may be gone). */
void fsx_changed(uint64_t id)
{
	fire_waits(id, 0);
	if (id)
		waiters_kick(id, WAKE_ANY, 0);
	else
		waiters_kick_gone();
}

void fsx_job_changed(uint64_t id, uint32_t job)
{
	fire_waits(id, job);
	waiters_kick(id, WAKE_JOB, job);
}

/* A closed file: its waits go, unfired (nothing polls it any more). */
static void poll_release(const struct fsx_handle *h)
{
	if (h->jf ? h->jf->kind != JF_STREAM : !h->f || !h->f->pollable)
		return;
	pthread_mutex_lock(&poll_lock);
	struct poll_wait *w = waits_take(0, 0, h);
	pthread_mutex_unlock(&poll_lock);
	waits_end(w, false);
}

/* A job's stdout or stderr: readable once there is output past what this
 * handle read, or the job is over. The wait goes in before the engine looks,
 * so output or an end that comes after the look still fires it. */
static void poll_stream(fuse_req_t req, struct fsx_handle *h, struct fuse_pollhandle *ph)
{
	struct poll_wait *w = ph ? calloc(1, sizeof(*w)) : NULL;
	uint64_t seq = 0;
	pthread_mutex_lock(&h->lock);
	uint64_t off = h->read_end + __atomic_load_n(&h->skew, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&h->lock);
	if (w) {
		*w = (struct poll_wait){.id = h->id, .job = h->job, .h = h, .ph = ph};
		pthread_mutex_lock(&poll_lock);
		struct poll_wait *old = wait_add_locked(w);
		seq = w->seq;
		pthread_mutex_unlock(&poll_lock);
		waits_end(old, false);
	} else if (ph) { /* no memory for a wait: readable, as before (a read waits) */
		fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, POLLIN | POLLRDNORM);
		return;
	}
	struct sbx *s = sbx_get_id(h->id);
	bool ready = !s || sbx_job_poll(s, h->job, h->jf->stream, off);
	if (s)
		sbx_put(s);
	if (ready && seq)
		wait_cancel(seq);
	fuse_reply_poll(req, ready ? POLLIN | POLLRDNORM : 0);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	(void)ino;
	engine_thread_online();
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	unsigned ready = POLLIN | POLLRDNORM;
	if (h->jf && h->jf->kind == JF_STREAM) {
		poll_stream(req, h, ph);
		return;
	}
	if (h->x || !h->f || !h->f->pollable) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, ready | (h->x ? POLLOUT | POLLWRNORM : 0));
		return;
	}
	struct sbx *s = h->id ? sbx_get_id(h->id) : NULL;
	if (h->id && !s) { /* the sandbox is gone: that is a change too */
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, ready | POLLPRI | POLLERR);
		return;
	}
	struct poll_wait *w = ph ? calloc(1, sizeof(*w)) : NULL, *old = NULL;
	pthread_mutex_lock(&poll_lock);
	bool changed = h->gen != current_gen(s);
	if (!changed && w) {
		*w = (struct poll_wait){.id = h->id, .h = h, .ph = ph};
		old = wait_add_locked(w);
		w = NULL;
		ph = NULL;
	}
	pthread_mutex_unlock(&poll_lock);
	if (s)
		sbx_put(s);
	waits_end(old, false);
	free(w);
	if (ph)
		fuse_pollhandle_destroy(ph);
	/* As cgroupfs: a change shows as POLLPRI (and readable); no change, no event. */
	fuse_reply_poll(req, changed ? ready | POLLPRI : 0);
}

/* --- directories as sandboxes --- */

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	engine_thread_online();
	struct node p;
	if (decode(parent, &p) < 0 ||
	    (p.kind != INO_ROOT && p.kind != INO_SNAPS && p.kind != INO_POOLS)) {
		if (p.kind == INO_IMAGES)
			engine_note_error("mkdir images/%s: images are made by `import NAME SOURCE` "
					  "written to images/ctl", name);
		reply_user_err(req, EPERM);
		return;
	}
	struct sbx *s = NULL;
	fuse_ino_t ino = 0;
	int r;
	if (p.kind == INO_ROOT) {
		r = engine_mkdir(name, &s);
		if (r == 0)
			ino = ino_sbx_dir(sbx_id(s));
	} else if (p.kind == INO_POOLS) {
		uint32_t id = 0;
		r = warm_pool_mkdir(name, &id);
		ino = ino_pool(id, 0);
	} else {
		uint32_t seq = 0;
		s = sbx_get_id(p.id);
		r = s ? sbx_snapshot_create(s, name, &seq) : -ENOENT;
		ino = ino_snap(p.id, seq);
	}
	if (s)
		sbx_put(s);
	if (r < 0)
		reply_user_err(req, -r);
	else
		reply_entry(req, ino);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	engine_thread_online();
	struct node p;
	int r;
	if (decode(parent, &p) < 0) {
		r = -ENOENT;
	} else if (p.kind == INO_ROOT) {
		r = find_file(fsx_top_files, fsx_top_nfiles, name) >= 0 ? -ENOTDIR
									: engine_rmdir(name);
	} else if (p.kind == INO_POOLS) {
		r = warm_pool_rmdir(name);
	} else if (p.kind == INO_IMAGES) {
		r = find_file(fsx_images_files, fsx_images_nfiles, name) >= 0 ? -ENOTDIR
									     : image_rmdir(name);
	} else if (p.kind == INO_SNAPS) {
		struct sbx *s = sbx_get_id(p.id);
		r = s ? sbx_snapshot_remove(s, name) : -ENOENT;
		if (s)
			sbx_put(s);
	} else if (p.kind == INO_JOBS) {
		struct sbx *s = sbx_get_id(p.id);
		char *end;
		unsigned long jn = strtoul(name, &end, 10);
		r = !s ? -ENOENT : *end || !jn || jn > SBX_JOB_ID_MAX ? -ENOENT : sbx_job_remove(s, (uint32_t)jn);
		if (s)
			sbx_put(s);
	} else {
		r = -EPERM;
	}
	if (r < 0)
		reply_user_err(req, -r);
	else
		fuse_reply_err(req, 0);
}

/* --- everything a user may not do here --- */

static void deny_name(fuse_req_t req, fuse_ino_t parent, const char *name, const char *what)
{
	(void)parent;
	engine_note_error("%s '%s' is not allowed in sandboxfs", what, name);
	reply_user_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	deny_name(req, parent, name, "unlink of");
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t np,
		      const char *nn, unsigned int flags)
{
	(void)np;
	(void)nn;
	(void)flags;
	deny_name(req, parent, name, "rename of");
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)mode;
	(void)rdev;
	deny_name(req, parent, name, "creating a file");
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	deny_name(req, parent, name, "creating a file");
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	deny_name(req, parent, name, "a symlink");
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	(void)ino;
	deny_name(req, parent, name, "a hard link");
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	engine_thread_online();
	struct node n;
	if (decode(ino, &n) < 0 || !n.f || !n.f->link || !n.id) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct sbx *s = sbx_get_id(n.id);
	struct buf b = {0};
	int r = s ? n.f->link(s, &b) : -ENOENT;
	if (s)
		sbx_put(s);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, b.data);
	buf_free(&b);
}

static void op_ok(fuse_req_t req) { fuse_reply_err(req, 0); }

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	op_ok(req);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	op_ok(req);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)mask;
	struct stat st;
	int r = node_attr(ino, &st);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, ENOTSUP);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	(void)name;
	fuse_reply_err(req, ENODATA);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	(void)mode;
	(void)off;
	(void)len;
	(void)fi;
	fuse_reply_err(req, EOPNOTSUPP);
}

static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
		     size_t out_bufsz)
{
	(void)ino;
	(void)cmd;
	(void)arg;
	(void)fi;
	(void)flags;
	(void)in_buf;
	(void)in_bufsz;
	(void)out_bufsz;
	fuse_reply_err(req, ENOTTY);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;
	(void)whence;
	(void)fi;
	fuse_reply_err(req, ENXIO);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

const struct fuse_lowlevel_ops fsx_ops = {
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsync,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.access = op_access,
	.create = op_create,
	.ioctl = op_ioctl,
	.poll = op_poll,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
};
