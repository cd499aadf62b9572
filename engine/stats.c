/* Timing and counters: latency samples of create and stop (a bounded ring
 * of the most recent), and the content of the stats/status/events files. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "disk.h"
#include "journal.h"
#include "sandbox.h"
#include "stats.h"
#include "warm.h"

#define LAT_RING 4096

struct lat {
	pthread_mutex_t lock;
	uint64_t ring[LAT_RING];
	uint64_t total; /* samples ever */
};
/* The part's state in the engine (eng->stats, made by stats_init). */
struct stats {
	struct lat lats[LAT_N];
	_Atomic uint64_t creates_ok, creates_failed;
	_Atomic uint64_t execs_warm, jobs_warm;
	/* show_lat's copy of a ring, sorted */
	pthread_mutex_t tmp_lock;
	uint64_t tmp[LAT_N][LAT_RING];
};

int stats_init(struct engine *eng)
{
	struct stats *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (int k = 0; k < LAT_N; k++)
		pthread_mutex_init(&st->lats[k].lock, NULL);
	pthread_mutex_init(&st->tmp_lock, NULL);
	eng->stats = st;
	return 0;
}

void lat_add(struct engine *eng, enum lat_kind k, uint64_t usec)
{
	struct lat *l = &eng->stats->lats[k];
	pthread_mutex_lock(&l->lock);
	l->ring[l->total % LAT_RING] = usec;
	l->total++;
	pthread_mutex_unlock(&l->lock);
	hist_observe(eng, k, usec);
}

void stats_count_create(struct engine *eng, bool ok)
{
	atomic_fetch_add(ok ? &eng->stats->creates_ok : &eng->stats->creates_failed, 1);
}

void stats_count_warm(struct engine *eng, bool job)
{
	atomic_fetch_add(job ? &eng->stats->jobs_warm : &eng->stats->execs_warm, 1);
}

/* Nearest-rank percentile of a sorted array. */
uint64_t lat_percentile(uint64_t *sorted, size_t n, unsigned pct)
{
	if (n == 0)
		return 0;
	size_t rank = (pct * n + 99) / 100;
	if (rank == 0)
		rank = 1;
	return sorted[(rank > n ? n : rank) - 1];
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int show_lat(struct engine *eng, struct buf *b, enum lat_kind k, const char *name)
{
	uint64_t (*tmp)[LAT_RING] = eng->stats->tmp;
	struct lat *l = &eng->stats->lats[k];
	pthread_mutex_lock(&eng->stats->tmp_lock);
	pthread_mutex_lock(&l->lock);
	size_t n = l->total < LAT_RING ? l->total : LAT_RING;
	uint64_t total = l->total;
	memcpy(tmp[k], l->ring, n * sizeof(uint64_t));
	pthread_mutex_unlock(&l->lock);
	qsort(tmp[k], n, sizeof(uint64_t), cmp_u64);
	int r = buf_printf(b,
			   "%s_total %" PRIu64 "\n%s_p50_usec %" PRIu64 "\n%s_p95_usec %" PRIu64
			   "\n%s_p99_usec %" PRIu64 "\n%s_max_usec %" PRIu64 "\n",
			   name, total, name, lat_percentile(tmp[k], n, 50), name,
			   lat_percentile(tmp[k], n, 95), name, lat_percentile(tmp[k], n, 99), name,
			   n ? tmp[k][n - 1] : 0);
	pthread_mutex_unlock(&eng->stats->tmp_lock);
	return r;
}

static int count_state(struct reg_node *n, void *arg)
{
	uint64_t *counts = arg;
	struct sbx *s = caa_container_of(n, struct sbx, node);
	int st = atomic_load(&s->state);
	counts[st == SBX_STOPPING ? SBX_RUNNING : st]++;
	return 0;
}

int engine_show_stats(struct engine *eng, struct buf *b)
{
	uint64_t counts[SBX_NSTATES] = {0};
	reg_foreach(eng->reg, count_state, counts);
	uint64_t total = 0;
	for (int i = 0; i < SBX_NSTATES; i++)
		total += counts[i];
	int r = buf_printf(b, "sandboxes %" PRIu64 "\n", total);
	for (int i = 0; i < SBX_STOPPING; i++)
		r |= buf_printf(b, "%s %" PRIu64 "\n", sbx_state_name(i), counts[i]);
	r |= buf_printf(b, "backend_default %s\ncgroup_version %d\n", eng->o.backend, cg_version());
	r |= buf_printf(b, "creates_ok_total %" PRIu64 "\ncreates_failed_total %" PRIu64 "\n",
			atomic_load(&eng->stats->creates_ok), atomic_load(&eng->stats->creates_failed));
	r |= buf_printf(b, "exec_warm_total %" PRIu64 "\njob_warm_total %" PRIu64 "\n",
			atomic_load(&eng->stats->execs_warm), atomic_load(&eng->stats->jobs_warm));
	/* State trees renamed into STATE/trash and not removed yet (rmdir returned). */
	r |= buf_printf(b, "removing %" PRIu64 "\n", vmm_trash_pending());
	if (eng->o.dns[0]) {
		uint64_t q, a, d;
		net_dns_counts(&q, &a, &d);
		r |= buf_printf(b, "dns_queries %" PRIu64 "\ndns_answers %" PRIu64 "\ndns_dropped %"
				PRIu64 "\ndns_learned %" PRIu64 "\n", q, a, d, engine_dns_learned(eng));
	}
	for (const struct vmm_ops *const *o = vmm_all(); *o; o++)
		if ((*o)->describe)
			r |= (*o)->describe(b);
	r |= warm_show_stats(eng, b);
	r |= show_lat(eng, b, LAT_CREATE, "create");
	r |= show_lat(eng, b, LAT_STOP, "stop");
	return r ? -ENOMEM : 0;
}

int sbx_show_status(struct sbx *s, struct buf *b)
{
	return buf_printf(b, "%s\n", sbx_state_name(atomic_load(&s->state)));
}

int sbx_show_stats(struct sbx *s, struct buf *b)
{
	struct vmm_usage u = {0};
	pthread_mutex_lock(&s->lock);
	int st = atomic_load(&s->state);
	if (st == SBX_RUNNING || st == SBX_PAUSED || st == SBX_STOPPING)
		s->ops->usage(&s->vm, &u);
	const struct sbx_times *t = &s->t;
	int r = buf_printf(b, "state %s\npid %d\nparent %s\nbackend %s\n", sbx_state_name(st),
			   (int)s->vm.pid, s->cfg.parent[0] ? s->cfg.parent : "-", s->cfg.backend);
	const struct buf_row rows[] = {
		{"starts", t->starts},
		{"create_usec", t->create_usec},
		{"create_queue_usec", t->create_queue_usec},
		{"create_cgroup_usec", t->create_cgroup_usec},
		{"create_spawn_usec", t->create_spawn_usec},
		{"create_rootfs_usec", t->create_rootfs_usec},
		{"create_init_usec", t->create_init_usec},
		{"create_journal_usec", t->create_journal_usec},
		{"stop_usec", t->stop_usec},
		{"cpu_usec", u.cpu_usec},
		{"memory_bytes", u.memory_bytes},
		{"memory_peak_bytes", u.memory_peak_bytes},
		{"memory_limit_bytes", s->cfg.memory_bytes},
		{"pids_current", u.pids},
		{"pids_limit", s->cfg.pids},
		{"oom_kills", u.oom_kills},
		{"create_net_usec", t->create_net_usec},
		{"net_shaping_usec", t->net_shaping_usec},
		{"exec_warm_total", s->execs_warm},
		{"job_warm_total", s->jobs_warm},
	};
	r |= buf_rows(b, rows, ARRAY_SIZE(rows));
	/* guest: its guest keeps its own (qemu's agent), the daemon holds none. */
	r |= buf_printf(b, "warm_shell %s\ncreate_mode %s\n",
			!s->ops->exec_warm ? "guest" : s->warm_fds[1] >= 0 ? "ready" : "none",
			t->claim_usec ? "pool" : "cold");
	const struct buf_row claim[] = {
		{"claim_usec", t->claim_usec},
		{"claim_journal_usec", t->claim_journal_usec},
	};
	r |= buf_rows(b, claim, ARRAY_SIZE(claim));
	if (s->cfg.parent[0])
		r |= buf_printf(b, "fork_mode %s\nfork_generation %u\nfork_freeze_usec %" PRIu64
				"\nfork_checkpoint_usec %" PRIu64 "\nfork_restore_usec %" PRIu64
				"\nfork_usec %" PRIu64 "\n",
				s->ops->fork_mode ? s->ops->fork_mode : "fs", s->cfg.fork_generation,
				t->fork_freeze_usec, t->fork_checkpoint_usec, t->fork_restore_usec,
				t->fork_usec);
	if (s->cfg.parent[0] && t->vt.fork_start)
		r |= buf_printf(b, "fork_start %s\n", t->vt.fork_start);
	if (s->ops->show && (st == SBX_RUNNING || st == SBX_PAUSED))
		r |= s->ops->show(&s->vm, b);
	if (t->restore_usec || t->standby_usec)
		r |= buf_printf(b, "standby_usec %" PRIu64 "\nrestore_usec %" PRIu64 "\n",
				t->standby_usec, t->restore_usec);
	for (int i = 0; i < t->vt.nextra && r == 0; i++)
		r = buf_printf(b, "create_%s_usec %" PRIu64 "\n", t->vt.extra[i].key,
			       t->vt.extra[i].usec);
	if (r == 0)
		r = sbx_disk_show(s, b);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sbx_show_config(struct sbx *s, struct buf *b)
{
	pthread_mutex_lock(&s->lock);
	int r = sbx_config_json(s, b);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sbx_show_events(struct sbx *s, struct buf *b)
{
	uint64_t oom_kills = 0;
	pthread_mutex_lock(&s->lock);
	int st = atomic_load(&s->state);
	/* The one counter it shows: one file read, not the five of usage. */
	if (st == SBX_RUNNING || st == SBX_PAUSED || st == SBX_STOPPING)
		cg_oom_kills(&s->vm.cg, &oom_kills);
	int r = buf_printf(b, "state %s\nreason %s\nexit_code %d\noom_kills %" PRIu64
			   "\ngeneration %" PRIu64 "\ndisk_full %d\n",
			   sbx_state_name(st), s->reason, s->exit_code, oom_kills,
			   atomic_load(&s->generation), s->disk_full);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sbx_show_error(struct sbx *s, struct buf *b)
{
	pthread_mutex_lock(&s->lock);
	int r = s->error[0] ? buf_printf(b, "%s\n", s->error) : 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}

#define LOG_SHOW_MAX (64 * 1024)

/* The last 64 KiB of the console, starting at a line boundary. */
int sbx_show_log(struct sbx *s, struct buf *b)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/console.log", s->vm.dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	struct stat st;
	off_t off = 0;
	if (fstat(fd, &st) == 0 && st.st_size > LOG_SHOW_MAX)
		off = st.st_size - LOG_SHOW_MAX;
	char chunk[8192];
	ssize_t n;
	bool skip_partial = off > 0;
	while ((n = pread(fd, chunk, sizeof(chunk), off)) > 0) {
		off += n;
		char *p = chunk;
		if (skip_partial) {
			char *nl = memchr(chunk, '\n', (size_t)n);
			if (!nl)
				continue;
			skip_partial = false;
			n -= nl + 1 - chunk;
			p = nl + 1;
		}
		if (buf_append(b, p, (size_t)n) < 0)
			break;
	}
	close(fd);
	return 0;
}
