#!/usr/bin/env bats
# Terminals (issue 17): a job run with `tty=COLSxROWS CMD` gets a pty made
# in the sandbox's own devpts, with its slave as stdin, stdout, stderr and
# controlling terminal; jobs/N/stdout is the master's output, jobs/N/stdin
# writes go to the master, `resize COLSxROWS` on jobs/N/ctl changes its size.
# ns backend (qemu's guest terminals: qemu_tty.bats). Every test gets its
# own daemon; sleeps and timeouts are bounds, never measured results.

load helpers

setup() {
	sbx_make_tmp
	A="tt${SBX_TAG}a"
}

teardown() {
	teardown_sbx
}

# out N: the job's stdout so far (never waits at its end).
out() {
	job_file "$A" "$1" stdout
}

# masters PID: how many pty masters (ptmx, char 5:2) PID holds.
masters() {
	local f n=0
	for f in /proc/"$1"/fd/*; do
		[ "$(stat -L -c %t:%T "$f" 2>/dev/null)" = 5:2 ] && n=$((n + 1))
	done
	echo "$n"
}

# wait_out N TEXT: until the job's stdout holds TEXT (bounded).
wait_out() {
	wait_job_out "$A" "$1" "$2"
}

@test "tty=: stdin, stdout and stderr are a terminal, the controlling one; a plain job has none" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(sbx_run "$A" 'tty=80x24 tty -s && test -t 0 && test -t 1 && test -t 2 && echo yes; : </dev/tty && echo ctty; echo "TERM=$TERM"')
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 0 ]
	[ "$(out "$n")" = $'yes\r\nctty\r\nTERM=xterm\r' ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/cmd")" = 'tty -s && test -t 0 && test -t 1 && test -t 2 && echo yes; : </dev/tty && echo ctty; echo "TERM=$TERM"' ]
	m=$(sbx_run "$A" 'tty -s; echo "tty $?"; test -t 0; echo "t0 $?"; test -t 1; echo "t1 $?"')
	wait_job "$A" "$m" exited
	[ "$(out "$m")" = $'tty 1\nt0 1\nt1 1' ]
}

@test "tty=COLSxROWS: stty size reports the size set at start" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(sbx_run "$A" 'tty=132x43 stty size')
	# (busybox reads a width under 2 as 80: not 1 here)
	m=$(sbx_run "$A" '  tty=10x1000   stty size')
	wait_job "$A" "$n" exited
	wait_job "$A" "$m" exited
	[ "$(out "$n")" = $'43 132\r' ]
	[ "$(out "$m")" = $'1000 10\r' ]
}

@test "resize COLSxROWS: the job gets SIGWINCH and the new size" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(sbx_run "$A" 'tty=80x24 trap "echo winch \$(stty size)" WINCH; echo ready; while :; do sleep 0.1; done')
	wait_out "$n" ready
	echo 'resize 100x30' >"$MNT/$A/jobs/$n/ctl"
	wait_out "$n" "winch 30 100"
	echo 'resize 200x50' >"$MNT/$A/jobs/$n/ctl"
	wait_out "$n" "winch 50 200"
	echo 'kill KILL' >"$MNT/$A/jobs/$n/ctl"
	wait_job "$A" "$n" killed
	# Ended: no terminal left to resize.
	run sbx_write "$MNT/$A/jobs/$n/ctl" 'resize 10x10'
	assert_fails_with "Device or resource busy"
	[[ "$(sbx_cat "$MNT/$A/error")" == *"is killed"* ]]
}

@test "^C written to stdin interrupts sleep and cat through the line discipline" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(tty_ctrl_c "$A")
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = signal ]
	m=$(sbx_run "$A" 'tty=80x24 cat')
	printf 'typed\n' >"$MNT/$A/jobs/$m/stdin"
	# The terminal echoes the line, then cat writes it back.
	wait_out "$m" $'typed\r\ntyped\r'
	printf '\003' >"$MNT/$A/jobs/$m/stdin"
	wait_job "$A" "$m" 'killed|exited'
	[ "$(sbx_cat "$MNT/$A/jobs/$m/exit_code")" -eq 130 ]
	[[ "$(out "$m")" == *'^C'* ]]
}

@test "output is a terminal's: \\n becomes \\r\\n, stderr goes with stdout, eof is ^D" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(sbx_run "$A" 'tty=80x24 echo one; echo two >&2; printf "a\nb\n"')
	wait_job "$A" "$n" exited
	[ "$(out "$n")" = $'one\r\ntwo\r\na\r\nb\r' ]
	[ -z "$(job_file "$A" "$n" stderr)" ]
	# eof: the terminal's EOF character ends cat's input at a line's start.
	tty_eof "$A"
}

@test "bad terminal sizes and resizes fail with EINVAL and a sentence; nothing starts" {
	sbx_start_daemon
	sbx_create "$A"
	for bad in 'tty=0x0 true' 'tty=huge true' 'tty=80x0 true' 'tty=1001x24 true' \
		'tty=80x24x2 true' 'tty= true' 'tty=80X24 true'; do
		run sbx_write "$MNT/$A/run" "$bad"
		assert_fails_with "Invalid argument"
		[[ "$(sbx_cat "$MNT/$A/error")" == *"is not COLSxROWS, each from 1 to 1000"* ]]
	done
	run ls "$MNT/$A/jobs"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	n=$(sbx_run "$A" 'tty=80x24 sleep 100')
	for bad in 'resize 0x0' 'resize huge' 'resize' 'resize 80x24 1'; do
		run sbx_write "$MNT/$A/jobs/$n/ctl" "$bad"
		assert_fails_with "Invalid argument"
	done
	[[ "$(sbx_cat "$MNT/$A/error")" == *"unknown job command 'resize'"* ]]
	# A plain job has no terminal to resize.
	m=$(sbx_run "$A" 'sleep 101')
	run sbx_write "$MNT/$A/jobs/$m/ctl" 'resize 80x24'
	assert_fails_with "Invalid argument"
	[[ "$(sbx_cat "$MNT/$A/error")" == *"has no terminal"* ]]
	# `tty` as a command (no =) is a command, not the option.
	k=$(sbx_run "$A" 'tty; echo "rc $?"')
	wait_job "$A" "$k" exited
	[ "$(out "$k")" = $'not a tty\nrc 1' ]
	echo 'kill KILL' >"$MNT/$A/jobs/$n/ctl"
	echo 'kill KILL' >"$MNT/$A/jobs/$m/ctl"
	assert_healthy "$A"
}

@test "the pty is the sandbox's: /dev/pts/N inside, no new entry in the host's /dev/pts" {
	sbx_start_daemon
	sbx_create "$A"
	before=$(ls /dev/pts | sort)
	n=$(sbx_run "$A" 'tty=80x24 tty; ls /dev/pts; echo ready; sleep 100')
	wait_out "$n" ready
	[ "$(ls /dev/pts | sort)" = "$before" ]
	# Its slave is /dev/pts/N of the sandbox's own devpts (numbered from 0).
	o=$(out "$n")
	[[ "$o" =~ ^/dev/pts/([0-9]+)$'\r\n' ]]
	num=${BASH_REMATCH[1]}
	[[ "$o" == *"$num"* && "$o" == *ptmx* ]]
	grep -q "\"tty\": $num" "$STATE/sandboxes/$A/jobs/$n/job.json"
	pid=$(sbx_pid_of "$A")
	grep -q ' /dev/pts devpts ' "/proc/$pid/mounts"
	echo 'kill KILL' >"$MNT/$A/jobs/$n/ctl"
	wait_job "$A" "$n" killed
	# The job gone, so is its terminal (init lets its copy go once it is
	# read, within a second): a finished tty job is removed as any.
	rmdir "$MNT/$A/jobs/$n"
	for ((i = 0; i < 50; i++)); do
		[ "$(masters "$pid")" -eq 0 ] && break
		sleep 0.1
	done
	k=$(sbx_run "$A" 'ls /dev/pts')
	wait_job "$A" "$k" exited
	[ "$(out "$k")" = ptmx ]
}

@test "a tty job's output is bounded by joblog= like any job's" {
	sbx_start_daemon
	sbx_create_ctl "$A" joblog=64K
	n=$(sbx_run "$A" 'tty=80x24 seq 1 100000; echo end')
	wait_job "$A" "$n" exited
	size=$(stat -c %s "$STATE/sandboxes/$A/jobs/$n/stdout")
	((size <= 64 * 1024 + 65536))
	[[ "$(job_file "$A" "$n" stderr)" == *"dropped"* ]]
}

@test "a tty job lives through a daemon kill -9: the next daemon takes its terminal back" {
	sbx_start_daemon_keep
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	# It writes while no daemon runs (when /tmp/go appears), then reads.
	n=$(sbx_run "$A" 'tty=80x24 echo ready; until [ -e /tmp/go ]; do sleep 0.1; done; echo during; read x; echo "got $x"; stty size')
	wait_out "$n" ready
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	touch "/proc/$pid/root/tmp/go"
	sleep 0.5
	# Not hung up: init holds the terminal's master (a ptmx, char 5:2).
	[ "$(masters "$pid")" -eq 1 ]
	sbx_start_daemon
	[ "$(sbx_cat "$MNT/$A/jobs/$n/status")" = running ]
	wait_out "$n" during
	echo 'resize 99x33' >"$MNT/$A/jobs/$n/ctl"
	printf 'back\n' >"$MNT/$A/jobs/$n/stdin"
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 0 ]
	[ "$(out "$n")" = $'ready\r\nduring\r\nback\r\ngot back\r\n33 99\r' ]
	grep -q "job $n: its terminal (/dev/pts/[0-9]*) is back" "$SBX_LOG"
	# Once it ended and was read, neither the daemon nor init holds its pty.
	for ((i = 0; i < 50; i++)); do
		[ "$(masters "$pid")" -eq 0 ] && break
		sleep 0.1
	done
	[ "$(masters "$pid")" -eq 0 ]
	k=$(sbx_run "$A" 'ls /dev/pts')
	wait_job "$A" "$k" exited
	[ "$(out "$k")" = ptmx ]
}

# ---------------------------------------------------------------- sbx shell

@test "sbx shell: input that is not a terminal runs, ends with ^D, and the job's status is the exit status" {
	sbx_start_daemon
	sbx_create "$A"
	sbx_shell_piped "$A"
	SBX=$MNT run timeout 60 "$SBX_REPO/examples/sbx" shell nosuch$SBX_TAG </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"no sandbox"* ]]
}

@test "sbx shell: from a terminal: raw keys, its size, a resize on SIGWINCH, ^C, the exit code" {
	sbx_start_daemon
	sbx_create "$A"
	run timeout 120 python3 - "$SBX_REPO/examples/sbx" "$A" "$MNT" <<'PY'
import fcntl, os, select, struct, subprocess, sys, termios, time
sbx, name, mnt = sys.argv[1:]
master, slave = os.openpty()
def size(rows, cols):
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
size(33, 101)
def ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
p = subprocess.Popen([sbx, "shell", name], stdin=slave, stdout=slave, stderr=slave,
                     start_new_session=True, preexec_fn=ctty, env=dict(os.environ, SBX=mnt))
os.close(slave)
seen = b""
def expect(what, t=30):
    global seen
    end = time.time() + t
    while what not in seen:
        r, _, _ = select.select([master], [], [], max(0, end - time.time()))
        if not r:
            sys.exit("never saw %r in %r" % (what, seen))
        seen += os.read(master, 4096)
def send(b):
    os.write(master, b)
send(b"stty size\r")
expect(b"33 101")
size(40, 120)  # the kernel sends SIGWINCH to sbx
time.sleep(0.5)
send(b"stty size\r")
expect(b"40 120")
send(b"sleep 100\r")
time.sleep(0.5)
send(b"\x03")  # raw mode here: a byte for the sandbox's terminal, not SIGINT to sbx
send(b"echo after $?\r")
expect(b"after 130")
send(b"exit 5\r")
print("exit", p.wait(30))
PY
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ "$output" = "exit 5" ]
}
