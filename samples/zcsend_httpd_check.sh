#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# zcsend sample, host side of the HTTP file server: started by run_host.sh in
# the tap's namespace before the guest boots. The guest runs zcsend_httpd
# once per mode (sendfile, then zcsend) on 10.77.0.2:8080; for each run this
# waits until GET /manifest answers (the guest listens, the host connects),
# then, with an unmodified curl (no ~/.curlrc, no proxy):
#   - HEAD of every file, one curl call: 200 and the manifest's size as
#     Content-Length each time;
#   - GET of a missing file (404), of /../../etc/passwd sent as is (400), a
#     POST (405);
#   - GET of every file in one curl call, so over one kept-alive connection
#     (files of 8 MiB or more three times), each copy's sha256 compared with
#     the manifest's;
# and hands its verdict to the server with GET /quit?verdict=PASS+k/n+sha256
# (or FAIL+...). The server stops, prints CPU per GB and a RESULT line that
# passes only with a PASS verdict, which run_sample.sh and so `make run`
# count.
#
# Manifest (written by run_sample.sh): one line per file, "NAME SIZE SHA256".
#
# Environment: ZCSEND_HTTP_URL (default http://10.77.0.2:8080),
# ZCSEND_HTTP_RUNS (2), ZCSEND_HTTP_WAIT seconds for all of them (600).

URL=${ZCSEND_HTTP_URL:-http://10.77.0.2:8080}
RUNS=${ZCSEND_HTTP_RUNS:-2}
deadline=$(($(date +%s) + ${ZCSEND_HTTP_WAIT:-600}))
P=zcsend_httpd_check

say() {
	echo "$P: $*"
}

# One finding that fails this run.
bad() {
	fails=$((fails + 1))
	say "run $run ($mode): $*"
}

# curl as anyone would run it: no ~/.curlrc (-q), no proxy, no URL globbing.
get() {
	curl -q -sS -g --noproxy '*' --connect-timeout 5 "$@"
}

if ! command -v curl > /dev/null; then
	say "curl not found (scripts/deps.sh installs it): the guest's server will time out"
	exit 1
fi
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 1' HUP INT TERM

run=0
failed_runs=0
while [ $run -lt "$RUNS" ]; do
	run=$((run + 1))
	mode="?"
	fails=0
	rm -f "$TMP"/*
	# The guest starts the server once the samples before it are done.
	until get -f --max-time 30 -D "$TMP/hdr" -o "$TMP/manifest" "$URL/manifest" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			say "run $run: no server answered at $URL/manifest: giving up"
			exit 1
		fi
		sleep 1
	done
	mode=$(tr -d '\r' < "$TMP/hdr" | sed -n 's/^Server: .*mode=\([a-z]*\).*/\1/p')
	nfiles=$(wc -l < "$TMP/manifest")
	first=$(awk 'NR == 1 { print $1 }' "$TMP/manifest")
	[ "$nfiles" -gt 0 ] || bad "empty manifest"

	# HEAD: status and Content-Length of every file.
	set --
	while read -r name size sum; do
		set -- "$@" "$URL/$name"
	done < "$TMP/manifest"
	get -I "$@" | tr -d '\r' > "$TMP/head"
	heads=$(grep -c '^HTTP/1.1 200 ' "$TMP/head")
	lens=$(sed -n 's/^Content-Length: //p' "$TMP/head" | tr '\n' ' ')
	want=$(awk '{ printf "%s ", $2 }' "$TMP/manifest")
	[ "$heads" = "$nfiles" ] && [ "$lens" = "$want" ] ||
		bad "HEAD: $heads/$nfiles answered 200, Content-Length $lens(expected $want)"

	# Errors where due.
	c404=$(get -o /dev/null -w '%{http_code}' "$URL/no-such-file")
	c400=$(get -o /dev/null -w '%{http_code}' --path-as-is "$URL/../../etc/passwd")
	c405=$(get -o /dev/null -w '%{http_code}' -X POST "$URL/$first")
	[ "$c404 $c400 $c405" = "404 400 405" ] ||
		bad "missing file, ../ and POST answered $c404 $c400 $c405, expected 404 400 405"

	# GET everything in one call: one connection, kept alive.
	set --
	n=0
	: > "$TMP/expect"
	while read -r name size sum; do
		k=1
		[ "$size" -ge 8388608 ] && k=3
		while [ $k -gt 0 ]; do
			k=$((k - 1))
			n=$((n + 1))
			set -- "$@" -o "$TMP/get.$n" "$URL/$name"
			echo "$n $name $sum" >> "$TMP/expect"
		done
	done < "$TMP/manifest"
	get --max-time 900 -w '%{http_code} %{size_download} %{num_connects} %{time_total}\n' \
		"$@" > "$TMP/w" || bad "curl exited with status $?"
	conns=$(awk '{ c += $3 } END { print c + 0 }' "$TMP/w")
	speed=$(awk '{ b += $2; t += $4 }
		END { printf "%.1f MiB in %.2f s, %.1f MB/s", b / 1048576, t, (t > 0 ? b / t / 1e6 : 0) }' "$TMP/w")
	[ "$conns" = 1 ] || bad "$n GETs took $conns connections, expected 1 (keep-alive)"
	ok=0
	while read -r i name sum; do
		got=$(sha256sum < "$TMP/get.$i" 2>/dev/null | cut -d' ' -f1)
		if [ "$got" = "$sum" ]; then
			ok=$((ok + 1))
		else
			bad "$name (GET $i): sha256 ${got:-none}, expected $sum"
		fi
		rm -f "$TMP/get.$i"
	done < "$TMP/expect"

	if [ $fails -eq 0 ] && [ $ok -gt 0 ]; then
		verdict=PASS
	else
		verdict=FAIL
		failed_runs=$((failed_runs + 1))
	fi
	say "run $run ($mode): $nfiles files; HEAD, 404, 400, 405 $([ $fails -eq 0 ] && echo ok || echo checked); $n GETs over $conns connection(s), $speed; sha256 $ok/$n match: $verdict"
	get --max-time 30 -o /dev/null "$URL/quit?verdict=$verdict+$ok/$n+sha256" ||
		say "run $run ($mode): could not hand the verdict to the server"
done
say "summary: $RUNS runs, $failed_runs failed: $([ $failed_runs -eq 0 ] && echo PASS || echo FAIL)"
[ $failed_runs -eq 0 ]
