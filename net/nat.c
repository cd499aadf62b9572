/* Optional egress NAT (`--nat`, off by default): IPv4 forwarding and one
 * masquerade rule for the sandbox subnet, through nft or iptables. Start-up
 * only, so a subprocess is fine here; never on a create path. */
#define _GNU_SOURCE
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

/* Runs argv with stdout and stderr to /dev/null and, when input is not NULL,
 * that text on its stdin: its exit status, or -errno. */
static int run_quiet_input(char *const argv[], const char *input)
{
	int p[2] = {-1, -1};
	if (input && pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (input)
		posix_spawn_file_actions_adddup2(&fa, p[0], 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (input) {
		close(p[0]);
		for (size_t off = 0, len = strlen(input); !rc && off < len;) {
			ssize_t n = write(p[1], input + off, len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		close(p[1]);
	}
	if (rc)
		return -rc;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -ECHILD;
}

static int run_quiet(char *const argv[]) { return run_quiet_input(argv, NULL); }

static bool have(const char *tool)
{
	char *const argv[] = { (char *)tool, "--version", NULL };
	return run_quiet(argv) == 0;
}

static int valid_subnet(const char *subnet, struct err *e)
{
	for (const char *p = subnet; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '/'))
			return err_set(e, -EINVAL, "subnet '%s' is not of the form A.B.C.D/LEN", subnet);
	return 0;
}

int net_nat_enable(const char *subnet, struct err *e)
{
	int ret = valid_subnet(subnet, e);
	if (ret < 0)
		return ret;
	bool nft = have("nft"), ipt = !nft && have("iptables");
	if (!nft && !ipt)
		return err_set(e, -ENOTSUP,
			       "cannot enable NAT for %s: neither nft nor iptables is installed", subnet);
	ret = write_file_str("/proc/sys/net/ipv4/ip_forward", "1\n");
	if (ret < 0)
		return err_set(e, ret, "cannot enable IPv4 forwarding: %s", strerror(-ret));
	char *s = (char *)subnet;
	if (nft) {
		char *const table[] = { "nft", "add", "table", "ip", "sandboxfs", NULL };
		char *const chain[] = { "nft", "add", "chain", "ip", "sandboxfs", "postrouting",
					"{ type nat hook postrouting priority srcnat; policy accept; }", NULL };
		char *const flush[] = { "nft", "flush", "chain", "ip", "sandboxfs", "postrouting", NULL };
		char *const rule[] = { "nft", "add", "rule", "ip", "sandboxfs", "postrouting", "ip", "saddr",
				       s, "ip", "daddr", "!=", s, "masquerade", NULL };
		if (run_quiet(table) || run_quiet(chain) || run_quiet(flush) || run_quiet(rule))
			return err_set(e, -EIO, "nft refused the masquerade rule for %s", subnet);
		return 0;
	}
	{
		char *const check[] = { "iptables", "-t", "nat", "-C", "POSTROUTING", "-s", s, "!", "-d",
					s, "-j", "MASQUERADE", NULL };
		char *const add[] = { "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", s, "!", "-d",
				      s, "-j", "MASQUERADE", NULL };
		if (run_quiet(check) != 0 && run_quiet(add) != 0)
			return err_set(e, -EIO, "iptables refused the masquerade rule for %s", subnet);
		return 0;
	}
}

int net_nat_disable(const char *subnet, struct err *e)
{
	int ret = valid_subnet(subnet, e);
	if (ret < 0)
		return ret;
	char *s = (char *)subnet;
	if (have("nft")) {
		char *const del[] = { "nft", "delete", "table", "ip", "sandboxfs", NULL };
		run_quiet(del); /* absent is fine */
		return 0;
	}
	if (have("iptables")) {
		char *const del[] = { "iptables", "-t", "nat", "-D", "POSTROUTING", "-s", s, "!", "-d",
				      s, "-j", "MASQUERADE", NULL };
		while (run_quiet(del) == 0)
			;
		return 0;
	}
	return 0;
}

/* ---- exposed ports: DNAT from the host's own addresses to sandboxes ----
 * One nft table per daemon holds a map (protocol, host port) -> (sandbox
 * address, port) and two nat chains (prerouting: from elsewhere, output: from
 * the host itself) that look TCP and UDP packets to a local address up in it.
 * Exposing or withdrawing a port is one map element: no rule handles to
 * track, and a host port is taken once per protocol by the map's key. */

static int nft_script(const char *script)
{
	char *const argv[] = { "nft", "-f", "-", NULL };
	int r = run_quiet_input(argv, script);
	return r < 0 ? r : r ? -EIO : 0;
}

void net_expose_format(const struct net_expose *x, char *out)
{
	const char *proto = net_proto_name(x->proto);
	snprintf(out, NET_EXPOSE_TEXT_MAX, "expose %s %u %u", proto ? proto : "?", x->port,
		 x->host_port);
}

int net_expose_start(const char *table, struct err *e)
{
	if (!have("nft"))
		return err_set(e, -ENOTSUP, "nft is not installed: ports cannot be exposed "
			       "(install nftables)");
	char script[1024];
	/* Made afresh: what an earlier daemon exposed is journaled and added again. */
	snprintf(script, sizeof(script),
		 "table ip %s {}\n"
		 "delete table ip %s\n"
		 "table ip %s {\n"
		 " map expose { type inet_proto . inet_service : ipv4_addr . inet_service; }\n"
		 " chain pre { type nat hook prerouting priority dstnat; policy accept;\n"
		 "  fib daddr type local meta l4proto { tcp, udp }"
		 " dnat ip to meta l4proto . th dport map @expose; }\n"
		 " chain out { type nat hook output priority -100; policy accept;\n"
		 "  fib daddr type local meta l4proto { tcp, udp }"
		 " dnat ip to meta l4proto . th dport map @expose; }\n"
		 "}\n", table, table, table);
	int r = nft_script(script);
	return r < 0 ? err_set(e, r, "nft refused the table %s for exposed ports", table) : 0;
}

int net_expose_set(const char *table, const struct net_expose *x, struct in_addr ip, bool add,
		   struct err *e)
{
	char script[256], ips[INET_ADDRSTRLEN];
	const char *proto = net_proto_name(x->proto);
	if (x->proto != IPPROTO_TCP && x->proto != IPPROTO_UDP)
		return err_set(e, -EINVAL, "ports are exposed for tcp or udp only");
	inet_ntop(AF_INET, &ip, ips, sizeof(ips));
	if (add)
		snprintf(script, sizeof(script), "add element ip %s expose { %s . %u : %s . %u }\n",
			 table, proto, x->host_port, ips, x->port);
	else
		snprintf(script, sizeof(script), "delete element ip %s expose { %s . %u }\n", table,
			 proto, x->host_port);
	int r = nft_script(script);
	return r < 0 ? err_set(e, r, "nft refused to %s %s host port %u",
			       add ? "expose" : "withdraw", proto, x->host_port) : 0;
}

void net_expose_stop(const char *table)
{
	char script[128];
	snprintf(script, sizeof(script), "delete table ip %s\n", table);
	nft_script(script);
}

int net_expose_hold(const struct net_expose *x, struct err *e)
{
	const char *proto = net_proto_name(x->proto);
	int fd = socket(AF_INET, (x->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
			0);
	if (fd < 0)
		return err_set(e, -errno, "cannot hold %s host port %u: %s", proto, x->host_port,
			       strerror(errno));
	/* No SO_REUSEADDR: a bind then conflicts with every socket on the port. */
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(x->host_port),
				 .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		if (r == -EADDRINUSE)
			return err_set(e, r, "%s host port %u is in use on the host (a service of "
				       "its own has it): not exposed", proto, x->host_port);
		return err_set(e, r, "cannot hold %s host port %u: %s", proto, x->host_port,
			       strerror(-r));
	}
	return fd;
}
