#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_exchange.sh - three nodes of a dev federation (Xuzhou 320300,
# Linyi 371300, Suzhou 341300) exchange messages in every direction.
# Each message: status "delivered" with a receipt; the receipt verifies
# (`tongban msg open`) against the RECEIVER's certificate, answers the
# message (corr) and names its digest (`tongban msg digest` of the
# envelope as the receiver stored it); the receiver's inbox holds it
# exactly once.  Finally every node's audit chain verifies (SM3 under
# NL_ALG=sm2, recomputed by tests/audit_xverify.sh with openssl).  Ids carry
# the sender's clock (milliseconds) in their first 12 hex digits.  Suzhou sends
# plain JSON, the others the deflate coding.
set -u
. "${TB_SRCDIR:-.}/tests/node_lib.sh"
nl_init
MEMBERS="320300 371300 341300"
nl_devfed 320300,371300,341300
# Suzhou sends plain JSON (content-format 50), the others deflate (11050):
# every pair of the two codings meets
echo "deflate = 0" >>"$F/341300/node.conf"
for m in $MEMBERS; do nl_start "$m"; done

# two messages in every direction (six directions), sent in parallel
declare -A SENT
t0=$(date +%s%3N)
for a in $MEMBERS; do
	for b in $MEMBERS; do
		[ "$a" = "$b" ] && continue
		for k in 1 2; do
			SENT["$a>$b>$k"]=$(nl_send "$a" "$b" case.submit hukou.transfer) || exit 1
		done
	done
done

t1=$(date +%s%3N)
# ids carry the sender's clock in ms in their first 12 hex digits
# (docs/PROTOCOL.md 1); the rest is random, so no two share it
for key in "${!SENT[@]}"; do
	id=${SENT[$key]}
	ms=$((16#${id:0:12}))
	[ "$ms" -ge "$t0" ] && [ "$ms" -le "$t1" ] ||
		nl_fail "time part of id $id" "between $t0 and $t1" "$ms"
	nl_ok
done
nl_eq "random parts of the ids all differ" 12 "$(for id in "${SENT[@]}"; do echo "${id:12}"; done | sort -u | wc -l)"

for key in "${!SENT[@]}"; do
	IFS='>' read -r a b k <<<"$key"
	id=${SENT[$key]}
	nl_wait 30 "message $id $a -> $b delivered" nl_delivered "$a" "$id"
done

for key in "${!SENT[@]}"; do
	IFS='>' read -r a b k <<<"$key"
	id=${SENT[$key]}
	nl_receipt "$a" "$id" >"$W/receipt.json"
	[ -s "$W/receipt.json" ] || nl_fail "receipt of $id in 'tongban status'" "a receipt" "$(nl_status "$a" "$id")"
	out=$("$TB" msg open --pub "$(nl_sigpub "$b")" "$W/receipt.json" 2>&1) ||
		nl_fail "receipt of $id ($a -> $b) verifies with $b's certificate" "exit 0" "$out"
	rc=0
	"$TB" msg open --pub "$(nl_sigpub "$a")" "$W/receipt.json" >/dev/null 2>&1 || rc=$?
	[ "$rc" != 0 ] || nl_fail "receipt of $id must not verify with the sender's own certificate"
	nl_has "receipt type" '"type":"receipt"' "$out"
	nl_has "receipt from the receiver" "\"from\":\"$b\"" "$out"
	nl_has "receipt answers the message" "\"corr\":\"$id\"" "$out"
	nl_has "receipt signed in ${NL_ALG:-p256}" "\"alg\":\"${NL_ALG:-p256}\"" "$(cat "$W/receipt.json")"
	nl_inbox_envelope "$b" "$id" >"$W/env.json"
	[ -s "$W/env.json" ] || nl_fail "$id in $b's inbox" "listed" "$(nl_inbox_ids "$b" | tr '\n' ' ')"
	want=$("$TB" msg digest "$W/env.json") || nl_fail "msg digest of $id"
	got=$(sed -n 's/.*"body":{"digest":"\([0-9a-f]*\)".*/\1/p' "$W/receipt.json")
	nl_eq "receipt body.digest of $id = digest of the envelope $b received" "$want" "$got"
	nl_has "envelope signed in ${NL_ALG:-p256}" "\"sig\":{\"alg\":\"${NL_ALG:-p256}\"" "$(cat "$W/env.json")"
	# the receiver's copy is the sender's signed message
	"$TB" msg open --pub "$(nl_sigpub "$a")" "$W/env.json" >/dev/null 2>&1 ||
		nl_fail "envelope $id in $b's inbox verifies with $a's certificate"
done

# exactly once: each receiver's inbox is the set of ids sent to it
for b in $MEMBERS; do
	want=$(for key in "${!SENT[@]}"; do
		IFS='>' read -r a to k <<<"$key"
		[ "$to" = "$b" ] && echo "${SENT[$key]}"
	done | sort)
	got=$(nl_inbox_ids "$b" | sort)
	nl_eq "inbox of $b: each message once, nothing else" "$want" "$got"
done

# a bulk submission travels in batch exchanges, answered in the compact
# form (receipts without their Merkle paths, PROTOCOL.md 9.3): the sender
# rebuilds each path and keeps the full receipt, which verifies alone
bulk='['
for ((i = 0; i < 24; i++)); do
	[ "$i" -gt 0 ] && bulk+=,
	bulk+="{\"type\":\"case.submit\",\"to\":\"371300\",\"service\":\"hukou.transfer\",\"body\":{\"applicant\":{\"idhash\":\"6b1f0c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeeff0\",\"kind\":\"person\"},\"case_id\":\"bulk$$-$i\",\"materials\":[],\"mode\":\"online\",\"service\":\"hukou.transfer\"}}"
done
bulk+=']'
compact0=$(nl_metric 371300 tongban_compact_answers_total)
nl_http 320300 POST /v1/messages "$bulk" >"$W/bulk.out"
BULK=$(grep -o '[0-9a-f]\{32\}' "$W/bulk.out")
nl_eq "bulk submission accepted" 202 "$NL_HTTP_STATUS"
nl_eq "bulk submission ids" 24 "$(printf '%s\n' $BULK | sort -u | wc -l)"
for id in $BULK; do
	nl_wait 30 "bulk message $id delivered" nl_delivered 320300 "$id"
	nl_receipt 320300 "$id" >"$W/receipt.json"
	out=$("$TB" msg open --pub "$(nl_sigpub 371300)" "$W/receipt.json" 2>&1) ||
		nl_fail "receipt of bulk message $id verifies with 371300's certificate" "exit 0" "$out"
	nl_has "receipt of $id answers it" "\"corr\":\"$id\"" "$out"
	nl_has "stored receipt of $id has its Merkle path" '"path":["' "$(cat "$W/receipt.json")"
done
compact1=$(nl_metric 371300 tongban_compact_answers_total)
[ "${compact1:-0}" -gt "${compact0:-0}" ] ||
	nl_fail "371300 answered the bulk exchanges in the compact form" "more than $compact0" "$compact1"
nl_ok
nl_eq "inbox of 371300 after the bulk" 28 "$(nl_inbox_ids 371300 | wc -l)"
# Tongban sends envelopes in the canonical form: the receivers took every
# envelope's signed bytes from its text, none had to be canonicalised
for m in $MEMBERS; do
	nl_eq "$m canonicalised no received envelope again" 0 \
		"$(nl_metric "$m" tongban_envelopes_recanonicalised_total)"
done

# an acknowledged message leaves the inbox listing
id=${SENT["320300>371300>1"]}
"$TB" inbox --node "$(nl_conf 371300)" --ack "$id" >/dev/null || nl_fail "inbox --ack $id"
nl_eq "inbox of 371300 after one ack" 27 "$(nl_inbox_ids 371300 | grep -vc "$id")"
nl_eq "acknowledged id no longer listed" 0 "$(nl_inbox_ids 371300 | grep -c "$id")"

# the chain's hash follows the message-signing key: SM3 under sm2
# (PROTOCOL.md 11.2; issue 21), SHA-256 otherwise
chain=sha256
[ "${NL_ALG:-}" = sm2 ] && chain=sm3
for m in $MEMBERS; do
	out=$("$TB" audit verify --node "$(nl_conf "$m")" 2>&1) || nl_fail "audit verify $m" "exit 0" "$out"
	nl_has "audit verify $m" "chain intact ($chain)" "$out"
done

# a clean stop
for m in $MEMBERS; do
	nl_stop "$m"
	nl_eq "$m exits 0 on SIGTERM" 0 "$NL_EXIT"
done

# sm2: 320300's export, every entry recomputed with `openssl dgst -sm3`
# and the sm2 head checked with `openssl pkeyutl` (tests/audit_xverify.sh)
if [ "${NL_ALG:-}" = sm2 ]; then
	. "${TB_SRCDIR:-.}/tests/audit_xverify.sh"
	"$TB" audit export --node "$(nl_conf 320300)" --output "$W/export.jsonl" || nl_fail "audit export"
	nl_has "entry 1 starts an SM3 chain" '"detail":"hash=sm3","digest":"","dir":"a","event":"chain"' \
		"$(head -1 "$W/export.jsonl")"
	# not in $(...): XV_HASH and XV_ALG are set in this shell
	xverify "$W/export.jsonl" "$(nl_sigpub 320300)" >"$W/xv.out"
	nl_eq "the export verifies with SM3 and openssl" "ok $(($(wc -l <"$W/export.jsonl") - 1))" \
		"$(cat "$W/xv.out")"
	nl_eq "the chain's hash, by entry 1" sm3 "$XV_HASH"
	nl_eq "the head's signature algorithm" sm2 "$XV_ALG"
	sed '3s/"at":\([0-9]*\)/"at":1\1/' "$W/export.jsonl" >"$W/edited.jsonl"
	nl_eq "an edited entry of the SM3 chain" "entry 3: hash" "$(xverify "$W/edited.jsonl" "$(nl_sigpub 320300)")"
fi
nl_done
