/* Internal to net/: a small rtnetlink client over libmnl. One socket per
 * operation (cheap, and safe from any thread or network namespace), requests
 * acknowledged one at a time, kernel extended-ack messages kept for errors. */
#ifndef SBX_NET_NL_H
#define SBX_NET_NL_H

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "net.h"

struct nl {
	struct mnl_socket *sock;
	unsigned int portid;
	uint32_t seq;
	char ext_msg[160]; /* the kernel's reason for the last failure, or "" */
	char buf[8192];    /* the request being built */
	char rbuf[16384];  /* replies */
};

/* Allocates a client with a NETLINK_ROUTE socket in the calling thread's
 * network namespace into *out; -errno with e filled on failure. */
int nl_new(struct nl **out, struct err *e);
/* The same on a copy of sock_fd, a NETLINK_ROUTE socket opened (unbound) by
 * the caller, maybe in another network namespace: the client works there. */
int nl_new_at(struct nl **out, int sock_fd, struct err *e);
void nl_free(struct nl *nl);
static inline void nl_freep(struct nl **p) { if (*p) nl_free(*p); }
#define _cleanup_nl_ __attribute__((cleanup(nl_freep)))
/* Starts a request of type with flags (NLM_F_REQUEST and NLM_F_ACK added) in
 * nl->buf, with a zeroed family header of hdr_len bytes; returns the header. */
struct nlmsghdr *nl_msg(struct nl *nl, uint16_t type, uint16_t flags, size_t hdr_len);
/* Sends nlh and waits for the acknowledgement; reply messages before it are
 * passed to cb (may be NULL). Returns 0 or the kernel's -errno. */
int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data);
/* " (kernel: ...)" when the kernel gave a reason, else "". */
const char *nl_why(const struct nl *nl);

/* Runs fn(arg) on a short-lived thread that first joins the network namespace
 * of pid; only that thread changes namespace. Returns fn's result, or -errno
 * (with e filled) when the namespace cannot be entered. */
int nl_in_netns(pid_t pid, int (*fn)(void *arg), void *arg, struct err *e);
/* The same in the network namespace of netns_fd (still the caller's). */
int nl_in_netns_fd(int netns_fd, int (*fn)(void *arg), void *arg, struct err *e);

/* net_spoof_attach on an open client; id NULL: a port made ahead, whose
 * frames are dropped until nl_spoof_note gives it its identity. */
int nl_spoof_attach(struct nl *nl, int ifindex, const struct net_ident *id, struct err *e);
int nl_spoof_note(int ifindex, const struct net_ident *id, struct err *e);

/* The policy maps (policy.c) the filter's program refers to; fds are -1
 * while policy is off. Key layouts are in policy.c. */
struct net_policy_maps {
	int rules;    /* LPM trie: {plen, host, proto, pad, port, ip} -> verdict */
	int internal; /* LPM trie: {plen, ip} -> 1: the subnet and the host's addresses */
	int flows;    /* LRU hash: what a sandbox may send back -> 1 */
	bool egress_allow;
	bool dns;     /* the gateway's DNS port is open to sandboxes (net_policy_allow_dns) */
};
const struct net_policy_maps *net_policy_maps(void);

/* bpf(2): a map (an fd, or -errno), an operation on one (0 or -errno). */
int nl_bpf_map_create(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags,
		      const char *name);
int nl_bpf_map_op(int cmd, int fd, const void *key, const void *value);
/* The filter's programs are made again at the next attach (the policy's maps
 * changed); a port's identity entry goes (its device is being deleted). */
void nl_spoof_forget(void);
void nl_spoof_detach(int ifindex);

/* Deletes link name; -ENODEV when absent. */
int nl_link_del(struct nl *nl, const char *name);
/* Sets link ifindex up. */
int nl_link_set_up(struct nl *nl, int ifindex);
/* The kind of link name ("bridge", "veth", "ifb", "" for a plain device). */
int nl_link_kind(struct nl *nl, const char *name, char kind[IFNAMSIZ]);

#endif
