"""Create, wait, errors, stats and remove against a real mount."""

import errno
import os

import pytest

from conftest import fresh_name
from sandboxfs import (Sandbox, SandboxError, SandboxStateError, images, remove,
                       root_stats, sandboxes)


def test_create_waits_until_running_with_the_spec(mount, name):
    sb = Sandbox.create(name, root=mount, memory="96M", pids=77, image="busybox")
    try:
        assert sb.status == "running"
        assert sb.wait("running", timeout=30)["state"] == "running"
        cfg = sb.config()
        assert cfg["name"] == name
        assert cfg["memory"] == 96 << 20
        assert cfg["pids"] == 77
        assert cfg["net"] is False
        assert name in sandboxes(mount)
        assert "busybox" in images(mount)
    finally:
        sb.remove()


def test_create_without_wait_then_wait(mount, name):
    sb = Sandbox.create(name, root=mount, wait=False)
    try:
        ev = sb.wait("running", timeout=60)
        assert ev["state"] == "running"
        assert ev["reason"] == "-"
    finally:
        sb.remove()


def test_stats_are_ints_where_numeric(sb):
    st = sb.stats()
    assert st["state"] == "running"
    assert st["backend"] == "ns"
    assert st["memory_limit_bytes"] == 128 << 20
    assert isinstance(st["pids_current"], int) and st["pids_current"] >= 1
    assert isinstance(st["create_usec"], int) and st["create_usec"] > 0
    assert all(isinstance(v, (int, float)) for k, v in st.items() if k.endswith("_usec"))
    top = root_stats(sb.root)
    assert isinstance(top["sandboxes"], int) and top["sandboxes"] >= 1


def test_bad_name_is_einval_with_the_daemons_sentence(mount):
    with pytest.raises(SandboxError) as ei:
        Sandbox.create("bad!name", root=mount)
    assert ei.value.errno == errno.EINVAL
    assert ei.value.sentence == "ctl: sandbox name has a character outside [A-Za-z0-9_.-] (byte 0x21)"
    assert not os.path.exists(os.path.join(mount, "bad!name"))


def test_a_name_that_would_split_the_line_is_refused_here(mount):
    with pytest.raises(SandboxError) as ei:
        Sandbox.create("a image=x", root=mount)
    assert ei.value.errno == errno.EINVAL
    assert "a image=x" not in sandboxes(mount) and "a" not in sandboxes(mount)
    for bad in ("..", "../x", ".hidden"):
        with pytest.raises(SandboxError) as ei:
            Sandbox(bad, root=mount)
        assert ei.value.errno == errno.EINVAL


def test_duplicate_is_eexist(sb):
    with pytest.raises(SandboxError) as ei:
        Sandbox.create(sb.name, root=sb.root)
    assert ei.value.errno == errno.EEXIST
    assert ei.value.sentence == "ctl: sandbox '%s' already exists" % sb.name
    assert ei.value.sandbox == sb.name
    assert sb.status == "running"


def test_unknown_image_is_enoent(mount, name):
    with pytest.raises(SandboxError) as ei:
        Sandbox.create(name, root=mount, image="no-such-image")
    assert ei.value.errno == errno.ENOENT
    assert "unknown image 'no-such-image'" in ei.value.sentence
    assert name not in sandboxes(mount)


def test_bad_value_is_einval(mount, name):
    with pytest.raises(SandboxError) as ei:
        Sandbox.create(name, root=mount, memory="lots")
    assert ei.value.errno == errno.EINVAL
    assert "memory=lots" in ei.value.sentence


def test_a_failed_ctl_write_carries_the_sandboxs_sentence(sb):
    with pytest.raises(SandboxError) as ei:
        sb.start()
    assert ei.value.errno == errno.EBUSY
    assert ei.value.sentence == "cannot start sandbox %s: it is running" % sb.name
    with pytest.raises(SandboxError) as ei:
        sb.ctl("frobnicate")
    assert ei.value.errno == errno.EINVAL
    assert "frobnicate" in ei.value.sentence


def test_stop_start_and_wait(sb):
    sb.stop(1)
    assert sb.status == "stopped"
    with pytest.raises(SandboxStateError) as ei:
        sb.wait("running", timeout=30)
    assert ei.value.state == "stopped"
    assert ei.value.errno == errno.EBUSY
    with pytest.raises(SandboxError) as ei:
        sb.exec("true")
    assert ei.value.errno == errno.EBUSY
    assert "it is stopped" in ei.value.sentence
    sb.start()
    assert sb.status == "running"
    assert sb.exec("echo back").stdout == "back\n"


def test_wait_ends_when_the_sandbox_stops_on_its_own(mount, name):
    sb = Sandbox.create(name, root=mount, timeout=1)
    try:
        # Its timeout stops it while the wait for another state runs.
        with pytest.raises(SandboxStateError) as ei:
            sb.wait("paused", timeout=120)
        assert ei.value.state == "stopped"
        assert ei.value.events["reason"] == "timeout"
    finally:
        sb.remove()


def test_wait_times_out(sb):
    with pytest.raises(TimeoutError) as ei:
        sb.wait("paused", timeout=0.2)
    assert "is running, not paused" in str(ei.value)
    assert sb.status == "running"


def test_pause_and_resume_are_seen_by_wait(sb):
    sb.pause()
    assert sb.wait("paused", timeout=30)["state"] == "paused"
    sb.resume()
    assert sb.wait("running", timeout=30)["state"] == "running"


def test_remove(mount, name):
    sb = Sandbox.create(name, root=mount)
    sb.remove()
    assert not sb.exists()
    assert name not in sandboxes(mount)
    with pytest.raises(SandboxError) as ei:
        sb.remove()
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(SandboxError) as ei:
        sb.status
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(SandboxError) as ei:
        Sandbox(name, root=mount)
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(SandboxError) as ei:
        sb.wait("running", timeout=5)
    assert ei.value.errno == errno.ENOENT


def test_context_manager_removes_what_it_created(mount, name):
    with Sandbox.create(name, root=mount) as sb:
        assert sb.status == "running"
        with Sandbox(name, root=mount) as same:  # attached: not removed by its with
            assert same.status == "running"
        assert sb.exists()
    assert not os.path.exists(os.path.join(mount, name))


def test_context_manager_removes_on_an_exception(mount):
    n = fresh_name()
    with pytest.raises(RuntimeError):
        with Sandbox.create(n, root=mount):
            raise RuntimeError("boom")
    assert n not in sandboxes(mount)


def test_concurrent_clients_get_their_own_sentence(mount):
    # /sbx/error is shared: each failing create must pick the line naming its sandbox.
    import threading
    names = [fresh_name() for _ in range(3)]
    made = [Sandbox.create(n, root=mount, wait=False) for n in names]
    got = {n: [] for n in names}

    def dup(n):
        for _ in range(5):
            try:
                Sandbox.create(n, root=mount, wait=False)
            except SandboxError as e:
                got[n].append((e.errno, e.sentence))

    try:
        ts = [threading.Thread(target=dup, args=(n,)) for n in names]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for n in names:
            assert got[n] == [(errno.EEXIST, "ctl: sandbox '%s' already exists" % n)] * 5
    finally:
        for s in made:
            s.remove()


def test_two_clients_of_one_sandbox_read_their_own_sentence(sb):
    # The sandbox's `error` holds whichever failed last; each ctl handle gives
    # back its own write's sentence.
    import threading
    got = {w: set() for w in ("frob", "nicate")}

    def bad(word):
        for _ in range(20):
            try:
                sb.ctl(word)
            except SandboxError as e:
                got[word].add((e.errno, e.sentence.split(" (", 1)[0]))

    ts = [threading.Thread(target=bad, args=(w,)) for w in got]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for w in got:
        assert got[w] == {(errno.EINVAL, "unknown command '%s'" % w)}


def test_remove_many_at_once_and_the_first_failure_raised(mount):
    names = [fresh_name() for _ in range(4)]
    boxes = [Sandbox.create(n, root=mount) for n in names]
    remove([boxes[0], boxes[1]] + names[2:], root=mount)
    assert not any(n in sandboxes(mount) for n in names)
    # A name that is not there: the write fails with the daemon's sentence,
    # the other name in it is removed all the same.
    sb = Sandbox.create(fresh_name(), root=mount)
    missing = fresh_name()
    with pytest.raises(SandboxError) as ei:
        remove([sb.name, missing], root=mount)
    assert ei.value.errno == errno.ENOENT
    assert "remove %s: no such sandbox" % missing in ei.value.sentence
    assert not sb.exists()
