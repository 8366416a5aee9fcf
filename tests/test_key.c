/* SPDX-License-Identifier: Apache-2.0 */
/* test_key.c - keys, key ids, signatures, key files (certs/tb_key). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs/tb_key.h"
#include "certs/tb_key_internal.h"
#include "util/tb_buf.h"
#include "util/tb_enc.h"
#include "util/tb_err.h"

static char tmpdir[256];

static const enum tb_alg algs[] = {TB_ALG_ED25519, TB_ALG_P256};

static void
path_in_tmp(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static int
setup_all(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_key.XXXXXX", t && *t ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return tb_crypto_init() == TB_OK ? 0 : -1;
}

static int
teardown_all(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
unhex(const char *h, uint8_t *out, size_t n)
{
	assert_true(tb_hex_decode(h, strlen(h), out, n));
}

/* SHA-256 of the DER SubjectPublicKeyInfo, computed by GnuTLS from the
 * PEM text the module prints: the key id must match it. */
static void
id_via_gnutls(const struct tb_pub *pub, uint8_t out[32])
{
	struct tb_buf pem;
	gnutls_pubkey_t pk;
	gnutls_datum_t in, der = {0};

	tb_buf_init(&pem);
	assert_int_equal(tb_pub_pem(pub, &pem), TB_OK);
	in.data = pem.data;
	in.size = (unsigned)pem.len;
	assert_int_equal(gnutls_pubkey_init(&pk), 0);
	assert_int_equal(gnutls_pubkey_import(pk, &in, GNUTLS_X509_FMT_PEM), 0);
	assert_int_equal(gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der), 0);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, out), 0);
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pk);
	tb_buf_free(&pem);
}

static void
test_alg_names(void **state)
{
	(void)state;
	assert_int_equal(tb_alg_from_name("ed25519"), TB_ALG_ED25519);
	assert_int_equal(tb_alg_from_name("p256"), TB_ALG_P256);
	assert_int_equal(tb_alg_from_name("P256"), TB_ALG_NONE);
	assert_int_equal(tb_alg_from_name("rsa"), TB_ALG_NONE);
	assert_int_equal(tb_alg_from_name(""), TB_ALG_NONE);
	assert_int_equal(tb_alg_from_name(NULL), TB_ALG_NONE);
	assert_string_equal(tb_alg_name(TB_ALG_ED25519), "ed25519");
	assert_string_equal(tb_alg_name(TB_ALG_P256), "p256");
	assert_int_equal(tb_alg_from_name("sm2"), TB_ALG_SM2);
	assert_int_equal(tb_alg_from_name("SM2"), TB_ALG_NONE);
	assert_string_equal(tb_alg_name(TB_ALG_SM2), "sm2");
	assert_null(tb_alg_name(TB_ALG_NONE));
}

static void
test_sha256_random(void **state)
{
	uint8_t h[32], want[32], a[32] = {0}, b[32] = {0};

	(void)state;
	tb_sha256("abc", 3, h);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	assert_memory_equal(h, want, 32);
	tb_sha256("", 0, h);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
	assert_memory_equal(h, want, 32);
	assert_int_equal(tb_random(a, sizeof(a)), TB_OK);
	assert_int_equal(tb_random(b, sizeof(b)), TB_OK);
	assert_memory_not_equal(a, b, 32);
}

static void
test_sign_verify(void **state)
{
	(void)state;
	for (size_t ai = 0; ai < 2; ai++) {
		struct tb_diag d;
		struct tb_key *k = tb_key_generate(algs[ai], &d),
		              *k2 = tb_key_generate(algs[ai], &d);
		struct tb_pub *pub, *pub2;
		uint8_t sig[TB_SIG_LEN], id[32], id2[32], msg[300];

		assert_non_null(k);
		assert_non_null(k2);
		assert_int_equal(tb_key_alg(k), algs[ai]);
		pub = tb_key_pub(k);
		pub2 = tb_key_pub(k2);
		assert_non_null(pub);
		assert_int_equal(tb_pub_alg(pub), algs[ai]);

		/* key id: SHA-256 of the DER SPKI, the same from the key and its pub */
		tb_key_id(k, id);
		tb_pub_id(pub, id2);
		assert_memory_equal(id, id2, 32);
		id_via_gnutls(pub, id2);
		assert_memory_equal(id, id2, 32);
		tb_key_id(k2, id2);
		assert_memory_not_equal(id, id2, 32);

		/* many messages and lengths: catches r or s with leading zero bytes */
		for (int i = 0; i < 300; i++) {
			size_t n = (size_t)i % sizeof(msg);
			assert_int_equal(tb_random(msg, sizeof(msg)), TB_OK);
			assert_int_equal(tb_key_sign(k, msg, n, sig), TB_OK);
			if (!tb_pub_verify(pub, msg, n, sig))
				fail_msg("%s: signature %d over %zu bytes does not verify",
				         tb_alg_name(algs[ai]), i, n);
			assert_false(tb_pub_verify(pub2, msg, n, sig)); /* wrong key */
		}
		/* every bit of the signature and of the message matters */
		memcpy(msg, "tongban", 7);
		assert_int_equal(tb_key_sign(k, msg, 7, sig), TB_OK);
		assert_true(tb_pub_verify(pub, msg, 7, sig));
		for (size_t i = 0; i < TB_SIG_LEN; i++) {
			for (int bit = 0; bit < 8; bit += 3) {
				sig[i] ^= (uint8_t)(1 << bit);
				if (tb_pub_verify(pub, msg, 7, sig))
					fail_msg("tampered signature byte %zu bit %d verifies", i,
					         bit);
				sig[i] ^= (uint8_t)(1 << bit);
			}
		}
		for (size_t i = 0; i < 7; i++) {
			msg[i] ^= 0x20;
			assert_false(tb_pub_verify(pub, msg, 7, sig));
			msg[i] ^= 0x20;
		}
		assert_false(tb_pub_verify(pub, msg, 6, sig));
		uint8_t zero[TB_SIG_LEN] = {0}, ones[TB_SIG_LEN];
		memset(ones, 0xff, sizeof(ones));
		assert_false(tb_pub_verify(pub, msg, 7, zero));
		assert_false(tb_pub_verify(pub, msg, 7, ones));
		assert_true(tb_pub_verify(pub, msg, 7, sig));

		tb_pub_free(pub);
		tb_pub_free(pub2);
		tb_key_free(k);
		tb_key_free(k2);
	}
	tb_key_free(NULL);
	tb_pub_free(NULL);
	struct tb_diag d;
	assert_null(tb_key_generate(TB_ALG_NONE, &d));
	assert_int_equal(d.code, TB_E_CRYPTO);
}

/* RFC 8032 section 7.1, TEST 1: an independent oracle for Ed25519 and
 * for the key id (SPKI built by hand). */
static void
test_ed25519_rfc8032(void **state)
{
	static const char pkcs8_prefix[] = "302e020100300506032b657004220420";
	static const char spki_prefix[] = "302a300506032b6570032100";
	static const char seed[] =
	    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
	static const char pubhex[] =
	    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
	static const char sighex[] =
	    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901"
	    "555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
	uint8_t der[48], spki[44], want_sig[64], sig[64], id[32], want_id[32];
	gnutls_datum_t dd = {der, sizeof(der)}, pem = {0};
	struct tb_diag d;
	struct tb_key *k;
	struct tb_pub *pub;

	(void)state;
	unhex(pkcs8_prefix, der, 16);
	unhex(seed, der + 16, 32);
	unhex(spki_prefix, spki, 12);
	unhex(pubhex, spki + 12, 32);
	unhex(sighex, want_sig, 64);
	assert_int_equal(gnutls_pem_base64_encode2("PRIVATE KEY", &dd, &pem), 0);
	k = tb_key_import(pem.data, pem.size, NULL, &d);
	gnutls_free(pem.data);
	assert_non_null(k);
	assert_int_equal(tb_key_alg(k), TB_ALG_ED25519);
	assert_int_equal(tb_key_sign(k, "", 0, sig), TB_OK);
	assert_memory_equal(sig, want_sig, 64);
	tb_key_id(k, id);
	tb_sha256(spki, sizeof(spki), want_id);
	assert_memory_equal(id, want_id, 32);

	pub = tb_pub_import_spki(spki, sizeof(spki), &d);
	assert_non_null(pub);
	tb_pub_id(pub, id);
	assert_memory_equal(id, want_id, 32);
	assert_true(tb_pub_verify(pub, "", 0, want_sig));
	tb_pub_free(pub);
	tb_key_free(k);

	spki[3] ^= 1; /* broken DER */
	assert_null(tb_pub_import_spki(spki, sizeof(spki), &d));
	assert_int_equal(d.code, TB_E_KEY);
}

static void
test_save_load(void **state)
{
	(void)state;
	for (size_t ai = 0; ai < 2; ai++) {
		struct tb_diag d;
		struct tb_key *k = tb_key_generate(algs[ai], &d), *l;
		struct tb_pub *pub = tb_key_pub(k);
		char plain[512], enc[512];
		uint8_t id[32], id2[32], sig[64];
		struct stat st;
		struct tb_buf b;
		FILE *f;

		assert_non_null(k);
		tb_key_id(k, id);
		snprintf(plain, sizeof(plain), "%s/plain-%s.pem", tmpdir, tb_alg_name(algs[ai]));
		snprintf(enc, sizeof(enc), "%s/enc-%s.pem", tmpdir, tb_alg_name(algs[ai]));

		/* plain */
		assert_int_equal(tb_key_save(k, plain, NULL, &d), TB_OK);
		assert_int_equal(stat(plain, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		l = tb_key_load(plain, NULL, &d);
		assert_non_null(l);
		tb_key_id(l, id2);
		assert_memory_equal(id, id2, 32);
		assert_int_equal(tb_key_sign(l, "x", 1, sig), TB_OK);
		assert_true(tb_pub_verify(pub, "x", 1, sig));
		tb_key_free(l);
		/* a password given for a plain key is not needed; it still loads */

		/* refuses to overwrite, and leaves the file alone */
		struct tb_key *other = tb_key_generate(algs[ai], &d);
		assert_int_not_equal(tb_key_save(other, plain, NULL, &d), TB_OK);
		assert_int_equal(d.code, TB_E_IO);
		l = tb_key_load(plain, NULL, &d);
		assert_non_null(l);
		tb_key_id(l, id2);
		assert_memory_equal(id, id2, 32);
		tb_key_free(l);
		tb_key_free(other);

		/* encrypted */
		assert_int_equal(tb_key_save(k, enc, "correct horse", &d), TB_OK);
		assert_int_equal(stat(enc, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		tb_buf_init(&b);
		f = fopen(enc, "r");
		assert_non_null(f);
		char line[128];
		while (fgets(line, sizeof(line), f) != NULL)
			tb_buf_adds(&b, line);
		fclose(f);
		assert_non_null(strstr((char *)b.data, "BEGIN ENCRYPTED PRIVATE KEY"));
		tb_buf_free(&b);
		l = tb_key_load(enc, "correct horse", &d);
		assert_non_null(l);
		tb_key_id(l, id2);
		assert_memory_equal(id, id2, 32);
		tb_key_free(l);
		assert_null(tb_key_load(enc, "wrong horse", &d));
		assert_int_equal(d.code, TB_E_KEY);
		assert_non_null(strstr(d.detail, enc)); /* names the file */
		assert_null(tb_key_load(enc, "", &d));
		assert_int_equal(d.code, TB_E_KEY);
		assert_null(tb_key_load(enc, NULL, &d));
		assert_int_equal(d.code, TB_E_KEY);

		/* missing file */
		char missing[512];
		path_in_tmp(missing, sizeof(missing), "no-such.pem");
		assert_null(tb_key_load(missing, NULL, &d));
		assert_int_equal(d.code, TB_E_IO);
		assert_null(tb_pub_load(missing, &d));
		assert_int_equal(d.code, TB_E_IO);
		/* a private key file is not a public key */
		assert_null(tb_pub_load(plain, &d));
		assert_int_equal(d.code, TB_E_KEY);

		tb_pub_free(pub);
		tb_key_free(k);
	}
}

/* A self-signed certificate made with GnuTLS directly. */
static char *
make_cert(const struct tb_key *k)
{
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pk;
	gnutls_datum_t out = {0};
	uint8_t serial[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	time_t now = time(NULL);
	char *s;

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_pubkey_init(&pk), 0);
	assert_int_equal(gnutls_pubkey_import_privkey(pk, tb_key_gnutls(k), 0, 0), 0);
	assert_int_equal(gnutls_x509_crt_set_pubkey(crt, pk), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 60), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_dn(crt, "CN=test,serialNumber=320300", NULL), 0);
	assert_int_equal(gnutls_x509_crt_set_issuer_dn(crt, "CN=test,serialNumber=320300", NULL),
	                 0);
	assert_int_equal(
	    gnutls_x509_crt_privkey_sign(
	        crt, crt, tb_key_gnutls(k),
	        tb_key_alg(k) == TB_ALG_ED25519 ? GNUTLS_DIG_SHA512 : GNUTLS_DIG_SHA256, 0),
	    0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), 0);
	s = malloc(out.size + 1);
	assert_non_null(s);
	memcpy(s, out.data, out.size);
	s[out.size] = '\0';
	gnutls_free(out.data);
	gnutls_pubkey_deinit(pk);
	gnutls_x509_crt_deinit(crt);
	return s;
}

static void
test_pub_import(void **state)
{
	(void)state;
	for (size_t ai = 0; ai < 2; ai++) {
		struct tb_diag d;
		struct tb_key *k = tb_key_generate(algs[ai], &d);
		struct tb_pub *pub = tb_key_pub(k), *p2;
		struct tb_buf pem;
		uint8_t id[32], id2[32], sig[64];
		char *cert;

		tb_key_id(k, id);
		tb_buf_init(&pem);
		assert_int_equal(tb_pub_pem(pub, &pem), TB_OK);
		assert_non_null(strstr((char *)pem.data, "-----BEGIN PUBLIC KEY-----"));
		p2 = tb_pub_import(pem.data, pem.len, &d);
		assert_non_null(p2);
		tb_pub_id(p2, id2);
		assert_memory_equal(id, id2, 32);
		assert_int_equal(tb_pub_alg(p2), algs[ai]);
		assert_int_equal(tb_key_sign(k, "m", 1, sig), TB_OK);
		assert_true(tb_pub_verify(p2, "m", 1, sig));
		tb_pub_free(p2);

		/* from a certificate: the key id is the certified key's */
		cert = make_cert(k);
		p2 = tb_pub_import((const uint8_t *)cert, strlen(cert), &d);
		assert_non_null(p2);
		tb_pub_id(p2, id2);
		assert_memory_equal(id, id2, 32);
		assert_true(tb_pub_verify(p2, "m", 1, sig));
		tb_pub_free(p2);
		/* a broken certificate */
		char *body = strstr(cert, "\n") + 1;
		body[10] = body[10] == 'A' ? 'B' : 'A';
		body[11] = body[11] == 'A' ? 'B' : 'A';
		p2 = tb_pub_import((const uint8_t *)cert, strlen(cert), &d);
		if (p2 != NULL) {
			/* changing two base64 characters may still parse; the id must differ
			 * then or be the same key -- but never crash */
			tb_pub_free(p2);
		}
		free(cert);

		/* garbage and truncation */
		size_t cuts[] = {0, 1, 10, 27, 30, pem.len / 2, pem.len - 27};
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			p2 = tb_pub_import(pem.data, cuts[i], &d);
			if (p2 != NULL)
				fail_msg("truncated PEM (%zu of %zu bytes) accepted", cuts[i],
				         pem.len);
			assert_true(d.code == TB_E_KEY || d.code == TB_E_CERT);
		}
		pem.data[40] = '*'; /* not base64 */
		assert_null(tb_pub_import(pem.data, pem.len, &d));
		tb_buf_free(&pem);
		assert_null(tb_pub_import((const uint8_t *)"hello", 5, &d));
		assert_int_equal(d.code, TB_E_KEY);
		static const char fakecert[] =
		    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
		assert_null(tb_pub_import((const uint8_t *)fakecert, strlen(fakecert), &d));
		assert_int_equal(d.code, TB_E_CERT);

		/* private key imports: garbage, truncated */
		char path[512];
		struct tb_buf kp;
		snprintf(path, sizeof(path), "%s/imp-%s.pem", tmpdir, tb_alg_name(algs[ai]));
		assert_int_equal(tb_key_save(k, path, NULL, &d), TB_OK);
		tb_buf_init(&kp);
		FILE *f = fopen(path, "r");
		char line[128];
		while (fgets(line, sizeof(line), f) != NULL)
			tb_buf_adds(&kp, line);
		fclose(f);
		struct tb_key *l = tb_key_import(kp.data, kp.len, NULL, &d);
		assert_non_null(l);
		tb_key_free(l);
		size_t kcuts[] = {0, 5, 28, kp.len / 2, kp.len - 26};
		for (size_t i = 0; i < sizeof(kcuts) / sizeof(kcuts[0]); i++) {
			l = tb_key_import(kp.data, kcuts[i], NULL, &d);
			if (l != NULL)
				fail_msg("truncated key (%zu of %zu bytes) accepted", kcuts[i],
				         kp.len);
			assert_int_equal(d.code, TB_E_KEY);
		}
		tb_buf_free(&kp);
		assert_null(tb_key_import((const uint8_t *)"garbage", 7, NULL, &d));
		assert_int_equal(d.code, TB_E_KEY);
		/* a public key is not a private key */
		tb_buf_init(&pem);
		assert_int_equal(tb_pub_pem(pub, &pem), TB_OK);
		assert_null(tb_key_import(pem.data, pem.len, NULL, &d));
		assert_int_equal(d.code, TB_E_KEY);
		tb_buf_free(&pem);

		tb_pub_free(pub);
		tb_key_free(k);
	}
}

/* The import functions take (pointer, length): they must not read past
 * the length, e.g. looking for a NUL (regression: strstr on the PEM). */
static void
test_import_unterminated(void **state)
{
	static const char text[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBAAAAAAAA";
	size_t n = sizeof(text) - 1;
	uint8_t *p = malloc(n); /* exactly n bytes, no NUL after them */
	struct tb_diag d;

	(void)state;
	assert_non_null(p);
	memcpy(p, text, n);
	assert_null(tb_key_import(p, n, NULL, &d));
	assert_int_equal(d.code, TB_E_KEY);
	assert_null(tb_pub_import(p, n, &d));
	free(p);
	/* not PEM at all, without a password: the "is it encrypted?" probe */
	p = malloc(7);
	assert_non_null(p);
	memcpy(p, "garbage", 7);
	assert_null(tb_key_import(p, 7, NULL, &d));
	assert_int_equal(d.code, TB_E_KEY);
	assert_null(tb_pub_import(p, 7, &d));
	free(p);
}

/* Other algorithms and curves are refused. */
static void
test_foreign_keys(void **state)
{
	static const struct {
		gnutls_pk_algorithm_t pk;
		unsigned bits;
	} v[] = {
	    {GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1)},
	    {GNUTLS_PK_RSA, 2048},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		gnutls_privkey_t pk;
		gnutls_x509_privkey_t xk;
		gnutls_pubkey_t pub;
		gnutls_datum_t pem = {0}, ppem = {0};
		struct tb_diag d;

		assert_int_equal(gnutls_privkey_init(&pk), 0);
		assert_int_equal(gnutls_privkey_generate2(pk, v[i].pk, v[i].bits, 0, NULL, 0), 0);
		assert_int_equal(gnutls_privkey_export_x509(pk, &xk), 0);
		assert_int_equal(gnutls_x509_privkey_export2_pkcs8(xk, GNUTLS_X509_FMT_PEM, NULL,
		                                                   GNUTLS_PKCS_PLAIN, &pem),
		                 0);
		assert_int_equal(gnutls_pubkey_init(&pub), 0);
		assert_int_equal(gnutls_pubkey_import_privkey(pub, pk, 0, 0), 0);
		assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, &ppem), 0);

		assert_null(tb_key_import(pem.data, pem.size, NULL, &d));
		assert_int_equal(d.code, TB_E_KEY);
		assert_null(tb_pub_import(ppem.data, ppem.size, &d));
		assert_int_equal(d.code, TB_E_KEY);

		gnutls_free(pem.data);
		gnutls_free(ppem.data);
		gnutls_pubkey_deinit(pub);
		gnutls_x509_privkey_deinit(xk);
		gnutls_privkey_deinit(pk);
	}
}

/* SM3: the two examples of GB/T 32905-2016 Appendix A, and tb_alg_hash's
 * choice of hash by algorithm. */
static void
test_sm3_vectors(void **state)
{
	uint8_t h[32], want[32], s256[32];
	char abcd[65];

	(void)state;
	tb_sm3_hash("abc", 3, h);
	unhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0", want, 32);
	assert_memory_equal(h, want, 32);
	for (int i = 0; i < 16; i++)
		memcpy(abcd + 4 * i, "abcd", 4);
	tb_sm3_hash(abcd, 64, h);
	unhex("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732", want, 32);
	assert_memory_equal(h, want, 32);
	tb_alg_hash(TB_ALG_SM2, abcd, 64, h);
	assert_memory_equal(h, want, 32);
	tb_sha256(abcd, 64, s256);
	tb_alg_hash(TB_ALG_P256, abcd, 64, h);
	assert_memory_equal(h, s256, 32);
	tb_alg_hash(TB_ALG_ED25519, abcd, 64, h);
	assert_memory_equal(h, s256, 32);
}

/* SM2: sign/verify, wrong key, tampered signature and message, key files
 * (plain and encrypted PKCS#8, SPKI PEM and DER) and the key id. */
static void
test_sm2(void **state)
{
	struct tb_diag d;
	struct tb_key *k = tb_key_generate(TB_ALG_SM2, &d), *k2 = tb_key_generate(TB_ALG_SM2, &d),
	              *l;
	struct tb_pub *pub, *pub2, *p3;
	uint8_t sig[TB_SIG_LEN], id[32], id2[32], msg[300];
	char path[512], epath[512];
	struct tb_buf b;
	FILE *f;

	(void)state;
	assert_non_null(k);
	assert_non_null(k2);
	assert_int_equal(tb_key_alg(k), TB_ALG_SM2);
	assert_null(tb_key_gnutls(k)); /* no GnuTLS handle: no certificates */
	assert_non_null(pub = tb_key_pub(k));
	assert_non_null(pub2 = tb_key_pub(k2));
	assert_int_equal(tb_pub_alg(pub), TB_ALG_SM2);
	/* key id: SHA-256 of the DER SPKI, which names the SM2 curve OID */
	tb_buf_init(&b);
	assert_int_equal(tb_pub_spki(pub, &b), TB_OK);
	assert_non_null(memmem(b.data, b.len, "\x06\x08\x2a\x81\x1c\xcf\x55\x01\x82\x2d", 10));
	tb_sha256(b.data, b.len, id2);
	tb_key_id(k, id);
	assert_memory_equal(id, id2, 32);
	tb_pub_id(pub, id2);
	assert_memory_equal(id, id2, 32);
	assert_non_null(p3 = tb_pub_import_spki(b.data, b.len, &d));
	tb_pub_id(p3, id2);
	assert_memory_equal(id, id2, 32);
	tb_pub_free(p3);
	/* a point off the curve is refused */
	b.data[b.len - 1] ^= 1;
	assert_null(tb_pub_import_spki(b.data, b.len, &d));
	assert_int_equal(d.code, TB_E_KEY);
	tb_buf_free(&b);

	for (int i = 0; i < 200; i++) {
		size_t n = (size_t)i * 7 % sizeof(msg);
		assert_int_equal(tb_random(msg, sizeof(msg)), TB_OK);
		assert_int_equal(tb_key_sign(k, msg, n, sig), TB_OK);
		if (!tb_pub_verify(pub, msg, n, sig))
			fail_msg("sm2: signature %d over %zu bytes does not verify", i, n);
		assert_false(tb_pub_verify(pub2, msg, n, sig)); /* wrong key */
	}
	memcpy(msg, "tongban", 7);
	assert_int_equal(tb_key_sign(k, msg, 7, sig), TB_OK);
	assert_true(tb_pub_verify(pub, msg, 7, sig));
	for (size_t i = 0; i < TB_SIG_LEN; i++) {
		sig[i] ^= 0x10;
		if (tb_pub_verify(pub, msg, 7, sig))
			fail_msg("tampered signature byte %zu verifies", i);
		sig[i] ^= 0x10;
	}
	for (size_t i = 0; i < 7; i++) {
		msg[i] ^= 0x20;
		assert_false(tb_pub_verify(pub, msg, 7, sig));
		msg[i] ^= 0x20;
	}
	uint8_t zero[TB_SIG_LEN] = {0};
	assert_false(tb_pub_verify(pub, msg, 7, zero));

	/* key files: PKCS#8 plain and encrypted, public PEM */
	path_in_tmp(path, sizeof(path), "sm2.pem");
	path_in_tmp(epath, sizeof(epath), "sm2-enc.pem");
	assert_int_equal(tb_key_save(k, path, NULL, &d), TB_OK);
	assert_int_equal(tb_key_save(k, epath, "pw", &d), TB_OK);
	assert_non_null(l = tb_key_load(path, NULL, &d));
	tb_key_id(l, id2);
	assert_memory_equal(id, id2, 32);
	assert_int_equal(tb_key_sign(l, msg, 7, sig), TB_OK);
	assert_true(tb_pub_verify(pub, msg, 7, sig));
	tb_key_free(l);
	assert_null(tb_key_load(epath, "wrong", &d));
	assert_non_null(l = tb_key_load(epath, "pw", &d));
	tb_key_id(l, id2);
	assert_memory_equal(id, id2, 32);
	tb_key_free(l);
	tb_buf_init(&b);
	assert_int_equal(tb_pub_pem(pub, &b), TB_OK);
	assert_non_null(memmem(b.data, b.len, "-----BEGIN PUBLIC KEY-----", 26));
	path_in_tmp(path, sizeof(path), "sm2.pub");
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
	fclose(f);
	tb_buf_free(&b);
	assert_non_null(p3 = tb_pub_load(path, &d));
	assert_true(tb_pub_verify(p3, msg, 7, sig));
	tb_pub_free(p3);

	tb_pub_free(pub);
	tb_pub_free(pub2);
	tb_key_free(k);
	tb_key_free(k2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alg_names),           cmocka_unit_test(test_sha256_random),
	    cmocka_unit_test(test_sign_verify),         cmocka_unit_test(test_ed25519_rfc8032),
	    cmocka_unit_test(test_save_load),           cmocka_unit_test(test_pub_import),
	    cmocka_unit_test(test_import_unterminated), cmocka_unit_test(test_foreign_keys),
	    cmocka_unit_test(test_sm3_vectors),         cmocka_unit_test(test_sm2),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
