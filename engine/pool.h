/* The engine's worker pool (pool.c): slow work (starts, forks, image
 * imports, fills) queued off the FUSE threads. */
#ifndef SBX_POOL_H
#define SBX_POOL_H

int pool_start(int workers);
void pool_stop(void);
int pool_submit(void (*fn)(void *), void *arg);

#endif
