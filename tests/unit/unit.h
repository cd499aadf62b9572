/* A minimal unit-test harness: CHECK counts, the runner prints a summary line
 * per file that tests/run.sh adds up. */
#ifndef SBX_UNIT_H
#define SBX_UNIT_H
#include <stdio.h>

static int unit_passed, unit_failed;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (cond) {                                                            \
			unit_passed++;                                                 \
		} else {                                                               \
			unit_failed++;                                                 \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                      \
	} while (0)

#define UNIT_DONE(name)                                                                  \
	do {                                                                             \
		printf("unit %s: %d passed, %d failed\n", name, unit_passed, unit_failed); \
		return unit_failed ? 1 : 0;                                              \
	} while (0)
#endif
