#!/usr/bin/env bash
# `make fresh` (issue 13): the honest test of the README's two-command promise.
#
#   "On a fresh Debian 12 machine, as root: make demo, then make check"
#
# 1. Builds a minimal Debian 12 root with Debian's mmdebstrap:
#    `--variant=minbase` (the Essential and priority "required" packages and apt:
#    what every Debian system has, the debian:12 container image's set; the
#    `apt` variant lacks even `mount`) plus ca-certificates, git and make, the
#    least a user who followed the README has (make to type the two commands, git
#    and ca-certificates to clone the repository). This is deliberately leaner than
#    a Debian installer's system (which also has the priority "important" packages:
#    iproute2, procps, kmod, netbase, nftables...), so anything sandboxfs needs
#    must come from examples/install-deps.sh. FRESH_VARIANT=important builds that
#    fuller root instead (FRESH_VARIANT=apt the leaner one). The root also gets
#    what any machine has that an image does not: /etc/hosts, /etc/hostname, a
#    resolv.conf; apt in it uses the host's apt sources (/etc/apt/sources.list
#    and sources.list.d/*.list, *.sources) and the host's apt proxy and
#    Check-Valid-Until/Check-Date settings, if any (to reach the same archive).
# 2. Clones the repository into /root/sandboxfs of the root (`git clone` of the
#    committed HEAD: uncommitted changes and untracked files are NOT included;
#    the script says so when there are some). FRESH_WORKTREE=1 adds them to the
#    clone (`git diff HEAD` applied, untracked files that .gitignore does not
#    ignore copied), to try changes before they are committed.
# 3. Enters the root in private namespaces (mount, pid, network, uts, ipc,
#    cgroup; pivot_root) as a machine of its own: a fresh /proc and /sys (this
#    network namespace's devices), the host's /dev (so /dev/fuse, /dev/net/tun,
#    /dev/kvm when there is one) with a private /dev/shm and /dev/pts, a tmpfs
#    /run, and the host's cgroup hierarchies (every v1 controller and the v2
#    mount, as the host has them under /sys/fs/cgroup) rooted at a cgroup made
#    for this run in each hierarchy, so the root's sandboxes cannot collide with
#    the host's (same state dir, same cgroup names) and everything it makes is
#    removed with it. Networking: a private network namespace reaching the
#    outside through slirp4netns (user-mode NAT: no host interface, route or
#    firewall rule is made), so the root's bridge `sbx0` and its 10.88.0.0/16
#    never meet the host's; FRESH_NET=host shares the host's network namespace
#    instead (then the root's daemons and the host's can clash on `sbx0`).
# 4. Runs `make demo` then `make check` in /root/sandboxfs (as root, with a
#    clean environment: PATH, HOME, TERM, LANG only), prints both exit statuses
#    and the last line of `make check`, and exits non-zero if either failed.
#
# Everything it makes is removed at the end, also on failure or interrupt: the
# namespaces' processes (all in its pid namespace, killed with it), every mount
# (all in its private mount namespace), slirp4netns, the cgroups, and the root
# (KEEP=1 keeps the root, to look into it: chroot DIR /bin/bash).
# The whole output is also written to /var/tmp/sbxfresh-DATE.log (FRESH_LOG=PATH).
#
# Tested on a host with cgroup v1 controllers (and an empty cgroup2 mount), as
# machine.md describes. On a pure cgroup v2 host the run's own cgroup holds its
# processes, so a daemon in the root could not enable controllers below it: not
# handled yet.
#
# Needs: root, Debian 12 (or any host with apt, mmdebstrap and slirp4netns:
# installed with apt-get when missing), network access to the Debian archive,
# about 3 GB of disk under FRESH_DIR (default /var/tmp), and time: 25 minutes
# on this 2-core machine (mmdebstrap 1.5 to 5 minutes, apt and two initramfs
# builds for linux-image-amd64 about 8, the build, a 10 to 15 minute make check).
#
# Variables: KEEP=1, FRESH_WORKTREE=1, FRESH_DIR, FRESH_LOG, FRESH_VARIANT
# (minbase), FRESH_NET (slirp|host), FRESH_TIMEOUT (seconds for demo+check, 7200),
# FRESH_CMD (for work on this script: a shell command run in /root/sandboxfs
# instead of `make demo; make check`).
set -euo pipefail
# shellcheck disable=SC2317  # cleanup and its helpers run from a trap

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
CG_SUBSYS_FILE=cgroups   # in WORK: "MOUNTPOINT DIR" per hierarchy, DIR made for this run

say() { printf 'fresh: %s\n' "$*"; }
die() { printf 'fresh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- inside the namespaces
# Runs as pid 1 of the new pid namespace (host binaries: mount, ip, pivot_root), sets
# the root up as a machine, pivots into it and runs the steps there. Every mount here
# is in the private mount namespace and goes away with it.
inner() {
	local R=$FRESH_ROOTDIR W=$FRESH_WORK
	mount --make-rprivate /
	hostname sbxfresh
	# the root becomes "/" by pivot_root, as in a container: it must be a mount point
	# (on any machine "/" is one; sandboxfs makes it private in every sandbox)
	mount --bind "$R" "$R"
	mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
	# a fresh sysfs shows this network namespace's devices; the cgroup hierarchies are
	# the host's, each rooted at this run's cgroup, laid out as the host has them
	mount -t sysfs -o nosuid,nodev,noexec sysfs "$R/sys"
	mount -t tmpfs -o nosuid,nodev,noexec,mode=755,size=1m cgroup-root "$R/sys/fs/cgroup"
	local mp dir l
	while read -r mp dir; do
		mkdir -p "$R$mp"
		mount --bind "$dir" "$R$mp"
	done <"$W/$CG_SUBSYS_FILE"
	for l in /sys/fs/cgroup/*; do  # comounted controllers' links (cpu -> cpu,cpuacct)
		[ -L "$l" ] && ln -s "$(readlink "$l")" "$R$l"
	done
	[ -d /sys/fs/fuse/connections ] && mount -t fusectl fusectl "$R/sys/fs/fuse/connections" 2>/dev/null || true
	# /dev: the host's nodes; its own /dev/shm (qemu guest RAM lives there), ptys, mqueue
	mount --rbind /dev "$R/dev"
	mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$R/dev/shm"
	mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
	mount --bind "$R/dev/pts/ptmx" "$R/dev/ptmx"
	[ -d "$R/dev/mqueue" ] && mount -t mqueue mqueue "$R/dev/mqueue" 2>/dev/null || true
	mount -t tmpfs -o nosuid,nodev,mode=755 run "$R/run"
	mkdir -p "$R/run/lock" && chmod 1777 "$R/run/lock"
	ip link set lo up
	if [ "$FRESH_NET" = slirp ]; then  # slirp4netns (started by the outer half) adds tap0
		for _ in $(seq 600); do
			ip -4 route show default 2>/dev/null | grep -q . && break
			sleep 0.1
		done
		ip -4 route show default | grep -q . || { echo "fresh: no network in the namespace (slirp4netns)" >&2; exit 1; }
	fi
	# pivot into the root and drop the host's tree (its umount: `mount` is in every Debian
	# system; a root without it, FRESH_VARIANT=apt, uses the host's through its own loader)
	cd "$R"
	mkdir -p .fresh-oldroot
	pivot_root . .fresh-oldroot
	cd /
	if [ -x /usr/bin/umount ]; then
		/usr/bin/umount -l /.fresh-oldroot
	else
		local o=/.fresh-oldroot
		"$o/lib64/ld-linux-x86-64.so.2" --library-path "$o/lib/x86_64-linux-gnu:$o/usr/lib/x86_64-linux-gnu" \
			"$o/usr/bin/umount" -l "$o"
	fi
	rmdir /.fresh-oldroot
	# the steps: pid 1 stays this shell (now in the root), which reaps orphans while it waits
	export -n FRESH_ROOTDIR FRESH_WORK FRESH_NET FRESH_TIMEOUT
	/usr/bin/timeout --kill-after=30 "$FRESH_TIMEOUT" /usr/bin/env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM=dumb LANG=C.UTF-8 /bin/bash /root/fresh/steps.sh &
	local rc=0
	wait $! || rc=$?
	[ "$rc" = 124 ] && echo "fresh: demo and check did not end within FRESH_TIMEOUT=$FRESH_TIMEOUT s" >&2
	exit "$rc"
}

# ---------------------------------------------------------------- outside
upid="" spid="" WORK="" ROOT="" CGDIRS=() T0=$(date +%s)

need_pkg() {  # command package
	command -v "$1" >/dev/null && return 0
	say "installing $2 (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }
	command -v "$1" >/dev/null || die "cannot install $2"
}

# Our cgroups: every process of the run is in them, so what is left there is ours.
cg_procs() {
	local d
	for d in "${CGDIRS[@]}"; do
		[ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

cg_thaw() {  # frozen tasks (a paused sandbox) would not die
	local d
	for d in "${CGDIRS[@]}"; do
		[ -d "$d" ] || continue
		find "$d" -name freezer.state 2>/dev/null | while read -r f; do echo THAWED >"$f" 2>/dev/null || true; done
		find "$d" -name cgroup.freeze 2>/dev/null | while read -r f; do echo 0 >"$f" 2>/dev/null || true; done
	done
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM HUP
	set +e
	# 1. processes: unshare --kill-child takes pid 1 of the namespace, and with it every
	#    process in it (sandboxes, QEMUs, daemons); mounts go with the mount namespace
	if [ -n "$upid" ]; then
		cg_thaw
		kill -KILL "$upid" 2>/dev/null
		wait "$upid" 2>/dev/null
	fi
	[ -n "$spid" ] && { kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
	for _ in $(seq 100); do  # anything still in our cgroups is ours
		p=$(cg_procs)
		[ -z "$p" ] && break
		cg_thaw
		# shellcheck disable=SC2086
		kill -KILL $p 2>/dev/null
		sleep 0.1
	done
	[ -n "$(cg_procs)" ] && say "WARNING: processes left in this run's cgroups: $(cg_procs | tr '\n' ' ')"
	# 2. cgroups, deepest first (the root's daemons made theirs under ours)
	for p in "${CGDIRS[@]}"; do
		[ -d "$p" ] && find "$p" -depth -type d -exec rmdir {} + 2>/dev/null
		[ -d "$p" ] && say "WARNING: cgroup $p left"
	done
	# 3. the root (no mount of ours is under it in this namespace; --one-file-system anyway)
	if [ -n "$ROOT" ] && [ -d "$ROOT" ]; then
		if awk -v r="$ROOT/" 'index($2 "/", r) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
			say "WARNING: mounts under $ROOT: not removed"
		elif [ "${KEEP:-0}" = 1 ]; then
			say "KEEP=1: the root stays in $ROOT (chroot $ROOT /bin/bash; rm -rf $WORK when done)"
		else
			rm -rf --one-file-system "$WORK"
		fi
	fi
	say "took $(( ($(date +%s) - T0) / 60 )) min; exit $rc"
	exit "$rc"
}

# The root's view of cgroups: for each hierarchy mounted under /sys/fs/cgroup, a cgroup
# for this run under the one this shell is in (so the host's limits still apply).
make_cgroups() {
	local name=$1 ctrls path mp opts fstype found
	: >"$WORK/$CG_SUBSYS_FILE"
	while IFS=: read -r _ ctrls path; do
		found=""
		while read -r _ mp fstype opts _; do
			case "$mp" in /sys/fs/cgroup/*) ;; *) continue ;; esac
			if [ -z "$ctrls" ] && [ "$fstype" = cgroup2 ]; then
				found=$mp
			elif [ -n "$ctrls" ] && [ "$fstype" = cgroup ]; then
				local c ok=1
				for c in ${ctrls//,/ }; do
					case ",$opts," in *",$c,"*) ;; *) ok=0 ;; esac
				done
				[ "$ok" = 1 ] && found=$mp
			fi
			[ -n "$found" ] && break
		done </proc/self/mounts
		[ -n "$found" ] || continue
		local dir="$found${path%/}/$name"
		mkdir "$dir"
		CGDIRS+=("$dir")
		if [ -f "$dir/cpuset.cpus" ]; then  # v1 cpuset: a new cgroup has no cpus or mems
			cat "$(dirname "$dir")/cpuset.cpus" >"$dir/cpuset.cpus"
			cat "$(dirname "$dir")/cpuset.mems" >"$dir/cpuset.mems"
		fi
		echo "$found $dir" >>"$WORK/$CG_SUBSYS_FILE"
	done </proc/self/cgroup
	[ -s "$WORK/$CG_SUBSYS_FILE" ] || die "no cgroup hierarchy under /sys/fs/cgroup"
}

# apt settings of the host needed to reach its archive: proxies, and the validity checks
# a snapshot mirror needs switched off
apt_opts() {
	apt-config dump 2>/dev/null | grep -E '^Acquire::((https?|ftp)::Proxy(::[^ ]+)?|Check-Valid-Until|Check-Date) ' |
		sed -E 's/^([^ ]+) (.*);$/\1 \2/'
}

outer() {
	[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap --mode=root, namespaces, cgroups)"
	local variant=${FRESH_VARIANT:-minbase}
	FRESH_NET=${FRESH_NET:-slirp}
	case "$FRESH_NET" in slirp | host) ;; *) die "FRESH_NET is slirp or host" ;; esac
	FRESH_TIMEOUT=${FRESH_TIMEOUT:-7200}
	command -v git >/dev/null || die "needs git"
	command -v unshare >/dev/null || die "needs unshare (util-linux)"
	need_pkg mmdebstrap mmdebstrap
	[ "$FRESH_NET" = slirp ] && need_pkg slirp4netns slirp4netns
	[ -e /dev/fuse ] || say "WARNING: no /dev/fuse on this host: the root will not have one either"

	local head dirty
	# (--no-optional-locks: nothing here writes to the repository, not even its index)
	dirty=$(git -C "$REPO" --no-optional-locks status --porcelain --untracked-files=normal | wc -l)
	say "testing the committed HEAD of $REPO (now $(git -C "$REPO" log -1 --format='%h %s' HEAD))"
	if [ "${FRESH_WORKTREE:-0}" = 1 ]; then
		say "FRESH_WORKTREE=1: with the $dirty uncommitted or untracked path(s) of the working tree"
	elif [ "$dirty" != 0 ]; then
		say "NOTE: $dirty uncommitted or untracked path(s) in $REPO are NOT tested (a clone of HEAD is; FRESH_WORKTREE=1 adds them)"
	fi

	mkdir -p "${FRESH_DIR:-/var/tmp}"
	WORK=$(mktemp -d "${FRESH_DIR:-/var/tmp}/sbxfresh.XXXXXX")
	ROOT=$WORK/root
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP
	say "work dir $WORK"

	# 1. the root
	local srcs=() f t1
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && grep -qEv '^[[:space:]]*(#|$)' "$f" && srcs+=("$f")
	done
	[ ${#srcs[@]} -gt 0 ] || die "no apt sources on this host"
	local aptopts=()
	while read -r f; do [ -n "$f" ] && aptopts+=("--aptopt=$f"); done < <(apt_opts)
	say "mmdebstrap --variant=$variant bookworm (sources: ${srcs[*]}${aptopts[*]:+; ${aptopts[*]}})"
	t1=$(date +%s)
	# in a mount namespace of its own, so that nothing it mounts can outlive it
	unshare --mount --propagation private mmdebstrap --mode=root --variant="$variant" \
		--include=ca-certificates,git,make "${aptopts[@]}" bookworm "$ROOT" "${srcs[@]}" \
		>"$WORK/mmdebstrap.log" 2>&1 || { tail -20 "$WORK/mmdebstrap.log"; die "mmdebstrap failed (log above)"; }
	say "root built in $(( $(date +%s) - t1 )) s: $(du -sh --one-file-system "$ROOT" | cut -f1)"
	echo sbxfresh >"$ROOT/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tsbxfresh\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
	if [ "$FRESH_NET" = slirp ]; then
		echo "nameserver 10.0.2.3" >"$ROOT/etc/resolv.conf"  # slirp4netns's DNS forwarder
	else
		cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
	fi

	# 2. the repository: a clone of HEAD, nothing else
	git clone --quiet --no-hardlinks "$REPO" "$ROOT/root/sandboxfs"
	head=$(git -C "$ROOT/root/sandboxfs" rev-parse --short HEAD)
	say "cloned $(git -C "$ROOT/root/sandboxfs" log -1 --format='%h %s' HEAD) into /root/sandboxfs"
	if [ "${FRESH_WORKTREE:-0}" = 1 ]; then
		git -C "$REPO" --no-optional-locks diff --binary HEAD >"$WORK/worktree.diff"
		[ -s "$WORK/worktree.diff" ] && git -C "$ROOT/root/sandboxfs" apply --binary --whitespace=nowarn "$WORK/worktree.diff"
		git -C "$REPO" --no-optional-locks ls-files -z --others --exclude-standard |
			tar -C "$REPO" --null -T - -cf - | tar -C "$ROOT/root/sandboxfs" -xf -
		head="$head+worktree"
		say "added the working tree's changes ($(wc -l <"$WORK/worktree.diff") diff lines, $(git -C "$REPO" --no-optional-locks ls-files --others --exclude-standard | wc -l) untracked files)"
	fi
	mkdir -p "$ROOT/root/fresh"
	if [ -n "${FRESH_CMD:-}" ]; then
		printf 'cd /root/sandboxfs\n%s\n' "$FRESH_CMD" >"$ROOT/root/fresh/steps.sh"
	else
		cat >"$ROOT/root/fresh/steps.sh" <<-'EOF'
			cd /root/sandboxfs
			echo "== fresh: make demo"
			make demo; echo $? >/root/fresh/demo.rc
			echo "== fresh: make demo exited $(cat /root/fresh/demo.rc)"
			echo "== fresh: make check"
			make check 2>&1 | tee /root/fresh/check.log; echo "${PIPESTATUS[0]}" >/root/fresh/check.rc
			echo "== fresh: make check exited $(cat /root/fresh/check.rc)"
			[ "$(cat /root/fresh/demo.rc)" = 0 ] && [ "$(cat /root/fresh/check.rc)" = 0 ]
		EOF
	fi

	# 3. cgroups, namespaces, network; 4. the steps
	make_cgroups "$(basename "$WORK")"
	local nsflags=(--mount --pid --uts --ipc --cgroup)
	[ "$FRESH_NET" = slirp ] && nsflags+=(--net)
	(
		for d in "${CGDIRS[@]}"; do echo "$BASHPID" >"$d/cgroup.procs"; done
		exec env FRESH_ROOTDIR="$ROOT" FRESH_WORK="$WORK" FRESH_NET="$FRESH_NET" FRESH_TIMEOUT="$FRESH_TIMEOUT" \
			unshare "${nsflags[@]}" --fork --kill-child --propagation private bash "$SELF" --inner
	) &
	upid=$!
	if [ "$FRESH_NET" = slirp ]; then
		local host_ns
		host_ns=$(readlink /proc/self/ns/net)
		for _ in $(seq 100); do
			[ "$(readlink "/proc/$upid/ns/net" 2>/dev/null)" != "$host_ns" ] && break
			sleep 0.05
		done
		[ "$(readlink "/proc/$upid/ns/net" 2>/dev/null)" != "$host_ns" ] || die "the network namespace did not appear"
		slirp4netns --configure --mtu=65520 --disable-host-loopback "$upid" tap0 >"$WORK/slirp4netns.log" 2>&1 &
		spid=$!
	fi
	say "entering the root: demo and check (up to $FRESH_TIMEOUT s)"
	local rc=0
	wait "$upid" || rc=$?
	upid=""

	local drc crc last
	drc=$(cat "$ROOT/root/fresh/demo.rc" 2>/dev/null || echo "did not run")
	crc=$(cat "$ROOT/root/fresh/check.rc" 2>/dev/null || echo "did not run")
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$ROOT/root/fresh/check.log" 2>/dev/null | tail -1 || true)
	echo
	say "commit $head on a fresh Debian 12 root ($variant variant, FRESH_NET=$FRESH_NET)"
	if [ -z "${FRESH_CMD:-}" ]; then
		say "make demo: exit $drc"
		say "make check: exit $crc; last line: ${last:-(none)}"
		[ -f "$ROOT/root/fresh/check.log" ] && grep -E '^not ok ' "$ROOT/root/fresh/check.log" | sed 's/^/fresh:   /' || true
	fi
	say "log: $FRESH_LOG"
	[ "$rc" = 0 ] || exit "$rc"
}

if [ "${1:-}" = --inner ]; then
	inner
	exit
fi
FRESH_LOG=${FRESH_LOG:-/var/tmp/sbxfresh-$(date +%Y%m%d-%H%M%S).log}
export FRESH_LOG
set -o pipefail
outer "$@" 2>&1 | tee "$FRESH_LOG"
exit "${PIPESTATUS[0]}"
