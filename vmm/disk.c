/* A sandbox's own disk (disk=SIZE, ns backend): an ext4 filesystem in a
 * sparse file of its state dir (disk.img) on a loop device that clears
 * itself once unmounted, mounted at NAME/disk (nosuid, nodev). The overlay's
 * upper and work dirs, the jobs' files and the console live in it, reached
 * through relative links of the state dir (upper -> disk/upper, ...), so
 * everything a sandbox makes the host store stops at SIZE with ENOSPC. A new
 * image is a sparse copy of a formatted template (one per size, made once
 * with mkfs.ext4 in STATE/disks): a create pays for a few hundred KB of
 * metadata, not for a mkfs. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/loop.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "vmm.h"

#define DISK_IMAGE "disk.img"
#define DISK_MNT "disk"
/* Templates kept, one per size; past this a create formats its image itself. */
#define TEMPLATES_MAX 16
#define LOOP_TRIES 16

/* What lives on the disk, and the link of the state dir that leads there. */
static const struct {
	const char *name;
	mode_t dir_mode; /* 0: a file, made by its writer (the console) */
} on_disk[] = {
	{"upper", 0755}, {"work", 0700}, {"jobs", 0700}, {"console.log", 0},
};

static pthread_mutex_t template_lock = PTHREAD_MUTEX_INITIALIZER;

static bool is_mounted(const struct vmm_inst *vm)
{
	char mnt[PATH_MAX + 16];
	struct stat d, m;
	snprintf(mnt, sizeof(mnt), "%s/" DISK_MNT, vm->dir);
	return stat(vm->dir, &d) == 0 && stat(mnt, &m) == 0 && d.st_dev != m.st_dev;
}

/* The last line of what a tool wrote to stderr (its tail kept in buf), for
 * a sentence. */
static void last_line(char *buf, size_t n, char *out, size_t cap)
{
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *l = strrchr(buf, '\n');
	snprintf(out, cap, "%s", l ? l + 1 : buf);
}

#define TOOL_TAIL_BYTES 4096 /* of a tool's stderr: its end is kept, however much it writes */
#define TOOL_TICK_MS 250

/* Reads the tool's stderr to EOF, keeping its last TOOL_TAIL_BYTES, while
 * the deadline and cancel flag are watched: 0 at EOF, or -ETIMEDOUT /
 * -ECANCELED (the caller kills it). */
static int drain(int fd, const struct vmm_tool_opts *o, char *tail, size_t *n)
{
	uint64_t deadline = o && o->timeout_usec ? now_usec() + o->timeout_usec : 0;
	char chunk[1024];
	for (;;) {
		if (o && o->cancel && atomic_load(o->cancel))
			return -ECANCELED;
		if (deadline && now_usec() >= deadline)
			return -ETIMEDOUT;
		if (o && o->tick)
			o->tick(o->arg);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int k = poll(&pfd, 1, TOOL_TICK_MS);
		if (k < 0 && errno != EINTR)
			return 0; /* cannot happen with one valid fd; wait for the exit */
		if (k <= 0)
			continue;
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return 0;
		size_t g = (size_t)got;
		if (*n + g > TOOL_TAIL_BYTES) { /* drop the oldest bytes */
			size_t drop = *n + g - TOOL_TAIL_BYTES; /* <= *n */
			memmove(tail, tail + drop, *n - drop);
			*n -= drop;
		}
		memcpy(tail + *n, chunk, g); /* g <= sizeof(chunk) < TOOL_TAIL_BYTES */
		*n += g;
	}
}

int vmm_run_tool(const char *const *tools, size_t ntools, char *const argv[], const char *pkg,
		 const char *what, struct err *e)
{
	return vmm_run_tool_opts(tools, ntools, argv, pkg, what, NULL, e);
}

int vmm_run_tool_opts(const char *const *tools, size_t ntools, char *const argv[],
		      const char *pkg, const char *what, const struct vmm_tool_opts *o,
		      struct err *e)
{
	char *envp[16] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
	size_t ne = 2;
	for (size_t i = 0; o && o->env && o->env[i] && ne < ARRAY_SIZE(envp) - 1; i++)
		envp[ne++] = (char *)o->env[i];
	envp[ne] = NULL;
	int p[2] = {-1, -1}, r;
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(e, -errno, "pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	pid_t pid = -1;
	r = ENOENT;
	for (size_t i = 0; i < ntools && r == ENOENT; i++)
		r = tools[i][0] == '/' ? posix_spawn(&pid, tools[i], &fa, NULL, argv, envp)
				       : posix_spawnp(&pid, tools[i], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (r != 0) {
		close(p[0]);
		return err_set(e, -r, "cannot run %s (%s), which %s needs: %s", argv[0], pkg, what,
			       strerror(r));
	}
	char tail[TOOL_TAIL_BYTES + 1], why[256];
	size_t n = 0;
	int ended = drain(p[0], o, tail, &n);
	close(p[0]);
	if (ended < 0)
		kill(pid, SIGKILL);
	last_line(tail, n, why, sizeof(why));
	if (o && o->reason)
		o->reason(why, sizeof(why));
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (ended == -ETIMEDOUT)
		return err_set(e, -ETIMEDOUT, "%s for %s did not end within %" PRIu64 " s%s%s",
			       argv[0], what, o->timeout_usec / 1000000, why[0] ? "; its last words: "
			       : "", why);
	if (ended == -ECANCELED)
		return err_set(e, -ECANCELED, "%s for %s was ended: the daemon is stopping", argv[0],
			       what);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return err_set(e, -EIO, "%s for %s failed: %s", argv[0], what,
			       why[0] ? why : "no reason given");
	return 0;
}

/* Formats img (made here, bytes long, sparse) as ext4 with mkfs.ext4: 4 KiB
 * blocks, no reserved blocks (the sandbox writes as root), no journal (a
 * sandbox's scratch disk; half the writes), no resize inode (never grown). */
static int mkfs_image(const char *img, uint64_t bytes, struct err *e)
{
	static const char *const tools[] = {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4", "mkfs.ext4"};
	char *argv[] = {"mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-O",
			"^has_journal,^resize_inode", "-E",
			"lazy_itable_init=1,lazy_journal_init=1,nodiscard", (char *)img, NULL};
	int fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), r;
	if (fd < 0)
		return err_set(e, -errno, "cannot create %s: %s", img, strerror(errno));
	r = ftruncate(fd, (off_t)bytes) < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return err_set(e, r, "cannot size %s to %" PRIu64 " bytes: %s", img, bytes,
			       strerror(-r));
	return vmm_run_tool(tools, ARRAY_SIZE(tools), argv, "e2fsprogs", "disk=", e);
}

static int count_templates(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += strncmp(de->d_name, "ext4-", 5) == 0 && !strstr(de->d_name, ".tmp");
	if (d)
		closedir(d);
	return n;
}

/* The template of this size (path in out), made now if missing: 0; 1 when
 * the cache is full (the caller formats its image itself); or -errno. */
static int template_get(uint64_t bytes, char *out, size_t cap, struct err *e)
{
	const char *dir = vmm_host()->disks_dir;
	char tmp[PATH_MAX + 64];
	int r = 0;
	snprintf(out, cap, "%s/ext4-%" PRIu64 ".img", dir, bytes);
	pthread_mutex_lock(&template_lock);
	if (access(out, F_OK) == 0)
		goto out;
	if ((r = mkdir_p(dir, 0700)) < 0) {
		err_set(e, r, "cannot create %s: %s", dir, strerror(-r));
		goto out;
	}
	if (count_templates(dir) >= TEMPLATES_MAX) {
		r = 1;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	unlink(tmp); /* a daemon that died in a mkfs */
	if ((r = mkfs_image(tmp, bytes, e)) == 0 && rename(tmp, out) < 0)
		r = err_set(e, -errno, "cannot rename %s: %s", tmp, strerror(errno));
	if (r < 0)
		unlink(tmp);
	else
		log_info("disk template of %" PRIu64 " bytes made: %s", bytes, out);
out:
	pthread_mutex_unlock(&template_lock);
	return r;
}

/* disk.img, made (a copy of the template, or formatted) unless it exists.
 * Made under another name and renamed: a half-made image is never taken. */
static int image_make(struct vmm_inst *vm, const char *img, struct err *e)
{
	char tpl[PATH_MAX + 64], tmp[PATH_MAX + 16];
	if (access(img, F_OK) == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", img);
	unlink(tmp);
	int r = template_get(vm->lim.disk_bytes, tpl, sizeof(tpl), e);
	if (r == 0)
		r = vmm_copy_sparse(tpl, tmp, false, e);
	else if (r == 1)
		r = mkfs_image(tmp, vm->lim.disk_bytes, e);
	if (r == 0 && rename(tmp, img) < 0)
		r = err_set(e, -errno, "cannot rename %s: %s", tmp, strerror(errno));
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Makes /dev/loopN from the number sysfs gives it, and opens it. */
static int loop_node(int n, const char *dev)
{
	char path[64], num[32];
	unsigned maj, min;
	snprintf(path, sizeof(path), "/sys/block/loop%d/dev", n);
	if (read_file_str(path, num, sizeof(num)) < 0 || sscanf(num, "%u:%u", &maj, &min) != 2) {
		errno = ENOENT;
		return -1;
	}
	if (mknod(dev, S_IFBLK | 0600, makedev(maj, min)) < 0 && errno != EEXIST)
		return -1;
	return open(dev, O_RDWR | O_CLOEXEC);
}

/* A free loop device bound to img, cleared by the kernel when its last user
 * (the mount) goes. Returns its fd (dev: its path), or -errno. */
static int loop_attach(const char *img, char *dev, size_t cap, struct err *e)
{
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int file = open(img, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return err_set(e, -errno, "disk= needs loop devices: /dev/loop-control: %s",
			       strerror(errno));
	if (file < 0)
		return err_set(e, -errno, "cannot open %s: %s", img, strerror(errno));
	for (int tries = 0; tries < LOOP_TRIES; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return err_set(e, -errno, "no free loop device: %s", strerror(errno));
		snprintf(dev, cap, "/dev/loop%d", n);
		int fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) /* no devtmpfs node (a container's /dev) */
			fd = loop_node(n, dev);
		if (fd < 0)
			return err_set(e, -errno, "cannot open %s: %s", dev, strerror(errno));
		/* Buffered, not LO_FLAGS_DIRECT_IO: direct reads of an image whose
		 * copy is still in the page cache wait for it to be written back,
		 * which made a create 5 to 20 ms slower here. The cost: a page the
		 * sandbox writes is cached twice (its filesystem's, the image's),
		 * the second as reclaimable page cache of the host. */
		struct loop_config lc;
		memset(&lc, 0, sizeof(lc));
		lc.fd = (uint32_t)file;
		lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		snprintf((char *)lc.info.lo_file_name, sizeof(lc.info.lo_file_name), "%s", img);
		if (ioctl(fd, LOOP_CONFIGURE, &lc) == 0)
			return fd;
		int err = errno;
		close(fd);
		if (err != EBUSY) /* EBUSY: another process took it first */
			return err_set(e, -err, "cannot bind %s to %s: %s", dev, img, strerror(err));
	}
	return err_set(e, -EBUSY, "no loop device stayed free for %s", img);
}

/* The links of the state dir into the disk, and their targets on it. */
static int make_links(struct vmm_inst *vm, struct err *e)
{
	char target[64], have[64];
	_cleanup_close_ int dfd = open(vm->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(e, -errno, "cannot open %s: %s", vm->dir, strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(on_disk); i++) {
		snprintf(target, sizeof(target), DISK_MNT "/%s", on_disk[i].name);
		if (on_disk[i].dir_mode && mkdirat(dfd, target, on_disk[i].dir_mode) < 0 &&
		    errno != EEXIST)
			return err_set(e, -errno, "cannot create %s/%s: %s", vm->dir, target,
				       strerror(errno));
		if (symlinkat(target, dfd, on_disk[i].name) == 0)
			continue;
		ssize_t n = errno == EEXIST ? readlinkat(dfd, on_disk[i].name, have, sizeof(have) - 1)
					    : -1;
		if (n < 0 || (size_t)n != strlen(target) || memcmp(have, target, (size_t)n) != 0)
			return err_set(e, -EEXIST, "%s/%s exists and is not a link into the "
				       "sandbox's disk", vm->dir, on_disk[i].name);
	}
	return 0;
}

int vmm_disk_mount(struct vmm_inst *vm, struct err *e)
{
	char img[PATH_MAX + 16], mnt[PATH_MAX + 16], dev[32];
	if (!vm->lim.disk_bytes)
		return 0;
	snprintf(img, sizeof(img), "%s/" DISK_IMAGE, vm->dir);
	snprintf(mnt, sizeof(mnt), "%s/" DISK_MNT, vm->dir);
	if (is_mounted(vm))
		return make_links(vm, e);
	if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
		return err_set(e, -errno, "cannot create %s: %s", mnt, strerror(errno));
	int r = image_make(vm, img, e);
	if (r < 0)
		return r;
	int lfd = loop_attach(img, dev, sizeof(dev), e);
	if (lfd < 0)
		return lfd;
	/* noinit_itable: the kernel does not zero the inode tables in the
	 * background (they are marked unused), which would write most of a
	 * large image for nothing. */
	r = mount(dev, mnt, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, "noinit_itable");
	if (r < 0)
		r = err_set(e, -errno, "cannot mount %s (%s) on %s: %s", img, dev, mnt,
			    strerror(errno));
	close(lfd); /* the mount holds it now; on failure the device clears itself */
	if (r < 0)
		return r;
	log_debug("sandbox %s: disk of %" PRIu64 " bytes mounted (%s)", vm->name,
		  vm->lim.disk_bytes, dev);
	return make_links(vm, e);
}

int vmm_disk_usage(const struct vmm_inst *vm, struct vmm_disk_usage *u)
{
	char mnt[PATH_MAX + 16];
	struct statvfs sv;
	memset(u, 0, sizeof(*u));
	if (!vm->lim.disk_bytes || !is_mounted(vm))
		return -ENOENT;
	snprintf(mnt, sizeof(mnt), "%s/" DISK_MNT, vm->dir);
	if (statvfs(mnt, &sv) < 0)
		return -errno;
	u->size_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	u->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	u->used_bytes = u->size_bytes - (uint64_t)sv.f_bfree * sv.f_frsize;
	u->inodes = sv.f_files;
	u->free_inodes = sv.f_favail;
	return 0;
}

int vmm_disk_upper(const struct vmm_inst *vm, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%supper", vm->dir, vm->lim.disk_bytes ? DISK_MNT "/" : "");
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
