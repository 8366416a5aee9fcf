#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_refuse.sh - POST /fed/msg refusals, each with its own CoAP
# code and reason token ({"error":TOKEN,...}), and nothing stored (the
# inbox is unchanged).  Requests are made with coap-client-openssl as
# member 320300 against member 371300.  Also: a replayed envelope gets
# 2.04 and the byte-identical original receipt, and is stored once.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_have_coap_client || { echo "SKIP: coap-client-openssl not installed"; exit 77; }
nl_init
nl_devfed 320300,371300,370000
nl_start 371300
C=$F/320300
KEY=$C/node.key
NOW=$(date +%s)

# new ARGS...: a fresh unsigned envelope 320300 -> 371300 on stdout
new() {
	case " $* " in
	*" --body "*) "$TB" msg new --from 320300 "$@" ;;
	*) "$TB" msg new --from 320300 --body "$(nl_case_body)" "$@" ;;
	esac
}
seal() { "$TB" msg seal --key "${2:-$KEY}" "$1"; }

# expect NAME CODE TOKEN FILE [EXTRA coap-client args]: POST FILE as 320300
expect() {
	local name=$1 code=$2 token=$3 file=$4
	shift 4
	nl_coap "$C" post /fed/msg 371300 "$file" "$@"
	[ "$NL_CODE" = "$code" ] ||
		nl_fail "$name: CoAP code" "$code {\"error\":\"$token\"}" "${NL_CODE:-no answer} $(nl_coap_body)"
	nl_has "$name: reason token" "\"error\":\"$token" "$(nl_coap_body)"
	nl_eq "$name: nothing stored" "$INBOX" "$(nl_inbox_ids 371300)"
}

# one good message first, so "unchanged" is not trivially empty
new --type case.submit --to 371300 --service hukou.transfer >"$W/good.u"
seal "$W/good.u" >"$W/good.json"
nl_coap "$C" post /fed/msg 371300 "$W/good.json" -t 50
nl_eq "good envelope accepted" 2.01 "$NL_CODE"
cp "$W/coap.body" "$W/receipt1"
INBOX=$(nl_inbox_ids 371300)
nl_eq "inbox holds the good message" "$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' "$W/good.u")" "$INBOX"

# replay: same envelope again -> 2.04 with the SAME receipt bytes, stored once
nl_coap "$C" post /fed/msg 371300 "$W/good.json" -t 50
nl_eq "replay: CoAP code" 2.04 "$NL_CODE"
cmp -s "$W/receipt1" "$W/coap.body" ||
	nl_fail "replay: the original receipt, byte for byte" "$(cat "$W/receipt1")" "$(nl_coap_body)"
nl_ok
nl_eq "replay: stored once" "$INBOX" "$(nl_inbox_ids 371300)"

# forged signature: one character of sig.val changed
new --type case.submit --to 371300 --service hukou.transfer | seal /dev/stdin >"$W/s.json"
awk '{ i = index($0, "\"val\":\"") + 10; c = substr($0, i, 1); r = (c == "A") ? "B" : "A";
       print substr($0, 1, i - 1) r substr($0, i + 1) }' "$W/s.json" >"$W/forged.json"
cmp -s "$W/s.json" "$W/forged.json" && nl_fail "test setup: forged envelope differs"
expect "forged signature" 4.01 sig.bad "$W/forged.json" -t 50

# unsealed (no sig)
new --type case.submit --to 371300 >"$W/unsealed.json"
expect "unsealed envelope" 4.01 sig.missing "$W/unsealed.json" -t 50

# wrong sender: "from" 370000 and sealed with 370000's key, but carried
# over 320300's DTLS session
"$TB" msg new --from 370000 --type case.submit --to 371300 --body "$(nl_case_body)" | seal /dev/stdin "$F/370000/node.key" >"$W/wrongfrom.json"
expect "sender is not the DTLS peer" 4.03 forbidden "$W/wrongfrom.json" -t 50
nl_has "wrong sender: detail" "does not match the DTLS peer" "$(nl_coap_body)"
# relayed: the carrier that must be the DTLS peer is the path's last relay,
# and the detail names it (not the sender)
new --type case.submit --to 371300 --service hukou.transfer | seal /dev/stdin |
	sed 's/^{/{"relay":{"path":["370000"]},/' >"$W/wrongrelay.json"
expect "last relay is not the DTLS peer" 4.03 forbidden "$W/wrongrelay.json" -t 50
nl_has "wrong relay: detail names the relay" "last relay 370000 does not match the DTLS peer 320300" "$(nl_coap_body)"

# signed by 320300 but claiming to be from 370000: the key is not 370000's
"$TB" msg new --from 370000 --type case.submit --to 371300 --body "$(nl_case_body)" | seal /dev/stdin >"$W/wrongkey.json"
expect "key of another member" 4.01 sig.unknown-key "$W/wrongkey.json" -t 50

# not addressed to this node
new --type case.submit --to 370000 | seal /dev/stdin >"$W/notme.json"
expect "not addressed to this node" 4.03 forbidden "$W/notme.json" -t 50
nl_has "not addressed here: detail" "not to 371300" "$(nl_coap_body)"

# expired: created 100 s ago with a 10 s lifetime
new --type case.submit --to 371300 --created $((NOW - 100)) --ttl 10 | seal /dev/stdin >"$W/expired.json"
expect "expired" 4.12 time.expired "$W/expired.json" -t 50

# created 1000 s ahead, beyond the 300 s skew
new --type case.submit --to 371300 --created $((NOW + 1000)) | seal /dev/stdin >"$W/future.json"
expect "created in the future" 4.12 time.future "$W/future.json" -t 50
# ... while 100 s ahead is within the skew
new --type case.submit --to 371300 --created $((NOW + 100)) | seal /dev/stdin >"$W/skew.json"
nl_coap "$C" post /fed/msg 371300 "$W/skew.json" -t 50
nl_eq "created 100 s ahead (within skew)" 2.01 "$NL_CODE"
INBOX=$(nl_inbox_ids 371300)

# oversize: > max_message_size (65536), sent block-wise
{
	printf '{"blob":"'
	head -c 70000 /dev/zero | tr '\0' a
	printf '"}'
} >"$W/bigbody.json"
new --type case.submit --to 371300 --body "$W/bigbody.json" >"$W/big.json" 2>"$W/big.err" ||
	awk 'BEGIN { printf "{\"v\":1,\"pad\":\""; for (i = 0; i < 70000; i++) printf "a"; printf "\"}" }' >"$W/big.json"
expect "oversize (block-wise)" 4.13 too-large "$W/big.json" -t 50 -b 1024

# malformed JSON
printf '{"v":1,"id":' >"$W/malformed.json"
expect "malformed JSON" 4.00 json.syntax "$W/malformed.json" -t 50
printf '[{"v":1}' >"$W/malformed2.json"
expect "malformed batch" 4.00 json.syntax "$W/malformed2.json" -t 50

# unknown type: the node checks structure before the signature, so an
# unsealed envelope with an unknown type is type.unknown
sed 's/"type":"case.submit"/"type":"case.bogus"/' "$W/unsealed.json" >"$W/type.json"
expect "unknown type" 4.22 type.unknown "$W/type.json" -t 50
# ... and a sealed one whose type was edited after sealing too
sed 's/"type":"case.submit"/"type":"case.bogus"/' "$W/s.json" >"$W/type2.json"
expect "unknown type (edited after sealing)" 4.22 type.unknown "$W/type2.json" -t 50

# wrong content-format (text/plain)
expect "wrong content-format" 4.15 content-format "$W/s.json" -t 0

# the deflate coding (content-format 11050): a valid stream is accepted,
# a corrupt or truncated one is "encoding", one inflating past the limit
# (65536 here) is too-large however small it is on the wire
new --type case.submit --to 371300 --service hukou.transfer | seal /dev/stdin >"$W/z.json"
nl_zlib "$W/z.json" "$W/z.z"
nl_coap "$C" post /fed/msg 371300 "$W/z.z" -t 11050
nl_eq "deflated envelope accepted" 2.01 "$NL_CODE"
nl_has "deflated envelope: a receipt" '"type":"receipt"' "$(nl_coap_body)"
INBOX=$(nl_inbox_ids 371300)
{ head -c 40 "$W/z.z"; printf 'garbage!'; tail -c +49 "$W/z.z"; } >"$W/zc.z"
expect "corrupt deflate stream" 4.00 encoding "$W/zc.z" -t 11050
head -c -12 "$W/z.z" >"$W/zt.z"
expect "truncated deflate stream" 4.00 encoding "$W/zt.z" -t 11050
{ cat "$W/z.z"; printf 'x'; } >"$W/zx.z"
expect "bytes after the deflate stream" 4.00 encoding "$W/zx.z" -t 11050
head -c 3000000 /dev/zero | tr '\0' ' ' >"$W/bomb.json"
nl_zlib "$W/bomb.json" "$W/bomb.z"
[ "$(wc -c <"$W/bomb.z")" -lt 65536 ] || nl_fail "test setup: the bomb is small on the wire"
expect "deflate bomb" 4.13 too-large "$W/bomb.z" -t 11050 -b 1024

# an id reused by a different message (same id, other content, validly
# sealed): replay, without the original receipt
sed 's/"hops":4/"hops":5/' "$W/good.u" >"$W/reuse.u"
cmp -s "$W/good.u" "$W/reuse.u" && nl_fail "test setup: reused-id envelope differs"
seal "$W/reuse.u" >"$W/reuse.json"
expect "id reused by another message" 4.00 replay "$W/reuse.json" -t 50

# the node still accepts good traffic and its counters saw the refusals
nl_coap "$C" post /fed/msg 371300 "$W/s.json" -t 50
nl_eq "the original of the forged envelope is accepted" 2.01 "$NL_CODE"
refused=$(nl_metric 371300 'tongban_messages_in_total{result="refused"}')
NL_CHECKS=$((NL_CHECKS + 1))
# (too-large, content-format and unsplittable batches are answered before
# the per-envelope pipeline and are not in this counter)
[ "${refused:-0}" -ge 10 ] || nl_fail "refused counter" ">= 10" "${refused:-none}"
dup=$(nl_metric 371300 'tongban_messages_in_total{result="duplicate"}')
nl_eq "duplicate counter" 1 "$dup"
nl_stop 371300
nl_eq "371300 exits 0 on SIGTERM" 0 "$NL_EXIT"
nl_done
