/* Unit tests of the network policy: the rule parser of engine/ctl.c and its
 * text form (read back in the same syntax); then, as root, the filter's
 * programs themselves run with BPF_PROG_TEST_RUN on packets made here
 * (nothing is attached or sent): default isolation, rules, the default for
 * the outside, replies, and the cost per packet with 0, 10 and 1000 rules
 * and per rule written (printed, not asserted). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../engine/ctl.h"
#include "../../net/net.h"
#include "../../net/nl.h"
#include "unit.h"

/* Splits line into words (as ctl does) and parses a rule. */
static int parse(const char *line, struct net_rule *r, struct err *e)
{
	struct ctl_cmd cmd;
	int ret = ctl_split(line, strlen(line), &cmd, e);
	return ret < 0 ? ret : ctl_parse_rule(cmd.argc, cmd.argv, r, e);
}

static bool round_trips(const char *line)
{
	struct net_rule r;
	struct err e = {0};
	char text[NET_RULE_TEXT_MAX];
	if (parse(line, &r, &e) < 0)
		return false;
	net_rule_format(&r, text);
	return strcmp(text, line) == 0;
}

static void test_rule_round_trip(void)
{
	CHECK(round_trips("allow 10.0.0.0/8 tcp 443"));
	CHECK(round_trips("deny 192.168.1.0/24 udp"));
	CHECK(round_trips("allow 0.0.0.0/0"));
	CHECK(round_trips("allow 10.1.2.3/32 icmp"));
	CHECK(round_trips("allow sandbox web-1"));
	CHECK(round_trips("deny sandbox db"));
	CHECK(round_trips("deny all"));
	CHECK(round_trips("allow all"));
	CHECK(round_trips("allow ok.test tcp 443"));
	CHECK(round_trips("deny *.ads.example.com"));
	CHECK(round_trips("allow localhost udp"));
	/* Names are kept in lower case. */
	struct net_rule d;
	struct err de = {0};
	CHECK(parse("allow OK.Test icmp", &d, &de) == 0 && d.kind == NET_RULE_DOMAIN &&
	      !strcmp(d.domain, "ok.test") && d.proto == IPPROTO_ICMP);
	/* A bare address is a /32, written back with it. */
	struct net_rule r;
	struct err e = {0};
	char text[NET_RULE_TEXT_MAX];
	CHECK(parse("allow 10.1.2.3 tcp 22", &r, &e) == 0);
	net_rule_format(&r, text);
	CHECK(!strcmp(text, "allow 10.1.2.3/32 tcp 22"));
	CHECK(r.allow && r.kind == NET_RULE_CIDR && r.plen == 32 && r.proto == IPPROTO_TCP &&
	      r.port == 22 && r.addr.s_addr == inet_addr("10.1.2.3"));
}

static void expect_einval(const char *line, const char *words)
{
	struct net_rule r;
	memset(&r, 0x5a, sizeof(r));
	struct err e = {0};
	int ret = parse(line, &r, &e);
	CHECK(ret == -EINVAL);
	CHECK(e.code == -EINVAL && e.msg[0]);
	if (!strstr(e.msg, words))
		fprintf(stderr, "'%s': '%s' lacks '%s'\n", line, e.msg, words);
	CHECK(strstr(e.msg, words) != NULL);
	CHECK(((unsigned char *)&r)[0] == 0x5a); /* untouched on failure */
}

static void test_rule_errors(void)
{
	expect_einval("allow", "usage");
	expect_einval("permit 10.0.0.0/8", "usage");
	expect_einval("allow 10.0.0.1/8", "host bits set: the network is 10.0.0.0/8");
	expect_einval("allow 10.0.0.0/33", "not an IPv4 address or CIDR");
	expect_einval("allow 10.0.0/8", "not an IPv4 address or CIDR");
	expect_einval("allow 10.0.0.0/", "not an IPv4 address or CIDR");
	expect_einval("allow 10.0.0.0/-1", "not an IPv4 address or CIDR");
	expect_einval("allow 10.0.0.0/008", "not an IPv4 address or CIDR");
	expect_einval("allow exa_mple.com tcp 443", "neither a CIDR nor a domain name");
	expect_einval("allow -x.com", "neither a CIDR nor a domain name");
	expect_einval("deny All", "a keyword in another case");
	expect_einval("allow SANDBOX tcp", "a keyword in another case");
	expect_einval("allow ok.test icmp 8", "icmp has no ports");
	expect_einval("allow ok.test tcp 80 extra", "usage");
	expect_einval("allow 10.0.0.0/8 sctp", "not tcp, udp or icmp");
	expect_einval("allow 10.0.0.0/8 tcp 0", "from 1 to 65535");
	expect_einval("allow 10.0.0.0/8 tcp 65536", "from 1 to 65535");
	expect_einval("allow 10.0.0.0/8 tcp http", "from 1 to 65535");
	expect_einval("allow 10.0.0.0/8 icmp 8", "icmp has no ports");
	expect_einval("allow 10.0.0.0/8 tcp 80 extra", "usage");
	expect_einval("allow sandbox", "usage: allow sandbox NAME");
	expect_einval("allow sandbox a b", "usage: allow sandbox NAME");
	expect_einval("allow sandbox .hidden", "not a sandbox name");
	expect_einval("deny all now", "takes nothing after it");
}

/* expose|unexpose lines: tcp unless a word says udp; written back (as
 * NAME/net lists them) with the protocol and the host port. */
static int parse_expose(const char *line, struct net_expose *x, struct err *e)
{
	struct ctl_cmd cmd;
	int ret = ctl_split(line, strlen(line), &cmd, e);
	return ret < 0 ? ret : ctl_parse_expose(cmd.argc, cmd.argv, x, e);
}

static void expect_expose(const char *line, uint8_t proto, uint16_t port, uint16_t host_port,
			  const char *text)
{
	struct net_expose x;
	struct err e = {0};
	char out[NET_EXPOSE_TEXT_MAX];
	CHECK(parse_expose(line, &x, &e) == 0);
	CHECK(x.proto == proto && x.port == port && x.host_port == host_port);
	net_expose_format(&x, out);
	if (text && strcmp(out, text))
		fprintf(stderr, "'%s' reads back as '%s', not '%s'\n", line, out, text);
	CHECK(!text || !strcmp(out, text));
}

static void expect_expose_einval(const char *line, const char *words)
{
	struct net_expose x;
	memset(&x, 0x5a, sizeof(x));
	struct err e = {0};
	CHECK(parse_expose(line, &x, &e) == -EINVAL && e.code == -EINVAL);
	if (!strstr(e.msg, words))
		fprintf(stderr, "'%s': '%s' lacks '%s'\n", line, e.msg, words);
	CHECK(strstr(e.msg, words) != NULL);
	CHECK(x.port == 0x5a5a); /* untouched on failure */
}

static void test_expose_parse(void)
{
	expect_expose("expose 8080", IPPROTO_TCP, 8080, 8080, "expose tcp 8080 8080");
	expect_expose("expose 8080 18080", IPPROTO_TCP, 8080, 18080, "expose tcp 8080 18080");
	expect_expose("expose tcp 80 1080", IPPROTO_TCP, 80, 1080, "expose tcp 80 1080");
	expect_expose("expose udp 5353 15353", IPPROTO_UDP, 5353, 15353, "expose udp 5353 15353");
	expect_expose("expose udp 65535", IPPROTO_UDP, 65535, 65535, "expose udp 65535 65535");
	expect_expose("unexpose 8080", IPPROTO_TCP, 8080, 0, NULL);
	expect_expose("unexpose udp 53", IPPROTO_UDP, 53, 0, NULL);
	expect_expose_einval("expose", "usage: expose [tcp|udp] PORT [HOSTPORT]");
	expect_expose_einval("expose udp", "usage: expose [tcp|udp] PORT [HOSTPORT]");
	expect_expose_einval("expose 0", "from 1 to 65535");
	expect_expose_einval("expose udp 70000", "from 1 to 65535");
	expect_expose_einval("expose udp 53 0", "from 1 to 65535");
	expect_expose_einval("expose sctp 80", "protocol 'sctp' is not tcp or udp");
	expect_expose_einval("expose icmp 80", "is not tcp or udp");
	expect_expose_einval("expose 53/udp", "the protocol is a word before the port");
	expect_expose_einval("expose udp 1 2 3", "usage");
	expect_expose_einval("unexpose", "usage: unexpose [tcp|udp] PORT");
	expect_expose_einval("unexpose udp 53 1053", "usage: unexpose [tcp|udp] PORT");
}

static void test_rule_same_match(void)
{
	struct net_rule a, b;
	struct err e = {0};
	CHECK(parse("allow 10.0.0.0/8 tcp 443", &a, &e) == 0);
	CHECK(parse("deny 10.0.0.0/8 tcp 443", &b, &e) == 0);
	CHECK(net_rule_same_match(&a, &b));
	CHECK(parse("deny 10.0.0.0/8 tcp 444", &b, &e) == 0);
	CHECK(!net_rule_same_match(&a, &b));
	CHECK(parse("deny 10.0.0.0/16 tcp 443", &b, &e) == 0);
	CHECK(!net_rule_same_match(&a, &b));
	CHECK(parse("allow all", &a, &e) == 0);
	CHECK(parse("deny all", &b, &e) == 0);
	CHECK(net_rule_same_match(&a, &b));
	CHECK(parse("deny sandbox x", &b, &e) == 0);
	CHECK(!net_rule_same_match(&a, &b));
	CHECK(parse("allow ok.test tcp 80", &a, &e) == 0);
	CHECK(parse("deny ok.test tcp 80", &b, &e) == 0);
	CHECK(net_rule_same_match(&a, &b));
	CHECK(parse("deny *.ok.test tcp 80", &b, &e) == 0);
	CHECK(!net_rule_same_match(&a, &b));
	CHECK(parse("deny ok.test tcp 81", &b, &e) == 0);
	CHECK(!net_rule_same_match(&a, &b));
}

/* ---- the programs, run on packets made here ---- */

static struct net_ident a_id, b_id;
static int ingress = -1, egress = -1;

struct pkt {
	uint8_t b[64];
	size_t len;
};

static void make(struct pkt *p, const struct net_ident *from, const char *src, const char *dst,
		 uint8_t proto, uint16_t sport, uint16_t dport)
{
	memset(p, 0, sizeof(*p));
	memset(p->b, 0xff, 6);
	memcpy(p->b + 6, from->mac, 6);
	p->b[12] = 0x08;
	uint8_t *ip = p->b + 14;
	ip[0] = 0x45;
	ip[2] = 0;
	ip[3] = 40;
	ip[8] = 64;
	ip[9] = proto;
	uint32_t s = inet_addr(src), d = inet_addr(dst);
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	uint8_t *l4 = ip + 20;
	if (proto == IPPROTO_ICMP) {
		l4[0] = (uint8_t)sport; /* type */
	} else {
		l4[0] = (uint8_t)(sport >> 8);
		l4[1] = (uint8_t)sport;
		l4[2] = (uint8_t)(dport >> 8);
		l4[3] = (uint8_t)dport;
	}
	p->len = 14 + 40;
}

/* The program's return value for p (the ingress one: NET_FILTER_PASS -1, TC_ACT_SHOT 2;
 * the egress one: TC_ACT_OK 0), or -errno;
 * with repeat > 1, *ns gets the kernel's average time per run. */
static int run_prog(int fd, const struct pkt *p, uint32_t repeat, uint32_t *ns)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	uint8_t out[128];
	a.test.prog_fd = (uint32_t)fd;
	a.test.data_in = (uint64_t)(uintptr_t)p->b;
	a.test.data_size_in = (uint32_t)p->len;
	a.test.data_out = (uint64_t)(uintptr_t)out;
	a.test.data_size_out = sizeof(out);
	a.test.repeat = repeat;
	if (syscall(__NR_bpf, BPF_PROG_TEST_RUN, &a, sizeof(a)) < 0)
		return -errno;
	if (ns)
		*ns = a.test.duration;
	return (int)a.test.retval;
}

static char a_ip[INET_ADDRSTRLEN], b_ip[INET_ADDRSTRLEN];

static const char *ip_of(const struct net_ident *id)
{
	return id == &a_id ? a_ip : b_ip;
}

static int verdict(const char *dst, uint8_t proto, uint16_t sport, uint16_t dport)
{
	struct pkt p;
	make(&p, &a_id, ip_of(&a_id), dst, proto, sport, dport);
	return run_prog(ingress, &p, 1, NULL);
}

static int rule(const char *line, bool add)
{
	struct net_rule r;
	struct err e = {0};
	if (parse(line, &r, &e) < 0)
		return -EINVAL;
	struct in_addr dst = b_id.ip;
	return net_policy_put(a_id.host, &r, dst, add, &e);
}

static bool setup_progs(void)
{
	struct err e = {0};
	if (net_alloc_init("10.250.7.0/24", &e) < 0 || net_reserve("a", &a_id, &e) < 0 ||
	    net_reserve("b", &b_id, &e) < 0)
		return false;
	inet_ntop(AF_INET, &a_id.ip, a_ip, sizeof(a_ip));
	inet_ntop(AF_INET, &b_id.ip, b_ip, sizeof(b_ip));
	if (net_policy_init("10.250.7.0/24", true, &e) < 0) {
		fprintf(stderr, "policy: %s\n", e.msg);
		return false;
	}
	ingress = net_filter_load(&a_id, 1, false, &e);
	if (ingress < 0)
		fprintf(stderr, "ingress: %s\n", e.msg);
	egress = net_filter_load(&a_id, 1, true, &e);
	if (egress < 0)
		fprintf(stderr, "egress: %s\n", e.msg);
	return ingress >= 0 && egress >= 0;
}

static void test_filter_verdicts(void)
{
	if (geteuid() != 0)
		SKIP("needs root (eBPF maps and programs)");
	CHECK(setup_progs());
	if (ingress < 0 || egress < 0)
		return;
	const char *b = ip_of(&b_id), *gw = "10.250.7.1", *out = "192.0.2.10";
	/* Isolation by default: other sandboxes, the gateway, the host. */
	CHECK(verdict(b, IPPROTO_TCP, 4000, 80) == TC_ACT_SHOT);
	CHECK(verdict(b, IPPROTO_UDP, 4000, 53) == TC_ACT_SHOT);
	CHECK(verdict(b, IPPROTO_ICMP, 8, 0) == TC_ACT_SHOT);
	CHECK(verdict(gw, IPPROTO_TCP, 4000, 53) == TC_ACT_SHOT);
	CHECK(verdict("127.0.0.1", IPPROTO_TCP, 4000, 22) == TC_ACT_SHOT);
	CHECK(verdict("10.250.7.255", IPPROTO_UDP, 4000, 67) == TC_ACT_SHOT);
	CHECK(verdict(gw, IPPROTO_ICMP, 8, 0) == NET_FILTER_PASS); /* echo to the gateway */
	CHECK(verdict(gw, IPPROTO_ICMP, 13, 0) == TC_ACT_SHOT);
	/* The outside: the daemon's default (allow here). */
	CHECK(verdict(out, IPPROTO_TCP, 4000, 443) == NET_FILTER_PASS);
	/* A spoofed source never reaches the policy. */
	struct pkt p;
	make(&p, &a_id, b, out, IPPROTO_TCP, 4000, 443);
	CHECK(run_prog(ingress, &p, 1, NULL) == TC_ACT_SHOT);

	/* allow sandbox b: all of it. */
	CHECK(rule("allow sandbox b", true) == 0);
	CHECK(verdict(b, IPPROTO_TCP, 4000, 80) == NET_FILTER_PASS);
	CHECK(verdict(b, IPPROTO_ICMP, 8, 0) == NET_FILTER_PASS);
	CHECK(rule("allow sandbox b", false) == 0);
	CHECK(verdict(b, IPPROTO_TCP, 4000, 80) == TC_ACT_SHOT);

	/* One port: exactly that port; a more specific deny inside an allow. */
	CHECK(rule("allow 10.250.7.0/24 tcp 8080", true) == 0);
	CHECK(verdict(b, IPPROTO_TCP, 4000, 8080) == NET_FILTER_PASS);
	CHECK(verdict(b, IPPROTO_TCP, 4000, 8081) == TC_ACT_SHOT);
	CHECK(verdict(b, IPPROTO_UDP, 4000, 8080) == TC_ACT_SHOT);
	CHECK(rule("allow 10.250.7.0/24 udp", true) == 0);
	CHECK(verdict(b, IPPROTO_UDP, 4000, 9) == NET_FILTER_PASS);
	char line[64];
	snprintf(line, sizeof(line), "deny %s/32 udp 9", b);
	CHECK(rule(line, true) == 0);
	CHECK(verdict(b, IPPROTO_UDP, 4000, 9) == TC_ACT_SHOT);
	CHECK(verdict(b, IPPROTO_UDP, 4000, 10) == NET_FILTER_PASS);
	CHECK(rule(line, false) == 0);
	CHECK(rule("allow 10.250.7.0/24 udp", false) == 0);
	CHECK(rule("allow 10.250.7.0/24 tcp 8080", false) == 0);
	CHECK(verdict(b, IPPROTO_TCP, 4000, 8080) == TC_ACT_SHOT);

	/* deny all closes the outside; a CIDR rule opens part of it again. */
	CHECK(rule("deny all", true) == 0);
	CHECK(verdict(out, IPPROTO_TCP, 4000, 443) == TC_ACT_SHOT);
	CHECK(rule("allow 192.0.2.0/24 tcp 443", true) == 0);
	CHECK(verdict(out, IPPROTO_TCP, 4000, 443) == NET_FILTER_PASS);
	CHECK(verdict(out, IPPROTO_TCP, 4000, 80) == TC_ACT_SHOT);
	CHECK(rule("allow all", true) == 0);
	CHECK(verdict(out, IPPROTO_TCP, 4000, 80) == NET_FILTER_PASS);
	CHECK(verdict(b, IPPROTO_TCP, 4000, 80) == TC_ACT_SHOT); /* allow all: the outside only */
	CHECK(rule("allow 192.0.2.0/24 tcp 443", false) == 0);
	CHECK(rule("allow all", false) == 0);

	/* Replies: b reached a (b's own filter let it), so a may answer that flow only. */
	CHECK(verdict(b, IPPROTO_TCP, 5555, 9000) == TC_ACT_SHOT);
	make(&p, &b_id, b, ip_of(&a_id), IPPROTO_TCP, 9000, 5555);
	CHECK(run_prog(egress, &p, 1, NULL) == TC_ACT_OK);
	CHECK(verdict(b, IPPROTO_TCP, 5555, 9000) == NET_FILTER_PASS);
	CHECK(verdict(b, IPPROTO_TCP, 5556, 9000) == TC_ACT_SHOT);
	CHECK(verdict(b, IPPROTO_UDP, 5555, 9000) == TC_ACT_SHOT);

	/* One program for every port, the identity from the port's map entry:
	 * the same port noted as b's passes b's source, not a's; a port without
	 * an entry passes nothing. */
	struct err e = {0};
	int as_b = net_filter_load(&b_id, 1, false, &e);
	CHECK(as_b >= 0);
	make(&p, &a_id, ip_of(&a_id), out, IPPROTO_TCP, 4000, 443);
	CHECK(run_prog(as_b, &p, 1, NULL) == TC_ACT_SHOT);
	make(&p, &b_id, ip_of(&b_id), out, IPPROTO_TCP, 4000, 443);
	CHECK(run_prog(as_b, &p, 1, NULL) == NET_FILTER_PASS);
	nl_spoof_detach(1);
	CHECK(run_prog(as_b, &p, 1, NULL) == TC_ACT_SHOT);
	CHECK(run_prog(egress, &p, 1, NULL) == TC_ACT_OK); /* the replies one never drops */
	if (as_b >= 0)
		close(as_b);
	int as_a = net_filter_load(&a_id, 1, false, &e); /* a's again, for what follows */
	CHECK(as_a >= 0);
	if (as_a >= 0)
		close(as_a);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* With the daemon's DNS on (--dns), the gateway's port 53 passes, UDP and
 * TCP, under deny all; its other ports stay closed, as does port 53 of
 * another sandbox; a rule that names the gateway still decides. */
static void test_filter_dns(void)
{
	if (geteuid() != 0)
		SKIP("needs root (eBPF maps and programs)");
	if (ingress < 0)
		SKIP("the filter did not load (test_filter_verdicts says why)");
	const char *gw = "10.250.7.1", *b = ip_of(&b_id);
	struct err e = {0};
	CHECK(verdict(gw, IPPROTO_UDP, 4000, 53) == TC_ACT_SHOT);
	/* What a domain rule never learns: internal addresses. */
	CHECK(net_policy_internal(b_id.ip) && net_policy_internal(a_id.gateway));
	struct in_addr lo = { htonl(INADDR_LOOPBACK) }, outside = { inet_addr("192.0.2.10") };
	CHECK(net_policy_internal(lo) && !net_policy_internal(outside));
	net_policy_allow_dns(true); /* the programs are built again at the next load */
	int before = ingress;
	ingress = net_filter_load(&a_id, 1, false, &e);
	CHECK(ingress >= 0);
	if (ingress < 0) {
		ingress = before;
		return;
	}
	CHECK(rule("deny all", true) == 0);
	CHECK(verdict(gw, IPPROTO_UDP, 4000, 53) == NET_FILTER_PASS);
	CHECK(verdict(gw, IPPROTO_TCP, 4000, 53) == NET_FILTER_PASS);
	CHECK(verdict(gw, IPPROTO_UDP, 4000, 54) == TC_ACT_SHOT);
	CHECK(verdict(gw, IPPROTO_UDP, 53, 4000) == TC_ACT_SHOT); /* a source port 53 is no query */
	CHECK(verdict(b, IPPROTO_UDP, 4000, 53) == TC_ACT_SHOT);
	CHECK(verdict("192.0.2.10", IPPROTO_UDP, 4000, 53) == TC_ACT_SHOT);
	CHECK(verdict(gw, IPPROTO_ICMP, 8, 0) == NET_FILTER_PASS);
	CHECK(rule("deny 10.250.7.1/32", true) == 0);
	CHECK(verdict(gw, IPPROTO_UDP, 4000, 53) == TC_ACT_SHOT);
	CHECK(rule("deny 10.250.7.1/32", false) == 0);
	CHECK(rule("deny all", false) == 0);
	net_policy_allow_dns(false);
	close(ingress);
	ingress = net_filter_load(&a_id, 1, false, &e);
	CHECK(ingress >= 0);
	CHECK(verdict(gw, IPPROTO_UDP, 4000, 53) == TC_ACT_SHOT);
	close(before);
}

/* Whether ip becomes (want) or stops being internal within 2 s: the address
 * watch's thread reads the host's addresses again at each change. */
static bool internal_within(const char *ip, bool want)
{
	struct in_addr a = { inet_addr(ip) };
	for (int i = 0; i < 200; i++) {
		if (net_policy_internal(a) == want)
			return true;
		usleep(10000);
	}
	return false;
}

/* The child of test_host_addresses, in a network namespace of its own: its
 * exit status is a bit per step that failed. */
static int host_addresses_child(void)
{
	struct err e = {0};
	int failed = 0;
	if (unshare(CLONE_NEWNET) < 0 || system("ip link set lo up") != 0 ||
	    system("ip link add sbxut0 type veth peer name sbxut1 && ip link set sbxut0 up") != 0)
		return 0x40;
	if (net_policy_init("10.250.9.0/24", true, &e) < 0) {
		fprintf(stderr, "policy: %s\n", e.msg);
		return 0x80;
	}
	/* Added after the start: internal, at once; the outside beside it not. */
	failed |= system("ip addr add 198.51.100.7/32 dev sbxut0") != 0 ? 0x1 : 0;
	failed |= !internal_within("198.51.100.7", true) ? 0x2 : 0;
	failed |= net_policy_internal((struct in_addr){ inet_addr("198.51.100.8") }) ? 0x4 : 0;
	/* Removed: the outside again; loopback (a fixed /8) stays internal. */
	failed |= system("ip addr del 198.51.100.7/32 dev sbxut0") != 0 ? 0x1 : 0;
	failed |= !internal_within("198.51.100.7", false) ? 0x8 : 0;
	failed |= !net_policy_internal((struct in_addr){ inet_addr("127.0.0.1") }) ? 0x10 : 0;
	/* Many at once (one look covers a burst), then the link with them. */
	failed |= system("for i in $(seq 1 40); do ip addr add 198.51.100.$i/32 dev sbxut0 "
			 "|| exit 1; done") != 0 ? 0x1 : 0;
	failed |= !internal_within("198.51.100.40", true) || !internal_within("198.51.100.1", true)
			  ? 0x20 : 0;
	failed |= system("ip link del sbxut0") != 0 ? 0x1 : 0;
	failed |= !internal_within("198.51.100.40", false) ? 0x20 : 0;
	net_policy_fini();
	return failed;
}

/* A host address added after the daemon started is internal (closed to
 * sandboxes) as soon as the watch sees it; one removed is not. Before any
 * other case's net_policy_init: the child forks with no watch thread. */
static void test_host_addresses(void)
{
	if (geteuid() != 0)
		SKIP("needs root (a network namespace, eBPF maps)");
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(host_addresses_child());
	int st = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st));
	if (WIFEXITED(st) && WEXITSTATUS(st))
		fprintf(stderr, "host addresses: failed steps 0x%x (1 ip, 2 added, 4 outside, "
			"8 removed, 0x10 loopback, 0x20 a burst, 0x40 the namespace, 0x80 init)\n",
			WEXITSTATUS(st));
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Printed for the README: ns per packet for a TCP packet to another sandbox
 * that a port rule allows (3 rule lookups at most) and to one that is
 * dropped (every lookup, the internal one and the replies table), with 0,
 * 10 and 1000 rules; and the time to write one rule. */
static void test_filter_cost(void)
{
	if (geteuid() != 0)
		SKIP("needs root (eBPF maps and programs)");
	if (ingress < 0)
		SKIP("no programs (see test_filter_verdicts)");
	const char *b = ip_of(&b_id);
	int n = 0;
	uint64_t put_ns = 0;
	for (int want = 0; want <= 1000; want = want ? want * 100 : 10) {
		for (; n < want; n++) {
			char line[64];
			snprintf(line, sizeof(line), "allow 198.%d.%d.0/24 tcp %d", 18 + n / 256,
				 n % 256, 1000 + n);
			uint64_t t0 = mono_ns();
			CHECK(rule(line, true) == 0);
			put_ns += mono_ns() - t0;
		}
		CHECK(rule("allow 10.250.7.0/24 tcp 8080", true) == 0);
		struct pkt ok, drop;
		make(&ok, &a_id, ip_of(&a_id), b, IPPROTO_TCP, 4000, 8080);
		make(&drop, &a_id, ip_of(&a_id), b, IPPROTO_TCP, 4000, 8081);
		uint32_t ns_ok = 0, ns_drop = 0, ns_eg = 0;
		CHECK(run_prog(ingress, &ok, 200000, &ns_ok) == NET_FILTER_PASS);
		CHECK(run_prog(ingress, &drop, 200000, &ns_drop) == TC_ACT_SHOT);
		struct pkt in;
		make(&in, &b_id, b, ip_of(&a_id), IPPROTO_TCP, 8080, 4000);
		CHECK(run_prog(egress, &in, 200000, &ns_eg) == TC_ACT_OK);
		printf("# filter cost, %4d rules: allowed %u ns/packet, dropped %u ns/packet, "
		       "replies (egress) %u ns/packet\n", n + 1, ns_ok, ns_drop, ns_eg);
	}
	printf("# rule write: %.1f us each (bpf map update, %d rules)\n",
	       (double)put_ns / 1000.0 / n, n);
	/* The same packet through the anti-spoofing program alone (policy off). */
	net_policy_fini();
	struct err e = {0};
	int plain = net_filter_load(&a_id, 1, false, &e);
	CHECK(plain >= 0);
	struct pkt ok;
	make(&ok, &a_id, ip_of(&a_id), b, IPPROTO_TCP, 4000, 8080);
	uint32_t ns_plain = 0;
	CHECK(run_prog(plain, &ok, 200000, &ns_plain) == NET_FILTER_PASS);
	printf("# filter cost without policy (anti-spoofing only): %u ns/packet\n", ns_plain);
	close(plain);
}

int main(void)
{
	RUN(test_rule_round_trip);
	RUN(test_rule_errors);
	RUN(test_expose_parse);
	RUN(test_host_addresses);
	RUN(test_rule_same_match);
	RUN(test_filter_verdicts);
	RUN(test_filter_dns);
	RUN(test_filter_cost);
	UNIT_DONE("netpolicy");
}
