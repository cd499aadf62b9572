"""A real sandboxfs mount for the client's tests.

The session starts build/sandboxfs (or $SANDBOXFS) in the foreground on a
mount point in a new temporary directory, with its own state dir, the
images of build/images (or $SBX_IMAGES), no network and --stop-on-exit; at
the end (failures included) it unmounts with `fusermount3 -u` and waits for
that process, the only one it ends.
"""

import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PKG))
sys.path.insert(0, PKG)

from sandboxfs import Sandbox  # noqa: E402

DAEMON = os.environ.get("SANDBOXFS", os.path.join(REPO, "build", "sandboxfs"))
IMAGES = os.environ.get("SBX_IMAGES", os.path.join(REPO, "build", "images"))
START_S = 60  # the daemon's start-up, on a loaded machine
_names = itertools.count(1)


def _mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path or line.split()[4].startswith(path + "/") for line in f)


def _die_with_us():
    """In the daemon's child before exec: SIGTERM when this process dies
    (killed, so no teardown): the daemon then unmounts and stops its sandboxes."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="sbxpy.")
    yield d
    if not _mounted(d):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mount(tmp_root):
    """The mount point of a sandboxfs this session started."""
    if os.geteuid() != 0:
        pytest.skip("sandboxfs needs root")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    # Others may be rebuilding the daemon: a binary missing for a moment is waited for.
    for _ in range(120):
        if os.access(DAEMON, os.X_OK):
            break
        time.sleep(1)
    else:
        pytest.fail("%s is missing: run `make all image`" % DAEMON)
    if not os.path.isdir(os.path.join(IMAGES, "busybox")):
        pytest.fail("%s/busybox is missing: run `make image`" % IMAGES)
    mnt = os.path.join(tmp_root, "mnt")
    state = os.path.join(tmp_root, "state")
    os.mkdir(mnt)
    os.mkdir(state)
    logpath = os.path.join(tmp_root, "daemon.log")
    log = open(logpath, "wb")
    proc = subprocess.Popen([DAEMON, "-f", "--state", state, "--images", IMAGES, "--no-net",
                             "--stop-on-exit", mnt], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_die_with_us)
    try:
        deadline = time.monotonic() + START_S
        while not os.path.exists(os.path.join(mnt, "ctl")):
            if proc.poll() is not None:
                pytest.fail("sandboxfs exited %d at start-up:\n%s" % (proc.returncode, _tail(logpath)))
            if time.monotonic() > deadline:
                pytest.fail("sandboxfs did not mount %s in %d s:\n%s" % (mnt, START_S, _tail(logpath)))
            time.sleep(0.05)
        yield mnt
    finally:
        if proc.poll() is None:
            for _ in range(50):
                if subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                    break
                if not _mounted(mnt):
                    break
                time.sleep(0.2)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                # A copy of the mount in another mount namespace (some other
                # program's) keeps the connection open after the unmount:
                # SIGTERM ends the daemon's loop; it stops its sandboxes.
                proc.terminate()
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if _mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
        log.close()


def fresh_name(prefix="t"):
    return "%s%d-%d" % (prefix, os.getpid() % 100000, next(_names))


@pytest.fixture
def name():
    return fresh_name()


@pytest.fixture
def sb(mount):
    """A running sandbox of its own for one test, removed after it."""
    s = Sandbox.create(fresh_name(), root=mount, memory="128M")
    yield s
    for kid in os.listdir(mount):
        if kid.startswith(s.name + "-") and os.path.isdir(os.path.join(mount, kid)):
            Sandbox(kid, root=mount).remove()
    if s.exists():
        s.remove()
