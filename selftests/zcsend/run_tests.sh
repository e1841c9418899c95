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
# The program zcsend_rs is this script's own: it runs tools/zcsend-rs's
# integration tests (tests/device.rs), which scripts/build.sh builds
# statically into zcsend-rs/ next to this script, and turns libtest's
# results into one TAP block (see run_rs below).
#
# Usage: run_tests.sh [program ...]	(default: all, in the order below)
# Environment: ZCSEND_KO (module for the reload tests, default
# /zcsend/zcsend.ko), ZCSEND_TESTS (programs to run), ZCSEND_RS_TIMEOUT
# (seconds for each zcsend-rs test executable, default 900), TMPDIR.
#
# Meant for busybox sh in the test guest, with zcsend already loaded.
# Exits 0 when every program exited 0 or 4 (all skipped), else 1.

PROGS="zcsend_dev zcsend_send zcsend_errors zcsend_limits zcsend_fixed zcsend_ring
       zcsend_fanout zcsend_watch
       zcsend_inject zcsend_fuzz
       zcsend_faults zcsend_soak
       zcsend_rs"

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

# libtest's output of one test executable as TAP results, numbered from
# $5 + 1, for the results of run_rs:
#	test NAME ... ok	ok N zcsend-rs: NAME
#				(... # SKIP <reason> if the test wrote
#				"SKIP NAME: <reason>" to stderr: no device)
#	test NAME ... ignored	ok N zcsend-rs: NAME # SKIP ignored[: <reason>]
#	test NAME ... FAILED	not ok N zcsend-rs: NAME, and its panic message
# A test the executable listed (--list) but never finished is not ok:
# crashed (the one that was running) or not run. Other stderr lines follow
# as comments.
# Usage: rs_tap LIST STDOUT STDERR STATUS FIRST EXE TIMEOUT ELAPSED
rs_tap() {
	awk -v lf="$1" -v ef="$3" -v st="$4" -v n="$5" \
	    -v exe="$6" -v limit="$7" -v elapsed="$8" -v first="$5" '
	function emit(ok, name, extra) {
		n++
		printf "%s %d zcsend-rs: %s%s\n", ok, n, name, extra
		done[name] = 1
		if (ok == "not ok")
			failed++
	}
	# The panic of a failed test: "thread NAME panicked at ..." (with a
	# thread id in newer Rust) and the message after it.
	function panic_of(name,    i, k) {
		for (i = 1; i <= nerr; i++) {
			if (index(err[i], "thread \047" name "\047") != 1 ||
			    index(err[i], " panicked at ") == 0)
				continue
			for (k = i; k <= nerr && k < i + 4; k++) {
				if (k > i && err[k] ~ /^(thread |SKIP |note: )/)
					break
				print "#   " err[k]
				shown[k] = 1
			}
			return
		}
	}
	function result(name, res,    reason) {
		if (res == "ok") {
			if (name in skip)
				emit("ok", name, " # SKIP " skip[name])
			else
				emit("ok", name, "")
		} else if (res ~ /^ignored/) {
			reason = res
			sub(/^ignored,? ?/, "", reason)
			gsub(/#/, "", reason)
			emit("ok", name, " # SKIP ignored" (reason != "" ? ": " reason : ""))
		} else {
			emit("not ok", name, "")
			panic_of(name)
		}
	}
	FILENAME == lf {
		if (sub(/: test$/, ""))
			listed[++nlisted] = $0
		next
	}
	FILENAME == ef {
		err[++nerr] = $0
		if ($0 ~ /^SKIP /) {
			s = substr($0, 6)
			i = index(s, ": ")
			if (i > 1) {
				reason = substr(s, i + 2)
				gsub(/#/, "", reason)
				skip[substr(s, 1, i - 1)] = reason
				shown[nerr] = 1
			}
		}
		next
	}
	# stdout: one "test NAME ... RESULT" line per test (one test at a
	# time, so the result follows the name; "test NAME ... " alone is a
	# test that did not finish).
	/^test .* \.\.\. / {
		s = substr($0, 6)
		i = index(s, " ... ")
		name = substr(s, 1, i - 1)
		res = substr(s, i + 5)
		if (res ~ /^(ok|FAILED|ignored)/) {
			result(name, res)
			pending = ""
		} else {
			pending = name
		}
		next
	}
	pending != "" && /^(ok|FAILED|ignored)/ {
		result(pending, $0)
		pending = ""
		next
	}
	# (libtest counts a skipped device test as passed: not shown)
	!/^test result: / { other[++nother] = $0 }
	END {
		killed = ""
		if (limit > 0 && elapsed >= limit)
			killed = ", killed after " limit " s"
		why = "exit status " st killed
		if (pending != "" && !(pending in done))
			emit("not ok", pending, " crashed (" why ")")
		for (i = 1; i <= nlisted; i++)
			if (!(listed[i] in done))
				emit("not ok", listed[i], " not run (" exe ": " why ")")
		if (n == first) {
			if (st == 0)
				emit("ok", exe, " # SKIP no tests")
			else
				emit("not ok", exe, " crashed (" why ")")
		} else if (st != 0 && failed == 0) {
			emit("not ok", exe, " " why " without a failed test")
		}
		for (i = 1; i <= nother; i++)
			if (other[i] != "")
				print "# " other[i]
		for (i = 1; i <= nerr; i++)
			if (!shown[i] && err[i] != "")
				print "# " err[i]
	}' "$1" "$3" "$2"
}

# zcsend_rs: every test executable in zcsend-rs/, one at a time, its tests
# one at a time (--test-threads=1), output uncaptured so that the SKIP lines
# of the device tests reach stderr; one TAP block for all of them, its plan
# at the end. Exit status 1 on a failure, 4 when everything was skipped.
run_rs() {
	rsdir=$dir/zcsend-rs
	limit=${ZCSEND_RS_TIMEOUT:-900}
	tmo=""
	[ "$limit" -gt 0 ] 2>/dev/null && command -v timeout >/dev/null &&
		tmo="timeout $limit"
	echo "TAP version 13"
	n=0 bad=0 good=0
	for exe in "$rsdir"/*; do
		[ -f "$exe" ] && [ -x "$exe" ] || continue
		name=${exe##*/}
		"$exe" --list 2>/dev/null > "$out.rs.list"
		echo "# zcsend-rs: $name: $(grep -c ': test$' "$out.rs.list") tests"
		t0=$(date +%s)
		$tmo "$exe" --test-threads=1 --nocapture \
			> "$out.rs.out" 2> "$out.rs.err"
		st=$?
		t1=$(date +%s)
		rs_tap "$out.rs.list" "$out.rs.out" "$out.rs.err" "$st" "$n" \
			"$name" "${tmo:+$limit}" "$((t1 - t0))" > "$out.rs.tap"
		cat "$out.rs.tap"
		p=$(grep -c -E '^ok [0-9]+ [^#]*$' "$out.rs.tap")
		f=$(grep -c '^not ok ' "$out.rs.tap")
		s=$(grep -c -E '^ok [0-9]+ .*# SKIP' "$out.rs.tap")
		n=$((n + p + f + s)) good=$((good + p)) bad=$((bad + f))
		echo "# zcsend-rs: $name: $p passed, $f failed, $s skipped" \
		     "(exit status $st, $((t1 - t0)) s)"
	done
	if [ "$n" -eq 0 ]; then
		n=1
		echo "ok 1 zcsend-rs # SKIP no test executables in $rsdir" \
		     "(scripts/build.sh --selftests builds them)"
	fi
	echo "1..$n"
	rm -f "$out.rs.list" "$out.rs.out" "$out.rs.err" "$out.rs.tap"
	[ "$bad" -eq 0 ] || return 1
	[ "$good" -gt 0 ] || return 4
	return 0
}

# One program of PROGS: a selftest next to this script, or zcsend_rs.
run_prog() {
	if [ "$1" = zcsend_rs ]; then
		run_rs
	else
		"$dir/$1"
	fi
}

rc=0
for prog in $PROGS; do
	echo "# zcsend: $prog"
	if [ "$prog" != zcsend_rs ] && [ ! -x "$dir/$prog" ]; then
		echo "not ok 1 $prog crashed (missing: $dir/$prog)"
		rc=1
		continue
	fi
	# Stream the output and keep a copy to count the results.
	{ run_prog "$prog"; echo $? > "$out.rc"; } 2>&1 | tee "$out.log"
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
