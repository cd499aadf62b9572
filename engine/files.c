/* Files in and out of a running sandbox (/sbx/NAME/files): one request per
 * open handle (ctl_files_request). On ns the daemon moves them, the path
 * resolved inside the sandbox's root (vmm_root_open), so that its links,
 * `..` and /proc's magic links never reach a host file; a backend whose
 * root is no host mount (qemu) serves them itself (its vmm_files_ops: the
 * guest agent). Only regular files of the sandbox's own file systems are
 * read or written, and a put appears whole or not at all (a temporary
 * renamed over the target). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "sandbox.h"

#define FILES_LIST_MAX VMM_FILES_LIST_MAX
#define FILES_TMP_TRIES 8
/* The bytes of puts' writes a sandbox that serves them (qemu) holds while
 * its channel has no room for them (each write's own: the FUSE layer's copy
 * of a parked write, at most its max_write). */
#define FILES_HELD_MAX (8u << 20)

_Static_assert((int)VMM_FILE_GET == CTL_FILES_GET && (int)VMM_FILE_PUT == CTL_FILES_PUT &&
	       (int)VMM_FILE_STAT == CTL_FILES_STAT && (int)VMM_FILE_LIST == CTL_FILES_LIST &&
	       (int)VMM_FILE_MKDIR == CTL_FILES_MKDIR, "the files verbs of ctl.h and vmm.h");

struct sbx_files {
	struct sbx *s; /* pinned */
	pthread_mutex_t lock; /* reads and writes of one handle may run at once */
	bool started;         /* a request was served (or a put is under way) */
	/* What a parked write waits for: room for a put's bytes (the backend's
	 * write), the backend's answer (files_remote_answer). */
	enum { FILES_IDLE, FILES_ROOM, FILES_ANSWER } wait;
	size_t wsent;         /* bytes of the write being served that went (or were taken) */
	size_t held;          /* of them, what counts in the sandbox's files_held */
	enum ctl_files_verb verb;
	int fd;               /* get: the file; put: the temporary */
	int dir;              /* put: the target's directory (O_PATH) */
	char tmp[32], name[NAME_MAX + 1];
	uint64_t size, done;  /* put: bytes announced, written */
	pid_t pid;            /* put: the init whose root the request reached */
	uint64_t pos;         /* reads so far */
	struct buf answer;    /* stat, list */
	struct vmm_file *vf;  /* the request the backend serves (s->ops->files); NULL: ours */
	char path[CTL_WRITE_MAX + 1]; /* escaped, for sentences */
};

int sbx_files_open(struct sbx *s, struct sbx_files **out)
{
	struct sbx_files *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	reg_tryget(&s->node);
	f->s = s;
	f->fd = f->dir = -1;
	pthread_mutex_init(&f->lock, NULL);
	*out = f;
	return 0;
}

bool sbx_files_started(struct sbx_files *f)
{
	pthread_mutex_lock(&f->lock);
	bool started = f->started;
	pthread_mutex_unlock(&f->lock);
	return started;
}

/* path opened inside the running sandbox's root (s->lock held meanwhile:
 * its init's pid stays the one we check). */
static int files_open_in(struct sbx_files *f, const char *path, int flags, struct err *e)
{
	struct sbx *s = f->s;
	pthread_mutex_lock(&s->lock);
	int r = 0;
	if (!(s->ops->caps & VMM_CAP_HOST_ROOT))
		r = err_set(e, -EOPNOTSUPP, "a %s sandbox has no files: its root is no host mount "
			    "and its backend does not serve them", s->cfg.backend);
	if (r == 0)
		r = sbx_require_running(s, "move files", e);
	if (r == 0)
		r = vmm_root_open(&s->vm, path, flags, 0, e);
	f->pid = s->vm.pid;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* The sandbox's own files: its root (overlay), a tmpfs, a disk; never
 * procfs or sysfs, whose files are views of the host's kernel. */
static int files_fs_ok(struct sbx_files *f, int fd, struct err *e)
{
	struct statfs sfs;
	if (fstatfs(fd, &sfs) < 0)
		return err_set(e, -errno, "%s: %s", f->path, strerror(errno));
	switch ((unsigned long)sfs.f_type) {
	case OVERLAYFS_SUPER_MAGIC:
	case TMPFS_MAGIC:
	case EXT4_SUPER_MAGIC:
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
		return 0;
	}
	return err_set(e, -EPERM, "%s is on a file system of type 0x%lx (procfs, sysfs...): files "
		       "moves the sandbox's own files only (its root, a tmpfs)", f->path,
		       (unsigned long)sfs.f_type);
}

static char file_type(mode_t m)
{
	return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISCHR(m) ? 'c' :
	       S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p' : 's';
}

/* get: the file opened O_PATH (its links followed inside the root), then,
 * once it proved a regular file of the sandbox, opened again for reading:
 * the daemon never opens a device node or a FIFO the sandbox made. */
static int files_get(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	struct stat st;
	char proc[32];
	int p = files_open_in(f, q->path, O_PATH, e), r = 0;
	if (p < 0)
		return p;
	if (fstat(p, &st) < 0)
		r = err_set(e, -errno, "%s: %s", f->path, strerror(errno));
	else if (S_ISDIR(st.st_mode))
		r = err_set(e, -EISDIR, "%s is a directory: get reads a regular file (list shows "
			    "a directory)", f->path);
	else if (!S_ISREG(st.st_mode))
		r = err_set(e, -EPERM, "%s is not a regular file (type %c): get reads regular "
			    "files only", f->path, file_type(st.st_mode));
	else
		r = files_fs_ok(f, p, e);
	if (r == 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", p);
		f->fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (f->fd < 0)
			r = err_set(e, -errno, "%s: %s", f->path, strerror(errno));
	}
	close(p);
	return r;
}

/* q's path (put, mkdir) ends with a name, which goes to f->name. */
static int files_last_name(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	const char *name = strrchr(q->path, '/') + 1;
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return err_set(e, -EINVAL, "%s does not end with a name", f->path);
	if (strlen(name) > NAME_MAX)
		return err_set(e, -ENAMETOOLONG, "%s: the last name is longer than %d bytes",
			       f->path, NAME_MAX);
	snprintf(f->name, sizeof(f->name), "%s", name);
	return 0;
}

/* The directory and the last name of q's path (put, mkdir), the directory
 * opened inside the root. */
static int files_parent(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	char dir[CTL_WRITE_MAX + 1];
	const char *slash = strrchr(q->path, '/');
	int nr = files_last_name(f, q, e);
	if (nr < 0)
		return nr;
	snprintf(dir, sizeof(dir), "%.*s", slash == q->path ? 1 : (int)(slash - q->path), q->path);
	int d = files_open_in(f, dir, O_PATH | O_DIRECTORY, e), r;
	if (d < 0)
		return err_wrap(e, "%s", f->path);
	if ((r = files_fs_ok(f, d, e)) < 0) {
		close(d);
		return r;
	}
	return d;
}

/* put: a temporary of mode q->mode beside the target, which the data fill. */
static int files_put(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	int d = files_parent(f, q, e);
	if (d < 0)
		return d;
	for (int i = 0; i < FILES_TMP_TRIES && f->fd < 0; i++) {
		uint64_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) < 0)
			rnd = now_usec() ^ (uint64_t)i;
		snprintf(f->tmp, sizeof(f->tmp), ".sbx-put.%016" PRIx64, rnd);
		f->fd = openat(d, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (f->fd < 0 && errno != EEXIST)
			break;
	}
	if (f->fd < 0 || fchmod(f->fd, q->mode) < 0) {
		int r = err_set(e, -errno, "cannot make a file in the directory of %s: %s", f->path,
				strerror(errno));
		if (f->fd >= 0) {
			unlinkat(d, f->tmp, 0);
			close(f->fd);
			f->fd = -1;
		}
		close(d);
		return r;
	}
	f->dir = d;
	f->size = q->size;
	return 0;
}

static void files_put_end(struct sbx_files *f, bool keep)
{
	if (f->dir < 0)
		return;
	if (!keep)
		unlinkat(f->dir, f->tmp, 0);
	close(f->fd);
	close(f->dir);
	f->fd = f->dir = -1;
}

/* The backend's word that a write or a get's reads may look again (its
 * thread, its locks held: f is alive until the backend's close; this only
 * marks). */
static void files_wake(void *arg)
{
	struct sbx_files *f = arg;
	waiters_kick(f->s->node.id, WAKE_FILES, (uint64_t)(uintptr_t)f);
	if (f->s->eng->files_watch_fn)
		f->s->eng->files_watch_fn(f->s->node.id);
}

/* What a look of f waits for: the backend's wake, or its deadline (a look
 * then fails). */
static struct sbx_wake files_wake_of(struct sbx_files *f, unsigned wait_ms)
{
	return (struct sbx_wake){.eng = f->s->eng, .sbx = f->s->node.id, .kind = WAKE_FILES,
				 .sub = (uint64_t)(uintptr_t)f, .fd = -1, .poll_ms = wait_ms};
}

/* The backend's request, served by the sandbox, started without the
 * sandbox's lock (its send may wait on the sandbox a bounded time); its
 * answer comes to files_remote_answer. */
static int files_remote(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	struct sbx *s = f->s;
	int r = q->verb == CTL_FILES_PUT || q->verb == CTL_FILES_MKDIR ? files_last_name(f, q, e) : 0;
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	r = sbx_require_running(s, "move files", e);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	struct vmm_file_req vr = {.verb = (enum vmm_file_verb)q->verb, .mode = q->mode,
				  .size = q->size, .path = q->path, .shown = f->path,
				  .wake = files_wake, .wake_arg = f};
	r = s->ops->files->open(&s->vm, &vr, &f->vf, e);
	f->size = q->size;
	return r;
}

static void files_remote_end(struct sbx_files *f)
{
	if (f->vf)
		f->s->ops->files->close(f->vf);
	f->vf = NULL;
}

/* A write's look for the backend's answer (the request's, or a put's rename
 * after its last bytes): -EAGAIN with wk, or the write's end. stat, list
 * and mkdir are then done: the handle keeps their answer only. */
static int files_remote_answer(struct sbx_files *f, struct sbx_wake *wk, struct err *e)
{
	unsigned wait_ms = 0;
	int r = f->s->ops->files->answer_try(f->vf, &f->answer, &wait_ms, e);
	f->wait = r == -EAGAIN ? FILES_ANSWER : FILES_IDLE;
	if (r == -EAGAIN) {
		*wk = files_wake_of(f, wait_ms);
		return r;
	}
	if (r < 0 || (f->verb != CTL_FILES_GET && f->verb != CTL_FILES_PUT) ||
	    (f->verb == CTL_FILES_PUT && f->done == f->size))
		files_remote_end(f);
	if (r < 0)
		buf_free(&f->answer);
	else
		f->started = true;
	return r;
}

/* A write of a put the sandbox serves holds its bytes until they went
 * (the FUSE layer keeps a parked write's): a sandbox holds at most
 * FILES_HELD_MAX, a write that would pass it fails whole (ENOBUFS). */
static int files_hold(struct sbx_files *f, size_t len, struct err *e)
{
	size_t was = atomic_fetch_add(&f->s->files_held, len);
	if (was + len > FILES_HELD_MAX) {
		atomic_fetch_sub(&f->s->files_held, len);
		return err_set(e, -ENOBUFS, "sandbox %s holds %zu bytes of puts that wait for room "
			       "in its channel already, at most %u: a write of %zu bytes to %s did "
			       "not go; write it again", f->s->node.name, was, FILES_HELD_MAX, len,
			       f->path);
	}
	f->held = len;
	return 0;
}

static void files_unhold(struct sbx_files *f)
{
	if (f->held)
		atomic_fetch_sub(&f->s->files_held, f->held);
	f->held = 0;
}

/* Data of a put, written at its end; the last byte renames it into place
 * (served by the sandbox: handed to it as far as its channel takes them
 * now, -EAGAIN with wk while the rest waits for room; the write's look
 * then waits for the rename). */
static int files_put_data(struct sbx_files *f, const char *buf, size_t len, struct sbx_wake *wk,
			  struct err *e)
{
	int r = 0;
	if (f->s->ops->files && f->vf && len <= f->size - f->done) {
		size_t took = 0;
		unsigned wait_ms = 0;
		r = f->s->ops->files->write(f->vf, buf, len, &took, &wait_ms, e);
		f->done += took;
		f->wsent += took;
		f->wait = r == -EAGAIN ? FILES_ROOM : FILES_IDLE;
		if (r == -EAGAIN)
			*wk = files_wake_of(f, wait_ms);
		else if (r < 0)
			files_remote_end(f);
		return r;
	}
	if (f->dir < 0 && !f->vf)
		return err_set(e, -EBUSY, "the put of %s is over; open files again for another "
			       "request", f->path);
	if (len > f->size - f->done) {
		r = err_set(e, -EFBIG, "%s: %" PRIu64 " bytes written past its size=%" PRIu64
			    "; nothing was put", f->path, f->done + len - f->size, f->size);
		files_remote_end(f);
		goto fail;
	}
	/* Its files are that init's: a sandbox stopped (or started again) since
	 * has other mounts over the same upper layer. */
	pthread_mutex_lock(&f->s->lock);
	bool same = atomic_load(&f->s->state) == SBX_RUNNING && f->s->vm.pid == f->pid;
	pthread_mutex_unlock(&f->s->lock);
	if (!same) {
		r = err_set(e, -EBUSY, "sandbox %s stopped during the put of %s; nothing was put",
			    f->s->node.name, f->path);
		goto fail;
	}
	for (size_t at = 0; at < len;) {
		ssize_t n = pwrite(f->fd, buf + at, len - at, (off_t)(f->done + at));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(e, -errno, "writing %s: %s; nothing was put", f->path,
				    strerror(errno));
			goto fail;
		}
		at += (size_t)n;
	}
	f->done += len;
	if (f->done < f->size)
		return 0;
	if (renameat(f->dir, f->tmp, f->dir, f->name) < 0) {
		r = err_set(e, -errno, "cannot put %s: %s; nothing was put", f->path, strerror(errno));
		goto fail;
	}
	files_put_end(f, true);
	return 0;
fail:
	files_put_end(f, false);
	return r;
}

/* One entry's line of list: type, mode, size, mtime, name (escaped). */
static int list_entry(struct buf *b, int dfd, const char *name)
{
	char esc[4 * NAME_MAX + 1];
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0; /* gone meanwhile */
	str_escape_name(esc, sizeof(esc), name);
	return buf_printf(b, "%c %04o %" PRIu64 " %lld %s\n", file_type(st.st_mode),
			  (unsigned)(st.st_mode & 07777), (uint64_t)st.st_size,
			  (long long)st.st_mtime, esc);
}

static int files_list(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	int fd = files_open_in(f, q->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, e), r = 0;
	if (fd < 0)
		return fd;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return err_set(e, -errno, "%s: %s", f->path, strerror(errno));
	}
	size_t count = 0;
	struct dirent *de;
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (++count > FILES_LIST_MAX)
			r = err_set(e, -E2BIG, "%s has more than %d entries: list stops there",
				    f->path, FILES_LIST_MAX);
		else if (list_entry(&f->answer, dirfd(d), de->d_name) < 0)
			r = err_set(e, -ENOMEM, "out of memory listing %s", f->path);
	}
	if (r == 0 && errno)
		r = err_set(e, -errno, "reading %s: %s", f->path, strerror(errno));
	closedir(d);
	return r;
}

/* stat: the path's last name itself (a link is shown, with its target). */
static int files_stat(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	char target[PATH_MAX], esc[4 * PATH_MAX];
	struct stat st;
	int fd = files_open_in(f, q->path, O_PATH | O_NOFOLLOW, e), r = 0;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = err_set(e, -errno, "%s: %s", f->path, strerror(errno));
		goto out;
	}
	r = buf_printf(&f->answer, "type %c\nmode %04o\nsize %" PRIu64 "\nuid %u\ngid %u\n"
		       "nlink %" PRIu64 "\nmtime %lld\n", file_type(st.st_mode),
		       (unsigned)(st.st_mode & 07777), (uint64_t)st.st_size, (unsigned)st.st_uid,
		       (unsigned)st.st_gid, (uint64_t)st.st_nlink, (long long)st.st_mtime);
	if (r == 0 && S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		str_escape_name(esc, sizeof(esc), target);
		r = buf_printf(&f->answer, "target %s\n", esc);
	}
	if (r < 0)
		r = err_set(e, -ENOMEM, "out of memory");
out:
	close(fd);
	return r;
}

static int files_mkdir(struct sbx_files *f, const struct ctl_files_req *q, struct err *e)
{
	int d = files_parent(f, q, e), r = 0;
	if (d < 0)
		return d;
	if (mkdirat(d, f->name, 0700) < 0) {
		r = err_set(e, -errno, "cannot make %s: %s", f->path, strerror(errno));
		goto out;
	}
	/* The mode without the daemon's umask, on the directory just made (a
	 * link put there meanwhile is refused, never followed). */
	int fd = openat(d, f->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fchmod(fd, q->mode) < 0)
		r = err_set(e, -errno, "cannot set the mode of %s: %s", f->path, strerror(errno));
	if (fd >= 0)
		close(fd);
out:
	close(d);
	return r;
}

/* A put's write from where its looks got (wsent): its bytes handed over,
 * then, for the request's write and the last one, the backend's answer
 * (the temporary made; the file in place). */
static int files_put_more(struct sbx_files *f, const char *buf, size_t len, struct sbx_wake *wk,
			  struct err *e)
{
	int r = files_put_data(f, buf + f->wsent, len - f->wsent, wk, e);
	if (r == 0 && f->vf && (!f->started || f->done == f->size))
		r = files_remote_answer(f, wk, e);
	return r;
}

static int files_request(struct sbx_files *f, const char *buf, size_t len, struct sbx_wake *wk,
			 struct err *e)
{
	static int (*const serve[])(struct sbx_files *, const struct ctl_files_req *, struct err *) = {
		[CTL_FILES_GET] = files_get, [CTL_FILES_PUT] = files_put, [CTL_FILES_STAT] = files_stat,
		[CTL_FILES_LIST] = files_list, [CTL_FILES_MKDIR] = files_mkdir,
	};
	struct ctl_files_req *q = malloc(sizeof(*q));
	size_t at = 0;
	int r = q ? ctl_files_request(buf, len, q, &at, e) : err_set(e, -ENOMEM, "out of memory");
	if (r == 0 && q->verb != CTL_FILES_PUT && at < len)
		r = err_set(e, -EINVAL, "one request line per write: %s takes no data",
			    q->verb == CTL_FILES_GET ? "get" : "this request");
	if (r == 0)
		str_escape_name(f->path, sizeof(f->path), q->path);
	if (r == 0 && f->s->ops->files) {
		f->verb = q->verb;
		/* A put's bytes in this write follow the request at once: its
		 * write's look waits for the temporary (and the rename, with all). */
		bool put = q->verb == CTL_FILES_PUT;
		f->wsent = at;
		if ((r = put ? files_hold(f, len - at, e) : 0) == 0 && (r = files_remote(f, q, e)) == 0)
			r = put ? files_put_more(f, buf, len, wk, e) : files_remote_answer(f, wk, e);
	} else if (r == 0 && (r = serve[q->verb](f, q, e)) < 0) {
		buf_free(&f->answer);
	} else if (r == 0) {
		f->verb = q->verb;
		f->started = true;
		if (q->verb == CTL_FILES_PUT) /* the rest of the write, and size=0, go on */
			r = files_put_data(f, buf + at, len - at, wk, e);
	}
	free(q);
	return r;
}

int sbx_files_write_try(struct sbx_files *f, const char *buf, size_t len, bool again,
			struct sbx_wake *wk)
{
	struct err e = {0};
	int r;
	pthread_mutex_lock(&f->lock);
	if (again && f->wait == FILES_ROOM)
		r = files_put_more(f, buf, len, wk, &e);
	else if (again && f->wait == FILES_ANSWER)
		r = files_remote_answer(f, wk, &e);
	else if (again || f->wait != FILES_IDLE) /* one that was interrupted while it waited */
		r = err_set(&e, -EBUSY, "a write of this files handle was interrupted while its "
			    "request waited; open files again");
	else if (!f->started)
		r = files_request(f, buf, len, wk, &e);
	else if (f->verb != CTL_FILES_PUT)
		r = err_set(&e, -EBUSY, "this files handle already served a request; open files "
			    "again");
	else if ((f->wsent = 0, r = f->vf ? files_hold(f, len, &e) : 0) == 0)
		r = files_put_more(f, buf, len, wk, &e);
	if (r != -EAGAIN)
		files_unhold(f); /* the write ended: the FUSE layer's copy goes */
	pthread_mutex_unlock(&f->lock);
	if (r < 0 && r != -EAGAIN)
		sbx_fail(f->s, r, e.msg);
	return r;
}

/* A get served by the sandbox: its next bytes, or -EAGAIN with what to
 * wait for (the backend's wake, or its deadline: a look then fails). */
static ssize_t files_remote_read(struct sbx_files *f, char *buf, size_t size,
				 struct sbx_wake *wk)
{
	struct err e = {0};
	unsigned wait_ms = 0;
	ssize_t n = f->s->ops->files->read_try(f->vf, buf, size, &wait_ms, &e);
	if (n == -EAGAIN)
		*wk = files_wake_of(f, wait_ms);
	else if (n < 0)
		sbx_fail(f->s, (int)n, e.msg);
	return n;
}

ssize_t sbx_files_read_try(struct sbx_files *f, char *buf, size_t size, struct sbx_wake *wk)
{
	ssize_t n = 0;
	pthread_mutex_lock(&f->lock);
	if (f->verb == CTL_FILES_GET && f->vf) {
		n = files_remote_read(f, buf, size, wk);
	} else if (f->verb == CTL_FILES_GET && f->fd >= 0) {
		while ((n = pread(f->fd, buf, size, (off_t)f->pos)) < 0 && errno == EINTR)
			;
		if (n < 0)
			n = -errno;
	} else if (f->pos < f->answer.len) {
		n = (ssize_t)(f->answer.len - f->pos < size ? f->answer.len - f->pos : size);
		memcpy(buf, f->answer.data + f->pos, (size_t)n);
	}
	if (n > 0)
		f->pos += (uint64_t)n;
	pthread_mutex_unlock(&f->lock);
	return n;
}

bool sbx_files_readable(struct sbx_files *f)
{
	pthread_mutex_lock(&f->lock);
	bool ready = !(f->verb == CTL_FILES_GET && f->vf) || f->s->ops->files->readable(f->vf);
	pthread_mutex_unlock(&f->lock);
	return ready;
}

void sbx_files_close(struct sbx_files *f)
{
	files_put_end(f, false); /* a put not complete leaves nothing */
	files_remote_end(f);
	files_unhold(f); /* its write was interrupted while it waited */
	if (f->fd >= 0)
		close(f->fd);
	buf_free(&f->answer);
	pthread_mutex_destroy(&f->lock);
	sbx_put(f->s);
	free(f);
}
