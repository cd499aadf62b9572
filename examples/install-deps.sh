#!/bin/sh
# Installs what sandboxfs needs to build, test and run on Debian 12 (as root).
# qemu-system-x86, linux-image-amd64 (the guest kernel in /boot), cpio and
# xz-utils are for the qemu backend (make guest); prometheus brings promtool,
# which checks /sbx/metrics in the tests; the tests read JSON (config, the
# journal) with jq; e2fsprogs formats the disks of disk= (mkfs.ext4);
# erofs-utils makes the root disks of qemu VMs of images other than busybox
# (mkfs.erofs);
# zlib1g-dev and libzstd-dev read gzip- and zstd-compressed image layers
# (images/ctl import), and the tests make a zstd layer with zstd;
# mmdebstrap makes the debian image (make image-debian); skopeo pulls
# images from a registry (import NAME docker://...), and the tests serve
# their own registry on 127.0.0.1 with docker-registry (its packaged
# service is kept from starting during the install, as the bench does for
# docker: a policy-rc.d for the install only). `make
# fresh` (tests/fresh/run.sh) checks this list on a minimal Debian 12 root.
set -eu
pkgs="build-essential pkg-config libfuse3-dev fuse3 liburcu-dev libjansson-dev libcap-dev
      libmnl-dev zlib1g-dev libzstd-dev zstd libseccomp-dev bats busybox-static iproute2 procps psmisc util-linux e2fsprogs erofs-utils file
      qemu-system-x86 linux-image-amd64 cpio xz-utils python3 python3-pytest prometheus inotify-tools jq nftables mmdebstrap
      skopeo docker-registry"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
	fi
	rc=0
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing || rc=$?
	[ -z "$policy" ] || rm -f "$policy"
	[ "$rc" -eq 0 ] || exit "$rc"
fi
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing; sandboxfs needs FUSE" >&2; exit 1; }
