/* The top level (/sbx): its files show and take what the engine says of
 * every sandbox (and /sbx/images/ctl, a top-level command), and the root
 * directory holds the sandboxes by name: mkdir makes one, rmdir removes it. */
#include "node.h"

static uint64_t top_fam_generation(const struct fsx_obj *o)
{
	return engine_generation(o->eng);
}

static int top_fam_show(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b)
{
	return nd->f->top.show(o->eng, b);
}

static int top_fam_write(const struct fsx_node *nd, struct fsx_obj *o, const char *buf, size_t len)
{
	return nd->f->top.write(o->eng, buf, len);
}

const struct fsx_family fsx_top_family = {
	.generation = top_fam_generation, .show = top_fam_show, .write = top_fam_write,
};

static int root_lookup(const struct ino_node *dir, struct fsx_obj *o, const char *name,
		       struct ino_node *c)
{
	(void)dir;
	struct sbx *s = sbx_get(o->eng, name);
	if (!s)
		return -ENOENT;
	*c = (struct ino_node){.kind = INO_SBX, .sbx = sbx_id(s)};
	sbx_put(s);
	return 0;
}

static int root_fill(const struct ino_node *dir, struct fsx_obj *o, struct fsx_dir *d)
{
	(void)dir;
	char(*names)[64];
	uint64_t *ids;
	size_t n;
	int r = engine_list(o->eng, &names, &ids, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++)
		r = fsx_dir_add(d, names[i], &(struct ino_node){.kind = INO_SBX, .sbx = ids[i]});
	free(names);
	free(ids);
	return r;
}

static int root_mkdir(const struct ino_node *dir, struct fsx_obj *o, const char *name,
		      struct ino_node *c)
{
	(void)dir;
	struct sbx *s = NULL;
	int r = engine_mkdir(o->eng, name, &s);
	if (r == 0)
		*c = (struct ino_node){.kind = INO_SBX, .sbx = sbx_id(s)};
	if (s)
		sbx_put(s);
	return r;
}

static int root_rmdir(const struct ino_node *dir, struct fsx_obj *o, const char *name)
{
	(void)dir;
	return engine_rmdir(o->eng, name);
}

const struct fsx_dir_ops fsx_root_dir = {
	.lookup = root_lookup, .fill = root_fill, .mkdir = root_mkdir, .rmdir = root_rmdir,
};
