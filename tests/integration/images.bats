#!/usr/bin/env bats
# Images (/sbx/images/): the directories of --images, and images imported
# from OCI layouts (`import NAME oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`
# written to images/ctl), built here by hand from the busybox image: layer
# tars, their sha256 (sha256sum), the image config, manifest and index.json
# (printf). No network, no skopeo. Layers are unpacked once and shared; a
# hostile or broken layout fails with a sentence and leaves nothing.

load helpers
load oci_helpers

setup() {
	setup_oci_work
}

teardown() {
	teardown_sbx
}

# hostile_tar OUT KIND [ARG]: a layer tar no import may take.
hostile_tar() {
	python3 - "$@" <<'EOF'
import io, sys, tarfile
out, kind = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
    def add(name, data=None, **kw):
        ti = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(ti, k, v)
        if data is not None:
            ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
    add("ok", b"fine\n")
    if kind == "dotdot":
        add("etc/../../../escaped", b"x\n")
    elif kind == "symlink":
        add("esc", type=tarfile.SYMTYPE, linkname=sys.argv[3])
        add("esc/pwned", b"x\n")
    elif kind == "device":
        add("dev/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0)
EOF
}

@test "images/ is a directory: the busybox dir image is ready, with its files" {
	run ls "$MNT/images"
	[ "$status" -eq 0 ]
	grep -qx busybox <<<"$output"
	grep -qx ctl <<<"$output"
	[[ "$(sbx_cat "$MNT/images/busybox/status")" == ready ]]
	run jq -r '.source + " " + .path' "$MNT/images/busybox/config"
	[[ "$output" == "dir $SBX_IMAGES/busybox" ]]
	[[ -f "$MNT/images/busybox/progress" && -f "$MNT/images/busybox/error" ]]
	# A directory image is the user's: rmdir leaves it (and says where it is).
	run rmdir "$MNT/images/busybox"
	assert_fails_with "Operation not permitted"
	grep -q "remove it there" "$MNT/error"
	[[ -d "$SBX_IMAGES/busybox" ]]
	run mkdir "$MNT/images/x$SBX_TAG"
	assert_fails_with "Operation not permitted"
}

@test "import from an OCI layout and an archive: run inside, shared base layer, whiteouts, rmdir" {
	make_layers
	oci_layout "$W/a" latest "$W/base.tar.gz" "$W/top1.tar"
	oci_layout "$W/b" v2 "$W/base.tar.gz" "$W/top2.tar"
	tar -C "$W/b" -cf "$W/b.tar" .
	import "a$SBX_TAG" "oci:$W/a:latest"
	import "b$SBX_TAG" "oci-archive:$W/b.tar:v2"
	wait_image "a$SBX_TAG" ready
	wait_image "b$SBX_TAG" ready
	run ls "$MNT/images"
	grep -qx "a$SBX_TAG" <<<"$output"
	grep -qx "b$SBX_TAG" <<<"$output"
	# progress: all of it done; config: source, layers, the image's settings.
	local done total
	done=$(sbx_key "$MNT/images/a$SBX_TAG/progress" done_bytes)
	total=$(sbx_key "$MNT/images/a$SBX_TAG/progress" total_bytes)
	[[ "$done" -gt 0 && "$done" == "$total" ]]
	run jq -r '.source, (.layers | length), .config.Env[1], .digest' "$MNT/images/a$SBX_TAG/config"
	[[ "${lines[0]}" == "oci:$W/a:latest" && "${lines[1]}" == 2 && "${lines[2]}" == IMG=latest ]]
	[[ "${lines[3]}" =~ ^sha256:[0-9a-f]{64}$ ]]
	# The base layer is unpacked once: both images list the same dir.
	local la lb
	la=$(jq -r '.lowers[0]' "$MNT/images/a$SBX_TAG/config")
	lb=$(jq -r '.lowers[0]' "$MNT/images/b$SBX_TAG/config")
	[[ "$la" == "$lb" && -d "$STATE/imports/layers/$la" ]]
	[[ "$(find "$STATE/imports/layers" -mindepth 1 -maxdepth 1 | wc -l)" == 3 ]]

	sbx_create_ctl "sa$SBX_TAG" "image=a$SBX_TAG"
	sbx_create_ctl "sb$SBX_TAG" "image=b$SBX_TAG"
	sbx_exec "sa$SBX_TAG" 'cat /etc/motd; busybox true && echo bb'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == $'one\nbb' ]]
	[[ "$(jq -r .image "$MNT/sa$SBX_TAG/config")" == "a$SBX_TAG" ]]
	# Whiteouts: linuxrc is gone, /etc shows only what the top layer has.
	sbx_exec "sb$SBX_TAG" 'ls -a /etc; test -e /linuxrc || echo no-linuxrc'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == $'.\n..\nonly\nno-linuxrc' ]]
	# In the layer: the overlayfs forms (a 0:0 device, the opaque xattr).
	local lt
	lt=$(jq -r '.lowers[1]' "$MNT/images/b$SBX_TAG/config")
	[[ "$(stat -c '%F %t:%T' "$STATE/imports/layers/$lt/linuxrc")" == "character special file 0:0" ]]
	run python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "trusted.overlay.opaque").decode())' \
		"$STATE/imports/layers/$lt/etc"
	[[ "$output" == y ]]

	# In use (running, then stopped): EBUSY, with the sentence in /sbx/error.
	run rmdir "$MNT/images/a$SBX_TAG"
	assert_fails_with "Device or resource busy"
	grep -q "image 'a$SBX_TAG' is used by sandbox sa$SBX_TAG" "$MNT/error"
	echo stop >"$MNT/sa$SBX_TAG/ctl"
	wait_status "sa$SBX_TAG" stopped
	run rmdir "$MNT/images/a$SBX_TAG"
	assert_fails_with "Device or resource busy"
	rmdir "$MNT/sa$SBX_TAG"
	rmdir "$MNT/images/a$SBX_TAG"
	[[ ! -e "$MNT/images/a$SBX_TAG" && ! -e "$STATE/imports/images/a$SBX_TAG.json" ]]
	# Its own layer went; the shared one stays for b.
	[[ -d "$STATE/imports/layers/$la" ]]
	[[ "$(find "$STATE/imports/layers" -mindepth 1 -maxdepth 1 | wc -l)" == 2 ]]
	rmdir "$MNT/sb$SBX_TAG"
	# A warm pool whose spec names it keeps it too.
	mkdir "$MNT/pools/p$SBX_TAG"
	echo "image=b$SBX_TAG" >"$MNT/pools/p$SBX_TAG/spec"
	run rmdir "$MNT/images/b$SBX_TAG"
	assert_fails_with "Device or resource busy"
	grep -q "in the spec of warm pool p$SBX_TAG" "$MNT/error"
	rmdir "$MNT/pools/p$SBX_TAG"
	rmdir "$MNT/images/b$SBX_TAG"
	nothing_left
}

@test "an image of 11 layers stacks 8 dirs: its top ones merged, whiteouts kept" {
	tar -C "$SBX_IMAGES/busybox" --numeric-owner -czf "$W/base.tar.gz" .
	local i layers=("$W/base.tar.gz")
	for i in $(seq 1 10); do
		mkdir -p "$W/l$i/files"
		echo "$i" >"$W/l$i/files/f$i"
		# Layer 9 removes f3 (below the merge) and f8 (inside it).
		if ((i == 9)); then
			: >"$W/l$i/files/.wh.f3"
			: >"$W/l$i/files/.wh.f8"
		fi
		tar -C "$W/l$i" --numeric-owner -cf "$W/l$i.tar" .
		layers+=("$W/l$i.tar")
	done
	oci_layout "$W/m" latest "${layers[@]}"
	import "m$SBX_TAG" "oci:$W/m"
	wait_image "m$SBX_TAG" ready
	run jq -r '(.layers | length), (.lowers | length), .lowers[7]' "$MNT/images/m$SBX_TAG/config"
	[[ "${lines[0]}" == 11 && "${lines[1]}" == 8 && "${lines[2]}" == merged-* ]]
	sbx_create_ctl "s$SBX_TAG" "image=m$SBX_TAG"
	sbx_exec "s$SBX_TAG" 'cd /files && echo *'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == "f1 f10 f2 f4 f5 f6 f7 f9" ]]
	# The layers merged away are not kept: 7 below, the merged one.
	[[ "$(find "$STATE/imports/layers" -mindepth 1 -maxdepth 1 | wc -l)" == 8 ]]
}

@test "the image config applies: Env and WorkingDir to exec and jobs, Entrypoint and Cmd to an empty run" {
	make_layers
	OCI_RUN='{"Env":["PATH=/bin:/usr/bin","GREETING=hello world","Q=it'"'"'s; $(x)","bad-name=x"],"WorkingDir":"/etc","Entrypoint":["/bin/sh","-c"],"Cmd":["echo \"$GREETING from $(pwd)\""]}' \
		oci_layout "$W/e" latest "$W/base.tar.gz"
	import "e$SBX_TAG" "oci:$W/e"
	wait_image "e$SBX_TAG" ready
	sbx_create_ctl "se$SBX_TAG" "image=e$SBX_TAG"
	# The values arrive as written, quotes and $(...) included, not run.
	sbx_exec "se$SBX_TAG" 'echo "$GREETING|$Q|$(pwd)"'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == "hello world|it's; \$(x)|/etc" ]]
	n=$(sbx_run "se$SBX_TAG" 'pwd; echo $GREETING')
	wait_job "se$SBX_TAG" "$n" exited
	[ "$(sbx_cat "$MNT/se$SBX_TAG/jobs/$n/stdout")" = $'/etc\nhello world' ]
	[ "$(sbx_cat "$MNT/se$SBX_TAG/jobs/$n/cmd")" = 'pwd; echo $GREETING' ]
	# run with an empty line: Entrypoint then Cmd.
	m=$(sbx_run "se$SBX_TAG" '')
	wait_job "se$SBX_TAG" "$m" exited
	[ "$(sbx_cat "$MNT/se$SBX_TAG/jobs/$m/stdout")" = "hello world from /etc" ]
	want=$(printf '%s' "'/bin/sh' '-c' 'echo \"\$GREETING from \$(pwd)\"'")
	got=$(sbx_cat "$MNT/se$SBX_TAG/jobs/$m/cmd")
	[ "$got" = "$want" ]
	# A directory image has no default command: an empty run is EINVAL.
	sbx_create "plain$SBX_TAG"
	run sbx_write "$MNT/plain$SBX_TAG/run" ""
	assert_fails_with "Invalid argument"
	grep -q "has no Entrypoint or Cmd" "$MNT/plain$SBX_TAG/error"
	sbx_exec "plain$SBX_TAG" 'pwd'
	[ "$SBX_OUT" = / ]
}

@test "an imported image survives a daemon restart" {
	make_layers
	oci_layout "$W/a" latest "$W/base.tar.gz" "$W/top1.tar"
	import "r$SBX_TAG" "oci:$W/a"
	wait_image "r$SBX_TAG" ready
	sbx_stop_daemon
	sbx_start_daemon
	[[ "$(sbx_cat "$MNT/images/r$SBX_TAG/status")" == ready ]]
	sbx_create_ctl "s$SBX_TAG" "image=r$SBX_TAG"
	sbx_exec "s$SBX_TAG" 'cat /etc/motd'
	[[ "$SBX_OUT" == one ]]
}

@test "examples/sbx import: waits until ready with progress lines, or fails with the image's error" {
	make_layers
	oci_layout "$W/a" latest "$W/base.tar.gz" "$W/top1.tar"
	# Not a terminal here: a line when the status changes (and every 5 s).
	run env SBX="$MNT" "$SBX_REPO/examples/sbx" import "x$SBX_TAG" "oci:$W/a"
	[[ "$status" -eq 0 ]]
	[[ "$output" == *"x$SBX_TAG: ready 100% ("*" bytes)"* ]]
	[[ "$(sbx_cat "$MNT/images/x$SBX_TAG/status")" == ready ]]
	# On a terminal (script(1) gives it one): the bar, redrawn in place.
	run script -qec "SBX='$MNT' '$SBX_REPO/examples/sbx' import 'z$SBX_TAG' 'oci:$W/a'" /dev/null
	[[ "$status" -eq 0 ]]
	[[ "$output" == *$'\r'"ready     [##############################] 100% "* ]]
	yes garbage | head -c 8192 >"$W/junk.tar"
	oci_layout "$W/j" latest "$W/junk.tar"
	run env SBX="$MNT" "$SBX_REPO/examples/sbx" import "j$SBX_TAG" "oci:$W/j"
	[[ "$status" -eq 2 ]]
	[[ "$output" == *"import of j$SBX_TAG failed: "*"bad checksum"* ]]
	# A refused command: the daemon's sentence, and no image.
	run env SBX="$MNT" "$SBX_REPO/examples/sbx" import "y$SBX_TAG" "docker://busybox"
	[[ "$status" -eq 2 ]]
	[[ "$output" == *"import refused: "* ]]
	[[ ! -e "$MNT/images/y$SBX_TAG" ]]
}

@test "the image config's User: commands and jobs run as it, by name or number; an unknown one fails" {
	make_layers
	# busybox's /etc/passwd has nobody (65534, home /nonexistent).
	local u want
	for u in nobody 1234:5678 nobody:root 65534; do
		OCI_RUN='{"User":"'"$u"'","Cmd":["/bin/sh"]}' oci_layout "$W/u" latest "$W/base.tar.gz"
		import "u$SBX_TAG" "oci:$W/u"
		wait_image "u$SBX_TAG" ready
		sbx_create_ctl "su$SBX_TAG" "image=u$SBX_TAG"
		sbx_exec "su$SBX_TAG" 'echo $(id -u):$(id -g):$HOME'
		case $u in
		nobody | 65534) want="65534:65534:/nonexistent" ;;
		1234:5678) want="1234:5678:/" ;;
		nobody:root) want="65534:0:/nonexistent" ;;
		esac
		[[ "$SBX_RC" == 0 && "$SBX_OUT" == "$want" ]] || {
			echo "User $u: '$SBX_OUT' (rc $SBX_RC), wanted '$want'" >&2
			return 1
		}
		n=$(sbx_run "su$SBX_TAG" 'id -u')
		wait_job "su$SBX_TAG" "$n" exited
		[[ "$(sbx_cat "$MNT/su$SBX_TAG/jobs/$n/stdout")" == "${want%%:*}" ]]
		rmdir "$MNT/su$SBX_TAG"
		rmdir "$MNT/images/u$SBX_TAG"
		rm -rf "$W/u" "$W/u.config" "$W/u.manifest"
	done
	# A name the sandbox's /etc/passwd lacks: the command fails (126), saying so.
	OCI_RUN='{"User":"ghost","Cmd":["/bin/sh"]}' oci_layout "$W/g" latest "$W/base.tar.gz"
	import "g$SBX_TAG" "oci:$W/g"
	wait_image "g$SBX_TAG" ready
	sbx_create_ctl "sg$SBX_TAG" "image=g$SBX_TAG"
	sbx_exec "sg$SBX_TAG" 'id -u'
	[[ "$SBX_RC" == 126 && "$SBX_OUT" == *"user 'ghost'"*"not in the sandbox's /etc/passwd"* ]]
	# A User that is no user name (a path, a blank) fails the import itself.
	OCI_RUN='{"User":"../root","Cmd":["/bin/sh"]}' oci_layout "$W/b" latest "$W/base.tar.gz"
	import "b$SBX_TAG" "oci:$W/b"
	wait_image "b$SBX_TAG" failed
	grep -q "User '../root' is not USER, UID" "$MNT/images/b$SBX_TAG/error"
}

@test "hostile or broken layouts fail with a sentence and leave nothing; the daemon stays healthy" {
	hostile_tar "$W/dotdot.tar" dotdot
	import_fails "h1$SBX_TAG" "$W/dotdot.tar" "'..' component"

	mkdir -p "$W/outside"
	hostile_tar "$W/symlink.tar" symlink "$W/outside"
	import_fails "h2$SBX_TAG" "$W/symlink.tar" "goes through a symbolic link"
	[[ ! -e "$W/outside/pwned" ]]

	hostile_tar "$W/device.tar" device
	import_fails "h3$SBX_TAG" "$W/device.tar" "device node"

	# A blob whose content is not its digest (the tar itself is fine).
	mkdir -p "$W/d/etc"
	echo original >"$W/d/etc/motd"
	tar -C "$W/d" -cf "$W/digest.tar" .
	oci_layout "$W/h4" latest "$W/digest.tar"
	local blob
	blob=$(grep -l original "$W"/h4/blobs/sha256/*)
	sed -i 's/original/tampered/' "$blob"
	import "h4$SBX_TAG" "oci:$W/h4"
	wait_image "h4$SBX_TAG" failed
	grep -q "does not match its digest" "$MNT/images/h4$SBX_TAG/error"
	nothing_left
	rmdir "$MNT/images/h4$SBX_TAG"

	# Truncated inside an entry (its digest is that of the truncated file).
	tar -C "$SBX_IMAGES/busybox" -cf "$W/full.tar" .
	head -c 1000000 "$W/full.tar" >"$W/trunc.tar"
	import_fails "h5$SBX_TAG" "$W/trunc.tar" "truncated"

	yes garbage | head -c 8192 >"$W/junk.tar"
	import_fails "h6$SBX_TAG" "$W/junk.tar" "bad checksum"

	# The daemon still makes sandboxes of the busybox image.
	sbx_create "ok$SBX_TAG"
	assert_healthy "ok$SBX_TAG"
}

@test "bad import commands fail in write(2) with a sentence in /sbx/error" {
	run sbx_write "$MNT/images/ctl" "fetch x oci:/tmp"
	assert_fails_with "Invalid argument"
	grep -q "unknown command 'fetch'" "$MNT/error"
	# A registry reference without a registry host (registry.bats: the rest).
	run sbx_write "$MNT/images/ctl" "import x docker://busybox"
	assert_fails_with "Invalid argument"
	grep -qF "'busybox' is not HOST[:PORT]/REPO" "$MNT/error"
	run sbx_write "$MNT/images/ctl" "import x https://reg.example/busybox"
	assert_fails_with "Invalid argument"
	grep -q "is not oci:DIR" "$MNT/error"
	run sbx_write "$MNT/images/ctl" "import x oci:relative/dir"
	assert_fails_with "Invalid argument"
	run sbx_write "$MNT/images/ctl" "import x oci:$SBX_TMP/nothing-here"
	assert_fails_with "No such file or directory"
	run sbx_write "$MNT/images/ctl" "import busybox oci:$SBX_TMP"
	assert_fails_with "File exists"
	run sbx_write "$MNT/images/ctl" "import ../x oci:$SBX_TMP"
	assert_fails_with "Invalid argument"
	run sbx_write "$MNT/images/ctl" "import ctl oci:$SBX_TMP"
	assert_fails_with "Invalid argument"
	# A create of an image that failed or does not exist.
	run sbx_write "$MNT/ctl" "create x$SBX_TAG image=nope$SBX_TAG"
	assert_fails_with "No such file or directory"
	run rmdir "$MNT/images/nope$SBX_TAG"
	assert_fails_with "No such file or directory"
	assert_healthy
}

# pool_of IMAGE: the pool p$SBX_TAG holds one ready member of IMAGE (bounded wait).
pool_of() {
	local p="$MNT/pools/p$SBX_TAG" i
	[[ -d "$p" ]] || mkdir "$p"
	echo "image=$1" >"$p/spec"
	echo 1 >"$p/size"
	for ((i = 0; i < SBX_STATUS_WAIT * 10; i++)); do
		[[ "$(sbx_key "$p/status" ready)" == 1 ]] && return 0
		sleep 0.1
	done
	cat "$p/status" "$p/error" >&2
	return 1
}

@test "a pool of an imported image: the warm shell runs as its User, with its Env and WorkingDir" {
	make_layers
	OCI_RUN='{"User":"nobody","Env":["FOO=b a r"],"WorkingDir":"/tmp","Cmd":["/bin/sh"]}' \
		oci_layout "$W/u" latest "$W/base.tar.gz"
	import "u$SBX_TAG" "oci:$W/u"
	wait_image "u$SBX_TAG" ready
	pool_of "u$SBX_TAG"
	sbx_create_ctl "su$SBX_TAG" "image=u$SBX_TAG"
	[[ "$(sbx_key "$MNT/su$SBX_TAG/stats" create_mode)" == pool ]]
	line='echo $(id -u):$(id -g):$HOME:$FOO:$(pwd)'
	sbx_exec "su$SBX_TAG" "$line"
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == "65534:65534:/nonexistent:b a r:/tmp" ]]
	[[ "$(sbx_key "$MNT/su$SBX_TAG/stats" exec_warm_total)" == 1 ]]
	# Cold (an option), the same.
	sbx_exec "su$SBX_TAG" "cwd=/tmp $line"
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == "65534:65534:/nonexistent:b a r:/tmp" ]]
	[[ "$(sbx_key "$MNT/su$SBX_TAG/stats" exec_warm_total)" == 1 ]]
	rmdir "$MNT/su$SBX_TAG"
	# A User the sandbox lacks: the warm shell fails on its own, and the exec
	# ends as a cold one would, its sentence said once.
	OCI_RUN='{"User":"ghost","Cmd":["/bin/sh"]}' oci_layout "$W/g" latest "$W/base.tar.gz"
	import "g$SBX_TAG" "oci:$W/g"
	wait_image "g$SBX_TAG" ready
	pool_of "g$SBX_TAG"
	sbx_create_ctl "sg$SBX_TAG" "image=g$SBX_TAG"
	[[ "$(sbx_key "$MNT/sg$SBX_TAG/stats" create_mode)" == pool ]]
	for _ in 1 2; do
		sbx_exec "sg$SBX_TAG" 'id -u'
		[[ "$SBX_RC" == 126 && "$(grep -c "user 'ghost'.*not in the sandbox's /etc/passwd" <<<"$SBX_OUT")" == 1 ]] || {
			echo "rc $SBX_RC, output '$SBX_OUT'" >&2
			false
		}
	done
	rmdir "$MNT/sg$SBX_TAG"
	rmdir "$MNT/pools/p$SBX_TAG"
}
