# SPDX-License-Identifier: Apache-2.0
# tests/audit_xverify.sh - an independent verifier of `tongban audit
# export`, written from docs/PROTOCOL.md section 11 alone: shell, od,
# sha256sum and openssl (SM3 and SM2 too), no code of ours.  Sourced by
# tests/node_audit_head.sh and tests/node_exchange.sh (in sm2 mode,
# tests/node_sm2.sh).  Uses $W for its files.
#
# xverify EXPORT PUBKEY.pem: prints "ok N" (N entries) or a reason and
# returns 1; sets XV_HASH to the chain's hash (sha256 or sm3: entry 1
# decides, 11.2) and XV_ALG to the head's signature algorithm.

hex2bin() { printf "$(sed 's/../\\x&/g')"; }
str2hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
u64hex() { local v=$1 s; for s in 56 48 40 32 24 16 8 0; do printf '%02x' $(((v >> s) & 255)); done; }
lphex() { printf '%08x%s' "${#1}" "$(str2hex "$1")"; }
str_of() { printf '%s' "$2" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
num_of() { printf '%s' "$2" | sed -n "s/.*\"$1\":\(-\{0,1\}[0-9]*\).*/\1/p"; }
# der_int HEX: a DER INTEGER of the unsigned big-endian number HEX
der_int() {
	local h=$1
	while [ ${#h} -gt 2 ] && [ "${h:0:2}" = 00 ]; do h=${h:2}; done
	[ $((16#${h:0:2})) -ge 128 ] && h=00$h
	printf '02%02x%s' $((${#h} / 2)) "$h"
}
# xv_hash: the chain's hash of standard input, 64 hex
xv_hash() {
	if [ "$XV_HASH" = sm3 ]; then openssl dgst -sm3 -r | cut -c1-64; else sha256sum | cut -c1-64; fi
}
# xv_rs2der HEX128: the r||s signature as a DER SEQUENCE, binary to stdout
xv_rs2der() {
	local r s body
	r=$(der_int "${1:0:64}")
	s=$(der_int "${1:64:64}")
	body=$r$s
	printf '30%02x%s' $((${#body} / 2)) "$body" | hex2bin
}
xverify() {
	local line prev=0000000000000000000000000000000000000000000000000000000000000000
	local n=0 head="" seq at dir h want msg d ev sigh
	XV_HASH=sha256
	XV_ALG=""
	while IFS= read -r line; do
		case $line in *'\'*) echo "escapes: not handled by this verifier"; return 1 ;; esac
		case $line in *'"type":"tongban-audit-head"'*) head=$line; continue ;; esac
		[ -z "$head" ] || { echo "entry after the head"; return 1; }
		n=$((n + 1))
		seq=$(num_of seq "$line")
		at=$(num_of at "$line")
		dir=$(str_of dir "$line")
		ev=$(str_of event "$line")
		d=$(str_of detail "$line")
		[ "$seq" = "$n" ] || { echo "entry $n: seq $seq"; return 1; }
		[ "$(str_of prev "$line")" = "$prev" ] || { echo "entry $n: prev"; return 1; }
		# 11.2: entry 1 fixes the chain's hash; no later entry changes it
		if [ "$dir" = a ] && [ "$ev" = chain ]; then
			[ "$n" = 1 ] || { echo "entry $n: chain after entry 1"; return 1; }
			case $d in
			hash=sm3) XV_HASH=sm3 ;;
			hash=sha256) XV_HASH=sha256 ;;
			*) echo "entry 1: unknown chain hash"; return 1 ;;
			esac
		fi
		msg=$(str2hex tongban-audit-v1)$(u64hex "$seq")$prev$(str2hex "$dir")
		msg=$msg$(lphex "$(str_of msgid "$line")")$(lphex "$(str_of digest "$line")")
		msg=$msg$(lphex "$(str_of peer "$line")")$(u64hex "$at")$(lphex "$ev")
		[ -z "$d" ] || msg=$msg$(lphex "$d")
		h=$(printf '%s' "$msg" | hex2bin | xv_hash)
		[ "$h" = "$(str_of hash "$line")" ] || { echo "entry $n: hash"; return 1; }
		prev=$h
	done <"$1"
	[ -n "$head" ] || { echo "no head"; return 1; }
	seq=$(num_of seq "$head")
	[ "$seq" -le "$n" ] || { echo "truncated: entries $((n + 1))..$seq missing"; return 1; }
	want=$(sed -n "${seq}p" "$1")
	[ "$seq" = 0 ] || [ "$(str_of hash "$want")" = "$(str_of hash "$head")" ] ||
		{ echo "head hash"; return 1; }
	# the key: its id is SHA-256 of the DER SubjectPublicKeyInfo
	[ "$(openssl pkey -pubin -in "$2" -outform DER | sha256sum | cut -c1-64)" = "$(str_of kid "$head")" ] ||
		{ echo "kid"; return 1; }
	printf '%s' "$head" | sed 's/,"sig":"[0-9a-f]*"//' >"$W/x.signed"
	sigh=$(str_of sig "$head")
	XV_ALG=$(str_of alg "$head")
	case $XV_ALG in
	p256)
		xv_rs2der "$sigh" >"$W/x.sig"
		openssl dgst -sha256 -verify "$2" -signature "$W/x.sig" "$W/x.signed" >/dev/null 2>&1 ||
			{ echo "signature"; return 1; }
		;;
	sm2)
		xv_rs2der "$sigh" >"$W/x.sig"
		openssl pkeyutl -verify -pubin -inkey "$2" -rawin -digest sm3 \
			-pkeyopt distid:1234567812345678 -in "$W/x.signed" -sigfile "$W/x.sig" \
			>/dev/null 2>&1 || { echo "signature"; return 1; }
		;;
	*)
		printf '%s' "$sigh" | hex2bin >"$W/x.sig"
		openssl pkeyutl -verify -pubin -inkey "$2" -rawin -in "$W/x.signed" \
			-sigfile "$W/x.sig" >/dev/null 2>&1 || { echo "signature"; return 1; }
		;;
	esac
	echo "ok $n"
}
