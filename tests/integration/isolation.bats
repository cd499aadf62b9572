#!/usr/bin/env bats
# What a process inside a sandbox can see and do: namespaces, capabilities,
# resource limits, network, filesystem. Every test gets its own daemon.

load helpers

setup() {
	setup_sbx
	A="is${SBX_TAG}a"
	B="is${SBX_TAG}b"
}

teardown() {
	teardown_sbx
}

@test "pid namespace: pid 1 is sbx-init" {
	sbx_create "$A"
	sbx_exec "$A" 'cat /proc/1/comm'
	[ "$SBX_RC" = 0 ]
	[ "$SBX_OUT" = sbx-init ]
}

@test "pid namespace: host processes are not visible" {
	sbx_create "$A"
	sbx_exec "$A" 'cat /proc/[0-9]*/comm'
	[ "$SBX_RC" = 0 ]
	! grep -qx sandboxfs <<<"$SBX_OUT" || false
	! grep -q bats <<<"$SBX_OUT" || false
	# only a handful of processes: init, the shell, cat
	n=$(grep -c . <<<"$SBX_OUT")
	[ "$n" -lt 10 ]
}

@test "uts namespace: hostname is the sandbox name" {
	sbx_create "$A"
	sbx_exec "$A" hostname
	[ "$SBX_RC" = 0 ]
	[ "$SBX_OUT" = "$A" ]
	[ "$(hostname)" != "$A" ]
}

@test "uts namespace: changing the hostname inside does not touch the host" {
	sbx_create "$A"
	host_before=$(hostname)
	# The sandbox's own processes may not change it (no CAP_SYS_ADMIN)...
	sbx_exec "$A" 'hostname changed-inside'
	[ "$SBX_RC" -ne 0 ]
	[[ "$SBX_OUT" == *"not permitted"* ]]
	# ...and a change made with the capability in its UTS namespace (from the
	# host, nsenter -u) stays in the sandbox.
	pid=$(sbx_pid_of "$A")
	nsenter -t "$pid" -u hostname "changed-$SBX_TAG"
	host_after=$(hostname)
	if [[ "$host_after" != "$host_before" ]]; then
		hostname "$host_before"
		echo "the host's hostname changed to $host_after (restored)"
		false
	fi
	sbx_exec "$A" hostname
	[ "$SBX_OUT" = "changed-$SBX_TAG" ]
}

@test "host pid from stats: exists and nsenter -u sees the sandbox name" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	[ -d "/proc/$pid" ]
	run nsenter -t "$pid" -u hostname
	[ "$status" -eq 0 ]
	[ "$output" = "$A" ]
	# and it is in different namespaces from us
	[ "$(readlink /proc/$pid/ns/pid)" != "$(readlink /proc/self/ns/pid)" ]
	[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]
	[ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]
	[ "$(readlink /proc/$pid/ns/ipc)" != "$(readlink /proc/self/ns/ipc)" ]
}

@test "mount namespace: /proc/mounts shows no host paths or state dir" {
	sbx_create "$A"
	sbx_exec "$A" 'cat /proc/mounts'
	[ "$SBX_RC" = 0 ]
	[ -n "$SBX_OUT" ]
	! grep -F -q -- "$STATE" <<<"$SBX_OUT" || false
	! grep -F -q -- "$SBX_TMP" <<<"$SBX_OUT" || false
	! grep -F -q -- "$SBX_REPO" <<<"$SBX_OUT" || false
	! grep -F -q -- "$SBX_IMAGES" <<<"$SBX_OUT" || false
	! grep -E -q -- ' /work(/| )' <<<"$SBX_OUT" || false
}

@test "mount namespace: host files are not reachable" {
	sbx_create "$A"
	sbx_exec "$A" "test -e '$SBX_REPO/Makefile' && echo visible || echo hidden"
	[ "$SBX_OUT" = hidden ]
	sbx_exec "$A" "test -e '$STATE' && echo visible || echo hidden"
	[ "$SBX_OUT" = hidden ]
	sbx_exec "$A" "test -e '$MNT' && echo visible || echo hidden"
	[ "$SBX_OUT" = hidden ]
}

@test "filesystem: writes inside do not change the image" {
	sbx_create "$A"
	sbx_exec "$A" 'echo scribble > /bin/scribble-test; echo x >> /etc/passwd; rm -f /bin/true; echo done'
	[ "$SBX_OUT" = "done" ]
	[ ! -e "$SBX_IMAGES/busybox/bin/scribble-test" ]
	sbx_create "$B"
	sbx_exec "$B" 'test -e /bin/scribble-test && echo leaked || echo clean'
	[ "$SBX_OUT" = clean ]
}

@test "capabilities: bounding set is reduced" {
	sbx_create "$A"
	sbx_exec "$A" 'grep CapBnd /proc/self/status'
	[ "$SBX_RC" = 0 ]
	bnd=$(awk '{print $2}' <<<"$SBX_OUT")
	echo "sandbox CapBnd: $bnd"
	[[ "$bnd" =~ ^[0-9a-f]{16}$ ]]
	[ "$bnd" != 000001ffffffffff ]
	[ "$bnd" != 0000003fffffffff ]
	host=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
	[ "$bnd" != "$host" ]
	# a subset of what the host has
	(( (0x$bnd & ~0x$host) == 0 ))
}

@test "capabilities: exec'd commands have the same reduced set" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	init_bnd=$(awk '/^CapBnd/ {print $2}' "/proc/$pid/status")
	sbx_exec "$A" 'grep CapEff /proc/self/status'
	eff=$(awk '{print $2}' <<<"$SBX_OUT")
	(( (0x$eff & ~0x$init_bnd) == 0 ))
	[ "$eff" != "$(awk '/^CapEff/ {print $2}' /proc/self/status)" ]
}

@test "no_new_privs is set" {
	sbx_create "$A"
	sbx_exec "$A" 'cat /proc/self/status | grep NoNewPrivs'
	[ "$SBX_RC" = 0 ]
	[ "$(awk '{print $2}' <<<"$SBX_OUT")" = 1 ]
}

@test "host kernel settings cannot be changed from inside" {
	sbx_create "$A"
	# Writes back the value it read, so the host is unchanged either way.
	sbx_exec "$A" 'v=$(cat /proc/sys/kernel/sysrq 2>/dev/null); { echo "$v" > /proc/sys/kernel/sysrq; } 2>/dev/null && echo wrote || echo refused'
	[ "$SBX_OUT" = refused ]
}

@test "memory limit: memory=32M gets a 64M allocation killed and counts oom_kills" {
	sbx_create_ctl "$A" memory=32M
	sbx_exec "$A" 'dd if=/dev/zero of=/dev/null bs=64M count=1'
	echo "dd rc $SBX_RC: $SBX_OUT"
	[ "$SBX_RC" != 0 ]
	ok=0
	for i in $(seq 100); do
		n=$(sbx_key "$MNT/$A/stats" oom_kills) || n=0
		if [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1)); then
			ok=1
			break
		fi
		sleep 0.1
	done
	echo "oom_kills: $(sbx_key "$MNT/$A/stats" oom_kills)"
	[ "$ok" = 1 ]
}

@test "memory limit: the sandbox survives an OOM in one of its commands" {
	sbx_create_ctl "$A" memory=32M
	sbx_exec "$A" 'dd if=/dev/zero of=/dev/null bs=64M count=1'
	[ "$SBX_RC" != 0 ]
	# the sandbox init is not the victim: it still runs commands
	wait_status "$A" running 5
	sbx_exec "$A" 'echo still-here'
	[ "$SBX_OUT" = still-here ]
}

@test "memory limit: a small allocation within the limit works" {
	sbx_create_ctl "$A" memory=64M
	sbx_exec "$A" 'dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null; echo rc=$?'
	[ "$SBX_OUT" = rc=0 ]
}

@test "pids limit: pids=16 makes forks fail" {
	sbx_create_ctl "$A" pids=16
	sbx_exec "$A" 'for i in $(seq 40); do sleep 3 & done; wait'
	echo "rc $SBX_RC output: $SBX_OUT"
	grep -E -i -q 'fork|resource temporarily unavailable|try again' <<<"$SBX_OUT"
	wait_status "$A" running 5
	n=$(sbx_key "$MNT/$A/stats" pids_current)
	[ "$n" -le 16 ]
}

@test "network: net=off sees only lo" {
	sbx_create_ctl "$A" net=off
	sbx_exec "$A" 'cat /proc/net/dev'
	[ "$SBX_RC" = 0 ]
	ifs=$(tail -n +3 <<<"$SBX_OUT" | awk -F: '{gsub(/ /, "", $1); print $1}')
	echo "interfaces: $ifs"
	[ "$ifs" = lo ]
}

@test "network: default sandbox (mkdir) sees only lo" {
	sbx_create "$A"
	sbx_exec "$A" 'cat /proc/net/dev'
	[ "$SBX_RC" = 0 ]
	ifs=$(tail -n +3 <<<"$SBX_OUT" | awk -F: '{gsub(/ /, "", $1); print $1}')
	echo "interfaces: $ifs"
	[ "$ifs" = lo ]
}

@test "network: ip link inside shows only lo" {
	sbx_create "$A"
	sbx_exec "$A" 'ip link 2>&1 || echo no-ip'
	echo "$SBX_OUT"
	if grep -q no-ip <<<"$SBX_OUT"; then
		skip "no ip applet in the image"
	fi
	n=$(grep -cE '^[0-9]+: ' <<<"$SBX_OUT")
	[ "$n" -eq 1 ]
	grep -qE '^[0-9]+: lo:' <<<"$SBX_OUT"
}

@test "network: host interfaces are not visible" {
	sbx_create "$A"
	sbx_exec "$A" 'cat /proc/net/dev'
	inside=$(tail -n +3 <<<"$SBX_OUT" | awk -F: '{gsub(/ /, "", $1); print $1}')
	while read -r ifname; do
		[[ "$ifname" == lo ]] && continue
		! grep -qx "$ifname" <<<"$inside" || {
			echo "host interface $ifname visible inside"
			false
		}
	done < <(tail -n +3 /proc/net/dev | awk -F: '{gsub(/ /, "", $1); print $1}')
}

@test "exec: commands run as root with /bin/sh in the sandbox cgroup" {
	sbx_create "$A"
	sbx_exec "$A" 'id -u'
	[ "$SBX_OUT" = 0 ]
	# The exec'd shell is a descendant of the sandbox init: same pid namespace.
	pid=$(sbx_pid_of "$A")
	sbx_exec "$A" 'readlink /proc/self/ns/pid'
	[ "$SBX_OUT" = "$(readlink /proc/$pid/ns/pid)" ]
	# Same cgroups as the init (compared inside, where both are namespaced).
	sbx_exec "$A" 'sort /proc/self/cgroup; echo ---; sort /proc/1/cgroup'
	[ "$SBX_RC" = 0 ]
	mine=$(sed '/^---$/,$d' <<<"$SBX_OUT")
	init=$(sed '1,/^---$/d' <<<"$SBX_OUT")
	[ -n "$mine" ]
	[ "$mine" = "$init" ]
}

@test "sandboxes do not see each other's processes" {
	sbx_create "$A"
	sbx_create "$B"
	sbx_exec "$A" 'sleep 30 >/dev/null 2>&1 & echo started'
	sbx_exec "$B" 'ps 2>/dev/null || cat /proc/[0-9]*/cmdline | tr "\0" " "'
	! grep -q 'sleep 30' <<<"$SBX_OUT" || false
	pa=$(sbx_pid_of "$A")
	pb=$(sbx_pid_of "$B")
	[ "$(readlink /proc/$pa/ns/pid)" != "$(readlink /proc/$pb/ns/pid)" ]
	[ "$(readlink /proc/$pa/ns/net)" != "$(readlink /proc/$pb/ns/net)" ]
	[ "$(readlink /proc/$pa/ns/mnt)" != "$(readlink /proc/$pb/ns/mnt)" ]
}

# Path of PID's cgroup for CONTROLLER (v1) or the unified one (v2), as a
# directory under /sys/fs/cgroup.
host_cgroup_dir() {
	local pid=$1 ctrl=$2 line path
	line=$(grep -E "^[0-9]+:([^:]*,)?$ctrl(,[^:]*)?:" "/proc/$pid/cgroup" | head -n 1)
	if [[ -n "$line" ]]; then
		path=${line#*:*:}
		for d in "/sys/fs/cgroup/$ctrl$path" /sys/fs/cgroup/*"$ctrl"*"$path"; do
			[[ -d "$d" ]] && { echo "$d"; return 0; }
		done
	fi
	line=$(grep -E '^0::' "/proc/$pid/cgroup" | head -n 1)
	if [[ -n "$line" ]]; then
		path=${line#0::}
		for d in "/sys/fs/cgroup$path" "/sys/fs/cgroup/unified$path"; do
			[[ -d "$d" ]] && { echo "$d"; return 0; }
		done
	fi
	return 1
}

@test "cgroup: the init lives in a sandboxfs cgroup named after the sandbox" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	cat "/proc/$pid/cgroup"
	grep -q "sandboxfs" "/proc/$pid/cgroup"
	grep -q -- "$A" "/proc/$pid/cgroup"
}

@test "cgroup: memory=32M and pids=16 are written to the host cgroup" {
	sbx_create_ctl "$A" memory=32M pids=16
	pid=$(sbx_pid_of "$A")
	cat "/proc/$pid/cgroup"
	mem=$(host_cgroup_dir "$pid" memory)
	echo "memory cgroup: $mem"
	if [[ -f "$mem/memory.max" ]]; then
		[ "$(cat "$mem/memory.max")" = 33554432 ]
	else
		[ "$(cat "$mem/memory.limit_in_bytes")" = 33554432 ]
	fi
	pids=$(host_cgroup_dir "$pid" pids)
	echo "pids cgroup: $pids"
	[ "$(cat "$pids/pids.max")" = 16 ]
}
