/* Registry implementation over cds_lfht (see registry.h for the lifetime rules). */
#define _GNU_SOURCE
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reg {
	struct cds_lfht *by_name;
	struct cds_lfht *by_id;
};

/* FNV-1a: short names, no seed needed since names are validated, not hostile-sized. */
static unsigned long hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return (unsigned long)h;
}

static unsigned long hash_id(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (unsigned long)id;
}

static int match_name(struct cds_lfht_node *node, const void *key)
{
	struct reg_node *n = caa_container_of(node, struct reg_node, by_name);
	return strcmp(n->name, key) == 0;
}

static int match_id(struct cds_lfht_node *node, const void *key)
{
	struct reg_node *n = caa_container_of(node, struct reg_node, by_id);
	return n->id == *(const uint64_t *)key;
}

struct reg *reg_new(void)
{
	struct reg *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->by_name = cds_lfht_new_flavor(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
					 &urcu_memb_flavor, NULL);
	r->by_id = cds_lfht_new_flavor(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				       &urcu_memb_flavor, NULL);
	if (!r->by_name || !r->by_id) {
		reg_free(r);
		return NULL;
	}
	return r;
}

void reg_free(struct reg *r)
{
	if (!r)
		return;
	if (r->by_name)
		cds_lfht_destroy(r->by_name, NULL);
	if (r->by_id)
		cds_lfht_destroy(r->by_id, NULL);
	free(r);
}

void reg_node_init(struct reg_node *n, uint64_t id, const char *name,
		   void (*release)(struct reg_node *))
{
	cds_lfht_node_init(&n->by_name);
	cds_lfht_node_init(&n->by_id);
	urcu_ref_init(&n->ref);
	n->id = id;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->release = release;
}

int reg_add(struct reg *r, struct reg_node *n)
{
	urcu_ref_get(&n->ref); /* the tables' reference */
	urcu_memb_read_lock();
	struct cds_lfht_node *old =
		cds_lfht_add_unique(r->by_name, hash_name(n->name), match_name, n->name, &n->by_name);
	if (old != &n->by_name) {
		urcu_memb_read_unlock();
		urcu_ref_put(&n->ref, NULL); /* never visible: plain drop, caller still holds one */
		return -EEXIST;
	}
	cds_lfht_add(r->by_id, hash_id(n->id), &n->by_id);
	urcu_memb_read_unlock();
	return 0;
}

static void release_ref(struct urcu_ref *ref)
{
	struct reg_node *n = caa_container_of(ref, struct reg_node, ref);
	n->release(n);
}

static void drop_table_ref(struct rcu_head *head)
{
	struct reg_node *n = caa_container_of(head, struct reg_node, rcu);
	urcu_ref_put(&n->ref, release_ref);
}

int reg_del(struct reg *r, struct reg_node *n)
{
	urcu_memb_read_lock();
	int ret = cds_lfht_del(r->by_name, &n->by_name);
	if (ret == 0)
		cds_lfht_del(r->by_id, &n->by_id);
	urcu_memb_read_unlock();
	if (ret != 0)
		return -ENOENT;
	urcu_memb_call_rcu(&n->rcu, drop_table_ref);
	return 0;
}

struct reg_node *reg_find_name(struct reg *r, const char *name)
{
	struct cds_lfht_iter it;
	cds_lfht_lookup(r->by_name, hash_name(name), match_name, name, &it);
	struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct reg_node, by_name) : NULL;
}

struct reg_node *reg_find_id(struct reg *r, uint64_t id)
{
	struct cds_lfht_iter it;
	cds_lfht_lookup(r->by_id, hash_id(id), match_id, &id, &it);
	struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct reg_node, by_id) : NULL;
}

bool reg_tryget(struct reg_node *n)
{
	return urcu_ref_get_unless_zero(&n->ref);
}

void reg_put(struct reg_node *n)
{
	urcu_ref_put(&n->ref, release_ref);
}

struct reg_node *reg_get_name(struct reg *r, const char *name)
{
	urcu_memb_read_lock();
	struct reg_node *n = reg_find_name(r, name);
	if (n && !reg_tryget(n))
		n = NULL;
	urcu_memb_read_unlock();
	return n;
}

struct reg_node *reg_get_id(struct reg *r, uint64_t id)
{
	urcu_memb_read_lock();
	struct reg_node *n = reg_find_id(r, id);
	if (n && !reg_tryget(n))
		n = NULL;
	urcu_memb_read_unlock();
	return n;
}

unsigned long reg_count(struct reg *r)
{
	long before, after;
	unsigned long count;
	urcu_memb_read_lock();
	cds_lfht_count_nodes(r->by_name, &before, &count, &after);
	urcu_memb_read_unlock();
	return count;
}

int reg_foreach(struct reg *r, int (*fn)(struct reg_node *n, void *arg), void *arg)
{
	struct cds_lfht_iter it;
	struct reg_node *n;
	int ret = 0;
	urcu_memb_read_lock();
	cds_lfht_for_each_entry(r->by_name, &it, n, by_name) {
		ret = fn(n, arg);
		if (ret)
			break;
	}
	urcu_memb_read_unlock();
	return ret;
}

/* RCU registration is per thread of the process (liburcu's), whatever
 * engine the thread serves: these stay file-level. */
static __thread bool online;
static pthread_key_t offline_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void offline_at_exit(void *unused)
{
	(void)unused;
	reg_thread_offline();
}

static void make_key(void) { pthread_key_create(&offline_key, offline_at_exit); }

void reg_thread_online(void)
{
	if (online)
		return;
	pthread_once(&key_once, make_key);
	urcu_memb_register_thread();
	online = true;
	/* FUSE worker threads come and go; unregister when one exits. */
	pthread_setspecific(offline_key, (void *)1);
}

void reg_thread_offline(void)
{
	if (!online)
		return;
	urcu_memb_unregister_thread();
	online = false;
}
