#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# node_valgrind_relay.sh - four nodes under valgrind: a city sends to a
# city reachable only through its hub (relay, receipt back through the
# hub), the reference responder answers (identity, case accept + result),
# sessions come and go (the hub starts last).  No invalid access and no
# definite leak in any node.  Regression: libcoap read a client session
# we had released while it still held a queued observe request.
set -u
B=${TB_BUILDDIR:?}
TBN=$B/tongban-node
command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind not installed"; exit 77; }
if { nm -a "$TBN" 2>/dev/null; ldd "$TBN" 2>/dev/null; } | grep -q -E 'libasan|libubsan|libtsan|__asan_init|__ubsan_|__tsan_init'; then
	echo "SKIP: sanitizer build"
	exit 77
fi
. "${TB_SRCDIR:-.}/tests/ports.sh"
BASE=$(tp_block 4) || exit 1
W=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do tp_kill_tree "$p"; done; wait 2>/dev/null; rm -rf "$W"' EXIT
trap 'exit 1' INT TERM HUP
fail() { tp_clash "$W"/*.log; echo "FAIL: $*"; exit 1; }

"$B/tongban" dev-federation --dir "$W/fed" --members 320000,320300,410000,411400 \
	--private 411400 --base-port "$BASE" >/dev/null || fail "dev-federation"
# the hubs start last: the cities' first observe requests fail first
for m in 320300 411400 320000 410000; do
	( cd "$W/fed/$m" && exec valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite --log-file="$W/vg$m.txt" "$TBN" -c node.conf ) \
		> "$W/$m.log" 2>&1 &
	PIDS+=($!)
	sleep 1
done
api_up() {
	{ exec 3<>"/dev/tcp/127.0.0.1/$((BASE + 1000 + $1))"; } 2>/dev/null || return 1
	printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
	grep -q '"ok"' <&3
	local rc=$?
	exec 3>&-
	return $rc
}
for i in 0 1 2 3; do
	for t in $(seq 1 300); do api_up "$i" && break; sleep 0.1; done
	api_up "$i" || fail "node $i did not start under valgrind"
done
P1=$(sed 's/.*"people":\[{"idhash":"\([0-9a-f]*\)".*/\1/' "$W/fed/fixtures.json")
printf '{"subject":{"kind":"person","idhash":"%s"},"purpose":"driving-license.renew"}' "$P1" > "$W/b1.json"
printf '{"case_id":"VG-1","service":"driving-license.renew","applicant":{"kind":"person","idhash":"%s"},"materials":[],"mode":"proxy"}' "$P1" > "$W/b2.json"
C=$W/fed/320300/node.conf
"$B/tongban" send --node "$C" --to 411400 --type identity.verify --service driving-license.renew \
	--body "$W/b1.json" >/dev/null || fail "send identity.verify"
"$B/tongban" send --node "$C" --to 411400 --type case.submit --service driving-license.renew \
	--body "$W/b2.json" >/dev/null || fail "send case.submit"
for i in $(seq 1 10); do
	"$B/tongban" send --node "$C" --to 411400 --type control.ping >/dev/null || fail "send ping"
done
deadline=$(( $(date +%s) + 90 ))
while :; do
	out=$("$B/tongban" inbox --node "$C") || fail "inbox"
	n=$(printf '%s' "$out" | grep -o '"seq":' | wc -l)
	# identity.result, case.accept, case.result and ten pongs
	[ "$n" -ge 13 ] && break
	[ "$(date +%s)" -lt "$deadline" ] || fail "only $n of 13 answers arrived: $out"
	sleep 0.5
done
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "a node exited $? under valgrind (see its log)"; done
PIDS=()
for m in 320300 411400 320000 410000; do
	grep -q "ERROR SUMMARY: [1-9]" "$W/vg$m.txt" 2>/dev/null && { cat "$W/vg$m.txt"; fail "valgrind errors in $m"; }
	grep -q "definitely lost: [1-9]" "$W/vg$m.txt" 2>/dev/null && { cat "$W/vg$m.txt"; fail "definite leak in $m"; }
done
echo "PASS: relay and flows under valgrind, 4 nodes clean"
