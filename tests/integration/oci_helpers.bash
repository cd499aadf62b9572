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
# layers, *.zst as zstd ones, anything else as plain tar.
oci_layout() {
	local dir=$1 tag=$2 f d s diff mt layers="" diffs="" cd cs md ms
	shift 2
	mkdir -p "$dir/blobs/sha256"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	for f in "$@"; do
		read -r d s < <(oci_blob "$dir" "$f")
		case "$f" in
		*.gz) mt=tar+gzip diff=$(gunzip -c "$f" | sha256sum) ;;
		*.zst) mt=tar+zstd diff=$(zstd -qdc "$f" 2>/dev/null | sha256sum) ;;
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

# docker_archive OUT REPOTAG LAYER...: the tar `docker save` writes, of one
# image tagged REPOTAG whose layers are the files given, bottom first. Its
# legacy form: ID/layer.tar (ID/VERSION, ID/json beside it) per layer, a
# layer given twice a symbolic link to its first copy (../ID/layer.tar, as
# docker writes it), HEX.json the config, manifest.json and repositories.
# DOCKER_OCI=1: the newer form, layers and config as blobs/sha256/HEX.
# DOCKER_MANIFEST: manifest.json as given (%s: the config's name), and
# DOCKER_DIFFS=0: a config without diff_ids.
docker_archive() {
	local out=$1 tag=$2 dir f h d name prev="" id layers="" diffs="" cfg
	local -A seen=()
	shift 2
	dir=$(mktemp -d "$W/docker.XXXXXX")
	for f in "$@"; do
		h=$(sha256sum <"$f")
		h=${h%% *}
		case "$f" in
		*.gz) d=$(gunzip -c "$f" | sha256sum) ;;
		*) d=$h ;;
		esac
		diffs+="${diffs:+,}\"sha256:${d%% *}\""
		if [[ -n "${DOCKER_OCI:-}" ]]; then
			mkdir -p "$dir/blobs/sha256"
			cp "$f" "$dir/blobs/sha256/$h"
			name="blobs/sha256/$h"
		else
			id=$(printf '%s %s' "$prev" "$h" | sha256sum)
			id=${id%% *}
			prev=$id
			mkdir "$dir/$id"
			echo 1.0 >"$dir/$id/VERSION"
			echo '{}' >"$dir/$id/json"
			if [[ -n "${seen[$h]:-}" ]]; then
				ln -s "../${seen[$h]}/layer.tar" "$dir/$id/layer.tar"
			else
				cp "$f" "$dir/$id/layer.tar"
				seen[$h]=$id
			fi
			name="$id/layer.tar"
		fi
		layers+="${layers:+,}\"$name\""
	done
	[[ "${DOCKER_DIFFS:-1}" == 0 ]] && diffs=""
	printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin:/usr/bin","FROM=docker"],"WorkingDir":"/etc","Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
		"$ARCH" "$diffs" >"$dir/config.tmp"
	h=$(sha256sum <"$dir/config.tmp")
	h=${h%% *}
	if [[ -n "${DOCKER_OCI:-}" ]]; then
		cfg="blobs/sha256/$h"
	else
		cfg="$h.json"
	fi
	mv "$dir/config.tmp" "$dir/$cfg"
	local manifest="[{\"Config\":\"%s\",\"RepoTags\":[\"$tag\"],\"Layers\":[$layers]}]"
	# shellcheck disable=SC2059
	printf "${DOCKER_MANIFEST:-$manifest}" "$cfg" >"$dir/manifest.json"
	printf '{"%s":{"%s":"%s"}}' "${tag%%:*}" "${tag#*:}" "${prev:-$h}" >"$dir/repositories"
	tar -C "$dir" --numeric-owner -cf "$out" .
	rm -rf "$dir"
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

# Nothing of a failed import on disk: no layer, no temporary dir, no config.
nothing_left() {
	local left
	left=$(find "$STATE/imports/layers" "$STATE/imports/tmp" -mindepth 1 -maxdepth 1; ls "$STATE/imports/images")
	[[ -z "$left" ]] || {
		echo "left on disk: $left" >&2
		return 1
	}
}

# import_fails NAME LAYER WANT: a one-layer image of LAYER fails with WANT in
# its error, leaves nothing, and the daemon stays healthy.
import_fails() {
	oci_layout "$W/$1" latest "$2"
	source_fails "$1" "oci:$W/$1" "$3"
}

# source_fails NAME SOURCE WANT [OPTION]: the import of SOURCE (with the
# import line's OPTION) fails with WANT in its error, leaves nothing, and the
# daemon stays healthy.
source_fails() {
	local name=$1 want=$3
	import "$name" "$2" ${4:+"$4"}
	wait_image "$name" failed
	run sbx_cat "$MNT/images/$name/error"
	[[ "$output" == *"$want"* ]] || {
		echo "error of $name: '$output', wanted '$want'" >&2
		return 1
	}
	nothing_left
	assert_healthy
	rmdir "$MNT/images/$name"
	[[ ! -e "$MNT/images/$name" ]]
}

# import NAME SOURCE [OPTION]
import() {
	printf 'import %s\n' "$*" >"$MNT/images/ctl"
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

# setup for suites that build OCI fixtures: a daemon, and W, their work dir.
setup_oci_work() {
	setup_sbx
	W="$SBX_TMP/work"
	mkdir -p "$W"
}
