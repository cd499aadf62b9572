#!/usr/bin/env bats
# Terminals and user= in a qemu sandbox (issue 17): `run tty=COLSxROWS CMD`
# makes the guest agent open a pty in the guest, the job leads a session with
# the slave as its controlling terminal, its master comes back as stdout and
# takes stdin; `resize` and `eof` on jobs/N/ctl become agent frames. user=
# is looked up in the guest's /etc/passwd. One VM per test (TCG boots are
# slow here); sleeps and timeouts are bounds, never measured results.

load helpers
load qemu_helpers

setup() {
	qemu_require
	setup_sbx
	V="qt${SBX_TAG}"
}

teardown() {
	teardown_sbx_qemu
}

# out N: the job's stdout so far (never waits at its end).
out() {
	job_file "$V" "$1" stdout
}

# wait_out N TEXT: until the job's stdout holds TEXT (bounded).
wait_out() {
	wait_job_out "$V" "$1" "$2"
}

# guest_sleeps SECONDS: how many `sleep SECONDS` run in the guest.
guest_sleeps() {
	sbx_exec "$V" "for p in /proc/[0-9]*; do tr '\\0' ' ' <\$p/cmdline; echo; done 2>/dev/null | grep -c '^sleep $1 \$'" >/dev/null
	echo "$SBX_OUT"
}

@test "qemu: tty= is a terminal in the guest: tty, stty size, resize, ^C, eof, kill, hangup, sbx shell; user=" {
	sbx_create_ctl "$V" backend=qemu memory=256M
	qemu_pid_of "$V" >/dev/null
	# The slave is stdin, stdout and stderr, and the controlling terminal.
	n=$(sbx_run "$V" 'tty=80x24 tty; test -t 0 && test -t 1 && test -t 2 && echo isatty; : </dev/tty && echo ctty; stty size; echo "TERM=$TERM"; echo err >&2')
	wait_job "$V" "$n" exited
	[[ "$(out "$n")" =~ ^/dev/pts/[0-9]+$'\r\n'isatty$'\r\n'ctty$'\r\n''24 80'$'\r\n'TERM=xterm$'\r\n'err$'\r'$ ]] || {
		out "$n" | od -c >&2
		false
	}
	[ -z "$(job_file "$V" "$n" stderr)" ]
	[ "$(sbx_cat "$MNT/$V/jobs/$n/exit_code")" = 0 ]
	# job.json keeps the guest's pts number.
	grep -Eq '"tty": ?[0-9]+' "$STATE/sandboxes/$V/jobs/$n/job.json"

	# resize: the new size, and SIGWINCH to the job.
	n=$(sbx_run "$V" 'tty=80x24 trap "echo winch \$(stty size)" WINCH; echo ready; while :; do sleep 0.1; done')
	wait_out "$n" ready
	echo 'resize 100x30' >"$MNT/$V/jobs/$n/ctl"
	wait_out "$n" "winch 30 100"
	# kill on ctl ends the job's process group.
	echo 'kill KILL' >"$MNT/$V/jobs/$n/ctl"
	wait_job "$V" "$n" killed
	run sbx_write "$MNT/$V/jobs/$n/ctl" 'resize 10x10'
	assert_fails_with "Device or resource busy"

	# ^C through the line discipline interrupts sleep.
	tty_ctrl_c "$V" >/dev/null

	# eof: the terminal's end-of-file character, after the input before it.
	tty_eof "$V"

	# When the leader ends, the terminal ends: what it left behind is hung up.
	n=$(sbx_run "$V" 'tty=80x24 sleep 102 & echo bye')
	wait_job "$V" "$n" exited
	[ "$(guest_sleeps 102)" = 0 ]
	# kill (TERM) reaches the whole process group, a background child too.
	n=$(sbx_run "$V" 'tty=80x24 sleep 103 & echo ready; sleep 104')
	wait_out "$n" ready
	[ "$(guest_sleeps 103)" = 1 ]
	echo kill >"$MNT/$V/jobs/$n/ctl"
	wait_job "$V" "$n" killed
	[ "$(guest_sleeps 103)" = 0 ]

	# examples/sbx shell over it: input that is not a terminal ends with eof,
	# the job's exit status is the shell's.
	sbx_shell_piped "$V"

	# user= on exec and run (a terminal's too), looked up in the guest's files.
	sbx_exec "$V" 'user=nobody id -u; id -g; echo $HOME'
	[ "$SBX_OUT" = $'65534\n65534\n/nonexistent' ]
	n=$(sbx_run "$V" 'user=1234:nogroup id -u; id -g')
	wait_job "$V" "$n" exited
	[ "$(out "$n")" = $'1234\n65534' ]
	n=$(sbx_run "$V" 'tty=80x24 user=nobody id -u')
	wait_job "$V" "$n" exited
	[ "$(out "$n")" = $'65534\r' ]
	# A user the guest does not know: 126 and a sentence; a malformed one: EINVAL.
	sbx_exec "$V" 'user=nosuchuser echo never'
	[ "$SBX_RC" -eq 126 ]
	[[ "$SBX_OUT" == *"user 'nosuchuser'"*"not in the sandbox's /etc/passwd"* ]]
	sbx_exec "$V" 'user=nobody:nosuchgroup echo never'
	[ "$SBX_RC" -eq 126 ]
	[[ "$SBX_OUT" == *"group 'nosuchgroup'"* ]]
	run sbx_write "$MNT/$V/run" 'user=-x id'
	assert_fails_with "Invalid argument"
	[[ "$(sbx_cat "$MNT/$V/error")" == *user=* ]]
	assert_healthy "$V"
}

@test "qemu: a terminal's job runs on across a daemon kill -9; the new daemon attaches its output, resize works" {
	sbx_create_ctl "$V" backend=qemu memory=256M
	pid=$(qemu_pid_of "$V")
	n=$(sbx_run "$V" 'tty=80x24 echo first; until [ -e /tmp/go ]; do sleep 0.1; done; echo second; stty size')
	wait_out "$n" first
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	sbx_start_daemon
	[ "$(sbx_key "$MNT/$V/stats" pid)" = "$pid" ]
	[ "$(sbx_cat "$MNT/$V/jobs/$n/status")" = running ]
	echo 'resize 90x20' >"$MNT/$V/jobs/$n/ctl"
	# Its stdin was the old daemon's pipe: gone, with a sentence.
	run sbx_write "$MNT/$V/jobs/$n/stdin" 'x'
	assert_fails_with "Broken pipe"
	sbx_exec "$V" 'touch /tmp/go'
	wait_job "$V" "$n" exited
	[ "$(out "$n")" = $'first\r\nsecond\r\n20 90\r' ]
	echo stop >"$MNT/$V/ctl"
	[ "$(sbx_cat "$MNT/$V/status")" = stopped ]
	assert_no_qemu_leaks "$V" "$pid"
}

@test "qemu: a guest agent of before terminals: tty= and user= are EOPNOTSUPP with a sentence, the rest works" {
	# The agent as it is, but saying version 2 in its hello (as one of before
	# does, whose VM a daemon may re-adopt or restore).
	g=$(old_agent_guest 2)
	sbx_stop_daemon
	SANDBOXFS_GUEST_DIR="$g" sbx_start_daemon
	sbx_create_ctl "$V" backend=qemu memory=256M
	qemu_pid_of "$V" >/dev/null
	run sbx_write "$MNT/$V/run" 'tty=80x24 sh'
	assert_fails_with "Operation not supported"
	[[ "$(sbx_cat "$MNT/$V/error")" == *"guest agent (version 2"*"has no terminals"* ]]
	run sbx_write "$MNT/$V/run" 'user=nobody id -u'
	assert_fails_with "Operation not supported"
	[[ "$(sbx_cat "$MNT/$V/error")" == *"has no user="* ]]
	# Nor files (agent version 4).
	run timeout 60 /usr/bin/python3 "$BATS_TEST_DIRNAME/files_req.py" "$MNT/$V/files" "get /etc/hostname"
	[ "$output" = "ERR EOPNOTSUPP: this VM's guest agent (version 2, from an older initramfs) has no files: restart the sandbox on a new one (make guest)" ]
	# Nothing was made, and plain commands and jobs work as before.
	[ -z "$(ls "$MNT/$V/jobs" | grep -v '^last$' || true)" ]
	sbx_exec "$V" 'id -u'
	[ "$SBX_OUT" = 0 ]
	n=$(sbx_run "$V" 'echo plain')
	wait_job "$V" "$n" exited
	[ "$(out "$n")" = plain ]
}
