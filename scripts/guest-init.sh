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
bench)	run_job /zcsend/bench/run_bench.sh ;;
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
