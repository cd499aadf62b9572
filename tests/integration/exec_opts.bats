#!/usr/bin/env bats
# Options of exec and run lines (issue 17, "a fuller exec"): leading
# `cwd=DIR env=NAME=VALUE user=WHO timeout=SECONDS` words before the command,
# carried to sbx-init (ns), with single quotes for values with blanks. Bad
# options fail the write with EINVAL or E2BIG, and the sentence is what a
# read of the same handle returns. Sleeps and timeouts are bounds, never
# measured results.

load helpers
load qemu_helpers

setup() {
	sbx_make_tmp
	A="xo${SBX_TAG}a"
	V=$A
}

# teardown_sbx, and a QEMU of the qemu test that outlived it.
teardown() {
	teardown_sbx_qemu
}

out() {
	job_file "$A" "$1" stdout
}

# try FILE LINE: writes LINE to a fresh handle of FILE (exec or run) and
# reads that handle back; prints "rc=N" (the write's exit status) and what
# was read.
try() {
	python3 - "$MNT/$A/$1" "$2" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    os.write(fd, sys.argv[2].encode() + b"\n")
    rc = 0
except OSError as e:
    rc = e.errno
print("rc=%d" % rc)
sys.stdout.write(os.read(fd, 4096).decode(errors="replace"))
os.close(fd)
EOF
}

# refused FILE LINE ERRNO TEXT: the write fails with ERRNO and a read of
# the same handle gives a sentence holding TEXT.
refused() {
	run try "$1" "$2"
	[[ "${lines[0]}" == "rc=$3" && "${lines[1]}" == *"$4"* ]] || {
		echo "'$2' on $1: ${lines[*]}" >&2
		return 1
	}
}

@test "exec: cwd=, env= (quoted, repeated) and user= reach the command; plain lines are unchanged" {
	sbx_start_daemon
	sbx_create "$A"
	sbx_exec "$A" "cwd=/tmp env=A=1 env=B='two words' env=Q=it\\'s env=HOME=/h pwd; echo \"\$A|\$B|\$Q|\$HOME\""
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = $'/tmp\n1|two words|it\'s|/h' ]
	sbx_exec "$A" "user=nobody id -u; id -g; pwd; echo \$HOME"
	[ "$SBX_OUT" = $'65534\n65534\n/\n/nonexistent' ]
	sbx_exec "$A" "user=1234:65534 cwd='/' id -u; id -g"
	[ "$SBX_OUT" = $'1234\n65534' ]
	# What is not an option stays the command's, as before.
	sbx_exec "$A" 'i=0; LANG=C echo "$i $PWD"'
	[ "$SBX_OUT" = "0 /" ]
	# (a variable named as an option is set with export: env=x is the option)
	sbx_exec "$A" 'export env=x; echo $env'
	[ "$SBX_OUT" = "x" ]
	assert_healthy "$A"
}

@test "exec: a missing cwd= or an unknown user= fails the command with 126 and a sentence" {
	sbx_start_daemon
	sbx_create "$A"
	sbx_exec "$A" "cwd=/nonexistent echo never"
	[ "$SBX_RC" -eq 126 ]
	[[ "$SBX_OUT" == *"cannot enter cwd=/nonexistent"* && "$SBX_OUT" != *never* ]]
	sbx_exec "$A" "user=nosuchuser echo never"
	[ "$SBX_RC" -eq 126 ]
	[[ "$SBX_OUT" == *"user 'nosuchuser'"*"/etc/passwd"* ]]
	# As the user: a directory it may not enter.
	sbx_exec "$A" "mkdir -p /tmp/closed && chmod 700 /tmp/closed"
	sbx_exec "$A" "user=nobody cwd=/tmp/closed echo never"
	[ "$SBX_RC" -eq 126 ]
	[[ "$SBX_OUT" == *"Permission denied"* ]]
	assert_healthy "$A"
}

@test "run: cwd=, env=, user= and tty= together; the job's cmd is the command alone" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(sbx_run "$A" "env=GREETING='hello there' cwd=/etc user=nobody echo \"\$GREETING\" \$(pwd) \$(id -u)")
	wait_job "$A" "$n" exited
	[ "$(out "$n")" = "hello there /etc 65534" ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/cmd")" = "echo \"\$GREETING\" \$(pwd) \$(id -u)" ]
	m=$(sbx_run "$A" "cwd=/tmp tty=80x24 env=X=y pwd; echo \$X; test -t 0 && echo tty")
	wait_job "$A" "$m" exited
	[ "$(out "$m")" = $'/tmp\r\ny\r\ntty\r' ]
}

@test "timeout=: a job's deadline outlives a daemon killed (-9) and restarted" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(sbx_run "$A" 'timeout=4 sleep 100')
	grep -q deadline_unix_usec "$STATE/sandboxes/$A/jobs/$n/job.json"
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_start_daemon
	[ "$(sbx_cat "$MNT/$A/jobs/$n/status")" = running ]
	wait_job "$A" "$n" killed
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = timeout ]
	sbx_exec "$A" 'ps -o args | grep -c "^sleep 100" || true'
	[ "$SBX_OUT" = 0 ]
}

@test "timeout=: the daemon kills a sleep 100 (exec: exit_code 124; job: killed, reason timeout)" {
	sbx_start_daemon
	sbx_create "$A"
	sbx_exec "$A" 'timeout=1 echo before; sleep 100; echo after'
	[ "$SBX_RC" -eq 124 ]
	[ "$SBX_OUT" = before ]
	n=$(sbx_run "$A" 'timeout=1.5 sleep 100 & sleep 100')
	wait_job "$A" "$n" killed
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = timeout ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 137 ]
	# Killed, not ended: the process group went with it, no sleep 100 is left.
	sbx_exec "$A" 'ps -o args | grep -c "^sleep 100" || true'
	[ "$SBX_OUT" = 0 ]
	# One that ends in time is not touched.
	sbx_exec "$A" 'timeout=30 exit 3'
	[ "$SBX_RC" -eq 3 ]
	m=$(sbx_run "$A" 'timeout=30 true')
	wait_job "$A" "$m" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$m/reason")" = exit ]
	assert_healthy "$A"
}

@test "bad options fail the write (EINVAL, E2BIG) with the sentence on the same handle" {
	sbx_start_daemon
	sbx_create "$A"
	for f in exec run; do
		refused "$f" "cwd=tmp pwd" 22 "cwd=tmp is not an absolute path"
		refused "$f" "env=1A=x env" 22 "not NAME=VALUE"
		refused "$f" "env=A-B=x env" 22 "not NAME=VALUE"
		refused "$f" "user=a/b id" 22 "is not USER, UID"
		refused "$f" "timeout=soon sleep 1" 22 "not a number of seconds"
		refused "$f" "cwd=/tmp bogus=1 pwd" 22 "unknown option 'bogus='"
		refused "$f" "env=A='unclosed echo" 22 "not closed"
		many=""
		for i in $(seq 1 33); do many+="env=V$i=x "; done
		refused "$f" "${many}true" 7 "more than 32 env="
		refused "$f" "env=A=$(printf '%02100d' 0) true" 7 "bytes together"
		refused "$f" "env=A=$(printf '%05000d' 0) true" 22 "too long"
	done
	refused exec "tty=80x24 sh" 22 "exec has no terminal"
	refused exec "cwd=/tmp" 22 "options but no command"
	# Nothing ran, no job was made, and a write that works reads no sentence.
	[ -z "$(ls "$MNT/$A/jobs" | grep -v '^last$' || true)" ]
	run try exec "echo fine"
	[[ "${lines[0]}" == "rc=0" && "${lines[1]}" == fine ]]
	assert_healthy "$A"
}

@test "qemu: cwd= and env= run as shell text, user= is the guest agent's, timeout= kills" {
	qemu_require
	sbx_start_daemon
	sbx_create_ctl "$A" backend=qemu memory=256M
	qemu_pid_of "$A" >/dev/null
	sbx_exec "$A" "cwd=/tmp env=A='x y' pwd; echo \"\$A\""
	[ "$SBX_OUT" = $'/tmp\nx y' ]
	sbx_exec "$A" "cwd=/nonexistent echo never"
	[ "$SBX_RC" -eq 126 ]
	sbx_exec "$A" "user=nobody cwd=/tmp id -u; pwd"
	[ "$SBX_OUT" = $'65534\n/tmp' ]
	sbx_exec "$A" 'timeout=2 sleep 100'
	[ "$SBX_RC" -eq 124 ]
}
