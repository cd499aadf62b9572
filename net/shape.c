/* Traffic shaping for `rate=`: tc-style rate parsing and a token bucket (tbf)
 * root qdisc set over rtnetlink, on the host end of a sandbox's veth (towards
 * the sandbox) and on its eth0 (from it); for a VM, whose eth0 is the guest's,
 * on an ifb device that its TAP's ingress redirects to (net_shape_apply_ingress).
 * Runs on the engine's background worker, off the create path; these calls
 * only talk to the kernel. */
#define _GNU_SOURCE
#include "nl.h"

#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	uint64_t bits; /* bits per second per unit */
} rate_units[] = {
	{ "", 1 },           { "bit", 1 },
	{ "kbit", 1000ull }, { "mbit", 1000000ull }, { "gbit", 1000000000ull }, { "tbit", 1000000000000ull },
	{ "kibit", 1ull << 10 }, { "mibit", 1ull << 20 }, { "gibit", 1ull << 30 }, { "tibit", 1ull << 40 },
	{ "bps", 8 },
	{ "kbps", 8000ull }, { "mbps", 8000000ull }, { "gbps", 8000000000ull }, { "tbps", 8000000000000ull },
	{ "kibps", 8ull << 10 }, { "mibps", 8ull << 20 }, { "gibps", 8ull << 30 }, { "tibps", 8ull << 40 },
};

int net_parse_rate(const char *s, uint64_t *bps)
{
	if (!s)
		return -EINVAL;
	uint64_t whole = 0, frac = 0, frac_div = 1;
	const char *p = s;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(whole, 10, &whole) ||
		    __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
			return -EINVAL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (int digits = 0; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits >= 9)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*p - '0');
			frac_div *= 10;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(rate_units); i++) {
		if (strcasecmp(p, rate_units[i].name) != 0)
			continue;
		uint64_t mult = rate_units[i].bits, v;
		/* frac < frac_div <= 1e9 and mult <= 8.8e12: the product may not
		 * fit in 64 bits, so divide first when it would not. */
		uint64_t fv;
		if (__builtin_mul_overflow(frac, mult, &fv))
			fv = frac * (mult / frac_div);
		else
			fv = fv / frac_div;
		if (__builtin_mul_overflow(whole, mult, &v) || __builtin_add_overflow(v, fv, &v))
			return -EINVAL;
		if (v < 8) /* less than a byte per second */
			return -EINVAL;
		*bps = v;
		return 0;
	}
	return -EINVAL;
}

/* A root tbf at rate_bps on ifindex, or no root qdisc when rate_bps is 0. */
static int tbf_set(struct nl *nl, int ifindex, uint64_t rate_bps)
{
	if (rate_bps == 0) {
		struct nlmsghdr *nlh = nl_msg(nl, RTM_DELQDISC, 0, sizeof(struct tcmsg));
		struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
		tcm->tcm_family = AF_UNSPEC;
		tcm->tcm_ifindex = ifindex;
		tcm->tcm_parent = TC_H_ROOT;
		int ret = nl_talk(nl, nlh, NULL, NULL);
		return ret == -ENOENT || ret == -EINVAL ? 0 : ret; /* nothing to remove */
	}
	uint64_t rate_Bps = rate_bps / 8;
	/* Burst: 10 ms at full rate, at least 16 KiB so a GSO frame rarely needs
	 * splitting; queue: 50 ms of traffic on top, as `tc ... latency 50ms`. */
	uint64_t burst = rate_Bps / 100 > 16384 ? rate_Bps / 100 : 16384;
	if (burst > UINT32_MAX / 2)
		burst = UINT32_MAX / 2;
	uint64_t limit = rate_Bps / 20 + burst;
	if (limit > UINT32_MAX)
		limit = UINT32_MAX;

	struct tc_tbf_qopt q;
	memset(&q, 0, sizeof(q));
	q.rate.rate = rate_Bps >= UINT32_MAX ? UINT32_MAX : (uint32_t)rate_Bps;
	q.rate.linklayer = TC_LINKLAYER_ETHERNET; /* no rate table needed */
	q.limit = (uint32_t)limit;

	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE,
				      sizeof(struct tcmsg));
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_ROOT;
	tcm->tcm_handle = TC_H_MAKE(0x5b0000u, 0); /* "5b:", ours */
	mnl_attr_put_strz(nlh, TCA_KIND, "tbf");
	struct nlattr *opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_TBF_PARMS, sizeof(q), &q);
	mnl_attr_put_u32(nlh, TCA_TBF_BURST, (uint32_t)burst);
	if (rate_Bps >= UINT32_MAX)
		mnl_attr_put_u64(nlh, TCA_TBF_RATE64, rate_Bps);
	mnl_attr_nest_end(nlh, opts);
	return nl_talk(nl, nlh, NULL, NULL);
}

static int shape_dev(const struct net_ident *id, const char *dev, uint64_t rate_bps,
		     struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = nl_new(&nl, e);
	if (ret < 0)
		return ret;
	int ifindex = (int)if_nametoindex(dev);
	if (!ifindex)
		return err_set(e, -ENODEV, "%s: cannot shape traffic: %s does not exist", id->sbx, dev);
	ret = tbf_set(nl, ifindex, rate_bps);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot set rate %llu bit/s on %s: %s%s", id->sbx,
			       (unsigned long long)rate_bps, dev, strerror(-ret), nl_why(nl));
	return 0;
}

int net_shape_apply(const struct net_ident *id, uint64_t rate_bps, struct err *e)
{
	return shape_dev(id, id->host_if, rate_bps, e);
}

struct peer_shape {
	const struct net_ident *id;
	uint64_t rate_bps;
	struct err *e;
};

static int peer_shape(void *arg)
{
	struct peer_shape *ps = arg;
	return shape_dev(ps->id, ps->id->peer_if, ps->rate_bps, ps->e);
}

int net_shape_apply_peer(const struct net_ident *id, pid_t netns_pid, uint64_t rate_bps,
			 struct err *e)
{
	struct peer_shape ps = { .id = id, .rate_bps = rate_bps, .e = e };
	return nl_in_netns(netns_pid, peer_shape, &ps, e);
}

/* ---- what a VM sends: its TAP's ingress -> an ifb with the tbf ---- */

void net_ifb_name(const struct net_ident *id, char out[IFNAMSIZ])
{
	snprintf(out, IFNAMSIZ, "%s", id->host_if);
	out[0] = 'i'; /* host_if starts with "sbx" (net_alloc_set_ifprefix) */
}

/* The ifb called name, made if absent (one of another kind is refused), up;
 * its ifindex into *ifindex. */
static int ifb_ensure(struct nl *nl, const char *name, int *ifindex)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
				      sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	struct nlattr *li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "ifb");
	mnl_attr_nest_end(nlh, li);
	int ret = nl_talk(nl, nlh, NULL, NULL);
	if (ret == -EEXIST) {
		char kind[IFNAMSIZ];
		if ((ret = nl_link_kind(nl, name, kind)) == 0 && strcmp(kind, "ifb") != 0)
			ret = -EEXIST;
	}
	if (ret < 0)
		return ret;
	*ifindex = (int)if_nametoindex(name);
	if (!*ifindex)
		return -ENODEV;
	return nl_link_set_up(nl, *ifindex);
}

/* The port's ingress filter at priority 2, after the anti-spoofing one
 * (priority 1, which ends the frames it passes with NET_FILTER_PASS): u32
 * matching every frame, mirred redirecting it to ifb_index's egress. The ifb
 * then hands it back to the port's receive path, past its filters. ifb_index
 * 0 removes it. */
static int redirect_set(struct nl *nl, int ifindex, int ifb_index)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_DELTFILTER, 0, sizeof(struct tcmsg));
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
	tcm->tcm_info = TC_H_MAKE(2u << 16, htons(ETH_P_ALL));
	int ret = nl_talk(nl, nlh, NULL, NULL);
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL)
		return ret;
	if (!ifb_index)
		return 0;
	nlh = nl_msg(nl, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct tcmsg));
	tcm = mnl_nlmsg_get_payload(nlh);
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
	tcm->tcm_info = TC_H_MAKE(2u << 16, htons(ETH_P_ALL));
	mnl_attr_put_strz(nlh, TCA_KIND, "u32");
	struct nlattr *opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	struct {
		struct tc_u32_sel sel;
		struct tc_u32_key key; /* mask 0: every frame */
	} sel;
	memset(&sel, 0, sizeof(sel));
	sel.sel.flags = TC_U32_TERMINAL;
	sel.sel.nkeys = 1;
	mnl_attr_put(nlh, TCA_U32_SEL, sizeof(sel), &sel);
	struct nlattr *acts = mnl_attr_nest_start(nlh, TCA_U32_ACT);
	struct nlattr *act = mnl_attr_nest_start(nlh, 1);
	mnl_attr_put_strz(nlh, TCA_ACT_KIND, "mirred");
	struct nlattr *aopts = mnl_attr_nest_start(nlh, TCA_ACT_OPTIONS);
	struct tc_mirred m;
	memset(&m, 0, sizeof(m));
	m.action = TC_ACT_STOLEN;
	m.eaction = TCA_EGRESS_REDIR;
	m.ifindex = (uint32_t)ifb_index;
	mnl_attr_put(nlh, TCA_MIRRED_PARMS, sizeof(m), &m);
	mnl_attr_nest_end(nlh, aopts);
	mnl_attr_nest_end(nlh, act);
	mnl_attr_nest_end(nlh, acts);
	mnl_attr_nest_end(nlh, opts);
	return nl_talk(nl, nlh, NULL, NULL);
}

int net_shape_apply_ingress(const struct net_ident *id, uint64_t rate_bps, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = nl_new(&nl, e);
	if (ret < 0)
		return ret;
	char ifb[IFNAMSIZ];
	net_ifb_name(id, ifb);
	int ifindex = (int)if_nametoindex(id->host_if), ifb_index = 0;
	if (!ifindex)
		return err_set(e, -ENODEV, "%s: cannot shape traffic: %s does not exist", id->sbx,
			       id->host_if);
	if (rate_bps == 0) {
		ret = redirect_set(nl, ifindex, 0);
		int r2 = nl_link_del(nl, ifb);
		if (ret == 0 && r2 < 0 && r2 != -ENODEV)
			ret = r2;
		return ret < 0 ? err_set(e, ret, "%s: cannot remove the rate of what it sends: %s%s",
					 id->sbx, strerror(-ret), nl_why(nl))
			       : 0;
	}
	if ((ret = ifb_ensure(nl, ifb, &ifb_index)) < 0)
		return err_set(e, ret, "%s: cannot make ifb device %s for the rate of what it sends: "
			       "%s%s", id->sbx, ifb, strerror(-ret), nl_why(nl));
	if ((ret = tbf_set(nl, ifb_index, rate_bps)) < 0 || (ret = redirect_set(nl, ifindex, ifb_index)) < 0) {
		err_set(e, ret, "%s: cannot set rate %llu bit/s on what it sends (%s through %s): %s%s",
			id->sbx, (unsigned long long)rate_bps, id->host_if, ifb, strerror(-ret),
			nl_why(nl));
		nl_link_del(nl, ifb);
		return ret;
	}
	return 0;
}
