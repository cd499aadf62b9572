/* A command-line driver of the net/ library for tests/net/netlink_smoke.sh:
 * each subcommand is one library call (or a timed batch of them), so the
 * script can wire namespaces it made itself and check the result with `ip`.
 *
 *   nettool bridge-ensure BR CIDR
 *   nettool bridge-remove BR
 *   nettool setup     BR CIDR PREFIX IP PID     veth for IP into the netns of PID
 *   nettool teardown  CIDR PREFIX IP
 *   nettool shape     CIDR PREFIX IP RATE [PID] tbf on the host end (and eth0 in PID)
 *   nettool bench     BR CIDR PREFIX FIRST N    time N setups into fresh netns
 *   nettool burst     BR CIDR PREFIX FIRST N    the same N setups at once, one thread each
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "../../net/net.h"

static int fail(const struct err *e)
{
	fprintf(stderr, "nettool: %s (%s)\n", e->msg, strerror(-e->code));
	return 1;
}

static int ident(const char *cidr, const char *prefix, const char *ip, struct net_ident *id,
		 struct err *e)
{
	int ret = net_alloc_init(cidr, e);
	if (ret == 0)
		ret = net_alloc_set_ifprefix(prefix, e);
	if (ret == 0)
		ret = net_reserve_exact("smoke", ip, id, e);
	return ret;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A child parked in a new network namespace until killed. */
static pid_t netns_child(void)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char ok = unshare(CLONE_NEWNET) == 0;
		if (write(p[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	char ok = 0;
	if (pid < 0 || read(p[0], &ok, 1) != 1 || !ok) {
		if (pid > 0)
			kill(pid, SIGKILL);
		pid = -1;
	}
	close(p[0]);
	return pid;
}

/* The network namespace of pid, as net_veth_setup takes it; -1 if gone. */
static int netns_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

struct job {
	struct net_ident id;
	const char *br;
	pid_t pid;
	uint64_t usec;
	struct err e;
	int ret;
};

static void *setup_job(void *p)
{
	struct job *j = p;
	int fd = netns_of(j->pid);
	uint64_t t0 = now_usec();
	j->ret = net_veth_setup(&j->id, j->br, fd, &j->e);
	j->usec = now_usec() - t0;
	close(fd);
	return NULL;
}

/* N setups into fresh namespaces, one after another or all at once. */
static int bench(const char *br, const char *cidr, const char *prefix, const char *first, int n,
		 bool parallel)
{
	struct err e = { 0 };
	struct in_addr a;
	if (n < 1 || n > 1000 || inet_pton(AF_INET, first, &a) != 1) {
		fprintf(stderr, "nettool: bad bench arguments\n");
		return 2;
	}
	if (net_alloc_init(cidr, &e) < 0 || net_alloc_set_ifprefix(prefix, &e) < 0)
		return fail(&e);
	struct job *jobs = calloc((size_t)n, sizeof(*jobs));
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	uint64_t *us = calloc((size_t)n, sizeof(*us));
	int rc = 0, made = 0;
	for (; made < n; made++) {
		char ip[INET_ADDRSTRLEN];
		struct in_addr x = { .s_addr = htonl(ntohl(a.s_addr) + (uint32_t)made) };
		inet_ntop(AF_INET, &x, ip, sizeof(ip));
		jobs[made].br = br;
		jobs[made].pid = netns_child();
		if (jobs[made].pid < 0) {
			fprintf(stderr, "nettool: no netns child\n");
			rc = 1;
			break;
		}
		if (net_reserve_exact("bench", ip, &jobs[made].id, &e) < 0) {
			rc = fail(&e);
			made++;
			break;
		}
	}
	uint64_t t0 = now_usec();
	for (int i = 0; i < made && rc == 0; i++) {
		if (!parallel)
			setup_job(&jobs[i]);
		else if (pthread_create(&th[i], NULL, setup_job, &jobs[i]) != 0)
			jobs[i].ret = -EAGAIN;
	}
	if (parallel && rc == 0)
		for (int i = 0; i < made; i++)
			pthread_join(th[i], NULL);
	uint64_t wall = now_usec() - t0;
	for (int i = 0; i < made && rc == 0; i++) {
		if (jobs[i].ret < 0)
			rc = fail(&jobs[i].e);
		us[i] = jobs[i].usec;
	}
	uint64_t td0 = now_usec();
	for (int i = 0; i < made; i++)
		if (net_veth_teardown(&jobs[i].id, &e) < 0)
			rc = fail(&e);
	uint64_t td = made ? (now_usec() - td0) / (uint64_t)made : 0;
	for (int i = 0; i < made; i++)
		if (jobs[i].pid > 0) {
			kill(jobs[i].pid, SIGKILL);
			waitpid(jobs[i].pid, NULL, 0);
		}
	if (rc == 0) {
		qsort(us, (size_t)n, sizeof(*us), cmp_u64);
		printf("net_veth_setup %s n=%d min_us=%llu median_us=%llu p90_us=%llu max_us=%llu wall_us=%llu teardown_avg_us=%llu\n",
		       parallel ? "burst" : "serial", n, (unsigned long long)us[0],
		       (unsigned long long)us[n / 2], (unsigned long long)us[(n * 9) / 10],
		       (unsigned long long)us[n - 1], (unsigned long long)wall, (unsigned long long)td);
	}
	free(jobs);
	free(th);
	free(us);
	return rc;
}

int main(int argc, char **argv)
{
	struct err e = { 0 };
	struct net_ident id;
	const char *cmd = argc > 1 ? argv[1] : "";
	log_init(LOG_LVL_WARN, false);

	if (!strcmp(cmd, "bridge-ensure") && argc == 4) {
		if (net_alloc_init(argv[3], &e) < 0)
			return fail(&e);
		struct in_addr gw;
		uint8_t plen;
		net_alloc_gateway(&gw, &plen);
		return net_bridge_ensure(argv[2], gw, plen, &e) < 0 ? fail(&e) : 0;
	}
	if (!strcmp(cmd, "bridge-remove") && argc == 3)
		return net_bridge_remove(argv[2], &e) < 0 ? fail(&e) : 0;
	if (!strcmp(cmd, "setup") && argc == 7) {
		if (ident(argv[3], argv[4], argv[5], &id, &e) < 0)
			return fail(&e);
		uint64_t t0 = now_usec();
		int fd = netns_of((pid_t)atoi(argv[6]));
		if (fd < 0) {
			perror("nettool: the network namespace of PID");
			return 1;
		}
		if (net_veth_setup(&id, argv[2], fd, &e) < 0)
			return fail(&e);
		char mac[18];
		net_mac_str(id.mac, mac);
		printf("host_if %s\nmac %s\nsetup_us %llu\n", id.host_if, mac,
		       (unsigned long long)(now_usec() - t0));
		return 0;
	}
	if (!strcmp(cmd, "teardown") && argc == 5) {
		if (ident(argv[2], argv[3], argv[4], &id, &e) < 0)
			return fail(&e);
		return net_veth_teardown(&id, &e) < 0 ? fail(&e) : 0;
	}
	if (!strcmp(cmd, "shape") && (argc == 6 || argc == 7)) {
		uint64_t bps;
		if (net_parse_rate(argv[5], &bps) < 0) {
			if (strcmp(argv[5], "0") != 0) {
				fprintf(stderr, "nettool: bad rate '%s'\n", argv[5]);
				return 2;
			}
			bps = 0;
		}
		if (ident(argv[2], argv[3], argv[4], &id, &e) < 0 || net_shape_apply(&id, bps, &e) < 0)
			return fail(&e);
		if (argc == 7 && net_shape_apply_peer(&id, (pid_t)atoi(argv[6]), bps, &e) < 0)
			return fail(&e);
		return 0;
	}
	if ((!strcmp(cmd, "bench") || !strcmp(cmd, "burst")) && argc == 7)
		return bench(argv[2], argv[3], argv[4], argv[5], atoi(argv[6]), !strcmp(cmd, "burst"));
	fprintf(stderr, "usage: see the top of tests/net/nettool.c\n");
	return 2;
}
