/* The journal's JSON, both ways: the config and timings the daemon writes,
 * and journal_parse, the pure reader of a whole journal. Everything read is
 * checked as if a user had written it: the file is on the host's disk, but a
 * journal can be tampered with, and what it names becomes paths (image,
 * layers), cgroup limits and pids the daemon signals. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "journal.h"

static const struct {
	const char *name;
	int state;
} states[] = {
	{"creating", SBX_CREATING}, {"running", SBX_RUNNING}, {"paused", SBX_PAUSED},
	{"standby", SBX_STANDBY},   {"stopped", SBX_STOPPED}, {"failed", SBX_FAILED},
	{"stopping", SBX_STOPPING},
};

const char *journal_state_name(int state)
{
	for (size_t i = 0; i < ARRAY_SIZE(states); i++)
		if (states[i].state == state)
			return states[i].name;
	return "unknown";
}

/* JSON integers are signed 64-bit for jansson: a larger value (memory=16E is
 * a valid option) is written as the largest one, which means the same. */
static json_int_t jint(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v;
}

json_t *journal_config_json(const char *name, const struct sbx_config *c)
{
	char created[64];
	time_t sec = (time_t)(c->created_wall_usec / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *lowers = json_array();
	for (int i = 0; i < c->nlowers; i++)
		json_array_append_new(lowers, json_string(c->lowers[i]));
	return json_pack("{s:s, s:s, s:s, s:I, s:f, s:I, s:b, s:I, s:I, s:I, s:I, s:o, s:s, s:I, s:o, "
			 "s:i, s:o}",
			 "name", name, "image", c->image, "backend", c->backend,
			 "memory", jint(c->memory_bytes), "cpus", c->cpu_millis / 1000.0,
			 "pids", (json_int_t)c->pids, "net", c->net,
			 "timeout", (json_int_t)c->timeout_sec, "joblog", jint(c->joblog_bytes),
			 "rate", jint(c->rate_bps), "disk", jint(c->disk_bytes),
			 "parent", c->parent[0] ? json_string(c->parent) : json_null(),
			 "created", created, "created_usec", jint(c->created_wall_usec),
			 "layers", lowers, "fork_generation", (int)c->fork_generation,
			 "flat", c->flat[0] ? json_string(c->flat) : json_null());
}

json_t *journal_times_json(const struct sbx_times *t)
{
	json_t *o = json_object();
#define PUT(f) json_object_set_new(o, #f, json_integer(jint(t->f)));
	JOURNAL_TIME_FIELDS(PUT)
#undef PUT
	return o;
}

json_t *journal_expose_json(const struct net_expose *x, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:i, s:i}", "proto",
						   net_proto_name(x[i].proto), "port", x[i].port,
						   "host_port", x[i].host_port));
	return a;
}

/* ---- the reader ------------------------------------------------------------
 * Each getter reads o[key] (where names the object, "config." or
 * "snapshots[2]." for the sentence). Absent: -EINVAL when required, else 0
 * with *out untouched. */

static int missing(const char *where, const char *key, bool required, struct err *e)
{
	return required ? err_set(e, -EINVAL, "%s%s is missing", where, key) : 0;
}

static int get_int(json_t *o, const char *where, const char *key, bool required, json_int_t min,
		   json_int_t max, json_int_t *out, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return missing(where, key, required, e);
	if (!json_is_integer(v))
		return err_set(e, -EINVAL, "%s%s is not an integer", where, key);
	json_int_t n = json_integer_value(v);
	if (n < min || n > max)
		return err_set(e, -EINVAL, "%s%s is %" JSON_INTEGER_FORMAT ", outside %"
			       JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT, where, key, n, min, max);
	*out = n;
	return 0;
}

static int get_u64(json_t *o, const char *where, const char *key, bool required, uint64_t min,
		   uint64_t *out, struct err *e)
{
	json_int_t n;
	int r = get_int(o, where, key, required, (json_int_t)min, INT64_MAX, &n, e);
	if (r == 0 && json_object_get(o, key))
		*out = (uint64_t)n;
	return r;
}

static int get_u32(json_t *o, const char *where, const char *key, bool required, uint32_t min,
		   uint32_t max, uint32_t *out, struct err *e)
{
	json_int_t n;
	int r = get_int(o, where, key, required, min, max, &n, e);
	if (r == 0 && json_object_get(o, key))
		*out = (uint32_t)n;
	return r;
}

/* A string that fits cap (NUL included) and holds no control character (the
 * daemon escapes them before it stores a sentence); copied into out. With
 * nullable, JSON null reads as "". */
static int get_str(json_t *o, const char *where, const char *key, bool required, bool nullable,
		   char *out, size_t cap, struct err *e)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return missing(where, key, required, e);
	if (nullable && json_is_null(v)) {
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v))
		return err_set(e, -EINVAL, "%s%s is not a string%s", where, key,
			       nullable ? " or null" : "");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n >= cap)
		return err_set(e, -EINVAL, "%s%s is %zu bytes long, more than %zu", where, key, n,
			       cap - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return err_set(e, -EINVAL, "%s%s holds a control character (byte 0x%02x)",
				       where, key, (unsigned char)s[i]);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Sandbox, image and snapshot names: ctl_check_name's syntax (so never
 * empty: only null, where allowed, means none). */
static int get_name(json_t *o, const char *where, const char *key, bool required, bool nullable,
		    char out[SBX_NAME_MAX + 1], struct err *e)
{
	int r = get_str(o, where, key, required, nullable, out, SBX_NAME_MAX + 1, e);
	if (r == 0 && json_is_string(json_object_get(o, key)) && ctl_check_name(out, NULL) < 0)
		return err_set(e, -EINVAL, "%s%s '%s' is not a valid name", where, key, out);
	return r;
}

/* Layer ids become directory names under STATE/layers: the name syntax
 * ([A-Za-z0-9_.-], no leading dot), so never a path. */
static bool layer_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= SBX_LAYER_ID_MAX || id[0] == '.')
		return false;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* An array of 0..max layer ids (min 1 for a snapshot's chain). */
static int get_layers(json_t *o, const char *where, const char *key, bool required, size_t min,
		      char out[][SBX_LAYER_ID_MAX], int *n, struct err *e)
{
	json_t *a = json_object_get(o, key);
	if (!a)
		return missing(where, key, required, e);
	if (!json_is_array(a))
		return err_set(e, -EINVAL, "%s%s is not an array", where, key);
	size_t cnt = json_array_size(a);
	if (cnt < min || cnt > SBX_LOWERS_MAX)
		return err_set(e, -EINVAL, "%s%s has %zu layers, not %zu to %d", where, key, cnt,
			       min, SBX_LOWERS_MAX);
	for (size_t i = 0; i < cnt; i++) {
		json_t *v = json_array_get(a, i);
		const char *id = json_string_value(v);
		if (!id || json_string_length(v) != strlen(id) || !layer_id_ok(id))
			return err_set(e, -EINVAL, "%s%s[%zu] is not a layer id", where, key, i);
		snprintf(out[i], SBX_LAYER_ID_MAX, "%s", id);
	}
	*n = (int)cnt;
	return 0;
}

static int parse_state(json_t *j, struct journal_rec *r, struct err *e)
{
	char word[16];
	int ret = get_str(j, "", "state", true, false, word, sizeof(word), e);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(states); i++)
		if (strcmp(word, states[i].name) == 0) {
			r->state = states[i].state;
			return 0;
		}
	return err_set(e, -EINVAL, "state '%s' is not a state", word);
}

static int parse_cpus(json_t *cj, uint32_t *millis, struct err *e)
{
	json_t *v = json_object_get(cj, "cpus");
	if (!v)
		return missing("config.", "cpus", true, e);
	if (!json_is_number(v))
		return err_set(e, -EINVAL, "config.cpus is not a number");
	double d = json_number_value(v);
	/* Compared before any conversion: a double out of uint32's range is UB. */
	if (!(d >= 0.0005 && d < 1024.0005))
		return err_set(e, -EINVAL, "config.cpus is %.10g, not 0.001 to 1024", d);
	*millis = (uint32_t)(d * 1000 + 0.5);
	return 0;
}

/* The options a user sets (ctl_parse_options), with the same ranges. */
static int parse_limits(json_t *cj, struct sbx_config *c, struct err *e)
{
	static const char *w = "config.";
	int r;
	char backend[sizeof(c->backend)];
	json_t *net = json_object_get(cj, "net");
	if ((r = get_name(cj, w, "image", true, false, c->image, e)) < 0 ||
	    (r = get_str(cj, w, "backend", true, false, backend, sizeof(backend), e)) < 0)
		return r;
	if (strcmp(backend, "ns") && strcmp(backend, "qemu"))
		return err_set(e, -EINVAL, "config.backend '%s' is not ns or qemu", backend);
	snprintf(c->backend, sizeof(c->backend), "%s", backend);
	if ((r = get_u64(cj, w, "memory", true, 8ull << 20, &c->memory_bytes, e)) < 0 ||
	    (r = parse_cpus(cj, &c->cpu_millis, e)) < 0 ||
	    (r = get_u32(cj, w, "pids", true, 8, 4194304, &c->pids, e)) < 0 ||
	    (r = get_u32(cj, w, "timeout", true, 0, UINT32_MAX, &c->timeout_sec, e)) < 0 ||
	    (r = get_u64(cj, w, "joblog", false, 4096, &c->joblog_bytes, e)) < 0 ||
	    (r = get_u64(cj, w, "rate", false, 0, &c->rate_bps, e)) < 0 ||
	    (r = get_u64(cj, w, "disk", false, 0, &c->disk_bytes, e)) < 0)
		return r;
	if (c->disk_bytes && (c->disk_bytes < SBX_DISK_MIN_BYTES ||
			      c->disk_bytes > SBX_DISK_MAX_BYTES || strcmp(backend, "ns")))
		return err_set(e, -EINVAL, "config.disk is %" PRIu64 ", not 0 or a size of disk= "
			       "for an ns sandbox", c->disk_bytes);
	if (c->rate_bps > 0 && c->rate_bps < 8) /* net_parse_rate: at least a byte a second */
		return err_set(e, -EINVAL, "config.rate is %" PRIu64 ", below 8 bit/s",
			       c->rate_bps);
	if (!net)
		return missing(w, "net", true, e);
	if (!json_is_boolean(net))
		return err_set(e, -EINVAL, "config.net is not true or false");
	c->net = json_is_true(net);
	return 0;
}

static int parse_config(json_t *j, struct sbx_config *c, bool *member, struct err *e)
{
	static const char *w = "config.";
	json_t *cj = json_object_get(j, "config");
	if (!cj)
		return missing("", "config", true, e);
	if (!json_is_object(cj))
		return err_set(e, -EINVAL, "config is not an object");
	char name[SBX_NAME_MAX + 1] = "";
	json_int_t gen = 0;
	int r;
	/* The name is the state dir's; this one is only checked. A pool
	 * member's hidden name (.pID-RUN-SEQ) is a claimed member's whose
	 * journal the claim rewrites a few ms after (journal_write_later). */
	if ((r = get_str(cj, w, "name", false, false, name, sizeof(name), e)) < 0)
		return r;
	if (name[0] && ctl_check_name(name + (name[0] == '.'), NULL) < 0)
		return err_set(e, -EINVAL, "%sname '%s' is not a valid name", w, name);
	*member = name[0] == '.';
	if ((r = parse_limits(cj, c, e)) < 0 ||
	    (r = get_name(cj, w, "parent", false, true, c->parent, e)) < 0 ||
	    (r = get_u64(cj, w, "created_usec", true, 0, &c->created_wall_usec, e)) < 0 ||
	    (r = get_layers(cj, w, "layers", false, 0, c->lowers, &c->nlowers, e)) < 0 ||
	    (r = get_int(cj, w, "fork_generation", false, 0, INT32_MAX, &gen, e)) < 0 ||
	    (r = get_str(cj, w, "flat", false, true, c->flat, sizeof(c->flat), e)) < 0)
		return r;
	if (json_is_string(json_object_get(cj, "flat")) && !layer_id_ok(c->flat))
		return err_set(e, -EINVAL, "config.flat '%s' is not a layer id", c->flat);
	c->fork_generation = (uint32_t)gen;
	return 0;
}

/* Why a sandbox last stopped: a short lowercase word, or "-". */
static int parse_reason(json_t *j, char out[JOURNAL_REASON_MAX], struct err *e)
{
	int r = get_str(j, "", "reason", false, false, out, JOURNAL_REASON_MAX, e);
	if (r < 0)
		return r;
	size_t n = strlen(out);
	if (strcmp(out, "-") && (n == 0 || strspn(out, "abcdefghijklmnopqrstuvwxyz") != n))
		return err_set(e, -EINVAL, "reason '%s' is not a word", out);
	return 0;
}

static int parse_times(json_t *j, struct sbx_times *t, struct err *e)
{
	json_t *o = json_object_get(j, "times");
	int r = 0;
	if (!o)
		return 0;
	if (!json_is_object(o))
		return err_set(e, -EINVAL, "times is not an object");
#define GET(f)                                                     \
	if (r == 0)                                                \
		r = get_u64(o, "times.", #f, false, 0, &t->f, e);
	JOURNAL_TIME_FIELDS(GET)
#undef GET
	return r;
}

static int parse_snap(json_t *v, size_t i, struct journal_snap *sn, struct err *e)
{
	char where[48];
	snprintf(where, sizeof(where), "snapshots[%zu].", i);
	if (!json_is_object(v))
		return err_set(e, -EINVAL, "snapshots[%zu] is not an object", i);
	int r;
	if ((r = get_name(v, where, "name", true, false, sn->name, e)) < 0 ||
	    (r = get_u64(v, where, "created_usec", false, 0, &sn->created_wall_usec, e)) < 0 ||
	    (r = get_layers(v, where, "lowers", true, 1, sn->lowers, &sn->nlowers, e)) < 0)
		return r;
	return 0;
}

static int parse_snaps(json_t *j, struct journal_rec *rec, struct err *e)
{
	json_t *a = json_object_get(j, "snapshots");
	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return err_set(e, -EINVAL, "snapshots is not an array");
	size_t n = json_array_size(a);
	if (n > JOURNAL_SNAPS_MAX)
		return err_set(e, -EINVAL, "snapshots has %zu entries, more than %d", n,
			       JOURNAL_SNAPS_MAX);
	if (n == 0)
		return 0;
	rec->snaps = calloc(n, sizeof(*rec->snaps));
	if (!rec->snaps)
		return err_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int r = parse_snap(json_array_get(a, i), i, &rec->snaps[i], e);
		if (r < 0)
			return r;
		for (size_t k = 0; k < i; k++)
			if (strcmp(rec->snaps[k].name, rec->snaps[i].name) == 0)
				return err_set(e, -EINVAL, "snapshots[%zu].name '%s' is taken twice",
					       i, rec->snaps[i].name);
		rec->nsnaps = i + 1;
	}
	return 0;
}

/* A rule line, as a user writes it to ctl (and the journal keeps it). */
static int parse_rule(json_t *v, size_t i, struct net_rule *rule, struct err *e)
{
	const char *line = json_string_value(v);
	if (!line || json_string_length(v) != strlen(line))
		return err_set(e, -EINVAL, "net.policy[%zu] is not a string", i);
	struct ctl_cmd cmd;
	struct err re = {0};
	int r = ctl_split(line, strlen(line), &cmd, &re);
	if (r == 0)
		r = ctl_parse_rule(cmd.argc, cmd.argv, rule, &re);
	if (r < 0)
		return err_set(e, -EINVAL, "net.policy[%zu] is not a rule: %s", i, re.msg);
	return 0;
}

/* net.expose: [{"proto": "tcp"|"udp", "port": P, "host_port": H}...], ports
 * 1..65535, each host port once per protocol; a journal written before UDP
 * had no "proto": tcp. */
static int parse_expose(json_t *o, struct journal_rec *rec, struct err *e)
{
	json_t *arr = json_object_get(o, "expose");
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return err_set(e, -EINVAL, "net.expose is not an array");
	if (json_array_size(arr) > NET_EXPOSE_MAX)
		return err_set(e, -EINVAL, "net.expose has %zu ports, more than %d",
			       json_array_size(arr), NET_EXPOSE_MAX);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		json_int_t port = 0, host = 0;
		char proto[8] = "tcp";
		int r;
		if (!json_is_object(v))
			return err_set(e, -EINVAL, "net.expose[%zu] is not an object", i);
		if ((r = get_str(v, "net.expose[].", "proto", false, false, proto, sizeof(proto),
				 e)) < 0 ||
		    (r = get_int(v, "net.expose[].", "port", true, 1, 65535, &port, e)) < 0 ||
		    (r = get_int(v, "net.expose[].", "host_port", true, 1, 65535, &host, e)) < 0)
			return r;
		uint8_t p = !strcmp(proto, "tcp") ? IPPROTO_TCP
			  : !strcmp(proto, "udp") ? IPPROTO_UDP : 0;
		if (!p)
			return err_set(e, -EINVAL, "net.expose[%zu].proto '%s' is not tcp or udp", i,
				       proto);
		for (size_t k = 0; k < i; k++)
			if (rec->expose[k].proto == p && rec->expose[k].host_port == host)
				return err_set(e, -EINVAL, "net.expose names %s host port %d twice",
					       proto, (int)host);
		rec->expose[i] = (struct net_expose){.proto = p, .port = (uint16_t)port,
						     .host_port = (uint16_t)host};
		rec->nexpose = i + 1;
	}
	return 0;
}

static int parse_net(json_t *j, struct journal_rec *rec, struct err *e)
{
	json_t *o = json_object_get(j, "net");
	if (!o || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return err_set(e, -EINVAL, "net is not an object or null");
	struct in_addr a;
	int r = get_str(o, "net.", "ip", false, false, rec->ip, sizeof(rec->ip), e);
	if (r < 0)
		return r;
	if (json_object_get(o, "ip") && inet_pton(AF_INET, rec->ip, &a) != 1)
		return err_set(e, -EINVAL, "net.ip '%s' is not an IPv4 address", rec->ip);
	if ((r = parse_expose(o, rec, e)) < 0)
		return r;
	json_t *pol = json_object_get(o, "policy");
	if (!pol || json_is_null(pol))
		return 0;
	if (!json_is_array(pol))
		return err_set(e, -EINVAL, "net.policy is not an array");
	size_t n = json_array_size(pol);
	if (n > JOURNAL_RULES_MAX)
		return err_set(e, -EINVAL, "net.policy has %zu rules, more than %d", n,
			       JOURNAL_RULES_MAX);
	if (n == 0)
		return 0;
	rec->rules = calloc(n, sizeof(*rec->rules));
	if (!rec->rules)
		return err_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if ((r = parse_rule(json_array_get(pol, i), i, &rec->rules[i], e)) < 0)
			return r;
		rec->nrules = i + 1;
	}
	return 0;
}

/* The fields of the top level besides config, snapshots and net. */
static int parse_run(json_t *j, struct journal_rec *rec, struct err *e)
{
	json_int_t version = JOURNAL_VERSION, pid = 0, code = -1;
	int r;
	if ((r = get_int(j, "", "version", false, JOURNAL_VERSION, JOURNAL_VERSION, &version,
			 e)) < 0 ||
	    (r = parse_state(j, rec, e)) < 0 ||
	    /* PID_MAX_LIMIT: no pid is larger on any Linux. */
	    (r = get_int(j, "", "pid", true, 0, 4194304, &pid, e)) < 0 ||
	    (r = get_u64(j, "", "pid_start", true, 0, &rec->pid_start, e)) < 0 ||
	    (r = parse_reason(j, rec->reason, e)) < 0 ||
	    (r = get_int(j, "", "exit_code", false, -1, 255, &code, e)) < 0 ||
	    (r = get_str(j, "", "error", false, false, rec->error, sizeof(rec->error), e)) < 0 ||
	    (r = get_u64(j, "", "starts", false, 0, &rec->starts, e)) < 0 ||
	    (r = get_name(j, "", "cgroup", false, false, rec->cgroup, e)) < 0 ||
	    (r = parse_times(j, &rec->t, e)) < 0)
		return r;
	rec->pid = (pid_t)pid;
	rec->exit_code = (int)code;
	return 0;
}

int journal_parse(const char *text, size_t len, struct journal_rec *rec, struct err *e)
{
	memset(rec, 0, sizeof(*rec));
	ctl_config_defaults(&rec->cfg, "ns", false);
	snprintf(rec->reason, sizeof(rec->reason), "-");
	rec->exit_code = -1;
	json_error_t je;
	/* A key given twice is not something the daemon writes: which one wins
	 * would be up to the reader. jansson bounds the nesting (2048). */
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return err_set(e, -EINVAL, "not JSON: %s, line %d", je.text, je.line);
	int r = json_is_object(j) ? 0 : err_set(e, -EINVAL, "not a JSON object");
	if (r == 0)
		r = parse_run(j, rec, e);
	if (r == 0)
		r = parse_config(j, &rec->cfg, &rec->member_name, e);
	if (r == 0)
		r = parse_snaps(j, rec, e);
	if (r == 0)
		r = parse_net(j, rec, e);
	json_decref(j);
	if (r < 0)
		journal_rec_free(rec);
	return r;
}

void journal_rec_free(struct journal_rec *r)
{
	free(r->rules);
	free(r->snaps);
	r->rules = NULL;
	r->snaps = NULL;
	r->nrules = r->nsnaps = 0;
}

/* ---- a job's record (jobs/N/job.json) ---- */

int journal_job_parse(const char *text, size_t len, struct journal_job *r, struct err *e)
{
	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
	r->state = JOURNAL_JOB_EXITED;
	snprintf(r->reason, sizeof(r->reason), "-");
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return err_set(e, -EINVAL, "not JSON: %s, line %d", je.text, je.line);
	int ret = json_is_object(j) ? 0 : err_set(e, -EINVAL, "not a JSON object");
	json_int_t pid = 0, code = -1, tty = -1;
	char status[16] = "exited";
	static const char *const sfx[2] = {"stdout", "stderr"};
	if (ret == 0) {
		/* cmd: what a user wrote to run (one line; tabs and the like are theirs). */
		json_t *c = json_object_get(j, "cmd");
		if (!json_is_string(c))
			ret = err_set(e, -EINVAL, "cmd is missing or not a string");
		else if (json_string_length(c) >= sizeof(r->cmd) ||
			 memchr(json_string_value(c), '\0', json_string_length(c)) ||
			 strchr(json_string_value(c), '\n'))
			ret = err_set(e, -EINVAL, "cmd is not one command line of at most %d bytes",
				      CTL_WRITE_MAX);
		else
			snprintf(r->cmd, sizeof(r->cmd), "%s", json_string_value(c));
	}
	if (ret == 0 && (ret = get_int(j, "", "pid", true, 0, 4194304, &pid, e)) == 0 &&
	    (ret = get_str(j, "", "status", true, false, status, sizeof(status), e)) == 0 &&
	    (ret = get_int(j, "", "exit_code", true, -1, 255, &code, e)) == 0 &&
	    (ret = parse_reason(j, r->reason, e)) == 0)
		ret = get_u64(j, "", "exec_id", false, 0, &r->exec_id, e);
	/* tty: the pty's number (devpts numbers are below 2^20). */
	if (ret == 0)
		ret = get_int(j, "", "tty", false, 0, 1 << 20, &tty, e);
	if (ret == 0)
		ret = get_u64(j, "", "deadline_unix_usec", false, 0, &r->deadline_unix_usec, e);
	for (int k = 0; ret == 0 && k < 2; k++) {
		char key[32];
		uint64_t *f[4] = {&r->dropped[k], &r->pipe_ino[k], &r->cutting[k], &r->cut_from[k]};
		static const char *const pre[4] = {"dropped_", "pipe_", "cutting_", "cut_from_"};
		for (int i = 0; ret == 0 && i < 4; i++) {
			snprintf(key, sizeof(key), "%s%s", pre[i], sfx[k]);
			ret = get_u64(j, "", key, false, 0, f[i], e);
		}
	}
	if (ret == 0) {
		if (!strcmp(status, "running"))
			r->state = JOURNAL_JOB_RUNNING;
		else if (!strcmp(status, "killed"))
			r->state = JOURNAL_JOB_KILLED;
		else if (strcmp(status, "exited"))
			ret = err_set(e, -EINVAL, "status '%s' is not running, exited or killed", status);
	}
	r->pid = (int)pid;
	r->exit_code = (int)code;
	r->tty = (int)tty;
	json_decref(j);
	return ret;
}
