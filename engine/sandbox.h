/* The sandbox object and its core, the engine's lowest layer above the
 * shared helpers (common.h, registry.h): struct sbx, the state machine
 * (state.c) and what every part may call on a sandbox: its failure sentence,
 * the wait for it to settle, lookups and change notification (sandbox.c).
 * Nothing here calls up into the engine's parts. */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include <pthread.h>
#include <stdatomic.h>

#include "../net/net.h"
#include "../vmm/vmm.h"
#include "context.h"
#include "ctl.h"
#include "engine.h"
#include "registry.h"

struct sbx_snap;
struct sbx_job;
struct warm_pool;

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
	struct sbx *journal_next; /* in eng->commit.later (journal_write_later) */
	bool flattening; /* a background flatten of cfg.lowers is queued */
	bool monitored;
	bool stop_busy;    /* a stopper is inside ops->stop */
	bool checkpointing; /* a file-system checkpoint copies, unlocked (snap.c) */
	bool exit_pending; /* init exited meanwhile; the stopper settles it */
	uint64_t next_exec_id;
	/* A hint for the monitor: the earliest timeout= of a running exec or
	 * job (monotonic; 0 none); sbx_cmds_expire looks under the lock. */
	uint64_t cmd_deadline_usec;
	struct sbx_exec *execs; /* open exec sessions, under lock */
	/* The warm shell's pipes, our ends (-1: none; exec.c): its stdin's
	 * write end, its stdout's and stderr's read ends. An exec or a job
	 * without options runs there. */
	int warm_fds[3];
	bool warm_rearmed; /* init's MSG_WARM_WANTED taken: once per adoption */
	bool warm_due; /* a warm command runs: the next shell is asked for when it ends (exec.c) */
	uint64_t execs_warm, jobs_warm; /* execs, jobs that ran in a warm shell */
	struct sbx_snap *snaps; /* named checkpoints, under lock */
	struct sbx_job *jobs;   /* background jobs, under lock */
	/* Bytes of puts' writes its files requests hold while its channel has no
	 * room for them (engine/files.c, a backend that serves files). */
	_Atomic size_t files_held;
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
	struct engine *eng; /* the engine it belongs to */
};


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

/* Waits (bounded) while the sandbox is creating; call with s->lock held. */
/* How long a request waits for a sandbox being created to settle. */
#define SETTLE_TIMEOUT_SEC 60
void sbx_wait_settled(struct sbx *s, int timeout_sec);
/* Waits on s->cond (s->lock held) until woken or the monotonic deadline: true when woken. */
bool sbx_timed_wait(struct sbx *s, uint64_t deadline_usec);
/* After settling: 0 when running, else -EBUSY with the sentence in e. */
int sbx_require_running(struct sbx *s, const char *what, struct err *e);

/* sandbox.c: every sandbox, pinned (a snapshot of the registry); unpin
 * releases them and the list. */
struct sbx_pinned {
	struct sbx **list;
	size_t n, cap;
};
void sbx_pin_all(struct engine *eng, struct sbx_pinned *p);
void sbx_unpin_all(struct sbx_pinned *p);

void engine_bump_generation(struct engine *eng);
/* Tells the FUSE layer that sandbox `id` (0: the top level) changed. */
void engine_notify(struct engine *eng, uint64_t id);
/* Sandbox id was removed other than by an rmdir (`remove` on ctl): the
 * kernel's name and attributes of its directory are stale too. */
void engine_notify_gone(struct engine *eng, uint64_t id);
/* Tells the FUSE layer that job n of sandbox id has new output, ended, or went. */
void engine_notify_job(struct engine *eng, uint64_t id, uint32_t n);

#endif
