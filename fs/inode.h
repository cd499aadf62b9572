/* The inode scheme: a node's number is computed from what the node is (its
 * kind, its sandbox, its snapshot, job, pool or image, its file), never
 * allocated, and read back the same way. Knows no FUSE and no engine object. */
#ifndef SBX_FSX_INODE_H
#define SBX_FSX_INODE_H

#include <stdbool.h>
#include <stdint.h>

/* Every kind of node of the tree, directories included. */
enum ino_kind {
	INO_ROOT,        /* /sbx */
	INO_TOP_FILE,    /* /sbx/ctl, stats, ... */
	INO_POOLS,       /* /sbx/pools/ */
	INO_POOL,        /* /sbx/pools/P/ */
	INO_POOL_FILE,   /* /sbx/pools/P/spec, ... */
	INO_IMAGES,      /* /sbx/images/ */
	INO_IMAGES_FILE, /* /sbx/images/ctl */
	INO_IMAGE,       /* /sbx/images/I/ */
	INO_IMAGE_FILE,  /* /sbx/images/I/config, ... */
	INO_SBX,         /* /sbx/NAME/ */
	INO_SBX_FILE,    /* /sbx/NAME/ctl, status, ... */
	INO_SNAPS,       /* /sbx/NAME/snapshots/ */
	INO_SNAP,        /* /sbx/NAME/snapshots/S/ */
	INO_JOBS,        /* /sbx/NAME/jobs/ */
	INO_JOB,         /* /sbx/NAME/jobs/N/ */
	INO_JOB_FILE,    /* /sbx/NAME/jobs/N/stdout, ... */
	INO_NKINDS
};

/* A node, as its number says. */
struct ino_node {
	enum ino_kind kind;
	uint64_t sbx;  /* kinds in a sandbox: its id; else 0 */
	uint32_t obj;  /* the snapshot's number, the job's, the pool's or image's id; else 0 */
	uint32_t file; /* file kinds: the file's row in its table; else 0 */
};

/* Where the numbers of a kind lie: the node of object n (file f) is
 * base + (n << shift) + f, counted from id << INO_SBX_SHIFT for the kinds in
 * sandbox id's range. */
struct ino_range {
	const char *name;
	bool in_sbx;
	uint64_t base;
	unsigned shift;
	uint32_t obj_max; /* objects 1..obj_max; 0: the kind has none */
	uint32_t slots;   /* nodes per object (or of the kind): its files, or 1 */
};
extern const struct ino_range ino_ranges[INO_NKINDS];

#define INO_SBX_SHIFT 20
/* The most files a table of each file kind may hold (the slots of its range). */
#define INO_TOP_FILES_MAX 0x7feu
#define INO_SBX_FILES_MAX 0xffu
#define INO_OBJ_FILES_MAX 15u /* a pool's, an image's, images/ and a job's */

/* n's number, or 0 (no node has it) when n is out of its kind's range. */
uint64_t ino_encode(const struct ino_node *n);
/* 0, or -ENOENT: no node has that number. */
int ino_decode(uint64_t ino, struct ino_node *n);

#endif
