/* Network identity allocation: one bit per address of the subnet and a
 * next-hint, under one mutex held only to find and flip a bit. Everything
 * else about an identity (MAC, device names, text) is derived from the
 * address outside the lock, so a burst of creates never queues here. */
#define _GNU_SOURCE
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct {
	pthread_mutex_t lock;   /* covers bits, nfree, hint */
	uint64_t *bits;         /* bit h set: host number h is taken (or reserved) */
	uint32_t size;          /* addresses in the subnet, 2^(32 - prefix) */
	uint32_t nfree;
	uint32_t hint;          /* where the next search starts: round robin, so a
				   released address is reused last (stale ARP caches) */
	uint32_t net;           /* network address, host byte order */
	uint8_t prefix_len;
	char ifprefix[IFNAMSIZ];
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .ifprefix = NET_DEFAULT_IFPREFIX };

static bool bit_test(uint32_t h) { return pool.bits[h / 64] & (1ull << (h % 64)); }
static void bit_set(uint32_t h) { pool.bits[h / 64] |= 1ull << (h % 64); }
static void bit_clear(uint32_t h) { pool.bits[h / 64] &= ~(1ull << (h % 64)); }

static int parse_cidr(const char *cidr, uint32_t *net, uint8_t *plen, struct err *e)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	size_t n = slash ? (size_t)(slash - cidr) : 0;
	if (!slash || n == 0 || n >= sizeof(addr))
		return err_set(e, -EINVAL, "subnet '%s' is not of the form A.B.C.D/LEN", cidr);
	memcpy(addr, cidr, n);
	addr[n] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, addr, &a) != 1)
		return err_set(e, -EINVAL, "subnet '%s' does not start with an IPv4 address", cidr);
	char *end;
	errno = 0;
	long len = strtol(slash + 1, &end, 10);
	if (errno || end == slash + 1 || *end || len < 8 || len > 30)
		return err_set(e, -EINVAL,
			       "subnet '%s' needs a prefix length from 8 to 30", cidr);
	uint32_t mask = ~0u << (32 - len);
	uint32_t h = ntohl(a.s_addr);
	if (h & ~mask)
		return err_set(e, -EINVAL, "subnet '%s' has host bits set (did you mean %u.%u.%u.%u/%ld?)",
			       cidr, (h & mask) >> 24, ((h & mask) >> 16) & 255,
			       ((h & mask) >> 8) & 255, (h & mask) & 255, len);
	*net = h;
	*plen = (uint8_t)len;
	return 0;
}

int net_alloc_init(const char *cidr, struct err *e)
{
	if (!cidr)
		cidr = NET_DEFAULT_SUBNET;
	uint32_t net = 0;
	uint8_t plen = 0;
	int ret = parse_cidr(cidr, &net, &plen, e);
	if (ret < 0)
		return ret;
	uint32_t size = 1u << (32 - plen);
	uint64_t *bits = calloc((size + 63) / 64, sizeof(uint64_t));
	if (!bits)
		return err_set(e, -ENOMEM, "no memory for the address bitmap of %s", cidr);

	pthread_mutex_lock(&pool.lock);
	free(pool.bits);
	pool.bits = bits;
	pool.size = size;
	pool.net = net;
	pool.prefix_len = plen;
	/* Network address, gateway and broadcast are never handed out. */
	bit_set(0);
	bit_set(1);
	bit_set(size - 1);
	pool.nfree = size - 3;
	pool.hint = 2;
	pthread_mutex_unlock(&pool.lock);
	return 0;
}

void net_alloc_fini(void)
{
	pthread_mutex_lock(&pool.lock);
	free(pool.bits);
	pool.bits = NULL;
	pool.size = pool.nfree = pool.hint = 0;
	pthread_mutex_unlock(&pool.lock);
}

/* Hex digits of the largest host number: the room a device name needs. */
static size_t host_digits(void)
{
	size_t d = 1;
	for (uint32_t v = pool.size - 1; v >= 16; v /= 16)
		d++;
	return d;
}

int net_alloc_set_ifprefix(const char *prefix, struct err *e)
{
	if (!pool.bits)
		return err_set(e, -EINVAL, "the address allocator is not initialised");
	size_t n = strlen(prefix);
	if (strncmp(prefix, "sbx", 3) != 0)
		return err_set(e, -EINVAL, "interface prefix '%s' must start with 'sbx'", prefix);
	for (size_t i = 0; i < n; i++)
		if (!(prefix[i] >= 'a' && prefix[i] <= 'z') && !(prefix[i] >= 'A' && prefix[i] <= 'Z') &&
		    !(prefix[i] >= '0' && prefix[i] <= '9') && prefix[i] != '-' && prefix[i] != '_')
			return err_set(e, -EINVAL, "interface prefix '%s' may hold only letters, digits, '-' and '_'",
				       prefix);
	if (n + host_digits() > IFNAMSIZ - 1)
		return err_set(e, -EINVAL,
			       "interface prefix '%s' is too long: with %zu hex digits for the host number a name must fit in %d characters",
			       prefix, host_digits(), IFNAMSIZ - 1);
	pthread_mutex_lock(&pool.lock);
	memcpy(pool.ifprefix, prefix, n + 1);
	pthread_mutex_unlock(&pool.lock);
	return 0;
}

void net_alloc_gateway(struct in_addr *gw, uint8_t *prefix_len)
{
	gw->s_addr = htonl(pool.net + 1);
	*prefix_len = pool.prefix_len;
}

uint32_t net_alloc_free_count(void)
{
	pthread_mutex_lock(&pool.lock);
	uint32_t n = pool.nfree;
	pthread_mutex_unlock(&pool.lock);
	return n;
}

/* The first clear bit at or after `from`, wrapping; size when none. Called
 * with the lock held and nfree > 0, so it always finds one. */
static uint32_t find_free(uint32_t from)
{
	uint32_t words = (pool.size + 63) / 64;
	uint32_t w = from / 64;
	uint64_t free_bits = ~pool.bits[w] & (~0ull << (from % 64));
	for (uint32_t i = 0; i <= words; i++) {
		if (free_bits) {
			uint32_t h = w * 64 + (uint32_t)__builtin_ctzll(free_bits);
			if (h < pool.size)
				return h;
		}
		w = (w + 1) % words;
		free_bits = ~pool.bits[w];
	}
	return pool.size;
}

static void ident_fill(uint32_t host, const char *sbx_name, struct net_ident *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->sbx, sizeof(out->sbx), "%s", sbx_name ? sbx_name : "");
	uint32_t ip = pool.net + host;
	out->host = host;
	out->ip.s_addr = htonl(ip);
	out->gateway.s_addr = htonl(pool.net + 1);
	out->prefix_len = pool.prefix_len;
	/* 02: locally administered, unicast; 5b: ours; then the IP, so MACs are
	 * unique exactly when IPs are, and survive restarts without a journal. */
	out->mac[0] = 0x02;
	out->mac[1] = 0x5b;
	out->mac[2] = (uint8_t)(ip >> 24);
	out->mac[3] = (uint8_t)(ip >> 16);
	out->mac[4] = (uint8_t)(ip >> 8);
	out->mac[5] = (uint8_t)ip;
	snprintf(out->host_if, sizeof(out->host_if), "%s%x", pool.ifprefix, host);
	snprintf(out->peer_if, sizeof(out->peer_if), "%s", NET_PEER_IFNAME);
}

int net_reserve(const char *sbx_name, struct net_ident *out, struct err *e)
{
	pthread_mutex_lock(&pool.lock);
	if (!pool.bits) {
		pthread_mutex_unlock(&pool.lock);
		return err_set(e, -EINVAL, "the address allocator is not initialised");
	}
	if (pool.nfree == 0) {
		uint32_t usable = pool.size - 3;
		pthread_mutex_unlock(&pool.lock);
		return err_set(e, -ENOSPC,
			       "no free address for %s: all %u addresses of the sandbox subnet are in use",
			       sbx_name, usable);
	}
	uint32_t h = find_free(pool.hint);
	bit_set(h);
	pool.nfree--;
	pool.hint = h + 1 < pool.size ? h + 1 : 0;
	pthread_mutex_unlock(&pool.lock);

	ident_fill(h, sbx_name, out);
	return 0;
}

int net_reserve_exact(const char *sbx_name, const char *ip, struct net_ident *out, struct err *e)
{
	struct in_addr a;
	if (inet_pton(AF_INET, ip, &a) != 1)
		return err_set(e, -EINVAL, "journaled address '%s' of %s is not an IPv4 address", ip,
			       sbx_name);
	uint32_t h = ntohl(a.s_addr) - pool.net;

	pthread_mutex_lock(&pool.lock);
	if (!pool.bits) {
		pthread_mutex_unlock(&pool.lock);
		return err_set(e, -EINVAL, "the address allocator is not initialised");
	}
	if (h <= 1 || h >= pool.size - 1) {
		pthread_mutex_unlock(&pool.lock);
		return err_set(e, -EINVAL,
			       "journaled address %s of %s is not a sandbox address of the subnet", ip,
			       sbx_name);
	}
	if (bit_test(h)) {
		pthread_mutex_unlock(&pool.lock);
		return err_set(e, -EEXIST, "address %s of %s is already in use by another sandbox", ip,
			       sbx_name);
	}
	bit_set(h);
	pool.nfree--;
	pthread_mutex_unlock(&pool.lock);

	ident_fill(h, sbx_name, out);
	return 0;
}

void net_release(const struct net_ident *id)
{
	uint32_t h = ntohl(id->ip.s_addr) - pool.net;
	pthread_mutex_lock(&pool.lock);
	if (pool.bits && h > 1 && h < pool.size - 1 && bit_test(h)) {
		bit_clear(h);
		pool.nfree++;
	}
	pthread_mutex_unlock(&pool.lock);
}

void net_mac_str(const uint8_t mac[6], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
}

int net_ident_format(const struct net_ident *id, struct buf *b)
{
	char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN], mac[18];
	inet_ntop(AF_INET, &id->ip, ip, sizeof(ip));
	inet_ntop(AF_INET, &id->gateway, gw, sizeof(gw));
	net_mac_str(id->mac, mac);
	return buf_printf(b, "ip %s/%u\ngateway %s\nmac %s\nhost_if %s\n", ip, id->prefix_len, gw,
			  mac, id->host_if);
}
