/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gen_vectors - (re)generates interop/vectors/{envelopes,registries,routes,
 * licences,policies,receipts,audit} (schema: interop/vectors/README.md).  Usage: gen_vectors
 * VECTORS_DIR [CATEGORY] (one category only when given).
 *
 * Keys live in VECTORS_DIR/keys/ and are generated only when missing, so
 * regenerating keeps the same key ids.  They are TEST KEYS, published on
 * purpose: never use them for anything else.  Signatures (P-256 is
 * randomised) and message ids change on every run; the committed files
 * are what the tests use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_trust.h"
#include "../node/audit.h"
#include "../node/journal.h"
#include "../protocol/tb_env.h"
#include "../protocol/tb_flow.h"
#include "../protocol/tb_json.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z */

static const char *dir;

static void
die(const char *what, const struct tb_diag *d)
{
	char msg[256];
	fprintf(stderr, "gen_vectors: %s: %s\n", what,
	        d ? tb_diag_format(d, msg, sizeof(msg)) : "");
	exit(1);
}

/* A vector written with a piece missing would be a wrong vector: every
 * step that fails ends the generator. */
static void
must(int rc, const char *what)
{
	if (rc != TB_OK) {
		struct tb_diag d;
		tb_diag_clear(&d);
		d.code = rc;
		die(what, &d);
	}
}

static void
set(struct tb_json_doc *doc, struct tb_json *o, const char *key, struct tb_json *v)
{
	must(tb_json_set(doc, o, key, v), key);
}

static void
app(struct tb_json *arr, struct tb_json *v)
{
	must(tb_json_append(arr, v), "array element");
}

static void
need(const struct tb_buf *b)
{
	if (tb_buf_error(b) != TB_OK)
		die("out of memory", NULL);
}

static struct tb_key *
key(const char *name, enum tb_alg alg)
{
	char path[1024];
	struct tb_diag d;
	struct tb_key *k;

	snprintf(path, sizeof(path), "%s/keys/%s.key", dir, name);
	if ((k = tb_key_load(path, NULL, NULL)) != NULL)
		return k;
	if ((k = tb_key_generate(alg, &d)) == NULL || tb_key_save(k, path, NULL, &d) != TB_OK)
		die(path, &d);
	return k;
}

static struct tb_json *
str(struct tb_json_doc *doc, const char *s)
{
	return tb_json_new_string(doc, s, strlen(s));
}

static void
write_doc(const char *sub, const char *name, struct tb_json_doc *doc)
{
	char path[1024];
	struct tb_buf b;
	struct tb_diag d;

	tb_buf_init(&b);
	must(tb_json_canon(tb_json_root(doc), NULL, &b), "tb_json_canon");
	tb_buf_addc(&b, '\n');
	need(&b);
	snprintf(path, sizeof(path), "%s/%s/%s.json", dir, sub, name);
	if (tb_file_write(path, b.data, b.len, 0644, 0, &d) != TB_OK)
		die(path, &d);
	tb_buf_free(&b);
	tb_json_doc_free(doc);
}

/* {"alg","kid","spki"} of a key */
static struct tb_json *
keyobj(struct tb_json_doc *doc, const struct tb_key *k)
{
	struct tb_json *o = tb_json_new_object(doc);
	struct tb_pub *p = tb_key_pub(k);
	struct tb_buf spki;
	uint8_t kid[TB_KEYID_LEN];
	char hex[65], *b64;

	tb_buf_init(&spki);
	must(p == NULL ? TB_E_NOMEM : tb_pub_spki(p, &spki), "public key");
	tb_pub_id(p, kid);
	tb_hex_encode(kid, 32, hex);
	b64 = malloc(tb_b64url_len(spki.len) + 1);
	tb_b64url_encode(spki.data, spki.len, b64);
	set(doc, o, "alg", str(doc, tb_alg_name(tb_key_alg(k))));
	set(doc, o, "kid", str(doc, hex));
	set(doc, o, "spki", str(doc, b64));
	free(b64);
	tb_buf_free(&spki);
	tb_pub_free(p);
	return o;
}

static struct tb_key *alice, *bob; /* 320300 (Ed25519), 371300 (P-256) */

/* input: as "input" when it is UTF-8, else as "input_b64" */
static void
set_input(struct tb_json_doc *doc, struct tb_json *o, const struct tb_buf *in)
{
	if (tb_utf8_valid(in->data, in->len)) {
		set(doc, o, "input", tb_json_new_string(doc, (const char *)in->data, in->len));
	} else {
		char *b64 = malloc(tb_b64url_len(in->len) + 1);
		tb_b64url_encode(in->data, in->len, b64);
		set(doc, o, "input_b64", str(doc, b64));
		free(b64);
	}
}

/* When set, the "use" given to 320300's key in the vectors written (the
 * registry key use, PROTOCOL.md 7.1; absent means "both"). */
static const char *alice_use;

static void
env_vector(const char *name, const char *desc, const struct tb_buf *in, int64_t now,
           const char *expect)
{
	struct tb_json_doc *doc = tb_json_doc_new();
	struct tb_json *o = tb_json_new_object(doc), *keys = tb_json_new_object(doc),
	               *a = tb_json_new_array(doc), *b = tb_json_new_array(doc);
	struct tb_env *e;
	struct tb_diag d;

	tb_json_set_root(doc, o);
	set(doc, o, "description", str(doc, desc));
	set_input(doc, o, in);
	app(a, keyobj(doc, alice));
	if (alice_use != NULL)
		set(doc, tb_json_first(a), "use", str(doc, alice_use));
	app(b, keyobj(doc, bob));
	set(doc, keys, "320300", a);
	set(doc, keys, "371300", b);
	set(doc, o, "keys", keys);
	set(doc, o, "now", tb_json_new_number(doc, (double)now));
	set(doc, o, "skew", tb_json_new_number(doc, 300));
	set(doc, o, "expect", str(doc, expect));
	if (strcmp(expect, "ok") == 0) {
		uint8_t dg[32];
		char hex[65];
		if ((e = tb_env_parse(in->data, in->len, &d)) == NULL)
			die(name, &d);
		must(tb_env_digest(e, dg), "tb_env_digest");
		tb_hex_encode(dg, 32, hex);
		set(doc, o, "digest", str(doc, hex));
		tb_env_free(e);
	}
	write_doc("envelopes", name, doc);
}

static struct tb_env *
mk(const char *type, const char *from, const char *to, const char *body, int64_t created,
   int64_t ttl, int hops)
{
	struct tb_env_fields f;
	struct tb_diag d;
	struct tb_env *e;

	memset(&f, 0, sizeof(f));
	f.type = type;
	f.from = from;
	f.to = to;
	if (to == NULL) {
		f.route_service = "hukou.transfer";
		f.route_region = "371302";
	}
	f.service = "hukou.transfer";
	f.body = (const uint8_t *)body;
	f.body_len = strlen(body);
	f.created = created;
	f.ttl = ttl;
	f.hops = hops;
	if ((e = tb_env_create(&f, &d)) == NULL)
		die("tb_env_create", &d);
	return e;
}

/* base envelope text (alice -> bob, sealed by alice unless k given) */
static void
base(struct tb_buf *out, const struct tb_key *k)
{
	struct tb_env *e =
	    mk("case.submit", "320300", "371300",
	       "{\"applicant\":{\"idhash\":\"6b1f0c3d4\"},\"mode\":\"joint\"}", NOW - 60, 86400, 4);
	if (k != NULL)
		must(tb_env_seal(e, k, NULL), "tb_env_seal");
	tb_buf_reset(out);
	must(tb_env_serialize(e, out), "tb_env_serialize");
	tb_env_free(e);
}

static void
repl(struct tb_buf *b, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);
	struct tb_buf n;

	for (size_t i = 0; i + fl <= b->len; i++)
		if (memcmp(b->data + i, from, fl) == 0) {
			tb_buf_init(&n);
			tb_buf_add(&n, b->data, i);
			tb_buf_add(&n, to, tl);
			tb_buf_add(&n, b->data + i + fl, b->len - i - fl);
			need(&n);
			tb_buf_reset(b);
			tb_buf_add(b, n.data, n.len);
			tb_buf_free(&n);
			need(b);
			return;
		}
	fprintf(stderr, "gen_vectors: '%s' not found\n", from);
	exit(1);
}

static void envelopes_refused(void);

/* Envelopes accepted, then those refused. */
static void
envelopes(void)
{
	struct tb_buf b;
	struct tb_env *e, *bt[3];

	tb_buf_init(&b);
	base(&b, alice);
	env_vector("ok-ed25519", "valid envelope signed with Ed25519", &b, NOW, "ok");
	base(&b, bob);
	repl(&b, "\"from\":\"320300\"", "\"from\":\"371300\"");
	tb_buf_reset(&b);
	e = mk("case.accept", "371300", "320300", "{}", NOW - 60, 86400, 4);
	must(tb_env_seal(e, bob, NULL), "tb_env_seal");
	must(tb_env_serialize(e, &b), "tb_env_serialize");
	tb_env_free(e);
	env_vector("ok-p256", "valid envelope signed with ECDSA P-256", &b, NOW, "ok");
	for (int i = 0; i < 3; i++)
		bt[i] = mk("licence.query", "320300", "371300", "{\"licence\":\"x\"}", NOW - 60,
		           3600, 4);
	must(tb_env_seal_batch(bt, 3, alice, NULL), "tb_env_seal_batch");
	tb_buf_reset(&b);
	must(tb_env_serialize(bt[2], &b), "tb_env_serialize");
	env_vector("ok-batch", "leaf 2 of a batch of 3 (RFC 9162 proof, one signature)", &b, NOW,
	           "ok");
	tb_buf_reset(&b);
	must(tb_env_serialize(bt[0], &b), "tb_env_serialize");
	repl(&b, "\"i\":0", "\"i\":3");
	env_vector("sig-proof", "batch index i >= n", &b, NOW, "sig.proof");
	for (int i = 0; i < 3; i++)
		tb_env_free(bt[i]);
	e = mk("case.submit", "320300", NULL, "{}", NOW - 60, 86400, 4);
	must(tb_env_seal(e, alice, NULL), "tb_env_seal");
	must(tb_env_add_hop(e, "370000"), "tb_env_add_hop");
	tb_buf_reset(&b);
	must(tb_env_serialize(e, &b), "tb_env_serialize");
	tb_env_free(e);
	env_vector("ok-route-relayed",
	           "route request instead of to, relayed by hub 370000 (relay is not signed)", &b,
	           NOW, "ok");
	tb_buf_free(&b);
	envelopes_refused();
}

/* Envelopes refused, one per reason. */
static void
envelopes_refused(void)
{
	struct tb_buf b;

	tb_buf_init(&b);
	base(&b, alice);
	repl(&b, "}", ",}");
	env_vector("json-syntax", "trailing comma in an object", &b, NOW, "json.syntax");
	base(&b, alice);
	repl(&b, "joint", "jo\xc0\xafnt");
	env_vector("json-utf8", "overlong UTF-8 in a string (input_b64)", &b, NOW, "json.utf8");
	base(&b, alice);
	repl(&b, "joint", "jo\\udc00nt");
	env_vector("json-surrogate", "lone low surrogate escape", &b, NOW, "json.surrogate");
	base(&b, alice);
	repl(&b, "\"v\":1}", "\"v\":1,\"v\":1}");
	env_vector("json-duplicate-key", "member v twice", &b, NOW, "json.duplicate-key");
	base(&b, alice);
	repl(&b, "\"joint\"", "-1e309");
	env_vector("json-number-range", "number beyond the double range", &b, NOW,
	           "json.number-range");
	base(&b, alice);
	repl(&b, "\"joint\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	env_vector("json-depth", "33 levels of nesting (limit 32)", &b, NOW, "json.depth");
	base(&b, alice);
	{
		struct tb_buf pad;
		tb_buf_init(&pad);
		tb_buf_adds(&pad, "\"");
		for (int i = 0; i < 65536; i++)
			tb_buf_addc(&pad, 'x');
		tb_buf_adds(&pad, "\"");
		tb_buf_addc(&pad, 0);
		need(&pad);
		repl(&b, "\"joint\"", (const char *)pad.data);
		tb_buf_free(&pad);
	}
	env_vector("too-large", "more than 65,536 bytes", &b, NOW, "too-large");
	base(&b, alice);
	repl(&b, "\"v\":1}", "\"v\":2}");
	env_vector("version", "v 2", &b, NOW, "version");
	base(&b, alice);
	repl(&b, "{\"body\"", "{\"aaa\":true,\"body\"");
	env_vector("field-unknown", "member not defined by version 1", &b, NOW, "field.unknown");
	base(&b, alice);
	repl(&b, "\"hops\":4", "\"hops\":4,\"hops\\u0000\":9");
	env_vector("nul-name", "a member named \"hops\\u0000\" (not \"hops\")", &b, NOW,
	           "field.unknown");
	base(&b, alice);
	repl(&b, "\"hops\":4,", "");
	env_vector("field-missing", "no hops", &b, NOW, "field.missing");
	base(&b, alice);
	repl(&b, "\"hops\":4", "\"hops\":4.5");
	env_vector("field-type", "hops not an integer", &b, NOW, "field.type");
	base(&b, alice);
	repl(&b, "\"from\":\"320300\"", "\"from\":\"032030\"");
	env_vector("field-value", "from is not a member id (first digit 0)", &b, NOW,
	           "field.value");
	base(&b, alice);
	repl(&b, "\"type\":\"case.submit\"", "\"type\":\"case.frobnicate\"");
	env_vector("type-unknown", "type not defined by version 1", &b, NOW, "type.unknown");
	base(&b, NULL);
	env_vector("sig-missing", "not sealed", &b, NOW, "sig.missing");
	base(&b, alice);
	repl(&b, "\"alg\":\"ed25519\"", "\"alg\":\"p256\"");
	env_vector("sig-alg", "alg p256 but the key is Ed25519", &b, NOW, "sig.alg");
	base(&b, bob);
	env_vector("sig-unknown-key", "from 320300 but signed with a key of 371300", &b, NOW,
	           "sig.unknown-key");
	base(&b, alice);
	repl(&b, "joint", "online");
	env_vector("sig-bad", "body changed after signing", &b, NOW, "sig.bad");
	base(&b, alice);
	env_vector("time-expired", "now = expires", &b, NOW - 60 + 86400, "time.expired");
	env_vector("time-future", "created 301 s ahead of now (skew 300)", &b, NOW - 60 - 301,
	           "time.future");
	env_vector("ok-skew", "created exactly 300 s ahead of now (skew 300)", &b, NOW - 60 - 300,
	           "ok");
	base(&b, alice);
	repl(&b, "\"sig\":", "\"relay\":{\"path\":[\"370000\",\"320000\",\"370000\"]},\"sig\":");
	env_vector("hops-loop", "relay path names 370000 twice", &b, NOW, "hops");
	base(&b, alice);
	repl(&b, "\"sig\":",
	     "\"relay\":{\"path\":[\"110000\",\"120000\",\"130000\",\"140000\",\"150000\"]},"
	     "\"sig\":");
	env_vector("hops-limit", "relay path of 5 with hops 4", &b, NOW, "hops");
	tb_buf_free(&b);
}

/* envelopes/order-*: inputs with several faults, or spelled unusually,
 * and the one reason PROTOCOL.md 2.1, 2.3, 3 and 3.2 give them. */
static void
envelopes_order(void)
{
	struct tb_buf b;
	static const struct {
		const char *name, *desc, *from, *to, *expect;
	} c[] = {
	    {"order-utf8-first", "a trailing comma, then ill-formed UTF-8 later: UTF-8 first", "}",
	     ",}", "json.utf8"}, /* with the overlong below */
	    {"order-duplicate-at-close", "a duplicate v, then data after the object", "\"v\":1}",
	     "\"v\":1,\"v\":1} x", "json.duplicate-key"},
	    {"order-duplicate-unclosed", "a duplicate v in an object never closed", "\"v\":1}",
	     "\"v\":1,\"v\":1", "json.syntax"},
	    {"order-number-before-close", "a duplicate v whose value is out of range",
	     "\"v\":1}", "\"v\":1,\"v\":1e999}", "json.number-range"},
	    {"order-version-before-unknown", "v 2 and an unknown member: v first", "\"v\":1}",
	     "\"v\":2,\"zz\":1}", "version"},
	    {"order-v-string", "v \"1\": not an integer", "\"v\":1}", "\"v\":\"1\"}",
	     "field.type"},
	    {"order-v-fraction", "v 1.5: not an integer", "\"v\":1}", "\"v\":1.5}", "field.type"},
	    {"order-v-missing-before-unknown", "no v, an unknown member", ",\"v\":1}", ",\"zz\":1}",
	     "field.missing"},
	    {"order-integer-by-value", "hops 4.0 and v 1e0: integers by value (signed as 4, 1)",
	     "\"hops\":4", "\"hops\":4.0", "ok"}, /* and v below */
	    {"order-presence-before-values", "from malformed and hops missing: presence first",
	     "\"from\":\"320300\",\"hops\":4,", "\"from\":\"32030\",", "field.missing"},
	    {"order-values-before-to-or-route", "from malformed, neither to nor route",
	     "\"from\":\"320300\"", "\"from\":\"32030\"", "field.value"}, /* and no to */
	    {"order-route-unknown", "route with an unknown member", "\"to\":\"371300\"",
	     "\"route\":{\"region\":\"3713\",\"service\":\"hukou.transfer\",\"x\":1}",
	     "field.unknown"},
	    {"order-route-missing", "route without region", "\"to\":\"371300\"",
	     "\"route\":{\"service\":\"hukou.transfer\"}", "field.missing"},
	    {"order-relay-empty", "relay path []: not relayed", "\"service\"",
	     "\"relay\":{\"path\":[]},\"service\"", "ok"},
	    {"order-relay-sender", "relay path names the sender: a loop", "\"service\"",
	     "\"relay\":{\"path\":[\"320000\",\"320300\"]},\"service\"", "hops"},
	    {"order-relay-recipient", "relay path names the recipient: a loop", "\"service\"",
	     "\"relay\":{\"path\":[\"371300\"]},\"service\"", "hops"},
	    {"order-batch-unknown", "sig.batch with an unknown member", "\"kid\"",
	     "\"batch\":{\"i\":0,\"n\":1,\"path\":[],\"q\":1},\"kid\"", "field.unknown"},
	    {"order-batch-missing-i", "sig.batch without i", "\"kid\"",
	     "\"batch\":{\"n\":1,\"path\":[]},\"kid\"", "field.missing"},
	    {"order-batch-n-zero", "sig.batch n 0", "\"kid\"",
	     "\"batch\":{\"i\":0,\"n\":0,\"path\":[]},\"kid\"", "sig.proof"},
	    {"order-batch-i-not-below-n", "sig.batch i = n", "\"kid\"",
	     "\"batch\":{\"i\":1,\"n\":1,\"path\":[]},\"kid\"", "sig.proof"},
	};

	tb_buf_init(&b);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		base(&b, alice);
		repl(&b, c[i].from, c[i].to);
		if (i == 0)
			repl(&b, "joint", "jo\xc0\xafnt");
		if (strcmp(c[i].name, "order-integer-by-value") == 0)
			repl(&b, "\"v\":1}", "\"v\":1e0}");
		if (strcmp(c[i].name, "order-values-before-to-or-route") == 0)
			repl(&b, ",\"to\":\"371300\"", "");
		env_vector(c[i].name, c[i].desc, &b, NOW, c[i].expect);
	}
	/* only a "sign" or "both" key verifies a message (7.1) */
	base(&b, alice);
	alice_use = "tls";
	env_vector("order-key-tls-only", "signed with a key the registry lists for DTLS only", &b,
	           NOW, "sig.unknown-key");
	alice_use = "sign";
	env_vector("order-key-sign", "signed with a key the registry lists for signing", &b, NOW,
	           "ok");
	alice_use = NULL;
	/* the top level must be an object (2.3) */
	tb_buf_reset(&b);
	tb_buf_adds(&b, "[1]");
	need(&b);
	env_vector("order-top-level-array", "an array where an envelope belongs", &b, NOW,
	           "field.type");
	tb_buf_free(&b);
}

/* ---- registries ---- */

static struct tb_key *auth[3], *rogue;

static struct tb_reg *
reg_base(const char *fed)
{
	struct tb_diag d;
	struct tb_reg *r = tb_reg_new(fed, NOW - 86400, NOW + 30 * 86400, &d);
	const struct tb_key *ks[2] = {alice, bob};
	const char *ids[2] = {"320300", "371300"},
	           *eps[2] = {"coaps://192.0.2.1:5684", "coaps://192.0.2.2:5684"};
	const char *regions[2][1] = {{"3203"}, {"3713"}};

	if (r == NULL)
		die("tb_reg_new", &d);
	for (int i = 0; i < 2; i++) {
		struct tb_pub *p = tb_key_pub(ks[i]);
		struct tb_buf spki;
		char name[32];
		tb_buf_init(&spki);
		must(p == NULL ? TB_E_NOMEM : tb_pub_spki(p, &spki), "public key");
		snprintf(name, sizeof(name), "Member %s", ids[i]);
		struct tb_reg_key_spec k = {spki.data, spki.len, TB_USE_BOTH};
		struct tb_reg_service_spec s = {"hukou.transfer", regions[i], 1};
		struct tb_reg_member_spec m = {
		    ids[i], name, NULL, TB_ROLE_CITY, TB_STATUS_ACTIVE, &eps[i], 1, &k, 1, &s, 1};
		if (tb_reg_add_member(r, &m, &d) != TB_OK)
			die("add member", &d);
		tb_buf_free(&spki);
		tb_pub_free(p);
	}
	must(tb_reg_set_policy_default(r, true), "policy");
	return r;
}

static void
reg_vector(const char *name, const char *desc, const struct tb_buf *in, int64_t now,
           int64_t previous, const char *expect)
{
	struct tb_json_doc *doc = tb_json_doc_new();
	struct tb_json *o = tb_json_new_object(doc);

	tb_json_set_root(doc, o);
	set(doc, o, "description", str(doc, desc));
	set(doc, o, "trust", str(doc, "trust.json"));
	set_input(doc, o, in);
	set(doc, o, "now", tb_json_new_number(doc, (double)now));
	set(doc, o, "previous", tb_json_new_number(doc, (double)previous));
	set(doc, o, "expect", str(doc, expect));
	write_doc("registries", name, doc);
}

static void
signed_text(struct tb_reg *r, const struct tb_key *const *ks, size_t n, struct tb_buf *out)
{
	struct tb_diag d;
	for (size_t i = 0; i < n; i++)
		if (tb_reg_sign(r, ks[i], &d) != TB_OK)
			die("tb_reg_sign", &d);
	tb_buf_reset(out);
	must(tb_reg_serialize(r, out), "tb_reg_serialize");
}

/* The authority keys (and a rogue one) and registries/trust.json, which
 * names three of them, two needed. */
static void
write_trust(void)
{
	struct tb_trust *t;
	struct tb_diag d;
	struct tb_buf b;
	char path[1024];

	for (int i = 0; i < 3; i++) {
		char n[16];
		snprintf(n, sizeof(n), "authority%d", i + 1);
		auth[i] = key(n, i == 2 ? TB_ALG_P256 : TB_ALG_ED25519);
	}
	rogue = key("rogue", TB_ALG_ED25519);
	if ((t = tb_trust_new("interop", &d)) == NULL)
		die("trust", &d);
	{
		uint8_t kid[TB_KEYID_LEN];
		const char *pem = "-----BEGIN CERTIFICATE-----\n"
		                  "(not used to verify registries)\n-----END CERTIFICATE-----\n";
		memset(kid, 0xab, sizeof(kid));
		if (tb_trust_set_root(t, pem, strlen(pem), kid, &d) != TB_OK)
			die("trust root", &d);
	}
	for (int i = 0; i < 3; i++) {
		struct tb_pub *p = tb_key_pub(auth[i]);
		struct tb_buf spki;
		char n[32];
		tb_buf_init(&spki);
		must(p == NULL ? TB_E_NOMEM : tb_pub_spki(p, &spki), "public key");
		snprintf(n, sizeof(n), "Authority %d", i + 1);
		if (tb_trust_add_authority(t, spki.data, spki.len, n, &d) != TB_OK)
			die("authority", &d);
		tb_buf_free(&spki);
		tb_pub_free(p);
	}
	if (tb_trust_set_threshold(t, 2, &d) != TB_OK)
		die("threshold", &d);
	tb_buf_init(&b);
	if (tb_trust_serialize(t, &b, &d) != TB_OK)
		die("trust", &d);
	tb_buf_addc(&b, '\n');
	need(&b);
	snprintf(path, sizeof(path), "%s/registries/trust.json", dir);
	if (tb_file_write(path, b.data, b.len, 0644, 0, &d) != TB_OK)
		die(path, &d);
	tb_trust_free(t);
	tb_buf_free(&b);
}

/* Endpoint schemes (PROTOCOL.md 7.1, RFC 3986 3.1): refused before any
 * signature is checked when malformed; accepted in any case when signed. */
static void
endpoint_vectors(const struct tb_key *const *ks)
{
	struct tb_buf b;
	struct tb_reg *r = reg_base("interop");
	struct tb_diag d;

	tb_buf_init(&b);
	signed_text(r, ks, 2, &b);
	tb_reg_free(r);
	repl(&b, "coaps://192.0.2.1:5684", "9://b");
	reg_vector("endpoint-scheme-digit", "endpoint scheme starting with a digit", &b, NOW, 0,
	           "field.value");
	repl(&b, "9://b", "+a://b");
	reg_vector("endpoint-scheme-plus", "endpoint scheme starting with '+'", &b, NOW, 0,
	           "field.value");
	/* COAPS:// signed as such */
	r = reg_base("interop");
	tb_buf_reset(&b);
	must(tb_reg_serialize(r, &b), "tb_reg_serialize");
	tb_reg_free(r);
	repl(&b, "coaps://192.0.2.1:5684", "COAPS://192.0.2.1:5684");
	if ((r = tb_reg_parse(b.data, b.len, &d)) == NULL)
		die("COAPS registry", &d);
	signed_text(r, ks, 2, &b);
	reg_vector("endpoint-scheme-upper", "COAPS:// (schemes are case-insensitive), signed", &b,
	           NOW, 0, "ok");
	tb_reg_free(r);
	/* "sigs" is required, [] when unsigned (7.1: the model is lossless) */
	r = reg_base("interop");
	tb_buf_reset(&b);
	must(tb_reg_serialize(r, &b), "tb_reg_serialize");
	tb_reg_free(r);
	repl(&b, "\"sigs\":[],", "");
	reg_vector("sigs-absent", "no sigs member (an unsigned registry has sigs [])", &b, NOW,
	           0, "field.missing");
	tb_buf_free(&b);
}

/* Registries deciding PROTOCOL.md 7.1 / 7.4's order and tokens. */
static void
registry_order_vectors(const struct tb_key *const *ks)
{
	struct tb_buf b, t;
	struct tb_reg *r = reg_base("interop");
	struct tb_diag d;
	char big[1501];

	tb_buf_init(&b);
	tb_buf_init(&t);
	signed_text(r, ks, 2, &b);
	tb_reg_free(r);
	/* edits of signed text that fail before any signature is looked at */
	static const struct {
		const char *name, *desc, *from, *to, *expect;
	} c[] = {
	    {"order-version-before-unknown", "v 2 and an unknown member: v first", "\"v\":1",
	     "\"v\":2,\"zz\":1", "version"},
	    {"order-v-string", "v \"1\"", "\"v\":1", "\"v\":\"1\"", "field.type"},
	    {"order-unknown-before-values",
	     "a member with keys [] (field.value) and an unknown member x: unknown first",
	     "\"keys\":[{", "\"keys\":[],\"x\":[{", "field.unknown"},
	    {"limit-revoked-twice", "a key id twice in revoked_keys", "\"revoked_keys\":[]",
	     "\"revoked_keys\":[\"" "0000000000000000000000000000000000000000000000000000000000000000"
	     "\",\"0000000000000000000000000000000000000000000000000000000000000000\"]",
	     "reg.duplicate-key"},
	    {"reference-hub-parent", "a hub with a parent", "\"role\":\"city\"",
	     "\"parent\":\"371300\",\"role\":\"hub\"", "reg.reference"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		tb_buf_reset(&t);
		tb_buf_add(&t, b.data, b.len);
		need(&t);
		repl(&t, c[i].from, c[i].to);
		reg_vector(c[i].name, c[i].desc, &t, NOW, 0, c[i].expect);
	}
	/* a name of 1,500 bytes: above the table's 1,024, a reg.limit */
	memset(big, 'x', 1500);
	big[1500] = '\0';
	tb_buf_reset(&t);
	tb_buf_add(&t, b.data, b.len);
	need(&t);
	repl(&t, "Member 320300", big);
	reg_vector("limit-name-long", "a member name of 1,500 bytes", &t, NOW, 0, "reg.limit");
	tb_buf_reset(&t);
	tb_buf_add(&t, b.data, b.len);
	need(&t);
	repl(&t, "\"name\":\"Member 320300\"", "\"name\":\"\"");
	reg_vector("limit-name-empty", "an empty member name: below the minimum", &t, NOW, 0,
	           "field.value");
	/* a signed registry whose key is no Ed25519/P-256 SPKI (7.4 step 5) */
	r = reg_base("interop");
	{
		static const uint8_t junk[20] = {0x30, 0x12, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70};
		const char *rg[1] = {"3705"}, *ep[1] = {"coaps://192.0.2.5:5684"};
		struct tb_reg_key_spec k = {junk, sizeof(junk), TB_USE_SIGN};
		struct tb_reg_service_spec sv = {"hukou.transfer", rg, 1};
		struct tb_reg_member_spec m = {"370500", "Member 370500", NULL, TB_ROLE_CITY,
		                               TB_STATUS_ACTIVE, ep, 1, &k, 1, &sv, 1};
		if (tb_reg_add_member(r, &m, &d) != TB_OK)
			die("junk key member", &d);
	}
	signed_text(r, ks, 2, &b);
	tb_reg_free(r);
	reg_vector("key-not-a-key", "a signed registry listing 20 bytes that are no key", &b, NOW,
	           0, "reg.key");
	tb_buf_free(&t);
	tb_buf_free(&b);
}

static void
registries(void)
{
	struct tb_buf b;
	struct tb_reg *r;

	write_trust();
	tb_buf_init(&b);

	const struct tb_key *a12[] = {auth[0], auth[1]}, *all[] = {auth[0], auth[1], auth[2]},
	                    *a1[] = {auth[0]}, *a1r[] = {auth[0], rogue},
	                    *a13[] = {auth[0], auth[2]};
	r = reg_base("interop");
	signed_text(r, a12, 2, &b);
	reg_vector("ok-2of3", "signed by 2 of 3 authorities (threshold 2)", &b, NOW, 0, "ok");
	reg_vector("rollback", "serial equal to the one held", &b, NOW, 1, "reg.serial-not-newer");
	reg_vector("expired", "now = valid_until", &b, NOW + 30 * 86400, 0, "reg.expired");
	reg_vector("not-yet-valid", "now < issued", &b, NOW - 86400 - 1, 0, "reg.not-yet-valid");
	reg_vector("ok-newer", "serial 1, previous 0 (none held)", &b, NOW, 0, "ok");
	{
		struct tb_buf t2;
		tb_buf_init(&t2);
		tb_buf_add(&t2, b.data, b.len);
		need(&t2);
		repl(&t2, "Member 320300", "Member 320399");
		reg_vector("tampered", "a member name changed after signing", &t2, NOW, 0,
		           "reg.bad-signature");
		tb_buf_reset(&t2);
		tb_buf_add(&t2, b.data, b.len);
		need(&t2);
		repl(&t2, "\"v\":1", "\"v\":1,\"zz\":1");
		reg_vector("field-unknown", "member not defined by version 1", &t2, NOW, 0,
		           "field.unknown");
		/* signed bytes are the only truth: a name holding U+0000 is not the
		 * shorter name, so this member is unknown, never silently dropped */
		tb_buf_reset(&t2);
		tb_buf_add(&t2, b.data, b.len);
		repl(&t2, "\"name\":\"Member 320300\"",
		     "\"name\":\"Member 320300\",\"name\\u0000evil\":\"unsigned\"");
		reg_vector("nul-name", "a member named \"name\\u0000evil\" added after signing",
		           &t2, NOW, 0, "field.unknown");
		tb_buf_reset(&t2);
		tb_buf_add(&t2, b.data, b.len);
		repl(&t2, "\"v\":1", "\"v\":1,\"v\\u0000\":2");
		reg_vector("nul-name-top", "a top-level member named \"v\\u0000\"", &t2, NOW, 0,
		           "field.unknown");
		tb_buf_free(&t2);
	}
	tb_reg_free(r);
	r = reg_base("interop");
	signed_text(r, all, 3, &b);
	reg_vector("ok-3of3", "signed by all 3 authorities (one P-256)", &b, NOW, 0, "ok");
	tb_reg_free(r);
	r = reg_base("interop");
	signed_text(r, a13, 2, &b);
	reg_vector("ok-mixed-alg", "Ed25519 and P-256 authority signatures", &b, NOW, 0, "ok");
	tb_reg_free(r);
	r = reg_base("interop");
	signed_text(r, a1, 1, &b);
	reg_vector("below-threshold", "1 valid signature, threshold 2", &b, NOW, 0,
	           "reg.threshold");
	tb_reg_free(r);
	r = reg_base("interop");
	signed_text(r, a1r, 2, &b);
	reg_vector("unknown-signer", "a signature by a key not in the trust anchor", &b, NOW, 0,
	           "reg.unknown-signer");
	tb_reg_free(r);
	endpoint_vectors(a12);
	registry_order_vectors(a12);
	r = reg_base("other");
	signed_text(r, a12, 2, &b);
	reg_vector("federation", "registry of another federation", &b, NOW, 0, "reg.federation");
	tb_reg_free(r);
	tb_buf_free(&b);
}

/* ---- routes ---- */

/* The routes' registry (unsigned): a hub, cities with and without
 * endpoints, a suspended one, a tie; serialised into b. */
static void
route_registry(struct tb_buf *b)
{
	struct tb_diag d;
	struct tb_reg *r = tb_reg_new("interop", NOW - 86400, NOW + 30 * 86400, &d);
	static const struct {
		const char *id, *parent, *ep, *svc1, *reg1, *svc2, *reg2;
		enum tb_reg_role role;
		enum tb_reg_status st;
	} m[] = {
	    {"370000", NULL, "coaps://192.0.2.37:5684", "hukou.transfer", "37", NULL, NULL,
	     TB_ROLE_HUB, TB_STATUS_ACTIVE},
	    {"371300", "370000", NULL, "hukou.transfer", "3713", NULL, NULL, TB_ROLE_CITY,
	     TB_STATUS_ACTIVE},
	    {"370800", NULL, "coaps://192.0.2.38:5684", "hukou.transfer", "3708",
	     "pension.transfer", "3708", TB_ROLE_CITY, TB_STATUS_ACTIVE},
	    {"370400", NULL, "coaps://192.0.2.34:5684", "hukou.transfer", "3704", NULL, NULL,
	     TB_ROLE_CITY, TB_STATUS_SUSPENDED},
	    {"370200", NULL, "coaps://192.0.2.32:5684", "pension.transfer", "37", NULL, NULL,
	     TB_ROLE_CITY, TB_STATUS_ACTIVE},
	    {"370100", NULL, "coaps://192.0.2.31:5684", "pension.transfer", "37", NULL, NULL,
	     TB_ROLE_CITY, TB_STATUS_ACTIVE},
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		struct tb_key *k = tb_key_generate(TB_ALG_ED25519, &d);
		struct tb_pub *p = tb_key_pub(k);
		struct tb_buf spki;
		const char *r1[1] = {m[i].reg1}, *r2[1] = {m[i].reg2};
		char name[32];
		tb_buf_init(&spki);
		must(p == NULL ? TB_E_NOMEM : tb_pub_spki(p, &spki), "public key");
		snprintf(name, sizeof(name), "Member %s", m[i].id);
		struct tb_reg_key_spec ks = {spki.data, spki.len, TB_USE_BOTH};
		struct tb_reg_service_spec sv[2] = {{m[i].svc1, r1, 1}, {m[i].svc2, r2, 1}};
		struct tb_reg_member_spec ms = {m[i].id, name,     m[i].parent,      m[i].role,
		                                m[i].st, &m[i].ep, m[i].ep ? 1 : 0,  &ks,
		                                1,       sv,       m[i].svc2 ? 2 : 1};
		if (tb_reg_add_member(r, &ms, &d) != TB_OK)
			die("route member", &d);
		tb_buf_free(&spki);
		tb_pub_free(p);
		tb_key_free(k);
	}
	must(tb_reg_serialize(r, b), "tb_reg_serialize");
	tb_reg_free(r);
}

static void
routes(void)
{
	struct tb_diag d;
	struct tb_buf b;
	struct tb_json_doc *doc, *rd;
	struct tb_json *o, *cases;

	tb_buf_init(&b);
	route_registry(&b);
	if ((rd = tb_json_parse(b.data, b.len, NULL, &d)) == NULL)
		die("route registry", &d);
	static const struct {
		const char *svc, *region, *member, *ep, *p1, *p2, *desc;
	} c[] = {
	    {"hukou.transfer", "371302", "371300", "coaps://192.0.2.37:5684", "370000", "371300",
	     "city without endpoint: reached through its hub"},
	    {"hukou.transfer", "3708", "370800", "coaps://192.0.2.38:5684", "370800", NULL,
	     "city prefix beats province prefix"},
	    {"hukou.transfer", "370481", "370000", "coaps://192.0.2.37:5684", "370000", NULL,
	     "suspended city skipped: province hub serves"},
	    {"hukou.transfer", "37", "370000", "coaps://192.0.2.37:5684", "370000", NULL,
	     "2-digit region"},
	    {"pension.transfer", "3701", "370100", "coaps://192.0.2.31:5684", "370100", NULL,
	     "tie on prefix 37: lowest member id"},
	    {"pension.transfer", "370800", "370800", "coaps://192.0.2.38:5684", "370800", NULL,
	     "longest prefix"},
	    {"hukou.transfer", "32", NULL, NULL, NULL, NULL, "no member serves region 32"},
	    {"no.such-service", "3713", NULL, NULL, NULL, NULL, "unknown service"},
	    {"Hukou.Transfer", "3713", "arg", NULL, NULL, NULL,
	     "not a service code (upper case): a usage error, not route.none"},
	    {"hukou.transfer", "371", "arg", NULL, NULL, NULL,
	     "not a region code (3 digits): a usage error, not route.none"},
	};
	/* the route file carries the registry object itself: re-parse into doc */
	doc = tb_json_parse(b.data, b.len, NULL, &d);
	o = tb_json_new_object(doc);
	set(doc, o, "registry", tb_json_root(doc));
	tb_json_set_root(doc, o);
	set(doc, o, "description",
	    str(doc, "route resolution (PROTOCOL.md 8.1) over an unsigned registry"));
	cases = tb_json_new_array(doc);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct tb_json *k = tb_json_new_object(doc);
		set(doc, k, "description", str(doc, c[i].desc));
		set(doc, k, "service", str(doc, c[i].svc));
		set(doc, k, "region", str(doc, c[i].region));
		if (c[i].member == NULL) {
			set(doc, k, "expect", str(doc, "route.none"));
		} else if (c[i].ep == NULL) { /* a refusal token, not a route */
			set(doc, k, "expect", str(doc, c[i].member));
		} else {
			struct tb_json *x = tb_json_new_object(doc), *p = tb_json_new_array(doc);
			set(doc, x, "member", str(doc, c[i].member));
			set(doc, x, "endpoint", str(doc, c[i].ep));
			app(p, str(doc, c[i].p1));
			if (c[i].p2)
				app(p, str(doc, c[i].p2));
			set(doc, x, "path", p);
			set(doc, k, "expect", x);
		}
		app(cases, k);
	}
	set(doc, o, "cases", cases);
	tb_json_doc_free(rd);
	tb_buf_free(&b);
	write_doc("routes", "huaihai-subset", doc);
}

/* ---- licences ---- */

/* A member with one key (use both) in r. */
static void
lic_member(struct tb_reg *r, const char *id, const struct tb_key *k, enum tb_reg_status st)
{
	struct tb_diag d;
	struct tb_pub *p = tb_key_pub(k);
	struct tb_buf spki;
	static const char *const ep[1] = {"coaps://192.0.2.1:5684"};
	const char *rg[1] = {"32"};
	char name[32];

	tb_buf_init(&spki);
	must(p == NULL ? TB_E_NOMEM : tb_pub_spki(p, &spki), "public key");
	snprintf(name, sizeof(name), "Member %s", id);
	struct tb_reg_key_spec ks = {spki.data, spki.len, TB_USE_BOTH};
	struct tb_reg_service_spec sv = {"business-license.change", rg, 1};
	struct tb_reg_member_spec ms = {id, name, NULL, TB_ROLE_CITY, st, ep, 1, &ks, 1, &sv, 1};
	if (tb_reg_add_member(r, &ms, &d) != TB_OK)
		die("licence member", &d);
	tb_buf_free(&spki);
	tb_pub_free(p);
}

#define LIC_BASE                                                                               \
	"{\"id\":\"JS-2026-000123\",\"type\":\"business-license\",\"holder_idhash\":"           \
	"\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\",\"issuer\":\"%s\"," \
	"\"issued\":%lld,\"valid_until\":%lld,\"status\":\"%s\",\"fields\":{\"name\":"            \
	"\"\xe5\xbe\x90\xe5\xb7\x9e\xe5\xb8\x82 Co.\",\"scope\":\"retail\"}}"

/* One case: a licence by issuer signed with k (after `edit`: a member
 * replaced after signing, or NULL), checked at now, expecting expect. */
static void
lic_case(struct tb_json_doc *doc, struct tb_json *cases, const char *desc, const char *issuer,
         const struct tb_key *k, const char *status, const char *edit_key,
         const char *edit_val, int64_t now, const char *expect)
{
	char text[1024];
	struct tb_diag d;
	struct tb_json_doc *ld;
	struct tb_json *c = tb_json_new_object(doc);
	struct tb_buf b;

	snprintf(text, sizeof(text), LIC_BASE, issuer, (long long)(NOW - 86400 * 365),
	         (long long)(NOW + 86400 * 365), status);
	if ((ld = tb_json_parse((const uint8_t *)text, strlen(text), NULL, &d)) == NULL ||
	    tb_flow_licence_sign(ld, tb_json_root(ld), k, &d) != TB_OK)
		die("licence", &d);
	if (edit_key != NULL)
		set(ld, tb_json_root(ld), edit_key, str(ld, edit_val));
	tb_buf_init(&b);
	must(tb_json_canon(tb_json_root(ld), NULL, &b), "licence canon");
	set(doc, c, "description", str(doc, desc));
	set(doc, c, "input", tb_json_new_string(doc, (const char *)b.data, b.len));
	set(doc, c, "now", tb_json_new_number(doc, (double)now));
	set(doc, c, "expect", str(doc, expect));
	app(cases, c);
	tb_buf_free(&b);
	tb_json_doc_free(ld);
}

/* licences/issuers.json: a licence per issuer status and per check of
 * PROTOCOL.md 10.5, in the order the checks run. */
static void
licences(void)
{
	struct tb_diag d;
	struct tb_buf b;
	struct tb_json_doc *doc;
	struct tb_json *o, *cases;
	struct tb_reg *r = tb_reg_new("interop", NOW - 86400, NOW + 30 * 86400, &d);
	struct tb_key *susp = key("320700-ed25519", TB_ALG_ED25519),
	              *rev = key("321100-ed25519", TB_ALG_ED25519),
	              *gone = key("320800-ed25519", TB_ALG_ED25519);
	uint8_t kid[TB_KEYID_LEN];
	struct tb_pub *gp = tb_key_pub(gone);

	if (r == NULL || gp == NULL)
		die("licence registry", &d);
	lic_member(r, "320300", alice, TB_STATUS_ACTIVE);
	lic_member(r, "371300", bob, TB_STATUS_ACTIVE);
	lic_member(r, "320700", susp, TB_STATUS_SUSPENDED);
	lic_member(r, "321100", rev, TB_STATUS_REVOKED);
	lic_member(r, "320800", gone, TB_STATUS_ACTIVE);
	tb_pub_id(gp, kid);
	tb_pub_free(gp);
	if (tb_reg_revoke_key(r, kid, &d) != TB_OK)
		die("revoke", &d);
	tb_buf_init(&b);
	must(tb_reg_serialize(r, &b), "tb_reg_serialize");
	tb_reg_free(r);
	if ((doc = tb_json_parse(b.data, b.len, NULL, &d)) == NULL)
		die("licence registry", &d);
	o = tb_json_new_object(doc);
	set(doc, o, "registry", tb_json_root(doc));
	tb_json_set_root(doc, o);
	set(doc, o, "description",
	    str(doc, "presented licences checked against an unsigned registry (PROTOCOL.md 10.5)"));
	cases = tb_json_new_array(doc);
	lic_case(doc, cases, "active issuer, Ed25519", "320300", alice, "valid", NULL, NULL, NOW,
	         "ok");
	lic_case(doc, cases, "active issuer, P-256", "371300", bob, "valid", NULL, NULL, NOW, "ok");
	lic_case(doc, cases, "issuer suspended in the registry", "320700", susp, "valid", NULL,
	         NULL, NOW, "licence.issuer-suspended");
	lic_case(doc, cases, "issuer revoked in the registry, whatever the licence's issued time",
	         "321100", rev, "valid", NULL, NULL, NOW, "licence.issuer-revoked");
	lic_case(doc, cases,
	         "issuer revoked and licence revoked: the issuer's status is checked first",
	         "321100", rev, "revoked", NULL, NULL, NOW, "licence.issuer-revoked");
	lic_case(doc, cases, "signing key listed in revoked_keys", "320800", gone, "valid", NULL,
	         NULL, NOW, "sig.unknown-key");
	lic_case(doc, cases, "signed by another member's key", "320300", bob, "valid", NULL, NULL,
	         NOW, "sig.unknown-key");
	lic_case(doc, cases, "content changed after signing", "320300", alice, "valid", "type",
	         "food-licence", NOW, "licence.digest");
	lic_case(doc, cases, "status revoked by the issuer", "320300", alice, "revoked", NULL, NULL,
	         NOW, "licence.revoked");
	lic_case(doc, cases, "status expired by the issuer", "320300", alice, "expired", NULL, NULL,
	         NOW, "licence.expired");
	lic_case(doc, cases, "now = valid_until", "320300", alice, "valid", NULL, NULL,
	         NOW + 86400 * 365, "licence.expired");
	lic_case(doc, cases, "now one second before issued", "320300", alice, "valid", NULL, NULL,
	         NOW - 86400 * 365 - 1, "licence.not-yet-valid");
	lic_case(doc, cases, "unknown status value", "320300", alice, "valid", "status", "paused",
	         NOW, "body.invalid");
	set(doc, o, "cases", cases);
	tb_buf_free(&b);
	tb_key_free(susp);
	tb_key_free(rev);
	tb_key_free(gone);
	write_doc("licences", "issuers", doc);
}

/* ---- receipts ---- */

/* receipts/NAME.json: a sender's judgement of a receipt for its message
 * (PROTOCOL.md 9.3, 9.7): its time is checked once, a receipt refused for
 * its time alone is accepted at its own created time. */
static void
receipt_vector(const char *name, const char *desc, const struct tb_buf *msgid,
               const char *digest, const char *named, int64_t created, int64_t now,
               const char *edit_from, const char *edit_to, const char *expect)
{
	char body[200];
	struct tb_buf b;
	struct tb_env *r;
	struct tb_json_doc *doc = tb_json_doc_new();
	struct tb_json *o = tb_json_new_object(doc), *keys = tb_json_new_object(doc),
	               *a = tb_json_new_array(doc);
	struct tb_env_fields f;

	/* the receipt names `named`; the message's digest is `digest` */
	snprintf(body, sizeof(body), "{\"digest\":\"%s\",\"received\":%lld,\"status\":\"accepted\"}",
	         named, (long long)created);
	memset(&f, 0, sizeof(f));
	f.type = "receipt";
	f.from = "371300";
	f.to = "320300";
	f.corr = (const char *)msgid->data;
	f.body = (const uint8_t *)body;
	f.body_len = strlen(body);
	f.created = created;
	f.ttl = 86400;
	f.hops = 16;
	if ((r = tb_env_create(&f, NULL)) == NULL)
		die("receipt", NULL);
	must(tb_env_seal(r, bob, NULL), "tb_env_seal");
	tb_buf_init(&b);
	must(tb_env_serialize(r, &b), "tb_env_serialize");
	tb_env_free(r);
	if (edit_from != NULL)
		repl(&b, edit_from, edit_to);
	tb_json_set_root(doc, o);
	set(doc, o, "description", str(doc, desc));
	set(doc, o, "message_id", str(doc, (const char *)msgid->data));
	set(doc, o, "message_digest", str(doc, digest));
	set_input(doc, o, &b);
	app(a, keyobj(doc, bob));
	set(doc, keys, "371300", a);
	set(doc, o, "keys", keys);
	set(doc, o, "now", tb_json_new_number(doc, (double)now));
	set(doc, o, "skew", tb_json_new_number(doc, 300));
	set(doc, o, "expect", str(doc, expect));
	write_doc("receipts", name, doc);
	tb_buf_free(&b);
}

static void
receipts(void)
{
	static const char dg[] = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b";
	struct tb_buf id;

	tb_buf_init(&id);
	tb_buf_adds(&id, "019b76d9bda08b983d260475aa731434");
	tb_buf_addc(&id, 0);
	id.len--;
	need(&id);
	receipt_vector("fresh", "a receipt for our message, on time", &id, dg, dg, NOW - 60, NOW,
	               NULL, NULL, "delivered");
	receipt_vector("old", "an original receipt answered for a duplicate 10 days later: its "
	                      "time is not held against it",
	               &id, dg, dg, NOW - 60, NOW + 10 * 86400, NULL, NULL, "delivered");
	receipt_vector("peer-clock-ahead", "created 600 s ahead of our clock (skew 300): clock "
	                                   "skew, still delivered",
	               &id, dg, dg, NOW + 600, NOW, NULL, NULL, "delivered");
	receipt_vector("old-tampered", "an old receipt changed after signing: its time does not "
	                               "hide the bad signature",
	               &id, dg, dg, NOW - 60, NOW + 10 * 86400, "accepted", "acceptee", "sig.bad");
	receipt_vector("other-digest", "a valid receipt naming another digest", &id, dg,
	               "0000000000000000000000000000000000000000000000000000000000000000", NOW - 60,
	               NOW, NULL, NULL, "receipt.mismatch");
}

/* ---- policies ---- */

/* policies/numbering.json: access decisions (PROTOCOL.md 8.2) naming the
 * deciding rule by its number, counted from 0. */
static void
policies(void)
{
	struct tb_diag d;
	struct tb_buf b;
	struct tb_json_doc *doc;
	struct tb_json *o, *cases;
	struct tb_reg *r = reg_base("interop");
	static const char *const rules[] = {
	    "effect=deny;services=hukou.transfer;ids=371300",
	    "effect=allow;services=hukou.transfer;regions=37",
	    "effect=allow;services=*;roles=hub",
	};
	static const struct {
		const char *from, *service, *expect, *desc;
	} c[] = {
	    {"371300", "hukou.transfer", "deny rule 0", "the first rule is rule 0"},
	    {"371300", "pension.transfer", "deny default", "no rule matches: the default"},
	    {"320300", "hukou.transfer", "deny default", "no rule matches 320300"},
	    {"110000", "hukou.transfer", "deny not-a-member", "not in the registry"},
	    {"Hukou", "hukou.transfer", "arg", "not a member id: a usage error"},
	};

	must(tb_reg_set_policy_default(r, false), "policy default");
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (tb_reg_add_policy_rule(r, rules[i], &d) != TB_OK)
			die("policy rule", &d);
	tb_buf_init(&b);
	must(tb_reg_serialize(r, &b), "tb_reg_serialize");
	tb_reg_free(r);
	if ((doc = tb_json_parse(b.data, b.len, NULL, &d)) == NULL)
		die("policy registry", &d);
	o = tb_json_new_object(doc);
	set(doc, o, "registry", tb_json_root(doc));
	tb_json_set_root(doc, o);
	set(doc, o, "description",
	    str(doc, "access policy decisions (PROTOCOL.md 8.2); rules numbered from 0"));
	cases = tb_json_new_array(doc);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct tb_json *k = tb_json_new_object(doc);
		set(doc, k, "description", str(doc, c[i].desc));
		set(doc, k, "from", str(doc, c[i].from));
		set(doc, k, "service", str(doc, c[i].service));
		set(doc, k, "expect", str(doc, c[i].expect));
		app(cases, k);
	}
	set(doc, o, "cases", cases);
	tb_buf_free(&b);
	write_doc("policies", "numbering", doc);
}

/* ---- sm2 (issue 21): envelopes, batches, receipts and registries signed
 * with SM2/SM3, in a federation that mixes them with Ed25519 and P-256.
 * Written as sm2-* files beside the others (and registries/trust-sm2.json),
 * so regenerating them changes no other vector. ---- */

/* The 56 batch bytes over a 3-leaf tree of SHA-256 (not SM3) leaves of
 * the envelopes' signed bytes (PROTOCOL.md 5.4). */
static void
sha256_batch_message(struct tb_env *const *e, uint8_t msg[56])
{
	uint8_t leaf[3][32], in[65], n01[32];

	for (int i = 0; i < 3; i++) {
		struct tb_buf b;
		tb_buf_init(&b);
		tb_buf_addc(&b, 0);
		must(tb_env_signed_bytes(e[i], &b), "signed bytes");
		tb_sha256(b.data, b.len, leaf[i]);
		tb_buf_free(&b);
	}
	in[0] = 1;
	memcpy(in + 1, leaf[0], 32);
	memcpy(in + 33, leaf[1], 32);
	tb_sha256(in, 65, n01);
	memcpy(in + 1, n01, 32);
	memcpy(in + 33, leaf[2], 32);
	memcpy(msg, "TONGBAN-BATCH-V1", 16);
	memset(msg + 16, 0, 8);
	msg[23] = 3;
	tb_sha256(in, 65, msg + 24);
}

/* the same batch with a SHA-256 tree under the SM2 signature: the
 * proof is SHA-256's, the signature over its root; a verifier that
 * hashes an sm2 batch with SM3 refuses it */
static void
sm2_batch_sha256_tree(struct tb_buf *b, struct tb_buf *t)
{
	struct tb_key *p256 = key("371300-p256", TB_ALG_P256);
	struct tb_env *sb[3];
	uint8_t sig[TB_SIG_LEN], msg[56];
	char val[90];

	for (int i = 0; i < 3; i++)
		sb[i] = mk("licence.query", "320300", "371300", "{\"licence\":\"x\"}",
		           NOW - 60, 3600, 4);
	must(tb_env_seal_batch(sb, 3, p256, NULL), "tb_env_seal_batch");
	sha256_batch_message(sb, msg);
	must(tb_key_sign(alice, msg, sizeof(msg), sig), "sign");
	tb_b64url_encode(sig, 64, val);
	tb_buf_reset(b);
	must(tb_env_serialize(sb[2], b), "tb_env_serialize");
	{
		uint8_t kid[32], pkid[32];
		char hex[65], phex[65];
		tb_key_id(alice, kid);
		tb_key_id(p256, pkid);
		tb_hex_encode(kid, 32, hex);
		tb_hex_encode(pkid, 32, phex);
		repl(b, "\"alg\":\"p256\"", "\"alg\":\"sm2\"");
		repl(b, phex, hex);
	}
	{ /* the val: everything between "val":" and the next quote */
		char *v = memmem(b->data, b->len, "\"val\":\"", 7);
		size_t off = (size_t)((uint8_t *)v - b->data) + 7, end = off;
		while (b->data[end] != '"')
			end++;
		tb_buf_reset(t);
		tb_buf_add(t, b->data, off);
		tb_buf_adds(t, val);
		tb_buf_add(t, b->data + end, b->len - end);
		need(t);
	}
	env_vector("sm2-batch-sha256-tree",
	           "an SM2 signature over a batch whose tree is SHA-256, not SM3", t, NOW,
	           "sig.bad");
	for (int i = 0; i < 3; i++)
		tb_env_free(sb[i]);
	tb_key_free(p256);
}

/* the signature value in DER (as openssl writes it), not r||s */
static void
sm2_der_val(struct tb_buf *b, struct tb_buf *t)
{
	struct tb_env *e;

	e = mk("case.submit", "320300", "371300", "{}", NOW - 60, 86400, 4);
	must(tb_env_seal(e, alice, NULL), "tb_env_seal");
	tb_buf_reset(b);
	must(tb_env_serialize(e, b), "tb_env_serialize");
	tb_env_free(e);
	{
		char *v = memmem(b->data, b->len, "\"val\":\"", 7);
		size_t off = (size_t)((uint8_t *)v - b->data) + 7;
		uint8_t der[72], raw[64];
		size_t outlen;
		char dval[100];
		if (!tb_b64url_decode((char *)b->data + off, 86, raw, 64, &outlen))
			die("val", NULL);
		/* SEQUENCE { INTEGER r, INTEGER s }, both with a 0x00 sign byte */
		der[0] = 0x30;
		der[1] = 70;
		der[2] = 0x02;
		der[3] = 33;
		der[4] = 0;
		memcpy(der + 5, raw, 32);
		der[37] = 0x02;
		der[38] = 33;
		der[39] = 0;
		memcpy(der + 40, raw + 32, 32);
		tb_b64url_encode(der, 72, dval);
		tb_buf_reset(t);
		tb_buf_add(t, b->data, off);
		tb_buf_adds(t, dval);
		tb_buf_add(t, b->data + off + 86, b->len - off - 86);
		need(t);
	}
	env_vector("sm2-der-val", "an SM2 signature value in DER form instead of r||s", t, NOW,
	           "field.value");
}

static void
sm2_envelopes(struct tb_key *sm2a)
{
	struct tb_key *saved = alice;
	struct tb_buf b, t;
	struct tb_env *bt[3];

	alice = sm2a;
	tb_buf_init(&b);
	tb_buf_init(&t);
	base(&b, alice);
	env_vector("sm2-ok",
	           "valid envelope signed with SM2 (SM3, distid 1234567812345678); "
	           "its digest is SM3",
	           &b, NOW, "ok");
	tb_buf_add(&t, b.data, b.len);
	need(&t);
	repl(&t, "\"mode\":\"joint\"", "\"mode\":\"jOint\"");
	env_vector("sm2-tampered", "an SM2-signed envelope changed after signing", &t, NOW,
	           "sig.bad");
	tb_buf_reset(&t);
	tb_buf_add(&t, b.data, b.len);
	need(&t);
	repl(&t, "\"alg\":\"sm2\"", "\"alg\":\"p256\"");
	env_vector("sm2-alg-mismatch", "sig.alg p256 naming an SM2 key", &t, NOW, "sig.alg");
	for (int i = 0; i < 3; i++)
		bt[i] = mk("licence.query", "320300", "371300", "{\"licence\":\"x\"}", NOW - 60,
		           3600, 4);
	must(tb_env_seal_batch(bt, 3, alice, NULL), "tb_env_seal_batch");
	tb_buf_reset(&b);
	must(tb_env_serialize(bt[2], &b), "tb_env_serialize");
	env_vector("sm2-ok-batch", "leaf 2 of an SM2-signed batch of 3: leaves and nodes are SM3",
	           &b, NOW, "ok");
	tb_buf_reset(&b);
	must(tb_env_serialize(bt[1], &b), "tb_env_serialize");
	repl(&b, "\"licence\":\"x\"", "\"licence\":\"y\"");
	env_vector("sm2-batch-tampered", "leaf 1 of an SM2 batch changed after signing", &b, NOW,
	           "sig.bad");
	sm2_batch_sha256_tree(&b, &t);
	for (int i = 0; i < 3; i++)
		tb_env_free(bt[i]);
	sm2_der_val(&b, &t);
	alice = saved;
	tb_buf_free(&b);
	tb_buf_free(&t);
}

static void
sm2_receipts(struct tb_key *sm2b)
{
	static const char dg[] = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
	struct tb_key *saved = bob;
	struct tb_buf id;

	bob = sm2b;
	tb_buf_init(&id);
	tb_buf_adds(&id, "019b76d9bda08b983d260475aa731435");
	tb_buf_addc(&id, 0);
	id.len--;
	need(&id);
	receipt_vector("sm2-fresh", "an SM2-signed receipt for our message, on time", &id, dg, dg,
	               NOW - 60, NOW, NULL, NULL, "delivered");
	receipt_vector("sm2-tampered", "an SM2-signed receipt changed after signing", &id, dg, dg,
	               NOW - 60, NOW, "accepted", "acceptee", "sig.bad");
	receipt_vector("sm2-other-digest", "an SM2-signed receipt naming another digest", &id, dg,
	               "0000000000000000000000000000000000000000000000000000000000000000", NOW - 60,
	               NOW, NULL, NULL, "receipt.mismatch");
	bob = saved;
	tb_buf_free(&id);
}

/* A registry whose member 320300 also lists sm2a with use. */
static struct tb_reg *
sm2_reg(const struct tb_key *sm2a, enum tb_key_use use)
{
	struct tb_reg *r = reg_base("interop");
	struct tb_pub *p = tb_key_pub(sm2a);
	struct tb_reg_key_spec k;
	struct tb_buf spki;
	struct tb_diag d;

	tb_buf_init(&spki);
	must(p == NULL ? TB_E_NOMEM : tb_pub_spki(p, &spki), "public key");
	k.spki = spki.data;
	k.spki_len = spki.len;
	k.use = use;
	if (tb_reg_add_key(r, "320300", &k, &d) != TB_OK)
		die("add key", &d);
	tb_buf_free(&spki);
	tb_pub_free(p);
	return r;
}

/* registries/trust-sm2.json: two bare SM2 authority keys and the
 * Ed25519 authority1, two needed; then the sm2 registry vectors. */
static void
sm2_registries(const struct tb_key *sm2a)
{
	struct tb_key *sa[2], *e1 = key("authority1", TB_ALG_ED25519);
	struct tb_trust *t;
	struct tb_diag d;
	struct tb_buf b;
	struct tb_reg *r;
	char path[1024];
	uint8_t kid[TB_KEYID_LEN];
	const char *pem = "-----BEGIN CERTIFICATE-----\n"
	                  "(not used to verify registries)\n-----END CERTIFICATE-----\n";

	sa[0] = key("authority-sm2-1", TB_ALG_SM2);
	sa[1] = key("authority-sm2-2", TB_ALG_SM2);
	if ((t = tb_trust_new("interop", &d)) == NULL)
		die("trust", &d);
	memset(kid, 0xab, sizeof(kid));
	if (tb_trust_set_root(t, pem, strlen(pem), kid, &d) != TB_OK)
		die("trust root", &d);
	const struct tb_key *ak[3] = {sa[0], sa[1], e1};
	for (int i = 0; i < 3; i++) {
		struct tb_pub *p = tb_key_pub(ak[i]);
		struct tb_buf spki;
		char n[32];
		tb_buf_init(&spki);
		must(p == NULL ? TB_E_NOMEM : tb_pub_spki(p, &spki), "public key");
		snprintf(n, sizeof(n), i < 2 ? "SM2 authority %d" : "Authority 1", i + 1);
		if (tb_trust_add_authority(t, spki.data, spki.len, n, &d) != TB_OK)
			die("authority", &d);
		tb_buf_free(&spki);
		tb_pub_free(p);
	}
	if (tb_trust_set_threshold(t, 2, &d) != TB_OK)
		die("threshold", &d);
	tb_buf_init(&b);
	if (tb_trust_serialize(t, &b, &d) != TB_OK)
		die("trust", &d);
	tb_buf_addc(&b, '\n');
	need(&b);
	snprintf(path, sizeof(path), "%s/registries/trust-sm2.json", dir);
	if (tb_file_write(path, b.data, b.len, 0644, 0, &d) != TB_OK)
		die(path, &d);
	tb_trust_free(t);

	const struct tb_key *both[] = {sa[0], sa[1]}, *mixed[] = {sa[1], e1}, *one[] = {sa[0]};
	r = sm2_reg(sm2a, TB_USE_SIGN);
	signed_text(r, both, 2, &b);
	reg_vector("sm2-ok",
	           "signed by two bare SM2 authority keys; member 320300 lists an SM2 "
	           "message-signing key (use sign)",
	           &b, NOW, 0, "ok");
	{
		struct tb_buf t2;
		tb_buf_init(&t2);
		tb_buf_add(&t2, b.data, b.len);
		need(&t2);
		repl(&t2, "Member 320300", "Member 320399");
		reg_vector("sm2-tampered", "a member name changed after the SM2 signatures", &t2,
		           NOW, 0, "reg.bad-signature");
		tb_buf_free(&t2);
	}
	tb_reg_free(r);
	r = sm2_reg(sm2a, TB_USE_SIGN);
	signed_text(r, mixed, 2, &b);
	reg_vector("sm2-mixed-alg", "an SM2 and an Ed25519 authority signature", &b, NOW, 0, "ok");
	tb_reg_free(r);
	r = sm2_reg(sm2a, TB_USE_SIGN);
	signed_text(r, one, 1, &b);
	reg_vector("sm2-below-threshold", "1 SM2 signature, threshold 2", &b, NOW, 0,
	           "reg.threshold");
	tb_reg_free(r);
	r = sm2_reg(sm2a, TB_USE_BOTH);
	signed_text(r, both, 2, &b);
	reg_vector("sm2-key-tls", "an SM2 member key listed for DTLS (use both)", &b, NOW, 0,
	           "reg.key");
	tb_reg_free(r);
	/* the vectors name their trust anchor */
	for (const char *const *n =
	         (const char *const[]){"sm2-ok", "sm2-tampered", "sm2-mixed-alg",
	                               "sm2-below-threshold", "sm2-key-tls", NULL};
	     *n; n++) {
		struct tb_buf v;
		tb_buf_init(&v);
		snprintf(path, sizeof(path), "%s/registries/%s.json", dir, *n);
		if (tb_file_read(path, 1 << 20, &v, &d) != TB_OK)
			die(path, &d);
		repl(&v, "\"trust\":\"trust.json\"", "\"trust\":\"trust-sm2.json\"");
		if (tb_file_write(path, v.data, v.len, 0644, 0, &d) != TB_OK)
			die(path, &d);
		tb_buf_free(&v);
	}
	tb_buf_free(&b);
	tb_key_free(sa[0]);
	tb_key_free(sa[1]);
	tb_key_free(e1);
}

static void
sm2(void)
{
	struct tb_key *a = key("320300-sm2", TB_ALG_SM2), *b = key("371300-sm2", TB_ALG_SM2);

	sm2_envelopes(a);
	sm2_receipts(b);
	sm2_registries(a);
	tb_key_free(a);
	tb_key_free(b);
}

/* ---- audit exports (PROTOCOL.md 11) ---- */

struct aentry {
	char dir;
	const char *msgid, *digest, *peer, *event, *detail;
};

/* The export of entries e[0..n) (at NOW + i), entry 1 hashed with h1 and
 * the others with h, then the head naming entry head_seq with the hash
 * of entry hash_of (normally the same), signed with key, into out. */
static void
audit_export(struct tb_buf *out, const struct aentry *e, size_t n, enum tb_audit_hash h1,
             enum tb_audit_hash h, const struct tb_key *key, int64_t head_seq, int64_t hash_of)
{
	uint8_t prev[32] = {0}, hash[32], kid[TB_KEYID_LEN];
	char prev_hex[65], hash_hex[65], heads[32][65], sig_hex[2 * TB_SIG_LEN + 1], line[1024];
	struct tb_audit_head hd;
	struct tb_buf sb;

	for (size_t i = 0; i < n && i < 32; i++) {
		int64_t seq = (int64_t)i + 1, at = NOW + (int64_t)i;
		must(tb_journal_audit_hash_h(i == 0 ? h1 : h, seq, prev, e[i].dir, e[i].msgid,
		                             e[i].digest, e[i].peer, at, e[i].event, e[i].detail,
		                             hash),
		     "audit hash");
		tb_hex_encode(prev, 32, prev_hex);
		tb_hex_encode(hash, 32, hash_hex);
		memcpy(heads[i], hash_hex, 65);
		snprintf(line, sizeof(line),
		         "{\"at\":%lld,\"detail\":\"%s\",\"digest\":\"%s\",\"dir\":\"%c\","
		         "\"event\":\"%s\",\"hash\":\"%s\",\"msgid\":\"%s\",\"peer\":\"%s\","
		         "\"prev\":\"%s\",\"seq\":%lld}\n",
		         (long long)at, e[i].detail, e[i].digest, e[i].dir, e[i].event, hash_hex,
		         e[i].msgid, e[i].peer, prev_hex, (long long)seq);
		tb_buf_adds(out, line);
		memcpy(prev, hash, 32);
	}
	if (head_seq >= 0) {
		memset(&hd, 0, sizeof(hd));
		hd.seq = head_seq;
		snprintf(hd.hash, sizeof(hd.hash), "%s",
		         hash_of > 0
		             ? heads[hash_of - 1]
		             : "0000000000000000000000000000000000000000000000000000000000000000");
		snprintf(hd.member, sizeof(hd.member), "%s", key == bob ? "371300" : "320300");
		hd.alg = tb_key_alg(key);
		tb_key_id(key, kid);
		tb_hex_encode(kid, TB_KEYID_LEN, hd.kid);
		tb_buf_init(&sb);
		must(tb_audit_head_signed(&hd, &sb), "audit head");
		must(tb_key_sign(key, sb.data, sb.len, hd.sig), "audit head signature");
		tb_hex_encode(hd.sig, TB_SIG_LEN, sig_hex);
		/* the signed line with "sig" put in before "type" (RFC 8785 order) */
		tb_buf_add(out, sb.data, sb.len - strlen(",\"type\":\"tongban-audit-head\"}"));
		snprintf(line, sizeof(line), ",\"sig\":\"%s\",\"type\":\"tongban-audit-head\"}\n",
		         sig_hex);
		tb_buf_adds(out, line);
		tb_buf_free(&sb);
	}
	need(out);
}

/* Writes audit/NAME.jsonl and its line in the index. */
static void
audit_vector(FILE *index, const char *name, const struct tb_buf *b, const char *pub,
             const char *expect, const char *hash)
{
	char path[1024];
	struct tb_diag d;

	snprintf(path, sizeof(path), "%s/audit/%s.jsonl", dir, name);
	if (tb_file_write(path, b->data, b->len, 0644, 0, &d) != TB_OK)
		die(path, &d);
	fprintf(index, "%s %s %s %s\n", name, pub, expect, hash);
}

/* Replaces the first `from` in line `line` (1-based) of b by `to`. */
static void
edit_line(struct tb_buf *b, int line, const char *from, const char *to)
{
	struct tb_buf o;
	char *p = (char *)b->data, *at;
	int l = 1;

	tb_buf_addc(b, '\0');
	need(b);
	while (l < line && (p = strchr(p, '\n')) != NULL) {
		p++;
		l++;
	}
	if (p == NULL || (at = strstr(p, from)) == NULL || memchr(p, '\n', (size_t)(at - p)))
		die("edit_line: no such text", NULL);
	tb_buf_init(&o);
	tb_buf_add(&o, b->data, (size_t)(at - (char *)b->data));
	tb_buf_adds(&o, to);
	tb_buf_adds(&o, at + strlen(from));
	need(&o);
	tb_buf_free(b);
	*b = o;
}

/* Drops the lines from..to (1-based) of b. */
static void
drop_lines(struct tb_buf *b, int from, int to)
{
	struct tb_buf o;
	const char *p = (const char *)b->data, *end = p + b->len, *nl;
	int l = 1;

	tb_buf_init(&o);
	for (; p < end; p = nl + 1, l++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (l < from || l > to)
			tb_buf_add(&o, p, (size_t)(nl - p) + 1);
	}
	need(&o);
	tb_buf_free(b);
	*b = o;
}

static void
audits(struct tb_key *sm2k)
{
#define DG "6d1c8a9be3f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a"
#define ID "0194f3a2b1c0d9e8f7a6b5c4d3e2f1a0"
	const struct aentry sm3[] = {
	    {'a', "", "", "", "chain", "hash=sm3"},
	    {'a', "", "", "", "start", "version=1.0 serial=42"},
	    {'o', ID, DG, "371300", "queued", ""},
	    {'o', ID, DG, "371300", "delivered", ""},
	    {'i', "0194f3a2b1c0d9e8f7a6b5c4d3e2f1a1", DG, "371300", "received", ""},
	    {'a', "", "", "", "stop", ""},
	};
	const size_t n = sizeof(sm3) / sizeof(sm3[0]);
	struct aentry v[sizeof(sm3) / sizeof(sm3[0])];
	char path[1024];
	struct tb_buf b, pem;
	struct tb_pub *p;
	struct tb_diag d;
	FILE *index;
	const char *const pubs[2][2] = {{"320300-sm2.pub", NULL}, {"371300-p256.pub", NULL}};
	const struct tb_key *keys[2] = {sm2k, bob};

	snprintf(path, sizeof(path), "%s/audit", dir);
	mkdir(path, 0755);
	for (int k = 0; k < 2; k++) {
		tb_buf_init(&pem);
		if ((p = tb_key_pub(keys[k])) == NULL || tb_pub_pem(p, &pem) != TB_OK)
			die("public key", NULL);
		snprintf(path, sizeof(path), "%s/audit/%s", dir, pubs[k][0]);
		if (tb_file_write(path, pem.data, pem.len, 0644, 0, &d) != TB_OK)
			die(path, &d);
		tb_pub_free(p);
		tb_buf_free(&pem);
	}
	snprintf(path, sizeof(path), "%s/audit/index.txt", dir);
	if ((index = fopen(path, "w")) == NULL)
		die(path, NULL);
	fprintf(index, "# NAME PUBLIC-KEY EXPECT CHAIN-HASH (interop/vectors/README.md)\n");

	tb_buf_init(&b);
	audit_export(&b, sm3, n, TB_AUDIT_SM3, TB_AUDIT_SM3, sm2k, 6, 6);
	audit_vector(index, "sm2-ok", &b, pubs[0][0], "ok", "sm3");
	edit_line(&b, 3, "\"peer\":\"371300\"", "\"peer\":\"371400\"");
	audit_vector(index, "sm2-tampered", &b, pubs[0][0], "audit.broken", "sm3");
	tb_buf_reset(&b);
	audit_export(&b, sm3, n, TB_AUDIT_SM3, TB_AUDIT_SM3, sm2k, 6, 6);
	drop_lines(&b, 5, 6);
	audit_vector(index, "sm2-truncated", &b, pubs[0][0], "audit.truncated", "sm3");
	tb_buf_reset(&b);
	audit_export(&b, sm3, n, TB_AUDIT_SM3, TB_AUDIT_SM3, sm2k, 6, 6);
	edit_line(&b, 7, "\"seq\":6", "\"seq\":5");
	audit_vector(index, "sm2-head-edited", &b, pubs[0][0], "audit.head-signature", "sm3");
	/* a head, validly signed, naming entry 4 with entry 5's hash */
	tb_buf_reset(&b);
	audit_export(&b, sm3, n, TB_AUDIT_SM3, TB_AUDIT_SM3, sm2k, 4, 5);
	audit_vector(index, "sm2-head-mismatch", &b, pubs[0][0], "audit.head-mismatch", "sm3");
	tb_buf_reset(&b);
	/* the SHA-256 hashes of the same entries under an sm2 head: entry 1
	 * says hash=sm3, so entry 1 does not recompute */
	audit_export(&b, sm3, n, TB_AUDIT_SHA256, TB_AUDIT_SHA256, sm2k, 6, 6);
	audit_vector(index, "sm2-sha256-hashes", &b, pubs[0][0], "audit.broken", "sm3");
	/* the downgrade: entry 1 rewritten to hash=sha256 with its SHA-256
	 * hash, the rest SM3 */
	memcpy(v, sm3, sizeof(v));
	v[0].detail = "hash=sha256";
	tb_buf_reset(&b);
	audit_export(&b, v, n, TB_AUDIT_SHA256, TB_AUDIT_SM3, sm2k, 6, 6);
	audit_vector(index, "sm2-downgraded", &b, pubs[0][0], "audit.broken", "sha256");
	/* an unknown hash name in entry 1 */
	v[0].detail = "hash=sha3-256";
	tb_buf_reset(&b);
	audit_export(&b, v, n, TB_AUDIT_SM3, TB_AUDIT_SM3, sm2k, 6, 6);
	audit_vector(index, "sm2-unknown-hash", &b, pubs[0][0], "audit.broken", "-");
	/* a chain started before the key was sm2: SHA-256, no chain entry,
	 * under an sm2 head: valid */
	tb_buf_reset(&b);
	audit_export(&b, sm3 + 1, n - 1, TB_AUDIT_SHA256, TB_AUDIT_SHA256, sm2k, 5, 5);
	audit_vector(index, "sm2-head-sha256-chain", &b, pubs[0][0], "ok", "sha256");
	/* a "chain" entry after entry 1 (hashes consistent: refused by rule) */
	memcpy(v, sm3 + 1, sizeof(v[0]) * (n - 1));
	v[2] = sm3[0];
	tb_buf_reset(&b);
	audit_export(&b, v, n - 1, TB_AUDIT_SHA256, TB_AUDIT_SHA256, sm2k, 5, 5);
	audit_vector(index, "sm2-chain-later", &b, pubs[0][0], "audit.broken", "sha256");
	/* a P-256 node's SHA-256 chain */
	tb_buf_reset(&b);
	audit_export(&b, sm3 + 1, n - 1, TB_AUDIT_SHA256, TB_AUDIT_SHA256, bob, 5, 5);
	audit_vector(index, "p256-ok", &b, pubs[1][0], "ok", "sha256");
	/* the SM3 chain checked with another member's key */
	tb_buf_reset(&b);
	audit_export(&b, sm3, n, TB_AUDIT_SM3, TB_AUDIT_SM3, sm2k, 6, 6);
	audit_vector(index, "sm2-other-key", &b, pubs[1][0], "audit.head-signature", "sm3");
	tb_buf_free(&b);
	fclose(index);
#undef DG
#undef ID
}

int
main(int argc, char **argv)
{
	char path[1024];
	const char *only;

	if (argc != 2 && argc != 3) {
		fprintf(
		    stderr,
		    "Usage: gen_vectors VECTORS_DIR "
		    "[envelopes|order|registries|routes|licences|policies|receipts|sm2|audit]\n");
		return 2;
	}
	dir = argv[1];
	if (tb_crypto_init() != TB_OK)
		die("crypto init", NULL);
	for (const char *const *s =
	         (const char *const[]){"keys",     "envelopes", "registries", "routes",
	                               "licences", "policies",  "receipts",   NULL};
	     *s; s++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *s);
		mkdir(path, 0755);
	}
	alice = key("320300-ed25519", TB_ALG_ED25519);
	bob = key("371300-p256", TB_ALG_P256);
	only = argc == 3 ? argv[2] : NULL;
	if (only == NULL || strcmp(only, "envelopes") == 0)
		envelopes();
	if (only == NULL || strcmp(only, "envelopes") == 0 || strcmp(only, "order") == 0)
		envelopes_order();
	if (only == NULL || strcmp(only, "registries") == 0)
		registries();
	if (only == NULL || strcmp(only, "routes") == 0)
		routes();
	if (only == NULL || strcmp(only, "licences") == 0)
		licences();
	if (only == NULL || strcmp(only, "policies") == 0)
		policies();
	if (only == NULL || strcmp(only, "receipts") == 0)
		receipts();
	if (only == NULL || strcmp(only, "sm2") == 0)
		sm2();
	if (only == NULL || strcmp(only, "audit") == 0) {
		struct tb_key *k = key("320300-sm2", TB_ALG_SM2);
		audits(k);
		tb_key_free(k);
	}
	printf("vectors written to %s\n", dir);
	return 0;
}
