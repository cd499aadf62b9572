/* libFuzzer target: what a guest agent answers to files requests, as the
 * qemu backend reads it (vmm/qemu_files.c): AG_FRES's payload
 * (qfiles_result) and the records of a stat or a list (qfiles_answer).
 *
 * The first byte picks the parser (0: a result, 1: stat records, 2: list
 * records); the rest is the guest's bytes. Besides the sanitizers, it
 * asserts:
 *   - a result is 0 with a size, or a -errno within 1..4095 and a sentence
 *     of printable characters (the guest's words never reach it raw);
 *   - an answer that is taken has only printable characters and newlines
 *     (names and targets escaped); a list has one line per record (one per
 *     NUL of the input), a stat starts "type " and ends with a newline;
 *     one that is refused is -EPROTO with a sentence, and adds nothing.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/common.h"
#include "../../vmm/qemu.h"

#define MUST(cond)                                                                         \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_agent_files: contract broken: %s (%s:%d)\n",  \
				#cond, __FILE__, __LINE__);                                \
			abort();                                                           \
		}                                                                          \
	} while (0)

static bool printable(const char *s, size_t n, bool newlines)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && !(newlines && c == '\n')) || c == 0x7f)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = size - 1;
	char *p = malloc(n + 1); /* exact size and its NUL, as qagent_take_frame leaves it */
	MUST(p != NULL);
	memcpy(p, data + 1, n);
	p[n] = '\0';
	struct err e = {0};
	if (data[0] % 3 == 0) {
		uint64_t sz = 0;
		int r = qfiles_result(p, n, "/some/path", &sz, &e);
		MUST(r == 0 || (r < 0 && r >= -4095));
		if (r < 0)
			MUST(e.code == r && e.msg[0] && printable(e.msg, strlen(e.msg), false));
	} else {
		bool list = data[0] % 3 == 2;
		struct buf out = {0};
		int r = qfiles_answer(list, p, n, "/some/path", &out, &e);
		if (r == 0) {
			MUST(printable(out.data ? out.data : "", out.len, true));
			size_t lines = 0, records = 0;
			for (size_t i = 0; i < out.len; i++)
				lines += out.data[i] == '\n';
			for (size_t i = 0; i < n; i++)
				records += p[i] == '\0';
			if (list)
				MUST(lines == records);
			else
				MUST(out.len > 5 && !memcmp(out.data, "type ", 5) &&
				     out.data[out.len - 1] == '\n');
		} else {
			MUST(r == -EPROTO || r == -ENOMEM);
			MUST(e.msg[0] && printable(e.msg, strlen(e.msg), false));
		}
		buf_free(&out);
	}
	free(p);
	return 0;
}
