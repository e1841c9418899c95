#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# zcsend benchmark, guest side (dash in the busybox initramfs): the job of
# `make bench` (zcsend.job=bench). Packed as /zcsend/bench/run_bench.sh,
# next to zcbench, by scripts/bench.sh; the same initramfs boots under QEMU
# and User-Mode Linux.
#
# Reloads zcsend.ko with copy_threshold=0 (every size takes the zero-copy
# path), sets up the paths and runs zcbench once per path:
#   udp-dummy0  UDP to 10.78.0.2, routed out dummy0 (MTU 65535, static
#               neighbour): the in-guest path on which UDP is truly zero-copy
#   tcp-tap     TCP to the host end of the tap (virtio-net, vnet_hdr) where
#               scripts/bench.sh runs `zcbench --sink`: true zero-copy TCP.
#               QEMU only (needs eth0)
#   tcp-lo      TCP over loopback to a receiver forked in the guest: local
#               delivery copies, so nothing is zero-copy here (reference)
# The fan-out methods (fanout_*, zcsend_fanout*) run on udp-dummy0 (N UDP
# sockets, ports 9..9+N-1) and tcp-tap (N connections to the host sink);
# not on tcp-lo. Without a tap (UML) the TCP fan-out cells are skipped.
#
# Settings come from the kernel command line (scripts/bench.sh sets them):
#   zcsend.accel=tcg|kvm|uml    zcsend.bench_smoke=1 (tiny byte counts)
#   zcsend.bench_reps=N         zcsend.bench_bytes=N (per cell, K/M suffixes)
#   zcsend.bench_paths=a,b      zcsend.bench_sizes=1K,4K,...
#   zcsend.bench_methods=a,b    zcsend.bench_max_calls=N
#                               ("fanout": the six fan-out methods, "single":
#                               the nine others, "all")
#   zcsend.bench_fanout=1,8,64  destinations per payload ("none": no fan-out)
#   zcsend.bench_fanout_sizes=64K,1M
#   zcsend.bench_fanout_bytes=N bytes delivered per fan-out cell, summed over
#                               the destinations (default: bench_bytes)
# Output: the ZCB,... records of zcbench on the console; report.py reads them.

cd "$(dirname "$0")" || exit 1
PATH=/sbin:/usr/sbin:/usr/bin:/bin

# Value of zcsend.NAME= on the kernel command line, or $2.
karg() {
	for a in $(cat /proc/cmdline); do
		case "$a" in
		zcsend.$1=*) echo "${a#*=}"; return ;;
		esac
	done
	echo "$2"
}

ACCEL=$(karg accel unknown)
SMOKE=$(karg bench_smoke 0)
PATHS=$(karg bench_paths udp-dummy0,tcp-tap,tcp-lo)
SIZES=$(karg bench_sizes 1K,4K,16K,64K,256K,1M)
METHODS=$(karg bench_methods send,msg_zerocopy,uring_zc,uring_zc_fixed,sendfile,vmsplice,zcsend,zcsend_fixed,zcsend_batch,fanout_send,fanout_msg_zc,fanout_uring_zc_fixed,fanout_tee,zcsend_fanout,zcsend_fanout_stable)
FANOUT=$(karg bench_fanout 1,8,64)
FANOUT_SIZES=$(karg bench_fanout_sizes 64K,1M)
# zcsend.bench_huge=1 (default): the zero-copy methods again at 64K and up
# with the buffer in transparent huge pages (zcbench --huge, methods named
# <method>_huge), on udp-dummy0 and tcp-tap, where THP is available.
HUGE=$(karg bench_huge 1)
if [ "$SMOKE" = 1 ]; then
	REPS=$(karg bench_reps 1)
	BYTES=$(karg bench_bytes 256K)
	MAXCALLS=$(karg bench_max_calls 64)
	MINCALLS=4
	NULLSECS=0.02
else
	REPS=$(karg bench_reps 5)
	BYTES=$(karg bench_bytes 32M)
	MAXCALLS=$(karg bench_max_calls 4096)
	MINCALLS=32
	# UML's thread CPU clock ticks in jiffies (10 ms): measure longer there.
	NULLSECS=0.3
	[ "$ACCEL" != uml ] || NULLSECS=1
fi
# Fan-out cells deliver as many bytes as a single-socket cell sends (each
# byte counted once per destination), so they last about as long.
FANOUT_BYTES=$(karg bench_fanout_bytes "$BYTES")
# zcsend.bench_profile=1: instead of timing, run each method alone under
# ftrace's function profiler (self time: options/graph-time off) and print
# its top functions as ZCP,<path>,<method>,<rank>,<function>,<hits>,<us>
# lines. Absolute times are inflated by the tracing; the ranking is what
# it is for: where a method's kernel time goes.
# zcsend.bench_profile=graph: the function_graph tracer instead, over the
# system calls that send (ioctl, io_uring_enter, sendto, sendmsg, recvmsg,
# read), and the SELF time of every function (its time minus its traced
# callees'), as ZCG,<path>,<method>,<rank>,<function>,<calls>,<us> lines.
# Code ftrace cannot see (the module's Rust, inlined helpers) shows up as
# the self time of the nearest traced caller (__x64_sys_ioctl for zcsend's
# handler), plus the tracer's own cost per traced callee.
PROFILE=$(karg bench_profile 0)
PROFILE_TOP=$(karg bench_profile_top 40)
# With bench_profile=graph: also this many raw trace lines from the end of
# each method's trace, from before its 20th sock_sendmsg, as
# ZCT,<method>,<line> (a few sends, laid out).
PROFILE_LINES=$(karg bench_profile_lines 0)
TRACING=/sys/kernel/tracing
# zcsend.bench_tbprof=1: QEMU runs the tbprof plugin (BENCH_TBPROF=1):
# zcbench marks each cell's timed part for it, and the module's symbols
# are printed as ZCB,ksym,<address>,<type>,<name> to map its counts.
if [ "$(karg bench_tbprof 0)" = 1 ]; then
	export ZCBENCH_TBPROF=1
fi

say() {
	echo "zcbench: $*"
}
meta() {
	echo "ZCB,meta,$1,$2"
}

cpus=$(grep -c '^processor' /proc/cpuinfo)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
[ -n "$model" ] || model=$(sed -n 's/^vendor_id[[:space:]]*: //p' /proc/cpuinfo | head -1)
meta accel "$ACCEL"
meta kernel "$(uname -r)"
meta kernel_version "$(cat /proc/version)"
meta cpus "$cpus"
meta cpu_model "$(echo "$model" | tr ',' ' ')"
meta hz "$(getconf CLK_TCK 2>/dev/null || echo 100)"
meta smoke "$SMOKE"
meta reps "$REPS"
meta bytes "$BYTES"
meta max_calls "$MAXCALLS"
meta fanout "$(echo "$FANOUT" | tr ',' ' ')"
meta fanout_sizes "$(echo "$FANOUT_SIZES" | tr ',' ' ')"
meta fanout_bytes "$FANOUT_BYTES"
say "accelerator $ACCEL, kernel $(uname -r), $cpus CPU(s) ($model)"

# Every size on the zero-copy path: the benchmark measures that path, not
# the default threshold's copy fallback.
if [ -d /sys/module/zcsend ]; then
	rmmod zcsend || say "rmmod zcsend failed"
fi
if [ -f /zcsend/zcsend.ko ] && insmod /zcsend/zcsend.ko copy_threshold=0; then
	say "zcsend.ko loaded with copy_threshold=0"
else
	say "could not load zcsend.ko: no zcsend runs"
fi

if [ "${ZCBENCH_TBPROF:-0}" = 1 ]; then
	grep '\[zcsend\]' /proc/kallsyms | awk '{ print "ZCB,ksym," $1 "," $2 "," $3 }'
fi

# MSG_ZEROCOPY's notifications are charged to optmem; io_uring and zcsend's
# are not. Raise it as msg_zerocopy.sh does so that it does not stall.
echo 1000000 > /proc/sys/net/core/optmem_max
# vmsplice: 1 MiB sends need a 256-page pipe.
echo 8388608 > /proc/sys/fs/pipe-max-size 2>/dev/null

setup_dummy() {
	ip link add dummy0 type dummy 2>/dev/null
	ip link set dummy0 mtu 65535 up &&
	ip addr add 10.78.0.1/24 dev dummy0 2>/dev/null
	ip neigh replace 10.78.0.2 lladdr 02:00:00:00:00:02 dev dummy0 nud permanent
}

# Whether the method list selects a fan-out method (and fan-out is on).
has_fanout() {
	case "$FANOUT" in
	''|none|0) return 1 ;;
	esac
	case ",$METHODS," in
	*,all,*|*,fanout,*|*,fanout_*|*,zcsend_fanout*) return 0 ;;
	esac
	return 1
}

# Fan-out cells of a path that cannot have them: one record for report.py.
fanout_skip() {
	if has_fanout; then
		say "path $1: fan-out cells skipped: $2"
		echo "ZCB,fanout_skip,$1,*,0,0,$2"
	fi
}

status=0

profile_setup() {
	[ -d $TRACING/options ] || mount -t tracefs nodev $TRACING 2>/dev/null
	if [ ! -w $TRACING/function_profile_enabled ]; then
		say "profile: no ftrace function profiler in this kernel"
		return 1
	fi
	# Self time, without the time spent asleep.
	echo 0 > $TRACING/options/graph-time
	echo 0 > $TRACING/options/sleep-time
	[ "$PROFILE" = graph ] || return 0
	echo 0 > $TRACING/tracing_on
	echo function_graph > $TRACING/current_tracer || return 1
	echo 0 > $TRACING/options/funcgraph-irqs
	echo 1 > $TRACING/options/funcgraph-tail
	echo 0 > $TRACING/options/funcgraph-proc
	# Timestamps, for the raw lines: gaps between traced calls are the
	# untraced code between them.
	echo 1 > $TRACING/options/funcgraph-abstime
	echo 65536 > $TRACING/buffer_size_kb
	for f in __x64_sys_ioctl __x64_sys_io_uring_enter __x64_sys_sendto \
		__x64_sys_sendmsg __x64_sys_recvmsg __x64_sys_read; do
		echo "$f" >> $TRACING/set_graph_function
	done
}

# Self time per function from a function_graph trace on stdin (see above).
graph_self() {
	awk -F'|' 'NF >= 2 {
		d = $(NF - 1); sub(/^.*\)/, "", d); gsub(/[^0-9.]/, "", d)
		c = $NF; n = match(c, /[^ ]/)
		c = substr(c, n)
		if (c ~ /^}/) {
			if (sp <= 0) next
			f = stack[sp]; sp--
			self[f] += d - kids[sp + 1]; calls[f]++
			kids[sp] += d
		} else if (c ~ /[{]$/) {
			sub(/\(.*/, "", c); sp++; stack[sp] = c; kids[sp] = 0
		} else if (c ~ /\);/) {
			sub(/\(.*/, "", c); self[c] += d; calls[c]++
			kids[sp] += d
		}
	}
	END { for (f in self) printf "%.1f %s %d\n", self[f], f, calls[f] }'
}

# Profiles each method of the path alone; ZCP lines on the console.
profile_path() {
	name=$1
	shift
	for m in $(echo "$METHODS" | tr ',' ' '); do
		if [ "$PROFILE" = graph ]; then
			echo > $TRACING/trace
			ZCBENCH_PROFILE=$TRACING/tracing_on ./zcbench --path "$name" --sizes "$SIZES" \
				--methods "$m" --reps 1 --bytes "$BYTES" --min-calls "$MINCALLS" \
				--max-calls "$MAXCALLS" --null-secs 0 --fanout-sizes "$FANOUT_SIZES" \
				--fanout-bytes "$FANOUT_BYTES" "$@" > /dev/null ||
				say "profile $name $m: zcbench failed"
			graph_self < $TRACING/trace | sort -rn | head -n "$PROFILE_TOP" |
				awk -v p="$name" -v m="$m" '{ printf "ZCG,%s,%s,%d,%s,%d,%.1f\n", p, m, NR, $2, $3, $1 }'
			[ "$PROFILE_LINES" = 0 ] ||
				awk -v n="$PROFILE_LINES" '/sock_sendmsg\(\) \{/ && ++k == 20 { s = NR - n / 4 }
					{ l[NR] = $0 } END { if (s < 1) s = 1
					for (i = s; i < s + n && i <= NR; i++) print l[i] }' $TRACING/trace |
					sed "s/^/ZCT,$m,/"
			continue
		fi
		ZCBENCH_PROFILE=$TRACING/function_profile_enabled ./zcbench --path "$name" --sizes "$SIZES" --methods "$m" --reps 1 \
			--bytes "$BYTES" --min-calls "$MINCALLS" --max-calls "$MAXCALLS" \
			--null-secs 0 --fanout-sizes "$FANOUT_SIZES" \
			--fanout-bytes "$FANOUT_BYTES" "$@" > /dev/null ||
			say "profile $name $m: zcbench failed"
		# Both CPUs' tables, merged by function, by self time.
		cat $TRACING/trace_stat/function* 2>/dev/null |
			awk '$2 ~ /^[0-9]+$/ && $3 ~ /^[0-9.]+$/ {
				hits[$1] += $2; t[$1] += $3 }
			END { for (f in t) printf "%.1f %s %d\n", t[f], f, hits[f] }' |
			sort -rn | head -n "$PROFILE_TOP" |
			awk -v p="$name" -v m="$m" '{ printf "ZCP,%s,%s,%d,%s,%d,%.1f\n", p, m, NR, $2, $3, $1 }'
	done
}

# The zero-copy methods of $METHODS, for the huge-page pass.
huge_methods() {
	for m in $(echo "$METHODS" | tr ',' ' '); do
		case "$m" in
		all|single) echo msg_zerocopy uring_zc uring_zc_fixed zcsend zcsend_fixed zcsend_batch ;;
		msg_zerocopy|uring_zc|uring_zc_fixed|zcsend|zcsend_fixed|zcsend_batch) echo "$m" ;;
		esac
	done | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ',' | sed 's/,$//'
}

# The sizes of $SIZES from 64K up, for the huge-page pass.
huge_sizes() {
	for z in $(echo "$SIZES" | tr ',' ' '); do
		case "$z" in
		*M|*m) echo "$z" ;;
		*K|*k) [ "${z%?}" -lt 64 ] 2>/dev/null || echo "$z" ;;
		esac
	done | tr '\n' ',' | sed 's/,$//'
}

# The huge-page pass of path $1 (zcbench arguments follow).
run_huge() {
	name=$1
	shift
	[ "$HUGE" = 1 ] && [ "$PROFILE" = 0 ] || return 0
	hm=$(huge_methods)
	hs=$(huge_sizes)
	[ -n "$hm" ] && [ -n "$hs" ] || return 0
	thp=/sys/kernel/mm/transparent_hugepage/enabled
	if ! grep -q '\[always\]\|\[madvise\]' $thp 2>/dev/null; then
		say "path $name: no transparent huge pages: huge-page cells skipped"
		return 0
	fi
	say "path $name: huge-page pass: zcbench --huge --sizes $hs --methods $hm"
	./zcbench --path "$name" --huge --sizes "$hs" --methods "$hm" --reps "$REPS" \
		--bytes "$BYTES" --min-calls "$MINCALLS" --max-calls "$MAXCALLS" \
		--null-secs 0 "$@" --fanout none
	rc=$?
	[ $rc -eq 0 ] || { say "path $name: zcbench --huge exit status $rc"; status=1; }
}

run_path() {
	name=$1
	shift
	if [ "$PROFILE" != 0 ]; then
		profile_path "$name" "$@"
		return
	fi
	say "path $name: zcbench $*"
	./zcbench --path "$name" --sizes "$SIZES" --methods "$METHODS" --reps "$REPS" \
		--bytes "$BYTES" --min-calls "$MINCALLS" --max-calls "$MAXCALLS" \
		--null-secs "$NULLSECS" --fanout-sizes "$FANOUT_SIZES" \
		--fanout-bytes "$FANOUT_BYTES" "$@"
	rc=$?
	[ $rc -eq 0 ] || { say "path $name: zcbench exit status $rc"; status=1; }
	case "$name" in
	udp-dummy0|tcp-tap) run_huge "$name" "$@" ;;
	esac
}

[ "$PROFILE" = 0 ] || profile_setup || PROFILE=0
for p in $(echo "$PATHS" | tr ',' ' '); do
	case "$p" in
	udp-dummy0)
		if setup_dummy; then
			meta path "udp-dummy0,UDP out dummy0 (MTU 65535): zero-copy path"
			run_path udp-dummy0 --udp --dest 10.78.0.2 --port 9 --fanout "$FANOUT"
		else
			echo "ZCB,skip,udp-dummy0,*,0,no dummy device"
			fanout_skip udp-dummy0 "no dummy device"
		fi ;;
	tcp-tap)
		peer=${ZCSEND_PEER4:-}
		if [ -z "$peer" ] || ! [ -e /sys/class/net/eth0 ]; then
			say "path tcp-tap: no eth0 (only under QEMU with --tap): skipped"
			echo "ZCB,skip,tcp-tap,*,0,no tap NIC in this guest"
			fanout_skip tcp-tap "no tap NIC in this guest: TCP fan-out needs the host sink"
			continue
		fi
		i=0
		while ! ping -c 1 -W 1 "$peer" > /dev/null 2>&1 && [ $i -lt 10 ]; do
			i=$((i + 1))
		done
		meta path "tcp-tap,TCP via virtio-net + tap (vnet_hdr) to the host: zero-copy path"
		run_path tcp-tap --tcp --dest "$peer" --port 7900 --fanout "$FANOUT" ;;
	tcp-lo)
		meta path "tcp-lo,TCP over loopback (local delivery copies): reference"
		fanout_skip tcp-lo "fan-out is measured on udp-dummy0 and tcp-tap only"
		run_path tcp-lo --tcp --dest 127.0.0.1 --port 7901 --local-sink --fanout none ;;
	*)
		say "unknown path $p" ;;
	esac
done

if [ -d /sys/module/zcsend ]; then
	say "zcsend module counters: $(cat /sys/module/zcsend/refcnt 2>/dev/null) refs"
fi
echo "ZCB,end,$status"
exit $status
