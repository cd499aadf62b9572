/* disk= seen from the engine. The backend bounds what a sandbox makes the
 * host store with a disk of its own (vmm/disk.c: the kernel answers ENOSPC
 * inside); here its use shows in stats, and a disk that fills up says so
 * once in the sandbox's error and in events (disk_full 1, a poll wakes),
 * and again in events once it has room. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>

#include "disk.h"
#include "sandbox.h"

/* Full: less room left than this, or no inode. A write that fails leaves
 * some room (a 1 MiB write on a 16 MiB disk left 640 KiB here): 1/16 of
 * the disk, at most 8 MiB. */
static uint64_t full_margin(uint64_t size_bytes)
{
	uint64_t m = size_bytes / 16;
	return m > (8u << 20) ? (8u << 20) : m;
}

static void disk_changed(struct sbx *s)
{
	atomic_fetch_add(&s->generation, 1);
	engine_notify(s->eng, s->node.id);
}

void sbx_disk_check(struct sbx *s)
{
	struct vmm_disk_usage u;
	if (!s->cfg.disk_bytes) /* set at create, never changed: no lock for the others */
		return;
	pthread_mutex_lock(&s->lock);
	int st = atomic_load(&s->state);
	if ((st != SBX_RUNNING && st != SBX_PAUSED) ||
	    vmm_disk_usage(&s->vm, &u) < 0) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	uint64_t margin = full_margin(u.size_bytes);
	bool full = u.free_bytes < margin || (u.inodes && u.free_inodes == 0);
	bool room = u.free_bytes >= 2 * margin && (!u.inodes || u.free_inodes > 0);
	if (full && !s->disk_full) {
		char msg[SBX_ERRMSG_MAX];
		s->disk_full = true;
		snprintf(msg, sizeof(msg), "the disk of sandbox %s is full (disk=%" PRIu64 "M: %" PRIu64
			 " MB used, %" PRIu64 " of %" PRIu64 " inodes free): writes inside fail with "
			 "ENOSPC, and its jobs' output and console are no longer stored",
			 s->node.name, s->cfg.disk_bytes >> 20, u.used_bytes >> 20, u.free_inodes,
			 u.inodes);
		sbx_fail(s, -ENOSPC, msg);
		disk_changed(s);
	} else if (room && s->disk_full) {
		s->disk_full = false;
		log_info("sandbox %s: its disk has room again (%" PRIu64 " MB free)", s->node.name,
			 u.free_bytes >> 20);
		disk_changed(s);
	}
	pthread_mutex_unlock(&s->lock);
}

int sbx_disk_show(struct sbx *s, struct buf *b)
{
	struct vmm_disk_usage u;
	int r = buf_printf(b, "disk_limit_bytes %" PRIu64 "\n", s->cfg.disk_bytes);
	if (r == 0 && s->cfg.disk_bytes && vmm_disk_usage(&s->vm, &u) == 0)
		r = buf_printf(b, "disk_used_bytes %" PRIu64 "\ndisk_free_bytes %" PRIu64
			       "\ndisk_inodes_free %" PRIu64 "\n", u.used_bytes, u.free_bytes,
			       u.free_inodes);
	return r;
}
