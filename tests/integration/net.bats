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
	# A packet listener a test started: ours, ended by its pid.
	if [[ -n "${LISTENER:-}" ]]; then
		kill "$LISTENER" 2>/dev/null || true
		wait "$LISTENER" 2>/dev/null || true
	fi
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
	echo "allow sandbox $B" >"$MNT/$A/ctl" # isolated by default (netpolicy.bats)
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
	[ "$status" -eq 0 ]
	[[ "$output" == "net off" ]]
	sbx_exec "$A" 'cat /proc/net/dev'
	[[ "$SBX_OUT" == *"lo:"* ]]
	[[ "$SBX_OUT" != *"eth0"* ]]
}

@test "net: a sandbox cannot take another address or see another's interfaces" {
	sbx_create "$A"
	sbx_create "$B"
	bip=$(ip_of "$B")
	# Without CAP_NET_ADMIN and CAP_NET_RAW (the filter below is the second wall).
	sbx_exec "$A" "ip addr add $bip/24 dev eth0"
	[ "$SBX_RC" != 0 ]
	[[ "$SBX_OUT" == *"not permitted"* ]]
	sbx_exec "$A" "ip link set eth0 address 02:00:00:00:00:99"
	[ "$SBX_RC" != 0 ]
	[[ "$SBX_OUT" == *"not permitted"* ]]
	sbx_exec "$A" "arping -c1 -s $bip $GW"
	[ "$SBX_RC" != 0 ]
	[[ "$SBX_OUT" == *"not permitted"* ]]
	sbx_exec "$A" 'cat /proc/net/dev'
	[[ "$SBX_OUT" != *"$(hostif_of "$B")"* ]]
	[ "$(grep -c eth0 <<<"$SBX_OUT")" -eq 1 ]
}

# The datagrams a listener on the gateway got (one payload a line).
got() { grep -qx "$1" "$SBX_TMP/udp"; }
wait_got() {
	run timeout 30 bash -c 'until grep -qx "$1" "$2"; do sleep 0.05; done' _ "$1" "$SBX_TMP/udp"
	[ "$status" -eq 0 ] || {
		echo "datagram '$1' never reached the gateway"
		return 1
	}
}
# Frames the anti-spoofing filter dropped on host device $1.
filter_drops() { tc -s qdisc show dev "$1" | awk '/clsact/ { c = 1 } c && /dropped/ { sub(",", "", $7); print $7; exit }'; }

# The ifindexes of this daemon's veth pairs made ahead: host ends named like
# its sandboxes' ($1, a host_if) with a dot for the dash, and a number.
spares() { ip -o link show | awk -F': ' -v p="${1%-*}." 'index($2, p) == 1 { print $1 }'; }
wait_spares() {
	for _ in $(seq 100); do
		[ -n "$(spares "$1")" ] && return 0
		sleep 0.1
	done
	echo "no veth pair made ahead appeared"
	return 1
}
ifindex_of() { cat "/sys/class/net/$(hostif_of "$1")/ifindex"; }

@test "net: creates adopt veth pairs made ahead with their own identity; a kill -9 leaves none" {
	sbx_create "$A" # the first networked create starts the making ahead
	hif=$(hostif_of "$A")
	wait_spares "$hif"
	# Made ahead: down, on no bridge, with the filter already on.
	for i in $(spares "$hif"); do
		line=$(ip -o link show | grep "^$i: ")
		[[ "$line" == *"state DOWN"* && "$line" != *master* ]]
		tc filter show dev "$(ip -o link show | awk -F': ' -v i="$i" '$1 == i { sub("@.*", "", $2); print $2 }')" ingress | grep -q sbx_antispoof
	done
	ahead=$(spares "$hif")
	sbx_create "$B"
	grep -qx "$(ifindex_of "$B")" <<<"$ahead" # B's host end is one made ahead
	[ "$(ip_of "$B")" != "$(ip_of "$A")" ]
	[ "$(mac_of "$B")" != "$(mac_of "$A")" ]
	ip link show "$(hostif_of "$B")" | grep -q "master $BR"
	sbx_exec "$B" 'ip -o link show eth0; ip -o addr show eth0; hostname'
	[[ "$SBX_OUT" == *"$(mac_of "$B")"* && "$SBX_OUT" == *"$(ip_of "$B")/24"* ]]
	[[ "$SBX_OUT" == *"$B"* ]]
	echo "allow sandbox $A" >"$MNT/$B/ctl"
	sbx_exec "$B" "ping -c1 -W2 $(ip_of "$A")"
	[ "$SBX_RC" = 0 ]
	sbx_exec "$B" "ping -c1 -W2 $GW"
	[ "$SBX_RC" = 0 ]
	wait_spares "$hif"
	# The pairs made ahead live in namespaces held by the daemon's fds: a
	# kill -9 ends them, and the restarted daemon finds none (nor makes any
	# before a networked create).
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$SBX_PID" 2>/dev/null || break; sleep 0.1; done
	sbx_start_daemon
	for _ in $(seq 100); do
		[ -z "$(spares "$hif")" ] && break
		sleep 0.1
	done
	[ -z "$(spares "$hif")" ]
	[ "$(cat "$MNT/$B/status")" = running ]
	sbx_exec "$B" "ping -c1 -W2 $GW"
	[ "$SBX_RC" = 0 ]
}

@test "net: spoofed frames sent with the capability are dropped by the anti-spoofing filter" {
	sbx_create "$A"
	sbx_create "$B"
	spoof_check
}

@test "net: the anti-spoofing filter of a veth made ahead drops spoofed frames too" {
	sbx_create "$B"
	wait_spares "$(hostif_of "$B")"
	ahead=$(spares "$(hostif_of "$B")")
	sbx_create "$A"
	grep -qx "$(ifindex_of "$A")" <<<"$ahead"
	spoof_check
}

# A (its host end's filter) drops what it sends as B or as no one.
spoof_check() {
	aip=$(ip_of "$A")
	bip=$(ip_of "$B")
	amac=$(mac_of "$A")
	bmac=$(mac_of "$B")
	hif=$(hostif_of "$A")
	apid=$(sbx_pid_of "$A")
	port=$((20000 + RANDOM % 10000))
	pkt=(python3 "$SBX_REPO/tests/net/pkt.py")
	# Root of the host in A's network namespace: every capability, so
	# nothing but the filter on A's host end can stop what it sends.
	in_a=(nsenter -t "$apid" -n)
	echo "allow $GW/32 udp $port" >"$MNT/$A/ctl" # the gateway is closed by default
	"${pkt[@]}" listen "$GW" "$port" "$SBX_TMP/udp" </dev/null >/dev/null 2>&1 3>&- &
	LISTENER=$!
	run timeout 10 bash -c 'until [ -e "$1.ready" ]; do sleep 0.05; done' _ "$SBX_TMP/udp"
	[ "$status" -eq 0 ]
	busybox ping -c1 -W2 "$bip" >/dev/null # the host learns B's MAC
	[[ "$(ip neigh show "$bip" dev "$BR")" == *"lladdr $bmac"* ]]

	"${in_a[@]}" "${pkt[@]}" send "$aip" "$GW" "$port" legit
	wait_got legit
	d0=$(filter_drops "$hif")
	"${in_a[@]}" "${pkt[@]}" send "$bip" "$GW" "$port" ip-spoof
	"${in_a[@]}" "${pkt[@]}" send "${SUBNET%.0/24}.250" "$GW" "$port" ip-spoof-free
	"${in_a[@]}" ip link set eth0 address 02:5b:de:ad:be:ef
	"${in_a[@]}" "${pkt[@]}" send "$aip" "$GW" "$port" mac-spoof
	"${in_a[@]}" ip link set eth0 address "$amac"
	"${in_a[@]}" "${pkt[@]}" arp eth0 "$amac" "$bip"
	# Sent last on the same path: once it is here, the others would be too.
	"${in_a[@]}" "${pkt[@]}" send "$aip" "$GW" "$port" legit-again
	wait_got legit-again
	d1=$(filter_drops "$hif")
	echo "# filter drops on $hif: $d0 -> $d1"
	! got ip-spoof || false
	! got ip-spoof-free || false
	! got mac-spoof || false
	[[ "$(ip neigh show "$bip" dev "$BR")" == *"lladdr $bmac"* ]]
	[ $((d1 - d0)) -ge 4 ]

	# Control: without the filter the same datagram gets through, so the
	# filter is what stopped it.
	tc qdisc del dev "$hif" clsact
	"${in_a[@]}" "${pkt[@]}" send "$bip" "$GW" "$port" ip-spoof-control
	wait_got ip-spoof-control
	return 0
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

@test "net: rmdir then kill -9 at once: the restarted daemon leaves no device, no namespace, no state" {
	sbx_create "$A"
	pid=$(sbx_pid_of "$A")
	hif=$(hostif_of "$A")
	ip link show "$hif" >/dev/null
	# The reply comes before the device, the namespace and the files go:
	# a daemon killed right after leaves them to the kernel and the trash.
	rmdir "$MNT/$A"
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$SBX_PID" 2>/dev/null || break; sleep 0.1; done
	sbx_start_daemon
	[ ! -e "$MNT/$A" ]
	wait_no_leaks "$A" "$pid"
	sbx_wait_link_gone "$hif"
	[ -z "$(ls -A "$STATE/trash")" ]
	# The name and an address are free: a new one runs and reaches the gateway.
	sbx_create "$A"
	sbx_exec "$A" "ping -c1 -W2 $GW"
	[ "$SBX_RC" = 0 ]
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
	echo "allow sandbox $A" >"$MNT/$B/ctl" # isolated by default (netpolicy.bats)
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
