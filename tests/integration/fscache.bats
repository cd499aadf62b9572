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

# Whole reads (od reads to EOF: one read request at offset 0 and one past the
# end), beside stat(2)s that put a new size in the kernel, while the state
# goes round creating, running, paused and stopped: names of 7 to 9 bytes,
# so a read sized by one state and filled by another would show.
@test "status read whole during stop, start, pause and resume is always one whole state name" {
	sbx_create "$A"
	local reader readers=()
	(
		while [[ ! -e "$SBX_TMP/reads.done" ]]; do
			for cmd in pause resume stop start; do
				echo "$cmd" >"$MNT/$A/ctl" 2>/dev/null || true # EBUSY while creating
			done
		done
	) &
	local flipper=$!
	(
		while [[ ! -e "$SBX_TMP/reads.done" ]]; do
			stat -c %s "$MNT/$A/status" >/dev/null 2>&1 || true
		done
	) &
	local statter=$!
	for reader in 1 2; do
		(
			local n got
			for ((n = 1; n <= 100; n++)); do
				got=$(od -An -c "$MNT/$A/status" | tr -d ' \n')
				case "$got" in
				'creating\n' | 'running\n' | 'paused\n' | 'standby\n' | 'stopped\n' | 'failed\n') ;;
				*) echo "reader $reader, read $n: '$got'" >>"$SBX_TMP/bad" ;;
				esac
			done
		) &
		readers+=($!)
	done
	wait "${readers[@]}"
	touch "$SBX_TMP/reads.done"
	wait "$flipper" "$statter"
	if [[ -s "$SBX_TMP/bad" ]]; then
		cat "$SBX_TMP/bad" >&2
		return 1
	fi
	echo start >"$MNT/$A/ctl" 2>/dev/null || true
	wait_status "$A" running
}

# A monitor keeps status open and reads it again from offset 0: each read
# after a change shows it, on the one handle (one read request each).
@test "a held status handle read again from offset 0 shows each change at once" {
	sbx_create "$A"
	run /usr/bin/python3 - "$MNT/$A" <<'PY'
import os, sys
d = sys.argv[1]
fd = os.open(os.path.join(d, "status"), os.O_RDONLY)
seen = [os.pread(fd, 64, 0)]
for cmd, want in (("pause", b"paused\n"), ("resume", b"running\n"), ("stop", b"stopped\n")):
    with open(os.path.join(d, "ctl"), "w") as c:
        c.write(cmd + "\n")
    got = os.pread(fd, 64, 0)
    seen.append(got)
    if got != want:
        sys.exit("after %s: %r, want %r" % (cmd, got, want))
print(seen)
PY
	echo "$output"
	[[ "$status" -eq 0 ]]
}

# Requests the kernel sent, by kind, from /sbx/metrics.
fops() {
	sbx_cat "$MNT/metrics" | awk -F'[{}" ]+' '$1 == "sandboxfs_file_requests_total" { print $3, $4 }'
}

# What `grep . /sbx/*/status` costs, counted by the daemon: per file an open,
# two reads (the content, then the end: with direct_io every read(2) is a
# request), at most one getattr (the stat after a read) and no lookup
# (readdirplus brought the names, the files' names are kept). The constants
# are the glob's and the two reads of metrics; a request more per file shows
# 8 times.
@test "grep . */status costs an open, two reads and at most one getattr a file" {
	local n=8 i
	for ((i = 1; i <= n; i++)); do
		sbx_create "$A$i"
	done
	grep . "$MNT"/*/status >/dev/null
	local -A before after
	local op v
	while read -r op v; do before[$op]=$v; done < <(fops)
	run grep . "$MNT"/*/status
	[[ "$status" -eq 0 && "${#lines[@]}" -eq $n ]]
	while read -r op v; do after[$op]=$v; done < <(fops)
	local d
	for op in lookup getattr open read release; do
		d=$((after[$op] - before[$op]))
		echo "$op $d" >&2
		declare "d_$op=$d"
	done
	((d_open <= n + 1 && d_read <= 2 * n + 3 && d_getattr <= n + 3 && d_lookup <= 3))
	((d_open >= n && d_read >= n))
}
