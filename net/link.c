/* Link state changes inside a sandbox's network namespace (or a VM's
 * guest), with ioctls: sbx-init and the guest agent link this file alone. */
#define _GNU_SOURCE
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int if_flags(int fd, const char *name, short set, short clear)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags = (short)((ifr.ifr_flags | set) & ~clear);
	return ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

int net_lo_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int ret = if_flags(fd, "lo", IFF_UP | IFF_RUNNING, 0);
	close(fd);
	return ret;
}

static int if_addr(int fd, const char *name, unsigned long req, struct in_addr a)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr = a;
	return ioctl(fd, req, &ifr) < 0 ? -errno : 0;
}

static int route_default(int fd, const char *name, struct in_addr gw)
{
	struct rtentry rt;
	char dev[IFNAMSIZ];
	memset(&rt, 0, sizeof(rt));
	snprintf(dev, sizeof(dev), "%s", name);
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	struct sockaddr_in *g = (struct sockaddr_in *)&rt.rt_gateway;
	g->sin_family = AF_INET;
	g->sin_addr = gw;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	return ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST ? -errno : 0;
}

int net_if_configure(const char *name, const uint8_t *mac, struct in_addr ip, uint8_t prefix_len,
		     struct in_addr gw)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct in_addr mask = {prefix_len ? htonl(~0u << (32 - prefix_len)) : 0};
	struct in_addr brd = {ip.s_addr | ~mask.s_addr};
	int ret = 0;
	if (mac) {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
		if ((ret = if_flags(fd, name, 0, IFF_UP)) == 0 && ioctl(fd, SIOCSIFHWADDR, &ifr) < 0)
			ret = -errno;
	}
	if (ret == 0)
		ret = if_addr(fd, name, SIOCSIFADDR, ip);
	if (ret == 0)
		ret = if_addr(fd, name, SIOCSIFNETMASK, mask);
	if (ret == 0)
		ret = if_addr(fd, name, SIOCSIFBRDADDR, brd);
	if (ret == 0)
		ret = if_flags(fd, name, IFF_UP | IFF_RUNNING, 0);
	if (ret == 0)
		ret = route_default(fd, name, gw);
	close(fd);
	return ret;
}
