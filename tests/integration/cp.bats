#!/usr/bin/env bats
# examples/sbx cp: files in and out through the sandbox's own tar (a job's
# stdin in, exec's output out), never through NAME/root, whose paths
# resolve the sandbox's symlinks on the host. The stream out is hostile
# input: a sandbox that fakes its tar cannot make device nodes, write
# through links, or leave setuid files on the host.

load helpers

setup() {
	setup_sbx
	A="cp${SBX_TAG}"
	mkdir "$MNT/$A"
	wait_status "$A" running
}

teardown() {
	teardown_sbx
}

sbx() { SBX="$MNT" timeout 60 "$SBX_REPO/examples/sbx" "$@"; }

@test "sbx cp copies a tree in and out, links as links" {
	mkdir -p "$SBX_TMP/src/d/e"
	echo "hello-$SBX_TAG" >"$SBX_TMP/src/d/e/f"
	ln -s /etc/shadow "$SBX_TMP/src/d/l"
	run sbx cp "$SBX_TMP/src/d" "$A:/tmp/in"
	[ "$status" -eq 0 ]
	run sbx exec "$A" -- cat /tmp/in/d/e/f
	[ "$status" -eq 0 ]
	[ "$output" = "hello-$SBX_TAG" ]
	run sbx exec "$A" -- readlink /tmp/in/d/l
	[ "$output" = /etc/shadow ]
	run sbx cp "$A:/tmp/in/d" "$SBX_TMP/out"
	[ "$status" -eq 0 ]
	[ "$(cat "$SBX_TMP/out/d/e/f")" = "hello-$SBX_TAG" ]
	[ -L "$SBX_TMP/out/d/l" ]
	run sbx cp "$A:/tmp/in/d/e/f" -
	[ "$status" -eq 0 ]
	[[ "$output" == *"hello-$SBX_TAG"* ]]
}

@test "sbx cp of a missing path fails with a sentence" {
	run sbx cp "$A:/no/such/file" "$SBX_TMP/out"
	[ "$status" -eq 2 ]
	[[ "$output" == *"tar in $A failed"* ]]
	run sbx cp "$SBX_TMP/nothing-here" "$A:/tmp"
	[ "$status" -eq 2 ]
	[[ "$output" == *"no such file"* ]]
	run sbx cp a b
	[ "$status" -eq 2 ]
	[[ "$output" == *usage* ]]
}

@test "a sandbox that fakes its tar cannot make nodes, write through links or leave setuid files on the host" {
	python3 - "$SBX_TMP/evil.tar" "$SBX_TAG" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w")
def add(name, **kw):
    data = kw.pop("data", None)
    i = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(i, k, v)
    if data is not None:
        i.size = len(data)
    t.addfile(i, io.BytesIO(data) if data is not None else None)
add("o/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0)
add("o/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
add("o/lnk", type=tarfile.SYMTYPE, linkname=sys.argv[1].rsplit("/", 1)[0])
add("o/lnk/pwned-" + sys.argv[2], data=b"pwn")
add("../escaped-" + sys.argv[2], data=b"pwn")
add("o/su", mode=0o4755, data=b"#!/bin/sh\n")
t.close()
PY
	run sbx cp "$SBX_TMP/evil.tar" "$A:/tmp"
	[ "$status" -eq 0 ]
	# The sandbox's tar prints the crafted archive, whatever it is asked.
	run sbx exec "$A" -- sh -c 'printf "#!/bin/sh\ncat /tmp/evil.tar\n" >/tmp/tar; chmod +x /tmp/tar'
	[ "$status" -eq 0 ]
	SBX_TAR=/tmp/tar run sbx cp "$A:/tmp/x" "$SBX_TMP/out"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unpacking the stream from $A failed"* ]]
	run find "$SBX_TMP/out" -type b -o -type c
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ ! -e "$SBX_TMP/pwned-$SBX_TAG" ]
	[ ! -e "$SBX_TMP/escaped-$SBX_TAG" ]
	[ ! -e "$SBX_TMP/out/../escaped-$SBX_TAG" ]
	run find "$SBX_TMP/out" -perm /6000
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -f "$SBX_TMP/out/o/su" ]
}
