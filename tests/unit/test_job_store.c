/* Unit tests of what engine/jobs.c stores and counts of a job: ids after a
 * restart (every job on disk whatever the gaps; new ids past the highest ever
 * given), the read rule past dropped output (a reader is moved to the first
 * byte kept, never back), a drop that a dying daemon journaled but maybe did
 * not make, and a job's pipe found again by its inode and drained by the pump
 * within joblog=. Jobs come from job.json files, as after a daemon restart;
 * the "init" whose fd table holds the pipe is this process. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../engine/context.h"
#include "../../engine/jobs.h"
#include "../../engine/lifecycle.h"
#include "../../engine/output.h"
#include "../../engine/sandbox.h"
#include "unit.h"

/* The engine under test (engine_new; started piece by piece below). */
static struct engine *eng;

static struct sbx *s;

static void put(const char *rel, const char *text, size_t len)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", s->vm.dir, rel);
	CHECK(write_file_atomic(path, text, len, false) == 0);
}

/* jobs/N with a job.json (extra: more members) and stdout. */
static void put_job(uint32_t n, const char *extra, const char *out, size_t out_len)
{
	char rel[PATH_MAX + 64], json[512];
	snprintf(rel, sizeof(rel), "%s/jobs/%u", s->vm.dir, n);
	CHECK(mkdir_p(rel, 0700) == 0);
	snprintf(json, sizeof(json), "{\"n\": %u, \"cmd\": \"x\", \"pid\": 1, \"status\": \"running\", "
		 "\"exit_code\": -1, \"reason\": \"-\"%s}", n, extra);
	snprintf(rel, sizeof(rel), "jobs/%u/job.json", n);
	put(rel, json, strlen(json));
	snprintf(rel, sizeof(rel), "jobs/%u/stdout", n);
	put(rel, out, out_len);
	snprintf(rel, sizeof(rel), "jobs/%u/stderr", n);
	put(rel, "", 0);
}

static char big[8192];

/* Every job on disk comes back, whatever the gaps; new ids go past the last
 * one ever given (jobs/last), and past any on disk. */
static void test_load(void)
{
	put_job(1, "", "one\n", 4);
	put_job(69, "", "sixty-nine\n", 11);
	put_job(5000, "", "", 0);
	put_job(70, ", \"dropped_stdout\": 100", "abcdef", 6);
	/* Drops journaled by a daemon that died: 71 made it, 72 did not. */
	memset(big, 'x', sizeof(big));
	put_job(71, ", \"dropped_stdout\": 1000, \"cutting_stdout\": 4096, \"cut_from_stdout\": 8192",
		big, 4096);
	put_job(72, ", \"dropped_stdout\": 1000, \"cutting_stdout\": 4096, \"cut_from_stdout\": 8192",
		big, 8192);
	put("jobs/last", "7000\n", 5);
	char d[PATH_MAX + 64];
	snprintf(d, sizeof(d), "%s/jobs/40000", s->vm.dir); /* past the highest id */
	mkdir_p(d, 0700);
	snprintf(d, sizeof(d), "%s/jobs/notes", s->vm.dir);
	mkdir_p(d, 0700);
	pthread_mutex_lock(&s->lock);
	sbx_jobs_load(s);
	uint32_t next = s->next_job;
	pthread_mutex_unlock(&s->lock);
	CHECK(sbx_job_exists(s, 1) && sbx_job_exists(s, 69) && sbx_job_exists(s, 5000));
	CHECK(sbx_job_exists(s, 70) && sbx_job_exists(s, 71) && sbx_job_exists(s, 72));
	CHECK(!sbx_job_exists(s, 40000) && !sbx_job_exists(s, 2));
	CHECK(next == 7000);
	uint32_t *ns = NULL;
	size_t cnt = 0;
	CHECK(sbx_job_list(s, &ns, &cnt) == 0 && cnt == 6);
	free(ns);
}

/* A reader below the first byte kept starts there, and its later offsets are
 * moved on by as much: no byte twice, none invented. */
static void test_read_skew(void)
{
	char b[16] = {0};
	uint64_t skew = 0;
	CHECK(sbx_job_read_try(s, 70, 0, b, 3, 0, &skew, NULL) == 3 && !memcmp(b, "abc", 3));
	CHECK(skew == 100);
	CHECK(sbx_job_read_try(s, 70, 0, b, 3, 3, &skew, NULL) == 3 && !memcmp(b, "def", 3));
	CHECK(sbx_job_read_try(s, 70, 0, b, 3, 6, &skew, NULL) == -EAGAIN);
	CHECK(skew == 100);
	/* Offsets past the drop are the stream's own: no skew needed. */
	uint64_t none = 0;
	CHECK(sbx_job_read_try(s, 70, 0, b, 8, 102, &none, NULL) == 4 && !memcmp(b, "cdef", 4));
	CHECK(none == 0);
	/* Without a cursor: one read from the first byte kept. */
	CHECK(sbx_job_read_try(s, 70, 0, b, 8, 50, NULL, NULL) == 6 && !memcmp(b, "abcdef", 6));
	/* The stream's end is at 106, whatever the reader. */
	CHECK(sbx_job_read_try(s, 70, 0, b, 8, 105, NULL, NULL) == 1 && b[0] == 'f');
	CHECK(sbx_job_read_try(s, 70, 0, b, 8, 106, NULL, NULL) == -EAGAIN);
}

/* The file's size tells whether a journaled drop was made. */
static void test_drop_settled(void)
{
	char b[16];
	/* 71: made; its file starts at 1000 + 4096. */
	CHECK(sbx_job_read_try(s, 71, 0, b, 4, 5096, NULL, NULL) == 4);
	CHECK(sbx_job_read_try(s, 71, 0, b, 4, 5096 + 4096, NULL, NULL) == -EAGAIN);
	/* 72: not made; its file starts at 1000. */
	CHECK(sbx_job_read_try(s, 72, 0, b, 4, 1000 + 8188, NULL, NULL) == 4);
	CHECK(sbx_job_read_try(s, 72, 0, b, 4, 1000 + 8192, NULL, NULL) == -EAGAIN);
}

static bool json_has(uint32_t n, const char *text)
{
	char path[PATH_MAX + 64], buf[1024];
	snprintf(path, sizeof(path), "%s/jobs/%u/job.json", s->vm.dir, n);
	return read_file_str(path, buf, sizeof(buf)) > 0 && strstr(buf, text);
}

/* A job's pipe, kept open by "init" (us), is found again by its inode and
 * drained within joblog=; at its end it is forgotten. */
static void test_pipe_drained(void)
{
	int p[2];
	struct stat st;
	char extra[128];
	CHECK(pipe(p) == 0 && fstat(p[0], &st) == 0);
	snprintf(extra, sizeof(extra), ", \"pipe_stdout\": %llu", (unsigned long long)st.st_ino);
	put_job(80, extra, "", 0);
	pthread_mutex_lock(&s->lock);
	s->cfg.joblog_bytes = 8192;
	s->vm.pid = getpid();
	sbx_jobs_load(s);
	sbx_jobs_reattach(s);
	pthread_mutex_unlock(&s->lock);
	/* 100000 bytes: i % 251 at logical offset i. */
	static unsigned char out[100000];
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (unsigned char)(i % 251);
	size_t off = 0;
	while (off < sizeof(out)) {
		ssize_t w = write(p[1], out + off, sizeof(out) - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	CHECK(off == sizeof(out));
	close(p[1]);
	close(p[0]); /* the pump's own read end stays: it sees the end */
	for (int i = 0; i < 200 && !json_has(80, "\"pipe_stdout\": 0"); i++)
		usleep(50000);
	CHECK(json_has(80, "\"pipe_stdout\": 0"));
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/jobs/80/stdout", s->vm.dir);
	CHECK(stat(path, &st) == 0 && st.st_size > 0 && st.st_size <= 8192 + (64 << 10));
	/* Every byte counted: the last ones are where they were written. */
	unsigned char b[10];
	CHECK(sbx_job_read_try(s, 80, 0, (char *)b, 10, sizeof(out) - 10, NULL, NULL) == 10);
	CHECK(!memcmp(b, out + sizeof(out) - 10, 10));
	CHECK(sbx_job_read_try(s, 80, 0, (char *)b, 10, sizeof(out), NULL, NULL) == -EAGAIN);
	snprintf(path, sizeof(path), "%s/jobs/80/stderr", s->vm.dir);
	char note[512] = "";
	CHECK(read_file_str(path, note, sizeof(note)) > 0 && strstr(note, "older stdout dropped"));
}

int main(void)
{
	char tmp[] = "/tmp/sbx-unit-jobstore.XXXXXX";
	CHECK(mkdtemp(tmp) != NULL);
	eng = engine_new();
	CHECK(eng != NULL);
	snprintf(eng->sandboxes_dir, sizeof(eng->sandboxes_dir), "%s", tmp);
	eng->reg = reg_new();
	engine_thread_online();
	struct sbx_config c;
	ctl_config_defaults(&c, "ns", false);
	s = sbx_alloc(eng, "t1", &c);
	CHECK(s && reg_add(eng->reg, &s->node) == 0);
	if (!s)
		UNIT_DONE("job_store");
	mkdir_p(s->vm.dir, 0700);

	RUN(test_load);
	RUN(test_read_skew);
	RUN(test_drop_settled);
	RUN(test_pipe_drained);

	out_pump_stop();
	reg_del(eng->reg, &s->node);
	sbx_put(s);
	urcu_memb_barrier();
	reg_thread_offline();
	reg_free(eng->reg);
	rm_rf(tmp);
	UNIT_DONE("job_store");
}
