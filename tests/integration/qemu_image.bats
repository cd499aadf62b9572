#!/usr/bin/env bats
# qemu VMs of any image: an image other than busybox is a read-only erofs
# root disk (made once per image state in STATE/vmimages, off the FUSE path)
# that the guest agent stacks under a tmpfs layer and runs everything in. A
# small image made here (busybox with a marker) always runs; Debian's (make
# image-debian) when it could be made. Writes stay in the VM's own layer,
# a bad image is a sentence, rmdir leaves no QEMU and keeps the disk while
# it is its image's newest; disks nothing can boot again are removed.

load helpers
load qemu_helpers
load oci_helpers

setup_file() {
	local img="$BATS_FILE_TMPDIR/images"
	mkdir -p "$img"
	cp -a "$SBX_REPO/build/images/busybox" "$img/busybox" &&
		cp -a "$SBX_REPO/build/images/busybox" "$img/marked" &&
		echo "marker-of-the-image" >"$img/marked/marker" || return 1
	# An image without a shell: the agent has nothing to run commands with.
	mkdir -p "$img/noshell/etc" && echo nothing >"$img/noshell/etc/hostname"
	# Debian through a link (an --images entry may be one), when it exists.
	[[ -d "$SBX_REPO/build/images/debian/usr/bin" ]] &&
		ln -s "$SBX_REPO/build/images/debian" "$img/debian"
	export SBX_IMAGES="$img"
}

setup() {
	qemu_require
	command -v mkfs.erofs >/dev/null || skip "no mkfs.erofs (apt-get install erofs-utils)"
	setup_sbx
	V="qi${SBX_TAG}"
}

teardown() {
	teardown_sbx_qemu
}

# The root disk files of image NAME in the cache.
vm_disks() {
	compgen -G "$STATE/vmimages/$1-*.erofs" || true
}

# wait_gone FILE: FILE is removed (bounded: the sweep runs on a worker).
wait_gone() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -e "$1" ]] || return 0
		sleep 0.1
	done
	echo "$1 is still there" >&2
	return 1
}

@test "qemu image: a VM sees its image's files, writes go to its own layer" {
	sbx_create_ctl "${V}a" image=marked backend=qemu memory=256M
	pid=$(qemu_pid_of "${V}a")
	sbx_exec "${V}a" 'cat /marker; grep -c sbx-root /proc/mounts; mount | grep " on / type overlay" | wc -l'
	[ "$SBX_RC" -eq 0 ]
	[[ "$(sed -n 1p <<<"$SBX_OUT")" == marker-of-the-image ]]
	# / is the overlay (the disk under a tmpfs), not the initramfs.
	[[ "$(sed -n 3p <<<"$SBX_OUT")" == 1 ]]
	# files serve the overlay root as they do the initramfs's.
	run timeout 60 /usr/bin/python3 "$BATS_TEST_DIRNAME/files_req.py" "$MNT/${V}a/files" "get /marker"
	[ "$output" = marker-of-the-image ]
	run sbx_cat "$MNT/${V}a/stats"
	grep -Eq '^create_image_usec [0-9]+$' <<<"$output" || { echo "$output"; false; }
	disk=$(vm_disks marked)
	[ -n "$disk" ]
	[ "$(wc -l <<<"$disk")" -eq 1 ]
	sum=$(sha256sum <"$disk")

	# Writes: over the image's file and new ones, in this VM only.
	sbx_exec "${V}a" 'echo changed > /marker && echo new > /etc/made && rm /bin/ls; cat /marker /etc/made'
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = "$(printf 'changed\nnew')" ]

	# A second VM: the same disk file (no build), the image's own files.
	sbx_create_ctl "${V}b" image=marked backend=qemu memory=256M
	pid2=$(qemu_pid_of "${V}b")
	run grep -c '^create_image_usec' <(sbx_cat "$MNT/${V}b/stats")
	[ "$output" = 0 ]
	sbx_exec "${V}b" 'cat /marker; test -e /etc/made && echo leaked; test -e /bin/ls && echo ls-there'
	[ "$SBX_OUT" = "$(printf 'marker-of-the-image\nls-there')" ]
	[ "$(vm_disks marked)" = "$disk" ]
	[ "$(sha256sum <"$disk")" = "$sum" ]
	[ "$(cat "$SBX_IMAGES/marked/marker")" = marker-of-the-image ]

	# rmdir: no QEMU, no RAM file, no socket; the disk stays for the next VM.
	rmdir "$MNT/${V}a" "$MNT/${V}b"
	assert_no_qemu_leaks "${V}a" "$pid"
	assert_no_qemu_leaks "${V}b" "$pid2"
	[ -f "$disk" ]
	run grep -c "$STATE/vmimages" /proc/mounts
	[ "$output" = 0 ]
}

@test "qemu image: a changed image gets a new disk; busybox still boots its initramfs" {
	sbx_create_ctl "${V}c" image=marked backend=qemu memory=256M
	first=$(vm_disks marked)
	echo second >"$SBX_IMAGES/marked/marker2"
	sbx_create_ctl "${V}d" image=marked backend=qemu memory=256M
	sbx_exec "${V}d" 'cat /marker2'
	[ "$SBX_OUT" = second ]
	# The first VM keeps the disk it booted with.
	sbx_exec "${V}c" 'test -e /marker2 || echo absent'
	[ "$SBX_OUT" = absent ]
	[ "$(vm_disks marked | wc -l)" -eq 2 ]
	[ -f "$first" ]

	sbx_create_ctl "${V}e" backend=qemu memory=256M
	sbx_exec "${V}e" 'grep -c sbx-root /proc/mounts; test -e /marker || echo no-marker'
	[ "$SBX_OUT" = "$(printf '0\nno-marker')" ]
	rm -f "$SBX_IMAGES/marked/marker2"

	# Once c is gone nothing can boot the first disk again (the image has a
	# newer one): it goes with c; d's stays while d, and after, as the newest.
	second=$(vm_disks marked | grep -vxF "$first")
	rmdir "$MNT/${V}c"
	wait_gone "$first"
	[ "$(vm_disks marked)" = "$second" ]
	rmdir "$MNT/${V}d"
	sbx_wait_removed
	[ "$(vm_disks marked)" = "$second" ]
}

@test "qemu image: root disks nothing can boot are swept at start and by an image's rmdir" {
	# Disks as earlier states of the images left them (no VM boots here).
	local k1=0123456789abcdef k2=fedcba9876543210 k3=00000000000000ff
	sbx_stop_daemon
	mkdir -p "$STATE/vmimages"
	for f in "marked-$k1" "marked-$k2" "gone$SBX_TAG-$k1"; do
		echo erofs >"$STATE/vmimages/$f.erofs"
	done
	echo build >"$STATE/vmimages/marked-$k3.erofs.tmp"
	touch -d '2 hours ago' "$STATE/vmimages/marked-$k1.erofs"
	sbx_start_daemon
	# Its image changed (a newer disk), its image gone: both unused, both go.
	[ ! -e "$STATE/vmimages/marked-$k1.erofs" ]
	[ ! -e "$STATE/vmimages/gone$SBX_TAG-$k1.erofs" ]
	[ -f "$STATE/vmimages/marked-$k2.erofs" ] # the newest of an image there
	[ -f "$STATE/vmimages/marked-$k3.erofs.tmp" ] # not a disk: a build's
	grep -q "VM root disk gone$SBX_TAG-$k1.erofs removed: its image is gone" "$SBX_LOG"

	# An imported image's disks go with its rmdir.
	W="$SBX_TMP/work"
	mkdir -p "$W"
	make_layers
	oci_layout "$W/o" latest "$W/top1.tar"
	import "imp$SBX_TAG" "oci:$W/o"
	wait_image "imp$SBX_TAG" ready
	echo erofs >"$STATE/vmimages/imp$SBX_TAG-$k1.erofs"
	rmdir "$MNT/images/imp$SBX_TAG"
	wait_gone "$STATE/vmimages/imp$SBX_TAG-$k1.erofs"
	[ -f "$STATE/vmimages/marked-$k2.erofs" ]
}

@test "qemu image: an imported image's layers, whiteouts applied, are the VM's root" {
	W="$SBX_TMP/work"
	mkdir -p "$W"
	make_layers
	oci_layout "$W/o" latest "$W/base.tar.gz" "$W/top1.tar" "$W/top2.tar"
	import oci3 "oci:$W/o"
	wait_image oci3 ready
	sbx_create_ctl "${V}o" image=oci3 backend=qemu memory=256M
	qemu_pid_of "${V}o" >/dev/null
	sbx_exec "${V}o" 'cat /etc/only; ls /etc; test -e /linuxrc || echo no-linuxrc; echo x > /etc/w && cat /etc/w'
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = "$(printf 'two\nonly\nno-linuxrc\nx')" ]
	[ -n "$(vm_disks oci3)" ]
	# The build's overlay mount of the layers is gone.
	run grep -c "$STATE/vmimages" /proc/mounts
	[ "$output" = 0 ]
}

@test "qemu image: live fork of an image VM shares its disk" {
	sbx_create_ctl "${V}f" image=marked backend=qemu memory=256M
	sbx_exec "${V}f" 'echo parent-state > /tmp/state; echo layer > /etc/layer'
	echo "fork ${V}g" >"$MNT/${V}f/ctl"
	wait_status "${V}g" running
	qemu_pid_of "${V}g" >/dev/null
	sbx_exec "${V}g" 'cat /marker /tmp/state /etc/layer'
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = "$(printf 'marker-of-the-image\nparent-state\nlayer')" ]
	sbx_exec "${V}g" 'echo child > /etc/layer'
	sbx_exec "${V}f" 'cat /etc/layer'
	[ "$SBX_OUT" = layer ]
}

@test "qemu image: a bad image and a host without mkfs.erofs are errors with a sentence" {
	run sh -c "echo 'create ${V}h image=noshell backend=qemu memory=256M' >'$MNT/ctl'"
	wait_status "${V}h" failed
	run sbx_cat "$MNT/${V}h/error"
	[[ "$output" == *"no /bin/sh"* ]] || { echo "$output"; false; }
	rmdir "$MNT/${V}h"

	run sh -c "echo 'create ${V}i image=nosuch backend=qemu' >'$MNT/ctl'"
	[ "$status" -ne 0 ]

	# A new daemon on the same state (the disk is not made yet: the first
	# VM of the image is this one).
	sbx_stop_daemon
	SANDBOXFS_MKFS_EROFS=/nonexistent/mkfs.erofs sbx_start_daemon
	run sh -c "echo 'create ${V}j image=marked backend=qemu memory=256M' >'$MNT/ctl'"
	wait_status "${V}j" failed
	run sbx_cat "$MNT/${V}j/error"
	[[ "$output" == *"apt-get install erofs-utils"* ]] || { echo "$output"; false; }
	rmdir "$MNT/${V}j"
}

@test "qemu image: python3 runs in a Debian VM, and in its live fork" {
	[[ -d "$SBX_IMAGES/debian" ]] ||
		skip "no debian image in $SBX_REPO/build/images (make image-debian could not make it here)"
	sbx_create_ctl "${V}k" image=debian backend=qemu memory=512M
	qemu_pid_of "${V}k" >/dev/null
	sbx_exec "${V}k" "python3 -c 'print(2**10)'; echo from-parent > /root/f"
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = 1024 ]
	echo "fork ${V}l" >"$MNT/${V}k/ctl"
	wait_status "${V}l" running
	qemu_pid_of "${V}l" >/dev/null
	sbx_exec "${V}l" "cat /root/f; python3 -c 'import json; print(json.dumps([1]))'"
	[ "$SBX_RC" -eq 0 ]
	[ "$SBX_OUT" = "$(printf 'from-parent\n[1]')" ]
	# Measurements for the report (never asserted): the first VM made the
	# disk, a second one reuses it; a busybox VM beside them.
	sbx_create_ctl "${V}m" image=debian backend=qemu memory=512M
	qemu_pid_of "${V}m" >/dev/null
	sbx_create_ctl "${V}n" backend=qemu memory=512M
	qemu_pid_of "${V}n" >/dev/null
	for n in k m n; do
		grep -E '^create_(usec|image_usec|boot_usec) ' <(sbx_cat "$MNT/${V}$n/stats") |
			sed "s/^/# ${V}$n: /" >&3
	done
}
