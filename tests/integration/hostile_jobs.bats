#!/usr/bin/env bats
# A hostile sandbox against what the daemon keeps for it (issue 15, items 4,
# 5, 7, 8 and 9): its jobs' output and its console are stored and counted by
# the host (a job cannot truncate them, reads never repeat or invent a byte,
# each is capped), no fd the daemon inherited reaches a sandbox, job ids
# survive a restart whatever the gaps and are never reused, `extend` does not
# give a deadline to a sandbox without one, and control characters in names
# and sandbox text are escaped in `error` files and the log. ns backend.
#
# Every test starts its own daemon (one needs an extra inherited fd) on its
# own state dir and mount point. No assertion is on time: sleeps and loops are
# bounds, never measured results.

load helpers

setup() {
	sbx_make_tmp
	A="hj${SBX_TAG}a"
	B="hj${SBX_TAG}b"
}

teardown() {
	teardown_sbx
}

# The daemon dies (kill -9, so --stop-on-exit does not stop anything) and a
# new one starts on the same state dir, re-adopting the sandboxes.
restart_daemon() {
	local old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	sbx_start_daemon
}

# stored NAME N STREAM: bytes of a job's stream in the state dir.
stored() {
	stat -c %s "$STATE/sandboxes/$1/jobs/$2/$3"
}

# ---------------------------------------------------------------- item 5: jobs

@test "a job cannot truncate its output to 1 TiB: nothing counted as dropped, nothing invented" {
	sbx_start_daemon
	sbx_create "$A"
	n=$(sbx_run "$A" 'echo before; truncate -s 1099511627776 /proc/self/fd/1; echo "truncate $?" >&2; exec 3<>/proc/self/fd/1; echo reopened >&3; echo after')
	wait_job "$A" "$n" exited
	run sbx_cat "$MNT/$A/jobs/$n/stdout"
	[ "$status" -eq 0 ]
	[ "$output" = $'before\nreopened\nafter' ]
	run sbx_cat "$MNT/$A/jobs/$n/stderr"
	[[ "$output" == *"truncate 1"* ]]
	[ "$(stored "$A" "$n" stdout)" -eq 22 ]
	run grep -c '"dropped_stdout": 0,' "$STATE/sandboxes/$A/jobs/$n/job.json"
	[ "$output" = 1 ]
	# An offset read far past the end finds nothing (no zeros served).
	run python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print(len(os.pread(fd, 65536, 1 << 40)), len(os.pread(fd, 65536, 0)))' "$MNT/$A/jobs/$n/stdout"
	[ "$status" -eq 0 ]
	[ "$output" = "0 22" ]
	assert_healthy "$A"
}

@test "joblog=1M: seq 1 600000 reads back with no line twice, consecutive after the first, within the bound" {
	sbx_start_daemon
	sbx_create_ctl "$A" joblog=1M
	n=$(sbx_run "$A" 'seq 1 600000')
	wait_job "$A" "$n" exited
	sbx_cat "$MNT/$A/jobs/$n/stdout" >"$SBX_TMP/out"
	# Stored: at most joblog= plus what the pump moves at once (256 KiB).
	[ "$(stored "$A" "$n" stdout)" -le $((1048576 + 262144)) ]
	[ "$(wc -l <"$SBX_TMP/out")" -gt 1000 ]
	run bash -c 'sort "$1" | uniq -d | head -n 3' _ "$SBX_TMP/out"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# The first line may start inside a dropped block; the rest is every
	# number from the second line's up to 600000, once, in order.
	tail -n +2 "$SBX_TMP/out" >"$SBX_TMP/rest"
	first=$(head -n 1 "$SBX_TMP/rest")
	[ "$first" -gt 1 ]
	seq "$first" 600000 >"$SBX_TMP/want"
	cmp "$SBX_TMP/rest" "$SBX_TMP/want"
	# Offsets still count every byte the job wrote: the last line is at the
	# offset of seq's full output (4088895 bytes), and a read there ends.
	run python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(repr(os.pread(fd, 64, 4088895 - 7)), repr(os.pread(fd, 64, 4088895)))' "$MNT/$A/jobs/$n/stdout"
	[ "$status" -eq 0 ]
	[ "$output" = "b'600000\\n' b''" ]
	run sbx_cat "$MNT/$A/jobs/$n/stderr"
	[[ "$output" == *"bytes of older stdout dropped (joblog=1048576)"* ]]
}

@test "a reader that falls behind a drop skips to the first byte kept and never reads one twice" {
	sbx_start_daemon
	sbx_create_ctl "$A" joblog=64K
	# 800000 bytes in 80 lines of 9999 x's and a number, then the job waits.
	n=$(sbx_run "$A" 'i=0; while [ $i -lt 80 ]; do printf "%09999d\n" $i; i=$((i+1)); done; read x')
	for ((i = 0; i < 300; i++)); do
		[[ "$(job_file "$A" "$n" stdout | tail -n 1 | tail -c 10)" == 000000079 ]] && break
		sleep 0.1
	done
	# One open file reads from 0 in small reads: it is moved to the first
	# byte kept once, then goes on from there to the end, byte for byte.
	run timeout 60 python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
out = b""
while True:
    b = os.read(fd, 4096)
    if not b:
        break
    out += b
lines = out.split(b"\n")[1:-1]
nums = [int(l[-9:]) for l in lines]
print(len(out) <= 65536 + 262144, nums == list(range(nums[0], 80)), nums[-1])' "$MNT/$A/jobs/$n/stdout"
	echo >"$MNT/$A/jobs/$n/stdin"
	[ "$status" -eq 0 ]
	[ "$output" = "True True 79" ]
	wait_job "$A" "$n" exited
}

@test "a job forgotten (rmdir) while its background process still writes does not hold that process up" {
	sbx_start_daemon
	sbx_create "$A"
	# The background writer counts its 100 kB writes in /tmp/n; 40 of them are
	# more than the job's pipe holds.
	n=$(sbx_run "$A" '(i=0; while [ $i -lt 40 ]; do head -c 100000 /dev/zero; i=$((i+1)); echo $i >/tmp/n; done) & echo started')
	wait_job "$A" "$n" exited
	rmdir "$MNT/$A/jobs/$n"
	for ((i = 0; i < 300; i++)); do
		sbx_exec "$A" 'cat /tmp/n'
		[[ "$SBX_OUT" == 40 ]] && break
		sleep 0.1
	done
	[ "$SBX_OUT" = 40 ]
	[ ! -e "$STATE/sandboxes/$A/jobs/$n" ]
	assert_healthy "$A"
}

# ---------------------------------------------------------------- item 5: console

@test "the console: a flood through init's fds is capped, truncate fails, log shows the end" {
	sbx_start_daemon
	sbx_create "$A"
	sbx_exec "$A" 'truncate -s 1099511627776 /proc/1/fd/1; echo "truncate $?"; seq 1 600000 >/proc/1/fd/2; echo "flood $?"'
	[[ "$SBX_OUT" == *"truncate 1"* ]]
	[[ "$SBX_OUT" == *"flood 0"* ]]
	# The daemon drains the pipe on its own: wait (bounded) for the last line.
	for ((i = 0; i < 300; i++)); do
		[[ "$(sbx_cat "$MNT/$A/log" | tail -n 1)" == 600000 ]] && break
		sleep 0.1
	done
	run sbx_cat "$MNT/$A/log"
	[ "$status" -eq 0 ]
	[ "$(tail -n 1 <<<"$output")" = 600000 ]
	[ "${#output}" -le 65536 ]
	size=$(stat -c %s "$STATE/sandboxes/$A/console.log")
	[ "$size" -le $((1048576 + 262144)) ]
	# What the log shows is what was written: consecutive numbers.
	tail -n +2 <<<"$output" >"$SBX_TMP/log"
	seq "$(head -n 1 "$SBX_TMP/log")" 600000 | cmp - "$SBX_TMP/log"
	assert_healthy "$A"
}

# ---------------------------------------------------------------- item 4: fds

@test "an fd the daemon inherited reaches no sandbox: not init, not a job" {
	echo host-secret >"$SBX_TMP/hostfile"
	exec 7<>"$SBX_TMP/hostfile"
	sbx_start_daemon
	exec 7>&-
	# The daemon does hold it: the test means something.
	[ "$(readlink "/proc/$SBX_PID/fd/7")" = "$SBX_TMP/hostfile" ]
	sbx_create "$A"
	sbx_exec "$A" 'cat /proc/1/fd/7; echo "read $?"; echo x >/proc/1/fd/7; echo "write $?"'
	[[ "$SBX_OUT" != *host-secret* ]]
	[[ "$SBX_OUT" == *"read 1"* ]]
	[[ "$SBX_OUT" != *"write 0"* ]]
	[ "$(cat "$SBX_TMP/hostfile")" = host-secret ]
	# Nothing in init's fd table is a host file.
	pid=$(sbx_pid_of "$A")
	run bash -c 'for f in /proc/$1/fd/*; do readlink "$f"; done' _ "$pid"
	[ "$status" -eq 0 ]
	[[ "$output" != *"$SBX_TMP"* ]]
	[[ "$output" != *"$STATE"* ]]
	# A job has its stdio and nothing else (ls's own dir fd aside).
	n=$(sbx_run "$A" 'ls /proc/self/fd')
	wait_job "$A" "$n" exited
	run sbx_cat "$MNT/$A/jobs/$n/stdout"
	[ "$(tr '\n' ' ' <<<"$output")" = "0 1 2 3 " ]
}

# ---------------------------------------------------------------- item 7: job ids

@test "a restart loads every job whatever the gaps, and new ids go past the highest ever given" {
	sbx_start_daemon
	sbx_create "$A"
	for i in $(seq 1 70); do
		n=$(sbx_run "$A" "echo job-$i")
		[ "$n" -eq "$i" ]
	done
	wait_job "$A" 70 exited
	# Keep 1 and 69: a gap of 67 ids, and the highest (70) removed too.
	for i in $(seq 2 68) 70; do
		wait_job "$A" "$i" exited
		rmdir "$MNT/$A/jobs/$i"
	done
	wait_job "$A" 69 exited
	restart_daemon
	[ "$(sbx_cat "$MNT/$A/status")" = running ]
	run ls "$MNT/$A/jobs"
	[ "$status" -eq 0 ]
	[ "$(sort -n <<<"$output" | tr '\n' ' ')" = "1 69 " ]
	[ "$(sbx_cat "$MNT/$A/jobs/69/stdout")" = job-69 ]
	[ "$(sbx_cat "$MNT/$A/jobs/1/stdout")" = job-1 ]
	m=$(sbx_run "$A" 'echo new')
	[ "$m" -gt 70 ]
	wait_job "$A" "$m" exited
	[ "$(sbx_cat "$MNT/$A/jobs/$m/stdout")" = new ]
}

@test "a job writing across a daemon restart loses nothing: it waits for the new daemon" {
	sbx_start_daemon
	sbx_create "$A"
	# The job starts writing when its stdin ends, that is when the daemon
	# dies: then 2 MB, more than its pipe holds, so it waits for the next one.
	n=$(sbx_run "$A" 'read x; seq 1 300000; echo end')
	restart_daemon
	wait_job "$A" "$n" exited
	sbx_cat "$MNT/$A/jobs/$n/stdout" >"$SBX_TMP/out"
	{
		seq 1 300000
		echo end
	} | cmp - "$SBX_TMP/out"
	[ "$(sbx_cat "$MNT/$A/jobs/$n/exit_code")" = 0 ]
}

# ---------------------------------------------------------------- item 8: extend

@test "extend on a sandbox without a timeout is EINVAL with a sentence, and gives it no deadline" {
	sbx_start_daemon
	sbx_create "$A"
	run sbx_write "$MNT/$A/ctl" 'extend 1'
	assert_fails_with "Invalid argument"
	run sbx_cat "$MNT/$A/error"
	[[ "$output" == *"has no timeout to extend"* ]]
	run python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["timeout"])' "$MNT/$A/config"
	[ "$output" = 0 ]
	[ "$(sbx_cat "$MNT/$A/status")" = running ]
	# With a timeout, extend still pushes it.
	sbx_create_ctl "$B" timeout=600
	echo 'extend 60' >"$MNT/$B/ctl"
	run python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["timeout"] > 600)' "$MNT/$B/config"
	[ "$output" = True ]
}

# ---------------------------------------------------------------- item 9: names

@test "a name with a newline and sandbox text with control characters are escaped in error and the log" {
	sbx_start_daemon
	run mkdir "$MNT/.x"$'\n'"fake line"
	assert_fails_with "Invalid argument"
	run sbx_cat "$MNT/error"
	[ "$status" -eq 0 ]
	[[ "$output" == *'.x\x0afake line'* ]]
	run grep -c '^fake line' <<<"$output"
	[ "$output" = 0 ]
	run grep -ac '^fake line' "$SBX_LOG"
	[ "$output" = 0 ]
	run grep -acF '.x\x0afake line' "$SBX_LOG"
	[ "$output" -ge 1 ]
	# A sandbox's own error: an escape sequence written to ctl comes back escaped.
	sbx_create "$A"
	run sbx_write "$MNT/$A/ctl" $'frob\e[2J'
	assert_fails_with "Invalid argument"
	run sbx_cat "$MNT/$A/error"
	[[ "$output" == *'frob\x1b[2J'* ]]
	[[ "$output" != *$'\e'* ]]
	run grep -ac $'\e' "$SBX_LOG"
	[ "$output" = 0 ]
}
