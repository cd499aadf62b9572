/* Network setup for sandboxes: identity allocation (IP, MAC, device names),
 * the bridge and per-sandbox veth pairs over rtnetlink, anti-spoofing on the
 * bridge ports, traffic shaping and optional egress NAT. Knows nothing of
 * FUSE or of the sandbox object; every fallible call returns 0 or -errno and
 * fills a `struct err` with a sentence. */
#ifndef SBX_NET_H
#define SBX_NET_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../engine/common.h"

/* Brings `lo` up in the calling process's network namespace. */
int net_lo_up(void);
/* Configures interface name in the calling process's network namespace with
 * ioctls only (the guest agent links this, without libmnl): when mac is not
 * NULL the link goes down and takes that MAC (down drops its routes and
 * neighbours), then address ip/prefix_len, up, and the default route via
 * gw. For a VM's eth0, at boot and when a clone takes its own identity. */
int net_if_configure(const char *name, const uint8_t *mac, struct in_addr ip, uint8_t prefix_len,
		     struct in_addr gw);

/* ---- identity allocation (alloc.c) ---- */

#define NET_DEFAULT_SUBNET "10.88.0.0/16"
#define NET_DEFAULT_BRIDGE "sbx0"
#define NET_DEFAULT_IFPREFIX "sbx-"
#define NET_PEER_IFNAME "eth0"

/* Everything that names one sandbox on the network. Derived from the IP alone
 * (plus the allocator's subnet and interface prefix), so journaling the IP is
 * enough to rebuild it with net_reserve_exact after a restart. */
struct net_ident {
	char sbx[SBX_NAME_MAX + 1]; /* owner, for log lines */
	struct in_addr ip;          /* network byte order */
	struct in_addr gateway;     /* the bridge's address: first host of the subnet */
	uint8_t prefix_len;
	uint8_t mac[6];             /* 02:5b:<ip>: locally administered unicast */
	char host_if[IFNAMSIZ];     /* host end of the veth, on the bridge: prefix + hex host number */
	char peer_if[IFNAMSIZ];     /* the peer's name inside the sandbox: eth0 */
	uint32_t host;              /* host number inside the subnet (ip - network) */
};

/* Sets the subnet (CIDR, prefix 8..30) and resets every reservation. Call at
 * start-up before any reservation; NULL means NET_DEFAULT_SUBNET. */
int net_alloc_init(const char *cidr, struct err *e);
/* Frees the allocator (tests, shutdown). */
void net_alloc_fini(void);
/* Host interface names are PREFIX + hex host number; PREFIX starts with "sbx"
 * and must leave room for the largest host number in IFNAMSIZ - 1 characters.
 * Default NET_DEFAULT_IFPREFIX. Call after net_alloc_init, before reserving. */
int net_alloc_set_ifprefix(const char *prefix, struct err *e);
/* The subnet's gateway (the bridge's address) and prefix length. */
void net_alloc_gateway(struct in_addr *gw, uint8_t *prefix_len);
/* Addresses still free. */
uint32_t net_alloc_free_count(void);

/* Reserves the next free address for sandbox sbx_name: -ENOSPC when the
 * subnet is full. Holds the allocator mutex only to flip one bit. */
int net_reserve(const char *sbx_name, struct net_ident *out, struct err *e);
/* Re-takes a journaled address (dotted quad): -EEXIST when already taken,
 * -EINVAL when it is not a sandbox address of this subnet. */
int net_reserve_exact(const char *sbx_name, const char *ip, struct net_ident *out, struct err *e);
/* Gives the address back; unknown or already free addresses are ignored. */
void net_release(const struct net_ident *id);

/* "aa:bb:cc:dd:ee:ff" into out[18]. */
void net_mac_str(const uint8_t mac[6], char out[18]);
/* Appends the `net` file's lines: ip A/P, gateway G, mac M, host_if H. */
int net_ident_format(const struct net_ident *id, struct buf *b);

/* ---- devices over rtnetlink (rtnl.c, spoof.c) ---- */

/* Creates bridge br if missing (with a fixed MAC so it never changes as ports
 * come and go), adds gw/prefix_len to it and sets it up; reuses an existing
 * bridge. -EEXIST when br exists and is not a bridge. */
int net_bridge_ensure(const char *br, struct in_addr gw, uint8_t prefix_len, struct err *e);
/* Deletes the bridge (its ports are released, not deleted). Absent is fine. */
int net_bridge_remove(const char *br, struct err *e);

/* Creates the veth pair of id: the host end id->host_if on bridge, with the
 * anti-spoofing filter on its ingress, a static forwarding entry for id->mac,
 * learning and unknown-unicast flooding off, then up; the peer created
 * directly in the network namespace netns_fd (the caller's still) as eth0
 * with id->mac, then addressed, up, with a default route via the gateway
 * (from a short-lived thread that enters that namespace). On failure
 * nothing is left behind. -EEXIST when id->host_if or the sandbox's eth0
 * exists (never deleted here), -ENODEV when bridge is missing. Never takes
 * the allocator mutex; the kernel serialises device changes on its rtnl lock. */
int net_veth_setup(const struct net_ident *id, const char *bridge, int netns_fd, struct err *e);
/* A veth pair made before its sandbox is known (vmm/netns.c's spares): eth0
 * in the network namespace netns_fd, which holds it (the pair goes with the
 * namespace, so with the daemon's fd on it), and a host end named prefix
 * and a number, down, on no bridge, with the anti-spoofing filter attached
 * and no identity, so nothing it could send goes anywhere. 0 or -errno. */
int net_veth_ahead(const char *prefix, int netns_fd, struct err *e);
/* The pair made ahead in a namespace becomes id's, through netns_sock, a
 * NETLINK_ROUTE socket opened there (unbound; the caller's still): eth0
 * takes id->mac, its address, up and the default route; the host end is
 * renamed id->host_if, put on bridge, given id's identity in the filter, a
 * forwarding entry and flags, then up (what net_veth_setup does, less the
 * making). On failure the host end is deleted if it was renamed; else it
 * goes with the namespace. */
int net_veth_adopt(const struct net_ident *id, const char *bridge, int netns_sock, struct err *e);
/* Deletes the host end, of a veth (the peer goes with it) or of a TAP.
 * Already gone is fine. */
int net_veth_teardown(const struct net_ident *id, struct err *e);

/* Makes the TAP device id->host_if for a VM (IFF_TAP, IFF_NO_PI,
 * IFF_VNET_HDR) and wires it as net_veth_setup wires a veth's host end: on
 * bridge, anti-spoofing filter, static forwarding entry, learning and
 * flooding off, up. Returns the TAP's fd for QEMU (-netdev tap,fd=N). The
 * device is not persistent: it goes when the last fd on it closes, so with
 * QEMU, also when the daemon dies. On failure nothing is left behind.
 * -ENODEV when /dev/net/tun or the bridge is missing, -EEXIST when
 * id->host_if exists (never deleted here). */
int net_tap_setup(const struct net_ident *id, const char *bridge, struct err *e);
/* A VM's TAP made before its sandbox is known (a QEMU started ahead for a
 * fork's child, vmm/qemu.c's spares): NET_TAP_AHEAD_NAME followed by a
 * number the kernel picks (never a sandbox's name: an interface prefix
 * holds no '.'), on no bridge, down, with no identity, so nothing it could
 * send goes anywhere. Not persistent. Returns its fd, or -errno. */
#define NET_TAP_AHEAD_NAME "sbx.spare"
int net_tap_ahead(struct err *e);
/* The TAP of tap_fd, made by net_tap_ahead, becomes id's: renamed to
 * id->host_if, then wired as net_tap_setup wires a new one (bridge,
 * filter, forwarding entry, flags, up). On failure it may be left renamed
 * and off the bridge: the caller ends it (closes every fd on it).
 * -EEXIST when id->host_if exists. */
int net_tap_adopt(const struct net_ident *id, const char *bridge, int tap_fd, struct err *e);

/* Attaches the anti-spoofing filter (an eBPF program with cls_bpf on a clsact
 * qdisc) to the ingress of host device ifindex: frames whose source MAC is
 * not id->mac, IPv4 packets whose source is not id->ip, ARP whose sender is
 * not (id->mac, id->ip), VLAN-tagged frames and every other ethertype (IPv6
 * included) are dropped. net_veth_setup calls it; a TAP backend can too. */
int net_spoof_attach(int ifindex, const struct net_ident *id, struct err *e);
/* The ingress filter's verdict for a frame it lets through: TC_ACT_UNSPEC, so
 * the port's next filter (a VM's rate= redirect, shape.c) sees it; with none
 * the frame goes on. What it drops is TC_ACT_SHOT. */
#define NET_FILTER_PASS (-1)

/* ---- network policy (policy.c, enforced by the filter of spoof.c) ---- */

/* One rule, as written to a sandbox's ctl and shown in its `net` file:
 *   allow|deny CIDR [tcp|udp [PORT] | icmp]
 *   allow|deny DOMAIN [tcp|udp [PORT] | icmp]   (name or *.suffix)
 *   allow|deny sandbox NAME
 *   allow|deny all          (the sandbox's default for the outside)
 * A CIDR without /N is a /32; its host bits must be zero. A DOMAIN rule has
 * no map entry of its own: the addresses the daemon's DNS forwarder relays
 * for a matching name get /32 entries with its verdict, protocol and port,
 * for the answer's TTL (dns.c, engine/netcfg.c). */
enum net_rule_kind { NET_RULE_CIDR, NET_RULE_SANDBOX, NET_RULE_ALL, NET_RULE_DOMAIN };
struct net_rule {
	bool allow;
	uint8_t kind;             /* enum net_rule_kind */
	uint8_t proto;            /* 0 any, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP */
	uint8_t plen;             /* NET_RULE_CIDR: prefix length */
	uint16_t port;            /* host order; 0: any */
	struct in_addr addr;      /* NET_RULE_CIDR: the network (host bits zero) */
	char sbx[SBX_NAME_MAX + 1]; /* NET_RULE_SANDBOX */
	char domain[254];         /* NET_RULE_DOMAIN: lower case, "*." for subdomains */
};
#define NET_RULE_TEXT_MAX (254 + 48)
/* "tcp", "udp" or "icmp" for IPPROTO_*, NULL for another (0: any). */
const char *net_proto_name(uint8_t proto);
/* The rule's line, in the syntax ctl takes, into out[NET_RULE_TEXT_MAX]. */
void net_rule_format(const struct net_rule *r, char *out);
/* True when a and b match the same packets (then the later one replaces the
 * earlier one, whatever their verdicts). */
bool net_rule_same_match(const struct net_rule *a, const struct net_rule *b);

/* Creates the daemon's policy maps (one rule map for every sandbox, keyed by
 * host number; the addresses that count as internal; the replies table) and
 * fills the internal addresses: the subnet, the host's own IPv4 addresses,
 * loopback, multicast and broadcast; a thread keeps the host's addresses
 * current until net_policy_fini. After this every filter net_spoof_attach
 * makes enforces policy; before it (or after net_policy_fini) only spoofing. */
int net_policy_init(const char *subnet, bool egress_allow, struct err *e);
void net_policy_fini(void);
bool net_policy_enabled(void);
/* With on, a sandbox reaches the gateway's port 53 (UDP and TCP) when no
 * rule names the gateway: the daemon's DNS forwarder (dnsfwd.c), which
 * `deny all` and --egress deny leave open. Before the first attach. */
void net_policy_allow_dns(bool on);
/* Makes the internal map's host addresses the host's IPv4 addresses now:
 * those that appeared are added, those that went are removed. A thread of
 * net_policy_init's calls it at every change of them. */
int net_policy_refresh_local(struct err *e);
/* Whether ip is internal to the policy: the subnet, the host's own
 * addresses, loopback, link-local, multicast, broadcast. */
bool net_policy_internal(struct in_addr ip);
/* Installs (add) or removes a rule's map entry for sandbox `host`; dst is the
 * resolved address of a NET_RULE_SANDBOX rule (a /32), ignored otherwise. */
int net_policy_put(uint32_t host, const struct net_rule *r, struct in_addr dst, bool add,
		   struct err *e);
/* Re-attaches the filter of a host device that a previous daemon made (its
 * program held that daemon's maps): replaces the ingress filter and the
 * egress one. -ENODEV when id->host_if is absent. */
int net_policy_reattach(const struct net_ident *id, struct err *e);
/* The filter's program (the ingress one, or with egress the replies one)
 * with id as the identity of port ifindex, attached nowhere: for tests and
 * benchmarks (BPF_PROG_TEST_RUN runs packets on the loopback, ifindex 1).
 * Returns its fd. */
int net_filter_load(const struct net_ident *id, int ifindex, bool egress, struct err *e);

/* ---- DNS (dns.c: the wire format; dnsfwd.c: the forwarder) ---- */

#define NET_DNS_NAME_MAX 253
#define NET_DNS_MSG_MAX 4096
#define NET_DNS_A_MAX 32 /* A records taken from one answer */
#define NET_DNS_TTL_MIN 5
#define NET_DNS_TTL_MAX 3600

/* A message's header and its one question. */
struct net_dns_q {
	uint16_t id, flags, qtype, qclass;
	bool plain;                         /* the name is LDH (or _) labels only */
	char name[NET_DNS_NAME_MAX + 2];    /* lower case, no final dot; "" unless plain */
	size_t end;                         /* offset past the question */
};
struct net_dns_a {
	struct in_addr ip;
	uint32_t ttl; /* seconds, as the answer gave it */
};

/* Reads the name at *off of message m[0, n) into out[NET_DNS_NAME_MAX + 2]
 * and moves *off past it (past its first pointer). Pointers must go below
 * every offset read so far, so a loop of them ends; at most 253 characters.
 * 0: a name of LDH/_ labels (lower case); 1: a well-formed name with other
 * bytes (out ""); -EBADMSG: malformed. */
int net_dns_read_name(const uint8_t *m, size_t n, size_t *off, char *out);
/* A sandbox's query: one question, QR 0, opcode 0. 0 or -EBADMSG. */
int net_dns_parse_query(const uint8_t *m, size_t n, struct net_dns_q *q);
/* An answer to `asked` (same id and question, else -EPROTO; malformed
 * -EBADMSG): the A records (class IN) of its answer section whose owner is
 * the question's name or a CNAME target reached from it (at most 8 names),
 * at most max into out. Returns how many (0 for an error answer). */
int net_dns_parse_answer(const uint8_t *m, size_t n, const struct net_dns_q *asked,
			 struct net_dns_a *out, int max);
/* A rule's name: LDH labels of 1..63, no hyphen at either end of a label, at
 * most 253 characters, no final dot, a last label not all digits; "*." in
 * front for every name under it. 0 or -EINVAL. */
int net_dns_name_check(const char *s);
/* Does name match pattern (exact, or "*.suffix": one or more labels, then
 * suffix)? Case-insensitive. */
bool net_dns_name_match(const char *pattern, const char *name);

/* What the forwarder asks of the daemon (called on the forwarder's thread). */
struct net_dns_ops {
	/* Whether src is a sandbox's address (the filter makes it its own). */
	bool (*known)(struct in_addr src, void *arg);
	/* A relayed answer to sandbox src for name (plain names only). */
	void (*learn)(struct in_addr src, const char *name, const struct net_dns_a *a, int n,
		      void *arg);
	/* About once a second: expire what is due. */
	void (*tick)(void *arg);
	void *arg;
};
/* Starts the forwarder: UDP on listen:53 (the gateway), queries relayed to
 * upstream (an address and port, host order) with fresh ids, answers relayed
 * back only to the sandbox that asked, once they match its question. At most
 * NET_DNS_PENDING queries wait at once, 32 per sandbox; a query waits 5 s. */
#define NET_DNS_PENDING 1024
int net_dns_start(struct in_addr listen, struct in_addr upstream, uint16_t upstream_port,
		  const struct net_dns_ops *ops, struct err *e);
void net_dns_stop(void);
/* Counters since start: queries relayed, answers relayed, dropped. */
void net_dns_counts(uint64_t *queries, uint64_t *answers, uint64_t *dropped);

/* ---- traffic shaping (shape.c) ---- */

/* Parses a tc-style rate into bits per second: "10mbit", "1.5gbit", "500kbit",
 * "100mbps" (bytes: x8), "2mibit" (binary), a plain number is bit/s.
 * -EINVAL for anything else, zero or an overflow. */
int net_parse_rate(const char *s, uint64_t *bps);
/* Limits traffic towards the sandbox to rate_bps: a tbf root qdisc on the host
 * end of the veth, replaced if present; rate_bps 0 removes it. */
int net_shape_apply(const struct net_ident *id, uint64_t rate_bps, struct err *e);
/* Limits what a VM sends (its TAP's ingress: the other end is the guest's):
 * every frame the filter passes is redirected to an ifb device of its own,
 * named by net_ifb_name, with the same tbf; rate_bps 0 removes both. The ifb
 * goes with net_veth_teardown. */
int net_shape_apply_ingress(const struct net_ident *id, uint64_t rate_bps, struct err *e);
/* The ifb of net_shape_apply_ingress: host_if with its leading 's' made 'i'. */
void net_ifb_name(const struct net_ident *id, char out[IFNAMSIZ]);
/* Limits traffic from the sandbox: the same tbf on eth0 inside the netns of
 * netns_pid (the sandbox holds no CAP_NET_ADMIN, so it cannot lift it). */
int net_shape_apply_peer(const struct net_ident *id, pid_t netns_pid, uint64_t rate_bps,
			 struct err *e);

/* ---- egress NAT (nat.c), off by default ---- */

/* Enables IPv4 forwarding and masquerades traffic from subnet (CIDR) leaving
 * for other networks, with nft or iptables; -ENOTSUP when neither exists. */
int net_nat_enable(const char *subnet, struct err *e);
/* Removes the masquerade rule (forwarding is left as it is). */
int net_nat_disable(const char *subnet, struct err *e);

/* ---- exposed ports (nat.c): DNAT of a host port to a sandbox's ---- */

#define NET_EXPOSE_MAX 64 /* per sandbox */
struct net_expose {
	uint8_t proto;      /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;      /* in the sandbox */
	uint16_t host_port; /* on the host's addresses; 0 in an unexpose */
};
#define NET_EXPOSE_TEXT_MAX 32
/* "expose PROTO PORT HOSTPORT", the line ctl takes, into out[NET_EXPOSE_TEXT_MAX]. */
void net_expose_format(const struct net_expose *x, char *out);

/* Makes the nft table (afresh) whose map the other two edit; -ENOTSUP
 * without nft. */
int net_expose_start(const char *table, struct err *e);
/* Adds (or with add false removes) x's host port -> ip:x's port, for x's
 * protocol. */
int net_expose_set(const char *table, const struct net_expose *x, struct in_addr ip, bool add,
		   struct err *e);
void net_expose_stop(const char *table);
/* Holds x's host port on the host (a socket of x's protocol bound to it on
 * every address, never listening), so that an exposed port never takes the
 * flows of a host service, and no service takes it while it is exposed.
 * Returns the socket's fd; -EADDRINUSE with a sentence when the host uses it. */
int net_expose_hold(const struct net_expose *x, struct err *e);

#endif
