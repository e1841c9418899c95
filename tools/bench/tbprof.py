#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Maps tbprof.so's counts (tools/bench/tbprof.c) to kernel functions.

Usage: tbprof.py --map System.map RAW PREFIX [--top N] [--cells A,B]

RAW is the run's raw-tcg.txt: its ZCB,tbmark records name the cell of each
pair of markers (the counts of the k-th cell's timed part are PREFIX.<2k>),
its ZCB,ksym records the module's symbols. Prints, per cell (the reps of a
path, method and size summed), the guest kernel's instructions, memory
accesses, translation blocks and locked instructions run per send, in total and for the top
functions by instructions; then the totals of every cell side by side.
Under QEMU TCG these counts, not timings, say what a path costs (a memory
access costs a softmmu TLB lookup on top of its instruction).
"""

import argparse
import bisect
import collections
import shutil
import subprocess
import sys


def load_symbols(system_map, raw):
    syms = []
    with open(system_map) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[1] in "tTwW":
                syms.append((int(parts[0], 16), parts[2]))
    module = []
    for rec in raw:
        if rec[1] == "ksym" and len(rec) >= 5 and rec[3] in "tTwW":
            module.append((int(rec[2], 16), rec[4]))
    if module:
        tool = shutil.which("llvm-cxxfilt-19") or shutil.which("c++filt")
        if tool:
            out = subprocess.run([tool], input="\n".join(n for _, n in module),
                                 capture_output=True, text=True).stdout.split("\n")
            module = [(a, "[zcsend] " + (out[i] if i < len(out) and out[i] else n))
                      for i, (a, n) in enumerate(module)]
        else:
            module = [(a, "[zcsend] " + n) for a, n in module]
    syms += module
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def symbol(addrs, names, a):
    i = bisect.bisect_right(addrs, a) - 1
    return names[i] if i >= 0 else hex(a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--map", required=True)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--cells", default="", help="methods to show (default all)")
    ap.add_argument("raw")
    ap.add_argument("prefix")
    args = ap.parse_args()

    with open(args.raw) as f:
        raw = [line.rstrip("\n").split(",") for line in f if line.startswith("ZCB,")]
    addrs, names = load_symbols(args.map, raw)
    want = set(filter(None, args.cells.split(",")))

    cells = collections.OrderedDict()
    marks = [r for r in raw if r[1] == "tbmark"]
    for k, r in enumerate(marks, 1):
        path, method, size, calls = r[2], r[3], r[4], int(r[6])
        if want and method not in want:
            continue
        key = (path, method, size)
        c = cells.setdefault(key, {"calls": 0, "fn": collections.Counter(),
                                   "mem": collections.Counter(),
                                   "tb": collections.Counter(),
                                   "at": collections.Counter(),
                                   "lk": collections.Counter(), "tr": 0})
        c["calls"] += calls
        try:
            f = open(f"{args.prefix}.{2 * k}")
        except OSError as e:
            print(f"tbprof: {e}", file=sys.stderr)
            return 1
        with f:
            for line in f:
                if line.startswith("# translations "):
                    c["tr"] += int(line.split()[2])
                    continue
                v, insns, execs, mems, atomics, lookups = line.split()
                fn = symbol(addrs, names, int(v, 16))
                c["at"][fn] += int(atomics)
                c["lk"][fn] += int(lookups)
                c["fn"][fn] += int(insns)
                c["mem"][fn] += int(mems)
                c["tb"][fn] += int(execs)
    if not cells:
        print("tbprof: no marked cells", file=sys.stderr)
        return 1

    summary = []
    for (path, method, size), c in cells.items():
        n = c["calls"] or 1
        ti, tm, tt, ta, tl = (sum(c[k].values()) / n for k in ("fn", "mem", "tb", "at", "lk"))
        summary.append((path, method, size, ti, tm, tt, ta, tl))
        print(f"== {path} {method} {size}: per send {ti:.0f} instructions, "
              f"{tm:.0f} memory accesses, {tt:.0f} blocks ({tl:.0f} entered by a "
              f"lookup), {ta:.1f} atomics ({c['calls']} sends; {c['tr']} blocks translated)")
        print(f"   {'insns':>8} {'mems':>7} {'blocks':>6} {'lookup':>6} {'atomic':>6}  function")
        for fn, insns in c["fn"].most_common(args.top):
            print(f"   {insns / n:8.1f} {c['mem'][fn] / n:7.1f} {c['tb'][fn] / n:6.1f} "
                  f"{c['lk'][fn] / n:6.1f} {c['at'][fn] / n:6.1f}  {fn}")
        print()
    print("== totals per send")
    print(f"   {'path':<12} {'method':<20} {'size':>8} {'insns':>8} {'mems':>7} {'blocks':>6}"
          f" {'lookup':>6} {'atomic':>6}")
    for path, method, size, ti, tm, tt, ta, tl in summary:
        print(f"   {path:<12} {method:<20} {size:>8} {ti:8.0f} {tm:7.0f} {tt:6.0f} {tl:6.0f}"
              f" {ta:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
