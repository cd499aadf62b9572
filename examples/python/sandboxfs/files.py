"""Files in and out of a sandbox, through the sandbox's own tools.

Never through `NAME/root`: a path through that link resolves the sandbox's
symlinks in the host's root (`x -> /etc/shadow` would read the host's). Here
paths resolve inside the sandbox, on both backends: data goes in on a job's
stdin (`cat >`, `tar -x`) and comes out of an `exec` session (`cat`, `tar
-c`), a pipe with flow control and no size bound. What comes out is the
sandbox's and is treated as hostile: a tree is unpacked by the host's tar in
a user namespace (no device nodes, no host owners; GNU tar refuses `..` and
does not write through links it just made), and setuid/setgid bits are
dropped, as `examples/sbx cp` does.
"""

import errno
import os
import stat
import subprocess

from . import _io
from .errors import SandboxError, errno_of_sentence

__all__ = ["Files"]


def _q(path):
    return _io._word(_io._str(path))


class Files:
    """sandbox.files: read, write, upload, download. `tar` names the tar
    inside the sandbox (default: tar from its PATH)."""

    def __init__(self, sandbox, tar="tar"):
        self.sandbox = sandbox
        self.tar = tar

    def _fail(self, what, stderr, code):
        msg = stderr.decode("utf-8", "replace").strip() if isinstance(stderr, bytes) else stderr.strip()
        last = msg.splitlines()[-1] if msg else ""
        sentence = "%s in sandbox %s: %s" % (what, self.sandbox.name, last or "exit code %d" % code)
        return SandboxError(errno_of_sentence(last) if last else errno.EIO, sentence, self.sandbox.name)

    def read(self, path):
        """The bytes of a file of the sandbox (its links resolve inside it)."""
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
        """Writes data (bytes or str) to a file of the sandbox, made or
        truncated (its directory must exist); mode: chmod to it after."""
        if isinstance(data, str):
            data = data.encode()
        line = "cat > %s" % _q(path)
        if mode is not None:
            line += " && chmod %o %s" % (mode, _q(path))
        r = self.sandbox.exec(line, stdin=bytes(data), text=False)
        if r.exit_code != 0:
            raise self._fail("write %s" % path, r.stderr, r.exit_code)

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
