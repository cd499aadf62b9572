#!/usr/bin/env bats
# NAME/files (issue 17): files in and out of an ns sandbox through the
# daemon, one request per open handle, paths resolved inside the sandbox's
# root. What the sandbox made is hostile: its links (absolute, relative, in
# the middle of a path), /proc's magic links, FIFOs, device nodes and a
# directory swapped for a link while requests run must never lead the
# daemon to a host file, nor hold it.

load helpers

setup() {
	setup_sbx
	A="fi${SBX_TAG}"
	sbx_create "$A"
	# The sandbox's own /etc/shadow, told apart from the host's.
	sbx_exec "$A" "echo 'inside-$SBX_TAG' >/etc/shadow" >/dev/null
}

teardown() {
	teardown_sbx
}

# freq REQUEST [DATA|-]: one request on A's files (tests/integration/files_req.py).
freq() {
	timeout 120 /usr/bin/python3 "$BATS_TEST_DIRNAME/files_req.py" "$MNT/$A/files" "$@"
}

@test "put, get, stat, list and mkdir: bytes, modes and owners as the sandbox sees them" {
	files_round_trip "$A"
	run freq "stat /work/bin"
	[ "$status" -eq 0 ]
	[[ "$output" == *$'type f\nmode 0640\nsize 6\nuid 0\ngid 0\n'* ]]
	run freq "list /work"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^f\ 0640\ 6\ [0-9]+\ bin$ ]]
	# A put over a file replaces it whole; size=0 makes an empty file.
	run freq "put size=0 /work/bin"
	[ "$status" -eq 0 ]
	sbx_exec "$A" 'wc -c </work/bin; ls -a /work'
	[ "$SBX_OUT" = $'0\n.\n..\nbin' ]
}

@test "a 50 MB file goes in and comes out the same (sha256)" {
	head -c 52428800 /dev/urandom >"$SBX_TMP/big"
	want=$(sha256sum <"$SBX_TMP/big" | cut -d' ' -f1)
	run freq "put size=52428800 /tmp/big" "$SBX_TMP/big"
	[ "$status" -eq 0 ]
	sbx_exec "$A" 'sha256sum /tmp/big'
	[ "${SBX_OUT%% *}" = "$want" ]
	freq "get /tmp/big" >"$SBX_TMP/big.back"
	[ "$(sha256sum <"$SBX_TMP/big.back" | cut -d' ' -f1)" = "$want" ]
}

@test "names with a newline or a backslash are listed escaped and read back" {
	sbx_exec "$A" "mkdir /tmp/e && printf one >\"\$(printf '/tmp/e/a\\nb')\" && printf two >'/tmp/e/c\\d' && echo ok"
	[ "$SBX_OUT" = ok ]
	run freq "list /tmp/e"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[[ "$output" == *' a\x0ab'* ]]
	[[ "$output" == *' c\x5cd'* ]]
	run freq 'get /tmp/e/a\x0ab'
	[ "$output" = one ]
	run freq 'get /tmp/e/c\x5cd'
	[ "$output" = two ]
}

@test "links resolve inside the sandbox: never the host's /etc/shadow" {
	sbx_exec "$A" 'mkdir -p /tmp/a/b && ln -s /etc/shadow /tmp/abs && ln -s ../../../../../../../etc/shadow /tmp/a/b/rel && ln -s / /tmp/mid && echo ok'
	[ "$SBX_OUT" = ok ]
	for p in /tmp/abs /tmp/a/b/rel /tmp/mid/etc/shadow /tmp/mid/tmp/mid/etc/shadow /../../etc/shadow; do
		run freq "get $p"
		[ "$status" -eq 0 ]
		[ "$output" = "inside-$SBX_TAG" ]
	done
	# A put through a link in the middle lands inside too.
	run freq "put size=3 /tmp/mid/tmp/through" - <<<"xy"
	[ "$status" -eq 0 ]
	sbx_exec "$A" 'cat /tmp/through'
	[ "$SBX_OUT" = xy ]
	[ ! -e /tmp/through ]
	# stat shows a link itself, with its target.
	run freq "stat /tmp/abs"
	[[ "$output" == *$'type l\n'*$'target /etc/shadow'* ]]
}

@test "links to host paths lead nowhere: a put or get through them fails, the host is untouched" {
	mkdir "$SBX_TMP/hostdir"
	echo "host-secret" >"$SBX_TMP/hostdir/secret"
	sbx_exec "$A" "ln -s '$SBX_TMP/hostdir' /tmp/out && ln -s '$SBX_TMP/hostdir/victim' /tmp/victim && echo ok"
	[ "$SBX_OUT" = ok ]
	run freq "get /tmp/out/secret"
	[ "$output" = "ERR ENOENT: /tmp/out/secret in sandbox $A: No such file or directory" ]
	run freq "put size=5 /tmp/out/pwned" - <<<"evil"
	[[ "$output" == "ERR ENOENT: "* ]]
	[ ! -e "$SBX_TMP/hostdir/pwned" ]
	# A put onto a link replaces the link, inside.
	run freq "put size=5 /tmp/victim" - <<<"mine"
	[ "$status" -eq 0 ]
	[ ! -e "$SBX_TMP/hostdir/victim" ]
	sbx_exec "$A" 'test -L /tmp/victim || cat /tmp/victim'
	[ "$SBX_OUT" = mine ]
	[ "$(cat "$SBX_TMP/hostdir/secret")" = host-secret ]
}

@test "/proc's magic links, procfs and sysfs files are refused with a sentence" {
	run freq "get /proc/self/root/etc/shadow"
	[[ "$output" == "ERR ENOENT: "* ]]
	run freq "get /proc/1/root/etc/shadow"
	[ "$output" = "ERR ELOOP: /proc/1/root/etc/shadow in sandbox $A: Too many levels of symbolic links" ]
	run freq "list /proc/1/cwd/"
	[[ "$output" == "ERR ELOOP: "* ]]
	run freq "get /proc/1/status"
	[[ "$output" == "ERR EPERM: /proc/1/status is on a file system of type 0x9fa0"* ]]
	run freq "get /sys/kernel/uevent_seqnum"
	[[ "$output" == "ERR EPERM: "* ]]
	run freq "put size=1 /proc/sys/kernel/hostname" - <<<""
	[[ "$output" == "ERR EPERM: "* ]]
	[[ "$(sbx_cat "$MNT/$A/error")" == *"/proc/sys/kernel/hostname"* ]]
	assert_healthy "$A"
}

@test "FIFOs and device nodes the sandbox made are never opened; directories are EISDIR" {
	# (/dev/mem's numbers; the devices cgroup refuses a block device's mknod)
	sbx_exec "$A" "mkfifo /tmp/fifo && mknod /tmp/mem c 1 1 && echo ok"
	[ "$SBX_OUT" = ok ]
	run freq "get /tmp/fifo"
	[ "$output" = "ERR EPERM: /tmp/fifo is not a regular file (type p): get reads regular files only" ]
	run freq "get /tmp/mem"
	[ "$output" = "ERR EPERM: /tmp/mem is not a regular file (type c): get reads regular files only" ]
	run freq "get /tmp"
	[ "$output" = "ERR EISDIR: /tmp is a directory: get reads a regular file (list shows a directory)" ]
	run freq "list /tmp/fifo"
	[[ "$output" == "ERR ENOTDIR: "* ]]
	# A put onto a FIFO replaces it (a rename): no writer ever waits on it.
	run freq "put size=3 /tmp/fifo" - <<<"ab"
	[ "$status" -eq 0 ]
	sbx_exec "$A" 'test -f /tmp/fifo && cat /tmp/fifo'
	[ "$SBX_OUT" = ab ]
	assert_healthy "$A"
}

@test "a directory swapped for a link in a loop: no put or get ever reaches the host" {
	mkdir "$SBX_TMP/race"
	echo host-secret >"$SBX_TMP/race/secret"
	# Inside: /tmp/r/d is a directory holding `secret`, then a link to the
	# host's $SBX_TMP/race, then to /, over and over.
	id=$(sbx_run "$A" "mkdir -p /tmp/r; while :; do mkdir -p /tmp/r/d.new && echo inside >/tmp/r/d.new/secret && rm -rf /tmp/r/d && mv /tmp/r/d.new /tmp/r/d; rm -rf /tmp/r/d; ln -s '$SBX_TMP/race' /tmp/r/d; rm /tmp/r/d; ln -s / /tmp/r/d; rm /tmp/r/d; done")
	# The host: gets and puts through the swapping path, in one process.
	run timeout 300 /usr/bin/python3 - "$MNT/$A/files" <<'PY'
import os, sys
inside = 0
for i in range(300):
    for line, data in ((b"get /tmp/r/d/secret\n", b""),
                       (b"put size=3 /tmp/r/d/canary%d\n" % i, b"can"),
                       (b"put size=3 /tmp/r/d/tmp/canary%d\n" % i, b"can")):
        fd = os.open(sys.argv[1], os.O_RDWR)
        try:
            os.write(fd, line + data)
            out = os.read(fd, 4096)
            assert b"host" not in out, out
            inside += out == b"inside\n"
        except OSError:
            pass
        finally:
            os.close(fd)
print("reads that found the directory: %d of 300" % inside)
PY
	[ "$status" -eq 0 ]
	echo "kill" >"$MNT/$A/jobs/$id/ctl"
	# Nothing on the host, in either place a link would have led.
	[ -z "$(ls "$SBX_TMP/race" | grep -v '^secret$')" ]
	[ -z "$(ls /tmp / | grep "^canary")" ]
	[ "$(cat "$SBX_TMP/race/secret")" = host-secret ]
	assert_healthy "$A"
}

@test "errors: a sentence on the handle and in error; a second request is EBUSY" {
	run freq "get /no/such"
	[ "$output" = "ERR ENOENT: /no/such in sandbox $A: No such file or directory" ]
	[ "$(sbx_cat "$MNT/$A/error")" = "/no/such in sandbox $A: No such file or directory" ]
	run freq "get /etc/shadow/x"
	[[ "$output" == "ERR ENOTDIR: "* ]]
	run freq "mkdir /tmp"
	[[ "$output" == "ERR EEXIST: cannot make /tmp: File exists" ]]
	run freq "put /tmp/x"
	[[ "$output" == "ERR EINVAL: put needs size=N"* ]]
	run freq "frobnicate /x"
	[[ "$output" == "ERR EINVAL: unknown request 'frobnicate'"* ]]
	run freq "get relative"
	[[ "$output" == "ERR EINVAL: "* ]]
	run freq "put size=2 /tmp/over" - <<<"four"
	[[ "$output" == "ERR EFBIG: /tmp/over: 3 bytes written past its size=2; nothing was put" ]]
	run freq "put size=1 /tmp/"
	[[ "$output" == "ERR EINVAL: /tmp/ does not end with a name" ]]
	# One request per handle.
	/usr/bin/python3 - "$MNT/$A/files" <<'PY'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"stat /\n")
try:
    os.write(fd, b"stat /tmp\n")
    sys.exit("a second request was taken")
except OSError as e:
    assert e.errno == errno.EBUSY, e
print(os.read(fd, 4096).decode(), end="")
PY
	[[ "$(sbx_cat "$MNT/$A/error")" == *"already served a request; open files again"* ]]
	assert_healthy "$A"
}

@test "a put cut short, or past the disk, leaves nothing behind" {
	/usr/bin/python3 - "$MNT/$A/files" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"put size=100 /tmp/half\n" + b"x" * 50)
os.close(fd)
PY
	# The temporary goes when the daemon handles the close's RELEASE, which
	# the kernel sends without waiting for it: looked at until it is gone.
	for ((i = 0; i < 50; i++)); do
		sbx_exec "$A" 'ls -a /tmp | grep -c -e half -e sbx-put'
		[ "$SBX_OUT" = 0 ] && break
		sleep 0.1
	done
	[ "$SBX_OUT" = 0 ]
	B="fd${SBX_TAG}"
	sbx_create_ctl "$B" disk=16M
	head -c 33554432 /dev/zero >"$SBX_TMP/32m"
	run timeout 120 /usr/bin/python3 "$BATS_TEST_DIRNAME/files_req.py" "$MNT/$B/files" "put size=33554432 /big" "$SBX_TMP/32m"
	[[ "$output" == "ERR ENOSPC: writing /big: No space left on device; nothing was put" ||
		"$output" == "ERR EDQUOT: "* ]]
	sbx_exec "$B" 'ls -a / | grep -c -e big -e sbx-put'
	[ "$SBX_OUT" = 0 ]
	assert_healthy "$B"
}

@test "a stopped sandbox: EBUSY, with a sentence (qemu: qemu_files.bats)" {
	echo stop >"$MNT/$A/ctl"
	wait_status "$A" stopped
	run freq "get /etc/hostname"
	[ "$output" = "ERR EBUSY: cannot move files in sandbox $A: it is stopped" ]
}

@test "sbx cp moves one regular file through files (no tar needed); trees still take tar" {
	sbx() { SBX="$MNT" SBX_TAR=/no/such/tar timeout 60 "$SBX_REPO/examples/sbx" "$@"; }
	printf 'one\0two\\x' >"$SBX_TMP/f b.bin"
	chmod 0751 "$SBX_TMP/f b.bin"
	run sbx cp "$SBX_TMP/f b.bin" "$A:/tmp"
	[ "$status" -eq 0 ]
	run freq "stat /tmp/f b.bin"
	[[ "$output" == *$'mode 0751\nsize 9\n'* ]]
	sbx_exec "$A" 'chmod 4755 "/tmp/f b.bin"'
	run sbx cp "$A:/tmp/f b.bin" "$SBX_TMP/out"
	[ "$status" -eq 0 ]
	cmp "$SBX_TMP/f b.bin" "$SBX_TMP/out/f b.bin"
	[ "$(stat -c %a "$SBX_TMP/out/f b.bin")" = 755 ]
	# A tree goes through the sandbox's tar, which this one lacks.
	mkdir "$SBX_TMP/tree"
	run sbx cp "$SBX_TMP/tree" "$A:/tmp"
	[ "$status" -eq 2 ]
	# (the job's tar is gone at once: its stdin may refuse the stream first)
	[[ "$output" == *"tar in $A exited"* || "$output" == *"writing to $A failed"* ]]
}
