#!/usr/bin/env bats
# Hosts as they are: a /dev/kvm that cannot run guests, none at all, a QEMU
# that dies while starting. The accelerator is chosen by running a test guest
# (SANDBOXFS_KVM_DEV points the probe at a node that is not KVM, so these
# tests mean the same on every host), and what was chosen, and why, shows
# in /sbx/stats.

load helpers

setup() {
	sbx_make_tmp
}

teardown() {
	teardown_sbx
}

@test "--accel kvm refuses to start where a test guest cannot run, with a sentence" {
	SANDBOXFS_KVM_DEV=/dev/null run timeout 30 "$SANDBOXFS" -f --state "$STATE" \
		--images "$SBX_IMAGES" --no-net --accel kvm "$MNT"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"--accel kvm: KVM cannot run guests here"*"/dev/null"* ]]
	run sbx_is_mounted "$MNT"
	[ "$status" -ne 0 ]
}

@test "--accel with a bad value, or SANDBOXFS_ACCEL with one, is refused" {
	run timeout 30 "$SANDBOXFS" -f --state "$STATE" --images "$SBX_IMAGES" --no-net \
		--accel fast "$MNT"
	[ "$status" -eq 1 ]
	[[ "$output" == *"--accel must be auto, kvm or tcg, not 'fast'"* ]]
	SANDBOXFS_ACCEL=warp run timeout 30 "$SANDBOXFS" -f --state "$STATE" \
		--images "$SBX_IMAGES" --no-net "$MNT"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not 'warp'"* ]]
}

@test "auto falls back to TCG when the test guest fails, and says why in stats and the log" {
	SANDBOXFS_KVM_DEV=/dev/null sbx_start_daemon
	run sbx_key "$MNT/stats" qemu_accel
	[ "$status" -eq 0 ]
	[ "$output" = tcg ]
	run sbx_key "$MNT/stats" qemu_accel_reason
	[ "$output" = probe_failed ]
	run grep -F 'qemu: TCG: a test guest on /dev/null failed: KVM_GET_API_VERSION' "$SBX_LOG"
	[ "$status" -eq 0 ]
}

@test "SANDBOXFS_ACCEL=tcg is TCG, whatever the host has" {
	SANDBOXFS_ACCEL=tcg sbx_start_daemon
	run sbx_cat "$MNT/stats"
	[ "$status" -eq 0 ]
	[[ "$output" == *$'qemu_accel tcg\nqemu_accel_reason asked_tcg\n'* ]]
}

@test "a QEMU that exits while starting leaves its own last line in the sandbox's error" {
	# A stand-in for QEMU that fails as a real one does on a bad host.
	mkdir -p "$SBX_TMP/guest"
	: >"$SBX_TMP/guest/vmlinux"
	: >"$SBX_TMP/guest/initrd.gz"
	cat >"$SBX_TMP/qemu" <<'SH'
#!/bin/sh
echo "qemu-system-x86_64: Could not access KVM kernel module: Operation not permitted" >&2
echo "qemu-system-x86_64: -accel kvm: failed to initialize kvm: Operation not permitted" >&2
exit 1
SH
	chmod +x "$SBX_TMP/qemu"
	SANDBOXFS_QEMU="$SBX_TMP/qemu" SANDBOXFS_GUEST_DIR="$SBX_TMP/guest" sbx_start_daemon
	local v="qf${SBX_TAG}"
	echo "create $v backend=qemu" >"$MNT/ctl"
	# A wait for running, written while it is created, ends with its failure:
	# EIO, and the same handle reads the sentence.
	run timeout 120 python3 - "$MNT/$v/wait" <<'EOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"running 90\n")
try:
    print("read:", os.read(fd, 4096).decode().strip())
except OSError as e:
    print(errno.errorcode[e.errno], os.read(fd, 4096).decode().strip())
EOF
	echo "$output"
	[[ "$output" == "EIO sandbox $v failed: QEMU exited while starting: "* ]]
	wait_status "$v" failed
	run sbx_cat "$MNT/$v/error"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"QEMU exited while starting: qemu-system-x86_64: -accel kvm: failed to initialize kvm"* ]]
	run pgrep -f "$SBX_TMP/qemu"
	[ "$status" -ne 0 ]
	# exec in it is EBUSY, and error still says why it failed.
	run sbx_exec "$v" true
	[ "$status" -ne 0 ]
	run sbx_cat "$MNT/$v/error"
	[[ "$output" == *"QEMU exited while starting"* ]]
}
