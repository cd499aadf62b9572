#!/usr/bin/env bats
# Lifecycle of sandboxes through the file tree: create, inspect, stop, start,
# remove; the mount itself (second mount refused, stale mount recovered).
# Every test gets its own daemon, state dir and mount point.

load helpers

setup() {
	setup_sbx
	A="lc${SBX_TAG}a"
	B="lc${SBX_TAG}b"
}

teardown() {
	teardown_sbx
}

# Every line of a flat keyed file is `key value`.
assert_flat_keyed() {
	local file=$1 line
	local content
	content=$(sbx_cat "$file") || return 1
	[[ -n "$content" ]] || {
		echo "$file is empty" >&2
		return 1
	}
	while IFS= read -r line; do
		[[ "$line" =~ ^[A-Za-z0-9_.]+\ [^\ ]+$ ]] || {
			echo "$file: line is not 'key value': '$line'" >&2
			return 1
		}
	done <<<"$content"
}

assert_numeric_key() {
	local file=$1 key=$2 v
	v=$(sbx_key "$file" "$key") || {
		echo "$file has no key '$key'; content:" >&2
		sbx_cat "$file" >&2
		return 1
	}
	[[ "$v" =~ ^[0-9]+$ ]] || {
		echo "$file: $key is '$v', not a number" >&2
		return 1
	}
}

@test "mount: top-level files exist and images lists busybox" {
	for f in ctl stats error images events; do
		[ -e "$MNT/$f" ]
	done
	run ls "$MNT/images"
	[ "$status" -eq 0 ]
	grep -qx busybox <<<"$output"
	run sbx_cat "$MNT/error"
	[ "$status" -eq 0 ]
}

@test "mount: top-level stats has counts, cgroup_version and percentiles" {
	assert_flat_keyed "$MNT/stats"
	for k in sandboxes creating running stopped failed create_p50_usec create_p95_usec create_p99_usec stop_p50_usec; do
		assert_numeric_key "$MNT/stats" "$k"
	done
	run sbx_key "$MNT/stats" cgroup_version
	[ "$status" -eq 0 ]
	[[ "$output" == 1 || "$output" == 2 ]]
	[ "$(sbx_key "$MNT/stats" sandboxes)" -eq 0 ]
	# Whether a live ns fork could use CRIU here, said with the reason.
	[ "$(sbx_key "$MNT/stats" ns_fork_mode)" = fs ]
	[[ "$(sbx_key "$MNT/stats" ns_criu)" =~ ^(absent|works|fails)$ ]]
}

@test "mkdir: creates a sandbox that goes creating -> running" {
	mkdir "$MNT/$A"
	[ -d "$MNT/$A" ]
	run sbx_cat "$MNT/$A/status"
	[ "$status" -eq 0 ]
	[[ "$output" == creating || "$output" == running ]]
	wait_status "$A" running
	run ls "$MNT"
	[ "$status" -eq 0 ]
	grep -qx "$A" <<<"$output"
	for f in ctl status stats config events error log exec; do
		[ -e "$MNT/$A/$f" ]
	done
	[ "$(sbx_key "$MNT/stats" sandboxes)" -eq 1 ]
	[ "$(sbx_key "$MNT/stats" running)" -eq 1 ]
}

@test "mkdir: status is a single word" {
	sbx_create "$A"
	run sbx_cat "$MNT/$A/status"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$output" = running ]
}

@test "stats: per-phase timings in _usec, pid and resource keys" {
	sbx_create "$A"
	assert_flat_keyed "$MNT/$A/stats"
	for k in pid create_usec create_rootfs_usec create_cgroup_usec create_spawn_usec create_init_usec memory_bytes pids_current oom_kills; do
		assert_numeric_key "$MNT/$A/stats" "$k"
	done
	# Every timing key uses the _usec suffix (none ends in _us or _ms).
	run bash -c "timeout 10 cat '$MNT/$A/stats' | awk '{print \$1}' | grep -E '_(us|ms|ns)\$'"
	[ "$status" -ne 0 ]
	[ "$(sbx_key "$MNT/$A/stats" pid)" -gt 1 ]
	[ "$(sbx_key "$MNT/$A/stats" pids_current)" -ge 1 ]
}

@test "stats: host pid of the sandbox exists and is sbx-init" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	[ -d "/proc/$pid" ]
	[ "$(cat "/proc/$pid/comm")" = sbx-init ]
}

@test "config: JSON with image, memory, pids, cpus, created" {
	sbx_create "$A"
	run sbx_cat "$MNT/$A/config"
	[ "$status" -eq 0 ]
	jq -e . <<<"$output" >/dev/null
	[ "$(jq -r .image <<<"$output")" = busybox ]
	for k in image memory pids cpus created; do
		jq -e "has(\"$k\")" <<<"$output" >/dev/null || {
			echo "config lacks $k: $output"
			false
		}
	done
	jq -e '.memory | numbers' <<<"$output" >/dev/null
}

@test "events: flat keyed state, reason, exit_code, oom_kills, generation" {
	sbx_create "$A"
	assert_flat_keyed "$MNT/$A/events"
	[ "$(sbx_key "$MNT/$A/events" state)" = running ]
	for k in reason exit_code; do
		sbx_key "$MNT/$A/events" "$k" >/dev/null
	done
	for k in oom_kills generation; do
		assert_numeric_key "$MNT/$A/events" "$k"
	done
}

@test "events: generation changes on state changes" {
	sbx_create "$A"
	g1=$(sbx_key "$MNT/$A/events" generation)
	echo stop >"$MNT/$A/ctl"
	[ "$(sbx_key "$MNT/$A/events" state)" = stopped ]
	g2=$(sbx_key "$MNT/$A/events" generation)
	[ "$g2" -gt "$g1" ]
}

@test "events: top-level generation changes when a sandbox appears and goes" {
	g0=$(sbx_key "$MNT/events" generation)
	sbx_create "$A"
	g1=$(sbx_key "$MNT/events" generation)
	[ "$g1" -gt "$g0" ]
	rmdir "$MNT/$A"
	g2=$(sbx_key "$MNT/events" generation)
	[ "$g2" -gt "$g1" ]
}

@test "log and error: readable" {
	sbx_create "$A"
	run sbx_cat "$MNT/$A/log"
	[ "$status" -eq 0 ]
	run sbx_cat "$MNT/$A/error"
	[ "$status" -eq 0 ]
}

@test "exec: runs a command, output to EOF then exit_code" {
	sbx_create "$A"
	sbx_exec "$A" hostname
	[ "$SBX_OUT" = "$A" ]
	[ "$SBX_RC" = 0 ]
	sbx_exec "$A" 'echo out; echo err >&2; exit 3'
	[ "$SBX_RC" = 3 ]
	grep -qx out <<<"$SBX_OUT"
	grep -qx err <<<"$SBX_OUT"
}

@test "exec: the raw protocol as documented" {
	sbx_create "$A"
	exec 4<>"$MNT/$A/exec"
	printf '%s\n' 'hostname' >&4
	out=$(timeout 30 cat <&4)
	st=$(timeout 10 cat <&4)
	exec 4>&-
	[ "$out" = "$A" ]
	[ "$st" = "exit_code 0" ]
}

@test "exec: several handles at once are independent" {
	sbx_create "$A"
	exec 4<>"$MNT/$A/exec"
	exec 5<>"$MNT/$A/exec"
	printf '%s\n' 'echo one; exit 1' >&4
	printf '%s\n' 'echo two; exit 2' >&5
	o5=$(timeout 30 cat <&5)
	o4=$(timeout 30 cat <&4)
	s4=$(timeout 10 cat <&4)
	s5=$(timeout 10 cat <&5)
	exec 4>&- 5>&-
	[ "$o4" = one ]
	[ "$o5" = two ]
	[ "$s4" = "exit_code 1" ]
	[ "$s5" = "exit_code 2" ]
}

@test "create via ctl: options are reflected in config" {
	echo "create $B image=busybox memory=64M cpus=2 pids=50 net=off timeout=600" >"$MNT/ctl"
	[ -d "$MNT/$B" ]
	wait_status "$B" running
	run sbx_cat "$MNT/$B/config"
	[ "$status" -eq 0 ]
	jq -e . <<<"$output" >/dev/null
	[ "$(jq -r .image <<<"$output")" = busybox ]
	[ "$(jq -r .memory <<<"$output")" = 67108864 ]
	[ "$(jq -r .pids <<<"$output")" = 50 ]
	[ "$(jq -r .cpus <<<"$output")" = 2 ]
}

@test "create via ctl: plain create with defaults" {
	echo "create $B" >"$MNT/ctl"
	wait_status "$B" running
	sbx_exec "$B" hostname
	[ "$SBX_OUT" = "$B" ]
}

@test "stop: synchronous, status stopped when the write returns, pid gone" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	echo stop >"$MNT/$A/ctl"
	[ "$(sbx_cat "$MNT/$A/status")" = stopped ]
	[ "$(sbx_key "$MNT/$A/events" state)" = stopped ]
	assert_numeric_key "$MNT/$A/stats" stop_usec
	# The init is gone (or at most a zombie being reaped).
	for i in $(seq 50); do
		[[ -e /proc/$pid && "$(awk '/^State:/{print $2}' /proc/$pid/status 2>/dev/null)" != Z ]] || break
		sleep 0.1
	done
	[[ ! -e /proc/$pid || "$(awk '/^State:/{print $2}' /proc/$pid/status 2>/dev/null)" == Z || "$(cat /proc/$pid/comm 2>/dev/null)" != sbx-init ]]
	[ "$(sbx_key "$MNT/stats" stopped)" -eq 1 ]
}

@test "stop with a grace period in seconds" {
	sbx_create "$A"
	echo "stop 2" >"$MNT/$A/ctl"
	[ "$(sbx_cat "$MNT/$A/status")" = stopped ]
}

@test "start: restart keeps files in the overlay upper" {
	sbx_create "$A"
	sbx_exec "$A" 'echo hi > /keep'
	[ "$SBX_RC" = 0 ]
	echo stop >"$MNT/$A/ctl"
	[ "$(sbx_cat "$MNT/$A/status")" = stopped ]
	echo start >"$MNT/$A/ctl"
	wait_status "$A" running
	sbx_exec "$A" 'cat /keep'
	[ "$SBX_OUT" = hi ]
	[ "$SBX_RC" = 0 ]
}

@test "start: a restarted sandbox gets a new init pid" {
	sbx_create "$A"
	p1=$(sbx_pid_of "$A")
	echo stop >"$MNT/$A/ctl"
	echo start >"$MNT/$A/ctl"
	wait_status "$A" running
	p2=$(sbx_pid_of "$A")
	[ "$p1" != "$p2" ]
	[ "$(cat "/proc/$p2/comm")" = sbx-init ]
}

@test "stop/start cycles several times" {
	sbx_create "$A"
	for i in 1 2 3; do
		echo stop >"$MNT/$A/ctl"
		[ "$(sbx_cat "$MNT/$A/status")" = stopped ]
		echo start >"$MNT/$A/ctl"
		wait_status "$A" running
	done
	sbx_exec "$A" 'echo ok'
	[ "$SBX_OUT" = ok ]
}

@test "kill KILL: the sandbox leaves running" {
	sbx_create "$A"
	echo "kill KILL" >"$MNT/$A/ctl"
	wait_status "$A" 'stopped|failed'
}

@test "rmdir: removes a running sandbox and everything it had" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	[ -f "$STATE/sandboxes/$A/sandbox.json" ]
	rmdir "$MNT/$A"
	[ ! -e "$MNT/$A" ]
	run ls "$MNT"
	[ "$status" -eq 0 ]
	! grep -qx "$A" <<<"$output" || false
	wait_no_leaks "$A" "$pid"
	[ "$(sbx_key "$MNT/stats" sandboxes)" -eq 0 ]
}

@test "rmdir: removes a stopped sandbox" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	echo stop >"$MNT/$A/ctl"
	rmdir "$MNT/$A"
	[ ! -e "$MNT/$A" ]
	wait_no_leaks "$A" "$pid"
}

@test "rmdir: right after mkdir (while creating) is clean" {
	mkdir "$MNT/$A"
	rmdir "$MNT/$A"
	[ ! -e "$MNT/$A" ]
	wait_no_leaks "$A"
	# the name can be used again
	sbx_create "$A"
}

@test "rmdir: the name is free on return: mkdir of it at once makes a fresh sandbox" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	sbx_exec "$A" 'echo old > /marker'
	rmdir "$MNT/$A"
	mkdir "$MNT/$A"
	wait_status "$A" running
	pid2=$(sbx_pid_of "$A")
	[ "$pid2" != "$pid" ]
	sbx_exec "$A" 'cat /marker 2>/dev/null || echo none'
	[ "$SBX_OUT" = none ]
	# The old state dir went through the trash; the new one is in place.
	sbx_wait_removed
	[ -f "$STATE/sandboxes/$A/sandbox.json" ]
	[ -z "$(ls -A "$STATE/trash")" ]
	assert_healthy "$A"
}

@test "remove NAME... on ctl: removed at once, running, stopped and creating alike; the names free on return; a missing one fails the write, the others go" {
	local n pids=() names=()
	for n in 1 2 3 4 5; do
		sbx_create "$A$n"
		pids+=("$(sbx_pid_of "$A$n")")
		names+=("$A$n")
	done
	echo stop >"$MNT/${A}2/ctl"
	mkdir "$MNT/${A}6" # still creating, most likely, when the write comes
	names+=("${A}6")
	sbx_write "$MNT/ctl" "remove ${names[*]}"
	for n in "${names[@]}"; do
		[ ! -e "$MNT/$n" ]
	done
	# The names are free at once: a mkdir of one makes a fresh sandbox.
	sbx_create "${A}1"
	[ "$(sbx_pid_of "${A}1")" != "${pids[0]}" ]
	for n in 2 3 4 5; do
		wait_no_leaks "$A$n" "${pids[$((n - 1))]}"
	done
	wait_no_leaks "${A}6"
	# A name that is not there fails the write (ENOENT, its sentence on the
	# handle and in error); the others named are removed all the same.
	sbx_create "${A}7"
	run sbx_write "$MNT/ctl" "remove ${A}7 nosuch$SBX_TAG ${A}1"
	assert_fails_with "No such file or directory"
	[ ! -e "$MNT/${A}7" ]
	[ ! -e "$MNT/${A}1" ]
	sbx_cat "$MNT/error" | tail -1 | grep -F "remove nosuch$SBX_TAG: no such sandbox"
	run sbx_write "$MNT/ctl" "remove nosuch$SBX_TAG other$SBX_TAG"
	assert_fails_with "No such file or directory"
	sbx_cat "$MNT/error" | tail -1 | grep -F "2 of 2 not removed; the first, nosuch$SBX_TAG: no such sandbox"
	# Bad lines change nothing.
	sbx_create "${A}8"
	for bad in "remove" "remove ${A}8 ${A}8" "remove ${A}8 bad/name" "remove ${A}8 .hidden"; do
		run sbx_write "$MNT/ctl" "$bad"
		assert_fails_with "Invalid argument"
	done
	assert_healthy "${A}8"
	[ "$(sbx_cat "$MNT/stats" | awk '$1 == "sandboxes" {print $2}')" -eq 1 ]
}

@test "rmdir: a disk= sandbox's state dir and mount are gone once removing is 0" {
	sbx_create_ctl "$A" disk=16M
	pid=$(sbx_pid_of "$A")
	grep -q -F -- "$STATE/sandboxes/$A/disk" /proc/mounts
	rmdir "$MNT/$A"
	[ ! -e "$STATE/sandboxes/$A" ]
	sbx_wait_removed
	[ "$(sbx_key "$MNT/stats" removing)" = 0 ]
	[ -z "$(ls -A "$STATE/trash")" ]
	! grep -q -F -- "$STATE/" /proc/mounts || false
	wait_no_leaks "$A" "$pid"
}

@test "rmdir: a daemon killed after a burst of rmdirs leaves nothing once restarted" {
	local i names=() pids=()
	for i in 1 2 3 4 5 6; do
		names+=("$A$i")
		echo "create $A$i" >"$MNT/ctl"
	done
	echo "create ${A}d disk=16M" >"$MNT/ctl"
	names+=("${A}d")
	for i in "${names[@]}"; do
		wait_status "$i" running
		pids+=("$(sbx_pid_of "$i")")
	done
	local rms=()
	for i in "${names[@]}"; do
		rmdir "$MNT/$i" &
		rms+=($!)
	done
	for i in "${rms[@]}"; do wait "$i"; done
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	# What a dead daemon could have left mid-removal: a trash entry with a
	# mount under it (as a disk= is), which the next start unmounts first.
	mkdir -p "$STATE/trash/0-0-left/disk/sub"
	mount -t tmpfs -o size=1M none "$STATE/trash/0-0-left/disk"
	mkdir "$STATE/trash/0-0-left/disk/sub"
	touch "$STATE/trash/0-0-left/disk/sub/f" "$STATE/trash/0-0-left/g"
	sbx_start_daemon
	sbx_wait_removed
	[ -z "$(ls -A "$STATE/trash")" ]
	[ -z "$(ls -A "$STATE/sandboxes")" ]
	! grep -q -F -- "$STATE/" /proc/mounts || false
	for i in "${!names[@]}"; do
		wait_no_leaks "${names[$i]}" "${pids[$i]}"
	done
}

@test "journal: sandbox.json exists while the sandbox exists and is JSON" {
	sbx_create "$A"
	[ -f "$STATE/sandboxes/$A/sandbox.json" ]
	jq -e . "$STATE/sandboxes/$A/sandbox.json" >/dev/null
	echo stop >"$MNT/$A/ctl"
	[ -f "$STATE/sandboxes/$A/sandbox.json" ]
	jq -e . "$STATE/sandboxes/$A/sandbox.json" >/dev/null
}

@test "two sandboxes run side by side and are independent" {
	sbx_create "$A"
	sbx_create "$B"
	sbx_exec "$A" 'echo a > /only-in-a'
	sbx_exec "$B" 'test -e /only-in-a && echo present || echo absent'
	[ "$SBX_OUT" = absent ]
	echo stop >"$MNT/$A/ctl"
	[ "$(sbx_cat "$MNT/$B/status")" = running ]
	[ "$(sbx_key "$MNT/stats" running)" -eq 1 ]
	[ "$(sbx_key "$MNT/stats" stopped)" -eq 1 ]
}

@test "mount: a second daemon on a live mountpoint is refused" {
	sbx_create "$A"
	mkdir -p "$SBX_TMP/state2"
	run timeout 20 "$SANDBOXFS" -f --state "$SBX_TMP/state2" --images "$SBX_IMAGES" --stop-on-exit "$MNT" 3>&-
	echo "second daemon: status $status output: $output"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ] # it must refuse, not hang
	[ -n "$output" ]
	# The first one still works.
	assert_healthy "$A"
	sbx_create "$B"
}

@test "mount: stale mount after kill -9 is cleared by a new daemon" {
	sbx_create "$A"
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	# The mount point is now dead (ENOTCONN) but still mounted.
	sbx_start_daemon
	[ "$SBX_PID" != "$old" ]
	[ -e "$MNT/ctl" ]
	sbx_create "$B"
	sbx_exec "$B" hostname
	[ "$SBX_OUT" = "$B" ]
}

@test "mount: a restarted daemon re-adopts the sandboxes of the killed one" {
	sbx_create "$A"
	sbx_exec "$A" 'echo kept > /kept; sleep 1000 >/dev/null 2>&1 </dev/null &'
	sbx_exec "$A" 'pidof sleep'
	sleeper=$SBX_OUT
	[[ "$sleeper" =~ ^[0-9]+$ ]]
	pid=$(sbx_pid_of "$A")
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	sbx_start_daemon
	[ -d "$MNT/$A" ]
	# Adopted as it was: running, the same init, its processes still there,
	# and never restarted.
	run sbx_cat "$MNT/$A/status"
	[ "$status" -eq 0 ]
	[ "$output" = running ]
	[ "$(sbx_key "$MNT/$A/stats" pid)" = "$pid" ]
	[ "$(sbx_key "$MNT/$A/stats" starts)" = 1 ]
	sbx_exec "$A" 'cat /kept; pidof sleep'
	[ "$SBX_OUT" = kept$'\n'"$sleeper" ]
	assert_healthy "$A"
}

@test "mount: a job running across a daemon kill -9 ends with its own exit code" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'echo one; sleep 2; echo two; exit 7')
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	sbx_start_daemon
	[ "$(sbx_cat "$MNT/$A/status")" = running ]
	# init reports the exit to the new daemon, which still knows the job's id.
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" = 7 ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = "$(printf 'one\ntwo')" ]
	# New commands do not collide with the old daemon's ids.
	sbx_exec "$A" 'exit 4'
	[ "$SBX_RC" -eq 4 ]
}

@test "unmount with --stop-on-exit stops every sandbox" {
	sbx_create "$A"
	sbx_create "$B"
	pa=$(sbx_pid_of "$A")
	pb=$(sbx_pid_of "$B")
	sbx_stop_daemon
	for i in $(seq 100); do
		[[ -e /proc/$pa || -e /proc/$pb ]] || break
		[[ "$(cat /proc/$pa/comm 2>/dev/null)" != sbx-init && "$(cat /proc/$pb/comm 2>/dev/null)" != sbx-init ]] && break
		sleep 0.1
	done
	[ "$(cat /proc/$pa/comm 2>/dev/null)" != sbx-init ]
	[ "$(cat /proc/$pb/comm 2>/dev/null)" != sbx-init ]
	! sbx_is_mounted "$MNT" || false
}
