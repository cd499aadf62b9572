/* The engine's worker pool (pool.c): slow work (starts, forks, image
 * imports, fills) queued off the FUSE threads. */
#ifndef SBX_POOL_H
#define SBX_POOL_H

struct engine;

/* Its state is the engine's (context.h). */
int pool_start(struct engine *eng, int workers);
void pool_stop(struct engine *eng);
int pool_submit(struct engine *eng, void (*fn)(void *), void *arg);

#endif
