/* Warm pools as files (/sbx/pools/NAME/): the FUSE layer's view of them. */
#ifndef SBX_WARM_H
#define SBX_WARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "ids.h"

struct warm_pool;

/* mkdir /sbx/pools/NAME: a pool of the spec of a bare mkdir, size 0. */
int warm_pool_mkdir(const char *name, uint32_t *id);
/* rmdir: its members are discarded (never a claimed sandbox). */
int warm_pool_rmdir(const char *name);
/* 0 when there is no such pool. */
uint32_t warm_pool_lookup(const char *name);
/* Pinned (or NULL); release with warm_pool_put. */
struct warm_pool *warm_pool_get(uint32_t id);
void warm_pool_put(struct warm_pool *p);
uint64_t warm_pool_created_wall_usec(const struct warm_pool *p);
/* Names and ids of every pool, for readdir; free both arrays. */
int warm_pool_list(char (**names)[64], uint32_t **ids, size_t *n);

int warm_show_spec(struct warm_pool *p, struct buf *b);
int warm_write_spec(struct warm_pool *p, const char *buf, size_t len);
int warm_show_size(struct warm_pool *p, struct buf *b);
int warm_write_size(struct warm_pool *p, const char *buf, size_t len);
int warm_show_status(struct warm_pool *p, struct buf *b);
int warm_show_error(struct warm_pool *p, struct buf *b);

#endif
