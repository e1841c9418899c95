#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Pack the zcsend guest initramfs: static busybox, /init, host programs with
# the shared libraries they need (iproute2's ip at least), the module, the
# selftests and the samples.
#
# Usage: initramfs.sh OUT.cpio.gz [--module KO] [--selftests DIR]
#                     [--samples DIR] [PROGRAM...]
#
# Layout in the guest:
#   /init                  busybox sh script, see below
#   /bin/*                 busybox and its applets
#   /sbin/ip               iproute2 (netns, veth, dummy)
#   /usr/bin/*             each PROGRAM (a path or a command name)
#   /zcsend/zcsend.ko      --module
#   /zcsend/selftests/*    everything in --selftests DIR (run_tests.sh included)
#   /zcsend/samples/*      everything in --samples DIR (run_sample.sh included)
#
# The kernel command line picks the job: zcsend.job=check runs
# /zcsend/selftests/run_tests.sh, zcsend.job=run runs
# /zcsend/samples/run_sample.sh, zcsend.job=bench runs
# /zcsend/samples/run_bench.sh, zcsend.job=none only loads and unloads the
# module. Dynamically linked ELF files anywhere in the tree get their libraries.
set -euo pipefail

usage() {
	echo "usage: initramfs.sh OUT.cpio.gz [--module KO] [--selftests DIR] [--samples DIR] [PROGRAM...]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
OUT=$1
shift
MODULE=""
SELFTESTS=""
SAMPLES=""
PROGS=(ip)
while [ $# -gt 0 ]; do
	case "$1" in
	--module)	MODULE=${2:?}; shift 2 ;;
	--selftests)	SELFTESTS=${2:?}; shift 2 ;;
	--samples)	SAMPLES=${2:?}; shift 2 ;;
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

cat > "$STAGE/init" <<'EOF'
#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# zcsend guest init: mount, configure the network, load the module, run the
# job named by zcsend.job= on the kernel command line, report and power off.
#
# Jobs get these environment variables:
#   ZCSEND_JOB     the job name
#   ZCSEND_PEER4   10.77.0.1, the host end of the tap (only with eth0)
#   ZCSEND_PEER6   fd77::1, likewise
#   ZCSEND_LOCAL4  10.77.0.2 and ZCSEND_LOCAL6 fd77::2, this guest's eth0
export PATH=/sbin:/usr/sbin:/usr/bin:/bin
export HOME=/root

mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmpfs /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
ln -sf /proc/self/fd /dev/fd

read -r up _ < /proc/uptime
echo "zcsend-init: userspace up at ${up}s"

job=none
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	zcsend.job=*) job=${arg#zcsend.job=} ;;
	# zcsend.env.NAME=VALUE: NAME=VALUE in the job's environment (the
	# host passes test knobs such as ZCSEND_FUZZ_CALLS this way).
	zcsend.env.*=*)
		kv=${arg#zcsend.env.}
		export "${kv%%=*}=${kv#*=}" ;;
	esac
done
export ZCSEND_JOB=$job
# The selftests load the module with local_copy=0: most of them exercise
# the zero-copy machinery over loopback, which local_copy=1 (the default)
# would route to the copy path. A test reloads it with local_copy=1 to check
# that path; the reload tests keep these parameters (7.2's Rust module
# parameters have no sysfs files to read them back from).
if [ "$job" = check ]; then
	export ZCSEND_KO_PARAMS=${ZCSEND_KO_PARAMS-local_copy=0}
fi

ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
	ip addr add 10.77.0.2/24 dev eth0
	ip -6 addr add fd77::2/64 dev eth0 nodad
	ip link set eth0 up
	export ZCSEND_PEER4=10.77.0.1 ZCSEND_PEER6=fd77::1
	export ZCSEND_LOCAL4=10.77.0.2 ZCSEND_LOCAL6=fd77::2
	echo "zcsend-init: eth0 10.77.0.2/24 fd77::2/64 (host 10.77.0.1 fd77::1)"
fi

# Results of init's own steps, printed as one TAP block at the end.
tap_n=0
tap_lines=""
result() {
	tap_n=$((tap_n + 1))
	tap_lines="$tap_lines$1 $tap_n $2
"
}

if [ ! -f /zcsend/zcsend.ko ]; then
	echo "zcsend-init: /zcsend/zcsend.ko missing"
	result "not ok" "insmod zcsend.ko # module missing from the initramfs"
elif out=$(insmod /zcsend/zcsend.ko $ZCSEND_KO_PARAMS 2>&1); then
	echo "zcsend-init: insmod zcsend.ko $ZCSEND_KO_PARAMS: ok"
	result ok "insmod zcsend.ko"
	if [ -c /dev/zcsend ]; then
		echo "zcsend-init: /dev/zcsend present: $(ls -l /dev/zcsend)"
	else
		echo "zcsend-init: /dev/zcsend missing"
	fi
	echo "zcsend-init: module $(tr '\0' '\n' < /zcsend/zcsend.ko |
		grep -E '^(version|vermagic)=' | tr '\n' ' ')"
	# KUnit ran the module's suites during this first load (later reloads
	# by the tests run them again): keep this load's KTAP, written at
	# KERN_INFO below the console loglevel, without timestamps. Each test
	# is one result; the suites' own summary lines become comments.
	dmesg | sed -n 's/^\[[ 0-9.]*\] \{0,1\}//; /KTAP version/,$p' |
		grep -E '^[[:space:]]*(K?TAP version|[0-9]+\.\.[0-9]+|(not )?ok [0-9]|#)' |
		sed -E 's/^((not )?ok [0-9]+ )/# suite: \1/' > /tmp/kunit.ktap || true
else
	echo "zcsend-init: insmod zcsend.ko failed: $out"
	result "not ok" "insmod zcsend.ko"
fi

# Run one job script from its own directory; a missing script fails the job.
run_job() {
	if [ ! -f "$1" ]; then
		echo "zcsend-init: job $job: $1 is missing"
		result "not ok" "job $job # $1 missing"
		return
	fi
	echo "zcsend-init: job $job: $1"
	(cd "$(dirname "$1")" && sh "$1")
	rc=$?
	echo "zcsend-init: job $job: exit status $rc"
	result ok "job $job ran $(basename "$1")"
}

case "$job" in
check)	run_job /zcsend/selftests/run_tests.sh ;;
run)	run_job /zcsend/samples/run_sample.sh ;;
bench)	run_job /zcsend/samples/run_bench.sh ;;
none)	;;
*)	echo "zcsend-init: unknown job $job"
	result "not ok" "job $job # unknown job" ;;
esac

# Unloading must work once every send has completed; kmemleak below then
# also sees what the module leaked.
if [ -d /sys/module/zcsend ]; then
	if out=$(rmmod zcsend 2>&1); then
		result ok "rmmod zcsend"
	else
		echo "zcsend-init: rmmod zcsend failed: $out"
		result "not ok" "rmmod zcsend"
	fi
fi

echo "# zcsend-init results"
echo "TAP version 13"
echo "1..$tap_n"
printf '%s' "$tap_lines"

echo "ZCSEND-GUEST-DONE"

# The KUnit results of the first load (see insmod above).
echo "# kunit results"
if [ -s /tmp/kunit.ktap ]; then
	cat /tmp/kunit.ktap
else
	echo "# no KUnit output in the kernel log"
fi

# kmemleak reports an object only after two scans, the second one starting
# at least five seconds after the object was allocated (here: after rmmod).
# Under TCG the first scan alone takes longer than that.
centisecs() {
	read -r t _ < /proc/uptime
	echo "${t%.*}${t#*.}"
}
if [ -w /sys/kernel/debug/kmemleak ]; then
	t0=$(centisecs)
	echo scan > /sys/kernel/debug/kmemleak
	left=$((t0 + 500 - $(centisecs)))
	[ $left -le 0 ] || sleep $((left / 100 + 1))
	echo scan > /sys/kernel/debug/kmemleak
	echo "# kmemleak: $(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak) objects"
	cat /sys/kernel/debug/kmemleak
else
	echo "# kmemleak: not available"
fi

read -r up _ < /proc/uptime
echo "zcsend-init: powering off at ${up}s"
poweroff -f
EOF
chmod 755 "$STAGE/init"

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
