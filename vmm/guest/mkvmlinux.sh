#!/bin/sh
# Extracts the uncompressed kernel (an ELF with a PVH note) from Debian's
# bzImage: QEMU boots it directly with -kernel, which skips the in-guest xz
# decompression that dominates a TCG boot (5.1 s -> 2.0 s, notes/qemu-live-fork.md).
set -eu
out=${1:?usage: mkvmlinux.sh OUT [VMLINUZ]}
src=${2:-}
if [ -z "$src" ]; then
	# The newest Debian kernel in /boot (linux-image-amd64).
	src=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$src" ] && [ -r "$src" ] || {
	echo "mkvmlinux: no /boot/vmlinuz-*; apt-get install linux-image-amd64" >&2; exit 1; }
# The offset of the xz stream: the magic FD 37 7A 58 5A 00.
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$src" | head -n 1 | cut -d: -f1)
[ -n "$off" ] || { echo "mkvmlinux: $src has no xz payload" >&2; exit 1; }
tmp="$out.tmp.$$"
# xz stops with an error at the trailing bytes after the stream; the ELF is complete by then.
tail -c +"$((off + 1))" "$src" | xz -dc --single-stream > "$tmp" 2>/dev/null || true
if ! head -c 4 "$tmp" | grep -q 'ELF'; then
	rm -f "$tmp"
	echo "mkvmlinux: the payload of $src is not an ELF kernel" >&2
	exit 1
fi
mv "$tmp" "$out"
echo "guest kernel: $out from $src ($(($(stat -c %s "$out") / 1048576)) MiB)"
