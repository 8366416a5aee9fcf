#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/cli_proto.sh - drives `tongban canon|key|msg` end to end: the RFC 8785
# vectors, every refusal's exit code and reason token, key files, and
# envelopes sealed and opened with both algorithms.
# Run by `make check` (TB_BUILDDIR, TB_SRCDIR set by the Makefile); by hand:
#   TB_BUILDDIR=build TB_SRCDIR=. sh tests/cli_proto.sh
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init

NOW=$(date +%s)
J="$TB_SRCDIR/interop/vectors/jcs"

# ---- help, version, usage errors ----
tb_run 0 --help; tb_expect_out_has "Usage: tongban"
tb_run 0 --version; tb_expect_out_has "tongban "
for c in "canon" "key" "key gen" "key pub" "key id" "msg" "msg new" "msg seal" "msg open" \
	"msg digest"; do
	# shellcheck disable=SC2086
	tb_run 0 $c --help
	tb_expect_out_has "Usage: tongban"
done
# every command answers --version (regression: subcommands exited 2)
for c in "canon" "key gen" "msg open" "ca init" "registry verify" "send" "dev-federation"; do
	# shellcheck disable=SC2086
	tb_run 0 $c --version
	tb_expect_out_has "tongban "
done
tb_run 0 msg types; tb_expect_out_has "case.submit"
tb_run 2; tb_expect_err_has "Usage"
tb_run 2 bogus; tb_expect_err_has "unknown command"
for c in "canon" "key gen" "key pub" "key id" "msg new" "msg seal" "msg open"; do
	# shellcheck disable=SC2086
	tb_run 2 $c --no-such-option
done
tb_run 2 key bogus
tb_run 2 msg bogus
tb_run 2 canon a b
tb_run 2 key gen --alg rsa --out "$W/x.pem"
tb_run 2 key gen --alg ed25519
tb_run 2 msg new --type receipt
tb_run 2 msg new --type receipt --from 320300 --to 370800 --ttl 0
tb_run 2 msg new --type receipt --from 320300 --to 370800 --hops 17
tb_run 2 msg new --type receipt --from 320300 --route-service a.b
tb_run 2 msg open "$W/none"
tb_run 2 msg open --pub x --skew -1

# ---- canon: RFC 8785 vectors byte for byte ----
for f in "$J"/input/*.json; do
	tb_run 0 canon "$f"
	tb_expect_out_file "$J/output/$(basename "$f")"
done
TB_STDIN="$J/input/values.json"
tb_run 0 canon
tb_expect_out_file "$J/output/values.json"
tb_run 0 canon -
tb_expect_out_file "$J/output/values.json"
unset TB_STDIN

# ---- canon: refusals, one line on stderr, exit 1 ----
canon_refuses() { # TOKEN DETAIL FILE
	tb_run 1 canon "$3"
	tb_expect_err "$1"
	[ -z "$2" ] || tb_expect_err "$2"
	tb_expect_out_empty
}
printf '[1,]' >"$W/c1"; canon_refuses json.syntax "at byte 3" "$W/c1"
printf '{"a":1,\n "b":2,,}' >"$W/c2"; canon_refuses json.syntax "at byte 15" "$W/c2"
printf '01' >"$W/c3"; canon_refuses json.syntax "at byte 1" "$W/c3"
printf '' >"$W/c4"; canon_refuses json.syntax "at byte 0" "$W/c4"
printf '{"a":1,"a":2}' >"$W/c5"; canon_refuses json.duplicate-key '"a"' "$W/c5"
printf '"\377"' >"$W/c6"; canon_refuses json.utf8 "at byte 1" "$W/c6"
printf '"\300\257"' >"$W/c7"; canon_refuses json.utf8 "" "$W/c7"
printf '"\355\240\200"' >"$W/c8"; canon_refuses json.utf8 "" "$W/c8"
printf '"\\ud800"' >"$W/c9"; canon_refuses json.surrogate "at byte 1" "$W/c9"
printf '["\\udc00\\ud800"]' >"$W/c10"; canon_refuses json.surrogate "at byte 2" "$W/c10"
printf '1e400' >"$W/c11"; canon_refuses json.number-range "" "$W/c11"
printf '[-1e400]' >"$W/c12"; canon_refuses json.number-range "at byte 1" "$W/c12"
printf '\357\273\277{}' >"$W/c13"; canon_refuses json.syntax "at byte 0" "$W/c13"
head -c 100000 /dev/zero | tr '\0' '[' >"$W/deep"
canon_refuses json.depth "at byte 512" "$W/deep"
{ head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; } >"$W/deep2"
canon_refuses json.depth "" "$W/deep2"
printf '1e-400' >"$W/c14"; tb_run 0 canon "$W/c14"; tb_expect_eq "canon 1e-400" "0" "$(cat "$W/out")"
printf '"a\\u0000b"' >"$W/c15"; tb_run 0 canon "$W/c15"
tb_expect_eq "canon U+0000" '"a\u0000b"' "$(cat "$W/out")"
tb_run 3 canon "$W/does-not-exist"

# ---- key gen / pub / id ----
printf 'secret pass\n' >"$W/pass"
printf 'wrong pass\n' >"$W/wrong"
for alg in ed25519 p256; do
	tb_run 0 key gen --alg $alg --out "$W/$alg.key"
	tb_expect_eq "mode of $alg.key" 600 "$(tb_mode "$W/$alg.key")"
	grep -q "BEGIN PRIVATE KEY" "$W/$alg.key" || tb_fail "$alg.key" "PKCS#8 PEM" "$(head -n 1 "$W/$alg.key")"
	cp "$W/$alg.key" "$W/$alg.copy"
	tb_run 3 key gen --alg $alg --out "$W/$alg.key"
	tb_expect_err "exists"
	cmp -s "$W/$alg.key" "$W/$alg.copy" || tb_fail "refused overwrite" "key unchanged" "key changed"

	tb_run 0 key gen --alg $alg --out "$W/$alg.enc" --pass-file "$W/pass"
	tb_expect_eq "mode of $alg.enc" 600 "$(tb_mode "$W/$alg.enc")"
	grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$W/$alg.enc" || tb_fail "$alg.enc" "encrypted PEM" "$(head -n 1 "$W/$alg.enc")"

	tb_run 0 key pub "$W/$alg.key"
	tb_expect_out_has "BEGIN PUBLIC KEY"
	cp "$W/out" "$W/$alg.pub"
	tb_run 0 key id "$W/$alg.key"; kid_priv=$(cat "$W/out")
	tb_run 0 key id "$W/$alg.pub"; kid_pub=$(cat "$W/out")
	tb_expect_eq "key id of private and public $alg key" "$kid_priv" "$kid_pub"
	echo "$kid_pub" | grep -Eq '^[0-9a-f]{64}$' || tb_fail "key id" "64 hex digits" "$kid_pub"

	tb_run 0 key pub --pass-file "$W/pass" "$W/$alg.enc"
	cp "$W/out" "$W/$alg.encpub"
	tb_run 1 key pub --pass-file "$W/wrong" "$W/$alg.enc"; tb_expect_err "key:"
	tb_run 1 key pub "$W/$alg.enc"; tb_expect_err "key:"
	tb_run 0 key id --pass-file "$W/pass" "$W/$alg.enc"
done
tb_run 1 key id "$W/c1"; tb_expect_err "key"
tb_run 1 key pub "$W/ed25519.pub"; tb_expect_err "key"
head -c 100 "$W/ed25519.key" >"$W/trunc.key"
tb_run 1 key pub "$W/trunc.key"; tb_expect_err "key"
tb_run 3 key pub "$W/no-such.key"

# ---- msg new / seal / open ----
printf '{"applicant":{"idhash":"6b1f"},"mode":"joint","note":"h\303\251llo"}' >"$W/body.json"
for alg in ed25519 p256; do
	tb_run 0 msg new --type case.submit --from 320300 --to 371300 --service hukou.transfer \
		--body "$W/body.json"
	cp "$W/out" "$W/$alg.new"
	tb_expect_out_has '"type":"case.submit"'
	tb_run 0 msg digest "$W/$alg.new"; dg_new=$(cat "$W/out")
	tb_run 0 msg seal --key "$W/$alg.key" "$W/$alg.new"
	cp "$W/out" "$W/$alg.env"
	tb_expect_out_has "\"alg\":\"$alg\""
	tb_run 0 msg digest "$W/$alg.env"
	tb_expect_eq "digest across seal ($alg)" "$dg_new" "$(cat "$W/out")"
	tb_run 0 msg open --pub "$W/$alg.pub" "$W/$alg.env"
	tb_expect_out_file "$W/$alg.env"
	TB_STDIN="$W/$alg.env"
	tb_run 0 msg open --pub "$W/$alg.pub"
	unset TB_STDIN
	# sealed with the encrypted copy of the other key file
	tb_run 0 msg seal --key "$W/$alg.enc" --pass-file "$W/pass" "$W/$alg.new"
	cp "$W/out" "$W/$alg.env2"
	tb_run 0 msg open --pub "$W/$alg.encpub" "$W/$alg.env2"
	tb_run 1 msg seal --key "$W/$alg.enc" --pass-file "$W/wrong" "$W/$alg.new"
	tb_expect_err "key"

	# wrong key
	other=p256; [ $alg = p256 ] && other=ed25519
	tb_run 1 msg open --pub "$W/$other.pub" "$W/$alg.env"; tb_expect_err sig.unknown-key
	# tampered signed content
	sed 's/joint/Joint/' "$W/$alg.env" >"$W/t1"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/t1"; tb_expect_err sig.bad
	sed 's/"hops":4/"hops":5/' "$W/$alg.env" >"$W/t2"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/t2"; tb_expect_err sig.bad
	# tampered signature value (its first character)
	awk '{ i = index($0, "\"val\":\""); c = substr($0, i + 7, 1); r = (c == "A") ? "B" : "A";
	       print substr($0, 1, i + 6) r substr($0, i + 8) }' "$W/$alg.env" >"$W/t3"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/t3"; tb_expect_err sig.bad
	# missing field, unknown field, malformed
	sed 's/"hops":4,//' "$W/$alg.env" >"$W/t4"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/t4"; tb_expect_err field.missing; tb_expect_err hops
	sed 's/"v":1}/"v":1,"x":0}/' "$W/$alg.env" >"$W/t5"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/t5"; tb_expect_err field.unknown
	sed 's/"v":1}/"v":2}/' "$W/$alg.env" >"$W/t6"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/t6"; tb_expect_err version
	head -c 50 "$W/$alg.env" >"$W/t7"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/t7"; tb_expect_err json.syntax
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/$alg.new"; tb_expect_err sig.missing
	tb_run 1 msg seal --key "$W/$alg.key" "$W/t7"; tb_expect_err json.syntax

	# time: expired, and created in the future
	tb_run 0 msg new --type control.ping --from 320300 --to 370800 \
		--created $((NOW - 100000)) --ttl 1000
	cp "$W/out" "$W/old"
	tb_run 0 msg seal --key "$W/$alg.key" "$W/old"; cp "$W/out" "$W/old.env"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/old.env"; tb_expect_err time.expired
	tb_run 0 msg open --pub "$W/$alg.pub" --now $((NOW - 99500)) "$W/old.env"
	tb_run 0 msg new --type control.ping --from 320300 --to 370800 --created $((NOW + 100000))
	cp "$W/out" "$W/fut"
	tb_run 0 msg seal --key "$W/$alg.key" "$W/fut"; cp "$W/out" "$W/fut.env"
	tb_run 1 msg open --pub "$W/$alg.pub" "$W/fut.env"; tb_expect_err time.future
	tb_run 1 msg open --pub "$W/$alg.pub" --skew 86400 "$W/fut.env"; tb_expect_err time.future
	tb_run 0 msg open --pub "$W/$alg.pub" --now $((NOW + 99800)) "$W/fut.env"
done

# route requests and refusals of msg new
tb_run 0 msg new --type identity.verify --from 320300 --route-service id.verify --route-region 3713
tb_expect_out_has '"route":{"region":"3713","service":"id.verify"}'
tb_run 1 msg new --type nope --from 320300 --to 370800; tb_expect_err type.unknown
tb_run 1 msg new --type receipt --from 32030 --to 370800; tb_expect_err field.value
printf '[]' >"$W/arr.json"
tb_run 1 msg new --type receipt --from 320300 --to 370800 --body "$W/arr.json"; tb_expect_err field.type
tb_run 1 msg new --type receipt --from 320300 --to 370800 --body "$W/c5"; tb_expect_err json.duplicate-key
tb_run 3 msg new --type receipt --from 320300 --to 370800 --body "$W/no-such.json"

tb_done
