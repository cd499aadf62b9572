/* Unit tests of jobs' output watches (engine/jobs.c): sbx_job_poll at logical
 * offsets, one-shot inotify wake-ups through the job watch hook, a blocked read
 * woken by output, and no watch left once the job ended. Jobs come from job.json files,
 * as after a daemon restart; nothing runs. And a command's start report that
 * says a warm shell took it: counted where the guest keeps that shell (qemu),
 * not where the daemon hands commands to it (ns). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "../../engine/context.h"
#include "../../engine/exec.h"
#include "../../engine/jobs.h"
#include "../../engine/lifecycle.h"
#include "../../engine/sandbox.h"
#include "unit.h"

/* The engine under test (engine_new; started piece by piece below). */
static struct engine *eng;

#define TAG 7

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int seen[4]; /* hook calls per job number */

static void job_hook(uint64_t id, uint32_t n)
{
	(void)id;
	pthread_mutex_lock(&seen_lock);
	if (n < ARRAY_SIZE(seen))
		seen[n]++;
	pthread_mutex_unlock(&seen_lock);
}

static int seen_of(uint32_t n)
{
	pthread_mutex_lock(&seen_lock);
	int v = seen[n];
	pthread_mutex_unlock(&seen_lock);
	return v;
}

static int epfd;

/* What the monitor does: wait (bounded) for the inotify fd, then drain it. */
static bool pump(int ms)
{
	struct epoll_event ev;
	if (epoll_wait(epfd, &ev, 1, ms) != 1 || ev.data.u64 != TAG)
		return false;
	sbx_jobs_watch_drain(eng);
	return true;
}

static void put_file(const char *path, const char *text)
{
	CHECK(write_file_atomic(path, text, strlen(text), false) == 0);
}

static void add_job(struct sbx *s, uint32_t n, uint64_t dropped_stdout)
{
	char path[PATH_MAX + 64], json[256];
	snprintf(path, sizeof(path), "%s/jobs/%u", s->vm.dir, n);
	mkdir_p(path, 0700);
	snprintf(json, sizeof(json), "{\"n\": %u, \"cmd\": \"x\", \"pid\": 1, \"status\": \"running\", "
		 "\"exit_code\": -1, \"reason\": \"-\", \"dropped_stdout\": %llu}", n,
		 (unsigned long long)dropped_stdout);
	snprintf(path, sizeof(path), "%s/jobs/%u/job.json", s->vm.dir, n);
	put_file(path, json);
	snprintf(path, sizeof(path), "%s/jobs/%u/stdout", s->vm.dir, n);
	put_file(path, "");
	snprintf(path, sizeof(path), "%s/jobs/%u/stderr", s->vm.dir, n);
	put_file(path, "");
}

static void append(struct sbx *s, uint32_t n, const char *stream, const char *text)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/jobs/%u/%s", s->vm.dir, n, stream);
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
}

struct reader {
	struct sbx *s;
	char buf[64];
	ssize_t got;
};

static void *blocked_read(void *arg)
{
	struct reader *r = arg;
	engine_thread_online();
	r->got = sbx_job_read(r->s, 1, 0, r->buf, sizeof(r->buf) - 1, 6, false, NULL);
	reg_thread_offline();
	return NULL;
}

/* The cases run in order on one sandbox, s, with two jobs loaded from disk. */
static struct sbx *s;

static void test_load(void)
{
	add_job(s, 1, 0);
	add_job(s, 2, 100); /* 100 bytes of stdout dropped from the front (joblog=) */
	pthread_mutex_lock(&s->lock);
	sbx_jobs_load(s);
	pthread_mutex_unlock(&s->lock);
	CHECK(sbx_job_exists(s, 1) && sbx_job_exists(s, 2));
}

/* Nothing written: not readable, and nothing fires. */
static void test_quiet(void)
{
	CHECK(!sbx_job_poll(s, 1, 0, 0));
	CHECK(!sbx_job_poll(s, 1, 1, 0));
	CHECK(!pump(50));
	CHECK(seen_of(1) == 0);
}

/* Output fires the hook; then readable before its end, not at it. */
static void test_output_wakes(void)
{
	append(s, 1, "stdout", "hello\n");
	CHECK(pump(2000));
	CHECK(seen_of(1) >= 1);
	CHECK(sbx_job_poll(s, 1, 0, 0));
	CHECK(sbx_job_poll(s, 1, 0, 5));
	CHECK(!sbx_job_poll(s, 1, 0, 6));
	char buf[64] = {0};
	CHECK(sbx_job_read(s, 1, 0, buf, sizeof(buf), 0, true, NULL) == 6 && !strcmp(buf, "hello\n"));
	CHECK(sbx_job_read(s, 1, 0, buf, sizeof(buf), 6, true, NULL) == 0);
}

/* stderr has a watch of its own, and it is one-shot. */
static void test_stderr_one_shot(void)
{
	int before = seen_of(1);
	append(s, 1, "stderr", "oops\n");
	CHECK(pump(2000));
	CHECK(seen_of(1) == before + 1);
	/* One-shot: more output fires nothing until someone waits again. */
	append(s, 1, "stderr", "more\n");
	while (pump(50))
		;
	CHECK(seen_of(1) == before + 1);
	CHECK(sbx_job_poll(s, 1, 1, 0) && !sbx_job_poll(s, 1, 1, 10));
	append(s, 1, "stderr", "x");
	CHECK(pump(2000));
	CHECK(seen_of(1) == before + 2);
}

/* Logical offsets: job 2 starts at 100. */
static void test_logical_offsets(void)
{
	CHECK(!sbx_job_poll(s, 2, 0, 100));
	append(s, 2, "stdout", "abc");
	CHECK(pump(2000));
	CHECK(seen_of(2) >= 1);
	CHECK(sbx_job_poll(s, 2, 0, 0) && sbx_job_poll(s, 2, 0, 102));
	CHECK(!sbx_job_poll(s, 2, 0, 103));
}

/* A read at the end waits, and output wakes it. */
static void test_blocked_read_woken(void)
{
	struct reader r = {.s = s, .got = -1};
	pthread_t t;
	pthread_create(&t, NULL, blocked_read, &r);
	usleep(100000);
	append(s, 1, "stdout", "more\n");
	for (int i = 0; i < 20 && pump(100); i++)
		;
	pthread_join(t, NULL);
	CHECK(r.got == 5 && !strcmp(r.buf, "more\n"));
}

/* The end: every job is readable at any offset, the hook fired, and no
 * watch is left (output after it fires nothing). */
static void test_ended(void)
{
	int s1 = seen_of(1), s2 = seen_of(2);
	pthread_mutex_lock(&s->lock);
	sbx_jobs_ended(s, "signal");
	pthread_mutex_unlock(&s->lock);
	CHECK(seen_of(1) > s1 && seen_of(2) > s2);
	CHECK(sbx_job_poll(s, 1, 0, 1000) && sbx_job_poll(s, 2, 0, 1000));
	while (pump(50)) /* the IN_IGNORED of the removed watches */
		;
	s1 = seen_of(1);
	append(s, 1, "stdout", "late\n");
	append(s, 2, "stdout", "late\n");
	while (pump(100))
		;
	CHECK(seen_of(1) == s1);
}

/* A removed job: its pollers hear of it, and poll says readable (a read fails). */
static void test_removed(void)
{
	char buf[64];
	int s1 = seen_of(1);
	CHECK(sbx_job_remove(s, 1) == 0);
	CHECK(seen_of(1) > s1);
	CHECK(sbx_job_poll(s, 1, 0, 0));
	CHECK(sbx_job_read(s, 1, 0, buf, sizeof(buf), 0, true, NULL) < 0);
}

/* An ns sandbox's init (inside the sandbox) cannot add to the counts; a
 * backend without exec_warm (its guest picks) counts an exec's and a job's. */
static void test_warm_reported(void)
{
	const struct vmm_ops *ns = s->ops;
	struct vmm_ops guest_picks = *ns;
	guest_picks.exec_warm = NULL;
	pthread_mutex_lock(&s->lock);
	sbx_warm_reported(s, 'j');
	CHECK(s->execs_warm == 0 && s->jobs_warm == 0);
	s->ops = &guest_picks;
	sbx_warm_reported(s, 'e');
	sbx_warm_reported(s, 'j');
	sbx_warm_reported(s, 0);
	CHECK(s->execs_warm == 1 && s->jobs_warm == 1);
	s->ops = ns;
	pthread_mutex_unlock(&s->lock);
}

int main(void)
{
	char tmp[] = "/tmp/sbx-unit-jobs.XXXXXX";
	CHECK(mkdtemp(tmp) != NULL);
	eng = engine_new();
	CHECK(eng != NULL);
	snprintf(eng->sandboxes_dir, sizeof(eng->sandboxes_dir), "%s", tmp);
	eng->reg = reg_new();
	engine_thread_online();
	engine_set_job_watch(eng, job_hook);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	CHECK(sbx_jobs_watch_start(eng, epfd, TAG) == 0);
	struct sbx_config c;
	ctl_config_defaults(&c, "ns", false);
	s = sbx_alloc(eng, "t1", &c);
	CHECK(s && reg_add(eng->reg, &s->node) == 0);
	if (!s)
		UNIT_DONE("jobs");

	RUN(test_load);
	RUN(test_quiet);
	RUN(test_output_wakes);
	RUN(test_stderr_one_shot);
	RUN(test_logical_offsets);
	RUN(test_blocked_read_woken);
	RUN(test_ended);
	RUN(test_removed);
	RUN(test_warm_reported);

	reg_del(eng->reg, &s->node);
	sbx_put(s);
	urcu_memb_barrier();
	reg_thread_offline();
	reg_free(eng->reg);
	close(epfd);
	rm_rf(tmp);
	UNIT_DONE("jobs");
}
