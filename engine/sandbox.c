/* The sandbox's core (sandbox.h): lookups in the registry, every sandbox
 * pinned, its failure sentence and the wait for it to settle, change
 * notification (the generation and the FUSE layer's watches), and the ring
 * of recent failures shown in /sbx/error. Calls no part above it. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sandbox.h"

#define ERR_RING ENGINE_ERR_RING

void engine_set_watch(struct engine *eng, void (*fn)(uint64_t id, bool gone))
{
	eng->watch_fn = fn;
}
void engine_set_job_watch(struct engine *eng, void (*fn)(uint64_t id, uint32_t n))
{
	eng->job_watch_fn = fn;
}

void engine_set_files_watch(struct engine *eng, void (*fn)(uint64_t id))
{
	eng->files_watch_fn = fn;
}

void engine_notify(struct engine *eng, uint64_t id)
{
	if (eng->watch_fn)
		eng->watch_fn(id, false);
}

void engine_notify_gone(struct engine *eng, uint64_t id)
{
	if (eng->watch_fn)
		eng->watch_fn(id, true);
}

void engine_notify_job(struct engine *eng, uint64_t id, uint32_t n)
{
	if (eng->job_watch_fn)
		eng->job_watch_fn(id, n);
}

void engine_bump_generation(struct engine *eng)
{
	atomic_fetch_add(&eng->generation, 1);
	engine_notify(eng, 0);
}

uint64_t engine_generation(struct engine *eng) { return atomic_load(&eng->generation); }
uint64_t sbx_generation(struct sbx *s) { return atomic_load(&s->generation); }

int sbx_wait_parse(struct sbx *s, const char *buf, size_t len, char *want, uint64_t *ms)
{
	struct ctl_wait w;
	struct err e = {0};
	int r = ctl_parse_wait(buf, len, &w, &e);
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		sbx_fail(s, r, e.msg);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	memcpy(want, w.state, sizeof(w.state));
	*ms = w.ms;
	return 0;
}

int sbx_wait_reached(struct sbx *s, const char *want, uint64_t gen, struct err *e)
{
	if (!strcmp(want, "any"))
		return sbx_generation(s) != gen;
	int st = atomic_load(&s->state);
	if (!strcmp(sbx_state_name(st), want))
		return 1;
	if (st != SBX_FAILED)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (s->error[0])
		err_set(e, -EIO, "sandbox %s failed: %s", s->node.name, s->error);
	else
		err_set(e, -EIO, "sandbox %s failed (reason %s, exit code %d)", s->node.name,
			s->reason, s->exit_code);
	pthread_mutex_unlock(&s->lock);
	return -EIO;
}

/* Per thread, not per engine: the last failure this thread noted, read back
 * by the same thread (engine_error_keep). */
static __thread char last_error[SBX_ERRMSG_MAX + 64];

void engine_error_clear(void) { last_error[0] = '\0'; }
const char *engine_error_last(void) { return last_error; }
void engine_error_keep(const char *line) { snprintf(last_error, sizeof(last_error), "%s", line); }

void engine_note_error(struct engine *eng, const char *fmt, ...)
{
	char raw[SBX_ERRMSG_MAX + 64], line[SBX_ERRMSG_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* One sentence a line: a newline in user input must not split it. */
	str_escape(line, sizeof(line), raw);
	engine_error_keep(line);
	log_warn("%s", line);
	pthread_mutex_lock(&eng->errs.lock);
	snprintf(eng->errs.lines[eng->errs.total % ERR_RING], sizeof(eng->errs.lines[0]), "%s",
		 line);
	eng->errs.total++;
	pthread_mutex_unlock(&eng->errs.lock);
}

int engine_show_error(struct engine *eng, struct buf *b)
{
	int r = 0;
	pthread_mutex_lock(&eng->errs.lock);
	uint64_t first = eng->errs.total > ERR_RING ? eng->errs.total - ERR_RING : 0;
	for (uint64_t i = first; i < eng->errs.total && r == 0; i++)
		r = buf_printf(b, "%s\n", eng->errs.lines[i % ERR_RING]);
	pthread_mutex_unlock(&eng->errs.lock);
	return r;
}

int engine_show_events(struct engine *eng, struct buf *b)
{
	return buf_printf(b, "generation %" PRIu64 "\n", atomic_load(&eng->generation));
}

struct sbx *sbx_get(struct engine *eng, const char *name)
{
	struct reg_node *n = reg_get_name(eng->reg, name);
	return n ? caa_container_of(n, struct sbx, node) : NULL;
}

struct sbx *sbx_get_id(struct engine *eng, uint64_t id)
{
	struct reg_node *n = reg_get_id(eng->reg, id);
	return n ? caa_container_of(n, struct sbx, node) : NULL;
}

void sbx_put(struct sbx *s) { reg_put(&s->node); }
uint64_t sbx_id(const struct sbx *s) { return s->node.id; }
const char *sbx_name(const struct sbx *s) { return s->node.name; }
uint64_t sbx_created_wall_usec(const struct sbx *s) { return s->cfg.created_wall_usec; }

static int pin_one(struct reg_node *n, void *arg)
{
	struct sbx_pinned *p = arg;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct sbx **l = realloc(p->list, cap * sizeof(*l));
		if (!l)
			return 1;
		p->list = l;
		p->cap = cap;
	}
	if (reg_tryget(n))
		p->list[p->n++] = caa_container_of(n, struct sbx, node);
	return 0;
}

void sbx_pin_all(struct engine *eng, struct sbx_pinned *p)
{
	memset(p, 0, sizeof(*p));
	reg_foreach(eng->reg, pin_one, p);
}

void sbx_unpin_all(struct sbx_pinned *p)
{
	for (size_t i = 0; i < p->n; i++)
		sbx_put(p->list[i]);
	free(p->list);
	memset(p, 0, sizeof(*p));
}

int sbx_fail(struct sbx *s, int code, const char *msg)
{
	snprintf(s->error, sizeof(s->error), "%s", msg);
	engine_error_keep(s->error);
	log_warn("sandbox %s: %s", s->node.name, msg);
	return code;
}

bool sbx_timed_wait(struct sbx *s, uint64_t deadline_usec)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_usec / 1000000),
			      .tv_nsec = (long)(deadline_usec % 1000000) * 1000};
	return pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0;
}

void sbx_wait_settled(struct sbx *s, int timeout_sec)
{
	uint64_t deadline = now_usec() + (uint64_t)timeout_sec * 1000000;
	while (atomic_load(&s->state) == SBX_CREATING && now_usec() < deadline)
		sbx_timed_wait(s, deadline);
	/* A checkpoint's copy ends by itself: waited for whole, as when it
	 * held the lock. */
	while (s->checkpointing)
		pthread_cond_wait(&s->cond, &s->lock);
}

/* Waits (bounded) for a sandbox being created, started or stopped to settle,
 * then requires it running: 0, or -EBUSY with the sentence in e. A failed
 * sandbox's sentence stays why it failed (what a caller then writes to its
 * `error` changes nothing). Called with s->lock held. */
int sbx_require_running(struct sbx *s, const char *what, struct err *e)
{
	sbx_wait_settled(s, SETTLE_TIMEOUT_SEC);
	int st = atomic_load(&s->state);
	if (st == SBX_RUNNING)
		return 0;
	if (st == SBX_FAILED && s->error[0])
		return err_set(e, -EBUSY, "%s", s->error);
	return err_set(e, -EBUSY, "cannot %s in sandbox %s: it is %s", what, s->node.name,
		       sbx_state_name(st));
}
