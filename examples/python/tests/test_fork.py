"""fork and snapshots against a real mount."""

import errno
import os

import pytest

from sandboxfs import Sandbox, SandboxError, sandboxes


def test_fork_n_children_with_the_parents_files(sb):
    sb.files.write("/root/marker", "from-parent")
    kids = sb.fork(2)
    assert [k.name for k in kids] == [sb.name + "-1", sb.name + "-2"]
    for k in kids:
        assert k.status == "running"
        assert k.owned
        assert k.files.read("/root/marker") == b"from-parent"
        assert k.config()["parent"] == sb.name
    kids[0].files.write("/root/marker", "changed-in-child")
    assert sb.files.read("/root/marker") == b"from-parent"
    assert kids[1].files.read("/root/marker") == b"from-parent"
    # The next free names are taken after those.
    more = sb.fork(1)
    assert more[0].name == sb.name + "-3"


def test_fork_by_names(sb):
    a, b = sb.fork([sb.name + "-x", sb.name + "-y"])
    assert (a.name, b.name) == (sb.name + "-x", sb.name + "-y")
    assert a.exec("hostname").stdout.strip() == a.name
    with a:
        pass
    assert not a.exists()
    assert b.exists()


def test_a_taken_name_forks_none(sb):
    with pytest.raises(SandboxError) as ei:
        sb.fork([sb.name + "-new", sb.name])
    assert ei.value.errno == errno.EEXIST
    assert ei.value.sentence == "sandbox '%s' already exists" % sb.name
    assert sb.name + "-new" not in sandboxes(sb.root)


def test_snapshot_and_fork_from_it(sb):
    sb.files.write("/root/v", "v1")
    snap = sb.snapshot("s1")
    assert [s.name for s in sb.snapshots()] == ["s1"]
    sb.files.write("/root/v", "v2")
    (kid,) = snap.fork(1)
    assert kid.files.read("/root/v") == b"v1"
    assert sb.files.read("/root/v") == b"v2"
    snap.remove()
    assert sb.snapshots() == []
    assert kid.files.read("/root/v") == b"v1"  # its layer lives while it is used
    kid.remove()


def test_snapshot_errors(sb):
    sb.snapshot("s1")
    with pytest.raises(SandboxError) as ei:
        sb.snapshot("s1")
    assert ei.value.errno == errno.EEXIST
    with pytest.raises(SandboxError) as ei:
        sb.fork(1, from_snapshot="nosnap")
    assert ei.value.errno == errno.ENOENT
    assert ei.value.sentence == "sandbox %s has no snapshot 'nosnap'" % sb.name
    assert not os.path.exists(os.path.join(sb.root, sb.name + "-1"))


def test_fork_of_a_stopped_sandbox_is_ebusy(sb):
    sb.stop(1)
    with pytest.raises(SandboxError) as ei:
        sb.fork(1)
    assert ei.value.errno == errno.EBUSY
    assert "it is stopped" in ei.value.sentence


def test_attach_to_a_child(sb):
    (kid,) = sb.fork(1)
    again = Sandbox(kid.name, root=sb.root)
    assert not again.owned
    assert again.status == "running"


def test_with_removes_the_children_it_forked(mount):
    from conftest import fresh_name
    with Sandbox.create(fresh_name(), root=mount) as parent:
        kept, gone = parent.fork(2)
        kept.owned = False
    try:
        assert not parent.exists()
        assert not gone.exists()
        assert kept.exists()
    finally:
        kept.remove()
