#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# node_webhook.sh - received messages are pushed to the city's system
# (webhook), retried after a failure, acknowledged on 2xx, never twice.
set -u
B=${TB_BUILDDIR:?}
. "${TB_SRCDIR:-.}/tests/ports.sh"
# DTLS and API ports of the two nodes, and the sink's port BASE+1002
BASE=$(tp_block 3) || exit 1
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP
fail() { tp_clash "$W"/*.log; echo "FAIL: $*"; exit 1; }

"$B/tongban" dev-federation --dir "$W/fed" --members 320300,371300 --base-port "$BASE" >/dev/null ||
	fail "dev-federation"
SINK=$((BASE + 1002))
# Linyi's systems take pushes instead of the reference responder
sed -i 's/^responder = .*//' "$W/fed/371300/node.conf"
echo "webhook = http://127.0.0.1:$SINK/inbound" >> "$W/fed/371300/node.conf"
"$B/tongban-node" -n -c "$W/fed/371300/node.conf" >/dev/null || fail "config with webhook refused"
"$B/tests/webhook_sink" "$SINK" "$W/pushed" 1 60 >"$W/sink.log" 2>&1 & PIDS+=($!)
for m in 320300 371300; do
	( cd "$W/fed/$m" && exec "$B/tongban-node" -c node.conf ) > "$W/$m.log" 2>&1 &
	PIDS+=($!)
done
# up: both APIs answer (a node that could not bind its ports has exited)
up() {
	{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
	printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
	grep -q '"ok"' <&3
	local rc=$?
	exec 3>&-
	return $rc
}
for port in $((BASE + 1000)) $((BASE + 1001)); do
	for i in $(seq 1 100); do up "$port" && break; sleep 0.1; done
	up "$port" || fail "the node with API port $port did not start"
done
kill -0 "${PIDS[0]}" 2>/dev/null || fail "the webhook sink exited: $(cat "$W/sink.log")"
IDS=()
for i in 1 2 3; do
	IDS+=("$("$B/tongban" send --node "$W/fed/320300/node.conf" --to 371300 --type control.ping)") ||
		fail "send"
done
deadline=$(( $(date +%s) + 20 ))
while :; do
	n=0
	for id in "${IDS[@]}"; do grep -q "\"id\":\"$id\"" "$W/pushed" 2>/dev/null && n=$((n + 1)); done
	[ "$n" -eq 3 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || fail "only $n of 3 pushed: $(cat "$W/pushed" 2>/dev/null)"
	sleep 0.1
done
grep -q "webhook: .* answered 500" "$W/371300.log" || fail "the first push was not retried after 500"
for id in "${IDS[@]}"; do
	c=$(grep -c "\"id\":\"$id\"" "$W/pushed")
	[ "$c" -eq 1 ] || fail "$id pushed $c times"
done
# acknowledged: the inbox is empty
sleep 0.5
out=$("$B/tongban" inbox --node "$W/fed/371300/node.conf") || fail "inbox"
case $out in *'"messages":[]'*) ;; *) fail "inbox not empty after pushes: $out";; esac
# a non-loopback webhook is refused at startup
sed -i "s|^webhook = .*|webhook = http://192.0.2.1:80/x|" "$W/fed/371300/node.conf"
if "$B/tongban-node" -n -c "$W/fed/371300/node.conf" 2>"$W/err"; then fail "remote webhook accepted"; fi
grep -q "loopback" "$W/err" || fail "no reason for the refused webhook: $(cat "$W/err")"
echo "PASS: webhook pushes, retry, acknowledgement"
