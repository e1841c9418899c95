#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# zcsend sample, host side: started by the runner inside the network
# namespace that holds tap0 (scripts/guest.sh --tap --host-cmd), before the
# guest boots. Raises tap0's MTU to its maximum (65521 for a tap: 65535 minus
# the Ethernet header) so that the guest's 60000-byte datagrams are not
# dropped, then serves the TCP and UDP runs of run_sample.sh (copy baseline
# and zcsend each, and zcsend-cat's TCP run) with zcsend_rx --mode xfer.
# zcsend_rx --mode bcast runs beside it on TCP 7880 for the four runs of the
# fan-out broadcaster (normal and stable mode, blocking and MSG_DONTWAIT) and
# checks every subscriber's stream.
# zcsend_httpd_check.sh runs beside them too: there the guest listens (the
# zcsend_httpd file server, sendfile then zcsend mode) and it connects with
# curl once the server answers, checks every file's sha256 and hands its
# verdict to the server.
#
# Environment: ZCSEND_RX_TIMEOUT seconds (default 300), ZCSEND_TAP (tap0).

TAP=${ZCSEND_TAP:-tap0}
mtu=$(ip -d link show "$TAP" 2>/dev/null | sed -n 's/.* maxmtu \([0-9]*\).*/\1/p')
if ip link set "$TAP" mtu "${mtu:-65521}"; then
	echo "run_host: $TAP mtu ${mtu:-65521}"
else
	echo "run_host: could not raise the $TAP mtu; large datagrams may be dropped"
fi
RX=$(dirname "$0")/zcsend_rx
# Ended with this helper's process group when the guest is done.
"$RX" --mode bcast --runs 4 --timeout "${ZCSEND_RX_TIMEOUT:-300}" &
if [ -x "$(dirname "$0")/zcsend_httpd_check.sh" ]; then
	"$(dirname "$0")/zcsend_httpd_check.sh" &
fi
exec "$RX" --mode xfer --tcp-runs 3 --udp-runs 2 \
	--timeout "${ZCSEND_RX_TIMEOUT:-300}"
