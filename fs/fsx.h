/* The FUSE layer as main.c sees it: the low-level operations over the tree
 * of fs/files.c, the engine's change callbacks, and the exit. Knows the
 * engine's API only. */
#ifndef SBX_FSX_H
#define SBX_FSX_H

/* 3.12: the loop API with a bounded thread count (fuse_loop_cfg_*). */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "../engine/engine.h"
#include "../engine/images.h"
#include "../engine/warm.h"

/* What the FUSE layer needs of the daemon: the session's userdata
 * (fuse_session_new's last argument, fuse_req_userdata in each operation). */
struct fsx_state {
	struct engine *eng;         /* the engine (engine_new): every node carries it */
	struct timespec start_time; /* the times of what has none of its own */
	bool group_set;             /* --group: members of gid get the owner's rights */
	gid_t group_gid;
};

extern const struct fuse_lowlevel_ops fsx_ops;
/* The mounted session, which fsx_changed tells of changes (before the
 * engine starts). */
void fsx_set_session(struct fuse_session *se);
/* Engine watch callback: wakes poll(2) on the events files of `id`; gone:
 * it went without an rmdir, and the kernel's entry of its directory goes too. */
void fsx_changed(uint64_t id, bool gone);
/* Engine job watch callback: wakes poll(2) on the stdout, stderr of job `job` of `id`. */
void fsx_job_changed(uint64_t id, uint32_t job);
/* Engine files watch callback: wakes poll(2) on the files handles of `id`. */
void fsx_files_changed(uint64_t id);
/* After the session loop, before the engine stops: answers every parked read. */
void fsx_shutdown(void);

#endif
