#!/bin/sh
# Builds the guest's initramfs: the sandbox image (a root filesystem
# directory, e.g. build/images/busybox) with the static guest agent as /init.
# The guest's root filesystem is this initramfs, so it lives in guest RAM and
# a memory snapshot carries the files with it. The Debian kernel has the 8250
# serial ports built in; its virtio drivers are modules, so those of the
# agent's channel (virtio-serial) and of the network device go into
# /lib/sbx-modules (below). KVER: the guest kernel's version (default: the newest
# /boot/vmlinuz-*, the one mkvmlinux.sh extracts).
set -eu
usage="usage: mkinitrd.sh IMAGE_DIR AGENT OUT [KVER]"
image=${1:?$usage}
agent=${2:?$usage}
out=${3:?$usage}
kver=${4:-}
if [ -z "$kver" ]; then
	kver=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
	kver=${kver#/boot/vmlinuz-}
fi
[ -d "$image" ] || { echo "mkinitrd: no image dir $image (run make image)" >&2; exit 1; }
command -v cpio >/dev/null || { echo "mkinitrd: cpio missing; apt-get install cpio" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sbx-initrd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -a "$image/." "$tmp/"
rm -f "$tmp/init"
cp "$agent" "$tmp/init"
chmod 0755 "$tmp/init"
# Modules in load order (modprobe resolves the dependencies): `order` has the
# agent's channel (virtio_mmio, virtio_console: the agent loads them first,
# always), `net.order` what the network device needs besides (loaded when the
# VM has one), `blk.order` what an image's root disk needs (sbx.root=).
# OUT.channel tells the daemon which device the agent talks on:
# virtio-serial when the initramfs has its driver, the ISA serial port when not.
mods="$tmp/lib/sbx-modules"
# add_modules LIST MODULE...: copies each module and its dependencies (those
# no list has yet) into $mods, appending their names to $mods/LIST.
add_modules() {
	list=$1
	shift
	: >"$mods/$list"
	for m in "$@"; do
		modprobe -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" { print $2 }'
	done | while read -r ko; do
		base=$(basename "$ko")
		case $base in
		*.ko.xz) base=${base%.xz} ;;
		*.ko.zst) base=${base%.zst} ;;
		*.ko) ;;
		*) continue ;;
		esac
		cat "$mods"/*order | grep -qxF "$base" && continue
		case $ko in
		*.ko.xz) xz -dc "$ko" >"$mods/$base" ;;
		*.ko.zst) zstd -qdc "$ko" >"$mods/$base" ;;
		*) cp "$ko" "$mods/$base" ;;
		esac
		echo "$base" >>"$mods/$list"
	done
}
channel=serial
if [ -n "$kver" ] && [ -d "/lib/modules/$kver" ] && command -v modprobe >/dev/null; then
	mkdir -p "$mods"
	add_modules order virtio_mmio virtio_console
	add_modules net.order virtio_net
	# An image's root disk (sbx.root=): read-only erofs under an overlay.
	add_modules blk.order virtio_blk erofs overlay
	if grep -q '^virtio_console\.ko$' "$mods/order"; then
		channel=virtio-serial
	else
		echo "mkinitrd: no virtio_console module for kernel $kver: the agent talks over the ISA serial port (slow)" >&2
	fi
	grep -q '^erofs\.ko$' "$mods/blk.order" ||
		echo "mkinitrd: no erofs module for kernel $kver: VMs can boot only the busybox image" >&2
	grep -q '^virtio_net\.ko$' "$mods/net.order" ||
		echo "mkinitrd: no virtio_net module for kernel $kver: VMs will have no network" >&2
else
	echo "mkinitrd: no modules of kernel '${kver:-?}' (/lib/modules): VMs will have no network," \
		"and the agent talks over the ISA serial port (slow)" >&2
fi
mkdir -p "$tmp/dev" "$tmp/proc" "$tmp/sys" "$tmp/run" "$tmp/tmp"
# The kernel hands /init its console only when /dev/console exists in the archive.
[ -e "$tmp/dev/console" ] || mknod -m 600 "$tmp/dev/console" c 5 1 2>/dev/null || true
(cd "$tmp" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) |
	gzip -6 -n > "$out.tmp"
echo "$channel" >"$out.channel.tmp"
mv "$out.tmp" "$out"
mv "$out.channel.tmp" "$out.channel"
echo "guest initramfs: $out ($(($(stat -c %s "$out") / 1024)) KiB)"
