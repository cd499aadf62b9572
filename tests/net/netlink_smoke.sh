#!/usr/bin/env bash
# Smoke test of net/ against the real kernel, through tests/net/nettool: a
# bridge with a random sbx* name on a private /24 that no route uses, two
# network namespaces of our own wired by the library, then ping and TCP
# between them and from the host, anti-spoofing (with a control run that
# proves the checks would see spoofing), shaping, teardown, and nothing left.
# Traffic only ever goes to addresses this test created. Needs root.
#
#   tests/net/netlink_smoke.sh          (make netcheck builds nettool and runs it)
#   NETTOOL=path  BENCH_N=20            driver binary; setups timed at the end (0: none)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NETTOOL="${NETTOOL:-$here/../../build/tests/net/nettool}"
BENCH_N="${BENCH_N:-20}"
PKT=(python3 "$here/pkt.py")

if [[ $(id -u) -ne 0 ]]; then
	echo "skip: netlink_smoke.sh needs root"
	exit 77
fi
[[ -x "$NETTOOL" ]] || { echo "no $NETTOOL: run make netcheck"; exit 2; }

tag=$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
BR="sbxbr$tag"
PFX="sbx$tag-"
net=""
for _ in $(seq 50); do
	x=$((RANDOM % 256))
	if ! ip -4 addr show | grep -q "inet 10\.250\.$x\." &&
		! ip -4 route show table all | grep -q "10\.250\.$x\."; then
		net="10.250.$x"
		break
	fi
done
[[ -n "$net" ]] || { echo "no free 10.250.X.0/24 subnet"; exit 2; }
SUBNET="$net.0/24"
GW="$net.1"
IPA="$net.2"
IPB="$net.3"
PORT=$((20000 + RANDOM % 20000))
tmp=$(mktemp -d)
pids=()

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for d in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$PFX"); do
		ip link del "$d" 2>/dev/null
	done
	ip link del "$BR" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
check() { # check DESCRIPTION COMMAND...
	local what="$1"
	shift
	if "$@" >"$tmp/out" 2>&1; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what"
		sed 's/^/#   /' "$tmp/out"
	fi
}
refute() { ! "$@"; }
inside() { # inside PID COMMAND...: run in the network namespace of PID
	local pid="$1"
	shift
	nsenter --net="/proc/$pid/ns/net" "$@"
}
inside_bg() { # the same for `inside_bg ... &`: $! is then the command itself
	local pid="$1"
	shift
	exec nsenter --net="/proc/$pid/ns/net" "$@"
}
ping1() { inside "$1" busybox ping -c 1 -W 2 "$2"; }
host_ping() { busybox ping -c 1 -W 2 "$1"; }
new_netns() { # prints the pid of a process parked in a new network namespace
	unshare --net -- sleep 600 </dev/null >/dev/null 2>&1 &
	local pid=$!
	local self
	self=$(readlink /proc/self/ns/net)
	for _ in $(seq 100); do
		[[ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" != "$self" ]] && break
		sleep 0.02
	done
	echo "$pid"
}
got() { grep -qx "$1" "$tmp/udp"; }
ready() { for _ in $(seq 100); do [[ -e "$1.ready" ]] && { rm -f "$1.ready"; return 0; }; sleep 0.05; done; echo "# $1 never got ready"; }
wait_got() { for _ in $(seq 20); do got "$1" && return 0; sleep 0.05; done; return 1; }
neigh_mac() { ip neigh show "$1" dev "$BR" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }
sbx_devices() { ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -c "^sbx" || true; }

echo "# bridge $BR, subnet $SUBNET, device prefix $PFX"
devs_before=$(sbx_devices)

check "bridge created with the gateway address" "$NETTOOL" bridge-ensure "$BR" "$SUBNET"
check "bridge has $GW/24" bash -c "ip -4 -o addr show dev $BR | grep -q 'inet $GW/24'"
check "bridge reused when present" "$NETTOOL" bridge-ensure "$BR" "$SUBNET"
check "still one address on the bridge" bash -c "[ \$(ip -4 -o addr show dev $BR | wc -l) -eq 1 ]"

A=$(new_netns)
B=$(new_netns)
pids+=("$A" "$B")
inside "$A" ip link set lo up
inside "$B" ip link set lo up

check "veth for A" "$NETTOOL" setup "$BR" "$SUBNET" "$PFX" "$IPA" "$A"
check "veth for B" "$NETTOOL" setup "$BR" "$SUBNET" "$PFX" "$IPB" "$B"
HA="${PFX}2"
HB="${PFX}3"
MACA="02:5b:0a:fa:$(printf %02x "${net##*.}"):02"
MACB="02:5b:0a:fa:$(printf %02x "${net##*.}"):03"
BRMAC="02:5b:0a:fa:$(printf %02x "${net##*.}"):01"
check "host ends are bridge ports and up" bash -c \
	"ip -o link show $HA | grep -q 'master $BR' && ip -o link show $HB | grep -q 'master $BR.*state UP'"
check "A has eth0 with its IP and MAC" bash -c \
	"nsenter --net=/proc/$A/ns/net ip -o addr show eth0 | grep -q 'inet $IPA/24' &&
	 nsenter --net=/proc/$A/ns/net ip -o link show eth0 | grep -q 'link/ether $MACA'"
check "A has a default route via the gateway" bash -c \
	"nsenter --net=/proc/$A/ns/net ip route show default | grep -q 'via $GW dev eth0'"
check "A sees only lo and eth0" bash -c \
	"[ \"\$(nsenter --net=/proc/$A/ns/net ip -o link show | awk -F': ' '{print \$2}' | cut -d@ -f1 | sort | tr '\n' ' ')\" = 'eth0 lo ' ]"
check "setting up A twice fails cleanly" refute "$NETTOOL" setup "$BR" "$SUBNET" "$PFX" "$IPA" "$A"
check "and A's devices survive the failed attempt" ping1 "$A" "$IPB"

check "A pings B" ping1 "$A" "$IPB"
check "B pings A" ping1 "$B" "$IPA"
check "A pings the gateway" ping1 "$A" "$GW"
check "host pings A" host_ping "$IPA"
check "host pings B" host_ping "$IPB"
inside_bg "$B" timeout 5 busybox nc -l -p "$PORT" >"$tmp/tcp" 2>/dev/null &
pids+=($!)
sleep 0.2
check "A opens a TCP connection to B" bash -c \
	"echo hello-tcp | nsenter --net=/proc/$A/ns/net timeout 3 busybox nc -w 1 $IPB $PORT; sleep 0.2; grep -q hello-tcp $tmp/tcp"

# Bridge ports: static MACs, no learning, no flooding of unknown unicast.
check "A's MAC is a static entry on its port" bash -c "bridge fdb show dev $HA | grep -q '^$MACA .*static'"
check "A's port neither learns nor floods unknown unicast" bash -c \
	"bridge -d link show dev $HA | grep -q 'learning off' && bridge -d link show dev $HA | grep -q 'flood off'"
: >"$tmp/sniff"
inside_bg "$B" "${PKT[@]}" sniff eth0 20 "$tmp/sniff" for-b not-for-b flooded &
sniffer=$!
pids+=($sniffer)
ready "$tmp/sniff"
seen() { for _ in $(seq 60); do grep -qx "$1" "$tmp/sniff" && return 0; sleep 0.05; done; return 1; }
inside "$A" ip neigh replace "$net.99" lladdr 02:5b:de:ad:be:ef dev eth0 nud permanent
# Unknown unicast first, then a datagram for B: once B has the second, it would have the first.
inside "$A" "${PKT[@]}" send "$IPA" "$net.99" "$PORT" not-for-b
inside "$A" "${PKT[@]}" send "$IPA" "$IPB" "$PORT" for-b
check "B sees traffic sent to it" seen for-b
check "B does not see A's traffic to a MAC the bridge does not know" refute grep -qx not-for-b "$tmp/sniff"
bridge link set dev "$HB" flood on # control: with flooding B would see it
inside "$A" "${PKT[@]}" send "$IPA" "$net.99" "$PORT" flooded
check "control: with flooding on, B does see it" seen flooded
bridge link set dev "$HB" flood off
kill "$sniffer" 2>/dev/null || true

# Anti-spoofing: a listener on the gateway records what reaches the host.
: >"$tmp/udp"
"${PKT[@]}" listen "$GW" "$PORT" "$tmp/udp" &
pids+=($!)
ready "$tmp/udp"
inside "$A" "${PKT[@]}" send "$IPA" "$GW" "$PORT" legit
check "A's own datagrams arrive" wait_got legit
inside "$A" "${PKT[@]}" send "$IPB" "$GW" "$PORT" ip-spoof
inside "$A" "${PKT[@]}" send "$net.77" "$GW" "$PORT" ip-spoof-free
inside "$A" ip link set eth0 address 02:5b:de:ad:be:ef
inside "$A" "${PKT[@]}" send "$IPA" "$GW" "$PORT" mac-spoof
inside "$A" ip link set eth0 address "$MACA"
inside "$A" "${PKT[@]}" send "$IPA" "$GW" "$PORT" legit-again
check "A's datagrams arrive again after restoring its MAC" wait_got legit-again
check "a datagram from A with B's IP is dropped" refute got ip-spoof
check "a datagram from A with an unassigned IP is dropped" refute got ip-spoof-free
check "a datagram from A with a foreign MAC is dropped" refute got mac-spoof
check "host knows B's MAC" bash -c "[ \"\$(ip neigh show $IPB dev $BR | grep -o 'lladdr [0-9a-f:]*')\" = 'lladdr $MACB' ]"
inside "$A" "${PKT[@]}" arp eth0 "$MACA" "$IPB"
inside "$A" "${PKT[@]}" arp eth0 "$MACB" "$IPB"
sleep 0.2
check "ARP from A claiming B's IP is dropped" bash -c "[ \"\$(ip neigh show $IPB dev $BR | grep -o 'lladdr [0-9a-f:]*')\" = 'lladdr $MACB' ]"
drops() { tc -s qdisc show dev "$HA" | awk '/clsact/ {c = 1} c && /dropped/ {sub(",", "", $7); print $7; exit}'; }
inside "$A" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 # no IPv6 of its own in the count
sleep 0.1
d0=$(drops)
inside "$A" "${PKT[@]}" frame eth0 "$MACA" "$BRMAC" 86dd
inside "$A" "${PKT[@]}" frame eth0 "$MACA" "$BRMAC" 8100
d1=$(drops)
check "IPv6 and VLAN frames from A are dropped (counted on the filter: $d0 -> $d1)" test $((d1 - d0)) -eq 2

# Control: without the filter the same checks must see spoofing, or they prove nothing.
tc qdisc del dev "$HA" clsact
inside "$A" "${PKT[@]}" send "$IPB" "$GW" "$PORT" ip-spoof-control
check "control: without the filter B's IP from A gets through" wait_got ip-spoof-control
inside "$A" "${PKT[@]}" arp eth0 "$MACA" "$IPB"
sleep 0.2
check "control: without the filter A's ARP poisons the host's entry for B" bash -c \
	"[ \"\$(ip neigh show $IPB dev $BR | grep -o 'lladdr [0-9a-f:]*')\" = 'lladdr $MACA' ]"

# Shaping.
check "rate 10mbit on B both ways" "$NETTOOL" shape "$SUBNET" "$PFX" "$IPB" 10mbit "$B"
check "tbf 10Mbit on B's host end" bash -c "tc qdisc show dev $HB | grep -q 'tbf .*rate 10Mbit'"
check "tbf 10Mbit on B's eth0" bash -c "nsenter --net=/proc/$B/ns/net tc qdisc show dev eth0 | grep -q 'tbf .*rate 10Mbit'"
check "B still reachable under shaping" ping1 "$A" "$IPB"
check "rate changed to 1gbit" "$NETTOOL" shape "$SUBNET" "$PFX" "$IPB" 1gbit "$B"
check "tbf 1Gbit on B's host end" bash -c "tc qdisc show dev $HB | grep -q 'tbf .*rate 1Gbit'"
check "rate removed" "$NETTOOL" shape "$SUBNET" "$PFX" "$IPB" 0 "$B"
check "no tbf left on B" bash -c "! tc qdisc show dev $HB | grep -q tbf"

# Teardown.
check "teardown A" "$NETTOOL" teardown "$SUBNET" "$PFX" "$IPA"
check "teardown B" "$NETTOOL" teardown "$SUBNET" "$PFX" "$IPB"
check "teardown of a gone device is fine" "$NETTOOL" teardown "$SUBNET" "$PFX" "$IPB"
check "A has no eth0 left" bash -c "! nsenter --net=/proc/$A/ns/net ip link show eth0 2>/dev/null"
check "no $PFX device left" bash -c "! ip -o link show | grep -q ' $PFX'"

if [[ "$BENCH_N" -gt 0 ]]; then
	check "timed $BENCH_N setups, one after another" "$NETTOOL" bench "$BR" "$SUBNET" "$PFX" "$net.10" "$BENCH_N"
	sed 's/^/# /' "$tmp/out"
	check "timed $BENCH_N setups at once" "$NETTOOL" burst "$BR" "$SUBNET" "$PFX" "$net.10" "$BENCH_N"
	sed 's/^/# /' "$tmp/out"
	check "no $PFX device left after the timed setups" bash -c "! ip -o link show | grep -q ' $PFX'"
fi

check "bridge removed" "$NETTOOL" bridge-remove "$BR"
check "removing an absent bridge is fine" "$NETTOOL" bridge-remove "$BR"
check "no address of $SUBNET left" bash -c "! ip -4 addr show | grep -q 'inet $net\.'"
check "no route of $SUBNET left" bash -c "! ip -4 route show table all | grep -q '$net\.'"
check "as many sbx* devices as before ($devs_before)" bash -c "[ \$(ip -o link show | awk -F': ' '{print \$2}' | grep -c '^sbx' || true) -eq $devs_before ]"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
