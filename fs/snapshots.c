/* A sandbox's snapshots (/sbx/NAME/snapshots/S/): named checkpoints that
 * mkdir takes and rmdir drops; each a directory of its own, empty. */
#include "node.h"

static bool snap_exists(const struct ino_node *n, struct fsx_obj *o)
{
	return sbx_snapshot_exists(o->sbx, n->obj);
}

const struct fsx_family fsx_snap_family = {
	.pin = fsx_sbx_pin, .unpin = fsx_sbx_unpin, .exists = snap_exists,
	.created_usec = fsx_sbx_created_usec,
};

static int snaps_lookup(const struct ino_node *dir, struct fsx_obj *o, const char *name,
			struct ino_node *c)
{
	uint32_t seq;
	if (sbx_snapshot_lookup(o->sbx, name, &seq) < 0)
		return -ENOENT;
	*c = (struct ino_node){.kind = INO_SNAP, .sbx = dir->sbx, .obj = seq};
	return 0;
}

static int snaps_fill(const struct ino_node *dir, struct fsx_obj *o, struct fsx_dir *d)
{
	char(*names)[64];
	uint32_t *seqs;
	size_t n;
	int r = sbx_snapshot_list(o->sbx, &names, &seqs, &n);
	return r < 0 ? r : fsx_dir_add_list(d, dir, INO_SNAP, names, seqs, n);
}

static int snaps_mkdir(const struct ino_node *dir, struct fsx_obj *o, const char *name,
		       struct ino_node *c)
{
	uint32_t seq = 0;
	int r = sbx_snapshot_create(o->sbx, name, &seq);
	*c = (struct ino_node){.kind = INO_SNAP, .sbx = dir->sbx, .obj = seq};
	return r;
}

static int snaps_rmdir(const struct ino_node *dir, struct fsx_obj *o, const char *name)
{
	(void)dir;
	return sbx_snapshot_remove(o->sbx, name);
}

/* A snapshot's copy takes as long as the sandbox's files make it. */
const struct fsx_dir_ops fsx_snaps_dir = {
	.lookup = snaps_lookup, .fill = snaps_fill, .mkdir = snaps_mkdir, .rmdir = snaps_rmdir,
	.own_thread = true,
};
