/* libFuzzer target: a sandbox's journal (STATE/sandboxes/NAME/sandbox.json)
 * as a restarted daemon reads it.
 *
 * The input is the whole file; journal_parse (engine/journal_json.c) reads it
 * as journal_read does, with no file system. Besides the sanitizers, it
 * asserts:
 *   - the answer is 0, or -EINVAL / -ENOMEM with a NUL-terminated, non-empty
 *     sentence in the error, and nothing left allocated in the record;
 *   - everything a journal that loads holds passed the checks a user's
 *     write gets: names (image, parent, snapshots) in ctl_check_name's
 *     syntax, layer ids that are single path components, limits in the
 *     ranges of ctl_parse_options, a pid Linux can have, an exit code, a
 *     one-word reason, an error sentence without control characters, an
 *     IPv4 address, at most JOURNAL_SNAPS_MAX snapshots (no name twice) and
 *     JOURNAL_RULES_MAX rules;
 *   - round trip: the record written back the way the daemon writes its
 *     journal (journal_config_json and journal_times_json, the snapshot and
 *     net objects of snap.c and netcfg.c) reads back to the same record.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/journal.h"

#define MUST(cond)                                                                           \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "fuzz_journal: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                         \
			abort();                                                             \
		}                                                                            \
	} while (0)

static bool layer_id_ok(const char *id)
{
	size_t n = strnlen(id, SBX_LAYER_ID_MAX);
	return n >= 1 && n < SBX_LAYER_ID_MAX && id[0] != '.' &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static bool no_controls(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void check_valid(const struct journal_rec *r)
{
	const struct sbx_config *c = &r->cfg;
	MUST(r->state >= 0 && r->state < SBX_NSTATES);
	MUST(ctl_check_name(c->image, NULL) == 0);
	MUST(!strcmp(c->backend, "ns") || !strcmp(c->backend, "qemu"));
	MUST(c->memory_bytes >= (8ull << 20) && c->memory_bytes <= (uint64_t)INT64_MAX);
	MUST(c->cpu_millis >= 1 && c->cpu_millis <= 1024000);
	MUST(c->pids >= 8 && c->pids <= 4194304);
	MUST(c->joblog_bytes >= 4096 && c->joblog_bytes <= (uint64_t)INT64_MAX);
	MUST(c->rate_bps == 0 || (c->rate_bps >= 8 && c->rate_bps <= (uint64_t)INT64_MAX));
	MUST(c->disk_bytes == 0 || (c->disk_bytes >= SBX_DISK_MIN_BYTES &&
				    c->disk_bytes <= SBX_DISK_MAX_BYTES && !strcmp(c->backend, "ns")));
	MUST(!c->parent[0] || ctl_check_name(c->parent, NULL) == 0);
	MUST(c->nlowers >= 0 && c->nlowers <= SBX_LOWERS_MAX);
	for (int i = 0; i < c->nlowers; i++)
		MUST(layer_id_ok(c->lowers[i]));
	MUST(!c->flat[0] || layer_id_ok(c->flat));
	MUST(c->fork_generation <= INT32_MAX);
	MUST(r->pid >= 0 && r->pid <= 4194304);
	MUST(r->exit_code >= -1 && r->exit_code <= 255);
	size_t rl = strnlen(r->reason, sizeof(r->reason));
	MUST(rl >= 1 && rl < sizeof(r->reason));
	MUST(!strcmp(r->reason, "-") || strspn(r->reason, "abcdefghijklmnopqrstuvwxyz") == rl);
	MUST(no_controls(r->error, sizeof(r->error)));
	struct in_addr a;
	MUST(!r->ip[0] || inet_pton(AF_INET, r->ip, &a) == 1);
	MUST(r->nsnaps <= JOURNAL_SNAPS_MAX && (r->nsnaps == 0) == (r->snaps == NULL));
	for (size_t i = 0; i < r->nsnaps; i++) {
		const struct journal_snap *sn = &r->snaps[i];
		MUST(ctl_check_name(sn->name, NULL) == 0);
		MUST(sn->nlowers >= 1 && sn->nlowers <= SBX_LOWERS_MAX);
		for (int k = 0; k < sn->nlowers; k++)
			MUST(layer_id_ok(sn->lowers[k]));
		for (size_t k = 0; k < i; k++)
			MUST(strcmp(r->snaps[k].name, sn->name) != 0);
	}
	MUST(r->nrules <= JOURNAL_RULES_MAX && (r->nrules == 0) == (r->rules == NULL));
	for (size_t i = 0; i < r->nrules; i++) {
		const struct net_rule *nr = &r->rules[i];
		MUST(nr->kind == NET_RULE_CIDR || nr->kind == NET_RULE_SANDBOX ||
		     nr->kind == NET_RULE_ALL);
		MUST(nr->kind != NET_RULE_SANDBOX || ctl_check_name(nr->sbx, NULL) == 0);
		MUST(nr->kind != NET_RULE_CIDR || nr->plen <= 32);
	}
	MUST(r->nexpose <= NET_EXPOSE_MAX);
	for (size_t i = 0; i < r->nexpose; i++) {
		MUST(r->expose[i].port >= 1 && r->expose[i].host_port >= 1);
		MUST(r->expose[i].proto == IPPROTO_TCP || r->expose[i].proto == IPPROTO_UDP);
		for (size_t k = 0; k < i; k++)
			MUST(r->expose[k].host_port != r->expose[i].host_port ||
			     r->expose[k].proto != r->expose[i].proto);
	}
}

/* The journal of r, as journal_write_in (engine/journal.c) writes one. */
static char *write_back(const struct journal_rec *r)
{
	json_t *snaps = json_array();
	for (size_t i = 0; i < r->nsnaps; i++) {
		json_t *l = json_array();
		for (int k = 0; k < r->snaps[i].nlowers; k++)
			json_array_append_new(l, json_string(r->snaps[i].lowers[k]));
		json_array_append_new(snaps, json_pack("{s:s, s:I, s:o}", "name", r->snaps[i].name,
						       "created_usec",
						       (json_int_t)r->snaps[i].created_wall_usec,
						       "lowers", l));
	}
	json_t *net = json_null();
	if (r->ip[0] || r->nrules || r->nexpose) {
		json_t *rules = json_array();
		char text[NET_RULE_TEXT_MAX];
		for (size_t i = 0; i < r->nrules; i++) {
			net_rule_format(&r->rules[i], text);
			json_array_append_new(rules, json_string(text));
		}
		json_t *exp = journal_expose_json(r->expose, r->nexpose);
		net = json_pack("{s:o, s:o}", "policy", rules, "expose", exp);
		if (r->ip[0])
			json_object_set_new(net, "ip", json_string(r->ip));
	}
	json_t *j = json_pack("{s:i, s:s, s:o, s:i, s:I, s:s, s:i, s:s, s:I, s:o, s:o, s:o}",
			      "version", JOURNAL_VERSION, "state", journal_state_name(r->state),
			      "config", journal_config_json("fuzz", &r->cfg), "pid", (int)r->pid,
			      "pid_start", (json_int_t)r->pid_start, "reason", r->reason,
			      "exit_code", r->exit_code, "error", r->error,
			      "starts", (json_int_t)r->starts, "snapshots", snaps, "net", net,
			      "times", journal_times_json(&r->t));
	MUST(j);
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	MUST(text);
	return text;
}

static void same(const struct journal_rec *a, const struct journal_rec *b)
{
	const struct sbx_config *x = &a->cfg, *y = &b->cfg;
	MUST(a->state == b->state);
	MUST(!strcmp(x->image, y->image) && !strcmp(x->backend, y->backend));
	MUST(x->memory_bytes == y->memory_bytes && x->cpu_millis == y->cpu_millis);
	MUST(x->pids == y->pids && x->net == y->net && x->timeout_sec == y->timeout_sec);
	MUST(x->joblog_bytes == y->joblog_bytes && x->rate_bps == y->rate_bps);
	MUST(x->disk_bytes == y->disk_bytes);
	MUST(!strcmp(x->parent, y->parent) && x->created_wall_usec == y->created_wall_usec);
	MUST(x->nlowers == y->nlowers);
	for (int i = 0; i < x->nlowers; i++)
		MUST(!strcmp(x->lowers[i], y->lowers[i]));
	MUST(!strcmp(x->flat, y->flat) && x->fork_generation == y->fork_generation);
	MUST(a->pid == b->pid && a->pid_start == b->pid_start && a->exit_code == b->exit_code);
	MUST(!strcmp(a->reason, b->reason) && !strcmp(a->error, b->error));
	MUST(a->starts == b->starts);
#define EQ(f) MUST(a->t.f == b->t.f);
	JOURNAL_TIME_FIELDS(EQ)
#undef EQ
	MUST(!strcmp(a->ip, b->ip));
	MUST(a->nsnaps == b->nsnaps);
	for (size_t i = 0; i < a->nsnaps; i++) {
		MUST(!strcmp(a->snaps[i].name, b->snaps[i].name));
		MUST(a->snaps[i].created_wall_usec == b->snaps[i].created_wall_usec);
		MUST(a->snaps[i].nlowers == b->snaps[i].nlowers);
		for (int k = 0; k < a->snaps[i].nlowers; k++)
			MUST(!strcmp(a->snaps[i].lowers[k], b->snaps[i].lowers[k]));
	}
	MUST(a->nexpose == b->nexpose);
	for (size_t i = 0; i < a->nexpose; i++)
		MUST(a->expose[i].proto == b->expose[i].proto &&
		     a->expose[i].port == b->expose[i].port &&
		     a->expose[i].host_port == b->expose[i].host_port);
	MUST(a->nrules == b->nrules);
	for (size_t i = 0; i < a->nrules; i++) {
		char ta[NET_RULE_TEXT_MAX], tb[NET_RULE_TEXT_MAX];
		net_rule_format(&a->rules[i], ta);
		net_rule_format(&b->rules[i], tb);
		MUST(!strcmp(ta, tb));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > JOURNAL_MAX_BYTES)
		return 0; /* journal_read refuses such a file before parsing */
	struct journal_rec r;
	struct err e = {0};
	int ret = journal_parse((const char *)data, size, &r, &e);
	MUST(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	if (ret < 0) {
		MUST(e.code == ret && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
		MUST(r.snaps == NULL && r.rules == NULL && r.nsnaps == 0 && r.nrules == 0);
		return 0;
	}
	check_valid(&r);
	char *text = write_back(&r);
	struct journal_rec back;
	struct err be = {0};
	int br = journal_parse(text, strlen(text), &back, &be);
	if (br != 0)
		fprintf(stderr, "fuzz_journal: written back, refused: %s\n%s\n", be.msg, text);
	MUST(br == 0);
	same(&r, &back);
	journal_rec_free(&back);
	journal_rec_free(&r);
	free(text);
	return 0;
}
