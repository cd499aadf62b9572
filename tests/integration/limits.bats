#!/usr/bin/env bats
# Exhaustion: a full state disk and --max-sandboxes. Each refusal is a clean
# errno from the file operation itself with a sentence in `error`; nothing
# already there is corrupted (journals stay valid JSON, sandboxes keep
# running and answer exec, a restarted daemon loads them all), and the daemon
# stays up.

load helpers

# The state dir is a small tmpfs mounted inside the test's temp dir (the
# teardown unmounts everything under it).
STATE_FS_SIZE="${STATE_FS_SIZE:-4M}"

setup() {
	P=""
}

teardown() {
	teardown_sbx
}

# Like setup_sbx, with STATE on a fresh tmpfs of STATE_FS_SIZE.
setup_small_state() {
	sbx_make_tmp
	mount -t tmpfs -o size="$STATE_FS_SIZE",mode=0700 sbxtest-state "$STATE"
	sbx_start_daemon "$@"
}

# Fill the filesystem of $STATE: one big file, then small ones for the last
# blocks (and inodes). Always succeeds.
fill_state() {
	dd if=/dev/zero of="$STATE/filler" bs=64k 2>/dev/null || true
	local i
	for ((i = 0; i < 200; i++)); do
		printf 'x%.0s' {1..512} >"$STATE/filler.$i" 2>/dev/null || break
	done
	sync
	df -h "$STATE" | tail -n 1 | sed 's/^/# /'
}

free_state() {
	rm -f "$STATE"/filler*
}

json_ok() {
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"
}

@test "a full state disk: clean errors with a sentence, nothing corrupted, daemon alive" {
	setup_small_state
	P="lf${SBX_TAG}"
	sbx_create "$P-a"
	sbx_create "$P-s"
	echo stop >"$MNT/$P-s/ctl"
	wait_status "$P-s" stopped
	cp "$STATE/sandboxes/$P-a/sandbox.json" "$SBX_TMP/a.json"
	local nerr_before
	nerr_before=$(sbx_cat "$MNT/error" | wc -l)

	fill_state

	# A new sandbox: refused by mkdir with ENOSPC and a sentence in /error
	# (README: ENOSPC is "no capacity (addresses, --max-sandboxes, disk)"),
	# or accepted and then failed with a sentence saying so.
	run timeout 30 mkdir "$MNT/$P-b"
	echo "mkdir on a full disk: status $status: $output"
	if ((status != 0)); then
		assert_fails_with "No space left on device"
		sbx_cat "$MNT/error"
		sbx_cat "$MNT/error" | tail -n +$((nerr_before + 1)) | grep -qiE "space|$P-b"
		[ ! -e "$MNT/$P-b" ]
	else
		wait_status "$P-b" failed
		sbx_cat "$MNT/$P-b/error"
		grep -qi "no space left" <<<"$(sbx_cat "$MNT/$P-b/error")"
		rmdir "$MNT/$P-b"
	fi
	# The same through the top-level ctl.
	run sbx_write "$MNT/ctl" "create $P-c memory=64M"
	echo "create on a full disk: status $status: $output"
	if ((status != 0)); then
		assert_fails
		[ ! -e "$MNT/$P-c" ]
	else
		wait_status "$P-c" failed
		[ -n "$(sbx_cat "$MNT/$P-c/error")" ]
		rmdir "$MNT/$P-c"
	fi
	# State changes of existing sandboxes (each journals): any outcome, but a
	# clean one, and the journals stay valid.
	run sbx_write "$MNT/$P-s/ctl" start
	echo "start on a full disk: status $status: $output"
	((status == 0)) || assert_fails
	st=$(sbx_cat "$MNT/$P-s/status")
	[[ "$st" =~ ^(creating|running|stopped|failed)$ ]]
	if [[ "$st" == failed || "$st" == stopped ]] && ((status != 0)); then
		[ -n "$(sbx_cat "$MNT/$P-s/error")" ]
	fi
	run sbx_write "$MNT/$P-a/ctl" "extend 600"
	((status == 0)) || assert_fails
	# Writing inside a sandbox whose upper layer is on the full disk fails
	# inside it, not in the daemon.
	sbx_exec "$P-a" 'dd if=/dev/zero of=/big bs=64k count=100 2>&1; echo done' >/dev/null
	[[ "$SBX_OUT" == *done* ]]

	json_ok "$STATE/sandboxes/$P-a/sandbox.json"
	json_ok "$STATE/sandboxes/$P-s/sandbox.json"
	assert_healthy "$P-a"

	# Space again: everything works, and a restarted daemon loads both.
	free_state
	sbx_create "$P-d"
	sbx_stop_daemon
	json_ok "$STATE/sandboxes/$P-a/sandbox.json"
	sbx_start_daemon
	[ -d "$MNT/$P-a" ]
	[ -d "$MNT/$P-s" ]
	[ -d "$MNT/$P-d" ]
	! sbx_cat "$MNT/error" | grep -E "$P-(a|s|d)'" | grep -q -E 'unreadable|malformed' || false
	echo start >"$MNT/$P-a/ctl"
	wait_status "$P-a" running
	assert_healthy "$P-a"
}

@test "--max-sandboxes 2: the third gets ENOSPC with a sentence; freeing one makes room" {
	setup_sbx --max-sandboxes 2
	P="lm${SBX_TAG}"
	sbx_create "$P-1"
	sbx_create "$P-2"
	local before
	before=$(sbx_cat "$MNT/error" | wc -l)
	run mkdir "$MNT/$P-3"
	assert_fails_with "No space left on device"
	[ ! -e "$MNT/$P-3" ]
	run sbx_cat "$MNT/error"
	[ "$status" -eq 0 ]
	echo "$output"
	local new
	new=$(printf '%s\n' "$output" | tail -n +$((before + 1)))
	[ -n "$new" ]
	grep -qiE 'limit|max' <<<"$new"
	# The top-level ctl and fork are refused the same way.
	run sbx_write "$MNT/ctl" "create $P-4"
	assert_fails_with "No space left on device"
	run sbx_write "$MNT/$P-1/ctl" "fork $P-5"
	assert_fails_with "No space left on device"
	[ ! -e "$MNT/$P-4" ]
	[ ! -e "$MNT/$P-5" ]
	[ "$(ls "$MNT" | grep -c "^$P-")" -eq 2 ]
	assert_healthy "$P-1"
	assert_healthy "$P-2"
	# A stopped sandbox still counts; a removed one does not.
	echo stop >"$MNT/$P-2/ctl"
	wait_status "$P-2" stopped
	run mkdir "$MNT/$P-3"
	assert_fails_with "No space left on device"
	rmdir "$MNT/$P-2"
	sbx_create "$P-3"
	assert_healthy "$P-3"
}

@test "--max-sandboxes below the journaled count: every sandbox is still loaded, new ones refused" {
	setup_sbx
	P="lr${SBX_TAG}"
	sbx_create "$P-1"
	sbx_create "$P-2"
	sbx_create "$P-3"
	sbx_stop_daemon
	sbx_start_daemon --max-sandboxes 1
	[ -d "$MNT/$P-1" ]
	[ -d "$MNT/$P-2" ]
	[ -d "$MNT/$P-3" ]
	run mkdir "$MNT/$P-4"
	assert_fails_with "No space left on device"
	assert_healthy
}
