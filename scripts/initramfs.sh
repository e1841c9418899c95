#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Pack the zcsend guest initramfs: static busybox, /init, host programs with
# the shared libraries they need (iproute2's ip at least), the module, the
# selftests and the samples.
#
# Usage: initramfs.sh OUT.cpio.gz [--module KO] [--selftests DIR]
#                     [--samples DIR] [--bench DIR] [PROGRAM...]
#
# Layout in the guest:
#   /init                  scripts/guest-init.sh (see there)
#   /bin/*                 busybox and its applets
#   /sbin/ip               iproute2 (netns, veth, dummy)
#   /usr/bin/*             each PROGRAM (a path or a command name)
#   /zcsend/zcsend.ko      --module
#   /zcsend/selftests/*    everything in --selftests DIR (run_tests.sh included)
#   /zcsend/samples/*      everything in --samples DIR (run_sample.sh included)
#   /zcsend/bench/*        everything in --bench DIR (run_bench.sh included)
#
# The kernel command line picks the job: zcsend.job=check runs
# /zcsend/selftests/run_tests.sh, zcsend.job=run runs
# /zcsend/samples/run_sample.sh, zcsend.job=bench runs
# /zcsend/bench/run_bench.sh, zcsend.job=none only loads and unloads the
# module. Dynamically linked ELF files anywhere in the tree get their libraries.
set -euo pipefail

usage() {
	echo "usage: initramfs.sh OUT.cpio.gz [--module KO] [--selftests DIR] [--samples DIR] [--bench DIR] [PROGRAM...]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
OUT=$1
shift
MODULE=""
SELFTESTS=""
SAMPLES=""
BENCH=""
PROGS=(ip)
HERE=$(cd "$(dirname "$0")/.." && pwd)
while [ $# -gt 0 ]; do
	case "$1" in
	--module)	MODULE=${2:?}; shift 2 ;;
	--selftests)	SELFTESTS=${2:?}; shift 2 ;;
	--samples)	SAMPLES=${2:?}; shift 2 ;;
	--bench)	BENCH=${2:?}; shift 2 ;;
	-*)		usage ;;
	*)		PROGS+=("$1"); shift ;;
	esac
done

BUSYBOX=$(command -v busybox) || { echo "initramfs: busybox not found (busybox-static)" >&2; exit 1; }
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	echo "initramfs: $BUSYBOX is not static (install busybox-static)" >&2
	exit 1
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/zcsend-initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,dev,proc,sys,tmp,run,var,etc,root,zcsend}
ln -s ../run "$STAGE/var/run"
# The kernel opens /dev/console for init before devtmpfs is mounted.
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$STAGE/dev/null" c 1 3 2>/dev/null || true

# Copy the shared libraries (and the ELF interpreter) a file needs, at the
# paths ldd resolves them to. Scripts and static binaries need nothing.
add_libs() {
	local lib
	ldd "$1" >/dev/null 2>&1 || return 0
	for lib in $(ldd "$1" | awk '/=> \// { print $3 } /^[[:space:]]*\// { print $1 }'); do
		[ -e "$STAGE$lib" ] && continue
		mkdir -p "$STAGE$(dirname "$lib")"
		cp -L "$lib" "$STAGE$lib"
	done
}

# Host programs: ip goes to /sbin, the rest to /usr/bin.
declare -A hostprog=()
for p in "${PROGS[@]}"; do
	path=$(command -v "$p") || { echo "initramfs: program $p not found" >&2; exit 1; }
	name=$(basename "$path")
	dest=/usr/bin/$name
	[ "$name" = ip ] && dest=/sbin/ip
	cp -L "$path" "$STAGE$dest"
	add_libs "$path"
	hostprog[$name]=1
done

# /bin/sh is dash: Debian's busybox runs its own applets before searching
# PATH (FEATURE_SH_STANDALONE), so under busybox sh "ip" would never be
# iproute2's. Busybox still provides every other command, as symlinks.
SH=$(command -v dash) || { echo "initramfs: dash not found" >&2; exit 1; }
cp -L "$SH" "$STAGE/bin/sh"
add_libs "$SH"
hostprog[sh]=1
cp "$BUSYBOX" "$STAGE/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[ -n "${hostprog[$applet]:-}" ] && continue
	[ -e "$STAGE/bin/$applet" ] || ln -s busybox "$STAGE/bin/$applet"
done

# Copy a directory's contents into /zcsend/NAME, with the libraries of each
# dynamically linked executable in it.
add_tree() {
	local src=$1 dst=$STAGE/zcsend/$2 f
	[ -n "$src" ] || return 0
	[ -d "$src" ] || { echo "initramfs: $src is not a directory" >&2; exit 1; }
	mkdir -p "$dst"
	cp -a "$src/." "$dst/"
	# host/ holds the far end of the network tests, run on the host.
	rm -rf "$dst/host"
	while IFS= read -r -d '' f; do
		add_libs "$f"
	done < <(find "$dst" -type f -perm -u+x -print0)
}
add_tree "$SELFTESTS" selftests
add_tree "$SAMPLES" samples
add_tree "$BENCH" bench
if [ -n "$MODULE" ]; then
	[ -f "$MODULE" ] || { echo "initramfs: module $MODULE not found" >&2; exit 1; }
	cp "$MODULE" "$STAGE/zcsend/zcsend.ko"
fi

cat > "$STAGE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
EOF
cat > "$STAGE/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo "127.0.0.1 localhost" > "$STAGE/etc/hosts"

install -m 755 "$HERE/scripts/guest-init.sh" "$STAGE/init"

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
