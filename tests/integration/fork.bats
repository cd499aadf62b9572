#!/usr/bin/env bats
# Fork and snapshots on the ns backend (issue 9): file-system fork, named
# checkpoints, all-or-nothing fork lines, and layers that go away with their
# last user. The qemu parts of issue 9 live in qemu.bats. Every test gets its
# own daemon, state dir and mount point; no assertion is on time.

load helpers

setup() {
	setup_sbx
	A="fk${SBX_TAG}a"
	B="fk${SBX_TAG}b"
	C="fk${SBX_TAG}c"
	D="fk${SBX_TAG}d"
	E="fk${SBX_TAG}e"
}

teardown() {
	teardown_sbx
}

# sx NAME CMD: exec CMD in NAME; fails unless it exits 0. Output in SBX_OUT.
sx() {
	sbx_exec "$1" "$2" >/dev/null || return 1
	[[ "$SBX_RC" == 0 ]] || {
		echo "sx $1: '$2' exited $SBX_RC: $SBX_OUT" >&2
		return 1
	}
}

# Layers and mounts of layers left in the state dir.
layers_left() {
	find "$STATE/layers" -mindepth 1 -maxdepth 1 2>/dev/null
	grep -F -- "$STATE/layers" /proc/mounts
	return 0
}

# Wait (bounded) until no layer is left.
wait_no_layers() {
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -z "$(layers_left)" ]] && return 0
		sleep 0.1
	done
	echo "layers left behind:" >&2
	layers_left >&2
	return 1
}

@test "fork: B and C are reserved at once, go creating -> running, with A's files; A runs on" {
	sbx_create "$A"
	sx "$A" "echo before-$SBX_TAG > /f1; mkdir -p /d/e; echo deep > /d/e/f"
	# A job that keeps running in A across the fork.
	exec {fd}<>"$MNT/$A/run"
	echo 'i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done' >&"$fd"
	job=$(timeout 10 head -n 1 <&"$fd" 2>/dev/null)
	exec {fd}>&-
	echo "fork $B $C" >"$MNT/$A/ctl"
	# Both exist as soon as the write returned.
	[ -d "$MNT/$B" ]
	[ -d "$MNT/$C" ]
	for x in "$B" "$C"; do
		st=$(sbx_cat "$MNT/$x/status")
		[[ "$st" == creating || "$st" == running ]]
	done
	wait_status "$B" running
	wait_status "$C" running
	sbx_pid_of "$B" >/dev/null
	sbx_pid_of "$C" >/dev/null
	for x in "$B" "$C"; do
		sx "$x" 'cat /f1; cat /d/e/f'
		[ "$SBX_OUT" = "before-$SBX_TAG"$'\n'deep ]
		# A fresh init: the source's jobs are not copied.
		[ "$(ls "$MNT/$x/jobs" | wc -l)" -eq 0 ]
	done
	# The source runs again (not left frozen) and its job goes on.
	[ "$(sbx_cat "$MNT/$A/status")" = running ]
	[ "$(sbx_cat "$MNT/$A/jobs/$job/status")" = running ]
	c1=$(cat "$MNT/$A/root/tmp/counter")
	for ((i = 0; i < 100; i++)); do
		c2=$(cat "$MNT/$A/root/tmp/counter")
		[ "$c2" != "$c1" ] && break
		sleep 0.1
	done
	[ "$c2" != "$c1" ]
	echo kill >"$MNT/$A/jobs/$job/ctl"
	assert_healthy "$A"
}

@test "fork: later writes diverge in both directions and between siblings" {
	sbx_create "$A"
	sx "$A" 'echo v0 > /shared; echo keep > /keep'
	echo "fork $B $C" >"$MNT/$A/ctl"
	wait_status "$B" running
	wait_status "$C" running
	sx "$A" 'echo a-after > /shared; echo x > /only-a; rm /keep'
	sx "$B" 'echo b-after > /shared; echo x > /only-b'
	sx "$A" 'cat /shared; ls /'
	grep -qx a-after <<<"$SBX_OUT"
	! grep -qx only-b <<<"$SBX_OUT" || false
	sx "$B" 'cat /shared; cat /keep; ls /'
	grep -qx b-after <<<"$SBX_OUT"
	grep -qx keep <<<"$SBX_OUT"
	! grep -qx only-a <<<"$SBX_OUT" || false
	sx "$C" 'cat /shared; cat /keep; ls /'
	grep -qx v0 <<<"$SBX_OUT"
	grep -qx keep <<<"$SBX_OUT"
	! grep -qx only-a <<<"$SBX_OUT" || false
	! grep -qx only-b <<<"$SBX_OUT" || false
	# Seen from the host, too.
	[ "$(cat "$MNT/$C/root/shared")" = v0 ]
}

@test "fork: stats of a child: parent, fork_mode fs, generation and phase timings" {
	sbx_create_ctl "$A" memory=96M
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	[ "$(sbx_key "$MNT/$B/stats" parent)" = "$A" ]
	[ "$(sbx_key "$MNT/$B/stats" fork_mode)" = fs ]
	for k in fork_generation fork_freeze_usec fork_checkpoint_usec fork_restore_usec fork_usec; do
		v=$(sbx_key "$MNT/$B/stats" "$k")
		[[ "$v" =~ ^[0-9]+$ ]] || {
			echo "$k is '$v'"
			false
		}
	done
	[ "$(sbx_key "$MNT/$B/stats" fork_generation)" -ge 1 ]
	# The child has the source's limits; config names the parent.
	run sbx_cat "$MNT/$B/config"
	[ "$status" -eq 0 ]
	[ "$(jq -r .memory <<<"$output")" = "$(jq -r .memory <<<"$(sbx_cat "$MNT/$A/config")")" ]
	jq -e --arg a "$A" '.parent == $a' <<<"$output" >/dev/null
	# A fork of the fork is a later generation.
	echo "fork $C" >"$MNT/$B/ctl"
	wait_status "$C" running
	[ "$(sbx_key "$MNT/$C/stats" parent)" = "$B" ]
	[ "$(sbx_key "$MNT/$C/stats" fork_generation)" -gt "$(sbx_key "$MNT/$B/stats" fork_generation)" ]
}

@test "fork: fork_checkpoint_usec (the copy of the files) lies within fork_freeze_usec, within fork_usec" {
	sbx_create "$A"
	sx "$A" 'echo x > /x'
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	run sbx_cat "$MNT/$B/stats"
	[ "$status" -eq 0 ]
	copy=$(awk '$1 == "fork_checkpoint_usec" { print $2 }' <<<"$output")
	freeze=$(awk '$1 == "fork_freeze_usec" { print $2 }' <<<"$output")
	total=$(awk '$1 == "fork_usec" { print $2 }' <<<"$output")
	echo "# copy $copy us, freeze $freeze us, fork $total us"
	[[ "$copy" =~ ^[0-9]+$ && "$freeze" =~ ^[0-9]+$ && "$total" =~ ^[0-9]+$ ]]
	[ "$copy" -le "$freeze" ]
	[ "$freeze" -le "$total" ]
}

# frozen NAME: sandbox NAME's cgroup is frozen (v1 freezer or v2).
frozen() {
	local d
	for d in /sys/fs/cgroup/freezer/sandboxfs/*-"$1" /sys/fs/cgroup/sandboxfs/*-"$1"; do
		[[ -f "$d/freezer.state" ]] && { [[ "$(cat "$d/freezer.state")" == FROZEN ]]; return; }
		[[ -f "$d/cgroup.freeze" ]] && { [[ "$(cat "$d/cgroup.freeze")" == 1 ]]; return; }
	done
	return 1
}

# until_frozen NAME COMMAND...: COMMAND (a fork or snapshot of NAME) in the
# background, its pid in $pid; returns once NAME is frozen for its copy
# (bounded).
until_frozen() {
	local name=$1 i
	shift
	"$@" 3>&- &
	pid=$!
	sbx_bg_note "$pid"
	for ((i = 0; i < 1000; i++)); do
		frozen "$name" && return 0
		sleep 0.01
	done
	frozen "$name"
}

@test "fork: the copy of a large upper layer holds no lock readers need: stats, jobs and status answer while the source is frozen for it" {
	sbx_create "$A"
	# Many files and a large one: a copy of a second or more here.
	sx "$A" 'mkdir /many && cd /many && i=0 && while [ $i -lt 30000 ]; do : >f$i; i=$((i + 1)); done && dd if=/dev/zero of=/big bs=1M count=300 2>/dev/null'
	n=$(sbx_run "$A" 'echo hi')
	wait_job "$A" "$n" exited
	until_frozen "$A" sbx_write "$MNT/$A/ctl" "fork $B"
	# Answered while the copy runs: the source is still frozen afterwards
	# (a read that waited for the copy would come back after the thaw).
	run timeout 10 cat "$MNT/$A/stats"
	[ "$status" -eq 0 ]
	[[ "$output" == *"state running"* ]]
	run timeout 10 cat "$MNT/$A/jobs/$n/status"
	[ "$output" = exited ]
	run timeout 10 cat "$MNT/$A/status"
	[ "$output" = running ]
	frozen "$A"
	wait "$pid"
	wait_status "$B" running
	sx "$B" 'ls /many | wc -l'
	[ "$(tr -d ' ' <<<"$SBX_OUT")" = 30000 ]
	run frozen "$A"
	[ "$status" -ne 0 ]
	assert_healthy "$A"
}

@test "snapshot: the copy of a large upper layer holds no FUSE thread: on one, the mount answers while the source is frozen for it" {
	# One FUSE thread: a mkdir of a snapshot that held it for its copy
	# (as long as the sandbox's files make it) would leave none to answer.
	sbx_stop_daemon
	sbx_start_daemon --fuse-threads 1
	sbx_create "$A"
	sx "$A" 'mkdir /many && cd /many && i=0 && while [ $i -lt 30000 ]; do : >f$i; i=$((i + 1)); done && dd if=/dev/zero of=/big bs=1M count=300 2>/dev/null'
	until_frozen "$A" mkdir "$MNT/$A/snapshots/s1"
	run timeout 10 cat "$MNT/$A/status"
	[ "$output" = running ]
	run timeout 10 ls "$MNT"
	grep -qx "$A" <<<"$output"
	frozen "$A" # answered while the copy runs
	wait "$pid"
	[ -d "$MNT/$A/snapshots/s1" ]
	run frozen "$A"
	[ "$status" -ne 0 ]
	# Taken whole: a fork from it has the files.
	echo "fork $B from=s1" >"$MNT/$A/ctl"
	wait_status "$B" running
	sx "$B" 'ls /many | wc -l'
	[ "$(tr -d ' ' <<<"$SBX_OUT")" = 30000 ]
	rmdir "$MNT/$A/snapshots/s1"
	[ ! -e "$MNT/$A/snapshots/s1" ]
}

@test "fork: the line is all or nothing (a taken or bad name creates none)" {
	sbx_create "$A"
	sbx_create "$E"
	run sbx_write "$MNT/$A/ctl" "fork $B $E"
	assert_fails_with "File exists"
	[ ! -e "$MNT/$B" ]
	run sbx_write "$MNT/$A/ctl" "fork $B $A"
	assert_fails_with "File exists"
	[ ! -e "$MNT/$B" ]
	run sbx_write "$MNT/$A/ctl" "fork $B bad*name"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/$B" ]
	run sbx_write "$MNT/$A/ctl" "fork $B .hidden"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/$B" ]
	run sbx_write "$MNT/$A/ctl" "fork $B ctl"
	assert_fails_with "File exists|Invalid argument"
	[ ! -e "$MNT/$B" ]
	run sbx_write "$MNT/$A/ctl" "fork $B $B"
	assert_fails_with "File exists|Invalid argument"
	[ ! -e "$MNT/$B" ]
	run sbx_write "$MNT/$A/ctl" "fork"
	assert_fails_with "Invalid argument"
	# Each failure says why.
	[ -n "$(sbx_cat "$MNT/$A/error")" ]
	# Nothing but A and E, and A unharmed and not frozen.
	[ "$(sbx_key "$MNT/stats" sandboxes)" -eq 2 ]
	assert_healthy "$A"
	[ -z "$(layers_left)" ] || wait_no_layers
}

@test "fork: a paused source can be forked and stays paused" {
	sbx_create "$A"
	sx "$A" 'echo p > /p'
	echo pause >"$MNT/$A/ctl"
	wait_status "$A" paused
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	sx "$B" 'cat /p'
	[ "$SBX_OUT" = p ]
	[ "$(sbx_cat "$MNT/$A/status")" = paused ]
	echo resume >"$MNT/$A/ctl"
	wait_status "$A" running
	assert_healthy "$A"
}

@test "fork: a stopped source without from= is EBUSY; from= an unknown snapshot is ENOENT" {
	sbx_create "$A"
	run sbx_write "$MNT/$A/ctl" "fork $B from=nosuch"
	assert_fails_with "No such file or directory"
	[ ! -e "$MNT/$B" ]
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	run sbx_write "$MNT/$A/ctl" "fork $B"
	assert_fails_with "Device or resource busy"
	[ ! -e "$MNT/$B" ]
	[ -n "$(sbx_cat "$MNT/$A/error")" ]
	run sbx_write "$MNT/$A/ctl" "fork $B from=nosuch"
	assert_fails_with "No such file or directory"
	[ ! -e "$MNT/$B" ]
	run mkdir "$MNT/$A/snapshots/s1"
	assert_fails_with "Device or resource busy"
}

@test "snapshots: mkdir takes a named checkpoint; fork from= it gets its files, also after the source stopped" {
	sbx_create "$A"
	sx "$A" 'echo at-snap > /s'
	mkdir "$MNT/$A/snapshots/s1"
	run ls "$MNT/$A/snapshots"
	[ "$status" -eq 0 ]
	[ "$output" = s1 ]
	[ -d "$MNT/$A/snapshots/s1" ]
	sx "$A" 'echo after-snap > /s; echo late > /late'
	echo "fork $B from=s1" >"$MNT/$A/ctl"
	wait_status "$B" running
	sx "$B" 'cat /s; ls /'
	grep -qx at-snap <<<"$SBX_OUT"
	! grep -qx late <<<"$SBX_OUT" || false
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	echo "fork $C $D from=s1" >"$MNT/$A/ctl"
	wait_status "$C" running
	wait_status "$D" running
	sx "$C" 'cat /s'
	[ "$SBX_OUT" = at-snap ]
	sx "$D" 'cat /s'
	[ "$SBX_OUT" = at-snap ]
	[ "$(sbx_cat "$MNT/$A/status")" = stopped ]
	# A second snapshot with the same name is EEXIST; a bad name EINVAL.
	echo start >"$MNT/$A/ctl"
	wait_status "$A" running
	run mkdir "$MNT/$A/snapshots/s1"
	assert_fails_with "File exists"
	run mkdir "$MNT/$A/snapshots/.x"
	assert_fails
}

@test "snapshots: rmdir drops one while its children keep their files" {
	sbx_create "$A"
	sx "$A" 'echo snapfile > /s'
	mkdir "$MNT/$A/snapshots/s1"
	mkdir "$MNT/$A/snapshots/s2"
	echo "fork $B from=s1" >"$MNT/$A/ctl"
	wait_status "$B" running
	rmdir "$MNT/$A/snapshots/s1"
	run ls "$MNT/$A/snapshots"
	[ "$status" -eq 0 ]
	[ "$output" = s2 ]
	run sbx_write "$MNT/$A/ctl" "fork $C from=s1"
	assert_fails_with "No such file or directory"
	[ ! -e "$MNT/$C" ]
	sx "$B" 'cat /s'
	[ "$SBX_OUT" = snapfile ]
	# The child still reads and writes after the source is gone too.
	rmdir "$MNT/$A"
	sx "$B" 'cat /s; echo more >> /s; cat /s'
	[ "$SBX_OUT" = snapfile$'\n'snapfile$'\n'more ]
	rmdir "$MNT/$B"
	wait_no_layers
}

@test "layers: removing the source before its children leaves no layer or mount" {
	sbx_create "$A"
	sx "$A" 'echo x > /x'
	mkdir "$MNT/$A/snapshots/s1"
	echo "fork $B $C" >"$MNT/$A/ctl"
	wait_status "$B" running
	wait_status "$C" running
	echo "fork $D from=s1" >"$MNT/$A/ctl"
	wait_status "$D" running
	[ -n "$(find "$STATE/layers" -mindepth 1 -maxdepth 1)" ]
	pa=$(sbx_pid_of "$A")
	rmdir "$MNT/$A"
	wait_no_leaks "$A" "$pa"
	for x in "$B" "$C" "$D"; do
		sx "$x" 'cat /x'
		[ "$SBX_OUT" = x ]
	done
	for x in "$B" "$C" "$D"; do
		p=$(sbx_pid_of "$x")
		rmdir "$MNT/$x"
		wait_no_leaks "$x" "$p"
	done
	wait_no_layers
}

@test "layers: removing the children before the source leaves no layer or mount" {
	sbx_create "$A"
	sx "$A" 'echo x > /x'
	mkdir "$MNT/$A/snapshots/s1"
	echo "fork $B $C" >"$MNT/$A/ctl"
	wait_status "$B" running
	wait_status "$C" running
	echo "fork $D from=s1" >"$MNT/$A/ctl"
	wait_status "$D" running
	for x in "$D" "$C" "$B"; do
		p=$(sbx_pid_of "$x")
		rmdir "$MNT/$x"
		wait_no_leaks "$x" "$p"
	done
	sx "$A" 'cat /x'
	[ "$SBX_OUT" = x ]
	pa=$(sbx_pid_of "$A")
	rmdir "$MNT/$A"
	wait_no_leaks "$A" "$pa"
	wait_no_layers
}

@test "layers: a fork of a fork, removed in the middle first, leaves no layer" {
	sbx_create "$A"
	sx "$A" 'echo g0 > /g'
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	sx "$B" 'echo g1 >> /g'
	echo "fork $C" >"$MNT/$B/ctl"
	wait_status "$C" running
	rmdir "$MNT/$B"
	sx "$C" 'cat /g'
	[ "$SBX_OUT" = g0$'\n'g1 ]
	rmdir "$MNT/$A"
	sx "$C" 'cat /g'
	[ "$SBX_OUT" = g0$'\n'g1 ]
	rmdir "$MNT/$C"
	wait_no_layers
}

# The files a sandbox sees under / that the test wrote (path and content).
view() {
	sx "$1" 'for f in /g0 /g1 /g2 /g3 /del /d/x /d/y; do [ -e $f ] && echo "$f $(cat $f)"; done; true'
	echo "$SBX_OUT"
}

@test "layers: a deep chain is flattened in the background; later children stack on it and see the same files" {
	sbx_create "$A"
	sx "$A" 'echo a > /g0; echo doomed > /del; mkdir /d; echo ax > /d/x'
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	sx "$B" 'echo b > /g1; rm /del; rm -r /d; mkdir /d; echo by > /d/y'
	echo "fork $C" >"$MNT/$B/ctl"
	wait_status "$C" running
	sx "$C" 'echo c > /g2; echo c0 > /g0'
	echo "fork $D" >"$MNT/$C/ctl"
	wait_status "$D" running
	sx "$D" 'echo d > /g3'
	# D stacks on 3 layers: its fork uses the chain and starts a flatten.
	echo "fork $E" >"$MNT/$D/ctl"
	wait_status "$E" running
	for ((i = 0; i < 100; i++)); do
		flat=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["flat"] or "")' "$MNT/$D/config")
		[ -n "$flat" ] && break
		sleep 0.1
	done
	[ -n "$flat" ] || { echo "D's chain was not flattened"; false; }
	[ -d "$STATE/layers/$flat" ]
	F="fk${SBX_TAG}f"
	echo "fork $F" >"$MNT/$D/ctl"
	wait_status "$F" running
	nl_e=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["layers"]))' "$MNT/$E/config")
	nl_f=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["layers"]))' "$MNT/$F/config")
	[ "$nl_e" -eq 4 ]
	[ "$nl_f" -eq 2 ]
	want=$(printf '/g0 c0\n/g1 b\n/g2 c\n/g3 d\n/d/y by')
	[ "$(view "$E")" = "$want" ]
	[ "$(view "$F")" = "$want" ]
	# The flattened layer lives while D or F use it; nothing is left after.
	for n in "$A" "$B" "$C" "$D"; do rmdir "$MNT/$n"; done
	[ -d "$STATE/layers/$flat" ]
	[ "$(view "$F")" = "$want" ]
	rmdir "$MNT/$E" "$MNT/$F"
	wait_no_layers
}

@test "standby on ns is EOPNOTSUPP with a sentence" {
	sbx_create "$A"
	run sbx_write "$MNT/$A/ctl" standby
	assert_fails_with "Operation not supported"
	run sbx_cat "$MNT/$A/error"
	[ "$status" -eq 0 ]
	[ "$(wc -w <<<"$output")" -ge 3 ]
	assert_healthy "$A"
}
