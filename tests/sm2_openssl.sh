#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# tests/sm2_openssl.sh - tongban's SM2/SM3 (issue 21 point 4) against the
# openssl 3 command line, both ways:
#  - 200 random messages signed by tongban verify with `openssl pkeyutl
#    -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678`, and 200
#    signed by openssl verify with tongban (the value encodings, r||s and
#    DER, converted by tests/sm2_tool);
#  - a signature over a tampered message or by another key fails both ways;
#  - SM3 of 50 random inputs (0..4 KiB) equals `openssl dgst -sm3`;
#  - key files both ways: openssl's SM2 PKCS#8 (plain and encrypted) and
#    SPKI load in tongban with the same key id as openssl's SPKI DER gives,
#    and tongban's files load in `openssl pkey` with the SM2 curve.
# About 15-30 s on an idle machine (mostly openssl process starts).
set -u
. "${TB_SRCDIR:-.}/tests/lib.sh"
tb_init
T="$TB_BUILDDIR/tests/sm2_tool"
[ -x "$T" ] || { echo "FAIL: $T is not built" >&2; exit 1; }
OSSL=openssl
command -v "$OSSL" >/dev/null || { echo "SKIP: no openssl"; exit 77; }
DIST="distid:1234567812345678"
N=${SM2_N:-200}

# --- keys ---
tb_run 0 key gen --alg sm2 --out "$W/tb.key"
tb_run 0 key pub "$W/tb.key"
cp "$W/out" "$W/tb.pub"
"$OSSL" pkey -in "$W/tb.key" -text -noout >"$W/otext" 2>"$W/err" ||
	tb_fail "openssl pkey reads tongban's SM2 key" "exit 0" "failed"
grep -q "SM2" "$W/otext" || tb_fail "openssl sees tongban's key" "curve SM2" "$(grep -i 'oid\|curve' "$W/otext")"
TB_CHECKS=$((TB_CHECKS + 1))
"$OSSL" pkey -pubin -in "$W/tb.pub" -noout 2>"$W/err" ||
	tb_fail "openssl pkey reads tongban's SM2 public key" "exit 0" "failed"
"$OSSL" genpkey -algorithm SM2 -out "$W/os.key" 2>/dev/null || tb_fail "openssl genpkey SM2" "exit 0" "failed"
"$OSSL" pkey -in "$W/os.key" -pubout -out "$W/os.pub" 2>/dev/null
want=$("$OSSL" pkey -pubin -in "$W/os.pub" -outform DER | sha256sum | cut -c1-64)
tb_run 0 key id "$W/os.key"
tb_expect_eq "key id of openssl's SM2 private key" "$want" "$(cat "$W/out")"
tb_run 0 key id "$W/os.pub"
tb_expect_eq "key id of openssl's SM2 public key" "$want" "$(cat "$W/out")"
# openssl's encrypted PKCS#8 (PBES2, AES-256) with tongban's --pass-file
echo "s3cret pass" >"$W/pw"
"$OSSL" pkcs8 -topk8 -v2 aes-256-cbc -in "$W/os.key" -out "$W/os.enc" -passout "file:$W/pw" 2>/dev/null
tb_run 0 key pub --pass-file "$W/pw" "$W/os.enc"
tb_expect_eq "tongban reads openssl's encrypted SM2 key" "$(cat "$W/os.pub")" "$(cat "$W/out")"
echo "wrong" >"$W/bad"
rc=0
"$TB" key pub --pass-file "$W/bad" "$W/os.enc" >/dev/null 2>"$W/err" || rc=$?
[ "$rc" != 0 ] && [ "$rc" -lt 126 ] || tb_fail "a wrong password for an SM2 key" "an error exit" "exit $rc"
tb_expect_eq "the wrong password named" 1 "$(grep -c 'password' "$W/err")"
# tongban's encrypted key with openssl
tb_run 0 key gen --alg sm2 --out "$W/tb.enc" --pass-file "$W/pw"
"$OSSL" pkey -in "$W/tb.enc" -passin "file:$W/pw" -pubout >"$W/x.pub" 2>"$W/err" ||
	tb_fail "openssl reads tongban's encrypted SM2 key" "exit 0" "failed"
tb_run 0 key pub --pass-file "$W/pw" "$W/tb.enc"
tb_expect_eq "same public key from tongban's encrypted key" "$(cat "$W/x.pub")" "$(cat "$W/out")"

# --- signatures, 2 x N random messages ---
i=0
while [ "$i" -lt "$N" ]; do
	len=$(( (i * 37) % 1500 ))
	head -c "$len" /dev/urandom >"$W/m"
	# tongban signs, openssl verifies
	"$T" sign "$W/tb.key" "$W/m" >"$W/s.raw" || tb_fail "sm2_tool sign #$i" "exit 0" "failed"
	"$T" raw2der "$W/s.raw" >"$W/s.der"
	"$OSSL" pkeyutl -verify -pubin -inkey "$W/tb.pub" -rawin -digest sm3 -pkeyopt "$DIST" \
		-in "$W/m" -sigfile "$W/s.der" >/dev/null 2>&1 ||
		tb_fail "openssl verifies tongban's SM2 signature #$i (len $len)" "verified" "refused"
	# openssl signs, tongban verifies
	"$OSSL" pkeyutl -sign -inkey "$W/os.key" -rawin -digest sm3 -pkeyopt "$DIST" \
		-in "$W/m" -out "$W/o.der" 2>/dev/null || tb_fail "openssl sign #$i" "exit 0" "failed"
	"$T" der2raw "$W/o.der" >"$W/o.raw"
	"$T" verify "$W/os.pub" "$W/m" "$W/o.raw" ||
		tb_fail "tongban verifies openssl's SM2 signature #$i (len $len)" "verified" "refused"
	if [ $((i % 20)) = 0 ]; then
		# refusals: another message, another key, both ways
		printf 'x' >>"$W/m"
		! "$T" verify "$W/os.pub" "$W/m" "$W/o.raw" ||
			tb_fail "tongban on a tampered message #$i" "refused" "verified"
		! "$OSSL" pkeyutl -verify -pubin -inkey "$W/tb.pub" -rawin -digest sm3 -pkeyopt "$DIST" \
			-in "$W/m" -sigfile "$W/s.der" >/dev/null 2>&1 ||
			tb_fail "openssl on a tampered message #$i" "refused" "verified"
		! "$T" verify "$W/tb.pub" "$W/m" "$W/o.raw" ||
			tb_fail "tongban with the wrong key #$i" "refused" "verified"
		TB_CHECKS=$((TB_CHECKS + 3))
	fi
	TB_CHECKS=$((TB_CHECKS + 2))
	i=$((i + 1))
done
# the distinguishing id is part of the signature: another id fails
"$OSSL" pkeyutl -sign -inkey "$W/os.key" -rawin -digest sm3 -pkeyopt distid:0000000000000000 \
	-in "$W/m" -out "$W/o.der" 2>/dev/null
"$T" der2raw "$W/o.der" >"$W/o.raw"
! "$T" verify "$W/os.pub" "$W/m" "$W/o.raw" ||
	tb_fail "a signature with another distinguishing id" "refused" "verified"
TB_CHECKS=$((TB_CHECKS + 1))

# --- SM3 ---
i=0
while [ "$i" -lt 50 ]; do
	head -c $(( (i * 83) % 4097 )) /dev/urandom >"$W/m"
	want=$("$OSSL" dgst -sm3 -r "$W/m" | cut -c1-64)
	tb_expect_eq "SM3 of a random input #$i" "$want" "$("$T" sm3 "$W/m")"
	i=$((i + 1))
done
echo "($N signatures each way)"
tb_done
