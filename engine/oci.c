/* OCI image layouts (oci.h): the JSON documents, checked field by field, and
 * the blobs of a directory or an archive, read through their digests. */
#define _GNU_SOURCE
#include "oci.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "ctl.h"
#include "tar.h"

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define REF_NAME "org.opencontainers.image.ref.name"
#define INDEX_MANIFESTS_MAX 1024
#define RUN_LIST_MAX 4096   /* Env entries, Entrypoint and Cmd words */
#define RUN_STRING_MAX 32768
#define LAYER_TRAILER_MAX (1u << 20) /* data after a layer's end-of-archive blocks */
#define ARCHIVE_ENTRIES_MAX 1000000
#define ARCHIVE_LINKS_MAX 1024 /* link members of a docker-archive */
#define LINK_HOPS_MAX 8
#define CHUNK (64u << 10)

const char *oci_host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__i386__)
	return "386";
#elif defined(__powerpc64__)
	return "ppc64le";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv)
	return "riscv64";
#else
	return "unknown";
#endif
}

bool oci_digest_ok(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
		return false;
	return strspn(d + 7, "0123456789abcdef") == 64;
}

bool oci_is_index(const struct oci_desc *d)
{
	return strcmp(d->media_type, MT_OCI_INDEX) == 0 || strcmp(d->media_type, MT_DOCKER_LIST) == 0;
}

/* --- JSON --- */

/* A JSON document of any kind (an object unless any), or NULL with a sentence. */
static json_t *load_json(const char *text, size_t len, const char *what, bool any, struct err *e)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		/* Not je.text: it quotes the input, which may be any file root can read. */
		err_set(e, -EINVAL, "%s is not valid JSON (line %d, column %d)", what, je.line,
			je.column);
	else if (!any && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
		err_set(e, -EINVAL, "%s is not a JSON object", what);
	}
	return j;
}

static json_t *load(const char *text, size_t len, const char *what, struct err *e)
{
	return load_json(text, len, what, false, e);
}

/* A string member no longer than cap-1 bytes and without NUL: 1, 0 when
 * absent (or null), -EINVAL otherwise. */
static int get_str(json_t *o, const char *key, const char *where, char *out, size_t cap,
		   struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= cap ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return err_set(e, -EINVAL, "%s: %s is not a string of at most %zu bytes", where, key,
			       cap - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 1;
}

static int parse_desc(json_t *o, const char *where, struct oci_desc *d, struct err *e)
{
	memset(d, 0, sizeof(*d));
	if (!json_is_object(o))
		return err_set(e, -EINVAL, "%s is not a descriptor (a JSON object)", where);
	int r = get_str(o, "mediaType", where, d->media_type, sizeof(d->media_type), e);
	if (r < 0)
		return r;
	if ((r = get_str(o, "digest", where, d->digest, sizeof(d->digest), e)) <= 0)
		return r < 0 ? r : err_set(e, -EINVAL, "%s has no digest", where);
	if (strncmp(d->digest, "sha256:", 7) != 0)
		return err_set(e, -EOPNOTSUPP, "%s: digest '%.80s' is not sha256, the only algorithm "
			       "checked here", where, d->digest);
	if (!oci_digest_ok(d->digest))
		return err_set(e, -EINVAL, "%s: digest '%.80s' is malformed", where, d->digest);
	json_t *sz = json_object_get(o, "size");
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return err_set(e, -EINVAL, "%s has no size (a non-negative integer)", where);
	d->size = (uint64_t)json_integer_value(sz);
	return 0;
}

static const char *ref_name(json_t *m)
{
	json_t *a = json_object_get(m, "annotations");
	json_t *n = json_is_object(a) ? json_object_get(a, REF_NAME) : NULL;
	return json_is_string(n) ? json_string_value(n) : NULL;
}

static bool for_platform(json_t *m, const char *arch)
{
	json_t *p = json_object_get(m, "platform");
	json_t *os = json_is_object(p) ? json_object_get(p, "os") : NULL;
	json_t *ar = json_is_object(p) ? json_object_get(p, "architecture") : NULL;
	return json_is_string(os) && json_is_string(ar) && !strcmp(json_string_value(os), "linux") &&
	       !strcmp(json_string_value(ar), arch);
}

static int pick(json_t *list, const char *tag, const char *arch, struct oci_desc *out,
		struct err *e)
{
	size_t matched = 0, on_arch = 0, i;
	json_t *m, *one = NULL, *mine = NULL;
	char tags[160] = "";
	json_array_foreach(list, i, m) {
		const char *ref = ref_name(m);
		if (ref && strlen(tags) < 100)
			snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags), "%s'%.40s'",
				 tags[0] ? ", " : "", ref);
		if (tag[0] && (!ref || strcmp(ref, tag) != 0))
			continue;
		matched++;
		one = m;
		if (for_platform(m, arch))
			on_arch++, mine = m;
	}
	if (matched == 0)
		return tag[0] ? err_set(e, -ENOENT, "no manifest of the index is tagged '%.80s' (its "
					"tags: %s)", tag, tags[0] ? tags : "none")
			      : err_set(e, -EINVAL, "the index lists no manifest");
	if (matched > 1 && on_arch != 1)
		return err_set(e, -EINVAL, "the index has %zu manifests%s%.80s%s and %zu for linux/%s: "
			       "name one with SOURCE:TAG (tags: %s)", matched, tag[0] ? " tagged '" : "",
			       tag, tag[0] ? "'" : "", on_arch, arch, tags[0] ? tags : "none");
	return parse_desc(matched > 1 ? mine : one, "the manifest's descriptor", out, e);
}

int oci_parse_index(const char *text, size_t len, const char *tag, const char *arch,
		    struct oci_desc *out, struct err *e)
{
	json_t *j = load(text, len, "the index", e);
	if (!j)
		return e ? e->code : -EINVAL;
	json_t *list = json_object_get(j, "manifests");
	int r;
	if (!json_is_array(list))
		r = err_set(e, -EINVAL, "the index has no manifests list");
	else if (json_array_size(list) > INDEX_MANIFESTS_MAX)
		r = err_set(e, -EINVAL, "the index lists %zu manifests, more than %d",
			    json_array_size(list), INDEX_MANIFESTS_MAX);
	else
		r = pick(list, tag, arch, out, e);
	json_decref(j);
	return r;
}

static int layer_kind(struct oci_desc *d, int i, struct err *e)
{
	static const char *const tar[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
	};
	static const char *const gz[] = {
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
	};
	for (size_t k = 0; k < ARRAY_SIZE(tar); k++)
		if (!strcmp(d->media_type, tar[k]))
			return d->comp = OCI_TAR, 0;
	static const char *const zst[] = {
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	};
	for (size_t k = 0; k < ARRAY_SIZE(gz); k++)
		if (!strcmp(d->media_type, gz[k]))
			return d->comp = OCI_GZIP, 0;
	for (size_t k = 0; k < ARRAY_SIZE(zst); k++)
		if (!strcmp(d->media_type, zst[k]))
			return d->comp = OCI_ZSTD, 0;
	return err_set(e, -EOPNOTSUPP, "layer %d has media type '%.80s', not an image layer this "
		       "reader knows", i + 1, d->media_type);
}

/* A manifest's list of layers: 1 to OCI_LAYERS_MAX of them. */
static int layer_list(json_t *layers, const char *where, struct err *e)
{
	if (!json_is_array(layers) || json_array_size(layers) == 0)
		return err_set(e, -EINVAL, "%s lists no layers", where);
	if (json_array_size(layers) > OCI_LAYERS_MAX)
		return err_set(e, -EINVAL, "%s lists %zu layers, more than %d", where,
			       json_array_size(layers), OCI_LAYERS_MAX);
	return 0;
}

static int manifest_body(json_t *j, struct oci_manifest *m, struct err *e)
{
	char mt[OCI_MEDIA_MAX] = "";
	json_t *sv = json_object_get(j, "schemaVersion");
	if (sv && (!json_is_integer(sv) || json_integer_value(sv) != 2))
		return err_set(e, -EINVAL, "the manifest's schemaVersion is not 2");
	int r = get_str(j, "mediaType", "the manifest", mt, sizeof(mt), e);
	if (r < 0)
		return r;
	if (mt[0] && strcmp(mt, MT_OCI_MANIFEST) && strcmp(mt, MT_DOCKER_MANIFEST))
		return err_set(e, -EINVAL, "the manifest has media type '%.80s', not an image "
			       "manifest", mt);
	if ((r = parse_desc(json_object_get(j, "config"), "the manifest's config", &m->config, e)) < 0)
		return r;
	if (strcmp(m->config.media_type, "application/vnd.oci.image.config.v1+json") &&
	    strcmp(m->config.media_type, "application/vnd.docker.container.image.v1+json"))
		return err_set(e, -EOPNOTSUPP, "the manifest's config has media type '%.80s': not a "
			       "container image", m->config.media_type);
	json_t *layers = json_object_get(j, "layers"), *l;
	size_t i;
	if ((r = layer_list(layers, "the manifest", e)) < 0)
		return r;
	json_array_foreach(layers, i, l) {
		char where[48];
		snprintf(where, sizeof(where), "layer %zu of the manifest", i + 1);
		if ((r = parse_desc(l, where, &m->layers[i], e)) < 0 ||
		    (r = layer_kind(&m->layers[i], (int)i, e)) < 0)
			return r;
	}
	m->nlayers = (int)json_array_size(layers);
	return 0;
}

int oci_parse_manifest(const char *text, size_t len, struct oci_manifest *m, struct err *e)
{
	memset(m, 0, sizeof(*m));
	json_t *j = load(text, len, "the manifest", e);
	if (!j)
		return e ? e->code : -EINVAL;
	int r = manifest_body(j, m, e);
	json_decref(j);
	if (r < 0)
		m->nlayers = 0;
	return r;
}

/* A list of strings (Env, Entrypoint, Cmd): a checked copy, or null. */
static int str_list(json_t *cfg, const char *key, json_t **out, struct err *e)
{
	json_t *v = json_object_get(cfg, key), *s;
	size_t i;
	*out = NULL;
	if (!v || json_is_null(v)) {
		*out = strcmp(key, "Env") == 0 ? json_array() : json_null();
		return 0;
	}
	if (!json_is_array(v) || json_array_size(v) > RUN_LIST_MAX)
		return err_set(e, -EINVAL, "the image config's %s is not a list of at most %d strings",
			       key, RUN_LIST_MAX);
	json_t *copy = json_array();
	json_array_foreach(v, i, s) {
		if (!json_is_string(s) || json_string_length(s) > RUN_STRING_MAX ||
		    strlen(json_string_value(s)) != json_string_length(s)) {
			json_decref(copy);
			return err_set(e, -EINVAL, "the image config's %s holds something other than a "
				       "string of at most %d bytes", key, RUN_STRING_MAX);
		}
		json_array_append_new(copy, json_string(json_string_value(s)));
	}
	*out = copy;
	return 0;
}

static int run_config(json_t *j, struct oci_image_config *c, struct err *e)
{
	json_t *cfg = json_object_get(j, "config");
	if (cfg && !json_is_null(cfg) && !json_is_object(cfg))
		return err_set(e, -EINVAL, "the image config's config is not an object");
	json_t *empty = json_object();
	if (!cfg || json_is_null(cfg))
		cfg = empty;
	char wd[4096] = "", user[256] = "";
	json_t *env = NULL, *ep = NULL, *cmd = NULL;
	int r;
	if ((r = get_str(cfg, "WorkingDir", "the image config", wd, sizeof(wd), e)) >= 0 &&
	    (r = get_str(cfg, "User", "the image config", user, sizeof(user), e)) >= 0 &&
	    (r = ctl_user_ok(user) ? 0 : err_set(e, -EINVAL, "the image config's User '%.64s' is "
						 "not USER, UID, USER:GROUP or UID:GID", user)) >= 0 &&
	    (r = str_list(cfg, "Env", &env, e)) >= 0 && (r = str_list(cfg, "Entrypoint", &ep, e)) >= 0 &&
	    (r = str_list(cfg, "Cmd", &cmd, e)) >= 0) {
		c->run = json_pack("{s:o, s:s, s:s, s:o, s:o}", "Env", env, "WorkingDir", wd, "User",
				   user, "Entrypoint", ep, "Cmd", cmd);
		env = ep = cmd = NULL;
		r = c->run ? 0 : err_set(e, -ENOMEM, "out of memory");
	}
	json_decref(env);
	json_decref(ep);
	json_decref(cmd);
	json_decref(empty);
	return r;
}

static int diff_ids(json_t *j, struct oci_image_config *c, struct err *e)
{
	json_t *rootfs = json_object_get(j, "rootfs"), *ids, *d;
	size_t i;
	if (!rootfs)
		return 0;
	ids = json_is_object(rootfs) ? json_object_get(rootfs, "diff_ids") : NULL;
	if (!json_is_array(ids) || json_array_size(ids) > OCI_LAYERS_MAX)
		return err_set(e, -EINVAL, "the image config's rootfs.diff_ids is not a list of at "
			       "most %d digests", OCI_LAYERS_MAX);
	json_array_foreach(ids, i, d) {
		if (!json_is_string(d) || !oci_digest_ok(json_string_value(d)))
			return err_set(e, -EINVAL, "the image config's diff_id %zu is not a sha256 "
				       "digest", i + 1);
		snprintf(c->diff_ids[i], sizeof(c->diff_ids[i]), "%s", json_string_value(d));
	}
	c->ndiff_ids = (int)json_array_size(ids);
	return 0;
}

int oci_parse_config(const char *text, size_t len, struct oci_image_config *c, struct err *e)
{
	memset(c, 0, sizeof(*c));
	json_t *j = load(text, len, "the image config", e);
	if (!j)
		return e ? e->code : -EINVAL;
	int r;
	if ((r = get_str(j, "os", "the image config", c->os, sizeof(c->os), e)) >= 0 &&
	    (r = get_str(j, "architecture", "the image config", c->arch, sizeof(c->arch), e)) >= 0 &&
	    (r = get_str(j, "created", "the image config", c->created, sizeof(c->created), e)) >= 0 &&
	    (r = diff_ids(j, c, e)) >= 0)
		r = run_config(j, c, e);
	json_decref(j);
	if (r < 0) {
		json_decref(c->run);
		c->run = NULL;
		c->ndiff_ids = 0;
		return r;
	}
	return 0;
}

/* --- docker-archive's manifest.json --- */

#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define REPO_TAGS_MAX 1024

/* A member name of manifest.json, cleaned into out. */
static int docker_name(json_t *v, const char *what, char out[OCI_MEMBER_MAX], struct err *e)
{
	char clean[TAR_PATH_MAX];
	const char *s = json_string_value(v);
	if (!s || strlen(s) != json_string_length(v) || !s[0])
		return err_set(e, -EINVAL, "manifest.json: %s is not a member name", what);
	if (strlen(s) >= TAR_PATH_MAX)
		return err_set(e, -EINVAL, "manifest.json: %s is longer than %d bytes", what,
			       TAR_PATH_MAX - 1);
	int r = tar_clean_path(s, clean, e);
	if (r < 0)
		return e ? err_wrap(e, "manifest.json: %s", what) : r;
	if (!clean[0] || strlen(clean) >= OCI_MEMBER_MAX)
		return err_set(e, -EINVAL, "manifest.json: %s '%.80s' is empty or longer than %d "
			       "bytes", what, s, OCI_MEMBER_MAX - 1);
	memcpy(out, clean, strlen(clean) + 1);
	return 0;
}

/* Whether the entry's RepoTags hold ref (NAME alone: NAME:latest). */
static bool has_tag(json_t *ent, const char *ref, char *tags, size_t cap)
{
	json_t *list = json_object_get(ent, "RepoTags"), *t;
	size_t i, rl = strlen(ref);
	bool bare = !strchr(ref, ':'), hit = false;
	json_array_foreach(list, i, t) {
		const char *s = json_string_value(t);
		if (!s || i >= REPO_TAGS_MAX)
			continue;
		if (strlen(tags) < 100)
			snprintf(tags + strlen(tags), cap - strlen(tags), "%s'%.40s'", tags[0] ? ", " : "", s);
		hit |= !strcmp(s, ref) ||
		       (bare && !strncmp(s, ref, rl) && !strcmp(s + rl, ":latest"));
	}
	return hit;
}

static int docker_entry(json_t *list, const char *ref, json_t **out, struct err *e)
{
	json_t *ent, *one = NULL;
	size_t i, matched = 0;
	char tags[160] = "";
	json_array_foreach(list, i, ent) {
		if (!json_is_object(ent))
			return err_set(e, -EINVAL, "manifest.json: entry %zu is not an object", i + 1);
		if (has_tag(ent, ref, tags, sizeof(tags)) || !ref[0])
			matched++, one = ent;
	}
	if (matched == 1) {
		*out = one;
		return 0;
	}
	if (matched == 0)
		return ref[0] ? err_set(e, -ENOENT, "no image of the archive is tagged '%.80s' (its "
					"tags: %s)", ref, tags[0] ? tags : "none")
			      : err_set(e, -EINVAL, "manifest.json lists no image");
	return err_set(e, -EINVAL, "the archive has %zu images%s%.80s%s: name one with "
		       "SOURCE:NAME:TAG (tags: %s)", matched, ref[0] ? " tagged '" : "", ref,
		       ref[0] ? "'" : "", tags[0] ? tags : "none");
}

static int docker_body(json_t *j, const char *ref, struct oci_manifest *m, struct err *e)
{
	json_t *ent = NULL, *layers, *l;
	size_t i;
	if (!json_is_array(j) || json_array_size(j) > INDEX_MANIFESTS_MAX)
		return err_set(e, -EINVAL, "manifest.json is not a list of at most %d images",
			       INDEX_MANIFESTS_MAX);
	int r = docker_entry(j, ref, &ent, e);
	if (r < 0)
		return r;
	if ((r = docker_name(json_object_get(ent, "Config"), "Config", m->config.member, e)) < 0)
		return r;
	snprintf(m->config.media_type, sizeof(m->config.media_type), MT_DOCKER_CONFIG);
	layers = json_object_get(ent, "Layers");
	if ((r = layer_list(layers, "manifest.json", e)) < 0)
		return r;
	json_array_foreach(layers, i, l) {
		char what[32];
		snprintf(what, sizeof(what), "layer %zu", i + 1);
		if ((r = docker_name(l, what, m->layers[i].member, e)) < 0)
			return r;
		/* Plain tar or gzip: the bytes decide (oci_layer_open). */
		snprintf(m->layers[i].media_type, OCI_MEDIA_MAX, MT_DOCKER_LAYER);
		m->layers[i].comp = OCI_TAR;
	}
	m->nlayers = (int)json_array_size(layers);
	return 0;
}

int oci_parse_docker_manifest(const char *text, size_t len, const char *ref,
			      struct oci_manifest *m, struct err *e)
{
	memset(m, 0, sizeof(*m));
	json_t *j = load_json(text, len, "manifest.json", true, e);
	if (!j)
		return e ? e->code : -EINVAL;
	int r = docker_body(j, ref, m, e);
	json_decref(j);
	if (r < 0)
		m->nlayers = 0;
	return r;
}

/* --- sources --- */

/* A regular file, opened for reading; anything else (a FIFO, a device) is
 * never opened, only looked at through an O_PATH fd: -EINVAL. dirfd -1: path
 * as it is, else beneath dirfd. */
static int open_regular(int dirfd, const char *path)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	long p = dirfd >= 0 ? syscall(SYS_openat2, dirfd, path, &how, sizeof(how))
			    : open(path, O_PATH | O_CLOEXEC);
	if (p < 0)
		return -errno;
	struct stat st;
	char self[64];
	int fd = -EINVAL;
	if (fstat((int)p, &st) == 0 && S_ISREG(st.st_mode)) {
		snprintf(self, sizeof(self), "/proc/self/fd/%ld", p);
		fd = open(self, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			fd = -errno;
	}
	close((int)p);
	return fd;
}

struct file_src {
	int fd;
	uint64_t pos, size;
};

static ssize_t file_read(void *arg, void *buf, size_t n, struct err *e)
{
	struct file_src *f = arg;
	if (n > f->size - f->pos)
		n = (size_t)(f->size - f->pos);
	if (n == 0)
		return 0;
	ssize_t r = pread(f->fd, buf, n, (off_t)f->pos);
	if (r < 0)
		return err_set(e, -errno, "cannot read the archive: %s", strerror(errno));
	f->pos += (uint64_t)r;
	return r;
}

static int file_skip(void *arg, uint64_t n, struct err *e)
{
	struct file_src *f = arg;
	if (n > f->size - f->pos)
		return err_set(e, -EIO, "the archive is truncated: it ends at byte %" PRIu64
			       ", inside an entry's data", f->size);
	f->pos += n;
	return 0;
}

static bool member_name(const char *p)
{
	return !strcmp(p, "index.json") ||
	       (!strncmp(p, "blobs/sha256/", 13) && strlen(p) == 13 + 64 &&
		strspn(p + 13, "0123456789abcdef") == 64);
}

/* Members sorted by name, then by where their data lies: of a name, the
 * last in the archive wins, as tar would extract it. */
static int member_cmp(const void *a, const void *b)
{
	const struct oci_member *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : x->off < y->off ? -1 : x->off > y->off;
}

static const struct oci_member *find_in(const struct oci_member *m, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* the first past every member named name or less */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(m[mid].name, name) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && !strcmp(m[lo - 1].name, name) ? &m[lo - 1] : NULL;
}

static const struct oci_member *find_member(const struct oci_src *s, const char *name)
{
	return find_in(s->members, s->nmembers, name);
}

static int add_member(struct oci_src *s, size_t *cap, const char *name, uint64_t off,
		      uint64_t size, struct err *e)
{
	if (s->nmembers == *cap) {
		if (*cap >= OCI_ARCHIVE_MEMBERS_MAX)
			return err_set(e, -EINVAL, "the archive holds more than %d files",
				       OCI_ARCHIVE_MEMBERS_MAX);
		size_t ncap = *cap ? *cap * 2 : 64;
		struct oci_member *m = realloc(s->members, ncap * sizeof(*m));
		if (!m)
			return err_set(e, -ENOMEM, "out of memory");
		s->members = m;
		*cap = ncap;
	}
	struct oci_member *m = &s->members[s->nmembers++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->off = off;
	m->size = size;
	return 0;
}

/* A link member's target as a path of the archive (a symbolic link's taken
 * from its own directory); "" when it is absolute, climbs above the
 * archive's root or is too long: then it names no member. */
static void link_target(const struct tar_entry *ent, char out[OCI_MEMBER_MAX])
{
	char joined[2 * TAR_PATH_MAX];
	const char *slash = strrchr(ent->path, '/');
	size_t o = 0;
	out[0] = '\0';
	if (ent->type == TAR_HARDLINK) {
		if (strlen(ent->link) < OCI_MEMBER_MAX)
			snprintf(out, OCI_MEMBER_MAX, "%s", ent->link);
		return;
	}
	if (ent->link[0] == '/')
		return;
	snprintf(joined, sizeof(joined), "%.*s/%s", slash ? (int)(slash - ent->path) : 0,
		 ent->path, ent->link);
	for (char *save, *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		size_t n = strlen(c);
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			if (o == 0)
				goto none;
			while (o > 0 && out[o - 1] != '/')
				o--;
			out[o ? --o : 0] = '\0';
			continue;
		}
		if (o + 1 + n >= OCI_MEMBER_MAX)
			goto none;
		if (o)
			out[o++] = '/';
		memcpy(out + o, c, n + 1);
		o += n;
	}
	return;
none:
	out[0] = '\0';
}

struct link_member {
	char name[OCI_MEMBER_MAX], target[OCI_MEMBER_MAX];
};

/* A docker-archive's links as members: each stands for the file its target
 * is (through at most LINK_HOPS_MAX links), wherever that lies in the
 * archive; one that names no file stands for nothing. */
static int add_links(struct oci_src *s, size_t *cap, const struct link_member *l, size_t n,
		     struct err *e)
{
	size_t files = s->nmembers;
	int r = 0;
	if (!s->nmembers) /* no file: no link stands for one (and qsort wants an array) */
		return 0;
	qsort(s->members, s->nmembers, sizeof(*s->members), member_cmp);
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *t = l[i].target;
		const struct oci_member *to = NULL;
		for (int hop = 0; hop < LINK_HOPS_MAX && t && !to; hop++) {
			to = find_in(s->members, files, t); /* the files: sorted */
			const char *next = NULL;
			for (size_t k = 0; k < n && !to && !next; k++)
				if (!strcmp(l[k].name, t))
					next = l[k].target;
			t = next;
		}
		if (to) {
			struct oci_member m = *to;
			r = add_member(s, cap, l[i].name, m.off, m.size, e);
		}
	}
	qsort(s->members, s->nmembers, sizeof(*s->members), member_cmp);
	return r;
}

/* The archive's members that matter, with where their data lies: an
 * oci-archive's index.json and blobs; a docker-archive's files, and its
 * links (docker save links a layer it wrote already). */
static int scan_archive(struct oci_src *s, uint64_t size, bool docker, struct err *e)
{
	struct file_src f = {.fd = s->file_fd, .size = size};
	struct tar_src src = {.read = file_read, .skip = file_skip, .arg = &f};
	struct tar t;
	struct tar_entry *ent = malloc(sizeof(*ent));
	struct link_member *links = NULL;
	size_t cap = 0, nlinks = 0;
	int r = ent ? 0 : err_set(e, -ENOMEM, "out of memory");
	tar_init(&t, &src);
	while (r == 0 && (r = tar_next(&t, ent, e)) > 0) {
		r = 0;
		if (t.entries > ARCHIVE_ENTRIES_MAX) {
			r = err_set(e, -EINVAL, "the archive has more than %d entries", ARCHIVE_ENTRIES_MAX);
			break;
		}
		if (strlen(ent->path) >= OCI_MEMBER_MAX)
			continue;
		if (ent->type == TAR_FILE && (docker || member_name(ent->path))) {
			r = add_member(s, &cap, ent->path, t.offset, ent->size, e);
		} else if (docker && (ent->type == TAR_SYMLINK || ent->type == TAR_HARDLINK)) {
			if (!links && !(links = calloc(ARCHIVE_LINKS_MAX, sizeof(*links))))
				r = err_set(e, -ENOMEM, "out of memory");
			else if (nlinks == ARCHIVE_LINKS_MAX)
				r = err_set(e, -EINVAL, "the archive holds more than %d links",
					    ARCHIVE_LINKS_MAX);
			else {
				snprintf(links[nlinks].name, OCI_MEMBER_MAX, "%s", ent->path);
				link_target(ent, links[nlinks].target);
				nlinks++;
			}
		}
	}
	if (r == 0)
		r = add_links(s, &cap, links, nlinks, e);
	tar_free(&t);
	free(links);
	free(ent);
	return r;
}

int oci_src_open(const char *kind, const char *path, struct oci_src *s, struct err *e)
{
	memset(s, 0, sizeof(*s));
	s->dir_fd = s->file_fd = -1;
	struct stat st;
	if (strcmp(kind, "oci") == 0) {
		s->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->dir_fd < 0)
			return err_set(e, -errno, "cannot open the OCI layout %.200s: %s", path,
				       strerror(errno));
		return 0;
	}
	s->file_fd = open_regular(-1, path);
	if (s->file_fd == -EINVAL)
		return err_set(e, -EINVAL, "the archive %.200s is not a regular file", path);
	if (s->file_fd < 0)
		return err_set(e, s->file_fd, "cannot open the archive %.200s: %s", path,
			       strerror(-s->file_fd));
	if (fstat(s->file_fd, &st) < 0) {
		int r = err_set(e, -errno, "cannot stat %.200s: %s", path, strerror(errno));
		oci_src_close(s);
		return r;
	}
	int r = scan_archive(s, (uint64_t)st.st_size, !strcmp(kind, "docker-archive"), e);
	if (r < 0)
		oci_src_close(s);
	return r;
}

void oci_src_close(struct oci_src *s)
{
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	if (s->file_fd >= 0)
		close(s->file_fd);
	free(s->members);
	memset(s, 0, sizeof(*s));
	s->dir_fd = s->file_fd = -1;
}

/* A file of the layout: an fd of its own, and where its bytes lie. */
static int src_file(struct oci_src *s, const char *name, int *fd, uint64_t *off, uint64_t *size,
		    struct err *e)
{
	if (s->dir_fd >= 0) {
		struct stat st;
		int f = open_regular(s->dir_fd, name);
		if (f == -EINVAL)
			return err_set(e, -EINVAL, "the layout's %s is not a regular file", name);
		if (f < 0)
			return err_set(e, f == -ENOENT ? -ENOENT : -EINVAL, "the layout has no %s (%s)",
				       name, strerror(-f));
		if (fstat(f, &st) < 0) {
			close(f);
			return err_set(e, -EIO, "cannot stat the layout's %s", name);
		}
		*fd = f;
		*off = 0;
		*size = (uint64_t)st.st_size;
		return 0;
	}
	const struct oci_member *m = find_member(s, name);
	if (!m)
		return err_set(e, -ENOENT, "the archive has no %.200s", name);
	if ((*fd = fcntl(s->file_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return err_set(e, -errno, "dup: %s", strerror(errno));
	*off = m->off;
	*size = m->size;
	return 0;
}

static int read_all(int fd, uint64_t off, char *buf, size_t n, const char *what, struct err *e)
{
	for (size_t got = 0; got < n;) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (r <= 0)
			return err_set(e, r < 0 ? -errno : -EIO, "cannot read %s: %s", what,
				       r < 0 ? strerror(errno) : "it is truncated");
		got += (size_t)r;
	}
	return 0;
}

int oci_read_json(struct oci_src *s, const char *name, char **out, size_t *len, struct err *e)
{
	int fd;
	uint64_t off, size;
	int r = src_file(s, name, &fd, &off, &size, e);
	if (r < 0)
		return r;
	char *buf = NULL;
	if (size > OCI_JSON_MAX)
		r = err_set(e, -EINVAL, "%s has %" PRIu64 " bytes, more than %u", name, size,
			    OCI_JSON_MAX);
	else if (!(buf = malloc((size_t)size + 1)))
		r = err_set(e, -ENOMEM, "out of memory");
	else
		r = read_all(fd, off, buf, (size_t)size, name, e);
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[size] = '\0';
	*out = buf;
	*len = (size_t)size;
	return 0;
}

/* The digest a docker-archive's member name says: blobs/sha256/HEX, or
 * HEX.json for a config (docker save names it by its digest). */
static void digest_of_name(const char *name, bool config, char out[OCI_DIGEST_MAX])
{
	const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	size_t n = strlen(base);
	out[0] = '\0';
	if (!strncmp(name, "blobs/sha256/", 13) && base == name + 13 && n == 64)
		snprintf(out, OCI_DIGEST_MAX, "sha256:%s", base);
	else if (config && base == name && n == 64 + 5 && !strcmp(base + 64, ".json"))
		snprintf(out, OCI_DIGEST_MAX, "sha256:%.64s", base);
	if (out[0] && !oci_digest_ok(out))
		out[0] = '\0';
}

static int resolve_one(struct oci_src *s, struct oci_desc *d, bool config, const char *what,
		       struct err *e)
{
	const struct oci_member *m = find_member(s, d->member);
	if (!m)
		return err_set(e, -ENOENT, "manifest.json names %s '%.200s', which is not a file of "
			       "the archive", what, d->member);
	d->size = m->size;
	digest_of_name(d->member, config, d->digest);
	d->by_diff_id = !d->digest[0];
	return 0;
}

int oci_docker_resolve(struct oci_src *s, struct oci_manifest *m, struct err *e)
{
	int r = resolve_one(s, &m->config, true, "the config", e);
	for (int i = 0; i < m->nlayers && r == 0; i++) {
		char what[32];
		snprintf(what, sizeof(what), "layer %d", i + 1);
		r = resolve_one(s, &m->layers[i], false, what, e);
	}
	return r;
}

/* --- blobs --- */

int oci_blob_open(struct oci_src *s, const struct oci_desc *d, struct oci_blob *b, struct err *e)
{
	char name[OCI_MEMBER_MAX];
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	snprintf(name, sizeof(name), "blobs/sha256/%s", d->digest + 7);
	if (d->member[0])
		snprintf(name, sizeof(name), "%s", d->member);
	int r = src_file(s, name, &b->fd, &b->off, &b->size, e);
	if (r < 0)
		return r;
	if (b->size != d->size) {
		r = err_set(e, -EINVAL, "blob %s has %" PRIu64 " bytes; its descriptor says %" PRIu64,
			    d->digest, b->size, d->size);
		oci_blob_close(b);
		return r;
	}
	snprintf(b->digest, sizeof(b->digest), "%s", d->digest);
	b->check = !d->by_diff_id;
	sha256_init(&b->h);
	return 0;
}

ssize_t oci_blob_read(struct oci_blob *b, void *buf, size_t n, struct err *e)
{
	if (b->cancel && atomic_load(b->cancel))
		return err_set(e, -ECANCELED, "the daemon is stopping");
	if (n > b->size - b->pos)
		n = (size_t)(b->size - b->pos);
	if (n == 0)
		return 0;
	ssize_t r = pread(b->fd, buf, n, (off_t)(b->off + b->pos));
	if (r < 0)
		return err_set(e, -errno, "cannot read blob %s: %s", b->digest, strerror(errno));
	if (r == 0)
		return err_set(e, -EIO, "blob %s is truncated at %" PRIu64 " of %" PRIu64 " bytes",
			       b->digest, b->pos, b->size);
	sha256_update(&b->h, buf, (size_t)r);
	b->pos += (uint64_t)r;
	if (b->progress)
		atomic_fetch_add(b->progress, (uint64_t)r);
	return r;
}

int oci_blob_finish(struct oci_blob *b, struct err *e)
{
	char *buf = malloc(CHUNK);
	if (!buf)
		return err_set(e, -ENOMEM, "out of memory");
	ssize_t r;
	while ((r = oci_blob_read(b, buf, CHUNK, e)) > 0)
		;
	free(buf);
	if (r < 0)
		return (int)r;
	uint8_t d[SHA256_BYTES];
	char hex[SHA256_HEX];
	sha256_final(&b->h, d);
	sha256_hex(d, hex);
	if (b->check && strcmp(hex, b->digest + 7) != 0)
		return err_set(e, -EINVAL, "blob %s does not match its digest: its content hashes to "
			       "sha256:%s", b->digest, hex);
	return 0;
}

void oci_blob_close(struct oci_blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

int oci_blob_slurp(struct oci_src *s, const struct oci_desc *d, char **out, size_t *len,
		   _Atomic uint64_t *progress, struct err *e)
{
	struct oci_blob b;
	if (d->size > OCI_JSON_MAX)
		return err_set(e, -EINVAL, "blob %s has %" PRIu64 " bytes, more than the %u a JSON "
			       "document may have", d->digest, d->size, OCI_JSON_MAX);
	int r = oci_blob_open(s, d, &b, e);
	if (r < 0)
		return r;
	b.progress = progress;
	char *buf = malloc((size_t)d->size + 1);
	size_t got = 0;
	if (!buf)
		r = err_set(e, -ENOMEM, "out of memory");
	while (r == 0 && got < d->size) {
		ssize_t n = oci_blob_read(&b, buf + got, (size_t)d->size - got, e);
		if (n < 0)
			r = (int)n;
		else
			got += (size_t)n;
	}
	if (r == 0)
		r = oci_blob_finish(&b, e);
	oci_blob_close(&b);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/* --- layers --- */

int oci_layer_open(struct oci_src *s, const struct oci_desc *d, struct oci_layer *l,
		   _Atomic uint64_t *progress, const atomic_bool *cancel, struct err *e)
{
	memset(l, 0, sizeof(*l));
	int r = oci_blob_open(s, d, &l->blob, e);
	if (r < 0)
		return r;
	l->blob.progress = progress;
	l->blob.cancel = cancel;
	sha256_init(&l->diff);
	unsigned char m[4] = {0};
	ssize_t n = l->blob.size >= 4 ? pread(l->blob.fd, m, 4, (off_t)l->blob.off) : 0;
	/* What the bytes are decides, not the media type (tools mislabel). */
	if (n == 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		l->comp = OCI_ZSTD;
	else if (n == 4 && m[0] == 0x1f && m[1] == 0x8b)
		l->comp = OCI_GZIP;
	if (l->comp != OCI_TAR && !(l->zin = malloc(CHUNK)))
		r = err_set(e, -ENOMEM, "out of memory");
	else if (l->comp == OCI_GZIP && inflateInit2(&l->z, 16 + MAX_WBITS) != Z_OK)
		r = err_set(e, -ENOMEM, "cannot start zlib");
	else if (l->comp == OCI_GZIP)
		l->z_live = true;
	else if (l->comp == OCI_ZSTD && (!(l->zs = ZSTD_createDStream()) ||
					 ZSTD_isError(ZSTD_DCtx_setParameter(l->zs, ZSTD_d_windowLogMax,
									     OCI_ZSTD_WINDOW_LOG_MAX))))
		r = err_set(e, -ENOMEM, "cannot start zstd");
	if (r < 0)
		oci_layer_close(l);
	return r;
}

static int refill(struct oci_layer *l, struct err *e)
{
	ssize_t r = oci_blob_read(&l->blob, l->zin, CHUNK, e);
	if (r < 0)
		return (int)r;
	l->z.next_in = l->zin;
	l->z.avail_in = (uInt)r;
	return (int)r;
}

static ssize_t inflate_some(struct oci_layer *l, void *buf, size_t n, struct err *e)
{
	if (n > CHUNK)
		n = CHUNK;
	l->z.next_out = buf;
	l->z.avail_out = (uInt)n;
	while (!l->z_end && l->z.avail_out == n) {
		int r;
		if (l->z.avail_in == 0 && (r = refill(l, e)) <= 0)
			return r < 0 ? r : err_set(e, -EIO, "layer %s: the gzip stream is truncated",
						   l->blob.digest);
		int zr = inflate(&l->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END) {
			/* Another gzip member may follow (a valid gzip file). */
			if (l->z.avail_in == 0 && (r = refill(l, e)) < 0)
				return r;
			if (l->z.avail_in >= 2 && l->z.next_in[0] == 0x1f && l->z.next_in[1] == 0x8b)
				inflateReset(&l->z);
			else
				l->z_end = true;
		} else if (zr != Z_OK && !(zr == Z_BUF_ERROR && l->z.avail_in == 0)) {
			return err_set(e, -EINVAL, "layer %s: the gzip stream is corrupt (%s)",
				       l->blob.digest, l->z.msg ? l->z.msg : "inflate failed");
		}
	}
	return (ssize_t)(n - l->z.avail_out);
}

/* zstd: frames one after the other (skippable ones skipped), up to the
 * blob's end, which must fall between two frames. */
static ssize_t zstd_some(struct oci_layer *l, void *buf, size_t n, struct err *e)
{
	ZSTD_outBuffer out = {.dst = buf, .size = n < CHUNK ? n : CHUNK};
	while (out.pos < out.size && out.pos == 0) {
		if (l->zs_in.pos == l->zs_in.size && !l->z_end) {
			ssize_t r = oci_blob_read(&l->blob, l->zin, CHUNK, e);
			if (r < 0)
				return r;
			l->z_end = r == 0;
			l->zs_in = (ZSTD_inBuffer){.src = l->zin, .size = (size_t)r};
		}
		size_t left = ZSTD_decompressStream(l->zs, &out, &l->zs_in);
		if (ZSTD_getErrorCode(left) == ZSTD_error_frameParameter_windowTooLarge)
			return err_set(e, -EFBIG, "layer %s: a zstd frame needs a window of more than "
				       "%u MiB, the most this reader gives one", l->blob.digest,
				       1u << (OCI_ZSTD_WINDOW_LOG_MAX - 20));
		if (ZSTD_isError(left))
			return err_set(e, -EINVAL, "layer %s: the zstd stream is corrupt (%s)",
				       l->blob.digest, ZSTD_getErrorName(left));
		if (out.pos == 0 && l->z_end && l->zs_in.pos == l->zs_in.size)
			return l->zs_between ? 0 : err_set(e, -EIO, "layer %s: the zstd stream is "
							   "truncated", l->blob.digest);
		l->zs_between = left == 0; /* a frame ended, all of it out */
	}
	return (ssize_t)out.pos;
}

ssize_t oci_layer_read(void *arg, void *buf, size_t n, struct err *e)
{
	struct oci_layer *l = arg;
	ssize_t r = l->comp == OCI_GZIP   ? inflate_some(l, buf, n, e)
		    : l->comp == OCI_ZSTD ? zstd_some(l, buf, n, e)
					  : oci_blob_read(&l->blob, buf, n, e);
	if (r <= 0)
		return r;
	sha256_update(&l->diff, buf, (size_t)r);
	l->out_bytes += (uint64_t)r;
	if (l->max_out && l->out_bytes > l->max_out)
		return err_set(e, -EFBIG, "layer %s unpacks to more than %" PRIu64 " MB", l->blob.digest,
			       l->max_out >> 20);
	return r;
}

int oci_layer_finish(struct oci_layer *l, const char *diff_id, struct err *e)
{
	char buf[4096];
	uint64_t extra = 0;
	ssize_t r;
	while ((r = oci_layer_read(l, buf, sizeof(buf), e)) > 0)
		if ((extra += (uint64_t)r) > LAYER_TRAILER_MAX)
			return err_set(e, -EINVAL, "layer %s has more than %u bytes after the end of "
				       "its archive", l->blob.digest, LAYER_TRAILER_MAX);
	if (r < 0)
		return (int)r;
	int rr = oci_blob_finish(&l->blob, e);
	if (rr < 0 || !diff_id[0])
		return rr;
	uint8_t d[SHA256_BYTES];
	char hex[SHA256_HEX];
	sha256_final(&l->diff, d);
	sha256_hex(d, hex);
	if (strcmp(hex, diff_id + 7) != 0)
		return err_set(e, -EINVAL, "layer %s: its content hashes to sha256:%s, not to its "
			       "diff_id %s in the image config", l->blob.digest, hex, diff_id);
	return 0;
}

void oci_layer_close(struct oci_layer *l)
{
	if (l->z_live)
		inflateEnd(&l->z);
	l->z_live = false;
	ZSTD_freeDStream(l->zs); /* NULL: nothing */
	l->zs = NULL;
	free(l->zin);
	l->zin = NULL;
	oci_blob_close(&l->blob);
}
