/* The tar stream reader (tar.h): headers, extended headers and data, from a
 * read callback. Hostile input: every field is bounded and checked, and the
 * sentences say at which byte of the stream a problem was found. */
#define _GNU_SOURCE
#include "tar.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define NAME_COMPONENT_MAX 255

void tar_init(struct tar *t, const struct tar_src *src)
{
	memset(t, 0, sizeof(*t));
	t->src = *src;
}

static void xattrs_free(struct tar_xattr **list, int *n)
{
	for (int i = 0; i < *n; i++) {
		free((*list)[i].name);
		free((*list)[i].value);
	}
	free(*list);
	*list = NULL;
	*n = 0;
}

static void pending_clear(struct tar *t)
{
	free(t->long_path);
	free(t->long_link);
	free(t->pax_path);
	free(t->pax_link);
	t->long_path = t->long_link = t->pax_path = t->pax_link = NULL;
	t->pax_has_size = t->pax_has_uid = t->pax_has_gid = t->pax_has_mtime = false;
	xattrs_free(&t->pax_xattrs, &t->pax_nxattrs);
}

void tar_free(struct tar *t)
{
	pending_clear(t);
	xattrs_free(&t->xattrs, &t->nxattrs);
}

/* n bytes exactly: 1, 0 when the stream ended before the first byte, or
 * -errno (a stream that ends part-way is truncated). */
static int read_full(struct tar *t, void *buf, size_t n, struct err *e)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = t->src.read(t->src.arg, (char *)buf + got, n - got, e);
		if (r < 0)
			return (int)r;
		if (r == 0) {
			if (got == 0)
				return 0;
			return err_set(e, -EIO, "the archive is truncated: it ends at byte %" PRIu64
				       ", inside a block", t->offset + got);
		}
		got += (size_t)r;
	}
	t->offset += n;
	return 1;
}

static int skip_bytes(struct tar *t, uint64_t n, struct err *e)
{
	if (n == 0)
		return 0;
	if (t->src.skip) {
		int r = t->src.skip(t->src.arg, n, e);
		if (r < 0)
			return r;
		t->offset += n;
		return 0;
	}
	char buf[4096];
	while (n) {
		size_t k = n < sizeof(buf) ? (size_t)n : sizeof(buf);
		int r = read_full(t, buf, k, e);
		if (r == 0)
			return err_set(e, -EIO, "the archive is truncated: it ends at byte %" PRIu64
				       ", inside an entry's data", t->offset);
		if (r < 0)
			return r;
		n -= k;
	}
	return 0;
}

ssize_t tar_read(struct tar *t, void *buf, size_t n, struct err *e)
{
	if (t->left == 0)
		return 0;
	if (n > t->left)
		n = (size_t)t->left;
	ssize_t r = t->src.read(t->src.arg, buf, n, e);
	if (r < 0)
		return r;
	if (r == 0)
		return err_set(e, -EIO, "the archive is truncated: it ends at byte %" PRIu64
			       ", inside an entry's data", t->offset);
	t->left -= (uint64_t)r;
	t->offset += (uint64_t)r;
	return r;
}

/* --- fields --- */

/* An octal field (leading blanks, then digits, then blanks or NULs to its
 * end; empty is 0) or GNU's base-256 (positive only). -1 when malformed or
 * above max. */
static int parse_num(const unsigned char *f, size_t w, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return -1; /* negative, or more than 64 bits */
		for (size_t i = 1; i < w; i++) {
			if (v >> 56)
				return -1;
			v = v << 8 | f[i];
		}
	} else {
		size_t i = 0;
		while (i < w && f[i] == ' ')
			i++;
		for (; i < w && f[i] >= '0' && f[i] <= '7'; i++) {
			if (v >> 61)
				return -1;
			v = v << 3 | (uint64_t)(f[i] - '0');
		}
		for (; i < w; i++)
			if (f[i] != ' ' && f[i] != '\0')
				return -1;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static bool zero_block(const unsigned char *h)
{
	for (int i = 0; i < TAR_BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

/* The header's checksum, summed unsigned (POSIX) or signed (old tars). */
static bool checksum_ok(const unsigned char *h)
{
	uint64_t want;
	if (parse_num(h + 148, 8, 0777777, &want) < 0)
		return false;
	uint64_t u = 0;
	int64_t s = 0;
	for (int i = 0; i < TAR_BLOCK; i++) {
		unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
		u += c;
		s += (signed char)c;
	}
	return u == want || (s >= 0 && (uint64_t)s == want);
}

/* A NUL-terminated copy of a fixed-width field. */
static void field_str(char *out, const unsigned char *f, size_t w)
{
	size_t n = strnlen((const char *)f, w);
	memcpy(out, f, n);
	out[n] = '\0';
}

int tar_clean_path(const char *in, char *out, struct err *e)
{
	size_t o = 0;
	const char *p = in;
	if (in[0] == '/')
		return err_set(e, -EINVAL, "entry '%.200s' has an absolute path", in);
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *c = p;
		while (*p && *p != '/')
			p++;
		size_t n = (size_t)(p - c);
		if (n == 1 && c[0] == '.')
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return err_set(e, -EINVAL, "entry '%.200s' has a '..' component", in);
		if (n > NAME_COMPONENT_MAX)
			return err_set(e, -EINVAL, "entry '%.200s' has a name longer than %d bytes", in,
				       NAME_COMPONENT_MAX);
		if (o + (o ? 1 : 0) + n >= TAR_PATH_MAX)
			return err_set(e, -EINVAL, "entry '%.200s...' has a path longer than %d bytes",
				       in, TAR_PATH_MAX - 1);
		if (o)
			out[o++] = '/';
		memcpy(out + o, c, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

/* --- extended headers --- */

/* The data of an extended header (GNU long name, pax), NUL-terminated. */
static int read_ext(struct tar *t, uint64_t size, uint64_t max, const char *what, char **out,
		    struct err *e)
{
	if (size > max)
		return err_set(e, -EINVAL, "a %s of %" PRIu64 " bytes at byte %" PRIu64 " is too long "
			       "(at most %" PRIu64 ")", what, size, t->offset, max);
	char *d = malloc((size_t)size + 1);
	if (!d)
		return err_set(e, -ENOMEM, "out of memory");
	int r = size ? read_full(t, d, (size_t)size, e) : 1;
	if (r == 0)
		r = err_set(e, -EIO, "the archive is truncated: it ends at byte %" PRIu64
			    ", inside a %s", t->offset, what);
	if (r > 0)
		r = skip_bytes(t, (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK, e);
	if (r < 0) {
		free(d);
		return r;
	}
	d[size] = '\0';
	*out = d;
	return 0;
}

static int set_str(char **slot, const char *v, size_t n, const char *key, struct err *e)
{
	free(*slot);
	*slot = NULL;
	if (n == 0)
		return 0; /* pax: an empty value takes the keyword back */
	if (memchr(v, '\0', n))
		return err_set(e, -EINVAL, "a pax %s holds a NUL byte", key);
	if (n >= TAR_PATH_MAX)
		return err_set(e, -EINVAL, "a pax %s is longer than %d bytes", key, TAR_PATH_MAX - 1);
	if (!(*slot = strndup(v, n)))
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* A decimal pax value; mtime may be negative and have a fraction (dropped). */
static int pax_num(const char *v, size_t n, bool time, uint64_t max, uint64_t *out, bool *neg)
{
	size_t i = 0;
	uint64_t x = 0;
	*neg = false;
	if (time && n && v[0] == '-')
		*neg = true, i++;
	size_t start = i;
	for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (i == start || x > max)
		return -1;
	if (time && i < n && v[i] == '.')
		for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++)
			;
	if (i != n)
		return -1;
	*out = x;
	return 0;
}

/* SCHILY.xattr.NAME=VALUE (GNU tar, bsdtar, Go's archive/tar): kept for the
 * next entry, a name given twice replaced. */
static int pax_xattr(struct tar *t, const char *name, size_t nlen, const char *v, size_t n,
		     struct err *e)
{
	if (nlen == 0 || nlen > TAR_XATTR_NAME_MAX || memchr(name, '\0', nlen))
		return err_set(e, -EINVAL, "a pax xattr has an empty name, a NUL in it, or one longer "
			       "than %d bytes (at byte %" PRIu64 ")", TAR_XATTR_NAME_MAX, t->offset);
	if (n > TAR_XATTR_VALUE_MAX)
		return err_set(e, -EINVAL, "the pax xattr %.*s has %zu bytes, more than %d", (int)nlen,
			       name, n, TAR_XATTR_VALUE_MAX);
	int i = 0;
	while (i < t->pax_nxattrs && (strlen(t->pax_xattrs[i].name) != nlen ||
				      memcmp(t->pax_xattrs[i].name, name, nlen) != 0))
		i++;
	if (i == TAR_XATTRS_MAX)
		return err_set(e, -EINVAL, "an entry has more than %d pax xattrs (at byte %" PRIu64
			       ")", TAR_XATTRS_MAX, t->offset);
	if (!t->pax_xattrs && !(t->pax_xattrs = calloc(TAR_XATTRS_MAX, sizeof(*t->pax_xattrs))))
		return err_set(e, -ENOMEM, "out of memory");
	struct tar_xattr *x = &t->pax_xattrs[i];
	char *value = malloc(n ? n : 1);
	if (!value || (!x->name && !(x->name = strndup(name, nlen)))) {
		free(value);
		return err_set(e, -ENOMEM, "out of memory");
	}
	memcpy(value, v, n);
	free(x->value);
	x->value = value;
	x->len = n;
	if (i == t->pax_nxattrs)
		t->pax_nxattrs++;
	return 0;
}

static int pax_record(struct tar *t, const char *key, size_t klen, const char *v, size_t n,
		      struct err *e)
{
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(key, s, klen) == 0)
	uint64_t x;
	bool neg;
	if (KEY("path"))
		return set_str(&t->pax_path, v, n, "path", e);
	if (KEY("linkpath"))
		return set_str(&t->pax_link, v, n, "linkpath", e);
	if (klen >= 13 && memcmp(key, "SCHILY.xattr.", 13) == 0)
		return pax_xattr(t, key + 13, klen - 13, v, n, e);
	if (klen > 11 && memcmp(key, "GNU.sparse.", 11) == 0)
		return err_set(e, -EOPNOTSUPP, "sparse files (pax GNU.sparse) are not supported");
	if (KEY("size") || KEY("uid") || KEY("gid") || KEY("mtime")) {
		bool time = KEY("mtime");
		uint64_t max = KEY("size") ? (uint64_t)INT64_MAX : time ? (uint64_t)INT64_MAX : UINT32_MAX;
		if (pax_num(v, n, time, max, &x, &neg) < 0)
			return err_set(e, -EINVAL, "a pax %.*s has a bad value '%.*s'", (int)klen, key,
				       (int)(n < 40 ? n : 40), v);
		if (KEY("size"))
			t->pax_size = x, t->pax_has_size = true;
		else if (KEY("uid"))
			t->pax_uid = (uint32_t)x, t->pax_has_uid = true;
		else if (KEY("gid"))
			t->pax_gid = (uint32_t)x, t->pax_has_gid = true;
		else
			t->pax_mtime = neg ? -(int64_t)x : (int64_t)x, t->pax_has_mtime = true;
	}
	return 0; /* other keywords (atime, uname, LIBARCHIVE.xattr...) are not kept */
#undef KEY
}

/* Records `LEN KEY=VALUE\n`, LEN counting the whole record. */
static int pax_parse(struct tar *t, const char *d, size_t size, struct err *e)
{
	size_t p = 0;
	while (p < size) {
		size_t len = 0, i = p;
		for (; i < size && d[i] >= '0' && d[i] <= '9' && i - p < 8; i++)
			len = len * 10 + (size_t)(d[i] - '0');
		if (i == p || i >= size || d[i] != ' ' || len <= i - p + 1 || len > size - p ||
		    d[p + len - 1] != '\n')
			return err_set(e, -EINVAL, "a pax header is malformed (at byte %" PRIu64 ")",
				       t->offset);
		const char *kv = d + i + 1, *end = d + p + len - 1;
		const char *eq = memchr(kv, '=', (size_t)(end - kv));
		if (!eq || eq == kv)
			return err_set(e, -EINVAL, "a pax record has no key=value (at byte %" PRIu64 ")",
				       t->offset);
		int r = pax_record(t, kv, (size_t)(eq - kv), eq + 1, (size_t)(end - eq - 1), e);
		if (r < 0)
			return r;
		p += len;
	}
	return 0;
}

/* --- entries --- */

/* After a zero block: the end, unless more follows (then it is malformed). */
static int at_zero_block(struct tar *t, struct err *e)
{
	unsigned char h[TAR_BLOCK];
	int r = read_full(t, h, sizeof(h), e);
	if (r < 0)
		return r;
	if (r > 0 && !zero_block(h))
		return err_set(e, -EINVAL, "a zero block in the middle of the archive (at byte %"
			       PRIu64 ")", t->offset - 2 * TAR_BLOCK);
	t->ended = true;
	return 0;
}

static int entry_type(char flag, const char *name, enum tar_type *type)
{
	switch (flag) {
	case '0':
	case '7':
		*type = TAR_FILE;
		return 0;
	case '\0': /* v7: a name ending in '/' is a directory */
		*type = name[0] && name[strlen(name) - 1] == '/' ? TAR_DIR : TAR_FILE;
		return 0;
	case '1':
		*type = TAR_HARDLINK;
		return 0;
	case '2':
		*type = TAR_SYMLINK;
		return 0;
	case '3':
		*type = TAR_CHAR;
		return 0;
	case '4':
		*type = TAR_BLOCKDEV;
		return 0;
	case '5':
		*type = TAR_DIR;
		return 0;
	case '6':
		*type = TAR_FIFO;
		return 0;
	default:
		return -1;
	}
}

/* The entry of header h, with what extended headers said. */
static int make_entry(struct tar *t, const unsigned char *h, uint64_t size, struct tar_entry *ent,
		      struct err *e)
{
	char raw[TAR_PATH_MAX], link[TAR_PATH_MAX];
	bool posix = memcmp(h + 257, "ustar\0", 6) == 0;
	bool gnu = memcmp(h + 257, "ustar  \0", 8) == 0;
	if (t->pax_path || t->long_path) {
		snprintf(raw, sizeof(raw), "%s", t->pax_path ? t->pax_path : t->long_path);
	} else if (posix && h[345]) {
		char prefix[156], name[101];
		field_str(prefix, h + 345, 155);
		field_str(name, h, 100);
		snprintf(raw, sizeof(raw), "%s/%s", prefix, name);
	} else {
		field_str(raw, h, 100);
	}
	if (t->pax_link || t->long_link)
		snprintf(link, sizeof(link), "%s", t->pax_link ? t->pax_link : t->long_link);
	else
		field_str(link, h + 157, 100);
	if (!raw[0])
		return err_set(e, -EINVAL, "an entry has an empty name (at byte %" PRIu64 ")",
			       t->offset - TAR_BLOCK);
	memset(ent, 0, sizeof(*ent));
	if (entry_type((char)h[156], raw, &ent->type) < 0)
		return err_set(e, -EOPNOTSUPP, "entry '%.200s' has type '%c', which is not "
			       "supported", raw, h[156] >= 0x20 && h[156] < 0x7f ? h[156] : '?');
	int r = tar_clean_path(raw, ent->path, e);
	if (r < 0)
		return r;
	uint64_t mode, uid, gid, mtime, maj = 0, min = 0;
	if (parse_num(h + 100, 8, UINT32_MAX, &mode) < 0 || parse_num(h + 108, 8, UINT32_MAX, &uid) < 0 ||
	    parse_num(h + 116, 8, UINT32_MAX, &gid) < 0 ||
	    parse_num(h + 136, 12, (uint64_t)INT64_MAX, &mtime) < 0 ||
	    ((posix || gnu) && (ent->type == TAR_CHAR || ent->type == TAR_BLOCKDEV) &&
	     (parse_num(h + 329, 8, UINT32_MAX, &maj) < 0 || parse_num(h + 337, 8, UINT32_MAX, &min) < 0)))
		return err_set(e, -EINVAL, "entry '%.200s' has a malformed number field", raw);
	ent->mode = (uint32_t)mode & 07777;
	ent->uid = t->pax_has_uid ? t->pax_uid : (uint32_t)uid;
	ent->gid = t->pax_has_gid ? t->pax_gid : (uint32_t)gid;
	ent->mtime = t->pax_has_mtime ? t->pax_mtime : (int64_t)mtime;
	ent->devmajor = (uint32_t)maj;
	ent->devminor = (uint32_t)min;
	if (ent->type == TAR_SYMLINK) {
		if (!link[0])
			return err_set(e, -EINVAL, "symbolic link '%.200s' has an empty target", raw);
		snprintf(ent->link, sizeof(ent->link), "%s", link);
	} else if (ent->type == TAR_HARDLINK) {
		if ((r = tar_clean_path(link, ent->link, e)) < 0)
			return r;
		if (!ent->link[0])
			return err_set(e, -EINVAL, "hard link '%.200s' has no target", raw);
	}
	/* Only a file's data follows its header (as Go's archive/tar reads it). */
	ent->size = ent->type == TAR_FILE ? size : 0;
	return 0;
}

int tar_next(struct tar *t, struct tar_entry *ent, struct err *e)
{
	if (t->ended)
		return 0;
	int r = skip_bytes(t, t->left + t->pad, e);
	if (r < 0)
		return r;
	t->left = t->pad = 0;
	xattrs_free(&t->xattrs, &t->nxattrs);
	for (;;) {
		unsigned char h[TAR_BLOCK];
		if ((r = read_full(t, h, sizeof(h), e)) < 0)
			return r;
		if (r == 0)
			return err_set(e, -EIO, "the archive is truncated: it ends at byte %" PRIu64
				       " without its end-of-archive blocks", t->offset);
		if (zero_block(h)) {
			pending_clear(t);
			return (r = at_zero_block(t, e)) < 0 ? r : 0;
		}
		if (!checksum_ok(h))
			return err_set(e, -EINVAL, "the header at byte %" PRIu64 " has a bad checksum "
				       "(not a tar archive, or corrupt)", t->offset - TAR_BLOCK);
		t->entries++;
		uint64_t size;
		if (parse_num(h + 124, 12, (uint64_t)INT64_MAX, &size) < 0)
			return err_set(e, -EINVAL, "the header at byte %" PRIu64 " has a malformed "
				       "size", t->offset - TAR_BLOCK);
		char flag = (char)h[156];
		char *d = NULL;
		if (flag == 'L' || flag == 'K') {
			if ((r = read_ext(t, size, TAR_PATH_MAX - 1, "GNU long name", &d, e)) < 0)
				return r;
			char **slot = flag == 'L' ? &t->long_path : &t->long_link;
			free(*slot);
			*slot = d;
			continue;
		}
		if (flag == 'x' || flag == 'g') {
			if ((r = read_ext(t, size, TAR_PAX_MAX, "pax header", &d, e)) < 0)
				return r;
			/* A global header's values are not kept: they would apply to every
			 * later entry, and no layer tool writes path or size there. */
			r = flag == 'x' ? pax_parse(t, d, (size_t)size, e) : 0;
			free(d);
			if (r < 0)
				return r;
			continue;
		}
		if (flag == 'V') { /* a volume label: nothing to make */
			if ((r = skip_bytes(t, size + (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK, e)) < 0)
				return r;
			continue;
		}
		if (t->pax_has_size)
			size = t->pax_size;
		r = make_entry(t, h, size, ent, e);
		if (r == 0) { /* the pending xattrs become the entry's */
			t->xattrs = t->pax_xattrs, t->nxattrs = t->pax_nxattrs;
			t->pax_xattrs = NULL, t->pax_nxattrs = 0;
			ent->xattrs = t->xattrs, ent->nxattrs = t->nxattrs;
		}
		pending_clear(t);
		if (r < 0)
			return r;
		t->left = ent->size;
		t->pad = (TAR_BLOCK - ent->size % TAR_BLOCK) % TAR_BLOCK;
		return 1;
	}
}
