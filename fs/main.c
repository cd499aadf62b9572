/* The sandboxfs daemon: options, mount (refusing a live sandboxfs, clearing
 * a dead one), the multi-threaded FUSE loop, and an orderly exit. */
#define _GNU_SOURCE
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "../engine/ctl.h"
#include "../vmm/vmm.h"
#include "fsx.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sandboxfs [-f] [-v] [--state DIR] [--images DIR] [--allow-other]\n"
		"                 [--group NAME] [--stop-on-exit] [--workers N] [--max-sandboxes N]\n"
		"                 [--bridge NAME] [--subnet CIDR] [--no-net] [--nat]\n"
		"                 [--egress allow|deny] [--dns IP[:PORT]] [--disk SIZE] [--max-jobs N]\n"
		"                 [--backend ns|qemu] [--accel auto|kvm|tcg] [--qemu-spares N]\n"
		"                 [--fuse-threads N]\n"
		"                 MOUNTPOINT\n"
		"  -f               stay in the foreground (log to stderr)\n"
		"  -v               debug logging\n"
		"  --state DIR      journal and sandbox files (default /var/lib/sandboxfs)\n"
		"  --images DIR     image directories (default STATE/images)\n"
		"  --allow-other    let other users see the mount (they still need --group)\n"
		"  --group NAME     members of NAME may create, control and read sandboxes\n"
		"  --max-sandboxes N  refuse (ENOSPC) to create past N sandboxes\n"
		"  --disk SIZE      disk= of an ns sandbox whose create names none (or\n"
		"                   $SANDBOXFS_DISK; default none: no disk limit)\n"
		"  --max-jobs N     jobs one sandbox may keep, running or finished (default 256)\n"
		"  --bridge NAME    the sandboxes' bridge (default sbx0; made if missing)\n"
		"  --subnet CIDR    their addresses (default 10.88.0.0/16; gateway .1)\n"
		"  --no-net         no networking: sandboxes have only lo\n"
		"  --nat            egress NAT for the subnet (nft or iptables; off by default)\n"
		"  --egress allow|deny  what a sandbox may reach outside the subnet and the host\n"
		"                   unless its rules say otherwise (default allow)\n"
		"  --dns IP[:PORT]  answer sandboxes' DNS on the gateway's port 53, relayed to\n"
		"                   this upstream (default port 53); rules may then name\n"
		"                   domains (default: off)\n"
		"  --backend ns|qemu  the backend of mkdir and of create without backend=\n"
		"  --accel auto|kvm|tcg  qemu's accelerator (default auto, or $SANDBOXFS_ACCEL):\n"
		"                   auto uses KVM when a test guest runs on /dev/kvm, else TCG;\n"
		"                   kvm refuses to start where KVM cannot run guests\n"
		"  --qemu-spares N  QEMUs a qemu sandbox keeps started ahead, waiting, after\n"
		"                   a fork, so that its next fork's children pay only the\n"
		"                   restore: as many as that fork had children, at most N\n"
		"                   (0 to 32, default 1; 0: none)\n"
		"  --stop-on-exit   stop every sandbox when the daemon exits (default: leave them)\n"
		"  --workers N      threads that create sandboxes (default 8)\n"
		"  --fuse-threads N  threads that answer FUSE requests, at most (default 64)\n");
}

/* Is `mnt` a sandboxfs mount? Returns 1 live, 2 dead (ENOTCONN), 0 not one. */
static int mount_state(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char line[4096];
	bool ours = false;
	while (fgets(line, sizeof(line), f)) {
		char dir[PATH_MAX], *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", dir) != 1)
			continue;
		if (strcmp(dir, mnt) == 0 && strncmp(sep + 3, "fuse.sandboxfs ", 15) == 0)
			ours = true;
	}
	fclose(f);
	if (!ours)
		return 0;
	/* statfs always reaches the daemon (stat may be answered from the attribute
	 * cache), so a dead connection shows as ENOTCONN at once. */
	struct statfs sf;
	if (statfs(mnt, &sf) < 0 && errno == ENOTCONN)
		return 2;
	return 1;
}

static int abs_path(const char *in, char *out, size_t cap)
{
	if (realpath(in, out))
		return 0;
	if (errno != ENOTCONN) /* a dead FUSE mount cannot be resolved; use the name as given */
		return -errno;
	char cwd[PATH_MAX];
	if (in[0] == '/')
		snprintf(out, cap, "%s", in);
	else if (getcwd(cwd, sizeof(cwd)))
		snprintf(out, cap, "%s/%s", cwd, in);
	else
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	/* Before anything opens or spawns: nothing inherited may reach a sandbox. */
	fd_protect_inherited();
	static const struct option longopts[] = {
		{"state", required_argument, NULL, 's'}, {"images", required_argument, NULL, 'i'},
		{"allow-other", no_argument, NULL, 'a'}, {"stop-on-exit", no_argument, NULL, 'x'},
		{"workers", required_argument, NULL, 'w'}, {"init", required_argument, NULL, 'I'},
		{"group", required_argument, NULL, 'g'}, {"max-sandboxes", required_argument, NULL, 'm'},
		{"bridge", required_argument, NULL, 'b'}, {"subnet", required_argument, NULL, 'n'},
		{"no-net", no_argument, NULL, 'N'}, {"nat", no_argument, NULL, 'T'},
		{"egress", required_argument, NULL, 'E'}, {"dns", required_argument, NULL, 'R'},
		{"disk", required_argument, NULL, 'D'}, {"max-jobs", required_argument, NULL, 'J'},
		{"backend", required_argument, NULL, 'B'}, {"accel", required_argument, NULL, 'A'},
		{"qemu-spares", required_argument, NULL, 'K'},
		{"fuse-threads", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct engine_opts o;
	memset(&o, 0, sizeof(o));
	bool foreground = false, allow_other = false;
	struct fsx_state fst; /* the session's userdata */
	memset(&fst, 0, sizeof(fst));
	int verbose = 0, c, fuse_threads = 64;
	const char *state = "/var/lib/sandboxfs", *images = NULL, *init = NULL;
	o.workers = 8;
	o.net = true;
	snprintf(o.bridge, sizeof(o.bridge), "sbx0");
	snprintf(o.subnet, sizeof(o.subnet), "10.88.0.0/16");
	snprintf(o.backend, sizeof(o.backend), "ns");
	const char *accel = getenv("SANDBOXFS_ACCEL");
	snprintf(o.accel, sizeof(o.accel), "%s", accel && *accel ? accel : "auto");
	const char *disk = getenv("SANDBOXFS_DISK");
	o.max_jobs = 256;
	o.qemu_spares = 1;
	while ((c = getopt_long(argc, argv, "fvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': foreground = true; break;
		case 'v': verbose++; break;
		case 's': state = optarg; break;
		case 'i': images = optarg; break;
		case 'a': allow_other = true; break;
		case 'x': o.stop_on_exit = true; break;
		case 'I': init = optarg; break;
		case 'w':
			o.workers = atoi(optarg);
			if (o.workers < 1 || o.workers > 256) {
				fprintf(stderr, "sandboxfs: --workers must be 1..256\n");
				return 2;
			}
			break;
		case 'F':
			fuse_threads = atoi(optarg);
			if (fuse_threads < 1 || fuse_threads > 1024) {
				fprintf(stderr, "sandboxfs: --fuse-threads must be 1..1024\n");
				return 2;
			}
			break;
		case 'g': {
			struct group *gr = getgrnam(optarg);
			if (!gr) {
				fprintf(stderr, "sandboxfs: --group %s: no such group\n", optarg);
				return 2;
			}
			fst.group_gid = gr->gr_gid;
			fst.group_set = true;
			break;
		}
		case 'm':
			o.max_sandboxes = strtoul(optarg, NULL, 10);
			if (o.max_sandboxes < 1) {
				fprintf(stderr, "sandboxfs: --max-sandboxes must be at least 1\n");
				return 2;
			}
			break;
		case 'b':
			if (strncmp(optarg, "sbx", 3) != 0 || strlen(optarg) >= sizeof(o.bridge)) {
				fprintf(stderr, "sandboxfs: --bridge must start with sbx and be at most 15 "
					"characters\n");
				return 2;
			}
			snprintf(o.bridge, sizeof(o.bridge), "%s", optarg);
			break;
		case 'n':
			if (strlen(optarg) >= sizeof(o.subnet)) {
				fprintf(stderr, "sandboxfs: --subnet %s is not a CIDR\n", optarg);
				return 2;
			}
			snprintf(o.subnet, sizeof(o.subnet), "%s", optarg);
			break;
		case 'N': o.net = false; break;
		case 'B':
			if (strcmp(optarg, "ns") && strcmp(optarg, "qemu")) {
				fprintf(stderr, "sandboxfs: --backend must be ns or qemu\n");
				return 2;
			}
			snprintf(o.backend, sizeof(o.backend), "%s", optarg);
			break;
		case 'T': o.nat = true; break;
		case 'E':
			if (strcmp(optarg, "allow") && strcmp(optarg, "deny")) {
				fprintf(stderr, "sandboxfs: --egress must be allow or deny\n");
				return 2;
			}
			o.egress_deny = strcmp(optarg, "deny") == 0;
			break;
		case 'R': {
			struct in_addr ip;
			uint16_t port;
			struct err pe = {0};
			if (engine_parse_dns(optarg, &ip, &port, &pe) < 0) {
				fprintf(stderr, "sandboxfs: %s\n", pe.msg);
				return 2;
			}
			snprintf(o.dns, sizeof(o.dns), "%s", optarg);
			break;
		}
		case 'A': snprintf(o.accel, sizeof(o.accel), "%s", optarg); break;
		case 'K': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (!*optarg || *end || n > VMM_QEMU_SPARES_MAX) {
				fprintf(stderr, "sandboxfs: --qemu-spares must be 0..%d\n",
					VMM_QEMU_SPARES_MAX);
				return 2;
			}
			o.qemu_spares = (unsigned)n;
			break;
		}
		case 'D': disk = optarg; break;
		case 'J': {
			unsigned long n = strtoul(optarg, NULL, 10);
			if (n < 1 || n > SBX_JOB_ID_MAX) {
				fprintf(stderr, "sandboxfs: --max-jobs must be 1..%u\n", SBX_JOB_ID_MAX);
				return 2;
			}
			o.max_jobs = (unsigned)n;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	struct err de = {0};
	if (disk && *disk && ctl_parse_disk(disk, &o.disk_bytes, &de) < 0) {
		fprintf(stderr, "sandboxfs: --disk: %s\n", de.msg);
		return 2;
	}
	if (fst.group_set && !allow_other) {
		fprintf(stderr, "sandboxfs: --group needs --allow-other (else only root sees the mount)\n");
		return 2;
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	log_init(verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO, false);
	if (geteuid() != 0) {
		fprintf(stderr, "sandboxfs: must run as root (namespaces, mounts, cgroups)\n");
		return 1;
	}
	char mnt[PATH_MAX], exe[PATH_MAX];
	if (abs_path(argv[optind], mnt, sizeof(mnt)) < 0) {
		fprintf(stderr, "sandboxfs: mountpoint %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	if (mkdir_p(state, 0755) < 0 || !realpath(state, o.state_dir)) {
		fprintf(stderr, "sandboxfs: state dir %s: %s\n", state, strerror(errno));
		return 1;
	}
	if (images) {
		if (!realpath(images, o.images_dir)) {
			fprintf(stderr, "sandboxfs: images dir %s: %s\n", images, strerror(errno));
			return 1;
		}
	} else
		snprintf(o.images_dir, sizeof(o.images_dir), "%s/images", o.state_dir);
	if (init) {
		if (!realpath(init, o.init_path)) {
			fprintf(stderr, "sandboxfs: init %s: %s\n", init, strerror(errno));
			return 1;
		}
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		snprintf(o.init_path, sizeof(o.init_path), "%s/sbx-init", dirname(exe));
	}

	struct err pe = {0};
	if (engine_probe(&o, &pe) < 0) {
		fprintf(stderr, "sandboxfs: %s\n", pe.msg);
		return 1;
	}

	int ms = mount_state(mnt);
	if (ms == 1) {
		fprintf(stderr, "sandboxfs: %s is already a live sandboxfs mount; unmount it first "
			"(fusermount3 -u %s)\n", mnt, mnt);
		return 1;
	}
	if (ms == 2) {
		log_info("clearing the stale sandboxfs mount on %s (its daemon is gone)", mnt);
		if (umount2(mnt, MNT_DETACH) < 0) {
			fprintf(stderr, "sandboxfs: cannot clear the stale mount on %s: %s\n", mnt,
				strerror(errno));
			return 1;
		}
	}

	/* SANDBOXFS_FUSE_DEBUG=1: libfuse logs every request (to count them). */
	const char *fdebug = getenv("SANDBOXFS_FUSE_DEBUG");
	char optstr[256];
	snprintf(optstr, sizeof(optstr), "fsname=sandboxfs,subtype=sandboxfs,default_permissions%s%s",
		 allow_other ? ",allow_other" : "", fdebug && *fdebug == '1' ? ",debug" : "");
	char *fargv[] = {argv[0], "-o", optstr, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se = fuse_session_new(&args, &fsx_ops, sizeof(fsx_ops), &fst);
	if (!se) {
		fprintf(stderr, "sandboxfs: cannot create the FUSE session\n");
		return 1;
	}
	int ret = 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, mnt) != 0) {
		fprintf(stderr, "sandboxfs: cannot mount on %s (is /dev/fuse there?)\n", mnt);
		goto out_signals;
	}
	if (!foreground)
		log_init(verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO, true);
	if (fuse_daemonize(foreground) != 0)
		goto out_unmount;
	clock_gettime(CLOCK_REALTIME, &fst.start_time); /* read by the loop's threads only */
	fsx_set_session(se);
	fst.eng = engine_new();
	if (!fst.eng) {
		log_err("cannot start: out of memory");
		goto out_unmount;
	}
	engine_set_watch(fst.eng, fsx_changed);
	engine_set_job_watch(fst.eng, fsx_job_changed);
	engine_set_files_watch(fst.eng, fsx_files_changed);
	struct err e = {0};
	if (engine_start(fst.eng, &o, &e) < 0) {
		log_err("cannot start: %s", e.msg);
		if (foreground)
			fprintf(stderr, "sandboxfs: %s\n", e.msg);
		goto out_unmount;
	}
	log_info("mounted on %s (state %s, images %s)", mnt, o.state_dir, o.images_dir);
	/* No read holds a thread (blocking reads and writes are parked and
	 * answered from the waiters' thread, commands run on threads of their
	 * own), so a small pool serves every request; what can still hold one
	 * is an rmdir or a mkdir (the kernel sends a directory's one at a time).
	 * Up to max_idle stay after a burst, so that steady use never creates and
	 * destroys threads (libfuse does that per request past max_idle). */
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg) {
		log_err("cannot configure the FUSE loop: out of memory");
		goto out_engine;
	}
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)fuse_threads);
	fuse_loop_cfg_set_idle_threads(cfg, fuse_threads < 16 ? (unsigned)fuse_threads : 16);
	int lr = fuse_session_loop_mt(se, cfg);
	/* libfuse returns the signal that ended the loop (and clears the exited
	 * flag): SIGTERM, SIGINT and SIGHUP are a clean exit. */
	ret = lr == 0 || lr == SIGTERM || lr == SIGINT || lr == SIGHUP ? 0 : 1;
	fuse_loop_cfg_destroy(cfg);
out_engine:
	fsx_shutdown(); /* parked reads are answered while the engine still runs */
	engine_shutdown(fst.eng);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	return ret;
}
