#!/usr/bin/env bats
# Image sources and layer formats past a plain OCI layout: the tar `docker
# save` writes (`import NAME docker-archive:FILE[:NAME:TAG]`), in its legacy
# form and its newer one; zstd-compressed layers (made with the zstd CLI);
# layer xattrs (GNU tar --xattrs, and a hand-written pax header). Built here
# with tar, zstd, python3, sha256sum and printf (no docker, no network).
# Layers named by a blob digest are shared with OCI imports of the same
# blobs (legacy layers, known by their diff_id, are kept apart); a hostile or
# broken archive or layer fails with a sentence and leaves nothing.

load helpers
load oci_helpers

setup() {
	setup_oci_work
}

teardown() {
	teardown_sbx
}

@test "docker-archive (docker save's legacy form): runs inside, its config applies, a linked layer, layers kept apart from an OCI import's" {
	make_layers
	tar -C "$SBX_IMAGES/busybox" --numeric-owner -cf "$W/base.tar" .
	tar --numeric-owner -cf "$W/empty.tar" -T /dev/null
	# The same plain base layer from an OCI layout first.
	oci_layout "$W/o" latest "$W/base.tar"
	import "o$SBX_TAG" "oci:$W/o"
	wait_image "o$SBX_TAG" ready
	# Empty layers twice: docker writes the second as a link to the first.
	docker_archive "$W/d.tar" "busy:1.0" "$W/base.tar" "$W/empty.tar" "$W/top1.tar" "$W/empty.tar"
	tar -tvf "$W/d.tar" | grep -q '/layer.tar -> \.\./'
	import "d$SBX_TAG" "docker-archive:$W/d.tar:busy:1.0"
	wait_image "d$SBX_TAG" ready
	run jq -r '.source, (.layers | length), (.lowers | length), .config.Env[1], .config.WorkingDir, .digest' \
		"$MNT/images/d$SBX_TAG/config"
	[[ "${lines[0]}" == "docker-archive:$W/d.tar:busy:1.0" && "${lines[1]}" == 4 ]]
	# The empty layer is stacked once (where it is highest).
	[[ "${lines[2]}" == 3 && "${lines[3]}" == FROM=docker && "${lines[4]}" == /etc ]]
	# The image's digest is its config's (docker's image ID).
	local cfg
	cfg=$(tar -xOf "$W/d.tar" ./manifest.json | jq -r '.[0].Config')
	[[ "${lines[5]}" == "sha256:${cfg%.json}" ]]
	# The base layer is known by its diff_id here (diffid-HEX), by its blob's
	# digest in the OCI import (sha256-HEX): the same hex (an uncompressed
	# blob), never the same layer dir.
	d0=$(jq -r '.lowers[0]' "$MNT/images/d$SBX_TAG/config")
	o0=$(jq -r '.lowers[0]' "$MNT/images/o$SBX_TAG/config")
	[[ "$d0" == diffid-* && "$o0" == sha256-* && "${d0#diffid-}" == "${o0#sha256-}" ]]
	[[ "$(find "$STATE/imports/layers" -mindepth 1 -maxdepth 1 | wc -l)" == 4 ]]
	sbx_create_ctl "s$SBX_TAG" "image=d$SBX_TAG"
	sbx_exec "s$SBX_TAG" 'cat /etc/motd; pwd; echo $FROM'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == $'one\n/etc\ndocker' ]]
	# Without a ref: the only image; NAME alone means NAME:latest.
	import "e$SBX_TAG" "docker-archive:$W/d.tar"
	wait_image "e$SBX_TAG" ready
	import "f$SBX_TAG" "docker-archive:$W/d.tar:busy"
	wait_image "f$SBX_TAG" failed
	grep -q "no image of the archive is tagged 'busy' (its tags: 'busy:1.0')" "$MNT/images/f$SBX_TAG/error"
}

@test "docker-archive in docker's newer form (blobs/sha256, gzip layers): shares the OCI layout's layer dirs" {
	make_layers
	oci_layout "$W/o" latest "$W/base.tar.gz" "$W/top2.tar"
	import "o$SBX_TAG" "oci:$W/o"
	wait_image "o$SBX_TAG" ready
	DOCKER_OCI=1 docker_archive "$W/n.tar" "busy:latest" "$W/base.tar.gz" "$W/top2.tar"
	import "n$SBX_TAG" "docker-archive:$W/n.tar:busy"
	wait_image "n$SBX_TAG" ready
	[[ "$(jq -c .lowers "$MNT/images/n$SBX_TAG/config")" == "$(jq -c .lowers "$MNT/images/o$SBX_TAG/config")" ]]
	[[ "$(find "$STATE/imports/layers" -mindepth 1 -maxdepth 1 | wc -l)" == 2 ]]
	sbx_create_ctl "s$SBX_TAG" "image=n$SBX_TAG"
	sbx_exec "s$SBX_TAG" 'ls -a /etc; test -e /linuxrc || echo no-linuxrc'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == $'.\n..\nonly\nno-linuxrc' ]]
}

@test "hostile or broken docker-archives fail with a sentence and leave nothing" {
	mkdir -p "$W/l/etc"
	echo original >"$W/l/etc/motd"
	tar -C "$W/l" --numeric-owner -cf "$W/l.tar" .
	local name
	for name in ../../etc/passwd /etc/passwd nothere/layer.tar; do
		DOCKER_MANIFEST="[{\"Config\":\"%s\",\"Layers\":[\"$name\"]}]" docker_archive "$W/h.tar" x:1 "$W/l.tar"
		case $name in
		..*) want="'..' component" ;;
		/*) want="absolute path" ;;
		*) want="layer 1 'nothere/layer.tar', which is not a file of the archive" ;;
		esac
		source_fails "h$SBX_TAG" "docker-archive:$W/h.tar" "$want"
	done
	# A layer linked out of the archive (absolute, or above its root) is no member.
	mkdir -p "$W/esc/a" "$W/esc/b"
	ln -s /etc/passwd "$W/esc/a/layer.tar"
	ln -s ../../../etc/passwd "$W/esc/b/layer.tar"
	for name in a b; do
		printf '[{"Config":"c.json","Layers":["%s/layer.tar"]}]' "$name" >"$W/esc/manifest.json"
		echo '{}' >"$W/esc/c.json"
		tar -C "$W/esc" -cf "$W/esc.tar" .
		source_fails "e$SBX_TAG" "docker-archive:$W/esc.tar" "'$name/layer.tar', which is not a file of the archive"
	done
	# A layer whose content is not its diff_id (the archive itself is fine).
	docker_archive "$W/t.tar" x:1 "$W/l.tar"
	sed -i 's/original/tampered/' "$W/t.tar"
	source_fails "t$SBX_TAG" "docker-archive:$W/t.tar" "not to its diff_id"
	# No diff_ids: a legacy layer has nothing to be checked by.
	DOCKER_DIFFS=0 docker_archive "$W/nd.tar" x:1 "$W/l.tar"
	source_fails "nd$SBX_TAG" "docker-archive:$W/nd.tar" "no diff_ids to check it by"
	# Cut short, and not a tar at all.
	docker_archive "$W/full.tar" x:1 "$W/l.tar"
	head -c 3000 "$W/full.tar" >"$W/cut.tar"
	source_fails "c$SBX_TAG" "docker-archive:$W/cut.tar" "truncated"
	yes garbage | head -c 8192 >"$W/junk.tar"
	source_fails "j$SBX_TAG" "docker-archive:$W/junk.tar" "bad checksum"
	# A manifest.json past 4 MiB is not read.
	mkdir "$W/big"
	head -c 5000000 /dev/zero | tr '\0' ' ' >"$W/big/manifest.json"
	tar -C "$W/big" -cf "$W/big.tar" .
	source_fails "b$SBX_TAG" "docker-archive:$W/big.tar" "manifest.json has 5000"
	# Two images and no ref: which one is not guessed.
	DOCKER_MANIFEST='[{"Config":"%s","RepoTags":["a:1"],"Layers":[]},{"Config":"c.json","RepoTags":["b:1"],"Layers":[]}]' \
		docker_archive "$W/two.tar" x:1 "$W/l.tar"
	source_fails "w$SBX_TAG" "docker-archive:$W/two.tar" "the archive has 2 images: name one with SOURCE:NAME:TAG (tags: 'a:1', 'b:1')"
	run sbx_write "$MNT/images/ctl" "import x docker-archive:$W"
	assert_fails_with "Invalid argument"
	grep -q "is not a file (a tar docker save wrote)" "$MNT/error"
}

@test "zstd layers (the zstd CLI's, one frame or several): unpacked and run; a truncated or corrupt one fails with a sentence" {
	command -v zstd >/dev/null ||
		skip "the zstd CLI is not installed (examples/install-deps.sh installs it: apt-get install zstd)"
	make_layers
	tar -C "$SBX_IMAGES/busybox" --numeric-owner -cf "$W/base.tar" .
	zstd -q -19 -c "$W/base.tar" >"$W/base.tar.zst"
	# The top layer as two frames one after the other.
	head -c 5000 "$W/top1.tar" | zstd -q -c >"$W/top1.tar.zst"
	tail -c +5001 "$W/top1.tar" | zstd -q -c >>"$W/top1.tar.zst"
	[[ "$(zstd -qdc "$W/top1.tar.zst" | cmp - "$W/top1.tar" && echo same)" == same ]]
	oci_layout "$W/z" latest "$W/base.tar.zst" "$W/top1.tar.zst"
	grep -q 'layer.v1.tar+zstd' "$W/z.manifest"
	import "z$SBX_TAG" "oci:$W/z"
	wait_image "z$SBX_TAG" ready
	sbx_create_ctl "s$SBX_TAG" "image=z$SBX_TAG"
	sbx_exec "s$SBX_TAG" 'cat /etc/motd; busybox true && echo bb'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == $'one\nbb' ]]
	rmdir "$MNT/s$SBX_TAG"
	rmdir "$MNT/images/z$SBX_TAG"

	head -c 20000 "$W/base.tar.zst" >"$W/cut.tar.zst"
	import_fails "c$SBX_TAG" "$W/cut.tar.zst" "the zstd stream is truncated"
	# The frame header's reserved bit set: zstd refuses it, always.
	cp "$W/base.tar.zst" "$W/bad.tar.zst"
	printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$W/bad.tar.zst" bs=1 seek=4 conv=notrunc status=none
	import_fails "b$SBX_TAG" "$W/bad.tar.zst" "the zstd stream is corrupt"
	# Bytes changed in the middle: zstd finds it (a block it cannot decode,
	# or the frame's checksum at its end) or, when the bytes land in
	# literals, the tar reader finds what they broke first (a bad checksum, a
	# zero block in the middle, a malformed field...); where they land
	# depends on the image's bytes. Either way: a sentence, nothing left.
	cp "$W/base.tar.zst" "$W/mid.tar.zst"
	printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$W/mid.tar.zst" bs=1 seek=30000 conv=notrunc status=none
	oci_layout "$W/m$SBX_TAG" latest "$W/mid.tar.zst"
	import "m$SBX_TAG" "oci:$W/m$SBX_TAG"
	wait_image "m$SBX_TAG" failed
	run sbx_cat "$MNT/images/m$SBX_TAG/error"
	[[ "$output" == *"the zstd stream is corrupt"* || "$output" == *" at byte "* || "$output" == *"entry '"* ]]
	nothing_left
	assert_healthy
	rmdir "$MNT/images/m$SBX_TAG"
}

@test "layer xattrs: user.* and security.capability are set; trusted.overlay.* cannot fake an opaque dir or a redirect, and is counted in the log" {
	make_layers
	# GNU tar --xattrs: a user xattr and a file capability (cap_net_raw).
	mkdir -p "$W/x/bin"
	echo ping >"$W/x/bin/ping"
	python3 - "$W/x/bin/ping" <<'PY'
import os, sys
os.setxattr(sys.argv[1], "user.mime", b"text/plain")
os.setxattr(sys.argv[1], "security.capability", bytes([1, 0, 0, 2, 0, 0x20, 0, 0]) + bytes(12))
PY
	tar -C "$W/x" --numeric-owner --xattrs --xattrs-include='*' -cf "$W/x.tar" .
	grep -aq 'SCHILY.xattr.security.capability' "$W/x.tar"
	# A hand-written pax layer: /etc claims to be opaque, /bin to be a redirect.
	python3 - "$W/evil.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, xa in (("etc", "trusted.overlay.opaque"), ("bin", "trusted.overlay.redirect")):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        ti.pax_headers = {"SCHILY.xattr." + xa: "y" if xa.endswith("opaque") else "/nothing"}
        t.addfile(ti)
    ti = tarfile.TarInfo("etc/evil")
    ti.size = 5
    t.addfile(ti, io.BytesIO(b"evil\n"))
PY
	oci_layout "$W/a" latest "$W/base.tar.gz" "$W/x.tar" "$W/evil.tar"
	import "a$SBX_TAG" "oci:$W/a"
	wait_image "a$SBX_TAG" ready
	local lx le
	lx=$(jq -r '.lowers[1]' "$MNT/images/a$SBX_TAG/config")
	le=$(jq -r '.lowers[2]' "$MNT/images/a$SBX_TAG/config")
	run python3 -c 'import os, sys; p = sys.argv[1]; print(os.getxattr(p, "user.mime").decode(), os.getxattr(p, "security.capability").hex())' \
		"$STATE/imports/layers/$lx/bin/ping"
	[[ "$status" -eq 0 && "$output" == "text/plain 0100000200200000000000000000000000000000" ]]
	run python3 -c 'import os, sys; print(sorted(os.listxattr(sys.argv[1])))' "$STATE/imports/layers/$le/etc"
	[[ "$output" == "[]" ]]
	grep -q "2 xattrs not set (only user.\* and security.capability are), the first trusted.overlay.opaque on 'etc'" "$SBX_LOG"
	# In the sandbox: /etc still shows the layers below, /bin is not redirected.
	sbx_create_ctl "s$SBX_TAG" "image=a$SBX_TAG"
	sbx_exec "s$SBX_TAG" 'cat /etc/evil; test -e /etc/passwd && echo passwd; cat /bin/ping; busybox true && echo bb'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == $'evil\npasswd\nping\nbb' ]]
}
