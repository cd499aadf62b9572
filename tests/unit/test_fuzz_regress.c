/* Inputs found by the fuzz targets (tests/fuzz/), kept as unit tests so the
 * behaviour they pinned down stays: each is also in the replayed corpus. */
#include <stdint.h>
#include <string.h>

#include "../../engine/ctl.h"
#include "unit.h"

static void test_sizes(void)
{
	uint64_t u = 0;
	/* fuzz_options: a size of 31 digits with leading zeros is read as its
	 * value; 32 digits or more are refused (EINVAL), never misread. */
	CHECK(ctl_parse_size("0000000000013875954555633532926", &u) == 0 &&
	      u == 13875954555633532926ull);
	u = 7;
	CHECK(ctl_parse_size("00000000000000000000000000000001", &u) == -EINVAL && u == 7);
	/* The largest size and one past it; a unit that overflows. */
	CHECK(ctl_parse_size("18446744073709551615", &u) == 0 && u == UINT64_MAX);
	CHECK(ctl_parse_size("18446744073709551616", &u) < 0);
	CHECK(ctl_parse_size("16777216T", &u) == -ERANGE);
	CHECK(ctl_parse_size("16777215T", &u) == 0 && u == 16777215ull << 40);
}

static void test_options(void)
{
	/* As options: meoory= is unknown, memory= of 31 digits is accepted. */
	struct sbx_config c;
	struct err e = {0};
	char k1[] = "meoory=0000000000013875954555633532926";
	char *argv1[] = {k1};
	ctl_config_defaults(&c, "ns", false);
	CHECK(ctl_parse_options(1, argv1, &c, &e) == -EINVAL && strstr(e.msg, "unknown option"));
	char k2[] = "memory=0000000000013875954555633532926";
	char *argv2[] = {k2};
	CHECK(ctl_parse_options(1, argv2, &c, &e) == 0 && c.memory_bytes == 13875954555633532926ull);
}

static void test_cpus(void)
{
	/* cpus: the bounds and what lies just outside them. */
	uint32_t m = 0;
	CHECK(ctl_parse_cpus("1024", &m) == 0 && m == 1024000);
	CHECK(ctl_parse_cpus("1024.001", &m) < 0);
	CHECK(ctl_parse_cpus("0.001", &m) == 0 && m == 1);
	CHECK(ctl_parse_cpus("0.000", &m) < 0);
	CHECK(ctl_parse_cpus("00000000000000001", &m) < 0); /* 17 digits: refused */
}

static void test_signals(void)
{
	/* signals: 64 is the last, 0 and 65 are not signals. */
	int sig = 0;
	CHECK(ctl_parse_signal("64", &sig) == 0 && sig == 64);
	CHECK(ctl_parse_signal("65", &sig) == -EINVAL);
	CHECK(ctl_parse_signal("0", &sig) == -EINVAL);
	CHECK(ctl_parse_signal("sigkill", &sig) == 0 && sig == 9);
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_options);
	RUN(test_cpus);
	RUN(test_signals);
	UNIT_DONE("fuzz_regress");
}
