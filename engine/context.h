/* The engine's context object: what was a global and file-level state of
 * engine.c and sandbox.c, made by engine_new and handed to the FUSE layer
 * (its session's userdata holds it), which passes it to every entry point
 * that has no sandbox; a sandbox reaches its engine through s->eng. */
#ifndef SBX_CONTEXT_H
#define SBX_CONTEXT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <urcu/list.h>

#include "common.h"
#include "engine.h"

#define ENGINE_ERR_RING 64

struct images;
struct layer;
struct out_watch;
struct pol;
struct metrics;
struct pool_job;
struct sbx;
struct sbx_config;
struct stats;

struct engine {
	struct engine_opts o;
	struct reg *reg;
	_Atomic uint64_t next_id;
	char sandboxes_dir[PATH_MAX];
	/* Bumped when a sandbox appears or goes (the top level's events). */
	_Atomic uint64_t generation;
	/* The FUSE layer's change callbacks (engine_set_watch, engine_set_job_watch,
	 * engine_set_files_watch). */
	void (*watch_fn)(uint64_t id, bool gone);
	void (*job_watch_fn)(uint64_t id, uint32_t n);
	void (*files_watch_fn)(uint64_t id);
	/* The ring of recent failures shown in /sbx/error. */
	struct {
		pthread_mutex_t lock;
		char lines[ENGINE_ERR_RING][SBX_ERRMSG_MAX + 64];
		uint64_t total;
	} errs;
	/* The worker pool (pool.c): queued jobs and the threads that run them. */
	struct {
		pthread_mutex_t lock;
		pthread_cond_t cond;
		struct pool_job *head, *tail;
		bool quit;
		pthread_t *threads;
		int nthreads;
	} pool;
	/* The journal's group commit (journal.c): one syncfs for a burst of writes. */
	struct {
		pthread_mutex_t lock;
		pthread_cond_t cond;
		bool dirty, quit;
		pthread_t thread;
		int fd; /* STATE/sandboxes, for syncfs */
		struct sbx *later; /* journal_write_later's, linked by journal_next */
	} commit;
	/* Hooks of lifecycle.c into the parts above it. Set by warm_init (NULL:
	 * no pools): a create's claim of a ready member (-ENOENT: none), and a
	 * member's init that ended while it waited (s->lock held). */
	struct {
		int (*claim)(struct engine *eng, const char *name, const struct sbx_config *c,
			     struct sbx **out, struct err *e);
		void (*member_ended)(struct sbx *s);
		/* snap.c's, set by snap_attach (engine_new, never NULL): `fork`
		 * written to a sandbox's ctl, and its named snapshots dropped when
		 * it goes (s->lock held). */
		int (*fork)(struct sbx *src, int argc, char **argv, struct err *e);
		void (*drop_snaps)(struct sbx *s);
	} lifecycle;
	/* Warm pools (warm.c, warm_init): the list of pools (RCU; writers hold
	 * lock), fills under way for all of them, STATE/pools. */
	struct {
		struct cds_list_head pools;
		pthread_mutex_t lock;
		_Atomic uint32_t next_id;
		_Atomic int fills_active;
		_Atomic bool quitting;
		_Atomic uint64_t last_claim_usec; /* monotonic; fills wait for a quiet moment */
		uint32_t run; /* random, in members' names: see warm_init */
		char dir[PATH_MAX];
	} warm;
	/* The monitor thread (lifecycle.c): its epoll set of sandboxes' fds, the
	 * eventfd that wakes it, the sandboxes whose last put it owes. */
	struct {
		int epfd, wake_fd;
		pthread_t thread;
		_Atomic bool quit;
		atomic_int oom_rechecks;
		pthread_mutex_t puts_lock;
		struct sbx **puts;
		size_t nputs, puts_cap;
	} monitor;
	/* Jobs' output watches (jobs.c): the inotify fd the monitor reads, and
	 * the table that maps a watch back to its job. */
	struct {
		int watch_fd;
		pthread_mutex_t lock;
		struct out_watch *watches;
		size_t n, cap;
	} jobs;
	/* Networking (netcfg.c): what runs (the bridge, the DNS forwarder, the
	 * nft table of exposed ports) and each sandbox's policy, under pol_lock. */
	struct {
		bool up, dns_up, expose_up;
		char expose_table[32];
		pthread_mutex_t pol_lock;
		struct pol *pols;
		uint64_t learned_total; /* map entries of learned addresses, all sandboxes */
	} net;
	/* The layers in use (layers.c): each with the count of its users. */
	struct {
		pthread_mutex_t lock;
		struct layer *list;
		_Atomic uint64_t seq; /* names of new layers (snap.c's) */
	} layers;
	/* Latency samples and counters (stats.c, stats_init), their histograms
	 * and the errors returned by errno (metrics.c, metrics_init). */
	struct stats *stats;
	struct metrics *metrics;
	/* Images (images.c, images_init): the list, imports and layers at work. */
	struct images *images;
};

#endif
