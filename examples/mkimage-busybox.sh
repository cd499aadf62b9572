#!/bin/sh
# Builds the default `busybox` image: a root filesystem directory made from
# Debian's busybox-static (any directory rootfs works as an image).
set -eu
dest=${1:?usage: mkimage-busybox.sh DEST}
bb=/bin/busybox
if ! [ -x "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
	[ -x /usr/bin/busybox ] && bb=/usr/bin/busybox
fi
[ -x "$bb" ] || { echo "mkimage: busybox not found; apt-get install busybox-static" >&2; exit 1; }
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
cd "$tmp"
mkdir -p bin sbin usr/bin usr/sbin etc root tmp proc sys dev var/log home
chmod 1777 tmp
cp "$bb" bin/busybox
for applet in $(bin/busybox --list-full); do
	[ -e "$applet" ] || ln -s /bin/busybox "$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > etc/group
printf '127.0.0.1 localhost\n' > etc/hosts
cd - >/dev/null
rm -rf "$dest"
mv "$tmp" "$dest"
echo "image busybox ready in $dest ($(ls "$dest/bin" | wc -l) commands)"
