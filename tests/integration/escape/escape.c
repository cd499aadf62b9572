/* escape: one escape attempt per run, for tests/integration/escape.bats.
 * Built static on the host and placed in the sandbox's image, run inside a
 * sandbox as its root through the `exec` file.
 *
 *   escape ATTEMPT [ARGS...]
 *
 * Prints one line and exits:
 *   0  "ESCAPED: ..."   the attempt worked (the test fails)
 *   3  "blocked: ..."   the attempt failed, with the errno text
 *   2  "error: ..."     bad usage or a setup step failed (the test fails)
 * Attempts that must kill the process (x32, int 0x80) never return: the test
 * expects exit code 159 (128 + SIGSYS); int 0x80 may also end in SIGSEGV (139)
 * on a kernel without 32-bit emulation, before any syscall runs.
 *
 * An attempt stands for one denial: escape.bats checks the errno (EPERM from
 * the filter or a dropped capability, EROFS from a read-only mount, ENOSYS
 * for clone3), and its test "run by root on the host" checks that the same
 * attempts get through there, so that each check can fail.
 *
 * Every attempt is chosen to be harmless should it succeed: it sets the clock
 * to the time it already has, unloads a kexec image that is not loaded, turns
 * Ctrl-Alt-Del off in a pid namespace, and so on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/kexec.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#define KEY_SPEC_USER_KEYRING (-4)
#define KEY_SPEC_SESSION_KEYRING (-3)
#define KEYCTL_GET_KEYRING_ID 0

static const char *attempt;

static int escaped(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int escaped(const char *fmt, ...)
{
	va_list ap;
	printf("ESCAPED: %s: ", attempt);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return 0;
}

/* r < 0 (or the caller's failure) with errno: the attempt was blocked. */
static int result(long r, const char *what)
{
	if (r < 0) {
		printf("blocked: %s: %s: %s\n", attempt, what, strerror(errno));
		return 3;
	}
	return escaped("%s returned %ld", what, r);
}

static int usage_error(const char *msg)
{
	printf("error: %s: %s\n", attempt, msg);
	return 2;
}

static long sys_x32_getpid(void)
{
#if defined(__x86_64__)
	long ret;
	/* __X32_SYSCALL_BIT | __NR_getpid (39) */
	__asm__ volatile("syscall" : "=a"(ret) : "a"(0x40000000L | 39) : "rcx", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
#else
	errno = ENOSYS;
	return -1;
#endif
}

static long sys_int80_getpid(void)
{
#if defined(__x86_64__)
	long ret;
	/* the i386 ABI: getpid is 20 */
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Forks a child that waits, runs fn on its pid, kills it. */
static int with_child(long (*fn)(pid_t), const char *what)
{
	pid_t c = fork();
	if (c < 0)
		return usage_error("fork failed");
	if (c == 0) {
		pause();
		_exit(0);
	}
	long r = fn(c);
	int saved = errno;
	kill(c, SIGKILL);
	waitpid(c, NULL, 0);
	errno = saved;
	return result(r, what);
}

static long do_ptrace_attach(pid_t p) { return ptrace(PTRACE_ATTACH, p, 0, 0); }

static long do_vm_read(pid_t p)
{
	char buf[16], remote_dummy[16];
	struct iovec l = {buf, sizeof(buf)}, r = {remote_dummy, sizeof(remote_dummy)};
	return process_vm_readv(p, &l, 1, &r, 1, 0);
}

static long do_kcmp(pid_t p) { return syscall(SYS_kcmp, getpid(), p, 0 /* KCMP_FILE */, 0, 0); }

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		attempt = "usage";
		return usage_error("escape ATTEMPT [ARGS...]");
	}
	attempt = argv[1];
	const char *a = argv[1];
	const char *arg = argc > 2 ? argv[2] : NULL;

	/* --- mounts --- */
	if (!strcmp(a, "mount")) {
		mkdir("/tmp/escape-mnt", 0755);
		return result(mount("none", "/tmp/escape-mnt", "tmpfs", 0, NULL), "mount tmpfs");
	}
	/* A bind mount of a /proc/PID/root over somewhere. Our own: host root can
	 * always do that one (another process's may need ptrace access). */
	if (!strcmp(a, "bind-proc"))
		return result(mount("/proc/self/root", "/tmp", NULL, MS_BIND, NULL), "mount --bind");
	if (!strcmp(a, "umount"))
		return result(umount2("/proc", MNT_DETACH), "umount2 /proc");
	if (!strcmp(a, "fsopen"))
		return result(syscall(SYS_fsopen, "tmpfs", 0), "fsopen tmpfs");
	if (!strcmp(a, "open_tree"))
		return result(syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE), "open_tree /");
	if (!strcmp(a, "pivot_root")) {
		mkdir("/tmp/escape-old", 0755);
		if (chdir("/") < 0)
			return usage_error("chdir /");
		return result(syscall(SYS_pivot_root, "/", "/tmp/escape-old"), "pivot_root");
	}
	/* The classic chroot escape: chroot into a subdir while keeping the cwd
	 * outside it, walk up, chroot to what is found. With the host root
	 * detached after pivot_root, the top is the sandbox's own root; ARG is a
	 * host path that must then not be visible. */
	if (!strcmp(a, "chroot")) {
		if (!arg)
			return usage_error("needs a host path");
		mkdir("/tmp/escape-jail", 0755);
		if (chdir("/") < 0 || chroot("/tmp/escape-jail") < 0)
			return result(-1, "chroot");
		for (int i = 0; i < 64; i++)
			if (chdir("..") < 0)
				break;
		if (chroot(".") < 0)
			return result(-1, "chroot .");
		if (access(arg, F_OK) == 0)
			return escaped("host path %s is visible after the chroot walk", arg);
		return result(-1, "host path after the chroot walk");
	}

	/* --- the kernel itself --- */
	if (!strcmp(a, "kexec_load"))
		return result(syscall(SYS_kexec_load, 0UL, 0UL, NULL, KEXEC_ARCH_DEFAULT),
			      "kexec_load (unload)");
	if (!strcmp(a, "kexec_file_load"))
		return result(syscall(SYS_kexec_file_load, -1, -1, 0UL, "", KEXEC_FILE_UNLOAD),
			      "kexec_file_load (unload)");
	if (!strcmp(a, "init_module")) {
		static const char junk[64] = "\177ELF";
		return result(syscall(SYS_init_module, junk, sizeof(junk), ""), "init_module");
	}
	if (!strcmp(a, "finit_module")) {
		int fd = open("/bin/busybox", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return usage_error("open /bin/busybox");
		return result(syscall(SYS_finit_module, fd, "", 0), "finit_module");
	}
	if (!strcmp(a, "delete_module"))
		return result(syscall(SYS_delete_module, "sbx_escape_none", O_NONBLOCK),
			      "delete_module");
	if (!strcmp(a, "reboot"))
		return result(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
				      LINUX_REBOOT_CMD_CAD_OFF, NULL),
			      "reboot(CAD_OFF)");
	if (!strcmp(a, "settimeofday")) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		return result(settimeofday(&tv, NULL), "settimeofday(now)");
	}
	if (!strcmp(a, "clock_settime")) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		return result(clock_settime(CLOCK_REALTIME, &ts), "clock_settime(now)");
	}
	if (!strcmp(a, "bpf")) {
		union bpf_attr at;
		memset(&at, 0, sizeof(at));
		at.map_type = BPF_MAP_TYPE_ARRAY;
		at.key_size = 4;
		at.value_size = 4;
		at.max_entries = 1;
		return result(syscall(SYS_bpf, BPF_MAP_CREATE, &at, sizeof(at)), "bpf(MAP_CREATE)");
	}
	if (!strcmp(a, "perf_event_open")) {
		struct perf_event_attr pe;
		memset(&pe, 0, sizeof(pe));
		pe.type = PERF_TYPE_SOFTWARE;
		pe.size = sizeof(pe);
		pe.config = PERF_COUNT_SW_TASK_CLOCK;
		pe.exclude_kernel = 1;
		pe.exclude_hv = 1;
		return result(syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0),
			      "perf_event_open(self, user only)");
	}
	if (!strcmp(a, "keyctl"))
		return result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0),
			      "keyctl(GET_KEYRING_ID, user keyring)");
	if (!strcmp(a, "add_key"))
		return result(syscall(SYS_add_key, "user", "sbx-escape", "x", 1,
				      KEY_SPEC_SESSION_KEYRING),
			      "add_key");
	if (!strcmp(a, "request_key"))
		return result(syscall(SYS_request_key, "user", "sbx-escape", NULL, 0), "request_key");
	if (!strcmp(a, "userfaultfd"))
		return result(syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY),
			      "userfaultfd(user mode only)");
	if (!strcmp(a, "io_uring")) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		return result(syscall(SYS_io_uring_setup, 1, &p), "io_uring_setup");
	}
	if (!strcmp(a, "iopl"))
		return result(iopl(3), "iopl(3)");
	if (!strcmp(a, "swapon"))
		return result(swapon("/tmp/escape-no-swap", 0), "swapon");
	if (!strcmp(a, "syslog"))
		return result(syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0),
			      "syslog(SIZE_BUFFER)");
	if (!strcmp(a, "personality"))
		return result(personality(PER_LINUX | ADDR_NO_RANDOMIZE), "personality(ADDR_NO_RANDOMIZE)");

	/* --- file handles: shocker --- */
	if (!strcmp(a, "name_to_handle_at")) {
		struct {
			struct file_handle fh;
			unsigned char buf[MAX_HANDLE_SZ];
		} h;
		int mnt;
		h.fh.handle_bytes = MAX_HANDLE_SZ;
		return result(name_to_handle_at(AT_FDCWD, "/etc/passwd", &h.fh, &mnt, 0),
			      "name_to_handle_at /etc/passwd");
	}
	/* shocker (2014): open_by_handle_at with a guessed handle (ext4 root
	 * inode 2, generation 0) against any fd on the filesystem opens files
	 * outside the container's root. ARG: a file whose filesystem to use. */
	if (!strcmp(a, "open_by_handle_at")) {
		struct {
			struct file_handle fh;
			unsigned char buf[8];
		} h;
		memset(&h, 0, sizeof(h));
		h.fh.handle_bytes = 8;
		h.fh.handle_type = 1; /* FILEID_INO32_GEN */
		uint32_t ino = 2, gen = 0;
		memcpy(h.fh.f_handle, &ino, 4);
		memcpy(h.fh.f_handle + 4, &gen, 4);
		int mfd = open(arg ? arg : "/", O_RDONLY | O_CLOEXEC);
		if (mfd < 0)
			return usage_error("open the mount fd");
		return result(open_by_handle_at(mfd, &h.fh, O_RDONLY), "open_by_handle_at(ino 2)");
	}

	/* --- namespaces --- */
	if (!strcmp(a, "unshare-user"))
		return result(unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)");
	if (!strcmp(a, "unshare-mnt"))
		return result(unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)");
	if (!strcmp(a, "clone-user")) {
		long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, 0);
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
		return result(r, "clone(CLONE_NEWUSER)");
	}
	if (!strcmp(a, "clone3-user")) {
		struct clone_args ca;
		memset(&ca, 0, sizeof(ca));
		ca.flags = CLONE_NEWUSER;
		ca.exit_signal = SIGCHLD;
		long r = syscall(SYS_clone3, &ca, sizeof(ca));
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
		return result(r, "clone3(CLONE_NEWUSER)");
	}
	/* Joining a namespace: our own mount namespace, which host root can
	 * always join (the filter must deny the call itself). */
	if (!strcmp(a, "setns")) {
		int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return usage_error("open /proc/self/ns/mnt");
		return result(setns(fd, 0), "setns(/proc/self/ns/mnt)");
	}

	/* --- other processes --- */
	if (!strcmp(a, "ptrace")) { /* ARG: a host pid */
		if (!arg)
			return usage_error("needs a pid");
		return result(ptrace(PTRACE_ATTACH, (pid_t)atoi(arg), 0, 0), "ptrace(ATTACH, host pid)");
	}
	if (!strcmp(a, "ptrace-child"))
		return with_child(do_ptrace_attach, "ptrace(ATTACH, own child)");
	if (!strcmp(a, "process_vm_readv"))
		return with_child(do_vm_read, "process_vm_readv(own child)");
	if (!strcmp(a, "kcmp"))
		return with_child(do_kcmp, "kcmp(own child)");

	/* --- network --- */
	if (!strcmp(a, "packet"))
		return result(socket(AF_PACKET, SOCK_RAW, htons(0x0003 /* ETH_P_ALL */)),
			      "socket(AF_PACKET)");
	if (!strcmp(a, "vsock"))
		return result(socket(AF_VSOCK, SOCK_STREAM, 0), "socket(AF_VSOCK)");
	if (!strcmp(a, "raw-bind")) { /* ARG: a host interface name */
		if (!arg)
			return usage_error("needs an interface name");
		int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
		if (s < 0)
			return result(-1, "socket(AF_INET, SOCK_RAW)");
		return result(setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, arg, (socklen_t)strlen(arg)),
			      "raw socket SO_BINDTODEVICE host interface");
	}

	/* --- devices --- */
	/* mknod-read PATH b|c MAJOR MINOR: create the node, read 512 bytes. */
	if (!strcmp(a, "mknod-read") || !strcmp(a, "mknod-write")) {
		if (argc < 6)
			return usage_error("PATH b|c MAJOR MINOR");
		mode_t type = argv[3][0] == 'b' ? S_IFBLK : S_IFCHR;
		unlink(argv[2]);
		if (mknod(argv[2], type | 0600, makedev(atoi(argv[4]), atoi(argv[5]))) < 0)
			return result(-1, "mknod");
		bool wr = !strcmp(a, "mknod-write");
		int fd = open(argv[2], (wr ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
		int saved = errno;
		unlink(argv[2]);
		errno = saved;
		if (fd < 0)
			return result(-1, wr ? "open for writing" : "open for reading");
		char buf[512];
		ssize_t n;
		if (wr) {
			/* One whole line: the kernel log shows a record once it ends. */
			char line[512];
			int len = snprintf(line, sizeof(line), "%s\n", argc > 6 ? argv[6] : "sbx-escape");
			n = write(fd, line, len < (int)sizeof(line) ? (size_t)len : sizeof(line) - 1);
		} else {
			n = read(fd, buf, sizeof(buf));
		}
		return result(n, wr ? "write" : "read");
	}

	/* --- other ABIs: must be killed (exit code 159) --- */
	if (!strcmp(a, "x32"))
		return result(sys_x32_getpid(), "x32 getpid");
	if (!strcmp(a, "int80"))
		return result(sys_int80_getpid(), "int 0x80 getpid");

	/* --- resources --- */
	if (!strcmp(a, "alloc")) { /* ARG: megabytes to allocate and touch */
		long mb = arg ? atol(arg) : 0;
		if (mb <= 0)
			return usage_error("needs a size in MB");
		for (long i = 0; i < mb; i++) {
			char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED)
				return result(-1, "mmap");
			memset(p, 1, 1 << 20);
		}
		return escaped("allocated and touched %ld MB", mb);
	}

	/* --- allowed, for the sanity test: must work --- */
	if (!strcmp(a, "personality-query")) {
		int p = personality(0xffffffff);
		if (p < 0 || personality(PER_LINUX) < 0)
			return usage_error("personality query failed");
		printf("ok: personality %#x\n", p);
		return 0;
	}
	return usage_error("unknown attempt");
}
