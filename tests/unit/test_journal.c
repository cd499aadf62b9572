/* The journal's writer and reader agree on every field: a config with every
 * field away from its default, and every timing, written by
 * journal_config_json and journal_times_json, come back from journal_parse
 * unchanged; numbers at their bounds too. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/journal.h"
#include "unit.h"

/* A whole journal around the writer's config and times (the other keys as
 * journal_write_in, snap_journal_json and sbx_net_journal write them). */
static char *journal_text(const struct sbx_config *c, const struct sbx_times *t)
{
	json_t *j = json_pack("{s:i, s:s, s:o, s:i, s:I, s:s, s:i, s:s, s:I, s:s, s:o, s:o}",
			      "version", JOURNAL_VERSION, "state", journal_state_name(SBX_PAUSED),
			      "config", journal_config_json("web", c), "pid", 4242,
			      "pid_start", (json_int_t)987654321, "reason", "signal", "exit_code", 137,
			      "error", "it said no", "starts", (json_int_t)3, "cgroup", "t1-.p1-7",
			      "times", journal_times_json(t),
			      "snapshots",
			      json_pack("[{s:s, s:I, s:[s, s]}]", "name", "s1", "created_usec",
					(json_int_t)1700000000000001, "lowers", "L7", "L3"));
	/* A port journaled before UDP (no proto: tcp), and a UDP one on the same
	 * host port. */
	json_object_set_new(j, "net", json_pack("{s:s, s:[s, s], s:[{s:i, s:i}, {s:s, s:i, s:i}]}",
						"ip", "10.88.0.7", "policy",
						"allow 10.0.0.0/8 tcp 443", "deny all", "expose",
						"port", 8080, "host_port", 18080, "proto", "udp",
						"port", 53, "host_port", 18080));
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	return text;
}

static void full_config(struct sbx_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->image, sizeof(c->image), "debian");
	snprintf(c->backend, sizeof(c->backend), "qemu");
	c->memory_bytes = 3ull << 30;
	c->cpu_millis = 1500;
	c->pids = 77;
	c->net = true;
	c->timeout_sec = 3600;
	c->joblog_bytes = 1ull << 20;
	c->rate_bps = 1000000;
	c->disk_bytes = 0; /* qemu: no disk= (checked apart below) */
	snprintf(c->parent, sizeof(c->parent), "base");
	c->created_wall_usec = 1764547200123456ull;
	c->nlowers = 2;
	snprintf(c->lowers[0], sizeof(c->lowers[0]), "L7");
	snprintf(c->lowers[1], sizeof(c->lowers[1]), "L3");
	snprintf(c->flat, sizeof(c->flat), "F9");
	c->fork_generation = 5;
}

static void test_every_field(void)
{
	struct sbx_config c;
	struct sbx_times t;
	full_config(&c);
	memset(&t, 0, sizeof(t));
	uint64_t v = 11;
#define SET(f) t.f = v++;
	JOURNAL_TIME_FIELDS(SET)
#undef SET
	char *text = journal_text(&c, &t);
	CHECK(text != NULL);
	struct journal_rec r;
	struct err e = {0};
	int rc = journal_parse(text, strlen(text), &r, &e);
	CHECK(rc == 0);
	if (rc < 0) {
		fprintf(stderr, "journal_parse: %s\n%s\n", e.msg, text);
		free(text);
		return;
	}
	CHECK(r.state == SBX_PAUSED && r.pid == 4242 && r.pid_start == 987654321);
	CHECK(strcmp(r.reason, "signal") == 0 && r.exit_code == 137 && r.starts == 3);
	CHECK(strcmp(r.error, "it said no") == 0 && strcmp(r.cgroup, "t1-.p1-7") == 0);
	const struct sbx_config *g = &r.cfg;
	CHECK(strcmp(g->image, c.image) == 0 && strcmp(g->backend, c.backend) == 0);
	CHECK(g->memory_bytes == c.memory_bytes && g->cpu_millis == c.cpu_millis);
	CHECK(g->pids == c.pids && g->net == c.net && g->timeout_sec == c.timeout_sec);
	CHECK(g->joblog_bytes == c.joblog_bytes && g->rate_bps == c.rate_bps);
	CHECK(strcmp(g->parent, c.parent) == 0 && g->created_wall_usec == c.created_wall_usec);
	CHECK(g->nlowers == 2 && strcmp(g->lowers[0], "L7") == 0 && strcmp(g->lowers[1], "L3") == 0);
	CHECK(strcmp(g->flat, c.flat) == 0 && g->fork_generation == c.fork_generation);
#define SAME(f) CHECK(r.t.f == t.f);
	JOURNAL_TIME_FIELDS(SAME)
#undef SAME
	CHECK(r.nsnaps == 1 && strcmp(r.snaps[0].name, "s1") == 0);
	CHECK(r.nsnaps == 1 && r.snaps[0].nlowers == 2 && strcmp(r.snaps[0].lowers[1], "L3") == 0);
	CHECK(r.nsnaps == 1 && r.snaps[0].created_wall_usec == 1700000000000001ull);
	CHECK(strcmp(r.ip, "10.88.0.7") == 0 && r.nrules == 2);
	CHECK(r.nexpose == 2 && r.expose[0].port == 8080 && r.expose[0].host_port == 18080);
	CHECK(r.nexpose == 2 && r.expose[0].proto == IPPROTO_TCP);
	CHECK(r.nexpose == 2 && r.expose[1].proto == IPPROTO_UDP && r.expose[1].port == 53 &&
	      r.expose[1].host_port == 18080);
	char rule[NET_RULE_TEXT_MAX];
	if (r.nrules == 2) {
		net_rule_format(&r.rules[0], rule);
		CHECK(strcmp(rule, "allow 10.0.0.0/8 tcp 443") == 0);
		net_rule_format(&r.rules[1], rule);
		CHECK(strcmp(rule, "deny all") == 0);
	}
	journal_rec_free(&r);
	free(text);
}

/* An ns sandbox's disk= and numbers at the writer's bounds come back too; a
 * size past INT64_MAX is written as INT64_MAX and read as that. */
static void test_bounds(void)
{
	struct sbx_config c;
	struct sbx_times t;
	full_config(&c);
	snprintf(c.backend, sizeof(c.backend), "ns");
	c.disk_bytes = SBX_DISK_MIN_BYTES;
	c.memory_bytes = UINT64_MAX;
	c.nlowers = 0;
	c.parent[0] = c.flat[0] = '\0';
	memset(&t, 0, sizeof(t));
	t.create_usec = UINT64_MAX;
	char *text = journal_text(&c, &t);
	struct journal_rec r;
	struct err e = {0};
	int rc = journal_parse(text, strlen(text), &r, &e);
	CHECK(rc == 0);
	if (rc == 0) {
		CHECK(r.cfg.disk_bytes == SBX_DISK_MIN_BYTES);
		CHECK(r.cfg.memory_bytes == INT64_MAX && r.t.create_usec == INT64_MAX);
		CHECK(r.cfg.nlowers == 0 && r.cfg.parent[0] == '\0' && r.cfg.flat[0] == '\0');
		journal_rec_free(&r);
	} else {
		fprintf(stderr, "journal_parse: %s\n", e.msg);
	}
	free(text);
	/* disk= on a qemu sandbox is refused, as a create refuses it. */
	snprintf(c.backend, sizeof(c.backend), "qemu");
	text = journal_text(&c, &t);
	CHECK(journal_parse(text, strlen(text), &r, &e) == -EINVAL && strstr(e.msg, "config.disk"));
	free(text);
}

/* net.expose: what the writer writes reads back; a protocol other than tcp
 * or udp, or a host port twice for one protocol, is refused. */
static void test_expose(void)
{
	struct net_expose x[2] = {{.proto = IPPROTO_UDP, .port = 5353, .host_port = 15353},
				  {.proto = IPPROTO_TCP, .port = 80, .host_port = 15353}};
	json_t *net = json_pack("{s:o}", "expose", journal_expose_json(x, 2));
	char *exp = json_dumps(net, 0);
	json_decref(net);
	static const char *const bad[] = {
		"[{\"proto\": \"sctp\", \"port\": 1, \"host_port\": 1}]",
		"[{\"proto\": 17, \"port\": 1, \"host_port\": 1}]",
		"[{\"proto\": \"udp\", \"port\": 1, \"host_port\": 9},"
		" {\"proto\": \"udp\", \"port\": 2, \"host_port\": 9}]",
		"[{\"port\": 1, \"host_port\": 9}, {\"proto\": \"tcp\", \"port\": 2, \"host_port\": 9}]",
	};
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		char text[1024];
		if (i == 0)
			snprintf(text, sizeof(text), "%s", exp);
		else
			snprintf(text, sizeof(text), "{\"expose\": %s}", bad[i - 1]);
		char whole[2048];
		snprintf(whole, sizeof(whole),
			 "{\"state\": \"running\", \"config\": {\"image\": \"busybox\", "
			 "\"backend\": \"ns\", \"memory\": 268435456, \"cpus\": 1.0, \"pids\": 512, "
			 "\"net\": true, \"timeout\": 0, \"created_usec\": 1}, \"pid\": 0, "
			 "\"pid_start\": 0, \"net\": %s}", text);
		struct journal_rec r;
		struct err e = {0};
		int rc = journal_parse(whole, strlen(whole), &r, &e);
		if (i == 0) {
			CHECK(rc == 0 && r.nexpose == 2);
			for (int k = 0; rc == 0 && k < 2; k++)
				CHECK(r.expose[k].proto == x[k].proto && r.expose[k].port == x[k].port &&
				      r.expose[k].host_port == x[k].host_port);
		} else {
			CHECK(rc == -EINVAL && strstr(e.msg, "net.expose"));
		}
		if (rc == 0)
			journal_rec_free(&r);
	}
	free(exp);
}

/* Every state the journal names reads back as itself. */
static void test_states(void)
{
	for (int st = 0; st < SBX_NSTATES; st++) {
		char text[512];
		snprintf(text, sizeof(text),
			 "{\"state\": \"%s\", \"config\": {\"image\": \"busybox\", \"backend\": \"ns\", "
			 "\"memory\": 268435456, \"cpus\": 1.0, \"pids\": 512, \"net\": false, "
			 "\"timeout\": 0, \"created_usec\": 1}, \"pid\": 0, \"pid_start\": 0}",
			 journal_state_name(st));
		struct journal_rec r;
		struct err e = {0};
		int rc = journal_parse(text, strlen(text), &r, &e);
		CHECK(rc == 0 && r.state == st);
		if (rc == 0)
			journal_rec_free(&r);
	}
}

int main(void)
{
	RUN(test_every_field);
	RUN(test_bounds);
	RUN(test_states);
	RUN(test_expose);
	UNIT_DONE("journal");
}
