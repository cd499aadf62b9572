/* Warm pools (/sbx/pools/NAME/): sandboxes of one spec made ahead and handed
 * out by a create of the same spec. A member is a whole sandbox (namespaces,
 * cgroup, root, network identity, init ready) kept out of the registry under
 * a hidden name (.pID-RUN-SEQ); a claim gives it the user's name, hostname and
 * journal, and it is running at once. A claimed sandbox never goes back.
 * Pools are journaled in STATE/pools/NAME.json; members are not re-adopted:
 * a restarted daemon discards what a dead one left and fills again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <urcu/rculist.h>

#include "exec.h"
#include "images.h"
#include "journal.h"
#include "lifecycle.h"
#include "netcfg.h"
#include "pool.h"
#include "sandbox.h"
#include "warm.h"

#define WARM_SIZE_MAX 1024
#define WARM_FILLS_MAX 2  /* creates at a time for all pools: claims come first */
#define WARM_FILL_NICE 10 /* a fill's worker thread, while it makes a member */
#define WARM_FAILS_STALL 3 /* fills failed in a row before a pool stops trying */
/* A fill starts once claims have been quiet this long, waiting at most
 * WARM_FILL_WAIT_USEC: a claimed sandbox's first command, which mostly
 * comes at once, has the CPU before a create does (2 cores: a create at
 * nice 10 beside it still made it 2 to 3 times slower). */
#define WARM_FILL_QUIET_USEC 20000
#define WARM_FILL_WAIT_USEC 100000
/* A member whose processes cost CPU while they wait (a QEMU) is ready once
 * it has been idle WARM_SETTLE_TICKS ticks in a row (its cgroup's CPU time
 * grew less than WARM_SETTLE_BUSY_USEC a tick), WARM_SETTLE_MAX_USEC at
 * most: a guest goes on after its agent's hello (the agent forks its warm
 * shell, which under TCG is tens of ms), and a claim in that time had its
 * first command wait for it (TCG, 2 cores: first output 48 ms p50 claimed at
 * once, 17.5 ms claimed 0.3 s later). */
#define WARM_SETTLE_TICK_USEC 10000
#define WARM_SETTLE_BUSY_USEC 2000
#define WARM_SETTLE_TICKS 2
#define WARM_SETTLE_MAX_USEC 2000000
#define WARM_SPEC_MAX 512
#define MEMBER_PREFIX ".p"

struct warm_pool {
	struct cds_list_head link; /* eng->warm.pools, RCU */
	struct engine *eng; /* the engine whose pool it is */
	struct rcu_head rcu;
	_Atomic int refs; /* the list's, each member's, each queued fill's */
	uint32_t id;
	char name[SBX_NAME_MAX + 1];
	uint64_t created_wall_usec;
	pthread_mutex_t lock; /* never taken with a member's lock held the other way */
	struct sbx_config cfg;
	char spec[WARM_SPEC_MAX];
	uint32_t size;
	struct sbx **ready; /* a stack: the last made goes first */
	uint32_t nready;
	uint32_t filling;
	atomic_uint discarding; /* members whose discard is queued or runs (discard_job) */
	uint32_t fails_in_row;
	bool stalled, removed;
	uint64_t hits, misses, made, failed, discarded, seq;
	uint64_t fill_usec; /* the last fill's create, queue to running */
	char error[SBX_ERRMSG_MAX];
};

static void pool_free_rcu(struct rcu_head *h)
{
	struct warm_pool *p = caa_container_of(h, struct warm_pool, rcu);
	pthread_mutex_destroy(&p->lock);
	free(p->ready);
	free(p);
}

static void pool_get(struct warm_pool *p) { atomic_fetch_add(&p->refs, 1); }

/* Under rcu_read_lock(): a pool found in the list may be on its way out
 * (its last reference dropped, its free queued): never revived. */
static bool pool_tryget(struct warm_pool *p)
{
	int v = atomic_load(&p->refs);
	while (v > 0)
		if (atomic_compare_exchange_weak(&p->refs, &v, v + 1))
			return true;
	return false;
}

static void pool_put(struct warm_pool *p)
{
	if (atomic_fetch_sub(&p->refs, 1) == 1)
		urcu_memb_call_rcu(&p->rcu, pool_free_rcu);
}

/* Under rcu_read_lock(). */
static struct warm_pool *find_name(struct engine *eng, const char *name)
{
	struct warm_pool *p;
	cds_list_for_each_entry_rcu(p, &eng->warm.pools, link)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static struct warm_pool *find_id(struct engine *eng, uint32_t id)
{
	struct warm_pool *p;
	cds_list_for_each_entry_rcu(p, &eng->warm.pools, link)
		if (p->id == id)
			return p;
	return NULL;
}

/* Pinned lookups for the FUSE layer; release with pool_put. */
struct warm_pool *warm_pool_get(struct engine *eng, uint32_t id)
{
	urcu_memb_read_lock();
	struct warm_pool *p = find_id(eng, id);
	if (p && !pool_tryget(p))
		p = NULL;
	urcu_memb_read_unlock();
	return p;
}

/* --- the journal: STATE/pools/NAME.json --- */

static int pool_journal(struct warm_pool *p)
{
	struct engine *eng = p->eng;
	char path[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/%s.json", eng->warm.dir, p->name);
	pthread_mutex_lock(&p->lock);
	json_t *j = json_pack("{s:s, s:s, s:i, s:I}", "name", p->name, "spec", p->spec,
			      "size", (int)p->size, "created_usec",
			      (json_int_t)p->created_wall_usec);
	pthread_mutex_unlock(&p->lock);
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	int r = write_file_atomic(path, text, strlen(text), false);
	free(text);
	if (r < 0)
		log_err("pool %s: cannot write %s: %s", p->name, path, strerror(-r));
	else
		journal_commit_soon(eng);
	return r;
}

/* --- members --- */

static void discard_job(void *arg)
{
	struct sbx *m = arg;
	struct warm_pool *p = m->pool;
	m->pool = NULL; /* out of every list: nobody else looks */
	sbx_discard(m);
	if (p) {
		pthread_mutex_lock(&p->lock);
		p->discarded++;
		atomic_fetch_sub(&p->discarding, 1);
		pthread_mutex_unlock(&p->lock);
		pool_put(p);
	}
}

/* Off the caller's path: a stop waits for init to go. Counted in the pool's
 * `discarding` from here until discard_job is done. */
static void discard_soon(struct sbx *m)
{
	struct engine *eng = m->eng;
	if (m->pool)
		atomic_fetch_add(&m->pool->discarding, 1);
	if (atomic_load(&eng->warm.quitting) || pool_submit(eng, discard_job, m) < 0)
		discard_job(m);
}

static void kick(struct warm_pool *p);

static void kick_all(struct engine *eng)
{
	struct warm_pool *p;
	urcu_memb_read_lock();
	cds_list_for_each_entry_rcu(p, &eng->warm.pools, link)
		kick(p);
	urcu_memb_read_unlock();
}

/* m (locked) started. What it will run for its user gets the usual
 * priority: an idle-free backend's processes are set back to it now (init
 * first, so that the warm shell it forks next has it too), another's (a
 * QEMU, whose guest ticks cost CPU while it waits) at the claim. */
static void member_made(struct sbx *m)
{
	if (m->ops->caps & VMM_CAP_IDLE_FREE)
		cg_renice(&m->vm.cg, 0);
	sbx_warm_arm(m); /* its first exec, after a claim, needs no fork */
}

/* m's cgroup's CPU time, or -errno when it no longer runs. */
static int64_t member_cpu_usec(struct sbx *m)
{
	struct vmm_usage u = {0};
	pthread_mutex_lock(&m->lock);
	int r = atomic_load(&m->state) == SBX_RUNNING ? m->ops->usage(&m->vm, &u) : -ESRCH;
	pthread_mutex_unlock(&m->lock);
	return r < 0 ? r : (int64_t)u.cpu_usec;
}

/* On the fill's worker, m made: returns once m is idle (WARM_SETTLE_*). An
 * idle-free backend's member is idle when it is made. */
static void member_settle(struct engine *eng, struct sbx *m)
{
	if ((m->ops->caps & VMM_CAP_IDLE_FREE) || !m->ops->usage)
		return;
	uint64_t t0 = now_usec(), until = t0 + WARM_SETTLE_MAX_USEC;
	int64_t last = member_cpu_usec(m);
	int quiet = 0;
	while (last >= 0 && quiet < WARM_SETTLE_TICKS && now_usec() < until &&
	       !atomic_load(&eng->warm.quitting)) {
		usleep(WARM_SETTLE_TICK_USEC);
		int64_t cpu = member_cpu_usec(m);
		quiet = cpu >= 0 && cpu - last < WARM_SETTLE_BUSY_USEC ? quiet + 1 : 0;
		last = cpu;
	}
	log_debug("sandbox %s: %s after %" PRIu64 " ms", m->node.name,
		  quiet == WARM_SETTLE_TICKS ? "idle" : "still busy, ready", (now_usec() - t0) / 1000);
}

/* On the fill's worker, before it makes anything: bounded (a stream of
 * claims never starves the pool's refill). */
static void fill_wait_quiet(struct engine *eng)
{
	uint64_t start = now_usec(), until = start + WARM_FILL_WAIT_USEC;
	for (;;) {
		uint64_t now = now_usec(),
			 quiet = atomic_load(&eng->warm.last_claim_usec) + WARM_FILL_QUIET_USEC;
		if (now >= quiet || now >= until || atomic_load(&eng->warm.quitting))
			return;
		usleep((useconds_t)((quiet < until ? quiet : until) - now));
	}
}

/* Makes one member of p (a worker, at a lower priority) and puts it in the
 * ready stack, or discards it when the pool changed meanwhile. */
static void fill_job(void *arg)
{
	struct warm_pool *p = arg;
	struct engine *eng = p->eng;
	struct sbx_config c;
	char name[SBX_NAME_MAX + 1], spec[WARM_SPEC_MAX];
	struct err e = {0};
	struct sbx *m = NULL;
	int r = -ECANCELED;
	fill_wait_quiet(eng);
	pthread_mutex_lock(&p->lock);
	c = p->cfg;
	snprintf(spec, sizeof(spec), "%s", p->spec);
	snprintf(name, sizeof(name), MEMBER_PREFIX "%u-%08x-%" PRIu64, p->id, eng->warm.run, ++p->seq);
	bool go = !p->removed && !atomic_load(&eng->warm.quitting);
	pthread_mutex_unlock(&p->lock);
	if (go) {
		setpriority(PRIO_PROCESS, 0, WARM_FILL_NICE); /* this thread only (Linux) */
		r = engine_image_check(eng, c.image, &e);
		if (r == 0 && !(m = sbx_alloc(eng, name, &c)))
			r = err_set(&e, -ENOMEM, "out of memory");
		if (m) {
			pool_get(p);
			m->pool = p;
			m->cfg.created_wall_usec = wall_usec();
			m->t.request_usec = now_usec();
			if ((r = sbx_net_reserve(m, NULL, &e)) == 0 &&
			    (r = sbx_make_state_dir(m, &e)) == 0) {
				sbx_start_now(m);
				pthread_mutex_lock(&m->lock);
				if (atomic_load(&m->state) != SBX_RUNNING)
					r = err_set(&e, -EIO, "%s", m->error[0] ? m->error : "it did not start");
				else
					member_made(m);
				pthread_mutex_unlock(&m->lock);
				if (r == 0)
					member_settle(eng, m);
			}
		}
		setpriority(PRIO_PROCESS, 0, 0);
	}
	pthread_mutex_lock(&p->lock);
	p->filling--;
	bool keep = r == 0 && !p->removed && !atomic_load(&eng->warm.quitting) && !strcmp(spec, p->spec) &&
		    p->nready < p->size;
	if (r == 0) {
		p->made++;
		p->fails_in_row = 0;
		p->fill_usec = m->t.create_usec;
	} else if (r != -ECANCELED) {
		p->failed++;
		snprintf(p->error, sizeof(p->error), "%s", e.msg);
		if (++p->fails_in_row >= WARM_FAILS_STALL)
			p->stalled = true;
	}
	if (keep)
		p->ready[p->nready++] = m;
	pthread_mutex_unlock(&p->lock);
	atomic_fetch_sub(&eng->warm.fills_active, 1);
	if (r != 0 && r != -ECANCELED)
		log_warn("pool %s: a fill failed: %s", p->name, e.msg);
	if (m && !keep) {
		if (m->vm.dir[0] && access(m->vm.dir, F_OK) == 0)
			discard_soon(m); /* holds its pool reference until done */
		else { /* nothing on disk: only a reservation */
			sbx_net_release(m);
			m->pool = NULL;
			sbx_put(m);
			pool_put(p);
		}
	}
	pool_put(p); /* the fill's */
	kick_all(eng); /* a slot is free for any pool */
}

/* Queues fills while the pool lacks members and a slot is free. */
static void kick(struct warm_pool *p)
{
	struct engine *eng = p->eng;
	pthread_mutex_lock(&p->lock);
	while (!p->removed && !p->stalled && !atomic_load(&eng->warm.quitting) &&
	       p->nready + p->filling < p->size) {
		if (atomic_fetch_add(&eng->warm.fills_active, 1) >= WARM_FILLS_MAX) {
			atomic_fetch_sub(&eng->warm.fills_active, 1);
			break;
		}
		p->filling++;
		pool_get(p);
		if (pool_submit(eng, fill_job, p) < 0) {
			p->filling--;
			atomic_fetch_sub(&eng->warm.fills_active, 1);
			pool_put(p);
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

/* Takes members off p's ready stack from index `keep` up (p->lock held);
 * the caller discards them. */
static size_t take_from(struct warm_pool *p, uint32_t keep, struct sbx ***out)
{
	size_t n = p->nready > keep ? p->nready - keep : 0;
	*out = n ? malloc(n * sizeof(**out)) : NULL;
	if (!*out)
		return 0;
	memcpy(*out, p->ready + keep, n * sizeof(**out));
	p->nready = keep;
	return n;
}

static void discard_list(struct sbx **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		discard_soon(l[i]);
	free(l);
}

void warm_member_ended(struct sbx *s)
{
	struct warm_pool *p = s->pool;
	struct engine *eng = s->eng;
	bool mine = false;
	pthread_mutex_lock(&p->lock);
	for (uint32_t i = 0; i < p->nready; i++)
		if (p->ready[i] == s) {
			p->ready[i] = p->ready[--p->nready];
			mine = true;
			break;
		}
	pthread_mutex_unlock(&p->lock);
	if (!mine) /* being made, or taken by a claim: theirs to settle */
		return;
	log_warn("pool %s: member %s ended while it waited (%s); discarded", p->name,
		 s->node.name, s->reason);
	/* The caller holds s->lock: the discard runs on a worker. */
	atomic_fetch_add(&p->discarding, 1);
	if (pool_submit(eng, discard_job, s) < 0) {
		atomic_fetch_sub(&p->discarding, 1);
		log_err("pool %s: member %s cannot be discarded now", p->name, s->node.name);
	}
	kick(p);
}

/* --- claim --- */

/* The sandbox's new identity; s->lock held. On failure the name and state
 * dir are given back; *intact says the member can serve another claim (the
 * name was taken) rather than be discarded. */
static int take_identity(struct sbx *s, const char *name, bool *intact, struct err *e)
{
	struct engine *eng = s->eng;
	char old_name[SBX_NAME_MAX + 1], old_dir[PATH_MAX], dir[PATH_MAX];
	snprintf(old_name, sizeof(old_name), "%s", s->node.name);
	snprintf(old_dir, sizeof(old_dir), "%s", s->vm.dir);
	snprintf(dir, sizeof(dir), "%s/%s", eng->sandboxes_dir, name);
	snprintf(s->node.name, sizeof(s->node.name), "%s", name);
	*intact = true;
	if (reg_add(eng->reg, &s->node) < 0) {
		snprintf(s->node.name, sizeof(s->node.name), "%s", old_name);
		return err_set(e, -EEXIST, "sandbox '%s' already exists", name);
	}
	*intact = false;
	int r = 0;
	if (renameat2(AT_FDCWD, old_dir, AT_FDCWD, dir, RENAME_NOREPLACE) < 0)
		r = errno == EEXIST ? err_set(e, -EEXIST, "%s exists on disk but is not a known "
					      "sandbox; remove it by hand if it is not needed", dir)
				    : err_set(e, -errno, "cannot rename a pool member to %s: %s", dir,
					      strerror(errno));
	else
		snprintf(s->vm.dir, sizeof(s->vm.dir), "%s", dir);
	if (r == 0 && (r = s->ops->rename(&s->vm, name, e)) < 0 && rename(dir, old_dir) == 0)
		snprintf(s->vm.dir, sizeof(s->vm.dir), "%s", old_dir);
	if (r < 0) {
		reg_del(eng->reg, &s->node);
		snprintf(s->node.name, sizeof(s->node.name), "%s", old_name);
	}
	return r;
}

/* Pops a ready member of the pool whose spec is `spec`. NULL: no such pool
 * (*matched false) or none ready. The member keeps its pool reference. */
static struct sbx *pop_member(struct engine *eng, const char *spec, bool *matched,
			      struct warm_pool **pool)
{
	struct warm_pool *p;
	struct sbx *m = NULL;
	*matched = false;
	urcu_memb_read_lock();
	cds_list_for_each_entry_rcu(p, &eng->warm.pools, link) {
		pthread_mutex_lock(&p->lock);
		if (!p->removed && strcmp(p->spec, spec) == 0 && pool_tryget(p)) {
			*matched = true;
			if (p->nready)
				m = p->ready[--p->nready];
			if (m)
				p->hits++;
			*pool = p;
		}
		pthread_mutex_unlock(&p->lock);
		if (*matched)
			break;
	}
	urcu_memb_read_unlock();
	return m;
}

int warm_claim(struct engine *eng, const char *name, const struct sbx_config *c, struct sbx **out,
	       struct err *e)
{
	char spec[WARM_SPEC_MAX];
	if (cds_list_empty(&eng->warm.pools) || ctl_config_spec(c, spec, sizeof(spec)) < 0)
		return -ENOENT;
	int r = ctl_check_name(name, e);
	if (r < 0)
		return r;
	uint64_t t0 = now_usec();
	for (;;) {
		bool matched;
		struct warm_pool *p = NULL;
		struct sbx *m = pop_member(eng, spec, &matched, &p);
		if (!m) {
			if (p) {
				pthread_mutex_lock(&p->lock);
				p->misses++;
				pthread_mutex_unlock(&p->lock);
				kick(p);
				pool_put(p);
			}
			return -ENOENT;
		}
		pthread_mutex_lock(&m->lock);
		if (atomic_load(&m->state) != SBX_RUNNING) {
			pthread_mutex_unlock(&m->lock);
			discard_soon(m);
			pool_put(p);
			continue;
		}
		bool intact;
		r = take_identity(m, name, &intact, e);
		if (r < 0) {
			pthread_mutex_unlock(&m->lock);
			pthread_mutex_lock(&p->lock);
			p->hits--;
			if (intact && !p->removed && p->nready < p->size) {
				p->ready[p->nready++] = m; /* it goes back: only the name was taken */
				m = NULL;
			} else if (!intact) { /* the member's fault (a guest agent too old): said */
				snprintf(p->error, sizeof(p->error), "a member could not take the name "
					 "%s, and was discarded: %s", name, e->msg);
			}
			pthread_mutex_unlock(&p->lock);
			if (m) {
				discard_soon(m);
				kick(p); /* its place is filled again */
			}
			pool_put(p);
			if (intact || r == -EEXIST)
				return r;
			log_warn("sandbox %s: a pool member could not take the name (%s); created "
				 "cold instead", name, e->msg);
			err_clear(e);
			return -ENOENT;
		}
		uint64_t now = now_usec();
		atomic_store(&eng->warm.last_claim_usec, now);
		m->pool = NULL;
		m->cfg.created_wall_usec = wall_usec();
		m->t.request_usec = t0;
		m->t.claim_usec = now - t0;
		m->t.create_usec = now - t0;
		m->deadline_usec = m->cfg.timeout_sec ? now + (uint64_t)m->cfg.timeout_sec * 1000000 : 0;
		sbx_net_rename(m);
		/* A QEMU, every thread, was spawned by a fill at the fill's lower
		 * priority and kept it while it waited (member_made). */
		if (!(m->ops->caps & VMM_CAP_IDLE_FREE))
			cg_renice(&m->vm.cg, 0);
		atomic_fetch_add(&m->generation, 1);
		pthread_mutex_unlock(&m->lock);
		/* The state dir under its new name already holds a journal that
		 * re-adopts it (the member's: same spec, pid and cgroup); the new
		 * times and name follow off the claim's path. */
		reg_tryget(&m->node);
		journal_write_later(m);
		pool_put(p); /* the member's: it is the user's sandbox now */
		engine_bump_generation(eng);
		log_info("sandbox %s: claimed from pool %s in %" PRIu64 " us", name, p->name,
			 m->t.claim_usec);
		kick(p);
		pool_put(p); /* pop_member's */
		*out = m;
		return 0;
	}
}

/* --- pools as files --- */

void warm_pool_put(struct warm_pool *p) { pool_put(p); }
uint64_t warm_pool_created_wall_usec(const struct warm_pool *p) { return p->created_wall_usec; }

uint32_t warm_pool_lookup(struct engine *eng, const char *name)
{
	urcu_memb_read_lock();
	struct warm_pool *p = find_name(eng, name);
	uint32_t id = p ? p->id : 0;
	urcu_memb_read_unlock();
	return id;
}

bool warm_image_user(struct engine *eng, const char *image, char *pool, size_t cap)
{
	struct warm_pool *p;
	bool found = false;
	urcu_memb_read_lock();
	cds_list_for_each_entry_rcu(p, &eng->warm.pools, link) {
		pthread_mutex_lock(&p->lock);
		found = !p->removed && strcmp(p->cfg.image, image) == 0;
		pthread_mutex_unlock(&p->lock);
		if (found) {
			snprintf(pool, cap, "%s", p->name);
			break;
		}
	}
	urcu_memb_read_unlock();
	return found;
}

int warm_pool_list(struct engine *eng, char (**names)[64], uint32_t **ids, size_t *n)
{
	size_t cap = 0, k = 0;
	char(*nm)[64] = NULL;
	uint32_t *id = NULL;
	struct warm_pool *p;
	int r = 0;
	urcu_memb_read_lock();
	cds_list_for_each_entry_rcu(p, &eng->warm.pools, link) {
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			void *a = realloc(nm, cap * sizeof(*nm)), *b = a ? realloc(id, cap * sizeof(*id)) : NULL;
			if (a)
				nm = a;
			if (b)
				id = b;
			if (!a || !b) {
				r = -ENOMEM;
				break;
			}
		}
		snprintf(nm[k], 64, "%s", p->name);
		id[k++] = p->id;
	}
	urcu_memb_read_unlock();
	if (r < 0) {
		free(nm);
		free(id);
		return r;
	}
	*names = nm;
	*ids = id;
	*n = k;
	return 0;
}

static int pool_fail(struct warm_pool *p, int code, const char *msg)
{
	pthread_mutex_lock(&p->lock);
	snprintf(p->error, sizeof(p->error), "%s", msg);
	pthread_mutex_unlock(&p->lock);
	log_warn("pool %s: %s", p->name, msg);
	return code;
}

/* A spec: the options of create (key=value words over a bare mkdir's). */
static int parse_spec(struct engine *eng, const char *buf, size_t len, struct sbx_config *c,
		      char *spec, struct err *e)
{
	struct ctl_cmd cmd;
	engine_mkdir_config(eng, c);
	int r = ctl_split(buf, len, &cmd, e);
	if (r < 0)
		return r;
	if ((r = ctl_parse_options(cmd.argc, cmd.argv, c, e)) < 0 ||
	    (r = engine_config_check(eng, c, cmd.argc, cmd.argv, e)) < 0)
		return r;
	const struct vmm_ops *ops = vmm_find(c->backend);
	if (!ops)
		return err_set(e, -EOPNOTSUPP, "backend '%s' is not available in this build",
			       c->backend);
	if (!ops->rename)
		return err_set(e, -EOPNOTSUPP, "backend %s cannot be pooled yet: a member could not "
			       "take its user's name (no hostname change in a running guest)",
			       c->backend);
	if (ctl_config_spec(c, spec, WARM_SPEC_MAX) < 0)
		return err_set(e, -EINVAL, "the spec is too long");
	return 0;
}

int warm_show_spec(struct warm_pool *p, struct buf *b)
{
	pthread_mutex_lock(&p->lock);
	int r = buf_printf(b, "%s\n", p->spec);
	pthread_mutex_unlock(&p->lock);
	return r;
}

int warm_write_spec(struct warm_pool *p, const char *buf, size_t len)
{
	struct sbx_config c;
	char spec[WARM_SPEC_MAX];
	struct err e = {0};
	int r = parse_spec(p->eng, buf, len, &c, spec, &e);
	if (r < 0)
		return pool_fail(p, r, e.msg);
	struct sbx **old = NULL;
	size_t n = 0;
	pthread_mutex_lock(&p->lock);
	if (strcmp(spec, p->spec) != 0) {
		p->cfg = c;
		snprintf(p->spec, sizeof(p->spec), "%s", spec);
		n = take_from(p, 0, &old); /* every member of the old spec goes */
	}
	p->stalled = false;
	p->fails_in_row = 0;
	p->error[0] = '\0';
	pthread_mutex_unlock(&p->lock);
	discard_list(old, n);
	pool_journal(p);
	kick(p);
	return 0;
}

int warm_show_size(struct warm_pool *p, struct buf *b)
{
	pthread_mutex_lock(&p->lock);
	int r = buf_printf(b, "%u\n", p->size);
	pthread_mutex_unlock(&p->lock);
	return r;
}

int warm_write_size(struct warm_pool *p, const char *buf, size_t len)
{
	struct engine *eng = p->eng;
	struct ctl_cmd cmd;
	struct err e = {0};
	uint64_t u;
	int r = ctl_split(buf, len, &cmd, &e);
	if (r == 0 && (cmd.argc != 1 || ctl_parse_uint(cmd.argv[0], WARM_SIZE_MAX, &u) < 0))
		r = err_set(&e, -EINVAL, "size is a number of sandboxes from 0 to %d",
			    WARM_SIZE_MAX);
	if (r == 0 && eng->o.max_sandboxes && u > eng->o.max_sandboxes)
		r = err_set(&e, -ENOSPC, "size %" PRIu64 " is more than the daemon's limit of %lu "
			    "sandboxes (--max-sandboxes)", u, eng->o.max_sandboxes);
	if (r < 0)
		return pool_fail(p, r, e.msg);
	struct sbx **extra = NULL, **grown = NULL;
	size_t n = 0;
	pthread_mutex_lock(&p->lock);
	if (u > p->size && !(grown = realloc(p->ready, u * sizeof(*p->ready))))
		r = -ENOMEM;
	if (r == 0) {
		if (grown)
			p->ready = grown;
		p->size = (uint32_t)u;
		n = take_from(p, p->size, &extra);
		p->stalled = false;
		p->fails_in_row = 0;
		p->error[0] = '\0';
	}
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return pool_fail(p, r, "out of memory");
	discard_list(extra, n);
	pool_journal(p);
	kick(p);
	return 0;
}

int warm_show_status(struct warm_pool *p, struct buf *b)
{
	pthread_mutex_lock(&p->lock);
	const char *state = p->stalled ? "stalled" : p->nready >= p->size ? "ready" : "filling";
	int r = buf_printf(b,
			   "state %s\nsize %u\nready %u\nfilling %u\nhits %" PRIu64
			   "\nmisses %" PRIu64 "\nmade %" PRIu64 "\nfailed %" PRIu64
			   "\ndiscarded %" PRIu64 "\ndiscarding %u\nfill_usec %" PRIu64 "\n",
			   state, p->size, p->nready, p->filling, p->hits, p->misses, p->made,
			   p->failed, p->discarded, atomic_load(&p->discarding), p->fill_usec);
	pthread_mutex_unlock(&p->lock);
	return r;
}

int warm_show_error(struct warm_pool *p, struct buf *b)
{
	pthread_mutex_lock(&p->lock);
	int r = p->error[0] ? buf_printf(b, "%s\n", p->error) : 0;
	pthread_mutex_unlock(&p->lock);
	return r;
}

static struct warm_pool *pool_new(struct engine *eng, const char *name, struct err *e)
{
	uint32_t id = atomic_fetch_add(&eng->warm.next_id, 1);
	if (id > WARM_POOL_ID_MAX) {
		err_set(e, -ENOSPC, "this daemon made %u pools since it started: no pool id left",
			WARM_POOL_ID_MAX);
		return NULL;
	}
	struct warm_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		err_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	p->id = id;
	p->eng = eng;
	atomic_init(&p->refs, 1);
	snprintf(p->name, sizeof(p->name), "%s", name);
	pthread_mutex_init(&p->lock, NULL);
	p->created_wall_usec = wall_usec();
	engine_mkdir_config(eng, &p->cfg);
	ctl_config_spec(&p->cfg, p->spec, sizeof(p->spec));
	return p;
}

/* Adds p to the list unless the name is taken (the list's reference). */
static int pool_add(struct warm_pool *p, struct err *e)
{
	struct engine *eng = p->eng;
	pthread_mutex_lock(&eng->warm.lock);
	urcu_memb_read_lock();
	bool taken = find_name(eng, p->name) != NULL;
	urcu_memb_read_unlock();
	if (!taken)
		cds_list_add_tail_rcu(&p->link, &eng->warm.pools);
	pthread_mutex_unlock(&eng->warm.lock);
	return taken ? err_set(e, -EEXIST, "pool '%s' already exists", p->name) : 0;
}

int warm_pool_mkdir(struct engine *eng, const char *name, uint32_t *id)
{
	struct err e = {0};
	int r = ctl_check_name(name, &e);
	struct warm_pool *p = r < 0 ? NULL : pool_new(eng, name, &e);
	if (p && (r = pool_add(p, &e)) < 0)
		pool_free_rcu(&p->rcu);
	if (!p || r < 0) {
		engine_note_error(eng, "mkdir pools/%s: %s", name, e.msg);
		return e.code ? e.code : -ENOMEM;
	}
	pool_journal(p);
	*id = p->id;
	log_info("pool %s: made (empty; write its size to fill it)", name);
	return 0;
}

int warm_pool_rmdir(struct engine *eng, const char *name)
{
	pthread_mutex_lock(&eng->warm.lock);
	urcu_memb_read_lock();
	struct warm_pool *p = find_name(eng, name);
	if (p)
		cds_list_del_rcu(&p->link);
	urcu_memb_read_unlock();
	pthread_mutex_unlock(&eng->warm.lock);
	if (!p) {
		engine_note_error(eng, "rmdir pools/%s: no such pool", name);
		return -ENOENT;
	}
	struct sbx **l = NULL;
	pthread_mutex_lock(&p->lock);
	p->removed = true; /* fills under way discard what they make */
	size_t n = take_from(p, 0, &l);
	pthread_mutex_unlock(&p->lock);
	discard_list(l, n);
	char path[PATH_MAX + 80];
	snprintf(path, sizeof(path), "%s/%s.json", eng->warm.dir, name);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("pool %s: cannot remove %s: %s", name, path, strerror(errno));
	log_info("pool %s: removed, %zu ready member(s) discarded", name, n);
	pool_put(p); /* the list's */
	return 0;
}

/* --- start-up, exit, /sbx/stats --- */

bool warm_leftover(struct engine *owner, const char *entry)
{
	if (strncmp(entry, MEMBER_PREFIX, strlen(MEMBER_PREFIX)) != 0)
		return false;
	struct vmm_inst vm;
	struct err e = {0};
	vmm_inst_init(&vm);
	snprintf(vm.cg.leaf, sizeof(vm.cg.leaf), "%s-%s", vmm_host()->tag, entry);
	snprintf(vm.dir, sizeof(vm.dir), "%s/%s", owner->sandboxes_dir, entry);
	/* Its processes too, if it still ran (a QEMU is in its cgroup); then its
	 * disk= mount, its files, and a VM's guest RAM file. */
	int r = vmm_remove_files(&vm, &e);
	const char *path = vm.dir;
	char ram[PATH_MAX];
	vmm_ram_path(entry, ram, sizeof(ram));
	if (unlink(ram) < 0 && errno != ENOENT)
		log_warn("cannot remove %s, of a pool member left by an earlier daemon: %s", ram,
			 strerror(errno));
	if (r < 0)
		log_warn("cannot remove %s, a pool member left by an earlier daemon: %s", path,
			 e.msg);
	else
		log_info("discarded %s, a pool member left by an earlier daemon", entry);
	return true;
}

static void load_pool(struct engine *eng, const char *file)
{
	char path[PATH_MAX + 256], name[SBX_NAME_MAX + 1];
	snprintf(path, sizeof(path), "%s/%s", eng->warm.dir, file);
	size_t l = strlen(file);
	if (l < 6 || strcmp(file + l - 5, ".json") != 0 || l - 5 > SBX_NAME_MAX)
		return;
	snprintf(name, sizeof(name), "%.*s", (int)(l - 5), file);
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	const char *spec = NULL;
	int size = 0;
	json_int_t created = 0;
	struct err e = {0};
	struct warm_pool *p = NULL;
	if (!j || json_unpack_ex(j, &je, 0, "{s:s, s:i, s?I}", "spec", &spec, "size", &size,
				 "created_usec", &created) < 0 || size < 0 || size > WARM_SIZE_MAX) {
		engine_note_error(eng, "pool journal %s is unreadable or malformed (%s); pool skipped",
				  path, je.text);
	} else if (ctl_check_name(name, &e) < 0 || !(p = pool_new(eng, name, &e))) {
		engine_note_error(eng, "pool journal %s: %s; pool skipped", path, e.msg);
	} else if (pool_add(p, &e) < 0) {
		pool_free_rcu(&p->rcu);
		p = NULL;
	} else {
		if (created > 0)
			p->created_wall_usec = (uint64_t)created;
		char sz[16];
		snprintf(sz, sizeof(sz), "%d", size);
		if (warm_write_spec(p, spec, strlen(spec)) < 0 || warm_write_size(p, sz, strlen(sz)) < 0)
			log_warn("pool %s: its journal's spec or size is refused: %s", name, p->error);
		log_info("pool %s: re-adopted (size %d)", name, size);
	}
	json_decref(j);
}

void warm_init(struct engine *eng)
{
	CDS_INIT_LIST_HEAD(&eng->warm.pools);
	pthread_mutex_init(&eng->warm.lock, NULL);
	atomic_init(&eng->warm.next_id, 1);
	/* A claimed sandbox keeps what was named after its member (its cgroup),
	 * and pool ids and sequence numbers start again with each daemon: a
	 * member of a later run must never take such a name (it would share the
	 * cgroup, and a later start's discard of leftover members would kill
	 * the claimed sandbox with it). */
	if (getrandom(&eng->warm.run, sizeof(eng->warm.run), 0) != sizeof(eng->warm.run))
		eng->warm.run = (uint32_t)(now_usec() ^ (uint64_t)getpid() << 16);
	/* What lifecycle.c asks of the pools, without calling up into them. */
	eng->lifecycle.claim = warm_claim;
	eng->lifecycle.member_ended = warm_member_ended;
	images_set_pool_user(eng, warm_image_user);
}

int warm_start(struct engine *eng)
{
	snprintf(eng->warm.dir, sizeof(eng->warm.dir), "%s/pools", eng->o.state_dir);
	int r = mkdir_p(eng->warm.dir, 0700);
	if (r < 0)
		return r;
	DIR *d = opendir(eng->warm.dir);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			load_pool(eng, de->d_name);
	closedir(d);
	return 0;
}

void warm_quiesce(struct engine *eng) { atomic_store(&eng->warm.quitting, true); }

void warm_stop(struct engine *eng)
{
	atomic_store(&eng->warm.quitting, true);
	for (;;) {
		pthread_mutex_lock(&eng->warm.lock);
		struct warm_pool *p = cds_list_empty(&eng->warm.pools)
					      ? NULL
					      : cds_list_first_entry(&eng->warm.pools, struct warm_pool, link);
		if (p)
			cds_list_del_rcu(&p->link);
		pthread_mutex_unlock(&eng->warm.lock);
		if (!p)
			break;
		struct sbx **l = NULL;
		pthread_mutex_lock(&p->lock);
		p->removed = true;
		size_t n = take_from(p, 0, &l);
		pthread_mutex_unlock(&p->lock);
		discard_list(l, n); /* quitting: at once, on this thread */
		pool_put(p);
	}
	urcu_memb_barrier(); /* the pools' memory, freed after their grace periods */
}

int warm_show_stats(struct engine *eng, struct buf *b)
{
	uint64_t npools = 0, ready = 0, filling = 0, hits = 0, misses = 0;
	struct warm_pool *p;
	urcu_memb_read_lock();
	cds_list_for_each_entry_rcu(p, &eng->warm.pools, link) {
		pthread_mutex_lock(&p->lock);
		npools++;
		ready += p->nready;
		filling += p->filling;
		hits += p->hits;
		misses += p->misses;
		pthread_mutex_unlock(&p->lock);
	}
	urcu_memb_read_unlock();
	return buf_printf(b, "pools %" PRIu64 "\npool_ready %" PRIu64 "\npool_filling %" PRIu64
			  "\npool_hits_total %" PRIu64 "\npool_misses_total %" PRIu64 "\n",
			  npools, ready, filling, hits, misses);
}
