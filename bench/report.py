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


def main():
    with open(os.path.join(RES, "latest.json")) as fh:
        r = json.load(fh)
    os.makedirs(DATA, exist_ok=True)
    m = r["machine"]
    md = []
    md.append("# sandboxfs benchmarks: latest run")
    md.append("")
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
        ["peers", "%s; %s; %s" % (m["runc"], m["crun"], m["bwrap"])],
    ]))
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
              "freshly shuffled order. Warm-ups are discarded: %d rounds in case 1, one burst of %d "
              "per method in case 2, 50 file reads before case 4, one pass over every node in case 3."
              % (r["case1"]["warmup"], r["case2"]["warmup_size"]))
    for n in r.get("notes", []):
        md.append("- " + n)
    if r.get("crun_hybrid"):
        md.append("- crun on the unmodified host layout: %s." % r["crun_hybrid"])
    for tool, why in r.get("skipped", {}).items():
        md.append("- **%s skipped**: %s" % (tool, why))
    md.append("")

    # ---------------------------------------------------------------- case 1
    c1 = r["case1"]
    S = c1["samples"]
    methods = c1["methods"]
    base = pct(S["sandboxfs"]["create"], 50)
    base95 = pct(S["sandboxfs"]["create"], 95)
    md.append("## 1. Create to running, one at a time")
    md.append("")
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
    md.append("Create + stop + remove cycle (sandboxfs: `mkdir`, running, `rmdir` returns; "
              "runc/crun: `run -d` then `delete -f`; the stats read between is not counted):")
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

    # ---------------------------------------------------------------- case 2
    c2 = r["case2"]
    md.append("## 2. Burst: N created at once")
    md.append("")
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

    # ---------------------------------------------------------------- case 3
    c3 = r["case3"]
    md.append("## 3. Registry micro-benchmark (ns/op)")
    md.append("")
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

    # ---------------------------------------------------------------- case 4
    c45 = r["case45"]
    md.append("## 4. File API overhead")
    md.append("")
    md.append("With N sandboxes live: `stat` and full read (open, read to EOF, close) of "
              "`/sbx/r-0/stats` (µs); `ls /sbx` = `listdir` of the mount, and `cat /sbx/*/stats` = "
              "read every sandbox's stats file, both in-process (no `ls`/`cat` process start, ms).")
    md.append("")
    rows = []
    for n, a in sorted(c45["api"].items(), key=lambda t: int(t[0])):
        rows.append([n, "%s / %s / %s" % tuple(f(pct(a["stat_stats"], p), 1) for p in (50, 95, 99)),
                     "%s / %s / %s" % tuple(f(pct(a["read_stats"], p), 1) for p in (50, 95, 99)),
                     "%s / %s" % tuple(f(pct([x / 1e3 for x in a["ls"]], p), 2) for p in (50, 95)),
                     "%s / %s" % tuple(f(pct([x / 1e3 for x in a["cat_all_stats"]], p), 2) for p in (50, 95))])
    md.append(table(["live sandboxes", "stat p50/p95/p99 µs", "read stats p50/p95/p99 µs",
                     "ls p50/p95 ms", "cat */stats p50/p95 ms"], rows))
    md.append("")

    # ---------------------------------------------------------------- case 5
    pts = c45["points"]
    md.append("## 5. Scaling: create latency and daemon memory vs live sandboxes")
    md.append("")
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

    # ---------------------------------------------------------------- targets
    md.append("## Against the issue's targets (reported, not asserted)")
    md.append("")
    rows = []
    p50 = base / 1e3
    rows.append(["create p50 ≤ 3 ms", "%s ms (daemon: %s ms)" % (f(p50), f(pct(dc, 50))), "met" if p50 <= 3 else "missed"])
    if "crun" in S:
        rr = pct(S["crun"]["create"], 50) / base
        rows.append(["≥ 5× faster than `crun run`", "%.1f×" % rr, "met" if rr >= 5 else "missed"])
    big = max(c3_size for c3_size in sizes) if sizes else None
    g = idx.get(("rcu", "get_name", big))
    if g is not None:
        rows.append(["registry lookup ≤ 100 ns at %d" % big, "%s ns (get_name), %s ns (find_name)" % (f(g, 1), f(idx.get(("rcu", "find_name", big)), 1)), "met" if g <= 100 else "missed"])
    if c45["api"]:
        nmax = max(c45["api"], key=int)
        sr = pct(c45["api"][nmax]["read_stats"], 50)
        rows.append(["stats read p50 ≤ 30 µs", "%s µs at %s live" % (f(sr, 1), nmax), "met" if sr <= 30 else "missed"])
    bmax = max(c2["runs"], key=int)
    ar = sorted(x["all_running"] for x in c2["runs"][bmax]["sandboxfs-mkdir"])
    ar = ar[len(ar) // 2] / 1e3
    rows.append(["%s-way burst all running ≤ 1 s (target is for 100)" % bmax, "%s ms" % f(ar), "met" if ar <= 1000 else "missed"])
    md.append(table(["target", "this run", ""], rows))
    md.append("")
    if r.get("leftover_mounts"):
        md.append("**Left mounted after the run:** %s" % r["leftover_mounts"])
    write(os.path.join(RES, "latest.md"), md)
    print("\n".join(md))


if __name__ == "__main__":
    main()
