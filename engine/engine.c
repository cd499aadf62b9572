/* Engine start-up and shutdown, lookups, the top-level ctl, and the ring of
 * recent failures shown in /sbx/error. */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "images.h"
#include "output.h"
#include "sbx.h"

struct engine eng;

#define ERR_RING 64
static struct {
	pthread_mutex_t lock;
	char lines[ERR_RING][SBX_ERRMSG_MAX + 64];
	uint64_t total;
} errs = {.lock = PTHREAD_MUTEX_INITIALIZER};
static _Atomic uint64_t generation;

static void (*watch_fn)(uint64_t id);
static void (*job_watch_fn)(uint64_t id, uint32_t n);

void engine_set_watch(void (*fn)(uint64_t id)) { watch_fn = fn; }
void engine_set_job_watch(void (*fn)(uint64_t id, uint32_t n)) { job_watch_fn = fn; }

void engine_notify(uint64_t id)
{
	if (watch_fn)
		watch_fn(id);
}

void engine_notify_job(uint64_t id, uint32_t n)
{
	if (job_watch_fn)
		job_watch_fn(id, n);
}

void engine_bump_generation(void)
{
	atomic_fetch_add(&generation, 1);
	engine_notify(0);
}

uint64_t engine_generation(void) { return atomic_load(&generation); }
uint64_t sbx_generation(struct sbx *s) { return atomic_load(&s->generation); }

int sbx_root_link(struct sbx *s, struct buf *b)
{
	int st = atomic_load(&s->state);
	pid_t pid = s->vm.pid;
	if (!(s->ops->caps & VMM_CAP_HOST_ROOT))
		return -EOPNOTSUPP;
	if (st != SBX_RUNNING && st != SBX_PAUSED && st != SBX_STOPPING)
		return -ENOENT; /* nothing to see: its root exists only while it runs */
	return buf_printf(b, "/proc/%d/root", (int)pid);
}

static __thread char last_error[SBX_ERRMSG_MAX + 64];

void engine_error_clear(void) { last_error[0] = '\0'; }
const char *engine_error_last(void) { return last_error; }
void engine_error_keep(const char *line) { snprintf(last_error, sizeof(last_error), "%s", line); }

void engine_note_error(const char *fmt, ...)
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
	pthread_mutex_lock(&errs.lock);
	snprintf(errs.lines[errs.total % ERR_RING], sizeof(errs.lines[0]), "%s", line);
	errs.total++;
	pthread_mutex_unlock(&errs.lock);
}

int engine_show_error(struct buf *b)
{
	int r = 0;
	pthread_mutex_lock(&errs.lock);
	uint64_t first = errs.total > ERR_RING ? errs.total - ERR_RING : 0;
	for (uint64_t i = first; i < errs.total && r == 0; i++)
		r = buf_printf(b, "%s\n", errs.lines[i % ERR_RING]);
	pthread_mutex_unlock(&errs.lock);
	return r;
}

int engine_show_events(struct buf *b)
{
	return buf_printf(b, "generation %" PRIu64 "\n", atomic_load(&generation));
}

void engine_thread_online(void) { reg_thread_online(); }

struct sbx *sbx_get(const char *name)
{
	struct reg_node *n = reg_get_name(eng.reg, name);
	return n ? caa_container_of(n, struct sbx, node) : NULL;
}

struct sbx *sbx_get_id(uint64_t id)
{
	struct reg_node *n = reg_get_id(eng.reg, id);
	return n ? caa_container_of(n, struct sbx, node) : NULL;
}

void sbx_put(struct sbx *s) { reg_put(&s->node); }
uint64_t sbx_id(const struct sbx *s) { return s->node.id; }
const char *sbx_name(const struct sbx *s) { return s->node.name; }
uint64_t sbx_created_wall_usec(const struct sbx *s) { return s->cfg.created_wall_usec; }

struct list_acc {
	char (*names)[64];
	uint64_t *ids;
	size_t n, cap;
	int err;
};

static int list_one(struct reg_node *n, void *arg)
{
	struct list_acc *a = arg;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		void *nn = realloc(a->names, cap * sizeof(*a->names));
		if (nn)
			a->names = nn;
		void *ni = realloc(a->ids, cap * sizeof(*a->ids));
		if (ni)
			a->ids = ni;
		if (!nn || !ni) {
			a->err = -ENOMEM;
			return 1;
		}
		a->cap = cap;
	}
	snprintf(a->names[a->n], 64, "%s", n->name);
	a->ids[a->n++] = n->id;
	return 0;
}

int engine_list(char (**names)[64], uint64_t **ids, size_t *n)
{
	struct list_acc a = {0};
	reg_foreach(eng.reg, list_one, &a);
	if (a.err) {
		free(a.names);
		free(a.ids);
		return a.err;
	}
	*names = a.names;
	*ids = a.ids;
	*n = a.n;
	return 0;
}

int engine_ctl(const char *buf, size_t len)
{
	struct ctl_cmd cmd;
	struct err e = {0};
	int r = ctl_split(buf, len, &cmd, &e);
	if (r == 0) {
		if (strcmp(cmd.argv[0], "create") == 0)
			r = engine_create(cmd.argc, cmd.argv, &e);
		else
			r = err_set(&e, -EINVAL, "unknown command '%.64s' (create)", cmd.argv[0]);
	}
	if (r < 0)
		engine_note_error("ctl: %s", e.msg);
	return r;
}

static int instance_tag(const char *state_dir, char *out, size_t cap)
{
	uint32_t h = 2166136261u;
	for (const char *p = state_dir; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 16777619u;
	}
	return snprintf(out, cap, "%08x", h);
}

int engine_probe(const struct engine_opts *o, struct err *e)
{
	return vmm_qemu_accel_init(o->accel[0] ? o->accel : "auto", e);
}

int engine_start(const struct engine_opts *o, struct err *e)
{
	eng.o = *o;
	atomic_store(&eng.next_id, 1);
	snprintf(eng.sandboxes_dir, sizeof(eng.sandboxes_dir), "%s/sandboxes", o->state_dir);
	if (strpbrk(eng.sandboxes_dir, ",:\\"))
		return err_set(e, -EINVAL, "state dir %s has a character overlayfs cannot take "
			       "(, : or \\)", o->state_dir);
	int r = mkdir_p(eng.sandboxes_dir, 0700);
	if (r < 0)
		return err_set(e, r, "cannot create %s: %s", eng.sandboxes_dir, strerror(-r));
	struct vmm_host h;
	memset(&h, 0, sizeof(h));
	snprintf(h.init_path, sizeof(h.init_path), "%s", o->init_path);
	instance_tag(o->state_dir, h.tag, sizeof(h.tag));
	snprintf(h.layers_dir, sizeof(h.layers_dir), "%s/layers", o->state_dir);
	snprintf(h.disks_dir, sizeof(h.disks_dir), "%s/disks", o->state_dir);
	snprintf(h.image_layers_dir, sizeof(h.image_layers_dir), "%s/imports/layers", o->state_dir);
	snprintf(h.spares_dir, sizeof(h.spares_dir), "%s/spares", o->state_dir);
	snprintf(h.vm_images_dir, sizeof(h.vm_images_dir), "%s/vmimages", o->state_dir);
	h.qemu_spares = o->qemu_spares;
	snprintf(h.sandboxes_dir, sizeof(h.sandboxes_dir), "%s", eng.sandboxes_dir);
	h.image_exists = image_exists;
	if ((r = snap_init()) < 0)
		return err_set(e, r, "cannot create %s: %s", h.layers_dir, strerror(-r));
	r = vmm_host_init(&h, e);
	if (r < 0)
		return r;
	/* Before the journal: a pool member a dead daemon left goes to the trash. */
	char trash[PATH_MAX + 16];
	snprintf(trash, sizeof(trash), "%s/trash", o->state_dir);
	if ((r = vmm_trash_start(trash, e)) < 0)
		return r;
	if (!vmm_find(o->backend))
		return err_set(e, -EINVAL, "backend %s is not in this build", o->backend);
	if ((r = engine_net_start(e)) < 0)
		return r;
	eng.reg = reg_new();
	if (!eng.reg)
		return err_set(e, -ENOMEM, "cannot allocate the registry");
	engine_thread_online();
	/* Consoles and jobs' pipes drained into the state dir (output.h). */
	if ((r = out_pump_start()) < 0)
		log_warn("no output pump (%s): jobs write their files themselves and consoles "
			 "are not kept", strerror(-r));
	if ((r = monitor_start()) < 0)
		return err_set(e, r, "cannot start the monitor thread");
	if ((r = journal_commit_start()) < 0)
		return err_set(e, r, "cannot start the journal committer");
	if ((r = pool_start(o->workers)) < 0)
		return err_set(e, r, "cannot start the worker pool");
	/* Before the journal: a sandbox's imported image resolves to its layers. */
	if ((r = images_start()) < 0)
		return err_set(e, r, "cannot set up %s/imports: %s", o->state_dir, strerror(-r));
	r = journal_load_all();
	if (r > 0)
		log_info("recovered %d sandbox(es) from %s", r, eng.sandboxes_dir);
	/* Now that every VM's disk is known: the root disks no VM, spare or
	 * saved machine can boot again (their image gone or changed). */
	vmm_root_disks_gc(NULL, true);
	if ((r = warm_start()) < 0)
		log_warn("warm pools are not kept (%s): a restart forgets them", strerror(-r));
	log_info("engine ready: backend %s, cgroup v%d, %d workers", o->backend, cg_version(),
		 o->workers);
	for (const struct vmm_ops *const *b = vmm_all(); *b; b++) { /* why a VM runs under TCG */
		struct buf facts = {0};
		if ((*b)->describe && (*b)->describe(&facts) == 0 && facts.len)
			for (char *save, *l = strtok_r(facts.data, "\n", &save); l;
			     l = strtok_r(NULL, "\n", &save))
				log_info("%s: %s", (*b)->name, l);
		buf_free(&facts);
	}
	return 0;
}

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

void sbx_pin_all(struct sbx_pinned *p)
{
	memset(p, 0, sizeof(*p));
	reg_foreach(eng.reg, pin_one, p);
}

void sbx_unpin_all(struct sbx_pinned *p)
{
	for (size_t i = 0; i < p->n; i++)
		sbx_put(p->list[i]);
	free(p->list);
	memset(p, 0, sizeof(*p));
}

void engine_shutdown(void)
{
	if (eng.o.stop_on_exit) {
		struct sbx_pinned p;
		sbx_pin_all(&p);
		for (size_t i = 0; i < p.n; i++) {
			struct err e = {0};
			sbx_stop(p.list[i], 0, "host", &e);
		}
		sbx_unpin_all(&p);
	}
	warm_quiesce();
	images_quiesce();
	out_pump_stop();
	pool_stop();
	warm_stop(); /* members are never left running without a daemon */
	vmm_qemu_spares_end(); /* nor QEMUs started ahead for forks */
	vmm_trash_stop(); /* what rmdir and discards left to remove, removed */
	monitor_stop();
	journal_commit_stop();
	engine_net_stop();
	cg_host_cleanup();
	log_info("engine stopped");
}
