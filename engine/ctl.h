/* Parsing of what users write to ctl files: one command a write, words
 * separated by blanks, options as key=value. Pure functions (no I/O), so the
 * unit tests and fuzz targets drive them directly. */
#ifndef SBX_CTL_H
#define SBX_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "common.h"

#define CTL_WRITE_MAX 4096
#define CTL_ARGS_MAX 32
#define SBX_LOWERS_MAX 8 /* = VMM_LOWERS_MAX */
#define SBX_LAYER_ID_MAX 40
/* disk=: below the minimum an ext4 has little room left for files; the
 * maximum is ext4's largest file on the host (a sparse image). */
#define SBX_DISK_MIN_BYTES (4ull << 20)
#define SBX_DISK_MAX_BYTES (16ull << 40)

struct sbx_config {
	char image[SBX_NAME_MAX + 1];
	char backend[16];
	uint64_t memory_bytes;
	uint32_t cpu_millis;
	uint32_t pids;
	bool net;
	uint32_t timeout_sec; /* 0: none */
	uint64_t joblog_bytes; /* per job stream; 0: unbounded */
	uint64_t rate_bps;     /* traffic shaping; 0: none */
	uint64_t disk_bytes;   /* the sandbox's own disk (ns); 0: none, no limit */
	char parent[SBX_NAME_MAX + 1];
	uint64_t created_wall_usec;
	/* Layers under the upper dir, nearest first (children of a fork). */
	char lowers[SBX_LOWERS_MAX][SBX_LAYER_ID_MAX];
	int nlowers;
	/* The same files as lowers, flattened into one layer (in the background,
	 * once the chain is deep): what this sandbox's own children stack on. */
	char flat[SBX_LAYER_ID_MAX];
	uint32_t fork_generation;
};

/* One command, split into words; points into `line`. */
struct ctl_cmd {
	char line[CTL_WRITE_MAX + 1];
	int argc;
	char *argv[CTL_ARGS_MAX];
};

/* Checks a write (one line, no NUL, not too long, not empty) and splits it. */
int ctl_split(const char *buf, size_t len, struct ctl_cmd *cmd, struct err *e);

/* A shell command line (exec, run): one line, no NUL, not too long, not empty;
 * copied to out (cap CTL_WRITE_MAX + 1) without its final newline. */
int ctl_command_line(const char *buf, size_t len, char *out, struct err *e);

/* Sandbox names: [A-Za-z0-9_.-], 1..63, no leading dot, not a top-level file. */
int ctl_check_name(const char *name, struct err *e);
bool ctl_reserved_name(const char *name);

void ctl_config_defaults(struct sbx_config *c, const char *backend, bool net);
/* Applies key=value words (argv[0..argc)) to c. */
int ctl_parse_options(int argc, char **argv, struct sbx_config *c, struct err *e);
/* The options of c as the key=value words ctl_parse_options reads back, every
 * option in one fixed order: a pool's spec file, and the key by which a
 * create finds a pool whose members it can take (equal text, same spec).
 * Returns the length, or -ENOSPC when cap is too small. */
int ctl_config_spec(const struct sbx_config *c, char *out, size_t cap);

int ctl_parse_size(const char *s, uint64_t *out);
/* disk=: a size from SBX_DISK_MIN_BYTES to SBX_DISK_MAX_BYTES, or none (0). */
int ctl_parse_disk(const char *v, uint64_t *bytes, struct err *e);
int ctl_parse_cpus(const char *s, uint32_t *millis);
int ctl_parse_uint(const char *s, uint64_t max, uint64_t *out);
int ctl_parse_signal(const char *s, int *sig);

/* A terminal's size (tty=, resize): COLSxROWS, each 1..CTL_TTY_MAX. */
#define CTL_TTY_MAX 1000
struct ctl_winsize {
	uint16_t cols, rows;
};
int ctl_parse_winsize(const char *s, struct ctl_winsize *ws, struct err *e);

/* The options of an exec or run line: leading key=value words before the
 * command, in any order.
 *   tty=COLSxROWS   a terminal (run only)
 *   cwd=DIR         an absolute directory inside the sandbox to run in
 *   env=NAME=VALUE  an environment variable (repeatable)
 *   user=WHO        USER, UID, USER:GROUP or UID:GID (instead of the image's User)
 *   timeout=SECONDS the daemon kills the command's process group after it
 * A value may hold blanks in single quotes, joined to unquoted parts as in
 * sh (env=MSG='a b', cwd='/my dir'); outside quotes a backslash takes the
 * next byte as it is (a quote: \'). The first word that is not a known key
 * begins the command (a shell assignment such as `i=0; ...` or `LANG=C sort`
 * stays the command's), except that after an option, a word with a lowercase
 * key (`[a-z_][a-z0-9_]*=`) must be a known one: a mistyped option is EINVAL,
 * never run as an assignment. *cmd_at: where the command begins in line (0
 * without options; at its end when only options were written: the image's
 * command). ws is left alone without tty=. cwd, user and env point into buf. */
#define CTL_ENV_MAX 32          /* env= words of one line */
#define CTL_ENV_BYTES_MAX 2048  /* their NAME=VALUE bytes together */
#define CTL_TIMEOUT_MAX_SEC 31536000
struct ctl_run_opts {
	bool tty;
	struct ctl_winsize ws;
	const char *cwd;     /* NULL: / (or the image's WorkingDir) */
	const char *user;    /* NULL: the image's User, or root */
	uint64_t timeout_ms; /* 0: none */
	int nenv;
	const char *env[CTL_ENV_MAX];
	size_t env_bytes;
	char buf[CTL_WRITE_MAX + 1];
};
int ctl_run_options(const char *line, struct ctl_run_opts *o, size_t *cmd_at, struct err *e);
/* Whether o names env NAME (n bytes). */
bool ctl_run_env_has(const struct ctl_run_opts *o, const char *name, size_t n);
/* USER, UID, USER:GROUP or UID:GID: words of [A-Za-z0-9_.-], 1 to 32 bytes,
 * not starting with '-' or '.'; "" is root. */
bool ctl_user_ok(const char *user);
/* A variable name sh can take: [A-Za-z_][A-Za-z0-9_]*, n bytes. */
bool ctl_env_name_ok(const char *s, size_t n);

/* What a wait handle waits for, written to it: `STATE [SECONDS]`, STATE one
 * of running paused standby stopped failed, or `any` (the next change);
 * SECONDS (at most three decimals, up to CTL_WAIT_MAX_SEC) bounds the read
 * that follows (CTL_WAIT_DEFAULT_SEC without). -EINVAL with a sentence. */
#define CTL_WAIT_MAX_SEC 86400
#define CTL_WAIT_DEFAULT_SEC 30
struct ctl_wait {
	char state[16];
	uint64_t ms;
};
int ctl_parse_wait(const char *buf, size_t len, struct ctl_wait *w, struct err *e);

struct net_rule;
/* A network policy rule, argv[0] being allow or deny (see net/net.h):
 *   allow|deny CIDR [tcp|udp [PORT] | icmp], allow|deny sandbox NAME,
 *   allow|deny all. -EINVAL with a sentence for anything else. */
int ctl_parse_rule(int argc, char **argv, struct net_rule *r, struct err *e);

struct net_expose;
/* An exposed port, argv[0] being expose or unexpose:
 *   expose [tcp|udp] PORT [HOSTPORT]   (tcp by default, HOSTPORT PORT)
 *   unexpose [tcp|udp] PORT            (host_port 0)
 * -EINVAL with a sentence for anything else. */
int ctl_parse_expose(int argc, char **argv, struct net_expose *x, struct err *e);


/* A request of a files session (/sbx/NAME/files): the first write's first
 * line, `VERB [key=value...] PATH`:
 *   get PATH                      the bytes of a regular file
 *   put size=N [mode=M] PATH      the next N bytes written become the file
 *   stat PATH | list PATH         what it is | a directory's entries
 *   mkdir [mode=M] PATH           a directory
 * PATH is absolute and the rest of the line as it is, blanks included (a
 * final one too); in it \xHH
 * (two hex digits, not 00) is that byte, the one escape (a backslash is
 * \x5c), as list writes names (str_escape_name). mode= is octal, at most 07777 (default 0644,
 * mkdir 0755). *line_len: the bytes of buf the line took, its newline
 * included (for put, the data begin there). */
enum ctl_files_verb { CTL_FILES_GET, CTL_FILES_PUT, CTL_FILES_STAT, CTL_FILES_LIST,
		      CTL_FILES_MKDIR };
#define CTL_FILES_SIZE_MAX (1ull << 40)
struct ctl_files_req {
	enum ctl_files_verb verb;
	unsigned mode;
	uint64_t size;
	char path[CTL_WRITE_MAX + 1];
};
int ctl_files_request(const char *buf, size_t len, struct ctl_files_req *q, size_t *line_len,
		      struct err *e);

#endif
