/* Warm pools as files (/sbx/pools/NAME/): the FUSE layer's view of them. */
#ifndef SBX_WARM_H
#define SBX_WARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "ids.h"

struct engine;
struct warm_pool;

/* mkdir /sbx/pools/NAME: a pool of the spec of a bare mkdir, size 0. */
int warm_pool_mkdir(struct engine *eng, const char *name, uint32_t *id);
/* rmdir: its members are discarded (never a claimed sandbox). */
int warm_pool_rmdir(struct engine *eng, const char *name);
/* 0 when there is no such pool. */
uint32_t warm_pool_lookup(struct engine *eng, const char *name);
/* Pinned (or NULL); release with warm_pool_put. */
struct warm_pool *warm_pool_get(struct engine *eng, uint32_t id);
void warm_pool_put(struct warm_pool *p);
uint64_t warm_pool_created_wall_usec(const struct warm_pool *p);
/* Names and ids of every pool, for readdir; free both arrays. */
int warm_pool_list(struct engine *eng, char (**names)[64], uint32_t **ids, size_t *n);

int warm_show_spec(struct warm_pool *p, struct buf *b);
int warm_write_spec(struct warm_pool *p, const char *buf, size_t len);
int warm_show_size(struct warm_pool *p, struct buf *b);
int warm_write_size(struct warm_pool *p, const char *buf, size_t len);
int warm_show_status(struct warm_pool *p, struct buf *b);
int warm_show_error(struct warm_pool *p, struct buf *b);

/* The rest of the engine's side (lifecycle.c, engine.c, stats.c, images.c,
 * journal.c); the FUSE layer uses none of it. */
struct sbx;
struct sbx_config;
/* A ready member of a pool of c's spec becomes sandbox `name`, running:
 * 0 (pinned in *out), -ENOENT when no pool has one (create it cold), or
 * another error for the name (-EEXIST...) with the sentence in e. */
int warm_claim(struct engine *eng, const char *name, const struct sbx_config *c, struct sbx **out,
	       struct err *e);
/* A member's init ended while it waited in its pool (s->lock held). */
void warm_member_ended(struct sbx *s);
/* engine_new, after images_init: the empty list (context.h's warm);
 * lifecycle.c's hooks (eng->lifecycle) set to warm_claim and
 * warm_member_ended, images.c's rmdir check to warm_image_user. */
void warm_init(struct engine *eng);
int warm_start(struct engine *eng);
/* At daemon exit: no more fills (before the workers stop)... */
void warm_quiesce(struct engine *eng);
/* ...then every member is discarded (the monitor still runs). */
void warm_stop(struct engine *eng);
/* Start-up: a member a dead daemon left (STATE/sandboxes/.pN-SEQ) goes. */
bool warm_leftover(struct engine *eng, const char *entry);
int warm_show_stats(struct engine *eng, struct buf *b);
/* True when a warm pool's spec names image (its name in pool): images.c's
 * rmdir check. */
bool warm_image_user(struct engine *eng, const char *image, char *pool, size_t cap);

#endif
