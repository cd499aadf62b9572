/* The engine's context object: what was a global and file-level state of
 * engine.c and sandbox.c, made by engine_new and handed to the FUSE layer
 * (its session's userdata holds it), which passes it to every entry point
 * that has no sandbox; a sandbox reaches its engine through s->eng. */
#ifndef SBX_CONTEXT_H
#define SBX_CONTEXT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common.h"
#include "engine.h"

#define ENGINE_ERR_RING 64

struct pool_job;

struct engine {
	struct engine_opts o;
	struct reg *reg;
	_Atomic uint64_t next_id;
	char sandboxes_dir[PATH_MAX];
	/* Bumped when a sandbox appears or goes (the top level's events). */
	_Atomic uint64_t generation;
	/* The FUSE layer's change callbacks (engine_set_watch, engine_set_job_watch,
	 * engine_set_files_watch). */
	void (*watch_fn)(uint64_t id);
	void (*job_watch_fn)(uint64_t id, uint32_t n);
	void (*files_watch_fn)(uint64_t id);
	/* The ring of recent failures shown in /sbx/error. */
	struct {
		pthread_mutex_t lock;
		char lines[ENGINE_ERR_RING][SBX_ERRMSG_MAX + 64];
		uint64_t total;
	} errs;
	/* The worker pool (pool.c): queued jobs and the threads that run them. */
	struct {
		pthread_mutex_t lock;
		pthread_cond_t cond;
		struct pool_job *head, *tail;
		bool quit;
		pthread_t *threads;
		int nthreads;
	} pool;
	/* The journal's group commit (journal.c): one syncfs for a burst of writes. */
	struct {
		pthread_mutex_t lock;
		pthread_cond_t cond;
		bool dirty, quit;
		pthread_t thread;
		int fd; /* STATE/sandboxes, for syncfs */
	} commit;
};

#endif
