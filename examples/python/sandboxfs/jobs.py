"""Background jobs (`run`, `jobs/N/`) and their output streams."""

import errno
import os
import select
import threading
import time

from . import _io
from .errors import SandboxError

__all__ = ["Job", "Stream", "ExecResult"]

_POLL_IN = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def _deadline(timeout):
    return None if timeout is None else time.monotonic() + max(0.0, float(timeout))


def _remaining_ms(deadline):
    if deadline is None:
        return None
    return max(0, int((deadline - time.monotonic()) * 1000 + 0.999))


class Stream:
    """A job's stdout or stderr, read in order through one open file.

    Reads are offset reads of the job's output file: they never lose a byte
    (unless joblog= dropped it, which stderr then says) and a read at the end
    waits while the job runs. poll on it (fileno()) wakes when there is
    output past what this stream read, or when the job ends.
    """

    def __init__(self, job, name):
        self.job = job
        self.name = name
        self.path = os.path.join(job.path, name)
        self._fd = None
        self.pos = 0  # bytes read so far
        self.eof = False
        self._pending = b""  # for readline

    def fileno(self):
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise self.job._error(e, "open %s" % self.name) from None
        return self._fd

    def _wait_readable(self, deadline):
        if deadline is None:
            return True
        p = select.poll()
        p.register(self.fileno(), _POLL_IN)
        while True:
            try:
                return bool(p.poll(_remaining_ms(deadline)))
            except InterruptedError:
                continue

    def read(self, size=_io.CHUNK, timeout=None):
        """Up to size bytes: what is there, else waits for output; b"" at the end
        (the job is over and everything was read). timeout (seconds): raises
        TimeoutError when nothing came in that time."""
        if self._pending:
            out, self._pending = self._pending[:size], self._pending[size:]
            return out
        if self.eof:
            return b""
        fd = self.fileno()
        if not self._wait_readable(_deadline(timeout)):
            raise TimeoutError("no output on %s of job %s in %s s" % (self.name, self.job.id, timeout))
        try:
            data = os.read(fd, size)
        except OSError as e:
            raise self.job._error(e, "read %s" % self.name) from None
        if not data:
            self.eof = True
        self.pos += len(data)
        return data

    def read_all(self, timeout=None):
        """Everything up to the end of the job."""
        deadline = _deadline(timeout)
        parts = []
        while True:
            try:
                b = self.read(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self._pending = b"".join(parts) + self._pending
                raise
            if not b:
                return b"".join(parts)
            parts.append(b)

    def readline(self, timeout=None):
        """One line (with its newline), or the rest at the end; b"" when done."""
        deadline = _deadline(timeout)
        buf = self._pending
        self._pending = b""
        while b"\n" not in buf:
            try:
                b = self.read(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self._pending = buf
                raise
            if not b:
                return buf
            buf += b
        line, _, rest = buf.partition(b"\n")
        self._pending = rest
        return line + b"\n"

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ExecResult:
    """What exec returns: stdout, stderr (str, or bytes with text=False),
    exit_code (128+N when killed by signal N) and reason (exit signal oom)."""

    __slots__ = ("argv", "stdout", "stderr", "exit_code", "reason")

    def __init__(self, argv, stdout, stderr, exit_code, reason):
        self.argv = argv
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.reason = reason

    @property
    def ok(self):
        return self.exit_code == 0

    def __repr__(self):
        return "ExecResult(exit_code=%r, reason=%r, stdout=%r, stderr=%r)" % (
            self.exit_code, self.reason, self.stdout, self.stderr)


class Job:
    """A background job `jobs/N/` of a sandbox: its streams, stdin, status.

    stdout and stderr are Streams. write() feeds stdin, close_stdin() sends
    `eof`; wait() returns the exit code; kill() signals it; remove() forgets
    a finished job (its directory goes).
    """

    def __init__(self, sandbox, n):
        self.sandbox = sandbox
        self.id = int(n)
        self.path = os.path.join(sandbox.path, "jobs", str(self.id))
        self.stdout = Stream(self, "stdout")
        self.stderr = Stream(self, "stderr")
        self._stdin_fd = None
        self._lock = threading.Lock()

    def __repr__(self):
        return "Job(%s, %d)" % (self.sandbox.name, self.id)

    def _error(self, e, what):
        if e.errno == errno.ENOENT and not os.path.isdir(self.path):
            return SandboxError(e.errno, "job %d of sandbox '%s' is gone" % (self.id, self.sandbox.name),
                                self.sandbox.name)
        sentence = _io.sandbox_error(self.sandbox.path) or _io.generic(e.errno, what)
        return SandboxError(e.errno, sentence, self.sandbox.name)

    def _show(self, field):
        try:
            return _io.read_text(os.path.join(self.path, field)).strip()
        except OSError as e:
            raise self._error(e, "read %s of job %d" % (field, self.id)) from None

    @property
    def status(self):
        """running, exited or killed."""
        return self._show("status")

    @property
    def exit_code(self):
        """The exit code (128+N after signal N), or None while it runs."""
        if self.status == "running":
            return None
        return int(self._show("exit_code"))

    @property
    def reason(self):
        """exit, signal, oom or timeout once it ended; - while it runs."""
        return self._show("reason")

    @property
    def pid(self):
        return int(self._show("pid"))

    @property
    def cmd(self):
        return self._show("cmd")

    @property
    def done(self):
        return self.status != "running"

    # --- stdin ---

    def write(self, data):
        """Writes data (bytes or str) to the job's stdin. A job that does not
        read its stdin stalls the writer (flow control): write from a thread
        if the job may not read it all."""
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            if self._stdin_fd is None:
                try:
                    self._stdin_fd = os.open(os.path.join(self.path, "stdin"), os.O_WRONLY | os.O_CLOEXEC)
                except OSError as e:
                    raise self._error(e, "open stdin") from None
            fd = self._stdin_fd
        try:
            _io.write_all(fd, data)
        except OSError as e:
            raise self._error(e, "write stdin") from None

    def close_stdin(self):
        """The end of stdin (`eof` on the job's ctl): a reader of it sees EOF."""
        with self._lock:
            fd, self._stdin_fd = self._stdin_fd, None
        if fd is not None:
            os.close(fd)
        self.ctl("eof")

    def _feed(self, src):
        """stdin from bytes, str or a binary file, then eof; for a thread.
        Stops quietly when the job is gone or stopped reading (EPIPE)."""
        try:
            if isinstance(src, (bytes, bytearray, memoryview, str)):
                self.write(src)
            else:
                while True:
                    b = src.read(_io.CHUNK)
                    if not b:
                        break
                    self.write(b)
        except SandboxError:
            pass
        try:
            self.close_stdin()
        except SandboxError:
            pass

    # --- control ---

    def ctl(self, line):
        path = os.path.join(self.path, "ctl")
        _io.sandbox_call(self.sandbox.path, self.sandbox.name, lambda: _io.command(path, line),
                         "job %d: %s" % (self.id, line))

    def resize(self, cols, rows):
        """A terminal's job (run(tty=...)): its new size; the job gets SIGWINCH."""
        self.ctl("resize %dx%d" % (int(cols), int(rows)))

    def kill(self, signal=None):
        """Sends a signal (default TERM; a name like KILL or a number) to the
        job. SandboxError EBUSY when it already ended."""
        self.ctl("kill" if signal is None else "kill %s" % signal)

    def wait(self, timeout=None):
        """Waits until the job ends; returns its exit code. TimeoutError after
        timeout seconds. Polls a private handle of its stdout (which wakes on
        output and at the end), so the job's own streams keep their place."""
        deadline = _deadline(timeout)
        try:
            fd = os.open(os.path.join(self.path, "stdout"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise self._error(e, "open stdout") from None
        try:
            p = select.poll()
            p.register(fd, _POLL_IN)
            while True:
                if self.status != "running":
                    return self.exit_code
                ms = _remaining_ms(deadline)
                if ms == 0:
                    raise TimeoutError("job %d of %s still running after %s s" % (self.id, self.sandbox.name, timeout))
                try:
                    ready = p.poll(ms)
                except InterruptedError:
                    continue
                if ready:
                    # Output past what this handle read, or the end: reading
                    # it moves the handle on (a read here does not wait).
                    try:
                        if not os.read(fd, _io.CHUNK):
                            continue
                    except OSError as e:
                        raise self._error(e, "read stdout") from None
        finally:
            os.close(fd)

    def remove(self):
        """Forgets a finished job (rmdir): SandboxError EBUSY while it runs."""
        self.close()
        _io.sandbox_call(self.sandbox.path, self.sandbox.name, lambda: os.rmdir(self.path),
                         "rmdir job %d" % self.id)

    def close(self):
        """Closes the open files of this object (the job runs on)."""
        self.stdout.close()
        self.stderr.close()
        with self._lock:
            fd, self._stdin_fd = self._stdin_fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def drain(streams, deadline):
    """Reads the streams to their end, polling them together. Returns
    ({stream: bytes}, timed_out)."""
    bufs = {s: [] for s in streams}
    by_fd = {s.fileno(): s for s in streams if not s.eof}
    p = select.poll()
    for fd in by_fd:
        p.register(fd, _POLL_IN)
    while by_fd:
        ms = _remaining_ms(deadline)
        if ms == 0:
            return {s: b"".join(b) for s, b in bufs.items()}, True
        try:
            ready = p.poll(ms)
        except InterruptedError:
            continue
        for fd, _ in ready:
            s = by_fd.get(fd)
            if s is None:
                continue
            data = s.read()
            if data:
                bufs[s].append(data)
            else:
                p.unregister(fd)
                del by_fd[fd]
    return {s: b"".join(b) for s, b in bufs.items()}, False
