/* cgroups for sandboxes: v2 where the unified hierarchy has the controllers,
 * v1 otherwise (chosen once at start-up). One cgroup per sandbox under
 * <hierarchy>/sandboxfs/<tag>-<name>. */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct err;
struct vmm_limits;
struct vmm_usage;

enum { CG_U_CPU, CG_U_MEM, CG_U_PEAK, CG_U_OOM, CG_U_PIDS, CG_U_N };

struct cg {
	char leaf[128]; /* <tag>-<name>; empty when no cgroup exists */
	/* The counters cg_usage reads, kept open (fd + 1; 0 not opened yet, -1
	 * absent) so a stats read is a pread each. Touched under the owner's
	 * lock, as every cg_usage and cg_destroy call is; closed by cg_destroy. */
	int ufd[CG_U_N];
};

int cg_host_init(struct err *e);
int cg_version(void);
/* Creates the sandbox's cgroup and applies the limits. */
int cg_create(struct cg *cg, const char *tag, const char *name, const struct vmm_limits *lim,
	      struct err *e);
/* v2: an O_PATH fd of the cgroup for CLONE_INTO_CGROUP; -1 on v1. */
int cg_open_fd(const struct cg *cg);
/* v1: moves pid into every controller's cgroup. */
int cg_attach(const struct cg *cg, pid_t pid, struct err *e);
int cg_usage(struct cg *cg, struct vmm_usage *u);
/* The OOM kill counter alone (what cg_usage reads as oom_kills): 0 when unread. */
int cg_oom_kills(struct cg *cg, uint64_t *n);
int cg_freeze(const struct cg *cg, bool frozen, struct err *e);
/* Gives every process in the cgroup nice value prio (a pool member made at
 * a fill's priority, claimed: its init and warm shell); failures logged. */
void cg_renice(const struct cg *cg, int prio);
/* Kills what is left and removes the cgroup; idempotent. */
int cg_destroy(struct cg *cg);
/* An fd that turns readable (v1: an eventfd on memory.oom_control) or
 * urgent (v2: memory.events, POLLPRI) when the OOM killer acts in the
 * cgroup; *pri says which. -errno when there is none. */
int cg_oom_watch(const struct cg *cg, bool *pri);
/* After the fd fired: takes the event, so the next one fires again. */
void cg_oom_ack(int fd, bool pri);
/* Removes the shared sandboxfs parent when it is empty (daemon exit). */
void cg_host_cleanup(void);

#endif
