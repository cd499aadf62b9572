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
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
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

/* ---- the host's own addresses, kept in the internal map as they change ----
 * Each is a /32 entry. A thread on an rtnetlink socket that hears every
 * change of the host's IPv4 addresses (RTMGRP_IPV4_IFADDR) reads them all
 * again: an address added after the daemon started is closed to sandboxes
 * within that thread's wake-up, and one the host dropped is the outside
 * again. What the messages say is not parsed: any of them means "look". */
#define LOCAL_MAX 1024 /* host addresses kept; past it the rest are logged */

static struct {
	pthread_mutex_t lock;        /* the list; refreshes run one at a time */
	in_addr_t ips[LOCAL_MAX];    /* the /32 entries this daemon made for them */
	size_t n;
	int nl, stop_fd;
	pthread_t thread;
	bool running;
} local = { .lock = PTHREAD_MUTEX_INITIALIZER, .nl = -1, .stop_fd = -1 };

static bool ip_in(const in_addr_t *ips, size_t n, in_addr_t ip)
{
	for (size_t i = 0; i < n; i++)
		if (ips[i] == ip)
			return true;
	return false;
}

/* With local.lock held: the host's IPv4 addresses now, each once, into ips. */
static int local_list(in_addr_t ips[LOCAL_MAX], size_t *n, struct err *e)
{
	struct ifaddrs *ifa0;
	*n = 0;
	if (getifaddrs(&ifa0) < 0)
		return err_set(e, -errno, "cannot list the host's addresses: %s", strerror(errno));
	size_t skipped = 0;
	for (struct ifaddrs *i = ifa0; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		in_addr_t ip = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
		if (ip_in(ips, *n, ip))
			continue;
		if (*n < LOCAL_MAX)
			ips[(*n)++] = ip;
		else
			skipped++;
	}
	freeifaddrs(ifa0);
	if (skipped)
		log_warn("network policy: the host has more than %d IPv4 addresses; %zu of them "
			 "are not closed to sandboxes", LOCAL_MAX, skipped);
	return 0;
}

int net_policy_refresh_local(struct err *e)
{
	if (maps.internal < 0)
		return 0;
	static in_addr_t now[LOCAL_MAX]; /* under local.lock */
	size_t n;
	pthread_mutex_lock(&local.lock);
	int r = local_list(now, &n, e);
	if (r < 0) { /* nothing known: nothing removed */
		pthread_mutex_unlock(&local.lock);
		return r;
	}
	/* Gone from the host: the outside again (broadcast's /32 is fixed). An
	 * entry that cannot be deleted now stays listed: the next look retries. */
	size_t kept = 0;
	for (size_t i = 0; i < local.n; i++) {
		in_addr_t ip = local.ips[i];
		struct internal_key k = { 32, ip };
		int d = ip_in(now, n, ip) || ip == INADDR_BROADCAST
				? 1 : nl_bpf_map_op(BPF_MAP_DELETE_ELEM, maps.internal, &k, NULL);
		if (d == 1 || (d < 0 && d != -ENOENT))
			local.ips[kept++] = ip;
	}
	local.n = kept;
	/* Each one added is listed, even when a later one fails. */
	for (size_t i = 0; i < n; i++) {
		int a = internal_add((struct in_addr){ now[i] }, 32);
		if (a < 0 && r == 0)
			r = err_set(e, a, "cannot note the host's addresses for the network "
				    "policy: %s", strerror(-a));
		else if (a == 0 && !ip_in(local.ips, local.n, now[i]) && local.n < LOCAL_MAX)
			local.ips[local.n++] = now[i];
	}
	pthread_mutex_unlock(&local.lock);
	return r;
}

static void *local_watch(void *arg)
{
	(void)arg;
	struct pollfd p[2] = { { .fd = local.nl, .events = POLLIN },
			       { .fd = local.stop_fd, .events = POLLIN } };
	char buf[8192];
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("network policy: the address watch ends: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		bool heard = false;
		for (;;) { /* what is queued; ENOBUFS: some were lost, a look covers them */
			ssize_t got = recv(local.nl, buf, sizeof(buf), MSG_DONTWAIT);
			if (got > 0 || (got < 0 && errno == ENOBUFS))
				heard = true;
			else if (got < 0 && errno == EINTR)
				continue;
			else
				break;
		}
		struct err e = {0};
		if (heard && net_policy_refresh_local(&e) < 0)
			log_warn("network policy: the host's addresses changed: %s", e.msg);
	}
	return NULL;
}

/* Started before the first look: a change while that look runs wakes the
 * thread, which looks again (the looks take turns under local.lock). */
static int local_watch_start(struct err *e)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_IPV4_IFADDR };
	int r = 0;
	local.nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	if (local.nl < 0 || bind(local.nl, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (local.stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		r = err_set(e, -errno, "cannot watch the host's addresses (rtnetlink): %s",
			    strerror(errno));
	else if ((r = -pthread_create(&local.thread, NULL, local_watch, NULL)) < 0)
		err_set(e, r, "cannot start the thread that watches the host's addresses: %s",
			strerror(-r));
	else
		local.running = true;
	return r;
}

static void local_watch_stop(void)
{
	if (local.running) {
		uint64_t one = 1;
		if (write(local.stop_fd, &one, sizeof(one)) < 0)
			log_warn("network policy: cannot wake the address watch to stop it: %s",
				 strerror(errno));
		pthread_join(local.thread, NULL);
		local.running = false;
	}
	int *fds[] = { &local.nl, &local.stop_fd };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	local.n = 0;
}

void net_policy_fini(void)
{
	local_watch_stop();
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
	if ((r = local_watch_start(e)) < 0 || (r = net_policy_refresh_local(e)) < 0) {
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
