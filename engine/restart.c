/* Start-up: every journal in STATE/sandboxes read back, and what still runs
 * re-adopted (its jobs, network, snapshots and monitor watch); what a dead
 * daemon left half-made removed. Above lifecycle.c: it calls every part. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "jobs.h"
#include "journal.h"
#include "lifecycle.h"
#include "netcfg.h"
#include "layers.h"
#include "snap.h"
#include "warm.h"

/* A sandbox made from a journal that journal_parse checked. */
static struct sbx *journal_adopt_rec(struct engine *eng, const char *name,
				     const struct journal_rec *rec)
{
	struct sbx *s = vmm_find(rec->cfg.backend) ? sbx_alloc(eng, name, &rec->cfg) : NULL;
	if (!s) {
		engine_note_error(eng, "sandbox '%s' uses backend '%s', which this build lacks; skipped",
				  name, rec->cfg.backend);
		return NULL;
	}
	sbx_state_init(s, rec->state);
	s->vm.pid = rec->pid;
	s->vm.pid_start = rec->pid_start;
	snprintf(s->reason, sizeof(s->reason), "%s", rec->reason);
	snprintf(s->error, sizeof(s->error), "%s", rec->error);
	s->exit_code = rec->exit_code;
	s->t.starts = rec->starts;
	/* A cgroup the journal names is one of this daemon's (its tag), or the
	 * sandbox keeps its own: a journal must not make the daemon kill or
	 * remove another daemon's or the host's cgroup. */
	size_t tl = strlen(vmm_host()->tag);
	if (!rec->cgroup[0] ||
	    (strncmp(rec->cgroup, vmm_host()->tag, tl) == 0 && rec->cgroup[tl] == '-'))
		snprintf(s->vm.cg.leaf, sizeof(s->vm.cg.leaf), "%s", rec->cgroup);
	else
		engine_note_error(eng, "sandbox '%s': its journal names cgroup '%s', which is not this "
				  "daemon's (%s-*); its own is used", name, rec->cgroup,
				  vmm_host()->tag);
#define COPY(f) s->t.f = rec->t.f;
	JOURNAL_TIME_FIELDS(COPY)
#undef COPY
	sbx_layers_get(s->eng, &s->cfg);
	snap_journal_load(s, rec->snaps, rec->nsnaps);
	/* Ids of this daemon's commands start past any an earlier one gave out. */
	s->next_exec_id = wall_usec();
	/* Its jobs and console are on its disk (disk=): mounted again after a
	 * reboot; still mounted after a daemon's restart. */
	struct err de = {0};
	if (vmm_disk_mount(&s->vm, &de) < 0)
		engine_note_error(eng, "sandbox '%s': its disk cannot be mounted: %s", name, de.msg);
	sbx_jobs_load(s);
	/* The same address as before: nobody else got it while the daemon was away. */
	struct err ne = {0};
	if (rec->cfg.net && rec->ip[0] && sbx_net_reserve(s, rec->ip, &ne) < 0) {
		engine_note_error(eng, "sandbox '%s': its address %s cannot be kept: %s", name, rec->ip,
				  ne.msg);
		s->cfg.net = false;
	}
	sbx_net_policy_load(s, rec->rules, rec->nrules);
	sbx_net_expose_load(s, rec->expose, rec->nexpose);
	return s;
}

/* Builds a sandbox from its journal; NULL (and a sentence in /sbx/error) if
 * the journal is unreadable or malformed: the sandbox is skipped, never
 * removed. */
static struct sbx *journal_read(struct engine *eng, const char *name)
{
	char path[PATH_MAX + 64];
	struct err e = {0};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/%s/sandbox.json", eng->sandboxes_dir, name);
	if (ctl_check_name(name, &e) < 0) {
		engine_note_error(eng, "state dir %s/%s is not a sandbox's (%s); sandbox '%s' skipped, "
				  "its files are kept", eng->sandboxes_dir, name, e.msg, name);
		return NULL;
	}
	if (journal_load_text(path, JOURNAL_MAX_BYTES, &text, &len, &e) < 0) {
		engine_note_error(eng, "journal %s is unreadable (%s); sandbox '%s' skipped, its files "
				  "are kept", path, e.msg, name);
		return NULL;
	}
	struct journal_rec rec;
	if (journal_parse(text, len, &rec, &e) < 0) {
		engine_note_error(eng, "journal %s is malformed (%s); sandbox '%s' skipped, its files "
				  "are kept", path, e.msg, name);
		return NULL;
	}
	struct sbx *s = journal_adopt_rec(eng, name, &rec);
	if (s && rec.member_name) { /* the claim's own journal, as it would have been */
		pthread_mutex_lock(&s->lock);
		journal_write(s);
		pthread_mutex_unlock(&s->lock);
	}
	journal_rec_free(&rec);
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
			sbx_set_state(s, SBX_RUNNING, SBX_EV_READOPTED);
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
	if (!s->vm.cg.leaf[0])
		snprintf(s->vm.cg.leaf, sizeof(s->vm.cg.leaf), "%s-%s", vmm_host()->tag,
			 s->node.name);
	cg_destroy(&s->vm.cg);
	if (st == SBX_CREATING) {
		sbx_set_state(s, SBX_FAILED, SBX_EV_CUT_OFF);
		sbx_fail(s, -EIO, "the daemon stopped while this sandbox was being created");
	} else if (live) {
		sbx_set_state(s, SBX_STOPPED, SBX_EV_LOST);
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
static void remove_unfinished(struct engine *eng, const char *entry)
{
	char path[PATH_MAX + 256];
	if (strncmp(entry, SBX_NEW_PREFIX, strlen(SBX_NEW_PREFIX)) != 0)
		return;
	snprintf(path, sizeof(path), "%s/%s", eng->sandboxes_dir, entry);
	int r = rm_rf(path);
	if (r < 0)
		log_warn("cannot remove %s, a create cut off by the daemon's end: %s", path,
			 strerror(-r));
	else
		log_info("removed %s: the create of '%s' was cut off by the daemon's end before "
			 "it was journaled", path, entry + strlen(SBX_NEW_PREFIX));
}

int journal_load_all(struct engine *eng)
{
	DIR *d = opendir(eng->sandboxes_dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.') {
			if (!warm_leftover(eng, de->d_name))
				remove_unfinished(eng, de->d_name);
			continue;
		}
		struct sbx *s = journal_read(eng, de->d_name);
		if (!s)
			continue;
		if (reg_add(eng->reg, &s->node) < 0) {
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
