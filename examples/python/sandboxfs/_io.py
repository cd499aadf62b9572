"""Low-level helpers over the sandboxfs files: reads, ctl writes with their
sentence, `key value` parsing, shell quoting."""

import errno
import math
import os
import posixpath
import re
import shlex

from .errors import SandboxError

CHUNK = 1 << 20


def read_bytes(path):
    """All of a file (sandboxfs files are made once per open)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_fd(fd)
    finally:
        os.close(fd)


def read_fd(fd):
    parts = []
    while True:
        b = os.read(fd, CHUNK)
        if not b:
            return b"".join(parts)
        parts.append(b)


def read_text(path):
    return read_bytes(path).decode("utf-8", "replace")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def number(v):
    """int where the value is an integer, float where it is a decimal, else the string."""
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if re.fullmatch(r"-?\d+\.\d*(?:[eE][-+]?\d+)?", v):
        return float(v)
    return v


def parse_keyed(text):
    """`key value` lines (stats, events, net) as a dict; values numbers where numeric."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        out[key] = number(value.strip())
    return out


# --- errors -----------------------------------------------------------------

def error_lines(root):
    """The lines of ROOT/error (shared by every client of the mount)."""
    try:
        return read_text(os.path.join(root, "error")).splitlines()
    except OSError:
        return []


def new_lines(before, after):
    """The lines of `after` that `before` did not have. The file is a ring of
    the last 64 lines: after is before less some first lines, plus the new."""
    for m in range(len(before) + 1):
        k = len(before) - m
        if after[:k] == before[m:]:
            return after[k:]
    return after


def pick_line(lines, name=None, prefix=None):
    """The most recent relevant line: one that names the sandbox, else one
    with the prefix of the operation (`ctl:`, `mkdir '`), else the last."""
    if name:
        pat = re.compile(r"(?<![A-Za-z0-9_.-])%s(?![A-Za-z0-9_.-])" % re.escape(name))
        for line in reversed(lines):
            if pat.search(line):
                return line
    if prefix:
        for line in reversed(lines):
            if line.startswith(prefix):
                return line
    return lines[-1] if lines else None


def generic(err, what):
    return "%s: %s" % (what, os.strerror(err))


def top_call(root, fn, what, name=None, prefix=None):
    """Runs fn() (a write to ROOT/ctl, a mkdir or rmdir in ROOT); an OSError
    becomes a SandboxError with the sentence the daemon added to ROOT/error
    meanwhile (the most recent that names `name`, else the last new one)."""
    before = error_lines(root)
    try:
        return fn()
    except OSError as e:
        if e.errno is None:
            raise
        line = getattr(e, "sentence", None) or \
            pick_line(new_lines(before, error_lines(root)), name, prefix)
        raise SandboxError(e.errno, line or generic(e.errno, what), name) from None


def sandbox_error(sbx_path):
    try:
        return read_text(os.path.join(sbx_path, "error")).strip()
    except OSError:
        return ""


def sandbox_call(sbx_path, name, fn, what):
    """Runs fn() (a write to a sandbox's ctl, a mkdir in it...); an OSError
    becomes a SandboxError with the sentence of the sandbox's `error` file."""
    try:
        return fn()
    except OSError as e:
        if e.errno is None:
            raise
        if e.errno == errno.ENOENT and not os.path.isdir(sbx_path):
            raise SandboxError(e.errno, "no sandbox '%s'" % name, name) from None
        sentence = getattr(e, "sentence", None) or sandbox_error(sbx_path) or generic(e.errno, what)
        raise SandboxError(e.errno, sentence, name) from None


class CommandError(OSError):
    """A refused write to a ctl file, with the sentence its own handle gave
    back (a read of the same open ctl after a failed write returns it)."""

    def __init__(self, err, sentence):
        super().__init__(err, os.strerror(err))
        self.sentence = sentence


def send(fd, data):
    """Writes data to a handle opened for reading and writing (ctl, files):
    when a write fails, the same handle's sentence is read (never another
    client's, as the shared error files may hold) and raised as CommandError."""
    try:
        write_all(fd, data)
    except OSError as e:
        if e.errno is None:
            raise
        try:
            sentence = os.read(fd, 4096).decode(errors="replace").strip()
        except OSError:
            sentence = ""
        raise CommandError(e.errno, sentence) from None


def command(path, line):
    """One command line to a ctl file (see send)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        send(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def write_line(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


# --- shell lines ------------------------------------------------------------

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _word(s):
    """One shell word with the value s. A newline cannot be in the line (one
    command line per write), so a value with one is made by printf %b
    (trailing newlines are lost, as in any $(...))."""
    if "\0" in s:
        raise ValueError("a NUL byte cannot be passed to a shell command")
    if "\n" not in s:
        return shlex.quote(s)
    return '"$(printf %%b %s)"' % shlex.quote(s.replace("\\", "\\\\").replace("\n", "\\n"))


def _str(a):
    a = os.fspath(a)
    if isinstance(a, bytes):
        a = os.fsdecode(a)
    if not isinstance(a, str):
        raise TypeError("argv items must be str, bytes or paths, not %s" % type(a).__name__)
    return a


def _quote(v):
    """A value of an exec or run line's option: in single quotes, a quote
    inside as '\\'' (the daemon's rule, as sh's)."""
    return "'%s'" % v.replace("'", "'\\''")


# A first word the daemon would read as an option (or refuse as a mistyped
# one) once options come before it.
_OPTION_LIKE = re.compile(r"\s*[a-z_][a-z0-9_]*=")


def _seconds(t):
    """timeout= as the daemon takes it: seconds with three decimals, above 0."""
    ms = max(1, int(math.ceil(float(t) * 1000)))
    return "%d.%03d" % (ms // 1000, ms % 1000)


def command_line(cmd, env=None, cwd=None, timeout=None, tty=None):
    """The one line (for `run` or `exec`) that runs cmd with env and cwd.

    cmd: a list (argv, each item quoted) or a str (a shell command, run as
    is; when it has several lines, it runs under `eval`).
    env: {NAME: value} as env=NAME='value' options (names
    [A-Za-z_][A-Za-z0-9_]*); a value with a newline, which a line cannot
    hold, is exported by the shell instead. cwd: a cwd= option (a relative
    one is taken from /). timeout: seconds, a timeout= option (the daemon
    kills the command then). tty: (columns, rows), a tty= option (run only).
    """
    opts, shell_env, shell_cwd = [], [], None
    for k, v in (env or {}).items():
        if not isinstance(k, str) or not ENV_NAME.fullmatch(k):
            raise ValueError("bad environment variable name %r" % (k,))
        v = _str(v)
        if "\0" in v:
            raise ValueError("a NUL byte cannot be passed to a shell command")
        if "\n" in v:
            shell_env.append("%s=%s" % (k, _word(v)))
        else:
            opts.append("env=%s=%s" % (k, _quote(v)))
    if cwd is not None:
        d = _str(cwd)
        if not d:
            raise ValueError("empty cwd")
        if "\0" in d:
            raise ValueError("a NUL byte cannot be in a directory name")
        d = posixpath.join("/", d)
        if "\n" in d:
            shell_cwd = d
        else:
            opts.append("cwd=" + _quote(d))
    if timeout is not None:
        opts.append("timeout=" + _seconds(timeout))
    if tty:
        cols, rows = (80, 24) if tty is True else tty
        opts.append("tty=%dx%d" % (int(cols), int(rows)))
    if isinstance(cmd, (list, tuple)):
        if not cmd:
            raise ValueError("empty argv")
        body = " ".join(shell_env + [_word(_str(a)) for a in cmd])
    elif isinstance(cmd, str):
        if "\0" in cmd:
            raise ValueError("a NUL byte cannot be in a command line")
        if not cmd.strip():
            raise ValueError("empty command line")
        if "\n" in cmd:
            body = "eval %s" % _word(cmd)
        elif shell_env or shell_cwd is not None:
            body = "eval %s" % shlex.quote(cmd)
        else:
            body = cmd
        if shell_env:
            # Assignments before eval are not exported (ash): export them.
            body = "export %s && %s" % (" ".join(shell_env), body)
    else:
        raise TypeError("cmd must be a list of arguments or a str, not %s" % type(cmd).__name__)
    if shell_cwd is not None:
        body = "cd %s && %s" % (_word(shell_cwd), body)
    if opts and _OPTION_LIKE.match(body):
        body = "eval %s" % shlex.quote(body)
    return " ".join(opts + [body])
