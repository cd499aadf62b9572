#!/usr/bin/env bats
# Warm pools (/sbx/pools/NAME/): sandboxes made ahead of one spec, claimed by
# a mkdir or create of the same spec (running at once, under the user's
# name), refilled in the background, journaled, and never left behind.

load helpers

setup() {
	sbx_make_tmp
	# A private images dir: one test takes its image away.
	mkdir -p "$SBX_TMP/images"
	cp -a "$SBX_IMAGES/busybox" "$SBX_TMP/images/busybox"
	export SBX_IMAGES="$SBX_TMP/images"
	sbx_start_daemon
	P="$MNT/pools/wp$SBX_TAG"
}

teardown() {
	teardown_sbx_readopt sbx_start_daemon_keep
}

# True when pid is a live sandbox init (PID 1 here may leave dead ones as zombies).
live_init() {
	[[ "$(cat "/proc/$1/comm" 2>/dev/null)" == sbx-init &&
		"$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" != Z ]] || return 1
	# Killed, its exit under way (under load the kernel can take seconds to
	# tear a pid namespace down): PF_EXITING in its flags, or SIGKILL pending.
	local flags pnd
	flags=$(awk '{ print $9 }' "/proc/$1/stat" 2>/dev/null) || return 1
	(((${flags:-0} & 0x4) == 0)) || return 1
	for pnd in $(awk '/^(SigPnd|ShdPnd):/ { print $2 }' "/proc/$1/status" 2>/dev/null); do
		(((0x$pnd & 0x100) == 0)) || return 1
	done
}

# Hidden member state dirs of the daemon (never shown in the mount).
members_on_disk() { find "$STATE/sandboxes" -maxdepth 1 -name '.p*' | wc -l; }

# This daemon's cgroups named NAME (a glob; other daemons' are not counted).
cgroups_named() {
	local tag
	tag=$(state_host_tag)
	find /sys/fs/cgroup/*/sandboxfs /sys/fs/cgroup/sandboxfs -maxdepth 1 -name "$tag-$1" 2>/dev/null |
		grep -c . || true
}

@test "a mkdir takes a ready member: running at once, under its own name" {
	mkdir "$P"
	[[ -f "$P/spec" && -f "$P/size" && -f "$P/status" ]]
	[[ "$(cat "$P/size")" == 0 ]]
	echo 2 >"$P/size"
	wait_ready 2
	[[ "$(members_on_disk)" == 2 ]]
	# Members are not sandboxes.
	run ls "$MNT"
	[[ "$output" != *.p* ]]
	[[ "$(sbx_key "$MNT/stats" running)" == 0 ]]
	[[ "$(sbx_key "$MNT/stats" pool_ready)" == 2 ]]

	mkdir "$MNT/a$SBX_TAG"
	# No wait: the claim made it running before mkdir returned.
	[[ "$(cat "$MNT/a$SBX_TAG/status")" == running ]]
	[[ "$(sbx_key "$MNT/a$SBX_TAG/stats" create_mode)" == pool ]]
	claim=$(sbx_key "$MNT/a$SBX_TAG/stats" claim_usec)
	((claim > 0))
	sbx_exec "a$SBX_TAG" hostname
	[[ "$SBX_OUT" == "a$SBX_TAG" && "$SBX_RC" == 0 ]]
	[[ -d "$STATE/sandboxes/a$SBX_TAG" ]]
	[[ "$(pool_key hits)" == 1 ]]
	# Refilled to its size.
	wait_ready 2
	[[ "$(pool_key made)" == 3 ]]
	# The claimed sandbox is an ordinary one: stop, start, rmdir.
	echo stop >"$MNT/a$SBX_TAG/ctl"
	wait_status "a$SBX_TAG" stopped
	echo start >"$MNT/a$SBX_TAG/ctl"
	wait_status "a$SBX_TAG" running
	sbx_exec "a$SBX_TAG" hostname
	[[ "$SBX_OUT" == "a$SBX_TAG" ]]
	pid=$(sbx_pid_of "a$SBX_TAG")
	rmdir "$MNT/a$SBX_TAG"
	wait_no_leaks "a$SBX_TAG" "$pid"
}

@test "claimed sandboxes are distinct; a create of another spec is made cold" {
	mkdir "$P"
	echo "memory=128M pids=64" >"$P/spec"
	grep -q 'memory=134217728 .*pids=64 ' "$P/spec"
	echo 3 >"$P/size"
	wait_ready 3
	for i in 1 2 3; do
		echo "create c$i$SBX_TAG pids=64 memory=128M" >"$MNT/ctl"
		[[ "$(cat "$MNT/c$i$SBX_TAG/status")" == running ]]
		[[ "$(sbx_key "$MNT/c$i$SBX_TAG/stats" create_mode)" == pool ]]
	done
	names=""
	for i in 1 2 3; do
		sbx_exec "c$i$SBX_TAG" 'hostname; cat /proc/sys/kernel/hostname'
		[[ "$SBX_OUT" == "c$i$SBX_TAG"$'\n'"c$i$SBX_TAG" ]]
		names+="$(sbx_pid_of "c$i$SBX_TAG") "
	done
	# Three different inits.
	[[ "$(tr ' ' '\n' <<<"$names" | sort -u | grep -c .)" == 3 ]]
	# Their config is the spec's.
	grep -q '"memory": 134217728' "$MNT/c1$SBX_TAG/config"
	[[ "$(sbx_key "$MNT/c1$SBX_TAG/stats" pids_limit)" == 64 ]]
	# A bare mkdir (the default spec) is not this pool's.
	mkdir "$MNT/d$SBX_TAG"
	wait_status "d$SBX_TAG" running
	[[ "$(sbx_key "$MNT/d$SBX_TAG/stats" create_mode)" == cold ]]
	# Neither is a claim past the ready ones... until the pool refilled:
	# a miss is counted, and the sandbox is made cold.
	echo 0 >"$P/size"
	echo "create e$SBX_TAG pids=64 memory=128M" >"$MNT/ctl"
	wait_status "e$SBX_TAG" running
	[[ "$(sbx_key "$MNT/e$SBX_TAG/stats" create_mode)" == cold ]]
	[[ "$(pool_key misses)" == 1 ]]
	[[ "$(pool_key hits)" == 3 ]]
}

@test "a name already taken fails with EEXIST and the member stays ready" {
	mkdir "$P"
	echo 1 >"$P/size"
	wait_ready 1
	mkdir "$MNT/t$SBX_TAG"
	wait_ready 1
	run mkdir "$MNT/t$SBX_TAG"
	assert_fails_with "File exists"
	[[ "$(pool_key ready)" == 1 ]]
	run mkdir "$MNT/.hidden"
	assert_fails
	[[ "$(pool_key ready)" == 1 ]]
	assert_healthy "t$SBX_TAG"
}

@test "a spec change or a smaller size discards members; removing the pool leaves nothing" {
	mkdir "$P"
	echo 2 >"$P/size"
	wait_ready 2
	pids=$(for f in "$STATE"/sandboxes/.p*/sandbox.json; do jq -r .pid "$f"; done)
	echo "pids=64" >"$P/spec"
	wait_ready 2
	[[ "$(pool_key discarded)" == 2 ]]
	for pid in $pids; do
		run live_init "$pid"
		[ "$status" -ne 0 ]
	done
	echo 1 >"$P/size"
	wait_ready 1
	[[ "$(members_on_disk)" == 1 ]]
	pids=$(for f in "$STATE"/sandboxes/.p*/sandbox.json; do jq -r .pid "$f"; done)
	(($(cgroups_named '.p*') > 0))
	rmdir "$P"
	[[ ! -e "$P" ]]
	for _ in $(seq 50); do
		[[ "$(members_on_disk)" == 0 ]] && break
		sleep 0.1
	done
	[[ "$(members_on_disk)" == 0 ]]
	[[ ! -e "$STATE/pools/wp$SBX_TAG.json" ]]
	for pid in $pids; do
		run live_init "$pid"
		[ "$status" -ne 0 ]
	done
	[[ "$(cgroups_named '.p*')" == 0 ]]
	assert_healthy
}

@test "bad pool input fails with an errno and a sentence" {
	mkdir "$P"
	run sbx_write "$P/spec" "memory=lots"
	assert_fails_with "Invalid argument"
	grep -q "memory=lots" "$P/error"
	run sbx_write "$P/spec" "backend=nosuch"
	assert_fails_with "Operation not supported|Invalid argument"
	run sbx_write "$P/spec" "nonsense"
	assert_fails_with "Invalid argument"
	run sbx_write "$P/size" "abc"
	assert_fails_with "Invalid argument"
	run sbx_write "$P/size" "5000"
	assert_fails_with "Invalid argument"
	run sbx_write "$P/size" "-1"
	assert_fails_with "Invalid argument"
	run sbx_write "$P/status" "ready 9"
	assert_fails
	run mkdir "$P"
	assert_fails_with "File exists"
	run mkdir "$MNT/pools/.x"
	assert_fails_with "Invalid argument"
	run rmdir "$MNT/pools/nope$SBX_TAG"
	assert_fails_with "No such file"
	run mkdir "$MNT/pools"
	assert_fails_with "File exists"
	run sbx_write "$MNT/ctl" "create pools"
	assert_fails_with "File exists"
	# Nothing changed.
	[[ "$(cat "$P/size")" == 0 ]]
	grep -q '^image=busybox ' "$P/spec"
	assert_healthy
}

@test "a pool whose image is gone stalls with a sentence; its ready members still serve" {
	mkdir "$P"
	echo 1 >"$P/size"
	wait_ready 1
	mv "$SBX_IMAGES/busybox" "$SBX_IMAGES/busybox.away"
	mkdir "$MNT/g$SBX_TAG"
	[[ "$(cat "$MNT/g$SBX_TAG/status")" == running ]]
	sbx_exec "g$SBX_TAG" 'echo ok'
	[[ "$SBX_OUT" == ok ]]
	for _ in $(seq 100); do
		[[ "$(pool_key state)" == stalled ]] && break
		sleep 0.1
	done
	[[ "$(pool_key state)" == stalled ]]
	grep -q "unknown image 'busybox'" "$P/error"
	# Back: a write to size (or spec) tries again.
	mv "$SBX_IMAGES/busybox.away" "$SBX_IMAGES/busybox"
	echo 1 >"$P/size"
	wait_ready 1
	[[ ! -s "$P/error" ]]
}

# A claimed sandbox keeps its cgroup's member name; pool ids and sequence
# numbers start again with each daemon. A later daemon's member of that
# name shared the cgroup, and the discard of leftover members at the next
# start killed the claimed sandbox with it.
@test "a later daemon's members never take a claimed sandbox's cgroup: it outlives two restarts" {
	sbx_stop_daemon
	sbx_start_daemon_keep
	mkdir "$P"
	echo 1 >"$P/size"
	wait_ready 1
	mkdir "$MNT/c$SBX_TAG"
	[[ "$(sbx_key "$MNT/c$SBX_TAG/stats" create_mode)" == pool ]]
	local cg cpid f
	cg=$(jq -r .cgroup "$STATE/sandboxes/c$SBX_TAG/sandbox.json")
	cpid=$(sbx_key "$MNT/c$SBX_TAG/stats" pid)
	[[ -n "$cg" && "$cg" != null ]]
	for round in 1 2; do
		wait_ready 1
		kill -9 "$SBX_PID"
		wait "$SBX_PID" 2>/dev/null || true
		sbx_stop_daemon
		sbx_start_daemon_keep
		wait_ready 1
		for f in "$STATE"/sandboxes/.p*/sandbox.json; do
			[[ "$(jq -r .cgroup "$f")" != "$cg" ]] || {
				echo "round $round: member $f has the claimed sandbox's cgroup $cg" >&2
				false
			}
		done
		wait_status "c$SBX_TAG" running
		live_init "$cpid"
	done
	sbx_exec "c$SBX_TAG" hostname
	[[ "$SBX_OUT" == "c$SBX_TAG" ]]
	rmdir "$MNT/c$SBX_TAG"
	rmdir "$P"
}

@test "a claim's journal is written after the reply; a kill -9 before it re-adopts the sandbox under its name" {
	sbx_stop_daemon
	sbx_start_daemon_keep
	mkdir "$P"
	echo 2 >"$P/size"
	wait_ready 2
	local a="a$SBX_TAG" b="b$SBX_TAG" apid
	mkdir "$MNT/$a"
	# Written a few ms later by the journal's commit thread: the name follows.
	local i
	for ((i = 0; i < 200; i++)); do
		[[ "$(jq -r .config.name "$STATE/sandboxes/$a/sandbox.json")" == "$a" ]] && break
		sleep 0.05
	done
	[[ "$(jq -r .config.name "$STATE/sandboxes/$a/sandbox.json")" == "$a" ]]
	(( $(sbx_key "$MNT/$a/stats" claim_journal_usec) > 0 ))
	apid=$(sbx_key "$MNT/$a/stats" pid)
	# A daemon killed right after a claim, its journal maybe not written yet.
	mkdir "$MNT/$b"
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_stop_daemon
	sbx_start_daemon_keep
	wait_status "$a" running
	wait_status "$b" running
	[[ "$(sbx_key "$MNT/$a/stats" pid)" == "$apid" ]]
	sbx_exec "$b" hostname
	[[ "$SBX_OUT" == "$b" ]]
	[[ "$(jq -r .config.name "$STATE/sandboxes/$b/sandbox.json")" == "$b" ]]
	rmdir "$MNT/$a" "$MNT/$b"
	rmdir "$P"
	[[ -z "$(ls -A "$STATE/sandboxes")" ]]
}

@test "kill -9 during a refill: the pool is re-adopted, old members discarded, refilled" {
	sbx_stop_daemon
	sbx_start_daemon_keep
	mkdir "$P"
	echo 3 >"$P/size"
	# Some made, some being made.
	for _ in $(seq 100); do
		(($(pool_key ready) >= 1)) && break
		sleep 0.05
	done
	pids=$(for f in "$STATE"/sandboxes/.p*/sandbox.json; do jq -r .pid "$f" 2>/dev/null; done)
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_stop_daemon
	sbx_start_daemon_keep
	[[ -d "$P" ]]
	[[ "$(cat "$P/size")" == 3 ]]
	wait_ready 3
	[[ "$(members_on_disk)" == 3 ]]
	for pid in $pids; do
		# Killed with its cgroup, which it leaves before its exit is done: a
		# bounded wait for the rest of its exit.
		for _ in $(seq 50); do
			live_init "$pid" || break
			sleep 0.1
		done
		! live_init "$pid" || {
			echo "old member's init $pid lives: $(grep -E '^(State|PPid)' "/proc/$pid/status" | tr '\n' ' ')" \
				"cgroups: $(tr '\n' ' ' <"/proc/$pid/cgroup")" >&2
			false
		}
	done
	mkdir "$MNT/k$SBX_TAG"
	[[ "$(cat "$MNT/k$SBX_TAG/status")" == running ]]
	(($(cgroups_named '*') > 0))
	# A claimed sandbox is re-adopted like any other.
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_stop_daemon
	sbx_start_daemon_keep
	wait_status "k$SBX_TAG" running
	sbx_exec "k$SBX_TAG" hostname
	[[ "$SBX_OUT" == "k$SBX_TAG" ]]
	echo stop >"$MNT/k$SBX_TAG/ctl"
	wait_status "k$SBX_TAG" stopped
	rmdir "$MNT/k$SBX_TAG"
	rmdir "$P"
	sbx_stop_daemon
	# Members and the claimed sandbox (whose cgroup keeps its member's name).
	[[ "$(cgroups_named '*')" == 0 ]]
	[[ "$(members_on_disk)" == 0 ]]
}

# The children of init (host pid $1), one pid a line.
init_children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true; }

# warm_shell NAME: the pid of NAME's one warm shell (init's only child, a sh
# waiting), waited for (bounded: the next is made after an exec); fails when
# init has none or more.
warm_shell() {
	local init i kids
	init=$(sbx_key "$MNT/$1/stats" pid)
	for ((i = 0; i < SBX_STATUS_WAIT * 10; i++)); do
		kids=$(init_children "$init")
		if [[ "$(grep -c . <<<"$kids")" == 1 && "$(cat "/proc/$kids/comm" 2>/dev/null)" == sh &&
			"$(sbx_key "$MNT/$1/stats" warm_shell)" == ready ]]; then
			echo "$kids"
			return 0
		fi
		sleep 0.1
	done
	echo "warm_shell $1: init $init has children '$kids'; stats:" >&2
	cat "$MNT/$1/stats" >&2
	return 1
}

# warm_exec NAME WANT_RC WANT_OUT COMMAND: COMMAND runs in NAME's warm shell
# (its exec_warm_total moves by one) with that exit code and output (a
# pattern).
warm_exec() {
	local name=$1 want_rc=$2 want_out=$3 before
	shift 3
	warm_shell "$name" >/dev/null
	before=$(sbx_key "$MNT/$name/stats" exec_warm_total)
	sbx_exec "$name" "$*"
	# shellcheck disable=SC2053 # WANT_OUT is a pattern
	[[ "$SBX_RC" == "$want_rc" && "$SBX_OUT" == $want_out ]] || {
		echo "warm exec '$*': rc $SBX_RC, output '$SBX_OUT'; wanted $want_rc, '$want_out'" >&2
		return 1
	}
	[[ "$(sbx_key "$MNT/$name/stats" exec_warm_total)" == $((before + 1)) ]]
}

# The pid in NAME's pid namespace of host pid $1.
inner_pid() { awk '/^NSpid:/ { print $NF }' "/proc/$1/status"; }

# warm_job NAME COMMAND: starts COMMAND as a job in NAME's warm shell (its
# job_warm_total moves by one, and the job is the shell that was waiting
# before COMMAND was written); prints the job's id.
warm_job() {
	local shell inner before n
	shell=$(warm_shell "$1") || return 1
	inner=$(inner_pid "$shell")
	before=$(sbx_key "$MNT/$1/stats" job_warm_total)
	n=$(sbx_run "$1" "$2") || return 1
	[[ "$(sbx_key "$MNT/$1/stats" job_warm_total)" == $((before + 1)) &&
		"$(sbx_cat "$MNT/$1/jobs/$n/pid")" == "$inner" ]] || {
		echo "job '$2' did not run in warm shell $shell; stats and pid:" >&2
		cat "$MNT/$1/stats" "$MNT/$1/jobs/$n/pid" >&2
		return 1
	}
	echo "$n"
}

@test "a claimed sandbox runs its execs in a warm shell, with sh -c's output and exit codes" {
	mkdir "$P"
	echo 1 >"$P/size"
	wait_ready 1
	# Made by the fill at its lower priority (nice 10), a ready member's
	# init is set back to the usual one as soon as it was made, so its
	# claim has nothing to renice.
	minit=$(jq -r .pid "$STATE"/sandboxes/.p*/sandbox.json)
	[[ "$(awk '{ print $19 }' "/proc/$minit/stat")" == 0 ]]
	W="w$SBX_TAG"
	mkdir "$MNT/$W"
	[[ "$(sbx_key "$MNT/$W/stats" create_mode)" == pool ]]
	[[ "$(sbx_key "$MNT/$W/stats" exec_warm_total)" == 0 ]]
	# Its warm shell was forked by that init.
	shell=$(warm_shell "$W")
	[[ "$(sbx_key "$MNT/$W/stats" pid) $(awk '{ print $19 }' "/proc/$shell/stat")" == "$minit 0" ]]
	warm_exec "$W" 0 hi echo hi
	# Each exec leaves a new one ready for the next.
	warm_exec "$W" 3 "" exit 3
	warm_exec "$W" 1 "" false
	warm_exec "$W" 2 "*" 'if'
	[[ "$SBX_OUT" == *yntax* ]]
	warm_exec "$W" 137 "" 'kill -9 $$'
	# Its stderr is in its output, as a cold exec's.
	warm_exec "$W" 0 $'a\nb' 'echo a; echo b >&2'
	# stdin is /dev/null; the shell's own variable is gone.
	warm_exec "$W" 0 "0 /" 'echo $(wc -c) $(pwd)'
	warm_exec "$W" 0 "x y unset" 'set -- y; a=x; echo "$a" "$1" ${c-unset}'
	# Who and where it runs: ids, environment, umask, limits, confinement,
	# cgroup, parent, session, nice, fds (the command pipe closed): as a
	# cold exec's.
	line='id; env | sort; umask; ulimit -a; grep -E "^(Cap|Seccomp|NoNewPrivs|PPid)" /proc/$$/status; cat /proc/$$/cgroup; awk "{ print \$6 == \$1, \$19 }" /proc/$$/stat; ls /proc/$$/fd; :'
	warm_exec "$W" 0 "uid=0*" "$line"
	warm=$SBX_OUT
	sbx_exec "$W" "cwd=/ $line"
	[[ "$SBX_OUT" == "$warm" ]] || {
		diff <(echo "$warm") <(echo "$SBX_OUT") >&2
		false
	}
	# The same line run cold (an option) ends the same way.
	sbx_exec "$W" 'cwd=/ if'
	[[ "$SBX_RC" == 2 ]]
	sbx_exec "$W" 'cwd=/ kill -9 $$'
	[[ "$SBX_RC" == 137 ]]
	# 10 MB through the warm shell's pipe.
	warm_shell "$W" >/dev/null
	exec {fd}<>"$MNT/$W/exec"
	echo 'head -c 10485760 /dev/zero' >&"$fd"
	n=$(timeout "$SBX_EXEC_WAIT" cat <&"$fd" | wc -c)
	st=$(timeout 10 cat <&"$fd")
	exec {fd}>&-
	[[ "$n" == 10485760 && "$st" == "exit_code 0" ]]
	warm_exec "$W" 124 before 'timeout=1 echo before; sleep 100; echo after'
	[[ "$(sbx_key "$MNT/stats" exec_warm_total)" == 11 ]]
	# With options the exec runs cold, as before.
	sbx_exec "$W" 'cwd=/tmp user=nobody pwd; id -u'
	[[ "$SBX_OUT" == $'/tmp\n65534' && "$SBX_RC" == 0 ]]
	[[ "$(sbx_key "$MNT/$W/stats" exec_warm_total)" == 11 ]]
	# A warm shell is no exec nor job, and leaves no process behind.
	init=$(sbx_key "$MNT/$W/stats" pid)
	shell=$(warm_shell "$W")
	[[ -z "$(ls "$MNT/$W/jobs")" ]]
	echo stop >"$MNT/$W/ctl"
	wait_status "$W" stopped
	! kill -0 "$shell" 2>/dev/null || false
	! live_init "$init" || false
	rmdir "$MNT/$W"
}

@test "a claimed sandbox runs its jobs in a warm shell: stdout and stderr apart, stdin, exit codes, kill" {
	mkdir "$P"
	echo 1 >"$P/size"
	wait_ready 1
	W="w$SBX_TAG"
	mkdir "$MNT/$W"
	n=$(warm_job "$W" 'echo out; echo err >&2; exit 3')
	wait_job "$W" "$n" exited
	[[ "$(job_file "$W" "$n" stdout)" == out && "$(job_file "$W" "$n" stderr)" == err ]]
	[[ "$(sbx_cat "$MNT/$W/jobs/$n/exit_code") $(sbx_cat "$MNT/$W/jobs/$n/reason")" == "3 exit" ]]
	# A syntax error is the job's stderr, exit code 2, as sh -c's.
	n=$(warm_job "$W" 'if')
	wait_job "$W" "$n" exited
	[[ "$(job_file "$W" "$n" stderr)" == *yntax* && -z "$(job_file "$W" "$n" stdout)" ]]
	[[ "$(sbx_cat "$MNT/$W/jobs/$n/exit_code")" == 2 ]]
	# stdin is the job's: what is written, then its end.
	n=$(warm_job "$W" 'read a; echo "got $a"; echo "rest $(wc -c)"; echo ${c-unset}')
	printf 'x\nyz' >"$MNT/$W/jobs/$n/stdin"
	wait_job_out "$W" "$n" "got x"
	echo eof >"$MNT/$W/jobs/$n/ctl"
	wait_job "$W" "$n" exited
	[[ "$(job_file "$W" "$n" stdout)" == $'got x\nrest 2\nunset' ]]
	# While a warm job runs no shell waits (its fork would take the job's
	# CPU); a kill reaches the job's whole process group, as a cold job's,
	# and the next shell is made once it ended.
	n=$(warm_job "$W" 'echo ready; sleep 100')
	wait_job_out "$W" "$n" ready
	[[ "$(sbx_key "$MNT/$W/stats" warm_shell)" == none ]]
	echo kill >"$MNT/$W/jobs/$n/ctl"
	wait_job "$W" "$n" killed
	[[ "$(sbx_cat "$MNT/$W/jobs/$n/exit_code") $(sbx_cat "$MNT/$W/jobs/$n/reason")" == "143 signal" ]]
	warm_shell "$W" >/dev/null # init's only child: the sleep is gone
	n=$(warm_job "$W" 'timeout=1 echo before; sleep 100')
	wait_job "$W" "$n" killed
	[[ "$(sbx_cat "$MNT/$W/jobs/$n/reason")" == timeout ]]
	# A shell killed while it waited (init reaped it) leaves the job to run
	# cold on the pipes made for it.
	shell=$(warm_shell "$W")
	kill -9 "$shell"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$shell" 2>/dev/null || break
		sleep 0.05
	done
	n=$(sbx_run "$W" 'echo o; echo e >&2; exit 6')
	wait_job "$W" "$n" exited
	[[ "$(job_file "$W" "$n" stdout) $(job_file "$W" "$n" stderr) $(sbx_cat "$MNT/$W/jobs/$n/exit_code")" == "o e 6" ]]
	# With options the job runs cold; execs still run warm after jobs.
	[[ "$(sbx_key "$MNT/$W/stats" job_warm_total)" == 6 ]]
	warm_shell "$W" >/dev/null
	n=$(sbx_run "$W" 'cwd=/tmp pwd')
	wait_job "$W" "$n" exited
	[[ "$(job_file "$W" "$n" stdout)" == /tmp ]]
	[[ "$(sbx_key "$MNT/$W/stats" job_warm_total)" == 6 ]]
	warm_exec "$W" 0 hi echo hi
	[[ "$(sbx_key "$MNT/stats" job_warm_total)" == 6 ]]
	rmdir "$MNT/$W"
}

@test "execs whose readers close at their output's end still each get a warm shell" {
	mkdir "$P"
	echo 1 >"$P/size"
	wait_ready 1
	W="w$SBX_TAG"
	mkdir "$MNT/$W"
	warm_shell "$W" >/dev/null
	# Each handle is closed at once at the output's EOF, before init's exit
	# report mostly arrives, and the kernel sends that close's RELEASE
	# without waiting for it: the next shell is asked for before the EOF is
	# answered, so the next exec, written at once, is warm too.
	timeout "$SBX_EXEC_WAIT" /usr/bin/python3 - "$MNT/$W/exec" <<'PY'
import os, sys
for i in range(8):
    fd = os.open(sys.argv[1], os.O_RDWR)
    os.write(fd, b"echo r%d\n" % i)
    out = b""
    while (b := os.read(fd, 100)):
        out += b
    os.close(fd)
    assert out == b"r%d\n" % i, out
PY
	[[ "$(sbx_key "$MNT/$W/stats" exec_warm_total)" == 8 ]]
	# And one ready again after them, the only child of init.
	warm_shell "$W" >/dev/null
	rmdir "$MNT/$W"
}

# keep_claimed: a daemon whose sandboxes outlive it, a pool of one, and
# sandbox W claimed from it.
keep_claimed() {
	sbx_stop_daemon
	sbx_start_daemon_keep
	mkdir "$P"
	echo 1 >"$P/size"
	wait_ready 1
	W="w$SBX_TAG"
	mkdir "$MNT/$W"
}

# kill9_readopt: the daemon killed (-9); the next re-adopts W.
kill9_readopt() {
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_stop_daemon
	sbx_start_daemon_keep
	wait_status "$W" running
}

# keep_claimed_end: W runs warm still; W stopped and removed, the pool too.
keep_claimed_end() {
	warm_exec "$W" 0 "$W" hostname
	echo stop >"$MNT/$W/ctl"
	wait_status "$W" stopped
	rmdir "$MNT/$W"
	rmdir "$P"
}

@test "a restarted daemon kills the warm shell an earlier one asked for and gets its own" {
	keep_claimed
	old=$(warm_shell "$W")
	kill9_readopt
	new=$(warm_shell "$W")
	[[ "$new" != "$old" ]]
	! kill -0 "$old" 2>/dev/null || false
	keep_claimed_end
}

@test "a warm job's output outlives a daemon kill -9, and the next daemon gets a warm shell" {
	keep_claimed
	# Its output pipes are kept by init as a cold job's: what it writes
	# while no daemon runs is there after the restart. No shell waits when
	# the daemon dies (the job took it): init asks the next for one anyway.
	n=$(warm_job "$W" 'read a; sleep 2; echo "late $a"; exit 5')
	printf 'x\n' >"$MNT/$W/jobs/$n/stdin"
	kill9_readopt
	wait_job "$W" "$n" exited
	[[ "$(job_file "$W" "$n" stdout) $(sbx_cat "$MNT/$W/jobs/$n/exit_code")" == "late x 5" ]]
	keep_claimed_end
}
