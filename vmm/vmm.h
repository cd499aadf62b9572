/* The backend interface: every sandbox backend (ns, later qemu) is one
 * struct vmm_ops table. The engine owns the sandbox object and calls these;
 * backends know nothing of FUSE or of the registry. */
#ifndef SBX_VMM_H
#define SBX_VMM_H

#include <limits.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdint.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../engine/common.h"
#include "cgroup.h"

#define VMM_LOWERS_MAX 8
#define VMM_LAYER_ID_MAX 40
/* An imported image's layers (images.c flattens the top ones of a longer
 * image at import); ids are sha256-HEX or merged-HEX. sbx-init stacks at
 * most 16 lowers (its MAX_LOWERS): fork layers and image layers together. */
#define VMM_IMAGE_LAYERS_MAX 8
#define VMM_IMAGE_LAYER_ID_MAX 72
#define VMM_USER_MAX 65 /* USER:GROUP, 32 bytes each */
_Static_assert(VMM_LOWERS_MAX + VMM_IMAGE_LAYERS_MAX <= 16, "more lowers than sbx-init stacks");

struct vmm_limits {
	uint64_t memory_bytes; /* 0: no limit */
	uint32_t pids;         /* 0: no limit */
	uint32_t cpu_millis;   /* 1000 = one cpu; 0: no limit */
	unsigned devices;      /* VMM_DEV_* beyond every sandbox's list (devices.h) */
	uint64_t disk_bytes;   /* the sandbox's own disk (disk.c); 0: none, no limit */
};

/* Devices a backend's own process needs opened inside the sandbox's cgroup. */
enum { VMM_DEV_KVM = 1u << 0 };

/* Per-sandbox backend state, embedded in the engine's struct sbx. */
struct vmm_inst {
	char name[SBX_NAME_MAX + 1];
	char dir[PATH_MAX];       /* the sandbox's state dir */
	char image_dir[PATH_MAX]; /* the image (lower layer) when it is a directory */
	struct vmm_limits lim;
	/* Layers between the upper dir and the image, nearest first (fork). */
	char lowers[VMM_LOWERS_MAX][VMM_LAYER_ID_MAX];
	int nlowers;
	/* An imported image: its layers in vmm_host()->image_layers_dir, top
	 * first, stacked instead of image_dir (0: image_dir). */
	char image_layers[VMM_IMAGE_LAYERS_MAX][VMM_IMAGE_LAYER_ID_MAX];
	int nimage_layers;
	/* Who commands and jobs run as: the image config's User (ctl_user_ok),
	 * "" for root. */
	char user[VMM_USER_MAX + 1];
	pid_t pid;           /* host pid of init, 0 when not running */
	uint64_t pid_start;  /* start time of pid (clock ticks), guards against pid reuse */
	int pidfd;           /* -1 when none */
	int ctl_fd;          /* socket to sbx-init, -1 when none */
	/* Set by a removal before its stop: what the end of the run would tear
	 * down and no one waits for may be left to destroy, which hands it to
	 * the trash (after the reply). */
	bool ending;
	/* An ns sandbox's mount namespace, held from an ending stop until the
	 * trash closes it: its root's unmount (an overlay's sync of the whole
	 * upper filesystem) runs there, not in init's exit. -1 when none. */
	int mntns_fd;
	struct cg cg;
	void *priv;
	/* Called by start between clone and go (the sandbox's namespaces exist,
	 * nothing runs in them yet): the engine wires the network here, into
	 * nic.netns_fd (by fd: init need not have joined it yet). A
	 * backend with VMM_CAP_NET_TAP calls it before it spawns anything, with pid 0,
	 * and the engine fills nic. */
	int (*prestart)(struct vmm_inst *vm, pid_t pid, void *arg, struct err *e);
	void *prestart_arg;
	/* The network device of a VMM_CAP_NET_TAP backend, for this start: the TAP's fd
	 * (the backend takes it, and closes it; -1: no network) and the
	 * identity the guest configures. */
	struct vmm_nic {
		int tap_fd;
		uint8_t mac[6];
		struct in_addr ip, gateway; /* network byte order */
		uint8_t prefix_len;
		struct in_addr dns; /* the daemon's DNS (the gateway), 0 when it offers none */
		/* A veth backend (ns), during prestart: the sandbox's network
		 * namespace (the backend's fds), and whether it holds a pair made
		 * ahead (the engine adopts it) or none (the engine makes one). */
		int netns_fd;
		bool netns_veth;
		int netns_sock; /* netns_veth: a route socket in it */
	} nic;
};

/* Phase timings of a start, filled by the backend. */
struct vmm_timing {
	uint64_t rootfs_usec;
	uint64_t cgroup_usec;
	uint64_t spawn_usec;
	uint64_t init_usec;
	uint64_t freeze_usec; /* checkpoint: the window the source was frozen */
	uint64_t copy_usec;   /* checkpoint: capturing its state */
	uint64_t restore_usec; /* start: restoring a saved machine (fork child, standby) */
	/* checkpoint, in: it serves a fork's children now (not a named snapshot),
	 * so a backend may hand it a process started ahead (qemu's spares). */
	bool fork;
	unsigned fork_children; /* with fork: how many children start from it */
	/* start, out: how a fork's child got its process: "ahead" (one started
	 * before the fork, waiting) or "cold"; NULL when the backend has no such choice. */
	const char *fork_start;
	/* Backend-specific phases, shown in stats as create_<key>_usec. */
	struct {
		const char *key;
		uint64_t usec;
	} extra[6];
	int nextra;
};

struct vmm_usage {
	uint64_t cpu_usec;
	uint64_t memory_bytes;
	uint64_t memory_peak_bytes;
	uint64_t pids;
	uint64_t oom_kills;
};

/* Something the sandbox's init told us, decoded by the backend. */
enum vmm_event_kind {
	VMM_EV_NONE, VMM_EV_EXEC_EXIT, VMM_EV_HANGUP, VMM_EV_EXEC_PID,
	VMM_EV_WARM_WANTED, /* the warm shell of an earlier daemon was killed: call warm again */
};
struct vmm_event {
	enum vmm_event_kind kind;
	uint64_t exec_id;
	int exit_code;
	int signal; /* EXEC_EXIT: the signal that ended it, 0 if it exited */
	/* EXEC_EXIT: the backend gave it up, no exit seen (qemu: its agent read
	 * nothing of its channel for the queue's deadline); the report says
	 * " lost" after the signal */
	bool lost;
	int pid;    /* EXEC_PID: its pid inside the sandbox */
	int tty;    /* EXEC_PID: a terminal's number there when the report says; -1 */
	/* EXEC_PID: 'e' (an exec) or 'j' (a job) that the backend's own warm
	 * shell took, where the guest picks it (qemu: once a command); 0 */
	char warm;
};

/* What a backend's sandboxes can have, beyond what every backend does; the
 * engine asks these, never the backend's name. */
enum {
	/* The engine wires it to the bridge: a veth whose peer goes into the
	 * sandbox's network namespace between clone and go (prestart), or with
	 * VMM_CAP_NET_TAP a TAP. */
	VMM_CAP_NET = 1u << 0,
	/* Its network device is a TAP the engine opens before start spawns
	 * anything (prestart with pid 0), handed over in vm->nic. */
	VMM_CAP_NET_TAP = 1u << 3,
	/* disk=: its files live on the host, under the sandbox's state dir. */
	VMM_CAP_DISK = 1u << 1,
	/* Its root filesystem is a host mount, seen at /proc/PID/root of init. */
	VMM_CAP_HOST_ROOT = 1u << 2,
	/* Its exec and job ops apply struct vmm_run_opts (cwd, env, user)
	 * themselves; without it the engine writes cwd= and env= into the
	 * shell line, and refuses user=. */
	VMM_CAP_RUN_OPTS = 1u << 4,
	/* Without VMM_CAP_RUN_OPTS: its exec and job ops still apply o->user
	 * (cwd and env are in the shell line; o has neither), or fail with
	 * EOPNOTSUPP and a sentence where the sandbox cannot (qemu: an older
	 * guest agent). */
	VMM_CAP_RUN_USER = 1u << 5,
	/* A started sandbox that runs nothing takes no CPU (ns: init and its
	 * warm shell sleep; a VM under TCG does not: its guest's ticks are
	 * emulated). A warm pool's fill sets such a member back to the usual
	 * priority as soon as it is made, so its claim has nothing to renice. */
	VMM_CAP_IDLE_FREE = 1u << 6,
};

/* How a command runs, beyond its shell line (exec and run's options):
 * NULL members are the defaults (cwd /, the image's User or root). env:
 * nenv NAME=VALUE strings added to (or replacing in) PATH, HOME and TERM. */
struct vmm_run_opts {
	const char *cwd;
	const char *user;
	const char *const *env;
	int nenv;
	/* A job's terminal that the sandbox makes itself (the backend has
	 * tty_ctl, not pty_open): its size; 0: no terminal. */
	unsigned tty_cols, tty_rows;
};

/* files (NAME/files) of a sandbox whose root is no host mount: a request
 * in flight (the backend's), what it asks (engine/ctl.h's ctl_files_req:
 * the verbs in its order), and the backend's ops for it. */
enum vmm_file_verb { VMM_FILE_GET, VMM_FILE_PUT, VMM_FILE_STAT, VMM_FILE_LIST, VMM_FILE_MKDIR };
#define VMM_FILES_LIST_MAX 100000 /* entries of one list */
struct vmm_file;
struct vmm_file_req {
	enum vmm_file_verb verb;
	unsigned mode;
	uint64_t size;     /* put */
	const char *path;  /* absolute, raw bytes */
	const char *shown; /* the path escaped, for sentences */
	/* The backend calls wake(wake_arg) when answer_try, read_try or write,
	 * having said -EAGAIN, may give more (an answer, bytes, room to send,
	 * the end, a failure, the sandbox stopped); from any thread, under the
	 * backend's own locks, until close. So wake only marks (waiters_kick)
	 * and never calls the backend. */
	void (*wake)(void *arg);
	void *wake_arg;
};
/* Nothing here waits for the sandbox (a FUSE request that would is parked
 * by the engine, never held on its thread): a write's answer and a get's
 * bytes are looked for (answer_try, read_try). */
struct vmm_files_ops {
	/* Starts r (without the sandbox's lock): sends it, never waiting for
	 * its answer nor for room to send it (then the first look sends it);
	 * answer_try says. */
	int (*open)(struct vmm_inst *vm, const struct vmm_file_req *r, struct vmm_file **out,
		    struct err *e);
	/* A put's next bytes (at most what is left of its size), handed to the
	 * sandbox as far as it takes them now, never waiting: *took of them
	 * went. 0 once all have; -EAGAIN when the rest waits for room, with
	 * *wait_ms the time left of the send's bound (a write after it fails
	 * with ETIMEDOUT and a sentence; wake comes first when there is room);
	 * or the failure. Once the last is in, answer_try says when the file
	 * is in place. */
	int (*write)(struct vmm_file *f, const char *buf, size_t len, size_t *took,
		     unsigned *wait_ms, struct err *e);
	/* What the request's write waits for, never waiting: 0 once it is there
	 * (stat, list: their whole answer, engine/files.c's lines, into
	 * answer; mkdir: done; get: its bytes come through read_try; put: the
	 * temporary made, and after its last bytes the file in place), its
	 * failure, or -EAGAIN with *wait_ms the time left before the request's
	 * deadline without progress (a look after it fails with ETIMEDOUT and a
	 * sentence); wake comes first when something does. */
	int (*answer_try)(struct vmm_file *f, struct buf *answer, unsigned *wait_ms,
			  struct err *e);
	/* A get's next bytes, never waiting: 0 at its end; -EAGAIN when none
	 * have come yet, with *wait_ms the time left before the request's
	 * deadline without progress (a try after it fails with ETIMEDOUT and a
	 * sentence); wake comes first when something does. The bytes waiting to
	 * be read are bounded (qemu: a window credited to the agent as they are
	 * taken). */
	ssize_t (*read_try)(struct vmm_file *f, char *buf, size_t size, unsigned *wait_ms,
			    struct err *e);
	/* Whether read_try gives something now (bytes, the end, a failure): poll. */
	bool (*readable)(struct vmm_file *f);
	/* Ends it; a put not complete leaves nothing. */
	void (*close)(struct vmm_file *f);
};

struct vmm_ops {
	const char *name;
	unsigned caps; /* VMM_CAP_* */
	/* What a fork's child gets: "live" (the source's running state) or "fs" (its files). */
	const char *fork_mode;
	/* Prepares the sandbox's files (first start only). */
	int (*create)(struct vmm_inst *vm, struct err *e);
	/* Spawns the sandbox and returns once its init reported ready. */
	int (*start)(struct vmm_inst *vm, struct vmm_timing *t, struct err *e);
	/* Asks init to end everything within timeout_sec, then kills. Returns when init is gone. */
	int (*stop)(struct vmm_inst *vm, int timeout_sec, struct err *e);
	int (*kill)(struct vmm_inst *vm, int sig, struct err *e);
	int (*freeze)(struct vmm_inst *vm, struct err *e);
	/* Captures the sandbox's files as an immutable layer in dest_dir (fork,
	 * snapshots); freezes it meanwhile unless it is already frozen. */
	int (*checkpoint)(struct vmm_inst *vm, const char *dest_dir, bool frozen,
			  struct vmm_timing *t, struct err *e);
	int (*thaw)(struct vmm_inst *vm, struct err *e);
	/* Saves the whole machine into the state dir and ends it (the next start
	 * restores it); NULL where the backend cannot. paused: it is paused now. */
	int (*standby)(struct vmm_inst *vm, bool paused, struct err *e);
	/* Collects init after its pidfd turned readable; releases per-run resources.
	 * Fills why when the end looks like a crash (the engine then marks the
	 * sandbox failed unless a stop was asked for). */
	int (*reap)(struct vmm_inst *vm, int *exit_code, struct err *why);
	/* Removes everything the sandbox owns on the host. Not running. */
	int (*destroy)(struct vmm_inst *vm, struct err *e);
	/* Takes over a sandbox started by an earlier daemon (pid, pid_start set). */
	int (*adopt)(struct vmm_inst *vm, struct err *e);
	int (*usage)(struct vmm_inst *vm, struct vmm_usage *u);
	/* Runs a shell command line inside; its stdout and stderr go to out_fd.
	 * o: with VMM_CAP_RUN_OPTS, how it runs (else NULL). */
	int (*exec)(struct vmm_inst *vm, uint64_t id, const char *cmd, const struct vmm_run_opts *o,
		    int out_fd, struct err *e);
	int (*exec_kill)(struct vmm_inst *vm, uint64_t id, int sig);
	/* A warm shell: one shell started ahead, as a command's would be
	 * without options, on fds (stdin, stdout, stderr, as job's), waiting
	 * for its line (one asked before is killed). Once it returned 0,
	 * exec_warm runs a line (no newline in it) in it as exec id (stderr in
	 * stdout, stdin /dev/null) or, with job, as job id on the three fds;
	 * when it is gone, as exec or job would on the last warm call's fds.
	 * NULL where the backend has none. */
	int (*warm)(struct vmm_inst *vm, const int fds[3], struct err *e);
	int (*exec_warm)(struct vmm_inst *vm, uint64_t id, const char *cmd, bool job,
			 struct err *e);
	/* A background job: like exec, with its own stdin, stdout and stderr fds;
	 * keep_fd (-1: none) is a terminal's master, which the sandbox's init
	 * holds while the job's terminal is open, so that a daemon that dies
	 * hangs nothing up (ns; see pty_find). */
	int (*job)(struct vmm_inst *vm, uint64_t id, const char *cmd, const struct vmm_run_opts *o,
		   const int fds[3], int keep_fd, struct err *e);
	/* A terminal for a job (run tty=): a pseudo-terminal pair made inside
	 * the sandbox, of cols x rows, its master nonblocking; *index is its
	 * number there (/dev/pts/N). NULL: the backend has no terminals. */
	int (*pty_open)(struct vmm_inst *vm, unsigned cols, unsigned rows, int *master,
			int *slave, int *index, struct err *e);
	/* After adopt: the master of terminal index that init holds for a job
	 * of an earlier daemon (keep_fd), or -ENOENT (init let it go: its job
	 * ended and everything it wrote was read). */
	int (*pty_find)(struct vmm_inst *vm, int index);
	/* Terminals that the sandbox makes and holds itself (qemu: in the guest;
	 * a job asks with o->tty_cols): job id's new size, or with cols 0 its
	 * terminal's end-of-file character, after the stdin written before the
	 * call. NULL where the backend has no such terminals. */
	int (*tty_ctl)(struct vmm_inst *vm, uint64_t id, unsigned cols, unsigned rows,
		       struct err *e);
	/* After adopt: a job of the earlier daemon whose output reaches the
	 * daemon (qemu); its files have out_off and err_off bytes. NULL when a
	 * job writes its files itself (ns). */
	int (*job_attach)(struct vmm_inst *vm, uint64_t id, int out_fd, int err_fd,
			  uint64_t out_off, uint64_t err_off, struct err *e);
	/* Reads one message from ctl_fd after it turned readable. */
	int (*event)(struct vmm_inst *vm, struct vmm_event *ev);
	/* Host-wide facts for /sbx/stats (`key value` lines), e.g. KVM or TCG. */
	int (*describe)(struct buf *b);
	/* The sandbox's own backend facts for its stats (`key value` lines); may be NULL. */
	int (*show)(struct vmm_inst *vm, struct buf *b);
	/* Gives a running sandbox a new name inside (its hostname) and in vm->name:
	 * a warm pool's member claimed by a create. NULL: the backend's sandboxes
	 * cannot be pooled. */
	int (*rename)(struct vmm_inst *vm, const char *name, struct err *e);
	/* files through the sandbox (qemu: its guest agent); NULL where the
	 * engine opens them itself (VMM_CAP_HOST_ROOT). */
	const struct vmm_files_ops *files;
};

/* Host-wide settings shared by the backends, set once at start-up. */
struct vmm_host {
	char init_path[PATH_MAX]; /* sbx-init binary */
	char tag[16];             /* distinguishes this daemon's cgroups from another's */
	char layers_dir[PATH_MAX]; /* immutable layers made by checkpoints */
	char disks_dir[PATH_MAX];  /* formatted disk images, one per size (disk.c) */
	char image_layers_dir[PATH_MAX]; /* imported images' layers (engine/images.c) */
	char vm_images_dir[PATH_MAX]; /* qemu: images' root disks (vmimage.c) */
	char spares_dir[PATH_MAX]; /* qemu: QEMUs started ahead for forks; "": none */
	char sandboxes_dir[PATH_MAX]; /* the sandboxes' state dirs (vm->dir), for the root disks' sweep */
	/* Whether an image of this name is known now (the engine's images);
	 * NULL: every image is. */
	bool (*image_exists)(void *arg, const char *name);
	void *image_arg; /* image_exists's first argument */
	/* A TAP for a QEMU started ahead (net/net.h's net_tap_ahead): its fd,
	 * or -errno; NULL: VMs with a network device get no spare. Called with
	 * image_arg. A sandbox's prestart makes it its own when it finds it in
	 * vm->nic.tap_fd. */
	int (*tap_ahead)(void *arg, struct err *e);
	/* A veth pair for a network namespace made ahead (net/net.h's
	 * net_veth_ahead) into netns_fd: 0 or -errno; NULL: none. Called with
	 * image_arg. A sandbox's prestart adopts it when vm->nic.netns_veth. */
	int (*veth_ahead)(void *arg, int netns_fd, struct err *e);
	unsigned qemu_spares;      /* how many a forked VM keeps waiting, at most (--qemu-spares) */
};

int vmm_host_init(const struct vmm_host *h, struct err *e);
/* The settings alone, without vmm_host_init's probes of the host (the
 * engine's unit tests). */
void vmm_host_set(const struct vmm_host *h);
const struct vmm_host *vmm_host(void);
const struct vmm_ops *vmm_find(const char *name);
/* Every backend compiled in, for /sbx/stats; NULL-terminated. */
const struct vmm_ops *const *vmm_all(void);
void vmm_inst_init(struct vmm_inst *vm);

extern const struct vmm_ops vmm_ns_ops;
/* Opens path inside the root of the running sandbox vm's init (ns, whose
 * root is a host mount: VMM_CAP_HOST_ROOT) with openat2's RESOLVE_IN_ROOT
 * and RESOLVE_NO_MAGICLINKS: its symlinks, `..` and mounts cannot lead
 * out, /proc's magic links are refused. flags, mode: open(2)'s. Returns
 * the fd, or -errno with a sentence (-ESRCH: init is gone). */
int vmm_root_open(const struct vmm_inst *vm, const char *path, int flags, mode_t mode,
		  struct err *e);
/* The ns backend's pty_open (pty.c): from the devpts of init's root. */
int vmm_pty_open(struct vmm_inst *vm, unsigned cols, unsigned rows, int *master, int *slave,
		 int *index, struct err *e);
int vmm_pty_find(struct vmm_inst *vm, int index);
/* Starts the ns backend's host probes (CRIU) in the background. */
void vmm_ns_probe(void);
/* A new network namespace made ahead (netns.c), as an fd the caller owns,
 * or -1 when none is ready: then clone3 makes one. with_veth: one holding
 * a pair made by vmm_host's veth_ahead (eth0 inside, the host end outside),
 * with a route socket opened in it into *sock (the caller's too). The
 * create calls vmm_netns_done when it is over: refills wait for it. */
int vmm_netns_take(bool with_veth, int *sock);
void vmm_netns_done(void);
extern const struct vmm_ops vmm_qemu_ops;
/* The qemu backend's accelerator, chosen once at start-up before any thread
 * runs: "auto" (KVM when a test guest runs on /dev/kvm, else TCG), "kvm"
 * (fails with a sentence when KVM cannot run guests) or "tcg". The choice
 * and its reason show in /sbx/stats (qemu_accel, qemu_accel_reason: one word
 * of probe_ran no_device probe_failed probe_timeout asked_tcg) and the
 * reason's sentence in the log. */
int vmm_qemu_accel_init(const char *mode, struct err *e);
/* The qemu backend's spares (QEMUs started ahead, waiting for a fork):
 * at start-up, those a dead daemon left are killed and their files removed;
 * at exit, every spare is; when a layer goes, the spare that maps its RAM. */
#define VMM_QEMU_SPARES_MAX 32 /* --qemu-spares */
void vmm_qemu_spares_sweep(void);
void vmm_qemu_spares_end(void);
void vmm_qemu_spares_drop_layer(const char *dir);

struct clone_args;
/* Reserves vmm_spawn_exec's low fds (done by vmm_host_init; again: nothing). */
void vmm_spawn_init(void);
/* clone3 (CLONE_VM|CLONE_VFORK on x86-64) running fn in the child, which must
 * exec or return an exit code. Returns the pid or -errno. */
pid_t vmm_spawn(struct clone_args *ca, int (*fn)(void *), void *arg);

/* A program a backend spawns and its whole fd table: fds[i] becomes fd i
 * (stdin, stdout, stderr, then the backend's own), everything above is
 * closed, every signal unblocked, the environment empty. An entry whose
 * source is its own number stays (its close-on-exec cleared); no source may
 * be the number of an earlier entry (fds are set in order). */
#define VMM_EXEC_FDS 8
struct vmm_exec {
	const char *path;
	char *const *argv;
	int fds[VMM_EXEC_FDS];
	int nfds;
};
/* vmm_spawn of x: returns the pid or -errno. */
pid_t vmm_spawn_exec(struct clone_args *ca, const struct vmm_exec *x);

/* The walker over sandbox trees (copy.c): iterative, fd-relative, never
 * following a link nor leaving the source's filesystem. A copy or merge
 * stops with EFBIG and a sentence past these bounds (removal has none). */
#define VMM_WALK_MAX_DEPTH 100000
#define VMM_WALK_MAX_ENTRIES 4000000
/* Makes dst (which must not exist) a copy of the tree src: holes, hard links,
 * owners, modes, times, xattrs (overlay whiteouts, opaque dirs), device nodes
 * and FIFOs kept. Measures src first (blocks in use, a hard-linked inode
 * once) and fails with ENOSPC and "WHAT needs N MB on DIR, M MB free" when
 * dst's filesystem lacks the room, or when src holds more than max_bytes
 * (a sandbox's disk=; 0: no bound); on any failure nothing of dst is left. */
int vmm_copy_tree(const char *src, const char *dst, const char *what, uint64_t max_bytes,
		  struct err *e);
/* Applies layer src over dst (the merge of the layers under it) as overlayfs
 * would show them: flattening a chain of layers into one. Same walk and room
 * check as vmm_copy_tree; on failure dst is half-merged (the caller's to remove). */
int vmm_merge_layer(const char *src, const char *dst, struct err *e);
/* What a tree is now, to tell that it changed: entries, bytes in use and the
 * newest ctime (ns) of any entry, by the same walk (no link followed, one
 * filesystem, bounded). */
struct vmm_tree_stamp {
	uint64_t entries, bytes, newest_ctime_nsec;
};
int vmm_tree_stamp(const char *path, struct vmm_tree_stamp *out, struct err *e);
/* Copies a file's data extents only (guest RAM images), once the room for
 * its blocks is checked; dst must not exist, unless into: then dst is an
 * existing file, all holes (a spare's RAM file), written in place. */
int vmm_copy_sparse(const char *src, const char *dst, bool into, struct err *e);
/* Removes path and everything under it, fd-relative (no PATH_MAX limit, no
 * recursion), never leaving its filesystem; 0 when it is not there. */
int vmm_remove_tree(const char *path);
/* A guest RAM file, named after its owner: a running VM (its sandbox's name,
 * or a pool member's hidden one) or a VM checkpoint layer (its id):
 * /dev/shm/sandboxfs-TAG-NAME.ram. */
void vmm_ram_path(const char *name, char *out, size_t cap);
/* Sets the nice value of every thread of process pid (setpriority takes one
 * thread on Linux; a QEMU runs its vCPUs on threads of their own). */
int vmm_renice(pid_t pid, int nice);
/* Removes a layer's RAM file (by its name, never by what the layer says),
 * then hands the dir to the trash. */
int vmm_remove_layer(const char *dir);

/* Reads one report ("E<id> <code> [<signal>]", "P<id> <pid>", "w")
 * from a backend's event socket; EOF or an error is VMM_EV_HANGUP. */
int vmm_read_event(int fd, struct vmm_event *ev);

/* For reap: the exit code of the process behind vm->pidfd (128+signal when
 * killed; -1 when it is not our child), and si for the details. */
int vmm_wait_exit(struct vmm_inst *vm, siginfo_t *si);
/* A signal to the process behind pidfd (0 or -errno). */
int vmm_pidfd_signal(int pidfd, int sig);
/* Waits up to timeout_ms for the process behind pidfd to exit: poll's
 * answer (1 exited, 0 not yet, -1 an error). */
int vmm_pidfd_wait(int pidfd, int timeout_ms);
/* For reap: closes the run's pidfd and socket (and the mount namespace it
 * held, unless the run is ending: destroy hands that to the trash), forgets
 * the pid, removes the cgroup. */
int vmm_end_run(struct vmm_inst *vm);
/* A removal that failed: the run is not ending after all; what it held for
 * destroy is let go here. */
void vmm_ending_cancel(struct vmm_inst *vm);
/* A fd of process pid (a sandbox's init: how a restarted daemon finds what
 * init kept for it): each entry of /proc/PID/fd is stat'ed (the link is
 * followed to its inode, nothing is opened) and given to take with its path
 * and number, until take returns something other than -ENOENT (an fd of
 * ours, or an error), which is returned; -ENOENT when none did. */
int vmm_proc_fd_find(pid_t pid, int (*take)(const char *path, int num, const struct stat *st,
					      void *arg),
		     void *arg);

/* A sandbox's own disk (disk.c), when lim.disk_bytes is set: an ext4 image
 * in its state dir on a loop device, mounted at DIR/disk, with DIR/upper,
 * work, jobs and console.log links into it. mount makes the image the
 * first time (a copy of a formatted template) and is a no-op when mounted.
 * The trash unmounts it (vmm_trash); the loop device clears itself with its
 * last user. */
int vmm_disk_mount(struct vmm_inst *vm, struct err *e);
/* Runs the first of tools that exists (a path, or a name looked up in a
 * fixed PATH) with argv, its stdin and stdout /dev/null: 0; -ENOENT and
 * "cannot run ARGV0 (PKG), which WHAT needs" when none does; -EIO and the
 * last line it wrote to stderr when it fails. */
int vmm_run_tool(const char *const *tools, size_t ntools, char *const argv[], const char *pkg,
		 const char *what, struct err *e);
/* The same, bounded: past timeout_usec (0: none), or once *cancel is set, the
 * tool is killed (SIGKILL) and the answer is -ETIMEDOUT or -ECANCELED with a
 * sentence. env: more NAME=VALUE for its environment (at most 13,
 * NULL-terminated); tick(arg) runs every quarter second while it runs
 * (progress); reason rewrites the last stderr line (its end kept however
 * much it writes) before it goes into the sentence. */
struct vmm_tool_opts {
	uint64_t timeout_usec;
	const atomic_bool *cancel;
	const char *const *env;
	void (*tick)(void *arg);
	void *arg;
	void (*reason)(char *line, size_t cap);
};
int vmm_run_tool_opts(const char *const *tools, size_t ntools, char *const argv[],
		      const char *pkg, const char *what, const struct vmm_tool_opts *o,
		      struct err *e);
/* A qemu VM's root disk (vmimage.c): the image's files as a read-only erofs
 * file in vmm_host()->vm_images_dir, named by what the image is (an imported
 * image's layer ids; a directory image's newest change, size and entries), made
 * now when missing (mkfs.erofs, seconds: call it off the FUSE path) and kept
 * for the next VM. out: its path; *made_usec: the time a build took (0: cached). */
int vmm_root_disk(const struct vmm_inst *vm, char *out, size_t cap, uint64_t *made_usec,
		  struct err *e);
/* Held (shared) from vmm_root_disk until the VM's rootdisk file names the
 * disk, so that the sweep cannot remove it in between. */
void vmm_root_disk_hold(void);
void vmm_root_disk_release(void);
/* A root disk in the cache, as the sweep sees it. */
struct vmm_disk_entry {
	char name[256];      /* IMAGE-KEY.erofs */
	int64_t mtime_nsec;  /* made, or last chosen by a start */
	bool in_use;         /* a rootdisk file (a VM's, spare's or saved machine's) names it */
	bool image_exists;
	bool remove;         /* the answer */
};
/* The decision, pure: a disk goes when its name is a root disk's, nothing
 * uses it, and its image is gone or a newer disk of the same image is
 * listed (the image changed); one of the image's own newest is kept. */
void vmm_root_disks_decide(struct vmm_disk_entry *d, size_t n);
/* Removes the disks that can no longer be used (only image's when not
 * NULL): the number removed, or -errno when what uses them could not be
 * read (then none is). With wait, it waits for the starts between their
 * choice and its record (a build: seconds); without, it does nothing while
 * there is one (a FUSE thread's rmdir). */
int vmm_root_disks_gc(const char *image, bool wait);
struct vmm_disk_usage {
	uint64_t size_bytes, used_bytes, free_bytes; /* free: what the sandbox may still use */
	uint64_t inodes, free_inodes;
};
/* -ENOENT when the sandbox has no disk mounted. */
int vmm_disk_usage(const struct vmm_inst *vm, struct vmm_disk_usage *u);
/* The real path of the upper dir (on the disk when there is one). */
int vmm_disk_upper(const struct vmm_inst *vm, char *out, size_t cap);

/* For destroy: removes the cgroup (its processes are gone), then hands the
 * state dir to the trash with the mount namespace held for it (both
 * released there, after the return: the namespace first, then the disk is
 * unmounted and the files removed). */
int vmm_remove_files(struct vmm_inst *vm, struct err *e);

/* The removal backlog (trash.c): STATE/trash, its entries removed by one
 * background thread; what a dead daemon left there goes first. */
int vmm_trash_start(const char *dir, struct err *e);
/* Daemon exit: the backlog is removed (bounded tries) before it returns. */
void vmm_trash_stop(void);
/* Renames path into the trash (its name is free on return) for the thread
 * to unmount what is mounted under it and remove it; without a trash (or
 * across filesystems) it is all done here. 0 when path is not there. */
int vmm_trash(const char *path, struct err *e);
/* vmm_trash, and the thread closes held_fd (-1: none; a namespace whose
 * last reference unmounts what is under path) before it removes path. The
 * fd is the trash's whatever the answer: closed here when there is none. */
int vmm_trash_held(const char *path, int held_fd, struct err *e);
/* Entries renamed into the trash and not removed yet (/sbx/stats). */
uint64_t vmm_trash_pending(void);

/* For adopt: a pidfd for vm->pid if it is still the process an earlier
 * daemon started (same start time, comm beginning with comm), else -ESRCH. */
int vmm_pin_pid(const struct vmm_inst *vm, const char *comm, struct err *e);

/* Start time of a pid in clock ticks since boot (field 22 of /proc/PID/stat); 0 if gone. */
uint64_t vmm_pid_start(pid_t pid);

#endif
