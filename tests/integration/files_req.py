#!/usr/bin/env python3
"""One request on /sbx/NAME/files, for tests/integration/files.bats.

    files_req.py FILES 'REQUEST LINE' [DATA|-]

Writes the line (and, for a put, DATA's bytes or stdin's, in writes of up
to 1 MiB), then copies what the handle reads to stdout. A failed write
prints `ERR ENAME: SENTENCE` (the sentence read back from the same handle)
and exits 1; a failed read prints `ERR ENAME` and exits 1. Tests that
drive a handle themselves import write_all, and under for paths below
the mount."""
import errno
import os
import sys


def name(err):
    return "EOPNOTSUPP" if err == errno.EOPNOTSUPP else errno.errorcode.get(err, str(err))


def under(mnt):
    """path(*parts) below the mount mnt, and cat(*parts): that file's text."""
    def path(*p):
        return "/".join((mnt,) + p)

    def cat(*p):
        with open(path(*p)) as f:
            return f.read()
    return path, cat


def write_all(fd, data):
    """data on fd in writes of up to 1 MiB: None, or `ERR ENAME: SENTENCE`
    (the sentence read back from fd) when a write fails."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view[: 1 << 20]):]
    except OSError as e:
        return "ERR %s: %s" % (name(e.errno), os.read(fd, 4096).decode(errors="replace").strip())
    return None


def main():
    path, req = sys.argv[1], sys.argv[2]
    data = None
    if len(sys.argv) > 3:
        src = sys.stdin.buffer if sys.argv[3] == "-" else open(sys.argv[3], "rb")
        data = src.read()
    fd = os.open(path, os.O_RDWR)
    try:
        err = write_all(fd, req.encode("utf-8", "surrogateescape") + b"\n")
        err = err or write_all(fd, data or b"")
        if err:
            print(err)
            return 1
        try:
            while True:
                b = os.read(fd, 1 << 17)
                if not b:
                    return 0
                sys.stdout.buffer.write(b)
        except OSError as e:
            print("ERR %s" % name(e.errno))
            return 1
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
