# OCI image fixtures made by the tests themselves (no network, no skopeo):
# layer tars of the busybox image, their sha256, the image config, manifest
# and index.json, and the commands that import them through images/ctl.
# Load after helpers; W is the test's work dir.

case "$(uname -m)" in
x86_64) ARCH=amd64 ;;
aarch64) ARCH=arm64 ;;
*) ARCH=$(uname -m) ;;
esac

# oci_blob LAYOUT FILE: FILE as a blob of LAYOUT; prints "sha256:HEX SIZE".
oci_blob() {
	local h
	h=$(sha256sum <"$2")
	h=${h%% *}
	cp "$2" "$1/blobs/sha256/$h"
	echo "sha256:$h $(stat -c %s "$2")"
}

# oci_layout LAYOUT TAG LAYER...: an OCI image layout with one manifest,
# tagged TAG, whose layers are the files given, bottom first: *.gz as gzip
# layers, *.zst as zstd ones (refused), anything else as plain tar.
oci_layout() {
	local dir=$1 tag=$2 f d s diff mt layers="" diffs="" cd cs md ms
	shift 2
	mkdir -p "$dir/blobs/sha256"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	for f in "$@"; do
		read -r d s < <(oci_blob "$dir" "$f")
		case "$f" in
		*.gz) mt=tar+gzip diff=$(gunzip -c "$f" | sha256sum) ;;
		*.zst) mt=tar+zstd diff=$(sha256sum <"$f") ;;
		*) mt=tar diff=$(sha256sum <"$f") ;;
		esac
		layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.$mt\",\"digest\":\"$d\",\"size\":$s}"
		diffs+="${diffs:+,}\"sha256:${diff%% *}\""
	done
	# OCI_RUN: the image config's "config" object (Env, WorkingDir, Cmd...).
	local run=${OCI_RUN:-"{\"Env\":[\"PATH=/bin:/usr/bin\",\"IMG=$tag\"],\"WorkingDir\":\"/\",\"Cmd\":[\"/bin/sh\"]}"}
	printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' \
		"$ARCH" "$run" "$diffs" >"$dir.config"
	read -r cd cs < <(oci_blob "$dir" "$dir.config")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
		"$cd" "$cs" "$layers" >"$dir.manifest"
	read -r md ms < <(oci_blob "$dir" "$dir.manifest")
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
		"$md" "$ms" "$tag" >"$dir/index.json"
}

# The busybox image as one gzip layer, and small layers over it.
make_layers() {
	tar -C "$SBX_IMAGES/busybox" --numeric-owner -czf "$W/base.tar.gz" .
	mkdir -p "$W/t1/etc" "$W/t2/etc"
	echo one >"$W/t1/etc/motd"
	tar -C "$W/t1" --numeric-owner -cf "$W/top1.tar" .
	# Whiteouts: linuxrc goes, /etc becomes opaque (only its new file shows).
	: >"$W/t2/.wh.linuxrc"
	: >"$W/t2/etc/.wh..wh..opq"
	echo two >"$W/t2/etc/only"
	tar -C "$W/t2" --numeric-owner -cf "$W/top2.tar" .
}

import() {
	printf 'import %s %s\n' "$1" "$2" >"$MNT/images/ctl"
}

# wait_image NAME WANT: images/NAME/status reads WANT (bounded).
wait_image() {
	local st="" i
	for ((i = 0; i < SBX_STATUS_WAIT * 10; i++)); do
		st=$(sbx_cat "$MNT/images/$1/status" 2>/dev/null)
		[[ "$st" == "$2" ]] && return 0
		[[ "$st" == failed || "$st" == ready ]] && break
		sleep 0.1
	done
	echo "image $1 is '$st', wanted '$2'; error: $(sbx_cat "$MNT/images/$1/error" 2>/dev/null)" >&2
	return 1
}
