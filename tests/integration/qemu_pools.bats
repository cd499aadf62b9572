#!/usr/bin/env bats
# Warm pools of qemu VMs: a member is a booted VM (TCG here, seconds each, so
# pools of one); a create of the pool's spec claims it, running at once, the
# guest taking the user's name before any command of the user runs. Members'
# QEMUs run at nice 10 until claimed; rmdir and a daemon's death leave no
# QEMU, no guest RAM file and no state dir.

load helpers
load qemu_helpers

SPEC="backend=qemu memory=256M"

setup() {
	qemu_require
	sbx_make_tmp
	sbx_start_daemon_keep
	V="qp${SBX_TAG}"
	P="$MNT/pools/$V"
}

teardown() {
	if [[ -n "${SBX_TMP:-}" ]] && ! sbx_daemon_alive; then
		sbx_start_daemon # re-adopts what a killed daemon left, to remove it
	fi
	teardown_sbx_qemu
	if [[ -n "${BR:-}" ]]; then
		ip link del "$BR" 2>/dev/null || true
	fi
}

# The hidden name of the pool's one ready member, and its QEMU's pid (noted
# for teardown).
member_name() { find "$STATE/sandboxes" -maxdepth 1 -name '.p*' -printf '%f\n' | head -1; }
member_pid() {
	local pid
	pid=$(jq -r .pid "$STATE/sandboxes/$1/sandbox.json") || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	echo "$pid" >>"$SBX_TMP/qemu_pids"
	echo "$pid"
}

# vm_up_as NAME: NAME comes up (bounded: a boot or a fork under TCG) and its
# guest answers as NAME.
vm_up_as() {
	wait_status "$1" running 120 || return 1
	sbx_exec "$1" 'uname -n' >/dev/null || return 1
	[[ "$SBX_OUT" == "$1" ]] || {
		echo "$1 answers as '$SBX_OUT'" >&2
		return 1
	}
}

# Nice values of every thread of pid, one a line, sorted and unique.
thread_nices() {
	local t
	for t in /proc/"$1"/task/*/stat; do
		awk '{ sub(/^.*\) /, ""); print $17 }' "$t" 2>/dev/null
	done | sort -u
}

# QEMUs that run with this test's state dir on their command line.
qemus_of_state() {
	local c
	for c in /proc/[0-9]*/cmdline; do
		tr '\0' ' ' <"$c" 2>/dev/null | grep -q "qemu-system.*$STATE/" && echo "${c//[^0-9]/}"
	done
	return 0
}

@test "qemu pool: a create claims a booted VM: running at once, the guest takes the name; a miss is cold; rmdir leaves nothing" {
	mkdir "$P"
	echo "$SPEC" >"$P/spec"
	grep -q 'backend=qemu' "$P/spec"
	echo 1 >"$P/size"
	wait_ready 1 120
	m=$(member_name)
	mpid=$(member_pid "$m")
	[[ "$(cat "/proc/$mpid/comm")" == qemu-system-x86* ]]
	# A member's QEMU, every thread of it, runs at the fill's lower priority.
	[[ "$(thread_nices "$mpid")" == 10 ]]
	[ -e "$(ls /dev/shm/sandboxfs-*-"$m".ram)" ]

	echo "create $V $SPEC" >"$MNT/ctl"
	# No wait: the claim made it running before the write returned.
	[[ "$(sbx_cat "$MNT/$V/status")" == running ]]
	[[ "$(sbx_key "$MNT/$V/stats" create_mode)" == pool ]]
	(($(sbx_key "$MNT/$V/stats" claim_usec) > 0))
	[[ "$(sbx_key "$MNT/$V/stats" pid)" == "$mpid" ]]
	[[ "$(pool_key hits)" == 1 ]]
	# The guest answers under the user's name, not the member's it booted with.
	sbx_exec "$V" 'uname -n; cat /proc/sys/kernel/hostname'
	[[ "$SBX_RC" == 0 ]]
	[[ "$SBX_OUT" == "$(printf '%s\n%s' "$V" "$V")" ]]
	[[ "$SBX_OUT" != *"$m"* ]]
	# It ran in the shell the member's agent had waiting, and counts so.
	[[ "$(sbx_key "$MNT/$V/stats" exec_warm_total)" == 1 ]]
	# Back to the usual priority, every thread.
	[[ "$(thread_nices "$mpid")" == 0 ]]
	# The guest RAM file and the state dir follow the name.
	[ -e "$(ls /dev/shm/sandboxfs-*-"$V".ram)" ]
	run compgen -G "/dev/shm/sandboxfs-*-$m.ram"
	[ "$status" -ne 0 ]
	[[ -d "$STATE/sandboxes/$V" && ! -e "$STATE/sandboxes/$m" ]]
	grep -q "sandboxfs-.*-$V.ram" "$STATE/sandboxes/$V/qemu.json"

	# An empty pool: the next create of the spec is a miss, made cold.
	echo 0 >"$P/size"
	echo "create ${V}c $SPEC" >"$MNT/ctl"
	vm_up_as "${V}c"
	[[ "$(sbx_key "$MNT/${V}c/stats" create_mode)" == cold ]]
	[[ "$(pool_key misses)" == 1 ]]
	cpid=$(qemu_pid_of "${V}c")

	rmdir "$MNT/$V" "$MNT/${V}c"
	assert_no_qemu_leaks "$V" "$mpid"
	assert_no_qemu_leaks "${V}c" "$cpid"
	rmdir "$P"
	for _ in $(seq 600); do # a refill under way ends its VM once it is up
		[[ -z "$(qemus_of_state)" && -z "$(ls -A "$STATE/sandboxes")" ]] && break
		sleep 0.1
	done
	[[ -z "$(qemus_of_state)" ]]
	[[ -z "$(ls -A "$STATE/sandboxes")" ]]
}

@test "qemu pool: a daemon killed with a member waiting: the next one kills its QEMU; a claimed VM is re-adopted, and forks" {
	mkdir "$P"
	echo "$SPEC" >"$P/spec"
	echo 1 >"$P/size"
	wait_ready 1 120
	echo "create $V $SPEC" >"$MNT/ctl"
	vpid=$(sbx_key "$MNT/$V/stats" pid)
	echo "$vpid" >>"$SBX_TMP/qemu_pids"
	wait_ready 1 120
	m=$(member_name)
	mpid=$(member_pid "$m")

	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_stop_daemon
	[[ "$(cat "/proc/$mpid/comm")" == qemu-system-x86* ]]
	sbx_start_daemon_keep
	# The member's QEMU killed, its files and guest RAM gone.
	assert_no_qemu_leaks "$m" "$mpid"
	[[ ! -e "$STATE/sandboxes/$m" ]]
	# The claimed VM is the user's: re-adopted, same QEMU, its name.
	wait_status "$V" running
	[[ "$(sbx_key "$MNT/$V/stats" pid)" == "$vpid" ]]
	sbx_exec "$V" 'uname -n'
	[[ "$SBX_OUT" == "$V" ]]
	echo 0 >"$P/size"
	rmdir "$P"
	# Its RAM file, renamed at the claim, is the one the re-adopted VM's live
	# fork copies: the child runs, and is itself.
	sbx_write "$MNT/$V/ctl" "fork ${V}f"
	vm_up_as "${V}f"
	fpid=$(qemu_pid_of "${V}f")
	rmdir "$MNT/${V}f" "$MNT/$V"
	assert_no_qemu_leaks "${V}f" "$fpid"
	assert_no_qemu_leaks "$V" "$vpid"
}

@test "qemu pool, net=on: the claimed VM keeps the member's TAP and address; rules name it by its new name" {
	sbx_stop_daemon
	sbx_net_args p
	sbx_start_daemon_keep
	mkdir "$P"
	echo "$SPEC net=on" >"$P/spec"
	echo 1 >"$P/size"
	wait_ready 1 120
	mpid=$(member_pid "$(member_name)")
	echo "create $V $SPEC net=on" >"$MNT/ctl"
	[[ "$(sbx_cat "$MNT/$V/status")" == running ]]
	[[ "$(sbx_key "$MNT/$V/stats" create_mode)" == pool ]]
	echo 0 >"$P/size"
	ip=$(net_of "$V" ip)
	mac=$(net_of "$V" mac)
	tap=$(net_of "$V" host_if)
	ip -d link show "$tap" | grep -q "master $BR"
	# The guest's eth0 is what the member was given at its boot, unchanged.
	sbx_exec "$V" 'uname -n; cat /sys/class/net/eth0/address; ip -4 addr show eth0 | grep -o "inet [^ ]*"'
	[[ "$SBX_OUT" == "$V"$'\n'"$mac"$'\n'"inet $ip/24" ]]
	sbx_exec "$V" "ping -c 1 -W 3 $GW"
	[ "$SBX_RC" -eq 0 ]
	# A rule of another sandbox that names the claimed VM reaches it.
	N="${V}ns"
	sbx_create "$N"
	sbx_exec "$N" "ping -c 1 -W 2 $ip"
	[ "$SBX_RC" -ne 0 ]
	sbx_write "$MNT/$N/ctl" "allow sandbox $V"
	sbx_exec "$N" "ping -c 1 -W 3 $ip"
	[ "$SBX_RC" -eq 0 ]
	rmdir "$P"
	rmdir "$MNT/$V"
	assert_no_qemu_leaks "$V" "$mpid"
	run ip link show "$tap"
	[ "$status" -ne 0 ]
}

@test "qemu pool: a guest agent too old to take a name: its member is discarded with a sentence, the create is made cold" {
	g=$(old_agent_guest 2)
	sbx_stop_daemon
	SANDBOXFS_GUEST_DIR="$g" sbx_start_daemon_keep
	mkdir "$P"
	echo "$SPEC" >"$P/spec"
	echo 1 >"$P/size"
	wait_ready 1 120
	m=$(member_name)
	mpid=$(member_pid "$m")
	echo "create $V $SPEC" >"$MNT/ctl"
	vm_up_as "$V"
	[[ "$(sbx_key "$MNT/$V/stats" create_mode)" == cold ]]
	[[ "$(pool_key hits)" == 0 ]]
	grep -q "could not take the name $V, and was discarded: the guest agent of $m (version 2) cannot" "$P/error"
	assert_no_qemu_leaks "$m" "$mpid"
	# Its place is filled again.
	wait_ready 1 120
	qemu_pid_of "$V" >/dev/null
	echo 0 >"$P/size"
	rmdir "$P"
}
