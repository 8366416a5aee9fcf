/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_flow.c - message meaning: body schemas, pairing, case lifecycle,
 * licences.
 *
 * The schemas are data: one table of field descriptions per object, one
 * row per type naming its body, its role and what it answers.  The same
 * table is what docs/PROTOCOL.md section 10 prints, so the two are easy
 * to hold side by side.  Rules that tie two fields together (assurance
 * only with a match, parties only for joint handling) are small hooks.
 */
#include "tb_flow.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../certs/tb_key.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "tb_json.h"
#include "tb_schema.h"

#define MAX_SAFE 9007199254740992LL /* 2^53 */

/* Domain separation: an issuer's key also signs envelopes (signed bytes
 * start with '{') and batches ("TONGBAN-BATCH-V1"). */
static const char licence_prefix[16] = "TONGBAN-LICENCE1";
static const char *const licence_unsigned[] = {"digest", "issuer_sig", NULL};

/* ---- schemas (the engine is tb_schema) ---- */

#define END TB_F_END
#define TEXT TB_F_TEXT
#define ENUM TB_F_ENUM
#define INT TB_F_INT
#define OBJ TB_F_OBJ
#define ARR TB_F_ARR
#define MAP TB_F_MAP
#define HEX64(n, r) TB_F_HEX(n, r, 64)
#define SIGVAL(n, r) TB_F_B64(n, r, TB_SIG_LEN, TB_SIG_LEN)
#define CODE(n, r) TB_F(n, TB_ST_CODE, r)
#define MEMBER(n, r) TB_F(n, TB_ST_MEMBER, r)
#define CASEID(n, r) TB_F_STR(n, r, 64, tb_flow_case_id_valid, "1-64 of A-Z a-z 0-9 . _ -")

static const char *const kinds[] = {"person", "enterprise", NULL};
static const char *const id_results[] = {"match", "no-match", "unknown", NULL};
static const char *const assurances[] = {"low", "substantial", "high", NULL};
static const char *const lic_status[] = {"valid", "revoked", "expired", NULL};
static const char *const lic_check[] = {"valid", "revoked", "expired", "unknown", NULL};
static const char *const modes[] = {"online", "proxy", "joint", NULL};
static const char *const outcomes[] = {"approved", "denied", NULL};
static const char *const case_states[] = {"submitted", "accepted", "rejected", "in-progress",
                                          "completed", "unknown",  NULL};
static const char *const accepted[] = {"accepted", NULL};
static const char *const algs[] = {"ed25519", "p256", "sm2", NULL};

static int hook_identity_result(struct tb_schema_ck *c, const struct tb_json *v);
static int hook_case_submit(struct tb_schema_ck *c, const struct tb_json *v);
static int hook_licence(struct tb_schema_ck *c, const struct tb_json *v);
static int hook_material(struct tb_schema_ck *c, const struct tb_json *v);

static const struct tb_field f_subject[] = {ENUM("kind", true, kinds), HEX64("idhash", true), END};
static const struct tb_field f_holder[] = {HEX64("idhash", true), END};
static const struct tb_field f_sig[] = {ENUM("alg", true, algs), HEX64("kid", true),
                                        SIGVAL("val", true), END};
static const struct tb_field f_licence[] = {TEXT("id", true, 1, 128),
                                            CODE("type", true),
                                            HEX64("holder_idhash", true),
                                            MEMBER("issuer", true),
                                            INT("issued", true, 0, MAX_SAFE),
                                            INT("valid_until", true, 0, MAX_SAFE),
                                            ENUM("status", true, lic_status),
                                            MAP("fields", true, 64),
                                            HEX64("digest", true),
                                            OBJ("issuer_sig", true, f_sig, NULL),
                                            END};
static const struct tb_field f_licence_el[] = {OBJ(NULL, true, f_licence, hook_licence), END};
/* a file's digest: SHA-256, or SM3 where the member's systems use SM3
 * (PROTOCOL.md 10.2), exactly one (hook_material) */
static const struct tb_field f_material[] = {HEX64("sha256", false), HEX64("sm3", false),
                                             INT("size", true, 0, MAX_SAFE),
                                             TEXT("name", false, 1, 256), END};
static const struct tb_field f_material_el[] = {OBJ(NULL, true, f_material, hook_material), END};
static const struct tb_field f_member_el[] = {MEMBER(NULL, true), END};

static const struct tb_field b_identity_verify[] = {OBJ("subject", true, f_subject, NULL),
                                                    CODE("purpose", true), END};
static const struct tb_field b_identity_result[] = {ENUM("result", true, id_results),
                                                    ENUM("assurance", false, assurances),
                                                    MAP("attributes", false, 32), END};
static const struct tb_field b_licence_query[] = {OBJ("holder", true, f_holder, NULL),
                                                  CODE("licence", true), END};
static const struct tb_field b_licence_present[] = {
    ARR("licences", true, 0, 16, f_licence_el, false), END};
static const struct tb_field b_licence_verify[] = {TEXT("licence_id", true, 1, 128),
                                                   HEX64("digest", true), END};
static const struct tb_field b_licence_status[] = {TEXT("licence_id", true, 1, 128),
                                                   ENUM("status", true, lic_check),
                                                   INT("checked", true, 0, MAX_SAFE), END};
static const struct tb_field b_case_submit[] = {
    CASEID("case_id", true),
    CODE("service", true),
    OBJ("applicant", true, f_subject, NULL),
    ARR("materials", true, 0, 128, f_material_el, false),
    ENUM("mode", true, modes),
    ARR("parties", false, 2, 16, f_member_el, true),
    END};
static const struct tb_field b_case_accept[] = {CASEID("case_id", true), END};
static const struct tb_field b_case_reject[] = {CASEID("case_id", true),
                                                TEXT("reason", true, 1, 1024), END};
static const struct tb_field b_case_update[] = {
    CASEID("case_id", true), TEXT("status", true, 1, 64), TEXT("note", false, 1, 1024), END};
static const struct tb_field b_case_result[] = {
    CASEID("case_id", true), ENUM("outcome", true, outcomes),
    ARR("documents", false, 0, 128, f_material_el, false), END};
static const struct tb_field b_case_state[] = {CASEID("case_id", true),
                                               ENUM("state", true, case_states), END};
static const struct tb_field b_receipt[] = {
    HEX64("digest", true), INT("received", true, 0, MAX_SAFE), ENUM("status", true, accepted), END};
static const struct tb_field b_error[] = {CODE("reason", true), TEXT("detail", false, 1, 1024),
                                          END};
static const struct tb_field b_empty[] = {END};
static const struct tb_field b_registry[] = {INT("serial", true, 1, MAX_SAFE - 1), END};

/* One row per type: schema and pairing (docs/PROTOCOL.md 10.2, 10.3). */
static const struct flowtype {
	const char *type;
	enum tb_flow_role role;
	const char *answers; /* request type, "*" or NULL */
	bool final;          /* answer closes its request */
	const struct tb_field *body;
	int (*hook)(struct tb_schema_ck *c, const struct tb_json *v);
} flowtab[] = {
    {"identity.verify", TB_FLOW_REQUEST, NULL, false, b_identity_verify, NULL},
    {"identity.result", TB_FLOW_ANSWER, "identity.verify", true, b_identity_result,
     hook_identity_result},
    {"licence.query", TB_FLOW_REQUEST, NULL, false, b_licence_query, NULL},
    {"licence.present", TB_FLOW_ANSWER, "licence.query", true, b_licence_present, NULL},
    {"licence.verify", TB_FLOW_REQUEST, NULL, false, b_licence_verify, NULL},
    {"licence.status", TB_FLOW_ANSWER, "licence.verify", true, b_licence_status, NULL},
    {"case.submit", TB_FLOW_REQUEST, NULL, false, b_case_submit, hook_case_submit},
    {"case.accept", TB_FLOW_ANSWER, "case.submit", false, b_case_accept, NULL},
    {"case.reject", TB_FLOW_ANSWER, "case.submit", true, b_case_reject, NULL},
    {"case.update", TB_FLOW_ANSWER, "case.submit", false, b_case_update, NULL},
    {"case.result", TB_FLOW_ANSWER, "case.submit", true, b_case_result, NULL},
    {"case.query", TB_FLOW_REQUEST, NULL, false, b_case_accept, NULL},
    {"case.state", TB_FLOW_ANSWER, "case.query", true, b_case_state, NULL},
    {"receipt", TB_FLOW_ANSWER, "*", false, b_receipt, NULL},
    {"error", TB_FLOW_ANSWER, "*", true, b_error, NULL},
    {"control.ping", TB_FLOW_REQUEST, NULL, false, b_empty, NULL},
    {"control.pong", TB_FLOW_ANSWER, "control.ping", true, b_empty, NULL},
    {"control.status", TB_FLOW_NOTICE, NULL, false, b_empty, NULL},
    {"control.registry", TB_FLOW_NOTICE, NULL, false, b_registry, NULL},
};

static const struct flowtype *
find_type(const char *type)
{
	if (type == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(flowtab) / sizeof(flowtab[0]); i++)
		if (strcmp(flowtab[i].type, type) == 0)
			return &flowtab[i];
	return NULL;
}

/* ---- checking ---- */

bool
tb_flow_hex64_valid(const char *s, size_t n)
{
	return s != NULL && n == 64 && tb_hex_valid(s, n);
}

bool
tb_flow_case_id_valid(const char *s, size_t n)
{
	if (s == NULL || n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static bool
str_is(const struct tb_json *v, const char *lit)
{
	size_t n;
	const char *s = v != NULL ? tb_json_string(v, &n) : NULL;
	return s != NULL && n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static int
hook_identity_result(struct tb_schema_ck *c, const struct tb_json *v)
{
	bool match = str_is(tb_json_get(v, "result"), "match");

	if (match && tb_json_get(v, "assurance") == NULL) {
		tb_schema_push(c, "assurance");
		return tb_schema_fail(c, 0, "required when result is \"match\"");
	}
	if (!match && tb_json_get(v, "assurance") != NULL) {
		tb_schema_push(c, "assurance");
		return tb_schema_fail(c, 0, "only allowed when result is \"match\"");
	}
	if (!match && tb_json_get(v, "attributes") != NULL) {
		tb_schema_push(c, "attributes");
		return tb_schema_fail(c, 0, "only allowed when result is \"match\"");
	}
	return TB_OK;
}

static int
hook_case_submit(struct tb_schema_ck *c, const struct tb_json *v)
{
	bool joint = str_is(tb_json_get(v, "mode"), "joint");
	bool parties = tb_json_get(v, "parties") != NULL;

	if (joint == parties)
		return TB_OK;
	tb_schema_push(c, "parties");
	return tb_schema_fail(c, 0,
	                      joint ? "required when mode is \"joint\""
	                            : "only allowed when mode is \"joint\"");
}

static int
hook_material(struct tb_schema_ck *c, const struct tb_json *v)
{
	bool sha256 = tb_json_get(v, "sha256") != NULL, sm3 = tb_json_get(v, "sm3") != NULL;

	if (sha256 != sm3)
		return TB_OK;
	tb_schema_push(c, sha256 ? "sm3" : "sha256");
	return tb_schema_fail(
	    c, 0, sha256 ? "only allowed when sha256 is absent" : "required when sm3 is absent");
}

static int
hook_licence(struct tb_schema_ck *c, const struct tb_json *v)
{
	int64_t from = 0, until = 0;

	/* a member that is not an integer is reported by its own rule */
	if (!tb_json_integer(tb_json_get(v, "issued"), &from) ||
	    !tb_json_integer(tb_json_get(v, "valid_until"), &until) || until > from)
		return TB_OK;
	tb_schema_push(c, "valid_until");
	return tb_schema_fail(c, 0, "must be after issued");
}

int
tb_flow_check_body(const char *type, const struct tb_json *body, struct tb_diag *d)
{
	static const struct tb_schema_opts opts = {.root = "body", .code = TB_E_BODY};
	const struct flowtype *ft;
	int rc;

	if (type == NULL || body == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "no type or body");
	if ((ft = find_type(type)) == NULL)
		return tb_diag_set(d, TB_E_TYPE_UNKNOWN, TB_DIAG_NOPOS, "\"%.64s\"", type);
	const struct tb_field root = OBJ(NULL, true, ft->body, ft->hook);
	if ((rc = tb_schema_check(&root, body, &opts, d)) != TB_OK)
		return rc;
	tb_diag_clear(d);
	return TB_OK;
}

/* ---- pairing ---- */

int
tb_flow_check_env(const struct tb_env *env, struct tb_diag *d)
{
	const char *type;
	bool answer;

	if (env == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "no envelope");
	type = tb_env_type(env);
	answer = tb_flow_needs_corr(type);
	if (tb_flow_role(type) != TB_FLOW_UNKNOWN && answer && tb_env_corr(env) == NULL)
		return tb_diag_set(d, TB_E_FIELD_MISSING, TB_DIAG_NOPOS,
		                   "corr: required on an answer (%s)", type);
	if (tb_flow_role(type) != TB_FLOW_UNKNOWN && !answer && tb_env_corr(env) != NULL)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                   "corr: only answers carry corr (%s is not one)", type);
	return tb_flow_check_body(type, tb_env_body(env), d);
}

enum tb_flow_role
tb_flow_role(const char *type)
{
	const struct flowtype *ft = find_type(type);
	return ft != NULL ? ft->role : TB_FLOW_UNKNOWN;
}

bool
tb_flow_needs_corr(const char *type)
{
	return tb_flow_role(type) == TB_FLOW_ANSWER;
}

const char *
tb_flow_request_of(const char *answer_type)
{
	const struct flowtype *ft = find_type(answer_type);
	return ft != NULL ? ft->answers : NULL;
}

bool
tb_flow_answers(const char *answer, const char *request)
{
	const struct flowtype *a = find_type(answer), *r = find_type(request);

	if (a == NULL || r == NULL || a->answers == NULL)
		return false;
	if (strcmp(a->type, "receipt") == 0)
		return strcmp(r->type, "receipt") != 0;
	if (strcmp(a->answers, "*") == 0)
		return r->role == TB_FLOW_REQUEST;
	return strcmp(a->answers, r->type) == 0;
}

bool
tb_flow_is_final(const char *answer_type)
{
	const struct flowtype *ft = find_type(answer_type);
	return ft != NULL && ft->role == TB_FLOW_ANSWER && ft->final;
}

/* ---- case lifecycle ---- */

static const char *const state_names[] = {
    [TB_CASE_NONE] = "unknown",
    [TB_CASE_SUBMITTED] = "submitted",
    [TB_CASE_ACCEPTED] = "accepted",
    [TB_CASE_REJECTED] = "rejected",
    [TB_CASE_IN_PROGRESS] = "in-progress",
    [TB_CASE_COMPLETED] = "completed",
};
#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))

const char *
tb_case_state_name(enum tb_case_state s)
{
	return (unsigned)s < NSTATES ? state_names[s] : "unknown";
}

bool
tb_case_state_from_name(const char *name, size_t n, enum tb_case_state *out)
{
	if (name == NULL)
		return false;
	for (size_t i = 0; i < NSTATES; i++)
		if (strlen(state_names[i]) == n && memcmp(state_names[i], name, n) == 0) {
			*out = (enum tb_case_state)i;
			return true;
		}
	return false;
}

/* What each moving type needs and gives.  `from` is a bit set of states. */
#define S(x) (1u << (x))
static const struct {
	const char *type;
	unsigned from;
	enum tb_case_state to;
} moves[] = {
    {"case.submit", S(TB_CASE_NONE), TB_CASE_SUBMITTED},
    {"case.accept", S(TB_CASE_SUBMITTED), TB_CASE_ACCEPTED},
    {"case.reject", S(TB_CASE_SUBMITTED), TB_CASE_REJECTED},
    {"case.update", S(TB_CASE_ACCEPTED) | S(TB_CASE_IN_PROGRESS), TB_CASE_IN_PROGRESS},
    {"case.result", S(TB_CASE_ACCEPTED) | S(TB_CASE_IN_PROGRESS), TB_CASE_COMPLETED},
};

bool
tb_flow_case_moves(const char *type)
{
	for (size_t i = 0; type != NULL && i < sizeof(moves) / sizeof(moves[0]); i++)
		if (strcmp(moves[i].type, type) == 0)
			return true;
	return false;
}

int
tb_flow_case_next(enum tb_case_state cur, const char *type, enum tb_case_state *next,
                  struct tb_diag *d)
{
	if (type == NULL || next == NULL || (unsigned)cur >= NSTATES)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "bad case state or type");
	if (strcmp(type, "case.query") == 0 || strcmp(type, "case.state") == 0) {
		*next = cur;
		return TB_OK;
	}
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
		if (strcmp(moves[i].type, type) != 0)
			continue;
		if (moves[i].from & S(cur)) {
			*next = moves[i].to;
			return TB_OK;
		}
		switch (cur) {
		case TB_CASE_NONE:
			return tb_diag_set(d, TB_E_FLOW_STATE, TB_DIAG_NOPOS,
			                   "%s for a case never submitted", type);
		case TB_CASE_SUBMITTED: /* submit again, or update/result too early */
			return tb_diag_set(d, TB_E_FLOW_STATE, TB_DIAG_NOPOS,
			                   i == 0 ? "%s: case already exists (submitted)"
			                          : "%s before case.accept",
			                   type);
		case TB_CASE_REJECTED:
		case TB_CASE_COMPLETED:
			return tb_diag_set(d, TB_E_FLOW_STATE, TB_DIAG_NOPOS,
			                   "%s after the case was %s", type,
			                   tb_case_state_name(cur));
		default:
			return tb_diag_set(d, TB_E_FLOW_STATE, TB_DIAG_NOPOS,
			                   i == 0 ? "%s: case already exists (%s)"
			                          : "%s: case already %s",
			                   type, tb_case_state_name(cur));
		}
	}
	return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "\"%.64s\" is not a case type", type);
}

const char *
tb_flow_case_id(const struct tb_json *body)
{
	const struct tb_json *v = body != NULL ? tb_json_get(body, "case_id") : NULL;
	size_t n;
	const char *s = v != NULL ? tb_json_string(v, &n) : NULL;

	/* a NUL inside would let C string users see a different id */
	return s != NULL && strlen(s) == n ? s : NULL;
}

/* ---- licences ---- */

/* The digest with the hash of the signing algorithm alg: SM3 for sm2,
 * SHA-256 otherwise (PROTOCOL.md 5.2, 10.5). */
static int
licence_digest(const struct tb_json *licence, enum tb_alg alg, uint8_t out[32])
{
	struct tb_buf b;
	int rc;

	if (licence == NULL || tb_json_kind(licence) != TB_JSON_OBJECT)
		return TB_E_ARG;
	tb_buf_init(&b);
	if ((rc = tb_json_canon(licence, licence_unsigned, &b)) == TB_OK)
		tb_alg_hash(alg, b.data, b.len, out);
	tb_buf_free(&b);
	return rc;
}

/* The algorithm the licence's issuer_sig names (TB_ALG_NONE: none). */
static enum tb_alg
licence_alg(const struct tb_json *licence)
{
	const struct tb_json *sig = tb_json_get(licence, "issuer_sig");
	return tb_alg_from_name(sig ? tb_json_string(tb_json_get(sig, "alg"), NULL) : NULL);
}

int
tb_flow_licence_digest(const struct tb_json *licence, uint8_t out[32])
{
	if (licence == NULL || tb_json_kind(licence) != TB_JSON_OBJECT)
		return TB_E_ARG;
	return licence_digest(licence, licence_alg(licence), out);
}

static void
licence_message(const uint8_t digest[32], uint8_t out[48])
{
	memcpy(out, licence_prefix, 16);
	memcpy(out + 16, digest, 32);
}

static int
set_string(struct tb_json_doc *doc, struct tb_json *obj, const char *k, const char *v)
{
	struct tb_json *s = tb_json_new_string(doc, v, strlen(v));
	return s != NULL && tb_json_set(doc, obj, k, s) == TB_OK ? TB_OK : TB_E_NOMEM;
}

int
tb_flow_licence_sign(struct tb_json_doc *doc, struct tb_json *licence, const struct tb_key *key,
                     struct tb_diag *d)
{
	uint8_t dg[32], msg[48], sig[TB_SIG_LEN], kid[TB_KEYID_LEN];
	char dghex[65], kidhex[65], val[90];
	struct tb_json *s;
	int rc;

	if (doc == NULL || key == NULL || licence == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "no document, licence or key");
	if ((rc = licence_digest(licence, tb_key_alg(key), dg)) != TB_OK)
		return tb_diag_set(d, rc, TB_DIAG_NOPOS, "licence digest");
	licence_message(dg, msg);
	if ((rc = tb_key_sign(key, msg, sizeof(msg), sig)) != TB_OK)
		return tb_diag_set(d, rc, TB_DIAG_NOPOS, "signing failed");
	tb_key_id(key, kid);
	tb_hex_encode(dg, 32, dghex);
	tb_hex_encode(kid, 32, kidhex);
	tb_b64url_encode(sig, TB_SIG_LEN, val);
	if ((s = tb_json_new_object(doc)) == NULL ||
	    set_string(doc, s, "alg", tb_alg_name(tb_key_alg(key))) != TB_OK ||
	    set_string(doc, s, "kid", kidhex) != TB_OK || set_string(doc, s, "val", val) != TB_OK ||
	    set_string(doc, licence, "digest", dghex) != TB_OK ||
	    tb_json_set(doc, licence, "issuer_sig", s) != TB_OK)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	return TB_OK;
}

int
tb_flow_licence_check(const struct tb_json *licence, tb_env_lookup_fn lookup,
                      tb_flow_issuer_fn status, void *ctx, int64_t now, struct tb_diag *d)
{
	static const struct tb_field root = OBJ(NULL, true, f_licence, hook_licence);
	const struct tb_json *sig;
	const struct tb_pub *pub;
	uint8_t dg[32], want[32], kid[TB_KEYID_LEN], sv[TB_SIG_LEN], msg[48];
	int64_t issued, until;
	size_t n, ol;
	const char *s;
	static const struct tb_schema_opts opts = {.root = "licence", .code = TB_E_BODY};
	int rc;

	if (licence == NULL || lookup == NULL || status == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "no licence, key lookup or status");
	if ((rc = tb_schema_check(&root, licence, &opts, d)) != TB_OK)
		return rc;
	if ((rc = tb_flow_licence_digest(licence, dg)) != TB_OK)
		return tb_diag_set(d, rc, TB_DIAG_NOPOS, "licence digest");
	s = tb_json_string(tb_json_get(licence, "digest"), &n);
	if (!tb_hex_decode(s, n, want, sizeof(want)) || !tb_ct_equal(dg, want, 32))
		return tb_diag_set(d, TB_E_LICENCE_DIGEST, TB_DIAG_NOPOS,
		                   "digest does not match the licence's content");
	sig = tb_json_get(licence, "issuer_sig");
	s = tb_json_string(tb_json_get(sig, "kid"), &n);
	if (!tb_hex_decode(s, n, kid, sizeof(kid)))
		return tb_diag_set(d, TB_E_BODY, TB_DIAG_NOPOS, "issuer_sig.kid: not a key id");
	s = tb_json_string(tb_json_get(sig, "val"), &n);
	if (!tb_b64url_decode(s, n, sv, sizeof(sv), &ol) || ol != sizeof(sv))
		return tb_diag_set(d, TB_E_BODY, TB_DIAG_NOPOS, "issuer_sig.val: not a signature");
	s = tb_json_string(tb_json_get(licence, "issuer"), &n);
	if ((pub = lookup(ctx, s, kid)) == NULL)
		return tb_diag_set(d, TB_E_SIG_KEYID, TB_DIAG_NOPOS,
		                   "issuer_sig.kid is not a key of issuer %s", s);
	s = tb_json_string(tb_json_get(sig, "alg"), &n);
	if (tb_pub_alg(pub) != tb_alg_from_name(s))
		return tb_diag_set(d, TB_E_SIG_ALG, TB_DIAG_NOPOS,
		                   "issuer_sig.alg \"%s\" is not the key's algorithm", s);
	licence_message(dg, msg);
	if (!tb_pub_verify(pub, msg, sizeof(msg), sv))
		return tb_diag_set(d, TB_E_SIG_BAD, TB_DIAG_NOPOS, "issuer_sig does not verify");
	s = tb_json_string(tb_json_get(licence, "issuer"), &n);
	if ((rc = status(ctx, s)) != TB_OK)
		return tb_diag_set(d, rc, TB_DIAG_NOPOS, "issuer %s is %s in the registry", s,
		                   rc == TB_E_LICENCE_ISSUER_REVOKED ? "revoked" : "suspended");
	if (!tb_json_integer(tb_json_get(licence, "issued"), &issued) ||
	    !tb_json_integer(tb_json_get(licence, "valid_until"), &until))
		return tb_diag_set(d, TB_E_BODY, TB_DIAG_NOPOS, "issued and valid_until: integers");
	if (str_is(tb_json_get(licence, "status"), "revoked"))
		return tb_diag_set(d, TB_E_LICENCE_REVOKED, TB_DIAG_NOPOS,
		                   "the issuer marks the licence revoked");
	if (str_is(tb_json_get(licence, "status"), "expired"))
		return tb_diag_set(d, TB_E_LICENCE_EXPIRED, TB_DIAG_NOPOS,
		                   "the issuer marks the licence expired");
	if (now >= until)
		return tb_diag_set(d, TB_E_LICENCE_EXPIRED, TB_DIAG_NOPOS,
		                   "valid until %lld, now %lld", (long long)until, (long long)now);
	if (now < issued)
		return tb_diag_set(d, TB_E_LICENCE_NOT_YET_VALID, TB_DIAG_NOPOS,
		                   "issued %lld, now %lld", (long long)issued, (long long)now);
	tb_diag_clear(d);
	return TB_OK;
}
