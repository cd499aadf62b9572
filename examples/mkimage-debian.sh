#!/bin/sh
# Builds the `debian` image: Debian 12 (bookworm) with python3, made by
# Debian's mmdebstrap from the host's own apt sources (the archive must be
# reachable). Documentation, man pages and locales are left out (about 180 MB
# instead of 217). Fails with a sentence, leaving nothing half-made, when the
# archive cannot be reached.
set -eu
dest=${1:?usage: mkimage-debian.sh DEST}
command -v mmdebstrap >/dev/null ||
	{ echo "mkimage-debian: mmdebstrap not found; apt-get install mmdebstrap" >&2; exit 1; }
# The host's sources (deb822 or one-line), else Debian's own mirror.
src=""
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
	if [ -s "$f" ] && grep -q '^[^#]*deb' "$f"; then
		src=$f
		break
	fi
done
[ -n "$src" ] || src=http://deb.debian.org/debian
# Made beside DEST under a dot name (a daemon listing the folder skips it).
tmp="$(dirname "$dest")/.$(basename "$dest").tmp.$$"
log="$dest.log"
rm -rf "$tmp"
mkdir -p "$(dirname "$dest")"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
if ! mmdebstrap --variant=apt --include=python3,ca-certificates --quiet \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	bookworm "$tmp" "$src" >"$log" 2>&1; then
	echo "mkimage-debian: mmdebstrap failed (is the Debian archive in $src reachable?); its log: $log" >&2
	tail -n 5 "$log" >&2
	exit 1
fi
# No apt lists in the image: they are 40 MB and stale from the first day.
rm -rf "$tmp/var/lib/apt/lists/"* "$tmp/var/cache/apt/"*.bin
printf '127.0.0.1 localhost\n' >"$tmp/etc/hosts"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "image debian ready in $dest ($(du -sm "$dest" | cut -f1) MB, $(($(date +%s) - start)) s;" \
	"$("$dest/usr/bin/python3" --version 2>/dev/null || echo python3))"
