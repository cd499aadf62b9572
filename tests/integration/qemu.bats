#!/usr/bin/env bats
# The qemu backend: real microVM boots (TCG on a host without /dev/kvm, a few
# seconds each, so there are few of them). The guest agent answers exec with
# the exit status, `log` is the guest console, stop and rmdir leave no QEMU
# process, no socket and no /dev/shm file, and a QEMU killed from outside
# takes the sandbox out of `running`. Jobs, poll, wait and timeout= as on ns;
# a restarted daemon re-adopts a VM with its jobs; live fork (children carry
# on the source's memory and processes, clones differ); standby and restore.

load helpers
load qemu_helpers

setup() {
	qemu_require
	setup_sbx
	V="qm${SBX_TAG}"
}

# QEMU pids noted by qemu_pid_of; teardown kills any still there (only if it
# is still a QEMU of ours), and removes guest RAM files of our sandboxes.
teardown() {
	teardown_sbx_qemu
}

@test "qemu: create boots a VM, exec answers through the agent, log is the console" {
	sbx_create_ctl "$V" backend=qemu memory=256M
	pid=$(qemu_pid_of "$V")
	[[ "$(cat "/proc/$pid/comm")" == qemu-system-x86* ]]
	[ -e "$(ls /dev/shm/sandboxfs-*-"$V".ram)" ]
	# QEMU itself is in the sandbox's cgroup (memory= plus QEMU's own overhead).
	grep -q "sandboxfs/[^/]*-$V\$" "/proc/$pid/cgroup"

	run sbx_cat "$MNT/$V/stats"
	[ "$status" -eq 0 ]
	grep -qx "backend qemu" <<<"$output"
	for k in create_usec create_vmm_spawn_usec create_qmp_usec create_boot_usec; do
		grep -Eq "^$k [0-9]+$" <<<"$output" || { echo "no $k in stats: $output"; false; }
	done
	sbx_cat "$MNT/stats" | grep -Eqx 'qemu_accel (kvm|tcg)'

	sbx_exec "$V" 'uname -s; hostname; echo to-stderr >&2; exit 3'
	[ "$SBX_RC" -eq 3 ]
	[ "$SBX_OUT" = "$(printf 'Linux\n%s\nto-stderr' "$V")" ]
	# A guest kernel, not the host's namespaces: its own pid 1 is the agent.
	sbx_exec "$V" 'cat /proc/1/comm'
	[ "$SBX_OUT" = init ]
	[ "$SBX_RC" -eq 0 ]
	# An exec without options runs in the agent's warm shell: a /bin/sh
	# started before its command came (when the last exec ended), which
	# ends as `sh -c LINE` would. Ticks are USER_HZ (100). The agent says
	# so: the sandbox's stats and the daemon's count it as a warm exec.
	sleep 3
	[ "$(sbx_key "$MNT/$V/stats" warm_shell)" = guest ]
	warm=$(sbx_key "$MNT/$V/stats" exec_warm_total)
	all=$(sbx_key "$MNT/stats" exec_warm_total)
	sbx_exec "$V" 'read up _ </proc/uptime; echo "${up%.*} $(cut -d" " -f22 /proc/$$/stat)"'
	read -r up start <<<"$SBX_OUT"
	[ $((start / 100 + 1)) -lt "$up" ] || { echo "exec's shell started at $start ticks, uptime $up s" >&2; false; }
	[ "$(sbx_key "$MNT/$V/stats" exec_warm_total)" = $((warm + 1)) ]
	[ "$(sbx_key "$MNT/stats" exec_warm_total)" = $((all + 1)) ]
	sbx_exec "$V" 'if'
	[ "$SBX_RC" -eq 2 ]
	sbx_exec "$V" 'kill -9 $$'
	[ "$SBX_RC" -eq 137 ]
	# One the sandbox killed while it waited is made again when the next
	# command (here the killer, run cold by its option, not counted) ends.
	warm=$(sbx_key "$MNT/$V/stats" exec_warm_total)
	sbx_exec "$V" 'user=root for p in /proc/[0-9]*; do [ "${p#/proc/}" != $$ ] && grep -q "read -r c" "$p/cmdline" 2>/dev/null && kill -9 "${p#/proc/}" && echo killed; done'
	[ "$SBX_OUT" = killed ]
	[ "$(sbx_key "$MNT/$V/stats" exec_warm_total)" = "$warm" ]
	sleep 3
	sbx_exec "$V" 'read up _ </proc/uptime; echo "${up%.*} $(cut -d" " -f22 /proc/$$/stat)"'
	read -r up start <<<"$SBX_OUT"
	[ $((start / 100 + 1)) -lt "$up" ] || { echo "exec's shell started at $start ticks, uptime $up s" >&2; false; }

	run sbx_cat "$MNT/$V/log"
	[ "$status" -eq 0 ]
	grep -q "sbx-agent: ready" <<<"$output"


	# A job without options runs in the warm shell too, on its own
	# stdout and stderr, and counts as a warm job.
	sleep 3
	warm=$(sbx_key "$MNT/$V/stats" job_warm_total)
	all=$(sbx_key "$MNT/stats" job_warm_total)
	n=$(sbx_run "$V" 'read up _ </proc/uptime; echo "${up%.*} $(cut -d" " -f22 /proc/$$/stat)"; echo e >&2')
	wait_job "$V" "$n" exited
	read -r up start <<<"$(sbx_cat "$MNT/$V/jobs/$n/stdout")"
	[ $((start / 100 + 1)) -lt "$up" ] || { echo "job's shell started at $start ticks, uptime $up s" >&2; false; }
	[ "$(sbx_cat "$MNT/$V/jobs/$n/stderr")" = e ]
	[ "$(sbx_key "$MNT/$V/stats" job_warm_total)" = $((warm + 1)) ]
	[ "$(sbx_key "$MNT/stats" job_warm_total)" = $((all + 1)) ]

	# Jobs run through the agent too: separate stdout and stderr, stdin
	# written through jobs/N/stdin, exit code and reason, a pid in the guest.
	n=$(sbx_run "$V" 'echo out; echo err >&2; read x; echo "got $x"; exit 4')
	echo hello >"$MNT/$V/jobs/$n/stdin"
	wait_job "$V" "$n" exited
	[ "$(sbx_cat "$MNT/$V/jobs/$n/stdout")" = "$(printf 'out\ngot hello')" ]
	[ "$(sbx_cat "$MNT/$V/jobs/$n/stderr")" = err ]
	[ "$(sbx_cat "$MNT/$V/jobs/$n/exit_code")" = 4 ]
	[ "$(sbx_cat "$MNT/$V/jobs/$n/reason")" = exit ]
	[[ "$(sbx_cat "$MNT/$V/jobs/$n/pid")" =~ ^[1-9][0-9]*$ ]]
	# A job killed through its ctl says so; its output so far is kept.
	n=$(sbx_run "$V" 'echo started; exec sleep 300')
	for ((i = 0; i < 50; i++)); do
		[ "$(job_file "$V" "$n" stdout)" = started ] && break
		sleep 0.1
	done
	echo 'kill KILL' >"$MNT/$V/jobs/$n/ctl"
	wait_job "$V" "$n" killed
	[ "$(sbx_cat "$MNT/$V/jobs/$n/reason")" = signal ]
	[ "$(sbx_cat "$MNT/$V/jobs/$n/stdout")" = started ]
	# stdin in bulk (more than the agent's 64 KiB window) arrives whole, and
	# `eof` on the ctl ends it.
	n=$(sbx_run "$V" 'wc -c')
	head -c 300000 /dev/zero >"$MNT/$V/jobs/$n/stdin"
	echo eof >"$MNT/$V/jobs/$n/ctl"
	wait_job "$V" "$n" exited
	[ "$(sbx_cat "$MNT/$V/jobs/$n/stdout" | tr -d ' ')" = 300000 ]
	# Both streams busy at once share one credit window: neither is cut short.
	n=$(sbx_run "$V" 'head -c 200000 /dev/zero & head -c 200000 /dev/zero >&2; wait')
	wait_job "$V" "$n" exited
	[ "$(sbx_cat "$MNT/$V/jobs/$n/exit_code")" = 0 ]
	[ "$(stat -c %s "$STATE/sandboxes/$V/jobs/$n/stdout")" = 200000 ]
	[ "$(stat -c %s "$STATE/sandboxes/$V/jobs/$n/stderr")" = 200000 ]

	# A handle closed before its command ends kills the command in the guest.
	exec {fd}<>"$MNT/$V/exec"
	printf 'sleep 300\n' >&"$fd"
	exec {fd}>&-
	for ((i = 0; i < 600; i++)); do
		sbx_exec "$V" 'ps -o comm | grep -c "^sleep" || true'
		[ "$SBX_OUT" = 0 ] && break
		sleep 0.1
	done
	[ "$SBX_OUT" = 0 ]

	# pause and resume are QMP stop and cont.
	echo pause >"$MNT/$V/ctl"
	[ "$(sbx_cat "$MNT/$V/status")" = paused ]
	echo resume >"$MNT/$V/ctl"
	assert_healthy "$V"

	# Output is flow-controlled per command: a handle nobody reads stalls
	# only its own command, not the channel (other commands, stop).
	exec {stalled}<>"$MNT/$V/exec"
	printf 'cat /dev/zero\n' >&"$stalled"
	sleep 1
	sbx_exec "$V" 'echo other'
	[ "$SBX_OUT" = other ]
	[ "$SBX_RC" -eq 0 ]

	# stop is not held up by it either (a bound on a hang, not a timing).
	run timeout 60 bash -c 'echo stop >"$1"' _ "$MNT/$V/ctl"
	[ "$status" -eq 0 ]
	exec {stalled}>&-
	[ "$(sbx_cat "$MNT/$V/status")" = stopped ]
	[ "$(sbx_key "$MNT/$V/events" reason)" = user ]
	assert_no_qemu_leaks "$V" "$pid"
	rmdir "$MNT/$V"
	wait_no_leaks "$V"
	assert_no_qemu_leaks "$V" "$pid"
}

@test "qemu: memory= and cpus= shape the VM; rmdir of a running VM leaves nothing" {
	sbx_create_ctl "$V" backend=qemu memory=192M cpus=1.5
	pid=$(qemu_pid_of "$V")
	sbx_exec "$V" 'grep -c ^processor /proc/cpuinfo; awk "/MemTotal/ { print int(\$2 / 1024) }" /proc/meminfo'
	[ "$SBX_RC" -eq 0 ]
	ncpu=$(sed -n 1p <<<"$SBX_OUT")
	mem_mib=$(sed -n 2p <<<"$SBX_OUT")
	[ "$ncpu" -eq 2 ]
	# MemTotal is guest RAM less what the kernel keeps for itself.
	((mem_mib > 100 && mem_mib <= 192)) || { echo "MemTotal ${mem_mib} MiB"; false; }
	rmdir "$MNT/$V"
	wait_no_leaks "$V"
	assert_no_qemu_leaks "$V" "$pid"
}

@test "qemu: a QEMU killed from outside takes the sandbox out of running" {
	sbx_create_ctl "$V" backend=qemu
	pid=$(qemu_pid_of "$V")
	kill -9 "$pid"
	wait_status "$V" 'stopped|failed'
	[ "$(sbx_key "$MNT/$V/events" reason)" = exit ]
	[ "$(sbx_key "$MNT/$V/events" exit_code)" = 137 ]
	# Where the engine marks such a sandbox failed, it also says why.
	if [ "$(sbx_cat "$MNT/$V/status")" = failed ]; then
		[ -n "$(sbx_cat "$MNT/$V/error")" ]
	fi
	assert_no_qemu_leaks "$V" "$pid"
	rmdir "$MNT/$V"
	wait_no_leaks "$V"
}

@test "qemu: too little memory fails the create with a sentence, no VM left" {
	echo "create $V backend=qemu memory=64M" >"$MNT/ctl"
	wait_status "$V" failed
	sbx_cat "$MNT/$V/error" | grep -q "memory=128M or more"
	run pgrep -f "sbx-$V "
	[ "$status" -ne 0 ]
	rmdir "$MNT/$V"
	wait_no_leaks "$V"
}

@test "qemu: after a daemon kill -9, the new daemon re-adopts the VM: same QEMU, exec, jobs' output whole" {
	sbx_create_ctl "$V" backend=qemu
	pid=$(qemu_pid_of "$V")
	start_counter "$V"
	# A job that prints a numbered line every 50 ms, through the daemon's death.
	n=$(sbx_run "$V" 'i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo "line $i"; sleep 0.05; done; exit 5')
	sleep 0.5
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	sleep 1 # the job goes on printing while no daemon listens
	sbx_start_daemon
	[ "$(sbx_cat "$MNT/$V/status")" = running ]
	[ "$(sbx_key "$MNT/$V/stats" pid)" = "$pid" ]
	c1=$(counter "$V")
	((c1 >= 5))
	sbx_exec "$V" 'hostname'
	[ "$SBX_OUT" = "$V" ]
	[ "$SBX_RC" -eq 0 ]
	# Every line exactly once, in order, and the exit seen by the new daemon.
	wait_job "$V" "$n" exited || {
		echo "reason $(sbx_cat "$MNT/$V/jobs/$n/reason") code $(sbx_cat "$MNT/$V/jobs/$n/exit_code")"
		tail -5 "$STATE/sandboxes/$V/console.log"
		false
	}
	[ "$(sbx_cat "$MNT/$V/jobs/$n/exit_code")" = 5 ]
	diff <(sbx_cat "$MNT/$V/jobs/$n/stdout") <(for ((i = 1; i <= 60; i++)); do echo "line $i"; done)
	# A job running across a second restart that is still running after it.
	n2=$(sbx_run "$V" 'echo first; read x; echo "got $x"')
	for ((i = 0; i < 50; i++)); do
		[ "$(job_file "$V" "$n2" stdout)" = first ] && break
		sleep 0.1
	done
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_start_daemon
	[ "$(sbx_cat "$MNT/$V/jobs/$n2/status")" = running ]
	# Its stdin was the old daemon's pipe: gone (EPIPE), and ctl kill still works.
	echo 'kill KILL' >"$MNT/$V/jobs/$n2/ctl"
	wait_job "$V" "$n2" killed
	[ "$(sbx_cat "$MNT/$V/jobs/$n2/stdout")" = first ]
	# And it still stops cleanly, with nothing left.
	echo stop >"$MNT/$V/ctl"
	[ "$(sbx_cat "$MNT/$V/status")" = stopped ]
	assert_no_qemu_leaks "$V" "$pid"
}

@test "qemu: a paused VM is re-adopted paused by a daemon restarted after kill -9, and resumes" {
	sbx_create_ctl "$V" backend=qemu
	pid=$(qemu_pid_of "$V")
	start_counter "$V"
	sbx_exec "$V" 'echo kept >/root/kept'
	c0=$(counter "$V")
	echo pause >"$MNT/$V/ctl"
	[ "$(sbx_cat "$MNT/$V/status")" = paused ]
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_start_daemon
	# Its QEMU, not killed for an agent that could not answer while paused.
	[ "$(sbx_cat "$MNT/$V/status")" = paused ]
	[ "$(sbx_key "$MNT/$V/stats" pid)" = "$pid" ]
	sleep 2
	echo resume >"$MNT/$V/ctl"
	[ "$(sbx_cat "$MNT/$V/status")" = running ]
	sbx_exec "$V" 'cat /root/kept; hostname'
	[ "$SBX_OUT" = "$(printf 'kept\n%s' "$V")" ]
	# The guest ran only for the agent's resync while paused (its counter
	# counts every 100 ms: the seconds paused would have made it 20 more).
	c1=$(counter "$V")
	((c1 - c0 < 10)) || { echo "counter $c0 -> $c1 across the pause" >&2; false; }
	rmdir "$MNT/$V"
	assert_no_qemu_leaks "$V" "$pid"
}

# counter NAME: the guest counter's value (started by start_counter).
counter() {
	# The writer truncates, then writes: a read in between finds it empty.
	local try
	for ((try = 0; try < 10; try++)); do
		sbx_exec "$1" 'cat /run/counter' >/dev/null
		[[ "$SBX_OUT" =~ ^[0-9]+$ ]] && break
	done
	[[ "$SBX_OUT" =~ ^[0-9]+$ ]] || { echo "$1: counter is '$SBX_OUT'" >&2; return 1; }
	echo "$SBX_OUT"
}

# A process of the guest that is not an exec session (setsid, its own
# output): it counts every 100 ms in guest RAM (/run is tmpfs).
start_counter() {
	sbx_exec "$1" 'setsid sh -c "i=0; while :; do i=\$((i+1)); echo \$i >/run/counter; sleep 0.1; done" </dev/null >/dev/null 2>&1 &'
	[ "$SBX_RC" -eq 0 ]
	for ((i = 0; i < 100; i++)); do
		c=$(counter "$1" 2>/dev/null) && ((c >= 5)) && return 0
		sleep 0.1
	done
	echo "$1: the counter did not start" >&2
	return 1
}

# wait_counter_above NAME C: the guest counter of NAME goes past C (bounded).
wait_counter_above() {
	local c="" i
	for ((i = 0; i < 600; i++)); do
		c=$(counter "$1" 2>/dev/null) && ((c > $2)) && return 0
		sleep 0.1
	done
	echo "$1: counter stuck at '$c' (not above $2)" >&2
	return 1
}

# layers_left TAG: this daemon's layers and their memory images (other
# daemons may run beside the test).
layers_left() {
	ls "$STATE/layers" 2>/dev/null
	ls /dev/shm 2>/dev/null | grep "^sandboxfs-$1-L.*\.ram$" || true
}

@test "qemu: live fork: children continue the source's memory and processes, then diverge; clones differ" {
	sbx_create_ctl "$V" backend=qemu
	src_pid=$(qemu_pid_of "$V")
	ram=$(basename /dev/shm/sandboxfs-*-"$V".ram)
	tag=${ram#sandboxfs-}
	tag=${tag%%-*}
	start_counter "$V"
	sbx_exec "$V" 'echo before >/root/before'
	before=$(counter "$V")

	kids="${V}a ${V}b ${V}c ${V}d ${V}e"
	echo "fork $kids" >"$MNT/$V/ctl"
	for k in $kids; do
		wait_status "$k" running
		qemu_pid_of "$k" >/dev/null
	done
	# The source ran on: same QEMU, still counting.
	[ "$(sbx_cat "$MNT/$V/status")" = running ]
	[ "$(sbx_key "$MNT/$V/stats" pid)" = "$src_pid" ]
	sbx_exec "$V" 'echo after >/root/after'

	a=${V}a b=${V}b
	for k in $a $b; do
		[ "$(sbx_key "$MNT/$k/stats" fork_mode)" = live ]
		[ "$(sbx_key "$MNT/$k/stats" parent)" = "$V" ]
		[ "$(sbx_key "$MNT/$k/stats" fork_generation)" = 1 ]
		for key in fork_freeze_usec fork_checkpoint_usec fork_restore_usec restore_usec; do
			[[ "$(sbx_key "$MNT/$k/stats" $key)" =~ ^[1-9][0-9]*$ ]] || { echo "$k: no $key"; false; }
		done
		# Memory and processes came along: the counter kept its value and runs on.
		c1=$(counter "$k")
		((c1 >= before)) || { echo "$k: counter $c1 < $before at the fork"; false; }
		wait_counter_above "$k" "$c1"
		sbx_exec "$k" 'cat /root/before; ls /root/after 2>/dev/null || echo no-after; hostname'
		[ "$SBX_OUT" = "$(printf 'before\nno-after\n%s' "$k")" ]
	done
	# A child's writes are its own.
	sbx_exec "$a" 'echo mine >/root/mine'
	for k in "$V" "$b"; do
		sbx_exec "$k" 'cat /root/mine 2>/dev/null || echo none'
		[ "$SBX_OUT" = none ]
	done
	# Clones differ: RNG reseeded, clock from the host, new boot_id.
	# (the guest's clock is read between two host readings, 1 s of slack each side)
	t0=$(date +%s)
	sbx_exec "$a" 'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n"; echo; cat /proc/sys/kernel/random/boot_id; date +%s'
	ra=$SBX_OUT
	sbx_exec "$b" 'head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n"; echo; cat /proc/sys/kernel/random/boot_id; date +%s'
	rb=$SBX_OUT
	t1=$(date +%s)
	[ "$(sed -n 1p <<<"$ra")" != "$(sed -n 1p <<<"$rb")" ]
	[ "$(sed -n 2p <<<"$ra")" != "$(sed -n 2p <<<"$rb")" ]
	for r in "$ra" "$rb"; do
		t=$(sed -n 3p <<<"$r")
		((t >= t0 - 1 && t <= t1 + 1)) || { echo "guest clock $t outside [$t0, $t1]"; false; }
	done

	# A snapshot's children, after the source is gone; a child of a child
	# (its RAM is a private map, so its checkpoint carries the RAM).
	mkdir "$MNT/$V/snapshots/s1"
	echo "fork ${V}f from=s1" >"$MNT/$V/ctl"
	echo "fork ${V}g" >"$MNT/$a/ctl"
	rmdir "$MNT/$V"
	assert_no_qemu_leaks "$V" "$src_pid"
	wait_status "${V}f" running
	wait_status "${V}g" running
	sbx_exec "${V}f" 'cat /root/before; ls /root/mine 2>/dev/null || echo no-mine'
	[ "$SBX_OUT" = "$(printf 'before\nno-mine')" ]
	sbx_exec "${V}g" 'cat /root/mine; hostname'
	[ "$SBX_OUT" = "$(printf 'mine\n%s' "${V}g")" ]
	[ "$(sbx_key "$MNT/${V}g/stats" fork_generation)" = 2 ]
	for k in $kids ${V}f ${V}g; do
		rmdir "$MNT/$k"
	done
	for k in $kids ${V}f ${V}g; do
		wait_no_leaks "$k"
	done
	[ -z "$(layers_left "$tag")" ] || { echo "layers left: $(layers_left "$tag")"; false; }
}

@test "qemu: standby saves the VM and ends QEMU; start restores it where it was" {
	sbx_create_ctl "$V" backend=qemu
	pid=$(qemu_pid_of "$V")
	start_counter "$V"
	sbx_exec "$V" 'echo kept >/root/kept; cat /proc/sys/kernel/random/boot_id'
	boot_id=$SBX_OUT
	before=$(counter "$V")
	echo standby >"$MNT/$V/ctl"
	[ "$(sbx_cat "$MNT/$V/status")" = standby ]
	[[ "$(sbx_key "$MNT/$V/stats" standby_usec)" =~ ^[1-9][0-9]*$ ]]
	# QEMU is gone and its RAM freed; the image is in the state dir.
	assert_no_qemu_leaks "$V" "$pid"
	[ -s "$STATE/sandboxes/$V/standby/devstate" ]
	# exec in standby is EBUSY, as in any stopped state.
	run sbx_write "$MNT/$V/exec" true
	assert_fails_with "Device or resource busy"
	echo start >"$MNT/$V/ctl"
	wait_status "$V" running
	qemu_pid_of "$V" >/dev/null
	c1=$(counter "$V")
	((c1 >= before)) || { echo "counter $c1 < $before before the standby"; false; }
	wait_counter_above "$V" "$c1"
	# The same machine, on again: its files and boot_id; the clock is the host's.
	t0=$(date +%s)
	sbx_exec "$V" 'cat /root/kept; cat /proc/sys/kernel/random/boot_id; date +%s'
	t1=$(date +%s)
	[ "$(sed -n 1p <<<"$SBX_OUT")" = kept ]
	[ "$(sed -n 2p <<<"$SBX_OUT")" = "$boot_id" ]
	t=$(sed -n 3p <<<"$SBX_OUT")
	((t >= t0 - 1 && t <= t1 + 1)) || { echo "guest clock $t outside [$t0, $t1]"; false; }
	[[ "$(sbx_key "$MNT/$V/stats" restore_usec)" =~ ^[1-9][0-9]*$ ]]
	[ ! -e "$STATE/sandboxes/$V/standby" ]
	# standby of a paused VM, then rmdir straight from standby leaves nothing.
	echo pause >"$MNT/$V/ctl"
	echo standby >"$MNT/$V/ctl"
	[ "$(sbx_cat "$MNT/$V/status")" = standby ]
	rmdir "$MNT/$V"
	wait_no_leaks "$V"
	[ ! -e "$STATE/sandboxes/$V" ]
}

@test "qemu: poll on events and on a job's output, wait, and timeout= work as on ns" {
	echo "create $V backend=qemu timeout=15" >"$MNT/ctl"
	wait_status "$V" running 90
	qemu_pid_of "$V" >/dev/null
	# A job's output comes through the daemon here: poll still wakes on it.
	n=$(sbx_run "$V" 'read x; echo "late $x"')
	run timeout 60 python3 - "$MNT/$V/jobs/$n/stdout" "$MNT/$V/jobs/$n/stdin" <<'PY'
import os, select, threading, time
import sys
out, inp = os.open(sys.argv[1], os.O_RDONLY), sys.argv[2]
p = select.poll()
p.register(out, select.POLLIN)
print("before", p.poll(0))
def feed():
    time.sleep(0.3)
    with open(inp, "w") as f:
        f.write("ok\n")
threading.Thread(target=feed).start()
ev = p.poll(30000)
print("woke", bool(ev and ev[0][1] & select.POLLIN))
print("data", os.read(out, 4096).decode().strip())
PY
	[ "$status" -eq 0 ]
	[[ "$output" == *"before []"* ]] || { echo "$output"; false; }
	[[ "$output" == *"woke True"* ]]
	[[ "$output" == *"data late ok"* ]]
	# events: poll wakes with POLLPRI on pause; wait returns the new state.
	run timeout 60 python3 - "$MNT/$V/events" "$MNT/$V/ctl" <<'PY'
import os, select, sys, threading, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.read(fd, 4096)
p = select.poll()
p.register(fd, select.POLLPRI | select.POLLIN)
def pause():
    time.sleep(0.3)
    with open(sys.argv[2], "w") as f:
        f.write("pause\n")
threading.Thread(target=pause).start()
ev = p.poll(30000)
print("pri", bool(ev and ev[0][1] & select.POLLPRI))
os.lseek(fd, 0, os.SEEK_SET)
print(os.read(fd, 4096).decode())
PY
	[ "$status" -eq 0 ]
	[[ "$output" == *"pri True"* ]]
	grep -qx "state paused" <<<"$output"
	( sleep 0.5; echo resume >"$MNT/$V/ctl" ) &
	w=$!
	run timeout 30 cat "$MNT/$V/wait"
	kill "$w" 2>/dev/null || true
	[ "$status" -eq 0 ]
	grep -qx "state running" <<<"$output"
	# The deadline stops the VM, and events say why.
	wait_status "$V" stopped 30
	[ "$(sbx_key "$MNT/$V/events" reason)" = timeout ]
}
