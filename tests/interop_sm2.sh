#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/interop_sm2.sh - the wire suite of tongban-interop against our node
# in a federation on SM2/SM3 (dev-federation --alg sm2; issue 21 point 4):
# tongban-interop signs with the member's SM2 sign.key, so every envelope,
# batch and compact batch it posts is sm2, the registry it fetches carries
# SM2 authority signatures (verified against DIR/trust.json), and every
# wire case (refusals included: sig.alg with an sm2 key named as p256,
# sig.bad, sig.unknown-key, wrong sender) must pass.  About 10 s.
: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
B=$TB_BUILDDIR
. "$TB_SRCDIR/tests/ports.sh"
BASE=${TB_INTEROP_PORT:-$(tp_block 3)} || exit 1
W=$(mktemp -d "${TMPDIR:-/tmp}/tbinteropsm2.XXXXXX") || exit 1
PIDS=
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.3
	for p in $PIDS; do tp_kill_tree "$p"; done
	wait
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { tp_clash "$W"/*.log; echo "FAIL: $*" >&2; exit 1; }

"$B/tongban" dev-federation --dir "$W/fed" --members 320000,320300,370000 \
	--base-port "$BASE" --alg sm2 >/dev/null || fail "dev-federation --alg sm2"
[ -f "$W/fed/320000/sign.key" ] || fail "no SM2 sign.key for 320000"
for m in 320000 320300; do
	(cd "$W/fed/$m" && exec "$B/tongban-node" -c node.conf >"$W/$m.log" 2>&1) &
	PIDS="$PIDS $!"
done
i=0
while :; do
	"$B/tongban-interop" --target "coaps://127.0.0.1:$((BASE + 1))" --federation "$W/fed" \
		--as 320000 --suite wire --case wire.tls.member --timeout 1 >/dev/null 2>&1 && break
	i=$((i + 1))
	[ $i -lt 20 ] || { cat "$W/320300.log" >&2; fail "node 320300 did not come up"; }
	sleep 0.5
done
timeout 300 "$B/tongban-interop" --target "coaps://127.0.0.1:$((BASE + 1))" \
	--federation "$W/fed" --as 320000 --suite wire --tap >"$W/out" 2>"$W/err"
rc=$?
tail -n 1 "$W/out"
[ $rc -eq 0 ] || { grep -A3 '^not ok' "$W/out" >&2; fail "wire suite on an sm2 federation: exit $rc"; }
[ "$(grep -c '^ok [0-9]* - wire\.' "$W/out")" -ge 40 ] || fail "fewer than 40 wire cases"
# what the node received was SM2-signed: its inbox holds sm2 envelopes
"$B/tongban" inbox --node "$W/fed/320300/node.conf" >"$W/inbox" 2>&1 || fail "inbox"
grep -q '"sig":{"alg":"sm2"' "$W/inbox" || fail "no sm2-signed envelope in 320300's inbox"
grep -q '"sig":{"alg":"p256"' "$W/inbox" && fail "a p256-signed envelope in an sm2 federation's inbox"
echo "PASS"
