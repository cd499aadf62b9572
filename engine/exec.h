/* Commands in a sandbox (exec.c): a line made ready to send, deadlines,
 * and the exec sessions' ends as the monitor learns of them. */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../vmm/vmm.h"
#include "ctl.h"
#include "images.h"

struct sbx;

/* An exec or run line made ready to send: its options (ctl.h), the shell
 * line (with the image's Env and WorkingDir), where the command itself
 * starts in it, and what the backend applies itself (opts, NULL: nothing). */
struct sbx_command {
	struct ctl_run_opts ro;
	char full[IMAGE_COMMAND_MAX];
	size_t cmd_at;
	struct vmm_run_opts vo;
	const struct vmm_run_opts *opts;
};
/* The exit code an exec shows after its timeout= killed it (as timeout(1)). */
#define SBX_EXEC_TIMEOUT_CODE 124
int sbx_command_prepare(struct sbx *s, const char *line, bool job, struct sbx_command *c,
			struct err *e);
/* With s->lock held: deadline_usec (a command's timeout=) for the monitor. */
void sbx_cmd_deadline(struct sbx *s, uint64_t deadline_usec);
/* A deadline (0: none) at now: true once it passed (then cleared), else
 * the earliest yet to come is kept in *next. */
bool sbx_deadline_passed(uint64_t *deadline_usec, uint64_t now, uint64_t *next);
/* With s->lock held: kill what is past its timeout=; the next deadline, 0 none. */
uint64_t sbx_execs_expire(struct sbx *s, uint64_t now);
void sbx_exec_fail_all(struct sbx *s, int code);
void sbx_exec_exited(struct sbx *s, uint64_t id, int code);
/* With s->lock held: asks the backend for a warm shell (new pipes; one
 * asked before goes), so that the next exec or job without options needs no
 * fork; a failure is logged, and execs run cold. Pool members get one, and
 * keep one after each exec that used it. */
void sbx_warm_arm(struct sbx *s);
/* With s->lock held: init is gone, and its warm shell with it. */
void sbx_warm_drop(struct sbx *s);
/* With s->lock held: whether c can run in the warm shell (no option the
 * shell was not started with, one line). */
bool sbx_warm_fits(const struct sbx *s, const struct sbx_command *c);
/* With s->lock held: c runs in the warm shell as exec id (job: job id);
 * fds gets our ends of its stdin, stdout and stderr (sbx_warm_arm's), the
 * caller's now. The next shell is asked for when it ends (sbx_warm_next). */
int sbx_warm_take(struct sbx *s, uint64_t id, const struct sbx_command *c, bool job, int fds[3],
		  struct err *e);
/* With s->lock held: a command of ours ended. */
void sbx_warm_next(struct sbx *s);
/* With s->lock held: a command's start report (vmm_event's warm: 'e', 'j'
 * or 0) from a backend whose guest keeps its own warm shell (qemu's agent
 * picks the commands it runs) counts as sbx_warm_take's do. */
void sbx_warm_reported(struct sbx *s, char warm);

#endif
