"""Files in and out of a sandbox, never through `NAME/root`.

A path through that link resolves the sandbox's symlinks in the host's root
(`x -> /etc/shadow` would read the host's). A single file moves through
`NAME/files`: on `ns` the daemon resolves the path inside the sandbox's root
(openat2 RESOLVE_IN_ROOT), on `qemu` the guest agent does in the guest's;
either reads regular files only, and a write appears whole or not at all;
`stat`, `list` and `mkdir` are answered the same way. On a VM whose guest
agent is of before files (EOPNOTSUPP), and for trees, paths resolve inside
the sandbox through its own tools: data goes in on a job's stdin (`cat >`, `tar -x`) and comes out of an
`exec` session (`cat`, `tar -c`), a pipe with flow control and no size
bound. What comes out is the sandbox's and is treated as hostile: a tree is
unpacked by the host's tar in a user namespace (no device nodes, no host
owners; GNU tar refuses `..` and does not write through links it just
made), and setuid/setgid bits are dropped, as `examples/sbx cp` does.
"""
import errno
import os
import posixpath
import re
import stat
import subprocess

from . import _io
from .errors import SandboxError, errno_of_sentence

__all__ = ["Files", "Entry"]


def _q(path):
    return _io._word(_io._str(path))


def _fpath(path):
    """A path as a NAME/files request writes it: absolute, its control
    bytes and backslashes as \\xHH (as list writes names)."""
    raw = os.fsencode(posixpath.join("/", _io._str(path)))
    if b"\0" in raw:
        raise ValueError("a path has no NUL byte")
    return b"".join(b"\\x%02x" % c if c < 0x20 or c == 0x7f or c == 0x5c else bytes([c]) for c in raw)


def _unescape(name):
    return os.fsdecode(re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), name))


class Entry(tuple):
    """One line of a directory's list: type (f d l c b p s), mode, size,
    mtime (seconds), name."""
    __slots__ = ()
    _fields = ("type", "mode", "size", "mtime", "name")

    def __new__(cls, line):
        t, mode, size, mtime, name = line.split(b" ", 4)
        return tuple.__new__(cls, (t.decode(), int(mode, 8), int(size), int(mtime), _unescape(name)))

    type = property(lambda self: self[0])
    mode = property(lambda self: self[1])
    size = property(lambda self: self[2])
    mtime = property(lambda self: self[3])
    name = property(lambda self: self[4])


class Files:
    """sandbox.files: read, write, upload, download. `tar` names the tar
    inside the sandbox (default: tar from its PATH)."""

    def __init__(self, sandbox, tar="tar"):
        self.sandbox = sandbox
        self.tar = tar
        self._ns = None

    def _fail(self, what, stderr, code):
        msg = stderr.decode("utf-8", "replace").strip() if isinstance(stderr, bytes) else stderr.strip()
        last = msg.splitlines()[-1] if msg else ""
        sentence = "%s in sandbox %s: %s" % (what, self.sandbox.name, last or "exit code %d" % code)
        return SandboxError(errno_of_sentence(last) if last else errno.EIO, sentence, self.sandbox.name)

    def _daemon(self):
        """Whether single files go through NAME/files: an ns sandbox, or a
        VM whose guest agent serves them (one of before says EOPNOTSUPP)."""
        if self._ns is None:
            self._ns = os.path.exists(self.sandbox._file("files"))
            if self._ns and self.sandbox.config().get("backend") != "ns":
                try:
                    self._answer("stat", "/")
                except SandboxError as e:
                    self._ns = e.errno != errno.EOPNOTSUPP
        return self._ns

    def _request(self, line, path, data=None):
        """One request on NAME/files (and a put's data); returns the open
        handle to read the answer from. A refused write raises the sentence
        the same handle gives back."""
        fd = os.open(self.sandbox._file("files"), os.O_RDWR | os.O_CLOEXEC)
        head = line.encode() + b" " + _fpath(path) + b"\n"
        try:
            _io.sandbox_call(self.sandbox.path, self.sandbox.name,
                             lambda: (_io.send(fd, head), data and _io.send(fd, data)), line)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _answer(self, line, path):
        fd = self._request(line, path)
        try:
            return _io.read_fd(fd)
        except OSError as e:
            raise SandboxError(e.errno, "%s %s: %s" % (line, path, os.strerror(e.errno)),
                               self.sandbox.name) from None
        finally:
            os.close(fd)

    def stat(self, path):
        """What path is (its last name itself: a link is shown with its
        target), as a dict: type, mode, size, uid, gid, nlink, mtime[, target]."""
        out = {}
        for line in self._answer("stat", path).splitlines():
            key, _, value = line.partition(b" ")
            out[key.decode()] = _unescape(value) if key == b"target" else \
                int(value, 8) if key == b"mode" else _io.number(value.decode())
        return out

    def list(self, path):
        """The entries of a directory, as Entry tuples (no . and ..)."""
        return [Entry(line) for line in self._answer("list", path).splitlines()]

    def mkdir(self, path, mode=0o755):
        """Makes a directory (its parent must exist)."""
        os.close(self._request("mkdir mode=%o" % mode, path))

    def read(self, path):
        """The bytes of a file of the sandbox (its links resolve inside it;
        through NAME/files, a regular file only)."""
        if self._daemon():
            return self._answer("get", path)
        parts = []
        code = self.sandbox.exec_session("cat -- %s 2>/dev/null" % _q(path), parts.append)
        if code != 0:
            # Why: the same again with its stderr apart (a job), nothing read.
            r = self.sandbox.exec("cat -- %s >/dev/null" % _q(path), text=False, timeout=60)
            raise self._fail("read %s" % path, r.stderr, code)
        return b"".join(parts)

    def read_text(self, path, encoding="utf-8"):
        return self.read(path).decode(encoding)

    def write(self, path, data, mode=None):
        """Writes data (bytes or str) to a file of the sandbox (its
        directory must exist). Through NAME/files the file is replaced whole (a link
        there is replaced, not followed), mode 0644 unless mode says;
        elsewhere it is made or truncated, then chmod to mode if given."""
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        if self._daemon():
            line = "put size=%d mode=%o" % (len(data), 0o644 if mode is None else mode)
            os.close(self._request(line, path, data))
            return
        line = "cat > %s" % _q(path)
        if mode is not None:
            line += " && chmod %o %s" % (mode, _q(path))
        r = self.sandbox.exec(line, stdin=data, text=False)
        if r.exit_code != 0:
            raise self._fail("write %s" % path, r.stderr, r.exit_code)

    def _is(self, path, kind):
        """Whether path is of type kind (f, d...) for NAME/files."""
        try:
            return self._daemon() and self.stat(path).get("type") == kind
        except (SandboxError, ValueError):
            return False

    def upload(self, host_path, dir):
        """Copies a host file or tree into dir of the sandbox (made if
        missing), as dir/BASENAME; links are copied as links. Returns that
        path inside the sandbox."""
        host_path = os.path.abspath(os.fspath(host_path))
        if not os.path.lexists(host_path):
            raise SandboxError(errno.ENOENT, "%s: no such file or directory on the host" % host_path,
                               self.sandbox.name)
        parent, base = os.path.split(host_path.rstrip("/") or "/")
        d = _io._str(dir)
        st = os.lstat(host_path)
        if stat.S_ISREG(st.st_mode) and self._is(d, "d"):  # one file: NAME/files
            with open(host_path, "rb") as f:
                self.write(d.rstrip("/") + "/" + base, f.read(), stat.S_IMODE(st.st_mode))
            return d.rstrip("/") + "/" + base
        job = self.sandbox.run("mkdir -p -- %s && %s -x -f - -C %s" % (_q(d), self.tar, _q(d)))
        try:
            tar = subprocess.Popen(["tar", "-c", "-f", "-", "-C", parent or "/", "--", base],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            stalled = None
            try:
                while True:
                    b = tar.stdout.read1(_io.CHUNK)
                    if not b:
                        break
                    try:
                        job.write(b)
                    except SandboxError as e:  # the sandbox's tar stopped reading
                        stalled = e
                        break
            finally:
                tar.stdout.close()
                tar_err = tar.stderr.read()
                tar.stderr.close()
                tar_code = tar.wait()
            try:
                job.close_stdin()
            except SandboxError:
                pass
            code = job.wait()
            if code != 0:
                raise self._fail("upload %s to %s" % (host_path, d), job.stderr.read_all(), code)
            if tar_code != 0 and stalled is None:
                raise SandboxError(errno.EIO, "tar of %s on the host failed (exit %d): %s"
                                   % (host_path, tar_code, tar_err.decode("utf-8", "replace").strip()),
                                   self.sandbox.name)
            if stalled is not None:
                raise stalled
        finally:
            if job.status == "running":
                try:
                    job.kill("KILL")
                    job.wait(30)
                except (SandboxError, TimeoutError):
                    pass
            try:
                job.remove()
            except SandboxError:
                pass
        return d.rstrip("/") + "/" + base

    def download(self, path, host_dir):
        """Copies a file or tree of the sandbox into host_dir (made if
        missing), as host_dir/BASENAME; links come out as links. Returns
        that host path. The stream is unpacked as hostile input (see the
        module's doc)."""
        p = _io._str(path).rstrip("/") or "/"
        parent, base = os.path.split(p)
        if not base:
            raise ValueError("download of / is not supported: name a directory")
        host_dir = os.path.abspath(os.fspath(host_dir))
        os.makedirs(host_dir, exist_ok=True)
        if self._is(p, "f"):  # one regular file: NAME/files, setuid and setgid dropped
            mode = self.stat(p)["mode"] & 0o777
            out = os.path.join(host_dir, base)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
            try:
                _io.write_all(fd, self.read(p))
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            return out
        line = "%s -c -f - -C %s -- %s 2>/dev/null" % (self.tar, _q(parent or "/"), _q(base))
        untar = subprocess.Popen(["unshare", "--user", "--map-root-user", "tar", "-x", "-f", "-",
                                  "--no-same-owner", "--no-same-permissions", "-C", host_dir],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        state = {"open": True}

        def sink(b):
            # Read the stream to its end wherever the host's tar stops.
            if state["open"]:
                try:
                    untar.stdin.write(b)
                except (BrokenPipeError, OSError):
                    state["open"] = False

        try:
            code = self.sandbox.exec_session(line, sink)
        finally:
            try:
                untar.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            err = untar.stderr.read()
            untar.stderr.close()
            ucode = untar.wait()
            _drop_setid(host_dir)
        if code != 0:
            r = self.sandbox.exec("%s -c -f - -C %s -- %s >/dev/null" % (self.tar, _q(parent or "/"), _q(base)),
                                  text=False, timeout=60)
            raise self._fail("download %s" % p, r.stderr, code)
        if ucode != 0:
            raise SandboxError(errno.EIO, "unpacking the stream of %s from %s failed: %s"
                               % (p, self.sandbox.name, err.decode("utf-8", "replace").strip()),
                               self.sandbox.name)
        return os.path.join(host_dir, base)


def _drop_setid(top):
    """chmod ug-s on every regular file under top (links not followed, one
    file system), as `sbx cp` does after unpacking."""
    dev = os.lstat(top).st_dev
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if os.lstat(os.path.join(d, x)).st_dev == dev]
        for f in files:
            fp = os.path.join(d, f)
            st = os.lstat(fp)
            if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(fp, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
