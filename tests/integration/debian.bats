#!/usr/bin/env bats
# The realistic image: Debian 12 with python3 (make image-debian, made by
# mmdebstrap from the host's apt sources). Skipped, saying why, where it could
# not be made (the Debian archive unreachable).

load helpers

DEBIAN_IMAGE="$SBX_IMAGES/debian"

setup() {
	if [[ ! -x "$DEBIAN_IMAGE/usr/bin/python3" ]]; then
		skip "no debian image in $DEBIAN_IMAGE: make image-debian could not make it (the Debian archive unreachable?); see $SBX_IMAGES/debian.log"
	fi
	setup_sbx
}

teardown() {
	teardown_sbx
}

@test "debian: listed in images/ as a ready dir image" {
	run ls "$MNT/images"
	[[ "$status" -eq 0 ]]
	[[ "$output" == *debian* ]]
	[[ "$(sbx_cat "$MNT/images/debian/status")" == ready ]]
	run jq -r .source "$MNT/images/debian/config"
	[[ "$status" -eq 0 && "$output" == dir ]]
}

@test "debian: python3 runs in a sandbox, its standard library whole" {
	sbx_create_ctl d1 image=debian
	sbx_exec d1 "python3 -c 'print(2**100)'"
	[[ "$SBX_RC" == 0 ]]
	[[ "$SBX_OUT" == 1267650600228229401496703205376 ]]
	sbx_exec d1 "python3 -c 'import json, sqlite3, ssl, hashlib, venv; print(json.dumps(sqlite3.sqlite_version_info[0]))'"
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == 3 ]]
	# Debian's own tools: apt knows its packages, /etc/os-release says bookworm.
	sbx_exec d1 ". /etc/os-release; echo \$VERSION_CODENAME; dpkg-query -W -f='\${Status}' python3"
	[[ "$SBX_RC" == 0 ]]
	[[ "$SBX_OUT" == "bookworm"$'\n'"install ok installed" ]]
}

@test "debian: a fork keeps the parent's files, and parent and child go apart" {
	sbx_create_ctl d2 image=debian
	sbx_exec d2 "python3 -c 'open(\"/root/state.txt\",\"w\").write(\"parent\")'"
	[[ "$SBX_RC" == 0 ]]
	echo "fork d2c" >"$MNT/d2/ctl"
	wait_status d2c running
	sbx_exec d2c "python3 -c 'print(open(\"/root/state.txt\").read())'"
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == parent ]]
	sbx_exec d2c "echo child > /root/state.txt"
	[[ "$SBX_RC" == 0 ]]
	sbx_exec d2 "cat /root/state.txt"
	[[ "$SBX_OUT" == parent ]]
}

@test "debian: a job runs a python program with stdout and stderr apart" {
	sbx_create_ctl d3 image=debian
	n=$(sbx_run d3 "python3 -c 'import sys; print(\"out\"); print(\"err\", file=sys.stderr); sys.exit(4)'")
	wait_job d3 "$n" exited
	[[ "$(job_file d3 "$n" stdout)" == out ]]
	[[ "$(job_file d3 "$n" stderr)" == err ]]
	[[ "$(sbx_cat "$MNT/d3/jobs/$n/exit_code")" == 4 ]]
}

@test "debian: the image's files are the image's: a sandbox's writes never reach it" {
	sbx_create_ctl d4 image=debian
	sbx_exec d4 "rm -f /usr/bin/python3 && echo gone > /etc/debian_version"
	[[ "$SBX_RC" == 0 ]]
	[[ -x "$DEBIAN_IMAGE/usr/bin/python3" ]]
	[[ "$(cat "$DEBIAN_IMAGE/etc/debian_version")" != gone ]]
	sbx_create_ctl d5 image=debian
	sbx_exec d5 "python3 -c 'print(1)'"
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == 1 ]]
}
