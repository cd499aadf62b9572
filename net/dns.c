/* DNS wire format, as much as the daemon's forwarder needs: a sandbox's
 * query (header and its one question) and the upstream's answer (its
 * question again, and the A records the question's name leads to), both
 * hostile bytes: every length checked against the message, compression
 * pointers followed only backwards (so a loop of them ends), names bounded.
 * And the names of domain rules: validation and matching. No I/O here. */
#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <string.h>

#define HDR_LEN 12
#define TYPE_A 1
#define TYPE_CNAME 5
#define CLASS_IN 1
/* Names an answer may lead through (the question's, then CNAME targets). */
#define CHAIN_MAX 8

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool ldh(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int net_dns_read_name(const uint8_t *m, size_t n, size_t *off, char *out)
{
	size_t at = *off, floor = *off, len = 0, end = 0;
	bool jumped = false, plain = true;
	out[0] = '\0';
	for (int hops = 0;; hops++) {
		if (at >= n || hops > NET_DNS_NAME_MAX)
			return -EBADMSG;
		uint8_t l = m[at];
		if ((l & 0xc0) == 0xc0) {
			if (at + 1 >= n)
				return -EBADMSG;
			size_t to = (size_t)(l & 0x3f) << 8 | m[at + 1];
			if (to >= floor) /* only backwards, below every place read so far */
				return -EBADMSG;
			if (!jumped)
				end = at + 2;
			jumped = true;
			floor = at = to;
			continue;
		}
		if (l & 0xc0)
			return -EBADMSG; /* 0x40, 0x80: extended label types */
		if (l == 0) {
			if (!jumped)
				end = at + 1;
			break;
		}
		if (at + 1 + l > n || len + (len > 0) + l > NET_DNS_NAME_MAX)
			return -EBADMSG;
		for (size_t i = 0; i < l; i++) {
			uint8_t c = m[at + 1 + i];
			plain &= ldh(c);
			if (plain)
				out[len + (len > 0) + i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		if (plain && len > 0)
			out[len] = '.';
		len += l + (len > 0);
		if (plain)
			out[len] = '\0';
		at += 1 + l;
	}
	*off = end;
	if (!plain)
		out[0] = '\0';
	return plain ? 0 : 1;
}

/* The header and the one question at its end: 0, or -EBADMSG. */
static int read_question(const uint8_t *m, size_t n, struct net_dns_q *q)
{
	if (n < HDR_LEN || rd16(m + 4) != 1)
		return -EBADMSG;
	q->id = rd16(m);
	q->flags = rd16(m + 2);
	size_t off = HDR_LEN;
	int r = net_dns_read_name(m, n, &off, q->name);
	if (r < 0 || off + 4 > n)
		return -EBADMSG;
	q->plain = r == 0;
	q->qtype = rd16(m + off);
	q->qclass = rd16(m + off + 2);
	q->end = off + 4;
	return 0;
}

int net_dns_parse_query(const uint8_t *m, size_t n, struct net_dns_q *q)
{
	memset(q, 0, sizeof(*q));
	if (n > NET_DNS_MSG_MAX || read_question(m, n, q) < 0)
		return -EBADMSG;
	/* A standard query (QR 0, opcode 0): nothing else is relayed. */
	if ((q->flags & 0x8000) || (q->flags & 0x7800))
		return -EBADMSG;
	return 0;
}

static bool in_chain(char chain[][NET_DNS_NAME_MAX + 2], int nchain, const char *name)
{
	for (int i = 0; i < nchain; i++)
		if (!strcmp(chain[i], name))
			return true;
	return false;
}

int net_dns_parse_answer(const uint8_t *m, size_t n, const struct net_dns_q *asked,
			 struct net_dns_a *out, int max)
{
	struct net_dns_q q;
	memset(&q, 0, sizeof(q));
	if (n > NET_DNS_MSG_MAX || read_question(m, n, &q) < 0 || !(q.flags & 0x8000))
		return -EBADMSG;
	if (q.id != asked->id || q.qtype != asked->qtype || q.qclass != asked->qclass ||
	    q.plain != asked->plain || strcmp(q.name, asked->name))
		return -EPROTO; /* not the answer to this question */
	if ((q.flags & 0xf) != 0 || !q.plain)
		return 0; /* an error (NXDOMAIN...), or a name no rule can name */
	static __thread char chain[CHAIN_MAX][NET_DNS_NAME_MAX + 2];
	char owner[NET_DNS_NAME_MAX + 2], target[NET_DNS_NAME_MAX + 2];
	int nchain = 1, got = 0;
	memcpy(chain[0], q.name, sizeof(chain[0]));
	size_t off = q.end;
	for (unsigned i = rd16(m + 6); i > 0; i--) {
		int r = net_dns_read_name(m, n, &off, owner);
		if (r < 0 || off + 10 > n)
			return -EBADMSG;
		uint16_t type = rd16(m + off), cls = rd16(m + off + 2), rdlen = rd16(m + off + 8);
		uint32_t ttl = rd32(m + off + 4);
		off += 10;
		if (off + rdlen > n)
			return -EBADMSG;
		bool ours = r == 0 && cls == CLASS_IN && in_chain(chain, nchain, owner);
		if (ours && type == TYPE_A && rdlen == 4 && got < max) {
			memcpy(&out[got].ip.s_addr, m + off, 4);
			out[got++].ttl = ttl > 0x7fffffff ? 0 : ttl; /* RFC 2181: the top bit set is 0 */
		} else if (ours && type == TYPE_CNAME && nchain < CHAIN_MAX) {
			size_t t = off;
			if (net_dns_read_name(m, off + rdlen, &t, target) == 0 && t == off + rdlen &&
			    !in_chain(chain, nchain, target))
				memcpy(chain[nchain++], target, sizeof(chain[0]));
		}
		off += rdlen;
	}
	return got;
}

int net_dns_name_check(const char *s)
{
	size_t n = strlen(s);
	if (s[0] == '*' && s[1] == '.')
		s += 2, n -= 2;
	if (n == 0 || n > NET_DNS_NAME_MAX)
		return -EINVAL;
	size_t label = 0;
	bool alpha_tld = false;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return -EINVAL;
			label = 0;
			continue;
		}
		bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
		if (!letter && !(c >= '0' && c <= '9') && !(c == '-' && label > 0))
			return -EINVAL;
		if (label == 0)
			alpha_tld = false;
		alpha_tld |= letter || c == '-';
		label++;
	}
	/* A last label of digits only would make 10.0.0.1 a name. */
	return alpha_tld ? 0 : -EINVAL;
}

bool net_dns_name_match(const char *pattern, const char *name)
{
	if (pattern[0] == '*' && pattern[1] == '.') {
		size_t pn = strlen(pattern + 1), nn = strlen(name); /* ".suffix" */
		return nn > pn && strcasecmp(name + nn - pn, pattern + 1) == 0;
	}
	return strcasecmp(pattern, name) == 0;
}
