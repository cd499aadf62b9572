/* A tar stream reader for image layers and OCI archives: ustar, GNU long
 * names and links ('L', 'K'), pax extended headers (path, linkpath, size,
 * uid, gid, mtime, and SCHILY.xattr.NAME: an entry's extended attributes,
 * all of them, whatever their name: what to apply is the caller's choice).
 * Everything it reads is hostile input: fields are bounded,
 * checksums checked, paths cleaned (no absolute path, no `..`), and anything
 * malformed or truncated is an error with a sentence. It only parses: the
 * bytes come from a read callback, and nothing here touches a file system,
 * so the fuzz target drives it from memory. */
#ifndef SBX_TAR_H
#define SBX_TAR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"

#define TAR_BLOCK 512
#define TAR_PATH_MAX 4096   /* a path or link target, NUL included */
#define TAR_PAX_MAX (1u << 20) /* the data of one pax header */
#define TAR_XATTRS_MAX 64      /* xattrs of one entry */
#define TAR_XATTR_NAME_MAX 255 /* as the kernel's XATTR_NAME_MAX */
#define TAR_XATTR_VALUE_MAX 65536 /* as the kernel's XATTR_SIZE_MAX */

/* An extended attribute of an entry (pax SCHILY.xattr.NAME=VALUE): name
 * non-empty, NUL-terminated, at most TAR_XATTR_NAME_MAX bytes; value any
 * bytes (NUL included), len at most TAR_XATTR_VALUE_MAX. */
struct tar_xattr {
	char *name;
	char *value;
	size_t len;
};

enum tar_type { TAR_FILE, TAR_HARDLINK, TAR_SYMLINK, TAR_CHAR, TAR_BLOCKDEV, TAR_DIR, TAR_FIFO };

struct tar_entry {
	/* Relative, cleaned: no leading or trailing '/', no empty, `.` or `..`
	 * component; "" is the archive's root itself (`./`). */
	char path[TAR_PATH_MAX];
	/* TAR_SYMLINK: the target as written (never followed by the reader's
	 * users); TAR_HARDLINK: another entry's path, cleaned as path is. */
	char link[TAR_PATH_MAX];
	enum tar_type type;
	uint32_t mode; /* permission bits, 07777 */
	uint32_t uid, gid;
	int64_t mtime;
	uint64_t size; /* bytes of data that follow: TAR_FILE only, 0 for the others */
	uint32_t devmajor, devminor;
	/* Its xattrs, as the archive lists them (a name once: the last wins);
	 * valid until the next tar_next or tar_free. */
	const struct tar_xattr *xattrs;
	int nxattrs;
};

/* Where the bytes come from. read: up to n bytes, 0 at the end, or -errno
 * with the sentence in e. skip (optional): n bytes passed over, as reading
 * them would (a seekable file); 0 or -errno. */
struct tar_src {
	ssize_t (*read)(void *arg, void *buf, size_t n, struct err *e);
	int (*skip)(void *arg, uint64_t n, struct err *e);
	void *arg;
};

struct tar {
	struct tar_src src;
	uint64_t offset;   /* bytes of the stream consumed */
	uint64_t left;     /* data of the current entry not read yet */
	uint64_t pad;      /* then the padding to the next block */
	uint64_t entries;  /* headers read, extended ones included */
	bool ended;
	/* What extended headers said about the next entry. */
	char *long_path, *long_link, *pax_path, *pax_link;
	bool pax_has_size, pax_has_uid, pax_has_gid, pax_has_mtime;
	uint64_t pax_size;
	uint32_t pax_uid, pax_gid;
	int64_t pax_mtime;
	struct tar_xattr *pax_xattrs; /* TAR_XATTRS_MAX slots once one is seen */
	int pax_nxattrs;
	struct tar_xattr *xattrs;     /* the current entry's */
	int nxattrs;
};

void tar_init(struct tar *t, const struct tar_src *src);
void tar_free(struct tar *t);
/* The next entry: 1, or 0 at the archive's end (two zero blocks, or one then
 * the stream's end), or -errno with a sentence. The data of the entry before
 * is skipped if it was not read. */
int tar_next(struct tar *t, struct tar_entry *ent, struct err *e);
/* The current entry's data: up to n bytes, 0 at its end, or -errno. */
ssize_t tar_read(struct tar *t, void *buf, size_t n, struct err *e);
/* Cleans a path from an archive into out (TAR_PATH_MAX): -EINVAL with a
 * sentence for an absolute path, a `..` component, or one too long. */
int tar_clean_path(const char *in, char *out, struct err *e);

#endif
