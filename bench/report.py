#!/usr/bin/env python3
"""Turns bench/results/latest.json (written by bench.py in the same run) into
bench/results/latest.md, the plot data in bench/results/data/ and the PNG
plots (gnuplot), then prints latest.md.  Every figure is computed here from
the samples in latest.json; the only constants are the issue's targets."""
import json
import os
import shutil
import subprocess
import sys
import traceback

from cases import CASE_KEYS, ENGINE_CASES, TITLES  # bench/cases.py, shared with bench.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = os.path.join(ROOT, "bench", "results")
DATA = os.path.join(RES, "data")


def pct(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    rank = max(1, (p * len(s) + 99) // 100)
    return s[min(rank, len(s)) - 1]


def f(x, nd=2):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return ("%%.%df" % nd) % x


def ratio(a, b):
    return "%.1f×" % (a / b) if a and b else "–"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def write(path, lines):
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def gnuplot(script):
    if not shutil.which("gnuplot"):
        return False
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True, cwd=RES)
    if r.returncode != 0:
        print("gnuplot: " + r.stderr, file=sys.stderr)
    return r.returncode == 0


TERM = 'set terminal pngcairo noenhanced size 1000,560 font "sans,10"\n'


BASE_CASES = ("case1", "case2", "case3", "case45")  # the sections every report has


def run_of(r, case):
    """The run a case's numbers came from (bench.py `runs`/`provenance`; a latest.json
    from before them is one run)."""
    rid = r.get("provenance", {}).get(case)
    return r.get("runs", {}).get(rid) if rid else None


def mode(run):
    """The run's mode, with its BENCH_SET parameters."""
    sets = ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(run.get("set", {}).items()))
    return ("QUICK (short run)" if run["quick"] else "full") + (" with " + sets if sets else "")


def source_note(r, case):
    """Lines under a section heading: the case's failure in a later run, if any (failed_note),
    and a line when its numbers come from another run than the one in the machine table
    (a partial run, BENCH_CASES, merged into latest.json)."""
    run = run_of(r, case)
    if not run or run["date"] == r["machine"]["date"]:
        return failed_note(r, case)
    return failed_note(r, case) + ["*From a later partial run (`BENCH_CASES=%s`): %s, commit %s, %s mode, load average "
            "at start %s; the other sections are from the run in the machine table.*"
            % (",".join(run["cases"]), run["date"], run["commit"], mode(run).replace(" (short run)", ""),
               " ".join(run["loadavg"])), ""]



def clean(s, n=600, cell=False):
    """A reason as one line of Markdown for inline code (cell: in a table cell)."""
    s = " ".join(str(s).split()).replace("`", "'")
    s = s if len(s) <= n else s[:n] + "…"
    return s.replace("|", "\\|") if cell else s


def run_label(r, rid):
    run = r.get("runs", {}).get(rid)
    if not run:
        return rid or "?"
    return "%s (commit %s, %s mode)" % (run["date"], run["commit"], mode(run).split()[0])


def failed_note(r, case):
    """Lines under a section heading when the case failed in a run (bench.py `failed`)."""
    fl = r.get("failed", {}).get(case)
    if not fl:
        return []
    line = ("**This case failed** in the run of %s, after %s s: `%s`."
            % (run_label(r, fl.get("run")), fl.get("after_s", "?"), clean(fl.get("reason", "?"))))
    if all(k in r for k in CASE_KEYS.get(case, [case])):
        line += (" The figures below are the last ones that worked, from the run of %s."
                 % run_label(r, r.get("provenance", {}).get(case)))
    else:
        line += " No figures for it in this report."
    rec = fl.get("recovery") or []
    if rec:
        line += " After it: %s." % "; ".join(clean(x, 200) for x in rec)
    line += " (Its traceback and the daemons' last log lines are in latest.json, `failed`.)"
    return [line, ""]



def engine_info(r):
    """docker's, podman's and ctr's versions and skips ({} when neither ran): from the first of the
    cases they take part in that has them (a partial run merges only its cases' keys)."""
    for c in ENGINE_CASES:
        if r.get(c, {}).get("engine_info"):
            return r[c]["engine_info"]
    return {}


def engine_lines(c):
    """Lines under a section docker and podman take part in: which was skipped in its run, and why."""
    out = ["**%s skipped** in this run: %s" % (t, clean(why, 300))
           for t, why in c.get("engine_info", {}).get("skipped", {}).items()]
    return out + [""] if out else []


def header(r, md):
    """The title, the machine table, the runs merged, the failed cases, how it is measured."""
    m = r["machine"]
    runs = r.get("runs", {})
    md.append("# sandboxfs benchmarks: latest run")
    md.append("")
    if len(runs) > 1:
        md.append("Written by `make bench%s` (bench/run.sh) and merged with later partial runs "
                  "(`BENCH_CASES=...`): each figure comes from the run its section names, the "
                  "others from the run in the machine table (raw samples in `latest.json`). "
                  "Absolute numbers are noisy on this shared machine; quote the ratios."
                  % (" QUICK=1" if r["quick"] else ""))
    else:
        md.append("Written by `make bench%s` (bench/run.sh); every figure below comes from this run "
                  "(raw samples in `latest.json`). Absolute numbers are noisy on this shared machine; "
                  "quote the ratios." % (" QUICK=1" if r["quick"] else ""))
    md.append("")
    md.append(table(["machine", ""], [
        ["CPU", m["cpu"]], ["cores", m["cores"]], ["memory", m["mem_total"]],
        ["kernel", m["kernel"]],
        ["cgroup version (sandboxfs)", "v%s" % r.get("cgroup_version", "?")],
        ["load average at start", " ".join(m["loadavg"])],
        ["commit", m["commit"]], ["date", m["date"]],
        ["mode", "QUICK (short run)" if r["quick"] else "full"],
        ["bench wall time", "%.0f s" % r["elapsed_s"]],
        ["peers", "; ".join([m["runc"], m["crun"], m["bwrap"]] + list(engine_info(r).get("versions", {}).values()))],
    ]))
    md.append("")
    if len(runs) > 1:
        md.append("Runs merged here (the machine table's commit, date, mode, wall time and load are "
                  "the first one's):")
        md.append("")
        md.append(table(["run (date)", "commit", "mode", "cases", "wall time", "load average at start"],
                        [[x["date"], x["commit"], mode(x), ", ".join(
                            [c for c, rid in r["provenance"].items() if rid == k] +
                            ["%s (failed)" % c for c, fl in r.get("failed", {}).items() if fl.get("run") == k]),
                          "%.0f s" % x["elapsed_s"] if x.get("elapsed_s") else "–", " ".join(x["loadavg"])]
                         for k, x in sorted(runs.items())]))
        md.append("")
    failed = r.get("failed", {})
    if failed:
        md.append("**Failed cases.** Each case runs on its own: one that fails is reported here and in "
                  "its section, what it left is removed, and the other cases run and keep their results.")
        md.append("")
        md.append(table(["case", "section", "failed in the run of", "after", "reason", "figures in this report"],
                        [[c, "; ".join(TITLES.get(c, [c])), run_label(r, fl.get("run")),
                          "%s s" % fl.get("after_s", "?"), "`%s`" % clean(fl.get("reason", "?"), 300, cell=True),
                          ("from the run of %s" % run_label(r, r.get("provenance", {}).get(c)))
                          if all(k in r for k in CASE_KEYS.get(c, [c])) else "none"]
                         for c, fl in failed.items()]))
        md.append("")
    md.append("## How it is measured")
    md.append("")
    lim = r.get("limits", {})
    md.append("- Times are taken outside the daemon by `bench/bench.py` with "
              "`clock_gettime(CLOCK_MONOTONIC)`; the daemon's own `create_usec` (request to "
              "running, from `/sbx/NAME/stats`) is shown beside them.")
    md.append("- sandboxfs create = `mkdir` until `status` reads `running` (status polled every "
              "%.0f µs, so the outside figure includes up to one poll interval). runc/crun create = "
              "`run -d` of `/bin/sleep` until the command returns (the container process is running "
              "then). bwrap = the whole `bwrap --unshare-all ... /bin/true` process (start to exit: "
              "bwrap has no detached mode), so its create and cycle are the same number."
              % (r["poll_s"] * 1e6))
    md.append("- Same busybox rootfs (`build/images/busybox`) for all: sandboxfs mounts an overlay "
              "on it; runc/crun use it read-only (no overlay); bwrap binds it read-only. "
              "Namespaces pid, mount, uts, ipc, net, cgroup for sandboxfs, runc and crun "
              "(bwrap `--unshare-all`: also user). Limits: every sandbox gets the `mkdir` defaults "
              "read from a probe sandbox's `config` (memory %s bytes, pids %s, cpus %s) and the OCI "
              "bundles get the same memory, pids and CFS quota; bwrap sets no cgroup limits."
              % (lim.get("memory"), lim.get("pids"), lim.get("cpus")))
    md.append("- Peers and sandboxfs are interleaved: each round runs every method once, in a "
              "freshly shuffled order. Warm-ups are discarded: %s rounds in case 1, one burst of %s "
              "per method in case 2, 50 file reads before case 4, one pass over every node in case 3."
              % (r.get("case1", {}).get("warmup", "–"), r.get("case2", {}).get("warmup_size", "–")))
    md.append("- The main daemon runs with `--no-net` (sandboxes have only `lo`, like the runc/crun/"
              "bwrap peers, whose network namespaces are empty); networking is measured in case 6 "
              "with a second daemon.")
    if engine_info(r):
        md.append("- docker, podman and ctr (cases 1, 7 and 16), as users run them: `run` of an image made "
                  "by `import` of a tar of the same root (never pulled), `--network none`, the same "
                  "memory, pids and CPU limits. docker: a dockerd the bench starts (Debian's docker.io, "
                  "its own containerd, runc) with its own socket, data-root and exec-root under the "
                  "bench's temporary dir, `--iptables=false --ip6tables=false --ip-forward=false "
                  "--bridge=none`, stopped at the end. podman: `--runtime runc --cgroup-manager "
                  "cgroupfs`, its own `--root`, `--runroot` and `--tmpdir` there too. ctr "
                  "(containerd's own client, as Kubernetes' runtime is driven): `ctr run` on that "
                  "dockerd's containerd, in a namespace of its own, of the docker image (`docker save` "
                  "| `ctr image import`), the same memory and CPU limits (ctr has no pids option), "
                  "no network (its default: an empty namespace). Their images "
                  "sit on overlay2/overlay (a copy of the root), as for any user of them.")
    for n in r.get("notes", []):
        md.append("- " + n)
    if r.get("crun_hybrid"):
        md.append("- crun on the unmodified host layout: %s." % r["crun_hybrid"])
    for tool, why in r.get("skipped", {}).items():
        md.append("- **%s skipped**: %s" % (tool, why))
    md.append("")



def sec_case1(r, md):
    """Section 1."""
    c1 = r["case1"]
    S = c1["samples"]
    methods = c1["methods"]
    base = pct(S["sandboxfs"]["create"], 50)
    base95 = pct(S["sandboxfs"]["create"], 95)
    md.append("## 1. Create to running, one at a time")
    md.append("")
    md += source_note(r, "case1") + engine_lines(c1)
    rows = []
    for meth in methods:
        xs = [x / 1e3 for x in S[meth]["create"]]
        rows.append([meth, len(xs), f(pct(xs, 50)), f(pct(xs, 95)), f(pct(xs, 99)),
                     ratio(pct(S[meth]["create"], 50), base), ratio(pct(S[meth]["create"], 95), base95)])
    dc = [x / 1e3 for x in S["sandboxfs"]["daemon_create"]]
    rows.insert(1, ["sandboxfs, daemon's `create_usec`", len(dc), f(pct(dc, 50)), f(pct(dc, 95)),
                    f(pct(dc, 99)), "", ""])
    md.append(table(["", "n", "p50 ms", "p95 ms", "p99 ms", "p50 vs sandboxfs", "p95 vs sandboxfs"], rows))
    md.append("")
    md.append("Ratios are peer ÷ sandboxfs (outside measurement): above 1× the peer is slower. "
              "Plot: [create_latency.png](create_latency.png).")
    md.append("")
    ph = S["sandboxfs"].get("phases", [])
    if ph:
        keys = [k for k in ph[0] if k != "create_usec"]
        md.append("Where sandboxfs's create time goes (daemon's per-phase timings, same samples):")
        md.append("")
        md.append(table(["phase", "p50 µs", "p95 µs", "p99 µs"],
                        [[k.replace("create_", "").replace("_usec", ""),
                          f(pct([p[k] for p in ph], 50)), f(pct([p[k] for p in ph], 95)),
                          f(pct([p[k] for p in ph], 99))] for k in keys]))
        md.append("")
    for t, argv in sorted(c1.get("engine_argv", {}).items()):
        md.append("%s create = `%s` until the command returns (the container is running then)." % (t, argv))
        md.append("")
    md.append("Create + stop + remove cycle (sandboxfs: `mkdir`, running, `rmdir` returns; "
              "runc/crun: `run -d` then `delete -f`; docker/podman: `run -d` then `rm -f`; ctr: `run -d` then `task rm -f` and `container rm`; the stats "
              "read between is not counted):")
    md.append("")
    cb = pct(S["sandboxfs"]["cycle"], 50)
    rows = []
    for meth in methods:
        xs = [x / 1e3 for x in S[meth]["cycle"]]
        rm = [x / 1e3 for x in S[meth].get("remove", [])]
        rows.append([meth, len(xs), f(pct(xs, 50)), f(pct(xs, 95)), f(pct(xs, 99)),
                     ratio(pct(S[meth]["cycle"], 50), cb), f(pct(rm, 50)) if rm else "–"])
    md.append(table(["", "n", "cycle p50 ms", "p95 ms", "p99 ms", "p50 vs sandboxfs",
                     "remove alone p50 ms"], rows))
    md.append("")
    for meth in methods:
        xs = sorted(x / 1e3 for x in S[meth]["create"])
        write(os.path.join(DATA, "create_%s.dat" % meth),
              ["%g %g" % (x, (i + 1) / len(xs)) for i, x in enumerate(xs)])
    plot = TERM + 'set output "create_latency.png"\nset title "Create to running, one at a time (CDF, %d samples each, warm-ups discarded)"\n' % len(S["sandboxfs"]["create"])
    plot += 'set logscale x\nset xlabel "ms (log)"\nset ylabel "fraction of creates"\nset key bottom right\nset grid\n'
    plot += "plot " + ", ".join('"data/create_%s.dat" using 1:2 with steps lw 2 title "%s"' % (x, x) for x in methods) + "\n"
    gnuplot(plot)



def sec_case2(r, md):
    """Section 2."""
    c2 = r["case2"]
    md.append("## 2. Burst: N created at once")
    md.append("")
    md += source_note(r, "case2")
    md.append("`sandboxfs-mkdir`: N threads, released together by a barrier, each `mkdir`s one; "
              "`sandboxfs-ctl`: one writer writes N `create` lines to `/sbx/ctl`, one write each; "
              "runc/crun: N `run -d` started together. Completion = time from the burst's start "
              "until that sandbox was seen running (sandboxfs: status polled every %.0f µs "
              "across all N) or its `run -d` returned." % (r["poll_s"] * 5e6))
    md.append("")
    for n, runs in c2["runs"].items():
        allr = {k: sorted(x["all_running"] for x in v) for k, v in runs.items()}
        b = allr["sandboxfs-mkdir"][len(allr["sandboxfs-mkdir"]) // 2]
        rows = []
        for meth in c2["methods"]:
            comp = [c / 1e3 for x in runs[meth] for c in x["completion"]]
            a = allr[meth][len(allr[meth]) // 2] / 1e3
            dcr = [d / 1e3 for x in runs[meth] for d in x.get("daemon_create", [])]
            rows.append([meth, len(runs[meth]), f(a), ratio(allr[meth][len(allr[meth]) // 2], b),
                         f(pct(comp, 50)), f(pct(comp, 95)), f(pct(comp, 99)),
                         ("%s / %s" % (f(pct(dcr, 50)), f(pct(dcr, 95)))) if dcr else "–"])
            last = runs[meth][-1]["completion"]
            xs = sorted(c / 1e3 for c in last)
            write(os.path.join(DATA, "burst_%s_%s.dat" % (n, meth)),
                  ["0 0"] + ["%g %d" % (x, i + 1) for i, x in enumerate(xs)])
        md.append("**%s at once** (%d run(s) per method; all-running is the median over runs)" % (n, len(runs["sandboxfs-mkdir"])))
        md.append("")
        md.append(table(["", "runs", "all running ms", "vs sandboxfs-mkdir", "per-sandbox p50 ms",
                         "p95 ms", "p99 ms", "daemon create_usec p50 / p95 ms"], rows))
        md.append("")
        plot = TERM + 'set output "burst_%s.png"\nset title "Burst of %s: sandboxes running vs time since the burst started (last run)"\n' % (n, n)
        plot += 'set xlabel "ms since start"\nset ylabel "running"\nset key bottom right\nset grid\nset yrange [0:%d]\n' % (int(n) + 2)
        plot += "plot " + ", ".join('"data/burst_%s_%s.dat" using 1:2 with steps lw 2 title "%s"' % (n, x, x) for x in c2["methods"]) + "\n"
        gnuplot(plot)
    md.append("Plots: " + ", ".join("[burst_%s.png](burst_%s.png)" % (n, n) for n in c2["runs"]) + ".")
    md.append("")



def sec_case3(r, md):
    """Section 3."""
    c3 = r["case3"]
    md.append("## 3. Registry micro-benchmark (ns/op)")
    md.append("")
    md += source_note(r, "case3")
    md.append("`build/bench/registry_bench` (bench/registry_bench.c) drives `engine/registry.c` "
              "(liburcu `cds_lfht`, lookups under `urcu_memb_read_lock`) and a baseline with the same "
              "API shape under one pthread mutex (chained hash tables by name and id, same hashes, "
              "reference-counted nodes). `get_*` = lock, find, pin, unpin (the daemon's lookup path); "
              "`find_name` = bare find inside the read-side section; `insert`/`remove` = N more "
              "nodes added then removed; `foreach` per node visited; `2 readers + writer` = two threads "
              "doing `get_name` while a third removes and adds nodes continuously (ns per lookup per "
              "thread; writer = ns per remove+add). %d iterations per single-thread op, %.1f s "
              "concurrent phase, median of %d run(s). Mutex ÷ RCU above 1× means RCU is faster."
              % (c3["iters"], c3["secs"], c3["runs"]))
    md.append("")
    idx = {(x["impl"], x["op"], x["size"]): x["ns_per_op"] for x in c3["rows"]}
    ops = []
    for x in c3["rows"]:
        if x["op"] not in ops:
            ops.append(x["op"])
    sizes = sorted({x["size"] for x in c3["rows"]})
    names = {"lookup_name_2readers_1writer": "get_name, 2 readers + writer",
             "writer_churn_add_del": "writer remove+add, beside 2 readers",
             "foreach_per_node": "foreach (per node)"}
    rows = []
    for op in ops:
        row = [names.get(op, op)]
        for sz in sizes:
            a, b = idx.get(("rcu", op, sz)), idx.get(("mutex", op, sz))
            row += [f(a, 1), f(b, 1), ratio(b, a)]
        rows.append(row)
    head = ["op"]
    for sz in sizes:
        head += ["RCU @%d" % sz, "mutex @%d" % sz, "mutex÷RCU"]
    md.append(table(head, rows))
    md.append("")
    md.append("Plot: [registry.png](registry.png).")
    md.append("")
    plotops = ["get_name", "get_id", "lookup_name_2readers_1writer", "insert", "remove"]
    for impl in ("rcu", "mutex"):
        for op in plotops:
            write(os.path.join(DATA, "registry_%s_%s.dat" % (impl, op)),
                  ["%d %g" % (sz, idx[(impl, op, sz)]) for sz in sizes if (impl, op, sz) in idx])
    plot = TERM + 'set output "registry.png"\nset title "Registry: ns/op vs number of sandboxes (RCU solid, mutex dashed)"\n'
    plot += 'set logscale xy\nset xlabel "sandboxes in the registry"\nset ylabel "ns/op (log)"\nset key outside right\nset grid\n'
    parts = []
    for i, op in enumerate(plotops):
        parts.append('"data/registry_rcu_%s.dat" using 1:2 with linespoints lw 2 lc %d dt 1 title "RCU %s"' % (op, i + 1, names.get(op, op)))
        parts.append('"data/registry_mutex_%s.dat" using 1:2 with linespoints lw 2 lc %d dt 2 title "mutex %s"' % (op, i + 1, names.get(op, op)))
    gnuplot(plot + "plot " + ", ".join(parts) + "\n")



def sec_case4(r, md):
    """Section 4."""
    c45 = r["case45"]
    md.append("## 4. File API overhead")
    md.append("")
    md += source_note(r, "case45")
    md.append("With N sandboxes live: `stat` and full read (open, read to EOF, close) of "
              "`/sbx/r-0/stats` (µs), and its re-read on a held handle (`pread` at offset 0, "
              "which remakes the content: one FUSE request); `ls /sbx` = `listdir` of the mount, and `cat /sbx/*/stats` = "
              "read every sandbox's stats file, both in-process (no `ls`/`cat` process start, ms); "
              "`grep . */status` = the shell command `sh -c 'grep . /sbx/*/status'` (its glob and one "
              "grep, ms), and in brackets the same command on `/proc/self/status` alone: what the "
              "two processes cost.")
    md.append("")
    rows = []
    for n, a in sorted(c45["api"].items(), key=lambda t: int(t[0])):
        rows.append([n, "%s / %s / %s" % tuple(f(pct(a["stat_stats"], p), 1) for p in (50, 95, 99)),
                     "%s / %s / %s" % tuple(f(pct(a["read_stats"], p), 1) for p in (50, 95, 99)),
                     "%s / %s" % tuple(f(pct(a["reread_stats"], p), 1) for p in (50, 95))
                     if "reread_stats" in a else "-",
                     "%s / %s" % tuple(f(pct([x / 1e3 for x in a["ls"]], p), 2) for p in (50, 95)),
                     "%s / %s" % tuple(f(pct([x / 1e3 for x in a["cat_all_stats"]], p), 2) for p in (50, 95)),
                     "%s / %s (%s)" % (tuple(f(pct([x / 1e3 for x in a["grep_status"]], p), 2) for p in (50, 95))
                                       + (f(pct([x / 1e3 for x in a["grep_base"]], 50), 2),))
                     if "grep_status" in a else "-"])
    md.append(table(["live sandboxes", "stat p50/p95/p99 µs", "read stats p50/p95/p99 µs",
                     "re-read held p50/p95 µs", "ls p50/p95 ms", "cat */stats p50/p95 ms",
                     "grep . */status p50/p95 ms (one file of /proc)"], rows))
    md.append("")



def sec_case5(r, md):
    """Section 5."""
    c45 = r["case45"]
    pts = c45["points"]
    md.append("## 5. Scaling: create latency and daemon memory vs live sandboxes")
    md.append("")
    md += source_note(r, "case45")
    md.append("Sandboxes created one at a time up to %d and kept running; daemon memory = VmRSS "
              "of the sandboxfs process (%d KiB before the first)." % (len(pts), c45["rss_start_kib"]))
    md.append("")
    edges = []
    e = 1
    while e < len(pts):
        edges.append(e)
        e *= 10
    edges.append(len(pts))
    rows = []
    lo = 0
    for hi in edges:
        seg = pts[lo:hi]
        if not seg:
            continue
        ext = [p["create_us"] / 1e3 for p in seg]
        dm = [p["daemon_create_us"] / 1e3 for p in seg]
        rows.append(["%d–%d" % (lo + 1, hi), f(pct(ext, 50)), f(pct(ext, 95)), f(pct(dm, 50)),
                     f(pct(dm, 95)), "%.1f" % (seg[-1]["rss_kib"] / 1024)])
        lo = hi
    md.append(table(["live (n-th create)", "create p50 ms", "p95 ms", "daemon create_usec p50 ms",
                     "p95 ms", "daemon RSS at end MiB"], rows))
    cl = c45.get("claims", {})
    if cl:
        first = cl[min(cl, key=int)]
        md.append("")
        md.append("Claims with that many live (at each of those counts: a pool of 2, each claim "
                  "from a full pool, the claimed sandbox removed before the next, the pool after):")
        md.append("")
        md.append(table(["live sandboxes", "n", "claim (`mkdir`) p50 ms", "p95 ms",
                         "daemon `claim_usec` p50 µs", "p95 µs", "÷ at %s live (p50)" % min(cl, key=int)],
                        [[n, len(c["mkdir_us"]), f(pct(c["mkdir_us"], 50) / 1e3),
                          f(pct(c["mkdir_us"], 95) / 1e3), f(pct(c["claim_usec"], 50), 1),
                          f(pct(c["claim_usec"], 95), 1),
                          ratio(pct(c["mkdir_us"], 50), pct(first["mkdir_us"], 50))]
                         for n, c in sorted(cl.items(), key=lambda t: int(t[0]))]))
    rm = [x / 1e3 for x in c45["remove_us"]]
    md.append("")
    md.append("Removing them (`rmdir`, newest first): p50 %s ms, p95 %s ms. Plot: "
              "[scaling.png](scaling.png)." % (f(pct(rm, 50)), f(pct(rm, 95))))
    md.append("")
    write(os.path.join(DATA, "scaling.dat"),
          ["%d %g %g %g" % (p["live"], p["create_us"] / 1e3, p["daemon_create_us"] / 1e3,
                            p["rss_kib"] / 1024) for p in pts])
    plot = TERM + 'set output "scaling.png"\nset title "Create latency and daemon RSS vs live sandboxes"\n'
    plot += 'set xlabel "live sandboxes"\nset ylabel "create ms"\nset y2label "daemon RSS MiB"\nset ytics nomirror\nset y2tics\nset grid\nset key top left\n'
    plot += ('plot "data/scaling.dat" using 1:2 with points pt 7 ps 0.4 title "create (outside)", '
             '"data/scaling.dat" using 1:3 with points pt 6 ps 0.4 title "create_usec (daemon)", '
             '"data/scaling.dat" using 1:4 axes x1y2 with lines lw 2 title "daemon RSS"\n')
    gnuplot(plot)



def sec_net(r, md):
    """Section 6."""
    nt = r.get("net")
    if nt:
        ni = r.get("net_info", {})
        NS = nt["samples"]
        md.append("## 6. Networking: create with networking on vs off (issue 4)")
        md.append("")
        md += source_note(r, "net")
        md.append("Two daemons run side by side: the main one with `--no-net` (every other case "
                  "uses it) and a second one with networking on: `--bridge %s --subnet %s` (a bridge "
                  "made for this run and removed after it). Rounds alternate between them in a "
                  "shuffled order, one `mkdir` at a time until `running`; %d warm-up rounds "
                  "discarded. `create_net_usec` is the daemon's network phase (veth pair made, moved "
                  "into the sandbox's netns, addressed, attached to the bridge over rtnetlink)."
                  % (ni.get("bridge"), ni.get("subnet"), nt["warmup"]))
        md.append("")
        nbase = pct(NS["off"]["create"], 50)
        rows = []
        for m in ("off", "on"):
            c = NS[m]
            rows.append(["networking " + m, len(c["create"]),
                         "%s / %s / %s" % tuple(f(pct(c["create"], p) / 1e3) for p in (50, 95, 99)),
                         ratio(pct(c["create"], 50), nbase),
                         "%s / %s" % tuple(f(pct(c["daemon"], p) / 1e3) for p in (50, 95)),
                         ("%s / %s / %s" % tuple(f(pct(c["net"], p) / 1e3) for p in (50, 95, 99)))
                         if m == "on" else "–",
                         ("%s / %s" % tuple(f(pct(c["remove"], p) / 1e3) for p in (50, 95)))
                         if c.get("remove") else "–"])
        md.append(table(["", "n", "create p50 / p95 / p99 ms", "p50 vs off",
                         "daemon create_usec p50 / p95 ms", "create_net_usec p50 / p95 / p99 ms",
                         "`rmdir` p50 / p95 ms"], rows))
        md.append("")
        ph = NS["on"].get("phases", [])
        if ph:
            keys = [k for k in ph[0] if k != "create_usec"]
            md.append("Per-phase with networking on (daemon's timings, same samples), µs p50 / p95: " +
                      ", ".join("%s %s / %s" % (k.replace("create_", "").replace("_usec", ""),
                                                f(pct([p[k] for p in ph], 50)), f(pct([p[k] for p in ph], 95)))
                                for k in keys) + ".")
            md.append("")
        n = nt["burst_n"]
        B = nt["burst"]
        rows = []
        ab = sorted(x["all_running"] for x in B["off"])
        ab = ab[len(ab) // 2]
        for m in ("off", "on"):
            allr = sorted(x["all_running"] for x in B[m])
            a = allr[len(allr) // 2]
            comp = [c / 1e3 for x in B[m] for c in x["completion"]]
            dcr = [d / 1e3 for x in B[m] for d in x["daemon_create"]]
            net = [d / 1e3 for x in B[m] for d in x["create_net"]]
            rows.append(["networking " + m, len(B[m]), f(a / 1e3), ratio(a, ab),
                         "%s / %s / %s" % (f(pct(comp, 50)), f(pct(comp, 95)), f(pct(comp, 99))),
                         "%s / %s" % (f(pct(dcr, 50)), f(pct(dcr, 95))),
                         ("%s / %s / %s" % (f(pct(net, 50)), f(pct(net, 95)), f(max(net))))
                         if m == "on" else "–",
                         f(pct([x["all_removed"] for x in B[m]], 50))
                         if all("all_removed" in x for x in B[m]) else "–"])
        md.append("**Burst of %d `mkdir`s at once** (%d run(s) each, interleaved; one burst of %d "
                  "per daemon first, discarded; all-running is the median over runs):"
                  % (n, len(B["on"]), nt["burst_warm"]))
        md.append("")
        md.append(table(["", "runs", "all running ms", "vs off", "per-sandbox p50 / p95 / p99 ms",
                         "daemon create_usec p50 / p95 ms", "create_net_usec p50 / p95 / max ms",
                         "all %d `rmdir`ed at once ms (median)" % n], rows))
        cr = nt.get("ctl_remove")
        if cr:
            md.append("")
            md.append("One more burst of %d on each daemon, removed through `remove NAME...` on `/sbx/ctl` "
                      "(25 names a write, the writes at once; each write's removals run at once): all "
                      "removed in %s ms with networking off, %s ms on (the `rmdir`s of one directory "
                      "run one after another in the kernel, whatever the daemon does)."
                      % (n, f(cr["off"]), f(cr["on"])))
        md.append("")
        single = pct(NS["on"]["net"], 50)
        bnet = [d for x in B["on"] for d in x["create_net"]]
        md.append("The network phase is %s ms alone (p50) and %s ms p50 / %s ms p95 inside the burst "
                  "(%s the single figure at p50). The kernel's rtnl lock serialises device creation "
                  "(veth creation, the move into a netns, addresses and bridge ports all take it), so "
                  "concurrent creates queue for it however the daemon's own locking is arranged: the "
                  "network phase grows with the burst, and device creation across the whole host "
                  "(including the other engineer's test suite on this machine) shares that one lock. "
                  "Plot: [net_create.png](net_create.png)."
                  % (f(single / 1e3), f(pct(bnet, 50) / 1e3), f(pct(bnet, 95) / 1e3),
                     ratio(pct(bnet, 50), single)))
        md.append("")
        for m in ("off", "on"):
            xs = sorted(x / 1e3 for x in NS[m]["create"])
            write(os.path.join(DATA, "net_create_%s.dat" % m),
                  ["%g %g" % (x, (i + 1) / len(xs)) for i, x in enumerate(xs)])
        xs = sorted(x / 1e3 for x in NS["on"]["net"])
        write(os.path.join(DATA, "net_phase.dat"), ["%g %g" % (x, (i + 1) / len(xs)) for i, x in enumerate(xs)])
        plot = TERM + 'set output "net_create.png"\nset title "Create to running with networking on vs off, one at a time (CDF, %d samples each)"\n' % len(NS["on"]["create"])
        plot += 'set logscale x\nset xlabel "ms (log)"\nset ylabel "fraction"\nset key bottom right\nset grid\n'
        plot += ('plot "data/net_create_off.dat" using 1:2 with steps lw 2 title "create, --no-net", '
                 '"data/net_create_on.dat" using 1:2 with steps lw 2 title "create, networking on", '
                 '"data/net_phase.dat" using 1:2 with steps lw 2 dt 2 title "create_net_usec (network phase)"\n')
        gnuplot(plot)



def sec_tti(r, md):
    """Section 7."""
    tt = r.get("tti")
    if tt:
        LB = [0.11, 0.44, 1.05, 2.66]  # public leaderboard medians, s (reference, not measured)
        TS = tt["samples"]
        meths = tt["methods"]
        md.append("## 7. Time to interactive (issue 8)")
        md.append("")
        md += source_note(r, "tti") + engine_lines(tt)
        md.append("From the create request to the first bytes of a command's output. sandboxfs: "
                  "`mkdir`, then at once open `NAME/exec` read+write (a write waits while the sandbox "
                  "is creating), write `echo hi`, read until the first bytes. runc/crun: `run` "
                  "(foreground, not detached) of a bundle whose process is `/bin/sh -c 'echo hi'`, "
                  "start until the first bytes on its stdout pipe. bwrap: `bwrap --unshare-all ... "
                  "/bin/sh -c 'echo hi'`, likewise; %s. Same image and limits as case 1. Interleaved, one "
                  "at a time, shuffled each round; %d warm-up rounds and one burst of %d per method "
                  "discarded. Reference lines, **not measured here**: public sandbox leaderboard "
                  "medians %s s." % ("; ".join("%s: `%s`, likewise" % kv for kv in sorted(tt.get("engine_argv", {}).items()))
                                     or "no docker or podman in this run",
                                     tt["warmup"], tt["burst_warm"], ", ".join("%g" % x for x in LB)))
        md.append("")
        tbase, tbase95 = pct(TS["sandboxfs"], 50), pct(TS["sandboxfs"], 95)
        rows = []
        for m in meths:
            xs = TS[m]
            rows.append([m, len(xs), f(pct(xs, 50) / 1e3), f(pct(xs, 95) / 1e3), f(pct(xs, 99) / 1e3),
                         ratio(pct(xs, 50), tbase), ratio(pct(xs, 95), tbase95)])
        for x in LB:
            rows.append(["leaderboard median (reference, not measured)", "–", f(x * 1e3), "", "",
                         ratio(x * 1e6, tbase), ""])
        md.append(table(["one at a time", "n", "p50 ms", "p95 ms", "p99 ms", "p50 vs sandboxfs",
                         "p95 vs sandboxfs"], rows))
        md.append("")
        for n, runs in sorted(tt["bursts"].items(), key=lambda t: int(t[0])):
            rows = []
            b = sorted(x["all"] for x in runs["sandboxfs"])
            b = b[len(b) // 2]
            for m in meths:
                al = sorted(x["all"] for x in runs[m])
                a = al[len(al) // 2]
                comp = [c for x in runs[m] for c in x["completion"]]
                rows.append([m, len(runs[m]), f(a / 1e3), ratio(a, b), f(pct(comp, 50) / 1e3),
                             f(pct(comp, 95) / 1e3), f(pct(comp, 99) / 1e3)])
            md.append("**TTI burst of %s at once** (N threads released by a barrier; all interactive "
                      "= median over runs):" % n)
            md.append("")
            md.append(table(["", "runs", "all interactive ms", "vs sandboxfs", "per-sandbox p50 ms",
                             "p95 ms", "p99 ms"], rows))
            md.append("")
            lost = ["%s: %d of %d (%s)" % (m, sum(x.get("failed", 0) for x in runs[m]), int(n) * len(runs[m]),
                                          clean(next((x["errors"][0] for x in runs[m] if x.get("errors")), ""), 160))
                    for m in meths if any(x.get("failed") for x in runs[m])]
            if lost:
                md.append("Runs of a peer that failed in these bursts (left out of its figures; its "
                          "\"all interactive\" is then its last successful run): %s." % "; ".join(lost))
                md.append("")
        md.append("Plot: [tti.png](tti.png) (one at a time, CDF, leaderboard medians as vertical lines).")
        md.append("")
        for m in meths:
            xs = sorted(x / 1e3 for x in TS[m])
            write(os.path.join(DATA, "tti_%s.dat" % m), ["%g %g" % (x, (i + 1) / len(xs)) for i, x in enumerate(xs)])
        plot = TERM + 'set output "tti.png"\nset title "Time to interactive, one at a time (CDF, %d samples each; dashed: leaderboard medians, not measured)"\n' % len(TS["sandboxfs"])
        plot += 'set logscale x\nset xlabel "ms (log)"\nset ylabel "fraction"\nset key bottom right\nset grid\nset yrange [0:1]\n'
        for x in LB:
            plot += 'set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lc rgb "gray40"\n' % (x * 1e3, x * 1e3)
            plot += 'set label "%g s" at %g, graph 0.95 left offset 0.3,0 tc rgb "gray40"\n' % (x, x * 1e3)
        plot += 'set xrange [*:%g]\n' % (LB[-1] * 1e3 * 1.5)
        plot += "plot " + ", ".join('"data/tti_%s.dat" using 1:2 with steps lw 2 title "%s"' % (m, m) for m in meths) + "\n"
        gnuplot(plot)



def sec_fork(r, md):
    """Section 8."""
    fk = r.get("fork")
    if fk:
        FS = fk["single"]
        md.append("## 8. Fork, ns backend (issue 9)")
        md.append("")
        md += source_note(r, "fork")
        md.append("`fork_mode fs`: a child gets a copy-on-write snapshot of the source's files and "
                  "starts its processes afresh. Outside time = `fork B` written to `A/ctl` until "
                  "`B/status` reads `running`; each round also does one plain `mkdir` create "
                  "(shuffled order) for comparison; %d warm-up rounds discarded. The source has a small "
                  "upper layer (one file)." % fk["warmup"])
        md.append("")
        rows = [["fork, outside (write to running)", len(FS["fork"])] +
                [f(pct(FS["fork"], p) / 1e3) for p in (50, 95, 99)] + [ratio(pct(FS["fork"], 50), pct(FS["create"], 50))],
                ["  `fork` write returns (checkpoint taken)", len(FS["fork_write"])] +
                [f(pct(FS["fork_write"], p) / 1e3) for p in (50, 95, 99)] + [""]]
        for k in ("fork_freeze_usec", "fork_checkpoint_usec", "fork_restore_usec", "fork_usec"):
            xs = [p[k] for p in FS["phases"] if k in p]
            rows.append(["  child's `%s`" % k, len(xs)] + [f(pct(xs, p) / 1e3) for p in (50, 95, 99)] + [""])
        rows.append(["create (`mkdir`), same rounds", len(FS["create"])] +
                    [f(pct(FS["create"], p) / 1e3) for p in (50, 95, 99)] + ["1.0×"])
        md.append(table(["single fork", "n", "p50 ms", "p95 ms", "p99 ms", "p50 vs create"], rows))
        md.append("")
        B = fk["bursts"]
        comp = [c for x in B for c in x["completion"]]
        allr = sorted(x["all_running"] for x in B)
        dfk = [d for x in B for d in x["daemon_fork"]]
        md.append("**%d-way burst from one checkpoint** (`fork c1 ... c%d` in one write; %d run(s); a "
                  "burst of %d first, discarded). Reference, **not measured here**: a published "
                  "Firecracker fork service, 25-way burst p50 1.27 s, p95 3.14 s."
                  % (fk["burst_n"], fk["burst_n"], len(B), fk["burst_warm"]))
        md.append("")
        ref50, ref95 = 1.27e6, 3.14e6
        md.append(table(["", "p50 ms", "p95 ms", "all running ms (median of runs)", "write returned ms",
                         "daemon fork_usec p50 / p95 ms"],
                        [["sandboxfs ns", f(pct(comp, 50) / 1e3), f(pct(comp, 95) / 1e3),
                          f(allr[len(allr) // 2] / 1e3),
                          f(sorted(x["write_returned"] for x in B)[len(B) // 2] / 1e3),
                          "%s / %s" % (f(pct(dfk, 50) / 1e3), f(pct(dfk, 95) / 1e3))],
                         ["Firecracker fork service (reference, not measured)", f(ref50 / 1e3),
                          f(ref95 / 1e3), "–", "–", "–"],
                         ["reference ÷ sandboxfs", ratio(ref50, pct(comp, 50)), ratio(ref95, pct(comp, 95)),
                          "", "", ""]]))
        md.append("")
        md.append("**Fork time vs the source's upper-layer size** (files of 1 MiB random bytes written "
                  "into the source through `exec` first; one fork per size discarded as warm-up; %d "
                  "forks per size):" % (len(fk["sizes"][0]["samples"]) if fk["sizes"] else 0))
        md.append("")
        rows, dat = [], []
        z = None
        for sz in fk["sizes"]:
            SZ = sz["samples"]
            tot = [x["total"] for x in SZ]
            cp = [x.get("fork_checkpoint_usec", 0) for x in SZ]
            fr = [x.get("fork_freeze_usec", 0) for x in SZ]
            rs = [x.get("fork_restore_usec", 0) for x in SZ]
            z = z or pct(tot, 50)
            rows.append([sz["mb"], len(SZ), f(pct(tot, 50) / 1e3), f(pct(tot, 95) / 1e3),
                         f(pct(fr, 50) / 1e3), f(pct(cp, 50) / 1e3), f(pct(rs, 50) / 1e3),
                         ratio(pct(tot, 50), z)])
            dat.append("%g %g %g %g %g %g" % (sz["mb"], pct(tot, 50) / 1e3, pct(tot, 95) / 1e3,
                                              pct(cp, 50) / 1e3, pct(fr, 50) / 1e3, pct(rs, 50) / 1e3))
        md.append(table(["upper MB", "n", "fork p50 ms", "p95 ms", "freeze p50 ms", "checkpoint p50 ms",
                         "restore p50 ms", "p50 vs 0 MB"], rows))
        md.append("")
        md.append("Plot: [fork_size.png](fork_size.png).")
        md.append("")
        write(os.path.join(DATA, "fork_size.dat"), dat)
        plot = TERM + 'set output "fork_size.png"\nset title "ns fork time vs the source\'s upper-layer size (p50, bars to p95)"\n'
        plot += 'set xlabel "upper layer MB"\nset ylabel "ms"\nset key top left\nset grid\nset xrange [-5:*]\n'
        plot += ('plot "data/fork_size.dat" using 1:2:2:3 with yerrorlines lw 2 title "fork, outside (write to running)", '
                 '"data/fork_size.dat" using 1:4 with linespoints lw 2 title "fork_checkpoint_usec (copy)", '
                 '"data/fork_size.dat" using 1:5 with linespoints lw 2 title "fork_freeze_usec", '
                 '"data/fork_size.dat" using 1:6 with linespoints lw 2 title "fork_restore_usec"\n')
        gnuplot(plot)



def sec_qemu(r, md):
    """Section 9."""
    qm = r.get("qemu")
    if qm:
        md.append("## 9. qemu backend: create to agent hello (issue 5)")
        md.append("")
        md += source_note(r, "qemu")
        if qm.get("skipped"):
            md.append("Skipped: %s." % qm["skipped"])
        else:
            md.append("`echo 'create vN backend=qemu memory=256M' > /sbx/ctl`, then at once `exec` "
                      "`echo hi` (the write waits for the VM); a thread polls `status` every 5 ms for "
                      "`running`. Accelerator: **%s** (`qemu_accel` in `/sbx/stats`); `/dev/kvm` %s on "
                      "this machine, so these are TCG (software emulation) numbers, not KVM. Each round "
                      "also creates one `ns` sandbox; %d boot(s) discarded as warm-up."
                      % (qm["accel"], "exists" if qm["dev_kvm"] else "does not exist (no KVM)", qm["warmup"]))
            md.append("")
            Q, N = qm["samples"], qm["ns"]
            def row(label, xs):
                return [label, len(xs), f(pct(xs, 50) / 1e3), f(pct(xs, 95) / 1e3), f(max(xs) / 1e3) if xs else "–"]
            rows = [row("qemu: create to running (outside)", [x["running"] for x in Q]),
                    row("qemu: time to interactive (first `echo hi` bytes)", [x["tti"] for x in Q])]
            for k in ("create_usec", "create_vmm_spawn_usec", "create_qmp_usec", "create_boot_usec"):
                rows.append(row("qemu: daemon `%s`" % k, [x[k] for x in Q if k in x]))
            rows.append(row("ns: create to running (outside), same rounds", [x["running"] for x in N]))
            rows.append(row("ns: daemon `create_usec`", [x["create_usec"] for x in N]))
            QP = qm.get("pool") or []
            if QP:  # a run of before has none
                rows.append(row("qemu from a warm pool (1 VM, full before each): create to running",
                                [x["running"] for x in QP]))
                rows.append(row("qemu from a warm pool: time to interactive", [x["tti"] for x in QP]))
                rows.append(row("qemu from a warm pool: daemon `claim_usec`",
                                [x["claim_usec"] for x in QP if "claim_usec" in x]))
            md.append(table(["", "n", "p50 ms", "p95 ms", "max ms"], rows))
            md.append("")
            md.append("qemu ÷ ns create (p50, outside): %s." %
                      ratio(pct([x["running"] for x in Q], 50), pct([x["running"] for x in N], 50)))
            if QP:
                md.append("A claim from the pool writes the same `create` line (the spec is the "
                          "pool's) and polls the same way; cold ÷ pool (p50): %s to running, %s to "
                          "interactive." % (
                              ratio(pct([x["running"] for x in Q], 50), pct([x["running"] for x in QP], 50)),
                              ratio(pct([x["tti"] for x in Q], 50), pct([x["tti"] for x in QP], 50))))
            md.append("")



def sec_qfork(r, md):
    """Section 10."""
    qf = r.get("qfork")
    if qf:
        md.append("## 10. qemu live fork and standby (issue 9)")
        md.append("")
        md += source_note(r, "qfork")
        if qf.get("skipped"):
            md.append("Skipped: %s." % qf["skipped"])
            md.append("")
    if qf and not qf.get("skipped"):
        SG, CR = qf["single"], qf["creates"]
        md.append("`fork_mode live`: a child continues from the source VM's exact machine state. "
                  "Source: `echo 'create qsrc backend=qemu memory=256M' > /sbx/ctl` (running after "
                  "%s ms), then one `exec` so the guest is warm. Accelerator **%s**; `/dev/kvm` %s, "
                  "so these are TCG numbers. Single fork: `fork CHILD` written to `qsrc/ctl`; from "
                  "the start of that write, a thread polls `CHILD/status` every 1 ms for `running` "
                  "while the bench opens `CHILD/exec` as soon as the write returns and writes "
                  "`echo hi` (the write waits while the child is creating): *child interactive* is "
                  "the first bytes of its output. The child's per-phase timings are read from its "
                  "`stats`; it is removed (`rmdir`) after each round. Before each fork but the first, the "
                  "bench waits until the source has a QEMU started ahead waiting for it "
                  "(`fork_spares_ready 1`), the case the target is for. Each round also does one plain "
                  "qemu create (a fresh boot, as in section 9) in a shuffled order; %d round(s) "
                  "discarded as warm-up."
                  % (f(qf["source_boot"] / 1e3), qf["accel"],
                     "exists" if qf["dev_kvm"] else "does not exist here", qf["warmup"]))
        md.append("")

        def qrow(label, xs, ref=None, inv=False):
            """n, p50, p95, max in ms, and p50 ÷ ref (inv: ref ÷ p50)."""
            xs = [x for x in xs if x is not None]
            rt = ""
            if ref and xs:
                rt = ratio(ref, pct(xs, 50)) if inv else ratio(pct(xs, 50), ref)
            return [label, len(xs), f(pct(xs, 50) / 1e3) if xs else "–", f(pct(xs, 95) / 1e3) if xs else "–",
                    f(max(xs) / 1e3) if xs else "–", rt]
        boot = pct([x["running"] for x in CR], 50)
        boot_tti = pct([x["tti"] for x in CR], 50)
        rows = [qrow("fork line to child `running` (outside)", [x["running"] for x in SG], boot, True),
                qrow("fork line to child interactive (first `echo hi` bytes)", [x["tti"] for x in SG], boot_tti, True),
                qrow("  `fork` write returns (checkpoint taken, source resumed)", [x["write"] for x in SG]),
                qrow("  **source paused**: `fork_freeze_usec`", [x.get("fork_freeze_usec") for x in SG])]
        for k in ("fork_checkpoint_usec", "fork_restore_usec", "fork_usec", "restore_usec",
                  "create_vmm_spawn_usec", "create_qmp_usec", "create_restore_usec"):
            rows.append(qrow("  child's `%s`" % k, [x.get(k) for x in SG]))
        rows.append(qrow("plain qemu create (boot) to `running`, same rounds", [x["running"] for x in CR], boot, True))
        rows.append(qrow("plain qemu create to interactive, same rounds", [x["tti"] for x in CR], boot_tti, True))
        qm = r.get("qemu")
        if qm and not qm.get("skipped") and qm.get("samples"):
            rows.append(qrow("qemu create to `running`, section 9%s" % (
                " (another run)" if r.get("provenance", {}).get("qemu") != r.get("provenance", {}).get("qfork") else ""),
                [x["running"] for x in qm["samples"]], boot, True))
        md.append(table(["single live fork", "n", "p50 ms", "p95 ms", "max ms", "fresh boot ÷ this (p50)"], rows))
        md.append("")
        fz = [x.get("fork_freeze_usec") for x in SG if x.get("fork_freeze_usec") is not None]
        md.append("The last column is the plain qemu create of the same rounds (to running, or to "
                  "interactive for the interactive row) ÷ this row, at p50: above 1× the fork is faster; "
                  "a live fork has a running child %s sooner than a fresh boot. Phases: `fork_freeze_usec` is the whole pause of "
                  "the source (QMP `stop`, the device-state migration with `x-ignore-shared`, the sparse "
                  "copy of its RAM file to the layer's frozen image, `cont`), what the source feels: "
                  "p50 %s ms, max %s ms; `fork_checkpoint_usec` is the part between `stop` and `cont` (migration and copy); "
                  "`fork_restore_usec` is from the child's start being queued to `running`; "
                  "`restore_usec` from spawning the child's QEMU to restored (`create_vmm_spawn_usec` "
                  "spawn, `create_qmp_usec` QMP handshake, `create_restore_usec` `migrate-incoming`, "
                  "`cont` and the agent taking the clone's identity); `fork_usec` is the fork request "
                  "to `running` as the daemon sees it."
                  % (ratio(boot, pct([x["running"] for x in SG], 50)) if boot else "–",
                     f(pct(fz, 50) / 1e3) if fz else "–", f(max(fz) / 1e3) if fz else "–"))
        md.append("")

        B = qf["burst"]
        comp = B["completion"]
        dfk = B["daemon"].get("fork_usec", [])
        dfr = B["daemon"].get("fork_freeze_usec", [])
        ref50, ref95 = 1.27e6, 3.14e6
        md.append("**%d-way burst from one checkpoint** (`fork qb-0 ... qb-%d` in one write; once, no "
                  "warm-up burst: TCG restores are expensive). Completion = from the start of the write "
                  "until that child's `status` read `running` (pending children polled every 20 ms); "
                  "the daemon's worker pool (default 8 threads; the bench passes no `--workers`) "
                  "starts the children, so at most 8 QEMUs restore at once, on 2 cores. Reference, "
                  "**not measured here**: a published Firecracker fork service, 25-way burst p50 1.27 s, "
                  "p95 3.14 s%s."
                  % (B["n"], B["n"] - 1, "" if B["n"] == 25 else
                     " (for 25 children; this burst has %d, so the comparison is loose)" % B["n"]))
        md.append("")
        BA = qf.get("burst_ahead")

        def burst_row(label, X):
            c, dk = X["completion"], X["daemon"].get("fork_usec", [])
            dz = X["daemon"].get("fork_freeze_usec", [])
            return [label, X["n"], X.get("ahead", "–"), f(pct(c, 50) / 1e3), f(pct(c, 95) / 1e3),
                    f(X["all_running"] / 1e3), f(X["write_returned"] / 1e3), f(dz[0] / 1e3) if dz else "–",
                    "%s / %s" % (f(pct(dk, 50) / 1e3), f(pct(dk, 95) / 1e3)) if dk else "–"]
        rows = [burst_row("sandboxfs qemu (TCG), first burst", B)]
        if BA:
            rows.append(burst_row("sandboxfs qemu (TCG), the next burst (QEMUs ahead)", BA))
        best = BA or B
        rows += [["Firecracker fork service (reference, not measured)", 25, "–", f(ref50 / 1e3),
                  f(ref95 / 1e3), "–", "–", "–", "–"],
                 ["reference ÷ sandboxfs (%s)" % ("the next burst" if BA else "first burst"), "", "",
                  ratio(ref50, pct(best["completion"], 50)), ratio(ref95, pct(best["completion"], 95)),
                  "", "", "", ""]]
        md.append(table(["", "children", "on a QEMU started ahead", "p50 ms", "p95 ms", "all running ms",
                         "write returned ms", "source paused ms", "daemon fork_usec p50 / p95 ms"], rows))
        md.append("")
        if BA:
            md.append("The first burst follows single forks, each of which left one QEMU started ahead "
                      "(`--qemu-spares`: a fork leaves as many as it had children, at most the "
                      "option; the bench's main daemon runs with `--qemu-spares %d`): its children "
                      "but one start a QEMU. Its refill (%d QEMUs started ahead, two at a time, once "
                      "no child is starting) took %s s; then the same burst again (`fork qa-0 ... "
                      "qa-%d`), each child restored in a waiting QEMU that maps the checkpoint's RAM."
                      % (min(32, B["n"]), min(32, BA["n"]), f(BA.get("refill_s", 0)), BA["n"] - 1))
            md.append("")
        dr = B["daemon"].get("restore_usec", [])
        qw = [a - b for a, b in zip(dfk, dr)]  # fork request to this child's QEMU spawn
        if dr and qw:
            md.append("Inside the burst (daemon's timings per child): fork request to the "
                      "child's QEMU spawn (`fork_usec` − `restore_usec`: waiting for a worker, then its "
                      "cgroup), p50 %s ms, max "
                      "%s ms; `restore_usec` p50 %s ms, p95 %s ms (%s the single fork's p50, as up to 8 "
                      "QEMUs share 2 cores), of which `create_qmp_usec` p50 %s ms and "
                      "`create_restore_usec` p50 %s ms."
                      % (f(pct(qw, 50) / 1e3), f(max(qw) / 1e3), f(pct(dr, 50) / 1e3), f(pct(dr, 95) / 1e3),
                         ratio(pct(dr, 50), pct([x.get("restore_usec") for x in SG if x.get("restore_usec")], 50)),
                         f(pct(B["daemon"].get("create_qmp_usec", [0]), 50) / 1e3),
                         f(pct(B["daemon"].get("create_restore_usec", [0]), 50) / 1e3)))
            md.append("")
        md.append("All %d removed (`rmdir` one after another) in %s s."
                  % (B["n"], f(B["remove_all_s"])))
        md.append("")

        CF = qf["child_fork"]
        if CF:
            f1 = pct(fz, 50) if fz else None
            cfz = [x.get("fork_freeze_usec") for x in CF if x.get("fork_freeze_usec") is not None]
            md.append("**Fork of a child** (a first-generation child `qg1` forked again, %d time(s)). A "
                      "child's RAM is a private copy-on-write map of the frozen image, so its checkpoint "
                      "carries the RAM in the migration stream (256 MB) instead of copying a shared file, "
                      "and its children load it into a fresh shared file:" % len(CF))
            md.append("")
            rows = [qrow("source (the child) paused: `fork_freeze_usec`", cfz, f1),
                    qrow("  `fork_checkpoint_usec`", [x.get("fork_checkpoint_usec") for x in CF]),
                    qrow("  `fork` write returns", [x["write"] for x in CF]),
                    qrow("fork line to grandchild `running`", [x["running"] for x in CF],
                         pct([x["running"] for x in SG], 50)),
                    qrow("  grandchild's `create_restore_usec`", [x.get("create_restore_usec") for x in CF])]
            md.append(table(["fork of a child", "n", "p50 ms", "p95 ms", "max ms", "p50 ÷ first-generation fork"], rows))
            md.append("")

        SB = qf["standby"]
        if SB:
            md.append("**standby and start** (on the source, %d time(s)): `echo standby > ctl` returns "
                      "when the whole machine (RAM included) is saved to the state dir and QEMU has "
                      "ended; then `echo start > ctl` until `status` reads `running` (polled every "
                      "1 ms), then `exec` `echo hi` until the first bytes:" % len(SB))
            md.append("")
            rows = [qrow("`standby` write (outside)", [x["standby_write"] for x in SB]),
                    qrow("  daemon `standby_usec`", [x["standby_usec"] for x in SB]),
                    qrow("`start` to `running` (outside)", [x["start_running"] for x in SB], boot, True),
                    qrow("`start` to interactive (first `echo hi` bytes)", [x["start_tti"] for x in SB], boot_tti, True),
                    qrow("  daemon `restore_usec`", [x["restore_usec"] for x in SB]),
                    qrow("  daemon `create_restore_usec`", [x.get("create_restore_usec") for x in SB])]
            md.append(table(["standby", "n", "p50 ms", "p95 ms", "max ms", "fresh boot ÷ this (p50)"], rows))
            md.append("")
        lo = {k: v for k, v in qf.get("leftovers_after_case", {}).items() if v}
        md.append("After the case (every sandbox removed): %s." %
                  ("**left: %s**" % lo if lo else "no QEMU process of this run, no `/dev/shm/sandboxfs-*` "
                   "file of its daemon and no layer in its state dir remained"))
        md.append("")



# ---------------------------------------------------------------- warm pools (issue 20)
def ms3(xs):
    """p50 / p95 / p99 of µs samples, in ms."""
    return [f(pct(xs, p) / 1e3) if xs else "–" for p in (50, 95, 99)]


def vs_row(label, xs, ref=None):
    """A table row: label, n, p50/p95/p99 ms of µs samples xs, and with ref (the samples of
    the peer, bwrap, measured in the same rounds) ref ÷ xs at p50 and p95."""
    xs = [x for x in xs if x is not None]
    return ([label, len(xs)] + ms3(xs) +
            ([ratio(pct(ref, 50), pct(xs, 50)), ratio(pct(ref, 95), pct(xs, 95))] if ref and xs else ["", ""]))


def med(xs):
    s = sorted(xs)
    return s[len(s) // 2] if s else None


def sec_pool(r, md):
    """Section 11: one at a time from a warm pool, beside a cold create and bwrap."""
    pl = r["pool"]
    S = pl["samples"]
    P = S["pool"]
    md.append("## " + TITLES["pool"][0])
    md.append("")
    md += source_note(r, "pool")
    md.append("A pool `pools/bpool` of size %d with a bare `mkdir`'s spec (`%s`), so a plain `mkdir "
              "/sbx/NAME` claims a ready member. Each round runs, in a freshly shuffled order: **pool**: "
              "`mkdir` (timed alone: the claim makes the sandbox `running` before `mkdir` returns; "
              "its `status`, read after the exec, said `running` in %d of %d samples, and sections "
              "12 and 14 read it right after the `mkdir`), then open "
              "`NAME/exec`, write `echo hi`, read until the first bytes (time to first output counts "
              "from before the `mkdir`); **cold**: `create NAME %s` written to `/sbx/ctl` (a spec no pool "
              "has, so the daemon creates it as without pools; the pids limit is the only difference), "
              "then the same exec; **bwrap**: `%s` until the first bytes on its stdout. Before every "
              "sample of every method the bench polls `pools/bpool/status` until `ready` equals `size` "
              "and `filling` is 0 (the previous claim's refill is done, so nothing of the pool runs "
              "beside the other methods); claimed sandboxes are removed (`rmdir`) outside the timed "
              "part. Note that a claim starts its refill at once (nice 10, beside the claimed sandbox's "
              "`exec`). %s %d warm-up rounds discarded; `create_mode` read `pool` for every "
              "pool sample and `cold` for every cold one (checked)."
              % (pl["size"], pl["spec"], sum(1 for x in P["status_after_mkdir"] if x == "running"),
                 len(P["status_after_mkdir"]), pl["cold_opts"],
                 " ".join(pl["bwrap_argv"][:-2]).replace(ROOT + "/", "") + " /bin/echo hi"
                 if pl.get("bwrap_argv") else "bwrap (skipped)",
                 "The pool's exec ran in the member's warm shell (`exec_warm_total` 1 in its `stats`) "
                 "in %d of %d samples." % (sum(P["exec_warm"]), len(P["exec_warm"]))
                 if "exec_warm" in P else "(A run from before warm shells: their use not recorded.)",
                 pl["warmup"]))
    md.append("")
    bw = S.get("bwrap", {}).get("tti", [])

    def row(label, xs, vs_bwrap=False):
        return vs_row(label, xs, bw if vs_bwrap else None)
    tti_exec = [t - m for t, m in zip(P["tti"], P["running"])]
    rows = [row("**pool**: `mkdir` to `running` (the `mkdir` syscall)", P["running"], True),
            row("  daemon's `claim_usec`", P["claim_usec"]),
            row("  daemon's `claim_journal_usec` (written ~5 ms after the reply, off its path)", P["claim_journal_usec"]),
            row("**pool**: time to first output (`mkdir` + exec `echo hi`)", P["tti"], True),
            row("  of which the exec (first output − `mkdir` return)", tti_exec),
            row("cold `create` + exec: time to first output", S["cold"]["tti"], True),
            row("  cold: daemon's `create_usec`", S["cold"]["create_usec"])]
    if bw:
        rows.append(row("bwrap `/bin/echo hi`: time to first output", bw, True))
    tt = r.get("tti")
    if tt and tt.get("samples", {}).get("sandboxfs"):
        same = r.get("provenance", {}).get("tti") == r.get("provenance", {}).get("pool")
        rows.append(row("cold `mkdir` + exec, section 7%s" % ("" if same else " (another run)"),
                        tt["samples"]["sandboxfs"]))
        if tt["samples"].get("bwrap"):
            rows.append(row("bwrap `/bin/sh -c 'echo hi'`, section 7%s" % ("" if same else " (another run)"),
                            tt["samples"]["bwrap"]))
    md.append(table(["one at a time", "n", "p50 ms", "p95 ms", "p99 ms", "bwrap ÷ this (p50)",
                     "bwrap ÷ this (p95)"], rows))
    md.append("")
    ct = S["cold"]["tti"]
    md.append("Ratios are bwrap's time to first output (same rounds) ÷ the row, at p50 and p95: above 1× "
              "bwrap is slower. Time to first output, cold ÷ pool: %s at p50, %s at p95. Plot: "
              "[pool_tti.png](pool_tti.png)." % (ratio(pct(ct, 50), pct(P["tti"], 50)),
                                                 ratio(pct(ct, 95), pct(P["tti"], 95))))
    md.append("")
    cdf = [("pool_mkdir", "pool: mkdir to running", P["running"]), ("pool_tti", "pool: first output", P["tti"]),
           ("cold_tti", "cold create: first output", ct)] + ([("bwrap_tti", "bwrap: first output", bw)] if bw else [])
    for key, _, xs in cdf:
        xs = sorted(x / 1e3 for x in xs)
        write(os.path.join(DATA, "pool_%s.dat" % key), ["%g %g" % (x, (i + 1) / len(xs)) for i, x in enumerate(xs)])
    plot = TERM + 'set output "pool_tti.png"\nset title "Warm pool vs cold create vs bwrap, one at a time (CDF, %d samples each)"\n' % len(P["tti"])
    plot += 'set logscale x\nset xlabel "ms (log)"\nset ylabel "fraction"\nset key bottom right\nset grid\nset yrange [0:1]\n'
    plot += "plot " + ", ".join('"data/pool_%s.dat" using 1:2 with steps lw 2 title "%s"' % (k, t) for k, t, _ in cdf) + "\n"
    gnuplot(plot)


def pool_burst_table(B):
    """Rows for the cold burst and the pool burst of a pool_burst_pair result."""
    cold = med([x["all_running"] for x in B["cold"]])
    rows = []
    for label, runs in (("cold (no pool)", B["cold"]), ("pool", B["pool"])):
        comp = [c for x in runs for c in x["completion"]]
        cl = [c for x in runs for c in x["claim_usec"]]
        a = med([x["all_running"] for x in runs])
        rows.append([label, len(runs), "%s / %s" % (sum(x["hits"] for x in runs), sum(x["n"] for x in runs)),
                     f(a / 1e3), ratio(cold, a), f(med([x["all_mkdir_returned"] for x in runs]) / 1e3),
                     "%s / %s / %s" % tuple(ms3(comp)),
                     "%s / %s" % (sum(x["running_at_return"] for x in runs), sum(x["n"] for x in runs)),
                     ("%s / %s" % (f(pct(cl, 50)), f(pct(cl, 95)))) if cl else "–"])
    return rows


POOL_BURST_HEAD = ["", "runs", "claimed from the pool", "all running ms (median of runs)", "cold ÷ this",
                   "all `mkdir`s returned ms", "per-sandbox p50 / p95 / p99 ms",
                   "`running` when its `mkdir` returned", "claim_usec p50 / p95 µs"]

POOL_BURST_TEXT = ("N threads released together by a barrier, each `mkdir`s one sandbox with a bare "
                   "`mkdir`'s spec. A thread reads its sandbox's `status` once right after its `mkdir` "
                   "returns: `running` there (a claim) counts as running at the return; the others (cold "
                   "creates) are polled every %.1f ms until `running`. All running = from the release "
                   "until the last one is running. Each run first does the same burst with no pool (every "
                   "`mkdir` a cold create), then makes the pool, polls its `status` until full (`ready` = "
                   "`size`, `filling` 0), runs the burst against it and removes the pool (what it was "
                   "refilling is discarded; the bench waits until the members' state dirs are gone); the "
                   "claimed sandboxes are removed outside the timed part. Claimed from the pool = "
                   "sandboxes whose `create_mode` is `pool`.")


def sec_pool_burst(r, md):
    """Section 12."""
    B = r["pool_burst"]
    md.append("## " + TITLES["pool_burst"][0])
    md.append("")
    md += source_note(r, "pool_burst")
    md.append((POOL_BURST_TEXT % (r["poll_s"] * 5e3)) + " Pool of %d, bursts of %d, %d run(s); one "
              "cold burst of 3 first, discarded." % (B["size"], B["n"], B["reps"]))
    md.append("")
    md.append(table(POOL_BURST_HEAD, pool_burst_table(B)))
    md.append("")
    if B.get("floor"):
        fl = B["floor"]
        md.append("The harness alone, with no daemon: the same %d threads released by a barrier, each "
                  "`mkdir`ing a directory in a local one and reading one small file there, take %s ms "
                  "(median of %d; %s to %s): what the burst's threads cost on this machine before any "
                  "request reaches sandboxfs." % (B["n"], f(med(fl) / 1e3), len(fl), f(min(fl) / 1e3),
                                                   f(max(fl) / 1e3)))
        md.append("")
    series = []
    for label, runs in (("cold", B["cold"]), ("pool", B["pool"])):
        xs = sorted(c / 1e3 for c in runs[-1]["completion"])
        write(os.path.join(DATA, "pool_burst_%s.dat" % label), ["0 0"] + ["%g %d" % (x, i + 1) for i, x in enumerate(xs)])
        series.append(label)
    plot = TERM + 'set output "pool_burst.png"\nset title "Burst of %d mkdirs: running vs ms since the burst started (pool of %d vs no pool, last run)"\n' % (B["n"], B["size"])
    plot += 'set xlabel "ms since start"\nset ylabel "running"\nset key bottom right\nset grid\nset yrange [0:%d]\n' % (B["n"] + 2)
    plot += "plot " + ", ".join('"data/pool_burst_%s.dat" using 1:2 with steps lw 2 title "%s"' % (x, x) for x in series) + "\n"
    gnuplot(plot)
    md.append("Plot: [pool_burst.png](pool_burst.png).")
    md.append("")


def sec_pool_over(r, md):
    """Section 13."""
    B = r["pool_over"]
    md.append("## " + TITLES["pool_over"][0])
    md.append("")
    md += source_note(r, "pool_over")
    md.append((POOL_BURST_TEXT % (r["poll_s"] * 5e3)) + " Pool of %d, bursts of %d (%d more than the "
              "pool holds), %d run(s)." % (B["size"], B["n"], B["n"] - B["size"], B["reps"]))
    md.append("")
    md.append(table(POOL_BURST_HEAD, pool_burst_table(B)))
    md.append("")
    hit, miss = [], []
    for x in B["pool"]:
        for c, m in zip(x["completion"], x["modes"]):
            (hit if m == "pool" else miss).append(c)
    ph = sum(x["pool_hits"] for x in B["pool"])
    pm = sum(x["pool_misses"] for x in B["pool"])
    md.append("Inside the bursts against the pool: the claims were running at p50 %s ms (max %s ms), "
              "the misses (cold creates) at p50 %s ms (max %s ms); the pool's own counters moved by "
              "%d hits and %d misses (`misses` counts a `mkdir` that found the pool empty)."
              % (f(pct(hit, 50) / 1e3) if hit else "–", f(max(hit) / 1e3) if hit else "–",
                 f(pct(miss, 50) / 1e3) if miss else "–", f(max(miss) / 1e3) if miss else "–", ph, pm))
    md.append("")


def sec_pool_size(r, md):
    """Section 14."""
    ps = r["pool_size"]
    md.append("## " + TITLES["pool_size"][0])
    md.append("")
    md += source_note(r, "pool_size")
    md.append("For each size: a pool made, its `size` written and its `status` polled every 5 ms until "
              "full (fill from empty); then one `mkdir` at a time (timed alone), the pool polled until "
              "full again before each; %d claim(s) per size discarded first. The claimed sandbox's "
              "`status` read `running` right after each `mkdir` (checked) and its `create_mode` `pool`."
              % ps["warmup"])
    md.append("")
    base = pct(ps["sizes"][0]["mkdir"], 50) if ps["sizes"] else None
    rows = []
    for s in ps["sizes"]:
        rows.append([s["size"], "%s s (%s/s)" % (f(s["fill_from_empty_s"]), f(s["size"] / s["fill_from_empty_s"], 1)),
                     len(s["mkdir"])] + ms3(s["mkdir"]) +
                    [ratio(pct(s["mkdir"], 50), base),
                     "%s / %s / %s" % tuple(f(pct(s["claim_usec"], p)) for p in (50, 95, 99)),
                     f(pct(s["claim_journal_usec"], 50))])
    md.append(table(["pool size", "fill from empty (members/s)", "n", "`mkdir` p50 ms", "p95 ms", "p99 ms",
                     "p50 vs size %s" % ps["sizes"][0]["size"], "daemon `claim_usec` p50 / p95 / p99 µs",
                     "`claim_journal_usec` p50 µs"], rows))
    md.append("")
    write(os.path.join(DATA, "pool_size.dat"),
          ["%d %g %g %g" % (s["size"], pct(s["mkdir"], 50) / 1e3, pct(s["mkdir"], 95) / 1e3,
                            pct(s["claim_usec"], 50) / 1e3) for s in ps["sizes"]])
    plot = TERM + 'set output "pool_size.png"\nset title "Claim latency vs warm pool size (one mkdir at a time, pool full before each)"\n'
    plot += 'set logscale x\nset xlabel "pool size (log)"\nset ylabel "ms"\nset key below\nset grid\nset yrange [0:*]\n'
    plot += ('plot "data/pool_size.dat" using 1:2 with linespoints lw 2 title "mkdir p50 (outside)", '
             '"data/pool_size.dat" using 1:3 with linespoints lw 2 dt 2 title "mkdir p95 (outside)", '
             '"data/pool_size.dat" using 1:4 with linespoints lw 2 title "claim_usec p50 (daemon)"\n')
    gnuplot(plot)
    md.append("Plot: [pool_size.png](pool_size.png).")
    md.append("")


def sec_pool_refill(r, md):
    """Section 15."""
    pr = r["pool_refill"]
    md.append("## " + TITLES["pool_refill"][0])
    md.append("")
    md += source_note(r, "pool_refill")
    F = pr["fill_from_empty"]
    md.append("A pool of %d. Fill from empty: from the write of `size` until `status` showed it full "
              "(polled every 5 ms): %s s, %s members/s (the daemon makes at most 2 members at a time, "
              "on workers at nice 10; the last member's create took %s ms). Then, per run: %d `mkdir`s "
              "one after another claim every member (the refill starts with the first claim), and the "
              "bench polls `status` until the pool is full again; members/s = members made (`made` "
              "moved by that much) ÷ the time from the first claim until full. The claimed sandboxes "
              "stay, idle, until then and are removed after."
              % (pr["n"], f(F["s"]), f(F["made"] / F["s"], 1), f(F["fill_usec_last"] / 1e3), pr["n"]))
    md.append("")
    rows = []
    for i, x in enumerate(pr["refills"]):
        rows.append([i, x["n"], "%d / %d" % (x["hits"], x["n"]), f(x["claims_s"] * 1e3), f(x["from_first_claim_s"]),
                     f(x["from_last_claim_s"]), f(x["made"] / x["from_first_claim_s"], 1), x["made"]])
    md.append(table(["run", "pool size", "claimed from the pool", "all claims ms", "full again after the "
                     "first claim s", "after the last claim s", "members/s", "members made"], rows))
    md.append("")
    M = pr["member_memory"]
    C = pr.get("cold_memory")
    disk = pr.get("member_disk", [])

    def kib(xs):
        xs = [x for x in xs if x is not None]
        return "%s / %s" % (f(pct(xs, 50) / 1024, 1), f(max(xs) / 1024, 1)) if xs else "–"
    rows = [["pooled member (idle, in the pool)", len(M), kib([m["usage"] for m in M]), kib([m["anon"] for m in M]),
             kib([m.get("kmem") for m in M]), kib([m["file"] for m in M]), kib([m["pss"] for m in M]),
             kib(disk)]]
    if C:
        rows.append(["cold sandbox (idle, `running`), same run", 1, kib([C["usage"]]), kib([C["anon"]]),
                     kib([C.get("kmem")]), kib([C["file"]]), kib([C["pss"]]), kib([pr.get("cold_disk")])])
    v1 = M and "/memory/" in M[0]["cgroup"]
    md.append("What an idle member costs, read from its cgroup after %s s idle (`%s`%s), beside one idle "
              "cold sandbox made the same way before the pool (its `stats` `memory_bytes` read %s KiB):"
              % (f(pr["idle_s"], 1), M[0]["cgroup"].rsplit("/", 1)[0] + "/TAG-.pID-RUN-SEQ" if M else "?",
                 ", cgroup v1" if v1 else ", cgroup v2", f(pr.get("cold_memory_bytes_stat", 0) / 1024, 1)))
    md.append("")
    md.append(table(["", "n", "cgroup usage p50 / max KiB", "anon p50 / max KiB", "kernel p50 / max KiB",
                     "page cache p50 / max KiB", "PSS of its processes p50 / max KiB",
                     "state dir on disk p50 / max KiB"], rows))
    md.append("")
    drss = pr["daemon_rss_full_kib"] - pr["daemon_rss_before_kib"]
    md.append("Usage is `%s`%s; anon and page cache are the cgroup's `memory.stat` (%s); kernel is %s; PSS "
              "is the sum of `Pss` in `/proc/PID/smaps_rollup` over the cgroup's processes (shared pages "
              "split among their users: busybox's text is shared by every member). The state dir is "
              "`STATE/sandboxes/.pID-RUN-SEQ` (st_blocks). The daemon's RSS went from %d to %d KiB with the "
              "pool full (%s KiB per member)."
              % ("memory.usage_in_bytes" if v1 else "memory.current",
                 " (on v1 it includes the per-CPU charge batch the kernel holds ahead, up to 64 pages per "
                 "CPU, so it is coarse at this size)" if v1 else "",
                 "`rss`, `cache`" if v1 else "`anon`, `file`",
                 "`memory.kmem.usage_in_bytes`" if v1 else "`memory.stat` `kernel`",
                 pr["daemon_rss_before_kib"], pr["daemon_rss_full_kib"], f(drss / pr["n"], 1)))
    md.append("")


def sec_targets(r, md):
    """The issue's targets, from whichever sections have figures."""
    md.append("## Against the issue's targets (reported, not asserted)")
    md.append("")
    rows = []
    if "case1" in r:
        S = r["case1"]["samples"]
        base = pct(S["sandboxfs"]["create"], 50)
        dc = [x / 1e3 for x in S["sandboxfs"]["daemon_create"]]
        p50 = base / 1e3
        rows.append(["create p50 ≤ 3 ms", "%s ms (daemon: %s ms)" % (f(p50), f(pct(dc, 50))), "met" if p50 <= 3 else "missed"])
        if "crun" in S:
            rr = pct(S["crun"]["create"], 50) / base
            rows.append(["≥ 5× faster than `crun run`", "%.1f×" % rr, "met" if rr >= 5 else "missed"])
    if "case3" in r:
        idx = {(x["impl"], x["op"], x["size"]): x["ns_per_op"] for x in r["case3"]["rows"]}
        sizes = sorted({x["size"] for x in r["case3"]["rows"]})
        big = max(sizes) if sizes else None
        g = idx.get(("rcu", "get_name", big))
        if g is not None:
            rows.append(["registry lookup ≤ 100 ns at %d" % big, "%s ns (get_name), %s ns (find_name)" % (f(g, 1), f(idx.get(("rcu", "find_name", big)), 1)), "met" if g <= 100 else "missed"])
    c45 = r.get("case45")
    if c45 and c45["api"]:
        nmax = max(c45["api"], key=int)
        sr = pct(c45["api"][nmax]["read_stats"], 50)
        rr = c45["api"][nmax].get("reread_stats")
        if rr:  # the target's one round trip: a held handle's re-read
            rr = pct(rr, 50)
            rows.append(["stats read p50 ≤ 30 µs (one round trip: re-read of a held handle)",
                         "%s µs at %s live (open, read, close: %s µs)" % (f(rr, 1), nmax, f(sr, 1)),
                         "met" if rr <= 30 else "missed"])
        else:
            rows.append(["stats read p50 ≤ 30 µs", "%s µs at %s live" % (f(sr, 1), nmax), "met" if sr <= 30 else "missed"])
    c2 = r.get("case2")
    if c2:
        bmax = max(c2["runs"], key=int)
        ar = sorted(x["all_running"] for x in c2["runs"][bmax]["sandboxfs-mkdir"])
        ar = ar[len(ar) // 2] / 1e3
        rows.append(["%s-way burst all running ≤ 1 s (target is for 100)" % bmax, "%s ms" % f(ar), "met" if ar <= 1000 else "missed"])
    if r.get("tti"):
        ts = r["tti"]["samples"]["sandboxfs"]
        rows.append(["TTI p50 ≤ 5 ms, p95 ≤ 15 ms (ns)", "%s / %s ms" % (f(pct(ts, 50) / 1e3), f(pct(ts, 95) / 1e3)),
                     "met" if pct(ts, 50) <= 5e3 and pct(ts, 95) <= 15e3 else "missed"])
        tb = r["tti"]["bursts"].get("100", {}).get("sandboxfs")
        if tb:
            a = sorted(x["all"] for x in tb)[len(tb) // 2]
            rows.append(["TTI burst of 100 all interactive ≤ 1 s", "%s ms" % f(a / 1e3), "met" if a <= 1e6 else "missed"])
    if r.get("fork"):
        fs = r["fork"]["single"]["fork"]
        rows.append(["ns fork p50 ≤ 10 ms, small upper layer", "%s ms (outside)" % f(pct(fs, 50) / 1e3),
                     "met" if pct(fs, 50) <= 10e3 else "missed"])
    qf = r.get("qfork")
    if qf and not qf.get("skipped"):
        when = (" (%s run of %s)" % (mode(run_of(r, "qfork")).split()[0], run_of(r, "qfork")["date"])
                if source_note(r, "qfork") else "")
        qr = [x["running"] for x in qf["single"]]
        rows.append(["qemu live fork (TCG): child running ≤ 150 ms after the fork line (p50)",
                     "%s ms p50, %s ms p95 (outside)%s" % (f(pct(qr, 50) / 1e3), f(pct(qr, 95) / 1e3), when),
                     "met" if pct(qr, 50) <= 150e3 else "missed"])
        B = qf["burst"]
        BA = qf.get("burst_ahead")
        X = BA or B
        p95 = pct(X["completion"], 95)
        rows.append(["qemu 25-way fork burst p95 ≤ 1 s (TCG)%s" % (
                     "" if X["n"] == 25 else " (this run: a burst of %d)" % X["n"]),
                     "%s ms p95, all running %s ms%s%s" % (
                         f(p95 / 1e3), f(X["all_running"] / 1e3),
                         " (the next burst, QEMUs ahead; the first %s ms p95)"
                         % f(pct(B["completion"], 95) / 1e3) if BA else "", when),
                     "met" if p95 <= 1e6 else "missed"])
    md.append(table(["target", "this run", ""], rows))
    md.append("")
    nf = [c for c in r.get("failed", {}) if not all(k in r for k in CASE_KEYS.get(c, [c]))]
    if nf:
        md.append("Not measured, the case failed: %s." % ", ".join(nf))
        md.append("")


def sec_debian(r, md):
    """Section 16."""
    d = r["debian"]
    S = d["samples"]
    md.append("## " + TITLES["debian"][0])
    md.append("")
    md += source_note(r, "debian") + engine_lines(d)
    md.append("The image of `make image-debian` (Debian 12 by mmdebstrap, with python3; %s MB on disk). "
              "One at a time, interleaved (the order shuffled each round): from the write of `create "
              "NAME image=debian` to `/sbx/ctl` to the first bytes of `%s` through `NAME/exec`; "
              "**pool**: claimed from a warm pool of that image (size 1, full before every sample); "
              "**cold**: a spec no pool has (`%s`); **bwrap**: `%s` to its first stdout bytes%s%s. "
              "%d warm-up rounds discarded." % (f(d["image_mb"]), d["cmd"], d["cold_opts"],
                                                " ".join(d["bwrap_argv"]) if d.get("bwrap_argv") else "skipped",
                                                "".join("; **%s**: `%s run` of a bundle on that root (read-only, "
                                                        "the same namespaces and limits), likewise" % (t, t)
                                                        for t in d.get("bundle_tools", [])),
                                                "".join("; **%s**: `%s` (an image imported from that root), likewise"
                                                        % kv for kv in sorted(d.get("engine_argv", {}).items())),
                                                d["warmup"]))
    md.append("")
    bw, pool = S.get("bwrap", []), S["pool"]

    def row(label, xs, ref=bw):  # vs_row, and this ÷ the pool's claim at p50 and p95
        return vs_row(label, xs, ref) + ([ratio(pct(xs, 50), pct(pool, 50)), ratio(pct(xs, 95), pct(pool, 95))]
                                         if ref is not None else ["", ""])
    rows = [row("**pool**: create to python's first output", pool),
            row("  daemon's `claim_usec`", d["daemon"]["pool_claim_usec"], None),
            row("cold create to python's first output", S["cold"]),
            row("  daemon's `create_usec`", d["daemon"]["cold_create_usec"], None)]
    if bw:
        rows.append(row("bwrap, same command and root", bw))
    for t in d.get("bundle_tools", []):
        rows.append(row("%s `run`, same command and root" % t, S[t]))
    for t in sorted(d.get("engine_argv", {})):
        rows.append(row("%s `run --rm`, same command and root" % t, S[t]))
    md.append(table(["one at a time", "n", "p50 ms", "p95 ms", "p99 ms", "bwrap ÷ this (p50)",
                     "bwrap ÷ this (p95)", "this ÷ pool (p50)", "this ÷ pool (p95)"], rows))
    md.append("")


def sec_netpol(r, md):
    """Section 17."""
    d = r["netpol"]
    md.append("## " + TITLES["netpol"][0])
    md.append("")
    md += source_note(r, "netpol")
    md.append("On the networking daemon (its own bridge). Two busybox sandboxes, each with `deny all` and "
              "`allow sandbox OTHER`; then rules that match nothing (`deny 10.100.0.0/24 tcp 1000`, ...) "
              "added one `ctl` write at a time to both. **Applying a rule**: the `ctl` write, timed here, "
              "and the daemon's own `policy_apply_usec` (read from `NAME/net` after it). **Throughput**: "
              "%d MiB from `/dev/zero` through busybox `nc` from one to a `nc -l` job in the other, the "
              "exec's wall time seen from the host (so it includes the exec's own round trip)." % d["mib"])
    md.append("")
    md.append(table(["applying one rule", "n", "p50 ms", "p95 ms", "p99 ms"],
                    [["`ctl` write", len(d["apply_write_usec"])] + ms3(d["apply_write_usec"]),
                     ["daemon's `policy_apply_usec`", len(d["apply_daemon_usec"])] +
                     ms3(d["apply_daemon_usec"])]))
    md.append("")
    base = pct(d["rules"]["0"]["mbps"], 50)
    rows = []
    for k in ("0", "10", "1000"):
        x = d["rules"].get(k)
        if x:
            rows.append([k, len(x["mbps"]), f(pct(x["mbps"], 50)), f(pct(x["mbps"], 5)),
                         ratio(pct(x["mbps"], 50), base)])
    md.append(table(["rules in each policy", "n", "p50 Mbit/s", "p5 Mbit/s", "÷ 0 rules (p50)"], rows))
    md.append("")


def sec_io(r, md):
    """Section 18."""
    d = r["io"]
    md.append("## " + TITLES["io"][0])
    md.append("")
    md += source_note(r, "io")
    md.append("One sandbox per backend. **Round trip**: open `exec`, write `true`, read to EOF and "
              "the exit code. **stdout**: `exec` of `head -c N /dev/zero`, read to EOF. **upload** / "
              "**download**: the Python client's `files.write` (`cat >` as a job, data on its stdin) "
              "and `files.read` (`cat` in an `exec` session) of N random bytes, checked equal. "
              "Throughputs are medians of the repetitions.")
    md.append("")
    rows = []
    for b in ("ns", "qemu"):
        x = d.get(b)
        if not x:
            continue
        if "skipped" in x:
            rows.append([b, "skipped: " + x["skipped"], "", "", "", "", ""])
            continue
        rt = x["round_trip_us"]
        name = b + (" (%s)" % x["accel"] if "accel" in x else "")
        rows.append([name, len(rt), "%s / %s" % (f(pct(rt, 50) / 1e3, 2), f(pct(rt, 95) / 1e3, 2)),
                     "%d KiB" % (x["bytes"] >> 10) if x["bytes"] < 2**20 else "%d MiB" % (x["bytes"] >> 20),
                     f(pct(x["stdout_mib_s"], 50), 2), f(pct(x["upload_mib_s"], 50), 2),
                     f(pct(x["download_mib_s"], 50), 2)])
    md.append(table(["backend", "round trips", "`true` p50 / p95 ms", "N", "stdout MiB/s",
                     "upload MiB/s", "download MiB/s"], rows))
    md.append("")


def sec_images(r, md):
    """Section 19."""
    d = r["images"]
    md.append("## " + TITLES["images"][0])
    md.append("")
    md += source_note(r, "images")
    if "skipped" in d:
        md += ["Skipped: %s." % d["skipped"], ""]
        return
    md.append("**Import**: the Debian root (`make image-debian`) as a one-layer OCI image layout "
              "(its tar gzip'd, %.0f MB; %.0f MB unpacked), `import NAME oci:DIR` on `images/ctl` "
              "until its `status` is `ready`; then a second image of the same base layer and one "
              "small layer of its own. Disk: what the daemon's `imports` dir grew by (allocated "
              "blocks, each inode once). Both removed (`rmdir images/NAME`) between rounds."
              % (d["base_gz"] / 1e6, d["base_tar"] / 1e6))
    md.append("")
    im = d["imports"]
    rows = [["Debian base, 1 layer", len(im), f(pct([x["a_s"] for x in im], 50), 2),
             f(pct([x["a_disk"] for x in im], 50) / 1e6, 1)],
            ["second image sharing it, +1 small layer", len(im), f(pct([x["b_s"] for x in im], 50), 2),
             f(pct([x["b_disk"] for x in im], 50) / 1e6, 2)]]
    md.append(table(["import", "n", "p50 s", "disk added MB (p50)"], rows))
    md.append("")
    if "qemu_skipped" in d:
        md += ["qemu: skipped: %s." % d["qemu_skipped"], ""]
        return
    md.append("**qemu (TCG)**: `create NAME backend=qemu memory=256M [image=debian]` to `running` "
              "and to the first output of `echo hi` through `exec`, the two images interleaved in "
              "shuffled order; the first Debian VM, which builds the image's read-only root disk "
              "(erofs, cached for the next), on its own line.")
    md.append("")
    q = d["qemu"]
    base = pct([x["running"] for x in q["busybox"]], 50)
    rows = [["debian, first (builds its root disk)", 1, f(d["qemu_first_debian"]["running"] / 1e3),
             f(d["qemu_first_debian"]["tti"] / 1e3), ratio(d["qemu_first_debian"]["running"], base)]]
    for img in ("busybox", "debian"):
        xs = q[img]
        rows.append([img, len(xs), f(pct([x["running"] for x in xs], 50) / 1e3),
                     f(pct([x["tti"] for x in xs], 50) / 1e3), ratio(pct([x["running"] for x in xs], 50), base)])
    md.append(table(["VM of", "n", "running p50 ms", "first output p50 ms", "÷ busybox (running)"], rows))
    md.append("")


# (case, the section's heading when there are no figures, how it is drawn), in order
SECTIONS = [("case1", TITLES["case1"][0], sec_case1), ("case2", TITLES["case2"][0], sec_case2),
            ("case3", TITLES["case3"][0], sec_case3), ("case45", TITLES["case45"][0], sec_case4),
            ("case45", TITLES["case45"][1], sec_case5), ("net", TITLES["net"][0], sec_net),
            ("tti", TITLES["tti"][0], sec_tti), ("fork", TITLES["fork"][0], sec_fork),
            ("qemu", TITLES["qemu"][0], sec_qemu), ("qfork", TITLES["qfork"][0], sec_qfork),
            ("pool", TITLES["pool"][0], sec_pool), ("pool_burst", TITLES["pool_burst"][0], sec_pool_burst),
            ("pool_over", TITLES["pool_over"][0], sec_pool_over),
            ("pool_size", TITLES["pool_size"][0], sec_pool_size),
            ("pool_refill", TITLES["pool_refill"][0], sec_pool_refill),
            ("debian", TITLES["debian"][0], sec_debian),
            ("netpol", TITLES["netpol"][0], sec_netpol),
            ("io", TITLES["io"][0], sec_io),
            ("images", TITLES["images"][0], sec_images),
            (None, "Against the issue's targets (reported, not asserted)", sec_targets)]


def main():
    with open(os.path.join(RES, "latest.json")) as fh:
        r = json.load(fh)
    failed = r.get("failed", {})
    missing = [c for c in BASE_CASES if c not in r and c not in failed]
    if missing:
        print("report: latest.json has no %s (a partial run on no full one): run `make bench` "
              "once; latest.md is left as it was" % ", ".join(missing), file=sys.stderr)
        return
    os.makedirs(DATA, exist_ok=True)
    md = []
    header(r, md)
    for case, title, draw in SECTIONS:
        if case and not all(k in r for k in CASE_KEYS[case]):
            if case in failed:  # failed, no figures: the heading and why
                md += ["## " + title, ""] + failed_note(r, case)
            continue
        n0 = len(md)
        try:
            draw(r, md)
        except Exception as e:  # noqa: one section that cannot be drawn does not take the others
            del md[n0:]
            md += ["## " + title, "", "*report.py could not draw this section (%s: %s); its raw samples "
                   "are in latest.json.*" % (type(e).__name__, clean(e, 300)), ""]
            print("report: section %r not drawn:\n%s" % (title, traceback.format_exc()), file=sys.stderr)

    for rid, run in sorted(r.get("runs", {}).items()):
        if run.get("leftover_qemu"):
            md.append("**QEMU processes or /dev/shm files the bench's cleanup had to remove (run %s):** %s"
                      % (rid, run["leftover_qemu"]))
    if r.get("leftover_net"):
        md.append("**Network interfaces of this run left after it:** %s" % r["leftover_net"])
    if r.get("leftover_mounts"):
        md.append("**Left mounted after the run:** %s" % r["leftover_mounts"])
    write(os.path.join(RES, "latest.md"), md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
