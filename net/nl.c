/* The rtnetlink client shared by rtnl.c, spoof.c and shape.c: open, send one
 * request, collect its acknowledgement (with the kernel's extended-ack text),
 * and run a step inside another network namespace from a private thread. */
#define _GNU_SOURCE
#include "nl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* sock_fd: a route socket of the caller's to use (a copy of it), or -1: a new one. */
static int nl_open(struct nl *nl, int sock_fd, struct err *e)
{
	nl->ext_msg[0] = '\0';
	int fd = sock_fd >= 0 ? fcntl(sock_fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (sock_fd >= 0 && fd < 0)
		return err_set(e, -errno, "cannot copy a netlink socket: %s", strerror(errno));
	nl->sock = fd >= 0 ? mnl_socket_fdopen(fd) : mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return err_set(e, r, "cannot open a netlink socket: %s", strerror(-r));
	}
	int one = 1;
	/* Best effort: without them errors just carry no kernel sentence. */
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int ret = -errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return err_set(e, ret, "cannot bind a netlink socket: %s", strerror(-ret));
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = 1;
	return 0;
}

int nl_new_at(struct nl **out, int sock_fd, struct err *e)
{
	*out = NULL;
	struct nl *nl = malloc(sizeof(*nl));
	if (!nl)
		return err_set(e, -ENOMEM, "no memory for a netlink request");
	int ret = nl_open(nl, sock_fd, e);
	if (ret < 0) {
		free(nl);
		return ret;
	}
	*out = nl;
	return 0;
}

int nl_new(struct nl **out, struct err *e) { return nl_new_at(out, -1, e); }

void nl_free(struct nl *nl)
{
	mnl_socket_close(nl->sock);
	free(nl);
}

struct nlmsghdr *nl_msg(struct nl *nl, uint16_t type, uint16_t flags, size_t hdr_len)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	void *hdr = mnl_nlmsg_put_extra_header(nlh, hdr_len);
	memset(hdr, 0, hdr_len);
	return nlh;
}

static int ext_attr_cb(const struct nlattr *attr, void *data)
{
	struct nl *nl = data;
	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(nl->ext_msg, sizeof(nl->ext_msg), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

/* The errno of an NLMSG_ERROR message (0 is the acknowledgement), keeping the
 * extended-ack text when there is one. */
static int ack_error(struct nl *nl, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
		return -EBADMSG;
	if (err->error && (nlh->nlmsg_flags & NLM_F_ACK_TLVS)) {
		size_t off = sizeof(*err);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
		size_t plen = mnl_nlmsg_get_payload_len(nlh);
		if (off < plen)
			mnl_attr_parse_payload((const char *)err + off, plen - off, ext_attr_cb, nl);
	}
	return err->error;
}

int nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	nl->ext_msg[0] = '\0';
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	uint32_t seq = nlh->nlmsg_seq;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->rbuf, sizeof(nl->rbuf));
		if (n < 0)
			return -errno;
		const struct nlmsghdr *m = (const struct nlmsghdr *)nl->rbuf;
		int len = (int)n;
		for (; mnl_nlmsg_ok(m, len); m = mnl_nlmsg_next(m, &len)) {
			if (m->nlmsg_seq != seq || m->nlmsg_pid != nl->portid)
				continue;
			if (m->nlmsg_type == NLMSG_ERROR)
				return ack_error(nl, m);
			if (m->nlmsg_type == NLMSG_DONE)
				return 0;
			if (cb && cb(m, data) < MNL_CB_OK)
				return -EBADMSG;
		}
	}
}

const char *nl_why(const struct nl *nl)
{
	static __thread char why[sizeof(nl->ext_msg) + 16];
	if (!nl->ext_msg[0])
		return "";
	snprintf(why, sizeof(why), " (kernel: %s)", nl->ext_msg);
	return why;
}

int nl_link_del(struct nl *nl, const char *name)
{
	struct nlmsghdr *nlh = nl_msg(nl, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nl_talk(nl, nlh, NULL, NULL);
}

struct netns_call {
	int nsfd;
	int (*fn)(void *arg);
	void *arg;
	int ret;
	bool entered;
};

static void *netns_thread(void *p)
{
	struct netns_call *c = p;
	/* Only this thread moves: setns changes the calling thread's namespace. */
	if (setns(c->nsfd, CLONE_NEWNET) < 0) {
		c->ret = -errno;
		return NULL;
	}
	c->entered = true;
	c->ret = c->fn(c->arg);
	return NULL;
}

int nl_in_netns_fd(int netns_fd, int (*fn)(void *arg), void *arg, struct err *e)
{
	struct netns_call c = { .nsfd = netns_fd, .fn = fn, .arg = arg };
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024); /* the work is netlink calls; keep it small */
	pthread_t t;
	int rc = pthread_create(&t, &attr, netns_thread, &c);
	pthread_attr_destroy(&attr);
	if (rc)
		return err_set(e, -rc, "cannot start a thread to enter a network namespace: %s",
			       strerror(rc));
	pthread_join(t, NULL);
	if (!c.entered)
		return err_set(e, c.ret, "cannot enter a network namespace: %s", strerror(-c.ret));
	return c.ret;
}

int nl_in_netns(pid_t pid, int (*fn)(void *arg), void *arg, struct err *e)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "cannot open the network namespace of pid %d: %s", (int)pid,
			       strerror(errno));
	return nl_in_netns_fd(fd, fn, arg, e);
}
