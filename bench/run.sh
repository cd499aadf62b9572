#!/bin/bash
# make bench [QUICK=1]: peers vs sandboxfs, interleaved, one run (issue 3).
# Installs the peers, runs bench/bench.py in a private mount namespace (so the
# bench's mounts never leak and crun can be shown plain cgroup v1), then draws
# the plots, writes bench/results/latest.md and prints it.
# BENCH_CASES=qemu,qfork runs only those cases and merges them into latest.json
# (BENCH_CASES=pools: the five warm-pool cases, issue 20).
# BENCH_SET="key=value;..." changes parameters of the run (bench.py's P), e.g.
# QUICK=1 BENCH_CASES=qfork BENCH_SET="qfork_burst=25"; latest.md says them.
# Each case runs on its own: one that fails is reported in latest.md and latest.json
# with its reason, the others' results are kept, and the exit status is then 1
# (bench.py exits 3 for that). BENCH_FAIL=case[,case...] makes those cases fail at
# their start (a test of that path).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v fusermount3 >/dev/null || need+=(fuse3)
# docker and podman (the tools users know): Debian's docker.io (dockerd, containerd, runc and
# the docker CLI in /usr/bin) and podman. Only the bench needs them, not make check. One that
# cannot be installed is skipped by bench.py with its reason, not a failure of the bench.
peers=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || peers+=(docker.io)
command -v podman >/dev/null || peers+=(podman)
install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null; }
}
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}" >&2
	install "${need[@]}"
fi
if [ ${#peers[@]} -gt 0 ]; then
	echo "bench: installing ${peers[*]}" >&2
	# their packages would start the host's docker and containerd services (docker0, iptables
	# rules): a policy-rc.d that refuses, for the install only, unless one is already there
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
	fi
	install --no-install-recommends "${peers[@]}" || echo "bench: could not install ${peers[*]}; the bench skips them" >&2
	[ -z "$policy" ] || rm -f "$policy"
fi
[ -x build/bench/registry_bench ] || make -s build/bench/registry_bench

BENCH_TMP=$(mktemp -d /tmp/sbxbench.XXXXXX)
export BENCH_TMP QUICK="${QUICK:-}" BENCH_CASES="${BENCH_CASES:-}"
inner=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$inner" ] && kill -0 "$inner" 2>/dev/null; then
		kill -TERM "$inner" 2>/dev/null || true   # bench.py cleans up on SIGTERM
		wait "$inner" 2>/dev/null || true
	fi
	# the daemon, if bench.py itself died before stopping it (pids we started only)
	if [ -f "$BENCH_TMP/pids" ]; then
		while read -r p; do
			kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true
		done <"$BENCH_TMP/pids"
		for _ in $(seq 100); do  # --stop-on-exit: it stops its sandboxes first (20 s at most)
			alive=0
			while read -r p; do kill -0 "$p" 2>/dev/null && alive=1; done <"$BENCH_TMP/pids"
			[ "$alive" = 0 ] && break
			sleep 0.2
		done
	fi
	for m in "$BENCH_TMP/mnt" "$BENCH_TMP/mnt-net"; do
		grep -q " $m " /proc/mounts && fusermount3 -u -z "$m" 2>/dev/null || true
	done
	# QEMUs of our daemons (their console log is under $BENCH_TMP) and their guest RAM and
	# layer memory images in /dev/shm (prefixes written by bench.py), if bench.py could not
	# and docker's and podman's processes (dockerd, containerd, shims, conmon: their command
	# lines name $BENCH_TMP/engines), if bench.py could not stop them
	for p in /proc/[0-9]*; do
		case "$(cat "$p/comm" 2>/dev/null)" in qemu-system* | dockerd | containerd* | conmon | podman) ;; *) continue ;; esac
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$BENCH_TMP/" && kill -KILL "${p#/proc/}" 2>/dev/null || true
	done
	if [ -f "$BENCH_TMP/shm_prefixes" ]; then
		while read -r pre; do
			case "$pre" in sandboxfs-????????-) rm -f /dev/shm/"$pre"* ;; esac
		done <"$BENCH_TMP/shm_prefixes"
	fi
	# the networking case's bridge (unique to this run, sbx*), if bench.py could not remove it
	if [ -f "$BENCH_TMP/bridge" ]; then
		br=$(cat "$BENCH_TMP/bridge")
		case "$br" in sbx*) [ -e "/sys/class/net/$br" ] && ip link del "$br" 2>/dev/null || true ;; esac
	fi
	rm -rf "$BENCH_TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

unshare -m --propagation private python3 bench/bench.py &
inner=$!
brc=0
wait "$inner" || brc=$?
inner=""
[ "$brc" = 0 ] || [ "$brc" = 3 ] || exit "$brc"  # 3: some cases failed, the rest is saved
python3 bench/report.py  # a partial run (BENCH_CASES) was merged into latest.json
if [ "$brc" = 3 ]; then
	echo "bench: some cases failed (their reasons are in bench/results/latest.md); the others' results are kept" >&2
	exit 1
fi
