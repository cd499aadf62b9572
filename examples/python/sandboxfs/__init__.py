"""sandboxfs: a Python client for sandboxfs, over its file tree only.

    from sandboxfs import Sandbox
    with Sandbox.create("demo", memory="256M") as sb:       # waits until running
        r = sb.exec(["sh", "-c", "echo hi; echo oops >&2; exit 3"])
        r.stdout, r.stderr, r.exit_code                      # 'hi\\n', 'oops\\n', 3
        sb.files.write("/tmp/x", b"data"); sb.files.read("/tmp/x")
        a, b = sb.fork(2)                                      # two children with its files

Standard library only. See README.md ("Python client") for the whole API.
"""

from .client import DEFAULT_ROOT, Sandbox, Snapshot, images, remove, root_stats, sandboxes
from .catalog import Image, Pool, pools
from .errors import ExecTimeout, SandboxError, SandboxStateError
from .files import Files
from .jobs import ExecResult, Job, Stream
from ._io import command_line

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ROOT", "Sandbox", "Snapshot", "Files", "Job", "Stream", "ExecResult",
    "SandboxError", "SandboxStateError", "ExecTimeout",
    "sandboxes", "images", "remove", "root_stats", "command_line", "Pool", "Image", "pools",
]
