#!/usr/bin/env bats
# Using a sandbox through its files (issue 8): exec, background jobs (run,
# jobs/N/), deadlines (timeout=, extend), OOM reasons, root, wait, events with
# poll, and the top-level metrics. ns backend only (qemu has its own suite).
# Every test gets its own daemon, state dir and mount point. No assertion is
# on time: sleeps and timeouts below are bounds, never measured results.
#
# A read that the daemon holds (wait, the end of a running job's stdout, exec
# output) is parked and ends with EINTR when its reader is interrupted, so a
# `timeout` around it works; tests still make sure a blocking read always has
# something coming, so that none relies on the timeout.

load helpers

setup() {
	setup_sbx
	A="us${SBX_TAG}a"
	B="us${SBX_TAG}b"
}

teardown() {
	teardown_sbx
}

# ---------------------------------------------------------------- exec

@test "exec: exit status of true, false and exit 3 on the same handle" {
	sbx_create "$A"
	sbx_exec "$A" true
	[ "$SBX_RC" -eq 0 ]
	[ -z "$SBX_OUT" ]
	sbx_exec "$A" false
	[ "$SBX_RC" -eq 1 ]
	sbx_exec "$A" 'echo out; echo err >&2; exit 3'
	[ "$SBX_RC" -eq 3 ]
	grep -qx out <<<"$SBX_OUT"
	grep -qx err <<<"$SBX_OUT"
}

@test "exec: uname -n and id -u (the issue's bash example: one fd, then EOF, then the status)" {
	sbx_create "$A"
	exec {fd}<>"$MNT/$A/exec"
	echo 'uname -n; id -u' >&"$fd"
	out=$(timeout 30 cat <&"$fd")
	st=$(timeout 10 cat <&"$fd")
	# After the status, EOF again.
	rest=$(timeout 10 cat <&"$fd")
	exec {fd}>&-
	[ "$out" = "$A"$'\n'0 ]
	[ "$st" = "exit_code 0" ]
	[ -z "$rest" ]
}

@test "exec: a shell line of more than 32 words runs (it is a shell line, not a ctl command)" {
	sbx_create "$A"
	sbx_exec "$A" "echo $(seq -s ' ' 1 40)"
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = "$(seq -s ' ' 1 40)" ]
	n=$(sbx_run "$A" "echo $(seq -s ' ' 1 40)")
	[[ "$n" =~ ^[0-9]+$ ]]
}

@test "exec: a command killed by a signal reports 128+signal" {
	sbx_create "$A"
	sbx_exec "$A" 'kill -9 $$'
	[ "$SBX_RC" -eq 137 ]
	sbx_exec "$A" 'kill -TERM $$'
	[ "$SBX_RC" -eq 143 ]
}

@test "exec: Python with a single open reads the output, then the exit status" {
	sbx_create "$A"
	run timeout 60 python3 - "$MNT/$A/exec" <<'EOF'
import sys
f = open(sys.argv[1], "r+b", buffering=0)
f.write(b"ls /; exit 7\n")
out = b""
while True:
    b = f.read(65536)
    if not b:
        break
    out += b
st = f.read()
print(out.decode(), end="")
print(st.decode().strip())
EOF
	[ "$status" -eq 0 ]
	grep -qx etc <<<"$output"
	grep -qx bin <<<"$output"
	[ "${lines[-1]}" = "exit_code 7" ]
}

@test "exec: examples/sbx exec exits with the command's status" {
	sbx_create "$A"
	SBX=$MNT run "$SBX_REPO/examples/sbx" exec "$A" -- true
	[ "$status" -eq 0 ]
	SBX=$MNT run "$SBX_REPO/examples/sbx" exec "$A" -- false
	[ "$status" -eq 1 ]
	SBX=$MNT run "$SBX_REPO/examples/sbx" exec "$A" -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	SBX=$MNT run "$SBX_REPO/examples/sbx" exec "$A" -- echo 'two words' "it's"
	[ "$status" -eq 0 ]
	[ "$output" = "two words it's" ]
}

@test "exec: root of the sandbox, cwd /, a clean environment with PATH and HOME" {
	sbx_create "$A"
	SBX_LEAK_CHECK_VAR=host-only-$SBX_TAG sbx_exec "$A" 'id -u; pwd; env'
	[ "$SBX_RC" -eq 0 ]
	[ "${SBX_OUT%%$'\n'*}" = 0 ]
	grep -qx / <<<"$SBX_OUT"
	grep -q '^PATH=' <<<"$SBX_OUT"
	grep -q '^HOME=' <<<"$SBX_OUT"
	# Nothing of the host's (bats') environment leaks in.
	! grep -q '^BATS_' <<<"$SBX_OUT" || false
	! grep -q "host-only-$SBX_TAG" <<<"$SBX_OUT" || false
}

@test "exec: the command is confined as the sandbox's init (namespaces, cgroup, capabilities, seccomp)" {
	sbx_create "$A"
	# A script (a long shell line is refused: see the 32-word test).
	cat >"$MNT/$A/root/tmp/conf.sh" <<'EOS'
for k in pid mnt uts ipc net cgroup; do
	[ "$(readlink /proc/self/ns/$k)" = "$(readlink /proc/1/ns/$k)" ] || echo "ns $k differs"
done
[ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] || echo "cgroup differs"
for k in CapBnd CapEff NoNewPrivs Seccomp; do
	[ "$(grep "^$k:" /proc/self/status)" = "$(grep "^$k:" /proc/1/status)" ] || echo "$k differs"
done
grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status
EOS
	sbx_exec "$A" 'sh /tmp/conf.sh'
	[ "$SBX_RC" -eq 0 ]
	! grep -q differs <<<"$SBX_OUT" || false
	grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$SBX_OUT"
	grep -Eq '^Seccomp:[[:space:]]+2$' <<<"$SBX_OUT"
	# The command's pid 1 is the sandbox's init, not the host's.
	sbx_exec "$A" 'cat /proc/1/comm'
	[ "$SBX_OUT" = sbx-init ]
}

@test "exec: a 10 MB output is read completely and exactly" {
	sbx_create "$A"
	# Deterministic content generated inside, compared with the same made here.
	want=$(head -c 10485760 /dev/zero | tr '\0' x | sha256sum | awk '{print $1}')
	exec {fd}<>"$MNT/$A/exec"
	echo "head -c 10485760 /dev/zero | tr '\\0' x" >&"$fd"
	timeout 120 cat <&"$fd" >"$SBX_TMP/big.x"
	st=$(timeout 10 cat <&"$fd")
	exec {fd}>&-
	[ "$st" = "exit_code 0" ]
	[ "$(stat -c %s "$SBX_TMP/big.x")" -eq 10485760 ]
	[ "$(sha256sum <"$SBX_TMP/big.x" | awk '{print $1}')" = "$want" ]
	# Random content: any lost, doubled or reordered block shows.
	sbx_exec "$A" 'head -c 10485760 /dev/urandom > /tmp/big && sha256sum /tmp/big'
	[ "$SBX_RC" -eq 0 ]
	want=$(awk '{print $1; exit}' <<<"$SBX_OUT")
	exec {fd}<>"$MNT/$A/exec"
	echo 'cat /tmp/big' >&"$fd"
	timeout 120 cat <&"$fd" >"$SBX_TMP/big.r"
	st=$(timeout 10 cat <&"$fd")
	exec {fd}>&-
	[ "$st" = "exit_code 0" ]
	[ "$(stat -c %s "$SBX_TMP/big.r")" -eq 10485760 ]
	[ "$(sha256sum <"$SBX_TMP/big.r" | awk '{print $1}')" = "$want" ]
}

@test "exec: 20 concurrent handles run at once and each gets its own output and status" {
	sbx_create "$A"
	# Each command marks itself, then waits (bounded) until all 20 are
	# there: this only finishes if the 20 really run at the same time.
	echo 'touch /tmp/bar/$1; i=0; while [ $(ls /tmp/bar | wc -l) -lt 20 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo handle-$1 $(ls /tmp/bar | wc -l); exit $1' >"$MNT/$A/root/tmp/bar.sh"
	sbx_exec "$A" 'rm -rf /tmp/bar && mkdir /tmp/bar'
	run timeout 120 python3 - "$MNT/$A/exec" <<'EOF'
import sys
n = 20
hs = []
for i in range(n):
    f = open(sys.argv[1], "r+b", buffering=0)
    f.write(b"sh /tmp/bar.sh %d\n" % i)
    hs.append(f)
bad = 0
for i, f in enumerate(hs):
    out = b""
    while True:
        b = f.read(65536)
        if not b:
            break
        out += b
    st = f.read().decode().strip()
    f.close()
    want = "handle-%d %d\n" % (i, n)
    if out.decode() != want or st != "exit_code %d" % i:
        print("handle %d: output %r status %r" % (i, out, st))
        bad += 1
print("bad", bad)
sys.exit(1 if bad else 0)
EOF
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "bad 0" ]
}

# wait_no_proc NAME PATTERN: wait (bounded) until `ps` in the sandbox shows
# no process whose line matches PATTERN.
wait_no_proc() {
	local name=$1 pat=$2 i
	for ((i = 0; i < 100; i++)); do
		sbx_exec "$name" 'ps -o pid,args' >/dev/null || return 1
		grep -q -- "$pat" <<<"$SBX_OUT" || return 0
		sleep 0.1
	done
	echo "still running in $name after the handle was closed:" >&2
	printf '%s\n' "$SBX_OUT" >&2
	return 1
}

@test "exec: a handle closed mid-command leaves no process" {
	sbx_create "$A"
	# Closed after the first output was read.
	run timeout 60 python3 - "$MNT/$A/exec" <<'EOF'
import sys
f = open(sys.argv[1], "r+b", buffering=0)
f.write(b"echo started; sleep 4321; echo never\n")
got = b""
while b"started" not in got:
    b = f.read(100)
    if not b:
        break
    got += b
print(got.decode().strip())
f.close()
EOF
	[ "$status" -eq 0 ]
	[ "$output" = started ]
	# Closed without reading anything (a pipeline with a child in it).
	exec {fd}<>"$MNT/$A/exec"
	echo 'sleep 4322 | sleep 4323' >&"$fd"
	# Make sure it started before the close.
	for ((i = 0; i < 100; i++)); do
		sbx_exec "$A" 'ps -o args' >/dev/null
		grep -q 'sleep 4323' <<<"$SBX_OUT" && break
		sleep 0.1
	done
	grep -q 'sleep 4323' <<<"$SBX_OUT"
	exec {fd}>&-
	wait_no_proc "$A" 'sleep 432[123]'
	# The sandbox runs on.
	assert_healthy "$A"
}

@test "exec: in a stopped sandbox fails with EBUSY and a sentence in error" {
	sbx_create "$A"
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	run timeout 20 bash -c 'exec 3<>"$1" && printf "true\n" >&3' _ "$MNT/$A/exec"
	assert_fails_with "Device or resource busy"
	run sbx_cat "$MNT/$A/error"
	[ "$status" -eq 0 ]
	# A sentence: several words, naming the state.
	[ "$(wc -w <<<"$output")" -ge 3 ]
	[[ "$output" == *stopped* ]]
	# examples/sbx reports the failure too.
	SBX=$MNT run "$SBX_REPO/examples/sbx" exec "$A" -- true
	[ "$status" -ne 0 ]
}

@test "exec: a slow reader stalls the command (output is not buffered without bound)" {
	sbx_create "$A"
	init=$(sbx_pid_of "$A")
	exec {fd}<>"$MNT/$A/exec"
	# 200 MB to stdout, then a mark. Read only the first bytes.
	echo 'rm -f /tmp/done; head -c 209715200 /dev/zero; touch /tmp/done' >&"$fd"
	head -c 65536 <&"$fd" >/dev/null
	rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SBX_PID/status")
	# Wait (bounded) until the writer, `head` in the sandbox, sleeps in
	# write(2) on its output pipe: nobody reads, so it must block.
	hp="" wchan=""
	for ((i = 0; i < 600; i++)); do
		hp=$(pgrep -x --ns "$init" --nslist pid head) || hp=""
		wchan=$(cat "/proc/$hp/wchan" 2>/dev/null) || wchan=""
		[[ "$wchan" == *pipe_write ]] && break
		[[ -e "$MNT/$A/root/tmp/done" ]] && break
		sleep 0.1
	done
	echo "# head pid '$hp' wchan '$wchan'"
	[[ "$wchan" == *pipe_write ]]
	written=$(awk '$1 == "wchar:" { print $2 }' "/proc/$hp/io")
	rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SBX_PID/status")
	[ ! -e "$MNT/$A/root/tmp/done" ]
	exec {fd}>&-
	# It blocked long before its 200 MB, and the daemon did not take them in
	# (rss in kB).
	echo "# written $written bytes, daemon rss +$((rss1 - rss0)) kB"
	[ "$written" -lt 104857600 ]
	[ $((rss1 - rss0)) -lt 102400 ]
}

# ---------------------------------------------------------------- run and jobs

@test "run: returns a job id; jobs/N has cmd, pid, status, exit_code, reason, stdout, stderr" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'echo to-out; echo to-err >&2; read x; exit 4')
	[ -d "$MNT/$A/jobs/$n" ]
	run ls "$MNT/$A/jobs"
	[ "$status" -eq 0 ]
	grep -qx "$n" <<<"$output"
	for f in cmd pid status exit_code reason stdout stderr stdin ctl; do
		[ -e "$MNT/$A/jobs/$n/$f" ]
	done
	[ "$(sbx_cat "$MNT/$A/jobs/$n/cmd")" = 'echo to-out; echo to-err >&2; read x; exit 4' ]
	pid=$(sbx_cat "$MNT/$A/jobs/$n/pid")
	[[ "$pid" =~ ^[0-9]+$ ]]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/status")" = running ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = - ]
	# pid is the job's pid inside the sandbox.
	sbx_exec "$A" "cat /proc/$pid/cmdline | tr '\\0' ' '"
	[[ "$SBX_OUT" == *"read x"* ]]
	echo >"$MNT/$A/jobs/$n/stdin"
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 4 ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = exit ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = to-out ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stderr")" = to-err ]
	# The output is kept in the state dir.
	[ "$(cat "$STATE/sandboxes/$A/jobs/$n/stdout")" = to-out ]
	[ "$(cat "$STATE/sandboxes/$A/jobs/$n/stderr")" = to-err ]
}

@test "run: a job's pid reads as its pid from the moment run answers, never 0" {
	sbx_create "$A"
	# The sandbox reports the pid a moment after run answers: a read made
	# at once waits for it. Python, so that the read follows within
	# microseconds.
	timeout 60 python3 - "$MNT/$A" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(40):
    fd = os.open(d + "/run", os.O_RDWR)
    os.write(fd, b"sleep 2\n")
    n = os.read(fd, 100).decode().strip()
    os.close(fd)
    with open("%s/jobs/%s/pid" % (d, n)) as f:
        pid = f.read().strip()
    assert pid.isdigit() and int(pid) > 1, (n, pid)
PY
}

@test "run: the job id reads exactly with bash's read (byte by byte)" {
	sbx_create "$A"
	# bash's `read` on a pipe-like fd reads one byte at a time.
	for want in $(seq 1 25); do
		exec {fd}<>"$MNT/$A/run"
		echo true >&"$fd"
		id=""
		read -r -t 10 id <&"$fd" || id="$id (read: EOF or timeout)"
		exec {fd}>&-
		[ "$id" = "$want" ] || {
			echo "job $want: read -r gave '$id'"
			false
		}
	done
}

@test "run: one handle starts one job; a second write on it fails" {
	sbx_create "$A"
	exec {fd}<>"$MNT/$A/run"
	echo true >&"$fd"
	run bash -c 'echo true >&'"$fd"
	exec {fd}>&-
	assert_fails
}

@test "run: a job started by one process is read to completion by another after the first exits" {
	sbx_create "$A"
	# The starting client is a separate process that exits right away.
	n=$(bash -c 'exec 3<>"$1/run"; printf "%s\n" "$2" >&3; head -n 1 <&3 2>/dev/null' _ "$MNT/$A" \
		'for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done; echo last')
	[[ "$n" =~ ^[0-9]+$ ]]
	# Another process reads: the read at the end blocks until the job ends.
	run timeout 60 cat "$MNT/$A/jobs/$n/stdout"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'line%s\n' 1 2 3 4 5)"$'\n'last ]
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 0 ]
	# And again from the start, by yet another reader.
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout" | wc -l)" -eq 6 ]
}

@test "run: a job's output is read from an offset" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'printf 0123456789abcdefghij; printf ERR0123456789 >&2')
	wait_job "$A" "$n" exited
	run python3 - "$MNT/$A/jobs/$n" <<'EOF'
import os, sys
d = sys.argv[1]
fd = os.open(d + "/stdout", os.O_RDONLY)
print(os.pread(fd, 6, 10).decode())
print(os.pread(fd, 100, 16).decode())
print(repr(os.pread(fd, 10, 20)))
os.lseek(fd, 3, os.SEEK_SET)
print(os.read(fd, 4).decode())
fd2 = os.open(d + "/stderr", os.O_RDONLY)
print(os.pread(fd2, 5, 8).decode())
EOF
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = abcdef ]
	[ "${lines[1]}" = ghij ]
	[ "${lines[2]}" = "b''" ]
	[ "${lines[3]}" = 3456 ]
	[ "${lines[4]}" = 56789 ]
	# tail -c reads from an offset too.
	[ "$(tail -c +11 "$MNT/$A/jobs/$n/stdout")" = abcdefghij ]
}

@test "run: an offset read of a running job waits for the output to get there" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'printf 01234; sleep 0.5; printf 56789; read x')
	run timeout 60 python3 - "$MNT/$A/jobs/$n/stdout" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.pread(fd, 3, 6).decode())
EOF
	echo >"$MNT/$A/jobs/$n/stdin"
	[ "$status" -eq 0 ]
	[ "$output" = 678 ]
}

@test "run: O_NONBLOCK read at the end of a running job's output returns 0 at once" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'echo ready; read x; echo after')
	for ((i = 0; i < 100; i++)); do
		[ "$(job_file "$A" "$n" stdout)" = ready ] && break
		sleep 0.1
	done
	run timeout 30 python3 - "$MNT/$A/jobs/$n/stdout" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print(repr(os.read(fd, 100)))
print(repr(os.read(fd, 100)))
EOF
	echo go >"$MNT/$A/jobs/$n/stdin"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "b'ready\\n'" ]
	[ "${lines[1]}" = "b''" ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/status")" != killed ]
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = ready$'\n'after ]
}

@test "run: stdin goes to the job, ctl eof closes it" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'while read l; do echo "got $l"; done; echo eof-seen')
	printf 'one\ntwo\n' >"$MNT/$A/jobs/$n/stdin"
	echo three >"$MNT/$A/jobs/$n/stdin"
	echo eof >"$MNT/$A/jobs/$n/ctl"
	wait_job "$A" "$n" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$n/stdout")" = "got one"$'\n'"got two"$'\n'"got three"$'\n'eof-seen ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 0 ]
	# stdin of a finished job takes nothing.
	run sbx_write "$MNT/$A/jobs/$n/stdin" more
	assert_fails
}

@test "run: ctl kill (TERM by default, or a named signal) ends a job with reason signal" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'sleep 1000')
	m=$(sbx_run "$A" 'sleep 1001')
	echo kill >"$MNT/$A/jobs/$n/ctl"
	echo 'kill KILL' >"$MNT/$A/jobs/$m/ctl"
	wait_job "$A" "$n" killed
	wait_job "$A" "$m" killed
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = signal ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 143 ]
	[ "$(sbx_cat "$MNT/$A/jobs/$m/reason")" = signal ]
	[ "$(sbx_cat "$MNT/$A/jobs/$m/exit_code")" -eq 137 ]
	# A bad signal is EINVAL; the job list and the sandbox are unharmed.
	k=$(sbx_run "$A" 'sleep 1002')
	run sbx_write "$MNT/$A/jobs/$k/ctl" 'kill NOSUCHSIG'
	assert_fails_with "Invalid argument"
	run sbx_write "$MNT/$A/jobs/$k/ctl" 'frobnicate'
	assert_fails_with "Invalid argument"
	[ "$(sbx_cat "$MNT/$A/jobs/$k/status")" = running ]
	echo 'kill 9' >"$MNT/$A/jobs/$k/ctl"
	wait_job "$A" "$k" killed
	wait_no_proc "$A" 'sleep 100[012]'
	assert_healthy "$A"
}

@test "run: kill INT ends a job, though the daemon started with SIGINT ignored" {
	# sbx_start_daemon starts it with `&`, which ignores SIGINT (bash without
	# job control), and clone and exec keep that: init undoes it for a job.
	# (Not SIGQUIT: busybox sh ignores it itself, and keeps it so for the
	# command it runs in its place.)
	ign=$(awk '$1 == "SigIgn:" { print $2 }' "/proc/$SBX_PID/status")
	(((0x$ign >> 1) & 1))
	sbx_create "$A"
	n=$(sbx_run "$A" 'sleep 1003')
	echo 'kill INT' >"$MNT/$A/jobs/$n/ctl"
	wait_job "$A" "$n" killed
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 130 ]
}

@test "run: rmdir forgets a finished job and is EBUSY while it runs" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'read x; echo bye')
	run rmdir "$MNT/$A/jobs/$n"
	assert_fails_with "Device or resource busy"
	[ -d "$MNT/$A/jobs/$n" ]
	echo >"$MNT/$A/jobs/$n/stdin"
	wait_job "$A" "$n" exited
	rmdir "$MNT/$A/jobs/$n"
	[ ! -e "$MNT/$A/jobs/$n" ]
	run ls "$MNT/$A/jobs"
	[ "$status" -eq 0 ]
	! grep -qx "$n" <<<"$output" || false
	run rmdir "$MNT/$A/jobs/$n"
	assert_fails_with "No such file or directory"
	# A later job gets a new id.
	m=$(sbx_run "$A" true)
	[ "$m" != "$n" ]
}

@test "run: a job outlives the handle and the client, and stays listed until the sandbox goes" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'echo kept')
	wait_job "$A" "$n" exited
	# Listed again on a later look, by a new process.
	run bash -c 'ls "$1"' _ "$MNT/$A/jobs"
	[ "$status" -eq 0 ]
	grep -qx "$n" <<<"$output"
	rmdir "$MNT/$A"
	[ ! -e "$STATE/sandboxes/$A" ]
}

# job_size NAME N: size of the job's stdout in the state dir.
job_size() {
	stat -c %s "$STATE/sandboxes/$1/jobs/$2/stdout"
}

@test "run: joblog=SIZE bounds a running job's stream, drops the oldest output and says so in stderr" {
	sbx_create_ctl "$A" joblog=8K
	# 48894 bytes of numbered lines, then the job waits.
	n=$(sbx_run "$A" 'seq 1 10000; read x')
	for ((i = 0; i < 100; i++)); do
		# (stderr read without blocking: the job is still running)
		[ "$(job_size "$A" "$n")" -lt 48894 ] && job_file "$A" "$n" stderr | grep -q dropped && break
		sleep 0.1
	done
	echo >"$MNT/$A/jobs/$n/stdin"
	wait_job "$A" "$n" exited
	[ "$(job_size "$A" "$n")" -lt 48894 ]
	[ "$(job_size "$A" "$n")" -le $((8192 + 65536)) ]
	out=$(sbx_cat "$MNT/$A/jobs/$n/stdout")
	# The newest output is kept, the oldest dropped.
	[ "$(tail -n 1 <<<"$out")" = 10000 ]
	! grep -qx 1 <<<"$out" || false
	run sbx_cat "$MNT/$A/jobs/$n/stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == *dropped* ]]
	# A bad value is EINVAL.
	run sbx_write "$MNT/ctl" "create $B joblog=12"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/$B" ]
}

@test "run: joblog=SIZE also bounds a job that exits right after its output" {
	sbx_create_ctl "$A" joblog=8K
	n=$(sbx_run "$A" 'seq 1 10000')
	wait_job "$A" "$n" exited
	[ "$(job_size "$A" "$n")" -lt 48894 ] || {
		echo "stdout kept $(job_size "$A" "$n") bytes with joblog=8K"
		false
	}
	run sbx_cat "$MNT/$A/jobs/$n/stderr"
	[ "$status" -eq 0 ]
	[[ "$output" == *dropped* ]]
}

@test "run: poll on a job's stdout wakes on new output" {
	sbx_create "$A"
	# Each step of the job waits for a line on its stdin: output comes only when
	# the script below asks for it, so nothing depends on timing.
	n=$(sbx_run "$A" 'read x; echo late; read y; echo oops >&2; echo done')
	run timeout 60 python3 - "$MNT/$A/jobs/$n" <<'EOF'
import os, select, sys, threading, time
d = sys.argv[1]
out = os.open(d + "/stdout", os.O_RDONLY | os.O_NONBLOCK)
err = os.open(d + "/stderr", os.O_RDONLY | os.O_NONBLOCK)
def step():
    def go():
        time.sleep(0.3)
        with open(d + "/stdin", "w") as f:
            f.write("go\n")
    t = threading.Thread(target=go)
    t.start()
    return t
print("first", repr(os.read(out, 4096)))
p = select.poll()
p.register(out, select.POLLIN)
ep = select.epoll()
ep.register(err, select.EPOLLIN)
# Nothing written yet: not readable.
print("before", p.poll(0), ep.poll(0))
t = step()
ev = p.poll(30000)
t.join()
print("woken", any(e & select.POLLIN for _, e in ev))
print("read", repr(os.read(out, 4096)))
# At the end of what was written, the job still running: not readable again.
print("after", p.poll(0))
t = step()
ev = ep.poll(30)
t.join()
print("stderr woken", any(e & select.EPOLLIN for _, e in ev))
print("stderr read", repr(os.read(err, 4096)))
# The rest, then the job's end wakes poll too: the read gives EOF.
rest = b""
for i in range(10):
    if not p.poll(30000):
        print("no wake")
        break
    b = os.read(out, 4096)
    if not b:
        print("eof")
        break
    rest += b
print("rest", repr(rest))
EOF
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "first b''" ]
	[ "${lines[1]}" = "before [] []" ]
	[ "${lines[2]}" = "woken True" ]
	[ "${lines[3]}" = "read b'late\\n'" ]
	[ "${lines[4]}" = "after []" ]
	[ "${lines[5]}" = "stderr woken True" ]
	[ "${lines[6]}" = "stderr read b'oops\\n'" ]
	[ "${lines[7]}" = eof ]
	[ "${lines[8]}" = "rest b'done\\n'" ]
	wait_job "$A" "$n" exited
	# A finished job's stream is readable at once (here at its end: EOF).
	run timeout 30 python3 - "$MNT/$A/jobs/$n/stdout" <<'EOF'
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(repr(os.read(fd, 4096)))
p = select.poll()
p.register(fd, select.POLLIN)
print(p.poll(0) == [(fd, select.POLLIN)])
print(repr(os.read(fd, 4096)))
EOF
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "b'late\\ndone\\n'" ]
	[ "${lines[1]}" = True ]
	[ "${lines[2]}" = "b''" ]
}

@test "run: in a stopped sandbox fails with EBUSY" {
	sbx_create "$A"
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	run timeout 20 bash -c 'exec 3<>"$1" && printf "true\n" >&3' _ "$MNT/$A/run"
	assert_fails_with "Device or resource busy"
}

# ---------------------------------------------------------------- deadlines and OOM

@test "timeout=1 stops the sandbox with reason timeout" {
	echo "create $A timeout=1" >"$MNT/ctl"
	wait_status "$A" stopped
	[ "$(sbx_key "$MNT/$A/events" state)" = stopped ]
	[ "$(sbx_key "$MNT/$A/events" reason)" = timeout ]
	# A bad timeout is EINVAL.
	run sbx_write "$MNT/ctl" "create $B timeout=soon"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/$B" ]
}

@test "stop by the user says reason user" {
	sbx_create "$A"
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	[ "$(sbx_key "$MNT/$A/events" reason)" = user ]
}

@test "extend SECONDS pushes the deadline" {
	echo "create $A timeout=3" >"$MNT/ctl"
	wait_status "$A" running
	if ! echo 'extend 600' >"$MNT/$A/ctl"; then
		[ "$(sbx_cat "$MNT/$A/status")" = stopped ] && skip "the sandbox reached its 3 s deadline before extend (machine too slow)"
		false
	fi
	# Past the first deadline it still runs.
	sleep 4
	[ "$(sbx_cat "$MNT/$A/status")" = running ]
	run sbx_write "$MNT/$A/ctl" 'extend'
	assert_fails_with "Invalid argument"
	run sbx_write "$MNT/$A/ctl" 'extend x'
	assert_fails_with "Invalid argument"
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	run sbx_write "$MNT/$A/ctl" 'extend 10'
	assert_fails_with "Device or resource busy"
}

@test "OOM: a job allocating past memory= ends with reason oom, counted in events and stats" {
	sbx_create_ctl "$A" memory=32M
	[ "$(sbx_key "$MNT/$A/events" oom_kills)" -eq 0 ]
	[ "$(sbx_key "$MNT/$A/stats" oom_kills)" -eq 0 ]
	# dd's buffer is one 200 MB block.
	n=$(sbx_run "$A" 'dd if=/dev/zero of=/dev/null bs=200M count=1')
	wait_job "$A" "$n" 'killed|exited'
	[ "$(sbx_cat "$MNT/$A/jobs/$n/status")" = killed ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = oom ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 137 ]
	[ "$(sbx_key "$MNT/$A/events" oom_kills)" -ge 1 ]
	[ "$(sbx_key "$MNT/$A/stats" oom_kills)" -ge 1 ]
	# The sandbox itself runs on.
	assert_healthy "$A"
	# A job that ends normally in the same sandbox is not an OOM.
	m=$(sbx_run "$A" 'exit 2')
	wait_job "$A" "$m" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$m/reason")" = exit ]
}

@test "OOM: poll on events wakes for it, an open handle sees it after lseek, a job under sh -c says oom" {
	sbx_create_ctl "$A" memory=32M
	# A reader that opened events before the OOM: poll must wake (POLLPRI)
	# and lseek(0) + read must show the new count.
	python3 - "$MNT/$A/events" "$SBX_TMP/oomready" >"$SBX_TMP/oompoll" 2>&1 <<'PY' &
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.read(fd, 4096)
p = select.poll()
p.register(fd, select.POLLPRI)
p.poll(0)
open(sys.argv[2], "w").close()
ev = p.poll(30000)
os.lseek(fd, 0, 0)
kv = dict(l.split(" ", 1) for l in os.read(fd, 4096).decode().splitlines())
print("woke" if ev else "timeout", kv["oom_kills"])
PY
	poller=$!
	for _ in $(seq 300); do
		[ -e "$SBX_TMP/oomready" ] && break
		sleep 0.1
	done
	# The command is not sh's last: sh outlives it and exits 137 itself.
	n=$(sbx_run "$A" 'dd if=/dev/zero of=/dev/null bs=200M count=1; exit $?')
	wait_job "$A" "$n" 'killed|exited'
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" -eq 137 ]
	[ "$(sbx_cat "$MNT/$A/jobs/$n/reason")" = oom ]
	wait "$poller"
	read -r woke count <"$SBX_TMP/oompoll"
	[ "$woke" = woke ]
	[ "$count" -ge 1 ]
	# metrics counts it for this sandbox.
	sbx_cat "$MNT/metrics" | grep -E "^sandboxfs_oom_kills_total\\{sandbox=\"$A\"\\} [1-9]"
	assert_healthy "$A"
}

# ---------------------------------------------------------------- root

@test "root: a symlink to the sandbox's root, readable from the host" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	[ -L "$MNT/$A/root" ]
	[ "$(readlink "$MNT/$A/root")" = "/proc/$pid/root" ]
	run ls "$MNT/$A/root/etc"
	[ "$status" -eq 0 ]
	grep -qx passwd <<<"$output"
	sbx_exec "$A" "echo inside-$SBX_TAG > /root-test-file"
	[ "$(cat "$MNT/$A/root/root-test-file")" = "inside-$SBX_TAG" ]
	# And the other way.
	echo "from-host-$SBX_TAG" >"$MNT/$A/root/tmp/from-host"
	sbx_exec "$A" 'cat /tmp/from-host'
	[ "$SBX_OUT" = "from-host-$SBX_TAG" ]
	# tar works through it.
	tar -C "$MNT/$A/root" -cf - etc >/dev/null
	# A stopped sandbox has no root to show.
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	run ls "$MNT/$A/root/etc"
	[ "$status" -ne 0 ]
}

# ---------------------------------------------------------------- wait and events

@test "wait: a read blocks until the next state change, then shows events" {
	sbx_create "$A"
	run timeout 60 python3 - "$MNT/$A" <<'EOF'
import os, sys, threading, time
d = sys.argv[1]
fd = os.open(d + "/wait", os.O_RDONLY)
got = []
t = threading.Thread(target=lambda: got.append(os.read(fd, 4096)))
t.start()
time.sleep(0.3)
# No change yet: the read is still waiting (it has nothing to return).
print("waiting-before-change", t.is_alive())
with open(d + "/ctl", "w") as c:
    c.write("stop\n")
t.join(50)
print("returned", not t.is_alive())
print(got[0].decode() if got else "")
EOF
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "returned True" ]
	grep -qx 'state stopped' <<<"$output"
	grep -qx 'reason user' <<<"$output"
	grep -q '^generation [0-9]' <<<"$output"
	# The first line is informational (a slow machine may start the thread late).
	sbx_diag "${lines[0]}"
}

@test "wait: O_NONBLOCK returns the current events at once" {
	sbx_create "$A"
	run timeout 60 python3 - "$MNT/$A/wait" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print(os.read(fd, 4096).decode())
EOF
	[ "$status" -eq 0 ]
	grep -qx 'state running' <<<"$output"
	[ "$output" = "$(sbx_cat "$MNT/$A/events")" ]
}

@test "wait: a written state is waited for, at once when it holds; the bound and a bad target are errors with a sentence" {
	sbx_create "$A"
	run timeout 120 python3 - "$MNT/$A" <<'EOF'
import errno, os, signal, sys, threading, time
d = sys.argv[1]
def target(word):
    fd = os.open(d + "/wait", os.O_RDWR)
    os.write(fd, word.encode() + b"\n")
    return fd
def state_of(text):
    return dict(l.split(" ", 1) for l in text.splitlines())["state"]
def err_of(fd):
    try:
        os.read(fd, 4096)
        return "no error"
    except OSError as e:
        return errno.errorcode[e.errno] + " " + os.read(fd, 4096).decode().strip()
# Already running: the read returns at once (no change needed).
fd = target("running")
print("running:", state_of(os.read(fd, 4096).decode()), os.read(fd, 4096) == b"")
# A bad target fails the write with EINVAL; the same handle reads the sentence.
fd2 = os.open(d + "/wait", os.O_RDWR)
try:
    os.write(fd2, b"sleeping\n")
    print("bad: written")
except OSError as e:
    print("bad:", errno.errorcode[e.errno], os.read(fd2, 4096).decode().strip())
# O_NONBLOCK with a target that does not hold: EAGAIN at once.
fd3 = os.open(d + "/wait", os.O_RDWR | os.O_NONBLOCK)
os.write(fd3, b"stopped\n")
try:
    os.read(fd3, 4096)
    print("nonblock: read")
except OSError as e:
    print("nonblock:", errno.errorcode[e.errno])
# The same handle waits again for another target: stopped, written before the stop.
got = []
t = threading.Thread(target=lambda: got.append(os.read(fd, 4096)))
os.write(fd, b"stopped 60\n")
t.start()
time.sleep(0.3)
print("stopped waiting:", t.is_alive())
with open(d + "/ctl", "w") as c:
    c.write("stop\n")
t.join(60)
print("stopped:", state_of(got[0].decode()) if got else "nothing")
# The bound: running never comes to a stopped sandbox.
fd = target("running 0.3")
print("bound:", err_of(fd))
EOF
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "running: running True" ]
	[[ "${lines[1]}" == "bad: EINVAL 'sleeping' is not a state to wait for"* ]]
	[ "${lines[2]}" = "nonblock: EAGAIN" ]
	[ "${lines[4]}" = "stopped: stopped" ]
	[ "${lines[5]}" = "bound: ETIMEDOUT the sandbox is not running after 0.300 s" ]
	# A failure while waiting is EIO with the sandbox's sentence: hosts.bats
	# (a qemu create that fails).
	# The waiting line is informational (a slow machine may start the thread late).
	sbx_diag "${lines[3]}"
}

# poll_change FILE TRIGGER...: open FILE, read it, poll it for POLLPRI|POLLIN,
# run TRIGGER (a command line) from a thread, and print what poll returned and
# the content after lseek(0) + read.
poll_change() {
	timeout 60 python3 - "$@" <<'EOF'
import os, select, subprocess, sys, threading, time
path, trigger = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
before = os.read(fd, 4096).decode()
p = select.poll()
p.register(fd, select.POLLPRI | select.POLLIN)
# Before any change: no event.
print("before", p.poll(0))
def fire():
    time.sleep(0.3)
    subprocess.run(["bash", "-c", trigger], check=True)
t = threading.Thread(target=fire)
t.start()
ev = p.poll(30000)
t.join()
print("events", " ".join(str(e) for _, e in ev))
print("pri", any(e & select.POLLPRI for _, e in ev))
os.lseek(fd, 0, os.SEEK_SET)
after = os.read(fd, 4096).decode()
print("changed", after != before)
print(after, end="")
EOF
}

@test "status, stats: a held handle re-read from offset 0 shows the content of now" {
	sbx_create "$A"
	# Read once, stop the sandbox, re-read the same handles with pread at 0 (one
	# request each): the new state, not what was made at open. A read further
	# on keeps the content the read at 0 made.
	run timeout 60 python3 - "$MNT/$A" <<'EOF'
import os, sys, time
d = sys.argv[1]
st = os.open(d + "/status", os.O_RDONLY)
ss = os.open(d + "/stats", os.O_RDONLY)
print(os.pread(st, 100, 0).decode().strip())
first = os.pread(ss, 65536, 0).decode()
print([l for l in first.splitlines() if l.startswith("state ")][0])
with open(d + "/ctl", "w") as f:
    f.write("stop\n")
deadline = time.monotonic() + 30
while os.pread(st, 100, 0).decode().strip() != "stopped" and time.monotonic() < deadline:
    time.sleep(0.05)
print(os.pread(st, 100, 0).decode().strip())
print(repr(os.pread(st, 100, 8)))
now = os.pread(ss, 65536, 0).decode()
print([l for l in now.splitlines() if l.startswith("state ")][0])
print(os.pread(ss, 65536, 6).decode() == now[6:])
EOF
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = running ]
	[ "${lines[1]}" = "state running" ]
	[ "${lines[2]}" = stopped ]
	[ "${lines[3]}" = "b''" ]
	[ "${lines[4]}" = "state stopped" ]
	[ "${lines[5]}" = True ]
}

@test "events: poll wakes with POLLPRI on a state change; lseek(0)+read shows it" {
	sbx_create "$A"
	run poll_change "$MNT/$A/events" "echo stop > '$MNT/$A/ctl'"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "before []" ]
	[ "${lines[2]}" = "pri True" ]
	[ "${lines[3]}" = "changed True" ]
	grep -qx 'state stopped' <<<"$output"
	# And again on start.
	run poll_change "$MNT/$A/events" "echo start > '$MNT/$A/ctl'"
	[ "$status" -eq 0 ]
	[ "${lines[2]}" = "pri True" ]
	grep -Eqx 'state (running|creating)' <<<"$output"
}

@test "events: select wakes on a state change too" {
	sbx_create "$A"
	run timeout 60 python3 - "$MNT/$A" <<'EOF'
import os, select, sys, threading, time
d = sys.argv[1]
fd = os.open(d + "/events", os.O_RDONLY)
os.read(fd, 4096)
def fire():
    time.sleep(0.3)
    with open(d + "/ctl", "w") as c:
        c.write("pause\n")
threading.Thread(target=fire).start()
r, w, x = select.select([], [], [fd], 30)
print("exceptional", fd in x)
os.lseek(fd, 0, 0)
print(os.read(fd, 4096).decode(), end="")
EOF
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "exceptional True" ]
	grep -qx 'state paused' <<<"$output"
	echo resume >"$MNT/$A/ctl"
	wait_status "$A" running
}

@test "events: top-level poll wakes when a sandbox appears and when it goes" {
	run poll_change "$MNT/events" "mkdir '$MNT/$A'"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "before []" ]
	[ "${lines[2]}" = "pri True" ]
	[ "${lines[3]}" = "changed True" ]
	grep -q '^generation [0-9]' <<<"$output"
	wait_status "$A" running
	run poll_change "$MNT/events" "rmdir '$MNT/$A'"
	[ "$status" -eq 0 ]
	[ "${lines[2]}" = "pri True" ]
	[ "${lines[3]}" = "changed True" ]
}

@test "events: a stop by timeout wakes poll too" {
	echo "create $A timeout=2" >"$MNT/ctl"
	wait_status "$A" running
	run timeout 60 python3 - "$MNT/$A/events" <<'EOF'
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
p = select.poll()
p.register(fd, select.POLLPRI | select.POLLIN)
while True:
    os.lseek(fd, 0, 0)
    c = os.read(fd, 4096).decode()
    if "state stopped" in c:
        break
    if not p.poll(30000):
        print("no wake")
        break
print(c, end="")
EOF
	[ "$status" -eq 0 ]
	grep -qx 'state stopped' <<<"$output"
	grep -qx 'reason timeout' <<<"$output"
}

@test "events: inotify on the mount sees what is done through it (mkdir, a write to ctl)" {
	command -v inotifywait >/dev/null || skip "inotifywait (inotify-tools) is not installed"
	inotifywait -m -e create,modify,attrib,delete --format '%w|%e|%f' "$MNT" \
		>"$SBX_TMP/inotify" 2>&1 3>&- &
	ip=$!
	run timeout 30 bash -c 'until grep -q "Watches established" "$1"; do sleep 0.1; done' _ "$SBX_TMP/inotify"
	[ "$status" -eq 0 ]
	# Through the mount: a mkdir, and a write to ctl (its create is the
	# daemon's own, which inotify does not see: README).
	mkdir "$MNT/$B"
	echo "create ${B}2" >"$MNT/ctl"
	wait_status "$B" running
	wait_status "${B}2" running
	run timeout 30 bash -c 'until grep -qx "$2" "$1" && grep -qx "$3" "$1"; do sleep 0.1; done' _ \
		"$SBX_TMP/inotify" "$MNT/|CREATE,ISDIR|$B" "$MNT/|MODIFY|ctl"
	kill "$ip"
	wait "$ip" || true
	sed 's/^/# /' "$SBX_TMP/inotify"
	[ "$status" -eq 0 ]
}

# ---------------------------------------------------------------- metrics

@test "metrics: Prometheus text with counts by state and backend, histograms, registry, errors" {
	sbx_create "$A"
	sbx_exec "$A" true
	echo stop >"$MNT/$A/ctl"
	run sbx_write "$MNT/ctl" "create bad/name"
	assert_fails
	run sbx_cat "$MNT/metrics"
	[ "$status" -eq 0 ]
	m=$output
	grep -q '^# TYPE sandboxfs_sandboxes gauge$' <<<"$m"
	grep -Eq '^sandboxfs_sandboxes\{state="stopped",backend="ns"\} 1$' <<<"$m"
	grep -Eq '^sandboxfs_sandboxes\{state="running",backend="ns"\} 0$' <<<"$m"
	grep -Eq '^sandboxfs_registry_entries 1$' <<<"$m"
	grep -q '^# TYPE sandboxfs_oom_kills_total counter$' <<<"$m"
	grep -Eq "^sandboxfs_oom_kills_total\\{sandbox=\"$A\"\\} 0$" <<<"$m"
	for h in create stop exec fork; do
		grep -q "^# TYPE sandboxfs_${h}_seconds histogram$" <<<"$m"
		grep -q "^sandboxfs_${h}_seconds_bucket{le=\"0.0001\"} " <<<"$m"
		grep -q "^sandboxfs_${h}_seconds_bucket{le=\"10\"} " <<<"$m"
		grep -q "^sandboxfs_${h}_seconds_bucket{le=\"+Inf\"} " <<<"$m"
		grep -q "^sandboxfs_${h}_seconds_sum " <<<"$m"
		grep -q "^sandboxfs_${h}_seconds_count " <<<"$m"
	done
	grep -Eq '^sandboxfs_create_seconds_count [1-9]' <<<"$m"
	grep -Eq '^sandboxfs_exec_seconds_count [1-9]' <<<"$m"
	grep -Eq '^sandboxfs_stop_seconds_count [1-9]' <<<"$m"
	# Buckets are cumulative: never decreasing, and +Inf equals the count.
	for h in create stop exec fork; do
		awk -v h="sandboxfs_${h}_seconds" '
			index($0, h "_bucket{") == 1 { if ($2 < prev) bad = 1; prev = $2; inf = $2 }
			index($0, h "_count ") == 1 { cnt = $2 }
			END { exit bad || inf != cnt }' <<<"$m"
	done
	grep -Eq '^sandboxfs_errors_total\{errno="[A-Z]+"\} [1-9]' <<<"$m"
}

@test "metrics: promtool check metrics passes" {
	if ! command -v promtool >/dev/null; then
		# Debian's prometheus package has promtool; install it only if apt
		# works here (bounded), else skip.
		if [[ -n "${SBX_NO_APT:-}" ]] || ! command -v apt-get >/dev/null ||
			! DEBIAN_FRONTEND=noninteractive timeout 180 apt-get install -y -q \
				--no-install-recommends prometheus >"$SBX_TMP/apt.log" 2>&1 ||
			! command -v promtool >/dev/null; then
			skip "promtool is not installed and apt-get install prometheus did not work here"
		fi
	fi
	sbx_create "$A"
	sbx_exec "$A" true
	echo "fork $B" >"$MNT/$A/ctl"
	wait_status "$B" running
	run sbx_write "$MNT/ctl" "create $A"
	assert_fails
	sbx_cat "$MNT/metrics" >"$SBX_TMP/metrics"
	run promtool check metrics <"$SBX_TMP/metrics"
	echo "$output"
	[ "$status" -eq 0 ]
}
