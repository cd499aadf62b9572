#!/usr/bin/env bats
# Bad input: every malformed or not-allowed operation fails with the right
# errno from the syscall itself, leaves a sentence in `error`, and leaves the
# daemon alive and another sandbox running. Every test gets its own daemon and
# a running sandbox "$K" (the keeper).

load helpers

setup() {
	setup_sbx
	K="bi${SBX_TAG}keep"
	N="bi${SBX_TAG}new"
	sbx_create "$K"
}

teardown() {
	teardown_sbx
}

# bad_mkdir NAME ERRTEXT: mkdir fails with ERRTEXT; the top-level error file
# gets a sentence (only when the request reached the daemon: EINVAL).
bad_mkdir() {
	local name=$1 want=$2 before after
	before=$(sbx_cat "$MNT/error")
	run timeout 20 mkdir -- "$MNT/$name"
	assert_fails_with "$want"
	[[ ! -d "$MNT/$name" || "$name" == "$K" || -f "$MNT/$name" ]] || {
		echo "directory $name exists after a failed mkdir"
		return 1
	}
	if [[ "$want" == "Invalid argument" ]]; then
		after=$(sbx_cat "$MNT/error")
		[[ -n "$after" ]] || {
			echo "$MNT/error is empty after mkdir '$name'"
			return 1
		}
		[[ "$after" != "$before" ]] || {
			echo "$MNT/error did not change after mkdir '$name': $after"
			return 1
		}
	fi
	assert_healthy "$K"
}

# bad_ctl TEXT ERRTEXT: writing TEXT to the top-level ctl fails with ERRTEXT.
bad_ctl() {
	local text=$1 want=$2 before after
	before=$(sbx_cat "$MNT/error")
	run sbx_write "$MNT/ctl" "$text"
	assert_fails_with "$want"
	after=$(sbx_cat "$MNT/error")
	[[ -n "$after" && "$after" != "$before" ]] || {
		echo "$MNT/error did not get a sentence after writing '$text' to ctl: '$after'"
		return 1
	}
	assert_healthy "$K"
}

# bad_sbx_ctl NAME TEXT ERRTEXT: writing TEXT to NAME/ctl fails with ERRTEXT
# and NAME/error holds a sentence.
bad_sbx_ctl() {
	local name=$1 text=$2 want=$3 after
	run sbx_write "$MNT/$name/ctl" "$text"
	assert_fails_with "$want"
	after=$(sbx_cat "$MNT/$name/error")
	[[ -n "$after" ]] || {
		echo "$MNT/$name/error is empty after writing '$text'"
		return 1
	}
}

# write_payload TARGET: write the bytes of $BATS_TEST_TMPDIR/payload to
# TARGET in ONE write(2); dd prints the errno text on failure.
write_payload() {
	timeout 20 dd if="$BATS_TEST_TMPDIR/payload" of="$1" bs=4M count=1 iflag=fullblock conv=notrunc 2>&1
}

# payload N CHAR: N copies of CHAR, no newline.
repeat_char() {
	head -c "$1" /dev/zero | tr '\0' "$2"
}

# ------------------------------------------------------------ bad mkdir names

@test "mkdir: leading dot is EINVAL" {
	bad_mkdir ".hidden" "Invalid argument"
}

@test "mkdir: '...' is EINVAL" {
	bad_mkdir "..." "Invalid argument"
}

@test "mkdir: '..x' is EINVAL" {
	bad_mkdir "..x" "Invalid argument"
}

@test "mkdir: 64 characters is EINVAL, 63 is fine" {
	bad_mkdir "$(printf 'a%.0s' $(seq 64))" "Invalid argument"
	n63=$(printf 'b%.0s' $(seq 63))
	mkdir "$MNT/$n63"
	wait_status "$n63" running
}

@test "mkdir: 255 characters is rejected" {
	run timeout 20 mkdir "$MNT/$(printf 'c%.0s' $(seq 255))"
	assert_fails
	assert_healthy "$K"
}

@test "mkdir: a name with a newline is EINVAL" {
	bad_mkdir $'bad\nname' "Invalid argument"
}

@test "mkdir: names with a space, colon, slash-like or unicode characters are EINVAL" {
	bad_mkdir "has space" "Invalid argument"
	bad_mkdir "a:b" "Invalid argument"
	bad_mkdir 'a\b' "Invalid argument"
	bad_mkdir 'a*b' "Invalid argument"
	bad_mkdir $'tab\there' "Invalid argument"
	bad_mkdir "héllo" "Invalid argument"
	bad_mkdir '$(reboot)' "Invalid argument"
}

@test "mkdir: names equal to top-level files are EEXIST" {
	for f in ctl stats error events metrics; do
		bad_mkdir "$f" "File exists"
	done
	# The top-level directories: no sandbox takes their names either.
	for d in images pools; do
		run timeout 20 mkdir -- "$MNT/$d"
		assert_fails_with "File exists"
		[ -d "$MNT/$d" ]
		run sbx_write "$MNT/ctl" "create $d"
		assert_fails_with "File exists"
	done
	assert_healthy
}

@test "mkdir: a taken name is EEXIST" {
	bad_mkdir "$K" "File exists"
}

@test "mkdir inside a sandbox dir is EPERM" {
	run timeout 20 mkdir "$MNT/$K/sub"
	assert_fails_with "Operation not permitted"
	assert_healthy "$K"
}

# ------------------------------------------------------- top-level ctl writes

@test "ctl: unknown command is EINVAL" {
	bad_ctl "frobnicate $N" "Invalid argument"
}

@test "ctl: empty line and create without a name are EINVAL" {
	bad_ctl "" "Invalid argument"
	bad_ctl "create" "Invalid argument"
}

@test "ctl: memory=lots is EINVAL and creates nothing" {
	bad_ctl "create $N memory=lots" "Invalid argument"
	[ ! -e "$MNT/$N" ]
}

@test "ctl: other bad option values are EINVAL" {
	bad_ctl "create $N memory=" "Invalid argument"
	bad_ctl "create $N memory=-5M" "Invalid argument"
	bad_ctl "create $N cpus=abc" "Invalid argument"
	bad_ctl "create $N pids=-1" "Invalid argument"
	bad_ctl "create $N net=maybe" "Invalid argument"
	bad_ctl "create $N timeout=soon" "Invalid argument"
	bad_ctl "create $N memory=99999999999999999999999" "Invalid argument"
	bad_ctl "create $N nosuchoption=1" "Invalid argument"
	bad_ctl "create $N memory" "Invalid argument"
	[ ! -e "$MNT/$N" ]
}

@test "ctl: bad names in create are EINVAL" {
	bad_ctl "create .hidden" "Invalid argument"
	bad_ctl "create ../escape" "Invalid argument"
	bad_ctl "create a/b" "Invalid argument"
	bad_ctl "create $(printf 'a%.0s' $(seq 64))" "Invalid argument"
}

@test "ctl: unknown image is ENOENT" {
	bad_ctl "create $N image=nosuchimage" "No such file or directory"
	[ ! -e "$MNT/$N" ]
	bad_ctl "create $N image=../busybox" "Invalid argument|No such file or directory"
	[ ! -e "$MNT/$N" ]
}

@test "ctl: create of a taken name is EEXIST" {
	bad_ctl "create $K" "File exists"
	bad_ctl "create ctl" "File exists|Invalid argument"
}

@test "ctl: a multi-line write is EINVAL and creates nothing" {
	printf 'create %s1\ncreate %s2\n' "$N" "$N" >"$BATS_TEST_TMPDIR/payload"
	run write_payload "$MNT/ctl"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/${N}1" ]
	[ ! -e "$MNT/${N}2" ]
	sbx_cat "$MNT/error" | grep -q .
	assert_healthy "$K"
}

@test "ctl: NUL bytes are EINVAL and create nothing" {
	printf 'create %s\0x\n' "$N" >"$BATS_TEST_TMPDIR/payload"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/payload")" -eq $((${#N} + 10)) ]
	run write_payload "$MNT/ctl"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/${N}" ]
	[ ! -e "$MNT/${N}x" ]
	printf 'create %s\n\0' "$N" >"$BATS_TEST_TMPDIR/payload"
	run write_payload "$MNT/ctl"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/${N}" ]
	assert_healthy "$K"
}

@test "ctl: a write over 4096 bytes is EINVAL" {
	{ printf 'create %s memory=64M ' "$N"; repeat_char 5000 x; echo; } >"$BATS_TEST_TMPDIR/payload"
	run write_payload "$MNT/ctl"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/$N" ]
	assert_healthy "$K"
}

@test "ctl: a 4097-byte single line is EINVAL" {
	{ printf 'create %s ' "$N"; repeat_char $((4088 - ${#N})) x; echo; } >"$BATS_TEST_TMPDIR/payload"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/payload")" -eq 4097 ]
	run write_payload "$MNT/ctl"
	assert_fails_with "Invalid argument"
	[ ! -e "$MNT/$N" ]
	assert_healthy "$K"
}

@test "ctl: a 1 MiB write is rejected" {
	repeat_char 1048576 a >"$BATS_TEST_TMPDIR/payload"
	run write_payload "$MNT/ctl"
	assert_fails
	assert_healthy "$K"
}

@test "ctl: random binary garbage is rejected" {
	for i in 1 2 3 4 5; do
		head -c $((i * 700)) /dev/urandom >"$BATS_TEST_TMPDIR/payload"
		run write_payload "$MNT/ctl"
		assert_fails
	done
	assert_healthy "$K"
	[ "$(sbx_key "$MNT/stats" sandboxes)" -eq 1 ]
}

@test "ctl: create with trailing spaces or CRLF creates the sandbox (blanks and CR separate words)" {
	run sbx_write "$MNT/ctl" "create ${N}   "
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run sbx_write "$MNT/ctl" $'create '"${N}x"$'\r'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	wait_status "$N" running
	wait_status "${N}x" running
	assert_healthy "$K"
}

# ---------------------------------------------------- per-sandbox ctl writes

@test "sandbox ctl: start while running is EBUSY" {
	bad_sbx_ctl "$K" start "Device or resource busy"
	assert_healthy "$K"
}

@test "sandbox ctl: stop while stopped is EBUSY" {
	sbx_create "$N"
	echo stop >"$MNT/$N/ctl"
	bad_sbx_ctl "$N" stop "Device or resource busy"
	[ "$(sbx_cat "$MNT/$N/status")" = stopped ]
	assert_healthy "$K"
}

@test "sandbox ctl: unknown command is EINVAL" {
	bad_sbx_ctl "$K" frobnicate "Invalid argument"
	assert_healthy "$K"
}

@test "sandbox ctl: bad arguments are EINVAL" {
	bad_sbx_ctl "$K" "stop soon" "Invalid argument"
	bad_sbx_ctl "$K" "stop -1" "Invalid argument"
	bad_sbx_ctl "$K" "kill NOSUCHSIGNAL" "Invalid argument"
	bad_sbx_ctl "$K" "kill 99999" "Invalid argument"
	bad_sbx_ctl "$K" "start now please" "Invalid argument"
	assert_healthy "$K"
}

@test "sandbox ctl: multi-line, NUL and oversized writes are EINVAL" {
	printf 'stop\nstop\n' >"$BATS_TEST_TMPDIR/payload"
	run write_payload "$MNT/$K/ctl"
	assert_fails_with "Invalid argument"
	printf 'stop\0\n' >"$BATS_TEST_TMPDIR/payload"
	run write_payload "$MNT/$K/ctl"
	assert_fails_with "Invalid argument"
	{ printf 'stop '; repeat_char 5000 1; echo; } >"$BATS_TEST_TMPDIR/payload"
	run write_payload "$MNT/$K/ctl"
	assert_fails_with "Invalid argument"
	sbx_cat "$MNT/$K/error" | grep -q .
	assert_healthy "$K"
}

# --------------------------------------------------- not-allowed operations

@test "unlink of a top-level file is EPERM" {
	run timeout 20 rm -f "$MNT/ctl"
	assert_fails_with "Operation not permitted"
	[ -e "$MNT/ctl" ]
	assert_healthy "$K"
}

@test "unlink of a sandbox file is EPERM" {
	run timeout 20 rm -f "$MNT/$K/status"
	assert_fails_with "Operation not permitted"
	[ -e "$MNT/$K/status" ]
	assert_healthy "$K"
}

@test "rename of a sandbox dir is EPERM" {
	run timeout 20 mv "$MNT/$K" "$MNT/$N"
	assert_fails_with "Operation not permitted"
	[ -d "$MNT/$K" ]
	[ ! -e "$MNT/$N" ]
	assert_healthy "$K"
}

@test "rename of a file is EPERM" {
	run timeout 20 mv "$MNT/stats" "$MNT/stats2"
	assert_fails_with "Operation not permitted"
	run timeout 20 mv "$MNT/$K/log" "$MNT/$K/log2"
	assert_fails_with "Operation not permitted"
	assert_healthy "$K"
}

@test "creat of a new file is EPERM" {
	run timeout 20 touch "$MNT/newfile"
	assert_fails_with "Operation not permitted"
	[ ! -e "$MNT/newfile" ]
	run timeout 20 bash -c "echo x > '$MNT/$K/newfile'"
	assert_fails_with "Operation not permitted"
	[ ! -e "$MNT/$K/newfile" ]
	assert_healthy "$K"
}

@test "mknod is EPERM" {
	run timeout 20 mknod "$MNT/fifo" p
	assert_fails_with "Operation not permitted"
	run timeout 20 mknod "$MNT/$K/fifo" p
	assert_fails_with "Operation not permitted"
	assert_healthy "$K"
}

@test "symlink is EPERM" {
	run timeout 20 ln -s /etc/passwd "$MNT/link"
	assert_fails_with "Operation not permitted"
	run timeout 20 ln -s /etc/passwd "$MNT/$K/link"
	assert_fails_with "Operation not permitted"
	assert_healthy "$K"
}

@test "hard link is rejected" {
	run timeout 20 ln "$MNT/stats" "$MNT/stats-link"
	assert_fails
	assert_healthy "$K"
}

@test "rmdir of a file or a non-existent sandbox fails" {
	run timeout 20 rmdir "$MNT/ctl"
	assert_fails
	run timeout 20 rmdir "$MNT/nosuch$N"
	assert_fails_with "No such file or directory"
	assert_healthy "$K"
}

@test "writing a read-only file fails" {
	run sbx_write "$MNT/stats" "sandboxes 99"
	assert_fails
	run sbx_write "$MNT/$K/status" "stopped"
	assert_fails
	run sbx_write "$MNT/$K/config" "{}"
	assert_fails
	[ "$(sbx_cat "$MNT/$K/status")" = running ]
	assert_healthy "$K"
}

@test "chmod, chown and truncate of files are refused (EPERM, EACCES)" {
	mode=$(stat -c %a "$MNT/ctl")
	run timeout 20 chmod 777 "$MNT/ctl"
	assert_fails_with "Operation not permitted"
	[ "$(stat -c %a "$MNT/ctl")" = "$mode" ]
	run timeout 20 chown nobody "$MNT/$K/status"
	assert_fails_with "Operation not permitted"
	# Read-only files cannot be opened for writing; a writable one can only
	# be truncated to 0 (what `echo x > file` does).
	run timeout 20 truncate -s 0 "$MNT/$K/log"
	assert_fails_with "Permission denied"
	run timeout 20 truncate -s 100 "$MNT/stats"
	assert_fails_with "Permission denied"
	run timeout 20 truncate -s 100 "$MNT/$K/ctl"
	assert_fails_with "Operation not permitted"
	assert_healthy "$K"
}

@test "a ctl handle reads back its own last failed write's sentence, and nothing else" {
	# A fresh handle has nothing to say.
	run timeout 20 cat "$MNT/ctl"
	[[ "$status" -eq 0 && -z "$output" ]]
	run timeout 20 cat "$MNT/$K/ctl"
	[[ "$status" -eq 0 && -z "$output" ]]
	# Two clients at once: each handle reads its own sentence.
	local a b
	exec {a}<>"$MNT/$K/ctl" {b}<>"$MNT/ctl"
	run bash -c "printf 'frobnicate\n' >&$a"
	assert_fails_with "Invalid argument"
	run bash -c "printf 'create ../x\n' >&$b"
	assert_fails_with "Invalid argument"
	run timeout 20 cat <&"$a"
	[[ "$output" == "unknown command 'frobnicate'"* ]]
	run timeout 20 cat <&"$b"
	[[ "$output" == "ctl: "*"../x"* && "$output" != *frobnicate* ]]
	# A write that works clears it.
	printf 'pause\n' >&"$a"
	run timeout 20 cat <&"$a"
	[[ "$status" -eq 0 && -z "$output" ]]
	printf 'resume\n' >&"$a"
	exec {a}>&- {b}>&-
	# A job's ctl and images/ctl too.
	n=$(sbx_run "$K" "sleep 30")
	exec {a}<>"$MNT/$K/jobs/$n/ctl"
	run bash -c "printf 'nonsense\n' >&$a"
	assert_fails_with "Invalid argument"
	run timeout 20 cat <&"$a"
	[[ "$output" == *nonsense* ]]
	exec {a}>&-
	exec {a}<>"$MNT/images/ctl"
	run bash -c "printf 'import x docker://busybox\n' >&$a"
	[[ "$status" -ne 0 ]]
	run timeout 20 cat <&"$a"
	[[ "$output" == *"docker://"* ]]
	exec {a}>&-
	assert_healthy "$K"
}

# ------------------------------------------------------------- exec misuse

@test "exec: a command in a stopped sandbox fails with EBUSY" {
	sbx_create "$N"
	echo stop >"$MNT/$N/ctl"
	run timeout 20 bash -c "exec 4<>'$MNT/$N/exec' && printf 'echo hi\n' >&4 && cat <&4 && cat <&4"
	assert_fails_with "Device or resource busy"
	[[ "$output" != *hi* ]]
	assert_healthy "$K"
}

@test "exec: open and close without a command, or read before write (EOF)" {
	run timeout 20 bash -c "exec 4<>'$MNT/$K/exec'; exec 4>&-"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run timeout 20 bash -c "exec 4<>'$MNT/$K/exec'; timeout 5 cat <&4"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	assert_healthy "$K"
}

@test "exec: a second command on the same handle is EBUSY (one command per handle)" {
	run timeout 30 bash -c "exec 4<>'$MNT/$K/exec'; printf 'echo one\n' >&4; cat <&4; cat <&4; printf 'echo two\n' >&4; cat <&4; cat <&4"
	[ "$status" -eq 0 ]
	[[ "$output" == "one"$'\n'"exit_code 0"$'\n'*"Device or resource busy"* ]]
	[[ "$output" != *two* ]]
	assert_healthy "$K"
}

@test "exec: closing the handle while the command still runs kills the command" {
	run timeout 20 bash -c "exec 4<>'$MNT/$K/exec'; printf 'sleep 3031\n' >&4; exec 4>&-"
	[ "$status" -eq 0 ]
	for ((i = 0; i < 100; i++)); do
		sbx_exec "$K" 'ps -o args' >/dev/null
		grep -q 'sleep 3031' <<<"$SBX_OUT" || break
		sleep 0.1
	done
	! grep -q 'sleep 3031' <<<"$SBX_OUT" || {
		echo "the command outlived its closed handle: $SBX_OUT"
		false
	}
	assert_healthy "$K"
}

@test "exec: a command with lots of output is read completely" {
	sbx_exec "$K" 'seq 1 100000'
	[ "$SBX_RC" = 0 ]
	[ "$(wc -l <<<"$SBX_OUT")" -eq 100000 ]
	[ "$(tail -n 1 <<<"$SBX_OUT")" = 100000 ]
	assert_healthy "$K"
}

@test "exec: a command killing its own shell gets 137; SIGKILL to init from inside is ignored" {
	sbx_create "$N"
	sbx_exec "$N" 'kill -9 $$'
	[ "$SBX_RC" -eq 137 ]
	# pid 1 of a pid namespace ignores a SIGKILL sent from inside it.
	sbx_exec "$N" 'kill -9 1; echo sent'
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = sent ]
	assert_healthy "$N"
	assert_healthy "$K"
}

@test "operations on a sandbox removed while a handle is open are ENOENT" {
	sbx_create "$N"
	exec 4<"$MNT/$N/status"
	exec 5>"$MNT/$N/ctl"
	rmdir "$MNT/$N"
	run timeout 10 cat <&4
	assert_fails_with "No such file or directory"
	run timeout 10 bash -c 'echo stop >&5'
	assert_fails_with "No such file or directory"
	exec 4<&- 5>&-
	[ ! -e "$MNT/$N" ]
	assert_healthy "$K"
}
