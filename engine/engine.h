/* The engine's interface to the FUSE layer: find sandboxes, create and
 * remove them, run ctl commands, and generate file content. fs/ includes
 * only engine headers. */
#ifndef SBX_ENGINE_H
#define SBX_ENGINE_H

#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "ids.h"
#include "waiters.h"

struct engine;
struct sbx;
struct sbx_exec;
struct sbx_files;

/* A blocking in-process read (sbx_job_read) asks fn(arg) now and then; true
 * (the reader was interrupted, e.g. killed) ends it with -EINTR. */
struct sbx_cancel {
	bool (*fn)(void *arg);
	void *arg;
};

struct engine_opts {
	char state_dir[PATH_MAX];
	char images_dir[PATH_MAX];
	char init_path[PATH_MAX];
	char backend[16];
	bool stop_on_exit;
	int workers;
	unsigned long max_sandboxes; /* 0: no limit */
	uint64_t disk_bytes;   /* disk= of an ns create that names none (--disk); 0: none */
	unsigned max_jobs;     /* jobs one sandbox may keep (--max-jobs) */
	bool net;          /* bridged networking (off: --no-net) */
	bool nat;          /* egress NAT (--nat) */
	bool egress_deny;  /* --egress deny: sandboxes reach nothing outside unless allowed */
	char dns[32];      /* --dns IP[:PORT]: the upstream of the gateway's DNS; "" off */
	char bridge[16];
	char subnet[32];
	char accel[8];     /* qemu: auto, kvm or tcg (--accel, SANDBOXFS_ACCEL) */
	unsigned qemu_spares; /* qemu: QEMUs a forked VM keeps started ahead (--qemu-spares) */
};

/* Host checks that must pass before the mount (the daemon is still in the
 * foreground and single-threaded): the qemu backend's accelerator. */
int engine_probe(const struct engine_opts *o, struct err *e);
/* The engine's context object (context.h), before anything starts: the FUSE
 * layer sets its watches on it, starts it, and passes it to every entry
 * point below that has no sandbox. NULL: out of memory. It lives until the
 * daemon exits. */
struct engine *engine_new(void);
int engine_start(struct engine *eng, const struct engine_opts *o, struct err *e);
/* --dns's value: IPv4 address, optional :PORT (default 53). */
int engine_parse_dns(const char *s, struct in_addr *ip, uint16_t *port, struct err *e);
/* Map entries the DNS forwarder's answers made (all sandboxes), for /sbx/stats. */
uint64_t engine_dns_learned(struct engine *eng);
/* Daemon exit: stops sandboxes if asked (--stop-on-exit), never removes them. */
void engine_shutdown(struct engine *eng);
/* Every thread that calls into the engine does this first (idempotent). */
void engine_thread_online(void);

/* Lookups return a pinned sandbox (or NULL); release with sbx_put. */
struct sbx *sbx_get(struct engine *eng, const char *name);
struct sbx *sbx_get_id(struct engine *eng, uint64_t id);
void sbx_put(struct sbx *s);
uint64_t sbx_id(const struct sbx *s);
const char *sbx_name(const struct sbx *s);
uint64_t sbx_created_wall_usec(const struct sbx *s);

/* Names and ids of all sandboxes, a snapshot for readdir; free both arrays. */
int engine_list(struct engine *eng, char (**names)[64], uint64_t **ids, size_t *n);

/* mkdir: validate, reserve, journal, queue the start. Returns a pinned sandbox. */
int engine_mkdir(struct engine *eng, const char *name, struct sbx **out);
/* rmdir: stops if needed and removes every trace. */
int engine_rmdir(struct engine *eng, const char *name);
/* A write to /sbx/ctl or /sbx/NAME/ctl: one command. */
int engine_ctl(struct engine *eng, const char *buf, size_t len);
int sbx_ctl(struct sbx *s, const char *buf, size_t len);

/* File content, generated once per open. */
int engine_show_stats(struct engine *eng, struct buf *b);
int engine_show_error(struct engine *eng, struct buf *b);
int engine_show_events(struct engine *eng, struct buf *b);
int sbx_show_status(struct sbx *s, struct buf *b);
int sbx_show_stats(struct sbx *s, struct buf *b);
int sbx_show_config(struct sbx *s, struct buf *b);
int sbx_show_events(struct sbx *s, struct buf *b);
int sbx_show_error(struct sbx *s, struct buf *b);
int sbx_show_log(struct sbx *s, struct buf *b);
int sbx_show_net(struct sbx *s, struct buf *b);

/* exec: one command session per open handle (see README). */
int sbx_exec_open(struct sbx *s, struct sbx_exec **out);
int sbx_exec_write(struct sbx_exec *x, const char *buf, size_t len);
/* Never blocks: the output, 0 at its end (the pipe's, or the command's exit:
 * what was in the pipe then is the rest), then "exit_code N", then 0. -EAGAIN:
 * nothing yet; wk says what to wait for (waiter_park). */
ssize_t sbx_exec_read_try(struct sbx_exec *x, char *buf, size_t size, struct sbx_wake *wk);
void sbx_exec_close(struct sbx_exec *x);
/* Whether a command was started through this session. */
bool sbx_exec_started(struct sbx_exec *x);

/* files: one request per open handle, on the sandbox's files (see README
 * and ctl.h's ctl_files_request). A write is the request line (put: then
 * its data); a failed one leaves the sentence in error. Neither a write
 * nor a read blocks: -EAGAIN when the sandbox serves the request (qemu)
 * and what the call waits for has not come (a write: the request's answer,
 * a put's rename after its last bytes; a read: a get's bytes): wk says
 * what to wait for (waiter_park: the backend's wake, or the request's
 * deadline). A write that said -EAGAIN is looked at again with again set
 * (buf unused) until it says anything else; another write meanwhile is
 * EBUSY. A read gives the file's bytes (get) or the answer, 0 at its end.
 * readable: a read would not say -EAGAIN (poll). On ns nothing says -EAGAIN. */
int sbx_files_open(struct sbx *s, struct sbx_files **out);
int sbx_files_write_try(struct sbx_files *f, const char *buf, size_t len, bool again,
			struct sbx_wake *wk);
ssize_t sbx_files_read_try(struct sbx_files *f, char *buf, size_t size, struct sbx_wake *wk);
bool sbx_files_readable(struct sbx_files *f);
bool sbx_files_started(struct sbx_files *f);
void sbx_files_close(struct sbx_files *f);

/* Change notification for poll: fn(id, false) runs on every state change of
 * sandbox id, and with id 0 when a sandbox appears or goes; fn(id, true) when
 * sandbox id went other than by an rmdir (the kernel still holds its name). */
void engine_set_watch(struct engine *eng, void (*fn)(uint64_t id, bool gone));
/* For poll on a job's stdout/stderr: fn(id, n) runs when job n of sandbox id
 * has new output on a watched stream (see sbx_job_poll), ends, or goes. */
void engine_set_job_watch(struct engine *eng, void (*fn)(uint64_t sbx_id, uint32_t job));
/* For poll on NAME/files: fn(id) runs when a get of sandbox id served by the
 * sandbox (qemu) may have something new to read; from the backend's thread,
 * under its locks (fn only wakes pollers). */
void engine_set_files_watch(struct engine *eng, void (*fn)(uint64_t sbx_id));
uint64_t engine_generation(struct engine *eng);
uint64_t sbx_generation(struct sbx *s);
/* A wait handle's look (fs/sandbox.c): 1 when s shows state `want` ("any":
 * its generation moved past gen), 0 not yet; -EIO when it failed and failed
 * is not what is awaited, with e's sentence saying why. */
int sbx_wait_reached(struct sbx *s, const char *want, uint64_t gen, struct err *e);
/* A target written to a wait handle (ctl_parse_wait's `STATE [SECONDS]`):
 * want (16 bytes) and the bound of the read that follows; -EINVAL with the
 * sentence in s's error. */
int sbx_wait_parse(struct sbx *s, const char *buf, size_t len, char *want, uint64_t *ms);
/* `root`: the target of the symlink (the sandbox's root seen from the host). */
int sbx_root_link(struct sbx *s, struct buf *b);
int engine_show_metrics(struct engine *eng, struct buf *b);
/* Counts an errno returned to a user (write, mkdir, rmdir...), for metrics. */
void engine_count_error(struct engine *eng, int err);
/* The requests the file interface answers, by kind, counted for metrics:
 * what a command costs in round trips (tests/integration/fscache.bats). */
enum engine_fop {
	FOP_LOOKUP, FOP_GETATTR, FOP_SETATTR, FOP_OPEN, FOP_READ, FOP_WRITE, FOP_RELEASE,
	FOP_OPENDIR, FOP_READDIR, FOP_RELEASEDIR, FOP_POLL, FOP_OTHER, FOP_N
};
void engine_count_fop(struct engine *eng, enum engine_fop op);

/* Named checkpoints (/sbx/NAME/snapshots/SNAP/). */
int sbx_snapshot_create(struct sbx *s, const char *name, uint32_t *seq);
int sbx_snapshot_remove(struct sbx *s, const char *name);
int sbx_snapshot_list(struct sbx *s, char (**names)[64], uint32_t **seqs, size_t *n);
int sbx_snapshot_lookup(struct sbx *s, const char *name, uint32_t *seq);
bool sbx_snapshot_exists(struct sbx *s, uint32_t seq);

/* Background jobs (/sbx/NAME/run, /sbx/NAME/jobs/N/). */
int sbx_job_start(struct sbx *s, const char *buf, size_t len, uint32_t *n);
bool sbx_job_exists(struct sbx *s, uint32_t n);
int sbx_job_list(struct sbx *s, uint32_t **ns, size_t *cnt);
int sbx_job_show(struct sbx *s, uint32_t n, const char *field, struct buf *b);
/* Job n's pid in *pid; never blocks. While a job this daemon started runs
 * and its sandbox has not reported the pid yet (a moment after the start):
 * -EAGAIN, and wk says to wait for that report or the job's end; final: the
 * pid as it is (0). A job read back from its journal without a pid: 0. */
int sbx_job_pid_try(struct sbx *s, uint32_t n, bool final, int *pid, struct sbx_wake *wk);
/* Offset read of stream (0 stdout, 1 stderr); never blocks. At the end of a
 * running job's stream: -EAGAIN, and with wk set, the stream is watched first
 * (output or the end that comes after this look calls the job watch) and wk
 * says what to wait for. Offsets count every byte the stream had, dropped
 * ones too (joblog=); *skew belongs to the open file (0 at open): a read
 * below the first byte kept starts there and adds the distance to *skew, by
 * which the file's later reads are moved on, so no byte is read twice. Its
 * poll looks past (furthest offset read + *skew). NULL: this read only. */
ssize_t sbx_job_read_try(struct sbx *s, uint32_t n, int stream, char *buf, size_t size,
			 off_t off, uint64_t *skew, struct sbx_wake *wk);
/* The same, waiting at the end while the job runs (nonblock: 0 there). It
 * holds the calling thread: for in-process callers and tests, never FUSE. */
ssize_t sbx_job_read(struct sbx *s, uint32_t n, int stream, char *buf, size_t size, off_t off,
		     bool nonblock, const struct sbx_cancel *c);
/* True when a read of stream (0 stdout, 1 stderr) at logical offset off would
 * not wait: there is output past off, or the job is over or gone. Otherwise the
 * stream is watched from now on, so that new output or the end calls the job watch. */
bool sbx_job_poll(struct sbx *s, uint32_t n, int stream, uint64_t off);
/* One look at job n's stdin that never blocks: the bytes its pipe or
 * terminal takes now (a short write; 0 only for len 0), or -EAGAIN when it
 * has no room and wk says to wait for *fd to take bytes. *fd is the
 * caller's: -1 at the first look, which opens it (a dup of the job's
 * stdin), kept across the looks of one write and closed by the caller, so
 * that a write under way holds the job's stdin open as a writer blocked in
 * write(2) would. Errors leave a sentence (sbx_fail). */
ssize_t sbx_job_stdin_try(struct sbx *s, uint32_t n, const char *buf, size_t len, int *fd,
			  struct sbx_wake *wk);
int sbx_job_ctl(struct sbx *s, uint32_t n, const char *buf, size_t len);
int sbx_job_remove(struct sbx *s, uint32_t n);

/* Records a failure that has no sandbox to hold it (shown in /sbx/error). */
void engine_note_error(struct engine *eng, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The sentence of the last failure this thread recorded (engine_note_error,
 * sbx_fail), for the one request it serves: a FUSE worker clears it before a
 * write's handler and reads it after, so that the writer's own handle can
 * give the sentence back (Plan 9's errstr) while the shared error files are
 * written by every client. "" when none. */
void engine_error_clear(void);
const char *engine_error_last(void);
/* Called by the recorders of failures: keeps line as this thread's last. */
void engine_error_keep(const char *line);

#endif
