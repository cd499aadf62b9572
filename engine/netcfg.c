/* The engine's side of networking: one bridge and subnet per daemon, an
 * identity (IP, MAC, device names) reserved per sandbox with its name and
 * journaled with it, the veth pair wired between clone and go (no lock held
 * while devices are made), and traffic shaping on the worker pool after the
 * sandbox is running. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../net/net.h"
#include "journal.h"
#include "netcfg.h"
#include "pool.h"
#include "sandbox.h"

/* Exposed ports: this daemon's nft table, when nft is there. */

bool engine_net_enabled(struct engine *eng) { return eng->net.up; }

static bool dns_known(struct in_addr src, void *arg);
static void dns_learn(struct in_addr src, const char *name, const struct net_dns_a *a, int n,
		      void *arg);
static void dns_tick(void *arg);

/* The forwarder on the gateway, relaying to --dns IP[:PORT] (checked by
 * engine_parse_dns at start-up); the filter lets sandboxes reach it. */
static int dns_start(struct engine *eng, struct in_addr gw, struct err *e)
{
	struct in_addr up;
	uint16_t port;
	int r = engine_parse_dns(eng->o.dns, &up, &port, e);
	if (r < 0)
		return r;
	const struct net_dns_ops ops = {dns_known, dns_learn, dns_tick, eng};
	if ((r = net_dns_start(gw, up, port, &ops, e)) < 0)
		return r;
	net_policy_allow_dns(true);
	eng->net.dns_up = true;
	return 0;
}

int engine_parse_dns(const char *s, struct in_addr *ip, uint16_t *port, struct err *e)
{
	char a[INET_ADDRSTRLEN];
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	unsigned long p = 53;
	char *end = NULL;
	if (colon) {
		p = strtoul(colon + 1, &end, 10);
		if (!isdigit((unsigned char)colon[1]) || *end || p == 0 || p > 65535)
			return err_set(e, -EINVAL, "--dns %s: the port is not a number from 1 to "
				       "65535", s);
	}
	if (n >= sizeof(a))
		return err_set(e, -EINVAL, "--dns %s: not an IPv4 address[:PORT]", s);
	memcpy(a, s, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, ip) != 1)
		return err_set(e, -EINVAL, "--dns %s: not an IPv4 address[:PORT]", s);
	*port = (uint16_t)p;
	return 0;
}

int engine_net_start(struct engine *eng, struct err *e)
{
	if (!eng->o.net)
		return 0;
	char prefix[IFNAMSIZ];
	int r = net_alloc_init(eng->o.subnet, e);
	if (r < 0)
		return r;
	/* Device names carry this daemon's tag, so two daemons never collide. */
	snprintf(prefix, sizeof(prefix), "sbx%.4s-", vmm_host()->tag);
	if ((r = net_alloc_set_ifprefix(prefix, e)) < 0)
		return r;
	struct in_addr gw;
	uint8_t plen;
	net_alloc_gateway(&gw, &plen);
	if ((r = net_bridge_ensure(eng->o.bridge, gw, plen, e)) < 0)
		return r;
	if (eng->o.nat && (r = net_nat_enable(eng->o.subnet, e)) < 0)
		return r;
	if ((r = net_policy_init(eng->o.subnet, !eng->o.egress_deny, e)) < 0)
		return r;
	if (eng->o.dns[0] && (r = dns_start(eng, gw, e)) < 0) {
		net_policy_fini();
		return r;
	}
	eng->net.up = true;
	snprintf(eng->net.expose_table, sizeof(eng->net.expose_table), "sandboxfs_expose_%.8s",
		 vmm_host()->tag);
	char gws[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &gw, gws, sizeof(gws));
	log_info("network: bridge %s, gateway %s/%u, subnet %s%s, egress %s by default%s%s",
		 eng->o.bridge, gws, plen, eng->o.subnet, eng->o.nat ? ", NAT on" : "",
		 eng->o.egress_deny ? "denied" : "allowed", eng->net.dns_up ? ", DNS relayed to " : "",
		 eng->net.dns_up ? eng->o.dns : "");
	return 0;
}

/* The bridge goes with the daemon when nothing is attached to it any more. */
static void expose_retry(struct engine *eng);

void engine_net_stop(struct engine *eng)
{
	if (!eng->net.up)
		return;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/class/net/%s/brif", eng->o.bridge);
	DIR *d = opendir(path);
	int ports = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		ports += de->d_name[0] != '.';
	if (d)
		closedir(d);
	if (eng->net.dns_up)
		net_dns_stop();
	eng->net.dns_up = false;
	if (eng->o.nat)
		net_nat_disable(eng->o.subnet, NULL);
	/* Its hooks go with the daemon, whatever happens to the sandboxes: the
	 * next daemon makes the table afresh from their journals. */
	if (eng->net.expose_up)
		net_expose_stop(eng->net.expose_table);
	eng->net.expose_up = false;
	pthread_mutex_lock(&eng->net.pol_lock);
	expose_retry(eng); /* the table is gone: the gone entries' ports with it */
	pthread_mutex_unlock(&eng->net.pol_lock);
	if (ports == 0 && net_bridge_remove(eng->o.bridge, NULL) == 0)
		log_info("network: bridge %s removed (no sandbox on it)", eng->o.bridge);
	net_alloc_fini();
	net_policy_fini();
	eng->net.up = false;
}

/* ---- network policy: each sandbox's rules, in the order written ----
 * Kept here (not in struct sbx) under one mutex, taken after a sandbox's lock
 * and never before it; the maps of net/policy.c hold what the filter reads.
 * `allow sandbox NAME` binds to whoever is called NAME: its address is
 * installed while NAME has one, removed when NAME goes. */

#define POL_RULES_MAX 1024

struct pol_rule {
	struct net_rule r;
	bool installed;
	struct in_addr dst; /* NET_RULE_SANDBOX: the address installed */
};

/* An address the DNS forwarder relayed to this sandbox for a name that a
 * domain rule matches: a /32 map entry with that rule's verdict, protocol
 * and port until the answer's TTL (clamped) runs out. One per (address,
 * protocol, port): the last rule (in the list's order) that matched sets it. */
#define POL_LEARNED_MAX 256

struct pol_learned {
	struct in_addr ip;
	uint8_t proto;
	uint16_t port;
	bool allow;
	bool written;  /* its map entry is ours (no CIDR rule has the same key) */
	int rule;      /* index of the domain rule in p->rules */
	uint64_t expires_usec;
};

/* A sandbox's policy entry. One whose sandbox went while an nft delete of
 * its exposed ports failed stays, gone (no sandbox, no rules), holding
 * those host ports and the sandbox's identity: the map element sends its
 * host port to that address, which is given out again only once a retry
 * (expose_retry) deleted it. */
struct pol {
	const struct sbx *s; /* NULL: gone */
	struct net_ident gone_id;
	struct engine *eng; /* s's */
	char name[SBX_NAME_MAX + 1];
	uint32_t host;
	struct in_addr ip;
	struct pol_rule *rules;
	int n;
	uint64_t apply_usec; /* the last rule's, map write included */
	struct net_expose expose[NET_EXPOSE_MAX];
	int hold[NET_EXPOSE_MAX]; /* each one's host port, held (net_expose_hold) */
	int nexpose;
	struct pol_learned *learned; /* POL_LEARNED_MAX, made at the first one */
	int nlearned;
	struct pol *next;
};

static struct pol *pol_of(const struct sbx *s)
{
	for (struct pol *p = s->eng->net.pols; p; p = p->next)
		if (p->s == s)
			return p;
	return NULL;
}

static struct pol *pol_named(struct engine *eng, const char *name)
{
	for (struct pol *p = eng->net.pols; p; p = p->next)
		if (p->s && !strcmp(p->name, name))
			return p;
	return NULL;
}

/* Installs (or removes) one rule's map entry; a sandbox rule whose sandbox has
 * no address stays uninstalled, a domain rule has none (its learned
 * addresses have theirs). */
static int rule_sync(struct pol *p, struct pol_rule *pr, bool add, struct err *e)
{
	if (pr->r.kind == NET_RULE_DOMAIN)
		return 0;
	if (!add) {
		int r = pr->installed ? net_policy_put(p->host, &pr->r, pr->dst, false, e) : 0;
		pr->installed = false;
		return r;
	}
	if (pr->r.kind == NET_RULE_SANDBOX) {
		struct pol *o = pol_named(p->eng, pr->r.sbx);
		if (!o)
			return 0;
		pr->dst = o->ip;
	}
	int r = net_policy_put(p->host, &pr->r, pr->dst, true, e);
	pr->installed = r == 0;
	return r;
}

/* After a removal: two rules can share a map entry (`allow sandbox B` and B's
 * address as a /32), so what is left is written again. */
static void pol_resync(struct pol *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->rules[i].installed || p->rules[i].r.kind == NET_RULE_SANDBOX)
			rule_sync(p, &p->rules[i], true, NULL);
}

/* A learned address as the /32 rule its map entry is. */
static struct net_rule learned_rule(const struct pol_learned *l)
{
	struct net_rule r = { .allow = l->allow, .kind = NET_RULE_CIDR, .proto = l->proto,
			      .plen = 32, .port = l->port, .addr = l->ip };
	return r;
}

/* The installed rule of p (a CIDR or sandbox rule) with l's map key, or NULL. */
static struct pol_rule *learned_owner(struct pol *p, const struct pol_learned *l)
{
	struct net_rule lr = learned_rule(l);
	for (int i = 0; i < p->n; i++) {
		struct pol_rule *pr = &p->rules[i];
		struct in_addr dst = pr->r.kind == NET_RULE_SANDBOX ? pr->dst : pr->r.addr;
		if (pr->installed && pr->r.proto == lr.proto && pr->r.port == lr.port &&
		    dst.s_addr == lr.addr.s_addr &&
		    (pr->r.kind == NET_RULE_SANDBOX || pr->r.plen == 32))
			return pr;
	}
	return NULL;
}


/* Takes learned entry i away (its map entry too, giving the key back to a
 * rule that shares it). */
static void learned_drop(struct pol *p, int i)
{
	struct pol_learned *l = &p->learned[i];
	if (l->written) {
		struct pol_rule *owner = learned_owner(p, l);
		struct net_rule lr = learned_rule(l);
		struct err e = {0};
		int r = owner ? rule_sync(p, owner, true, &e)
			      : net_policy_put(p->host, &lr, l->ip, false, &e);
		if (r < 0)
			log_warn("sandbox %s: a learned address's map entry: %s", p->name, e.msg);
		p->eng->net.learned_total--;
	}
	p->learned[i] = p->learned[--p->nlearned];
}

/* Every learned address of rule `rule` (-1: all of them) goes. */
static void learned_drop_rule(struct pol *p, int rule)
{
	for (int i = p->nlearned - 1; i >= 0; i--)
		if (rule < 0 || p->learned[i].rule == rule)
			learned_drop(p, i);
}

/* pol_lock held: a's address for domain rule `rule` of p, for its TTL. */
static void learned_put(struct pol *p, int rule, const struct net_dns_a *a, uint64_t now)
{
	const struct net_rule *r = &p->rules[rule].r;
	if (net_policy_internal(a->ip)) {
		/* A name never opens the subnet or the host (DNS rebinding): CIDR and
		 * sandbox rules do that. */
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &a->ip, ip, sizeof(ip));
		log_debug("sandbox %s: '%s' answered %s, an internal address: not learned", p->name,
			  r->domain, ip);
		return;
	}
	if (!p->learned && !(p->learned = calloc(POL_LEARNED_MAX, sizeof(*p->learned))))
		return;
	uint32_t ttl = a->ttl < NET_DNS_TTL_MIN ? NET_DNS_TTL_MIN
		     : a->ttl > NET_DNS_TTL_MAX ? NET_DNS_TTL_MAX : a->ttl;
	int at = -1, soonest = 0;
	for (int i = 0; i < p->nlearned; i++) {
		struct pol_learned *l = &p->learned[i];
		if (l->ip.s_addr == a->ip.s_addr && l->proto == r->proto && l->port == r->port)
			at = i;
		if (l->expires_usec < p->learned[soonest].expires_usec)
			soonest = i;
	}
	if (at < 0 && p->nlearned == POL_LEARNED_MAX)
		learned_drop(p, soonest); /* full: the one closest to expiring makes room */
	if (at < 0) {
		at = p->nlearned++;
		memset(&p->learned[at], 0, sizeof(p->learned[at]));
	}
	struct pol_learned *l = &p->learned[at];
	l->ip = a->ip;
	l->proto = r->proto;
	l->port = r->port;
	l->allow = r->allow;
	l->rule = rule;
	l->expires_usec = now + (uint64_t)ttl * 1000000u;
	if (learned_owner(p, l)) /* a rule with the same key stays what decides */
		return;
	struct net_rule lr = learned_rule(l);
	struct err e = {0};
	if (net_policy_put(p->host, &lr, l->ip, true, &e) < 0) {
		log_warn("sandbox %s: a learned address for '%s': %s", p->name, r->domain, e.msg);
		p->learned[at] = p->learned[--p->nlearned];
		return;
	}
	p->eng->net.learned_total += !l->written;
	l->written = true;
}

static struct pol *pol_by_ip(struct engine *eng, struct in_addr ip)
{
	for (struct pol *p = eng->net.pols; p; p = p->next)
		if (p->s && p->ip.s_addr == ip.s_addr)
			return p;
	return NULL;
}

static bool dns_known(struct in_addr src, void *arg)
{
	struct engine *eng = arg;
	pthread_mutex_lock(&eng->net.pol_lock);
	bool known = pol_by_ip(eng, src) != NULL;
	pthread_mutex_unlock(&eng->net.pol_lock);
	return known;
}

static void dns_learn(struct in_addr src, const char *name, const struct net_dns_a *a, int n,
		      void *arg)
{
	struct engine *eng = arg;
	uint64_t now = now_usec();
	pthread_mutex_lock(&eng->net.pol_lock);
	struct pol *p = pol_by_ip(eng, src);
	for (int i = 0; p && i < p->n; i++)
		if (p->rules[i].r.kind == NET_RULE_DOMAIN &&
		    net_dns_name_match(p->rules[i].r.domain, name))
			for (int j = 0; j < n; j++)
				learned_put(p, i, &a[j], now);
	pthread_mutex_unlock(&eng->net.pol_lock);
}

static void dns_tick(void *arg)
{
	struct engine *eng = arg;
	uint64_t now = now_usec();
	pthread_mutex_lock(&eng->net.pol_lock);
	for (struct pol *p = eng->net.pols; p; p = p->next)
		for (int i = p->nlearned - 1; i >= 0; i--)
			if (p->learned[i].expires_usec <= now)
				learned_drop(p, i);
	pthread_mutex_unlock(&eng->net.pol_lock);
}

uint64_t engine_dns_learned(struct engine *eng)
{
	pthread_mutex_lock(&eng->net.pol_lock);
	uint64_t n = eng->net.learned_total;
	pthread_mutex_unlock(&eng->net.pol_lock);
	return n;
}

static void pol_add(struct sbx *s)
{
	struct engine *eng = s->eng;
	struct pol *p = calloc(1, sizeof(*p));
	if (!p)
		return; /* without an entry the sandbox has the daemon's defaults only */
	p->s = s;
	p->eng = s->eng;
	snprintf(p->name, sizeof(p->name), "%s", s->node.name);
	p->host = s->net.host;
	p->ip = s->net.ip;
	pthread_mutex_lock(&eng->net.pol_lock);
	p->next = eng->net.pols;
	eng->net.pols = p;
	/* Rules of others that name this sandbox now have an address. */
	for (struct pol *o = eng->net.pols; o; o = o->next)
		for (int i = 0; i < o->n; i++)
			if (o->rules[i].r.kind == NET_RULE_SANDBOX && !strcmp(o->rules[i].r.sbx, p->name))
				rule_sync(o, &o->rules[i], true, NULL);
	pthread_mutex_unlock(&eng->net.pol_lock);
}

/* pol_lock held: deletes p's exposed ports from the table, keeping (and
 * holding) those whose delete failed, logged the first time; how many are kept. */
static int expose_withdraw(struct pol *p, bool first)
{
	struct engine *eng = p->eng;
	int kept = 0;
	for (int i = 0; i < p->nexpose; i++) {
		struct err xe = {0};
		char text[NET_EXPOSE_TEXT_MAX];
		if (eng->net.expose_up &&
		    net_expose_set(eng->net.expose_table, &p->expose[i], p->ip, false, &xe) < 0) {
			if (first) {
				net_expose_format(&p->expose[i], text);
				log_warn("sandbox %s: '%s' left in nft table %s (its address is kept "
					 "until a retry deletes it): %s", p->name, text,
					 eng->net.expose_table, xe.msg);
			}
			p->expose[kept] = p->expose[i];
			p->hold[kept++] = p->hold[i];
		} else {
			close(p->hold[i]);
		}
	}
	p->nexpose = kept;
	return kept;
}

static void pol_free(struct pol *p)
{
	free(p->rules);
	free(p->learned);
	free(p);
}

/* pol_lock held: the gone entries' deletes tried again; an entry whose
 * ports are all deleted frees its sandbox's address. */
static void expose_retry(struct engine *eng)
{
	for (struct pol **pp = &eng->net.pols, *p; (p = *pp);) {
		if (p->s || expose_withdraw(p, false) > 0) {
			pp = &p->next;
			continue;
		}
		log_info("sandbox %s: its exposed ports are deleted from nft table %s at last; "
			 "address released", p->name, eng->net.expose_table);
		*pp = p->next;
		net_release(&p->gone_id);
		pol_free(p);
	}
}

/* Whether the entry stays, gone, with the identity (its exposed ports left). */
static bool pol_remove(struct sbx *s)
{
	struct engine *eng = s->eng;
	pthread_mutex_lock(&eng->net.pol_lock);
	expose_retry(eng);
	struct pol **pp = &eng->net.pols, *p;
	while ((p = *pp) && p->s != s)
		pp = &p->next;
	bool kept = false;
	if (p) {
		kept = expose_withdraw(p, true) > 0;
		*pp = p->next;
		learned_drop_rule(p, -1);
		for (int i = 0; i < p->n; i++)
			rule_sync(p, &p->rules[i], false, NULL);
		for (struct pol *o = eng->net.pols; o; o = o->next) {
			bool hit = false;
			for (int i = 0; i < o->n; i++)
				if (o->rules[i].r.kind == NET_RULE_SANDBOX &&
				    !strcmp(o->rules[i].r.sbx, p->name) && o->rules[i].installed) {
					rule_sync(o, &o->rules[i], false, NULL);
					hit = true;
				}
			if (hit)
				pol_resync(o);
		}
		if (kept) {
			free(p->rules);
			p->rules = NULL;
			p->n = 0;
			p->s = NULL;
			p->gone_id = s->net;
			p->next = eng->net.pols;
			eng->net.pols = p;
		} else {
			pol_free(p);
		}
	}
	pthread_mutex_unlock(&eng->net.pol_lock);
	return kept;
}

/* Adds r to p, replacing a rule that matches the same packets; applied at once. */
static int pol_apply(struct pol *p, const struct net_rule *r, bool strict, struct err *e)
{
	int at = p->n;
	for (int i = 0; i < p->n; i++)
		if (net_rule_same_match(&p->rules[i].r, r))
			at = i;
	if (r->kind == NET_RULE_SANDBOX && strict && !pol_named(p->eng, r->sbx))
		return err_set(e, -ENOENT, "no sandbox '%s' on the network (rules name sandboxes "
			       "with net=on)", r->sbx);
	if (r->kind == NET_RULE_DOMAIN && strict && !p->eng->net.dns_up)
		return err_set(e, -EOPNOTSUPP, "rule '%s %s': this daemon offers no DNS (start "
			       "it with --dns UPSTREAM), so no name is ever resolved for it",
			       r->allow ? "allow" : "deny", r->domain);
	if (at == p->n) {
		if (p->n >= POL_RULES_MAX)
			return err_set(e, -ENOSPC, "sandbox %s has %d rules already, the most it may "
				       "have", p->name, POL_RULES_MAX);
		struct pol_rule *nr = realloc(p->rules, (size_t)(p->n + 1) * sizeof(*nr));
		if (!nr)
			return err_set(e, -ENOMEM, "out of memory for sandbox %s's rules", p->name);
		p->rules = nr;
		memset(&p->rules[p->n], 0, sizeof(p->rules[0]));
		p->n++;
	} else if (p->rules[at].installed && p->rules[at].r.kind == NET_RULE_SANDBOX) {
		rule_sync(p, &p->rules[at], false, NULL); /* the same name: the same entry */
	} else if (p->rules[at].r.kind == NET_RULE_DOMAIN) {
		learned_drop_rule(p, at); /* learned again, with the new verdict, at the next answer */
	}
	p->rules[at].r = *r;
	int ret = rule_sync(p, &p->rules[at], true, e);
	if (ret < 0) { /* not applied, so not kept */
		memmove(&p->rules[at], &p->rules[at + 1], (size_t)(p->n - at - 1) * sizeof(p->rules[0]));
		p->n--;
		for (int i = 0; i < p->nlearned; i++) /* a CIDR rule failed: no learned one was its */
			p->learned[i].rule -= p->learned[i].rule > at;
		pol_resync(p);
	}
	return ret;
}

/* A ctl command on s's network (rules, exposed ports): s's policy entry
 * with pol_lock taken (the gone entries' deletes tried again first), or
 * NULL with why in e. */
static struct pol *net_cmd_begin(struct sbx *s, const char *what, struct err *e)
{
	if (!s->net_reserved) {
		err_set(e, -EOPNOTSUPP, "sandbox %s has no network (net=off): no %s", s->node.name,
			what);
		return NULL;
	}
	pthread_mutex_lock(&s->eng->net.pol_lock);
	expose_retry(s->eng);
	struct pol *p = pol_of(s);
	if (!p) {
		pthread_mutex_unlock(&s->eng->net.pol_lock);
		err_set(e, -ENOMEM, "sandbox %s has no policy entry (out of memory at create)",
			s->node.name);
	}
	return p;
}

/* Its end: pol_lock released, and a change that worked journaled. */
static int net_cmd_end(struct sbx *s, int r)
{
	pthread_mutex_unlock(&s->eng->net.pol_lock);
	if (r == 0) {
		pthread_mutex_lock(&s->lock);
		journal_write(s);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

int sbx_net_ctl(struct sbx *s, int argc, char **argv, struct err *e)
{
	struct net_rule rule;
	int r = ctl_parse_rule(argc, argv, &rule, e);
	if (r < 0)
		return r;
	uint64_t t0 = now_usec();
	struct pol *p = net_cmd_begin(s, "rules to apply", e);
	if (!p)
		return e->code;
	if ((r = pol_apply(p, &rule, true, e)) == 0)
		p->apply_usec = now_usec() - t0;
	return net_cmd_end(s, r);
}

/* pol_lock held: the nft table, made at the first port exposed (a daemon
 * that exposes none hooks nothing into the host's netfilter). */
static int expose_ensure(struct engine *eng, struct err *e)
{
	if (eng->net.expose_up)
		return 0;
	struct err xe = {0};
	if (net_expose_start(eng->net.expose_table, &xe) < 0)
		return err_set(e, -EOPNOTSUPP, "this daemon cannot expose ports: %s", xe.msg);
	eng->net.expose_up = true;
	log_info("network: nft table %s made for exposed ports", eng->net.expose_table);
	return 0;
}

/* pol_lock held: adds x for p (a port exposed again, same protocol, moves). */
static int expose_add(struct pol *p, const struct net_expose *x, struct err *e)
{
	const char *proto = net_proto_name(x->proto);
	for (struct pol *o = p->eng->net.pols; o; o = o->next)
		for (int i = 0; i < o->nexpose; i++) {
			const struct net_expose *ox = &o->expose[i];
			if (ox->proto == x->proto && ox->host_port == x->host_port &&
			    !(o == p && ox->port == x->port))
				return err_set(e, -EADDRINUSE, "%s host port %u is exposed already "
					       "(by sandbox %s, its port %u)", proto, x->host_port,
					       o->name, ox->port);
		}
	int at = p->nexpose;
	for (int i = 0; i < p->nexpose; i++)
		if (p->expose[i].proto == x->proto && p->expose[i].port == x->port)
			at = i;
	if (at == p->nexpose && p->nexpose >= NET_EXPOSE_MAX)
		return err_set(e, -ENOSPC, "sandbox %s exposes %d ports already, the most it may",
			       p->name, NET_EXPOSE_MAX);
	if (at < p->nexpose && p->expose[at].host_port == x->host_port)
		return 0;
	int hold = net_expose_hold(x, e);
	if (hold < 0)
		return hold;
	int r = net_expose_set(p->eng->net.expose_table, x, p->ip, true, e);
	if (r < 0) {
		close(hold);
		return r;
	}
	if (at < p->nexpose) { /* the same port on another host port: the old one goes */
		net_expose_set(p->eng->net.expose_table, &p->expose[at], p->ip, false, NULL);
		close(p->hold[at]);
	} else {
		p->nexpose++;
	}
	p->expose[at] = *x;
	p->hold[at] = hold;
	return 0;
}

static int expose_del(struct pol *p, const struct net_expose *x, struct err *e)
{
	for (int i = 0; i < p->nexpose; i++)
		if (p->expose[i].proto == x->proto && p->expose[i].port == x->port) {
			int r = net_expose_set(p->eng->net.expose_table, &p->expose[i], p->ip, false, e);
			if (r < 0)
				return r;
			close(p->hold[i]);
			p->nexpose--;
			p->expose[i] = p->expose[p->nexpose];
			p->hold[i] = p->hold[p->nexpose];
			return 0;
		}
	return err_set(e, -ENOENT, "sandbox %s does not expose %s port %u", p->name,
		       net_proto_name(x->proto), x->port);
}

int sbx_net_expose(struct sbx *s, int argc, char **argv, struct err *e)
{
	struct net_expose x;
	int r = ctl_parse_expose(argc, argv, &x, e);
	if (r < 0)
		return r;
	struct pol *p = net_cmd_begin(s, "port to expose", e);
	if (!p)
		return e->code;
	r = !x.host_port ? expose_del(p, &x, e)
	  : expose_ensure(s->eng, e) < 0 ? e->code
	  : expose_add(p, &x, e);
	return net_cmd_end(s, r);
}

void sbx_net_expose_load(struct sbx *s, const struct net_expose *x, size_t n)
{
	if (!s->net_reserved || !n)
		return;
	pthread_mutex_lock(&s->eng->net.pol_lock);
	struct pol *p = pol_of(s);
	for (size_t i = 0; p && i < n; i++) {
		struct err e = {0};
		if (expose_ensure(s->eng, &e) < 0 || expose_add(p, &x[i], &e) < 0) {
			char text[NET_EXPOSE_TEXT_MAX];
			net_expose_format(&x[i], text);
			log_warn("sandbox %s: journaled '%s' dropped: %s", s->node.name, text, e.msg);
		}
	}
	pthread_mutex_unlock(&s->eng->net.pol_lock);
}

/* The journal's rules (ctl's lines, parsed by journal_parse), re-applied
 * after a restart; and a filter left by the previous daemon (its program held that
 * daemon's maps) is replaced by one on ours. */
void sbx_net_policy_load(struct sbx *s, const struct net_rule *rules, size_t n)
{
	if (!s->net_reserved)
		return;
	pthread_mutex_lock(&s->eng->net.pol_lock);
	struct pol *p = pol_of(s);
	for (size_t i = 0; p && i < n; i++) {
		struct err e = {0};
		if (pol_apply(p, &rules[i], false, &e) < 0) {
			char text[NET_RULE_TEXT_MAX];
			net_rule_format(&rules[i], text);
			log_warn("sandbox %s: journaled rule '%s' dropped: %s", s->node.name, text,
				 e.msg);
		}
	}
	pthread_mutex_unlock(&s->eng->net.pol_lock);
	struct err e = {0};
	int r = net_policy_reattach(&s->net, &e);
	if (r < 0 && r != -ENODEV)
		log_warn("sandbox %s: its filter cannot be replaced: %s", s->node.name, e.msg);
}

/* A fork's child starts with its parent's rules (not its exposed ports: a
 * host port is one sandbox's). Before the child's first journal. */
void sbx_net_inherit(struct sbx *child, struct sbx *parent)
{
	if (!child->net_reserved)
		return;
	pthread_mutex_lock(&child->eng->net.pol_lock);
	struct pol *pp = pol_of(parent), *cp = pol_of(child);
	for (int i = 0; pp && cp && i < pp->n; i++) {
		struct err e = {0};
		char text[NET_RULE_TEXT_MAX];
		if (pol_apply(cp, &pp->rules[i].r, false, &e) < 0) {
			net_rule_format(&pp->rules[i].r, text);
			log_warn("sandbox %s: rule '%s' of its parent %s not taken: %s",
				 child->node.name, text, parent->node.name, e.msg);
		}
	}
	pthread_mutex_unlock(&child->eng->net.pol_lock);
}

/* A warm pool's member claimed under a new name: rules of others that name
 * it (allow sandbox NAME) now reach its address. A member has no rules. */
void sbx_net_rename(struct sbx *s)
{
	if (!s->net_reserved)
		return;
	pol_remove(s);
	snprintf(s->net.sbx, sizeof(s->net.sbx), "%s", s->node.name);
	pol_add(s);
}

int sbx_net_reserve(struct sbx *s, const char *exact_ip, struct err *e)
{
	if (!s->cfg.net)
		return 0;
	if (!s->eng->net.up)
		return err_set(e, -EOPNOTSUPP, "net=on, but this daemon runs without networking "
			       "(--no-net)");
	int r = exact_ip ? net_reserve_exact(s->node.name, exact_ip, &s->net, e)
			 : net_reserve(s->node.name, &s->net, e);
	if (r == 0) {
		s->net_reserved = true;
		pol_add(s);
	}
	return r;
}

/* The host end of the veth (or a VM's TAP), then the identity: off the
 * rmdir's path. Its address (and device name) is given out again only once
 * the device is gone; a daemon that dies first leaks nothing (the kernel
 * removes the pair with the sandbox's netns, a TAP with QEMU's last fd, and
 * the allocation lives in memory only). */
static void release_job(void *arg)
{
	struct net_ident *id = arg;
	net_veth_teardown(id, NULL); /* gone with its netns already, most of the time */
	net_release(id);
	free(id);
}

void sbx_net_release(struct sbx *s)
{
	if (!s->net_reserved)
		return;
	bool kept = pol_remove(s);
	s->net_reserved = false;
	if (kept) { /* the address stays taken; the device goes */
		net_veth_teardown(&s->net, NULL);
		return;
	}
	struct net_ident *id = malloc(sizeof(*id));
	if (id)
		*id = s->net;
	if (!id || pool_submit(s->eng, release_job, id) < 0) {
		net_veth_teardown(&s->net, NULL);
		net_release(&s->net);
		free(id);
	}
}

int engine_tap_ahead(void *arg, struct err *e)
{
	struct engine *eng = arg;
	if (!eng->net.up)
		return err_set(e, -EOPNOTSUPP, "this daemon runs without networking (--no-net)");
	return net_tap_ahead(e);
}

int engine_veth_ahead(void *arg, int netns_fd, struct err *e)
{
	struct engine *eng = arg;
	if (!eng->net.up)
		return err_set(e, -EOPNOTSUPP, "this daemon runs without networking (--no-net)");
	/* The daemon's interface prefix with a dot for its dash: never a
	 * sandbox's host end (net_alloc_set_ifprefix), and swept by no one: it
	 * goes with the namespace, so with the daemon's fd on it. */
	char prefix[IFNAMSIZ];
	snprintf(prefix, sizeof(prefix), "sbx%.4s.", vmm_host()->tag);
	return net_veth_ahead(prefix, netns_fd, e);
}

/* A VM's TAP, for the backend to hand to QEMU with the guest's identity:
 * made now, or, when the backend put one in vm->nic.tap_fd (a QEMU started
 * ahead holds it, made by engine_tap_ahead), that one made the sandbox's. */
static int tap_prestart(struct sbx *s, struct vmm_inst *vm, struct err *e)
{
	int fd = vm->nic.tap_fd;
	if (fd >= 0) {
		int r = net_tap_adopt(&s->net, s->eng->o.bridge, fd, e);
		if (r < 0)
			return r;
	} else if ((fd = net_tap_setup(&s->net, s->eng->o.bridge, e)) < 0) {
		return fd;
	}
	vm->nic.tap_fd = fd;
	memcpy(vm->nic.mac, s->net.mac, sizeof(vm->nic.mac));
	vm->nic.ip = s->net.ip;
	vm->nic.gateway = s->net.gateway;
	vm->nic.prefix_len = s->net.prefix_len;
	return 0;
}

/* Runs between clone and go (the sandbox's netns exists, its init waits),
 * or for a TAP backend before it spawns anything. */
static int net_prestart(struct vmm_inst *vm, pid_t pid, void *arg, struct err *e)
{
	struct sbx *s = arg;
	uint64_t t0 = now_usec();
	vm->nic.dns.s_addr = s->eng->net.dns_up ? s->net.gateway.s_addr : 0;
	if (s->t.starts > 0) /* a restart: the last run's host end may outlive its netns briefly */
		net_veth_teardown(&s->net, NULL);
	const char *br = s->eng->o.bridge;
	int r = (s->ops->caps & VMM_CAP_NET_TAP) ? tap_prestart(s, vm, e)
	      : vm->nic.netns_veth ? net_veth_adopt(&s->net, br, vm->nic.netns_sock, e)
	      : net_veth_setup(&s->net, br, vm->nic.netns_fd, e);
	s->t.create_net_usec = now_usec() - t0;
	return r;
}

void sbx_net_prepare(struct sbx *s)
{
	s->vm.prestart = s->net_reserved ? net_prestart : NULL;
	s->vm.prestart_arg = s;
	s->rate_state = s->cfg.rate_bps ? "pending" : "-";
}

static void shape_job(void *arg)
{
	struct sbx *s = arg;
	struct err e = {0};
	pthread_mutex_lock(&s->lock);
	pid_t pid = s->vm.pid;
	bool running = atomic_load(&s->state) == SBX_RUNNING;
	pthread_mutex_unlock(&s->lock);
	uint64_t t0 = now_usec();
	int r = running ? net_shape_apply(&s->net, s->cfg.rate_bps, &e) : -ESRCH;
	/* A VM's other end is in the guest, which is not ours to limit: what it
	 * sends is shaped on the host, past its TAP's ingress. */
	if (r == 0)
		r = s->ops->caps & VMM_CAP_NET_TAP
			    ? net_shape_apply_ingress(&s->net, s->cfg.rate_bps, &e)
			    : net_shape_apply_peer(&s->net, pid, s->cfg.rate_bps, &e);
	pthread_mutex_lock(&s->lock);
	s->t.net_shaping_usec = now_usec() - t0;
	if (r < 0 && running) {
		s->rate_state = "failed";
		sbx_fail(s, r, e.msg[0] ? e.msg : "traffic shaping failed");
	} else if (r == 0) {
		s->rate_state = "applied";
	}
	pthread_mutex_unlock(&s->lock);
	sbx_put(s);
}

/* After the sandbox runs: shaping is off the create path. */
void sbx_net_after_start(struct sbx *s)
{
	if (!s->net_reserved || !s->cfg.rate_bps)
		return;
	reg_tryget(&s->node);
	if (pool_submit(s->eng, shape_job, s) < 0)
		sbx_put(s);
}

/* The rules in ctl's syntax, the default for the outside first. */
static int show_policy(struct sbx *s, struct buf *b)
{
	pthread_mutex_lock(&s->eng->net.pol_lock);
	struct pol *p = pol_of(s);
	bool allow = !s->eng->o.egress_deny;
	for (int i = 0; p && i < p->n; i++)
		if (p->rules[i].r.kind == NET_RULE_ALL)
			allow = p->rules[i].r.allow;
	int r = buf_printf(b, "%s all\n", allow ? "allow" : "deny");
	char text[NET_RULE_TEXT_MAX];
	for (int i = 0; p && r == 0 && i < p->n; i++) {
		if (p->rules[i].r.kind == NET_RULE_ALL)
			continue;
		net_rule_format(&p->rules[i].r, text);
		r = buf_printf(b, "%s\n", text);
	}
	char xtext[NET_EXPOSE_TEXT_MAX];
	for (int i = 0; p && r == 0 && i < p->nexpose; i++) {
		net_expose_format(&p->expose[i], xtext);
		r = buf_printf(b, "%s\n", xtext);
	}
	uint64_t now = now_usec();
	for (int i = 0; p && r == 0 && i < p->nlearned; i++) {
		const struct pol_learned *l = &p->learned[i];
		struct net_rule lr = learned_rule(l);
		net_rule_format(&lr, text);
		r = buf_printf(b, "learned %s for %s ttl %" PRIu64 "\n", text,
			       p->rules[l->rule].r.domain,
			       l->expires_usec > now ? (l->expires_usec - now + 999999) / 1000000 : 0);
	}
	if (r == 0 && p && p->apply_usec)
		r = buf_printf(b, "policy_apply_usec %" PRIu64 "\n", p->apply_usec);
	pthread_mutex_unlock(&s->eng->net.pol_lock);
	return r;
}

int sbx_show_net(struct sbx *s, struct buf *b)
{
	pthread_mutex_lock(&s->lock);
	int r;
	if (!s->net_reserved) {
		r = buf_printf(b, "net off\n");
	} else {
		r = net_ident_format(&s->net, b);
		if (r == 0 && s->cfg.rate_bps)
			r = buf_printf(b, "rate %" PRIu64 "\nrate_state %s\n", s->cfg.rate_bps,
				       s->rate_state);
		else if (r == 0)
			r = buf_printf(b, "rate -\n");
		if (r == 0)
			r = show_policy(s, b);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

json_t *sbx_net_journal(struct sbx *s)
{
	if (!s->net_reserved)
		return json_null();
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &s->net.ip, ip, sizeof(ip));
	json_t *rules = json_array();
	char text[NET_RULE_TEXT_MAX];
	pthread_mutex_lock(&s->eng->net.pol_lock);
	struct pol *p = pol_of(s);
	for (int i = 0; p && rules && i < p->n; i++) {
		net_rule_format(&p->rules[i].r, text);
		json_array_append_new(rules, json_string(text));
	}
	json_t *exp = journal_expose_json(p ? p->expose : NULL, p ? (size_t)p->nexpose : 0);
	pthread_mutex_unlock(&s->eng->net.pol_lock);
	return json_pack("{s:s, s:o, s:o}", "ip", ip, "policy", rules ? rules : json_array(),
			 "expose", exp ? exp : json_array());
}
