#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Fetch Debian's linux-source-7.2 (any 7.2.x on offer) into a cache directory
# and unpack it. Uses a private apt configuration whose archive URI is read
# from this machine's own apt sources; nothing is installed system-wide.
#
# Usage: fetch-kernel.sh CACHE_DIR
# Prints the path of the unpacked source tree on the last line of stdout.
set -euo pipefail

CACHE=${1:?usage: fetch-kernel.sh CACHE_DIR}
SERIES=7.2
SUITES="sid forky trixie-backports"
mkdir -p "$CACHE"

# Reuse an already unpacked tree if there is one.
existing=$(ls -d "$CACHE"/src/linux-source-$SERIES 2>/dev/null || true)
if [ -n "$existing" ] && [ -f "$CACHE/src/VERSION" ]; then
	echo "kernel: linux-source-$SERIES $(cat "$CACHE/src/VERSION") (cached)" >&2
	echo "$existing"
	exit 0
fi

# The Debian archive URI, from the machine's own sources (deb822 or one-line).
uri=""
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
	[ -n "$uri" ] && break
done
if [ -z "$uri" ]; then
	uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
	      awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }')
fi
[ -n "$uri" ] || { echo "kernel: no Debian archive URI in the apt sources" >&2; exit 1; }

APT="$CACHE/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/etc/preferences.d" \
	 "$APT/etc/sources.list.d"
: > "$APT/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
opts=(-o "Dir::Etc::SourceList=$APT/sources.list"
      -o "Dir::Etc::SourceParts=$APT/etc/sources.list.d"
      -o "Dir::Etc::Preferences=$APT/etc/preferences"
      -o "Dir::Etc::PreferencesParts=$APT/etc/preferences.d"
      -o "Dir::State::Lists=$APT/lists"
      -o "Dir::State::status=$APT/status"
      -o "Dir::Cache=$APT/cache"
      -o "APT::Get::List-Cleanup=0"
      -o "Debug::NoLocking=1"
      -o "APT::Sandbox::User=root")

deb=""
for suite in $SUITES; do
	echo "deb [signed-by=$keyring] $uri $suite main" > "$APT/sources.list"
	apt-get "${opts[@]}" -qq update >/dev/null 2>"$APT/update.err" || {
		echo "kernel: apt update for $suite failed: $(tail -1 "$APT/update.err")" >&2
		continue
	}
	ver=$(apt-cache "${opts[@]}" madison linux-source-$SERIES 2>/dev/null |
	      awk '{ print $3 }' | grep "^$SERIES\." | head -1 || true)
	if [ -z "$ver" ]; then
		echo "kernel: $suite offers no linux-source-$SERIES" >&2
		continue
	fi
	echo "kernel: $suite offers linux-source-$SERIES $ver" >&2
	(cd "$APT/cache/archives" &&
	 apt-get "${opts[@]}" -qq download "linux-source-$SERIES=$ver" >/dev/null) || continue
	deb=$(ls "$APT"/cache/archives/linux-source-${SERIES}_*.deb | head -1)
	break
done
[ -n "$deb" ] || { echo "kernel: no suite offers linux-source-$SERIES" >&2; exit 1; }

rm -rf "$CACHE/src.tmp"
mkdir -p "$CACHE/src.tmp"
dpkg-deb -x "$deb" "$CACHE/src.tmp/deb"
tarball=$(ls "$CACHE"/src.tmp/deb/usr/src/linux-source-$SERIES.tar.* | head -1)
tar -C "$CACHE/src.tmp" -xf "$tarball"
rm -rf "$CACHE/src.tmp/deb"
echo "$ver" > "$CACHE/src.tmp/VERSION"
rm -rf "$CACHE/src"
mv "$CACHE/src.tmp" "$CACHE/src"
echo "kernel: linux-source-$SERIES $ver unpacked" >&2
echo "$CACHE/src/linux-source-$SERIES"
