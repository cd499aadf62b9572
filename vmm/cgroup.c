/* cgroup v1/v2 handling for the backends: find the hierarchies, create one
 * cgroup per sandbox with its limits, read usage, freeze, and remove. */
#define _GNU_SOURCE
#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "devices.h"
#include "vmm.h"

#define CG_PARENT "sandboxfs"

enum { C_MEMORY, C_PIDS, C_CPU, C_CPUACCT, C_FREEZER, C_DEVICES, C_N };
static const char *v1_names[C_N] = {"memory", "pids", "cpu", "cpuacct", "freezer", "devices"};

static int version;
static char v2_root[PATH_MAX];
static char v1_root[C_N][PATH_MAX]; /* mount point of each v1 controller, "" if absent */

int cg_version(void) { return version; }

static bool has_token(const char *list, const char *tok, char sep)
{
	size_t n = strlen(tok);
	for (const char *p = list; p && *p;) {
		if (strncmp(p, tok, n) == 0 && (p[n] == sep || p[n] == '\0' || p[n] == '\n'))
			return true;
		p = strchr(p, sep);
		if (p)
			p++;
	}
	return false;
}

static void find_mounts(void)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	if (!f)
		return;
	char dev[256], dir[PATH_MAX], type[64], opts[1024];
	while (fscanf(f, "%255s %4095s %63s %1023s %*d %*d", dev, dir, type, opts) == 4) {
		if (strcmp(type, "cgroup2") == 0 && !v2_root[0]) {
			char path[PATH_MAX + 32], ctrls[512];
			snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
			if (read_file_str(path, ctrls, sizeof(ctrls)) >= 0 &&
			    has_token(ctrls, "memory", ' ') && has_token(ctrls, "pids", ' '))
				snprintf(v2_root, sizeof(v2_root), "%s", dir);
		} else if (strcmp(type, "cgroup") == 0) {
			for (int c = 0; c < C_N; c++)
				if (!v1_root[c][0] && has_token(opts, v1_names[c], ','))
					snprintf(v1_root[c], sizeof(v1_root[c]), "%s", dir);
		}
	}
	fclose(f);
}

/* v1: our directory in the devices hierarchy holds every row, so that a
 * sandbox's cgroup inherits them and writes only what it lacks (a dozen
 * writes less on each create); false: each is restricted in full. */
static bool devices_inherit;
static void spare_sweep(void);

static void devices_parent_setup(void)
{
	char parent[PATH_MAX];
	if (!v1_root[C_DEVICES][0])
		return;
	snprintf(parent, sizeof(parent), "%s/" CG_PARENT, v1_root[C_DEVICES]);
	devices_inherit = mkdir_p(parent, 0755) == 0 && cg_devices_parent(parent) == 0;
	log_debug("cgroup v1: sandboxes' device rows %s", devices_inherit
		  ? "inherited from " CG_PARENT "/" : "written in full (" CG_PARENT "/ has other rows)");
}

int cg_host_init(struct err *e)
{
	find_mounts();
	if (v2_root[0]) {
		char path[PATH_MAX + 64];
		version = 2;
		/* Delegate the controllers down to our parent; the root is exempt from
		 * the no-internal-processes rule, so this works on a systemd host too. */
		snprintf(path, sizeof(path), "%s/cgroup.subtree_control", v2_root);
		write_file_str(path, "+memory +pids +cpu");
		snprintf(path, sizeof(path), "%s/" CG_PARENT, v2_root);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return err_set(e, -errno, "cannot create cgroup %s: %s", path, strerror(errno));
		snprintf(path, sizeof(path), "%s/" CG_PARENT "/cgroup.subtree_control", v2_root);
		if (write_file_str(path, "+memory +pids +cpu") < 0)
			write_file_str(path, "+memory +pids");
		return 0;
	}
	if (v1_root[C_MEMORY][0] && v1_root[C_PIDS][0]) {
		version = 1;
		devices_parent_setup();
		spare_sweep();
		return 0;
	}
	return err_set(e, -ENOTSUP,
		       "no usable cgroup hierarchy: need cgroup2 with memory and pids controllers, "
		       "or cgroup v1 memory and pids");
}

/* The directories of a sandbox's cgroup: one on v2, one per mounted controller on v1. */
static int cg_dirs(const struct cg *cg, char dirs[C_N][PATH_MAX], bool parent_only)
{
	int n = 0;
	if (version == 2) {
		snprintf(dirs[n++], PATH_MAX, "%s/" CG_PARENT "%s%s", v2_root,
			 parent_only ? "" : "/", parent_only ? "" : cg->leaf);
		return n;
	}
	for (int c = 0; c < C_N; c++) {
		if (!v1_root[c][0])
			continue;
		bool dup = false; /* comounted controllers (cpu,cpuacct) share a dir */
		for (int d = 0; d < c; d++)
			dup |= strcmp(v1_root[c], v1_root[d]) == 0;
		if (dup)
			continue;
		snprintf(dirs[n++], PATH_MAX, "%s/" CG_PARENT "%s%s", v1_root[c],
			 parent_only ? "" : "/", parent_only ? "" : cg->leaf);
	}
	return n;
}

static const char *ctrl_dir(const struct cg *cg, int c, char *out, size_t cap)
{
	if (version == 2)
		snprintf(out, cap, "%s/" CG_PARENT "/%s", v2_root, cg->leaf);
	else if (v1_root[c][0])
		snprintf(out, cap, "%s/" CG_PARENT "/%s", v1_root[c], cg->leaf);
	else
		return NULL;
	return out;
}

static int cg_write(const struct cg *cg, int c, const char *file, const char *val)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	if (!ctrl_dir(cg, c, dir, sizeof(dir)))
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return write_file_str(path, val);
}

/* A counter out of a cgroup file's text: the number at its start (key
 * NULL; "max" is -ERANGE) or after "key " at the start of a line. */
static int cg_parse_u64(const char *data, const char *key, uint64_t *out)
{
	if (!key) {
		if (strncmp(data, "max", 3) == 0)
			return -ERANGE;
		*out = strtoull(data, NULL, 10);
		return 0;
	}
	size_t kl = strlen(key);
	for (const char *p = data; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			*out = strtoull(p + kl + 1, NULL, 10);
			return 0;
		}
	}
	return -ENOENT;
}

/* A counter of the sandbox's cgroup, through its fd in cg->ufd[slot] (opened at
 * first use). */
static int cg_read_kept(struct cg *cg, int slot, int c, const char *file, const char *key,
			uint64_t *out)
{
	if (cg->ufd[slot] == 0) {
		char dir[PATH_MAX], path[PATH_MAX + 64];
		if (!ctrl_dir(cg, c, dir, sizeof(dir)))
			return -ENOENT;
		snprintf(path, sizeof(path), "%s/%s", dir, file);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT)
			return -errno; /* EMFILE and the like: try again next time */
		cg->ufd[slot] = fd < 0 ? -1 : fd + 1;
	}
	if (cg->ufd[slot] < 0)
		return -ENOENT;
	char data[4096];
	ssize_t n = pread(cg->ufd[slot] - 1, data, sizeof(data) - 1, 0);
	if (n < 0)
		return -errno;
	data[n] = '\0';
	return cg_parse_u64(data, key, out);
}

static void cg_close_kept(struct cg *cg)
{
	for (int i = 0; i < CG_U_N; i++) {
		if (cg->ufd[i] > 0)
			close(cg->ufd[i] - 1);
		cg->ufd[i] = 0;
	}
}

static int apply_limits(const struct cg *cg, const struct vmm_limits *lim, struct err *e)
{
	char v[64];
	int r = 0;
	if (lim->memory_bytes) {
		snprintf(v, sizeof(v), "%" PRIu64, lim->memory_bytes);
		r = cg_write(cg, C_MEMORY, version == 2 ? "memory.max" : "memory.limit_in_bytes", v);
		if (r < 0)
			return err_set(e, r, "cannot set memory limit %s: %s", v, strerror(-r));
		if (version == 2)
			cg_write(cg, C_MEMORY, "memory.swap.max", "0");
		else
			cg_write(cg, C_MEMORY, "memory.memsw.limit_in_bytes", v);
	}
	if (lim->pids) {
		snprintf(v, sizeof(v), "%u", lim->pids);
		r = cg_write(cg, C_PIDS, "pids.max", v);
		if (r < 0)
			return err_set(e, r, "cannot set pids limit %s: %s", v, strerror(-r));
	}
	if (lim->cpu_millis) {
		unsigned quota = lim->cpu_millis * 100; /* period 100 ms */
		if (version == 2) {
			snprintf(v, sizeof(v), "%u 100000", quota);
			r = cg_write(cg, C_CPU, "cpu.max", v);
		} else {
			cg_write(cg, C_CPU, "cpu.cfs_period_us", "100000");
			snprintf(v, sizeof(v), "%u", quota);
			r = cg_write(cg, C_CPU, "cpu.cfs_quota_us", v);
		}
		if (r < 0)
			return err_set(e, r, "cannot set cpu limit: %s", strerror(-r));
	}
	/* Devices: Docker's allow list plus what the backend asked for (v1 devices
	 * cgroup, v2 a BPF device program). */
	char dir[PATH_MAX];
	if (ctrl_dir(cg, version == 2 ? C_MEMORY : C_DEVICES, dir, sizeof(dir)))
		r = version == 2 ? cg_devices_restrict_v2(dir, lim->devices, e)
		    : devices_inherit ? cg_devices_restrict_inherited(dir, lim->devices, e)
				      : cg_devices_restrict(dir, lim->devices, e);
	else
		log_warn("no devices cgroup: sandbox %s may create and use any device node", cg->leaf);
	return r;
}

/* Makes cg->leaf in every hierarchy and applies lim; on failure removes it. */
static int cg_make(struct cg *cg, const struct vmm_limits *lim, struct err *e)
{
	char dirs[C_N][PATH_MAX];
	int n = cg_dirs(cg, dirs, false);
	for (int i = 0; i < n; i++) {
		/* The shared parent may be removed by another daemon's exit between
		 * mkdir_p and here; one retry covers that race. */
		int r = mkdir_p(dirs[i], 0755);
		if (r < 0)
			r = mkdir_p(dirs[i], 0755);
		if (r < 0) {
			err_set(e, r, "cannot create cgroup %s: %s", dirs[i], strerror(-r));
			cg_destroy(cg);
			return r;
		}
	}
	int r = apply_limits(cg, lim, e);
	if (r < 0)
		cg_destroy(cg);
	return r;
}

/* --- v1: cgroups made ahead ---
 *
 * A v1 cgroup is a directory in each of five hierarchies plus a write per
 * limit, about 1 ms and the slowest phase's tail. A low-priority thread
 * keeps a few made, with the limits the last create asked for, under
 * hidden names (<tag>-.spare-N: a sandbox name never starts with a dot);
 * a create with the same limits renames one to <tag>-<name> in each
 * hierarchy (v1 allows it, v2 does not). They are removed when the daemon
 * exits, and a daemon's start removes those of a dead one on its state dir. */
#define CG_SPARES 2
#define CG_SPARE_MARK "-.spare-"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started, quit, busy;
	struct vmm_limits lim; /* what the last create asked for: the next spares' */
	struct {
		char leaf[sizeof(((struct cg *)0)->leaf)];
		struct vmm_limits lim;
	} have[CG_SPARES];
	int n;
	unsigned seq;
} spare = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static bool same_limits(const struct vmm_limits *a, const struct vmm_limits *b)
{
	return a->memory_bytes == b->memory_bytes && a->pids == b->pids &&
	       a->cpu_millis == b->cpu_millis && a->devices == b->devices;
}

/* Removes spare leaves of this daemon's tag left in the hierarchies (a
 * dead daemon's, at start-up). */
static void spare_sweep(void)
{
	char dirs[C_N][PATH_MAX], mark[64];
	struct cg none = {.leaf = ""};
	snprintf(mark, sizeof(mark), "%s" CG_SPARE_MARK, vmm_host()->tag);
	int n = cg_dirs(&none, dirs, true);
	for (int i = 0; i < n; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (strncmp(de->d_name, mark, strlen(mark)) != 0)
				continue;
			struct cg old = {.leaf = ""};
			snprintf(old.leaf, sizeof(old.leaf), "%s", de->d_name);
			cg_destroy(&old);
		}
		if (d)
			closedir(d);
	}
}

/* Takes spare i out of the list (its leaf into cg); called with the lock. */
static void spare_pop(int i, struct cg *cg)
{
	memcpy(cg->leaf, spare.have[i].leaf, sizeof(cg->leaf));
	spare.have[i] = spare.have[--spare.n];
}

/* The index of a spare with limits other than the wanted ones, or -1. */
static int spare_stale(void)
{
	for (int i = 0; i < spare.n; i++)
		if (!same_limits(&spare.have[i].lim, &spare.lim))
			return i;
	return -1;
}

static void *spare_main(void *arg)
{
	(void)arg;
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10); /* creates first */
	pthread_mutex_lock(&spare.lock);
	while (!spare.quit) {
		int i = spare_stale();
		if (i < 0 && spare.n >= CG_SPARES) {
			pthread_cond_wait(&spare.cond, &spare.lock);
			continue;
		}
		struct vmm_limits lim = spare.lim;
		struct cg cg = {.leaf = ""};
		if (i >= 0)
			spare_pop(i, &cg);
		else
			snprintf(cg.leaf, sizeof(cg.leaf), "%s" CG_SPARE_MARK "%u", vmm_host()->tag,
				 spare.seq++);
		spare.busy = true;
		pthread_mutex_unlock(&spare.lock);
		struct err e = {0};
		int r = i >= 0 ? cg_destroy(&cg) : cg_make(&cg, &lim, &e);
		pthread_mutex_lock(&spare.lock);
		spare.busy = false;
		pthread_cond_broadcast(&spare.cond);
		if (r < 0 && i < 0) {
			log_warn("no cgroups made ahead: %s", e.msg);
			break;
		}
		if (i < 0) {
			memcpy(spare.have[spare.n].leaf, cg.leaf, sizeof(cg.leaf));
			spare.have[spare.n++].lim = lim;
		}
	}
	pthread_mutex_unlock(&spare.lock);
	return NULL;
}

/* Renames leaf `from` to `to` in every hierarchy; undone on a failure. */
static int spare_rename(const char *from, const char *to)
{
	char a[C_N][PATH_MAX], b[C_N][PATH_MAX];
	struct cg ca = {.leaf = ""}, cb = {.leaf = ""};
	snprintf(ca.leaf, sizeof(ca.leaf), "%s", from);
	snprintf(cb.leaf, sizeof(cb.leaf), "%s", to);
	int n = cg_dirs(&ca, a, false);
	cg_dirs(&cb, b, false);
	for (int i = 0; i < n; i++) {
		if (rename(a[i], b[i]) == 0)
			continue;
		int r = -errno;
		while (--i >= 0)
			rename(b[i], a[i]);
		return r;
	}
	return 0;
}

/* A spare made with limits lim, renamed to cg->leaf: 0, or -ENOENT when
 * there is none. The thread makes the next ones with lim. */
static int spare_take(struct cg *cg, const struct vmm_limits *lim)
{
	struct cg got = {.leaf = ""};
	pthread_mutex_lock(&spare.lock);
	if (!spare.started) {
		pthread_t t;
		spare.started = pthread_create(&t, NULL, spare_main, NULL) == 0;
		if (spare.started)
			pthread_detach(t);
	}
	spare.lim = *lim;
	for (int i = 0; i < spare.n && !got.leaf[0]; i++)
		if (same_limits(&spare.have[i].lim, lim))
			spare_pop(i, &got);
	pthread_cond_broadcast(&spare.cond);
	pthread_mutex_unlock(&spare.lock);
	if (!got.leaf[0])
		return -ENOENT;
	int r = spare_rename(got.leaf, cg->leaf);
	if (r < 0) {
		log_warn("cannot rename cgroup %s to %s: %s", got.leaf, cg->leaf, strerror(-r));
		cg_destroy(&got);
	}
	return r;
}

/* At exit: no spare is left behind, none is being made. */
static void spare_end(void)
{
	pthread_mutex_lock(&spare.lock);
	spare.quit = true;
	pthread_cond_broadcast(&spare.cond);
	while (spare.busy)
		pthread_cond_wait(&spare.cond, &spare.lock);
	while (spare.n > 0) {
		struct cg old = {.leaf = ""};
		spare_pop(spare.n - 1, &old);
		cg_destroy(&old);
	}
	pthread_mutex_unlock(&spare.lock);
}

int cg_create(struct cg *cg, const char *tag, const char *name, const struct vmm_limits *lim,
	      struct err *e)
{
	snprintf(cg->leaf, sizeof(cg->leaf), "%s-%s", tag, name);
	if (version == 1 && spare_take(cg, lim) == 0)
		return 0;
	return cg_make(cg, lim, e);
}

int cg_open_fd(const struct cg *cg)
{
	char dir[PATH_MAX];
	if (version != 2 || !ctrl_dir(cg, C_MEMORY, dir, sizeof(dir)))
		return -1;
	return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int cg_attach(const struct cg *cg, pid_t pid, struct err *e)
{
	char dirs[C_N][PATH_MAX], path[PATH_MAX + 32], v[32];
	int n = cg_dirs(cg, dirs, false);
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", dirs[i]);
		int r = write_file_str(path, v);
		if (r < 0)
			return err_set(e, r, "cannot move pid %d into %s: %s", (int)pid, dirs[i],
				       strerror(-r));
	}
	return 0;
}

int cg_oom_watch(const struct cg *cg, bool *pri)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	if (!cg->leaf[0] || !ctrl_dir(cg, C_MEMORY, dir, sizeof(dir)))
		return -ENOENT;
	*pri = version == 2;
	if (version == 2) {
		snprintf(path, sizeof(path), "%s/memory.events", dir);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	snprintf(path, sizeof(path), "%s/memory.oom_control", dir);
	_cleanup_close_ int ofd = open(path, O_RDONLY | O_CLOEXEC);
	if (ofd < 0)
		return -errno;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return -errno;
	char line[32];
	snprintf(line, sizeof(line), "%d %d", efd, ofd);
	snprintf(path, sizeof(path), "%s/cgroup.event_control", dir);
	int r = write_file_str(path, line);
	if (r < 0) {
		close(efd);
		return r;
	}
	return efd;
}

void cg_oom_ack(int fd, bool pri)
{
	char buf[512];
	if (pri) /* kernfs re-arms POLLPRI when the file is read */
		(void)!pread(fd, buf, sizeof(buf), 0);
	else
		(void)!read(fd, buf, sizeof(uint64_t));
}

/* Per counter of cg_usage: v2's controller, file and key, then v1's, and v1's unit. */
static const struct {
	int c2; const char *f2, *k2;
	int c1; const char *f1, *k1;
	uint64_t div1;
} counters[CG_U_N] = {
	[CG_U_CPU] = {C_CPU, "cpu.stat", "usage_usec", C_CPUACCT, "cpuacct.usage", NULL, 1000},
	[CG_U_MEM] = {C_MEMORY, "memory.current", NULL, C_MEMORY, "memory.usage_in_bytes", NULL, 1},
	[CG_U_PEAK] = {C_MEMORY, "memory.peak", NULL, C_MEMORY, "memory.max_usage_in_bytes", NULL, 1},
	[CG_U_OOM] = {C_MEMORY, "memory.events", "oom_kill", C_MEMORY, "memory.oom_control", "oom_kill", 1},
	[CG_U_PIDS] = {C_PIDS, "pids.current", NULL, C_PIDS, "pids.current", NULL, 1},
};

static int read_counter(struct cg *cg, int i, uint64_t *out)
{
	uint64_t v;
	bool v2 = version == 2;
	int r = cg_read_kept(cg, i, v2 ? counters[i].c2 : counters[i].c1,
			     v2 ? counters[i].f2 : counters[i].f1, v2 ? counters[i].k2 : counters[i].k1, &v);
	if (r == 0)
		*out = v2 ? v : v / counters[i].div1;
	return r;
}

int cg_usage(struct cg *cg, struct vmm_usage *u)
{
	uint64_t *out[CG_U_N] = {&u->cpu_usec, &u->memory_bytes, &u->memory_peak_bytes,
				 &u->oom_kills, &u->pids};
	if (!cg->leaf[0])
		return -ENOENT;
	for (int i = 0; i < CG_U_N; i++)
		read_counter(cg, i, out[i]);
	return 0;
}

int cg_oom_kills(struct cg *cg, uint64_t *n)
{
	*n = 0;
	return cg->leaf[0] ? read_counter(cg, CG_U_OOM, n) : -ENOENT;
}

/* Freezing is asynchronous in the kernel; this returns once every task is frozen
 * (bounded), so a checkpoint taken after it sees a quiescent sandbox. */
int cg_freeze(const struct cg *cg, bool frozen, struct err *e)
{
	int r;
	if (version == 2)
		r = cg_write(cg, C_MEMORY, "cgroup.freeze", frozen ? "1" : "0");
	else
		r = cg_write(cg, C_FREEZER, "freezer.state", frozen ? "FROZEN" : "THAWED");
	if (r < 0)
		return err_set(e, r, "cannot %s cgroup %s: %s", frozen ? "freeze" : "thaw", cg->leaf,
			       strerror(-r));
	if (!frozen)
		return 0;
	char dir[PATH_MAX], path[PATH_MAX + 32], data[256];
	ctrl_dir(cg, version == 2 ? C_MEMORY : C_FREEZER, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, version == 2 ? "cgroup.events" : "freezer.state");
	for (int i = 0; i < 20000; i++) {
		if (read_file_str(path, data, sizeof(data)) < 0)
			break;
		if (version == 2 ? strstr(data, "frozen 1") != NULL : strncmp(data, "FROZEN", 6) == 0)
			return 0;
		usleep(100);
	}
	cg_freeze(cg, false, NULL);
	return err_set(e, -ETIMEDOUT, "cgroup %s did not freeze within 2 s", cg->leaf);
}

/* fn(pid, arg) for each process in the cgroup at dir (the pids as this
 * daemon's pid namespace sees them). */
static void each_proc(const char *dir, void (*fn)(pid_t pid, int arg), int arg)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 0)
			fn(pid, arg);
	fclose(f);
}

static void kill_one(pid_t pid, int sig)
{
	kill(pid, sig);
}

static void kill_procs(const char *dir)
{
	each_proc(dir, kill_one, SIGKILL);
}

static void renice_one(pid_t pid, int prio)
{
	int r = vmm_renice(pid, prio); /* every thread: QEMU's vCPUs too */
	if (r < 0 && r != -ENOENT && r != -ESRCH)
		log_warn("cannot set the priority of pid %d: %s", (int)pid, strerror(-r));
}

void cg_renice(const struct cg *cg, int prio)
{
	char dirs[C_N][PATH_MAX];
	if (cg->leaf[0] && cg_dirs(cg, dirs, false) > 0)
		each_proc(dirs[0], renice_one, prio);
}

int cg_destroy(struct cg *cg)
{
	cg_close_kept(cg);
	if (!cg->leaf[0])
		return 0;
	char dirs[C_N][PATH_MAX];
	int n = cg_dirs(cg, dirs, false), ret = 0;
	for (int i = 0; i < n; i++) {
		/* Tasks leave a cgroup only after they are reaped; wait for that, bounded. */
		for (int tries = 0; tries < 200; tries++) {
			if (rmdir(dirs[i]) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY) {
				ret = -errno;
				log_warn("cannot remove cgroup %s: %s", dirs[i], strerror(errno));
				break;
			}
			if (version == 1 && tries == 0)
				cg_freeze(cg, false, NULL);
			kill_procs(dirs[i]);
			usleep(5000);
		}
		if (access(dirs[i], F_OK) == 0) {
			ret = -EBUSY;
			log_warn("cgroup %s still busy after 1 s", dirs[i]);
		}
	}
	if (ret == 0)
		cg->leaf[0] = '\0';
	return ret;
}

void cg_host_cleanup(void)
{
	if (version == 1)
		spare_end();
	char dirs[C_N][PATH_MAX];
	struct cg none = {.leaf = ""};
	int n = cg_dirs(&none, dirs, true);
	for (int i = 0; i < n; i++)
		rmdir(dirs[i]); /* fails while another daemon still uses it: that is fine */
}
