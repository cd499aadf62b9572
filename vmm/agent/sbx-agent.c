/* sbx-agent: pid 1 of a qemu sandbox's guest (the initramfs /init, static).
 * It mounts the pseudo filesystems, then serves the daemon over a virtio-serial
 * port (the ISA serial port ttyS1 when the guest has no driver for it;
 * agent_proto.h): runs shell commands, streams their output, reports their
 * exit status, and powers the VM off. The first frame it sends (hello) is the
 * daemon's readiness event: nothing on the host polls or retries. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../../net/net.h"
#include "../init/ids.h"
#include "../init/warm_script.h"
#include "agent.h"

#define MAX_JOBS 64
#define READ_BURST 64 /* reads of the port in a row */
/* The version its hello states: AGENT_VERSION, but for a test's agent that
 * plays one of before (qemu_tty.bats: the daemon must not ask it for what
 * it lacks). */
#ifndef AGENT_HELLO_VERSION
#define AGENT_HELLO_VERSION AGENT_VERSION
#endif
#define DEFAULT_PORT "/dev/ttyS1"

struct job {
	bool used, exited;
	uint64_t id;
	pid_t pid;
	int out_fd, err_fd; /* -1 once at EOF (err_fd: -1 for exec, whose stderr is out_fd) */
	int in_fd;          /* jobs: the write end of its stdin; -1 when closed */
	int code, sig;
	uint32_t credit; /* output bytes we may still send (AGENT_WINDOW) */
	bool job, attached; /* job: kept until the host acks its exit; attached: a host reads it */
	bool exit_sent;
	char *rb[2];     /* jobs: the last AGENT_WINDOW bytes sent of stdout, stderr (a ring) */
	uint64_t sent[2]; /* bytes sent of each */
	char *in;        /* jobs: stdin received, not yet in the pipe */
	size_t in_len;
	bool in_eof;     /* the host ended stdin: close the pipe once in_len is 0 */
	/* A terminal's job: out_fd is its master, in_fd another fd of it (no
	 * err_fd); veofs: VEOF characters owed after the input buffered now;
	 * hup_ms: once its leader exited, when an idle master is closed (the
	 * terminal hangs up on what is left of the job). */
	bool tty;
	int veofs;
	long long hup_ms;
};

static struct job jobs[MAX_JOBS];
static int port = -1;
static sigset_t old_mask;

void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(2, "sbx-agent: ", 11) < 0 || write(2, line, (size_t)n) < 0)
		return;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			poll(&pfd, 1, -1);
			continue;
		}
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* buf: a header's room, then len bytes of payload: one write, one frame. */
void send_built(char *buf, uint8_t type, uint64_t id, uint32_t len)
{
	struct agent_hdr h = {.type = type, .len = len, .id = id};
	memcpy(buf, &h, sizeof(h));
	if (write_all(port, buf, sizeof(h) + len) < 0)
		say("write to the host port failed: %s", strerror(errno));
}

void send_frame(uint8_t type, uint64_t id, const void *p, uint32_t len)
{
	static char buf[sizeof(struct agent_hdr) + AGENT_OUT_MAX];
	if (len > AGENT_OUT_MAX)
		len = AGENT_OUT_MAX;
	if (len)
		memcpy(buf + sizeof(struct agent_hdr), p, len);
	send_built(buf, type, id, len);
}

static void send_text(uint8_t type, uint64_t id, const char *s)
{
	send_frame(type, id, s, (uint32_t)strlen(s));
}

/* --- boot --- */

static void mount_one(const char *src, const char *dst, const char *type, unsigned long fl,
		      const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, fl, data) < 0 && errno != EBUSY)
		say("mount %s on %s: %s", type, dst, strerror(errno));
}

static void setup_fs(void)
{
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	/* The kernel opens /dev/console for us only when the initramfs has it. */
	if (fcntl(1, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	}
	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
	mount_one("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
}

/* Value of `key=` on the kernel command line, or def. */
static void cmdline_get(const char *key, char *out, size_t cap, const char *def)
{
	char line[4096];
	snprintf(out, cap, "%s", def);
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return;
	line[n] = '\0';
	size_t kl = strlen(key);
	for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n"))
		if (strncmp(tok, key, kl) == 0 && tok[kl] == '=') {
			snprintf(out, cap, "%s", tok + kl + 1);
			return;
		}
}

/* --- network (a VM with net=on) --- */

#define MODULES_DIR "/lib/sbx-modules"
#define GUEST_IF "eth0"

/* NAME.ko's parameters from the kernel command line (NAME.KEY=VALUE), as
 * modprobe would pass them: virtio_mmio.device=... when QEMU adds those. */
static void module_params(const char *ko, char *out, size_t cap)
{
	char line[4096], name[64];
	size_t o = 0;
	out[0] = '\0';
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(ko, "."), ko);
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return;
	line[n] = '\0';
	size_t nl = strlen(name);
	for (char *save, *tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (strncmp(tok, name, nl) == 0 && tok[nl] == '.' && o + strlen(tok) + 1 < cap)
			o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? " " : "", tok + nl + 1);
}

/* The modules a list in MODULES_DIR names, in its order (mkinitrd.sh writes
 * them with their dependencies first); one that is built in or loaded
 * already is fine. */
static int load_modules(const char *list)
{
	char order[1024], lpath[128];
	snprintf(lpath, sizeof(lpath), "%s/%s", MODULES_DIR, list);
	int fd = open(lpath, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, order, sizeof(order) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		say("no %s in the initramfs (rebuild it with make guest)", lpath);
		return -1;
	}
	order[n] = '\0';
	for (char *save, *ko = strtok_r(order, "\n", &save); ko; ko = strtok_r(NULL, "\n", &save)) {
		char path[256], params[1024];
		snprintf(path, sizeof(path), "%s/%s", MODULES_DIR, ko);
		module_params(ko, params, sizeof(params));
		int mfd = open(path, O_RDONLY | O_CLOEXEC);
		if (mfd < 0 || (syscall(SYS_finit_module, mfd, params, 0) < 0 && errno != EEXIST)) {
			say("cannot load %s: %s", path, strerror(errno));
			if (mfd >= 0)
				close(mfd);
			return -1;
		}
		close(mfd);
	}
	return 0;
}

/* virtio-mmio and the virtio-serial driver (the agent's channel), once:
 * the network's list has only what they do not. */
static int load_virtio(void)
{
	static int r = 1;
	if (r == 1)
		r = load_modules("order");
	return r;
}

/* "A.B.C.D/LEN" */
static int parse_ipnet(const char *s, struct in_addr *ip, uint8_t *plen)
{
	char a[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(a))
		return -1;
	snprintf(a, sizeof(a), "%.*s", (int)(slash - s), s);
	char *end;
	long l = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, a, ip) != 1 || *end || l < 1 || l > 32)
		return -1;
	*plen = (uint8_t)l;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* eth0 takes the identity IPNET GW (and MAC, for a clone: the host gave
 * its new TAP a new MAC, and the anti-spoofing filter drops the old one). */
static void net_take(const char *ipnet, const char *gw, const char *mac)
{
	struct in_addr ip, g;
	uint8_t plen, m[6];
	if (parse_ipnet(ipnet, &ip, &plen) < 0 || inet_pton(AF_INET, gw, &g) != 1 ||
	    (mac && parse_mac(mac, m) < 0)) {
		say("malformed network identity '%s %s %s'", ipnet, gw, mac ? mac : "");
		return;
	}
	int r = net_if_configure(GUEST_IF, mac ? m : NULL, ip, plen, g);
	if (r < 0)
		say("cannot configure %s as %s via %s: %s", GUEST_IF, ipnet, gw, strerror(-r));
}

/* At boot: sbx.ip=A.B.C.D/LEN sbx.gw=A.B.C.D on the kernel command line
 * when the VM has a network device (its MAC is QEMU's, from the host). */
static void net_boot(void)
{
	char ipnet[32], gw[32];
	cmdline_get("sbx.ip", ipnet, sizeof(ipnet), "");
	cmdline_get("sbx.gw", gw, sizeof(gw), "");
	if (!ipnet[0])
		return;
	if (load_virtio() == 0 && load_modules("net.order") == 0)
		net_take(ipnet, gw, NULL);
	else
		say("no network driver: eth0 stays down");
}

/* --- the channel to the host --- */

/* sbx.port= on the kernel command line: the name of a virtio-serial port
 * (its driver is a module: MODULES_DIR/order), or a device path (the ISA
 * serial port DEFAULT_PORT, the fallback). */
#define VPORTS_DIR "/sys/class/virtio-ports"
#define VPORT_WAIT_MS 10000

/* The host end of a virtio-serial port can go away (the daemon closed the
 * socket: a kill -9, a restart) and come back: reads then say EOF and poll
 * says POLLHUP until it does, and a write waits for it. */
static bool host_gone;

static int read_line(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, out, cap - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0)
		return -1;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* /dev/vportNpM of the port called NAME, once the driver has it (the host
 * announces ports and their names after the driver binds); the node is
 * made from its dev file when devtmpfs has not. */
static int find_vport(const char *name, char *dev, size_t cap)
{
	DIR *d = opendir(VPORTS_DIR);
	if (!d)
		return -1;
	int r = -1;
	for (struct dirent *de; r < 0 && (de = readdir(d));) {
		char p[512], got[128], mm[32];
		unsigned maj, min;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/name", VPORTS_DIR, de->d_name);
		if (read_line(p, got, sizeof(got)) < 0 || strcmp(got, name) != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s/dev", VPORTS_DIR, de->d_name);
		if (read_line(p, mm, sizeof(mm)) < 0 || sscanf(mm, "%u:%u", &maj, &min) != 2)
			continue;
		snprintf(dev, cap, "/dev/%s", de->d_name);
		if (access(dev, F_OK) < 0 && mknod(dev, S_IFCHR | 0600, makedev(maj, min)) < 0) {
			say("cannot make %s: %s", dev, strerror(errno));
			continue;
		}
		r = 0;
	}
	closedir(d);
	return r;
}

static int open_port(const char *path)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t); /* binary frames: no echo, no line editing, no CR/LF mapping */
		t.c_cflag |= CLOCAL | CREAD;
		t.c_cflag &= ~(tcflag_t)CRTSCTS;
		cfsetspeed(&t, B115200);
		tcsetattr(fd, TCSANOW, &t);
		tcflush(fd, TCIOFLUSH);
	}
	return fd;
}

/* The virtio-serial port WANT (its driver loaded first), or DEFAULT_PORT
 * when it does not appear: a missing module slows the channel, it does not
 * cut it. The path used goes to used. */
static int open_channel(const char *want, char *used, size_t cap)
{
	snprintf(used, cap, "%s", want);
	if (want[0] == '/')
		return open_port(want);
	if (load_virtio() == 0) {
		struct timespec two_ms = {0, 2 * 1000 * 1000};
		for (int i = 0; i < VPORT_WAIT_MS / 2; i++) {
			int fd = find_vport(want, used, cap) == 0 ? open_port(used) : -1;
			if (fd >= 0) {
				/* SIGIO (on the signalfd) when the host end comes and goes. */
				fcntl(fd, F_SETOWN, getpid());
				fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC);
				return fd;
			}
			nanosleep(&two_ms, NULL);
		}
		say("no virtio-serial port named %s after %d s", want, VPORT_WAIT_MS / 1000);
	}
	say("falling back to %s", DEFAULT_PORT);
	snprintf(used, cap, "%s", DEFAULT_PORT);
	return open_port(DEFAULT_PORT);
}

/* Whether the host end is there (a virtio-serial port says POLLHUP while not). */
static bool host_connected(void)
{
	struct pollfd p = {.fd = port, .events = POLLIN};
	return poll(&p, 1, 0) >= 0 && !(p.revents & (POLLHUP | POLLERR | POLLNVAL));
}

/* --- commands --- */

static struct job *job_find(uint64_t id)
{
	for (int i = 0; i < MAX_JOBS; i++)
		if (jobs[i].used && jobs[i].id == id)
			return &jobs[i];
	return NULL;
}

static void close_stdin(struct job *j)
{
	if (j->in_fd >= 0)
		close(j->in_fd);
	j->in_fd = -1;
	free(j->in);
	j->in = NULL;
	j->in_len = 0;
}

static void job_free(struct job *j)
{
	close_stdin(j);
	free(j->rb[0]);
	free(j->rb[1]);
	j->rb[0] = j->rb[1] = NULL;
	j->used = false;
}

/* The exit goes once all output went; a job's slot stays until the host's
 * AG_ACK (a restarted host may not have seen the exit). */
static void job_finish_if_done(struct job *j)
{
	if (!j->exited || j->out_fd >= 0 || j->err_fd >= 0 || j->exit_sent ||
	    (j->job && !j->attached))
		return;
	char code[32];
	snprintf(code, sizeof(code), "%d %d", j->code, j->sig);
	send_text(AG_EXIT, j->id, code);
	j->exit_sent = true;
	close_stdin(j);
	if (!j->job)
		job_free(j);
}

static void fail_start(uint64_t id, const char *why)
{
	send_text(AG_OUT, id, why);
	send_text(AG_EXIT, id, "126 0");
}

/* Undoes a start that failed half way, and says so to the host. */
static void start_failed(uint64_t id, const int *fds, int nfds, char *bufs[3], const char *why)
{
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (int i = 0; i < 3; i++)
		free(bufs[i]);
	fail_start(id, why);
}

/* A command's options (agent_proto.h, AG_EXEC): after the line's NUL. */
struct start_opts {
	char user[72];          /* "": root; USER:GROUP is at most 65 bytes */
	unsigned cols, rows;    /* a terminal's size; 0: no terminal */
	const char *bad;        /* what could not be taken: the command fails with it */
};

static void start_opts_parse(const char *p, const char *end, bool job, struct start_opts *o)
{
	for (; p < end; p += strlen(p) + 1) {
		char tail;
		if (!strncmp(p, "user=", 5) && strlen(p + 5) > 0 && strlen(p + 5) < sizeof(o->user))
			snprintf(o->user, sizeof(o->user), "%s", p + 5);
		else if (job && !strncmp(p, "tty=", 4) &&
			 sscanf(p + 4, "%ux%u%c", &o->cols, &o->rows, &tail) == 2 && o->cols &&
			 o->rows && o->cols <= 10000 && o->rows <= 10000)
			continue;
		else
			o->bad = "sbx-agent: an option this agent does not know (or a bad value)\n";
	}
}

/* A terminal of cols x rows in the guest's devpts: its master (nonblocking)
 * and slave, and the slave's number there. */
static int tty_open(unsigned cols, unsigned rows, int *master, int *slave, int *index)
{
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), n = -1, unlock = 0;
	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCGPTN, &n) < 0 ||
	    ioctl(m, TIOCSWINSZ, &ws) < 0)
		goto fail;
	char path[32];
	snprintf(path, sizeof(path), "/dev/pts/%d", n);
	int sl = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sl < 0)
		goto fail;
	fcntl(m, F_SETFL, O_NONBLOCK);
	*master = m;
	*slave = sl;
	*index = n;
	return 0;
fail:
	say("cannot open a terminal: %s", strerror(errno));
	if (m >= 0)
		close(m);
	return -1;
}

/* In the command's child: its stdio (the slave of a terminal, as its
 * controlling terminal; a job's pipes; or exec's one pipe and /dev/null),
 * its user, then sh -c cmd. Never returns. */
static void child_exec(const char *cmd, struct start_opts *o, int in, int out, int err)
{
	static char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			       "HOME=/root", "TERM=dumb", NULL};
	static char home[PATH_MAX + 8];
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	for (int sig = 1; sig < NSIG; sig++) /* nothing of pid 1's is the command's */
		signal(sig, SIG_DFL);
	setsid();
	int null = in >= 0 ? in : open("/dev/null", O_RDONLY);
	dup2(null >= 0 ? null : out, 0);
	dup2(out, 1);
	dup2(err, 2);
	/* A terminal's job leads its session with the slave as its controlling
	 * terminal: ^C, ^Z and SIGWINCH reach its foreground group. */
	if (o->cols && ioctl(0, TIOCSCTTY, 0) == 0)
		envp[2] = "TERM=xterm";
	if (chdir("/") < 0)
		_exit(126);
	if (o->user[0]) {
		id_become("sbx-agent", o->user, home, sizeof(home));
		envp[1] = home;
	}
	execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, envp);
	_exit(127);
}

/* --- the warm shell: one /bin/sh forked and exec'd ahead of the next command ---
 *
 * Under TCG a fork of this process and an exec of /bin/sh are most of an
 * exec's time (8 to 40 ms here, more after the VM sat idle, as a warm pool's
 * member does). The warm shell has done both when an exec or a job without
 * options comes: its line is written to the shell's command pipe (fd 3),
 * after 'e' (an exec: the shell joins stderr to stdout and reads /dev/null)
 * or 'j' (a job), and the shell's pipes, made as a job's, become the
 * command's (WARM_SCRIPT, as sbx-init's).
 * The first starts after the boot's hello (which also has the emulator
 * translate the exec path before the first command), the next when a
 * command ends and none waits (the one that took it, or any after the
 * sandbox killed it), so its fork never takes a warm command's CPU. A
 * clone keeps its source's: a process that waits holds nothing of the
 * source's identity. */
static struct {
	pid_t pid;  /* 0: none */
	int cmd_fd; /* the write end of its command pipe */
	int fds[3]; /* ours: its stdin's write end, its stdout's and stderr's read ends */
} warm = {0, -1, {-1, -1, -1}};

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

static void warm_close(void)
{
	close_all(&warm.cmd_fd, 1);
	close_all(warm.fds, 3);
	warm.pid = 0;
}

static void warm_start(void)
{
	/* stdin, stdout, stderr, the command: [k][0] read ends, [k][1] write ends */
	int p[4][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
	bool made = !warm.pid;
	for (int k = 0; k < 4 && made; k++)
		made = pipe2(p[k], O_CLOEXEC) == 0;
	pid_t pid = made ? fork() : -1;
	if (pid == 0) {
		struct start_opts none = {0};
		int io[3] = {p[0][0], p[1][1], p[2][1]};
		/* The command pipe becomes fd 3, without close-on-exec; stdio
		 * that had that number moves off it first. */
		for (int k = 0; k < 3; k++)
			if (io[k] == 3 && (io[k] = fcntl(3, F_DUPFD_CLOEXEC, 4)) < 0)
				_exit(126);
		if ((p[3][0] == 3 ? fcntl(3, F_SETFD, 0) : dup2(p[3][0], 3)) < 0)
			_exit(126);
		child_exec(WARM_SCRIPT, &none, io[0], io[1], io[2]);
	}
	int theirs[4] = {p[0][0], p[1][1], p[2][1], p[3][0]};
	int ours[4] = {p[0][1], p[1][0], p[2][0], p[3][1]};
	close_all(theirs, 4);
	if (pid < 0) {
		close_all(ours, 4);
		return;
	}
	for (int k = 0; k < 3; k++)
		fcntl(ours[k], F_SETFL, O_NONBLOCK);
	warm.pid = pid;
	memcpy(warm.fds, ours, sizeof(warm.fds));
	warm.cmd_fd = ours[3];
}

/* An exec or a job that fits the warm shell (no option, one line that one
 * pipe write takes whole) becomes it: its pid and pipes are j's (an exec
 * reads stdout alone), and so are bufs (job_start's). False: none waits, or
 * the line does not fit; the command then starts cold, bufs still the
 * caller's. */
static bool warm_take(struct job *j, uint64_t id, const char *line, const struct start_opts *o,
		      bool job, char *bufs[3])
{
	size_t n = strlen(line);
	if (!warm.pid || o->user[0] || o->cols || n + 2 > PIPE_BUF || strchr(line, '\n'))
		return false;
	char buf[PIPE_BUF];
	buf[0] = job ? 'j' : 'e';
	memcpy(buf + 1, line, n);
	buf[n + 1] = '\n';
	if (write(warm.cmd_fd, buf, n + 2) != (ssize_t)(n + 2)) {
		/* gone before its line came (its exit is reaped as any child's) */
		kill(warm.pid, SIGKILL);
		warm_close();
		return false;
	}
	*j = (struct job){.used = true, .id = id, .pid = warm.pid, .out_fd = warm.fds[1],
			  .err_fd = job ? warm.fds[2] : -1, .in_fd = job ? warm.fds[0] : -1,
			  .credit = AGENT_WINDOW, .in = bufs[0], .job = job, .attached = true,
			  .rb = {bufs[1], bufs[2]}};
	warm.fds[1] = -1;
	if (job)
		warm.fds[0] = warm.fds[2] = -1;
	warm_close();
	return true;
}

/* A terminal's job: stdout is the master (out_fd), its stdin a second fd of
 * it (in_fd); stderr is the terminal's too (no err_fd). */
static int tty_stdio(const struct start_opts *o, int o_[2], int in[2], int *index)
{
	int m, sl;
	if (tty_open(o->cols, o->rows, &m, &sl, index) < 0)
		return -1;
	o_[0] = m;
	o_[1] = sl;
	in[1] = fcntl(m, F_DUPFD_CLOEXEC, 0);
	return in[1] < 0 ? -1 : 0;
}

/* A command in a new process: exec (job false), stdout and stderr in one
 * pipe, stdin /dev/null; a job, three pipes, its stdin fed by AG_IN frames;
 * or with tty= a terminal (its number in *pts). -1: it failed, and said so. */
static int cold_start(struct job *j, uint64_t id, const char *payload, struct start_opts *o,
		      bool job, char *bufs[3], int *pts)
{
	int o_[2] = {-1, -1}, er[2] = {-1, -1}, in[2] = {-1, -1};
	int r = o->cols ? tty_stdio(o, o_, in, pts) : pipe2(o_, O_CLOEXEC);
	if (r < 0 || (job && !o->cols && (pipe2(er, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0))) {
		int fds[] = {o_[0], o_[1], er[0], er[1], in[0], in[1]};
		start_failed(id, fds, 6, bufs, o->cols ? "sbx-agent: cannot open a terminal\n"
						       : "sbx-agent: pipe failed\n");
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0)
		child_exec(payload, o, o->cols ? o_[1] : job ? in[0] : -1, o_[1],
			   job && !o->cols ? er[1] : o_[1]);
	close(o_[1]);
	if (er[1] >= 0)
		close(er[1]);
	if (in[0] >= 0)
		close(in[0]);
	if (pid < 0) {
		int fds[] = {o_[0], er[0], in[1]};
		start_failed(id, fds, 3, bufs, "sbx-agent: fork failed\n");
		return -1;
	}
	for (int k = 0; k < 3; k++) {
		int fd = k == 0 ? o_[0] : k == 1 ? er[0] : in[1];
		if (fd >= 0)
			fcntl(fd, F_SETFL, O_NONBLOCK);
	}
	*j = (struct job){.used = true, .id = id, .pid = pid, .out_fd = o_[0], .err_fd = er[0],
			  .in_fd = in[1], .credit = AGENT_WINDOW, .in = bufs[0], .job = job,
			  .attached = true, .rb = {bufs[1], bufs[2]}, .tty = o->cols > 0};
	return 0;
}

/* An exec or a job: in the warm shell when it fits, else cold. A job's stdin
 * and output buffers are allocated here, for either. AG_PID says its pid,
 * a terminal's number, or that the warm shell took it (the host counts
 * those). */
static void job_start(uint64_t id, const char *payload, size_t len, bool job)
{
	struct job *j = NULL;
	struct start_opts o = {0};
	int pts = -1;
	start_opts_parse(payload + strlen(payload) + 1, payload + len, job, &o);
	for (int i = 0; i < MAX_JOBS && !j; i++)
		if (!jobs[i].used)
			j = &jobs[i];
	if (!j || o.bad) {
		fail_start(id, o.bad ? o.bad : "sbx-agent: too many commands\n");
		return;
	}
	char *bufs[3] = {job ? malloc(AGENT_IN_WINDOW) : NULL, job ? malloc(AGENT_WINDOW) : NULL,
			 job ? malloc(AGENT_WINDOW) : NULL};
	if (job && (!bufs[0] || !bufs[1] || !bufs[2])) {
		start_failed(id, NULL, 0, bufs, "sbx-agent: out of memory\n");
		return;
	}
	bool warm_took = warm_take(j, id, payload, &o, job, bufs);
	if (!warm_took && cold_start(j, id, payload, &o, job, bufs, &pts) < 0)
		return;
	/* "PID -1 w": a daemon of before reads -1 (no terminal) and ignores the rest. */
	char p[40];
	if (warm_took)
		snprintf(p, sizeof(p), "%d -1 w", (int)j->pid);
	else if (j->tty)
		snprintf(p, sizeof(p), "%d %d", (int)j->pid, pts);
	else
		snprintf(p, sizeof(p), "%d", (int)j->pid);
	send_text(AG_PID, id, p);
}

/* Moves buffered stdin into the job's pipe; credits the daemon for what went in. */
static void job_feed(struct job *j)
{
	size_t done = 0;
	while (j->in_fd >= 0 && done < j->in_len) {
		ssize_t w = write(j->in_fd, j->in + done, j->in_len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0) { /* the job closed its stdin: what it would not read is dropped */
			done = j->in_len;
			close(j->in_fd);
			j->in_fd = -1;
			break;
		}
		done += (size_t)w;
	}
	if (j->in_eof && done == j->in_len && j->in_fd >= 0) {
		close(j->in_fd);
		j->in_fd = -1;
	}
	/* A terminal's end of input, after what came before it. */
	struct termios t;
	while (j->veofs && j->in_fd >= 0 && done == j->in_len) {
		char c = tcgetattr(j->in_fd, &t) == 0 && t.c_cc[VEOF] != _POSIX_VDISABLE
				 ? (char)t.c_cc[VEOF] : '\x04';
		if (write(j->in_fd, &c, 1) != 1)
			break;
		j->veofs--;
	}
	if (!done)
		return;
	memmove(j->in, j->in + done, j->in_len - done);
	j->in_len -= done;
	char p[24];
	snprintf(p, sizeof(p), "%zu", done);
	send_text(AG_CREDIT, j->id, p);
}

static void job_input(uint64_t id, const char *p, size_t n)
{
	struct job *j = job_find(id);
	if (!j || !j->in)
		return;
	if (j->in_fd < 0) { /* its stdin is closed: dropped, and credited so the host goes on */
		char c[24];
		snprintf(c, sizeof(c), "%zu", n);
		if (n)
			send_text(AG_CREDIT, j->id, c);
		return;
	}
	if (n > AGENT_IN_WINDOW - j->in_len) {
		say("the host overran job %llu's stdin window", (unsigned long long)id);
		n = AGENT_IN_WINDOW - j->in_len;
	}
	memcpy(j->in + j->in_len, p, n);
	j->in_len += n;
	j->in_eof = j->in_eof || n == 0;
	job_feed(j);
}

/* Output of one stream (0 stdout, 1 stderr) of j. */
/* Keeps what went of a job's stream in its ring (for a restarted host). */
static void ring_keep(struct job *j, int stream, const char *p, size_t n)
{
	size_t at = (size_t)(j->sent[stream] % AGENT_WINDOW), first = AGENT_WINDOW - at;
	if (first > n)
		first = n;
	memcpy(j->rb[stream] + at, p, first);
	memcpy(j->rb[stream], p + first, n - first);
}

static void job_output(struct job *j, int stream)
{
	/* Read in place after the header's room: the frame goes in one write. */
	static char frame[sizeof(struct agent_hdr) + AGENT_OUT_MAX];
	char *buf = frame + sizeof(struct agent_hdr);
	size_t cap = j->credit < AGENT_OUT_MAX ? j->credit : AGENT_OUT_MAX;
	int *fd = stream ? &j->err_fd : &j->out_fd;
	/* No credit left (the other stream took it, or a resync held the job in
	 * this same round): a read of 0 bytes would look like EOF, and closing
	 * the pipe would kill the job with SIGPIPE. */
	if (j->credit == 0 || *fd < 0)
		return;
	ssize_t n = read(*fd, buf, cap);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		j->credit -= (uint32_t)n;
		send_built(frame, stream ? AG_ERR : AG_OUT, j->id, (uint32_t)n);
		if (j->rb[stream])
			ring_keep(j, stream, buf, (size_t)n);
		j->sent[stream] += (uint64_t)n;
		return;
	}
	close(*fd);
	*fd = -1;
	job_finish_if_done(j);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long a terminal stays open after its job's leader exited while
 * something else of the job holds it (what the leader wrote is in the master
 * by then: the pty's buffer work is queued at its write). */
#define TTY_HUP_MS 300

/* Terminals whose leader exited: once idle past hup_ms (and the host takes
 * output: unread output is not thrown away), the master closes, which hangs
 * up the slave (SIGHUP to what holds it) and ends the job. The poll timeout
 * until the next such moment, or -1. */
static int tty_hangups(void)
{
	int next = -1;
	long long now = now_ms();
	for (int i = 0; i < MAX_JOBS; i++) {
		struct job *j = &jobs[i];
		if (!j->used || !j->tty || !j->exited || j->out_fd < 0)
			continue;
		struct pollfd p = {.fd = j->out_fd, .events = POLLIN};
		if (now < j->hup_ms || j->credit == 0 || poll(&p, 1, 0) != 0) {
			long long left = j->hup_ms > now ? j->hup_ms - now : TTY_HUP_MS;
			if (next < 0 || left < next)
				next = (int)left;
			continue;
		}
		close(j->out_fd);
		j->out_fd = -1;
		close_stdin(j);
		job_finish_if_done(j);
	}
	return next;
}

static void reap_children(void)
{
	int st;
	pid_t pid;
	bool next_warm = false;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == warm.pid) /* ended before its line came */
			warm_close();
		for (int i = 0; i < MAX_JOBS; i++)
			if (jobs[i].used && !jobs[i].exited && jobs[i].pid == pid) {
				next_warm = true;
				jobs[i].exited = true;
				jobs[i].code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				jobs[i].sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
				jobs[i].hup_ms = now_ms() + TTY_HUP_MS;
				job_finish_if_done(&jobs[i]);
			}
	}
	if (next_warm) /* a command ended: none waits when it took it, or the
			* sandbox killed it */
		warm_start();
}

/* SIGTERM to everything, SIGKILL after `secs`, then off: with -no-reboot,
 * QEMU exits when the guest resets. */
static void power_off(int secs)
{
	say("powering off");
	kill(-1, SIGTERM);
	struct timespec ten_ms = {0, 10 * 1000 * 1000};
	for (int i = 0; i < secs * 100; i++) {
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			break;
		nanosleep(&ten_ms, NULL);
	}
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	sync();
	reboot(RB_AUTOBOOT);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write_all(fd, text, strlen(text)) < 0)
		say("write %s: %s", path, strerror(errno));
	close(fd);
}

/* boot_id is the kernel's: a file of ours bound over it gives processes
 * another view. At boot the file holds the kernel's, so that a clone
 * changes it with a write, in place, with no mount (a mount and an unmount
 * were a good part of a clone's start under TCG); the bind is made again
 * should the guest have undone it. */
#define BOOT_ID "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_FILE "/run/sbx-boot_id"
static void boot_id_set(const char *id)
{
	struct stat a, b;
	write_text(BOOT_ID_FILE, id);
	if (stat(BOOT_ID, &a) == 0 && stat(BOOT_ID_FILE, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return;
	umount2(BOOT_ID, MNT_DETACH);
	if (mount(BOOT_ID_FILE, BOOT_ID, NULL, MS_BIND, NULL) < 0)
		say("cannot give boot_id a new view: %s", strerror(errno));
}

/* At boot: the kernel's boot_id through our file. */
static void boot_id_bind(void)
{
	char id[64], line[66];
	if (read_line(BOOT_ID, id, sizeof(id)) < 0 || !id[0])
		return; /* a clone's start binds it */
	snprintf(line, sizeof(line), "%s\n", id);
	boot_id_set(line);
}

/* A new identity after a restore: nothing a clone shares with its source
 * (hostname, clock, RNG state, machine-id, boot_id, the old host's sessions). */
/* The host sends its sync marker and frame twice (the first may land in
 * the tail of a frame the old host left half-sent): the nonce of the last
 * one acted on makes the second a no-op. */
static char last_nonce[40];

static bool seen_nonce(const char *nonce)
{
	if (strcmp(nonce, last_nonce) == 0)
		return true;
	snprintf(last_nonce, sizeof(last_nonce), "%s", nonce);
	return false;
}

static void become_clone(char *payload)
{
	char name[65] = "", nonce[40] = "", hex[80] = "", mode[16] = "clone";
	char ipnet[32] = "", gw[32] = "", mac[32] = "";
	long long sec = 0;
	long nsec = 0;
	if (sscanf(payload, "%64s %lld %ld %39s %79s %15s %31s %31s %31s", name, &sec, &nsec, nonce,
		   hex, mode, ipnet, gw, mac) < 5) {
		say("malformed fork frame");
		return;
	}
	if (seen_nonce(nonce))
		return;
	files_drop_all();
	for (int i = 0; i < MAX_JOBS; i++) { /* their clients are the source's */
		struct job *j = &jobs[i];
		if (!j->used)
			continue;
		if (!j->exited && kill(-j->pid, SIGKILL) < 0)
			kill(j->pid, SIGKILL);
		if (j->out_fd >= 0)
			close(j->out_fd);
		if (j->err_fd >= 0)
			close(j->err_fd);
		job_free(j);
	}
	struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = nsec};
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		say("clock_settime: %s", strerror(errno));
	if (sethostname(name, strlen(name)) < 0)
		say("sethostname: %s", strerror(errno));
	/* The host's 32 bytes, credited as entropy, then a reseed of the CRNG
	 * before any user code runs again. */
	struct {
		struct rand_pool_info info;
		unsigned char buf[32];
	} rp = {.info = {.entropy_count = 256, .buf_size = 32}};
	size_t n = strlen(hex) / 2;
	for (size_t i = 0; i < n && i < 32; i++)
		rp.buf[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
	int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, &rp) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
		say("cannot reseed the RNG: %s", strerror(errno));
	unsigned char id[16];
	char idhex[40], uuid[40];
	if (fd < 0 || read(fd, id, sizeof(id)) != (ssize_t)sizeof(id))
		memcpy(id, rp.buf, sizeof(id));
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 16; i++)
		snprintf(idhex + 2 * i, 3, "%02x", id[i]);
	snprintf(uuid, sizeof(uuid), "%.8s-%.4s-%.4s-%.4s-%.12s\n", idhex, idhex + 8, idhex + 12,
		 idhex + 16, idhex + 20);
	idhex[32] = '\n';
	idhex[33] = '\0';
	if (strcmp(mode, "resume") == 0) /* standby: the same machine, on again */
		goto answer;
	if (mac[0]) /* before anything of the source's can send as the clone */
		net_take(ipnet, gw, mac);
	if (access("/etc/machine-id", F_OK) == 0)
		write_text("/etc/machine-id", idhex);
	boot_id_set(uuid);
answer:;
	char hello[80];
	snprintf(hello, sizeof(hello), "sbx-agent %d fork %s", AGENT_HELLO_VERSION, nonce);
	send_text(AG_HELLO, 0, hello);
}

/* A new host: exec sessions end (their clients were the old host's); jobs
 * run on, their output held until the host attaches them again. */
static void resync(const char *nonce)
{
	if (seen_nonce(nonce))
		return;
	files_drop_all(); /* their clients were the old host's */
	for (int i = 0; i < MAX_JOBS; i++) {
		struct job *j = &jobs[i];
		if (!j->used)
			continue;
		if (j->job) {
			j->attached = false;
			j->credit = 0;
			continue;
		}
		if (!j->exited && kill(-j->pid, SIGKILL) < 0)
			kill(j->pid, SIGKILL);
		if (j->out_fd >= 0)
			close(j->out_fd);
		j->out_fd = -1;
		job_free(j);
	}
	char hello[80];
	snprintf(hello, sizeof(hello), "sbx-agent %d resync %.40s", AGENT_HELLO_VERSION, nonce);
	send_text(AG_HELLO, 0, hello);
}

/* The host has `have` bytes of each stream: the rest again, then the exit. */
static void attach(uint64_t id, const char *payload)
{
	struct job *j = job_find(id);
	if (!j || !j->job) {
		send_text(AG_EXIT, id, "-1 0"); /* gone: its exit is unknown */
		return;
	}
	unsigned long long have[2] = {0, 0};
	sscanf(payload, "%llu %llu", &have[0], &have[1]);
	uint32_t resent = 0;
	for (int k = 0; k < 2; k++) {
		uint64_t from = have[k] < j->sent[k] ? have[k] : j->sent[k];
		if (j->sent[k] - from > AGENT_WINDOW)
			from = j->sent[k] - AGENT_WINDOW; /* cannot happen within the window */
		while (from < j->sent[k]) {
			static char buf[AGENT_OUT_MAX];
			uint32_t n = 0;
			for (; n < sizeof(buf) && from + n < j->sent[k]; n++)
				buf[n] = j->rb[k][(from + n) % AGENT_WINDOW];
			send_frame(k ? AG_ERR : AG_OUT, id, buf, n);
			from += n;
			resent += n;
		}
	}
	j->attached = true;
	j->exit_sent = false;
	j->credit = resent < AGENT_WINDOW ? AGENT_WINDOW - resent : 0;
	job_finish_if_done(j);
}

static void handle_frame(const struct agent_hdr *h, char *payload)
{
	payload[h->len] = '\0';
	switch (h->type) {
	case AG_EXEC:
	case AG_JOB:
		job_start(h->id, payload, h->len, h->type == AG_JOB);
		break;
	case AG_IN:
		job_input(h->id, payload, h->len);
		break;
	case AG_KILL: {
		int sig = atoi(payload);
		struct job *j = h->id ? job_find(h->id) : NULL;
		if (!h->id)
			kill(-1, sig); /* from pid 1: every process but us */
		else if (j && !j->exited && kill(-j->pid, sig) < 0)
			kill(j->pid, sig);
		break;
	}
	case AG_WINSZ: {
		struct job *j = job_find(h->id);
		unsigned cols, rows;
		int fd = j && j->tty ? (j->in_fd >= 0 ? j->in_fd : j->out_fd) : -1;
		if (fd >= 0 && sscanf(payload, "%u %u", &cols, &rows) == 2 && cols && rows &&
		    cols <= 10000 && rows <= 10000) {
			struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
			if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
				say("cannot resize job %llu's terminal: %s", (unsigned long long)h->id,
				    strerror(errno));
		}
		break;
	}
	case AG_VEOF: {
		struct job *j = job_find(h->id);
		if (j && j->tty && j->in_fd >= 0 && j->veofs < 1024) {
			j->veofs++;
			job_feed(j);
		}
		break;
	}
	case AG_CREDIT: {
		struct job *j = job_find(h->id);
		long n = atol(payload);
		if (!j && files_credit(h->id, n))
			break;
		if (j && n > 0 && j->credit + (uint64_t)n <= AGENT_WINDOW)
			j->credit += (uint32_t)n;
		break;
	}
	case AG_POWEROFF:
		power_off(atoi(payload));
		break;
	case AG_FORK:
		become_clone(payload);
		break;
	case AG_RESYNC:
		resync(payload);
		break;
	case AG_ATTACH:
		attach(h->id, payload);
		break;
	case AG_FILE:
		files_request(h->id, payload, h->len);
		break;
	case AG_FDATA:
		files_data(h->id, payload, h->len);
		break;
	case AG_FEND:
		files_end(h->id);
		break;
	case AG_ACK: {
		struct job *j = job_find(h->id);
		if (j && j->exit_sent)
			job_free(j);
		break;
	}
	default:
		say("unknown frame type 0x%02x from the host", h->type);
	}
}

/* Consumes every complete frame at the start of buf; returns the bytes left. */
static size_t handle_input(char *buf, size_t len)
{
	size_t off = 0;
	for (;;) {
		/* A sync marker: what came before it is a half frame of an old host
		 * (a restore, a restarted daemon) and goes. */
		char *sync = memmem(buf + off, len - off, AGENT_SYNC, AGENT_SYNC_LEN);
		if (sync)
			off = (size_t)(sync - buf) + AGENT_SYNC_LEN;
		if (len - off < sizeof(struct agent_hdr))
			break;
		struct agent_hdr h;
		memcpy(&h, buf + off, sizeof(h));
		if (h.len > AGENT_FDATA_MAX) {
			/* Out of step: wait for a marker, keeping a tail that may start one. */
			size_t keep = len - off < AGENT_SYNC_LEN ? len - off : AGENT_SYNC_LEN - 1;
			say("bad frame from the host (length %u); dropping input", h.len);
			off = len - keep;
			break;
		}
		if (len - off < sizeof(h) + h.len)
			break;
		static char payload[AGENT_FDATA_MAX + 1];
		memcpy(payload, buf + off + sizeof(h), h.len);
		handle_frame(&h, payload);
		off += sizeof(h) + h.len;
	}
	memmove(buf, buf + off, len - off);
	return len - off;
}

static void serve(int sfd)
{
	static char in[2 * (sizeof(struct agent_hdr) + AGENT_FDATA_MAX)];
	size_t in_len = 0;
	for (;;) {
		struct pollfd pfd[2 + 3 * MAX_JOBS];
		struct job *who[2 + 3 * MAX_JOBS];
		int what[2 + 3 * MAX_JOBS]; /* 0 stdout, 1 stderr, 2 stdin */
		int n = 0;
		int hup_ms = tty_hangups(); /* before the fds are listed: it closes some */
		/* While the host is gone the port only says so: SIGIO (or a
		 * look a second later) tells when it is back. */
		pfd[n++] = (struct pollfd){.fd = host_gone ? -1 : port, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		for (int i = 0; i < MAX_JOBS; i++) {
			struct job *j = &jobs[i];
			if (!j->used)
				continue;
			for (int k = 0; k < 2 && j->credit > 0; k++) {
				int fd = k ? j->err_fd : j->out_fd;
				if (fd >= 0) {
					who[n] = j;
					what[n] = k;
					pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
				}
			}
			if (j->in_fd >= 0 && (j->in_len || j->veofs)) {
				who[n] = j;
				what[n] = 2;
				pfd[n++] = (struct pollfd){.fd = j->in_fd, .events = POLLOUT};
			}
		}
		int timeout_ms = host_gone && (hup_ms < 0 || hup_ms > 1000) ? 1000 : hup_ms;
		if (!host_gone && files_pump())
			timeout_ms = 0; /* a get has more to send, and credit */
		if (poll(pfd, (nfds_t)n, timeout_ms) < 0)
			continue;
		if (host_gone && host_connected()) {
			host_gone = false;
			say("the host is back");
		} else if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			/* The port is nonblocking: what is there now, without a poll
			 * between (a virtio-serial read gives one 4 KiB buffer). */
			ssize_t r;
			int burst = 0;
			while ((r = read(port, in + in_len, sizeof(in) - in_len)) > 0 &&
			       ++burst < READ_BURST)
				in_len = handle_input(in, in_len + (size_t)r);
			if (r > 0) {
				in_len = handle_input(in, in_len + (size_t)r);
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				/* The rest of a frame from this host will not come. */
				say("the host closed the channel (%s); waiting for it",
				    r == 0 ? "EOF" : strerror(errno));
				host_gone = true;
				in_len = 0;
				files_drop_all();
			}
		}
		for (int i = 2; i < n; i++) {
			struct job *j = who[i];
			if (!pfd[i].revents || !j->used)
				continue;
			if (what[i] < 2) {
				job_output(j, what[i]);
				continue;
			}
			job_feed(j);
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
		}
		reap_children(); /* cheap, and covers a SIGCHLD that raced the poll */
	}
}

static long ms_between(const struct timespec *a, const struct timespec *b)
{
	return (long)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

/* --- the image's root disk (sbx.root=DEV) --- */

#define ROOT_BASE "/sbx-root"
#define ROOT_WAIT_MS 10000

/* "fatal: " marks the line the daemon shows as the reason the VM ended. */
static void root_fail(const char *what, const char *why)
{
	say("fatal: root disk: %s: %s", what, why);
	power_off(0);
}

/* An image other than the initramfs's: its erofs disk (read-only, shared
 * with every VM of the image) under a tmpfs upper layer (overlayfs, this
 * VM's own writes) becomes / for the agent and everything it runs, with
 * /dev, /proc, /sys and /run moved over and a fresh /tmp. The initramfs
 * stays under it (its modules are loaded by then). A failure powers off
 * with the sentence on the console, which the daemon shows. */
static void root_switch(void)
{
	char dev[64];
	cmdline_get("sbx.root", dev, sizeof(dev), "");
	if (!dev[0])
		return;
	if (load_virtio() < 0 || load_modules("blk.order") < 0)
		root_fail(dev, "cannot load its drivers (rebuild the initramfs with make guest)");
	struct stat st;
	struct timespec ten_ms = {0, 10 * 1000 * 1000};
	for (int i = 0; stat(dev, &st) < 0 && i < ROOT_WAIT_MS / 10; i++)
		nanosleep(&ten_ms, NULL);
	if (stat(dev, &st) < 0 || !S_ISBLK(st.st_mode))
		root_fail(dev, "no such block device");
	mkdir(ROOT_BASE, 0700);
	if (mkdir(ROOT_BASE "/lower", 0755) < 0 || mkdir(ROOT_BASE "/rw", 0755) < 0 ||
	    mkdir(ROOT_BASE "/new", 0755) < 0)
		root_fail(ROOT_BASE, strerror(errno));
	if (mount(dev, ROOT_BASE "/lower", "erofs", MS_RDONLY, NULL) < 0)
		root_fail(dev, strerror(errno));
	if (mount("tmpfs", ROOT_BASE "/rw", "tmpfs", 0, "mode=0755") < 0 ||
	    mkdir(ROOT_BASE "/rw/upper", 0755) < 0 || mkdir(ROOT_BASE "/rw/work", 0755) < 0)
		root_fail("its writable layer", strerror(errno));
	if (mount("overlay", ROOT_BASE "/new", "overlay", 0,
		  "lowerdir=" ROOT_BASE "/lower,upperdir=" ROOT_BASE "/rw/upper,workdir=" ROOT_BASE
		  "/rw/work") < 0)
		root_fail("overlay", strerror(errno));
	static const char *const moved[] = {"/dev", "/proc", "/sys", "/run"};
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		char to[64];
		snprintf(to, sizeof(to), ROOT_BASE "/new%s", moved[i]);
		mkdir(to, 0755);
		if (mount(moved[i], to, NULL, MS_MOVE, NULL) < 0)
			root_fail(moved[i], strerror(errno));
	}
	if (chdir(ROOT_BASE "/new") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0)
		root_fail("switching to it", strerror(errno));
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (access("/bin/sh", X_OK) < 0)
		root_fail("the image", "it has no /bin/sh to run commands with");
}

int main(void)
{
	char name[64], want[64], path[PATH_MAX];
	setup_fs();
	cmdline_get("sbx.name", name, sizeof(name), "sandbox");
	cmdline_get("sbx.port", want, sizeof(want), DEFAULT_PORT);
	if (sethostname(name, strlen(name)) < 0)
		say("sethostname: %s", strerror(errno));
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGIO); /* the port's host end came or went (O_ASYNC) */
	sigprocmask(SIG_BLOCK, &mask, &old_mask);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	port = open_channel(want, path, sizeof(path));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (port < 0) {
		say("cannot open %s: %s; powering off", path, strerror(errno));
		power_off(0);
	}
	fcntl(port, F_SETFL, fcntl(port, F_GETFL) | O_NONBLOCK); /* write_all polls */
	net_lo_up();
	net_boot(); /* eth0 is up before the hello */
	root_switch(); /* after every module of the initramfs is loaded */
	boot_id_bind(); /* on the final /proc and /run */
	clock_gettime(CLOCK_MONOTONIC, &t2);
	char hello[32];
	snprintf(hello, sizeof(hello), "sbx-agent %d", AGENT_HELLO_VERSION);
	send_text(AG_HELLO, 0, hello);
	warm_start();
	/* Guest time (TCG's clock is rough): what the modules cost the boot. */
	say("ready on %s (channel %ld ms, network %ld ms)", path, ms_between(&t0, &t1),
	    ms_between(&t1, &t2));
	serve(sfd);
	return 0;
}
