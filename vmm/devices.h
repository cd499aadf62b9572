/* Device access for sandboxes: which device nodes a sandbox may create and
 * open, whatever CAP_MKNOD lets it mknod. The list is Docker's (runc's
 * default allowed devices): mknod of any node, and read/write/mknod of
 * /dev/null, zero, full, random, urandom, tty, console, ptmx and /dev/pts/N.
 * Everything else (host disks, /dev/kmsg, /dev/mem, ...) fails with EPERM on
 * open, also through a node the sandbox made itself. */
#ifndef SBX_DEVICES_H
#define SBX_DEVICES_H

struct err;

/* cgroup v1: DIR is the sandbox's own, new cgroup in the `devices` hierarchy
 * (no children yet, no tasks yet); writes `a` to devices.deny, then the
 * allow list to devices.allow. */
int cg_devices_restrict(const char *dir, struct err *e);

/* cgroup v2 (no devices files there): loads a BPF_PROG_TYPE_CGROUP_DEVICE
 * program with the same list and attaches it to DIR, the sandbox's cgroup2
 * directory. The attachment lives as long as the cgroup. */
int cg_devices_restrict_v2(const char *dir, struct err *e);

#endif
