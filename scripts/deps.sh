#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the host tools zcsend needs, idempotently and quietly when present.
# Debian packages come from the machine's own (bookworm) archive only.
set -euo pipefail

PKGS="clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev libssl-dev
      cpio qemu-system-x86 busybox-static iproute2 liburing-dev kmod python3
      xz-utils gawk"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		$missing >/dev/null
fi

if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	echo "deps: rustup component add rust-src"
	rustup component add rust-src >/dev/null 2>&1
fi

if ! command -v bindgen >/dev/null 2>&1 ||
   ! bindgen --version 2>/dev/null | grep -q ' 0\.72\.'; then
	echo "deps: cargo install bindgen-cli 0.72"
	cargo install bindgen-cli --locked --version '^0.72' --quiet
fi
