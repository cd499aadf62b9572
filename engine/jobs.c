/* Background jobs: a write to /sbx/NAME/run starts a command that outlives
 * the handle and the client; its output goes to files in the sandbox's state
 * dir (STATE/sandboxes/NAME/jobs/N/{stdout,stderr,job.json}), written by the
 * command itself, so it survives a daemon restart. Reads take any offset and
 * block at the end while the job runs; readers and pollers waiting at the end
 * are woken through inotify watches on those files (the monitor reads them).
 * Output beyond joblog= is dropped from the front (whole blocks), and stderr
 * says so. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "sbx.h"

enum { JOB_RUNNING, JOB_EXITED, JOB_KILLED };
static const char *job_states[] = {"running", "exited", "killed"};

struct sbx_job {
	uint32_t n;
	uint64_t exec_id;
	char cmd[CTL_WRITE_MAX + 1];
	int pid;
	int state;
	int exit_code;
	char reason[16];
	int stdin_fd; /* the write end; -1 once closed */
	uint64_t dropped[2]; /* bytes dropped from the front of stdout, stderr */
	int wd[2];           /* their armed inotify watches (one-shot); -1 none */
	uint64_t out_seq;    /* bumped when a watch of them fires */
	uint64_t oom_at_start;
	struct sbx_job *next;
};

static void job_dir(struct sbx *s, uint32_t n, char *out, size_t cap)
{
	snprintf(out, cap, "%s/jobs/%u", s->vm.dir, n);
}

static void stream_path(struct sbx *s, uint32_t n, int stream, char *out, size_t cap)
{
	snprintf(out, cap, "%s/jobs/%u/%s", s->vm.dir, n, stream ? "stderr" : "stdout");
}

static struct sbx_job *job_find(struct sbx *s, uint32_t n)
{
	for (struct sbx_job *j = s->jobs; j; j = j->next)
		if (j->n == n)
			return j;
	return NULL;
}

/* --- output watches: a one-shot inotify watch on a stream of a running job,
 * armed by a reader or a poller that found nothing new, fired by the next
 * write (read by the monitor), then armed again by whoever still waits. The
 * table maps a watch back to its job; entries are added under s->lock, then
 * watch_lock. */

struct out_watch {
	int wd;
	uint64_t sbx_id;
	uint32_t job;
};
static int watch_fd = -1;
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct out_watch *watches;
static size_t nwatches, watches_cap;

/* Into the monitor's epoll set, with data tag; without it nothing is watched. */
int sbx_jobs_watch_start(int epfd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	watch_fd = fd;
	return 0;
}

/* With s->lock held: arms the stream's watch. False when it cannot be armed:
 * then nothing will signal its output, and the caller must not wait for that. */
static bool watch_stream(struct sbx *s, struct sbx_job *j, int stream)
{
	if (j->wd[stream] >= 0)
		return true;
	if (watch_fd < 0)
		return false;
	char path[PATH_MAX + 32];
	stream_path(s, j->n, stream, path, sizeof(path));
	int wd = inotify_add_watch(watch_fd, path, IN_MODIFY | IN_CLOSE_WRITE | IN_ONESHOT);
	if (wd < 0) {
		static _Atomic bool warned; /* once: every poll would say it again */
		if (!atomic_exchange(&warned, true))
			log_warn("sandbox %s: job %u: cannot watch %s (%s); poll on job output "
				 "reports it readable at once", s->node.name, j->n, path,
				 strerror(errno));
		return false;
	}
	pthread_mutex_lock(&watch_lock);
	if (nwatches == watches_cap) {
		size_t cap = watches_cap ? watches_cap * 2 : 16;
		struct out_watch *w = realloc(watches, cap * sizeof(*w));
		if (!w) {
			pthread_mutex_unlock(&watch_lock);
			inotify_rm_watch(watch_fd, wd);
			return false;
		}
		watches = w;
		watches_cap = cap;
	}
	watches[nwatches++] = (struct out_watch){.wd = wd, .sbx_id = s->node.id, .job = j->n};
	pthread_mutex_unlock(&watch_lock);
	j->wd[stream] = wd;
	return true;
}

/* Takes the table's entry of watch wd (-1: any) into *out. */
static bool watch_take(int wd, struct out_watch *out)
{
	bool found = false;
	pthread_mutex_lock(&watch_lock);
	for (size_t i = 0; i < nwatches && !found; i++) {
		if (wd < 0 || watches[i].wd == wd) {
			*out = watches[i];
			watches[i] = watches[--nwatches];
			found = true;
		}
	}
	pthread_mutex_unlock(&watch_lock);
	return found;
}

/* With s->lock held: the job ended or goes. True when a watch was armed. */
static bool job_unwatch(struct sbx_job *j)
{
	bool had = false;
	for (int k = 0; k < 2; k++) {
		if (j->wd[k] < 0)
			continue;
		struct out_watch w;
		had = true;
		if (watch_take(j->wd[k], &w)) /* else it fired and is gone already */
			inotify_rm_watch(watch_fd, j->wd[k]);
		j->wd[k] = -1;
	}
	return had;
}

/* Watch w fired (or was dropped): it is disarmed, and the job's readers and
 * pollers look again. */
static void output_moved(const struct out_watch *w)
{
	struct sbx *s = sbx_get_id(w->sbx_id);
	if (s) {
		pthread_mutex_lock(&s->lock);
		struct sbx_job *j = job_find(s, w->job);
		for (int k = 0; j && k < 2; k++)
			if (j->wd[k] == w->wd)
				j->wd[k] = -1;
		if (j)
			j->out_seq++;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		sbx_put(s);
	}
	engine_notify_job(w->sbx_id, w->job);
}

static void watch_fired(const struct inotify_event *ev)
{
	struct out_watch w;
	if (!(ev->mask & IN_Q_OVERFLOW)) {
		if (watch_take(ev->wd, &w))
			output_moved(&w);
		return;
	}
	/* Events were lost: every watch is dropped, and whoever waits arms it again. */
	pthread_mutex_lock(&watch_lock);
	size_t n = nwatches;
	pthread_mutex_unlock(&watch_lock);
	while (n-- > 0 && watch_take(-1, &w)) {
		inotify_rm_watch(watch_fd, w.wd);
		output_moved(&w);
	}
}

/* The monitor's part, when the inotify fd is readable. */
void sbx_jobs_watch_drain(void)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	while ((len = read(watch_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (!(ev->mask & IN_IGNORED)) /* IN_IGNORED: a watch went */
				watch_fired(ev);
		}
	}
}

/* With s->lock held: the job is over (or goes); nobody waits for its output any more. */
static void job_settled(struct sbx *s, struct sbx_job *j)
{
	job_unwatch(j);
	engine_notify_job(s->node.id, j->n);
}

/* With s->lock held. */
static void job_journal(struct sbx *s, struct sbx_job *j)
{
	char path[PATH_MAX + 32];
	job_dir(s, j->n, path, sizeof(path));
	strcat(path, "/job.json");
	json_t *o = json_pack("{s:i, s:s, s:i, s:s, s:i, s:s, s:I, s:I, s:I}", "n", (int)j->n, "cmd",
			      j->cmd, "pid", j->pid, "status", job_states[j->state], "exit_code",
			      j->exit_code, "reason", j->reason, "dropped_stdout",
			      (json_int_t)j->dropped[0], "dropped_stderr", (json_int_t)j->dropped[1],
			      "exec_id", (json_int_t)j->exec_id);
	char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (text)
		write_file_atomic(path, text, strlen(text), false);
	free(text);
	journal_commit_soon();
}

int sbx_job_start(struct sbx *s, const char *buf, size_t len, uint32_t *out)
{
	char line[CTL_WRITE_MAX + 1];
	struct err e = {0};
	int r = ctl_command_line(buf, len, line, &e), fds[3] = {-1, -1, -1}, in[2] = {-1, -1};
	char dir[PATH_MAX], path[PATH_MAX + 16];
	struct sbx_job *j = NULL;
	pthread_mutex_lock(&s->lock);
	if (r < 0)
		goto out;
	sbx_wait_settled(s, 60);
	int st = atomic_load(&s->state);
	if (st != SBX_RUNNING) {
		r = err_set(&e, -EBUSY, "cannot run a job in sandbox %s: it is %s", s->node.name,
			    sbx_state_name(st));
		goto out;
	}
	if (!s->ops->job) {
		r = err_set(&e, -EOPNOTSUPP, "backend %s cannot run jobs", s->cfg.backend);
		goto out;
	}
	if (s->next_job >= 0x7fff) { /* the inode scheme holds 32767 jobs per sandbox */
		r = err_set(&e, -ENOSPC, "sandbox %s has run 32767 jobs; no more ids", s->node.name);
		goto out;
	}
	if (!(j = calloc(1, sizeof(*j)))) {
		r = err_set(&e, -ENOMEM, "out of memory");
		goto out;
	}
	j->n = ++s->next_job;
	j->exec_id = ++s->next_exec_id;
	j->exit_code = -1;
	j->stdin_fd = -1;
	j->wd[0] = j->wd[1] = -1;
	snprintf(j->reason, sizeof(j->reason), "-");
	memcpy(j->cmd, line, sizeof(j->cmd));
	job_dir(s, j->n, dir, sizeof(dir));
	if ((r = mkdir_p(dir, 0700)) < 0) {
		err_set(&e, r, "cannot create %s: %s", dir, strerror(-r));
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, i ? "stderr" : "stdout");
		fds[i + 1] = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fds[i + 1] < 0) {
			r = err_set(&e, -errno, "cannot create %s: %s", path, strerror(errno));
			goto out;
		}
	}
	if (pipe2(in, O_CLOEXEC) < 0) {
		r = err_set(&e, -errno, "pipe: %s", strerror(errno));
		goto out;
	}
	fds[0] = in[0];
	struct vmm_usage u = {0};
	s->ops->usage(&s->vm, &u);
	j->oom_at_start = u.oom_kills;
	if ((r = s->ops->job(&s->vm, j->exec_id, j->cmd, fds, &e)) < 0)
		goto out;
	j->stdin_fd = in[1];
	in[1] = -1;
	j->state = JOB_RUNNING;
	j->next = s->jobs;
	s->jobs = j;
	job_journal(s, j);
	*out = j->n;
	j = NULL;
out:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (in[1] >= 0)
		close(in[1]);
	if (j) {
		char d[PATH_MAX];
		job_dir(s, j->n, d, sizeof(d));
		rm_rf(d);
		free(j);
	}
	if (r < 0)
		sbx_fail(s, r, e.msg);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void bound_stream(struct sbx *s, struct sbx_job *j, int stream);

/* With s->lock held: init reported a pid or an exit for exec_id. */
bool sbx_job_event(struct sbx *s, const struct vmm_event *ev)
{
	for (struct sbx_job *j = s->jobs; j; j = j->next) {
		if (j->exec_id != ev->exec_id || j->state != JOB_RUNNING)
			continue;
		if (ev->kind == VMM_EV_EXEC_PID) {
			j->pid = ev->pid;
		} else {
			struct vmm_usage u = {0};
			s->ops->usage(&s->vm, &u);
			j->exit_code = ev->exit_code;
			j->state = ev->signal ? JOB_KILLED : JOB_EXITED;
			snprintf(j->reason, sizeof(j->reason), "%s",
				 !ev->signal ? "exit"
				 : ev->signal == SIGKILL && u.oom_kills > j->oom_at_start ? "oom"
				 : "signal");
			if (j->stdin_fd >= 0)
				close(j->stdin_fd);
			j->stdin_fd = -1;
			for (int k = 0; k < 2; k++) /* a fast job may end between two checks */
				bound_stream(s, j, k);
			job_settled(s, j);
			pthread_cond_broadcast(&s->cond);
		}
		job_journal(s, j);
		return true;
	}
	return false;
}

/* With s->lock held: the sandbox ended, its jobs with it. */
void sbx_jobs_ended(struct sbx *s, const char *reason)
{
	for (struct sbx_job *j = s->jobs; j; j = j->next) {
		if (j->state != JOB_RUNNING)
			continue;
		j->state = JOB_KILLED;
		j->exit_code = 137;
		snprintf(j->reason, sizeof(j->reason), "%s", reason);
		if (j->stdin_fd >= 0)
			close(j->stdin_fd);
		j->stdin_fd = -1;
		job_settled(s, j);
		job_journal(s, j);
	}
}

bool sbx_job_exists(struct sbx *s, uint32_t n)
{
	pthread_mutex_lock(&s->lock);
	bool found = job_find(s, n) != NULL;
	pthread_mutex_unlock(&s->lock);
	return found;
}

int sbx_job_list(struct sbx *s, uint32_t **ns, size_t *cnt)
{
	size_t c = 0, i = 0;
	pthread_mutex_lock(&s->lock);
	for (struct sbx_job *j = s->jobs; j; j = j->next)
		c++;
	*ns = calloc(c ? c : 1, sizeof(**ns));
	if (*ns)
		for (struct sbx_job *j = s->jobs; j; j = j->next)
			(*ns)[i++] = j->n;
	pthread_mutex_unlock(&s->lock);
	*cnt = c;
	return *ns ? 0 : -ENOMEM;
}

int sbx_job_show(struct sbx *s, uint32_t n, const char *field, struct buf *b)
{
	int r = -ENOENT;
	pthread_mutex_lock(&s->lock);
	struct sbx_job *j = job_find(s, n);
	if (j) {
		if (!strcmp(field, "cmd"))
			r = buf_printf(b, "%s\n", j->cmd);
		else if (!strcmp(field, "pid"))
			r = buf_printf(b, "%d\n", j->pid);
		else if (!strcmp(field, "status"))
			r = buf_printf(b, "%s\n", job_states[j->state]);
		else if (!strcmp(field, "exit_code"))
			r = buf_printf(b, "%d\n", j->exit_code);
		else if (!strcmp(field, "reason"))
			r = buf_printf(b, "%s\n", j->reason);
		else
			r = -EINVAL;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Until job n's output moves past seq, the job ends or goes, or a slice passes
 * (the reader may have been interrupted; an unwatched stream is looked at again). */
static void wait_output(struct sbx *s, uint32_t n, uint64_t seq, uint64_t slice_usec)
{
	uint64_t until = now_usec() + slice_usec;
	struct timespec ts = {.tv_sec = (time_t)(until / 1000000),
			      .tv_nsec = (long)(until % 1000000) * 1000};
	struct sbx_job *j;
	pthread_mutex_lock(&s->lock);
	while ((j = job_find(s, n)) && j->state == JOB_RUNNING && j->out_seq == seq &&
	       pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&s->lock);
}

/* Offset read of stdout (stream 0) or stderr (1); at the end, waits while the job runs. */
ssize_t sbx_job_read(struct sbx *s, uint32_t n, int stream, char *buf, size_t size, off_t off,
		     bool nonblock, const struct sbx_cancel *c)
{
	char path[PATH_MAX + 32];
	stream_path(s, n, stream, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t got;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		struct sbx_job *j = job_find(s, n);
		uint64_t dropped = j ? j->dropped[stream] : 0, seq = j ? j->out_seq : 0;
		bool running = j && j->state == JOB_RUNNING;
		/* Watched before the read: output written after it moves out_seq. */
		bool watched = running && !nonblock && watch_stream(s, j, stream);
		pthread_mutex_unlock(&s->lock);
		if (!j) {
			got = -ENOENT;
			break;
		}
		/* Offsets are logical: bytes dropped from the front still count. */
		off_t phys = (uint64_t)off > dropped ? off - (off_t)dropped : 0;
		got = pread(fd, buf, size, phys);
		if (got < 0)
			got = -errno;
		if (got != 0 || !running || nonblock)
			break;
		if (c && c->fn(c->arg)) {
			got = -EINTR;
			break;
		}
		wait_output(s, n, seq, watched ? 100000 : 50000);
	}
	close(fd);
	return got;
}

bool sbx_job_poll(struct sbx *s, uint32_t n, int stream, uint64_t off)
{
	char path[PATH_MAX + 32];
	struct stat st;
	pthread_mutex_lock(&s->lock);
	struct sbx_job *j = job_find(s, n);
	/* The watch before the look: output written after the look fires it. An
	 * unwatchable stream is reported readable (a read then waits, as it can). */
	bool ready = !j || j->state != JOB_RUNNING || !watch_stream(s, j, stream);
	if (!ready) {
		stream_path(s, n, stream, path, sizeof(path));
		ready = stat(path, &st) < 0 || j->dropped[stream] + (uint64_t)st.st_size > off;
	}
	pthread_mutex_unlock(&s->lock);
	return ready;
}

int sbx_job_stdin(struct sbx *s, uint32_t n, const char *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	struct sbx_job *j = job_find(s, n);
	int fd = j && j->stdin_fd >= 0 ? dup(j->stdin_fd) : -1;
	int r = !j ? -ENOENT : fd < 0 ? -EPIPE : 0;
	if (r == -EPIPE)
		sbx_fail(s, r, "the job's stdin is closed");
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	/* A job that does not read stalls the writer: flow control, no buffering here. */
	ssize_t w = write(fd, buf, len);
	r = w < 0 ? -errno : 0;
	close(fd);
	return r;
}

int sbx_job_ctl(struct sbx *s, uint32_t n, const char *buf, size_t len)
{
	struct ctl_cmd cmd;
	struct err e = {0};
	int r = ctl_split(buf, len, &cmd, &e), sig = SIGTERM;
	pthread_mutex_lock(&s->lock);
	struct sbx_job *j = job_find(s, n);
	if (r < 0) {
	} else if (!j) {
		r = err_set(&e, -ENOENT, "no job %u", n);
	} else if (!strcmp(cmd.argv[0], "kill") && cmd.argc <= 2) {
		if (cmd.argc == 2 && ctl_parse_signal(cmd.argv[1], &sig) < 0)
			r = err_set(&e, -EINVAL, "usage: kill [SIGNAL]");
		else if (j->state != JOB_RUNNING)
			r = err_set(&e, -EBUSY, "job %u is %s", n, job_states[j->state]);
		else
			r = s->ops->exec_kill(&s->vm, j->exec_id, sig);
	} else if (!strcmp(cmd.argv[0], "eof") && cmd.argc == 1) {
		if (j->stdin_fd >= 0)
			close(j->stdin_fd);
		j->stdin_fd = -1;
	} else {
		r = err_set(&e, -EINVAL, "unknown job command '%.64s' (kill [SIGNAL], eof)",
			    cmd.argv[0]);
	}
	if (r < 0)
		sbx_fail(s, r, e.msg[0] ? e.msg : strerror(-r));
	pthread_mutex_unlock(&s->lock);
	return r;
}

int sbx_job_remove(struct sbx *s, uint32_t n)
{
	int r = 0;
	pthread_mutex_lock(&s->lock);
	struct sbx_job **p = &s->jobs;
	while (*p && (*p)->n != n)
		p = &(*p)->next;
	if (!*p)
		r = -ENOENT;
	else if ((*p)->state == JOB_RUNNING)
		r = sbx_fail(s, -EBUSY, "the job is still running; kill it first");
	else {
		struct sbx_job *j = *p;
		*p = j->next;
		job_settled(s, j);
		char d[PATH_MAX];
		job_dir(s, n, d, sizeof(d));
		rm_rf(d);
		free(j);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Drops whole blocks from the front of a stream past the bound (s->lock held). */
static void bound_stream(struct sbx *s, struct sbx_job *j, int stream)
{
	char path[PATH_MAX + 16];
	job_dir(s, j->n, path, sizeof(path));
	strcat(path, stream ? "/stderr" : "/stdout");
	struct stat st;
	uint64_t limit = s->cfg.joblog_bytes;
	if (!limit || stat(path, &st) < 0 || (uint64_t)st.st_size <= limit)
		return;
	uint64_t cut = ((uint64_t)st.st_size - limit / 2) & ~(uint64_t)(st.st_blksize - 1);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || cut == 0)
		goto out;
	if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)cut) < 0) {
		log_warn("sandbox %s: job %u: cannot drop old output (%s); joblog= is not enforced "
			 "on this filesystem", s->node.name, j->n, strerror(errno));
		s->cfg.joblog_bytes = 0;
		goto out;
	}
	j->dropped[stream] += cut;
	char note[128];
	job_dir(s, j->n, path, sizeof(path));
	strcat(path, "/stderr");
	int efd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (efd >= 0) {
		int n = snprintf(note, sizeof(note), "[sandboxfs: %" PRIu64 " bytes of older %s dropped "
				 "(joblog=%" PRIu64 ")]\n", cut, stream ? "stderr" : "stdout", limit);
		if (write(efd, note, (size_t)n) < 0)
			log_warn("sandbox %s: job %u: cannot note dropped output", s->node.name, j->n);
		close(efd);
	}
	job_journal(s, j);
out:
	if (fd >= 0)
		close(fd);
}

/* Called by the monitor now and then. */
void sbx_jobs_bound(struct sbx *s)
{
	pthread_mutex_lock(&s->lock);
	for (struct sbx_job *j = s->jobs; j; j = j->next)
		if (j->state == JOB_RUNNING)
			for (int k = 0; k < 2; k++)
				bound_stream(s, j, k);
	pthread_mutex_unlock(&s->lock);
}

/* Daemon restart: jobs come back from their job.json (s->lock held). */
void sbx_jobs_load(struct sbx *s)
{
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/jobs", s->vm.dir);
	for (uint32_t n = 1; n < 100000; n++) {
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/%u/job.json", dir, n);
		json_t *o = json_load_file(path, 0, NULL);
		if (!o) {
			if (access(path, F_OK) == 0)
				continue;
			char d[PATH_MAX + 32];
			snprintf(d, sizeof(d), "%s/%u", dir, n);
			if (access(d, F_OK) == 0)
				continue;
			if (n > s->next_job + 64) /* removed jobs leave gaps; stop after a long one */
				break;
			continue;
		}
		struct sbx_job *j = calloc(1, sizeof(*j));
		const char *cmd = "", *status = "exited", *reason = "-";
		json_int_t d0 = 0, d1 = 0, xid = 0;
		if (j && json_unpack(o, "{s:s, s:i, s:s, s:i, s:s, s?I, s?I, s?I}", "cmd", &cmd, "pid",
				     &j->pid, "status", &status, "exit_code", &j->exit_code, "reason",
				     &reason, "dropped_stdout", &d0, "dropped_stderr", &d1, "exec_id",
				     &xid) == 0) {
			j->n = n;
			snprintf(j->cmd, sizeof(j->cmd), "%s", cmd);
			snprintf(j->reason, sizeof(j->reason), "%s", reason);
			j->state = !strcmp(status, "running") ? JOB_RUNNING
				   : !strcmp(status, "killed") ? JOB_KILLED : JOB_EXITED;
			j->dropped[0] = (uint64_t)d0;
			j->dropped[1] = (uint64_t)d1;
			j->stdin_fd = -1;
			j->wd[0] = j->wd[1] = -1;
			/* Its id as the sandbox's init (or agent) knows it: an exit
			 * reported after the restart still finds the job. */
			j->exec_id = (uint64_t)xid;
			/* New ids never meet an old one (init may still report those). */
			if (s->next_exec_id <= j->exec_id)
				s->next_exec_id = j->exec_id + 1;
			j->next = s->jobs;
			s->jobs = j;
			if (n > s->next_job)
				s->next_job = n;
			j = NULL;
		}
		free(j);
		json_decref(o);
	}
}

/* After a re-adoption (s->lock held): running jobs whose output passes
 * through the daemon (qemu) are attached again from where their files end. */
void sbx_jobs_reattach(struct sbx *s)
{
	for (struct sbx_job *j = s->jobs; j; j = j->next) {
		if (j->state != JOB_RUNNING || !j->exec_id || !s->ops->job_attach)
			continue;
		char dir[PATH_MAX], path[PATH_MAX + 16];
		int fds[2] = {-1, -1};
		uint64_t off[2] = {0, 0};
		struct err e = {0};
		int r = 0;
		job_dir(s, j->n, dir, sizeof(dir));
		for (int k = 0; k < 2 && r == 0; k++) {
			struct stat st;
			snprintf(path, sizeof(path), "%s/%s", dir, k ? "stderr" : "stdout");
			fds[k] = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
			if (fds[k] < 0 || fstat(fds[k], &st) < 0)
				r = err_set(&e, -errno, "cannot open %s: %s", path, strerror(errno));
			else
				off[k] = j->dropped[k] + (uint64_t)st.st_size;
		}
		if (r == 0)
			r = s->ops->job_attach(&s->vm, j->exec_id, fds[0], fds[1], off[0], off[1], &e);
		for (int k = 0; k < 2; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		if (r < 0)
			log_warn("sandbox %s: job %u cannot be attached again: %s", s->node.name, j->n,
				 e.msg);
		else
			log_info("sandbox %s: job %u attached again at %" PRIu64 "/%" PRIu64 " bytes",
				 s->node.name, j->n, off[0], off[1]);
	}
}

void sbx_jobs_free(struct sbx *s)
{
	while (s->jobs) {
		struct sbx_job *j = s->jobs;
		s->jobs = j->next;
		if (j->stdin_fd >= 0)
			close(j->stdin_fd);
		if (job_unwatch(j))
			engine_notify_job(s->node.id, j->n); /* its pollers see it gone */
		free(j);
	}
}
