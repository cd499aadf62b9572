/* Output a sandbox writes, stored and bounded by the host: where a sandbox's
 * own processes write their console and their jobs' output (ns), they write
 * into pipes, and one pump thread drains those into files of the state dir
 * that the sandbox cannot reach, so what is stored and counted (what was
 * dropped) is the daemon's own. */
#ifndef SBX_OUTPUT_H
#define SBX_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>

/* console.log holds at most this much; older console output is dropped from
 * the front (the `log` file shows the last 64 KiB of it). */
#define OUT_CONSOLE_MAX_BYTES (1u << 20)
/* What the pump moves from one pipe before it turns to the next. */
#define OUT_PUMP_BUDGET_BYTES (256u << 10)

/* Starts the pump thread (once; later calls return its first result). It
 * also finds every running sandbox's console pipe and bounds console.log. */
struct engine;
/* job_readable (jobs.c's sbx_job_pump) is told when stream `stream` of job n
 * of sandbox sbx_id is readable: the pump calls down into nothing of jobs.c. */
int out_pump_start(struct engine *eng, void (*job_readable)(struct engine *eng, uint64_t sbx_id,
							    uint32_t n, int stream));
/* Daemon exit: the thread ends (what the pipes still hold waits there for
 * the next daemon; a job's pipe is found again, see sbx_jobs_reattach). */
void out_pump_stop(void);

/* Arms pipe read end fd (O_NONBLOCK) for one wake-up: when it is readable
 * (or at EOF) the pump calls the owner of key, which drains it and arms it
 * again (add: the first time). */
int out_pump_arm(int fd, uint64_t key, bool add);

/* Hands pipe read end fd (O_NONBLOCK) to the pump, which reads and drops
 * what comes until the pipe's end, then closes it: for a job forgotten
 * (rmdir) whose background processes may still write. */
int out_pump_discard(int fd);

/* Keys: a job's stream (n >= 1, stream 0 stdout or 1 stderr). */
static inline uint64_t out_key_job(uint64_t sbx_id, uint32_t n, int stream)
{
	return sbx_id << 20 | (uint64_t)n << 1 | (uint64_t)(stream & 1);
}

/* How much to drop from the front of a file of size bytes to bound it by cap:
 * whole blocks (blksize, a power of two), leaving about cap/2; 0 at or
 * under cap. Always less than size (the last block stays). */
uint64_t out_front_cut(uint64_t size, uint64_t blksize, uint64_t cap);

/* Drops whole blocks from the front of the file behind fd when it is past
 * cap, keeping about cap/2: the bytes dropped, 0 when under cap, or -errno
 * (-EOPNOTSUPP: the filesystem cannot drop a file's front). */
int64_t out_drop_front(int fd, uint64_t cap);

#endif
