#!/usr/bin/env bats
# Access control of the mount, driven as unprivileged users: with
# `--allow-other --group G` a member of G may create, control, read and exec;
# anyone else gets EACCES with nothing changed. Without --group (and without
# --allow-other) a non-root user gets EACCES/EPERM on everything.
#
# The test makes a group and two users of its own (names carry the run's tag)
# and removes them in teardown.

load helpers

setup() {
	local tag
	tag=$(printf '%04x' $((RANDOM % 65536)))
	TGROUP="sbxg$tag"
	TMEMBER="sbxm$tag"
	TOTHER="sbxo$tag"
	: >"${BATS_TEST_TMPDIR:-/tmp}/access-made"
	groupadd "$TGROUP"
	echo "group $TGROUP" >>"$BATS_TEST_TMPDIR/access-made"
	useradd -M -N -g nogroup -G "$TGROUP" -s /bin/sh -d /nonexistent "$TMEMBER"
	echo "user $TMEMBER" >>"$BATS_TEST_TMPDIR/access-made"
	useradd -M -N -g nogroup -s /bin/sh -d /nonexistent "$TOTHER"
	echo "user $TOTHER" >>"$BATS_TEST_TMPDIR/access-made"
}

teardown() {
	teardown_sbx
	local kind name
	# Only what setup made, users first (a group cannot go while it has members).
	if [[ -f "$BATS_TEST_TMPDIR/access-made" ]]; then
		tac "$BATS_TEST_TMPDIR/access-made" | while read -r kind name; do
			case $kind in
			user) userdel "$name" 2>/dev/null || echo "teardown: userdel $name failed" >&2 ;;
			group) groupdel "$name" 2>/dev/null || echo "teardown: groupdel $name failed" >&2 ;;
			esac
		done
	fi
}

# Start the daemon with ARGS, and let other users walk to the mount point
# (mktemp -d makes the temp dir 0700).
start_with() {
	setup_sbx "$@"
	chmod 0755 "$SBX_TMP"
	P="ac${SBX_TAG}"
}

# as USER CMD: run a shell command as USER (its groups from /etc/group), bounded.
as() {
	local user=$1
	shift
	timeout 30 runuser -u "$user" -- /bin/sh -c "$*"
}

# exec_as USER NAME CMD: one exec session as USER; prints output then the
# exit_code line.
exec_as() {
	local user=$1 name=$2 cmd=$3
	timeout 60 runuser -u "$user" -- /bin/bash -c '
		exec 3<>"$1" || exit 97
		printf "%s\n" "$2" >&3 || exit 98
		cat <&3
		cat <&3
		exec 3>&-' _ "$MNT/$name/exec" "$cmd"
}

# What must hold after a refused attempt: the sandbox is as it was.
unchanged() {
	[ "$(sbx_cat "$MNT/$P-a/status")" = running ]
	[ ! -e "$MNT/$P-x" ]
	[ "$(ls "$MNT" | grep -c "^$P-")" -eq "${1:-1}" ]
}

@test "--allow-other --group: a member can create, control, read and exec" {
	start_with --allow-other --group "$TGROUP"
	id "$TMEMBER"
	run as "$TMEMBER" "ls '$MNT'"
	[ "$status" -eq 0 ]
	[[ "$output" == *ctl* ]]
	run as "$TMEMBER" "mkdir '$MNT/$P-m'"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_status "$P-m" running
	sbx_pid_of "$P-m" >/dev/null
	run as "$TMEMBER" "cat '$MNT/$P-m/status'"
	[ "$status" -eq 0 ]
	[ "$output" = running ]
	run as "$TMEMBER" "cat '$MNT/$P-m/stats' '$MNT/$P-m/config' '$MNT/$P-m/events' '$MNT/stats'"
	[ "$status" -eq 0 ]
	[[ "$output" == *create_usec* ]]
	run exec_as "$TMEMBER" "$P-m" 'echo hi-from-member; id -u'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *hi-from-member* ]]
	[[ "$output" == *"exit_code 0"* ]]
	run as "$TMEMBER" "echo stop > '$MNT/$P-m/ctl'"
	[ "$status" -eq 0 ]
	wait_status "$P-m" stopped
	run as "$TMEMBER" "echo start > '$MNT/$P-m/ctl'"
	[ "$status" -eq 0 ]
	wait_status "$P-m" running
	run as "$TMEMBER" "echo 'create $P-n memory=64M' > '$MNT/ctl'"
	[ "$status" -eq 0 ]
	wait_status "$P-n" running
	sbx_pid_of "$P-n" >/dev/null
	run as "$TMEMBER" "rmdir '$MNT/$P-n'"
	[ "$status" -eq 0 ]
	[ ! -e "$MNT/$P-n" ]
	assert_healthy "$P-m"
}

@test "--allow-other --group: a non-member gets EACCES and nothing changes" {
	start_with --allow-other --group "$TGROUP"
	sbx_create "$P-a"
	local gen_before err_before
	gen_before=$(sbx_key "$MNT/events" generation)
	err_before=$(sbx_cat "$MNT/error" | md5sum)
	run as "$TOTHER" "ls '$MNT'"
	assert_fails_with "Permission denied"
	run as "$TOTHER" "mkdir '$MNT/$P-x'"
	assert_fails_with "Permission denied"
	run as "$TOTHER" "echo 'create $P-x' > '$MNT/ctl'"
	assert_fails_with "Permission denied"
	run as "$TOTHER" "cat '$MNT/$P-a/status'"
	assert_fails_with "Permission denied"
	run as "$TOTHER" "cat '$MNT/stats'"
	assert_fails_with "Permission denied"
	run as "$TOTHER" "echo stop > '$MNT/$P-a/ctl'"
	assert_fails_with "Permission denied"
	run as "$TOTHER" "echo 'kill KILL' > '$MNT/$P-a/ctl'"
	assert_fails_with "Permission denied"
	run exec_as "$TOTHER" "$P-a" 'echo should-not-run'
	[ "$status" -eq 97 ]
	[[ "$output" != *should-not-run* ]]
	run as "$TOTHER" "rmdir '$MNT/$P-a'"
	assert_fails_with "Permission denied"
	# Nothing changed: same sandboxes, still running, no new event, no new error.
	unchanged 1
	[ "$(sbx_key "$MNT/events" generation)" = "$gen_before" ]
	[ "$(sbx_cat "$MNT/error" | md5sum)" = "$err_before" ]
	assert_healthy "$P-a"
}

@test "--allow-other without --group: a non-root user gets EACCES/EPERM" {
	start_with --allow-other
	sbx_create "$P-a"
	local u
	for u in "$TMEMBER" "$TOTHER"; do
		run as "$u" "ls '$MNT'"
		assert_fails_with "Permission denied|Operation not permitted"
		run as "$u" "mkdir '$MNT/$P-x'"
		assert_fails_with "Permission denied|Operation not permitted"
		run as "$u" "echo 'create $P-x' > '$MNT/ctl'"
		assert_fails_with "Permission denied|Operation not permitted"
		run as "$u" "cat '$MNT/$P-a/status'"
		assert_fails_with "Permission denied|Operation not permitted"
		run as "$u" "echo stop > '$MNT/$P-a/ctl'"
		assert_fails_with "Permission denied|Operation not permitted"
		run exec_as "$u" "$P-a" 'echo should-not-run'
		[ "$status" -eq 97 ]
		run as "$u" "rmdir '$MNT/$P-a'"
		assert_fails_with "Permission denied|Operation not permitted"
	done
	unchanged 1
	assert_healthy "$P-a"
}

@test "default (no --allow-other): a non-root user cannot even see the mount" {
	start_with
	sbx_create "$P-a"
	run as "$TMEMBER" "ls '$MNT'"
	assert_fails_with "Permission denied|Operation not permitted"
	run as "$TMEMBER" "mkdir '$MNT/$P-x'"
	assert_fails_with "Permission denied|Operation not permitted"
	run as "$TMEMBER" "cat '$MNT/$P-a/status'"
	assert_fails_with "Permission denied|Operation not permitted"
	run as "$TMEMBER" "echo stop > '$MNT/$P-a/ctl'"
	assert_fails_with "Permission denied|Operation not permitted"
	unchanged 1
	assert_healthy "$P-a"
}
