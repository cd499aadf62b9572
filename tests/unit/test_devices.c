/* Unit tests of the device rules (vmm/devices.c): the v1 allow lines and the
 * v2 BPF program come from one table and must decide alike; an ns sandbox
 * gets Docker's list, a qemu sandbox under KVM also /dev/kvm. The program is
 * run here by a small interpreter of the instructions it uses, and loaded
 * through the kernel's verifier; the v1 lines are written to a real devices
 * cgroup when this host has one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../engine/common.h"
#include "../../vmm/devices.h"
#include "../../vmm/vmm.h"
#include "unit.h"


#define R BPF_DEVCG_ACC_READ
#define W BPF_DEVCG_ACC_WRITE
#define M BPF_DEVCG_ACC_MKNOD

/* Runs the program on one access; -1 on an instruction it does not know. */
static int bpf_eval(const struct bpf_insn *p, int n, char type, int acc, uint32_t maj, uint32_t min)
{
	uint32_t ctx[3] = {(uint32_t)acc << 16 | (type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK),
			   maj, min};
	uint64_t reg[11] = {0};
	for (int pc = 0, steps = 0; pc >= 0 && pc < n && steps < 1000; pc++, steps++) {
		const struct bpf_insn *i = &p[pc];
		switch (i->code) {
		case BPF_LDX | BPF_MEM | BPF_W:
			if (i->src_reg != BPF_REG_1 || i->off < 0 || i->off > 8 || i->off % 4)
				return -1;
			reg[i->dst_reg] = ctx[i->off / 4];
			break;
		case BPF_ALU64 | BPF_MOV | BPF_X: reg[i->dst_reg] = reg[i->src_reg]; break;
		case BPF_ALU64 | BPF_MOV | BPF_K: reg[i->dst_reg] = (uint64_t)(int64_t)i->imm; break;
		case BPF_ALU64 | BPF_AND | BPF_K: reg[i->dst_reg] &= (uint64_t)(int64_t)i->imm; break;
		case BPF_ALU64 | BPF_RSH | BPF_K: reg[i->dst_reg] >>= i->imm; break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			if (reg[i->dst_reg] == (uint64_t)(int64_t)i->imm)
				pc += i->off;
			break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (reg[i->dst_reg] != (uint64_t)(int64_t)i->imm)
				pc += i->off;
			break;
		case BPF_JMP | BPF_EXIT: return (int)reg[0];
		default: return -1;
		}
	}
	return -1;
}

/* The same question answered from the v1 lines, as the devices cgroup reads them. */
static int lines_eval(char (*l)[DEV_RULE_LINE_MAX], int n, char type, int acc, int maj, int min)
{
	for (int i = 0; i < n; i++) {
		char t, smaj[16], smin[16], sacc[8];
		if (sscanf(l[i], "%c %15[^:]:%15s %7s", &t, smaj, smin, sacc) != 4)
			return -1;
		int a = (strchr(sacc, 'r') ? R : 0) | (strchr(sacc, 'w') ? W : 0) |
			(strchr(sacc, 'm') ? M : 0);
		if (t == type && (!strcmp(smaj, "*") || atoi(smaj) == maj) &&
		    (!strcmp(smin, "*") || atoi(smin) == min) && (acc & ~a) == 0)
			return 1;
	}
	return 0;
}

static int allowed(unsigned extra, char type, int acc, int maj, int min)
{
	struct bpf_insn p[256];
	int n = cg_devices_prog(extra, p, 256);
	return n > 0 ? bpf_eval(p, n, type, acc, (uint32_t)maj, (uint32_t)min) : -1;
}

static void test_ns_list(void)
{
	CHECK(allowed(0, 'c', R | W, 1, 3) == 1);   /* /dev/null */
	CHECK(allowed(0, 'c', R | W, 1, 9) == 1);   /* /dev/urandom */
	CHECK(allowed(0, 'c', R | W, 136, 7) == 1); /* /dev/pts/7 */
	CHECK(allowed(0, 'c', R | W, 5, 2) == 1);   /* /dev/ptmx */
	CHECK(allowed(0, 'c', R, 1, 1) == 0);       /* /dev/mem */
	CHECK(allowed(0, 'c', R, 1, 11) == 0);      /* /dev/kmsg */
	CHECK(allowed(0, 'b', R, 8, 0) == 0);       /* /dev/sda */
	CHECK(allowed(0, 'c', R | W, 10, 232) == 0); /* /dev/kvm: not for ns */
	CHECK(allowed(0, 'c', R | W, 10, 200) == 0); /* /dev/net/tun */
	CHECK(allowed(0, 'b', M, 8, 0) == 1);       /* mknod of anything */
	CHECK(allowed(0, 'c', M, 10, 232) == 1);
	CHECK(allowed(0, 'c', M | R, 10, 232) == 0);
}

static void test_qemu_kvm_list(void)
{
	CHECK(allowed(VMM_DEV_KVM, 'c', R | W, 10, 232) == 1);
	CHECK(allowed(VMM_DEV_KVM, 'c', R | W, 10, 231) == 0);
	CHECK(allowed(VMM_DEV_KVM, 'c', R | W, 1, 3) == 1);
	CHECK(allowed(VMM_DEV_KVM, 'b', R, 8, 0) == 0);
	char l[64][DEV_RULE_LINE_MAX];
	int n0 = cg_devices_lines(0, l, 64), found = 0;
	for (int i = 0; i < n0; i++)
		found |= !strcmp(l[i], "c 10:232 rw");
	CHECK(n0 > 5 && !found);
	int n1 = cg_devices_lines(VMM_DEV_KVM, l, 64);
	for (int i = 0; i < n1; i++)
		found |= !strcmp(l[i], "c 10:232 rw");
	CHECK(n1 == n0 + 1 && found);
	CHECK(!strcmp(l[0], "c *:* m") && !strcmp(l[2], "c 1:3 rwm"));
}

/* Both enforcers, over every access to a grid of numbers, for both backends. */
static void test_v1_and_v2_agree(void)
{
	static const int majors[] = {0, 1, 4, 5, 8, 10, 136, 254, 1000};
	static const int minors[] = {0, 1, 2, 3, 5, 7, 8, 9, 11, 200, 232, 4000};
	unsigned extras[] = {0, VMM_DEV_KVM};
	int disagree = 0, cases = 0;
	for (size_t x = 0; x < 2; x++) {
		char l[64][DEV_RULE_LINE_MAX];
		int n = cg_devices_lines(extras[x], l, 64);
		for (int t = 0; t < 2; t++)
			for (int acc = 1; acc <= 7; acc++)
				for (size_t a = 0; a < ARRAY_SIZE(majors); a++)
					for (size_t b = 0; b < ARRAY_SIZE(minors); b++) {
						char type = t ? 'b' : 'c';
						int v1 = lines_eval(l, n, type, acc, majors[a], minors[b]);
						int v2 = allowed(extras[x], type, acc, majors[a], minors[b]);
						cases++;
						if (v1 != v2 || v2 < 0) {
							disagree++;
							fprintf(stderr, "%c %d:%d acc %d: v1 %d v2 %d\n", type,
								majors[a], minors[b], acc, v1, v2);
						}
					}
	}
	CHECK(cases > 1000 && disagree == 0);
}

/* The kernel's verifier takes both programs (root; BPF is not namespaced). */
static void test_verifier_loads(void)
{
	unsigned extras[] = {0, VMM_DEV_KVM};
	for (size_t x = 0; x < 2; x++) {
		struct err e = {0};
		int fd = cg_devices_load(extras[x], &e);
		if (fd < 0)
			fprintf(stderr, "%s\n", e.msg);
		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
	}
	struct bpf_insn small[4];
	CHECK(cg_devices_prog(0, small, 4) == -ENOSPC);
}

/* cgroup v1 here: the lines land in a real devices cgroup as written. */
static void test_v1_cgroup(void)
{
	const char *root = "/sys/fs/cgroup/devices";
	struct stat st;
	if (stat(root, &st) < 0 || access("/sys/fs/cgroup/devices/devices.allow", W_OK) < 0) {
		printf("# no writable v1 devices hierarchy: the v1 write is not exercised\n");
		CHECK(1);
		return;
	}
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/sbx-unit-devices-%d", root, (int)getpid());
	CHECK(mkdir(dir, 0755) == 0);
	struct err e = {0};
	CHECK(cg_devices_restrict(dir, VMM_DEV_KVM, &e) == 0);
	char path[300], buf[4096] = "";
	snprintf(path, sizeof(path), "%s/devices.list", dir);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	CHECK(strstr(buf, "c 10:232 rw\n") != NULL);
	CHECK(strstr(buf, "c 1:3 rwm\n") != NULL);
	CHECK(strstr(buf, "a *:* rwm") == NULL);
	CHECK(rmdir(dir) == 0);
}

static void read_list(const char *dir, char *buf, size_t cap)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/devices.list", dir);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, cap - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
}

/* cgroup v1: a parent with every row; its children inherit them and deny
 * what they lack; a child of a parent with other rows is restricted in full. */
static void test_v1_inherited(void)
{
	const char *root = "/sys/fs/cgroup/devices";
	if (access("/sys/fs/cgroup/devices/devices.allow", W_OK) < 0) {
		printf("# no writable v1 devices hierarchy: inheritance is not exercised\n");
		CHECK(1);
		return;
	}
	char parent[256], kid[320], other[256], kid2[320], buf[4096];
	struct err e = {0};
	snprintf(parent, sizeof(parent), "%s/sbx-unit-inherit-%d", root, (int)getpid());
	snprintf(kid, sizeof(kid), "%s/ns", parent);
	CHECK(mkdir(parent, 0755) == 0);
	CHECK(cg_devices_parent(parent) == 0);
	CHECK(cg_devices_parent(parent) == 0); /* already so: nothing written */
	read_list(parent, buf, sizeof(buf));
	CHECK(strstr(buf, "c 10:232 rw\n") != NULL && strstr(buf, "a *:*") == NULL);
	CHECK(mkdir(kid, 0755) == 0);
	CHECK(cg_devices_restrict_inherited(kid, 0, &e) == 0);
	read_list(kid, buf, sizeof(buf));
	CHECK(strstr(buf, "c 10:232") == NULL && strstr(buf, "c 1:3 rwm\n") != NULL);
	/* A parent with children cannot be set up (the kernel refuses `a`). */
	CHECK(rmdir(kid) == 0);
	CHECK(rmdir(parent) == 0);
	snprintf(other, sizeof(other), "%s/sbx-unit-other-%d", root, (int)getpid());
	snprintf(kid2, sizeof(kid2), "%s/x", other);
	CHECK(mkdir(other, 0755) == 0 && mkdir(kid2, 0755) == 0);
	CHECK(cg_devices_parent(other) < 0);
	CHECK(rmdir(kid2) == 0);
	/* A parent left with every device: the child's check finds it and
	 * restricts it in full. */
	CHECK(mkdir(kid2, 0755) == 0);
	CHECK(cg_devices_restrict_inherited(kid2, VMM_DEV_KVM, &e) == 0);
	read_list(kid2, buf, sizeof(buf));
	CHECK(strstr(buf, "a *:*") == NULL && strstr(buf, "c 10:232 rw\n") != NULL);
	CHECK(rmdir(kid2) == 0);
	CHECK(rmdir(other) == 0);
}

int main(void)
{
	RUN(test_ns_list);
	RUN(test_qemu_kvm_list);
	RUN(test_v1_and_v2_agree);
	RUN(test_verifier_loads);
	RUN(test_v1_cgroup);
	RUN(test_v1_inherited);
	UNIT_DONE("devices");
}
