#!/usr/bin/env bats
# What the kernel caches of the tree is never older than the sandbox: status
# is read afresh, its attributes (size, mtime) are long-lived, and every change
# (through ctl, by the daemon on its own, a removal, a new sandbox of the
# same name) shows at the next read.

load helpers

setup() {
	setup_sbx
	A="fc${SBX_TAG}a"
}

teardown() {
	teardown_sbx
}

# status, and its size as stat(2) says it, agree with STATE at once.
assert_status_now() {
	local want=$1 got size
	got=$(sbx_cat "$MNT/$A/status") || return 1
	[[ "$got" == "$want" ]] || {
		echo "status says '$got', want '$want' (events: $(sbx_key "$MNT/$A/events" state))" >&2
		return 1
	}
	size=$(stat -c %s "$MNT/$A/status") || return 1
	[[ "$size" == $((${#want} + 1)) ]] || {
		echo "status of '$want' has st_size $size" >&2
		return 1
	}
}

@test "status read after a change through ctl shows the new state at once" {
	sbx_create "$A"
	assert_status_now running
	assert_status_now running # from the cache
	echo pause >"$MNT/$A/ctl"
	assert_status_now paused
	echo resume >"$MNT/$A/ctl"
	assert_status_now running
	echo stop >"$MNT/$A/ctl"
	assert_status_now stopped
	echo start >"$MNT/$A/ctl"
	run sbx_cat "$MNT/$A/status"
	[[ "$output" == creating || "$output" == running ]]
	wait_status "$A" running
	assert_status_now running
}

@test "a handle opened before a change does not put the old state in the cache" {
	sbx_create "$A"
	assert_status_now running
	exec 4<"$MNT/$A/status"
	echo pause >"$MNT/$A/ctl"
	# The read after the change, on the handle opened before it, fills the cache.
	run cat <&4
	exec 4<&-
	[[ "$output" == paused ]]
	assert_status_now paused
	echo resume >"$MNT/$A/ctl"
}

@test "a change the daemon makes on its own shows in status at once" {
	sbx_create "$A"
	assert_status_now running
	stat "$MNT/$A/status" >/dev/null
	# init killed: the monitor, not the writer, changes the state.
	echo "kill KILL" >"$MNT/$A/ctl"
	local i st=running
	for ((i = 0; i < 100; i++)); do
		st=$(sbx_key "$MNT/$A/events" state) # events is read without a cache
		[[ "$st" != running ]] && break
		sleep 0.1
	done
	[[ "$st" != running ]]
	assert_status_now "$st"
}

@test "a removed sandbox is gone at once, and one of the same name shows its own state" {
	sbx_create "$A"
	echo pause >"$MNT/$A/ctl"
	assert_status_now paused
	echo resume >"$MNT/$A/ctl"
	rmdir "$MNT/$A"
	run ls "$MNT"
	[[ "$output" != *"$A"* ]]
	[[ ! -e "$MNT/$A" ]]
	run sbx_cat "$MNT/$A/status"
	[[ "$status" -ne 0 ]]
	# Made again through ctl: the kernel never saw it come.
	sbx_create_ctl "$A"
	assert_status_now running
	echo stop >"$MNT/$A/ctl"
	assert_status_now stopped
	rmdir "$MNT/$A"
	[[ ! -e "$MNT/$A/status" ]]
	sbx_create "$A"
	assert_status_now running
}

# A state change invalidates the sized files alone, a removal through ctl the
# sandbox's directory too: both seen at once through what the kernel holds.
@test "after a state change and a removal through ctl, cached names and attributes show the new" {
	sbx_create "$A"
	stat "$MNT/$A" "$MNT/$A/status" >/dev/null
	assert_status_now running
	echo pause >"$MNT/$A/ctl"
	[[ -d "$MNT/$A" ]]
	assert_status_now paused
	stat "$MNT/$A" "$MNT/$A/status" >/dev/null
	sbx_write "$MNT/ctl" "remove $A"
	run stat "$MNT/$A"
	[[ "$status" -ne 0 ]]
	run sbx_cat "$MNT/$A/status"
	[[ "$status" -ne 0 ]]
}

# A read is one whole state name, whatever changes come between the stat
# that sized it and its reads: pause and resume in a loop beside readers
# that read in 3-byte pieces (each piece a read request at its offset).
@test "status read in pieces during changes is always one whole state name" {
	sbx_create "$A"
	local bad=0 n got
	# The changes go on until the reads are done (a file says so), however
	# fast either side runs.
	(
		while [[ ! -e "$SBX_TMP/reads.done" ]]; do
			echo pause >"$MNT/$A/ctl"
			echo resume >"$MNT/$A/ctl"
		done
	) &
	local flipper=$!
	for ((n = 1; n <= 60; n++)); do
		got=$(dd if="$MNT/$A/status" bs=3 status=none | od -An -c | tr -d ' \n')
		case "$got" in
		'running\n' | 'paused\n') ;;
		*)
			bad=$((bad + 1))
			echo "read $n: '$got'" >&2
			;;
		esac
		stat -c %s "$MNT/$A/status" >/dev/null
	done
	touch "$SBX_TMP/reads.done"
	wait "$flipper"
	echo "60 reads, $bad not whole" >&2
	((bad == 0))
}
