#!/usr/bin/env bash
# A tour of sandboxfs through its files. Usage: quickstart.sh [MOUNTPOINT] (default /sbx).
set -euo pipefail
S=${1:-/sbx}
wait_for() { # NAME STATUS: poll the status file, at most 30 s
	for _ in $(seq 300); do [ "$(cat "$S/$1/status")" = "$2" ] && return 0; sleep 0.1; done
	echo "timed out waiting for $1 to be $2 (error: $(cat "$S/$1/error"))" >&2; return 1
}
run() { echo "+ $*"; "$@"; }
sbx_exec() { # NAME COMMAND: run a shell line inside, print its output and exit code
	local out
	exec 3<>"$S/$1/exec"; printf '%s\n' "$2" >&3; out=$(cat <&3); code=$(cat <&3); exec 3>&-
	echo "$out"; echo "($code)"
}

run mkdir "$S/demo-a"
wait_for demo-a running
run cat "$S/demo-a/status"
run grep -E '^(pid|create_[a-z]+_usec|create_usec) ' "$S/demo-a/stats"
run cat "$S/demo-a/config"
echo "+ run 'uname -n; cat /proc/1/comm; id -u' inside demo-a"
sbx_exec demo-a 'uname -n; cat /proc/1/comm; id -u'
echo "+ echo 'create demo-b image=busybox memory=64M pids=64 cpus=0.5' > $S/ctl"
echo 'create demo-b image=busybox memory=64M pids=64 cpus=0.5' > "$S/ctl"
wait_for demo-b running
echo "+ write a file in demo-a, stop it, start it again: the file is kept"
sbx_exec demo-a 'echo kept > /data.txt'
echo stop > "$S/demo-a/ctl"
run cat "$S/demo-a/status"
echo start > "$S/demo-a/ctl"
wait_for demo-a running
sbx_exec demo-a 'cat /data.txt'
run cat "$S/demo-a/net"
echo "+ fork demo-a: demo-c starts with demo-a's files"
echo 'fork demo-c' > "$S/demo-a/ctl"
wait_for demo-c running
sbx_exec demo-c 'cat /data.txt; hostname'
run grep -E '^(parent|fork_[a-z_]+) ' "$S/demo-c/stats"
echo "+ a background job"
exec 4<>"$S/demo-a/run"; echo 'echo job says hi; sleep 0.2; exit 7' >&4; read -r job <&4; exec 4>&-
for _ in $(seq 50); do [ "$(cat "$S/demo-a/jobs/$job/status")" = running ] || break; sleep 0.1; done
run cat "$S/demo-a/jobs/$job/stdout" "$S/demo-a/jobs/$job/exit_code"
echo "+ a bad command fails in write(2), the reason is in error"
echo frobnicate > "$S/demo-a/ctl" 2>/dev/null || true
run cat "$S/demo-a/error"
run rmdir "$S/demo-a" "$S/demo-b" "$S/demo-c"
run grep -E '^(sandboxes|running|cgroup_version|create_p50_usec|create_p95_usec|stop_p50_usec) ' "$S/stats"
echo "quickstart done"
