/* The registry: every live object is in two liburcu lock-free hash tables,
 * by name and by id. Lookups run under rcu_read_lock() with no mutex; an
 * object leaves both tables, then the table's reference is dropped after a
 * grace period (call_rcu), so readers never touch freed memory. */
#ifndef SBX_REGISTRY_H
#define SBX_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>
#include <urcu/ref.h>

#define REG_NAME_MAX 64

struct reg_node {
	struct cds_lfht_node by_name;
	struct cds_lfht_node by_id;
	struct rcu_head rcu;
	struct urcu_ref ref;
	uint64_t id;
	char name[REG_NAME_MAX];
	void (*release)(struct reg_node *n); /* frees the containing object */
};

struct reg;

struct reg *reg_new(void);
/* Destroys an empty registry (every node already deleted). */
void reg_free(struct reg *r);

/* One reference is owned by the caller; the table takes its own. */
void reg_node_init(struct reg_node *n, uint64_t id, const char *name,
		   void (*release)(struct reg_node *));
/* -EEXIST when the name is taken. */
int reg_add(struct reg *r, struct reg_node *n);
/* Removes n from both tables; -ENOENT if another remover won. */
int reg_del(struct reg *r, struct reg_node *n);

/* Under rcu_read_lock() only; the result is valid until the unlock. */
struct reg_node *reg_find_name(struct reg *r, const char *name);
struct reg_node *reg_find_id(struct reg *r, uint64_t id);
/* Lock, find, pin: the result (or NULL) holds a reference the caller puts. */
struct reg_node *reg_get_name(struct reg *r, const char *name);
struct reg_node *reg_get_id(struct reg *r, uint64_t id);
bool reg_tryget(struct reg_node *n);
void reg_put(struct reg_node *n);
unsigned long reg_count(struct reg *r);

/* Calls fn for every node under one read-side section; stops when fn returns non-zero. */
int reg_foreach(struct reg *r, int (*fn)(struct reg_node *n, void *arg), void *arg);

/* Every thread that reads the registry registers once (idempotent). */
void reg_thread_online(void);
void reg_thread_offline(void);

#endif
