/* Engine start-up and shutdown, lookups, the top-level ctl, and the ring of
 * recent failures shown in /sbx/error. */
#define _GNU_SOURCE
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "images.h"
#include "jobs.h"
#include "journal.h"
#include "lifecycle.h"
#include "netcfg.h"
#include "output.h"
#include "pool.h"
#include "sandbox.h"
#include "snap.h"
#include "stats.h"
#include "warm.h"

struct engine *engine_new(void)
{
	struct engine *eng = calloc(1, sizeof(*eng));
	if (!eng)
		return NULL;
	pthread_mutex_init(&eng->errs.lock, NULL);
	pthread_mutex_init(&eng->pool.lock, NULL);
	pthread_cond_init(&eng->pool.cond, NULL);
	pthread_mutex_init(&eng->commit.lock, NULL);
	pthread_cond_init(&eng->commit.cond, NULL);
	pthread_mutex_init(&eng->layers.lock, NULL);
	pthread_mutex_init(&eng->monitor.puts_lock, NULL);
	eng->monitor.epfd = eng->monitor.wake_fd = -1;
	pthread_mutex_init(&eng->jobs.lock, NULL);
	eng->jobs.watch_fd = -1;
	pthread_mutex_init(&eng->net.pol_lock, NULL);
	eng->commit.fd = -1;
	if (images_init(eng) < 0 || stats_init(eng) < 0 || metrics_init(eng) < 0) {
		free(eng->images);
		free(eng->stats);
		free(eng->metrics);
		free(eng);
		return NULL;
	}
	snap_attach(eng);
	warm_init(eng); /* after images_init: it gives images its rmdir check */
	return eng;
}

/* The parts' sections of a sandbox's journal (journal.h). */
const struct journal_section journal_sections[] = {
	{"snapshots", snap_journal_json},
	{"net", sbx_net_journal},
	{NULL, NULL},
};

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

void engine_thread_online(void) { reg_thread_online(); }

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

int engine_list(struct engine *eng, char (**names)[64], uint64_t **ids, size_t *n)
{
	struct list_acc a = {0};
	reg_foreach(eng->reg, list_one, &a);
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

int engine_ctl(struct engine *eng, const char *buf, size_t len)
{
	struct ctl_cmd cmd;
	struct err e = {0};
	int r = ctl_split(buf, len, &cmd, &e);
	if (r == 0) {
		if (strcmp(cmd.argv[0], "create") == 0)
			r = engine_create(eng, cmd.argc, cmd.argv, &e);
		else if (strcmp(cmd.argv[0], "remove") == 0)
			r = engine_remove(eng, cmd.argc, cmd.argv, &e);
		else
			r = err_set(&e, -EINVAL, "unknown command '%.64s' (create, remove)",
				    cmd.argv[0]);
	}
	if (r < 0)
		engine_note_error(eng, "ctl: %s", e.msg);
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

int engine_start(struct engine *eng, const struct engine_opts *o, struct err *e)
{
	eng->o = *o;
	atomic_store(&eng->next_id, 1);
	snprintf(eng->sandboxes_dir, sizeof(eng->sandboxes_dir), "%s/sandboxes", o->state_dir);
	if (strpbrk(eng->sandboxes_dir, ",:\\"))
		return err_set(e, -EINVAL, "state dir %s has a character overlayfs cannot take "
			       "(, : or \\)", o->state_dir);
	int r = mkdir_p(eng->sandboxes_dir, 0700);
	if (r < 0)
		return err_set(e, r, "cannot create %s: %s", eng->sandboxes_dir, strerror(-r));
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
	snprintf(h.sandboxes_dir, sizeof(h.sandboxes_dir), "%s", eng->sandboxes_dir);
	h.image_exists = image_exists;
	h.image_arg = eng;
	h.tap_ahead = engine_tap_ahead;
	h.veth_ahead = engine_veth_ahead;
	if ((r = snap_init(eng)) < 0)
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
	if ((r = engine_net_start(eng, e)) < 0)
		return r;
	eng->reg = reg_new();
	if (!eng->reg)
		return err_set(e, -ENOMEM, "cannot allocate the registry");
	engine_thread_online();
	/* Consoles and jobs' pipes drained into the state dir (output.h). */
	if ((r = out_pump_start(eng, sbx_job_pump)) < 0)
		log_warn("no output pump (%s): jobs write their files themselves and consoles "
			 "are not kept", strerror(-r));
	if ((r = monitor_start(eng)) < 0)
		return err_set(e, r, "cannot start the monitor thread");
	if ((r = journal_commit_start(eng)) < 0)
		return err_set(e, r, "cannot start the journal committer");
	if ((r = pool_start(eng, o->workers)) < 0)
		return err_set(e, r, "cannot start the worker pool");
	/* Before the journal: a sandbox's imported image resolves to its layers. */
	if ((r = images_start(eng)) < 0)
		return err_set(e, r, "cannot set up %s/imports: %s", o->state_dir, strerror(-r));
	r = journal_load_all(eng);
	if (r > 0)
		log_info("recovered %d sandbox(es) from %s", r, eng->sandboxes_dir);
	/* Now that every VM's disk is known: the root disks no VM, spare or
	 * saved machine can boot again (their image gone or changed). */
	vmm_root_disks_gc(NULL, true);
	if ((r = warm_start(eng)) < 0)
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

void engine_shutdown(struct engine *eng)
{
	if (eng->o.stop_on_exit) {
		struct sbx_pinned p;
		sbx_pin_all(eng, &p);
		for (size_t i = 0; i < p.n; i++) {
			struct err e = {0};
			sbx_stop(p.list[i], 0, "host", &e);
		}
		sbx_unpin_all(&p);
	}
	warm_quiesce(eng);
	images_quiesce(eng);
	out_pump_stop();
	pool_stop(eng);
	warm_stop(eng); /* members are never left running without a daemon */
	vmm_qemu_spares_end(); /* nor QEMUs started ahead for forks */
	vmm_trash_stop(); /* what rmdir and discards left to remove, removed */
	monitor_stop(eng);
	journal_commit_stop(eng);
	engine_net_stop(eng);
	cg_host_cleanup();
	log_info("engine stopped");
}
