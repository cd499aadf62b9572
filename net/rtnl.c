/* The devices of the sandbox network over rtnetlink: the bridge with the
 * gateway address, and one veth pair per sandbox whose peer is created
 * directly inside the sandbox's network namespace as eth0 and configured
 * there from a short-lived thread (or made ahead there, with a route socket
 * opened in it that configures it at the claim), or a TAP device per VM
 * whose fd QEMU gets. No `ip` subprocess anywhere. */
#define _GNU_SOURCE
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/neighbour.h>
#include <linux/veth.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static bool ifname_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && n < IFNAMSIZ && !strchr(name, '/') && !strchr(name, ' ');
}

/* ---- requests ---- */

int nl_link_set_up(struct nl *nl, int ifindex)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return nl_talk(nl, nlh, NULL, NULL);
}

static int addr_add(struct nl *nl, int ifindex, struct in_addr ip, uint8_t prefix_len)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE,
				      sizeof(struct ifaddrmsg));
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = prefix_len;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)ifindex;
	uint32_t mask = prefix_len ? htonl(~0u << (32 - prefix_len)) : 0;
	mnl_attr_put_u32(nlh, IFA_LOCAL, ip.s_addr);
	mnl_attr_put_u32(nlh, IFA_ADDRESS, ip.s_addr);
	mnl_attr_put_u32(nlh, IFA_BROADCAST, ip.s_addr | ~mask);
	return nl_talk(nl, nlh, NULL, NULL);
}

static int route_default_add(struct nl *nl, int ifindex, struct in_addr gw)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE,
				      sizeof(struct rtmsg));
	struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put_u32(nlh, RTA_GATEWAY, gw.s_addr);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* ---- bridge ---- */

static int kind_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == IFLA_INFO_KIND &&
	    mnl_attr_validate(attr, MNL_TYPE_STRING) == 0)
		snprintf(data, IFNAMSIZ, "%.*s", (int)mnl_attr_get_payload_len(attr),
			 mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == IFLA_LINKINFO)
		mnl_attr_parse_nested(attr, kind_attr_cb, data);
	return MNL_CB_OK;
}

static int link_kind_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type == RTM_NEWLINK)
		mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr_cb, data);
	return MNL_CB_OK;
}

/* The kind of link name ("bridge", "veth", "" for a plain device). */
int nl_link_kind(struct nl *nl, const char *name, char kind[IFNAMSIZ])
{
	kind[0] = '\0';
	struct nlmsghdr *nlh = nl_msg(nl, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nl_talk(nl, nlh, link_kind_cb, kind);
}

static int bridge_create(struct nl *nl, const char *br, struct in_addr gw)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
				      sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, br);
	/* A bridge without a set address takes the lowest of its ports' and
	 * changes it as ports come and go, which stales every sandbox's ARP entry
	 * for the gateway. Fix it, derived from the gateway like sandbox MACs. */
	uint32_t g = ntohl(gw.s_addr);
	uint8_t mac[6] = { 0x02, 0x5b, (uint8_t)(g >> 24), (uint8_t)(g >> 16), (uint8_t)(g >> 8),
			   (uint8_t)g };
	mnl_attr_put(nlh, IFLA_ADDRESS, sizeof(mac), mac);
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, li);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* A netlink socket for a change of bridge br, once its name is checked. */
static int bridge_nl(const char *br, struct nl **nl, struct err *e)
{
	if (!ifname_ok(br))
		return err_set(e, -EINVAL, "bridge name '%s' is not a valid interface name", br ? br : "");
	return nl_new(nl, e);
}

int net_bridge_ensure(const char *br, struct in_addr gw, uint8_t prefix_len, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = bridge_nl(br, &nl, e);
	if (ret < 0)
		return ret;

	ret = bridge_create(nl, br, gw);
	if (ret == -EEXIST) {
		char kind[IFNAMSIZ];
		ret = nl_link_kind(nl, br, kind);
		if (ret == 0 && strcmp(kind, "bridge") != 0)
			return err_set(e, -EEXIST, "device %s exists and is not a bridge (it is a %s device)",
				       br, kind[0] ? kind : "plain");
	}
	if (ret < 0)
		return err_set(e, ret, "cannot create bridge %s: %s%s", br, strerror(-ret), nl_why(nl));
	int ifindex = (int)if_nametoindex(br);
	if (!ifindex)
		return err_set(e, -errno, "bridge %s vanished while being set up", br);
	char gws[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &gw, gws, sizeof(gws));
	ret = addr_add(nl, ifindex, gw, prefix_len);
	if (ret < 0)
		return err_set(e, ret, "cannot add address %s/%u to bridge %s: %s%s", gws, prefix_len,
			       br, strerror(-ret), nl_why(nl));
	ret = nl_link_set_up(nl, ifindex);
	if (ret < 0)
		return err_set(e, ret, "cannot set bridge %s up: %s%s", br, strerror(-ret), nl_why(nl));
	return 0;
}

int net_bridge_remove(const char *br, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = bridge_nl(br, &nl, e);
	if (ret < 0)
		return ret;
	ret = nl_link_del(nl, br);
	if (ret < 0 && ret != -ENODEV)
		return err_set(e, ret, "cannot delete bridge %s: %s%s", br, strerror(-ret), nl_why(nl));
	return 0;
}

/* ---- veth ---- */

/* The host end host_if, down, on the bridge br_index (0: on none); the peer
 * born in the network namespace netns_fd as peer_if, with mac (NULL: the
 * kernel's), so it is never renamed or moved. */
static int veth_create(struct nl *nl, const char *host_if, int br_index, const char *peer_if,
		       const uint8_t *mac, int netns_fd)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
				      sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, host_if);
	if (br_index)
		mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)br_index);
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	/* VETH_INFO_PEER carries an ifinfomsg, then the peer's attributes. */
	memset(mnl_nlmsg_get_payload_tail(nlh), 0, sizeof(struct ifinfomsg));
	nlh->nlmsg_len += MNL_ALIGN(sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_if);
	if (mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	/* By fd, not by pid: the namespace is the one asked for, whether or
	 * not a process has joined it yet. */
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, li);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* A static forwarding entry: the sandbox's MAC lives on its port. With it the
 * port needs neither learning nor unknown-unicast flooding (below). */
static int fdb_add_static(struct nl *nl, int port, const uint8_t mac[6])
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE,
				      sizeof(struct ndmsg));
	struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	ndm->ndm_family = PF_BRIDGE;
	ndm->ndm_ifindex = port;
	ndm->ndm_state = NUD_NOARP; /* "static"; NUD_PERMANENT would mean the bridge's own */
	ndm->ndm_flags = NTF_MASTER;
	mnl_attr_put(nlh, NDA_LLADDR, 6, mac);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* Sets the port up with learning and unknown-unicast flooding off: frames
 * for a MAC the bridge does not know are not copied to every sandbox, so one
 * cannot read another's traffic, while sandbox-to-sandbox traffic (known
 * static MACs, ARP broadcasts) flows. Full port isolation would forbid it. */
static int port_up(struct nl *nl, int ifindex)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_SLAVE_KIND, "bridge");
	struct nlattr *sd = mnl_attr_nest_start(nlh, IFLA_INFO_SLAVE_DATA);
	mnl_attr_put_u8(nlh, IFLA_BRPORT_LEARNING, 0);
	mnl_attr_put_u8(nlh, IFLA_BRPORT_UNICAST_FLOOD, 0);
	mnl_attr_nest_end(nlh, sd);
	mnl_attr_nest_end(nlh, li);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* A link's index and, for a veth end, its peer's index (IFLA_LINK: in the
 * peer's own namespace), from an RTM_GETLINK reply. */
struct link_ids {
	int index;
	int link;
};

static int link_ids_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == IFLA_LINK && mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
		((struct link_ids *)data)->link = (int)mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int link_ids_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	((struct link_ids *)data)->index = ((struct ifinfomsg *)mnl_nlmsg_get_payload(nlh))->ifi_index;
	return mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_ids_attr_cb, data);
}

static int link_get_ids(struct nl *nl, const char *name, struct link_ids *ids)
{
	memset(ids, 0, sizeof(*ids));
	struct nlmsghdr *nlh = nl_msg(nl, RTM_GETLINK, 0, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	int ret = nl_talk(nl, nlh, link_ids_cb, ids);
	return ret == 0 && !ids->index ? -ENODEV : ret;
}

/* Sets link ifindex up, with mac first when not NULL (it must be down for that). */
static int link_up_mac(struct nl *nl, int ifindex, const uint8_t *mac)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (mac)
		mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
	return nl_talk(nl, nlh, NULL, NULL);
}

struct peer_conf {
	const struct net_ident *id;
	bool ahead;     /* made ahead (net_veth_ahead): it takes id->mac now */
	int host_index; /* out: the host end's index, its peer link */
	struct err *e;
};

/* eth0 of the sandbox on nl, a client in its network namespace. */
static int peer_configure_on(struct nl *nl, struct peer_conf *pc)
{
	const struct net_ident *id = pc->id;
	struct link_ids ids;
	if (link_get_ids(nl, id->peer_if, &ids) < 0)
		return err_set(pc->e, -ENODEV, "%s: %s did not appear in the sandbox's network namespace",
			       id->sbx, id->peer_if);
	pc->host_index = ids.link;
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &id->ip, ip, sizeof(ip));
	int ret = addr_add(nl, ids.index, id->ip, id->prefix_len);
	if (ret < 0)
		return err_set(pc->e, ret, "%s: cannot add address %s/%u to %s: %s%s", id->sbx, ip,
			       id->prefix_len, id->peer_if, strerror(-ret), nl_why(nl));
	ret = link_up_mac(nl, ids.index, pc->ahead ? id->mac : NULL);
	if (ret < 0)
		return err_set(pc->e, ret, "%s: cannot set %s up: %s%s", id->sbx, id->peer_if,
			       strerror(-ret), nl_why(nl));
	ret = route_default_add(nl, ids.index, id->gateway);
	if (ret < 0)
		return err_set(pc->e, ret, "%s: cannot add the default route: %s%s", id->sbx,
			       strerror(-ret), nl_why(nl));
	return 0;
}

/* Runs inside the sandbox's network namespace, on its own thread. */
static int peer_configure(void *arg)
{
	struct peer_conf *pc = arg;
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = nl_new(&nl, pc->e);
	return ret < 0 ? ret : peer_configure_on(nl, pc);
}

/* Creates the pair. An existing host end is never deleted here: it lives only
 * as long as its peer's namespace, so it belongs to a live (if orphaned)
 * sandbox, and the allocator was told otherwise. */
static int veth_create_new(struct nl *nl, const struct net_ident *id, int br_index, int netns_fd,
			   struct err *e)
{
	int ret = veth_create(nl, id->host_if, br_index, id->peer_if, id->mac, netns_fd);
	if (ret == -EEXIST && if_nametoindex(id->host_if))
		return err_set(e, ret, "%s: cannot create its network device: %s already exists", id->sbx,
			       id->host_if);
	if (ret == -EEXIST)
		return err_set(e, ret, "%s: cannot create its network device: the sandbox already has %s",
			       id->sbx, id->peer_if);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot create veth pair %s/%s: %s%s", id->sbx, id->host_if,
			       id->peer_if, strerror(-ret), nl_why(nl));
	return 0;
}

/* A host end on the bridge, the same for a veth and a TAP: the
 * anti-spoofing filter on its ingress (on one made ahead already: then its
 * identity only), a static forwarding entry for the sandbox's MAC, then up.
 * Nothing flows until the port is up, so the filter is in place before the
 * sandbox's first frame can reach the bridge. */
static int port_wire(struct nl *nl, const struct net_ident *id, const char *bridge, int ifindex,
		     bool filtered, struct err *e)
{
	int ret = filtered ? nl_spoof_note(ifindex, id, e) : nl_spoof_attach(nl, ifindex, id, e);
	if (ret < 0)
		return ret;
	ret = fdb_add_static(nl, ifindex, id->mac);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot add its MAC to the forwarding table of %s: %s%s",
			       id->sbx, bridge, strerror(-ret), nl_why(nl));
	ret = port_up(nl, ifindex);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot set %s up: %s%s", id->sbx, id->host_if,
			       strerror(-ret), nl_why(nl));
	return 0;
}

/* The bridge's index, and a client: what both kinds of host end start from. */
static int port_begin(const struct net_ident *id, const char *bridge, struct nl **nl, int *br_index,
		      struct err *e)
{
	if (!ifname_ok(bridge))
		return err_set(e, -EINVAL, "bridge name '%s' is not a valid interface name",
			       bridge ? bridge : "");
	*br_index = (int)if_nametoindex(bridge);
	if (!*br_index)
		return err_set(e, -ENODEV, "%s: bridge %s does not exist", id->sbx, bridge);
	return nl_new(nl, e);
}

int net_veth_setup(const struct net_ident *id, const char *bridge, int netns_fd, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int br_index;
	int ret = port_begin(id, bridge, &nl, &br_index, e);
	if (ret < 0)
		return ret;
	ret = veth_create_new(nl, id, br_index, netns_fd, e);
	if (ret < 0)
		return ret;
	int ifindex = (int)if_nametoindex(id->host_if);
	if (!ifindex)
		ret = err_set(e, -ENODEV, "%s: %s vanished while being set up", id->sbx, id->host_if);
	if (ret == 0)
		ret = port_wire(nl, id, bridge, ifindex, false, e);
	if (ret == 0) {
		struct peer_conf pc = { .id = id, .e = e };
		ret = nl_in_netns_fd(netns_fd, peer_configure, &pc, e);
	}
	if (ret < 0)
		nl_link_del(nl, id->host_if); /* the peer goes with it */
	return ret;
}

int net_veth_ahead(const char *prefix, int netns_fd, struct err *e)
{
	static atomic_uint seq;
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = nl_new(&nl, e);
	if (ret < 0)
		return ret;
	char name[IFNAMSIZ];
	/* A name of a dead daemon's spare may linger while the kernel ends its
	 * namespace: the next number then. */
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "%s%u", prefix, atomic_fetch_add(&seq, 1) % 100000);
		if ((ret = veth_create(nl, name, 0, NET_PEER_IFNAME, NULL, netns_fd)) != -EEXIST)
			break;
	}
	if (ret < 0)
		return err_set(e, ret, "cannot make a veth pair %s ahead: %s%s", name, strerror(-ret),
			       nl_why(nl));
	int ifindex = (int)if_nametoindex(name);
	ret = ifindex ? nl_spoof_attach(nl, ifindex, NULL, e)
		      : err_set(e, -ENODEV, "the veth made ahead, %s, vanished", name);
	if (ret < 0)
		nl_link_del(nl, name);
	return ret;
}

/* The host end host_index, made ahead (down, on no bridge), becomes
 * id->host_if on the bridge, in one request. */
static int veth_claim_host(struct nl *nl, const struct net_ident *id, int host_index, int br_index,
			   struct err *e)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_index = host_index;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, id->host_if);
	mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)br_index);
	int ret = nl_talk(nl, nlh, NULL, NULL);
	if (ret == -EEXIST)
		return err_set(e, ret, "%s: cannot name its network device: %s already exists", id->sbx,
			       id->host_if);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot make the veth made ahead %s: %s%s", id->sbx,
			       id->host_if, strerror(-ret), nl_why(nl));
	return 0;
}

int net_veth_adopt(const struct net_ident *id, const char *bridge, int netns_sock, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL, *pnl = NULL;
	int br_index;
	int ret = port_begin(id, bridge, &nl, &br_index, e);
	if (ret < 0)
		return ret;
	/* The peer first, on the socket made in its namespace (no thread
	 * enters it): its link names the host end. */
	struct peer_conf pc = { .id = id, .ahead = true, .e = e };
	if ((ret = nl_new_at(&pnl, netns_sock, e)) < 0 || (ret = peer_configure_on(pnl, &pc)) < 0)
		return ret;
	if (!pc.host_index)
		return err_set(e, -ENODEV, "%s: the veth made ahead has no host end", id->sbx);
	if ((ret = veth_claim_host(nl, id, pc.host_index, br_index, e)) < 0)
		return ret;
	ret = port_wire(nl, id, bridge, pc.host_index, true, e);
	if (ret < 0)
		nl_link_del(nl, id->host_if); /* the peer goes with it */
	return ret;
}

/* ---- TAP ---- */

static int link_set_master(struct nl *nl, int ifindex, int br_index)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_index = ifindex;
	mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)br_index);
	return nl_talk(nl, nlh, NULL, NULL);
}

static int link_rename(struct nl *nl, int ifindex, const char *name)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_index = ifindex;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nl_talk(nl, nlh, NULL, NULL);
}

/* A TAP named name (the kernel fills a %d), not persistent: it lives while
 * an fd holds it. who: for sentences. */
static int tap_open(const char *name, const char *who, struct err *e)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ENXIO || errno == ENODEV))
		return err_set(e, -ENODEV, "%s: cannot make its TAP device: /dev/net/tun is missing "
			       "(the kernel's tun driver: modprobe tun)", who);
	if (fd < 0)
		return err_set(e, -errno, "%s: cannot open /dev/net/tun: %s", who, strerror(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	/* The virtio-net header lets QEMU pass checksum and segmentation offloads through. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int r = -errno;
		close(fd);
		/* EBUSY: a TAP of that name held by another fd; EINVAL: not a TAP. */
		if (r == -EBUSY || r == -EINVAL || r == -EEXIST)
			return err_set(e, -EEXIST, "%s: cannot make its TAP device: %s already exists",
				       who, name);
		return err_set(e, r, "%s: cannot make TAP device %s: %s", who, name, strerror(-r));
	}
	return fd;
}

/* The TAP ifindex (named id->host_if) on bridge, wired as a veth's host end. */
static int tap_wire(struct nl *nl, const struct net_ident *id, const char *bridge, int ifindex,
		    int br_index, struct err *e)
{
	int ret = link_set_master(nl, ifindex, br_index);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot put %s on bridge %s: %s%s", id->sbx, id->host_if,
			       bridge, strerror(-ret), nl_why(nl));
	return port_wire(nl, id, bridge, ifindex, false, e);
}

int net_tap_setup(const struct net_ident *id, const char *bridge, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int br_index;
	int ret = port_begin(id, bridge, &nl, &br_index, e);
	if (ret < 0)
		return ret;
	int fd = tap_open(id->host_if, id->sbx, e);
	if (fd < 0)
		return fd;
	int ifindex = (int)if_nametoindex(id->host_if);
	if (!ifindex)
		ret = err_set(e, -ENODEV, "%s: %s vanished while being set up", id->sbx, id->host_if);
	if (ret == 0)
		ret = tap_wire(nl, id, bridge, ifindex, br_index, e);
	if (ret < 0) {
		close(fd); /* the device goes with its last fd */
		return ret;
	}
	return fd;
}

int net_tap_ahead(struct err *e)
{
	int fd = tap_open(NET_TAP_AHEAD_NAME "%d", "a QEMU started ahead", e);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (fd >= 0 && ioctl(fd, TUNGETIFF, &ifr) == 0 && strchr(ifr.ifr_name, '.'))
		return fd;
	if (fd >= 0) { /* not the name asked for: never hand out a TAP of another's name */
		int r = err_set(e, -EIO, "a TAP made ahead is named '%.*s', not %s*", IFNAMSIZ,
				ifr.ifr_name, NET_TAP_AHEAD_NAME);
		close(fd);
		return r;
	}
	return fd;
}

int net_tap_adopt(const struct net_ident *id, const char *bridge, int tap_fd, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int br_index;
	int ret = port_begin(id, bridge, &nl, &br_index, e);
	if (ret < 0)
		return ret;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(tap_fd, TUNGETIFF, &ifr) < 0)
		return err_set(e, -errno, "%s: the TAP made ahead is unreadable: %s", id->sbx,
			       strerror(errno));
	ifr.ifr_name[IFNAMSIZ - 1] = '\0';
	int ifindex = (int)if_nametoindex(ifr.ifr_name);
	if (!ifindex || strncmp(ifr.ifr_name, NET_TAP_AHEAD_NAME, strlen(NET_TAP_AHEAD_NAME)) != 0)
		return err_set(e, -ENODEV, "%s: the TAP made ahead (%s) is gone or was renamed",
			       id->sbx, ifr.ifr_name);
	/* Down and on no bridge since it was made: the rename is allowed, and
	 * nothing of it reaches the bridge before the filter is on. */
	if ((ret = link_rename(nl, ifindex, id->host_if)) < 0)
		return err_set(e, ret, "%s: cannot rename %s to %s: %s%s",
			       id->sbx, ifr.ifr_name, id->host_if, strerror(-ret), nl_why(nl));
	return tap_wire(nl, id, bridge, ifindex, br_index, e);
}

int net_veth_teardown(const struct net_ident *id, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = nl_new(&nl, e);
	if (ret < 0)
		return ret;
	int ifindex = (int)if_nametoindex(id->host_if);
	if (ifindex)
		nl_spoof_detach(ifindex);
	ret = nl_link_del(nl, id->host_if);
	if (ret < 0 && ret != -ENODEV)
		return err_set(e, ret, "%s: cannot delete %s: %s%s", id->sbx, id->host_if,
			       strerror(-ret), nl_why(nl));
	/* A VM's ifb (rate= on what it sends), which no fd holds. */
	char ifb[IFNAMSIZ];
	net_ifb_name(id, ifb);
	if (if_nametoindex(ifb) && (ret = nl_link_del(nl, ifb)) < 0 && ret != -ENODEV)
		return err_set(e, ret, "%s: cannot delete %s: %s%s", id->sbx, ifb, strerror(-ret),
			       nl_why(nl));
	return 0;
}
