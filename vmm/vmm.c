/* The backend registry (a table of ops, one row per backend) and helpers
 * every backend shares. */
#define _GNU_SOURCE
#include "vmm.h"

#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "proto.h"

static const struct vmm_ops *const backends[] = {&vmm_ns_ops, &vmm_qemu_ops, NULL};
static struct vmm_host host;

void vmm_host_set(const struct vmm_host *h) { host = *h; }

int vmm_host_init(const struct vmm_host *h, struct err *e)
{
	vmm_host_set(h);
	vmm_spawn_init(); /* low fds, before the daemon holds many */
	if (access(host.init_path, X_OK) < 0)
		return err_set(e, -errno, "cannot run %s: %s", host.init_path, strerror(errno));
	vmm_ns_probe();
	int r = cg_host_init(e);
	if (r == 0)
		vmm_qemu_spares_sweep();
	return r;
}

const struct vmm_host *vmm_host(void) { return &host; }

const struct vmm_ops *vmm_find(const char *name)
{
	for (size_t i = 0; backends[i]; i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

const struct vmm_ops *const *vmm_all(void) { return backends; }

void vmm_inst_init(struct vmm_inst *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->pidfd = -1;
	vm->ctl_fd = -1;
	vm->mntns_fd = -1;
	vm->nic.tap_fd = -1;
	vm->nic.netns_fd = -1;
	vm->nic.netns_sock = -1;
}

int vmm_read_event(int fd, struct vmm_event *ev)
{
	char msg[128], *sp;
	ev->kind = VMM_EV_NONE;
	ev->tty = -1;
	ev->warm = 0;
	ev->lost = false;
	ssize_t n = recv(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		ev->kind = VMM_EV_HANGUP;
		return 0;
	}
	msg[n] = '\0';
	if (msg[0] == MSG_EXEC_EXIT) {
		ev->kind = VMM_EV_EXEC_EXIT;
		ev->exec_id = strtoull(msg + 1, &sp, 10);
		ev->exit_code = (int)strtol(sp, &sp, 10);
		ev->signal = (int)strtol(sp, &sp, 10);
		ev->lost = strcmp(sp, " lost") == 0;
	} else if (msg[0] == MSG_EXEC_PID) {
		ev->kind = VMM_EV_EXEC_PID;
		ev->exec_id = strtoull(msg + 1, &sp, 10);
		ev->pid = (int)strtol(sp, &sp, 10);
		long t = *sp == ' ' ? strtol(sp, &sp, 10) : -1;
		ev->tty = t >= 0 && t < (1 << 20) ? (int)t : -1;
		ev->warm = !strcmp(sp, " e") || !strcmp(sp, " j") ? sp[1] : 0;
	} else if (msg[0] == MSG_WARM_WANTED && msg[1] == '3') {
		ev->kind = VMM_EV_WARM_WANTED;
	}
	return 0;
}

int vmm_pidfd_signal(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int vmm_pidfd_wait(int pidfd, int timeout_ms)
{
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
	int r;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

int vmm_wait_exit(struct vmm_inst *vm, siginfo_t *si)
{
	memset(si, 0, sizeof(*si));
	if (vm->pidfd >= 0 && waitid(P_PIDFD, (id_t)vm->pidfd, si, WEXITED | WNOHANG) == 0 &&
	    si->si_pid)
		return si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
	return -1; /* ECHILD for an adopted process: its exit code is not ours to read */
}

int vmm_proc_fd_find(pid_t pid, int (*take)(const char *path, int num, const struct stat *st,
					      void *arg),
		     void *arg)
{
	char dir[64], path[96];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int fd = -ENOENT;
	while (fd == -ENOENT && (de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == 0)
			fd = take(path, atoi(de->d_name), &st, arg);
	}
	closedir(d);
	return fd;
}

void vmm_ending_cancel(struct vmm_inst *vm)
{
	vm->ending = false;
	if (vm->mntns_fd >= 0)
		close(vm->mntns_fd);
	vm->mntns_fd = -1;
}

int vmm_end_run(struct vmm_inst *vm)
{
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	if (vm->ctl_fd >= 0)
		close(vm->ctl_fd);
	vm->pidfd = vm->ctl_fd = -1;
	if (!vm->ending)
		vmm_ending_cancel(vm);
	vm->pid = 0;
	vm->pid_start = 0;
	return cg_destroy(&vm->cg);
}

int vmm_remove_files(struct vmm_inst *vm, struct err *e)
{
	cg_destroy(&vm->cg);
	int held = vm->mntns_fd;
	vm->mntns_fd = -1;
	return vmm_trash_held(vm->dir, held, e);
}

uint64_t vmm_pid_start(pid_t pid)
{
	char path[64], data[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_str(path, data, sizeof(data)) < 0)
		return 0;
	char *p = strrchr(data, ')');
	if (!p)
		return 0;
	/* After ")": field 3 (state) ... field 22 (starttime) is the 20th token. */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

/* A layer's files outside its dir: a VM checkpoint's RAM file, whose name
 * the daemon makes from its tag and the layer's id (qemu_checkpoint). Never
 * read from the layer: an ns layer is a sandbox's upper dir, every byte of
 * it the sandbox's (a list of files to unlink there was one it could write). */
void vmm_ram_path(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "/dev/shm/sandboxfs-%s-%s.ram", vmm_host()->tag, name);
}

#define RENICE_THREADS_MAX 4096 /* a QEMU has a handful; a bound, not a limit met */

int vmm_renice(pid_t pid, int nice)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int r = 0;
	unsigned n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < RENICE_THREADS_MAX) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		if (*end || tid <= 0)
			continue;
		n++;
		/* A thread that ended meanwhile is no failure. */
		if (setpriority(PRIO_PROCESS, (id_t)tid, nice) < 0 && errno != ESRCH && r == 0)
			r = -errno;
	}
	closedir(d);
	return r;
}

int vmm_remove_layer(const char *dir)
{
	char d[PATH_MAX], ram[PATH_MAX + 64];
	snprintf(d, sizeof(d), "%s", dir);
	vmm_qemu_spares_drop_layer(dir);
	vmm_ram_path(basename(d), ram, sizeof(ram));
	if (unlink(ram) < 0 && errno != ENOENT)
		log_warn("cannot remove %s: %s", ram, strerror(errno));
	struct err e = {0};
	return vmm_trash(dir, &e);
}

int vmm_pin_pid(const struct vmm_inst *vm, const char *comm, struct err *e)
{
	char have[32] = "", path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)vm->pid);
	if (!vm->pid || vmm_pid_start(vm->pid) != vm->pid_start ||
	    read_file_str(path, have, sizeof(have)) < 0 || strncmp(have, comm, strlen(comm)) != 0)
		return err_set(e, -ESRCH, "pid %d is gone (or was reused)", (int)vm->pid);
	int fd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	if (fd < 0)
		return err_set(e, -errno, "pidfd_open %d: %s", (int)vm->pid, strerror(errno));
	/* Re-check after opening: the pidfd pins this exact process. */
	if (vmm_pid_start(vm->pid) != vm->pid_start) {
		close(fd);
		return err_set(e, -ESRCH, "pid %d was reused", (int)vm->pid);
	}
	return fd;
}
