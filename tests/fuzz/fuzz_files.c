/* libFuzzer target: the first write to /sbx/NAME/files, the request line
 * (ctl_files_request of engine/ctl.c). Besides the sanitizers, it asserts
 * the parser's contract:
 *   - an error is a negative errno with a non-empty sentence, and leaves
 *     no path;
 *   - an accepted request has a known verb, an absolute path without NUL
 *     that came from the line (\xHH undone), a mode up to 07777, a size
 *     only for put and within CTL_FILES_SIZE_MAX, and a line length within
 *     the write that ends at its first newline (or the write's end);
 *   - the path escaped as list writes names (str_escape_name) reads back
 *     the same in a new request.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/ctl.h"

#define MUST(cond)                                                                       \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_files: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                     \
			abort();                                                         \
		}                                                                        \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctl_files_req q, q2;
	static char esc[4 * CTL_WRITE_MAX + 1], line[4 * CTL_WRITE_MAX + 64];
	struct err e = {0};
	size_t at = (size_t)-1;
	int r = ctl_files_request((const char *)data, size, &q, &at, &e);
	MUST(r <= 0);
	if (r < 0) {
		MUST(e.code == r && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
		MUST(q.path[0] == '\0');
		return 0;
	}
	MUST(q.verb <= CTL_FILES_MKDIR);
	MUST(at <= size && at <= CTL_WRITE_MAX + 1);
	const char *nl = memchr(data, '\n', size);
	MUST(nl ? at == (size_t)((const uint8_t *)nl - data) + 1 : at == size);
	MUST(q.path[0] == '/' && strlen(q.path) < at + 1);
	MUST(q.mode <= 07777);
	MUST(q.verb == CTL_FILES_PUT || q.size == 0);
	MUST(q.size <= CTL_FILES_SIZE_MAX);
	str_escape_name(esc, sizeof(esc), q.path);
	static const char *verbs[] = {"get", "put", "stat", "list", "mkdir"};
	int n;
	if (q.verb == CTL_FILES_PUT)
		n = snprintf(line, sizeof(line), "put size=%llu mode=%o %s\n",
			     (unsigned long long)q.size, q.mode, esc);
	else if (q.verb == CTL_FILES_MKDIR)
		n = snprintf(line, sizeof(line), "mkdir mode=%o %s\n", q.mode, esc);
	else
		n = snprintf(line, sizeof(line), "%s %s\n", verbs[q.verb], esc);
	if (n > CTL_WRITE_MAX)
		return 0; /* escaped, the line may outgrow a request */
	r = ctl_files_request(line, (size_t)n, &q2, &at, &e);
	MUST(r == 0 && at == (size_t)n && q2.verb == q.verb && !strcmp(q2.path, q.path));
	MUST(q2.size == q.size && q2.mode == q.mode);
	return 0;
}
