"""Exceptions of the sandboxfs client.

Every failure the daemon reports is a SandboxError: an OSError whose errno is
the one the write (or mkdir, rmdir, read) failed with and whose sentence is
the daemon's own, read from the sandbox's `error` file or from the top-level
`error` file for what never became a sandbox.
"""

import errno as _errno
import os

__all__ = ["SandboxError", "SandboxStateError", "ExecTimeout", "errno_of_sentence"]


class SandboxError(OSError):
    """A failure reported by sandboxfs: `.errno` and `.sentence` (the daemon's words).

    `.sandbox` is the name of the sandbox concerned, when there is one.
    """

    def __init__(self, errno, sentence, sandbox=None):
        super().__init__(errno, sentence)
        self.sentence = sentence
        self.sandbox = sandbox

    def __str__(self):
        name = _errno.errorcode.get(self.errno, str(self.errno))
        return "[%s] %s" % (name, self.sentence)

    def __reduce__(self):
        return (type(self), (self.errno, self.sentence, self.sandbox))


class SandboxStateError(SandboxError):
    """A wait ended in a state that cannot become the one asked for.

    `.state` is that state (`failed` or `stopped`), `.events` what the
    sandbox's `events` file showed. errno is EIO for `failed`, EBUSY for a
    sandbox that stopped.
    """

    def __init__(self, errno, sentence, sandbox=None, state=None, events=None):
        super().__init__(errno, sentence, sandbox)
        self.state = state
        self.events = dict(events or {})

    def __reduce__(self):
        return (type(self), (self.errno, self.sentence, self.sandbox, self.state, self.events))


class ExecTimeout(TimeoutError):
    """exec ran past its timeout: the job was killed (SIGKILL) and removed.

    `.stdout` and `.stderr` hold what it wrote before (bytes, or str when the
    exec asked for text), `.timeout` the limit in seconds.
    """

    def __init__(self, sentence, stdout=b"", stderr=b"", timeout=None):
        super().__init__(_errno.ETIMEDOUT, sentence)
        self.sentence = sentence
        self.stdout = stdout
        self.stderr = stderr
        self.timeout = timeout

    def __str__(self):
        return self.sentence


_BY_STRERROR = {}
for _n in range(1, 134):
    _s = os.strerror(_n)
    if not _s.startswith("Unknown error"):
        _BY_STRERROR.setdefault(_s, _n)


def errno_of_sentence(sentence, default=_errno.EIO):
    """The errno whose strerror text ends a tool's message, as in
    `cat: can't open '/x': No such file or directory`; default if none."""
    text = sentence.strip()
    best = None
    for s, n in _BY_STRERROR.items():
        if text.endswith(s) and (best is None or len(s) > len(best[0])):
            best = (s, n)
    return best[1] if best else default
