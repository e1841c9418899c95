#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: build the test kernel, zcsend.ko and the selftests, boot the
# guest with zcsend.job=check on a tap network (so TCP sends can be truly
# zero-copy) with the host-side receiver listening, and count the results.
#
# Results are the TAP lines of the console log at any indentation: the
# selftests, /init's own steps and the KUnit block; and, before the guest
# boots, the host's checks (scripts/static-checks.sh: rustfmt, clippy on the
# module and tools/zcsend-rs, checkpatch, tools/zcsend-rs's cargo test),
# kept in console.log.static. "# SKIP" results count as skipped. The kernel
# log adds one more result, "kernel log clean", which fails on any
# BUG/WARNING/Oops/KASAN/lockdep/kmemleak/UBSAN report. A guest that does not
# finish adds a failed "guest did not finish".
#
# Ends with a line "N passed, N failed"; exits non-zero on any failure or
# when nothing passed. Environment: see scripts/guest.sh.
#
# ZCSEND_STATIC=0 leaves the host checks out (quicker iterations on the
# guest side; CI runs them).
#
# check.sh --parse LOG [GUEST_OK] only counts the results of an existing
# console log, and of LOG.static when there is one (GUEST_OK 0: count the
# guest as not finished).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$HERE/.build/check
LOG=$OUT/console.log
STATIC_LOG=$LOG.static
T0=$(date +%s)

# TAP results at any indentation in the given files, as "passed failed
# skipped"; a "# SKIP" directive means skipped.
count() {
	awk '
		/^[[:space:]]*(not )?ok [0-9]+/ {
			if ($0 ~ /#[[:space:]]*[Ss][Kk][Ii][Pp]/) skipped++
			else if ($0 ~ /^[[:space:]]*not ok/) failed++
			else passed++
		}
		END { print passed + 0, failed + 0, skipped + 0 }' "$@"
}

# The host checks' results, to add to the guest's: "passed failed skipped".
static_counts() {
	if [ -f "$STATIC_LOG" ]; then
		count "$STATIC_LOG"
	else
		echo 0 0 0
	fi
}

# Repeats the host checks' failures next to the summary (the guest's output
# comes between them).
static_failures() {
	[ -f "$STATIC_LOG" ] || return 0
	grep '^not ok ' "$STATIC_LOG" | sed 's/^/# host check failed: /' || true
}

finish() {
	local passed=$1 failed=$2 skipped=$3
	[ "$skipped" -eq 0 ] || echo "$skipped skipped"
	echo "check: elapsed $(( $(date +%s) - T0 ))s"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ] && exit 0
	exit 1
}

# Count the results of a console log and finish. $2 = 0: the guest did not
# finish (or did not power off).
evaluate() {
	local log=$1 guest_ok=$2 passed failed skipped bad sp sf ss

	read -r passed failed skipped < <(count "$log")
	read -r sp sf ss < <(static_counts)
	passed=$((passed + sp)) failed=$((failed + sf)) skipped=$((skipped + ss))

	if [ "$guest_ok" -eq 0 ]; then
		if grep -q '^ZCSEND-GUEST-DONE' "$log"; then
			echo "not ok - guest did not power off cleanly"
		else
			echo "not ok - guest did not finish"
		fi
		failed=$((failed + 1))
	fi

	bad='BUG:|WARNING:|Oops|KASAN|possible circular locking|inconsistent lock state'
	bad="$bad|unreferenced object|Kernel panic|general protection|UBSAN|Call Trace"
	if grep -Eq "$bad" "$log"; then
		echo "not ok - kernel log clean: $(grep -Ec "$bad" "$log") report lines in $log:"
		grep -En "$bad" "$log" | head -n 20 | sed 's/^/#   /'
		failed=$((failed + 1))
	else
		echo "ok - kernel log clean"
		passed=$((passed + 1))
	fi
	static_failures

	finish "$passed" "$failed" "$skipped"
}

if [ "${1:-}" = --parse ]; then
	# Re-count an existing log: check.sh --parse LOG [GUEST_OK]
	LOG=${2:?usage: check.sh --parse LOG [GUEST_OK]}
	STATIC_LOG=$LOG.static
	evaluate "$LOG" "${3:-1}"
fi

"$HERE/scripts/deps.sh"
mkdir -p "$OUT"
rm -f "$STATIC_LOG"

# The test kernel first (build.sh reuses it): the host checks need it for
# the module's clippy build and the kernel's rustfmt config and checkpatch.
kdir_ok=1
KDIR=$("$HERE/scripts/kernel.sh" x86 | tail -n 1) || { kdir_ok=0; KDIR=""; }
if [ "${ZCSEND_STATIC:-1}" != 0 ]; then
	echo "check: host checks (scripts/static-checks.sh)"
	"$HERE/scripts/static-checks.sh" "$KDIR" 2>&1 | tee "$STATIC_LOG" || true
fi

if [ "$kdir_ok" -eq 0 ] || ! "$HERE/scripts/build.sh" "$OUT" --selftests >/dev/null; then
	echo "check: build failed"
	static_failures
	read -r sp sf ss < <(static_counts)
	finish "$sp" "$((sf + 1))" "$ss"
fi

# The selftests build puts the host-side receiver under host/ (left out of
# the initramfs); it runs in the tap namespace, where the guest reaches it
# as 10.77.0.1 / fd77::1.
guest_args=(--tap --job check --log "$LOG")
# Test knobs reach the guest's environment through the kernel command line:
# ZCSEND_TESTS (programs to run, space-separated), ZCSEND_FUZZ_*,
# ZCSEND_SOAK_*, ZCSEND_INJECT_* (see selftests/zcsend/*.c).
knobs=""
for v in $(compgen -e | grep -E '^ZCSEND_(TESTS|FUZZ_|SOAK_|INJECT_)' || true); do
	val=${!v}
	knobs="$knobs zcsend.env.$v=${val// /,}"
done
[ -z "$knobs" ] || guest_args+=(--append "${knobs# }")
if [ -x "$OUT/selftests/host/run_host.sh" ]; then
	guest_args+=(--host-cmd "exec $(printf %q "$OUT/selftests/host/run_host.sh")")
fi

# The suite (fuzz, soak and fault-injection walk included) takes about
# 10 minutes under TCG with the debug kernel.
export ZCSEND_TIMEOUT=${ZCSEND_TIMEOUT:-1500}
export ZCSEND_RX_TIMEOUT=${ZCSEND_RX_TIMEOUT:-$ZCSEND_TIMEOUT}
guest_ok=1
"$HERE/scripts/guest.sh" "${guest_args[@]}" "$OUT/initramfs.cpio.gz" || guest_ok=0
if [ -s "$LOG.host" ]; then
	sed 's/^/# host: /' "$LOG.host"
fi
evaluate "$LOG" "$guest_ok"
