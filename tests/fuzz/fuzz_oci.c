/* libFuzzer target: what an OCI layout holds, as engine/oci.c reads it for
 * an import (images/ctl): index.json, a manifest, an image config, an
 * oci-archive's tar, a docker-archive's manifest.json and tar.
 *
 * The first byte of the input picks the reader (its value modulo 7): 0
 * index.json asked for the tag "latest", 1 index.json with no tag, 2 a
 * manifest, 3 an image config, 4 an oci-archive (the rest of the input is
 * the archive file: its members are scanned, index.json read and every blob
 * opened and read through its digest, then as a layer, through gzip or zstd
 * when it is compressed), 5 a docker-archive's manifest.json
 * asked for "busy" then for the only image, 6 a docker-archive (scanned,
 * links resolved, manifest.json parsed, its members resolved and read).
 * Besides the sanitizers, it asserts:
 *   - every answer is 0 or -errno with a NUL-terminated, non-empty sentence;
 *   - what a parser accepts is checked: descriptors have sha256 digests of
 *     64 hex digits, a manifest 1 to OCI_LAYERS_MAX layers, each tar, gzip
 *     or zstd,
 *     a config's run settings a JSON object and its diff_ids digests;
 *   - an archive's members lie inside the file and name index.json or a
 *     blob (any cleaned path of a docker-archive); a blob read never passes
 *     its descriptor's size;
 *   - a docker manifest's member names are cleaned (relative, no `..`).
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../engine/oci.h"

#define MUST(cond)                                                                       \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_oci: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                     \
			abort();                                                         \
		}                                                                        \
	} while (0)

static void answered(int r, const struct err *e)
{
	MUST(r <= 0);
	if (r < 0)
		MUST(e->code == r && e->msg[0] && memchr(e->msg, '\0', sizeof(e->msg)));
}

static void index_case(const char *text, size_t len, const char *tag)
{
	struct oci_desc d;
	struct err e = {0};
	int r = oci_parse_index(text, len, tag, "amd64", &d, &e);
	answered(r, &e);
	if (r == 0)
		MUST(oci_digest_ok(d.digest) && strnlen(d.media_type, OCI_MEDIA_MAX) < OCI_MEDIA_MAX);
}

static void manifest_case(const char *text, size_t len)
{
	struct oci_manifest *m = malloc(sizeof(*m));
	struct err e = {0};
	MUST(m);
	int r = oci_parse_manifest(text, len, m, &e);
	answered(r, &e);
	if (r == 0) {
		MUST(oci_digest_ok(m->config.digest));
		MUST(m->nlayers >= 1 && m->nlayers <= OCI_LAYERS_MAX);
		for (int i = 0; i < m->nlayers; i++)
			MUST(oci_digest_ok(m->layers[i].digest) &&
			     (m->layers[i].comp == OCI_TAR || m->layers[i].comp == OCI_GZIP ||
			      m->layers[i].comp == OCI_ZSTD));
	}
	free(m);
}

static void config_case(const char *text, size_t len)
{
	struct oci_image_config *c = malloc(sizeof(*c));
	struct err e = {0};
	MUST(c);
	int r = oci_parse_config(text, len, c, &e);
	answered(r, &e);
	if (r == 0) {
		MUST(json_is_object(c->run));
		MUST(c->ndiff_ids >= 0 && c->ndiff_ids <= OCI_LAYERS_MAX);
		for (int i = 0; i < c->ndiff_ids; i++)
			MUST(oci_digest_ok(c->diff_ids[i]));
		json_decref(c->run);
	} else {
		MUST(c->run == NULL);
	}
	free(c);
}

static int archive_open(const uint8_t *data, size_t len, const char *kind, struct oci_src *s,
			int *fd, struct err *e);

/* The blob as a layer: through gzip or zstd when its first bytes say so,
 * read to its end with what it may unpack to bounded. */
static void layer_case(struct oci_src *s, const struct oci_desc *d)
{
	struct oci_layer l;
	struct err e = {0};
	char buf[4096];
	ssize_t n;
	int r = oci_layer_open(s, d, &l, NULL, NULL, &e);
	answered(r, &e);
	if (r < 0)
		return;
	l.max_out = 1u << 20;
	while ((n = oci_layer_read(&l, buf, sizeof(buf), &e)) > 0)
		MUST((size_t)n <= sizeof(buf) && l.out_bytes <= l.max_out);
	answered(n < 0 ? (int)n : 0, &e);
	oci_layer_close(&l);
}

static void archive_case(const uint8_t *data, size_t len)
{
	struct oci_src s;
	struct err e = {0};
	int fd, r = archive_open(data, len, "oci-archive", &s, &fd, &e);
	if (r == 0) {
		for (size_t i = 0; i < s.nmembers; i++) {
			struct oci_member *m = &s.members[i];
			MUST(!strcmp(m->name, "index.json") || !strncmp(m->name, "blobs/sha256/", 13));
			if (strncmp(m->name, "blobs/sha256/", 13) != 0)
				continue;
			struct oci_desc d = {.size = m->size};
			snprintf(d.digest, sizeof(d.digest), "sha256:%s", m->name + 13);
			char *text = NULL;
			size_t n;
			err_clear(&e);
			int br = oci_blob_slurp(&s, &d, &text, &n, NULL, &e);
			answered(br, &e);
			MUST(br < 0 || n == d.size);
			free(text);
			layer_case(&s, &d);
		}
		char *text = NULL;
		size_t n;
		err_clear(&e);
		r = oci_read_json(&s, "index.json", &text, &n, &e);
		answered(r, &e);
		if (r == 0)
			index_case(text, n, "");
		free(text);
		oci_src_close(&s);
	}
	close(fd);
}

static void docker_manifest_case(const char *text, size_t len, const char *ref)
{
	struct oci_manifest *m = malloc(sizeof(*m));
	struct err e = {0};
	MUST(m);
	int r = oci_parse_docker_manifest(text, len, ref, m, &e);
	answered(r, &e);
	if (r == 0) {
		MUST(m->nlayers >= 1 && m->nlayers <= OCI_LAYERS_MAX);
		for (int i = -1; i < m->nlayers; i++) {
			const char *n = i < 0 ? m->config.member : m->layers[i].member;
			MUST(n[0] && n[0] != '/' && strnlen(n, OCI_MEMBER_MAX) < OCI_MEMBER_MAX);
			MUST(strcmp(n, "..") && strncmp(n, "../", 3) && !strstr(n, "/../"));
		}
	} else {
		MUST(m->nlayers == 0);
	}
	free(m);
}

static int archive_open(const uint8_t *data, size_t len, const char *kind, struct oci_src *s,
			int *fd, struct err *e)
{
	*fd = memfd_create("fuzz_oci", MFD_CLOEXEC);
	MUST(*fd >= 0);
	MUST(write(*fd, data, len) == (ssize_t)len);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", *fd);
	int r = oci_src_open(kind, path, s, e);
	answered(r, e);
	for (size_t i = 0; r == 0 && i < s->nmembers; i++)
		MUST(s->members[i].off <= len && s->members[i].size <= len - s->members[i].off);
	return r;
}

static void docker_archive_case(const uint8_t *data, size_t len)
{
	struct oci_src s;
	struct oci_manifest *m = malloc(sizeof(*m));
	struct err e = {0};
	char *text = NULL;
	size_t n;
	int fd;
	MUST(m);
	if (archive_open(data, len, "docker-archive", &s, &fd, &e) == 0) {
		err_clear(&e);
		int r = oci_read_json(&s, "manifest.json", &text, &n, &e);
		if (r == 0)
			r = oci_parse_docker_manifest(text, n, "", m, &e);
		if (r == 0)
			r = oci_docker_resolve(&s, m, &e);
		answered(r, &e);
		for (int i = -1; r == 0 && i < m->nlayers; i++) {
			struct oci_desc *d = i < 0 ? &m->config : &m->layers[i];
			char *blob = NULL;
			size_t bn;
			MUST(d->by_diff_id == !d->digest[0]);
			if (d->by_diff_id) /* no digest: read through a placeholder, unchecked */
				snprintf(d->digest, sizeof(d->digest), "sha256:%064d", 0);
			err_clear(&e);
			int br = oci_blob_slurp(&s, d, &blob, &bn, NULL, &e);
			answered(br, &e);
			MUST(br < 0 || bn == d->size);
			free(blob);
		}
		free(text);
		oci_src_close(&s);
	}
	close(fd);
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > OCI_JSON_MAX)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 7) {
	case 0:
		index_case(text, len, "latest");
		break;
	case 1:
		index_case(text, len, "");
		break;
	case 2:
		manifest_case(text, len);
		break;
	case 3:
		config_case(text, len);
		break;
	case 4:
		archive_case(data + 1, len);
		break;
	case 5:
		docker_manifest_case(text, len, "busy");
		docker_manifest_case(text, len, "");
		break;
	default:
		docker_archive_case(data + 1, len);
	}
	return 0;
}
