#!/usr/bin/env bats
# The journal (STATE/sandboxes/NAME/sandbox.json) against corruption: a daemon
# started on a state dir full of torn, truncated, garbage and ill-typed
# journals starts, lists the good sandboxes, reports each bad one in
# MNT/error with its name, and keeps every file of it (the journal itself
# byte for byte). A journal naming a live pid with the wrong start time (a
# recycled pid: a process named sbx-init, as a sandbox's init is) is never
# adopted and that process is never signalled.
#
# The reader itself (journal_parse, engine/journal_json.c) has a libFuzzer
# target, tests/fuzz/fuzz_journal.c; here the corrupt inputs go through the
# real start-up path. JOURNAL_RANDOM=N adds N random mutations of a good
# journal (default 20).

load helpers

JOURNAL_RANDOM="${JOURNAL_RANDOM:-20}"

setup() {
	setup_sbx
	P="jn${SBX_TAG}"
	FAKE_PID=""
}

teardown() {
	# The stand-in "recycled pid" process is ours: end it by its pid.
	if [[ -n "${FAKE_PID:-}" ]]; then
		kill "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
	teardown_sbx
}

# bad NAME CONTENT-FILE: make STATE/sandboxes/NAME with CONTENT as its journal,
# plus a file in upper/ that must survive.
bad_from() {
	local name=$1 src=$2 d="$STATE/sandboxes/$1"
	mkdir -p "$d/upper/etc" "$d/work"
	echo "keep $name" >"$d/upper/etc/marker"
	cp "$src" "$d/sandbox.json"
	echo "$name" >>"$SBX_TMP/bad-names"
}

# bad_json NAME TEXT
bad_json() {
	printf '%s' "$2" >"$SBX_TMP/j.tmp"
	bad_from "$1" "$SBX_TMP/j.tmp"
}

# A mutation of the template with python: bad_py NAME 'python expression on j'
# (j is the parsed good journal; the statement edits it in place).
bad_py() {
	local name=$1 stmt=$2
	python3 - "$TEMPLATE" "$SBX_TMP/j.tmp" "$stmt" <<'EOF' || return 1
import json, sys
j = json.load(open(sys.argv[1]))
exec(sys.argv[3])
open(sys.argv[2], "w").write(json.dumps(j))
EOF
	bad_from "$name" "$SBX_TMP/j.tmp"
}

@test "corrupt, torn and ill-typed journals are reported and skipped, files kept; good ones load" {
	sbx_create "$P-good1"
	sbx_create "$P-good2"
	echo stop >"$MNT/$P-good2/ctl"
	wait_status "$P-good2" stopped
	sbx_exec "$P-good1" 'echo persisted > /root-file; sync' >/dev/null
	[ "$SBX_RC" = 0 ]
	TEMPLATE="$SBX_TMP/template.json"
	cp "$STATE/sandboxes/$P-good1/sandbox.json" "$TEMPLATE"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TEMPLATE"

	# Stop the daemon (--stop-on-exit: both end stopped, files kept).
	sbx_stop_daemon
	! sbx_is_mounted "$MNT" || false

	: >"$SBX_TMP/bad-names"
	local size t
	size=$(stat -c %s "$TEMPLATE")
	# Torn writes: the journal cut at several points (as if written in place).
	for t in 1 2 10 $((size / 3)) $((size / 2)) $((size - 2)); do
		head -c "$t" "$TEMPLATE" >"$SBX_TMP/j.tmp"
		bad_from "$P-torn$t" "$SBX_TMP/j.tmp"
	done
	# Empty, NUL bytes, random bytes, a huge line, deep nesting.
	: >"$SBX_TMP/j.tmp"
	bad_from "$P-empty" "$SBX_TMP/j.tmp"
	head -c 4096 /dev/zero >"$SBX_TMP/j.tmp"
	bad_from "$P-zeros" "$SBX_TMP/j.tmp"
	head -c 3000 /dev/urandom >"$SBX_TMP/j.tmp"
	bad_from "$P-random" "$SBX_TMP/j.tmp"
	python3 -c 'import sys; sys.stdout.write("["*100000 + "]"*100000)' >"$SBX_TMP/j.tmp"
	bad_from "$P-deep" "$SBX_TMP/j.tmp"
	python3 -c 'import sys; sys.stdout.write("{\"state\": \"" + "x"*(4<<20) + "\"}")' >"$SBX_TMP/j.tmp"
	bad_from "$P-huge" "$SBX_TMP/j.tmp"
	# The template with its first '{' replaced, and with trailing garbage.
	sed '0,/{/s//</' "$TEMPLATE" >"$SBX_TMP/j.tmp"
	bad_from "$P-brace" "$SBX_TMP/j.tmp"
	{ cat "$TEMPLATE"; printf '}}garbage'; } >"$SBX_TMP/j.tmp"
	bad_from "$P-trailing" "$SBX_TMP/j.tmp"
	# Valid JSON of the wrong shape.
	bad_json "$P-array" '[]'
	bad_json "$P-string" '"running"'
	bad_json "$P-null" 'null'
	bad_json "$P-object" '{}'
	bad_py "$P-nostate" 'del j["state"]'
	bad_py "$P-noconfig" 'del j["config"]'
	bad_py "$P-statenum" 'j["state"] = 3'
	bad_py "$P-stateword" 'j["state"] = "exploded"'
	bad_py "$P-memstr" 'j["config"]["memory"] = "lots"'
	bad_py "$P-cpusstr" 'j["config"]["cpus"] = "two"'
	bad_py "$P-confarr" 'j["config"] = [1, 2]'
	bad_py "$P-pidstr" 'j["pid"] = "1"'
	bad_py "$P-layersobj" 'j["config"]["layers"] = {"a": 1}'
	bad_py "$P-layersmany" 'j["config"]["layers"] = ["l%d" % i for i in range(100)]'
	bad_py "$P-nullimage" 'j["config"]["image"] = None'
	bad_py "$P-badbackend" 'j["config"]["backend"] = "warp"'
	# A journal in a directory whose name is not a sandbox name.
	cp "$TEMPLATE" "$SBX_TMP/j.tmp"
	bad_from "$P bad name" "$SBX_TMP/j.tmp"
	bad_from "$P-$(printf 'x%.0s' {1..70})" "$SBX_TMP/j.tmp"
	# No journal at all (crash between mkdir of the dir and the first write).
	mkdir -p "$STATE/sandboxes/$P-nojournal/upper"
	echo keep >"$STATE/sandboxes/$P-nojournal/upper/marker"
	echo "$P-nojournal" >>"$SBX_TMP/bad-names"
	# sandbox.json that is a directory.
	mkdir -p "$STATE/sandboxes/$P-jsondir/sandbox.json" "$STATE/sandboxes/$P-jsondir/upper"
	echo keep >"$STATE/sandboxes/$P-jsondir/upper/marker"
	echo "$P-jsondir" >>"$SBX_TMP/bad-names"
	# Random byte flips of the good journal (each either loads or is reported).
	local i
	for ((i = 0; i < JOURNAL_RANDOM; i++)); do
		python3 - "$TEMPLATE" "$SBX_TMP/j.tmp" "$i" <<'EOF'
import random, sys
data = bytearray(open(sys.argv[1], "rb").read())
r = random.Random(int(sys.argv[3]) * 7919 + 1)
for _ in range(r.randint(1, 4)):
    op = r.randint(0, 2)
    k = r.randrange(len(data))
    if op == 0:
        data[k] = r.randrange(256)
    elif op == 1:
        del data[k:k + r.randint(1, 20)]
    else:
        data[k:k] = bytes(r.randrange(256) for _ in range(r.randint(1, 8)))
open(sys.argv[2], "wb").write(bytes(data))
EOF
		mkdir -p "$STATE/sandboxes/$P-mut$i/upper"
		echo keep >"$STATE/sandboxes/$P-mut$i/upper/marker"
		cp "$SBX_TMP/j.tmp" "$STATE/sandboxes/$P-mut$i/sandbox.json"
	done
	# A leftover temp file of an interrupted atomic replace next to a good journal.
	head -c 40 "$TEMPLATE" >"$STATE/sandboxes/$P-good2/sandbox.json.tmp"
	# A recycled pid: the journal says running with the pid of a process of
	# ours named as a sandbox's init (a copy of sleep called sbx-init), but a
	# start time that is not that process's: only the start time tells.
	cp "$(command -v sleep)" "$SBX_TMP/sbx-init"
	"$SBX_TMP/sbx-init" 1000 </dev/null >/dev/null 2>&1 3>&- &
	FAKE_PID=$!
	run timeout 10 bash -c 'until [ "$(cat "/proc/$1/comm")" = sbx-init ]; do sleep 0.05; done' _ "$FAKE_PID"
	[ "$status" -eq 0 ]
	local start
	start=$(awk '{ print $22 }' "/proc/$FAKE_PID/stat")
	bad_py "$P-recycled" "j['state'] = 'running'; j['pid'] = $FAKE_PID; j['pid_start'] = $((start + 1))"
	sed -i "/^$P-recycled\$/d" "$SBX_TMP/bad-names" # a valid journal: it loads, stopped

	# Checksums of every file under the state dir, to prove nothing was removed.
	(cd "$STATE/sandboxes" && find . -path "./$P-good*" -prune -o -path "./$P-recycled" -prune -o \
		-path "./$P-mut*/sandbox.json" -prune -o -type f -print0 | sort -z | xargs -0 md5sum) >"$SBX_TMP/before.md5"

	sbx_start_daemon
	assert_healthy
	run ls "$MNT"
	[ "$status" -eq 0 ]
	echo "$output"
	[[ "$output" == *"$P-good1"* && "$output" == *"$P-good2"* ]]
	[ "$(sbx_cat "$MNT/$P-good1/status")" = stopped ]
	[ "$(sbx_cat "$MNT/$P-good2/status")" = stopped ]

	# Every bad one: not a directory, named in /error.
	local errs name missing=0
	errs=$(sbx_cat "$MNT/error")
	while read -r name; do
		if [[ -e "$MNT/$name" ]]; then
			echo "bad journal $name became a sandbox"
			missing=1
		fi
		if ! grep -qF -- "$name" <<<"$errs"; then
			echo "bad journal $name is not reported in $MNT/error"
			missing=1
		fi
	done <"$SBX_TMP/bad-names"
	# Random mutations: each is a sandbox or a line in /error, never neither.
	for ((i = 0; i < JOURNAL_RANDOM; i++)); do
		name="$P-mut$i"
		if [[ ! -d "$MNT/$name" ]] && ! grep -qF -- "'$name'" <<<"$errs"; then
			echo "mutated journal $name neither loaded nor reported"
			missing=1
		fi
		[[ -f "$STATE/sandboxes/$name/upper/marker" ]] || {
			echo "files of $name were removed"
			missing=1
		}
	done
	if ((missing)); then
		echo "--- $MNT/error:"
		echo "$errs"
		false
	fi
	# Nothing under the bad ones changed.
	(cd "$STATE/sandboxes" && md5sum --quiet -c "$SBX_TMP/before.md5")

	# The recycled pid: not adopted, not signalled, also not by rmdir. A
	# fatal signal decides the exit status when it is sent, so after ours
	# (USR1) the status says whether anyone else's came first.
	[ "$(sbx_cat "$MNT/$P-recycled/status")" = stopped ]
	rmdir "$MNT/$P-recycled"
	kill -USR1 "$FAKE_PID"
	local rc=0
	wait "$FAKE_PID" || rc=$?
	FAKE_PID=""
	[ "$rc" -eq $((128 + 10)) ]

	# A good one still works: start, its files are there, exec runs.
	echo start >"$MNT/$P-good1/ctl"
	wait_status "$P-good1" running
	sbx_exec "$P-good1" 'cat /root-file' >/dev/null
	[ "$SBX_OUT" = persisted ]
	assert_healthy "$P-good1"
}

@test "a journal the daemon rewrites is replaced atomically (no temp file left, valid JSON)" {
	sbx_create "$P-a"
	local i
	for i in 1 2 3; do
		echo stop >"$MNT/$P-a/ctl"
		wait_status "$P-a" stopped
		python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$STATE/sandboxes/$P-a/sandbox.json"
		echo start >"$MNT/$P-a/ctl"
		wait_status "$P-a" running
		python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$STATE/sandboxes/$P-a/sandbox.json"
	done
	[ ! -e "$STATE/sandboxes/$P-a/sandbox.json.tmp" ]
	assert_healthy "$P-a"
}

@test "a journal naming another daemon's cgroup: that cgroup is left alone, the sandbox keeps its own" {
	sbx_create "$P-cg"
	echo stop >"$MNT/$P-cg/ctl"
	wait_status "$P-cg" stopped
	# The daemons' parent cgroups, as they are while one runs (the last
	# daemon to stop removes them when they are empty).
	local victim="zz${SBX_TAG}-victim" d parents=() made=()
	for d in /sys/fs/cgroup/*/sandboxfs /sys/fs/cgroup/sandboxfs; do
		[[ -d "$d" ]] && parents+=("$d")
	done
	[[ ${#parents[@]} -gt 0 ]]
	sbx_stop_daemon
	# A cgroup of "another daemon" (tag zz...) in every hierarchy we use.
	for d in "${parents[@]}"; do
		mkdir -p "$d/$victim" && made+=("$d/$victim")
	done
	[[ ${#made[@]} -eq ${#parents[@]} ]]
	python3 - "$STATE/sandboxes/$P-cg/sandbox.json" "$victim" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["cgroup"] = sys.argv[2]
open(sys.argv[1], "w").write(json.dumps(j))
PY
	sbx_start_daemon
	local left=0
	for d in "${made[@]}"; do
		[[ -d "$d" ]] && left=$((left + 1))
	done
	for d in "${made[@]}"; do
		rmdir "$d" 2>/dev/null || true
	done
	[[ "$left" -eq ${#made[@]} ]]
	grep -q "$P-cg': its journal names cgroup '$victim', which is not this daemon's" "$MNT/error"
	# The sandbox itself loads, starts and runs in a cgroup of its own.
	[[ "$(sbx_cat "$MNT/$P-cg/status")" == stopped ]]
	echo start >"$MNT/$P-cg/ctl"
	wait_status "$P-cg" running
	assert_healthy "$P-cg"
}
