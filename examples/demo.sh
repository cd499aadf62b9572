#!/usr/bin/env bash
# `make demo`: mount sandboxfs on /sbx with the default image and run the
# quickstart. Unmounts at the end unless KEEP=1.
#   examples/demo.sh [DAEMON FLAGS...]    e.g. --no-net, --accel tcg, --bridge sbx1
#   make demo SBX_FLAGS='--no-net'         the same through make
set -euo pipefail
cd "$(dirname "$0")/.."
MNT=${MNT:-/sbx}
STATE=${STATE:-/var/lib/sandboxfs}
mkdir -p "$MNT" "$STATE"
started=""
if ! grep -q " $MNT fuse.sandboxfs " /proc/mounts; then
	build/sandboxfs --state "$STATE" --images "$PWD/build/images" "$@" "$MNT"
	started=1
fi
for _ in $(seq 100); do [ -e "$MNT/ctl" ] && break; sleep 0.1; done
examples/quickstart.sh "$MNT"
if [ -n "$started" ] && [ "${KEEP:-0}" != 1 ]; then
	fusermount3 -u "$MNT"
	echo "unmounted $MNT (make demo KEEP=1 leaves it mounted)"
else
	echo "$MNT stays mounted; unmount with: fusermount3 -u $MNT"
fi
