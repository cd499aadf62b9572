/* The `ns` backend: a sandbox is a tree of processes under sbx-init in new
 * pid, mount, uts, ipc, net and cgroup namespaces, with an overlay root and a
 * cgroup of its own. One clone3 per start; readiness arrives as a message on
 * the inherited socketpair. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "proto.h"
#include "vmm.h"

#define READY_TIMEOUT_MS 20000

static int ns_create(struct vmm_inst *vm, struct err *e)
{
	static const char *sub[] = {"rootfs", "upper", "work"};
	char p[PATH_MAX + 16];
	/* With disk=, upper and work are on the sandbox's disk (ns_start). */
	for (size_t i = 0; i < (vm->lim.disk_bytes ? 1 : ARRAY_SIZE(sub)); i++) {
		snprintf(p, sizeof(p), "%s/%s", vm->dir, sub[i]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return err_set(e, -errno, "cannot create %s: %s", p, strerror(errno));
	}
	return 0;
}

/* Waits for one message from init; "R" returns 0, "F" returns its errno. */
static int wait_ready(struct vmm_inst *vm, char *rootfs_note, struct err *e)
{
	struct pollfd pfd = {.fd = vm->ctl_fd, .events = POLLIN};
	int r = poll(&pfd, 1, READY_TIMEOUT_MS);
	if (r == 0)
		return err_set(e, -ETIMEDOUT, "sbx-init did not report ready within %d s",
			       READY_TIMEOUT_MS / 1000);
	char msg[PROTO_MSG_MAX + 1];
	ssize_t n = recv(vm->ctl_fd, msg, PROTO_MSG_MAX, 0);
	if (n <= 0)
		return err_set(e, -ECHILD, "sbx-init exited before it was ready (see log)");
	msg[n] = '\0';
	if (msg[0] == MSG_READY) {
		snprintf(rootfs_note, 32, "%s", msg + 1);
		return 0;
	}
	if (msg[0] == MSG_FAIL) {
		int code = atoi(msg + 1);
		char *sp = strchr(msg, ' ');
		return err_set(e, code > 0 ? -code : -EIO, "sandbox setup failed: %s",
			       sp ? sp + 1 : msg + 1);
	}
	return err_set(e, -EPROTO, "unexpected message from sbx-init: '%c'", msg[0]);
}

/* init's own failure, when it failed first (it builds its root while the
 * daemon works), says more than the daemon's step that then failed: it
 * replaces *e and *r. */
static void init_failure(struct vmm_inst *vm, struct err *e, int *r)
{
	struct pollfd pfd = {.fd = vm->ctl_fd, .events = POLLIN};
	struct err ie = {0};
	char note[32];
	if (poll(&pfd, 1, 0) == 1 && wait_ready(vm, note, &ie) < 0) {
		*e = ie;
		*r = ie.code;
	}
}

/* The namespace of kind ("net", "mnt") of pid: an fd, or -errno. */
static int open_ns(pid_t pid, const char *kind)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, kind);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* netns_fd: a network namespace made ahead for init to join, or -1 (clone3
 * makes one). */
static pid_t spawn_init(struct vmm_inst *vm, int sock, int log_fd, int cg_fd, int netns_fd)
{
	/* argv: fixed words, a --lower per layer (nearest first), the image last
	 * (its directory, or an imported image's layers, top first). */
	char layer_paths[VMM_LOWERS_MAX + VMM_IMAGE_LAYERS_MAX][PATH_MAX + VMM_IMAGE_LAYER_ID_MAX];
	char *argv[9 + 2 * (VMM_LOWERS_MAX + VMM_IMAGE_LAYERS_MAX + 1)];
	int n = 0;
	argv[n++] = "sbx-init";
	argv[n++] = "--name";
	argv[n++] = vm->name;
	argv[n++] = "--dir";
	argv[n++] = vm->dir;
	for (int i = 0; i < vm->nlowers; i++) {
		snprintf(layer_paths[i], sizeof(layer_paths[i]), "%s/%s", vmm_host()->layers_dir,
			 vm->lowers[i]);
		argv[n++] = "--lower";
		argv[n++] = layer_paths[i];
	}
	for (int i = 0; i < vm->nimage_layers; i++) {
		char *p = layer_paths[vm->nlowers + i];
		snprintf(p, sizeof(layer_paths[0]), "%s/%s", vmm_host()->image_layers_dir,
			 vm->image_layers[i]);
		argv[n++] = "--lower";
		argv[n++] = p;
	}
	if (!vm->nimage_layers) {
		argv[n++] = "--lower";
		argv[n++] = vm->image_dir;
	}
	if (cg_fd < 0)
		argv[n++] = "--unshare-cgroup";
	if (netns_fd >= 0)
		argv[n++] = "--netns";
	argv[n] = NULL;
	_cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	_Static_assert(PROTO_FD == 3, "init's socket follows its stdio");
	struct vmm_exec x = {.path = vmm_host()->init_path, .argv = argv,
			     .fds = {null_fd, log_fd, log_fd, sock, netns_fd},
			     .nfds = netns_fd >= 0 ? 5 : 4};
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD |
		   (netns_fd >= 0 ? 0 : CLONE_NEWNET);
	if (cg_fd >= 0) {
		ca.flags |= CLONE_NEWCGROUP | CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cg_fd;
	}
	ca.pidfd = (uint64_t)(uintptr_t)&vm->pidfd;
	ca.exit_signal = SIGCHLD;
	return vmm_spawn_exec(&ca, &x);
}

static int ns_start(struct vmm_inst *vm, struct vmm_timing *t, struct err *e)
{
	int sv[2] = {-1, -1}, con[2] = {-1, -1}, r;
	_cleanup_close_ int log_fd = -1, con_r = -1, cg_fd = -1, netns_fd = -1, netns_sock = -1;
	uint64_t t0 = now_usec();
	if (vm->lim.disk_bytes) { /* made the first time, mounted again after a reboot */
		if ((r = vmm_disk_mount(vm, e)) < 0)
			return r;
		if (t->nextra < (int)ARRAY_SIZE(t->extra)) {
			t->extra[t->nextra].key = "disk";
			t->extra[t->nextra++].usec = now_usec() - t0;
		}
		t0 = now_usec();
	}
	/* cgroup v2: made first, init is cloned into it. v1: init builds its
	 * root while the daemon makes the cgroup and moves it in (below); it
	 * runs nothing of the sandbox's before MSG_GO says it is there. */
	bool clone_into = cg_version() == 2;
	if (clone_into) {
		if ((r = cg_create(&vm->cg, vmm_host()->tag, vm->name, &vm->lim, e)) < 0)
			return r;
		cg_fd = cg_open_fd(&vm->cg);
		t->cgroup_usec = now_usec() - t0;
	}

	/* The console is a pipe: the daemon drains it into console.log, which the
	 * sandbox cannot reach (init's fds are open to it through /proc/1/fd).
	 * Our read end lasts until init is ready; init keeps one of its own. */
	if (pipe2(con, O_CLOEXEC) < 0) {
		r = err_set(e, -errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	con_r = con[0];
	log_fd = con[1];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = err_set(e, -errno, "socketpair: %s", strerror(errno));
		goto fail;
	}
	/* A network namespace made ahead; with networking, one whose veth pair
	 * was made ahead too when one is ready, which prestart adopts. */
	uint64_t t1 = now_usec();
	netns_fd = vm->prestart ? vmm_netns_take(true, &netns_sock) : -1;
	vm->nic.netns_veth = netns_fd >= 0;
	if (netns_fd < 0)
		netns_fd = vmm_netns_take(false, NULL);
	pid_t pid = spawn_init(vm, sv[1], log_fd, cg_fd, netns_fd);
	close(sv[1]);
	vm->ctl_fd = sv[0];
	if (pid < 0) {
		r = err_set(e, pid, "clone3 of sbx-init failed: %s", strerror(-pid));
		goto fail;
	}
	vm->pid = pid;
	vm->pid_start = vmm_pid_start(pid);
	/* None was ready: clone3's, which prestart wires by fd as well (init is
	 * our child, unreaped, so the pid is still its). */
	if (vm->prestart && netns_fd < 0 && (netns_fd = open_ns(pid, "net")) < 0) {
		r = err_set(e, netns_fd, "cannot open the network namespace of sbx-init: %s",
			    strerror(-netns_fd));
		goto fail_kill;
	}
	t->spawn_usec = now_usec() - t1;

	uint64_t t2 = now_usec();
	if (!clone_into) {
		r = cg_create(&vm->cg, vmm_host()->tag, vm->name, &vm->lim, e);
		if (r == 0)
			r = cg_attach(&vm->cg, pid, e);
		if (r < 0) {
			init_failure(vm, e, &r);
			goto fail_kill;
		}
	}
	t->cgroup_usec += now_usec() - t2;
	/* init builds the root while the network is set up (prestart): it
	 * waits for MSG_NET before it says ready. */
	uint64_t t3 = now_usec();
	char go[2] = {MSG_GO, MSG_NET}, note[32] = "";
	size_t golen = vm->prestart ? 2 : 1;
	if (send(vm->ctl_fd, go, golen, MSG_NOSIGNAL) != (ssize_t)golen) {
		r = err_set(e, -errno, "cannot talk to sbx-init: %s", strerror(errno));
		init_failure(vm, e, &r);
		goto fail_kill;
	}
	if (vm->prestart) {
		vm->nic.netns_fd = netns_fd;
		vm->nic.netns_sock = netns_sock;
		r = vm->prestart(vm, pid, vm->prestart_arg, e);
		vm->nic.netns_fd = vm->nic.netns_sock = -1;
		if (r < 0) {
			init_failure(vm, e, &r);
			goto fail_kill;
		}
		/* "N", or "N<gateway>" when the daemon answers DNS there (resolv.conf). */
		char net[2 + INET_ADDRSTRLEN] = {MSG_NET};
		if (vm->nic.dns.s_addr)
			inet_ntop(AF_INET, &vm->nic.dns, net + 1, INET_ADDRSTRLEN);
		size_t netlen = strlen(net);
		if (send(vm->ctl_fd, net, netlen, MSG_NOSIGNAL) != (ssize_t)netlen) {
			r = err_set(e, -errno, "cannot talk to sbx-init: %s", strerror(errno));
			goto fail_kill;
		}
	}
	if ((r = wait_ready(vm, note, e)) < 0)
		goto fail_kill;
	t->init_usec = now_usec() - t3;
	t->rootfs_usec = strtoull(note, NULL, 10);
	vmm_netns_done();
	return 0;

fail_kill:
	vmm_pidfd_signal(vm->pidfd, SIGKILL);
	waitid(P_PIDFD, (id_t)vm->pidfd, NULL, WEXITED);
fail:
	vmm_end_run(vm);
	vmm_netns_done();
	return r;
}

/* The mount namespace of init, for an ending run: -1 when it cannot be had
 * (init's exit then unmounts its root, as without). Opened by pid, then the
 * pidfd says the process was alive after the open, so the pid was its own. */
static int hold_mntns(const struct vmm_inst *vm)
{
	int fd = open_ns(vm->pid, "mnt");
	if (fd >= 0 && vmm_pidfd_signal(vm->pidfd, 0) < 0) {
		close(fd);
		fd = -1;
	}
	return fd < 0 ? -1 : fd;
}

static int ns_stop(struct vmm_inst *vm, int timeout_sec, struct err *e)
{
	if (vm->pidfd < 0)
		return 0;
	if (vm->ending && vm->mntns_fd < 0)
		vm->mntns_fd = hold_mntns(vm);
	char msg[32];
	int n = snprintf(msg, sizeof(msg), "%c%d", MSG_STOP, timeout_sec);
	/* An ending run with no grace: init's SIGKILL ends the pid namespace,
	 * the kernel killing the rest, without a round through init (whose
	 * console line of it would go to the trash). */
	if ((vm->ending && !timeout_sec) || vm->ctl_fd < 0 ||
	    send(vm->ctl_fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
		vmm_pidfd_signal(vm->pidfd, timeout_sec ? SIGTERM : SIGKILL);
	/* init kills everything itself at the deadline; the extra second is our backstop. */
	if (vmm_pidfd_wait(vm->pidfd, (timeout_sec + 1) * 1000) == 0) {
		log_warn("sandbox %s: init did not stop in %d s, killing it", vm->name, timeout_sec + 1);
		vmm_pidfd_signal(vm->pidfd, SIGKILL);
		/* A cgroup frozen behind our back (the journal says running) holds
		 * the kill until it is thawed. */
		cg_freeze(&vm->cg, false, NULL);
		if (vmm_pidfd_wait(vm->pidfd, 5000) == 0)
			return err_set(e, -ETIMEDOUT, "init (pid %d) survived SIGKILL", (int)vm->pid);
	}
	return 0;
}

static int ns_kill(struct vmm_inst *vm, int sig, struct err *e)
{
	if (vm->pidfd < 0)
		return err_set(e, -ESRCH, "sandbox has no running init");
	int r = vmm_pidfd_signal(vm->pidfd, sig);
	return r < 0 ? err_set(e, r, "cannot signal init: %s", strerror(-r)) : 0;
}

static int ns_freeze(struct vmm_inst *vm, struct err *e) { return cg_freeze(&vm->cg, true, e); }
static int ns_thaw(struct vmm_inst *vm, struct err *e) { return cg_freeze(&vm->cg, false, e); }

/* Copies the upper layer while the sandbox is frozen (vmm_copy_tree keeps
 * overlay whiteouts and opaque-dir xattrs, so it stacks as a lower layer exactly
 * as the source saw it). Its cost grows with the upper's size. Every path out
 * after the freeze thaws it. */
static int ns_checkpoint(struct vmm_inst *vm, const char *dest, bool frozen, struct vmm_timing *t,
			 struct err *e)
{
	char src[PATH_MAX + 16], tmp[PATH_MAX + 16], what[SBX_NAME_MAX + 32];
	vmm_disk_upper(vm, src, sizeof(src)); /* the walk follows no link, not even the first */
	snprintf(tmp, sizeof(tmp), "%s.tmp", dest);
	snprintf(what, sizeof(what), "checkpoint of %s", vm->name);
	uint64_t t0 = now_usec();
	int r = frozen ? 0 : cg_freeze(&vm->cg, true, e);
	if (r < 0)
		return r;
	uint64_t t1 = now_usec();
	vmm_remove_tree(tmp);
	if ((r = vmm_copy_tree(src, tmp, what, vm->lim.disk_bytes, e)) == -EDQUOT)
		r = e->code = -ENOSPC;
	if (r == 0 && rename(tmp, dest) < 0)
		r = err_set(e, -errno, "cannot rename %s: %s", tmp, strerror(errno));
	t->copy_usec = now_usec() - t1;
	struct err te = {0};
	if (!frozen && cg_freeze(&vm->cg, false, &te) < 0)
		log_warn("sandbox %s: cannot thaw it after its checkpoint: %s", vm->name, te.msg);
	t->freeze_usec = now_usec() - t0;
	if (r < 0)
		vmm_remove_tree(tmp);
	return r;
}

static int ns_reap(struct vmm_inst *vm, int *exit_code, struct err *why)
{
	(void)why; /* init ending is a stop: its processes' fate is in events */
	siginfo_t si;
	*exit_code = vmm_wait_exit(vm, &si);
	return vmm_end_run(vm);
}

static int ns_destroy(struct vmm_inst *vm, struct err *e)
{
	return vmm_remove_files(vm, e);
}

static int ns_adopt(struct vmm_inst *vm, struct err *e)
{
	int fd = vmm_pin_pid(vm, "sbx-init\n", e);
	if (fd < 0)
		return fd;
	vm->pidfd = fd;
	if (!vm->cg.leaf[0]) /* else the journal's (a claimed pool member's) */
		snprintf(vm->cg.leaf, sizeof(vm->cg.leaf), "%s-%s", vmm_host()->tag, vm->name);
	/* One connect to the socket init listens on; it is there or it is not. */
	int dfd = open(vm->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" PROTO_SOCK_NAME, dfd);
	if (dfd >= 0 && s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		vm->ctl_fd = s;
	} else {
		log_warn("sandbox %s: cannot reach its init at %s/" PROTO_SOCK_NAME
			 " (%s); exec will not work until it restarts", vm->name, vm->dir,
			 strerror(errno));
		if (s >= 0)
			close(s);
	}
	if (dfd >= 0)
		close(dfd);
	return 0;
}

static int ns_usage(struct vmm_inst *vm, struct vmm_usage *u)
{
	return cg_usage(&vm->cg, u);
}

/* msg (n bytes so far) + "\0KEY=VALUE" for a run option: after the command
 * line's NUL, where an init that predates them does not look. */
static int add_option(char *msg, int *n, const char *key, const char *v)
{
	int w = snprintf(msg + *n + 1, PROTO_MSG_MAX - (size_t)*n - 1, "%s=%s", key, v);
	if (w < 0 || *n + 1 + w >= PROTO_MSG_MAX)
		return -E2BIG;
	*n += 1 + w;
	return 0;
}

/* "X<id>[@USER] <command line>" and its options (proto.h). */
static int command_msg(struct vmm_inst *vm, uint64_t id, const char *cmd,
		       const struct vmm_run_opts *o, char *msg, struct err *e)
{
	const char *user = o && o->user ? o->user : vm->user;
	int n = snprintf(msg, PROTO_MSG_MAX, "%c%" PRIu64 "%s%s %s", MSG_EXEC, id,
			 user[0] ? "@" : "", user, cmd), r = 0;
	if (n < 0 || n >= PROTO_MSG_MAX)
		return err_set(e, -E2BIG, "command line too long");
	if (o && o->cwd)
		r = add_option(msg, &n, "cwd", o->cwd);
	for (int i = 0; r == 0 && o && i < o->nenv; i++)
		r = add_option(msg, &n, "env", o->env[i]);
	if (r < 0)
		return err_set(e, -E2BIG, "the command with its cwd= and env= is more than %d bytes",
			       PROTO_MSG_MAX - 1);
	return n;
}

/* msg (n bytes) and nfds (0 to 4) fds to init; flags: sendmsg's, beyond
 * MSG_NOSIGNAL. */
static int send_fds(struct vmm_inst *vm, const char *msg, int n, const int *fds, int nfds,
		    int flags, struct err *e)
{
	if (vm->ctl_fd < 0)
		return err_set(e, -ENOTCONN, "no connection to this sandbox's init, cannot run commands");
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	memset(cbuf, 0, sizeof(cbuf));
	struct iovec iov = {.iov_base = (char *)msg, .iov_len = (size_t)n};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds > 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	if (sendmsg(vm->ctl_fd, &mh, MSG_NOSIGNAL | flags) != n)
		return err_set(e, -errno, "cannot send the command to init: %s", strerror(errno));
	return 0;
}

static int send_command(struct vmm_inst *vm, uint64_t id, const char *cmd,
			const struct vmm_run_opts *o, const int *fds, int nfds, struct err *e)
{
	char msg[PROTO_MSG_MAX];
	int n = command_msg(vm, id, cmd, o, msg, e);
	return n < 0 ? n : send_fds(vm, msg, n, fds, nfds, 0, e);
}

/* "W[@USER]": the image config's user, as an exec without user= runs.
 * Never waits: an init that does not read its socket gets no warm shell
 * (the monitor's thread sends this, on init's own MSG_WARM_WANTED). */
static int ns_warm(struct vmm_inst *vm, const int fds[3], struct err *e)
{
	char msg[4 + VMM_USER_MAX];
	int n = snprintf(msg, sizeof(msg), "%c%s%s", MSG_WARM, vm->user[0] ? "@" : "", vm->user);
	return send_fds(vm, msg, n, fds, 3, MSG_DONTWAIT, e);
}

static int ns_exec_warm(struct vmm_inst *vm, uint64_t id, const char *cmd, bool job,
			struct err *e)
{
	char msg[PROTO_MSG_MAX];
	int n = snprintf(msg, sizeof(msg), "%c%" PRIu64 "%s %s", MSG_EXEC_WARM, id, job ? "j" : "",
			 cmd);
	if (n < 0 || n >= PROTO_MSG_MAX)
		return err_set(e, -E2BIG, "command line too long");
	if (strchr(cmd, '\n'))
		return err_set(e, -EINVAL, "a warm shell takes one line");
	return send_fds(vm, msg, n, NULL, 0, 0, e);
}

static int ns_exec(struct vmm_inst *vm, uint64_t id, const char *cmd,
		   const struct vmm_run_opts *o, int out_fd, struct err *e)
{
	return send_command(vm, id, cmd, o, &out_fd, 1, e);
}

static int ns_job(struct vmm_inst *vm, uint64_t id, const char *cmd, const struct vmm_run_opts *o,
		  const int fds[3], int keep_fd, struct err *e)
{
	int all[4] = {fds[0], fds[1], fds[2], keep_fd};
	return send_command(vm, id, cmd, o, all, keep_fd >= 0 ? 4 : 3, e);
}

static int ns_exec_kill(struct vmm_inst *vm, uint64_t id, int sig)
{
	if (vm->ctl_fd < 0)
		return -ENOTCONN;
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%c%" PRIu64 " %d", MSG_EXEC_KILL, id, sig);
	return send(vm->ctl_fd, msg, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -errno;
}

/* Live fork of an ns sandbox would need process checkpointing: CRIU, when
 * `criu check` passes. Probed once, in the background from start-up; the
 * answer is in /sbx/stats. (This machine's CRIU 3.17 fails on the kernel's
 * vDSO, so ns forks are file-system forks and a CRIU path is not built.) */
static struct {
	pthread_once_t once;
	char verdict[160];
} criu = {.once = PTHREAD_ONCE_INIT};

static void criu_probe(void)
{
	char line[256] = "", last[256] = "";
	FILE *p = access("/usr/sbin/criu", X_OK) == 0 || access("/usr/bin/criu", X_OK) == 0
			  ? popen("criu check 2>&1", "r") : NULL;
	if (!p) {
		snprintf(criu.verdict, sizeof(criu.verdict), "absent");
		return;
	}
	while (fgets(line, sizeof(line), p))
		if (line[0] != '\n')
			snprintf(last, sizeof(last), "%s", line);
	int st = pclose(p);
	last[strcspn(last, "\n")] = '\0';
	snprintf(criu.verdict, sizeof(criu.verdict), "%s", st == 0 ? "works" : "fails");
	if (st == 0)
		log_info("criu check passes; live fork of ns sandboxes with CRIU is not built yet, "
			 "ns forks are file-system forks");
	else
		log_info("criu check fails (%.120s): ns forks are file-system forks", last);
}

static void *criu_probe_thread(void *arg)
{
	(void)arg;
	pthread_once(&criu.once, criu_probe);
	return NULL;
}

void vmm_ns_probe(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, criu_probe_thread, NULL) == 0)
		pthread_detach(t);
}

static int ns_describe(struct buf *b)
{
	pthread_once(&criu.once, criu_probe);
	return buf_printf(b, "ns_fork_mode fs\nns_criu %s\n", criu.verdict);
}

static int ns_event(struct vmm_inst *vm, struct vmm_event *ev)
{
	return vmm_read_event(vm->ctl_fd, ev);
}

/* A warm pool's member takes its user's name when claimed: the hostname in
 * its UTS namespace, set by this thread joining it for the call (UTS may be
 * joined by one thread of a threaded process) and returning at once. */
static int ns_rename(struct vmm_inst *vm, const char *name, struct err *e)
{
	_cleanup_close_ int self = open("/proc/thread-self/ns/uts", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return err_set(e, -errno, "cannot open this thread's UTS namespace: %s",
			       strerror(errno));
	if (vm->pidfd < 0 || setns(vm->pidfd, CLONE_NEWUTS) < 0)
		return err_set(e, vm->pidfd < 0 ? -ESRCH : -errno,
			       "cannot enter the UTS namespace of sandbox %s: %s", vm->name,
			       vm->pidfd < 0 ? "it does not run" : strerror(errno));
	int r = sethostname(name, strlen(name)) < 0 ? -errno : 0;
	if (setns(self, CLONE_NEWUTS) < 0) /* not expected: the thread's own namespace */
		log_err("a daemon thread cannot return to its UTS namespace: %s", strerror(errno));
	if (r < 0)
		return err_set(e, r, "cannot set the hostname of sandbox %s: %s", name, strerror(-r));
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	return 0;
}

const struct vmm_ops vmm_ns_ops = {
	.name = "ns",
	.caps = VMM_CAP_NET | VMM_CAP_DISK | VMM_CAP_HOST_ROOT | VMM_CAP_RUN_OPTS |
		VMM_CAP_IDLE_FREE,
	.fork_mode = "fs",
	.create = ns_create,
	.start = ns_start,
	.stop = ns_stop,
	.kill = ns_kill,
	.freeze = ns_freeze,
	.checkpoint = ns_checkpoint,
	.thaw = ns_thaw,
	.reap = ns_reap,
	.destroy = ns_destroy,
	.adopt = ns_adopt,
	.usage = ns_usage,
	.exec = ns_exec,
	.exec_kill = ns_exec_kill,
	.warm = ns_warm,
	.exec_warm = ns_exec_warm,
	.job = ns_job,
	.pty_open = vmm_pty_open,
	.pty_find = vmm_pty_find,
	.event = ns_event,
	.describe = ns_describe,
	.rename = ns_rename,
};
