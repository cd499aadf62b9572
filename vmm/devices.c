/* Device access for sandboxes (see devices.h): one table of rows, written as
 * devices.allow lines on cgroup v1 and compiled to a BPF device program on v2. */
#define _GNU_SOURCE
#include "devices.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm.h"

#define ANY (-1)
#define ACC_R BPF_DEVCG_ACC_READ
#define ACC_W BPF_DEVCG_ACC_WRITE
#define ACC_M BPF_DEVCG_ACC_MKNOD
#define ACC_RWM (ACC_R | ACC_W | ACC_M)

struct dev_rule {
	char type;  /* 'c' or 'b' */
	int major, minor; /* ANY: every number */
	int access; /* ACC_* bits */
	unsigned need; /* 0: every sandbox; else the VMM_DEV_* bit that adds the row */
};

/* Docker's default (runc's AllowedDevices, without the tun/tap row that runc
 * dropped), then the rows a backend asks for. `c *:* m` and `b *:* m` let
 * CAP_MKNOD make nodes (images and build scripts do), which are then useless
 * unless listed; the seccomp filter of sbx-init refuses block nodes outright. */
static const struct dev_rule rules[] = {
	{'c', ANY, ANY, ACC_M, 0},
	{'b', ANY, ANY, ACC_M, 0},
	{'c', 1, 3, ACC_RWM, 0},   /* /dev/null */
	{'c', 1, 5, ACC_RWM, 0},   /* /dev/zero */
	{'c', 1, 7, ACC_RWM, 0},   /* /dev/full */
	{'c', 1, 8, ACC_RWM, 0},   /* /dev/random */
	{'c', 1, 9, ACC_RWM, 0},   /* /dev/urandom */
	{'c', 5, 0, ACC_RWM, 0},   /* /dev/tty */
	{'c', 5, 1, ACC_RWM, 0},   /* /dev/console */
	{'c', 5, 2, ACC_RWM, 0},   /* /dev/ptmx */
	{'c', 136, ANY, ACC_RWM, 0}, /* /dev/pts/N */
	{'c', 10, 232, ACC_R | ACC_W, VMM_DEV_KVM}, /* /dev/kvm */
};

static bool applies(const struct dev_rule *d, unsigned extra)
{
	return d->need == 0 || (d->need & extra);
}

int cg_devices_lines(unsigned extra, char (*out)[DEV_RULE_LINE_MAX], int cap)
{
	int n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(rules) && n < cap; i++) {
		const struct dev_rule *d = &rules[i];
		if (!applies(d, extra))
			continue;
		char maj[12] = "*", min[12] = "*";
		if (d->major != ANY)
			snprintf(maj, sizeof(maj), "%d", d->major);
		if (d->minor != ANY)
			snprintf(min, sizeof(min), "%d", d->minor);
		snprintf(out[n++], DEV_RULE_LINE_MAX, "%c %s:%s %s%s%s", d->type, maj, min,
			 d->access & ACC_R ? "r" : "", d->access & ACC_W ? "w" : "",
			 d->access & ACC_M ? "m" : "");
	}
	return n;
}

int cg_devices_restrict(const char *dir, unsigned extra, struct err *e)
{
	char path[PATH_MAX + 32], lines[ARRAY_SIZE(rules)][DEV_RULE_LINE_MAX];
	int n = cg_devices_lines(extra, lines, (int)ARRAY_SIZE(lines));
	snprintf(path, sizeof(path), "%s/devices.deny", dir);
	int r = write_file_str(path, "a");
	if (r < 0)
		return err_set(e, r, "cannot deny devices in %s: %s", dir, strerror(-r));
	snprintf(path, sizeof(path), "%s/devices.allow", dir);
	for (int i = 0; i < n; i++) {
		r = write_file_str(path, lines[i]);
		if (r < 0)
			return err_set(e, r, "cannot allow device '%s' in %s: %s", lines[i], dir,
				       strerror(-r));
	}
	return 0;
}

/* A devices.list's text as sorted lines, to compare with the rows. */
static int list_lines(const char *text, char (*out)[DEV_RULE_LINE_MAX], int cap)
{
	int n = 0;
	for (const char *p = text; *p && n < cap;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len && len < DEV_RULE_LINE_MAX) {
			memcpy(out[n], p, len);
			out[n++][len] = '\0';
		} else if (len) {
			return -1; /* no row is that long: not ours */
		}
		p += len + (nl ? 1 : 0);
	}
	qsort(out, (size_t)n, DEV_RULE_LINE_MAX, (int (*)(const void *, const void *))strcmp);
	return n;
}

/* Whether DIR's devices.list is exactly the rows for EXTRA. */
static bool list_is(const char *dir, unsigned extra)
{
	char path[PATH_MAX + 32], text[2048];
	char want[ARRAY_SIZE(rules)][DEV_RULE_LINE_MAX], have[ARRAY_SIZE(rules) + 1][DEV_RULE_LINE_MAX];
	snprintf(path, sizeof(path), "%s/devices.list", dir);
	if (read_file_str(path, text, sizeof(text)) < 0)
		return false;
	int n = cg_devices_lines(extra, want, (int)ARRAY_SIZE(want));
	qsort(want, (size_t)n, DEV_RULE_LINE_MAX, (int (*)(const void *, const void *))strcmp);
	int m = list_lines(text, have, (int)ARRAY_SIZE(have));
	if (m != n)
		return false;
	for (int i = 0; i < n; i++)
		if (strcmp(want[i], have[i]))
			return false;
	return true;
}

#define EVERY_EXTRA (~0u)

int cg_devices_parent(const char *parent)
{
	if (list_is(parent, EVERY_EXTRA))
		return 0;
	/* The kernel refuses `a` while it has children (another daemon's
	 * sandboxes): then each sandbox is restricted in full. */
	struct err e = {0};
	int r = cg_devices_restrict(parent, EVERY_EXTRA, &e);
	if (r < 0)
		return r;
	return list_is(parent, EVERY_EXTRA) ? 0 : -EINVAL;
}

int cg_devices_restrict_inherited(const char *dir, unsigned extra, struct err *e)
{
	char path[PATH_MAX + 32], all[ARRAY_SIZE(rules)][DEV_RULE_LINE_MAX];
	cg_devices_lines(EVERY_EXTRA, all, (int)ARRAY_SIZE(all)); /* a line per row */
	snprintf(path, sizeof(path), "%s/devices.deny", dir);
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
		if (!applies(&rules[i], extra) && write_file_str(path, all[i]) < 0)
			break; /* the check below finds it */
	/* What the kernel holds is what counts: a parent made again meanwhile
	 * (by a daemon that removed it empty) gives its children every device. */
	if (list_is(dir, extra))
		return 0;
	return cg_devices_restrict(dir, extra, e);
}

/* --- v2: the rows as a BPF_PROG_TYPE_CGROUP_DEVICE program --- */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), \
					       .off = (o), .imm = (i)})
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define MOV_R(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_K(d, k) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, k)
#define AND_K(d, k) INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, k)
#define RSH_K(d, k) INSN(BPF_ALU64 | BPF_RSH | BPF_K, d, 0, 0, k)
#define JNE_K(d, k, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, k)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* ctx: struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type);
 * u32 major; u32 minor; }. Returns 1 to allow, 0 to deny. Registers: r2
 * access, r3 type, r4 major, r5 minor, r6 scratch. Each row is one block
 * whose failed tests jump past its end (offsets count from the next
 * instruction) to the next row; the last block denies. */
int cg_devices_prog(unsigned extra, struct bpf_insn *out, int cap)
{
	struct bpf_insn p[8 + 8 * ARRAY_SIZE(rules)];
	int n = 0;
	p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, 0);
	p[n++] = MOV_R(BPF_REG_3, BPF_REG_2);
	p[n++] = AND_K(BPF_REG_3, 0xffff);
	p[n++] = RSH_K(BPF_REG_2, 16);
	p[n++] = LDX_W(BPF_REG_4, BPF_REG_1, 4);
	p[n++] = LDX_W(BPF_REG_5, BPF_REG_1, 8);
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		const struct dev_rule *d = &rules[i];
		if (!applies(d, extra))
			continue;
		int jumps[4], nj = 0;
		jumps[nj++] = n;
		p[n++] = JNE_K(BPF_REG_3, d->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0);
		if (d->major != ANY) {
			jumps[nj++] = n;
			p[n++] = JNE_K(BPF_REG_4, d->major, 0);
		}
		if (d->minor != ANY) {
			jumps[nj++] = n;
			p[n++] = JNE_K(BPF_REG_5, d->minor, 0);
		}
		if ((d->access & ACC_RWM) != ACC_RWM) { /* asks for more than the row gives */
			p[n++] = MOV_R(BPF_REG_6, BPF_REG_2);
			p[n++] = AND_K(BPF_REG_6, ~d->access & ACC_RWM);
			jumps[nj++] = n;
			p[n++] = JNE_K(BPF_REG_6, 0, 0);
		}
		p[n++] = MOV_K(BPF_REG_0, 1);
		p[n++] = EXIT();
		for (int j = 0; j < nj; j++)
			p[jumps[j]].off = (int16_t)(n - jumps[j] - 1);
		
	}
	p[n++] = MOV_K(BPF_REG_0, 0);
	p[n++] = EXIT();
	if (n > cap)
		return -ENOSPC;
	memcpy(out, p, (size_t)n * sizeof(*p));
	return n;
}

int cg_devices_load(unsigned extra, struct err *e)
{
	struct bpf_insn prog[8 + 8 * ARRAY_SIZE(rules)];
	int ninsn = cg_devices_prog(extra, prog, (int)ARRAY_SIZE(prog));
	if (ninsn < 0)
		return err_set(e, ninsn, "the device program does not fit");
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = (uint32_t)ninsn;
	a.license = (uint64_t)(uintptr_t) "Apache-2.0";
	int pfd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (pfd < 0)
		return err_set(e, -errno, "cannot load the device program: %s", strerror(errno));
	return pfd;
}

int cg_devices_restrict_v2(const char *dir, unsigned extra, struct err *e)
{
	int pfd = cg_devices_load(extra, e);
	if (pfd < 0)
		return pfd;
	int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0) {
		int r = -errno;
		close(pfd);
		return err_set(e, r, "cannot open cgroup %s: %s", dir, strerror(-r));
	}
	union bpf_attr a;
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
