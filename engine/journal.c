/* Persistence: each sandbox's state and config as JSON in
 * STATE/sandboxes/NAME/sandbox.json, replaced atomically on every
 * transition; read back at start-up to re-adopt what still runs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "sbx.h"

#define JOURNAL_VERSION 1

static json_t *config_json(const struct sbx *s)
{
	const struct sbx_config *c = &s->cfg;
	char created[64];
	time_t sec = (time_t)(c->created_wall_usec / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *lowers = json_array();
	for (int i = 0; i < c->nlowers; i++)
		json_array_append_new(lowers, json_string(c->lowers[i]));
	return json_pack("{s:s, s:s, s:s, s:I, s:f, s:I, s:b, s:I, s:I, s:I, s:o, s:s, s:I, s:o, s:i, "
			 "s:o}",
			 "name", s->node.name, "image", c->image, "backend", c->backend,
			 "memory", (json_int_t)c->memory_bytes, "cpus", c->cpu_millis / 1000.0,
			 "pids", (json_int_t)c->pids, "net", c->net,
			 "timeout", (json_int_t)c->timeout_sec, "joblog", (json_int_t)c->joblog_bytes,
			 "rate", (json_int_t)c->rate_bps,
			 "parent", c->parent[0] ? json_string(c->parent) : json_null(),
			 "created", created, "created_usec", (json_int_t)c->created_wall_usec,
			 "layers", lowers, "fork_generation", (int)c->fork_generation,
			 "flat", c->flat[0] ? json_string(c->flat) : json_null());
}

int sbx_config_json(const struct sbx *s, struct buf *b)
{
	json_t *j = config_json(s);
	if (!j)
		return -ENOMEM;
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	int r = buf_printf(b, "%s\n", text);
	free(text);
	return r;
}

/* The timings of stats, kept so a restarted daemon shows the same history. */
#define TIME_FIELDS(X)                                                                   \
	X(create_usec) X(create_queue_usec) X(create_rootfs_usec) X(create_cgroup_usec)  \
	X(create_spawn_usec) X(create_init_usec) X(create_journal_usec) X(stop_usec)     \
	X(create_net_usec) X(net_shaping_usec) X(fork_freeze_usec) X(fork_checkpoint_usec) \
	X(fork_restore_usec) X(fork_usec) X(restore_usec) X(standby_usec)

static json_t *times_json(const struct sbx_times *t)
{
	json_t *o = json_object();
#define PUT(f) json_object_set_new(o, #f, json_integer((json_int_t)t->f));
	TIME_FIELDS(PUT)
#undef PUT
	return o;
}

static void times_load(struct sbx_times *t, json_t *o)
{
	json_t *v;
#define GET(f)                                                  \
	if ((v = json_object_get(o, #f)) && json_is_integer(v)) \
		t->f = (uint64_t)json_integer_value(v);
	TIME_FIELDS(GET)
#undef GET
}

/* Called with s->lock held. */
int journal_write(struct sbx *s)
{
	return journal_write_in(s, s->vm.dir);
}

/* The journal into DIR (the state dir, or the hidden one sbx_commit makes it
 * in before it is renamed into place). Called with s->lock held. */
int journal_write_in(struct sbx *s, const char *dir)
{
	json_t *j = json_pack("{s:i, s:s, s:o, s:i, s:I, s:s, s:i, s:s, s:I}",
			      "version", JOURNAL_VERSION, "state", sbx_state_name(atomic_load(&s->state)),
			      "config", config_json(s), "pid", (int)s->vm.pid,
			      "pid_start", (json_int_t)s->vm.pid_start, "reason", s->reason,
			      "exit_code", s->exit_code, "error", s->error,
			      "starts", (json_int_t)s->t.starts);
	if (!j)
		return -ENOMEM;
	if (atomic_load(&s->state) == SBX_STOPPING)
		json_object_set_new(j, "state", json_string("stopping"));
	json_object_set_new(j, "snapshots", snap_journal_json(s));
	json_object_set_new(j, "net", sbx_net_journal(s));
	json_object_set_new(j, "times", times_json(&s->t));
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (!text)
		return -ENOMEM;
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/sandbox.json", dir);
	int r = write_file_atomic(path, text, strlen(text), false);
	free(text);
	if (r < 0)
		log_err("sandbox %s: cannot write %s: %s", s->node.name, path, strerror(-r));
	else
		journal_commit_soon();
	return r;
}

/* Group commit: a journal write is an atomic rename at once (a daemon crash
 * loses nothing, the page cache survives it); one syncfs a few ms later makes
 * every write of that window durable against power loss, off the create path. */
#define COMMIT_DELAY_USEC 5000
static pthread_mutex_t commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t commit_cond = PTHREAD_COND_INITIALIZER;
static bool commit_dirty, commit_quit;
static pthread_t commit_thread;
static int commit_fd = -1;

void journal_commit_soon(void)
{
	pthread_mutex_lock(&commit_lock);
	if (!commit_dirty) {
		commit_dirty = true;
		pthread_cond_signal(&commit_cond);
	}
	pthread_mutex_unlock(&commit_lock);
}

static void *commit_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&commit_lock);
	for (;;) {
		while (!commit_dirty && !commit_quit)
			pthread_cond_wait(&commit_cond, &commit_lock);
		if (!commit_dirty && commit_quit)
			break;
		pthread_mutex_unlock(&commit_lock);
		usleep(COMMIT_DELAY_USEC); /* gather the writes of a burst into one sync */
		pthread_mutex_lock(&commit_lock);
		commit_dirty = false;
		pthread_mutex_unlock(&commit_lock);
		if (syncfs(commit_fd) < 0)
			log_err("cannot sync the journal: %s", strerror(errno));
		pthread_mutex_lock(&commit_lock);
	}
	pthread_mutex_unlock(&commit_lock);
	return NULL;
}

int journal_commit_start(void)
{
	commit_fd = open(eng.sandboxes_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (commit_fd < 0)
		return -errno;
	return -pthread_create(&commit_thread, NULL, commit_main, NULL);
}

void journal_commit_stop(void)
{
	pthread_mutex_lock(&commit_lock);
	commit_quit = true;
	pthread_cond_signal(&commit_cond);
	pthread_mutex_unlock(&commit_lock);
	pthread_join(commit_thread, NULL);
	syncfs(commit_fd);
	close(commit_fd);
	commit_fd = -1;
}

static int state_from_name(const char *n)
{
	for (int i = 0; i < SBX_NSTATES; i++)
		if (strcmp(n, sbx_state_name(i)) == 0)
			return i;
	return strcmp(n, "stopping") == 0 ? SBX_STOPPING : -1;
}

/* Builds a sandbox from its journal; NULL (and a sentence in /sbx/error) if unreadable. */
static struct sbx *journal_read(const char *name)
{
	char path[PATH_MAX + 64];
	json_error_t je;
	snprintf(path, sizeof(path), "%s/%s/sandbox.json", eng.sandboxes_dir, name);
	json_t *j = json_load_file(path, 0, &je);
	if (!j) {
		engine_note_error("journal %s is unreadable (%s, line %d); sandbox '%s' skipped, its "
				  "files are kept", path, je.text, je.line, name);
		return NULL;
	}
	struct sbx_config c;
	ctl_config_defaults(&c, eng.o.backend, false);
	const char *state = NULL, *image = NULL, *backend = NULL, *reason = "-", *error = "";
	json_int_t mem = 0, pids = 0, timeout = 0, created = 0, pid = 0, pid_start = 0, starts = 0;
	json_int_t joblog = (json_int_t)c.joblog_bytes, rate = 0;
	json_t *netj = NULL;
	int exit_code = -1;
	double cpus = 1;
	json_t *parent = NULL, *layers = NULL, *snaps = NULL, *flat = NULL;
	int fork_gen = 0, net_on = 0;
	if (json_unpack_ex(j, &je, 0,
			   "{s:s, s:{s:s, s:s, s:I, s:F, s:I, s:b, s:I, s?I, s?I, s?o, s:I, s?o, s?i, s?o}, "
			   "s:I, s:I, s?s, s?i, s?s, s?I, s?o, s?o}",
			   "state", &state, "config", "image", &image, "backend", &backend, "memory", &mem,
			   "cpus", &cpus, "pids", &pids, "net", &net_on, "timeout", &timeout,
			   "joblog", &joblog, "rate", &rate,
			   "parent", &parent, "created_usec", &created, "layers", &layers,
			   "fork_generation", &fork_gen, "flat", &flat, "pid", &pid, "pid_start",
			   &pid_start, "reason", &reason, "exit_code", &exit_code, "error", &error,
			   "starts", &starts, "snapshots", &snaps, "net", &netj) < 0 ||
	    (layers && (!json_is_array(layers) || json_array_size(layers) > SBX_LOWERS_MAX)) ||
	    state_from_name(state) < 0 || ctl_check_name(name, NULL) < 0) {
		engine_note_error("journal %s is malformed (%s); sandbox '%s' skipped, its files "
				  "are kept", path, je.text, name);
		json_decref(j);
		return NULL;
	}
	snprintf(c.image, sizeof(c.image), "%s", image);
	snprintf(c.backend, sizeof(c.backend), "%s", backend);
	c.memory_bytes = (uint64_t)mem;
	c.cpu_millis = (uint32_t)(cpus * 1000 + 0.5);
	c.pids = (uint32_t)pids;
	c.timeout_sec = (uint32_t)timeout;
	c.joblog_bytes = (uint64_t)joblog;
	c.net = net_on;
	c.rate_bps = (uint64_t)rate;
	c.created_wall_usec = (uint64_t)created;
	if (json_is_string(parent))
		snprintf(c.parent, sizeof(c.parent), "%s", json_string_value(parent));
	c.fork_generation = (uint32_t)fork_gen;
	if (json_is_string(flat))
		snprintf(c.flat, sizeof(c.flat), "%s", json_string_value(flat));
	size_t li;
	json_t *lv;
	json_array_foreach(layers, li, lv) {
		snprintf(c.lowers[li], SBX_LAYER_ID_MAX, "%s", json_string_value(lv) ?: "");
		c.nlowers = (int)li + 1;
	}
	struct sbx *s = vmm_find(c.backend) ? sbx_alloc(name, &c) : NULL;
	if (!s) {
		engine_note_error("sandbox '%s' uses backend '%s', which this build lacks; skipped",
				  name, backend);
		json_decref(j);
		return NULL;
	}
	atomic_store(&s->state, state_from_name(state));
	s->vm.pid = (pid_t)pid;
	s->vm.pid_start = (uint64_t)pid_start;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	snprintf(s->error, sizeof(s->error), "%s", error);
	s->exit_code = exit_code;
	s->t.starts = (uint64_t)starts;
	json_t *times = json_object_get(j, "times");
	if (json_is_object(times))
		times_load(&s->t, times);
	for (int i = 0; i < c.nlowers; i++)
		layer_get(c.lowers[i]);
	if (c.flat[0])
		layer_get(c.flat);
	if (json_is_array(snaps))
		snap_journal_load(s, snaps);
	/* Ids of this daemon's commands start past any an earlier one gave out. */
	s->next_exec_id = wall_usec();
	sbx_jobs_load(s);
	/* The same address as before: nobody else got it while the daemon was away. */
	const char *ip = json_is_object(netj) ? json_string_value(json_object_get(netj, "ip")) : NULL;
	struct err ne = {0};
	if (c.net && ip && sbx_net_reserve(s, ip, &ne) < 0) {
		engine_note_error("sandbox '%s': its address %s cannot be kept: %s", name, ip, ne.msg);
		s->cfg.net = false;
	}
	sbx_net_policy_load(s, netj);
	json_decref(j);
	return s;
}

/* Settles a journaled sandbox: adopt it if its init still runs, else it is stopped. */
static void recover(struct sbx *s)
{
	struct err e = {0};
	int st = atomic_load(&s->state);
	bool live = st == SBX_RUNNING || st == SBX_PAUSED || st == SBX_STOPPING;
	if (live && s->ops->adopt(&s->vm, &e) == 0) {
		if (st == SBX_STOPPING)
			atomic_store(&s->state, SBX_RUNNING);
		/* A daemon that died in a fork's copy left it frozen: it was running. */
		if (st != SBX_PAUSED && s->ops->thaw(&s->vm, &e) < 0)
			log_warn("sandbox %s: cannot thaw it: %s", s->node.name, e.msg);
		log_info("sandbox %s: re-adopted (pid %d)", s->node.name, (int)s->vm.pid);
		monitor_watch(s);
		sbx_jobs_reattach(s);
		return;
	}
	/* Whatever is left of its cgroup (and any process in it: the daemon may have
	 * died between clone and journaling the pid) goes now. */
	snprintf(s->vm.cg.leaf, sizeof(s->vm.cg.leaf), "%s-%s", vmm_host()->tag, s->node.name);
	cg_destroy(&s->vm.cg);
	if (st == SBX_CREATING) {
		atomic_store(&s->state, SBX_FAILED);
		sbx_fail(s, -EIO, "the daemon stopped while this sandbox was being created");
	} else if (live) {
		atomic_store(&s->state, SBX_STOPPED);
		snprintf(s->reason, sizeof(s->reason), "host");
		log_info("sandbox %s: its processes ended while the daemon was away", s->node.name);
	}
	sbx_jobs_ended(s, "host"); /* jobs that outlived nothing: settled, not left running */
	s->vm.pid = 0;
	s->vm.pid_start = 0;
	journal_write(s);
}

/* A hidden `.new-NAME` dir is a create that a dead daemon cut off before its
 * state dir was renamed into place (sbx_commit): it holds at most a journal,
 * no client was told the sandbox exists, and NAME is free again. */
static void remove_unfinished(const char *entry)
{
	char path[PATH_MAX + 256];
	if (strncmp(entry, SBX_NEW_PREFIX, strlen(SBX_NEW_PREFIX)) != 0)
		return;
	snprintf(path, sizeof(path), "%s/%s", eng.sandboxes_dir, entry);
	int r = rm_rf(path);
	if (r < 0)
		log_warn("cannot remove %s, a create cut off by the daemon's end: %s", path,
			 strerror(-r));
	else
		log_info("removed %s: the create of '%s' was cut off by the daemon's end before "
			 "it was journaled", path, entry + strlen(SBX_NEW_PREFIX));
}

int journal_load_all(void)
{
	DIR *d = opendir(eng.sandboxes_dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.') {
			remove_unfinished(de->d_name);
			continue;
		}
		struct sbx *s = journal_read(de->d_name);
		if (!s)
			continue;
		if (reg_add(eng.reg, &s->node) < 0) {
			sbx_put(s);
			continue;
		}
		pthread_mutex_lock(&s->lock);
		recover(s);
		pthread_mutex_unlock(&s->lock);
		sbx_put(s);
		n++;
	}
	closedir(d);
	return n;
}
