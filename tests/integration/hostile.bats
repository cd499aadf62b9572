#!/usr/bin/env bats
# What a sandbox writes, read by sandboxfs's own code, made hostile. This file
# holds the image config's User lookup (sbx-init reads the sandbox's own
# /etc/passwd and /etc/group in a command's child); the other hostile suites
# are hostile_tree.bats (trees walked), hostile_fuse.bats (the mount under
# load), hostile_jobs.bats (job output and records), files.bats (paths of
# NAME/files requests resolved in a root full of links, FIFOs and devices),
# qemu_files.bats (a guest agent's answers to files requests), netpolicy.bats
# (a sandbox's flood of malformed DNS queries), registry.bats (what skopeo
# and a registry answer), disk.bats and the fuzz targets (tests/fuzz) for
# every parser (agent_files, dns and pull among them).

load helpers
load oci_helpers

setup() {
	setup_oci_work
	make_layers
	OCI_RUN='{"User":"nobody","Cmd":["/bin/sh"]}' oci_layout "$W/u" latest "$W/base.tar.gz"
	import "u$SBX_TAG" "oci:$W/u"
	wait_image "u$SBX_TAG" ready
	OCI_RUN='{"User":"nobody:nogroup","Cmd":["/bin/sh"]}' oci_layout "$W/g" latest "$W/base.tar.gz"
	import "g$SBX_TAG" "oci:$W/g"
	wait_image "g$SBX_TAG" ready
}

teardown() {
	teardown_sbx
}

# as_root NAME CMD: CMD run on the host in NAME's root (its `root` link):
# its commands now run as nobody, and these files are what its root could
# write there.
as_root() {
	local root
	root=$(readlink "$MNT/$1/root")
	(cd "$root" && sh -c "$2")
}

# user_fails NAME WANT: a command in NAME fails with 126 and WANT on its
# output, and the daemon and the mount still answer.
user_fails() {
	sbx_exec "$1" 'id -u'
	[[ "$SBX_RC" == 126 && "$SBX_OUT" == *"$2"* ]] || {
		echo "wanted 126 and '$2', got $SBX_RC: '$SBX_OUT'" >&2
		return 1
	}
	assert_healthy
}

@test "the User lookup: a FIFO, a link, a device as /etc/passwd are not read; the command fails at once" {
	sbx_create_ctl "s$SBX_TAG" "image=u$SBX_TAG"
	sbx_exec "s$SBX_TAG" 'id -u'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == 65534 ]]
	# A FIFO nobody writes: reading it would wait for ever.
	as_root "s$SBX_TAG" 'rm -f etc/passwd && mkfifo etc/passwd'
	user_fails "s$SBX_TAG" "user 'nobody' (user= or the image's User) is not in the sandbox's /etc/passwd"
	# A link to a file that names nobody as 0: not followed.
	as_root "s$SBX_TAG" 'rm -f etc/passwd && echo "nobody:x:0:0::/root:/bin/sh" > etc/pw && ln -s /etc/pw etc/passwd'
	user_fails "s$SBX_TAG" "user 'nobody' (user= or the image's User) is not in the sandbox's /etc/passwd"
	# A device that never ends.
	as_root "s$SBX_TAG" 'rm -f etc/passwd && mknod etc/passwd c 1 5'
	user_fails "s$SBX_TAG" "not in the sandbox's /etc/passwd"
}

@test "the User lookup: bounded, and an entry without numbers is refused, not root" {
	sbx_create_ctl "s$SBX_TAG" "image=u$SBX_TAG"
	# The entry past the first MiB of a huge file is not looked at.
	as_root "s$SBX_TAG" 'head -c 2000000 /dev/zero | tr "\0" "x" > etc/passwd && echo && echo "nobody:x:65534:65534::/:/bin/sh" >> etc/passwd'
	user_fails "s$SBX_TAG" "is not in the sandbox's /etc/passwd"
	# Fields that are no numbers (strtol would make them 0: root).
	as_root "s$SBX_TAG" 'echo "nobody:x:abc:def::/:/bin/sh" > etc/passwd'
	user_fails "s$SBX_TAG" "the entry of 'nobody' in the sandbox's /etc/passwd has no number"
	as_root "s$SBX_TAG" 'echo "nobody:x:99999999999:1::/:/bin/sh" > etc/passwd'
	user_fails "s$SBX_TAG" "has no number where its id goes"
	# An entry cut short (no gid field).
	as_root "s$SBX_TAG" 'printf "nobody:x:65534" > etc/passwd'
	user_fails "s$SBX_TAG" "has no number where its id goes"
	# /etc/group likewise.
	sbx_create_ctl "t$SBX_TAG" "image=g$SBX_TAG"
	as_root "t$SBX_TAG" 'echo "nogroup:x:zz:" > etc/group'
	user_fails "t$SBX_TAG" "the entry of 'nogroup' in the sandbox's /etc/group has no number"
	as_root "t$SBX_TAG" 'rm etc/group && mkfifo etc/group'
	user_fails "t$SBX_TAG" "group 'nogroup' (user= or the image's User) is not in the sandbox's /etc/group"
}
