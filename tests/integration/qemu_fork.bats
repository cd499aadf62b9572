#!/usr/bin/env bats
# qemu live fork with the child's QEMU started ahead (--qemu-spares): after
# a VM's first fork the daemon keeps a QEMU waiting (-incoming defer, QMP
# ready) for its next one, which then pays only the restore. The spare is
# never a sandbox, ends with its parent, and a daemon killed with one waiting
# leaves no QEMU behind once a new daemon starts.

load helpers
load qemu_helpers

setup() {
	qemu_require
	setup_sbx
	V="qf${SBX_TAG}"
}

# Also the spare QEMUs noted by spare_pids (killed only while still a QEMU).
teardown() {
	teardown_sbx_qemu
}

@test "qemu fork: the next fork takes a QEMU started ahead; the child runs, diverges, is itself" {
	sbx_create_ctl "$V" backend=qemu
	src_pid=$(qemu_pid_of "$V")
	spare_note_tag "$V"
	# No fork yet: no spare (a VM never forked costs nothing more).
	[ "$(sbx_key "$MNT/$V/stats" fork_spares_ready)" = 0 ]
	[ "$(sbx_key "$MNT/$V/stats" fork_spares_starting)" = 0 ]
	sbx_exec "$V" 'echo one >/root/one'
	echo "fork ${V}a" >"$MNT/$V/ctl"
	wait_status "${V}a" running
	qemu_pid_of "${V}a" >/dev/null
	[ "$(sbx_key "$MNT/${V}a/stats" fork_start)" = cold ]

	# After the first fork, a spare waits; it is no sandbox.
	wait_spare "$V"
	spare=$(spare_pids "$V")
	[[ "$spare" =~ ^[0-9]+$ ]]
	is_qemu "$spare"
	[ "$(sbx_names | sort | tr '\n' ' ')" = "$V ${V}a " ]
	sbx_exec "$V" 'echo two >/root/two'
	echo "fork ${V}b" >"$MNT/$V/ctl"
	wait_status "${V}b" running
	# The child is the spare's process, restored from this fork's checkpoint.
	[ "$(sbx_key "$MNT/${V}b/stats" fork_start)" = ahead ]
	[ "$(qemu_pid_of "${V}b")" = "$spare" ]
	[[ "$(sbx_key "$MNT/${V}b/stats" create_restore_usec)" =~ ^[1-9][0-9]*$ ]]
	[[ "$(sbx_key "$MNT/${V}b/stats" create_claim_usec)" =~ ^[0-9]+$ ]]
	sbx_exec "${V}b" 'cat /root/one /root/two; hostname'
	[ "$SBX_OUT" = "$(printf 'one\ntwo\n%s' "${V}b")" ]
	# Its writes are its own, and its RNG is not its parent's.
	sbx_exec "${V}b" 'echo mine >/root/mine; cat /proc/sys/kernel/random/boot_id'
	boot_b=$SBX_OUT
	sbx_exec "$V" 'cat /root/mine 2>/dev/null || echo none; cat /proc/sys/kernel/random/boot_id'
	[ "$(sed -n 1p <<<"$SBX_OUT")" = none ]
	[ "$(sed -n 2p <<<"$SBX_OUT")" != "$boot_b" ]
	[ "$(sbx_key "$MNT/$V/stats" pid)" = "$src_pid" ]

	# A fork right after: the refill may not be up yet (then cold); it works either way.
	echo "fork ${V}c" >"$MNT/$V/ctl"
	wait_status "${V}c" running
	qemu_pid_of "${V}c" >/dev/null
	[[ "$(sbx_key "$MNT/${V}c/stats" fork_start)" =~ ^(ahead|cold)$ ]]
	sbx_exec "${V}c" 'cat /root/two; ls /root/mine 2>/dev/null || echo no-mine; hostname'
	[ "$SBX_OUT" = "$(printf 'two\nno-mine\n%s' "${V}c")" ]

	# The parent's removal ends its spares: no QEMU, no file of theirs left.
	wait_spare "$V"
	spares=$(spare_pids "$V")
	rmdir "$MNT/$V"
	assert_no_qemu_leaks "$V" "$src_pid"
	assert_no_spares $spares
	for k in ${V}a ${V}b ${V}c; do
		rmdir "$MNT/$k"
	done
	for k in ${V}a ${V}b ${V}c; do
		wait_no_leaks "$k"
	done
	if ls /dev/shm | grep -q "^sandboxfs-$(spare_tag)-"; then
		ls /dev/shm | grep "^sandboxfs-$(spare_tag)-"
		false
	fi
}

@test "qemu fork: --qemu-spares 0 keeps none; a daemon killed with a spare waiting leaves no QEMU" {
	sbx_stop_daemon
	sbx_start_daemon --qemu-spares 0
	sbx_create_ctl "$V" backend=qemu
	src_pid=$(qemu_pid_of "$V")
	spare_note_tag "$V"
	echo "fork ${V}a" >"$MNT/$V/ctl"
	wait_status "${V}a" running
	qemu_pid_of "${V}a" >/dev/null
	[ "$(sbx_key "$MNT/$V/stats" fork_spares_starting)" = 0 ]
	[ "$(sbx_key "$MNT/$V/stats" fork_spares_ready)" = 0 ]
	rmdir "$MNT/${V}a"

	# The default (1): a spare after the first fork; then kill -9 of the daemon.
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_stop_daemon
	sbx_start_daemon
	[ "$(sbx_key "$MNT/$V/stats" pid)" = "$src_pid" ]
	echo "fork ${V}b" >"$MNT/$V/ctl"
	wait_status "${V}b" running
	qemu_pid_of "${V}b" >/dev/null
	wait_spare "$V"
	# A child made from a spare (its sockets renamed into its dir) is re-adopted too.
	echo "fork ${V}d" >"$MNT/$V/ctl"
	wait_status "${V}d" running
	d_pid=$(qemu_pid_of "${V}d")
	[ "$(sbx_key "$MNT/${V}d/stats" fork_start)" = ahead ]
	wait_spare "$V"
	spare=$(spare_pids "$V")
	is_qemu "$spare"
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_stop_daemon
	# The spare outlived its daemon; the next one kills it and removes its files.
	sbx_start_daemon
	assert_no_spares "$spare"
	[ "$(sbx_cat "$MNT/$V/status")" = running ]
	[ "$(sbx_cat "$MNT/${V}d/status")" = running ]
	[ "$(sbx_key "$MNT/${V}d/stats" pid)" = "$d_pid" ]
	sbx_exec "${V}d" 'hostname'
	[ "$SBX_OUT" = "${V}d" ]
	[ "$(sbx_key "$MNT/$V/stats" fork_spares_ready)" = 0 ]
	# The parent forks on after the restart (cold: the new daemon's spare comes after it).
	echo "fork ${V}c" >"$MNT/$V/ctl"
	wait_status "${V}c" running
	qemu_pid_of "${V}c" >/dev/null
	[ "$(sbx_key "$MNT/${V}c/stats" fork_start)" = cold ]
	sbx_exec "${V}c" 'hostname'
	[ "$SBX_OUT" = "${V}c" ]
	wait_spare "$V"
	spares=$(spare_pids "$V")
	for k in $V ${V}b ${V}c ${V}d; do
		rmdir "$MNT/$k"
	done
	assert_no_spares $spares
}
