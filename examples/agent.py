#!/usr/bin/env python3
"""An agent loop over sandboxfs, with the Python client (examples/python).

The loop is the one a coding agent runs: look at the task, call a tool
(a command in the sandbox, a file write), read what came back, decide the
next step. The "model" here is a scripted policy, so the example runs with
no network and gives the same answer every time; put an LLM call in
Policy.next() to make it a real agent.

The task: a tiny project in the sandbox has a failing test. The agent runs
the test, reads the source, then forks the sandbox to try two different
fixes side by side, runs the test in each child, keeps the one that passes,
brings the fixed file back to the host and removes every sandbox.

    examples/agent.py [--root /sbx] [--name agent-demo] [--out HOSTDIR] [--keep]

Needs a mounted sandboxfs (make demo KEEP=1, or build/sandboxfs /sbx).
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))

from sandboxfs import Sandbox, SandboxError  # noqa: E402

PROJECT = {
    "/work/calc.sh": (
        "#!/bin/sh\n"
        "# add A B: prints A+B\n"
        "add() { echo $(( $1 - $2 )); }\n"
        'add "$@"\n'
    ),
    "/work/test.sh": (
        "#!/bin/sh\n"
        "cd /work || exit 2\n"
        "fail=0\n"
        "for c in '1 2 3' '2 2 4' '10 -3 7'; do\n"
        "  set -- $c\n"
        '  got=$(sh calc.sh "$1" "$2")\n'
        '  if [ "$got" = "$3" ]; then echo "ok add $1 $2"; else echo "FAIL add $1 $2: got $got, want $3" >&2; fail=1; fi\n'
        "done\n"
        "exit $fail\n"
    ),
}

# Two candidate patches the "model" proposes: one wrong, one right.
FIXES = {
    "swap-args": 'add() { echo $(( $2 - $1 )); }',
    "use-plus": 'add() { echo $(( $1 + $2 )); }',
}


def log(*a):
    print("agent:", *a, flush=True)


def tool_shell(sb, cmd, **kw):
    """The agent's shell tool: what an LLM sees is stdout, stderr and the code."""
    r = sb.exec(cmd, timeout=30, **kw)
    log("[%s] $ %s -> exit %d" % (sb.name, cmd if isinstance(cmd, str) else " ".join(cmd), r.exit_code))
    for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
        for line in text.splitlines()[:8]:
            log("    %s| %s" % (name, line))
    return r


class Policy:
    """Stands in for the model: from the observations so far, the next action."""

    def __init__(self):
        self.plan = [
            ("shell", "ls -l /work"),
            ("shell", "sh /work/test.sh"),
            ("read", "/work/calc.sh"),
            ("fork", list(FIXES)),
        ]

    def next(self, observations):
        # A real agent: prompt = task + observations; action = parse(llm(prompt)).
        return self.plan.pop(0) if self.plan else ("done", None)


def apply_fix(sb, patch):
    src = sb.files.read("/work/calc.sh").decode()
    lines = [patch if line.startswith("add()") else line for line in src.splitlines()]
    sb.files.write("/work/calc.sh", "\n".join(lines) + "\n", mode=0o755)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.environ.get("SBX", "/sbx"))
    ap.add_argument("--name", default="agent-demo-%d" % os.getpid())
    ap.add_argument("--keep", action="store_true", help="leave the sandboxes")
    ap.add_argument("--out", help="host directory for the fixed file (default: a new temporary one)")
    args = ap.parse_args()

    sb = Sandbox.create(args.name, root=args.root, memory="128M", pids=64)
    sb.owned = not args.keep
    children = []
    try:
        log("sandbox %s is %s (created in %d us)" % (sb.name, sb.status, sb.stats()["create_usec"]))
        tool_shell(sb, ["mkdir", "-p", "/work"])
        for path, text in PROJECT.items():
            sb.files.write(path, text, mode=0o755)

        policy = Policy()
        observations = []
        result = None
        while True:
            action, arg = policy.next(observations)
            if action == "shell":
                r = tool_shell(sb, arg)
                observations.append((arg, r.exit_code, r.stdout, r.stderr))
            elif action == "read":
                text = sb.files.read(arg).decode()
                log("[%s] read %s (%d bytes)" % (sb.name, arg, len(text)))
                observations.append((arg, 0, text, ""))
            elif action == "fork":
                # Try the alternatives in parallel, each in its own copy of the files.
                children = sb.fork(len(arg))
                for c in children:
                    c.owned = not args.keep
                scores = {}
                for child, fix in zip(children, arg):
                    apply_fix(child, FIXES[fix])
                    r = tool_shell(child, "sh /work/test.sh")
                    scores[fix] = (r.exit_code, r.stdout.count("ok "), child)
                for fix, (code, oks, child) in scores.items():
                    log("candidate %-10s in %s: exit %d, %d/3 cases pass" % (fix, child.name, code, oks))
                best = min(scores, key=lambda f: (scores[f][0] != 0, -scores[f][1]))
                code, oks, child = scores[best]
                if code != 0:
                    log("no candidate passes")
                    return 1
                result = (best, child)
            elif action == "done":
                break

        best, child = result
        out = args.out or tempfile.mkdtemp(prefix="agent-result.")
        got = child.files.download("/work/calc.sh", out)
        log("winner: %s (from %s); fixed file on the host: %s" % (best, child.name, got))
        with open(got) as f:
            log("    " + [line for line in f if line.startswith("add()")][0].strip())
        # The parent never changed: its test still fails.
        log("parent %s still fails: exit %d" % (sb.name, sb.exec("sh /work/test.sh").exit_code))
        return 0
    except SandboxError as e:
        log("error: %s" % e)
        return 1
    finally:
        if not args.keep:
            for c in children:
                if c.exists():
                    c.remove()
            if sb.exists():
                sb.remove()
            log("removed %s" % ", ".join([sb.name] + [c.name for c in children]))


if __name__ == "__main__":
    sys.exit(main())
