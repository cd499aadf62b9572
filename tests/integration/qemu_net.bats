#!/usr/bin/env bats
# qemu sandboxes on the network: a VM gets a TAP on the daemon's bridge with
# the same identity, anti-spoofing filter and policy as an ns sandbox's veth;
# the guest configures eth0 itself; a live-fork child takes its own MAC and
# address; rate= shapes both ways (what a VM sends through an ifb); rmdir
# leaves no TAP and no ifb. Each test has its own bridge and private /24
# (as net.bats); traffic goes only to addresses made here. Few VM boots: TCG.

load helpers
load qemu_helpers

setup() {
	qemu_require
	sbx_net_args q
	setup_sbx
	V="qn${SBX_TAG}"
}

teardown() {
	if [[ -n "${LISTENER:-}" ]]; then # a host service a test started, by its pid
		kill "$LISTENER" 2>/dev/null || true
		wait "$LISTENER" 2>/dev/null || true
	fi
	teardown_sbx_qemu
	ip link del "$BR" 2>/dev/null || true
}

# An ICMP echo from the host to $1 (this machine has no ping binary): true
# when a reply comes within a few tries.
host_ping() {
	python3 - "$1" <<'EOF'
import os, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.5)
ident = os.getpid() & 0xffff
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    return ~(t + (t >> 16)) & 0xffff
for seq in range(10):
    body = struct.pack("!HH", ident, seq) + b"sandboxfs"
    s.sendto(struct.pack("!BBH", 8, 0, csum(struct.pack("!BBH", 8, 0, 0) + body + b"\0")) + body,
             (sys.argv[1], 0))
    end = time.time() + 0.5
    while time.time() < end:
        try:
            data, addr = s.recvfrom(200)
        except socket.timeout:
            break
        if addr[0] == sys.argv[1] and data[20] == 0 and struct.unpack("!H", data[24:26])[0] == ident:
            sys.exit(0)
sys.exit(1)
EOF
}

# link_index_gone IDX: no link of index IDX is left (a spare's TAP: its
# sbx.spareN name may be another spare's by now, an index is not reused);
# waits a little for the daemon to close its fd after the QEMU's reaping.
link_index_gone() {
	local i
	for ((i = 0; i < 50; i++)); do
		ip -o link show | grep -q "^$1: " || return 0
		sleep 0.1
	done
	if ip -o link show | grep -q "^$1: "; then
		ip -o link show | grep "^$1: " >&2
		return 1
	fi
}

# gateway_service_policy NAME TEXT: a host service on the gateway (answering
# TEXT, on $port, which it sets) is closed to NAME by default and open once
# NAME's policy allows it.
gateway_service_policy() {
	port=$((20000 + RANDOM % 20000))
	host_serve "$GW" "$port" "$2"
	sbx_exec "$1" "echo x | nc -w 2 $GW $port"
	[[ "$SBX_OUT" != *"$2"* ]]
	sbx_write "$MNT/$1/ctl" "allow $GW tcp $port"
	sbx_exec "$1" "echo x | nc -w 2 $GW $port"
	[[ "$SBX_OUT" == *"$2"* ]]
}

# The VM's eth0 as the guest sees it: "MAC IP/LEN" (and its default route).
guest_if() {
	sbx_exec "$1" 'cat /sys/class/net/eth0/address; ip -4 addr show eth0 | grep -o "inet [^ ]*"; ip route | grep default' >/dev/null
}

@test "qemu net: a VM gets its address on a TAP, answers the host, obeys the policy; rmdir leaves no TAP" {
	sbx_create_ctl "$V" backend=qemu
	qemu_pid_of "$V" >/dev/null
	ip=$(net_of "$V" ip)
	mac=$(net_of "$V" mac)
	tap=$(net_of "$V" host_if)
	# The host end is a TAP (vnet header on, not persistent) on our bridge, with the filter.
	ip -d link show "$tap" | grep -q "master $BR"
	ip -d link show "$tap" | grep -q 'tun type tap pi off vnet_hdr on persist off'
	tc filter show dev "$tap" ingress | grep -q sbx_antispoof
	guest_if "$V"
	[ "$SBX_RC" -eq 0 ]
	[[ "$SBX_OUT" == "$mac"$'\n'"inet $ip/24"$'\n'"default via $GW dev eth0"* ]]
	host_ping "$ip"
	sbx_exec "$V" "ping -c 1 -W 3 $GW"
	[ "$SBX_RC" -eq 0 ]
	# A host service on the gateway: closed by default, as for ns; open once allowed.
	gateway_service_policy "$V" hello-vm

	# A daemon killed -9 leaves the VM and its TAP; the new one re-adopts both.
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	ip link show "$tap" >/dev/null
	sbx_start_daemon
	[ "$(sbx_cat "$MNT/$V/status")" = running ]
	[ "$(net_of "$V" ip)" = "$ip" ]
	host_ping "$ip"
	grep -qx "allow $GW/32 tcp $port" "$MNT/$V/net"

	pid=$(qemu_pid_of "$V")
	rmdir "$MNT/$V"
	assert_no_qemu_leaks "$V" "$pid"
	run ip link show "$tap"
	[ "$status" -ne 0 ]
}

@test "qemu net: a VM and an ns sandbox are isolated by default and reach each other once allowed" {
	N="${V}ns"
	sbx_create "$N"
	sbx_create_ctl "$V" backend=qemu
	qemu_pid_of "$V" >/dev/null
	vip=$(net_of "$V" ip)
	nip=$(net_of "$N" ip)
	sbx_exec "$V" "ping -c 1 -W 2 $nip"
	[ "$SBX_RC" -ne 0 ]
	sbx_exec "$N" "ping -c 1 -W 2 $vip"
	[ "$SBX_RC" -ne 0 ]
	sbx_write "$MNT/$V/ctl" "allow sandbox $N"
	sbx_exec "$V" "ping -c 1 -W 3 $nip"
	[ "$SBX_RC" -eq 0 ]
	sbx_write "$MNT/$N/ctl" "allow sandbox $V"
	sbx_exec "$N" "ping -c 1 -W 3 $vip"
	[ "$SBX_RC" -eq 0 ]
}

@test "qemu net: a live-fork child has its own MAC and address on its own TAP, and is reachable" {
	sbx_create_ctl "$V" backend=qemu
	qemu_pid_of "$V" >/dev/null
	C="${V}c"
	sbx_write "$MNT/$V/ctl" "fork $C"
	wait_status "$C" running 60
	qemu_pid_of "$C" >/dev/null
	[ "$(net_of "$C" ip)" != "$(net_of "$V" ip)" ]
	[ "$(net_of "$C" mac)" != "$(net_of "$V" mac)" ]
	[ "$(net_of "$C" host_if)" != "$(net_of "$V" host_if)" ]
	ip -d link show "$(net_of "$C" host_if)" | grep -q "master $BR"
	guest_if "$C"
	[ "$SBX_RC" -eq 0 ]
	[[ "$SBX_OUT" == "$(net_of "$C" mac)"$'\n'"inet $(net_of "$C" ip)/24"$'\n'"default via $GW dev eth0"* ]]
	host_ping "$(net_of "$C" ip)"
	sbx_exec "$C" "ping -c 1 -W 3 $GW"
	[ "$SBX_RC" -eq 0 ]
	# The source keeps its own identity.
	guest_if "$V"
	[[ "$SBX_OUT" == "$(net_of "$V" mac)"$'\n'"inet $(net_of "$V" ip)/24"* ]]
	host_ping "$(net_of "$V" ip)"
	taps="$(net_of "$V" host_if) $(net_of "$C" host_if)"
	rmdir "$MNT/$C" "$MNT/$V"
	for t in $taps; do
		run ip link show "$t"
		[ "$status" -ne 0 ]
	done
}

@test "qemu net: a VM's next fork takes a QEMU started ahead with a TAP: own MAC, address, filter, policy; nothing left" {
	sbx_create_ctl "$V" backend=qemu
	src_pid=$(qemu_pid_of "$V")
	spare_note_tag "$V"
	A="${V}a" B="${V}b"
	sbx_write "$MNT/$V/ctl" "fork $A"
	wait_status "$A" running 60
	qemu_pid_of "$A" >/dev/null
	[ "$(sbx_key "$MNT/$A/stats" fork_start)" = cold ]
	# The spare's TAP: made ahead, with no identity: on no bridge, down, no filter.
	wait_spare "$V"
	spare=$(spare_pids "$V")
	stap=$(tap_of_pid "$spare")
	[[ "$stap" == sbx.spare* ]]
	sidx=$(cat "/sys/class/net/$stap/ifindex")
	run ip -d link show "$stap"
	[[ "$output" != *master* && "$output" != *",UP"* ]]
	[ -z "$(tc filter show dev "$stap" ingress)" ]

	sbx_write "$MNT/$V/ctl" "fork $B"
	wait_status "$B" running 60
	[ "$(sbx_key "$MNT/$B/stats" fork_start)" = ahead ]
	bpid=$(qemu_pid_of "$B")
	[ "$bpid" = "$spare" ]
	# Its own identity, not the parent's nor the first child's; the TAP is renamed and wired.
	bip=$(net_of "$B" ip) bmac=$(net_of "$B" mac) btap=$(net_of "$B" host_if)
	for k in "$V" "$A"; do
		[ "$(net_of "$k" ip)" != "$bip" ]
		[ "$(net_of "$k" mac)" != "$bmac" ]
	done
	# The same device (its index), renamed: the next spare may reuse the old name.
	[ "$(tap_of_pid "$spare")" = "$btap" ]
	[ "$(cat "/sys/class/net/$btap/ifindex")" = "$sidx" ]
	ip -d link show "$btap" | grep -q "master $BR"
	tc filter show dev "$btap" ingress | grep -q sbx_antispoof
	guest_if "$B"
	[ "$SBX_RC" -eq 0 ]
	[[ "$SBX_OUT" == "$bmac"$'\n'"inet $bip/24"$'\n'"default via $GW dev eth0"* ]]
	host_ping "$bip"
	# The policy: a host service is closed by default, open once allowed.
	gateway_service_policy "$B" hello-spare

	# kill -9 of the daemon with a spare waiting: the next one ends its QEMU, and its TAP goes.
	wait_spare "$V"
	spare=$(spare_pids "$V")
	stap=$(tap_of_pid "$spare")
	[[ "$stap" == sbx.spare* ]]
	sidx=$(cat "/sys/class/net/$stap/ifindex")
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	sbx_start_daemon
	assert_no_spares "$spare"
	link_index_gone "$sidx"
	[ "$(sbx_key "$MNT/$B/stats" pid)" = "$bpid" ]
	host_ping "$bip"

	# A fork after the restart (cold), whose spare waits; then rmdir of all:
	# no QEMU, no TAP, no spare left.
	C="${V}c"
	sbx_write "$MNT/$V/ctl" "fork $C"
	wait_status "$C" running 60
	qemu_pid_of "$C" >/dev/null
	wait_spare "$V"
	spare=$(spare_pids "$V")
	stap=$(tap_of_pid "$spare")
	[[ "$stap" == sbx.spare* ]]
	sidx=$(cat "/sys/class/net/$stap/ifindex")
	taps="$(net_of "$V" host_if) $(net_of "$A" host_if) $btap $(net_of "$C" host_if)"
	for k in "$A" "$B" "$C" "$V"; do
		rmdir "$MNT/$k"
	done
	assert_no_qemu_leaks "$V" "$src_pid"
	assert_no_spares "$spare"
	for t in $taps; do
		run ip link show "$t"
		[ "$status" -ne 0 ]
	done
	link_index_gone "$sidx"
}

@test "qemu net: rate= limits what a VM sends (its TAP's ingress through an ifb) and receives; rmdir leaves no ifb" {
	N="${V}ns"
	sbx_create "$N"
	sbx_create_ctl "$V" backend=qemu rate=1mbit
	qemu_pid_of "$V" >/dev/null
	tap=$(net_of "$V" host_if)
	ifb="i${tap:1}"
	for _ in $(seq 100); do
		grep -q '^rate_state applied$' "$MNT/$V/net" && break
		sleep 0.1
	done
	grep -q '^rate_state applied$' "$MNT/$V/net"
	# Towards the VM: a tbf on its TAP; from it: the TAP's ingress redirects
	# to the ifb, whose root is the same tbf.
	tc qdisc show dev "$tap" | grep -q 'tbf.*rate 1Mbit'
	tc qdisc show dev "$ifb" | grep -q 'tbf.*rate 1Mbit'
	tc filter show dev "$tap" ingress | grep -q "Redirect to device $ifb"
	# 768 KiB from the VM to the ns sandbox: all of it delivered, every byte
	# through the ifb, and its tbf held some back (overlimits: 768 KiB is far
	# above its 16 KiB burst at 1 Mbit/s).
	nip=$(net_of "$N" ip)
	sbx_write "$MNT/$V/ctl" "allow sandbox $N"
	port=$((20000 + RANDOM % 20000))
	j=$(sbx_run "$N" "nc -l -p $port > /tmp/got")
	sleep 0.5
	sbx_exec "$V" "dd if=/dev/zero bs=1024 count=768 2>/dev/null | nc -w 2 $nip $port"
	[ "$SBX_RC" -eq 0 ]
	wait_job "$N" "$j" exited
	sbx_exec "$N" 'wc -c < /tmp/got'
	[ "$SBX_OUT" -eq 786432 ]
	sent=$(tc -s qdisc show dev "$ifb" | awk '$1 == "Sent" { print $2; exit }')
	((sent >= 786432))
	over=$(tc -s qdisc show dev "$ifb" | grep -o 'overlimits [0-9]*' | head -1)
	((${over#overlimits } > 0))
	rmdir "$MNT/$V"
	run ip link show "$ifb"
	[ "$status" -ne 0 ]
	run ip link show "$tap"
	[ "$status" -ne 0 ]
}
