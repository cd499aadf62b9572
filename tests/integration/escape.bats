#!/usr/bin/env bats
# The escape suite (issue 7, "Hostile sandboxes"): root of a sandbox tries to
# reach the host, and every attempt must fail. Attempts run through the
# sandbox's `exec` file, so they have exactly what a command there gets: the
# sandbox's namespaces, cgroup, capability set and seccomp filter.
#
# The static helper tests/integration/escape/escape.c makes the attempts a
# shell cannot (raw syscalls); it is built in setup_file and put into a copy
# of the busybox image at /usr/local/bin/escape. It prints `blocked: ...` and
# exits 3 when an attempt fails, `ESCAPED: ...` and 0 when it works.
#
# Every attempt is harmless should it succeed (the clock is set to the time
# it already has, sysrq gets `h`, /dev/kmsg gets a marker line, ...).
# At the end: `# escape: N attempts blocked`.

load helpers

setup_file() {
	local img="$BATS_FILE_TMPDIR/images"
	mkdir -p "$img"
	cp -a "$SBX_REPO/build/images/busybox" "$img/busybox" || return 1
	mkdir -p "$img/busybox/usr/local/bin"
	cc -static -O2 -Wall -Wextra -Werror -o "$img/busybox/usr/local/bin/escape" \
		"$SBX_REPO"/tests/integration/escape/*.c || return 1
	export SBX_IMAGES="$img"
	: >"$BATS_FILE_TMPDIR/blocked"
	setup_sbx
	export E="esc${SBX_TAG}"
	sbx_create "$E"
	# A host file with a unique content, and the host's facts the attempts aim at.
	export SECRET_DIR="$SBX_TMP/host-secret"
	mkdir -p "$SECRET_DIR"
	echo "host-secret-$SBX_TAG" >"$SECRET_DIR/secret"
	export HOST_IF
	HOST_IF=$(ip -o route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	[[ -n "$HOST_IF" ]] || HOST_IF=$(ls /sys/class/net | grep -vx lo | head -n 1)
	[[ -n "$HOST_IF" ]] || HOST_IF=eth0
	export HOST_BLK=8:0 # a host disk, major:minor
	local b
	for b in /sys/block/*; do
		case ${b##*/} in loop* | ram* | zram* | nbd*) continue ;; esac
		[[ -r "$b/dev" ]] && HOST_BLK=$(cat "$b/dev") && break
	done
}

teardown_file() {
	teardown_sbx
	local n
	n=$(grep -c . "$BATS_FILE_TMPDIR/blocked" 2>/dev/null) || n=0
	echo "# escape: $n attempts blocked" >&3
}

# note DESCRIPTION: count one blocked attempt.
note() {
	echo "$*" >>"$BATS_FILE_TMPDIR/blocked"
}

# try_sh DESC CMD: run CMD in the sandbox; it must fail (non-zero, and not
# because the command is missing).
try_sh() {
	local desc=$1
	shift
	sbx_exec "${SBX_IN:-$E}" "$*" >/dev/null || return 1
	if [[ "$SBX_RC" == 0 || "$SBX_RC" == 126 || "$SBX_RC" == 127 ]]; then
		echo "ESCAPE? '$desc': '$*' exited $SBX_RC: $SBX_OUT" >&2
		return 1
	fi
	note "$desc"
}

# try_sh_msg DESC PATTERN CMD: as try_sh, and the output must match PATTERN
# (an ERE), so it failed for the right reason.
try_sh_msg() {
	local desc=$1 pat=$2
	shift 2
	try_sh "$desc" "$@" || return 1
	if ! grep -Eq -- "$pat" <<<"$SBX_OUT"; then
		echo "'$desc' failed, but not with /$pat/: $SBX_OUT" >&2
		return 1
	fi
}

# try ATTEMPT [ARGS]: run the helper; it must report `blocked` (exit 3).
try() {
	sbx_exec "${SBX_IN:-$E}" escape "$@" >/dev/null || return 1
	if [[ "$SBX_RC" != 3 || "$SBX_OUT" != blocked:* ]]; then
		echo "ESCAPE? escape $*: exit $SBX_RC: $SBX_OUT" >&2
		return 1
	fi
	note "escape $*"
}

# try_errno ERRNO-TEXT ATTEMPT [ARGS]: as try, with that errno.
try_errno() {
	local want=$1
	shift
	try "$@" || return 1
	if [[ "$SBX_OUT" != *"$want"* ]]; then
		echo "escape $* was blocked with '$SBX_OUT', expected '$want'" >&2
		return 1
	fi
}

@test "the sandbox runs under a seccomp filter and Docker's capability set" {
	sbx_exec "$E" 'grep -E "^(Seccomp|NoNewPrivs|CapEff|CapBnd):" /proc/self/status'
	[ "$SBX_RC" = 0 ]
	grep -Eq '^Seccomp:[[:space:]]+2$' <<<"$SBX_OUT"
	grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$SBX_OUT"
	# Docker's 14 capabilities: 0x00000000a80425fb
	grep -Eq '^CapEff:[[:space:]]+0*a80425fb$' <<<"$SBX_OUT"
	grep -Eq '^CapBnd:[[:space:]]+0*a80425fb$' <<<"$SBX_OUT"
}

@test "ordinary work still runs under the filter" {
	sbx_exec "$E" 'echo a | tr a b; (sleep 0 & wait); ls / >/dev/null; echo $((6 * 7))'
	[ "$SBX_RC" = 0 ]
	[ "$(tail -n 1 <<<"$SBX_OUT")" = 42 ]
	sbx_exec "$E" escape personality-query
	[ "$SBX_RC" = 0 ]
	# ping uses a raw AF_INET socket (CAP_NET_RAW is kept for it)
	sbx_exec "$E" 'ping -c 1 -W 2 127.0.0.1'
	[ "$SBX_RC" = 0 ]
	# a character node for a listed device works (mknod is allowed, as in Docker)
	sbx_exec "$E" 'mknod /root/null c 1 3 && echo hi > /root/null && rm /root/null'
	[ "$SBX_RC" = 0 ]
}

@test "mount and umount" {
	try_sh_msg "busybox mount tmpfs" 'not permitted|permission denied' 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m'
	try_sh_msg "busybox mount --bind /proc/1/root" 'not permitted|permission denied' 'mount --bind /proc/1/root /tmp'
	try_sh_msg "busybox umount /proc" 'not permitted' 'umount /proc'
	try_sh_msg "busybox umount -l /sys" 'not permitted' 'umount -l /sys'
	try_sh_msg "remount /sys read-write" 'not permitted|permission denied' 'mount -o remount,rw /sys'
	try_errno "not permitted" mount
	try_errno "not permitted" bind-proc
	try_errno "not permitted" umount
	try_errno "not permitted" fsopen
	try_errno "not permitted" open_tree
	# and the mounts are what sbx-init made
	sbx_exec "$E" 'cat /proc/mounts'
	! grep -q ' /tmp/m ' <<<"$SBX_OUT" || false
}

@test "pivot_root and chroot back out" {
	try_sh_msg "busybox pivot_root" 'not permitted|Operation' 'mkdir -p /tmp/new/old && cd /tmp/new && pivot_root . old'
	try_errno "not permitted" pivot_root
	# CAP_SYS_CHROOT is kept (Docker's set); walking up from a chroot ends at
	# the sandbox's own root, the host's is detached.
	try chroot "$SECRET_DIR/secret"
	sbx_exec "$E" 'cd / && cd .. && cd .. && pwd && ls /'
	[ "$SBX_RC" = 0 ]
	! grep -qx work <<<"$SBX_OUT" || false
}

@test "/proc/sysrq-trigger and /proc/sys" {
	if [[ -e /proc/sysrq-trigger ]]; then
		local before after
		before=$(dmesg 2>/dev/null | grep -c 'sysrq: HELP' || true)
		# runc's answer: /proc/sysrq-trigger is /dev/null inside, so the write
		# "works" and does nothing. What must fail is reaching the kernel: `h`
		# (help, harmless) would log "sysrq: HELP" on the host.
		sbx_exec "$E" 'stat -c %t:%T /proc/sysrq-trigger; echo h > /proc/sysrq-trigger'
		[ "$(head -n 1 <<<"$SBX_OUT")" = 1:3 ]
		after=$(dmesg 2>/dev/null | grep -c 'sysrq: HELP' || true)
		[ "$before" = "$after" ]
		note "sysrq-trigger (masked with /dev/null, no effect on the host)"
	else
		# a kernel without CONFIG_MAGIC_SYSRQ: nothing to reach
		try_sh "echo h > /proc/sysrq-trigger (absent on this kernel)" 'echo h > /proc/sysrq-trigger'
	fi
	try_sh "write /proc/sys/kernel/sysrq" 'cat /proc/sys/kernel/sysrq > /proc/sys/kernel/sysrq'
	# core_pattern is the classic way out (a pipe runs as root on the host);
	# the value written is the one already there
	try_sh "write /proc/sys/kernel/core_pattern" \
		'cat /proc/sys/kernel/core_pattern > /tmp/cp && cat /tmp/cp > /proc/sys/kernel/core_pattern'
	try_sh "remount /proc/sys read-write" 'mount -o remount,rw /proc/sys'
}

@test "kernel modules" {
	try_sh_msg "busybox insmod" 'not permitted' 'head -c 4096 /bin/busybox > /tmp/x.ko && insmod /tmp/x.ko'
	try_sh "busybox modprobe" 'modprobe -q dummy'
	try_errno "not permitted" init_module
	try_errno "not permitted" finit_module
	try_errno "not permitted" delete_module
}

@test "kexec and reboot" {
	try_errno "not permitted" kexec_load
	try_errno "not permitted" kexec_file_load
	try_errno "not permitted" reboot
	try_sh_msg "busybox reboot -f" 'not permitted|Operation' 'reboot -f'
	# the sandbox is still there
	[ "$(sbx_cat "$MNT/$E/status")" = running ]
}

@test "setting the clock" {
	# busybox date reports the failure but exits 0: check its message
	sbx_exec "$E" 'date -s "$(date "+%Y-%m-%d %H:%M:%S")"'
	grep -q "can't set date: Operation not permitted" <<<"$SBX_OUT" ||
		{ echo "date -s: $SBX_OUT" >&2; false; }
	note "date -s"
	try_errno "not permitted" settimeofday
	try_errno "not permitted" clock_settime
}

@test "mknod of a block device, and of a character device not in the list" {
	local maj=${HOST_BLK%%:*} min=${HOST_BLK##*:}
	try_sh_msg "mknod b $HOST_BLK in /" 'not permitted' "mknod /sda b $maj $min && head -c 512 /sda | wc -c"
	try_sh_msg "mknod b $HOST_BLK in /dev" 'not permitted' "mknod /dev/sda b $maj $min && head -c 512 /dev/sda | wc -c"
	try_sh "mknod b $HOST_BLK in /tmp" "mknod /tmp/sda b $maj $min && head -c 512 /tmp/sda | wc -c"
	try mknod-read /root/sda b "$maj" "$min"
	# /dev/kmsg: a node the sandbox makes must not write into the host's kernel log
	local mark="sbx-escape-kmsg-$SBX_TAG"
	try mknod-write /root/kmsg c 1 11 "'<6>$mark'"
	! dmesg 2>/dev/null | grep -q -- "$mark" || false
	# /dev/mem needs CAP_SYS_RAWIO as well
	try mknod-read /root/mem c 1 1
}

@test "raw and packet sockets on host interfaces" {
	sbx_exec "$E" 'ls /sys/class/net'
	[ "$SBX_OUT" = lo ]
	try_errno "not permitted" packet
	try raw-bind "$HOST_IF"
	try_errno "not permitted" vsock
	try_sh "ping through the host interface" "ping -c 1 -W 1 -I $HOST_IF 127.0.0.1"
}

@test "ptrace and memory of host processes" {
	# no host process is visible: only the sandbox's own pids in /proc
	sbx_exec "$E" 'for p in /proc/[0-9]*; do cat $p/comm; done'
	[ "$SBX_RC" = 0 ]
	! grep -qx -e sandboxfs -e bats -e systemd <<<"$SBX_OUT" || false
	[ "$(grep -c . <<<"$SBX_OUT")" -lt 10 ]
	sbx_exec "$E" "test -e /proc/$SBX_PID/exe && cat /proc/$SBX_PID/comm"
	[ "$SBX_OUT" != sandboxfs ]
	try ptrace "$SBX_PID"
	try ptrace 1
	try_errno "not permitted" ptrace-child
	try_errno "not permitted" process_vm_readv
	try_errno "not permitted" kcmp
	try_errno "not permitted" setns
}

@test "host files through /proc/*/root and /proc/*/cwd" {
	try_sh "cat /proc/*/root/HOSTPATH" "cat /proc/*/root$SECRET_DIR/secret"
	try_sh "cat /proc/*/cwd/HOSTPATH" "cat /proc/*/cwd$SECRET_DIR/secret"
	try_sh "cat /proc/1/root/../../HOSTPATH" "cat /proc/1/root/../../..$SECRET_DIR/secret"
	try_sh "ls the host repo through /proc/1/root" "ls /proc/1/root$SBX_REPO/Makefile"
	sbx_exec "$E" 'readlink /proc/1/root; readlink /proc/1/cwd'
	[ "$SBX_OUT" = "/
/" ]
	sbx_exec "$E" "grep -rl host-secret-$SBX_TAG /proc/1/root/tmp /proc/1/root/root 2>/dev/null"
	[ -z "$SBX_OUT" ]
}

@test "writing /sys" {
	try_sh "create a file in /sys" 'touch /sys/escape'
	try_sh "write /sys/kernel/uevent_helper" 'echo /tmp/x > /sys/kernel/uevent_helper'
	try_sh "write /sys/kernel/mm/ksm/run" 'cat /sys/kernel/mm/ksm/run > /sys/kernel/mm/ksm/run'
	try_sh "remount /sys read-write" 'mount -o remount,rw /sys'
	try_sh "mount cgroupfs (release_agent)" 'mkdir -p /tmp/cg && mount -t cgroup -o memory cgroup /tmp/cg'
}

@test "bpf, perf_event_open, keyctl, userfaultfd, io_uring" {
	try_errno "not permitted" bpf
	try_errno "not permitted" perf_event_open
	try_errno "not permitted" keyctl
	try_errno "not permitted" add_key
	try_errno "not permitted" request_key
	try_errno "not permitted" userfaultfd
	try_errno "not permitted" io_uring
	try_errno "not permitted" syslog
	try_sh "dmesg" 'dmesg'
	try_errno "not permitted" iopl
	try_errno "not permitted" swapon
	try_errno "not permitted" personality
}

@test "open_by_handle_at (shocker)" {
	try_errno "not permitted" name_to_handle_at
	try_errno "not permitted" open_by_handle_at /
	try_errno "not permitted" open_by_handle_at /etc/passwd
}

@test "unshare of a user namespace to regain capabilities" {
	try_sh_msg "unshare -U -r" 'not permitted' 'unshare -U -r cat /proc/self/status'
	try_sh_msg "unshare -U -m -r mount" 'not permitted' 'unshare -U -m -r mount -t tmpfs none /mnt'
	try_errno "not permitted" unshare-user
	try_errno "not permitted" unshare-mnt
	try_errno "not permitted" clone-user
	# clone3 answers ENOSYS so that libc falls back to clone
	try_errno "Function not implemented" clone3-user
}

@test "other ABIs are killed: x32 and 32-bit int 0x80" {
	sbx_exec "$E" escape x32
	[ "$SBX_RC" = 159 ] || { echo "x32: exit $SBX_RC: $SBX_OUT" >&2; false; }
	note "x32 syscall"
	sbx_exec "$E" escape int80
	# 159: SIGSYS from the filter; 139: the kernel has 32-bit emulation off
	[[ "$SBX_RC" == 159 || "$SBX_RC" == 139 ]] || { echo "int80: exit $SBX_RC: $SBX_OUT" >&2; false; }
	note "int 0x80 syscall"
}

@test "fork bomb beyond pids=32" {
	local B="bomb${SBX_TAG}"
	sbx_create_ctl "$B" pids=32 memory=128M
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
	note "fork bomb held at $cur of 32 pids"
	# the host and the other sandbox are fine
	run timeout 10 bash -c 'for i in $(seq 50); do /bin/true || exit 1; done'
	[ "$status" -eq 0 ]
	assert_healthy "$E"
	timeout 60 rmdir "$MNT/$B" || { tail -n 20 "$SBX_LOG" >&2; false; }
	[ ! -e "$MNT/$B" ]
}

@test "memory beyond memory=" {
	local M="mem${SBX_TAG}"
	sbx_create_ctl "$M" memory=64M
	sbx_exec "$M" escape alloc 512
	[ "$SBX_RC" = 137 ] || { echo "alloc 512M in a 64M sandbox: exit $SBX_RC: $SBX_OUT" >&2; false; }
	local peak
	peak=$(sbx_key "$MNT/$M/stats" memory_peak_bytes)
	[ "$peak" -le $((64 * 1024 * 1024)) ]
	[ "$(sbx_key "$MNT/$M/stats" oom_kills)" -ge 1 ]
	note "allocate 512M under memory=64M (OOM-killed, peak $peak)"
	assert_healthy "$M"
	timeout 60 rmdir "$MNT/$M" || { tail -n 20 "$SBX_LOG" >&2; false; }
}
