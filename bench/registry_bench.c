/* Registry micro-benchmark (issue 3, case 3).
 *
 * Measures the engine's registry (engine/registry.c: two liburcu cds_lfht
 * tables, lookups under urcu_memb_read_lock) beside a baseline with the same
 * API shape protected by one pthread mutex (chained hash tables by name and
 * by id, same hash functions, grown at load factor 1, reference counted
 * nodes).  Sizes, iteration counts and duration come from the command line;
 * every number printed is measured here with CLOCK_MONOTONIC.
 *
 *   registry_bench [-s SIZES] [-i ITERS] [-d SECONDS]
 *
 * Output: one tab-separated line per measurement:
 *   impl  op  size  threads  ns_per_op  ops
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../engine/registry.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift: cheap, deterministic per thread */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static volatile uint64_t sink;

/* ------------------------------------------------------------------ */
/* Mutex baseline with the registry's API shape.                        */

struct mnode {
	struct mnode *next_name, *next_id;
	_Atomic long ref;
	uint64_t id;
	char name[REG_NAME_MAX];
	void (*release)(struct mnode *n);
	int linked;
};

struct mreg {
	pthread_mutex_t lock;
	struct mnode **by_name, **by_id;
	size_t nbuckets, count;
};

static unsigned long hash_name(const char *s) /* same FNV-1a as registry.c */
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return (unsigned long)h;
}

static unsigned long hash_id(uint64_t id) /* same mixer as registry.c */
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (unsigned long)id;
}

static struct mreg *mreg_new(void)
{
	struct mreg *r = calloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->nbuckets = 64;
	r->by_name = calloc(r->nbuckets, sizeof(*r->by_name));
	r->by_id = calloc(r->nbuckets, sizeof(*r->by_id));
	return r;
}

static void mreg_free(struct mreg *r)
{
	free(r->by_name);
	free(r->by_id);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static void mreg_node_init(struct mnode *n, uint64_t id, const char *name,
			   void (*release)(struct mnode *))
{
	n->next_name = n->next_id = NULL;
	atomic_store(&n->ref, 1);
	n->id = id;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->release = release;
	n->linked = 0;
}

static void mreg_grow(struct mreg *r) /* lock held */
{
	size_t nb = r->nbuckets * 2;
	struct mnode **bn = calloc(nb, sizeof(*bn)), **bi = calloc(nb, sizeof(*bi));
	for (size_t b = 0; b < r->nbuckets; b++) {
		for (struct mnode *n = r->by_name[b], *next; n; n = next) {
			next = n->next_name;
			size_t h = hash_name(n->name) & (nb - 1);
			n->next_name = bn[h];
			bn[h] = n;
		}
		for (struct mnode *n = r->by_id[b], *next; n; n = next) {
			next = n->next_id;
			size_t h = hash_id(n->id) & (nb - 1);
			n->next_id = bi[h];
			bi[h] = n;
		}
	}
	free(r->by_name);
	free(r->by_id);
	r->by_name = bn;
	r->by_id = bi;
	r->nbuckets = nb;
}

static struct mnode *mreg_find_name_locked(struct mreg *r, const char *name)
{
	for (struct mnode *n = r->by_name[hash_name(name) & (r->nbuckets - 1)]; n; n = n->next_name)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

static struct mnode *mreg_find_id_locked(struct mreg *r, uint64_t id)
{
	for (struct mnode *n = r->by_id[hash_id(id) & (r->nbuckets - 1)]; n; n = n->next_id)
		if (n->id == id)
			return n;
	return NULL;
}

static int mreg_add(struct mreg *r, struct mnode *n)
{
	pthread_mutex_lock(&r->lock);
	if (mreg_find_name_locked(r, n->name)) {
		pthread_mutex_unlock(&r->lock);
		return -EEXIST;
	}
	atomic_fetch_add(&n->ref, 1);
	if (r->count + 1 > r->nbuckets)
		mreg_grow(r);
	size_t hn = hash_name(n->name) & (r->nbuckets - 1), hi = hash_id(n->id) & (r->nbuckets - 1);
	n->next_name = r->by_name[hn];
	r->by_name[hn] = n;
	n->next_id = r->by_id[hi];
	r->by_id[hi] = n;
	n->linked = 1;
	r->count++;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void mreg_put(struct mnode *n)
{
	if (atomic_fetch_sub(&n->ref, 1) == 1)
		n->release(n);
}

static int mreg_del(struct mreg *r, struct mnode *n)
{
	pthread_mutex_lock(&r->lock);
	if (!n->linked) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	struct mnode **pp = &r->by_name[hash_name(n->name) & (r->nbuckets - 1)];
	while (*pp != n)
		pp = &(*pp)->next_name;
	*pp = n->next_name;
	pp = &r->by_id[hash_id(n->id) & (r->nbuckets - 1)];
	while (*pp != n)
		pp = &(*pp)->next_id;
	*pp = n->next_id;
	n->linked = 0;
	r->count--;
	pthread_mutex_unlock(&r->lock);
	mreg_put(n); /* the table's reference: no grace period needed under a mutex */
	return 0;
}

static struct mnode *mreg_get_name(struct mreg *r, const char *name)
{
	pthread_mutex_lock(&r->lock);
	struct mnode *n = mreg_find_name_locked(r, name);
	if (n)
		atomic_fetch_add(&n->ref, 1);
	pthread_mutex_unlock(&r->lock);
	return n;
}

static struct mnode *mreg_get_id(struct mreg *r, uint64_t id)
{
	pthread_mutex_lock(&r->lock);
	struct mnode *n = mreg_find_id_locked(r, id);
	if (n)
		atomic_fetch_add(&n->ref, 1);
	pthread_mutex_unlock(&r->lock);
	return n;
}

static int mreg_foreach(struct mreg *r, int (*fn)(struct mnode *, void *), void *arg)
{
	int ret = 0;
	pthread_mutex_lock(&r->lock);
	for (size_t b = 0; b < r->nbuckets && !ret; b++)
		for (struct mnode *n = r->by_name[b]; n && !ret; n = n->next_name)
			ret = fn(n, arg);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Objects                                                             */

struct robj { /* what the engine embeds: struct sbx starts with a reg_node */
	struct reg_node node;
	long payload;
};
struct mobj {
	struct mnode node;
	long payload;
};

static _Atomic long released;
static void robj_release(struct reg_node *n)
{
	atomic_fetch_add(&released, 1);
	(void)n; /* storage is owned by the benchmark's arrays */
}
static void mobj_release(struct mnode *n)
{
	atomic_fetch_add(&released, 1);
	(void)n;
}

static int count_r(struct reg_node *n, void *arg)
{
	*(long *)arg += (long)n->id;
	return 0;
}
static int count_m(struct mnode *n, void *arg)
{
	*(long *)arg += (long)n->id;
	return 0;
}

static void emit(const char *impl, const char *op, size_t size, int threads, double ns, uint64_t ops)
{
	printf("%s\t%s\t%zu\t%d\t%.1f\t%" PRIu64 "\n", impl, op, size, threads, ns, ops);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Concurrent phase: 2 readers look names up while a writer churns.     */

struct conc {
	int rcu; /* 1: registry, 0: mutex baseline */
	struct reg *r;
	struct mreg *m;
	size_t size;
	char (*names)[REG_NAME_MAX];
	_Atomic int stop;
	_Atomic int ready;
	struct robj **churn_r;
	struct mobj **churn_m;
	size_t nchurn;
};

struct reader_res {
	struct conc *c;
	uint64_t ops, ns;
	unsigned seed;
};

static void *reader(void *arg)
{
	struct reader_res *rr = arg;
	struct conc *c = rr->c;
	uint64_t s = 0x9e3779b97f4a7c15ull ^ rr->seed, ops = 0;
	if (c->rcu)
		reg_thread_online();
	atomic_fetch_add(&c->ready, 1);
	while (atomic_load(&c->ready) < 3)
		;
	uint64_t t0 = now_ns();
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		for (int k = 0; k < 64; k++) {
			const char *nm = c->names[rnd(&s) % c->size];
			if (c->rcu) {
				struct reg_node *n = reg_get_name(c->r, nm);
				if (n) {
					sink += n->id;
					reg_put(n);
				}
			} else {
				struct mnode *n = mreg_get_name(c->m, nm);
				if (n) {
					sink += n->id;
					mreg_put(n);
				}
			}
		}
		ops += 64;
	}
	rr->ns = now_ns() - t0;
	rr->ops = ops;
	if (c->rcu)
		reg_thread_offline();
	return NULL;
}

static void robj_free(struct reg_node *n)
{
	atomic_fetch_add(&released, 1);
	free(caa_container_of(n, struct robj, node));
}
static void mobj_free(struct mnode *n)
{
	atomic_fetch_add(&released, 1);
	free((struct mobj *)n);
}

/* The writer keeps `nchurn` extra objects live: each step removes the
 * oldest and adds a new one (fresh allocation; the removed object is freed
 * after its grace period by the registry's call_rcu, or at once under the
 * mutex), as create/rmdir do in the daemon. */
static void *writer(void *arg)
{
	struct conc *c = arg;
	uint64_t ops = 0;
	if (c->rcu)
		reg_thread_online();
	atomic_fetch_add(&c->ready, 1);
	while (atomic_load(&c->ready) < 3)
		;
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		size_t i = ops % c->nchurn;
		char nm[REG_NAME_MAX];
		snprintf(nm, sizeof nm, "churn-%" PRIu64, ops);
		if (c->rcu) {
			if (c->churn_r[i]) {
				reg_del(c->r, &c->churn_r[i]->node);
				reg_put(&c->churn_r[i]->node);
			}
			struct robj *o = malloc(sizeof(*o));
			reg_node_init(&o->node, 1000000000ull + ops, nm, robj_free);
			reg_add(c->r, &o->node);
			c->churn_r[i] = o;
		} else {
			if (c->churn_m[i]) {
				mreg_del(c->m, &c->churn_m[i]->node);
				mreg_put(&c->churn_m[i]->node);
			}
			struct mobj *o = malloc(sizeof(*o));
			mreg_node_init(&o->node, 1000000000ull + ops, nm, mobj_free);
			mreg_add(c->m, &o->node);
			c->churn_m[i] = o;
		}
		ops++;
	}
	if (c->rcu)
		reg_thread_offline();
	return (void *)(uintptr_t)ops;
}

static void run_concurrent(int rcu, struct reg *r, struct mreg *m, size_t size,
			   char (*names)[REG_NAME_MAX], double seconds)
{
	struct conc c = {.rcu = rcu, .r = r, .m = m, .size = size, .names = names, .nchurn = 16};
	c.churn_r = calloc(c.nchurn, sizeof(*c.churn_r));
	c.churn_m = calloc(c.nchurn, sizeof(*c.churn_m));
	pthread_t rt[2], wt;
	struct reader_res rr[2] = {{.c = &c, .seed = 1}, {.c = &c, .seed = 2}};
	for (int i = 0; i < 2; i++)
		pthread_create(&rt[i], NULL, reader, &rr[i]);
	pthread_create(&wt, NULL, writer, &c);
	struct timespec ts = {.tv_sec = (time_t)seconds,
			      .tv_nsec = (long)((seconds - (time_t)seconds) * 1e9)};
	nanosleep(&ts, NULL);
	atomic_store(&c.stop, 1);
	void *wops;
	for (int i = 0; i < 2; i++)
		pthread_join(rt[i], NULL);
	pthread_join(wt, &wops);
	uint64_t ops = rr[0].ops + rr[1].ops, ns = rr[0].ns + rr[1].ns;
	const char *impl = rcu ? "rcu" : "mutex";
	emit(impl, "lookup_name_2readers_1writer", size, 3, ops ? (double)ns / (double)ops : 0, ops);
	uint64_t w = (uint64_t)(uintptr_t)wops;
	double secs = (double)(rr[0].ns > rr[1].ns ? rr[0].ns : rr[1].ns);
	emit(impl, "writer_churn_add_del", size, 3, w ? secs / (double)w : 0, w);
	for (size_t i = 0; i < c.nchurn; i++) {
		if (c.churn_r[i]) {
			reg_del(r, &c.churn_r[i]->node);
			reg_put(&c.churn_r[i]->node);
		}
		if (c.churn_m[i]) {
			mreg_del(m, &c.churn_m[i]->node);
			mreg_put(&c.churn_m[i]->node);
		}
	}
	if (rcu)
		urcu_memb_barrier();
	free(c.churn_r);
	free(c.churn_m);
}

/* ------------------------------------------------------------------ */

static void bench_size(size_t size, uint64_t iters, double seconds)
{
	char (*names)[REG_NAME_MAX] = calloc(size, REG_NAME_MAX);
	uint64_t *order = calloc(iters, sizeof(uint64_t));
	struct robj *ro = calloc(size, sizeof(*ro)), *extra_r = calloc(size, sizeof(*extra_r));
	struct mobj *mo = calloc(size, sizeof(*mo)), *extra_m = calloc(size, sizeof(*extra_m));
	uint64_t s = 0x2545f4914f6cdd1dull ^ size;
	for (size_t i = 0; i < size; i++)
		snprintf(names[i], REG_NAME_MAX, "sandbox-%zu", i);
	for (uint64_t i = 0; i < iters; i++)
		order[i] = rnd(&s) % size;

	struct reg *r = reg_new();
	struct mreg *m = mreg_new();
	reg_thread_online();
	for (size_t i = 0; i < size; i++) {
		reg_node_init(&ro[i].node, i + 1, names[i], robj_release);
		reg_add(r, &ro[i].node);
		mreg_node_init(&mo[i].node, i + 1, names[i], mobj_release);
		mreg_add(m, &mo[i].node);
	}

	for (int rcu = 1; rcu >= 0; rcu--) {
		const char *impl = rcu ? "rcu" : "mutex";
		uint64_t t0;
		/* warm-up pass (discarded): touch every node once */
		for (size_t i = 0; i < size; i++) {
			if (rcu) {
				struct reg_node *n = reg_get_name(r, names[i]);
				reg_put(n);
			} else {
				struct mnode *n = mreg_get_name(m, names[i]);
				mreg_put(n);
			}
		}

		/* lookup by name: lock, find, pin, unpin (what every FUSE lookup does) */
		t0 = now_ns();
		for (uint64_t k = 0; k < iters; k++) {
			if (rcu) {
				struct reg_node *n = reg_get_name(r, names[order[k]]);
				sink += n->id;
				reg_put(n);
			} else {
				struct mnode *n = mreg_get_name(m, names[order[k]]);
				sink += n->id;
				mreg_put(n);
			}
		}
		emit(impl, "get_name", size, 1, (double)(now_ns() - t0) / iters, iters);

		t0 = now_ns();
		for (uint64_t k = 0; k < iters; k++) {
			if (rcu) {
				struct reg_node *n = reg_get_id(r, order[k] + 1);
				sink += n->id;
				reg_put(n);
			} else {
				struct mnode *n = mreg_get_id(m, order[k] + 1);
				sink += n->id;
				mreg_put(n);
			}
		}
		emit(impl, "get_id", size, 1, (double)(now_ns() - t0) / iters, iters);

		/* bare find under the read-side lock, no pin */
		t0 = now_ns();
		for (uint64_t k = 0; k < iters; k++) {
			if (rcu) {
				urcu_memb_read_lock();
				sink += reg_find_name(r, names[order[k]])->id;
				urcu_memb_read_unlock();
			} else {
				pthread_mutex_lock(&m->lock);
				sink += mreg_find_name_locked(m, names[order[k]])->id;
				pthread_mutex_unlock(&m->lock);
			}
		}
		emit(impl, "find_name", size, 1, (double)(now_ns() - t0) / iters, iters);

		/* insert `size` more, then remove them (table doubles and shrinks back) */
		char nm[REG_NAME_MAX];
		t0 = now_ns();
		for (size_t i = 0; i < size; i++) {
			snprintf(nm, sizeof nm, "extra-%zu", i);
			if (rcu) {
				reg_node_init(&extra_r[i].node, size + i + 1, nm, robj_release);
				reg_add(r, &extra_r[i].node);
			} else {
				mreg_node_init(&extra_m[i].node, size + i + 1, nm, mobj_release);
				mreg_add(m, &extra_m[i].node);
			}
		}
		emit(impl, "insert", size, 1, (double)(now_ns() - t0) / size, size);
		t0 = now_ns();
		for (size_t i = 0; i < size; i++) {
			if (rcu)
				reg_del(r, &extra_r[i].node);
			else
				mreg_del(m, &extra_m[i].node);
		}
		emit(impl, "remove", size, 1, (double)(now_ns() - t0) / size, size);
		if (rcu)
			urcu_memb_barrier(); /* table references dropped after the grace period */
		for (size_t i = 0; i < size; i++) {
			if (rcu)
				reg_put(&extra_r[i].node);
			else
				mreg_put(&extra_m[i].node);
		}

		/* full iteration, reported per node visited */
		uint64_t passes = iters / size;
		if (passes < 3)
			passes = 3;
		long acc = 0;
		t0 = now_ns();
		for (uint64_t p = 0; p < passes; p++) {
			if (rcu)
				reg_foreach(r, count_r, &acc);
			else
				mreg_foreach(m, count_m, &acc);
		}
		sink += (uint64_t)acc;
		emit(impl, "foreach_per_node", size, 1, (double)(now_ns() - t0) / (passes * size),
		     passes * size);

		run_concurrent(rcu, r, m, size, names, seconds);
	}

	for (size_t i = 0; i < size; i++) {
		reg_del(r, &ro[i].node);
		mreg_del(m, &mo[i].node);
	}
	urcu_memb_barrier();
	for (size_t i = 0; i < size; i++) {
		reg_put(&ro[i].node);
		mreg_put(&mo[i].node);
	}
	reg_free(r);
	mreg_free(m);
	free(names);
	free(order);
	free(ro);
	free(mo);
	free(extra_r);
	free(extra_m);
}

int main(int argc, char **argv)
{
	const char *sizes = "100,1000,10000";
	uint64_t iters = 1000000;
	double seconds = 1.0;
	int opt;
	while ((opt = getopt(argc, argv, "s:i:d:")) != -1) {
		switch (opt) {
		case 's': sizes = optarg; break;
		case 'i': iters = strtoull(optarg, NULL, 10); break;
		case 'd': seconds = strtod(optarg, NULL); break;
		default:
			fprintf(stderr, "usage: %s [-s SIZES] [-i ITERS] [-d SECONDS]\n", argv[0]);
			return 2;
		}
	}
	if (iters == 0)
		iters = 1;
	printf("impl\top\tsize\tthreads\tns_per_op\tops\n");
	char *copy = strdup(sizes), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t n = strtoull(tok, NULL, 10);
		if (n)
			bench_size(n, iters, seconds);
	}
	free(copy);
	reg_thread_offline();
	return 0;
}
