/* Unit tests of the RCU registry: semantics, then readers, inserters and
 * removers hammering it at once (built with ASan: a use-after-free or leak fails). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../../engine/registry.h"
#include "unit.h"

struct obj {
	struct reg_node node;
	uint64_t magic;
};

static _Atomic long allocated, released;

static void obj_release(struct reg_node *n)
{
	struct obj *o = caa_container_of(n, struct obj, node);
	o->magic = 0xdead;
	free(o);
	atomic_fetch_add(&released, 1);
}

static struct obj *obj_new(uint64_t id, const char *name)
{
	struct obj *o = calloc(1, sizeof(*o));
	reg_node_init(&o->node, id, name, obj_release);
	o->magic = 0x5b5;
	atomic_fetch_add(&allocated, 1);
	return o;
}

#define SLOTS 256
#define ROUNDS 20000
static struct reg *R;
static _Atomic int stop_readers;
static _Atomic long lookups_ok;
static _Atomic(struct obj *) slots[SLOTS];
static _Atomic uint64_t next_id = 1000;

static void *reader(void *arg)
{
	(void)arg;
	reg_thread_online();
	unsigned seed = 1;
	while (!atomic_load(&stop_readers)) {
		char name[32];
		snprintf(name, sizeof(name), "s%u", rand_r(&seed) % SLOTS);
		struct reg_node *n = reg_get_name(R, name);
		if (n) {
			struct obj *o = caa_container_of(n, struct obj, node);
			if (o->magic == 0x5b5 && strcmp(n->name, name) == 0)
				atomic_fetch_add(&lookups_ok, 1);
			else
				fprintf(stderr, "reader saw a bad object\n");
			struct reg_node *m = reg_get_id(R, n->id);
			if (m)
				reg_put(m);
			reg_put(n);
		}
	}
	reg_thread_offline();
	return NULL;
}

/* Each churner owns half the slots: insert when empty, remove when full. */
static void *churner(void *arg)
{
	int half = (int)(intptr_t)arg;
	reg_thread_online();
	unsigned seed = (unsigned)half + 7;
	for (int i = 0; i < ROUNDS; i++) {
		int slot = (int)(rand_r(&seed) % (SLOTS / 2)) * 2 + half;
		struct obj *o = atomic_load(&slots[slot]);
		if (o) {
			if (reg_del(R, &o->node) == 0) {
				reg_put(&o->node); /* our own reference */
				atomic_store(&slots[slot], NULL);
			}
		} else {
			char name[32];
			snprintf(name, sizeof(name), "s%d", slot);
			o = obj_new(atomic_fetch_add(&next_id, 1), name);
			if (reg_add(R, &o->node) == 0)
				atomic_store(&slots[slot], o);
			else
				reg_put(&o->node);
		}
	}
	reg_thread_offline();
	return NULL;
}

static void test_semantics(void)
{
	struct obj *a = obj_new(1, "a"), *b = obj_new(2, "b"), *a2 = obj_new(3, "a");
	CHECK(reg_add(R, &a->node) == 0);
	CHECK(reg_add(R, &b->node) == 0);
	CHECK(reg_add(R, &a2->node) == -EEXIST);
	reg_put(&a2->node);
	CHECK(reg_count(R) == 2);
	urcu_memb_read_lock();
	CHECK(reg_find_name(R, "a") == &a->node);
	CHECK(reg_find_id(R, 2) == &b->node);
	CHECK(reg_find_name(R, "zzz") == NULL);
	CHECK(reg_find_id(R, 99) == NULL);
	urcu_memb_read_unlock();
	struct reg_node *pinned = reg_get_name(R, "a");
	CHECK(pinned == &a->node);
	CHECK(reg_del(R, &a->node) == 0);
	CHECK(reg_del(R, &a->node) == -ENOENT);
	CHECK(reg_get_name(R, "a") == NULL);
	urcu_memb_barrier();
	/* Still pinned twice (creator + lookup): not freed. */
	CHECK(a->magic == 0x5b5);
	reg_put(pinned);
	reg_put(&a->node);
	urcu_memb_barrier();
	CHECK(reg_count(R) == 1);
	CHECK(reg_del(R, &b->node) == 0);
	reg_put(&b->node);
}

/* Readers, inserters and removers at once: every object found is live, and
 * every object allocated is released. */
static void test_concurrent(void)
{
	pthread_t rd[2], ch[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&rd[i], NULL, reader, NULL);
	for (int i = 0; i < 2; i++)
		pthread_create(&ch[i], NULL, churner, (void *)(intptr_t)i);
	for (int i = 0; i < 2; i++)
		pthread_join(ch[i], NULL);
	atomic_store(&stop_readers, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	long live = 0;
	for (int i = 0; i < SLOTS; i++) {
		struct obj *o = atomic_load(&slots[i]);
		if (!o)
			continue;
		live++;
		char name[32];
		snprintf(name, sizeof(name), "s%d", i);
		urcu_memb_read_lock();
		CHECK(reg_find_name(R, name) == &o->node);
		urcu_memb_read_unlock();
	}
	CHECK((long)reg_count(R) == live);
	for (int i = 0; i < SLOTS; i++) {
		struct obj *o = atomic_load(&slots[i]);
		if (o) {
			CHECK(reg_del(R, &o->node) == 0);
			reg_put(&o->node);
		}
	}
	urcu_memb_barrier();
	CHECK(reg_count(R) == 0);
	CHECK(atomic_load(&allocated) == atomic_load(&released));
	CHECK(atomic_load(&lookups_ok) > 0);
}

int main(void)
{
	reg_thread_online();
	R = reg_new();
	CHECK(R != NULL);
	RUN(test_semantics);
	RUN(test_concurrent);
	reg_free(R);
	reg_thread_offline();
	UNIT_DONE("registry");
}
