#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot the zcsend test kernel with an initramfs under QEMU and capture the
# serial console to a log file (and stdout).
#
# Usage: guest.sh [options] INITRAMFS
#   --job NAME        zcsend.job=NAME on the kernel command line (check, run,
#                     bench, none)
#   --append ARGS     more kernel command line
#   --kernel BZIMAGE  default: the cached test kernel (scripts/kernel.sh x86)
#   --log FILE        console log, default .build/guest.log
#   --quiet           log only, nothing on stdout
#   --tap             give the guest a virtio-net NIC on a tap device with
#                     vnet_hdr (the path on which TCP sends are truly
#                     zero-copy) inside a network namespace made for this
#                     run: host 10.77.0.1/24 fd77::1/64, guest 10.77.0.2
#                     fd77::2 (set up by /init)
#   --host-cmd CMD    with --tap: run CMD (sh -c) in that namespace before
#                     boot; its output goes to FILE.host (FILE from --log)
#                     and it is ended when the guest is
#
# Environment: ZCSEND_ACCEL=tcg (default) or kvm; ZCSEND_TIMEOUT seconds
# before a hung guest is killed (default 600); ZCSEND_SMP, ZCSEND_MEM;
# ZCSEND_QEMU_PLUGIN: a TCG plugin and its arguments (QEMU's -plugin).
#
# Exits 0 when the guest printed ZCSEND-GUEST-DONE and powered off, 1 when it
# did not finish (panic, hang, timeout), 2 on usage errors.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
ACCEL=${ZCSEND_ACCEL:-tcg}
TIMEOUT=${ZCSEND_TIMEOUT:-600}
SMP=${ZCSEND_SMP:-2}
MEM=${ZCSEND_MEM:-1G}

usage() {
	sed -n '/^# Usage:/,/^# did not/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

JOB=""
APPEND=""
KERNEL=""
LOG=$HERE/.build/guest.log
QUIET=0
TAP=0
HOST_CMD=""
INITRD=""
while [ $# -gt 0 ]; do
	case "$1" in
	--job)		JOB=${2:?}; shift 2 ;;
	--append)	APPEND=${2:?}; shift 2 ;;
	--kernel)	KERNEL=${2:?}; shift 2 ;;
	--log)		LOG=${2:?}; shift 2 ;;
	--quiet)	QUIET=1; shift ;;
	--tap)		TAP=1; shift ;;
	--host-cmd)	HOST_CMD=${2:?}; shift 2 ;;
	-h|--help)	usage ;;
	-*)		echo "guest: unknown option $1" >&2; usage ;;
	*)		[ -z "$INITRD" ] || usage; INITRD=$1; shift ;;
	esac
done
[ -n "$INITRD" ] || usage
[ -f "$INITRD" ] || { echo "guest: $INITRD not found" >&2; exit 2; }
[ -z "$HOST_CMD" ] || [ $TAP -eq 1 ] || { echo "guest: --host-cmd needs --tap" >&2; exit 2; }
if [ -z "$KERNEL" ]; then
	KERNEL=$("$HERE/scripts/kernel.sh" x86 2>/dev/null | tail -1)/arch/x86/boot/bzImage
fi
[ -f "$KERNEL" ] || { echo "guest: kernel $KERNEL not found" >&2; exit 2; }

# Only warnings and worse reach the console; KUnit's INFO lines are read back
# from the log buffer by /init. Any oops panics, and a panic ends QEMU.
CMDLINE="console=ttyS0 loglevel=5 printk.time=1 log_buf_len=8M oops=panic panic=-1"
# TCG's TSC is the host clock: the clocksource watchdog only adds noise.
# The i440fx _PRT method is an AML loop that times out (30 s) under TCG with
# KASAN once a PCI NIC needs an IRQ: route PCI IRQs without ACPI (the BIOS's
# PIRQ table); ACPI stays on for poweroff. q35 avoids the loop but boots
# ~10 s slower.
CMDLINE="$CMDLINE tsc=reliable acpi=noirq"
CMDLINE="$CMDLINE${JOB:+ zcsend.job=$JOB}${APPEND:+ $APPEND}"

QEMU=(qemu-system-x86_64 -machine pc -nodefaults -no-user-config -display none -no-reboot
      -m "$MEM" -smp "$SMP" -kernel "$KERNEL" -initrd "$INITRD"
      -append "$CMDLINE" -serial stdio -monitor none)
case "$ACCEL" in
tcg)	QEMU+=(-accel tcg) ;;
kvm)	QEMU+=(-accel kvm -cpu host) ;;
*)	echo "guest: ZCSEND_ACCEL must be tcg or kvm, not $ACCEL" >&2; exit 2 ;;
esac
[ -z "${ZCSEND_QEMU_PLUGIN:-}" ] || QEMU+=(-plugin "$ZCSEND_QEMU_PLUGIN")

mkdir -p "$(dirname "$LOG")"
HOST_LOG=$LOG.host
NS=""
HOST_PID=""

cleanup() {
	local pid
	if [ -n "$HOST_PID" ]; then
		kill -- -"$HOST_PID" 2>/dev/null || true
		wait "$HOST_PID" 2>/dev/null || true
	fi
	if [ -n "$NS" ]; then
		# Anything left in the namespace was started by this run.
		for pid in $(ip netns pids "$NS" 2>/dev/null); do
			kill "$pid" 2>/dev/null || true
		done
		ip netns del "$NS" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RUN=()
if [ $TAP -eq 1 ]; then
	NS=zcsend-$$
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	ip -n "$NS" tuntap add dev tap0 mode tap vnet_hdr
	ip -n "$NS" addr add 10.77.0.1/24 dev tap0
	ip -n "$NS" -6 addr add fd77::1/64 dev tap0 nodad
	ip -n "$NS" link set tap0 up
	RUN=(ip netns exec "$NS")
	QEMU+=(-netdev tap,id=n0,ifname=tap0,script=no,downscript=no,vnet_hdr=on
	       -device virtio-net-pci,netdev=n0)
	if [ -n "$HOST_CMD" ]; then
		# Own process group, so that the whole helper can be ended.
		setsid ip netns exec "$NS" sh -c "$HOST_CMD" >"$HOST_LOG" 2>&1 </dev/null &
		HOST_PID=$!
	fi
fi

net=none
[ $TAP -eq 1 ] && net="tap in netns $NS"
echo "guest: qemu $ACCEL, $SMP vCPUs, $MEM, network $net, job ${JOB:-none}, timeout ${TIMEOUT}s" >&2
start=$(date +%s%N)
set +e
if [ $QUIET -eq 1 ]; then
	timeout -k 5 "$TIMEOUT" "${RUN[@]}" "${QEMU[@]}" </dev/null 2>&1 |
		sed -u 's/\r$//' > "$LOG"
else
	timeout -k 5 "$TIMEOUT" "${RUN[@]}" "${QEMU[@]}" </dev/null 2>&1 |
		sed -u 's/\r$//' | tee "$LOG"
fi
rc=${PIPESTATUS[0]}
set -e
ms=$(( ($(date +%s%N) - start) / 1000000 ))
elapsed=$((ms / 1000)).$((ms % 1000 / 100))

if [ -n "$HOST_PID" ]; then
	# Give the helper a moment to print what it saw, then end it.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$HOST_PID" 2>/dev/null || break
		sleep 0.2
	done
	kill -- -"$HOST_PID" 2>/dev/null || true
	wait "$HOST_PID" 2>/dev/null || true
	HOST_PID=""
fi

if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "guest: timed out after ${TIMEOUT}s, killed" >&2
	exit 1
fi
if [ "$rc" -ne 0 ]; then
	echo "guest: qemu exited with status $rc after ${elapsed}s" >&2
	exit 1
fi
if ! grep -q '^ZCSEND-GUEST-DONE' "$LOG"; then
	echo "guest: did not finish (no ZCSEND-GUEST-DONE) after ${elapsed}s, see $LOG" >&2
	exit 1
fi
up=$(sed -n 's/^zcsend-init: userspace up at \([0-9.]*\)s$/\1/p' "$LOG" | head -1)
echo "guest: $ACCEL guest finished in ${elapsed}s wall (userspace up at ${up:-?}s guest time)" >&2
