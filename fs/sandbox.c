/* A sandbox's directory (/sbx/NAME/): the family its files, snapshots/ and
 * jobs/ belong to, and its kinds of file that only a sandbox has: wait (a
 * read parked until the sandbox changes), exec (a command session per open),
 * run (a write starts a job, a read returns its id), root (a link) and
 * files (a request on the sandbox's files per open). */
#include "node.h"

#include <poll.h>
#include <string.h>

#define WAIT_DEFAULT_MS 30000

int fsx_sbx_pin(const struct ino_node *n, struct fsx_obj *o)
{
	o->sbx = sbx_get_id(o->eng, n->sbx);
	return o->sbx ? 0 : -ENOENT;
}

void fsx_sbx_unpin(struct fsx_obj *o) { sbx_put(o->sbx); }

uint64_t fsx_sbx_created_usec(const struct fsx_obj *o) { return sbx_created_wall_usec(o->sbx); }

static uint64_t sbx_fam_generation(const struct fsx_obj *o) { return sbx_generation(o->sbx); }

static int sbx_fam_show(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b)
{
	return nd->f->sbx.show(o->sbx, b);
}

static int sbx_fam_write(const struct fsx_node *nd, struct fsx_obj *o, const char *buf,
			 size_t len)
{
	return nd->f->sbx.write(o->sbx, buf, len);
}

const struct fsx_family fsx_sbx_family = {
	.pin = fsx_sbx_pin, .unpin = fsx_sbx_unpin, .created_usec = fsx_sbx_created_usec,
	.generation = sbx_fam_generation, .show = sbx_fam_show, .write = sbx_fam_write,
};

/* --- wait --- */

static int wait_open(struct fsx_handle *h, struct fsx_obj *o, int flags)
{
	(void)flags;
	h->gen = sbx_generation(o->sbx);
	return 0;
}

/* The look of a read that follows a written target: the events once s
 * shows it; the sentence, kept as the content for the next read, when it
 * failed or the bound passed first. */
static int wait_target(struct fsx_handle *h, struct sbx *s, bool final, struct sbx_wake *wk)
{
	struct err e = {0};
	int r = sbx_wait_reached(s, h->want, h->gen, &e);
	if (r == 1)
		return h->nd.f->sbx.show(s, &h->content);
	if (r == 0 && h->nonblock)
		return -EAGAIN;
	if (r == 0 && !final) {
		*wk = (struct sbx_wake){.eng = h->nd.eng, .sbx = h->nd.n.sbx, .kind = WAKE_STATE,
					.fd = -1};
		return -EAGAIN;
	}
	if (r == 0 && !strcmp(h->want, "any"))
		r = err_set(&e, -ETIMEDOUT, "the sandbox did not change in %u.%03u s",
			    h->deadline_ms / 1000, h->deadline_ms % 1000);
	else if (r == 0)
		r = err_set(&e, -ETIMEDOUT, "the sandbox is not %s after %u.%03u s", h->want,
			    h->deadline_ms / 1000, h->deadline_ms % 1000);
	buf_free(&h->content);
	if (buf_printf(&h->content, "%s\n", e.msg) < 0)
		buf_free(&h->content);
	return r;
}

/* The content is made once, by the first read at offset 0 that finds the
 * sandbox changed since the open (or at the deadline, or at once with
 * O_NONBLOCK), or, after a target was written, that finds it reached (from
 * the handle's cursor: a write moved the file's offset); a removed sandbox
 * keeps what was made. */
static int wait_try(struct fsx_park *rd, bool final, struct sbx_wake *wk)
{
	struct fsx_handle *h = rd->h;
	int r = 0;
	pthread_mutex_lock(&h->lock);
	off_t off = h->targeted ? (off_t)h->pos : rd->off;
	if (!h->made && off == 0) {
		struct sbx *s = sbx_get_id(h->nd.eng, h->nd.n.sbx);
		if (!s) {
			r = -ENODEV;
		} else if (h->targeted) {
			r = wait_target(h, s, final, wk);
			h->made = r != -EAGAIN;
		} else if (!final && !h->nonblock && sbx_generation(s) == h->gen) {
			*wk = (struct sbx_wake){.eng = h->nd.eng, .sbx = h->nd.n.sbx, .kind = WAKE_STATE,
						.fd = -1};
			r = -EAGAIN;
		} else if ((r = h->nd.f->sbx.show(s, &h->content)) == 0) {
			h->made = true;
		}
		if (s)
			sbx_put(s);
	}
	if (r == 0 && off >= 0 &&
	    (r = fsx_park_take(rd, h->content.data, h->content.len, (uint64_t)off)) == 0 &&
	    h->targeted)
		h->pos += rd->len;
	pthread_mutex_unlock(&h->lock);
	return r;
}

/* A target: `STATE [SECONDS]`; the read that follows waits for it. A bad
 * one's sentence is what that read gives back. */
static int wait_do_write(struct fsx_handle *h, const char *buf, size_t len)
{
	struct fsx_obj o;
	char want[16] = "";
	uint64_t ms = 0, gen = 0;
	int r = fsx_pin(&h->nd, &o);
	if (r == 0) {
		r = sbx_wait_parse(o.sbx, buf, len, want, &ms);
		gen = sbx_generation(o.sbx); /* "any": a change after this write */
		fsx_unpin(&h->nd, &o);
	}
	pthread_mutex_lock(&h->lock);
	h->targeted = true;
	h->made = r < 0; /* the sentence fsx_errstr_write keeps is the content */
	memcpy(h->want, want, sizeof(h->want));
	h->deadline_ms = (unsigned)ms;
	if (r == 0)
		h->gen = gen;
	pthread_mutex_unlock(&h->lock);
	return r;
}

static int wait_write(struct fsx_handle *h, const char *buf, size_t len)
{
	return fsx_errstr_write(h, buf, len, wait_do_write);
}

const struct fsx_file_ops fsx_wait_ops = {
	.type = S_IFREG, .readable = true, .writable = true, .open = wait_open,
	.read = fsx_read_once_or_parked, .try = wait_try, .write = wait_write,
	.deadline_ms = WAIT_DEFAULT_MS,
};

/* --- exec: write a command line, read its output to EOF --- */

static int exec_open(struct fsx_handle *h, struct fsx_obj *o, int flags)
{
	(void)flags;
	return sbx_exec_open(o->sbx, &h->x);
}

/* The sentence of a write that failed on this handle, from its cursor. */
static bool errstr_take(struct fsx_park *rd)
{
	struct fsx_handle *h = rd->h;
	pthread_mutex_lock(&h->lock);
	bool took = fsx_park_take(rd, h->content.data, h->content.len, h->pos) == 0 && rd->len;
	if (took)
		h->pos += rd->len;
	pthread_mutex_unlock(&h->lock);
	return took;
}

/* A look's answer for rd: buf with n bytes, or n a failure (buf freed). */
static int try_took(struct fsx_park *rd, char *buf, ssize_t n)
{
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	rd->data = buf;
	rd->len = (size_t)n;
	return 0;
}

/* A handle whose write failed before any command ran reads back the
 * sentence; once a command runs, its output alone. */
static int exec_try(struct fsx_park *rd, bool final, struct sbx_wake *wk)
{
	(void)final;
	if (!sbx_exec_started(rd->h->x) && errstr_take(rd))
		return 0;
	char *buf = malloc(rd->size ? rd->size : 1);
	if (!buf)
		return -ENOMEM;
	return try_took(rd, buf, sbx_exec_read_try(rd->h->x, buf, rd->size, wk));
}

static int exec_do_write(struct fsx_handle *h, const char *buf, size_t len)
{
	return sbx_exec_write(h->x, buf, len);
}

/* A failed write's sentence is what the next read of the handle returns. */
static int exec_write(struct fsx_handle *h, const char *buf, size_t len)
{
	return fsx_errstr_write(h, buf, len, exec_do_write);
}

static void exec_poll(fuse_req_t req, struct fsx_handle *h, struct fuse_pollhandle *ph)
{
	(void)h;
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
}

static void exec_drop(struct fsx_handle *h)
{
	if (h->x)
		sbx_exec_close(h->x);
}

const struct fsx_file_ops fsx_session_ops = {
	.type = S_IFREG, .readable = true, .writable = true, .nonseekable = true,
	.open = exec_open, .read = fsx_read_parked, .try = exec_try, .write = exec_write,
	.poll = exec_poll, .drop = exec_drop,
};

/* --- files: one request per open handle on the sandbox's files --- */

static int files_open(struct fsx_handle *h, struct fsx_obj *o, int flags)
{
	(void)flags;
	return sbx_files_open(o->sbx, &h->files);
}

/* A request's write waits, parked, for the answer of the sandbox that
 * serves it (qemu); a failed write's sentence is what the next read of the
 * handle returns. */
static int files_write_try(struct fsx_park *p, bool final, struct sbx_wake *wk)
{
	(void)final; /* no deadline of ours: the engine's look fails at the request's */
	engine_error_clear();
	int r = sbx_files_write_try(p->h->files, p->wbuf, p->wlen, p->looks > 0, wk);
	if (r != -EAGAIN)
		fsx_errstr_keep(p->h, r);
	return r;
}

/* The sentence of a failed write, while some is left; then the request's
 * bytes, from the engine's cursor: a regular file's bytes or an answer made
 * at the write at once; a get the sandbox serves (qemu) parks the read until
 * its bytes, its end or its failure come. */
static int files_try(struct fsx_park *rd, bool final, struct sbx_wake *wk)
{
	(void)final; /* no deadline of ours: the engine's look fails at the request's */
	if (errstr_take(rd))
		return 0;
	char *buf = malloc(rd->size ? rd->size : 1);
	if (!buf)
		return -ENOMEM;
	return try_took(rd, buf, sbx_files_read_try(rd->h->files, buf, rd->size, wk));
}

/* Readable once a read would not wait. The wait goes in before the look,
 * so bytes that come after the look still fire it. */
static void files_poll(fuse_req_t req, struct fsx_handle *h, struct fuse_pollhandle *ph)
{
	const unsigned out = POLLOUT | POLLWRNORM, in = POLLIN | POLLRDNORM;
	uint64_t seq = 0;
	if (ph && !(seq = fsx_poll_add(h, h->nd.n.sbx, FSX_POLL_FILES, ph))) {
		fuse_reply_poll(req, in | out); /* no memory for a wait: a read waits */
		return;
	}
	pthread_mutex_lock(&h->lock);
	bool ready = h->pos < h->content.len;
	pthread_mutex_unlock(&h->lock);
	ready = ready || sbx_files_readable(h->files);
	if (ready && seq)
		fsx_poll_cancel(seq);
	fuse_reply_poll(req, (ready ? in : 0) | out);
}

static void files_drop(struct fsx_handle *h)
{
	if (h->files)
		sbx_files_close(h->files);
}

const struct fsx_file_ops fsx_files_ops = {
	.type = S_IFREG, .readable = true, .writable = true, .nonseekable = true,
	.open = files_open, .read = fsx_read_once_or_parked, .try = files_try, .write_try = files_write_try,
	.poll = files_poll, .release = fsx_poll_release, .drop = files_drop,
};

/* --- run: a clone file, as Plan 9's --- */

/* The write moved the file offset; the id is read from our own cursor,
 * advanced under the handle's lock (reads may run on several threads). */
static void clone_read(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	(void)off;
	pthread_mutex_lock(&h->lock);
	if (!h->made && h->started) {
		h->made = true;
		buf_printf(&h->content, "%u\n", h->job);
	}
	fsx_reply_cursor_unlock(req, h, size);
}

static int clone_do_write(struct fsx_handle *h, const char *buf, size_t len)
{
	struct fsx_obj o;
	int r = fsx_pin(&h->nd, &o);
	if (r < 0)
		return r;
	if (h->started)
		r = -EBUSY; /* one job per handle: open run again */
	else if ((r = h->nd.f->sbx.clone(o.sbx, buf, len, &h->job)) == 0)
		h->started = true;
	fsx_unpin(&h->nd, &o);
	return r;
}

/* The id, or a failed write's sentence, is what a read of the handle returns. */
static int clone_write(struct fsx_handle *h, const char *buf, size_t len)
{
	return fsx_errstr_write(h, buf, len, clone_do_write);
}

const struct fsx_file_ops fsx_clone_ops = {
	.type = S_IFREG, .readable = true, .writable = true, .nonseekable = true,
	.read = clone_read, .write = clone_write,
};

/* --- root: a symlink --- */

static int link_read(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b)
{
	return nd->f->sbx.link(o->sbx, b);
}

const struct fsx_file_ops fsx_link_ops = {.type = S_IFLNK, .readlink = link_read};
