/* Terminals of an ns sandbox: a pseudo-terminal pair taken from the
 * sandbox's own devpts instance (the /dev/pts that sbx-init mounts with
 * newinstance), so the slave is the sandbox's (/dev/pts/N inside) and the
 * host's /dev/pts never gets an entry. The daemon keeps the master, and
 * init a copy of it, which a restarted daemon takes back (pidfd_getfd).
 * The resolution inside a sandbox's root that finds its ptmx also serves
 * its files (NAME/files). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "vmm.h"

/* openat2 retries a resolution that a concurrent rename made unsure
 * (EAGAIN); a sandbox renaming in a loop gets EAGAIN after this many. */
#define ROOT_OPEN_TRIES 16

int vmm_root_open(const struct vmm_inst *vm, const char *path, int flags, mode_t mode,
		  struct err *e)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d/root", (int)vm->pid);
	int root = vm->pid > 0 ? open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	if (vm->pid > 0 && root < 0)
		return err_set(e, -errno, "cannot reach the root of sandbox %s: %s", vm->name,
			       strerror(errno));
	/* Still our init after the open: its pid was not given to another process. */
	if (root < 0 || vm->pidfd < 0 || syscall(SYS_pidfd_send_signal, vm->pidfd, 0, NULL, 0) < 0) {
		if (root >= 0)
			close(root);
		return err_set(e, -ESRCH, "sandbox %s is not running", vm->name);
	}
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .mode = flags & (O_CREAT | O_TMPFILE) ? mode : 0,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	int fd = -1, err = EAGAIN;
	for (int i = 0; i < ROOT_OPEN_TRIES && err == EAGAIN; i++) {
		fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
		err = fd < 0 ? errno : 0;
	}
	close(root);
	if (fd < 0)
		return err_set(e, -err, "%s in sandbox %s: %s", path, vm->name, strerror(err));
	return fd;
}

/* The sandbox's ptmx as an O_PATH fd: resolved inside its root (its links
 * cannot lead out), and only a devpts ptmx: a node the sandbox made (it has
 * CAP_MKNOD) is never opened by the daemon. */
static int ptmx_path_fd(const struct vmm_inst *vm, struct err *e)
{
	int fd = vmm_root_open(vm, "dev/pts/ptmx", O_PATH | O_NOFOLLOW, 0, e);
	if (fd < 0)
		return fd == -ESRCH ? fd : err_wrap(e, "no terminal can be made");
	struct statfs sfs;
	struct stat st;
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != DEVPTS_SUPER_MAGIC || fstat(fd, &st) < 0 ||
	    !S_ISCHR(st.st_mode) || st.st_rdev != makedev(5, 2)) {
		close(fd);
		return err_set(e, -ENODEV, "/dev/pts/ptmx of sandbox %s is not a devpts ptmx: no "
			       "terminal can be made there", vm->name);
	}
	return fd;
}

int vmm_pty_open(struct vmm_inst *vm, unsigned cols, unsigned rows, int *master, int *slave,
		 int *index, struct err *e)
{
	char path[64];
	int p = ptmx_path_fd(vm, e), m = -1, s = -1, unlock = 0, r = 0;
	if (p < 0)
		return p;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p);
	/* Nonblocking: the output pump reads it (a terminal cannot be spliced). */
	m = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	close(p);
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0 || ioctl(m, TIOCSWINSZ, &ws) < 0 ||
	    ioctl(m, TIOCGPTN, index) < 0 ||
	    (s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
		r = err_set(e, -errno, "cannot make a terminal in sandbox %s: %s", vm->name,
			    strerror(errno));
		if (m >= 0)
			close(m);
		return r;
	}
	*master = m;
	*slave = s;
	return 0;
}

/* A master among init's fds: a devpts ptmx, taken with pidfd_getfd, whose
 * number is index. Only the daemon puts masters in init's fd table (the
 * sandbox's processes cannot), and two running jobs never share a number. */
struct pty_want {
	int pidfd, index;
};

static int pty_take(const char *path, int num, const struct stat *st, void *arg)
{
	const struct pty_want *w = arg;
	struct statfs sfs;
	int n = -1;
	(void)path;
	if (!S_ISCHR(st->st_mode) || st->st_rdev != makedev(5, 2))
		return -ENOENT;
	int m = (int)syscall(SYS_pidfd_getfd, w->pidfd, num, 0);
	if (m >= 0 && fstatfs(m, &sfs) == 0 && sfs.f_type == DEVPTS_SUPER_MAGIC &&
	    ioctl(m, TIOCGPTN, &n) == 0 && n == w->index)
		return m;
	if (m >= 0)
		close(m);
	return -ENOENT;
}

int vmm_pty_find(struct vmm_inst *vm, int index)
{
	if (vm->pidfd < 0)
		return -ESRCH;
	struct pty_want w = {vm->pidfd, index};
	int fd = vmm_proc_fd_find(vm->pid, pty_take, &w);
	return fd == -ENOENT || fd >= 0 ? fd : -ESRCH;
}
