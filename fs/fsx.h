/* The FUSE layer: the table of files (one row per file of the interface)
 * and the low-level operations that serve it. Knows the engine's API only. */
#ifndef SBX_FSX_H
#define SBX_FSX_H

/* 3.12: the loop API with a bounded thread count (fuse_loop_cfg_*). */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "../engine/engine.h"
#include "../engine/images.h"
#include "../engine/warm.h"

/* One file of the interface. Exactly one of each show/write pair is used,
 * by whether the file is at the top level or in a sandbox directory. */
struct fsx_file {
	const char *name;
	mode_t mode;
	int (*show_top)(struct buf *b);
	int (*write_top)(const char *buf, size_t len);
	int (*show)(struct sbx *s, struct buf *b);
	int (*write)(struct sbx *s, const char *buf, size_t len);
	bool session; /* exec: a read/write command session per open */
	/* A symlink (root): its target. */
	int (*link)(struct sbx *s, struct buf *b);
	/* wait: show's content, made at the first read once the sandbox changed
	 * after the open (bounded); the read is parked meanwhile. */
	bool wait;
	/* events: poll wakes when the generation moves past the one read. */
	bool pollable;
	/* run: a write starts a job, a read of the same handle returns its id. */
	int (*clone)(struct sbx *s, const char *buf, size_t len, uint32_t *id);
	/* A file of a warm pool's directory (/sbx/pools/NAME/). */
	int (*show_pool)(struct warm_pool *p, struct buf *b);
	int (*write_pool)(struct warm_pool *p, const char *buf, size_t len);
	/* A file of an image's directory (/sbx/images/NAME/). */
	int (*show_image)(struct image *im, struct buf *b);
};

/* The files of one job (/sbx/NAME/jobs/N/). */
enum fsx_job_kind { JF_SHOW, JF_STREAM, JF_STDIN, JF_CTL };
struct fsx_job_file {
	const char *name;
	mode_t mode;
	enum fsx_job_kind kind;
	int stream; /* JF_STREAM: 0 stdout, 1 stderr */
};
extern const struct fsx_job_file fsx_job_files[];
extern const size_t fsx_job_nfiles;

extern const struct fsx_file fsx_top_files[];
extern const size_t fsx_top_nfiles;
extern const struct fsx_file fsx_sbx_files[];
extern const size_t fsx_sbx_nfiles;
extern const struct fsx_file fsx_pool_files[];
extern const size_t fsx_pool_nfiles;
/* /sbx/images/ itself (ctl), and each image's directory. */
extern const struct fsx_file fsx_images_files[];
extern const size_t fsx_images_nfiles;
extern const struct fsx_file fsx_image_files[];
extern const size_t fsx_image_nfiles;

extern const struct fuse_lowlevel_ops fsx_ops;
void fsx_set_start_time(void);
/* --group: members of gid get the owner's rights. */
void fsx_set_group(gid_t gid);
/* Engine watch callback: wakes poll(2) on the events files of `id`. */
void fsx_changed(uint64_t id);
/* Engine job watch callback: wakes poll(2) on the stdout, stderr of job `job` of `id`. */
void fsx_job_changed(uint64_t id, uint32_t job);
/* After the session loop, before the engine stops: answers every parked read. */
void fsx_shutdown(void);

#endif
