#!/usr/bin/env python3
"""The timed side and the readers of tests/stress/hostile.bats.

  hostile_load.py sample OUT COUNT UNTIL PAUSE MNT NAME...
      Times reads of NAME/status and runs of `echo hi` through NAME/exec
      (the two in turn, round robin over the NAMEs), as `cat NAME/status` and
      a shell's exec client do them: open, read to EOF (exec: write the
      command first, then read its `exit_code N`), close. COUNT of each, or,
      with COUNT 0, until the wall clock reaches UNTIL (epoch seconds), with
      PAUSE seconds between two operations. One line an operation to OUT:
      `status|exec MICROSECONDS ok|error:WHY`. A wrong answer (not a state
      word, not `hi` and `exit_code 0`) is an error.
  hostile_load.py readers MNT NAME N OUT
      N threads read NAME/wait over and over (each read is parked by the
      daemon until a state change or its bound), and N threads each run
      `sleep 100000` through NAME/exec and wait for its output (parked until
      the sandbox goes). Returns once every thread ended: removing NAME
      answers every parked read, and a read of a sandbox that is gone fails.
      Writes `wait_reads N` (the reads answered with content) and `errors N`
      to OUT.
  hostile_load.py report IDLE LOAD
      The table of the two sample files: per operation n, p50, p95 (ms,
      nearest rank) idle and under load, the ratios, the errors under load.
"""
import os
import sys
import threading
import time

STATES = {"creating", "running", "paused", "standby", "stopped", "failed"}


def read_to_eof(fd):
    data = b""
    while True:
        b = os.read(fd, 65536)
        if not b:
            return data
        data += b


def op_status(mnt, name):
    fd = os.open(f"{mnt}/{name}/status", os.O_RDONLY)
    try:
        data = read_to_eof(fd)
    finally:
        os.close(fd)
    word = data.decode(errors="replace").strip()
    if word not in STATES:
        raise ValueError(f"status read {word[:40]!r}")


def op_exec(mnt, name):
    fd = os.open(f"{mnt}/{name}/exec", os.O_RDWR)
    try:
        os.write(fd, b"echo hi\n")
        out = read_to_eof(fd)
        status = read_to_eof(fd)
    finally:
        os.close(fd)
    if out != b"hi\n" or status.strip() != b"exit_code 0":
        raise ValueError(f"exec gave {out[:40]!r} {status[:40]!r}")


def sample(out, count, until, pause, mnt, names):
    ops = [("status", op_status), ("exec", op_exec)]
    done = {"status": 0, "exec": 0}
    i = 0
    with open(out, "w") as f:
        while True:
            if count and min(done.values()) >= count:
                break
            if not count and time.time() >= until:
                break
            kind, fn = ops[i % 2]
            name = names[(i // 2) % len(names)]
            i += 1
            t0 = time.monotonic_ns()
            try:
                fn(mnt, name)
                res = "ok"
            except (OSError, ValueError) as e:
                res = "error:" + (e.strerror if isinstance(e, OSError) else str(e)).replace(" ", "_")
            f.write(f"{kind} {(time.monotonic_ns() - t0) // 1000} {res}\n")
            f.flush()
            done[kind] += 1
            if pause:
                time.sleep(pause)


def readers(mnt, name, n, out):
    threading.stack_size(256 << 10)
    counts = {"wait_reads": 0, "errors": 0}
    lock = threading.Lock()

    def count(key):
        with lock:
            counts[key] += 1

    def wait_reader():
        while True:
            try:
                fd = os.open(f"{mnt}/{name}/wait", os.O_RDONLY)
                try:
                    data = os.read(fd, 4096)
                finally:
                    os.close(fd)
            except OSError:
                count("errors")
                return  # the sandbox is gone
            if not data:
                return
            count("wait_reads")

    def exec_reader():
        try:
            fd = os.open(f"{mnt}/{name}/exec", os.O_RDWR)
            try:
                os.write(fd, b"sleep 100000\n")
                read_to_eof(fd)
                os.read(fd, 4096)
            finally:
                os.close(fd)
        except OSError:
            count("errors")

    threads = [threading.Thread(target=wait_reader, daemon=True) for _ in range(n)]
    threads += [threading.Thread(target=exec_reader, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        for k, v in counts.items():
            f.write(f"{k} {v}\n")


def load(path):
    res = {"status": [], "exec": []}
    errors = {"status": 0, "exec": 0}
    with open(path) as f:
        for line in f:
            kind, usec, status = line.split()
            if status == "ok":
                res[kind].append(int(usec))
            else:
                errors[kind] += 1
    return res, errors


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, -(-p * len(xs) // 100) - 1))  # nearest rank
    return xs[k] / 1000.0


def report(idle_path, load_path):
    idle, idle_err = load(idle_path)
    busy, busy_err = load(load_path)
    print("| operation | idle n | idle p50 ms | idle p95 ms | load n | load p50 ms "
          "| load p95 ms | p50 load/idle | p95 load/idle | errors idle/load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    labels = {"status": "`cat NAME/status`", "exec": "`exec` of `echo hi`"}
    for kind in ("status", "exec"):
        i50, i95 = pct(idle[kind], 50), pct(idle[kind], 95)
        l50, l95 = pct(busy[kind], 50), pct(busy[kind], 95)
        r50 = l50 / i50 if i50 > 0 else float("nan")
        r95 = l95 / i95 if i95 > 0 else float("nan")
        print(f"| {labels[kind]} | {len(idle[kind])} | {i50:.3f} | {i95:.3f} | "
              f"{len(busy[kind])} | {l50:.3f} | {l95:.3f} | {r50:.1f}× | {r95:.1f}× | "
              f"{idle_err[kind]}/{busy_err[kind]} |")


def main(argv):
    if len(argv) >= 8 and argv[1] == "sample":
        sample(argv[2], int(argv[3]), float(argv[4]), float(argv[5]), argv[6], argv[7:])
    elif len(argv) == 6 and argv[1] == "readers":
        readers(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) == 4 and argv[1] == "report":
        report(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
