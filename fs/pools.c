/* Warm pools (/sbx/pools/NAME/): the directory of pools (mkdir makes one,
 * rmdir discards it) and the family of a pool's files. */
#include "node.h"

static int pool_fam_pin(const struct ino_node *n, struct fsx_obj *o)
{
	o->pool = warm_pool_get(o->eng, n->obj);
	return o->pool ? 0 : -ENOENT;
}

static void pool_fam_unpin(struct fsx_obj *o) { warm_pool_put(o->pool); }

static uint64_t pool_fam_created(const struct fsx_obj *o)
{
	return warm_pool_created_wall_usec(o->pool);
}

static int pool_fam_show(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b)
{
	return nd->f->pool.show(o->pool, b);
}

static int pool_fam_write(const struct fsx_node *nd, struct fsx_obj *o, const char *buf, size_t len)
{
	return nd->f->pool.write(o->pool, buf, len);
}

const struct fsx_family fsx_pool_family = {
	.pin = pool_fam_pin, .unpin = pool_fam_unpin, .created_usec = pool_fam_created,
	.show = pool_fam_show, .write = pool_fam_write,
};

static int pools_lookup(const struct ino_node *dir, struct fsx_obj *o, const char *name,
			struct ino_node *c)
{
	(void)dir;
	uint32_t id = warm_pool_lookup(o->eng, name);
	if (!id)
		return -ENOENT;
	*c = (struct ino_node){.kind = INO_POOL, .obj = id};
	return 0;
}

static int pools_fill(const struct ino_node *dir, struct fsx_obj *o, struct fsx_dir *d)
{
	char(*names)[64];
	uint32_t *ids;
	size_t n;
	int r = warm_pool_list(o->eng, &names, &ids, &n);
	return r < 0 ? r : fsx_dir_add_list(d, dir, INO_POOL, names, ids, n);
}

static int pools_mkdir(const struct ino_node *dir, struct fsx_obj *o, const char *name,
		       struct ino_node *c)
{
	(void)dir;
	uint32_t id = 0;
	int r = warm_pool_mkdir(o->eng, name, &id);
	*c = (struct ino_node){.kind = INO_POOL, .obj = id};
	return r;
}

static int pools_rmdir(const struct ino_node *dir, struct fsx_obj *o, const char *name)
{
	(void)dir;
	return warm_pool_rmdir(o->eng, name);
}

const struct fsx_dir_ops fsx_pools_dir = {
	.lookup = pools_lookup, .fill = pools_fill, .mkdir = pools_mkdir, .rmdir = pools_rmdir,
};
