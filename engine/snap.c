/* The snapshot engine for file-system fork: immutable layers in
 * STATE/layers/ID (counted by layers.c) and named snapshots. `fork`
 * takes one checkpoint of the source (frozen meanwhile) that serves every
 * child; children start in parallel on the worker pool. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "journal.h"
#include "lifecycle.h"
#include "netcfg.h"
#include "pool.h"
#include "layers.h"
#include "sandbox.h"
#include "snap.h"

#define FORK_MAX_CHILDREN 64
/* A chain this deep (layers under a sandbox's upper dir) is flattened in the
 * background into one layer, which the sandbox's later children stack on. */
#define FLATTEN_DEPTH 3

/* A named checkpoint: an immutable layer plus the chain it stacks on. */
struct sbx_snap {
	char name[SBX_NAME_MAX + 1];
	uint32_t seq; /* stable per sandbox, for inode numbers */
	char lowers[SBX_LOWERS_MAX][SBX_LAYER_ID_MAX]; /* [0] is its own layer */
	int nlowers;
	uint64_t created_wall_usec;
	struct sbx_snap *next;
};

void snap_attach(struct engine *eng)
{
	eng->lifecycle.fork = sbx_fork;
	eng->lifecycle.drop_snaps = snap_drop_all;
}

int snap_init(struct engine *eng)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/layers", eng->o.state_dir);
	int r = mkdir_p(dir, 0700);
	DIR *d = r == 0 ? opendir(dir) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) { /* a copy the last daemon did not finish */
		size_t n = strlen(de->d_name);
		char p[PATH_MAX + 256];
		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) {
			snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
			vmm_remove_tree(p);
		}
	}
	if (d)
		closedir(d);
	return r;
}

/* Background: src's chain (src->cfg.lowers, immutable layers) merged into
 * one new layer, bottom up, as overlayfs shows it; then src->cfg.flat names
 * it. src itself keeps its mounted chain; its later children get [new, flat]
 * instead of an ever deeper chain. */
static void flatten_job(void *arg)
{
	struct sbx *src = arg;
	char chain[SBX_LOWERS_MAX][SBX_LAYER_ID_MAX], id[SBX_LAYER_ID_MAX], dir[PATH_MAX],
		tmp[PATH_MAX + 8];
	pthread_mutex_lock(&src->lock);
	int n = src->cfg.nlowers;
	memcpy(chain, src->cfg.lowers, sizeof(chain));
	for (int i = 0; i < n; i++)
		layer_get(src->eng, chain[i]); /* held while we read them */
	pthread_mutex_unlock(&src->lock);

	uint64_t t0 = now_usec();
	struct err e = {0};
	snprintf(id, sizeof(id), "F%" PRIx64 "-%" PRIu64, wall_usec(),
		 atomic_fetch_add(&src->eng->layers.seq, 1));
	snprintf(dir, sizeof(dir), "%s/%s", vmm_host()->layers_dir, id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dir);
	int r = mkdir(tmp, 0755) < 0 ? err_set(&e, -errno, "mkdir %s: %s", tmp, strerror(errno)) : 0;
	for (int i = n - 1; i >= 0 && r == 0; i--) {
		char l[PATH_MAX];
		snprintf(l, sizeof(l), "%s/%s", vmm_host()->layers_dir, chain[i]);
		r = vmm_merge_layer(l, tmp, &e);
	}
	if (r == 0 && rename(tmp, dir) < 0)
		r = err_set(&e, -errno, "rename %s: %s", tmp, strerror(errno));
	for (int i = 0; i < n; i++)
		layer_put(src->eng, chain[i]);

	pthread_mutex_lock(&src->lock);
	src->flattening = false;
	if (r == 0 && !src->removing && !src->cfg.flat[0]) {
		layer_get(src->eng, id);
		snprintf(src->cfg.flat, sizeof(src->cfg.flat), "%s", id);
		journal_write(src);
		log_info("sandbox %s: its %d-layer chain flattened into %s in %" PRIu64 " us",
			 src->node.name, n, id, now_usec() - t0);
		r = 1;
	}
	pthread_mutex_unlock(&src->lock);
	if (r < 0)
		log_warn("sandbox %s: cannot flatten its layers: %s", src->node.name, e.msg);
	if (r <= 0) {
		vmm_remove_tree(tmp);
		vmm_remove_tree(dir);
	}
	sbx_put(src);
}

/* src->lock held. */
static void flatten_soon(struct sbx *src)
{
	if (src->flattening || src->cfg.flat[0] || !reg_tryget(&src->node))
		return;
	src->flattening = true;
	if (pool_submit(src->eng, flatten_job, src) < 0) {
		src->flattening = false;
		sbx_put(src);
	}
}

/* Checkpoints src (locked, running or paused) into a new layer; fills the
 * chain a child stacks on: the new layer, then src's own lowers. */
static int checkpoint(struct sbx *src, char lowers[][SBX_LAYER_ID_MAX], int *nlowers,
		      struct vmm_timing *t, struct err *e)
{
	int st = atomic_load(&src->state);
	if (st != SBX_RUNNING && st != SBX_PAUSED)
		return err_set(e, -EBUSY, "cannot checkpoint sandbox %s: it is %s", src->node.name,
			       sbx_state_name(st));
	if (!src->cfg.flat[0] && src->cfg.nlowers + 1 > SBX_LOWERS_MAX)
		return err_set(e, -EMLINK, "sandbox %s is a fork %d levels deep; at most %d are "
			       "supported", src->node.name, src->cfg.nlowers, SBX_LOWERS_MAX - 1);
	if (!src->ops->checkpoint)
		return err_set(e, -EOPNOTSUPP, "backend %s cannot checkpoint", src->cfg.backend);
	char id[SBX_LAYER_ID_MAX], dir[PATH_MAX];
	snprintf(id, sizeof(id), "L%" PRIx64 "-%" PRIu64, wall_usec(),
		 atomic_fetch_add(&src->eng->layers.seq, 1));
	snprintf(dir, sizeof(dir), "%s/%s", vmm_host()->layers_dir, id);
	/* A file-system checkpoint copies what the sandbox wrote, for as long as
	 * it made that take: it runs unlocked, so that readers of the sandbox
	 * (stats, jobs, exec's lookups) go on; whatever changes the sandbox
	 * waits for it in sbx_wait_settled. A machine's (live: QEMU's RAM, its
	 * size the spec's) keeps the lock. */
	bool live = src->ops->fork_mode && strcmp(src->ops->fork_mode, "live") == 0;
	if (!live) {
		src->checkpointing = true;
		pthread_mutex_unlock(&src->lock);
	}
	int r = src->ops->checkpoint(&src->vm, dir, st == SBX_PAUSED, t, e);
	if (!live) {
		pthread_mutex_lock(&src->lock);
		src->checkpointing = false;
		pthread_cond_broadcast(&src->cond);
	}
	if (r < 0)
		return r;
	snprintf(lowers[0], SBX_LAYER_ID_MAX, "%s", id);
	*nlowers = 1;
	if (live) {
		/* A machine snapshot is whole: its children need nothing under it. */
	} else if (src->cfg.flat[0]) {
		snprintf(lowers[1], SBX_LAYER_ID_MAX, "%s", src->cfg.flat);
		*nlowers = 2;
	} else {
		for (int i = 0; i < src->cfg.nlowers; i++)
			snprintf(lowers[i + 1], SBX_LAYER_ID_MAX, "%s", src->cfg.lowers[i]);
		*nlowers = src->cfg.nlowers + 1;
		if (src->cfg.nlowers >= FLATTEN_DEPTH)
			flatten_soon(src);
	}
	log_info("sandbox %s: checkpoint %s in %" PRIu64 " us (frozen %" PRIu64 " us)",
		 src->node.name, id, t->copy_usec, t->freeze_usec);
	return 0;
}

static struct sbx_snap *snap_find(struct sbx *s, const char *name)
{
	for (struct sbx_snap *p = s->snaps; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* fork NEW [NEW...] [from=SNAPSHOT]: all or nothing for the names. */
int sbx_fork(struct sbx *src, int argc, char **argv, struct err *e)
{
	const char *names[FORK_MAX_CHILDREN], *from = NULL;
	int n = 0, r;
	uint64_t t0 = now_usec();
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "from=", 5) == 0) {
			if (from || !argv[i][5])
				return err_set(e, -EINVAL, "usage: fork NEW [NEW...] [from=SNAPSHOT]");
			from = argv[i] + 5;
		} else if (strchr(argv[i], '=')) {
			return err_set(e, -EINVAL, "unknown fork option '%.64s'", argv[i]);
		} else if (n == FORK_MAX_CHILDREN) {
			return err_set(e, -EINVAL, "at most %d children in one fork", FORK_MAX_CHILDREN);
		} else {
			if ((r = ctl_check_name(argv[i], e)) < 0)
				return r;
			for (int j = 0; j < n; j++)
				if (strcmp(names[j], argv[i]) == 0)
					return err_set(e, -EINVAL, "'%s' is named twice", argv[i]);
			names[n++] = argv[i];
		}
	}
	if (n == 0)
		return err_set(e, -EINVAL, "usage: fork NEW [NEW...] [from=SNAPSHOT]");

	/* Reserve every name first: a taken one creates no child at all. */
	struct sbx *kids[FORK_MAX_CHILDREN];
	struct sbx_config c;
	pthread_mutex_lock(&src->lock);
	c = src->cfg;
	pthread_mutex_unlock(&src->lock);
	snprintf(c.parent, sizeof(c.parent), "%s", src->node.name);
	c.fork_generation++;
	c.nlowers = 0;
	c.flat[0] = '\0';
	for (int i = 0; i < n; i++) {
		if ((r = sbx_reserve(src->eng, names[i], &c, &kids[i], e)) < 0) {
			while (i--)
				sbx_unreserve(kids[i]);
			return r;
		}
		sbx_net_inherit(kids[i], src);
	}

	struct vmm_timing t = {.fork = true, .fork_children = (unsigned)n}; /* children start now */
	char lowers[SBX_LOWERS_MAX][SBX_LAYER_ID_MAX];
	int nlowers = 0;
	pthread_mutex_lock(&src->lock);
	if (from) {
		struct sbx_snap *sn = snap_find(src, from);
		if (!sn) {
			r = err_set(e, -ENOENT, "sandbox %s has no snapshot '%s'", src->node.name, from);
		} else {
			memcpy(lowers, sn->lowers, sizeof(lowers));
			nlowers = sn->nlowers;
			r = 0;
		}
	} else {
		sbx_wait_settled(src, SETTLE_TIMEOUT_SEC);
		r = checkpoint(src, lowers, &nlowers, &t, e);
	}
	pthread_mutex_unlock(&src->lock);
	if (r < 0) {
		for (int i = 0; i < n; i++)
			sbx_unreserve(kids[i]);
		return r;
	}

	/* A fresh layer has no user until the first child commits; hold it meanwhile. */
	layer_get(src->eng, lowers[0]);
	int made = 0;
	for (int i = 0; i < n; i++) {
		struct sbx *k = kids[i];
		memcpy(k->cfg.lowers, lowers, sizeof(lowers));
		k->cfg.nlowers = nlowers;
		k->vm.nlowers = nlowers;
		memcpy(k->vm.lowers, lowers, sizeof(k->vm.lowers));
		k->t.request_usec = t0;
		k->t.fork_freeze_usec = t.freeze_usec;
		k->t.fork_checkpoint_usec = t.copy_usec;
		k->t.fork_queued_usec = now_usec();
		struct err ke = {0};
		if (sbx_commit(k, &ke) < 0) {
			engine_note_error(src->eng, "fork %s -> %s: %s", src->node.name, names[i],
					  ke.msg);
			if (made == 0)
				*e = ke;
			continue;
		}
		made++;
		sbx_put(k);
	}
	layer_put(src->eng, lowers[0]);
	if (made == 0)
		return e->code ? e->code : -EIO;
	log_info("sandbox %s: forked %d child(ren)%s%s", src->node.name, made,
		 from ? " from snapshot " : "", from ? from : "");
	return 0;
}

int sbx_snapshot_create(struct sbx *s, const char *name, uint32_t *seq)
{
	struct err e = {0};
	int r = ctl_check_name(name, &e);
	struct sbx_snap *sn = NULL;
	pthread_mutex_lock(&s->lock);
	sbx_wait_settled(s, SETTLE_TIMEOUT_SEC); /* a snapshot under way adds its name first */
	if (r == 0 && snap_find(s, name))
		r = err_set(&e, -EEXIST, "sandbox %s already has a snapshot '%s'", s->node.name, name);
	if (r == 0 && s->next_snap_seq >= SBX_SNAP_SEQ_MAX)
		r = err_set(&e, -ENOSPC, "sandbox %s has made %u snapshots, the most one sandbox can "
			    "(snapshot numbers are never reused)", s->node.name, SBX_SNAP_SEQ_MAX);
	if (r == 0 && !(sn = calloc(1, sizeof(*sn))))
		r = err_set(&e, -ENOMEM, "out of memory");
	if (r == 0) {
		struct vmm_timing t = {0};
		r = checkpoint(s, sn->lowers, &sn->nlowers, &t, &e);
	}
	if (r == 0) {
		snprintf(sn->name, sizeof(sn->name), "%s", name);
		sn->seq = ++s->next_snap_seq;
		sn->created_wall_usec = wall_usec();
		for (int i = 0; i < sn->nlowers; i++)
			layer_get(s->eng, sn->lowers[i]);
		sn->next = s->snaps;
		s->snaps = sn;
		*seq = sn->seq;
		journal_write(s);
		sn = NULL;
	} else {
		sbx_fail(s, r, e.msg);
	}
	pthread_mutex_unlock(&s->lock);
	free(sn);
	return r;
}

static void snap_free(struct engine *eng, struct sbx_snap *sn)
{
	for (int i = 0; i < sn->nlowers; i++)
		layer_put(eng, sn->lowers[i]);
	free(sn);
}

int sbx_snapshot_remove(struct sbx *s, const char *name)
{
	int r = -ENOENT;
	pthread_mutex_lock(&s->lock);
	for (struct sbx_snap **p = &s->snaps; *p; p = &(*p)->next) {
		if (strcmp((*p)->name, name) != 0)
			continue;
		struct sbx_snap *sn = *p;
		*p = sn->next;
		snap_free(s->eng, sn); /* layers live on while children stack on them */
		journal_write(s);
		r = 0;
		break;
	}
	if (r < 0)
		sbx_fail(s, r, "no such snapshot");
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Called with s->lock held, when the sandbox goes. */
void snap_drop_all(struct sbx *s)
{
	while (s->snaps) {
		struct sbx_snap *sn = s->snaps;
		s->snaps = sn->next;
		snap_free(s->eng, sn);
	}
}

int sbx_snapshot_list(struct sbx *s, char (**names)[64], uint32_t **seqs, size_t *n)
{
	size_t cnt = 0, i = 0;
	pthread_mutex_lock(&s->lock);
	for (struct sbx_snap *p = s->snaps; p; p = p->next)
		cnt++;
	*names = calloc(cnt ? cnt : 1, sizeof(**names));
	*seqs = calloc(cnt ? cnt : 1, sizeof(**seqs));
	if (!*names || !*seqs) {
		pthread_mutex_unlock(&s->lock);
		free(*names);
		free(*seqs);
		return -ENOMEM;
	}
	for (struct sbx_snap *p = s->snaps; p; p = p->next, i++) {
		snprintf((*names)[i], 64, "%s", p->name);
		(*seqs)[i] = p->seq;
	}
	pthread_mutex_unlock(&s->lock);
	*n = cnt;
	return 0;
}

int sbx_snapshot_lookup(struct sbx *s, const char *name, uint32_t *seq)
{
	pthread_mutex_lock(&s->lock);
	struct sbx_snap *sn = snap_find(s, name);
	if (sn)
		*seq = sn->seq;
	pthread_mutex_unlock(&s->lock);
	return sn ? 0 : -ENOENT;
}

bool sbx_snapshot_exists(struct sbx *s, uint32_t seq)
{
	bool found = false;
	pthread_mutex_lock(&s->lock);
	for (struct sbx_snap *p = s->snaps; p && !found; p = p->next)
		found = p->seq == seq;
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* Journal: the snapshots of a sandbox as a JSON array (s->lock held). */
json_t *snap_journal_json(struct sbx *s)
{
	json_t *arr = json_array();
	for (struct sbx_snap *p = s->snaps; p && arr; p = p->next) {
		json_t *l = json_array();
		for (int i = 0; i < p->nlowers; i++)
			json_array_append_new(l, json_string(p->lowers[i]));
		json_array_append_new(arr, json_pack("{s:s, s:I, s:o}", "name", p->name, "created_usec",
						     (json_int_t)p->created_wall_usec, "lowers", l));
	}
	return arr;
}

/* Restart: rebuilds snapshots from the journal (checked by journal_parse) and
 * takes their layer references. */
void snap_journal_load(struct sbx *s, const struct journal_snap *snaps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sbx_snap *sn = calloc(1, sizeof(*sn));
		if (!sn)
			return;
		snprintf(sn->name, sizeof(sn->name), "%s", snaps[i].name);
		sn->seq = ++s->next_snap_seq;
		sn->created_wall_usec = snaps[i].created_wall_usec;
		for (int j = 0; j < snaps[i].nlowers; j++) {
			snprintf(sn->lowers[j], SBX_LAYER_ID_MAX, "%s", snaps[i].lowers[j]);
			layer_get(s->eng, sn->lowers[j]);
		}
		sn->nlowers = snaps[i].nlowers;
		sn->next = s->snaps;
		s->snaps = sn;
	}
}
