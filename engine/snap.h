/* Layers (reference counted, removed with their last user), fork, and
 * named snapshots (snap.c). */
#ifndef SBX_SNAP_H
#define SBX_SNAP_H

#include <jansson.h>
#include <stddef.h>

#include "common.h"

struct sbx;
struct sbx_config;
struct journal_snap;

struct engine;
int snap_init(struct engine *eng);
void layer_get(struct engine *eng, const char *id);
void layer_put(struct engine *eng, const char *id);
/* The references a sandbox holds on the layers it stacks on (c->lowers, and
 * c->flat once its chain was flattened): taken when it is made or adopted,
 * dropped when it goes. */
void sbx_layers_get(struct engine *eng, const struct sbx_config *c);
void sbx_layers_put(struct engine *eng, const struct sbx_config *c);
int sbx_fork(struct sbx *src, int argc, char **argv, struct err *e);
void snap_drop_all(struct sbx *s);
json_t *snap_journal_json(struct sbx *s);
/* Restart: the snapshots journal_parse read (journal.h), with their layers' references. */
void snap_journal_load(struct sbx *s, const struct journal_snap *snaps, size_t n);

#endif
