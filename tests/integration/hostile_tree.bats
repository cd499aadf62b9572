#!/usr/bin/env bats
# A hostile sandbox's files against fork and snapshots (issue 15, items 1
# and 3): a tree 10 000 levels deep, a 1 TB sparse file, hard links, a FIFO,
# a setuid file, a whiteout and a link to a host file are copied by the one
# tree walker (vmm/copy.c) without a crash, as small on the host as in the
# sandbox, and the source is never left frozen: not after a fork, not after a
# fork that does not fit on the state disk, not after a daemon that died with
# it frozen. ns backend.
#
# Every test starts its own daemon on its own state dir and mount point. No
# assertion is on time: loops and timeouts are bounds, never measured.

load helpers

# Deep trees make every step slow on a slow disk (freeing 10 000 directory
# blocks takes this host's disk 20 s): generous bounds, never asserted on.
SBX_EXEC_WAIT=300

setup() {
	sbx_make_tmp
	A="ht${SBX_TAG}a"
	B="ht${SBX_TAG}b"
	C="ht${SBX_TAG}c"
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

# A shell snippet (for inside a sandbox) that sets $p to 1 000 levels d/d/...
# (2 000 characters, under PATH_MAX): ten `cd $p` go 10 000 levels down.
DEEP_P='p=d; i=1; while [ $i -lt 1000 ]; do p=$p/d; i=$((i+1)); done'

# The cgroup freezer file of the sandbox whose init is PID (v1 or v2).
freezer_file() {
	local path
	path=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$1/cgroup")
	if [[ -n "$path" ]]; then
		echo "/sys/fs/cgroup/freezer$path/freezer.state"
		return 0
	fi
	path=$(awk -F: '$1 == "0" { print $3 }' "/proc/$1/cgroup")
	[[ -n "$path" ]] || return 1
	echo "/sys/fs/cgroup$path/cgroup.freeze"
}

# FROZEN or THAWED: the freezer state of sandbox NAME.
freezer_state() {
	local pid f
	pid=$(sbx_pid_of "$1") || return 1
	f=$(freezer_file "$pid") || return 1
	case "$(cat "$f")" in
	THAWED | 0) echo THAWED ;;
	*) echo FROZEN ;;
	esac
}

# The daemon is alive, the mount answers, NAME runs, answers exec and is not frozen.
assert_thawed() {
	local st
	st=$(freezer_state "$1") || return 1
	[[ "$st" == THAWED ]] || {
		echo "sandbox $1 is $(sbx_cat "$MNT/$1/status") but its cgroup is $st" >&2
		return 1
	}
	assert_healthy "$1"
}

# Layers and leftovers (.tmp) in the state dir.
layers_left() {
	find "$STATE/layers" -mindepth 1 -maxdepth 1 2>/dev/null
	return 0
}

wait_no_layers() {
	local i
	for ((i = 0; i < 300; i++)); do
		[[ -z "$(layers_left)" ]] && return 0
		sleep 0.1
	done
	echo "layers left behind:" >&2
	layers_left >&2
	return 1
}

# What the hostile files look like from inside NAME, one fact a line.
hostile_view() {
	local deep='cd /root; n=0; while [ $n -lt 10 ]; do cd -P $p || exit 1; n=$((n+1)); done; cat leaf'
	sx "$1" "$DEEP_P; $deep; stat -c 'big %s' /big;"' stat -c "%h %i" /h1 /h2 /hd/h3 | sort -u | sed "s/^/links /"; [ -p /fifo ] && echo fifo; stat -c "suid %a" /suid; [ -L /shadow ] && readlink /shadow; [ -e /etc/group ] || echo whiteout' || return 1
	echo "$SBX_OUT"
}

@test "fork and snapshot of a 10 000-level tree, a 1 TB sparse file, hard links, a FIFO, a setuid file" {
	sbx_start_daemon
	sbx_create "$A"
	sx "$A" "$DEEP_P"'; cd /root; n=0; while [ $n -lt 10 ]; do mkdir -p $p && cd -P $p || exit 1; n=$((n+1)); done; echo bottom > leaf'
	sx "$A" 'truncate -s 1099511627776 /big; echo linked > /h1; ln /h1 /h2; mkdir /hd; ln /h1 /hd/h3'
	sx "$A" 'mkfifo /fifo; echo "#!/bin/sh" > /suid; chmod 4755 /suid; ln -s /etc/shadow /shadow; rm /etc/group'
	want=$(hostile_view "$A")
	ino=$(stat -c %i "$STATE/sandboxes/$A/upper/h1")
	echo "# in $A: $want"
	[[ "$want" == *$'bottom\nbig 1099511627776\nlinks 3 '"$ino"$'\nfifo\nsuid 4755\n/etc/shadow\nwhiteout'* ]]

	run timeout 300 bash -c 'echo "fork $2" > "$1"' _ "$MNT/$A/ctl" "$B"
	[ "$status" -eq 0 ]
	assert_thawed "$A"
	run timeout 300 mkdir "$MNT/$A/snapshots/s1"
	[ "$status" -eq 0 ]
	assert_thawed "$A"

	# The child sees what the source saw: the same tree, sizes, links, modes.
	wait_status "$B" running
	got=$(hostile_view "$B")
	[[ "$got" == *$'bottom\nbig 1099511627776\nlinks 3 '* ]]
	[ "$(sed 's/^links 3 [0-9]*$/links 3/' <<<"$got")" = "$(sed 's/^links 3 [0-9]*$/links 3/' <<<"$want")" ]
	echo "fork $C from=s1" >"$MNT/$A/ctl"
	wait_status "$C" running
	[ "$(hostile_view "$C" | sed 's/^links 3 [0-9]*$/links 3/')" = "$(sed 's/^links 3 [0-9]*$/links 3/' <<<"$got")" ]

	# On the host each layer holds the blocks in use, not the terabyte.
	n=0
	for l in "$STATE"/layers/*; do
		n=$((n + 1))
		[[ "$l" != *.tmp ]]
		[ "$(stat -c %s "$l/big")" -eq 1099511627776 ]
		[ "$(stat -c %b "$l/big")" -le 64 ]
		[ "$(stat -c %h "$l/h1")" -eq 3 ]
		[ "$(du -sm "$l" | cut -f1)" -le 256 ]
	done
	[ "$n" -eq 2 ]

	# Every one of them goes, and takes its layers with it.
	for x in "$C" "$B" "$A"; do
		run timeout 300 rmdir "$MNT/$x"
		[ "$status" -eq 0 ]
		[ ! -e "$MNT/$x" ]
	done
	wait_no_layers
	sbx_daemon_alive
	sbx_cat "$MNT/stats" >/dev/null
}

@test "a layer's own files name nothing the daemon removes: /external listing a host file, or a FIFO there" {
	sbx_start_daemon
	victim="$SBX_TMP/victim"
	echo keep >"$victim"
	sbx_create "$A"
	sbx_create "$B"
	# An ns layer is the sandbox's upper dir: a file of the sandbox's named
	# like the list of RAM files a VM checkpoint once kept there.
	sx "$A" "echo /dev/shm/../..$victim > /external"
	sx "$B" 'mkfifo /external'
	echo "fork ${A}f" >"$MNT/$A/ctl"
	echo "fork ${B}f" >"$MNT/$B/ctl"
	wait_status "${A}f" running
	wait_status "${B}f" running
	# The layers go with their last users; the removals end, bounded.
	for n in "${A}f" "$A" "${B}f" "$B"; do
		run timeout 60 rmdir "$MNT/$n"
		[ "$status" -eq 0 ]
	done
	sbx_wait_removed
	[ "$(cat "$victim")" = keep ]
	[ -z "$(ls "$STATE/layers" 2>/dev/null | grep -v '^\.' || true)" ]
}

@test "a fork or snapshot that does not fit on the state disk: ENOSPC with a sentence, no layer, the source thawed" {
	mount -t tmpfs -o size=64m tmpfs "$STATE"
	sbx_start_daemon
	sbx_create "$A"
	sx "$A" 'dd if=/dev/zero of=/fill bs=1M count=40 2>/dev/null; sync'
	run timeout 300 bash -c 'echo "fork $2" > "$1"' _ "$MNT/$A/ctl" "$B"
	assert_fails_with "No space left on device"
	[ ! -e "$MNT/$B" ]
	run sbx_cat "$MNT/$A/error"
	[ "$status" -eq 0 ]
	echo "# $output"
	[[ "$output" =~ checkpoint\ of\ $A\ needs\ [0-9]+\ MB\ on\ .*,\ [0-9]+\ MB\ free ]]
	assert_thawed "$A"
	[ -z "$(layers_left)" ]

	run timeout 300 mkdir "$MNT/$A/snapshots/s1"
	assert_fails_with "No space left on device"
	run ls "$MNT/$A/snapshots"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	assert_thawed "$A"
	[ -z "$(layers_left)" ]

	# With the room back, the same fork works.
	sx "$A" 'rm /fill'
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	assert_thawed "$A"
}

@test "a daemon that died while a sandbox was frozen: the next one thaws it when it re-adopts it" {
	sbx_start_daemon
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	f=$(freezer_file "$pid")
	# What a daemon killed in the middle of a fork's copy leaves: the journal
	# says running, the cgroup is frozen.
	case "$f" in
	*/freezer.state) echo FROZEN >"$f" ;;
	*) echo 1 >"$f" ;;
	esac
	[ "$(freezer_state "$A")" = FROZEN ]
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	sbx_start_daemon
	[ "$(sbx_key "$MNT/$A/stats" pid)" = "$pid" ]
	assert_thawed "$A"
	# And it is what it was: pause, resume and rmdir all work.
	echo pause >"$MNT/$A/ctl"
	wait_status "$A" paused
	echo resume >"$MNT/$A/ctl"
	wait_status "$A" running
	assert_thawed "$A"
	rmdir "$MNT/$A"
	wait_no_leaks "$A" "$pid"
}

@test "a sandbox frozen behind the daemon's back is still removed: rmdir thaws it to kill it" {
	sbx_start_daemon
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	f=$(freezer_file "$pid")
	case "$f" in
	*/freezer.state) echo FROZEN >"$f" ;;
	*) echo 1 >"$f" ;;
	esac
	[ "$(freezer_state "$A")" = FROZEN ]
	# init cannot answer stop while frozen: the daemon's SIGKILL backstop
	# must thaw the cgroup for the kill to land.
	run timeout 60 rmdir "$MNT/$A"
	[ "$status" -eq 0 ]
	wait_no_leaks "$A" "$pid"
}
