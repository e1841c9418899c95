#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# zcsend selftests, host side: started by the runner inside the network
# namespace that holds tap0 (scripts/guest.sh --tap --host-cmd) before the
# guest boots, and ended with the guest. Serves the "remote" tests of
# zcsend_send and zcsend_soak (guest 10.77.0.2 / fd77::2 -> 10.77.0.1 /
# fd77::1 port 7777) with zcsend_rx --mode remote.
#
# Environment: ZCSEND_RX_TIMEOUT seconds before the receiver gives up by
# itself (default 900), ZCSEND_RX_PORT (default 7777).

exec "$(dirname "$0")/zcsend_rx" --mode remote --port "${ZCSEND_RX_PORT:-7777}" \
	--timeout "${ZCSEND_RX_TIMEOUT:-900}"
