/* disklimit.c: a sandbox's own disk (disk=) seen from the engine. */
#ifndef SBX_DISK_H
#define SBX_DISK_H

#include "common.h"

struct sbx;

/* Looks whether it filled up (or has room again) and says so in error and
 * events; called each second for every sandbox (the output pump's tick). */
void sbx_disk_check(struct sbx *s);
/* stats lines: disk_limit_bytes, and disk_used_bytes while it is mounted. */
int sbx_disk_show(struct sbx *s, struct buf *b);

#endif
