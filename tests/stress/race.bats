#!/usr/bin/env bats
# Races: several writers doing mkdir, rmdir, fork, stop and start on a small
# set of overlapping names, while readers read every file of every sandbox
# and holders keep handles open across rmdir. Every operation either works or
# fails with a clean errno (never ENOSYS, never a dead mount, never a hang);
# every read returns well-formed content or a clean errno (a handle on a
# removed sandbox: ENODEV/ENOENT or its last content, never garbage). At the
# end, after removing what is left: no leaked mount, cgroup dir, sbx-init,
# state dir or layer, and the daemon's fd count and RSS are roughly flat.
#
#   RACE_OPS       total writer operations (default 1000)
#   RACE_WRITERS   writer processes (default 4), RACE_READERS (default 2)
#   RACE_NAMES     size of the name pool (default 8)
#   RACE_WAIT      bound in seconds for the writers to finish (never asserted
#                  on as a duration: past it they count as hung)
# Nothing here asserts on how long anything took.

load ../integration/helpers

RACE_OPS="${RACE_OPS:-1000}"
RACE_WRITERS="${RACE_WRITERS:-4}"
RACE_READERS="${RACE_READERS:-2}"
RACE_NAMES="${RACE_NAMES:-8}"
RACE_WAIT="${RACE_WAIT:-400}"

setup() {
	setup_sbx
	P="rc${SBX_TAG}"
	: >"$SBX_TMP/bg"
}

teardown() {
	# Handles this test process still holds on the mount (a failed test).
	local l
	for l in /proc/$BASHPID/fd/*; do
		[[ "$(readlink "$l" 2>/dev/null)" == "${MNT:-/nonexistent}"/* ]] && eval "exec ${l##*/}<&-"
	done
	# Our background jobs first (by the pids we recorded), so no handle keeps
	# the mount busy.
	sbx_bg_kill
	teardown_sbx
}

daemon_fds() {
	ls "/proc/$SBX_PID/fd" 2>/dev/null | wc -l
}

daemon_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$SBX_PID/status"
}

# Valid content of a file of a sandbox (or of the top level), by file name.
# $1: file name, $2: content. Returns non-zero for garbage.
valid_content() {
	local f=$1 c=$2 line
	case $f in
	status)
		[[ "$c" =~ ^(creating|running|paused|standby|stopping|stopped|failed)?$'\n'?$ ]]
		;;
	stats | events | net)
		while IFS= read -r line; do
			[[ -z "$line" || "$line" =~ ^[a-z0-9_]+(\ [^[:cntrl:]]*)?$ ]] || return 1
		done <<<"$c"
		;;
	config)
		[[ -z "$c" || ("${c:0:1}" == "{" && "$c" == *"}"*) ]]
		;;
	*) return 0 ;;
	esac
}

# Errnos a read or open may cleanly give while sandboxes come and go.
clean_read_error() {
	[[ "$1" == *"No such file or directory"* || "$1" == *"No such device"* ||
		"$1" == *"Device or resource busy"* || "$1" == *"Resource temporarily unavailable"* ||
		"$1" == *"Invalid argument"* || "$1" == *"Operation not supported"* ]]
}

# writer ID OPS: random operations on the pool; one line per op in race.wID:
# `op name rc message`.
writer() {
	local id=$1 ops=$2 i a b r op rc msg
	local log="$SBX_TMP/race.w$id" errf="$SBX_TMP/race.w$id.err"
	RANDOM=$((id * 7919 + 17))
	for ((i = 0; i < ops; i++)); do
		a="$P-$((RANDOM % RACE_NAMES))"
		b="$P-$((RANDOM % RACE_NAMES))"
		r=$((RANDOM % 100))
		rc=0
		if ((r < 30)); then
			op=mkdir
			timeout 120 mkdir "$MNT/$a" 2>"$errf" || rc=$?
		elif ((r < 55)); then
			op=rmdir
			timeout 120 rmdir "$MNT/$a" 2>"$errf" || rc=$?
		elif ((r < 70)); then
			op=fork
			{ echo "fork $b" >"$MNT/$a/ctl"; } 2>"$errf" || rc=$?
		elif ((r < 85)); then
			op=stop
			{ echo "stop 2" >"$MNT/$a/ctl"; } 2>"$errf" || rc=$?
		else
			op=start
			{ echo start >"$MNT/$a/ctl"; } 2>"$errf" || rc=$?
		fi
		msg=""
		((rc == 0)) || IFS= read -r msg <"$errf" || true
		echo "$op $a $rc ${msg##*: }" >>"$log"
	done
	echo done >>"$log"
}

# reader ID: read every file of every sandbox and of the top level until
# $SBX_TMP/race.stop exists. Garbage goes to race.rID.bad.
reader() {
	local id=$1 f base c rc n=0 err
	local bad="$SBX_TMP/race.r$id.bad" errf="$SBX_TMP/race.r$id.err"
	while [[ ! -e "$SBX_TMP/race.stop" ]]; do
		for f in "$MNT"/stats "$MNT"/events "$MNT"/error "$MNT"/images/*/config "$MNT"/metrics \
			"$MNT"/*/status "$MNT"/*/stats "$MNT"/*/config "$MNT"/*/events \
			"$MNT"/*/error "$MNT"/*/log "$MNT"/*/net; do
			base=${f##*/}
			c=""
			# read -d '': status 0 means a NUL byte was read (garbage in a text
			# file), 1 means EOF, anything else an error.
			rc=0
			{ IFS= read -r -d '' c <"$f"; } 2>"$errf" || rc=$?
			n=$((n + 1))
			if ((rc == 0)); then
				echo "NUL byte in $f" >>"$bad"
			elif [[ -s "$errf" ]]; then
				IFS= read -r err <"$errf" || true
				clean_read_error "$err" || echo "read $f: $err" >>"$bad"
			elif ! valid_content "$base" "$c"; then
				printf 'garbage in %s: %q\n' "$f" "$c" >>"$bad"
			fi
		done
	done
	echo "$n" >"$SBX_TMP/race.r$id.count"
}

# holder ID: open status and stats of a random sandbox, wait, read them
# (the sandbox may have been removed meanwhile), close. Counts reads after rmdir.
holder() {
	local id=$1 a fs ft c rc err after=0 n=0
	local bad="$SBX_TMP/race.h$id.bad" errf="$SBX_TMP/race.h$id.err"
	RANDOM=$((id * 104729 + 3))
	while [[ ! -e "$SBX_TMP/race.stop" ]]; do
		a="$P-$((RANDOM % RACE_NAMES))"
		{ exec {fs}<"$MNT/$a/status"; } 2>/dev/null || { sleep 0.02; continue; }
		{ exec {ft}<"$MNT/$a/stats"; } 2>/dev/null || { exec {fs}<&-; continue; }
		sleep 0.$((RANDOM % 3))
		[[ -d "$MNT/$a" ]] || after=$((after + 1))
		n=$((n + 1))
		rc=0
		{ IFS= read -r -d '' c <&"$fs"; } 2>"$errf" || rc=$?
		if ((rc == 0)); then
			echo "NUL byte in held $a/status" >>"$bad"
		elif [[ -s "$errf" ]]; then
			IFS= read -r err <"$errf" || true
			clean_read_error "$err" || echo "held $a/status: $err" >>"$bad"
		elif ! valid_content status "$c"; then
			printf 'garbage in held %s/status: %q\n' "$a" "$c" >>"$bad"
		fi
		rc=0
		{ IFS= read -r -d '' c <&"$ft"; } 2>"$errf" || rc=$?
		if ((rc == 0)); then
			echo "NUL byte in held $a/stats" >>"$bad"
		elif [[ -s "$errf" ]]; then
			IFS= read -r err <"$errf" || true
			clean_read_error "$err" || echo "held $a/stats: $err" >>"$bad"
		elif ! valid_content stats "$c"; then
			printf 'garbage in held %s/stats: %q\n' "$a" "$c" >>"$bad"
		fi
		exec {fs}<&- {ft}<&-
	done
	echo "$n $after" >"$SBX_TMP/race.h$id.count"
}

# Print what leaked for the whole run (nothing: success).
race_leaks() {
	sbx_run_leaks "$P"
}

@test "race: writers, readers and held handles on overlapping names; nothing leaks" {
	# Warm-up (thread pools, caches), then the baseline of fds and memory.
	sbx_create "$P-0"
	echo "fork $P-1" >"$MNT/$P-0/ctl"
	wait_status "$P-1" running
	sbx_exec "$P-1" 'echo warm' >/dev/null
	find_host_tag "$P-1"
	echo "# host tag: ${SBX_HTAG:-unknown}"
	rmdir "$MNT/$P-1" "$MNT/$P-0"
	local fd0 rss0 i pid
	fd0=$(daemon_fds)
	rss0=$(daemon_rss_kb)

	local per=$(((RACE_OPS + RACE_WRITERS - 1) / RACE_WRITERS))
	local writers=()
	for ((i = 0; i < RACE_WRITERS; i++)); do
		writer "$i" "$per" 3>&- &
		writers+=($!)
		sbx_bg_note $!
	done
	for ((i = 0; i < RACE_READERS; i++)); do
		reader "$i" 3>&- &
		sbx_bg_note $!
		holder "$i" 3>&- &
		sbx_bg_note $!
	done

	# Bounded wait for the writers (past the bound they are hung).
	local left
	for ((i = 0; i < RACE_WAIT * 5; i++)); do
		left=0
		for pid in "${writers[@]}"; do
			kill -0 "$pid" 2>/dev/null && left=$((left + 1))
		done
		((left == 0)) && break
		sleep 0.2
	done
	touch "$SBX_TMP/race.stop"
	if ((left > 0)); then
		echo "$left writer(s) still busy after ${RACE_WAIT}s (hung operation?)"
		tail -n 3 "$SBX_TMP"/race.w*
		false
	fi
	for pid in "${writers[@]}"; do wait "$pid"; done
	while read -r pid; do wait "$pid" 2>/dev/null || true; done <"$SBX_TMP/bg"

	# Every op was accounted for, and only clean errnos came back.
	local total
	total=$(cat "$SBX_TMP"/race.w? | grep -vc '^done$')
	echo "# ops: $total; by op and outcome:"
	cat "$SBX_TMP"/race.w? | grep -v '^done$' | awk '{ $2 = ""; if ($3 == 0) $4 = "ok"; $3 = ""; print }' |
		sort | uniq -c | sort -rn | sed 's/^/#   /'
	[ "$total" -ge "$RACE_OPS" ]
	[ "$(cat "$SBX_TMP"/race.w? | grep -c '^done$')" -eq "$RACE_WRITERS" ]
	# No operation hung (timeout's 124 or 137) or got an unclean errno: grep
	# finds nothing (status 1; 0 is a find, 2 an error).
	run grep -hE ' (124|137) ' "$SBX_TMP"/race.w?
	[ "$status" -eq 1 ] || { echo "hung operations:"; head <<<"$output"; false; }
	run grep -hE 'not implemented|not connected|connection abort|Bad address|Cannot allocate' "$SBX_TMP"/race.w?
	[ "$status" -eq 1 ] || { echo "unclean errors:"; head <<<"$output"; false; }
	echo "# reads: $(awk '{ n += $1 } END { print n }' "$SBX_TMP"/race.r?.count)," \
		"held handles: $(awk '{ n += $1; a += $2 } END { print n ", read after rmdir: " a }' "$SBX_TMP"/race.h?.count)"
	if compgen -G "$SBX_TMP/race.[rh]?.bad" >/dev/null; then
		echo "garbage or unclean errors on reads:"
		cat "$SBX_TMP"/race.[rh]?.bad | sort | uniq -c | sort -rn | head -20
		false
	fi
	assert_healthy

	# Consistency: every listed sandbox has a state, and stats agrees with ls.
	local d st n_ls n_stats
	n_ls=0
	for d in "$MNT/$P"-*; do
		[[ -d "$d" ]] || continue
		n_ls=$((n_ls + 1))
		st=$(sbx_cat "$d/status")
		[[ "$st" =~ ^(creating|running|paused|stopped|failed)$ ]] || {
			echo "${d##*/}: status '$st'"
			false
		}
		sbx_pid_of "${d##*/}" >/dev/null 2>&1 || true
	done
	n_stats=$(sbx_key "$MNT/stats" sandboxes)
	echo "# left at the end: $n_ls sandboxes"
	[ "$n_ls" -eq "$n_stats" ]

	# Remove what is left; then nothing may leak.
	for d in "$MNT/$P"-*; do
		[[ -d "$d" ]] || continue
		timeout 60 rmdir "$d"
	done
	local out=""
	for ((i = 0; i < 100; i++)); do
		out=$(race_leaks) && break
		sleep 0.2
	done
	race_leaks

	# fds and memory roughly flat (generous bounds; fds may take a moment
	# to be closed by the monitor thread).
	local fd1 rss1
	for ((i = 0; i < 50; i++)); do
		fd1=$(daemon_fds)
		((fd1 <= fd0 + 8)) && break
		sleep 0.2
	done
	rss1=$(daemon_rss_kb)
	echo "# daemon fds: $fd0 -> $fd1; RSS: ${rss0} kB -> ${rss1} kB"
	((fd1 <= fd0 + 8))
	((rss1 <= rss0 * 3 + 65536))
	assert_healthy
}

@test "handles held across rmdir read ENODEV/ENOENT or their last content" {
	sbx_create "$P-h"
	local f fds=() names=(status stats config events error log) fd c rc err
	for f in "${names[@]}"; do
		exec {fd}<"$MNT/$P-h/$f"
		fds+=("$fd")
	done
	# A second set that already read once before the rmdir.
	local fds2=() first=()
	for f in "${names[@]}"; do
		exec {fd}<"$MNT/$P-h/$f"
		c=""
		IFS= read -r -N 1 c <&"$fd" || true
		fds2+=("$fd")
		first+=("$c")
	done
	rmdir "$MNT/$P-h"
	[ ! -e "$MNT/$P-h" ]
	local i bad=0 pre
	for i in "${!names[@]}"; do
		for fd in "${fds[$i]}" "${fds2[$i]}"; do
			c=""
			rc=0
			pre=""
			[[ "$fd" == "${fds2[$i]}" ]] && pre=${first[$i]}
			{ IFS= read -r -d '' c <&"$fd"; } 2>"$SBX_TMP/herr" || rc=$?
			err=$(cat "$SBX_TMP/herr")
			echo "# ${names[$i]} (fd $fd): pre '$pre' rc $rc ${err:+err '${err##*: }'} content $(printf '%q' "${c:0:60}")"
			if ((rc == 0)); then
				echo "NUL byte in ${names[$i]}"
				bad=1
			elif [[ -n "$err" ]]; then
				[[ "$err" == *"No such device"* || "$err" == *"No such file or directory"* ]] || {
					echo "unexpected error: $err"
					bad=1
				}
			else
				valid_content "${names[$i]}" "$pre$c" || {
					echo "garbage in ${names[$i]}"
					bad=1
				}
			fi
		done
	done
	for fd in "${fds[@]}" "${fds2[@]}"; do
		exec {fd}<&-
	done
	((bad == 0))
	assert_healthy
	wait_no_leaks "$P-h"
}
