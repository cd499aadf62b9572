"""examples/agent.py runs against the test mount and cleans up after itself."""

import os
import subprocess
import sys

from conftest import REPO, fresh_name
from sandboxfs import sandboxes


def test_agent_example_runs(mount, tmp_path):
    name = fresh_name("agent")
    r = subprocess.run([sys.executable, os.path.join(REPO, "examples", "agent.py"), "--root", mount,
                        "--name", name, "--out", str(tmp_path)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert "agent: winner: use-plus" in out
    assert "$(( $1 + $2 ))" in (tmp_path / "calc.sh").read_text()
    assert not [n for n in sandboxes(mount) if n.startswith(name)]
