/* Registry pulls: the docker:// reference (engine/pull.c), skopeo's reason
 * out of its log line, and the bounded tool runner a pull uses
 * (vmm_run_tool_opts: a deadline, a cancel flag, the end of a long stderr). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../../engine/pull.h"
#include "../../vmm/vmm.h"
#include "unit.h"

static void test_ref_ok(void)
{
	struct pull_ref r;
	struct err e = {0};
	CHECK(pull_parse_ref("127.0.0.1:5000/sbx/a:latest", &r, &e) == 0);
	CHECK(!strcmp(r.host, "127.0.0.1:5000") && !strcmp(r.repo, "sbx/a") && !strcmp(r.tag, "latest"));
	CHECK(!r.digest[0]);
	CHECK(pull_parse_ref("localhost/a__b/c-d.e", &r, &e) == 0);
	CHECK(!strcmp(r.host, "localhost") && !strcmp(r.repo, "a__b/c-d.e") && !r.tag[0]);
	char ref[200];
	snprintf(ref, sizeof(ref), "reg.example.com/library/alpine@sha256:%064d", 0);
	CHECK(pull_parse_ref(ref, &r, &e) == 0);
	CHECK(!strcmp(r.repo, "library/alpine") && !strncmp(r.digest, "sha256:000", 10) && !r.tag[0]);
}

static void test_ref_bad(void)
{
	static const char *const bad[] = {
		"library/alpine",          /* no registry host: Docker Hub's, implicitly */
		"reg.example",             /* no repository */
		"reg.example/",            "reg.example/Alpine", "reg.example/a//b", "reg.example/a-",
		"reg.example/a:",          "reg.example/a:-x",   "reg.example/a:b@sha256:00",
		"reg.example/a@sha256:0",  "reg.example/a@md5:00", "reg.example:0/a",
		"reg.example:65536/a",     "reg.example:/a",     "-reg.example/a", "reg..example/a",
		"[::1]:5000/a",            "re_g.example/a",     "reg.example/a b", "",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct pull_ref r;
		struct err e = {0};
		int rc = pull_parse_ref(bad[i], &r, &e);
		CHECK(rc == -EINVAL && e.msg[0] && !r.host[0]);
		if (rc != -EINVAL)
			fprintf(stderr, "accepted '%s'\n", bad[i]);
	}
	char longref[PULL_REF_MAX + 20];
	memset(longref, 'a', sizeof(longref) - 1);
	longref[sizeof(longref) - 1] = '\0';
	memcpy(longref, "h.x/", 4);
	struct pull_ref r;
	struct err e = {0};
	CHECK(pull_parse_ref(longref, &r, &e) == -EINVAL && strstr(e.msg, "longer than"));
}

static void test_reason(void)
{
	char l[256] = "time=\"2026-12-02T05:00:00Z\" level=fatal msg=\"reading manifest x: "
		      "\\\"bad\\\" \\\\ answer\"";
	pull_reason(l, sizeof(l));
	CHECK(!strcmp(l, "reading manifest x: \"bad\" \\ answer"));
	char plain[64] = "Error: something else";
	pull_reason(plain, sizeof(plain));
	CHECK(!strcmp(plain, "Error: something else"));
	char cut[64] = "level=fatal msg=\"cut \\";
	pull_reason(cut, sizeof(cut));
	CHECK(!strcmp(cut, "cut \\"));
	char inside[64] = "xmsg=\"not a key\"";
	pull_reason(inside, sizeof(inside));
	CHECK(!strcmp(inside, "xmsg=\"not a key\""));
}

static void upper(char *line, size_t cap)
{
	for (size_t i = 0; i < cap && line[i]; i++)
		if (line[i] >= 'a' && line[i] <= 'z')
			line[i] = (char)(line[i] - 32);
}

static int ticks;
static void tick(void *arg) { (*(int *)arg)++; }

static void test_run_tool_bounded(void)
{
	const char *const sh[] = {"/bin/sh"};
	struct err e = {0};
	/* 1 MB to stderr: read to the end (no stall on a full pipe); the last line told. */
	char *big[] = {"sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo >&2; "
		       "echo the end >&2; exit 3", NULL};
	struct vmm_tool_opts o = {.reason = upper, .tick = tick, .arg = &ticks};
	CHECK(vmm_run_tool_opts(sh, 1, big, "dash", "a test", &o, &e) == -EIO);
	CHECK(strstr(e.msg, "sh for a test failed: THE END") != NULL);
	CHECK(ticks >= 1);
	/* Past the deadline: killed, -ETIMEDOUT, within a second or so. */
	char *slow[] = {"sh", "-c", "echo waiting >&2; exec sleep 30", NULL};
	struct vmm_tool_opts t = {.timeout_usec = 500000};
	uint64_t t0 = now_usec();
	CHECK(vmm_run_tool_opts(sh, 1, slow, "dash", "a test", &t, &e) == -ETIMEDOUT);
	CHECK(now_usec() - t0 < 5000000 && strstr(e.msg, "did not end within 0 s; its last words: waiting"));
	/* Cancelled: -ECANCELED. */
	atomic_bool cancel = true;
	struct vmm_tool_opts c = {.cancel = &cancel};
	CHECK(vmm_run_tool_opts(sh, 1, slow, "dash", "a test", &c, &e) == -ECANCELED);
	/* env reaches it; success is 0. */
	char *env_ok[] = {"sh", "-c", "test \"$SBX_T\" = yes", NULL};
	const char *const env[] = {"SBX_T=yes", NULL};
	struct vmm_tool_opts v = {.env = env};
	CHECK(vmm_run_tool_opts(sh, 1, env_ok, "dash", "a test", &v, &e) == 0);
	const char *const none[] = {"/nonexistent/tool"};
	CHECK(vmm_run_tool_opts(none, 1, env_ok, "pkg", "a test", NULL, &e) == -ENOENT &&
	      strstr(e.msg, "(pkg)"));
}

int main(void)
{
	RUN(test_ref_ok);
	RUN(test_ref_bad);
	RUN(test_reason);
	RUN(test_run_tool_bounded);
	UNIT_DONE("pull");
}
