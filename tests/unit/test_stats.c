/* Unit tests of stats formatting helpers: percentiles, text buffers and
 * their keyed rows. */
#include <inttypes.h>
#include <string.h>

#include "../../engine/sandbox.h"
#include "../../engine/stats.h"
#include "unit.h"

static void test_percentiles(void)
{
	uint64_t v[100];
	for (int i = 0; i < 100; i++)
		v[i] = (uint64_t)i + 1;
	CHECK(lat_percentile(v, 100, 50) == 50);
	CHECK(lat_percentile(v, 100, 95) == 95);
	CHECK(lat_percentile(v, 100, 99) == 99);
	CHECK(lat_percentile(v, 100, 100) == 100);
	CHECK(lat_percentile(v, 0, 50) == 0);
	uint64_t one[1] = {7};
	CHECK(lat_percentile(one, 1, 50) == 7 && lat_percentile(one, 1, 99) == 7);
	uint64_t three[3] = {1, 2, 3};
	CHECK(lat_percentile(three, 3, 50) == 2);
}

static void test_buf(void)
{
	struct buf b = {0};
	CHECK(buf_printf(&b, "create_usec %d\n", 42) == 0);
	CHECK(buf_printf(&b, "%s %s\n", "state", "running") == 0);
	CHECK(strcmp(b.data, "create_usec 42\nstate running\n") == 0 && b.len == 29);
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "k%d %d\n", i, i);
	CHECK(strstr(b.data, "k999 999\n") != NULL);
	buf_free(&b);
	CHECK(b.data == NULL && b.len == 0);
	/* Formatted into the room there is, or made again where it did not fit:
	 * a piece across the end of the room, and one larger than the first room. */
	char big[600];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(buf_printf(&b, "%.250s", big) == 0 && b.len == 250);
	CHECK(buf_printf(&b, "<%d>", 12345) == 0 && b.len == 257 && !strcmp(b.data + 250, "<12345>"));
	CHECK(buf_printf(&b, "%s|", big) == 0 && b.len == 257 + 600);
	CHECK(b.data[b.len - 1] == '|' && b.data[b.len] == '\0' && b.data[257] == 'x');
	/* Reused (as a handle's re-read does): made again from its start. */
	b.len = 0;
	CHECK(buf_printf(&b, "state %s\n", "paused") == 0 && !strcmp(b.data, "state paused\n"));
	buf_free(&b);
}

/* buf_rows writes what "%s %" PRIu64 "\n" would, from an empty buffer on and
 * across its growth. */
static void test_buf_rows(void)
{
	struct buf b = {0}, want = {0};
	const struct buf_row rows[] = {{"zero", 0}, {"nine", 9}, {"ten", 10},
				       {"max", UINT64_MAX}, {"create_usec", 123456789}};
	for (int round = 0; round < 40; round++) {
		CHECK(buf_rows(&b, rows, 5) == 0);
		for (int i = 0; i < 5; i++)
			buf_printf(&want, "%s %" PRIu64 "\n", rows[i].key, rows[i].v);
	}
	CHECK(b.len == want.len && strcmp(b.data, want.data) == 0);
	CHECK(strncmp(b.data, "zero 0\nnine 9\nten 10\nmax 18446744073709551615\n", 46) == 0);
	CHECK(buf_rows(&b, rows, 0) == 0 && b.len == want.len);
	buf_free(&b);
	buf_free(&want);
}

static void test_err(void)
{
	struct err e;
	CHECK(err_set(&e, -EBUSY, "cannot stop %s: it is %s", "a", "stopped") == -EBUSY);
	CHECK(e.code == -EBUSY && !strcmp(e.msg, "cannot stop a: it is stopped"));
	CHECK(err_set(NULL, -EINVAL, "x") == -EINVAL);
}

static void test_state_names(void)
{
	CHECK(!strcmp(sbx_state_name(SBX_RUNNING), "running"));
	CHECK(!strcmp(sbx_state_name(SBX_STOPPING), "running"));
	CHECK(!strcmp(sbx_state_name(SBX_FAILED), "failed"));
}

int main(void)
{
	RUN(test_percentiles);
	RUN(test_buf);
	RUN(test_buf_rows);
	RUN(test_err);
	RUN(test_state_names);
	UNIT_DONE("stats");
}
