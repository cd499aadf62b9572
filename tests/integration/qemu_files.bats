#!/usr/bin/env bats
# NAME/files on a qemu VM (issue 17): the same requests as on ns, served by
# the guest agent in the guest's root (agent version 4). Bytes and modes
# round trip, refusals match ns (a directory, a FIFO, procfs, a magic link),
# a put cut short leaves nothing and a put over a file replaces it whole; a
# stopped VM is refused with a sentence. One VM for the file (TCG boots are
# slow here); timeouts are bounds, never measured results.

load helpers
load qemu_helpers

setup() {
	qemu_require
	setup_sbx
	V="qf${SBX_TAG}"
}

teardown() {
	teardown_sbx_qemu
}

# freq REQUEST [DATA|-]: one request on V's files (tests/integration/files_req.py).
freq() {
	timeout 120 /usr/bin/python3 "$BATS_TEST_DIRNAME/files_req.py" "$MNT/$V/files" "$@"
}

# one_thread_pair MS: a daemon of one FUSE thread whose agent sends wait up
# to MS (SANDBOXFS_AGENT_SEND_MS); V a qemu VM (its QEMU in $pid), N an ns
# sandbox, $SBX_TMP/put 8 MiB of random bytes.
one_thread_pair() {
	sbx_stop_daemon
	SANDBOXFS_AGENT_SEND_MS=$1 sbx_start_daemon --fuse-threads 1
	sbx_create_ctl "$V" backend=qemu memory=256M
	N="qn${SBX_TAG}"
	sbx_create_ctl "$N"
	pid=$(qemu_pid_of "$V")
	head -c 8388608 /dev/urandom >"$SBX_TMP/put"
}

# short_bound_vm: a daemon whose agent sends wait up to 2 s (the queue's
# deadline: 12 s); V a qemu VM, its QEMU in $pid.
short_bound_vm() {
	sbx_stop_daemon
	SANDBOXFS_AGENT_SEND_MS=2000 sbx_start_daemon
	sbx_create_ctl "$V" backend=qemu memory=256M
	pid=$(qemu_pid_of "$V")
}

# stalled_guest MODE [JOB]: on V (QEMU in $pid, a daemon whose send bound
# is 2 s: the queue's deadline 12 s), a put's request answered, then QEMU
# stopped behind the daemon's back (SIGSTOP) while the put's 8 MiB fill
# the channel (the put fails at the send bound; the channel stays full).
# MODE stop: `stop 120` queues its poweroff, gives it up once the channel
# took nothing for the send bound (the log says so) and asks QEMU to quit,
# which it does once continued. MODE lost: an exec and a `kill TERM` are
# queued (both succeed); past the queue's deadline JOB and the exec end
# (reason lost, exit_code 137), a new exec and a kill fail with ETIMEDOUT
# and the sentence. QEMU is continued at the end whatever happened. The
# bounds are hang detectors, never measured results.
stalled_guest() {
	head -c 8388608 /dev/urandom >"$SBX_TMP/put"
	run timeout 300 /usr/bin/python3 - "$1" "$MNT" "$V" "$SBX_TMP/put" "$pid" "$SBX_LOG" \
		"${2:-}" "$BATS_TEST_DIRNAME" <<'PYEOF'
import errno, os, signal, sys, threading, time
mode, mnt, v, src, qpid, log, job = sys.argv[1:8]
qpid = int(qpid)
sys.path.insert(0, sys.argv[8])
sys.dont_write_bytecode = True  # no __pycache__ in the tree
from files_req import under, write_all
data = open(src, "rb").read()
path, text = under(mnt)
def cat(*p):
    return text(*p).strip()
def write(p, line):
    """None, or (errno name, the sandbox's error)."""
    fd = os.open(p, os.O_WRONLY)
    try:
        os.write(fd, line.encode() + b"\n")
        return None
    except OSError as e:
        return (errno.errorcode[e.errno], cat(v, "error"))
    finally:
        os.close(fd)
def until(what, cond, bound):
    end = time.monotonic() + bound
    while not cond():
        assert time.monotonic() < end, "never: " + what
        time.sleep(0.2)
def logged(text):
    with open(log, errors="replace") as f:
        return text in f.read()
def put(fd):
    write_all(fd, data)  # fails at the send bound: what matters is the full channel
    os.close(fd)
res = {}
pfd = os.open(path(v, "files"), os.O_RDWR)
os.write(pfd, b"put size=%d /tmp/p\n" % len(data))
os.kill(qpid, signal.SIGSTOP)
try:
    threading.Thread(target=put, args=(pfd,), daemon=True).start()
    time.sleep(3)  # the channel fills: QEMU reads nothing of it
    if mode == "stop":
        st = threading.Thread(target=lambda: res.update(stop=write(path(v, "ctl"), "stop 120")),
                              daemon=True)
        st.start()
        until("the stop gave its queued poweroff up",
              lambda: logged("sandbox %s: the poweroff still waits for room in the agent's "
                             "channel (the guest read nothing of it for the send bound); "
                             "asking QEMU to quit" % v), 60)
        assert st.is_alive(), res  # QEMU is stopped: its quit waits
    else:
        xfd = os.open(path(v, "exec"), os.O_RDWR)
        os.write(xfd, b"echo queued\n")
        assert write(path(v, "ctl"), "kill TERM") is None
        until("the job ended", lambda: cat(v, "jobs", job, "status") == "killed", 90)
        res["reason"] = cat(v, "jobs", job, "reason")
        out = b"".join(iter(lambda: os.read(xfd, 65536), b""))
        res["exec"] = (out, os.read(xfd, 4096).decode().strip())
        os.close(xfd)
        res["late"] = write(path(v, "exec"), "echo late")
        res["kill"] = write(path(v, "ctl"), "kill TERM")
        res["logged"] = logged("a poweroff was among them: QEMU is told to end")
finally:
    os.kill(qpid, signal.SIGCONT)
if mode == "stop":
    st.join(120)
    assert not st.is_alive() and res["stop"] is None, res
else:
    assert res["reason"] == "lost" and res["exec"] == (b"", "exit_code 137"), res
    lost = ("ETIMEDOUT", "cannot send %s to the guest agent: it read nothing of its channel "
            "for 12 s with frames waiting, so the daemon took it for lost")
    for key, what in (("late", "the command"), ("kill", "the signal")):
        assert res[key][0] == lost[0] and res[key][1].startswith(lost[1] % what), res
    assert res["logged"], res
print("ok")
PYEOF
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
}

@test "qemu files: put, get, stat, list, mkdir round trip; refusals, cut puts and replaces as on ns; a stopped VM" {
	sbx_create_ctl "$V" backend=qemu memory=256M
	pid=$(qemu_pid_of "$V")

	# mkdir and put with modes; the guest sees the bytes; get gives them back.
	files_round_trip "$V"
	run freq "stat /work/bin"
	[ "$status" -eq 0 ]
	[[ "$output" == $'type f\nmode 0640\nsize 6\nuid 0\ngid 0\nnlink 1\nmtime '* ]]
	# Names escaped as on ns; a link shown with its target.
	sbx_exec "$V" "printf one >\"\$(printf '/work/a\\nb')\" && ln -s /etc/hostname /work/l && echo ok"
	[ "$SBX_OUT" = ok ]
	run freq "list /work"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[[ "$output" =~ (^|$'\n')f\ 0640\ 6\ [0-9]+\ bin($'\n'|$) ]]
	[[ "$output" == *' a\x0ab'* ]]
	[[ "$output" == *$'\nl 0777 '*' l'* || "$output" == 'l 0777 '*' l'* ]]
	run freq 'get /work/a\x0ab'
	[ "$output" = one ]
	run freq "stat /work/l"
	[[ "$output" == *$'type l\n'*$'target /etc/hostname'* ]]

	# 20 MB both ways, the same bytes (sha256); the rate goes to the log.
	head -c 20971520 /dev/urandom >"$SBX_TMP/big"
	want=$(sha256sum <"$SBX_TMP/big" | cut -d' ' -f1)
	t0=$(date +%s%N)
	run freq "put size=20971520 /tmp/big" "$SBX_TMP/big"
	[ "$status" -eq 0 ]
	t1=$(date +%s%N)
	freq "get /tmp/big" >"$SBX_TMP/big.back"
	t2=$(date +%s%N)
	echo "# qemu files: 20 MiB put $(((t1 - t0) / 1000000)) ms, get $(((t2 - t1) / 1000000)) ms" >&3
	[ "$(sha256sum <"$SBX_TMP/big.back" | cut -d' ' -f1)" = "$want" ]
	sbx_exec "$V" 'sha256sum /tmp/big'
	[ "${SBX_OUT%% *}" = "$want" ]

	# sbx cp and the Python client take files too (no tar in the VM needed).
	sbx() { SBX="$MNT" SBX_TAR=/no/such/tar timeout 60 "$SBX_REPO/examples/sbx" "$@"; }
	printf 'one\0two' >"$SBX_TMP/c.bin"
	chmod 0751 "$SBX_TMP/c.bin"
	run sbx cp "$SBX_TMP/c.bin" "$V:/work"
	[ "$status" -eq 0 ]
	run sbx cp "$V:/work/c.bin" "$SBX_TMP/out"
	[ "$status" -eq 0 ]
	cmp "$SBX_TMP/c.bin" "$SBX_TMP/out/c.bin"
	[ "$(stat -c %a "$SBX_TMP/out/c.bin")" = 751 ]
	run env PYTHONPATH="$SBX_REPO/examples/python" timeout 60 /usr/bin/python3 -c '
import sys
from sandboxfs import Sandbox
f = Sandbox(sys.argv[2], root=sys.argv[1]).files
f.write("/work/py", b"from python", mode=0o600)
print(f.read("/work/py").decode(), oct(f.stat("/work/py")["mode"]), sorted(e.name for e in f.list("/work"))[:2])
' "$MNT" "$V"
	[ "$status" -eq 0 ]
	[ "$output" = "from python 0o600 ['a\nb', 'bin']" ]

	# Refused with ns's sentences: a directory, a FIFO, procfs, a magic link.
	sbx_exec "$V" 'mkfifo /work/fifo && ln -s /proc/self/environ /work/penv && echo ok'
	[ "$SBX_OUT" = ok ]
	run freq "get /work"
	[ "$output" = "ERR EISDIR: /work is a directory: get reads a regular file (list shows a directory)" ]
	run freq "get /work/fifo"
	[ "$output" = "ERR EPERM: /work/fifo is not a regular file (type p): get reads regular files only" ]
	run freq "get /proc/1/environ"
	[[ "$output" == "ERR EPERM: /proc/1/environ is on a file system of type 0x9fa0 (procfs, sysfs...): "* ]]
	run freq "get /work/penv"
	[[ "$output" == "ERR EPERM: /work/penv is on a file system of type 0x9fa0 "* ]]
	run freq "get /proc/self/root/etc/hostname"
	[ "$output" = "ERR ELOOP: /proc/self/root/etc/hostname: Too many levels of symbolic links" ]
	run freq "put size=1 /proc/x" - <<<""
	[[ "$output" == "ERR EPERM: /proc/x is on a file system of type 0x9fa0 "* ]]
	run freq "get /no/such"
	[ "$output" = "ERR ENOENT: /no/such: No such file or directory" ]
	run freq "put size=1 /work/" - <<<""
	[ "$output" = "ERR EINVAL: /work/ does not end with a name" ]

	# A put over an existing file replaces it whole; one cut short leaves
	# the old file and no temporary.
	run freq "put size=4 /work/bin" - <<<"new"
	[ "$status" -eq 0 ]
	sbx_exec "$V" 'cat /work/bin'
	[ "$SBX_OUT" = new ]
	timeout 60 /usr/bin/python3 - "$MNT/$V/files" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"put size=100 /work/bin\n" + b"x" * 40)
os.close(fd)
EOF
	# The temporary goes once the daemon handled the close's RELEASE (sent
	# without waiting for it) and the agent its abort: looked at until then.
	for ((i = 0; i < 50; i++)); do
		sbx_exec "$V" 'cat /work/bin; ls -a /work | grep -c sbx-put'
		[ "$SBX_OUT" = $'new\n0' ] && break
		sleep 0.1
	done
	[ "$SBX_OUT" = $'new\n0' ]
	# Past its size: refused, nothing put.
	run freq "put size=2 /work/bin" - <<<"toolong"
	[[ "$output" == "ERR EFBIG: "*"nothing was put" ]]
	sbx_exec "$V" 'cat /work/bin; ls -a /work | grep -c sbx-put'
	[ "$SBX_OUT" = $'new\n0' ]

	# A stopped VM: refused with a sentence, as on ns.
	echo stop >"$MNT/$V/ctl"
	wait_status "$V" stopped
	run freq "get /work/bin"
	[ "$output" = "ERR EBUSY: cannot move files in sandbox $V: it is stopped" ]
	assert_no_qemu_leaks "$V" "$pid"
	assert_healthy
}

@test "qemu files: late bytes park a get's reads, a late answer parks a request's write; on one FUSE thread status still answers; poll and O_NONBLOCK" {
	# One FUSE thread: a read or a write that held it (as before) would stall
	# the mount. (The kernel sends one file's writes one at a time: of eight
	# request lines written at once to NAME/files one is in the daemon, the
	# rest wait in the kernel, so only a daemon of one thread tells.)
	sbx_stop_daemon
	sbx_start_daemon --fuse-threads 1
	sbx_create_ctl "$V" backend=qemu memory=256M
	pid=$(qemu_pid_of "$V")
	sbx_exec "$V" 'head -c 4194304 /dev/urandom >/tmp/r && sha256sum /tmp/r'
	want=${SBX_OUT%% *}
	[ ${#want} -eq 64 ]
	# Each get started (its first bytes read), then the VM paused: the agent
	# sends nothing more, the reads empty what came and park. Status answers
	# meanwhile; poll says "not readable" and O_NONBLOCK says EAGAIN. On
	# resume every parked read gets its bytes, all of them. Then QEMU is
	# stopped behind the daemon's back (SIGSTOP: a paused sandbox refuses new
	# requests; this one still runs for the daemon, its guest silent): eight
	# requests written then (seven stat, a put of 5 bytes in one write) park
	# their writes, status still answers; after SIGCONT every write returns
	# with its answer.
	run timeout 120 /usr/bin/python3 - "$MNT/$V" "$want" "$pid" <<'EOF'
import errno, hashlib, os, select, signal, sys, threading, time
d, want, qpid = sys.argv[1], sys.argv[2], int(sys.argv[3])
SIZE, N = 4194304, 8
fds, got = [], [bytearray() for _ in range(N)]
for i in range(N):
    fd = os.open(d + "/files", os.O_RDWR)
    os.write(fd, b"get /tmp/r\n")
    got[i] += os.read(fd, 4096)
    fds.append(fd)
nb = os.open(d + "/files", os.O_RDWR | os.O_NONBLOCK)
os.write(nb, b"get /tmp/r\n")
with open(d + "/ctl", "w") as c:
    c.write("pause\n")
def drain(i):
    while True:
        b = os.read(fds[i], 65536)
        if not b:
            return
        got[i] += b
ts = [threading.Thread(target=drain, args=(i,), daemon=True) for i in range(N)]
for t in ts:
    t.start()
nbgot = bytearray()
for _ in range(2):  # again once bytes sent before the pause are in
    while True:
        try:
            nbgot += os.read(nb, 65536)
        except BlockingIOError:
            break
    time.sleep(0.5)
p = select.poll()
p.register(nb, select.POLLIN)
assert p.poll(300) == [], "poll says readable with nothing there"
time.sleep(1)
parked = [len(g) for g in got]
assert all(n < SIZE for n in parked), parked
# Each status read answers while every get is still parked: a held worker
# (the only one) would answer it only after a get ended, at its deadline.
for _ in range(5):
    with open(d + "/status") as f:
        st = f.read().strip()
    assert st == "paused", st
    assert all(t.is_alive() for t in ts), "a parked read ended while the VM was paused"
with open(d + "/ctl", "w") as c:
    c.write("resume\n")
assert p.poll(30000) != [], "poll did not say readable once bytes came"
while len(nbgot) < SIZE:
    try:
        b = os.read(nb, 65536)
    except BlockingIOError:
        assert p.poll(30000) != []
        continue
    if not b:
        break
    nbgot += b
for t in ts:
    t.join(60)
for g in got + [nbgot]:
    assert len(g) == SIZE and hashlib.sha256(g).hexdigest() == want, len(g)
res = [None] * N
def ask(i):
    fd = os.open(d + "/files", os.O_RDWR)
    try:
        if i == 0:
            res[i] = os.write(fd, b"put size=5 /tmp/w\nhello")
        else:
            os.write(fd, b"stat /tmp/r\n")
            res[i] = os.read(fd, 4096).decode()
    except OSError as e:
        res[i] = "ERR %s: %s" % (errno.errorcode[e.errno], os.read(fd, 4096).decode())
    os.close(fd)
os.kill(qpid, signal.SIGSTOP)
try:
    ws = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(N)]
    for t in ws:
        t.start()
    time.sleep(1)
    for _ in range(5):
        with open(d + "/status") as f:
            st = f.read().strip()
        assert st == "running", ("with writes parked", st)
        assert all(r is None for r in res), ("a request's write ended while QEMU was stopped", res)
finally:
    os.kill(qpid, signal.SIGCONT)
for t in ws:
    t.join(60)
assert res[0] == 23, res[0]
assert all(r.startswith("type f\nmode ") and "\nsize 4194304\n" in r for r in res[1:]), res
print("ok", parked)
EOF
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	[[ "$output" == "ok "* ]]
	run freq "get /tmp/w"
	[ "$output" = hello ]
	echo stop >"$MNT/$V/ctl"
	wait_status "$V" stopped
	assert_no_qemu_leaks "$V" "$pid"
	assert_healthy
}

@test "qemu files: a put's data writes never hold a FUSE worker: a stopped guest parks them on one FUSE thread, SIGCONT completes the put exactly; a guest that never reads fails it at the send bound and leaves no temporary" {
	# One FUSE thread: a data write that held it while the guest reads
	# nothing (as before: up to the channel's send bound, then the put
	# failed) would stall the mount. The bound is 15 s here
	# (SANDBOXFS_AGENT_SEND_MS) so that a loaded host is not taken for a
	# guest that never reads; its default is 5 s.
	one_thread_pair 15000
	want=$(sha256sum <"$SBX_TMP/put" | cut -d' ' -f1)
	# QEMU stopped behind the daemon's back (SIGSTOP) once a put's request
	# was answered: its 8 MiB in writes of 1 MiB fill the channel and a
	# write parks; status and
	# another sandbox's files answer while it is parked; after SIGCONT the
	# put completes. Then stopped again: a put that never gets room fails
	# with the send's sentence at the bound, status answering meanwhile;
	# and a put whose writer is killed while its write is parked.
	run timeout 300 /usr/bin/python3 - "$MNT" "$V" "$N" "$SBX_TMP/put" "$pid" "$BATS_TEST_DIRNAME" <<'PYEOF'
import errno, os, signal, sys, threading, time
mnt, v, n, src, qpid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
sys.dont_write_bytecode = True  # no __pycache__ in the tree
from files_req import write_all
data = open(src, "rb").read()
def start(path):
    # The request's write returns once the guest made the temporary.
    fd = os.open("%s/%s/files" % (mnt, v), os.O_RDWR)
    try:
        os.write(fd, b"put size=%d %s\n" % (len(data), path.encode()))
    except OSError:
        os.close(fd)
        raise
    return fd
def put(fd, res):
    res.append(write_all(fd, data) or "ok")
    os.close(fd)
def answers_while(alive, what):
    # Each answers while the put is parked: a held worker (the only one)
    # would answer them only once the put's write let it go.
    for _ in range(5):
        with open("%s/%s/status" % (mnt, v)) as f:
            st = f.read().strip()
        assert st == "running", (what, st)
        fd = os.open("%s/%s/files" % (mnt, n), os.O_RDWR)
        os.write(fd, b"stat /etc\n")
        ans = os.read(fd, 4096).decode()
        os.close(fd)
        assert ans.startswith("type d\n"), (what, ans)
        assert alive(), ("the put's write ended while QEMU was stopped", what)
res = []
t = threading.Thread(target=put, args=(start("/tmp/p"), res), daemon=True)
os.kill(qpid, signal.SIGSTOP)
try:
    t.start()
    time.sleep(1)
    answers_while(t.is_alive, "stalled")
finally:
    os.kill(qpid, signal.SIGCONT)
t.join(120)
assert res == ["ok"], res
res = []
t = threading.Thread(target=put, args=(start("/tmp/never"), res), daemon=True)
os.kill(qpid, signal.SIGSTOP)
try:
    t.start()
    time.sleep(1)
    answers_while(t.is_alive, "never")
    t.join(60)
finally:
    os.kill(qpid, signal.SIGCONT)
assert res == ["ERR ETIMEDOUT: cannot send /tmp/never to the guest agent: Connection timed out; nothing was put"], res
# A writer killed while its write is parked: the interrupt ends the write
# (the process exits), its handle closes, the put leaves nothing.
go_r, go_w = os.pipe()
for _ in range(60):  # sends fail at once until the stalled channel drains
    try:
        fd = start("/tmp/cut")
        break
    except TimeoutError:
        time.sleep(0.5)
child = os.fork()
if child == 0:
    os.read(go_r, 1)
    put(fd, [])
    os._exit(0)
os.close(fd)
os.kill(qpid, signal.SIGSTOP)
try:
    os.write(go_w, b"g")
    time.sleep(1)
    answers_while(lambda: os.waitpid(child, os.WNOHANG) == (0, 0), "killed")
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
finally:
    os.kill(qpid, signal.SIGCONT)
print("ok")
PYEOF
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	# The guest reads again: the failed put's end reached the agent before
	# any later frame, its temporary is gone (sends fail at once until the
	# stalled channel drains).
	for ((i = 0; i < 60; i++)); do
		run freq "list /tmp"
		[[ "$output" == "ERR ETIMEDOUT: "* ]] || break
		sleep 0.5
	done
	[ "$status" -eq 0 ]
	[[ "$output" == *" p"* ]]
	[[ "$output" != *sbx-put* && "$output" != *never* && "$output" != *cut* ]]
	sbx_exec "$V" 'sha256sum /tmp/p'
	[ "${SBX_OUT%% *}" = "$want" ]
	echo stop >"$MNT/$V/ctl"
	wait_status "$V" stopped
	assert_no_qemu_leaks "$V" "$pid"
	assert_healthy
}

@test "qemu: a guest that stops reading its channel holds no FUSE worker: execs, jobs, their stdin and kills return on one FUSE thread, another sandbox answers, a full queue refuses with a sentence; once it reads, the queued commands run in order" {
	# One FUSE thread, and a send bound of 60 s (SANDBOXFS_AGENT_SEND_MS):
	# an exec's send that waited for the channel (as before) would hold the
	# only worker that long, and every request of every sandbox behind it.
	one_thread_pair 60000
	# QEMU stopped behind the daemon's back (SIGSTOP) while a put's 8 MiB
	# fill the channel (its write parks). Then, each on the one FUSE
	# thread: execs (their commands long, until the queue refuses one), a
	# job fed stdin and eof, a job killed; the other sandbox's status and
	# an exec there. All return while QEMU is stopped (the worker thread
	# is a hang detector with a bound far below the send bound). After
	# SIGCONT every queued exec prints its line, the job echoes its stdin
	# before its end, the killed job says so, the put completes.
	run timeout 300 /usr/bin/python3 - "$MNT" "$V" "$N" "$SBX_TMP/put" "$pid" "$BATS_TEST_DIRNAME" <<'PYEOF'
import errno, os, signal, sys, threading, time
mnt, v, n, src, qpid = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.path.insert(0, sys.argv[6])
sys.dont_write_bytecode = True  # no __pycache__ in the tree
from files_req import under, write_all
data = open(src, "rb").read()
path, cat = under(mnt)
def exec_start(name, cmd):
    fd = os.open(path(name, "exec"), os.O_RDWR)
    try:
        os.write(fd, cmd.encode() + b"\n")
    except OSError:
        os.close(fd)
        raise
    return fd
def exec_end(fd):
    out = b"".join(iter(lambda: os.read(fd, 65536), b""))  # to EOF
    st = os.read(fd, 4096)
    os.close(fd)
    return out.decode(), st.decode().strip()
def run(cmd):
    fd = os.open(path(v, "run"), os.O_RDWR)
    os.write(fd, cmd.encode() + b"\n")
    job = os.read(fd, 64).decode().strip()
    os.close(fd)
    return job
put_res = []
def put(fd):
    put_res.append(write_all(fd, data) or "ok")
    os.close(fd)
pad = "x" * 3900
execs, res = [], {}
def stalled():
    # Long commands fill the queue: one is refused, with a sentence.
    for i in range(200):
        try:
            execs.append(exec_start(v, "echo line%d # %s" % (i, pad)))
        except OSError as e:
            res["refused"] = (errno.errorcode[e.errno], cat(v, "error").strip(), i)
            break
    res["job"] = run("cat; echo end")
    with open(path(v, "jobs", res["job"], "stdin"), "w") as f:
        f.write("hello\n")
    with open(path(v, "jobs", res["job"], "ctl"), "w") as f:
        f.write("eof\n")
    res["killed"] = run("echo started; exec sleep 300")
    with open(path(v, "jobs", res["killed"], "ctl"), "w") as f:
        f.write("kill KILL\n")
    res["status"] = (cat(v, "status").strip(), cat(n, "status").strip())
    res["other"] = exec_end(exec_start(n, "echo other"))
# The request's write returns once the guest made the temporary.
pfd = os.open(path(v, "files"), os.O_RDWR)
os.write(pfd, b"put size=%d /tmp/p\n" % len(data))
pt = threading.Thread(target=put, args=(pfd,), daemon=True)
os.kill(qpid, signal.SIGSTOP)
try:
    pt.start()
    time.sleep(3)  # its write parks once the channel and its buffer are full
    assert pt.is_alive(), ("the put ended while QEMU was stopped", put_res)
    st = threading.Thread(target=stalled, daemon=True)
    st.start()
    st.join(45)  # a hang detector: the send bound is 60 s
    assert not st.is_alive(), ("a request waited for the stopped guest", len(execs), res)
    assert pt.is_alive(), ("the put ended while QEMU was stopped", put_res)
finally:
    os.kill(qpid, signal.SIGCONT)
assert res["status"] == ("running", "running"), res
assert res["other"] == ("other\n", "exit_code 0"), res
code, msg, i = res["refused"]
assert code == "EBUSY" and i > 0, res["refused"]
assert msg.startswith("cannot send the command to the guest agent: it has not read its "
                      "channel, where 128 KiB wait for it already"), msg
for i, fd in enumerate(execs):
    out = exec_end(fd)
    assert out == ("line%d\n" % i, "exit_code 0"), (i, out)
pt.join(120)
assert put_res == ["ok"], put_res
print("ok", len(execs), res["job"], res["killed"])
PYEOF
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	[[ "$output" == "ok "* ]]
	read -r _ _ job killed <<<"$output"
	wait_job "$V" "$job" exited
	[ "$(sbx_cat "$MNT/$V/jobs/$job/stdout")" = "$(printf 'hello\nend')" ]
	wait_job "$V" "$killed" killed
	[ "$(sbx_cat "$MNT/$V/jobs/$killed/reason")" = signal ]
	[ "$(sha256sum <"$SBX_TMP/put" | cut -d' ' -f1)" = "$(freq "get /tmp/p" | sha256sum | cut -d' ' -f1)" ]
	echo stop >"$MNT/$V/ctl"
	wait_status "$V" stopped
	assert_no_qemu_leaks "$V" "$pid"
	assert_healthy
}

@test "qemu: stop of a guest that reads nothing of its channel gives its queued poweroff up after the send bound, not the stop's timeout, and asks QEMU to quit" {
	short_bound_vm
	stalled_guest stop
	wait_status "$V" stopped
	! grep -q "sandbox $V: the guest did not power off in 120 s" "$SBX_LOG" || false
	assert_no_qemu_leaks "$V" "$pid"
	assert_healthy
}

@test "qemu: frames queued for a guest that reads nothing past the queue's deadline are dropped: its job and exec end lost, later sends fail with a sentence, a queued kill TERM ends QEMU" {
	short_bound_vm
	job=$(sbx_run "$V" 'echo started; exec sleep 300')
	wait_job_out "$V" "$job" started
	stalled_guest lost "$job"
	[ "$(sbx_cat "$MNT/$V/jobs/$job/exit_code")" = 137 ]
	# The kill TERM that was queued: QEMU was told to end, and did once continued.
	wait_status "$V" stopped
	assert_no_qemu_leaks "$V" "$pid"
	assert_healthy
}
