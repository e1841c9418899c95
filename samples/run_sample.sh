#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# zcsend sample, guest side (busybox sh): the job of `make run`.
#
# Sends an 8 MiB file to zcsend_rx (xfer mode) on the host end of the tap, first
# over TCP (256 KiB sends), then over UDP (60000-byte datagrams, eth0 MTU
# raised to 65535 so that each leaves as one checksum-offloaded skb), each
# time with plain send() as a baseline and then through /dev/zcsend.
# If the UDP sends over eth0 were not all zero-copy, it also sends the same
# datagrams out dummy0 (no receiver: completion flags only); set
# ZCSEND_SAMPLE_DUMMY=1 (or zcsend.sample_dummy=1 on the kernel command line)
# to always do that, =0 never.
#
# Beside that transfer demo, zcsend_broadcast sends one stream to 8 TCP
# subscribers with ZCSEND_IOC_FANOUT (one call per chunk, one completion per
# call), in normal and in ZCSEND_FANOUT_STABLE mode, then once more with
# MSG_DONTWAIT so that sockets take only part of a chunk and the rest goes to
# each short subscriber alone; zcsend_rx (bcast mode) on the host checks that
# every subscriber received the identical full stream.
#
# Last, a file server: zcsend_httpd answers HTTP/1.1 GET and HEAD for files
# of several sizes in a tmpfs directory, bodies by sendfile(2) in one run and
# through /dev/zcsend from a read-only mapping in the next. An unmodified curl
# on the host (host/zcsend_httpd_check.sh) fetches every file over one
# kept-alive connection, compares each sha256 with the manifest the guest
# wrote, and hands its verdict back with GET /quit?verdict=...: the server's
# RESULT line passes only with the host's PASS. The server prints its CPU per
# GB of bodies in both modes.
#
# The host must run host/run_host.sh in the tap's namespace (scripts/run.sh
# does, with guest.sh --host-cmd). Exit status: 0 if every run passed.

cd "$(dirname "$0")" || exit 1
PEER=${ZCSEND_PEER4:-10.77.0.1}
LOCAL=${ZCSEND_LOCAL4:-10.77.0.2}
XFER=./zcsend_xfer
RESULTS=/tmp/zcsend_sample.results
LOG=/tmp/zcsend_sample.log
: > "$RESULTS"
status=0

say() {
	echo "zcsend-sample: $*"
}

# Runs zcsend_xfer with the given arguments, keeps its RESULT line.
xfer() {
	echo
	"$XFER" "$@" > "$LOG" 2>&1
	rc=$?
	cat "$LOG"
	grep '^RESULT ' "$LOG" | sed 's/^RESULT //' >> "$RESULTS"
	case $rc in
	0) ;;
	77) say "skipped: $*" ;;
	*) say "FAILED (exit $rc): $XFER $*"; status=1 ;;
	esac
	return $rc
}

if [ ! -x "$XFER" ]; then
	say "$XFER missing"
	exit 1
fi

# /init normally configures eth0; do it here when it did not.
if [ -e /sys/class/net/eth0 ] && ! ip -4 addr show dev eth0 | grep -q "inet $LOCAL/"; then
	ip addr add "$LOCAL/24" dev eth0
	ip -6 addr add fd77::2/64 dev eth0 nodad 2>/dev/null
	ip link set eth0 up
	say "configured eth0 $LOCAL/24"
fi
if [ ! -e /sys/class/net/eth0 ]; then
	say "no eth0: the guest needs the tap NIC (scripts/guest.sh --tap)"
	status=1
fi
if [ -c /dev/zcsend ]; then
	say "/dev/zcsend present"
else
	say "/dev/zcsend missing: zcsend.ko is not loaded; only the copy baselines will run"
fi

# The receiver may still be starting in the host namespace.
i=0
while ! ping -c 1 -W 1 "$PEER" > /dev/null 2>&1 && [ $i -lt 10 ]; do
	i=$((i + 1))
done

say "TCP to $PEER:7878, eth0 mtu $(cat /sys/class/net/eth0/mtu 2>/dev/null)"
xfer --tcp --plain --dest "$PEER"
xfer --tcp --dest "$PEER"

# The same transfer from Rust (tools/zcsend-rs): a pattern file, mapped
# read-only, through /dev/zcsend; the receiver checks every byte.
if [ -x ./zcsend-cat ]; then
	./zcsend-cat --make-pattern 8M /tmp/zcsend-cat.payload > /dev/null
	XFER=./zcsend-cat
	xfer --zcx /tmp/zcsend-cat.payload "$PEER:7878"
	XFER=./zcsend_xfer
	rm -f /tmp/zcsend-cat.payload
fi

# One 60000-byte datagram must fit the MTU unfragmented: then UDP builds one
# CHECKSUM_PARTIAL skb with the pages as frags, which virtio-net hands to the
# device as they are. Without VIRTIO_NET_F_MTU virtio-net allows 65535.
if ip link set eth0 mtu 65535; then
	say "UDP to $PEER:7879, eth0 mtu 65535"
else
	say "could not set eth0 mtu 65535: 60000-byte datagrams will be fragmented (and copied)"
fi
xfer --udp --plain --dest "$PEER"
xfer --udp --dest "$PEER"
udp_zc=no
grep -q '^zcsend_xfer:   zero-copy: yes' "$LOG" && udp_zc=yes

dummy=${ZCSEND_SAMPLE_DUMMY:-auto}
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	zcsend.sample_dummy=*) dummy=${arg#zcsend.sample_dummy=} ;;
	esac
done
if [ "$dummy" = auto ]; then
	dummy=0
	[ -c /dev/zcsend ] && [ $udp_zc = no ] && dummy=1
fi
if [ "$dummy" = 1 ]; then
	say "UDP out dummy0 (the in-guest zero-copy path; no receiver: completion flags only)"
	ip link show dummy0 > /dev/null 2>&1 || ip link add dummy0 type dummy
	ip link set dummy0 mtu 65535 up
	# A dummy device has no ARP: anything routed to it is "sent" and freed.
	ip addr add 10.78.0.1/24 dev dummy0 2>/dev/null
	xfer --udp --no-receiver --dest 10.78.0.2 --label zcsend-dummy0
	ip link set dummy0 down
fi

# One stream to many subscribers: ZCSEND_IOC_FANOUT (zcsend_broadcast.c).
if [ -x ./zcsend_broadcast ]; then
	echo
	say "fan-out: one stream to 8 TCP subscribers at $PEER:7880, eth0 mtu $(cat /sys/class/net/eth0/mtu 2>/dev/null)"
	XFER=./zcsend_broadcast
	xfer
	xfer --nowait --chunks 16
	XFER=./zcsend_xfer
fi

# A file server for curl on the host (zcsend_httpd.c, zcsend_httpd_check.sh).
# The host connects once the server answers, and ends each run with its
# verdict; -t: a host that never comes fails the run instead of hanging it.
if [ -x ./zcsend_httpd ]; then
	echo
	WWW=/tmp/zcsend_www
	mkdir -p "$WWW"
	for size in 4K 100001 1M 16M; do
		./zcsend_httpd --mkfile "$WWW/file-$size.bin" "$size" || status=1
	done
	for f in "$WWW"/*.bin; do
		echo "${f##*/} $(stat -c %s "$f") $(sha256sum < "$f" | cut -d' ' -f1)"
	done > "$WWW/manifest"
	say "HTTP file server on $LOCAL:8080 for curl on the host: $(wc -l < "$WWW/manifest") files (4 KiB to 16 MiB), eth0 mtu $(cat /sys/class/net/eth0/mtu 2>/dev/null)"
	XFER=./zcsend_httpd
	xfer -m sendfile -d "$WWW" -p 8080 -q -t 120
	xfer -m zcsend -d "$WWW" -p 8080 -q -t 120
	XFER=./zcsend_xfer
	rm -rf "$WWW"
fi

echo
echo "== zcsend sample summary (guest: QEMU, sender $LOCAL -> receiver $PEER) =="
cat "$RESULTS"
echo "(MB/s: first send until the buffers are free again, i.e. send() returned or"
echo " the completion was read; e2e: until the receiver's verdict; cpu: sender"
echo " process CPU per GB sent; call: median time spent in one send call)"
echo "(fanout rows: one ZCSEND_IOC_FANOUT per chunk to all subscribers, plus one"
echo " per remainder of a partly accepted chunk; MiB, MB/s and cpu count bytes"
echo " delivered, summed over subscribers; zero-copy: completion records; -nb:"
echo " MSG_DONTWAIT; -stable/-stb: ZCSEND_FANOUT_STABLE; cpu leaves out the"
echo " pattern generation)"
echo "(http rows: zcsend_httpd serving curl on the host, bodies by sendfile(2) or"
echo " ZCSEND_IOC_SEND; MiB: response bodies; reqs: every request, HEAD, error"
echo " checks and /quit included; zero-copy: completion records; cpu: server"
echo " CPU, user + sys, per GB of bodies; client: the host's verdict, the sha256"
echo " of every GET against the guest's manifest)"
if dmesg 2>/dev/null | grep -qiE 'KernelAddressSanitizer|lock dependency validator'; then
	echo "Note: this guest kernel is a debug build (KASAN/lockdep) running under"
	echo "QEMU TCG: speeds and CPU costs are far from a production kernel's and say"
	echo "little about zero-copy; the completion flags and the verdicts are what count."
fi
if [ $status -eq 0 ]; then
	say "PASS"
else
	say "FAIL"
fi
exit $status
