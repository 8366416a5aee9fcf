/* SPDX-License-Identifier: Apache-2.0 */
/* tb_sm2.c - SM2/SM3 through OpenSSL 3 libcrypto's EVP interface. */
#include "tb_sm2.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_buf.h"

struct tb_sm2 {
	EVP_PKEY *pk;
	bool priv;
};

void
tb_sm3(const void *data, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	if (EVP_Digest(data, n, out, &len, EVP_sm3(), NULL) != 1 || len != 32)
		abort(); /* SM3 cannot fail short of a broken library */
}

/* Takes pk (freed on failure); NULL unless it is an SM2 key. */
static struct tb_sm2 *
wrap(EVP_PKEY *pk, bool priv, struct tb_diag *d)
{
	struct tb_sm2 *k;

	ERR_clear_error();
	if (pk == NULL) {
		tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "not an SM2 key");
		return NULL;
	}
	if (!EVP_PKEY_is_a(pk, "SM2")) {
		EVP_PKEY_free(pk);
		tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "not an SM2 key");
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		EVP_PKEY_free(pk);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	k->pk = pk;
	k->priv = priv;
	return k;
}

struct tb_sm2 *
tb_sm2_generate(struct tb_diag *d)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");

	if (pk == NULL) {
		ERR_clear_error();
		tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "SM2 key generation failed");
		return NULL;
	}
	return wrap(pk, true, d);
}

static int
pw_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pw = u;
	size_t n;

	(void)rwflag;
	if (pw == NULL)
		return -1;
	n = strlen(pw);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, pw, n);
	return (int)n;
}

struct tb_sm2 *
tb_sm2_import_key(const uint8_t *pem, size_t len, const char *password, struct tb_diag *d)
{
	BIO *bio;
	EVP_PKEY *pk;

	if (len > INT32_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, pw_cb, (void *)password);
	BIO_free(bio);
	return wrap(pk, true, d);
}

struct tb_sm2 *
tb_sm2_import_pub(const uint8_t *p, size_t len, bool der, struct tb_diag *d)
{
	EVP_PKEY *pk = NULL;

	if (len > INT32_MAX) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (der) {
		const unsigned char *q = p;
		pk = d2i_PUBKEY(NULL, &q, (long)len);
		if (pk != NULL && q != p + len) { /* trailing bytes */
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	} else {
		BIO *bio = BIO_new_mem_buf(p, (int)len);
		if (bio != NULL)
			pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (pk != NULL && EVP_PKEY_is_a(pk, "SM2")) {
		/* the point must lie on the curve */
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
		int ok = c != NULL && EVP_PKEY_public_check(c) == 1;
		EVP_PKEY_CTX_free(c);
		if (!ok) {
			EVP_PKEY_free(pk);
			ERR_clear_error();
			tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "SM2 public key not on its curve");
			return NULL;
		}
	}
	return wrap(pk, false, d);
}

struct tb_sm2 *
tb_sm2_public(const struct tb_sm2 *key)
{
	struct tb_buf b;
	struct tb_sm2 *k = NULL;

	tb_buf_init(&b);
	if (tb_sm2_spki(key, &b) == TB_OK)
		k = tb_sm2_import_pub(b.data, b.len, true, NULL);
	tb_buf_free(&b);
	return k;
}

void
tb_sm2_free(struct tb_sm2 *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pk);
	free(k);
}

bool
tb_sm2_is_private(const struct tb_sm2 *k)
{
	return k->priv;
}

/* Appends the memory BIO's contents to out and frees it. */
static int
drain(BIO *bio, int ok, struct tb_buf *out)
{
	char *p;
	long n;
	int rc = TB_E_CRYPTO;

	if (ok == 1 && (n = BIO_get_mem_data(bio, &p)) > 0)
		rc = tb_buf_add(out, p, (size_t)n);
	if (ok == 1) {
		BUF_MEM *m = NULL;
		BIO_get_mem_ptr(bio, &m);
		if (m != NULL && m->data != NULL)
			OPENSSL_cleanse(m->data, m->length);
	}
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

int
tb_sm2_pkcs8_pem(const struct tb_sm2 *key, const char *password, struct tb_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int ok;

	if (bio == NULL || !key->priv) {
		BIO_free(bio);
		return TB_E_CRYPTO;
	}
	if (password != NULL)
		ok = PEM_write_bio_PKCS8PrivateKey(bio, key->pk, EVP_aes_256_cbc(), NULL, 0, pw_cb,
		                                   (void *)password);
	else
		ok = PEM_write_bio_PKCS8PrivateKey(bio, key->pk, NULL, NULL, 0, NULL, NULL);
	return drain(bio, ok, out);
}

int
tb_sm2_spki(const struct tb_sm2 *k, struct tb_buf *out)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k->pk, &der), rc;

	if (n <= 0) {
		ERR_clear_error();
		return TB_E_CRYPTO;
	}
	rc = tb_buf_add(out, der, (size_t)n);
	OPENSSL_free(der);
	return rc;
}

int
tb_sm2_pub_pem(const struct tb_sm2 *k, struct tb_buf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());

	if (bio == NULL)
		return TB_E_NOMEM;
	return drain(bio, PEM_write_bio_PUBKEY(bio, k->pk), out);
}

/* A digest-sign/verify context: SM3, Z from the default distid (set
 * after init and before the first update: the provider refuses an id
 * among the init parameters). */
static EVP_MD_CTX *
md_ctx(const struct tb_sm2 *k, bool sign)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok;

	if (m == NULL)
		return NULL;
	if (sign)
		ok = EVP_DigestSignInit_ex(m, &pc, "SM3", NULL, NULL, k->pk, NULL);
	else
		ok = EVP_DigestVerifyInit_ex(m, &pc, "SM3", NULL, NULL, k->pk, NULL);
	if (ok == 1)
		ok = EVP_PKEY_CTX_set1_id(pc, TB_SM2_DISTID, strlen(TB_SM2_DISTID));
	if (ok != 1) {
		EVP_MD_CTX_free(m);
		ERR_clear_error();
		return NULL;
	}
	return m;
}

int
tb_sm2_sign(const struct tb_sm2 *key, const void *data, size_t n, uint8_t sig[64])
{
	EVP_MD_CTX *m;
	unsigned char der[80];
	const unsigned char *q = der;
	size_t dlen = sizeof(der);
	ECDSA_SIG *s = NULL;
	int rc = TB_E_CRYPTO;

	if (!key->priv || (m = md_ctx(key, true)) == NULL)
		return TB_E_CRYPTO;
	if (EVP_DigestSign(m, der, &dlen, data, n) != 1 ||
	    (s = d2i_ECDSA_SIG(NULL, &q, (long)dlen)) == NULL)
		goto out;
	if (BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32) == 32 &&
	    BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32) == 32)
		rc = TB_OK;
out:
	ECDSA_SIG_free(s);
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return rc;
}

bool
tb_sm2_verify(const struct tb_sm2 *k, const void *data, size_t n, const uint8_t sig[64])
{
	EVP_MD_CTX *m = NULL;
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	int dlen;
	bool ok = false;

	if (s == NULL || r == NULL || ss == NULL || ECDSA_SIG_set0(s, r, ss) != 1) {
		BN_free(r);
		BN_free(ss);
		goto out;
	}
	if ((dlen = i2d_ECDSA_SIG(s, &der)) <= 0 || (m = md_ctx(k, false)) == NULL)
		goto out;
	ok = EVP_DigestVerify(m, der, (size_t)dlen, data, n) == 1;
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(s);
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return ok;
}
