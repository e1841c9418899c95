#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn zcbench records into the benchmark report.

Usage: report.py --out DIR LABEL=RAWFILE [LABEL=RAWFILE ...]

Each RAWFILE holds the ZCB,... lines one guest run printed (scripts/bench.sh
extracts them from the console log); LABEL names the run (tcg, uml, kvm).
Prints the tables and writes into DIR:
  bench.csv       one row per run x path x method x size: medians, spread,
                  ratios to send(), zero-copy share, per-call/per-byte split
  bench-raw.csv   every repetition as measured
  bench-fit.csv   per-call and per-byte cost of each method (fit over sizes)
  bench.svg       sender CPU s/GB vs send size, one line per method, one
                  panel per run and path
  bench-fanout.csv      fan-out cells (one payload to N sockets): one row
                  per run x path x method x size x N: sender CPU per GB
                  delivered (each byte counted once per destination), its
                  ratio to the best other method, completions per payload
  bench-fanout-raw.csv  every fan-out repetition as measured
  report.txt      what was printed
No third-party modules: the SVG is written by hand.
"""

import argparse
import csv
import io
import math
import os
import statistics
import sys

METHODS = ["send", "msg_zerocopy", "uring_zc", "uring_zc_fixed", "sendfile",
           "vmsplice", "zcsend", "zcsend_fixed", "zcsend_batch"]
SHORT = {"send": "send", "msg_zerocopy": "msg_zc", "uring_zc": "uring_zc",
         "uring_zc_fixed": "uring_zcfix", "sendfile": "sendfile",
         "vmsplice": "vmsplice", "zcsend": "zcsend", "zcsend_fixed": "zcs_fix",
         "zcsend_batch": "zcs_bat"}
COLORS = {"send": "#000000", "msg_zerocopy": "#1f77b4", "uring_zc": "#2ca02c",
          "uring_zc_fixed": "#98df8a", "sendfile": "#9467bd",
          "vmsplice": "#8c564b", "zcsend": "#d62728", "zcsend_fixed": "#ff9896",
          "zcsend_batch": "#e377c2"}
# The null call whose cost stands for one system call of each method.
NULL_OF = {"zcsend": "zcsend_version", "zcsend_fixed": "zcsend_version",
           "zcsend_batch": "zcsend_version",
           "uring_zc": "uring_nop",
           "uring_zc_fixed": "uring_nop"}
ACCEL_NAME = {"tcg": "QEMU TCG", "kvm": "QEMU KVM", "uml": "UML"}
ZC_METHODS = ("msg_zerocopy", "uring_zc", "uring_zc_fixed", "zcsend", "zcsend_fixed",
              "zcsend_batch")
# The huge-page variant of every zero-copy method (zcbench --huge: the
# buffer in transparent huge pages), 64K and up: its own rows.
HUGE_METHODS = tuple(m + "_huge" for m in ZC_METHODS)
METHODS += list(HUGE_METHODS)
for _m in ZC_METHODS:
    SHORT[_m + "_huge"] = SHORT[_m] + "_h"
    COLORS[_m + "_huge"] = COLORS[_m]
    NULL_OF[_m + "_huge"] = NULL_OF.get(_m, "getppid")
ZC_METHODS += HUGE_METHODS
COMPL_ZEROCOPY, COMPL_COPIED, COMPL_COPY_PATH = 1, 2, 4
COMPL_FANOUT, COMPL_STABLE = 8, 16
FLAG_NAMES = ((COMPL_ZEROCOPY, "ZEROCOPY"), (COMPL_COPIED, "COPIED"),
              (COMPL_COPY_PATH, "COPY_PATH"), (COMPL_FANOUT, "FANOUT"),
              (COMPL_STABLE, "STABLE"))
# Fan-out: one payload to N sockets (zcbench --fanout).
FANOUT_METHODS = ["fanout_send", "fanout_msg_zc", "fanout_uring_zc_fixed", "fanout_tee",
                  "zcsend_fanout", "zcsend_fanout_stable"]

out = io.StringIO()


def emit(s=""):
    print(s)
    out.write(s + "\n")


def size_str(n):
    n = int(n)
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return "%dM" % (n >> 20)
    if n >= 1024 and n % 1024 == 0:
        return "%dK" % (n >> 10)
    return str(n)


def fmt(v):
    """Three significant digits, no exponent for the usual range."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    a = abs(v)
    if a >= 1000:
        return "%.0f" % v
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    if a >= 0.01:
        return "%.3f" % v
    if a == 0:
        return "0"
    return "%.1e" % v


class Run:
    def __init__(self, label):
        self.label = label
        self.meta = {}
        self.paths = {}          # name -> description
        self.null = {}           # (path, name) -> [cpu per call]
        self.cells = {}          # (path, method, size) -> [rep dicts]
        self.skips = {}          # (path, method, size) -> reason
        self.order = []          # paths in order of appearance
        self.fcells = {}         # (path, method, size, n) -> [rep dicts]
        self.fskips = {}         # (path, method, size, n) -> reason
        self.forder = []         # paths with fan-out cells or skips
        self.end = None

    @property
    def accel(self):
        return self.meta.get("accel", self.label)

    @property
    def title(self):
        a = self.accel
        name = ACCEL_NAME.get(a, a)
        return "%s (%s CPU%s, kernel %s)" % (
            name, self.meta.get("cpus", "?"),
            "" if self.meta.get("cpus") == "1" else "s",
            self.meta.get("kernel", "?"))


def parse(label, path):
    run = Run(label)
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("ZCB,"):
                continue
            p = line.split(",")
            try:
                kind = p[1]
                if kind == "meta":
                    key, val = p[2], ",".join(p[3:])
                    if key == "path":
                        name, _, desc = val.partition(",")
                        run.paths[name] = desc
                    else:
                        run.meta[key] = val
                elif kind == "null":
                    run.null.setdefault((p[2], p[3]), []).append(float(p[4]))
                elif kind == "cell":
                    (pth, method, size, sendsz, rep, nbytes, calls, syscalls,
                     wall, cpu, gcpu, compl, zc, copied, cflags) = p[2:17]
                    rusage = float(p[17]) if len(p) > 17 else float(cpu)
                    key = (pth, method, int(size))
                    if pth not in run.order:
                        run.order.append(pth)
                    run.cells.setdefault(key, []).append(dict(
                        sendsz=int(sendsz), rep=int(rep), bytes=int(nbytes),
                        calls=int(calls), syscalls=int(syscalls),
                        wall=float(wall), cpu=float(cpu), gcpu=float(gcpu),
                        compl=int(compl), zc=int(zc), copied=int(copied),
                        cflags=int(cflags), rusage=rusage))
                elif kind == "skip":
                    run.skips[(p[2], p[3], int(p[4]))] = ",".join(p[5:])
                elif kind == "fanout":
                    (pth, method, size, sendsz, n, rep, payloads, nbytes, sends,
                     syscalls, wall, cpu, gcpu, compl, events, zc, copied, cflags,
                     rusage) = p[2:21]
                    key = (pth, method, int(size), int(n))
                    rec = dict(
                        sendsz=int(sendsz), rep=int(rep), payloads=int(payloads),
                        bytes=int(nbytes), sends=int(sends), syscalls=int(syscalls),
                        wall=float(wall), cpu=float(cpu), gcpu=float(gcpu),
                        compl=int(compl), events=int(events), zc=int(zc),
                        copied=int(copied), cflags=int(cflags), rusage=float(rusage))
                    if pth not in run.forder:
                        run.forder.append(pth)
                    run.fcells.setdefault(key, []).append(rec)
                elif kind == "fanout_skip":
                    key = (p[2], p[3], int(p[4]), int(p[5]))
                    reason = ",".join(p[6:])
                    if p[2] not in run.forder:
                        run.forder.append(p[2])
                    run.fskips[key] = reason
                elif kind == "end":
                    run.end = int(p[2])
            except (IndexError, ValueError):
                # A kernel message cut into the line on the console.
                continue
    return run


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    """Range of the middle values (2nd..4th of 5; all of 3 or fewer) over
    the median, in percent: one disturbed repetition (the host took the CPU
    away) does not hide how well the others agree. min/max are in
    bench.csv."""
    xs = sorted(xs)
    m = statistics.median(xs) if xs else 0
    if not m:
        return 0
    k = len(xs) // 4 if len(xs) >= 4 else 0
    mid = xs[k:len(xs) - k]
    return 100 * (mid[-1] - mid[0]) / m


def null_cost(run, path, method):
    xs = run.null.get((path, NULL_OF.get(method, "getppid")))
    if not xs:
        xs = run.null.get((path, "getppid"), [0.0])
    return statistics.mean(xs)


def aggregate(run):
    """Per (path, method, size): medians and spreads."""
    agg = {}
    for (path, method, size), reps in run.cells.items():
        nc = null_cost(run, path, method)
        mbps = [r["bytes"] / r["wall"] / 1e6 for r in reps if r["wall"] > 0]
        cpu = [r["cpu"] / (r["bytes"] / 1e9) for r in reps if r["bytes"]]
        gcpu = [r["gcpu"] / (r["bytes"] / 1e9) for r in reps if r["bytes"]]
        net = [max(0.0, r["cpu"] - r["syscalls"] * nc) / (r["bytes"] / 1e9)
               for r in reps if r["bytes"]]
        per_call = [r["cpu"] / r["calls"] for r in reps if r["calls"]]
        compl = sum(r["compl"] for r in reps)
        zc = sum(r["zc"] for r in reps)
        cflags = 0
        for r in reps:
            cflags |= r["cflags"]
        a = dict(
            reps=len(reps), sendsz=reps[0]["sendsz"],
            bytes=med([r["bytes"] for r in reps]),
            calls=med([r["calls"] for r in reps]),
            mbps=med(mbps), mbps_min=min(mbps), mbps_max=max(mbps),
            cpu=med(cpu), cpu_min=min(cpu), cpu_max=max(cpu),
            gcpu=med(gcpu), net=med(net), per_call=med(per_call),
            syscalls_per_send=med([r["syscalls"] / r["calls"] for r in reps]),
            compl=compl, zc=zc, copied=sum(r["copied"] for r in reps),
            zc_share=(zc / compl) if compl else None, cflags=cflags,
            null=nc)
        a["cpu_spread"] = spread(cpu)
        a["mbps_spread"] = spread(mbps)
        agg[(path, method, size)] = a
    return agg


def fit(points):
    """Weighted least squares of cpu_per_send = a + b * bytes, each point
    weighted by 1/y^2 (relative error): a in s per send, b in s per byte."""
    pts = [(x, y) for x, y in points if y > 0]
    if len(pts) < 2:
        return None
    sw = swx = swxx = swy = swxy = 0.0
    for x, y in pts:
        w = 1.0 / (y * y)
        sw += w
        swx += w * x
        swxx += w * x * x
        swy += w * y
        swxy += w * x * y
    det = sw * swxx - swx * swx
    if det == 0:
        return None
    a = (swxx * swy - swx * swxy) / det
    b = (sw * swxy - swx * swy) / det
    return a, b


def sizes_of(run, path):
    return sorted({s for (p, _, s) in run.cells if p == path} |
                  {s for (p, _, s) in run.skips if p == path and s})


def methods_of(run, path):
    have = {m for (p, m, _) in run.cells if p == path}
    return [m for m in METHODS if m in have]


def table(run, agg, path, title, value, spread=None, ratio=True, unit=""):
    sizes = sizes_of(run, path)
    methods = methods_of(run, path)
    cw = 19 if ratio else 13
    emit(title)
    emit("%-6s" % "size" + "".join(("%" + str(cw) + "s") % SHORT[m] for m in methods))
    for s in sizes:
        base = agg.get((path, "send", s))
        row = "%-6s" % size_str(s)
        for m in methods:
            a = agg.get((path, m, s))
            if not a:
                row += ("%" + str(cw) + "s") % "n/a"
                continue
            v = value(a)
            txt = fmt(v) + (unit if v is not None else "")
            if spread:
                txt += "±%.0f%%" % spread(a)
            if ratio:
                if base and value(base) and v is not None and m != "send":
                    txt += " x%-5s" % fmt(v / value(base))
                else:
                    txt += "       "
            row += " " + txt.rjust(cw - 1)
        emit(row)


def winners(run, agg, path, key, lower_better, what):
    parts = []
    for s in sizes_of(run, path):
        cand = [(agg[(path, m, s)][key], m) for m in methods_of(run, path)
                if (path, m, s) in agg]
        if not cand:
            continue
        v, m = (min if lower_better else max)(cand)
        base = agg.get((path, "send", s))
        r = ""
        if base and m != "send" and base[key]:
            r = " %sx" % fmt(v / base[key])
        parts.append("%s %s%s" % (size_str(s), SHORT[m], r))
    emit("winner per size (%s): %s" % (what, ", ".join(parts)))


def report_run(run, agg, fits):
    emit("=" * 100)
    emit("%s: %s" % (run.label.upper(), run.title))
    emit("cpu model: %s; %s rep(s) per cell, %s bytes per cell (at most %s sends)%s"
         % (run.meta.get("cpu_model", "?"), run.meta.get("reps", "?"),
            run.meta.get("bytes", "?"), run.meta.get("max_calls", "?"),
            "; SMOKE MODE: tiny byte counts, numbers mean nothing"
            if run.meta.get("smoke") == "1" else ""))
    if run.meta.get("zcsend_copy_threshold"):
        emit("zcsend copy_threshold=%s (every size takes the zero-copy path)"
             % run.meta["zcsend_copy_threshold"])
    nulls = []
    for (p, n), xs in sorted(run.null.items()):
        if p == (run.order[0] if run.order else p):
            nulls.append("%s %.2f us" % (n, statistics.mean(xs) * 1e6))
    if nulls:
        emit("null calls (sender CPU per call): " + ", ".join(nulls))
    for path in run.order:
        emit("")
        emit("-" * 100)
        emit("[%s] %s: %s" % (run.label.upper(), path, run.paths.get(path, "")))
        table(run, agg, path,
              "sender CPU s/GB (median; ±spread = middle repetitions' range / median; xN = ratio to send(); lower is better)",
              lambda a: a["cpu"], spread=lambda a: a["cpu_spread"])
        table(run, agg, path, "throughput MB/s (until buffers reusable / all bytes ACKed; higher is better)",
              lambda a: a["mbps"], spread=lambda a: a["mbps_spread"])
        table(run, agg, path,
              "per-byte sender CPU s/GB: per-call overhead removed (syscalls x null-call cost)",
              lambda a: a["net"])
        table(run, agg, path,
              "all-CPU (guest-wide) s/GB: adds softirq, kworkers (zcsend's completion work), receivers",
              lambda a: a["gcpu"])
        table(run, agg, path, "completions reported zero-copy (share; '-' = no completion to report)",
              lambda a: None if a["zc_share"] is None else 100 * a["zc_share"],
              ratio=False, unit="%")
        table(run, agg, path, "system calls per send", lambda a: a["syscalls_per_send"],
              ratio=False)
        winners(run, agg, path, "cpu", True, "sender CPU s/GB")
        winners(run, agg, path, "mbps", False, "MB/s")
        flags = []
        for s in sizes_of(run, path):
            a = agg.get((path, "zcsend", s))
            if a:
                names = [n for bit, n in ((COMPL_ZEROCOPY, "ZEROCOPY"),
                                          (COMPL_COPIED, "COPIED"),
                                          (COMPL_COPY_PATH, "COPY_PATH"))
                         if a["cflags"] & bit]
                flags.append("%s %s" % (size_str(s), "|".join(names) or "-"))
        if flags:
            emit("zcsend completion flags seen: " + ", ".join(flags))
        skipped = sorted({(s, r) for (p, m, s), r in run.skips.items() if p == path})
        for s, r in skipped:
            emit("n/a: %s%s" % (size_str(s) + ": " if s else "", r))
    if not run.order:
        return
    emit("")
    emit("HEADLINE [%s]: cost per send = per-call + per-byte x bytes, fitted over the sizes "
         "(weighted by 1/y^2)" % run.label.upper())
    emit("%-16s" % "method" + "".join("%30s" % p for p in run.order))
    emit("%-16s" % "" + "".join("%30s" % "per-byte s/GB  per-call us" for _ in run.order))
    for m in METHODS:
        row = "%-16s" % m
        seen = False
        for p in run.order:
            f = fits.get((run.label, p, m))
            if f:
                seen = True
                # A slope below zero is noise around zero.
                b = "~0" if f[1] < 0 else fmt(f[1] * 1e9)
                row += "%30s" % ("%s   %s" % (b, fmt(f[0] * 1e6)))
            else:
                row += "%30s" % "n/a"
        if seen:
            emit(row)
    # Where a zero-copy method starts to beat send(): per-call extra over
    # per-byte saving.
    for p in run.order:
        base = fits.get((run.label, p, "send"))
        parts = []
        for m in ZC_METHODS + ("sendfile", "vmsplice"):
            f = fits.get((run.label, p, m))
            if not base or not f:
                continue
            if f[1] >= base[1]:
                parts.append("%s never" % SHORT[m])
            elif f[0] <= base[0]:
                parts.append("%s always" % SHORT[m])
            else:
                be = (f[0] - base[0]) / (base[1] - f[1])
                parts.append("%s %.1fK" % (SHORT[m], be / 1024))
        if parts:
            emit("break-even vs send() on %s (fit): %s" % (p, ", ".join(parts)))


def compare(runs, aggs):
    """Where the runs disagree on zero-copy vs send()."""
    if len(runs) < 2:
        return
    emit("")
    emit("=" * 100)
    emit("WHERE THE RUNS DISAGREE (sender CPU ratio to send(); <1 = cheaper than copying;")
    emit("'disagree' = one run below 0.9, the other above 1.1)")
    labels = [r.label for r in runs]
    for path in sorted({p for r in runs for p in r.order}):
        common = [r for r in runs if path in r.order]
        if len(common) < 2:
            emit("%s: only in %s" % (path, ", ".join(r.label.upper() for r in common)))
            continue
        emit("%s:" % path)
        for m in ZC_METHODS + ("sendfile", "vmsplice"):
            row = "  %-15s" % m
            parts, verdicts = [], []
            for s in sizes_of(common[0], path):
                rs = []
                for r in common:
                    a = aggs[r.label].get((path, m, s))
                    b = aggs[r.label].get((path, "send", s))
                    rs.append(a["cpu"] / b["cpu"] if a and b and b["cpu"] else None)
                if None in rs:
                    continue
                parts.append("%s %s" % (size_str(s), "/".join(fmt(x) for x in rs)))
                # Only a clear difference of sign counts (10% either side).
                if min(rs) < 0.9 and max(rs) > 1.1:
                    verdicts.append(size_str(s))
            if parts:
                emit(row + "  ".join(parts) + ("   <- disagree at " + ",".join(verdicts)
                                              if verdicts else ""))
    emit("  (ratios given as %s)" % "/".join(l.upper() for l in labels))


def faggregate(run):
    """Per (path, method, size, n) fan-out cell: medians over repetitions, per
    GB delivered (a payload sent to N sockets counts N times)."""
    agg = {}
    for key, reps in run.fcells.items():
        ok = [r for r in reps if r["bytes"] and r["wall"] > 0 and r["payloads"]]
        if not ok:
            continue
        cpu = [r["cpu"] / (r["bytes"] / 1e9) for r in ok]
        mbps = [r["bytes"] / r["wall"] / 1e6 for r in ok]
        compl = sum(r["compl"] for r in ok)
        zc = sum(r["zc"] for r in ok)
        payloads = sum(r["payloads"] for r in ok)
        cflags = 0
        for r in ok:
            cflags |= r["cflags"]
        agg[key] = dict(
            reps=len(ok), sendsz=ok[0]["sendsz"],
            payloads=med([r["payloads"] for r in ok]),
            bytes=med([r["bytes"] for r in ok]),
            sends=med([r["sends"] for r in ok]),
            cpu=med(cpu), cpu_min=min(cpu), cpu_max=max(cpu), cpu_spread=spread(cpu),
            mbps=med(mbps), mbps_min=min(mbps), mbps_max=max(mbps),
            mbps_spread=spread(mbps),
            gcpu=med([r["gcpu"] / (r["bytes"] / 1e9) for r in ok]),
            per_payload=med([r["cpu"] / r["payloads"] for r in ok]),
            syscalls_per_payload=med([r["syscalls"] / r["payloads"] for r in ok]),
            compl=compl, zc=zc, copied=sum(r["copied"] for r in ok),
            compl_per_payload=compl / payloads,
            events_per_payload=sum(r["events"] for r in ok) / payloads,
            zc_share=(zc / compl) if compl else None, cflags=cflags)
    return agg


def fsizes_of(run, path):
    return sorted({s for (p, _, s, _) in run.fcells if p == path} |
                  {s for (p, _, s, _) in run.fskips if p == path and s})


def fns_of(run, path):
    return sorted({n for (p, _, _, n) in run.fcells if p == path} |
                  {n for (p, _, _, n) in run.fskips if p == path and n})


def fmethods_of(run, path):
    have = {m for (p, m, _, _) in run.fcells if p == path}
    return [m for m in FANOUT_METHODS if m in have]


def best_peer(fagg, path, method, size, n):
    """The cheapest other method (sender CPU per GB) of a fan-out column; for
    one of zcsend's methods, the cheapest peer's (zcsend's other mode is not
    a peer: stable mode can be the cheaper of the two at many
    destinations)."""
    own = method.startswith("zcsend")
    peers = [(a["cpu"], m) for (p, m, s, k), a in fagg.items()
             if p == path and s == size and k == n and m != method and a["cpu"] > 0
             and not (own and m.startswith("zcsend"))]
    return min(peers) if peers else None


def fmt_count(v):
    """A per-payload count: whole numbers as such."""
    return "%d" % round(v) if abs(v - round(v)) < 0.005 else fmt(v)


def ftable(run, fagg, path, size, title, value, spread=None, ratio=False, unit="",
           text=None, cw=None):
    ns = fns_of(run, path)
    methods = fmethods_of(run, path)
    cw = cw or (22 if ratio else 14)
    emit(title)
    emit("%-22s" % "method" + "".join(("%" + str(cw) + "s") % ("N=%d" % n) for n in ns))
    for m in methods:
        row = "%-22s" % m
        for n in ns:
            a = fagg.get((path, m, size, n))
            if not a:
                row += ("%" + str(cw) + "s") % "n/a"
                continue
            if text:
                txt = text(a)
            else:
                v = value(a)
                txt = fmt(v) + (unit if v is not None else "")
                if spread:
                    txt += "±%.0f%%" % spread(a)
                if ratio:
                    b = best_peer(fagg, path, m, size, n)
                    txt += (" x%-5s" % fmt(v / b[0])) if b and v is not None else "       "
            row += " " + txt.rjust(cw - 1)
        emit(row)


def report_fanout(run, fagg):
    if not run.forder:
        return
    emit("")
    emit("=" * 100)
    emit("FAN-OUT [%s]: one payload to N sockets; every byte counted once per destination"
         % run.label.upper())
    emit("settings: N = %s, payloads %s, %s bytes delivered per cell"
         % (run.meta.get("fanout", "?"), run.meta.get("fanout_sizes", "?"),
            run.meta.get("fanout_bytes", "?")))
    for path in run.forder:
        emit("")
        emit("-" * 100)
        whole = [r for (p, m, s, n), r in run.fskips.items() if p == path and m == "*"]
        if not any(p == path for (p, _, _, _) in run.fcells):
            emit("[%s] %s fan-out: not measured: %s" % (
                run.label.upper(), path, "; ".join(sorted(set(whole))) or "no cells"))
            continue
        emit("[%s] %s fan-out: %s" % (run.label.upper(), path, run.paths.get(path, "")))
        for size in fsizes_of(run, path):
            have = [a for (p, m, s, n), a in fagg.items() if p == path and s == size]
            if not have:
                why = sorted({r for (p, m, s, n), r in run.fskips.items()
                              if p == path and s == size})
                emit("")
                emit("%s payloads: n/a (%s)" % (size_str(size), "; ".join(why)))
                continue
            sendsz = have[0]["sendsz"]
            label = size_str(size) + ("" if sendsz == size else " (%d-byte datagrams)" % sendsz)
            emit("")
            ftable(run, fagg, path, size,
                   "%s payloads: sender CPU s/GB delivered (median ±spread; xR = ratio to the "
                   "best other method of the column: <1 = the cheapest, by that margin)" % label,
                   lambda a: a["cpu"], spread=lambda a: a["cpu_spread"], ratio=True)
            ftable(run, fagg, path, size,
                   "%s payloads: MB/s delivered (until every buffer is reusable, every byte "
                   "ACKed)" % label, lambda a: a["mbps"])
            ftable(run, fagg, path, size,
                   "%s payloads: all-CPU s/GB delivered (softirq, kworkers included)" % label,
                   lambda a: a["gcpu"])
            ftable(run, fagg, path, size,
                   "%s payloads: completions per payload (messages read per payload), "
                   "zero-copy share of the completions" % label, None, cw=22,
                   text=lambda a: "-" if not a["compl"] else "%s (%s) %s" % (
                       fmt_count(a["compl_per_payload"]), fmt_count(a["events_per_payload"]),
                       "%.0f%%" % (100 * a["zc_share"])))
            ftable(run, fagg, path, size, "%s payloads: system calls per payload" % label,
                   lambda a: a["syscalls_per_payload"])
            parts = []
            for n in fns_of(run, path):
                cand = [(a["cpu"], m) for (p, m, s, k), a in fagg.items()
                        if p == path and s == size and k == n]
                if not cand:
                    continue
                v, m = min(cand)
                b = best_peer(fagg, path, m, size, n)
                parts.append("N=%d %s%s" % (n, m, (" (x%s of %s)" % (fmt(v / b[0]), b[1]))
                                              if b else ""))
            emit("cheapest per N (sender CPU s/GB delivered): " + ", ".join(parts))
            flags = []
            for m in ("zcsend_fanout", "zcsend_fanout_stable"):
                seen = 0
                for (p, mm, s, n), a in fagg.items():
                    if p == path and mm == m and s == size:
                        seen |= a["cflags"]
                if seen:
                    flags.append("%s %s" % (m, "|".join(nm for bit, nm in FLAG_NAMES
                                                        if seen & bit) or "-"))
            if flags:
                emit("zcsend completion flags seen: " + ", ".join(flags))
        # Other skips, one line per method and reason (UDP's 1M is above).
        skipped = {}
        for (p, m, s, n), r in sorted(run.fskips.items()):
            if p == path and m != "*" and not r.startswith("larger than one UDP datagram"):
                skipped.setdefault((m, r), []).append("%s/N=%d" % (size_str(s), n))
        for (m, r), where in sorted(skipped.items()):
            emit("n/a: %s (%s): %s" % (m, " ".join(where), r))


def write_fanout_csv(runs, faggs, out_dir):
    with open(os.path.join(out_dir, "bench-fanout.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "accel", "kernel", "cpus", "path", "method", "size", "send_size",
                    "fanout", "reps", "payloads_per_rep", "bytes_delivered_per_rep",
                    "sends_per_rep", "mbps_delivered_median", "mbps_delivered_min",
                    "mbps_delivered_max", "cpu_s_per_gb_delivered_median",
                    "cpu_s_per_gb_delivered_min", "cpu_s_per_gb_delivered_max",
                    "best_peer", "cpu_ratio_vs_best_peer", "cpu_ratio_vs_fanout_send",
                    "guest_cpu_s_per_gb_delivered_median", "cpu_us_per_payload_median",
                    "syscalls_per_payload", "completions_per_payload",
                    "messages_per_payload", "completions", "zerocopy", "copied",
                    "zerocopy_share", "zcsend_flags"])
        for r in runs:
            fagg = faggs[r.label]
            for p in r.forder:
                for m in FANOUT_METHODS:
                    for s in fsizes_of(r, p):
                        for n in fns_of(r, p):
                            a = fagg.get((p, m, s, n))
                            if not a:
                                continue
                            b = best_peer(fagg, p, m, s, n)
                            base = fagg.get((p, "fanout_send", s, n))
                            w.writerow([
                                r.label, r.accel, r.meta.get("kernel", ""),
                                r.meta.get("cpus", ""), p, m, s, a["sendsz"], n, a["reps"],
                                int(a["payloads"]), int(a["bytes"]), int(a["sends"]),
                                "%.2f" % a["mbps"], "%.2f" % a["mbps_min"],
                                "%.2f" % a["mbps_max"], "%.4f" % a["cpu"],
                                "%.4f" % a["cpu_min"], "%.4f" % a["cpu_max"],
                                b[1] if b else "", "%.4f" % (a["cpu"] / b[0]) if b else "",
                                "%.4f" % (a["cpu"] / base["cpu"])
                                if base and base["cpu"] and m != "fanout_send" else "",
                                "%.4f" % a["gcpu"], "%.3f" % (a["per_payload"] * 1e6),
                                "%.3f" % a["syscalls_per_payload"],
                                "%.3f" % a["compl_per_payload"],
                                "%.3f" % a["events_per_payload"],
                                a["compl"], a["zc"], a["copied"],
                                "" if a["zc_share"] is None else "%.4f" % a["zc_share"],
                                a["cflags"] if m.startswith("zcsend") else ""])
    with open(os.path.join(out_dir, "bench-fanout-raw.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "path", "method", "size", "send_size", "fanout", "rep",
                    "payloads", "bytes_delivered", "sends", "syscalls", "wall_s", "cpu_s",
                    "guest_cpu_s", "completions", "messages", "zerocopy", "copied", "flags",
                    "rusage_thread_s"])
        for r in runs:
            for (p, m, s, n), reps in sorted(r.fcells.items()):
                for x in reps:
                    w.writerow([r.label, p, m, s, x["sendsz"], n, x["rep"], x["payloads"],
                                x["bytes"], x["sends"], x["syscalls"], x["wall"], x["cpu"],
                                x["gcpu"], x["compl"], x["events"], x["zc"], x["copied"],
                                x["cflags"], x["rusage"]])


def svg(runs, aggs, path_out):
    """Sender CPU s/GB vs send size, log-log, one panel per run x path."""
    cols = []
    for r in runs:
        for p in r.order:
            if p not in cols:
                cols.append(p)
    allsz = sorted({s for r in runs for (_, _, s) in r.cells})
    pw, ph, ml, mt, mb, mr = 330, 250, 58, 30, 40, 10
    legend_h = 34
    W = len(cols) * (pw + ml + mr) + 20
    H = len(runs) * (ph + mt + mb) + legend_h + 30
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="11">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="18" font-size="14" font-weight="bold">zcsend benchmark: '
         'sender CPU seconds per GB vs send size (log-log; lower is better)</text>']
    lx = 10
    for m in METHODS:
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"/>'
                 % (lx, 36, lx + 22, 36, COLORS[m]))
        o.append('<text x="%d" y="40">%s</text>' % (lx + 26, m))
        lx += 34 + 7 * len(m)
    for ri, r in enumerate(runs):
        agg = aggs[r.label]
        for ci, path in enumerate(cols):
            x0 = 10 + ci * (pw + ml + mr) + ml
            y0 = legend_h + 20 + ri * (ph + mt + mb) + mt
            o.append('<text x="%d" y="%d" font-weight="bold">%s · %s</text>'
                     % (x0, y0 - 8, ACCEL_NAME.get(r.accel, r.accel), path))
            o.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>'
                     % (x0, y0, pw, ph))
            pts = {m: [(s, agg[(path, m, s)]["cpu"]) for s in sizes_of(r, path)
                       if (path, m, s) in agg and agg[(path, m, s)]["cpu"] > 0]
                   for m in METHODS}
            ys = [y for v in pts.values() for _, y in v]
            xs = [x for v in pts.values() for x, _ in v]
            if not ys:
                why = sorted({w for (p, _, _), w in r.skips.items() if p == path})
                o.append('<text x="%d" y="%d">no data%s</text>'
                         % (x0 + 10, y0 + 20, (": " + why[0]) if why else ""))
                continue
            ylo = 10 ** math.floor(math.log10(min(ys)))
            yhi = 10 ** math.ceil(math.log10(max(ys)))
            if yhi <= ylo:
                yhi = ylo * 10
            # The same size axis in every panel.
            xs = allsz
            xlo, xhi = math.log2(min(xs)), math.log2(max(xs))
            if xhi <= xlo:
                xhi = xlo + 1

            def X(v):
                return x0 + 8 + (math.log2(v) - xlo) / (xhi - xlo) * (pw - 16)

            def Y(v):
                return y0 + ph - (math.log10(v) - math.log10(ylo)) / \
                    (math.log10(yhi) - math.log10(ylo)) * ph
            d = ylo
            while d <= yhi * 1.0001:
                for k in (1, 2, 5):
                    v = d * k
                    if v > yhi * 1.0001:
                        break
                    y = Y(v)
                    o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>'
                             % (x0, y, x0 + pw, y, "#ccc" if k == 1 else "#eee"))
                    if k == 1 or (math.log10(yhi / ylo) <= 2):
                        o.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                                 % (x0 - 4, y + 4, fmt(v)))
                d *= 10
            for s in sorted(set(xs)):
                o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>'
                         % (X(s), y0, X(s), y0 + ph))
                o.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                         % (X(s), y0 + ph + 14, size_str(s)))
            o.append('<text x="%d" y="%d" text-anchor="middle">send size (bytes)</text>'
                     % (x0 + pw / 2, y0 + ph + 30))
            o.append('<text transform="translate(%d,%d) rotate(-90)" text-anchor="middle">'
                     'sender CPU s/GB</text>' % (x0 - 44, y0 + ph / 2))
            for m in METHODS:
                v = pts[m]
                if not v:
                    continue
                w = 3 if m.startswith("zcsend") or m == "send" else 1.8
                o.append('<polyline fill="none" stroke="%s" stroke-width="%s" points="%s"/>'
                         % (COLORS[m], w, " ".join("%.1f,%.1f" % (X(x), Y(y)) for x, y in v)))
                for x, y in v:
                    o.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>'
                             % (X(x), Y(y), COLORS[m]))
    o.append("</svg>")
    with open(path_out, "w") as f:
        f.write("\n".join(o) + "\n")


def targets(runs, aggs, faggs, fits):
    """The "done when" bounds of the project's speed issues (7: the cheapest
    zero-copy send; 9: fan-out), each with what this run measured: one row
    per bound and machine/path, "met" or "NOT met". Rows whose cells were
    not measured (a partial run) are left out."""
    by = {r.label: r for r in runs}
    rows = []

    def fitv(label, path, method):
        return fits.get((label, path, method))

    def cell(label, path, method, size):
        a = aggs.get(label, {}).get((path, method, size))
        return a["cpu"] if a else None

    def add(name, where, value, bound, met, detail):
        rows.append((name, where, value, bound, met, detail))

    # Issue 7.
    for label, path in (("tcg", "udp-dummy0"), ("tcg", "tcp-tap"), ("uml", "udp-dummy0")):
        z, m = fitv(label, path, "zcsend"), fitv(label, path, "msg_zerocopy")
        # A fit whose per-call cost is not positive is noise: no ratio.
        if z and m and m[0] > 0 and z[0] > 0:
            r = z[0] / m[0]
            add("zcsend per call <= msg_zerocopy's", "%s %s" % (label.upper(), path),
                "%.2fx" % r, "1.00x", r <= 1.0,
                "%.2f vs %.2f us (fit)" % (z[0] * 1e6, m[0] * 1e6))
    z, u = fitv("tcg", "udp-dummy0", "zcsend_fixed"), fitv("tcg", "udp-dummy0", "uring_zc_fixed")
    if z and u:
        add("zcsend_fixed per byte <= uring_zc_fixed's", "TCG udp-dummy0",
            "%.4f" % (z[1] * 1e9), "%.4f s/GB" % (u[1] * 1e9), z[1] <= u[1], "fit slopes")
    for label, path, bound in (("tcg", "udp-dummy0", 1.0), ("uml", "udp-dummy0", 1.0),
                               ("tcg", "tcp-tap", 1.1)):
        if label not in by:
            continue
        parts, worst = [], None
        for size in sizes_of(by[label], path):
            if size < 4096:
                continue
            a, b = cell(label, path, "zcsend_batch", size), cell(label, path, "uring_zc_fixed", size)
            if a and b:
                parts.append("%s %.2f" % (size_str(size), a / b))
                worst = max(worst or 0, a / b)
        if worst is not None:
            add("zcsend_batch s/GB <= %.1fx uring_zc_fixed's, every size >= 4K" % bound,
                "%s %s" % (label.upper(), path), "%.2fx" % worst, "%.2fx" % bound,
                worst <= bound, ", ".join(parts))
    for label, bound in (("uml", 4096), ("tcg", 8192)):
        z, s0 = fitv(label, "udp-dummy0", "zcsend_batch"), fitv(label, "udp-dummy0", "send")
        if z and s0:
            # The size from which zcsend_batch stays cheaper: none if it
            # costs as much or more per byte (then it is cheaper, if at
            # all, only below a crossover).
            if z[1] >= s0[1]:
                be = float("inf")
            else:
                be = max(0.0, (z[0] - s0[0]) / (s0[1] - z[1]))
            add("zcsend_batch break-even vs send()", "%s udp-dummy0" % label.upper(),
                "%.1fK" % (be / 1024), "%dK" % (bound // 1024), be <= bound, "fit")
    for label in ("tcg", "uml"):
        if label not in by:
            continue
        parts, worst = [], None
        for size in sizes_of(by[label], "tcp-lo"):
            if size < 16384:
                continue
            a, b = cell(label, "tcp-lo", "zcsend", size), cell(label, "tcp-lo", "send", size)
            if a and b:
                parts.append("%s %.2f" % (size_str(size), a / b))
                worst = max(worst or 0, a / b)
        if worst is not None:
            add("zcsend on tcp-lo <= 1.05x send(), >= 16K (issue 7 item 6)",
                "%s tcp-lo" % label.upper(), "%.2fx" % worst, "1.05x", worst <= 1.05,
                ", ".join(parts))
    # Issue 9.
    for label in ("tcg", "uml"):
        fagg = faggs.get(label, {})
        for n in (8, 64):
            keys = [k for k in fagg if k[0] == "udp-dummy0" and k[1] == "zcsend_fanout"
                    and k[3] == n]
            for k in keys:
                b = best_peer(fagg, k[0], k[1], k[2], n)
                if b:
                    r = fagg[k]["cpu"] / b[0]
                    add("zcsend_fanout s/GB <= 0.7x best peer's", "%s udp-dummy0 %s x%d"
                        % (label.upper(), size_str(k[2]), n), "%.2fx" % r, "0.70x", r <= 0.7,
                        "%.4f vs %s %.4f s/GB" % (fagg[k]["cpu"], b[1], b[0]))
        for k in [k for k in fagg if k[0] == "udp-dummy0" and k[1] == "zcsend_fanout_stable"
                  and k[3] == 8]:
            st = fagg[k]["cpu"]
            fs = fagg.get((k[0], "fanout_send", k[2], 8))
            tee = fagg.get((k[0], "fanout_tee", k[2], 8))
            if fs and tee:
                r = st / fs["cpu"]
                add("zcsend_fanout_stable <= 0.5x fanout_send's, below fanout_tee's",
                    "%s udp-dummy0 %s x8" % (label.upper(), size_str(k[2])), "%.2fx" % r, "0.50x",
                    r <= 0.5 and st < tee["cpu"],
                    "%.4f vs send %.4f, tee %.4f s/GB" % (st, fs["cpu"], tee["cpu"]))
    if not rows:
        return rows
    emit("")
    emit("=" * 100)
    emit("TARGETS (issue 7: the cheapest zero-copy send; issue 9: fan-out): this run")
    for name, where, value, bound, met, detail in rows:
        emit("%-62s %-26s %8s  bound %-10s %-8s %s" % (name, where, value, bound,
                                                      "met" if met else "NOT met", detail))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("runs", nargs="+", metavar="LABEL=RAWFILE")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    runs = []
    for spec in args.runs:
        label, _, path = spec.partition("=")
        if not os.path.exists(path):
            print("report: %s missing, run %s left out" % (path, label), file=sys.stderr)
            continue
        r = parse(label, path)
        if not r.cells and not r.fcells:
            print("report: no cells in %s, run %s left out" % (path, label), file=sys.stderr)
            continue
        runs.append(r)
    if not runs:
        print("report: nothing to report", file=sys.stderr)
        return 1

    aggs = {r.label: aggregate(r) for r in runs}
    faggs = {r.label: faggregate(r) for r in runs}
    fits = {}
    for r in runs:
        agg = aggs[r.label]
        for p in r.order:
            for m in METHODS:
                pts = [(agg[(p, m, s)]["sendsz"], agg[(p, m, s)]["per_call"])
                       for s in sizes_of(r, p) if (p, m, s) in agg]
                f = fit(pts)
                if f:
                    fits[(r.label, p, m)] = f

    for r in runs:
        report_run(r, aggs[r.label], fits)
        report_fanout(r, faggs[r.label])
    compare(runs, aggs)
    trows = targets(runs, aggs, faggs, fits)

    with open(os.path.join(args.out, "bench.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "accel", "kernel", "cpus", "path", "method", "size",
                    "send_size", "reps", "bytes_per_rep", "sends_per_rep",
                    "mbps_median", "mbps_min", "mbps_max",
                    "cpu_s_per_gb_median", "cpu_s_per_gb_min", "cpu_s_per_gb_max",
                    "cpu_ratio_vs_send", "mbps_ratio_vs_send",
                    "net_s_per_gb_median", "guest_cpu_s_per_gb_median",
                    "cpu_us_per_send_median", "syscalls_per_send",
                    "null_call_us", "completions", "zerocopy", "copied",
                    "zerocopy_share", "zcsend_flags"])
        for r in runs:
            agg = aggs[r.label]
            for p in r.order:
                for m in METHODS:
                    for s in sizes_of(r, p):
                        a = agg.get((p, m, s))
                        if not a:
                            continue
                        b = agg.get((p, "send", s))
                        w.writerow([
                            r.label, r.accel, r.meta.get("kernel", ""),
                            r.meta.get("cpus", ""), p, m, s, a["sendsz"], a["reps"],
                            int(a["bytes"]), int(a["calls"]),
                            "%.2f" % a["mbps"], "%.2f" % a["mbps_min"], "%.2f" % a["mbps_max"],
                            "%.4f" % a["cpu"], "%.4f" % a["cpu_min"], "%.4f" % a["cpu_max"],
                            "%.4f" % (a["cpu"] / b["cpu"]) if b and b["cpu"] else "",
                            "%.4f" % (a["mbps"] / b["mbps"]) if b and b["mbps"] else "",
                            "%.4f" % a["net"], "%.4f" % a["gcpu"],
                            "%.3f" % (a["per_call"] * 1e6), "%.3f" % a["syscalls_per_send"],
                            "%.3f" % (a["null"] * 1e6), a["compl"], a["zc"], a["copied"],
                            "" if a["zc_share"] is None else "%.4f" % a["zc_share"],
                            a["cflags"] if m.startswith("zcsend") else ""])
    with open(os.path.join(args.out, "bench-raw.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "path", "method", "size", "send_size", "rep", "bytes",
                    "sends", "syscalls", "wall_s", "cpu_s", "guest_cpu_s",
                    "completions", "zerocopy", "copied", "flags", "rusage_thread_s"])
        for r in runs:
            for (p, m, s), reps in sorted(r.cells.items()):
                for x in reps:
                    w.writerow([r.label, p, m, s, x["sendsz"], x["rep"], x["bytes"],
                                x["calls"], x["syscalls"], x["wall"], x["cpu"],
                                x["gcpu"], x["compl"], x["zc"], x["copied"], x["cflags"],
                                x["rusage"]])
    with open(os.path.join(args.out, "bench-fit.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "path", "method", "per_call_us", "per_byte_s_per_gb"])
        for (label, p, m), (a, b) in sorted(fits.items()):
            w.writerow([label, p, m, "%.3f" % (a * 1e6), "%.4f" % (b * 1e9)])
    with open(os.path.join(args.out, "targets.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["target", "where", "measured", "bound", "met", "detail"])
        for name, where, value, bound, met, detail in trows:
            w.writerow([name, where, value, bound, "yes" if met else "no", detail])
    svg([r for r in runs if r.cells], aggs, os.path.join(args.out, "bench.svg"))
    write_fanout_csv(runs, faggs, args.out)
    emit("")
    emit("written: %s/{bench.csv,bench-raw.csv,bench-fit.csv,bench.svg,bench-fanout.csv,"
         "bench-fanout-raw.csv,targets.csv,report.txt}" % args.out)
    with open(os.path.join(args.out, "report.txt"), "w") as f:
        f.write(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
