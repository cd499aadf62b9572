#!/usr/bin/env python3
"""sandboxfs benchmark driver (issue 3): cases 1, 2, 4, 5 against peers, case 3
from build/bench/registry_bench; then networking on vs off (issue 4, a second
daemon with its own bridge), time to interactive (issue 8, beside runc/crun/
bwrap), ns fork (issue 9), the qemu backend under TCG (issue 5) and qemu live fork and
standby (issue 9, case `qfork`) and warm pools (issue 20, cases `pool`, `pool_burst`,
`pool_over`, `pool_size`, `pool_refill`; BENCH_CASES=pools runs those five); writes
bench/results/latest.json, which bench/report.py turns into latest.md and plots.
docker and podman (the tools users know) take part in cases 1, tti and debian
(cases.ENGINE_CASES): a dockerd of the bench's own and podman, both with every file
under TMP/engines, started only when one of those cases runs (start_engines).
BENCH_CASES=net,tti,... runs a subset and merges it into the existing latest.json
(the other cases keep the results of the run that made them; `provenance` says
which run each case came from, and latest.md shows it).

Each case runs on its own (run_case): a case that raises is recorded in
latest.json under `failed` (its reason and the end of its traceback), whatever it
left is removed (its sandboxes, the peers' containers; the main daemon is
restarted if it died) and the next case runs; the results of the others are
kept. The exit status is then 3 (run.sh still writes latest.md, which shows the
failure, and exits 1). BENCH_FAIL=case[,case...] makes those cases fail at their
start, to test that path.

Run by bench/run.sh inside a private mount namespace (see run.sh).  Every
number comes from this run: times are taken here with
clock_gettime(CLOCK_MONOTONIC) (time.clock_gettime_ns) and the daemon's own
timings are read from its stats files beside them.  Nothing is hard-coded
except the shape of the run (sample counts, sizes), which QUICK=1 shrinks.
"""
import ast
import contextlib
import errno
import gzip
import hashlib
import io
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback

from cases import CASE_KEYS, ENGINE_CASES, POOL_CASES  # bench/cases.py, shared with report.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
RESULTS = os.path.join(ROOT, "bench", "results")
QUICK = os.environ.get("QUICK", "") not in ("", "0")
TMP = os.environ["BENCH_TMP"]  # made by run.sh, removed by run.sh
TAG = "sbxbench%d" % os.getpid()  # prefix of every container id we make
MNT = os.path.join(TMP, "mnt")
IMAGE = os.path.join(BUILD, "images", "busybox")

if QUICK:
    P = dict(c1_samples=30, c1_warmup=5, burst_sizes=[25], burst_reps=1, burst_warm=3,
             ramp_max=100, ramp_checks=[10, 100], scale_claims=10, api_iters=300, api_list_iters=20,
             reg_sizes="100,1000,10000", reg_iters=200000, reg_secs=0.2, reg_runs=1,
             net_samples=30, net_warm=5, net_burst=100, net_burst_reps=1,
             tti_samples=30, tti_warm=5, tti_bursts=[25], tti_burst_reps=1, tti_burst_warm=3,
             fork_samples=20, fork_warm=5, fork_burst=25, fork_burst_reps=1,
             fork_sizes=[0, 1, 10, 100], fork_size_samples=3, qemu_samples=1, qemu_warm=1, qpool_samples=5,
             qfork_samples=3, qfork_warm=1, qfork_burst=5, qfork_cfork=1, qfork_standby=1,
             pool_samples=30, pool_warm=5, pool_tti_size=2, pool_burst=25, pool_burst_reps=1,
             pool_over_size=10, pool_over_burst=25, pool_sizes=[1, 10, 25], pool_size_samples=10,
             pool_size_warm=2, pool_refill_n=10, pool_refill_reps=1, pool_idle_s=1.0,
             debian_samples=20, debian_warm=3, netpol_samples=3, import_rounds=1, images_qemu=2,
             io_rt=50, io_rt_vm=5, io_mib=16, io_kib_vm=8192, io_reps=3)
else:
    P = dict(c1_samples=200, c1_warmup=10, burst_sizes=[25, 100], burst_reps=2, burst_warm=5,
             ramp_max=1000, ramp_checks=[10, 100, 1000], scale_claims=30, api_iters=3000, api_list_iters=30,
             reg_sizes="100,1000,10000", reg_iters=1000000, reg_secs=1.0, reg_runs=3,
             net_samples=200, net_warm=10, net_burst=100, net_burst_reps=2,
             tti_samples=200, tti_warm=10, tti_bursts=[25, 100], tti_burst_reps=2, tti_burst_warm=5,
             fork_samples=100, fork_warm=5, fork_burst=25, fork_burst_reps=3,
             fork_sizes=[0, 1, 10, 100], fork_size_samples=10, qemu_samples=5, qemu_warm=1, qpool_samples=10,
             qfork_samples=10, qfork_warm=1, qfork_burst=25, qfork_cfork=2, qfork_standby=3,
             pool_samples=200, pool_warm=10, pool_tti_size=2, pool_burst=100, pool_burst_reps=2,
             pool_over_size=10, pool_over_burst=25, pool_sizes=[1, 10, 50], pool_size_samples=30,
             pool_size_warm=3, pool_refill_n=25, pool_refill_reps=3, pool_idle_s=2.0,
             debian_samples=100, debian_warm=5, netpol_samples=10, import_rounds=3, images_qemu=5,
             io_rt=200, io_rt_vm=10, io_mib=64, io_kib_vm=32768, io_reps=5)
# BENCH_SET="key=value;key=value": parameters of P changed for this run, for a partial run
# at a size its mode leaves out (QUICK=1 BENCH_CASES=qfork BENCH_SET="qfork_burst=25");
# values are Python literals ([10, 100, 1000]). The run's record and latest.md say them.
SET = {}
for _kv in filter(None, (x.strip() for x in os.environ.get("BENCH_SET", "").split(";"))):
    _k, _eq, _v = _kv.partition("=")
    _k = _k.strip()
    if not _eq or _k not in P:
        sys.exit("BENCH_SET: %r is not KEY=VALUE with a key of %s" % (_kv, ", ".join(sorted(P))))
    try:
        SET[_k] = ast.literal_eval(_v.strip())
    except (ValueError, SyntaxError):
        sys.exit("BENCH_SET: %s=%r is not a Python literal" % (_k, _v))
    if type(SET[_k]) is not type(P[_k]):
        sys.exit("BENCH_SET: %s=%r is a %s; %s's default is a %s" % (
            _k, _v, type(SET[_k]).__name__, _k, type(P[_k]).__name__))
P.update(SET)
POLL_S = 0.0005  # pause between reads of `status` while waiting for `running`


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def log(*a):
    print("[bench %6.1fs]" % ((now_ns() - T_START) / 1e9), *a, file=sys.stderr, flush=True)


T_START = now_ns()


def pct(xs, p):
    """Nearest-rank percentile (the daemon uses the same rule)."""
    if not xs:
        return None
    s = sorted(xs)
    rank = max(1, (p * len(s) + 99) // 100)
    return s[min(rank, len(s)) - 1]


def summary(xs):
    return {"n": len(xs), "p50": pct(xs, 50), "p95": pct(xs, 95), "p99": pct(xs, 99),
            "min": min(xs) if xs else None, "max": max(xs) if xs else None}


# ---------------------------------------------------------------- cleanup
class State:
    daemon = None          # Popen of the main daemon (--no-net)
    daemons = []           # (Popen, mountpoint) of every daemon we started
    bridge = None          # the networking daemon's bridge (ours, unique to this run)
    qemu_found = {}        # QEMUs and /dev/shm files of ours that cleanup found (and removed)
    tags = []              # instance tags of our daemons (FNV-1a of the state dir, as the daemon computes)
    tag_of = {}            # daemon pid -> its tag
    children = set()       # pids of peer processes in flight
    containers = {}        # id -> tool
    engines = {}           # docker, podman (Engine) started, usable or not: cleanup() uses them
    engine_procs = []      # Popen of the dockerd we started
    engine_left = []       # pids still running from ENGINES after dockerd stopped (then killed)
    versions = {}          # docker and podman versions, for latest.json
    host_dirs_new = []     # HOST_DIRS that were not there before docker and podman started
    lock = threading.Lock()
    cleaned = False
    restarts = 0           # times the main daemon was restarted after a failed case
    main_state = "state"   # the main daemon's state dir under TMP (state-rN after a restart)


def read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        out = b""
        while True:
            b = os.read(fd, 65536)
            if not b:
                return out.decode()
            out += b
    finally:
        os.close(fd)


def mounted(path):
    with open("/proc/self/mounts") as f:
        return any(l.split()[1] == path for l in f)


TOP_DIRS = ("pools", "images")  # directories at the top of the mount that are not sandboxes


def sbx_names(mnt=None):
    mnt = mnt or MNT
    try:
        return [n for n in os.listdir(mnt)
                if n not in TOP_DIRS and os.path.isdir(os.path.join(mnt, n))]
    except OSError:
        return []


def pool_names(mnt=None):
    try:
        return os.listdir(os.path.join(mnt or MNT, "pools"))
    except OSError:
        return []


def instance_tag(state_dir):
    """The daemon's instance tag (engine.c instance_tag): FNV-1a of the state dir path.
    It prefixes its cgroups (TAG-NAME), qemu RAM files (/dev/shm/sandboxfs-TAG-*) and veths."""
    h = 2166136261
    for ch in state_dir.encode():
        h = ((h ^ ch) * 16777619) & 0xffffffff
    return "%08x" % h


def daemon_tags():
    return list(State.tags)


def kill_our_qemus():
    """QEMU processes of this run's daemons (their console path is under TMP), if the
    daemons could not stop them; SIGKILL, then reaped by their parent or init."""
    pids = qemu_leftovers()["qemu_pids"]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
        time.sleep(0.05)
    return pids


def remove_peer_containers():
    """Peer processes in flight and the peers' containers of this run (by our table)."""
    for pid in list(State.children):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for cid, tool in list(State.containers.items()):
        argv = State.engines[tool].rm_argv(cid) if tool in State.engines else [tool, "delete", "-f", cid]
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with State.lock:
            State.containers.pop(cid, None)


def sandbox_cgroups(tag):
    """The cgroup dirs of the sandboxes of our daemon with this tag (TAG-NAME under
    sandboxfs/: one per controller on v1, one on v2)."""
    dirs = []
    for base in os.listdir("/sys/fs/cgroup"):
        for parent in (os.path.join("/sys/fs/cgroup", base, "sandboxfs"),
                       os.path.join("/sys/fs/cgroup", "sandboxfs")):
            if os.path.isdir(parent):
                dirs += [os.path.join(parent, n) for n in os.listdir(parent)
                         if n.startswith(tag + "-") and os.path.join(parent, n) not in dirs]
    return dirs


def end_sandboxes_of(tag):
    """A daemon that died (or did not remove them) leaves its sandboxes running: nobody
    else stops them. Their cgroups are thawed, the processes in them (which our daemon
    started: pids read from their cgroup.procs) killed, until empty (bounded), and the
    dirs removed. Returns how many processes were killed."""
    dirs = sandbox_cgroups(tag)
    for d in dirs:
        for f, v in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            try:
                with open(os.path.join(d, f), "w") as fh:
                    fh.write(v)
            except OSError:
                pass
    killed = set()
    for _ in range(100):
        pids = set()
        for d in dirs:
            try:
                with open(os.path.join(d, "cgroup.procs")) as fh:
                    pids |= {int(x) for x in fh.read().split()}
            except OSError:
                pass
        if not pids:
            break
        for p in pids - killed:
            try:
                os.kill(p, signal.SIGKILL)
                killed.add(p)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    for d in sorted(dirs, key=len, reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass
    return len(killed)


def stop_proc(p, secs):
    """SIGTERM to a process we started (Popen), SIGKILL if it has not ended within secs."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(secs)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def cleanup():
    if State.cleaned:
        return
    State.cleaned = True
    remove_peer_containers()
    for tool in ("runc", "crun"):  # anything with our prefix that escaped the table
        if shutil.which(tool):
            r = subprocess.run([tool, "list", "-q"], capture_output=True, text=True)
            for cid in r.stdout.split():
                if cid.startswith(TAG):
                    subprocess.run([tool, "delete", "-f", cid], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    stop_engines()
    for d, mnt in State.daemons:
        if d.poll() is None:
            for n in sbx_names(mnt):
                try:
                    os.rmdir(os.path.join(mnt, n))
                except OSError:
                    pass
            stop_proc(d, 20)
        if mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
    # qemu sandboxes: a QEMU the daemon did not end, guest RAM and layer memory images
    # (found = what the daemons left, reported in latest.json; then removed)
    State.qemu_found = qemu_leftovers()
    kill_our_qemus()
    for f in qemu_leftovers()["shm"]:
        try:
            os.unlink(os.path.join("/dev/shm", f))
        except OSError:
            pass
    # our bridge, if the daemon left it (it removes it when no port is left)
    if State.bridge and os.path.exists("/sys/class/net/" + State.bridge):
        subprocess.run(["ip", "link", "del", State.bridge], stderr=subprocess.DEVNULL)
    # our daemons' sandboxes still there (a daemon that died: its sandboxes ran on)
    for t in State.tags:
        end_sandboxes_of(t)
    # cgroups the peers made (runc/crun remove their own on delete; this is for interrupts)
    # and our daemons' (TAG-NAME; the daemon removes its own; this is for a daemon that died)
    for base in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", base)
        for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
            b = os.path.basename(dirpath)
            if b.startswith(TAG) or "/%s-" % TAG in dirpath or any(b.startswith(t + "-") for t in State.tags):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        # the daemons' shared parent, once empty (a daemon that died did not remove it;
        # another daemon running keeps its own in it, and rmdir then fails)
        for parent in (os.path.join(top, "sandboxfs"), top):
            if os.path.basename(parent) == "sandboxfs":  # v1 controllers, then v2
                try:
                    os.rmdir(parent)
                except OSError:
                    pass


def on_signal(sig, frame):
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)  # let cleanup finish
    raise KeyboardInterrupt("signal %d" % sig)


# ---------------------------------------------------------------- sandboxfs helpers
def main_daemon_args():
    """The main daemon's options: --no-net (the peers' containers have only lo too), and
    --qemu-spares as wide as case 10's burst, so that a burst after a burst of that width
    finds a QEMU started ahead for each child (a fork of one child still leaves one)."""
    return ("--no-net", "--qemu-spares", str(qemu_spares()))


def qemu_spares():
    """Case 10's burst width as --qemu-spares takes it (1 to VMM_QEMU_SPARES_MAX, vmm/vmm.h)."""
    return min(32, max(1, P["qfork_burst"]))


def start_daemon(mnt=None, state="state", extra=None):
    """Starts a daemon on mnt (default MNT) with its own state dir (extra: its options,
    default the main daemon's); returns the Popen."""
    extra = main_daemon_args() if extra is None else extra
    mnt = mnt or MNT
    os.makedirs(mnt, exist_ok=True)
    State.tags.append(instance_tag(os.path.join(TMP, state)))
    tag = State.tags[-1]
    with open(os.path.join(TMP, "shm_prefixes"), "a") as f:  # for run.sh, if we die
        f.write("sandboxfs-%s-\n" % State.tags[-1])
    logf = open(os.path.join(TMP, "daemon-%s.log" % state), "w")
    d = subprocess.Popen(
        [os.path.join(BUILD, "sandboxfs"), "-f", "--state", os.path.join(TMP, state),
         "--images", os.path.join(BUILD, "images"), "--stop-on-exit"] + list(extra) + [mnt],
        stdout=logf, stderr=logf, start_new_session=True)
    State.daemons.append((d, mnt))
    State.tag_of[d.pid] = tag
    with open(os.path.join(TMP, "pids"), "a") as f:
        f.write("%d\n" % d.pid)
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(mnt, "ctl")):
        if d.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("sandboxfs did not mount on %s; see %s/daemon-%s.log" % (mnt, TMP, state))
        time.sleep(0.01)
    return d


def kv(text):
    out = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def wait_running(name, timeout=30.0, mnt=None, poll=POLL_S):
    mnt = mnt or MNT
    path = os.path.join(mnt, name, "status")
    deadline = now_ns() + int(timeout * 1e9)
    while True:
        try:
            st = read_file(path).strip()
        except FileNotFoundError:
            st = ""
        t = now_ns()
        if st == "running":
            return t
        if st == "failed":
            raise RuntimeError("sandbox %s failed: %s" % (name, read_file(os.path.join(mnt, name, "error")).strip()))
        if t > deadline:
            raise RuntimeError("sandbox %s not running after %ss (status %r)" % (name, timeout, st))
        time.sleep(poll)


def sbx_stats(name, mnt=None):
    return kv(read_file(os.path.join(mnt or MNT, name, "stats")))


def claimed_stats(name, mnt=None):
    """A claimed sandbox's stats once its journal is written (the journal's commit thread
    writes it a few ms after the claim; claim_journal_usec is 0 until then), 1 s at most."""
    deadline = now_ns() + int(1e9)
    while True:
        st = sbx_stats(name, mnt)
        if int(st.get("claim_journal_usec", 0)) > 0 or now_ns() > deadline:
            return st
        time.sleep(0.002)


def daemon_rss_kib():
    with open("/proc/%d/status" % State.daemon.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- peers
def run_tool(argv):
    """Run a peer command to completion; returns (elapsed_ns, rc, stderr).
    stderr goes to a file, not a pipe: a detached container inherits it."""
    with tempfile.TemporaryFile(dir=TMP) as errf:
        t0 = now_ns()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=errf)
        State.children.add(p.pid)
        p.wait()
        t1 = now_ns()
        State.children.discard(p.pid)
        errf.seek(0)
        err = errf.read().decode(errors="replace").strip()
    return t1 - t0, p.returncode, err


def make_bundle(tool, limits, root=None):
    """An OCI bundle on the image sandboxfs uses (or root), with the same namespaces and limits."""
    d = os.path.join(TMP, "bundle-" + tool)
    os.makedirs(d, exist_ok=True)
    subprocess.run(["runc", "spec", "--bundle", d], check=True)
    path = os.path.join(d, "config.json")
    with open(path) as f:
        c = json.load(f)
    c["process"]["args"] = ["/bin/sleep", "100000"]
    c["process"]["terminal"] = False
    c["root"] = {"path": root or IMAGE, "readonly": True}
    c["hostname"] = "bench"
    ns = {n["type"] for n in c["linux"]["namespaces"]}
    for t in ("pid", "mount", "uts", "ipc", "network", "cgroup"):
        if t not in ns:
            c["linux"]["namespaces"].append({"type": t})
    res = c["linux"].setdefault("resources", {})
    res["memory"] = {"limit": limits["memory"]}
    res["pids"] = {"limit": limits["pids"]}
    period = 100000
    res["cpu"] = {"quota": int(limits["cpus"] * period), "period": period}
    with open(path, "w") as f:
        json.dump(c, f, indent=1)
    return d


class Peer:
    """runc or crun: `run -d` of an OCI bundle, `delete -f` (Engine: docker, podman)."""
    def __init__(self, tool, bundle):
        self.tool, self.bundle = tool, bundle

    def create_argv(self, cid):
        return [self.tool, "run", "-d", "--bundle", self.bundle, cid]

    def rm_argv(self, cid):
        return [self.tool, "delete", "-f", cid]

    def create(self, cid):
        with State.lock:
            State.containers[cid] = self.tool
        ns, rc, err = run_tool(self.create_argv(cid))
        if rc != 0:
            raise RuntimeError("%s: %s" % (" ".join(self.create_argv(cid)[-3:]), err))
        return ns

    def remove(self, cid):
        ns, rc, err = run_tool(self.rm_argv(cid))
        if rc != 0:
            raise RuntimeError("%s: %s" % (" ".join(self.rm_argv(cid)[-3:]), err))
        with State.lock:
            State.containers.pop(cid, None)
        return ns


# ---------------------------------------------------------------- docker and podman
ENGINES = os.path.join(TMP, "engines")  # every file of theirs; cleanup() kills what runs from it
DOCKER_CLI = "/usr/bin/docker"  # Debian's (docker.io), the dockerd's own version; not /usr/local/bin's
ENGINE_START_S = 60
# Host dirs they make whatever their options say (podman 4.3: its blob-info cache; containerd's
# shims: their sockets' dir), with what is in them: removed at the end when they were not there
# before (files unlinked, dirs rmdir'ed: only when empty)
HOST_DIRS = {"/var/lib/containers": ["cache/blob-info-cache-v1.boltdb", "cache"], "/run/containerd": ["s"]}


class Engine(Peer):
    """docker (a dockerd the bench starts, with its own containerd) or podman (runc), as users
    run them: `run` of an image imported (never pulled) from the same root the other peers use,
    with the same limits, no network (--network none) and cgroups under /TAG-TOOL; every file
    in ENGINES/TOOL. create/remove (case 1) are `run -d` of /bin/sleep and `rm -f`."""
    def __init__(self, tool, argv, limits, rm_extra=(), env=None):
        self.tool, self.argv, self.rm_extra, self.env = tool, argv, list(rm_extra), env
        self.images = {}  # root dir -> image name
        self.opts = ["--network", "none", "--memory", str(limits["memory"]),
                     "--pids-limit", str(limits["pids"]), "--cpus", "%g" % limits["cpus"],
                     "--cgroup-parent", "/%s-%s" % (TAG, tool)]

    def image(self, root):
        """The image of a root dir: `TOOL import` of a tar of it, made once."""
        if root not in self.images:
            name = "sbxbench-%s:latest" % os.path.basename(root)
            tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
            r = subprocess.run(self.argv + ["import", "-", name], stdin=tar.stdout,
                               capture_output=True, text=True, env=self.env)
            tar.stdout.close()
            if tar.wait() != 0 or r.returncode != 0:
                raise RuntimeError("%s import of %s: %s" % (self.tool, root, r.stderr.strip()[-300:]))
            self.images[root] = name
        return self.images[root]

    def run_argv(self, cid, root, cmd, detach=False):
        return (self.argv + ["run", "-d" if detach else "--rm", "--name", cid] + self.opts +
                [self.image(root)] + cmd)

    def shown(self, root, cmd, detach=False):
        """The run's command line as a user types it (without the bench's socket and storage
        options, which only say where its files are)."""
        return shlex.join([self.tool] + self.run_argv("NAME", root, cmd, detach)[len(self.argv):])

    def create_argv(self, cid):
        return self.run_argv(cid, IMAGE, ["/bin/sleep", "100000"], detach=True)

    def rm_argv(self, cid):
        return self.argv + ["rm", "-f"] + self.rm_extra + [cid]

    def ids(self):
        """Our containers of this tool (name starting with TAG)."""
        r = subprocess.run(self.argv + ["ps", "-aq", "--filter", "name=" + TAG], capture_output=True, text=True)
        return r.stdout.split()


def start_docker(limits):
    """dockerd on its own socket, data-root, exec-root and config under ENGINES/docker, with no
    change to the host's network (no iptables rules, no bridge, no ip_forward); it starts its
    own containerd (state under the exec-root), which it stops when it stops."""
    for exe in ("/usr/sbin/dockerd", DOCKER_CLI, "containerd", "runc"):
        if not shutil.which(exe):
            raise RuntimeError("%s is not installed (Debian package docker.io)" % exe)
    d = os.path.join(ENGINES, "docker")
    for sub in ("data", "exec", "cli"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    with open(os.path.join(d, "daemon.json"), "w") as fh:  # not /etc/docker's, and its key not there
        json.dump({"deprecated-key-path": os.path.join(d, "key.json")}, fh)
    sock = "unix://" + os.path.join(d, "docker.sock")
    logf = open(os.path.join(d, "dockerd.log"), "w")
    p = subprocess.Popen(
        ["/usr/sbin/dockerd", "--config-file", os.path.join(d, "daemon.json"),
         "--data-root", os.path.join(d, "data"), "--exec-root", os.path.join(d, "exec"),
         "--pidfile", os.path.join(d, "dockerd.pid"), "-H", sock,
         "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
         "--bridge=none", "--userland-proxy=false"],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    State.engine_procs.append(p)
    with open(os.path.join(TMP, "pids"), "a") as f:  # for run.sh, if we die (it TERMs these)
        f.write("%d\n" % p.pid)
    eng = Engine("docker", [DOCKER_CLI, "--config", os.path.join(d, "cli"), "-H", sock], limits)
    State.engines["docker"] = eng
    deadline = time.monotonic() + ENGINE_START_S
    while True:
        r = subprocess.run(eng.argv + ["version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            State.versions["docker"] = "docker " + r.stdout.strip()
            return eng
        if p.poll() is not None or time.monotonic() > deadline:
            with open(os.path.join(d, "dockerd.log"), errors="replace") as fh:
                tail = " | ".join(l.strip() for l in fh.readlines()[-3:])
            raise RuntimeError("dockerd did not answer on %s within %d s (%s): %s"
                               % (sock, ENGINE_START_S, exit_text(p.poll()) if p.poll() is not None
                                  else "still running", tail[-400:]))
        time.sleep(0.2)


def start_podman(limits):
    """podman with runc, its storage (--root), state (--runroot) and temporary files under
    ENGINES/podman; no daemon (each run has its own conmon, which ends with it)."""
    for exe in ("podman", "conmon", "runc"):
        if not shutil.which(exe):
            raise RuntimeError("%s is not installed (Debian package podman)" % exe)
    d = os.path.join(ENGINES, "podman")
    for sub in ("tmp", "vartmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    eng = Engine("podman", ["podman", "--root", os.path.join(d, "root"), "--runroot", os.path.join(d, "run"),
                            "--tmpdir", os.path.join(d, "tmp"), "--storage-driver", "overlay",
                            "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
                            "--network-config-dir", os.path.join(d, "net"), "--volumepath", os.path.join(d, "vol")],
                 limits, rm_extra=["-t", "0"], env=dict(os.environ, TMPDIR=os.path.join(d, "vartmp")))
    State.engines["podman"] = eng
    # podman's default rlimits (nofile 1048576, nproc 4194304) are above what runc may set where
    # CAP_SYS_RESOURCE is missing (as here; `--ulimit host` still sets them): nofile as the
    # bench's own, nproc as the pids limit (lower: the higher hard limit was refused here too)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    eng.opts += ["--ulimit", "nofile=%d:%d" % nofile, "--ulimit", "nproc=%d:%d" % (limits["pids"], limits["pids"])]
    r = subprocess.run(eng.argv + ["version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("podman version: " + r.stderr.strip()[-300:])
    State.versions["podman"] = "podman %s (runc)" % r.stdout.strip()
    return eng


class Ctr(Engine):
    """containerd's own client, `ctr`, on the containerd of the bench's dockerd (namespace
    sbxbench): `ctr run` of the docker image (`docker save` | `ctr image import`), no network
    (ctr's default: a new empty network namespace), the same memory and CPU limits (ctr run has
    no pids option), cgroup /TAG-ctr/ID. create: `run -d` of /bin/sleep; remove: `task rm -f`
    then `container rm` (two commands: ctr has no one-step remove of a running container)."""
    def __init__(self, sock, docker, limits):
        Engine.__init__(self, "ctr", ["ctr", "--address", sock, "--namespace", TAG], limits)
        self.docker = docker
        self.opts = ["--memory-limit", str(limits["memory"]), "--cpus", "%g" % limits["cpus"]]

    def image(self, root):
        if root not in self.images:
            name = self.docker.image(root)
            save = subprocess.Popen(self.docker.argv + ["save", name], stdout=subprocess.PIPE)
            r = subprocess.run(self.argv + ["image", "import", "-"], stdin=save.stdout,
                               capture_output=True, text=True)
            save.stdout.close()
            if save.wait() != 0 or r.returncode != 0:
                raise RuntimeError("ctr image import of %s: %s" % (name, r.stderr.strip()[-300:]))
            self.images[root] = "docker.io/library/" + name  # how ctr names a docker save's image
        return self.images[root]

    def run_argv(self, cid, root, cmd, detach=False):
        return (self.argv + ["run", "-d" if detach else "--rm"] + self.opts +
                ["--cgroup", "/%s-ctr/%s" % (TAG, cid), self.image(root), cid] + cmd)

    def rm_argv(self, cid):  # cleanup only (remove() times the two commands)
        return ["sh", "-c", "%s task rm -f %s; %s container rm %s" % (
            shlex.join(self.argv), shlex.quote(cid), shlex.join(self.argv), shlex.quote(cid))]

    def ids(self):
        r = subprocess.run(self.argv + ["container", "ls", "-q"], capture_output=True, text=True)
        return [c for c in r.stdout.split() if c.startswith(TAG)]

    def remove(self, cid):
        total = 0
        for argv in (self.argv + ["task", "rm", "-f", cid], self.argv + ["container", "rm", cid]):
            ns, rc, err = run_tool(argv)
            if rc != 0:
                raise RuntimeError("%s: %s" % (" ".join(argv[-4:]), err))
            total += ns
        with State.lock:
            State.containers.pop(cid, None)
        return total


def start_ctr(limits):
    """ctr on the containerd that the bench's dockerd started (its socket under the exec-root):
    needs docker, started first."""
    docker = State.engines.get("docker")
    if docker is None or not shutil.which("ctr"):
        raise RuntimeError("ctr needs the bench's dockerd and its containerd (Debian package docker.io)"
                           if shutil.which("ctr") else "ctr is not installed (Debian package containerd)")
    sock = os.path.join(ENGINES, "docker", "exec", "containerd", "containerd.sock")
    eng = Ctr(sock, docker, limits)
    State.engines["ctr"] = eng
    r = subprocess.run(eng.argv + ["version"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("ctr version on %s: %s" % (sock, r.stderr.strip()[-300:]))
    m = re.search(r"Server:\s*\n\s*Version:\s*(\S+)", r.stdout)
    State.versions["ctr"] = "ctr, containerd %s" % (m.group(1) if m else "?")
    return eng


def start_engines(limits, skipped):
    """docker and podman, each probed with one container; one that cannot run is skipped with
    the reason (in latest.json `skipped`, latest.md and the log), never failing the bench."""
    engines = {}
    State.host_dirs_new = [d for d in HOST_DIRS if not os.path.exists(d)]
    for tool, start in (("docker", start_docker), ("podman", start_podman), ("ctr", start_ctr)):
        try:
            eng = start(limits)
            eng.image(IMAGE)
            cid = "%s-probe-%s" % (TAG, tool)
            eng.create(cid)
            eng.remove(cid)
            engines[tool] = eng
        except Exception as e:  # noqa: a peer that cannot run is skipped, with the reason
            skipped[tool] = str(e)
            log("%s skipped: %s" % (tool, e))
            remove_peer_containers()
    return engines


def stop_engines():
    """Our containers of docker and podman, dockerd (which stops its containerd), then any
    process still running from ENGINES (containerd, shims, conmon: their command lines name
    it; ours only), and the HOST_DIRS they made."""
    for eng in sorted(State.engines.values(), key=lambda e: e.tool != "ctr"):  # ctr's before dockerd's
        for cid in eng.ids():
            subprocess.run(eng.rm_argv(cid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for p in State.engine_procs:
        if p.poll() is None:
            stop_proc(p, 30)
    State.engine_left = engine_procs_left()
    for pid in State.engine_left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for d in State.host_dirs_new:
        for x in HOST_DIRS[d] + [""]:
            x = os.path.join(d, x).rstrip("/")
            with contextlib.suppress(OSError):
                (os.rmdir if os.path.isdir(x) else os.unlink)(x)


def engine_procs_left():
    """pids of live processes whose command line names ENGINES (ours: dockerd, containerd,
    containerd-shim, conmon, podman)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as fh:
                    if (ENGINES + "/").encode() in fh.read():
                        out.append(int(p))
            except OSError:
                pass
    return out


BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", IMAGE, "/",
         "--proc", "/proc", "--dev", "/dev", "--hostname", "bench", "/bin/true"]


# ---------------------------------------------------------------- case 1
def case1(peers, bwrap_ok):
    """One at a time, interleaved: create to running, and the full cycle."""
    methods = ["sandboxfs"] + sorted(peers) + (["bwrap"] if bwrap_ok else [])
    rows = {m: {"create": [], "cycle": [], "remove": []} for m in methods}
    daemon_create, phases = [], []
    rng = random.Random(now_ns())
    total = P["c1_warmup"] + P["c1_samples"]
    for i in range(total):
        order = methods[:]
        rng.shuffle(order)
        keep = i >= P["c1_warmup"]
        for m in order:
            if m == "sandboxfs":
                name = "c1-%d" % i
                t0 = now_ns()
                os.mkdir(os.path.join(MNT, name))
                t1 = wait_running(name)
                st = sbx_stats(name)
                t2 = now_ns()
                os.rmdir(os.path.join(MNT, name))
                t3 = now_ns()
                if keep:
                    rows[m]["create"].append((t1 - t0) / 1e3)
                    rows[m]["remove"].append((t3 - t2) / 1e3)
                    rows[m]["cycle"].append((t3 - t0 - (t2 - t1)) / 1e3)
                    daemon_create.append(float(st["create_usec"]))
                    phases.append({k: float(v) for k, v in st.items()
                                   if k.startswith("create_") and k.endswith("_usec")})
            elif m == "bwrap":
                ns, rc, err = run_tool(BWRAP)
                if rc != 0:
                    raise RuntimeError("bwrap: " + err)
                if keep:
                    rows[m]["create"].append(ns / 1e3)
                    rows[m]["cycle"].append(ns / 1e3)
            else:
                cid = "%s-c1-%s-%d" % (TAG, m, i)
                c = peers[m].create(cid)
                r = peers[m].remove(cid)
                if keep:
                    rows[m]["create"].append(c / 1e3)
                    rows[m]["remove"].append(r / 1e3)
                    rows[m]["cycle"].append((c + r) / 1e3)
        if i + 1 == P["c1_warmup"]:
            log("case 1: %d warm-up rounds done (discarded)" % P["c1_warmup"])
    log("case 1: %d rounds measured" % P["c1_samples"])
    rows["sandboxfs"]["daemon_create"] = daemon_create
    rows["sandboxfs"]["phases"] = phases
    return {"methods": methods, "samples": rows, "warmup": P["c1_warmup"],
            "engine_argv": {t: e.shown(IMAGE, ["/bin/sleep", "100000"], True)
                            for t, e in peers.items() if isinstance(e, Engine)}}


# ---------------------------------------------------------------- case 2
def burst_sbx(n, how, label, mnt=None, remove="rmdir"):
    mnt = mnt or MNT
    names = ["b%s-%s-%d" % (label, how, k) for k in range(n)]
    done = {}
    errors = []
    t0_box = []

    if how == "mkdir":
        barrier = threading.Barrier(n + 1)

        def one(nm):
            barrier.wait()
            try:
                os.mkdir(os.path.join(mnt, nm))
            except OSError as e:
                errors.append("%s: %s" % (nm, e))
        threads = [threading.Thread(target=one, args=(nm,)) for nm in names]
        for t in threads:
            t.start()
        t0 = now_ns()
        barrier.wait()
    else:
        def writer():
            fd = os.open(os.path.join(mnt, "ctl"), os.O_WRONLY)
            try:
                for nm in names:
                    try:
                        os.write(fd, ("create %s\n" % nm).encode())
                    except OSError as e:
                        errors.append("%s: %s" % (nm, e))
            finally:
                os.close(fd)
        threads = [threading.Thread(target=writer)]
        t0 = now_ns()
        threads[0].start()
    pending = set(names)
    deadline = t0 + int(60e9)
    while pending and not errors:
        for nm in list(pending):
            try:
                st = read_file(os.path.join(mnt, nm, "status")).strip()
            except FileNotFoundError:
                continue
            if st == "running":
                done[nm] = now_ns() - t0
                pending.discard(nm)
            elif st == "failed":
                errors.append(nm + " failed")
        if now_ns() > deadline:
            errors.append("timeout")
        time.sleep(POLL_S * 5)
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("burst %s: %s" % (how, "; ".join(errors[:5])))
    sts = [sbx_stats(nm, mnt) for nm in names]
    daemon = [float(st["create_usec"]) for st in sts]
    netus = [float(st.get("create_net_usec", 0)) for st in sts]
    removed_ms = remove_parallel(names, mnt) if remove == "rmdir" else remove_ctl(names, mnt)
    comp = [v / 1e3 for v in done.values()]
    return {"completion": comp, "all_running": max(comp), "daemon_create": daemon, "create_net": netus,
            "all_removed": removed_ms}


def released_together(items, fn, what):
    """fn(item) on a thread each, released together by a barrier: ms until the last
    returned. An OSError of any is a RuntimeError naming what failed."""
    barrier = threading.Barrier(len(items) + 1)
    errors = []

    def one(item):
        barrier.wait()
        try:
            fn(item)
        except OSError as e:
            errors.append("%s: %s" % (item, e))
    threads = [threading.Thread(target=one, args=(it,)) for it in items]
    for t in threads:
        t.start()
    t0 = now_ns()
    barrier.wait()
    for t in threads:
        t.join()
    t1 = now_ns()
    if errors:
        raise RuntimeError("%s: %s" % (what, "; ".join(errors[:5])))
    return (t1 - t0) / 1e6


def remove_ctl(names, mnt):
    """`remove NAME...` on ctl, 25 names a write, the writes at once (a thread each): ms until
    the last returned."""
    def write(batch):
        fd = os.open(os.path.join(mnt, "ctl"), os.O_WRONLY)
        try:
            os.write(fd, batch.encode())
        finally:
            os.close(fd)
    lines = ["remove %s\n" % " ".join(names[i:i + 25]) for i in range(0, len(names), 25)]
    return released_together(lines, write, "ctl remove")


def remove_parallel(names, mnt):
    """`rmdir` of every name at once (a thread each, released together): ms until the last
    returned."""
    return released_together(names, lambda nm: os.rmdir(os.path.join(mnt, nm)), "parallel rmdir")


def burst_peer(peer, n, label):
    cids = ["%s-b%s-%s-%d" % (TAG, label, peer.tool, k) for k in range(n)]
    comp, errors = [], []
    barrier = threading.Barrier(n + 1)
    t0box = [0]

    def one(cid):
        barrier.wait()
        try:
            peer.create(cid)
            comp.append((now_ns() - t0box[0]) / 1e3)
        except Exception as e:  # noqa
            errors.append(str(e))
    threads = [threading.Thread(target=one, args=(c,)) for c in cids]
    for t in threads:
        t.start()
    t0box[0] = now_ns()
    barrier.wait()
    for t in threads:
        t.join()
    # remove in parallel, a few at a time
    todo = list(cids)
    lk = threading.Lock()

    def remover():
        while True:
            with lk:
                if not todo:
                    return
                c = todo.pop()
            try:
                peer.remove(c)
            except Exception:
                pass
    rs = [threading.Thread(target=remover) for _ in range(4)]
    for t in rs:
        t.start()
    for t in rs:
        t.join()
    if errors:
        raise RuntimeError("burst %s: %s" % (peer.tool, "; ".join(errors[:3])))
    return {"completion": comp, "all_running": max(comp)}


def case2(peers):
    methods = ["sandboxfs-mkdir", "sandboxfs-ctl"] + sorted(peers)
    rng = random.Random(now_ns())

    def run(m, n, label):
        if m == "sandboxfs-mkdir":
            return burst_sbx(n, "mkdir", label)
        if m == "sandboxfs-ctl":
            return burst_sbx(n, "ctl", label)
        return burst_peer(peers[m], n, label)
    for m in methods:  # warm-up bursts, discarded
        run(m, P["burst_warm"], "w")
    log("case 2: warm-up bursts of %d done (discarded)" % P["burst_warm"])
    res = {n: {m: [] for m in methods} for n in P["burst_sizes"]}
    for rep in range(P["burst_reps"]):
        for n in P["burst_sizes"]:
            order = methods[:]
            rng.shuffle(order)
            for m in order:
                res[n][m].append(run(m, n, "%d-%d" % (n, rep)))
            log("case 2: burst %d rep %d done" % (n, rep))
    return {"methods": methods, "runs": res, "warmup_size": P["burst_warm"]}


# ---------------------------------------------------------------- cases 4 and 5
def time_ops(fn, iters):
    out = []
    for _ in range(iters):
        t0 = now_ns()
        fn()
        out.append((now_ns() - t0) / 1e3)
    return out


def file_api(count):
    target = os.path.join(MNT, "r-0", "stats")

    def cat_all():  # every sandbox's stats (`pools/`, `images/` are directories but no sandbox)
        for nm in os.listdir(MNT):
            p = os.path.join(MNT, nm, "stats")
            if nm not in TOP_DIRS and os.path.isdir(os.path.join(MNT, nm)):
                read_file(p)
    for _ in range(50):  # warm-up, discarded
        os.stat(target)
        read_file(target)
    it, lit = P["api_iters"], P["api_list_iters"]
    # `grep . /sbx/*/status` as a user types it: the shell's glob (readdir, a lookup a name),
    # one grep over every status file; the same command on /proc's files for the process cost.
    grep_sh = "grep . %s/*/status >/dev/null" % shlex.quote(MNT)
    grep_status = time_ops(lambda: subprocess.run(["sh", "-c", grep_sh], check=True), lit)
    grep_base = time_ops(lambda: subprocess.run(["sh", "-c", "grep . /proc/self/status >/dev/null"],
                                                check=True), lit)
    held = os.open(target, os.O_RDONLY)  # re-read from offset 0: one request, content of now
    try:
        reread = time_ops(lambda: os.pread(held, 65536, 0), it)
    finally:
        os.close(held)
    return {
        "stat_stats": time_ops(lambda: os.stat(target), it),
        "read_stats": time_ops(lambda: read_file(target), it),
        "reread_stats": reread,
        "ls": time_ops(lambda: os.listdir(MNT), lit),
        "cat_all_stats": time_ops(cat_all, max(3, lit // max(1, count // 100))),
        "grep_status": grep_status,
        "grep_base": grep_base,
    }


def claims_at(live):
    """With `live` sandboxes running: P["scale_claims"] claims from a pool of 2, each from a
    full pool (the mkdir syscall, the daemon's claim_usec); each claimed sandbox removed
    before the next, the pool removed after."""
    out = {"mkdir_us": [], "claim_usec": []}
    with held_pool("bscale", 2):
        for k in range(P["scale_claims"]):
            pool_wait_full("bscale")
            nm = "sc%d-%d" % (live, k)
            ns, _status = claim_one(nm)
            st = sbx_stats(nm)
            os.rmdir(os.path.join(MNT, nm))
            check_pool_stats(nm, st)
            out["mkdir_us"].append(ns / 1e3)
            out["claim_usec"].append(float(st["claim_usec"]))
    return out


def case45():
    checks = set(P["ramp_checks"])
    points, api, claims = [], {}, {}
    rss0 = daemon_rss_kib()
    for i in range(P["ramp_max"]):
        name = "r-%d" % i
        t0 = now_ns()
        os.mkdir(os.path.join(MNT, name))
        t1 = wait_running(name)
        st = sbx_stats(name)
        points.append({"live": i + 1, "create_us": (t1 - t0) / 1e3,
                       "daemon_create_us": float(st["create_usec"]), "rss_kib": daemon_rss_kib()})
        if i + 1 in checks:
            api[i + 1] = file_api(i + 1)
            claims[i + 1] = claims_at(i + 1)
            log("case 4/5: %d live sandboxes, file API and claims measured" % (i + 1))
    removes = []
    for i in reversed(range(P["ramp_max"])):
        t0 = now_ns()
        os.rmdir(os.path.join(MNT, "r-%d" % i))
        removes.append((now_ns() - t0) / 1e3)
    return {"points": points, "api": api, "claims": claims, "rss_start_kib": rss0,
            "rss_end_kib": daemon_rss_kib(), "remove_us": removes}


# ---------------------------------------------------------------- case 3
def case3():
    exe = os.path.join(BUILD, "bench", "registry_bench")
    runs = []
    for _ in range(P["reg_runs"]):
        out = subprocess.run([exe, "-s", P["reg_sizes"], "-i", str(P["reg_iters"]),
                              "-d", str(P["reg_secs"])], check=True, capture_output=True,
                             text=True).stdout
        rows = [l.split("\t") for l in out.strip().splitlines()[1:]]
        runs.append({(r[0], r[1], int(r[2]), int(r[3])): float(r[4]) for r in rows})
    keys = list(runs[0].keys())
    med = []
    for k in keys:
        vals = sorted(r[k] for r in runs if k in r)
        med.append({"impl": k[0], "op": k[1], "size": k[2], "threads": k[3],
                    "ns_per_op": vals[len(vals) // 2], "runs": vals})
    log("case 3: registry benchmark done (%d runs, median taken)" % P["reg_runs"])
    return {"rows": med, "runs": P["reg_runs"], "iters": P["reg_iters"], "secs": P["reg_secs"]}


# ---------------------------------------------------------------- networking (issue 4)
NET_MNT = os.path.join(TMP, "mnt-net")


def pick_subnet():
    """A private /16 that no host route overlaps (10.252 first, as the brief suggests)."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for b in (252, 251, 250, 249, 248):
        if " 10.%d." % b not in " " + routes and "\n10.%d." % b not in "\n" + routes:
            return "10.%d.0.0/16" % b
    raise RuntimeError("no free 10.248-252.0.0/16 subnet on this host")


def start_net_daemon():
    State.bridge = "sbxb%x" % (os.getpid() & 0xfffffff)  # <= 15 chars, unique to this run
    with open(os.path.join(TMP, "bridge"), "w") as fh:  # for run.sh, if we die
        fh.write(State.bridge + "\n")
    subnet = pick_subnet()
    start_daemon(NET_MNT, "state-net", ("--bridge", State.bridge, "--subnet", subnet))
    return {"bridge": State.bridge, "subnet": subnet}


def leftover_net():
    """Interfaces of this run left after cleanup: our bridge, veths with our daemons' tags."""
    try:
        ifs = os.listdir("/sys/class/net")
    except OSError:
        return []
    out = [i for i in ifs if i == State.bridge]
    tags = {"sbx%s-" % instance_tag(os.path.join(TMP, st))[:4] for st in ("state", "state-net")}
    out += [i for i in ifs if any(i.startswith(t) for t in tags)]
    return out


def case_net():
    """Create latency with networking on (second daemon) vs off (main daemon),
    interleaved one at a time, then 100-way bursts on both."""
    rows = {"off": {"create": [], "daemon": [], "net": [], "remove": []},
            "on": {"create": [], "daemon": [], "net": [], "remove": [], "phases": []}}
    rng = random.Random(now_ns())
    total = P["net_warm"] + P["net_samples"]
    for i in range(total):
        order = ["off", "on"]
        rng.shuffle(order)
        for m in order:
            mnt = NET_MNT if m == "on" else MNT
            name = "n%s-%d" % (m, i)
            t0 = now_ns()
            os.mkdir(os.path.join(mnt, name))
            t1 = wait_running(name, mnt=mnt)
            st = sbx_stats(name, mnt)
            t2 = now_ns()
            os.rmdir(os.path.join(mnt, name))
            t3 = now_ns()
            if i >= P["net_warm"]:
                rows[m]["remove"].append((t3 - t2) / 1e3)
                rows[m]["create"].append((t1 - t0) / 1e3)
                rows[m]["daemon"].append(float(st["create_usec"]))
                rows[m]["net"].append(float(st.get("create_net_usec", 0)))
                if m == "on":
                    rows[m]["phases"].append({k: float(v) for k, v in st.items()
                                              if k.startswith("create_") and k.endswith("_usec")})
        if i + 1 == P["net_warm"]:
            log("net: %d warm-up rounds done (discarded)" % P["net_warm"])
    log("net: %d rounds measured" % P["net_samples"])
    n = P["net_burst"]
    burst = {"off": [], "on": []}
    for m, mnt in (("off", MNT), ("on", NET_MNT)):  # warm-up bursts, discarded
        burst_sbx(5, "mkdir", "nw" + m, mnt)
    for rep in range(P["net_burst_reps"]):
        order = ["off", "on"]
        rng.shuffle(order)
        for m in order:
            burst[m].append(burst_sbx(n, "mkdir", "n%s%d" % (m, rep), NET_MNT if m == "on" else MNT))
        log("net: burst of %d rep %d done" % (n, rep))
    ctl_remove = {}
    for m in ("off", "on"):  # the same burst, removed through `remove NAME...` on ctl
        ctl_remove[m] = burst_sbx(n, "mkdir", "nr" + m, NET_MNT if m == "on" else MNT,
                                  remove="ctl")["all_removed"]
    log("net: bursts removed through ctl: %s" % ctl_remove)
    return {"samples": rows, "warmup": P["net_warm"], "burst_n": n, "burst": burst,
            "burst_warm": 5, "ctl_remove": ctl_remove}


def net_key(name, key):
    return kv(read_file(os.path.join(NET_MNT, name, "net"))).get(key)


def job_start(name, cmd, mnt):
    """A background job (NAME/run); returns its id."""
    fd = os.open(os.path.join(mnt, name, "run"), os.O_RDWR)
    try:
        os.write(fd, (cmd + "\n").encode())
        return int(os.read(fd, 64).decode().strip())
    finally:
        os.close(fd)


def job_wait(name, job, mnt, timeout=60.0):
    path = os.path.join(mnt, name, "jobs", str(job), "status")
    deadline = time.monotonic() + timeout
    while read_file(path).strip() == "running":
        if time.monotonic() > deadline:
            raise RuntimeError("job %s of %s still running after %ss" % (job, name, timeout))
        time.sleep(0.01)
    os.rmdir(os.path.dirname(path))


def netpol_transfer(src, dst_ip, mib):
    """mib MiB from /dev/zero in src to a `nc -l` job in the destination (started by the
    caller), through busybox nc: the exec's wall time, host-side, in µs."""
    t0 = now_ns()
    out = exec_run(src, "dd if=/dev/zero bs=65536 count=%d 2>/dev/null | nc %s 5001; echo rc=$?"
                   % (mib * 16, dst_ip), mnt=NET_MNT)
    t = (now_ns() - t0) / 1e3
    if b"rc=0" not in out:
        raise RuntimeError("netpol: transfer from %s failed: %r" % (src, out[-200:]))
    return t


def case_netpol():
    """Network policy (issue 18), on the networking daemon: the cost of applying one rule
    (the ctl write, timed here, and the daemon's own `policy_apply_usec` from NAME/net), and
    TCP throughput between two sandboxes (busybox nc) with 0, 10 and 1000 rules in each
    sandbox's policy besides `deny all` and the `allow sandbox` that lets them talk; each
    transfer is interleaved with the others' rule counts."""
    if not State.bridge:
        start_net_daemon()
    a, b = "npa", "npb"
    for n in (a, b):
        os.mkdir(os.path.join(NET_MNT, n))
        wait_running(n, mnt=NET_MNT)
    try:
        ip_b = net_key(b, "ip").split("/")[0]
        for x, y in ((a, b), (b, a)):
            ctl_write(x, "deny all\n", mnt=NET_MNT)
            ctl_write(x, "allow sandbox %s\n" % y, mnt=NET_MNT)
        apply_write, apply_daemon = [], []
        rules = 0
        results = {}
        mib = 8 if QUICK else 32
        for want in (0, 10, 1000):
            while rules < want:  # rules that match nothing: 10.100-103.x.0/24, one port each
                for x in (a, b):
                    t0 = now_ns()
                    ctl_write(x, "deny 10.%d.%d.0/24 tcp %d\n" % (100 + rules // 250, rules % 250,
                                                               1000 + rules), mnt=NET_MNT)
                    apply_write.append((now_ns() - t0) / 1e3)
                    apply_daemon.append(float(net_key(x, "policy_apply_usec")))
                rules += 1
            xs = []
            for _ in range(P["netpol_samples"]):
                job = job_start(b, "nc -l -p 5001 > /dev/null", NET_MNT)
                time.sleep(0.05)  # the listener is up
                xs.append(netpol_transfer(a, ip_b, mib))
                job_wait(b, job, NET_MNT)
            results[want] = {"usec": xs, "mbps": [mib * 8 * 1048576 / (u / 1e6) / 1e6 for u in xs]}
            log("netpol: %d rules: p50 %.0f Mbit/s" % (want, pct(results[want]["mbps"], 50)))
    finally:
        for n in (a, b):
            os.rmdir(os.path.join(NET_MNT, n))
    return {"mib": mib, "rules": {str(k): v for k, v in results.items()},
            "apply_write_usec": apply_write, "apply_daemon_usec": apply_daemon}


# ---------------------------------------------------------------- time to interactive (issue 8)
TTI_CMD = b"echo hi\n"


def exec_first_bytes(mnt, name, cmd=TTI_CMD, want=b"hi"):
    """Opens NAME/exec read+write (a write waits while NAME is creating), writes
    cmd (`echo hi`), reads the first bytes; returns the monotonic ns they came at."""
    fd = os.open(os.path.join(mnt, name, "exec"), os.O_RDWR)
    try:
        os.write(fd, cmd)
        out = os.read(fd, 4096)
        t = now_ns()
    finally:
        os.close(fd)
    if not out.startswith(want):
        raise RuntimeError("exec in %s answered %r" % (name, out[:80]))
    return t


def tti_sbx_one(mnt, name):
    """mkdir, then exec `echo hi` until the first bytes. Returns ns."""
    t0 = now_ns()
    os.mkdir(os.path.join(mnt, name))
    return exec_first_bytes(mnt, name) - t0


def tti_proc_one(argv, cid=None, tool=None, want=b"hi"):
    """A peer that runs `echo hi` (what prints want) in a fresh container: start to
    first stdout bytes."""
    if cid:
        with State.lock:
            State.containers[cid] = tool
    t0 = now_ns()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    State.children.add(p.pid)
    try:
        out = os.read(p.stdout.fileno(), 4096)
        t1 = now_ns()
        rest, err = p.communicate(timeout=60)
    finally:
        State.children.discard(p.pid)
    if cid:
        if p.returncode == 0:
            with State.lock:
                State.containers.pop(cid, None)
    if not out.startswith(want):
        raise RuntimeError("%s: rc %s, out %r, err %r" % (argv[0], p.returncode, out[:80], err[-300:]))
    return t1 - t0


def make_tti_bundle(tool, limits, root=None, args=("/bin/sh", "-c", "echo hi"), name="tti"):
    d = make_bundle("%s-%s" % (name, tool), limits, root)
    path = os.path.join(d, "config.json")
    with open(path) as fh:
        c = json.load(fh)
    c["process"]["args"] = list(args)
    with open(path, "w") as fh:
        json.dump(c, fh, indent=1)
    return d


BWRAP_TTI = BWRAP[:-1] + ["/bin/sh", "-c", "echo hi"]


def engine_tti(eng, root, cmd, want=b"hi"):
    """A function of a tag that times `TOOL run --rm ... cmd` (a fresh container) to its first
    stdout bytes, as tti_proc_one."""
    def one(tag):
        cid = "%s-t%s-%s" % (TAG, tag, eng.tool)
        return tti_proc_one(eng.run_argv(cid, root, cmd), cid, eng.tool, want)
    return one


def bundle_tti(tool, b, want=b"hi"):
    """A function of a tag that times `TOOL run --bundle b` (runc, crun) to its first stdout
    bytes, as tti_proc_one."""
    def one(tag):
        cid = "%s-t%s-%s" % (TAG, tag, tool)
        return tti_proc_one([tool, "run", "--bundle", b, cid], cid, tool, want)
    return one


def tti_methods(peers, engines, bwrap_ok, limits):
    fns = {"sandboxfs": lambda tag: tti_sbx_one(MNT, "t" + tag)}
    for tool in sorted(peers):
        fns[tool] = bundle_tti(tool, make_tti_bundle(tool, limits))
    for tool in sorted(engines):
        fns[tool] = engine_tti(engines[tool], IMAGE, ["/bin/sh", "-c", "echo hi"])
    if bwrap_ok:
        fns["bwrap"] = lambda tag: tti_proc_one(BWRAP_TTI)
    return fns


def tti_cleanup_sbx():
    for n in sbx_names():
        if n.startswith("t"):
            os.rmdir(os.path.join(MNT, n))


def tti_burst(fn, n, label, peer=False):
    """n of fn at once; peer: a run of a peer that fails (podman's `run` in a burst sometimes
    exits 0 having printed nothing) is counted in `failed` (and its first reasons kept), not
    a failure of the case; completion then has fewer samples. Ours always fail the case."""
    comp, errors = [], []
    barrier = threading.Barrier(n + 1)
    t0box = [0]

    def one(k):
        barrier.wait()
        try:
            fn("%s-%d" % (label, k))
            comp.append((now_ns() - t0box[0]) / 1e3)
        except Exception as e:  # noqa
            errors.append(str(e))
    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    t0box[0] = now_ns()
    barrier.wait()
    for t in threads:
        t.join()
    tti_cleanup_sbx()
    if errors and (not peer or not comp):
        raise RuntimeError("tti burst: " + "; ".join(errors[:3]))
    if errors:
        log("tti burst %s: %d of %d runs failed: %s" % (label, len(errors), n, "; ".join(errors[:2])))
    return {"completion": comp, "all": max(comp), "failed": len(errors), "errors": errors[:3]}


def case_tti(peers, engines, bwrap_ok, limits):
    fns = tti_methods(peers, engines, bwrap_ok, limits)
    methods = list(fns)
    rows = {m: [] for m in methods}
    rng = random.Random(now_ns())
    total = P["tti_warm"] + P["tti_samples"]
    for i in range(total):
        order = methods[:]
        rng.shuffle(order)
        for m in order:
            ns = fns[m]("%d" % i)
            if i >= P["tti_warm"]:
                rows[m].append(ns / 1e3)
        tti_cleanup_sbx()
        if i + 1 == P["tti_warm"]:
            log("tti: %d warm-up rounds done (discarded)" % P["tti_warm"])
    log("tti: %d rounds measured" % P["tti_samples"])
    for m in methods:
        tti_burst(fns[m], P["tti_burst_warm"], "bw%s" % m[:2], m != "sandboxfs")
    log("tti: warm-up bursts of %d done (discarded)" % P["tti_burst_warm"])
    bursts = {n: {m: [] for m in methods} for n in P["tti_bursts"]}
    for rep in range(P["tti_burst_reps"]):
        for n in P["tti_bursts"]:
            order = methods[:]
            rng.shuffle(order)
            for m in order:
                bursts[n][m].append(tti_burst(fns[m], n, "b%d-%d" % (n, rep), m != "sandboxfs"))
            log("tti: burst %d rep %d done" % (n, rep))
    return {"methods": methods, "samples": rows, "warmup": P["tti_warm"],
            "bursts": bursts, "burst_warm": P["tti_burst_warm"],
            "engine_argv": {t: e.shown(IMAGE, ["/bin/sh", "-c", "echo hi"]) for t, e in engines.items()}}


# ---------------------------------------------------------------- a real image (issue 16)
DEBIAN = os.path.join(BUILD, "images", "debian")
PY_CMD = "python3 -c 'print(2**10)'"


def case_debian(peers, engines, bwrap_ok, limits):
    """Debian 12 with python3 (make image-debian): from the create line to the first bytes
    of `python3 -c 'print(2**10)'`, one at a time, interleaved (shuffled each round): a
    cold create, a claim from a warm pool of that image (full before each of its
    samples), bwrap, runc and crun running the same command on the same root (read-only),
    and docker, podman and ctr (`run --rm` of an image imported from that root). The cold creates name a
    spec the pool lacks (only the pids limit differs), as case_pool's do."""
    if not os.path.exists(os.path.join(DEBIAN, "usr", "bin", "python3")):
        raise RuntimeError("no debian image in %s (make image-debian)" % DEBIAN)
    pname = "bdeb"
    cold = "pids=%d" % (limits["pids"] - 1 if limits["pids"] > 2 else limits["pids"] + 1)
    bw = BWRAP[:BWRAP.index(IMAGE)] + [DEBIAN] + BWRAP[BWRAP.index(IMAGE) + 1:-1] + \
        ["python3", "-c", "print(2**10)"]
    fns = {t: bundle_tti(t, make_tti_bundle(t, limits, DEBIAN, ["python3", "-c", "print(2**10)"], "deb"),
                         b"1024") for t in sorted(peers)}
    for tool in sorted(engines):  # imported before the rounds (a few seconds each)
        engines[tool].image(DEBIAN)
        fns[tool] = engine_tti(engines[tool], DEBIAN, ["python3", "-c", "print(2**10)"], b"1024")
    methods = ["cold", "pool"] + (["bwrap"] if bwrap_ok else []) + sorted(fns)
    rows = {m: [] for m in methods}
    daemon = {"cold_create_usec": [], "pool_claim_usec": []}
    os.mkdir(pool_dir(pname))
    try:
        pool_write(pname, "spec", "image=debian\n")
        pool_write(pname, "size", "1\n")
        rng = random.Random(now_ns())
        for i in range(P["debian_warm"] + P["debian_samples"]):
            order = methods[:]
            rng.shuffle(order)
            keep = i >= P["debian_warm"]
            for m in order:
                pool_wait_full(pname)
                if m == "bwrap":
                    ns = tti_proc_one(bw, want=b"1024")
                elif m in fns:
                    ns = fns[m]("deb%d" % i)
                else:
                    nm = "d%s-%d" % (m[0], i)
                    t0 = now_ns()
                    ctl_write("", "create %s image=debian%s\n" % (nm, "" if m == "pool" else " " + cold))
                    ns = exec_first_bytes(MNT, nm, (PY_CMD + "\n").encode(), b"1024") - t0
                    st = sbx_stats(nm)
                    os.rmdir(os.path.join(MNT, nm))
                    check_pool_stats(nm, st, m)
                    if keep:
                        key = "cold_create_usec" if m == "cold" else "pool_claim_usec"
                        daemon[key].append(float(st["create_usec" if m == "cold" else "claim_usec"]))
                if keep:
                    rows[m].append(ns / 1e3)
    finally:
        pool_remove(pname)
    log("debian: %d rounds; p50 %s" % (P["debian_samples"], ", ".join(
        "%s %.1f ms" % (m, pct(rows[m], 50) / 1e3) for m in methods)))
    return {"methods": methods, "samples": rows, "daemon": daemon, "warmup": P["debian_warm"],
            "image_mb": dir_bytes(DEBIAN) / 1e6, "cmd": PY_CMD, "cold_opts": cold,
            "bwrap_argv": [a.replace(ROOT + "/", "") for a in bw] if bwrap_ok else None,
            "engine_argv": {t: engines[t].shown(DEBIAN, ["python3", "-c", "print(2**10)"])
                            for t in fns if t in engines},
            "bundle_tools": sorted(peers)}


# ---------------------------------------------------------------- fork (issue 9, ns)
FORK_KEYS = ("fork_freeze_usec", "fork_checkpoint_usec", "fork_restore_usec", "fork_usec")


def ctl_write(name, line, mnt=None):
    fd = os.open(os.path.join(mnt or MNT, name, "ctl"), os.O_WRONLY)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def exec_run(name, cmd, mnt=None):
    fd = os.open(os.path.join(mnt or MNT, name, "exec"), os.O_RDWR)
    try:
        os.write(fd, (cmd + "\n").encode())
        out = b""
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            out += b
        code = os.read(fd, 100).decode().strip()
    finally:
        os.close(fd)
    if code != "exit_code 0":
        raise RuntimeError("exec %r in %s: %s %r" % (cmd, name, code, out[-300:]))
    return out


def fork_one(src, child):
    """`fork CHILD` on src's ctl until CHILD is running; returns (write ns, total ns, stats)."""
    t0 = now_ns()
    ctl_write(src, "fork %s\n" % child)
    t1 = now_ns()
    t2 = wait_running(child)
    st = sbx_stats(child)
    if st.get("parent") != src:
        raise RuntimeError("fork child %s has parent %r" % (child, st.get("parent")))
    return t1 - t0, t2 - t0, {k: float(st[k]) for k in FORK_KEYS if k in st}


def fork_burst(src, n, label):
    names = ["%s-%d" % (label, k) for k in range(n)]
    t0 = now_ns()
    ctl_write(src, "fork %s\n" % " ".join(names))
    t_ret = now_ns()
    pending, done = set(names), {}
    deadline = t0 + int(60e9)
    while pending:
        for nm in list(pending):
            st = read_file(os.path.join(MNT, nm, "status")).strip()
            if st == "running":
                done[nm] = (now_ns() - t0) / 1e3
                pending.discard(nm)
            elif st == "failed":
                raise RuntimeError("fork child %s failed" % nm)
        if now_ns() > deadline:
            raise RuntimeError("fork burst: %d children not running after 60 s" % len(pending))
        time.sleep(POLL_S * 5)
    daemon = [float(sbx_stats(nm)["fork_usec"]) for nm in names]
    for nm in names:
        os.rmdir(os.path.join(MNT, nm))
    comp = list(done.values())
    return {"completion": comp, "all_running": max(comp), "write_returned": (t_ret - t0) / 1e3,
            "daemon_fork": daemon}


def case_fork():
    """Single forks interleaved with plain creates, a burst from one checkpoint,
    and fork time vs the source's upper-layer size."""
    src = "fsrc"
    os.mkdir(os.path.join(MNT, src))
    wait_running(src)
    exec_run(src, "echo small > /root/marker")  # a small upper layer
    rows = {"fork": [], "fork_write": [], "create": [], "phases": []}
    rng = random.Random(now_ns())
    total = P["fork_warm"] + P["fork_samples"]
    for i in range(total):
        order = ["fork", "create"]
        rng.shuffle(order)
        keep = i >= P["fork_warm"]
        for m in order:
            if m == "fork":
                w, tot, ph = fork_one(src, "f1-%d" % i)
                os.rmdir(os.path.join(MNT, "f1-%d" % i))
                if keep:
                    rows["fork"].append(tot / 1e3)
                    rows["fork_write"].append(w / 1e3)
                    rows["phases"].append(ph)
            else:
                nm = "fc-%d" % i
                t0 = now_ns()
                os.mkdir(os.path.join(MNT, nm))
                t1 = wait_running(nm)
                os.rmdir(os.path.join(MNT, nm))
                if keep:
                    rows["create"].append((t1 - t0) / 1e3)
        if i + 1 == P["fork_warm"]:
            log("fork: %d warm-up rounds done (discarded)" % P["fork_warm"])
    log("fork: %d single forks measured" % P["fork_samples"])
    fork_burst(src, 5, "fbw")  # warm-up, discarded
    bursts = []
    for rep in range(P["fork_burst_reps"]):
        bursts.append(fork_burst(src, P["fork_burst"], "fb%d" % rep))
    log("fork: %d burst(s) of %d done" % (len(bursts), P["fork_burst"]))
    os.rmdir(os.path.join(MNT, src))
    sizes = []
    for mb in P["fork_sizes"]:
        s = "fsz%d" % mb
        os.mkdir(os.path.join(MNT, s))
        wait_running(s)
        if mb:  # 1 MiB files of random bytes, written inside the sandbox
            exec_run(s, "mkdir -p /data && i=0; while [ $i -lt %d ]; do "
                        "head -c 1048576 /dev/urandom > /data/f$i || exit 1; i=$((i+1)); done; sync" % mb)
        fork_one(s, "%s-w" % s)  # warm-up, discarded
        os.rmdir(os.path.join(MNT, "%s-w" % s))
        pts = []
        for k in range(P["fork_size_samples"]):
            w, tot, ph = fork_one(s, "%s-%d" % (s, k))
            os.rmdir(os.path.join(MNT, "%s-%d" % (s, k)))
            pts.append({"total": tot / 1e3, "write": w / 1e3, **ph})
        os.rmdir(os.path.join(MNT, s))
        sizes.append({"mb": mb, "samples": pts})
        log("fork: upper layer %d MB: %d forks" % (mb, len(pts)))
    return {"single": rows, "warmup": P["fork_warm"], "burst_n": P["fork_burst"],
            "bursts": bursts, "burst_warm": 5, "sizes": sizes}


# ---------------------------------------------------------------- qemu (issue 5)
QEMU_KEYS = ("create_usec", "create_vmm_spawn_usec", "create_qmp_usec", "create_boot_usec")


def qemu_one(name, extra=""):
    """`create NAME backend=qemu` (and extra words) on /sbx/ctl; a thread polls status
    (every 5 ms) for running while this one opens exec, writes `echo hi`, reads the
    first bytes."""
    box = {}

    def poller():
        try:
            box["running"] = wait_running(name, timeout=120, poll=0.005)
        except Exception as e:  # noqa
            box["err"] = str(e)
    t0 = now_ns()
    fd = os.open(os.path.join(MNT, "ctl"), os.O_WRONLY)
    try:
        os.write(fd, ("create %s backend=qemu memory=256M%s\n" % (name, extra)).encode())
    finally:
        os.close(fd)
    th = threading.Thread(target=poller)
    th.start()
    try:  # the poller ends by itself (running, failed or its timeout): wait for it in any case
        efd = os.open(os.path.join(MNT, name, "exec"), os.O_RDWR)
        try:
            os.write(efd, TTI_CMD)
            out = os.read(efd, 4096)
            t_tti = now_ns()
        finally:
            os.close(efd)
    except OSError as e:  # a VM that failed to start: the status poller has the sandbox's error
        th.join()
        if "err" in box:
            raise RuntimeError("%s (exec: %s)" % (box["err"], e)) from e
        raise
    finally:
        th.join()
    if "err" in box:
        raise RuntimeError(box["err"])
    if not out.startswith(b"hi"):
        raise RuntimeError("qemu exec answered %r" % out[:80])
    st = sbx_stats(name)
    os.rmdir(os.path.join(MNT, name))
    r = {"running": (box["running"] - t0) / 1e3, "tti": (t_tti - t0) / 1e3,
         "create_mode": st.get("create_mode")}
    r.update({k: float(st[k]) for k in QEMU_KEYS + ("claim_usec",) if k in st})
    return r


def case_qemu():
    vml = os.path.join(BUILD, "guest", "vmlinux")
    if not os.path.exists(vml):
        return {"skipped": "build/guest/vmlinux missing (run `make guest`)"}
    accel = kv(read_file(os.path.join(MNT, "stats"))).get("qemu_accel", "?")
    kvm = os.path.exists("/dev/kvm")
    rows, ns = [], []
    total = P["qemu_warm"] + P["qemu_samples"]
    for i in range(total):
        q = qemu_one("v%d" % i)
        n = "qns-%d" % i  # an ns create beside it, same round
        t0 = now_ns()
        os.mkdir(os.path.join(MNT, n))
        t1 = wait_running(n)
        st = sbx_stats(n)
        os.rmdir(os.path.join(MNT, n))
        if i >= P["qemu_warm"]:
            rows.append(q)
            ns.append({"running": (t1 - t0) / 1e3, "create_usec": float(st["create_usec"])})
        log("qemu: boot %d/%d (%s) running after %.0f ms" % (i + 1, total,
            "measured" if i >= P["qemu_warm"] else "warm-up, discarded", q["running"] / 1e3))
    pool = qemu_pool_claims()
    return {"accel": accel, "dev_kvm": kvm, "samples": rows, "ns": ns, "warmup": P["qemu_warm"],
            "pool": pool}


def qemu_pool_claims():
    """The same create (qemu_one) from a warm pool of one VM of its spec, full before each
    claim (a refill is a boot). After the cold boots: while the pool exists, they would claim."""
    name = "bqpool"
    os.mkdir(pool_dir(name))
    rows = []
    try:
        pool_write(name, "spec", "backend=qemu memory=256M\n")  # spec first: no ns member is made
        pool_write(name, "size", "1\n")
        for i in range(P["qpool_samples"]):
            pool_wait_full(name)
            q = qemu_one("vp%d" % i)
            if q["create_mode"] != "pool":
                raise RuntimeError("qemu pool: vp%d was created %s, not claimed" % (i, q["create_mode"]))
            rows.append(q)
            log("qemu: claim %d/%d running after %.2f ms, first output after %.1f ms" % (
                i + 1, P["qpool_samples"], q["running"] / 1e3, q["tti"] / 1e3))
    finally:
        pool_remove(name)
    return rows


# ---------------------------------------------------------------- imports and VM images (issue 16)
def oci_blob(layout, data, media):
    """data (bytes) as a blob of layout; its descriptor."""
    dg = hashlib.sha256(data).hexdigest()
    d = os.path.join(layout, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, dg), "wb") as fh:
        fh.write(data)
    return {"mediaType": media, "digest": "sha256:" + dg, "size": len(data)}


def oci_layout(layout, layers):
    """An OCI image layout at layout of the gzip'd layer tars (bytes), bottom first."""
    descs = [oci_blob(layout, l, "application/vnd.oci.image.layer.v1.tar+gzip") for l in layers]
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(l)).hexdigest() for l in layers]
    cfg = oci_blob(layout, json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode(),
                   "application/vnd.oci.image.config.v1+json")
    man = oci_blob(layout, json.dumps({"schemaVersion": 2, "config": cfg, "layers": descs}).encode(),
                   "application/vnd.oci.image.manifest.v1+json")
    man["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    with open(os.path.join(layout, "index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "manifests": [man]}, fh)
    with open(os.path.join(layout, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)


def disk_bytes(top):
    """Bytes allocated under top (st_blocks), each inode once, links not followed."""
    seen, total = set(), 0
    for dirpath, dirnames, files in os.walk(top):
        for n in dirnames + files:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def import_one(name, layout, timeout=600):
    """`import NAME oci:layout` on images/ctl until the image is ready: seconds."""
    t0 = now_ns()
    fd = os.open(os.path.join(MNT, "images", "ctl"), os.O_WRONLY)
    try:
        os.write(fd, ("import %s oci:%s\n" % (name, layout)).encode())
    finally:
        os.close(fd)
    while True:
        st = read_file(os.path.join(MNT, "images", name, "status")).strip()
        if st == "ready":
            return (now_ns() - t0) / 1e9
        if st == "failed" or now_ns() - t0 > timeout * 1e9:
            raise RuntimeError("import %s: %s (%s)" % (name, st, read_file(
                os.path.join(MNT, "images", name, "error")).strip()[:300]))
        time.sleep(0.02)


def case_images():
    """Issue 16's targets: an import of the Debian root (its /dev empty, as in images: a layer may hold no device node) as a one-layer OCI image (gzip), its
    time and disk, then a second image of that base and one small layer (what it adds), removed
    between rounds; and a qemu VM of the Debian image beside one of busybox, interleaved (the
    first Debian VM builds its root disk, reported on its own)."""
    if not os.path.isdir(DEBIAN):
        return {"skipped": "no Debian image (make image-debian)"}
    work = os.path.join(TMP, "oci")
    os.makedirs(work, exist_ok=True)
    t0 = now_ns()
    tar = subprocess.run(["tar", "-C", DEBIAN, "--numeric-owner", "--exclude=./dev/*", "-c", "."], capture_output=True, check=True).stdout
    base = gzip.compress(tar, compresslevel=1)
    top_tar = io.BytesIO()
    with tarfile.open(fileobj=top_tar, mode="w") as tf:
        data = b"a layer of its own\n"
        ti = tarfile.TarInfo("etc/bench-top")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    top = gzip.compress(top_tar.getvalue())
    oci_layout(os.path.join(work, "a"), [base])
    oci_layout(os.path.join(work, "b"), [base, top])
    log("images: layouts made in %.1f s (base layer %.0f MB gzip'd, %.0f MB unpacked)"
        % ((now_ns() - t0) / 1e9, len(base) / 1e6, len(tar) / 1e6))
    store = os.path.join(TMP, State.main_state, "imports")
    rounds = []
    for i in range(P["import_rounds"]):
        d0 = disk_bytes(store)
        ta = import_one("deb-a%d" % i, os.path.join(work, "a"))
        d1 = disk_bytes(store)
        tb = import_one("deb-b%d" % i, os.path.join(work, "b"))
        d2 = disk_bytes(store)
        rounds.append({"a_s": ta, "a_disk": d1 - d0, "b_s": tb, "b_disk": d2 - d1})
        os.rmdir(os.path.join(MNT, "images", "deb-b%d" % i))
        os.rmdir(os.path.join(MNT, "images", "deb-a%d" % i))
        log("images: import %d/%d: %.1f s (%.0f MB), sharing its base %.2f s (%.2f MB)"
            % (i + 1, P["import_rounds"], ta, (d1 - d0) / 1e6, tb, (d2 - d1) / 1e6))
    out = {"base_gz": len(base), "base_tar": len(tar), "top_gz": len(top), "imports": rounds}
    if not os.path.exists(os.path.join(BUILD, "guest", "vmlinux")):
        out["qemu_skipped"] = "build/guest/vmlinux missing (run `make guest`)"
        return out
    q = qemu_one("vdeb-first", " image=debian")  # (qemu_one removes what it made)
    out["qemu_first_debian"] = q
    out["qemu"] = {"busybox": [], "debian": []}
    for i in range(P["images_qemu"]):
        for img in random.sample(["busybox", "debian"], 2):
            n = "v%s%d" % (img[:3], i)
            out["qemu"][img].append(qemu_one(n, "" if img == "busybox" else " image=debian"))
    log("images: qemu debian first %.0f ms (its root disk built), then p50 %.0f ms vs busybox %.0f ms"
        % (q["running"] / 1e3, pct([x["running"] for x in out["qemu"]["debian"]], 50) / 1e3,
           pct([x["running"] for x in out["qemu"]["busybox"]], 50) / 1e3))
    return out


# ---------------------------------------------------------------- exec and files (issue 17)
def io_backend(name, backend, nbytes):
    """One sandbox of backend: exec `true` round trips, stdout throughput (`head -c`),
    and files.write / files.read of the Python client (a job's stdin in, an exec
    session out) of nbytes each. A VM's nbytes is MiBs too (io_kib_vm): on its
    virtio-serial channel a few KiB would measure only the exec round trip. Busybox
    `head -c` copies byte by byte through stdio, which under TCG is slower than the
    channel: files.read (`cat`) shows what the channel carries."""
    sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
    from sandboxfs import Sandbox  # the repository's client, as users drive it
    t0 = now_ns()
    ctl_write_top("create %s backend=%s%s" % (name, backend, " memory=256M" if backend == "qemu" else ""))
    wait_running(name, timeout=180)
    boot = (now_ns() - t0) / 1e3
    try:
        sb = Sandbox(name, root=MNT)
        rt = P["io_rt_vm" if backend == "qemu" else "io_rt"]
        exec_run(name, "true")  # warm-up
        round_trip = time_ops(lambda: exec_run(name, "true"), rt)
        mib = lambda secs: nbytes / secs / 2**20  # noqa: E731
        out, up, down = [], [], []
        data = os.urandom(nbytes)
        for _ in range(P["io_reps"]):
            t = now_ns()
            got = exec_count(name, "head -c %d /dev/zero" % nbytes)
            out.append(mib((now_ns() - t) / 1e9))
            if got != nbytes:
                raise RuntimeError("stdout of head -c %d gave %d bytes" % (nbytes, got))
            t = now_ns()
            sb.files.write("/tmp/io.bin", data)
            up.append(mib((now_ns() - t) / 1e9))
            t = now_ns()
            back = sb.files.read("/tmp/io.bin")
            down.append(mib((now_ns() - t) / 1e9))
            if back != data:
                raise RuntimeError("files.read gave back %d bytes, not the %d written" % (len(back), nbytes))
        return {"bytes": nbytes, "round_trip_us": round_trip, "stdout_mib_s": out,
                "upload_mib_s": up, "download_mib_s": down, "boot_ms": boot / 1e3}
    finally:
        os.rmdir(os.path.join(MNT, name))


def exec_count(name, cmd):
    """exec_run that only counts the output (1 MiB reads, nothing kept)."""
    fd = os.open(os.path.join(MNT, name, "exec"), os.O_RDWR)
    try:
        os.write(fd, (cmd + "\n").encode())
        n = 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            n += len(b)
        code = os.read(fd, 100).decode().strip()
    finally:
        os.close(fd)
    if code != "exit_code 0":
        raise RuntimeError("exec %r in %s: %s" % (cmd, name, code))
    return n


def ctl_write_top(line):
    fd = os.open(os.path.join(MNT, "ctl"), os.O_WRONLY)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def case_io():
    r = {"ns": io_backend("io-ns", "ns", P["io_mib"] << 20)}
    log("io: ns measured")
    if not os.path.exists(os.path.join(BUILD, "guest", "vmlinux")):
        r["qemu"] = {"skipped": "build/guest/vmlinux missing (run `make guest`)"}
    else:
        r["qemu"] = io_backend("io-vm", "qemu", P["io_kib_vm"] << 10)
        r["qemu"]["accel"] = kv(read_file(os.path.join(MNT, "stats"))).get("qemu_accel", "?")
        log("io: qemu measured")
    return r


# ---------------------------------------------------------------- qemu live fork and standby (issue 9)
QFORK_KEYS = ("fork_freeze_usec", "fork_checkpoint_usec", "fork_restore_usec", "fork_usec",
              "restore_usec", "create_restore_usec", "create_qmp_usec", "create_vmm_spawn_usec")
QEMU_TIMEOUT_S = 180  # 25 QEMUs restoring under TCG on 2 cores take a while


def first_bytes(name, t0):
    """exec `echo hi` in NAME until the first bytes; returns µs since t0 (ns)."""
    return (exec_first_bytes(MNT, name) - t0) / 1e3


def qfork_one(src, child):
    """`fork CHILD` on src's ctl; a thread polls CHILD's status every ms for running while
    this one writes `echo hi` to CHILD's exec and reads the first bytes (child interactive).
    Returns the outside times (µs from the start of the write) and the child's stats."""
    box = {}

    def poller():
        try:
            box["running"] = wait_running(child, timeout=QEMU_TIMEOUT_S, poll=0.001)
        except Exception as e:  # noqa
            box["err"] = str(e)
    t0 = now_ns()
    ctl_write(src, "fork %s\n" % child)
    t1 = now_ns()
    th = threading.Thread(target=poller)
    th.start()
    try:
        tti = first_bytes(child, t0)
    finally:
        th.join()
    if "err" in box:
        raise RuntimeError(box["err"])
    st = sbx_stats(child)
    if st.get("parent") != src or st.get("fork_mode") != "live":
        raise RuntimeError("child %s: parent %r, fork_mode %r" % (child, st.get("parent"), st.get("fork_mode")))
    r = {"write": (t1 - t0) / 1e3, "running": (box["running"] - t0) / 1e3, "tti": tti}
    r.update({k: float(st[k]) for k in QFORK_KEYS if k in st})
    return r


def qfork_burst(src, n, label):
    """`fork L-0 ... L-(n-1)` in one write; status of the pending ones polled every 20 ms
    (a tighter loop would take CPU from the QEMUs on this 2-core machine)."""
    names = ["%s-%d" % (label, k) for k in range(n)]
    t0 = now_ns()
    ctl_write(src, "fork %s\n" % " ".join(names))
    t_ret = now_ns()
    pending, done = set(names), {}
    deadline = t0 + int(QEMU_TIMEOUT_S * 1e9)
    while pending:
        for nm in list(pending):
            st = read_file(os.path.join(MNT, nm, "status")).strip()
            if st == "running":
                done[nm] = (now_ns() - t0) / 1e3
                pending.discard(nm)
            elif st == "failed":
                raise RuntimeError("qemu fork child %s failed: %s" % (
                    nm, read_file(os.path.join(MNT, nm, "error")).strip()))
        if now_ns() > deadline:
            raise RuntimeError("qemu fork burst: %d children not running after %d s"
                               % (len(pending), QEMU_TIMEOUT_S))
        time.sleep(0.02)
    sts = {nm: sbx_stats(nm) for nm in names}
    t_rm = now_ns()
    for nm in names:
        os.rmdir(os.path.join(MNT, nm))
    rm_s = (now_ns() - t_rm) / 1e9
    comp = [done[nm] for nm in names]
    return {"n": n, "completion": comp, "all_running": max(comp), "write_returned": (t_ret - t0) / 1e3,
            "daemon": {k: [float(sts[nm][k]) for nm in names if k in sts[nm]] for k in QFORK_KEYS},
            "ahead": sum(1 for nm in names if sts[nm].get("fork_start") == "ahead"),
            "remove_all_s": rm_s}


def wait_spares(src, n):
    """Seconds until src has n QEMUs started ahead waiting and none starting (its refill)."""
    t0 = now_ns()
    deadline = t0 + int(QEMU_TIMEOUT_S * 1e9)
    while True:
        st = sbx_stats(src)
        if st.get("fork_spares_ready") == str(n) and st.get("fork_spares_starting") == "0":
            return (now_ns() - t0) / 1e9
        if now_ns() > deadline:
            raise RuntimeError("qemu fork: %s has not %d spares after %d s (%s ready, %s starting)"
                               % (src, n, QEMU_TIMEOUT_S, st.get("fork_spares_ready"),
                                  st.get("fork_spares_starting")))
        time.sleep(0.1)


def qemu_leftovers():
    """QEMU processes and /dev/shm files (guest RAM, layer memory images) of this run's
    daemons still there."""
    procs = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as fh:
                if not fh.read().startswith("qemu-system"):
                    continue
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if (TMP + "/").encode() in cmd:  # its console log is in our daemon's state dir
            procs.append(int(pid))
    shm = [f for f in os.listdir("/dev/shm") if any(f.startswith("sandboxfs-%s-" % t) for t in daemon_tags())]
    return {"qemu_pids": procs, "shm": shm}


def case_qfork():
    """qemu live fork: single forks (interleaved with a plain qemu create), a burst from
    one checkpoint, a fork of a child, and standby/start."""
    vml = os.path.join(BUILD, "guest", "vmlinux")
    if not os.path.exists(vml):
        return {"skipped": "build/guest/vmlinux missing (run `make guest`)"}
    accel = kv(read_file(os.path.join(MNT, "stats"))).get("qemu_accel", "?")
    src = "qsrc"
    t0 = now_ns()
    ctl_write("", "create %s backend=qemu memory=256M\n" % src)  # MNT/ctl
    wait_running(src, timeout=QEMU_TIMEOUT_S, poll=0.005)
    src_boot = (now_ns() - t0) / 1e3
    exec_run(src, "echo warm > /root/warm; sync")  # the guest is warm: one exec done
    log("qfork: source %s running after %.0f ms (%s)" % (src, src_boot / 1e3, accel))

    # single forks, each round also a plain qemu create, shuffled
    single, creates = [], []
    rng = random.Random(now_ns())
    total = P["qfork_warm"] + P["qfork_samples"]
    for i in range(total):
        order = ["fork", "create"]
        rng.shuffle(order)
        keep = i >= P["qfork_warm"]
        for m in order:
            if m == "fork":
                child = "qf-%d" % i
                if i:  # the target's case: the fork finds its child's QEMU started ahead
                    wait_spares(src, 1)
                r = qfork_one(src, child)
                os.rmdir(os.path.join(MNT, child))
                if keep:
                    single.append(r)
                log("qfork: fork %d/%d (%s): running %.0f ms, interactive %.0f ms, source paused %.0f ms"
                    % (i + 1, total, "measured" if keep else "warm-up, discarded",
                       r["running"] / 1e3, r["tti"] / 1e3, r.get("fork_freeze_usec", 0) / 1e3))
            else:
                q = qemu_one("qfc-%d" % i)
                if keep:
                    creates.append(q)
    # a burst from one checkpoint (no warm-up burst: TCG restores are expensive)
    burst = qfork_burst(src, P["qfork_burst"], "qb")
    log("qfork: burst of %d: p50 %.0f ms, all running %.0f ms (%d children on a QEMU started ahead)" % (
        burst["n"], pct(burst["completion"], 50) / 1e3, burst["all_running"] / 1e3, burst["ahead"]))
    # the same burst again once the refill after the first is done: a QEMU ahead for each child
    refill_s = wait_spares(src, qemu_spares())
    burst_ahead = qfork_burst(src, P["qfork_burst"], "qa")
    burst_ahead["refill_s"] = refill_s
    log("qfork: burst of %d after a refill of %.1f s: p50 %.0f ms, all running %.0f ms (%d ahead)" % (
        burst_ahead["n"], refill_s, pct(burst_ahead["completion"], 50) / 1e3,
        burst_ahead["all_running"] / 1e3, burst_ahead["ahead"]))
    # fork of a child: its RAM is a private map, so the checkpoint carries the RAM
    gen1 = "qg1"
    qfork_one(src, gen1)
    cfork = []
    for k in range(P["qfork_cfork"]):
        r = qfork_one(gen1, "qg2-%d" % k)
        os.rmdir(os.path.join(MNT, "qg2-%d" % k))
        cfork.append(r)
        log("qfork: fork of a child %d: source paused %.0f ms, running %.0f ms" % (
            k, r.get("fork_freeze_usec", 0) / 1e3, r["running"] / 1e3))
    os.rmdir(os.path.join(MNT, gen1))
    # standby, then start
    standby = []
    for k in range(P["qfork_standby"]):
        t0 = now_ns()
        ctl_write(src, "standby\n")
        t1 = now_ns()
        st = read_file(os.path.join(MNT, src, "status")).strip()
        if st != "standby":
            raise RuntimeError("after standby %s is %r" % (src, st))
        s1 = sbx_stats(src)
        t2 = now_ns()
        ctl_write(src, "start\n")
        t3 = wait_running(src, timeout=QEMU_TIMEOUT_S, poll=0.001)
        tti = first_bytes(src, t2)
        s2 = sbx_stats(src)
        r = {"standby_write": (t1 - t0) / 1e3, "start_running": (t3 - t2) / 1e3, "start_tti": tti,
             "standby_usec": float(s1.get("standby_usec", 0)), "restore_usec": float(s2.get("restore_usec", 0))}
        for key in ("create_restore_usec", "create_qmp_usec", "create_vmm_spawn_usec"):
            if key in s2:
                r[key] = float(s2[key])
        standby.append(r)
        log("qfork: standby %d: saved in %.0f ms; start to running %.0f ms" % (
            k, r["standby_write"] / 1e3, r["start_running"] / 1e3))
    os.rmdir(os.path.join(MNT, src))
    def left_now():
        d = qemu_leftovers()
        try:
            d["layers"] = os.listdir(os.path.join(TMP, "state", "layers"))
        except OSError:
            d["layers"] = []
        return d
    left = left_now()
    for _ in range(50):  # layers go with their last user; give the daemon a moment
        if not any(left.values()):
            break
        time.sleep(0.1)
        left = left_now()
    if any(left.values()):
        log("qfork: LEFT after the case: %s" % left)
    return {"accel": accel, "dev_kvm": os.path.exists("/dev/kvm"), "source_boot": src_boot,
            "warmup": P["qfork_warm"], "single": single, "creates": creates, "burst": burst,
            "burst_ahead": burst_ahead,
            "child_fork": cfork, "standby": standby, "leftovers_after_case": left}


# ---------------------------------------------------------------- warm pools (issue 20)
# /sbx/pools/NAME/: members made ahead of one spec; a mkdir whose options match takes one
# and is `running` when mkdir returns. A new pool has a bare mkdir's spec, so while one of
# these cases holds a pool every plain `mkdir` on the main daemon claims from it: each case
# removes its pool before it returns (and recover() removes any pool a failed case left).
POOL_POLL_S = 0.005  # pause between reads of a pool's `status` while it fills
POOL_FILL_TIMEOUT_S = 180


def pool_dir(name, mnt=None):
    return os.path.join(mnt or MNT, "pools", name)


def pool_write(name, f, text, mnt=None):
    fd = os.open(os.path.join(pool_dir(name, mnt), f), os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def pool_status(name, mnt=None):
    st = kv(read_file(os.path.join(pool_dir(name, mnt), "status")))
    return {k: (int(v) if v.isdigit() else v) for k, v in st.items()}


def pool_make(name, size, mnt=None):
    """A pool of a bare mkdir's spec (the default of a new pool) with SIZE members;
    returns the ns when its size was written (its fills start then)."""
    os.mkdir(pool_dir(name, mnt))
    t = now_ns()
    pool_write(name, "size", "%d\n" % size, mnt)
    return t


def pool_wait_full(name, timeout=POOL_FILL_TIMEOUT_S, mnt=None):
    """Polls NAME/status until `ready` equals `size` and `filling` is 0; returns
    (the ns it was seen full, the status then). A stalled pool raises with its error."""
    deadline = now_ns() + int(timeout * 1e9)
    while True:
        st = pool_status(name, mnt)
        t = now_ns()
        if st.get("ready") == st.get("size") and st.get("filling") == 0:
            return t, st
        if st.get("state") == "stalled":
            err = read_file(os.path.join(pool_dir(name, mnt), "error")).strip()
            raise RuntimeError("pool %s stalled: %s (status %s)" % (name, err, st))
        if t > deadline:
            raise RuntimeError("pool %s not full after %ss: %s" % (name, timeout, st))
        time.sleep(POOL_POLL_S)


def member_dirs():
    """The main daemon's pool members on disk (STATE/sandboxes/.pID-RUN-SEQ)."""
    d = os.path.join(TMP, State.main_state, "sandboxes")
    try:
        return sorted(n for n in os.listdir(d) if n.startswith(".p"))
    except OSError:
        return []


def pool_remove(name, mnt=None, wait=True):
    """rmdir the pool (its members are discarded, off the reply's path), then waits until
    their state dirs are gone so that the next measurement does not share the CPU with
    the discards. Returns the seconds it waited."""
    try:
        os.rmdir(pool_dir(name, mnt))
    except FileNotFoundError:
        return 0.0
    t0 = now_ns()
    if wait and (mnt or MNT) == MNT:
        deadline = t0 + int(60e9)
        while member_dirs() and now_ns() < deadline:
            time.sleep(0.01)
        if member_dirs():
            raise RuntimeError("pool %s removed, but its members' state dirs are still there "
                               "after 60 s: %s" % (name, " ".join(member_dirs()[:5])))
    return (now_ns() - t0) / 1e9


@contextlib.contextmanager
def held_pool(name, size):
    """A pool of SIZE (pool_make) for the body, removed after it (pool_remove), also when the
    body fails: then a failure to remove it is logged (recover() tries again) and the body's
    own exception is the one reported. Yields the ns when its size was written."""
    t0 = pool_make(name, size)
    try:
        yield t0
    except BaseException:
        try:
            pool_remove(name)
        except Exception as e:  # noqa: the body's failure is the one to report
            log("pool %s could not be removed after a failure: %s" % (name, e))
        raise
    pool_remove(name)


def rmdir_all(names):
    for nm in names:
        os.rmdir(os.path.join(MNT, nm))


def claim_one(name):
    """One claim from a full pool: the mkdir syscall (the claim makes the sandbox running
    before it returns). Returns (mkdir ns, the sandbox's status read right after it)."""
    t0 = now_ns()
    os.mkdir(os.path.join(MNT, name))
    t1 = now_ns()
    return t1 - t0, read_file(os.path.join(MNT, name, "status")).strip()


def check_pool_stats(name, st, want="pool"):
    if st.get("create_mode") != want:
        raise RuntimeError("sandbox %s: create_mode %r, wanted %r (stats: %s)" % (
            name, st.get("create_mode"), want, " ".join("%s=%s" % kv_ for kv_ in list(st.items())[:12])))


BWRAP_ECHO = BWRAP[:-1] + ["/bin/echo", "hi"]


def case_pool(bwrap_ok, limits):
    """ns from a warm pool, one at a time: mkdir to running (the mkdir syscall) and to the
    first bytes of `echo hi` through NAME/exec, interleaved (shuffled each round) with a cold
    create of the same image and with bwrap running /bin/echo hi. The pool is full before
    every sample of every method."""
    pname = "bpool"
    size = P["pool_tti_size"]
    # a spec no pool has (only the pids limit differs): a cold create, the way it is made without pools
    cold_opts = "pids=%d" % (limits["pids"] - 1 if limits["pids"] > 2 else limits["pids"] + 1)
    methods = ["pool", "cold"] + (["bwrap"] if bwrap_ok else [])
    rows = {m: {"tti": []} for m in methods}
    rows["pool"].update({"running": [], "claim_usec": [], "claim_journal_usec": [],
                         "status_after_mkdir": [], "refill_wait": [], "exec_warm": []})
    rows["cold"].update({"create_usec": []})
    with held_pool(pname, size):
        spec = read_file(os.path.join(pool_dir(pname), "spec")).strip()
        pool_wait_full(pname)
        st0 = pool_status(pname)
        rng = random.Random(now_ns())
        total = P["pool_warm"] + P["pool_samples"]
        for i in range(total):
            order = methods[:]
            rng.shuffle(order)
            keep = i >= P["pool_warm"]
            for m in order:
                tw = now_ns()
                pool_wait_full(pname)  # the last pool claim's refill is done: nothing else runs
                waited = now_ns() - tw
                if m == "pool":
                    nm = "pw-%d" % i
                    t0 = now_ns()
                    os.mkdir(os.path.join(MNT, nm))
                    t1 = now_ns()
                    t2 = exec_first_bytes(MNT, nm)
                    status = read_file(os.path.join(MNT, nm, "status")).strip()
                    st = claimed_stats(nm)
                    os.rmdir(os.path.join(MNT, nm))
                    check_pool_stats(nm, st)
                    if keep:
                        R = rows["pool"]
                        R["running"].append((t1 - t0) / 1e3)
                        R["tti"].append((t2 - t0) / 1e3)
                        R["claim_usec"].append(float(st["claim_usec"]))
                        R["claim_journal_usec"].append(float(st.get("claim_journal_usec", 0)))
                        R["status_after_mkdir"].append(status)
                        # 1: the exec ran in the member's warm shell (no fork, no exec)
                        R["exec_warm"].append(int(st.get("exec_warm_total", 0)))
                elif m == "cold":
                    nm = "pc-%d" % i
                    t0 = now_ns()
                    ctl_write("", "create %s %s\n" % (nm, cold_opts))
                    t2 = exec_first_bytes(MNT, nm)
                    st = sbx_stats(nm)
                    os.rmdir(os.path.join(MNT, nm))
                    check_pool_stats(nm, st, "cold")
                    if keep:
                        rows["cold"]["tti"].append((t2 - t0) / 1e3)
                        rows["cold"]["create_usec"].append(float(st["create_usec"]))
                else:
                    ns = tti_proc_one(BWRAP_ECHO)
                    if keep:
                        rows["bwrap"]["tti"].append(ns / 1e3)
                if keep and m == "pool":
                    rows["pool"]["refill_wait"].append(waited / 1e3)
            if i + 1 == P["pool_warm"]:
                log("pool: %d warm-up rounds done (discarded)" % P["pool_warm"])
        st1 = pool_status(pname)
    log("pool: %d rounds measured; p50 mkdir %.2f ms, TTI %.2f ms (bwrap %s ms)" % (
        P["pool_samples"], pct(rows["pool"]["running"], 50) / 1e3, pct(rows["pool"]["tti"], 50) / 1e3,
        "%.2f" % (pct(rows["bwrap"]["tti"], 50) / 1e3) if bwrap_ok else "–"))
    return {"methods": methods, "samples": rows, "warmup": P["pool_warm"], "size": size,
            "spec": spec, "cold_opts": cold_opts, "bwrap_argv": BWRAP_ECHO if bwrap_ok else None,
            "status_start": st0, "status_end": st1}


def pool_burst_run(n, label):
    """N threads released by a barrier each mkdir one sandbox. A mkdir that claimed is
    running when it returns (its status is read once by its thread right after); the others
    (cold creates, misses) are polled by this thread until running. Returns the times (µs
    since the release), the mkdirs' return times, and each sandbox's create_mode."""
    names = ["%s-%d" % (label, k) for k in range(n)]
    ret, first, errors = {}, {}, []
    barrier = threading.Barrier(n + 1)

    def one(nm):
        barrier.wait()
        try:
            os.mkdir(os.path.join(MNT, nm))
            ret[nm] = now_ns()
            first[nm] = read_file(os.path.join(MNT, nm, "status")).strip()
        except OSError as e:
            errors.append("%s: %s" % (nm, e))
    threads = [threading.Thread(target=one, args=(nm,)) for nm in names]
    for t in threads:
        t.start()
    t0 = now_ns()
    barrier.wait()
    done = {}
    deadline = t0 + int(60e9)
    while len(done) < n and not errors:
        for nm in names:
            if nm in done or nm not in first:
                continue
            if first[nm] == "running":
                done[nm] = ret[nm]
                continue
            st = read_file(os.path.join(MNT, nm, "status")).strip()
            if st == "running":
                done[nm] = now_ns()
            elif st == "failed":
                errors.append(nm + " failed")
        if now_ns() > deadline:
            errors.append("timeout: %d of %d running after 60 s" % (len(done), n))
        if len(done) < n:
            time.sleep(POLL_S * 5)
    for t in threads:
        t.join()
    made = [nm for nm in names if nm in ret]
    sts = {nm: sbx_stats(nm) for nm in made}
    rmdir_all(made)  # outside the timed part
    if errors:
        raise RuntimeError("pool burst %s: %s" % (label, "; ".join(errors[:5])))
    modes = [sts[nm].get("create_mode", "?") for nm in names]
    comp = [(done[nm] - t0) / 1e3 for nm in names]
    return {"n": n, "completion": comp, "all_running": max(comp),
            "mkdir_returned": [(ret[nm] - t0) / 1e3 for nm in names],
            "all_mkdir_returned": (max(ret.values()) - t0) / 1e3,
            "running_at_return": sum(1 for nm in names if first[nm] == "running"),
            "modes": modes, "hits": modes.count("pool"),
            "claim_usec": [float(sts[nm]["claim_usec"]) for nm, m in zip(names, modes) if m == "pool"],
            "create_usec": [float(sts[nm]["create_usec"]) for nm in names]}


def pool_burst_pair(n, size, label, reps):
    """`reps` times: a cold burst of N mkdirs (no pool: every mkdir creates), then a pool of
    SIZE filled, the same burst against it, the pool removed (what it refills is discarded)."""
    out = {"cold": [], "pool": [], "pool_status": []}
    pname = "pb" + label
    for rep in range(reps):
        out["cold"].append(pool_burst_run(n, "%sc%d" % (label, rep)))
        with held_pool(pname, size):
            _, st0 = pool_wait_full(pname)
            b = pool_burst_run(n, "%sp%d" % (label, rep))
            st1 = pool_status(pname)
        b["pool_hits"] = st1["hits"] - st0["hits"]
        b["pool_misses"] = st1["misses"] - st0["misses"]
        out["pool"].append(b)
        out["pool_status"].append(st1)
        log("pool burst %d against a pool of %d, rep %d: %d hits, all running %.0f ms (cold burst %.0f ms)"
            % (n, size, rep, b["hits"], b["all_running"] / 1e3, out["cold"][-1]["all_running"] / 1e3))
    return out


def burst_floor(n):
    """The harness of pool_burst_run with no daemon: N threads released by a barrier each
    mkdir a directory in a local one (the bench's temporary dir) and read one small file
    there; µs from the release until the last returned. What the threads cost here."""
    d = os.path.join(TMP, "floor")
    os.makedirs(d, exist_ok=True)
    f = os.path.join(d, "status")
    with open(f, "w") as fh:
        fh.write("running\n")

    def one(k):
        os.mkdir(os.path.join(d, "b%d" % k))
        read_file(f)
    ms = released_together(list(range(n)), one, "the burst's harness alone")
    for k in range(n):
        os.rmdir(os.path.join(d, "b%d" % k))
    return ms * 1e3


def case_pool_burst():
    n = P["pool_burst"]
    pool_burst_run(3, "pbw")  # a warm-up burst (cold), discarded
    res = pool_burst_pair(n, n, "b", P["pool_burst_reps"])
    floor = [burst_floor(n) for _ in range(5)]
    log("pool burst: the same harness on a local directory, no daemon: %.1f ms (median of 5)"
        % (sorted(floor)[2] / 1e3))
    return {"n": n, "size": n, "reps": P["pool_burst_reps"], "floor": floor, **res}


def case_pool_over():
    n, size = P["pool_over_burst"], P["pool_over_size"]
    res = pool_burst_pair(n, size, "o", P["pool_burst_reps"])
    return {"n": n, "size": size, "reps": P["pool_burst_reps"], **res}


def case_pool_size():
    """Claim latency against the pool's size: a pool of each size filled (the fill from 0
    timed), then one mkdir at a time, the pool full again before each."""
    out = []
    for size in P["pool_sizes"]:
        pname = "ps%d" % size
        with held_pool(pname, size) as t0:
            tf, _ = pool_wait_full(pname)
            mk, cl, cj = [], [], []
            for k in range(P["pool_size_warm"] + P["pool_size_samples"]):
                pool_wait_full(pname)
                nm = "ps%d-%d" % (size, k)
                ns, status = claim_one(nm)
                st = claimed_stats(nm)
                os.rmdir(os.path.join(MNT, nm))
                check_pool_stats(nm, st)
                if status != "running":
                    raise RuntimeError("%s read %r right after its mkdir returned" % (nm, status))
                if k >= P["pool_size_warm"]:
                    mk.append(ns / 1e3)
                    cl.append(float(st["claim_usec"]))
                    cj.append(float(st.get("claim_journal_usec", 0)))
            st = pool_status(pname)
        out.append({"size": size, "fill_from_empty_s": (tf - t0) / 1e9, "mkdir": mk, "claim_usec": cl,
                    "claim_journal_usec": cj, "status": st})
        log("pool size %d: filled from empty in %.2f s; claim p50 %.2f ms (daemon %.0f us)" % (
            size, (tf - t0) / 1e9, pct(mk, 50) / 1e3, pct(cl, 50)))
    return {"sizes": out, "warmup": P["pool_size_warm"]}


def cgroup_memory(leaf):
    """Memory of one of our daemon's cgroups (TAG-NAME under the v1 memory hierarchy's or
    the v2 root's sandboxfs/): the cgroup's usage, its memory.stat's anonymous and file
    pages, and the PSS of its processes (smaps_rollup). None if not found."""
    for base, usage, anon, fil in (("/sys/fs/cgroup/memory/sandboxfs", "memory.usage_in_bytes", "rss", "cache"),
                                   ("/sys/fs/cgroup/sandboxfs", "memory.current", "anon", "file")):
        d = os.path.join(base, leaf)
        if not os.path.exists(os.path.join(d, usage)):
            continue
        stat = {k: int(v) for k, v in kv(read_file(os.path.join(d, "memory.stat"))).items() if v.isdigit()}
        procs = [int(x) for x in read_file(os.path.join(d, "cgroup.procs")).split()]
        pss = 0
        for pid in procs:
            try:
                for line in read_file("/proc/%d/smaps_rollup" % pid).splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
            except OSError:
                pass
        r = {"cgroup": d, "usage": int(read_file(os.path.join(d, usage)).strip()),
             "anon": stat.get(anon), "file": stat.get(fil), "procs": len(procs), "pss": pss}
        kmem = os.path.join(d, "memory.kmem.usage_in_bytes")
        if os.path.exists(kmem):
            try:
                r["kmem"] = int(read_file(kmem).strip())
            except (OSError, ValueError):
                pass
        elif "kernel" in stat:
            r["kmem"] = stat["kernel"]
        return r
    return None


def dir_bytes(path):
    """Bytes allocated on disk under path (st_blocks), not following links."""
    total = 0
    for dp, dns, fns in os.walk(path):
        for x in dns + fns:
            try:
                total += os.lstat(os.path.join(dp, x)).st_blocks * 512
            except OSError:
                pass
    return total


def case_pool_refill():
    """What an idle member costs (memory of its cgroup, its state dir, the daemon's RSS), and
    how fast an emptied pool is full again."""
    n = P["pool_refill_n"]
    tag = instance_tag(os.path.join(TMP, State.main_state))
    # an idle cold sandbox, the same way, for comparison (no pool exists yet: a cold create)
    os.mkdir(os.path.join(MNT, "prcold"))
    try:
        wait_running("prcold")
        time.sleep(P["pool_idle_s"])
        cold = cgroup_memory("%s-prcold" % tag)
        cold_stats = sbx_stats("prcold")
        cold_disk = dir_bytes(os.path.join(TMP, State.main_state, "sandboxes", "prcold"))
    finally:
        os.rmdir(os.path.join(MNT, "prcold"))
    pname = "pr"
    rss0 = daemon_rss_kib()
    refills = []
    with held_pool(pname, n) as t0:
        tf, st = pool_wait_full(pname)
        fill0 = {"s": (tf - t0) / 1e9, "made": st["made"], "fill_usec_last": st["fill_usec"]}
        time.sleep(P["pool_idle_s"])  # idle members
        rss1 = daemon_rss_kib()
        members = member_dirs()
        mem = [m for m in (cgroup_memory("%s-%s" % (tag, x)) for x in members) if m]
        if not mem:
            raise RuntimeError("no cgroup found for the members %s (tag %s)" % (members[:3], tag))
        disk = [dir_bytes(os.path.join(TMP, State.main_state, "sandboxes", x)) for x in members]
        for rep in range(P["pool_refill_reps"]):
            _, st0 = pool_wait_full(pname)
            names = ["pr%d-%d" % (rep, k) for k in range(n)]
            ta = now_ns()
            for nm in names:  # empties it: n claims, one after another
                os.mkdir(os.path.join(MNT, nm))
            tb = now_ns()
            tf, st1 = pool_wait_full(pname)
            modes = [sbx_stats(nm).get("create_mode") for nm in names]
            rmdir_all(names)
            refills.append({"n": n, "claims_s": (tb - ta) / 1e9, "from_first_claim_s": (tf - ta) / 1e9,
                            "from_last_claim_s": (tf - tb) / 1e9, "hits": modes.count("pool"),
                            "made": st1["made"] - st0["made"], "fill_usec_last": st1["fill_usec"]})
            log("pool refill %d: %d claimed in %.0f ms, full again %.2f s after the first claim (%.1f members/s)"
                % (rep, n, (tb - ta) / 1e6, (tf - ta) / 1e9, refills[-1]["made"] / ((tf - ta) / 1e9)))
    return {"n": n, "idle_s": P["pool_idle_s"], "fill_from_empty": fill0, "refills": refills,
            "member_memory": mem, "member_disk": disk, "cold_memory": cold,
            "cold_memory_bytes_stat": float(cold_stats.get("memory_bytes", 0)), "cold_disk": cold_disk,
            "daemon_rss_before_kib": rss0, "daemon_rss_full_kib": rss1}


# ---------------------------------------------------------------- machine facts
def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def out(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return ""
    # What the bench writes itself (an earlier run's results) is not a change of the code.
    dirty = out(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"])
    return {
        "cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
        "mem_total": open("/proc/meminfo").readline().split(":")[1].strip(),
        "commit": out(["git", "rev-parse", "--short", "HEAD"]) + (" (with uncommitted changes)" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "runc": out(["runc", "--version"]).splitlines()[0] if shutil.which("runc") else "absent",
        "crun": out(["crun", "--version"]).splitlines()[0] if shutil.which("crun") else "absent",
        "bwrap": out(["bwrap", "--version"]) if shutil.which("bwrap") else "absent",
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def hybrid_fix(limits, result):
    """crun 1.8 refuses a hybrid layout (v1 controllers plus a cgroup2 mount at
    /sys/fs/cgroup/unified).  We run in a private mount namespace (run.sh), so
    after recording crun's refusal we cover the controller-less cgroup2 mount
    with a private tmpfs: every peer and sandboxfs then sees plain cgroup v1,
    where all the limits are enforced, and nothing leaks to the host."""
    uni = "/sys/fs/cgroup/unified"
    is_v2 = False
    with open("/proc/self/mounts") as f:
        is_v2 = any(l.split()[1] == uni and l.split()[2] == "cgroup2" for l in f)
    if not is_v2:
        result["notes"].append("no cgroup2 mount at %s: layout is plain cgroup v1" % uni)
        return
    ctrls = read_file(os.path.join(uni, "cgroup.controllers")).strip() or "none"
    if shutil.which("crun"):
        b = make_bundle("crun-probe", limits)
        cid = TAG + "-hybridprobe"
        with State.lock:
            State.containers[cid] = "crun"
        _, rc, err = run_tool(["crun", "run", "-d", "--bundle", b, cid])
        subprocess.run(["crun", "delete", "-f", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with State.lock:
            State.containers.pop(cid, None)
        result["crun_hybrid"] = ("crun on the host layout: exit %d, %r" % (rc, err)) if rc else "crun ran on the hybrid layout"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=755", "sbxbench", uni], check=True)
    result["notes"].append(
        "host layout is hybrid: cgroup v1 controllers plus a cgroup2 mount at %s whose controllers are: %s. "
        "The bench runs in a private mount namespace where that mount is covered by an empty tmpfs, "
        "so crun, runc and sandboxfs all use cgroup v1 with the same limits." % (uni, ctrls))


# ---------------------------------------------------------------- one case at a time
RMDIR_TIMEOUT_S = 120  # to remove what a failed case left on one daemon's mount


def clear_daemon(d, mnt):
    """rmdir every warm pool (its members are discarded) and every sandbox on a daemon's
    mount (twice: a fork's source may go only after its children). A daemon that does not
    answer within RMDIR_TIMEOUT_S is killed (it is ours) and its mount detached, which ends
    the blocked call. Returns (removed, left)."""
    left, removed, pool_left = [], [], []

    def worker():
        for n in pool_names(mnt):  # pools first: their fills stop, their members go
            try:
                os.rmdir(os.path.join(mnt, "pools", n))
                removed.append("pools/" + n)
            except FileNotFoundError:
                pass
            except OSError as e:
                pool_left.append("pools/%s: %s" % (n, e))
        for _ in range(2):
            left.clear()
            for n in sbx_names(mnt):
                try:
                    os.rmdir(os.path.join(mnt, n))
                    removed.append(n)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    left.append("%s: %s" % (n, e))
            if not left:
                return
    th = threading.Thread(target=worker, daemon=True)
    th.start()
    th.join(RMDIR_TIMEOUT_S)
    if th.is_alive():
        d.kill()
        d.wait()
        subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
        th.join(10)
        return list(removed), ["the daemon on %s did not remove its sandboxes within %d s: killed"
                               % (mnt, RMDIR_TIMEOUT_S)]
    return list(removed), pool_left + list(left)


def exit_text(rc):
    if rc is not None and rc < 0:
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %s" % rc


def daemon_log_tails(n=25):
    """The last lines of each of our daemons' logs (they are in TMP, removed by run.sh)."""
    out = {}
    for f in sorted(os.listdir(TMP)):
        if f.startswith("daemon-") and f.endswith(".log"):
            try:
                with open(os.path.join(TMP, f), errors="replace") as fh:
                    out[f] = [l.rstrip("\n") for l in fh.readlines()[-n:]]
            except OSError:
                pass
    return out


def recover():
    """After a failed case: the peers' containers it left, every sandbox left on our
    daemons' mounts; the main daemon is restarted (on a new state dir) if it died.
    Returns sentences saying what was found and done."""
    notes = []
    remove_peer_containers()
    for d, mnt in list(State.daemons):
        if d.poll() is not None:
            notes.append("the daemon on %s had ended (%s)" % (mnt, exit_text(d.returncode)))
            if mounted(mnt):
                subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
            n = end_sandboxes_of(State.tag_of[d.pid])
            if n:
                notes.append("killed the %d process(es) its sandboxes still ran" % n)
            continue
        removed, left = clear_daemon(d, mnt)
        if removed:
            notes.append("removed %d sandbox(es) it left on %s: %s" % (
                len(removed), mnt, " ".join(removed[:10]) + (" ..." if len(removed) > 10 else "")))
        if left:
            notes.append("left on %s: %s" % (mnt, "; ".join(left[:5])))
    if State.daemon.poll() is not None:
        State.restarts += 1
        st = "state-r%d" % State.restarts
        try:
            State.daemon = start_daemon(state=st)
            State.main_state = st
            notes.append("the main daemon was restarted on a new state dir (%s)" % st)
        except Exception as e:  # noqa: the next case says so
            notes.append("the main daemon could not be restarted: %s" % e)
    return notes


def run_case(name, fn, result):
    """Runs one case: fn returns the result keys of the case, stored only when it
    returns. When it raises, result["failed"][name] says why, and recover() cleans up."""
    t0 = now_ns()
    inject = [c for c in os.environ.get("BENCH_FAIL", "").split(",") if c]
    try:
        if State.daemon.poll() is not None:
            raise RuntimeError("the main daemon is not running (%s) and could not be restarted"
                               % exit_text(State.daemon.returncode))
        if name in inject:
            raise RuntimeError("failure injected by BENCH_FAIL=%s" % os.environ["BENCH_FAIL"])
        out = fn()
    except Exception as e:  # noqa: one case's failure is reported; the others run
        secs = (now_ns() - t0) / 1e9
        reason = ("%s: %s" % (type(e).__name__, e)).strip()
        tb = traceback.format_exc().rstrip().splitlines()
        log("case %s FAILED after %.1f s: %s" % (name, secs, reason))
        for line in tb[-6:]:
            log("    " + line)
        info = {"reason": reason, "after_s": round(secs, 1), "traceback": tb[-20:],
                "daemon_logs": daemon_log_tails()}
        info["recovery"] = recover()
        for n in info["recovery"]:
            log("case %s: %s" % (name, n))
        result["failed"][name] = info
        return False
    result.update(out)
    return True


# ---------------------------------------------------------------- main
def main():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    result = {"quick": QUICK, "params": P, "poll_s": POLL_S, "machine": machine(), "notes": [],
              "failed": {}}
    result["crun_host_probe"] = os.environ.get("CRUN_HOST_PROBE", "")
    result["cgroup_layout"] = os.environ.get("CGROUP_LAYOUT", "")
    try:
        State.daemon = start_daemon()
        stats0 = kv(read_file(os.path.join(MNT, "stats")))
        result["cgroup_version"] = stats0.get("cgroup_version", "?")
        # a probe sandbox: learns the defaults mkdir applies (the peers get the same)
        os.mkdir(os.path.join(MNT, "probe"))
        wait_running("probe")
        cfg = json.loads(read_file(os.path.join(MNT, "probe", "config")))
        os.rmdir(os.path.join(MNT, "probe"))
        limits = {"memory": int(cfg["memory"]), "pids": int(cfg["pids"]), "cpus": float(cfg["cpus"])}
        result["limits"] = limits
        peers, skipped = {}, {}
        try:
            hybrid_fix(limits, result)
        except Exception as e:  # noqa: the peers' probes below say what that costs
            result["notes"].append("covering the hybrid cgroup2 mount failed: %s" % e)
        for tool in ("crun", "runc"):
            if not shutil.which(tool):
                skipped[tool] = "not installed"
                continue
            try:
                peer = Peer(tool, make_bundle(tool, limits))
                peer.create(TAG + "-probe-" + tool)
                peer.remove(TAG + "-probe-" + tool)
                peers[tool] = peer
            except Exception as e:  # noqa: a peer that cannot run is skipped, with the reason
                skipped[tool] = str(e)
                remove_peer_containers()
        bwrap_ok = False
        if shutil.which("bwrap"):
            _, rc, err = run_tool(BWRAP)
            bwrap_ok = rc == 0
            if not bwrap_ok:
                skipped["bwrap"] = err
        else:
            skipped["bwrap"] = "not installed"
        only = []  # BENCH_CASES: for development; `pools` names every warm-pool case
        for c in os.environ.get("BENCH_CASES", "").split(","):
            only += POOL_CASES if c == "pools" else ([c] if c else [])
        unknown = [c for c in only if c not in CASE_KEYS]
        if unknown:
            log("BENCH_CASES: no case named %s (cases: %s)" % (", ".join(unknown), ", ".join(CASE_KEYS)))
        engines = {}  # docker and podman: started only for the cases they take part in
        engine_info = {}  # in each of those cases' results: a partial run merges only those
        if not only or any(c in ENGINE_CASES for c in only):
            engines = start_engines(limits, skipped)
            engine_info = {"versions": dict(State.versions),
                           "skipped": {t: skipped[t] for t in ("docker", "podman", "ctr") if t in skipped}}
        result["skipped"] = skipped
        log("peers: %s; skipped: %s" % (sorted(peers) + sorted(engines) + (["bwrap"] if bwrap_ok else []),
                                        skipped))

        def net():
            info = start_net_daemon()
            return {"net_info": info, "net": case_net()}
        cases = {
            "case1": lambda: {"case1": dict(case1({**peers, **engines}, bwrap_ok), engine_info=engine_info)},
            "case2": lambda: {"case2": case2(peers)},
            "case45": lambda: {"case45": case45()},
            "case3": lambda: {"case3": case3()},
            "net": net,
            "tti": lambda: {"tti": dict(case_tti(peers, engines, bwrap_ok, limits), engine_info=engine_info)},
            "fork": lambda: {"fork": case_fork()},
            "qemu": lambda: {"qemu": case_qemu()},
            "qfork": lambda: {"qfork": case_qfork()},
            "pool": lambda: {"pool": case_pool(bwrap_ok, limits)},
            "pool_burst": lambda: {"pool_burst": case_pool_burst()},
            "pool_over": lambda: {"pool_over": case_pool_over()},
            "pool_size": lambda: {"pool_size": case_pool_size()},
            "pool_refill": lambda: {"pool_refill": case_pool_refill()},
            "debian": lambda: {"debian": dict(case_debian(peers, engines, bwrap_ok, limits), engine_info=engine_info)},
            "netpol": lambda: {"netpol": case_netpol()},
            "io": lambda: {"io": case_io()},
            "images": lambda: {"images": case_images()},
        }
        for c in CASE_KEYS:  # in this order
            if not only or c in only:
                run_case(c, cases[c], result)
        try:
            result["daemon_stats_end"] = kv(read_file(os.path.join(MNT, "stats")))
        except OSError as e:
            result["notes"].append("the main daemon's stats could not be read at the end: %s" % e)
    finally:
        cleanup()
    result["leftover_mounts"] = [l for l in open("/proc/self/mounts") if TMP in l]
    result["leftover_net"] = leftover_net()
    result["leftover_qemu"] = {k: v for k, v in State.qemu_found.items() if v}
    if State.engines:  # processes from ENGINES: after dockerd stopped (then killed), and now
        result["leftover_engines"] = {"after_stop": State.engine_left, "now": engine_procs_left(),
                                      "host_dirs": [d for d in State.host_dirs_new if os.path.exists(d)]}
    result["elapsed_s"] = (now_ns() - T_START) / 1e9
    save(result, only)
    log("done in %.1fs" % result["elapsed_s"])
    if result["failed"]:
        for c, info in result["failed"].items():
            log("FAILED case %s: %s" % (c, info["reason"]))
        sys.exit(3)  # results saved; run.sh writes latest.md and exits 1


RUN_KEYS = ("daemon_stats_end", "leftover_mounts", "leftover_net", "leftover_qemu", "leftover_engines",
            "elapsed_s")


def run_info(result, cases):
    m = result["machine"]
    return {"commit": m["commit"], "date": m["date"], "quick": result["quick"], "set": SET,
            "loadavg": m["loadavg"], "elapsed_s": result.get("elapsed_s"), "cases": cases,
            "failed": sorted(result.get("failed", {})),
            "params": result["params"], **{k: result[k] for k in RUN_KEYS[:-1] if k in result}}


def save(result, only):
    """A full run replaces latest.json. A partial run (BENCH_CASES) replaces only its own
    cases' keys in the existing latest.json; `runs` describes each run (by its date) and
    `provenance` maps each case to the run it came from, so the other cases keep the
    results of the run that made them and latest.md says which run each section is.
    A case that failed is in `failed` (reason, run): in a full run it has no figures; in a
    partial run the figures of an earlier run, if any, are kept beside the failure."""
    path = os.path.join(RESULTS, "latest.json")
    os.makedirs(RESULTS, exist_ok=True)
    ran = [c for c in CASE_KEYS if all(k in result for k in CASE_KEYS[c])]
    base = None
    if only and os.path.exists(path):
        with open(path) as f:
            base = json.load(f)
    rid = result["machine"]["date"]
    for info in result["failed"].values():
        info["run"] = rid
    if base is None:
        result["runs"] = {rid: run_info(result, ran)}
        result["provenance"] = {c: rid for c in ran}
        out = result
    else:
        runs, prov = base.setdefault("runs", {}), base.setdefault("provenance", {})
        failed = base.setdefault("failed", {})
        had = [c for c in CASE_KEYS if all(k in base for k in CASE_KEYS[c])]
        if any(c not in prov for c in had):  # from before provenance: all of one run
            bid = base["machine"]["date"]
            runs.setdefault(bid, run_info(base, had))
            for c in had:
                prov.setdefault(c, bid)
        runs[rid] = run_info(result, ran)
        for c in ran:
            for k in CASE_KEYS[c]:
                base[k] = result[k]
            prov[c] = rid
            failed.pop(c, None)
        failed.update(result["failed"])
        for x in list(runs):  # runs no case comes from (or failed in) any more
            if x not in prov.values() and x not in [f.get("run") for f in failed.values()]:
                del runs[x]
        out = base
        log("partial run (%s) merged into %s; other cases kept from their own runs" % (",".join(ran), path))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1, default=str)
    os.rename(tmp, path)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        cleanup()
        print("bench interrupted (%s); cleaned up" % e, file=sys.stderr)
        sys.exit(130)
