#!/usr/bin/env bats
# disk=SIZE (issue 15, item 6): an ns sandbox's own disk. Its upper layer,
# its jobs' output and its console live on an ext4 image of SIZE on a loop
# device, so a write past SIZE gets ENOSPC inside, the sandbox's error says
# so and events show disk_full 1; other sandboxes and the daemon go on. A
# fork's child gets a disk of its own; stop/start, a kill -9 of the daemon
# and rmdir keep or release it without leaking a mount or a loop device.
# And the cap on the jobs one sandbox keeps (--max-jobs).
#
# Every test starts its own daemon on its own state dir. No assertion is on
# time: sleeps and loops are bounds.

load helpers

setup() {
	sbx_make_tmp
	A="dk${SBX_TAG}a"
	B="dk${SBX_TAG}b"
	C="dk${SBX_TAG}c"
}

teardown() {
	teardown_sbx_readopt sbx_start_daemon_keep
}

# Loop devices whose image is under this test's state dir, one a line.
our_loops() {
	losetup -a 2>/dev/null | grep -F -- "$STATE/" || true
}

# Mounts of this test's sandboxes' disks (mountinfo field 5 is the mount point).
our_disk_mounts() {
	awk -v p="$STATE/sandboxes/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo
}

# wait_key FILE KEY VALUE: until FILE's KEY reads VALUE (bounded).
wait_key() {
	local i v=""
	for ((i = 0; i < 50; i++)); do
		v=$(sbx_key "$1" "$2" 2>/dev/null) && [[ "$v" == "$3" ]] && return 0
		sleep 0.1
	done
	echo "$1: $2 is '$v', wanted '$3'" >&2
	return 1
}

# wait_gone CMD...: until CMD prints nothing (bounded); prints what is left.
wait_gone() {
	local i out
	for ((i = 0; i < 50; i++)); do
		out=$("$@")
		[[ -z "$out" ]] && return 0
		sleep 0.1
	done
	printf 'left: %s\n' "$out" >&2
	return 1
}

@test "disk=16M: a write past it gets ENOSPC inside; error, events and stats say so; others go on" {
	sbx_start_daemon
	sbx_create_ctl "$A" disk=16M
	sbx_create "$B"
	[ "$(sbx_key "$MNT/$A/stats" disk_limit_bytes)" = 16777216 ]
	[ "$(sbx_key "$MNT/$B/stats" disk_limit_bytes)" = 0 ]
	[ "$(sbx_cat "$MNT/$A/config" | jq .disk)" = 16777216 ]
	[ "$(sbx_cat "$MNT/$B/config" | jq .disk)" = 0 ]
	[ "$(sbx_key "$MNT/$A/events" disk_full)" = 0 ]
	# The sandbox sees its disk as the size of its root.
	sbx_exec "$A" "df -k / | awk 'NR == 2 { print \$2 }'"
	[ "$SBX_RC" = 0 ]
	[ "$SBX_OUT" -le 16384 ]
	[ "$SBX_OUT" -ge 12288 ]
	sbx_exec "$A" 'dd if=/dev/zero of=/big bs=64k count=512; echo "rc $?"'
	[[ "$SBX_OUT" == *"No space left on device"* ]]
	[[ "$SBX_OUT" == *"rc 1" ]]
	wait_key "$MNT/$A/events" disk_full 1
	[[ "$(sbx_cat "$MNT/$A/error")" == *"disk of sandbox $A is full (disk=16M"*"ENOSPC"* ]]
	used=$(sbx_key "$MNT/$A/stats" disk_used_bytes)
	[ "$used" -le 16777216 ]
	[ "$used" -ge 12000000 ]
	# The host holds at most the image's size for it.
	[ "$(du -k "$STATE/sandboxes/$A/disk.img" | cut -f1)" -le 16384 ]
	# The daemon and the other sandbox go on; B has no such limit.
	assert_healthy "$A"
	sbx_exec "$B" 'dd if=/dev/zero of=/big bs=64k count=512 2>/dev/null; echo "rc $?"; rm /big'
	[ "$SBX_OUT" = "rc 0" ]
	assert_healthy "$B"
	# Room again: events say so.
	sbx_exec "$A" 'rm /big; echo "rc $?"'
	[ "$SBX_OUT" = "rc 0" ]
	wait_key "$MNT/$A/events" disk_full 0
}

@test "disk=: a job's output and the console count against the disk, the daemon stays up" {
	sbx_start_daemon
	sbx_create_ctl "$A" disk=16M
	# 24 MB of stdout: joblog= (16M) would keep it, the disk cannot.
	n=$(sbx_run "$A" 'dd if=/dev/zero bs=64k count=384 2>/dev/null; echo done >&2')
	wait_job "$A" "$n" exited
	size=$(stat -c %s "$STATE/sandboxes/$A/jobs/$n/stdout")
	[ "$size" -le 16777216 ]
	[ "$size" -ge 8000000 ]
	wait_key "$MNT/$A/events" disk_full 1
	# The console too: a flood of it is dropped, not stored past the disk.
	sbx_exec "$A" 'i=0; while [ $i -lt 2000 ]; do echo "console line $i"; i=$((i+1)); done > /proc/1/fd/1; echo sent'
	[ "$SBX_OUT" = sent ]
	[ "$(du -k "$STATE/sandboxes/$A/disk.img" | cut -f1)" -le 16384 ]
	# Room again once the job is gone, and the log says why once, not per write.
	rmdir "$MNT/$A/jobs/$n"
	wait_key "$MNT/$A/events" disk_full 0
	[ "$(grep -c "console.*cannot be written" "$SBX_LOG")" -le 2 ]
	assert_healthy "$A"
}

@test "bad disk= values are refused with a sentence; disk= on qemu is EOPNOTSUPP; disk=none is none" {
	sbx_start_daemon
	for v in 0 abc 1K 3M -1 16M5 17T ''; do
		run sbx_write "$MNT/ctl" "create $A disk=$v"
		assert_fails_with "Invalid argument"
		[ ! -e "$MNT/$A" ]
	done
	[[ "$(sbx_cat "$MNT/error")" == *"disk=1K is below the minimum of 4M"* ]]
	[[ "$(sbx_cat "$MNT/error")" == *"disk=abc is not a size"* ]]
	run sbx_write "$MNT/ctl" "create $A backend=qemu disk=16M"
	assert_fails_with "Operation not supported"
	[ ! -e "$MNT/$A" ]
	[[ "$(sbx_cat "$MNT/error")" == *"disk= is for ns sandboxes"* ]]
	sbx_create_ctl "$A" disk=none
	[ "$(sbx_cat "$MNT/$A/config" | jq .disk)" = 0 ]
	[ ! -e "$STATE/sandboxes/$A/disk.img" ]
	[ -d "$STATE/sandboxes/$A/upper" ]
	assert_healthy "$A"
}

@test "--disk SIZE is the default of ns creates that name none; disk= overrides it" {
	sbx_start_daemon --disk 8M
	sbx_create "$A"
	[ "$(sbx_cat "$MNT/$A/config" | jq .disk)" = 8388608 ]
	sbx_create_ctl "$B" disk=none
	[ "$(sbx_cat "$MNT/$B/config" | jq .disk)" = 0 ]
	sbx_create_ctl "$C" disk=12M
	[ "$(sbx_cat "$MNT/$C/config" | jq .disk)" = 12582912 ]
	sbx_exec "$A" 'dd if=/dev/zero of=/big bs=64k count=256; echo "rc $?"'
	[[ "$SBX_OUT" == *"No space left on device"* ]]
	[[ "$SBX_OUT" == *"rc 1" ]]
}

@test "a bad --disk stops the daemon before it mounts, with a sentence" {
	run "$SANDBOXFS" -f --state "$STATE" --images "$SBX_IMAGES" --disk 1K "$MNT"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--disk: disk=1K is below the minimum of 4M"* ]]
	run "$SANDBOXFS" -f --state "$STATE" --images "$SBX_IMAGES" --max-jobs 0 "$MNT"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--max-jobs must be"* ]]
}

@test "fork of a disk-limited sandbox: the child has the files and a disk of its own" {
	sbx_start_daemon
	sbx_create_ctl "$A" disk=16M
	sbx_exec "$A" 'dd if=/dev/zero of=/half bs=64k count=96 2>/dev/null; echo kept > /note; sync; echo "rc $?"'
	[ "$SBX_OUT" = "rc 0" ]
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	sbx_pid_of "$B" >/dev/null
	[ "$(sbx_cat "$MNT/$B/config" | jq .disk)" = 16777216 ]
	sbx_exec "$B" 'cat /note; ls -l /half | awk "{ print \$5 }"'
	[ "$SBX_OUT" = $'kept\n6291456' ]
	# Its own disk: the layer under it does not count, its own writes do.
	sbx_exec "$B" 'dd if=/dev/zero of=/big bs=64k count=512; echo "rc $?"'
	[[ "$SBX_OUT" == *"No space left on device"* ]]
	[[ "$SBX_OUT" == *"rc 1" ]]
	[ -n "$(our_disk_mounts | grep -F "/$B/disk")" ]
	# The source is not touched by its child's writes.
	sbx_exec "$A" 'rm /half; dd if=/dev/zero of=/more bs=64k count=96 2>/dev/null; echo "rc $?"'
	[ "$SBX_OUT" = "rc 0" ]
	# A snapshot of it, and a fork from that.
	mkdir "$MNT/$A/snapshots/s1"
	echo "fork $C from=s1" >"$MNT/$A/ctl"
	wait_status "$C" running
	sbx_pid_of "$C" >/dev/null
	sbx_exec "$C" 'cat /note; ls /more'
	[ "$SBX_OUT" = $'kept\n/more' ]
}

@test "stop, start and rmdir: the disk stays with its files, then leaves no mount and no loop device" {
	sbx_start_daemon
	[ -z "$(our_loops)" ]
	sbx_create_ctl "$A" disk=16M
	sbx_create_ctl "$B" disk=16M
	[ "$(our_loops | wc -l)" = 2 ]
	[ "$(our_disk_mounts | wc -l)" = 2 ]
	grep -q "create_disk_usec" "$MNT/$A/stats"
	n=$(sbx_run "$A" 'echo from-a-job')
	wait_job "$A" "$n" exited
	sbx_exec "$A" 'echo persisted > /file; echo "rc $?"'
	[ "$SBX_OUT" = "rc 0" ]
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = from-a-job ]
	echo start >"$MNT/$A/ctl"
	wait_status "$A" running
	sbx_pid_of "$A" >/dev/null
	sbx_exec "$A" 'cat /file; dd if=/dev/zero of=/big bs=64k count=512 2>&1 | grep -c "No space"'
	[ "$SBX_OUT" = $'persisted\n1' ]
	[ "$(our_loops | wc -l)" = 2 ]
	# rmdir of a running one and of a stopped one.
	echo stop >"$MNT/$B/ctl"
	wait_status "$B" stopped
	rmdir "$MNT/$A" "$MNT/$B"
	wait_gone our_loops
	wait_gone our_disk_mounts
	wait_no_leaks "$A"
	wait_no_leaks "$B"
}

@test "the daemon killed (-9) and restarted: a re-adopted sandbox keeps its disk, limit and jobs" {
	sbx_start_daemon_keep
	sbx_create_ctl "$A" disk=16M
	n=$(sbx_run "$A" 'echo before-restart')
	wait_job "$A" "$n" exited
	sbx_exec "$A" 'echo survived > /file; echo "rc $?"'
	[ "$SBX_OUT" = "rc 0" ]
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	[ "$(our_disk_mounts | wc -l)" = 1 ]
	sbx_start_daemon_keep
	[ "$(sbx_cat "$MNT/$A/status")" = running ]
	[ "$(sbx_cat "$MNT/$A/config" | jq .disk)" = 16777216 ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = before-restart ]
	sbx_exec "$A" 'cat /file; dd if=/dev/zero of=/big bs=64k count=512 2>&1 | grep -c "No space"'
	[ "$SBX_OUT" = $'survived\n1' ]
	wait_key "$MNT/$A/events" disk_full 1
	[ "$(our_loops | wc -l)" = 1 ]
	rmdir "$MNT/$A"
	wait_gone our_loops
	wait_gone our_disk_mounts
}

@test "after a reboot (its disk unmounted) a new daemon mounts it again: jobs, console and files are back" {
	sbx_start_daemon
	sbx_create_ctl "$A" disk=16M
	n=$(sbx_run "$A" 'echo before-reboot')
	wait_job "$A" "$n" exited
	sbx_exec "$A" 'echo on-disk > /file; echo console-line > /proc/1/fd/1; sync; echo "rc $?"'
	[ "$SBX_OUT" = "rc 0" ]
	for ((i = 0; i < 50; i++)); do # the pump drains the console pipe (bounded wait)
		grep -q console-line "$STATE/sandboxes/$A/console.log" 2>/dev/null && break
		sleep 0.1
	done
	sbx_stop_daemon # --stop-on-exit: the sandbox is stopped, its disk stays mounted
	[ "$(our_disk_mounts | wc -l)" = 1 ]
	umount "$STATE/sandboxes/$A/disk"
	wait_gone our_loops
	[ ! -e "$STATE/sandboxes/$A/jobs/$n" ]
	sbx_start_daemon
	[ "$(our_disk_mounts | wc -l)" = 1 ]
	[ "$(sbx_cat "$MNT/$A/status")" = stopped ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = before-reboot ]
	grep -q console-line "$STATE/sandboxes/$A/console.log"
	echo start >"$MNT/$A/ctl"
	wait_status "$A" running
	sbx_pid_of "$A" >/dev/null
	sbx_exec "$A" 'cat /file'
	[ "$SBX_OUT" = on-disk ]
}

@test "--max-jobs: a run past the jobs a sandbox keeps is EAGAIN with a sentence; rmdir of one makes room" {
	sbx_start_daemon --max-jobs 3
	sbx_create "$A"
	for i in 1 2 3; do
		n=$(sbx_run "$A" "echo job-$i")
		wait_job "$A" "$n" exited
	done
	run sbx_write "$MNT/$A/run" 'echo one too many'
	assert_fails_with "Resource temporarily unavailable"
	[[ "$(sbx_cat "$MNT/$A/error")" == *"keeps 3 jobs, the most one sandbox may (--max-jobs)"* ]]
	run ls "$MNT/$A/jobs"
	[ "$(wc -l <<<"$output")" = 3 ]
	rmdir "$MNT/$A/jobs/1"
	n=$(sbx_run "$A" 'echo room')
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = room ]
	assert_healthy "$A"
}
