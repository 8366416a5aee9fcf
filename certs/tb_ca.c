/* SPDX-License-Identifier: Apache-2.0 */
/* tb_ca.c - CAs, CSRs, CRLs and chain validation over GnuTLS's X.509 API. */
#include "tb_ca.h"
#include "tb_cert_internal.h"
#include "tb_key_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"

#define OID_SERIAL_NUMBER "2.5.4.5"
#define OID_CN "2.5.4.3"
#define OID_O "2.5.4.10"
#define OID_EKU_ANY "2.5.29.37.0"
#define SERIAL_LEN 16
#define CSR_FILE_MAX (64 * 1024)
#define CRL_FILE_MAX (16 * 1024 * 1024)
#define INDEX_MAX (64 * 1024 * 1024)
#define NAME_MAX_LEN 64 /* RFC 5280 ub-common-name */
#define PATH_DEPTH_MAX 8
/* Backdate notBefore a little so a peer whose clock lags does not see a
 * fresh certificate as not yet valid. */
#define BACKDATE 300

struct tb_ca {
	char *dir;
	struct tb_key *key;
	struct tb_cert *cert;
};

struct tb_csr {
	gnutls_x509_crq_t crq;
	char id[TB_MEMBER_ID_MAX];
	char *subject;
};

struct tb_crl {
	gnutls_x509_crl_t crl;
};

struct tb_castore {
	gnutls_x509_crt_t *cas;
	size_t ncas;
	gnutls_x509_crl_t *crls;
	size_t ncrls;
};

/* ---- small helpers ---- */

static char *
path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static gnutls_digest_algorithm_t
dig_for(const struct tb_key *key)
{
	/* Ed25519 signs with its own hash (GnuTLS names it SHA-512). */
	return tb_key_alg(key) == TB_ALG_ED25519 ? GNUTLS_DIG_SHA512 : GNUTLS_DIG_SHA256;
}

static void
fmt_time(int64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "@%lld", (long long)t);
}

/* Names travel in DNs and in the index: printable, no tabs or newlines. */
static bool
name_ok(const char *s)
{
	size_t n = s == NULL ? 0 : strlen(s);

	if (n == 0 || n > NAME_MAX_LEN * 4)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static int
random_serial(uint8_t out[SERIAL_LEN])
{
	if (tb_random(out, SERIAL_LEN) != TB_OK)
		return TB_E_CRYPTO;
	out[0] &= 0x7f; /* DER INTEGER: positive */
	if (out[0] == 0)
		out[0] = 0x01; /* and no leading zero octet to be stripped */
	return TB_OK;
}

static gnutls_x509_crt_t
crt_dup(gnutls_x509_crt_t src)
{
	gnutls_x509_crt_t c = NULL;
	gnutls_datum_t der = {0};

	if (gnutls_x509_crt_export2(src, GNUTLS_X509_FMT_DER, &der) < 0)
		return NULL;
	if (gnutls_x509_crt_init(&c) < 0 ||
	    gnutls_x509_crt_import(c, &der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(c);
		c = NULL;
	}
	gnutls_free(der.data);
	return c;
}

static gnutls_x509_crl_t
crl_dup(gnutls_x509_crl_t src)
{
	gnutls_x509_crl_t c = NULL;
	gnutls_datum_t der = {0};

	if (gnutls_x509_crl_export2(src, GNUTLS_X509_FMT_DER, &der) < 0)
		return NULL;
	if (gnutls_x509_crl_init(&c) < 0 ||
	    gnutls_x509_crl_import(c, &der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crl_deinit(c);
		c = NULL;
	}
	gnutls_free(der.data);
	return c;
}

/* Sets subjectKeyIdentifier from the certified key and, when issuer is
 * given, authorityKeyIdentifier from the issuer's: openssl and GnuTLS both
 * use them to pick the issuer when names repeat across key rotations. */
static int
set_key_ids(gnutls_x509_crt_t crt, gnutls_pubkey_t pk, gnutls_x509_crt_t issuer)
{
	unsigned char id[64];
	size_t n = sizeof(id);
	unsigned crit = 0;

	if (gnutls_pubkey_get_key_id(pk, GNUTLS_KEYID_USE_SHA1, id, &n) < 0 ||
	    gnutls_x509_crt_set_subject_key_id(crt, id, n) < 0)
		return TB_E_CRYPTO;
	if (issuer == NULL)
		return TB_OK;
	n = sizeof(id);
	if (gnutls_x509_crt_get_subject_key_id(issuer, id, &n, &crit) >= 0 &&
	    gnutls_x509_crt_set_authority_key_id(crt, id, n) < 0)
		return TB_E_CRYPTO;
	return TB_OK;
}

/* Appends the PEM of crt to out. */
static int
crt_pem(gnutls_x509_crt_t crt, struct tb_buf *out)
{
	gnutls_datum_t pem = {0};
	int rc;

	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) < 0)
		return TB_E_CRYPTO;
	rc = tb_buf_add(out, pem.data, pem.size);
	gnutls_free(pem.data);
	return rc;
}

/* ---- endpoints ---- */

int
tb_endpoint_parse(const char *uri, char *host, size_t hostlen, unsigned *port)
{
	static const char scheme[] = "coaps://";
	const char *h, *colon, *end;
	char *e;
	unsigned long p;
	size_t n;

	if (uri == NULL || strncmp(uri, scheme, sizeof(scheme) - 1) != 0)
		return TB_E_ARG;
	h = uri + sizeof(scheme) - 1;
	if (*h == '[') {
		end = strchr(h, ']');
		if (end == NULL || end[1] != ':')
			return TB_E_ARG;
		h++;
		colon = end + 1;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL)
			return TB_E_ARG;
		end = colon;
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= hostlen)
		return TB_E_ARG;
	if (colon[1] < '0' || colon[1] > '9')
		return TB_E_ARG;
	errno = 0;
	p = strtoul(colon + 1, &e, 10);
	if (errno != 0 || *e != '\0' || p == 0 || p > 65535)
		return TB_E_ARG;
	memcpy(host, h, n);
	host[n] = '\0';
	if (uri[sizeof(scheme) - 1] == '[') {
		unsigned char a6[16];
		if (inet_pton(AF_INET6, host, a6) != 1)
			return TB_E_ARG;
	} else {
		/* A DNS name (LDH labels) or dotted IPv4. */
		for (size_t i = 0; i < n; i++) {
			char c = host[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '.'))
				return TB_E_ARG;
		}
		if (host[0] == '.' || host[0] == '-' || strstr(host, "..") != NULL)
			return TB_E_ARG;
	}
	*port = (unsigned)p;
	return TB_OK;
}

/* ---- the index ---- */

struct idx_ent {
	char status; /* 'V' or 'R' */
	char serial[TB_CERT_SERIAL_HEX_MAX];
	char id[TB_MEMBER_ID_MAX];
	long long not_after;
	long long revoked_at; /* -1 while valid */
	char reason[32];
	char subject[512];
};

struct idx {
	struct idx_ent *e;
	size_t n;
};

static void
idx_free(struct idx *ix)
{
	free(ix->e);
	ix->e = NULL;
	ix->n = 0;
}

/* Copies field f (up to a tab or end) into out; false when it does not fit. */
static bool
field(const char **p, char *out, size_t outlen)
{
	const char *s = *p, *t = strchr(s, '\t');
	size_t n = t != NULL ? (size_t)(t - s) : strlen(s);

	if (n >= outlen)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = t != NULL ? t + 1 : s + n;
	return true;
}

static int
idx_load(const struct tb_ca *ca, struct idx *ix, struct tb_diag *d)
{
	struct tb_buf b;
	char *path = path_join(ca->dir, "index.txt");
	char *line, *save = NULL;
	size_t lineno = 0;
	int rc = TB_OK;

	ix->e = NULL;
	ix->n = 0;
	tb_buf_init(&b);
	if (path == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	if ((rc = tb_file_read(path, INDEX_MAX, &b, d)) != TB_OK)
		goto out;
	for (line = strtok_r(b.data ? (char *)b.data : (char *)"", "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		struct idx_ent e, *ne;
		char na[24], ra[24];
		const char *p = line;

		lineno++;
		memset(&e, 0, sizeof(e));
		if (!(line[0] == 'V' || line[0] == 'R') || line[1] != '\t')
			goto bad;
		e.status = line[0];
		p = line + 2;
		if (!field(&p, e.serial, sizeof(e.serial)) || !field(&p, e.id, sizeof(e.id)) ||
		    !field(&p, na, sizeof(na)) || !field(&p, ra, sizeof(ra)) ||
		    !field(&p, e.reason, sizeof(e.reason)) ||
		    !field(&p, e.subject, sizeof(e.subject)))
			goto bad;
		e.not_after = strtoll(na, NULL, 10);
		e.revoked_at = strcmp(ra, "-") == 0 ? -1 : strtoll(ra, NULL, 10);
		if ((ne = realloc(ix->e, (ix->n + 1) * sizeof(*ne))) == NULL) {
			rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
			goto out;
		}
		ix->e = ne;
		ix->e[ix->n++] = e;
		continue;
	bad:
		rc = tb_diag_set(d, TB_E_CA_STATE, TB_DIAG_NOPOS, "%s:%zu: malformed index line",
		                 path, lineno);
		goto out;
	}
out:
	if (rc != TB_OK)
		idx_free(ix);
	tb_buf_free(&b);
	free(path);
	return rc;
}

static int
idx_save(const struct tb_ca *ca, const struct idx *ix, struct tb_diag *d)
{
	struct tb_buf b;
	char *path = path_join(ca->dir, "index.txt");
	int rc = TB_OK;

	tb_buf_init(&b);
	if (path == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	tb_buf_adds(&b, ""); /* an empty index is an empty file, not a missing one */
	for (size_t i = 0; i < ix->n && rc == TB_OK; i++) {
		const struct idx_ent *e = &ix->e[i];
		char ra[24] = "-";
		if (e->revoked_at >= 0)
			snprintf(ra, sizeof(ra), "%lld", e->revoked_at);
		rc = tb_buf_printf(&b, "%c\t%s\t%s\t%lld\t%s\t%s\t%s\n", e->status, e->serial,
		                   e->id, e->not_after, ra, e->reason, e->subject);
	}
	if (rc != TB_OK)
		rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	else
		rc =
		    tb_file_write(path, b.data != NULL ? b.data : (uint8_t *)"", b.len, 0644, 0, d);
	tb_buf_free(&b);
	free(path);
	return rc;
}

/* Records a freshly issued certificate. */
static int
idx_append(const struct tb_ca *ca, const struct tb_cert *cert, struct tb_diag *d)
{
	struct idx ix;
	struct idx_ent e, *ne;
	int rc;

	memset(&e, 0, sizeof(e));
	e.status = 'V';
	if (tb_cert_serial_hex(cert, e.serial) != TB_OK)
		return tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "unreadable serial");
	if (tb_cert_member_id(cert, e.id) != TB_OK)
		snprintf(e.id, sizeof(e.id), "-");
	e.not_after = (long long)tb_cert_not_after(cert);
	e.revoked_at = -1;
	snprintf(e.reason, sizeof(e.reason), "-");
	snprintf(e.subject, sizeof(e.subject), "%s", tb_cert_subject(cert));
	for (char *p = e.subject; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?'; /* keeps one record per line */
	if ((rc = idx_load(ca, &ix, d)) != TB_OK)
		return rc;
	if ((ne = realloc(ix.e, (ix.n + 1) * sizeof(*ne))) == NULL) {
		idx_free(&ix);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	ix.e = ne;
	ix.e[ix.n++] = e;
	rc = idx_save(ca, &ix, d);
	idx_free(&ix);
	return rc;
}

/* ---- certificate authorities ---- */

void
tb_ca_free(struct tb_ca *ca)
{
	if (ca == NULL)
		return;
	tb_key_free(ca->key); /* wipes */
	tb_cert_free(ca->cert);
	free(ca->dir);
	free(ca);
}

const struct tb_cert *
tb_ca_cert(const struct tb_ca *ca)
{
	return ca->cert;
}

struct tb_ca *
tb_ca_open(const char *dir, const char *password, struct tb_diag *d)
{
	struct tb_ca *ca;
	char *kp = NULL, *cp = NULL;
	uint8_t kid[TB_KEYID_LEN], cid[TB_KEYID_LEN];

	if ((ca = calloc(1, sizeof(*ca))) == NULL || (ca->dir = strdup(dir)) == NULL ||
	    (kp = path_join(dir, "ca.key")) == NULL || (cp = path_join(dir, "ca.crt")) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		goto fail;
	}
	if ((ca->cert = tb_cert_load(cp, d)) == NULL)
		goto fail;
	if ((ca->key = tb_key_load(kp, password, d)) == NULL)
		goto fail;
	tb_key_id(ca->key, kid);
	tb_cert_key_id(ca->cert, cid);
	if (!tb_ct_equal(kid, cid, TB_KEYID_LEN)) {
		tb_diag_set(d, TB_E_CA_STATE, TB_DIAG_NOPOS, "%s: ca.key does not match ca.crt",
		            dir);
		goto fail;
	}
	if (!tb_cert_is_ca(ca->cert)) {
		tb_diag_set(d, TB_E_CA_STATE, TB_DIAG_NOPOS, "%s: ca.crt is not a CA certificate",
		            dir);
		goto fail;
	}
	free(kp);
	free(cp);
	return ca;
fail:
	free(kp);
	free(cp);
	tb_ca_free(ca);
	return NULL;
}

/* Puts the subject "[O=org,] CN=name[, serialNumber=id]" on a certificate
 * or request (RDNs in that order, so RFC 4514 text reads id first). */
typedef int (*set_dn_fn)(void *obj, const char *oid, unsigned raw, const void *v, unsigned n);

static int
set_dn(set_dn_fn set, void *obj, const char *org, const char *name, const char *id)
{
	int rc = 0;

	if (org != NULL)
		rc = set(obj, OID_O, 0, org, (unsigned)strlen(org));
	if (rc >= 0)
		rc = set(obj, OID_CN, 0, name, (unsigned)strlen(name));
	if (rc >= 0 && id != NULL)
		rc = set(obj, OID_SERIAL_NUMBER, 0, id, (unsigned)strlen(id));
	return rc;
}

static int
crt_set_dn(void *obj, const char *oid, unsigned raw, const void *v, unsigned n)
{
	return gnutls_x509_crt_set_dn_by_oid(obj, oid, raw, v, n);
}

static int
crq_set_dn(void *obj, const char *oid, unsigned raw, const void *v, unsigned n)
{
	return gnutls_x509_crq_set_dn_by_oid(obj, oid, raw, v, n);
}

/* Fills and signs a new CA certificate (parent NULL: self-signed);
 * GnuTLS's result. */
static int
build_ca_crt(gnutls_x509_crt_t crt, const struct tb_ca_spec *spec, struct tb_key *key,
             struct tb_pub *pub, struct tb_ca *parent, const uint8_t *serial, time_t now,
             int64_t until)
{
	int rc = 0;

	if (rc >= 0)
		rc = gnutls_x509_crt_set_version(crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(crt, serial, SERIAL_LEN);
	if (rc >= 0)
		rc = set_dn(crt_set_dn, crt, NULL, spec->name, spec->id);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_pubkey(crt, tb_pub_gnutls(pub));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(crt, now - BACKDATE);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_expiration_time(crt, (time_t)until);
	/* Province CAs sign only nodes (pathLen 0); the root is unbounded so a
	 * deeper hierarchy stays possible without re-keying it. */
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 1, parent != NULL ? 0 : -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt,
		                                   GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	if (rc >= 0)
		rc = set_key_ids(crt, tb_pub_gnutls(pub),
		                 parent != NULL ? tb_cert_gnutls(parent->cert) : NULL);
	if (rc >= 0) {
		if (parent != NULL)
			rc = gnutls_x509_crt_privkey_sign(crt, tb_cert_gnutls(parent->cert),
			                                  tb_key_gnutls(parent->key),
			                                  dig_for(parent->key), 0);
		else
			rc = gnutls_x509_crt_privkey_sign(crt, crt, tb_key_gnutls(key),
			                                  dig_for(key), 0);
	}
	return rc;
}

int
tb_ca_create(const char *dir, const struct tb_ca_spec *spec, const char *password,
             struct tb_ca *parent, struct tb_diag *d)
{
	struct tb_key *key = NULL;
	struct tb_pub *pub = NULL;
	struct tb_cert *cert = NULL;
	gnutls_x509_crt_t crt = NULL;
	struct tb_buf pem;
	char *kp = NULL, *cp = NULL, *ip = NULL, *np = NULL;
	uint8_t serial[SERIAL_LEN];
	time_t now = time(NULL);
	int64_t until;
	int rc;

	tb_buf_init(&pem);
	if (spec->alg == TB_ALG_SM2)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                   "a CA key cannot be sm2 (GnuTLS reads no SM2 certificates; "
		                   "use p256 or ed25519, and sm2 for message and registry keys)");
	if (!name_ok(spec->name) || strlen(spec->name) > NAME_MAX_LEN)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                   "name must be 1-%d printable characters", NAME_MAX_LEN);
	if (spec->id != NULL && !tb_member_id_ok(spec->id))
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                   "id '%s' is not a member id (six digits, first 1-9)", spec->id);
	if (spec->days == 0 || spec->days > 36500)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "days must be 1-36500");
	if ((kp = path_join(dir, "ca.key")) == NULL || (cp = path_join(dir, "ca.crt")) == NULL ||
	    (ip = path_join(dir, "index.txt")) == NULL ||
	    (np = path_join(dir, "crlnumber")) == NULL) {
		rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		goto fail;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	{
		struct stat st;
		if (stat(kp, &st) == 0 || stat(cp, &st) == 0) {
			rc = tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS,
			                 "%s already holds a CA; refusing to overwrite it", dir);
			goto fail;
		}
	}
	if ((key = tb_key_generate(spec->alg, d)) == NULL || (pub = tb_key_pub(key)) == NULL) {
		rc = d != NULL && d->code != TB_OK ? d->code : TB_E_CRYPTO;
		goto fail;
	}
	until = (int64_t)now + (int64_t)spec->days * 86400;
	/* A CA cannot outlive its issuer: clamp rather than refuse, since the
	 * default periods are meant to fit. */
	if (parent != NULL && until > tb_cert_not_after(parent->cert))
		until = tb_cert_not_after(parent->cert);
	if (random_serial(serial) != TB_OK) {
		rc = tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "no randomness");
		goto fail;
	}
	rc = gnutls_x509_crt_init(&crt);
	if (rc >= 0)
		rc = build_ca_crt(crt, spec, key, pub, parent, serial, now, until);
	if (rc < 0) {
		rc = tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS,
		                 "cannot build the CA certificate: %s", gnutls_strerror(rc));
		goto fail;
	}
	if ((rc = crt_pem(crt, &pem)) != TB_OK) {
		tb_diag_set(d, rc, TB_DIAG_NOPOS, "cannot encode the CA certificate");
		goto fail;
	}
	if ((cert = tb_cert_wrap(crt, d)) == NULL) {
		crt = NULL;
		rc = TB_E_CERT;
		goto fail;
	}
	crt = NULL;
	/* The key first: a certificate without its key is useless, a key
	 * without its certificate can be certified again. */
	if ((rc = tb_key_save(key, kp, password, d)) != TB_OK)
		goto fail;
	if ((rc = tb_file_write(cp, pem.data, pem.len, 0644, 1, d)) != TB_OK ||
	    (rc = tb_file_write(ip, "", 0, 0644, 1, d)) != TB_OK ||
	    (rc = tb_file_write(np, "0\n", 2, 0644, 1, d)) != TB_OK)
		goto fail;
	if (parent != NULL && (rc = idx_append(parent, cert, d)) != TB_OK)
		goto fail;
	rc = TB_OK;
fail:
	tb_cert_free(cert);
	gnutls_x509_crt_deinit(crt);
	tb_pub_free(pub);
	tb_key_free(key);
	tb_buf_free(&pem);
	free(kp);
	free(cp);
	free(ip);
	free(np);
	return rc;
}

void
tb_ca_division(const struct tb_ca *ca, char out[TB_MEMBER_ID_MAX])
{
	size_t n;

	if (tb_cert_member_id(ca->cert, out) != TB_OK) {
		out[0] = '\0';
		return;
	}
	n = strlen(out);
	while (n >= 2 && out[n - 1] == '0' && out[n - 2] == '0')
		n -= 2;
	out[n] = '\0';
}

int
tb_ca_check_request(const struct tb_ca *ca, const struct tb_csr *csr, struct tb_diag *d)
{
	char div[TB_MEMBER_ID_MAX], own[TB_MEMBER_ID_MAX];

	tb_ca_division(ca, div);
	if (strncmp(csr->id, div, strlen(div)) == 0)
		return TB_OK;
	if (tb_cert_member_id(ca->cert, own) != TB_OK)
		own[0] = '\0';
	return tb_diag_set(d, TB_E_CA_PREFIX, TB_DIAG_NOPOS,
	                   "this CA (%s) issues only member ids %s*, not %s; send the request "
	                   "to the CA of %s's province",
	                   own, div, csr->id, csr->id);
}

int
tb_ca_check_until(const struct tb_ca *ca, int64_t until, struct tb_diag *d)
{
	int64_t end = tb_cert_not_after(ca->cert);
	time_t tt = (time_t)end;
	struct tm tm;
	char when[32];

	if (until <= end)
		return TB_OK;
	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "@%lld", (long long)end);
	return tb_diag_set(d, TB_E_CA_VALIDITY, TB_DIAG_NOPOS,
	                   "the certificate would have been cut to %s, when the CA's own "
	                   "expires; ask for fewer --days (or renew the CA first)",
	                   when);
}

int
tb_csr_key_id(const struct tb_csr *csr, uint8_t out[TB_KEYID_LEN])
{
	gnutls_pubkey_t pk = NULL;
	gnutls_datum_t der = {NULL, 0};
	int rc;

	if (gnutls_pubkey_init(&pk) < 0)
		return TB_E_NOMEM;
	rc = gnutls_pubkey_import_x509_crq(pk, csr->crq, 0);
	if (rc >= 0)
		rc = gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der);
	if (rc >= 0)
		tb_sha256(der.data, der.size, out);
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pk);
	return rc < 0 ? TB_E_CSR : TB_OK;
}

enum tb_alg
tb_csr_alg(const struct tb_csr *csr)
{
	int pk = gnutls_x509_crq_get_pk_algorithm(csr->crq, NULL);

	return pk == GNUTLS_PK_EDDSA_ED25519 ? TB_ALG_ED25519
	       : pk == GNUTLS_PK_ECDSA       ? TB_ALG_P256
	                                     : TB_ALG_NONE;
}

int
tb_ca_issue(struct tb_ca *ca, const struct tb_csr *csr, unsigned days, struct tb_buf *out,
            struct tb_diag *d)
{
	time_t now = time(NULL);
	int rc;

	if (days == 0 || days > 36500)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "days must be 1-36500");
	if ((rc = tb_ca_check_request(ca, csr, d)) != TB_OK)
		return rc;
	return tb_ca_issue_window(ca, csr, (int64_t)now - BACKDATE,
	                          (int64_t)now + (int64_t)days * 86400, out, d);
}

int
tb_ca_issue_window(struct tb_ca *ca, const struct tb_csr *csr, int64_t not_before,
                   int64_t not_after, struct tb_buf *out, struct tb_diag *d)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pk = NULL;
	struct tb_cert *cert = NULL;
	uint8_t serial[SERIAL_LEN];
	time_t now = time(NULL);
	int64_t until = not_after;
	int rc;

	if (not_after <= not_before)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "not_after must follow not_before");
	if (tb_cert_not_after(ca->cert) <= (int64_t)now)
		return tb_diag_set(d, TB_E_CERT_EXPIRED, TB_DIAG_NOPOS,
		                   "the issuing CA's certificate has expired");
	if (until > tb_cert_not_after(ca->cert))
		until = tb_cert_not_after(ca->cert);
	if (random_serial(serial) != TB_OK)
		return tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "no randomness");
	rc = gnutls_x509_crt_init(&crt);
	/* set_crq copies subject and key and re-checks the CSR signature;
	 * no requested extension is copied wholesale. */
	if (rc >= 0)
		rc = gnutls_x509_crt_set_crq(crt, csr->crq);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_version(crt, 3);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	if (rc >= 0)
		rc = gnutls_x509_crt_set_activation_time(crt, (time_t)not_before);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_expiration_time(crt, (time_t)until);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (rc >= 0)
		rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
	for (unsigned i = 0; rc >= 0; i++) {
		char san[1024];
		size_t n = sizeof(san);
		unsigned type = 0, crit = 0;
		int r = gnutls_x509_crq_get_subject_alt_name(csr->crq, i, san, &n, &type, &crit);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r < 0) {
			rc = r;
			break;
		}
		if (type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_IPADDRESS ||
		    type == GNUTLS_SAN_URI)
			rc = gnutls_x509_crt_set_subject_alt_name(
			    crt, (gnutls_x509_subject_alt_name_t)type, san, (unsigned)n,
			    GNUTLS_FSAN_APPEND);
	}
	if (rc >= 0)
		rc = gnutls_pubkey_init(&pk);
	if (rc >= 0)
		rc = gnutls_pubkey_import_x509_crq(pk, csr->crq, 0);
	if (rc >= 0)
		rc = set_key_ids(crt, pk, tb_cert_gnutls(ca->cert));
	if (rc >= 0)
		rc = gnutls_x509_crt_privkey_sign(crt, tb_cert_gnutls(ca->cert),
		                                  tb_key_gnutls(ca->key), dig_for(ca->key), 0);
	gnutls_pubkey_deinit(pk);
	if (rc < 0) {
		gnutls_x509_crt_deinit(crt);
		if (rc == GNUTLS_E_CERTIFICATE_ERROR || rc == GNUTLS_E_PK_SIG_VERIFY_FAILED)
			return tb_diag_set(d, TB_E_CERT_BAD_SIG, TB_DIAG_NOPOS,
			                   "the CSR's signature does not verify");
		return tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot issue: %s",
		                   gnutls_strerror(rc));
	}
	if ((cert = tb_cert_wrap(crt, d)) == NULL)
		return d != NULL ? d->code : TB_E_CERT;
	/* Record before handing out: a certificate missing from the index
	 * could not be listed on a CRL by serial lookup later. */
	if ((rc = idx_append(ca, cert, d)) == TB_OK && (rc = tb_cert_pem(cert, out)) != TB_OK)
		tb_diag_set(d, rc, TB_DIAG_NOPOS, "cannot encode the certificate");
	tb_cert_free(cert);
	return rc;
}

/* ---- revocation ---- */

static const struct {
	int code;
	const char *name;
} reasons[] = {
    {0, "unspecified"},        {1, "keyCompromise"},      {2, "cACompromise"},
    {3, "affiliationChanged"}, {4, "superseded"},         {5, "cessationOfOperation"},
    {6, "certificateHold"},    {9, "privilegeWithdrawn"},
};

int
tb_crl_reason_from_name(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(name, reasons[i].name) == 0)
			return reasons[i].code;
	return -1;
}

const char *
tb_crl_reason_name(int reason)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == reason)
			return reasons[i].name;
	return NULL;
}

/* True when ca's key signed cert (names and signature; time ignored). */
static bool
issued_by(gnutls_x509_crt_t cert, gnutls_x509_crt_t ca)
{
	unsigned status = 0;

	if (!gnutls_x509_crt_check_issuer(cert, ca))
		return false;
	if (gnutls_x509_crt_verify(cert, &ca, 1,
	                           GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
	                               GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
	                           &status) < 0)
		return false;
	return (status & (GNUTLS_CERT_SIGNATURE_FAILURE | GNUTLS_CERT_SIGNER_NOT_FOUND)) == 0;
}

int
tb_ca_revoke(struct tb_ca *ca, const struct tb_cert *cert, int reason, int64_t now,
             struct tb_diag *d)
{
	struct idx ix;
	char serial[TB_CERT_SERIAL_HEX_MAX];
	const char *rname = tb_crl_reason_name(reason);
	size_t i;
	int rc;

	if (rname == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "unknown revocation reason");
	if (!issued_by(tb_cert_gnutls(cert), tb_cert_gnutls(ca->cert)))
		return tb_diag_set(d, TB_E_CERT_UNKNOWN_ISSUER, TB_DIAG_NOPOS,
		                   "this CA did not issue '%s'", tb_cert_subject(cert));
	if (tb_cert_serial_hex(cert, serial) != TB_OK)
		return tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "unreadable serial");
	if ((rc = idx_load(ca, &ix, d)) != TB_OK)
		return rc;
	for (i = 0; i < ix.n; i++)
		if (strcmp(ix.e[i].serial, serial) == 0)
			break;
	if (i == ix.n) {
		/* Signed by our key but not in the index (a lost index, or a
		 * certificate made by hand with ca.key): list it all the same. */
		struct idx_ent *ne = realloc(ix.e, (ix.n + 1) * sizeof(*ne));
		if (ne == NULL) {
			idx_free(&ix);
			return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		}
		ix.e = ne;
		memset(&ix.e[i], 0, sizeof(ix.e[i]));
		snprintf(ix.e[i].serial, sizeof(ix.e[i].serial), "%s", serial);
		if (tb_cert_member_id(cert, ix.e[i].id) != TB_OK)
			snprintf(ix.e[i].id, sizeof(ix.e[i].id), "-");
		ix.e[i].not_after = (long long)tb_cert_not_after(cert);
		snprintf(ix.e[i].subject, sizeof(ix.e[i].subject), "%s", tb_cert_subject(cert));
		for (char *p = ix.e[i].subject; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20)
				*p = '?';
		ix.n++;
	} else if (ix.e[i].status == 'R') {
		idx_free(&ix);
		return tb_diag_set(d, TB_E_CERT_REVOKED, TB_DIAG_NOPOS,
		                   "serial %s is already revoked", serial);
	}
	ix.e[i].status = 'R';
	ix.e[i].revoked_at = (long long)now;
	snprintf(ix.e[i].reason, sizeof(ix.e[i].reason), "%s", rname);
	rc = idx_save(ca, &ix, d);
	idx_free(&ix);
	return rc;
}

/* Reads and bumps DIR/crlnumber. */
static int
next_crl_number(const struct tb_ca *ca, unsigned long long *num, struct tb_diag *d)
{
	struct tb_buf b;
	char *path = path_join(ca->dir, "crlnumber"), *end;
	char txt[32];
	int rc;

	tb_buf_init(&b);
	if (path == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	if ((rc = tb_file_read(path, 64, &b, d)) != TB_OK)
		goto out;
	errno = 0;
	*num = strtoull(b.data != NULL ? (char *)b.data : "", &end, 10);
	if (errno != 0 || end == (char *)b.data || (*end != '\0' && *end != '\n')) {
		rc = tb_diag_set(d, TB_E_CA_STATE, TB_DIAG_NOPOS, "%s: not a number", path);
		goto out;
	}
	(*num)++;
	snprintf(txt, sizeof(txt), "%llu\n", *num);
	rc = tb_file_write(path, txt, strlen(txt), 0644, 0, d);
out:
	tb_buf_free(&b);
	free(path);
	return rc;
}

int
tb_ca_crl(struct tb_ca *ca, unsigned days, int64_t now, struct tb_buf *out, struct tb_diag *d)
{
	gnutls_x509_crl_t crl = NULL;
	gnutls_datum_t pem = {0};
	struct idx ix = {NULL, 0};
	unsigned long long num = 0;
	uint8_t numbe[8];
	unsigned char aki[64];
	size_t akin = sizeof(aki);
	unsigned crit = 0;
	int rc;

	if (days == 0 || days > 3650)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "days must be 1-3650");
	if ((rc = idx_load(ca, &ix, d)) != TB_OK)
		return rc;
	if ((rc = next_crl_number(ca, &num, d)) != TB_OK)
		goto fail;
	for (int i = 0; i < 8; i++)
		numbe[i] = (uint8_t)(num >> (56 - 8 * i));
	rc = gnutls_x509_crl_init(&crl);
	if (rc >= 0)
		rc = gnutls_x509_crl_set_version(crl, 2);
	if (rc >= 0)
		rc = gnutls_x509_crl_set_this_update(crl, (time_t)now);
	if (rc >= 0)
		rc = gnutls_x509_crl_set_next_update(crl, (time_t)(now + (int64_t)days * 86400));
	if (rc >= 0)
		rc = gnutls_x509_crl_set_number(crl, numbe, sizeof(numbe));
	if (rc >= 0 &&
	    gnutls_x509_crt_get_subject_key_id(tb_cert_gnutls(ca->cert), aki, &akin, &crit) >= 0)
		rc = gnutls_x509_crl_set_authority_key_id(crl, aki, akin);
	for (size_t i = 0; rc >= 0 && i < ix.n; i++) {
		uint8_t ser[20];
		size_t n = strlen(ix.e[i].serial) / 2;
		if (ix.e[i].status != 'R')
			continue;
		if (n == 0 || n > sizeof(ser) || !tb_hex_decode(ix.e[i].serial, 2 * n, ser, n)) {
			rc = tb_diag_set(d, TB_E_CA_STATE, TB_DIAG_NOPOS, "index: bad serial '%s'",
			                 ix.e[i].serial);
			goto fail;
		}
		rc = gnutls_x509_crl_set_crt_serial(crl, ser, n, (time_t)ix.e[i].revoked_at);
	}
	if (rc >= 0)
		rc = gnutls_x509_crl_privkey_sign(crl, tb_cert_gnutls(ca->cert),
		                                  tb_key_gnutls(ca->key), dig_for(ca->key), 0);
	if (rc >= 0)
		rc = gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &pem);
	if (rc < 0) {
		rc = tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot sign the CRL: %s",
		                 gnutls_strerror(rc));
		goto fail;
	}
	if ((rc = tb_buf_add(out, pem.data, pem.size)) != TB_OK)
		tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
fail:
	gnutls_free(pem.data);
	gnutls_x509_crl_deinit(crl);
	idx_free(&ix);
	return rc;
}

/* ---- certificate requests ---- */

void
tb_csr_free(struct tb_csr *csr)
{
	if (csr == NULL)
		return;
	gnutls_x509_crq_deinit(csr->crq);
	free(csr->subject);
	free(csr);
}

/* Fills csr's cached id and subject and checks what tb_csr_import promises. */
static int
csr_check(struct tb_csr *csr, struct tb_diag *d)
{
	char buf[TB_MEMBER_ID_MAX];
	size_t n = sizeof(buf);
	gnutls_datum_t dn = {0};
	gnutls_pubkey_t pk = NULL;
	struct tb_pub *pub;
	int rc;

	rc = gnutls_x509_crq_verify(csr->crq, 0);
	if (rc < 0)
		return tb_diag_set(d, TB_E_CERT_BAD_SIG, TB_DIAG_NOPOS,
		                   "the CSR's signature does not verify");
	if (gnutls_x509_crq_get_dn3(csr->crq, &dn, 0) < 0)
		return tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS, "unreadable subject");
	csr->subject = malloc(dn.size + 1);
	if (csr->subject == NULL) {
		gnutls_free(dn.data);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	memcpy(csr->subject, dn.data, dn.size);
	csr->subject[dn.size] = '\0';
	gnutls_free(dn.data);
	rc = gnutls_x509_crq_get_dn_by_oid(csr->crq, OID_SERIAL_NUMBER, 0, 0, buf, &n);
	if (rc < 0 || n >= sizeof(buf))
		return tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS,
		                   "subject '%s' has no member id (serialNumber)", csr->subject);
	buf[n] = '\0';
	if (!tb_member_id_ok(buf))
		return tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS,
		                   "member id '%s' is malformed (six digits, first 1-9)", buf);
	memcpy(csr->id, buf, n + 1);
	if (gnutls_pubkey_init(&pk) < 0)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	if (gnutls_pubkey_import_x509_crq(pk, csr->crq, 0) < 0) {
		gnutls_pubkey_deinit(pk);
		return tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS, "unreadable public key");
	}
	if ((pub = tb_pub_wrap(pk, d)) == NULL) /* takes pk */
		return tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS,
		                   "the key is neither Ed25519 nor P-256");
	tb_pub_free(pub);
	return TB_OK;
}

struct tb_csr *
tb_csr_import(const uint8_t *data, size_t len, struct tb_diag *d)
{
	struct tb_csr *csr;
	gnutls_datum_t dat = {(unsigned char *)data, (unsigned)len};
	int rc;

	if (len > CSR_FILE_MAX) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "CSR file too large");
		return NULL;
	}
	if ((csr = calloc(1, sizeof(*csr))) == NULL || gnutls_x509_crq_init(&csr->crq) < 0) {
		free(csr);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (len == 0) {
		tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS, "malformed CSR (empty file)");
		goto fail;
	}
	if (memmem(data, len, "-----BEGIN ", 11) != NULL) {
		if (memmem(data, len, "-----BEGIN CERTIFICATE REQUEST-----", 35) == NULL &&
		    memmem(data, len, "-----BEGIN NEW CERTIFICATE REQUEST-----", 39) == NULL) {
			tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS,
			            "malformed CSR (the file holds no CERTIFICATE REQUEST block)");
			goto fail;
		}
		rc = gnutls_x509_crq_import(csr->crq, &dat, GNUTLS_X509_FMT_PEM);
	} else {
		rc = gnutls_x509_crq_import(csr->crq, &dat, GNUTLS_X509_FMT_DER);
	}
	if (rc < 0) {
		tb_diag_set(d, TB_E_CSR, TB_DIAG_NOPOS, "malformed CSR (%s)", gnutls_strerror(rc));
		goto fail;
	}
	if (csr_check(csr, d) != TB_OK)
		goto fail;
	return csr;
fail:
	tb_csr_free(csr);
	return NULL;
}

struct tb_csr *
tb_csr_load(const char *path, struct tb_diag *d)
{
	struct tb_buf b;
	struct tb_csr *csr = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, CSR_FILE_MAX, &b, d) == TB_OK) {
		csr = tb_csr_import(b.data, b.len, d);
		if (csr == NULL)
			tb_diag_prefix(d, path);
	}
	tb_buf_free(&b);
	return csr;
}

struct tb_csr *
tb_csr_new(const struct tb_key *key, const char *member_id, const char *name, const char *org,
           const char *endpoint, struct tb_diag *d)
{
	struct tb_csr *csr = NULL;
	struct tb_pub *pub = NULL;
	char host[256];
	unsigned port;
	unsigned char ip[16];
	int rc;

	if (tb_key_alg(key) == TB_ALG_SM2) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		            "a DTLS node key cannot be sm2 (DTLS stays ECDSA P-256 or Ed25519; "
		            "sm2 is for message and registry keys: tongban key gen --alg sm2)");
		return NULL;
	}
	if (!tb_member_id_ok(member_id)) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		            "member id '%s' is malformed (six digits, first 1-9)", member_id);
		return NULL;
	}
	if (!name_ok(name) || strlen(name) > NAME_MAX_LEN || (org != NULL && !name_ok(org))) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "name must be 1-%d printable characters",
		            NAME_MAX_LEN);
		return NULL;
	}
	if (tb_endpoint_parse(endpoint, host, sizeof(host), &port) != TB_OK) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "endpoint '%s' is not coaps://HOST:PORT",
		            endpoint);
		return NULL;
	}
	if ((csr = calloc(1, sizeof(*csr))) == NULL || gnutls_x509_crq_init(&csr->crq) < 0 ||
	    (pub = tb_key_pub(key)) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		goto fail;
	}
	rc = gnutls_x509_crq_set_version(csr->crq, 1);
	if (rc >= 0)
		rc = set_dn(crq_set_dn, csr->crq, org, name, member_id);
	if (rc >= 0)
		rc = gnutls_x509_crq_set_pubkey(csr->crq, tb_pub_gnutls(pub));
	if (rc >= 0) {
		if (inet_pton(AF_INET, host, ip) == 1)
			rc = gnutls_x509_crq_set_subject_alt_name(csr->crq, GNUTLS_SAN_IPADDRESS,
			                                          ip, 4, GNUTLS_FSAN_APPEND);
		else if (inet_pton(AF_INET6, host, ip) == 1)
			rc = gnutls_x509_crq_set_subject_alt_name(csr->crq, GNUTLS_SAN_IPADDRESS,
			                                          ip, 16, GNUTLS_FSAN_APPEND);
		else
			rc = gnutls_x509_crq_set_subject_alt_name(csr->crq, GNUTLS_SAN_DNSNAME,
			                                          host, (unsigned)strlen(host),
			                                          GNUTLS_FSAN_APPEND);
	}
	if (rc >= 0)
		rc = gnutls_x509_crq_set_subject_alt_name(csr->crq, GNUTLS_SAN_URI, endpoint,
		                                          (unsigned)strlen(endpoint),
		                                          GNUTLS_FSAN_APPEND);
	if (rc >= 0)
		rc = gnutls_x509_crq_privkey_sign(csr->crq, tb_key_gnutls(key), dig_for(key), 0);
	if (rc < 0) {
		tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "cannot build the CSR: %s",
		            gnutls_strerror(rc));
		goto fail;
	}
	if (csr_check(csr, d) != TB_OK)
		goto fail;
	tb_pub_free(pub);
	return csr;
fail:
	tb_pub_free(pub);
	tb_csr_free(csr);
	return NULL;
}

int
tb_csr_pem(const struct tb_csr *csr, struct tb_buf *out)
{
	gnutls_datum_t pem = {0};
	int rc;

	if (gnutls_x509_crq_export2(csr->crq, GNUTLS_X509_FMT_PEM, &pem) < 0)
		return TB_E_CRYPTO;
	rc = tb_buf_add(out, pem.data, pem.size);
	gnutls_free(pem.data);
	return rc;
}

const char *
tb_csr_member_id(const struct tb_csr *csr)
{
	return csr->id;
}

const char *
tb_csr_subject(const struct tb_csr *csr)
{
	return csr->subject;
}

/* ---- revocation lists ---- */

void
tb_crl_free(struct tb_crl *crl)
{
	if (crl == NULL)
		return;
	gnutls_x509_crl_deinit(crl->crl);
	free(crl);
}

struct tb_crl *
tb_crl_import(const uint8_t *data, size_t len, struct tb_diag *d)
{
	struct tb_crl *crl;
	gnutls_datum_t dat = {(unsigned char *)data, (unsigned)len};
	int rc;

	if (len > CRL_FILE_MAX) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "CRL file too large");
		return NULL;
	}
	if ((crl = calloc(1, sizeof(*crl))) == NULL || gnutls_x509_crl_init(&crl->crl) < 0) {
		free(crl);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	if (len == 0) {
		tb_diag_set(d, TB_E_CRL, TB_DIAG_NOPOS, "malformed CRL (empty file)");
		goto fail;
	}
	if (memmem(data, len, "-----BEGIN ", 11) != NULL) {
		if (memmem(data, len, "-----BEGIN X509 CRL-----", 24) == NULL) {
			tb_diag_set(d, TB_E_CRL, TB_DIAG_NOPOS,
			            "malformed CRL (the file holds no X509 CRL block)");
			goto fail;
		}
		rc = gnutls_x509_crl_import(crl->crl, &dat, GNUTLS_X509_FMT_PEM);
	} else {
		rc = gnutls_x509_crl_import(crl->crl, &dat, GNUTLS_X509_FMT_DER);
	}
	if (rc < 0) {
		tb_diag_set(d, TB_E_CRL, TB_DIAG_NOPOS, "malformed CRL (%s)", gnutls_strerror(rc));
		goto fail;
	}
	return crl;
fail:
	tb_crl_free(crl);
	return NULL;
}

struct tb_crl *
tb_crl_load(const char *path, struct tb_diag *d)
{
	struct tb_buf b;
	struct tb_crl *crl = NULL;

	tb_buf_init(&b);
	if (tb_file_read(path, CRL_FILE_MAX, &b, d) == TB_OK) {
		crl = tb_crl_import(b.data, b.len, d);
		if (crl == NULL)
			tb_diag_prefix(d, path);
	}
	tb_buf_free(&b);
	return crl;
}

size_t
tb_crl_count(const struct tb_crl *crl)
{
	int n = gnutls_x509_crl_get_crt_count(crl->crl);
	return n < 0 ? 0 : (size_t)n;
}

/* ---- chain validation ---- */

struct tb_castore *
tb_castore_new(void)
{
	return calloc(1, sizeof(struct tb_castore));
}

void
tb_castore_free(struct tb_castore *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ncas; i++)
		gnutls_x509_crt_deinit(t->cas[i]);
	for (size_t i = 0; i < t->ncrls; i++)
		gnutls_x509_crl_deinit(t->crls[i]);
	free(t->cas);
	free(t->crls);
	free(t);
}

int
tb_castore_add_ca(struct tb_castore *t, const struct tb_cert *ca, struct tb_diag *d)
{
	gnutls_x509_crt_t c, *nc;

	if ((c = crt_dup(tb_cert_gnutls(ca))) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	if ((nc = realloc(t->cas, (t->ncas + 1) * sizeof(*nc))) == NULL) {
		gnutls_x509_crt_deinit(c);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	t->cas = nc;
	t->cas[t->ncas++] = c;
	return TB_OK;
}

int
tb_castore_add_crl(struct tb_castore *t, const struct tb_crl *crl, struct tb_diag *d)
{
	gnutls_x509_crl_t c, *nc;

	if ((c = crl_dup(crl->crl)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	if ((nc = realloc(t->crls, (t->ncrls + 1) * sizeof(*nc))) == NULL) {
		gnutls_x509_crl_deinit(c);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	t->crls = nc;
	t->crls[t->ncrls++] = c;
	return TB_OK;
}

static const char *
dn_of(gnutls_x509_crt_t c, char *buf, size_t n)
{
	gnutls_datum_t dn = {0};

	/* RFC 4514 order, as tb_cert_subject() prints it */
	if (gnutls_x509_crt_get_dn3(c, &dn, 0) < 0)
		snprintf(buf, n, "?");
	else
		snprintf(buf, n, "%.*s", (int)dn.size, (const char *)dn.data);
	gnutls_free(dn.data);
	return buf;
}

/* Maps GnuTLS's verification status bits to our reasons, most telling
 * first. */
static int
map_status(unsigned status, gnutls_x509_crt_t leaf, struct tb_diag *d)
{
	char dn[256];
	gnutls_datum_t txt = {0};
	int rc;

	dn_of(leaf, dn, sizeof(dn));
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		return tb_diag_set(d, TB_E_CERT_UNKNOWN_ISSUER, TB_DIAG_NOPOS,
		                   "no trusted CA issued '%s'", dn);
	if (status & GNUTLS_CERT_SIGNATURE_FAILURE)
		return tb_diag_set(d, TB_E_CERT_BAD_SIG, TB_DIAG_NOPOS,
		                   "a signature on the chain of '%s' does not verify", dn);
	if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
		return tb_diag_set(d, TB_E_CERT_BAD_SIG, TB_DIAG_NOPOS,
		                   "the chain of '%s' uses an insecure signature algorithm", dn);
	if (status & GNUTLS_CERT_REVOKED)
		return tb_diag_set(d, TB_E_CERT_REVOKED, TB_DIAG_NOPOS, "'%s'", dn);
	if (status & (GNUTLS_CERT_SIGNER_NOT_CA | GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE))
		return tb_diag_set(d, TB_E_CERT_USAGE, TB_DIAG_NOPOS,
		                   "an issuer of '%s' may not issue certificates", dn);
	if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		return tb_diag_set(d, TB_E_CERT_USAGE, TB_DIAG_NOPOS,
		                   "an issuer of '%s' is restricted to other purposes", dn);
	rc = gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0);
	tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "'%s': %s", dn,
	            rc >= 0 ? (const char *)txt.data : "verification failed");
	gnutls_free(txt.data);
	return TB_E_CERT;
}

/* Revocation of path[i] by a CRL from its issuer (path[i + 1], the last
 * entry being the anchor).  A CRL from an issuer on the path must verify
 * and be current, else the answer is TB_E_CRL: a stale or forged list
 * cannot vouch for anything. */
static int
check_revocation(const struct tb_castore *t, gnutls_x509_crt_t *path, size_t n, int64_t now,
                 struct tb_diag *d)
{
	char dn[256], when[32];

	for (size_t c = 0; c < t->ncrls; c++) {
		gnutls_x509_crl_t crl = t->crls[c];
		size_t k;
		unsigned status = 0;
		int64_t next;

		for (k = 1; k < n; k++)
			if (gnutls_x509_crl_check_issuer(crl, path[k]))
				break;
		if (k == n)
			continue; /* another CA's list: not about this chain */
		dn_of(path[k], dn, sizeof(dn));
		if (gnutls_x509_crl_verify(crl, &path[k], 1,
		                           GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
		                               GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
		                           &status) < 0 ||
		    status != 0)
			return tb_diag_set(d, TB_E_CRL, TB_DIAG_NOPOS,
			                   "the CRL naming issuer '%s' is not signed by it", dn);
		next = (int64_t)gnutls_x509_crl_get_next_update(crl);
		if (next != -1 && next < now) {
			fmt_time(next, when, sizeof(when));
			return tb_diag_set(d, TB_E_CRL, TB_DIAG_NOPOS,
			                   "the CRL of '%s' is out of date (next update was %s)",
			                   dn, when);
		}
		if ((int64_t)gnutls_x509_crl_get_this_update(crl) > now + BACKDATE)
			return tb_diag_set(d, TB_E_CRL, TB_DIAG_NOPOS,
			                   "the CRL of '%s' is issued in the future", dn);
		if (gnutls_x509_crt_check_revocation(path[k - 1], &crl, 1) == 1) {
			char who[256];
			char ser[TB_CERT_SERIAL_HEX_MAX] = "?";
			uint8_t sb[20];
			size_t sn = sizeof(sb);
			if (gnutls_x509_crt_get_serial(path[k - 1], sb, &sn) >= 0 && sn <= 20)
				tb_hex_encode(sb, sn, ser);
			return tb_diag_set(d, TB_E_CERT_REVOKED, TB_DIAG_NOPOS,
			                   "'%s' (serial %s) is on the CRL of '%s'",
			                   dn_of(path[k - 1], who, sizeof(who)), ser, dn);
		}
	}
	return TB_OK;
}

static int
check_times(gnutls_x509_crt_t *path, size_t n, int64_t now, struct tb_diag *d)
{
	char dn[256], when[32];

	for (size_t i = 0; i < n; i++) {
		int64_t nb = (int64_t)gnutls_x509_crt_get_activation_time(path[i]);
		int64_t na = (int64_t)gnutls_x509_crt_get_expiration_time(path[i]);
		const char *role = i == 0 ? "" : i == n - 1 ? "trust anchor " : "issuer ";
		if (na != -1 && now > na) {
			fmt_time(na, when, sizeof(when));
			return tb_diag_set(d, TB_E_CERT_EXPIRED, TB_DIAG_NOPOS,
			                   "%s'%s' expired at %s", role,
			                   dn_of(path[i], dn, sizeof(dn)), when);
		}
		if (nb != -1 && now < nb) {
			fmt_time(nb, when, sizeof(when));
			return tb_diag_set(d, TB_E_CERT_NOT_YET_VALID, TB_DIAG_NOPOS,
			                   "%s'%s' is valid only from %s", role,
			                   dn_of(path[i], dn, sizeof(dn)), when);
		}
	}
	return TB_OK;
}

static int
check_usage(gnutls_x509_crt_t c, enum tb_usage usage, struct tb_diag *d)
{
	unsigned ku = 0, crit = 0, ca = 0;
	int pathlen = -1;
	bool is_ca = gnutls_x509_crt_get_basic_constraints(c, &crit, &ca, &pathlen) >= 0 && ca;
	bool has_ku = gnutls_x509_crt_get_key_usage(c, &ku, &crit) >= 0;
	bool server = false, client = false, any_eku = false;
	char dn[256];

	dn_of(c, dn, sizeof(dn));
	if (usage == TB_USAGE_ANY)
		return TB_OK;
	if (usage == TB_USAGE_CA) {
		if (!is_ca)
			return tb_diag_set(d, TB_E_CERT_USAGE, TB_DIAG_NOPOS,
			                   "'%s' is not a CA certificate", dn);
		if (has_ku && !(ku & GNUTLS_KEY_KEY_CERT_SIGN))
			return tb_diag_set(d, TB_E_CERT_USAGE, TB_DIAG_NOPOS,
			                   "'%s' may not sign certificates (key usage)", dn);
		return TB_OK;
	}
	if (is_ca)
		return tb_diag_set(d, TB_E_CERT_USAGE, TB_DIAG_NOPOS,
		                   "'%s' is a CA certificate, not a node certificate", dn);
	/* DTLS handshakes with ECDSA and Ed25519 keys need digitalSignature;
	 * an absent extension means unrestricted (RFC 5280 4.2.1.3). */
	if (has_ku && !(ku & GNUTLS_KEY_DIGITAL_SIGNATURE))
		return tb_diag_set(d, TB_E_CERT_USAGE, TB_DIAG_NOPOS,
		                   "key usage of '%s' lacks digitalSignature", dn);
	for (unsigned i = 0;; i++) {
		char oid[128];
		size_t n = sizeof(oid);
		if (gnutls_x509_crt_get_key_purpose_oid(c, i, oid, &n, &crit) < 0)
			break;
		if (strcmp(oid, GNUTLS_KP_TLS_WWW_SERVER) == 0)
			server = true;
		else if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0)
			client = true;
		else if (strcmp(oid, OID_EKU_ANY) == 0)
			any_eku = true;
	}
	/* Nodes are DTLS client and server at once, so both purposes are
	 * required, and stated explicitly: an EKU-less certificate was not
	 * issued for this federation. */
	if (!any_eku && !(server && client))
		return tb_diag_set(d, TB_E_CERT_USAGE, TB_DIAG_NOPOS,
		                   "extended key usage of '%s' lacks %s", dn,
		                   server   ? "clientAuth"
		                   : client ? "serverAuth"
		                            : "serverAuth and clientAuth");
	return TB_OK;
}

int
tb_chain_verify(const struct tb_castore *t, const struct tb_cert *cert,
                const struct tb_cert *const *chain, size_t nchain, enum tb_usage usage, int64_t now,
                struct tb_diag *d)
{
	gnutls_x509_crt_t path[PATH_DEPTH_MAX + 1];
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_x509_crt_t anchor = NULL;
	size_t n = 1;
	unsigned status = 0;
	char dn[256];
	int rc;

	path[0] = tb_cert_gnutls(cert);
	/* Build the path ourselves (leaf, intermediates, anchor) so every
	 * later check names the certificate it concerns and unrelated
	 * intermediates given on the command line do not matter. */
	while (n <= PATH_DEPTH_MAX) {
		gnutls_x509_crt_t cur = path[n - 1], next = NULL;
		for (size_t i = 0; i < t->ncas && anchor == NULL; i++)
			if (gnutls_x509_crt_check_issuer(cur, t->cas[i]))
				anchor = t->cas[i];
		if (anchor != NULL)
			break;
		for (size_t i = 0; i < nchain && next == NULL; i++) {
			gnutls_x509_crt_t c = tb_cert_gnutls(chain[i]);
			bool seen = false;
			for (size_t k = 0; k < n; k++)
				seen = seen || gnutls_x509_crt_equals(c, path[k]);
			if (!seen && gnutls_x509_crt_check_issuer(cur, c))
				next = c;
		}
		if (next == NULL)
			break;
		path[n++] = next;
	}
	if (anchor == NULL) {
		if (n == 1 && tb_cert_is_self_signed(cert))
			return tb_diag_set(d, TB_E_CERT_SELF_SIGNED, TB_DIAG_NOPOS,
			                   "'%s' is self-signed and not a trust anchor",
			                   tb_cert_subject(cert));
		return tb_diag_set(
		    d, TB_E_CERT_UNKNOWN_ISSUER, TB_DIAG_NOPOS, "no trusted CA issued '%s'%s",
		    dn_of(path[n - 1], dn, sizeof(dn)), n > 1 ? " (top of the given chain)" : "");
	}
	/* The leaf may itself be an anchor (verifying the root). */
	bool leaf_is_anchor = gnutls_x509_crt_equals(path[0], anchor) != 0;

	if (gnutls_x509_trust_list_init(&tl, 0) < 0)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	for (size_t i = 0; i < t->ncas; i++) {
		gnutls_x509_crt_t c = crt_dup(t->cas[i]);
		if (c == NULL || gnutls_x509_trust_list_add_cas(tl, &c, 1, 0) != 1) {
			gnutls_x509_crt_deinit(c);
			rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
			goto out;
		}
	}
	/* Time and revocation are ours (below) so that "now" is the caller's
	 * and CRL problems get their own reason. */
	rc = gnutls_x509_trust_list_verify_crt2(
	    tl, path, n, NULL, 0,
	    GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |
	        GNUTLS_VERIFY_DISABLE_CRL_CHECKS | GNUTLS_VERIFY_DO_NOT_ALLOW_UNSORTED_CHAIN,
	    &status, NULL);
	if (rc < 0) {
		rc = tb_diag_set(d, TB_E_CERT, TB_DIAG_NOPOS, "verification failed: %s",
		                 gnutls_strerror(rc));
		goto out;
	}
	if (status != 0) {
		rc = map_status(status, path[0], d);
		goto out;
	}
	if (!leaf_is_anchor)
		path[n++] = anchor;
	if ((rc = check_revocation(t, path, n, now, d)) != TB_OK)
		goto out;
	if ((rc = check_times(path, n, now, d)) != TB_OK)
		goto out;
	rc = check_usage(path[0], usage, d);
out:
	gnutls_x509_trust_list_deinit(tl, 1);
	return rc;
}
