/* The sandbox state machine: create, start, stop, kill, pause, resume and
 * remove, and the monitor thread that learns of exits (pidfds), of what init
 * reports (its socket) and of jobs' output (inotify) through one epoll set. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <inttypes.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "exec.h"
#include "images.h"
#include "jobs.h"
#include "journal.h"
#include "lifecycle.h"
#include "netcfg.h"
#include "pool.h"
#include "layers.h"
#include "sandbox.h"
#include "stats.h"

static void sbx_release(struct reg_node *n)
{
	struct sbx *s = caa_container_of(n, struct sbx, node);
	sbx_jobs_free(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

struct sbx *sbx_alloc(struct engine *eng, const char *name, const struct sbx_config *c)
{
	struct sbx *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	reg_node_init(&s->node, atomic_fetch_add(&eng->next_id, 1), name, sbx_release);
	s->eng = eng;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	sbx_state_init(s, SBX_CREATING);
	s->cfg = *c;
	s->ops = vmm_find(c->backend);
	s->exit_code = -1;
	s->oom_fd = -1;
	s->warm_fds[0] = s->warm_fds[1] = s->warm_fds[2] = -1;
	snprintf(s->reason, sizeof(s->reason), "-");
	vmm_inst_init(&s->vm);
	snprintf(s->vm.name, sizeof(s->vm.name), "%s", name);
	snprintf(s->vm.dir, sizeof(s->vm.dir), "%s/%s", eng->sandboxes_dir, name);
	image_resolve(s->eng, c->image, &s->vm);
	s->vm.nlowers = c->nlowers;
	for (int i = 0; i < c->nlowers; i++)
		snprintf(s->vm.lowers[i], sizeof(s->vm.lowers[i]), "%s", c->lowers[i]);
	s->vm.lim.memory_bytes = c->memory_bytes;
	s->vm.lim.pids = c->pids;
	s->vm.lim.cpu_millis = c->cpu_millis;
	s->vm.lim.disk_bytes = c->disk_bytes;
	return s;
}

/* --- a test-only hook: the daemon's death at a chosen step of a create --- */

/* SANDBOXFS_TEST_KILL_AT=STEP (read once) makes the daemon SIGKILL itself
 * when a create reaches STEP, so tests/stress/kill.bats can check what a
 * restarted daemon makes of every half-made sandbox. Steps, in order:
 * commit-dir (hidden state dir made, no journal), commit-journal (journal
 * written, not renamed into place), commit-done (state dir in place, start
 * not queued), start-create (on the worker: the backend's files made),
 * start-spawned (init runs, its pid not journaled). */
/* The environment is the process's: read once (pthread_once), for every engine. */
static const char *kill_at;
static pthread_once_t kill_at_once = PTHREAD_ONCE_INIT;

static void kill_at_read(void) { kill_at = getenv("SANDBOXFS_TEST_KILL_AT"); }

static void test_kill_point(const char *step)
{
	pthread_once(&kill_at_once, kill_at_read);
	if (kill_at && strcmp(kill_at, step) == 0) {
		log_warn("SANDBOXFS_TEST_KILL_AT=%s: the daemon kills itself here", step);
		raise(SIGKILL);
	}
}

/* --- start (on a pool worker) --- */

static void start_job(void *arg)
{
	struct sbx *s = arg;
	struct vmm_timing t = {0};
	struct err e = {0};
	uint64_t begin = now_usec();
	int r = 0;
	if (s->t.starts == 0) {
		r = s->ops->create(&s->vm, &e);
		test_kill_point("start-create");
	}
	sbx_net_prepare(s);
	if (r == 0)
		r = s->ops->start(&s->vm, &t, &e);
	if (r == 0)
		test_kill_point("start-spawned");

	pthread_mutex_lock(&s->lock);
	s->t.create_queue_usec = begin - s->t.request_usec;
	if (r < 0) {
		sbx_fail(s, r, e.msg);
		sbx_set_state(s, SBX_FAILED, SBX_EV_START_FAILED);
		snprintf(s->reason, sizeof(s->reason), "exit");
		engine_note_error(s->eng, "create %s failed: %s", s->node.name, e.msg);
	} else {
		s->t.create_rootfs_usec = t.rootfs_usec;
		s->t.create_cgroup_usec = t.cgroup_usec;
		s->t.create_spawn_usec = t.spawn_usec;
		s->t.create_init_usec = t.init_usec;
		s->t.vt = t;
		if (t.restore_usec)
			s->t.restore_usec = t.restore_usec;
		s->t.starts++;
		s->t.started_wall_usec = wall_usec();
		s->deadline_usec = s->cfg.timeout_sec
					   ? now_usec() + (uint64_t)s->cfg.timeout_sec * 1000000
					   : 0;
		s->error[0] = '\0';
		snprintf(s->reason, sizeof(s->reason), "-");
		s->exit_code = -1;
		sbx_set_state(s, SBX_RUNNING, SBX_EV_STARTED);
		monitor_watch(s);
	}
	/* Running (or failed) from here: the journal write is not part of the create. */
	s->t.create_usec = now_usec() - s->t.request_usec;
	uint64_t total = s->t.create_usec;
	if (s->t.fork_queued_usec && s->t.starts == 1) {
		s->t.fork_restore_usec = now_usec() - s->t.fork_queued_usec;
		s->t.fork_usec = total;
		if (r == 0)
			lat_add(s->eng, LAT_FORK, total);
	}
	uint64_t tj = now_usec();
	journal_write(s);
	s->t.create_journal_usec = now_usec() - tj;
	pthread_mutex_unlock(&s->lock);
	if (r == 0) {
		sbx_net_after_start(s);
		if (!s->pool) /* a pool's fill is not a user's create */
			lat_add(s->eng, LAT_CREATE, total);
		log_info("sandbox %s: running in %llu us (pid %d)", s->node.name,
			 (unsigned long long)total, (int)s->vm.pid);
	}
	if (!s->pool)
		stats_count_create(s->eng, r == 0);
	sbx_put(s);
}

void sbx_start_now(struct sbx *s)
{
	reg_tryget(&s->node); /* start_job's reference */
	start_job(s);
}

int sbx_queue_start(struct sbx *s)
{
	reg_tryget(&s->node); /* the job's reference */
	int r = pool_submit(s->eng, start_job, s);
	if (r < 0) {
		sbx_put(s);
		return r;
	}
	return 0;
}

/* Validates and takes the name: after this the sandbox is visible as creating. */
int sbx_reserve(struct engine *eng, const char *name, const struct sbx_config *c,
		struct sbx **out, struct err *e)
{
	int r = ctl_check_name(name, e);
	if (r < 0)
		return r;
	if (!vmm_find(c->backend))
		return err_set(e, -EOPNOTSUPP, "backend '%s' is not available in this build",
			       c->backend);
	/* Pinned until the sandbox is in the registry, where rmdir of the image looks. */
	if ((r = image_pin(eng, c->image, e)) < 0)
		return r;
	struct sbx *s = NULL;
	if (eng->o.max_sandboxes && reg_count(eng->reg) >= eng->o.max_sandboxes)
		r = err_set(e, -ENOSPC, "the daemon's limit of %lu sandboxes is reached "
			    "(--max-sandboxes)", eng->o.max_sandboxes);
	else if (!(s = sbx_alloc(eng, name, c)))
		r = err_set(e, -ENOMEM, "out of memory");
	if (s) {
		s->cfg.created_wall_usec = wall_usec();
		s->t.request_usec = now_usec();
		if (reg_add(eng->reg, &s->node) < 0) {
			sbx_put(s);
			r = err_set(e, -EEXIST, "sandbox '%s' already exists", name);
		}
	}
	image_unpin(eng, c->image);
	if (r < 0)
		return r;
	int r2 = sbx_net_reserve(s, NULL, e);
	if (r2 < 0) {
		sbx_unreserve(s);
		return r2;
	}
	*out = s;
	return 0;
}

/* Gives a reserved name back (nothing on disk yet). */
void sbx_unreserve(struct sbx *s)
{
	sbx_net_release(s);
	reg_del(s->eng->reg, &s->node);
	sbx_put(s);
}

/* Makes the state dir with its first journal as one step: both are made under
 * a hidden name and renamed into place, so that a state dir never exists
 * without a journal a restarted daemon accepts (it then shows the sandbox as
 * failed), and a create cut off before the rename leaves only a hidden dir,
 * which start-up removes (journal_load_all). */
int sbx_make_state_dir(struct sbx *s, struct err *e)
{
	char tmp[PATH_MAX + 64];
	snprintf(tmp, sizeof(tmp), "%s/" SBX_NEW_PREFIX "%s", s->eng->sandboxes_dir,
		 s->node.name);
	rm_rf(tmp); /* a dead daemon's leftover: the name is ours now (reserved) */
	if (mkdir(tmp, 0700) < 0)
		return err_set(e, -errno, "cannot create %s: %s", tmp, strerror(errno));
	test_kill_point("commit-dir");
	pthread_mutex_lock(&s->lock);
	int r = journal_write_in(s, tmp);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		err_set(e, r, "cannot write the journal of %s: %s", s->node.name, strerror(-r));
		goto out;
	}
	test_kill_point("commit-journal");
	r = renameat2(AT_FDCWD, tmp, AT_FDCWD, s->vm.dir, RENAME_NOREPLACE);
	if (r < 0 && errno == EINVAL) /* a filesystem without NOREPLACE */
		r = access(s->vm.dir, F_OK) == 0 ? (errno = EEXIST, -1) : rename(tmp, s->vm.dir);
	if (r < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			r = err_set(e, -EEXIST, "%s exists on disk but is not a known sandbox; "
				    "remove it by hand if it is not needed", s->vm.dir);
		else
			r = err_set(e, -errno, "cannot rename %s to %s: %s", tmp, s->vm.dir,
				    strerror(errno));
	}
out:
	if (r < 0)
		rm_rf(tmp);
	else
		journal_commit_soon(s->eng); /* the rename too goes into the next group commit */
	return r;
}

/* Makes the state dir, journals and queues the start: returns at once. On
 * failure the reservation is undone. */
int sbx_commit(struct sbx *s, struct err *e)
{
	int r;
	sbx_layers_get(s->eng, &s->cfg);
	if ((r = sbx_make_state_dir(s, e)) < 0)
		goto undo_layers;
	test_kill_point("commit-done");
	r = sbx_queue_start(s);
	if (r < 0) {
		err_set(e, r, "cannot queue the start of %s", s->node.name);
		rm_rf(s->vm.dir);
		goto undo_layers;
	}
	engine_bump_generation(s->eng);
	log_debug("sandbox %s: reserved (id %llu)", s->node.name, (unsigned long long)s->node.id);
	return 0;
undo_layers:
	sbx_layers_put(s->eng, &s->cfg);
	sbx_unreserve(s);
	return r;
}

static int sbx_create(struct engine *eng, const char *name, const struct sbx_config *c,
		      struct sbx **out, struct err *e)
{
	int r = sbx_reserve(eng, name, c, out, e);
	if (r == 0 && (r = sbx_commit(*out, e)) < 0)
		*out = NULL;
	return r;
}

/* A create takes a ready member of a warm pool of the same spec when there
 * is one (the claim hook, warm.c's), else makes the sandbox. */
static int sbx_create_or_claim(struct engine *eng, const char *name, const struct sbx_config *c,
			       struct sbx **out, struct err *e)
{
	int r = eng->lifecycle.claim ? eng->lifecycle.claim(eng, name, c, out, e) : -ENOENT;
	if (r == 0) { /* a claim counts as a create, in its own time */
		lat_add(eng, LAT_CREATE, (*out)->t.claim_usec);
		stats_count_create(eng, true);
	}
	if (r != -ENOENT)
		return r;
	return sbx_create(eng, name, c, out, e);
}

/* What the backend called name can have (VMM_CAP_*); 0 when there is none. */
static unsigned backend_caps(const char *name)
{
	const struct vmm_ops *ops = vmm_find(name);
	return ops ? ops->caps : 0;
}

void engine_mkdir_config(struct engine *eng, struct sbx_config *c)
{
	unsigned caps = backend_caps(eng->o.backend);
	ctl_config_defaults(c, eng->o.backend, engine_net_enabled(eng) && (caps & VMM_CAP_NET));
	if (caps & VMM_CAP_DISK)
		c->disk_bytes = eng->o.disk_bytes; /* --disk */
}

int engine_mkdir(struct engine *eng, const char *name, struct sbx **out)
{
	struct sbx_config c;
	struct err e = {0};
	engine_mkdir_config(eng, &c);
	int r = sbx_create_or_claim(eng, name, &c, out, &e);
	if (r < 0)
		engine_note_error(eng, "mkdir '%s': %s", name, e.msg);
	return r;
}

int engine_config_check(struct engine *eng, struct sbx_config *c, int argc, char **argv,
			struct err *e)
{
	unsigned caps = backend_caps(c->backend);
	if (!(caps & VMM_CAP_NET) && c->net) {
		/* A backend without a network device: off by default, refused when asked for. */
		for (int i = 0; i < argc; i++)
			if (strcmp(argv[i], "net=on") == 0)
				return err_set(e, -EOPNOTSUPP, "net=on is not available for backend %s "
					       "(it has no network device)", c->backend);
		c->net = false;
	}
	/* disk=: the daemon's default (--disk) where a create names none. A VM's
	 * files live in its RAM: there is no disk of its own to bound. */
	bool disk_asked = false;
	for (int i = 0; i < argc; i++)
		disk_asked |= strncmp(argv[i], "disk=", 5) == 0;
	if (!(caps & VMM_CAP_DISK)) {
		if (disk_asked && c->disk_bytes)
			return err_set(e, -EOPNOTSUPP, "disk= is for ns sandboxes: a %s sandbox's "
				       "files are in its RAM (memory=); its console and jobs have "
				       "caps of their own", c->backend);
		c->disk_bytes = 0;
	} else if (!disk_asked) {
		c->disk_bytes = eng->o.disk_bytes;
	}
	return 0;
}

int engine_create(struct engine *eng, int argc, char **argv, struct err *e)
{
	struct sbx_config c;
	struct sbx *s;
	ctl_config_defaults(&c, eng->o.backend, engine_net_enabled(eng));
	if (argc < 2)
		return err_set(e, -EINVAL, "usage: create NAME [key=value...]");
	int r = ctl_check_name(argv[1], e);
	if (r < 0)
		return r;
	r = ctl_parse_options(argc - 2, argv + 2, &c, e);
	if (r < 0)
		return r;
	if ((r = engine_config_check(eng, &c, argc - 2, argv + 2, e)) < 0)
		return r;
	r = sbx_create_or_claim(eng, argv[1], &c, &s, e);
	if (r == 0)
		sbx_put(s);
	return r;
}

static void handle_exit_locked(struct sbx *s);

/* --- stop, start, kill, pause, resume --- */

/* Stop, or with standby save the whole machine first (the backend ends it). */
static int stop_or_standby(struct sbx *s, int timeout_sec, const char *reason, bool standby,
			   struct err *e)
{
	sbx_wait_settled(s, SETTLE_TIMEOUT_SEC);
	int st = atomic_load(&s->state);
	const char *verb = standby ? "put in standby" : "stop";
	if (st == SBX_STOPPING)
		return err_set(e, -EBUSY, "sandbox %s is already stopping", s->node.name);
	if (st != SBX_RUNNING && st != SBX_PAUSED)
		return err_set(e, -EBUSY, "cannot %s sandbox %s: it is %s", verb, s->node.name,
			       sbx_state_name(st));
	if (standby && !s->ops->standby)
		return err_set(e, -EOPNOTSUPP, "standby needs a backend that can save a whole "
			       "machine (qemu); '%s' cannot (no process checkpointing here)",
			       s->cfg.backend);
	s->t.stop_request_usec = now_usec();
	char old_reason[sizeof(s->reason)];
	snprintf(old_reason, sizeof(old_reason), "%s", s->reason);
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	sbx_set_state(s, SBX_STOPPING, standby ? SBX_EV_STANDBY : SBX_EV_STOP);
	if (st == SBX_PAUSED && !standby)
		s->ops->thaw(&s->vm, NULL); /* a frozen init cannot act on stop */
	/* While stop_busy, the monitor leaves init's handles to us (no reap under our feet). */
	s->stop_busy = true;
	pthread_mutex_unlock(&s->lock);
	int r = standby ? s->ops->standby(&s->vm, st == SBX_PAUSED, e)
			: s->ops->stop(&s->vm, timeout_sec, e);
	pthread_mutex_lock(&s->lock);
	if (standby && r < 0 && !s->exit_pending && atomic_load(&s->state) == SBX_STOPPING) {
		/* Nothing was saved and the machine runs on as it was. */
		s->stop_busy = false;
		snprintf(s->reason, sizeof(s->reason), "%s", old_reason);
		sbx_set_state(s, st, SBX_EV_STANDBY_FAILED);
		return r;
	}
	if (standby && r == 0)
		s->t.standby_usec = now_usec() - s->t.stop_request_usec;
	s->stop_busy = false;
	/* Gone already (the stop waited for it): settled here, as when the
	 * monitor saw it first, not after a round through the monitor. */
	if (s->exit_pending || (r == 0 && s->monitored && s->vm.pidfd >= 0 &&
				vmm_pidfd_wait(s->vm.pidfd, 0) == 1)) {
		s->exit_pending = false;
		handle_exit_locked(s);
	}
	/* Otherwise the monitor reaps init and moves us to stopped; wait for it, bounded. */
	uint64_t deadline = now_usec() + 10 * 1000000ull;
	while (atomic_load(&s->state) == SBX_STOPPING && now_usec() < deadline)
		sbx_timed_wait(s, deadline);
	if (r < 0)
		return r;
	if (atomic_load(&s->state) == SBX_STOPPING)
		return err_set(e, -ETIMEDOUT, "sandbox %s did not stop", s->node.name);
	return 0;
}

static int sbx_stop_locked(struct sbx *s, int timeout_sec, const char *reason, struct err *e)
{
	return stop_or_standby(s, timeout_sec, reason, false, e);
}

static int sbx_standby(struct sbx *s, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	int r = stop_or_standby(s, 0, "standby", true, e);
	if (r == 0)
		log_info("sandbox %s: in standby (saved in %" PRIu64 " us)", s->node.name,
			 s->t.standby_usec);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sbx_stop(struct sbx *s, int timeout_sec, const char *reason, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	int r = sbx_stop_locked(s, timeout_sec, reason, e);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int sbx_start(struct sbx *s, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	int st = atomic_load(&s->state);
	int r = 0;
	if (s->removing)
		r = err_set(e, -EBUSY, "sandbox %s is being removed", s->node.name);
	else if (!sbx_state_at_rest(st))
		r = err_set(e, -EBUSY, "cannot start sandbox %s: it is %s", s->node.name,
			    sbx_state_name(st));
	else if (!s->vm.nimage_layers && access(s->vm.image_dir, F_OK) < 0)
		r = err_set(e, -ENOENT, "image '%s' is gone", s->cfg.image);
	if (r == 0) {
		s->t.request_usec = now_usec();
		sbx_set_state(s, SBX_CREATING, SBX_EV_START);
		journal_write(s);
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0 && (r = sbx_queue_start(s)) < 0) {
		pthread_mutex_lock(&s->lock);
		sbx_set_state(s, SBX_FAILED, SBX_EV_START_FAILED);
		pthread_mutex_unlock(&s->lock);
		r = err_set(e, r, "cannot queue the start of %s", s->node.name);
	}
	return r;
}

static int sbx_signal(struct sbx *s, int sig, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	sbx_wait_settled(s, SETTLE_TIMEOUT_SEC);
	int st = atomic_load(&s->state), r;
	if (st != SBX_RUNNING && st != SBX_PAUSED && st != SBX_STOPPING)
		r = err_set(e, -EBUSY, "cannot signal sandbox %s: it is %s", s->node.name,
			    sbx_state_name(st));
	else {
		if (sig == SIGKILL && st != SBX_STOPPING)
			snprintf(s->reason, sizeof(s->reason), "user");
		r = s->ops->kill(&s->vm, sig, e);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int sbx_pause(struct sbx *s, bool pause, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	sbx_wait_settled(s, SETTLE_TIMEOUT_SEC);
	int st = atomic_load(&s->state), r;
	int want = pause ? SBX_RUNNING : SBX_PAUSED;
	if (st != want)
		r = err_set(e, -EBUSY, "cannot %s sandbox %s: it is %s", pause ? "pause" : "resume",
			    s->node.name, sbx_state_name(st));
	else if ((r = pause ? s->ops->freeze(&s->vm, e) : s->ops->thaw(&s->vm, e)) == 0) {
		sbx_set_state(s, pause ? SBX_PAUSED : SBX_RUNNING,
			      pause ? SBX_EV_PAUSE : SBX_EV_RESUME);
		journal_write(s);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int sbx_extend(struct sbx *s, uint64_t sec, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	int st = atomic_load(&s->state), r = 0;
	if (st != SBX_RUNNING && st != SBX_PAUSED && st != SBX_CREATING)
		r = err_set(e, -EBUSY, "cannot extend sandbox %s: it is %s", s->node.name,
			    sbx_state_name(st));
	else if (!s->cfg.timeout_sec) /* extend never gives a life a deadline it did not have */
		r = err_set(e, -EINVAL, "sandbox %s has no timeout to extend: it runs until "
			    "stopped (create it with timeout=SECONDS for a deadline)", s->node.name);
	else {
		uint64_t now = now_usec();
		uint64_t base = s->deadline_usec > now ? s->deadline_usec : now;
		s->deadline_usec = base + sec * 1000000;
		uint64_t left = (s->deadline_usec - now) / 1000000;
		s->cfg.timeout_sec = (uint32_t)((now - s->t.request_usec) / 1000000 + left);
		journal_write(s);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sbx_ctl(struct sbx *s, const char *buf, size_t len)
{
	struct ctl_cmd cmd;
	struct err e = {0};
	int r = ctl_split(buf, len, &cmd, &e);
	if (r == 0) {
		const char *verb = cmd.argv[0];
		uint64_t u = 10;
		int sig = SIGKILL;
		if (!strcmp(verb, "stop")) {
			if (cmd.argc > 2 || (cmd.argc == 2 && ctl_parse_uint(cmd.argv[1], 3600, &u) < 0))
				r = err_set(&e, -EINVAL, "usage: stop [SECONDS], at most 3600");
			else
				r = sbx_stop(s, (int)u, "user", &e);
		} else if (!strcmp(verb, "start") && cmd.argc == 1) {
			r = sbx_start(s, &e);
		} else if (!strcmp(verb, "kill")) {
			if (cmd.argc > 2 || (cmd.argc == 2 && ctl_parse_signal(cmd.argv[1], &sig) < 0))
				r = err_set(&e, -EINVAL, "usage: kill [SIGNAL], a name like TERM or a number");
			else
				r = sbx_signal(s, sig, &e);
		} else if ((!strcmp(verb, "pause") || !strcmp(verb, "resume")) && cmd.argc == 1) {
			r = sbx_pause(s, !strcmp(verb, "pause"), &e);
		} else if (!strcmp(verb, "extend")) {
			if (cmd.argc != 2 || ctl_parse_uint(cmd.argv[1], 31536000, &u) < 0 || u == 0)
				r = err_set(&e, -EINVAL, "usage: extend SECONDS");
			else
				r = sbx_extend(s, u, &e);
		} else if (!strcmp(verb, "fork")) {
			r = s->eng->lifecycle.fork(s, cmd.argc - 1, cmd.argv + 1, &e);
		} else if (!strcmp(verb, "standby") && cmd.argc == 1) {
			r = sbx_standby(s, &e);
		} else if (!strcmp(verb, "allow") || !strcmp(verb, "deny")) {
			r = sbx_net_ctl(s, cmd.argc, cmd.argv, &e);
		} else if (!strcmp(verb, "expose") || !strcmp(verb, "unexpose")) {
			r = sbx_net_expose(s, cmd.argc, cmd.argv, &e);
		} else if (!strcmp(verb, "start") || !strcmp(verb, "pause") || !strcmp(verb, "resume") ||
			   !strcmp(verb, "standby")) {
			r = err_set(&e, -EINVAL, "'%s' takes no arguments", verb);
		} else {
			r = err_set(&e, -EINVAL, "unknown command '%.64s' (stop start kill pause resume "
				    "extend fork standby allow deny expose unexpose)", verb);
		}
	}
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		sbx_fail(s, r, e.msg);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

/* --- removal --- */

/* Stops the sandbox if needed and removes everything it owns but its
 * registry entry. s->lock held, s->removing set. */
static int sbx_remove_locked(struct sbx *s, struct err *e)
{
	const char *name = s->node.name;
	sbx_wait_settled(s, SETTLE_TIMEOUT_SEC);
	int st = atomic_load(&s->state), r = 0;
	s->vm.ending = true; /* the backend may leave teardown no one waits for to destroy */
	if (st == SBX_RUNNING || st == SBX_PAUSED)
		r = sbx_stop_locked(s, 0, "user", e);
	else if (st == SBX_STOPPING) {
		uint64_t deadline = now_usec() + 15 * 1000000ull;
		while (atomic_load(&s->state) == SBX_STOPPING && now_usec() < deadline)
			sbx_timed_wait(s, deadline);
	}
	st = atomic_load(&s->state);
	if (r == 0 && !sbx_state_at_rest(st))
		r = err_set(e, -EBUSY, "sandbox %s is still %s", name, sbx_state_name(st));
	if (r == 0)
		r = s->ops->destroy(&s->vm, e);
	if (r < 0) {
		vmm_ending_cancel(&s->vm);
		journal_write(s); /* what the exit did not write, the removal being under way */
		return r;
	}
	journal_commit_soon(s->eng); /* the state dir's rename into the trash, made durable */
	s->eng->lifecycle.drop_snaps(s);
	sbx_net_release(s);
	sbx_layers_put(s->eng, &s->cfg);
	return 0;
}

/* A sandbox outside the registry (a warm pool's member) ends: stopped,
 * its files removed, the caller's reference dropped. */
void sbx_discard(struct sbx *s)
{
	struct err e = {0};
	pthread_mutex_lock(&s->lock);
	s->removing = true;
	int r = sbx_remove_locked(s, &e);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		log_warn("sandbox %s: cannot be discarded: %s", s->node.name, e.msg);
	sbx_put(s);
}

/* Stops it if needed and removes every trace; e says why not. by_rmdir: the
 * kernel drops its own entry of the directory (an rmdir did it). */
static int remove_named(struct engine *eng, const char *name, bool by_rmdir, struct err *e)
{
	struct sbx *s = sbx_get(eng, name);
	if (!s)
		return err_set(e, -ENOENT, "no such sandbox");
	pthread_mutex_lock(&s->lock);
	if (s->removing) {
		pthread_mutex_unlock(&s->lock);
		sbx_put(s);
		return err_set(e, -ENOENT, "it is being removed already");
	}
	s->removing = true;
	int r = sbx_remove_locked(s, e);
	if (r < 0) {
		s->removing = false;
		sbx_fail(s, r, e->msg);
		pthread_mutex_unlock(&s->lock);
		sbx_put(s);
		return r;
	}
	pthread_mutex_unlock(&s->lock);
	reg_del(eng->reg, &s->node);
	/* Its nodes answer ENOENT from now on. */
	if (by_rmdir)
		engine_notify(eng, s->node.id);
	else
		engine_notify_gone(eng, s->node.id);
	engine_bump_generation(eng);
	log_info("sandbox %s: removed", name);
	sbx_put(s);
	return 0;
}

int engine_rmdir(struct engine *eng, const char *name)
{
	struct err e = {0};
	int r = remove_named(eng, name, true, &e);
	if (r < 0)
		engine_note_error(eng, "rmdir '%s': %s", name, e.msg);
	return r;
}

/* remove NAME...: the removals of one write run at once, a thread each (the
 * kernel runs the rmdirs of one directory one after another; the workers
 * may be making the very sandboxes named, which a removal waits for); the
 * write returns when every one has ended. */
struct remove_one {
	pthread_t t;
	bool started;
	struct engine *eng;
	const char *name;
	int r;
	struct err e;
};

static void *remove_thread(void *arg)
{
	struct remove_one *o = arg;
	engine_thread_online(); /* a registry reader (offline again when it exits) */
	o->r = remove_named(o->eng, o->name, false, &o->e);
	return NULL;
}

int engine_remove(struct engine *eng, int argc, char **argv, struct err *e)
{
	struct remove_one ones[CTL_ARGS_MAX];
	int n = argc - 1, failed = 0, first = -1;
	if (n < 1)
		return err_set(e, -EINVAL, "usage: remove NAME [NAME...] (at most %d names a write)",
			       CTL_ARGS_MAX - 1);
	for (int i = 1; i < argc; i++) {
		int r = ctl_check_name(argv[i], e);
		if (r < 0)
			return r;
		for (int j = 1; j < i; j++)
			if (!strcmp(argv[i], argv[j]))
				return err_set(e, -EINVAL, "remove: '%s' is named twice", argv[i]);
	}
	for (int i = 0; i < n; i++) {
		ones[i] = (struct remove_one){.eng = eng, .name = argv[i + 1]};
		/* The last one (or one no thread could be made for) on this thread. */
		ones[i].started = i < n - 1 &&
				  pthread_create(&ones[i].t, NULL, remove_thread, &ones[i]) == 0;
		if (!ones[i].started)
			remove_thread(&ones[i]);
	}
	for (int i = 0; i < n; i++) {
		if (ones[i].started)
			pthread_join(ones[i].t, NULL);
		if (ones[i].r < 0 && failed++ == 0)
			first = i;
	}
	if (!failed)
		return 0;
	const struct remove_one *f = &ones[first];
	if (failed == 1)
		return err_set(e, f->r, "remove %s: %s", f->name, f->e.msg);
	return err_set(e, f->r, "remove: %d of %d not removed; the first, %s: %s", failed, n,
		       f->name, f->e.msg);
}

/* --- the monitor thread --- */

#define TAG_CTL 1ul
#define TAG_OUTPUT 2ul /* not a sandbox: the inotify fd of jobs' output */
#define TAG_OOM 4ul
#define TAGS (TAG_CTL | TAG_OOM)

void monitor_watch(struct sbx *s)
{
	if (s->monitored)
		return;
	reg_tryget(&s->node); /* the monitor's reference, dropped after the reap */
	s->monitored = true;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uintptr_t)s};
	epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_ADD, s->vm.pidfd, &ev);
	if (s->vm.ctl_fd >= 0) {
		ev.data.u64 = (uintptr_t)s | TAG_CTL;
		epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_ADD, s->vm.ctl_fd, &ev);
	}
	/* An OOM kill inside changes events (oom_kills) and wakes its pollers. */
	cg_oom_kills(&s->vm.cg, &s->oom_seen);
	int fd = cg_oom_watch(&s->vm.cg, &s->oom_pri);
	if (fd >= 0) {
		ev = (struct epoll_event){.events = s->oom_pri ? EPOLLPRI : EPOLLIN,
					  .data.u64 = (uintptr_t)s | TAG_OOM};
		s->oom_fd = fd;
		if (epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			s->oom_fd = -1;
		}
	}
}

/* Notifications whose count had not moved yet, looked at again by the monitor. */

static void oom_recheck_done(struct sbx *s)
{
	if (atomic_exchange(&s->oom_recheck_until, 0))
		atomic_fetch_sub(&s->eng->monitor.oom_rechecks, 1);
}

static void unwatch_oom(struct sbx *s)
{
	oom_recheck_done(s);
	if (s->oom_fd < 0)
		return;
	epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_DEL, s->oom_fd, NULL);
	close(s->oom_fd);
	s->oom_fd = -1;
}

/* Pollers of events are woken when oom_kills has moved, so the read they make
 * next shows it (s->lock held). True when it has. */
static bool oom_count(struct sbx *s)
{
	uint64_t n;
	cg_oom_kills(&s->vm.cg, &n);
	if (n == s->oom_seen)
		return false;
	s->oom_seen = n;
	log_info("sandbox %s: the OOM killer acted in it (oom_kills %" PRIu64 ")", s->node.name, n);
	atomic_fetch_add(&s->generation, 1);
	engine_notify(s->eng, s->node.id);
	return true;
}

/* The OOM notification: v2's memory.events changed (the kill already
 * counted), or v1's eventfd, which fires when the cgroup runs out of memory,
 * before the killer has picked and counted its victim; then the count is
 * looked at again every few milliseconds for a second. */
static void on_oom(struct sbx *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->oom_fd >= 0) {
		cg_oom_ack(s->oom_fd, s->oom_pri);
		if (!oom_count(s) && !atomic_load(&s->oom_recheck_until)) {
			atomic_store(&s->oom_recheck_until, now_usec() + 1000000);
			atomic_fetch_add(&s->eng->monitor.oom_rechecks, 1);
		}
	}
	pthread_mutex_unlock(&s->lock);
}

static void oom_recheck(struct sbx *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t until = atomic_load(&s->oom_recheck_until);
	if (until && (s->oom_fd < 0 || oom_count(s) || now_usec() >= until))
		oom_recheck_done(s);
	pthread_mutex_unlock(&s->lock);
}

/* The monitor's reference goes on the monitor thread, after the batch of
 * events it is handling: an event of this sandbox that epoll_wait returned
 * before its fds left the set (a stopper settled the exit on its own thread)
 * must still find it alive. */
static __thread bool on_monitor; /* per thread: is this the monitor (there is one per engine) */

static void monitor_put(struct sbx *s)
{
	struct engine *eng = s->eng;
	if (on_monitor) {
		reg_put(&s->node);
		return;
	}
	pthread_mutex_lock(&eng->monitor.puts_lock);
	if (eng->monitor.nputs == eng->monitor.puts_cap) {
		size_t cap = eng->monitor.puts_cap ? eng->monitor.puts_cap * 2 : 16;
		struct sbx **p = realloc(eng->monitor.puts, cap * sizeof(*p));
		if (p) {
			eng->monitor.puts = p;
			eng->monitor.puts_cap = cap;
		}
	}
	bool queued = eng->monitor.nputs < eng->monitor.puts_cap;
	if (queued)
		eng->monitor.puts[eng->monitor.nputs++] = s;
	pthread_mutex_unlock(&eng->monitor.puts_lock);
	if (!queued) { /* no memory: leak the sandbox rather than free it under the monitor */
		log_err("sandbox %s: out of memory; its memory is kept", s->node.name);
		return;
	}
	uint64_t one = 1;
	if (write(eng->monitor.wake_fd, &one, sizeof(one)) < 0)
		log_warn("cannot wake the monitor: %s", strerror(errno));
}

/* On the monitor thread, between batches. */
static void monitor_puts_drain(struct engine *eng)
{
	pthread_mutex_lock(&eng->monitor.puts_lock);
	struct sbx **l = eng->monitor.puts;
	size_t n = eng->monitor.nputs;
	eng->monitor.puts = NULL;
	eng->monitor.nputs = eng->monitor.puts_cap = 0;
	pthread_mutex_unlock(&eng->monitor.puts_lock);
	for (size_t i = 0; i < n; i++)
		reg_put(&l[i]->node);
	free(l);
}

/* init is gone: collect it, settle everything that ran in it (s->lock held).
 * Drops the monitor's reference; the caller holds another. */
static void handle_exit_locked(struct sbx *s)
{
	int code, prev = atomic_load(&s->state);
	uint64_t oom_kills;
	cg_oom_kills(&s->vm.cg, &oom_kills);
	if (s->vm.ctl_fd >= 0)
		epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_DEL, s->vm.ctl_fd, NULL);
	epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_DEL, s->vm.pidfd, NULL);
	unwatch_oom(s);
	struct err why = {0};
	s->ops->reap(&s->vm, &code, &why);
	s->exit_code = code;
	bool user = strcmp(s->reason, "user") == 0;
	if (prev != SBX_STOPPING)
		snprintf(s->reason, sizeof(s->reason), "%s",
			 user ? "user" : oom_kills ? "oom" : "exit");
	if (prev == SBX_STOPPING && s->t.stop_request_usec) {
		s->t.stop_usec = now_usec() - s->t.stop_request_usec;
		lat_add(s->eng, LAT_STOP, s->t.stop_usec);
	}
	s->deadline_usec = 0;
	s->monitored = false;
	sbx_exec_fail_all(s, 137);
	sbx_warm_drop(s);
	sbx_jobs_ended(s, strcmp(s->reason, "timeout") == 0 ? "timeout" : "signal");
	if (prev != SBX_STOPPING && !user && why.msg[0]) {
		sbx_fail(s, why.code, why.msg); /* it crashed: failed, with the reason in error */
		sbx_set_state(s, SBX_FAILED, SBX_EV_CRASHED);
	} else if (prev == SBX_STOPPING && strcmp(s->reason, "standby") == 0 && code == 0) {
		sbx_set_state(s, SBX_STANDBY, SBX_EV_SAVED);
	} else {
		sbx_set_state(s, SBX_STOPPED, SBX_EV_EXITED);
	}
	/* A removal's state dir goes to the trash next (a failed one writes it
	 * then; a daemon that dies first finds init gone: stopped). */
	if (!s->removing)
		journal_write(s);
	log_info("sandbox %s: %s (%s, exit code %d)", s->node.name,
		 sbx_state_name(atomic_load(&s->state)), s->reason, code);
	if (s->pool && s->eng->lifecycle.member_ended)
		s->eng->lifecycle.member_ended(s);
	monitor_put(s);
}

/* Whether an event of the monitor's is about the init it watches (s->lock
 * held): one that epoll_wait returned before a stopper settled that init's
 * exit on its own thread can come after a start spawned the next init,
 * which is not watched until it is ready (its handles are the start's). */
static bool monitor_current(const struct sbx *s)
{
	return s->monitored && s->vm.pidfd >= 0;
}

static void on_exit_of_init(struct sbx *s)
{
	pthread_mutex_lock(&s->lock);
	/* Stale, or not this init's exit (the pidfd is readable once it ended). */
	if (!monitor_current(s) || vmm_pidfd_wait(s->vm.pidfd, 0) != 1) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (s->stop_busy) {
		/* A stopper is using the backend's handles: it settles the exit itself. */
		epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_DEL, s->vm.pidfd, NULL);
		s->exit_pending = true;
		pthread_mutex_unlock(&s->lock);
		return;
	}
	reg_tryget(&s->node); /* keep it alive past the monitor's own reference */
	handle_exit_locked(s);
	pthread_mutex_unlock(&s->lock);
	sbx_put(s);
}

static void on_init_message(struct sbx *s)
{
	struct vmm_event ev;
	pthread_mutex_lock(&s->lock);
	if (!monitor_current(s) || s->vm.ctl_fd < 0) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->ops->event(&s->vm, &ev);
	if (ev.kind == VMM_EV_EXEC_PID)
		sbx_warm_reported(s, ev.warm);
	if ((ev.kind == VMM_EV_EXEC_EXIT || ev.kind == VMM_EV_EXEC_PID) && sbx_job_event(s, &ev))
		;
	else if (ev.kind == VMM_EV_EXEC_EXIT)
		sbx_exec_exited(s, ev.exec_id, ev.exit_code);
	else if (ev.kind == VMM_EV_WARM_WANTED && !s->warm_rearmed) {
		/* Said once, by an init that had one when this daemon connected:
		 * more would only make the sandbox's init cost us pipes. */
		s->warm_rearmed = true;
		sbx_warm_arm(s);
	}
	else if (ev.kind == VMM_EV_HANGUP)
		epoll_ctl(s->eng->monitor.epfd, EPOLL_CTL_DEL, s->vm.ctl_fd, NULL);
	pthread_mutex_unlock(&s->lock);
}

struct expired {
	struct sbx *list[64], *jobs[64], *cmds[64], *ooms[64];
	int n, njobs, ncmds, nooms;
	bool check_jobs;
};

/* Under the registry's read lock: pins what needs work, done after it. */
static int collect_expired(struct reg_node *n, void *arg)
{
	struct expired *x = arg;
	struct sbx *s = caa_container_of(n, struct sbx, node);
	int st = atomic_load(&s->state);
	if (s->deadline_usec && now_usec() >= s->deadline_usec &&
	    (st == SBX_RUNNING || st == SBX_PAUSED) && x->n < 64 && reg_tryget(n))
		x->list[x->n++] = s;
	/* s->jobs read unlocked: only a hint, sbx_jobs_bound looks again under the lock. */
	if (x->check_jobs && st == SBX_RUNNING && s->jobs && x->njobs < 64 && reg_tryget(n))
		x->jobs[x->njobs++] = s;
	/* Read unlocked too: sbx_cmds_expire looks again under the lock. */
	uint64_t cmd_deadline = s->cmd_deadline_usec;
	if (cmd_deadline && now_usec() >= cmd_deadline && x->ncmds < 64 && reg_tryget(n))
		x->cmds[x->ncmds++] = s;
	if (atomic_load(&s->oom_recheck_until) && x->nooms < 64 && reg_tryget(n))
		x->ooms[x->nooms++] = s;
	return 0;
}

/* Commands (exec, jobs) past their timeout= are killed. */
static void sbx_cmds_expire(struct sbx *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t now = now_usec(), a = sbx_execs_expire(s, now), b = sbx_jobs_expire(s, now);
	s->cmd_deadline_usec = !a ? b : !b ? a : a < b ? a : b;
	pthread_mutex_unlock(&s->lock);
}

static void timeout_job(void *arg)
{
	struct sbx *s = arg;
	struct err e = {0};
	log_info("sandbox %s: timeout reached, stopping", s->node.name);
	if (sbx_stop(s, 10, "timeout", &e) < 0 && e.code != -EBUSY) {
		pthread_mutex_lock(&s->lock);
		sbx_fail(s, e.code, e.msg);
		pthread_mutex_unlock(&s->lock);
	}
	sbx_put(s);
}

static void *monitor_main(void *arg)
{
	struct engine *eng = arg;
	engine_thread_online();
	on_monitor = true;
	uint64_t last_jobs_check = 0;
	while (!atomic_load(&eng->monitor.quit)) {
		struct epoll_event evs[32];
		monitor_puts_drain(eng);
		int n = epoll_wait(eng->monitor.epfd, evs, 32, atomic_load(&eng->monitor.oom_rechecks) ? 2 : 500);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == 0) { /* eng->monitor.wake_fd: taken, so it fires again */
				uint64_t v;
				if (read(eng->monitor.wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_warn("monitor: eng->monitor.wake_fd: %s", strerror(errno));
				continue;
			}
			if (evs[i].data.u64 == TAG_OUTPUT) {
				sbx_jobs_watch_drain(eng);
				continue;
			}
			struct sbx *s = (struct sbx *)(uintptr_t)(evs[i].data.u64 & ~TAGS);
			if (evs[i].data.u64 & TAG_CTL)
				on_init_message(s);
			else if (evs[i].data.u64 & TAG_OOM)
				on_oom(s);
		}
		/* Exits after messages, so an exec's last report is read before its init is reaped. */
		for (int i = 0; i < n; i++)
			if (evs[i].data.u64 && evs[i].data.u64 != TAG_OUTPUT &&
			    !(evs[i].data.u64 & TAGS))
				on_exit_of_init((struct sbx *)(uintptr_t)evs[i].data.u64);
		struct expired x = {.n = 0, .njobs = 0, .ncmds = 0, .nooms = 0};
		x.check_jobs = now_usec() - last_jobs_check > 1000000;
		if (x.check_jobs)
			last_jobs_check = now_usec();
		reg_foreach(eng->reg, collect_expired, &x);
		for (int i = 0; i < x.njobs; i++) {
			sbx_jobs_bound(x.jobs[i]);
			sbx_put(x.jobs[i]);
		}
		for (int i = 0; i < x.ncmds; i++) {
			sbx_cmds_expire(x.cmds[i]);
			sbx_put(x.cmds[i]);
		}
		for (int i = 0; i < x.nooms; i++) {
			oom_recheck(x.ooms[i]);
			sbx_put(x.ooms[i]);
		}
		for (int i = 0; i < x.n; i++) {
			pthread_mutex_lock(&x.list[i]->lock);
			x.list[i]->deadline_usec = 0; /* one stop per deadline */
			pthread_mutex_unlock(&x.list[i]->lock);
			if (pool_submit(eng, timeout_job, x.list[i]) < 0)
				sbx_put(x.list[i]);
		}
	}
	monitor_puts_drain(eng);
	reg_thread_offline();
	return NULL;
}

int monitor_start(struct engine *eng)
{
	eng->monitor.epfd = epoll_create1(EPOLL_CLOEXEC);
	eng->monitor.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (eng->monitor.epfd < 0 || eng->monitor.wake_fd < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
	epoll_ctl(eng->monitor.epfd, EPOLL_CTL_ADD, eng->monitor.wake_fd, &ev);
	int r = sbx_jobs_watch_start(eng, eng->monitor.epfd, TAG_OUTPUT);
	if (r < 0)
		log_warn("no inotify (%s): poll on a job's output reports it readable at once",
			 strerror(-r));
	return -pthread_create(&eng->monitor.thread, NULL, monitor_main, eng);
}

void monitor_stop(struct engine *eng)
{
	atomic_store(&eng->monitor.quit, true);
	uint64_t one = 1;
	if (write(eng->monitor.wake_fd, &one, sizeof(one)) < 0)
		log_warn("cannot wake the monitor: %s", strerror(errno));
	pthread_join(eng->monitor.thread, NULL);
}
