/* Device access for sandboxes: which device nodes a sandbox may create and
 * open, whatever CAP_MKNOD lets it mknod. One table, two enforcers: the v1
 * devices cgroup (written as devices.allow lines) and, on cgroup v2, a BPF
 * device program generated from the same rows.
 *
 * Every sandbox gets Docker's list (runc's default allowed devices): mknod of
 * any node, and read/write/mknod of /dev/null, zero, full, random, urandom,
 * tty, console, ptmx and /dev/pts/N. A backend adds rows by need (VMM_DEV_*
 * in vmm_limits.devices): QEMU opens /dev/kvm when it runs guests under KVM.
 * Everything else (host disks, /dev/kmsg, /dev/mem, ...) fails with EPERM on
 * open, also through a node the sandbox made itself. */
#ifndef SBX_DEVICES_H
#define SBX_DEVICES_H

#include <linux/bpf.h>

struct err;

/* The rows for a sandbox whose backend needs EXTRA (VMM_DEV_* bits). */
#define DEV_RULE_LINE_MAX 32
/* v1 devices.allow lines ("c 1:3 rwm"), at most cap; returns how many. */
int cg_devices_lines(unsigned extra, char (*out)[DEV_RULE_LINE_MAX], int cap);
/* The v2 program: at most cap instructions; returns how many, or -ENOSPC. */
int cg_devices_prog(unsigned extra, struct bpf_insn *out, int cap);

/* The program through the kernel's verifier: a program fd, or -errno. */
int cg_devices_load(unsigned extra, struct err *e);

/* cgroup v1: DIR is the sandbox's own, new cgroup in the `devices` hierarchy
 * (no children yet, no tasks yet); writes `a` to devices.deny, then the
 * allow lines to devices.allow. */
int cg_devices_restrict(const char *dir, unsigned extra, struct err *e);

/* cgroup v1: a new cgroup copies its parent's rows, so PARENT (our directory
 * in the devices hierarchy) is given every row any backend may ask for (only
 * possible while it has no children: the kernel refuses a change of its
 * default then). 0 when its list is that. */
int cg_devices_parent(const char *parent);

/* cgroup v1: DIR is a new cgroup under a parent cg_devices_parent set up:
 * the rows this sandbox does not need are denied, then its list is read
 * back; one that is not its rows exactly (the parent was made again, or
 * changed) is restricted in full, as cg_devices_restrict does. */
int cg_devices_restrict_inherited(const char *dir, unsigned extra, struct err *e);

/* cgroup v2 (no devices files there): loads the program and attaches it to
 * DIR, the sandbox's cgroup2 directory. The attachment lives as long as the
 * cgroup. */
int cg_devices_restrict_v2(const char *dir, unsigned extra, struct err *e);

#endif
