/* Latencies and counters (stats.c) and their Prometheus histograms
 * (metrics.c): fed by every part, shown in /sbx/stats and /sbx/metrics. */
#ifndef SBX_STATS_H
#define SBX_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lat_kind { LAT_CREATE, LAT_STOP, LAT_EXEC, LAT_FORK, LAT_N };
void lat_add(enum lat_kind k, uint64_t usec);
uint64_t lat_percentile(uint64_t *sorted, size_t n, unsigned pct);
void stats_count_create(bool ok);
/* metrics.c: Prometheus histograms, fed by lat_add. */
void hist_observe(enum lat_kind k, uint64_t usec);

#endif
