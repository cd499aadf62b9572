#!/usr/bin/env bats
# Hostile neighbours (issue 15): a mixed hostile load runs for STRESS_SECONDS
# beside three well-behaved sandboxes, whose `status` read and `exec` of
# `echo hi` are timed first with the hostile sandboxes idle (the baseline),
# then during the load. The table (idle against load: p50, p95, ratio) is a
# figure for the bench, printed and written to STRESS_REPORT, never asserted
# on. Asserted: the daemon survived, the mount answers, the well-behaved
# sandboxes still run and answer exec, and once everything is removed nothing
# leaked (mounts, cgroups, sbx-inits, state dirs, layers, daemon fds).
#
# The load, each part held by a limit of its sandbox (cpus=0.5 each, so that
# on a 2-core machine the test and the daemon keep some CPU) or a bound here:
#   fork bomb  pids=64: `b() { b | b & }; b`, lit again every second
#   readers    HOSTILE_READERS (200) reads of `wait`, issued again as each
#              returns (their sandbox is paused and resumed every second,
#              which answers them all at once), and as many exec reads of a
#              `sleep` that never ends, all parked by the daemon (one
#              process, a thread each)
#   tree       a tree HOSTILE_DEPTH (2000) levels deep and a 1 TB sparse
#              file, forked (the child then removed) over and over
#   floods     two jobs running `yes` (joblog=1M: what is kept is bounded)
#   memory     memory=32M and a loop of `dd bs=48M`: OOM-killed every time
#   churn      mkdir then rmdir of a sandbox, over and over
#
#   STRESS_SECONDS   length of the load (default 15; `make stress`: 60)
#   STRESS_SAMPLES   idle samples of each operation (default 50)
#   STRESS_REPORT    the table's file (default build/stress/hostile.md)
# Every wait is a bound against a hang; nothing asserts how long anything took.

load ../integration/helpers

STRESS_SECONDS="${STRESS_SECONDS:-15}"
STRESS_SAMPLES="${STRESS_SAMPLES:-50}"
HOSTILE_READERS="${HOSTILE_READERS:-200}"
HOSTILE_DEPTH="${HOSTILE_DEPTH:-2000}"
STRESS_REPORT="${STRESS_REPORT:-$SBX_REPO/build/stress/hostile.md}"
# A deep tree makes every step slow on a slow disk: generous bounds.
SBX_EXEC_WAIT=300

setup() {
	setup_sbx
	P="hl${SBX_TAG}"
	HELPER="$BATS_TEST_DIRNAME/hostile_load.py"
	: >"$SBX_TMP/bg"
	: >"$SBX_TMP/names"
	: >"$SBX_TMP/forks"
	: >"$SBX_TMP/churn"
}

teardown() {
	# Our background processes first (by the pids we recorded), so that no
	# handle of theirs keeps the mount busy.
	sbx_bg_kill
	teardown_sbx
}

daemon_fds() {
	ls "/proc/$SBX_PID/fd" 2>/dev/null | wc -l
}

# CPU time the daemon used so far (user + system, clock ticks).
daemon_cpu_ticks() {
	sed 's/^.*) //' "/proc/$SBX_PID/stat" | awk '{ print $12 + $13 }'
}

# sx NAME CMD: exec CMD in NAME; fails unless it exits 0.
sx() {
	sbx_exec "$1" "$2" >/dev/null || return 1
	[[ "$SBX_RC" == 0 ]] || {
		echo "sx $1: '$2' exited $SBX_RC: $SBX_OUT" >&2
		return 1
	}
}

# mk NAME [OPTIONS...]: create and note NAME for the leak checks.
mk() {
	echo "$1" >>"$SBX_TMP/names"
	sbx_create_ctl "$@"
}

# wait_gone PID SECONDS: wait (bounded) for a background process of ours.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || {
			wait "$1" 2>/dev/null || true # its status is not what is checked
			return 0
		}
		sleep 0.1
	done
	echo "background process $1 still runs after $2 s:" >&2
	ps -o pid,stat,wchan:32,args -p "$1" --ppid "$1" >&2
	return 1
}

# The tree's fork, child removed, over and over until UNTIL.
fork_loop() {
	local i=0 child
	while (($(date +%s) < UNTIL)); do
		i=$((i + 1))
		child="$P-tf$i"
		echo "$child" >>"$SBX_TMP/names"
		if sbx_write "$MNT/$P-tree/ctl" "fork $child" 2>/dev/null &&
			wait_status "$child" 'running|failed' 120 2>/dev/null; then
			echo ok >>"$SBX_TMP/forks"
		else
			echo failed >>"$SBX_TMP/forks"
			sleep 0.5
		fi
		[[ -d "$MNT/$child" ]] && timeout 120 rmdir "$MNT/$child" 2>/dev/null
	done
}

# Pause and resume NAME every second until UNTIL: each change answers every
# parked read of its `wait`, and the readers read again at once.
toggle_loop() {
	local n=0
	while (($(date +%s) < UNTIL)); do
		sbx_write "$MNT/$1/ctl" pause && sleep 0.5
		sbx_write "$MNT/$1/ctl" resume && n=$((n + 2))
		sleep 0.5
	done
	echo "$n" >"$SBX_TMP/toggles"
	sbx_write "$MNT/$1/ctl" resume 2>/dev/null || true # it may be running already
}

# mkdir, wait for running, rmdir, over and over until UNTIL.
churn_loop() {
	local i=0 name
	while (($(date +%s) < UNTIL)); do
		i=$((i + 1))
		name="$P-c$i"
		echo "$name" >>"$SBX_TMP/names"
		if timeout 60 mkdir "$MNT/$name" 2>/dev/null &&
			wait_status "$name" running 120 2>/dev/null; then
			echo ok >>"$SBX_TMP/churn"
		else
			echo failed >>"$SBX_TMP/churn"
			sleep 0.5
		fi
		[[ -d "$MNT/$name" ]] && timeout 120 rmdir "$MNT/$name" 2>/dev/null
	done
}

# The figures: the table, and what the load did.
report() {
	local out="$SBX_TMP/report.md"
	{
		echo "Hostile load: ${STRESS_SECONDS} s on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)," \
			"at $(git -C "$SBX_REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(
				git -C "$SBX_REPO" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
		echo
		"$HELPER" report "$SBX_TMP/idle.txt" "$SBX_TMP/load.txt"
		echo
		echo "During the load: $(grep -c ok "$SBX_TMP/forks") forks of the deep tree" \
			"($(grep -c failed "$SBX_TMP/forks") failed), $(grep -c ok "$SBX_TMP/churn")" \
			"mkdir/rmdir cycles ($(grep -c failed "$SBX_TMP/churn") failed), $OOMS OOM kills," \
			"the bomb at $BOMB_PIDS of 64 pids, $(cat "$SBX_TMP/toggles" 2>/dev/null)" \
			"pauses and resumes answering $(awk '$1 == "wait_reads" { print $2 }' \
				"$SBX_TMP/readers.out" 2>/dev/null) parked wait reads; the daemon used" \
			"$DAEMON_CPU s of CPU; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
	} >"$out"
	sed 's/^/# /' "$out" >&3
	mkdir -p "$(dirname "$STRESS_REPORT")" && cp "$out" "$STRESS_REPORT"
}

@test "hostile neighbours: status and exec latency idle and under a mixed hostile load; the daemon survives, nothing leaks" {
	local fd0 fd1 g i name readers_pid fork_pid churn_pid toggle_pid cpu0
	fd0=$(daemon_fds)
	local good=("$P-g1" "$P-g2" "$P-g3")
	for g in "${good[@]}"; do
		mk "$g"
	done
	mk "$P-bomb" pids=64 cpus=0.5 memory=128M
	mk "$P-flood" joblog=1M cpus=0.5
	mk "$P-oom" memory=32M cpus=0.5
	mk "$P-tree" cpus=0.5
	mk "$P-read" pids=4096 memory=1G cpus=0.5
	sx "$P-tree" "mkdir /t && cd /t && i=0; while [ \$i -lt $HOSTILE_DEPTH ]; do mkdir d && cd d || exit 1; i=\$((i+1)); done; truncate -s 1099511627776 /sparse"

	# The baseline: the same sandboxes, nothing running in the hostile ones.
	timeout 600 "$HELPER" sample "$SBX_TMP/idle.txt" "$STRESS_SAMPLES" 0 0.02 "$MNT" "${good[@]}" 3>&-

	# The readers first: their exec commands start before the first pause
	# of their sandbox (bounded wait), and before the clock of the load.
	"$HELPER" readers "$MNT" "$P-read" "$HOSTILE_READERS" "$SBX_TMP/readers.out" \
		</dev/null >"$SBX_TMP/readers.log" 2>&1 3>&- &
	readers_pid=$!
	sbx_bg_note "$readers_pid"
	for ((i = 0; i < 600; i++)); do
		(($(sbx_key "$MNT/$P-read/stats" pids_current || echo 0) > HOSTILE_READERS)) && break
		sleep 0.1
	done
	UNTIL=$(($(date +%s) + STRESS_SECONDS))
	cpu0=$(daemon_cpu_ticks)
	sbx_run "$P-bomb" 'while :; do b() { b | b & }; b; sleep 1; done' >/dev/null
	sbx_run "$P-flood" 'yes' >/dev/null
	sbx_run "$P-flood" 'yes flood-flood-flood-flood-flood-flood-flood-flood' >/dev/null
	sbx_run "$P-oom" 'while :; do dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null; done' >/dev/null
	fork_loop </dev/null >"$SBX_TMP/fork.log" 2>&1 3>&- &
	fork_pid=$!
	sbx_bg_note "$fork_pid"
	churn_loop </dev/null >"$SBX_TMP/churn.log" 2>&1 3>&- &
	churn_pid=$!
	sbx_bg_note "$churn_pid"
	toggle_loop "$P-read" </dev/null >"$SBX_TMP/toggle.log" 2>&1 3>&- &
	toggle_pid=$!
	sbx_bg_note "$toggle_pid"

	# The same operations under the load, until its end.
	timeout $((STRESS_SECONDS + 600)) "$HELPER" sample "$SBX_TMP/load.txt" 0 "$UNTIL" 0.05 \
		"$MNT" "${good[@]}" 3>&-
	DAEMON_CPU=$(awk -v t="$(daemon_cpu_ticks)" -v t0="$cpu0" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", (t - t0) / hz }')
	OOMS=$(sbx_key "$MNT/$P-oom/stats" oom_kills || echo '?')
	BOMB_PIDS=$(sbx_key "$MNT/$P-bomb/stats" pids_current || echo '?')
	wait_gone "$fork_pid" 600
	wait_gone "$churn_pid" 600
	wait_gone "$toggle_pid" 120
	# Removing the hostile ones ends their load and answers the parked readers.
	for name in "$P-bomb" "$P-flood" "$P-oom" "$P-tree" "$P-read"; do
		timeout 300 rmdir "$MNT/$name"
	done
	wait_gone "$readers_pid" 120
	report

	# Survived: the daemon, the mount, the well-behaved sandboxes.
	sbx_daemon_alive
	sbx_cat "$MNT/stats" >/dev/null
	timeout 10 ls "$MNT" >/dev/null
	for g in "${good[@]}"; do
		assert_healthy "$g"
	done

	# Nothing leaked, of anything this test made.
	for g in "${good[@]}"; do
		timeout 120 rmdir "$MNT/$g"
	done
	while read -r name; do
		wait_no_leaks "$name"
	done <"$SBX_TMP/names"
	local left=""
	for ((i = 0; i < 100; i++)); do
		left=$(find "$STATE/layers" -mindepth 1 -maxdepth 1 2>/dev/null)
		[[ -z "$left" ]] && break
		sleep 0.2
	done
	[ -z "$left" ] || {
		echo "layers left: $left" >&2
		false
	}
	while read -r i; do
		[[ "$i" =~ ^[0-9]+$ && "$(cat "/proc/$i/comm" 2>/dev/null)" == sbx-init ]] || continue
		echo "sandbox init $i still runs" >&2
		false
	done <"$SBX_TMP/pids"
	for ((i = 0; i < 100; i++)); do
		fd1=$(daemon_fds)
		((fd1 <= fd0 + 8)) && break
		sleep 0.2
	done
	sbx_diag "daemon fds: $fd0 before, $fd1 after"
	((fd1 <= fd0 + 8))
}
