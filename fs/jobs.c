/* A sandbox's jobs (/sbx/NAME/jobs/N/): the directory of job numbers (rmdir
 * forgets one), a job's files, and the kind of file its stdout and stderr
 * are: offset reads that wait for output, and poll. */
#include "node.h"

#include <poll.h>
#include <stdio.h>

/* How long a read of a running job's pid waits for its sandbox's report. */
#define JOB_PID_WAIT_MS 5000

static bool job_exists(const struct ino_node *n, struct fsx_obj *o)
{
	return sbx_job_exists(o->sbx, n->obj);
}

static int job_fam_show(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b)
{
	return sbx_job_show(o->sbx, nd->n.obj, nd->f->name, b);
}

static int job_fam_write(const struct fsx_node *nd, struct fsx_obj *o, const char *buf, size_t len)
{
	return nd->f->job.write(o->sbx, nd->n.obj, buf, len);
}

/* A write pins the sandbox only: the engine says what a gone job is. */
const struct fsx_family fsx_job_family = {
	.pin = fsx_sbx_pin, .unpin = fsx_sbx_unpin, .exists = job_exists,
	.created_usec = fsx_sbx_created_usec, .show = job_fam_show, .write = job_fam_write,
};

static int job_number(const char *name, uint32_t *n)
{
	char *end;
	unsigned long jn = strtoul(name, &end, 10);
	if (*end || !jn || jn > SBX_JOB_ID_MAX)
		return -ENOENT;
	*n = (uint32_t)jn;
	return 0;
}

static int jobs_lookup(const struct ino_node *dir, struct fsx_obj *o, const char *name,
		       struct ino_node *c)
{
	uint32_t n;
	if (job_number(name, &n) < 0 || !sbx_job_exists(o->sbx, n))
		return -ENOENT;
	*c = (struct ino_node){.kind = INO_JOB, .sbx = dir->sbx, .obj = n};
	return 0;
}

static int jobs_fill(const struct ino_node *dir, struct fsx_obj *o, struct fsx_dir *d)
{
	uint32_t *ns;
	size_t cnt;
	int r = sbx_job_list(o->sbx, &ns, &cnt);
	if (r < 0)
		return r;
	for (size_t i = 0; i < cnt && r == 0; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "%u", ns[i]);
		r = fsx_dir_add(d, nm, &(struct ino_node){.kind = INO_JOB, .sbx = dir->sbx, .obj = ns[i]});
	}
	free(ns);
	return r;
}

static int jobs_rmdir(const struct ino_node *dir, struct fsx_obj *o, const char *name)
{
	(void)dir;
	uint32_t n;
	return job_number(name, &n) < 0 ? -ENOENT : sbx_job_remove(o->sbx, n);
}

const struct fsx_dir_ops fsx_jobs_dir = {
	.lookup = jobs_lookup, .fill = jobs_fill, .rmdir = jobs_rmdir,
};

/* --- stdout, stderr --- */

static int stream_try(struct fsx_park *rd, bool final, struct sbx_wake *wk)
{
	(void)final;
	struct fsx_handle *h = rd->h;
	struct sbx *s = sbx_get_id(h->nd.eng, h->nd.n.sbx);
	if (!s)
		return -ENODEV;
	char *buf = malloc(rd->size ? rd->size : 1);
	ssize_t n = !buf ? -ENOMEM
			 : sbx_job_read_try(s, h->nd.n.obj, h->nd.f->job.stream, buf, rd->size,
					    rd->off, &h->skew, h->nonblock ? NULL : wk);
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

/* Readable once there is output past what this handle read, or the job is
 * over. The wait goes in before the engine looks, so output or an end that
 * comes after the look still fires it. */
static void stream_poll(fuse_req_t req, struct fsx_handle *h, struct fuse_pollhandle *ph)
{
	uint64_t seq = 0;
	pthread_mutex_lock(&h->lock);
	uint64_t off = h->read_end + __atomic_load_n(&h->skew, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&h->lock);
	if (ph && !(seq = fsx_poll_add(h, h->nd.n.sbx, h->nd.n.obj, ph))) {
		/* no memory for a wait: readable, as before (a read waits) */
		fuse_reply_poll(req, POLLIN | POLLRDNORM);
		return;
	}
	struct sbx *s = sbx_get_id(h->nd.eng, h->nd.n.sbx);
	bool ready = !s || sbx_job_poll(s, h->nd.n.obj, h->nd.f->job.stream, off);
	if (s)
		sbx_put(s);
	if (ready && seq)
		fsx_poll_cancel(seq);
	fuse_reply_poll(req, ready ? POLLIN | POLLRDNORM : 0);
}

const struct fsx_file_ops fsx_stream_ops = {
	.type = S_IFREG, .readable = true, .read = fsx_read_parked, .try = stream_try,
	.poll = stream_poll, .release = fsx_poll_release,
};

/* --- pid: a running job's, once its sandbox reported it --- */

static int pid_try(struct fsx_park *rd, bool final, struct sbx_wake *wk)
{
	struct fsx_handle *h = rd->h;
	struct sbx *s = sbx_get_id(h->nd.eng, h->nd.n.sbx);
	if (!s)
		return -ENODEV;
	int pid = 0;
	int r = sbx_job_pid_try(s, h->nd.n.obj, final, &pid, wk);
	sbx_put(s);
	if (r < 0)
		return r;
	char text[16];
	int len = snprintf(text, sizeof(text), "%d\n", pid);
	return fsx_park_take(rd, text, (size_t)len, (uint64_t)rd->off);
}

/* A read made just after the job's start waits for its pid (the sandbox
 * reports it a moment later), never reading 0 for a job that runs; past
 * the deadline (a sandbox that never reports it) it reads 0. */
const struct fsx_file_ops fsx_job_pid_ops = {
	.type = S_IFREG, .readable = true, .read = fsx_read_once_or_parked, .try = pid_try,
	.deadline_ms = JOB_PID_WAIT_MS,
};

/* --- stdin --- */

/* A write takes what the job's pipe or terminal has room for now (a short
 * write, as a pipe's nonblocking writer gets), or is parked until it has
 * room: a job that reads nothing holds no FUSE thread, and its writer waits
 * (^C: EINTR) as one blocked on a pipe would. The parked write keeps its
 * dup of the job's stdin (p->fd). */
static int stdin_write_try(struct fsx_park *p, bool final, struct sbx_wake *wk)
{
	(void)final;
	struct fsx_obj o;
	int r = fsx_pin(&p->h->nd, &o);
	if (r < 0)
		return r;
	ssize_t n = sbx_job_stdin_try(o.sbx, p->h->nd.n.obj, p->wbuf, p->wlen, &p->fd, wk);
	fsx_unpin(&p->h->nd, &o);
	if (n < 0)
		return (int)n;
	p->wlen = (size_t)n;
	return 0;
}

const struct fsx_file_ops fsx_stdin_ops = {
	.type = S_IFREG, .writable = true, .write_try = stdin_write_try,
};
