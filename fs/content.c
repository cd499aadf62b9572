/* The kinds of file any family may have: show (content made at open from
 * the row's show), command (one command a write), setting (both), and events
 * (content remade when the generation it shows moved; poll wakes then, with
 * POLLPRI, as cgroupfs's). */
#include "node.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>

static int content_open(struct fsx_handle *h, struct fsx_obj *o, int flags)
{
	if ((flags & O_ACCMODE) == O_WRONLY)
		return 0;
	return h->nd.k->fam->show(&h->nd, o, &h->content);
}

/* A handle may outlive its object: a removed one takes no commands. */
static int content_write(struct fsx_handle *h, const char *buf, size_t len)
{
	struct fsx_obj o;
	int r = fsx_pin(&h->nd, &o);
	if (r < 0)
		return r;
	r = h->nd.k->fam->write(&h->nd, &o, buf, len);
	fsx_unpin(&h->nd, &o);
	return r;
}

int fsx_errstr_write(struct fsx_handle *h, const char *buf, size_t len,
		     int (*write)(struct fsx_handle *h, const char *buf, size_t len))
{
	engine_error_clear();
	int r = write(h, buf, len);
	fsx_errstr_keep(h, r);
	return r;
}

void fsx_errstr_keep(struct fsx_handle *h, int r)
{
	const char *why = engine_error_last();
	pthread_mutex_lock(&h->lock);
	buf_free(&h->content);
	h->pos = 0;
	if (r < 0 && buf_printf(&h->content, "%s\n", why[0] ? why : strerror(-r)) < 0)
		buf_free(&h->content);
	pthread_mutex_unlock(&h->lock);
}

/* ctl: a command file whose read gives back the sentence of this handle's
 * last failed write, and nothing after a write that worked (Plan 9's
 * errstr): concurrent clients never read each other's errors, as they may in
 * the shared error files. The content is that sentence. */
static int ctl_write(struct fsx_handle *h, const char *buf, size_t len)
{
	return fsx_errstr_write(h, buf, len, content_write);
}

/* The write moved the file offset: the sentence is read from our cursor. */
static void ctl_read(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	(void)off;
	pthread_mutex_lock(&h->lock);
	fsx_reply_cursor_unlock(req, h, size);
}

const struct fsx_file_ops fsx_ctl_ops = {
	.type = S_IFREG, .readable = true, .writable = true, .nonseekable = true,
	.read = ctl_read, .write = ctl_write, .own_thread = true,
};

/* The content of h from off, remade first (unless the object is gone, which
 * keeps the last) when `always`, or at offset 0 once it was read. */
static void content_read(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off,
			 bool always)
{
	struct fsx_obj o;
	pthread_mutex_lock(&h->lock);
	if ((always || (off == 0 && h->served)) && fsx_pin(&h->nd, &o) == 0) {
		/* Made in the memory of the content before the last: a held
		 * handle's re-reads allocate nothing. */
		struct buf b = h->spare;
		b.len = 0;
		if (b.data)
			b.data[0] = '\0'; /* an empty content is an empty string too */
		int r = h->nd.k->fam->show(&h->nd, &o, &b);
		fsx_unpin(&h->nd, &o);
		if (r < 0) {
			h->spare = b;
			pthread_mutex_unlock(&h->lock);
			fuse_reply_err(req, -r);
			return;
		}
		h->spare = h->content;
		h->content = b;
	}
	h->served = true;
	fsx_reply_content_unlock(req, h, size, off);
}

/* Made at open; a read at offset 0 after the content was read remakes it
 * (as seq_file does after lseek(0)), so a held handle re-reads a file such
 * as stats with one request. A removed object keeps the last content. */
static void show_read(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	content_read(req, h, size, off, false);
}

const struct fsx_file_ops fsx_show_ops = {
	.type = S_IFREG, .readable = true, .open = content_open, .read = show_read,
};

/* A sized file's content is made again at each read from offset 0, so
 * that a read after a change shows it, also on a handle opened before it (the
 * size the same stat(2) shows); a read further on continues that content,
 * never the tail of a newer one. A removed object keeps the last content (its
 * node is never reached again: numbers are not reused). */
static void sized_read(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	content_read(req, h, size, off, off == 0);
}

const struct fsx_file_ops fsx_sized_ops = {
	.type = S_IFREG, .readable = true, .sized = true, .open = content_open,
	.read = sized_read,
};
const struct fsx_file_ops fsx_setting_ops = {
	.type = S_IFREG, .readable = true, .writable = true,
	.open = content_open, .read = show_read, .write = content_write,
};

static int events_make(struct fsx_handle *h, struct fsx_obj *o)
{
	buf_free(&h->content);
	h->gen = h->nd.k->fam->generation(o);
	return h->nd.k->fam->show(&h->nd, o, &h->content);
}

static int events_open(struct fsx_handle *h, struct fsx_obj *o, int flags)
{
	(void)flags;
	return events_make(h, o);
}

/* lseek(0) + read after poll sees the change; a removed sandbox keeps the
 * last content. Reads of one file may run at once: the lock. */
static void events_read(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	struct fsx_obj o;
	int r = 0;
	pthread_mutex_lock(&h->lock);
	if (off == 0 && fsx_pin(&h->nd, &o) == 0) {
		if (h->gen != h->nd.k->fam->generation(&o))
			r = events_make(h, &o);
		fsx_unpin(&h->nd, &o);
	}
	if (r < 0) {
		pthread_mutex_unlock(&h->lock);
		fuse_reply_err(req, -r);
		return;
	}
	fsx_reply_content_unlock(req, h, size, off);
}

struct gen_look {
	const struct fsx_handle *h;
	struct fsx_obj *o;
};

static bool gen_moved(void *arg)
{
	struct gen_look *l = arg;
	return l->h->gen != l->h->nd.k->fam->generation(l->o);
}

static void events_poll(fuse_req_t req, struct fsx_handle *h, struct fuse_pollhandle *ph)
{
	unsigned ready = POLLIN | POLLRDNORM;
	struct fsx_obj o;
	if (fsx_pin(&h->nd, &o) < 0) { /* the sandbox is gone: that is a change too */
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, ready | POLLPRI | POLLERR);
		return;
	}
	struct gen_look l = {h, &o};
	bool changed = fsx_poll_wait(h, h->nd.n.sbx, 0, ph, gen_moved, &l);
	fsx_unpin(&h->nd, &o);
	/* No change, no event. */
	fuse_reply_poll(req, changed ? ready | POLLPRI : 0);
}

const struct fsx_file_ops fsx_events_ops = {
	.type = S_IFREG, .readable = true, .open = events_open, .read = events_read,
	.poll = events_poll, .release = fsx_poll_release,
};
