/* Unit tests of engine/output.c's bound on stored output: how much a drop
 * from the front takes (whole blocks, about half the cap left, never the
 * end), and the drop itself on a real file (where the file system can). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../engine/common.h"
#include "../../engine/output.h"
#include "unit.h"

static void test_front_cut(void)
{
	/* At or under the cap: nothing. */
	CHECK(out_front_cut(0, 4096, 1 << 20) == 0);
	CHECK(out_front_cut(1 << 20, 4096, 1 << 20) == 0);
	/* Past it: whole blocks, leaving at least cap/2. */
	uint64_t cut = out_front_cut((1 << 20) + 1, 4096, 1 << 20);
	CHECK(cut % 4096 == 0 && cut > 0);
	CHECK((1 << 20) + 1 - cut >= (1 << 19) && (1 << 20) + 1 - cut < (1 << 19) + 4096);
	/* A 1 TiB file is cut to about the cap's half. */
	uint64_t tib = 1ull << 40;
	cut = out_front_cut(tib, 4096, 1 << 20);
	CHECK(tib - cut >= (1 << 19) && tib - cut < (1 << 19) + 4096);
	/* Never the end of the file, whatever the cap. */
	CHECK(out_front_cut(8192, 4096, 0) == 4096);
	CHECK(out_front_cut(4096, 4096, 1) < 4096);
	/* A block size that is not a power of two: no cut rather than a bad one. */
	CHECK(out_front_cut(1 << 22, 3000, 1 << 20) == 0);
	CHECK(out_front_cut(1 << 22, 0, 1 << 20) == 0);
}

static void test_drop_front(void)
{
	char path[] = "/tmp/sbx-unit-output.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	/* 64 blocks of 4 KiB, each filled with its own number. */
	char blk[4096];
	for (int i = 0; i < 64; i++) {
		memset(blk, 'A' + i % 26, sizeof(blk));
		CHECK(write(fd, blk, sizeof(blk)) == (ssize_t)sizeof(blk));
	}
	CHECK(out_drop_front(fd, 1 << 20) == 0); /* under the cap */
	int64_t r = out_drop_front(fd, 64 << 10);
	if (r == -EOPNOTSUPP) {
		close(fd);
		SKIP("this file system cannot drop a file's front");
	}
	struct stat st;
	CHECK(r > 0 && r % 4096 == 0 && fstat(fd, &st) == 0);
	CHECK((uint64_t)st.st_size == 64 * 4096 - (uint64_t)r);
	CHECK(st.st_size >= 32 << 10 && st.st_size <= 64 << 10);
	/* What is left is the newest blocks, as they were. */
	char first;
	CHECK(pread(fd, &first, 1, 0) == 1 && first == 'A' + (int)(r / 4096) % 26);
	CHECK(pread(fd, &first, 1, st.st_size - 1) == 1 && first == 'A' + 63 % 26);
	close(fd);
}

int main(void)
{
	RUN(test_front_cut);
	RUN(test_drop_front);
	UNIT_DONE("output");
}
