#!/usr/bin/env python3
"""Lint of bats tests for assertions that can never fail.

bats runs a test under `set -e`, and errexit ignores two things:
  * `! cmd` (the negation of a pipeline never stops the shell), and
  * the failure of any command of an `a && b` list but the last.
So, in an @test body, a statement `! cmd` or `a && b` checks nothing unless
it is the test's last statement (then its status is the test's) or the last
of a subshell `( ... )` (then its status is the subshell's), or it has a
top-level `||` (`! cmd || false`, `a && b || false`). An `a && b` whose last
command is control flow (`break`, `continue`, `return`, `exit`, `skip`),
output (`echo`, `printf`) or an assignment decides what to do and checks
nothing: it is left alone. Conditions (`if`, `elif`, `while`, `until`),
quoted text, `$(...)`, `${...}`, `[[ ... ]]`, `(( ... ))` and heredocs are not
statements of the test; `run ! cmd` is fine. In a loop even the last
statement only checks the last iteration.

    tests/lint-bats.py FILE.bats ...   # prints FILE:LINE: finding; exit 1 if any,
                                       # 2 if it could not read a file
"""
import re
import sys

OPEN_LOOP = ("for", "while", "until", "select")
CONDITION = ("if", "elif", "while", "until")
PREFIXES = ("then", "do", "else", "{", "time")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z_0-9]*)\1")
CONTROL_TAIL = re.compile(r"(break|continue|return|exit|skip|echo|printf)\b|[A-Za-z_][A-Za-z_0-9]*(\[[^]]*\])?\+?=")


class Scan:
    """Turns a test body into logical lines of masked text: quotes,
    substitutions, [[ ]], (( )) and comments become `_`; a backslash-newline,
    or a line ending in `&&`, `||` or `|`, continues the logical line."""

    def __init__(self, text):
        self.s = text
        self.i = 0

    def skip_quote(self, q):  # self.i is past the opening quote
        s = self.s
        while self.i < len(s) and s[self.i] != q:
            if q == '"' and s[self.i] == "\\":
                self.i += 1
            elif q == '"' and s.startswith("$(", self.i):
                self.i += 2
                self.skip_parens()
                continue
            elif q == '"' and s.startswith("${", self.i):
                self.i += 2
                self.skip_braces()
                continue
            self.i += 1
        self.i += 1

    def skip_parens(self):  # past `(`: to the matching `)`
        depth = 1
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            self.i += 1
            if c == "\\":
                self.i += 1
            elif c in "'\"`":
                self.skip_quote(c)
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    return

    def skip_braces(self):  # past `${`: to the matching `}`
        s = self.s
        while self.i < len(s) and s[self.i] != "}":
            c = s[self.i]
            self.i += 1
            if c == "\\":
                self.i += 1
            elif c in "'\"":
                self.skip_quote(c)
            elif c == "$" and s.startswith("{", self.i):
                self.i += 1
                self.skip_braces()
        self.i += 1

    def lines(self, first_line):
        """Yields (line number, masked logical line)."""
        s = self.s
        line = first_line
        cur, start = [], line
        heredocs = []
        at_word = True
        while self.i < len(s):
            c = s[self.i]
            if c == "\n":
                self.i += 1
                line += 1
                for tag in heredocs:  # skip each body to its tag line
                    while self.i < len(s):
                        end = s.find("\n", self.i)
                        end = len(s) if end < 0 else end
                        body_line = s[self.i:end]
                        self.i = end + 1
                        line += 1
                        if body_line.strip() == tag:
                            break
                heredocs = []
                text = "".join(cur).rstrip()
                if text.endswith(("&&", "||", "|")):
                    cur.append(" ")
                else:
                    if text.strip():
                        yield start, text
                    cur, start = [], line
                at_word = True
                continue
            if c == "\\":
                if s.startswith("\n", self.i + 1):
                    line += 1
                    cur.append(" ")
                else:
                    cur.append("_")
                self.i += 2
                at_word = False
                continue
            if c == "#" and at_word:
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
                continue
            m = HEREDOC.match(s, self.i)
            if m and not s.startswith("<<<", self.i):
                heredocs.append(m.group(2))
                cur.append("<<_")
                self.i = m.end()
                at_word = False
                continue
            if c in "'\"`":
                self.i += 1
                self.skip_quote(c)
                cur.append("_")
            elif s.startswith(("$(", "<(", ">("), self.i):
                self.i += 2
                self.skip_parens()
                cur.append("_")
            elif s.startswith("${", self.i):
                self.i += 2
                self.skip_braces()
                cur.append("_")
            elif at_word and s.startswith("[[", self.i):
                end = s.find("]]", self.i)
                self.i = len(s) if end < 0 else end + 2
                cur.append("_")
            elif at_word and s.startswith("((", self.i):
                self.i += 2
                self.skip_parens()
                self.i += 1
                cur.append("_")
            else:
                cur.append(c)
                self.i += 1
                at_word = c in " \t;|&(){}"
                continue
            at_word = False
        text = "".join(cur).strip()
        if text:
            yield start, text


def statements(body, first_line):
    """[line, statement, in_loop, ends_subshell] for each simple statement."""
    stack = []
    out = []
    for line, text in Scan(body).lines(first_line):
        for stmt in re.split(r";;|;|(?<![&>])&(?![&>])", text):
            stmt = stmt.strip()
            while True:  # `then ! x`, `do a && b`, `( x`: the statement follows
                word = "(" if stmt.startswith("(") else stmt.split(" ", 1)[0]
                if word in PREFIXES or word == "(":
                    stmt = stmt[len(word):].strip()
                    if word in ("{", "("):
                        stack.append(word)
                    continue
                if word in ("if", "case") or word in OPEN_LOOP:
                    stack.append(word)
                break
            if stmt.startswith(")") and stack and stack[-1] == "(":
                stack.pop()
                if out:  # the statement before it is the subshell's last
                    out[-1][3] = True
                continue
            word = stmt.split(" ", 1)[0]
            if word in ("fi", "done", "esac", "}"):
                if stack:
                    stack.pop()
                continue
            if stack and stack[-1] == "case":  # `pattern) cmd`
                stmt = re.sub(r"^\(?[^()]*\)\s*", "", stmt)
            if not stmt or word in CONDITION or word in ("for", "select", "case"):
                continue
            closes = ")" in stmt and bool(stack) and stack[-1] == "("  # `(cd x && y) >f`
            if closes:
                stack.pop()
            out.append([line, stmt, any(w in OPEN_LOOP for w in stack), closes])
    return out


def lint(path):
    findings = []
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r'^@test\s+(.*?)\s*\{[ \t]*\n(.*?)^\}', text, re.S | re.M):
        first = text.count("\n", 0, m.start(2)) + 1
        stmts = statements(m.group(2), first)
        for n, (line, stmt, in_loop, ends_subshell) in enumerate(stmts):
            last = n == len(stmts) - 1 and not in_loop
            if last or ends_subshell or "||" in stmt:
                continue
            if stmt.startswith("! ") or stmt == "!":
                findings.append(f"{path}:{line}: `! cmd` mid-test never fails the test "
                                "(add `|| false`, or use `run !`)")
            elif "&&" in stmt and not CONTROL_TAIL.match(stmt.split("&&")[-1].strip()):
                findings.append(f"{path}:{line}: in `a && b` only the last command can fail "
                                "the test (write one assertion a line, or use `if`)")
    return findings


def main(paths):
    findings = [f for p in paths for f in lint(p)]
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # a file it cannot read: not a finding
        print(f"lint-bats: {e}", file=sys.stderr)
        sys.exit(2)
