/* The daemon's DNS forwarder: one thread, two non-blocking UDP sockets (the
 * gateway's port 53, which sandboxes ask; one connected to the upstream).
 * Each query a sandbox sends gets a fresh random id and a slot in a bounded
 * table; the upstream's answer goes back to that sandbox only when it
 * matches the slot's id and question, and its A records are handed to the
 * daemon (ops->learn) for the sandbox's domain rules. Queries and answers
 * are read a bounded batch at a time from each socket in turn, so a flood on
 * one side does not starve the other. */
#define _GNU_SOURCE
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define PER_SOURCE_MAX 32
#define WAIT_USEC (5 * 1000000ull)
#define BATCH 64

struct slot {
	bool used;
	uint16_t orig_id;
	struct sockaddr_in from;
	uint64_t sent_usec;
	struct net_dns_q q; /* as sent upstream: the fresh id */
};

static struct {
	pthread_t thread;
	bool running;
	int listen_fd, up_fd, stop_fd;
	struct net_dns_ops ops;
	struct slot slots[NET_DNS_PENDING];
	_Atomic uint64_t queries, answers, dropped;
} fwd = { .listen_fd = -1, .up_fd = -1, .stop_fd = -1 };

void net_dns_counts(uint64_t *queries, uint64_t *answers, uint64_t *dropped)
{
	*queries = atomic_load(&fwd.queries);
	*answers = atomic_load(&fwd.answers);
	*dropped = atomic_load(&fwd.dropped);
}

static uint16_t rd_id(const uint8_t *m) { return (uint16_t)(m[0] << 8 | m[1]); }

static uint16_t fresh_id(void)
{
	uint16_t id;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)(now_usec() ^ (now_usec() >> 16));
	return id;
}

/* A free slot for a query from `from`, or NULL when the table (or this
 * sandbox's share of it) is full. */
static struct slot *slot_take(const struct sockaddr_in *from)
{
	struct slot *free_slot = NULL;
	int mine = 0;
	for (size_t i = 0; i < NET_DNS_PENDING; i++) {
		struct slot *s = &fwd.slots[i];
		if (!s->used)
			free_slot = free_slot ? free_slot : s;
		else if (s->from.sin_addr.s_addr == from->sin_addr.s_addr)
			mine++;
	}
	return mine < PER_SOURCE_MAX ? free_slot : NULL;
}

static void on_query(const uint8_t *m, size_t n, const struct sockaddr_in *from)
{
	struct net_dns_q q;
	if (net_dns_parse_query(m, n, &q) < 0 || !fwd.ops.known(from->sin_addr, fwd.ops.arg)) {
		atomic_fetch_add(&fwd.dropped, 1);
		return;
	}
	struct slot *s = slot_take(from);
	if (!s) {
		atomic_fetch_add(&fwd.dropped, 1);
		return;
	}
	uint8_t out[NET_DNS_MSG_MAX];
	memcpy(out, m, n);
	q.id = fresh_id();
	out[0] = (uint8_t)(q.id >> 8);
	out[1] = (uint8_t)q.id;
	if (send(fwd.up_fd, out, n, MSG_DONTWAIT) != (ssize_t)n) {
		atomic_fetch_add(&fwd.dropped, 1);
		return;
	}
	s->used = true;
	s->orig_id = rd_id(m);
	s->from = *from;
	s->sent_usec = now_usec();
	s->q = q;
	atomic_fetch_add(&fwd.queries, 1);
}

static void on_answer(uint8_t *m, size_t n)
{
	static struct net_dns_a a[NET_DNS_A_MAX];
	if (n < 2) {
		atomic_fetch_add(&fwd.dropped, 1);
		return;
	}
	uint16_t id = rd_id(m);
	for (size_t i = 0; i < NET_DNS_PENDING; i++) {
		struct slot *s = &fwd.slots[i];
		if (!s->used || s->q.id != id)
			continue;
		int got = net_dns_parse_answer(m, n, &s->q, a, NET_DNS_A_MAX);
		if (got == -EPROTO)
			continue; /* another query's id, by chance */
		s->used = false;
		if (got < 0)
			break;
		m[0] = (uint8_t)(s->orig_id >> 8);
		m[1] = (uint8_t)s->orig_id;
		if (got > 0)
			fwd.ops.learn(s->from.sin_addr, s->q.name, a, got, fwd.ops.arg);
		/* After learn: the sandbox connects once it has the answer. */
		if (sendto(fwd.listen_fd, m, n, MSG_DONTWAIT, (const struct sockaddr *)&s->from,
			   sizeof(s->from)) == (ssize_t)n) {
			atomic_fetch_add(&fwd.answers, 1);
			return;
		}
		break;
	}
	atomic_fetch_add(&fwd.dropped, 1);
}

/* Reads at most BATCH datagrams from fd. */
static void drain(int fd, bool queries)
{
	static uint8_t m[NET_DNS_MSG_MAX + 1];
	for (int i = 0; i < BATCH; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		if ((size_t)n > NET_DNS_MSG_MAX || fl != sizeof(from) || from.sin_family != AF_INET) {
			atomic_fetch_add(&fwd.dropped, 1);
			continue;
		}
		if (queries)
			on_query(m, (size_t)n, &from);
		else
			on_answer(m, (size_t)n);
	}
}

static void expire(uint64_t now)
{
	for (size_t i = 0; i < NET_DNS_PENDING; i++)
		if (fwd.slots[i].used && now - fwd.slots[i].sent_usec > WAIT_USEC) {
			fwd.slots[i].used = false;
			atomic_fetch_add(&fwd.dropped, 1);
		}
}

static void *fwd_main(void *arg)
{
	uint64_t last_tick = now_usec();
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = fwd.listen_fd, .events = POLLIN },
			{ .fd = fwd.up_fd, .events = POLLIN },
			{ .fd = fwd.stop_fd, .events = POLLIN },
		};
		if (poll(p, 3, 1000) < 0 && errno != EINTR)
			break;
		if (p[2].revents)
			break;
		/* A batch from each side per wake (poll returns at once while
		 * either has more), so a flood on one side neither starves the
		 * other nor keeps the loop from its timer and its stop. */
		if (p[1].revents & POLLIN)
			drain(fwd.up_fd, false);
		if (p[0].revents & POLLIN)
			drain(fwd.listen_fd, true);
		uint64_t now = now_usec();
		if (now - last_tick >= 1000000) {
			last_tick = now;
			expire(now);
			fwd.ops.tick(fwd.ops.arg);
		}
	}
	return NULL;
}

static int udp_socket(struct sockaddr_in *bind_to, struct sockaddr_in *connect_to)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, rcvbuf = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	if ((bind_to && bind(fd, (struct sockaddr *)bind_to, sizeof(*bind_to)) < 0) ||
	    (connect_to && connect(fd, (struct sockaddr *)connect_to, sizeof(*connect_to)) < 0)) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int net_dns_start(struct in_addr listen, struct in_addr upstream, uint16_t upstream_port,
		  const struct net_dns_ops *ops, struct err *e)
{
	char ls[INET_ADDRSTRLEN], us[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &listen, ls, sizeof(ls));
	inet_ntop(AF_INET, &upstream, us, sizeof(us));
	struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = listen };
	struct sockaddr_in ua = { .sin_family = AF_INET, .sin_port = htons(upstream_port),
				  .sin_addr = upstream };
	memset(fwd.slots, 0, sizeof(fwd.slots));
	fwd.ops = *ops;
	int r = udp_socket(&la, NULL);
	if (r < 0)
		return err_set(e, r, "DNS: cannot listen on %s port 53 (udp): %s", ls, strerror(-r));
	fwd.listen_fd = r;
	if ((r = udp_socket(NULL, &ua)) < 0) {
		err_set(e, r, "DNS: cannot reach the upstream %s port %u: %s", us, upstream_port,
			strerror(-r));
		goto fail;
	}
	fwd.up_fd = r;
	if ((fwd.stop_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		r = err_set(e, -errno, "DNS: eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((r = -pthread_create(&fwd.thread, NULL, fwd_main, NULL)) < 0) {
		err_set(e, r, "DNS: cannot start the forwarder's thread: %s", strerror(-r));
		goto fail;
	}
	fwd.running = true;
	return 0;
fail:
	net_dns_stop();
	return r;
}

void net_dns_stop(void)
{
	if (fwd.running) {
		uint64_t one = 1;
		if (write(fwd.stop_fd, &one, sizeof(one)) < 0)
			log_warn("DNS: cannot wake the forwarder to stop it: %s", strerror(errno));
		pthread_join(fwd.thread, NULL);
		fwd.running = false;
	}
	int *fds[] = { &fwd.listen_fd, &fwd.up_fd, &fwd.stop_fd };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}
