#!/bin/sh
# Builds the guest's initramfs: the sandbox image (a root filesystem
# directory, e.g. build/images/busybox) with the static guest agent as /init.
# The guest's root filesystem is this initramfs, so it lives in guest RAM and
# a memory snapshot carries the files with it. The Debian kernel has the 8250
# serial ports built in, so the guest needs no modules.
set -eu
image=${1:?usage: mkinitrd.sh IMAGE_DIR AGENT OUT}
agent=${2:?usage: mkinitrd.sh IMAGE_DIR AGENT OUT}
out=${3:?usage: mkinitrd.sh IMAGE_DIR AGENT OUT}
[ -d "$image" ] || { echo "mkinitrd: no image dir $image (run make image)" >&2; exit 1; }
command -v cpio >/dev/null || { echo "mkinitrd: cpio missing; apt-get install cpio" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sbx-initrd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -a "$image/." "$tmp/"
rm -f "$tmp/init"
cp "$agent" "$tmp/init"
chmod 0755 "$tmp/init"
mkdir -p "$tmp/dev" "$tmp/proc" "$tmp/sys" "$tmp/run" "$tmp/tmp"
# The kernel hands /init its console only when /dev/console exists in the archive.
[ -e "$tmp/dev/console" ] || mknod -m 600 "$tmp/dev/console" c 5 1 2>/dev/null || true
(cd "$tmp" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) |
	gzip -6 -n > "$out.tmp"
mv "$out.tmp" "$out"
echo "guest initramfs: $out ($(($(stat -c %s "$out") / 1024)) KiB)"
