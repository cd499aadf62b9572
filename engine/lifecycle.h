/* Lifecycle (lifecycle.c): reserve, commit, start, stop and remove a
 * sandbox, and the monitor thread; the top of the engine's parts. */
#ifndef SBX_LIFECYCLE_H
#define SBX_LIFECYCLE_H

#include <stdbool.h>

#include "common.h"

struct engine;
struct sbx;
struct sbx_config;

int sbx_reserve(struct engine *eng, const char *name, const struct sbx_config *c,
		struct sbx **out, struct err *e);
void sbx_unreserve(struct sbx *s);
int sbx_commit(struct sbx *s, struct err *e);
int sbx_make_state_dir(struct sbx *s, struct err *e);
/* Runs a queued start's work on this thread (a warm pool's fill). */
void sbx_start_now(struct sbx *s);
void sbx_discard(struct sbx *s);
/* The config of a bare mkdir; a create's after its options (refuses what
 * the backend cannot do). */
void engine_mkdir_config(struct engine *eng, struct sbx_config *c);
int engine_config_check(struct engine *eng, struct sbx_config *c, int argc, char **argv,
			struct err *e);
struct sbx *sbx_alloc(struct engine *eng, const char *name, const struct sbx_config *c);
int sbx_queue_start(struct sbx *s);
void monitor_watch(struct sbx *s);
int monitor_start(struct engine *eng);
void monitor_stop(struct engine *eng);
int sbx_stop(struct sbx *s, int timeout_sec, const char *reason, struct err *e);
int engine_create(struct engine *eng, int argc, char **argv, struct err *e);
/* remove NAME... (the top-level ctl): each as rmdir does it, all at once (a
 * thread each); returns when every one has ended (the first failure's errno,
 * with how many failed). */
int engine_remove(struct engine *eng, int argc, char **argv, struct err *e);
/* restart.c: every journal read back at start-up; the count re-adopted. */
int journal_load_all(struct engine *eng);

#endif
