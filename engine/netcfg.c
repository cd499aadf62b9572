/* The engine's side of networking: one bridge and subnet per daemon, an
 * identity (IP, MAC, device names) reserved per sandbox with its name and
 * journaled with it, the veth pair wired between clone and go (no lock held
 * while devices are made), and traffic shaping on the worker pool after the
 * sandbox is running. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../net/net.h"
#include "sbx.h"

static bool net_up;

bool engine_net_enabled(void) { return net_up; }

int engine_net_start(struct err *e)
{
	if (!eng.o.net)
		return 0;
	char prefix[IFNAMSIZ];
	int r = net_alloc_init(eng.o.subnet, e);
	if (r < 0)
		return r;
	/* Device names carry this daemon's tag, so two daemons never collide. */
	snprintf(prefix, sizeof(prefix), "sbx%.4s-", vmm_host()->tag);
	if ((r = net_alloc_set_ifprefix(prefix, e)) < 0)
		return r;
	struct in_addr gw;
	uint8_t plen;
	net_alloc_gateway(&gw, &plen);
	if ((r = net_bridge_ensure(eng.o.bridge, gw, plen, e)) < 0)
		return r;
	if (eng.o.nat && (r = net_nat_enable(eng.o.subnet, e)) < 0)
		return r;
	net_up = true;
	char gws[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &gw, gws, sizeof(gws));
	log_info("network: bridge %s, gateway %s/%u, subnet %s%s", eng.o.bridge, gws, plen,
		 eng.o.subnet, eng.o.nat ? ", NAT on" : "");
	return 0;
}

/* The bridge goes with the daemon when nothing is attached to it any more. */
void engine_net_stop(void)
{
	if (!net_up)
		return;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/class/net/%s/brif", eng.o.bridge);
	DIR *d = opendir(path);
	int ports = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		ports += de->d_name[0] != '.';
	if (d)
		closedir(d);
	if (eng.o.nat)
		net_nat_disable(eng.o.subnet, NULL);
	if (ports == 0 && net_bridge_remove(eng.o.bridge, NULL) == 0)
		log_info("network: bridge %s removed (no sandbox on it)", eng.o.bridge);
	net_alloc_fini();
	net_up = false;
}

int sbx_net_reserve(struct sbx *s, const char *exact_ip, struct err *e)
{
	if (!s->cfg.net)
		return 0;
	if (!net_up)
		return err_set(e, -EOPNOTSUPP, "net=on, but this daemon runs without networking "
			       "(--no-net)");
	int r = exact_ip ? net_reserve_exact(s->node.name, exact_ip, &s->net, e)
			 : net_reserve(s->node.name, &s->net, e);
	if (r == 0)
		s->net_reserved = true;
	return r;
}

void sbx_net_release(struct sbx *s)
{
	if (!s->net_reserved)
		return;
	net_veth_teardown(&s->net, NULL); /* gone with its netns already, most of the time */
	net_release(&s->net);
	s->net_reserved = false;
}

/* Runs between clone and go: the sandbox's netns exists, its init waits. */
static int net_prestart(struct vmm_inst *vm, pid_t pid, void *arg, struct err *e)
{
	struct sbx *s = arg;
	(void)vm;
	uint64_t t0 = now_usec();
	if (s->t.starts > 0) /* a restart: the last run's host end may outlive its netns briefly */
		net_veth_teardown(&s->net, NULL);
	int r = net_veth_setup(&s->net, eng.o.bridge, pid, e);
	s->t.create_net_usec = now_usec() - t0;
	return r;
}

void sbx_net_prepare(struct sbx *s)
{
	s->vm.prestart = s->net_reserved ? net_prestart : NULL;
	s->vm.prestart_arg = s;
	s->rate_state = s->cfg.rate_bps ? "pending" : "-";
}

static void shape_job(void *arg)
{
	struct sbx *s = arg;
	struct err e = {0};
	pthread_mutex_lock(&s->lock);
	pid_t pid = s->vm.pid;
	bool running = atomic_load(&s->state) == SBX_RUNNING;
	pthread_mutex_unlock(&s->lock);
	uint64_t t0 = now_usec();
	int r = running ? net_shape_apply(&s->net, s->cfg.rate_bps, &e) : -ESRCH;
	if (r == 0)
		r = net_shape_apply_peer(&s->net, pid, s->cfg.rate_bps, &e);
	pthread_mutex_lock(&s->lock);
	s->t.net_shaping_usec = now_usec() - t0;
	if (r < 0 && running) {
		s->rate_state = "failed";
		sbx_fail(s, r, e.msg[0] ? e.msg : "traffic shaping failed");
	} else if (r == 0) {
		s->rate_state = "applied";
	}
	pthread_mutex_unlock(&s->lock);
	sbx_put(s);
}

/* After the sandbox runs: shaping is off the create path. */
void sbx_net_after_start(struct sbx *s)
{
	if (!s->net_reserved || !s->cfg.rate_bps)
		return;
	reg_tryget(&s->node);
	if (pool_submit(shape_job, s) < 0)
		sbx_put(s);
}

int sbx_show_net(struct sbx *s, struct buf *b)
{
	pthread_mutex_lock(&s->lock);
	int r;
	if (!s->net_reserved) {
		r = buf_printf(b, "net off\n");
	} else {
		r = net_ident_format(&s->net, b);
		if (r == 0 && s->cfg.rate_bps)
			r = buf_printf(b, "rate %" PRIu64 "\nrate_state %s\n", s->cfg.rate_bps,
				       s->rate_state);
		else if (r == 0)
			r = buf_printf(b, "rate -\n");
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

json_t *sbx_net_journal(struct sbx *s)
{
	if (!s->net_reserved)
		return json_null();
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &s->net.ip, ip, sizeof(ip));
	return json_pack("{s:s}", "ip", ip);
}
