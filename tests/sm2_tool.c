/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sm2_tool - tongban's key module on the command line, for the openssl
 * cross-test (tests/sm2_openssl.sh):
 *   sm2_tool sign KEY.pem FILE          64-byte r||s signature to stdout
 *   sm2_tool verify PUB.pem FILE SIG    exit 0 when SIG (r||s) verifies
 *   sm2_tool sm3 FILE                   SM3 of FILE, hex
 *   sm2_tool raw2der SIG / der2raw SIG  signature value encodings
 * The encoding conversions use libcrypto's ECDSA_SIG; the signing and
 * verifying are tb_key_sign / tb_pub_verify.
 */
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/tb_key.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"
#include "util/tb_file.h"

static int
readf(const char *p, struct tb_buf *b)
{
	struct tb_diag d = {0};

	tb_buf_init(b);
	if (tb_file_read(p, 1 << 24, b, &d) != TB_OK) {
		fprintf(stderr, "sm2_tool: %s: cannot read\n", p);
		return -1;
	}
	return 0;
}

static int
conv(const char *p, bool to_der)
{
	struct tb_buf b;
	ECDSA_SIG *s = NULL;
	int rc = 1;

	if (readf(p, &b) != 0)
		return 2;
	if (to_der) {
		unsigned char *der = NULL;
		BIGNUM *r = BN_bin2bn(b.data, 32, NULL), *ss = BN_bin2bn(b.data + 32, 32, NULL);
		int n;
		if (b.len != 64 || (s = ECDSA_SIG_new()) == NULL || ECDSA_SIG_set0(s, r, ss) != 1)
			goto out;
		if ((n = i2d_ECDSA_SIG(s, &der)) > 0 &&
		    fwrite(der, 1, (size_t)n, stdout) == (size_t)n)
			rc = 0;
		OPENSSL_free(der);
	} else {
		const unsigned char *q = b.data;
		unsigned char raw[64];
		if ((s = d2i_ECDSA_SIG(NULL, &q, (long)b.len)) != NULL &&
		    BN_bn2binpad(ECDSA_SIG_get0_r(s), raw, 32) == 32 &&
		    BN_bn2binpad(ECDSA_SIG_get0_s(s), raw + 32, 32) == 32 &&
		    fwrite(raw, 1, 64, stdout) == 64)
			rc = 0;
	}
out:
	ECDSA_SIG_free(s);
	tb_buf_free(&b);
	return rc;
}

int
main(int argc, char **argv)
{
	struct tb_diag d = {0};
	struct tb_buf m, s;
	int rc = 1;

	if (tb_crypto_init() != TB_OK)
		return 2;
	if (argc == 4 && strcmp(argv[1], "sign") == 0) {
		struct tb_key *k = tb_key_load(argv[2], NULL, &d);
		uint8_t sig[TB_SIG_LEN];
		if (k == NULL || readf(argv[3], &m) != 0)
			return 2;
		if (tb_key_sign(k, m.data, m.len, sig) == TB_OK &&
		    fwrite(sig, 1, sizeof(sig), stdout) == sizeof(sig))
			rc = 0;
		tb_key_free(k);
		tb_buf_free(&m);
		return rc;
	}
	if (argc == 5 && strcmp(argv[1], "verify") == 0) {
		struct tb_pub *p = tb_pub_load(argv[2], &d);
		if (p == NULL || readf(argv[3], &m) != 0 || readf(argv[4], &s) != 0)
			return 2;
		rc = s.len == TB_SIG_LEN && tb_pub_verify(p, m.data, m.len, s.data) ? 0 : 1;
		tb_pub_free(p);
		tb_buf_free(&m);
		tb_buf_free(&s);
		return rc;
	}
	if (argc == 3 && strcmp(argv[1], "sm3") == 0) {
		uint8_t h[32];
		if (readf(argv[2], &m) != 0)
			return 2;
		tb_sm3_hash(m.data, m.len, h);
		for (int i = 0; i < 32; i++)
			printf("%02x", h[i]);
		printf("\n");
		tb_buf_free(&m);
		return 0;
	}
	if (argc == 3 && (strcmp(argv[1], "raw2der") == 0 || strcmp(argv[1], "der2raw") == 0))
		return conv(argv[2], argv[1][0] == 'r');
	fprintf(stderr, "usage: sm2_tool sign|verify|sm3|raw2der|der2raw ...\n");
	return 2;
}
