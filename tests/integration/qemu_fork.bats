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

	# A fork right after: the refill may not be up yet (then cold); it works
	# either way. The parent's guest undid the agent's view of boot_id: the
	# child has a boot_id of its own all the same.
	sbx_exec "$V" 'umount /proc/sys/kernel/random/boot_id; cat /proc/sys/kernel/random/boot_id'
	boot_v=$SBX_OUT
	echo "fork ${V}c" >"$MNT/$V/ctl"
	wait_status "${V}c" running
	qemu_pid_of "${V}c" >/dev/null
	[[ "$(sbx_key "$MNT/${V}c/stats" fork_start)" =~ ^(ahead|cold)$ ]]
	sbx_exec "${V}c" 'cat /root/two; ls /root/mine 2>/dev/null || echo no-mine; hostname'
	[ "$SBX_OUT" = "$(printf 'two\nno-mine\n%s' "${V}c")" ]
	sbx_exec "${V}c" 'cat /proc/sys/kernel/random/boot_id'
	[ "$SBX_OUT" != "$boot_v" ]
	[ "$SBX_OUT" != "$boot_b" ]

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
	assert_no_shm
}

@test "qemu fork: a burst's children each take a QEMU started ahead, sharing one RAM file; spares follow the fork's width" {
	sbx_stop_daemon
	sbx_start_daemon --qemu-spares 3
	sbx_create_ctl "$V" backend=qemu
	spare_note_tag "$V"
	sbx_exec "$V" 'echo one >/root/one'
	# A fork of one child leaves one spare, which starts once that child has:
	# the fork of three right after finds none waiting (all three cold).
	echo "fork ${V}a" >"$MNT/$V/ctl"
	echo "fork ${V}b1 ${V}b2 ${V}b3" >"$MNT/$V/ctl"
	for k in a b1 b2 b3; do
		wait_status "$V$k" running
		[ "$(sbx_key "$MNT/$V$k/stats" fork_start)" = cold ]
	done
	# Three after a fork of three, the most --qemu-spares allows: the one
	# still starting and two more, one RAM file under three names (its link
	# count), all holes until the next fork.
	wait_spare "$V" 3
	spares=$(spare_pids "$V")
	[ "$(wc -w <<<"$spares")" = 3 ]
	rams=$(ls /dev/shm | grep "^sandboxfs-$(spare_tag)-spare-")
	[ "$(wc -l <<<"$rams")" = 3 ]
	[ "$(stat -c '%i %h %b' $(sed 's|^|/dev/shm/|' <<<"$rams") | sort -u | wc -l)" = 1 ]
	[ "$(stat -c '%h %b' "/dev/shm/$(head -n 1 <<<"$rams")")" = "3 0" ]

	# A fork of two: both children are spares' processes, restored from it;
	# the third spare (its map is that fork's RAM now) ends; two follow.
	sbx_exec "$V" 'echo two >/root/two'
	echo "fork ${V}c1 ${V}c2" >"$MNT/$V/ctl"
	for k in c1 c2; do
		wait_status "$V$k" running
		[ "$(sbx_key "$MNT/$V$k/stats" fork_start)" = ahead ]
		grep -qx "$(qemu_pid_of "$V$k")" <<<"$spares"
	done
	[ "$(qemu_pid_of "${V}c1")" != "$(qemu_pid_of "${V}c2")" ]
	left=$(grep -vx -e "$(qemu_pid_of "${V}c1")" -e "$(qemu_pid_of "${V}c2")" <<<"$spares")
	wait_not_qemu "$left"
	# Each child is itself: the parent's files at the fork, its own name and
	# RNG, its own writes.
	sbx_exec "${V}c1" 'cat /root/one /root/two; hostname; echo c1 >/root/mine; cat /proc/sys/kernel/random/boot_id'
	[ "$(sed -n 1,3p <<<"$SBX_OUT")" = "$(printf 'one\ntwo\n%s' "${V}c1")" ]
	boot1=$(sed -n 4p <<<"$SBX_OUT")
	sbx_exec "${V}c2" 'cat /root/one /root/two; hostname; cat /root/mine 2>/dev/null || echo none; cat /proc/sys/kernel/random/boot_id'
	[ "$(sed -n 1,4p <<<"$SBX_OUT")" = "$(printf 'one\ntwo\n%s\nnone' "${V}c2")" ]
	[ "$(sed -n 5p <<<"$SBX_OUT")" != "$boot1" ]
	wait_spare "$V" 2
	spares=$(spare_pids "$V")

	# The parent's removal ends its spares; the children's removal leaves nothing.
	rmdir "$MNT/$V"
	assert_no_spares $spares
	for k in a b1 b2 b3 c1 c2; do
		rmdir "$MNT/$V$k"
	done
	for k in a b1 b2 b3 c1 c2; do
		wait_no_leaks "$V$k"
	done
	assert_no_shm
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
