"""Parts of the client that need no mount: quoting, picking the sentence of
a shared error file, the final states of wait (on a fake tree)."""

import errno
import os
import shlex

import pytest

from sandboxfs import SandboxError, SandboxStateError, Sandbox, command_line
from sandboxfs import _io
from sandboxfs.errors import errno_of_sentence


def test_argv_is_quoted_word_by_word():
    args = ["echo", "a b", "it's", "$HOME", "`id`", "*", ""]
    line = command_line(args)
    assert shlex.split(line) == args


def test_env_cwd_timeout_and_tty_are_options():
    line = command_line(["env"], env={"A": "1 2", "B_2": "x"}, cwd="/tmp/my dir")
    assert line == "env=A='1 2' env=B_2='x' cwd='/tmp/my dir' env"
    assert command_line("true", env={"Q": "it's"}) == "env=Q='it'\\''s' true"
    assert command_line("pwd", cwd="tmp") == "cwd='/tmp' pwd"
    assert command_line("sleep 9", timeout=2.5) == "timeout=2.500 sleep 9"
    assert command_line("sleep 9", timeout=0) == "timeout=0.001 sleep 9"
    assert command_line("sh", tty=(100, 30)) == "tty=100x30 sh"


def test_a_shell_line_runs_as_is_or_under_eval():
    assert command_line("echo $A; ls") == "echo $A; ls"
    assert command_line("echo $A; ls", cwd="/") == "cwd='/' echo $A; ls"
    assert command_line("echo $A", env={"A": "x y"}) == "env=A='x y' echo $A"
    # A first word the daemon would take for an option runs under eval.
    assert command_line("i=0; echo $i", cwd="/") == "cwd='/' eval 'i=0; echo $i'"
    assert command_line("i=0; echo $i") == "i=0; echo $i"
    # A value with a newline is the shell's to export.
    assert command_line("echo $A", env={"A": "x\ny"}).startswith("export A=")


def test_no_line_has_a_newline():
    for line in (command_line("echo a\necho b"), command_line(["printf", "a\nb"]),
                 command_line(["true"], env={"A": "x\ny"})):
        assert "\n" not in line


@pytest.mark.parametrize("bad", ["1A", "A-B", "", "A B", "A=B"])
def test_bad_env_names_are_refused(bad):
    with pytest.raises(ValueError, match="bad environment variable name"):
        command_line(["true"], env={bad: "x"})


def test_nul_bytes_are_refused():
    with pytest.raises(ValueError):
        command_line(["echo", "a\0b"])
    with pytest.raises(ValueError):
        command_line("echo a\0b")


def test_new_lines_of_a_ring():
    before = ["a", "b", "c"]
    assert _io.new_lines(before, ["a", "b", "c", "d"]) == ["d"]
    assert _io.new_lines(before, ["b", "c", "d", "e"]) == ["d", "e"]  # the ring dropped "a"
    assert _io.new_lines(before, before) == []
    assert _io.new_lines([], ["x"]) == ["x"]
    assert _io.new_lines(["x"], ["x", "x"]) == ["x"]


def test_the_most_recent_line_that_names_the_sandbox_wins():
    lines = ["ctl: sandbox 'mine' already exists", "ctl: sandbox 'other' already exists",
             "rmdir 'zzz': no such sandbox"]
    assert _io.pick_line(lines, "mine", "ctl:") == lines[0]
    assert _io.pick_line(lines, "nothere", "ctl:") == lines[1]
    assert _io.pick_line(lines, None, None) == lines[2]
    # A name is matched whole: 'mine' is not in 'mine-2'.
    assert _io.pick_line(["ctl: sandbox 'mine-2' already exists"], "mine", None) == \
        "ctl: sandbox 'mine-2' already exists"  # falls back to the last line
    assert _io.pick_line([], "mine", "ctl:") is None


def test_errno_of_a_tool_message():
    assert errno_of_sentence("cat: can't open '/x': No such file or directory") == errno.ENOENT
    assert errno_of_sentence("sh: can't create /x: Permission denied") == errno.EACCES
    assert errno_of_sentence("nothing known") == errno.EIO


def _fake(tmp_path, state, error=""):
    d = tmp_path / "x"
    d.mkdir()
    (d / "events").write_text("state %s\nreason exit\nexit_code 1\noom_kills 0\ngeneration 3\n" % state)
    (d / "error").write_text(error + "\n" if error else "")
    return Sandbox("x", root=str(tmp_path))


def test_wait_for_running_raises_the_sentence_of_a_failed_sandbox(tmp_path):
    sb = _fake(tmp_path, "failed", "cannot mount the overlay: No space left on device")
    with pytest.raises(SandboxStateError) as ei:
        sb.wait("running", timeout=5)
    assert ei.value.errno == errno.EIO
    assert ei.value.state == "failed"
    assert ei.value.sentence == "cannot mount the overlay: No space left on device"
    assert ei.value.events["generation"] == 3


def test_wait_for_running_treats_stopped_as_final(tmp_path):
    sb = _fake(tmp_path, "stopped")
    with pytest.raises(SandboxStateError) as ei:
        sb.wait("running", timeout=5)
    assert ei.value.errno == errno.EBUSY
    assert ei.value.state == "stopped"
    assert "reason exit" in ei.value.sentence


def test_wait_returns_a_state_asked_for(tmp_path):
    sb = _fake(tmp_path, "stopped")
    assert sb.wait("running|stopped", timeout=5)["state"] == "stopped"
    with pytest.raises(ValueError):
        sb.wait("runing")


def test_attach_to_nothing_is_enoent(tmp_path):
    with pytest.raises(SandboxError) as ei:
        Sandbox("nope", root=str(tmp_path))
    assert ei.value.errno == errno.ENOENT
    assert "nope" in ei.value.sentence
    assert not os.path.exists(tmp_path / "nope")
