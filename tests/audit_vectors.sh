#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/audit_vectors.sh - the audit export vectors (interop/vectors/audit,
# docs/PROTOCOL.md 11; issue 21): SM3 chains under sm2 heads, a SHA-256
# chain under an sm2 head (started before the key was sm2), a P-256
# node's chain, and the refusals (an edited entry, entry 1 downgraded to
# hash=sha256, SHA-256 hashes under a hash=sm3 entry 1, an unknown hash
# name, a "chain" entry after entry 1, a truncated chain, an edited head,
# a head naming the wrong hash, another member's key).  Each one through
# `tongban audit verify --export` (the reason token of index.txt) and
# through the independent shell verifier tests/audit_xverify.sh (openssl
# for SM3, SM2 and P-256: ok exactly when the index says ok, with the
# chain's hash it names).  About 15 s on an idle machine (the shell
# verifier forks a few processes per field).
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
. "${TB_SRCDIR:-.}/tests/audit_xverify.sh"
command -v openssl >/dev/null 2>&1 || { echo "SKIP: no openssl"; exit 77; }
tb_init
V="${TB_SRCDIR:-.}/interop/vectors/audit"
n=0
while read -r name pub expect hash; do
	case $name in '#'* | '') continue ;; esac
	n=$((n + 1))
	f="$V/$name.jsonl"
	if [ "$expect" = ok ]; then
		tb_run 0 audit verify --export "$f" --pub "$V/$pub"
		tb_expect_out_has "chain intact ($hash); signed head at entry"
		tb_expect_out_has "signature verified"
	else
		tb_run 1 audit verify --export "$f" --pub "$V/$pub"
		tb_expect_err "$expect:"
	fi
	xverify "$f" "$V/$pub" >"$W/xv" || true
	if [ "$expect" = ok ]; then
		tb_expect_eq "$name: the independent verifier" "ok $(($(wc -l <"$f") - 1))" "$(cat "$W/xv")"
		tb_expect_eq "$name: the chain's hash, by entry 1" "$hash" "$XV_HASH"
	else
		case $(cat "$W/xv") in
		ok*) tb_fail "$name: the independent verifier refuses it ($expect)" "a reason" "$(cat "$W/xv")" ;;
		esac
	fi
done <"$V/index.txt"
tb_expect_eq "vectors run" 12 "$n"
# the same export verified with the key looked up in a registry is
# node_audit_head.sh's; here --chain-only without a head
head -n -1 "$V/sm2-ok.jsonl" >"$W/nohead.jsonl"
tb_run 1 audit verify --export "$W/nohead.jsonl" --pub "$V/320300-sm2.pub"
tb_expect_err "audit.no-head"
tb_run 0 audit verify --export "$W/nohead.jsonl" --chain-only
tb_expect_out_has "6 entries, chain intact (sm3; no head compared)"
tb_done
