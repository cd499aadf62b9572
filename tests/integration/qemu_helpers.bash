# Shared by the qemu suites (qemu.bats, qemu_net.bats): skip without QEMU or
# a guest, the teardown that makes sure no QEMU of ours outlives a test, and
# the leak checks. Processes are only signalled by pids read from a sandbox's
# stats, and only while they are still a QEMU.

GUEST_DIR="${SANDBOXFS_GUEST_DIR:-$SBX_REPO/build/guest}"

# teardown_sbx, then any QEMU noted by qemu_pid_of that outlived it (killed
# only while it is still a QEMU), and guest RAM files of sandboxes named $V*.
teardown_sbx_qemu() {
	local pid f
	if [[ -n "${SBX_TMP:-}" && -f "$SBX_TMP/qemu_pids" ]]; then
		cp "$SBX_TMP/qemu_pids" "/tmp/.qemu_pids.$$" 2>/dev/null
	fi
	teardown_sbx
	if [[ -f "/tmp/.qemu_pids.$$" ]]; then
		while read -r pid; do
			[[ "$pid" =~ ^[0-9]+$ ]] || continue
			if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == qemu-system-x86* ]]; then
				echo "teardown: QEMU pid $pid outlived its sandbox; killing it" >&2
				kill -9 "$pid" 2>/dev/null || true
			fi
		done <"/tmp/.qemu_pids.$$"
		rm -f "/tmp/.qemu_pids.$$"
	fi
	if [[ -n "${V:-}" ]]; then
		for f in /dev/shm/sandboxfs-*-"$V"*.ram; do
			[[ -e "$f" ]] || continue
			echo "teardown: removing leftover $f" >&2
			rm -f "$f"
		done
	fi
}

# Host pid of sandbox NAME's QEMU, noted for teardown.
qemu_pid_of() {
	local pid
	pid=$(sbx_key "$MNT/$1/stats" pid) || return 1
	[[ "$pid" =~ ^[0-9]+$ && "$pid" != 0 ]] || return 1
	echo "$pid" >>"$SBX_TMP/qemu_pids"
	echo "$pid"
}

# No QEMU of ours, no guest RAM file, no socket, nothing of NAME on the host.
assert_no_qemu_leaks() {
	local name=$1 pid=$2 i
	for ((i = 0; i < 50; i++)); do
		[[ -e "/proc/$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == qemu-system-x86* ]] || break
		sleep 0.1
	done
	if [[ -e "/proc/$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == qemu-system-x86* ]]; then
		echo "leak: QEMU pid $pid still running" >&2
		return 1
	fi
	if compgen -G "/dev/shm/sandboxfs-*-$name.ram" >/dev/null; then
		echo "leak: guest RAM file: $(ls /dev/shm/sandboxfs-*-"$name".ram)" >&2
		return 1
	fi
	if [[ -d "$STATE/sandboxes/$name" ]] &&
		find "$STATE/sandboxes/$name" -type s | grep -q .; then
		echo "leak: socket in $STATE/sandboxes/$name" >&2
		return 1
	fi
}

# A key of sandbox $1's net file ($2: ip, mac, host_if...), without a /LEN.
net_of() { awk -v k="$2" '$1 == k { sub("/.*", "", $2); print $2 }' "$MNT/$1/net"; }

# old_agent_guest VERSION: a guest dir ($SBX_TMP/guest, on stdout) whose
# agent is this one saying VERSION in its hello, as an agent of before does
# (for SANDBOXFS_GUEST_DIR).
old_agent_guest() {
	local g="$SBX_TMP/guest"
	mkdir -p "$g" || return 1
	cc -O2 -std=gnu11 -static -DAGENT_HELLO_VERSION="$1" -o "$SBX_TMP/agent-v$1" \
		"$SBX_REPO/vmm/agent/sbx-agent.c" "$SBX_REPO/vmm/agent/files.c" \
		"$SBX_REPO/vmm/init/ids.c" "$SBX_REPO/net/link.c" >&2 || return 1
	"$SBX_REPO/vmm/guest/mkinitrd.sh" "$SBX_IMAGES/busybox" "$SBX_TMP/agent-v$1" \
		"$g/initrd.gz" >/dev/null || return 1
	ln -s "$(readlink -f "$GUEST_DIR/vmlinux")" "$g/vmlinux" || return 1
	echo "$g"
}

# Skips the test without qemu-system-x86_64 or a built guest.
qemu_require() {
	command -v qemu-system-x86_64 >/dev/null ||
		skip "qemu-system-x86_64 is not installed (examples/install-deps.sh)"
	[[ -r "$GUEST_DIR/vmlinux" && -r "$GUEST_DIR/initrd.gz" ]] ||
		skip "no guest kernel/initramfs in $GUEST_DIR (make guest)"
}

# --- spares (QEMUs started ahead for a VM's next fork: qemu_fork.bats, qemu_net.bats) ---

# spare_pids NAME: the pids of NAME's spares that wait (or nothing), noted for teardown.
spare_pids() {
	local p
	p=$(sbx_key "$MNT/$1/stats" fork_spare_pids) || return 1
	[[ "$p" == - ]] && return 0
	tr ',' '\n' <<<"$p" | tee -a "$SBX_TMP/qemu_pids"
}

# wait_spare NAME [N]: until NAME has N spares waiting (default 1), none
# starting (bounded: QEMU starts under TCG, two at a time).
wait_spare() {
	local i n=${2:-1}
	for ((i = 0; i < 1200; i++)); do
		[[ "$(sbx_key "$MNT/$1/stats" fork_spares_ready)" == "$n" &&
			"$(sbx_key "$MNT/$1/stats" fork_spares_starting)" == 0 ]] && return 0
		sleep 0.1
	done
	echo "$1: not $n spares after 120 s: $(grep spare "$MNT/$1/stats")" >&2
	tail -n 5 "$SBX_LOG" >&2
	return 1
}

is_qemu() {
	[[ -e "/proc/$1" && "$(cat "/proc/$1/comm" 2>/dev/null)" == qemu-system-x86* ]]
}

# No spare of this daemon left: no dir, no RAM file, no process of those noted.
assert_no_spares() {
	local pid
	for pid in "$@"; do
		wait_not_qemu "$pid" || return 1
	done
	[ -z "$(ls "$STATE/spares" 2>/dev/null)" ] || { echo "left: $(ls "$STATE/spares")" >&2; return 1; }
	assert_no_shm spare-
}

# wait_not_qemu PID: until spare QEMU PID is gone (bounded: 5 s).
wait_not_qemu() {
	local i
	for ((i = 0; i < 50; i++)); do
		is_qemu "$1" || return 0
		sleep 0.1
	done
	echo "spare QEMU pid $1 is still running" >&2
	return 1
}

# assert_no_shm [PREFIX]: no file of this daemon's in /dev/shm (whose name
# after the tag starts with PREFIX).
assert_no_shm() {
	local left
	left=$(ls /dev/shm | grep "^sandboxfs-$(spare_tag)-${1:-}" || true)
	[ -z "$left" ] || { echo "left in /dev/shm: $left" >&2; return 1; }
}

# spare_note_tag NAME: notes this daemon's tag (the prefix of its /dev/shm
# files) from running VM NAME's RAM file, for spare_tag.
spare_note_tag() {
	local ram
	ram=$(basename /dev/shm/sandboxfs-*-"$1".ram)
	ram=${ram#sandboxfs-}
	echo "${ram%%-*}" >"$SBX_TMP/tag"
}

spare_tag() {
	cat "$SBX_TMP/tag"
}

# tap_of_pid PID: the TAP device QEMU PID holds (its tun fd's iff), or nothing.
tap_of_pid() {
	grep -h '^iff:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{ print $2; exit }'
}
