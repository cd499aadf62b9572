/* Unpacking one image layer (a tar stream) into a directory, as overlayfs
 * wants a lower layer: OCI whiteouts (`.wh.NAME`) become whiteout devices
 * (char 0:0) and `.wh..wh..opq` the trusted.overlay.opaque xattr of its
 * directory. The layer is hostile input: every entry is made relative to the
 * layer's root (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS: no path
 * leaves it or goes through a link), hard links stay inside it, device nodes
 * are refused, and what it writes is bounded by the room given. Of an
 * entry's xattrs (pax SCHILY.xattr), only user.* and security.capability
 * are set, on the file or directory's own fd; any other (trusted.*, with
 * which a layer could fake overlayfs's whiteouts, redirects and opaque
 * dirs, security.selinux, system.*...) is skipped and counted. */
#ifndef SBX_UNPACK_H
#define SBX_UNPACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "tar.h"

struct unpack_limits {
	uint64_t max_bytes;   /* the room it may take: data blocks, and a block per directory */
	uint64_t max_entries; /* entries (inodes) it may make */
	/* Checked again on the way (every 64 MiB written): the filesystem must
	 * keep this much free, whoever else writes to it. */
	uint64_t reserve_bytes;
	const char *where;    /* the directory it fills, for the sentences */
	const atomic_bool *cancel; /* when set, stops with -ECANCELED */
};

struct unpack_stats {
	uint64_t entries;
	uint64_t bytes; /* what was counted against max_bytes */
	uint64_t xattrs;         /* set */
	uint64_t xattrs_skipped; /* not set: a namespace a layer may not write, or a link's */
	char skipped[320];       /* the first one skipped: "NAME on 'PATH'" */
};

/* Reads every entry of t into the directory root (an open fd). On failure
 * -errno with a sentence naming the entry; what was made stays (the caller
 * unpacks into a temporary directory and removes it). */
int unpack_layer(struct tar *t, int root, const struct unpack_limits *lim,
		 struct unpack_stats *st, struct err *e);

#endif
