/* libFuzzer target: the DNS messages the daemon's forwarder reads (net/dns.c):
 * a sandbox's query and the upstream's answer, both hostile; and the domain
 * names of rules as ctl takes them.
 *
 * The input's first byte picks: 0 a query; 1 an answer to the query that
 * the rest also parses as (its question, its id); 2 a name at the offset
 * the next byte gives; 3 the rest as a rule's name (text). Besides the
 * sanitizers, it asserts:
 *   - a parsed name is at most 253 characters, lower-case LDH (or _) labels
 *     of 1..63 separated by single dots, and the offset stays in the message;
 *   - an answer gives at most max records, and only to the question asked;
 *   - a name the rule check takes (not a *. one) matches itself; "*.NAME" matches
 *     "x.NAME" but not NAME.
 *
 *   make fuzz          # clang, -fsanitize=fuzzer,address,undefined, bounded
 *   make fuzz-replay   # gcc + tests/fuzz/replay.c: every corpus file once */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../net/net.h"

#define MUST(cond)                                                                       \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_dns: contract broken: %s (%s:%d)\n", #cond, \
				__FILE__, __LINE__);                                     \
			abort();                                                         \
		}                                                                        \
	} while (0)

static void check_name(const char *s)
{
	size_t n = strlen(s), label = 0;
	MUST(n <= NET_DNS_NAME_MAX);
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			MUST(n == 0 || (label >= 1 && label <= 63));
			label = 0;
			continue;
		}
		MUST((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
		label++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 4;
	const uint8_t *m = data + 1;
	size_t n = size - 1;
	struct net_dns_q q;
	char name[NET_DNS_NAME_MAX + 2];
	if (mode == 0 || mode == 1) {
		if (net_dns_parse_query(m, n, &q) == 0) {
			MUST(q.end <= n);
			check_name(q.name);
			MUST(q.plain || q.name[0] == '\0');
		}
		if (mode == 1) {
			/* The question as if asked: the answer's own, by construction, so
			 * the records are read (the QR bit may make it no query). */
			struct net_dns_q asked;
			memset(&asked, 0, sizeof(asked));
			size_t off = 12;
			if (n >= 12) {
				int r = net_dns_read_name(m, n, &off, asked.name);
				asked.plain = r == 0;
				if (r >= 0 && off + 4 <= n) {
					asked.id = (uint16_t)(m[0] << 8 | m[1]);
					asked.qtype = (uint16_t)(m[off] << 8 | m[off + 1]);
					asked.qclass = (uint16_t)(m[off + 2] << 8 | m[off + 3]);
				}
			}
			struct net_dns_a a[NET_DNS_A_MAX];
			int max = (int)(n % (NET_DNS_A_MAX + 1));
			int got = net_dns_parse_answer(m, n, &asked, a, max);
			MUST(got == -EBADMSG || got == -EPROTO || (got >= 0 && got <= max));
		}
	} else if (mode == 2) {
		if (n < 1)
			return 0;
		size_t off = m[0], start = off;
		int r = net_dns_read_name(m + 1, n - 1, &off, name);
		MUST(r == -EBADMSG || r == 0 || r == 1);
		if (r >= 0) {
			MUST(off > start && off <= n - 1);
			check_name(name);
			MUST(r == 0 || name[0] == '\0');
		}
	} else {
		char text[NET_DNS_NAME_MAX + 8];
		size_t l = n < sizeof(text) - 1 ? n : sizeof(text) - 1;
		memcpy(text, m, l);
		text[l] = '\0';
		if (net_dns_name_check(text) == 0) {
			MUST(strlen(text) <= NET_DNS_NAME_MAX + 2);
			MUST(text[0] == '*' || net_dns_name_match(text, text));
			const char *base = text[0] == '*' ? text + 2 : text;
			char sub[NET_DNS_NAME_MAX + 16];
			snprintf(sub, sizeof(sub), "x.%s", base);
			char pat[NET_DNS_NAME_MAX + 16];
			snprintf(pat, sizeof(pat), "*.%s", base);
			MUST(net_dns_name_match(pat, sub));
			MUST(!net_dns_name_match(pat, base));
		}
	}
	return 0;
}
