/* libFuzzer target: a job's record (STATE/sandboxes/NAME/jobs/N/job.json)
 * as a restarted daemon reads it back (sbx_jobs_load).
 *
 * The input is the whole file; journal_job_parse (engine/journal_json.c)
 * reads it with no file system. Besides the sanitizers, it asserts:
 *   - the answer is 0, or -EINVAL with a non-empty sentence;
 *   - a record that loads holds one command line (no NUL, no newline), a pid
 *     Linux can have, a known state, an exit code, a one-word reason, and
 *     counts and offsets that are not negative (INT64_MAX at most), and a
 *     terminal's number (tty) that devpts can give, or -1 for none, and a
 *     timeout='s deadline (wall time) that is not negative;
 *   - round trip: the record written back as jobs.c writes it reads back the
 *     same. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/journal.h"

#define MUST(cond)                                                                           \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "fuzz_job: contract broken: %s (%s:%d)\n", #cond,      \
				__FILE__, __LINE__);                                         \
			abort();                                                             \
		}                                                                            \
	} while (0)

static const char *const states[] = {"running", "exited", "killed"};

static char *write_back(const struct journal_job *r)
{
	json_t *j = json_pack("{s:s, s:i, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "cmd", r->cmd, "pid", r->pid, "status", states[r->state], "exit_code",
			      r->exit_code, "reason", r->reason, "dropped_stdout",
			      (json_int_t)r->dropped[0], "dropped_stderr", (json_int_t)r->dropped[1],
			      "exec_id", (json_int_t)r->exec_id, "pipe_stdout",
			      (json_int_t)r->pipe_ino[0], "pipe_stderr", (json_int_t)r->pipe_ino[1],
			      "cutting_stdout", (json_int_t)r->cutting[0], "cutting_stderr",
			      (json_int_t)r->cutting[1], "cut_from_stdout", (json_int_t)r->cut_from[0],
			      "cut_from_stderr", (json_int_t)r->cut_from[1]);
	MUST(j != NULL);
	if (r->tty >= 0) /* only a terminal's job has one, as jobs.c writes it */
		MUST(json_object_set_new(j, "tty", json_integer(r->tty)) == 0);
	if (r->deadline_unix_usec) /* only a job with timeout= */
		MUST(json_object_set_new(j, "deadline_unix_usec",
					 json_integer((json_int_t)r->deadline_unix_usec)) == 0);
	char *text = json_dumps(j, 0);
	json_decref(j);
	MUST(text != NULL);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (64 << 10))
		return 0; /* sbx_jobs_load refuses such a file before parsing */
	struct journal_job r;
	struct err e = {0};
	int ret = journal_job_parse((const char *)data, size, &r, &e);
	MUST(ret == 0 || ret == -EINVAL);
	if (ret < 0) {
		MUST(e.code == ret && e.msg[0] && memchr(e.msg, '\0', sizeof(e.msg)));
		return 0;
	}
	MUST(strlen(r.cmd) < sizeof(r.cmd) && !strchr(r.cmd, '\n'));
	MUST(r.pid >= 0 && r.pid <= 4194304);
	MUST(r.state >= JOURNAL_JOB_RUNNING && r.state <= JOURNAL_JOB_KILLED);
	MUST(r.exit_code >= -1 && r.exit_code <= 255);
	MUST(r.reason[0] && strlen(r.reason) < sizeof(r.reason));
	for (int k = 0; k < 2; k++)
		MUST(r.dropped[k] <= INT64_MAX && r.pipe_ino[k] <= INT64_MAX &&
		     r.cutting[k] <= INT64_MAX && r.cut_from[k] <= INT64_MAX);
	MUST(r.exec_id <= INT64_MAX);
	MUST(r.tty >= -1 && r.tty <= (1 << 20));
	MUST(r.deadline_unix_usec <= INT64_MAX);
	char *text = write_back(&r);
	struct journal_job b;
	struct err be = {0};
	MUST(journal_job_parse(text, strlen(text), &b, &be) == 0);
	MUST(memcmp(&r, &b, sizeof(r)) == 0 || (!strcmp(r.cmd, b.cmd) && r.pid == b.pid &&
		r.state == b.state && r.exit_code == b.exit_code && !strcmp(r.reason, b.reason) &&
		r.exec_id == b.exec_id && r.tty == b.tty &&
		r.deadline_unix_usec == b.deadline_unix_usec && !memcmp(r.dropped, b.dropped, sizeof(r.dropped)) &&
		!memcmp(r.cutting, b.cutting, sizeof(r.cutting))));
	free(text);
	return 0;
}
