/* libFuzzer target: a sandbox's (or a guest's) /etc/passwd and /etc/group as
 * sbx-init and sbx-agent read them for user= and an image's User (id_find
 * and id_num of vmm/init/ids.c; the file is the sandbox's own bytes, read
 * bounded into a NUL-terminated buffer).
 *
 * The input's first byte picks the lookup (by name "nobody" or by the id in
 * the input's next bytes, and how many fields); the rest is the file.
 * Besides the sanitizers, it asserts:
 *   - a match's fields all lie inside the buffer, each NUL-terminated, no
 *     field holding ':' or '\n', and field 0 (by name) is the name asked
 *     for, field 2 (by id) reads as the id asked for;
 *   - a name is found whenever the file has a line that starts with
 *     "name:" (an independent scan), and never otherwise;
 *   - id_num takes 1 to 10 digits below 2^32 - 1 and nothing else.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm/init/ids.h"

#define MUST(cond)                                                                       \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_ids: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                     \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* Whether some line of s[0, n) starts with "name:" (lines end at '\n' or
 * at the first NUL, as the reader's string does). */
static int has_line(const char *s, size_t n, const char *name)
{
	size_t nl = strlen(name), end = strnlen(s, n);
	for (size_t i = 0; i < end; i++)
		if ((i == 0 || s[i - 1] == '\n') && end - i > nl && memcmp(s + i, name, nl) == 0 &&
		    s[i + nl] == ':') {
			/* a line with a field 2: two more ':' before its end */
			size_t e = i;
			int colons = 0;
			while (e < end && s[e] != '\n')
				colons += s[e++] == ':';
			if (colons >= 2)
				return 1;
		}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	size_t n = size - 1;
	char *buf = malloc(n + 1), *copy = malloc(n + 1);
	MUST(buf && copy);
	memcpy(buf, data + 1, n);
	buf[n] = '\0';
	memcpy(copy, buf, n + 1);
	char *f[7];
	int nf = 3 + mode % 5; /* 3..7 */
	long want = 0;
	char num[16];
	snprintf(num, sizeof(num), "%.*s", (int)(n < 10 ? n : 10), buf);
	int by_id = mode & 0x80 ? id_num(num, &want) : 0;
	int r = by_id ? id_find(buf, NULL, want, f, nf) : id_find(buf, "nobody", 0, f, nf);
	MUST(r == 0 || r == -1);
	if (!by_id)
		MUST((r == 0) == has_line(copy, n, "nobody"));
	if (r == 0) {
		for (int k = 0; k < nf; k++) {
			if (!f[k])
				continue;
			MUST(f[k] >= buf && f[k] <= buf + n);
			size_t l = strlen(f[k]);
			MUST(f[k] + l <= buf + n);
			MUST(!memchr(f[k], ':', l) && !memchr(f[k], '\n', l));
		}
		long v;
		if (by_id)
			MUST(id_num(f[2], &v) && v == want);
		else
			MUST(strcmp(f[0], "nobody") == 0 && f[2]);
	}
	/* id_num against an independent reading. */
	long v;
	size_t dl = strspn(num, "0123456789");
	int ok = id_num(num, &v);
	MUST(ok == (dl == strlen(num) && dl >= 1 && dl <= 10 && strtoll(num, NULL, 10) < 4294967295LL));
	if (ok)
		MUST(v == strtoll(num, NULL, 10));
	free(buf);
	free(copy);
	return 0;
}
