"""Warm pools and imported images through the client (a real mount)."""

import errno
import hashlib
import io
import json
import os
import tarfile

import pytest

from conftest import IMAGES, fresh_name
from sandboxfs import Image, Pool, Sandbox, SandboxError, images, pools, sandboxes


def test_pool_fills_and_a_matching_create_takes_a_member(mount):
    name = fresh_name("p")
    with_pool = Pool.create(name, root=mount, size=2, memory="96M", pids=64)
    try:
        assert name in pools(mount)
        assert "memory=100663296" in with_pool.spec and "pids=64" in with_pool.spec
        st = with_pool.status()
        assert st["ready"] == 2 and st["state"] == "ready"
        sname = fresh_name()
        with Sandbox.create(sname, root=mount, wait=False, memory="96M", pids=64) as sb:
            assert sb.status == "running"  # a claim: running when create returned
            assert sb.stats()["create_mode"] == "pool"
            assert sb.exec("hostname").stdout.strip() == sname
        assert with_pool.status()["hits"] == 1
        # Members are not sandboxes.
        assert not [n for n in sandboxes(mount) if n.startswith(".")]
        with_pool.wait_ready()
    finally:
        with_pool.remove()
    assert not with_pool.exists()


def test_pool_bad_input_raises_with_the_daemons_sentence(mount):
    p = Pool.create(fresh_name("p"), root=mount)
    try:
        with pytest.raises(SandboxError) as ei:
            p.size = 100000
        assert ei.value.errno == errno.EINVAL and "size" in ei.value.sentence
        with pytest.raises(SandboxError) as ei:
            p.spec = "memory=lots"
        assert ei.value.errno == errno.EINVAL and "memory=lots" in ei.value.sentence
        with pytest.raises(SandboxError) as ei:
            Pool.create(p.name, root=mount)
        assert ei.value.errno == errno.EEXIST
        assert p.size == 0
    finally:
        p.remove()
    with pytest.raises(SandboxError) as ei:
        Pool("nope-" + p.name, root=mount)
    assert ei.value.errno == errno.ENOENT


def _blob(layout, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + h, "size": len(data)}


def _oci_layout(layout, tag, run):
    """An OCI layout of one plain tar layer: the busybox image of the tests."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(os.path.join(IMAGES, "busybox"), arcname=".")
    layer = buf.getvalue()
    lb = _blob(layout, layer)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    cfg = {"architecture": arch, "os": "linux", "config": run,
           "rootfs": {"type": "layers", "diff_ids": [lb["digest"]]}}
    cb = _blob(layout, json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": dict(cb, mediaType="application/vnd.oci.image.config.v1+json"),
           "layers": [dict(lb, mediaType="application/vnd.oci.image.layer.v1.tar")]}
    mb = _blob(layout, json.dumps(man).encode())
    idx = {"schemaVersion": 2, "manifests": [dict(mb, mediaType=man["mediaType"], annotations={
        "org.opencontainers.image.ref.name": tag})]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(idx, f)


def test_import_an_oci_layout_run_in_it_and_remove(mount, tmp_path):
    layout = str(tmp_path / "layout")
    _oci_layout(layout, "v1", {"Env": ["PATH=/bin", "GREETING=from the image"], "WorkingDir": "/etc",
                               "Cmd": ["/bin/sh", "-c", "echo $GREETING"]})
    name = fresh_name("img")
    im = Image.import_(name, "oci:%s:v1" % layout, root=mount)
    assert im.status() == "ready" and name in images(mount)
    assert im.config()["source"] == "oci:%s:v1" % layout
    sname = fresh_name()
    sb = Sandbox.create(sname, root=mount, image=name, memory="96M")
    try:
        r = sb.exec("echo $GREETING in $(pwd)")
        assert r.stdout == "from the image in /etc\n" and r.exit_code == 0
        with pytest.raises(SandboxError) as ei:
            im.remove()
        assert ei.value.errno == errno.EBUSY and sname in ei.value.sentence
    finally:
        sb.remove()
    im.remove()
    assert name not in images(mount)


def test_a_failed_import_raises_its_sentence(mount, tmp_path):
    layout = str(tmp_path / "broken")
    _oci_layout(layout, "v1", {})
    # Corrupt the layer blob: its digest no longer matches.
    blobs = os.path.join(layout, "blobs", "sha256")
    biggest = max(os.listdir(blobs), key=lambda b: os.path.getsize(os.path.join(blobs, b)))
    with open(os.path.join(blobs, biggest), "r+b") as f:
        f.seek(600)
        f.write(b"XXXX")
    name = fresh_name("bad")
    with pytest.raises(SandboxError) as ei:
        Image.import_(name, "oci:%s" % layout, root=mount)
    assert ei.value.errno == errno.EIO and "sha256" in ei.value.sentence
