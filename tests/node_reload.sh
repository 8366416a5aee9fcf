#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# node_reload.sh - SIGHUP re-reads the configuration: the keys the table
# marks reloadable apply, changed keys that need a restart are named and
# ignored, refused values are reported with file:line and the running
# configuration kept, and the node keeps serving.
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
# keys the table marks reloadable apply; the others are named, not applied
sed -i "s/^listen = .*/listen = 127.0.0.1:$((BASE + 30))/" "$C"
sed -i "s/^api = .*/api = 127.0.0.1:$((BASE + 1030))/" "$C"
printf 'log_level = debug\nclock_skew = 120\nretry_min_ms = 300\ndeflate = no\npeer_sessions = 4\nbreaker_open_ms = 2000\nanswer_timeout = 5\n' >> "$C"
kill -HUP "$PID"
for i in $(seq 1 50); do grep -q "configuration reloaded" "$W/node.log" && break; sleep 0.1; done
grep -q "configuration reloaded (log_level debug, log_format text, max_message_size 262144, clock_skew 120, registry_warn_days 30, retry_min_ms 300, retry_max_ms 60000, batch_max 128, deflate no, breaker_open_ms 2000, full_retry 30, retention 2592000, archive_dir )" "$W/node.log" ||
	fail "tunables not reloaded"
grep -q "need a restart, not applied: listen api peer_sessions answer_timeout$" "$W/node.log" ||
	fail "changed non-reloadable keys not reported"
grep -q "registry unchanged" "$W/node.log" || fail "registry not re-read"
healthy || fail "node stopped serving (on its first API port) after SIGHUP"
# again: the running configuration still has the old listen, api, peer_sessions
kill -HUP "$PID"
for i in $(seq 1 50); do [ "$(grep -c "configuration reloaded" "$W/node.log")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c "need a restart, not applied: listen api peer_sessions answer_timeout$" "$W/node.log")" = 2 ] ||
	fail "non-reloadable keys applied by a SIGHUP"
# values the table refuses: the running configuration is kept, file:line said
n=$(wc -l <"$C")
echo "retry_max_ms = 250" >> "$C"
kill -HUP "$PID"
for i in $(seq 1 50); do grep -q "configuration not reloaded" "$W/node.log" && break; sleep 0.1; done
grep -q "configuration not reloaded: node.conf:$((n + 1)): retry_max_ms: retry_min_ms (300) is greater than retry_max_ms (250)" "$W/node.log" ||
	fail "retry_min_ms > retry_max_ms not refused with its line"
sed -i '$d' "$C"
echo "registry_upstream = hello" >> "$C"
kill -HUP "$PID"
for i in $(seq 1 50); do [ "$(grep -c "configuration not reloaded" "$W/node.log")" -ge 2 ] && break; sleep 0.1; done
grep -q "configuration not reloaded: node.conf:$((n + 1)): registry_upstream: must be a 6-digit member id" "$W/node.log" ||
	fail "registry_upstream = hello not refused with its line"
sed -i '$d' "$C"
healthy || fail "node stopped serving after a refused SIGHUP"
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
