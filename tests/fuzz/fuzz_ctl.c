/* libFuzzer target: one write to a ctl file, at either level.
 *
 * The input is the bytes of one write(2) to /sbx/ctl or /sbx/NAME/ctl. It goes
 * through ctl_split exactly as the daemon does, then the words are checked the
 * way each command's handler checks them (names, key=value options, sizes,
 * cpus, signals, seconds), with the parsers of engine/ctl.h only: no FUSE, no
 * sandbox. Besides the sanitizers, it asserts the parsers' contracts:
 *   - an error is a negative errno with a NUL-terminated, non-empty sentence;
 *   - a split command has 1..CTL_ARGS_MAX non-empty words without blanks,
 *     all inside cmd.line;
 *   - an accepted name is 1..63 bytes of [A-Za-z0-9_.-], no leading dot;
 *   - accepted options stay within their documented ranges;
 *   - an accepted rule or exposed port, written back as NAME/net lists it,
 *     reads back the same;
 *   - as an exec or run line (ctl_command_line, then ctl_run_options):
 *     EINVAL or E2BIG leave nothing set; otherwise the command starts
 *     inside the line after the option words and their blanks (at 0 with no
 *     option), a terminal's size, cwd (absolute), user, env (names, count
 *     and bytes) and timeout are within their bounds, values lie in the
 *     options' own buffer, and the options written back (single-quoted, as
 *     a client writes them) read back the same;
 *   - as a wait target (ctl_parse_wait): a known state, seconds in bounds,
 *     and written back it reads back the same.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#include <ctype.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/ctl.h"
#include "../../net/net.h"

#define MUST(cond)                                                                     \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz_ctl: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                   \
			abort();                                                       \
		}                                                                      \
	} while (0)

static void check_err(int r, const struct err *e)
{
	MUST(r <= 0);
	if (r < 0) {
		MUST(e->code == r);
		MUST(memchr(e->msg, '\0', sizeof(e->msg)) != NULL);
		MUST(e->msg[0] != '\0');
	}
}

static void check_name(const char *name)
{
	struct err e = {0};
	int r = ctl_check_name(name, &e);
	check_err(r, &e);
	if (r == 0) {
		size_t n = strlen(name);
		MUST(n >= 1 && n <= SBX_NAME_MAX);
		MUST(name[0] != '.');
		for (size_t i = 0; i < n; i++)
			MUST(isalnum((unsigned char)name[i]) || strchr("_.-", name[i]));
		MUST(!ctl_reserved_name(name));
	} else {
		MUST(r == -EINVAL || r == -EEXIST);
	}
	/* NULL error object must be accepted too. */
	MUST(ctl_check_name(name, NULL) == r);
}

static void check_options(int argc, char **argv)
{
	struct sbx_config c;
	struct err e = {0};
	ctl_config_defaults(&c, "ns", false);
	int r = ctl_parse_options(argc, argv, &c, &e);
	check_err(r, &e);
	if (r == 0) {
		MUST(memchr(c.image, '\0', sizeof(c.image)));
		MUST(ctl_check_name(c.image, NULL) == 0 || !strcmp(c.image, "busybox"));
		MUST(!strcmp(c.backend, "ns") || !strcmp(c.backend, "qemu"));
		MUST(c.memory_bytes >= (8ull << 20));
		MUST(c.cpu_millis >= 1 && c.cpu_millis <= 1024 * 1000);
		MUST(c.pids >= 8 && c.pids <= 4194304);
		MUST(c.timeout_sec <= 31536000);
		MUST(c.joblog_bytes >= 4096);
		MUST(c.rate_bps == 0 || c.rate_bps >= 8);
	}
}

static void check_seconds(const char *s)
{
	uint64_t u = 0;
	int r = ctl_parse_uint(s, 31536000, &u);
	MUST(r == 0 || r == -EINVAL || r == -ERANGE);
	if (r == 0)
		MUST(u <= 31536000);
}

static void check_signal(const char *s)
{
	int sig = 0;
	int r = ctl_parse_signal(s, &sig);
	MUST(r == 0 || r == -EINVAL);
	if (r == 0)
		MUST(sig >= 1 && sig <= 64);
}

/* allow|deny ...: a rule, or EINVAL with a sentence; an accepted rule's text
 * parses again to a rule that matches the same packets, with the same verdict. */
static void check_rule(int argc, char **argv)
{
	struct net_rule r, again;
	struct err e = {0};
	int ret = ctl_parse_rule(argc, argv, &r, &e);
	check_err(ret, &e);
	MUST(ret == 0 || ret == -EINVAL);
	if (ret < 0)
		return;
	MUST(r.kind <= NET_RULE_DOMAIN);
	MUST(r.kind != NET_RULE_CIDR || r.plen <= 32);
	MUST(r.port == 0 || r.proto == IPPROTO_TCP || r.proto == IPPROTO_UDP);
	static struct ctl_cmd cmd2;
	char text[NET_RULE_TEXT_MAX];
	net_rule_format(&r, text);
	MUST(ctl_split(text, strlen(text), &cmd2, &e) == 0);
	MUST(ctl_parse_rule(cmd2.argc, cmd2.argv, &again, &e) == 0);
	MUST(net_rule_same_match(&r, &again) && r.allow == again.allow);
}

/* expose|unexpose ...: a port, or EINVAL with a sentence; an accepted one's
 * text (as NAME/net lists it) parses again to the same port. */
static void check_expose(int argc, char **argv)
{
	struct net_expose x, again;
	struct err e = {0};
	int ret = ctl_parse_expose(argc, argv, &x, &e);
	check_err(ret, &e);
	MUST(ret == 0 || ret == -EINVAL);
	if (ret < 0)
		return;
	MUST(x.proto == IPPROTO_TCP || x.proto == IPPROTO_UDP);
	MUST(x.port >= 1);
	MUST((x.host_port == 0) == !strcmp(argv[0], "unexpose"));
	if (!x.host_port)
		return;
	static struct ctl_cmd cmd2;
	char text[NET_EXPOSE_TEXT_MAX];
	net_expose_format(&x, text);
	MUST(ctl_split(text, strlen(text), &cmd2, &e) == 0);
	MUST(ctl_parse_expose(cmd2.argc, cmd2.argv, &again, &e) == 0);
	MUST(again.proto == x.proto && again.port == x.port && again.host_port == x.host_port);
}

/* Appends " key='value'" (a quote inside as '\'') to out. */
static void put_opt(char *out, size_t cap, const char *key, const char *v)
{
	size_t n = strlen(out);
	n += (size_t)snprintf(out + n, cap - n, " %s='", key);
	for (; *v && n + 5 < cap; v++)
		n += (size_t)snprintf(out + n, cap - n, *v == '\'' ? "'\\''" : "%c", *v);
	snprintf(out + n, cap - n, "'");
}

static bool in_buf(const struct ctl_run_opts *o, const char *p)
{
	return p >= o->buf && p < o->buf + sizeof(o->buf);
}

/* The write as an exec or run line: options first, or none. */
static void check_run_line(const uint8_t *data, size_t size)
{
	static char line[CTL_WRITE_MAX + 1], again[6 * CTL_WRITE_MAX];
	static struct ctl_run_opts o, o2;
	struct err e = {0};
	int r = ctl_command_line((const char *)data, size, line, &e);
	check_err(r, &e);
	if (r < 0)
		return;
	o.ws = (struct ctl_winsize){0x5a5a, 0x5a5a};
	size_t at = 12345;
	r = ctl_run_options(line, &o, &at, &e);
	check_err(r, &e);
	MUST(r == 0 || r == -EINVAL || r == -E2BIG);
	bool any = o.tty || o.cwd || o.user || o.timeout_ms || o.nenv;
	if (r < 0 || !o.tty)
		MUST(o.ws.cols == 0x5a5a && o.ws.rows == 0x5a5a);
	if (r < 0) {
		MUST(!any && at == 0);
		return;
	}
	MUST(at <= strlen(line));
	MUST((at == 0) == !any);
	if (!any)
		return;
	MUST(line[at] == '\0' || !strchr(" \t", line[at]));
	MUST(strchr(" \t", line[at - 1]) || line[at] == '\0');
	MUST(!o.tty || (o.ws.cols >= 1 && o.ws.cols <= CTL_TTY_MAX && o.ws.rows >= 1 &&
			o.ws.rows <= CTL_TTY_MAX));
	MUST(!o.cwd || (in_buf(&o, o.cwd) && o.cwd[0] == '/'));
	MUST(!o.user || (in_buf(&o, o.user) && o.user[0] && ctl_user_ok(o.user)));
	MUST(o.timeout_ms <= (uint64_t)CTL_TIMEOUT_MAX_SEC * 1000);
	MUST(o.nenv >= 0 && o.nenv <= CTL_ENV_MAX && o.env_bytes <= CTL_ENV_BYTES_MAX);
	again[0] = '\0';
	for (int i = 0; i < o.nenv; i++) {
		MUST(in_buf(&o, o.env[i]));
		const char *eq = strchr(o.env[i], '=');
		MUST(eq && ctl_env_name_ok(o.env[i], (size_t)(eq - o.env[i])));
		put_opt(again, sizeof(again), "env", o.env[i]);
	}
	if (o.cwd)
		put_opt(again, sizeof(again), "cwd", o.cwd);
	if (o.user)
		put_opt(again, sizeof(again), "user", o.user);
	if (o.tty) {
		size_t n = strlen(again);
		snprintf(again + n, sizeof(again) - n, " tty=%ux%u", o.ws.cols, o.ws.rows);
	}
	if (o.timeout_ms) {
		size_t n = strlen(again);
		snprintf(again + n, sizeof(again) - n, " timeout=%llu.%03llu",
			 (unsigned long long)(o.timeout_ms / 1000),
			 (unsigned long long)(o.timeout_ms % 1000));
	}
	size_t n = strlen(again), at2 = 0;
	snprintf(again + n, sizeof(again) - n, " %s", line + at);
	MUST(ctl_run_options(again, &o2, &at2, &e) == 0);
	MUST(!strcmp(again + at2, line + at));
	MUST(o2.tty == o.tty && o2.timeout_ms == o.timeout_ms && o2.nenv == o.nenv);
	MUST(!o.tty || (o2.ws.cols == o.ws.cols && o2.ws.rows == o.ws.rows));
	MUST(!o.cwd == !o2.cwd && (!o.cwd || !strcmp(o.cwd, o2.cwd)));
	MUST(!o.user == !o2.user && (!o.user || !strcmp(o.user, o2.user)));
	for (int i = 0; i < o.nenv; i++)
		MUST(!strcmp(o.env[i], o2.env[i]));
}

/* The write as a wait target: a known state, seconds within bounds, and
 * written back as "STATE S.MMM" it reads back the same. */
static void check_wait(const uint8_t *data, size_t size)
{
	struct ctl_wait w, again;
	struct err e = {0};
	char line[64];
	memset(&w, 0x5a, sizeof(w));
	int r = ctl_parse_wait((const char *)data, size, &w, &e);
	check_err(r, &e);
	MUST(r == 0 || r == -EINVAL);
	if (r < 0)
		return;
	MUST(memchr(w.state, '\0', sizeof(w.state)) != NULL);
	MUST(strstr(" running paused standby stopped failed any ", w.state) != NULL);
	MUST(w.ms >= 1 && w.ms <= (uint64_t)CTL_WAIT_MAX_SEC * 1000);
	snprintf(line, sizeof(line), "%s %llu.%03llu\n", w.state, (unsigned long long)(w.ms / 1000),
		 (unsigned long long)(w.ms % 1000));
	MUST(ctl_parse_wait(line, strlen(line), &again, &e) == 0);
	MUST(!strcmp(again.state, w.state) && again.ms == w.ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctl_cmd cmd; /* 4 KiB line: keep it off the stack */
	struct err e = {0};
	check_run_line(data, size);
	check_wait(data, size);
	int r = ctl_split((const char *)data, size, &cmd, &e);
	check_err(r, &e);
	if (r < 0)
		return 0;
	MUST(cmd.argc >= 1 && cmd.argc <= CTL_ARGS_MAX);
	MUST(size <= CTL_WRITE_MAX);
	for (int i = 0; i < cmd.argc; i++) {
		char *a = cmd.argv[i];
		MUST(a >= cmd.line && a < cmd.line + sizeof(cmd.line));
		MUST(a[0] != '\0');
		MUST(strpbrk(a, " \t\r\n") == NULL);
		MUST(a + strlen(a) < cmd.line + sizeof(cmd.line));
	}
	const char *verb = cmd.argv[0];
	/* Top level: create NAME [key=value...] */
	if (!strcmp(verb, "create") && cmd.argc >= 2) {
		check_name(cmd.argv[1]);
		check_options(cmd.argc - 2, cmd.argv + 2);
	}
	/* Per sandbox: stop [SECONDS], extend SECONDS, kill [SIGNAL],
	 * fork NEW [NEW...] [from=SNAPSHOT] */
	if ((!strcmp(verb, "stop") || !strcmp(verb, "extend")) && cmd.argc >= 2)
		check_seconds(cmd.argv[1]);
	if (!strcmp(verb, "kill") && cmd.argc >= 2)
		check_signal(cmd.argv[1]);
	if (!strcmp(verb, "allow") || !strcmp(verb, "deny"))
		check_rule(cmd.argc, cmd.argv);
	if (!strcmp(verb, "expose") || !strcmp(verb, "unexpose"))
		check_expose(cmd.argc, cmd.argv);
	if (!strcmp(verb, "fork"))
		for (int i = 1; i < cmd.argc; i++)
			check_name(strncmp(cmd.argv[i], "from=", 5) ? cmd.argv[i] : cmd.argv[i] + 5);
	/* Whatever the verb, every word goes through every parser: the handlers
	 * see words in any position. */
	for (int i = 0; i < cmd.argc; i++) {
		check_name(cmd.argv[i]);
		check_seconds(cmd.argv[i]);
		check_signal(cmd.argv[i]);
	}
	check_options(cmd.argc - 1, cmd.argv + 1);
	return 0;
}
