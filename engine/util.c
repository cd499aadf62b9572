/* Implementation of common.h: errors, buffers, logging and file helpers. */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>

static size_t escape(char *dst, size_t cap, const char *src, bool backslash)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	if (cap == 0)
		return 0;
	for (; *src; src++) {
		unsigned char c = (unsigned char)*src;
		bool ctl = c < 0x20 || c == 0x7f || (backslash && c == '\\');
		if (n + (ctl ? 4 : 1) >= cap) /* an escape is never cut in half */
			break;
		if (ctl) {
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 15];
		} else {
			dst[n++] = (char)c;
		}
	}
	dst[n] = '\0';
	return n;
}

size_t str_escape(char *dst, size_t cap, const char *src) { return escape(dst, cap, src, false); }

size_t str_escape_name(char *dst, size_t cap, const char *src)
{
	return escape(dst, cap, src, true);
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	if (e) {
		char raw[SBX_ERRMSG_MAX];
		va_list ap;
		va_start(ap, fmt);
		e->code = code;
		vsnprintf(raw, sizeof(raw), fmt, ap);
		va_end(ap);
		/* Names and sandbox text in the sentence stay on its one line. */
		str_escape(e->msg, sizeof(e->msg), raw);
	}
	return code;
}

int err_wrap(struct err *e, const char *fmt, ...)
{
	char prefix[SBX_ERRMSG_MAX], held[SBX_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(held, sizeof(held), "%s", e->msg);
	return err_set(e, e->code, "%s: %s", prefix, held);
}

void err_clear(struct err *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}

static int buf_grow(struct buf *b, size_t need)
{
	if (b->len + need + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + need + 1)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Formatted once into the room there is, and again only when it did not
 * fit (a file's content is many of these, remade at each read). */
int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	if (buf_grow(b, 0) < 0)
		return -ENOMEM;
	size_t room = b->cap - b->len;
	va_start(ap, fmt);
	int n = vsnprintf(b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= room) {
		if (buf_grow(b, (size_t)n) < 0) {
			b->data[b->len] = '\0'; /* what did not fit goes */
			return -ENOMEM;
		}
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	if (n < 0) {
		b->data[b->len] = '\0';
		return -EINVAL;
	}
	b->len += (size_t)n;
	return 0;
}

int buf_rows(struct buf *b, const struct buf_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char num[20];
		size_t d = sizeof(num), kl = strlen(rows[i].key);
		uint64_t v = rows[i].v;
		do
			num[--d] = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		if (buf_grow(b, kl + 1 + (sizeof(num) - d) + 1) < 0)
			return -ENOMEM;
		char *p = b->data + b->len;
		memcpy(p, rows[i].key, kl);
		p[kl] = ' ';
		memcpy(p + kl + 1, num + d, sizeof(num) - d);
		p[kl + 1 + sizeof(num) - d] = '\n';
		b->len += kl + 1 + (sizeof(num) - d) + 1;
		b->data[b->len] = '\0';
	}
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) < 0)
		return -ENOMEM;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* The logger is the process's, not an engine's: vmm/ and net/ log through
 * it too, and one daemon has one stderr or syslog (struct engine holds none). */
static int log_level = LOG_LVL_INFO;
static bool log_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(int level, bool use_syslog)
{
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("sandboxfs", LOG_PID, LOG_DAEMON);
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char raw[1024], line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* One line a message: a name with a newline cannot forge a line. */
	str_escape(line, sizeof(line), raw);
	if (log_syslog) {
		syslog(level, "%s", line);
		return;
	}
	static const char *names[] = {"", "", "", "error", "warn", "", "info", "debug"};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%02d:%02d:%02d.%03ld sandboxfs %s: %s\n", tm.tm_hour, tm.tm_min,
		tm.tm_sec, ts.tv_nsec / 1000000, names[level & 7], line);
	pthread_mutex_unlock(&log_lock);
}

int write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, data, len);
	int ret = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);
	close(fd);
	return ret;
}

int write_file_str(const char *path, const char *s)
{
	return write_file(path, s, strlen(s));
}

int read_file_str(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, out, cap - 1);
	int saved = errno;
	close(fd);
	if (n < 0)
		return -saved;
	out[n] = '\0';
	return (int)n;
}

/* Temp file, (fsync), rename, (fsync of the directory): readers see the old or
 * the new content, never a torn one. */
int write_file_atomic(const char *path, const char *data, size_t len, bool sync)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int ret = 0;
	if (write(fd, data, len) != (ssize_t)len || (sync && fsync(fd) < 0))
		ret = errno ? -errno : -EIO;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		return ret;
	}
	if (!sync)
		return 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	/* The parents mostly exist (a sandbox's cgroup under ours): one mkdir,
	 * and the walk from / only when a parent is missing. */
	if (mkdir(p, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
	return (r < 0 && errno != ENOENT) ? -1 : 0;
}

/* Depth-first, never crossing into other filesystems (a stray mount stays intact). */
int rm_rf(const char *path)
{
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

/* The fallback of fd_protect_inherited where close_range cannot set the flag. */
static int cloexec_each(int from)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name), fl;
		if (de->d_name[0] == '.' || fd < from || fd == dirfd(d))
			continue;
		if ((fl = fcntl(fd, F_GETFD)) >= 0)
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	closedir(d);
	return 0;
}

int fd_protect_inherited(void)
{
	/* A closed 0, 1 or 2 would be taken by the next open: a sandbox's
	 * console or socket would then sit where children expect stdio. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR); /* the lowest free fd: this one */
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
	return cloexec_each(3);
}
