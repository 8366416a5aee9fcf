#!/bin/bash
# node_reload.sh - SIGHUP re-reads the configuration: tunables apply, keys
# that need a restart are reported and ignored, the node keeps serving.
set -u
B=${TB_BUILDDIR:?}
. "${TB_SRCDIR:-.}/tests/ports.sh"
BASE=$(tp_block 1) || exit 1
W=$(mktemp -d)
PID=
trap '[ -z "$PID" ] || kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP
fail() {
	tp_clash "$W/node.log"
	echo "FAIL: $*"
	[ -f "$W/node.log" ] && tail -n 20 "$W/node.log"
	exit 1
}

"$B/tongban" dev-federation --dir "$W/fed" --members 320300 --base-port "$BASE" >/dev/null ||
	fail "dev-federation"
C="$W/fed/320300/node.conf"
( cd "$W/fed/320300" && exec "$B/tongban-node" -c node.conf ) > "$W/node.log" 2>&1 &
PID=$!
healthy() {
	{ exec 3<>"/dev/tcp/127.0.0.1/$((BASE + 1000))"; } 2>/dev/null || return 1
	printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
	grep -q '"ok"' <&3
	local rc=$?
	exec 3>&-
	return $rc
}
for i in $(seq 1 100); do healthy && break; sleep 0.1; done
healthy || fail "node did not start"
sed -i "s/^listen = .*/listen = 127.0.0.1:$((BASE + 30))/" "$C"
printf 'log_level = debug\nclock_skew = 120\n' >> "$C"
kill -HUP "$PID"
for i in $(seq 1 50); do grep -q "configuration reloaded" "$W/node.log" && break; sleep 0.1; done
grep -q "configuration reloaded (log_level debug, .*clock_skew 120" "$W/node.log" ||
	fail "tunables not reloaded"
grep -q "need a restart, not applied: ports" "$W/node.log" || fail "listen change not reported"
grep -q "registry unchanged" "$W/node.log" || fail "registry not re-read"
healthy || fail "node stopped serving after SIGHUP"
# a broken configuration is refused and the running one kept
echo "bogus_key = 1" >> "$C"
kill -HUP "$PID"
for i in $(seq 1 50); do grep -q "configuration not reloaded" "$W/node.log" && break; sleep 0.1; done
grep -q "configuration not reloaded: .*unknown key 'bogus_key'" "$W/node.log" ||
	fail "broken configuration not refused with its reason"
healthy || fail "node stopped serving after a broken SIGHUP"
kill "$PID"
wait "$PID"
rc=$?
PID=
[ "$rc" -eq 0 ] || fail "exit $rc on SIGTERM"
echo "PASS: SIGHUP configuration reload"
