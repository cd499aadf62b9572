#!/usr/bin/env bats
# Network policy: sandboxes on the bridge are isolated from each other and
# from the host's addresses by default; allow/deny rules written to a
# sandbox's ctl open or close destinations at once, read back in the same
# syntax from its `net`, and survive a daemon restart. Each test has its own
# bridge and private /24 (as net.bats); traffic goes only to addresses made
# here: sandboxes, the test's gateway, and an "outside" namespace of its own.

load helpers

setup_file() {
	# A UDP service in the sandboxes' image (busybox's nc has no -u).
	busybox_with_tool udpecho "$SBX_REPO/tests/integration/udpecho/udpecho.c"
}

setup() {
	sbx_net_args p
	setup_sbx
	A="np${SBX_TAG}a"
	B="np${SBX_TAG}b"
}

teardown() {
	# A host service a test started: ours, ended by its pid.
	if [[ -n "${LISTENER:-}" ]]; then
		kill "$LISTENER" 2>/dev/null || true
		wait "$LISTENER" 2>/dev/null || true
	fi
	# The daemon's nft table for exposed ports, should a failed test leave it
	# behind a daemon killed with -9 (one that exits removes it).
	local xt
	xt=$(sed -n 's/.*nft table \(sandboxfs_expose_[0-9A-Za-z]*\) made.*/\1/p' "${SBX_LOG:-/dev/null}" 2>/dev/null | tail -n 1)
	teardown_sbx
	if [[ -n "$xt" ]]; then
		nft delete table ip "$xt" 2>/dev/null || true
	fi
	# --nat turned IPv4 forwarding on: the host gets back what it had.
	if [[ -n "${FWD0:-}" ]]; then
		echo "$FWD0" >/proc/sys/net/ipv4/ip_forward
	fi
	ip link del "$BR" 2>/dev/null || true
	if [[ -n "${OUT_NS:-}" ]]; then
		ip netns del "$OUT_NS" 2>/dev/null || true
		ip link del "$OUT_IF" 2>/dev/null || true
	fi
}

ip_of() { awk '$1 == "ip" { sub("/.*", "", $2); print $2 }' "$MNT/$1/net"; }
hostif_of() { awk '$1 == "host_if" { print $2 }' "$MNT/$1/net"; }
# The policy lines of NAME/net (the allow and deny lines, in order).
rules_of() { grep -E '^(allow|deny) ' "$MNT/$1/net"; }
# Frames the filter dropped on host device $1.
filter_drops() { tc -s qdisc show dev "$1" | awk '/clsact/ { c = 1 } c && /dropped/ { sub(",", "", $7); print $7; exit }'; }

# What the host reads back from $1:$2 over UDP for one datagram "ping" (from
# a new source port each time: no conntrack entry of an earlier one is reused).
host_udp_get() {
	python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b'ping', (sys.argv[1], int(sys.argv[2])))
print(s.recv(100).decode().strip())" "$1" "$2" 2>/dev/null
}

# A service in sandbox $1 on port $2, and proof from the host that it
# listens (the host reaches every sandbox whatever its rules): over TCP it
# answers "$3" to every connection (busybox nc answers one, so a loop); with
# $4 udp, "$3 ping" to the datagram "ping" (udpecho).
serve_in() {
	local name=$1 port=$2 word=$3 get=host_get want=$3 ip out=""
	if [[ "${4:-tcp}" == udp ]]; then
		sbx_run "$name" "/usr/local/bin/udpecho $port $word" >/dev/null
		get=host_udp_get want="$word ping"
	else
		sbx_run "$name" "while true; do nc -l -p $port -e echo $word; done" >/dev/null
	fi
	ip=$(ip_of "$name")
	for _ in $(seq 100); do
		out=$("$get" "$ip" "$port") && [[ "$out" == "$want" ]] && return 0
		sleep 0.1
	done
	echo "no ${4:-tcp} service on $ip:$port in $name (got '$out')" >&2
	return 1
}

# What sandbox $1 reads from $2:$3 over TCP, in SBX_OUT (SBX_RC: nc's status).
sbx_get() { sbx_exec "$1" "echo x | nc -w 2 $2 $3" >/dev/null; }

# Writes rule $2 to sandbox $1's ctl and checks it is read back.
rule() {
	sbx_write "$MNT/$1/ctl" "$2" || return 1
	grep -qxF "$2" <(rules_of "$1") || {
		echo "rule '$2' not in $1/net:" >&2
		cat "$MNT/$1/net" >&2
		return 1
	}
}

@test "netpolicy: by default a sandbox reaches neither another sandbox nor the host" {
	sbx_create "$A"
	sbx_create "$B"
	bip=$(ip_of "$B")
	serve_in "$B" 8080 hello-from-b
	# A host service on the gateway's address, started here.
	port=$((20000 + RANDOM % 10000))
	host_serve "$GW" "$port" hello-host

	run cat "$MNT/$A/net"
	[ "$status" -eq 0 ]
	[[ "$output" == *$'\nallow all'* ]] # the daemon's default for the outside
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" != *hello-from-b* ]]
	[ "$SBX_RC" != 0 ]
	sbx_exec "$A" "ping -c1 -W1 $bip" >/dev/null
	[ "$SBX_RC" != 0 ]
	sbx_get "$A" "$GW" "$port"
	[[ "$SBX_OUT" != *hello-host* ]]
	[ "$SBX_RC" != 0 ]
	# An echo to the gateway stays allowed (documented).
	sbx_exec "$A" "ping -c1 -W2 $GW" >/dev/null
	[ "$SBX_RC" = 0 ]

	# The filter is what stopped them: allowed, the same requests answer.
	rule "$A" "allow $GW/32 tcp $port"
	sbx_get "$A" "$GW" "$port"
	[[ "$SBX_OUT" == *hello-host* ]]
	rule "$A" "allow sandbox $B"
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" == *hello-from-b* ]]
	sbx_exec "$A" "ping -c1 -W2 $bip" >/dev/null
	[ "$SBX_RC" = 0 ]
	# One way only: B still cannot reach A.
	serve_in "$A" 8080 hello-from-a
	sbx_get "$B" "$(ip_of "$A")" 8080
	[[ "$SBX_OUT" != *hello-from-a* ]]
	# And closed again, at once.
	rule "$A" "deny sandbox $B"
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" != *hello-from-b* ]]
}

@test "netpolicy: a host address added after the daemon started is closed to sandboxes too" {
	sbx_create "$A"
	# Made here, after the daemon read the host's addresses: a TEST-NET-2
	# address on the test's own bridge (it goes with the bridge).
	new_ip="198.51.100.$((2 + RANDOM % 250))"
	ip addr add "$new_ip/32" dev "$BR"
	port=$((20000 + RANDOM % 10000))
	host_serve "$new_ip" "$port" hello-new
	# The daemon hears of it through rtnetlink and closes it (at once; the
	# loop only bounds a host that is slow to wake that thread).
	for ((i = 0; i < 20; i++)); do
		sbx_get "$A" "$new_ip" "$port"
		[[ "$SBX_OUT" != *hello-new* ]] && break
		sleep 0.1
	done
	[[ "$SBX_OUT" != *hello-new* ]]
	[ "$SBX_RC" != 0 ]
	# The filter is what stopped it: allowed, the same request answers.
	rule "$A" "allow $new_ip/32 tcp $port"
	sbx_get "$A" "$new_ip" "$port"
	[[ "$SBX_OUT" == *hello-new* ]]
}

@test "netpolicy: a port rule lets exactly that port through; rules read back in order" {
	sbx_create "$A"
	sbx_create "$B"
	bip=$(ip_of "$B")
	serve_in "$B" 8080 on-8080
	serve_in "$B" 8081 on-8081
	rule "$A" "allow $bip/32 tcp 8080"
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" == *on-8080* ]]
	sbx_get "$A" "$bip" 8081
	[[ "$SBX_OUT" != *on-8081* ]]
	# The whole subnet for TCP, but a more specific deny wins for 8080.
	rule "$A" "allow ${SUBNET%.0/24}.0/24 tcp"
	rule "$A" "deny $bip/32 tcp 8080"
	sbx_get "$A" "$bip" 8081
	[[ "$SBX_OUT" == *on-8081* ]]
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" != *on-8080* ]]
	# The same match again replaces the rule in place; the default comes first.
	rule "$A" "allow $bip/32 tcp 8080"
	rule "$A" "deny all"
	run rules_of "$A"
	[ "$status" -eq 0 ]
	[ "$output" = "deny all
allow $bip/32 tcp 8080
allow ${SUBNET%.0/24}.0/24 tcp" ]
	grep -Eq '^policy_apply_usec [0-9]+$' "$MNT/$A/net"
}

# An "outside" network of the test's own: a namespace behind a veth of the
# host, not the host's address and not the subnet. Traffic towards it stays
# on this machine (the host forwards it there, or drops it).
make_outside() {
	OUT_NS="sbxpol$NET_TAG"
	OUT_IF="sbxo$NET_TAG"
	OUT_NET="10.$((150 + RANDOM % 40)).$((RANDOM % 250))"
	ip netns add "$OUT_NS"
	ip link add "$OUT_IF" type veth peer name o0 netns "$OUT_NS"
	ip addr add "$OUT_NET.1/30" dev "$OUT_IF"
	ip link set "$OUT_IF" up
	ip -n "$OUT_NS" addr add "$OUT_NET.2/30" dev o0
	ip -n "$OUT_NS" link set o0 up
	OUT_IP="$OUT_NET.2"
}

# How many of 10 pings from sandbox $1 to the outside the filter dropped
# (whatever passes it, the host forwards to the namespace or drops).
outside_drops() {
	local hif d0 d1
	hif=$(hostif_of "$1")
	d0=$(filter_drops "$hif")
	sbx_exec "$1" "ping -c 10 -i 0.2 -W 1 $OUT_IP" >/dev/null
	d1=$(filter_drops "$hif")
	echo $((d1 - d0))
}

@test "netpolicy: deny all and allow all set the default for the outside" {
	make_outside
	sbx_create "$A"
	d=$(outside_drops "$A")
	echo "# drops with the default (allow): $d"
	[ "$d" -lt 10 ]
	rule "$A" "deny all"
	d=$(outside_drops "$A")
	echo "# drops with deny all: $d"
	[ "$d" -ge 10 ]
	rule "$A" "allow $OUT_IP/32 icmp"
	d=$(outside_drops "$A")
	[ "$d" -lt 10 ]
	rule "$A" "deny $OUT_IP/32 icmp"
	rule "$A" "allow all"
	# The more specific rule wins over the default.
	d=$(outside_drops "$A")
	[ "$d" -ge 10 ]
	rule "$A" "allow $OUT_IP/32 icmp"
	d=$(outside_drops "$A")
	[ "$d" -lt 10 ]
	run rules_of "$A"
	[ "${lines[0]}" = "allow all" ]
}

@test "nat: with --nat a sandbox reaches an outside namespace, masqueraded; without it no answer; a denied destination stays dropped" {
	make_outside
	# A TCP service outside that answers with the address it sees. The
	# namespace knows only its /30: an answer can only come back to the
	# host's address there, that is through the masquerade.
	ip netns exec "$OUT_NS" python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000))
s.listen(16)
while True:
    c, a = s.accept()
    c.sendall(("peer " + a[0] + "\n").encode())
    c.close()
' 3>&- &
	LISTENER=$!
	for _ in $(seq 50); do
		ip netns exec "$OUT_NS" ss -ltn 2>/dev/null | grep -q ":9000 " && break
		sleep 0.1
	done
	sbx_create "$A"
	sbx_get "$A" "$OUT_IP" 9000
	[[ "$SBX_OUT" != *peer* ]]
	FWD0=$(cat /proc/sys/net/ipv4/ip_forward)
	sbx_stop_daemon
	sbx_start_daemon --nat
	nft list table ip sandboxfs | grep -q masquerade
	sbx_create "$B"
	sbx_get "$B" "$OUT_IP" 9000
	[ "$SBX_OUT" = "peer $OUT_NET.1" ]
	rule "$B" "deny $OUT_IP/32"
	sbx_get "$B" "$OUT_IP" 9000
	[[ "$SBX_OUT" != *peer* ]]
	rule "$B" "allow $OUT_IP/32 tcp 9000"
	sbx_get "$B" "$OUT_IP" 9000
	[ "$SBX_OUT" = "peer $OUT_NET.1" ]
	# The masquerade goes with the daemon.
	sbx_stop_daemon
	run nft list table ip sandboxfs
	[ "$status" -ne 0 ]
}

# Names for the DNS tests: two addresses of the outside namespace (on its o0,
# routed there by the host), each with a TCP service on port 9000 that
# answers "at ADDRESS"; and a DNS server of the test's own beside them on
# $OUT_IP:53 (python3's standard library): A records for ok.test and
# no.test (TTL 30), in.test (the gateway's address: an internal one) and
# any name under short.test (TTL 1), no record for
# other names or types, NXDOMAIN for the rest. One process, ended by
# teardown as LISTENER.
outside_names() {
	local net="10.$((190 + RANDOM % 10)).$((RANDOM % 250))"
	OK_IP="$net.5"
	NO_IP="$net.6"
	ip -n "$OUT_NS" addr add "$OK_IP/32" dev o0
	ip -n "$OUT_NS" addr add "$NO_IP/32" dev o0
	ip route add "$OK_IP/32" via "$OUT_IP" dev "$OUT_IF"
	ip route add "$NO_IP/32" via "$OUT_IP" dev "$OUT_IF"
	ip netns exec "$OUT_NS" python3 -c '
import socket, struct, sys, threading
ok, no, me, internal = sys.argv[1:5]
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 9000)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(("at " + c.getsockname()[0] + "\n").encode()); c.close()
threading.Thread(target=tcp, daemon=True).start()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 53))
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace")); i += 1 + q[i]
    name, qtype = ".".join(labels).lower(), q[i + 1:i + 3]
    ip, ttl = {"ok.test": (ok, 30), "no.test": (no, 30), "in.test": (internal, 30)}.get(name, (None, 0))
    if name.endswith(".short.test"):
        ip, ttl = ok, 1
    known = ip is not None
    rec = b""
    if ip and qtype == b"\x00\x01":
        rec = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, ttl, 4) + socket.inet_aton(ip)
    flags = 0x8180 if known else 0x8183
    s.sendto(q[:2] + struct.pack(">HHHHH", flags, 1, 1 if rec else 0, 0, 0) + q[12:i + 5] + rec, peer)
' "$OK_IP" "$NO_IP" "$OUT_IP" "$GW" </dev/null >/dev/null 2>&1 3>&- &
	LISTENER=$!
	for _ in $(seq 50); do
		ip netns exec "$OUT_NS" ss -lun 2>/dev/null | grep -q "$OUT_IP:53 " &&
			ip netns exec "$OUT_NS" ss -ltn 2>/dev/null | grep -q ":9000 " && return 0
		sleep 0.1
	done
	echo "the outside's DNS server did not start" >&2
	return 1
}

# A daemon with --nat, --egress deny and its DNS relayed to the outside's server.
dns_daemon() {
	sbx_stop_daemon
	make_outside
	outside_names
	FWD0=$(cat /proc/sys/net/ipv4/ip_forward)
	sbx_start_daemon --nat --egress deny --dns "$OUT_IP" "$@"
}

@test "dns: under --egress deny, allow NAME opens the addresses the daemon's DNS relayed for it, and only those" {
	dns_daemon
	sbx_create "$A"
	sbx_exec "$A" "cat /etc/resolv.conf" >/dev/null
	[ "$SBX_OUT" = "nameserver $GW" ]
	rule "$A" "allow ok.test tcp 9000"
	# Not resolved yet: nothing is open.
	sbx_get "$A" "$OK_IP" 9000
	[[ "$SBX_OUT" != *"at $OK_IP"* ]]
	# The gateway's DNS answers under deny all, through /etc/resolv.conf.
	sbx_exec "$A" "nslookup ok.test" >/dev/null
	[[ "$SBX_OUT" == *"$OK_IP"* ]]
	grep -Eq "^learned allow $OK_IP/32 tcp 9000 for ok.test ttl ([0-9]|[12][0-9]|30)\$" "$MNT/$A/net"
	sbx_get "$A" "$OK_IP" 9000
	[ "$SBX_OUT" = "at $OK_IP" ]
	# A name no rule names resolves, but its address stays closed.
	sbx_exec "$A" "nslookup no.test" >/dev/null
	[[ "$SBX_OUT" == *"$NO_IP"* ]]
	sbx_get "$A" "$NO_IP" 9000
	[[ "$SBX_OUT" != *"at $NO_IP"* ]]
	# One learned entry: ok.test's, none for no.test.
	run grep -c "^learned " "$MNT/$A/net"
	[ "$output" = 1 ]
	# Read back in ctl's syntax, journaled, and kept across a restart.
	[ "$(rules_of "$A")" = "deny all
allow ok.test tcp 9000" ]
	grep -q '"allow ok.test tcp 9000"' "$STATE/sandboxes/$A/sandbox.json"
	[ "$(sbx_key "$MNT/stats" dns_learned)" = 1 ]
	[ "$(sbx_key "$MNT/stats" dns_answers)" -ge 2 ]
	# rmdir takes its learned addresses' map entries with it.
	rmdir "$MNT/$A"
	[ "$(sbx_key "$MNT/stats" dns_learned)" = 0 ]
}

@test "dns: *.suffix rules; a learned address expires after the answer's TTL (clamped to 5 s)" {
	dns_daemon
	sbx_create "$A"
	rule "$A" "allow *.short.test tcp 9000"
	rule "$A" "deny $OK_IP/32 tcp 9000"
	# An exact CIDR rule with the same key stays what decides.
	sbx_exec "$A" "nslookup a.short.test" >/dev/null
	[[ "$SBX_OUT" == *"$OK_IP"* ]]
	sbx_get "$A" "$OK_IP" 9000
	[[ "$SBX_OUT" != *"at $OK_IP"* ]]
	sbx_create "$B"
	rule "$B" "allow *.short.test tcp 9000"
	# short.test itself is not under *.short.test.
	sbx_exec "$B" "nslookup short.test" >/dev/null
	run grep -c "^learned " "$MNT/$B/net"
	[ "$output" = 0 ]
	sbx_exec "$B" "nslookup b.short.test" >/dev/null
	[[ "$SBX_OUT" == *"$OK_IP"* ]]
	grep -Eq "^learned allow $OK_IP/32 tcp 9000 for \*\.short\.test ttl [1-5]\$" "$MNT/$B/net"
	sbx_get "$B" "$OK_IP" 9000
	[ "$SBX_OUT" = "at $OK_IP" ]
	# A name that answers an internal address (the gateway) opens nothing.
	rule "$B" "allow in.test"
	sbx_exec "$B" "nslookup in.test" >/dev/null
	[[ "$SBX_OUT" == *"$GW"* ]]
	run grep -c "^learned .* for in.test " "$MNT/$B/net"
	[ "$output" = 0 ]
	# TTL 1, clamped to 5 s, swept within a second of it.
	sleep 7
	run grep -c "^learned " "$MNT/$B/net"
	[ "$output" = 0 ]
	sbx_get "$B" "$OK_IP" 9000
	[[ "$SBX_OUT" != *"at $OK_IP"* ]]
}

@test "dns: a flood of malformed queries from one sandbox does not stop the forwarder answering another" {
	dns_daemon
	sbx_create "$A"
	sbx_create "$B"
	d0=$(sbx_key "$MNT/stats" dns_dropped)
	sbx_run "$A" "for i in 1 2 3 4 5 6 7 8 9 10; do /usr/local/bin/udpecho flood $GW 53 20000; done" >/dev/null
	for i in 1 2 3 4 5; do
		sbx_exec "$B" "nslookup ok.test" >/dev/null
		[[ "$SBX_OUT" == *"$OK_IP"* ]] || { echo "query $i: $SBX_OUT"; false; }
	done
	d1=$(sbx_key "$MNT/stats" dns_dropped)
	echo "# dropped during the flood: $((d1 - d0))"
	[ "$((d1 - d0))" -gt 1000 ]
	assert_healthy "$B"
	# The host, not a sandbox, gets no answer from the gateway's DNS.
	run python3 -c "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
s.sendto(b'\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02ok\x04test\x00\x00\x01\x00\x01', (sys.argv[1], 53))
s.recv(512)" "$GW"
	[ "$status" -ne 0 ]
	run "$SANDBOXFS" --dns 10.0.0.1:0 "$SBX_TMP/nomnt"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--dns 10.0.0.1:0: the port is not a number from 1 to 65535"* ]]
}

@test "netpolicy: --egress deny is the daemon's default" {
	sbx_stop_daemon
	sbx_start_daemon --egress deny
	make_outside
	sbx_create "$A"
	run rules_of "$A"
	[ "$output" = "deny all" ]
	d=$(outside_drops "$A")
	[ "$d" -ge 10 ]
	rule "$A" "allow all"
	d=$(outside_drops "$A")
	[ "$d" -lt 10 ]
	run "$SANDBOXFS" --egress maybe "$SBX_TMP/nomnt"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--egress must be allow or deny"* ]]
}

@test "netpolicy: rules survive a daemon restart and are enforced again" {
	sbx_create "$A"
	sbx_create "$B"
	rule "$A" "allow sandbox $B"
	rule "$A" "allow 10.9.0.0/16 tcp 443"
	rule "$A" "deny all"
	before=$(rules_of "$A")
	# --stop-on-exit: both stop; the journal keeps the rules.
	sbx_stop_daemon
	sbx_start_daemon
	[ "$(rules_of "$A")" = "$before" ]
	echo start >"$MNT/$B/ctl"
	echo start >"$MNT/$A/ctl"
	wait_status "$B" running
	wait_status "$A" running
	bip=$(ip_of "$B")
	serve_in "$B" 8080 after-restart
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" == *after-restart* ]]
	sbx_get "$B" "$(ip_of "$A")" 8080
	[ "$SBX_RC" != 0 ]
}

@test "netpolicy: a sandbox re-adopted by a restarted daemon keeps its rules and takes new ones" {
	sbx_create "$A"
	sbx_create "$B"
	bip=$(ip_of "$B")
	serve_in "$B" 8080 readopted
	rule "$A" "allow $bip/32 tcp 8080"
	# The daemon dies; the sandboxes keep running and are re-adopted.
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$SBX_PID" 2>/dev/null || break; sleep 0.1; done
	sbx_start_daemon
	[ "$(rules_of "$A" | tail -n 1)" = "allow $bip/32 tcp 8080" ]
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" == *readopted* ]]
	# The filter now reads this daemon's maps: a new rule takes effect.
	rule "$A" "deny $bip/32 tcp 8080"
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" != *readopted* ]]
	# rmdir leaves no device and no rule behind.
	hif=$(hostif_of "$A")
	rmdir "$MNT/$A"
	sbx_wait_link_gone "$hif"
}

# The host ports the daemon's nft map sends on, as "PROTO PORT" lines (its
# table is this daemon's).
exposed_host_ports() {
	nft -j list ruleset 2>/dev/null | python3 -c '
import json, sys
for o in json.load(sys.stdin).get("nftables", []):
    m = o.get("map")
    if m and m["table"].startswith("sandboxfs_expose_") and m["table"].endswith(sys.argv[1]):
        for k, v in m.get("elem", []):
            print(*k["concat"])' "$1"
}

@test "expose: a sandbox's port answers on the host's addresses, is listed in net, survives a restart, goes with the sandbox" {
	tables0=$(nft list tables | sort)
	sbx_create "$A"
	sbx_create "$B"
	serve_in "$A" 8080 from-a
	serve_in "$B" 8080 from-b
	# No port exposed yet: nothing of the daemon's in netfilter.
	[ "$(nft list tables | sort)" = "$tables0" ]
	sbx_write "$MNT/$A/ctl" "expose 8080 18080"
	grep -qx "expose tcp 8080 18080" "$MNT/$A/net"
	# From the host, to one of its own addresses (the gateway): DNAT to A.
	[ "$(host_get "$GW" 18080)" = from-a ]
	# A host port is exposed once.
	run sbx_write "$MNT/$B/ctl" "expose 8080 18080"
	assert_fails_with "Address already in use"
	grep -q "18080" "$MNT/$B/error"
	sbx_write "$MNT/$B/ctl" "expose 8080 18081"
	[ "$(host_get "$GW" 18081)" = from-b ]
	# The same sandbox port moved to another host port: the old one goes.
	sbx_write "$MNT/$B/ctl" "expose 8080 18082"
	[ "$(host_get "$GW" 18082)" = from-b ]
	run host_get "$GW" 18081
	[ "$output" != from-b ]
	sbx_write "$MNT/$B/ctl" "unexpose 8080"
	run grep -c "^expose " "$MNT/$B/net"
	[ "$output" = 0 ]
	run host_get "$GW" 18082
	[ "$output" != from-b ]
	# Bad input: a sentence, nothing changed.
	for bad in "expose" "expose 0" "expose 70000" "expose abc" "expose 1 2 3" "unexpose"; do
		run sbx_write "$MNT/$A/ctl" "$bad"
		assert_fails_with "Invalid argument"
	done
	run sbx_write "$MNT/$A/ctl" "unexpose 9999"
	assert_fails_with "No such file"
	sbx_write "$MNT/ctl" "create ${A}off net=off"
	wait_status "${A}off" running
	run sbx_write "$MNT/${A}off/ctl" "expose 80"
	assert_fails_with "Operation not supported"
	# Journaled: a daemon killed and restarted sends the port to A again.
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$SBX_PID" 2>/dev/null || break; sleep 0.1; done
	sbx_start_daemon
	grep -qx "expose tcp 8080 18080" "$MNT/$A/net"
	[ "$(host_get "$GW" 18080)" = from-a ]
	# rmdir takes the port with the sandbox.
	[ "$(exposed_host_ports "" | grep -cx "tcp 18080")" = 1 ]
	rmdir "$MNT/$A"
	[ "$(exposed_host_ports "" | grep -cx "tcp 18080")" = 0 ]
	run host_get "$GW" 18080
	[ "$output" != from-a ]
	# The daemon's table (and its hooks) goes with it.
	sbx_stop_daemon
	[ "$(nft list tables | sort)" = "$tables0" ]
}

@test "expose: an nft delete that fails at rmdir keeps the address until a retry deletes it" {
	# The daemon's nft, through a wrapper that refuses deletes of map
	# elements while $SBX_TMP/nft.fail exists (found first on its PATH).
	local real ip_a i
	real=$(command -v nft)
	mkdir -p "$SBX_TMP/bin"
	cat >"$SBX_TMP/bin/nft" <<-SH
		#!/bin/sh
		if [ "\$*" = "-f -" ]; then
		    in=\$(cat)
		    case "\$in" in *"delete element"*) [ -e "$SBX_TMP/nft.fail" ] && exit 1;; esac
		    printf '%s\n' "\$in" | exec "$real" -f -
		fi
		exec "$real" "\$@"
	SH
	chmod +x "$SBX_TMP/bin/nft"
	sbx_stop_daemon
	# A /29: five addresses, which the round-robin allocator goes through
	# in five creates.
	PATH="$SBX_TMP/bin:$PATH" SBX_NET_ARGS="--bridge $BR --subnet ${SUBNET%.0/24}.0/29" \
		sbx_start_daemon
	sbx_create "$A"
	ip_a=$(ip_of "$A")
	sbx_write "$MNT/$A/ctl" "expose 8080 18081"
	[ "$(exposed_host_ports "" | grep -cx "tcp 18081")" = 1 ]
	touch "$SBX_TMP/nft.fail"
	rmdir "$MNT/$A"
	grep -q "sandbox $A: 'expose tcp 8080 18081' left in nft table sandboxfs_expose_" "$SBX_LOG"
	[ "$(exposed_host_ports "" | grep -cx "tcp 18081")" = 1 ]
	# The element still sends 18081 to A's address: no sandbox gets it, and
	# the host port is not exposed again.
	for i in 1 2 3 4 5 6; do
		sbx_create "$B"
		[ "$(ip_of "$B")" != "$ip_a" ]
		run sbx_write "$MNT/$B/ctl" "expose 8080 18081"
		assert_fails_with "Address already in use"
		rmdir "$MNT/$B"
	done
	[ "$(exposed_host_ports "" | grep -cx "tcp 18081")" = 1 ]
	# nft works again: the next removal deletes it and frees the address.
	rm "$SBX_TMP/nft.fail"
	sbx_create "$B"
	rmdir "$MNT/$B"
	grep -q "sandbox $A: its exposed ports are deleted from nft table .* address released" "$SBX_LOG"
	[ "$(exposed_host_ports "" | grep -cx "tcp 18081")" = 0 ]
	for i in 1 2 3 4 5 6; do
		sbx_create "$B"
		[ "$(ip_of "$B")" = "$ip_a" ] && break
		rmdir "$MNT/$B"
	done
	[ "$(ip_of "$B")" = "$ip_a" ]
	sbx_write "$MNT/$B/ctl" "expose 8080 18081"
	rmdir "$MNT/$B"
	sbx_stop_daemon
	[ "$(exposed_host_ports "" | grep -cx "tcp 18081")" = 0 ]
}

@test "expose: a host port a host service has is refused; an exposed one is held from host services" {
	sbx_create "$A"
	port=$((20000 + RANDOM % 20000))
	# A host service on the port (python holds it listening until told to go).
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
open(sys.argv[2], "w").close(); time.sleep(60)' "$port" "$SBX_TMP/svc.ready" 3>&- &
	svc=$!
	for _ in $(seq 100); do [ -e "$SBX_TMP/svc.ready" ] && break; sleep 0.1; done
	run sbx_write "$MNT/$A/ctl" "expose 8080 $port"
	kill "$svc"; wait "$svc" 2>/dev/null || true
	assert_fails_with "Address already in use"
	grep -q "in use on the host" "$MNT/$A/error"
	run grep -c "^expose " "$MNT/$A/net"
	[ "$output" = 0 ]
	# Gone: the port can be exposed, and then no host service can bind it.
	sbx_write "$MNT/$A/ctl" "expose 8080 $port"
	bind_port() { python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, getattr(socket, sys.argv[2]))
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))' "$@"; }
	run bind_port "$port" SOCK_STREAM
	[ "$status" -ne 0 ]
	[[ "$output" == *"Address already in use"* ]]
	# UDP is another port: free.
	bind_port "$port" SOCK_DGRAM
	sbx_write "$MNT/$A/ctl" "unexpose 8080"
	bind_port "$port" SOCK_STREAM
}

@test "expose udp: a UDP port answers on the host beside TCP on the same host port, through deny all, survives kill -9, goes with the sandbox" {
	sbx_create "$A"
	sbx_create "$B"
	serve_in "$A" 5353 udp-a udp
	serve_in "$A" 8080 tcp-a
	serve_in "$B" 5353 udp-b udp
	# A may send nothing of its own: its answers pass as answers, as for TCP.
	rule "$A" "deny all"
	sbx_write "$MNT/$A/ctl" "expose udp 5353 15353"
	grep -qx "expose udp 5353 15353" "$MNT/$A/net"
	[ "$(host_udp_get "$GW" 15353)" = "udp-a ping" ]
	# The same host port for TCP is another port: both answer.
	run host_get "$GW" 15353
	[ "$output" != tcp-a ]
	sbx_write "$MNT/$A/ctl" "expose 8080 15353"
	grep -qx "expose tcp 8080 15353" "$MNT/$A/net"
	[ "$(host_get "$GW" 15353)" = tcp-a ]
	[ "$(host_udp_get "$GW" 15353)" = "udp-a ping" ]
	# A UDP host port is exposed once.
	run sbx_write "$MNT/$B/ctl" "expose udp 5353 15353"
	assert_fails_with "Address already in use"
	grep -q "udp host port 15353 is exposed already (by sandbox $A" "$MNT/$B/error"
	# Bad input: a sentence, nothing changed.
	for bad in "expose udp" "expose udp 0" "expose udp 70000" "expose sctp 80" "expose 53/udp" \
		"expose udp 1 2 3" "unexpose udp" "unexpose udp 5353 15353"; do
		run sbx_write "$MNT/$A/ctl" "$bad"
		assert_fails_with "Invalid argument"
	done
	run sbx_write "$MNT/$A/ctl" "expose sctp 80"
	grep -q "protocol 'sctp' is not tcp or udp" "$MNT/$A/error"
	run sbx_write "$MNT/$A/ctl" "unexpose udp 8080"
	assert_fails_with "No such file"
	[ "$(grep -c "^expose " "$MNT/$A/net")" = 2 ]
	[ "$(exposed_host_ports "" | grep -c " 15353$")" = 2 ]
	# A daemon killed (its sandboxes run on) and restarted exposes both again.
	kill -9 "$SBX_PID"
	wait "$SBX_PID" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$SBX_PID" 2>/dev/null || break; sleep 0.1; done
	# Journaled with its protocol (the daemon is dead: the file is ours). A
	# journal written before UDP has none: its TCP entry is made one such
	# here, and still reads as TCP.
	python3 - "$STATE/sandboxes/$A/sandbox.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
x = j["net"]["expose"]
assert sorted(e["proto"] for e in x) == ["tcp", "udp"], x
for e in x:
    if e["proto"] == "tcp":
        del e["proto"]
json.dump(j, open(sys.argv[1], "w"))
PY
	sbx_start_daemon
	grep -qx "expose udp 5353 15353" "$MNT/$A/net"
	grep -qx "expose tcp 8080 15353" "$MNT/$A/net"
	[ "$(host_udp_get "$GW" 15353)" = "udp-a ping" ]
	[ "$(host_get "$GW" 15353)" = tcp-a ]
	# unexpose udp takes the UDP port only.
	sbx_write "$MNT/$A/ctl" "unexpose udp 5353"
	run host_udp_get "$GW" 15353
	[ "$output" != "udp-a ping" ]
	[ "$(host_get "$GW" 15353)" = tcp-a ]
	sbx_write "$MNT/$B/ctl" "expose udp 5353 15353"
	[ "$(host_udp_get "$GW" 15353)" = "udp-b ping" ]
	# rmdir takes each sandbox's ports, nothing else.
	rmdir "$MNT/$B"
	[ "$(exposed_host_ports "" | grep -cx "udp 15353")" = 0 ]
	run host_udp_get "$GW" 15353
	[ "$output" != "udp-b ping" ]
	[ "$(host_get "$GW" 15353)" = tcp-a ]
	rmdir "$MNT/$A"
	[ "$(exposed_host_ports "" | grep -c 15353)" = 0 ]
}

@test "netpolicy: a fork's children start with their parent's rules, enforced; not its exposed ports" {
	sbx_create "$A"
	sbx_create "$B"
	bip=$(ip_of "$B")
	serve_in "$B" 8080 to-b
	rule "$A" "allow sandbox $B"
	rule "$A" "deny all"
	sbx_write "$MNT/$A/ctl" "expose 22 18022"
	before=$(rules_of "$A")
	sbx_write "$MNT/$A/ctl" "fork ${A}k"
	wait_status "${A}k" running
	[ "$(rules_of "${A}k")" = "$before" ]
	run grep -c "^expose " "$MNT/${A}k/net"
	[ "$output" = 0 ]
	sbx_get "${A}k" "$bip" 8080
	[[ "$SBX_OUT" == *to-b* ]]
	# Its own from there on: a rule of the child leaves the parent's alone.
	rule "${A}k" "deny sandbox $B"
	sbx_get "${A}k" "$bip" 8080
	[[ "$SBX_OUT" != *to-b* ]]
	sbx_get "$A" "$bip" 8080
	[[ "$SBX_OUT" == *to-b* ]]
}

@test "netpolicy: bad rules fail with EINVAL and a sentence; nothing is applied" {
	sbx_create "$A"
	before=$(rules_of "$A")
	run sbx_write "$MNT/$A/ctl" "allow 10.0.0.1/8"
	assert_fails_with "Invalid argument"
	grep -q "host bits set: the network is 10.0.0.0/8" "$MNT/$A/error"
	run sbx_write "$MNT/$A/ctl" "allow 10.0.0.0/8 tcp 70000"
	assert_fails_with "Invalid argument"
	grep -q "not a number from 1 to 65535" "$MNT/$A/error"
	run sbx_write "$MNT/$A/ctl" "deny exa_mple.com tcp 443"
	assert_fails_with "Invalid argument"
	grep -q "neither a CIDR nor a domain name" "$MNT/$A/error"
	run sbx_write "$MNT/$A/ctl" "deny example.com tcp 443"
	assert_fails_with "not supported"
	grep -q "this daemon offers no DNS" "$MNT/$A/error"
	run sbx_write "$MNT/$A/ctl" "allow 10.0.0.0/8 sctp"
	assert_fails_with "Invalid argument"
	run sbx_write "$MNT/$A/ctl" "allow"
	assert_fails_with "Invalid argument"
	run sbx_write "$MNT/$A/ctl" "deny all please"
	assert_fails_with "Invalid argument"
	run sbx_write "$MNT/$A/ctl" "allow sandbox nosuch$SBX_TAG"
	assert_fails_with "No such file"
	grep -q "no sandbox 'nosuch$SBX_TAG'" "$MNT/$A/error"
	[ "$(rules_of "$A")" = "$before" ]
	echo "create ${A}off net=off" >"$MNT/ctl"
	wait_status "${A}off" running
	run sbx_write "$MNT/${A}off/ctl" "allow all"
	assert_fails_with "not supported"
	assert_healthy "$A"
}
