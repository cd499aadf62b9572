/* The sandbox object and the engine's internal interfaces between its files
 * (lifecycle, journal, stats, exec, worker pool). */
#ifndef SBX_SBX_H
#define SBX_SBX_H

#include <pthread.h>
#include <jansson.h>
#include <stdatomic.h>

#include "../net/net.h"
#include "../vmm/vmm.h"
#include "ctl.h"
#include "engine.h"
#include "images.h"
#include "registry.h"

enum sbx_state {
	SBX_CREATING,
	SBX_RUNNING,
	SBX_PAUSED,
	SBX_STANDBY,
	SBX_STOPPED,
	SBX_FAILED,
	SBX_STOPPING, /* shown as running: it runs until init is gone */
	SBX_NSTATES
};

/* The state machine (state.c): what changes a sandbox's state, each event a
 * row of sbx_transitions (the states it may come from, the one it goes to). */
enum sbx_event {
	SBX_EV_STARTED,        /* creating -> running */
	SBX_EV_START_FAILED,   /* creating -> failed */
	SBX_EV_START,          /* at rest -> creating */
	SBX_EV_PAUSE,          /* running -> paused */
	SBX_EV_RESUME,         /* paused -> running */
	SBX_EV_STOP,           /* running, paused -> stopping */
	SBX_EV_STANDBY,        /* running, paused -> stopping */
	SBX_EV_STANDBY_FAILED, /* stopping -> running, paused: as before */
	SBX_EV_EXITED,         /* running, paused, stopping -> stopped */
	SBX_EV_CRASHED,        /* running, paused -> failed */
	SBX_EV_SAVED,          /* stopping -> standby */
	SBX_EV_READOPTED,      /* restart: stopping -> running */
	SBX_EV_CUT_OFF,        /* restart: creating -> failed */
	SBX_EV_LOST,           /* restart: running, paused, stopping -> stopped */
	SBX_NEVENTS
};

struct sbx_transition {
	enum sbx_event ev;
	unsigned from; /* a set of states, bit (1 << state) */
	enum sbx_state to;
};
extern const struct sbx_transition sbx_transitions[];
extern const size_t sbx_ntransitions;
/* Abort on a change the table lacks (sanitizer builds), else refuse it. */
extern bool sbx_state_strict;

struct sbx_times {
	uint64_t request_usec; /* monotonic time of the create/start request */
	uint64_t create_usec, create_queue_usec, create_rootfs_usec, create_cgroup_usec;
	uint64_t create_spawn_usec, create_init_usec, create_journal_usec;
	uint64_t stop_request_usec, stop_usec;
	uint64_t started_wall_usec;
	uint64_t starts;
	uint64_t fork_freeze_usec, fork_checkpoint_usec, fork_queued_usec;
	uint64_t fork_restore_usec, fork_usec;
	uint64_t create_net_usec, net_shaping_usec;
	uint64_t restore_usec; /* the last start that restored a saved machine */
	uint64_t standby_usec; /* the last standby: stop to saved and ended */
	uint64_t claim_usec;   /* taken from a warm pool: the claim (0: made cold) */
	uint64_t claim_journal_usec;
	struct vmm_timing vt; /* the last start's backend phases, extras included */
};

struct sbx {
	struct reg_node node; /* name, id, refcount, registry links */
	pthread_mutex_t lock; /* serialises transitions; never held across a registry read */
	pthread_cond_t cond;  /* broadcast on every state change */
	_Atomic int state;
	struct sbx_config cfg;
	struct sbx_times t;
	const struct vmm_ops *ops;
	struct vmm_inst vm;
	char error[SBX_ERRMSG_MAX];
	char reason[16]; /* why it last stopped: user timeout oom exit host */
	int exit_code;   /* of init, -1 unknown */
	_Atomic uint64_t generation;
	uint64_t deadline_usec; /* monotonic; 0 none (timeout=) */
	bool removing;
	bool flattening; /* a background flatten of cfg.lowers is queued */
	bool monitored;
	bool stop_busy;    /* a stopper is inside ops->stop */
	bool exit_pending; /* init exited meanwhile; the stopper settles it */
	uint64_t next_exec_id;
	/* A hint for the monitor: the earliest timeout= of a running exec or
	 * job (monotonic; 0 none); sbx_cmds_expire looks under the lock. */
	uint64_t cmd_deadline_usec;
	struct sbx_exec *execs; /* open exec sessions, under lock */
	struct sbx_snap *snaps; /* named checkpoints, under lock */
	struct sbx_job *jobs;   /* background jobs, under lock */
	struct net_ident net;   /* when net_reserved */
	bool net_reserved;
	const char *rate_state; /* - pending applied failed */
	uint32_t next_job;
	uint32_t next_snap_seq;
	bool disk_full; /* its disk= was found full (disk.c); shown in events */
	/* While monitored: the OOM killer's events in its cgroup (cg_oom_watch). */
	int oom_fd;
	bool oom_pri;
	/* The oom_kills count its pollers were last woken for; until when a
	 * notification that came before the count moved is looked at again
	 * (0: none; read unlocked by the monitor as a hint). */
	uint64_t oom_seen;
	_Atomic uint64_t oom_recheck_until;
	/* A warm pool's member (not in the registry) until a create claims it. */
	struct warm_pool *pool;
};

/* A named checkpoint: an immutable layer plus the chain it stacks on. */
struct sbx_snap {
	char name[SBX_NAME_MAX + 1];
	uint32_t seq; /* stable per sandbox, for inode numbers */
	char lowers[SBX_LOWERS_MAX][SBX_LAYER_ID_MAX]; /* [0] is its own layer */
	int nlowers;
	uint64_t created_wall_usec;
	struct sbx_snap *next;
};

struct engine {
	struct engine_opts o;
	struct reg *reg;
	_Atomic uint64_t next_id;
	char sandboxes_dir[PATH_MAX];
};
extern struct engine eng;

/* The name `status` shows (stopping shows running). */
const char *sbx_state_name(int state);
const char *sbx_event_name(enum sbx_event ev);
/* Init is gone: stopped, failed or standby; left only by a start. */
bool sbx_state_at_rest(int state);
bool sbx_transition_allowed(int from, int to, enum sbx_event ev);
/* The state a sandbox starts in, before anyone else sees it: creating, or
 * what its journal says. */
void sbx_state_init(struct sbx *s, int state);
/* Every later change (s->lock held): 0, or -EINVAL when the table has no
 * such change, and the state stays. Wakes s->cond; unless the event is
 * quiet, bumps the generation and tells the FUSE layer. */
int sbx_set_state(struct sbx *s, int to, enum sbx_event ev);
/* Sets the sandbox's error sentence (under s->lock) and logs it. Returns code. */
int sbx_fail(struct sbx *s, int code, const char *msg);

/* engine.c: every sandbox, pinned (a snapshot of the registry); unpin
 * releases them and the list. */
struct sbx_pinned {
	struct sbx **list;
	size_t n, cap;
};
void sbx_pin_all(struct sbx_pinned *p);
void sbx_unpin_all(struct sbx_pinned *p);

/* journal.c */
int journal_write(struct sbx *s);
int journal_write_in(struct sbx *s, const char *dir);
/* A state dir is made as STATE/sandboxes/.new-NAME and renamed to NAME once
 * it holds a journal; start-up removes what a dead daemon left hidden. */
#define SBX_NEW_PREFIX ".new-"
int journal_load_all(void);
void journal_commit_soon(void);
int journal_commit_start(void);
void journal_commit_stop(void);
int sbx_config_json(const struct sbx *s, struct buf *b);

/* stats.c */
enum lat_kind { LAT_CREATE, LAT_STOP, LAT_EXEC, LAT_FORK, LAT_N };
void lat_add(enum lat_kind k, uint64_t usec);
uint64_t lat_percentile(uint64_t *sorted, size_t n, unsigned pct);
void stats_count_create(bool ok);
/* metrics.c: Prometheus histograms, fed by lat_add. */
void hist_observe(enum lat_kind k, uint64_t usec);

/* pool.c */
int pool_start(int workers);
void pool_stop(void);
int pool_submit(void (*fn)(void *), void *arg);

/* snap.c: layers (reference counted, removed with their last user), fork, snapshots */
int snap_init(void);
void layer_get(const char *id);
void layer_put(const char *id);
/* The references a sandbox holds on the layers it stacks on (c->lowers, and
 * c->flat once its chain was flattened): taken when it is made or adopted,
 * dropped when it goes. */
void sbx_layers_get(const struct sbx_config *c);
void sbx_layers_put(const struct sbx_config *c);
int sbx_fork(struct sbx *src, int argc, char **argv, struct err *e);
void snap_drop_all(struct sbx *s);
json_t *snap_journal_json(struct sbx *s);
struct journal_snap;
/* Restart: the snapshots journal_parse read (journal.h), with their layers' references. */
void snap_journal_load(struct sbx *s, const struct journal_snap *snaps, size_t n);

/* warm.c: warm pools (/sbx/pools/). */
struct warm_pool;
/* A ready member of a pool of c's spec becomes sandbox `name`, running:
 * 0 (pinned in *out), -ENOENT when no pool has one (create it cold), or
 * another error for the name (-EEXIST...) with the sentence in e. */
int warm_claim(const char *name, const struct sbx_config *c, struct sbx **out, struct err *e);
/* A member's init ended while it waited in its pool (s->lock held). */
void warm_member_ended(struct sbx *s);
int warm_start(void);
/* At daemon exit: no more fills (before the workers stop)... */
void warm_quiesce(void);
/* ...then every member is discarded (the monitor still runs). */
void warm_stop(void);
/* Start-up: a member a dead daemon left (STATE/sandboxes/.pN-SEQ) goes. */
bool warm_leftover(const char *entry);
int warm_show_stats(struct buf *b);
/* True when a warm pool's spec names image (its name in pool). */
bool warm_image_user(const char *image, char *pool, size_t cap);
/* A claimed sandbox takes its new name in the network policy. */
void sbx_net_rename(struct sbx *s);

/* netcfg.c */
bool engine_net_enabled(void);
int engine_net_start(struct err *e);
void engine_net_stop(void);
int sbx_net_reserve(struct sbx *s, const char *exact_ip, struct err *e);
void sbx_net_release(struct sbx *s);
void sbx_net_prepare(struct sbx *s);
void sbx_net_after_start(struct sbx *s);
json_t *sbx_net_journal(struct sbx *s);
/* Network policy: allow|deny lines written to the sandbox's ctl; the journal's. */
int sbx_net_ctl(struct sbx *s, int argc, char **argv, struct err *e);
void sbx_net_policy_load(struct sbx *s, const struct net_rule *rules, size_t n);
/* expose [tcp|udp] PORT [HOSTPORT], unexpose [tcp|udp] PORT (ctl); the journal's, after a
 * restart. */
int sbx_net_expose(struct sbx *s, int argc, char **argv, struct err *e);
void sbx_net_expose_load(struct sbx *s, const struct net_expose *x, size_t n);
void sbx_net_inherit(struct sbx *child, struct sbx *parent);

/* disklimit.c: a sandbox's own disk (disk=) seen from the engine. Looks whether
 * it filled up (or has room again) and says so in error and events; called
 * each second for every sandbox (the output pump's tick). */
void sbx_disk_check(struct sbx *s);
/* stats lines: disk_limit_bytes, and disk_used_bytes while it is mounted. */
int sbx_disk_show(struct sbx *s, struct buf *b);

/* jobs.c */
bool sbx_job_event(struct sbx *s, const struct vmm_event *ev);
void sbx_jobs_ended(struct sbx *s, const char *reason);
void sbx_jobs_bound(struct sbx *s);
void sbx_jobs_load(struct sbx *s);
void sbx_jobs_reattach(struct sbx *s);
void sbx_jobs_free(struct sbx *s);
/* Output watches: an inotify fd in the monitor's epoll set (data tag), and
 * what the monitor does when it is readable. */
int sbx_jobs_watch_start(int epfd, uint64_t tag);
void sbx_jobs_watch_drain(void);

/* exec.c: an exec or run line made ready to send: its options (ctl.h), the
 * shell line (with the image's Env and WorkingDir), where the command itself
 * starts in it, and what the backend applies itself (opts, NULL: nothing). */
struct sbx_command {
	struct ctl_run_opts ro;
	char full[IMAGE_COMMAND_MAX];
	size_t cmd_at;
	struct vmm_run_opts vo;
	const struct vmm_run_opts *opts;
};
/* The exit code an exec shows after its timeout= killed it (as timeout(1)). */
#define SBX_EXEC_TIMEOUT_CODE 124
int sbx_command_prepare(struct sbx *s, const char *line, bool job, struct sbx_command *c,
			struct err *e);
/* With s->lock held: deadline_usec (a command's timeout=) for the monitor. */
void sbx_cmd_deadline(struct sbx *s, uint64_t deadline_usec);
/* A deadline (0: none) at now: true once it passed (then cleared), else
 * the earliest yet to come is kept in *next. */
bool sbx_deadline_passed(uint64_t *deadline_usec, uint64_t now, uint64_t *next);
/* With s->lock held: kill what is past its timeout=; the next deadline, 0 none. */
uint64_t sbx_execs_expire(struct sbx *s, uint64_t now);
uint64_t sbx_jobs_expire(struct sbx *s, uint64_t now);

/* lifecycle.c */
int sbx_reserve(const char *name, const struct sbx_config *c, struct sbx **out, struct err *e);
void sbx_unreserve(struct sbx *s);
int sbx_commit(struct sbx *s, struct err *e);
int sbx_make_state_dir(struct sbx *s, struct err *e);
/* Runs a queued start's work on this thread (a warm pool's fill). */
void sbx_start_now(struct sbx *s);
void sbx_discard(struct sbx *s);
/* The config of a bare mkdir; a create's after its options (refuses what
 * the backend cannot do). */
void engine_mkdir_config(struct sbx_config *c);
/* The image exists and overlayfs can take its path. */
int engine_image_check(const char *image, struct err *e);
int engine_config_check(struct sbx_config *c, int argc, char **argv, struct err *e);
struct sbx *sbx_alloc(const char *name, const struct sbx_config *c);
int sbx_queue_start(struct sbx *s);
void monitor_watch(struct sbx *s);
int monitor_start(void);
void monitor_stop(void);
void sbx_exec_fail_all(struct sbx *s, int code);
void sbx_exec_exited(struct sbx *s, uint64_t id, int code);
/* Waits (bounded) while the sandbox is creating; call with s->lock held. */
/* How long a request waits for a sandbox being created to settle. */
#define SETTLE_TIMEOUT_SEC 60
void sbx_wait_settled(struct sbx *s, int timeout_sec);
/* After settling: 0 when running, else -EBUSY with the sentence in e. */
int sbx_require_running(struct sbx *s, const char *what, struct err *e);
int sbx_stop(struct sbx *s, int timeout_sec, const char *reason, struct err *e);
int engine_create(int argc, char **argv, struct err *e);
void engine_bump_generation(void);
/* Tells the FUSE layer that sandbox `id` (0: the top level) changed. */
void engine_notify(uint64_t id);
/* Tells the FUSE layer that job n of sandbox id has new output, ended, or went. */
void engine_notify_job(uint64_t id, uint32_t n);

#endif
