/* The seccomp filter of an `ns` sandbox (see seccomp.h).
 *
 * Model: Docker's default profile (moby profiles/seccomp/default.json), which
 * allows a list of calls and lets a few more through only when the container
 * holds the capability they need. sandboxfs keeps Docker's default capability
 * set, so the calls Docker gates on capabilities we do not grant are the calls
 * denied here, written the other way round: default ALLOW, a deny list that
 * fails with EPERM (the errno a missing capability gives, so programs take
 * their usual "not permitted" path), and a kill for any other ABI.
 *
 * Why a filter when the capabilities are already dropped: the root of a
 * sandbox is uid 0 of the host (there is no user namespace), many of these
 * calls are reachable without any capability (add_key, keyctl, userfaultfd,
 * perf_event_open, unshare(CLONE_NEWUSER), ptrace of a sibling, AF_PACKET with
 * CAP_NET_RAW), and each is kernel attack surface with a record of local
 * privilege escalations. A second, independent layer is the point.
 *
 * Deviations from Docker, each stricter: ptrace is denied outright (Docker
 * allows it on kernels >= 4.8), unshare is denied only with namespace flags
 * (Docker denies it entirely; CLONE_FS/CLONE_FILES stay usable), AF_PACKET
 * sockets and mknod of block devices are denied (reasons below). */
#define _GNU_SOURCE
#include "seccomp.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* Calls denied whatever their arguments, by group. Names that do not exist on
 * the build's architecture (vm86 on x86_64, stime on arm64) are skipped. */
static const char *const denied[] = {
	/* Mounts: a sandbox's tree is built by sbx-init before the filter; a new
	 * mount (or pivot_root, or a detached tree from the new mount API) is how
	 * escapes reach host filesystems. CAP_SYS_ADMIN is dropped too. */
	"mount", "umount", "umount2", "pivot_root",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",

	/* Replacing or extending the host kernel: kexec, modules, reboot. */
	"kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "create_module", "query_module",
	"get_kernel_syms", "reboot",

	/* The clock is the host's (no time namespace): setting or slewing it
	 * would change every sandbox and the host. */
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",

	/* eBPF, perf and userfaultfd: the kernel surfaces most used in local
	 * privilege escalations; perf also leaks host-wide information and
	 * userfaultfd makes kernel races easy to win. */
	"bpf", "perf_event_open", "userfaultfd",

	/* io_uring: a second syscall interface that seccomp cannot see into
	 * (Docker denies it since 25.0). */
	"io_uring_setup", "io_uring_enter", "io_uring_register",

	/* The kernel keyring is not namespaced: root of a sandbox is root of the
	 * host, so keys would be shared with the host's root. */
	"keyctl", "add_key", "request_key",

	/* File handles bypass path lookup: open_by_handle_at on a guessed handle
	 * opens any file of the filesystem, outside the sandbox's root (the
	 * 2014 "shocker" escape); name_to_handle_at is its half that finds them. */
	"open_by_handle_at", "name_to_handle_at",

	/* Joining other namespaces. */
	"setns",

	/* Looking into or changing other processes: ptrace (and through it
	 * seccomp bypass on old kernels), cross-process memory access, kcmp,
	 * stealing another process's file descriptors. */
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",

	/* Host-wide state: swap, kernel log, process accounting, quotas,
	 * profiling cookies, I/O port access, NFS server control, legacy and
	 * information-leaking calls, the controlling terminal of the host. */
	"swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
	"iopl", "ioperm", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
	"vm86", "vm86old", "vhangup",

	/* NUMA policy and page migration (Docker: only with CAP_SYS_NICE): they
	 * act on host memory placement and have had several kernel bugs. */
	"mbind", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "move_pages",
	"migrate_pages",

	/* fanotify watches whole filesystems/mounts (Docker: CAP_SYS_ADMIN). */
	"fanotify_init",
};

/* Namespace flags. clone/unshare with any of them is denied: a new user
 * namespace hands the caller every capability again (inside that namespace,
 * which then makes mount, netfilter, and more reachable), and the other
 * namespaces need CAP_SYS_ADMIN we do not grant anyway. Docker's mask
 * 0x7E020000 for clone; unshare also gets CLONE_NEWTIME (for clone that bit
 * is part of the exit signal byte, so it cannot be tested there). */
static const uint64_t ns_flags[] = {
	CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

static int say_err(char *errbuf, size_t len, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, len, fmt, ap);
	va_end(ap);
	errno = err; /* the caller adds strerror(errno) */
	return -1;
}

/* Adds one rule with at most one comparison; a call unknown on this
 * architecture is skipped. */
static int deny(scmp_filter_ctx ctx, uint32_t action, const char *call, unsigned ncmp,
		struct scmp_arg_cmp cmp)
{
	int nr = seccomp_syscall_resolve_name(call);
	if (nr == __NR_SCMP_ERROR || nr < 0)
		return 0;
	return ncmp ? seccomp_rule_add_exact(ctx, action, nr, 1, cmp)
		    : seccomp_rule_add_exact(ctx, action, nr, 0);
}

#define NOARG ((struct scmp_arg_cmp){0})

static int add_rules(scmp_filter_ctx ctx, const char **what)
{
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	int r;
	*what = "deny list";
	for (size_t i = 0; i < sizeof(denied) / sizeof(*denied); i++)
		if ((r = deny(ctx, eperm, denied[i], 0, NOARG)) < 0) {
			*what = denied[i];
			return r;
		}

	/* clone3 passes its flags in a struct that seccomp cannot read: answer
	 * ENOSYS, and glibc (posix_spawn, pthread_create, fork in newer
	 * versions) falls back to clone, whose flags are checked below. */
	*what = "clone3";
	if ((r = deny(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NOARG)) < 0)
		return r;

	/* clone and unshare with a namespace flag; one rule a bit (libseccomp
	 * takes one comparison per argument per rule, and rules are ORed). The
	 * flags are argument 0 on x86_64 and arm64 (argument 1 on s390). */
	for (size_t i = 0; i < sizeof(ns_flags) / sizeof(*ns_flags); i++) {
		*what = "clone";
		if ((r = deny(ctx, eperm, "clone", 1,
			      SCMP_A0_64(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]))) < 0)
			return r;
		*what = "unshare";
		if ((r = deny(ctx, eperm, "unshare", 1,
			      SCMP_A0_64(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]))) < 0)
			return r;
	}
	*what = "unshare";
	if ((r = deny(ctx, eperm, "unshare", 1,
		      SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NEWTIME, CLONE_NEWTIME))) < 0)
		return r;

	/* personality: only Docker's values pass: PER_LINUX (0), PER_LINUX32 (8),
	 * UNAME26 (0x20000), PER_LINUX32|UNAME26 (0x20008) and the query
	 * 0xffffffff. The others switch on READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE,
	 * MMAP_PAGE_ZERO and friends, which weaken exploit mitigations. Encoded
	 * with one comparison per rule:
	 *   - anything above 32 bits;
	 *   - bit 31 set with any of bits 0..30 clear (only 0xffffffff keeps bit 31);
	 *   - bit 31 clear with a bit other than 3 and 17 set. */
	*what = "personality";
	if ((r = deny(ctx, eperm, "personality", 1, SCMP_A0_64(SCMP_CMP_GT, 0xffffffffULL))) < 0)
		return r;
	for (int b = 0; b < 31; b++) {
		uint64_t bit = 1ULL << b, top = 1ULL << 31;
		if ((r = deny(ctx, eperm, "personality", 1,
			      SCMP_A0_64(SCMP_CMP_MASKED_EQ, top | bit, top))) < 0)
			return r;
		if (b == 3 || b == 17)
			continue;
		if ((r = deny(ctx, eperm, "personality", 1,
			      SCMP_A0_64(SCMP_CMP_MASKED_EQ, top | bit, bit))) < 0)
			return r;
	}

	/* Sockets. AF_VSOCK reaches the hypervisor host and is not confined by
	 * the network namespace (Docker denies it too). AF_PACKET: a sandbox's
	 * network namespace holds only its own interfaces, so packet sockets
	 * would see nothing of the host, but they need only CAP_NET_RAW (kept
	 * for ping, which uses AF_INET raw or ICMP datagram sockets, still
	 * allowed) and are behind a series of kernel privilege escalations
	 * (CVE-2016-8655, CVE-2017-7308, CVE-2020-14386). */
	*what = "socket";
	if ((r = deny(ctx, eperm, "socket", 1, SCMP_A0_32(SCMP_CMP_EQ, AF_VSOCK))) < 0 ||
	    (r = deny(ctx, eperm, "socket", 1, SCMP_A0_32(SCMP_CMP_EQ, AF_PACKET))) < 0)
		return r;

	/* mknod of a block device: CAP_MKNOD is kept (Docker's set) so images
	 * can create /dev/null-like nodes, but a block node would open the
	 * host's disks wherever the devices cgroup does not stop it (cgroup v2
	 * has no device controller without a BPF program). Character devices
	 * stay allowed and are left to the devices cgroup. */
	*what = "mknod";
	if ((r = deny(ctx, eperm, "mknod", 1, SCMP_A1_32(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK))) < 0)
		return r;
	*what = "mknodat";
	if ((r = deny(ctx, eperm, "mknodat", 1,
		      SCMP_A2_32(SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK))) < 0)
		return r;
	return 0;
}

/* Builds the filter (no load). */
static scmp_filter_ctx build(char *errbuf, size_t len)
{
	const char *what = "";
	/* The filter holds only the native ABI; libseccomp then sends every
	 * other one to the bad-architecture action: 32-bit int 0x80 syscalls on
	 * x86_64 and x32 calls (which would otherwise reach the kernel under the
	 * native arch with bit 30 set and miss every rule above) kill the
	 * process. */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		say_err(errbuf, len, ENOMEM, "seccomp_init");
		return NULL;
	}
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r < 0) {
		seccomp_release(ctx);
		say_err(errbuf, len, -r, "seccomp: set the bad-architecture action");
		return NULL;
	}
	/* A binary search over syscall numbers instead of a linear chain. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if ((r = add_rules(ctx, &what)) < 0) {
		seccomp_release(ctx);
		say_err(errbuf, len, -r, "seccomp: add the rule for %s", what);
		return NULL;
	}
	return ctx;
}

int sbx_seccomp_install(char *errbuf, size_t len)
{
	scmp_filter_ctx ctx = build(errbuf, len);
	if (!ctx)
		return -1;
	int r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0)
		return say_err(errbuf, len, -r, "seccomp: load the filter");
	return 0;
}

int sbx_seccomp_export(int fd, char *errbuf, size_t len)
{
	scmp_filter_ctx ctx = build(errbuf, len);
	if (!ctx)
		return -1;
	int r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r < 0)
		return say_err(errbuf, len, -r, "seccomp: export the filter");
	return 0;
}
