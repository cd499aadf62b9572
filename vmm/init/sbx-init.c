/* sbx-init: pid 1 of an `ns` sandbox. It builds the sandbox's root (overlay,
 * /proc, /dev, /sys, /tmp, masked paths, pivot_root), drops privileges,
 * reports readiness over the inherited socketpair, then reaps zombies, runs
 * exec requests and carries out stop. It outlives the daemon. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "../../net/net.h"
#include "../proto.h"
#include "ids.h"
#include "warm_script.h"
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "seccomp_bpf.h" /* generated: build/seccomp_bpf.h */

static int ctl = PROTO_FD;
static const char *name = "sandbox";

static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dprintf(STDERR_FILENO, "sbx-init[%s]: %s\n", name, line);
}

static void send_msg(const char *fmt, ...)
{
	char msg[PROTO_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctl >= 0 && send(ctl, msg, (size_t)n, MSG_NOSIGNAL) < 0 && errno != EINTR)
		ctl = -1; /* daemon gone: keep running without it */
}

/* Exit reports must not be lost while no daemon is connected: they wait in a
 * small queue and go to the next daemon that connects. */
#define REPORT_QUEUE 256
static char *report_queue[REPORT_QUEUE];
static int nreports;

static void send_report(const char *fmt, ...)
{
	char msg[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ctl >= 0 && send(ctl, msg, strlen(msg), MSG_NOSIGNAL) >= 0)
		return;
	if (ctl >= 0)
		close(ctl);
	ctl = -1;
	if (nreports < REPORT_QUEUE)
		report_queue[nreports++] = strdup(msg);
}

static void flush_reports(void)
{
	int i = 0;
	for (; i < nreports && ctl >= 0; i++) {
		if (send(ctl, report_queue[i], strlen(report_queue[i]), MSG_NOSIGNAL) < 0)
			break;
		free(report_queue[i]);
	}
	memmove(report_queue, report_queue + i, (size_t)(nreports - i) * sizeof(char *));
	nreports -= i;
}

static void __attribute__((noreturn)) fail(int err, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	say("setup failed: %s: %s", line, strerror(err));
	send_msg("%c%d %s: %s", MSG_FAIL, err, line, strerror(err));
	_exit(1);
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		     const char *data)
{
	if (mount(src, dst, type, flags, data) < 0)
		fail(errno, "mount %s on %s", type ? type : src, dst);
}

static void ensure_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		fail(errno, "mkdir %s", path);
}

static void make_dev(void)
{
	static const struct { const char *name; unsigned maj, min; } nodes[] = {
		{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
		{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
	};
	do_mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k");
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		char p[64];
		snprintf(p, sizeof(p), "dev/%s", nodes[i].name);
		if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0)
			fail(errno, "mknod %s", p);
		chmod(p, 0666);
	}
	ensure_dir("dev/pts");
	do_mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		 "newinstance,ptmxmode=0666,mode=0620");
	ensure_dir("dev/shm");
	do_mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k");
	symlink("pts/ptmx", "dev/ptmx");
	symlink("/proc/self/fd", "dev/fd");
	symlink("/proc/self/fd/0", "dev/stdin");
	symlink("/proc/self/fd/1", "dev/stdout");
	symlink("/proc/self/fd/2", "dev/stderr");
}

/* The paths runc masks or makes read-only, so the sandbox cannot read host
 * secrets from /proc or poke the kernel through it. */
static void mask_paths(void)
{
	static const char *masked_files[] = {
		"/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/sysrq-trigger",
	};
	static const char *masked_dirs[] = {"/proc/acpi", "/proc/scsi", "/sys/firmware"};
	static const char *readonly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"};
	for (size_t i = 0; i < sizeof(masked_files) / sizeof(*masked_files); i++)
		if (access(masked_files[i], F_OK) == 0)
			do_mount("/dev/null", masked_files[i], NULL, MS_BIND, NULL);
	for (size_t i = 0; i < sizeof(masked_dirs) / sizeof(*masked_dirs); i++)
		if (access(masked_dirs[i], F_OK) == 0)
			do_mount("tmpfs", masked_dirs[i], "tmpfs", MS_RDONLY, "size=0");
	for (size_t i = 0; i < sizeof(readonly) / sizeof(*readonly); i++) {
		if (access(readonly[i], F_OK) != 0)
			continue;
		do_mount(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL);
		do_mount(NULL, readonly[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID |
			 MS_NODEV | MS_NOEXEC, NULL);
	}
}

#define MAX_LOWERS 16

static void listen_for_daemon(void);

/* lowers: the read-only layers, nearest first (fork layers, then the image). */
static void build_root(const char **lowers, int nlowers, const char *dir)
{
	char root[PATH_MAX], opts[MAX_LOWERS * 32 + 64];
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(errno, "make / private");
	snprintf(root, sizeof(root), "%s/rootfs", dir);
	/* fds for the layers and paths relative to the sandbox dir: the options the
	 * sandbox sees in /proc/mounts then name no host path. */
	int len = snprintf(opts, sizeof(opts), "lowerdir=");
	int fds[MAX_LOWERS];
	for (int i = 0; i < nlowers; i++) {
		fds[i] = open(lowers[i], O_PATH | O_DIRECTORY);
		if (fds[i] < 0)
			fail(errno, "open layer %s", lowers[i]);
		len += snprintf(opts + len, sizeof(opts) - (size_t)len, "%s/proc/self/fd/%d",
				i ? ":" : "", fds[i]);
	}
	if (chdir(dir) < 0)
		fail(errno, "chdir %s", dir);
	listen_for_daemon();
	snprintf(opts + len, sizeof(opts) - (size_t)len, ",upperdir=upper,workdir=work");
	do_mount("overlay", "rootfs", "overlay", 0, opts);
	for (int i = 0; i < nlowers; i++)
		close(fds[i]);
	if (chdir(root) < 0)
		fail(errno, "chdir %s", root);
	ensure_dir("proc");
	ensure_dir("dev");
	ensure_dir("sys");
	ensure_dir("tmp");
	do_mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	make_dev();
	do_mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail(errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		fail(errno, "detach the host root");
	if (chdir("/") < 0)
		fail(errno, "chdir /");
	mask_paths();
}

/* The daemon's DNS (MSG_NET's "N<gateway>"): /etc/resolv.conf names it at
 * every start, as Docker's does, whatever the image or an earlier run put
 * there. Written after pivot_root, so inside the sandbox's own tree; a link
 * at the name is replaced, never followed. A failure is said, not fatal. */
static void write_resolv(const char *gw)
{
	struct in_addr a;
	if (inet_pton(AF_INET, gw, &a) != 1) {
		say("the daemon's DNS address '%.20s' is not one: resolv.conf left alone", gw);
		return;
	}
	static const char tmp[] = ".resolv.conf.sbx-init";
	char line[64];
	int n = snprintf(line, sizeof(line), "nameserver %s\n", gw);
	int etc = open("/etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (etc < 0) {
		say("no /etc directory (%s): resolv.conf not written", strerror(errno));
		return;
	}
	unlinkat(etc, tmp, 0);
	int fd = openat(etc, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write(fd, line, (size_t)n) == n;
	if (fd >= 0)
		close(fd);
	if (!ok || renameat(etc, tmp, etc, "resolv.conf") < 0) {
		say("cannot write /etc/resolv.conf: %s", strerror(errno));
		unlinkat(etc, tmp, 0);
	}
	close(etc);
}

/* Docker's default capability set. */
static const cap_value_t keep_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
	CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE,
	CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE,
};

static void drop_privileges(void)
{
	int last = CAP_LAST_CAP;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		if (fscanf(f, "%d", &last) != 1)
			last = CAP_LAST_CAP;
		fclose(f);
	}
	for (int c = 0; c <= last; c++) {
		bool keep = false;
		for (size_t i = 0; i < sizeof(keep_caps) / sizeof(*keep_caps); i++)
			keep |= keep_caps[i] == c;
		if (!keep && cap_drop_bound(c) < 0 && errno != EINVAL)
			fail(errno, "drop capability %d from the bounding set", c);
	}
	cap_t caps = cap_init();
	if (!caps)
		fail(errno, "cap_init");
	int n = (int)(sizeof(keep_caps) / sizeof(*keep_caps));
	if (cap_set_flag(caps, CAP_PERMITTED, n, keep_caps, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, n, keep_caps, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_INHERITABLE, n, keep_caps, CAP_SET) < 0 || cap_set_proc(caps) < 0)
		fail(errno, "set capabilities");
	cap_free(caps);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(errno, "no_new_privs");
	/* Last: every exec'd command inherits the filter (vmm/init/seccomp.c,
	 * compiled at build time into seccomp_bpf.h). */
	struct sock_fprog fprog = {
		.len = (unsigned short)(sizeof(sbx_seccomp_prog) / sizeof(sbx_seccomp_prog[0])),
		.filter = (struct sock_filter *)sbx_seccomp_prog,
	};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) < 0)
		fail(errno, "install the seccomp filter");
}

/* --- running: exec requests, reaping, stop --- */

#define MAX_EXECS 1024
static struct { uint64_t id; pid_t pid; } execs[MAX_EXECS];
static bool stopping;
static int64_t kill_deadline_ms = -1;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- pipes that must outlive the daemon: the console and jobs' output ---
 *
 * The daemon drains these pipes into files the sandbox cannot reach (it
 * counts and bounds what it stores). While no daemon runs, a read end kept
 * here saves a writer from EPIPE: a job blocks on a full pipe instead, and a
 * restarted daemon finds the pipe again in our fd table (by its inode) and
 * drains the rest. A job's copy goes once the pipe is empty and no writer is
 * left: everything written has been taken. */
#define MAX_KEPT 2048
static int kept[MAX_KEPT];
static int nkept;

/* A read end of the pipe behind fd (our own /proc reopens it); -1 if fd is no pipe. */
static int pipe_reader(int fd)
{
	struct stat st;
	char path[64];
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

static void keep_reader(int fd)
{
	int r = nkept < MAX_KEPT ? pipe_reader(fd) : -1;
	if (r >= 0)
		kept[nkept++] = r;
}

/* Drops the copies of pipes that are empty with no writer left. */
static void release_drained(void)
{
	for (int i = 0; i < nkept;) {
		struct pollfd p = {.fd = kept[i], .events = POLLIN};
		int avail = 1;
		bool no_writer = poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
		if (no_writer && ioctl(kept[i], FIONREAD, &avail) == 0 && avail == 0) {
			close(kept[i]);
			kept[i] = kept[--nkept];
		} else {
			i++;
		}
	}
}

/* Our console: stdout and stderr share one pipe to the daemon. Writes never
 * block init (a full pipe drops the line); a kept read end holds it open. */
static int console_keep = -1;

static void console_setup(void)
{
	console_keep = pipe_reader(STDOUT_FILENO);
	if (console_keep < 0)
		return; /* a file: an older daemon's console */
	int fl = fcntl(STDOUT_FILENO, F_GETFL);
	if (fl >= 0)
		fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK);
}

/* A command's options (proto.h), read from its message: pointers into it. */
struct exec_opts {
	const char *cwd;
	const char *env[PROTO_ENV_MAX];
	int nenv;
	const char *bad; /* what could not be taken: the command fails with it */
};

/* The options after the command line's NUL: "key=value" strings, each
 * ended by a NUL, the last by the message's end (msg[len] is one). */
static void exec_opts_parse(const char *p, const char *end, struct exec_opts *o)
{
	for (; p < end; p += strlen(p) + 1) {
		if (!strncmp(p, "cwd=", 4) && p[4] == '/')
			o->cwd = p + 4;
		else if (!strncmp(p, "env=", 4) && strchr(p + 4, '=') && o->nenv < PROTO_ENV_MAX)
			o->env[o->nenv++] = p + 4;
		else if (!strncmp(p, "env=", 4) && strchr(p + 4, '='))
			o->bad = "more env= options than sbx-init takes";
		else
			o->bad = "an option sbx-init does not know (an older sbx-init?)";
	}
}

/* envp with each NAME=VALUE of o set: replaced where envp has NAME, else
 * added (out has room for envp's and o's). */
static void env_merge(char **envp, const struct exec_opts *o, char **out)
{
	int n = 0;
	while (envp[n]) {
		out[n] = envp[n];
		n++;
	}
	for (int i = 0; i < o->nenv; i++) {
		size_t kl = strcspn(o->env[i], "=") + 1;
		int k = 0;
		while (k < n && strncmp(out[k], o->env[i], kl))
			k++;
		out[k] = (char *)o->env[i];
		if (k == n)
			n++;
	}
	out[n] = NULL;
}

/* The child of an exec, a job or a warm shell (cmd_fd >= 0: its command
 * pipe, fd 3 of sh -c SCRIPT; ready_fd >= 0: a pipe it writes one byte to
 * once its user and directory are set, before the exec): set up and
 * exec'd, never returns. fds and nfds as start_exec's. */
static void __attribute__((noreturn)) exec_child(const char *cmd, char *user,
						 const struct exec_opts *o, const int *fds,
						 int nfds, int cmd_fd, int ready_fd,
						 const sigset_t *oldmask)
{
	static char *envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "TERM=dumb", NULL};
	static char *env[4 + PROTO_ENV_MAX];
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	/* Above stdio and fd 3, kept past the close_range below. */
	if (ready_fd >= 0 && (ready_fd = fcntl(ready_fd, F_DUPFD_CLOEXEC, 10)) < 0)
		_exit(126);
	/* What the daemon's own start left ignored is not the job's: a
	 * shell's `&` ignores SIGINT and SIGQUIT, and clone and exec keep
	 * that, so `kill INT` (or ^C) would not reach it. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	setsid();
	if (nfds == 3) {
		dup2(fds[0], 0);
		dup2(fds[1], 1);
		dup2(fds[2], 2);
		/* A terminal's job (run tty=): the slave of a pty of our devpts
		 * is its stdio, and becomes the controlling terminal of its
		 * session, so ^C, ^Z and SIGWINCH reach its foreground group. */
		if (isatty(0) && ioctl(0, TIOCSCTTY, 0) == 0)
			envp[2] = "TERM=xterm";
	} else {
		int in = open("/dev/null", O_RDONLY);
		if (in >= 0)
			dup2(in, 0);
		dup2(fds[0], 1);
		dup2(fds[0], 2);
	}
	/* fd 3 is our socket's number: dup2 onto it clears close-on-exec,
	 * a pipe that got the number itself has it cleared by hand. */
	if (cmd_fd >= 0 && (cmd_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(cmd_fd, 3)) < 0)
		_exit(126);
	/* Only stdio (and a warm shell's command pipe): not our socket, not
	 * the pipes we keep, not another job's fds. */
	unsigned first = cmd_fd >= 0 ? 4u : 3u;
	if (ready_fd >= 0) {
		syscall(SYS_close_range, first, (unsigned)ready_fd - 1, 0u);
		first = (unsigned)ready_fd + 1;
	}
	syscall(SYS_close_range, first, ~0u, 0u);
	if (chdir("/") < 0)
		_exit(126);
	static char home[PATH_MAX + 8];
	if (*user) {
		id_become("sbx-init", user, home, sizeof(home));
		envp[1] = home;
	}
	/* As the user: a directory it may not enter fails as its own cd would. */
	if (o->cwd && chdir(o->cwd) < 0) {
		dprintf(2, "sbx-init: cannot enter cwd=%s: %s\n", o->cwd, strerror(errno));
		_exit(126);
	}
	env_merge(envp, o, env);
	if (ready_fd >= 0 && write(ready_fd, "r", 1) != 1)
		_exit(126);
	execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, env);
	dprintf(2, "sbx-init: cannot run /bin/sh: %s\n", strerror(errno));
	_exit(127);
}

static int free_slot(void)
{
	for (int i = 0; i < MAX_EXECS; i++)
		if (!execs[i].pid)
			return i;
	return -1;
}

/* fds: one (stdout+stderr, stdin /dev/null: exec) or three (stdin, stdout,
 * stderr: a job). user: "" (root) or whom the image config (or user=) names. */
static void start_exec(uint64_t id, const char *cmd, char *user, const struct exec_opts *o,
		       const int *fds, int nfds, const sigset_t *oldmask)
{
	int slot = free_slot(), out_fd = fds[nfds == 3 ? 1 : 0];
	if (slot < 0 || stopping || o->bad) {
		dprintf(out_fd, "sbx-init: %s\n", stopping ? "sandbox is stopping"
						    : o->bad ? o->bad : "too many commands");
		send_report("%c%llu %d 0", MSG_EXEC_EXIT, (unsigned long long)id, 126);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		dprintf(out_fd, "sbx-init: fork: %s\n", strerror(errno));
		send_report("%c%llu %d 0", MSG_EXEC_EXIT, (unsigned long long)id, 126);
		return;
	}
	if (pid == 0)
		exec_child(cmd, user, o, fds, nfds, -1, -1, oldmask);
	if (nfds == 3) {
		keep_reader(fds[1]);
		keep_reader(fds[2]);
	}
	execs[slot].id = id;
	execs[slot].pid = pid;
	send_msg("%c%llu %d", MSG_EXEC_PID, (unsigned long long)id, (int)pid);
}

/* --- the warm shell (MSG_WARM): one at a time, never an exec until taken ---
 *
 * Its script reads one line from fd 3 and evals it as its whole program, so
 * that $?, exit, a syntax error (2) and a signal end it as `sh -c LINE`
 * would. Its stdin, stdout and stderr are a job's three pipes; the line's
 * first character says which it becomes: 'j' a job (they stay as they are),
 * 'e' an exec (stderr joins stdout, stdin is /dev/null, as an exec's).
 * fds: our copies of them, for the line to run cold on when the shell is
 * gone. */
static struct {
	pid_t pid;    /* 0: none waiting */
	int cmd_fd;   /* the write end of its command pipe */
	int ready_fd; /* its byte comes once its user is set (exec_child); -1 once read */
	int fds[3];
	int failed; /* it exited before its line came (its user unknown: 126) */
	bool asked; /* a daemon asked for one: a new daemon is told (MSG_WARM_WANTED) */
	char user[80];
} warm = {0, -1, -1, {-1, -1, -1}, 0, false, ""};

/* It ended before its line came, with wait status st. */
static void warm_ended(int st)
{
	warm.pid = 0;
	warm.failed = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
}

static void warm_drop(void)
{
	if (warm.pid && kill(-warm.pid, SIGKILL) < 0 && errno == ESRCH)
		kill(warm.pid, SIGKILL); /* before its setsid */
	warm.pid = 0;
	if (warm.cmd_fd >= 0)
		close(warm.cmd_fd);
	if (warm.ready_fd >= 0)
		close(warm.ready_fd);
	warm.cmd_fd = warm.ready_fd = -1;
	for (int i = 0; i < 3; i++) {
		if (warm.fds[i] >= 0)
			close(warm.fds[i]);
		warm.fds[i] = -1;
	}
}

/* "W[@USER]" and its three fds: a new warm shell, as USER. A failed fork
 * is said on its output and leaves none: the line then runs cold. */
static void warm_start(const char *msg, const int *fds, const sigset_t *oldmask)
{
	warm_drop();
	memcpy(warm.fds, fds, sizeof(warm.fds));
	warm.failed = 0;
	warm.asked = true;
	snprintf(warm.user, sizeof(warm.user), "%s", msg[1] == '@' ? msg + 2 : "");
	int p[2], r[2];
	static const struct exec_opts none;
	if (stopping || pipe2(p, O_CLOEXEC) < 0)
		return;
	/* Our end never blocks: the line goes whole into the empty pipe or,
	 * if something in the sandbox filled it through /proc/1/fd, not (or in
	 * part): the shell is dropped and the line runs cold. */
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) < 0 || pipe2(r, O_CLOEXEC) < 0) {
		close(p[0]);
		close(p[1]);
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_child(WARM_SCRIPT, warm.user, &none, fds, 3, p[0], r[1], oldmask);
	close(p[0]);
	close(r[1]);
	if (pid > 0) {
		warm.pid = pid;
		warm.cmd_fd = p[1];
		warm.ready_fd = r[0];
	} else {
		close(p[1]);
		close(r[0]);
	}
}

/* The shell seen to end (reaped: warm_ended) within about ms; never waits
 * longer, whatever the sandbox's processes did to it or its pipes: one still
 * there is the caller's to drop (warm_drop kills it, the reaper collects). */
static bool warm_reaped_within(int ms)
{
	for (int i = 0; warm.pid && i <= ms / 5; i++) {
		int st;
		pid_t p = waitpid(warm.pid, &st, WNOHANG);
		if (p == warm.pid) {
			warm_ended(st);
			return true;
		}
		if (p < 0)
			return false;
		usleep(5000);
	}
	return false;
}

/* Whether the shell got past its user and directory (its byte came). One
 * that failed there (a user the sandbox lacks) ends at once: it is reaped
 * here, so that its line runs cold and fails with the sentence where the
 * command's output goes. A shell that says neither within a second (a
 * sandbox too loaded to run it, or one whose processes took its byte) is
 * not waited for longer: dropped, the line runs cold. */
static bool warm_ready(void)
{
	if (warm.ready_fd < 0)
		return true;
	struct pollfd pf = {.fd = warm.ready_fd, .events = POLLIN};
	char c;
	int n;
	while ((n = poll(&pf, 1, 1000)) < 0 && errno == EINTR)
		;
	ssize_t got = n > 0 ? read(warm.ready_fd, &c, 1) : -1;
	close(warm.ready_fd);
	warm.ready_fd = -1;
	if (got == 1)
		return true;
	if (got == 0) /* it exits, or its pipe was taken from it: bounded */
		warm_reaped_within(1000);
	return false;
}

/* "Y<id>[j] <line>" (len bytes; msg has room for one more): the warm shell
 * becomes exec id (j: job id), its line written to it; with none, the line
 * runs cold, unless a job's failed on its own (its sentence is in the job's
 * stderr already): the job ends as it did. An exec's sentence went to the
 * stderr an exec does not read: it runs cold, to fail the same way. */
static void warm_take(char *msg, size_t len, const sigset_t *oldmask)
{
	char *end, *sp = strchr(msg + 1, ' ');
	uint64_t id = strtoull(msg + 1, &end, 10);
	bool job = sp && end < sp && *end == 'j';
	int slot = free_slot();
	if (!sp || end + job != sp)
		return;
	msg[len] = '\n';
	*sp = job ? 'j' : 'e'; /* the line, after what it becomes */
	size_t n = len + 1 - (size_t)(sp - msg);
	ssize_t w = warm.pid && slot >= 0 && !stopping && warm_ready() ? write(warm.cmd_fd, sp, n)
									 : 0;
	if (w == (ssize_t)n) {
		execs[slot].id = id;
		execs[slot].pid = warm.pid;
		send_msg("%c%llu %d", MSG_EXEC_PID, (unsigned long long)id, (int)warm.pid);
		if (job) { /* as start_exec keeps a job's */
			keep_reader(warm.fds[1]);
			keep_reader(warm.fds[2]);
		}
		warm.pid = 0;
		warm_drop();
		return;
	}
	/* Its pipe's reader is gone: it is exiting, not reaped yet (bounded:
	 * a line the sandbox's processes wrote into it may be running). */
	if (w < 0 && errno == EPIPE)
		warm_reaped_within(1000);
	msg[len] = '\0';
	static const struct exec_opts none;
	int fds[3], failed = warm.pid || !job ? 0 : warm.failed;
	memcpy(fds, warm.fds, sizeof(fds));
	warm.fds[0] = warm.fds[1] = warm.fds[2] = -1;
	warm_drop();
	if (failed)
		send_report("%c%llu %d 0", MSG_EXEC_EXIT, (unsigned long long)id, failed);
	else if (fds[1] >= 0)
		start_exec(id, sp + 1, warm.user, &none, job ? fds : &fds[1], job ? 3 : 1, oldmask);
	else
		send_report("%c%llu %d 0", MSG_EXEC_EXIT, (unsigned long long)id, 126);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void handle_msg(const sigset_t *oldmask)
{
	char msg[PROTO_MSG_MAX + 1];
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = {.iov_base = msg, .iov_len = PROTO_MSG_MAX};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			say("daemon connection closed; running on");
			close(ctl);
			ctl = -1;
		}
		return;
	}
	msg[n] = '\0';
	int fds[4] = {-1, -1, -1, -1}, nfds = 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		nfds = nfds > 4 ? 4 : nfds;
		memcpy(fds, CMSG_DATA(c), (size_t)nfds * sizeof(int));
	}
	switch (msg[0]) {
	case MSG_STOP:
		if (!stopping) {
			stopping = true;
			kill(-1, SIGTERM);
			kill_deadline_ms = mono_ms() + 1000 * atoll(msg + 1);
		}
		break;
	case MSG_EXEC: {
		/* "X<id>[@USER] <command line>", then "\0key=value" options */
		char *sp = strchr(msg + 1, ' '), *end, *user = "";
		uint64_t id = strtoull(msg + 1, &end, 10);
		struct exec_opts o = {0};
		exec_opts_parse(msg + strlen(msg) + 1, msg + n, &o);
		if (sp && *end == '@') {
			*sp = '\0';
			user = end + 1;
		}
		if (sp && (nfds == 1 || nfds == 3 || nfds == 4))
			start_exec(id, sp + 1, user, &o, fds, nfds == 4 ? 3 : nfds, oldmask);
		/* A terminal's master: held until its job's slave is closed and
		 * everything it wrote was read (release_drained), so that a daemon
		 * that dies meanwhile hangs nothing up; the next takes it back. */
		if (sp && nfds == 4 && nkept < MAX_KEPT) {
			kept[nkept++] = fds[3];
			fds[3] = -1;
		}
		break;
	}
	case MSG_WARM:
		if (nfds == 3) {
			warm_start(msg, fds, oldmask);
			fds[0] = fds[1] = fds[2] = -1;
		}
		break;
	case MSG_EXEC_WARM:
		warm_take(msg, (size_t)n, oldmask);
		break;
	case MSG_EXEC_KILL: {
		uint64_t id = strtoull(msg + 1, NULL, 10);
		char *sp = strchr(msg + 1, ' ');
		int sig = sp ? atoi(sp + 1) : SIGKILL;
		/* The child makes its group with setsid() after fork: a kill that
		 * comes first finds no group, and then goes to the child itself. */
		for (int i = 0; i < MAX_EXECS; i++)
			if (execs[i].pid && execs[i].id == id && kill(-execs[i].pid, sig) < 0 &&
			    errno == ESRCH)
				kill(execs[i].pid, sig);
		break;
	}
	default:
		say("unknown message '%c' ignored", msg[0]);
	}
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Returns false once no child is left. */
static bool reap(void)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p == 0)
			return true;
		if (p < 0)
			return errno != ECHILD;
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
		if (p == warm.pid)
			warm_ended(st);
		for (int i = 0; i < MAX_EXECS; i++)
			if (execs[i].pid == p) {
				send_report("%c%llu %d %d", MSG_EXEC_EXIT,
					    (unsigned long long)execs[i].id, code, sig);
				execs[i].pid = 0;
			}
	}
}

/* A daemon started after ours died connects here once (no retries): its
 * connection replaces the dead one. Bound before pivot_root, at a host path
 * the daemon can find again: STATE/sandboxes/NAME/init.sock. */
static int listen_fd = -1;

static void listen_for_daemon(void)
{
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (listen_fd < 0)
		fail(errno, "socket");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", PROTO_SOCK_NAME); /* cwd: the sandbox dir */
	unlink(sa.sun_path);
	if (bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listen_fd, 4) < 0)
		fail(errno, "listen on %s", PROTO_SOCK_NAME);
	chmod(sa.sun_path, 0600);
}

static void accept_daemon(void)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (ctl >= 0)
		close(ctl);
	ctl = fd;
	say("a new daemon connected");
	flush_reports();
	/* The warm shell writes into pipes the dead daemon read: a new one.
	 * Where a command took the last one (a job may run for ever), the
	 * shell the dead daemon would have asked for at its end is asked for
	 * now. */
	if (warm.asked) {
		warm_drop();
		send_msg("%c3", MSG_WARM_WANTED);
	}
}

static void __attribute__((noreturn)) serve(const sigset_t *oldmask, int sfd)
{
	for (;;) {
		struct pollfd pfd[3] = {{.fd = sfd, .events = POLLIN},
					{.fd = listen_fd, .events = POLLIN},
					{.fd = ctl, .events = POLLIN}};
		int timeout = -1;
		if (kill_deadline_ms >= 0) {
			int64_t left = kill_deadline_ms - mono_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		if (nkept && (timeout < 0 || timeout > 1000))
			timeout = 1000; /* kept pipes are looked at again each second */
		int r = poll(pfd, ctl >= 0 ? 3 : 2, timeout);
		if (r < 0 && errno != EINTR)
			_exit(2);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !stopping) {
					stopping = true;
					kill(-1, SIGTERM);
					kill_deadline_ms = mono_ms() + 10000;
				}
			}
		}
		if (ctl >= 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
			handle_msg(oldmask);
		if (pfd[1].revents & POLLIN)
			accept_daemon();
		bool children = reap();
		if (nkept)
			release_drained();
		if (stopping && !children) {
			say("stopped");
			_exit(0);
		}
		if (stopping && kill_deadline_ms >= 0 && mono_ms() >= kill_deadline_ms) {
			kill(-1, SIGKILL);
			kill_deadline_ms = -1;
		}
	}
}

int main(int argc, char **argv)
{
	const char *lowers[MAX_LOWERS], *dir = NULL;
	int nlowers = 0;
	bool unshare_cgroup = false, join_netns = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else if (!strcmp(argv[i], "--lower") && i + 1 < argc && nlowers < MAX_LOWERS)
			lowers[nlowers++] = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--unshare-cgroup"))
			unshare_cgroup = true;
		else if (!strcmp(argv[i], "--netns"))
			join_netns = true;
	}
	if (getpid() != 1 || !nlowers || !dir) {
		fprintf(stderr, "sbx-init: started by sandboxfs as pid 1 of a sandbox, not by hand\n");
		return 2;
	}
	/* --netns: the fd after our socket is a new network namespace the
	 * daemon made ahead (clone3 made none): ours from here. */
	if (join_netns && setns(PROTO_FD + 1, CLONE_NEWNET) < 0)
		fail(errno, "join the network namespace made for us");
	/* Whatever the daemon's side left open past stdio and our socket stays
	 * out of the sandbox (its processes can open /proc/1/fd/N). */
	syscall(SYS_close_range, PROTO_FD + 1u, ~0u, 0u);
	console_setup();
	/* The root is built while the daemon makes our cgroup (v1) and moves us
	 * into it: nothing here forks or runs the sandbox's code before MSG_GO
	 * says we are there, and the cgroup namespace is made after it. */
	int64_t t0 = mono_us();
	build_root(lowers, nlowers, dir);
	int64_t rootfs_us = mono_us() - t0;
	if (sethostname(name, strlen(name)) < 0)
		fail(errno, "sethostname");
	int r = net_lo_up();
	if (r < 0)
		fail(-r, "bring up lo");

	sigset_t mask, oldmask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	signal(SIGPIPE, SIG_IGN); /* a warm shell's pipe, when it died unseen */
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		fail(errno, "signalfd");
	char go[16];
	ssize_t gn = recv(ctl, go, sizeof(go), 0);
	if (gn <= 0 || go[0] != MSG_GO)
		fail(EPIPE, "no go from the daemon");
	bool net_pending = gn > 1 && go[1] == MSG_NET;
	if (unshare_cgroup && unshare(CLONE_NEWCGROUP) < 0)
		fail(errno, "unshare cgroup namespace");
	drop_privileges();
	fcntl(ctl, F_SETFD, FD_CLOEXEC);
	/* The daemon set the network up while the root was built: ready once it has. */
	if (net_pending) {
		char net[32];
		ssize_t nn = recv(ctl, net, sizeof(net) - 1, 0);
		if (nn <= 0 || net[0] != MSG_NET)
			fail(EPIPE, "the daemon did not set up the network");
		net[nn] = '\0';
		if (net[1])
			write_resolv(net + 1);
	}
	say("ready");
	send_msg("%c%lld", MSG_READY, (long long)rootfs_us);
	serve(&oldmask, sfd);
}
