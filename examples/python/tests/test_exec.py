"""exec (over a background job) and run/Job against a real mount."""

import errno
import io
import os
import shlex

import pytest

from sandboxfs import ExecTimeout, SandboxError


def test_stdout_stderr_and_exit_code_are_apart(sb):
    r = sb.exec(["sh", "-c", "echo out; echo err >&2; echo out2; exit 3"])
    assert r.stdout == "out\nout2\n"
    assert r.stderr == "err\n"
    assert r.exit_code == 3
    assert r.reason == "exit"
    assert not r.ok
    assert sb.exec("true").ok


def test_argv_arrives_word_by_word(sb):
    args = ["a b", "it's", '"dq"', "$HOME", "`id`", "\\back\\slash", "multi\nline", "", "-n", "ünï", "*"]
    r = sb.exec(["printf", "%s\\0"] + args)
    assert r.exit_code == 0
    assert r.stdout.split("\0")[:-1] == args


def test_a_multi_line_script(sb):
    r = sb.exec("x=41\necho $((x + 1))\nexit 5")
    assert r.stdout == "42\n"
    assert r.exit_code == 5


def test_env(sb):
    r = sb.exec(["sh", "-c", 'echo "$A|$B|$C"'], env={"A": "x y", "B": "it's $HOME", "C": "l1\nl2"})
    assert r.stdout == "x y|it's $HOME|l1\nl2\n"
    r = sb.exec('echo "$A"; sh -c \'echo "$A"\'', env={"A": "v"})  # a shell line sees it too
    assert r.stdout == "v\nv\n"
    with pytest.raises(ValueError):
        sb.exec("true", env={"NOT-A-NAME": "x"})


def test_cwd(sb):
    assert sb.exec("pwd", cwd="/tmp").stdout == "/tmp\n"
    assert sb.exec(["pwd"]).stdout == "/\n"
    sb.exec(["mkdir", "-p", "/tmp/a dir"], check=True)
    assert sb.exec(["pwd"], cwd="/tmp/a dir").stdout == "/tmp/a dir\n"
    r = sb.exec("echo never", cwd="/no/such/dir")
    assert r.exit_code != 0
    assert r.stdout == ""
    assert "/no/such/dir" in r.stderr


def test_stdin_bytes_str_and_file(sb):
    data = os.urandom(1 << 20)
    r = sb.exec(["cat"], stdin=data, text=False)
    assert r.exit_code == 0
    assert r.stdout == data
    assert sb.exec("wc -l", stdin="a\nb\nc\n").stdout.strip() == "3"
    assert sb.exec(["cat"], stdin=io.BytesIO(b"from a file")).stdout == "from a file"
    # No stdin: a reader sees its end at once.
    assert sb.exec(["cat"]).stdout == ""


def test_stdin_a_command_does_not_read(sb):
    r = sb.exec(["sh", "-c", "echo early; exit 7"], stdin=os.urandom(4 << 20), timeout=120)
    assert r.stdout == "early\n"
    assert r.exit_code == 7


def test_timeout_kills_and_raises(sb):
    with pytest.raises(TimeoutError) as ei:
        sb.exec("echo before; echo e >&2; sleep 1000; echo after", timeout=1)
    assert isinstance(ei.value, ExecTimeout)
    assert ei.value.stdout == "before\n"
    assert ei.value.stderr == "e\n"
    assert sb.jobs() == []
    ps = sb.exec(["ps"]).stdout
    assert "sleep 1000" not in ps


def test_killed_by_a_signal(sb):
    r = sb.exec("kill -9 $$")
    assert r.exit_code == 137
    assert r.reason == "signal"


def test_check_raises_with_stderr(sb):
    with pytest.raises(SandboxError) as ei:
        sb.exec(["ls", "/no-such"], check=True)
    assert "/no-such" in ei.value.sentence


def test_exec_leaves_no_job_behind(sb):
    for i in range(3):
        assert sb.exec(["echo", str(i)]).stdout == "%d\n" % i
    assert sb.jobs() == []
    assert os.listdir(os.path.join(sb.path, "jobs")) == []


def test_run_streams_stdin_and_wait(sb):
    job = sb.run(["sh", "-c", "echo one; read x; echo got $x; echo e >&2; exit 4"])
    try:
        assert job.stdout.readline(timeout=60) == b"one\n"
        assert job.status == "running"
        assert job.exit_code is None
        job.write("hi\n")
        job.close_stdin()
        assert job.wait(timeout=60) == 4
        assert job.status == "exited"
        assert job.reason == "exit"
        assert job.stdout.read_all() == b"got hi\n"
        assert job.stderr.read_all() == b"e\n"
        assert job.stdout.read() == b""
        assert job.cmd == shlex.join(["sh", "-c", "echo one; read x; echo got $x; echo e >&2; exit 4"])
    finally:
        job.remove()
    assert [j.id for j in sb.jobs()] == []


def test_run_with_env_and_cwd(sb):
    job = sb.run('echo "$V"; pwd', env={"V": "set"}, cwd="/tmp")
    job.close_stdin()
    assert job.wait(60) == 0
    assert job.stdout.read_all() == b"set\n/tmp\n"
    job.remove()


def test_run_with_a_terminal_types_resizes_and_interrupts(sb):
    job = sb.run('stty size; test -t 0 && echo tty; read x; echo "got $x"; '
                 'trap "stty size" WINCH; echo ready; while :; do sleep 0.1; done', tty=(100, 30))
    try:
        assert job.stdout.readline(timeout=60) == b"30 100\r\n"
        assert job.stdout.readline(timeout=60) == b"tty\r\n"
        job.write("hi\n")
        assert job.stdout.readline(timeout=60) == b"hi\r\n"  # the terminal's echo
        assert job.stdout.readline(timeout=60) == b"got hi\r\n"
        assert job.stdout.readline(timeout=60) == b"ready\r\n"
        job.resize(120, 40)
        assert job.stdout.readline(timeout=60) == b"40 120\r\n"
        job.write(b"\x03")  # ^C
        assert job.wait(timeout=60) == 130
        assert job.stderr.read_all() == b""
        with pytest.raises(SandboxError) as ei:
            sb.run("true", tty=(0, 0))
        assert ei.value.errno == errno.EINVAL
        assert "COLSxROWS" in ei.value.sentence
    finally:
        job.remove()


def test_job_kill_wait_timeout_and_remove(sb):
    job = sb.run("sleep 1000")
    try:
        with pytest.raises(TimeoutError):
            job.wait(timeout=0.2)
        with pytest.raises(TimeoutError):
            job.stdout.read(timeout=0.2)
        with pytest.raises(SandboxError) as ei:
            job.remove()
        assert ei.value.errno == errno.EBUSY
        assert "still running" in ei.value.sentence
        job.kill("KILL")
        assert job.wait(timeout=60) == 137
        assert job.status == "killed"
        assert job.reason == "signal"
        with pytest.raises(SandboxError) as ei:
            job.kill()
        assert ei.value.errno == errno.EBUSY
        assert ei.value.sentence == "job %d is killed" % job.id
    finally:
        if job.status == "running":
            job.kill("KILL")
            job.wait(60)
        job.remove()
    with pytest.raises(SandboxError) as ei:
        job.status
    assert ei.value.errno == errno.ENOENT


def test_iterating_a_stream_gives_lines(sb):
    job = sb.run("for i in 1 2 3; do echo line$i; done; printf tail")
    job.close_stdin()
    assert list(job.stdout) == [b"line1\n", b"line2\n", b"line3\n", b"tail"]
    job.wait(60)
    job.remove()
