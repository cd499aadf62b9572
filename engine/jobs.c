/* Background jobs: a write to /sbx/NAME/run starts a command that outlives
 * the handle and the client; its output goes to files in the sandbox's state
 * dir (STATE/sandboxes/NAME/jobs/N/{stdout,stderr,job.json}) that the sandbox
 * cannot reach: a job whose own processes hold its fds (ns) writes into pipes
 * that the daemon drains there (output.h), and init keeps them open while no
 * daemon runs, so output survives a restart; the daemon alone counts what is
 * stored and what was dropped. Reads take any offset and
 * wait at the end while the job runs (never on the reader's thread: the read
 * says what to wait for and its caller parks it, see waiters.h); readers and
 * pollers waiting at the end are woken through inotify watches on those files
 * (the monitor reads them).
 * Output beyond joblog= is dropped from the front (whole blocks), and stderr
 * says so.
 * A terminal's job (run tty=COLSxROWS CMD) has a pty made inside the sandbox
 * instead (vmm pty_open): the slave is its stdin, stdout and stderr, the
 * daemon holds the master, whose output is stored as stdout like a pipe's
 * (read and copied: a terminal cannot be spliced), and stdin writes go to it;
 * init holds it too, and a restarted daemon takes it back (tty_reattach). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>

#include "exec.h"
#include "images.h"
#include "jobs.h"
#include "journal.h"
#include "output.h"
#include "sandbox.h"

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
	/* ns: the job writes into pipes whose read ends are these, drained into
	 * the files here (output.h); -1 once at their end (or qemu: no pipes). */
	int pipe[2];
	uint64_t pipe_ino[2]; /* their inodes: a restarted daemon finds them again
			       * (a terminal's: its master's, found by tty_index) */
	bool capped[2];       /* the file's front cannot be dropped: new output is */
	bool lost[2];         /* output could not be stored (said once in the log) */
	/* A drop from the front being made: journaled first (see bound_stream). */
	uint64_t cutting[2], cut_from[2];
	int wd[2];           /* their armed inotify watches (one-shot); -1 none */
	uint64_t out_seq;    /* bumped when a watch of them fires */
	uint64_t oom_at_start;
	/* A terminal's job: pipe[0] (and stdin_fd, a dup) is the pty's master;
	 * tty_index its number in the sandbox's devpts (-1: none). */
	bool tty;
	int tty_index;
	/* Started by this daemon and its pid not reported yet: a read of pid
	 * waits for the report. A job read back from its journal never waits
	 * (a daemon that died before the report gets none). */
	bool pid_due;
	uint64_t deadline_usec; /* timeout=: monotonic; 0 none (journaled as wall time) */
	bool timed_out;         /* killed at its deadline: reason timeout */
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
 * table (eng->jobs) maps a watch back to its job; entries are added under
 * s->lock, then eng->jobs.lock. */

struct out_watch {
	int wd;
	struct engine *eng;
	uint64_t sbx_id;
	uint32_t job;
};

/* Into the monitor's epoll set, with data tag; without it nothing is watched. */
int sbx_jobs_watch_start(struct engine *eng, int epfd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	eng->jobs.watch_fd = fd;
	return 0;
}

/* With s->lock held: arms the stream's watch. False when it cannot be armed:
 * then nothing will signal its output, and the caller must not wait for that. */
static bool watch_stream(struct sbx *s, struct sbx_job *j, int stream)
{
	struct engine *eng = s->eng;
	if (j->wd[stream] >= 0)
		return true;
	if (eng->jobs.watch_fd < 0)
		return false;
	char path[PATH_MAX + 32];
	stream_path(s, j->n, stream, path, sizeof(path));
	int wd = inotify_add_watch(eng->jobs.watch_fd, path, IN_MODIFY | IN_CLOSE_WRITE | IN_ONESHOT);
	if (wd < 0) {
		static _Atomic bool warned; /* once: every poll would say it again */
		if (!atomic_exchange(&warned, true))
			log_warn("sandbox %s: job %u: cannot watch %s (%s); poll on job output "
				 "reports it readable at once", s->node.name, j->n, path,
				 strerror(errno));
		return false;
	}
	pthread_mutex_lock(&eng->jobs.lock);
	if (eng->jobs.n == eng->jobs.cap) {
		size_t cap = eng->jobs.cap ? eng->jobs.cap * 2 : 16;
		struct out_watch *w = realloc(eng->jobs.watches, cap * sizeof(*w));
		if (!w) {
			pthread_mutex_unlock(&eng->jobs.lock);
			inotify_rm_watch(eng->jobs.watch_fd, wd);
			return false;
		}
		eng->jobs.watches = w;
		eng->jobs.cap = cap;
	}
	eng->jobs.watches[eng->jobs.n++] =
		(struct out_watch){.wd = wd, .eng = s->eng, .sbx_id = s->node.id, .job = j->n};
	pthread_mutex_unlock(&eng->jobs.lock);
	j->wd[stream] = wd;
	return true;
}

/* Takes the table's entry of watch wd (-1: any) into *out. */
static bool watch_take(struct engine *eng, int wd, struct out_watch *out)
{
	bool found = false;
	pthread_mutex_lock(&eng->jobs.lock);
	for (size_t i = 0; i < eng->jobs.n && !found; i++) {
		if (wd < 0 || eng->jobs.watches[i].wd == wd) {
			*out = eng->jobs.watches[i];
			eng->jobs.watches[i] = eng->jobs.watches[--eng->jobs.n];
			found = true;
		}
	}
	pthread_mutex_unlock(&eng->jobs.lock);
	return found;
}

/* With s->lock held: the job ended or goes. True when a watch was armed. */
static bool job_unwatch(struct engine *eng, struct sbx_job *j)
{
	bool had = false;
	for (int k = 0; k < 2; k++) {
		if (j->wd[k] < 0)
			continue;
		struct out_watch w;
		had = true;
		if (watch_take(eng, j->wd[k], &w)) /* else it fired and is gone already */
			inotify_rm_watch(eng->jobs.watch_fd, j->wd[k]);
		j->wd[k] = -1;
	}
	return had;
}

/* Watch w fired (or was dropped): it is disarmed, and the job's readers and
 * pollers look again. */
static void output_moved(const struct out_watch *w)
{
	struct sbx *s = sbx_get_id(w->eng, w->sbx_id);
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
	engine_notify_job(w->eng, w->sbx_id, w->job);
}

static void watch_fired(struct engine *eng, const struct inotify_event *ev)
{
	struct out_watch w;
	if (!(ev->mask & IN_Q_OVERFLOW)) {
		if (watch_take(eng, ev->wd, &w))
			output_moved(&w);
		return;
	}
	/* Events were lost: every watch is dropped, and whoever waits arms it again. */
	pthread_mutex_lock(&eng->jobs.lock);
	size_t n = eng->jobs.n;
	pthread_mutex_unlock(&eng->jobs.lock);
	while (n-- > 0 && watch_take(eng, -1, &w)) {
		inotify_rm_watch(eng->jobs.watch_fd, w.wd);
		output_moved(&w);
	}
}

/* The monitor's part, when the inotify fd is readable. */
void sbx_jobs_watch_drain(struct engine *eng)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;
	while ((len = read(eng->jobs.watch_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (!(ev->mask & IN_IGNORED)) /* IN_IGNORED: a watch went */
				watch_fired(eng, ev);
		}
	}
}

/* With s->lock held: the job is over (or goes); nobody waits for its output any more. */
static void job_settled(struct sbx *s, struct sbx_job *j)
{
	job_unwatch(s->eng, j);
	engine_notify_job(s->eng, s->node.id, j->n);
}

/* With s->lock held. */
static void job_journal(struct sbx *s, struct sbx_job *j)
{
	char path[PATH_MAX + 32];
	job_dir(s, j->n, path, sizeof(path));
	strcat(path, "/job.json");
	/* pipe_*: the inode of a pipe not at its end yet (0: none, or ended). */
	json_t *o = json_pack("{s:i, s:s, s:i, s:s, s:i, s:s, s:I, s:I, s:I, s:I, s:I}", "n",
			      (int)j->n, "cmd", j->cmd, "pid", j->pid, "status",
			      job_states[j->state], "exit_code", j->exit_code, "reason", j->reason,
			      "dropped_stdout", (json_int_t)j->dropped[0], "dropped_stderr",
			      (json_int_t)j->dropped[1], "exec_id", (json_int_t)j->exec_id,
			      "pipe_stdout", (json_int_t)j->pipe_ino[0], "pipe_stderr",
			      (json_int_t)j->pipe_ino[1]);
	/* A guest's terminal has its number once the agent reported the pid:
	 * a daemon killed before that reads the job back without a terminal. */
	if (o && j->tty && j->tty_index >= 0)
		json_object_set_new(o, "tty", json_integer(j->tty_index));
	/* timeout=: as wall time, which a restarted daemon's monotonic clock
	 * does not share a start with (the same boot's, but not its reading). */
	if (o && j->deadline_usec && j->state == JOB_RUNNING) {
		uint64_t now = now_usec(), left = j->deadline_usec > now ? j->deadline_usec - now : 0;
		json_object_set_new(o, "deadline_unix_usec", json_integer((json_int_t)(wall_usec() + left)));
	}
	for (int k = 0; o && k < 2; k++)
		if (j->cutting[k]) {
			json_object_set_new(o, k ? "cutting_stderr" : "cutting_stdout",
					    json_integer((json_int_t)j->cutting[k]));
			json_object_set_new(o, k ? "cut_from_stderr" : "cut_from_stdout",
					    json_integer((json_int_t)j->cut_from[k]));
		}
	char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (text)
		write_file_atomic(path, text, strlen(text), false);
	free(text);
	journal_commit_soon(s->eng);
}

/* The highest id a sandbox ever gave a job, kept beside its jobs, so that a
 * restarted daemon never gives one again (not even when the newest jobs were
 * removed). Saved before the job's dir is made. */
static void last_id_path(struct sbx *s, char *out, size_t cap)
{
	snprintf(out, cap, "%s/jobs/last", s->vm.dir);
}

static int last_id_save(struct sbx *s, uint32_t n, struct err *e)
{
	char path[PATH_MAX + 32], text[16];
	snprintf(path, sizeof(path), "%s/jobs", s->vm.dir);
	int r = mkdir_p(path, 0700);
	last_id_path(s, path, sizeof(path));
	snprintf(text, sizeof(text), "%u\n", n);
	if (r == 0)
		r = write_file_atomic(path, text, strlen(text), false);
	return r < 0 ? err_set(e, r, "cannot write %s: %s", path, strerror(-r)) : 0;
}

static uint32_t last_id_load(struct sbx *s)
{
	char path[PATH_MAX + 32], text[16];
	last_id_path(s, path, sizeof(path));
	unsigned long n = read_file_str(path, text, sizeof(text)) > 0 ? strtoul(text, NULL, 10) : 0;
	return n > SBX_JOB_ID_MAX ? SBX_JOB_ID_MAX : (uint32_t)n;
}

/* Whether the job's own processes hold its output fds (ns): they could
 * truncate or rewrite a file, so they get pipes and the daemon stores what
 * comes out. Where the daemon writes for the job (qemu: job_attach is set
 * exactly there), the job gets the files. */
static bool job_writes_itself(const struct sbx *s)
{
	return !s->ops->job_attach && out_pump_start(s->eng, sbx_job_pump) == 0;
}

/* Room in a job's pipe while no daemon drains it (init keeps it open). */
#define JOB_PIPE_BYTES (1 << 20)

/* Stream k's file (O_APPEND: where the job writes it itself). */
static int stream_open(struct sbx *s, struct sbx_job *j, int k, struct err *e)
{
	char path[PATH_MAX + 32];
	stream_path(s, j->n, k, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	return fd >= 0 ? fd : err_set(e, -errno, "cannot create %s: %s", path, strerror(errno));
}

/* j->pipe[k], the read end of the job's stream k, by its inode: the mark a
 * restarted daemon finds it by. */
static int pipe_mark(struct sbx_job *j, int k, struct err *e)
{
	struct stat st;
	if (fstat(j->pipe[k], &st) < 0)
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	j->pipe_ino[k] = (uint64_t)st.st_ino;
	return 0;
}

/* Stream k's file, and the fd the job writes it through: the file itself,
 * or a pipe whose read end goes to j->pipe[k] (either way the caller's to
 * close on a failure). */
static int stream_create(struct sbx *s, struct sbx_job *j, int k, int *job_fd, struct err *e)
{
	int p[2];
	int fd = stream_open(s, j, k, e);
	if (fd < 0)
		return fd;
	if (!job_writes_itself(s)) {
		*job_fd = fd;
		return 0;
	}
	close(fd);
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	fcntl(p[1], F_SETPIPE_SZ, JOB_PIPE_BYTES); /* best effort: the default is 64 KiB */
	j->pipe[k] = p[0];
	*job_fd = p[1];
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	return pipe_mark(j, k, e);
}

static void pipe_close(struct sbx_job *j, int k)
{
	if (j->pipe[k] >= 0)
		close(j->pipe[k]); /* leaves the pump's epoll set */
	j->pipe[k] = -1;
}

/* A job's record is a few hundred bytes and its command line. */
#define JOB_JSON_MAX_BYTES (64 << 10)

static bool blank(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", buf[i]))
			return false;
	return true;
}

/* A terminal's job: its two files (stderr stays empty: a terminal merges it
 * into stdout), the slave of a pty made in the sandbox as the job's stdio,
 * the master as the daemon's end of its stdin and output (j->pipe[0]). */
static int tty_stdio(struct sbx *s, struct sbx_job *j, const struct ctl_winsize *ws, int fds[3],
		     int *in_w, struct err *e)
{
	char path[PATH_MAX + 32];
	int master, slave;
	for (int k = 0; k < 2; k++) {
		stream_path(s, j->n, k, path, sizeof(path));
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return err_set(e, -errno, "cannot create %s: %s", path, strerror(errno));
		close(fd);
	}
	int r = s->ops->pty_open(&s->vm, ws->cols, ws->rows, &master, &slave, &j->tty_index, e);
	if (r < 0)
		return r;
	struct stat st;
	j->tty = true;
	j->pipe[0] = master;
	/* Nonzero while the master is open (as a pipe's inode is): the mark by
	 * which a restarted daemon looks for it (tty_find). */
	j->pipe_ino[0] = fstat(master, &st) == 0 && st.st_ino ? (uint64_t)st.st_ino : 1;
	fds[0] = slave;
	fds[1] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
	fds[2] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
	*in_w = fcntl(master, F_DUPFD_CLOEXEC, 3);
	if (fds[1] < 0 || fds[2] < 0 || *in_w < 0)
		return err_set(e, -errno, "cannot duplicate the terminal's fds: %s", strerror(errno));
	return 0;
}

/* A terminal the sandbox makes itself (tty_ctl; qemu: in the guest): the
 * job's stdio are pipes as any job's, the terminal is asked for in vo and
 * its number comes with the job's pid. */
static bool tty_in_sandbox(const struct sbx *s, const struct sbx_job *j)
{
	return j->tty && !s->ops->pty_open;
}

/* The job's stdio: fds (its stdin, stdout, stderr) and *in_w, the daemon's
 * end of its stdin. */
static int job_stdio(struct sbx *s, struct sbx_job *j, struct sbx_command *c, int fds[3],
		     int *in_w, struct err *e)
{
	const struct ctl_run_opts *ro = &c->ro;
	int in[2], r;
	if (ro->tty && s->ops->pty_open)
		return tty_stdio(s, j, &ro->ws, fds, in_w, e);
	if (ro->tty) {
		j->tty = true;
		c->vo.tty_cols = ro->ws.cols;
		c->vo.tty_rows = ro->ws.rows;
	}
	for (int k = 0; k < 2; k++)
		if ((r = stream_create(s, j, k, &fds[k + 1], e)) < 0)
			return r;
	if (pipe2(in, O_CLOEXEC) < 0)
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	fds[0] = in[0];
	*in_w = in[1];
	return 0;
}

/* A job in a process of its own, on new stdio (fds and *in_w as job_stdio's). */
static int job_cold(struct sbx *s, struct sbx_job *j, struct sbx_command *c, int fds[3],
		    int *in_w, struct err *e)
{
	int r = job_stdio(s, j, c, fds, in_w, e);
	/* init holds a terminal's master too: a daemon that dies hangs up nothing. */
	return r < 0 ? r : s->ops->job(&s->vm, j->exec_id, c->full, c->opts, fds,
				       j->tty ? j->pipe[0] : -1, e);
}

/* A job without options in the warm shell (exec.c): its pipes become the
 * job's, drained into the job's files as a cold job's are. Only where the
 * job writes pipes itself (job_writes_itself): the shell's output is one. */
static bool job_warm_fits(struct sbx *s, const struct sbx_command *c)
{
	return sbx_warm_fits(s, c) && job_writes_itself(s);
}

static int job_warm(struct sbx *s, struct sbx_job *j, const struct sbx_command *c, int *in_w,
		    struct err *e)
{
	int ends[3], r;
	for (int k = 0; k < 2; k++) {
		int fd = stream_open(s, j, k, e);
		if (fd < 0)
			return fd;
		close(fd);
	}
	if ((r = sbx_warm_take(s, j->exec_id, c, true, ends, e)) < 0)
		return r;
	*in_w = ends[0];
	j->pipe[0] = ends[1];
	j->pipe[1] = ends[2];
	for (int k = 0; k < 2; k++)
		if ((r = pipe_mark(j, k, e)) < 0)
			return r;
	return 0;
}

int sbx_job_start(struct sbx *s, const char *buf, size_t len, uint32_t *out)
{
	char line[CTL_WRITE_MAX + 1];
	struct sbx_command *c = calloc(1, sizeof(*c));
	struct err e = {0};
	int r = c ? ctl_command_line(buf, len, line, &e) : err_set(&e, -ENOMEM, "out of memory");
	int fds[3] = {-1, -1, -1}, in_w = -1;
	if (r < 0 && c && blank(buf, len)) { /* run with an empty line: the image's command */
		line[0] = '\0';
		err_clear(&e);
		r = 0;
	}
	if (r == 0)
		r = sbx_command_prepare(s, line, true, c, &e);
	const struct ctl_run_opts *ro = c ? &c->ro : NULL;
	char dir[PATH_MAX];
	struct sbx_job *j = NULL;
	pthread_mutex_lock(&s->lock);
	if (r < 0)
		goto out;
	if ((r = sbx_require_running(s, "run a job", &e)) < 0)
		goto out;
	if (!s->ops->job) {
		r = err_set(&e, -EOPNOTSUPP, "backend %s cannot run jobs", s->cfg.backend);
		goto out;
	}
	if (ro->tty && (!s->ops->pty_open && !s->ops->tty_ctl)) {
		r = err_set(&e, -EOPNOTSUPP, "backend %s has no terminals: a job with tty= "
			    "cannot run in its sandboxes", s->cfg.backend);
		goto out;
	}
	if (s->next_job >= SBX_JOB_ID_MAX) {
		r = err_set(&e, -ENOSPC, "sandbox %s has run %u jobs, the most one sandbox can "
			    "(job ids are never reused)", s->node.name, SBX_JOB_ID_MAX);
		goto out;
	}
	unsigned kept = 0;
	for (struct sbx_job *k = s->jobs; k; k = k->next)
		kept++;
	if (s->eng->o.max_jobs && kept >= s->eng->o.max_jobs) {
		/* Each job keeps a dir and its output on the host until it is removed. */
		r = err_set(&e, -EAGAIN, "sandbox %s keeps %u jobs, the most one sandbox may "
			    "(--max-jobs); remove finished ones (rmdir jobs/N) to run more",
			    s->node.name, kept);
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
	j->pipe[0] = j->pipe[1] = -1;
	j->tty_index = -1;
	snprintf(j->reason, sizeof(j->reason), "-");
	snprintf(j->cmd, sizeof(j->cmd), "%s", c->full + c->cmd_at);
	job_dir(s, j->n, dir, sizeof(dir));
	if ((r = last_id_save(s, j->n, &e)) < 0)
		goto out;
	if ((r = mkdir_p(dir, 0700)) < 0) {
		err_set(&e, r, "cannot create %s: %s", dir, strerror(-r));
		goto out;
	}
	cg_oom_kills(&s->vm.cg, &j->oom_at_start);
	r = job_warm_fits(s, c) ? job_warm(s, j, c, &in_w, &e) : job_cold(s, j, c, fds, &in_w, &e);
	if (r < 0)
		goto out;
	if (ro->timeout_ms) {
		j->deadline_usec = now_usec() + ro->timeout_ms * 1000;
		sbx_cmd_deadline(s, j->deadline_usec);
	}
	for (int k = 0; k < 2; k++)
		if (j->pipe[k] >= 0 && (r = out_pump_arm(j->pipe[k], out_key_job(s->node.id, j->n, k),
							 true)) < 0)
			log_warn("sandbox %s: job %u: its output cannot be drained (%s)", s->node.name,
				 j->n, strerror(-r));
	r = 0;
	/* Nonblocking (a terminal's master is already): a write takes what the
	 * pipe has room for, never waits (sbx_job_stdin_try); the end is the
	 * daemon's alone. */
	int fl = fcntl(in_w, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(in_w, F_SETFL, fl | O_NONBLOCK);
	j->stdin_fd = in_w;
	in_w = -1;
	j->state = JOB_RUNNING;
	j->pid_due = true; /* until init reports it */
	j->next = s->jobs;
	s->jobs = j;
	job_journal(s, j);
	*out = j->n;
	j = NULL;
out:
	close_fds(fds, 3);
	if (in_w >= 0)
		close(in_w);
	if (j) {
		pipe_close(j, 0);
		pipe_close(j, 1);
		job_dir(s, j->n, dir, sizeof(dir));
		rm_rf(dir);
		free(j);
	}
	if (r < 0)
		sbx_fail(s, r, e.msg);
	pthread_mutex_unlock(&s->lock);
	free(c);
	return r;
}

uint64_t sbx_jobs_expire(struct sbx *s, uint64_t now)
{
	uint64_t next = 0;
	for (struct sbx_job *j = s->jobs; j; j = j->next) {
		if (j->state != JOB_RUNNING || !sbx_deadline_passed(&j->deadline_usec, now, &next))
			continue;
		j->timed_out = true;
		log_info("sandbox %s: job %u: timeout= reached, killed", s->node.name, j->n);
		s->ops->exec_kill(&s->vm, j->exec_id, SIGKILL);
	}
	return next;
}

static void bound_stream(struct sbx *s, struct sbx_job *j, int stream);

/* Output of a job that exited: what it wrote is in its pipe by then. */
#define DRAIN_ALL_BYTES (4u << 20)

/* With s->lock held: moves up to len bytes from stream k's pipe to the end
 * of its file (fd). splice takes a byte from the pipe only once it is in the
 * file: a daemon killed here loses none. What cannot be stored (no room on
 * the host, or past joblog= where the front cannot be dropped) is read and
 * dropped: never stored, it is never there for a reader either, and the job
 * goes on. Bytes taken, 0 at the pipe's end, or -errno (-EAGAIN: empty). */
/* A terminal's output (its master): read, then appended to stdout, within
 * joblog= (a daemon killed in between loses what it read). The master's
 * end, once no process holds the slave, is EIO. */
static ssize_t tty_take(struct sbx *s, struct sbx_job *j, int fd, size_t len)
{
	char buf[16 << 10];
	struct stat st;
	ssize_t n = read(j->pipe[0], buf, len < sizeof(buf) ? len : sizeof(buf));
	if (n <= 0)
		return n == 0 || errno == EIO ? 0 : -errno;
	if (fd < 0 || fstat(fd, &st) < 0 ||
	    (j->capped[0] && (uint64_t)st.st_size >= s->cfg.joblog_bytes))
		return n;
	if (pwrite(fd, buf, (size_t)n, st.st_size) != n && !j->lost[0]) {
		j->lost[0] = true;
		log_warn("sandbox %s: job %u: terminal output lost: %s", s->node.name, j->n,
			 strerror(errno));
	}
	return n;
}

static ssize_t stream_take(struct sbx *s, struct sbx_job *j, int k, int fd, size_t len)
{
	char sink[16 << 10];
	struct stat st;
	if (j->tty)
		return tty_take(s, j, fd, len);
	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    !(j->capped[k] && (uint64_t)st.st_size >= s->cfg.joblog_bytes)) {
		loff_t at = st.st_size;
		ssize_t n = splice(j->pipe[k], NULL, fd, &at, len, SPLICE_F_NONBLOCK);
		if (n >= 0 || errno == EAGAIN || errno == EINTR)
			return n >= 0 ? n : -errno;
		if (!j->lost[k]) {
			j->lost[k] = true;
			log_warn("sandbox %s: job %u: %s output lost: %s", s->node.name, j->n,
				 k ? "stderr" : "stdout", strerror(errno));
		}
	}
	ssize_t n = read(j->pipe[k], sink, len < sizeof(sink) ? len : sizeof(sink));
	return n >= 0 ? n : -errno;
}

/* With s->lock held: moves up to budget bytes from stream k's pipe into its
 * file, within joblog=. At its end (no writer left, or a read error) the
 * pipe is closed; false then. */
static bool pipe_drain(struct sbx *s, struct sbx_job *j, int k, size_t budget)
{
	enum { CHUNK = 64 << 10 };
	char path[PATH_MAX + 32];
	stream_path(s, j->n, k, path, sizeof(path));
	/* No O_APPEND (splice refuses it): the daemon is the file's only writer. */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	bool open_end = true;
	while (budget > 0) {
		ssize_t n = stream_take(s, j, k, fd, budget < CHUNK ? budget : CHUNK);
		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			open_end = false;
			break;
		}
		budget -= (size_t)n;
		bound_stream(s, j, k);
	}
	if (fd >= 0)
		close(fd);
	if (!open_end) {
		pipe_close(j, k);
		j->pipe_ino[k] = 0;
		job_journal(s, j);
	}
	return open_end;
}

/* With s->lock held: whatever the job's pipes hold now goes to its files. */
static void job_drain(struct sbx *s, struct sbx_job *j)
{
	for (int k = 0; k < 2; k++)
		if (j->pipe[k] >= 0 && pipe_drain(s, j, k, DRAIN_ALL_BYTES))
			out_pump_arm(j->pipe[k], out_key_job(s->node.id, j->n, k), false);
}

void sbx_job_pump(struct engine *eng, uint64_t sbx_id, uint32_t n, int stream)
{
	struct sbx *s = sbx_get_id(eng, sbx_id);
	if (!s)
		return; /* going: its pipes close with it */
	pthread_mutex_lock(&s->lock);
	struct sbx_job *j = job_find(s, n);
	if (j && j->pipe[stream] >= 0 && pipe_drain(s, j, stream, OUT_PUMP_BUDGET_BYTES))
		out_pump_arm(j->pipe[stream], out_key_job(sbx_id, n, stream), false);
	pthread_mutex_unlock(&s->lock);
	sbx_put(s);
}

/* With s->lock held: init reported a pid or an exit for exec_id. */
/* Killed for memory: by SIGKILL (itself, or its command under `sh -c`,
 * which then exits 137) while the sandbox's OOM kills rose. */
static bool oom_ended(const struct vmm_event *ev, bool oom_rose)
{
	return oom_rose && (ev->signal == SIGKILL || (!ev->signal && ev->exit_code == 128 + SIGKILL));
}

bool sbx_job_event(struct sbx *s, const struct vmm_event *ev)
{
	for (struct sbx_job *j = s->jobs; j; j = j->next) {
		if (j->exec_id != ev->exec_id || j->state != JOB_RUNNING)
			continue;
		if (ev->kind == VMM_EV_EXEC_PID) {
			j->pid = ev->pid;
			j->pid_due = false;
			if (tty_in_sandbox(s, j) && ev->tty >= 0)
				j->tty_index = ev->tty;
			waiters_kick(s->node.id, WAKE_JOB, j->n); /* reads of pid wait for it */
		} else {
			uint64_t oom_kills;
			cg_oom_kills(&s->vm.cg, &oom_kills);
			j->exit_code = ev->exit_code;
			j->state = ev->signal ? JOB_KILLED : JOB_EXITED;
			snprintf(j->reason, sizeof(j->reason), "%s",
				 j->timed_out ? "timeout"
				 : ev->lost ? "lost"
				 : oom_ended(ev, oom_kills > j->oom_at_start) ? "oom"
				 : !ev->signal ? "exit" : "signal");
			if (j->stdin_fd >= 0)
				close(j->stdin_fd);
			j->stdin_fd = -1;
			/* Stored before it shows as ended: a read at the end then is EOF. */
			job_drain(s, j);
			for (int k = 0; k < 2; k++) /* a fast job may end between two checks */
				bound_stream(s, j, k);
			job_settled(s, j);
			pthread_cond_broadcast(&s->cond);
			sbx_warm_next(s);
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
		job_drain(s, j); /* its writers are gone: the rest, then the pipes' end */
		if (j->pipe_ino[0] || j->pipe_ino[1]) { /* none comes back with another init */
			for (int k = 0; k < 2; k++) {
				pipe_close(j, k);
				j->pipe_ino[k] = 0;
			}
			job_journal(s, j);
		}
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

int sbx_job_pid_try(struct sbx *s, uint32_t n, bool final, int *pid, struct sbx_wake *wk)
{
	pthread_mutex_lock(&s->lock);
	struct sbx_job *j = job_find(s, n);
	int r = j ? 0 : -ENOENT;
	if (j && j->pid_due && j->state == JOB_RUNNING && !final) {
		*wk = (struct sbx_wake){.eng = s->eng, .sbx = s->node.id, .kind = WAKE_JOB, .sub = n,
					.fd = -1};
		r = -EAGAIN;
	}
	*pid = j ? j->pid : 0;
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

/* With s->lock held (a drop from the front moves the file's bytes): up to
 * size bytes of stream k at offset off, read through fd. Offsets count every
 * byte the stream ever had. A read below the first byte kept starts at that
 * byte, and the reader's skew grows by the distance: its later offsets are
 * moved on by as much, so a reader never sees a byte twice nor one that was
 * never written (skew NULL: for this read only). */
static ssize_t stream_pread(const struct sbx_job *j, int k, int fd, char *buf, size_t size,
			    uint64_t off, uint64_t *skew)
{
	uint64_t moved = skew ? __atomic_load_n(skew, __ATOMIC_RELAXED) : 0, pos = off + moved;
	if (pos < j->dropped[k]) {
		moved += j->dropped[k] - pos;
		pos = j->dropped[k];
		if (skew)
			__atomic_store_n(skew, moved, __ATOMIC_RELAXED);
	}
	ssize_t got = pread(fd, buf, size, (off_t)(pos - j->dropped[k]));
	return got < 0 ? -errno : got;
}

ssize_t sbx_job_read_try(struct sbx *s, uint32_t n, int stream, char *buf, size_t size,
			 off_t off, uint64_t *skew, struct sbx_wake *wk)
{
	char path[PATH_MAX + 32];
	stream_path(s, n, stream, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&s->lock);
	struct sbx_job *j = job_find(s, n);
	bool running = j && j->state == JOB_RUNNING;
	/* Watched before the read: output written after it fires the watch. */
	bool watched = running && wk && watch_stream(s, j, stream);
	ssize_t got = j ? stream_pread(j, stream, fd, buf, size, (uint64_t)off, skew) : -ENOENT;
	pthread_mutex_unlock(&s->lock);
	close(fd);
	if (got == 0 && running && size > 0) {
		got = -EAGAIN;
		/* An unwatched stream (no inotify) is looked at again every 50 ms. */
		if (wk)
			*wk = (struct sbx_wake){.eng = s->eng, .sbx = s->node.id, .kind = WAKE_JOB,
						.sub = n, .fd = -1, .poll_ms = watched ? 0 : 50};
	}
	return got;
}

ssize_t sbx_job_read(struct sbx *s, uint32_t n, int stream, char *buf, size_t size, off_t off,
		     bool nonblock, const struct sbx_cancel *c)
{
	for (;;) {
		/* The sequence before the look: a watch that fires after it moves it. */
		pthread_mutex_lock(&s->lock);
		struct sbx_job *j = job_find(s, n);
		uint64_t seq = j ? j->out_seq : 0;
		pthread_mutex_unlock(&s->lock);
		struct sbx_wake wk = {.fd = -1};
		ssize_t got = sbx_job_read_try(s, n, stream, buf, size, off, NULL,
					       nonblock ? NULL : &wk);
		if (got != -EAGAIN)
			return got;
		if (nonblock)
			return 0;
		if (c && c->fn(c->arg))
			return -EINTR;
		wait_output(s, n, seq, wk.poll_ms ? 50000 : 100000);
	}
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

ssize_t sbx_job_stdin_try(struct sbx *s, uint32_t n, const char *buf, size_t len, int *fd,
			  struct sbx_wake *wk)
{
	if (*fd < 0) {
		pthread_mutex_lock(&s->lock);
		struct sbx_job *j = job_find(s, n);
		int d = j && j->stdin_fd >= 0 ? fcntl(j->stdin_fd, F_DUPFD_CLOEXEC, 3) : -1;
		int r = !j ? -ENOENT : d < 0 ? -EPIPE : 0;
		if (r == -EPIPE)
			sbx_fail(s, r, j->tty && j->state == JOB_RUNNING
					       ? "the job's terminal was lost with the daemon that started it"
					       : "the job's stdin is closed");
		pthread_mutex_unlock(&s->lock);
		if (r < 0)
			return r;
		*fd = d; /* nonblocking: a pipe's made so, a terminal's master is */
	}
	if (!len)
		return 0;
	ssize_t w = write(*fd, buf, len);
	if (w >= 0)
		return w;
	int r = errno == EINTR ? -EAGAIN : -errno;
	if (r == -EAGAIN && wk) {
		*wk = (struct sbx_wake){.eng = s->eng, .sbx = s->node.id, .kind = WAKE_JOB, .sub = n,
					.fd = *fd, .out = true};
	} else if (r == -EPIPE) {
		char why[96];
		snprintf(why, sizeof(why), "job %u reads its stdin no more (it closed it, or ended)", n);
		pthread_mutex_lock(&s->lock);
		sbx_fail(s, r, why);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

/* resize COLSxROWS: the terminal's new size, and SIGWINCH to its foreground
 * group (the kernel sends it). With s->lock held. */
static int tty_resize(struct sbx *s, struct sbx_job *j, const char *arg, struct err *e)
{
	struct ctl_winsize ws;
	int r = ctl_parse_winsize(arg, &ws, e);
	if (r < 0)
		return r;
	if (!j->tty)
		return err_set(e, -EINVAL, "job %u has no terminal (run it with tty=COLSxROWS)", j->n);
	if (j->state != JOB_RUNNING)
		return err_set(e, -EBUSY, "job %u is %s", j->n, job_states[j->state]);
	if (tty_in_sandbox(s, j))
		return s->ops->tty_ctl(&s->vm, j->exec_id, ws.cols, ws.rows, e);
	if (j->stdin_fd < 0)
		return err_set(e, -EPIPE, "job %u's terminal was lost with the daemon that started it",
			       j->n);
	struct winsize w = {.ws_row = ws.rows, .ws_col = ws.cols};
	if (ioctl(j->stdin_fd, TIOCSWINSZ, &w) < 0)
		return err_set(e, -errno, "cannot resize job %u's terminal: %s", j->n, strerror(errno));
	return 0;
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
		else if ((r = s->ops->exec_kill(&s->vm, j->exec_id, sig)) < 0)
			err_set(&e, r, "cannot signal job %u: %s", n, strerror(-r));
	} else if (!strcmp(cmd.argv[0], "eof") && cmd.argc == 1 && tty_in_sandbox(s, j)) {
		/* The sandbox's terminal writes its own end-of-file character. */
		r = j->state != JOB_RUNNING
			    ? err_set(&e, -EBUSY, "job %u is %s", n, job_states[j->state])
			    : s->ops->tty_ctl(&s->vm, j->exec_id, 0, 0, &e);
	} else if (!strcmp(cmd.argv[0], "eof") && cmd.argc == 1 && j->tty) {
		/* A terminal has no end of input but its EOF character: ^D. */
		/* One byte, never waited for (the master is nonblocking). */
		ssize_t w = j->stdin_fd < 0 ? -1 : write(j->stdin_fd, "\x04", 1);
		if (w != 1 && j->stdin_fd >= 0 && errno == EAGAIN)
			r = err_set(&e, -EAGAIN, "job %u's terminal has no room for its ^D now (the "
				    "job reads no input)", n);
		else if (w != 1)
			r = err_set(&e, -EPIPE, "job %u's terminal takes no input", n);
	} else if (!strcmp(cmd.argv[0], "eof") && cmd.argc == 1) {
		if (j->stdin_fd >= 0)
			close(j->stdin_fd);
		j->stdin_fd = -1;
	} else if (!strcmp(cmd.argv[0], "resize") && cmd.argc == 2) {
		r = tty_resize(s, j, cmd.argv[1], &e);
	} else {
		r = err_set(&e, -EINVAL, "unknown job command '%.64s' (kill [SIGNAL], eof, "
			    "resize COLSxROWS)", cmd.argv[0]);
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
		/* A background process of the job may still write: its output now
		 * goes nowhere, without holding it up. */
		for (int k = 0; k < 2; k++)
			if (j->pipe[k] >= 0) {
				out_pump_discard(j->pipe[k]); /* the pump's now */
				j->pipe[k] = -1;
			}
		char d[PATH_MAX];
		job_dir(s, n, d, sizeof(d));
		rm_rf(d);
		free(j);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* With s->lock held: drops whole blocks from the front of stream k past
 * joblog= (about half of it stays) and counts them in dropped; stderr gets a
 * note. The drop is journaled before it is made (cutting, cut_from), so a
 * daemon that dies in between finds out from the file's size which of the
 * two is true (drop_settle). Where the front cannot be dropped (tmpfs), the
 * stream is capped: new output past joblog= is dropped instead (pipes). */
static void bound_stream(struct sbx *s, struct sbx_job *j, int stream)
{
	char path[PATH_MAX + 32], note[160];
	struct stat st;
	uint64_t limit = s->cfg.joblog_bytes;
	stream_path(s, j->n, stream, path, sizeof(path));
	if (!limit || j->capped[stream] || stat(path, &st) < 0 || (uint64_t)st.st_size <= limit)
		return;
	int fd = open(path, O_RDWR | O_CLOEXEC), n = 0;
	uint64_t cut = fd >= 0 && fstat(fd, &st) == 0
			       ? out_front_cut((uint64_t)st.st_size, (uint64_t)st.st_blksize, limit)
			       : 0;
	if (cut == 0)
		goto out;
	j->cutting[stream] = cut;
	j->cut_from[stream] = (uint64_t)st.st_size;
	job_journal(s, j);
	int r = fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)cut) < 0 ? -errno : 0;
	j->cutting[stream] = 0;
	if (r == 0) {
		j->dropped[stream] += cut;
		n = snprintf(note, sizeof(note), "[sandboxfs: %" PRIu64 " bytes of older %s dropped "
			     "(joblog=%" PRIu64 ")]\n", cut, stream ? "stderr" : "stdout", limit);
	} else {
		j->capped[stream] = true;
		log_warn("sandbox %s: job %u: cannot drop old output (%s): output past joblog= is "
			 "dropped instead", s->node.name, j->n, strerror(-r));
		n = snprintf(note, sizeof(note), "[sandboxfs: %s past joblog=%" PRIu64 " is dropped: "
			     "this file system cannot drop older output]\n",
			     stream ? "stderr" : "stdout", limit);
	}
	stream_path(s, j->n, 1, path, sizeof(path));
	int efd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (efd < 0 || write(efd, note, (size_t)n) < 0)
		log_warn("sandbox %s: job %u: cannot note dropped output", s->node.name, j->n);
	if (efd >= 0)
		close(efd);
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

/* A drop that was journaled but maybe not made when the daemon died: the
 * file's size says (nobody writes it while no daemon runs). */
static void drop_settle(struct sbx *s, struct sbx_job *j, int k)
{
	char path[PATH_MAX + 32];
	struct stat st;
	stream_path(s, j->n, k, path, sizeof(path));
	if (stat(path, &st) == 0 && (uint64_t)st.st_size < j->cut_from[k])
		j->dropped[k] += j->cutting[k];
	j->cutting[k] = j->cut_from[k] = 0;
}

/* Job n from its job.json, checked by journal_job_parse (s->lock held). */
static void job_load(struct sbx *s, uint32_t n, const struct journal_job *r)
{
	struct sbx_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->n = n;
	j->pid = r->pid;
	j->exit_code = r->exit_code;
	snprintf(j->cmd, sizeof(j->cmd), "%s", r->cmd);
	snprintf(j->reason, sizeof(j->reason), "%s", r->reason);
	j->state = r->state == JOURNAL_JOB_RUNNING ? JOB_RUNNING
		   : r->state == JOURNAL_JOB_KILLED ? JOB_KILLED : JOB_EXITED;
	j->stdin_fd = -1;
	j->wd[0] = j->wd[1] = -1;
	j->tty = r->tty >= 0;
	j->tty_index = r->tty;
	if (r->deadline_unix_usec && j->state == JOB_RUNNING) { /* its timeout= holds on */
		uint64_t wall = wall_usec();
		j->deadline_usec = now_usec() +
				   (r->deadline_unix_usec > wall ? r->deadline_unix_usec - wall : 0) + 1;
		sbx_cmd_deadline(s, j->deadline_usec);
	}
	for (int k = 0; k < 2; k++) {
		j->dropped[k] = r->dropped[k];
		j->pipe[k] = -1; /* found again by sbx_jobs_reattach */
		j->pipe_ino[k] = r->pipe_ino[k];
		j->cutting[k] = r->cutting[k];
		j->cut_from[k] = r->cut_from[k];
		if (j->cutting[k])
			drop_settle(s, j, k);
	}
	/* Its id as the sandbox's init (or agent) knows it: an exit reported
	 * after the restart still finds the job. */
	j->exec_id = r->exec_id;
	/* New ids never meet an old one (init may still report those). */
	if (s->next_exec_id <= j->exec_id)
		s->next_exec_id = j->exec_id + 1;
	j->next = s->jobs;
	s->jobs = j;
}

/* Daemon restart: every job on disk comes back from its job.json, whatever
 * the gaps between ids, and new ids go on past the highest ever given
 * (s->lock held). */
void sbx_jobs_load(struct sbx *s)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/jobs", s->vm.dir);
	uint32_t last = last_id_load(s);
	if (last > s->next_job)
		s->next_job = last;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		unsigned long n = strtoul(de->d_name, &end, 10);
		if (de->d_name[0] < '1' || de->d_name[0] > '9' || *end)
			continue; /* ".", "last", a temp file */
		if (n > SBX_JOB_ID_MAX) {
			log_warn("sandbox %s: %s/%s is past the highest job id (%u); not loaded",
				 s->node.name, dir, de->d_name, SBX_JOB_ID_MAX);
			continue;
		}
		if (n > s->next_job)
			s->next_job = (uint32_t)n;
		if (job_find(s, (uint32_t)n))
			continue;
		snprintf(path, sizeof(path), "%s/%lu/job.json", dir, n);
		struct err e = {0};
		char *text = NULL;
		size_t len = 0;
		struct journal_job rec;
		if (journal_load_text(path, JOB_JSON_MAX_BYTES, &text, &len, &e) == 0 &&
		    journal_job_parse(text, len, &rec, &e) == 0)
			job_load(s, (uint32_t)n, &rec);
		else if (access(path, F_OK) == 0)
			log_warn("sandbox %s: %s is not a job's record (%s); job %lu not loaded "
				 "(files kept)", s->node.name, path, e.msg, n);
		free(text);
	}
	closedir(d);
}

/* A restarted daemon's way back to a job's pipe (ns): the read end init
 * keeps, found by the pipe's inode in init's fd table. */
static int pipe_take(const char *path, int num, const struct stat *st, void *arg)
{
	(void)num;
	if (!S_ISFIFO(st->st_mode) || (uint64_t)st->st_ino != *(const uint64_t *)arg)
		return -ENOENT;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static int pipe_find(pid_t init, uint64_t ino)
{
	return vmm_proc_fd_find(init, pipe_take, &ino);
}

/* After a re-adoption (s->lock held): the master of a terminal that was
 * open when the earlier daemon died, from init, which held it meanwhile
 * (the job waited for room in it); a running job's stdin and size work
 * again. Not found: the job ended and init let it go once it was read. */
static int tty_find(struct sbx *s, struct sbx_job *j)
{
	int fd = s->ops->pty_find ? s->ops->pty_find(&s->vm, j->tty_index) : -ENOENT;
	if (fd >= 0 && j->state == JOB_RUNNING && j->stdin_fd < 0)
		j->stdin_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (fd >= 0)
		log_info("sandbox %s: job %u: its terminal (/dev/pts/%d) is back", s->node.name, j->n,
			 j->tty_index);
	return fd;
}

/* After a re-adoption (s->lock held): the pipes of jobs that write their own
 * output (ns) are drained again from where they are; no byte was lost, the
 * jobs waited for room in them meanwhile. */
static void jobs_repipe(struct sbx *s)
{
	for (struct sbx_job *j = s->jobs; j; j = j->next) {
		bool changed = false;
		for (int k = 0; k < 2; k++) {
			if (!j->pipe_ino[k] || j->pipe[k] >= 0)
				continue;
			int fd = j->tty && k == 0 ? tty_find(s, j) : pipe_find(s->vm.pid, j->pipe_ino[k]);
			if (fd >= 0 && out_pump_arm(fd, out_key_job(s->node.id, j->n, k), true) == 0) {
				j->pipe[k] = fd;
				continue;
			}
			if (fd >= 0)
				close(fd);
			/* init let it go: empty, with no writer left; nothing is missing */
			j->pipe_ino[k] = 0;
			changed = true;
		}
		if (changed)
			job_journal(s, j);
	}
}

/* After a re-adoption (s->lock held): running jobs whose output passes
 * through the daemon (qemu) are attached again from where their files end. */
void sbx_jobs_reattach(struct sbx *s)
{
	if (job_writes_itself(s))
		jobs_repipe(s);
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
		close_fds(fds, 2);
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
		pipe_close(j, 0);
		pipe_close(j, 1);
		if (job_unwatch(s->eng, j))
			engine_notify_job(s->eng, s->node.id, j->n); /* its pollers see it gone */
		free(j);
	}
}
