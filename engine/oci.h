/* OCI image layouts (image-spec v1): the JSON of index.json, manifests and
 * image configs, and the blobs of a layout directory (`oci:DIR`) or of a tar
 * of one (`oci-archive:FILE`, read with tar.h); and the tar `docker save`
 * writes (`docker-archive:FILE`: manifest.json naming the config and layer
 * members). The parsers are pure (the fuzz target drives them); a blob is
 * read through its sha256 and its size, which must match its descriptor, and
 * a layer is read through gzip (zlib) or zstd (libzstd) when it is
 * compressed. Everything here is hostile input. */
#ifndef SBX_OCI_H
#define SBX_OCI_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common.h"
#include "sha256.h"

#define OCI_LAYERS_MAX 128        /* layers of one manifest */
#define OCI_JSON_MAX (4u << 20)   /* index.json, a manifest, a config */
#define OCI_DIGEST_MAX 72         /* "sha256:" and 64 hex digits, NUL */
#define OCI_TAG_MAX 128
#define OCI_MEDIA_MAX 128
#define OCI_ARCHIVE_MEMBERS_MAX 65536 /* blobs of an oci-archive, files of a docker-archive */
#define OCI_MEMBER_MAX 128        /* a member's name in an archive, NUL included */

enum oci_compression { OCI_TAR, OCI_GZIP, OCI_ZSTD };
#define OCI_ZSTD_WINDOW_LOG_MAX 27 /* a zstd frame's window: at most 128 MiB (zstd's own default) */

struct oci_desc {
	char media_type[OCI_MEDIA_MAX];
	char digest[OCI_DIGEST_MAX]; /* sha256:<hex> */
	uint64_t size;
	enum oci_compression comp; /* layers */
	/* A docker-archive's member holding the blob ("" in an OCI layout,
	 * where the digest names it: blobs/sha256/HEX). */
	char member[OCI_MEMBER_MAX];
	/* The blob's own digest is not known (a docker-archive's
	 * ID/layer.tar): digest is the layer's diff_id, which its uncompressed
	 * stream is checked against instead. */
	bool by_diff_id;
};

struct oci_manifest {
	struct oci_desc config;
	struct oci_desc layers[OCI_LAYERS_MAX]; /* bottom first */
	int nlayers;
};

struct oci_image_config {
	char os[32], arch[32];
	char created[64]; /* as the image says, "" when it does not */
	/* What a process of the image runs with: Env, WorkingDir, User,
	 * Entrypoint, Cmd (checked and bounded; absent ones are null or empty). */
	json_t *run;
	char diff_ids[OCI_LAYERS_MAX][OCI_DIGEST_MAX]; /* the layers' uncompressed sha256 */
	int ndiff_ids;
};

/* The host's architecture as OCI names it (amd64, arm64...). */
const char *oci_host_arch(void);
/* A digest this reader can check: "sha256:" and 64 lower-case hex digits. */
bool oci_digest_ok(const char *d);

/* index.json (or a nested index): the manifest tagged `tag` (the
 * org.opencontainers.image.ref.name annotation), or with tag "" the only
 * one; among several, the one for linux/arch. A nested index shows as a
 * descriptor whose media_type is an index's (oci_is_index). */
int oci_parse_index(const char *text, size_t len, const char *tag, const char *arch,
		    struct oci_desc *out, struct err *e);
bool oci_is_index(const struct oci_desc *d);
int oci_parse_manifest(const char *text, size_t len, struct oci_manifest *m, struct err *e);
/* Fills c (free c->run with json_decref). */
int oci_parse_config(const char *text, size_t len, struct oci_image_config *c, struct err *e);
/* A docker-archive's manifest.json: the entry whose RepoTags hold ref
 * (NAME:TAG; NAME alone means NAME:latest), or with ref "" the only one.
 * Fills m's config and layers with their member names (cleaned: relative,
 * no `..`), sizes and digests not known yet (oci_docker_resolve). */
int oci_parse_docker_manifest(const char *text, size_t len, const char *ref,
			      struct oci_manifest *m, struct err *e);

/* --- reading a layout --- */

struct oci_member {
	char name[OCI_MEMBER_MAX]; /* index.json, blobs/sha256/<hex>; a docker-archive's files */
	uint64_t off, size;
};

struct oci_src {
	int dir_fd;  /* oci:DIR; -1 for an archive */
	int file_fd; /* oci-archive:FILE; -1 for a directory */
	struct oci_member *members;
	size_t nmembers;
};

/* kind "oci", "oci-archive" or "docker-archive"; path absolute. An archive
 * is scanned once for its members (bounded); in a docker-archive, a link
 * member (docker save links a layer it wrote already) stands for the file it
 * names inside the archive, when that came before it. */
int oci_src_open(const char *kind, const char *path, struct oci_src *s, struct err *e);
void oci_src_close(struct oci_src *s);
/* A JSON file of the layout or archive (index.json, manifest.json), whole
 * (at most OCI_JSON_MAX); free *out. */
int oci_read_json(struct oci_src *s, const char *name, char **out, size_t *len, struct err *e);
/* A docker-archive's descriptors of m: each member's size, and the digest
 * its name says (blobs/sha256/HEX, or a config's HEX.json), checked when
 * read. -ENOENT with a sentence for a name the archive does not hold. */
int oci_docker_resolve(struct oci_src *s, struct oci_manifest *m, struct err *e);

struct oci_blob {
	int fd;
	uint64_t off, size, pos;
	struct sha256 h;
	char digest[OCI_DIGEST_MAX];
	bool check; /* the digest is the blob's own (not a diff_id: by_diff_id) */
	_Atomic uint64_t *progress; /* bytes read are added here (may be NULL) */
	const atomic_bool *cancel;
};

int oci_blob_open(struct oci_src *s, const struct oci_desc *d, struct oci_blob *b, struct err *e);
ssize_t oci_blob_read(struct oci_blob *b, void *buf, size_t n, struct err *e);
/* Reads what is left and compares the digest. */
int oci_blob_finish(struct oci_blob *b, struct err *e);
void oci_blob_close(struct oci_blob *b);
/* A small blob (JSON) whole, checked; free *out. */
int oci_blob_slurp(struct oci_src *s, const struct oci_desc *d, char **out, size_t *len,
		   _Atomic uint64_t *progress, struct err *e);

/* A layer's tar stream: the blob, through gzip or zstd when it is
 * compressed (its first bytes decide), with the sha256 of what comes out
 * (its diff_id). */
struct oci_layer {
	struct oci_blob blob;
	enum oci_compression comp;
	bool z_live, z_end;
	z_stream z;
	ZSTD_DStream *zs;
	ZSTD_inBuffer zs_in;
	bool zs_between; /* between two zstd frames: the blob may end there */
	unsigned char *zin;
	struct sha256 diff;
	uint64_t out_bytes;
	uint64_t max_out; /* what it may unpack to, padding and skipped data included (0: any) */
};

int oci_layer_open(struct oci_src *s, const struct oci_desc *d, struct oci_layer *l,
		   _Atomic uint64_t *progress, const atomic_bool *cancel, struct err *e);
/* A tar_src read callback (arg: the struct oci_layer). */
ssize_t oci_layer_read(void *arg, void *buf, size_t n, struct err *e);
/* After the tar's end: what follows it (at most 1 MiB of padding) is read,
 * and the blob's digest and, when diff_id is not "", the uncompressed
 * stream's are compared. */
int oci_layer_finish(struct oci_layer *l, const char *diff_id, struct err *e);
void oci_layer_close(struct oci_layer *l);

#endif
