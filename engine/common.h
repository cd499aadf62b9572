/* Shared helpers for every module: the error object, growable text buffers,
 * the logger, cleanup attributes and monotonic time. Nothing here knows about
 * sandboxes, FUSE or namespaces. */
#ifndef SBX_COMMON_H
#define SBX_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SBX_NAME_MAX 63
#define SBX_ERRMSG_MAX 512

/* An error: a negative errno and the sentence a user reads in `error`. */
struct err {
	int code;
	char msg[SBX_ERRMSG_MAX];
};

/* Fills e (when not NULL) and returns code, so `return err_set(e, -EINVAL, ...)`.
 * Control characters in the sentence are escaped (str_escape). */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Adds what the caller knows before the sentence e holds ("prefix: sentence",
 * as crun's crun_error_wrap) and returns e's code, so
 * `return err_wrap(e, "layer %d", i);` after a callee filled e. */
int err_wrap(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *e);

/* Growable NUL-terminated text buffer for generated file content. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_append(struct buf *b, const void *p, size_t n);
/* Flat keyed counters: a "key value" line a row, written without printf
 * (a stats read is dozens of them, remade at each read). */
struct buf_row {
	const char *key;
	uint64_t v;
};
int buf_rows(struct buf *b, const struct buf_row *rows, size_t n);
void buf_free(struct buf *b);

/* Copies src into dst (cap bytes, NUL included) with every control character
 * (below 0x20, and 0x7f) written as \xNN, so that a name or a sandbox's text
 * printed into an `error` file or the log stays on its line and cannot forge
 * another. Stops before an escape that would not fit. Returns the length.
 * Escaping twice changes nothing. */
size_t str_escape(char *dst, size_t cap, const char *src);
/* The same with backslashes escaped too (\x5c), so that it can be undone: a
 * name a sandbox made, as NAME/files lists it. */
size_t str_escape_name(char *dst, size_t cap, const char *src);

/* Logger: levels as syslog; -v raises the threshold to debug. Lines are
 * escaped with str_escape. */
enum { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };
void log_init(int level, bool use_syslog);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

static inline uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint64_t wall_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
/* Closes the open ones of fds[0, n) and marks them all -1. */
static inline void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* File helpers: whole small files, atomic replace, recursive removal. */
int write_file(const char *path, const char *data, size_t len);
int write_file_str(const char *path, const char *s);
int read_file_str(const char *path, char *out, size_t cap);
/* Temp file + rename; with sync, fsync of the file before and the dir after. */
int write_file_atomic(const char *path, const char *data, size_t len, bool sync);
int mkdir_p(const char *path, mode_t mode);
int rm_rf(const char *path);

/* First thing a daemon does: fds 0-2 open (on /dev/null where they were
 * closed) and every fd above them that its parent left open marked
 * close-on-exec, so none reaches a child (a sandbox's init, qemu, helpers). */
int fd_protect_inherited(void);

#endif
