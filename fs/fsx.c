/* The FUSE low-level operations, generic over the tree of fs/files.c: each
 * reads the node's number (fs/inode.c), finds its kind's row and calls what
 * the row points at; none asks which file it serves. Every operation
 * replies; none answers ENOSYS. */
#define _GNU_SOURCE
#include "node.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* How long the kernel may keep what a reply said. A name a directory holds
 * by name (a sandbox, a job, a snapshot, a pool, an image) may go without the
 * kernel seeing it (a timeout, ctl, a restart): a second. A fixed name (a
 * table's file, a fixed subdirectory) lasts as long as its directory, whose
 * own entry is looked at again each second. Attributes never change (a
 * node's number is never reused) but a sized file's, which fsx_changed
 * invalidates. */
#define NAME_TIMEOUT 1.0
#define FIXED_TIMEOUT 3600.0
#define ATTR_TIMEOUT 3600.0

/* The session, for the invalidations of fsx_changed. */
static struct fuse_session *session;

void fsx_set_session(struct fuse_session *se) { session = se; }

static int node_of(fuse_req_t req, fuse_ino_t ino, struct fsx_node *nd)
{
	nd->eng = ((const struct fsx_state *)fuse_req_userdata(req))->eng;
	if (ino_decode(ino, &nd->n) < 0)
		return -ENOENT;
	nd->k = &fsx_kinds[nd->n.kind];
	nd->f = NULL;
	if (nd->k->rows && nd->n.file >= nd->k->nrows)
		return -ENOENT;
	if (nd->k->rows)
		nd->f = &nd->k->rows[nd->n.file];
	return 0;
}

static struct fsx_node node_from(const struct ino_node *n)
{
	struct fsx_node nd = {.n = *n, .k = &fsx_kinds[n->kind]};
	if (nd.k->rows)
		nd.f = &nd.k->rows[n->file];
	return nd;
}

int fsx_pin(const struct fsx_node *nd, struct fsx_obj *o)
{
	memset(o, 0, sizeof(*o));
	o->eng = nd->eng;
	return nd->k->fam->pin ? nd->k->fam->pin(&nd->n, o) : 0;
}

int fsx_pin_node(const struct fsx_node *nd, struct fsx_obj *o)
{
	int r = fsx_pin(nd, o);
	if (r == 0 && nd->k->fam->exists && !nd->k->fam->exists(&nd->n, o)) {
		fsx_unpin(nd, o);
		r = -ENOENT;
	}
	return r;
}

void fsx_unpin(const struct fsx_node *nd, struct fsx_obj *o)
{
	if (nd->k->fam->unpin)
		nd->k->fam->unpin(o);
}

static mode_t node_mode(const struct fsx_node *nd)
{
	return nd->f ? nd->f->ops->type | nd->f->mode : S_IFDIR | 0755;
}

/* Access: root only (the owner bits of the table), or with --group, the
 * same rights for that group; nobody else. The kernel checks (default_permissions). */
static void fill_attr(const struct fsx_state *fs, struct stat *st, fuse_ino_t ino, mode_t mode,
		      uint64_t created_usec)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (!S_ISLNK(mode)) {
		mode_t owner = mode & 0700;
		mode = (mode & S_IFMT) | owner | (fs->group_set ? owner >> 3 : 0);
	}
	st->st_mode = mode;
	st->st_gid = fs->group_set ? fs->group_gid : 0;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_blksize = 4096;
	if (created_usec) {
		st->st_mtim.tv_sec = (time_t)(created_usec / 1000000);
		st->st_mtim.tv_nsec = (long)(created_usec % 1000000) * 1000;
	} else {
		st->st_mtim = fs->start_time;
	}
	st->st_atim = st->st_ctim = st->st_mtim;
}

/* A sized file's size is its content's, and its mtime moves by a
 * nanosecond with each generation. */
static int sized_attr(const struct fsx_node *nd, struct fsx_obj *o, struct stat *st)
{
	struct buf b = {0};
	int r = nd->k->fam->show(nd, o, &b);
	st->st_size = (off_t)b.len;
	buf_free(&b);
	uint64_t ns = (uint64_t)st->st_mtim.tv_nsec + nd->k->fam->generation(o) % 1000000000u;
	st->st_mtim.tv_sec += (time_t)(ns / 1000000000u);
	st->st_mtim.tv_nsec = (long)(ns % 1000000000u);
	st->st_ctim = st->st_mtim;
	return r;
}

static bool is_sized(const struct fsx_node *nd) { return nd->f && nd->f->ops->sized; }

/* Attributes of a node that is still there. */
static int node_attr(fuse_req_t req, fuse_ino_t ino, struct stat *st)
{
	struct fsx_node nd;
	struct fsx_obj o;
	int r = node_of(req, ino, &nd);
	if (r == 0)
		r = fsx_pin_node(&nd, &o);
	if (r < 0)
		return r;
	const struct fsx_family *fam = nd.k->fam;
	fill_attr(fuse_req_userdata(req), st, ino, node_mode(&nd),
		  fam->created_usec ? fam->created_usec(&o) : 0);
	if (is_sized(&nd))
		r = sized_attr(&nd, &o, st);
	fsx_unpin(&nd, &o);
	return r;
}

void fsx_inval_sized(uint64_t id, bool gone)
{
	const struct fsx_kind *k = &fsx_kinds[INO_SBX_FILE];
	/* Its directory's when it went by something other than an rmdir
	 * (`remove` on ctl): it then answers ENOENT at once, not once the
	 * kernel's cached name and attributes time out. A state change leaves
	 * the directory's attributes as they are (one notify less a change). */
	fuse_ino_t dir = session && id && gone
				 ? ino_encode(&(struct ino_node){.kind = INO_SBX, .sbx = id})
				 : 0;
	if (dir)
		(void)fuse_lowlevel_notify_inval_inode(session, dir, -1, 0);
	for (size_t i = 0; session && id && i < k->nrows; i++) {
		if (!k->rows[i].ops->sized)
			continue;
		fuse_ino_t ino = ino_encode(&(struct ino_node){.kind = INO_SBX_FILE, .sbx = id,
							       .file = (uint32_t)i});
		/* Attributes only (offset -1): no page lock is waited for, so a
		 * caller may hold the sandbox's lock; -ENOENT: not in the cache;
		 * -ENOSYS: the session is not initialised yet (sandboxes adopted
		 * at start-up), the kernel holds nothing. */
		int r = ino ? fuse_lowlevel_notify_inval_inode(session, ino, -1, 0) : 0;
		if (r < 0 && r != -ENOENT && r != -ENOSYS)
			log_debug("sandbox id %" PRIu64 ": invalidating %s failed: %s", id,
				  k->rows[i].name, strerror(-r));
	}
}

/* At the start of every request: the thread is an RCU reader, and the
 * request is counted by kind (metrics: what a command costs in requests). */
static void op_begin(fuse_req_t req, enum engine_fop op)
{
	engine_thread_online();
	engine_count_fop(((const struct fsx_state *)fuse_req_userdata(req))->eng, op);
}

void fsx_reply_user_err(fuse_req_t req, int err)
{
	engine_count_error(((const struct fsx_state *)fuse_req_userdata(req))->eng, err);
	fuse_reply_err(req, err);
}

static void reply_entry(fuse_req_t req, fuse_ino_t ino, double entry_timeout)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	int r = ino ? node_attr(req, ino, &e.attr) : -ENOENT;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	e.ino = ino;
	e.attr_timeout = ATTR_TIMEOUT;
	e.entry_timeout = entry_timeout;
	fuse_reply_entry(req, &e);
}

/* The directory nd, or why not: ENOENT (no such node), ENOTDIR (a file). */
static int dir_of(fuse_req_t req, fuse_ino_t ino, struct fsx_node *nd)
{
	int r = node_of(req, ino, nd);
	return r < 0 ? r : nd->f ? -ENOTDIR : 0;
}

/* The row of dir's files named name, or -1. */
static int find_file(const struct fsx_kind *dir, const char *name)
{
	const struct fsx_kind *fk = dir->holds != INO_ROOT ? &fsx_kinds[dir->holds] : NULL;
	for (size_t i = 0; fk && i < fk->nrows; i++)
		if (strcmp(fk->rows[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The child `name` of directory p (its object pinned): a file, a fixed
 * subdirectory (*fixed), or one it holds by name. */
static int child_of(const struct fsx_node *p, struct fsx_obj *o, const char *name,
		    struct ino_node *c, bool *fixed)
{
	*c = (struct ino_node){.kind = p->k->holds, .sbx = p->n.sbx, .obj = p->n.obj};
	*fixed = true;
	int i = find_file(p->k, name);
	if (i >= 0) {
		c->file = (uint32_t)i;
		return 0;
	}
	for (const struct fsx_entry *e = p->k->subdirs; e && e->name; e++) {
		if (strcmp(e->name, name) == 0) {
			c->kind = e->kind;
			return 0;
		}
	}
	*fixed = false;
	if (!p->k->dyn || !p->k->dyn->lookup)
		return -ENOENT;
	return p->k->dyn->lookup(&p->n, o, name, c);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	op_begin(req, FOP_LOOKUP);
	struct fsx_node p;
	struct fsx_obj o;
	struct ino_node c;
	bool fixed = false;
	int r = dir_of(req, parent, &p);
	if (r == 0 && (r = fsx_pin_node(&p, &o)) == 0) {
		r = child_of(&p, &o, name, &c, &fixed);
		fsx_unpin(&p, &o);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry(req, ino_encode(&c), fixed ? FIXED_TIMEOUT : NAME_TIMEOUT);
}

static void reply_attr(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;
	int r = node_attr(req, ino, &st);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	op_begin(req, FOP_GETATTR);
	reply_attr(req, ino);
}

/* Only what `echo x > file` needs: truncation to 0 (and times, for touch). */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)fi;
	op_begin(req, FOP_SETATTR);
	int allowed = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
	if ((to_set & ~allowed) || ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	reply_attr(req, ino);
}

/* --- directories: a snapshot of the entries per opendir --- */

struct dir_ent {
	char name[64];
	fuse_ino_t ino;
	mode_t mode;
};

struct fsx_dir {
	struct dir_ent *ents;
	size_t n, cap;
	size_t nfixed; /* the first entries: ".", "..", rows and subdirs (not dyn's) */
};

int fsx_dir_add(struct fsx_dir *d, const char *name, const struct ino_node *n)
{
	if (d->n == d->cap) {
		size_t c = d->cap ? d->cap * 2 : 32;
		struct dir_ent *e = realloc(d->ents, c * sizeof(*e));
		if (!e)
			return -ENOMEM;
		d->ents = e;
		d->cap = c;
	}
	struct fsx_node nd = node_from(n);
	snprintf(d->ents[d->n].name, sizeof(d->ents[0].name), "%s", name);
	d->ents[d->n].ino = ino_encode(n);
	d->ents[d->n].mode = nd.f ? node_mode(&nd) : S_IFDIR;
	d->n++;
	return 0;
}

int fsx_dir_add_list(struct fsx_dir *d, const struct ino_node *dir, enum ino_kind kind,
		     char (*names)[64], uint32_t *ids, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		r = fsx_dir_add(d, names[i],
				&(struct ino_node){.kind = kind, .sbx = dir->sbx, .obj = ids[i]});
	free(names);
	free(ids);
	return r;
}

/* ".", "..", the files of p, its fixed subdirectories, then its children by name. */
static int dir_fill(struct fsx_dir *d, const struct fsx_node *p, struct fsx_obj *o)
{
	int r = fsx_dir_add(d, ".", &p->n);
	if (r == 0)
		r = fsx_dir_add(d, "..", &(struct ino_node){.kind = INO_ROOT});
	struct ino_node c = {.kind = p->k->holds, .sbx = p->n.sbx, .obj = p->n.obj};
	for (size_t i = 0; p->k->holds != INO_ROOT && i < fsx_kinds[c.kind].nrows && r == 0; i++) {
		c.file = (uint32_t)i;
		r = fsx_dir_add(d, fsx_kinds[c.kind].rows[i].name, &c);
	}
	for (const struct fsx_entry *e = p->k->subdirs; e && e->name && r == 0; e++)
		r = fsx_dir_add(d, e->name,
				&(struct ino_node){.kind = e->kind, .sbx = p->n.sbx, .obj = p->n.obj});
	d->nfixed = d->n;
	if (r == 0 && p->k->dyn && p->k->dyn->fill)
		r = p->k->dyn->fill(&p->n, o, d);
	return r;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	op_begin(req, FOP_OPENDIR);
	struct fsx_node nd;
	struct fsx_obj o;
	int r = dir_of(req, ino, &nd);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	struct fsx_dir *d = calloc(1, sizeof(*d));
	if (!d)
		r = -ENOMEM;
	else if ((r = fsx_pin_node(&nd, &o)) == 0) {
		r = dir_fill(d, &nd, &o);
		fsx_unpin(&nd, &o);
	}
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

/* The entries from off that fit in size. With plus (readdirplus: the kernel
 * asks for it when lookups follow a listing, as `grep . /sbx/NAME/x` after a
 * glob does), each entry as a lookup would give it, so a glob costs no lookup
 * per name; ".", ".." and a name gone since opendir then go as names only
 * (ino 0: the kernel makes no entry and counts no lookup). */
static void dir_reply(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fsx_dir *d = (struct fsx_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (size_t i = (size_t)off; i < d->n; i++) {
		const struct dir_ent *de = &d->ents[i];
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		if (plus && i >= 2 && node_attr(req, de->ino, &e.attr) == 0) {
			e.ino = de->ino;
			e.attr_timeout = ATTR_TIMEOUT;
			e.entry_timeout = i < d->nfixed ? FIXED_TIMEOUT : NAME_TIMEOUT;
		} else {
			memset(&e.attr, 0, sizeof(e.attr));
			e.attr.st_ino = de->ino;
			e.attr.st_mode = de->mode;
		}
		size_t len = plus ? fuse_add_direntry_plus(req, buf + used, size - used, de->name, &e,
							   (off_t)(i + 1))
				  : fuse_add_direntry(req, buf + used, size - used, de->name, &e.attr,
						      (off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	op_begin(req, FOP_READDIR);
	dir_reply(req, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)ino;
	op_begin(req, FOP_READDIR);
	dir_reply(req, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	op_begin(req, FOP_RELEASEDIR);
	struct fsx_dir *d = (struct fsx_dir *)(uintptr_t)fi->fh;
	free(d->ents);
	free(d);
	fuse_reply_err(req, 0);
}

/* --- files: what each does is its kind's ops --- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	op_begin(req, FOP_OPEN);
	struct fsx_node nd;
	struct fsx_obj o;
	int r = node_of(req, ino, &nd);
	if (r < 0 || !nd.f) {
		fuse_reply_err(req, r < 0 ? ENOENT : EISDIR);
		return;
	}
	const struct fsx_file_ops *ops = nd.f->ops;
	int acc = fi->flags & O_ACCMODE;
	/* Root passes the kernel's permission check; the file's nature still decides. */
	if (((acc == O_WRONLY || acc == O_RDWR) && !ops->writable) ||
	    ((acc == O_RDONLY || acc == O_RDWR) && !ops->readable)) {
		fuse_reply_err(req, EACCES);
		return;
	}
	struct fsx_handle *h = fsx_handle_new(&nd, fi->flags);
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((r = fsx_pin_node(&nd, &o)) == 0) {
		r = ops->open ? ops->open(h, &o, fi->flags) : 0;
		fsx_unpin(&nd, &o);
	}
	if (r < 0) {
		fsx_handle_put(h);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	/* Everything is made per open or per read: the kernel keeps none of it. */
	fi->direct_io = 1;
	fi->nonseekable = ops->nonseekable;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	op_begin(req, FOP_READ);
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	if (h->nd.f->ops->read) {
		h->nd.f->ops->read(req, h, size, off);
		return;
	}
	/* Reads of one file may run at once: the lock. */
	pthread_mutex_lock(&h->lock);
	fsx_reply_content_unlock(req, h, size, off);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;
	op_begin(req, FOP_WRITE);
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	if (h->nd.f->ops->write_try) {
		fsx_write_parked(req, h, buf, size);
		return;
	}
	if (h->nd.f->ops->own_thread) {
		fsx_write_own_thread(req, h, buf, size);
		return;
	}
	fsx_write_now(req, h, buf, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	op_begin(req, FOP_RELEASE);
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	if (h->nd.f->ops->release)
		h->nd.f->ops->release(h);
	fsx_handle_put(h);
	fuse_reply_err(req, 0);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	(void)ino;
	op_begin(req, FOP_POLL);
	struct fsx_handle *h = (struct fsx_handle *)(uintptr_t)fi->fh;
	if (h->nd.f->ops->poll) {
		h->nd.f->ops->poll(req, h, ph);
		return;
	}
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLRDNORM);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	op_begin(req, FOP_OTHER);
	struct fsx_node nd;
	struct fsx_obj o;
	if (node_of(req, ino, &nd) < 0 || !nd.f || !nd.f->ops->readlink) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct buf b = {0};
	int r = fsx_pin(&nd, &o);
	if (r == 0) {
		r = nd.f->ops->readlink(&nd, &o, &b);
		fsx_unpin(&nd, &o);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, b.data);
	buf_free(&b);
}

/* --- directories that make and remove what they hold --- */

static void mkdir_now(fuse_req_t req, const struct fsx_node *p, const char *name)
{
	struct fsx_obj o;
	struct ino_node c = {0};
	int r = fsx_pin(p, &o);
	if (r == 0) {
		r = p->k->dyn->mkdir(&p->n, &o, name, &c);
		fsx_unpin(p, &o);
	}
	if (r < 0)
		fsx_reply_user_err(req, -r);
	else
		reply_entry(req, ino_encode(&c), NAME_TIMEOUT);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)mode;
	op_begin(req, FOP_OTHER);
	struct fsx_node p;
	int r = dir_of(req, parent, &p);
	if (r < 0 || !p.k->dyn || !p.k->dyn->mkdir)
		fsx_reply_user_err(req, EPERM);
	else if (p.k->dyn->own_thread)
		fsx_dir_own_thread(req, &p, name, mkdir_now);
	else
		mkdir_now(req, &p, name);
}

static void rmdir_now(fuse_req_t req, const struct fsx_node *p, const char *name)
{
	struct fsx_obj o;
	int r = fsx_pin(p, &o);
	if (r == 0) {
		r = p->k->dyn->rmdir(&p->n, &o, name);
		fsx_unpin(p, &o);
	}
	if (r < 0)
		fsx_reply_user_err(req, -r);
	else
		fuse_reply_err(req, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	op_begin(req, FOP_OTHER);
	struct fsx_node p;
	int r = node_of(req, parent, &p);
	if (r == 0 && (p.f || !p.k->dyn || !p.k->dyn->rmdir))
		r = -EPERM;
	else if (r == 0 && find_file(p.k, name) >= 0)
		r = -ENOTDIR;
	if (r < 0)
		fsx_reply_user_err(req, -r);
	else if (p.k->dyn->own_thread)
		fsx_dir_own_thread(req, &p, name, rmdir_now);
	else
		rmdir_now(req, &p, name);
}

/* --- everything a user may not do here --- */

static void deny_name(fuse_req_t req, fuse_ino_t parent, const char *name, const char *what)
{
	(void)parent;
	op_begin(req, FOP_OTHER);
	engine_note_error(((const struct fsx_state *)fuse_req_userdata(req))->eng,
			  "%s '%s' is not allowed in sandboxfs", what, name);
	fsx_reply_user_err(req, EPERM);
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

static void op_ok(fuse_req_t req) { fuse_reply_err(req, 0); }

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	op_begin(req, FOP_OTHER);
	(void)ino;
	(void)datasync;
	(void)fi;
	op_ok(req);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	op_begin(req, FOP_OTHER);
	(void)mask;
	struct stat st;
	int r = node_attr(req, ino, &st);
	fuse_reply_err(req, r < 0 ? -r : 0);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	op_begin(req, FOP_OTHER);
	(void)ino;
	(void)name;
	(void)value;
	(void)size;
	(void)flags;
	fuse_reply_err(req, ENOTSUP);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	op_begin(req, FOP_OTHER);
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	op_begin(req, FOP_OTHER);
	(void)ino;
	if (size == 0)
		fuse_reply_xattr(req, 0);
	else
		fuse_reply_buf(req, NULL, 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	op_begin(req, FOP_OTHER);
	(void)ino;
	(void)name;
	fuse_reply_err(req, ENODATA);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	op_begin(req, FOP_OTHER);
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
	op_begin(req, FOP_OTHER);
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
	op_begin(req, FOP_OTHER);
	(void)ino;
	(void)off;
	(void)whence;
	(void)fi;
	fuse_reply_err(req, ENXIO);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	op_begin(req, FOP_OTHER);
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	op_begin(req, FOP_OTHER);
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
	/* No .flush: libfuse answers ENOSYS once, then the kernel sends none (a
	 * close() costs no request; nothing here is written back at close). */
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
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
