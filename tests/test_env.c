/* SPDX-License-Identifier: Apache-2.0 */
/* test_env.c - envelopes: create, validate, seal, open, batches (protocol/tb_env). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/tb_key.h"
#include "protocol/tb_env.h"
#include "protocol/tb_json.h"
#include "util/tb_buf.h"
#include "util/tb_enc.h"
#include "util/tb_err.h"

#define NOW 1700000000LL
#define BODY                                                                                       \
	"{\"a\":\"h\xc3\xa9llo "                                                                   \
	"\xf0\x9f\x98\x80\",\"ctl\":\"\\u0000\\u001f\\n\",\"n\":[1,2.5,-3e-7]}"

static struct tb_key *keys[4]; /* ed25519, p256, unregistered ed25519, sm2 */
static struct tb_pub *pubs[4];

static int
setup_all(void **state)
{
	(void)state;
	if (tb_crypto_init() != TB_OK)
		return -1;
	keys[0] = tb_key_generate(TB_ALG_ED25519, NULL);
	keys[1] = tb_key_generate(TB_ALG_P256, NULL);
	keys[2] = tb_key_generate(TB_ALG_ED25519, NULL);
	keys[3] = tb_key_generate(TB_ALG_SM2, NULL);
	for (int i = 0; i < 4; i++)
		if (keys[i] == NULL || (pubs[i] = tb_key_pub(keys[i])) == NULL)
			return -1;
	return 0;
}

static int
teardown_all(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++) {
		tb_pub_free(pubs[i]);
		tb_key_free(keys[i]);
	}
	return 0;
}

/* Key lookup: keys 0, 1 and 3 belong to member 320300; key 2 to nobody. */
static int lookups;
static const struct tb_pub *
lookup(void *ctx, const char *from, const uint8_t kid[TB_KEYID_LEN])
{
	(void)ctx;
	lookups++;
	if (strcmp(from, "320300") != 0)
		return NULL;
	for (int i = 0; i < 4; i++) {
		uint8_t id[TB_KEYID_LEN];
		if (i == 2)
			continue;
		tb_pub_id(pubs[i], id);
		if (memcmp(id, kid, TB_KEYID_LEN) == 0)
			return pubs[i];
	}
	return NULL;
}

static struct tb_env_open_opts
opts_at(int64_t now)
{
	struct tb_env_open_opts o;

	memset(&o, 0, sizeof(o));
	o.lookup = lookup;
	o.now = now;
	o.skew = TB_ENV_DEFAULT_SKEW;
	return o;
}

/* A case.submit from 320300 to 370800 created at NOW; nothing else set. */
static void
plain_fields(struct tb_env_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->type = "case.submit";
	f->from = "320300";
	f->to = "370800";
	f->created = NOW;
}

static struct tb_env *
make_env(const char *body)
{
	struct tb_env_fields f;
	struct tb_diag d;
	struct tb_env *e;

	plain_fields(&f);
	f.service = "hukou.transfer";
	f.corr = "00112233445566778899aabbccddeeff";
	f.body = (const uint8_t *)body;
	f.body_len = body ? strlen(body) : 0;
	e = tb_env_create(&f, &d);
	if (e == NULL)
		fail_msg("create: %s (%s)", tb_err_reason(d.code), d.detail);
	return e;
}

/* The text fn (tb_env_serialize or tb_env_serialize_compact) gives e. */
static char *
text_by(int (*fn)(const struct tb_env *, struct tb_buf *), const struct tb_env *e)
{
	struct tb_buf b;
	char *s;

	tb_buf_init(&b);
	assert_int_equal(fn(e, &b), TB_OK);
	s = strdup((const char *)b.data);
	tb_buf_free(&b);
	return s;
}

static char *
serialize(const struct tb_env *e)
{
	return text_by(tb_env_serialize, e);
}

static char *
sealed_text(int k)
{
	struct tb_env *e = make_env(BODY);
	struct tb_diag d;
	char *s;

	assert_int_equal(tb_env_seal(e, keys[k], &d), TB_OK);
	s = serialize(e);
	tb_env_free(e);
	return s;
}

/* Opens text at time now; returns the code and leaves d filled. */
static int
open_at(const char *text, size_t len, int64_t now, struct tb_diag *d)
{
	struct tb_env_open_opts o = opts_at(now);
	struct tb_env *e = (struct tb_env *)1;
	int rc = tb_env_open((const uint8_t *)text, len, &o, &e, d);

	if (rc == TB_OK) {
		assert_non_null(e);
		tb_env_free(e);
	} else {
		assert_null(e);
	}
	return rc;
}

static void
expect_open(const char *text, int code, const char *detail_part)
{
	struct tb_diag d;
	int rc = open_at(text, strlen(text), NOW, &d);

	if (rc != code)
		fail_msg("got %s (%s), want %s for %s", tb_err_reason(rc), rc ? d.detail : "",
		         tb_err_reason(code), text);
	if (rc != TB_OK)
		assert_int_equal(d.code, rc);
	if (detail_part != NULL && strstr(d.detail, detail_part) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", d.detail, detail_part);
}

/* ---- editing envelope text through the JSON tree ---- */

static struct tb_json *
copy_json(struct tb_json_doc *doc, const struct tb_json *v)
{
	size_t n;
	const char *s;
	struct tb_json *c;

	switch (tb_json_kind(v)) {
	case TB_JSON_NUMBER: return tb_json_new_number(doc, tb_json_number(v));
	case TB_JSON_STRING: s = tb_json_string(v, &n); return tb_json_new_string(doc, s, n);
	case TB_JSON_ARRAY:
		c = tb_json_new_array(doc);
		for (const struct tb_json *m = tb_json_first(v); m; m = tb_json_next(m))
			assert_int_equal(tb_json_append(c, copy_json(doc, m)), TB_OK);
		return c;
	case TB_JSON_OBJECT:
		c = tb_json_new_object(doc);
		for (const struct tb_json *m = tb_json_first(v); m; m = tb_json_next(m))
			assert_int_equal(
			    tb_json_set(doc, c, tb_json_key(m, NULL), copy_json(doc, m)), TB_OK);
		return c;
	default: return tb_json_new_literal(doc, tb_json_kind(v));
	}
}

/* text with the member at dotted path set to the JSON value (NULL: removed). */
static char *
edit(const char *text, const char *path, const char *value)
{
	struct tb_diag d;
	struct tb_json_doc *doc = tb_json_parse((const uint8_t *)text, strlen(text), NULL, &d);
	struct tb_json *obj, *v = NULL;
	char p[128], *dot, *last;
	struct tb_buf b;
	char *s;

	assert_non_null(doc);
	obj = tb_json_root(doc);
	snprintf(p, sizeof(p), "%s", path);
	last = p;
	while ((dot = strchr(last, '.')) != NULL) {
		*dot = '\0';
		obj = tb_json_get(obj, last);
		assert_non_null(obj);
		last = dot + 1;
	}
	if (value == NULL) {
		tb_json_remove(obj, last);
	} else {
		struct tb_json_doc *vd =
		    tb_json_parse((const uint8_t *)value, strlen(value), NULL, &d);
		if (vd == NULL)
			fail_msg("bad test value %s", value);
		v = copy_json(doc, tb_json_root(vd));
		tb_json_doc_free(vd);
		assert_int_equal(tb_json_set(doc, obj, last, v), TB_OK);
	}
	tb_buf_init(&b);
	assert_int_equal(tb_json_canon(tb_json_root(doc), NULL, &b), TB_OK);
	s = strdup((const char *)b.data);
	tb_buf_free(&b);
	tb_json_doc_free(doc);
	return s;
}

static void
expect_edit(const char *text, const char *path, const char *value, int code, const char *detail)
{
	char *t = edit(text, path, value);
	expect_open(t, code, detail);
	free(t);
}

/* ---- tests ---- */

static void
test_roundtrip(void **state)
{
	(void)state;
	for (int k = 0; k < 4; k++) {
		struct tb_env *e = make_env(BODY), *o;
		struct tb_env_open_opts op = opts_at(NOW + 10);
		struct tb_diag d;
		uint8_t dg0[32], dg1[32], dg2[32];
		struct tb_buf sb;
		char *text;

		assert_false(tb_env_sealed(e));
		assert_int_equal(strlen(tb_env_id(e)), 32);
		assert_int_equal(tb_env_digest(e, dg0), TB_OK);
		if (k == 2) { /* not registered */
			tb_env_free(e);
			continue;
		}
		assert_int_equal(tb_env_seal(e, keys[k], &d), TB_OK);
		assert_true(tb_env_sealed(e));
		if (k == 3) { /* an sm2-sealed envelope's digest is SM3 (PROTOCOL.md 5.2) */
			struct tb_buf t;
			uint8_t s256[32];
			tb_buf_init(&t);
			assert_int_equal(tb_env_signed_bytes(e, &t), TB_OK);
			tb_sha256(t.data, t.len, s256);
			assert_memory_equal(dg0, s256, 32); /* unsealed: SHA-256 */
			tb_sm3_hash(t.data, t.len, dg0);
			tb_buf_free(&t);
		}
		assert_int_equal(tb_env_digest(e, dg1), TB_OK);
		assert_memory_equal(dg0, dg1, 32); /* the signature is not signed */
		text = serialize(e);
		assert_int_equal(tb_env_open((const uint8_t *)text, strlen(text), &op, &o, &d),
		                 TB_OK);
		assert_string_equal(tb_env_id(o), tb_env_id(e));
		assert_string_equal(tb_env_type(o), "case.submit");
		assert_string_equal(tb_env_from(o), "320300");
		assert_string_equal(tb_env_to(o), "370800");
		assert_string_equal(tb_env_service(o), "hukou.transfer");
		assert_string_equal(tb_env_corr(o), "00112233445566778899aabbccddeeff");
		assert_null(tb_env_route_service(o));
		assert_int_equal(tb_env_created(o), NOW);
		assert_int_equal(tb_env_expires(o), NOW + TB_ENV_DEFAULT_TTL);
		assert_int_equal(tb_env_hops(o), TB_ENV_DEFAULT_HOPS);
		assert_int_equal(tb_env_alg(o), tb_key_alg(keys[k]));
		uint8_t kid[32];
		tb_key_id(keys[k], kid);
		assert_memory_equal(tb_env_kid(o), kid, 32);
		assert_int_equal(tb_json_count(tb_env_body(o)), 3);
		assert_int_equal(tb_env_digest(o, dg2), TB_OK);
		assert_memory_equal(dg0, dg2, 32);
		/* digest = SHA-256 of the canonical form without sig */
		tb_buf_init(&sb);
		assert_int_equal(tb_env_signed_bytes(o, &sb), TB_OK);
		assert_null(strstr((char *)sb.data, "\"sig\""));
		tb_alg_hash(tb_key_alg(keys[k]), sb.data, sb.len, dg2);
		assert_memory_equal(dg0, dg2, 32);
		char *nosig = edit(text, "sig", NULL);
		assert_string_equal((char *)sb.data, nosig);
		free(nosig);
		tb_buf_free(&sb);
		/* re-serialising the opened envelope gives the same bytes */
		char *again = serialize(o);
		assert_string_equal(again, text);
		free(again);
		/* and a second seal of the same envelope still opens */
		assert_int_equal(tb_env_seal(e, keys[k], &d), TB_OK);
		free(text);
		text = serialize(e);
		expect_open(text, TB_OK, NULL);
		free(text);
		tb_env_free(o);
		tb_env_free(e);
	}
	tb_env_free(NULL);
}

static void
test_route_request(void **state)
{
	struct tb_env_fields f;
	struct tb_diag d;
	struct tb_env *e;
	char *t;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.type = "identity.verify";
	f.from = "320300";
	f.route_service = "id.verify";
	f.route_region = "3713";
	f.created = NOW;
	f.ttl = TB_ENV_MAX_LIFETIME;
	f.hops = TB_ENV_MAX_HOPS;
	e = tb_env_create(&f, &d);
	assert_non_null(e);
	assert_null(tb_env_to(e));
	assert_string_equal(tb_env_route_service(e), "id.verify");
	assert_string_equal(tb_env_route_region(e), "3713");
	assert_int_equal(tb_env_expires(e), NOW + TB_ENV_MAX_LIFETIME);
	assert_int_equal(tb_json_count(tb_env_body(e)), 0);
	assert_int_equal(tb_env_seal(e, keys[1], &d), TB_OK);
	t = serialize(e);
	expect_open(t, TB_OK, NULL);
	free(t);
	tb_env_free(e);
}

static void
test_create_errors(void **state)
{
	static const struct {
		const char *type, *from, *to, *rs, *rr, *svc, *corr, *body;
		int64_t ttl;
		int hops, code;
		const char *detail;
	} v[] = {
	    {NULL, "320300", "370800", NULL, NULL, NULL, NULL, NULL, 0, 0, TB_E_FIELD_MISSING,
	     "type"},
	    {"receipt", NULL, "370800", NULL, NULL, NULL, NULL, NULL, 0, 0, TB_E_FIELD_MISSING,
	     "from"},
	    {"receipt", "320300", NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, TB_E_FIELD_MISSING,
	     "to"},
	    {"receipt", "320300", NULL, "a.b", NULL, NULL, NULL, NULL, 0, 0, TB_E_FIELD_MISSING,
	     "route.region"},
	    {"nope", "320300", "370800", NULL, NULL, NULL, NULL, NULL, 0, 0, TB_E_TYPE_UNKNOWN,
	     NULL},
	    {"receipt", "32030", "370800", NULL, NULL, NULL, NULL, NULL, 0, 0, TB_E_FIELD_VALUE,
	     "from"},
	    {"receipt", "320300", "x", NULL, NULL, NULL, NULL, NULL, 0, 0, TB_E_FIELD_VALUE, "to"},
	    {"receipt", "320300", "370800", NULL, NULL, "A", NULL, NULL, 0, 0, TB_E_FIELD_VALUE,
	     "service"},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, "abc", NULL, 0, 0, TB_E_FIELD_VALUE,
	     "corr"},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, NULL, "[]", 0, 0, TB_E_FIELD_TYPE,
	     "body"},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, NULL, "{", 0, 0, TB_E_JSON_SYNTAX,
	     NULL},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, NULL, "{\"a\":1,\"a\":2}", 0, 0,
	     TB_E_JSON_DUPKEY, NULL},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, NULL, NULL, TB_ENV_MAX_LIFETIME + 1,
	     0, TB_E_FIELD_VALUE, "expires"},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, NULL, NULL, -5, 0, TB_E_FIELD_VALUE,
	     "expires"},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, NULL, NULL, 0, 17, TB_E_FIELD_VALUE,
	     "hops"},
	    {"receipt", "320300", "370800", NULL, NULL, NULL, NULL, NULL, 0, -1, TB_E_FIELD_VALUE,
	     "hops"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct tb_env_fields f;
		struct tb_diag d;
		struct tb_env *e;

		memset(&f, 0, sizeof(f));
		f.type = v[i].type;
		f.from = v[i].from;
		f.to = v[i].to;
		f.route_service = v[i].rs;
		f.route_region = v[i].rr;
		f.service = v[i].svc;
		f.corr = v[i].corr;
		f.body = (const uint8_t *)v[i].body;
		f.body_len = v[i].body ? strlen(v[i].body) : 0;
		f.ttl = v[i].ttl;
		f.hops = v[i].hops;
		f.created = NOW;
		e = tb_env_create(&f, &d);
		if (e != NULL) {
			tb_env_free(e);
			fail_msg("case %zu accepted", i);
		}
		if (d.code != v[i].code)
			fail_msg("case %zu: got %s (%s), want %s", i, tb_err_reason(d.code),
			         d.detail, tb_err_reason(v[i].code));
		if (v[i].detail && strstr(d.detail, v[i].detail) == NULL)
			fail_msg("case %zu: detail \"%s\" lacks \"%s\"", i, d.detail, v[i].detail);
	}
}

/* Whatever body tb_env_create accepts must give an envelope that opens. */
static void
test_create_body_limits(void **state)
{
	(void)state;
	for (int depth = 28; depth <= 34; depth++) {
		struct tb_buf b;
		struct tb_env_fields f;
		struct tb_diag d;
		struct tb_env *e;

		tb_buf_init(&b);
		for (int i = 0; i < depth; i++)
			tb_buf_adds(&b, i == 0 ? "{\"x\":" : i == depth - 1 ? "{}" : "[");
		for (int i = depth - 2; i >= 1; i--)
			tb_buf_adds(&b, "]");
		if (depth > 1)
			tb_buf_adds(&b, "}");
		memset(&f, 0, sizeof(f));
		f.type = "receipt";
		f.from = "320300";
		f.to = "370800";
		f.body = b.data;
		f.body_len = b.len;
		f.created = NOW;
		e = tb_env_create(&f, &d);
		int tcode = d.code;
		/* the body given parsed: the same limit */
		struct tb_json_doc *bj = tb_json_parse(b.data, b.len, NULL, &d);
		struct tb_env *ej;
		assert_non_null(bj);
		f.body_json = tb_json_root(bj);
		ej = tb_env_create(&f, &d);
		assert_int_equal(ej != NULL, e != NULL);
		if (ej == NULL)
			assert_int_equal(d.code, TB_E_JSON_DEPTH);
		tb_env_free(ej);
		tb_json_doc_free(bj);
		f.body_json = NULL;
		if (e != NULL) {
			char *t;
			assert_int_equal(tb_env_seal(e, keys[0], &d), TB_OK);
			t = serialize(e);
			struct tb_diag od;
			if (open_at(t, strlen(t), NOW, &od) != TB_OK)
				fail_msg("body of depth %d accepted by create, refused by open: %s",
				         depth, tb_err_reason(od.code));
			free(t);
			tb_env_free(e);
		} else {
			assert_int_equal(tcode, TB_E_JSON_DEPTH);
		}
		tb_buf_free(&b);
	}
	/* a body so large that the envelope could never be opened */
	int accepted = 0, refused = 0;
	for (size_t pad = 63500; pad <= 66000; pad += 100) {
		struct tb_buf b;
		struct tb_env_fields f;
		struct tb_diag d;
		struct tb_env *e;

		tb_buf_init(&b);
		tb_buf_adds(&b, "{\"pad\":\"");
		for (size_t i = 0; i < pad; i++)
			tb_buf_addc(&b, 'x');
		tb_buf_adds(&b, "\"}");
		memset(&f, 0, sizeof(f));
		f.type = "receipt";
		f.from = "320300";
		f.to = "370800";
		f.body = b.data;
		f.body_len = b.len;
		f.created = NOW;
		e = tb_env_create(&f, &d);
		if (e != NULL) {
			char *t;
			assert_int_equal(tb_env_seal(e, keys[0], &d), TB_OK);
			t = serialize(e);
			struct tb_diag od;
			if (open_at(t, strlen(t), NOW, &od) != TB_OK)
				fail_msg(
				    "body of %zu bytes accepted by create, refused by open: %s",
				    b.len, tb_err_reason(od.code));
			free(t);
			tb_env_free(e);
			accepted++;
		} else {
			assert_int_equal(d.code, TB_E_TOO_LARGE);
			refused++;
		}
		tb_buf_free(&b);
	}
	assert_true(accepted > 0 && refused > 0);
}

static void
test_every_byte(void **state)
{
	(void)state;
	for (int k = 0; k < 2; k++) {
		char *t = sealed_text(k);
		size_t n = strlen(t);
		static const uint8_t flips[] = {0x01, 0x02, 0x40};

		expect_open(t, TB_OK, NULL);
		for (size_t i = 0; i < n; i++) {
			char orig = t[i];
			for (size_t f = 0; f < sizeof(flips); f++) {
				struct tb_diag d;
				t[i] = (char)(orig ^ flips[f]);
				if (open_at(t, n, NOW, &d) == TB_OK)
					fail_msg("%s: byte %zu changed '%c'->'%c' still opens: %s",
					         tb_alg_name(tb_key_alg(keys[k])), i, orig, t[i],
					         t);
			}
			t[i] = orig;
			/* truncation at every length fails too */
			struct tb_diag d;
			assert_int_not_equal(open_at(t, i, NOW, &d), TB_OK);
		}
		expect_open(t, TB_OK, NULL);
		free(t);
	}
}

static void
test_sig_tamper(void **state)
{
	(void)state;
	for (int k = 0; k < 2; k++) {
		char *t = sealed_text(k), *v = strstr(t, "\"val\":\"");
		struct tb_diag d;

		assert_non_null(v);
		v += 7;
		for (size_t i = 0; i < 85; i++) { /* the 86th carries padding bits */
			char orig = v[i];
			v[i] = orig == 'A' ? 'B' : 'A';
			if (open_at(t, strlen(t), NOW, &d) != TB_E_SIG_BAD)
				fail_msg("val[%zu] changed: %s", i, tb_err_reason(d.code));
			v[i] = orig;
		}
		expect_open(t, TB_OK, NULL);
		/* the signature from the other algorithm's key */
		char *u = sealed_text(k == 0 ? 1 : 0);
		char *uv = strstr(u, "\"val\":\"") + 7;
		memcpy(v, uv, 86);
		expect_open(t, TB_E_SIG_BAD, NULL);
		free(u);
		free(t);

		/* alg does not match the key */
		t = sealed_text(k);
		expect_edit(t, "sig.alg", k == 0 ? "\"p256\"" : "\"ed25519\"", TB_E_SIG_ALG, NULL);
		expect_edit(t, "sig.alg", "\"rsa\"", TB_E_SIG_ALG, NULL);
		expect_edit(t, "sig.alg", k == 0 ? "\"ed25519\\u0000\"" : "\"p256\\u0000x\"",
		            TB_E_SIG_ALG, NULL);
		/* unsealed */
		expect_edit(t, "sig", NULL, TB_E_SIG_MISSING, NULL);
		free(t);
	}
}

static void
test_unknown_key(void **state)
{
	char *t = sealed_text(2);
	struct tb_diag d;
	struct tb_env_open_opts o = opts_at(NOW);
	struct tb_env *e;

	(void)state;
	expect_open(t, TB_E_SIG_KEYID, NULL);
	o.lookup = NULL;
	assert_int_equal(tb_env_open((const uint8_t *)t, strlen(t), &o, &e, &d), TB_E_SIG_KEYID);
	free(t);
	/* a registered key, but the envelope says another sender */
	t = sealed_text(0);
	expect_edit(t, "from", "\"370800\"", TB_E_SIG_KEYID, "370800");
	free(t);
}

/* A member name holding U+0000 is never the shorter name: each such
 * member is refused as unknown, in the envelope, its route, relay record,
 * signature block and batch block alike. */
static void
test_nul_names(void **state)
{
	static const struct {
		const char *from, *to;
	} cases[] = {
	    {"\"hops\":", "\"hops\\u0000x\":1,\"hops\":"},
	    {"\"from\":", "\"from\\u0000\":\"370800\",\"from\":"},
	    {"\"alg\":", "\"alg\\u0000\":\"p256\",\"alg\":"},
	    {"\"sig\":{", "\"relay\":{\"path\":[],\"path\\u0000\":1},\"sig\":{"},
	    {"\"to\":\"370800\"", "\"route\":{\"service\":\"a\",\"region\":\"32\",\"region\\u0000\":1}"},
	};
	char *t = sealed_text(0);

	(void)state;
	expect_open(t, TB_OK, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *at = strstr(t, cases[i].from);
		char *bad;
		assert_non_null(at);
		bad = malloc(strlen(t) + strlen(cases[i].to) + 1);
		assert_non_null(bad);
		memcpy(bad, t, (size_t)(at - t));
		strcpy(bad + (at - t), cases[i].to);
		strcat(bad, at + strlen(cases[i].from));
		expect_open(bad, TB_E_FIELD_UNKNOWN, "unknown member");
		free(bad);
	}
	free(t);
}

static void
test_time(void **state)
{
	char *t = sealed_text(0);
	struct tb_diag d;
	int64_t exp = NOW + TB_ENV_DEFAULT_TTL;

	(void)state;
	assert_int_equal(open_at(t, strlen(t), exp - 1, &d), TB_OK);
	assert_int_equal(open_at(t, strlen(t), exp, &d), TB_E_EXPIRED);
	assert_int_equal(open_at(t, strlen(t), exp + 1000000, &d), TB_E_EXPIRED);
	assert_int_equal(open_at(t, strlen(t), NOW - TB_ENV_DEFAULT_SKEW, &d), TB_OK);
	assert_int_equal(open_at(t, strlen(t), NOW - TB_ENV_DEFAULT_SKEW - 1, &d),
	                 TB_E_NOT_YET_VALID);
	assert_int_equal(open_at(t, strlen(t), 0, &d), TB_E_NOT_YET_VALID);
	struct tb_env_open_opts o = opts_at(NOW - 1000);
	struct tb_env *e;
	o.skew = 1000;
	assert_int_equal(tb_env_open((const uint8_t *)t, strlen(t), &o, &e, &d), TB_OK);
	tb_env_free(e);
	o.skew = 999;
	assert_int_equal(tb_env_open((const uint8_t *)t, strlen(t), &o, &e, &d),
	                 TB_E_NOT_YET_VALID);
	free(t);
}

static void
test_fields(void **state)
{
	static const struct {
		const char *path, *value;
		int code;
		const char *detail;
	} v[] = {
	    /* missing */
	    {"v", NULL, TB_E_FIELD_MISSING, "v"},
	    {"id", NULL, TB_E_FIELD_MISSING, "id"},
	    {"type", NULL, TB_E_FIELD_MISSING, "type"},
	    {"from", NULL, TB_E_FIELD_MISSING, "from"},
	    {"to", NULL, TB_E_FIELD_MISSING, "to"},
	    {"created", NULL, TB_E_FIELD_MISSING, "created"},
	    {"expires", NULL, TB_E_FIELD_MISSING, "expires"},
	    {"hops", NULL, TB_E_FIELD_MISSING, "hops"},
	    {"body", NULL, TB_E_FIELD_MISSING, "body"},
	    {"sig.alg", NULL, TB_E_FIELD_MISSING, "sig.alg"},
	    {"sig.kid", NULL, TB_E_FIELD_MISSING, "sig.kid"},
	    {"sig.val", NULL, TB_E_FIELD_MISSING, "sig.val"},
	    {"route", "{\"service\":\"a\"}", TB_E_FIELD_MISSING, "route.region"},
	    {"route", "{\"region\":\"32\"}", TB_E_FIELD_MISSING, "route.service"},
	    {"relay", "{}", TB_E_FIELD_MISSING, "relay.path"},
	    {"sig.batch", "{\"n\":2,\"i\":0}", TB_E_FIELD_MISSING, "sig.batch.path"},
	    {"sig.batch", "{\"i\":0,\"path\":[]}", TB_E_FIELD_MISSING, "sig.batch.n"},
	    /* wrong types */
	    {"v", "\"1\"", TB_E_FIELD_TYPE, "v"},
	    {"v", "1.5", TB_E_FIELD_TYPE, "v"},
	    {"id", "1", TB_E_FIELD_TYPE, "id"},
	    {"type", "null", TB_E_FIELD_TYPE, "type"},
	    {"from", "320300", TB_E_FIELD_TYPE, "from"},
	    {"to", "[\"370800\"]", TB_E_FIELD_TYPE, "to"},
	    {"route", "\"x\"", TB_E_FIELD_TYPE, "route"},
	    {"service", "true", TB_E_FIELD_TYPE, "service"},
	    {"corr", "{}", TB_E_FIELD_TYPE, "corr"},
	    {"created", "\"1700000000\"", TB_E_FIELD_TYPE, "created"},
	    {"expires", "1700000000.5", TB_E_FIELD_TYPE, "expires"},
	    {"expires", "1e300", TB_E_FIELD_TYPE, "expires"},
	    {"hops", "\"4\"", TB_E_FIELD_TYPE, "hops"},
	    {"hops", "4.5", TB_E_FIELD_TYPE, "hops"},
	    {"body", "[]", TB_E_FIELD_TYPE, "body"},
	    {"body", "\"{}\"", TB_E_FIELD_TYPE, "body"},
	    {"sig", "\"x\"", TB_E_FIELD_TYPE, "sig"},
	    {"sig.val", "64", TB_E_FIELD_TYPE, "sig.val"},
	    {"sig.batch", "[]", TB_E_FIELD_TYPE, "sig.batch"},
	    {"relay", "[]", TB_E_FIELD_TYPE, "relay"},
	    {"relay", "{\"path\":\"320000\"}", TB_E_FIELD_TYPE, "relay.path"},
	    /* bad values */
	    {"id", "\"0011223344556677889900aabbccddee0\"", TB_E_FIELD_VALUE, "id"},
	    {"id", "\"0011223344556677889900aabbccdde\"", TB_E_FIELD_VALUE, "id"},
	    {"id", "\"0011223344556677889900AABBCCDDEE\"", TB_E_FIELD_VALUE, "id"},
	    {"id", "\"0011223344556677889900aabbccddeg\"", TB_E_FIELD_VALUE, "id"},
	    {"id", "\"\"", TB_E_FIELD_VALUE, "id"},
	    {"from", "\"32030\"", TB_E_FIELD_VALUE, "from"},
	    {"from", "\"3203000\"", TB_E_FIELD_VALUE, "from"},
	    {"from", "\"032030\"", TB_E_FIELD_VALUE, "from"},
	    {"from", "\"32030a\"", TB_E_FIELD_VALUE, "from"},
	    {"from", "\"320300\\u0000\"", TB_E_FIELD_VALUE, "from"},
	    {"to", "\"37080\"", TB_E_FIELD_VALUE, "to"},
	    {"hops", "0", TB_E_FIELD_VALUE, "hops"},
	    {"hops", "17", TB_E_FIELD_VALUE, "hops"},
	    {"hops", "-1", TB_E_FIELD_VALUE, "hops"},
	    {"created", "0", TB_E_FIELD_VALUE, "created"},
	    {"created", "-5", TB_E_FIELD_VALUE, "created"},
	    {"expires", "1700000000", TB_E_FIELD_VALUE, "expires"},
	    {"expires", "1699999999", TB_E_FIELD_VALUE, "expires"},
	    {"expires", "1702592001", TB_E_FIELD_VALUE, "expires"},
	    {"service", "\"Hukou\"", TB_E_FIELD_VALUE, "service"},
	    {"service", "\".hukou\"", TB_E_FIELD_VALUE, "service"},
	    {"service", "\"hukou-\"", TB_E_FIELD_VALUE, "service"},
	    {"service", "\"hu kou\"", TB_E_FIELD_VALUE, "service"},
	    {"service", "\"\"", TB_E_FIELD_VALUE, "service"},
	    {"service", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
	     TB_E_FIELD_VALUE, "service"},
	    {"corr", "\"abc\"", TB_E_FIELD_VALUE, "corr"},
	    {"route", "{\"service\":\"x\",\"region\":\"3\"}", TB_E_FIELD_VALUE, "route.region"},
	    {"route", "{\"service\":\"x\",\"region\":\"32030\"}", TB_E_FIELD_VALUE, "route.region"},
	    {"route", "{\"service\":\"x\",\"region\":\"012345\"}", TB_E_FIELD_VALUE,
	     "route.region"},
	    {"route", "{\"service\":\"X\",\"region\":\"32\"}", TB_E_FIELD_VALUE, "route.service"},
	    {"relay", "{\"path\":[\"32000\"]}", TB_E_FIELD_VALUE, "relay.path"},
	    {"relay", "{\"path\":[1]}", TB_E_FIELD_VALUE, "relay.path"},
	    {"sig.kid", "\"00\"", TB_E_FIELD_VALUE, "sig.kid"},
	    {"sig.val", "\"AAAA\"", TB_E_FIELD_VALUE, "sig.val"},
	    /* unknown members */
	    {"extra", "1", TB_E_FIELD_UNKNOWN, "extra"},
	    {"Type", "\"receipt\"", TB_E_FIELD_UNKNOWN, "Type"},
	    {"sig.x", "1", TB_E_FIELD_UNKNOWN, "sig.x"},
	    {"route", "{\"service\":\"x\",\"region\":\"32\",\"y\":1}", TB_E_FIELD_UNKNOWN,
	     "route.y"},
	    {"relay", "{\"path\":[],\"z\":0}", TB_E_FIELD_UNKNOWN, "relay.z"},
	    {"sig.batch", "{\"n\":2,\"i\":0,\"path\":[],\"q\":0}", TB_E_FIELD_UNKNOWN,
	     "sig.batch.q"},
	    /* version and type */
	    {"v", "2", TB_E_VERSION, NULL},
	    {"v", "0", TB_E_VERSION, NULL},
	    {"type", "\"case.bogus\"", TB_E_TYPE_UNKNOWN, NULL},
	    {"type", "\"Receipt\"", TB_E_TYPE_UNKNOWN, NULL},
	    {"type", "\"receipt\\u0000x\"", TB_E_TYPE_UNKNOWN, NULL},
	    /* hops and relay loops */
	    {"relay", "{\"path\":[\"320000\",\"370000\",\"320000\"]}", TB_E_HOPS, "320000"},
	    {"relay", "{\"path\":[\"320000\",\"370000\",\"340000\",\"410000\",\"370800\"]}",
	     TB_E_HOPS, NULL},
	    /* the sender or the recipient in the path is a loop (PROTOCOL.md 3.2) */
	    {"relay", "{\"path\":[\"320000\",\"320300\"]}", TB_E_HOPS, "320300 is the sender"},
	    {"relay", "{\"path\":[\"370800\"]}", TB_E_HOPS, "370800 is the recipient"},
	    /* valid, but not what was signed */
	    {"hops", "16", TB_E_SIG_BAD, NULL},
	    {"to", "\"371300\"", TB_E_SIG_BAD, NULL},
	    {"body.a", "\"hallo\"", TB_E_SIG_BAD, NULL},
	    {"route", "{\"service\":\"x\",\"region\":\"32\"}", TB_E_SIG_BAD, NULL},
	    {"expires", "1702592000", TB_E_SIG_BAD, NULL},
	    /* unsigned, may change */
	    {"relay", "{\"path\":[\"320000\",\"370000\"]}", TB_OK, NULL},
	    {"relay", "{\"path\":[]}", TB_OK, NULL},
	};
	char *t = sealed_text(0);

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *u = edit(t, v[i].path, v[i].value);
		struct tb_diag d;
		int rc = open_at(u, strlen(u), NOW, &d);
		if (rc != v[i].code)
			fail_msg("%s=%s: got %s (%s), want %s", v[i].path,
			         v[i].value ? v[i].value : "-", tb_err_reason(rc),
			         rc ? d.detail : "", tb_err_reason(v[i].code));
		if (v[i].detail != NULL && strstr(d.detail, v[i].detail) == NULL)
			fail_msg("%s: detail \"%s\" lacks \"%s\"", v[i].path, d.detail,
			         v[i].detail);
		/* the same code reaches a caller that passes no diag */
		struct tb_env_open_opts o = opts_at(NOW);
		struct tb_env *e = NULL;
		rc = tb_env_open((const uint8_t *)u, strlen(u), &o, &e, NULL);
		if (rc != v[i].code)
			fail_msg("%s=%s without diag: got %s, want %s", v[i].path,
			         v[i].value ? v[i].value : "-", tb_err_reason(rc),
			         tb_err_reason(v[i].code));
		tb_env_free(e);
		free(u);
	}
	/* not an object; not JSON; too deep; too large */
	expect_open("[]", TB_E_FIELD_TYPE, NULL);
	expect_open("\"x\"", TB_E_FIELD_TYPE, NULL);
	expect_open("{", TB_E_JSON_SYNTAX, NULL);
	expect_open("{\"v\":1,\"v\":1}", TB_E_JSON_DUPKEY, NULL);
	expect_open("{}", TB_E_FIELD_MISSING, "v");
	char *deep = edit(t, "body.d",
	                  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	expect_open(deep, TB_E_JSON_DEPTH, NULL);
	free(deep);
	struct tb_buf big;
	tb_buf_init(&big);
	tb_buf_adds(&big, "\"");
	for (int i = 0; i < TB_ENV_MAX_SIZE; i++)
		tb_buf_addc(&big, 'x');
	tb_buf_adds(&big, "\"");
	char *u = edit(t, "body.pad", (const char *)big.data);
	expect_open(u, TB_E_TOO_LARGE, NULL);
	free(u);
	tb_buf_free(&big);
	free(t);
}

static void
test_add_hop(void **state)
{
	struct tb_env_fields f;
	struct tb_diag d;
	struct tb_env *e, *o;
	uint8_t dg0[32], dg1[32];
	char *t;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.type = "receipt";
	f.from = "320300";
	f.to = "411400";
	f.hops = 3;
	f.created = NOW;
	e = tb_env_create(&f, &d);
	assert_non_null(e);
	assert_int_equal(tb_env_seal(e, keys[0], &d), TB_OK);
	assert_int_equal(tb_env_digest(e, dg0), TB_OK);
	assert_int_equal(tb_env_path_len(e), 0);
	assert_null(tb_env_path_at(e, 0));
	assert_int_equal(tb_env_add_hop(e, "32000"), TB_E_ARG);
	assert_int_equal(tb_env_add_hop(e, "320000"), TB_OK);
	assert_int_equal(tb_env_add_hop(e, "320000"), TB_E_HOPS); /* loop */
	assert_int_equal(tb_env_add_hop(e, "320300"), TB_E_HOPS); /* the sender */
	assert_int_equal(tb_env_add_hop(e, "411400"), TB_E_HOPS); /* the recipient */
	assert_int_equal(tb_env_add_hop(e, "370000"), TB_OK);
	assert_int_equal(tb_env_add_hop(e, "410000"), TB_OK);
	assert_int_equal(tb_env_add_hop(e, "340000"), TB_E_HOPS); /* limit 3 */
	assert_int_equal(tb_env_path_len(e), 3);
	assert_string_equal(tb_env_path_at(e, 0), "320000");
	assert_string_equal(tb_env_path_at(e, 2), "410000");
	assert_null(tb_env_path_at(e, 3));
	assert_int_equal(tb_env_digest(e, dg1), TB_OK);
	assert_memory_equal(dg0, dg1, 32);
	/* relaying keeps the signature */
	t = serialize(e);
	struct tb_env_open_opts op = opts_at(NOW);
	assert_int_equal(tb_env_open((const uint8_t *)t, strlen(t), &op, &o, &d), TB_OK);
	assert_int_equal(tb_env_path_len(o), 3);
	assert_string_equal(tb_env_path_at(o, 1), "370000");
	assert_int_equal(tb_env_add_hop(o, "340000"), TB_E_HOPS);
	tb_env_free(o);
	free(t);
	tb_env_free(e);
}

/* ---- batches ---- */

/* RFC 9162 2.1.1 Merkle Tree Hash, recursive: the independent oracle. */
static void
mth(enum tb_alg alg, uint8_t (*leaves)[32], size_t n, uint8_t out[32])
{
	uint8_t in[65], l[32], r[32];
	size_t k = 1;

	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	mth(alg, leaves, k, l);
	mth(alg, leaves + k, n - k, r);
	in[0] = 1;
	memcpy(in + 1, l, 32);
	memcpy(in + 33, r, 32);
	if (alg == TB_ALG_SM2)
		tb_sm3_hash(in, 65, out);
	else
		tb_sha256(in, 65, out);
}

static struct tb_env **
make_batch(size_t n, int k, char ***texts)
{
	struct tb_env **v = calloc(n, sizeof(*v));
	struct tb_diag d;

	*texts = calloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		v[i] = make_env(i % 2 ? BODY : "{\"i\":1}");
	assert_int_equal(tb_env_seal_batch(v, n, keys[k], &d), TB_OK);
	for (size_t i = 0; i < n; i++)
		(*texts)[i] = serialize(v[i]);
	return v;
}

static void
free_batch(struct tb_env **v, char **texts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		tb_env_free(v[i]);
		free(texts[i]);
	}
	free(v);
	free(texts);
}

static void
test_batch(void **state)
{
	static const size_t sizes[] = {2, 3, 5, 7, 8, 16, 33};

	(void)state;
	for (int k = 0; k < 4; k++) {
		if (k == 2)
			continue;
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			size_t n = sizes[si];
			char **t;
			struct tb_env **v = make_batch(n, k, &t);
			uint8_t(*leaves)[32] = calloc(n, 32), root[32], msg[56], sig[64];
			size_t outlen;

			for (size_t i = 0; i < n; i++) {
				struct tb_buf b;
				expect_open(t[i], TB_OK, NULL);
				char want[64];
				snprintf(want, sizeof(want), "\"batch\":{\"i\":%zu,\"n\":%zu,", i,
				         n);
				assert_non_null(strstr(t[i], want));
				/* leaf = SHA-256(0x00 || signed bytes); SM3 under sm2 */
				tb_buf_init(&b);
				tb_buf_addc(&b, 0);
				assert_int_equal(tb_env_signed_bytes(v[i], &b), TB_OK);
				if (k == 3)
					tb_sm3_hash(b.data, b.len, leaves[i]);
				else
					tb_sha256(b.data, b.len, leaves[i]);
				tb_buf_free(&b);
			}
			/* val signs "TONGBAN-BATCH-V1" || n (u64 BE) || MTH */
			mth(tb_key_alg(keys[k]), leaves, n, root);
			memcpy(msg, "TONGBAN-BATCH-V1", 16);
			for (int j = 0; j < 8; j++)
				msg[16 + j] = (uint8_t)((uint64_t)n >> (56 - 8 * j));
			memcpy(msg + 24, root, 32);
			const char *val = strstr(t[0], "\"val\":\"") + 7;
			assert_true(tb_b64url_decode(val, 86, sig, 64, &outlen));
			assert_true(tb_pub_verify(pubs[k], msg, 56, sig));

			/* tampering with one envelope fails only that one */
			size_t victim = n / 2;
			char *bad = edit(t[victim], "body.i", "2");
			expect_open(bad, TB_E_SIG_BAD, NULL);
			free(bad);
			for (size_t i = 0; i < n; i++)
				expect_open(t[i], TB_OK, NULL);

			/* another envelope's proof (and index) does not fit */
			for (size_t i = 0; i < n; i++) {
				size_t j = (i + 1) % n;
				struct tb_diag d;
				struct tb_json_doc *dj =
				    tb_json_parse((const uint8_t *)t[j], strlen(t[j]), NULL, &d);
				struct tb_buf sb;
				tb_buf_init(&sb);
				assert_int_equal(
				    tb_json_canon(tb_json_get(tb_json_root(dj), "sig"), NULL, &sb),
				    TB_OK);
				char *sw = edit(t[i], "sig", (const char *)sb.data);
				int rc = open_at(sw, strlen(sw), NOW, &d);
				if (rc != TB_E_SIG_PROOF && rc != TB_E_SIG_BAD)
					fail_msg("n=%zu: proof of %zu on %zu: %s", n, j, i,
					         tb_err_reason(rc));
				free(sw);
				/* only the path swapped, index kept */
				tb_buf_reset(&sb);
				assert_int_equal(
				    tb_json_canon(
				        tb_json_get(
				            tb_json_get(tb_json_get(tb_json_root(dj), "sig"),
				                        "batch"),
				            "path"),
				        NULL, &sb),
				    TB_OK);
				sw = edit(t[i], "sig.batch.path", (const char *)sb.data);
				rc = open_at(sw, strlen(sw), NOW, &d);
				if (rc != TB_E_SIG_PROOF && rc != TB_E_SIG_BAD)
					fail_msg("n=%zu: path of %zu on %zu: %s", n, j, i,
					         tb_err_reason(rc));
				free(sw);
				tb_buf_free(&sb);
				tb_json_doc_free(dj);
			}

			/* wrong n, wrong i, truncated / extended path */
			char num[32];
			for (size_t i = 0; i < n; i++) {
				struct tb_diag d;
				int rc;
				const char *const bads[][2] = {
				    {"sig.batch.n", NULL},    {"sig.batch.n", NULL},
				    {"sig.batch.i", NULL},    {"sig.batch.i", NULL},
				    {"sig.batch.i", "-1"},    {"sig.batch.n", "0"},
				    {"sig.batch.n", "65537"}, {"sig.batch.i", "0.5"},
				};
				for (size_t b = 0; b < sizeof(bads) / sizeof(bads[0]); b++) {
					const char *val2 = bads[b][1];
					if (b == 0)
						snprintf(num, sizeof(num), "%zu", n + 1),
						    val2 = num;
					if (b == 1)
						snprintf(num, sizeof(num), "%zu", n - 1),
						    val2 = num;
					if (b == 2)
						snprintf(num, sizeof(num), "%zu", (i + 1) % n),
						    val2 = num;
					if (b == 3)
						snprintf(num, sizeof(num), "%zu", n), val2 = num;
					char *u = edit(t[i], bads[b][0], val2);
					rc = open_at(u, strlen(u), NOW, &d);
					if (rc != TB_E_SIG_PROOF && rc != TB_E_SIG_BAD &&
					    rc != TB_E_FIELD_TYPE)
						fail_msg("n=%zu i=%zu %s=%s: %s", n, i, bads[b][0],
						         val2, tb_err_reason(rc));
					if (rc == TB_E_FIELD_TYPE && b != 7)
						fail_msg("n=%zu %s=%s: field.type", n, bads[b][0],
						         val2);
					free(u);
				}
				/* path: drop the last entry, add one, corrupt one */
				struct tb_json_doc *dj =
				    tb_json_parse((const uint8_t *)t[i], strlen(t[i]), NULL, &d);
				struct tb_json *path = tb_json_get(
				    tb_json_get(tb_json_get(tb_json_root(dj), "sig"), "batch"),
				    "path");
				size_t np = tb_json_count(path);
				struct tb_buf pb;
				for (int var = 0; var < 3; var++) {
					tb_buf_init(&pb);
					tb_buf_adds(&pb, "[");
					size_t c = 0;
					for (struct tb_json *p = tb_json_first(path); p;
					     p = tb_json_next(p), c++) {
						if (var == 0 && c == np - 1)
							break;
						const char *s = tb_json_string(p, NULL);
						char h[44];
						snprintf(h, sizeof(h), "%s", s);
						if (var == 2 && c == 0)
							h[5] = h[5] == 'A' ? 'B' : 'A';
						tb_buf_printf(&pb, "%s\"%s\"", c ? "," : "", h);
					}
					if (var == 1)
						tb_buf_printf(
						    &pb, "%s\"%s\"", np ? "," : "",
						    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
					tb_buf_adds(&pb, "]");
					char *u =
					    edit(t[i], "sig.batch.path", (const char *)pb.data);
					rc = open_at(u, strlen(u), NOW, &d);
					if (rc != TB_E_SIG_PROOF && rc != TB_E_SIG_BAD)
						fail_msg("n=%zu i=%zu path variant %d: %s", n, i,
						         var, tb_err_reason(rc));
					free(u);
					tb_buf_free(&pb);
				}
				tb_json_doc_free(dj);
			}
			/* a malformed proof entry is sig.proof */
			expect_edit(t[0], "sig.batch.path", "[\"AAAA\"]", TB_E_SIG_PROOF, NULL);
			expect_edit(t[0], "sig.batch.path", "[1]", TB_E_SIG_PROOF, NULL);
			expect_edit(t[0], "sig.batch.path",
			            "[\"AA\",\"AA\",\"AA\",\"AA\",\"AA\",\"AA\",\"AA\",\"AA\","
			            "\"AA\",\"AA\","
			            "\"AA\",\"AA\",\"AA\",\"AA\",\"AA\",\"AA\",\"AA\",\"AA\"]",
			            TB_E_SIG_PROOF, NULL);
			/* removing the batch block makes it a single signature: bad */
			expect_edit(t[0], "sig.batch", NULL, TB_E_SIG_BAD, NULL);

			free(leaves);
			free_batch(v, t, n);
		}
	}
	/* n = 1 is a plain seal, n = 0 an error */
	struct tb_env *one = make_env(NULL);
	struct tb_diag d;
	assert_int_equal(tb_env_seal_batch(&one, 1, keys[0], &d), TB_OK);
	char *t1 = serialize(one);
	assert_null(strstr(t1, "batch"));
	expect_open(t1, TB_OK, NULL);
	free(t1);
	assert_int_equal(tb_env_seal_batch(&one, 0, keys[0], &d), TB_E_ARG);
	tb_env_free(one);
}

/* ---- the verified-signature cache ---- */

struct cache {
	uint8_t tags[64][32];
	size_t n;
	int known_calls, remember_calls, hits;
};

static bool
cache_known(void *ctx, const uint8_t tag[32])
{
	struct cache *c = ctx;

	c->known_calls++;
	for (size_t i = 0; i < c->n; i++)
		if (memcmp(c->tags[i], tag, 32) == 0) {
			c->hits++;
			return true;
		}
	return false;
}

static void
cache_remember(void *ctx, const uint8_t tag[32])
{
	struct cache *c = ctx;

	c->remember_calls++;
	assert_true(c->n < 64);
	memcpy(c->tags[c->n++], tag, 32);
}

static struct cache *the_cache;

/* Options at now with the_cache as the signature cache. */
static struct tb_env_open_opts
cached_opts(int64_t now)
{
	struct tb_env_open_opts o = opts_at(now);

	o.ctx = the_cache;
	o.known = cache_known;
	o.remember = cache_remember;
	return o;
}

static int
open_cached(const char *t, int64_t now)
{
	struct tb_env_open_opts o = cached_opts(now);
	struct tb_env *e;
	struct tb_diag d;
	int rc;

	rc = tb_env_open((const uint8_t *)t, strlen(t), &o, &e, &d);
	tb_env_free(e);
	return rc;
}

static void
test_cache(void **state)
{
	struct cache c;
	char **t;
	struct tb_env **v = make_batch(5, 0, &t);

	(void)state;
	memset(&c, 0, sizeof(c));
	the_cache = &c;
	/* first envelope: verified and remembered; the others hit the cache */
	assert_int_equal(open_cached(t[0], NOW), TB_OK);
	assert_int_equal(c.known_calls, 1);
	assert_int_equal(c.remember_calls, 1);
	assert_int_equal(c.hits, 0);
	for (size_t i = 1; i < 5; i++)
		assert_int_equal(open_cached(t[i], NOW), TB_OK);
	assert_int_equal(c.known_calls, 5);
	assert_int_equal(c.remember_calls, 1);
	assert_int_equal(c.hits, 4);
	/* a cache hit does not skip the other checks */
	assert_int_equal(open_cached(t[1], NOW + TB_ENV_DEFAULT_TTL), TB_E_EXPIRED);
	char *u = edit(t[2], "body.i", "5"); /* other leaf, other root: no hit */
	assert_int_equal(open_cached(u, NOW), TB_E_SIG_BAD);
	free(u);
	u = edit(t[2], "extra", "1");
	assert_int_equal(open_cached(u, NOW), TB_E_FIELD_UNKNOWN);
	free(u);
	assert_int_equal(c.remember_calls, 1);
	/* a failed verification is not remembered */
	char *s = sealed_text(0), *val = strstr(s, "\"val\":\"") + 7, orig = val[3];
	val[3] = orig == 'A' ? 'B' : 'A';
	int before = c.remember_calls;
	assert_int_equal(open_cached(s, NOW), TB_E_SIG_BAD);
	assert_int_equal(c.remember_calls, before);
	val[3] = orig;
	/* single signatures get their own tag */
	assert_int_equal(open_cached(s, NOW), TB_OK);
	assert_int_equal(c.remember_calls, before + 1);
	assert_memory_not_equal(c.tags[0], c.tags[1], 32);
	free(s);
	/* NULL callbacks are fine */
	assert_int_equal(open_at(t[3], strlen(t[3]), NOW, NULL), TB_OK);
	free_batch(v, t, 5);
}

/* Opening canonical text takes the signed bytes from the text itself;
 * any other writing of the same envelope opens too, canonicalised, with
 * the same digest; and the cut never makes a forgery open. */
static uint64_t
opened_digest(const char *t, uint8_t dg[32], int *rc)
{
	struct tb_env_open_opts o = cached_opts(NOW);
	struct tb_env *e;
	struct tb_diag d;
	uint64_t recanon = 0;

	o.recanonicalised = &recanon;
	*rc = tb_env_open((const uint8_t *)t, strlen(t), &o, &e, &d);
	if (*rc == TB_OK) {
		assert_int_equal(tb_env_digest(e, dg), TB_OK);
		tb_env_free(e);
	}
	return recanon;
}

/* t with its first occurrence of from replaced by to (the caller frees). */
static char *
replace(const char *t, const char *from, const char *to)
{
	const char *p = strstr(t, from);
	size_t n = strlen(t) - strlen(from) + strlen(to) + 1;
	char *r = malloc(n);

	assert_non_null(p);
	snprintf(r, n, "%.*s%s%s", (int)(p - t), t, to, p + strlen(from));
	return r;
}

static void
test_open_canonical_text(void **state)
{
	struct cache c;
	char **t;
	struct tb_env **v = make_batch(3, 1, &t);
	uint8_t want[32], dg[32];
	int rc;

	(void)state;
	memset(&c, 0, sizeof(c));
	the_cache = &c;
	assert_int_equal(tb_env_digest(v[1], want), TB_OK);
	/* the text as sent: not canonicalised, the created envelope's digest */
	assert_int_equal(opened_digest(t[1], dg, &rc), 0);
	assert_int_equal(rc, TB_OK);
	assert_memory_equal(dg, want, 32);
	/* the same envelope written otherwise opens too, with the same
	 * digest: with whitespace, or a member moved, it is canonicalised;
	 * "sig" spelt with an escape is still the member the cut leaves out,
	 * and what remains is canonical */
	const struct {
		const char *from, *to;
		uint64_t recanon;
	} variants[] = {
	    {"{", "{ ", 1},
	    {"}", " }", 1},
	    {"\",\"", "\", \"", 1},
	    {",\"v\":1}", "}", 1},
	    {"\"sig\":", "\"\\u0073ig\":", 0},
	};
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		char *u = replace(t[1], variants[i].from, variants[i].to);
		if (i == 3) { /* "v" moved to the front */
			char *w = replace(u, "{", "{\"v\":1,");
			free(u);
			u = w;
		}
		uint64_t r = opened_digest(u, dg, &rc);
		if (rc != TB_OK || r != variants[i].recanon)
			fail_msg("variant %zu: %s, canonicalised %llu: %s", i, tb_err_reason(rc),
			         (unsigned long long)r, u);
		assert_memory_equal(dg, want, 32);
		free(u);
	}
	/* a relayed copy: the "relay" member is cut too */
	struct tb_env *r;
	struct tb_diag d;
	struct tb_env_open_opts o = opts_at(NOW);
	assert_int_equal(tb_env_open((const uint8_t *)t[1], strlen(t[1]), &o, &r, &d), TB_OK);
	assert_int_equal(tb_env_add_hop(r, "320000"), TB_OK);
	char *rt = serialize(r);
	tb_env_free(r);
	assert_non_null(strstr(rt, "\"relay\""));
	assert_int_equal(opened_digest(rt, dg, &rc), 0);
	assert_int_equal(rc, TB_OK);
	assert_memory_equal(dg, want, 32);
	free(rt);
	/* forgeries fail both ways: another body, a member added after
	 * "sig" (the cut must not drop it), a "sig" inside the body */
	char *f = replace(t[1], "\"n\":[1,", "\"n\":[2,");
	assert_int_equal(opened_digest(f, dg, &rc), 1);
	assert_int_equal(rc, TB_E_SIG_BAD);
	free(f);
	f = replace(t[1], "\"to\":", "\"tx\":1,\"to\":");
	opened_digest(f, dg, &rc);
	assert_int_equal(rc, TB_E_FIELD_UNKNOWN);
	free(f);
	f = replace(t[1], "\"ctl\":", "\"x\":{\"sig\":1},\"ctl\":"); /* not top level */
	assert_int_equal(opened_digest(f, dg, &rc), 1);
	assert_int_equal(rc, TB_E_SIG_BAD);
	free(f);
	free_batch(v, t, 3);
}

/* Splitting a batch's text: element ranges, strings with brackets,
 * quotes and long plain runs (scanned eight bytes at a time), and what is
 * not an array of objects. */
static void
test_split_batch(void **state)
{
	size_t off[4], len[4];
	char buf[512];
	static const char *const el[] = {
	    "{\"a\":\"}]\\\"{[\\\\\"}",
	    "{\"long\":\"0123456789abcdef0123456789abcdef0123456789\\\"}{\",\"n\":[1,{}]}",
	    "{}",
	};

	(void)state;
	snprintf(buf, sizeof(buf), " [%s, %s ,\n%s] ", el[0], el[1], el[2]);
	assert_int_equal(tb_env_split_batch((const uint8_t *)buf, strlen(buf), off, len, 4), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(len[i], strlen(el[i]));
		assert_memory_equal(buf + off[i], el[i], len[i]);
	}
	/* an escaped quote at every position of a long string */
	for (size_t pos = 0; pos < 20; pos++) {
		char str[40];
		memset(str, 'x', sizeof(str));
		str[pos] = '\\';
		str[pos + 1] = '"';
		str[30] = '\0';
		snprintf(buf, sizeof(buf), "[{\"s\":\"%s\"},{\"t\":1}]", str);
		assert_int_equal(tb_env_split_batch((const uint8_t *)buf, strlen(buf), off, len, 4),
		                 2);
		assert_int_equal(len[0], strlen(str) + 8);
		assert_int_equal(off[1], strlen(str) + 10);
	}
	static const char *const bad[] = {
	    "", "[]", "{}", "[1]", "[{}", "[{},]", "[{}]x", "[{\"a\":\"}]", "[{},{},{},{},{}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (tb_env_split_batch((const uint8_t *)bad[i], strlen(bad[i]), off, len, 4) != -1)
			fail_msg("split of %s did not fail", bad[i]);
}

static void
test_predicates(void **state)
{
	(void)state;
	assert_true(tb_member_id_valid("320300", 6));
	assert_false(tb_member_id_valid("020300", 6));
	assert_false(tb_member_id_valid("32030", 5));
	assert_false(tb_member_id_valid("32030x", 6));
	assert_true(tb_region_code_valid("32", 2));
	assert_true(tb_region_code_valid("3203", 4));
	assert_true(tb_region_code_valid("320300", 6));
	assert_false(tb_region_code_valid("320", 3));
	assert_false(tb_region_code_valid("02", 2));
	assert_true(tb_service_code_valid("hukou.transfer", 14));
	assert_true(tb_service_code_valid("a-b.c9", 6));
	assert_false(tb_service_code_valid("a..", 3));
	assert_false(tb_service_code_valid("-a", 2));
	assert_false(tb_service_code_valid("a_b", 3));
	assert_false(tb_service_code_valid("", 0));
	size_t n = 0;
	for (const char *const *t = tb_msgtype_all(); *t != NULL; t++, n++)
		assert_true(tb_msgtype_known(*t));
	assert_int_equal(n, 19);
	assert_false(tb_msgtype_known("case"));
	assert_false(tb_msgtype_known(""));
}

/* A body given parsed (body_json) makes the same envelope as its text;
 * a body that is not an object is refused either way. */
static void
test_create_body_json(void **state)
{
	struct tb_env_fields f;
	struct tb_diag d;
	struct tb_env *et, *ej;
	struct tb_json_doc *bj;
	char *st, *sj;

	(void)state;
	plain_fields(&f);
	f.id_ms = NOW * 1000;
	f.body = (const uint8_t *)BODY;
	f.body_len = strlen(BODY);
	assert_non_null(et = tb_env_create(&f, &d));
	assert_non_null(bj = tb_json_parse((const uint8_t *)BODY, strlen(BODY), NULL, &d));
	f.body = NULL;
	f.body_len = 0;
	f.body_json = tb_json_root(bj);
	assert_non_null(ej = tb_env_create(&f, &d));
	st = serialize(et);
	sj = serialize(ej);
	/* only the random part of the id differs */
	memcpy(strstr(sj, tb_env_id(ej)), tb_env_id(et), 32);
	assert_string_equal(st, sj);
	free(st);
	free(sj);
	tb_env_free(et);
	tb_env_free(ej);
	tb_json_doc_free(bj);
	assert_non_null(bj = tb_json_parse((const uint8_t *)"[1]", 3, NULL, &d));
	f.body_json = tb_json_root(bj);
	assert_null(tb_env_create(&f, &d));
	assert_int_equal(d.code, TB_E_FIELD_TYPE);
	tb_json_doc_free(bj);
}

/* The wire form of a created envelope is spliced from its cached signed
 * bytes; it must equal the canonical form serialised in full (what a
 * parsed copy gives), for every shape of envelope. */
static void
test_serialize_spliced(void **state)
{
	static const char *const bodies[] = {NULL, "{}", BODY,
	                                     "{\"sig\":1,\"z\":[{\"a\":\"}\\\"\"}]}",
	                                     "{\"n\":-1.5e-7,\"t\":true,\"x\":null}"};
	struct tb_env *e[8];
	struct tb_diag d;

	(void)state;
	for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
		for (int shape = 0; shape < 4; shape++) {
			struct tb_env_fields f;
			memset(&f, 0, sizeof(f));
			f.type = shape == 3 ? "receipt" : "case.submit";
			f.from = "320300";
			f.to = shape == 1 ? NULL : "370800";
			f.route_service = shape == 1 ? "hukou.transfer" : NULL;
			f.route_region = shape == 1 ? "3708" : NULL;
			f.service = shape >= 1 ? "hukou.transfer" : NULL;
			f.corr = shape == 3 ? "00112233445566778899aabbccddeeff" : NULL;
			f.body = (const uint8_t *)bodies[b];
			f.body_len = bodies[b] ? strlen(bodies[b]) : 0;
			f.created = NOW;
			for (int k = 0; k < 3; k++) {
				e[k] = tb_env_create(&f, &d);
				if (e[k] == NULL)
					fail_msg("create: %s", d.detail);
			}
			/* single seal and a batch of two */
			assert_int_equal(tb_env_seal(e[0], keys[0], &d), TB_OK);
			assert_int_equal(tb_env_seal_batch(e + 1, 2, keys[1], &d), TB_OK);
			for (int k = 0; k < 3; k++) {
				char *fast = serialize(e[k]);
				struct tb_env *p =
				    tb_env_parse((const uint8_t *)fast, strlen(fast), &d);
				assert_non_null(p);
				char *full = serialize(p);
				assert_string_equal(fast, full);
				/* relayed: serialised in full, relay in its place */
				assert_int_equal(tb_env_add_hop(e[k], "370000"), TB_OK);
				char *rel = serialize(e[k]);
				assert_non_null(strstr(rel, "\"relay\":"));
				tb_env_free(p);
				assert_non_null(
				    p = tb_env_parse((const uint8_t *)rel, strlen(rel), &d));
				char *rel2 = serialize(p);
				assert_string_equal(rel, rel2);
				free(fast);
				free(full);
				free(rel);
				free(rel2);
				tb_env_free(p);
				tb_env_free(e[k]);
			}
		}
	}
}

/* Ids: the time in ms in the first 12 hex digits, then 80 random bits;
 * ids made later sort after earlier ones. */
/* Opens the texts as the elements of one batch answer (tb_env_open_many);
 * fills codes[] and, for opened ones, full[] with their serialisation. */
static void
open_answer(char **texts, size_t n, int *codes, char **full)
{
	struct tb_env_open_opts o = opts_at(NOW);
	struct tb_buf all;
	size_t *off = calloc(n, sizeof(*off)), *len = calloc(n, sizeof(*len));
	struct tb_env **out = calloc(n, sizeof(*out));
	struct tb_diag *d = calloc(n, sizeof(*d));

	tb_buf_init(&all);
	for (size_t i = 0; i < n; i++) {
		off[i] = all.len;
		len[i] = strlen(texts[i]);
		tb_buf_adds(&all, texts[i]);
	}
	tb_env_open_many(all.data, off, len, n, &o, out, d);
	for (size_t i = 0; i < n; i++) {
		codes[i] = out[i] != NULL ? TB_OK : d[i].code;
		if (out[i] == NULL)
			assert_int_not_equal(d[i].code, TB_OK);
		full[i] = out[i] != NULL ? serialize(out[i]) : NULL;
		tb_env_free(out[i]);
	}
	tb_buf_free(&all);
	free(off);
	free(len);
	free(out);
	free(d);
}

/* Compact batch answers: members without paths, completed from all n. */
static void
test_compact_batch(void **state)
{
	static const size_t sizes[] = {2, 3, 5, 8, 13, 32, 33};

	(void)state;
	for (int k = 0; k < 4; k++) {
		if (k == 2)
			continue;
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			size_t n = sizes[si];
			char **t, **c = calloc(n + 2, sizeof(char *)),
			          **full = calloc(n + 2, sizeof(char *));
			int *codes = calloc(n + 2, sizeof(int));
			struct tb_env **v = make_batch(n, k, &t);

			for (size_t i = 0; i < n; i++) {
				c[i] = text_by(tb_env_serialize_compact, v[i]);
				assert_null(strstr(c[i], "\"path\""));
				assert_non_null(strstr(c[i], "\"batch\":{\"i\":"));
				/* alone, a compact member is not an envelope */
				expect_open(c[i], TB_E_FIELD_MISSING, "path");
			}
			/* all n, in reverse order: each opens and serialises to
			 * exactly the bytes the sealer kept */
			for (size_t i = 0; i < n / 2; i++) {
				char *x = c[i];
				c[i] = c[n - 1 - i];
				c[n - 1 - i] = x;
			}
			open_answer(c, n, codes, full);
			for (size_t i = 0; i < n; i++) {
				assert_int_equal(codes[i], TB_OK);
				assert_string_equal(full[i], t[n - 1 - i]);
				free(full[i]);
			}
			/* with full members and an error object beside them */
			c[n] = strdup(t[0]);
			c[n + 1] = strdup("{\"error\":\"replay\",\"id\":\"x\"}");
			open_answer(c, n + 2, codes, full);
			for (size_t i = 0; i < n + 1; i++) {
				assert_int_equal(codes[i], TB_OK);
				free(full[i]);
			}
			assert_int_not_equal(codes[n + 1], TB_OK);
			assert_null(full[n + 1]);
			/* one member missing: none of the compact ones opens */
			open_answer(c + 1, n - 1, codes, full);
			for (size_t i = 0; i < n - 1; i++)
				assert_int_equal(codes[i], TB_E_SIG_PROOF);
			/* a member twice instead of another */
			char *keep = c[1];
			c[1] = strdup(c[0]);
			open_answer(c, n, codes, full);
			for (size_t i = 0; i < n; i++)
				assert_int_equal(codes[i], TB_E_SIG_PROOF);
			free(c[1]);
			c[1] = keep;
			/* a changed member changes the root: the signature fails */
			char *bad = edit(c[n / 2], "body.i", "7");
			if (strcmp(bad, c[n / 2]) == 0) { /* BODY has no "i" */
				free(bad);
				bad = edit(c[n / 2], "body.a", "\"x\"");
			}
			keep = c[n / 2];
			c[n / 2] = bad;
			open_answer(c, n, codes, full);
			for (size_t i = 0; i < n; i++)
				assert_int_equal(codes[i], TB_E_SIG_BAD);
			c[n / 2] = keep;
			free(bad);
			for (size_t i = 0; i < n + 2; i++)
				free(c[i]);
			free(c);
			free(full);
			free(codes);
			free_batch(v, t, n);
		}
	}
	/* a single seal or a parsed envelope has no compact form */
	struct tb_env *e = make_env(BODY);
	struct tb_diag d;
	struct tb_buf b;
	tb_buf_init(&b);
	assert_int_equal(tb_env_serialize_compact(e, &b), TB_E_ARG);
	assert_int_equal(tb_env_seal(e, keys[0], &d), TB_OK);
	assert_int_equal(tb_env_serialize_compact(e, &b), TB_E_ARG);
	assert_int_equal(b.len, 0);
	tb_buf_free(&b);
	tb_env_free(e);
}

static void
test_id_time(void **state)
{
	struct tb_env_fields f;
	struct tb_diag d;
	struct tb_env *e[3];
	char prefix[13];

	(void)state;
	plain_fields(&f);
	/* without id_ms: created, in milliseconds (1700000000000 = 0x018bcfe56800) */
	assert_non_null(e[0] = tb_env_create(&f, &d));
	assert_int_equal(strlen(tb_env_id(e[0])), 32);
	assert_memory_equal(tb_env_id(e[0]), "018bcfe56800", 12);
	f.id_ms = NOW * 1000 + 999;
	assert_non_null(e[1] = tb_env_create(&f, &d));
	snprintf(prefix, sizeof(prefix), "%012llx", (unsigned long long)(NOW * 1000 + 999));
	assert_memory_equal(tb_env_id(e[1]), prefix, 12);
	assert_true(strcmp(tb_env_id(e[0]), tb_env_id(e[1])) < 0);
	/* same millisecond: same prefix, the random rest differs */
	assert_non_null(e[2] = tb_env_create(&f, &d));
	assert_memory_equal(tb_env_id(e[2]), prefix, 12);
	assert_string_not_equal(tb_env_id(e[1]) + 12, tb_env_id(e[2]) + 12);
	for (int i = 0; i < 3; i++)
		tb_env_free(e[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_nul_names),
	    cmocka_unit_test(test_route_request),
	    cmocka_unit_test(test_create_errors),
	    cmocka_unit_test(test_create_body_limits),
	    cmocka_unit_test(test_every_byte),
	    cmocka_unit_test(test_sig_tamper),
	    cmocka_unit_test(test_open_canonical_text),
	    cmocka_unit_test(test_split_batch),
	    cmocka_unit_test(test_unknown_key),
	    cmocka_unit_test(test_time),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_add_hop),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_predicates),
	    cmocka_unit_test(test_id_time),
	    cmocka_unit_test(test_create_body_json),
	    cmocka_unit_test(test_serialize_spliced),
	    cmocka_unit_test(test_compact_batch),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
