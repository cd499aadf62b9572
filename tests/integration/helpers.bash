# Shared helpers for the sandboxfs integration and stress suites (bats).
#
# Each suite starts its own daemon on its own temporary state dir and mount
# point (setup_sbx) and always removes it again (teardown_sbx), also when a
# test failed. Processes are only ever signalled by the PIDs this file
# started (the daemon) or read back from a sandbox's `stats` (its init).
#
# Variables (exported so setup_file/teardown_file and the tests share them):
#   SBX_TMP    temporary dir holding everything below
#   STATE      the daemon's --state dir
#   MNT        the mount point
#   SBX_PID    pid of the daemon we started
#   SBX_LOG    the daemon's stdout+stderr
#   SBX_TAG    a short random tag, to make sandbox names unique per run

SBX_REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
SANDBOXFS="${SANDBOXFS:-$SBX_REPO/build/sandboxfs}"
SBX_IMAGES="${SBX_IMAGES:-$SBX_REPO/build/images}"
# How long to wait for the mount to come up, for a status to be reached,
# for a command inside a sandbox. Bounds only: never asserted on.
SBX_MOUNT_WAIT="${SBX_MOUNT_WAIT:-10}"
SBX_STATUS_WAIT="${SBX_STATUS_WAIT:-30}"
SBX_EXEC_WAIT="${SBX_EXEC_WAIT:-60}"

# ---------------------------------------------------------------- small tools

# Print a diagnostic on fd 3 only when bats asked for verbose output; otherwise
# diagnostics go to stdout and bats shows them when a test fails.
sbx_diag() {
	printf '# %s\n' "$*"
}

# Read a synthetic file with a bound, so a hung daemon fails the test instead
# of hanging the suite.
sbx_cat() {
	timeout 10 cat "$@"
}

# Value of KEY in a flat keyed (`key value`) file.
sbx_key() {
	local file=$1 key=$2
	sbx_cat "$file" | awk -v k="$key" '$1 == k { print $2; found = 1; exit } END { exit !found }'
}

# True when our daemon process still exists (and is not a zombie).
sbx_daemon_alive() {
	[[ -n "${SBX_PID:-}" ]] || return 1
	kill -0 "$SBX_PID" 2>/dev/null || return 1
	local st
	st=$(awk '/^State:/ { print $2 }' "/proc/$SBX_PID/status" 2>/dev/null) || return 1
	[[ "$st" != "Z" ]]
}

# True when MNT is a mount point (any fs type) listed in /proc/mounts.
sbx_is_mounted() {
	local mnt=${1:-$MNT}
	awk -v m="$mnt" '$2 == m { f = 1 } END { exit !f }' /proc/mounts
}

# Remember a pid that belongs to one of our sandboxes, so teardown can make
# sure it is gone (only if it is still an sbx-init).
sbx_note_pid() {
	[[ -n "${SBX_TMP:-}" && -n "${1:-}" ]] && echo "$1" >>"$SBX_TMP/pids"
	return 0
}

# Host pid of sandbox NAME (from its stats), noted for teardown.
sbx_pid_of() {
	local pid
	pid=$(sbx_key "$MNT/$1/stats" pid) || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	sbx_note_pid "$pid"
	echo "$pid"
}

# busybox_with_tool TOOL SRC...: for a suite's setup_file, a copy of the
# busybox image with the static program TOOL built from SRC... at
# /usr/local/bin/TOOL; SBX_IMAGES exported to its images directory (under
# BATS_FILE_TMPDIR), the daemons started next use it.
busybox_with_tool() {
	local tool=$1 img="$BATS_FILE_TMPDIR/images"
	shift
	mkdir -p "$img"
	cp -a "$SBX_REPO/build/images/busybox" "$img/busybox" || return 1
	mkdir -p "$img/busybox/usr/local/bin"
	cc -static -O2 -Wall -Wextra -Werror -o "$img/busybox/usr/local/bin/$tool" "$@" || return 1
	export SBX_IMAGES="$img"
}

# sbx_net_args LETTER: a bridge and private /24 of this test's own (the
# daemon started next uses them): NET_TAG, BR (sbx + LETTER + tag), SUBNET,
# GW, and SBX_NET_ARGS exported. The suite's teardown removes BR.
sbx_net_args() {
	NET_TAG=$(printf '%04x' $((RANDOM % 65536)))
	BR="sbx$1$NET_TAG"
	SUBNET="10.$((200 + RANDOM % 50)).$((RANDOM % 250)).0/24"
	GW="${SUBNET%.0/24}.1"
	export SBX_NET_ARGS="--bridge $BR --subnet $SUBNET"
}

# What the host reads from $1:$2 (one TCP connection).
host_get() {
	python3 -c "
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print(s.recv(100).decode().strip())" "$1" "$2" 2>/dev/null
}

# host_serve IP PORT WORD: a TCP service of the host on IP:PORT that answers
# WORD to every connection, in the background (its pid in LISTENER, for the
# suite's teardown to end); returns once the host reads WORD from it.
host_serve() {
	python3 -c "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[3].encode() + b'\\n'); c.close()" "$1" "$2" "$3" \
		</dev/null >/dev/null 2>&1 3>&- &
	LISTENER=$!
	local _i
	for ((_i = 0; _i < 100; _i++)); do
		[[ "$(host_get "$1" "$2")" == "$3" ]] && return 0
		sleep 0.1
	done
	echo "host_serve: nothing answers on $1:$2" >&2
	return 1
}

# ---------------------------------------------------------------- the daemon

# Start a daemon on $STATE and $MNT (both must exist). Extra args are passed
# before the mount point. Sets SBX_PID. Fails when the mount does not appear.
sbx_start_daemon() {
	if [[ ! -x "$SANDBOXFS" ]]; then
		echo "sandboxfs binary not found at $SANDBOXFS (run make && make image)" >&2
		return 1
	fi
	# 3>&- : a background process holding bats' fd 3 makes bats hang.
	# Networking is off unless a test asks for it (SBX_NET_ARGS; set and
	# empty: the daemon's default bridge and subnet, for suites that run
	# alone): concurrent daemons must not share the default bridge and subnet.
	# SBX_KEEP=1 (sbx_start_daemon_keep): no --stop-on-exit, sandboxes outlive it.
	local stop=--stop-on-exit
	[[ -n "${SBX_KEEP:-}" ]] && stop=""
	# shellcheck disable=SC2086
	"$SANDBOXFS" -f -v --state "$STATE" --images "$SBX_IMAGES" $stop \
		${SBX_NET_ARGS---no-net} "$@" "$MNT" \
		</dev/null >>"$SBX_LOG" 2>&1 3>&- &
	SBX_PID=$!
	export SBX_PID
	echo "$SBX_PID" >>"$SBX_TMP/daemons"
	local i
	for ((i = 0; i < SBX_MOUNT_WAIT * 10; i++)); do
		# stat of ctl alone can be answered from the kernel's attribute
		# cache of a dead (stale) mount: also read a file, and ask statfs.
		if [[ -e "$MNT/ctl" ]] && timeout 5 stat -f "$MNT" >/dev/null 2>&1 &&
			timeout 5 cat "$MNT/stats" >/dev/null 2>&1 && sbx_daemon_alive; then
			return 0
		fi
		if ! sbx_daemon_alive; then
			echo "sandboxfs (pid $SBX_PID) exited before the mount was ready; log:" >&2
			tail -n 30 "$SBX_LOG" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "sandboxfs (pid $SBX_PID): $MNT/ctl did not appear within ${SBX_MOUNT_WAIT}s; log:" >&2
	tail -n 30 "$SBX_LOG" >&2
	return 1
}

# sbx_start_daemon without --stop-on-exit: its sandboxes outlive it.
sbx_start_daemon_keep() {
	SBX_KEEP=1 sbx_start_daemon "$@"
}

# teardown_sbx for suites whose sandboxes outlive a dead daemon: when ours
# does not serve, kill it (by pid) and start one more with START... (it
# re-adopts them), note every init pid, then teardown_sbx removes them all.
teardown_sbx_readopt() {
	if [[ -n "${SBX_TMP:-}" && -d "$STATE/sandboxes" ]] &&
		! { sbx_daemon_alive && timeout 5 cat "$MNT/stats" >/dev/null 2>&1; }; then
		[[ -n "${SBX_PID:-}" ]] && kill -9 "$SBX_PID" 2>/dev/null
		"$@" || echo "teardown: could not start a daemon to remove the sandboxes" >&2
	fi
	local d
	for d in $(sbx_names); do
		sbx_pid_of "$d" >/dev/null 2>&1
	done
	teardown_sbx
}

# The sandboxes in the mount, one name a line (pools/ and images/ are not ones).
sbx_names() {
	local d
	for d in "$MNT"/*/; do
		d=${d%/}
		d=${d##*/}
		[[ "$d" != pools && "$d" != images && -e "$MNT/$d/status" ]] && printf '%s\n' "$d"
	done
	return 0
}

# Create the temp dirs (SBX_TMP, STATE, MNT, SBX_LOG, SBX_TAG), no daemon.
sbx_make_tmp() {
	SBX_TMP=$(mktemp -d /tmp/sbxtest.XXXXXX)
	STATE="$SBX_TMP/state"
	MNT="$SBX_TMP/mnt"
	SBX_LOG="$SBX_TMP/daemon.log"
	SBX_TAG=$(printf '%04x' $((RANDOM % 65536)))
	mkdir -p "$STATE" "$MNT"
	: >"$SBX_TMP/pids"
	: >"$SBX_TMP/daemons"
	export SBX_TMP STATE MNT SBX_LOG SBX_TAG
}

# Create the temp dirs and start a daemon.
setup_sbx() {
	sbx_make_tmp
	sbx_start_daemon "$@"
}

# Unmount MNT and wait (bounded) for our daemon to exit; kill -9 it (by pid)
# if it does not.
sbx_stop_daemon() {
	local i
	if sbx_is_mounted "$MNT"; then
		timeout 10 fusermount3 -u "$MNT" 2>/dev/null ||
			timeout 10 fusermount3 -uz "$MNT" 2>/dev/null ||
			timeout 10 umount -l "$MNT" 2>/dev/null || true
	fi
	if [[ -n "${SBX_PID:-}" ]]; then
		for ((i = 0; i < 150; i++)); do
			kill -0 "$SBX_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$SBX_PID" 2>/dev/null; then
			echo "sandboxfs (pid $SBX_PID) still alive after unmount; killing it" >&2
			kill -9 "$SBX_PID" 2>/dev/null || true
		fi
		wait "$SBX_PID" 2>/dev/null || true
	fi
}

# Remove every sandbox, unmount, stop the daemon, remove the temp dirs.
# Never fails: it is called from teardown, also after a failed test.
teardown_sbx() {
	[[ -n "${SBX_TMP:-}" && -d "$SBX_TMP" ]] || return 0
	local d pid i
	# A failed test: show the end of the daemon log, and keep a copy when
	# SBX_LOG_DIR is set.
	if [[ -z "${BATS_TEST_COMPLETED:-}" && -n "${BATS_TEST_NAME:-}" && -f "$SBX_LOG" ]]; then
		echo "# last daemon log lines ($SBX_LOG):"
		tail -n 40 "$SBX_LOG" | sed 's/^/#   /'
		if [[ -n "${SBX_LOG_DIR:-}" ]]; then
			mkdir -p "$SBX_LOG_DIR" &&
				cp "$SBX_LOG" "$SBX_LOG_DIR/${BATS_TEST_NAME:0:80}.$$.log" 2>/dev/null
		fi
	fi
	if sbx_daemon_alive && [[ -e "$MNT/ctl" ]]; then
		for d in $(sbx_names); do
			d="$MNT/$d"
			pid=$(sbx_key "$d/stats" pid 2>/dev/null) && sbx_note_pid "$pid"
			timeout 30 rmdir "$d" 2>/dev/null || echo "teardown: rmdir $d failed" >&2
		done
	fi
	sbx_stop_daemon
	# Any other daemon this test started (e.g. a restarted one).
	if [[ -f "$SBX_TMP/daemons" ]]; then
		while read -r pid; do
			[[ "$pid" =~ ^[0-9]+$ ]] || continue
			if kill -0 "$pid" 2>/dev/null; then
				echo "teardown: killing leftover daemon pid $pid" >&2
				kill -9 "$pid" 2>/dev/null || true
			fi
		done <"$SBX_TMP/daemons"
	fi
	# A cgroup of ours left frozen (a test froze it by hand, a daemon died
	# mid-fork) holds a kill until it is thawed.
	if [[ -n "${SBX_TAG:-}" ]]; then
		for d in /sys/fs/cgroup/freezer/sandboxfs/*-??"$SBX_TAG"*; do
			[[ -f "$d/freezer.state" ]] && { echo THAWED >"$d/freezer.state"; } 2>/dev/null || true
		done
		for d in /sys/fs/cgroup/sandboxfs/*-??"$SBX_TAG"*; do
			[[ -f "$d/cgroup.freeze" ]] && { echo 0 >"$d/cgroup.freeze"; } 2>/dev/null || true
		done
	fi
	# What is left in the cgroups of this test's daemons: every cgroup a
	# daemon on $STATE makes is named <host tag>-..., sandboxes and pool
	# members alike (members are never in sbx_names nor noted, so a daemon
	# killed or dead before its exit discarded them left them running).
	local htag=""
	[[ -n "${STATE:-}" ]] && htag=$(state_host_tag)
	if [[ -n "$htag" ]]; then
		for d in /sys/fs/cgroup/freezer/sandboxfs/"$htag"-*; do
			[[ -f "$d/freezer.state" ]] && { echo THAWED >"$d/freezer.state"; } 2>/dev/null || true
		done
		for d in /sys/fs/cgroup/*/sandboxfs/"$htag"-* /sys/fs/cgroup/sandboxfs/"$htag"-*; do
			[[ -f "$d/cgroup.procs" ]] || continue
			while read -r pid; do
				[[ "$pid" =~ ^[0-9]+$ ]] || continue
				echo "teardown: pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) outlived its daemon in $d; killing it" >&2
				kill -9 "$pid" 2>/dev/null || true
			done <"$d/cgroup.procs"
		done
	fi
	# Sandbox inits we saw that are still there (only if still an sbx-init).
	if [[ -f "$SBX_TMP/pids" ]]; then
		while read -r pid; do
			[[ "$pid" =~ ^[0-9]+$ ]] || continue
			if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == sbx-init ]]; then
				echo "teardown: sandbox init pid $pid outlived its daemon; killing it" >&2
				kill -9 "$pid" 2>/dev/null || true
			fi
		done <"$SBX_TMP/pids"
	fi
	# Empty cgroups of our sandboxes that a killed daemon left behind (their
	# names carry our tag, or our daemons' host tag: pool members and the
	# cgroups made ahead, <host tag>-.spare-N, cgroup.c); rmdir only removes
	# empty cgroups, and one whose processes were just killed is empty once
	# they are reaped (bounded).
	if [[ -n "${SBX_TAG:-}" ]]; then
		for d in /sys/fs/cgroup/*/sandboxfs/*-??"$SBX_TAG"* /sys/fs/cgroup/sandboxfs/*-??"$SBX_TAG"* \
			${htag:+/sys/fs/cgroup/*/sandboxfs/"$htag"-* /sys/fs/cgroup/sandboxfs/"$htag"-*}; do
			[[ -d "$d" ]] || continue
			for ((i = 0; i < 20; i++)); do
				rmdir "$d" 2>/dev/null && { echo "teardown: removed leftover cgroup $d" >&2; break; }
				sleep 0.1
			done
		done
		# The shared parents, once empty (a daemon still running keeps its own).
		rmdir /sys/fs/cgroup/*/sandboxfs /sys/fs/cgroup/sandboxfs 2>/dev/null || true
	fi
	# Mounts left under our temp dir (deepest first).
	for ((i = 0; i < 3; i++)); do
		local mounts
		mounts=$(awk -v p="$SBX_TMP/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r)
		[[ -n "$mounts" ]] || break
		while read -r d; do
			[[ -n "$d" ]] && umount -l "$d" 2>/dev/null
		done <<<"$mounts"
	done
	if awk -v p="$SBX_TMP/" 'index($2, p) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
		echo "teardown: mounts remain under $SBX_TMP; leaving it in place" >&2
	else
		rm -rf --one-file-system "$SBX_TMP" 2>/dev/null || true
	fi
	unset SBX_PID
	return 0
}

# The daemon's host tag (the prefix of its cgroup names, stable across
# restarts on one state dir), from a sandbox that exists now. Sets SBX_HTAG.
find_host_tag() {
	local d
	d=$(find /sys/fs/cgroup/*/sandboxfs /sys/fs/cgroup/sandboxfs -mindepth 1 -maxdepth 1 \
		-type d -name "*-$1" 2>/dev/null | head -n 1)
	d=${d##*/}
	SBX_HTAG=${d%-"$1"}
}

# The host tag a daemon on $STATE gives its cgroups (engine.c's
# instance_tag: FNV-1a of the state dir), known before any sandbox exists.
state_host_tag() {
	python3 -c 'import sys
h = 2166136261
for c in sys.argv[1].encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
print("%08x" % h)' "$STATE"
}

# ---------------------------------------------------------------- sandboxes

# wait_status NAME WANT [TIMEOUT]: poll NAME/status until it reads WANT.
# WANT may be an alternation like 'stopped|failed'.
wait_status() {
	local name=$1 want=$2 limit=${3:-$SBX_STATUS_WAIT} st="" i
	for ((i = 0; i < limit * 10; i++)); do
		st=$(sbx_cat "$MNT/$name/status" 2>/dev/null)
		if [[ "$st" =~ ^($want)$ ]]; then
			return 0
		fi
		# A sandbox that failed will not become anything else on its own.
		if [[ "$st" == failed && ! "failed" =~ ^($want)$ ]]; then
			break
		fi
		sleep 0.1
	done
	echo "wait_status: $name is '${st}', wanted '$want' (waited up to ${limit}s)" >&2
	echo "  $name/error: $(sbx_cat "$MNT/$name/error" 2>/dev/null)" >&2
	echo "  top error: $(sbx_cat "$MNT/error" 2>/dev/null | tail -n 3)" >&2
	return 1
}

# A key of the warm pool $P's status.
pool_key() { sbx_key "$P/status" "$1"; }

# wait_ready N [SECONDS]: the pool $P holds N ready members, none being made
# or discarded (bounded; a qemu pool's members boot at nice 10, a longer
# bound).
wait_ready() {
	local limit=${2:-$SBX_STATUS_WAIT} i
	for ((i = 0; i < limit * 10; i++)); do
		[[ "$(pool_key ready)" == "$1" && "$(pool_key filling)" == 0 &&
			"$(pool_key discarding)" == 0 ]] && return 0
		sleep 0.1
	done
	echo "pool: wanted $1 ready; status:" >&2
	cat "$P/status" "$P/error" >&2
	return 1
}

# Create NAME with mkdir and wait until it runs.
sbx_create() {
	local name=$1
	mkdir "$MNT/$name" || return 1
	wait_status "$name" running || return 1
	sbx_pid_of "$name" >/dev/null || true
}

# Create NAME through the top-level ctl with options, and wait until it runs.
sbx_create_ctl() {
	local name=$1
	shift
	echo "create $name $*" >"$MNT/ctl" || return 1
	wait_status "$name" running || return 1
	sbx_pid_of "$name" >/dev/null || true
}

# sbx_exec NAME CMD...: run CMD (joined by spaces) in the sandbox through its
# exec file. Prints the combined output; sets SBX_OUT to it and SBX_RC to the
# command's exit code. Returns non-zero only when the exec protocol itself
# failed (open, write, or no `exit_code N` line), not when the command did.
sbx_exec() {
	local name=$1
	shift
	local cmd="$*" fd st rc=0
	SBX_OUT=""
	SBX_RC=""
	exec {fd}<>"$MNT/$name/exec" || {
		echo "sbx_exec: cannot open $MNT/$name/exec" >&2
		return 1
	}
	if ! printf '%s\n' "$cmd" >&"$fd"; then
		echo "sbx_exec: write of the command to $name/exec failed" >&2
		exec {fd}>&-
		return 1
	fi
	SBX_OUT=$(timeout "$SBX_EXEC_WAIT" cat <&"$fd") || rc=$?
	if ((rc != 0)); then
		echo "sbx_exec: reading the output failed or timed out (rc $rc)" >&2
		exec {fd}>&-
		return 1
	fi
	st=$(timeout 10 cat <&"$fd") || rc=$?
	exec {fd}>&-
	if ((rc != 0)) || [[ ! "$st" =~ ^exit_code\ (-?[0-9]+)$ ]]; then
		echo "sbx_exec: expected 'exit_code N' after EOF, got '$st' (rc $rc)" >&2
		printf '%s\n' "$SBX_OUT"
		return 1
	fi
	SBX_RC=${BASH_REMATCH[1]}
	printf '%s\n' "$SBX_OUT"
	return 0
}

# Assert that the daemon is alive and the sandbox NAME is still running and
# answers exec (used after every bad input).
assert_healthy() {
	local name=${1:-}
	if ! sbx_daemon_alive; then
		echo "daemon (pid ${SBX_PID:-?}) is dead; last log lines:" >&2
		tail -n 30 "$SBX_LOG" >&2
		return 1
	fi
	[[ -e "$MNT/ctl" ]] || {
		echo "mount $MNT is gone" >&2
		return 1
	}
	sbx_cat "$MNT/stats" >/dev/null || {
		echo "reading $MNT/stats failed" >&2
		return 1
	}
	if [[ -n "$name" ]]; then
		local st
		st=$(sbx_cat "$MNT/$name/status") || return 1
		[[ "$st" == running ]] || {
			echo "sandbox $name is '$st', not running" >&2
			return 1
		}
		sbx_exec "$name" 'echo alive' >/dev/null || return 1
		[[ "$SBX_OUT" == alive && "$SBX_RC" == 0 ]] || {
			echo "exec in $name gave '$SBX_OUT' rc '$SBX_RC'" >&2
			return 1
		}
	fi
}

# Escape a string for use in an extended regular expression.
sbx_re() {
	printf '%s' "$1" | sed 's/[][\\.^$*+?(){}|]/\\&/g'
}

# Wait (bounded, SBX_REMOVING_WAIT seconds) until the daemon's removal
# backlog is empty (`removing 0` in /sbx/stats): rmdir returns before the
# state dir is removed. Returns 0 at once when no daemon answers (an exited
# daemon removed its backlog before it exited).
SBX_REMOVING_WAIT="${SBX_REMOVING_WAIT:-30}"
sbx_wait_removed() {
	local i n
	for ((i = 0; i < SBX_REMOVING_WAIT * 10; i++)); do
		n=$(sbx_key "$MNT/stats" removing 2>/dev/null) || return 0
		[[ "$n" == 0 ]] && return 0
		sleep 0.1
	done
	echo "sbx_wait_removed: $MNT/stats still says 'removing $n' after ${SBX_REMOVING_WAIT}s" >&2
	return 1
}

# True once host network device IF is gone (bounded, 10 s): a removed
# sandbox's goes after rmdir returns, off its path.
sbx_wait_link_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		ip link show "$1" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	echo "host device $1 still there after 10 s" >&2
	return 1
}

# Leak checks after a sandbox was removed. Args: NAME [PID].
# Prints what leaked and returns non-zero if anything did.
sbx_leaks() {
	local name=$1 pid=${2:-} bad=0 d
	sbx_wait_removed || bad=1
	if [[ -e "$MNT/$name" ]]; then
		echo "leak: $MNT/$name still exists"
		bad=1
	fi
	# Any mount whose line names this sandbox's state dir (overlay upper/work,
	# merged dir, bind mounts).
	if grep -E -q -- "$(sbx_re "$STATE/sandboxes/$name")([/ ,:]|\$)" /proc/mounts; then
		echo "leak: mount referencing $STATE/sandboxes/$name:"
		grep -F -- "$STATE/sandboxes/$name" /proc/mounts
		bad=1
	fi
	for d in /sys/fs/cgroup/*/sandboxfs /sys/fs/cgroup/sandboxfs; do
		[[ -d "$d" ]] || continue
		if find "$d" -mindepth 1 -maxdepth 3 -type d -name "*$name*" 2>/dev/null | grep -q .; then
			echo "leak: cgroup dir for $name:"
			find "$d" -mindepth 1 -maxdepth 3 -type d -name "*$name*"
			bad=1
		fi
	done
	if [[ -e "$STATE/sandboxes/$name" ]]; then
		echo "leak: state dir $STATE/sandboxes/$name"
		bad=1
	fi
	# Renamed into the trash by rmdir (<hex>-<seq>-NAME) and not removed.
	if compgen -G "$STATE/trash/*-$name" >/dev/null; then
		echo "leak: $(compgen -G "$STATE/trash/*-$name" | head -3 | tr '\n' ' ')"
		bad=1
	fi
	if [[ -n "$pid" && -e "/proc/$pid" ]] &&
		[[ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" != Z ]] &&
		[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == sbx-init ]]; then
		echo "leak: sandbox init pid $pid still running"
		bad=1
	fi
	# A removal holds the sandbox's mount namespace (its root's unmount)
	# for the trash, which lets it go before removing the state dir.
	if sbx_daemon_alive && ls -l "/proc/$SBX_PID/fd" 2>/dev/null | grep -q 'mnt:\['; then
		echo "leak: the daemon holds a mount namespace: $(ls -l "/proc/$SBX_PID/fd" | grep 'mnt:\[')"
		bad=1
	fi
	return $bad
}

# The stress suites' background clients: each records its pid with
# sbx_bg_note; sbx_bg_kill (teardown) ends and collects them.
sbx_bg_note() {
	echo "$1" >>"$SBX_TMP/bg"
}

sbx_bg_kill() {
	local pid
	[[ -f "${SBX_TMP:-/nonexistent}/bg" ]] || return 0
	while read -r pid; do
		[[ "$pid" =~ ^[0-9]+$ ]] && kill "$pid" 2>/dev/null
	done <"$SBX_TMP/bg"
	while read -r pid; do
		[[ "$pid" =~ ^[0-9]+$ ]] && wait "$pid" 2>/dev/null
	done <"$SBX_TMP/bg"
	return 0
}

# What is left on the host of a whole run's sandboxes, all named PREFIX-*
# (nothing: success), once the removal backlog is empty: cgroups, inits (in
# such a cgroup, or children of our daemon), state dirs, layers and trash
# entries under $STATE, host veth ends of the
# daemon's tag (SBX_HTAG, find_host_tag), mounts naming $STATE, /dev/shm
# files (qemu guest RAM).
sbx_run_leaks() {
	local p=$1 bad=0 d n pid
	sbx_wait_removed || bad=1
	for d in /sys/fs/cgroup/*/sandboxfs /sys/fs/cgroup/sandboxfs; do
		[[ -d "$d" ]] || continue
		n=$(find "$d" -mindepth 1 -maxdepth 3 -type d -name "*-$p-*" 2>/dev/null | wc -l)
		if ((n > 0)); then
			echo "leak: $n cgroup dirs under $d:"
			find "$d" -mindepth 1 -maxdepth 3 -type d -name "*-$p-*" | head -5
			bad=1
		fi
	done
	for pid in $(pgrep -x sbx-init); do
		if [[ "$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" == "${SBX_PID:-x}" ]] ||
			grep -q -- "-$p-" "/proc/$pid/cgroup" 2>/dev/null; then
			[[ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" == Z ]] && continue
			echo "leak: sbx-init pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))"
			bad=1
		fi
	done
	for d in sandboxes layers trash; do
		n=$(find "$STATE/$d" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		if ((n > 0)); then
			echo "leak: $n in $STATE/$d: $(ls "$STATE/$d" | head -5 | tr '\n' ' ')"
			bad=1
		fi
	done
	# Host ends of veth pairs (named sbx<first 4 of the tag>-<n>).
	if [[ -n "${SBX_HTAG:-}" ]]; then
		n=$(ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | grep -c "^sbx${SBX_HTAG:0:4}-" || true)
		if ((n > 0)); then
			echo "leak: $n host veth devices sbx${SBX_HTAG:0:4}-*"
			bad=1
		fi
	fi
	n=$(grep -F -c -- "$STATE" /proc/mounts || true)
	if ((n > 0)); then
		echo "leak: $n mounts reference $STATE"
		bad=1
	fi
	n=$(find /dev/shm -maxdepth 1 -name "*-$p-*" 2>/dev/null | wc -l)
	if ((n > 0)); then
		echo "leak: $n /dev/shm files"
		bad=1
	fi
	return $bad
}

# Wait (bounded) until sbx_leaks NAME PID reports nothing; on failure print
# the leaks.
wait_no_leaks() {
	local i out
	for ((i = 0; i < 50; i++)); do
		out=$(sbx_leaks "$@") && return 0
		sleep 0.1
	done
	printf '%s\n' "$out" >&2
	return 1
}

# Run a shell snippet that writes to a file and capture the errno text:
# `run sbx_write FILE TEXT` -> status != 0 and "$output" holds bash's message.
sbx_write() {
	local file=$1 text=$2
	timeout 20 bash -c 'printf "%s\n" "$2" > "$1"' _ "$file" "$text"
}

# Assert the last `run` failed with an error text (e.g. "Invalid argument",
# or alternatives "Invalid argument|File exists").
assert_fails_with() {
	local want=$1
	if [[ "$status" -eq 0 ]]; then
		echo "expected failure with '$want', but it succeeded; output: $output" >&2
		return 1
	fi
	# WANT may list alternatives separated by '|'.
	local alt found=0
	local IFS='|'
	for alt in $want; do
		[[ "$output" == *"$alt"* ]] && found=1
	done
	unset IFS
	if ((!found)); then
		echo "expected '$want', got status $status and output: $output" >&2
		return 1
	fi
	if [[ "$output" == *"Function not implemented"* ]]; then
		echo "handler answered ENOSYS: $output" >&2
		return 1
	fi
}

# Assert the last `run` failed (any errno) without ENOSYS or a timeout.
assert_fails() {
	if [[ "$status" -eq 0 ]]; then
		echo "expected failure, but it succeeded; output: $output" >&2
		return 1
	fi
	if [[ "$status" -eq 124 || "$status" -eq 137 ]]; then
		echo "timed out (status $status): $output" >&2
		return 1
	fi
	if [[ "$output" == *"Function not implemented"* ]]; then
		echo "handler answered ENOSYS: $output" >&2
		return 1
	fi
}

# ---------------------------------------------------------------- jobs

# sbx_run NAME CMD: start a background job; prints its id. The id is read with
# one read(2) (head), see the byte-by-byte test below for bash's `read`.
sbx_run() {
	local name=$1 cmd=$2 fd id
	exec {fd}<>"$MNT/$name/run" || return 1
	printf '%s\n' "$cmd" >&"$fd" || {
		exec {fd}>&-
		return 1
	}
	id=$(timeout 10 head -n 1 <&"$fd" 2>/dev/null)
	exec {fd}>&-
	[[ "$id" =~ ^[0-9]+$ ]] || {
		echo "run: expected a job id, got '$id'" >&2
		return 1
	}
	echo "$id"
}

# wait_job NAME N WANT: wait (bounded) until jobs/N/status matches WANT.
wait_job() {
	local name=$1 n=$2 want=$3 st="" i
	for ((i = 0; i < SBX_STATUS_WAIT * 10; i++)); do
		st=$(sbx_cat "$MNT/$name/jobs/$n/status" 2>/dev/null)
		[[ "$st" =~ ^($want)$ ]] && return 0
		sleep 0.1
	done
	echo "job $name/$n is '$st', wanted '$want'" >&2
	return 1
}

# wait_job_out NAME N TEXT: until job N's stdout holds TEXT (bounded, 30 s;
# prints what it holds when it never does).
wait_job_out() {
	local i
	for ((i = 0; i < 300; i++)); do
		[[ "$(job_file "$1" "$2" stdout)" == *"$3"* ]] && return 0
		sleep 0.1
	done
	echo "job $1/$2's stdout never held '$3'; it is:" >&2
	job_file "$1" "$2" stdout | od -c | head -n 20 >&2
	return 1
}

# tty_ctrl_c NAME: ^C written to a terminal's stdin ends the job's sleep
# (exit 130, through the line discipline); prints the job's id.
tty_ctrl_c() {
	local n
	n=$(sbx_run "$1" 'tty=80x24 echo ready; sleep 100') && wait_job_out "$1" "$n" ready || return 1
	printf '\003' >"$MNT/$1/jobs/$n/stdin"
	wait_job "$1" "$n" 'killed|exited' || return 1
	[ "$(sbx_cat "$MNT/$1/jobs/$n/exit_code")" -eq 130 ] || {
		echo "job $1/$n: exit code $(sbx_cat "$MNT/$1/jobs/$n/exit_code") after ^C" >&2
		return 1
	}
	echo "$n"
}

# tty_eof NAME: `eof` on a terminal's ctl ends cat's input after the line
# written before it.
tty_eof() {
	local n
	n=$(sbx_run "$1" 'tty=80x24 stty -echo; echo go; cat; echo "cat $?"') &&
		wait_job_out "$1" "$n" go || return 1
	printf 'x\n' >"$MNT/$1/jobs/$n/stdin"
	echo eof >"$MNT/$1/jobs/$n/ctl"
	wait_job "$1" "$n" exited || return 1
	[ "$(job_file "$1" "$n" stdout)" = $'go\r\nx\r\ncat 0\r' ] || {
		job_file "$1" "$n" stdout | od -c >&2
		return 1
	}
}

# sbx_shell_piped NAME: examples/sbx shell on NAME with input that is not a
# terminal: sh runs it on a terminal of 80x24 and ends at eof (^D); the
# shell's exit status is sbx shell's.
sbx_shell_piped() {
	local out rc=0
	out=$(timeout 120 bash -c 'printf "echo hi; test -t 0 && echo tty; stty size\n" | SBX=$1 "$2" shell "$3"' \
		_ "$MNT" "$SBX_REPO/examples/sbx" "$1") || rc=$?
	[[ $rc -eq 0 && "$out" == *$'hi\r\ntty\r\n24 80\r\n'* ]] || {
		echo "sbx shell $1: status $rc, output: $out" >&2
		return 1
	}
	rc=0
	SBX=$MNT timeout 120 "$SBX_REPO/examples/sbx" shell "$1" -- sh -c 'exit 7' </dev/null || rc=$?
	[ "$rc" -eq 7 ] || { echo "sbx shell $1 -- sh -c 'exit 7': status $rc" >&2; return 1; }
}

# A job file (nonblocking: never waits at the end of the output).
job_file() {
	python3 - "$MNT/$1/jobs/$2/$3" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
out = b""
while True:
    b = os.read(fd, 65536)
    if not b:
        break
    out += b
sys.stdout.buffer.write(out)
EOF
}

# files_round_trip NAME: on NAME/files (either backend: files.bats,
# qemu_files.bats), mkdir and put with modes; the bytes and modes as NAME
# sees them; get gives the same bytes back.
files_round_trip() {
	local req="$SBX_REPO/tests/integration/files_req.py" f="$MNT/$1/files" out
	printf 'a\0b\0\377\n' >"$SBX_TMP/bin"
	out=$(timeout 120 /usr/bin/python3 "$req" "$f" "mkdir mode=0750 /work") && [ -z "$out" ] ||
		{ echo "mkdir: $out" >&2; return 1; }
	out=$(timeout 120 /usr/bin/python3 "$req" "$f" "put size=6 mode=0640 /work/bin" "$SBX_TMP/bin") ||
		{ echo "put: $out" >&2; return 1; }
	sbx_exec "$1" 'stat -c "%a %u %g %s" /work /work/bin; od -An -c /work/bin'
	[[ "$SBX_OUT" == "750 0 0 "* && "$SBX_OUT" == *"640 0 0 6"* &&
		"$SBX_OUT" == *'a  \0   b  \0 377  \n'* ]] || { echo "in $1: $SBX_OUT" >&2; return 1; }
	timeout 120 /usr/bin/python3 "$req" "$f" "get /work/bin" >"$SBX_TMP/back" &&
		cmp "$SBX_TMP/bin" "$SBX_TMP/back"
}
