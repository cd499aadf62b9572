/* The journal (STATE/sandboxes/NAME/sandbox.json): its writer and loader
 * (journal.c), and its format (journal_json.c): the JSON the daemon writes
 * for a sandbox's config, and the pure reader that turns that text back into
 * checked values. A journal can be tampered with, so the reader trusts
 * nothing in it; the format does no I/O, so that the unit tests and the
 * fuzz target (tests/fuzz/fuzz_journal.c) drive it directly. */
#ifndef SBX_JOURNAL_H
#define SBX_JOURNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../net/net.h"
#include "common.h"
#include "ctl.h"
#include "sandbox.h"

/* journal.c: written on every change and committed (fsynced) soon after;
 * read back at start-up. */
int journal_write(struct sbx *s);
int journal_write_in(struct sbx *s, const char *dir);
/* A state dir is made as STATE/sandboxes/.new-NAME and renamed to NAME once
 * it holds a journal; start-up removes what a dead daemon left hidden. */
#define SBX_NEW_PREFIX ".new-"
void journal_commit_soon(struct engine *eng);
/* s's journal written by the commit thread before its next sync, s->lock
 * taken there; the caller's reference to s is dropped there. */
void journal_write_later(struct sbx *s);
int journal_commit_start(struct engine *eng);
void journal_commit_stop(struct engine *eng);
int sbx_config_json(const struct sbx *s, struct buf *b);
/* A part's section of a sandbox's journal: its key and its JSON (s->lock
 * held). The parts sit above the journal, so their sections are a table the
 * engine lists (engine.c), in journal order, ended by a NULL key. */
struct journal_section {
	const char *key;
	json_t *(*json)(struct sbx *s);
};
extern const struct journal_section journal_sections[];

#define JOURNAL_VERSION 1
/* Bounds of what a journal may hold. The file: far above what the daemon
 * writes (about 2 KB, plus 200 bytes a snapshot and 60 a network rule). */
#define JOURNAL_MAX_BYTES (1 << 20)
#define JOURNAL_SNAPS_MAX 1024
#define JOURNAL_RULES_MAX 1024 /* = POL_RULES_MAX of netcfg.c, a sandbox's rules */
#define JOURNAL_REASON_MAX 16  /* = sizeof(struct sbx).reason */

/* The timings of stats, kept so a restarted daemon shows the same history. */
#define JOURNAL_TIME_FIELDS(X)                                                           \
	X(create_usec) X(create_queue_usec) X(create_rootfs_usec) X(create_cgroup_usec)  \
	X(create_spawn_usec) X(create_init_usec) X(create_journal_usec) X(stop_usec)     \
	X(create_net_usec) X(net_shaping_usec) X(fork_freeze_usec) X(fork_checkpoint_usec) \
	X(fork_restore_usec) X(fork_usec) X(restore_usec) X(standby_usec) X(claim_usec)   \
	X(claim_journal_usec)

/* A named checkpoint as journaled. */
struct journal_snap {
	char name[SBX_NAME_MAX + 1];
	uint64_t created_wall_usec;
	char lowers[SBX_LOWERS_MAX][SBX_LAYER_ID_MAX]; /* [0] is its own layer */
	int nlowers;                                   /* 1..SBX_LOWERS_MAX */
};

/* A journal read back. Every name, layer id, word and number in it passed
 * the same checks as when a user wrote it (names as ctl_check_name, sizes
 * and limits in the ranges of ctl_parse_options). */
struct journal_rec {
	int state; /* enum sbx_state, SBX_STOPPING included */
	struct sbx_config cfg;
	pid_t pid; /* 0: none */
	uint64_t pid_start;
	char reason[JOURNAL_REASON_MAX];
	int exit_code; /* -1 unknown, else 0..255 */
	char error[SBX_ERRMSG_MAX];
	uint64_t starts;
	struct sbx_times t; /* only the JOURNAL_TIME_FIELDS */
	/* Its cgroup's leaf when not <tag>-<name> (a warm pool's member keeps the
	 * cgroup it was made in once claimed); "" otherwise. */
	char cgroup[SBX_NAME_MAX + 1];
	/* config.name is a pool member's: a claim died before it journaled the
	 * sandbox's own name (journal_write_later). */
	bool member_name;
	char ip[16];        /* the network address kept, dotted quad; "" none */
	struct net_rule *rules;
	struct net_expose expose[NET_EXPOSE_MAX]; /* net.expose: exposed ports */
	size_t nexpose;
	size_t nrules;
	struct journal_snap *snaps; /* in journal order */
	size_t nsnaps;
};

/* Reads a journal's text (len bytes, no NUL needed) into r. 0, or -EINVAL
 * (-ENOMEM) with the sentence in e, naming the field at fault; on failure r
 * holds nothing to free. Unknown keys are ignored; no value is clamped or
 * truncated: one that does not fit refuses the journal. */
int journal_parse(const char *text, size_t len, struct journal_rec *r, struct err *e);
void journal_rec_free(struct journal_rec *r);

/* A job's record, jobs/N/job.json, as a restarted daemon reads it back. */
enum { JOURNAL_JOB_RUNNING, JOURNAL_JOB_EXITED, JOURNAL_JOB_KILLED };
struct journal_job {
	char cmd[CTL_WRITE_MAX + 1]; /* one line, no NUL */
	int pid;                     /* 0..4194304 */
	int state;                   /* JOURNAL_JOB_* */
	int exit_code;               /* -1 unknown, else 0..255 */
	char reason[JOURNAL_REASON_MAX];
	uint64_t exec_id;
	uint64_t dropped[2], pipe_ino[2], cutting[2], cut_from[2]; /* stdout, stderr */
	int tty; /* a terminal's job: its number in the sandbox's devpts; -1: none */
	uint64_t deadline_unix_usec; /* a running job's timeout= (wall time); 0 none */
};
/* The same contract as journal_parse: 0, or -EINVAL with the field named. */
int journal_job_parse(const char *text, size_t len, struct journal_job *r, struct err *e);
/* A journal's text from path: a regular file (never a link or a FIFO) of at
 * most max bytes; free *out. */
int journal_load_text(const char *path, size_t max, char **out, size_t *len, struct err *e);

/* The writer's side: a config as the journal and the `config` file show it,
 * and the timings. Numbers above INT64_MAX (JSON integers as jansson reads
 * them) are written as INT64_MAX. */
json_t *journal_config_json(const char *name, const struct sbx_config *c);
json_t *journal_times_json(const struct sbx_times *t);
/* net.expose: [{"proto", "port", "host_port"}...] of x[0..n). */
json_t *journal_expose_json(const struct net_expose *x, size_t n);
/* The name a state has in the journal ("stopping" for SBX_STOPPING). */
const char *journal_state_name(int state);

#endif
