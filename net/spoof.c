/* Anti-spoofing on the bridge: a small eBPF program, assembled here
 * with the sandbox's MAC and IP as immediates, attached with cls_bpf in
 * direct-action mode to the clsact ingress of the host end of its veth (what
 * the sandbox sends). Needs only cls_bpf and clsact, which kernels without
 * flower, gact or ebtables still have, and no compiler at run time. */
#define _GNU_SOURCE
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX(sz, d, s, o) INSN(BPF_LDX | (sz) | BPF_MEM, d, s, o, 0)
#define JGT_REG(d, s) INSN(BPF_JMP | BPF_JGT | BPF_X, d, s, 0, 0)
#define JNE32_IMM(d, i) INSN(BPF_JMP32 | BPF_JNE | BPF_K, d, 0, 0, i)
#define JEQ32_IMM(d, i) INSN(BPF_JMP32 | BPF_JEQ | BPF_K, d, 0, 0, i)
#define JA() INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

enum { L_DROP, L_PASS, L_IPV4, L_ARP, L_COUNT };

struct prog {
	struct bpf_insn insn[64];
	int n;
	int label[L_COUNT];
	struct { int at, label; } fix[32];
	int nfix;
};

static void emit(struct prog *p, struct bpf_insn i) { p->insn[p->n++] = i; }

static void emit_jump(struct prog *p, struct bpf_insn i, int label)
{
	p->fix[p->nfix].at = p->n;
	p->fix[p->nfix++].label = label;
	emit(p, i);
}

static void place(struct prog *p, int label) { p->label[label] = p->n; }

static void resolve(struct prog *p)
{
	for (int i = 0; i < p->nfix; i++)
		p->insn[p->fix[i].at].off = (int16_t)(p->label[p->fix[i].label] - p->fix[i].at - 1);
}

/* What a load of n bytes at p reads, as the immediate a 32-bit compare needs:
 * native byte order, since loads from the packet do not swap. */
static int32_t raw(const void *p, size_t n)
{
	uint32_t v = 0;
	if (n == 4) {
		memcpy(&v, p, 4);
	} else {
		uint16_t h;
		memcpy(&h, p, 2);
		v = h;
	}
	return (int32_t)v;
}

/* Drops unless [r2+off, r2+off+6) is mac. */
static void check_mac(struct prog *p, int off, const uint8_t mac[6])
{
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_2, off));
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(mac, 4)), L_DROP);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, off + 4));
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(mac + 4, 2)), L_DROP);
}

/* Drops unless the packet holds at least len bytes. */
static void check_len(struct prog *p, int len)
{
	emit(p, MOV64_REG(BPF_REG_4, BPF_REG_2));
	emit(p, ADD64_IMM(BPF_REG_4, len));
	emit_jump(p, JGT_REG(BPF_REG_4, BPF_REG_3), L_DROP);
}

static void build(struct prog *p, const struct net_ident *id)
{
	uint16_t eth_ip = htons(ETH_P_IP), eth_arp = htons(ETH_P_ARP);
	uint16_t arp_eth = htons(1);
	const uint8_t eth_ipv4_lens[2] = { ETH_ALEN, 4 };

	memset(p, 0, sizeof(*p));
	emit(p, MOV64_REG(BPF_REG_6, BPF_REG_1));
	/* A VLAN tag would carry the frame past the IPv4 checks: none allowed. */
	emit(p, LDX(BPF_W, BPF_REG_0, BPF_REG_6, offsetof(struct __sk_buff, vlan_present)));
	emit_jump(p, JNE32_IMM(BPF_REG_0, 0), L_DROP);
	emit(p, LDX(BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct __sk_buff, data)));
	emit(p, LDX(BPF_W, BPF_REG_3, BPF_REG_6, offsetof(struct __sk_buff, data_end)));
	check_len(p, ETH_HLEN);
	check_mac(p, ETH_ALEN, id->mac); /* Ethernet source */
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, 12));
	emit_jump(p, JEQ32_IMM(BPF_REG_5, raw(&eth_ip, 2)), L_IPV4);
	emit_jump(p, JEQ32_IMM(BPF_REG_5, raw(&eth_arp, 2)), L_ARP);
	emit_jump(p, JA(), L_DROP); /* IPv6 and everything else: not ours to allow */

	place(p, L_IPV4);
	check_len(p, ETH_HLEN + 20);
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_2, ETH_HLEN + 12)); /* saddr */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(&id->ip.s_addr, 4)), L_DROP);
	emit_jump(p, JA(), L_PASS);

	place(p, L_ARP);
	check_len(p, ETH_HLEN + 28);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, ETH_HLEN + 0)); /* hardware type */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(&arp_eth, 2)), L_DROP);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, ETH_HLEN + 2)); /* protocol type */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(&eth_ip, 2)), L_DROP);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, ETH_HLEN + 4)); /* address lengths */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(eth_ipv4_lens, 2)), L_DROP);
	check_mac(p, ETH_HLEN + 8, id->mac); /* sender hardware address */
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_2, ETH_HLEN + 14)); /* sender protocol address */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(&id->ip.s_addr, 4)), L_DROP);

	place(p, L_PASS);
	emit(p, MOV64_IMM(BPF_REG_0, TC_ACT_OK));
	emit(p, EXIT());
	place(p, L_DROP);
	emit(p, MOV64_IMM(BPF_REG_0, TC_ACT_SHOT));
	emit(p, EXIT());
	resolve(p);
}

static int prog_load(const struct prog *p, char *log, size_t log_len)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	attr.insns = (uint64_t)(uintptr_t)p->insn;
	attr.insn_cnt = (uint32_t)p->n;
	attr.license = (uint64_t)(uintptr_t)"GPL";
	snprintf(attr.prog_name, sizeof(attr.prog_name), "sbx_antispoof");
	if (log) {
		attr.log_buf = (uint64_t)(uintptr_t)log;
		attr.log_size = (uint32_t)log_len;
		attr.log_level = 1;
	}
	int fd = (int)syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

static int clsact_add(struct nl *nl, int ifindex)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct tcmsg));
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0);
	tcm->tcm_parent = TC_H_CLSACT;
	mnl_attr_put_strz(nlh, TCA_KIND, "clsact");
	int ret = nl_talk(nl, nlh, NULL, NULL);
	return ret == -EEXIST ? 0 : ret;
}

static int filter_add(struct nl *nl, int ifindex, int prog_fd)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL,
				      sizeof(struct tcmsg));
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
	tcm->tcm_handle = 1;
	tcm->tcm_info = TC_H_MAKE(1u << 16, htons(ETH_P_ALL)); /* priority 1, every protocol */
	mnl_attr_put_strz(nlh, TCA_KIND, "bpf");
	struct nlattr *opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put_u32(nlh, TCA_BPF_FD, (uint32_t)prog_fd);
	mnl_attr_put_strz(nlh, TCA_BPF_NAME, "sbx_antispoof");
	mnl_attr_put_u32(nlh, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
	mnl_attr_nest_end(nlh, opts);
	return nl_talk(nl, nlh, NULL, NULL);
}

int nl_spoof_attach(struct nl *nl, int ifindex, const struct net_ident *id, struct err *e)
{
	struct prog p;
	build(&p, id);
	int fd = prog_load(&p, NULL, 0);
	if (fd < 0) {
		/* Load again with the verifier log only to explain the failure. */
		static __thread char log[8192];
		log[0] = '\0';
		prog_load(&p, log, sizeof(log));
		size_t n = strlen(log);
		while (n && log[n - 1] == '\n')
			log[--n] = '\0';
		char *last = strrchr(log, '\n'); /* the verifier's verdict ends the log */
		return err_set(e, fd, "%s: cannot load the anti-spoofing program: %s%s%s", id->sbx,
			       strerror(-fd), log[0] ? "; verifier: " : "", last ? last + 1 : log);
	}
	_cleanup_close_ int prog_fd = fd; /* the filter holds its own reference */
	int ret = clsact_add(nl, ifindex);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot add a clsact qdisc to %s: %s%s", id->sbx,
			       id->host_if, strerror(-ret), nl_why(nl));
	ret = filter_add(nl, ifindex, prog_fd);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot attach the anti-spoofing filter to %s: %s%s",
			       id->sbx, id->host_if, strerror(-ret), nl_why(nl));
	return 0;
}

int net_spoof_attach(int ifindex, const struct net_ident *id, struct err *e)
{
	_cleanup_nl_ struct nl *nl = NULL;
	int ret = nl_new(&nl, e);
	if (ret < 0)
		return ret;
	return nl_spoof_attach(nl, ifindex, id, e);
}
