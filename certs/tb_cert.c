/* SPDX-License-Identifier: Apache-2.0 */
/* tb_cert.c - member certificates: parsing and accessors (GnuTLS X.509). */
#include "tb_cert.h"
#include "tb_cert_internal.h"
#include "tb_key_internal.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"

/* A PEM bundle with a long chain stays far below this; anything larger is
 * not a certificate file. */
#define CERT_FILE_MAX (1024 * 1024)

#define OID_SERIAL_NUMBER "2.5.4.5"

struct tb_cert {
	gnutls_x509_crt_t crt;
	char *subject;
	char *issuer;
	uint8_t key_id[TB_KEYID_LEN];
	uint8_t fpr[32];
};

bool
tb_member_id_ok(const char *id)
{
	if (id == NULL || strlen(id) != 6 || id[0] < '1' || id[0] > '9')
		return false;
	for (size_t i = 1; i < 6; i++)
		if (id[i] < '0' || id[i] > '9')
			return false;
	return true;
}

/* A DN as RFC 4514 text in malloc'd storage (gnutls_free'd storage does
 * not outlive the call). NULL on failure. */
static char *
dn_text(gnutls_x509_crt_t crt, bool issuer)
{
	gnutls_datum_t dn = {0};
	char *s;
	int rc = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0)
	                : gnutls_x509_crt_get_dn3(crt, &dn, 0);

	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return strdup(""); /* an empty DN is legal though useless */
	if (rc < 0)
		return NULL;
	s = malloc(dn.size + 1);
	if (s != NULL) {
		memcpy(s, dn.data, dn.size);
		s[dn.size] = '\0';
	}
	gnutls_free(dn.data);
	return s;
}

struct tb_cert *
tb_cert_wrap(gnutls_x509_crt_t crt, struct tb_diag *d)
{
	struct tb_cert *cert;
	gnutls_pubkey_t pk = NULL;
	gnutls_datum_t der = {0};

	if ((cert = calloc(1, sizeof(*cert))) == NULL) {
		gnutls_x509_crt_deinit(crt);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	cert->crt = crt;
	cert->subject = dn_text(crt, false);
	cert->issuer = dn_text(crt, true);
	if (cert->subject == NULL || cert->issuer == NULL) {
		tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "malformed certificate (unreadable DN)");
		goto fail;
	}
	/* The key id must match tb_key.h's: SHA-256 of the DER SPKI. */
	if (gnutls_pubkey_init(&pk) < 0 || gnutls_pubkey_import_x509(pk, crt, 0) < 0 ||
	    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der) < 0) {
		tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS,
		            "malformed certificate (unreadable public key)");
		goto fail;
	}
	tb_sha256(der.data, der.size, cert->key_id);
	gnutls_free(der.data);
	der.data = NULL;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0) {
		tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS,
		            "malformed certificate (cannot re-encode)");
		goto fail;
	}
	tb_sha256(der.data, der.size, cert->fpr);
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pk);
	return cert;
fail:
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pk);
	tb_cert_free(cert);
	return NULL;
}

/* The type of the first PEM block in data, e.g. "CERTIFICATE REQUEST",
 * into out; false when there is none. */
static bool
pem_label(const uint8_t *data, size_t len, char *out, size_t outlen)
{
	const uint8_t *p = memmem(data, len, "-----BEGIN ", 11), *e;
	size_t n;

	if (p == NULL)
		return false;
	p += 11;
	e = memmem(p, len - (size_t)(p - data), "-----", 5);
	if (e == NULL)
		return false;
	n = (size_t)(e - p);
	if (n >= outlen)
		n = outlen - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	out[n] = '\0';
	return true;
}

struct tb_cert *
tb_cert_import(const uint8_t *data, size_t len, struct tb_diag *d)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t dat = {(unsigned char *)data, (unsigned)len};
	char label[40];
	int rc;

	if (len > CERT_FILE_MAX) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "certificate file too large");
		return NULL;
	}
	if (len == 0) {
		tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "malformed certificate (empty file)");
		return NULL;
	}
	if (gnutls_x509_crt_init(&crt) < 0) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (pem_label(data, len, label, sizeof(label))) {
		/* Name the wrong type instead of a generic parse error: the
		 * common mistake is passing a key, CSR or CRL. */
		if (memmem(data, len, "-----BEGIN CERTIFICATE-----", 27) == NULL &&
		    memmem(data, len, "-----BEGIN X509 CERTIFICATE-----", 32) == NULL) {
			gnutls_x509_crt_deinit(crt);
			tb_diag_set(
			    d, TB_E_CERT, TB_DIAG_NOPOS,
			    "malformed certificate (the file holds a '%s', not a certificate)",
			    label);
			return NULL;
		}
		rc = gnutls_x509_crt_import(crt, &dat, GNUTLS_X509_FMT_PEM);
	} else {
		rc = gnutls_x509_crt_import(crt, &dat, GNUTLS_X509_FMT_DER);
	}
	if (rc < 0) {
		gnutls_x509_crt_deinit(crt);
		tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "malformed certificate (%s)",
		            gnutls_strerror(rc));
		return NULL;
	}
	return tb_cert_wrap(crt, d);
}

struct tb_cert *
tb_cert_load(const char *path, struct tb_diag *d)
{
	struct tb_buf b;
	struct tb_cert *cert = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, CERT_FILE_MAX, &b, d) == TB_OK) {
		cert = tb_cert_import(b.data, b.len, d);
		if (cert == NULL)
			tb_diag_prefix(d, path);
	}
	tb_buf_free(&b);
	return cert;
}

void
tb_cert_free(struct tb_cert *cert)
{
	if (cert == NULL)
		return;
	gnutls_x509_crt_deinit(cert->crt);
	free(cert->subject);
	free(cert->issuer);
	free(cert);
}

gnutls_x509_crt_t
tb_cert_gnutls(const struct tb_cert *cert)
{
	return cert->crt;
}

int
tb_cert_member_id(const struct tb_cert *cert, char out[TB_MEMBER_ID_MAX])
{
	char buf[TB_MEMBER_ID_MAX];
	size_t n = sizeof(buf);
	int rc;

	out[0] = '\0';
	rc = gnutls_x509_crt_get_dn_by_oid(cert->crt, OID_SERIAL_NUMBER, 0, 0, buf, &n);
	if (rc < 0 || n >= sizeof(buf))
		return TB_E_CERT; /* absent, or longer than any member id */
	buf[n] = '\0';
	if (!tb_member_id_ok(buf))
		return TB_E_CERT;
	memcpy(out, buf, n + 1);
	return TB_OK;
}

void
tb_cert_key_id(const struct tb_cert *cert, uint8_t out[TB_KEYID_LEN])
{
	memcpy(out, cert->key_id, TB_KEYID_LEN);
}

struct tb_pub *
tb_cert_pub(const struct tb_cert *cert, struct tb_diag *d)
{
	gnutls_pubkey_t pk;

	if (gnutls_pubkey_init(&pk) < 0) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (gnutls_pubkey_import_x509(pk, cert->crt, 0) < 0) {
		gnutls_pubkey_deinit(pk);
		tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "unreadable public key");
		return NULL;
	}
	return tb_pub_wrap(pk, d); /* refuses algorithms other than ours */
}

int64_t
tb_cert_not_before(const struct tb_cert *cert)
{
	return (int64_t)gnutls_x509_crt_get_activation_time(cert->crt);
}

int64_t
tb_cert_not_after(const struct tb_cert *cert)
{
	return (int64_t)gnutls_x509_crt_get_expiration_time(cert->crt);
}

bool
tb_cert_is_ca(const struct tb_cert *cert)
{
	unsigned critical = 0, ca = 0;
	int pathlen = -1;

	return gnutls_x509_crt_get_basic_constraints(cert->crt, &critical, &ca, &pathlen) >= 0 &&
	       ca != 0;
}

const char *
tb_cert_subject(const struct tb_cert *cert)
{
	return cert->subject;
}

const char *
tb_cert_issuer(const struct tb_cert *cert)
{
	return cert->issuer;
}

int
tb_cert_serial_hex(const struct tb_cert *cert, char out[TB_CERT_SERIAL_HEX_MAX])
{
	uint8_t ser[20];
	size_t n = sizeof(ser);

	out[0] = '\0';
	if (gnutls_x509_crt_get_serial(cert->crt, ser, &n) < 0 || n == 0 || n > 20)
		return TB_E_CERT;
	tb_hex_encode(ser, n, out);
	return TB_OK;
}

void
tb_cert_fingerprint(const struct tb_cert *cert, uint8_t out[32])
{
	memcpy(out, cert->fpr, 32);
}

const char *
tb_cert_key_desc(const struct tb_cert *cert, char *out, size_t outlen)
{
	unsigned bits = 0;
	int a = gnutls_x509_crt_get_pk_algorithm(cert->crt, &bits);
	gnutls_ecc_curve_t curve;
	gnutls_datum_t x = {0}, y = {0};

	if (outlen == 0)
		return out;
	if (a == GNUTLS_PK_EDDSA_ED25519) {
		snprintf(out, outlen, "ed25519");
	} else if (a == GNUTLS_PK_ECDSA &&
	           gnutls_x509_crt_get_pk_ecc_raw(cert->crt, &curve, &x, &y) >= 0) {
		if (curve == GNUTLS_ECC_CURVE_SECP256R1)
			snprintf(out, outlen, "p256");
		else
			snprintf(out, outlen, "ECDSA-%s", gnutls_ecc_curve_get_name(curve));
		gnutls_free(x.data);
		gnutls_free(y.data);
	} else if (a >= 0) {
		const char *name = gnutls_pk_algorithm_get_name((gnutls_pk_algorithm_t)a);
		snprintf(out, outlen, "%s-%u", name != NULL ? name : "unknown", bits);
	} else {
		snprintf(out, outlen, "unknown");
	}
	return out;
}

int
tb_cert_pem(const struct tb_cert *cert, struct tb_buf *out)
{
	gnutls_datum_t pem = {0};
	int rc;

	if (gnutls_x509_crt_export2(cert->crt, GNUTLS_X509_FMT_PEM, &pem) < 0)
		return TB_E_CERT;
	rc = tb_buf_add(out, pem.data, pem.size);
	gnutls_free(pem.data);
	return rc;
}

bool
tb_cert_is_self_signed(const struct tb_cert *cert)
{
	unsigned status = 0;

	if (strcmp(cert->subject, cert->issuer) != 0)
		return false;
	/* Time is irrelevant here: only "does its own key sign it". */
	if (gnutls_x509_crt_verify(cert->crt, &cert->crt, 1,
	                           GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
	                               GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |
	                               GNUTLS_VERIFY_ALLOW_ANY_X509_V1_CA_CRT,
	                           &status) < 0)
		return false;
	return (status & GNUTLS_CERT_SIGNATURE_FAILURE) == 0;
}
