/* libFuzzer target: what engine/pull.c parses. The first byte picks the
 * reader (even: a registry reference as `import NAME docker://REF` gives it,
 * odd: the last stderr line of skopeo, which carries what a registry
 * answered); the rest is the text (cut at the first NUL). Besides the
 * sanitizers, it asserts:
 *   - every answer is 0 or -EINVAL with a non-empty sentence, and a refused
 *     reference fills nothing;
 *   - what pull_parse_ref accepts is put back together from its parts
 *     exactly (HOST/REPO, then :TAG or @DIGEST), each within its bound, the
 *     host free of '/' and '@', the repository of [a-z0-9._/-] only, the
 *     tag and the digest never both;
 *   - pull_reason never makes a line longer, and keeps it NUL-terminated.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/pull.h"

#define MUST(cond)                                                                        \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "fuzz_pull: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                      \
			abort();                                                          \
		}                                                                         \
	} while (0)

static void ref_case(const char *s)
{
	struct pull_ref ref;
	struct err e = {0};
	int r = pull_parse_ref(s, &ref, &e);
	MUST(r == 0 || r == -EINVAL);
	if (r < 0) {
		MUST(e.code == r && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
		MUST(!ref.host[0] && !ref.repo[0] && !ref.tag[0] && !ref.digest[0]);
		return;
	}
	MUST(ref.host[0] && ref.repo[0] && !(ref.tag[0] && ref.digest[0]));
	MUST(strlen(ref.host) <= PULL_HOST_MAX && strlen(ref.repo) <= PULL_REPO_MAX);
	MUST(!strpbrk(ref.host, "/@") && strspn(ref.repo, "abcdefghijklmnopqrstuvwxyz0123456789._/-") ==
						 strlen(ref.repo));
	char back[PULL_REF_MAX * 2];
	snprintf(back, sizeof(back), "%s/%s%s%s%s%s", ref.host, ref.repo, ref.tag[0] ? ":" : "",
		 ref.tag, ref.digest[0] ? "@" : "", ref.digest);
	MUST(strcmp(back, s) == 0);
}

static void reason_case(const char *s, size_t n)
{
	char line[256];
	size_t k = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
	memcpy(line, s, k);
	line[k] = '\0';
	pull_reason(line, sizeof(line));
	MUST(memchr(line, '\0', sizeof(line)) && strlen(line) <= k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = strnlen((const char *)data + 1, size - 1);
	char *s = malloc(n + 1);
	MUST(s);
	memcpy(s, data + 1, n);
	s[n] = '\0';
	if (data[0] & 1)
		reason_case(s, n);
	else
		ref_case(s);
	free(s);
	return 0;
}
