/* Open files: the handle (content made once per open, a lock, references),
 * reads answered from its content, and reads that wait. A read with nothing
 * to return yet is parked (engine/waiters.h) and answered later from the
 * waiters' thread; the FUSE thread returns at once. A parked read pins its
 * handle; an interrupted reader (a signal, ^C, kill) gets EINTR. */
#include "node.h"

#include <fcntl.h>
#include <string.h>

struct fsx_handle *fsx_handle_new(const struct fsx_node *nd, int flags)
{
	struct fsx_handle *h = calloc(1, sizeof(*h));
	if (h) {
		h->nd = *nd;
		h->nonblock = flags & O_NONBLOCK;
		pthread_mutex_init(&h->lock, NULL);
		atomic_init(&h->refs, 1);
	}
	return h;
}

struct fsx_handle *fsx_handle_get(struct fsx_handle *h)
{
	atomic_fetch_add(&h->refs, 1);
	return h;
}

void fsx_handle_put(struct fsx_handle *h)
{
	if (atomic_fetch_sub(&h->refs, 1) != 1)
		return;
	if (h->nd.f->ops->drop)
		h->nd.f->ops->drop(h);
	buf_free(&h->content);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void fsx_reply_content_unlock(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
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

void fsx_reply_cursor_unlock(fuse_req_t req, struct fsx_handle *h, size_t size)
{
	size_t n = h->content.len > h->pos ? h->content.len - h->pos : 0;
	n = n < size ? n : size;
	off_t at = (off_t)h->pos;
	h->pos += n;
	fsx_reply_content_unlock(req, h, n, at);
}

static int read_try(struct waiter *w, bool final, struct sbx_wake *wk)
{
	struct fsx_read *rd = (struct fsx_read *)w;
	free(rd->data);
	rd->data = NULL;
	rd->len = 0;
	return rd->h->nd.f->ops->try(rd, final, wk);
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
	fsx_handle_put(rd->h);
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

void fsx_read_parked(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	struct fsx_read *rd = calloc(1, sizeof(*rd));
	if (!rd) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rd->req = req;
	rd->h = fsx_handle_get(h);
	rd->size = size;
	rd->off = off;
	unsigned ms = h->nd.f->ops->deadline_ms;
	waiter_init(&rd->w, &read_ops, ms ? now_usec() + ms * 1000ull : 0);
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
