/* Optional egress NAT (`--nat`, off by default): IPv4 forwarding and one
 * masquerade rule for the sandbox subnet, through nft or iptables. Start-up
 * only, so a subprocess is fine here; never on a create path. */
#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

/* Runs argv with stdout and stderr to /dev/null: its exit status, or -errno. */
static int run_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -ECHILD;
}

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
