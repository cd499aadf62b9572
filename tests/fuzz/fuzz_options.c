/* libFuzzer target: names and key=value options, sizes, cpus, signals,
 * terminal sizes (tty=COLSxROWS, resize).
 *
 * Rates (rate=, net_parse_rate of net/shape.c) are parsed the same way.
 * The input is cut at '\n' into words (a NUL byte inside a word ends it, as in
 * a C string); the words go to ctl_parse_options as one option list, and each
 * word alone to every value parser of engine/ctl.h. The properties checked
 * beyond the sanitizers: a parser either fails with a negative errno and
 * leaves its output alone, or succeeds with a value that agrees with an
 * independent reading of the text (digits and suffix for sizes, whole and
 * thousandths for cpus, the value for uints), within the documented range.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../engine/ctl.h"
#include "../../net/net.h"

#define MUST(cond)                                                                         \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_options: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                       \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define SENTINEL64 0x5a5a5a5a5a5a5a5aull

/* The reference reading of a size: digits, then an optional unit. Returns 0
 * and the value, -1 when the text is not a size, -2 when it overflows. The
 * digits are at most 31 (ctl_parse_size's documented buffer: 32 digits or
 * more are refused even when they are leading zeros). */
static int ref_size(const char *s, uint64_t *out)
{
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n >= 32)
		return -1;
	unsigned __int128 v = 0;
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > UINT64_MAX)
			return -2;
	}
	static const struct { const char *suf[3]; unsigned shift; } units[] = {
		{{"", "b", "b"}, 0}, {{"k", "kb", "kib"}, 10}, {{"m", "mb", "mib"}, 20},
		{{"g", "gb", "gib"}, 30}, {{"t", "tb", "tib"}, 40},
	};
	const char *suf = s + n;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		for (int k = 0; k < 3; k++)
			if (!strcasecmp(suf, units[u].suf[k])) {
				v <<= units[u].shift;
				if (v > UINT64_MAX)
					return -2;
				*out = (uint64_t)v;
				return 0;
			}
	return -1;
}

static void check_size(const char *s)
{
	uint64_t got = SENTINEL64, want = 0;
	int r = ctl_parse_size(s, &got);
	int rr = ref_size(s, &want);
	MUST(r == 0 || r == -EINVAL || r == -ERANGE);
	if (r == 0) {
		MUST(rr == 0);
		MUST(got == want);
	} else {
		MUST(got == SENTINEL64);
		MUST(rr != 0);
	}
}

static void check_uint(const char *s)
{
	static const uint64_t maxes[] = {0, 1, 64, 1024, 4194304, 31536000, UINT64_MAX};
	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		uint64_t got = SENTINEL64;
		int r = ctl_parse_uint(s, maxes[i], &got);
		MUST(r == 0 || r == -EINVAL || r == -ERANGE);
		if (r == 0) {
			MUST(got <= maxes[i]);
			MUST(*s && strspn(s, "0123456789") == strlen(s));
			char back[32];
			snprintf(back, sizeof(back), "%llu", (unsigned long long)got);
			/* Same number, allowing leading zeros in the input. */
			const char *p = s;
			while (p[0] == '0' && p[1])
				p++;
			MUST(!strcmp(back, p));
		} else {
			MUST(got == SENTINEL64);
		}
	}
}

static void check_cpus(const char *s)
{
	uint32_t m = 0x5a5a5a5a;
	int r = ctl_parse_cpus(s, &m);
	MUST(r == 0 || r == -EINVAL || r == -ERANGE);
	if (r == 0) {
		MUST(m >= 1 && m <= 1024 * 1000);
		/* Reference: whole part and up to three decimals. */
		const char *dot = strchr(s, '.');
		size_t wl = dot ? (size_t)(dot - s) : strlen(s);
		MUST(wl >= 1 && strspn(s, "0123456789") == wl);
		uint64_t whole = 0;
		for (size_t i = 0; i < wl; i++)
			whole = whole * 10 + (uint64_t)(s[i] - '0');
		uint64_t frac = 0;
		if (dot) {
			size_t fl = strlen(dot + 1);
			MUST(fl >= 1 && fl <= 3 && strspn(dot + 1, "0123456789") == fl);
			for (size_t i = 0; i < 3; i++)
				frac = frac * 10 + (i < fl ? (uint64_t)(dot[1 + i] - '0') : 0);
		}
		MUST(whole * 1000 + frac == m);
	} else {
		MUST(m == 0x5a5a5a5a);
	}
}

static void check_signal(const char *s)
{
	int sig = -12345;
	int r = ctl_parse_signal(s, &sig);
	MUST(r == 0 || r == -EINVAL);
	if (r == 0)
		MUST(sig >= 1 && sig <= 64);
	else
		MUST(sig == -12345);
}

/* rate=: net_parse_rate (net/shape.c), tc-style units. */
static void check_rate(const char *s)
{
	uint64_t bps = SENTINEL64;
	int r = net_parse_rate(s, &bps);
	MUST(r == 0 || r == -EINVAL);
	if (r == 0) {
		MUST(bps >= 8);
		MUST(*s >= '0' && *s <= '9');
	} else {
		MUST(bps == SENTINEL64);
	}
}

static void check_name(const char *s)
{
	struct err e = {0};
	int r = ctl_check_name(s, &e);
	MUST(r == 0 || r == -EINVAL || r == -EEXIST);
	if (r < 0)
		MUST(e.code == r && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
	else
		MUST(strlen(s) >= 1 && strlen(s) <= SBX_NAME_MAX && s[0] != '.');
}

/* tty=, resize: COLSxROWS, each 1..CTL_TTY_MAX; the reference: two runs of
 * digits around one 'x', nothing else. */
static void check_winsize(const char *s)
{
	struct ctl_winsize ws = {0x5a5a, 0x5a5a};
	struct err e = {0};
	int r = ctl_parse_winsize(s, &ws, &e);
	MUST(r == 0 || r == -EINVAL);
	size_t c = strspn(s, "0123456789");
	bool shape = c > 0 && s[c] == 'x' && strspn(s + c + 1, "0123456789") == strlen(s + c + 1) &&
		     s[c + 1];
	if (r == 0) {
		MUST(shape);
		MUST(ws.cols >= 1 && ws.cols <= CTL_TTY_MAX && ws.rows >= 1 && ws.rows <= CTL_TTY_MAX);
		MUST(strtoull(s, NULL, 10) == ws.cols && strtoull(s + c + 1, NULL, 10) == ws.rows);
	} else {
		MUST(ws.cols == 0x5a5a && ws.rows == 0x5a5a);
		MUST(e.code == r && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
		if (shape && c < 8 && strlen(s + c + 1) < 8)
			MUST(strtoull(s, NULL, 10) == 0 || strtoull(s, NULL, 10) > CTL_TTY_MAX ||
			     strtoull(s + c + 1, NULL, 10) == 0 ||
			     strtoull(s + c + 1, NULL, 10) > CTL_TTY_MAX);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *argv[64];
	int argc = 0;
	for (char *p = copy, *nl; argc < 64; p = nl + 1) {
		nl = strchr(p, '\n');
		argv[argc++] = p;
		if (!nl)
			break;
		*nl = '\0';
	}
	for (int i = 0; i < argc; i++) {
		check_size(argv[i]);
		check_uint(argv[i]);
		check_cpus(argv[i]);
		check_signal(argv[i]);
		check_name(argv[i]);
		check_rate(argv[i]);
		check_winsize(argv[i]);
		/* The value part of key=value, as each option handler sees it. */
		char *eq = strchr(argv[i], '=');
		if (eq) {
			check_size(eq + 1);
			check_cpus(eq + 1);
			check_name(eq + 1);
			check_rate(eq + 1);
			check_winsize(eq + 1);
		}
	}
	struct sbx_config c;
	struct err e = {0};
	ctl_config_defaults(&c, "ns", false);
	int r = ctl_parse_options(argc, argv, &c, &e);
	MUST(r == 0 || r == -EINVAL);
	if (r < 0) {
		MUST(e.code == r && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
	} else {
		MUST(c.memory_bytes >= (8ull << 20) && c.joblog_bytes >= 4096);
		MUST(c.cpu_millis >= 1 && c.cpu_millis <= 1024000);
		MUST(c.pids >= 8 && c.pids <= 4194304 && c.timeout_sec <= 31536000);
		MUST(!strcmp(c.backend, "ns") || !strcmp(c.backend, "qemu"));
		MUST(ctl_check_name(c.image, NULL) == 0);
		MUST(c.rate_bps == 0 || c.rate_bps >= 8);
	}
	free(copy);
	return 0;
}
