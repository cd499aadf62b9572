/* Unit tests of net/: the identity allocator (reserve, release and reuse,
 * exhaustion, restart from a journal, concurrent reservations), interface
 * prefixes, the `net` file's text and rate parsing. No devices are touched. */
#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>

#include "../../net/net.h"
#include "unit.h"

static const char *ip_str(const struct net_ident *id)
{
	static char s[INET_ADDRSTRLEN];
	return inet_ntop(AF_INET, &id->ip, s, sizeof(s));
}

static void test_defaults(void)
{
	struct err e = { 0 };
	CHECK(net_alloc_init(NULL, &e) == 0);
	struct in_addr gw;
	uint8_t plen;
	net_alloc_gateway(&gw, &plen);
	CHECK(gw.s_addr == inet_addr("10.88.0.1") && plen == 16);
	CHECK(net_alloc_free_count() == 65536 - 3);

	struct net_ident a, b;
	CHECK(net_reserve("a", &a, &e) == 0);
	CHECK(!strcmp(ip_str(&a), "10.88.0.2") && a.prefix_len == 16);
	CHECK(a.gateway.s_addr == gw.s_addr && !strcmp(a.sbx, "a"));
	char mac[18];
	net_mac_str(a.mac, mac);
	CHECK(!strcmp(mac, "02:5b:0a:58:00:02"));
	CHECK((a.mac[0] & 1) == 0 && (a.mac[0] & 2) == 2); /* unicast, locally administered */
	CHECK(!strcmp(a.host_if, "sbx-2") && !strcmp(a.peer_if, "eth0"));
	CHECK(net_reserve("b", &b, &e) == 0);
	CHECK(!strcmp(ip_str(&b), "10.88.0.3") && !strcmp(b.host_if, "sbx-3"));
	CHECK(memcmp(a.mac, b.mac, 6) != 0);
	CHECK(net_alloc_free_count() == 65536 - 5);

	struct buf out = { 0 };
	CHECK(net_ident_format(&a, &out) == 0);
	CHECK(!strcmp(out.data, "ip 10.88.0.2/16\ngateway 10.88.0.1\nmac 02:5b:0a:58:00:02\nhost_if sbx-2\n"));
	buf_free(&out);

	/* The largest host number still fits in IFNAMSIZ. */
	CHECK(net_reserve_exact("last", "10.88.255.254", &a, &e) == 0);
	CHECK(!strcmp(a.host_if, "sbx-fffe") && a.mac[4] == 0xff && a.mac[5] == 0xfe);
}

static void test_bad_subnets(void)
{
	const char *bad[] = { "10.88.0.1/16", "10.88.0.0/31", "10.88.0.0/32", "10.0.0.0/7",
			      "10.88.0.0", "10.88.0.0/", "10.88.0.0/16x", "abc/16", "/16",
			      "300.1.1.0/24", "" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct err e = { 0 };
		CHECK(net_alloc_init(bad[i], &e) == -EINVAL);
		CHECK(e.code == -EINVAL && e.msg[0]);
	}
	struct err e = { 0 };
	net_alloc_init("10.88.0.1/16", &e);
	CHECK(strstr(e.msg, "10.88.0.0/16") != NULL); /* suggests the fix */
}

static void test_exhaustion_and_reuse(void)
{
	struct err e = { 0 };
	CHECK(net_alloc_init("10.250.0.0/29", &e) == 0); /* .2 to .6 */
	CHECK(net_alloc_free_count() == 5);
	struct net_ident id[5];
	for (int i = 0; i < 5; i++) {
		CHECK(net_reserve("x", &id[i], &e) == 0);
		CHECK(ntohl(id[i].ip.s_addr) == ntohl(inet_addr("10.250.0.0")) + 2 + (uint32_t)i);
	}
	struct net_ident extra;
	err_clear(&e);
	CHECK(net_reserve("full", &extra, &e) == -ENOSPC);
	CHECK(e.code == -ENOSPC && strstr(e.msg, "full") && strstr(e.msg, "5 addresses"));
	CHECK(net_alloc_free_count() == 0);

	net_release(&id[2]);
	CHECK(net_alloc_free_count() == 1);
	net_release(&id[2]); /* twice: ignored */
	CHECK(net_alloc_free_count() == 1);
	CHECK(net_reserve("again", &extra, &e) == 0);
	CHECK(extra.ip.s_addr == id[2].ip.s_addr && !memcmp(extra.mac, id[2].mac, 6));
	CHECK(!strcmp(extra.host_if, id[2].host_if));
	CHECK(net_reserve("full", &extra, &e) == -ENOSPC);

	/* Round robin: a released address is handed out after the others. */
	CHECK(net_alloc_init("10.250.0.0/24", &e) == 0);
	struct net_ident a, b, c;
	CHECK(net_reserve("a", &a, &e) == 0 && net_reserve("b", &b, &e) == 0);
	net_release(&a);
	CHECK(net_reserve("c", &c, &e) == 0);
	CHECK(ntohl(c.ip.s_addr) == ntohl(b.ip.s_addr) + 1);

	/* An identity of another subnet is not ours to release. */
	struct net_ident foreign = a;
	foreign.ip.s_addr = inet_addr("192.168.1.5");
	uint32_t before = net_alloc_free_count();
	net_release(&foreign);
	CHECK(net_alloc_free_count() == before);

	/* /30: exactly one sandbox. */
	CHECK(net_alloc_init("10.250.0.4/30", &e) == 0);
	CHECK(net_reserve("one", &a, &e) == 0 && !strcmp(ip_str(&a), "10.250.0.6"));
	CHECK(net_reserve("two", &b, &e) == -ENOSPC);
}

static void test_restart(void)
{
	struct err e = { 0 };
	CHECK(net_alloc_init("10.250.0.0/24", &e) == 0);
	struct net_ident a, b, c;
	CHECK(net_reserve("a", &a, &e) == 0 && net_reserve("b", &b, &e) == 0);
	CHECK(net_reserve("c", &c, &e) == 0);
	char ja[INET_ADDRSTRLEN], jc[INET_ADDRSTRLEN]; /* what the journal holds */
	strcpy(ja, ip_str(&a));
	strcpy(jc, ip_str(&c));

	/* The daemon restarts: a fresh allocator re-takes the journaled ones. */
	CHECK(net_alloc_init("10.250.0.0/24", &e) == 0);
	struct net_ident ra, rc, n;
	CHECK(net_reserve_exact("a", ja, &ra, &e) == 0);
	CHECK(net_reserve_exact("c", jc, &rc, &e) == 0);
	CHECK(ra.ip.s_addr == a.ip.s_addr && !memcmp(ra.mac, a.mac, 6) && !strcmp(ra.host_if, a.host_if));
	CHECK(rc.ip.s_addr == c.ip.s_addr && !strcmp(rc.sbx, "c"));
	err_clear(&e);
	CHECK(net_reserve_exact("dup", ja, &n, &e) == -EEXIST);
	CHECK(e.code == -EEXIST && strstr(e.msg, ja));
	/* Never handed out twice: new reservations skip both. */
	for (int i = 0; i < 251; i++) {
		CHECK(net_reserve("new", &n, &e) == 0);
		if (n.ip.s_addr == a.ip.s_addr || n.ip.s_addr == c.ip.s_addr)
			CHECK(!"journaled address handed out again");
	}
	CHECK(net_reserve("new", &n, &e) == -ENOSPC);

	const char *bad[] = { "10.250.0.0", "10.250.0.1", "10.250.0.255", "10.251.0.5", "junk", "" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(net_reserve_exact("bad", bad[i], &n, &e) == -EINVAL);
}

static void test_ifprefix(void)
{
	struct err e = { 0 };
	CHECK(net_alloc_init("10.250.0.0/24", &e) == 0);
	CHECK(net_alloc_set_ifprefix("sbxa1b2-", &e) == 0);
	struct net_ident a;
	CHECK(net_reserve("a", &a, &e) == 0 && !strcmp(a.host_if, "sbxa1b2-2"));
	CHECK(net_alloc_set_ifprefix("eth", &e) == -EINVAL);
	CHECK(net_alloc_set_ifprefix("sbx/x", &e) == -EINVAL);
	CHECK(net_alloc_set_ifprefix("sbx0123456789", &e) == 0);     /* 13 + 2 hex digits */
	CHECK(net_alloc_set_ifprefix("sbx01234567890", &e) == -EINVAL); /* 14 + 2 > 15 */
	CHECK(net_alloc_init("10.0.0.0/8", &e) == 0);                   /* 6 hex digits */
	CHECK(net_alloc_set_ifprefix("sbx0123456", &e) == -EINVAL);
	CHECK(net_alloc_set_ifprefix("sbx012345", &e) == 0);
	CHECK(net_reserve_exact("max", "10.255.255.254", &a, &e) == 0);
	CHECK(!strcmp(a.host_if, "sbx012345fffffe") && strlen(a.host_if) == IFNAMSIZ - 1);
	CHECK(net_alloc_set_ifprefix(NET_DEFAULT_IFPREFIX, &e) == 0);
}

#define THREADS 8
#define PER_THREAD 500

static struct net_ident got[THREADS][PER_THREAD];
static int got_err[THREADS];

static void *reserver(void *arg)
{
	int t = (int)(intptr_t)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		struct err e;
		if (net_reserve("burst", &got[t][i], &e) < 0)
			got_err[t]++;
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void test_concurrent(void)
{
	struct err e = { 0 };
	CHECK(net_alloc_init("10.88.0.0/16", &e) == 0);
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		CHECK(pthread_create(&th[t], NULL, reserver, (void *)(intptr_t)t) == 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	static uint32_t ips[THREADS * PER_THREAD], macs[THREADS * PER_THREAD];
	int n = 0, errs = 0;
	for (int t = 0; t < THREADS; t++) {
		errs += got_err[t];
		for (int i = 0; i < PER_THREAD; i++, n++) {
			ips[n] = ntohl(got[t][i].ip.s_addr);
			uint32_t m;
			memcpy(&m, got[t][i].mac + 2, 4); /* the bytes that vary */
			macs[n] = m;
		}
	}
	CHECK(errs == 0);
	qsort(ips, (size_t)n, sizeof(ips[0]), cmp_u32);
	qsort(macs, (size_t)n, sizeof(macs[0]), cmp_u32);
	int dup_ip = 0, dup_mac = 0;
	for (int i = 1; i < n; i++) {
		dup_ip += ips[i] == ips[i - 1];
		dup_mac += macs[i] == macs[i - 1];
	}
	CHECK(dup_ip == 0 && dup_mac == 0);
	CHECK(net_alloc_free_count() == 65533 - THREADS * PER_THREAD);
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < PER_THREAD; i++)
			net_release(&got[t][i]);
	CHECK(net_alloc_free_count() == 65533);
}

static void test_rates(void)
{
	struct {
		const char *s;
		uint64_t bps;
	} ok[] = {
		{ "10mbit", 10000000ull },  { "10MBit", 10000000ull }, { "1.5gbit", 1500000000ull },
		{ "500kbit", 500000ull },   { "100mbps", 800000000ull }, { "2mibit", 2097152ull },
		{ "1000", 1000ull },        { "8bit", 8ull },          { "1bps", 8ull },
		{ "0.5mbit", 500000ull },   { "40gbit", 40000000000ull }, { "1tibps", 8ull << 40 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		uint64_t v = 0;
		CHECK(net_parse_rate(ok[i].s, &v) == 0 && v == ok[i].bps);
		if (v != ok[i].bps)
			fprintf(stderr, "  rate %s -> %llu\n", ok[i].s, (unsigned long long)v);
	}
	const char *bad[] = { "", "mbit", "10 mbit", "-5mbit", "0", "0mbit", "7bit", "10xbit",
			      "1.mbit", ".5mbit", "10mbit ", "99999999999999999999mbit",
			      "18446744073709551615tbit", "1.0000000001mbit", "10mbits", "1e6" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t v = 42;
		CHECK(net_parse_rate(bad[i], &v) == -EINVAL && v == 42);
	}
	CHECK(net_parse_rate(NULL, NULL) == -EINVAL);

	/* NAT is never enabled by a unit test: only argument checking. */
	struct err e = { 0 };
	CHECK(net_nat_enable("10.88.0.0/16 -j ACCEPT", &e) == -EINVAL && e.msg[0]);
}

int main(void)
{
	RUN(test_defaults);
	RUN(test_bad_subnets);
	RUN(test_exhaustion_and_reuse);
	RUN(test_restart);
	RUN(test_ifprefix);
	RUN(test_concurrent);
	RUN(test_rates);
	net_alloc_fini();
	UNIT_DONE("net_alloc");
}
