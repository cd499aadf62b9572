/* Latencies and counters (stats.c) and their Prometheus histograms
 * (metrics.c): fed by every part, shown in /sbx/stats and /sbx/metrics. */
#ifndef SBX_STATS_H
#define SBX_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;

enum lat_kind { LAT_CREATE, LAT_STOP, LAT_EXEC, LAT_FORK, LAT_N };
/* engine_new: the parts' state (eng->stats, eng->metrics), zero. */
int stats_init(struct engine *eng);
int metrics_init(struct engine *eng);
void lat_add(struct engine *eng, enum lat_kind k, uint64_t usec);
uint64_t lat_percentile(uint64_t *sorted, size_t n, unsigned pct);
void stats_count_create(struct engine *eng, bool ok);
/* An exec (job: a job) that ran in a warm shell (exec.c): exec_warm_total
 * (job_warm_total). */
void stats_count_warm(struct engine *eng, bool job);
/* metrics.c: Prometheus histograms, fed by lat_add. */
void hist_observe(struct engine *eng, enum lat_kind k, uint64_t usec);

#endif
