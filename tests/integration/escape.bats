#!/usr/bin/env bats
# The escape suite (issue 7, "Hostile sandboxes"): root of a sandbox tries to
# reach the host, and every attempt must fail for the reason it stands for.
# Attempts run through the sandbox's `exec` file, so they have exactly what a
# command there gets: the sandbox's namespaces, cgroup, capability set and
# seccomp filter. Each attempt runs twice: in a sandbox without networking and
# in one with it (net=on, on a bridge and /24 of this file's own).
#
# Three kinds of outcome are counted, each required exactly:
#   denied    the attempt fails with its denial: EPERM (the seccomp filter or
#             a dropped capability, the devices cgroup), EROFS (a read-only
#             mount: /proc/sys, /sys), ENOSYS (clone3, from the filter), or
#             SIGSYS (the filter kills other ABIs);
#   isolated  a namespace hides the target (no host interface, no host pid,
#             no host path): judged by what the attempt shows, never by its
#             exit code alone;
#   held      a limit holds (pids=, memory=).
# The test "run by root on the host" makes the same attempts on the host (in
# a private mount namespace where they mount) and checks that they get
# through there, or fail with another errno than the sandbox's: so each check
# here can fail. Attempts that cannot succeed even on the bare host (no
# /proc/sysrq-trigger, no uevent_helper on this kernel) are made only where
# the host has them.
#
# The static helper tests/integration/escape/escape.c makes the attempts a
# shell cannot (raw syscalls); it is built in setup_file and put into a copy
# of the busybox image at /usr/local/bin/escape. It prints `blocked: ...` with
# the errno text and exits 3 when an attempt fails, `ESCAPED: ...` and 0 when
# it works. Every attempt is harmless should it succeed (the clock is set to
# the time it already has, a sysctl gets the value it has, ...).
# At the end: `# escape: N denied, N isolated, N held`, and the last test
# asserts those totals.

load helpers

setup_file() {
	busybox_with_tool escape "$SBX_REPO"/tests/integration/escape/*.c || return 1
	export ESC="$SBX_IMAGES/busybox/usr/local/bin/escape"
	local k
	for k in denied isolated held; do : >"$BATS_FILE_TMPDIR/$k"; done
	# Networking on, on a bridge and subnet of our own (concurrent daemons
	# must not share the default ones).
	local net_tag
	net_tag=$(printf '%04x' $((RANDOM % 65536)))
	export BR="sbxe$net_tag"
	export SBX_NET_ARGS="--bridge $BR --subnet 10.$((200 + RANDOM % 50)).$((RANDOM % 250)).0/24"
	setup_sbx
	export E="esc${SBX_TAG}" EN="escn${SBX_TAG}"
	sbx_create_ctl "$E" net=off || return 1
	sbx_create_ctl "$EN" net=on || return 1
	export SANDBOXES="$E $EN"
	# A host file with a unique content, and the host's facts the attempts aim at.
	export SECRET_DIR="$SBX_TMP/host-secret"
	mkdir -p "$SECRET_DIR"
	echo "host-secret-$SBX_TAG" >"$SECRET_DIR/secret"
	# A host interface no sandbox has (the default route's may be called eth0,
	# which is also the name of a sandbox's own).
	export HOST_IF="$BR"
	export HOST_BLK=8:0 HOST_BLK_NAME="" # a host disk, major:minor and name
	local b
	for b in /sys/block/*; do
		case ${b##*/} in loop* | ram* | zram* | nbd*) continue ;; esac
		[[ -r "$b/dev" ]] || continue
		HOST_BLK=$(cat "$b/dev")
		HOST_BLK_NAME=${b##*/}
		break
	done
	# int 0x80 reaches the kernel only where 32-bit emulation is on: the
	# helper on the host says (0: it worked there).
	export INT80_HOST=0
	"$ESC" int80 >/dev/null 2>&1 || INT80_HOST=$?
}

teardown_file() {
	teardown_sbx
	ip link del "$BR" 2>/dev/null || true
	echo "# escape: $(count denied) denied, $(count isolated) isolated by a namespace," \
		"$(count held) held by a limit (each attempt in a sandbox without and with networking)" >&3
}

count() {
	local n
	n=$(grep -c . "$BATS_FILE_TMPDIR/$1" 2>/dev/null) || true
	echo "${n:-0}"
}

# note KIND DESCRIPTION: count one outcome (denied, isolated, held).
note() {
	local kind=$1
	shift
	echo "$*" >>"$BATS_FILE_TMPDIR/$kind"
}

# deny_sh DESC DENIAL CMD: in each sandbox, CMD must fail, and its output
# must match DENIAL (an ERE: the errno text of the denial).
# busybox mount and umount say EPERM and EACCES in their own words.
MOUNT_DENIED='not permitted|permission denied \(are you root\?\)'
deny_sh() {
	local desc=$1 pat=$2 sb
	shift 2
	for sb in $SANDBOXES; do
		sbx_exec "$sb" "$*" >/dev/null || return 1
		if [[ "$SBX_RC" == 0 || "$SBX_RC" == 126 || "$SBX_RC" == 127 ]] ||
			! grep -Eq -- "$pat" <<<"$SBX_OUT"; then
			echo "ESCAPE? '$desc' in $sb: '$*' exited $SBX_RC; wanted a failure with /$pat/: $SBX_OUT" >&2
			return 1
		fi
		note denied "$sb: $desc"
	done
}

# deny ERRNO-TEXT ATTEMPT [ARGS]: in each sandbox, the helper must report the
# attempt blocked with that errno.
deny() {
	local want=$1 sb
	shift
	for sb in $SANDBOXES; do
		sbx_exec "$sb" escape "$@" >/dev/null || return 1
		if [[ "$SBX_RC" != 3 || "$SBX_OUT" != blocked:*": $want" ]]; then
			echo "ESCAPE? escape $* in $sb: exit $SBX_RC: '$SBX_OUT'; wanted 'blocked: ...: $want'" >&2
			return 1
		fi
		note denied "$sb: escape $*"
	done
}

# isolated ERRNO-TEXT ATTEMPT [ARGS]: as deny, for an attempt whose target a
# namespace hides.
isolated() {
	local want=$1 sb
	shift
	for sb in $SANDBOXES; do
		sbx_exec "$sb" escape "$@" >/dev/null || return 1
		if [[ "$SBX_RC" != 3 || "$SBX_OUT" != blocked:*": $want" ]]; then
			echo "ESCAPE? escape $* in $sb: exit $SBX_RC: '$SBX_OUT'; wanted 'blocked: ...: $want'" >&2
			return 1
		fi
		note isolated "$sb: escape $*"
	done
}

# isolated_out DESC FORBIDDEN CMD: in each sandbox, what CMD prints (stdout
# and stderr) must not match FORBIDDEN (an ERE: what the host target holds),
# whatever its exit code.
isolated_out() {
	local desc=$1 forbidden=$2 sb
	shift 2
	for sb in $SANDBOXES; do
		sbx_exec "$sb" "$* 2>&1" >/dev/null || return 1
		if grep -Eq -- "$forbidden" <<<"$SBX_OUT"; then
			echo "ESCAPED: '$desc' in $sb: '$*' showed the host's /$forbidden/: $SBX_OUT" >&2
			return 1
		fi
		note isolated "$sb: $desc"
	done
}

# host_try ERRNO-OR-ok ATTEMPT [ARGS]: the helper, run by root on the host in
# a private mount namespace (what it mounts stays there): `ok` wants it to get
# through; an errno text wants any outcome but that errno.
host_try() {
	local want=$1
	shift
	run unshare -m --propagation private -- "$ESC" "$@"
	if [[ "$want" == ok ]]; then
		[[ "$status" == 0 && "$output" == ESCAPED:* ]] || {
			echo "on the host, escape $* did not get through: exit $status: $output" >&2
			return 1
		}
	elif [[ "$status" == 3 && "$output" == *": $want" ]]; then
		echo "on the host, escape $* also fails with '$want': the sandbox's answer proves nothing" >&2
		return 1
	fi
	echo "# host: escape $*: exit $status: $output"
}

# Writes a line of our own into the host's kernel log and waits (bounded)
# until the log shows it: lines written before it show by then.
kmsg_barrier() {
	local line="sbx-escape-barrier-$SBX_TAG-$RANDOM" i
	echo "<6>$line" >/dev/kmsg
	for ((i = 0; i < 100; i++)); do
		dmesg | grep -q -- "$line" && return 0
		sleep 0.1
	done
	echo "the kernel log did not show $line" >&2
	return 1
}

@test "the sandbox runs under a seccomp filter and Docker's capability set" {
	local sb
	for sb in $SANDBOXES; do
		sbx_exec "$sb" 'grep -E "^(Seccomp|NoNewPrivs|CapEff|CapBnd):" /proc/self/status'
		[ "$SBX_RC" = 0 ]
		grep -Eq '^Seccomp:[[:space:]]+2$' <<<"$SBX_OUT"
		grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$SBX_OUT"
		# Docker's 14 capabilities: 0x00000000a80425fb
		grep -Eq '^CapEff:[[:space:]]+0*a80425fb$' <<<"$SBX_OUT"
		grep -Eq '^CapBnd:[[:space:]]+0*a80425fb$' <<<"$SBX_OUT"
	done
	# The networks are what they should be: lo only, and lo plus eth0.
	sbx_exec "$E" 'ls /sys/class/net'
	[ "$SBX_OUT" = lo ]
	sbx_exec "$EN" 'ls /sys/class/net'
	[ "$SBX_OUT" = "eth0
lo" ]
}

@test "ordinary work still runs under the filter" {
	local sb
	for sb in $SANDBOXES; do
		sbx_exec "$sb" 'echo a | tr a b; (sleep 0 & wait); ls / >/dev/null; echo $((6 * 7))'
		[ "$SBX_RC" = 0 ]
		[ "$(tail -n 1 <<<"$SBX_OUT")" = 42 ]
		sbx_exec "$sb" escape personality-query
		[ "$SBX_RC" = 0 ]
		# ping uses a raw AF_INET socket (CAP_NET_RAW is kept for it)
		sbx_exec "$sb" 'ping -c 1 -W 2 127.0.0.1'
		[ "$SBX_RC" = 0 ]
		# a character node for a listed device works (mknod is allowed, as in Docker)
		sbx_exec "$sb" 'mknod /root/null c 1 3 && echo hi > /root/null && rm /root/null'
		[ "$SBX_RC" = 0 ]
	done
}

@test "mount and umount" {
	deny_sh "busybox mount tmpfs" "$MOUNT_DENIED" 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m'
	deny_sh "busybox mount --bind /proc/1/root" "$MOUNT_DENIED" 'mount --bind /proc/1/root /tmp'
	deny_sh "busybox umount /proc" "$MOUNT_DENIED" 'umount /proc'
	deny_sh "busybox umount -l /sys" "$MOUNT_DENIED" 'umount -l /sys'
	deny_sh "remount /sys read-write" "$MOUNT_DENIED" 'mount -o remount,rw /sys'
	deny "Operation not permitted" mount
	deny "Operation not permitted" bind-proc
	deny "Operation not permitted" umount
	deny "Operation not permitted" fsopen
	deny "Operation not permitted" open_tree
	# and the mounts are what sbx-init made
	sbx_exec "$E" 'cat /proc/mounts'
	run grep -q ' /tmp/m ' <<<"$SBX_OUT"
	[ "$status" -eq 1 ]
}

@test "pivot_root and chroot back out" {
	deny_sh "busybox pivot_root" 'not permitted' 'mkdir -p /tmp/new/old && cd /tmp/new && pivot_root . old'
	deny "Operation not permitted" pivot_root
	# CAP_SYS_CHROOT is kept (Docker's set); walking up from a chroot ends at
	# the sandbox's own root, the host's is detached (the mount namespace).
	isolated "host path after the chroot walk: No such file or directory" chroot "$SECRET_DIR/secret"
	sbx_exec "$E" 'cd / && cd .. && cd .. && pwd && ls /'
	[ "$SBX_RC" = 0 ]
	run grep -qx work <<<"$SBX_OUT"
	[ "$status" -eq 1 ]
}

@test "/proc/sysrq-trigger and /proc/sys" {
	if [[ -e /proc/sysrq-trigger ]]; then
		local before after sb
		for sb in $SANDBOXES; do
			before=$(dmesg 2>/dev/null | grep -c 'sysrq: HELP' || true)
			# runc's answer: /proc/sysrq-trigger is /dev/null inside, so the
			# write "works" and does nothing. What must fail is reaching the
			# kernel: `h` (help, harmless) would log "sysrq: HELP" on the host.
			sbx_exec "$sb" 'stat -c %t:%T /proc/sysrq-trigger; echo h > /proc/sysrq-trigger'
			[ "$(head -n 1 <<<"$SBX_OUT")" = 1:3 ]
			after=$(dmesg 2>/dev/null | grep -c 'sysrq: HELP' || true)
			[ "$before" = "$after" ]
			note denied "$sb: sysrq-trigger (masked with /dev/null, no effect on the host)"
		done
		deny_sh "write /proc/sys/kernel/sysrq" 'Read-only file system' \
			'cat /proc/sys/kernel/sysrq > /tmp/v && cat /tmp/v > /proc/sys/kernel/sysrq'
	fi
	# core_pattern is the classic way out (a pipe runs as root on the host);
	# the value written is the one already there
	deny_sh "write /proc/sys/kernel/core_pattern" 'Read-only file system' \
		'cat /proc/sys/kernel/core_pattern > /tmp/cp && cat /tmp/cp > /proc/sys/kernel/core_pattern'
	# ASLR off for the whole host
	deny_sh "write /proc/sys/kernel/randomize_va_space" 'Read-only file system' \
		'cat /proc/sys/kernel/randomize_va_space > /tmp/v && cat /tmp/v > /proc/sys/kernel/randomize_va_space'
	deny_sh "remount /proc/sys read-write" "$MOUNT_DENIED" 'mount -o remount,rw /proc/sys'
}

@test "kernel modules" {
	# This kernel has no module support (the host gets ENOSYS, see the host
	# test): EPERM can only come from the filter.
	deny_sh "busybox insmod" 'not permitted' 'head -c 4096 /bin/busybox > /tmp/x.ko && insmod /tmp/x.ko'
	deny "Operation not permitted" init_module
	deny "Operation not permitted" finit_module
	deny "Operation not permitted" delete_module
}

@test "kexec and reboot" {
	deny "Operation not permitted" kexec_load
	deny "Operation not permitted" kexec_file_load
	deny "Operation not permitted" reboot
	deny_sh "busybox reboot -f" 'not permitted' 'reboot -f'
	# the sandboxes are still there
	[ "$(sbx_cat "$MNT/$E/status")" = running ]
	[ "$(sbx_cat "$MNT/$EN/status")" = running ]
}

@test "setting the clock" {
	local sb
	for sb in $SANDBOXES; do
		# busybox date reports the failure but exits 0: check its message
		sbx_exec "$sb" 'date -s "$(date "+%Y-%m-%d %H:%M:%S")"'
		grep -q "can't set date: Operation not permitted" <<<"$SBX_OUT" ||
			{ echo "date -s in $sb: $SBX_OUT" >&2; false; }
		note denied "$sb: date -s"
	done
	deny "Operation not permitted" settimeofday
	deny "Operation not permitted" clock_settime
}

@test "mknod of a block device, and of a character device not in the list" {
	local maj=${HOST_BLK%%:*} min=${HOST_BLK##*:} sb
	deny_sh "mknod b $HOST_BLK in /" 'not permitted' "mknod /sda b $maj $min && head -c 512 /sda | wc -c"
	deny_sh "mknod b $HOST_BLK in /dev" 'not permitted' "mknod /dev/sda b $maj $min && head -c 512 /dev/sda | wc -c"
	deny_sh "mknod b $HOST_BLK in /tmp" 'not permitted' "mknod /tmp/sda b $maj $min && head -c 512 /tmp/sda | wc -c"
	deny "mknod: Operation not permitted" mknod-read /root/sda b "$maj" "$min"
	# /dev/kmsg: a node the sandbox makes must not write into the host's
	# kernel log (the devices cgroup refuses the open)
	local mark="sbx-escape-kmsg-$SBX_TAG"
	deny "open for writing: Operation not permitted" mknod-write /root/kmsg c 1 11 "'<6>$mark'"
	# A line of our own after it: once the host's log shows ours, it would
	# show the sandbox's too.
	kmsg_barrier
	run grep -q -- "$mark" < <(dmesg)
	[ "$status" -eq 1 ]
	# /dev/mem needs CAP_SYS_RAWIO as well
	deny "open for reading: Operation not permitted" mknod-read /root/mem c 1 1
	# What the kernel holds for each (v1: the rows, inherited from the
	# daemon's parent cgroup and what it lacks denied): Docker's list, not
	# every device, not /dev/kvm.
	if [[ -r /sys/fs/cgroup/devices/devices.list ]]; then
		local tag list
		tag=$(state_host_tag)
		for sb in $SANDBOXES; do
			list=$(cat "/sys/fs/cgroup/devices/sandboxfs/$tag-$sb/devices.list")
			echo "$sb: $list"
			grep -qx 'c 1:3 rwm' <<<"$list"
			! grep -q -e '^a ' -e '^c 10:232 ' <<<"$list" || false
			[ "$(grep -c . <<<"$list")" -eq 11 ]
		done
	fi
}

@test "raw and packet sockets on host interfaces" {
	deny "Operation not permitted" packet
	deny "Operation not permitted" vsock
	# The host's interfaces are not in the sandbox's network namespace.
	isolated "No such device" raw-bind "$HOST_IF"
}

@test "ptrace and memory of host processes" {
	local sb
	for sb in $SANDBOXES; do
		# no host process is visible: only the sandbox's own pids in /proc
		sbx_exec "$sb" 'for p in /proc/[0-9]*; do cat $p/comm; done'
		[ "$SBX_RC" = 0 ]
		run grep -qx -e sandboxfs -e bats -e systemd <<<"$SBX_OUT"
		[ "$status" -eq 1 ]
		[ "$(grep -c . <<<"$SBX_OUT")" -lt 10 ]
		sbx_exec "$sb" "test -e /proc/$SBX_PID/exe && cat /proc/$SBX_PID/comm"
		[ "$SBX_OUT" != sandboxfs ]
	done
	deny "Operation not permitted" ptrace "$SBX_PID"
	deny "Operation not permitted" ptrace 1
	deny "Operation not permitted" ptrace-child
	deny "Operation not permitted" process_vm_readv
	deny "Operation not permitted" kcmp
	deny "Operation not permitted" setns
}

@test "host files through /proc/*/root and /proc/*/cwd" {
	# Judged by what is printed: on the host the same globs print the file
	# (and still exit 1, for the processes whose root cannot be read).
	local secret="host-secret-$SBX_TAG"
	isolated_out "cat /proc/*/root/HOSTPATH" "$secret" "cat /proc/*/root$SECRET_DIR/secret"
	isolated_out "cat /proc/*/cwd/HOSTPATH" "$secret" "cat /proc/*/cwd$SECRET_DIR/secret"
	isolated_out "cat /proc/1/root/../../HOSTPATH" "$secret" "cat /proc/1/root/../../..$SECRET_DIR/secret"
	isolated_out "the host repo's Makefile through /proc/1/root" '^\.PHONY:' "cat /proc/1/root$SBX_REPO/Makefile"
	local sb
	for sb in $SANDBOXES; do
		sbx_exec "$sb" 'readlink /proc/1/root; readlink /proc/1/cwd'
		[ "$SBX_OUT" = "/
/" ]
		sbx_exec "$sb" "grep -rl $secret /proc/1/root/tmp /proc/1/root/root 2>/dev/null"
		[ -z "$SBX_OUT" ]
	done
}

@test "writing /sys" {
	# sysfs is mounted read-only; each file exists and takes a write from
	# host root (the value written is the one it has).
	deny_sh "write /sys/kernel/mm/ksm/run" 'Read-only file system' \
		'cat /sys/kernel/mm/ksm/run > /tmp/v && cat /tmp/v > /sys/kernel/mm/ksm/run'
	deny_sh "write /sys/kernel/mm/transparent_hugepage/enabled" 'Read-only file system' \
		'v=$(sed -n "s/.*\[\(.*\)\].*/\1/p" /sys/kernel/mm/transparent_hugepage/enabled) && echo "$v" > /sys/kernel/mm/transparent_hugepage/enabled'
	[ -n "$HOST_BLK_NAME" ] || { echo "no host disk found in /sys/block" >&2; false; }
	deny_sh "write /sys/block/$HOST_BLK_NAME/queue/read_ahead_kb" 'Read-only file system' \
		"cat /sys/block/$HOST_BLK_NAME/queue/read_ahead_kb > /tmp/v && cat /tmp/v > /sys/block/$HOST_BLK_NAME/queue/read_ahead_kb"
	deny_sh "mount cgroupfs (release_agent)" "$MOUNT_DENIED" 'mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg'
}

@test "bpf, perf_event_open, keyctl, userfaultfd, io_uring" {
	deny "Operation not permitted" bpf
	deny "Operation not permitted" perf_event_open
	deny "Operation not permitted" keyctl
	deny "Operation not permitted" add_key
	deny "Operation not permitted" request_key
	deny "Operation not permitted" userfaultfd
	deny "Operation not permitted" io_uring
	deny "Operation not permitted" syslog
	deny_sh "dmesg" 'not permitted' 'dmesg'
	deny "Operation not permitted" iopl
	deny "Operation not permitted" swapon
	deny "Operation not permitted" personality
}

@test "open_by_handle_at (shocker)" {
	deny "Operation not permitted" name_to_handle_at
	deny "Operation not permitted" open_by_handle_at /
	deny "Operation not permitted" open_by_handle_at /etc/passwd
}

@test "unshare of a user namespace to regain capabilities" {
	deny_sh "unshare -U -r" 'not permitted' 'unshare -U -r cat /proc/self/status'
	deny_sh "unshare -U -m -r mount" 'not permitted' 'unshare -U -m -r mount -t tmpfs none /mnt'
	deny "Operation not permitted" unshare-user
	deny "Operation not permitted" unshare-mnt
	deny "Operation not permitted" clone-user
	# clone3 answers ENOSYS so that libc falls back to clone
	deny "Function not implemented" clone3-user
}

@test "other ABIs are killed: x32 and 32-bit int 0x80" {
	local sb
	for sb in $SANDBOXES; do
		sbx_exec "$sb" escape x32
		[ "$SBX_RC" = 159 ] || { echo "x32 in $sb: exit $SBX_RC: $SBX_OUT" >&2; false; }
		note denied "$sb: x32 syscall (SIGSYS)"
		sbx_exec "$sb" escape int80
		if ((INT80_HOST == 0)); then
			# 159: SIGSYS from the filter
			[ "$SBX_RC" = 159 ] || { echo "int80 in $sb: exit $SBX_RC: $SBX_OUT" >&2; false; }
			note denied "$sb: int 0x80 syscall (SIGSYS)"
		else
			# The host's kernel has 32-bit emulation off: the call dies before
			# any filter, on the host too. Not counted.
			[ "$SBX_RC" = "$INT80_HOST" ] || { echo "int80 in $sb: exit $SBX_RC, on the host $INT80_HOST" >&2; false; }
			echo "# int 0x80: ends with exit $INT80_HOST on the host too (no 32-bit emulation): not counted"
		fi
	done
}

@test "fork bomb beyond pids=32" {
	local B="bomb${SBX_TAG}"
	sbx_create_ctl "$B" pids=32 memory=128M net=off
	# 100 sleepers: forks past the limit fail in the sandbox's shell
	sbx_exec "$B" 'i=0; while [ $i -lt 100 ]; do sleep 5 >/dev/null 2>&1 </dev/null & i=$((i+1)); done; echo done'
	grep -qi "fork" <<<"$SBX_OUT"
	[ "$(sbx_key "$MNT/$B/stats" pids_current)" -le 32 ]
	# the real one, in its own session so that closing the exec handle (which
	# kills the command's process group) leaves it running
	sbx_exec "$B" "setsid sh -c 'b() { b | b & }; b' >/dev/null 2>&1 </dev/null & echo started"
	sleep 3
	local cur
	cur=$(sbx_key "$MNT/$B/stats" pids_current)
	[ "$cur" -le 32 ]
	[ "$(sbx_key "$MNT/$B/stats" pids_limit)" = 32 ]
	note held "fork bomb held at $cur of 32 pids"
	# the host and the other sandboxes are fine
	run timeout 10 bash -c 'for i in $(seq 50); do /bin/true || exit 1; done'
	[ "$status" -eq 0 ]
	assert_healthy "$E"
	assert_healthy "$EN"
	timeout 60 rmdir "$MNT/$B" || { tail -n 20 "$SBX_LOG" >&2; false; }
	[ ! -e "$MNT/$B" ]
}

@test "memory beyond memory=" {
	local M="mem${SBX_TAG}"
	sbx_create_ctl "$M" memory=64M net=off
	sbx_exec "$M" escape alloc 512
	[ "$SBX_RC" = 137 ] || { echo "alloc 512M in a 64M sandbox: exit $SBX_RC: $SBX_OUT" >&2; false; }
	local peak
	peak=$(sbx_key "$MNT/$M/stats" memory_peak_bytes)
	[ "$peak" -le $((64 * 1024 * 1024)) ]
	[ "$(sbx_key "$MNT/$M/stats" oom_kills)" -ge 1 ]
	note held "allocate 512M under memory=64M (OOM-killed, peak $peak)"
	assert_healthy "$M"
	timeout 60 rmdir "$MNT/$M" || { tail -n 20 "$SBX_LOG" >&2; false; }
}

@test "run by root on the host, the same attempts get through (so each check can fail)" {
	# Each in a private mount namespace: what it mounts or unmounts stays there.
	local a
	for a in mount bind-proc umount fsopen open_tree bpf perf_event_open keyctl userfaultfd \
		io_uring syslog personality name_to_handle_at unshare-user unshare-mnt clone-user \
		clone3-user setns ptrace-child process_vm_readv kcmp packet vsock; do
		host_try ok "$a"
	done
	host_try ok open_by_handle_at /
	host_try ok open_by_handle_at /etc/passwd
	host_try ok raw-bind "$HOST_IF"
	host_try ok chroot "$SECRET_DIR/secret"
	# A node of a host disk: the host makes it (whether it may then read the
	# disk is its own devices policy); the sandbox is refused the mknod.
	local maj=${HOST_BLK%%:*} min=${HOST_BLK##*:}
	host_try "mknod: Operation not permitted" mknod-read "$BATS_FILE_TMPDIR/sda" b "$maj" "$min"
	# /dev/kmsg through a node of our own: the marker reaches the host's log.
	local mark="sbx-escape-host-kmsg-$SBX_TAG"
	host_try ok mknod-write "$BATS_FILE_TMPDIR/kmsg" c 1 11 "<6>$mark"
	kmsg_barrier
	dmesg | grep -q -- "$mark"
	# Not made on the host (they would change it: the clock, C-A-D, the
	# kernel log, keys; or reach a live process), or unable to succeed on
	# this kernel: the host's answer is not the sandbox's.
	for a in init_module finit_module delete_module kexec_load kexec_file_load iopl swapon \
		request_key pivot_root; do
		host_try "Operation not permitted" "$a"
	done
	rmdir /tmp/escape-mnt /tmp/escape-jail /tmp/escape-old 2>/dev/null || true
	# The /proc globs print the host's file there.
	run bash -c "cat /proc/*/root$SECRET_DIR/secret 2>/dev/null"
	[[ "$output" == *"host-secret-$SBX_TAG"* ]]
	run bash -c "cat /proc/1/root$SBX_REPO/Makefile 2>/dev/null || cat /proc/self/root$SBX_REPO/Makefile"
	grep -q '^\.PHONY:' <<<"$output"
	# The host's interface exists on the host.
	ip link show "$HOST_IF" >/dev/null
}

@test "the totals: every attempt was made and counted" {
	local sysrq=0 int80=0 n=2
	[[ -e /proc/sysrq-trigger ]] && sysrq=2
	((INT80_HOST == 0)) && int80=1
	# Per sandbox: denied 66 (+2 with sysrq, +1 int 0x80 where it reaches
	# the kernel), isolated 6.
	local denied=$(((66 + sysrq + int80) * n)) isolated=$((6 * n))
	echo "# denied $(count denied) of $denied, isolated $(count isolated) of $isolated, held $(count held) of 2"
	[ "$(count denied)" -eq "$denied" ]
	[ "$(count isolated)" -eq "$isolated" ]
	[ "$(count held)" -eq 2 ]
}
