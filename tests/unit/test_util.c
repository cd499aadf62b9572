/* Unit tests of engine/util.c's guards against hostile text and inherited
 * fds: str_escape (and err_set and the logger, which use it) keeps a name or
 * a sandbox's text on its one line; fd_protect_inherited leaves no inherited
 * fd open across exec and fills a closed 0, 1 or 2; mkdir_p. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../../engine/common.h"
#include "unit.h"

static bool escaped_is(const char *in, const char *want)
{
	char out[256];
	size_t n = str_escape(out, sizeof(out), in);
	if (strcmp(out, want) != 0 || n != strlen(want)) {
		fprintf(stderr, "str_escape gave '%s' (%zu), wanted '%s'\n", out, n, want);
		return false;
	}
	return true;
}

static void test_escape_controls(void)
{
	CHECK(escaped_is("plain-name_1.2", "plain-name_1.2"));
	CHECK(escaped_is("a\nfake line", "a\\x0afake line"));
	CHECK(escaped_is("\r\t\x01", "\\x0d\\x09\\x01"));
	CHECK(escaped_is("frob\x1b[2J", "frob\\x1b[2J"));
	CHECK(escaped_is("del\x7f", "del\\x7f"));
	/* Bytes of UTF-8 text and a backslash are left alone. */
	CHECK(escaped_is("caf\xc3\xa9 \\n", "caf\xc3\xa9 \\n"));
	CHECK(escaped_is("", ""));
}

/* Escaping what was escaped changes nothing: a sentence may pass two sinks. */
static void test_escape_idempotent(void)
{
	char once[128], twice[128];
	str_escape(once, sizeof(once), "x\ny\x1bz");
	str_escape(twice, sizeof(twice), once);
	CHECK(strcmp(once, twice) == 0);
}

/* A short buffer ends before an escape that does not fit, never inside it. */
static void test_escape_bounds(void)
{
	char out[8];
	memset(out, 'Z', sizeof(out));
	CHECK(str_escape(out, 5, "\n\n") == 4 && strcmp(out, "\\x0a") == 0);
	CHECK(str_escape(out, 4, "\n") == 0 && out[0] == '\0');
	CHECK(str_escape(out, 3, "abcdef") == 2 && strcmp(out, "ab") == 0);
	CHECK(str_escape(out, 1, "abc") == 0 && out[0] == '\0');
	out[0] = 'Z';
	CHECK(str_escape(out, 0, "abc") == 0 && out[0] == 'Z');
}

static void test_err_set_escapes(void)
{
	struct err e = {0};
	CHECK(err_set(&e, -EINVAL, "sandbox name '%s' starts with a dot", ".x\nfake") == -EINVAL);
	CHECK(e.code == -EINVAL);
	CHECK(strcmp(e.msg, "sandbox name '.x\\x0afake' starts with a dot") == 0);
	CHECK(strchr(e.msg, '\n') == NULL);
	/* A caller may wrap the sentence it has (the argument is the buffer). */
	err_set(&e, -ENOSPC, "no room: %s", e.msg);
	CHECK(strcmp(e.msg, "no room: sandbox name '.x\\x0afake' starts with a dot") == 0);
}

/* err_wrap puts the caller's context before the callee's sentence and keeps
 * its code; the result stays one escaped line, cut at the buffer's end. */
static void test_err_wrap(void)
{
	struct err e = {0};
	err_set(&e, -ENOSPC, "no room for '%s'", "x\ny");
	CHECK(err_wrap(&e, "layer %d of %s", 2, "img\t") == -ENOSPC);
	CHECK(e.code == -ENOSPC);
	CHECK(strcmp(e.msg, "layer 2 of img\\x09: no room for 'x\\x0ay'") == 0);
	char big[3 * SBX_ERRMSG_MAX];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(err_wrap(&e, "%s", big) == -ENOSPC);
	CHECK(strlen(e.msg) == SBX_ERRMSG_MAX - 1 && e.msg[0] == 'a');
}

/* The logger writes one line per message, whatever the text holds. */
static void test_log_one_line(void)
{
	int p[2], saved = dup(STDERR_FILENO);
	CHECK(pipe(p) == 0 && saved >= 0);
	dup2(p[1], STDERR_FILENO);
	log_init(LOG_LVL_DEBUG, false);
	log_warn("mkdir '%s': bad", "a\nfake line\r");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	char buf[512] = {0};
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	CHECK(n > 0);
	CHECK(strstr(buf, "mkdir 'a\\x0afake line\\x0d': bad\n") != NULL);
	CHECK(strchr(buf, '\n') == buf + n - 1);
}

/* In a child (its fd table is its own): an inherited fd is close-on-exec
 * afterwards, and a closed stdin is open again (on /dev/null). */
static void test_fd_protect_inherited(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: as if inherited */
		int high = fcntl(fd, F_DUPFD, 100);
		close(0);
		int bad = 0;
		if (fd < 0 || high < 0 || (fcntl(fd, F_GETFD) & FD_CLOEXEC))
			_exit(10);
		if (fd_protect_inherited() < 0)
			bad |= 1;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC) || !(fcntl(high, F_GETFD) & FD_CLOEXEC))
			bad |= 2;
		if (fcntl(0, F_GETFD) < 0) /* 0 is open again */
			bad |= 4;
		if (fcntl(2, F_GETFD) & FD_CLOEXEC) /* stdio stays as it was */
			bad |= 8;
		_exit(bad);
	}
	int st = -1;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	if (WIFEXITED(st) && WEXITSTATUS(st))
		fprintf(stderr, "child said %d\n", WEXITSTATUS(st));
}

/* mkdir_p: one mkdir when the parents exist, the walk when they do not, an
 * existing dir is fine, a file in the way is ENOTDIR. */
static void test_mkdir_p(void)
{
	char base[] = "/tmp/sbx-unit-mkdirp.XXXXXX", p[128];
	CHECK(mkdtemp(base) != NULL);
	snprintf(p, sizeof(p), "%s/a/b/c", base);
	CHECK(mkdir_p(p, 0700) == 0);
	struct stat st;
	CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(mkdir_p(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/a/b/d", base);
	CHECK(mkdir_p(p, 0700) == 0 && stat(p, &st) == 0);
	snprintf(p, sizeof(p), "%s/f", base);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/f/x/y", base);
	CHECK(mkdir_p(p, 0700) == -ENOTDIR);
	CHECK(rm_rf(base) == 0);
}

int main(void)
{
	RUN(test_escape_controls);
	RUN(test_escape_idempotent);
	RUN(test_escape_bounds);
	RUN(test_err_set_escapes);
	RUN(test_err_wrap);
	RUN(test_log_one_line);
	RUN(test_fd_protect_inherited);
	RUN(test_mkdir_p);
	UNIT_DONE("util");
}
