/* SPDX-License-Identifier: Apache-2.0 */
/* tb_trust.c - trust anchor: federation, root, authorities, threshold. */
#include "tb_trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../protocol/tb_schema.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "tb_reg.h"

struct authority {
	uint8_t kid[TB_KEYID_LEN];
	uint8_t *spki;
	size_t spki_len;
	char *name;
	struct tb_pub *pub;
};

struct tb_trust {
	char *federation;
	char *root_pem; /* NULL until set */
	uint8_t root_kid[TB_KEYID_LEN];
	struct authority auth[TB_TRUST_MAX_AUTHORITIES];
	size_t n;
	unsigned k;
};

static char *
dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

struct tb_trust *
tb_trust_new(const char *federation, struct tb_diag *d)
{
	struct tb_trust *t;

	if (federation == NULL || !tb_service_code_valid(federation, strlen(federation))) {
		tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		            "federation name must be 1-64 of a-z 0-9 . -");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->federation = dupn(federation, strlen(federation))) == NULL) {
		free(t);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	return t;
}

void
tb_trust_free(struct tb_trust *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->auth[i].spki);
		free(t->auth[i].name);
		tb_pub_free(t->auth[i].pub);
	}
	free(t->root_pem);
	free(t->federation);
	free(t);
}

int
tb_trust_set_root(struct tb_trust *t, const char *pem, size_t len, const uint8_t kid[TB_KEYID_LEN],
                  struct tb_diag *d)
{
	char *p;

	if (len == 0 || len > TB_TRUST_MAX_ROOT || memchr(pem, '\0', len) != NULL)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                   "root must be 1-%d bytes of PEM text", TB_TRUST_MAX_ROOT);
	if ((p = dupn(pem, len)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	free(t->root_pem);
	t->root_pem = p;
	memcpy(t->root_kid, kid, TB_KEYID_LEN);
	return TB_OK;
}

int
tb_trust_add_authority(struct tb_trust *t, const uint8_t *spki, size_t spki_len, const char *name,
                       struct tb_diag *d)
{
	struct authority *a;
	uint8_t kid[TB_KEYID_LEN];

	if (t->n >= TB_TRUST_MAX_AUTHORITIES)
		return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS, "more than %d authorities",
		                   TB_TRUST_MAX_AUTHORITIES);
	if (spki_len == 0 || spki_len > TB_REG_MAX_SPKI)
		return tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS, "bad SPKI length");
	if (name != NULL && (strlen(name) > TB_REG_MAX_STRING ||
	                     !tb_utf8_valid((const uint8_t *)name, strlen(name))))
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "bad authority name");
	tb_sha256(spki, spki_len, kid);
	if (tb_trust_find(t, kid) != (size_t)-1)
		return tb_diag_set(d, TB_E_REG_DUP_SIGNER, TB_DIAG_NOPOS,
		                   "authority %s listed twice", name != NULL ? name : "");
	a = &t->auth[t->n];
	memset(a, 0, sizeof(*a));
	if ((a->pub = tb_pub_import_spki(spki, spki_len, d)) == NULL)
		return d != NULL ? d->code : TB_E_KEY;
	if (tb_pub_alg(a->pub) == TB_ALG_NONE) {
		tb_pub_free(a->pub);
		return tb_diag_set(d, TB_E_KEY, TB_DIAG_NOPOS,
		                   "authority key must be ed25519, p256 or sm2");
	}
	memcpy(a->kid, kid, TB_KEYID_LEN);
	if ((a->spki = malloc(spki_len)) == NULL ||
	    (a->name = dupn(name != NULL ? name : "", name != NULL ? strlen(name) : 0)) == NULL) {
		free(a->spki);
		tb_pub_free(a->pub);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	memcpy(a->spki, spki, spki_len);
	a->spki_len = spki_len;
	t->n++;
	return TB_OK;
}

int
tb_trust_set_threshold(struct tb_trust *t, unsigned k, struct tb_diag *d)
{
	if (k < 1 || k > t->n)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                   "threshold must be between 1 and %zu (the authorities)", t->n);
	t->k = k;
	return TB_OK;
}

/* ---- parsing: the schema (docs/PROTOCOL.md 7.3), then the model ---- */

static bool
no_nul(const char *s, size_t n)
{
	return memchr(s, '\0', n) == NULL;
}

static const struct tb_field s_root[] = {
    TB_F_HEX("kid", true, 64),
    TB_F_STR("cert", true, TB_TRUST_MAX_ROOT, no_nul, "PEM text"), TB_F_END};
static const struct tb_field s_auth[] = {
    TB_F_HEX("kid", true, 64), TB_F_B64("spki", true, 1, TB_REG_MAX_SPKI),
    TB_F_STR("name", true, TB_REG_MAX_STRING, no_nul, "a name without U+0000"), TB_F_END};
static const struct tb_field s_auth_el[] = {TB_F_OBJ(NULL, true, s_auth, NULL)};
static const struct tb_field s_trust[] = {
    {.name = "v", .t = TB_ST_INT, .req = true, .min = 1, .max = 1, .code = TB_E_VERSION},
    TB_F("federation", TB_ST_CODE, true),
    TB_F_OBJ("root", true, s_root, NULL),
    TB_F_ARR("authorities", true, 1, TB_TRUST_MAX_AUTHORITIES, s_auth_el, false),
    TB_F_INT("threshold", true, 1, TB_TRUST_MAX_AUTHORITIES),
    TB_F_END};
static const struct tb_field s_trust_root = TB_F_OBJ(NULL, true, s_trust, NULL);

/* The model of a checked anchor; errors are the model's own rules
 * (duplicates, key ids, the threshold against the authorities). */
static struct tb_trust *
take_trust(const struct tb_json *root, struct tb_diag *d)
{
	const struct tb_json *r = tb_json_get(root, "root"), *x;
	struct tb_trust *t;
	const char *s;
	size_t n, i = 0;
	int64_t k;
	uint8_t kid[TB_KEYID_LEN];

	if ((t = tb_trust_new(tb_json_string(tb_json_get(root, "federation"), NULL), d)) == NULL)
		return NULL;
	s = tb_json_string(tb_json_get(r, "kid"), &n);
	if (!tb_hex_decode(s, n, kid, TB_KEYID_LEN)) {
		tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "trust anchor: root.kid");
		goto fail;
	}
	s = tb_json_string(tb_json_get(r, "cert"), &n);
	if (tb_trust_set_root(t, s, n, kid, d) != TB_OK)
		goto fail;
	x = tb_json_get(root, "authorities");
	for (const struct tb_json *a = tb_json_first(x); a != NULL; a = tb_json_next(a), i++) {
		uint8_t der[TB_REG_MAX_SPKI];
		size_t dl;

		s = tb_json_string(tb_json_get(a, "kid"), &n);
		if (!tb_hex_decode(s, n, kid, TB_KEYID_LEN)) {
			tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			            "trust anchor: authorities[%zu].kid", i);
			goto fail;
		}
		s = tb_json_string(tb_json_get(a, "spki"), &n);
		if (!tb_b64url_decode(s, n, der, sizeof(der), &dl)) {
			tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			            "trust anchor: authorities[%zu].spki", i);
			goto fail;
		}
		if (tb_trust_add_authority(t, der, dl, tb_json_string(tb_json_get(a, "name"), NULL),
		                           d) != TB_OK)
			goto fail;
		if (memcmp(t->auth[t->n - 1].kid, kid, TB_KEYID_LEN) != 0) {
			tb_diag_set(d, TB_E_REG_KEY_ID, TB_DIAG_NOPOS,
			            "trust anchor: authorities[%zu].kid", i);
			goto fail;
		}
	}
	if (!tb_json_integer(tb_json_get(root, "threshold"), &k) || k < 1 || (uint64_t)k > t->n) {
		tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		            "trust anchor: threshold must be between 1 and %zu", t->n);
		goto fail;
	}
	t->k = (unsigned)k;
	return t;
fail:
	tb_trust_free(t);
	return NULL;
}

/* The anchor's model must reproduce the document as received. */
static int
same_as_received(const struct tb_trust *t, const struct tb_json *root, struct tb_diag *d)
{
	struct tb_buf got, model;
	int rc;

	tb_buf_init(&got);
	tb_buf_init(&model);
	if ((rc = tb_json_canon(root, NULL, &got)) != TB_OK ||
	    (rc = tb_trust_serialize(t, &model, d)) != TB_OK) {
		rc = tb_diag_set(d, rc, TB_DIAG_NOPOS, "trust anchor canonical form");
		goto out;
	}
	if (model.len != got.len || memcmp(model.data, got.data, got.len) != 0)
		rc = tb_diag_set(d, TB_E_LOSSY, TB_DIAG_NOPOS,
		                 "trust anchor holds content its model does not reproduce");
out:
	tb_buf_free(&got);
	tb_buf_free(&model);
	return rc;
}

struct tb_trust *
tb_trust_parse(const uint8_t *text, size_t len, struct tb_diag *d)
{
	static const struct tb_json_limits lim = {TB_TRUST_MAX_SIZE, 8};
	static const struct tb_schema_opts opts = {.root = "trust anchor",
	                                           .limit_code = TB_E_REG_LIMIT};
	struct tb_json_doc *doc;
	struct tb_trust *t = NULL;

	tb_diag_clear(d);
	if ((doc = tb_json_parse(text, len, &lim, d)) == NULL)
		return NULL;
	/* an object's "v" first, as in every document (PROTOCOL.md 2.3) */
	if ((tb_json_kind(tb_json_root(doc)) == TB_JSON_OBJECT &&
	     tb_schema_version(tb_json_root(doc), 1, d) != TB_OK) ||
	    tb_schema_check(&s_trust_root, tb_json_root(doc), &opts, d) != TB_OK ||
	    (t = take_trust(tb_json_root(doc), d)) == NULL ||
	    same_as_received(t, tb_json_root(doc), d) != TB_OK)
		goto fail;
	tb_json_doc_free(doc);
	return t;
fail:
	tb_trust_free(t);
	tb_json_doc_free(doc);
	return NULL;
}

int
tb_trust_serialize(const struct tb_trust *t, struct tb_buf *out, struct tb_diag *d)
{
	struct tb_json_doc *doc;
	struct tb_json *root, *r, *arr;
	char hex[2 * TB_KEYID_LEN + 1];
	int rc = TB_E_NOMEM;

	if (t->root_pem == NULL || t->n == 0 || t->k < 1 || t->k > t->n)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                   "trust anchor needs a root, authorities and a threshold");
	if ((doc = tb_json_doc_new()) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	/* every builder returns NULL on memory error, which tb_json_set refuses */
	root = tb_json_new_object(doc);
	r = tb_json_new_object(doc);
	arr = tb_json_new_array(doc);
	if (root == NULL || r == NULL || arr == NULL)
		goto out;
	tb_hex_encode(t->root_kid, TB_KEYID_LEN, hex);
	if (tb_json_set(doc, root, "v", tb_json_new_number(doc, 1)) != TB_OK ||
	    tb_json_set(doc, root, "federation",
	                tb_json_new_string(doc, t->federation, strlen(t->federation))) != TB_OK ||
	    tb_json_set(doc, r, "kid", tb_json_new_string(doc, hex, 64)) != TB_OK ||
	    tb_json_set(doc, r, "cert",
	                tb_json_new_string(doc, t->root_pem, strlen(t->root_pem))) != TB_OK ||
	    tb_json_set(doc, root, "root", r) != TB_OK ||
	    tb_json_set(doc, root, "threshold", tb_json_new_number(doc, t->k)) != TB_OK)
		goto out;
	for (size_t i = 0; i < t->n; i++) {
		const struct authority *a = &t->auth[i];
		struct tb_json *o = tb_json_new_object(doc);
		char *b64 = malloc(tb_b64url_len(a->spki_len) + 1);
		int bad;
		if (o == NULL || b64 == NULL) {
			free(b64);
			goto out;
		}
		tb_b64url_encode(a->spki, a->spki_len, b64);
		tb_hex_encode(a->kid, TB_KEYID_LEN, hex);
		bad = tb_json_set(doc, o, "kid", tb_json_new_string(doc, hex, 64)) != TB_OK ||
		      tb_json_set(doc, o, "spki", tb_json_new_string(doc, b64, strlen(b64))) !=
		          TB_OK ||
		      tb_json_set(doc, o, "name",
		                  tb_json_new_string(doc, a->name, strlen(a->name))) != TB_OK ||
		      tb_json_append(arr, o) != TB_OK;
		free(b64);
		if (bad)
			goto out;
	}
	if (tb_json_set(doc, root, "authorities", arr) != TB_OK)
		goto out;
	rc = tb_json_canon(root, NULL, out);
out:
	tb_json_doc_free(doc);
	if (rc != TB_OK)
		tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
	return rc;
}

const char *
tb_trust_federation(const struct tb_trust *t)
{
	return t->federation;
}

unsigned
tb_trust_threshold(const struct tb_trust *t)
{
	return t->k;
}

size_t
tb_trust_count(const struct tb_trust *t)
{
	return t->n;
}

size_t
tb_trust_find(const struct tb_trust *t, const uint8_t kid[TB_KEYID_LEN])
{
	for (size_t i = 0; i < t->n; i++)
		if (memcmp(t->auth[i].kid, kid, TB_KEYID_LEN) == 0)
			return i;
	return (size_t)-1;
}

const struct tb_pub *
tb_trust_pub(const struct tb_trust *t, size_t i)
{
	return t->auth[i].pub;
}

const char *
tb_trust_name(const struct tb_trust *t, size_t i)
{
	return t->auth[i].name;
}

void
tb_trust_kid(const struct tb_trust *t, size_t i, uint8_t kid[TB_KEYID_LEN])
{
	memcpy(kid, t->auth[i].kid, TB_KEYID_LEN);
}

const char *
tb_trust_root_pem(const struct tb_trust *t)
{
	return t->root_pem;
}
