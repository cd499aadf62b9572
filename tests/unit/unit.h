/* A minimal unit-test harness. A test case is a function `static void
 * test_x(void)` holding CHECKs; main() runs each with RUN(test_x) and ends
 * with UNIT_DONE("file"). Each case prints `ok test_x` or `not ok test_x`
 * (a case fails when one of its CHECKs fails, when it ran no CHECK at all, or
 * when it is still running after UNIT_CASE_TIMEOUT seconds). A case that
 * cannot run on this host returns through SKIP("why, printf-style") and
 * prints `ok test_x # skip why`. The summary line
 * `unit FILE: N passed, N failed, N skipped` counts cases; tests/run.sh adds
 * it up. A CHECK outside any case (setup in main) that fails counts as one
 * failed case of its own. */
#ifndef SBX_UNIT_H
#define SBX_UNIT_H
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef UNIT_CASE_TIMEOUT
#define UNIT_CASE_TIMEOUT 120
#endif

static int unit_passed, unit_failed, unit_skipped; /* cases */
static char unit_skip_why[256];          /* set by SKIP in the current case */
static int unit_checks, unit_check_fails; /* CHECKs in the current case */
static int unit_stray_fails;              /* failed CHECKs outside a case */
static const char *unit_case;             /* the case running, or NULL */

#define SKIP(...)                                                                       \
	do {                                                                            \
		snprintf(unit_skip_why, sizeof(unit_skip_why), __VA_ARGS__);            \
		return;                                                                 \
	} while (0)

#define CHECK(cond)                                                                     \
	do {                                                                            \
		unit_checks++;                                                          \
		if (!(cond)) {                                                          \
			*(unit_case ? &unit_check_fails : &unit_stray_fails) += 1;     \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                       \
	} while (0)

/* SIGALRM: the case hangs. Only async-signal-safe calls. */
static void unit_timeout(int sig)
{
	static const char a[] = "not ok ", b[] = " (still running after the case timeout)\n";
	(void)sig;
	if (write(1, a, sizeof(a) - 1) < 0 || write(1, unit_case, strlen(unit_case)) < 0 ||
	    write(1, b, sizeof(b) - 1) < 0)
		_exit(2);
	_exit(1);
}

__attribute__((unused)) static void unit_run(void (*fn)(void), const char *name)
{
	unit_case = name;
	unit_checks = unit_check_fails = 0;
	unit_skip_why[0] = '\0';
	signal(SIGALRM, unit_timeout);
	alarm(UNIT_CASE_TIMEOUT);
	fn();
	alarm(0);
	if (unit_check_fails == 0 && unit_skip_why[0]) {
		printf("ok %s # skip %s\n", name, unit_skip_why);
		unit_skipped++;
	} else {
		if (unit_check_fails == 0 && unit_checks == 0) {
			fprintf(stderr, "FAIL %s: ran no CHECK\n", name);
			unit_check_fails = 1;
		}
		printf("%s %s\n", unit_check_fails ? "not ok" : "ok", name);
		*(unit_check_fails ? &unit_failed : &unit_passed) += 1;
	}
	fflush(stdout);
	unit_case = NULL;
}

#define RUN(fn) unit_run(fn, #fn)

#define UNIT_DONE(name)                                                                  \
	do {                                                                             \
		if (unit_stray_fails) {                                                  \
			printf("not ok %s: %d CHECK(s) outside a case\n", name,          \
			       unit_stray_fails);                                        \
			unit_failed++;                                                   \
		}                                                                        \
		if (unit_passed + unit_failed + unit_skipped == 0) {                     \
			printf("not ok %s: no test case ran\n", name);                   \
			unit_failed++;                                                   \
		}                                                                        \
		printf("unit %s: %d passed, %d failed, %d skipped\n", name, unit_passed, \
		       unit_failed, unit_skipped);                                       \
		return unit_failed ? 1 : 0;                                              \
	} while (0)
#endif
