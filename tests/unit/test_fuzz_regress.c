/* Inputs found by the fuzz targets (tests/fuzz/), kept as unit tests so the
 * behaviour they pinned down stays: each is also in the replayed corpus. */
#include <stdint.h>
#include <string.h>

#include "../../engine/ctl.h"
#include "../../engine/journal.h"
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

/* fuzz_journal: the smallest journal that loads, every field a journal may
 * leave out left out (as corpus/journal/valid_minimal_fields), and edits of
 * it from the corpus's hostile ones. */
static const char journal_min[] =
	"{\"state\": \"running\", \"config\": {\"image\": \"busybox\", \"backend\": \"ns\", "
	"\"memory\": 268435456, \"cpus\": 1.0, \"pids\": 512, \"net\": false, \"timeout\": 0, "
	"\"created_usec\": 1}, \"pid\": 14953, \"pid_start\": 1152659}";

static int journal_try(const char *from, const char *to, struct journal_rec *r, struct err *e)
{
	char text[1024];
	const char *p = strstr(journal_min, from);
	if (!p)
		return -12345;
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(p - journal_min), journal_min, to,
		 p + strlen(from));
	return journal_parse(text, strlen(text), r, e);
}

static void test_journal(void)
{
	struct journal_rec r;
	struct err e = {0};
	CHECK(journal_parse(journal_min, strlen(journal_min), &r, &e) == 0);
	CHECK(r.state == SBX_RUNNING && !strcmp(r.cfg.image, "busybox") && r.pid == 14953);
	CHECK(r.cfg.joblog_bytes == 16ull << 20 && !strcmp(r.reason, "-") && r.exit_code == -1);
	journal_rec_free(&r);
	/* corpus/journal/crash-image-empty: an empty image name loaded (it names
	 * the image's dir, STATE/images/IMAGE); found by fuzz_journal. */
	CHECK(journal_try("\"busybox\"", "\"\"", &r, &e) == -EINVAL && strstr(e.msg, "image"));
	/* Names that are paths or hold control characters, wherever they are. */
	CHECK(journal_try("\"busybox\"", "\"../../etc\"", &r, &e) == -EINVAL);
	CHECK(journal_try("\"created_usec\": 1}", "\"created_usec\": 1, \"layers\": [\"../x\"]}",
			  &r, &e) == -EINVAL && strstr(e.msg, "layers[0]"));
	CHECK(journal_try("\"created_usec\": 1}", "\"created_usec\": 1, \"parent\": \"a\\nb\"}",
			  &r, &e) == -EINVAL && strstr(e.msg, "control character"));
	/* config.name: a sandbox's, or a pool member's (a claim that died before
	 * its journal was rewritten: member_name); never a path or a bare dot. */
	CHECK(journal_try("{\"image\"", "{\"name\": \".p1-0a1b2c3d-7\", \"image\"", &r, &e) == 0 &&
	      r.member_name);
	journal_rec_free(&r);
	CHECK(journal_try("{\"image\"", "{\"name\": \"j1\", \"image\"", &r, &e) == 0 &&
	      !r.member_name);
	journal_rec_free(&r);
	CHECK(journal_try("{\"image\"", "{\"name\": \".\", \"image\"", &r, &e) == -EINVAL &&
	      strstr(e.msg, "config.name"));
	CHECK(journal_try("{\"image\"", "{\"name\": \"./a\", \"image\"", &r, &e) == -EINVAL);
	/* Numbers out of range, never cast: negative sizes, cpus past uint32. */
	CHECK(journal_try("268435456", "-1", &r, &e) == -EINVAL && strstr(e.msg, "memory"));
	CHECK(journal_try("1.0", "1e300", &r, &e) == -EINVAL && strstr(e.msg, "cpus"));
	CHECK(journal_try("14953", "4194305", &r, &e) == -EINVAL && strstr(e.msg, "pid"));
	/* Wrong types, a key twice, too deep. */
	CHECK(journal_try("false", "\"off\"", &r, &e) == -EINVAL && strstr(e.msg, "config.net"));
	CHECK(journal_try("\"pid\"", "\"state\": \"stopped\", \"pid\"", &r, &e) == -EINVAL &&
	      strstr(e.msg, "duplicate"));
	char deep[6001];
	memset(deep, '[', 3000);
	memset(deep + 3000, ']', 3000);
	deep[6000] = '\0';
	CHECK(journal_parse(deep, strlen(deep), &r, &e) == -EINVAL && strstr(e.msg, "depth"));
	CHECK(r.snaps == NULL && r.rules == NULL);
}

int main(void)
{
	RUN(test_sizes);
	RUN(test_options);
	RUN(test_cpus);
	RUN(test_signals);
	RUN(test_journal);
	UNIT_DONE("fuzz_regress");
}
