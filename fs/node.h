/* The tree as data, in the manner of kernfs: a row per kind of node
 * (fs/files.c), directories included, each naming its inode range (its
 * index, fs/inode.h), its family (what its nodes live in) and, for a
 * directory, what it holds; a file's row points at the ops of its kind of
 * file. The generic operations (fs/fsx.c) read these and never ask which
 * node they serve. Private to fs/. */
#ifndef SBX_FSX_NODE_H
#define SBX_FSX_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "fsx.h"
#include "inode.h"

/* What a node lives in, pinned for one operation by its family. */
struct fsx_obj {
	struct engine *eng; /* the node's engine (fsx_pin copies it) */
	struct sbx *sbx;
	struct warm_pool *pool;
	struct image *image;
};

struct fsx_node;
struct fsx_handle;
struct fsx_park;
struct fsx_dir;

/* The files of one directory, as rows: what they are, and what the ops of
 * their kind call, as the engine declares it (one set, by the row's family). */
struct fsx_file {
	const char *name;
	mode_t mode;
	const struct fsx_file_ops *ops;
	union {
		struct { /* the top level, /sbx/images/ */
			int (*show)(struct engine *eng, struct buf *b);
			int (*write)(struct engine *eng, const char *buf, size_t len);
		} top;
		struct { /* a sandbox */
			int (*show)(struct sbx *s, struct buf *b);
			int (*write)(struct sbx *s, const char *buf, size_t len);
			int (*clone)(struct sbx *s, const char *buf, size_t len, uint32_t *id);
			int (*link)(struct sbx *s, struct buf *b);
		} sbx;
		struct { /* a job (show: sbx_job_show, by the row's name) */
			int (*write)(struct sbx *s, uint32_t job, const char *buf, size_t len);
			int stream; /* 0 stdout, 1 stderr */
		} job;
		struct {
			int (*show)(struct warm_pool *p, struct buf *b);
			int (*write)(struct warm_pool *p, const char *buf, size_t len);
		} pool;
		struct {
			int (*show)(struct image *im, struct buf *b);
		} image;
	};
};

/* A kind of file: what open, read, write, poll and close do. NULL read:
 * the content made at open; NULL poll: always readable. */
struct fsx_file_ops {
	mode_t type; /* S_IFREG, or S_IFLNK */
	bool readable, writable, nonseekable;
	/* The content changes only when the family's generation moves, and the
	 * attributes say so: the content's length as st_size, an mtime that
	 * moves with the generation; fsx_changed invalidates them in the kernel.
	 *
	 * Read as every file is (direct_io, made at each read from offset 0),
	 * never through the page cache, whose reads the daemon cannot keep
	 * whole once the length changes (Linux 6.18, mm/filemap.c and
	 * fs/fuse/): filemap_read takes a cached folio, then reads i_size, then
	 * copies up to it, under no lock a FUSE server can order; an attribute
	 * reply fuse_change_attributes accepts (another task's stat) writes
	 * i_size before it drops the folios. A read racing a change that takes
	 * the old folio ("running\n") and the new i_size (7) returns "running"
	 * cut, or NUL bytes past a shorter old word. A size bound that a short
	 * read lowers fails too: fuse_read_update_size keeps the bound when the
	 * inode's attr_version moved since the read was sent (every change's
	 * notify_inval_inode moves it), and the read is padded with NULs to it.
	 * Only content whose length never changes could be cached soundly; an
	 * inode per state would hold such content, but a handle held across a
	 * change must read the new state (a monitor's pread at offset 0). With
	 * the page cache, fscache.bats's whole reads beside stop, start, pause
	 * and resume read "paused\n\0" and "stopped\n\n" in each of two runs.
	 *
	 * What direct_io costs, the floor with FUSE here: each file's open and
	 * read are requests (FUSE_NO_OPEN_SUPPORT is the whole mount's, and
	 * exec, wait and run need their own handles), and a direct read marks
	 * the inode's atime stale (fuse_invalidate_atime, skipped only on a
	 * read-only superblock), so the next stat(2) of it, a glob's lstat,
	 * asks for attributes; and every read(2) is a request, the one that
	 * finds the end too (the kernel looks at no size first): getattr, open,
	 * read and read at the end waited for (grep to /dev/null stops at its
	 * first match: no read at the end), a release not. Attribute and entry
	 * timeouts do not enter into it. */
	bool sized;
	/* The node's object is pinned (o); flags are open(2)'s. */
	int (*open)(struct fsx_handle *h, struct fsx_obj *o, int flags);
	void (*read)(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off);
	/* A read that may wait (read is fsx_read_parked): looks once, never
	 * blocks; -EAGAIN: nothing yet, and wk says what to wait for. */
	int (*try)(struct fsx_park *rd, bool final, struct sbx_wake *wk);
	unsigned deadline_ms; /* a parked read or write is answered by then (0: no deadline) */
	int (*write)(struct fsx_handle *h, const char *buf, size_t len);
	/* write may take long (a command that waits on a sandbox): it runs on
	 * a thread of its own, which answers it (fs/handle.c). */
	bool own_thread;
	/* A write that may wait, instead of write (parked as a read is): looks
	 * once at p's bytes (p->wbuf, p->wlen; p->looks before this one), never
	 * blocks; -EAGAIN: not done yet, and wk says what to wait for. */
	int (*write_try)(struct fsx_park *p, bool final, struct sbx_wake *wk);
	void (*poll)(fuse_req_t req, struct fsx_handle *h, struct fuse_pollhandle *ph);
	void (*release)(struct fsx_handle *h); /* the file is closed */
	void (*drop)(struct fsx_handle *h);    /* the handle is freed */
	int (*readlink)(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b);
};

/* What the nodes of a kind live in: the top level, a sandbox, a snapshot or
 * a job of one, a pool, an image. NULL hooks: nothing to pin, a node that is
 * there while its object is, made at the daemon's start. */
struct fsx_family {
	/* The object (ENOENT: gone); unpin releases what pin took. */
	int (*pin)(const struct ino_node *n, struct fsx_obj *o);
	void (*unpin)(struct fsx_obj *o);
	/* Is the node itself still there (a snapshot, a job)? */
	bool (*exists)(const struct ino_node *n, struct fsx_obj *o);
	uint64_t (*created_usec)(const struct fsx_obj *o);
	uint64_t (*generation)(const struct fsx_obj *o); /* events: what poll watches */
	/* The row's handlers, called with the pinned object. */
	int (*show)(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b);
	int (*write)(const struct fsx_node *nd, struct fsx_obj *o, const char *buf, size_t len);
};

/* The children a directory holds by name, besides its fixed entries; each
 * hook gets the directory's node with its object pinned. NULL: none, and
 * mkdir or rmdir is not allowed there (EPERM). */
struct fsx_dir_ops {
	int (*lookup)(const struct ino_node *dir, struct fsx_obj *o, const char *name,
		      struct ino_node *child);
	int (*fill)(const struct ino_node *dir, struct fsx_obj *o, struct fsx_dir *d);
	int (*mkdir)(const struct ino_node *dir, struct fsx_obj *o, const char *name,
		     struct ino_node *child);
	int (*rmdir)(const struct ino_node *dir, struct fsx_obj *o, const char *name);
	/* mkdir and rmdir may take long (a snapshot's copy, whose length the
	 * sandbox's files decide): they run on a command thread (fs/handle.c). */
	bool own_thread;
};

/* A fixed subdirectory. */
struct fsx_entry {
	const char *name;
	enum ino_kind kind;
};

/* A kind of node: a file kind has rows; a directory kind has none. */
struct fsx_kind {
	const struct fsx_family *fam;
	const struct fsx_file *rows;
	size_t nrows;
	enum ino_kind holds; /* a directory: the kind of its files (INO_ROOT: none) */
	const struct fsx_entry *subdirs; /* a directory: fixed ones, up to a NULL name */
	const struct fsx_dir_ops *dyn;
};
extern const struct fsx_kind fsx_kinds[INO_NKINDS];

/* A node as an operation sees it: its number read, its kind's row, its file's. */
struct fsx_node {
	struct ino_node n;
	const struct fsx_kind *k;
	const struct fsx_file *f; /* NULL: a directory */
	struct engine *eng;       /* the session's (fuse_req_userdata), whose objects it names */
};

/* An open file. Its content is made once per open (or remade, events). */
struct fsx_handle {
	struct fsx_node nd;
	struct buf content;
	struct buf spare;  /* show, sized: the content before, whose memory the next is made in */
	bool nonblock;     /* opened O_NONBLOCK */
	uint64_t gen;      /* events, wait: the generation the content shows, or seen at open */
	bool made;         /* wait, run: content made */
	bool targeted;     /* wait: a target was written; reads follow the handle's cursor (pos) */
	char want[16];     /* wait: the state that target asks for ("" after a bad one) */
	unsigned deadline_ms; /* a parked read's bound instead of its ops' (0: theirs) */
	bool served;       /* show, setting: content was read; a read at 0 remakes it */
	struct sbx_exec *x; /* exec: the session */
	struct sbx_files *files; /* files: the request */
	uint32_t job;      /* run: the job it started */
	bool started;      /* run: a job was started through this handle */
	size_t pos;        /* run: how much of the id was read */
	uint64_t read_end; /* stdout, stderr: the furthest a read got, where poll looks on */
	uint64_t skew;     /* stdout, stderr: how far reads were moved past dropped output */
	pthread_mutex_t lock;
	/* The open file's, and one per parked read: the kernel releases a file
	 * only after its reads returned, but a parked read never relies on it. */
	_Atomic int refs;
};

struct fsx_handle *fsx_handle_new(const struct fsx_node *nd, int flags);
struct fsx_handle *fsx_handle_get(struct fsx_handle *h);
void fsx_handle_put(struct fsx_handle *h);

/* fsx_pin: the object the node lives in (-ENOENT: gone), for its handlers;
 * fsx_pin_node: and the node itself is there. fsx_unpin releases either. */
int fsx_pin(const struct fsx_node *nd, struct fsx_obj *o);
int fsx_pin_node(const struct fsx_node *nd, struct fsx_obj *o);
void fsx_unpin(const struct fsx_node *nd, struct fsx_obj *o);

/* A read or a write parked until it can be answered (fs/handle.c). */
struct fsx_park {
	struct waiter w; /* first: a request is its waiter */
	fuse_req_t req;
	struct fsx_handle *h; /* pinned */
	bool write;
	unsigned looks;       /* looks before the one running */
	size_t size;          /* a read's */
	off_t off;
	char *data; /* a read: what the last look found, for the answer; a write: its copy */
	size_t len;
	const char *wbuf; /* a write's bytes: libfuse's at the first look, then data */
	size_t wlen;      /* a write_try that took fewer (a short write) lowers it */
	int fd;           /* a write_try's own fd across its looks (-1: none), closed at the end */
};
/* A look's answer for rd: up to rd->size bytes of data (len bytes in all)
 * from off; none past the end. 0, or -ENOMEM. */
int fsx_park_take(struct fsx_park *rd, const char *data, size_t len, uint64_t off);
/* The read of a file whose ops' try may wait. */
void fsx_read_parked(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off);
/* The same, but under O_NONBLOCK one look answered at once (EAGAIN when it
 * would wait). */
void fsx_read_once_or_parked(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off);
/* The write of a file whose ops' write_try may wait; buf is copied if it must. */
void fsx_write_parked(fuse_req_t req, struct fsx_handle *h, const char *buf, size_t len);
/* The write of a file whose ops say own_thread, on a command thread. */
void fsx_write_own_thread(fuse_req_t req, struct fsx_handle *h, const char *buf, size_t len);
/* op(req, dir, name) (a mkdir's or rmdir's, which answers req) on a command
 * thread, for a directory whose ops say own_thread; here when none takes it. */
void fsx_dir_own_thread(fuse_req_t req, const struct fsx_node *dir, const char *name,
			void (*op)(fuse_req_t req, const struct fsx_node *dir, const char *name));
/* Any other write: ops->write (EBADF without one) here, and the answer. */
void fsx_write_now(fuse_req_t req, struct fsx_handle *h, const char *buf, size_t len);
/* A write whose failure's sentence becomes h's content (Plan 9's errstr:
 * what a read of this handle gives back), and a write that worked empties
 * it; write is the file's own. fsx_errstr_keep does it for r, a write's
 * result (the engine's sentence, on this thread, since engine_error_clear):
 * for a write_try's look that ended. */
int fsx_errstr_write(struct fsx_handle *h, const char *buf, size_t len,
		     int (*write)(struct fsx_handle *h, const char *buf, size_t len));
void fsx_errstr_keep(struct fsx_handle *h, int r);
/* With h->lock held: answers from h's content at off, and unlocks. */
void fsx_reply_content_unlock(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off);
/* The same from h's own cursor (h->pos), advanced: for files written and
 * read on one handle, whose write moved the file offset. */
void fsx_reply_cursor_unlock(fuse_req_t req, struct fsx_handle *h, size_t size);
/* An error answering something a user did (not a lookup miss): counted for metrics. */
void fsx_reply_user_err(fuse_req_t req, int err);

/* The entries of a directory, collected at opendir. */
int fsx_dir_add(struct fsx_dir *d, const char *name, const struct ino_node *n);
/* names[i] is object ids[i] of kind, in dir's sandbox; frees both arrays. */
int fsx_dir_add_list(struct fsx_dir *d, const struct ino_node *dir, enum ino_kind kind,
		     char (*names)[64], uint32_t *ids, size_t n);

/* The job of a files handle's poll waits: no job has it (SBX_JOB_ID_MAX). */
#define FSX_POLL_FILES UINT32_MAX
_Static_assert(SBX_JOB_ID_MAX < FSX_POLL_FILES, "a job's poll waits are not a files handle's");

/* poll(2) waits, woken by fsx_changed, fsx_job_changed and fsx_files_changed (fs/poll.c). ph
 * becomes h's wait for (id, job), replacing its last, unless changed(arg),
 * asked under the lock a wakeup takes, says the change came already; ph is
 * kept or destroyed. Returns changed's answer. */
bool fsx_poll_wait(const struct fsx_handle *h, uint64_t id, uint32_t job,
		   struct fuse_pollhandle *ph, bool (*changed)(void *arg), void *arg);
/* The same without a look: returns the wait's number (0: no memory; ph is
 * then destroyed), for fsx_poll_cancel once a look finds it ready. */
uint64_t fsx_poll_add(const struct fsx_handle *h, uint64_t id, uint32_t job,
		      struct fuse_pollhandle *ph);
void fsx_poll_cancel(uint64_t seq);
void fsx_poll_release(struct fsx_handle *h);

/* The kernel's attributes of a sandbox's sized files are stale, and with
 * gone those of its directory (fs/fsx.c). */
void fsx_inval_sized(uint64_t id, bool gone);

/* The kinds of file (fs/content.c, fs/sandbox.c, fs/jobs.c). */
extern const struct fsx_file_ops fsx_show_ops, fsx_sized_ops, fsx_ctl_ops, fsx_setting_ops,
	fsx_events_ops, fsx_wait_ops, fsx_session_ops, fsx_clone_ops, fsx_link_ops,
	fsx_stream_ops, fsx_stdin_ops, fsx_job_pid_ops, fsx_files_ops;
/* The families (fs/top.c, sandbox.c, snapshots.c, jobs.c, pools.c, images.c). */
extern const struct fsx_family fsx_top_family, fsx_sbx_family, fsx_snap_family,
	fsx_job_family, fsx_pool_family, fsx_image_family;
/* The directories with children by name. */
extern const struct fsx_dir_ops fsx_root_dir, fsx_snaps_dir, fsx_jobs_dir, fsx_pools_dir,
	fsx_images_dir;
/* The sandbox family's pin, which a snapshot's and a job's share. */
int fsx_sbx_pin(const struct ino_node *n, struct fsx_obj *o);
void fsx_sbx_unpin(struct fsx_obj *o);
uint64_t fsx_sbx_created_usec(const struct fsx_obj *o);

#endif
