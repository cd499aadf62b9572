"""Files in and out, never through NAME/root: NAME/files on ns (the daemon
resolves paths inside the sandbox's root), the sandbox's own tools for trees."""

import errno
import io
import os
import stat
import tarfile

import pytest

from sandboxfs import SandboxError
from sandboxfs.files import Files


def test_write_and_read_bytes(sb):
    data = bytes(range(256)) * 64
    sb.files.write("/tmp/bin", data)
    assert sb.files.read("/tmp/bin") == data
    assert sb.exec(["wc", "-c", "/tmp/bin"]).stdout.split()[0] == str(len(data))


def test_write_text_mode_and_truncate(sb):
    sb.files.write("/tmp/t", "a much longer first content\n")
    sb.files.write("/tmp/t", "short\n", mode=0o750)
    assert sb.files.read_text("/tmp/t") == "short\n"
    assert sb.exec(["stat", "-c", "%a", "/tmp/t"]).stdout.strip() == "750"


def test_a_large_file_both_ways(sb):
    data = os.urandom(3 << 20)
    sb.files.write("/tmp/big", data)
    assert sb.files.read("/tmp/big") == data


def test_read_a_missing_file_is_enoent(sb):
    with pytest.raises(SandboxError) as ei:
        sb.files.read("/no/such/file")
    assert ei.value.errno == errno.ENOENT
    assert "/no/such/file" in ei.value.sentence


def test_write_into_a_missing_directory_fails(sb):
    with pytest.raises(SandboxError) as ei:
        sb.files.write("/no/such/dir/f", "x")
    assert "/no/such/dir/f" in ei.value.sentence
    assert sb.exec(["test", "-e", "/no/such/dir"]).exit_code == 1


def _tree(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read(), st.st_mode & 0o111 != 0)
    return out


def test_upload_and_download_a_tree(sb, tmp_path):
    src = tmp_path / "src" / "proj"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "deep" / "b.bin").write_bytes(os.urandom(100000))
    (src / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (src / "run.sh").chmod(0o755)
    os.symlink("/etc/shadow", src / "link")
    os.symlink("sub/deep", src / "rel")

    got = sb.files.upload(src, "/tmp/in")
    assert got == "/tmp/in/proj"
    assert sb.exec(["cat", "/tmp/in/proj/a.txt"]).stdout == "alpha\n"
    assert sb.exec(["/tmp/in/proj/run.sh"]).stdout == "ran\n"
    assert sb.exec(["readlink", "/tmp/in/proj/link"]).stdout == "/etc/shadow\n"

    out = tmp_path / "out"
    assert sb.files.download("/tmp/in/proj", out) == str(out / "proj")
    assert _tree(out / "proj") == _tree(src)


def test_upload_a_single_file(sb, tmp_path):
    f = tmp_path / "one.txt"
    f.write_text("just one\n")
    assert sb.files.upload(f, "/tmp/x/y") == "/tmp/x/y/one.txt"
    assert sb.files.read("/tmp/x/y/one.txt") == b"just one\n"


def test_upload_of_nothing_and_download_of_nothing(sb, tmp_path):
    with pytest.raises(SandboxError) as ei:
        sb.files.upload(tmp_path / "absent", "/tmp")
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(SandboxError) as ei:
        sb.files.download("/no/such/path", tmp_path / "o")
    assert ei.value.errno == errno.ENOENT
    assert "/no/such/path" in ei.value.sentence
    assert os.listdir(tmp_path / "o") == []


def test_a_link_to_a_host_path_resolves_inside_the_sandbox(sb, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("HOST SECRET\n")
    sb.exec(["ln", "-s", str(secret), "/tmp/link"], check=True)
    # Nothing at that path inside: the read fails, the host file is not read.
    with pytest.raises(SandboxError) as ei:
        sb.files.read("/tmp/link")
    assert ei.value.errno == errno.ENOENT
    # A file at the same path inside the sandbox is what the link reaches.
    sb.exec(["mkdir", "-p", str(tmp_path)], check=True)
    sb.files.write(str(secret), "decoy inside\n")
    assert sb.files.read("/tmp/link") == b"decoy inside\n"
    # A write (NAME/files on ns) replaces the link itself, inside.
    sb.files.write("/tmp/link", "written over the link\n")
    assert secret.read_text() == "HOST SECRET\n"
    assert sb.files.read("/tmp/link") == b"written over the link\n"
    assert sb.files.stat("/tmp/link")["type"] == "f"
    assert sb.files.read(str(secret)) == b"decoy inside\n"
    # Out, the link stays a link; the host file is neither read nor changed.
    sb.exec(["mkdir", "/tmp/d"], check=True)
    sb.exec(["ln", "-s", str(secret), "/tmp/d/l"], check=True)
    out = tmp_path / "out"
    sb.files.download("/tmp/d", out)
    assert os.path.islink(out / "d" / "l")
    assert os.readlink(out / "d" / "l") == str(secret)
    assert secret.read_text() == "HOST SECRET\n"


def _evil_tar(path, victim_dir, tag):
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        def add(name, data=None, **kw):
            i = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(i, k, v)
            if data is not None:
                i.size = len(data)
            t.addfile(i, io.BytesIO(data) if data is not None else None)
        add("o/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0)
        add("o/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("o/lnk", type=tarfile.SYMTYPE, linkname=str(victim_dir))
        add("o/lnk/pwned-" + tag, data=b"pwn")
        add("../escaped-" + tag, data=b"pwn")
        add("o/su", data=b"#!/bin/sh\n", mode=0o4755)


def test_download_treats_the_stream_as_hostile(sb, tmp_path):
    evil = tmp_path / "evil.tar"
    _evil_tar(evil, tmp_path, "t1")
    sb.files.upload(evil, "/tmp")
    # The sandbox's "tar" prints the crafted archive, whatever it is asked.
    sb.files.write("/tmp/tar", "#!/bin/sh\ncat /tmp/evil.tar\n", mode=0o755)
    out = tmp_path / "out"
    with pytest.raises(SandboxError) as ei:
        Files(sb, tar="/tmp/tar").download("/tmp/x", out)
    assert "unpacking the stream" in ei.value.sentence
    found = []
    for d, dirs, files in os.walk(out):
        for n in dirs + files:
            st = os.lstat(os.path.join(d, n))
            found.append(n)
            assert not stat.S_ISBLK(st.st_mode) and not stat.S_ISCHR(st.st_mode)
            assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID)
    assert "su" in found
    assert not os.path.lexists(tmp_path / "pwned-t1")
    assert not os.path.lexists(tmp_path / "escaped-t1")


def test_stat_list_and_mkdir(sb):
    sb.files.mkdir("/tmp/m", mode=0o700)
    sb.files.write("/tmp/m/f", b"12345", mode=0o640)
    sb.exec(["sh", "-c", "ln -s /etc/shadow /tmp/m/l && printf x > \"$(printf '/tmp/m/a\\nb\\\\c')\""], check=True)
    st = sb.files.stat("/tmp/m")
    assert (st["type"], st["mode"], st["uid"], st["gid"]) == ("d", 0o700, 0, 0)
    st = sb.files.stat("/tmp/m/f")
    assert (st["type"], st["mode"], st["size"]) == ("f", 0o640, 5)
    assert sb.files.stat("/tmp/m/l")["target"] == "/etc/shadow"
    got = {e.name: e for e in sb.files.list("/tmp/m")}
    assert set(got) == {"f", "l", "a\nb\\c"}
    assert (got["f"].type, got["f"].mode, got["f"].size) == ("f", 0o640, 5)
    assert got["l"].type == "l"
    # A name as list gives it is a path the other requests take.
    assert sb.files.read("/tmp/m/" + "a\nb\\c") == b"x"
    with pytest.raises(SandboxError) as ei:
        sb.files.mkdir("/tmp/m")
    assert ei.value.errno == errno.EEXIST


def test_hostile_nodes_and_magic_links_are_refused(sb):
    sb.exec(["sh", "-c", "mkfifo /tmp/fifo && mknod /tmp/mem c 1 1"], check=True)
    for path, err in [("/tmp/fifo", errno.EPERM), ("/tmp/mem", errno.EPERM), ("/tmp", errno.EISDIR),
                      ("/proc/1/root/etc/shadow", errno.ELOOP), ("/proc/1/environ", errno.EPERM)]:
        with pytest.raises(SandboxError) as ei:
            sb.files.read(path)
        assert ei.value.errno == err, path
        assert path in ei.value.sentence


def test_a_single_file_down_drops_setuid_and_keeps_its_bytes(sb, tmp_path):
    data = b"\0\1\2" + os.urandom(1 << 20)
    sb.files.write("/tmp/su", data, mode=0o4755)
    out = sb.files.download("/tmp/su", tmp_path / "o")
    assert out == str(tmp_path / "o" / "su")
    with open(out, "rb") as f:
        assert f.read() == data
    assert stat.S_IMODE(os.lstat(out).st_mode) == 0o755
    f = tmp_path / "up.sh"
    f.write_text("#!/bin/sh\necho up\n")
    f.chmod(0o751)
    assert sb.files.upload(f, "/tmp") == "/tmp/up.sh"
    assert sb.files.stat("/tmp/up.sh")["mode"] == 0o751
    assert sb.exec(["/tmp/up.sh"]).stdout == "up\n"
