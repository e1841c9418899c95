#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The host-side checks of `make check`, callable on their own:
#
#   rustfmt --check     rust/*.rs (the kernel's .rustfmt.toml) and tools/zcsend-rs
#   clippy              the module (kbuild's CLIPPY=1, objects under .build/)
#                       and tools/zcsend-rs (--all-targets, -D warnings)
#   checkpatch.pl       the module's C and the shared headers: any ERROR or
#                       WARNING fails; samples/ and selftests/zcsend/: ERRORs
#                       fail, WARNINGs are listed
#   cargo test          tools/zcsend-rs: one result per test; a device test
#                       that found no /dev/zcsend ("SKIP <name>: <reason>" on
#                       stderr) counts as skipped, not passed (make check
#                       runs the device tests again in the guest, see
#                       selftests/zcsend/run_tests.sh)
#
# Prints one TAP result per check ("ok N static: ...", "not ok N static: ...
# # <count>; first: <finding>", "ok N ... # SKIP <reason>"), the findings as
# "#" lines, and ends with "static: N passed, N failed, N skipped"; exits
# non-zero on any failure. check.sh counts these results in its summary.
#
# Usage: static-checks.sh [KDIR]   (default: the test kernel, built or
#                                   reused by scripts/kernel.sh x86)
# Logs go to .build/static/.
set -uo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$HERE/.build/static
LLVM_SUFFIX=${LLVM_SUFFIX:--19}
T0=$(date +%s)
mkdir -p "$OUT"
cd "$HERE" || exit 1

n=0 passed=0 failed=0 skipped=0

# One result. $1: ok | fail | skip; $2: what; $3: detail (the reason for a
# skip, the first finding for a failure). A failure's detail never starts
# with "skip", so it cannot read as a SKIP directive.
result() {
	local st=$1 what=$2 detail=${3:-}
	detail=${detail//$'\n'/ }
	detail=${detail//#/}
	[ "$st" = skip ] || [[ ${detail,,} != skip* ]] || detail="- $detail"
	[ ${#detail} -le 160 ] || detail="${detail:0:157}..."
	n=$((n + 1))
	case "$st" in
	ok)	passed=$((passed + 1)); echo "ok $n $what${detail:+ # $detail}" ;;
	skip)	skipped=$((skipped + 1)); echo "ok $n $what # SKIP $detail" ;;
	*)	failed=$((failed + 1)); echo "not ok $n $what${detail:+ # $detail}" ;;
	esac
}

# Lists a log's lines as TAP comments, at most $2 of them.
show() {
	head -n "${2:-20}" "$1" | sed 's/^/#   /'
	local total
	total=$(wc -l < "$1")
	[ "$total" -le "${2:-20}" ] || echo "#   ... $total lines, see $1"
}

# Compiler diagnostics in a rustc/clippy/clang log, as "file:line: message",
# one a line: rustc's "warning: msg" + " --> file:line:col", and clang's
# "file:line:col: warning: msg". Cargo's and rustc's summaries are left out.
diagnostics() {
	awk -v here="$HERE/" '
		function emit(loc, msg) { sub("^" here, "", loc); print loc ": " msg }
		/^(warning|error)(\[[^]]*\])?: / {
			if (pending != "") emit("?", pending)
			pending = $0
			if ($0 ~ /^warning: [0-9]+ warnings? emitted/ ||
			    $0 ~ /^error: aborting due to/ ||
			    $0 ~ /^error: could not compile/ ||
			    $0 ~ /^warning: `[^`]*` \([^)]*\) generated [0-9]+ warnings?/)
				pending = ""
			next
		}
		/^ *--> / && pending != "" {
			loc = $2; sub(/:[0-9]+$/, "", loc)
			emit(loc, pending); pending = ""; next
		}
		/^[^ :]+:[0-9]+:[0-9]+: (warning|error): / {
			loc = $1; sub(/:[0-9]+:$/, "", loc)
			msg = $0; sub(/^[^ ]+ /, "", msg)
			emit(loc, msg); next
		}
		END { if (pending != "") emit("?", pending) }' "$1"
}

# An empty KDIR argument: no kernel (its checks fail, the others run).
if [ $# -ge 1 ]; then
	KDIR=$1
else
	KDIR=$("$HERE/scripts/kernel.sh" x86 | tail -n 1) || KDIR=""
fi
KSRC=""
[ -n "$KDIR" ] && [ -e "$KDIR/source" ] && KSRC=$(readlink -f "$KDIR/source")
CRATE=$HERE/tools/zcsend-rs
CARGO_ARGS=(--locked --manifest-path "$CRATE/Cargo.toml")
HAVE_CRATE=1
[ -f "$CRATE/Cargo.toml" ] || HAVE_CRATE=0

# --- rustfmt ---------------------------------------------------------------

# rustfmt's diff, as the list of the places that differ: a file given on the
# command line that is also a module of another one is reported twice.
rustfmt_result() {
	local what=$1 log=$2
	grep '^Diff in ' "$log" | sed "s|$HERE/||; s/:\$//" | sort -u >"$log.places"
	result fail "$what" "$(wc -l <"$log.places") places differ; first: $(head -n 1 "$log.places")$(
		[ -s "$log.places" ] || grep -m1 . "$log")"
	show "$log.places"
}

what="static: rustfmt --check rust/*.rs"
if ! command -v rustfmt >/dev/null; then
	result skip "$what" "rustfmt not installed"
elif [ -z "$KSRC" ] || [ ! -f "$KSRC/.rustfmt.toml" ]; then
	result fail "$what" "no kernel source (.rustfmt.toml) at '$KDIR/source'"
elif rustfmt --edition 2021 --check --color never --config-path "$KSRC/.rustfmt.toml" \
		rust/*.rs >"$OUT/rustfmt.log" 2>&1; then
	result ok "$what"
else
	rustfmt_result "$what" "$OUT/rustfmt.log"
fi

what="static: cargo fmt --check (tools/zcsend-rs)"
if [ "$HAVE_CRATE" -eq 0 ]; then
	result skip "$what" "no tools/zcsend-rs/Cargo.toml"
elif ! command -v cargo >/dev/null || ! cargo fmt --version >/dev/null 2>&1; then
	result skip "$what" "cargo fmt not installed"
elif (cd "$CRATE" && cargo fmt --check -- --color never) >"$OUT/cargo-fmt.log" 2>&1; then
	result ok "$what"
else
	rustfmt_result "$what" "$OUT/cargo-fmt.log"
fi

# --- clippy ----------------------------------------------------------------

# The module: kbuild's CLIPPY=1 build into its own MO= directory (the source
# tree stays clean, .build/mod-x86 keeps the plain build). Clippy only speaks
# when the crate is compiled, so its object goes first.
# $1: the MO= directory's name under .build/static; $2: what; the rest:
# extra make arguments.
clippy_module() {
	local mo=$OUT/$1 what=$2 log=$OUT/$1.log diag=$OUT/$1.diag rc=0 cnt
	shift 2
	if ! command -v clippy-driver >/dev/null; then
		result skip "$what" "clippy-driver not installed"
		return
	elif [ -z "$KDIR" ] || [ ! -f "$KDIR/Module.symvers" ]; then
		result fail "$what" "no kernel build at '$KDIR'"
		return
	fi
	mkdir -p "$mo"
	rm -f "$mo/rust/zcsend_main.o"
	make -C "$KDIR" M="$HERE" MO="$mo" LLVM="$LLVM_SUFFIX" CLIPPY=1 "$@" \
		modules >"$log" 2>&1 || rc=$?
	diagnostics "$log" | grep '^rust/' >"$diag" || true
	cnt=$(wc -l < "$diag")
	if [ "$rc" -eq 0 ] && [ "$cnt" -eq 0 ]; then
		result ok "$what"
	elif [ "$cnt" -gt 0 ]; then
		result fail "$what" "$cnt finding(s); first: $(head -n 1 "$diag")"
		show "$diag"
	else
		result fail "$what" "build failed (make exit $rc), see $log"
		tail -n 20 "$log" | sed 's/^/#   /'
	fi
}

clippy_module clippy-x86 "static: clippy (module, CLIPPY=1)"
# The stage profile build (BENCH_STAGES=1, tools/bench/README.rst) is only
# built by make bench: keep it compiling and lint-clean here.
clippy_module clippy-x86-stages "static: clippy (module with ZCSEND_STAGES=1)" ZCSEND_STAGES=1

what="static: cargo clippy --all-targets -D warnings (tools/zcsend-rs)"
if [ "$HAVE_CRATE" -eq 0 ]; then
	result skip "$what" "no tools/zcsend-rs/Cargo.toml"
elif ! command -v cargo >/dev/null || ! cargo clippy --version >/dev/null 2>&1; then
	result skip "$what" "cargo clippy not installed"
else
	rc=0
	cargo clippy "${CARGO_ARGS[@]}" --all-targets --quiet -- -D warnings \
		>"$OUT/cargo-clippy.log" 2>&1 || rc=$?
	diagnostics "$OUT/cargo-clippy.log" |
		sed 's|^\([^/?][^:]*\.rs:\)|tools/zcsend-rs/\1|' >"$OUT/cargo-clippy.diag"
	cnt=$(wc -l < "$OUT/cargo-clippy.diag")
	if [ "$rc" -eq 0 ] && [ "$cnt" -eq 0 ]; then
		result ok "$what"
	else
		result fail "$what" "$cnt finding(s) (exit $rc); first: $(head -n 1 "$OUT/cargo-clippy.diag")"
		show "$OUT/cargo-clippy.log" 40
	fi
fi

# --- checkpatch ------------------------------------------------------------

# Findings checkpatch cannot get right, dropped with their count shown:
#  - "spacing around '*'" on a kselftest harness type, FIXTURE_DATA(x) *self
#    (checkpatch reads the macro call as a value, the '*' as a product);
#  - COMPLEX_MACRO on a tracepoint EM()/EMe() enum table, which expands to
#    initialisers and cannot be parenthesised (the kernel's own trace
#    headers have the same).
known_false_positive() {
	local file=$1 line=$2 type=$3 msg=$4 src next
	src=$(sed -n "${line}p" "$file")
	next=$(sed -n "$((line + 1))p" "$file")
	case "$type" in
	ERROR:SPACING)
		[[ $msg == *"spacing around '*'"* ]] &&
			[[ $src =~ FIXTURE_(DATA|VARIANT)\([A-Za-z0-9_]+\)\ \* ]] ;;
	ERROR:COMPLEX_MACRO)
		[[ $src =~ ^#define\ [A-Z0-9_]+[[:space:]]*\\$ ]] &&
			[[ $next =~ ^[[:space:]]+EMe?\( ]] ;;
	*)	return 1 ;;
	esac
}

# checkpatch NAME STRICT FILE...: one result for the files; STRICT 1: any
# ERROR or WARNING fails, 0: ERRORs fail and WARNINGs are listed.
CHECKPATCH=${KSRC:+$KSRC/scripts/checkpatch.pl}
checkpatch() {
	local name=$1 strict=$2 what log errors=0 warnings=0 ignored=0 first="" f l
	shift 2
	what="static: checkpatch $name"
	log=$OUT/checkpatch-${name//[^A-Za-z0-9_.-]/_}.log
	if [ -z "$CHECKPATCH" ] || [ ! -f "$CHECKPATCH" ]; then
		result fail "$what" "no scripts/checkpatch.pl in the kernel source '$KSRC'"
		return
	fi
	if ! command -v perl >/dev/null; then
		result skip "$what" "perl not installed"
		return
	fi
	: >"$log"
	# --no-tree: the module is not a kernel tree (spelling.txt and
	# const_structs.checkpatch are found beside the script).
	perl "$CHECKPATCH" --no-tree --terse --show-types --no-summary -f "$@" \
		2>&1 | while IFS= read -r l; do
			if [[ $l =~ ^([^:]+):([0-9]+):\ ((ERROR|WARNING|CHECK):[A-Z_]+):\ (.*)$ ]] &&
			   known_false_positive "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" \
				"${BASH_REMATCH[3]}" "${BASH_REMATCH[5]}"; then
				echo "IGNORED $l"
			else
				echo "$l"
			fi
		done >"$log"
	errors=$(grep -c '^[^ ]*:[0-9]*: ERROR:' "$log")
	warnings=$(grep -c '^[^ ]*:[0-9]*: WARNING:' "$log")
	ignored=$(grep -c '^IGNORED ' "$log")
	local counts="$errors errors, $warnings warnings"
	[ "$ignored" -eq 0 ] || counts="$counts ($ignored known false positives ignored)"
	if [ "$strict" -eq 1 ]; then
		first=$(grep -m1 -E '^[^ ]*:[0-9]*: (ERROR|WARNING):' "$log")
	else
		first=$(grep -m1 -E '^[^ ]*:[0-9]*: ERROR:' "$log")
	fi
	if [ -z "$first" ] && grep -qv -e '^IGNORED ' -e ': WARNING:' -e ': CHECK:' "$log"; then
		first="checkpatch.pl: $(grep -m1 -v -e '^IGNORED ' -e ': WARNING:' -e ': CHECK:' "$log")"
	fi
	if [ -z "$first" ]; then
		result ok "$what" "$([ "$warnings" -eq 0 ] && [ "$ignored" -eq 0 ] || echo "$counts")"
	else
		result fail "$what" "$counts; first: $first"
	fi
	grep -v '^IGNORED ' "$log" | sed 's/^/#   /'
}

for f in rust/shim.c rust/shim.h rust/trace.c rust/zcsend_trace.h \
	 include/uapi/linux/zcsend.h tools/include/zcsend_ring.h \
	 tools/include/zcsend_pattern.h tools/host/zcsend_rx.c; do
	[ -f "$f" ] && checkpatch "$f" 1 "$f"
done
shopt -s nullglob
c=(samples/*.c samples/*.h)
[ ${#c[@]} -eq 0 ] || checkpatch "samples/" 0 "${c[@]}"
c=(selftests/zcsend/*.c selftests/zcsend/*.h)
[ ${#c[@]} -eq 0 ] || checkpatch "selftests/zcsend/" 0 "${c[@]}"
shopt -u nullglob

# --- cargo test ------------------------------------------------------------

# The unit tests (the ABI cross-check against the C compiler's view of the
# header) and the device tests, which skip without /dev/zcsend. Test output
# is not captured (--nocapture) so that the SKIP lines reach stderr; the
# results are read from stdout, whose "test NAME ... ok" lines stay whole.
if [ "$HAVE_CRATE" -eq 0 ]; then
	result skip "zcsend-rs: cargo test" "no tools/zcsend-rs/Cargo.toml"
elif ! command -v cargo >/dev/null; then
	result skip "zcsend-rs: cargo test" "cargo not installed"
else
	rc=0
	cargo test "${CARGO_ARGS[@]}" --no-fail-fast -- --nocapture \
		>"$OUT/cargo-test.out" 2>"$OUT/cargo-test.err" || rc=$?
	sed -n 's/^SKIP \([^ ]*[^ :]\): \(.*\)$/\1\t\2/p' "$OUT/cargo-test.err" >"$OUT/cargo-test.skips"
	tests=0
	while IFS= read -r l; do
		[[ $l =~ ^test\ (.+)\ \.\.\.\ (ok|FAILED|ignored)(.*)$ ]] || continue
		name=${BASH_REMATCH[1]} st=${BASH_REMATCH[2]}
		tests=$((tests + 1))
		reason=$(awk -F '\t' -v n="$name" '$1 == n { print $2; exit }' "$OUT/cargo-test.skips")
		case "$st" in
		ok)	if [ -n "$reason" ]; then
				result skip "zcsend-rs: $name" "$reason"
			else
				result ok "zcsend-rs: $name"
			fi ;;
		ignored) result skip "zcsend-rs: $name" "#[ignore]d" ;;
		*)	# "thread 'NAME' (TID) panicked at FILE:LINE:COL:" and the message.
			awk -v t="thread '$name' " 'index($0, t) == 1 && / panicked at / { n = 4 }
				n-- > 0' "$OUT/cargo-test.err" >"$OUT/cargo-test.panic"
			where=$(sed -n '1s/.* panicked at \(.*\):$/\1/p' "$OUT/cargo-test.panic")
			result fail "zcsend-rs: $name" \
				"failed${where:+ at tools/zcsend-rs/$where}, see $OUT/cargo-test.err"
			sed 's/^/#   /' "$OUT/cargo-test.panic" ;;
		esac
	done < "$OUT/cargo-test.out"
	if [ "$tests" -eq 0 ]; then
		result fail "zcsend-rs: cargo test" \
			"no test ran (exit $rc); first: $(diagnostics "$OUT/cargo-test.err" | head -n 1)"
		tail -n 20 "$OUT/cargo-test.err" | sed 's/^/#   /'
	elif [ "$rc" -ne 0 ] && ! grep -q '^test .* \.\.\. FAILED' "$OUT/cargo-test.out"; then
		result fail "zcsend-rs: cargo test" "exit $rc without a failed test, see $OUT/cargo-test.err"
		tail -n 20 "$OUT/cargo-test.err" | sed 's/^/#   /'
	fi
fi

echo "static: $passed passed, $failed failed, $skipped skipped ($(( $(date +%s) - T0 ))s)"
[ "$failed" -eq 0 ]
