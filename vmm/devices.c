/* Device access for sandboxes (see devices.h): the devices cgroup on v1, a
 * BPF device program on v2. The list is the same on both. */
#define _GNU_SOURCE
#include "devices.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm.h"

/* Docker's default (runc's AllowedDevices, without the tun/tap entry that
 * runc dropped: sandboxes get no network device of their own to drive).
 * `c *:* m` and `b *:* m` let CAP_MKNOD make nodes (images and build
 * scripts do), which are then useless unless listed here; the seccomp
 * filter of sbx-init refuses block nodes outright. */
static const char *const v1_allow[] = {
	"c *:* m",     "b *:* m",
	"c 1:3 rwm",   /* /dev/null */
	"c 1:5 rwm",   /* /dev/zero */
	"c 1:7 rwm",   /* /dev/full */
	"c 1:8 rwm",   /* /dev/random */
	"c 1:9 rwm",   /* /dev/urandom */
	"c 5:0 rwm",   /* /dev/tty */
	"c 5:1 rwm",   /* /dev/console */
	"c 5:2 rwm",   /* /dev/ptmx */
	"c 136:* rwm", /* /dev/pts/N */
};

int cg_devices_restrict(const char *dir, struct err *e)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/devices.deny", dir);
	int r = write_file_str(path, "a");
	if (r < 0)
		return err_set(e, r, "cannot deny devices in %s: %s", dir, strerror(-r));
	snprintf(path, sizeof(path), "%s/devices.allow", dir);
	for (size_t i = 0; i < sizeof(v1_allow) / sizeof(*v1_allow); i++) {
		r = write_file_str(path, v1_allow[i]);
		if (r < 0)
			return err_set(e, r, "cannot allow device '%s' in %s: %s", v1_allow[i], dir,
				       strerror(-r));
	}
	return 0;
}

/* --- v2: the same list as a BPF_PROG_TYPE_CGROUP_DEVICE program --- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), \
					       .off = (o), .imm = (i)})
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define MOV_R(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_K(d, k) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, k)
#define AND_K(d, k) INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, k)
#define RSH_K(d, k) INSN(BPF_ALU64 | BPF_RSH | BPF_K, d, 0, 0, k)
#define JEQ_K(d, k, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, k)
#define JNE_K(d, k, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, k)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

int cg_devices_restrict_v2(const char *dir, struct err *e)
{
	/* ctx: struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type);
	 * u32 major; u32 minor; }. Returns 1 to allow, 0 to deny. Jump offsets
	 * count from the next instruction; ALLOW is the last two. */
	const struct bpf_insn prog[] = {
		/* 0 */ LDX_W(BPF_REG_2, BPF_REG_1, 0),   /* r2 = access_type */
		/* 1 */ MOV_R(BPF_REG_3, BPF_REG_2),
		/* 2 */ AND_K(BPF_REG_3, 0xffff),         /* r3 = type */
		/* 3 */ RSH_K(BPF_REG_2, 16),             /* r2 = access */
		/* 4 */ LDX_W(BPF_REG_4, BPF_REG_1, 4),   /* r4 = major */
		/* 5 */ LDX_W(BPF_REG_5, BPF_REG_1, 8),   /* r5 = minor */
		/* 6 */ JEQ_K(BPF_REG_2, BPF_DEVCG_ACC_MKNOD, 14), /* mknod only: any node */
		/* 7 */ JNE_K(BPF_REG_3, BPF_DEVCG_DEV_CHAR, 11),  /* not char: deny */
		/* 8 */ JEQ_K(BPF_REG_4, 136, 12),        /* /dev/pts/N */
		/* 9 */ JNE_K(BPF_REG_4, 1, 5),           /* major 1: null zero full random urandom */
		/* 10 */ JEQ_K(BPF_REG_5, 3, 10),
		/* 11 */ JEQ_K(BPF_REG_5, 5, 9),
		/* 12 */ JEQ_K(BPF_REG_5, 7, 8),
		/* 13 */ JEQ_K(BPF_REG_5, 8, 7),
		/* 14 */ JEQ_K(BPF_REG_5, 9, 6),
		/* 15 */ JNE_K(BPF_REG_4, 5, 3),          /* major 5: tty console ptmx */
		/* 16 */ JEQ_K(BPF_REG_5, 0, 4),
		/* 17 */ JEQ_K(BPF_REG_5, 1, 3),
		/* 18 */ JEQ_K(BPF_REG_5, 2, 2),
		/* 19 DENY */ MOV_K(BPF_REG_0, 0),
		/* 20 */ EXIT(),
		/* 21 ALLOW */ MOV_K(BPF_REG_0, 1),
		/* 22 */ EXIT(),
	};
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = sizeof(prog) / sizeof(*prog);
	a.license = (uint64_t)(uintptr_t) "Apache-2.0";
	int pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (pfd < 0)
		return err_set(e, -errno, "cannot load the device program: %s", strerror(errno));
	int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0) {
		int r = -errno;
		close(pfd);
		return err_set(e, r, "cannot open cgroup %s: %s", dir, strerror(-r));
	}
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)cfd;
	a.attach_bpf_fd = (uint32_t)pfd;
	a.attach_type = BPF_CGROUP_DEVICE;
	int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof(a)) < 0 ? -errno : 0;
	close(cfd);
	close(pfd); /* the cgroup holds the program now */
	if (r < 0)
		return err_set(e, r, "cannot attach the device program to %s: %s", dir, strerror(-r));
	return 0;
}
