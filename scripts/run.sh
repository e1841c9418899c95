#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# `make run`: build the test kernel, zcsend.ko and the samples, boot the guest
# with zcsend.job=run on a tap network and show what the sample prints. The
# guest loads the module, shows /dev/zcsend and runs
# /zcsend/samples/run_sample.sh; without samples it says the sample is missing.
#
# Environment: see scripts/guest.sh.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$HERE/.build/run

"$HERE/scripts/deps.sh"
"$HERE/scripts/build.sh" "$OUT" --samples >/dev/null

guest_args=(--tap --job run --log "$OUT/console.log")
if [ -x "$OUT/samples/host/run_host.sh" ]; then
	guest_args+=(--host-cmd "exec $(printf %q "$OUT/samples/host/run_host.sh")")
fi
rc=0
"$HERE/scripts/guest.sh" "${guest_args[@]}" "$OUT/initramfs.cpio.gz" || rc=$?
if [ -s "$OUT/console.log.host" ]; then
	sed 's/^/host: /' "$OUT/console.log.host"
fi
# The sample's verdict is its exit status, which /init prints.
if [ $rc -eq 0 ] && ! grep -q '^zcsend-init: job run: exit status 0$' "$OUT/console.log"; then
	echo "run: the sample did not pass" >&2
	rc=1
fi
exit $rc
