/* Anti-spoofing and network policy on the bridge: a small eBPF program,
 * assembled and loaded once per daemon (and policy), attached with cls_bpf in
 * direct-action mode to the clsact ingress of the host end of every
 * sandbox's veth or TAP (what the sandbox sends). The port's identity (MAC,
 * IP, host number, gateway) is an entry of one hash map keyed by the port's
 * ifindex, written at attach: a create pays a map update and two filters,
 * not a verifier run; a frame on a port without an entry is dropped. Needs only cls_bpf and clsact, which kernels
 * without flower, gact or ebtables still have, and no compiler at run time.
 * With policy on (policy.c), the IPv4 path goes on to the policy's maps, and
 * a second program on the clsact egress (what the sandbox receives) records
 * the replies the sandbox may send. */
#define _GNU_SOURCE
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

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
#define MOV32_REG(d, s) INSN(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define ALU32_IMM(op, d, i) INSN(BPF_ALU | (op) | BPF_K, d, 0, 0, i)
#define ALU32_REG(op, d, s) INSN(BPF_ALU | (op) | BPF_X, d, s, 0, 0)
#define ADD64_REG(d, s) INSN(BPF_ALU64 | BPF_ADD | BPF_X, d, s, 0, 0)
#define JLT_IMM(d, i) INSN(BPF_JMP | BPF_JLT | BPF_K, d, 0, 0, i)
#define JSET32_IMM(d, i) INSN(BPF_JMP32 | BPF_JSET | BPF_K, d, 0, 0, i)
#define JEQ_IMM(d, i) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, 0, i)
#define JNE_IMM(d, i) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, 0, i)
#define ST(sz, o, i) INSN(BPF_ST | (sz) | BPF_MEM, BPF_REG_10, 0, o, i)
#define STX(sz, o, s) INSN(BPF_STX | (sz) | BPF_MEM, BPF_REG_10, s, o, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define JNE32_REG(d, s) INSN(BPF_JMP32 | BPF_JNE | BPF_X, d, s, 0, 0)

/* A port's identity, the value of the identity map (key: its ifindex). The
 * programs read it through r6; offsets below. */
struct port_ident {
	uint8_t mac[6];
	uint16_t pad;
	uint32_t ip;      /* network order */
	uint32_t host;    /* the rule map's host number */
	uint32_t gateway; /* network order */
};
#define ID_MAC 0
#define ID_IP 8
#define ID_HOST 12
#define ID_GW 16
#define IDENT_MAX 65536

/* The programs and the identity map, made at the first attach; the programs
 * again after net_policy_init or _fini (they hold the policy's maps). */
static struct {
	pthread_mutex_t lock;
	int ident, in, eg;
	bool loaded;
} filt = {PTHREAD_MUTEX_INITIALIZER, -1, -1, -1, false};

enum {
	L_DROP, L_PASS, L_IPV4, L_ARP, L_POLICY, L_L4, L_NOL4, L_C2, L_C3, L_RULE, L_NORULE,
	L_REPLY, L_OUTSIDE, L_DEFAULT, L_NOTDNS, L_COUNT
};

struct prog {
	struct bpf_insn insn[256];
	int n;
	int label[L_COUNT];
	struct { int at, label; } fix[96];
	int nfix;
};

static void emit(struct prog *p, struct bpf_insn i) { p->insn[p->n++] = i; }

/* r1 = the map of fd (a 16-byte load the kernel resolves). */
static void emit_map(struct prog *p, int fd)
{
	emit(p, INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, fd));
	emit(p, INSN(0, 0, 0, 0, 0));
}

/* r0 = bpf_map_lookup_elem(map fd, fp + key_off). */
static void emit_lookup(struct prog *p, int fd, int key_off)
{
	emit_map(p, fd);
	emit(p, MOV64_REG(BPF_REG_2, BPF_REG_10));
	emit(p, ADD64_IMM(BPF_REG_2, key_off));
	emit(p, CALL(BPF_FUNC_map_lookup_elem));
}

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

/* Drops unless the packet's [r2+off, r2+off+n) is the port's [r6+id_off, +n)
 * (n 4 or 6). */
static void check_ident(struct prog *p, int off, int id_off, int n)
{
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_2, off));
	emit(p, LDX(BPF_W, BPF_REG_4, BPF_REG_6, id_off));
	emit_jump(p, JNE32_REG(BPF_REG_5, BPF_REG_4), L_DROP);
	if (n == 6) {
		emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, off + 4));
		emit(p, LDX(BPF_H, BPF_REG_4, BPF_REG_6, id_off + 4));
		emit_jump(p, JNE32_REG(BPF_REG_5, BPF_REG_4), L_DROP);
	}
}

/* The port's identity: r6 = its entry in the identity map (by the packet's
 * ifindex; none: to `none`), r2 = data, r3 = data_end. r1 is the context. */
static void load_ident(struct prog *p, int none)
{
	emit(p, MOV64_REG(BPF_REG_6, BPF_REG_1));
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_6, offsetof(struct __sk_buff, ifindex)));
	emit(p, STX(BPF_W, -84, BPF_REG_5));
	emit_lookup(p, filt.ident, -84);
	emit_jump(p, JEQ_IMM(BPF_REG_0, 0), none);
	emit(p, MOV64_REG(BPF_REG_7, BPF_REG_0));
	emit(p, LDX(BPF_W, BPF_REG_2, BPF_REG_6, offsetof(struct __sk_buff, data)));
	emit(p, LDX(BPF_W, BPF_REG_3, BPF_REG_6, offsetof(struct __sk_buff, data_end)));
	emit(p, MOV64_REG(BPF_REG_6, BPF_REG_7));
}

/* Drops unless the packet holds at least len bytes. */
static void check_len(struct prog *p, int len)
{
	emit(p, MOV64_REG(BPF_REG_4, BPF_REG_2));
	emit(p, ADD64_IMM(BPF_REG_4, len));
	emit_jump(p, JGT_REG(BPF_REG_4, BPF_REG_3), L_DROP);
}

/* Loads into r7 the destination, r9 the protocol and r8 the first four bytes
 * of TCP, UDP or ICMP (ports as they are on the wire; 0 for a later fragment
 * or another protocol), with r2 = data and r3 = data_end and 34 bytes there.
 * A header that does not fit goes to `short_label`. */
static void load_l4(struct prog *p, bool dst, int short_label)
{
	uint16_t frag = htons(0x1fff);
	emit(p, LDX(BPF_W, BPF_REG_7, BPF_REG_2, ETH_HLEN + (dst ? 16 : 12)));
	emit(p, LDX(BPF_B, BPF_REG_9, BPF_REG_2, ETH_HLEN + 9));
	emit(p, MOV64_IMM(BPF_REG_8, 0));
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, ETH_HLEN + 6));
	emit_jump(p, JSET32_IMM(BPF_REG_5, raw(&frag, 2)), L_NOL4);
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_TCP), L_L4);
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_UDP), L_L4);
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_ICMP), L_L4);
	emit_jump(p, JA(), L_NOL4);
	place(p, L_L4);
	emit(p, LDX(BPF_B, BPF_REG_5, BPF_REG_2, ETH_HLEN));
	emit(p, ALU32_IMM(BPF_AND, BPF_REG_5, 0xf));
	emit(p, ALU32_IMM(BPF_LSH, BPF_REG_5, 2));
	emit_jump(p, JLT_IMM(BPF_REG_5, 20), short_label);
	emit(p, MOV64_REG(BPF_REG_4, BPF_REG_2));
	emit(p, ADD64_REG(BPF_REG_4, BPF_REG_5));
	emit(p, MOV64_REG(BPF_REG_1, BPF_REG_4));
	emit(p, ADD64_IMM(BPF_REG_1, ETH_HLEN + 4));
	emit_jump(p, JGT_REG(BPF_REG_1, BPF_REG_3), short_label);
	emit(p, LDX(BPF_W, BPF_REG_8, BPF_REG_4, ETH_HLEN));
	place(p, L_NOL4);
}

/* The flow key at fp-40: {own ip, peer (r7), ports (r8, 0 for ICMP), proto}. */
static void flow_key(struct prog *p)
{
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_6, ID_IP));
	emit(p, STX(BPF_W, -40, BPF_REG_5));
	emit(p, STX(BPF_W, -36, BPF_REG_7));
	emit(p, MOV64_REG(BPF_REG_5, BPF_REG_8));
	emit(p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_9, 0, 1, IPPROTO_ICMP));
	emit(p, MOV64_IMM(BPF_REG_5, 0));
	emit(p, STX(BPF_W, -32, BPF_REG_5));
	emit(p, STX(BPF_W, -28, BPF_REG_9));
}

/* The verdict of policy.c's maps for an IPv4 packet the sandbox sends
 * (r2 = data, r3 = data_end, 34 bytes there). */
static void build_policy(struct prog *p, const struct net_policy_maps *m)
{
	load_l4(p, true, L_DROP);
	/* The rule key at fp-16: {96, host, proto, 0, port, dst}. */
	emit(p, ST(BPF_W, -16, 96));
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_6, ID_HOST));
	emit(p, STX(BPF_W, -12, BPF_REG_5));
	emit(p, STX(BPF_W, -4, BPF_REG_7));
	emit(p, ST(BPF_W, -8, 0));
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_TCP), L_POLICY);
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_UDP), L_POLICY);
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_ICMP), L_C2);
	emit_jump(p, JA(), L_C3);
	place(p, L_POLICY); /* TCP, UDP: (proto, port, dst) */
	emit(p, STX(BPF_B, -8, BPF_REG_9));
	emit(p, MOV64_REG(BPF_REG_5, BPF_REG_8));
	emit(p, ALU32_IMM(BPF_RSH, BPF_REG_5, 16));
	emit(p, STX(BPF_H, -6, BPF_REG_5));
	emit_lookup(p, m->rules, -16);
	emit_jump(p, JNE_IMM(BPF_REG_0, 0), L_RULE);
	place(p, L_C2); /* (proto, any port, dst) */
	emit(p, STX(BPF_B, -8, BPF_REG_9));
	emit(p, ST(BPF_H, -6, 0));
	emit_lookup(p, m->rules, -16);
	emit_jump(p, JNE_IMM(BPF_REG_0, 0), L_RULE);
	place(p, L_C3); /* (any, dst) */
	emit(p, ST(BPF_W, -8, 0));
	emit_lookup(p, m->rules, -16);
	emit_jump(p, JNE_IMM(BPF_REG_0, 0), L_RULE);
	/* No rule: internal destinations are closed, but for a ping of the gateway. */
	emit(p, ST(BPF_W, -24, 32));
	emit(p, STX(BPF_W, -20, BPF_REG_7));
	emit_lookup(p, m->internal, -24);
	emit_jump(p, JEQ_IMM(BPF_REG_0, 0), L_OUTSIDE);
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_6, ID_GW));
	emit_jump(p, JNE32_REG(BPF_REG_7, BPF_REG_5), L_REPLY);
	if (m->dns) { /* the daemon's DNS on the gateway: port 53, UDP or TCP */
		uint16_t dns = htons(53);
		emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_ICMP), L_NOTDNS);
		emit(p, MOV32_REG(BPF_REG_5, BPF_REG_8));
		emit(p, ALU32_IMM(BPF_RSH, BPF_REG_5, 16));
		emit_jump(p, JEQ32_IMM(BPF_REG_5, raw(&dns, 2)), L_PASS);
		place(p, L_NOTDNS);
	}
	emit_jump(p, JNE32_IMM(BPF_REG_9, IPPROTO_ICMP), L_REPLY);
	emit(p, MOV32_REG(BPF_REG_5, BPF_REG_8));
	emit(p, ALU32_IMM(BPF_AND, BPF_REG_5, 0xff));
	emit_jump(p, JEQ32_IMM(BPF_REG_5, 8), L_PASS); /* echo request */
	emit_jump(p, JA(), L_REPLY);
	place(p, L_OUTSIDE); /* the sandbox's default, else the daemon's */
	emit(p, ST(BPF_W, -8, 0xff));
	emit(p, ST(BPF_W, -4, 0));
	emit_lookup(p, m->rules, -16);
	emit_jump(p, JNE_IMM(BPF_REG_0, 0), L_RULE);
	emit_jump(p, JA(), m->egress_allow ? L_PASS : L_REPLY);
	place(p, L_RULE);
	emit(p, LDX(BPF_W, BPF_REG_5, BPF_REG_0, 0));
	emit_jump(p, JNE32_IMM(BPF_REG_5, 0), L_PASS);
	place(p, L_REPLY); /* dropped, unless it answers what reached the sandbox */
	flow_key(p);
	emit_lookup(p, m->flows, -40);
	emit_jump(p, JNE_IMM(BPF_REG_0, 0), L_PASS);
	emit_jump(p, JA(), L_DROP);
}

static void build(struct prog *p, const struct net_policy_maps *m)
{
	uint16_t eth_ip = htons(ETH_P_IP), eth_arp = htons(ETH_P_ARP);
	uint16_t arp_eth = htons(1);
	const uint8_t eth_ipv4_lens[2] = { ETH_ALEN, 4 };

	memset(p, 0, sizeof(*p));
	/* A VLAN tag would carry the frame past the IPv4 checks: none allowed. */
	emit(p, LDX(BPF_W, BPF_REG_0, BPF_REG_1, offsetof(struct __sk_buff, vlan_present)));
	emit_jump(p, JNE32_IMM(BPF_REG_0, 0), L_DROP);
	load_ident(p, L_DROP);
	check_len(p, ETH_HLEN);
	check_ident(p, ETH_ALEN, ID_MAC, 6); /* Ethernet source */
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, 12));
	emit_jump(p, JEQ32_IMM(BPF_REG_5, raw(&eth_ip, 2)), L_IPV4);
	emit_jump(p, JEQ32_IMM(BPF_REG_5, raw(&eth_arp, 2)), L_ARP);
	emit_jump(p, JA(), L_DROP); /* IPv6 and everything else: not ours to allow */

	place(p, L_IPV4);
	check_len(p, ETH_HLEN + 20);
	check_ident(p, ETH_HLEN + 12, ID_IP, 4); /* saddr */
	if (m)
		build_policy(p, m);
	else
		emit_jump(p, JA(), L_PASS);

	place(p, L_ARP);
	check_len(p, ETH_HLEN + 28);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, ETH_HLEN + 0)); /* hardware type */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(&arp_eth, 2)), L_DROP);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, ETH_HLEN + 2)); /* protocol type */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(&eth_ip, 2)), L_DROP);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, ETH_HLEN + 4)); /* address lengths */
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(eth_ipv4_lens, 2)), L_DROP);
	check_ident(p, ETH_HLEN + 8, ID_MAC, 6); /* sender hardware address */
	check_ident(p, ETH_HLEN + 14, ID_IP, 4); /* sender protocol address */

	place(p, L_PASS);
	emit(p, MOV64_IMM(BPF_REG_0, NET_FILTER_PASS));
	emit(p, EXIT());
	place(p, L_DROP);
	emit(p, MOV64_IMM(BPF_REG_0, TC_ACT_SHOT));
	emit(p, EXIT());
	resolve(p);
}

/* What the sandbox receives: each TCP, UDP or ICMP packet's reverse goes into
 * the replies table, so the ingress program lets the sandbox answer it.
 * Never drops. */
static void build_egress(struct prog *p, const struct net_policy_maps *m)
{
	uint16_t eth_ip = htons(ETH_P_IP);
	memset(p, 0, sizeof(*p));
	load_ident(p, L_PASS);
	emit(p, MOV64_REG(BPF_REG_4, BPF_REG_2));
	emit(p, ADD64_IMM(BPF_REG_4, ETH_HLEN + 20));
	emit_jump(p, JGT_REG(BPF_REG_4, BPF_REG_3), L_PASS);
	emit(p, LDX(BPF_H, BPF_REG_5, BPF_REG_2, 12));
	emit_jump(p, JNE32_IMM(BPF_REG_5, raw(&eth_ip, 2)), L_PASS);
	load_l4(p, false, L_PASS);
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_TCP), L_POLICY);
	emit_jump(p, JEQ32_IMM(BPF_REG_9, IPPROTO_UDP), L_POLICY);
	emit_jump(p, JNE32_IMM(BPF_REG_9, IPPROTO_ICMP), L_PASS);
	place(p, L_POLICY); /* the reply's ports: these swapped */
	emit(p, MOV32_REG(BPF_REG_5, BPF_REG_8));
	emit(p, ALU32_IMM(BPF_RSH, BPF_REG_5, 16));
	emit(p, ALU32_IMM(BPF_LSH, BPF_REG_8, 16));
	emit(p, ALU32_REG(BPF_OR, BPF_REG_8, BPF_REG_5));
	flow_key(p);
	emit_lookup(p, m->flows, -40);
	emit_jump(p, JNE_IMM(BPF_REG_0, 0), L_PASS); /* known: no write per packet */
	emit(p, ST(BPF_W, -44, 1));
	emit_map(p, m->flows);
	emit(p, MOV64_REG(BPF_REG_2, BPF_REG_10));
	emit(p, ADD64_IMM(BPF_REG_2, -40));
	emit(p, MOV64_REG(BPF_REG_3, BPF_REG_10));
	emit(p, ADD64_IMM(BPF_REG_3, -44));
	emit(p, MOV64_IMM(BPF_REG_4, BPF_ANY));
	emit(p, CALL(BPF_FUNC_map_update_elem));
	place(p, L_PASS);
	emit(p, MOV64_IMM(BPF_REG_0, TC_ACT_OK));
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

/* The filter of one direction (TC_H_MIN_INGRESS or _EGRESS), made or replaced. */
static int filter_add(struct nl *nl, int ifindex, int prog_fd, uint32_t dir)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE,
				      sizeof(struct tcmsg));
	struct tcmsg *tcm = mnl_nlmsg_get_payload(nlh);
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_MAKE(TC_H_CLSACT, dir);
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

static int load_or_explain(const struct prog *p, const char *who, struct err *e)
{
	int fd = prog_load(p, NULL, 0);
	if (fd >= 0)
		return fd;
	/* Load again with the verifier log only to explain the failure. */
	static __thread char log[8192];
	log[0] = '\0';
	prog_load(p, log, sizeof(log));
	size_t n = strlen(log);
	while (n && log[n - 1] == '\n')
		log[--n] = '\0';
	char *last = strrchr(log, '\n'); /* the verifier's verdict ends the log */
	return err_set(e, fd, "%s: cannot load the anti-spoofing program: %s%s%s", who,
		       strerror(-fd), log[0] ? "; verifier: " : "", last ? last + 1 : log);
}

/* Entries of ports that are gone (a veth goes with its sandbox's network
 * namespace, unseen): made room for when the map is full. */
static void ident_gc(void)
{
	uint32_t *dead = malloc(IDENT_MAX * sizeof(*dead)), k, next;
	size_t n = 0;
	char name[IF_NAMESIZE];
	for (const uint32_t *prev = NULL; dead && n < IDENT_MAX &&
	     nl_bpf_map_op(BPF_MAP_GET_NEXT_KEY, filt.ident, prev, &next) == 0; prev = &k) {
		k = next;
		if (!if_indextoname(k, name))
			dead[n++] = k;
	}
	for (size_t i = 0; i < n; i++)
		nl_bpf_map_op(BPF_MAP_DELETE_ELEM, filt.ident, &dead[i], NULL);
	free(dead);
}

/* filt.lock held: the identity map and the programs, made when missing. */
static int filters_ready(const char *who, struct err *e)
{
	if (filt.ident < 0) {
		int fd = nl_bpf_map_create(BPF_MAP_TYPE_HASH, sizeof(uint32_t),
					   sizeof(struct port_ident), IDENT_MAX, BPF_F_NO_PREALLOC,
					   "sbx_ports");
		if (fd < 0)
			return err_set(e, fd, "%s: cannot create the anti-spoofing filter's map: %s",
				       who, strerror(-fd));
		filt.ident = fd;
	}
	if (filt.loaded)
		return 0;
	const struct net_policy_maps *m = net_policy_enabled() ? net_policy_maps() : NULL;
	static struct prog p; /* 3 KB: off the stack; under filt.lock */
	build(&p, m);
	int in = load_or_explain(&p, who, e), eg = -1;
	if (in < 0)
		return in;
	if (m) {
		build_egress(&p, m);
		if ((eg = load_or_explain(&p, who, e)) < 0) {
			close(in);
			return eg;
		}
	}
	filt.in = in;
	filt.eg = eg;
	filt.loaded = true;
	return 0;
}

void nl_spoof_forget(void)
{
	pthread_mutex_lock(&filt.lock);
	if (filt.in >= 0)
		close(filt.in);
	if (filt.eg >= 0)
		close(filt.eg);
	filt.in = filt.eg = -1;
	filt.loaded = false;
	pthread_mutex_unlock(&filt.lock);
}

/* filt.lock held: notes id as the identity of port ifindex. */
static int ident_put(int ifindex, const struct net_ident *id, struct err *e)
{
	struct port_ident v = {.ip = id->ip.s_addr, .host = id->host,
			       .gateway = id->gateway.s_addr};
	memcpy(v.mac, id->mac, sizeof(v.mac));
	uint32_t k = (uint32_t)ifindex;
	int r = filters_ready(id->sbx, e);
	if (r < 0)
		return r;
	if ((r = nl_bpf_map_op(BPF_MAP_UPDATE_ELEM, filt.ident, &k, &v)) == -E2BIG) {
		ident_gc();
		r = nl_bpf_map_op(BPF_MAP_UPDATE_ELEM, filt.ident, &k, &v);
	}
	if (r < 0)
		return err_set(e, r, "%s: cannot note its identity for the anti-spoofing filter: %s",
			       id->sbx, strerror(-r));
	return 0;
}

/* Notes id (when not NULL: a port made ahead has none yet) as the identity
 * of port ifindex and returns copies of the programs' fds (*eg -1 without
 * policy). */
static int filters_get(int ifindex, const struct net_ident *id, int *in, int *eg, struct err *e)
{
	*in = *eg = -1;
	pthread_mutex_lock(&filt.lock);
	int r = id ? ident_put(ifindex, id, e) : filters_ready("a veth made ahead", e);
	if (r == 0 && ((*in = fcntl(filt.in, F_DUPFD_CLOEXEC, 0)) < 0 ||
		       (filt.eg >= 0 && (*eg = fcntl(filt.eg, F_DUPFD_CLOEXEC, 0)) < 0))) {
		r = err_set(e, -errno, "%s: cannot copy the filter's fd: %s",
			    id ? id->sbx : "a veth made ahead", strerror(errno));
		if (*in >= 0)
			close(*in);
		*in = -1;
	}
	pthread_mutex_unlock(&filt.lock);
	return r;
}

int nl_spoof_note(int ifindex, const struct net_ident *id, struct err *e)
{
	pthread_mutex_lock(&filt.lock);
	int r = ident_put(ifindex, id, e);
	pthread_mutex_unlock(&filt.lock);
	return r;
}

void nl_spoof_detach(int ifindex)
{
	uint32_t k = (uint32_t)ifindex;
	pthread_mutex_lock(&filt.lock);
	if (filt.ident >= 0)
		nl_bpf_map_op(BPF_MAP_DELETE_ELEM, filt.ident, &k, NULL);
	pthread_mutex_unlock(&filt.lock);
}

int nl_spoof_attach(struct nl *nl, int ifindex, const struct net_ident *id, struct err *e)
{
	int in, eg;
	int ret = filters_get(ifindex, id, &in, &eg, e);
	if (ret < 0)
		return ret;
	_cleanup_close_ int prog_fd = in; /* the filter holds its own reference */
	_cleanup_close_ int eg_fd = eg;
	const char *who = id ? id->sbx : "a veth made ahead";
	char dev[IFNAMSIZ];
	if (!id && !if_indextoname((unsigned)ifindex, dev))
		snprintf(dev, sizeof(dev), "#%d", ifindex);
	if (id)
		snprintf(dev, sizeof(dev), "%s", id->host_if);
	ret = clsact_add(nl, ifindex);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot add a clsact qdisc to %s: %s%s", who, dev,
			       strerror(-ret), nl_why(nl));
	ret = filter_add(nl, ifindex, prog_fd, TC_H_MIN_INGRESS);
	if (ret < 0)
		return err_set(e, ret, "%s: cannot attach the anti-spoofing filter to %s: %s%s",
			       who, dev, strerror(-ret), nl_why(nl));
	if (eg_fd >= 0 && (ret = filter_add(nl, ifindex, eg_fd, TC_H_MIN_EGRESS)) < 0)
		return err_set(e, ret, "%s: cannot attach the replies filter to %s: %s%s",
			       who, dev, strerror(-ret), nl_why(nl));
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

int net_policy_reattach(const struct net_ident *id, struct err *e)
{
	int ifindex = (int)if_nametoindex(id->host_if);
	if (!ifindex)
		return -ENODEV;
	return net_spoof_attach(ifindex, id, e);
}

int net_filter_load(const struct net_ident *id, int ifindex, bool egress, struct err *e)
{
	int in, eg;
	int r = filters_get(ifindex, id, &in, &eg, e);
	if (r < 0)
		return r;
	if (egress && eg < 0) {
		close(in);
		return err_set(e, -EINVAL, "no egress program without policy");
	}
	if (eg >= 0 && !egress)
		close(eg);
	if (egress)
		close(in);
	return egress ? eg : in;
}
