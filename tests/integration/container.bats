#!/usr/bin/env bats
# Containers drive sandboxes through a bind mount (issue 8, "Containers"): the
# rslave pattern. sandboxfs is mounted (with --allow-other) under a shared
# parent; a "container" (a mount namespace made by unshare with slave
# propagation, kept alive by a process this test owns) bind-mounts the parent,
# creates a sandbox and runs exec in it. Then the daemon is killed with -9 and
# a new one is started on the same mount point: the container sees the new
# mount without restarting.

load helpers

setup() {
	SBX_TMP=$(mktemp -d /tmp/sbxtest.XXXXXX)
	STATE="$SBX_TMP/state"
	PARENT="$SBX_TMP/shared"
	MNT="$PARENT/sbx"
	VIEW="$SBX_TMP/view" # where the container sees PARENT
	SBX_LOG="$SBX_TMP/daemon.log"
	SBX_TAG=$(printf '%04x' $((RANDOM % 65536)))
	mkdir -p "$STATE" "$PARENT" "$VIEW"
	: >"$SBX_TMP/pids"
	: >"$SBX_TMP/daemons"
	export SBX_TMP STATE MNT SBX_LOG SBX_TAG PARENT VIEW
	# The shared parent: a bind mount of itself, shared recursively.
	mount --bind "$PARENT" "$PARENT"
	mount --make-rshared "$PARENT"
	mkdir -p "$MNT"
	sbx_start_daemon --allow-other
	C1="ct${SBX_TAG}c"
	H1="ct${SBX_TAG}h"
	CPID=""
}

teardown() {
	# The container first (only the pid this test started), then the rest.
	if [[ -n "${CPID:-}" ]] && kill -0 "$CPID" 2>/dev/null; then
		kill -9 "$CPID" 2>/dev/null || true
		wait "$CPID" 2>/dev/null || true
	fi
	teardown_sbx
}

# Start the container: a new mount namespace whose mounts are slaves of the
# host's, with PARENT bind-mounted (recursively, as a slave) on VIEW.
start_container() {
	unshare -m --propagation slave sh -c \
		'mount --rbind "$1" "$2" && mount --make-rslave "$2" && echo ready >"$3" && exec sleep 1000' \
		_ "$PARENT" "$VIEW" "$SBX_TMP/ctr.ready" </dev/null >"$SBX_TMP/ctr.log" 2>&1 3>&- &
	CPID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s "$SBX_TMP/ctr.ready" ]] && return 0
		kill -0 "$CPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "container did not start: $(cat "$SBX_TMP/ctr.log")" >&2
	return 1
}

# inside CMD...: run a shell snippet in the container's mount namespace, with
# S set to the container's view of the mount.
inside() {
	timeout 60 nsenter -t "$CPID" -m env S="$VIEW/sbx" SBX="$VIEW/sbx" REPO="$SBX_REPO" \
		bash -c "$1" 3>&-
}

@test "container: create and exec from inside through the bind mount; survives a daemon restart" {
	start_container
	# The host does not see the sandboxfs mount at VIEW, the container does.
	[ ! -e "$VIEW/sbx/ctl" ]
	run inside 'test -e "$S/ctl" && ls "$S/images"'
	[ "$status" -eq 0 ]
	grep -qx busybox <<<"$output"
	# Create from inside and wait until it runs.
	run inside "mkdir \"\$S/$C1\" && \"\$REPO/examples/sbx\" wait $C1 running && cat \"\$S/$C1/status\""
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = running ]
	sbx_pid_of "$C1" >/dev/null || true
	# exec from inside, with the exec file (one fd) and with examples/sbx.
	run inside "exec 3<>\"\$S/$C1/exec\"; echo 'uname -n; exit 5' >&3; cat <&3; cat <&3"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$C1" ]
	[ "${lines[1]}" = "exit_code 5" ]
	run inside "\"\$REPO/examples/sbx\" exec $C1 -- sh -c 'echo from-container; exit 4'"
	[ "$status" -eq 4 ]
	[ "$output" = from-container ]
	# The host sees the container's sandbox.
	[ "$(sbx_cat "$MNT/$C1/status")" = running ]

	# Kill the daemon hard; start a new one on the same mount point. It
	# clears the dead mount and mounts again.
	old=$SBX_PID
	kill -9 "$old"
	wait "$old" 2>/dev/null || true
	sbx_start_daemon --allow-other
	[ "$SBX_PID" != "$old" ]
	# A sandbox created from the host after the restart ...
	sbx_create "$H1"
	# ... is visible in the same container, which was not restarted.
	kill -0 "$CPID"
	run inside "ls \"\$S\""
	[ "$status" -eq 0 ]
	grep -qx "$H1" <<<"$output"
	run inside "cat \"\$S/$H1/status\""
	[ "$status" -eq 0 ]
	[ "$output" = running ]
	run inside "\"\$REPO/examples/sbx\" exec $H1 -- uname -n"
	[ "$status" -eq 0 ]
	[ "$output" = "$H1" ]
	# The container's own sandbox was re-adopted and still takes commands.
	run inside "cat \"\$S/$C1/status\""
	[ "$status" -eq 0 ]
	[ "$output" = running ]
	run inside "\"\$REPO/examples/sbx\" exec $C1 -- echo still-here"
	[ "$status" -eq 0 ]
	[ "$output" = still-here ]
	# Only one sandboxfs mount in the container's view (the dead one is gone).
	run inside "awk -v m=\"\$S\" '\$2 == m' /proc/mounts"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == *fuse.sandboxfs* ]]
	# And a sandbox removed from inside goes on the host too.
	run inside "rmdir \"\$S/$C1\""
	[ "$status" -eq 0 ]
	[ ! -e "$MNT/$C1" ]
}

@test "container: with --allow-other other users reach the mount; root-only modes still apply" {
	# Let other users reach the mount point (mktemp -d is 0700).
	chmod 755 "$SBX_TMP" "$PARENT" "$VIEW"
	start_container
	sbx_create "$H1"
	# Without allow_other FUSE refuses any other user even a stat of the
	# mount's root; with it, stat works and the file modes decide.
	run inside "setpriv --reuid=65534 --regid=65534 --clear-groups stat -c '%a %U' \"\$S\""
	echo "$output"
	[ "$status" -eq 0 ]
	sbx_diag "mount root as seen by uid 65534: $output"
	# Without --group the modes are the owner's (root's) only: 700, owned by
	# root. So a non-root user (and the root of a rootless container) cannot
	# list it.
	[ "$output" = "700 root" ]
	run inside "setpriv --reuid=65534 --regid=65534 --clear-groups ls \"\$S\""
	[ "$status" -ne 0 ]
	[[ "$output" == *"Permission denied"* ]]
	# Root in the container uses it.
	run inside "ls \"\$S\""
	[ "$status" -eq 0 ]
	grep -qx "$H1" <<<"$output"
}
