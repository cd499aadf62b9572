/* Network namespaces made ahead for `ns` sandboxes: making one is the
 * dearest namespace of a clone3 (about 0.6 ms here, against tens of µs for
 * the others), so low-priority threads (ahead.c) keep a few ready, each held
 * by an fd, and a create hands one to init instead of asking clone3 for it.
 * For sandboxes with networking, others hold the veth pair too (the
 * engine's veth_ahead): its making and filter are off the create path. They
 * hold nothing on disk: a daemon's death frees them, pairs included, with
 * its fds. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ahead.h"
#include "vmm.h"

/* One new namespace, entered by this thread and left again: its fd in
 * fd[0]; with sock, a route socket opened in it in fd[1], so that the
 * engine configures it without entering it. 0 or -errno. */
static int make_ns(int fd[2], bool sock, struct err *e)
{
	_cleanup_close_ int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0)
		return err_set(e, -errno, "cannot open this thread's network namespace: %s",
			       strerror(errno));
	if (unshare(CLONE_NEWNET) < 0)
		return err_set(e, -errno, "cannot make a network namespace: %s", strerror(errno));
	int r = 0;
	if ((fd[0] = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		r = err_set(e, -errno, "cannot open a new network namespace: %s", strerror(errno));
	else if (sock && (fd[1] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) < 0)
		r = err_set(e, -errno, "cannot open a route socket in a new network namespace: %s",
			    strerror(errno));
	if (setns(home, CLONE_NEWNET) < 0) /* not expected: the thread's own */
		r = err_set(e, -errno, "cannot go back to the host's network namespace: %s",
			    strerror(errno));
	return r;
}

static int make_bare(int fd[2], struct err *e)
{
	int r = make_ns(fd, false, e);
	if (r < 0)
		close_fds(fd, 2);
	return r;
}

/* One with the veth pair of a sandbox with networking inside. */
static int make_wired(int fd[2], struct err *e)
{
	const struct vmm_host *h = vmm_host();
	if (!h->veth_ahead)
		return err_set(e, -EOPNOTSUPP, "no veth pair to make ahead");
	int r = make_ns(fd, true, e);
	if (r == 0)
		r = h->veth_ahead(h->image_arg, fd[0], e);
	if (r < 0)
		close_fds(fd, 2);
	return r;
}

static struct vmm_ahead bare = VMM_AHEAD_INIT("network namespaces", 4, make_bare);
static struct vmm_ahead wired = VMM_AHEAD_INIT("veth pairs", 4, make_wired);

int vmm_netns_take(bool with_veth, int *sock)
{
	int fd[2];
	vmm_ahead_take(with_veth ? &wired : &bare, fd);
	if (sock)
		*sock = fd[1];
	return fd[0];
}

void vmm_netns_done(void)
{
	vmm_ahead_done(&bare);
	vmm_ahead_done(&wired);
}
