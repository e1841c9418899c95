#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the host tools zcsend needs, idempotently and quietly when present.
# Debian packages come from the machine's own (bookworm) archive only.
set -euo pipefail

PKGS="clang-19 lld-19 llvm-19 libclang-19-dev flex bison bc libelf-dev libssl-dev
      cpio qemu-system-x86 busybox-static iproute2 liburing-dev kmod python3
      xz-utils gawk perl curl"

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

# rust-src for the kernel's Rust; clippy and rustfmt for make check's host
# checks (scripts/static-checks.sh).
installed=$(rustup component list --installed 2>/dev/null || true)
for c in rust-src clippy rustfmt; do
	if ! grep -q "^$c" <<<"$installed"; then
		echo "deps: rustup component add $c"
		rustup component add "$c" >/dev/null 2>&1
	fi
done

if ! command -v bindgen >/dev/null 2>&1 ||
   ! bindgen --version 2>/dev/null | grep -q ' 0\.72\.'; then
	echo "deps: cargo install bindgen-cli 0.72"
	cargo install bindgen-cli --locked --version '^0.72' --quiet
fi
