#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the zcsend selftest programs that sit next to this script, in order.
# Each prints its own TAP 13 through kselftest_harness.h; this script adds
# only '#' comment lines, except for a program that dies without reporting
# all of its results: then one line
#	not ok <n> <program> crashed (exit status <s>)
# stands for what is missing (<n> = 1 when it printed no result at all).
#
# Usage: run_tests.sh [program ...]	(default: all, in the order below)
# Environment: ZCSEND_KO (module for the reload tests, default
# /zcsend/zcsend.ko), ZCSEND_TESTS (programs to run), TMPDIR.
#
# Meant for busybox sh in the test guest, with zcsend already loaded.
# Exits 0 when every program exited 0 or 4 (all skipped), else 1.

PROGS="zcsend_dev zcsend_send zcsend_errors zcsend_limits zcsend_fixed zcsend_ring
       zcsend_fanout zcsend_watch
       zcsend_inject zcsend_fuzz
       zcsend_faults zcsend_soak"

dir=$(cd "$(dirname "$0")" && pwd)
tmp=${TMPDIR:-/tmp}
mkdir -p "$tmp" 2>/dev/null
out="$tmp/zcsend-selftest.$$"
: "${ZCSEND_KO:=/zcsend/zcsend.ko}"
export ZCSEND_KO

# ZCSEND_TESTS (commas or spaces) picks programs too, e.g. from the host's
# `ZCSEND_TESTS=zcsend_limits make check`.
[ -n "$ZCSEND_TESTS" ] && PROGS=$(echo "$ZCSEND_TESTS" | tr , ' ')
[ $# -gt 0 ] && PROGS="$*"

rc=0
for prog in $PROGS; do
	echo "# zcsend: $prog"
	if [ ! -x "$dir/$prog" ]; then
		echo "not ok 1 $prog crashed (missing: $dir/$prog)"
		rc=1
		continue
	fi
	# Stream the output and keep a copy to count the results.
	{ "$dir/$prog"; echo $? > "$out.rc"; } 2>&1 | tee "$out.log"
	st=$(cat "$out.rc" 2>/dev/null)
	[ -n "$st" ] || st=255
	results=$(grep -c -E '^(not )?ok [0-9]+' "$out.log")
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$out.log" | head -n 1)
	[ -n "$plan" ] || plan=0
	if [ "$results" -eq 0 ] && [ "$st" -ne 0 ] && [ "$st" -ne 4 ]; then
		echo "not ok 1 $prog crashed (exit status $st)"
	elif [ "$results" -lt "$plan" ]; then
		echo "not ok $((results + 1)) $prog crashed (exit status $st)" \
		     "after $results of $plan results"
	fi
	echo "# zcsend: $prog exit status $st"
	case "$st" in
	0|4) ;;
	*) rc=1 ;;
	esac
	rm -f "$out.rc" "$out.log"
done

# Across the whole run, every page pin the tests caused has been released
# (each test also checks this in its teardown; this is the grand total).
foll_pin() {
	echo 1 > /proc/sys/vm/stat_refresh 2>/dev/null
	sed -n "s/^nr_foll_pin_$1 //p" /proc/vmstat
}
acq=$(foll_pin acquired)
rel=$(foll_pin released)
echo "TAP version 13"
echo "1..1"
echo "# vmstat: nr_foll_pin_acquired $acq nr_foll_pin_released $rel"
if [ -n "$acq" ] && [ "$acq" = "$rel" ]; then
	echo "ok 1 pins.balanced_after_all_tests"
else
	echo "not ok 1 pins.balanced_after_all_tests"
	rc=1
fi
exit $rc
