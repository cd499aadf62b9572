"""Warm pools (ROOT/pools/NAME/) and images (ROOT/images/NAME/) of a mount."""

import errno
import json
import os
import time

from . import _io
from .errors import SandboxError

__all__ = ["Pool", "Image", "pools"]


def pools(root):
    """The names of the warm pools under root."""
    d = os.path.join(os.fspath(root), "pools")
    return sorted(e.name for e in os.scandir(d) if e.is_dir(follow_symlinks=False))


def _check(name, what):
    if not isinstance(name, str) or not name or name.startswith(".") or \
            any(c.isspace() or c in "\0/" for c in name):
        raise SandboxError(errno.EINVAL, "%s name %r is not valid" % (what, name), name)


class _Dir:
    """A directory of the mount whose files say what it is, with an `error`."""

    kind = ""

    def __init__(self, name, root):
        _check(name, self.kind)
        self.name = name
        self.root = os.fspath(root)
        self.path = os.path.join(self.root, self.kind + "s", name)

    def __repr__(self):
        return "%s(%r, root=%r)" % (type(self).__name__, self.name, self.root)

    def exists(self):
        return os.path.isdir(self.path)

    def _read(self, f):
        try:
            return _io.read_text(os.path.join(self.path, f))
        except OSError as e:
            raise SandboxError(e.errno, "%s %s: cannot read %s: %s" % (self.kind, self.name, f,
                                                                      os.strerror(e.errno)),
                               self.name) from None

    def error(self):
        return self._read("error").strip()

    def _write(self, f, line):
        """A write to one of its files; the sentence of a refusal is its `error`."""
        try:
            _io.write_line(os.path.join(self.path, f), line)
        except OSError as e:
            if e.errno is None:
                raise
            sentence = ""
            try:
                sentence = _io.read_text(os.path.join(self.path, "error")).strip()
            except OSError:
                pass
            raise SandboxError(e.errno, sentence or _io.generic(e.errno, "write %s" % f),
                               self.name) from None

    def remove(self):
        """rmdir: the daemon's sentence from ROOT/error when it refuses."""
        _io.top_call(self.root, lambda: os.rmdir(self.path), "rmdir %s" % self.path,
                     name=self.name)


class Pool(_Dir):
    """A warm pool `ROOT/pools/NAME/`: sandboxes of one spec made ahead; a
    create with the same options (Sandbox.create(name, **spec)) takes one and
    is running at once. Pool(name) attaches; Pool.create() makes one."""

    kind = "pool"

    def __init__(self, name, root="/sbx", *, _check_exists=True):
        super().__init__(name, root)
        if _check_exists and not self.exists():
            raise SandboxError(errno.ENOENT, "no pool '%s' in %s" % (name, self.root), name)

    @classmethod
    def create(cls, name, root="/sbx", *, size=0, wait=True, timeout=120.0, **spec):
        """mkdir pools/NAME, then its spec (the words of create: memory="128M",
        pids=64...) and size; with wait, returns once `size` members are ready."""
        from .client import _spec_word
        p = cls(name, root, _check_exists=False)
        _io.top_call(p.root, lambda: os.mkdir(p.path), "mkdir %s" % p.path, name=name)
        try:
            if spec:
                p.spec = " ".join(_spec_word(k, v) for k, v in spec.items())
            if size:
                p.size = size
                if wait:
                    p.wait_ready(timeout)
        except BaseException:
            try:
                p.remove()
            except SandboxError:
                pass
            raise
        return p

    @property
    def spec(self):
        """Every option of its members, in the daemon's canonical words."""
        return self._read("spec").strip()

    @spec.setter
    def spec(self, words):
        self._write("spec", words)

    @property
    def size(self):
        return int(self._read("size"))

    @size.setter
    def size(self, n):
        self._write("size", str(int(n)))

    def status(self):
        """state (ready filling stalled), size, ready, filling, hits, misses, made..."""
        return _io.parse_keyed(self._read("status"))

    def wait_ready(self, timeout=120.0):
        """Until `ready` = `size` and nothing is filling; SandboxError EIO
        (with its error) when the pool stalls, TimeoutError past timeout."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st.get("state") == "stalled":
                raise SandboxError(errno.EIO, "pool %s stalled: %s" % (self.name, self.error()),
                                   self.name)
            if st.get("ready") == st.get("size") and st.get("filling") == 0:
                return st
            if time.monotonic() > deadline:
                raise TimeoutError("pool %s: %s of %s ready after %s s" % (
                    self.name, st.get("ready"), st.get("size"), timeout))
            time.sleep(0.02)


class Image(_Dir):
    """An image `ROOT/images/NAME/`: a directory of --images, or one imported
    from an OCI layout (`Image.import_(name, "oci:DIR[:TAG]")`,
    `oci-archive:FILE[:TAG]`) or a docker save tar
    (`docker-archive:FILE[:NAME[:TAG]]`)."""

    kind = "image"

    def __init__(self, name, root="/sbx", *, _check_exists=True):
        super().__init__(name, root)
        if _check_exists and not self.exists():
            raise SandboxError(errno.ENOENT, "no image '%s' in %s" % (name, self.root), name)

    @classmethod
    def import_(cls, name, source, root="/sbx", *, wait=True, timeout=600.0):
        """`import NAME SOURCE` on images/ctl; with wait, returns once ready,
        raising SandboxError (EIO, the import's sentence) when it failed."""
        im = cls(name, root, _check_exists=False)
        if any(c.isspace() or c == "\0" for c in os.fspath(source)):
            raise SandboxError(errno.EINVAL, "source %r has a blank" % (source,), name)
        ctl = os.path.join(im.root, "images", "ctl")
        _io.top_call(im.root, lambda: _io.command(ctl, "import %s %s" % (name, source)),
                     "import %s" % name, name=name)
        if wait:
            im.wait(timeout)
        return im

    def status(self):
        """importing, ready or failed."""
        return self._read("status").strip()

    def progress(self):
        return _io.parse_keyed(self._read("progress"))

    def config(self):
        return json.loads(self._read("config"))

    def wait(self, timeout=600.0):
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st == "ready":
                return self
            if st == "failed":
                raise SandboxError(errno.EIO, "import of %s failed: %s" % (self.name, self.error()),
                                   self.name)
            if time.monotonic() > deadline:
                raise TimeoutError("image %s still %s after %s s" % (self.name, st, timeout))
            time.sleep(0.05)
