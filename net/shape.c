/* Traffic shaping for `rate=`: tc-style rate parsing and a token bucket (tbf)
 * root qdisc set over rtnetlink, on the host end of a sandbox's veth (towards
 * the sandbox) and on its eth0 (from it). Runs on the engine's background
 * worker, off the create path; these calls only talk to the kernel. */
#define _GNU_SOURCE
#include "nl.h"

#include <errno.h>
#include <linux/pkt_sched.h>
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
