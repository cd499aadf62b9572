/* The `qemu` backend: a sandbox is a microVM (QEMU's -M microvm, KVM when
 * a test guest ran on /dev/kvm at start-up, TCG otherwise) booting Debian's kernel with an initramfs
 * whose /init is our guest agent. QMP and the agent's port (virtio-serial) reach the
 * daemon over socketpairs made before QEMU starts (no socket paths to dial, no
 * retries): QMP is ready at its greeting, the guest at the agent's hello.
 * Guest RAM is a shared file in /dev/shm so that live fork can map it later. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "kvm.h"
#include "qemu.h"
#include "vmm.h"

#define QMP_TIMEOUT_MS 10000
/* QEMU answers QMP once it has set the machine up (loaded the kernel): slow under load. */
#define QMP_READY_TIMEOUT_MS 30000
#define HELLO_TIMEOUT_KVM_MS 20000
#define HELLO_TIMEOUT_TCG_MS 60000
#define MIN_MEMORY_MIB 128
#define DEFAULT_MEMORY_MIB 256
#define MAX_VCPUS 64
/* The cgroup holds QEMU itself: guest RAM plus QEMU's own heap and TCG's
 * translation cache (capped at TB_CACHE_MIB). */
#define QEMU_OVERHEAD_BYTES (256ull << 20)
#define TB_CACHE_MIB 64
#define QEMU_PIDS_MIN 256
#define FD_QMP 3   /* in QEMU */
#define FD_AGENT 4 /* in QEMU */
#define FD_NET 5   /* in QEMU: the TAP, when the VM has a network */
#define KVM_PROBE_TIMEOUT_MS 2000
#define QEMU_EXIT_GRACE_MS 2000

/* Host facts, found once. */
static struct {
	pthread_once_t once;
	bool accel_set; /* vmm_qemu_accel_init ran */
	bool kvm;
	const char *accel_why; /* one word for /sbx/stats: probe_ran no_device probe_failed ... */
	char accel_reason[SBX_ERRMSG_MAX]; /* the sentence, for the log */
	unsigned tsc_khz;
	char qemu[PATH_MAX];
	char guest_dir[PATH_MAX];
} hf = {.once = PTHREAD_ONCE_INIT};

static bool find_in_path(const char *prog, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s:/usr/bin:/usr/local/bin", path ? path : "");
	for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, cap, "%s/%s", d, prog);
		if (access(out, X_OK) == 0)
			return true;
	}
	out[0] = '\0';
	return false;
}

/* TCG's rdtsc runs at the host TSC rate; telling the guest that rate spares it
 * the PIT calibration that fails about one boot in three under TCG load. */
static unsigned measure_tsc_khz(void)
{
#if defined(__x86_64__)
	uint64_t t0 = now_usec(), c0 = __rdtsc();
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	uint64_t t1 = now_usec(), c1 = __rdtsc();
	return t1 > t0 ? (unsigned)((c1 - c0) * 1000 / (t1 - t0)) : 0;
#else
	return 0;
#endif
}

int vmm_qemu_accel_init(const char *mode, struct err *e)
{
	const char *dev = getenv("SANDBOXFS_KVM_DEV"); /* tests: a node that is not KVM */
	if (!dev || !*dev)
		dev = "/dev/kvm";
	if (strcmp(mode, "tcg") == 0) {
		hf.kvm = false;
		hf.accel_why = "asked_tcg";
		snprintf(hf.accel_reason, sizeof(hf.accel_reason), "--accel tcg asked for it");
	} else if (strcmp(mode, "auto") == 0 || strcmp(mode, "kvm") == 0) {
		struct err pe = {0};
		int r = kvm_probe(dev, KVM_PROBE_TIMEOUT_MS, &pe);
		hf.kvm = r == 0;
		hf.accel_why = r == 0 ? "probe_ran" : r == -ENOENT ? "no_device"
			     : r == -ETIMEDOUT ? "probe_timeout" : "probe_failed";
		if (hf.kvm)
			snprintf(hf.accel_reason, sizeof(hf.accel_reason), "a test guest ran on %s", dev);
		else if (strcmp(mode, "kvm") == 0)
			return err_set(e, pe.code, "--accel kvm: KVM cannot run guests here (%s)", pe.msg);
		else
			snprintf(hf.accel_reason, sizeof(hf.accel_reason), "%s", pe.msg);
		log_info("qemu: %s: %s", hf.kvm ? "KVM" : "TCG", hf.accel_reason);
	} else {
		return err_set(e, -EINVAL, "--accel must be auto, kvm or tcg, not '%s'", mode);
	}
	hf.accel_set = true;
	return 0;
}

static void host_facts_init(void)
{
	if (!hf.accel_set)
		vmm_qemu_accel_init("auto", NULL);
	if (!hf.kvm)
		hf.tsc_khz = measure_tsc_khz();
	const char *q = getenv("SANDBOXFS_QEMU");
	if (q && *q)
		snprintf(hf.qemu, sizeof(hf.qemu), "%s", q);
	else
		find_in_path("qemu-system-x86_64", hf.qemu, sizeof(hf.qemu));
	const char *g = getenv("SANDBOXFS_GUEST_DIR");
	if (g && *g) {
		snprintf(hf.guest_dir, sizeof(hf.guest_dir), "%s", g);
	} else {
		char init[PATH_MAX];
		snprintf(init, sizeof(init), "%s", vmm_host()->init_path);
		snprintf(hf.guest_dir, sizeof(hf.guest_dir), "%s/guest", dirname(init));
	}
}

static void host_facts(void) { pthread_once(&hf.once, host_facts_init); }

/* The agent's device, as qemu.json and a snapshot's vm.json name it. */
static const char *agent_dev_name(bool vserial) { return vserial ? "virtio-serial" : "serial"; }

/* --- the command line --- */

struct args {
	char *v[64];
	int n;
};

static void args_add(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void args_add(struct args *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (a->n < (int)ARRAY_SIZE(a->v) - 1 && vasprintf(&a->v[a->n], fmt, ap) >= 0)
		a->n++;
	va_end(ap);
}

static void args_free(struct args *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* QEMU's option syntax: a comma in a value is written twice. */
static void opt_escape(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (; *in && o + 2 < cap; in++) {
		out[o++] = *in;
		if (*in == ',')
			out[o++] = ',';
	}
	out[o] = '\0';
}

struct guest_files {
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char disk[PATH_MAX]; /* the image's root disk (vmimage.c); "": the initramfs is the root */
	bool vserial; /* the initramfs has the virtio-serial driver (INITRD.channel) */
};

/* STATE/sandboxes/NAME/rootdisk (and a snapshot's): the path of the root
 * disk its machine booted with, so a restart, a restore and a fork's child
 * get the same file even after the image changed. */
#define ROOTDISK_FILE "rootdisk"

/* The image's name: its dir's last component (a root disk's name begins with it). */
static const char *image_name(const struct vmm_inst *vm, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", vm->image_dir);
	return basename(buf);
}

/* The busybox default boots as before, its initramfs its root, and so does
 * an image with an initramfs of its own (GUEST_DIR/IMAGE.initrd.gz). */
static bool image_needs_disk(const struct vmm_inst *vm)
{
	char img[PATH_MAX], own[PATH_MAX * 2];
	const char *image = image_name(vm, img, sizeof(img));
	snprintf(own, sizeof(own), "%s/%s.initrd.gz", hf.guest_dir, image);
	return (vm->nimage_layers > 0 || strcmp(image, "busybox") != 0) && access(own, R_OK) < 0;
}

static int rootdisk_read(const char *dir, char *out, size_t cap)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/" ROOTDISK_FILE, dir);
	int n = read_file_str(p, out, cap);
	if (n <= 0 || out[0] != '/') {
		out[0] = '\0';
		return n < 0 ? n : -ENOENT;
	}
	return 0;
}

static int rootdisk_write(const char *dir, const char *disk, struct err *e)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/" ROOTDISK_FILE, dir);
	int r = write_file_atomic(p, disk, strlen(disk), false);
	return r < 0 ? err_set(e, r, "cannot write %s: %s", p, strerror(-r)) : 0;
}

/* The device the agent talks on, as mkinitrd.sh wrote it beside the
 * initramfs: virtio-serial when the guest has the driver, the ISA serial
 * port otherwise (an initramfs of an older mkinitrd.sh has no such file). */
static bool initrd_vserial(const char *initrd)
{
	char p[PATH_MAX + 16], kind[32];
	snprintf(p, sizeof(p), "%s.channel", initrd);
	return read_file_str(p, kind, sizeof(kind)) > 0 && strcmp(kind, "virtio-serial\n") == 0;
}

/* The kernel, and the initramfs for the sandbox's image: `<image>.initrd.gz`
 * in the guest dir, or `initrd.gz` (the busybox image with the agent); with
 * that one, an image other than busybox is the root disk the agent mounts
 * (when boot: the start's, from rootdisk_prepare). */
static int find_guest_files(const struct vmm_inst *vm, struct guest_files *g, bool boot,
			    struct err *e)
{
	char img[PATH_MAX];
	const char *image = image_name(vm, img, sizeof(img));
	snprintf(g->kernel, sizeof(g->kernel), "%s/vmlinux", hf.guest_dir);
	if (access(g->kernel, R_OK) < 0)
		return err_set(e, -ENOENT, "no guest kernel at %s (run make guest)", g->kernel);
	g->disk[0] = '\0';
	snprintf(g->initrd, sizeof(g->initrd), "%s/%s.initrd.gz", hf.guest_dir, image);
	if (access(g->initrd, R_OK) == 0) {
		g->vserial = initrd_vserial(g->initrd);
		return 0;
	}
	snprintf(g->initrd, sizeof(g->initrd), "%s/initrd.gz", hf.guest_dir);
	if (access(g->initrd, R_OK) < 0)
		return err_set(e, -ENOENT, "no guest initramfs %s (run make guest)", g->initrd);
	g->vserial = initrd_vserial(g->initrd);
	if (boot && image_needs_disk(vm) && rootdisk_read(vm->dir, g->disk, sizeof(g->disk)) < 0)
		return err_set(e, -ENOENT, "the VM of image '%s' has no root disk (%s/" ROOTDISK_FILE
			       ")", image, vm->dir);
	if (g->disk[0] && access(g->disk, R_OK) < 0)
		return err_set(e, -errno, "the root disk %s of image '%s' is gone: %s", g->disk,
			       image, strerror(errno));
	return 0;
}

/* Before a start: the root disk this VM boots with, unless it has one. A
 * restore (a fork's child) takes its snapshot's; a boot makes or reuses the
 * image's (seconds for a new one: create_image_usec). */
static int rootdisk_choose(struct vmm_inst *vm, const char *snap_dir, uint64_t *made,
			   struct err *e)
{
	char disk[PATH_MAX];
	if (rootdisk_read(vm->dir, disk, sizeof(disk)) == 0)
		return 0;
	if (snap_dir[0]) {
		if (rootdisk_read(snap_dir, disk, sizeof(disk)) < 0)
			return 0; /* a machine of before root disks: find_guest_files says so */
	} else {
		int r = vmm_root_disk(vm, disk, sizeof(disk), made, e);
		if (r < 0)
			return r;
	}
	return rootdisk_write(vm->dir, disk, e);
}

static int rootdisk_prepare(struct vmm_inst *vm, const char *snap_dir, uint64_t *made,
			    struct err *e)
{
	char img[PATH_MAX];
	*made = 0;
	if (!image_needs_disk(vm))
		return 0;
	vmm_root_disk_hold(); /* the sweep waits until the choice is recorded */
	int r = rootdisk_choose(vm, snap_dir, made, e);
	vmm_root_disk_release();
	if (r == 0 && *made) /* a new state of the image: its older disks may go */
		vmm_root_disks_gc(image_name(vm, img, sizeof(img)), true);
	return r;
}

static void build_args(const struct vmm_inst *vm, const struct qemu_vm *q,
		       const struct guest_files *g, bool incoming, struct args *a)
{
	char shm[PATH_MAX * 2], con[PATH_MAX * 2], log_path[PATH_MAX + 16];
	unsigned mem_mib = q->mem_mib, vcpus = q->vcpus;
	opt_escape(q->ram_path, shm, sizeof(shm));
	snprintf(log_path, sizeof(log_path), "%s/console.log", vm->dir);
	opt_escape(log_path, con, sizeof(con));
	args_add(a, "%s", hf.qemu);
	args_add(a, "-name");
	args_add(a, "sbx-%s", vm->name);
	args_add(a, "-M");
	args_add(a, "microvm,isa-serial=on,pit=on,pic=on,rtc=on,memory-backend=mem");
	args_add(a, "-accel");
	if (hf.kvm)
		args_add(a, "kvm");
	else
		args_add(a, "tcg,tb-size=%d", TB_CACHE_MIB);
	args_add(a, "-cpu");
	args_add(a, "%s", hf.kvm ? "host" : "max");
	args_add(a, "-smp");
	args_add(a, "%u", vcpus);
	args_add(a, "-m");
	args_add(a, "%uM", mem_mib);
	args_add(a, "-object");
	/* share=off maps a snapshot's frozen RAM copy-on-write (a fork's child). */
	args_add(a, "memory-backend-file,id=mem,size=%uM,mem-path=%s,share=%s", mem_mib, shm,
		 q->ram_shared ? "on" : "off");
	args_add(a, "-nodefaults");
	args_add(a, "-no-user-config");
	args_add(a, "-display");
	args_add(a, "none");
	args_add(a, "-no-reboot"); /* the agent's poweroff and a guest panic end QEMU */
	/* seccomp; no process of its own either: migrations go through a file
	 * the daemon opens (qmp_migrate_fd), the network through a TAP fd. */
	args_add(a, "-sandbox");
	args_add(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	args_add(a, "-kernel");
	args_add(a, "%s", g->kernel);
	args_add(a, "-initrd");
	args_add(a, "%s", g->initrd);
	if (g->disk[0]) { /* read-only, shared by every VM of the image and their forks */
		char disk[PATH_MAX * 2];
		opt_escape(g->disk, disk, sizeof(disk));
		args_add(a, "-drive");
		args_add(a, "file=%s,if=none,id=root,format=raw,readonly=on", disk);
		args_add(a, "-device");
		args_add(a, "virtio-blk-device,drive=root");
	}
	args_add(a, "-append");
	/* notes/qemu-live-fork.md: why each of these (TSC, rtc, i8042, 8250). */
	char tsc[64] = "", net[64] = "";
	if (q->nic) { /* the guest agent configures eth0 from these (a boot; a clone is told) */
		char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &vm->nic.ip, ip, sizeof(ip));
		inet_ntop(AF_INET, &vm->nic.gateway, gw, sizeof(gw));
		snprintf(net, sizeof(net), " sbx.ip=%s/%u sbx.gw=%s", ip, vm->nic.prefix_len, gw);
	}
	if (!hf.kvm && hf.tsc_khz)
		snprintf(tsc, sizeof(tsc), "tsc_early_khz=%u tsc=reliable ", hf.tsc_khz);
	args_add(a, "console=ttyS0 panic=-1 quiet mitigations=off nokaslr %sno_timer_check "
		 "i8042.noaux i8042.nokbd i8042.nopnp 8250.nr_uarts=2 cryptomgr.notests "
		 "random.trust_cpu=on audit=0 pci=off sbx.name=%s sbx.port=%s%s%s", tsc, vm->name,
		 q->vserial ? AGENT_VPORT : "/dev/ttyS1", net, g->disk[0] ? " sbx.root=/dev/vda" : "");
	args_add(a, "-chardev");
	args_add(a, "file,id=con,path=%s,append=on", con);
	args_add(a, "-serial");
	args_add(a, "chardev:con");
	args_add(a, "-chardev");
	args_add(a, "socket,id=agent,fd=%d,server=on,wait=off", FD_AGENT);
	args_add(a, "-device");
	if (q->vserial) { /* on microvm's virtio-mmio; port 0 is a console's, so 2 ports */
		args_add(a, "virtio-serial-device,max_ports=2");
		args_add(a, "-device");
		args_add(a, "virtserialport,chardev=agent,name=%s", AGENT_VPORT);
	} else {
		args_add(a, "isa-serial,chardev=agent,iobase=0x2f8,irq=3");
	}
	args_add(a, "-chardev");
	args_add(a, "socket,id=qmp,fd=%d,server=on,wait=off", FD_QMP);
	args_add(a, "-mon");
	args_add(a, "chardev=qmp,mode=control");
	if (q->nic) { /* microvm's virtio-mmio transport: the guest finds it through ACPI */
		const uint8_t *m = vm->nic.mac;
		args_add(a, "-netdev");
		args_add(a, "tap,id=net0,fd=%d", FD_NET);
		args_add(a, "-device");
		args_add(a, "virtio-net-device,netdev=net0,mac=%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
			 m[2], m[3], m[4], m[5]);
	}
	if (incoming) { /* the state comes by migrate-incoming, after x-ignore-shared is set */
		args_add(a, "-incoming");
		args_add(a, "defer");
	}
	a->v[a->n] = NULL;
}

/* --- channels --- */

#define QMP_SOCK "qmp.sock"
#define AGENT_SOCK "agent.sock"

/* A unix socket address for NAME in the sandbox's state dir, short whatever
 * the dir's length (through the O_PATH dirfd). */
static int sock_addr(int dfd, const char *name, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dfd, name);
	return 0;
}

/* Binds and listens on STATE/sandboxes/NAME/name (QEMU's end: *lfd) and
 * connects our end (*cfd) at once: no wait for QEMU, no retry. */
static int channel_listen(struct vmm_inst *vm, const char *name, int *lfd, int *cfd,
			  struct err *e)
{
	struct sockaddr_un sa;
	int dfd = open(vm->dir, O_PATH | O_DIRECTORY | O_CLOEXEC), r = 0;
	if (dfd < 0)
		return err_set(e, -errno, "cannot open %s: %s", vm->dir, strerror(errno));
	sock_addr(dfd, name, &sa);
	unlinkat(dfd, name, 0);
	*lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*lfd < 0 || *cfd < 0 || bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(*lfd, 1) < 0 || connect(*cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = err_set(e, -errno, "cannot make the %s channel in %s: %s", name, vm->dir,
			    strerror(errno));
	close(dfd);
	return r;
}

/* One connect to a channel QEMU listens on: it is there or it is not. */
static int channel_connect(struct vmm_inst *vm, const char *name, struct err *e)
{
	struct sockaddr_un sa;
	int dfd = open(vm->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;
	if (dfd >= 0)
		sock_addr(dfd, name, &sa);
	if (dfd < 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = err_set(e, -errno, "cannot connect to %s/%s: %s", vm->dir, name, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	if (r < 0 && fd >= 0)
		close(fd);
	return r < 0 ? r : fd;
}

static void channels_remove(const struct vmm_inst *vm)
{
	int dfd = open(vm->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	unlinkat(dfd, QMP_SOCK, 0);
	unlinkat(dfd, AGENT_SOCK, 0);
	close(dfd);
}

/* The QMP and agent channels, QEMU's listening ends left in qsv[1] and
 * asv[1] for its spawn, ours connected in q, and the reader thread's note
 * pair (vm->ctl_fd). What is left open on failure, close_pairs closes. */
static int channels_make(struct vmm_inst *vm, struct qemu_vm *q, int qsv[2], int asv[2],
			 struct err *e)
{
	int nsv[2], r;
	if ((r = channel_listen(vm, QMP_SOCK, &qsv[1], &qsv[0], e)) < 0 ||
	    (r = channel_listen(vm, AGENT_SOCK, &asv[1], &asv[0], e)) < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, nsv) < 0)
		return err_set(e, -errno, "socketpair: %s", strerror(errno));
	q->qmp.fd = qsv[0];
	q->agent_fd = asv[0];
	q->note_wr = nsv[1];
	vm->ctl_fd = nsv[0];
	qsv[0] = asv[0] = -1;
	return 0;
}

static void close_pairs(int qsv[2], int asv[2])
{
	for (int i = 0; i < 2; i++) {
		if (qsv[i] >= 0)
			close(qsv[i]);
		if (asv[i] >= 0)
			close(asv[i]);
		qsv[i] = asv[i] = -1;
	}
}

/* What a restarted daemon needs to know about the running VM. */
static void save_run_facts(const struct vmm_inst *vm, const struct qemu_vm *q)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/qemu.json", vm->dir);
	json_t *o = json_pack("{s:s, s:s, s:b, s:i, s:i, s:b, s:s}", "shm_path", q->shm_path,
			      "ram_path", q->ram_path, "ram_shared", q->ram_shared, "mem_mib",
			      (int)q->mem_mib, "vcpus", (int)q->vcpus, "nic", q->nic, "agent",
			      agent_dev_name(q->vserial));
	char *text = o ? json_dumps(o, 0) : NULL;
	json_decref(o);
	if (!text || write_file_atomic(p, text, strlen(text), false) < 0)
		log_warn("sandbox %s: cannot write %s; a restarted daemon could not fork it",
			 vm->name, p);
	free(text);
}

static int load_run_facts(const struct vmm_inst *vm, struct qemu_vm *q, struct err *e)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/qemu.json", vm->dir);
	json_error_t je;
	json_t *o = json_load_file(p, 0, &je);
	const char *shm = "", *ram = "", *agent = "serial";
	int shared = 0, mem = 0, vcpus = 0, nic = 0;
	if (!o || json_unpack(o, "{s:s, s:s, s:b, s:i, s:i, s?b, s?s}", "shm_path", &shm, "ram_path",
			      &ram, "ram_shared", &shared, "mem_mib", &mem, "vcpus", &vcpus, "nic",
			      &nic, "agent", &agent)) {
		json_decref(o);
		return err_set(e, -EINVAL, "%s is unreadable (%s)", p, o ? "missing keys" : je.text);
	}
	snprintf(q->shm_path, sizeof(q->shm_path), "%s", shm);
	snprintf(q->ram_path, sizeof(q->ram_path), "%s", ram);
	q->ram_shared = shared;
	q->mem_mib = (unsigned)mem;
	q->vcpus = (unsigned)vcpus;
	q->nic = nic;
	q->vserial = strcmp(agent, agent_dev_name(true)) == 0;
	json_decref(o);
	return 0;
}

/* --- spawn --- */

static int dup_high(int fd) { return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 10); }

static pid_t spawn_qemu(struct vmm_inst *vm, struct args *a, int qmp_fd, int agent_fd, int cg_fd)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/console.log", vm->dir);
	_cleanup_close_ int log_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	_cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (log_fd < 0 || null_fd < 0)
		return -errno;
	/* Sources above every number they go to (dup_high), so that no dup2
	 * overwrites a source not used yet. */
	_Static_assert(FD_QMP == 3 && FD_AGENT == 4 && FD_NET == 5, "QEMU's fds follow its stdio");
	int null_hi = dup_high(null_fd), log_hi = dup_high(log_fd), net_hi = dup_high(vm->nic.tap_fd);
	struct vmm_exec x = {.path = hf.qemu, .argv = a->v,
			     .fds = {null_hi, log_hi, log_hi, dup_high(qmp_fd), dup_high(agent_fd), net_hi},
			     .nfds = vm->nic.tap_fd >= 0 ? FD_NET + 1 : FD_AGENT + 1};
	pid_t pid = -EMFILE;
	if (null_hi >= 0 && log_hi >= 0 && x.fds[FD_QMP] >= 0 && x.fds[FD_AGENT] >= 0 &&
	    (net_hi >= 0 || vm->nic.tap_fd < 0)) {
		struct clone_args cl;
		memset(&cl, 0, sizeof(cl));
		cl.flags = CLONE_PIDFD;
		if (cg_fd >= 0) {
			cl.flags |= CLONE_INTO_CGROUP;
			cl.cgroup = (uint64_t)cg_fd;
		}
		cl.pidfd = (uint64_t)(uintptr_t)&vm->pidfd;
		cl.exit_signal = SIGCHLD;
		pid = vmm_spawn_exec(&cl, &x);
	}
	int fds[] = {null_hi, log_hi, x.fds[FD_QMP], x.fds[FD_AGENT], net_hi};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return pid;
}

/* --- per-VM state --- */

static void nic_close(struct vmm_inst *vm)
{
	if (vm->nic.tap_fd >= 0)
		close(vm->nic.tap_fd);
	vm->nic.tap_fd = -1;
}

static struct qemu_vm *qvm_new(void)
{
	struct qemu_vm *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	qmp_init(&q->qmp, -1);
	q->agent_fd = q->note_wr = q->pidfd = -1;
	q->refs = 1;
	q->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&q->wlock, NULL);
	pthread_mutex_init(&q->xlock, NULL);
	qagent_files_init(q);
	if (q->quit_fd < 0 || q->wake_fd < 0) {
		if (q->quit_fd >= 0)
			close(q->quit_fd);
		if (q->wake_fd >= 0)
			close(q->wake_fd);
		free(q);
		return NULL;
	}
	return q;
}

static void shm_path_of(const struct vmm_inst *vm, char *out, size_t cap)
{
	vmm_ram_path(vm->name, out, cap);
}

/* The engine calls stop without the sandbox's lock, so the monitor may reap
 * (and detach vm->priv) while stop still talks to QEMU: stop holds a
 * reference, and the fds it uses stay open until the last one is dropped. */
static pthread_mutex_t priv_lock = PTHREAD_MUTEX_INITIALIZER;

static struct qemu_vm *qvm_get(struct vmm_inst *vm)
{
	pthread_mutex_lock(&priv_lock);
	struct qemu_vm *q = vm->priv;
	if (q)
		q->refs++;
	pthread_mutex_unlock(&priv_lock);
	return q;
}

static void qvm_put(struct qemu_vm *q)
{
	pthread_mutex_lock(&priv_lock);
	bool last = --q->refs == 0;
	pthread_mutex_unlock(&priv_lock);
	if (!last)
		return;
	qagent_stop_reader(q);
	qmp_close(&q->qmp);
	int fds[] = {q->agent_fd, q->note_wr, q->quit_fd, q->wake_fd, q->pidfd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&q->wlock);
	pthread_mutex_destroy(&q->xlock);
	free(q);
}

static void spares_drop(const struct qemu_vm *owner, const char *layer);

/* Ends one run, after QEMU is gone (or was never started): the reader thread
 * stops (exec readers see EOF), the guest RAM file goes, and so do the
 * spares that waited for its next fork. */
static void qvm_detach(struct vmm_inst *vm)
{
	pthread_mutex_lock(&priv_lock);
	struct qemu_vm *q = vm->priv;
	vm->priv = NULL;
	pthread_mutex_unlock(&priv_lock);
	if (!q)
		return;
	spares_drop(q, NULL);
	qagent_stop_reader(q);
	channels_remove(vm);
	if (q->shm_path[0] && unlink(q->shm_path) < 0 && errno != ENOENT)
		log_warn("sandbox %s: cannot remove %s: %s", vm->name, q->shm_path, strerror(errno));
	qvm_put(q);
}

/* --- ops --- */

/* A fork's child is restored from its layer on its first start: the
 * `restore` file in its state dir names the snapshot. */
static void restore_marker(const struct vmm_inst *vm, char *out, size_t cap)
{
	snprintf(out, cap, "%s/restore", vm->dir);
}

static void standby_dir(const struct vmm_inst *vm, char *out, size_t cap)
{
	snprintf(out, cap, "%s/standby", vm->dir);
}

static int qemu_create(struct vmm_inst *vm, struct err *e)
{
	host_facts();
	if (!hf.qemu[0])
		return err_set(e, -ENOENT, "qemu-system-x86_64 not found (apt-get install qemu-system-x86)");
	struct guest_files g;
	int r = find_guest_files(vm, &g, false, e); /* the root disk is made at its start */
	if (r == 0 && vm->nlowers > 0) {
		char marker[PATH_MAX + 16], layer[PATH_MAX + VMM_LAYER_ID_MAX + 2];
		restore_marker(vm, marker, sizeof(marker));
		int n = snprintf(layer, sizeof(layer), "%s/%s", vmm_host()->layers_dir, vm->lowers[0]);
		if ((r = write_file_atomic(marker, layer, (size_t)n, false)) < 0)
			return err_set(e, r, "cannot write %s: %s", marker, strerror(-r));
	}
	return r;
}

/* memory= is guest RAM; cpus= rounds up to whole vCPUs. */
static int vm_shape(const struct vmm_inst *vm, unsigned *mem_mib, unsigned *vcpus, struct err *e)
{
	uint64_t mib = vm->lim.memory_bytes ? (vm->lim.memory_bytes + (1 << 20) - 1) >> 20
					    : DEFAULT_MEMORY_MIB;
	if (mib < MIN_MEMORY_MIB)
		return err_set(e, -EINVAL, "a qemu sandbox needs memory=%dM or more (the guest kernel "
			       "and its initramfs live in guest RAM)", MIN_MEMORY_MIB);
	if (mib > (1u << 20))
		return err_set(e, -EINVAL, "memory=%" PRIu64 "M is more than a qemu sandbox can have", mib);
	uint32_t v = vm->lim.cpu_millis ? (vm->lim.cpu_millis + 999) / 1000 : 1;
	if (v > MAX_VCPUS)
		return err_set(e, -EINVAL, "cpus=%u is more than %d vCPUs", v, MAX_VCPUS);
	*mem_mib = (unsigned)mib;
	*vcpus = v;
	return 0;
}

static void note_phase(struct vmm_timing *t, const char *key, uint64_t usec)
{
	if (t->nextra < (int)ARRAY_SIZE(t->extra)) {
		t->extra[t->nextra].key = key;
		t->extra[t->nextra].usec = usec;
		t->nextra++;
	}
}

/* The console's last line, QEMU's own complaint when it has one, or the
 * agent's fatal sentence (a root disk it could not use): qemu_console_reason. */
static void console_tail(const struct vmm_inst *vm, char *out, size_t cap)
{
	char p[PATH_MAX + 16], data[2048];
	out[0] = '\0';
	snprintf(p, sizeof(p), "%s/console.log", vm->dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t size = lseek(fd, 0, SEEK_END);
	off_t off = size > (off_t)sizeof(data) ? size - (off_t)sizeof(data) : 0;
	ssize_t n = pread(fd, data, sizeof(data), off);
	close(fd);
	if (n > 0)
		qemu_console_reason(data, (size_t)n, out, cap);
}

/* What a restore starts from: a snapshot dir with devstate and vm.json. */
struct snap_src {
	char dir[PATH_MAX];
	char ram[PATH_MAX]; /* its frozen RAM file, "" when the RAM is in devstate */
	unsigned mem_mib, vcpus;
	bool standby;
	bool nic; /* the machine had a network device: so must the restored one */
	bool vserial; /* its agent talked on virtio-serial: the restored one has that device */
};

static int read_snap(const char *dir, struct snap_src *src, struct err *e)
{
	char p[PATH_MAX + 16];
	snprintf(src->dir, sizeof(src->dir), "%s", dir);
	snprintf(p, sizeof(p), "%s/vm.json", dir);
	json_error_t je;
	json_t *o = json_load_file(p, 0, &je);
	const char *ram = "", *agent = "serial"; /* a snapshot of before virtio-serial */
	int mem = 0, vcpus = 0, nic = 0;
	if (!o || json_unpack(o, "{s:i, s:i, s:s, s?b, s?s}", "mem_mib", &mem, "vcpus", &vcpus, "ram",
			      &ram, "nic", &nic, "agent", &agent)) {
		json_decref(o);
		return err_set(e, -EINVAL, "snapshot %s is unreadable (%s)", dir,
			       o ? "missing keys" : je.text);
	}
	snprintf(src->ram, sizeof(src->ram), "%s", ram);
	src->mem_mib = (unsigned)mem;
	src->vcpus = (unsigned)vcpus;
	src->nic = nic;
	src->vserial = strcmp(agent, agent_dev_name(true)) == 0;
	json_decref(o);
	if (src->ram[0] && access(src->ram, R_OK) < 0)
		return err_set(e, -ENOENT, "the snapshot's memory image %s is gone", src->ram);
	return 0;
}

/* Standby image first, then a fork's layer; 0 and src->dir "" for a boot. */
static int find_restore(struct vmm_inst *vm, struct snap_src *src, struct err *e)
{
	char p[PATH_MAX + 16], layer[PATH_MAX];
	memset(src, 0, sizeof(*src));
	standby_dir(vm, p, sizeof(p));
	if (access(p, F_OK) == 0) {
		int r = read_snap(p, src, e);
		src->standby = true;
		return r;
	}
	restore_marker(vm, p, sizeof(p));
	if (read_file_str(p, layer, sizeof(layer)) < 0)
		return 0;
	return read_snap(layer, src, e);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* AG_FORK's payload (agent_proto.h) for name: the clock, a new nonce (into
 * nonce, 17 bytes), 32 bytes of entropy, mode, and with a network device
 * the identity a clone takes (its TAP already has its MAC). */
#define FORK_PAYLOAD_MAX 384
static int fork_payload(const struct vmm_inst *vm, const struct qemu_vm *q, const char *name,
			const char *mode, char *nonce, char *payload, struct err *e)
{
	unsigned char rnd[40];
	char ent[65], net[64] = "";
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return err_set(e, -EIO, "getrandom: %s", strerror(errno));
	hex(rnd, 8, nonce);
	hex(rnd + 8, 32, ent);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (q->nic) {
		char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
		const uint8_t *m = vm->nic.mac;
		inet_ntop(AF_INET, &vm->nic.ip, ip, sizeof(ip));
		inet_ntop(AF_INET, &vm->nic.gateway, gw, sizeof(gw));
		snprintf(net, sizeof(net), " %s/%u %s %02x:%02x:%02x:%02x:%02x:%02x", ip,
			 vm->nic.prefix_len, gw, m[0], m[1], m[2], m[3], m[4], m[5]);
	}
	snprintf(payload, FORK_PAYLOAD_MAX, "%s %lld %ld %s %s %s%s", name, (long long)now.tv_sec,
		 now.tv_nsec, nonce, ent, mode, net);
	return 0;
}

/* Incoming migration from the snapshot, then cont, then the guest's new
 * identity (AG_FORK: hostname, clock, RNG reseed) before anything else runs. */
static int restore_vm(struct vmm_inst *vm, struct qemu_vm *q, const struct snap_src *src,
		      struct err *e)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/devstate", src->dir);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, -errno, "cannot open %s: %s", p, strerror(errno));
	int r = qmp_set_ignore_shared(&q->qmp, src->ram[0] != 0, e);
	if (r < 0)
		return r;
	uint64_t t0 = now_usec();
	if ((r = qmp_migrate_fd(&q->qmp, "migrate-incoming", fd, QMP_TIMEOUT_MS, e)) < 0)
		return r;
	uint64_t t1 = now_usec();
	if ((r = qmp_wait_migration(&q->qmp, 120000, e)) < 0)
		return r;
	uint64_t t2 = now_usec();
	if ((r = qmp_cmd(&q->qmp, "cont", NULL, NULL, QMP_TIMEOUT_MS, e)) < 0)
		return r;
	uint64_t t3 = now_usec();
	char nonce[17], payload[FORK_PAYLOAD_MAX];
	if ((r = fork_payload(vm, q, vm->name, src->standby ? "resume" : "clone", nonce, payload,
			      e)) < 0)
		return r;
	if ((r = qagent_send_synced(q, AG_FORK, payload)) < 0)
		return err_set(e, r, "cannot reach the restored guest's agent: %s", strerror(-r));
	r = qagent_wait_answer(q, "fork", nonce, hf.kvm ? HELLO_TIMEOUT_KVM_MS : HELLO_TIMEOUT_TCG_MS, e);
	log_debug("sandbox %s: restore: migrate-incoming %" PRIu64 " us, load %" PRIu64
		  " us, cont %" PRIu64 " us, agent %" PRIu64 " us", vm->name, t1 - t0, t2 - t1,
		  t3 - t2, now_usec() - t3);
	return r;
}

/* --- spares: QEMUs started ahead for a forked VM's next fork ---
 * A spare is a fork child's command line with neutral paths (its own dir
 * under spares_dir, its own name for its RAM file, all holes), started with
 * -incoming defer, its QMP handshake done and x-ignore-shared set. The
 * spares made after one fork are a group: one RAM file (an inode of holes)
 * under a name of each (hard links). The parent's next fork copies its RAM
 * into that file in place: each spare maps it private and has not written
 * it (QEMU writes no guest RAM while it waits for an incoming migration), so
 * each sees the frozen image, exactly as a child started after the copy
 * would. The file is then renamed to the layer's RAM, every spare of the
 * group is bound to the layer (up to one a child: the others end, as their
 * map is the layer's now), and each child's start takes one: its files move
 * into the child's dir, its process into the child's cgroup, and only
 * migrate-incoming and cont remain. A burst of N children from one fork
 * thus has N QEMUs ahead and one copy of the RAM. A fork's refill makes as
 * many spares as it had children, at most --qemu-spares (the next fork is
 * taken to be like the last), and starts them once the fork's first child
 * has started and no fork child is starting anywhere, SPARE_SPAWN_MAX at a
 * time: a spare's start never takes the CPU from a restore. A spare serves
 * one layer, of a machine of the same shape (shape_key); the parent's end,
 * the layer's removal and the daemon's exit end it; a restarted daemon
 * kills what a dead one left (spare.json in its dir). A VM with a network
 * device gets spares with a TAP made ahead (vmm_host's tap_ahead): no
 * identity, on no bridge, down; the child's start hands it to the engine's
 * prestart in vm->nic.tap_fd, which makes it the child's (its name, filter,
 * forwarding entry, up) before the guest runs. The MAC on the spare's
 * command line is the parent's: a restore takes the device's MAC from the
 * stream anyway, and AG_FORK gives the guest the child's. A spare holds no
 * address. */
enum spare_state { SPARE_STARTING, SPARE_READY, SPARE_BOUND };

struct spare {
	enum spare_state st;
	bool dead; /* unwanted while it started: the starter ends it */
	const struct qemu_vm *owner; /* the parent's run it waits for (not bound) */
	char parent[SBX_NAME_MAX + 1]; /* for the log */
	uint64_t group; /* the refill that made it: its RAM file's inode */
	/* Bound: the snapshot dir whose RAM it maps; BOUND once up (a spare
	 * bound while STARTING keeps the name of its RAM file until QEMU opened it). */
	char layer[PATH_MAX];
	/* STARTING: the fork (its layer) whose child's start it waits for, so
	 * that its own start does not take the CPU from that restore; "": go. */
	char after[PATH_MAX];
	char key[PATH_MAX * 2 + 64];
	char ram[PATH_MAX]; /* its name for its group's RAM file; "" once bound and up */
	char disk[PATH_MAX]; /* the parent's root disk, "" for none */
	unsigned mem_mib, vcpus;
	bool vserial;
	bool nic; /* with a TAP made ahead: vm.nic.tap_fd, the daemon's fd on it */
	struct vmm_inst vm; /* its own name (spare-...), dir, pid and pidfd */
	struct qemu_vm *q;
	struct spare *next;
};

static pthread_mutex_t spares_lock = PTHREAD_MUTEX_INITIALIZER;
/* an after cleared, a dead set, a child's start or a spare's start ended */
static pthread_cond_t spares_cv = PTHREAD_COND_INITIALIZER;
static struct spare *spares;
static unsigned child_starts; /* fork children starting (restoring) now */
static unsigned spares_spawning; /* spares starting their QEMU now */
#define SPARE_SPAWN_MAX 2 /* spares that start their QEMU at once */
/* A fork whose child never starts, or children starting without end, hold
 * a refill this long. */
#define SPARE_AFTER_MAX_S 30
static _Atomic uint64_t spare_seq;
#define SPARE_RECORD "spare.json"

/* What must match between a spare and the child it serves: what QEMU was
 * started with, paths aside. */
static void shape_key(unsigned mem_mib, unsigned vcpus, bool vserial, bool nic,
		      const struct guest_files *g, char *out, size_t cap)
{
	snprintf(out, cap, "%u %u %s %s %s %s %s %s", mem_mib, vcpus, agent_dev_name(vserial),
		 nic ? "net" : "nonet", hf.kvm ? "kvm" : "tcg", g->kernel, g->initrd, g->disk);
}

static void spare_ram_path(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "/dev/shm/sandboxfs-%s-%s.ram", vmm_host()->tag, name);
}

/* Ends a spare out of the list: its QEMU killed and reaped, its files gone. */
static void spare_free(struct spare *sp)
{
	if (sp->vm.pidfd >= 0) {
		vmm_pidfd_signal(sp->vm.pidfd, SIGKILL);
		waitid(P_PIDFD, (id_t)sp->vm.pidfd, NULL, WEXITED);
		close(sp->vm.pidfd);
	}
	nic_close(&sp->vm); /* after QEMU: the TAP goes with this last fd */
	if (sp->vm.ctl_fd >= 0)
		close(sp->vm.ctl_fd);
	if (sp->q)
		qvm_put(sp->q);
	if (sp->ram[0])
		unlink(sp->ram);
	rm_rf(sp->vm.dir);
	free(sp);
}

/* Spares of owner's run (not bound), bound to the layer dir, or every one
 * (both NULL) leave the list and end; one still starting ends when it is up. */
static void spares_drop(const struct qemu_vm *owner, const char *layer)
{
	struct spare *gone = NULL;
	pthread_mutex_lock(&spares_lock);
	for (struct spare **p = &spares; *p;) {
		struct spare *sp = *p;
		bool match = owner   ? sp->owner == owner && !sp->layer[0]
			     : layer ? sp->layer[0] && strcmp(sp->layer, layer) == 0
				     : true;
		if (match && sp->st == SPARE_STARTING) {
			sp->dead = true;
			pthread_cond_broadcast(&spares_cv);
		}
		if (!match || sp->st == SPARE_STARTING) {
			p = &sp->next;
			continue;
		}
		*p = sp->next;
		sp->next = gone;
		gone = sp;
	}
	pthread_mutex_unlock(&spares_lock);
	while (gone) {
		struct spare *next = gone->next;
		spare_free(gone);
		gone = next;
	}
}

/* Takes the first spare that matches out of the list (NULL: none). */
static struct spare *spare_take(const struct qemu_vm *owner, const char *layer)
{
	pthread_mutex_lock(&spares_lock);
	struct spare *sp = NULL;
	for (struct spare **p = &spares; *p; p = &(*p)->next) {
		struct spare *s = *p;
		if (s->dead || (owner ? s->owner != owner || s->st != SPARE_READY || s->layer[0]
				      : s->st != SPARE_BOUND || strcmp(s->layer, layer) != 0))
			continue;
		*p = s->next;
		sp = s;
		break;
	}
	pthread_mutex_unlock(&spares_lock);
	return sp;
}

static void spare_list(struct spare *sp)
{
	pthread_mutex_lock(&spares_lock);
	sp->next = spares;
	spares = sp;
	pthread_mutex_unlock(&spares_lock);
}

static void spare_unlist(struct spare *sp)
{
	pthread_mutex_lock(&spares_lock);
	for (struct spare **p = &spares; *p; p = &(*p)->next)
		if (*p == sp) {
			*p = sp->next;
			break;
		}
	pthread_mutex_unlock(&spares_lock);
}

/* The spare's pid, for a restarted daemon to kill (vmm_qemu_spares_sweep). */
static int spare_record(const struct spare *sp, struct err *e)
{
	char p[PATH_MAX + 16], text[96];
	snprintf(p, sizeof(p), "%s/%s", sp->vm.dir, SPARE_RECORD);
	int n = snprintf(text, sizeof(text), "{\"pid\":%d,\"start\":%" PRIu64 "}", (int)sp->vm.pid,
			 sp->vm.pid_start);
	int r = write_file_atomic(p, text, (size_t)n, false);
	return r < 0 ? err_set(e, r, "cannot write %s: %s", p, strerror(-r)) : 0;
}

static int spare_spawn(struct spare *sp, struct err *e)
{
	struct vmm_inst *vm = &sp->vm;
	struct guest_files g;
	struct args a = {.n = 0};
	int qsv[2] = {-1, -1}, asv[2] = {-1, -1}, r;
	if ((r = mkdir_p(vm->dir, 0700)) < 0)
		return err_set(e, r, "cannot create %s: %s", vm->dir, strerror(-r));
	if ((sp->disk[0] && (r = rootdisk_write(vm->dir, sp->disk, e)) < 0) ||
	    (r = find_guest_files(vm, &g, true, e)) < 0)
		return r;
	const struct vmm_host *h = vmm_host();
	if (sp->nic) {
		if ((r = h->tap_ahead(h->image_arg, e)) < 0)
			return r;
		vm->nic.tap_fd = r;
		r = 0;
	}
	struct qemu_vm *q = sp->q = qvm_new();
	if (!q)
		return err_set(e, -ENOMEM, "out of memory");
	q->mem_mib = sp->mem_mib;
	q->vcpus = sp->vcpus;
	q->vserial = sp->vserial;
	q->nic = sp->nic;
	snprintf(q->ram_path, sizeof(q->ram_path), "%s", sp->ram);
	if ((r = channels_make(vm, q, qsv, asv, e)) < 0)
		goto out;
	build_args(vm, q, &g, true, &a);
	pid_t pid = spawn_qemu(vm, &a, qsv[1], asv[1], -1);
	if (pid < 0) {
		r = err_set(e, pid, "cannot start %s: %s", hf.qemu, strerror(-pid));
		goto out;
	}
	vm->pid = pid;
	vm->pid_start = vmm_pid_start(pid);
	if ((r = spare_record(sp, e)) < 0 ||
	    (r = qmp_handshake(&q->qmp, QMP_READY_TIMEOUT_MS, e)) < 0 ||
	    (r = qmp_set_ignore_shared(&q->qmp, true, e)) < 0)
		goto out;
out:
	close_pairs(qsv, asv);
	args_free(&a);
	return r;
}

static void *spare_main(void *arg)
{
	struct spare *sp = arg;
	struct err e = {0};
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += SPARE_AFTER_MAX_S;
	bool late = false;
	pthread_mutex_lock(&spares_lock);
	/* After the fork's first child, and no child starting (up to the
	 * deadline); then a turn among the spares starting. */
	while (!sp->dead) {
		bool hold = (sp->after[0] || child_starts) && !late;
		if (!hold && spares_spawning < SPARE_SPAWN_MAX)
			break;
		if (hold)
			late = pthread_cond_timedwait(&spares_cv, &spares_lock, &dl) == ETIMEDOUT;
		else
			pthread_cond_wait(&spares_cv, &spares_lock);
	}
	sp->after[0] = '\0';
	bool go = !sp->dead;
	spares_spawning += go;
	pthread_mutex_unlock(&spares_lock);
	uint64_t t0 = now_usec();
	int r = go ? spare_spawn(sp, &e) : 0;
	pthread_mutex_lock(&spares_lock);
	spares_spawning -= go;
	pthread_cond_broadcast(&spares_cv);
	bool keep = r == 0 && !sp->dead;
	if (keep && sp->layer[0]) { /* bound while it started: QEMU holds the map */
		unlink(sp->ram);
		sp->ram[0] = '\0';
		sp->st = SPARE_BOUND;
	} else if (keep) {
		sp->st = SPARE_READY;
	}
	pthread_mutex_unlock(&spares_lock);
	if (r < 0)
		log_warn("sandbox %s: a QEMU started ahead for its next fork failed: %s", sp->parent,
			 e.msg);
	else if (keep)
		log_debug("sandbox %s: %s (pid %d) waits for its next fork, up in %" PRIu64 " us",
			  sp->parent, sp->vm.name, (int)sp->vm.pid, now_usec() - t0);
	if (!keep) {
		spare_unlist(sp);
		spare_free(sp);
	}
	return NULL;
}

/* The RAM file of the group that waits for owner's next fork (a name of
 * it in ram, its group in *group); false when owner has none. Only owner's
 * checkpoint binds (spare_bind) or extends (spares_refill) its group, under
 * its sandbox's lock: the group found stays unbound while it is linked. */
static bool spares_group_of(const struct qemu_vm *owner, char *ram, size_t cap, uint64_t *group)
{
	bool found = false;
	pthread_mutex_lock(&spares_lock);
	for (struct spare *sp = spares; sp && !found; sp = sp->next)
		if (sp->owner == owner && !sp->dead && !sp->layer[0] && sp->ram[0]) {
			snprintf(ram, cap, "%s", sp->ram);
			*group = sp->group;
			found = true;
		}
	pthread_mutex_unlock(&spares_lock);
	return found;
}

/* The spares' names linked to the RAM file of owner's waiting group (one
 * group waits for a fork), or to a new one made under the first name
 * (holes, the machine's size); 0 or -errno (no name made then). */
static int spares_ram_make(const struct qemu_vm *owner, struct spare **sps, unsigned n,
			   struct err *e)
{
	char from[PATH_MAX];
	uint64_t group = sps[0]->group;
	unsigned i = 0;
	int r = 0;
	if (!spares_group_of(owner, from, sizeof(from), &group) || link(from, sps[0]->ram) < 0) {
		group = sps[0]->group;
		snprintf(from, sizeof(from), "%s", sps[0]->ram);
		int fd = open(from, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)sps[0]->mem_mib << 20) < 0)
			r = err_set(e, -errno, "cannot create %s: %s", from, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	for (i = 1; r == 0 && i < n; i++)
		if (link(from, sps[i]->ram) < 0)
			r = err_set(e, -errno, "cannot link %s to %s: %s", sps[i]->ram, from,
				    strerror(errno));
	for (i = 0; i < n; i++) {
		sps[i]->group = group;
		if (r < 0)
			unlink(sps[i]->ram);
	}
	return r;
}

/* After a fork of the running VM (its layer dir) with n children: starts
 * spares in the background (spare_main says when), one group, until as many
 * as the fork had children wait for its next one, at most --qemu-spares. */
static void spares_refill(const struct vmm_inst *pvm, const struct qemu_vm *pq, const char *layer,
			  unsigned n)
{
	const struct vmm_host *h = vmm_host();
	struct guest_files g;
	struct spare *sps[VMM_QEMU_SPARES_MAX];
	unsigned want = n > 1 ? n : 1, have = 0, k = 0;
	want = want < h->qemu_spares ? want : h->qemu_spares;
	if (!want || !h->spares_dir[0] || (pq->nic && !h->tap_ahead) || !pq->ram_shared ||
	    find_guest_files(pvm, &g, true, NULL) < 0)
		return;
	pthread_mutex_lock(&spares_lock);
	for (struct spare *sp = spares; sp; sp = sp->next)
		have += sp->owner == pq && !sp->dead && !sp->layer[0];
	pthread_mutex_unlock(&spares_lock);
	uint64_t group = atomic_fetch_add(&spare_seq, 1);
	for (; have + k < want && k < ARRAY_SIZE(sps); k++) {
		struct spare *sp = sps[k] = calloc(1, sizeof(*sp));
		if (!sp)
			break;
		vmm_inst_init(&sp->vm);
		sp->owner = pq;
		sp->group = group;
		sp->mem_mib = pq->mem_mib;
		sp->vcpus = pq->vcpus;
		sp->vserial = pq->vserial;
		sp->nic = pq->nic;
		if (sp->nic) { /* the command line's identity: the stream brings the MAC */
			sp->vm.nic = pvm->nic;
			sp->vm.nic.tap_fd = -1;
		}
		snprintf(sp->disk, sizeof(sp->disk), "%s", g.disk);
		shape_key(pq->mem_mib, pq->vcpus, pq->vserial, pq->nic, &g, sp->key, sizeof(sp->key));
		snprintf(sp->parent, sizeof(sp->parent), "%s", pvm->name);
		snprintf(sp->vm.name, sizeof(sp->vm.name), "spare-%" PRIx64 "-%" PRIu64, wall_usec(),
			 atomic_fetch_add(&spare_seq, 1));
		snprintf(sp->vm.dir, sizeof(sp->vm.dir), "%s/%s", h->spares_dir, sp->vm.name);
		snprintf(sp->vm.image_dir, sizeof(sp->vm.image_dir), "%s", pvm->image_dir);
		sp->vm.nimage_layers = pvm->nimage_layers;
		memcpy(sp->vm.image_layers, pvm->image_layers, sizeof(sp->vm.image_layers));
		spare_ram_path(sp->vm.name, sp->ram, sizeof(sp->ram));
		snprintf(sp->after, sizeof(sp->after), "%s", layer);
	}
	struct err e = {0};
	if (k && spares_ram_make(pq, sps, k, &e) < 0) {
		log_warn("sandbox %s: no QEMU started ahead for its next fork: %s", pvm->name, e.msg);
		for (unsigned i = 0; i < k; i++)
			sps[i]->ram[0] = '\0'; /* gone */
	}
	for (unsigned i = 0; i < k; i++) {
		struct spare *sp = sps[i];
		pthread_t th;
		pthread_attr_t at;
		int r = -1;
		if (sp->ram[0]) {
			spare_list(sp);
			pthread_attr_init(&at);
			pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
			r = pthread_create(&th, &at, spare_main, sp);
			pthread_attr_destroy(&at);
			if (r != 0) {
				log_warn("sandbox %s: cannot start a thread for a spare QEMU: %s",
					 pvm->name, strerror(r));
				spare_unlist(sp);
			}
		}
		if (r != 0)
			spare_free(sp);
	}
}

/* With spares_lock held: sp, of owner's group, bound to layer_dir; starting,
 * it keeps its RAM file's name until its QEMU is up (spare_main). */
static void spare_bind_locked(struct spare *sp, const char *layer_dir)
{
	snprintf(sp->layer, sizeof(sp->layer), "%s", layer_dir);
	sp->owner = NULL;
	sp->after[0] = '\0';
	if (sp->st != SPARE_READY)
		return;
	unlink(sp->ram);
	sp->ram[0] = '\0';
	sp->st = SPARE_BOUND;
}

/* In a fork's checkpoint with n children: the parent's RAM goes into the
 * RAM file of a waiting spare's group, which becomes the layer's
 * (layer_ram); up to n of the group are bound to the layer, the others end
 * (they map the layer's RAM now). False when there was no spare, or it
 * could not take it (the caller copies as usual). */
static bool spare_bind(const struct qemu_vm *pq, const char *layer_dir, const char *layer_ram,
		       unsigned n)
{
	struct spare *sp = spare_take(pq, NULL);
	if (!sp)
		return false;
	struct err e = {0};
	int r = 0;
	if (vmm_pidfd_wait(sp->vm.pidfd, 0) != 0)
		r = err_set(&e, -ESRCH, "%s (pid %d) is gone", sp->vm.name, (int)sp->vm.pid);
	else if ((r = vmm_copy_sparse(pq->ram_path, sp->ram, true, &e)) == 0 &&
		 rename(sp->ram, layer_ram) < 0)
		r = err_set(&e, -errno, "cannot rename %s: %s", sp->ram, strerror(errno));
	if (r < 0) { /* the group's file may hold part of a copy: the group ends */
		log_warn("sandbox %s: its spare QEMUs cannot serve this fork: %s", sp->parent, e.msg);
		spare_free(sp);
		spares_drop(pq, NULL);
		return false;
	}
	sp->ram[0] = '\0';
	snprintf(sp->layer, sizeof(sp->layer), "%s", layer_dir);
	sp->owner = NULL;
	sp->st = SPARE_BOUND;
	unsigned bound = 1;
	struct spare *gone = NULL;
	pthread_mutex_lock(&spares_lock);
	for (struct spare **p = &spares; *p;) {
		struct spare *s = *p;
		if (s->owner != pq || s->group != sp->group || s->layer[0]) {
			p = &s->next;
			continue;
		}
		if (bound < n && !s->dead) {
			spare_bind_locked(s, layer_dir);
			bound++;
		} else if (s->st == SPARE_STARTING) { /* no child for it: its starter ends it */
			s->dead = true;
		} else { /* no child for it, and its map is the layer's RAM now */
			*p = s->next;
			s->next = gone;
			gone = s;
			continue;
		}
		p = &s->next;
	}
	sp->next = spares;
	spares = sp;
	pthread_cond_broadcast(&spares_cv);
	pthread_mutex_unlock(&spares_lock);
	while (gone) {
		struct spare *next = gone->next;
		spare_free(gone);
		gone = next;
	}
	return true;
}

/* A fork child's start: the spare bound to its layer (src->dir) when it is
 * of the child's shape (key); NULL when none is, the other one ended. */
static struct spare *spare_claim(const struct vmm_inst *vm, const struct snap_src *src,
				 const char *key)
{
	struct spare *sp = spare_take(NULL, src->dir);
	if (sp && strcmp(sp->key, key) != 0) {
		log_warn("sandbox %s: its QEMU starts cold: the spare is of another machine (%s, "
			 "not %s)", vm->name, sp->key, key);
		spare_free(sp);
		return NULL;
	}
	return sp;
}

/* The claimed spare moved into the child (files, cgroup, fds, process) so
 * that only the restore is left; 0, or -errno with the spare ended and
 * nothing of the child changed but its console log and the TAP it took
 * (the caller starts it cold, on that TAP). sp is spent either way. */
static int spare_adopt(struct vmm_inst *vm, struct qemu_vm *q, struct spare *sp, struct err *e)
{
	char p[PATH_MAX + 16];
	int r = 0;
	_cleanup_close_ int sfd = open(sp->vm.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dfd = open(vm->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	const char *files[] = {"console.log", QMP_SOCK, AGENT_SOCK};
	if (vmm_pidfd_wait(sp->vm.pidfd, 0) != 0)
		r = err_set(e, -ESRCH, "%s (pid %d) is gone", sp->vm.name, (int)sp->vm.pid);
	else if (sfd < 0 || dfd < 0)
		r = err_set(e, -errno, "cannot open %s or %s: %s", sp->vm.dir, vm->dir, strerror(errno));
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(files); i++)
		if (renameat(sfd, files[i], dfd, files[i]) < 0)
			r = err_set(e, -errno, "cannot move %s/%s: %s", sp->vm.dir, files[i],
				    strerror(errno));
	if (r == 0)
		r = cg_attach(&vm->cg, sp->vm.pid, e);
	if (r < 0) {
		spare_free(sp);
		return r;
	}
	/* The child's from here: no sweep of a restarted daemon kills it. */
	snprintf(p, sizeof(p), "%s/%s", sp->vm.dir, SPARE_RECORD);
	unlink(p);
	struct qemu_vm *sq = sp->q;
	q->qmp.fd = sq->qmp.fd;
	q->qmp.len = sq->qmp.len;
	memcpy(q->qmp.buf, sq->qmp.buf, sq->qmp.len);
	q->qmp.next_id = sq->qmp.next_id;
	q->agent_fd = sq->agent_fd;
	q->note_wr = sq->note_wr;
	sq->qmp.fd = sq->agent_fd = sq->note_wr = -1;
	vm->ctl_fd = sp->vm.ctl_fd;
	vm->pidfd = sp->vm.pidfd;
	vm->pid = sp->vm.pid;
	vm->pid_start = sp->vm.pid_start;
	q->pidfd = fcntl(vm->pidfd, F_DUPFD_CLOEXEC, 0);
	sp->vm.ctl_fd = sp->vm.pidfd = -1;
	log_debug("sandbox %s: takes %s (pid %d), started ahead for a fork of %s", vm->name,
		  sp->vm.name, (int)vm->pid, sp->parent);
	spare_free(sp);
	return 0;
}

void vmm_qemu_spares_drop_layer(const char *dir) { spares_drop(NULL, dir); }

/* A fork's child starts (restores): spares wait (spare_main). */
static void child_start_begin(void)
{
	pthread_mutex_lock(&spares_lock);
	child_starts++;
	pthread_mutex_unlock(&spares_lock);
}

/* A child of the fork whose layer is dir has started (or failed to): the
 * spares that waited for it start, once no other child is starting. */
static void spares_after(const char *dir)
{
	pthread_mutex_lock(&spares_lock);
	child_starts--;
	for (struct spare *sp = spares; sp; sp = sp->next)
		if (sp->st == SPARE_STARTING && strcmp(sp->after, dir) == 0)
			sp->after[0] = '\0';
	pthread_cond_broadcast(&spares_cv);
	pthread_mutex_unlock(&spares_lock);
}

/* Daemon exit: every spare ends, those still starting once they are up. */
void vmm_qemu_spares_end(void)
{
	for (int i = 0; i < (QMP_READY_TIMEOUT_MS + 5000) / 10; i++) {
		spares_drop(NULL, NULL);
		pthread_mutex_lock(&spares_lock);
		bool left = spares != NULL;
		pthread_mutex_unlock(&spares_lock);
		if (!left)
			return;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	log_warn("qemu: a spare QEMU was still starting at exit; the next daemon kills it");
}

/* Start-up: what a dead daemon left in spares_dir: its QEMU (pid, start time
 * and comm checked) killed, its files removed. Before any sandbox starts. */
void vmm_qemu_spares_sweep(void)
{
	const char *dir = vmm_host()->spares_dir;
	if (!dir[0] || mkdir_p(dir, 0700) < 0)
		return;
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "spare-", 6) != 0)
			continue;
		struct vmm_inst vm;
		char p[PATH_MAX + 300], ram[PATH_MAX];
		vmm_inst_init(&vm);
		snprintf(vm.dir, sizeof(vm.dir), "%s/%s", dir, de->d_name);
		snprintf(p, sizeof(p), "%s/%s", vm.dir, SPARE_RECORD);
		json_t *o = json_load_file(p, 0, NULL);
		json_int_t pid = 0, start = 0;
		if (o && json_unpack(o, "{s:I, s:I}", "pid", &pid, "start", &start) == 0 && pid > 0) {
			vm.pid = (pid_t)pid;
			vm.pid_start = (uint64_t)start;
			int fd = vmm_pin_pid(&vm, "qemu-system", NULL);
			if (fd >= 0) {
				log_info("qemu: killing %s (pid %d), a spare a dead daemon left",
					 de->d_name, (int)vm.pid);
				vmm_pidfd_signal(fd, SIGKILL);
				vmm_pidfd_wait(fd, 5000);
				close(fd);
			}
		}
		json_decref(o);
		spare_ram_path(de->d_name, ram, sizeof(ram));
		unlink(ram);
		rm_rf(vm.dir);
	}
	if (d)
		closedir(d);
}

static int qemu_show(struct vmm_inst *vm, struct buf *b)
{
	struct qemu_vm *q = qvm_get(vm);
	unsigned ready = 0, starting = 0;
	char pids[256] = "";
	size_t o = 0;
	pthread_mutex_lock(&spares_lock);
	for (struct spare *sp = spares; q && sp; sp = sp->next) {
		if (sp->owner != q || sp->dead || sp->st == SPARE_BOUND)
			continue;
		starting += sp->st == SPARE_STARTING;
		ready += sp->st == SPARE_READY;
		if (sp->st == SPARE_READY && o + 16 < sizeof(pids))
			o += (size_t)snprintf(pids + o, sizeof(pids) - o, "%s%d", o ? "," : "",
					      (int)sp->vm.pid);
	}
	pthread_mutex_unlock(&spares_lock);
	if (q)
		qvm_put(q);
	return buf_printf(b, "fork_spares_ready %u\nfork_spares_starting %u\nfork_spare_pids %s\n",
			  ready, starting, pids[0] ? pids : "-");
}

static int qemu_start(struct vmm_inst *vm, struct vmm_timing *t, struct err *e)
{
	int qsv[2] = {-1, -1}, asv[2] = {-1, -1}, r;
	unsigned mem_mib = 0, vcpus = 0;
	uint64_t made;
	struct guest_files g;
	struct snap_src src;
	struct args a = {.n = 0};
	struct spare *sp = NULL;
	char key[sizeof(((struct spare *)0)->key)];
	_cleanup_close_ int cg_fd = -1;
	host_facts();
	if ((r = vm_shape(vm, &mem_mib, &vcpus, e)) < 0 || (r = find_restore(vm, &src, e)) < 0 ||
	    (r = rootdisk_prepare(vm, src.dir, &made, e)) < 0 ||
	    (r = find_guest_files(vm, &g, true, e)) < 0)
		return r;
	if (made)
		note_phase(t, "image", made);
	if (src.dir[0] && (src.mem_mib != mem_mib || src.vcpus != vcpus))
		return err_set(e, -EINVAL, "snapshot %s is of a %u MiB, %u vCPU machine; this sandbox "
			       "is %u MiB, %u vCPU", src.dir, src.mem_mib, src.vcpus, mem_mib, vcpus);
	struct qemu_vm *q = vm->priv = qvm_new();
	if (!q)
		return err_set(e, -ENOMEM, "out of memory");
	q->mem_mib = mem_mib;
	q->vcpus = vcpus;
	/* A restored machine has the devices it was saved with. */
	q->vserial = src.dir[0] ? src.vserial : g.vserial;
	if (src.ram[0] && !src.standby) { /* a fork's child: a QEMU started ahead? */
		child_start_begin(); /* spares_after at the end, whichever */
		/* prestart is set when the engine gives this sandbox a network */
		shape_key(mem_mib, vcpus, q->vserial, vm->prestart != NULL, &g, key, sizeof(key));
		sp = spare_claim(vm, &src, key);
	}
	/* The engine's TAP, on the bridge with its filter, before QEMU exists:
	 * the spare's made the child's, or a new one. */
	if (sp && sp->nic && (vm->nic.tap_fd = fcntl(sp->vm.nic.tap_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		log_warn("sandbox %s: its QEMU starts cold: cannot take the TAP made ahead: %s",
			 vm->name, strerror(errno));
		spare_free(sp);
		sp = NULL;
	}
	if (vm->prestart && (r = vm->prestart(vm, 0, vm->prestart_arg, e)) < 0 && sp && sp->nic) {
		log_warn("sandbox %s: its QEMU starts cold: %s", vm->name, e->msg);
		nic_close(vm);
		spare_free(sp); /* its TAP with it: the new one may take the same name */
		sp = NULL;
		r = vm->prestart(vm, 0, vm->prestart_arg, e);
	}
	if (r < 0)
		goto fail;
	q->nic = vm->nic.tap_fd >= 0;
	if (src.dir[0] && src.nic != q->nic) {
		r = err_set(e, -EINVAL, "snapshot %s is of a machine %s a network device; this "
			    "sandbox has %s", src.dir, src.nic ? "with" : "without",
			    q->nic ? "one (net=on)" : "none (net=off)");
		goto fail;
	}

	uint64_t t0 = now_usec();
	struct vmm_limits lim = vm->lim;
	lim.memory_bytes = ((uint64_t)mem_mib << 20) + QEMU_OVERHEAD_BYTES;
	lim.pids = lim.pids && lim.pids < QEMU_PIDS_MIN ? QEMU_PIDS_MIN : lim.pids;
	lim.devices |= hf.kvm ? VMM_DEV_KVM : 0;
	if ((r = cg_create(&vm->cg, vmm_host()->tag, vm->name, &lim, e)) < 0)
		goto fail;
	cg_fd = cg_open_fd(&vm->cg);
	t->cgroup_usec = now_usec() - t0;

	uint64_t t1 = now_usec(), t2, t3;
	pid_t pid;
	if (sp) {
		struct err se = {0};
		int sr = spare_adopt(vm, q, sp, &se);
		sp = NULL; /* spent */
		if (sr == 0) {
			nic_close(vm); /* the spare's QEMU holds the TAP */
			snprintf(q->ram_path, sizeof(q->ram_path), "%s", src.ram);
			q->ram_shared = false;
			t->fork_start = "ahead";
			pid = vm->pid;
			t2 = t3 = now_usec();
			note_phase(t, "claim", t3 - t1);
			goto restore;
		}
		log_warn("sandbox %s: its QEMU starts cold: %s", vm->name, se.msg);
	}
	if (src.dir[0] && !src.standby)
		t->fork_start = "cold";
	/* QEMU's ends listen in the state dir, so that a restarted daemon finds
	 * them; ours are connected before QEMU starts (queued in the backlog). */
	if ((r = channels_make(vm, q, qsv, asv, e)) < 0)
		goto fail;
	if (src.ram[0]) { /* a fork's child: the snapshot's frozen RAM, copy-on-write */
		snprintf(q->ram_path, sizeof(q->ram_path), "%s", src.ram);
		q->ram_shared = false;
	} else {
		shm_path_of(vm, q->shm_path, sizeof(q->shm_path));
		unlink(q->shm_path); /* a stale one from a crashed daemon: QEMU would reuse its pages */
		snprintf(q->ram_path, sizeof(q->ram_path), "%s", q->shm_path);
		q->ram_shared = true;
	}
	build_args(vm, q, &g, src.dir[0] != 0, &a);

	t1 = now_usec();
	pid = spawn_qemu(vm, &a, qsv[1], asv[1], cg_fd);
	args_free(&a);
	close(qsv[1]);
	close(asv[1]);
	qsv[1] = asv[1] = -1;
	nic_close(vm); /* QEMU holds the TAP now: it goes when QEMU ends */
	if (pid < 0) {
		r = err_set(e, pid, "cannot start %s: %s", hf.qemu, strerror(-pid));
		goto fail;
	}
	vm->pid = pid;
	vm->pid_start = vmm_pid_start(pid);
	q->pidfd = fcntl(vm->pidfd, F_DUPFD_CLOEXEC, 0);
	t2 = now_usec();
	t->spawn_usec = t2 - t1;
	note_phase(t, "vmm_spawn", t->spawn_usec);
	if (cg_fd < 0 && (r = cg_attach(&vm->cg, pid, e)) < 0)
		goto fail_kill;

	if ((r = qmp_handshake(&q->qmp, QMP_READY_TIMEOUT_MS, e)) < 0)
		goto fail_kill;
	t3 = now_usec();
	note_phase(t, "qmp", t3 - t2);
restore:
	if (src.dir[0])
		r = restore_vm(vm, q, &src, e);
	else
		r = qagent_wait_hello(q, hf.kvm ? HELLO_TIMEOUT_KVM_MS : HELLO_TIMEOUT_TCG_MS, e);
	if (r < 0)
		goto fail_kill;
	uint64_t t4 = now_usec();
	note_phase(t, src.dir[0] ? "restore" : "boot", t4 - t3);
	if (src.dir[0])
		t->restore_usec = t4 - t1;
	t->init_usec = t4 - t2;
	if ((r = qagent_start_reader(q, e)) < 0)
		goto fail_kill;
	save_run_facts(vm, q);
	if (src.standby) { /* restored: the image is spent */
		rm_rf(src.dir);
	} else if (src.dir[0]) {
		char marker[PATH_MAX + 16];
		restore_marker(vm, marker, sizeof(marker));
		unlink(marker); /* a later start boots afresh */
	}
	log_debug("sandbox %s: qemu pid %d (%s, %u MiB, %u vCPU) %s in %" PRIu64 " us", vm->name,
		  (int)pid, hf.kvm ? "kvm" : "tcg", mem_mib, vcpus,
		  src.dir[0] ? "restored" : "up", t4 - t1);
	if (src.ram[0] && !src.standby)
		spares_after(src.dir);
	return 0;

fail_kill:;
	/* A closed channel means QEMU is on its way out: let it finish saying why
	 * (its stderr goes to the console log) before the kill. */
	bool gone = (r == -ECHILD || r == -EPIPE || r == -ECONNRESET) &&
		    vmm_pidfd_wait(vm->pidfd, QEMU_EXIT_GRACE_MS) > 0;
	vmm_pidfd_signal(vm->pidfd, SIGKILL);
	waitid(P_PIDFD, (id_t)vm->pidfd, NULL, WEXITED);
	if (gone || r == -ECHILD || r == -EPIPE || r == -ECONNRESET) {
		char tail[256], why[SBX_ERRMSG_MAX];
		console_tail(vm, tail, sizeof(tail));
		snprintf(why, sizeof(why), "%s", e ? e->msg : "");
		if (tail[0] && gone)
			err_set(e, r, "QEMU exited while starting: %.200s (%.250s)", tail, why);
		else if (tail[0])
			err_set(e, r, "%.250s; the console's last line: %.200s", why, tail);
	}
fail:
	nic_close(vm);
	if (sp)
		spare_free(sp);
	if (src.ram[0] && !src.standby)
		spares_after(src.dir);
	close_pairs(qsv, asv);
	args_free(&a);
	qvm_detach(vm);
	vmm_end_run(vm);
	return r;
}

/* QMP stop or cont: the guest's vCPUs stop or run on purpose, and the
 * deadline of its agent's queued frames with them (qagent_hold). */
static int vcpus_run(struct qemu_vm *q, bool run, struct err *e)
{
	if (!run)
		qagent_hold(q, true);
	int r = qmp_cmd(&q->qmp, run ? "cont" : "stop", NULL, NULL, QMP_TIMEOUT_MS, e);
	if (run ? r == 0 : r < 0)
		qagent_hold(q, false);
	return r;
}

/* Clean poweroff through the agent, then QMP quit, then SIGKILL. A
 * poweroff the channel has no room for is queued; the stop waits for it to
 * go while the guest reads (slowly or not), and goes on to quit once the
 * channel took nothing for the send bound: a guest that reads nothing will
 * not power off. Quit, not system_powerdown: the guest has no one to act on
 * an ACPI button (the agent is its init), so that would only wait again. */
static int stop_vm(struct vmm_inst *vm, struct qemu_vm *q, int timeout_sec, struct err *e)
{
	int left_ms = timeout_sec * 1000;
	if (timeout_sec > 0) {
		char secs[16];
		int n = snprintf(secs, sizeof(secs), "%d", timeout_sec > 1 ? timeout_sec - 1 : 0);
		uint64_t t0 = now_usec(), ticket = 0;
		int r = qagent_send_ticket(q, AG_POWEROFF, 0, secs, (uint32_t)n, &ticket);
		if (r == 0 && ticket)
			r = qagent_wait_sent(q, ticket, left_ms);
		if (r == 0) {
			int spent = (int)((now_usec() - t0) / 1000);
			if (vmm_pidfd_wait(q->pidfd, left_ms > spent ? left_ms - spent : 0) > 0)
				return 0;
			log_warn("sandbox %s: the guest did not power off in %d s; asking QEMU to quit",
				 vm->name, timeout_sec);
		} else if (r == -ETIMEDOUT && ticket) {
			int spent = (int)((now_usec() - t0) / 1000);
			log_warn("sandbox %s: the poweroff still waits for room in the agent's channel "
				 "(%s); asking QEMU to quit", vm->name, spent >= left_ms
				 ? "the stop's time is up" : "the guest read nothing of it for the send bound");
		} else {
			log_warn("sandbox %s: the guest agent did not take the poweroff (%s); asking "
				 "QEMU to quit", vm->name, strerror(-r));
		}
		left_ms -= (int)((now_usec() - t0) / 1000);
	}
	uint64_t t0 = now_usec();
	int quit_ms = left_ms > 2000 ? left_ms : 2000;
	qmp_cmd(&q->qmp, "quit", NULL, NULL, quit_ms, NULL); /* it may exit before replying */
	int spent = (int)((now_usec() - t0) / 1000);
	if (vmm_pidfd_wait(q->pidfd, quit_ms > spent ? quit_ms - spent : 0) > 0)
		return 0;
	log_warn("sandbox %s: QEMU did not quit; killing it", vm->name);
	vmm_pidfd_signal(q->pidfd, SIGKILL);
	if (vmm_pidfd_wait(q->pidfd, 5000) == 0)
		return err_set(e, -ETIMEDOUT, "QEMU (pid %d) survived SIGKILL", (int)vm->pid);
	return 0;
}

static int qemu_stop(struct vmm_inst *vm, int timeout_sec, struct err *e)
{
	struct qemu_vm *q = qvm_get(vm);
	if (!q)
		return 0; /* already reaped */
	int r = q->pidfd >= 0 ? stop_vm(vm, q, timeout_sec, e) : 0;
	qvm_put(q);
	return r;
}

/* SIGKILL ends QEMU; TERM and INT power the guest off cleanly; any other
 * signal goes to every process of the guest. */
static int qemu_kill(struct vmm_inst *vm, int sig, struct err *e)
{
	struct qemu_vm *q = vm->priv;
	if (vm->pidfd < 0)
		return err_set(e, -ESRCH, "sandbox has no running VM");
	int r;
	if (sig == SIGKILL || !q) {
		r = vmm_pidfd_signal(vm->pidfd, SIGKILL);
		return r < 0 ? err_set(e, r, "cannot kill QEMU: %s", strerror(-r)) : 0;
	}
	char p[16];
	int n = snprintf(p, sizeof(p), "%d", sig == SIGTERM || sig == SIGINT ? 10 : sig);
	/* Queued when the channel is full: it goes once the guest reads. A
	 * guest that reads nothing for the queue's deadline is taken for lost:
	 * a poweroff queued then ends QEMU instead (agent_lost), so a TERM's
	 * success holds either way; a signal for the guest's processes is
	 * dropped with the queue. */
	r = qagent_send(q, sig == SIGTERM || sig == SIGINT ? AG_POWEROFF : AG_KILL, 0, p, (uint32_t)n);
	return r < 0 ? qagent_send_err(q, r, "the signal", e) : 0;
}

static int qemu_pause(struct vmm_inst *vm, bool pause, struct err *e)
{
	struct qemu_vm *q = vm->priv;
	if (!q)
		return err_set(e, -ESRCH, "sandbox has no running VM");
	return vcpus_run(q, !pause, e);
}

/* Migrates the (stopped) machine into dir/devstate, leaving a share=on RAM
 * file out of the stream when ignore_shared; writes dir/vm.json. */
static int save_vm(struct qemu_vm *q, const char *dir, bool ignore_shared, const char *ram,
		   struct err *e)
{
	char p[PATH_MAX + 16];
	int r = mkdir_p(dir, 0700);
	if (r < 0)
		return err_set(e, r, "cannot create %s: %s", dir, strerror(-r));
	snprintf(p, sizeof(p), "%s/devstate", dir);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, -errno, "cannot create %s: %s", p, strerror(errno));
	if ((r = qmp_set_ignore_shared(&q->qmp, ignore_shared, e)) < 0 ||
	    (r = qmp_migrate_fd(&q->qmp, "migrate", fd, QMP_TIMEOUT_MS, e)) < 0 ||
	    (r = qmp_wait_migration(&q->qmp, 120000, e)) < 0)
		return r;
	json_t *o = json_pack("{s:i, s:i, s:s, s:b, s:s}", "mem_mib", (int)q->mem_mib, "vcpus",
			      (int)q->vcpus, "ram", ram, "nic", q->nic, "agent",
			      agent_dev_name(q->vserial));
	char *text = o ? json_dumps(o, 0) : NULL;
	json_decref(o);
	snprintf(p, sizeof(p), "%s/vm.json", dir);
	r = text ? write_file_atomic(p, text, strlen(text), true) : -ENOMEM;
	free(text);
	return r < 0 ? err_set(e, r, "cannot write %s: %s", p, strerror(-r)) : 0;
}

/* Live fork: the machine stops, its device state goes to dest_dir, and its
 * RAM file (share=on) is copied to a frozen image that children map
 * copy-on-write; then it runs on, the same process with the same clients.
 * A machine whose own RAM is a private map (a child) puts its RAM in the
 * stream instead, and its children load it. */
static int qemu_checkpoint(struct vmm_inst *vm, const char *dest_dir, bool frozen,
			   struct vmm_timing *t, struct err *e)
{
	struct qemu_vm *q = qvm_get(vm);
	if (!q)
		return err_set(e, -ESRCH, "sandbox has no running VM");
	char ram[PATH_MAX] = "", id[VMM_LAYER_ID_MAX + 1], d[PATH_MAX];
	snprintf(d, sizeof(d), "%s", dest_dir);
	snprintf(id, sizeof(id), "%s", basename(d));
	uint64_t t0 = now_usec();
	int r = frozen ? 0 : vcpus_run(q, false, e);
	uint64_t t1 = now_usec();
	if (r == 0 && q->ram_shared) /* vmm_remove_layer removes it by the same name */
		vmm_ram_path(id, ram, sizeof(ram));
	if (r == 0)
		r = save_vm(q, dest_dir, q->ram_shared, ram, e);
	char disk[PATH_MAX];
	if (r == 0 && rootdisk_read(vm->dir, disk, sizeof(disk)) == 0)
		r = rootdisk_write(dest_dir, disk, e);
	if (r == 0 && ram[0] && !(t->fork && spare_bind(q, dest_dir, ram, t->fork_children)))
		r = vmm_copy_sparse(q->ram_path, ram, false, e);
	uint64_t t2 = now_usec();
	struct err ce = {0};
	if (!frozen && vcpus_run(q, true, &ce) < 0) {
		log_warn("sandbox %s: cannot resume after the checkpoint: %s", vm->name, ce.msg);
		if (r == 0)
			r = err_set(e, ce.code, "cannot resume the source: %s", ce.msg);
	}
	t->freeze_usec = now_usec() - t0;
	t->copy_usec = t2 - t1;
	if (r < 0)
		vmm_remove_layer(dest_dir);
	else if (t->fork)
		spares_refill(vm, q, dest_dir, t->fork_children);
	qvm_put(q);
	return r;
}

/* standby: the whole machine, RAM included, to the state dir; QEMU ends and
 * its RAM file goes. The next start restores it (find_restore). */
static int qemu_standby(struct vmm_inst *vm, bool paused, struct err *e)
{
	struct qemu_vm *q = qvm_get(vm);
	if (!q)
		return err_set(e, -ESRCH, "sandbox has no running VM");
	char dir[PATH_MAX + 16];
	standby_dir(vm, dir, sizeof(dir));
	rm_rf(dir);
	int r = paused ? 0 : vcpus_run(q, false, e);
	if (r == 0)
		r = save_vm(q, dir, false, "", e);
	if (r < 0) {
		struct err ce = {0};
		rm_rf(dir);
		if (!paused && vcpus_run(q, true, &ce) < 0)
			log_warn("sandbox %s: cannot resume after a failed standby: %s", vm->name,
				 ce.msg);
	} else {
		r = stop_vm(vm, q, 0, e); /* QMP quit: the monitor reaps it */
	}
	qvm_put(q);
	return r;
}

static int qemu_freeze(struct vmm_inst *vm, struct err *e) { return qemu_pause(vm, true, e); }
static int qemu_thaw(struct vmm_inst *vm, struct err *e) { return qemu_pause(vm, false, e); }

static int qemu_reap(struct vmm_inst *vm, int *exit_code, struct err *why)
{
	siginfo_t si;
	*exit_code = vmm_wait_exit(vm, &si);
	if (*exit_code != 0) {
		log_warn("sandbox %s: QEMU (pid %d) ended with %s %d", vm->name, (int)vm->pid,
			 si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status);
		err_set(why, -EIO, "QEMU (pid %d) ended unexpectedly with %s %d (see log)",
			(int)vm->pid, si.si_code == CLD_EXITED ? "exit status" : "signal",
			si.si_status);
	}
	qvm_detach(vm);
	return vmm_end_run(vm);
}

static int qemu_destroy(struct vmm_inst *vm, struct err *e)
{
	char shm[PATH_MAX], disk[PATH_MAX], img[PATH_MAX];
	bool had_disk = rootdisk_read(vm->dir, disk, sizeof(disk)) == 0;
	qvm_detach(vm);
	shm_path_of(vm, shm, sizeof(shm));
	unlink(shm);
	int r = vmm_remove_files(vm, e);
	if (r == 0 && had_disk) /* its image's old disks may have waited for this VM */
		vmm_root_disks_gc(image_name(vm, img, sizeof(img)), false);
	return r;
}

/* A VM an earlier daemon started: the same QEMU (pid, start time and comm
 * checked, then pinned by a pidfd), reached again through the channels it
 * listens on in the state dir: QMP greets the new connection, the agent
 * answers a resync (its exec sessions end, jobs wait to be attached). */
static int qemu_adopt(struct vmm_inst *vm, struct err *e)
{
	host_facts();
	int fd = vmm_pin_pid(vm, "qemu-system", e);
	if (fd < 0)
		return fd;
	struct qemu_vm *q = vm->priv = qvm_new();
	int nsv[2] = {-1, -1}, r;
	if (!q) {
		close(fd);
		return err_set(e, -ENOMEM, "out of memory");
	}
	vm->pidfd = fd;
	q->pidfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (!vm->cg.leaf[0])
		snprintf(vm->cg.leaf, sizeof(vm->cg.leaf), "%s-%s", vmm_host()->tag, vm->name);
	if ((r = load_run_facts(vm, q, e)) < 0 || (r = channel_connect(vm, QMP_SOCK, e)) < 0)
		goto fail;
	q->qmp.fd = r;
	if ((r = qmp_handshake(&q->qmp, QMP_TIMEOUT_MS, e)) < 0 ||
	    (r = channel_connect(vm, AGENT_SOCK, e)) < 0)
		goto fail;
	q->agent_fd = r;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, nsv) < 0) {
		r = err_set(e, -errno, "socketpair: %s", strerror(errno));
		goto fail;
	}
	q->note_wr = nsv[1];
	vm->ctl_fd = nsv[0];
	/* A VM its user paused, or one a daemon that died in a fork's checkpoint
	 * left frozen: its vCPUs run for the agent's resync (its answer, some ms),
	 * then stop again; the engine resumes the one that was running (thaw). */
	json_t *st = NULL;
	if ((r = qmp_cmd(&q->qmp, "query-status", NULL, &st, QMP_TIMEOUT_MS, e)) < 0)
		goto fail;
	bool stopped = !json_is_true(json_object_get(st, "running"));
	json_decref(st);
	if (stopped && (r = vcpus_run(q, true, e)) < 0)
		goto fail;
	unsigned char rnd[8];
	char nonce[17];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = err_set(e, -EIO, "getrandom: %s", strerror(errno));
		goto fail;
	}
	hex(rnd, sizeof(rnd), nonce);
	if ((r = qagent_send_synced(q, AG_RESYNC, nonce)) < 0) {
		err_set(e, r, "cannot reach the guest agent: %s", strerror(-r));
		goto fail;
	}
	if ((r = qagent_wait_answer(q, "resync", nonce, QMP_TIMEOUT_MS, e)) < 0 ||
	    (stopped && (r = vcpus_run(q, false, e)) < 0) || (r = qagent_start_reader(q, e)) < 0)
		goto fail;
	return 0;
fail:
	/* Not reachable: the VM is stopped, not left running unmanaged. */
	log_warn("sandbox %s: cannot re-adopt its VM (%s); stopping it", vm->name, e ? e->msg : "");
	vmm_pidfd_signal(fd, SIGKILL);
	vmm_pidfd_wait(fd, 5000);
	waitid(P_PIDFD, (id_t)fd, NULL, WEXITED | WNOHANG);
	qvm_detach(vm);
	char shm[PATH_MAX];
	shm_path_of(vm, shm, sizeof(shm));
	unlink(shm);
	channels_remove(vm);
	close(vm->pidfd);
	vm->pidfd = -1;
	if (vm->ctl_fd >= 0)
		close(vm->ctl_fd);
	vm->ctl_fd = -1;
	return r < 0 ? r : -EIO;
}

static int qemu_job_attach(struct vmm_inst *vm, uint64_t id, int out_fd, int err_fd,
			   uint64_t out_off, uint64_t err_off, struct err *e)
{
	struct qemu_vm *q = vm->priv;
	if (!q)
		return err_set(e, -ENOTCONN, "no connection to this sandbox's guest agent");
	return qagent_attach(q, id, out_fd, err_fd, out_off, err_off, e);
}

static int qemu_usage(struct vmm_inst *vm, struct vmm_usage *u) { return cg_usage(&vm->cg, u); }

static int qemu_exec(struct vmm_inst *vm, uint64_t id, const char *cmd,
		     const struct vmm_run_opts *o, int out_fd, struct err *e)
{
	struct qemu_vm *q = vm->priv;
	if (!q)
		return err_set(e, -ENOTCONN, "no connection to this sandbox's guest agent");
	struct qagent_opts qo = {.user = o ? o->user : NULL};
	return qagent_exec(q, id, cmd, &qo, &out_fd, 1, e);
}

static int qemu_job(struct vmm_inst *vm, uint64_t id, const char *cmd,
		    const struct vmm_run_opts *o, const int fds[3], int keep_fd, struct err *e)
{
	struct qemu_vm *q = vm->priv;
	if (!q)
		return err_set(e, -ENOTCONN, "no connection to this sandbox's guest agent");
	struct qagent_opts qo = {.user = o ? o->user : NULL, .cols = o ? o->tty_cols : 0,
				 .rows = o ? o->tty_rows : 0};
	return qagent_exec(q, id, cmd, &qo, fds, 3, e);
}

static int qemu_tty_ctl(struct vmm_inst *vm, uint64_t id, unsigned cols, unsigned rows,
			struct err *e)
{
	struct qemu_vm *q = vm->priv;
	if (!q)
		return err_set(e, -ENOTCONN, "no connection to this sandbox's guest agent");
	return qagent_tty(q, id, cols, rows, e);
}

static int qemu_exec_kill(struct vmm_inst *vm, uint64_t id, int sig)
{
	struct qemu_vm *q = vm->priv;
	if (!q)
		return -ENOTCONN;
	char p[16];
	int n = snprintf(p, sizeof(p), "%d", sig);
	return qagent_send(q, AG_KILL, id, p, (uint32_t)n);
}

/* files through the agent: each request pins its VM's state (a stop
 * ends the reader thread, which fails the request, and frees the rest only
 * once the request lets go). */
struct vmm_file {
	struct qemu_vm *q;
	struct qemu_file *f;
};

static int qemu_file_open(struct vmm_inst *vm, const struct vmm_file_req *r,
			  struct vmm_file **out, struct err *e)
{
	struct vmm_file *v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(e, -ENOMEM, "out of memory");
	v->q = qvm_get(vm);
	int ret = v->q ? qagent_file_open(v->q, r, &v->f, e)
		       : err_set(e, -EBUSY, "sandbox %s stopped: files moves a running one's files",
				 vm->name);
	if (ret < 0) {
		if (v->q)
			qvm_put(v->q);
		free(v);
		return ret;
	}
	*out = v;
	return 0;
}

static int qemu_file_write(struct vmm_file *v, const char *buf, size_t len, size_t *took,
			   unsigned *wait_ms, struct err *e)
{
	return qagent_file_write(v->q, v->f, buf, len, took, wait_ms, e);
}

static int qemu_file_answer_try(struct vmm_file *v, struct buf *answer, unsigned *wait_ms,
				struct err *e)
{
	return qagent_file_answer_try(v->q, v->f, answer, wait_ms, e);
}

static ssize_t qemu_file_read_try(struct vmm_file *v, char *buf, size_t size, unsigned *wait_ms,
				  struct err *e)
{
	return qagent_file_read_try(v->q, v->f, buf, size, wait_ms, e);
}

static bool qemu_file_readable(struct vmm_file *v)
{
	return qagent_file_readable(v->q, v->f);
}

static void qemu_file_close(struct vmm_file *v)
{
	qagent_file_close(v->q, v->f);
	qvm_put(v->q);
	free(v);
}

static const struct vmm_files_ops qemu_files_ops = {
	.open = qemu_file_open, .write = qemu_file_write, .answer_try = qemu_file_answer_try,
	.read_try = qemu_file_read_try, .readable = qemu_file_readable, .close = qemu_file_close,
};

/* The reader thread's reports: "E<id> <exit code>"; EOF when it ended. */
static int qemu_event(struct vmm_inst *vm, struct vmm_event *ev)
{
	return vmm_read_event(vm->ctl_fd, ev);
}

static int qemu_describe(struct buf *b)
{
	host_facts();
	return buf_printf(b, "qemu_accel %s\nqemu_accel_reason %s\n", hf.kvm ? "kvm" : "tcg",
			  hf.accel_why);
}

/* A warm pool's member claimed by a create (vmm_ops.rename): the guest
 * takes name as hostname, the clock and a reseed of its RNG (AG_FORK's
 * "resume": the member was booted fresh and has run nothing of anyone's, so
 * it keeps its boot_id, machine-id and network identity, and has no jobs or
 * files requests for the agent to end). Nothing waits for the agent's
 * answer, which the reader thread drops with any hello: the agent handles
 * frames in order, so every command sent after this one runs under the new
 * name. The guest RAM file, named after the sandbox, follows it (QEMU keeps
 * its mapping), and the run facts say where it is now. */
static int qemu_rename(struct vmm_inst *vm, const char *name, struct err *e)
{
	struct qemu_vm *q = qvm_get(vm);
	char nonce[17], payload[FORK_PAYLOAD_MAX], shm[PATH_MAX];
	int r = 0;
	if (!q)
		return err_set(e, -ESRCH, "the VM of %s does not run", vm->name);
	if (q->agent_version < AGENT_VERSION_RESUME) {
		r = err_set(e, -EOPNOTSUPP, "the guest agent of %s (version %d) cannot take a new "
			    "name while it runs (version %d can)", vm->name, q->agent_version,
			    AGENT_VERSION_RESUME);
		goto out;
	}
	vmm_ram_path(name, shm, sizeof(shm));
	bool move = q->shm_path[0] && strcmp(q->shm_path, shm) != 0;
	if (move && rename(q->shm_path, shm) < 0) {
		r = err_set(e, -errno, "cannot rename %s to %s: %s", q->shm_path, shm, strerror(errno));
		goto out;
	}
	if ((r = fork_payload(vm, q, name, "resume", nonce, payload, e)) == 0 &&
	    (r = qagent_send(q, AG_FORK, 0, payload, (uint32_t)strlen(payload))) < 0)
		qagent_send_err(q, r, "the new name", e);
	if (r < 0 && move && rename(shm, q->shm_path) == 0)
		move = false; /* back where it was */
	if (move) {
		if (strcmp(q->ram_path, q->shm_path) == 0)
			snprintf(q->ram_path, sizeof(q->ram_path), "%s", shm);
		snprintf(q->shm_path, sizeof(q->shm_path), "%s", shm);
	}
	if (r == 0)
		snprintf(vm->name, sizeof(vm->name), "%s", name);
	if (move || r == 0)
		save_run_facts(vm, q); /* vm->dir is the new name's already (the engine's) */
out:
	qvm_put(q);
	return r;
}

const struct vmm_ops vmm_qemu_ops = {
	.name = "qemu",
	.caps = VMM_CAP_NET | VMM_CAP_NET_TAP | VMM_CAP_RUN_USER,
	.fork_mode = "live",
	.create = qemu_create,
	.start = qemu_start,
	.stop = qemu_stop,
	.kill = qemu_kill,
	.freeze = qemu_freeze,
	.thaw = qemu_thaw,
	.checkpoint = qemu_checkpoint,
	.standby = qemu_standby,
	.reap = qemu_reap,
	.destroy = qemu_destroy,
	.adopt = qemu_adopt,
	.usage = qemu_usage,
	.exec = qemu_exec,
	.exec_kill = qemu_exec_kill,
	.job = qemu_job,
	.job_attach = qemu_job_attach,
	.tty_ctl = qemu_tty_ctl,
	.event = qemu_event,
	.describe = qemu_describe,
	.show = qemu_show,
	.rename = qemu_rename,
	.files = &qemu_files_ops,
};
