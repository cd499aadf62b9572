/* Network policy: the maps the filter of spoof.c consults for every IPv4
 * packet a sandbox sends, and the text form of rules.
 *
 * One rule map for the daemon (an LPM trie), keyed by the sandbox's host
 * number, then protocol and port, then the destination's prefix, so that a
 * packet's verdict is at most three longest-prefix lookups whatever the
 * number of rules: (proto, port, dst), then (proto, any port, dst), then
 * (any, dst). The most specific rule wins: a port beats a protocol alone,
 * which beats neither; among equals the longer prefix. With no rule the
 * destination decides: internal (the subnet: other sandboxes, the gateway;
 * the host's own addresses; loopback, multicast, broadcast) is dropped,
 * except an ICMP echo to the gateway; anything else (the outside, which
 * only --nat makes reachable) gets the sandbox's default, the entry with
 * protocol 0xff (`allow all` / `deny all`), or the daemon's --egress.
 * A packet a rule or the default drops still passes when it answers one
 * that reached the sandbox: the filter on the way in records each packet's
 * reverse in an LRU table (the replies table), so a sandbox that B may
 * reach answers B, and the host still reaches every sandbox. */
#define _GNU_SOURCE
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Must match the stack layout the program of spoof.c builds. */
struct rule_key {
	uint32_t plen; /* 64 + the rule's prefix; lookups use 96 */
	uint32_t host;
	uint8_t proto; /* 0 any; 0xff: the sandbox's default */
	uint8_t pad;
	uint16_t port; /* network order; 0 any */
	uint32_t ip;   /* network order */
};
struct internal_key {
	uint32_t plen;
	uint32_t ip;
};

#define RULES_MAX 65536
#define INTERNAL_MAX 4096
#define FLOWS_MAX 65536

static struct net_policy_maps maps = { -1, -1, -1, true, false };

void net_policy_allow_dns(bool on)
{
	maps.dns = on;
	nl_spoof_forget(); /* the programs are built again, with or without it */
}

const struct net_policy_maps *net_policy_maps(void) { return &maps; }
bool net_policy_enabled(void) { return maps.rules >= 0; }

int nl_bpf_map_create(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags,
		      const char *name)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key;
	a.value_size = value;
	a.max_entries = max;
	a.map_flags = flags;
	snprintf(a.map_name, sizeof(a.map_name), "%s", name);
	int fd = (int)syscall(__NR_bpf, BPF_MAP_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

int nl_bpf_map_op(int cmd, int fd, const void *key, const void *value)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.map_fd = (uint32_t)fd;
	a.key = (uint64_t)(uintptr_t)key;
	a.value = (uint64_t)(uintptr_t)value;
	a.flags = BPF_ANY;
	return syscall(__NR_bpf, cmd, &a, sizeof(a)) < 0 ? -errno : 0;
}

static int internal_add(struct in_addr ip, uint8_t plen)
{
	struct internal_key k = { plen, ip.s_addr };
	uint32_t one = 1;
	return nl_bpf_map_op(BPF_MAP_UPDATE_ELEM, maps.internal, &k, &one);
}

int net_policy_refresh_local(struct err *e)
{
	if (maps.internal < 0)
		return 0;
	struct ifaddrs *ifa0;
	if (getifaddrs(&ifa0) < 0)
		return err_set(e, -errno, "cannot list the host's addresses: %s", strerror(errno));
	int r = 0;
	for (struct ifaddrs *i = ifa0; i && r == 0; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			r = internal_add(((struct sockaddr_in *)i->ifa_addr)->sin_addr, 32);
	freeifaddrs(ifa0);
	if (r < 0)
		return err_set(e, r, "cannot note the host's addresses for the network policy: %s",
			       strerror(-r));
	return 0;
}

void net_policy_fini(void)
{
	nl_spoof_forget(); /* the filter's programs hold these maps */
	int *fds[] = { &maps.rules, &maps.internal, &maps.flows };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

int net_policy_init(const char *subnet, bool egress_allow, struct err *e)
{
	net_policy_fini();
	maps.egress_allow = egress_allow;
	char net[INET_ADDRSTRLEN + 4];
	snprintf(net, sizeof(net), "%s", subnet ? subnet : NET_DEFAULT_SUBNET);
	char *slash = strchr(net, '/');
	struct in_addr sub;
	unsigned long plen = slash ? strtoul(slash + 1, NULL, 10) : 32;
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, net, &sub) != 1 || plen > 32)
		return err_set(e, -EINVAL, "subnet %s is not a CIDR", subnet);
	int r = nl_bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, sizeof(struct rule_key), 4, RULES_MAX,
			   BPF_F_NO_PREALLOC, "sbx_rules");
	if (r >= 0) {
		maps.rules = r;
		r = nl_bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, sizeof(struct internal_key), 4, INTERNAL_MAX,
			       BPF_F_NO_PREALLOC, "sbx_internal");
	}
	if (r >= 0) {
		maps.internal = r;
		r = nl_bpf_map_create(BPF_MAP_TYPE_LRU_HASH, 16, 4, FLOWS_MAX, 0, "sbx_flows");
	}
	if (r < 0) {
		net_policy_fini();
		return err_set(e, r, "cannot create the network policy's eBPF maps: %s",
			       strerror(-r));
	}
	maps.flows = r;
	static const struct { const char *ip; uint8_t plen; } fixed[] = {
		{ "0.0.0.0", 8 }, { "127.0.0.0", 8 }, { "169.254.0.0", 16 }, { "224.0.0.0", 4 },
		{ "255.255.255.255", 32 },
	};
	struct in_addr a;
	for (size_t i = 0; i < ARRAY_SIZE(fixed) && r >= 0; i++) {
		inet_pton(AF_INET, fixed[i].ip, &a);
		r = internal_add(a, fixed[i].plen);
	}
	if (r >= 0)
		r = internal_add(sub, (uint8_t)plen);
	if (r < 0) {
		net_policy_fini();
		return err_set(e, r, "cannot fill the network policy's eBPF maps: %s", strerror(-r));
	}
	if ((r = net_policy_refresh_local(e)) < 0) {
		net_policy_fini();
		return r;
	}
	return 0;
}

bool net_policy_internal(struct in_addr ip)
{
	struct internal_key k = { 32, ip.s_addr };
	uint32_t v = 0;
	return maps.internal >= 0 && nl_bpf_map_op(BPF_MAP_LOOKUP_ELEM, maps.internal, &k, &v) == 0;
}

int net_policy_put(uint32_t host, const struct net_rule *r, struct in_addr dst, bool add,
		   struct err *e)
{
	if (maps.rules < 0)
		return 0;
	struct rule_key k;
	memset(&k, 0, sizeof(k));
	k.host = host;
	if (r->kind == NET_RULE_ALL) {
		k.plen = 96;
		k.proto = 0xff;
	} else {
		k.proto = r->proto;
		k.port = htons(r->port);
		k.ip = r->kind == NET_RULE_SANDBOX ? dst.s_addr : r->addr.s_addr;
		k.plen = 64u + (r->kind == NET_RULE_SANDBOX ? 32u : r->plen);
	}
	uint32_t v = r->allow;
	int ret = add ? nl_bpf_map_op(BPF_MAP_UPDATE_ELEM, maps.rules, &k, &v)
		      : nl_bpf_map_op(BPF_MAP_DELETE_ELEM, maps.rules, &k, NULL);
	if (ret == -ENOENT && !add)
		ret = 0;
	if (ret < 0) {
		char text[NET_RULE_TEXT_MAX];
		net_rule_format(r, text);
		return err_set(e, ret, "cannot %s the rule '%s': %s", add ? "apply" : "remove", text,
			       ret == -E2BIG || ret == -ENOSPC ? "the daemon's rule map is full"
							       : strerror(-ret));
	}
	return 0;
}

const char *net_proto_name(uint8_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : proto == IPPROTO_UDP ? "udp"
	     : proto == IPPROTO_ICMP ? "icmp" : NULL;
}

void net_rule_format(const struct net_rule *r, char *out)
{
	const char *verb = r->allow ? "allow" : "deny";
	if (r->kind == NET_RULE_ALL) {
		snprintf(out, NET_RULE_TEXT_MAX, "%s all", verb);
		return;
	}
	if (r->kind == NET_RULE_SANDBOX) {
		snprintf(out, NET_RULE_TEXT_MAX, "%s sandbox %s", verb, r->sbx);
		return;
	}
	int n;
	if (r->kind == NET_RULE_DOMAIN) {
		n = snprintf(out, NET_RULE_TEXT_MAX, "%s %s", verb, r->domain);
	} else {
		char ip[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &r->addr, ip, sizeof(ip));
		n = snprintf(out, NET_RULE_TEXT_MAX, "%s %s/%u", verb, ip, r->plen);
	}
	const char *proto = net_proto_name(r->proto);
	if (proto)
		n += snprintf(out + n, (size_t)(NET_RULE_TEXT_MAX - n), " %s", proto);
	if (r->port)
		snprintf(out + n, (size_t)(NET_RULE_TEXT_MAX - n), " %u", r->port);
}

bool net_rule_same_match(const struct net_rule *a, const struct net_rule *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == NET_RULE_ALL)
		return true;
	if (a->kind == NET_RULE_SANDBOX)
		return strcmp(a->sbx, b->sbx) == 0;
	if (a->kind == NET_RULE_DOMAIN && strcmp(a->domain, b->domain))
		return false;
	return a->addr.s_addr == b->addr.s_addr && a->plen == b->plen && a->proto == b->proto &&
	       a->port == b->port;
}
