#!/usr/bin/env bats
# Networking: each sandbox on its own veth on a bridge this test makes (its
# own name and a private /24), addresses from the allocator, spoofing blocked,
# everything removed afterwards. Traffic only between addresses made here.

load helpers

setup() {
	NET_TAG=$(printf '%04x' $((RANDOM % 65536)))
	BR="sbxb$NET_TAG"
	SUBNET_OCTET=$((200 + RANDOM % 50))
	SUBNET="10.$SUBNET_OCTET.$((RANDOM % 250)).0/24"
	GW="${SUBNET%.0/24}.1"
	export SBX_NET_ARGS="--bridge $BR --subnet $SUBNET"
	setup_sbx
	A="nt${SBX_TAG}a"
	B="nt${SBX_TAG}b"
}

teardown() {
	teardown_sbx
	ip link del "$BR" 2>/dev/null || true
}

ip_of() { awk '$1 == "ip" { sub("/.*", "", $2); print $2 }' "$MNT/$1/net"; }
mac_of() { awk '$1 == "mac" { print $2 }' "$MNT/$1/net"; }
hostif_of() { awk '$1 == "host_if" { print $2 }' "$MNT/$1/net"; }

@test "net: a sandbox has an address, gateway, MAC and host device" {
	sbx_create "$A"
	run cat "$MNT/$A/net"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ip ${SUBNET%.0/24}."*/24* ]]
	[[ "$output" == *"gateway $GW"* ]]
	[[ "$output" == *"mac 02:"* ]]
	[[ "$output" == *"host_if sbx"* ]]
	hif=$(hostif_of "$A")
	ip link show "$hif" | grep -q "master $BR"
	[ "$(sbx_key "$MNT/$A/stats" create_net_usec)" -gt 0 ]
	sbx_exec "$A" 'ip -o addr show eth0'
	[[ "$SBX_OUT" == *"$(ip_of "$A")"* ]]
}

@test "net: two sandboxes talk (ping and TCP), both reach the gateway" {
	sbx_create "$A"
	sbx_create "$B"
	bip=$(ip_of "$B")
	sbx_exec "$A" "ping -c1 -W2 $bip"
	[ "$SBX_RC" = 0 ]
	sbx_exec "$A" "ping -c1 -W2 $GW"
	[ "$SBX_RC" = 0 ]
	exec 4<>"$MNT/$B/run"
	echo "nc -l -p 8080 -e echo hello-from-b" >&4
	job=$(cat <&4)
	exec 4>&-
	for _ in $(seq 50); do
		sbx_exec "$A" "echo x | nc -w1 $bip 8080"
		[[ "$SBX_OUT" == *hello-from-b* ]] && break
		sleep 0.1
	done
	[[ "$SBX_OUT" == *hello-from-b* ]]
	[ -n "$job" ]
}

@test "net: the host reaches a sandbox on its address" {
	sbx_create "$A"
	aip=$(ip_of "$A")
	exec 4<>"$MNT/$A/run"
	echo "nc -l -p 9090 -e echo hello-host" >&4
	cat <&4 >/dev/null
	exec 4>&-
	for _ in $(seq 50); do
		out=$(python3 -c "
import socket
s = socket.create_connection(('$aip', 9090), timeout=2)
print(s.recv(100).decode().strip())" 2>/dev/null) && break
		sleep 0.1
	done
	[ "$out" = hello-host ]
}

@test "net: net=off has only lo" {
	echo "create $A net=off" >"$MNT/ctl"
	wait_status "$A" running
	run cat "$MNT/$A/net"
	[[ "$output" == "net off" ]]
	sbx_exec "$A" 'cat /proc/net/dev'
	[[ "$SBX_OUT" == *"lo:"* ]]
	[[ "$SBX_OUT" != *"eth0"* ]]
}

@test "net: a sandbox cannot take another address or see another's interfaces" {
	sbx_create "$A"
	sbx_create "$B"
	bip=$(ip_of "$B")
	sbx_exec "$A" "ip addr add $bip/24 dev eth0"
	[ "$SBX_RC" != 0 ]
	sbx_exec "$A" "ip link set eth0 address 02:00:00:00:00:99"
	[ "$SBX_RC" != 0 ]
	sbx_exec "$A" "arping -c1 -s $bip $GW"
	[ "$SBX_RC" != 0 ]
	sbx_exec "$A" 'cat /proc/net/dev'
	[[ "$SBX_OUT" != *"$(hostif_of "$B")"* ]]
	[ "$(grep -c eth0 <<<"$SBX_OUT")" -eq 1 ]
}

@test "net: rate= is applied after the sandbox runs, and shown" {
	echo "create $A rate=10mbit" >"$MNT/ctl"
	wait_status "$A" running
	for _ in $(seq 100); do
		grep -q '^rate_state applied' "$MNT/$A/net" && break
		sleep 0.1
	done
	grep -q '^rate 10000000$' "$MNT/$A/net"
	grep -q '^rate_state applied$' "$MNT/$A/net"
	tc qdisc show dev "$(hostif_of "$A")" | grep -q tbf
	run bash -c "echo 'create ${B} rate=fast' > $MNT/ctl"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Invalid argument"* ]]
}

@test "net: a burst gets distinct addresses and MACs, all reach the gateway; rmdir leaves no device" {
	n=${NET_BURST_N:-100}
	names=()
	for i in $(seq "$n"); do names+=("${A}x$i"); done
	pids=()
	for nm in "${names[@]}"; do mkdir "$MNT/$nm" & pids+=($!); done
	wait "${pids[@]}" # (a bare wait would wait for the daemon too)
	for nm in "${names[@]}"; do wait_status "$nm" running 120; done
	ips=$(for nm in "${names[@]}"; do ip_of "$nm"; done | sort | uniq | wc -l)
	macs=$(for nm in "${names[@]}"; do mac_of "$nm"; done | sort | uniq | wc -l)
	[ "$ips" -eq "$n" ]
	[ "$macs" -eq "$n" ]
	fails=0
	for nm in "${names[@]}"; do
		sbx_exec "$nm" "ping -c1 -W2 $GW" >/dev/null
		[ "$SBX_RC" = 0 ] || fails=$((fails + 1))
	done
	[ "$fails" -eq 0 ]
	prefix=$(hostif_of "${names[0]}")
	prefix=${prefix%-*}-
	pids=()
	for nm in "${names[@]}"; do rmdir "$MNT/$nm" & pids+=($!); done
	wait "${pids[@]}"
	for _ in $(seq 100); do
		[ "$(ip -o link | grep -c "$prefix")" -eq 0 ] && break
		sleep 0.1
	done
	[ "$(ip -o link | grep -c "$prefix")" -eq 0 ]
	[ "$(ls /sys/class/net/$BR/brif | wc -l)" -eq 0 ]
}

@test "net: a restarted daemon keeps every address and never hands one out twice" {
	sbx_create "$A"
	aip=$(ip_of "$A")
	pid=$(sbx_pid_of "$A")
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$SBX_PID" 2>/dev/null || break; sleep 0.1; done
	sbx_start_daemon
	[ "$(ip_of "$A")" = "$aip" ]
	sbx_create "$B"
	[ "$(ip_of "$B")" != "$aip" ]
	sbx_exec "$B" "ping -c1 -W2 $aip"
	[ "$SBX_RC" = 0 ]
	[ -d "/proc/$pid" ]
}

@test "net: the bridge goes with the daemon when no sandbox is on it" {
	sbx_create "$A"
	ip link show "$BR" >/dev/null
	rmdir "$MNT/$A"
	sbx_stop_daemon
	run ip link show "$BR"
	[ "$status" -ne 0 ]
}
