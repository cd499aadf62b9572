#!/usr/bin/env bats
# The daemon dies, the sandboxes live: concurrent clients create sandboxes
# (each records whether its mkdir succeeded) while the daemon is killed with
# -9 and restarted twice on the same state dir (without --stop-on-exit, so the
# sandboxes outlive it and the new daemon re-adopts them). Afterwards:
#   - every sandbox that was running before a kill runs after it, same pid
#     (re-adopted), and exec works in one (the new daemon reached its init
#     through STATE/sandboxes/NAME/init.sock);
#   - every sandbox a client saw succeed exists and is running or stopped
#     (or failed with a sentence: it was mid-create when the daemon died);
#   - nothing else exists, except names whose mkdir was cut off by the kill
#     itself (the client saw a dead mount, not an answer: in doubt);
#   - after removing them all, nothing leaked (cgroups, sbx-inits, state dirs,
#     layers, mounts).
# And the daemon killed at each step of a create (the test-only hook
# SANDBOXFS_TEST_KILL_AT=STEP, see engine/lifecycle.c): a restarted daemon
# shows the half-made sandbox as failed or has no trace of it; the state dir
# and the mount always agree.
#
#   KILL_SECONDS   how long the clients run (default 20); the two kills fall at
#                  about a quarter and a half of it
#   KILL_CLIENTS   concurrent clients (default 4)
#   KILL_PER_CLIENT  creates per client, spread over KILL_SECONDS (default 6)
# Waits are bounds only; nothing here asserts on how long anything took.

load ../integration/helpers

KILL_SECONDS="${KILL_SECONDS:-20}"
KILL_CLIENTS="${KILL_CLIENTS:-4}"
KILL_PER_CLIENT="${KILL_PER_CLIENT:-6}"

setup() {
	sbx_make_tmp
	P="kl${SBX_TAG}"
	: >"$SBX_TMP/bg"
	# The mount point's own directory is read-only underneath: while no
	# daemon is mounted, a client's mkdir fails (EROFS) instead of making a
	# plain directory that would look like a created sandbox.
	mount --bind "$MNT" "$MNT"
	mount -o remount,bind,ro "$MNT"
	start_daemon
}

teardown() {
	# Our clients first (by the pids we recorded).
	sbx_bg_kill
	# Sandboxes outlive a dead daemon here.
	teardown_sbx_readopt start_daemon
}

# The daemon of this suite: its sandboxes outlive it, with networking on the
# daemon's default bridge (the stress suites run alone).
start_daemon() {
	SBX_NET_ARGS="" sbx_start_daemon_keep "$@"
}

# client ID: create $P-cID-K, K = 1, 2, ... paced so that its KILL_PER_CLIENT
# creates spread over KILL_SECONDS, until the stop file; one line per attempt
# in kill.cID: `name rc message`.
client() {
	local id=$1 k rc msg name errf="$SBX_TMP/kill.c$id.err"
	local pace_ms=$((KILL_SECONDS * 1000 / KILL_PER_CLIENT)) ms
	RANDOM=$((id * 31 + 7))
	for ((k = 1; k <= KILL_PER_CLIENT + 4; k++)); do
		[[ -e "$SBX_TMP/kill.stop" ]] && break
		name="$P-c$id-$k"
		rc=0
		timeout 60 mkdir "$MNT/$name" 2>"$errf" || rc=$?
		msg=""
		((rc == 0)) || IFS= read -r msg <"$errf" || true
		echo "$name $rc ${msg##*: }" >>"$SBX_TMP/kill.c$id"
		ms=$((pace_ms / 2 + RANDOM % (pace_ms + 1)))
		sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	done
}

# A few mkdirs fired together with the kill, so some are in flight when the
# daemon dies (kill.kROUND, same format).
kill_burst() {
	local round=$1 j rc msg
	for ((j = 1; j <= 3; j++)); do
		(
			rc=0
			timeout 60 mkdir "$MNT/$P-k$round-$j" 2>"$SBX_TMP/kill.k$round.$j.err" || rc=$?
			msg=""
			((rc == 0)) || IFS= read -r msg <"$SBX_TMP/kill.k$round.$j.err" || true
			echo "$P-k$round-$j $rc ${msg##*: }" >>"$SBX_TMP/kill.k$round"
		) 3>&- &
		sbx_bg_note "$!"
	done
}

# `name pid` of every running sandbox.
running_snapshot() {
	local d name st pid
	for d in "$MNT/$P"-*; do
		[[ -d "$d" ]] || continue
		name=${d##*/}
		st=$(sbx_cat "$d/status" 2>/dev/null) || continue
		[[ "$st" == running ]] || continue
		pid=$(sbx_key "$d/stats" pid 2>/dev/null) || continue
		sbx_note_pid "$pid"
		echo "$name $pid"
	done
}

# kill -9 the daemon, start another; then check that every sandbox of the
# snapshot taken just before is running again with the same pid.
kill_and_restart() {
	local round=$1 name pid st now n=0
	running_snapshot >"$SBX_TMP/snap.$round"
	kill_burst "$round"
	{
		kill -9 "$SBX_PID"
		wait "$SBX_PID" || true
	} 2>/dev/null
	start_daemon
	while read -r name pid; do
		st=$(sbx_cat "$MNT/$name/status")
		now=$(sbx_key "$MNT/$name/stats" pid)
		if [[ "$st" != running || "$now" != "$pid" ]]; then
			echo "kill $round: $name was running (pid $pid) before; after: '$st' pid '$now'"
			echo "  error: $(sbx_cat "$MNT/$name/error")"
			return 1
		fi
		n=$((n + 1))
	done <"$SBX_TMP/snap.$round"
	echo "$n" >"$SBX_TMP/adopted.$round"
	echo "# kill $round: $n running sandboxes re-adopted"
	grep -q "re-adopted" "$SBX_LOG" || ((n == 0))
}

@test "kill -9 twice under load: every created sandbox survives, nothing else appears, nothing leaks" {
	local i pid clients=() t0=$SECONDS
	sbx_create "$P-first"
	find_host_tag "$P-first"
	echo "$P-first 0" >"$SBX_TMP/kill.c9"
	for ((i = 0; i < KILL_CLIENTS; i++)); do
		client "$i" 3>&- &
		clients+=($!)
		sbx_bg_note "$!"
	done
	local t
	for t in 1 2; do
		sleep $((KILL_SECONDS / 4))
		kill_and_restart "$t"
	done
	# The rest of the load on the last daemon.
	sleep $((KILL_SECONDS / 2))
	touch "$SBX_TMP/kill.stop"
	for pid in "${clients[@]}"; do wait "$pid"; done
	while read -r pid; do wait "$pid" 2>/dev/null || true; done <"$SBX_TMP/bg"

	echo "# load phase: $((SECONDS - t0)) s"
	# Settle: nothing still creating (bounded).
	local d st busy
	for ((i = 0; i < 600; i++)); do
		busy=0
		for d in "$MNT/$P"-*; do
			[[ -d "$d" ]] || continue
			[[ "$(sbx_cat "$d/status" 2>/dev/null)" == creating ]] && busy=1
		done
		((busy == 0)) && break
		sleep 0.1
	done

	cat "$SBX_TMP"/kill.c? "$SBX_TMP"/kill.k? >"$SBX_TMP/attempts"
	local attempts ok indoubt
	attempts=$(wc -l <"$SBX_TMP/attempts")
	awk '$2 == 0 { print $1 }' "$SBX_TMP/attempts" | sort >"$SBX_TMP/ok"
	# Cut off by the kill: the client never got an answer.
	grep -E 'not connected|connection abort|Software caused|Input/output error|No such device' \
		"$SBX_TMP/attempts" | awk '{ print $1 }' | sort >"$SBX_TMP/indoubt" || true
	ok=$(wc -l <"$SBX_TMP/ok")
	indoubt=$(wc -l <"$SBX_TMP/indoubt")
	echo "# $attempts mkdir attempts, $ok succeeded, $indoubt cut off by a kill; outcomes:"
	awk '{ $1 = ""; if ($2 == 0) $3 = "ok"; $2 = ""; print }' "$SBX_TMP/attempts" | sort | uniq -c |
		sed 's/^/#   /'
	((ok > 0))
	# No client hung (timeout) and no other errno than a dead mount or EROFS
	# (the mount point between two daemons).
	local hung others
	hung=$(awk '$2 == 124 || $2 == 137' "$SBX_TMP/attempts")
	[[ -z "$hung" ]] || {
		echo "clients that hung (timeout):"
		echo "$hung"
		false
	}
	others=$(awk '$2 != 0' "$SBX_TMP/attempts" |
		grep -v -E 'not connected|connection abort|Software caused|Input/output error|No such device|Read-only file system|No such file or directory' || true)
	[[ -z "$others" ]] || {
		echo "mkdirs that failed with an errno other than a dead mount's or EROFS (e.g. ENOSYS):"
		echo "$others"
		false
	}

	# Every success exists, running or stopped (failed only with a sentence).
	local name bad=0 nfailed=0
	while read -r name; do
		if [[ ! -d "$MNT/$name" ]]; then
			echo "lost: $name (its mkdir succeeded)"
			bad=1
			continue
		fi
		st=$(sbx_cat "$MNT/$name/status")
		case $st in
		running | stopped) ;;
		failed)
			nfailed=$((nfailed + 1))
			[[ -n "$(sbx_cat "$MNT/$name/error")" ]] || {
				echo "$name failed without a sentence"
				bad=1
			}
			echo "# $name: failed: $(sbx_cat "$MNT/$name/error")"
			;;
		*)
			echo "$name: status '$st'"
			bad=1
			;;
		esac
	done <"$SBX_TMP/ok"
	# Nothing else, except names in doubt; the state dir agrees with the mount.
	local extra=0
	for name in $(sbx_names); do
		grep -qxF -- "$name" "$SBX_TMP/ok" && continue
		if grep -qxF -- "$name" "$SBX_TMP/indoubt"; then
			extra=$((extra + 1))
			echo "# in doubt and present: $name ($(sbx_cat "$MNT/$name/status"))"
			continue
		fi
		echo "unexpected sandbox: $name ($(grep -F -- "$name " "$SBX_TMP/attempts" || echo never attempted))"
		bad=1
	done
	diff <(ls "$STATE/sandboxes" | sort) <(sbx_names | sort) || {
		echo "state dir and mount disagree"
		bad=1
	}
	# No address handed out twice across the restarts (when sandboxes have
	# a network: the `net` file and an `ip` in it).
	local ip
	: >"$SBX_TMP/ips"
	for d in $(sbx_names); do
		d="$MNT/$d"
		[[ -f "$d/net" && "$(sbx_cat "$d/status")" == running ]] || continue
		ip=$(sbx_key "$d/net" ip 2>/dev/null) || continue
		[[ -n "$ip" && "$ip" != - ]] && echo "$ip $(basename "$d")" >>"$SBX_TMP/ips"
	done
	if [[ -n "$(awk '{ print $1 }' "$SBX_TMP/ips" | sort | uniq -d)" ]]; then
		echo "addresses handed out twice:"
		sort "$SBX_TMP/ips" | awk '{ n[$1]++; l[$1] = l[$1] " " $2 } END { for (i in n) if (n[i] > 1) print i ":" l[i] }'
		bad=1
	fi
	echo "# $(wc -l <"$SBX_TMP/ips") running sandboxes with an address, all distinct"
	echo "# after: $(sbx_names | wc -l) sandboxes, $nfailed failed (mid-create at a kill), $extra present in doubt"
	((bad == 0))

	# exec works in a re-adopted sandbox (one re-adopted twice if any).
	local adopted
	adopted=$(awk '{ print $1 }' "$SBX_TMP/snap.1" | head -n 1)
	[[ -n "$adopted" ]] || adopted=$(awk '{ print $1 }' "$SBX_TMP/snap.2" | head -n 1)
	[ -n "$adopted" ]
	sbx_exec "$adopted" 'echo adopted-$(hostname)' >/dev/null
	[ "$SBX_OUT" = "adopted-$adopted" ]
	[ "$SBX_RC" = 0 ]
	echo "# re-adopted: $(cat "$SBX_TMP/adopted.1") then $(cat "$SBX_TMP/adopted.2"); exec works in $adopted"

	echo "# checks done at $((SECONDS - t0)) s"
	# Remove everything; then nothing may be left.
	for name in $(sbx_names); do
		sbx_pid_of "$name" >/dev/null 2>&1 || true
		timeout 60 rmdir "$MNT/$name"
	done
	local out=""
	for ((i = 0; i < 100; i++)); do
		out=$(kill_leaks) && break
		sleep 0.2
	done
	kill_leaks
	assert_healthy
	echo "# removed at $((SECONDS - t0)) s"
}

# What is left of this test's sandboxes on the host (nothing: success).
kill_leaks() {
	sbx_run_leaks "$P"
}

@test "a sandbox whose init died while the daemon was down becomes stopped; rmdir leaves nothing" {
	sbx_create "$P-gone"
	sbx_create "$P-live"
	find_host_tag "$P-gone"
	local gone_pid live_pid
	gone_pid=$(sbx_pid_of "$P-gone")
	live_pid=$(sbx_pid_of "$P-live")
	{
		kill -9 "$SBX_PID"
		wait "$SBX_PID" || true
	} 2>/dev/null
	# The init of one sandbox ends while no daemon watches it (it is the
	# sandbox's pid we read from its stats, checked to still be sbx-init).
	[ "$(cat "/proc/$gone_pid/comm")" = sbx-init ]
	kill -9 "$gone_pid"
	local i
	# Wait (bounded) until it is reaped (by pid 1, its parent now), so the
	# restarted daemon finds no process at all.
	for ((i = 0; i < 150; i++)); do
		[[ -e "/proc/$gone_pid" ]] || break
		sleep 0.1
	done
	[[ -e "/proc/$gone_pid" ]] && echo "# init $gone_pid not reaped yet (zombie): it will be adopted and seen to exit"
	start_daemon
	# An adopted zombie's exit is seen by the monitor a moment after.
	wait_status "$P-gone" stopped
	# `host` when it was gone before the restart; `exit` when it was still
	# an unreaped zombie then (adopted, and seen to exit at once).
	sbx_cat "$MNT/$P-gone/events"
	[[ "$(sbx_key "$MNT/$P-gone/events" reason)" =~ ^(host|exit)$ ]]
	[ "$(sbx_cat "$MNT/$P-live/status")" = running ]
	[ "$(sbx_key "$MNT/$P-live/stats" pid)" = "$live_pid" ]
	assert_healthy "$P-live"
	rmdir "$MNT/$P-gone" "$MNT/$P-live"
	wait_no_leaks "$P-gone" "$gone_pid"
	wait_no_leaks "$P-live" "$live_pid"
	kill_leaks
	assert_healthy
}

# The daemon dies inside the create path, at each step, through the test-only
# hook SANDBOXFS_TEST_KILL_AT=STEP (engine/lifecycle.c: the daemon raises
# SIGKILL on itself when a create reaches STEP). A restarted daemon must show
# the half-made sandbox as failed (with a sentence; rmdir removes it) or have
# no trace of it: the state dir and the mount always agree, hidden entries
# included, and the name can be used again.
#   expect: absent (the kill fell before the state dir was in place) or failed
kill_inside_create() {
	local step=$1 expect=$2 name="$P-at-$1" i rc=0 st
	sbx_create "$P-live"
	local live_pid
	live_pid=$(sbx_pid_of "$P-live")
	# This daemon (setup's) is replaced by one that dies at STEP.
	{
		kill -9 "$SBX_PID"
		wait "$SBX_PID" || true
	} 2>/dev/null
	SANDBOXFS_TEST_KILL_AT=$step start_daemon
	local armed=$SBX_PID
	timeout 60 mkdir "$MNT/$name" 2>"$SBX_TMP/mkdir.err" || rc=$?
	echo "# mkdir at $step: rc $rc $(cat "$SBX_TMP/mkdir.err")"
	# The kill falls inside the mkdir handler for the commit steps: no answer.
	if [[ "$step" == commit-* ]]; then
		((rc != 0))
		grep -E -q 'not connected|connection abort|Software caused' "$SBX_TMP/mkdir.err"
	fi
	((rc != 124))
	for ((i = 0; i < 300; i++)); do
		kill -0 "$armed" 2>/dev/null || break
		sleep 0.1
	done
	run kill -0 "$armed"
	[ "$status" -ne 0 ] # it died at STEP
	wait "$armed" 2>/dev/null || true
	grep -q "SANDBOXFS_TEST_KILL_AT=$step" "$SBX_LOG"
	start_daemon
	# The state dir and the mount agree (hidden entries included).
	diff <(ls -A "$STATE/sandboxes" | sort) <(ls -A "$MNT" | while read -r d; do
		if [[ -f "$MNT/$d/status" ]]; then echo "$d"; fi
	done | sort)
	if [[ "$expect" == absent ]]; then
		[ ! -e "$MNT/$name" ]
	else
		st=$(sbx_cat "$MNT/$name/status")
		[ "$st" = failed ]
		[ -n "$(sbx_cat "$MNT/$name/error")" ]
		echo "# $name: $st: $(sbx_cat "$MNT/$name/error")"
		timeout 60 rmdir "$MNT/$name"
	fi
	# Nothing of it is left, and the other sandbox was re-adopted.
	wait_no_leaks "$name"
	[ "$(sbx_cat "$MNT/$P-live/status")" = running ]
	[ "$(sbx_key "$MNT/$P-live/stats" pid)" = "$live_pid" ]
	# The name is free again.
	sbx_create "$name"
	assert_healthy "$name"
	timeout 60 rmdir "$MNT/$name" "$MNT/$P-live"
	wait_no_leaks "$name"
	wait_no_leaks "$P-live" "$live_pid"
	for ((i = 0; i < 100; i++)); do
		kill_leaks >/dev/null && break
		sleep 0.1
	done
	kill_leaks
}

@test "killed inside a create: after the state dir is made, before its journal" {
	kill_inside_create commit-dir absent
}

@test "killed inside a create: after the journal, before the state dir is in place" {
	kill_inside_create commit-journal absent
}

@test "killed inside a create: state dir in place, start not queued" {
	kill_inside_create commit-done failed
}

@test "killed inside a create: the backend's files made, no init yet" {
	kill_inside_create start-create failed
}

@test "killed inside a create: init runs, its pid not journaled" {
	kill_inside_create start-spawned failed
}
