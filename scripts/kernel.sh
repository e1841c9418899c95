#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build (or reuse) the zcsend test kernel: tinyconfig + configs/zcsend.config,
# LLVM=-19, Rust enabled. The build lives outside the repository, keyed by the
# kernel version and the hash of the fragment, so a warm run rebuilds nothing.
#
# Usage: kernel.sh [--dir] [x86|x86-bench|um]
#   x86        the test kernel: tinyconfig + configs/zcsend.config (debug set)
#   x86-bench  the same without the debug set (+ configs/bench.config)
#   um         User-Mode Linux: tinyconfig + configs/um.config
#   --dir      only print where that build lives (built or not); fetch and
#              build nothing
# Prints the build directory (KDIR) on the last line of stdout. While it
# builds, a progress line goes to stderr every 30 s.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
DIR_ONLY=0
if [ "${1:-}" = --dir ]; then
	DIR_ONLY=1
	shift
fi
ARCHK=${1:-x86}
CACHE=${ZCSEND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zcsend}
JOBS=${JOBS:-$(($(nproc) + 1))}
LLVM_SUFFIX=${LLVM_SUFFIX:--19}

case "$ARCHK" in
x86)		FRAGS="$HERE/configs/zcsend.config" ;;
x86-bench)	FRAGS="$HERE/configs/zcsend.config $HERE/configs/bench.config" ;;
um)		FRAGS="$HERE/configs/um.config" ;;
*)		echo "kernel: unknown flavour $ARCHK (x86, x86-bench, um)" >&2; exit 2 ;;
esac
HASH=$(cat $FRAGS | sha256sum | cut -c1-12)
if [ $DIR_ONLY = 1 ]; then
	[ -f "$CACHE/src/VERSION" ] || exit 1
	echo "$CACHE/build/$(cat "$CACHE/src/VERSION")-$ARCHK-$HASH"
	exit 0
fi
SRC=$("$HERE/scripts/fetch-kernel.sh" "$CACHE" | tail -1)
VER=$(cat "$CACHE/src/VERSION")
OUT="$CACHE/build/$VER-$ARCHK-$HASH"
STAMP="$OUT/.zcsend-built"

MAKEARGS=(-C "$SRC" O="$OUT" LLVM="$LLVM_SUFFIX")
if [ "$ARCHK" = um ]; then
	MAKEARGS+=(ARCH=um)
	TARGETS="vmlinux modules"
else
	MAKEARGS+=(ARCH=x86_64)
	TARGETS="bzImage modules"
fi

if [ -f "$STAMP" ]; then
	echo "kernel: $VER ($ARCHK, fragment $HASH) cached in $OUT" >&2
	echo "$OUT"
	exit 0
fi

mkdir -p "$OUT"
echo "kernel: building linux $VER ($ARCHK, fragment $HASH) in $OUT" >&2
make "${MAKEARGS[@]}" -s rustavailable >&2
make "${MAKEARGS[@]}" -s tinyconfig >/dev/null
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" $FRAGS >/dev/null
make "${MAKEARGS[@]}" -s olddefconfig >/dev/null

# A fragment option that did not survive olddefconfig is a silent failure
# (KASAN without SLUB_TINY=n, say): refuse to build a kernel that lies.
bad=0
# The last fragment that names an option decides it.
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n)
		opt=${line%%=*}
		if grep -q "^$opt=" "$OUT/.config"; then
			echo "kernel: $opt still set" >&2
			bad=1
		fi ;;
	CONFIG_*=*)
		if ! grep -qx "$line" "$OUT/.config"; then
			echo "kernel: $line missing from .config" >&2
			bad=1
		fi ;;
	esac
done < <(cat $FRAGS | grep '^CONFIG_' | tac | awk -F= '!seen[$1]++' | tac)
[ $bad -eq 0 ] || exit 1

# kbuild's short lines ("  CC  ...") become a progress line every 30 s;
# anything else (warnings, errors) is shown as it comes.
progress() {
	awk -v start="$1" '
		/^  [A-Z][A-Z0-9_]* / { n++
			now = systime()
			if (now - last >= 30) {
				printf "kernel: %d files built, %d s\n", n, now - start > "/dev/stderr"
				fflush("/dev/stderr"); last = now
			}
			next }
		/^make(\[[0-9]+\])?: (Entering|Leaving) directory/ { next }
		{ print > "/dev/stderr"; fflush("/dev/stderr") }
		BEGIN { last = systime() }'
}

start=$(date +%s)
echo "kernel: about 6-10 min on 2 cores (progress every 30 s)" >&2
make "${MAKEARGS[@]}" -j"$JOBS" $TARGETS 2>&1 | progress "$start"
echo "kernel: built in $(( $(date +%s) - start )) s" >&2
touch "$STAMP"
echo "$OUT"
