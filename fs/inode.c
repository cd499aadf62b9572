/* The inode scheme of the tree, as one table of ranges: root is 1, top-level
 * file i is 2+i, pools/ 0x800, images/ 0x900 (+1+i its file i), warm pool P
 * 0x10000+16P (+1+i its file i), image I 2^62+16I (+1+i its file i); sandbox
 * id N owns N<<20 .. (N<<20)+2^20: +0 its directory, +1+i its file i, +0x100
 * snapshots/, +0x200 jobs/, +0x1000+seq a snapshot, +0x80000+16J job J (+1+i
 * its file i). Ids are never reused, so a stale number resolves to ENOENT and
 * forget has nothing to free. The bounds of the ids are engine/ids.h's. */
#include "inode.h"

#include <errno.h>
#include <string.h>

#include "../engine/ids.h"

#define SUB_SNAPS 0x100u
#define SUB_JOBS 0x200u
#define SUB_SNAP 0x1000u
#define SUB_JOB 0x80000u
#define INO_POOLS_NR 0x800u
#define INO_IMAGES_NR 0x900u
#define INO_POOL_BASE 0x10000u
#define INO_IMAGE_BASE (1ull << 62)

/* Each range ends before the next begins (the unit test walks the edges). */
_Static_assert(2 + INO_TOP_FILES_MAX <= INO_POOLS_NR, "top-level files overlap pools/");
_Static_assert(INO_IMAGES_NR + 1 + INO_OBJ_FILES_MAX <= INO_POOL_BASE, "images/ overlaps the pools");
_Static_assert(INO_POOL_BASE + ((uint64_t)WARM_POOL_ID_MAX << 4) + 15 < (1u << INO_SBX_SHIFT),
	       "pool ids overflow the top level's range");
_Static_assert(1 + INO_SBX_FILES_MAX <= SUB_SNAPS, "sandbox files overlap snapshots/");
_Static_assert(SUB_SNAP + SBX_SNAP_SEQ_MAX < SUB_JOB, "snapshot numbers overflow into the jobs");
_Static_assert(SUB_JOB + ((uint64_t)SBX_JOB_ID_MAX << 4) + 15 < (1u << INO_SBX_SHIFT),
	       "job ids overflow the sandbox's range");
_Static_assert(((SBX_ID_MAX + 1) << INO_SBX_SHIFT) <= INO_IMAGE_BASE,
	       "sandbox ids overflow into the images");
_Static_assert(((uint64_t)IMAGE_ID_MAX << 4) + 15 < INO_IMAGE_BASE, "image ids overflow 2^64");

const struct ino_range ino_ranges[INO_NKINDS] = {
	[INO_ROOT] = {"root", false, 1, 0, 0, 1},
	[INO_TOP_FILE] = {"top-level file", false, 2, 0, 0, INO_TOP_FILES_MAX},
	[INO_POOLS] = {"pools/", false, INO_POOLS_NR, 0, 0, 1},
	[INO_POOL] = {"pool", false, INO_POOL_BASE, 4, WARM_POOL_ID_MAX, 1},
	[INO_POOL_FILE] = {"pool file", false, INO_POOL_BASE + 1, 4, WARM_POOL_ID_MAX,
			   INO_OBJ_FILES_MAX},
	[INO_IMAGES] = {"images/", false, INO_IMAGES_NR, 0, 0, 1},
	[INO_IMAGES_FILE] = {"images/ file", false, INO_IMAGES_NR + 1, 0, 0, INO_OBJ_FILES_MAX},
	[INO_IMAGE] = {"image", false, INO_IMAGE_BASE, 4, IMAGE_ID_MAX, 1},
	[INO_IMAGE_FILE] = {"image file", false, INO_IMAGE_BASE + 1, 4, IMAGE_ID_MAX,
			    INO_OBJ_FILES_MAX},
	[INO_SBX] = {"sandbox", true, 0, 0, 0, 1},
	[INO_SBX_FILE] = {"sandbox file", true, 1, 0, 0, INO_SBX_FILES_MAX},
	[INO_SNAPS] = {"snapshots/", true, SUB_SNAPS, 0, 0, 1},
	[INO_SNAP] = {"snapshot", true, SUB_SNAP, 0, SBX_SNAP_SEQ_MAX, 1},
	[INO_JOBS] = {"jobs/", true, SUB_JOBS, 0, 0, 1},
	[INO_JOB] = {"job", true, SUB_JOB, 4, SBX_JOB_ID_MAX, 1},
	[INO_JOB_FILE] = {"job file", true, SUB_JOB + 1, 4, SBX_JOB_ID_MAX, INO_OBJ_FILES_MAX},
};

uint64_t ino_encode(const struct ino_node *n)
{
	if ((unsigned)n->kind >= INO_NKINDS)
		return 0;
	const struct ino_range *r = &ino_ranges[n->kind];
	bool obj_ok = r->obj_max ? n->obj >= 1 && n->obj <= r->obj_max : n->obj == 0;
	bool sbx_ok = r->in_sbx ? n->sbx >= 1 && n->sbx <= SBX_ID_MAX : n->sbx == 0;
	if (!obj_ok || !sbx_ok || n->file >= r->slots)
		return 0;
	uint64_t block = r->in_sbx ? n->sbx << INO_SBX_SHIFT : 0;
	return block + r->base + ((uint64_t)n->obj << r->shift) + n->file;
}

/* Is x (relative to its block) a node of range r? Fills obj and file. */
static bool in_range(const struct ino_range *r, uint64_t x, struct ino_node *n)
{
	if (x < r->base)
		return false;
	uint64_t off = x - r->base, obj = r->obj_max ? off >> r->shift : 0;
	uint64_t file = off - (obj << r->shift);
	if ((r->obj_max && (obj < 1 || obj > r->obj_max)) || file >= r->slots)
		return false;
	n->obj = (uint32_t)obj;
	n->file = (uint32_t)file;
	return true;
}

int ino_decode(uint64_t ino, struct ino_node *n)
{
	uint64_t id = ino >> INO_SBX_SHIFT;
	bool in_sbx = id >= 1 && id <= SBX_ID_MAX;
	uint64_t x = in_sbx ? ino & ((1u << INO_SBX_SHIFT) - 1) : ino;
	memset(n, 0, sizeof(*n));
	for (int k = 0; k < INO_NKINDS; k++) {
		if (ino_ranges[k].in_sbx != in_sbx || !in_range(&ino_ranges[k], x, n))
			continue;
		n->kind = (enum ino_kind)k;
		n->sbx = in_sbx ? id : 0;
		return 0;
	}
	memset(n, 0, sizeof(*n));
	return -ENOENT;
}
