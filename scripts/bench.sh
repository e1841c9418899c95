#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: benchmark zcsend against plain send(), MSG_ZEROCOPY, io_uring
# SEND_ZC (plain and fixed buffers), sendfile() and vmsplice()+splice(), at
# 1K..1M, in two guests running the same kernel source and module:
#   tcg  QEMU under TCG (or KVM with ZCSEND_ACCEL=kvm) on the bench kernel
#        (scripts/kernel.sh x86-bench: no KASAN/lockdep/kmemleak), with a
#        tap NIC (vnet_hdr) and `zcbench --sink` on the host end
#   uml  User-Mode Linux (scripts/kernel.sh um): kernel code runs natively
# Each guest runs tools/bench/run_bench.sh (zcsend.job=bench); then
# tools/bench/report.py prints the tables and writes results/ (see
# tools/bench/README.rst).
#
# Environment:
#   BENCH_SMOKE=1        tiny byte counts, one repetition (CI: keeps it
#                        building and running; the numbers mean nothing)
#   BENCH_FLAVOURS       default "tcg uml"
#   BENCH_RESULTS        default results/ (BENCH_SMOKE: results/smoke/)
#   BENCH_REPS, BENCH_BYTES, BENCH_MAX_CALLS, BENCH_SIZES, BENCH_METHODS,
#   BENCH_PATHS, BENCH_FANOUT ("1 8 64"), BENCH_FANOUT_SIZES,
#   BENCH_FANOUT_BYTES   passed to the guest (see run_bench.sh)
#   BENCH_HUGE=0         no huge-page pass (default 1: the zero-copy
#                        methods again at 64K and up with the buffer in
#                        transparent huge pages, as <method>_huge, on
#                        udp-dummy0 and tcp-tap; QEMU only: UML has no THP)
#   BENCH_TIMEOUT        seconds per guest (default 3000; smoke 900)
#   BENCH_PROFILE=1      no timing: each method runs alone under ftrace's
#                        function profiler (QEMU guest only); the top
#                        functions by self time go to RESULTS/profile-tcg.txt
#                        (BENCH_PROFILE_TOP, default 40)
#   BENCH_PROFILE=graph  the same with the function_graph tracer: self time
#                        per function (the module's Rust shows as its
#                        traced caller's), to RESULTS/profile-tcg.txt;
#                        BENCH_PROFILE_LINES=N adds the last N lines of
#                        each method's raw trace (ZCT lines)
#   BENCH_STAGES=1       the module built with ZCSEND_STAGES=1: each zcsend
#                        cell also prints where a send's time went, stage
#                        by stage (TSC cycles; ZCB,stage records and "stage"
#                        lines in the console log). QEMU only: it reads
#                        debugfs, which the UML kernel lacks. The marks
#                        cost time: compare stages within such a run, not
#                        its cells with a normal run's
#   BENCH_TBPROF=1       no timing: QEMU runs tools/bench/tbprof.so, which
#                        counts the guest kernel's instructions and memory
#                        accesses per function over each cell's timed part
#                        (exact, no tracer in the guest); per send, by
#                        cell, to RESULTS/tbprof-tcg.txt (QEMU TCG only;
#                        BENCH_TBPROF_TOP functions per cell, default 40);
#                        BENCH_TBPROF=lookups also counts the blocks
#                        entered through a lookup (slower)
#   ZCSEND_ACCEL         tcg (default) or kvm, for the QEMU run
# Exits non-zero if a guest did not finish or produced no results.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$HERE/.build/bench
SMOKE=${BENCH_SMOKE:-0}
FLAVOURS=${BENCH_FLAVOURS:-tcg uml}
PROFILE=${BENCH_PROFILE:-0}
TBPROF=${BENCH_TBPROF:-0}
if [ "$PROFILE" != 0 ]; then
	FLAVOURS=${BENCH_FLAVOURS:-tcg}
	RES=${BENCH_RESULTS:-$HERE/results/profile}
	# One vCPU: enabling the profiler patches every function entry with
	# int3 breakpoints and cross-CPU syncs, which under TCG with 2 vCPUs
	# oopsed ("int3" in _raw_spin_lock_irq from the timer interrupt).
	export ZCSEND_SMP=${ZCSEND_SMP:-1}
	TIMEOUT=${BENCH_TIMEOUT:-3000}
elif [ "$TBPROF" != 0 ]; then
	FLAVOURS=${BENCH_FLAVOURS:-tcg}
	RES=${BENCH_RESULTS:-$HERE/results/tbprof}
	TIMEOUT=${BENCH_TIMEOUT:-3000}
elif [ "$SMOKE" = 1 ]; then
	RES=${BENCH_RESULTS:-$HERE/results/smoke}
	TIMEOUT=${BENCH_TIMEOUT:-900}
else
	RES=${BENCH_RESULTS:-$HERE/results}
	TIMEOUT=${BENCH_TIMEOUT:-3000}
fi
LLVM_SUFFIX=${LLVM_SUFFIX:--19}
ACCEL=${ZCSEND_ACCEL:-tcg}
T0=$(date +%s)

mkdir -p "$OUT" "$RES"
BLOG=$OUT/build.log
: > "$BLOG"

say() {
	echo "bench: $*" >&2
}

# One build step with its output in the log; on failure show the log's tail.
step() {
	local what=$1
	shift
	if ! "$@" >>"$BLOG" 2>&1; then
		say "$what failed:"
		tail -n 60 "$BLOG" >&2
		say "full log in $BLOG"
		exit 1
	fi
}

# Settings for the guest, on the kernel command line. Byte counts per cell
# differ by flavour: a cell should last about a second in each. UML's clock
# (sched_clock) advances in jiffies (HZ=100), so its CPU times are sampled
# at 10 ms: its cells are made long enough for that to average out.
guest_args() {
	local a="zcsend.accel=$1 zcsend.bench_smoke=$SMOKE" bytes calls
	case "$1" in
	uml)	bytes=1G; calls=65536 ;;
	*)	bytes=256M; calls=32768 ;;
	esac
	if [ "$SMOKE" != 1 ]; then
		a="$a zcsend.bench_bytes=${BENCH_BYTES:-$bytes}"
		a="$a zcsend.bench_max_calls=${BENCH_MAX_CALLS:-$calls}"
	else
		[ -z "${BENCH_BYTES:-}" ] || a="$a zcsend.bench_bytes=$BENCH_BYTES"
		[ -z "${BENCH_MAX_CALLS:-}" ] || a="$a zcsend.bench_max_calls=$BENCH_MAX_CALLS"
	fi
	[ -z "${BENCH_REPS:-}" ] || a="$a zcsend.bench_reps=$BENCH_REPS"
	[ -z "${BENCH_SIZES:-}" ] || a="$a zcsend.bench_sizes=$BENCH_SIZES"
	[ -z "${BENCH_METHODS:-}" ] || a="$a zcsend.bench_methods=$BENCH_METHODS"
	[ -z "${BENCH_PATHS:-}" ] || a="$a zcsend.bench_paths=$BENCH_PATHS"
	[ -z "${BENCH_HUGE:-}" ] || a="$a zcsend.bench_huge=$BENCH_HUGE"
	[ -z "${BENCH_PROFILE:-}" ] || a="$a zcsend.bench_profile=$BENCH_PROFILE"
	[ "$TBPROF" = 0 ] || a="$a zcsend.bench_tbprof=1"
	[ -z "${BENCH_PROFILE_TOP:-}" ] || a="$a zcsend.bench_profile_top=$BENCH_PROFILE_TOP"
	[ -z "${BENCH_PROFILE_LINES:-}" ] || a="$a zcsend.bench_profile_lines=$BENCH_PROFILE_LINES"
	# Fan-out: "1 8 64" -> 1,8,64 (no spaces on the command line).
	[ -z "${BENCH_FANOUT:-}" ] || a="$a zcsend.bench_fanout=$(echo $BENCH_FANOUT | tr ' ' ,)"
	[ -z "${BENCH_FANOUT_SIZES:-}" ] ||
		a="$a zcsend.bench_fanout_sizes=$(echo $BENCH_FANOUT_SIZES | tr ' ' ,)"
	[ -z "${BENCH_FANOUT_BYTES:-}" ] || a="$a zcsend.bench_fanout_bytes=$BENCH_FANOUT_BYTES"
	echo "$a"
}

# Builds zcsend.ko for one kernel with its objects in a directory of its
# own (kbuild's MO=), so that the repository's own zcsend.ko (the x86 test
# build) is left alone.
build_module() {
	local fl=$1 kdir=$2 d=$OUT/mod-$1
	local extra=()
	# A directory from the days of copied sources: its dependency files
	# name those copies, so kbuild would call the old module up to date.
	[ ! -e "$d/Kbuild" ] || rm -rf "$d"
	mkdir -p "$d"
	# UML's module loader rejects GOTPCREL relocations.
	[ "$fl" != uml ] || extra=(ARCH=um KRUSTFLAGS=-Zdirect-access-external-data=yes)
	[ "${BENCH_STAGES:-0}" = 0 ] || extra+=(ZCSEND_STAGES=1)
	step "zcsend.ko build ($fl)" make -C "$kdir" M="$HERE" MO="$d" LLVM="$LLVM_SUFFIX" \
		"${extra[@]}" modules
	echo "$d/zcsend.ko"
}

# Shows the guest's progress lines while it runs.
follow() {
	local log=$1 pid=$2
	tail -n +1 -F --pid="$pid" "$log" 2>/dev/null |
		grep --line-buffered -E '^(zcbench: |zcsend-init: (userspace|job)|guest: |Kernel panic)' |
		grep --line-buffered -v '^zcbench: sink' >&2 || true
}

# The guest job ends its records with ZCB,end,STATUS: 0 when every zcbench
# run finished.
check_end() {
	if ! grep -q '^ZCB,end,0' "$2"; then
		say "$1: the benchmark did not finish cleanly, see $3:"
		grep -a 'zcbench: error\|exit status' "$3" | head -5 >&2 || true
		return 1
	fi
}

run_tcg() {
	local kdir ko log=$RES/console-$ACCEL.log rc=0
	say "QEMU ($ACCEL): bench kernel"
	kdir=$("$HERE/scripts/kernel.sh" x86-bench | tail -1)
	ko=$(build_module "$ACCEL" "$kdir")
	step "initramfs ($ACCEL)" "$HERE/scripts/initramfs.sh" "$OUT/$ACCEL.cpio.gz" \
		--module "$ko" --bench "$OUT/guest"
	local plugin=""
	if [ "$TBPROF" != 0 ]; then
		local cc=cc
		command -v cc >/dev/null || cc=clang$LLVM_SUFFIX
		step "tbprof plugin" "$cc" -O2 -shared -fPIC -o "$OUT/tbprof.so" \
			"$HERE/tools/bench/tbprof.c"
		rm -rf "$RES/tbprof" && mkdir -p "$RES/tbprof"
		plugin="$OUT/tbprof.so,out=$RES/tbprof/mark"
		[ "$TBPROF" != lookups ] || plugin="$plugin,lookups=1"
	fi
	say "QEMU ($ACCEL): booting $kdir/arch/x86/boot/bzImage (console: $log)"
	ZCSEND_QEMU_PLUGIN=$plugin ZCSEND_TIMEOUT=$TIMEOUT "$HERE/scripts/guest.sh" --quiet --tap --job bench \
		--kernel "$kdir/arch/x86/boot/bzImage" --append "$(guest_args "$ACCEL")" \
		--host-cmd "exec $OUT/guest/zcbench --sink 7900" --log "$log" \
		"$OUT/$ACCEL.cpio.gz" &
	local pid=$!
	follow "$log" "$pid"
	wait "$pid" || rc=$?
	grep -a '^ZCB,' "$log" > "$RES/raw-$ACCEL.txt" || true
	grep -a '^ZC[PGT],' "$log" > "$RES/profile-$ACCEL.txt" || true
	check_end "QEMU ($ACCEL)" "$RES/raw-$ACCEL.txt" "$log" || rc=1
	if [ "$TBPROF" != 0 ]; then
		python3 "$HERE/tools/bench/tbprof.py" --top "${BENCH_TBPROF_TOP:-40}" \
			--map "$kdir/System.map" "$RES/raw-$ACCEL.txt" "$RES/tbprof/mark" \
			> "$RES/tbprof-$ACCEL.txt" || rc=1
		say "instruction profile: $RES/tbprof-$ACCEL.txt"
	fi
	return $rc
}

run_uml() {
	local kdir ko log=$RES/console-uml.log rc=0 seccomp=seccomp=on
	say "UML: kernel"
	kdir=$("$HERE/scripts/kernel.sh" um | tail -1)
	ko=$(build_module uml "$kdir")
	step "initramfs (uml)" "$HERE/scripts/initramfs.sh" "$OUT/uml.cpio.gz" \
		--module "$ko" --bench "$OUT/guest"
	# seccomp mode cuts UML's syscall cost (../shared/MEASUREMENTS.md); fall
	# back to ptrace mode where the host does not allow it.
	if ! grep -q 'seccomp=' "$kdir/vmlinux" 2>/dev/null; then
		seccomp=""
	fi
	mkdir -p "$OUT/uml-dir"
	say "UML: booting $kdir/vmlinux ${seccomp:-(ptrace mode)} (console: $log)"
	(
		# The console writes to stdout and reads nothing (the job needs
		# no input); the guest powers off with the job (poweroff -f).
		timeout -k 5 "$TIMEOUT" "$kdir/vmlinux" mem=1G \
			initrd="$OUT/uml.cpio.gz" con=null,fd:1 con0=null,fd:1 \
			$seccomp uml_dir="$OUT/uml-dir" umid=zcbench-$$ \
			loglevel=5 zcsend.job=bench $(guest_args uml) 2>&1 |
			sed -u 's/\r$//' > "$log"
	) </dev/null &
	local pid=$!
	follow "$log" "$pid"
	wait "$pid" || rc=$?
	grep -a '^ZCB,' "$log" > "$RES/raw-uml.txt" || true
	check_end UML "$RES/raw-uml.txt" "$log" || rc=1
	if ! grep -q '^ZCSEND-GUEST-DONE' "$log"; then
		say "UML: the guest did not finish, see $log"
		rc=1
	fi
	return $rc
}

say "results go to $RES$([ "$SMOKE" = 1 ] && echo ' (smoke mode: tiny byte counts)')"
step "zcbench build" make -C "$HERE/tools/bench" OUT="$OUT/guest"

status=0
reports=()
for fl in $FLAVOURS; do
	t=$(date +%s)
	case "$fl" in
	tcg|qemu)	run_tcg || status=1; reports+=("$ACCEL=$RES/raw-$ACCEL.txt") ;;
	uml)		run_uml || status=1; reports+=("uml=$RES/raw-uml.txt") ;;
	*)		say "unknown flavour $fl (tcg, uml)"; exit 2 ;;
	esac
	say "$fl: $(( $(date +%s) - t )) s"
done

if [ "$TBPROF" != 0 ]; then
	:
elif [ "$PROFILE" != 0 ]; then
	# Top functions per path and method, by self time (us, under tracing).
	for f in "$RES"/profile-*.txt; do
		[ -s "$f" ] || continue
		echo "== $(basename "$f")"
		awk -F, '$4 <= 15 { k = $2 " " $3
			if (k != last) { printf "\n%s\n", k; last = k }
			printf "  %2d %-48s %9d calls %12.1f us\n", $4, substr($5, 1, 48), $6, $7 }' "$f"
	done
else
	python3 "$HERE/tools/bench/report.py" --out "$RES" "${reports[@]}" || status=1
fi
say "elapsed $(( $(date +%s) - T0 )) s"
exit $status
