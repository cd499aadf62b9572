#!/usr/bin/env bats
# Blocked readers never freeze the mount (issue 15, item 2). A read of `wait`,
# of `exec` or of a job's stdout that has nothing to return is parked by the
# daemon and answered later from another thread, so hundreds of them leave
# `ls`, `stat`, `cat NAME/status` and `mkdir` answering; they all return once
# released; an interrupted or killed reader is let go at once; removing the
# sandbox or stopping the daemon answers them; and an exec ends when its
# command exits even though a background child keeps the output pipe open.
# Every test gets its own daemon. No assertion is on time: every timeout
# below is a bound against a hang, never a measured result.

load helpers

setup() {
	setup_sbx
	A="hf${SBX_TAG}a"
	B="hf${SBX_TAG}b"
	J="hf${SBX_TAG}j"
	X="hf${SBX_TAG}x"
	# readers.py KIND PATH N OUT: N threads of one process read PATH at once
	# and, once every one returned, write one JSON string a line to OUT (what
	# it read, or "error: ..."). KIND wait: one read. job: to EOF. exec: write
	# the command in $READER_CMD, read to EOF, then the status line.
	cat >"$SBX_TMP/readers.py" <<'EOF'
import json, os, signal, sys, threading
kind, path, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cmd = os.environ.get("READER_CMD", "").encode() + b"\n"
signal.signal(signal.SIGINT, signal.default_int_handler)  # bash ignores it in background jobs
threading.stack_size(256 << 10)
results = [None] * n

def to_eof(fd):
    data = b""
    while True:
        b = os.read(fd, 65536)
        if not b:
            return data
        data += b

def reader(i):
    try:
        if kind == "exec":
            fd = os.open(path, os.O_RDWR)
            os.write(fd, cmd)
            data = to_eof(fd) + os.read(fd, 4096)
        else:
            fd = os.open(path, os.O_RDONLY)
            data = os.read(fd, 4096) if kind == "wait" else to_eof(fd)
        os.close(fd)
        results[i] = data.decode(errors="replace")
    except OSError as e:
        results[i] = "error: " + e.strerror

try:
    if n == 1:  # in the main thread, where a signal interrupts the read itself
        reader(0)
    else:
        threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
except KeyboardInterrupt:
    results = ["interrupted"]
with open(out + ".tmp", "w") as f:
    for r in results:
        f.write(json.dumps(r) + "\n")
os.rename(out + ".tmp", out)
EOF
}

teardown() {
	teardown_sbx
}

# start_readers KIND PATH N NAME: starts readers.py in the background (its
# results in $SBX_TMP/NAME.out); sets READER_PID. The interpreter itself, not
# a wrapper script (pyenv's shims), so that READER_PID is the readers' process.
start_readers() {
	[[ -n "${READER_PY:-}" ]] || READER_PY=$(python3 -c 'import sys; print(sys.executable)')
	"$READER_PY" "$SBX_TMP/readers.py" "$1" "$2" "$3" "$SBX_TMP/$4.out" \
		</dev/null >"$SBX_TMP/$4.log" 2>&1 3>&- &
	READER_PID=$!
}

# blocked_in_fuse PID: how many threads of PID wait for an answer of a FUSE daemon.
blocked_in_fuse() {
	local n=0 t w
	for t in /proc/"$1"/task/*; do
		w=""
		# read, a builtin (hundreds of threads); wchan has no newline
		read -r w <"$t/wchan" 2>/dev/null || true
		[[ "$w" == request_wait_answer || "$w" == *fuse* ]] && n=$((n + 1))
	done
	echo "$n"
}

# wait_blocked PID N: waits (bounded) until N threads of PID are blocked in a
# FUSE request, so that what follows meets readers the daemon holds.
wait_blocked() {
	local i
	for ((i = 0; i < 1200; i++)); do
		(($(blocked_in_fuse "$1") >= $2)) && return 0
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	echo "wait_blocked: $(blocked_in_fuse "$1") of $2 threads of pid $1 are blocked in FUSE" >&2
	tail -n 3 "$SBX_TMP"/*.log "$SBX_TMP"/*.out >&2
	return 1
}

# wait_exit PID [SECONDS]: waits (bounded) until PID is gone (or a zombie).
wait_exit() {
	local i
	for ((i = 0; i < ${2:-60} * 10; i++)); do
		[[ "$(awk '/^State:/ { print $2 }' /proc/"$1"/status 2>/dev/null)" =~ ^(Z|)$ ]] && return 0
		sleep 0.1
	done
	echo "wait_exit: pid $1 still there after ${2:-60}s (wchan $(cat /proc/"$1"/wchan 2>/dev/null))" >&2
	return 1
}

# count_lines FILE TEXT: how many lines of FILE are exactly TEXT.
count_lines() {
	grep -cxF -- "$2" "$1" || true
}

# count_endings FILE TEXT: how many lines of FILE end with TEXT.
count_endings() {
	local line n=0
	while IFS= read -r line; do
		[[ "$line" == *"$2" ]] && n=$((n + 1))
	done <"$1"
	echo "$n"
}

# daemon_fds: how many fds the daemon has open.
daemon_fds() {
	find /proc/"$SBX_PID"/fd -mindepth 1 -maxdepth 1 | wc -l
}

# mount_answers NEW: the mount answers while readers are blocked: the
# top-level listing, a status, a stat, stats, and the mkdir of sandbox NEW.
mount_answers() {
	run timeout 10 ls "$MNT"
	[ "$status" -eq 0 ]
	grep -qx "$A" <<<"$output"
	run timeout 10 cat "$MNT/$A/status"
	[ "$status" -eq 0 ]
	[ "$output" = running ]
	run timeout 10 stat -c %F "$MNT/$A/wait"
	[ "$status" -eq 0 ]
	[[ "$output" == regular* ]]
	run timeout 10 cat "$MNT/stats"
	[ "$status" -eq 0 ]
	run timeout 10 mkdir "$MNT/$1"
	[ "$status" -eq 0 ]
}

# two_threads: a daemon of two FUSE threads, $A running in it. The tests
# that use it block four writers: one that waited in its FUSE thread would
# leave none for anything else.
two_threads() {
	sbx_stop_daemon
	sbx_start_daemon --fuse-threads 2
	sbx_create "$A"
	jobs=()
}

# writers_blocked FEED PATH...: what function FEED writes (zeros, stop60),
# into each PATH, by a background writer of its own (pids in $pids, stderr
# in $SBX_TMP/wN.err, N from 1), each then waited for (bounded) until it is
# blocked in a request to the daemon.
zeros() { exec head -c 300000 /dev/zero; }
stop60() { echo 'stop 60'; }
writers_blocked() {
	local feed=$1 i=0 p path
	shift
	pids=()
	for path in "$@"; do
		i=$((i + 1))
		"$feed" >"$path" 2>"$SBX_TMP/w$i.err" 3>&- &
		pids+=($!)
		sbx_bg_note "$!"
	done
	for p in "${pids[@]}"; do
		wait_blocked "$p" 1
	done
}

@test "300 blocked readers each of wait, a job's stdout and exec leave the mount answering; all return once released" {
	sbx_create "$A"
	sbx_create "$J"
	sbx_create_ctl "$X" pids=4096 memory=1G
	n=$(sbx_run "$J" 'read x; echo "got $x"')
	fds_before=$(daemon_fds)

	start_readers job "$MNT/$J/jobs/$n/stdout" 300 job
	job_pid=$READER_PID
	READER_CMD='sleep 1000; echo released' start_readers exec "$MNT/$X/exec" 300 exec
	exec_pid=$READER_PID
	wait_blocked "$job_pid" 300
	wait_blocked "$exec_pid" 300
	# wait's reads end by themselves after 30 s: they come last, and are
	# released first.
	start_readers wait "$MNT/$A/wait" 300 wait
	wait_pid=$READER_PID
	wait_blocked "$wait_pid" 300
	sbx_diag "daemon threads with 900 readers blocked: $(ls /proc/"$SBX_PID"/task | wc -l)"

	mount_answers "$B"
	echo pause >"$MNT/$A/ctl"
	# The readers of the job and of exec still wait: nothing released them.
	[ "$(blocked_in_fuse "$job_pid")" -ge 300 ]
	[ "$(blocked_in_fuse "$exec_pid")" -ge 300 ]
	wait_status "$B" running

	# Released: a state change (above), the job's end, the commands' end.
	echo go >"$MNT/$J/jobs/$n/stdin"
	# A command may not have started its sleep yet when the first kill
	# comes (a slow machine): kill again until every exec reader is done.
	for ((i = 0; i < 60; i++)); do
		sbx_exec "$X" 'kill $(pidof sleep) 2>/dev/null; true'
		wait_exit "$exec_pid" 2 2>/dev/null && break
	done
	wait_exit "$wait_pid"
	wait_exit "$job_pid"
	wait_exit "$exec_pid" 120
	[ "$(wc -l <"$SBX_TMP/wait.out")" -eq 300 ]
	[ "$(grep -c 'state paused' "$SBX_TMP/wait.out")" -eq 300 ]
	[ "$(count_lines "$SBX_TMP/job.out" '"got go\n"')" -eq 300 ]
	# (sh may say "Terminated" first.)
	[ "$(count_endings "$SBX_TMP/exec.out" 'released\nexit_code 0\n"')" -eq 300 ]

	# Nothing of the parked reads is left behind (their fds went with them).
	for ((i = 0; i < 100; i++)); do
		(($(daemon_fds) <= fds_before + 16)) && break
		sleep 0.1
	done
	sbx_diag "daemon fds: $fds_before before, $(daemon_fds) after"
	[ "$(daemon_fds)" -le $((fds_before + 16)) ]
	echo resume >"$MNT/$A/ctl"
	wait_status "$A" running
	assert_healthy "$A"
	assert_healthy "$X"
}

@test "writers to the stdin of jobs that read nothing hold no FUSE thread: the mount answers, a kill or the job's end lets them go, a reading job gets every byte" {
	two_threads
	for i in 1 2 3 4; do
		jobs+=("$(sbx_run "$A" 'sleep 1000')")
	done
	n=$(sbx_run "$A" 'wc -c')
	fds_before=$(daemon_fds)
	writers_blocked zeros "$MNT/$A/jobs/${jobs[0]}/stdin" "$MNT/$A/jobs/${jobs[1]}/stdin" \
		"$MNT/$A/jobs/${jobs[2]}/stdin" "$MNT/$A/jobs/${jobs[3]}/stdin"
	mount_answers "$B"
	# A killed writer is let go (its bytes so far stay in the pipe).
	kill -KILL "${pids[0]}"
	wait_exit "${pids[0]}" 30
	# The job's end lets its writer go, with EPIPE and a sentence.
	echo kill >"$MNT/$A/jobs/${jobs[1]}/ctl"
	wait_exit "${pids[1]}" 30
	st=0
	wait "${pids[1]}" || st=$?
	[ "$st" -ne 0 ]
	grep -q "Broken pipe" "$SBX_TMP/w2.err"
	grep -q "reads its stdin no more" "$MNT/$A/error"
	# The others still wait; the mount still answers.
	[ "$(blocked_in_fuse "${pids[2]}")" -eq 1 ]
	[ "$(blocked_in_fuse "${pids[3]}")" -eq 1 ]
	run timeout 10 cat "$MNT/$A/status"
	[ "$output" = running ]
	for i in 2 3; do
		echo kill >"$MNT/$A/jobs/${jobs[$i]}/ctl"
		wait_exit "${pids[$i]}" 30
	done
	# A job that reads gets every byte, through writes that each take what
	# the pipe has room for and wait for the rest.
	head -c 1000000 /dev/urandom >"$SBX_TMP/in"
	timeout 60 cat "$SBX_TMP/in" >"$MNT/$A/jobs/$n/stdin"
	echo eof >"$MNT/$A/jobs/$n/ctl"
	wait_job "$A" "$n" exited
	[ "$(job_file "$A" "$n" stdout | tr -d ' ')" = 1000000 ]
	# Nothing of the parked writes is left behind.
	for ((i = 0; i < 100; i++)); do
		(($(daemon_fds) <= fds_before)) && break
		sleep 0.1
	done
	sbx_diag "daemon fds: $fds_before before the writers, $(daemon_fds) after"
	[ "$(daemon_fds)" -le "$fds_before" ]
	assert_healthy "$A"
}

@test "stops that wait out the grace of processes ignoring SIGTERM hold no FUSE thread: the mount answers, a job's kill ends them, each writer gets its answer" {
	two_threads
	for i in 1 2 3 4; do
		sbx_create "hf${SBX_TAG}s$i"
		jobs+=("$(sbx_run "hf${SBX_TAG}s$i" 'trap "echo term" TERM; echo up; while :; do sleep 1; done')")
		wait_job_out "hf${SBX_TAG}s$i" "${jobs[i - 1]}" up
	done
	writers_blocked stop60 "$MNT/hf${SBX_TAG}s1/ctl" "$MNT/hf${SBX_TAG}s2/ctl" \
		"$MNT/hf${SBX_TAG}s3/ctl" "$MNT/hf${SBX_TAG}s4/ctl"
	mount_answers "$B"
	# Each stop waits on its job, which outlives SIGTERM (a stopping
	# sandbox shows running); a job's kill, a command of another file,
	# ends it, and its writer gets success.
	for i in 1 2 3 4; do
		wait_job_out "hf${SBX_TAG}s$i" "${jobs[i - 1]}" term
		[ "$(blocked_in_fuse "${pids[i - 1]}")" -eq 1 ]
		run timeout 10 sh -c "echo 'kill KILL' >'$MNT/hf${SBX_TAG}s$i/jobs/${jobs[i - 1]}/ctl'"
		[ "$status" -eq 0 ]
	done
	for i in 1 2 3 4; do
		wait_exit "${pids[i - 1]}" 30
		wait "${pids[i - 1]}"
		[ "$(sbx_cat "$MNT/hf${SBX_TAG}s$i/status")" = stopped ]
	done
	assert_healthy "$A"
}

@test "an interrupted reader of wait gets EINTR at once, and a killed reader of wait, exec or a job is let go" {
	sbx_create "$A"
	n=$(sbx_run "$A" 'sleep 1000')

	# ^C: the read fails with EINTR and Python raises KeyboardInterrupt.
	start_readers wait "$MNT/$A/wait" 1 intr
	pid=$READER_PID
	wait_blocked "$pid" 1
	kill -INT "$pid"
	wait_exit "$pid" 30
	[ "$(cat "$SBX_TMP/intr.out")" = '"interrupted"' ]

	# SIGKILL: the kernel waits for the daemon's answer before the reader can die.
	start_readers wait "$MNT/$A/wait" 4 kw
	kw=$READER_PID
	start_readers job "$MNT/$A/jobs/$n/stdout" 4 kj
	kj=$READER_PID
	READER_CMD='sleep 1000' start_readers exec "$MNT/$A/exec" 4 kx
	kx=$READER_PID
	wait_blocked "$kw" 4
	wait_blocked "$kj" 4
	wait_blocked "$kx" 4
	kill -9 "$kw" "$kj" "$kx"
	wait_exit "$kw" 30
	wait_exit "$kj" 30
	wait_exit "$kx" 30

	# The sandbox and its job are untouched; the killed exec handles' commands went.
	[ "$(sbx_cat "$MNT/$A/jobs/$n/status")" = running ]
	for ((i = 0; i < 100; i++)); do
		sbx_exec "$A" 'set -- $(pidof sleep); echo $#' >/dev/null
		[[ "$SBX_OUT" == 1 ]] && break
		sleep 0.1
	done
	[ "$SBX_OUT" -eq 1 ]
	mount_answers "$B"
	assert_healthy "$A"
}

@test "exec: sh -c 'sleep 1000 & echo hi' returns hi and the exit code although the child holds the pipe" {
	sbx_create "$A"
	sbx_exec "$A" "sh -c 'sleep 1000 & echo hi'"
	[ "$SBX_OUT" = hi ]
	[ "$SBX_RC" -eq 0 ]
	sbx_exec "$A" "sh -c 'sleep 1000 & exit 5'"
	[ -z "$SBX_OUT" ]
	[ "$SBX_RC" -eq 5 ]
	# More than a pipe holds, written before the exit: all of it arrives.
	sbx_exec "$A" 'sleep 1000 & i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i + 1)); done' >/dev/null
	[ "$SBX_RC" -eq 0 ]
	[ "$(wc -l <<<"$SBX_OUT")" -eq 20000 ]
	[ "$(head -n 1 <<<"$SBX_OUT")" = 0 ]
	[ "$(tail -n 1 <<<"$SBX_OUT")" = 19999 ]
	# The background children live on in the sandbox.
	sbx_exec "$A" 'set -- $(pidof sleep); echo $#'
	[ "$SBX_OUT" -eq 3 ]
	assert_healthy "$A"
}

@test "removing a sandbox answers the readers blocked on its wait; the daemon stays fine" {
	sbx_create "$A"
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	start_readers wait "$MNT/$A/wait" 20 gone
	pid=$READER_PID
	wait_blocked "$pid" 20
	rmdir "$MNT/$A"
	wait_exit "$pid" 30
	[ "$(count_lines "$SBX_TMP/gone.out" '"error: No such device"')" -eq 20 ]
	sbx_create "$B"
	assert_healthy "$B"
}

@test "a daemon stopped with SIGTERM answers its blocked readers first, and a new one serves the state" {
	sbx_create "$A"
	start_readers wait "$MNT/$A/wait" 20 term
	pid=$READER_PID
	wait_blocked "$pid" 20
	kill -TERM "$SBX_PID"
	wait_exit "$pid" 60
	wait_exit "$SBX_PID" 60
	[ "$(wc -l <"$SBX_TMP/term.out")" -eq 20 ]
	# Each got the error of a daemon going away (answered before the engine stops).
	[ "$(count_lines "$SBX_TMP/term.out" '"error: Transport endpoint is not connected"')" -eq 20 ]
	sbx_stop_daemon
	sbx_start_daemon
	sbx_create "$B"
	assert_healthy "$B"
}
