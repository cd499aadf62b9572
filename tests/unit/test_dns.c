/* Unit tests for net/dns.c: the wire format of queries and answers (names,
 * compression pointers, bounds) and the names of domain rules. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "../../net/net.h"
#include "unit.h"

/* A message built by hand: header, then bytes appended. */
struct msg {
	uint8_t b[NET_DNS_MSG_MAX + 16];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
	memcpy(m->b + m->n, p, n);
	m->n += n;
}
static void put16(struct msg *m, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(m, b, 2);
}
static void put32(struct msg *m, uint32_t v)
{
	put16(m, (uint16_t)(v >> 16));
	put16(m, (uint16_t)v);
}
/* "ok.test" as labels. */
static void put_name(struct msg *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		uint8_t lb = (uint8_t)l;
		put(m, &lb, 1);
		put(m, name, l);
		name += l + (dot != NULL);
	}
	put(m, "", 1);
}
static void header(struct msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an)
{
	m->n = 0;
	put16(m, id);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
}
static void question(struct msg *m, const char *name)
{
	put_name(m, name);
	put16(m, 1); /* A */
	put16(m, 1); /* IN */
}
static void rr_a(struct msg *m, const uint8_t *owner, size_t olen, uint32_t ttl, const char *ip)
{
	put(m, owner, olen);
	put16(m, 1);
	put16(m, 1);
	put32(m, ttl);
	put16(m, 4);
	struct in_addr a;
	inet_pton(AF_INET, ip, &a);
	put(m, &a.s_addr, 4);
}

static const uint8_t to_question[2] = { 0xc0, 12 }; /* a pointer to the question's name */

static void test_query(void)
{
	struct msg m;
	struct net_dns_q q;
	header(&m, 0x1234, 0x0100, 1, 0);
	question(&m, "Ok.Test");
	CHECK(net_dns_parse_query(m.b, m.n, &q) == 0);
	CHECK(q.id == 0x1234 && q.qtype == 1 && q.qclass == 1 && q.plain);
	CHECK(strcmp(q.name, "ok.test") == 0);
	CHECK(q.end == m.n);
	/* An answer (QR) or another opcode is not a query; two questions neither. */
	header(&m, 1, 0x8100, 1, 0);
	question(&m, "ok.test");
	CHECK(net_dns_parse_query(m.b, m.n, &q) == -EBADMSG);
	header(&m, 1, 0x2800, 1, 0);
	question(&m, "ok.test");
	CHECK(net_dns_parse_query(m.b, m.n, &q) == -EBADMSG);
	header(&m, 1, 0x0100, 2, 0);
	question(&m, "ok.test");
	CHECK(net_dns_parse_query(m.b, m.n, &q) == -EBADMSG);
	/* Cut anywhere: malformed, never read past the end. */
	header(&m, 1, 0x0100, 1, 0);
	question(&m, "ok.test");
	for (size_t cut = 0; cut < m.n; cut++)
		CHECK(net_dns_parse_query(m.b, cut, &q) == -EBADMSG);
	/* A name of other bytes is relayed, but never matched. */
	header(&m, 1, 0x0100, 1, 0);
	question(&m, "o k.test");
	CHECK(net_dns_parse_query(m.b, m.n, &q) == 0 && !q.plain && q.name[0] == '\0');
}

static void test_names_bounded(void)
{
	struct msg m;
	char out[NET_DNS_NAME_MAX + 2];
	size_t off;
	/* A pointer to itself, and two pointing at each other: malformed. */
	header(&m, 1, 0, 1, 0);
	put(&m, (uint8_t[]){ 0xc0, 12 }, 2);
	off = 12;
	CHECK(net_dns_read_name(m.b, m.n, &off, out) == -EBADMSG);
	header(&m, 1, 0, 1, 0);
	put(&m, (uint8_t[]){ 0xc0, 14, 0xc0, 12 }, 4);
	off = 14;
	CHECK(net_dns_read_name(m.b, m.n, &off, out) == -EBADMSG);
	off = 12;
	CHECK(net_dns_read_name(m.b, m.n, &off, out) == -EBADMSG);
	/* A label, then a pointer back to it: a loop through a label. */
	header(&m, 1, 0, 1, 0);
	put(&m, (uint8_t[]){ 1, 'a', 0xc0, 12 }, 4);
	off = 12;
	CHECK(net_dns_read_name(m.b, m.n, &off, out) == -EBADMSG);
	/* A pointer backwards is fine, and the offset moves past the pointer. */
	header(&m, 1, 0, 1, 0);
	put_name(&m, "ok.test");
	size_t at = m.n;
	put(&m, (uint8_t[]){ 3, 'w', 'w', 'w', 0xc0, 12 }, 6);
	off = at;
	CHECK(net_dns_read_name(m.b, m.n, &off, out) == 0 && off == m.n);
	CHECK(strcmp(out, "www.ok.test") == 0);
	/* 254 characters: one too many; 253 fits. */
	for (int total = 253; total <= 254; total++) {
		header(&m, 1, 0, 1, 0);
		int left = total;
		while (left > 0) {
			int l = left > 63 ? 63 : left;
			if (left - l == 1) /* never a label of zero: the dot takes one */
				l--;
			uint8_t lb = (uint8_t)l;
			put(&m, &lb, 1);
			for (int i = 0; i < l; i++)
				put(&m, "x", 1);
			left -= l + 1;
		}
		put(&m, "", 1);
		off = 12;
		int r = net_dns_read_name(m.b, m.n, &off, out);
		CHECK(total == 253 ? (r == 0 && strlen(out) == 253) : r == -EBADMSG);
	}
	/* Extended label types (0x40, 0x80) are refused. */
	header(&m, 1, 0, 1, 0);
	put(&m, (uint8_t[]){ 0x41, 'a', 0 }, 3);
	off = 12;
	CHECK(net_dns_read_name(m.b, m.n, &off, out) == -EBADMSG);
}

static void test_answer(void)
{
	struct msg m;
	struct net_dns_q q;
	struct net_dns_a a[4];
	header(&m, 7, 0x0100, 1, 0);
	question(&m, "ok.test");
	CHECK(net_dns_parse_query(m.b, m.n, &q) == 0);
	/* ok.test A 10.9.0.1, a CNAME to cdn.test, whose A 10.9.0.2; an A of
	 * an unrelated name in between is not taken. */
	header(&m, 7, 0x8180, 1, 4);
	question(&m, "ok.test");
	rr_a(&m, to_question, 2, 300, "10.9.0.1");
	struct msg other = { .n = 0 };
	put_name(&other, "evil.test");
	rr_a(&m, other.b, other.n, 300, "10.9.0.66");
	put(&m, to_question, 2);
	put16(&m, 5);
	put16(&m, 1);
	put32(&m, 60);
	struct msg cname = { .n = 0 };
	put_name(&cname, "cdn.test");
	put16(&m, (uint16_t)cname.n);
	put(&m, cname.b, cname.n);
	rr_a(&m, cname.b, cname.n, 0x80000000u, "10.9.0.2");
	int n = net_dns_parse_answer(m.b, m.n, &q, a, 4);
	CHECK(n == 2);
	CHECK(n == 2 && a[0].ip.s_addr == inet_addr("10.9.0.1") && a[0].ttl == 300);
	CHECK(n == 2 && a[1].ip.s_addr == inet_addr("10.9.0.2") && a[1].ttl == 0);
	CHECK(net_dns_parse_answer(m.b, m.n, &q, a, 1) == 1); /* bounded by max */
	/* Another id or question is not this query's answer. */
	m.b[1] = 8;
	CHECK(net_dns_parse_answer(m.b, m.n, &q, a, 4) == -EPROTO);
	m.b[1] = 7;
	q.qtype = 28;
	CHECK(net_dns_parse_answer(m.b, m.n, &q, a, 4) == -EPROTO);
	q.qtype = 1;
	/* Cut short anywhere past the question: malformed or fewer records. */
	for (size_t cut = 0; cut < m.n; cut++)
		CHECK(net_dns_parse_answer(m.b, cut, &q, a, 4) < 0);
	/* An error answer (NXDOMAIN) carries nothing. */
	header(&m, 7, 0x8183, 1, 1);
	question(&m, "ok.test");
	rr_a(&m, to_question, 2, 300, "10.9.0.1");
	CHECK(net_dns_parse_answer(m.b, m.n, &q, a, 4) == 0);
	/* An rdata length past the end. */
	header(&m, 7, 0x8180, 1, 1);
	question(&m, "ok.test");
	rr_a(&m, to_question, 2, 300, "10.9.0.1");
	m.b[m.n - 5] = 200;
	CHECK(net_dns_parse_answer(m.b, m.n, &q, a, 4) == -EBADMSG);
}

static void test_rule_names(void)
{
	CHECK(net_dns_name_check("ok.test") == 0);
	CHECK(net_dns_name_check("*.example.com") == 0);
	CHECK(net_dns_name_check("localhost") == 0);
	CHECK(net_dns_name_check("a-b.c0m") == 0);
	CHECK(net_dns_name_check("10.0.0.1") == -EINVAL);
	CHECK(net_dns_name_check("-a.com") == -EINVAL);
	CHECK(net_dns_name_check("a-.com") == -EINVAL);
	CHECK(net_dns_name_check("a..com") == -EINVAL);
	CHECK(net_dns_name_check("ok.test.") == -EINVAL);
	CHECK(net_dns_name_check(".ok.test") == -EINVAL);
	CHECK(net_dns_name_check("o_k.test") == -EINVAL);
	CHECK(net_dns_name_check("*") == -EINVAL);
	CHECK(net_dns_name_check("*.") == -EINVAL);
	CHECK(net_dns_name_check("a.*.com") == -EINVAL);
	CHECK(net_dns_name_check("") == -EINVAL);
	char name[300];
	memset(name, 'a', 63);
	name[63] = '\0';
	CHECK(net_dns_name_check(name) == 0);
	memset(name, 'a', 64);
	name[64] = '\0';
	CHECK(net_dns_name_check(name) == -EINVAL);
	/* 4 labels of 63 and one of 1: 257; 253 in all is the most. */
	size_t n = 0;
	for (int i = 0; i < 4; i++) {
		memset(name + n, 'a', 62);
		n += 62;
		name[n++] = '.';
	}
	name[n++] = 'b';
	name[n] = '\0';
	CHECK(n == 253 && net_dns_name_check(name) == 0);
	memmove(name + 1, name, n + 1);
	name[0] = 'c';
	CHECK(net_dns_name_check(name) == -EINVAL);

	CHECK(net_dns_name_match("ok.test", "ok.test"));
	CHECK(net_dns_name_match("OK.test", "ok.TEST"));
	CHECK(!net_dns_name_match("ok.test", "www.ok.test"));
	CHECK(net_dns_name_match("*.ok.test", "www.ok.test"));
	CHECK(net_dns_name_match("*.ok.test", "a.b.ok.test"));
	CHECK(!net_dns_name_match("*.ok.test", "ok.test"));
	CHECK(!net_dns_name_match("*.ok.test", "took.test"));
	CHECK(!net_dns_name_match("*.ok.test", "xok.test"));
	CHECK(!net_dns_name_match("*.ok.test", ".ok.test"));
	CHECK(!net_dns_name_match("ok.test", ""));
}

int main(void)
{
	RUN(test_query);
	RUN(test_names_bounded);
	RUN(test_answer);
	RUN(test_rule_names);
	UNIT_DONE("dns");
}
