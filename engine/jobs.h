/* Background jobs seen from the rest of the engine (jobs.c): the monitor's
 * events and output watches, a sandbox's end, restart. */
#ifndef SBX_JOBS_H
#define SBX_JOBS_H

#include <stdbool.h>
#include <stdint.h>

struct engine;
struct sbx;
struct vmm_event;

bool sbx_job_event(struct sbx *s, const struct vmm_event *ev);
void sbx_jobs_ended(struct sbx *s, const char *reason);
void sbx_jobs_bound(struct sbx *s);
void sbx_jobs_load(struct sbx *s);
void sbx_jobs_reattach(struct sbx *s);
void sbx_jobs_free(struct sbx *s);
/* The output pump's job_readable (output.h): stream `stream` of job n is readable. */
void sbx_job_pump(struct engine *eng, uint64_t sbx_id, uint32_t n, int stream);
/* Output watches: an inotify fd in the monitor's epoll set (data tag), and
 * what the monitor does when it is readable. */
int sbx_jobs_watch_start(struct engine *eng, int epfd, uint64_t tag);
void sbx_jobs_watch_drain(struct engine *eng);
/* With s->lock held: kill what is past its timeout=; the next deadline, 0 none. */
uint64_t sbx_jobs_expire(struct sbx *s, uint64_t now);

#endif
