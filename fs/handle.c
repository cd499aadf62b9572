/* Open files: the handle (content made once per open, a lock, references),
 * reads answered from its content, and reads and writes that wait. A read
 * with nothing to return yet, or a write whose answer is not there yet, is
 * parked (engine/waiters.h) and answered later from the waiters' thread;
 * the FUSE thread returns at once. A parked request pins its handle; an
 * interrupted reader or writer (a signal, ^C, kill) gets EINTR. */
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
	buf_free(&h->spare);
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

static int park_try(struct waiter *w, bool final, struct sbx_wake *wk)
{
	struct fsx_park *p = (struct fsx_park *)w;
	const struct fsx_file_ops *ops = p->h->nd.f->ops;
	int r;
	if (p->write) {
		r = ops->write_try(p, final, wk);
	} else {
		free(p->data);
		p->data = NULL;
		p->len = 0;
		r = ops->try(p, final, wk);
	}
	p->looks++;
	return r;
}

static void park_end(struct waiter *w, int r)
{
	struct fsx_park *p = (struct fsx_park *)w;
	/* libfuse runs an interrupt callback under the request's lock, which this
	 * takes: none is running when it returns, and none comes after. */
	fuse_req_interrupt_func(p->req, NULL, NULL);
	if (r < 0 && p->write)
		fsx_reply_user_err(p->req, -r);
	else if (r < 0)
		fuse_reply_err(p->req, -r);
	else if (p->write)
		fuse_reply_write(p->req, p->wlen);
	else
		fuse_reply_buf(p->req, p->data, p->len);
	fsx_handle_put(p->h);
	if (p->write && p->fd >= 0)
		close(p->fd);
	free(p->data);
	free(p);
}

static const struct waiter_ops park_ops = {.try = park_try, .end = park_end};

/* Only marks the request (the thread that parked it may still hold it):
 * the waiters' thread answers. */
static void park_interrupted(fuse_req_t req, void *data)
{
	(void)req;
	waiter_interrupt(&((struct fsx_park *)data)->w);
}

/* p's first look, on the FUSE thread; parked if it said -EAGAIN (a write's
 * bytes copied then: libfuse's are gone once op_write returns). */
static void park_first(struct fsx_park *p, fuse_req_t req, struct fsx_handle *h)
{
	p->req = req;
	p->h = fsx_handle_get(h);
	unsigned ms = h->deadline_ms ? h->deadline_ms : h->nd.f->ops->deadline_ms;
	waiter_init(&p->w, &park_ops, ms ? now_usec() + ms * 1000ull : 0);
	struct sbx_wake wk = {.fd = -1};
	int r = park_try(&p->w, false, &wk);
	if (r == -EAGAIN && p->write) {
		if ((p->data = malloc(p->wlen ? p->wlen : 1)))
			p->wbuf = memcpy(p->data, p->wbuf, p->wlen);
		else
			r = -ENOMEM;
	}
	if (r != -EAGAIN) {
		park_end(&p->w, r);
		return;
	}
	/* Before the park: from there on the waiters' thread may answer and free p. */
	fuse_req_interrupt_func(req, park_interrupted, p);
	waiter_park(&p->w, &wk);
}

void fsx_read_parked(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	struct fsx_park *p = calloc(1, sizeof(*p));
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->size = size;
	p->off = off;
	park_first(p, req, h);
}

int fsx_park_take(struct fsx_park *rd, const char *data, size_t len, uint64_t off)
{
	size_t n = off < len ? len - (size_t)off : 0;
	n = n < rd->size ? n : rd->size;
	if (!n)
		return 0;
	if (!(rd->data = malloc(n)))
		return -ENOMEM;
	memcpy(rd->data, data + off, n);
	rd->len = n;
	return 0;
}

void fsx_read_once_or_parked(fuse_req_t req, struct fsx_handle *h, size_t size, off_t off)
{
	if (!h->nonblock) {
		fsx_read_parked(req, h, size, off);
		return;
	}
	struct fsx_park rd = {.h = h, .size = size, .off = off};
	struct sbx_wake wk = {.fd = -1};
	int r = h->nd.f->ops->try(&rd, false, &wk);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, rd.data, rd.len);
	free(rd.data);
}

void fsx_write_parked(fuse_req_t req, struct fsx_handle *h, const char *buf, size_t len)
{
	struct fsx_park *p = calloc(1, sizeof(*p));
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->write = true;
	p->wbuf = buf;
	p->wlen = len;
	p->fd = -1;
	park_first(p, req, h);
}

/* --- commands that may take long --- */

/* A write of a file whose ops say own_thread (a command: a stop's grace, a
 * fork's copy, a removal's wait), and a mkdir or rmdir in a directory
 * whose ops say so (a snapshot's copy), run on a command thread, which
 * answers it; the FUSE thread returns at once, so that commands waiting on
 * sandboxes (a sandbox's processes decide how long a stop's grace lasts,
 * its upper layer how long a fork copies) never leave the mount without a
 * thread. A command finds a thread waiting or starts one (at most
 * CMD_THREADS_MAX; past that, or without a thread, it runs where it came,
 * as every write did before); CMD_THREADS_IDLE stay waiting after a burst,
 * as libfuse keeps its idle ones, so that a quick command (kill, pause)
 * starts no thread. */
#define CMD_THREADS_MAX 1024
#define CMD_THREADS_IDLE 4

struct cmd {
	struct cmd *next;
	fuse_req_t req;
	struct fsx_handle *h; /* a write's, pinned; NULL: a directory's op */
	struct fsx_node dir;  /* a directory's op: the directory, and the op */
	void (*dir_op)(fuse_req_t req, const struct fsx_node *dir, const char *name);
	size_t len;
	char buf[]; /* a write's bytes; a directory op's name */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work, gone;
	struct cmd *head, **tail;
	unsigned threads, waiting;
	unsigned wakes; /* waiting threads a command claimed (each takes one) */
	bool stopping;
} cmds = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
	  NULL, &cmds.head, 0, 0, 0, false};

void fsx_write_now(fuse_req_t req, struct fsx_handle *h, const char *buf, size_t len)
{
	int r = h->nd.f->ops->write ? h->nd.f->ops->write(h, buf, len) : -EBADF;
	if (r < 0)
		fsx_reply_user_err(req, -r);
	else
		fuse_reply_write(req, len);
}

/* Runs what is queued; waits for more while fewer than CMD_THREADS_IDLE do. */
static void *cmd_main(void *arg)
{
	(void)arg;
	engine_thread_online(); /* offline again when it exits */
	pthread_mutex_lock(&cmds.lock);
	for (;;) {
		struct cmd *c = cmds.head;
		if (c) {
			if (!(cmds.head = c->next))
				cmds.tail = &cmds.head;
			pthread_mutex_unlock(&cmds.lock);
			if (c->h) {
				fsx_write_now(c->req, c->h, c->buf, c->len);
				fsx_handle_put(c->h);
			} else {
				c->dir_op(c->req, &c->dir, c->buf);
			}
			free(c);
			pthread_mutex_lock(&cmds.lock);
			continue;
		}
		if (cmds.stopping || cmds.waiting >= CMD_THREADS_IDLE)
			break;
		cmds.waiting++;
		while (!cmds.wakes && !cmds.stopping)
			pthread_cond_wait(&cmds.work, &cmds.lock);
		cmds.waiting--;
		if (cmds.wakes)
			cmds.wakes--;
	}
	if (--cmds.threads == 0)
		pthread_cond_broadcast(&cmds.gone);
	pthread_mutex_unlock(&cmds.lock);
	return NULL;
}

/* Lock held: a thread for the command just queued, waiting or new. */
static bool cmd_thread_for_one(void)
{
	if (cmds.waiting > cmds.wakes) {
		cmds.wakes++;
		pthread_cond_signal(&cmds.work);
		return true;
	}
	if (cmds.threads >= CMD_THREADS_MAX)
		return false;
	pthread_attr_t at;
	pthread_t t;
	if (pthread_attr_init(&at) != 0)
		return false;
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	bool started = pthread_create(&t, &at, cmd_main, NULL) == 0;
	pthread_attr_destroy(&at);
	cmds.threads += started;
	return started;
}

/* Queues c for a command thread; false (c not queued) when none takes it. */
static bool cmd_submit(struct cmd *c)
{
	pthread_mutex_lock(&cmds.lock);
	struct cmd **at = cmds.tail;
	*at = c;
	cmds.tail = &c->next;
	bool taken = !cmds.stopping && cmd_thread_for_one();
	if (!taken) { /* still the last: nothing ran meanwhile */
		*at = NULL;
		cmds.tail = at;
	}
	pthread_mutex_unlock(&cmds.lock);
	return taken;
}

void fsx_write_own_thread(fuse_req_t req, struct fsx_handle *h, const char *buf, size_t len)
{
	struct cmd *c = malloc(sizeof(*c) + len);
	if (c) {
		/* libfuse's bytes are gone once op_write returns. */
		*c = (struct cmd){.req = req, .h = fsx_handle_get(h), .len = len};
		memcpy(c->buf, buf, len);
		if (cmd_submit(c))
			return;
		fsx_handle_put(c->h);
		free(c);
	}
	fsx_write_now(req, h, buf, len);
}

void fsx_dir_own_thread(fuse_req_t req, const struct fsx_node *dir, const char *name,
			void (*op)(fuse_req_t req, const struct fsx_node *dir, const char *name))
{
	size_t len = strlen(name) + 1;
	struct cmd *c = malloc(sizeof(*c) + len);
	if (c) {
		*c = (struct cmd){.req = req, .dir = *dir, .dir_op = op, .len = len};
		memcpy(c->buf, name, len); /* libfuse's is gone once the op returns */
		if (cmd_submit(c))
			return;
		free(c);
	}
	op(req, dir, name);
}

/* Commands under way end first (each is bounded: a stop by its grace, a
 * fork by its copy), as libfuse's loop waits for its threads' requests. */
void fsx_shutdown(void)
{
	pthread_mutex_lock(&cmds.lock);
	cmds.stopping = true;
	pthread_cond_broadcast(&cmds.work);
	while (cmds.threads)
		pthread_cond_wait(&cmds.gone, &cmds.lock);
	pthread_mutex_unlock(&cmds.lock);
	waiters_stop();
}
