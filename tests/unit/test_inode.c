/* Unit tests of the inode scheme (fs/inode.c): every kind of node reads back
 * as itself from its number, at the edges of every id range, and no two
 * kinds' ranges share a number. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/ids.h"
#include "../../fs/inode.h"
#include "unit.h"

#define SBX_BLOCK (1ull << INO_SBX_SHIFT)

static bool same(const struct ino_node *a, const struct ino_node *b)
{
	return a->kind == b->kind && a->sbx == b->sbx && a->obj == b->obj && a->file == b->file;
}

/* The edge values of each field of kind k, into out (at most 4). */
static size_t edges(uint64_t lo, uint64_t hi, uint64_t out[4])
{
	uint64_t v[4] = {lo, lo + 1, hi - 1, hi};
	size_t n = 0;
	for (size_t i = 0; i < 4; i++)
		if (v[i] >= lo && v[i] <= hi && (n == 0 || v[i] > out[n - 1]))
			out[n++] = v[i];
	return n;
}

/* Every combination of the edges of kind k's fields: sandbox id, object, file. */
static size_t edge_nodes(enum ino_kind k, struct ino_node *out)
{
	const struct ino_range *r = &ino_ranges[k];
	uint64_t sbx[4], obj[4], file[4];
	size_t ns = r->in_sbx ? edges(1, SBX_ID_MAX, sbx) : (sbx[0] = 0, 1);
	size_t no = r->obj_max ? edges(1, r->obj_max, obj) : (obj[0] = 0, 1);
	size_t nf = edges(0, r->slots - 1, file), n = 0;
	for (size_t a = 0; a < ns; a++)
		for (size_t b = 0; b < no; b++)
			for (size_t c = 0; c < nf; c++)
				out[n++] = (struct ino_node){.kind = k, .sbx = sbx[a],
							     .obj = (uint32_t)obj[b],
							     .file = (uint32_t)file[c]};
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_round_trip(void)
{
	static uint64_t seen[INO_NKINDS * 64];
	size_t nseen = 0;
	for (int k = 0; k < INO_NKINDS; k++) {
		struct ino_node nodes[64], back;
		size_t n = edge_nodes((enum ino_kind)k, nodes);
		CHECK(n >= 1);
		for (size_t i = 0; i < n; i++) {
			uint64_t ino = ino_encode(&nodes[i]);
			CHECK(ino != 0);
			CHECK(ino_decode(ino, &back) == 0 && same(&back, &nodes[i]));
			if (!same(&back, &nodes[i]))
				fprintf(stderr, "%s: %#llx reads back as %s\n", ino_ranges[k].name,
					(unsigned long long)ino, ino_ranges[back.kind].name);
			seen[nseen++] = ino;
		}
	}
	/* No number twice, across all kinds. */
	qsort(seen, nseen, sizeof(seen[0]), cmp_u64);
	for (size_t i = 1; i < nseen; i++)
		CHECK(seen[i] != seen[i - 1]);
	CHECK(ino_encode(&(struct ino_node){.kind = INO_ROOT}) == 1); /* FUSE_ROOT_ID */
}

/* The numbers themselves: the kernel's caches and the tests see them. */
static void test_numbers_kept(void)
{
	static const struct {
		struct ino_node n;
		uint64_t ino;
	} known[] = {
		{{.kind = INO_ROOT}, 1},
		{{.kind = INO_TOP_FILE, .file = 0}, 2},
		{{.kind = INO_TOP_FILE, .file = 4}, 6},
		{{.kind = INO_POOLS}, 0x800},
		{{.kind = INO_IMAGES}, 0x900},
		{{.kind = INO_IMAGES_FILE, .file = 0}, 0x901},
		{{.kind = INO_POOL, .obj = 1}, 0x10010},
		{{.kind = INO_POOL_FILE, .obj = 3, .file = 2}, 0x10033},
		{{.kind = INO_IMAGE, .obj = 1}, (1ull << 62) + 0x10},
		{{.kind = INO_IMAGE_FILE, .obj = 2, .file = 3}, (1ull << 62) + 0x24},
		{{.kind = INO_SBX, .sbx = 1}, 0x100000},
		{{.kind = INO_SBX_FILE, .sbx = 2, .file = 0}, 0x200001},
		{{.kind = INO_SBX_FILE, .sbx = 2, .file = 11}, 0x20000c},
		{{.kind = INO_SNAPS, .sbx = 1}, 0x100100},
		{{.kind = INO_JOBS, .sbx = 1}, 0x100200},
		{{.kind = INO_SNAP, .sbx = 1, .obj = 1}, 0x101001},
		{{.kind = INO_JOB, .sbx = 1, .obj = 1}, 0x180010},
		{{.kind = INO_JOB_FILE, .sbx = 1, .obj = 2, .file = 5}, 0x180026},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		CHECK(ino_encode(&known[i].n) == known[i].ino);
}

/* Past every bound, encode refuses: the number would be another node's. */
static void test_out_of_range(void)
{
	struct ino_node n = {.kind = INO_JOB, .sbx = 7, .obj = SBX_JOB_ID_MAX + 1};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_JOB_FILE, .sbx = 7, .obj = 1, .file = INO_OBJ_FILES_MAX};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_SNAP, .sbx = 7, .obj = SBX_SNAP_SEQ_MAX + 1};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_SNAP, .sbx = 7, .obj = 0};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_SBX, .sbx = SBX_ID_MAX + 1};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_SBX, .sbx = 0};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_POOL, .obj = WARM_POOL_ID_MAX + 1};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_IMAGE_FILE, .obj = IMAGE_ID_MAX + 1};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_TOP_FILE, .file = INO_TOP_FILES_MAX};
	CHECK(ino_encode(&n) == 0);
	n = (struct ino_node){.kind = INO_ROOT, .sbx = 1};
	CHECK(ino_encode(&n) == 0);
	/* Just past the last snapshot is job 0 of the sandbox, which no job is. */
	struct ino_node back;
	n = (struct ino_node){.kind = INO_SNAP, .sbx = 7, .obj = SBX_SNAP_SEQ_MAX};
	CHECK(ino_decode(ino_encode(&n) + 1, &back) == -ENOENT);
	CHECK(ino_decode(0, &back) == -ENOENT);
	CHECK(ino_decode(UINT64_MAX, &back) == -ENOENT);
}

/* [lo, hi]: the numbers kind k may use, relative to its sandbox's block. */
static void span(const struct ino_range *r, uint64_t *lo, uint64_t *hi)
{
	*lo = r->base + (r->obj_max ? 1ull << r->shift : 0);
	*hi = r->base + ((uint64_t)r->obj_max << r->shift) + r->slots - 1;
}

/* Kinds share no number: their spans are apart, or (an object's directory and
 * its files) they share each object's block of 2^shift, in slots apart. */
static void test_no_overlap(void)
{
	for (int a = 0; a < INO_NKINDS; a++) {
		const struct ino_range *ra = &ino_ranges[a];
		uint64_t alo, ahi;
		span(ra, &alo, &ahi);
		CHECK(alo <= ahi && ra->slots >= 1);
		if (ra->obj_max)
			CHECK(ra->shift == 0 ? ra->slots == 1 : ra->slots <= 1u << ra->shift);
		if (ra->in_sbx || ra->base < SBX_BLOCK)
			CHECK(ahi < SBX_BLOCK);
		else
			CHECK(alo >= (SBX_ID_MAX + 1) << INO_SBX_SHIFT);
		for (int b = a + 1; b < INO_NKINDS; b++) {
			const struct ino_range *rb = &ino_ranges[b];
			uint64_t blo, bhi;
			span(rb, &blo, &bhi);
			if (ra->in_sbx != rb->in_sbx || ahi < blo || bhi < alo)
				continue;
			const struct ino_range *x = ra->base < rb->base ? ra : rb, *y = x == ra ? rb : ra;
			bool shared = x->obj_max && x->obj_max == y->obj_max && x->shift == y->shift &&
				      x->shift > 0 && y->base - x->base >= x->slots &&
				      y->base - x->base + y->slots <= 1u << x->shift;
			CHECK(shared);
			if (!shared)
				fprintf(stderr, "%s and %s overlap\n", ra->name, rb->name);
		}
	}
}

/* Whatever reads as a node is that node's number: across the top level, the
 * first sandboxes and the last, the images, and at random. */
static void test_decode_consistent(void)
{
	uint64_t starts[] = {0, SBX_ID_MAX << INO_SBX_SHIFT, 1ull << 62,
			     (1ull << 62) + ((uint64_t)IMAGE_ID_MAX << 4) - SBX_BLOCK};
	uint64_t lens[] = {3 * SBX_BLOCK, SBX_BLOCK + 64, SBX_BLOCK, SBX_BLOCK + 64};
	struct ino_node n;
	size_t bad = 0, found = 0;
	for (size_t i = 0; i < 4; i++)
		for (uint64_t ino = starts[i]; ino < starts[i] + lens[i]; ino++)
			if (ino_decode(ino, &n) == 0 && (found++, ino_encode(&n) != ino))
				bad++;
	srandom(14);
	for (int i = 0; i < 1000000; i++) {
		uint64_t ino = (uint64_t)random() << 42 ^ (uint64_t)random() << 21 ^ (uint64_t)random();
		if (ino_decode(ino, &n) == 0 && (found++, ino_encode(&n) != ino))
			bad++;
	}
	CHECK(bad == 0);
	CHECK(found > 3 * SBX_BLOCK / 2);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_numbers_kept);
	RUN(test_out_of_range);
	RUN(test_no_overlap);
	RUN(test_decode_consistent);
	UNIT_DONE("inode");
}
