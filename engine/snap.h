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
/* engine_new: lifecycle.c's hooks (eng->lifecycle) fork and drop_snaps set
 * to sbx_fork and snap_drop_all, so that lifecycle.c never calls up here. */
void snap_attach(struct engine *eng);
int snap_init(struct engine *eng);
int sbx_fork(struct sbx *src, int argc, char **argv, struct err *e);
void snap_drop_all(struct sbx *s);
json_t *snap_journal_json(struct sbx *s);
/* Restart: the snapshots journal_parse read (journal.h), with their layers' references. */
void snap_journal_load(struct sbx *s, const struct journal_snap *snaps, size_t n);

#endif
