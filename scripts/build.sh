#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build what a guest run needs and pack it: the test kernel, zcsend.ko, and
# optionally the selftests and the samples, into OUTDIR/initramfs.cpio.gz.
# Shared by check.sh, run.sh and bench.sh.
#
# Usage: build.sh OUTDIR [--selftests] [--samples]
#
# Build output goes to OUTDIR/build.log and is shown only on failure.
# Prints the kernel build directory (KDIR) on the last line of stdout.
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=${1:?usage: build.sh OUTDIR [--selftests] [--samples]}
shift
WANT_SELFTESTS=0
WANT_SAMPLES=0
for a in "$@"; do
	case "$a" in
	--selftests)	WANT_SELFTESTS=1 ;;
	--samples)	WANT_SAMPLES=1 ;;
	*)		echo "build: unknown option $a" >&2; exit 2 ;;
	esac
done
LLVM_SUFFIX=${LLVM_SUFFIX:--19}

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
BLOG=$OUTDIR/build.log
: > "$BLOG"

# Run one build step with its output in the log; on failure show the log's
# tail and stop.
step() {
	local what=$1
	shift
	if ! "$@" >>"$BLOG" 2>&1; then
		echo "build: $what failed:" >&2
		tail -n 60 "$BLOG" >&2
		echo "build: full log in $BLOG" >&2
		exit 1
	fi
}

# tools/zcsend-rs's integration tests (tests/*.rs: the device tests), built
# statically for the busybox guest into DEST/<test name>. They build in
# their own target directory: the host's `cargo test` and clippy keep their
# cache. Cargo's JSON names the test executables; the compiler's messages,
# which that format carries on stdout, go to the build log.
rs_tests() {
	local dest=$1 json=$OUTDIR/zcsend-rs-tests.json rc=0
	RUSTFLAGS='-C target-feature=+crt-static' \
	CARGO_TARGET_DIR=$HERE/.build/zcsend-rs-guest \
		cargo test --release --locked --no-run --test '*' \
		--message-format=json \
		--manifest-path "$HERE/tools/zcsend-rs/Cargo.toml" \
		--target x86_64-unknown-linux-gnu >"$json" || rc=$?
	python3 - "$json" "$dest" "$rc" <<-'EOF'
	import json, os, shutil, sys
	path, dest, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
	exes = []
	for line in open(path):
	    try:
	        m = json.loads(line)
	    except ValueError:
	        continue
	    if m.get("reason") == "compiler-message":
	        sys.stderr.write(m["message"].get("rendered") or "")
	    elif (m.get("reason") == "compiler-artifact" and m.get("executable")
	          and m["profile"]["test"] and "test" in m["target"]["kind"]):
	        exes.append((m["target"]["name"], m["executable"]))
	if rc != 0:
	    sys.exit("zcsend-rs: cargo test --no-run failed (exit %d)" % rc)
	if not exes:
	    sys.exit("zcsend-rs: cargo built no test executable")
	os.makedirs(dest, exist_ok=True)
	for name, exe in exes:
	    shutil.copy(exe, os.path.join(dest, name))
	    print("zcsend-rs: %s -> %s/%s" % (exe, dest, name))
	EOF
}

KDIR=$("$HERE/scripts/kernel.sh" x86 | tail -1)
KSRC=$(readlink -f "$KDIR/source")

# Objects out of the source tree (kbuild's MO=), as the bench's builds.
MOD=$HERE/.build/mod-x86
mkdir -p "$MOD"
step "module build" make -C "$KDIR" M="$HERE" MO="$MOD" LLVM="$LLVM_SUFFIX" modules

args=(--module "$MOD/zcsend.ko")
if [ $WANT_SELFTESTS -eq 1 ]; then
	if [ ! -f "$HERE/selftests/zcsend/Makefile" ]; then
		echo "build: selftests/zcsend/Makefile is missing: no selftests to run" >&2
		exit 1
	fi
	rm -rf "$OUTDIR/selftests"
	step "selftests build" make -C "$HERE/selftests/zcsend" KSRC="$KSRC" \
		OUT="$OUTDIR/selftests"
	# tools/zcsend-rs's device tests, which run_tests.sh runs in the guest
	# as the program zcsend_rs.
	if [ -f "$HERE/tools/zcsend-rs/Cargo.toml" ]; then
		step "zcsend-rs test build" rs_tests "$OUTDIR/selftests/zcsend-rs"
	fi
	args+=(--selftests "$OUTDIR/selftests")
fi
if [ $WANT_SAMPLES -eq 1 ]; then
	if [ -f "$HERE/samples/Makefile" ]; then
		rm -rf "$OUTDIR/samples"
		step "samples build" make -C "$HERE/samples" KSRC="$KSRC" \
			OUT="$OUTDIR/samples"
		# The Rust zcsend-cat (tools/zcsend-rs), static for the busybox guest.
		if [ -f "$HERE/tools/zcsend-rs/Cargo.toml" ]; then
			step "zcsend-rs build" env RUSTFLAGS='-C target-feature=+crt-static' \
				cargo build --release --locked --bin zcsend-cat \
				--manifest-path "$HERE/tools/zcsend-rs/Cargo.toml" \
				--target x86_64-unknown-linux-gnu
			install -m 755 "$HERE/tools/zcsend-rs/target/x86_64-unknown-linux-gnu/release/zcsend-cat" \
				"$OUTDIR/samples/zcsend-cat"
		fi
		args+=(--samples "$OUTDIR/samples")
	else
		echo "build: samples/Makefile is missing: the guest will only load the module" >&2
	fi
fi

step "initramfs" "$HERE/scripts/initramfs.sh" "$OUTDIR/initramfs.cpio.gz" "${args[@]}"
echo "$KDIR"
