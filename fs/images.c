/* Images (/sbx/images/NAME/): the directory of images (made by `import`
 * written to its ctl, removed by rmdir) and the family of an image's files. */
#include "node.h"

static int image_fam_pin(const struct ino_node *n, struct fsx_obj *o)
{
	o->image = image_get(o->eng, n->obj);
	return o->image ? 0 : -ENOENT;
}

static void image_fam_unpin(struct fsx_obj *o) { image_put(o->image); }

static uint64_t image_fam_created(const struct fsx_obj *o)
{
	return image_created_wall_usec(o->image);
}

static int image_fam_show(const struct fsx_node *nd, struct fsx_obj *o, struct buf *b)
{
	return nd->f->image.show(o->image, b);
}

const struct fsx_family fsx_image_family = {
	.pin = image_fam_pin, .unpin = image_fam_unpin, .created_usec = image_fam_created, .show = image_fam_show,
};

static int images_lookup(const struct ino_node *dir, struct fsx_obj *o, const char *name,
			 struct ino_node *c)
{
	(void)dir;
	uint32_t id = image_lookup(o->eng, name);
	if (!id)
		return -ENOENT;
	*c = (struct ino_node){.kind = INO_IMAGE, .obj = id};
	return 0;
}

static int images_fill(const struct ino_node *dir, struct fsx_obj *o, struct fsx_dir *d)
{
	char(*names)[64];
	uint32_t *ids;
	size_t n;
	int r = image_list(o->eng, &names, &ids, &n);
	return r < 0 ? r : fsx_dir_add_list(d, dir, INO_IMAGE, names, ids, n);
}

static int images_mkdir(const struct ino_node *dir, struct fsx_obj *o, const char *name,
			struct ino_node *c)
{
	(void)dir;
	(void)c;
	engine_note_error(o->eng, "mkdir images/%s: images are made by `import NAME SOURCE` "
			  "written to images/ctl", name);
	return -EPERM;
}

static int images_rmdir(const struct ino_node *dir, struct fsx_obj *o, const char *name)
{
	(void)dir;
	return image_rmdir(o->eng, name);
}

const struct fsx_dir_ops fsx_images_dir = {
	.lookup = images_lookup, .fill = images_fill, .mkdir = images_mkdir, .rmdir = images_rmdir,
};
