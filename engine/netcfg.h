/* A sandbox's network as the engine sees it (netcfg.c): the bridge, the
 * address it keeps, its policy and exposed ports; over net/. */
#ifndef SBX_NETCFG_H
#define SBX_NETCFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../net/net.h"
#include "common.h"

struct engine;
struct sbx;

bool engine_net_enabled(struct engine *eng);
int engine_net_start(struct engine *eng, struct err *e);
void engine_net_stop(struct engine *eng);
int sbx_net_reserve(struct sbx *s, const char *exact_ip, struct err *e);
void sbx_net_release(struct sbx *s);
void sbx_net_prepare(struct sbx *s);
void sbx_net_after_start(struct sbx *s);
json_t *sbx_net_journal(struct sbx *s);
/* Network policy: allow|deny lines written to the sandbox's ctl; the journal's. */
int sbx_net_ctl(struct sbx *s, int argc, char **argv, struct err *e);
void sbx_net_policy_load(struct sbx *s, const struct net_rule *rules, size_t n);
/* expose [tcp|udp] PORT [HOSTPORT], unexpose [tcp|udp] PORT (ctl); the journal's, after a
 * restart. */
int sbx_net_expose(struct sbx *s, int argc, char **argv, struct err *e);
void sbx_net_expose_load(struct sbx *s, const struct net_expose *x, size_t n);
void sbx_net_inherit(struct sbx *child, struct sbx *parent);
/* A claimed sandbox takes its new name in the network policy. */
void sbx_net_rename(struct sbx *s);
/* vmm_host's tap_ahead: a TAP for a QEMU started ahead, when the daemon has
 * networking (-EOPNOTSUPP without). arg: the engine. */
int engine_tap_ahead(void *arg, struct err *e);
/* vmm_host's veth_ahead: a veth pair into a network namespace made ahead,
 * its host end named sbx<tag>.N (down, on no bridge), when the daemon has
 * networking; -EOPNOTSUPP without. */
int engine_veth_ahead(void *arg, int netns_fd, struct err *e);

#endif
