/* SPDX-License-Identifier: Apache-2.0 */
/* tb_env.c - envelope model, validation, sealing and opening. */
#include "tb_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "tb_json.h"
#include "tb_schema.h"

/* Domain separation for batch signatures: canonical JSON always starts
 * with '{', so these bytes can never be a single envelope's signed form. */
static const char batch_prefix[16] = "TONGBAN-BATCH-V1";

#define MAX_PROOF 17 /* ceil(log2(TB_BATCH_MAX)) + 1 */
/* Room a new envelope leaves below TB_ENV_MAX_SIZE for what is added after
 * creation: the longest "sig" member (a batch proof of MAX_PROOF hashes,
 * about 1,020 bytes) and a full relay path (about 170 bytes). */
#define SEAL_RESERVE 1280

static const char *const msgtypes[] = {
    "identity.verify", "identity.result", "licence.query",  "licence.present",  "licence.verify",
    "licence.status",  "case.submit",     "case.accept",    "case.reject",      "case.update",
    "case.result",     "case.query",      "case.state",     "receipt",          "error",
    "control.ping",    "control.pong",    "control.status", "control.registry", NULL,
};

static const char *const unsigned_members[] = {"sig", "relay", NULL};

struct tb_env {
	struct tb_json_doc *doc;
	struct tb_json *root;
	char id[33];
	const char *type, *from, *to, *service, *rsvc, *rregion, *corr;
	int64_t created, expires;
	int hops;
	const struct tb_json *body;
	const struct tb_json *path; /* relay.path array or NULL */
	bool sealed;
	enum tb_alg alg;
	uint8_t kid[TB_KEYID_LEN];
	uint8_t sig[TB_SIG_LEN];
	bool batch;
	bool has_digest; /* digest of the signed bytes, cached: they never
	                  * change once created (sig and relay are excluded) */
	uint8_t digest[32];
	/* the signed bytes of a created envelope, kept for sealing, or of a
	 * completed compact batch member (empty for other parsed ones); like
	 * the digest they never change */
	struct tb_buf signed_cache;
	/* the "sig" member's value in canonical form, written by put_sig
	 * (empty for parsed envelopes) */
	struct tb_buf sig_text;
	uint64_t bn, bi;
	size_t nproof;
	uint8_t proof[MAX_PROOF][32];
	/* parsing: a sig.batch without "path" is accepted (compact batch
	 * answers, tb_env_open_many); nopath says it had none */
	bool allow_nopath, nopath;
	bool completed;    /* its path was recomputed (tb_env_completed) */
	uint8_t broot[32]; /* completed: the root of the tree it was put in */
};

bool
tb_msgtype_valid(const char *s, size_t n)
{
	for (size_t i = 0; msgtypes[i] != NULL; i++)
		if (strlen(msgtypes[i]) == n && memcmp(s, msgtypes[i], n) == 0)
			return true;
	return false;
}

bool
tb_msgtype_known(const char *type)
{
	return tb_msgtype_valid(type, strlen(type));
}

const char *const *
tb_msgtype_all(void)
{
	return msgtypes;
}

static bool
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool
tb_member_id_valid(const char *s, size_t n)
{
	return n == 6 && s[0] >= '1' && s[0] <= '9' && all_digits(s, n);
}

bool
tb_region_code_valid(const char *s, size_t n)
{
	return (n == 2 || n == 4 || n == 6) && s[0] >= '1' && s[0] <= '9' && all_digits(s, n);
}

bool
tb_service_code_valid(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !((c == '.' || c == '-') && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

void
tb_env_free(struct tb_env *env)
{
	if (env == NULL)
		return;
	tb_json_doc_free(env->doc);
	tb_buf_free(&env->signed_cache);
	tb_buf_free(&env->sig_text);
	free(env);
}

/* ---- validation: the schema (docs/PROTOCOL.md 3, 5.3, 5.4), then the model ---- */

static const char *const algs[] = {"ed25519", "p256", "sm2", NULL};

static int hook_env(struct tb_schema_ck *c, const struct tb_json *v);
static int hook_batch(struct tb_schema_ck *c, const struct tb_json *v);

static const struct tb_field s_route[] = {TB_F("service", TB_ST_CODE, true),
                                          TB_F("region", TB_ST_REGION, true), TB_F_END};
static const struct tb_field s_hop_el[] = {TB_F(NULL, TB_ST_MEMBER, true)};
static const struct tb_field s_relay[] = {
    TB_F_ARR("path", true, 0, TB_ENV_MAX_HOPS, s_hop_el, false), TB_F_END};
static const struct tb_field s_proof_el[] = {
    {.t = TB_ST_B64, .req = true, .min = 32, .max = 32, .code = TB_E_SIG_PROOF}};
static const struct tb_field s_batch[] = {
    {.name = "n", .t = TB_ST_INT, .req = true, .min = 1, .max = TB_BATCH_MAX,
     .code = TB_E_SIG_PROOF},
    {.name = "i", .t = TB_ST_INT, .req = true, .min = 0, .max = TB_BATCH_MAX - 1,
     .code = TB_E_SIG_PROOF},
    {.name = "path", .t = TB_ST_ARR, .max = MAX_PROOF, .sub = s_proof_el,
     .code = TB_E_SIG_PROOF},
    TB_F_END};
static const struct tb_field s_sig[] = {
    {.name = "alg", .t = TB_ST_ENUM, .req = true, .one_of = algs, .code = TB_E_SIG_ALG},
    TB_F_HEX("kid", true, 2 * TB_KEYID_LEN),
    TB_F_B64("val", true, TB_SIG_LEN, TB_SIG_LEN),
    TB_F_OBJ("batch", false, s_batch, hook_batch),
    TB_F_END};
/* the order of section 3's table: presence and types go in this order */
static const struct tb_field s_env[] = {
    TB_F_INT("v", true, TB_PROTO_VERSION, TB_PROTO_VERSION),
    TB_F_HEX("id", true, 2 * TB_MSGID_LEN),
    {.name = "type", .t = TB_ST_STR, .req = true, .max = 64, .pred = tb_msgtype_valid,
     .what = "a version 1 message type", .code = TB_E_TYPE_UNKNOWN},
    TB_F("from", TB_ST_MEMBER, true),
    TB_F("to", TB_ST_MEMBER, false),
    TB_F_OBJ("route", false, s_route, NULL),
    TB_F("service", TB_ST_CODE, false),
    TB_F_HEX("corr", false, 2 * TB_MSGID_LEN),
    TB_F_INT("created", true, 1, 9007199254740991LL),
    TB_F_INT("expires", true, 1, 9007199254740991LL),
    TB_F_INT("hops", true, 1, TB_ENV_MAX_HOPS),
    TB_F_OBJ("body", true, NULL, NULL), /* its type's schema: tb_flow */
    TB_F_OBJ("relay", false, s_relay, NULL),
    TB_F_OBJ("sig", false, s_sig, NULL),
    TB_F_END};
static const struct tb_field s_env_root = TB_F_OBJ(NULL, true, s_env, hook_env);

static const char *
str_of(const struct tb_json *v)
{
	return v == NULL ? NULL : tb_json_string(v, NULL);
}

static int64_t
int_of(const struct tb_json *v)
{
	int64_t x = 0;
	/* checked by the schema; a value it let through that is not an
	 * integer would be a bug, and reads as 0, which the checks refuse */
	return tb_json_integer(v, &x) ? x : 0;
}

/* The rules that tie members together, checked after every member's own. */
static int
hook_env(struct tb_schema_ck *c, const struct tb_json *v)
{
	const struct tb_json *relay = tb_json_get(v, "relay"), *path;
	int64_t created = int_of(tb_json_get(v, "created"));
	int64_t expires = int_of(tb_json_get(v, "expires"));

	if (tb_json_get(v, "to") == NULL && tb_json_get(v, "route") == NULL) {
		tb_schema_push(c, "to");
		return tb_schema_fail(c, TB_E_FIELD_MISSING, "required (or route)");
	}
	if (expires <= created || expires - created > TB_ENV_MAX_LIFETIME) {
		tb_schema_push(c, "expires");
		return tb_schema_fail(c, 0, "must be after created, by at most %d s",
		                      TB_ENV_MAX_LIFETIME);
	}
	if (relay == NULL)
		return TB_OK;
	path = tb_json_get(relay, "path");
	tb_schema_push(c, "relay.path");
	if ((int64_t)tb_json_count(path) > int_of(tb_json_get(v, "hops")))
		return tb_schema_fail(c, TB_E_HOPS, "longer than the hop limit");
	/* a loop: a member twice, or the sender or the recipient relaying */
	for (const struct tb_json *p = tb_json_first(path); p; p = tb_json_next(p)) {
		const char *hop = tb_json_string(p, NULL), *to = str_of(tb_json_get(v, "to"));
		if (strcmp(hop, tb_json_string(tb_json_get(v, "from"), NULL)) == 0 ||
		    (to != NULL && strcmp(hop, to) == 0))
			return tb_schema_fail(c, TB_E_HOPS, "routing loop: %s is the %s", hop,
			                      to != NULL && strcmp(hop, to) == 0 ? "recipient"
			                                                         : "sender");
		for (const struct tb_json *q = tb_json_next(p); q; q = tb_json_next(q))
			if (strcmp(hop, tb_json_string(q, NULL)) == 0)
				return tb_schema_fail(c, TB_E_HOPS, "routing loop through %s", hop);
	}
	return TB_OK;
}

static int
hook_batch(struct tb_schema_ck *c, const struct tb_json *v)
{
	if (int_of(tb_json_get(v, "i")) < int_of(tb_json_get(v, "n")))
		return TB_OK;
	return tb_schema_fail(c, TB_E_SIG_PROOF, "needs 0 <= i < n");
}

/* Reads the checked signature block into e. */
static int
take_sig(struct tb_env *e, const struct tb_json *sig, struct tb_diag *d)
{
	const struct tb_json *batch = tb_json_get(sig, "batch"), *bpath;
	const char *s;
	size_t n, outlen;

	e->alg = tb_alg_from_name(tb_json_string(tb_json_get(sig, "alg"), NULL));
	s = tb_json_string(tb_json_get(sig, "kid"), &n);
	if (!tb_hex_decode(s, n, e->kid, TB_KEYID_LEN))
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "sig.kid: not a key id");
	s = tb_json_string(tb_json_get(sig, "val"), &n);
	if (!tb_b64url_decode(s, n, e->sig, TB_SIG_LEN, &outlen) || outlen != TB_SIG_LEN)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "sig.val: not a signature");
	e->batch = batch != NULL;
	if (batch == NULL)
		return TB_OK;
	e->bn = (uint64_t)int_of(tb_json_get(batch, "n"));
	e->bi = (uint64_t)int_of(tb_json_get(batch, "i"));
	e->nproof = 0;
	bpath = tb_json_get(batch, "path");
	if ((e->nopath = bpath == NULL)) {
		if (!e->allow_nopath)
			return tb_diag_set(d, TB_E_FIELD_MISSING, TB_DIAG_NOPOS,
			                   "sig.batch.path: required");
		return TB_OK;
	}
	for (const struct tb_json *p = tb_json_first(bpath); p; p = tb_json_next(p)) {
		s = tb_json_string(p, &n);
		if (e->nproof >= MAX_PROOF ||
		    !tb_b64url_decode(s, n, e->proof[e->nproof], 32, &outlen) || outlen != 32)
			return tb_diag_set(
			    d, TB_E_SIG_PROOF, TB_DIAG_NOPOS,
			    "sig.batch.path entries must be 32-byte base64url hashes");
		e->nproof++;
	}
	return TB_OK;
}

/* Validates the tree in e->root and fills the cached fields. */
static int
validate(struct tb_env *e, struct tb_diag *d)
{
	static const struct tb_schema_opts opts = {.root = "", .types_first = true};
	const struct tb_json *r = e->root, *route, *sig;
	int rc;

	if (tb_json_kind(r) != TB_JSON_OBJECT)
		return tb_diag_set(d, TB_E_FIELD_TYPE, TB_DIAG_NOPOS, "envelope must be an object");
	/* the version decides what the rest means: first */
	if ((rc = tb_schema_version(r, TB_PROTO_VERSION, d)) != TB_OK)
		return rc;
	if ((rc = tb_schema_check(&s_env_root, r, &opts, d)) != TB_OK)
		return rc;
	memcpy(e->id, tb_json_string(tb_json_get(r, "id"), NULL), 33);
	e->type = tb_json_string(tb_json_get(r, "type"), NULL);
	e->from = tb_json_string(tb_json_get(r, "from"), NULL);
	e->to = str_of(tb_json_get(r, "to"));
	if ((route = tb_json_get(r, "route")) != NULL) {
		e->rsvc = tb_json_string(tb_json_get(route, "service"), NULL);
		e->rregion = tb_json_string(tb_json_get(route, "region"), NULL);
	}
	e->service = str_of(tb_json_get(r, "service"));
	e->corr = str_of(tb_json_get(r, "corr"));
	e->created = int_of(tb_json_get(r, "created"));
	e->expires = int_of(tb_json_get(r, "expires"));
	e->hops = (int)int_of(tb_json_get(r, "hops"));
	e->body = tb_json_get(r, "body");
	e->path = tb_json_get(tb_json_get(r, "relay"), "path");
	sig = tb_json_get(r, "sig");
	e->sealed = sig != NULL;
	return sig != NULL ? take_sig(e, sig, d) : TB_OK;
}

static const struct tb_json_limits env_limits = {TB_ENV_MAX_SIZE, TB_ENV_MAX_DEPTH};

static struct tb_env *
parse(const uint8_t *buf, size_t len, bool allow_nopath, struct tb_diag *d)
{
	struct tb_env *e = calloc(1, sizeof(*e));

	tb_diag_clear(d);
	if (e == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	tb_buf_init(&e->signed_cache);
	tb_buf_init(&e->sig_text);
	if (len > TB_ENV_MAX_SIZE) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "envelope of %zu bytes, limit %d",
		            len, TB_ENV_MAX_SIZE);
		goto fail;
	}
	if ((e->doc = tb_json_parse(buf, len, &env_limits, d)) == NULL)
		goto fail;
	e->root = tb_json_root(e->doc);
	e->allow_nopath = allow_nopath;
	if (validate(e, d) != TB_OK)
		goto fail;
	return e;
fail:
	tb_env_free(e);
	return NULL;
}

struct tb_env *
tb_env_parse(const uint8_t *buf, size_t len, struct tb_diag *d)
{
	return parse(buf, len, false, d);
}

/* ---- building ---- */

static int
set_str(struct tb_env *e, struct tb_json *obj, const char *k, const char *v)
{
	struct tb_json *s = tb_json_new_string(e->doc, v, strlen(v));
	return s == NULL ? TB_E_NOMEM : tb_json_set(e->doc, obj, k, s);
}

static int
set_num(struct tb_env *e, struct tb_json *obj, const char *k, double v)
{
	struct tb_json *s = tb_json_new_number(e->doc, v);
	return s == NULL ? TB_E_NOMEM : tb_json_set(e->doc, obj, k, s);
}

/* Deep-copies v (from another document) into doc, arrays and objects no
 * deeper than depth (v itself counts); NULL when out of memory, or with
 * *deep set when v nests deeper. */
static struct tb_json *
copy_value(struct tb_json_doc *doc, const struct tb_json *v, unsigned depth, bool *deep)
{
	struct tb_json *c;
	size_t n;
	const char *s;

	switch (tb_json_kind(v)) {
	case TB_JSON_NUMBER: return tb_json_new_number(doc, tb_json_number(v));
	case TB_JSON_STRING: s = tb_json_string(v, &n); return tb_json_new_string(doc, s, n);
	case TB_JSON_ARRAY:
	case TB_JSON_OBJECT:
		if (depth == 0) {
			*deep = true;
			return NULL;
		}
		c = tb_json_kind(v) == TB_JSON_ARRAY ? tb_json_new_array(doc)
		                                     : tb_json_new_object(doc);
		if (c == NULL)
			return NULL;
		for (const struct tb_json *m = tb_json_first(v); m; m = tb_json_next(m)) {
			struct tb_json *mc = copy_value(doc, m, depth - 1, deep);
			if (mc == NULL)
				return NULL;
			if (tb_json_kind(v) == TB_JSON_ARRAY) {
				if (tb_json_append(c, mc) != TB_OK)
					return NULL;
			} else {
				/* member names may hold NUL: build via a bounded copy */
				size_t kl;
				const char *k = tb_json_key(m, &kl);
				if (memchr(k, '\0', kl) != NULL)
					return NULL;
				if (tb_json_set(doc, c, k, mc) != TB_OK)
					return NULL;
			}
		}
		return c;
	default: return tb_json_new_literal(doc, tb_json_kind(v));
	}
}

/* A new message id (docs/PROTOCOL.md 1): the first 6 bytes are the time
 * in milliseconds, big-endian, so that ids sort by creation and the
 * journals' id indexes grow at their end; the other 10 bytes are random. */
static int
new_id(const struct tb_env_fields *f, char id[33], struct tb_diag *d)
{
	uint8_t rnd[TB_MSGID_LEN];

	if (tb_random(rnd, sizeof(rnd)) != TB_OK)
		return tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "no randomness");
	uint64_t ms = f->id_ms > 0     ? (uint64_t)f->id_ms
	              : f->created > 0 ? (uint64_t)f->created * 1000
	                               : 0;
	for (int i = 0; i < TB_MSGID_TIME_LEN; i++)
		rnd[i] = (uint8_t)(ms >> (8 * (TB_MSGID_TIME_LEN - 1 - i)));
	tb_hex_encode(rnd, sizeof(rnd), id);
	return TB_OK;
}

/* The body in e's document: a copy of f->body_json, or f->body parsed
 * (the document in *bdoc, the caller's to free), or an empty object.
 * NULL with d set (d->code TB_OK: out of memory). */
static struct tb_json *
make_body(struct tb_env *e, const struct tb_env_fields *f, struct tb_json_doc **bdoc,
          struct tb_diag *d)
{
	const struct tb_json *src = f->body_json;
	struct tb_json *body;

	if (src == NULL && f->body != NULL) {
		/* the body sits one level below the envelope's root */
		static const struct tb_json_limits body_limits = {TB_ENV_MAX_SIZE,
		                                                  TB_ENV_MAX_DEPTH - 1};
		if ((*bdoc = tb_json_parse(f->body, f->body_len, &body_limits, d)) == NULL)
			return NULL;
		src = tb_json_root(*bdoc);
	}
	if (src != NULL) {
		bool deep = false;
		if (tb_json_kind(src) != TB_JSON_OBJECT) {
			tb_diag_set(d, TB_E_FIELD_TYPE, TB_DIAG_NOPOS, "body must be an object");
			return NULL;
		}
		/* a parsed body_json gets the same limit as a body given as text */
		if ((body = copy_value(e->doc, src, TB_ENV_MAX_DEPTH - 1, &deep)) == NULL && deep) {
			tb_diag_set(d, TB_E_JSON_DEPTH, TB_DIAG_NOPOS,
			            "body nests deeper than %d levels", TB_ENV_MAX_DEPTH - 1);
			return NULL;
		}
	} else {
		body = tb_json_new_object(e->doc);
	}
	return body;
}

struct tb_env *
tb_env_create(const struct tb_env_fields *f, struct tb_diag *d)
{
	struct tb_env *e = NULL;
	struct tb_json_doc *bdoc = NULL;
	struct tb_json *root, *body, *route;
	char id[33];
	struct tb_buf b;
	int rc = TB_E_NOMEM;

	tb_buf_init(&b);
	tb_diag_clear(d);
	if (f->type == NULL || f->from == NULL) {
		tb_diag_set(d, TB_E_FIELD_MISSING, TB_DIAG_NOPOS,
		            f->type == NULL ? "type" : "from");
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		goto nomem;
	tb_buf_init(&e->signed_cache);
	tb_buf_init(&e->sig_text);
	if ((e->doc = tb_json_doc_new()) == NULL)
		goto nomem;
	if (new_id(f, id, d) != TB_OK)
		goto fail;
	if ((body = make_body(e, f, &bdoc, d)) == NULL) {
		if (d == NULL || d->code == TB_OK)
			goto nomem;
		goto fail;
	}
	if (body == NULL || (root = tb_json_new_object(e->doc)) == NULL)
		goto nomem;
	tb_json_set_root(e->doc, root);
	e->root = root;
	if (set_num(e, root, "v", TB_PROTO_VERSION) || set_str(e, root, "id", id) ||
	    set_str(e, root, "type", f->type) || set_str(e, root, "from", f->from) ||
	    (f->to && set_str(e, root, "to", f->to)) ||
	    (f->service && set_str(e, root, "service", f->service)) ||
	    (f->corr && set_str(e, root, "corr", f->corr)) ||
	    set_num(e, root, "created", (double)f->created) ||
	    set_num(e, root, "expires",
	            (double)f->created + (double)(f->ttl ? f->ttl : TB_ENV_DEFAULT_TTL)) ||
	    set_num(e, root, "hops", f->hops ? f->hops : TB_ENV_DEFAULT_HOPS) ||
	    tb_json_set(e->doc, root, "body", body))
		goto nomem;
	if (f->route_service != NULL || f->route_region != NULL) {
		if ((route = tb_json_new_object(e->doc)) == NULL ||
		    (f->route_service && set_str(e, route, "service", f->route_service)) ||
		    (f->route_region && set_str(e, route, "region", f->route_region)) ||
		    tb_json_set(e->doc, root, "route", route))
			goto nomem;
	}
	/* Re-read through the same validator as received envelopes so a
	 * bad field is reported exactly as a peer would see it. */
	if (validate(e, d) != TB_OK)
		goto fail;
	/* refuse now what no receiver would accept once sealed */
	if (tb_env_signed_bytes(e, &b) != TB_OK)
		goto nomem;
	tb_sha256(b.data, b.len, e->digest);
	e->has_digest = true;
	if (b.len > TB_ENV_MAX_SIZE - SEAL_RESERVE) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS,
		            "envelope of %zu bytes leaves no room for its signature (limit %d)",
		            b.len, TB_ENV_MAX_SIZE - SEAL_RESERVE);
		goto fail;
	}
	e->signed_cache = b; /* taken over */
	tb_json_doc_free(bdoc);
	return e;
nomem:
	tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
fail:
	tb_json_doc_free(bdoc);
	tb_env_free(e);
	tb_buf_free(&b);
	return NULL;
}

/* ---- serialisation ---- */

/* Drops what was appended after len (the buffer stays NUL-terminated). */
static void
truncate_buf(struct tb_buf *b, size_t len)
{
	if (b->len > len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

/* Where "sig" goes in the cached signed bytes: the start of the first
 * member whose name sorts after it, found from the end (the envelope's
 * last members, "to", "type" and "v", have short values without quotes
 * or escapes), or the final '}'.  0 when the bytes do not have that
 * shape; the caller then serialises in full. */
static size_t
sig_position(const uint8_t *t, size_t n)
{
	size_t i = n - 1, at = n - 1; /* i: the ',' or '}' after a member */

	if (n < 2 || t[0] != '{' || t[n - 1] != '}')
		return 0;
	while (i > 1) {
		size_t j = i - 1, k;
		if (t[j] == '"') { /* a string value: back to its opening quote */
			while (j > 0 && t[j - 1] != '"' && t[j - 1] != '\\' && t[j - 1] >= 0x20)
				j--;
			if (j < 2 || t[j - 1] != '"')
				return 0;
			j--;
		} else { /* a number or literal */
			while (j > 0 && t[j] != ':' && t[j] != '"' && t[j] != '}' && t[j] != ']')
				j--;
			j++;
		}
		/* t[j] starts the value; before it ':' and the quoted name */
		if (j < 4 || t[j - 1] != ':' || t[j - 2] != '"')
			return 0;
		k = j - 3;
		while (k > 0 && t[k] != '"' && t[k] != '\\' && t[k] < 0x80)
			k--;
		if (t[k] != '"' || k == 0 || (t[k - 1] != ',' && t[k - 1] != '{'))
			return 0;
		size_t kl = j - 2 - (k + 1);
		int cmp = memcmp(t + k + 1, "sig", kl < 3 ? kl : 3);
		if (cmp == 0 && kl == 3)
			return 0; /* "sig" is never signed */
		if (cmp < 0 || (cmp == 0 && kl < 3))
			break; /* sorts before "sig": insert after this member */
		at = k;
		i = k - 1;
	}
	return at;
}

/* The wire form of a sealed envelope from its cached signed bytes and
 * the "sig" member's canonical text, instead of serialising the whole
 * envelope again; the sig text's bytes [cut, cut + cutlen) are left out
 * (cutlen 0: none).  The top-level names are the envelope's own ASCII
 * names, so byte order is their UTF-16 order.  TB_E_ARG when the bytes
 * do not have the expected shape. */
static int
serialize_spliced(const struct tb_env *env, size_t cut, size_t cutlen, struct tb_buf *out)
{
	const uint8_t *t = env->signed_cache.data;
	size_t n = env->signed_cache.len, at = sig_position(t, n);
	const struct tb_buf *sb = &env->sig_text;

	if (at == 0)
		return TB_E_ARG;
	if (tb_buf_reserve(out, n + sb->len + 8) != TB_OK)
		return TB_E_NOMEM;
	if (at == n - 1) { /* "sig" sorts last */
		tb_buf_add(out, t, n - 1);
		if (n > 2)
			tb_buf_addc(out, ',');
	} else {
		tb_buf_add(out, t, at);
	}
	tb_buf_add(out, "\"sig\":", 6);
	tb_buf_add(out, sb->data, cut);
	tb_buf_add(out, sb->data + cut + cutlen, sb->len - cut - cutlen);
	if (at == n - 1) {
		tb_buf_addc(out, '}');
	} else {
		tb_buf_addc(out, ',');
		tb_buf_add(out, t + at, n - at);
	}
	return tb_buf_error(out);
}

int
tb_env_serialize(const struct tb_env *env, struct tb_buf *out)
{
	size_t start = out->len;

	/* a created, sealed envelope not relayed (relay is not signed either) */
	if (env->signed_cache.len > 0 && env->sig_text.len > 0 &&
	    tb_json_get(env->root, "relay") == NULL && serialize_spliced(env, 0, 0, out) == TB_OK)
		return TB_OK;
	truncate_buf(out, start);
	return tb_json_canon(env->root, NULL, out);
}

int
tb_env_signed_bytes(const struct tb_env *env, struct tb_buf *out)
{
	if (env->signed_cache.len > 0)
		return tb_buf_add(out, env->signed_cache.data, env->signed_cache.len);
	return tb_json_canon(env->root, unsigned_members, out);
}

/* The signed bytes without a copy when they are cached: *p and *n point
 * into env's cache or into tmp, which the caller frees. */
static int
signed_view(const struct tb_env *env, struct tb_buf *tmp, const uint8_t **p, size_t *n)
{
	int rc = TB_OK;

	if (env->signed_cache.len == 0) {
		tb_buf_reset(tmp);
		if ((rc = tb_json_canon(env->root, unsigned_members, tmp)) != TB_OK)
			return rc;
		*p = tmp->data;
		*n = tmp->len;
		return TB_OK;
	}
	*p = env->signed_cache.data;
	*n = env->signed_cache.len;
	return rc;
}

int
tb_env_digest(const struct tb_env *env, uint8_t out[32])
{
	struct tb_buf b;
	int rc;

	if (env->has_digest) {
		memcpy(out, env->digest, 32);
		return TB_OK;
	}
	tb_buf_init(&b);
	if ((rc = tb_env_signed_bytes(env, &b)) == TB_OK)
		tb_alg_hash(env->alg, b.data, b.len, out);
	tb_buf_free(&b);
	return rc;
}

/* Splits a JSON array of objects into element byte ranges without
 * interpreting them (each element is parsed strictly afterwards).
 * Returns the count, or -1 when the text is not an array of objects. */
int
tb_env_split_batch(const uint8_t *p, size_t len, size_t *off, size_t *elen, int max)
{
	size_t i = 0;
	int n = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
		i++;
	if (i >= len || p[i] != '[')
		return -1;
	i++;
	for (;;) {
		int depth = 0;
		bool instr = false;
		size_t start;

		while (i < len && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
			i++;
		if (i >= len || p[i] != '{' || n >= max)
			return -1;
		start = i;
		for (; i < len; i++) {
			if (instr)
				i += tb_json_string_run(p + i, len - i);
			if (i >= len)
				break;
			if (instr) {
				if (p[i] == '\\')
					i++;
				else if (p[i] == '"')
					instr = false;
			} else if (p[i] == '"') {
				instr = true;
			} else if (p[i] == '{' || p[i] == '[') {
				depth++;
			} else if (p[i] == '}' || p[i] == ']') {
				if (--depth == 0)
					break;
			}
		}
		if (i >= len)
			return -1;
		off[n] = start;
		elen[n] = i + 1 - start;
		n++;
		i++;
		while (i < len && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
			i++;
		if (i < len && p[i] == ',') {
			i++;
			continue;
		}
		if (i < len && p[i] == ']') {
			i++;
			while (i < len &&
			       (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
				i++;
			return i == len ? n : -1;
		}
		return -1;
	}
}

/* ---- Merkle tree (RFC 9162 section 2.1) ----
 * With the hash of the signing algorithm (tb_alg_hash): SM3 under an sm2
 * signature, SHA-256 under the others (PROTOCOL.md 5.2, 5.4). */

static int
leaf_hash(enum tb_alg alg, const uint8_t *data, size_t n, struct tb_buf *tmp, uint8_t out[32])
{
	tb_buf_reset(tmp);
	tb_buf_addc(tmp, 0x00);
	tb_buf_add(tmp, data, n);
	if (tb_buf_error(tmp) != TB_OK)
		return tb_buf_error(tmp);
	tb_alg_hash(alg, tmp->data, tmp->len, out);
	return TB_OK;
}

static void
node_hash(enum tb_alg alg, const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t in[65];

	in[0] = 0x01;
	memcpy(in + 1, l, 32);
	memcpy(in + 33, r, 32);
	tb_alg_hash(alg, in, sizeof(in), out);
}

/* Root from a leaf hash and its audit path (RFC 9162 2.1.3.2). */
static bool
root_from_proof(enum tb_alg alg, uint64_t index, uint64_t size, const uint8_t leaf[32],
                const uint8_t (*path)[32], size_t npath, uint8_t root[32])
{
	uint64_t fn = index, sn = size - 1;
	uint8_t r[32];

	if (index >= size)
		return false;
	memcpy(r, leaf, 32);
	for (size_t i = 0; i < npath; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			node_hash(alg, path[i], r, r);
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			node_hash(alg, r, path[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return false;
	memcpy(root, r, 32);
	return true;
}

static void
batch_message(uint64_t n, const uint8_t root[32], uint8_t out[16 + 8 + 32])
{
	memcpy(out, batch_prefix, 16);
	for (int i = 0; i < 8; i++)
		out[16 + i] = (uint8_t)(n >> (56 - 8 * i));
	memcpy(out + 24, root, 32);
}

/* Writes the "sig" member of env. proof may be NULL for a single seal. */
static int
put_sig(struct tb_env *env, enum tb_alg alg, const uint8_t kid[32], const uint8_t sig[64],
        uint64_t n, uint64_t i, const uint8_t (*proof)[32], size_t nproof)
{
	char kidhex[65], val[90], h[44];
	struct tb_json *s, *b, *p;

	tb_hex_encode(kid, 32, kidhex);
	tb_b64url_encode(sig, 64, val);
	if ((s = tb_json_new_object(env->doc)) == NULL ||
	    set_str(env, s, "alg", tb_alg_name(alg)) || set_str(env, s, "kid", kidhex) ||
	    set_str(env, s, "val", val))
		return TB_E_NOMEM;
	if (proof != NULL) {
		if ((b = tb_json_new_object(env->doc)) == NULL || set_num(env, b, "n", (double)n) ||
		    set_num(env, b, "i", (double)i) || (p = tb_json_new_array(env->doc)) == NULL)
			return TB_E_NOMEM;
		for (size_t k = 0; k < nproof; k++) {
			struct tb_json *hs;
			tb_b64url_encode(proof[k], 32, h);
			if ((hs = tb_json_new_string(env->doc, h, 43)) == NULL ||
			    tb_json_append(p, hs) != TB_OK)
				return TB_E_NOMEM;
		}
		if (tb_json_set(env->doc, b, "path", p) || tb_json_set(env->doc, s, "batch", b))
			return TB_E_NOMEM;
	}
	if (tb_json_set(env->doc, env->root, "sig", s) != TB_OK)
		return TB_E_NOMEM;
	/* The same value in canonical form (members in order, no escapes:
	 * hex, base64url and integers), for tb_env_serialize. */
	struct tb_buf *t = &env->sig_text;
	char num[48];
	tb_buf_reset(t);
	if (tb_buf_reserve(t, 256 + nproof * 46) != TB_OK)
		return TB_E_NOMEM;
	tb_buf_adds(t, "{\"alg\":\"");
	tb_buf_adds(t, tb_alg_name(alg));
	tb_buf_adds(t, "\"");
	if (proof != NULL) {
		snprintf(num, sizeof(num), ",\"batch\":{\"i\":%llu,\"n\":%llu,\"path\":[",
		         (unsigned long long)i, (unsigned long long)n);
		tb_buf_adds(t, num);
		for (size_t k = 0; k < nproof; k++) {
			tb_b64url_encode(proof[k], 32, h);
			tb_buf_adds(t, k ? ",\"" : "\"");
			tb_buf_add(t, h, 43);
			tb_buf_addc(t, '"');
		}
		tb_buf_adds(t, "]}");
	}
	tb_buf_adds(t, ",\"kid\":\"");
	tb_buf_adds(t, kidhex);
	tb_buf_adds(t, "\",\"val\":\"");
	tb_buf_adds(t, val);
	tb_buf_adds(t, "\"}");
	if (tb_buf_error(t) != TB_OK)
		return tb_buf_error(t);
	env->sealed = true;
	env->alg = alg;
	memcpy(env->kid, kid, 32);
	memcpy(env->sig, sig, 64);
	env->batch = proof != NULL;
	return TB_OK;
}

int
tb_env_seal(struct tb_env *env, const struct tb_key *key, struct tb_diag *d)
{
	struct tb_buf b;
	uint8_t sig[TB_SIG_LEN], kid[TB_KEYID_LEN];
	int rc;

	const uint8_t *sb;
	size_t sn;

	tb_buf_init(&b);
	if ((rc = signed_view(env, &b, &sb, &sn)) != TB_OK)
		goto out;
	tb_alg_hash(tb_key_alg(key), sb, sn, env->digest);
	env->has_digest = true;
	if ((rc = tb_key_sign(key, sb, sn, sig)) != TB_OK) {
		tb_diag_set(d, rc, TB_DIAG_NOPOS, "signing failed");
		goto out;
	}
	tb_key_id(key, kid);
	rc = put_sig(env, tb_key_alg(key), kid, sig, 0, 0, NULL, 0);
out:
	if (rc != TB_OK && d != NULL && d->code == TB_OK)
		tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
	tb_buf_free(&b);
	return rc;
}

/* The Merkle tree of n leaves: all levels bottom up, one after another,
 * node j of level l at tree[off[l] + j]; an odd node at the end of a level
 * is promoted unchanged, which yields exactly RFC 9162's tree shape.  The
 * caller fills the n leaf hashes at tree[0..n) and calls tree_fill. */
struct tree {
	uint8_t (*h)[32];
	size_t *off, levels, total, n;
	enum tb_alg alg; /* whose hash */
};

static int
tree_alloc(struct tree *t, size_t n, enum tb_alg alg)
{
	memset(t, 0, sizeof(*t));
	t->n = n;
	t->alg = alg;
	for (size_t w = n;; w = (w + 1) / 2) {
		t->total += w;
		t->levels++;
		if (w == 1)
			break;
	}
	if ((t->h = malloc(t->total * 32)) == NULL ||
	    (t->off = malloc(t->levels * sizeof(*t->off))) == NULL) {
		free(t->h);
		t->h = NULL;
		return TB_E_NOMEM;
	}
	return TB_OK;
}

static void
tree_free(struct tree *t)
{
	free(t->h);
	free(t->off);
}

/* Computes the levels above the leaves; the root is t->h[t->total - 1]. */
static void
tree_fill(struct tree *t)
{
	size_t w = t->n;

	t->off[0] = 0;
	for (size_t l = 1; l < t->levels; l++) {
		size_t nw = (w + 1) / 2;
		const uint8_t(*level)[32] = t->h + t->off[l - 1];
		t->off[l] = t->off[l - 1] + w;
		for (size_t j = 0; j < nw; j++) {
			if (2 * j + 1 < w)
				node_hash(t->alg, level[2 * j], level[2 * j + 1],
				          t->h[t->off[l] + j]);
			else
				memcpy(t->h[t->off[l] + j], level[2 * j], 32);
		}
		w = nw;
	}
}

/* Leaf i's inclusion proof (RFC 9162 2.1.3.1); returns its length. */
static size_t
tree_proof(const struct tree *t, size_t i, uint8_t proof[MAX_PROOF][32])
{
	size_t np = 0, idx = i, w = t->n;

	for (size_t l = 0; l + 1 < t->levels; l++) {
		size_t sib = idx ^ 1;
		if (sib < w)
			memcpy(proof[np++], t->h[t->off[l] + sib], 32);
		idx >>= 1;
		w = (w + 1) / 2;
	}
	return np;
}

int
tb_env_seal_batch(struct tb_env *const *envs, size_t n, const struct tb_key *key, struct tb_diag *d)
{
	uint8_t msg[56], sig[64], kid[32];
	struct tree t = {0};
	struct tb_buf b, tmp;
	int rc = TB_E_NOMEM;

	if (n == 1)
		return tb_env_seal(envs[0], key, d);
	if (n == 0 || n > TB_BATCH_MAX)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "batch of %zu envelopes", n);
	tb_buf_init(&b);
	tb_buf_init(&tmp);
	if (tree_alloc(&t, n, tb_key_alg(key)) != TB_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *sb;
		size_t sn;
		if (signed_view(envs[i], &b, &sb, &sn) != TB_OK ||
		    leaf_hash(t.alg, sb, sn, &tmp, t.h[i]) != TB_OK)
			goto out;
		/* the digest of the sealed message: under its signer's hash */
		if (!envs[i]->has_digest || t.alg == TB_ALG_SM2) {
			tb_alg_hash(t.alg, sb, sn, envs[i]->digest);
			envs[i]->has_digest = true;
		}
	}
	tree_fill(&t);
	batch_message(n, t.h[t.total - 1], msg);
	if ((rc = tb_key_sign(key, msg, sizeof(msg), sig)) != TB_OK)
		goto out;
	tb_key_id(key, kid);
	for (size_t i = 0; i < n; i++) {
		uint8_t proof[MAX_PROOF][32];
		size_t np = tree_proof(&t, i, proof);
		if ((rc = put_sig(envs[i], tb_key_alg(key), kid, sig, n, i, proof, np)) != TB_OK)
			goto out;
	}
	rc = TB_OK;
out:
	if (rc != TB_OK)
		tb_diag_set(d, rc, TB_DIAG_NOPOS, "batch sealing failed");
	tree_free(&t);
	tb_buf_free(&b);
	tb_buf_free(&tmp);
	return rc;
}

/* ---- opening ---- */

/* The checks of tb_env_open after parsing: time, key, signature (or the
 * signature cache), with the signed bytes from e's cache if set, else
 * canonicalised; sets e's digest.  e stays the caller's. */
static int
check_open(struct tb_env *e, const struct tb_env_open_opts *o, struct tb_diag *d)
{
	const struct tb_pub *pub;
	struct tb_buf b, tmp;
	uint8_t tag[32], hbuf[32 + 64 + 32];
	const uint8_t *msg;
	size_t msglen;
	uint8_t bmsg[56];
	struct tb_diag local;
	int rc;

	if (d == NULL) /* the code travels in the diag: keep one */
		d = &local;
	tb_buf_init(&b);
	tb_buf_init(&tmp);
	if (!e->sealed) {
		rc = tb_diag_set(d, TB_E_SIG_MISSING, TB_DIAG_NOPOS, "no sig member");
		goto fail;
	}
	if (o->now >= e->expires) {
		rc = tb_diag_set(d, TB_E_EXPIRED, TB_DIAG_NOPOS, "expired %lld s ago",
		                 (long long)(o->now - e->expires));
		goto fail;
	}
	if (e->created > o->now + o->skew) {
		rc = tb_diag_set(d, TB_E_NOT_YET_VALID, TB_DIAG_NOPOS,
		                 "created %lld s ahead of this clock (skew allowed %lld s)",
		                 (long long)(e->created - o->now), (long long)o->skew);
		goto fail;
	}
	if (o->lookup == NULL || (pub = o->lookup(o->ctx, e->from, e->kid)) == NULL) {
		char kh[65];
		tb_hex_encode(e->kid, 32, kh);
		rc = tb_diag_set(d, TB_E_SIG_KEYID, TB_DIAG_NOPOS, "%s for sender %s", kh, e->from);
		goto fail;
	}
	if (tb_pub_alg(pub) != e->alg) {
		rc = tb_diag_set(d, TB_E_SIG_ALG, TB_DIAG_NOPOS, "sig.alg %s but the key is %s",
		                 tb_alg_name(e->alg), tb_alg_name(tb_pub_alg(pub)));
		goto fail;
	}
	/* the cached bytes in place, or canonicalised into b */
	const uint8_t *sb;
	size_t sn;
	if ((rc = signed_view(e, &b, &sb, &sn)) != TB_OK) {
		tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
		goto fail;
	}
	tb_alg_hash(e->alg, sb, sn, e->digest);
	e->has_digest = true;
	if (e->batch) {
		uint8_t leaf[32], root[32];
		/* a completed member's root is the tree it was completed from */
		if (e->completed) {
			memcpy(root, e->broot, 32);
		} else {
			if ((rc = leaf_hash(e->alg, sb, sn, &tmp, leaf)) != TB_OK) {
				tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
				goto fail;
			}
			if (!root_from_proof(e->alg, e->bi, e->bn, leaf,
			                     (const uint8_t(*)[32])e->proof, e->nproof, root)) {
				rc = tb_diag_set(d, TB_E_SIG_PROOF, TB_DIAG_NOPOS,
				                 "proof does not fit a tree of %llu leaves",
				                 (unsigned long long)e->bn);
				goto fail;
			}
		}
		batch_message(e->bn, root, bmsg);
		msg = bmsg;
		msglen = sizeof(bmsg);
	} else {
		msg = sb;
		msglen = sn;
	}
	memcpy(hbuf, e->kid, 32);
	memcpy(hbuf + 32, e->sig, 64);
	tb_sha256(msg, msglen, hbuf + 96);
	tb_sha256(hbuf, sizeof(hbuf), tag);
	if (o->known == NULL || !o->known(o->ctx, tag)) {
		if (!tb_pub_verify(pub, msg, msglen, e->sig)) {
			rc = tb_diag_set(d, TB_E_SIG_BAD, TB_DIAG_NOPOS,
			                 e->batch ? "batch root signature does not verify"
			                          : "signature does not verify");
			goto fail;
		}
		if (o->remember != NULL)
			o->remember(o->ctx, tag);
	}
	tb_buf_free(&b);
	tb_buf_free(&tmp);
	return TB_OK;
fail:
	tb_buf_free(&b);
	tb_buf_free(&tmp);
	return rc;
}

/* Checks e as check_open does; *out is e, or NULL and e freed. */
static int
open_parsed(struct tb_env *e, const struct tb_env_open_opts *o, struct tb_env **out,
            struct tb_diag *d)
{
	int rc = check_open(e, o, d);

	*out = rc == TB_OK ? e : NULL;
	if (rc != TB_OK)
		tb_env_free(e);
	return rc;
}

/*
 * The envelope's text t without its top-level "sig" and "relay" members:
 * the other members' bytes as parsed, joined by ','.  When t is the
 * canonical text senders send (docs/PROTOCOL.md 5.1), that is exactly the
 * signed bytes, and canonicalising the parsed envelope again can be
 * skipped.  Any other text gives other bytes, whose signature check then
 * fails and the caller falls back to the canonical form: the cut never
 * decides what is valid, it only saves work.  TB_E_ARG when t does not
 * look canonical (whitespace around the members).
 */
static int
cut_unsigned(const struct tb_env *e, const uint8_t *t, size_t n, struct tb_buf *out)
{
	size_t from, to, last = 0;
	bool first = true;

	if (n < 2 || t[0] != '{' || t[n - 1] != '}' || tb_buf_reserve(out, n) != TB_OK)
		return TB_E_ARG;
	tb_buf_addc(out, '{');
	for (const struct tb_json *m = tb_json_first(e->root); m != NULL; m = tb_json_next(m)) {
		size_t kl;
		const char *k = tb_json_key(m, &kl);
		if (!tb_json_member_span(m, &from, &to) || to > n || from != (last ? last + 1 : 1))
			return TB_E_ARG;
		last = to;
		if ((kl == 3 && memcmp(k, "sig", 3) == 0) ||
		    (kl == 5 && memcmp(k, "relay", 5) == 0))
			continue;
		if (!first)
			tb_buf_addc(out, ',');
		tb_buf_add(out, t + from, to - from);
		first = false;
	}
	if (last != n - 1)
		return TB_E_ARG;
	return tb_buf_addc(out, '}');
}

int
tb_env_open(const uint8_t *buf, size_t len, const struct tb_env_open_opts *o, struct tb_env **out,
            struct tb_diag *d)
{
	struct tb_diag local, fast;
	struct tb_env *e;

	*out = NULL;
	if (d == NULL)
		d = &local;
	if ((e = tb_env_parse(buf, len, d)) == NULL)
		return d->code;
	/* the signed bytes straight from canonical text; if they do not
	 * verify, from the parsed envelope as always */
	if (cut_unsigned(e, buf, len, &e->signed_cache) == TB_OK &&
	    check_open(e, o, &fast) == TB_OK) {
		*out = e;
		return TB_OK;
	}
	tb_buf_free(&e->signed_cache);
	e->has_digest = false;
	if (o->recanonicalised != NULL)
		(*o->recanonicalised)++;
	return open_parsed(e, o, out, d);
}

/* ---- compact batches ---- */

int
tb_env_serialize_compact(const struct tb_env *env, struct tb_buf *out)
{
	const struct tb_buf *st = &env->sig_text;
	const uint8_t *p, *q;

	/* only what this node sealed in a batch: its "sig" text is known */
	if (!env->batch || st->len == 0 || env->signed_cache.len == 0 ||
	    tb_json_get(env->root, "relay") != NULL)
		return TB_E_ARG;
	/* put_sig writes ,"path":[...] and then "]}" closing the batch; the
	 * path's entries are base64url strings, so the first ']' ends it */
	p = memmem(st->data, st->len, ",\"path\":[", 9);
	q = p ? memchr(p, ']', st->len - (size_t)(p - st->data)) : NULL;
	if (q == NULL)
		return TB_E_ARG;
	return serialize_spliced(env, (size_t)(p - st->data), (size_t)(q + 1 - p), out);
}

/* Gives the members of one compact batch (all n of them, parsed, without
 * proofs) their proofs, both in the fields that opening checks and in the
 * document, so that they serialise in full.  TB_E_SIG_PROOF when they are
 * not exactly the n members of one batch. */
static int
complete_batch(struct tb_env **m, size_t n, struct tb_diag *d)
{
	struct tree t = {0};
	struct tb_buf tmp;
	bool *seen = NULL;
	int rc = TB_E_NOMEM;

	if (n == 0 || m[0]->bn != n)
		return tb_diag_set(d, TB_E_SIG_PROOF, TB_DIAG_NOPOS,
		                   "compact batch of %llu members, %zu in the answer",
		                   (unsigned long long)(n ? m[0]->bn : 0), n);
	for (size_t k = 1; k < n; k++)
		if (m[k]->bn != n || m[k]->alg != m[0]->alg ||
		    memcmp(m[k]->kid, m[0]->kid, TB_KEYID_LEN) != 0 ||
		    memcmp(m[k]->sig, m[0]->sig, TB_SIG_LEN) != 0)
			return tb_diag_set(d, TB_E_SIG_PROOF, TB_DIAG_NOPOS,
			                   "compact batch members with different signatures");
	tb_buf_init(&tmp);
	if ((seen = calloc(n, sizeof(*seen))) == NULL || tree_alloc(&t, n, m[0]->alg) != TB_OK)
		goto out;
	for (size_t k = 0; k < n; k++) {
		struct tb_env *e = m[k];
		if (seen[e->bi]) {
			rc = tb_diag_set(d, TB_E_SIG_PROOF, TB_DIAG_NOPOS,
			                 "compact batch member %llu twice",
			                 (unsigned long long)e->bi);
			goto out;
		}
		seen[e->bi] = true;
		/* kept: opening reads the signed bytes again */
		if (e->signed_cache.len == 0 &&
		    (rc = tb_json_canon(e->root, unsigned_members, &e->signed_cache)) != TB_OK)
			goto out;
		if ((rc = leaf_hash(t.alg, e->signed_cache.data, e->signed_cache.len, &tmp,
		                    t.h[e->bi])) != TB_OK)
			goto out;
	}
	tree_fill(&t);
	for (size_t k = 0; k < n; k++) {
		struct tb_env *e = m[k];
		struct tb_json *sig = (struct tb_json *)tb_json_get(e->root, "sig"), *b, *p, *hs;
		char h[44];
		e->nproof = tree_proof(&t, (size_t)e->bi, e->proof);
		b = sig ? (struct tb_json *)tb_json_get(sig, "batch") : NULL;
		if (b == NULL || (p = tb_json_new_array(e->doc)) == NULL)
			goto out;
		for (size_t i = 0; i < e->nproof; i++) {
			tb_b64url_encode(e->proof[i], 32, h);
			if ((hs = tb_json_new_string(e->doc, h, 43)) == NULL ||
			    tb_json_append(p, hs) != TB_OK)
				goto out;
		}
		if (tb_json_set(e->doc, b, "path", p) != TB_OK)
			goto out;
		e->nopath = false;
		e->completed = true;
		memcpy(e->broot, t.h[t.total - 1], 32);
	}
	rc = TB_OK;
out:
	if (rc == TB_E_NOMEM)
		tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
	free(seen);
	tree_free(&t);
	tb_buf_free(&tmp);
	return rc;
}

void
tb_env_open_many(const uint8_t *text, const size_t *off, const size_t *len, size_t count,
                 const struct tb_env_open_opts *o, struct tb_env **out, struct tb_diag *d)
{
	struct tb_env **m = NULL;
	size_t nm = 0;

	for (size_t k = 0; k < count; k++)
		out[k] = parse(text + off[k], len[k], true, &d[k]);
	for (size_t k = 0; k < count; k++)
		if (out[k] != NULL && out[k]->nopath)
			nm++;
	if (nm > 0) {
		struct tb_diag bd;
		int rc = TB_E_NOMEM;
		tb_diag_clear(&bd);
		if ((m = calloc(nm, sizeof(*m))) != NULL) {
			nm = 0;
			for (size_t k = 0; k < count; k++)
				if (out[k] != NULL && out[k]->nopath)
					m[nm++] = out[k];
			rc = complete_batch(m, nm, &bd);
		} else {
			tb_diag_set(&bd, rc, TB_DIAG_NOPOS, NULL);
		}
		for (size_t k = 0; rc != TB_OK && k < count; k++)
			if (out[k] != NULL && out[k]->nopath) {
				d[k] = bd;
				tb_env_free(out[k]);
				out[k] = NULL;
			}
		free(m);
	}
	for (size_t k = 0; k < count; k++) {
		struct tb_env *e = out[k];
		if (e != NULL)
			open_parsed(e, o, &out[k], &d[k]);
	}
}

/* ---- accessors ---- */

bool
tb_env_completed(const struct tb_env *e)
{
	return e->completed;
}

const char *
tb_env_id(const struct tb_env *e)
{
	return e->id;
}
const char *
tb_env_type(const struct tb_env *e)
{
	return e->type;
}
const char *
tb_env_from(const struct tb_env *e)
{
	return e->from;
}
const char *
tb_env_to(const struct tb_env *e)
{
	return e->to;
}
const char *
tb_env_service(const struct tb_env *e)
{
	return e->service;
}
const char *
tb_env_route_service(const struct tb_env *e)
{
	return e->rsvc;
}
const char *
tb_env_route_region(const struct tb_env *e)
{
	return e->rregion;
}
const char *
tb_env_corr(const struct tb_env *e)
{
	return e->corr;
}
int64_t
tb_env_created(const struct tb_env *e)
{
	return e->created;
}
int64_t
tb_env_expires(const struct tb_env *e)
{
	return e->expires;
}
int
tb_env_hops(const struct tb_env *e)
{
	return e->hops;
}
bool
tb_env_sealed(const struct tb_env *e)
{
	return e->sealed;
}
const uint8_t *
tb_env_kid(const struct tb_env *e)
{
	return e->kid;
}
enum tb_alg
tb_env_alg(const struct tb_env *e)
{
	return e->alg;
}
const struct tb_json *
tb_env_body(const struct tb_env *e)
{
	return e->body;
}

size_t
tb_env_path_len(const struct tb_env *e)
{
	return e->path == NULL ? 0 : tb_json_count(e->path);
}

const char *
tb_env_path_at(const struct tb_env *e, size_t i)
{
	const struct tb_json *p = e->path == NULL ? NULL : tb_json_first(e->path);

	for (; p != NULL && i > 0; i--)
		p = tb_json_next(p);
	return p == NULL ? NULL : tb_json_string(p, NULL);
}

int
tb_env_add_hop(struct tb_env *e, const char *hop)
{
	struct tb_json *relay, *path, *s;
	size_t n = tb_env_path_len(e);

	if (!tb_member_id_valid(hop, strlen(hop)))
		return TB_E_ARG;
	if (n + 1 > (size_t)e->hops)
		return TB_E_HOPS;
	if (strcmp(hop, e->from) == 0 || (e->to != NULL && strcmp(hop, e->to) == 0))
		return TB_E_HOPS; /* the sender or the recipient relaying: a loop */
	for (size_t i = 0; i < n; i++)
		if (strcmp(tb_env_path_at(e, i), hop) == 0)
			return TB_E_HOPS;
	if (e->path == NULL) {
		if ((relay = tb_json_new_object(e->doc)) == NULL ||
		    (path = tb_json_new_array(e->doc)) == NULL ||
		    tb_json_set(e->doc, relay, "path", path) != TB_OK ||
		    tb_json_set(e->doc, e->root, "relay", relay) != TB_OK)
			return TB_E_NOMEM;
		e->path = path;
	}
	if ((s = tb_json_new_string(e->doc, hop, strlen(hop))) == NULL)
		return TB_E_NOMEM;
	return tb_json_append((struct tb_json *)e->path, s);
}
