#!/usr/bin/env bats
# Promises of the README that no other test checked (issue 19):
#   - a clean exit (fusermount3 -u, SIGTERM) leaves sandboxes running, and a
#     new daemon without --stop-on-exit re-adopts them (same pid);
#   - `pause` on ns freezes every process, `resume` lets them go on;
#   - `stop N` sends SIGTERM, gives N seconds, then SIGKILL;
#   - a fork chain deeper than 7 is refused with EMLINK;
#   - /sbx/error keeps the last 64 failures, `log` the last 64 KiB;
#   - `exec` written while the sandbox is creating waits for it;
#   - a paused sandbox is re-adopted paused.
# Waits are bounds against hangs; nothing asserts how long anything took.
# Where a test needs "nothing happened for a while" (a frozen counter) it
# looks twice with a pause between.

load helpers

setup() {
	setup_sbx
	P="pr${SBX_TAG}"
}

teardown() {
	teardown_sbx_readopt sbx_start_daemon_keep
}

# Replaces setup's daemon (which has --stop-on-exit) by one without it.
keep_mode() {
	sbx_stop_daemon
	sbx_start_daemon_keep "$@"
}

# Waits (bounded) until our daemon has exited, and sets DAEMON_RC to its
# exit status.
wait_daemon_exit() {
	local i
	for ((i = 0; i < 200; i++)); do
		sbx_daemon_alive || break
		sleep 0.1
	done
	if sbx_daemon_alive; then
		echo "daemon $SBX_PID still runs" >&2
		return 1
	fi
	DAEMON_RC=0
	wait "$SBX_PID" || DAEMON_RC=$?
}

# Host path of a file in NAME's upper layer (what the sandbox wrote to /FILE).
upper() {
	echo "$STATE/sandboxes/$1/upper/$2"
}

# The counter a sandbox's job writes to /count (empty while it is rewritten).
counter_of() {
	cat "$(upper "$1" count)" 2>/dev/null || true
}

# Starts a job in NAME that counts in /count, 20 times a second, and waits
# (bounded) until it counts.
start_counter() {
	sbx_run "$1" 'i=0; while :; do i=$((i+1)); echo $i > /count; usleep 50000; done' >/dev/null
	wait_counter_above "$1" 2
}

# wait_counter_above NAME N: waits (bounded) until the counter is above N.
wait_counter_above() {
	local i c
	for ((i = 0; i < 300; i++)); do
		c=$(counter_of "$1")
		[[ "$c" =~ ^[0-9]+$ ]] && ((c > $2)) && return 0
		sleep 0.1
	done
	echo "the counter of $1 is '$c', not above $2" >&2
	return 1
}

@test "a clean exit (fusermount3 -u, then SIGTERM) leaves the sandbox running; a new daemon re-adopts it" {
	keep_mode
	sbx_create "$P-a"
	local pid
	pid=$(sbx_pid_of "$P-a")
	start_counter "$P-a"

	# fusermount3 -u: the daemon ends with status 0; the sandbox runs on.
	timeout 20 fusermount3 -u "$MNT"
	wait_daemon_exit
	[ "$DAEMON_RC" -eq 0 ]
	[ "$(cat "/proc/$pid/comm")" = sbx-init ]
	local c
	c=$(counter_of "$P-a")
	wait_counter_above "$P-a" "${c:-0}" # its processes go on without a daemon
	sbx_start_daemon_keep
	[ "$(sbx_cat "$MNT/$P-a/status")" = running ]
	[ "$(sbx_key "$MNT/$P-a/stats" pid)" = "$pid" ]
	sbx_exec "$P-a" 'echo back on $(hostname)'
	[ "$SBX_OUT" = "back on $P-a" ]
	[ "$(grep -c "sandbox $P-a: re-adopted (pid $pid)" "$SBX_LOG")" -eq 1 ]

	# SIGTERM: the same, and the daemon takes its mount away itself.
	kill -TERM "$SBX_PID"
	wait_daemon_exit
	[ "$DAEMON_RC" -eq 0 ]
	run sbx_is_mounted "$MNT"
	[ "$status" -ne 0 ]
	[ "$(cat "/proc/$pid/comm")" = sbx-init ]
	sbx_start_daemon_keep
	[ "$(sbx_cat "$MNT/$P-a/status")" = running ]
	[ "$(sbx_key "$MNT/$P-a/stats" pid)" = "$pid" ]
	sbx_exec "$P-a" 'echo again'
	[ "$SBX_OUT" = again ]
	[ "$(grep -c "sandbox $P-a: re-adopted (pid $pid)" "$SBX_LOG")" -eq 2 ]
}

@test "pause freezes every process of an ns sandbox (a counter stops); resume lets it go on" {
	sbx_create "$P-p"
	start_counter "$P-p"
	echo pause >"$MNT/$P-p/ctl"
	[ "$(sbx_cat "$MNT/$P-p/status")" = paused ]
	local c1 c2
	c1=$(counter_of "$P-p")
	sleep 2 # the job counts 20 times a second when it runs
	c2=$(counter_of "$P-p")
	echo "# paused: counter $c1, 2 s later $c2"
	[ "$c1" = "$c2" ]
	echo resume >"$MNT/$P-p/ctl"
	[ "$(sbx_cat "$MNT/$P-p/status")" = running ]
	wait_counter_above "$P-p" "${c2:-0}"
	assert_healthy "$P-p"
}

@test "stop N: SIGTERM, N seconds of grace, then SIGKILL for a process that ignores SIGTERM" {
	sbx_create "$P-s"
	local pid n
	pid=$(sbx_pid_of "$P-s")
	# It notes the SIGTERM it gets, and goes on ticking once a second.
	n=$(sbx_run "$P-s" 'trap "echo term >> /ignorer" TERM; while :; do echo tick >> /ignorer; sleep 1; done')
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q tick "$(upper "$P-s" ignorer)" 2>/dev/null && break
		sleep 0.1
	done
	grep -q tick "$(upper "$P-s" ignorer)"
	# stop returns when the sandbox is stopped.
	run timeout 60 bash -c "echo 'stop 3' >'$MNT/$P-s/ctl'"
	[ "$status" -eq 0 ]
	[ "$(sbx_cat "$MNT/$P-s/status")" = stopped ]
	# It got SIGTERM and lived on after it (the grace period) ...
	local log
	log=$(cat "$(upper "$P-s" ignorer)")
	echo "# the process wrote: $(tr '\n' ' ' <<<"$log")"
	grep -qx term <<<"$log"
	[ "$(sed -n '/^term$/,$p' <<<"$log" | grep -c '^tick$')" -ge 1 ]
	# ... until it was killed: it never ends on its own, and it is gone.
	[ "$(sbx_cat "$MNT/$P-s/jobs/$n/status")" = killed ]
	run test -e "/proc/$pid"
	[ "$status" -ne 0 ]
	[ "$(sbx_key "$MNT/$P-s/events" reason)" = user ]
}

@test "fork: a chain deeper than 7 is refused with EMLINK" {
	sbx_create "$P-c0"
	local i layers
	for ((i = 1; i <= 8; i++)); do
		echo "fork $P-c$i" >"$MNT/$P-c$((i - 1))/ctl"
		wait_status "$P-c$i" running
	done
	layers=$(python3 -c 'import json, sys; print(len(json.load(sys.stdin)["layers"]))' \
		<"$MNT/$P-c8/config")
	[ "$layers" -eq 8 ]
	# c8 was never forked, so no flatten of its chain exists: refused.
	run sbx_write "$MNT/$P-c8/ctl" "fork $P-c9"
	assert_fails_with "Too many links"
	[ ! -e "$MNT/$P-c9" ]
	grep -q "levels deep" "$MNT/$P-c8/error"
	assert_healthy "$P-c8"
}

@test "/sbx/error keeps the last 64 failures" {
	local i
	for ((i = 1; i <= 70; i++)); do
		run mkdir "$MNT/bad@$i"
		assert_fails_with "Invalid argument"
	done
	run sbx_cat "$MNT/error"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 64 ]
	[[ "${lines[0]}" == *"'bad@7'"* ]]
	[[ "${lines[63]}" == *"'bad@70'"* ]]
	run grep -c "'bad@6'" <<<"$output"
	[ "$output" = 0 ]
}

@test "log shows the last 64 KiB of the console, from a line's start" {
	sbx_create "$P-l"
	# 20000 numbered lines (about 400 KB) on the console (init's stdout).
	sbx_exec "$P-l" 'i=0; while [ $i -lt 20000 ]; do echo "console line $i"; i=$((i+1)); done > /proc/1/fd/1'
	[ "$SBX_RC" = 0 ]
	local i out
	for ((i = 0; i < 300; i++)); do
		out=$(sbx_cat "$MNT/$P-l/log")
		grep -qx "console line 19999" <<<"$out" && break
		sleep 0.1
	done
	grep -qx "console line 19999" <<<"$out"
	local bytes first
	bytes=$(sbx_cat "$MNT/$P-l/log" | wc -c)
	echo "# log: $bytes bytes, from '$(head -n 1 <<<"$out")'"
	[ "$bytes" -le 65536 ]
	[ "$bytes" -gt $((65536 - 100)) ]
	first=$(head -n 1 <<<"$out")
	[[ "$first" =~ ^console\ line\ [0-9]+$ ]]
	run grep -cx "console line 0" <<<"$out"
	[ "$output" = 0 ]
}

@test "exec written while the sandbox is creating waits for it, then runs" {
	# One worker, kept busy: a sandbox's timeout stops it on that worker,
	# with 10 s of grace that its process, ignoring SIGTERM, uses up.
	sbx_stop_daemon
	sbx_start_daemon --workers 1
	sbx_create_ctl "$P-t" timeout=2
	sbx_run "$P-t" 'trap "echo term >> /t" TERM; while :; do sleep 1; done' >/dev/null
	local i
	for ((i = 0; i < 300; i++)); do
		grep -q term "$(upper "$P-t" t)" 2>/dev/null && break
		sleep 0.1
	done
	grep -q term "$(upper "$P-t" t)"
	# The only worker is in that stop now: this create waits in the queue.
	mkdir "$MNT/$P-x"
	[ "$(sbx_cat "$MNT/$P-x/status")" = creating ]
	sbx_exec "$P-x" 'echo hello from $(hostname)'
	[ "$SBX_OUT" = "hello from $P-x" ]
	[ "$SBX_RC" = 0 ]
	[ "$(sbx_cat "$MNT/$P-x/status")" = running ]
	wait_status "$P-t" stopped
	[ "$(sbx_key "$MNT/$P-t/events" reason)" = timeout ]
}

@test "a paused sandbox is re-adopted paused (still frozen) by a restarted daemon, and resumes" {
	keep_mode
	sbx_create "$P-q"
	local pid
	pid=$(sbx_pid_of "$P-q")
	start_counter "$P-q"
	echo pause >"$MNT/$P-q/ctl"
	[ "$(sbx_cat "$MNT/$P-q/status")" = paused ]
	local c1 c2
	c1=$(counter_of "$P-q")
	{
		kill -9 "$SBX_PID"
		wait "$SBX_PID" || true
	} 2>/dev/null
	sbx_start_daemon_keep
	[ "$(sbx_cat "$MNT/$P-q/status")" = paused ]
	[ "$(sbx_key "$MNT/$P-q/stats" pid)" = "$pid" ]
	grep -q "sandbox $P-q: re-adopted (pid $pid)" "$SBX_LOG"
	sleep 2 # the job counts 20 times a second when it runs
	c2=$(counter_of "$P-q")
	echo "# paused across the restart: counter $c1, then $c2"
	[ "$c1" = "$c2" ]
	echo resume >"$MNT/$P-q/ctl"
	[ "$(sbx_cat "$MNT/$P-q/status")" = running ]
	wait_counter_above "$P-q" "${c2:-0}"
	assert_healthy "$P-q"
}
