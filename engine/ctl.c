/* ctl command parsing: splitting, names, sizes, options, signals. */
#define _GNU_SOURCE
#include "ctl.h"
#include "../net/net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Top-level file names a sandbox may not take (its directory would hide them). */
static const char *reserved[] = {"ctl", "stats", "error", "events", "metrics", "images",
				 "pools"};

bool ctl_reserved_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
		if (strcmp(name, reserved[i]) == 0)
			return true;
	return false;
}

int ctl_split(const char *buf, size_t len, struct ctl_cmd *cmd, struct err *e)
{
	if (len > CTL_WRITE_MAX)
		return err_set(e, -EINVAL, "write of %zu bytes is too long (at most %d, one command)",
			       len, CTL_WRITE_MAX);
	if (memchr(buf, '\0', len))
		return err_set(e, -EINVAL, "command contains a NUL byte");
	if (len && buf[len - 1] == '\n')
		len--;
	if (memchr(buf, '\n', len))
		return err_set(e, -EINVAL, "one command per write: the write has several lines");
	memcpy(cmd->line, buf, len);
	cmd->line[len] = '\0';
	cmd->argc = 0;
	for (char *p = cmd->line; *p;) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			*p++ = '\0';
		if (!*p)
			break;
		if (cmd->argc == CTL_ARGS_MAX)
			return err_set(e, -EINVAL, "too many words in one command (at most %d)",
				       CTL_ARGS_MAX);
		cmd->argv[cmd->argc++] = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\r')
			p++;
	}
	if (cmd->argc == 0)
		return err_set(e, -EINVAL, "empty command");
	return 0;
}

int ctl_command_line(const char *buf, size_t len, char *out, struct err *e)
{
	if (len > CTL_WRITE_MAX)
		return err_set(e, -EINVAL, "command line of %zu bytes is too long (at most %d)", len,
			       CTL_WRITE_MAX);
	if (memchr(buf, '\0', len))
		return err_set(e, -EINVAL, "command line contains a NUL byte");
	if (len && buf[len - 1] == '\n')
		len--;
	if (memchr(buf, '\n', len))
		return err_set(e, -EINVAL, "one command line per write: the write has several lines");
	size_t blanks = 0; /* buf has no NUL to stop strspn */
	while (blanks < len && (buf[blanks] == ' ' || buf[blanks] == '\t' || buf[blanks] == '\r'))
		blanks++;
	if (blanks == len)
		return err_set(e, -EINVAL, "empty command line");
	memcpy(out, buf, len);
	out[len] = '\0';
	return 0;
}

int ctl_check_name(const char *name, struct err *e)
{
	size_t n = strnlen(name, SBX_NAME_MAX + 1);
	if (n == 0)
		return err_set(e, -EINVAL, "empty sandbox name");
	if (n > SBX_NAME_MAX)
		return err_set(e, -EINVAL, "sandbox name '%.20s...' is longer than %d characters",
			       name, SBX_NAME_MAX);
	if (name[0] == '.')
		return err_set(e, -EINVAL, "sandbox name '%s' starts with a dot", name);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return err_set(e, -EINVAL,
				       "sandbox name has a character outside [A-Za-z0-9_.-] (byte 0x%02x)",
				       c);
	}
	if (ctl_reserved_name(name))
		return err_set(e, -EEXIST, "'%s' is a file of the top level, not a sandbox name", name);
	return 0;
}

void ctl_config_defaults(struct sbx_config *c, const char *backend, bool net)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->image, sizeof(c->image), "busybox");
	snprintf(c->backend, sizeof(c->backend), "%s", backend);
	c->memory_bytes = 256ull << 20;
	c->cpu_millis = 1000;
	c->pids = 512;
	c->net = net;
	c->joblog_bytes = 16ull << 20;
}

int ctl_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	if (!*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	uint64_t v = 0;
	for (; isdigit((unsigned char)*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (*s)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int ctl_parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	uint64_t v, mult = 1;
	if (ctl_parse_uint(num, UINT64_MAX, &v) < 0)
		return -EINVAL;
	const char *suf = s + n;
	if (!*suf || !strcasecmp(suf, "b"))
		mult = 1;
	else if (!strcasecmp(suf, "k") || !strcasecmp(suf, "kb") || !strcasecmp(suf, "kib"))
		mult = 1ull << 10;
	else if (!strcasecmp(suf, "m") || !strcasecmp(suf, "mb") || !strcasecmp(suf, "mib"))
		mult = 1ull << 20;
	else if (!strcasecmp(suf, "g") || !strcasecmp(suf, "gb") || !strcasecmp(suf, "gib"))
		mult = 1ull << 30;
	else if (!strcasecmp(suf, "t") || !strcasecmp(suf, "tb") || !strcasecmp(suf, "tib"))
		mult = 1ull << 40;
	else
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

/* "2", "0.5", "1.25": millicpus, at most three decimals. */
int ctl_parse_cpus(const char *s, uint32_t *millis)
{
	uint64_t whole = 0, frac = 0;
	const char *dot = strchr(s, '.');
	char w[16];
	size_t wl = dot ? (size_t)(dot - s) : strlen(s);
	if (wl == 0 || wl >= sizeof(w))
		return -EINVAL;
	memcpy(w, s, wl);
	w[wl] = '\0';
	if (ctl_parse_uint(w, 1024, &whole) < 0)
		return -EINVAL;
	if (dot) {
		size_t fl = strlen(dot + 1);
		if (fl == 0 || fl > 3 || ctl_parse_uint(dot + 1, 999, &frac) < 0)
			return -EINVAL;
		for (size_t i = fl; i < 3; i++)
			frac *= 10;
	}
	uint64_t m = whole * 1000 + frac;
	if (m == 0 || m > 1024 * 1000)
		return -ERANGE;
	*millis = (uint32_t)m;
	return 0;
}

int ctl_parse_disk(const char *v, uint64_t *bytes, struct err *e)
{
	uint64_t u;
	if (!strcmp(v, "none")) {
		*bytes = 0;
		return 0;
	}
	if (ctl_parse_size(v, &u) < 0)
		return err_set(e, -EINVAL, "disk=%.32s is not a size like 64M or 1G (or none: no "
			       "limit)", v);
	if (u < SBX_DISK_MIN_BYTES)
		return err_set(e, -EINVAL, "disk=%.32s is below the minimum of %lluM (disk=none: "
			       "no limit)", v, SBX_DISK_MIN_BYTES >> 20);
	if (u > SBX_DISK_MAX_BYTES)
		return err_set(e, -EINVAL, "disk=%.32s is above the maximum of %lluT", v,
			       SBX_DISK_MAX_BYTES >> 40);
	*bytes = u;
	return 0;
}

int ctl_parse_options(int argc, char **argv, struct sbx_config *c, struct err *e)
{
	int r;
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i])
			return err_set(e, -EINVAL, "option '%s' is not key=value", argv[i]);
		size_t kl = (size_t)(eq - argv[i]);
		const char *v = eq + 1;
		uint64_t u;
#define KEY(k) (kl == strlen(k) && strncmp(argv[i], k, kl) == 0)
		if (KEY("image")) {
			if (ctl_check_name(v, NULL) < 0)
				return err_set(e, -EINVAL, "image name '%s' is not valid", v);
			snprintf(c->image, sizeof(c->image), "%s", v);
		} else if (KEY("backend")) {
			if (strcmp(v, "ns") && strcmp(v, "qemu"))
				return err_set(e, -EINVAL, "backend '%s' is not ns or qemu", v);
			snprintf(c->backend, sizeof(c->backend), "%s", v);
		} else if (KEY("memory")) {
			if (ctl_parse_size(v, &u) < 0)
				return err_set(e, -EINVAL, "memory=%s is not a size like 64M or 1G", v);
			if (u < (8ull << 20))
				return err_set(e, -EINVAL, "memory=%s is below the minimum of 8M", v);
			c->memory_bytes = u;
		} else if (KEY("cpus")) {
			if (ctl_parse_cpus(v, &c->cpu_millis) < 0)
				return err_set(e, -EINVAL, "cpus=%s is not a number of cpus like 0.5 or 2", v);
		} else if (KEY("pids")) {
			if (ctl_parse_uint(v, 4194304, &u) < 0 || u < 8)
				return err_set(e, -EINVAL, "pids=%s is not a number from 8 to 4194304", v);
			c->pids = (uint32_t)u;
		} else if (KEY("net")) {
			if (strcmp(v, "on") && strcmp(v, "off"))
				return err_set(e, -EINVAL, "net=%s is not on or off", v);
			c->net = strcmp(v, "on") == 0;
		} else if (KEY("rate")) {
			if (net_parse_rate(v, &u) < 0)
				return err_set(e, -EINVAL, "rate=%s is not a rate like 10mbit or 1gbit", v);
			c->rate_bps = u;
		} else if (KEY("joblog")) {
			if (ctl_parse_size(v, &u) < 0 || u < 4096)
				return err_set(e, -EINVAL, "joblog=%s is not a size of at least 4K", v);
			c->joblog_bytes = u;
		} else if (KEY("disk")) {
			if ((r = ctl_parse_disk(v, &c->disk_bytes, e)) < 0)
				return r;
		} else if (KEY("timeout")) {
			if (ctl_parse_uint(v, 31536000, &u) < 0)
				return err_set(e, -EINVAL, "timeout=%s is not a number of seconds", v);
			c->timeout_sec = (uint32_t)u;
		} else {
			return err_set(e, -EINVAL, "unknown option '%.*s'", (int)kl, argv[i]);
		}
#undef KEY
	}
	return 0;
}

int ctl_config_spec(const struct sbx_config *c, char *out, size_t cap)
{
	char disk[24] = "none";
	if (c->disk_bytes)
		snprintf(disk, sizeof(disk), "%" PRIu64, c->disk_bytes);
	int n = snprintf(out, cap,
			 "image=%s backend=%s memory=%" PRIu64 " cpus=%u.%03u pids=%u net=%s "
			 "timeout=%u joblog=%" PRIu64 " disk=%s",
			 c->image, c->backend, c->memory_bytes, c->cpu_millis / 1000,
			 c->cpu_millis % 1000, c->pids, c->net ? "on" : "off", c->timeout_sec,
			 c->joblog_bytes, disk);
	if (n >= 0 && (size_t)n < cap && c->rate_bps) /* no rate= (0) is no shaping */
		n += snprintf(out + n, cap - (size_t)n, " rate=%" PRIu64 "bit", c->rate_bps);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int ctl_parse_signal(const char *s, int *sig)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
		{"STOP", SIGSTOP}, {"ALRM", SIGALRM},
	};
	uint64_t n;
	if (ctl_parse_uint(s, 64, &n) == 0) {
		if (n == 0)
			return -EINVAL;
		*sig = (int)n;
		return 0;
	}
	const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (strcasecmp(name, sigs[i].name) == 0) {
			*sig = sigs[i].sig;
			return 0;
		}
	return -EINVAL;
}

int ctl_parse_winsize(const char *s, struct ctl_winsize *ws, struct err *e)
{
	char cols[8], rows[8];
	uint64_t c, r;
	const char *x = strchr(s, 'x');
	size_t n = x ? (size_t)(x - s) : 0;
	if (!x || n >= sizeof(cols) || strlen(x + 1) >= sizeof(rows))
		goto bad;
	memcpy(cols, s, n);
	cols[n] = '\0';
	snprintf(rows, sizeof(rows), "%s", x + 1);
	if (ctl_parse_uint(cols, CTL_TTY_MAX, &c) < 0 || ctl_parse_uint(rows, CTL_TTY_MAX, &r) < 0 ||
	    !c || !r)
		goto bad;
	ws->cols = (uint16_t)c;
	ws->rows = (uint16_t)r;
	return 0;
bad:
	return err_set(e, -EINVAL, "terminal size '%.32s' is not COLSxROWS, each from 1 to %d "
		       "(80x24: 80 columns, 24 rows)", s, CTL_TTY_MAX);
}

bool ctl_env_name_ok(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* A word of [A-Za-z0-9_.-], 1 to 32 bytes, not starting with '-' or '.'. */
static bool user_word_ok(const char *s, size_t n)
{
	if (n == 0 || n > 32 || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

bool ctl_user_ok(const char *user)
{
	if (!*user)
		return true; /* none: root */
	const char *colon = strchr(user, ':');
	if (!colon)
		return user_word_ok(user, strlen(user));
	return user_word_ok(user, (size_t)(colon - user)) && user_word_ok(colon + 1, strlen(colon + 1));
}

bool ctl_run_env_has(const struct ctl_run_opts *o, const char *name, size_t n)
{
	for (int i = 0; i < o->nenv; i++)
		if (!strncmp(o->env[i], name, n) && o->env[i][n] == '=')
			return true;
	return false;
}

/* Seconds with at most three decimals ("30", "0.5"), above 0 and at most max. */
static int parse_seconds(const char *v, uint64_t max, uint64_t *ms)
{
	const char *dot = strchr(v, '.');
	char whole[16];
	size_t wl = dot ? (size_t)(dot - v) : strlen(v);
	uint64_t sec, frac = 0;
	if (wl == 0 || wl >= sizeof(whole))
		return -EINVAL;
	memcpy(whole, v, wl);
	whole[wl] = '\0';
	if (ctl_parse_uint(whole, max, &sec) < 0)
		return -EINVAL;
	if (dot) {
		size_t fl = strlen(dot + 1);
		if (fl == 0 || fl > 3 || ctl_parse_uint(dot + 1, 999, &frac) < 0)
			return -EINVAL;
		for (size_t i = fl; i < 3; i++)
			frac *= 10;
	}
	if ((sec == 0 && frac == 0) || (sec == max && frac))
		return -EINVAL;
	*ms = sec * 1000 + frac;
	return 0;
}

static int parse_timeout(const char *v, uint64_t *ms, struct err *e)
{
	if (parse_seconds(v, CTL_TIMEOUT_MAX_SEC, ms) == 0)
		return 0;
	return err_set(e, -EINVAL, "timeout=%.32s is not a number of seconds from 0.001 to %d "
		       "(at most three decimals: timeout=2.5)", v, CTL_TIMEOUT_MAX_SEC);
}

int ctl_parse_wait(const char *buf, size_t len, struct ctl_wait *w, struct err *e)
{
	static const char *const states[] = {"running", "paused", "standby", "stopped", "failed",
					     "any"};
	struct ctl_cmd cmd;
	int r = ctl_split(buf, len, &cmd, e);
	if (r < 0)
		return r;
	if (cmd.argc < 1 || cmd.argc > 2)
		return err_set(e, -EINVAL, "write a state to wait for, and seconds if not %d: "
			       "running|paused|standby|stopped|failed|any [SECONDS]",
			       CTL_WAIT_DEFAULT_SEC);
	w->state[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(states); i++)
		if (!strcmp(cmd.argv[0], states[i]))
			snprintf(w->state, sizeof(w->state), "%s", states[i]);
	if (!w->state[0])
		return err_set(e, -EINVAL, "'%.32s' is not a state to wait for "
			       "(running paused standby stopped failed any)", cmd.argv[0]);
	w->ms = CTL_WAIT_DEFAULT_SEC * 1000ull;
	if (cmd.argc == 2 && parse_seconds(cmd.argv[1], CTL_WAIT_MAX_SEC, &w->ms) < 0)
		return err_set(e, -EINVAL, "'%.32s' is not a number of seconds from 0.001 to %d "
			       "(at most three decimals)", cmd.argv[1], CTL_WAIT_MAX_SEC);
	return 0;
}

/* The value of the option word at *p (past its "key="), unquoted into out
 * (which has room: the value is never longer than the line). Ends at a
 * blank outside quotes, or at the end; *p is left there. */
static int unquote(const char **p, char *out, size_t *len, const char *key, struct err *e)
{
	const char *s = *p;
	size_t n = 0;
	while (*s && *s != ' ' && *s != '\t') {
		if (*s == '\'') {
			const char *close = strchr(s + 1, '\'');
			if (!close)
				return err_set(e, -EINVAL, "%s= has a quote (') that is not closed", key);
			memcpy(out + n, s + 1, (size_t)(close - s - 1));
			n += (size_t)(close - s - 1);
			s = close + 1;
		} else if (*s == '\\') {
			if (!s[1])
				return err_set(e, -EINVAL, "%s= ends with a backslash", key);
			out[n++] = s[1];
			s += 2;
		} else {
			out[n++] = *s++;
		}
	}
	out[n] = '\0';
	*len = n;
	*p = s;
	return 0;
}

/* One option, key=value, its value unquoted in v (n bytes). */
static int run_option(struct ctl_run_opts *o, const char *key, const char *v, size_t n,
		      struct err *e)
{
	if (!strcmp(key, "tty")) {
		if (o->tty)
			return err_set(e, -EINVAL, "tty= is given twice");
		struct ctl_winsize ws;
		int r = ctl_parse_winsize(v, &ws, e);
		if (r < 0)
			return r;
		o->tty = true;
		o->ws = ws;
	} else if (!strcmp(key, "cwd")) {
		if (o->cwd)
			return err_set(e, -EINVAL, "cwd= is given twice");
		if (v[0] != '/')
			return err_set(e, -EINVAL, "cwd=%.64s is not an absolute path (it starts with /)",
				       v);
		o->cwd = v;
	} else if (!strcmp(key, "user")) {
		if (o->user)
			return err_set(e, -EINVAL, "user= is given twice");
		if (!*v || !ctl_user_ok(v))
			return err_set(e, -EINVAL, "user=%.64s is not USER, UID, USER:GROUP or UID:GID "
				       "(each of [A-Za-z0-9_.-], 1 to 32 bytes)", v);
		o->user = v;
	} else if (!strcmp(key, "timeout")) {
		if (o->timeout_ms)
			return err_set(e, -EINVAL, "timeout= is given twice");
		return parse_timeout(v, &o->timeout_ms, e);
	} else { /* env */
		const char *eq = strchr(v, '=');
		if (!eq || !ctl_env_name_ok(v, (size_t)(eq - v)))
			return err_set(e, -EINVAL, "env=%.64s is not NAME=VALUE with a NAME of "
				       "[A-Za-z_][A-Za-z0-9_]*", v);
		if (o->nenv == CTL_ENV_MAX)
			return err_set(e, -E2BIG, "more than %d env= options", CTL_ENV_MAX);
		if (o->env_bytes + n + 1 > CTL_ENV_BYTES_MAX)
			return err_set(e, -E2BIG, "the env= options take more than %d bytes together",
				       CTL_ENV_BYTES_MAX);
		o->env[o->nenv++] = v;
		o->env_bytes += n + 1;
	}
	return 0;
}

/* The key of the word at w ("key=..."): its length, 0 when it has none of
 * [a-z_][a-z0-9_]* before an '='. */
static size_t lower_key(const char *w)
{
	size_t n = 0;
	while ((w[n] >= 'a' && w[n] <= 'z') || w[n] == '_' || (n && w[n] >= '0' && w[n] <= '9'))
		n++;
	return n && w[n] == '=' ? n : 0;
}

int ctl_run_options(const char *line, struct ctl_run_opts *o, size_t *cmd_at, struct err *e)
{
	static const char *keys[] = {"tty", "cwd", "env", "user", "timeout"};
	struct ctl_winsize ws = o->ws;
	size_t at = strspn(line, " \t"), used = 0;
	int r = 0, nopts = 0;
	memset(o, 0, offsetof(struct ctl_run_opts, buf));
	o->ws = ws;
	*cmd_at = 0;
	for (;;) {
		size_t kl = lower_key(line + at), k = 0;
		char key[8];
		while (kl && k < ARRAY_SIZE(keys) && (strlen(keys[k]) != kl ||
						      strncmp(line + at, keys[k], kl)))
			k++;
		if (!kl || k == ARRAY_SIZE(keys)) {
			if (kl && nopts)
				r = err_set(e, -EINVAL, "unknown option '%.*s=' (tty= cwd= env= user= "
					    "timeout=); a shell assignment after options is written "
					    "`export NAME=...;`", (int)(kl > 32 ? 32 : kl), line + at);
			break;
		}
		snprintf(key, sizeof(key), "%s", keys[k]);
		const char *p = line + at + kl + 1;
		size_t n = 0;
		char *v = o->buf + used;
		if ((r = unquote(&p, v, &n, key, e)) < 0 || (r = run_option(o, key, v, n, e)) < 0)
			break;
		used += n + 1;
		nopts++;
		at = (size_t)(p - line);
		at += strspn(line + at, " \t");
		*cmd_at = at;
	}
	if (r < 0) {
		memset(o, 0, offsetof(struct ctl_run_opts, buf));
		o->ws = ws;
		*cmd_at = 0;
	}
	return r;
}

/* "10.0.0.0/8", "10.1.2.3" (a /32): strict dotted quads, host bits zero. */
static int parse_cidr(const char *s, struct in_addr *addr, uint8_t *plen, struct err *e)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t len = 32;
	if (n == 0 || n >= sizeof(ip) ||
	    (slash && ctl_parse_uint(slash + 1, 32, &len) < 0) ||
	    (slash && strlen(slash + 1) > 2))
		return err_set(e, -EINVAL, "'%.64s' is not an IPv4 address or CIDR like 10.0.0.0/8",
			       s);
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, addr) != 1)
		return err_set(e, -EINVAL, "'%.64s' is not an IPv4 address or CIDR like 10.0.0.0/8",
			       s);
	uint32_t mask = len ? htonl(~0u << (32 - len)) : 0;
	if (addr->s_addr & ~mask) {
		struct in_addr net = { addr->s_addr & mask };
		char ns[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &net, ns, sizeof(ns));
		return err_set(e, -EINVAL, "%.64s has host bits set: the network is %s/%u", s, ns,
			       (unsigned)len);
	}
	*plen = (uint8_t)len;
	return 0;
}

/* tcp, udp (or icmp, when icmp): a rule's or an exposed port's protocol. */
static int parse_proto(const char *w, bool icmp, uint8_t *proto, struct err *e)
{
	if (!strcmp(w, "tcp"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(w, "udp"))
		*proto = IPPROTO_UDP;
	else if (icmp && !strcmp(w, "icmp"))
		*proto = IPPROTO_ICMP;
	else
		return err_set(e, -EINVAL, "protocol '%.32s' is not %s", w,
			       icmp ? "tcp, udp or icmp" : "tcp or udp");
	return 0;
}

static int parse_port(const char *w, uint16_t *port, struct err *e)
{
	uint64_t v;
	if (ctl_parse_uint(w, 65535, &v) < 0 || v == 0)
		return err_set(e, -EINVAL, "port '%.32s' is not a number from 1 to 65535", w);
	*port = (uint16_t)v;
	return 0;
}

int ctl_parse_rule(int argc, char **argv, struct net_rule *out, struct err *e)
{
	static const char usage[] = "usage: allow|deny CIDR|DOMAIN [tcp|udp [PORT] | icmp], "
				    "allow|deny sandbox NAME, allow|deny all";
	struct net_rule r;
	memset(&r, 0, sizeof(r));
	if (argc < 2 || (strcmp(argv[0], "allow") && strcmp(argv[0], "deny")))
		return err_set(e, -EINVAL, "%s", usage);
	r.allow = strcmp(argv[0], "allow") == 0;
	if (!strcmp(argv[1], "all")) {
		if (argc != 2)
			return err_set(e, -EINVAL, "'%s all' takes nothing after it", argv[0]);
		r.kind = NET_RULE_ALL;
	} else if (!strcmp(argv[1], "sandbox")) {
		if (argc != 3)
			return err_set(e, -EINVAL, "usage: %s sandbox NAME", argv[0]);
		if (ctl_check_name(argv[2], NULL) < 0)
			return err_set(e, -EINVAL, "'%.64s' is not a sandbox name", argv[2]);
		r.kind = NET_RULE_SANDBOX;
		snprintf(r.sbx, sizeof(r.sbx), "%s", argv[2]);
	} else {
		int ret = 0;
		if (!strcasecmp(argv[1], "all") || !strcasecmp(argv[1], "sandbox")) {
			/* A domain named as a keyword would read back as that keyword
			 * (its rule is written in lower case). */
			return err_set(e, -EINVAL, "'%.64s' is a keyword in another case: write "
				       "'%s all' or '%s sandbox NAME' in lower case", argv[1],
				       argv[0], argv[0]);
		} else if (net_dns_name_check(argv[1]) == 0) { /* a name never parses as a CIDR */
			r.kind = NET_RULE_DOMAIN;
			for (size_t i = 0; argv[1][i]; i++)
				r.domain[i] = (char)tolower((unsigned char)argv[1][i]);
		} else if (!isdigit((unsigned char)argv[1][0]) && !strchr(argv[1], '/')) {
			return err_set(e, -EINVAL, "'%.64s' is neither a CIDR nor a domain name (LDH "
				       "labels of 1 to 63 characters, 253 in all, or *.NAME)", argv[1]);
		} else {
			r.kind = NET_RULE_CIDR;
			ret = parse_cidr(argv[1], &r.addr, &r.plen, e);
		}
		if (ret < 0)
			return ret;
		if (argc > 4)
			return err_set(e, -EINVAL, "%s", usage);
		if (argc >= 3 && (ret = parse_proto(argv[2], true, &r.proto, e)) < 0)
			return ret;
		if (argc == 4) {
			if (r.proto == IPPROTO_ICMP)
				return err_set(e, -EINVAL, "icmp has no ports");
			if ((ret = parse_port(argv[3], &r.port, e)) < 0)
				return ret;
		}
	}
	*out = r;
	return 0;
}

int ctl_parse_expose(int argc, char **argv, struct net_expose *out, struct err *e)
{
	bool add = argc >= 1 && !strcmp(argv[0], "expose");
	if (argc < 1 || (!add && strcmp(argv[0], "unexpose")))
		return err_set(e, -EINVAL, "usage: expose [tcp|udp] PORT [HOSTPORT]");
	struct net_expose x = {.proto = IPPROTO_TCP};
	int at = 1, ret;
	/* A word that is not a number names the protocol (a port never does). */
	if (at < argc && !isdigit((unsigned char)argv[at][0]) &&
	    (ret = parse_proto(argv[at++], false, &x.proto, e)) < 0)
		return ret;
	if (at >= argc || argc - at > (add ? 2 : 1))
		return err_set(e, -EINVAL, add ? "usage: expose [tcp|udp] PORT [HOSTPORT]"
					       : "usage: unexpose [tcp|udp] PORT");
	if (strchr(argv[at], '/'))
		return err_set(e, -EINVAL, "'%.32s': the protocol is a word before the port, as "
			       "in '%s udp 53'", argv[at], argv[0]);
	if ((ret = parse_port(argv[at], &x.port, e)) < 0)
		return ret;
	if (add)
		x.host_port = x.port;
	if (add && at + 1 < argc && (ret = parse_port(argv[at + 1], &x.host_port, e)) < 0)
		return ret;
	*out = x;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A request's PATH: the rest of the line (s, n bytes), \xHH undone. */
static int files_path(const char *s, size_t n, char *out, struct err *e)
{
	size_t o = 0;
	if (n == 0 || s[0] != '/')
		return err_set(e, -EINVAL, "the path must be absolute (start with /), at the end "
			       "of the line");
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		int hi = n - i >= 4 && s[i + 1] == 'x' ? hex_digit(s[i + 2]) : -1;
		int lo = hi >= 0 ? hex_digit(s[i + 3]) : -1;
		if (lo < 0)
			return err_set(e, -EINVAL, "a backslash in a path starts \\xHH (two hex "
				       "digits; a backslash itself is \\x5c)");
		if (hi == 0 && lo == 0)
			return err_set(e, -EINVAL, "a path has no NUL byte (\\x00)");
		out[o++] = (char)(hi * 16 + lo);
		i += 3;
	}
	out[o] = '\0';
	return 0;
}

/* One key=value word of a request (w, n bytes): mode= or size=. */
static int files_option(struct ctl_files_req *q, const char *w, size_t n, bool *mode_set,
			bool *size_set, struct err *e)
{
	char v[32];
	const char *eq = memchr(w, '=', n);
	size_t kl = (size_t)(eq - w), vl = n - kl - 1;
	bool mode = kl == 4 && !strncmp(w, "mode", 4), size = kl == 4 && !strncmp(w, "size", 4);
	if (!mode && !size)
		return err_set(e, -EINVAL, "unknown option '%.*s=' (mode= size=); the path comes "
			       "last and starts with /", (int)(kl > 32 ? 32 : kl), w);
	if ((mode && *mode_set) || (size && *size_set))
		return err_set(e, -EINVAL, "%s= is given twice", mode ? "mode" : "size");
	if (vl == 0 || vl >= sizeof(v))
		return err_set(e, -EINVAL, "%s= needs a value", mode ? "mode" : "size");
	memcpy(v, eq + 1, vl);
	v[vl] = '\0';
	uint64_t u = 0;
	if (mode) {
		char *end;
		unsigned long m = strtoul(v, &end, 8);
		if (*end || !isdigit((unsigned char)v[0]) || m > 07777)
			return err_set(e, -EINVAL, "mode=%s is not an octal mode up to 07777", v);
		q->mode = (unsigned)m;
		*mode_set = true;
	} else if (ctl_parse_uint(v, CTL_FILES_SIZE_MAX, &u) < 0) {
		return err_set(e, -EINVAL, "size=%s is not a byte count up to %llu", v,
			       (unsigned long long)CTL_FILES_SIZE_MAX);
	} else {
		q->size = u;
		*size_set = true;
	}
	return 0;
}

int ctl_files_request(const char *buf, size_t len, struct ctl_files_req *q, size_t *line_len,
		      struct err *e)
{
	static const char *verbs[] = {"get", "put", "stat", "list", "mkdir"};
	const char *nl = memchr(buf, '\n', len < CTL_WRITE_MAX + 1 ? len : CTL_WRITE_MAX + 1);
	size_t n = nl ? (size_t)(nl - buf) : len;
	bool mode_set = false, size_set = false;
	memset(q, 0, offsetof(struct ctl_files_req, path));
	q->path[0] = '\0';
	if (n > CTL_WRITE_MAX)
		return err_set(e, -EINVAL, "the request line is longer than %d bytes", CTL_WRITE_MAX);
	if (memchr(buf, '\0', n))
		return err_set(e, -EINVAL, "the request line contains a NUL byte");
	*line_len = nl ? n + 1 : n;
	size_t at = 0, w;
	while (at < n && (buf[at] == ' ' || buf[at] == '\t'))
		at++;
	for (w = 0; at + w < n && buf[at + w] != ' ' && buf[at + w] != '\t';)
		w++;
	size_t k = 0;
	while (k < ARRAY_SIZE(verbs) && (strlen(verbs[k]) != w || strncmp(buf + at, verbs[k], w)))
		k++;
	if (k == ARRAY_SIZE(verbs))
		return err_set(e, -EINVAL, "unknown request '%.*s': get, put, stat, list or mkdir, "
			       "then the path", (int)(w > 32 ? 32 : w), buf + at);
	q->verb = (enum ctl_files_verb)k;
	for (;;) {
		at += w;
		while (at < n && (buf[at] == ' ' || buf[at] == '\t'))
			at++;
		if (at == n || buf[at] == '/')
			break;
		for (w = 0; at + w < n && buf[at + w] != ' ' && buf[at + w] != '\t';)
			w++;
		if (!memchr(buf + at, '=', w))
			return err_set(e, -EINVAL, "'%.*s' is neither key=value nor a path (absolute, "
				       "starting with /)", (int)(w > 32 ? 32 : w), buf + at);
		int r = files_option(q, buf + at, w, &mode_set, &size_set, e);
		if (r < 0)
			return r;
	}
	if (mode_set && q->verb != CTL_FILES_PUT && q->verb != CTL_FILES_MKDIR)
		return err_set(e, -EINVAL, "mode= is an option of put and mkdir");
	if (size_set != (q->verb == CTL_FILES_PUT))
		return err_set(e, -EINVAL, size_set ? "size= is an option of put" :
			       "put needs size=N: the number of bytes that follow");
	if (!mode_set)
		q->mode = q->verb == CTL_FILES_MKDIR ? 0755 : 0644;
	int r = files_path(buf + at, n - at, q->path, e);
	if (r < 0)
		memset(q, 0, sizeof(*q));
	return r;
}
