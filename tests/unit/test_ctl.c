/* Unit tests of ctl parsing: splitting writes, names, sizes, cpus, options, signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/ctl.h"
#include "unit.h"

static int split(const char *s, struct ctl_cmd *c)
{
	struct err e = {0};
	return ctl_split(s, strlen(s), c, &e);
}

static void test_split(void)
{
	struct ctl_cmd c;
	struct err e = {0};
	CHECK(split("stop\n", &c) == 0 && c.argc == 1 && !strcmp(c.argv[0], "stop"));
	CHECK(split("  create  a\tmemory=64M  \n", &c) == 0 && c.argc == 3 &&
	      !strcmp(c.argv[1], "a") && !strcmp(c.argv[2], "memory=64M"));
	CHECK(split("", &c) == -EINVAL);
	CHECK(split("\n", &c) == -EINVAL);
	CHECK(split("   ", &c) == -EINVAL);
	CHECK(split("stop\nstart\n", &c) == -EINVAL);
	CHECK(ctl_split("st\0op", 5, &c, &e) == -EINVAL && strstr(e.msg, "NUL"));
	char big[CTL_WRITE_MAX + 2];
	memset(big, 'a', sizeof(big));
	CHECK(ctl_split(big, sizeof(big), &c, &e) == -EINVAL && strstr(e.msg, "too long"));
	CHECK(ctl_split(big, CTL_WRITE_MAX, &c, &e) == 0 && c.argc == 1);
	char many[200] = "";
	for (int i = 0; i < 40; i++)
		strcat(many, "x ");
	CHECK(split(many, &c) == -EINVAL);
	/* A command line of blanks alone, with no NUL after them (a FUSE
	 * write's buffer): read within the write only (the scan ran past it). */
	char *blanks = malloc(8), out[CTL_WRITE_MAX + 1];
	memset(blanks, '\t', 8);
	CHECK(ctl_command_line(blanks, 8, out, &e) == -EINVAL && strstr(e.msg, "empty"));
	free(blanks);
}

static void test_names(void)
{
	struct err e = {0};
	CHECK(ctl_check_name("web-1_a.b", NULL) == 0);
	CHECK(ctl_check_name("", NULL) == -EINVAL);
	CHECK(ctl_check_name(".hidden", NULL) == -EINVAL);
	CHECK(ctl_check_name("..", NULL) == -EINVAL);
	CHECK(ctl_check_name("a/b", NULL) == -EINVAL);
	CHECK(ctl_check_name("a\nb", NULL) == -EINVAL);
	CHECK(ctl_check_name("a b", NULL) == -EINVAL);
	CHECK(ctl_check_name("ctl", NULL) == -EEXIST);
	CHECK(ctl_check_name("stats", NULL) == -EEXIST);
	char n63[64], n64[65];
	memset(n63, 'a', 63);
	n63[63] = '\0';
	memset(n64, 'a', 64);
	n64[64] = '\0';
	CHECK(ctl_check_name(n63, NULL) == 0);
	CHECK(ctl_check_name(n64, &e) == -EINVAL && strstr(e.msg, "longer"));
}

static void test_sizes(void)
{
	uint64_t u;
	CHECK(ctl_parse_size("64M", &u) == 0 && u == 64ull << 20);
	CHECK(ctl_parse_size("1g", &u) == 0 && u == 1ull << 30);
	CHECK(ctl_parse_size("512KiB", &u) == 0 && u == 512ull << 10);
	CHECK(ctl_parse_size("4096", &u) == 0 && u == 4096);
	CHECK(ctl_parse_size("lots", &u) == -EINVAL);
	CHECK(ctl_parse_size("12Q", &u) == -EINVAL);
	CHECK(ctl_parse_size("-1M", &u) == -EINVAL);
	CHECK(ctl_parse_size("99999999999999999999T", &u) < 0);
	CHECK(ctl_parse_size("", &u) == -EINVAL);
}

static void test_cpus(void)
{
	uint32_t m;
	CHECK(ctl_parse_cpus("0.5", &m) == 0 && m == 500);
	CHECK(ctl_parse_cpus("2", &m) == 0 && m == 2000);
	CHECK(ctl_parse_cpus("1.25", &m) == 0 && m == 1250);
	CHECK(ctl_parse_cpus("0", &m) < 0);
	CHECK(ctl_parse_cpus("0.0001", &m) < 0);
	CHECK(ctl_parse_cpus(".5", &m) < 0);
	CHECK(ctl_parse_cpus("1.", &m) < 0);
	CHECK(ctl_parse_cpus("abc", &m) < 0);
	CHECK(ctl_parse_cpus("5000", &m) < 0);
}

static void test_uint(void)
{
	uint64_t u;
	CHECK(ctl_parse_uint("18446744073709551615", UINT64_MAX, &u) == 0 && u == UINT64_MAX);
	CHECK(ctl_parse_uint("18446744073709551616", UINT64_MAX, &u) == -ERANGE);
	CHECK(ctl_parse_uint("10", 5, &u) == -ERANGE);
	CHECK(ctl_parse_uint("1x", 5, &u) == -EINVAL);
}

static void test_options(void)
{
	struct err e = {0};
	struct sbx_config cfg;
	ctl_config_defaults(&cfg, "ns", false);
	CHECK(!strcmp(cfg.image, "busybox") && cfg.memory_bytes > 0);
	char o1[] = "memory=64M", o2[] = "pids=64", o3[] = "cpus=0.5", o4[] = "image=alpine",
	     o5[] = "net=on", o6[] = "timeout=30";
	char *opts[] = {o1, o2, o3, o4, o5, o6};
	CHECK(ctl_parse_options(6, opts, &cfg, &e) == 0);
	CHECK(cfg.memory_bytes == 64ull << 20 && cfg.pids == 64 && cfg.cpu_millis == 500 &&
	      !strcmp(cfg.image, "alpine") && cfg.net && cfg.timeout_sec == 30);
	char b1[] = "memory=lots";
	char *bad1[] = {b1};
	CHECK(ctl_parse_options(1, bad1, &cfg, &e) == -EINVAL && strstr(e.msg, "memory=lots"));
	char b2[] = "color=blue";
	char *bad2[] = {b2};
	CHECK(ctl_parse_options(1, bad2, &cfg, &e) == -EINVAL && strstr(e.msg, "unknown option"));
	char b3[] = "memory";
	char *bad3[] = {b3};
	CHECK(ctl_parse_options(1, bad3, &cfg, &e) == -EINVAL);
	char b4[] = "memory=1M";
	char *bad4[] = {b4};
	CHECK(ctl_parse_options(1, bad4, &cfg, &e) == -EINVAL && strstr(e.msg, "minimum"));
	char b5[] = "pids=2", b6[] = "net=maybe", b7[] = "image=../etc", b8[] = "backend=xen";
	char *bad5[] = {b5}, *bad6[] = {b6}, *bad7[] = {b7}, *bad8[] = {b8};
	CHECK(ctl_parse_options(1, bad5, &cfg, &e) == -EINVAL);
	CHECK(ctl_parse_options(1, bad6, &cfg, &e) == -EINVAL);
	CHECK(ctl_parse_options(1, bad7, &cfg, &e) == -EINVAL);
	CHECK(ctl_parse_options(1, bad8, &cfg, &e) == -EINVAL);
}

/* A pool's spec is read back as options: the same config, the same text. */
static void spec_round_trip(const char *words)
{
	struct err e = {0};
	struct sbx_config a, b;
	char line[512], s1[512], s2[512], *argv[CTL_ARGS_MAX];
	int argc = 0;
	ctl_config_defaults(&a, "ns", false);
	snprintf(line, sizeof(line), "%s", words);
	for (char *save, *w = strtok_r(line, " ", &save); w && argc < CTL_ARGS_MAX;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	CHECK(ctl_parse_options(argc, argv, &a, &e) == 0);
	CHECK(ctl_config_spec(&a, s1, sizeof(s1)) > 0);
	ctl_config_defaults(&b, "qemu", true); /* the spec sets every option */
	argc = 0;
	snprintf(line, sizeof(line), "%s", s1);
	for (char *save, *w = strtok_r(line, " ", &save); w && argc < CTL_ARGS_MAX;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	CHECK(ctl_parse_options(argc, argv, &b, &e) == 0);
	CHECK(ctl_config_spec(&b, s2, sizeof(s2)) > 0);
	CHECK(strcmp(s1, s2) == 0);
	CHECK(a.memory_bytes == b.memory_bytes && a.cpu_millis == b.cpu_millis &&
	      a.pids == b.pids && a.net == b.net && a.rate_bps == b.rate_bps &&
	      a.timeout_sec == b.timeout_sec && a.joblog_bytes == b.joblog_bytes &&
	      !strcmp(a.image, b.image) && !strcmp(a.backend, b.backend));
}

static void test_spec(void)
{
	spec_round_trip("");
	spec_round_trip("memory=64M pids=64 cpus=0.5 net=on timeout=30");
	spec_round_trip("rate=10mbit joblog=4K cpus=2.125 image=alpine backend=qemu");
	/* Two spellings of one config give one spec (a pool matches both). */
	struct err e = {0};
	struct sbx_config a, b;
	char s1[512], s2[512], w1[] = "memory=1G", w2[] = "memory=1024M";
	char *o1[] = {w1}, *o2[] = {w2};
	ctl_config_defaults(&a, "ns", false);
	ctl_config_defaults(&b, "ns", false);
	CHECK(ctl_parse_options(1, o1, &a, &e) == 0 && ctl_parse_options(1, o2, &b, &e) == 0);
	CHECK(ctl_config_spec(&a, s1, sizeof(s1)) > 0 && ctl_config_spec(&b, s2, sizeof(s2)) > 0);
	CHECK(strcmp(s1, s2) == 0);
	CHECK(ctl_config_spec(&a, s1, 10) == -ENOSPC);
}

/* disk=: a size from 4M to 16T, or none; a sentence for anything else. */
static void test_disk(void)
{
	struct err e = {0};
	struct sbx_config c;
	uint64_t b = 1;
	ctl_config_defaults(&c, "ns", false);
	CHECK(c.disk_bytes == 0);
	char o1[] = "disk=16M";
	char *ok1[] = {o1};
	CHECK(ctl_parse_options(1, ok1, &c, &e) == 0 && c.disk_bytes == 16ull << 20);
	char o2[] = "disk=none";
	char *ok2[] = {o2};
	CHECK(ctl_parse_options(1, ok2, &c, &e) == 0 && c.disk_bytes == 0);
	CHECK(ctl_parse_disk("4M", &b, &e) == 0 && b == SBX_DISK_MIN_BYTES);
	CHECK(ctl_parse_disk("16T", &b, &e) == 0 && b == SBX_DISK_MAX_BYTES);
	CHECK(ctl_parse_disk("1g", &b, &e) == 0 && b == 1ull << 30);
	static const struct {
		const char *v, *says;
	} bad[] = {
		{"0", "below the minimum of 4M"},   {"1K", "below the minimum of 4M"},
		{"4194303", "below the minimum"},   {"abc", "not a size"},
		{"", "not a size"},                 {"-1", "not a size"},
		{"16M5", "not a size"},             {"17T", "above the maximum of 16T"},
		{"99999999999999999999", "not a size"}, {"NONE", "not a size"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char word[64];
		snprintf(word, sizeof(word), "disk=%s", bad[i].v);
		char *argv[] = {word};
		err_clear(&e);
		b = 7;
		c.disk_bytes = 7;
		CHECK(ctl_parse_options(1, argv, &c, &e) == -EINVAL && strstr(e.msg, bad[i].says));
		CHECK(c.disk_bytes == 7); /* a refused value changes nothing */
		CHECK(ctl_parse_disk(bad[i].v, &b, &e) == -EINVAL && b == 7);
	}
	/* A pool's spec keeps it: disk=16M and disk=none read back as they were. */
	char s1[512], w1[] = "disk=16M";
	char *o3[] = {w1};
	struct sbx_config a, r;
	ctl_config_defaults(&a, "ns", false);
	CHECK(ctl_parse_options(1, o3, &a, &e) == 0);
	CHECK(ctl_config_spec(&a, s1, sizeof(s1)) > 0 && strstr(s1, "disk=16777216"));
	ctl_config_defaults(&r, "ns", false);
	r.disk_bytes = 1;
	char *argv[CTL_ARGS_MAX], *save;
	int argc = 0;
	for (char *w = strtok_r(s1, " ", &save); w; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	CHECK(ctl_parse_options(argc, argv, &r, &e) == 0 && r.disk_bytes == 16ull << 20);
	a.disk_bytes = 0;
	CHECK(ctl_config_spec(&a, s1, sizeof(s1)) > 0 && strstr(s1, "disk=none"));
}

static void test_signals(void)
{
	int sig;
	CHECK(ctl_parse_signal("TERM", &sig) == 0 && sig == SIGTERM);
	CHECK(ctl_parse_signal("sigkill", &sig) == 0 && sig == SIGKILL);
	CHECK(ctl_parse_signal("9", &sig) == 0 && sig == 9);
	CHECK(ctl_parse_signal("0", &sig) == -EINVAL);
	CHECK(ctl_parse_signal("65", &sig) == -EINVAL);
	CHECK(ctl_parse_signal("FOO", &sig) == -EINVAL);
}

static void test_winsize(void)
{
	struct ctl_winsize ws = {7, 7};
	struct err e = {0};
	CHECK(ctl_parse_winsize("80x24", &ws, &e) == 0 && ws.cols == 80 && ws.rows == 24);
	CHECK(ctl_parse_winsize("1x1", &ws, &e) == 0 && ws.cols == 1 && ws.rows == 1);
	CHECK(ctl_parse_winsize("1000x1000", &ws, &e) == 0 && ws.cols == 1000);
	ws = (struct ctl_winsize){7, 7};
	static const char *bad[] = {"0x0", "0x24", "80x0", "1001x24", "80x1001", "huge", "",
				    "x", "80x", "x24", "80X24", "80x24x", "-80x24", "80x-24",
				    " 80x24", "80x24 ", "65616x24", "99999999999999999999x1",
				    "80:24"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		e = (struct err){0};
		CHECK(ctl_parse_winsize(bad[i], &ws, &e) == -EINVAL && strstr(e.msg, "COLSxROWS"));
	}
	CHECK(ws.cols == 7 && ws.rows == 7);
}

static void test_run_options(void)
{

	struct ctl_run_opts o;
	struct err e = {0};
	size_t at = 99;
	CHECK(ctl_run_options("echo hi", &o, &at, &e) == 0 && !o.tty && at == 0);
	CHECK(ctl_run_options("tty 80x24", &o, &at, &e) == 0 && !o.tty && at == 0);
	CHECK(ctl_run_options("echo tty=80x24", &o, &at, &e) == 0 && !o.tty && at == 0);
	const char *l = "tty=80x24 stty size";
	CHECK(ctl_run_options(l, &o, &at, &e) == 0 && o.tty && o.ws.cols == 80 &&
	      o.ws.rows == 24 && !strcmp(l + at, "stty size"));
	l = "  tty=132x43 \t sh -c 'exit 3'";
	CHECK(ctl_run_options(l, &o, &at, &e) == 0 && o.tty && o.ws.cols == 132 &&
	      o.ws.rows == 43 && !strcmp(l + at, "sh -c 'exit 3'"));
	l = "tty=80x24";
	CHECK(ctl_run_options(l, &o, &at, &e) == 0 && o.tty && at == strlen(l));
	l = "tty=80x24   ";
	CHECK(ctl_run_options(l, &o, &at, &e) == 0 && o.tty && at == strlen(l));
	static const char *bad[] = {"tty=0x0 sh", "tty=huge sh", "tty= sh", "tty=80x24x sh",
				    "tty=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa sh"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		e = (struct err){0};
		CHECK(ctl_run_options(bad[i], &o, &at, &e) == -EINVAL && !o.tty &&
		      strstr(e.msg, "COLSxROWS"));
	}
}

static int opts(const char *l, struct ctl_run_opts *o, size_t *at, struct err *e)
{
	*e = (struct err){0};
	return ctl_run_options(l, o, at, e);
}

static void test_exec_options(void)
{
	static struct ctl_run_opts o;
	struct err e;
	size_t at;
	const char *l = "cwd=/tmp env=A=1 env=B='x y' user=nobody:nogroup timeout=2.5 echo $A";
	CHECK(opts(l, &o, &at, &e) == 0 && !strcmp(l + at, "echo $A") && !o.tty);
	CHECK(o.cwd && !strcmp(o.cwd, "/tmp") && o.user && !strcmp(o.user, "nobody:nogroup"));
	CHECK(o.nenv == 2 && !strcmp(o.env[0], "A=1") && !strcmp(o.env[1], "B=x y"));
	CHECK(o.timeout_ms == 2500 && ctl_run_env_has(&o, "B", 1) && !ctl_run_env_has(&o, "C", 1));
	/* quotes: joined to bare parts, a quote as \', blanks inside */
	l = "env=Q=it\\'s cwd='/my dir'/sub tty=80x24 sh";
	CHECK(opts(l, &o, &at, &e) == 0 && !strcmp(o.env[0], "Q=it's") &&
	      !strcmp(o.cwd, "/my dir/sub") && o.tty && !strcmp(l + at, "sh"));
	l = "env=E='' env=F=a'b c'd true";
	CHECK(opts(l, &o, &at, &e) == 0 && !strcmp(o.env[0], "E=") && !strcmp(o.env[1], "F=ab cd"));
	/* what stays the command's: assignments, no option, options only */
	CHECK(opts("i=0; echo $i", &o, &at, &e) == 0 && at == 0 && !o.nenv);
	CHECK(opts("LANG=C sort", &o, &at, &e) == 0 && at == 0);
	CHECK(opts("cwd=/ LANG=C sort", &o, &at, &e) == 0 && at == 6 && o.cwd);
	CHECK(opts("CWD=/tmp pwd", &o, &at, &e) == 0 && at == 0 && !o.cwd);
	CHECK(opts("timeout=1", &o, &at, &e) == 0 && at == 9 && o.timeout_ms == 1000);
	CHECK(opts("timeout=31536000 x", &o, &at, &e) == 0 && o.timeout_ms == 31536000000ull);
	static const struct { const char *line, *says; int r; } bad[] = {
		{"cwd=tmp pwd", "absolute", -EINVAL},
		{"cwd= pwd", "absolute", -EINVAL},
		{"cwd=/a cwd=/b pwd", "twice", -EINVAL},
		{"env=1A=x env", "NAME=VALUE", -EINVAL},
		{"env=A-B=x env", "NAME=VALUE", -EINVAL},
		{"env=A env", "NAME=VALUE", -EINVAL},
		{"env==x env", "NAME=VALUE", -EINVAL},
		{"user= id", "USER", -EINVAL},
		{"user=a/b id", "USER", -EINVAL},
		{"user=-x id", "USER", -EINVAL},
		{"user=a:b:c id", "USER", -EINVAL},
		{"user=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa id", "USER", -EINVAL},
		{"timeout=0 sleep 1", "seconds", -EINVAL},
		{"timeout=-1 sleep 1", "seconds", -EINVAL},
		{"timeout=1.2345 sleep 1", "seconds", -EINVAL},
		{"timeout=31536001 sleep 1", "seconds", -EINVAL},
		{"timeout=1e3 sleep 1", "seconds", -EINVAL},
		{"timeout=. sleep 1", "seconds", -EINVAL},
		{"timeout=99999999999999999999999 sleep 1", "seconds", -EINVAL},
		{"cwd=/tmp bogus=1 pwd", "unknown option 'bogus='", -EINVAL},
		{"timeout=1 i=0; echo", "unknown option 'i='", -EINVAL},
		{"env=A='open echo", "not closed", -EINVAL},
		{"env=A=x\\", "backslash", -EINVAL},
		{"tty=80x24 tty=80x24 sh", "twice", -EINVAL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		o.ws = (struct ctl_winsize){7, 7};
		at = 99;
		int r = opts(bad[i].line, &o, &at, &e);
		CHECK(r == bad[i].r && strstr(e.msg, bad[i].says) && at == 0 && !o.cwd && !o.nenv &&
		      !o.user && !o.timeout_ms && !o.tty && o.ws.cols == 7);
		if (r != bad[i].r || !strstr(e.msg, bad[i].says))
			fprintf(stderr, "  %s: %d '%s'\n", bad[i].line, r, e.msg);
	}
	/* bounds: CTL_ENV_MAX words, CTL_ENV_BYTES_MAX bytes */
	char many[CTL_WRITE_MAX + 1] = "";
	for (int i = 0; i <= CTL_ENV_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "env=V%d=x ", i);
	CHECK(opts(many, &o, &at, &e) == -E2BIG && strstr(e.msg, "more than 32 env="));
	*strrchr(many, 'e') = '\0'; /* CTL_ENV_MAX of them: taken */
	CHECK(opts(many, &o, &at, &e) == 0 && o.nenv == CTL_ENV_MAX);
	char big[CTL_WRITE_MAX + 1];
	snprintf(big, sizeof(big), "env=A=%0*d env=B=%0*d true", 1200, 0, 1200, 0);
	CHECK(opts(big, &o, &at, &e) == -E2BIG && strstr(e.msg, "bytes"));
	snprintf(big, sizeof(big), "env=A=%0*d true", 2000, 0);
	CHECK(opts(big, &o, &at, &e) == 0 && strlen(o.env[0]) == 2002);
	/* users as images name them */
	CHECK(ctl_user_ok("") && ctl_user_ok("1000:1000") && ctl_user_ok("www-data") &&
	      !ctl_user_ok(":x") && !ctl_user_ok("x:") && !ctl_user_ok(".x"));
}

static int freq(const char *s, struct ctl_files_req *q, size_t *at, struct err *e)
{
	return ctl_files_request(s, strlen(s), q, at, e);
}

/* files: VERB [key=value...] PATH, the path the rest of the line, \xHH undone. */
static void test_files_request(void)
{
	static struct ctl_files_req q;
	struct err e = {0};
	size_t at = 0;
	CHECK(freq("get /etc/hostname\n", &q, &at, &e) == 0 && q.verb == CTL_FILES_GET &&
	      !strcmp(q.path, "/etc/hostname") && at == 18);
	CHECK(freq("get /my dir/a file \n", &q, &at, &e) == 0 && !strcmp(q.path, "/my dir/a file "));
	CHECK(freq("get /x", &q, &at, &e) == 0 && at == 6); /* echo -n */
	CHECK(freq("put size=5 /tmp/f\nhello", &q, &at, &e) == 0 && q.verb == CTL_FILES_PUT &&
	      q.size == 5 && q.mode == 0644 && at == 18 && !strcmp(q.path, "/tmp/f"));
	CHECK(freq("put mode=4755 size=0 /x\n", &q, &at, &e) == 0 && q.mode == 04755 && q.size == 0);
	CHECK(freq("mkdir /d\n", &q, &at, &e) == 0 && q.verb == CTL_FILES_MKDIR && q.mode == 0755);
	CHECK(freq("list /\n", &q, &at, &e) == 0 && q.verb == CTL_FILES_LIST && !strcmp(q.path, "/"));
	CHECK(freq("stat /a\\x0ab\\x5cc\\x20\n", &q, &at, &e) == 0 && !strcmp(q.path, "/a\nb\\c "));
	/* refusals, each with its sentence */
	CHECK(freq("put /x\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "size="));
	CHECK(freq("get size=3 /x\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "option of put"));
	CHECK(freq("stat mode=0644 /x\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "mode="));
	CHECK(freq("put size=1 size=1 /x\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "twice"));
	CHECK(freq("put size=1 mode=0800 /x\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "octal"));
	CHECK(freq("put size=1 mode=17777 /x\n", &q, &at, &e) == -EINVAL);
	CHECK(freq("put size=-1 /x\n", &q, &at, &e) == -EINVAL);
	CHECK(freq("put size=1099511627777 /x\n", &q, &at, &e) == -EINVAL);
	CHECK(freq("put size=1 owner=0 /x\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "unknown"));
	CHECK(freq("get etc/passwd\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "key=value"));
	CHECK(freq("get\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "absolute"));
	CHECK(freq("\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "unknown request"));
	CHECK(freq("rm /x\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "unknown request"));
	CHECK(freq("GET /x\n", &q, &at, &e) == -EINVAL);
	CHECK(freq("get /a\\\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "\\x5c"));
	CHECK(freq("get /a\\x4\n", &q, &at, &e) == -EINVAL);
	CHECK(freq("get /a\\y41\n", &q, &at, &e) == -EINVAL);
	CHECK(freq("get /a\\x00\n", &q, &at, &e) == -EINVAL && strstr(e.msg, "NUL"));
	CHECK(ctl_files_request("get /a\0b\n", 9, &q, &at, &e) == -EINVAL && strstr(e.msg, "NUL"));
	CHECK(q.path[0] == '\0');
	char big[CTL_WRITE_MAX + 8];
	memset(big, 'a', sizeof(big));
	memcpy(big, "get /", 5);
	CHECK(ctl_files_request(big, sizeof(big), &q, &at, &e) == -EINVAL && strstr(e.msg, "longer"));
	big[CTL_WRITE_MAX - 1] = '\n'; /* a line of CTL_WRITE_MAX - 1 bytes, then data */
	CHECK(ctl_files_request(big, sizeof(big), &q, &at, &e) == 0 && at == CTL_WRITE_MAX);
	/* list's escape, undone by a request's path */
	char esc[64];
	str_escape_name(esc, sizeof(esc), "/a\nb\\c\x7f");
	CHECK(!strcmp(esc, "/a\\x0ab\\x5cc\\x7f"));
	char line[96];
	snprintf(line, sizeof(line), "get %s\n", esc);
	CHECK(freq(line, &q, &at, &e) == 0 && !strcmp(q.path, "/a\nb\\c\x7f"));
}

static int waitp(const char *line, struct ctl_wait *w, struct err *e)
{
	return ctl_parse_wait(line, strlen(line), w, e);
}

static void test_wait_target(void)
{
	struct ctl_wait w;
	struct err e = {0};
	CHECK(waitp("running\n", &w, &e) == 0 && !strcmp(w.state, "running") &&
	      w.ms == CTL_WAIT_DEFAULT_SEC * 1000ull);
	CHECK(waitp("stopped 2.5", &w, &e) == 0 && !strcmp(w.state, "stopped") && w.ms == 2500);
	CHECK(waitp("any 0.001", &w, &e) == 0 && !strcmp(w.state, "any") && w.ms == 1);
	CHECK(waitp("failed 86400", &w, &e) == 0 && w.ms == 86400000ull);
	static const char *const bad[] = {"", "\n", "sleeping", "creating", "stopping",
					  "running 0", "running 86400.001", "running 1.2345",
					  "running -1", "running 1e3", "running 2 3", "RUNNING"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		e.msg[0] = '\0';
		CHECK(waitp(bad[i], &w, &e) == -EINVAL && e.msg[0]);
	}
	CHECK(waitp("sleeping", &w, &e) < 0 && strstr(e.msg, "not a state to wait for"));
	CHECK(waitp("running soon", &w, &e) < 0 && strstr(e.msg, "seconds"));
}

int main(void)
{
	RUN(test_split);
	RUN(test_names);
	RUN(test_sizes);
	RUN(test_cpus);
	RUN(test_uint);
	RUN(test_options);
	RUN(test_signals);
	RUN(test_spec);
	RUN(test_disk);
	RUN(test_winsize);
	RUN(test_run_options);
	RUN(test_exec_options);
	RUN(test_files_request);
	RUN(test_wait_target);
	UNIT_DONE("ctl");
}
