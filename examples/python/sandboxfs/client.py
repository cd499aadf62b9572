"""Sandbox: one sandbox of a sandboxfs mount, driven through its files."""

import errno
import json
import os
import select
import threading

from . import _io
from .errors import ExecTimeout, SandboxError, SandboxStateError
from .files import Files
from .jobs import ExecResult, Job, drain, _deadline, _remaining_ms

__all__ = ["Sandbox", "Snapshot", "DEFAULT_ROOT", "sandboxes", "images", "remove", "root_stats"]

DEFAULT_ROOT = "/sbx"
STATES = ("creating", "running", "paused", "standby", "stopped", "failed")
# How long a killed exec's job may take to end before exec gives up on it.
KILL_GRACE = 30.0


def sandboxes(root=DEFAULT_ROOT):
    """The names of the sandboxes under root (pools/ and images/ are not ones)."""
    return sorted(e.name for e in os.scandir(root)
                  if e.is_dir(follow_symlinks=False) and e.name not in ("pools", "images"))


def images(root=DEFAULT_ROOT):
    """The images under root/images/ (the ready ones are what `create` accepts)."""
    d = os.path.join(root, "images")
    return sorted(e.name for e in os.scandir(d) if e.is_dir(follow_symlinks=False))


def root_stats(root=DEFAULT_ROOT):
    """The top-level `stats` as a dict (numbers where numeric)."""
    return _io.parse_keyed(_io.read_text(os.path.join(root, "stats")))


def remove(names, root=DEFAULT_ROOT):
    """Removes the sandboxes named (names or Sandbox objects) at once:
    `remove NAME...` on root/ctl, 31 names a write, each write from a thread
    of its own, and the daemon runs each write's removals at once (rmdirs of
    one directory would go one after another). Returns when every one has
    ended; if any could not be removed, raises SandboxError with the errno
    and sentence of the first write that failed (the others named are
    removed all the same)."""
    names = [n.name if isinstance(n, Sandbox) else n for n in names]
    for n in names:
        _check_name(n)
    batches = [names[i:i + 31] for i in range(0, len(names), 31)]
    errors = []

    def one(batch):
        try:
            _io.top_call(root, lambda: _io.command(os.path.join(root, "ctl"),
                                                   "remove " + " ".join(batch)),
                         "remove %s" % batch[0], prefix="ctl: remove")
        except SandboxError as e:
            errors.append(e)
    threads = [threading.Thread(target=one, args=(b,)) for b in batches[1:]]
    for t in threads:
        t.start()
    if batches:
        one(batches[0])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _spec_word(key, value):
    if not isinstance(key, str) or not key or not all(c.isalnum() or c == "_" for c in key):
        raise SandboxError(errno.EINVAL, "bad create key %r" % (key,))
    if isinstance(value, bool):
        value = "on" if value else "off"
    value = str(value)
    if not value or any(c.isspace() or c == "\0" for c in value):
        raise SandboxError(errno.EINVAL, "bad value %r for %s=" % (value, key))
    return "%s=%s" % (key, value)


def _check_name(name):
    """What would break the line or the path; the daemon checks the rest."""
    if not isinstance(name, str) or not name or any(c.isspace() or c in "\0/" for c in name):
        raise SandboxError(errno.EINVAL, "sandbox name %r has a character outside [A-Za-z0-9_.-]" % (name,), name)
    if name.startswith("."):
        raise SandboxError(errno.EINVAL, "sandbox name '%s' starts with a dot" % name, name)


class Sandbox:
    """A sandbox `ROOT/NAME/`. Sandbox(name) attaches to an existing one
    (SandboxError ENOENT if there is none); Sandbox.create() makes one.

    As a context manager it removes the sandbox at the end when this client
    made it (create, fork), and the children it forked that are still owned;
    set `.owned` to change that.
    """

    def __init__(self, name, root=DEFAULT_ROOT, *, _check=True):
        self.name = name
        self.root = os.fspath(root)
        self.path = os.path.join(self.root, name)
        self.owned = False
        self.forked = []  # the children fork() made through this object
        self.files = Files(self)
        if _check:
            _check_name(name)
            if not os.path.isdir(self.path):
                raise SandboxError(errno.ENOENT, "no sandbox '%s' in %s" % (name, self.root), name)

    def __repr__(self):
        return "Sandbox(%r, root=%r)" % (self.name, self.root)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        todo = [c for c in self.forked if c.owned] + ([self] if self.owned else [])
        for sb in todo:
            if sb.exists():
                try:
                    sb.remove()
                except SandboxError:
                    if exc[0] is None:
                        raise
        return False

    # --- creation -----------------------------------------------------------

    @classmethod
    def create(cls, name, root=DEFAULT_ROOT, *, wait=True, wait_timeout=120.0, **spec):
        """Creates a sandbox: `create NAME key=value...` on ROOT/ctl.

        spec: the words of `create` (image, backend, memory, cpus, pids, net,
        rate, timeout, joblog); True/False become on/off. With wait (the
        default) returns once it is running, raising SandboxStateError if it
        fails (with its sentence) and TimeoutError after wait_timeout s.
        """
        _check_name(name)
        words = ["create", name] + [_spec_word(k, v) for k, v in spec.items()]
        root = os.fspath(root)
        ctl = os.path.join(root, "ctl")
        _io.top_call(root, lambda: _io.command(ctl, " ".join(words)), "create %s" % name,
                     name=name, prefix="ctl:")
        sb = cls(name, root, _check=False)
        sb.owned = True
        if wait:
            sb.wait("running", wait_timeout)
        return sb

    def exists(self):
        return os.path.isdir(self.path)

    # --- state --------------------------------------------------------------

    def _file(self, name):
        return os.path.join(self.path, name)

    def _read(self, name):
        try:
            return _io.read_text(self._file(name))
        except OSError as e:
            if e.errno == errno.ENOENT and not self.exists():
                raise SandboxError(e.errno, "no sandbox '%s' in %s" % (self.name, self.root), self.name) from None
            raise SandboxError(e.errno, _io.generic(e.errno, "read %s of %s" % (name, self.name)), self.name) from None

    @property
    def status(self):
        """One word: creating running paused standby stopped failed."""
        return self._read("status").strip()

    def events(self):
        """state, reason, exit_code, oom_kills, generation."""
        return _io.parse_keyed(self._read("events"))

    def stats(self):
        """The sandbox's `stats` as a dict: ints where numeric, else strings."""
        return _io.parse_keyed(self._read("stats"))

    def config(self):
        return json.loads(self._read("config"))

    def error(self):
        """The sandbox's last error sentence ("" if none)."""
        return self._read("error").strip()

    def log(self):
        return self._read("log")

    def net(self):
        return _io.parse_keyed(self._read("net"))

    def wait(self, state="running", timeout=60.0):
        """Waits until the sandbox is in state (a word, or several in a tuple
        or separated by |); returns what `events` shows then.

        Built on poll(POLLPRI) on `events`, lseek(0) and a read, the current
        state looked at first (no race with a change before the call).
        `failed` and `stopped` are final unless asked for: reaching one
        raises SandboxStateError with the sandbox's sentence. TimeoutError
        after timeout seconds (None: no limit); SandboxError ENOENT if the
        sandbox is removed meanwhile.
        """
        want = set(state.split("|")) if isinstance(state, str) else set(state)
        bad = want - set(STATES)
        if bad:
            raise ValueError("unknown state(s) %s (one of %s)" % (", ".join(sorted(bad)), " ".join(STATES)))
        deadline = _deadline(timeout)
        try:
            fd = os.open(self._file("events"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise SandboxError(e.errno, "no sandbox '%s' in %s" % (self.name, self.root), self.name) from None
            raise
        try:
            p = select.poll()
            p.register(fd, select.POLLPRI)
            gone = False
            while True:
                os.lseek(fd, 0, os.SEEK_SET)
                ev = _io.parse_keyed(_io.read_fd(fd).decode("utf-8", "replace"))
                st = ev.get("state")
                if st in want:
                    return ev
                if st in ("failed", "stopped"):
                    self._raise_final(st, ev, want)
                if gone or not self.exists():
                    raise SandboxError(errno.ENOENT, "sandbox '%s' was removed while waiting for it to be %s"
                                       % (self.name, "|".join(sorted(want))), self.name)
                ms = _remaining_ms(deadline)
                if ms == 0:
                    raise TimeoutError("sandbox %s is %s, not %s, after %s s"
                                       % (self.name, st, "|".join(sorted(want)), timeout))
                try:
                    for _, rev in p.poll(ms):
                        if rev & (select.POLLERR | select.POLLNVAL | select.POLLHUP):
                            gone = True  # the sandbox went: one more look at what it was
                except InterruptedError:
                    pass
        finally:
            os.close(fd)

    def _raise_final(self, st, ev, want):
        err = ""
        try:
            err = self.error()
        except SandboxError:
            pass
        what = "|".join(sorted(want))
        if st == "failed":
            sentence = err or "sandbox %s failed" % self.name
            raise SandboxStateError(errno.EIO, sentence, self.name, st, ev)
        sentence = "sandbox %s is stopped (reason %s, exit_code %s), not %s" % (
            self.name, ev.get("reason"), ev.get("exit_code"), what)
        if err:
            sentence += "; its last error: %s" % err
        raise SandboxStateError(errno.EBUSY, sentence, self.name, st, ev)

    # --- control ------------------------------------------------------------

    def ctl(self, line):
        """Writes one command to the sandbox's ctl; SandboxError (errno and the
        sandbox's error sentence) if it fails."""
        path = self._file("ctl")
        _io.sandbox_call(self.path, self.name, lambda: _io.command(path, line), line.split(" ", 1)[0])

    def stop(self, seconds=None):
        """SIGTERM, SIGKILL after seconds (default 10); returns when stopped."""
        self.ctl("stop" if seconds is None else "stop %d" % seconds)

    def start(self, wait=True, timeout=60.0):
        self.ctl("start")
        if wait:
            self.wait("running", timeout)

    def kill(self, signal=None):
        self.ctl("kill" if signal is None else "kill %s" % signal)

    def pause(self):
        self.ctl("pause")

    def resume(self):
        self.ctl("resume")

    def extend(self, seconds):
        self.ctl("extend %d" % seconds)

    def remove(self):
        """rmdir: stops it if needed and removes every trace."""
        _io.top_call(self.root, lambda: os.rmdir(self.path), "rmdir %s" % self.name,
                     name=self.name, prefix="rmdir '")

    # --- jobs and exec ------------------------------------------------------

    def _start_job(self, line):
        path = self._file("run")

        def start():
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                os.write(fd, line.encode() + b"\n")
                return int(os.read(fd, 64).decode().strip())
            finally:
                os.close(fd)

        n = _io.sandbox_call(self.path, self.name, start, "run")
        return Job(self, n)

    def run(self, cmd, env=None, cwd=None, tty=None):
        """Starts a background job (argv list or shell line; env and cwd as
        for exec) and returns its Job: stdout and stderr streams, write() and
        close_stdin() for its stdin, wait(), kill(), remove().
        Its stdin stays open until close_stdin().

        tty: a terminal for it, as (columns, rows) or True (80x24): its
        stdout is what the terminal shows (stderr with it), write() types,
        b"\\x03" is ^C, close_stdin() sends ^D, Job.resize() resizes."""
        return self._start_job(_io.command_line(cmd, env, cwd, tty=tty))

    def job(self, n):
        return Job(self, n)

    def jobs(self):
        d = self._file("jobs")
        try:
            return [Job(self, n) for n in sorted(int(x) for x in os.listdir(d))]
        except OSError as e:
            raise SandboxError(e.errno, _io.generic(e.errno, "list jobs of %s" % self.name), self.name) from None

    def exec(self, cmd, env=None, cwd=None, stdin=None, timeout=None, text=True, check=False):
        """Runs a command to its end and returns an ExecResult (stdout, stderr,
        exit_code, reason).

        cmd: an argv list (quoted word by word) or a shell line. env: a dict
        of variables (env= options). cwd: the directory it runs in (cwd=).
        stdin: bytes, str or a binary file (otherwise the command's stdin is
        empty). timeout: seconds (timeout=), after which the daemon kills
        the job's process group (SIGKILL) and ExecTimeout (a TimeoutError,
        with the output so far) is raised.
        text: decode stdout and stderr as UTF-8 (else bytes). check: raise
        SandboxError if the exit code is not 0.

        It runs as a background job (separate stdout and stderr, a stdin),
        whose directory is removed once read. Output is bounded by the
        sandbox's joblog= (16M per stream by default).
        """
        argv = cmd
        job = self._start_job(_io.command_line(cmd, env, cwd, timeout=timeout))
        feeder = None
        timed_out = False
        try:
            if stdin is None:
                job.close_stdin()
            else:
                feeder = threading.Thread(target=job._feed, args=(stdin,), daemon=True,
                                          name="sandboxfs-stdin-%s-%d" % (self.name, job.id))
                feeder.start()
            # The daemon kills it at timeout; the client only if that never came.
            out, timed_out = drain([job.stdout, job.stderr],
                                   _deadline(None if timeout is None else max(0.0, float(timeout)) + KILL_GRACE))
            if timed_out:
                try:
                    job.kill("KILL")
                except SandboxError as e:
                    if e.errno != errno.EBUSY:  # EBUSY: it ended meanwhile
                        raise
                rest, late = drain([job.stdout, job.stderr], _deadline(KILL_GRACE))
                out = {s: out[s] + rest[s] for s in out}
                if late:
                    raise SandboxError(errno.ETIMEDOUT, "job %d of %s did not end %s s after SIGKILL"
                                       % (job.id, self.name, KILL_GRACE), self.name)
            code = job.exit_code
            reason = job.reason
            timed_out = timed_out or reason == "timeout"
        finally:
            if feeder is not None:
                feeder.join(5.0)
            job.close()
            try:
                job.remove()
            except SandboxError:
                pass
        so, se = out[job.stdout], out[job.stderr]
        if text:
            so, se = so.decode("utf-8", "replace"), se.decode("utf-8", "replace")
        if timed_out:
            raise ExecTimeout("%s: killed after %s s in sandbox %s" % (_show(argv), timeout, self.name),
                              so, se, timeout)
        res = ExecResult(argv, so, se, code, reason)
        if check and code != 0:
            msg = se.strip() if text else se.decode("utf-8", "replace").strip()
            raise SandboxError(errno.EIO, "%s exited %d in %s%s" % (_show(argv), code, self.name,
                                                                    ": " + msg[-500:] if msg else ""), self.name)
        return res

    def exec_session(self, line, sink):
        """The `exec` file: runs one shell line; sink(bytes) gets its output
        (stdout and stderr together) as it streams, through a pipe with flow
        control and no size bound. Returns the exit code."""
        path = self._file("exec")

        def go():
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            try:
                os.write(fd, line.encode() + b"\n")
                while True:
                    b = os.read(fd, _io.CHUNK)
                    if not b:
                        break
                    sink(b)
                return _io.read_fd(fd).decode()
            finally:
                os.close(fd)

        status = _io.sandbox_call(self.path, self.name, go, "exec")
        word, _, code = status.strip().partition(" ")
        if word != "exit_code" or not code.lstrip("-").isdigit():
            raise SandboxError(errno.EIO, "exec in %s ended without its exit code (%r)" % (self.name, status),
                               self.name)
        return int(code)

    # --- fork and snapshots -------------------------------------------------

    def _free_names(self, n):
        base = self.name[:56]
        names, k = [], 1
        while len(names) < n:
            cand = "%s-%d" % (base, k)
            if not os.path.lexists(os.path.join(self.root, cand)):
                names.append(cand)
            k += 1
        return names

    def fork(self, n_or_names, from_snapshot=None, wait=True, wait_timeout=120.0):
        """Forks the sandbox: n children named NAME-1, NAME-2... (free names),
        or the names given. from_snapshot: start from that snapshot. Returns
        the children as Sandboxes (owned: a `with` removes them), running
        when wait is set. A bad or taken name creates none (SandboxError)."""
        if isinstance(n_or_names, int):
            if n_or_names < 1:
                raise ValueError("fork needs at least one child")
            names = self._free_names(n_or_names)
        else:
            names = [n_or_names] if isinstance(n_or_names, str) else list(n_or_names)
            if not names:
                raise ValueError("fork needs at least one child")
            for nm in names:
                _check_name(nm)
        line = "fork " + " ".join(names)
        if from_snapshot is not None:
            snap = from_snapshot.name if isinstance(from_snapshot, Snapshot) else from_snapshot
            _check_name(snap)
            line += " from=%s" % snap
        self.ctl(line)
        kids = []
        for nm in names:
            c = Sandbox(nm, self.root, _check=False)
            c.owned = True
            kids.append(c)
        self.forked.extend(kids)
        if wait:
            for c in kids:
                c.wait("running", wait_timeout)
        return kids

    def snapshot(self, name):
        """Takes a named checkpoint (mkdir snapshots/NAME); returns a Snapshot."""
        _check_name(name)
        path = os.path.join(self.path, "snapshots", name)
        if os.path.lexists(path):
            raise SandboxError(errno.EEXIST, "sandbox %s already has a snapshot '%s'" % (self.name, name), self.name)
        _io.sandbox_call(self.path, self.name, lambda: os.mkdir(path), "snapshot %s" % name)
        return Snapshot(self, name)

    def snapshots(self):
        return [Snapshot(self, n) for n in sorted(os.listdir(self._file("snapshots")))]


def _show(argv):
    s = argv if isinstance(argv, str) else " ".join(str(a) for a in argv)
    return s if len(s) <= 80 else s[:77] + "..."


class Snapshot:
    """A named checkpoint `NAME/snapshots/S/` of a sandbox."""

    def __init__(self, sandbox, name):
        self.sandbox = sandbox
        self.name = name
        self.path = os.path.join(sandbox.path, "snapshots", name)

    def __repr__(self):
        return "Snapshot(%s, %r)" % (self.sandbox.name, self.name)

    def fork(self, n_or_names, wait=True, wait_timeout=120.0):
        return self.sandbox.fork(n_or_names, from_snapshot=self.name, wait=wait, wait_timeout=wait_timeout)

    def remove(self):
        """rmdir: children that use it keep working (layers are counted)."""
        _io.sandbox_call(self.sandbox.path, self.sandbox.name, lambda: os.rmdir(self.path),
                         "remove snapshot %s" % self.name)
