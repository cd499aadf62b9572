/* libFuzzer target: an image layer's tar stream as engine/tar.c reads it.
 *
 * The input is the stream. The first byte sets how many bytes each read of
 * the source returns at most (1 to 256, or all: a pipe and gzip give short
 * reads); the rest is the archive. Every entry is read as the unpacker reads
 * it: tar_next, then its data in reads of varying sizes (or skipped, for
 * every other entry). Besides the sanitizers, it asserts:
 *   - tar_next returns 1, 0 (the end) or -errno with a NUL-terminated,
 *     non-empty sentence, and once it ended or failed the reader is left;
 *   - every path (and a hard link's target) is cleaned: relative, no empty,
 *     `.` or `..` component, no trailing '/', under TAR_PATH_MAX; a symbolic
 *     link has a target; only a file has data, and its data reads back to
 *     exactly its size (or an error);
 *   - the stream offset only grows and never passes the input;
 *   - an entry's xattrs (pax SCHILY.xattr) are at most TAR_XATTRS_MAX, each
 *     with a non-empty name of at most TAR_XATTR_NAME_MAX bytes, given once,
 *     and a value of at most TAR_XATTR_VALUE_MAX bytes (read to its end).
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/tar.h"

#define MUST(cond)                                                                       \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_tar: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                     \
			abort();                                                         \
		}                                                                        \
	} while (0)

struct msrc {
	const uint8_t *d;
	size_t n, pos, chunk;
};

static ssize_t mread(void *arg, void *buf, size_t n, struct err *e)
{
	(void)e;
	struct msrc *m = arg;
	if (n > m->n - m->pos)
		n = m->n - m->pos;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->d + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static void path_clean(const char *p, bool root_ok)
{
	size_t n = strnlen(p, TAR_PATH_MAX);
	MUST(n < TAR_PATH_MAX);
	MUST(root_ok || n > 0);
	if (n == 0)
		return;
	MUST(p[0] != '/' && p[n - 1] != '/');
	MUST(!strstr(p, "//"));
	const char *c = p;
	for (;;) {
		const char *s = strchr(c, '/');
		size_t len = s ? (size_t)(s - c) : strlen(c);
		MUST(len > 0 && len <= 255);
		MUST(!(len == 1 && c[0] == '.') && !(len == 2 && c[0] == '.' && c[1] == '.'));
		if (!s)
			break;
		c = s + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct msrc m = {.d = data + 1, .n = size - 1, .chunk = data[0]};
	struct tar_src src = {.read = mread, .arg = &m};
	struct tar t;
	struct tar_entry *ent = malloc(sizeof(*ent));
	char buf[1024];
	uint64_t last = 0;
	int r, k = 0;
	MUST(ent);
	tar_init(&t, &src);
	struct err e = {0};
	while ((r = tar_next(&t, ent, &e)) > 0) {
		MUST(t.offset >= last && t.offset <= m.n);
		last = t.offset;
		path_clean(ent->path, true);
		MUST(ent->type >= TAR_FILE && ent->type <= TAR_FIFO);
		MUST(ent->mode <= 07777);
		if (ent->type == TAR_HARDLINK)
			path_clean(ent->link, false);
		if (ent->type == TAR_SYMLINK)
			MUST(ent->link[0] && strnlen(ent->link, TAR_PATH_MAX) < TAR_PATH_MAX);
		MUST(ent->type == TAR_FILE || ent->size == 0);
		MUST(ent->nxattrs >= 0 && ent->nxattrs <= TAR_XATTRS_MAX);
		for (int i = 0; i < ent->nxattrs; i++) {
			const struct tar_xattr *x = &ent->xattrs[i];
			size_t nl = strlen(x->name);
			MUST(nl > 0 && nl <= TAR_XATTR_NAME_MAX && x->len <= TAR_XATTR_VALUE_MAX);
			volatile char last = x->len ? x->value[x->len - 1] : 0;
			(void)last;
			for (int j = 0; j < i; j++)
				MUST(strcmp(ent->xattrs[j].name, x->name) != 0);
		}
		if (k++ % 2)
			continue; /* skipped by the next tar_next */
		uint64_t got = 0;
		ssize_t n;
		size_t want = (size_t)(k * 37 % sizeof(buf)) + 1;
		while ((n = tar_read(&t, buf, want, &e)) > 0)
			got += (uint64_t)n;
		if (n < 0) {
			r = (int)n;
			break;
		}
		MUST(got == ent->size);
	}
	MUST(r <= 0);
	if (r < 0)
		MUST(e.code == r && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
	MUST(t.offset <= m.n);
	tar_free(&t);
	free(ent);
	return 0;
}
