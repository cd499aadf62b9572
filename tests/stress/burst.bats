#!/usr/bin/env bats
# Burst: 100 mkdir at once, all reach running, 100 rmdir at once, nothing
# leaks (mounts, cgroup dirs, sandbox inits, state dirs). Bounded waits only;
# nothing here asserts on how long anything took.

load ../integration/helpers

BURST_N="${BURST_N:-100}"
BURST_WAIT="${BURST_WAIT:-120}"

setup() {
	setup_sbx
	P="bu${SBX_TAG}"
}

teardown() {
	teardown_sbx
}

# Names of the burst sandboxes.
burst_names() {
	local i
	for ((i = 1; i <= BURST_N; i++)); do
		echo "$P-$i"
	done
}

# Wait until every burst sandbox is running (bounded); print the stragglers.
wait_all_running() {
	local i name st pending
	for ((i = 0; i < BURST_WAIT * 2; i++)); do
		pending=0
		while read -r name; do
			st=$(sbx_cat "$MNT/$name/status" 2>/dev/null)
			[[ "$st" == running ]] || pending=$((pending + 1))
		done < <(burst_names)
		((pending == 0)) && return 0
		sleep 0.5
	done
	echo "not running after ${BURST_WAIT}s:"
	while read -r name; do
		st=$(sbx_cat "$MNT/$name/status" 2>/dev/null)
		[[ "$st" == running ]] || echo "  $name: '$st' error: $(sbx_cat "$MNT/$name/error" 2>/dev/null)"
	done < <(burst_names)
	sbx_cat "$MNT/stats"
	return 1
}

# Run CMD for every burst name in parallel background jobs; fails if any
# failed. CMD gets the path of the sandbox dir.
parallel_all() {
	local op=$1 name pids=() fails=0 p
	while read -r name; do
		timeout 120 "$op" "$MNT/$name" 2>>"$SBX_TMP/burst-errors" 3>&- &
		pids+=($!)
	done < <(burst_names)
	for p in "${pids[@]}"; do
		wait "$p" || fails=$((fails + 1))
	done
	if ((fails > 0)); then
		echo "$fails of $BURST_N '$op' failed:"
		head -n 20 "$SBX_TMP/burst-errors"
		return 1
	fi
}

# Every leak source at once, for the whole daemon. Args: file with pids.
check_nothing_leaks() {
	local pidfile=$1 bad=0 pid d n
	# mounts referencing the state dir
	n=$(grep -F -c -- "$STATE" /proc/mounts || true)
	if ((n > 0)); then
		echo "leak: $n mounts reference $STATE:"
		grep -F -- "$STATE" /proc/mounts | head
		bad=1
	fi
	# cgroup dirs of our sandboxes
	for d in /sys/fs/cgroup/*/sandboxfs /sys/fs/cgroup/sandboxfs; do
		[[ -d "$d" ]] || continue
		n=$(find "$d" -mindepth 1 -maxdepth 3 -type d -name "*$P-*" 2>/dev/null | wc -l)
		if ((n > 0)); then
			echo "leak: $n cgroup dirs under $d:"
			find "$d" -mindepth 1 -maxdepth 3 -type d -name "*$P-*" | head
			bad=1
		fi
	done
	# sandbox inits we saw
	while read -r pid; do
		[[ -e /proc/$pid ]] || continue
		[[ "$(awk '/^State:/ {print $2}' /proc/$pid/status 2>/dev/null)" == Z ]] && continue
		if [[ "$(cat /proc/$pid/comm 2>/dev/null)" == sbx-init ]]; then
			echo "leak: sandbox init $pid still running"
			bad=1
		fi
	done <"$pidfile"
	# any sbx-init that is a child of our daemon
	for d in /proc/[0-9]*; do
		[[ "$(cat "$d/comm" 2>/dev/null)" == sbx-init ]] || continue
		if [[ "$(awk '/^PPid:/ {print $2}' "$d/status" 2>/dev/null)" == "$SBX_PID" ]] &&
			[[ "$(awk '/^State:/ {print $2}' "$d/status" 2>/dev/null)" != Z ]]; then
			echo "leak: ${d#/proc/} is an sbx-init child of our daemon"
			bad=1
		fi
	done
	# state dirs
	if [[ -d "$STATE/sandboxes" ]]; then
		n=$(find "$STATE/sandboxes" -mindepth 1 -maxdepth 1 | wc -l)
		if ((n > 0)); then
			echo "leak: $n state dirs left in $STATE/sandboxes:"
			ls "$STATE/sandboxes" | head
			bad=1
		fi
	fi
	# directories in the mount
	n=$(sbx_names | wc -l)
	if ((n > 0)); then
		echo "leak: $n sandbox dirs still in $MNT"
		bad=1
	fi
	return $bad
}

@test "burst: $BURST_N mkdir at once all run, $BURST_N rmdir at once leave nothing behind" {
	parallel_all mkdir
	[ "$(sbx_names | wc -l)" -eq "$BURST_N" ]
	wait_all_running

	[ "$(sbx_key "$MNT/stats" sandboxes)" -eq "$BURST_N" ]
	[ "$(sbx_key "$MNT/stats" running)" -eq "$BURST_N" ]

	# Every sandbox is a distinct, working sandbox.
	: >"$SBX_TMP/burst-pids"
	while read -r name; do
		pid=$(sbx_pid_of "$name")
		[[ "$(cat /proc/$pid/comm)" == sbx-init ]]
		echo "$pid" >>"$SBX_TMP/burst-pids"
	done < <(burst_names)
	[ "$(sort -u "$SBX_TMP/burst-pids" | wc -l)" -eq "$BURST_N" ]
	for name in "$P-1" "$P-$((BURST_N / 2))" "$P-$BURST_N"; do
		sbx_exec "$name" hostname
		[ "$SBX_OUT" = "$name" ]
	done
	for k in create_p50_usec create_p95_usec create_p99_usec; do
		[[ "$(sbx_key "$MNT/stats" "$k")" =~ ^[0-9]+$ ]]
	done

	parallel_all rmdir
	[ "$(sbx_key "$MNT/stats" sandboxes)" -eq 0 ]

	ok=0
	for i in $(seq 100); do
		if check_nothing_leaks "$SBX_TMP/burst-pids" >/dev/null; then
			ok=1
			break
		fi
		sleep 0.1
	done
	check_nothing_leaks "$SBX_TMP/burst-pids"
	[ "$ok" = 1 ]
	assert_healthy
}

@test "burst: concurrent exec in many sandboxes" {
	local_n=20
	for ((i = 1; i <= local_n; i++)); do
		mkdir "$MNT/$P-x$i"
	done
	for ((i = 1; i <= local_n; i++)); do
		wait_status "$P-x$i" running 120
	done
	pids=()
	for ((i = 1; i <= local_n; i++)); do
		(
			exec 3>&-
			for j in 1 2 3 4 5; do
				sbx_exec "$P-x$i" "echo $i-$j" >/dev/null || exit 1
				[[ "$SBX_OUT" == "$i-$j" && "$SBX_RC" == 0 ]] || exit 1
			done
		) &
		pids+=($!)
	done
	fails=0
	for p in "${pids[@]}"; do
		wait "$p" || fails=$((fails + 1))
	done
	[ "$fails" -eq 0 ]
	assert_healthy "$P-x1"
}

@test "burst: create and remove the same names in quick rounds" {
	for round in 1 2 3; do
		# (never a bare `wait`: it would wait for the daemon too)
		pids=()
		for ((i = 1; i <= 10; i++)); do
			mkdir "$MNT/$P-r$i" 3>&- &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p"; done
		for ((i = 1; i <= 10; i++)); do
			wait_status "$P-r$i" running 120
			sbx_pid_of "$P-r$i" >/dev/null
		done
		pids=()
		for ((i = 1; i <= 10; i++)); do
			rmdir "$MNT/$P-r$i" 3>&- &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p"; done
		[ "$(sbx_key "$MNT/stats" sandboxes)" -eq 0 ]
	done
	ok=0
	for i in $(seq 100); do
		if check_nothing_leaks "$SBX_TMP/pids" >/dev/null; then
			ok=1
			break
		fi
		sleep 0.1
	done
	check_nothing_leaks "$SBX_TMP/pids"
	[ "$ok" = 1 ]
}
