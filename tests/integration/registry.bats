#!/usr/bin/env bats
# Registry pulls (`import NAME docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`):
# Debian's registry server (docker-registry) on 127.0.0.1, a free port and
# filesystem storage in the test's dir, plain HTTP (so tls-verify=false); the
# OCI layouts pushed to it are built here (oci_helpers.bash) and pushed with
# skopeo; a listener that never answers stands for a registry that hangs.
# No traffic leaves the host. Skipped, saying so, without
# docker-registry or skopeo (examples/install-deps.sh installs both).

load helpers
load oci_helpers

setup() {
	[[ -x /usr/bin/docker-registry ]] || skip "no /usr/bin/docker-registry (apt-get install docker-registry)"
	command -v skopeo >/dev/null || skip "no skopeo (apt-get install skopeo)"
	setup_oci_work
	REG_PID="" HANG_PID=""
}

teardown() {
	local p
	for p in "${REG_PID:-}" "${HANG_PID:-}"; do
		[[ -n "$p" ]] || continue
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	unset SANDBOXFS_PULL_TIMEOUT
	teardown_sbx
}

# retry N CMD...: CMD (quiet) until it succeeds, at most N times 0.1 s apart.
retry() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# A free TCP port of 127.0.0.1 (bound then let go: the registry takes it next).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry: the registry server on 127.0.0.1:$REG_PORT, storage in
# $W/registry, its pid in REG_PID; returns once /v2/ answers.
start_registry() {
	REG_PORT=$(free_port)
	mkdir -p "$W/registry"
	cat >"$W/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: 127.0.0.1:$REG_PORT
YML
	/usr/bin/docker-registry serve "$W/registry.yml" </dev/null >"$W/registry.log" 2>&1 3>&- &
	REG_PID=$!
	retry 100 python3 -c 'import sys, urllib.request; urllib.request.urlopen("http://127.0.0.1:%s/v2/" % sys.argv[1], timeout=1)' \
		"$REG_PORT" && return 0
	echo "the registry did not answer on 127.0.0.1:$REG_PORT: $(cat "$W/registry.log")" >&2
	return 1
}

# push LAYOUT TAG REPO:RTAG: an OCI layout's image into the registry.
push() {
	skopeo copy --quiet --dest-tls-verify=false "oci:$1:$2" "docker://127.0.0.1:$REG_PORT/$3"
}

# manifest_digest REPO:TAG: the digest of the manifest the registry serves.
manifest_digest() {
	local h
	h=$(skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$REG_PORT/$1" | sha256sum) || return 1
	echo "sha256:${h%% *}"
}

@test "import docker://: ready with its digest, runs, a shared base layer stored once, no pull left" {
	start_registry
	make_layers
	oci_layout "$W/a" latest "$W/base.tar.gz" "$W/top1.tar"
	oci_layout "$W/b" v2 "$W/base.tar.gz" "$W/top2.tar"
	push "$W/a" latest sbx/a:latest
	push "$W/b" v2 sbx/b:v2
	# The manifests as the registry holds them (skopeo compressed the plain
	# tar layers on the push, so they are not the layouts' own).
	local ref="127.0.0.1:$REG_PORT/sbx/a:latest" da db
	da=$(manifest_digest sbx/a:latest)
	db=$(manifest_digest sbx/b:v2)
	[[ "$da" =~ ^sha256:[0-9a-f]{64}$ && "$db" =~ ^sha256:[0-9a-f]{64}$ ]]
	import "a$SBX_TAG" "docker://$ref" tls-verify=false
	wait_image "a$SBX_TAG" ready
	run jq -r '.source, .digest, (.layers | length), .config.Env[1]' "$MNT/images/a$SBX_TAG/config"
	[[ "${lines[0]}" == "docker://$ref" && "${lines[1]}" == "$da" && "${lines[2]}" == 2 ]]
	[[ "${lines[3]}" == IMG=latest ]]
	local done total
	done=$(sbx_key "$MNT/images/a$SBX_TAG/progress" done_bytes)
	total=$(sbx_key "$MNT/images/a$SBX_TAG/progress" total_bytes)
	[[ "$done" -gt 0 && "$done" == "$total" ]]
	# By digest, with examples/sbx (waits for ready): the second image's
	# base layer is the first one's dir.
	run env SBX="$MNT" "$SBX_REPO/examples/sbx" import "b$SBX_TAG" \
		"docker://127.0.0.1:$REG_PORT/sbx/b@$db" tls-verify=false
	[ "$status" -eq 0 ] || { echo "$output" >&2; false; }
	wait_image "b$SBX_TAG" ready
	[[ "$(jq -r .digest "$MNT/images/b$SBX_TAG/config")" == "$db" ]]
	local la lb
	la=$(jq -r '.lowers[0]' "$MNT/images/a$SBX_TAG/config")
	lb=$(jq -r '.lowers[0]' "$MNT/images/b$SBX_TAG/config")
	[[ "$la" == "$lb" && -d "$STATE/imports/layers/$la" ]]
	[[ "$(find "$STATE/imports/layers" -mindepth 1 -maxdepth 1 | wc -l)" == 3 ]]
	# The pulled layouts are gone.
	[[ -z "$(find "$STATE/imports/tmp" -mindepth 1 -maxdepth 1)" ]]

	sbx_create_ctl "sa$SBX_TAG" "image=a$SBX_TAG"
	sbx_exec "sa$SBX_TAG" 'cat /etc/motd; echo "$IMG"'
	[[ "$SBX_RC" == 0 && "$SBX_OUT" == $'one\nlatest' ]]
	rmdir "$MNT/sa$SBX_TAG"
	rmdir "$MNT/images/a$SBX_TAG" "$MNT/images/b$SBX_TAG"
	nothing_left
}

@test "a pull that cannot be done fails with a sentence and leaves nothing" {
	start_registry
	make_layers
	oci_layout "$W/a" latest "$W/top1.tar"
	push "$W/a" latest sbx/a:latest
	source_fails "m$SBX_TAG" "docker://127.0.0.1:$REG_PORT/sbx/a:nope" "manifest unknown" tls-verify=false
	source_fails "r$SBX_TAG" "docker://127.0.0.1:$REG_PORT/sbx/none:latest" "skopeo for the pull" tls-verify=false
	# Plain HTTP is refused unless the line says tls-verify=false.
	source_fails "h$SBX_TAG" "docker://127.0.0.1:$REG_PORT/sbx/a:latest" "HTTP response to HTTPS client"
	# A port nothing listens on (the registry's, once it is stopped).
	kill "$REG_PID"
	wait "$REG_PID" 2>/dev/null || true
	REG_PID=""
	source_fails "c$SBX_TAG" "docker://127.0.0.1:$REG_PORT/sbx/a:latest" "connection refused" tls-verify=false
}

@test "a malformed registry reference or option is EINVAL before anything runs" {
	local bad want
	while IFS='|' read -r bad want; do
		run sbx_write "$MNT/images/ctl" "import x$SBX_TAG $bad"
		assert_fails_with "Invalid argument"
		tail -n 1 "$MNT/error" | grep -qF -- "$want" || {
			echo "for '$bad': $(tail -n 1 "$MNT/error"), wanted '$want'" >&2
			return 1
		}
		[[ ! -e "$MNT/images/x$SBX_TAG" ]]
	done <<'LIST'
docker://library/alpine|is not a registry host
docker://reg.example/Alpine|is not lowercase letters
docker://reg.example:99999/a|is not 1 to 65535
docker://reg.example/a:b@sha256:00|not both
docker://reg.example/a@sha256:00|64 lowercase hex
docker://reg.example/a:-x|is not 1 to 128
docker://reg.example|is not HOST[:PORT]/REPO
docker://re_g.example/a|a character a host name cannot have
docker://reg.example/a tls-verify=maybe|unknown import option
oci:/ tls-verify=false|is for a registry
LIST
	[[ -z "$(find "$STATE/imports/tmp" -mindepth 1 -maxdepth 1)" ]]
}

# hang_serve PORT: a TCP listener on 127.0.0.1:PORT that takes connections
# and never answers (a registry that hangs), its pid in HANG_PID.
hang_serve() {
	python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
held = []
while True:
    c, _ = s.accept(); held.append(c)' "$1" </dev/null >/dev/null 2>&1 3>&- &
	HANG_PID=$!
	retry 50 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)' "$1"
}

# skopeo_of_pull: the pid of the skopeo pulling into this daemon's tmp/.
skopeo_of_pull() {
	local p
	p=$(pgrep -f "oci:$STATE/imports/tmp/pull-" | head -n 1)
	[[ -n "$p" ]] && echo "$p"
}

@test "a pull that hangs ends at its deadline; a killed daemon's pull is removed at start" {
	local port skopeo_pid
	port=$(free_port)
	hang_serve "$port"
	sbx_stop_daemon
	export SANDBOXFS_PULL_TIMEOUT=3
	sbx_start_daemon
	source_fails "h$SBX_TAG" "docker://127.0.0.1:$port/sbx/a:latest" "did not end within 3 s" tls-verify=false

	# The daemon dies during a pull: the next one removes what it left, and
	# skopeo, left alone, ends itself (its own --command-timeout, 13 s here).
	import "k$SBX_TAG" "docker://127.0.0.1:$port/sbx/a:latest" tls-verify=false
	retry 50 skopeo_of_pull
	skopeo_pid=$(skopeo_of_pull)
	[[ -n "$(find "$STATE/imports/tmp" -mindepth 1 -maxdepth 1 -name 'pull-*')" ]]
	kill -9 "$SBX_PID"
	sbx_stop_daemon
	sbx_start_daemon
	[[ -z "$(find "$STATE/imports/tmp" -mindepth 1 -maxdepth 1)" ]]
	[[ ! -e "$MNT/images/k$SBX_TAG" ]]
	retry 250 eval "! kill -0 $skopeo_pid"
}
