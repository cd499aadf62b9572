/* /sbx/metrics: the engine's numbers in the Prometheus text exposition
 * format (counts by state and backend, latency histograms from 100 us to
 * 10 s, registry size, errors by errno), ready for a file-based exporter. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sandbox.h"
#include "stats.h"

static const uint64_t bucket_usec[] = {100,    250,    500,     1000,    2500,    5000,
				       10000,  25000,  50000,   100000,  250000,  500000,
				       1000000, 2500000, 5000000, 10000000};
#define NBUCKETS ARRAY_SIZE(bucket_usec)

struct hist {
	_Atomic uint64_t le[NBUCKETS + 1]; /* per bucket (not cumulative); last is +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_usec;
};
static const char *hist_names[LAT_N] = {"create", "stop", "exec", "fork"};

#define MAX_ERRNO 134

/* The part's state in the engine (eng->metrics, made by metrics_init). */
struct metrics {
	struct hist hists[LAT_N];
	_Atomic uint64_t errors[MAX_ERRNO + 1];
	_Atomic uint64_t fops[FOP_N];
};
static const char *fop_names[FOP_N] = {"lookup",  "getattr", "setattr",    "open",
				       "read",    "write",   "release",    "opendir",
				       "readdir", "releasedir", "poll",  "other"};

int metrics_init(struct engine *eng)
{
	eng->metrics = calloc(1, sizeof(*eng->metrics));
	return eng->metrics ? 0 : -ENOMEM;
}

void hist_observe(struct engine *eng, enum lat_kind k, uint64_t usec)
{
	struct hist *hists = eng->metrics->hists;
	size_t i = 0;
	while (i < NBUCKETS && usec > bucket_usec[i])
		i++;
	atomic_fetch_add(&hists[k].le[i], 1);
	atomic_fetch_add(&hists[k].count, 1);
	atomic_fetch_add(&hists[k].sum_usec, usec);
}

void engine_count_error(struct engine *eng, int err)
{
	if (err < 0)
		err = -err;
	if (err > 0 && err <= MAX_ERRNO)
		atomic_fetch_add(&eng->metrics->errors[err], 1);
}

void engine_count_fop(struct engine *eng, enum engine_fop op)
{
	atomic_fetch_add_explicit(&eng->metrics->fops[op], 1, memory_order_relaxed);
}

#define METRIC_BACKENDS 8
struct by_state {
	uint64_t n[SBX_NSTATES][METRIC_BACKENDS]; /* [state][backend's place in vmm_all()] */
};

static size_t backend_index(const struct vmm_ops *ops)
{
	size_t i = 0;
	for (const struct vmm_ops *const *b = vmm_all(); *b && *b != ops; b++)
		i++;
	return i < METRIC_BACKENDS ? i : METRIC_BACKENDS - 1;
}

static int count_one(struct reg_node *n, void *arg)
{
	struct by_state *c = arg;
	struct sbx *s = caa_container_of(n, struct sbx, node);
	int st = atomic_load(&s->state);
	c->n[st == SBX_STOPPING ? SBX_RUNNING : st][backend_index(s->ops)]++;
	return 0;
}

struct oom_lines {
	struct buf *b;
	int r;
};

/* The OOM kills its events last showed (the monitor's count, moved when its
 * cgroup's moves): for each sandbox, a number since its last start. */
static int oom_line(struct reg_node *n, void *arg)
{
	struct oom_lines *l = arg;
	struct sbx *s = caa_container_of(n, struct sbx, node);
	pthread_mutex_lock(&s->lock);
	uint64_t kills = s->oom_seen;
	pthread_mutex_unlock(&s->lock);
	l->r |= buf_printf(l->b, "sandboxfs_oom_kills_total{sandbox=\"%s\"} %" PRIu64 "\n",
			   n->name, kills);
	return 0;
}

static int show_hist(struct engine *eng, struct buf *b, enum lat_kind k)
{
	struct hist *hists = eng->metrics->hists;
	const char *n = hist_names[k];
	int r = buf_printf(b, "# HELP sandboxfs_%s_seconds Latency of %s, from request to done.\n"
			   "# TYPE sandboxfs_%s_seconds histogram\n", n, n, n);
	uint64_t cum = 0;
	for (size_t i = 0; i <= NBUCKETS; i++) {
		cum += atomic_load(&hists[k].le[i]);
		if (i < NBUCKETS)
			r |= buf_printf(b, "sandboxfs_%s_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", n,
					bucket_usec[i] / 1e6, cum);
		else
			r |= buf_printf(b, "sandboxfs_%s_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", n,
					cum);
	}
	r |= buf_printf(b, "sandboxfs_%s_seconds_sum %.6f\nsandboxfs_%s_seconds_count %" PRIu64 "\n",
			n, atomic_load(&hists[k].sum_usec) / 1e6, n, atomic_load(&hists[k].count));
	return r;
}

int engine_show_metrics(struct engine *eng, struct buf *b)
{
	struct by_state c;
	memset(&c, 0, sizeof(c));
	reg_foreach(eng->reg, count_one, &c);
	int r = buf_printf(b, "# HELP sandboxfs_sandboxes Sandboxes by state and backend.\n"
			   "# TYPE sandboxfs_sandboxes gauge\n");
	for (int st = 0; st < SBX_STOPPING; st++)
		for (const struct vmm_ops *const *o = vmm_all(); *o; o++)
			r |= buf_printf(b, "sandboxfs_sandboxes{state=\"%s\",backend=\"%s\"} %" PRIu64 "\n",
					sbx_state_name(st), (*o)->name, c.n[st][backend_index(*o)]);
	r |= buf_printf(b, "# HELP sandboxfs_registry_entries Entries in the registry.\n"
			"# TYPE sandboxfs_registry_entries gauge\nsandboxfs_registry_entries %lu\n",
			reg_count(eng->reg));
	for (int k = 0; k < LAT_N; k++)
		r |= show_hist(eng, b, (enum lat_kind)k);
	struct oom_lines l = {.b = b};
	r |= buf_printf(b, "# HELP sandboxfs_oom_kills_total OOM kills inside each sandbox since it "
			"last started.\n# TYPE sandboxfs_oom_kills_total counter\n");
	reg_foreach(eng->reg, oom_line, &l);
	r |= l.r;
	r |= buf_printf(b, "# HELP sandboxfs_errors_total Errors returned to users, by errno.\n"
			"# TYPE sandboxfs_errors_total counter\n");
	for (int e = 1; e <= MAX_ERRNO; e++) {
		uint64_t v = atomic_load(&eng->metrics->errors[e]);
		if (v)
			r |= buf_printf(b, "sandboxfs_errors_total{errno=\"%s\"} %" PRIu64 "\n",
					strerrorname_np(e) ? strerrorname_np(e) : "unknown", v);
	}
	r |= buf_printf(b, "# HELP sandboxfs_file_requests_total Requests the kernel sent the file "
			"interface, by kind.\n# TYPE sandboxfs_file_requests_total counter\n");
	for (int op = 0; op < FOP_N; op++)
		r |= buf_printf(b, "sandboxfs_file_requests_total{op=\"%s\"} %" PRIu64 "\n",
				fop_names[op], atomic_load(&eng->metrics->fops[op]));
	return r ? -ENOMEM : 0;
}
