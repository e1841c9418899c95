#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A/B comparison of two builds of the module with `make bench`, for changes
# whose effect is smaller than the noise between two separate bench runs.
# The two builds run alternately (A, B, A, B, ...) on the same cells, so
# that drift of the machine falls on both; each run's cells are repeated
# BENCH_REPS times and reduced to their median.
#
# Usage: scripts/bench-ab.sh BASE [CAND]
#   BASE  a git revision (A)
#   CAND  a git revision (B); default: this working tree as it is, with
#         its uncommitted changes
#
# Environment (defaults: the small, quick set that resolves ~3% on
# udp-dummy0 under TCG, where the peers repeat within 1-2%):
#   AB_RUNS          alternate runs per side (2)
#   AB_OUT           where each run's results go (results/ab-<date>); A's
#                    runs in a1, a2, ..., B's in b1, b2, ...
#   BENCH_FLAVOURS   tcg          BENCH_PATHS    udp-dummy0
#   BENCH_SIZES      1K,4K        BENCH_REPS     5
#   BENCH_METHODS    zcsend,zcsend_fixed,zcsend_batch,uring_zc_fixed,msg_zerocopy
#   BENCH_HUGE       0
#   (and every other BENCH_* knob of scripts/bench.sh, passed through)
#
# Prints, per run, path, size and method: sender CPU per send in us
# (bench-raw.csv: cpu_s / sends, median of the reps) of each A run, each B
# run, and B/A (the ratio of the medians of the runs). Compare a method's
# B/A with the peers' (msg_zerocopy, uring_zc_fixed: unchanged code): a
# change is real only if it stands out from theirs. tcp-tap is bimodal
# under TCG (tools/bench/README.rst) and needs many more runs than this.
# Never run it beside another bench or a kernel build (two cores).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] && [ $# -le 2 ] || {
	sed -n '/^# Usage/,/^#   CAND/p' "$0" >&2
	exit 2
}
BASE=$1
CAND=${2:-}
RUNS=${AB_RUNS:-2}
OUT=${AB_OUT:-$HERE/results/ab-$(date +%Y%m%d-%H%M%S)}

export BENCH_FLAVOURS=${BENCH_FLAVOURS:-tcg}
export BENCH_PATHS=${BENCH_PATHS:-udp-dummy0}
export BENCH_SIZES=${BENCH_SIZES:-1K,4K}
export BENCH_REPS=${BENCH_REPS:-5}
export BENCH_METHODS=${BENCH_METHODS:-zcsend,zcsend_fixed,zcsend_batch,uring_zc_fixed,msg_zerocopy}
export BENCH_HUGE=${BENCH_HUGE:-0}

TMP=$(mktemp -d)
cleanup() {
	local w
	for w in "$TMP"/a "$TMP"/b; do
		[ -d "$w" ] && git -C "$HERE" worktree remove --force "$w" >/dev/null 2>&1 || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

git -C "$HERE" worktree add --quiet --detach "$TMP/a" "$BASE"
A=$TMP/a
if [ -n "$CAND" ]; then
	git -C "$HERE" worktree add --quiet --detach "$TMP/b" "$CAND"
	B=$TMP/b
else
	B=$HERE
fi
mkdir -p "$OUT"
echo "bench-ab: A = $(git -C "$A" rev-parse --short HEAD), B = ${CAND:-working tree}, $RUNS run(s) each, results in $OUT"

for i in $(seq 1 "$RUNS"); do
	for side in a b; do
		dir=$A
		[ "$side" = b ] && dir=$B
		echo "bench-ab: run $side$i"
		if ! (cd "$dir" && BENCH_RESULTS="$OUT/$side$i" make -s bench) \
			>"$OUT/$side$i.log" 2>&1; then
			echo "bench-ab: run $side$i failed: $OUT/$side$i.log" >&2
			exit 1
		fi
	done
done

python3 - "$OUT" "$RUNS" <<'EOF'
import collections, csv, statistics, sys

out, runs = sys.argv[1], int(sys.argv[2])
cols = [f"{s}{i}" for s in "ab" for i in range(1, runs + 1)]
cell = collections.defaultdict(dict)
for c in cols:
    per = collections.defaultdict(list)
    for r in csv.DictReader(open(f"{out}/{c}/bench-raw.csv")):
        key = (r["run"], r["path"], int(r["size"]), r["method"])
        per[key].append(float(r["cpu_s"]) / int(r["sends"]) * 1e6)
    for key, v in per.items():
        cell[key][c] = statistics.median(v)
print("sender CPU per send, us (median of the reps); B/A: ratio of the runs' medians")
print("%-5s %-11s %6s %-16s" % ("run", "path", "size", "method")
      + "".join("%8s" % c for c in cols) + "%8s" % "B/A")
for key in sorted(cell):
    v = cell[key]
    a = [v[c] for c in cols if c[0] == "a" and c in v]
    b = [v[c] for c in cols if c[0] == "b" and c in v]
    ratio = "%8.3f" % (statistics.median(b) / statistics.median(a)) if a and b else "%8s" % "-"
    print("%-5s %-11s %6d %-16s" % key
          + "".join("%8.2f" % v[c] if c in v else "%8s" % "-" for c in cols) + ratio)
EOF
