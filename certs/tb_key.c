/* SPDX-License-Identifier: Apache-2.0 */
/* tb_key.c - keys and signatures through GnuTLS's abstract key API. */
#include "tb_key.h"
#include "tb_key_internal.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "tb_sm2.h"

#define KEY_FILE_MAX (64 * 1024)

struct tb_key {
	gnutls_privkey_t pk; /* NULL for SM2 */
	struct tb_sm2 *sm;   /* SM2 only */
	enum tb_alg alg;
	uint8_t id[TB_KEYID_LEN];
};

struct tb_pub {
	gnutls_pubkey_t pk; /* NULL for SM2 */
	struct tb_sm2 *sm;  /* SM2 only */
	enum tb_alg alg;
	uint8_t id[TB_KEYID_LEN];
};

enum tb_alg
tb_alg_from_name(const char *name)
{
	if (name == NULL)
		return TB_ALG_NONE;
	if (strcmp(name, "ed25519") == 0)
		return TB_ALG_ED25519;
	if (strcmp(name, "p256") == 0)
		return TB_ALG_P256;
	if (strcmp(name, "sm2") == 0)
		return TB_ALG_SM2;
	return TB_ALG_NONE;
}

const char *
tb_alg_name(enum tb_alg alg)
{
	switch (alg) {
	case TB_ALG_ED25519: return "ed25519";
	case TB_ALG_P256: return "p256";
	case TB_ALG_SM2: return "sm2";
	default: return NULL;
	}
}

int
tb_crypto_init(void)
{
	return gnutls_global_init() < 0 ? TB_E_CRYPTO : TB_OK;
}

void
tb_sha256(const void *data, size_t n, uint8_t out[32])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, n, out) < 0)
		abort(); /* SHA-256 cannot fail short of a broken library */
}

void
tb_sm3_hash(const void *data, size_t n, uint8_t out[32])
{
	tb_sm3(data, n, out);
}

void
tb_alg_hash(enum tb_alg alg, const void *data, size_t n, uint8_t out[32])
{
	if (alg == TB_ALG_SM2)
		tb_sm3(data, n, out);
	else
		tb_sha256(data, n, out);
}

int
tb_random(void *out, size_t n)
{
	return gnutls_rnd(GNUTLS_RND_RANDOM, out, n) < 0 ? TB_E_CRYPTO : TB_OK;
}

/* Which of our algorithms a GnuTLS public key is, or TB_ALG_NONE. */
static enum tb_alg
classify(gnutls_pubkey_t pk)
{
	unsigned bits = 0;
	int a = gnutls_pubkey_get_pk_algorithm(pk, &bits);

	if (a == GNUTLS_PK_EDDSA_ED25519)
		return TB_ALG_ED25519;
	if (a == GNUTLS_PK_ECDSA) {
		gnutls_ecc_curve_t curve;
		gnutls_datum_t x = {0}, y = {0};
		if (gnutls_pubkey_export_ecc_raw2(pk, &curve, &x, &y, 0) < 0)
			return TB_ALG_NONE;
		gnutls_free(x.data);
		gnutls_free(y.data);
		return curve == GNUTLS_ECC_CURVE_SECP256R1 ? TB_ALG_P256 : TB_ALG_NONE;
	}
	return TB_ALG_NONE;
}

static int
spki_id(gnutls_pubkey_t pk, uint8_t out[TB_KEYID_LEN])
{
	gnutls_datum_t der = {0};

	if (gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der) < 0)
		return TB_E_CRYPTO;
	tb_sha256(der.data, der.size, out);
	gnutls_free(der.data);
	return TB_OK;
}

struct tb_pub *
tb_pub_wrap(gnutls_pubkey_t pk, struct tb_diag *d)
{
	struct tb_pub *pub;
	enum tb_alg alg = classify(pk);

	if (alg == TB_ALG_NONE) {
		gnutls_pubkey_deinit(pk);
		tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS,
		            "key algorithm is none of Ed25519, P-256, SM2");
		return NULL;
	}
	if ((pub = calloc(1, sizeof(*pub))) == NULL) {
		gnutls_pubkey_deinit(pk);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	pub->pk = pk;
	pub->alg = alg;
	if (spki_id(pk, pub->id) != TB_OK) {
		tb_pub_free(pub);
		tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot export public key");
		return NULL;
	}
	return pub;
}

struct tb_key *
tb_key_wrap(gnutls_privkey_t pk, struct tb_diag *d)
{
	struct tb_key *key;
	gnutls_pubkey_t pub = NULL;
	enum tb_alg alg;

	if (gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, pk, 0, 0) < 0) {
		gnutls_pubkey_deinit(pub);
		gnutls_privkey_deinit(pk);
		tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "cannot derive the public key");
		return NULL;
	}
	alg = classify(pub);
	if (alg == TB_ALG_NONE) {
		gnutls_pubkey_deinit(pub);
		gnutls_privkey_deinit(pk);
		tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS,
		            "key algorithm is none of Ed25519, P-256, SM2");
		return NULL;
	}
	if ((key = calloc(1, sizeof(*key))) == NULL) {
		gnutls_pubkey_deinit(pub);
		gnutls_privkey_deinit(pk);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	key->pk = pk;
	key->alg = alg;
	if (spki_id(pub, key->id) != TB_OK) {
		gnutls_pubkey_deinit(pub);
		tb_key_free(key);
		tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot export public key");
		return NULL;
	}
	gnutls_pubkey_deinit(pub);
	return key;
}

/* An SM2 key or public key in our objects; takes sm (freed on failure).
 * The key id is SHA-256 over the SPKI DER, as for the other algorithms. */
static struct tb_key *
sm2_key(struct tb_sm2 *sm, struct tb_diag *d)
{
	struct tb_key *key;
	struct tb_buf b;

	if (sm == NULL)
		return NULL;
	if ((key = calloc(1, sizeof(*key))) == NULL) {
		tb_sm2_free(sm);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	key->sm = sm;
	key->alg = TB_ALG_SM2;
	tb_buf_init(&b);
	if (tb_sm2_spki(sm, &b) != TB_OK) {
		tb_buf_free(&b);
		tb_key_free(key);
		tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot export public key");
		return NULL;
	}
	tb_sha256(b.data, b.len, key->id);
	tb_buf_free(&b);
	return key;
}

static struct tb_pub *
sm2_pub(struct tb_sm2 *sm, struct tb_diag *d)
{
	struct tb_pub *pub;
	struct tb_buf b;

	if (sm == NULL)
		return NULL;
	if ((pub = calloc(1, sizeof(*pub))) == NULL) {
		tb_sm2_free(sm);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	pub->sm = sm;
	pub->alg = TB_ALG_SM2;
	tb_buf_init(&b);
	if (tb_sm2_spki(sm, &b) != TB_OK) {
		tb_buf_free(&b);
		tb_pub_free(pub);
		tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot export public key");
		return NULL;
	}
	tb_sha256(b.data, b.len, pub->id);
	tb_buf_free(&b);
	return pub;
}

gnutls_privkey_t
tb_key_gnutls(const struct tb_key *key)
{
	return key->pk;
}

gnutls_pubkey_t
tb_pub_gnutls(const struct tb_pub *pub)
{
	return pub->pk;
}

struct tb_key *
tb_key_generate(enum tb_alg alg, struct tb_diag *d)
{
	gnutls_privkey_t pk;
	int rc;

	if (alg == TB_ALG_SM2)
		return sm2_key(tb_sm2_generate(d), d);
	if (gnutls_privkey_init(&pk) < 0) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (alg == TB_ALG_ED25519)
		rc = gnutls_privkey_generate2(pk, GNUTLS_PK_EDDSA_ED25519, 256, 0, NULL, 0);
	else if (alg == TB_ALG_P256)
		rc = gnutls_privkey_generate2(pk, GNUTLS_PK_ECDSA,
		                              GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0,
		                              NULL, 0);
	else
		rc = GNUTLS_E_INVALID_REQUEST;
	if (rc < 0) {
		gnutls_privkey_deinit(pk);
		tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "key generation failed: %s",
		            gnutls_strerror(rc));
		return NULL;
	}
	return tb_key_wrap(pk, d);
}

struct tb_key *
tb_key_import(const uint8_t *pem, size_t len, const char *password, struct tb_diag *d)
{
	gnutls_privkey_t pk;
	gnutls_datum_t dat = {(unsigned char *)pem, (unsigned)len};
	int rc;

	if (len > KEY_FILE_MAX) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "key file too large");
		return NULL;
	}
	if (gnutls_privkey_init(&pk) < 0) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	rc = gnutls_privkey_import_x509_raw(pk, &dat, GNUTLS_X509_FMT_PEM, password, 0);
	if (rc < 0) {
		struct tb_sm2 *sm;
		gnutls_privkey_deinit(pk);
		/* GnuTLS knows no SM2 curve: an SM2 key is OpenSSL's */
		if ((sm = tb_sm2_import_key(pem, len, password, NULL)) != NULL)
			return sm2_key(sm, d);
		/* no password given is not a wrong one (GnuTLS says "decryption
		 * failed" for both) */
		if (password == NULL &&
		    (rc == GNUTLS_E_INVALID_PASSWORD || memmem(pem, len, "ENCRYPTED", 9) != NULL))
			tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS,
			            "key is encrypted: a password is needed (--pass-file FILE)");
		else if (rc == GNUTLS_E_DECRYPTION_FAILED)
			tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "wrong password for encrypted key");
		else
			tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "not a PEM private key (%s)",
			            gnutls_strerror(rc));
		return NULL;
	}
	return tb_key_wrap(pk, d);
}

struct tb_key *
tb_key_load(const char *path, const char *password, struct tb_diag *d)
{
	struct tb_buf b;
	struct tb_key *key = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, KEY_FILE_MAX, &b, d) == TB_OK) {
		key = tb_key_import(b.data, b.len, password, d);
		if (key == NULL)
			tb_diag_prefix(d, path);
	}
	tb_buf_wipe(&b);
	return key;
}

int
tb_key_save(const struct tb_key *key, const char *path, const char *password, struct tb_diag *d)
{
	gnutls_x509_privkey_t xk = NULL;
	gnutls_datum_t out = {0};
	int rc;

	if (key->sm != NULL) {
		struct tb_buf b;
		tb_buf_init(&b);
		rc = tb_sm2_pkcs8_pem(key->sm, password, &b);
		if (rc != TB_OK)
			rc = tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot encode key");
		else
			rc = tb_file_write(path, b.data, b.len, 0600, 1, d);
		tb_buf_wipe(&b);
		return rc;
	}
	if (gnutls_privkey_export_x509(key->pk, &xk) < 0)
		return tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot export key");
	rc = gnutls_x509_privkey_export2_pkcs8(
	    xk, GNUTLS_X509_FMT_PEM, password,
	    password ? GNUTLS_PKCS_PBES2_AES_256 : GNUTLS_PKCS_PLAIN, &out);
	gnutls_x509_privkey_deinit(xk);
	if (rc < 0)
		return tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot encode key: %s",
		                   gnutls_strerror(rc));
	rc = tb_file_write(path, out.data, out.size, 0600, 1, d);
	gnutls_memset(out.data, 0, out.size);
	gnutls_free(out.data);
	return rc;
}

void
tb_key_free(struct tb_key *key)
{
	if (key == NULL)
		return;
	if (key->pk != NULL)
		gnutls_privkey_deinit(key->pk);
	tb_sm2_free(key->sm);
	gnutls_memset(key, 0, sizeof(*key));
	free(key);
}

enum tb_alg
tb_key_alg(const struct tb_key *key)
{
	return key->alg;
}

void
tb_key_id(const struct tb_key *key, uint8_t out[TB_KEYID_LEN])
{
	memcpy(out, key->id, TB_KEYID_LEN);
}

struct tb_pub *
tb_key_pub(const struct tb_key *key)
{
	gnutls_pubkey_t pk;

	if (key->sm != NULL)
		return sm2_pub(tb_sm2_public(key->sm), NULL);
	if (gnutls_pubkey_init(&pk) < 0)
		return NULL;
	if (gnutls_pubkey_import_privkey(pk, key->pk, 0, 0) < 0) {
		gnutls_pubkey_deinit(pk);
		return NULL;
	}
	return tb_pub_wrap(pk, NULL);
}

/* Copies a big-endian integer into a fixed 32-byte field, dropping a DER
 * sign byte and left-padding with zeros. */
static int
fixed32(const gnutls_datum_t *v, uint8_t out[32])
{
	const unsigned char *p = v->data;
	size_t n = v->size;

	while (n > 32 && *p == 0) {
		p++;
		n--;
	}
	if (n > 32)
		return -1;
	memset(out, 0, 32 - n);
	memcpy(out + 32 - n, p, n);
	return 0;
}

int
tb_key_sign(const struct tb_key *key, const void *data, size_t n, uint8_t sig[TB_SIG_LEN])
{
	gnutls_datum_t in = {(unsigned char *)data, (unsigned)n}, s = {0};
	int rc = TB_E_CRYPTO;

	if (key->alg == TB_ALG_SM2)
		return tb_sm2_sign(key->sm, data, n, sig);
	if (key->alg == TB_ALG_ED25519) {
		if (gnutls_privkey_sign_data2(key->pk, GNUTLS_SIGN_EDDSA_ED25519, 0, &in, &s) < 0)
			return TB_E_CRYPTO;
		if (s.size == TB_SIG_LEN) {
			memcpy(sig, s.data, TB_SIG_LEN);
			rc = TB_OK;
		}
	} else {
		gnutls_datum_t r = {0}, ss = {0};
		if (gnutls_privkey_sign_data2(key->pk, GNUTLS_SIGN_ECDSA_SHA256, 0, &in, &s) < 0)
			return TB_E_CRYPTO;
		if (gnutls_decode_rs_value(&s, &r, &ss) >= 0 && fixed32(&r, sig) == 0 &&
		    fixed32(&ss, sig + 32) == 0)
			rc = TB_OK;
		gnutls_free(r.data);
		gnutls_free(ss.data);
	}
	gnutls_free(s.data);
	return rc;
}

struct tb_pub *
tb_pub_import(const uint8_t *pem, size_t len, struct tb_diag *d)
{
	gnutls_pubkey_t pk;
	gnutls_datum_t dat = {(unsigned char *)pem, (unsigned)len};

	if (len > KEY_FILE_MAX) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "public key file too large");
		return NULL;
	}
	if (gnutls_pubkey_init(&pk) < 0) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (memmem(pem, len, "-----BEGIN CERTIFICATE-----", 27) != NULL) {
		gnutls_x509_crt_t crt;
		int rc;
		if (gnutls_x509_crt_init(&crt) < 0) {
			gnutls_pubkey_deinit(pk);
			tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
			return NULL;
		}
		rc = gnutls_x509_crt_import(crt, &dat, GNUTLS_X509_FMT_PEM);
		if (rc >= 0)
			rc = gnutls_pubkey_import_x509(pk, crt, 0);
		gnutls_x509_crt_deinit(crt);
		if (rc < 0) {
			gnutls_pubkey_deinit(pk);
			tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "malformed certificate (%s)",
			            gnutls_strerror(rc));
			return NULL;
		}
	} else if (gnutls_pubkey_import(pk, &dat, GNUTLS_X509_FMT_PEM) < 0) {
		struct tb_sm2 *sm;
		gnutls_pubkey_deinit(pk);
		if ((sm = tb_sm2_import_pub(pem, len, false, NULL)) != NULL)
			return sm2_pub(sm, d);
		tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "not a PEM public key or certificate");
		return NULL;
	}
	return tb_pub_wrap(pk, d);
}

struct tb_pub *
tb_pub_import_spki(const uint8_t *der, size_t len, struct tb_diag *d)
{
	gnutls_pubkey_t pk;
	gnutls_datum_t dat = {(unsigned char *)der, (unsigned)len};

	if (gnutls_pubkey_init(&pk) < 0) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	/* the parameters too: an ECC point must lie on its curve */
	if (gnutls_pubkey_import(pk, &dat, GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_pubkey_verify_params(pk) < 0) {
		struct tb_sm2 *sm;
		gnutls_pubkey_deinit(pk);
		if ((sm = tb_sm2_import_pub(der, len, true, NULL)) != NULL)
			return sm2_pub(sm, d);
		tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "malformed SubjectPublicKeyInfo");
		return NULL;
	}
	return tb_pub_wrap(pk, d);
}

struct tb_pub *
tb_pub_load(const char *path, struct tb_diag *d)
{
	struct tb_buf b;
	struct tb_pub *pub = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, KEY_FILE_MAX, &b, d) == TB_OK) {
		pub = tb_pub_import(b.data, b.len, d);
		if (pub == NULL)
			tb_diag_prefix(d, path);
	}
	tb_buf_free(&b);
	return pub;
}

void
tb_pub_free(struct tb_pub *pub)
{
	if (pub == NULL)
		return;
	if (pub->pk != NULL)
		gnutls_pubkey_deinit(pub->pk);
	tb_sm2_free(pub->sm);
	free(pub);
}

enum tb_alg
tb_pub_alg(const struct tb_pub *pub)
{
	return pub->alg;
}

void
tb_pub_id(const struct tb_pub *pub, uint8_t out[TB_KEYID_LEN])
{
	memcpy(out, pub->id, TB_KEYID_LEN);
}

int
tb_pub_spki(const struct tb_pub *pub, struct tb_buf *out)
{
	gnutls_datum_t der = {0};
	int rc;

	if (pub->sm != NULL)
		return tb_sm2_spki(pub->sm, out);
	if (gnutls_pubkey_export2(pub->pk, GNUTLS_X509_FMT_DER, &der) < 0)
		return TB_E_CRYPTO;
	rc = tb_buf_add(out, der.data, der.size);
	gnutls_free(der.data);
	return rc;
}

int
tb_pub_pem(const struct tb_pub *pub, struct tb_buf *out)
{
	gnutls_datum_t pem = {0};
	int rc;

	if (pub->sm != NULL)
		return tb_sm2_pub_pem(pub->sm, out);
	if (gnutls_pubkey_export2(pub->pk, GNUTLS_X509_FMT_PEM, &pem) < 0)
		return TB_E_CRYPTO;
	rc = tb_buf_add(out, pem.data, pem.size);
	gnutls_free(pem.data);
	return rc;
}

bool
tb_pub_verify(const struct tb_pub *pub, const void *data, size_t n, const uint8_t sig[TB_SIG_LEN])
{
	gnutls_datum_t in = {(unsigned char *)data, (unsigned)n};

	if (pub->alg == TB_ALG_SM2)
		return tb_sm2_verify(pub->sm, data, n, sig);
	if (pub->alg == TB_ALG_ED25519) {
		gnutls_datum_t s = {(unsigned char *)sig, TB_SIG_LEN};
		return gnutls_pubkey_verify_data2(pub->pk, GNUTLS_SIGN_EDDSA_ED25519, 0, &in, &s) >=
		       0;
	} else {
		gnutls_datum_t r = {(unsigned char *)sig, 32}, s = {(unsigned char *)sig + 32, 32};
		gnutls_datum_t der = {0};
		bool ok;
		if (gnutls_encode_rs_value(&der, &r, &s) < 0)
			return false;
		ok = gnutls_pubkey_verify_data2(pub->pk, GNUTLS_SIGN_ECDSA_SHA256, 0, &in, &der) >=
		     0;
		gnutls_free(der.data);
		return ok;
	}
}
