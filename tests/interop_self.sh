#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/interop_self.sh - the interop suite (tongban-interop --suite all)
# against our own node, then against libcoap's coap-server-gnutls (a CoAP
# server that does not speak the protocol): there most cases must fail,
# cleanly and within a bounded time.  docs/INTEROP.md.
: "${TB_BUILDDIR:=.}" "${TB_SRCDIR:=.}"
B=$TB_BUILDDIR
. "$TB_SRCDIR/tests/ports.sh"
# members 320000, 320300, 370000 on BASE, BASE+1, BASE+2 (API +1000)
BASE=${TB_INTEROP_PORT:-$(tp_block 3)} || exit 1
W=$(mktemp -d "${TMPDIR:-/tmp}/tbinterop.XXXXXX") || exit 1
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

for x in tongban tongban-node tongban-interop; do
	[ -x "$B/$x" ] || fail "$B/$x is not built"
done
"$B/tongban" dev-federation --dir "$W/fed" --members 320000,320300,370000 \
	--base-port "$BASE" >/dev/null || fail "dev-federation"
for m in 320000 320300; do
	(cd "$W/fed/$m" && exec "$B/tongban-node" -c node.conf >"$W/$m.log" 2>&1) &
	PIDS="$PIDS $!"
done
# wait (bounded) until 320300 answers
i=0
while :; do
	"$B/tongban-interop" --target "coaps://127.0.0.1:$((BASE + 1))" --federation "$W/fed" \
		--as 320000 --suite wire --case wire.tls.member --timeout 1 >/dev/null 2>&1 && break
	i=$((i + 1))
	[ $i -lt 20 ] || { cat "$W/320300.log" >&2; fail "node 320300 did not come up"; }
	sleep 0.5
done

# 1. our node: every case passes, TAP + JUnit
timeout 300 "$B/tongban-interop" --target "coaps://127.0.0.1:$((BASE + 1))" \
	--federation "$W/fed" --as 320000 --suite all --vectors "$TB_SRCDIR/interop/vectors" \
	--junit "$W/junit.xml" --tap >"$W/self.out" 2>"$W/self.err"
rc=$?
tail -n 1 "$W/self.out"
[ $rc -eq 0 ] || { grep -A3 '^not ok' "$W/self.out" >&2; fail "suite against our node: exit $rc"; }
n=$(tail -n 1 "$W/self.out" | sed -n 's/^\([0-9]*\) passed, 0 failed$/\1/p')
[ -n "$n" ] && [ "$n" -ge 100 ] || fail "expected >= 100 passing cases, got '$(tail -n 1 "$W/self.out")'"
[ "$(grep -c '^ok [0-9]* - wire\.' "$W/self.out")" -ge 40 ] || fail "fewer than 40 wire cases"
# JUnit well-formed: xmllint or python3 when present, else a structural check
if command -v xmllint >/dev/null 2>&1; then
	xmllint --noout "$W/junit.xml" || fail "junit.xml is not well-formed XML"
elif command -v python3 >/dev/null 2>&1; then
	python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' \
		"$W/junit.xml" || fail "junit.xml is not well-formed XML"
else
	head -n 1 "$W/junit.xml" | grep -q '^<?xml version="1.0"' || fail "junit.xml: no XML declaration"
	[ "$(grep -c '<testcase ' "$W/junit.xml")" -eq "$n" ] || fail "junit.xml: testcase count"
	tail -n 1 "$W/junit.xml" | grep -q '^</testsuites>$' || fail "junit.xml: not closed"
fi
grep -q "<testsuites name=\"tongban-interop\" tests=\"$n\" failures=\"0\"" "$W/junit.xml" ||
	fail "junit.xml header does not count $n tests"

# 2. a CoAP server that does not speak the protocol, with member 370000's
# certificates, on 370000's registry endpoint (its DTLS port is -p + 1)
if command -v coap-server-gnutls >/dev/null 2>&1; then
	coap-server-gnutls -A 127.0.0.1 -p $((BASE + 1)) -c "$W/fed/370000/node-chain.pem" \
		-j "$W/fed/370000/node.key" -C "$W/fed/cas.pem" >"$W/cs.log" 2>&1 &
	PIDS="$PIDS $!"
	sleep 0.5
	start=$(date +%s)
	timeout 120 "$B/tongban-interop" --target "coaps://127.0.0.1:$((BASE + 2))" \
		--federation "$W/fed" --as 320000 --suite wire --timeout 2 \
		--junit "$W/junit2.xml" >"$W/other.out" 2>"$W/other.err"
	rc=$?
	took=$(($(date +%s) - start))
	tail -n 1 "$W/other.out"
	[ $rc -eq 1 ] || fail "against coap-server-gnutls: exit $rc, expected 1 (124 = hung)"
	last=$(tail -n 1 "$W/other.out")
	p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	[ -n "$p" ] && [ -n "$f" ] && [ "$f" -gt "$p" ] || fail "expected more failures than passes: '$last'"
	grep -q '^FAIL wire\.msg\.accept  expected: 2\.01.*got: ' "$W/other.out" ||
		fail "no expected-vs-got line for wire.msg.accept"
	[ $took -le 120 ] || fail "took $took s"
	if command -v xmllint >/dev/null 2>&1; then
		xmllint --noout "$W/junit2.xml" || fail "junit2.xml is not well-formed XML"
	fi
else
	echo "# coap-server-gnutls (libcoap3-bin) not installed: foreign-server check skipped"
fi
echo "PASS: interop suite"
exit 0
