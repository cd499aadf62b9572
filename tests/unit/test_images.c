/* Unit tests of what image imports read (engine/sha256.c, tar.c, unpack.c,
 * oci.c): SHA-256 against FIPS 180-4's vectors, the tar reader on archives
 * made here (ustar, prefix, GNU long names, pax, base-256) and on broken or
 * hostile ones, the unpacker (whiteouts, opaque dirs, links, and what it
 * refuses: paths through a symlink, device nodes, more than the room given),
 * and the OCI JSON parsers. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <zstd.h>

#include "../../engine/oci.h"
#include "../../engine/sha256.h"
#include "../../engine/tar.h"
#include "../../engine/unpack.h"
#include "../../vmm/vmm.h"
#include "unit.h"

/* --- sha256 --- */

static bool hex_is(const void *data, size_t n, const char *want)
{
	char hex[SHA256_HEX];
	sha256_hex_of(data, n, hex);
	if (strcmp(hex, want) != 0) {
		fprintf(stderr, "sha256 gave %s, wanted %s\n", hex, want);
		return false;
	}
	return true;
}

static void test_sha256_vectors(void)
{
	CHECK(hex_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(hex_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	CHECK(hex_is(m448, strlen(m448),
		     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
			   "nopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	CHECK(hex_is(m896, strlen(m896),
		     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	CHECK(hex_is(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
	free(a);
}

/* Fed in pieces of every size, the digest is the same. */
static void test_sha256_incremental(void)
{
	unsigned char data[300];
	char one[SHA256_HEX], inc[SHA256_HEX];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + 3);
	sha256_hex_of(data, sizeof(data), one);
	for (size_t step = 1; step <= 130; step += 13) {
		struct sha256 c;
		uint8_t d[SHA256_BYTES];
		sha256_init(&c);
		for (size_t off = 0; off < sizeof(data); off += step)
			sha256_update(&c, data + off, off + step > sizeof(data) ? sizeof(data) - off : step);
		sha256_final(&c, d);
		sha256_hex(d, inc);
		CHECK(strcmp(one, inc) == 0);
	}
}

/* --- tar archives made here --- */

struct tbuf {
	unsigned char *d;
	size_t n, cap;
};

static void tb_add(struct tbuf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 4096;
		b->d = realloc(b->d, b->cap);
	}
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void tb_pad(struct tbuf *b)
{
	static const unsigned char z[512];
	if (b->n % 512)
		tb_add(b, z, 512 - b->n % 512);
}

static void octal(unsigned char *f, size_t w, unsigned long long v)
{
	char tmp[32];
	snprintf(tmp, sizeof(tmp), "%0*llo", (int)w - 1, v);
	memcpy(f, tmp, w - 1);
	f[w - 1] = 0;
}

struct hdr {
	const char *name, *link, *prefix;
	char type;
	unsigned long long size;
	unsigned mode;
	bool gnu;      /* "ustar  " magic */
	bool bad_sum;
	unsigned dev_major;
};

static void tb_hdr(struct tbuf *b, const struct hdr *h)
{
	unsigned char x[512] = {0};
	strncpy((char *)x, h->name, 100);
	octal(x + 100, 8, h->mode ? h->mode : 0644);
	octal(x + 108, 8, 0);
	octal(x + 116, 8, 0);
	octal(x + 124, 12, h->size);
	octal(x + 136, 12, 1700000000);
	x[156] = (unsigned char)h->type;
	if (h->link)
		strncpy((char *)x + 157, h->link, 100);
	memcpy(x + 257, h->gnu ? "ustar  \0" : "ustar\0" "00", 8);
	octal(x + 329, 8, h->dev_major);
	octal(x + 337, 8, 0);
	if (h->prefix)
		strncpy((char *)x + 345, h->prefix, 155);
	memset(x + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += x[i];
	char s[8];
	snprintf(s, sizeof(s), "%06o", sum + (h->bad_sum ? 1 : 0));
	memcpy(x + 148, s, 7);
	tb_add(b, x, 512);
}

static void tb_file(struct tbuf *b, const char *name, const char *data)
{
	tb_hdr(b, &(struct hdr){.name = name, .type = '0', .size = strlen(data)});
	tb_add(b, data, strlen(data));
	tb_pad(b);
}

static void tb_ext(struct tbuf *b, char type, const char *data)
{
	tb_hdr(b, &(struct hdr){.name = "././@LongLink", .type = type, .size = strlen(data),
				.gnu = type == 'L' || type == 'K'});
	tb_add(b, data, strlen(data));
	tb_pad(b);
}

/* A pax header of records KEY=VALUE (values may hold any byte). */
struct pax_rec {
	const char *key;
	const void *value;
	size_t len;
};

static void tb_pax(struct tbuf *b, const struct pax_rec *r, int n)
{
	struct tbuf d = {0};
	for (int i = 0; i < n; i++) {
		size_t body = strlen(r[i].key) + r[i].len + 3, len = body + 1;
		char num[16];
		while (snprintf(num, sizeof(num), "%zu", len), strlen(num) + body != len)
			len = strlen(num) + body;
		tb_add(&d, num, strlen(num));
		tb_add(&d, " ", 1);
		tb_add(&d, r[i].key, strlen(r[i].key));
		tb_add(&d, "=", 1);
		tb_add(&d, r[i].value, r[i].len);
		tb_add(&d, "\n", 1);
	}
	tb_hdr(b, &(struct hdr){.name = "PaxHeader", .type = 'x', .size = d.n});
	tb_add(b, d.d, d.n);
	tb_pad(b);
	free(d.d);
}

static void tb_end(struct tbuf *b)
{
	static const unsigned char z[1024];
	tb_add(b, z, sizeof(z));
}

struct msrc {
	const unsigned char *d;
	size_t n, pos;
};

static ssize_t mread(void *arg, void *buf, size_t n, struct err *e)
{
	(void)e;
	struct msrc *m = arg;
	if (n > m->n - m->pos)
		n = m->n - m->pos;
	if (n > 700) /* short reads, as a pipe gives */
		n = 700;
	memcpy(buf, m->d + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* Reads every entry of b; the paths (and file data) joined by '|' into out.
 * Returns the last tar_next answer (0 at a clean end). */
static int read_all(const struct tbuf *b, char *out, size_t cap, struct err *e)
{
	struct msrc m = {.d = b->d, .n = b->n};
	struct tar_src src = {.read = mread, .arg = &m};
	struct tar t;
	struct tar_entry ent;
	int r;
	out[0] = '\0';
	tar_init(&t, &src);
	while ((r = tar_next(&t, &ent, e)) > 0) {
		char data[256] = "";
		ssize_t n = ent.size ? tar_read(&t, data, sizeof(data) - 1, e) : 0;
		if (n < 0) {
			r = (int)n;
			break;
		}
		data[n > 0 ? n : 0] = '\0';
		snprintf(out + strlen(out), cap - strlen(out), "%s%s%s%s%s", out[0] ? "|" : "",
			 ent.path, ent.link[0] ? ">" : "", ent.link, data[0] ? "=" : "");
		snprintf(out + strlen(out), cap - strlen(out), "%s", data);
	}
	tar_free(&t);
	return r;
}

static void test_tar_ustar(void)
{
	struct tbuf b = {0};
	struct err e = {0};
	char out[1024];
	tb_hdr(&b, &(struct hdr){.name = "./", .type = '5', .mode = 0755});
	tb_hdr(&b, &(struct hdr){.name = "./etc/", .type = '5'});
	tb_file(&b, "./etc/hostname", "box");
	tb_hdr(&b, &(struct hdr){.name = "bin/sh", .type = '2', .link = "/bin/busybox"});
	tb_hdr(&b, &(struct hdr){.name = "etc/h2", .type = '1', .link = "./etc//hostname"});
	tb_hdr(&b, &(struct hdr){.name = "file", .prefix = "deep/er", .type = '0'});
	tb_end(&b);
	CHECK(read_all(&b, out, sizeof(out), &e) == 0);
	/* The root entry ("./") is the empty path. */
	CHECK(strcmp(out, "etc|etc/hostname=box|bin/sh>/bin/busybox|etc/h2>etc/hostname|deep/er/file") == 0);
	free(b.d);
}

static void test_tar_long_names(void)
{
	struct tbuf b = {0};
	struct err e = {0};
	char out[8192], longp[400], want[8192];
	memset(longp, 'x', sizeof(longp));
	for (size_t i = 99; i < sizeof(longp); i += 100)
		longp[i] = '/'; /* components of 99 bytes: a path past ustar's 100 */
	longp[sizeof(longp) - 1] = '\0';
	tb_ext(&b, 'L', longp);
	tb_ext(&b, 'K', "target/of/a/long/link");
	tb_hdr(&b, &(struct hdr){.name = "short-ignored", .type = '2', .link = "ignored", .gnu = true});
	/* pax: path, linkpath and a size that overrides the header's */
	tb_ext(&b, 'x', "17 path=pax/file\n10 size=3\n");
	tb_hdr(&b, &(struct hdr){.name = "ignored", .type = '0', .size = 0});
	tb_add(&b, "abc", 3);
	tb_pad(&b);
	tb_end(&b);
	CHECK(read_all(&b, out, sizeof(out), &e) == 0);
	if (e.msg[0])
		fprintf(stderr, "long names: %s\n", e.msg);
	snprintf(want, sizeof(want), "%s>target/of/a/long/link|pax/file=abc", longp);
	CHECK(strcmp(out, want) == 0);
	free(b.d);
}

/* GNU's base-256 size field. */
static void test_tar_base256(void)
{
	struct tbuf b = {0};
	struct err e = {0};
	char out[256];
	tb_hdr(&b, &(struct hdr){.name = "big", .type = '0', .size = 0});
	unsigned char *h = b.d;
	memset(h + 124, 0, 12);
	h[124] = 0x80;
	h[135] = 2; /* 2 bytes */
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	char s[8];
	snprintf(s, sizeof(s), "%06o", sum);
	memcpy(h + 148, s, 7);
	tb_add(&b, "hi", 2);
	tb_pad(&b);
	tb_end(&b);
	CHECK(read_all(&b, out, sizeof(out), &e) == 0);
	CHECK(strcmp(out, "big=hi") == 0);
	free(b.d);
}

static int bad_one(void (*make)(struct tbuf *b), const char *want, struct err *e)
{
	struct tbuf b = {0};
	char out[1024];
	make(&b);
	err_clear(e);
	int r = read_all(&b, out, sizeof(out), e);
	free(b.d);
	if (r >= 0 || !strstr(e->msg, want)) {
		fprintf(stderr, "wanted an error with '%s', got %d '%s'\n", want, r, e->msg);
		return 0;
	}
	return r;
}

static void mk_dotdot(struct tbuf *b) { tb_file(b, "a/../../etc/passwd", "x"), tb_end(b); }
static void mk_abs(struct tbuf *b) { tb_file(b, "/etc/passwd", "x"), tb_end(b); }
static void mk_badsum(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "f", .type = '0', .bad_sum = true});
	tb_end(b);
}
static void mk_truncated(struct tbuf *b)
{
	tb_file(b, "f", "0123456789");
	b->n -= 512 - 5; /* cut inside the data */
}
static void mk_no_end(struct tbuf *b) { tb_file(b, "f", "x"); }
static void mk_zero_middle(struct tbuf *b)
{
	static const unsigned char z[512];
	tb_file(b, "f", "x");
	tb_add(b, z, 512);
	tb_file(b, "g", "y");
	tb_end(b);
}
static void mk_sparse(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "s", .type = 'S', .gnu = true});
	tb_end(b);
}
static void mk_pax_sparse(struct tbuf *b)
{
	tb_ext(b, 'x', "27 GNU.sparse.major=1xxxxx\n");
	tb_file(b, "f", "x");
	tb_end(b);
}
static void mk_pax_bad(struct tbuf *b)
{
	tb_ext(b, 'x', "99 path=x\n");
	tb_file(b, "f", "x");
	tb_end(b);
}
static void mk_long_huge(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "././@LongLink", .type = 'L', .size = 1u << 20, .gnu = true});
	tb_end(b);
}
static void mk_garbage(struct tbuf *b)
{
	char junk[2048];
	memset(junk, 'Q', sizeof(junk));
	tb_add(b, junk, sizeof(junk));
}

static void test_tar_refuses(void)
{
	struct err e = {0};
	CHECK(bad_one(mk_dotdot, "'..' component", &e) == -EINVAL);
	CHECK(bad_one(mk_abs, "absolute path", &e) == -EINVAL);
	CHECK(bad_one(mk_badsum, "bad checksum", &e) == -EINVAL);
	CHECK(bad_one(mk_truncated, "truncated", &e) == -EIO);
	CHECK(bad_one(mk_no_end, "end-of-archive", &e) == -EIO);
	CHECK(bad_one(mk_zero_middle, "zero block in the middle", &e) == -EINVAL);
	CHECK(bad_one(mk_sparse, "type 'S'", &e) == -EOPNOTSUPP);
	CHECK(bad_one(mk_pax_sparse, "sparse", &e) == -EOPNOTSUPP);
	CHECK(bad_one(mk_pax_bad, "malformed", &e) == -EINVAL);
	CHECK(bad_one(mk_long_huge, "too long", &e) == -EINVAL);
	CHECK(bad_one(mk_garbage, "bad checksum", &e) == -EINVAL);
}

/* One zero block then the stream's end is an end too (GNU tar accepts it). */
/* pax SCHILY.xattr: any bytes in a value, a name given twice replaced, kept
 * for the next entry only; past the bounds, an error with a sentence. */
static void test_tar_xattrs(void)
{
	struct tbuf b = {0};
	struct err e = {0};
	static const char bin[] = {'a', 0, 'b', (char)0xff};
	struct pax_rec recs[] = {
		{"SCHILY.xattr.user.bin", bin, sizeof(bin)},
		{"SCHILY.xattr.user.twice", "1", 1},
		{"SCHILY.xattr.trusted.overlay.opaque", "y", 1},
		{"SCHILY.xattr.user.twice", "22", 2},
		{"LIBARCHIVE.xattr.user.ignored", "eA==", 4},
	};
	tb_pax(&b, recs, ARRAY_SIZE(recs));
	tb_file(&b, "f", "x");
	tb_file(&b, "g", "y");
	tb_end(&b);
	struct msrc m = {.d = b.d, .n = b.n};
	struct tar_src src = {.read = mread, .arg = &m};
	struct tar t;
	struct tar_entry ent;
	tar_init(&t, &src);
	CHECK(tar_next(&t, &ent, &e) == 1 && ent.nxattrs == 3);
	if (ent.nxattrs == 3) {
		CHECK(!strcmp(ent.xattrs[0].name, "user.bin") && ent.xattrs[0].len == sizeof(bin) &&
		      !memcmp(ent.xattrs[0].value, bin, sizeof(bin)));
		CHECK(!strcmp(ent.xattrs[1].name, "user.twice") && ent.xattrs[1].len == 2 &&
		      !memcmp(ent.xattrs[1].value, "22", 2));
		CHECK(!strcmp(ent.xattrs[2].name, "trusted.overlay.opaque"));
	}
	CHECK(tar_next(&t, &ent, &e) == 1 && !strcmp(ent.path, "g") && ent.nxattrs == 0);
	CHECK(tar_next(&t, &ent, &e) == 0);
	tar_free(&t);
	free(b.d);

	/* More than TAR_XATTRS_MAX, a value past TAR_XATTR_VALUE_MAX, an empty name. */
	struct pax_rec many[TAR_XATTRS_MAX + 1];
	char names[TAR_XATTRS_MAX + 1][32];
	for (int i = 0; i <= TAR_XATTRS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "SCHILY.xattr.user.%d", i);
		many[i] = (struct pax_rec){names[i], "v", 1};
	}
	char *big = calloc(1, TAR_XATTR_VALUE_MAX + 1);
	struct pax_rec huge = {"SCHILY.xattr.user.big", big, TAR_XATTR_VALUE_MAX + 1};
	struct pax_rec empty = {"SCHILY.xattr.", "v", 1};
	const struct {
		const struct pax_rec *r;
		int n;
		const char *want;
	} bad[] = {{many, TAR_XATTRS_MAX + 1, "more than 64 pax xattrs"},
		   {&huge, 1, "more than 65536"},
		   {&empty, 1, "empty name"}};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct tbuf bb = {0};
		char out[256];
		tb_pax(&bb, bad[i].r, bad[i].n);
		tb_file(&bb, "f", "x");
		tb_end(&bb);
		err_clear(&e);
		CHECK(read_all(&bb, out, sizeof(out), &e) == -EINVAL && strstr(e.msg, bad[i].want));
		if (!strstr(e.msg, bad[i].want))
			fprintf(stderr, "xattr case %zu: '%s', wanted '%s'\n", i, e.msg, bad[i].want);
		free(bb.d);
	}
	free(big);
}

static void test_tar_lone_zero_block(void)
{
	struct tbuf b = {0};
	struct err e = {0};
	char out[64];
	static const unsigned char z[512];
	tb_file(&b, "f", "x");
	tb_add(&b, z, 512);
	CHECK(read_all(&b, out, sizeof(out), &e) == 0);
	CHECK(strcmp(out, "f=x") == 0);
	free(b.d);
}

static void test_tar_clean_path(void)
{
	char out[TAR_PATH_MAX];
	CHECK(tar_clean_path("./a//b/./c/", out, NULL) == 0 && strcmp(out, "a/b/c") == 0);
	CHECK(tar_clean_path(".", out, NULL) == 0 && out[0] == '\0');
	CHECK(tar_clean_path("a/..b/c..", out, NULL) == 0 && strcmp(out, "a/..b/c..") == 0);
	CHECK(tar_clean_path("a/../b", out, NULL) == -EINVAL);
	CHECK(tar_clean_path("..", out, NULL) == -EINVAL);
	CHECK(tar_clean_path("/a", out, NULL) == -EINVAL);
}

/* --- unpacking (root: whiteouts are device nodes, opaque is a trusted xattr) --- */

static char tmpdir[64];

static struct unpack_stats us; /* the last unpack_buf's */

static int unpack_buf(struct tbuf *b, const char *into, uint64_t max_bytes, struct err *e)
{
	struct msrc m = {.d = b->d, .n = b->n};
	struct tar_src src = {.read = mread, .arg = &m};
	struct tar t;
	struct unpack_limits lim = {.max_bytes = max_bytes, .max_entries = 1000, .where = into};
	mkdir(into, 0755);
	int fd = open(into, O_RDONLY | O_DIRECTORY);
	tar_init(&t, &src);
	int r = unpack_layer(&t, fd, &lim, &us, e);
	tar_free(&t);
	close(fd);
	return r;
}

static bool at(const char *rel, mode_t type, struct stat *out)
{
	char p[256];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
	if (lstat(p, &st) < 0 || (st.st_mode & S_IFMT) != type)
		return false;
	if (out)
		*out = st;
	return true;
}

static void test_unpack_layer(void)
{
	if (geteuid() != 0)
		SKIP("needs root (whiteouts are device nodes, opaque dirs a trusted xattr)");
	struct tbuf b = {0};
	struct err e = {0};
	char into[128], v[4];
	snprintf(into, sizeof(into), "%s/l1", tmpdir);
	tb_hdr(&b, &(struct hdr){.name = "./", .type = '5', .mode = 0755});
	tb_hdr(&b, &(struct hdr){.name = "etc/", .type = '5', .mode = 0750});
	tb_file(&b, "etc/a", "one");
	tb_file(&b, "etc/a", "two"); /* a later entry replaces */
	tb_hdr(&b, &(struct hdr){.name = "etc/b", .type = '1', .link = "etc/a"});
	tb_hdr(&b, &(struct hdr){.name = "etc/abs", .type = '2', .link = "/etc/passwd"});
	tb_hdr(&b, &(struct hdr){.name = "var/lib/.wh..wh..opq", .type = '0'}); /* parents made */
	tb_hdr(&b, &(struct hdr){.name = "usr/.wh.gone", .type = '0'});
	tb_hdr(&b, &(struct hdr){.name = "fifo", .type = '6'});
	tb_hdr(&b, &(struct hdr){.name = "setuid", .type = '0', .mode = 04755});
	tb_end(&b);
	int r = unpack_buf(&b, into, 1 << 20, &e);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "unpack: %s\n", e.msg);
	struct stat sa, sb;
	CHECK(at("l1/etc", S_IFDIR, &sa) && (sa.st_mode & 07777) == 0750);
	CHECK(at("l1/etc/a", S_IFREG, &sa) && sa.st_size == 3 && at("l1/etc/b", S_IFREG, &sb) &&
	      sa.st_ino == sb.st_ino);
	CHECK(at("l1/etc/abs", S_IFLNK, NULL));
	CHECK(at("l1/usr/gone", S_IFCHR, &sa) && sa.st_rdev == makedev(0, 0));
	CHECK(!at("l1/usr/.wh.gone", S_IFREG, NULL));
	char p[256];
	snprintf(p, sizeof(p), "%s/l1/var/lib", tmpdir);
	CHECK(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y');
	CHECK(!at("l1/var/lib/.wh..wh..opq", S_IFREG, NULL));
	CHECK(at("l1/fifo", S_IFIFO, NULL));
	CHECK(at("l1/setuid", S_IFREG, &sa) && (sa.st_mode & 07777) == 04755);
	free(b.d);
}

/* A directory over a whiteout of the same layer hides what is below it. */
static void test_unpack_dir_over_whiteout(void)
{
	if (geteuid() != 0)
		SKIP("needs root");
	struct tbuf b = {0};
	struct err e = {0};
	char into[128], p[256], v[4];
	snprintf(into, sizeof(into), "%s/l2", tmpdir);
	tb_hdr(&b, &(struct hdr){.name = ".wh.d", .type = '0'});
	tb_hdr(&b, &(struct hdr){.name = "d/", .type = '5'});
	tb_file(&b, "d/new", "n");
	tb_end(&b);
	CHECK(unpack_buf(&b, into, 1 << 20, &e) == 0);
	snprintf(p, sizeof(p), "%s/l2/d", tmpdir);
	CHECK(at("l2/d", S_IFDIR, NULL) && getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1);
	CHECK(at("l2/d/new", S_IFREG, NULL));
	free(b.d);
}

/* Layer xattrs: user.* and security.capability set (the capability after
 * the owner, which would drop it), trusted.* and the others skipped and
 * counted, whatever the entry. */
static void test_unpack_xattrs(void)
{
	if (geteuid() != 0)
		SKIP("needs root (security.capability, trusted.*)");
	struct tbuf b = {0};
	struct err e = {0};
	char into[128], p[256], v[64];
	/* VFS_CAP_REVISION_2 | effective, cap_net_raw (13) permitted. */
	static const unsigned char cap[20] = {0x01, 0, 0, 0x02, 0, 0x20, 0, 0};
	snprintf(into, sizeof(into), "%s/x1", tmpdir);
	tb_pax(&b, (struct pax_rec[]){{"SCHILY.xattr.user.mime", "text/plain", 10},
				      {"SCHILY.xattr.security.capability", cap, sizeof(cap)}}, 2);
	tb_hdr(&b, &(struct hdr){.name = "ping", .type = '0', .mode = 0755});
	tb_pax(&b, (struct pax_rec[]){{"SCHILY.xattr.trusted.overlay.opaque", "y", 1},
				      {"SCHILY.xattr.user.d", "dir", 3}}, 2);
	tb_hdr(&b, &(struct hdr){.name = "d/", .type = '5'});
	tb_pax(&b, (struct pax_rec[]){{"SCHILY.xattr.trusted.overlay.redirect", "/etc", 4},
				      {"SCHILY.xattr.security.selinux", "x", 1}}, 2);
	tb_file(&b, "d/f", "x");
	tb_pax(&b, (struct pax_rec[]){{"SCHILY.xattr.user.l", "l", 1}}, 1);
	tb_hdr(&b, &(struct hdr){.name = "link", .type = '2', .link = "ping"});
	tb_end(&b);
	int r = unpack_buf(&b, into, 1 << 20, &e);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "unpack xattrs: %s\n", e.msg);
	CHECK(us.xattrs == 3 && us.xattrs_skipped == 4);
	CHECK(!strcmp(us.skipped, "trusted.overlay.opaque on 'd'"));
	snprintf(p, sizeof(p), "%s/ping", into);
	CHECK(getxattr(p, "user.mime", v, sizeof(v)) == 10 && !memcmp(v, "text/plain", 10));
	CHECK(getxattr(p, "security.capability", v, sizeof(v)) == sizeof(cap) &&
	      !memcmp(v, cap, sizeof(cap)));
	snprintf(p, sizeof(p), "%s/d", into);
	CHECK(getxattr(p, "user.d", v, sizeof(v)) == 3);
	CHECK(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) < 0 && errno == ENODATA);
	snprintf(p, sizeof(p), "%s/d/f", into);
	CHECK(getxattr(p, "trusted.overlay.redirect", v, sizeof(v)) < 0 && errno == ENODATA);
	ssize_t n = getxattr(p, "security.selinux", v, sizeof(v));
	CHECK(n != 1 || v[0] != 'x'); /* the host's label, if any, not the layer's */
	free(b.d);
}

static void hostile(void (*make)(struct tbuf *b), const char *dir, const char *want, int code)
{
	struct tbuf b = {0};
	struct err e = {0};
	char into[128];
	snprintf(into, sizeof(into), "%s/%s", tmpdir, dir);
	make(&b);
	int r = unpack_buf(&b, into, 1 << 20, &e);
	CHECK(r == code);
	CHECK(strstr(e.msg, want) != NULL);
	if (r != code || !strstr(e.msg, want))
		fprintf(stderr, "%s: got %d '%s', wanted %d '%s'\n", dir, r, e.msg, code, want);
	free(b.d);
}

static char outside[128];

static void mk_through_link(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "esc", .type = '2', .link = outside});
	tb_file(b, "esc/pwned", "x");
	tb_end(b);
}
static void mk_through_rel_link(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "a", .type = '5'});
	tb_hdr(b, &(struct hdr){.name = "a/up", .type = '2', .link = "../../.."});
	tb_file(b, "a/up/pwned", "x");
	tb_end(b);
}
static void mk_device(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "dev/sda", .type = '4', .dev_major = 8});
	tb_end(b);
}
static void mk_link_outside(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "l", .type = '1', .link = "etc/shadow"});
	tb_end(b);
}
static void mk_big(struct tbuf *b)
{
	char data[9000];
	memset(data, 'z', sizeof(data) - 1);
	data[sizeof(data) - 1] = '\0';
	tb_file(b, "big1", data);
	tb_file(b, "big2", data);
	tb_end(b);
}
static void mk_dir_replaced(struct tbuf *b)
{
	tb_hdr(b, &(struct hdr){.name = "d", .type = '5'});
	tb_hdr(b, &(struct hdr){.name = "d", .type = '2', .link = "/"});
	tb_end(b);
}

static void test_unpack_hostile(void)
{
	if (geteuid() != 0)
		SKIP("needs root");
	struct stat st;
	snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
	mkdir(outside, 0755);
	hostile(mk_through_link, "h1", "symbolic link", -EINVAL);
	hostile(mk_through_rel_link, "h2", "symbolic link", -EINVAL);
	char p[256];
	snprintf(p, sizeof(p), "%s/pwned", outside);
	CHECK(lstat(p, &st) < 0);
	snprintf(p, sizeof(p), "%s/pwned", tmpdir);
	CHECK(lstat(p, &st) < 0);
	hostile(mk_device, "h3", "device node", -EPERM);
	CHECK(!at("h3/dev/sda", S_IFBLK, NULL));
	hostile(mk_link_outside, "h4", "not an earlier entry", -EINVAL);
	struct tbuf b = {0};
	struct err e = {0};
	char into[128];
	snprintf(into, sizeof(into), "%s/h5", tmpdir);
	mk_big(&b);
	CHECK(unpack_buf(&b, into, 16384, &e) == -ENOSPC && strstr(e.msg, "needs more than"));
	free(b.d);
	hostile(mk_dir_replaced, "h6", "replace a directory", -EINVAL);
}

/* --- OCI JSON --- */

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_oci_index(void)
{
	struct oci_desc d;
	struct err e = {0};
	const char *one = "{\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			  "\"digest\":\"" D1 "\",\"size\":10}]}";
	CHECK(oci_parse_index(one, strlen(one), "", "amd64", &d, &e) == 0 && !strcmp(d.digest, D1) &&
	      d.size == 10);
	CHECK(oci_parse_index(one, strlen(one), "v1", "amd64", &d, &e) == -ENOENT);
	const char *two = "{\"manifests\":["
			  "{\"digest\":\"" D1 "\",\"size\":1,\"annotations\":{\"org.opencontainers.image.ref.name\":\"a\"}},"
			  "{\"digest\":\"" D2 "\",\"size\":2,\"annotations\":{\"org.opencontainers.image.ref.name\":\"b\"}}]}";
	CHECK(oci_parse_index(two, strlen(two), "b", "amd64", &d, &e) == 0 && !strcmp(d.digest, D2));
	CHECK(oci_parse_index(two, strlen(two), "", "amd64", &d, &e) == -EINVAL &&
	      strstr(e.msg, "SOURCE:TAG"));
	const char *plat = "{\"manifests\":["
			   "{\"digest\":\"" D1 "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
			   "{\"digest\":\"" D2 "\",\"size\":2,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	CHECK(oci_parse_index(plat, strlen(plat), "", "amd64", &d, &e) == 0 && !strcmp(d.digest, D2));
	const char *sha512 = "{\"manifests\":[{\"digest\":\"sha512:ab\",\"size\":1}]}";
	CHECK(oci_parse_index(sha512, strlen(sha512), "", "amd64", &d, &e) == -EOPNOTSUPP);
	const char *bad = "{\"manifests\":[{\"digest\":\"sha256:XYZ\",\"size\":1}]}";
	CHECK(oci_parse_index(bad, strlen(bad), "", "amd64", &d, &e) == -EINVAL);
	CHECK(oci_parse_index("[1]", 3, "", "amd64", &d, &e) == -EINVAL);
	CHECK(oci_parse_index("{\"manifests\":", 13, "", "amd64", &d, &e) == -EINVAL);
}

static void test_oci_manifest_config(void)
{
	struct oci_manifest *m = malloc(sizeof(*m));
	struct oci_image_config *c = malloc(sizeof(*c));
	struct err e = {0};
	const char *mf = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			 "\"digest\":\"" D1 "\",\"size\":5},\"layers\":["
			 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2 "\",\"size\":7},"
			 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" D1 "\",\"size\":8}]}";
	CHECK(oci_parse_manifest(mf, strlen(mf), m, &e) == 0 && m->nlayers == 2 &&
	      m->layers[0].comp == OCI_GZIP && m->layers[1].comp == OCI_TAR && m->config.size == 5);
	const char *zst = "{\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
			  "\"digest\":\"" D1 "\",\"size\":5},\"layers\":["
			  "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D2 "\",\"size\":7}]}";
	CHECK(oci_parse_manifest(zst, strlen(zst), m, &e) == 0 && m->layers[0].comp == OCI_ZSTD);
	const char *cf = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"A=1\"],"
			 "\"WorkingDir\":\"/srv\",\"Entrypoint\":[\"/bin/sh\",\"-c\"]},"
			 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\"]}}";
	CHECK(oci_parse_config(cf, strlen(cf), c, &e) == 0 && c->ndiff_ids == 1 &&
	      !strcmp(c->arch, "amd64"));
	if (c->run) {
		char *s = json_dumps(c->run, JSON_COMPACT | JSON_SORT_KEYS);
		CHECK(s && !strcmp(s, "{\"Cmd\":null,\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Env\":[\"A=1\"],"
				      "\"User\":\"\",\"WorkingDir\":\"/srv\"}"));
		free(s);
		json_decref(c->run);
	}
	const char *badenv = "{\"config\":{\"Env\":[1]}}";
	CHECK(oci_parse_config(badenv, strlen(badenv), c, &e) == -EINVAL && c->run == NULL);
	free(m);
	free(c);
}

/* A blob written into the layout dir at tmpdir/layout; d describes it. */
static void put_blob(const void *data, size_t n, struct oci_desc *d)
{
	char path[256], hex[SHA256_HEX];
	sha256_hex_of(data, n, hex);
	snprintf(path, sizeof(path), "%s/layout/blobs/sha256", tmpdir);
	mkdir_p(path, 0755);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", hex);
	FILE *f = fopen(path, "w");
	fwrite(data, 1, n, f);
	fclose(f);
	memset(d, 0, sizeof(*d));
	snprintf(d->digest, sizeof(d->digest), "sha256:%s", hex);
	d->size = n;
}

/* The layer's tar stream through oci_layer_read: its entries as read_all
 * joins them, or the error. */
static int read_layer(struct oci_src *src, const struct oci_desc *d, const char *diff_id,
		      char *out, size_t cap, struct err *e)
{
	struct oci_layer l;
	struct tar t;
	struct tar_entry ent;
	int r = oci_layer_open(src, d, &l, NULL, NULL, e);
	if (r < 0)
		return r;
	struct tar_src ts = {.read = oci_layer_read, .arg = &l};
	tar_init(&t, &ts);
	out[0] = '\0';
	while ((r = tar_next(&t, &ent, e)) > 0)
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "|" : "", ent.path);
	if (r == 0)
		r = oci_layer_finish(&l, diff_id, e);
	tar_free(&t);
	oci_layer_close(&l);
	return r;
}

/* zstd layers: one frame, two frames with a skippable one between, and a
 * truncated, a corrupt one and one whose window is past the bound (each
 * with a sentence). */
static void test_zstd_layer(void)
{
	struct tbuf b = {0};
	struct err e = {0};
	struct oci_src src;
	struct oci_desc d;
	char out[256], dir[128], diff[OCI_DIGEST_MAX], hex[SHA256_HEX];
	int r;
	tb_file(&b, "etc/motd", "zstd");
	tb_file(&b, "bin/x", "y");
	tb_end(&b);
	sha256_hex_of(b.d, b.n, hex);
	snprintf(diff, sizeof(diff), "sha256:%s", hex);
	size_t cap = ZSTD_compressBound(b.n) * 2 + 64, half = b.n / 2;
	unsigned char *z = malloc(cap);
	size_t n = ZSTD_compress(z, cap, b.d, b.n, 3);
	CHECK(!ZSTD_isError(n));
	snprintf(dir, sizeof(dir), "%s/layout", tmpdir);
	put_blob(z, n, &d);
	CHECK(oci_src_open("oci", dir, &src, &e) == 0);
	r = read_layer(&src, &d, diff, out, sizeof(out), &e);
	if (r)
		fprintf(stderr, "zstd: %d %s [%s]\n", r, e.msg, out);
	CHECK(r == 0 && !strcmp(out, "etc/motd|bin/x"));
	/* Two frames, a skippable frame (magic 0x184D2A50, 4 bytes) between. */
	size_t n1 = ZSTD_compress(z, cap, b.d, half, 1);
	static const unsigned char skip[] = {0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4};
	memcpy(z + n1, skip, sizeof(skip));
	size_t n2 = ZSTD_compress(z + n1 + sizeof(skip), cap - n1 - sizeof(skip), b.d + half,
				  b.n - half, 19);
	put_blob(z, n1 + sizeof(skip) + n2, &d);
	r = read_layer(&src, &d, diff, out, sizeof(out), &e);
	if (r)
		fprintf(stderr, "zstd: %d %s [%s]\n", r, e.msg, out);
	CHECK(r == 0 && !strcmp(out, "etc/motd|bin/x"));
	/* Cut inside the second frame. */
	put_blob(z, n1 + sizeof(skip) + n2 / 2, &d);
	CHECK(read_layer(&src, &d, diff, out, sizeof(out), &e) < 0 && strstr(e.msg, "zstd stream is"));
	/* Garbage after a good frame. */
	memset(z + n1, 0xee, 64);
	put_blob(z, n1 + 64, &d);
	err_clear(&e);
	CHECK(read_layer(&src, &d, diff, out, sizeof(out), &e) == -EINVAL &&
	      strstr(e.msg, "zstd stream is corrupt"));
	/* A frame asking for a 256 MiB window (streamed: its size not known). */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_outBuffer zo = {.dst = z, .size = cap};
	ZSTD_inBuffer zi = {.src = b.d, .size = b.n};
	CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 28)));
	CHECK(!ZSTD_isError(ZSTD_compressStream2(cc, &zo, &zi, ZSTD_e_continue)));
	CHECK(ZSTD_compressStream2(cc, &zo, &zi, ZSTD_e_end) == 0);
	ZSTD_freeCCtx(cc);
	put_blob(z, zo.pos, &d);
	err_clear(&e);
	CHECK(read_layer(&src, &d, diff, out, sizeof(out), &e) == -EFBIG &&
	      strstr(e.msg, "a window of more than 128 MiB"));
	oci_src_close(&src);
	free(z);
	free(b.d);
}

static void test_docker_manifest(void)
{
	struct oci_manifest *m = malloc(sizeof(*m));
	struct err e = {0};
	const char *two = "[{\"Config\":\"./c1.json\",\"RepoTags\":[\"a:1\",\"a:latest\"],"
			  "\"Layers\":[\"x/layer.tar\",\"blobs/sha256/ab\"]},"
			  "{\"Config\":\"c2.json\",\"RepoTags\":null,\"Layers\":[\"y.tar\"]}]";
	CHECK(oci_parse_docker_manifest(two, strlen(two), "a", m, &e) == 0 && m->nlayers == 2 &&
	      !strcmp(m->config.member, "c1.json") && !strcmp(m->layers[0].member, "x/layer.tar") &&
	      !strcmp(m->layers[1].member, "blobs/sha256/ab"));
	CHECK(oci_parse_docker_manifest(two, strlen(two), "a:1", m, &e) == 0 && m->nlayers == 2);
	CHECK(oci_parse_docker_manifest(two, strlen(two), "b", m, &e) == -ENOENT &&
	      strstr(e.msg, "tags: 'a:1', 'a:latest'") && m->nlayers == 0);
	CHECK(oci_parse_docker_manifest(two, strlen(two), "", m, &e) == -EINVAL &&
	      strstr(e.msg, "2 images"));
	const char *bad[][2] = {
		{"[{\"Config\":\"c\",\"Layers\":[\"a/../../x\"]}]", "'..' component"},
		{"[{\"Config\":\"/c\",\"Layers\":[\"x\"]}]", "absolute path"},
		{"[{\"Config\":\"c\",\"Layers\":[]}]", "lists no layers"},
		{"[{\"Config\":\"c\",\"Layers\":[\"./\"]}]", "is empty or longer"},
		{"[{\"Config\":7,\"Layers\":[\"x\"]}]", "Config is not a member name"},
		{"{\"Config\":\"c\"}", "is not a list"},
		{"[{\"Config\":\"c\",\"Layers\":[\"x\"]}", "not valid JSON"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err_clear(&e);
		int r = oci_parse_docker_manifest(bad[i][0], strlen(bad[i][0]), "", m, &e);
		CHECK(r < 0 && strstr(e.msg, bad[i][1]));
		if (r >= 0 || !strstr(e.msg, bad[i][1]))
			fprintf(stderr, "docker manifest %zu: %d '%s', wanted '%s'\n", i, r, e.msg, bad[i][1]);
	}
	free(m);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_images.XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	RUN(test_sha256_vectors);
	RUN(test_sha256_incremental);
	RUN(test_tar_ustar);
	RUN(test_tar_long_names);
	RUN(test_tar_base256);
	RUN(test_tar_refuses);
	RUN(test_tar_lone_zero_block);
	RUN(test_tar_xattrs);
	RUN(test_tar_clean_path);
	RUN(test_unpack_layer);
	RUN(test_unpack_dir_over_whiteout);
	RUN(test_unpack_xattrs);
	RUN(test_unpack_hostile);
	RUN(test_oci_index);
	RUN(test_oci_manifest_config);
	RUN(test_docker_manifest);
	RUN(test_zstd_layer);
	vmm_remove_tree(tmpdir);
	UNIT_DONE("images");
}
