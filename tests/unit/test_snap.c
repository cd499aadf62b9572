/* The snapshot engine's reference counts (engine/snap.c): a layer in
 * STATE/layers lives while a sandbox stacks on it or a named snapshot holds
 * it, and goes with its last user; rmdir of a snapshot (or the source's
 * removal) never takes a layer a child still stacks on. Snapshots come from
 * journal records (snap_journal_load), as after a restart, and a child holds
 * its chain as sbx_commit makes it hold it (sbx_layers_get): nothing is
 * mounted and no checkpoint runs. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../engine/context.h"
#include "../../engine/journal.h"
#include "../../engine/layers.h"
#include "../../engine/lifecycle.h"
#include "../../engine/sandbox.h"
#include "../../engine/snap.h"
#include "unit.h"

/* The engine under test (engine_new; started piece by piece below). */
static struct engine *eng;

static char layers[PATH_MAX];

static bool layer_exists(const char *id)
{
	char p[PATH_MAX + 64];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", layers, id);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A layer as a checkpoint leaves it: a directory with files. */
static void make_layer(const char *id)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s/etc", layers, id);
	CHECK(mkdir_p(p, 0755) == 0);
	snprintf(p, sizeof(p), "%s/%s/etc/hostname", layers, id);
	CHECK(write_file_atomic(p, "a\n", 2, false) == 0);
}

static void set_lowers(struct sbx_config *c, const char *const *ids, int n)
{
	c->nlowers = n;
	for (int i = 0; i < n; i++)
		snprintf(c->lowers[i], sizeof(c->lowers[i]), "%s", ids[i]);
}

static struct sbx *new_sbx(const char *name, const char *const *lowers, int n)
{
	struct sbx_config c;
	ctl_config_defaults(&c, "ns", false);
	set_lowers(&c, lowers, n);
	struct sbx *s = sbx_alloc(eng, name, &c);
	CHECK(s != NULL);
	if (!s)
		return NULL;
	CHECK(mkdir_p(s->vm.dir, 0700) == 0); /* where a snapshot's change is journaled */
	sbx_layers_get(s->eng, &s->cfg);
	return s;
}

/* A sandbox goes: its snapshots, then its chain (sbx_remove_locked). */
static void remove_sbx(struct sbx *s)
{
	pthread_mutex_lock(&s->lock);
	snap_drop_all(s);
	sbx_layers_put(s->eng, &s->cfg);
	pthread_mutex_unlock(&s->lock);
	sbx_put(s);
}

/* Snapshots as a journal names them, loaded with their references. */
static void load_snap(struct sbx *s, const char *name, const char *const *lowers, int n)
{
	struct journal_snap js;
	memset(&js, 0, sizeof(js));
	snprintf(js.name, sizeof(js.name), "%s", name);
	js.created_wall_usec = 1700000000000000ull;
	js.nlowers = n;
	for (int i = 0; i < n; i++)
		snprintf(js.lowers[i], sizeof(js.lowers[i]), "%s", lowers[i]);
	pthread_mutex_lock(&s->lock);
	snap_journal_load(s, &js, 1);
	pthread_mutex_unlock(&s->lock);
}

/* Each get is one reference; the last put removes the directory. */
static void test_layer_counts(void)
{
	make_layer("Lc");
	layer_get(eng, "Lc");
	layer_get(eng, "Lc");
	layer_put(eng, "Lc");
	CHECK(layer_exists("Lc"));
	layer_put(eng, "Lc");
	CHECK(!layer_exists("Lc"));
	/* Counting starts again from nothing: a new user, a new count. */
	make_layer("Lc");
	layer_get(eng, "Lc");
	layer_put(eng, "Lc");
	CHECK(!layer_exists("Lc"));
}

/* A put of a layer nobody counted (a journal naming one twice too many, a
 * layer of another daemon) removes nothing. */
static void test_uncounted_put(void)
{
	make_layer("Lu");
	layer_put(eng, "Lu");
	CHECK(layer_exists("Lu"));
	layer_get(eng, "Lu");
	layer_put(eng, "Lu");
	layer_put(eng, "Lu"); /* one too many */
	CHECK(!layer_exists("Lu"));
}

/* rmdir of a snapshot a child stacks on: the snapshot goes at once, its
 * layers stay until the child goes too; the source's own chain stays with
 * the source. */
static void test_snapshot_shared_by_child(void)
{
	static const char *const base[] = {"Lbase"};
	static const char *const snap[] = {"Ls1", "Lbase"};
	make_layer("Lbase");
	make_layer("Ls1");
	struct sbx *src = new_sbx("src", base, 1);
	if (!src)
		return;
	load_snap(src, "s1", snap, 2);
	uint32_t seq = 0;
	CHECK(sbx_snapshot_lookup(src, "s1", &seq) == 0 && seq == 1);
	CHECK(sbx_snapshot_exists(src, seq));

	/* fork NEW from=s1: the child stacks on the snapshot's chain. */
	struct sbx *kid = new_sbx("kid", snap, 2);
	if (!kid)
		return;
	CHECK(sbx_snapshot_remove(src, "s1") == 0);
	CHECK(!sbx_snapshot_exists(src, seq));
	CHECK(sbx_snapshot_lookup(src, "s1", &seq) == -ENOENT);
	CHECK(layer_exists("Ls1") && layer_exists("Lbase"));
	/* Gone is gone: a second rmdir is ENOENT, with a sentence. */
	CHECK(sbx_snapshot_remove(src, "s1") == -ENOENT);
	CHECK(strcmp(src->error, "no such snapshot") == 0);

	remove_sbx(kid);
	CHECK(!layer_exists("Ls1"));
	CHECK(layer_exists("Lbase")); /* the source stacks on it */
	remove_sbx(src);
	CHECK(!layer_exists("Lbase"));
}

/* The source goes first, snapshots and all: its children keep every layer
 * they stack on; each goes with the last child. */
static void test_source_removed_first(void)
{
	static const char *const base[] = {"Lb2"};
	static const char *const snap[] = {"Ls2", "Lb2"};
	static const char *const fork2[] = {"Lf2", "Lb2"};
	make_layer("Lb2");
	make_layer("Ls2");
	make_layer("Lf2");
	struct sbx *src = new_sbx("src2", base, 1);
	if (!src)
		return;
	load_snap(src, "s2", snap, 2);
	struct sbx *a = new_sbx("a", snap, 2), *b = new_sbx("b", snap, 2);
	struct sbx *c = new_sbx("c", fork2, 2); /* a fork without from= */
	if (!a || !b || !c)
		return;
	remove_sbx(src);
	CHECK(layer_exists("Ls2") && layer_exists("Lb2") && layer_exists("Lf2"));
	remove_sbx(a);
	CHECK(layer_exists("Ls2"));
	remove_sbx(b);
	CHECK(!layer_exists("Ls2"));
	CHECK(layer_exists("Lb2") && layer_exists("Lf2"));
	remove_sbx(c);
	CHECK(!layer_exists("Lf2") && !layer_exists("Lb2"));
}

/* Two snapshots on one layer chain, and a flattened chain: each holder is
 * one reference; the journal lists the snapshots as loaded. */
static void test_two_snapshots_and_flat(void)
{
	static const char *const chain[] = {"Lt", "Lt0"};
	make_layer("Lt");
	make_layer("Lt0");
	make_layer("Ft");
	struct sbx *src = new_sbx("src3", chain + 1, 1);
	if (!src)
		return;
	load_snap(src, "x", chain, 2);
	load_snap(src, "y", chain, 2);
	pthread_mutex_lock(&src->lock);
	json_t *j = snap_journal_json(src);
	pthread_mutex_unlock(&src->lock);
	CHECK(j && json_array_size(j) == 2);
	json_decref(j);
	uint32_t sx = 0, sy = 0;
	CHECK(sbx_snapshot_lookup(src, "x", &sx) == 0 && sbx_snapshot_lookup(src, "y", &sy) == 0);
	CHECK(sx != sy);
	/* Its chain flattened (flatten_job): the flat layer is the sandbox's too. */
	layer_get(eng, "Ft");
	pthread_mutex_lock(&src->lock);
	snprintf(src->cfg.flat, sizeof(src->cfg.flat), "Ft");
	pthread_mutex_unlock(&src->lock);
	CHECK(sbx_snapshot_remove(src, "x") == 0);
	CHECK(layer_exists("Lt"));
	CHECK(sbx_snapshot_remove(src, "y") == 0);
	CHECK(!layer_exists("Lt"));
	CHECK(layer_exists("Lt0") && layer_exists("Ft"));
	remove_sbx(src);
	CHECK(!layer_exists("Lt0") && !layer_exists("Ft"));
}

int main(void)
{
	char tmp[] = "/tmp/sbx-unit-snap.XXXXXX";
	CHECK(mkdtemp(tmp) != NULL);
	eng = engine_new();
	CHECK(eng != NULL);
	snprintf(eng->o.state_dir, sizeof(eng->o.state_dir), "%s", tmp);
	snprintf(eng->sandboxes_dir, sizeof(eng->sandboxes_dir), "%s/sandboxes", tmp);
	struct vmm_host h;
	memset(&h, 0, sizeof(h));
	snprintf(h.layers_dir, sizeof(h.layers_dir), "%s/layers", tmp);
	snprintf(layers, sizeof(layers), "%s", h.layers_dir);
	vmm_host_set(&h);
	/* snap_init makes STATE/layers and removes a copy a dead daemon left. */
	char left[PATH_MAX + 16];
	snprintf(left, sizeof(left), "%s/L9.tmp/etc", layers);
	CHECK(mkdir_p(left, 0755) == 0);
	CHECK(snap_init(eng) == 0);
	CHECK(!layer_exists("L9.tmp"));
	engine_thread_online();

	RUN(test_layer_counts);
	RUN(test_uncounted_put);
	RUN(test_snapshot_shared_by_child);
	RUN(test_source_removed_first);
	RUN(test_two_snapshots_and_flat);

	urcu_memb_barrier();
	reg_thread_offline();
	rm_rf(tmp);
	UNIT_DONE("snap");
}
