/* SPDX-License-Identifier: Apache-2.0 */
/* tb_reg.c - registry model: parse, validate, verify, serialize, edit. */
#include "tb_reg.h"

#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#include "../protocol/tb_env.h"
#include "../protocol/tb_json.h"
#include "../protocol/tb_schema.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "tb_reg_internal.h"
#include "tb_trust.h"

/* ---- names ---- */

const char *
tb_reg_role_name(enum tb_reg_role r)
{
	return r == TB_ROLE_CITY ? "city" : r == TB_ROLE_HUB ? "hub" : "?";
}

enum tb_reg_role
tb_reg_role_from_name(const char *s)
{
	if (strcmp(s, "city") == 0)
		return TB_ROLE_CITY;
	if (strcmp(s, "hub") == 0)
		return TB_ROLE_HUB;
	return 0;
}

const char *
tb_reg_status_name(enum tb_reg_status s)
{
	switch (s) {
	case TB_STATUS_ACTIVE: return "active";
	case TB_STATUS_SUSPENDED: return "suspended";
	case TB_STATUS_REVOKED: return "revoked";
	}
	return "?";
}

enum tb_reg_status
tb_reg_status_from_name(const char *s)
{
	if (strcmp(s, "active") == 0)
		return TB_STATUS_ACTIVE;
	if (strcmp(s, "suspended") == 0)
		return TB_STATUS_SUSPENDED;
	if (strcmp(s, "revoked") == 0)
		return TB_STATUS_REVOKED;
	return 0;
}

const char *
tb_key_use_name(enum tb_key_use u)
{
	return u == TB_USE_TLS    ? "tls"
	       : u == TB_USE_SIGN ? "sign"
	       : u == TB_USE_BOTH ? "both"
	                          : "?";
}

enum tb_key_use
tb_key_use_from_name(const char *s)
{
	if (strcmp(s, "tls") == 0)
		return TB_USE_TLS;
	if (strcmp(s, "sign") == 0)
		return TB_USE_SIGN;
	if (strcmp(s, "both") == 0)
		return TB_USE_BOTH;
	return 0;
}

/* ---- memory ---- */

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

static void
strv_free(struct strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

static int
strv_copy(struct strv *dst, const char *const *src, size_t n)
{
	dst->n = 0;
	dst->v = NULL;
	if (n == 0)
		return TB_OK;
	if ((dst->v = calloc(n, sizeof(char *))) == NULL)
		return TB_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((dst->v[i] = dupn(src[i], strlen(src[i]))) == NULL) {
			dst->n = i;
			strv_free(dst);
			return TB_E_NOMEM;
		}
	}
	dst->n = n;
	return TB_OK;
}

static void
member_free(struct reg_member *m)
{
	free(m->name);
	free(m->parent);
	strv_free(&m->endpoints);
	for (size_t i = 0; i < m->nkeys; i++)
		free(m->keys[i].spki);
	free(m->keys);
	for (size_t i = 0; i < m->nservices; i++) {
		free(m->services[i].code);
		strv_free(&m->services[i].regions);
	}
	free(m->services);
	memset(m, 0, sizeof(*m));
}

static void
rule_free(struct reg_rule *r)
{
	strv_free(&r->services);
	strv_free(&r->ids);
	strv_free(&r->roles);
	strv_free(&r->regions);
}

void
tb_reg_free(struct tb_reg *reg)
{
	if (reg == NULL)
		return;
	free(reg->federation);
	for (size_t i = 0; i < reg->nmembers; i++)
		member_free(&reg->members[i]);
	free(reg->members);
	free(reg->revoked);
	free(reg->revoked_sorted);
	for (size_t i = 0; i < reg->nrules; i++)
		rule_free(&reg->rules[i]);
	free(reg->rules);
	free(reg->sigs);
	free(reg->by_id);
	free(reg->by_kid);
	tb_buf_free(&reg->received);
	free(reg);
}

/* ---- value checks shared by parse and edit ---- */

static bool
text_ok(const char *s, size_t n)
{
	/* C0 controls and NUL have no place in names or URIs */
	return n > 0 && tb_schema_text_ok(s, n);
}

static bool
endpoint_ok(const char *s, size_t n)
{
	const char *sep;

	if (n == 0 || !text_ok(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] > 0x7e || s[i] == ' ')
			return false;
	/* an absolute URI: scheme "://" authority, the scheme as RFC 3986
	 * 3.1 has it: a letter, then letters, digits, '+', '-' or '.' */
	sep = strstr(s, "://");
	if (sep == NULL || sep == s || sep[3] == '\0' || !isalpha((unsigned char)s[0]))
		return false;
	for (const char *p = s; p < sep; p++)
		if (!(isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.'))
			return false;
	return true;
}

static uint32_t
idnum(const char *id)
{
	return (uint32_t)strtoul(id, NULL, 10);
}

/* ---- indexes ---- */

static int
cmp_id(const void *a, const void *b, void *ctx)
{
	const struct tb_reg *reg = ctx;
	uint32_t x = reg->members[*(const uint32_t *)a].idnum;
	uint32_t y = reg->members[*(const uint32_t *)b].idnum;
	return x < y ? -1 : x > y;
}

static int
cmp_kid(const void *a, const void *b)
{
	return memcmp(a, b, TB_KEYID_LEN);
}

static int
build_index(struct tb_reg *reg, struct tb_diag *d)
{
	size_t nk = 0, j = 0;

	free(reg->by_id);
	free(reg->by_kid);
	free(reg->revoked_sorted);
	reg->by_id = NULL;
	reg->by_kid = NULL;
	reg->revoked_sorted = NULL;
	reg->nkids = 0;
	if ((reg->by_id = malloc((reg->nmembers + 1) * sizeof(uint32_t))) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	for (size_t i = 0; i < reg->nmembers; i++) {
		reg->by_id[i] = (uint32_t)i;
		nk += reg->members[i].nkeys;
	}
	qsort_r(reg->by_id, reg->nmembers, sizeof(uint32_t), cmp_id, reg);
	for (size_t i = 1; i < reg->nmembers; i++)
		if (reg->members[reg->by_id[i]].idnum == reg->members[reg->by_id[i - 1]].idnum)
			return tb_diag_set(d, TB_E_REG_DUP_MEMBER, TB_DIAG_NOPOS, "member %s",
			                   reg->members[reg->by_id[i]].id);
	if ((reg->by_kid = malloc((nk + 1) * sizeof(struct kid_ent))) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	for (size_t i = 0; i < reg->nmembers; i++)
		for (size_t k = 0; k < reg->members[i].nkeys; k++, j++) {
			memcpy(reg->by_kid[j].kid, reg->members[i].keys[k].kid, TB_KEYID_LEN);
			reg->by_kid[j].m = (uint32_t)i;
			reg->by_kid[j].k = (uint32_t)k;
		}
	reg->nkids = nk;
	qsort(reg->by_kid, nk, sizeof(struct kid_ent), cmp_kid);
	for (size_t i = 1; i < nk; i++)
		if (memcmp(reg->by_kid[i].kid, reg->by_kid[i - 1].kid, TB_KEYID_LEN) == 0) {
			char hex[2 * TB_KEYID_LEN + 1];
			tb_hex_encode(reg->by_kid[i].kid, TB_KEYID_LEN, hex);
			return tb_diag_set(d, TB_E_REG_DUP_KEY, TB_DIAG_NOPOS, "key %.16s... of %s",
			                   hex, reg->members[reg->by_kid[i].m].id);
		}
	if ((reg->revoked_sorted = malloc((reg->nrevoked + 1) * TB_KEYID_LEN)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	if (reg->nrevoked > 0)
		memcpy(reg->revoked_sorted, reg->revoked, reg->nrevoked * TB_KEYID_LEN);
	qsort(reg->revoked_sorted, reg->nrevoked, TB_KEYID_LEN, cmp_kid);
	for (size_t i = 1; i < reg->nrevoked; i++)
		if (memcmp(reg->revoked_sorted[i], reg->revoked_sorted[i - 1], TB_KEYID_LEN) == 0)
			return tb_diag_set(d, TB_E_REG_DUP_KEY, TB_DIAG_NOPOS,
			                   "revoked_keys lists a key id twice");
	return TB_OK;
}

size_t
tb_reg_find_member(const struct tb_reg *reg, const char *id)
{
	size_t lo = 0, hi = reg->nmembers;
	uint32_t x;

	if (id == NULL || !tb_member_id_valid(id, strlen(id)))
		return TB_REG_NONE;
	x = idnum(id);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t y = reg->members[reg->by_id[mid]].idnum;
		if (y == x)
			return reg->by_id[mid];
		if (y < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return TB_REG_NONE;
}

int
tb_reg_find_key(const struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN], size_t *m, size_t *k)
{
	const struct kid_ent *e = bsearch(kid, reg->by_kid, reg->nkids, sizeof(*e), cmp_kid);

	if (e == NULL)
		return TB_E_SIG_KEYID;
	*m = e->m;
	*k = e->k;
	return TB_OK;
}

bool
tb_reg_key_revoked(const struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN])
{
	return bsearch(kid, reg->revoked_sorted, reg->nrevoked, TB_KEYID_LEN, cmp_kid) != NULL;
}

/* Parent references: a parent is another member whose role is hub; hubs
 * have no parent; a member without endpoints needs a parent. */
static int
check_refs(const struct tb_reg *reg, struct tb_diag *d)
{
	for (size_t i = 0; i < reg->nmembers; i++) {
		const struct reg_member *m = &reg->members[i];
		size_t p;

		if (m->parent == NULL) {
			if (m->endpoints.n == 0)
				return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
				                   "member %s has neither endpoints nor a parent",
				                   m->id);
			continue;
		}
		if (m->role == TB_ROLE_HUB)
			return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
			                   "hub %s must not have a parent", m->id);
		p = tb_reg_find_member(reg, m->parent);
		if (p == TB_REG_NONE || reg->members[p].role != TB_ROLE_HUB)
			return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
			                   "parent %s of member %s is not a hub in the registry",
			                   m->parent, m->id);
	}
	return TB_OK;
}

/* ---- parsing: the schema (docs/PROTOCOL.md 7.1), then the model ---- */

typedef bool (*str_pred)(const char *s, size_t n);

static bool
service_or_any(const char *s, size_t n)
{
	return (n == 1 && s[0] == '*') || tb_service_code_valid(s, n);
}

static bool
role_pred(const char *s, size_t n)
{
	return tb_schema_name_is(s, n, "city") || tb_schema_name_is(s, n, "hub");
}

static bool
region_pred(const char *s, size_t n)
{
	return tb_region_code_valid(s, n);
}

static bool
member_pred(const char *s, size_t n)
{
	return tb_member_id_valid(s, n);
}

static const char *const roles[] = {"city", "hub", NULL};
static const char *const statuses[] = {"active", "suspended", "revoked", NULL};
static const char *const uses[] = {"tls", "sign", "both", NULL};
static const char *const effects[] = {"allow", "deny", NULL};
static const char *const algs[] = {"ed25519", "p256", "sm2", NULL};

static int hook_member(struct tb_schema_ck *c, const struct tb_json *v);
static int hook_rule(struct tb_schema_ck *c, const struct tb_json *v);
static int hook_from(struct tb_schema_ck *c, const struct tb_json *v);
static int hook_registry(struct tb_schema_ck *c, const struct tb_json *v);

static const struct tb_field s_kid_el[] = {TB_F_HEX(NULL, true, 64)};
static const struct tb_field s_region_el[] = {TB_F(NULL, TB_ST_REGION, true)};
static const struct tb_field s_member_el[] = {TB_F(NULL, TB_ST_MEMBER, true)};
static const struct tb_field s_role_el[] = {TB_F_ENUM(NULL, true, roles)};
static const struct tb_field s_endpoint_el[] = {
    TB_F_STR(NULL, true, TB_REG_MAX_STRING, endpoint_ok, "an absolute URI")};
static const struct tb_field s_svc_or_any_el[] = {
    TB_F_STR(NULL, true, TB_REG_MAX_STRING, service_or_any, "a service code (or \"*\" alone)")};
static const struct tb_field s_key[] = {TB_F_HEX("kid", true, 64),
                                        TB_F_B64("spki", true, 1, TB_REG_MAX_SPKI),
                                        TB_F_ENUM("use", true, uses), TB_F_END};
static const struct tb_field s_key_el[] = {TB_F_OBJ(NULL, true, s_key, NULL)};
static const struct tb_field s_service[] = {
    TB_F("code", TB_ST_CODE, true),
    TB_F_ARR("regions", true, 1, TB_REG_MAX_REGIONS, s_region_el, false), TB_F_END};
static const struct tb_field s_service_el[] = {TB_F_OBJ(NULL, true, s_service, NULL)};
static const struct tb_field s_member[] = {
    TB_F("id", TB_ST_MEMBER, true),
    TB_F_TEXT("name", true, 1, TB_REG_MAX_STRING),
    TB_F_ENUM("role", true, roles),
    TB_F("parent", TB_ST_MEMBER, false),
    TB_F_ARR("endpoints", true, 0, TB_REG_MAX_ENDPOINTS, s_endpoint_el, false),
    TB_F_ARR("keys", true, 1, TB_REG_MAX_KEYS, s_key_el, false),
    TB_F_ARR("services", true, 0, TB_REG_MAX_SERVICES, s_service_el, false),
    TB_F_ENUM("status", true, statuses),
    TB_F_END};
static const struct tb_field s_members_el[] = {TB_F_OBJ(NULL, true, s_member, hook_member)};
static const struct tb_field s_from[] = {
    TB_F_ARR("ids", false, 1, TB_REG_MAX_RULE_ITEMS, s_member_el, false),
    TB_F_ARR("roles", false, 1, 2, s_role_el, false),
    TB_F_ARR("regions", false, 1, TB_REG_MAX_RULE_ITEMS, s_region_el, false), TB_F_END};
static const struct tb_field s_rule[] = {
    TB_F_ENUM("effect", true, effects),
    TB_F_ARR("services", true, 1, TB_REG_MAX_RULE_ITEMS, s_svc_or_any_el, false),
    TB_F_OBJ("from", false, s_from, hook_from), TB_F_END};
static const struct tb_field s_rule_el[] = {TB_F_OBJ(NULL, true, s_rule, hook_rule)};
static const struct tb_field s_policy[] = {
    TB_F_ENUM("default", true, effects),
    TB_F_ARR("rules", true, 0, TB_REG_MAX_RULES, s_rule_el, false), TB_F_END};
static const struct tb_field s_sig[] = {
    TB_F_HEX("kid", true, 64),
    {.name = "alg", .t = TB_ST_ENUM, .req = true, .one_of = algs, .code = TB_E_SIG_ALG},
    TB_F_B64("val", true, TB_SIG_LEN, TB_SIG_LEN), TB_F_END};
static const struct tb_field s_sig_el[] = {TB_F_OBJ(NULL, true, s_sig, NULL)};
static const struct tb_field s_registry[] = {
    {.name = "v", .t = TB_ST_INT, .req = true, .min = 1, .max = 1, .code = TB_E_VERSION},
    TB_F("federation", TB_ST_CODE, true),
    TB_F_INT("serial", true, 1, TB_REG_MAX_INT),
    TB_F_INT("issued", true, 0, TB_REG_MAX_INT),
    TB_F_INT("valid_until", true, 0, TB_REG_MAX_INT),
    TB_F_ARR("members", true, 0, TB_REG_MAX_MEMBERS, s_members_el, false),
    TB_F_ARR("revoked_keys", true, 0, TB_REG_MAX_REVOKED, s_kid_el, false),
    TB_F_OBJ("policy", true, s_policy, NULL),
    TB_F_ARR("sigs", true, 0, TB_REG_MAX_SIGS, s_sig_el, false), /* [] when unsigned */
    TB_F_END};
static const struct tb_field s_registry_root = TB_F_OBJ(NULL, true, s_registry, hook_registry);

static bool
str_is(const struct tb_json *v, const char *lit)
{
	size_t n;
	const char *s = v != NULL ? tb_json_string(v, &n) : NULL;
	return s != NULL && tb_schema_name_is(s, n, lit);
}

static bool
same_str(const struct tb_json *a, const struct tb_json *b)
{
	size_t an, bn;
	const char *as = tb_json_string(a, &an), *bs = tb_json_string(b, &bn);
	return as != NULL && bs != NULL && an == bn && memcmp(as, bs, an) == 0;
}

static int
hook_member(struct tb_schema_ck *c, const struct tb_json *v)
{
	const struct tb_json *svcs = tb_json_get(v, "services"), *parent = tb_json_get(v, "parent");
	size_t i = 0;

	if (parent != NULL && same_str(parent, tb_json_get(v, "id"))) {
		tb_schema_push(c, "parent");
		return tb_schema_fail(c, 0, "must be another member's id");
	}
	for (const struct tb_json *s = tb_json_first(svcs); s != NULL; s = tb_json_next(s), i++)
		for (const struct tb_json *o = tb_json_first(svcs); o != s; o = tb_json_next(o))
			if (same_str(tb_json_get(o, "code"), tb_json_get(s, "code"))) {
				char ix[40];
				snprintf(ix, sizeof(ix), "services[%zu].code", i);
				tb_schema_push(c, ix);
				return tb_schema_fail(c, 0, "listed twice");
			}
	return TB_OK;
}

static int
hook_rule(struct tb_schema_ck *c, const struct tb_json *v)
{
	const struct tb_json *svcs = tb_json_get(v, "services");

	for (const struct tb_json *s = tb_json_first(svcs); s != NULL; s = tb_json_next(s))
		if (str_is(s, "*") && tb_json_count(svcs) != 1) {
			tb_schema_push(c, "services");
			return tb_schema_fail(c, 0, "\"*\" must stand alone");
		}
	return TB_OK;
}

static int
hook_from(struct tb_schema_ck *c, const struct tb_json *v)
{
	if (tb_json_count(v) > 0)
		return TB_OK;
	return tb_schema_fail(c, 0, "needs ids, roles or regions (omit it to match anyone)");
}

static int
hook_registry(struct tb_schema_ck *c, const struct tb_json *v)
{
	int64_t issued = 0, until = 0;

	if (!tb_json_integer(tb_json_get(v, "issued"), &issued) ||
	    !tb_json_integer(tb_json_get(v, "valid_until"), &until) || until > issued)
		return TB_OK;
	tb_schema_push(c, "valid_until");
	return tb_schema_fail(c, 0, "must be after issued");
}

/* Copies the strings of a checked array into out. */
static int
strv_take(const struct tb_json *arr, struct strv *out)
{
	out->n = 0;
	if ((out->v = calloc(tb_json_count(arr) + 1, sizeof(char *))) == NULL)
		return TB_E_NOMEM;
	for (const struct tb_json *v = tb_json_first(arr); v != NULL; v = tb_json_next(v)) {
		size_t n;
		const char *s = tb_json_string(v, &n);
		if ((out->v[out->n] = dupn(s, n)) == NULL)
			return TB_E_NOMEM;
		out->n++;
	}
	return TB_OK;
}

/* The model of a checked key, service list or member: nothing here can
 * fail but memory. */
static int
take_key(const struct tb_json *o, struct reg_key *k)
{
	size_t n;
	const char *s = tb_json_string(tb_json_get(o, "kid"), &n);

	if (!tb_hex_decode(s, n, k->kid, TB_KEYID_LEN))
		return TB_E_FIELD_VALUE; /* the schema let a bad one through: a bug */
	s = tb_json_string(tb_json_get(o, "spki"), &n);
	if ((k->spki = malloc(n + 1)) == NULL)
		return TB_E_NOMEM;
	if (!tb_b64url_decode(s, n, k->spki, n, &k->spki_len))
		return TB_E_FIELD_VALUE;
	k->use = tb_key_use_from_name(tb_json_string(tb_json_get(o, "use"), NULL));
	return TB_OK;
}

static int
take_services(const struct tb_json *svcs, struct reg_member *m)
{
	size_t i = 0, n;
	int rc;

	if ((m->services = calloc(tb_json_count(svcs) + 1, sizeof(*m->services))) == NULL)
		return TB_E_NOMEM;
	for (const struct tb_json *v = tb_json_first(svcs); v != NULL; v = tb_json_next(v), i++) {
		const char *s = tb_json_string(tb_json_get(v, "code"), &n);
		m->nservices = i + 1;
		if ((m->services[i].code = dupn(s, n)) == NULL)
			return TB_E_NOMEM;
		if ((rc = strv_take(tb_json_get(v, "regions"), &m->services[i].regions)) != TB_OK)
			return rc;
	}
	return TB_OK;
}

static int
take_member(const struct tb_json *o, struct reg_member *m)
{
	const struct tb_json *keys = tb_json_get(o, "keys"), *parent = tb_json_get(o, "parent");
	const char *s;
	size_t n, i = 0;
	int rc;

	s = tb_json_string(tb_json_get(o, "id"), &n);
	memcpy(m->id, s, n + 1);
	m->idnum = idnum(m->id);
	s = tb_json_string(tb_json_get(o, "name"), &n);
	if ((m->name = dupn(s, n)) == NULL)
		return TB_E_NOMEM;
	m->role = tb_reg_role_from_name(tb_json_string(tb_json_get(o, "role"), NULL));
	m->status = tb_reg_status_from_name(tb_json_string(tb_json_get(o, "status"), NULL));
	if (parent != NULL) {
		s = tb_json_string(parent, &n);
		if ((m->parent = dupn(s, n)) == NULL)
			return TB_E_NOMEM;
	}
	if ((rc = strv_take(tb_json_get(o, "endpoints"), &m->endpoints)) != TB_OK)
		return rc;
	if ((m->keys = calloc(tb_json_count(keys), sizeof(*m->keys))) == NULL)
		return TB_E_NOMEM;
	for (const struct tb_json *k = tb_json_first(keys); k != NULL; k = tb_json_next(k), i++) {
		m->nkeys = i + 1;
		if ((rc = take_key(k, &m->keys[i])) != TB_OK)
			return rc;
	}
	return take_services(tb_json_get(o, "services"), m);
}

static int
take_rule(const struct tb_json *o, struct reg_rule *r)
{
	const struct tb_json *from = tb_json_get(o, "from"), *l;
	int rc;

	r->allow = str_is(tb_json_get(o, "effect"), "allow");
	if ((rc = strv_take(tb_json_get(o, "services"), &r->services)) != TB_OK)
		return rc;
	if (from == NULL)
		return TB_OK;
	r->has_from = true;
	if ((l = tb_json_get(from, "ids")) != NULL && (rc = strv_take(l, &r->ids)) != TB_OK)
		return rc;
	if ((l = tb_json_get(from, "roles")) != NULL && (rc = strv_take(l, &r->roles)) != TB_OK)
		return rc;
	if ((l = tb_json_get(from, "regions")) != NULL && (rc = strv_take(l, &r->regions)) != TB_OK)
		return rc;
	return TB_OK;
}

static int
take_sig(const struct tb_json *o, struct reg_sig *sg)
{
	size_t n, got;
	const char *s = tb_json_string(tb_json_get(o, "kid"), &n);

	if (!tb_hex_decode(s, n, sg->kid, TB_KEYID_LEN))
		return TB_E_FIELD_VALUE;
	sg->alg = tb_alg_from_name(tb_json_string(tb_json_get(o, "alg"), NULL));
	s = tb_json_string(tb_json_get(o, "val"), &n);
	if (!tb_b64url_decode(s, n, sg->val, TB_SIG_LEN, &got) || got != TB_SIG_LEN)
		return TB_E_FIELD_VALUE;
	return TB_OK;
}

/* Hostile input first: no string anywhere may exceed what any field
 * allows (names and endpoints 1 KiB, an SPKI's base64url 1366 bytes). */
static int
check_strings(const struct tb_json *v, struct tb_diag *d)
{
	size_t n;
	int rc;

	switch (tb_json_kind(v)) {
	case TB_JSON_STRING:
		tb_json_string(v, &n);
		if (n > 2 * TB_REG_MAX_STRING)
			return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS,
			                   "a string of %zu bytes (at most %d)", n,
			                   2 * TB_REG_MAX_STRING);
		return TB_OK;
	case TB_JSON_ARRAY:
	case TB_JSON_OBJECT:
		for (const struct tb_json *c = tb_json_first(v); c != NULL; c = tb_json_next(c)) {
			if (tb_json_kind(v) == TB_JSON_OBJECT) {
				tb_json_key(c, &n);
				if (n > TB_REG_MAX_STRING)
					return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS,
					                   "a member name of %zu bytes", n);
			}
			if ((rc = check_strings(c, d)) != TB_OK)
				return rc;
		}
		return TB_OK;
	default: return TB_OK;
	}
}

/* The model of a registry that passed the schema. */
static int
take_doc(struct tb_reg *reg, const struct tb_json *root)
{
	const struct tb_json *members = tb_json_get(root, "members"),
	                     *revoked = tb_json_get(root, "revoked_keys"),
	                     *policy = tb_json_get(root, "policy"), *rules, *sigs;
	const char *s;
	size_t n, i;
	int64_t x;
	int rc;

	s = tb_json_string(tb_json_get(root, "federation"), &n);
	if ((reg->federation = dupn(s, n)) == NULL)
		return TB_E_NOMEM;
	/* checked by the schema; not integers here would be a bug */
	if (!tb_json_integer(tb_json_get(root, "serial"), &x) ||
	    !tb_json_integer(tb_json_get(root, "issued"), &reg->issued) ||
	    !tb_json_integer(tb_json_get(root, "valid_until"), &reg->valid_until))
		return TB_E_FIELD_TYPE;
	reg->serial = (uint64_t)x;

	n = tb_json_count(members);
	if ((reg->members = calloc(n + 1, sizeof(*reg->members))) == NULL)
		return TB_E_NOMEM;
	reg->capmembers = n + 1;
	i = 0;
	for (const struct tb_json *m = tb_json_first(members); m; m = tb_json_next(m), i++) {
		reg->nmembers = i + 1;
		if ((rc = take_member(m, &reg->members[i])) != TB_OK)
			return rc;
	}
	if ((reg->revoked = malloc((tb_json_count(revoked) + 1) * TB_KEYID_LEN)) == NULL)
		return TB_E_NOMEM;
	for (const struct tb_json *k = tb_json_first(revoked); k != NULL; k = tb_json_next(k)) {
		s = tb_json_string(k, &n);
		if (!tb_hex_decode(s, n, reg->revoked[reg->nrevoked], TB_KEYID_LEN))
			return TB_E_FIELD_VALUE;
		reg->nrevoked++;
	}
	reg->policy_allow = str_is(tb_json_get(policy, "default"), "allow");
	rules = tb_json_get(policy, "rules");
	if ((reg->rules = calloc(tb_json_count(rules) + 1, sizeof(*reg->rules))) == NULL)
		return TB_E_NOMEM;
	i = 0;
	for (const struct tb_json *r = tb_json_first(rules); r; r = tb_json_next(r), i++) {
		reg->nrules = i + 1;
		if ((rc = take_rule(r, &reg->rules[i])) != TB_OK)
			return rc;
	}
	if ((reg->sigs = calloc(TB_REG_MAX_SIGS, sizeof(*reg->sigs))) == NULL)
		return TB_E_NOMEM;
	sigs = tb_json_get(root, "sigs");
	for (const struct tb_json *g = tb_json_first(sigs); g != NULL; g = tb_json_next(g)) {
		if ((rc = take_sig(g, &reg->sigs[reg->nsigs])) != TB_OK)
			return rc;
		reg->nsigs++;
	}
	return TB_OK;
}

static int
parse_doc(struct tb_reg *reg, const struct tb_json *root, struct tb_diag *d)
{
	static const struct tb_schema_opts opts = {.root = "", .limit_code = TB_E_REG_LIMIT};
	int rc;

	if (tb_json_kind(root) != TB_JSON_OBJECT)
		return tb_diag_set(d, TB_E_FIELD_TYPE, TB_DIAG_NOPOS, "registry must be an object");
	if ((rc = check_strings(root, d)) != TB_OK || (rc = tb_schema_version(root, 1, d)) != TB_OK ||
	    (rc = tb_schema_check(&s_registry_root, root, &opts, d)) != TB_OK)
		return rc;
	if ((rc = take_doc(reg, root)) != TB_OK)
		return tb_diag_set(d, rc, TB_DIAG_NOPOS, "registry model");
	if ((rc = build_index(reg, d)) != TB_OK)
		return rc;
	return check_refs(reg, d);
}

static int build(const struct tb_reg *reg, bool with_sigs, struct tb_buf *out);
static const char *const sigs_omitted[] = {"sigs", NULL};

/*
 * Signed bytes are the only truth: the signing input is the canonical form
 * of the document as received, and a document the model does not
 * reproduce exactly (content the schema let through but the model drops)
 * is refused, so what verifies is what is stored, served and relayed.
 */
static int
same_as_received(const struct tb_reg *reg, struct tb_diag *d)
{
	struct tb_buf model;
	int rc;

	tb_buf_init(&model);
	if ((rc = build(reg, false, &model)) != TB_OK) {
		rc = tb_diag_set(d, rc, TB_DIAG_NOPOS, "registry canonical form");
		goto out;
	}
	if (model.len != reg->received.len || memcmp(model.data, reg->received.data, model.len))
		rc = tb_diag_set(d, TB_E_LOSSY, TB_DIAG_NOPOS,
		                 "registry holds content its model does not reproduce");
out:
	tb_buf_free(&model);
	return rc;
}

struct tb_reg *
tb_reg_parse(const uint8_t *text, size_t len, struct tb_diag *d)
{
	static const struct tb_json_limits lim = {TB_REG_MAX_SIZE, TB_REG_MAX_DEPTH};
	struct tb_json_doc *doc;
	struct tb_reg *reg;

	tb_diag_clear(d);
	if (len > TB_REG_MAX_SIZE) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "registry is %zu bytes, more than %u",
		            len, TB_REG_MAX_SIZE);
		return NULL;
	}
	if ((doc = tb_json_parse(text, len, &lim, d)) == NULL)
		return NULL;
	if ((reg = calloc(1, sizeof(*reg))) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		goto fail;
	}
	tb_buf_init(&reg->received);
	if (parse_doc(reg, tb_json_root(doc), d) != TB_OK)
		goto fail;
	if (tb_json_canon(tb_json_root(doc), sigs_omitted, &reg->received) != TB_OK) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "registry canonical form");
		goto fail;
	}
	/* the parsed tree is freed first, so that building the model's form
	 * reuses its memory instead of growing the heap: for 10,000 members
	 * (tongban-bench registry) 107 ms in all instead of 235 */
	tb_json_doc_free(doc);
	doc = NULL;
	if (same_as_received(reg, d) != TB_OK)
		goto fail;
	return reg;
fail:
	tb_reg_free(reg);
	tb_json_doc_free(doc);
	return NULL;
}

struct tb_reg *
tb_reg_new(const char *federation, int64_t issued, int64_t valid_until, struct tb_diag *d)
{
	struct tb_reg *reg;

	tb_diag_clear(d);
	if (federation == NULL || !tb_service_code_valid(federation, strlen(federation))) {
		tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		            "federation name must be 1-64 of a-z 0-9 . -");
		return NULL;
	}
	if (issued < 0 || valid_until <= issued || valid_until > TB_REG_MAX_INT) {
		tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		            "valid_until must be after issued (and below 2^53)");
		return NULL;
	}
	if ((reg = calloc(1, sizeof(*reg))) == NULL ||
	    (reg->federation = dupn(federation, strlen(federation))) == NULL ||
	    (reg->sigs = calloc(TB_REG_MAX_SIGS, sizeof(*reg->sigs))) == NULL ||
	    build_index(reg, d) != TB_OK) {
		tb_reg_free(reg);
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	reg->serial = 1;
	reg->issued = issued;
	reg->valid_until = valid_until;
	reg->edited = true; /* a new registry starts at serial 1 */
	return reg;
}

/* ---- serialization ---- */

struct bld {
	struct tb_json_doc *doc;
	int rc;
};

static struct tb_json *
js(struct bld *b, const char *s)
{
	struct tb_json *v = tb_json_new_string(b->doc, s, strlen(s));
	if (v == NULL)
		b->rc = TB_E_NOMEM;
	return v;
}

static struct tb_json *
jnum(struct bld *b, double x)
{
	struct tb_json *v = tb_json_new_number(b->doc, x);
	if (v == NULL)
		b->rc = TB_E_NOMEM;
	return v;
}

static struct tb_json *
jo(struct bld *b)
{
	struct tb_json *v = tb_json_new_object(b->doc);
	if (v == NULL)
		b->rc = TB_E_NOMEM;
	return v;
}

static struct tb_json *
ja(struct bld *b)
{
	struct tb_json *v = tb_json_new_array(b->doc);
	if (v == NULL)
		b->rc = TB_E_NOMEM;
	return v;
}

static void
set(struct bld *b, struct tb_json *o, const char *k, struct tb_json *v)
{
	if (b->rc != TB_OK || o == NULL || v == NULL || tb_json_set(b->doc, o, k, v) != TB_OK)
		b->rc = TB_E_NOMEM;
}

static void
app(struct bld *b, struct tb_json *a, struct tb_json *v)
{
	if (b->rc != TB_OK || a == NULL || v == NULL || tb_json_append(a, v) != TB_OK)
		b->rc = TB_E_NOMEM;
}

static struct tb_json *
jstrv(struct bld *b, const struct strv *v)
{
	struct tb_json *a = ja(b);
	for (size_t i = 0; i < v->n && b->rc == TB_OK; i++)
		app(b, a, js(b, v->v[i]));
	return a;
}

static struct tb_json *
jhex(struct bld *b, const uint8_t *p, size_t n)
{
	char hex[2 * TB_KEYID_LEN + 1];
	tb_hex_encode(p, n, hex);
	return js(b, hex);
}

static struct tb_json *
jb64(struct bld *b, const uint8_t *p, size_t n)
{
	char *t = malloc(tb_b64url_len(n) + 1);
	struct tb_json *v;
	if (t == NULL) {
		b->rc = TB_E_NOMEM;
		return NULL;
	}
	tb_b64url_encode(p, n, t);
	v = js(b, t);
	free(t);
	return v;
}

static struct tb_json *
build_member(struct bld *b, const struct reg_member *m)
{
	struct tb_json *o = jo(b), *keys = ja(b), *svcs = ja(b);

	set(b, o, "id", js(b, m->id));
	set(b, o, "name", js(b, m->name));
	set(b, o, "role", js(b, tb_reg_role_name(m->role)));
	if (m->parent != NULL)
		set(b, o, "parent", js(b, m->parent));
	set(b, o, "endpoints", jstrv(b, &m->endpoints));
	for (size_t k = 0; k < m->nkeys && b->rc == TB_OK; k++) {
		struct tb_json *ko = jo(b);
		set(b, ko, "kid", jhex(b, m->keys[k].kid, TB_KEYID_LEN));
		set(b, ko, "spki", jb64(b, m->keys[k].spki, m->keys[k].spki_len));
		set(b, ko, "use", js(b, tb_key_use_name(m->keys[k].use)));
		app(b, keys, ko);
	}
	set(b, o, "keys", keys);
	for (size_t s = 0; s < m->nservices && b->rc == TB_OK; s++) {
		struct tb_json *so = jo(b);
		set(b, so, "code", js(b, m->services[s].code));
		set(b, so, "regions", jstrv(b, &m->services[s].regions));
		app(b, svcs, so);
	}
	set(b, o, "services", svcs);
	set(b, o, "status", js(b, tb_reg_status_name(m->status)));
	return o;
}

static int
build(const struct tb_reg *reg, bool with_sigs, struct tb_buf *out)
{
	static const char *const omit[] = {"sigs", NULL};
	struct bld b = {tb_json_doc_new(), TB_OK};
	struct tb_json *root, *members, *rev, *pol, *rules, *sigs;

	if (b.doc == NULL)
		return TB_E_NOMEM;
	root = jo(&b);
	set(&b, root, "v", jnum(&b, 1));
	set(&b, root, "federation", js(&b, reg->federation));
	set(&b, root, "serial", jnum(&b, (double)reg->serial));
	set(&b, root, "issued", jnum(&b, (double)reg->issued));
	set(&b, root, "valid_until", jnum(&b, (double)reg->valid_until));
	members = ja(&b);
	for (size_t i = 0; i < reg->nmembers && b.rc == TB_OK; i++)
		app(&b, members, build_member(&b, &reg->members[i]));
	set(&b, root, "members", members);
	rev = ja(&b);
	for (size_t i = 0; i < reg->nrevoked && b.rc == TB_OK; i++)
		app(&b, rev, jhex(&b, reg->revoked[i], TB_KEYID_LEN));
	set(&b, root, "revoked_keys", rev);
	pol = jo(&b);
	set(&b, pol, "default", js(&b, reg->policy_allow ? "allow" : "deny"));
	rules = ja(&b);
	for (size_t i = 0; i < reg->nrules && b.rc == TB_OK; i++) {
		const struct reg_rule *r = &reg->rules[i];
		struct tb_json *ro = jo(&b);
		set(&b, ro, "effect", js(&b, r->allow ? "allow" : "deny"));
		set(&b, ro, "services", jstrv(&b, &r->services));
		if (r->has_from) {
			struct tb_json *f = jo(&b);
			if (r->ids.n > 0)
				set(&b, f, "ids", jstrv(&b, &r->ids));
			if (r->roles.n > 0)
				set(&b, f, "roles", jstrv(&b, &r->roles));
			if (r->regions.n > 0)
				set(&b, f, "regions", jstrv(&b, &r->regions));
			set(&b, ro, "from", f);
		}
		app(&b, rules, ro);
	}
	set(&b, pol, "rules", rules);
	set(&b, root, "policy", pol);
	sigs = ja(&b);
	for (size_t i = 0; i < reg->nsigs && b.rc == TB_OK; i++) {
		struct tb_json *so = jo(&b);
		set(&b, so, "kid", jhex(&b, reg->sigs[i].kid, TB_KEYID_LEN));
		set(&b, so, "alg", js(&b, tb_alg_name(reg->sigs[i].alg)));
		set(&b, so, "val", jb64(&b, reg->sigs[i].val, TB_SIG_LEN));
		app(&b, sigs, so);
	}
	set(&b, root, "sigs", sigs);
	if (b.rc == TB_OK)
		b.rc = tb_json_canon(root, with_sigs ? NULL : omit, out);
	tb_json_doc_free(b.doc);
	return b.rc;
}

int
tb_reg_signed_bytes(const struct tb_reg *reg, struct tb_buf *out)
{
	if (reg->received.len > 0)
		return tb_buf_add(out, reg->received.data, reg->received.len);
	return build(reg, false, out);
}

int
tb_reg_serialize(const struct tb_reg *reg, struct tb_buf *out)
{
	return build(reg, true, out);
}

/* ---- verification ---- */

/* PROTOCOL.md 7.4 step 5: the DER SubjectPublicKeyInfo of an Ed25519 key
 * (RFC 8410, 44 bytes) or of an uncompressed P-256 point on the curve
 * (RFC 5480, 91 bytes) or of an uncompressed SM2 point on sm2p256v1 (91
 * bytes, the curve OID 1.2.156.10197.1.301; PROTOCOL.md 5.2).  Ed25519
 * needs only its fixed prefix, so the common case costs a comparison; a
 * P-256 or SM2 point is imported to check it.  *sm2 tells which. */
static bool
spki_ok(const uint8_t *der, size_t len, bool *sm2)
{
	static const uint8_t ed[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
	                               0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	static const uint8_t p256[27] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
	                                 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
	                                 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
	static const uint8_t sm2p[27] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
	                                 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x81, 0x1c,
	                                 0xcf, 0x55, 0x01, 0x82, 0x2d, 0x03, 0x42, 0x00, 0x04};
	struct tb_pub *p;

	*sm2 = false;
	if (len == 44 && memcmp(der, ed, sizeof(ed)) == 0)
		return true;
	if (len == 91 && memcmp(der, sm2p, sizeof(sm2p)) == 0)
		*sm2 = true;
	else if (len != 91 || memcmp(der, p256, sizeof(p256)) != 0)
		return false;
	if ((p = tb_pub_import_spki(der, len, NULL)) == NULL)
		return false;
	tb_pub_free(p);
	return true;
}

/* 7.4 step 5: every key's kid is SHA-256 of its spki, and the spki is a
 * key of a named algorithm, usable as such. */
static int
check_keys(const struct tb_reg *reg, struct tb_diag *d)
{
	for (size_t i = 0; i < reg->nmembers; i++) {
		const struct reg_member *m = &reg->members[i];
		for (size_t k = 0; k < m->nkeys; k++) {
			uint8_t h[32];
			tb_sha256(m->keys[k].spki, m->keys[k].spki_len, h);
			if (memcmp(h, m->keys[k].kid, TB_KEYID_LEN) != 0)
				return tb_diag_set(d, TB_E_REG_KEY_ID, TB_DIAG_NOPOS,
				                   "member %s keys[%zu]", m->id, k);
			bool sm2;
			if (!spki_ok(m->keys[k].spki, m->keys[k].spki_len, &sm2))
				return tb_diag_set(
				    d, TB_E_REG_KEY, TB_DIAG_NOPOS,
				    "member %s keys[%zu]: not an Ed25519, P-256 or SM2 key", m->id,
				    k);
			/* DTLS cannot use an SM2 key (PROTOCOL.md 9.1) */
			if (sm2 && m->keys[k].use != TB_USE_SIGN)
				return tb_diag_set(
				    d, TB_E_REG_KEY, TB_DIAG_NOPOS,
				    "member %s keys[%zu]: an SM2 key's use must be sign", m->id, k);
		}
	}
	return TB_OK;
}

int
tb_reg_verify(const struct tb_reg *reg, const struct tb_trust *trust, int64_t now,
              uint64_t previous_serial, size_t *valid_sigs, struct tb_diag *d)
{
	struct tb_buf msg;
	size_t good = 0;
	int rc = TB_OK;
	char hex[2 * TB_KEYID_LEN + 1];

	tb_diag_clear(d);
	tb_buf_init(&msg);
	if (valid_sigs != NULL)
		*valid_sigs = 0;
	if (strcmp(reg->federation, tb_trust_federation(trust)) != 0) {
		rc = tb_diag_set(d, TB_E_REG_FEDERATION, TB_DIAG_NOPOS,
		                 "registry is for '%s', trust anchor for '%s'", reg->federation,
		                 tb_trust_federation(trust));
		goto out;
	}
	for (size_t i = 0; i < reg->nsigs; i++) {
		const struct reg_sig *sg = &reg->sigs[i];
		const struct tb_pub *pub;
		size_t a;

		tb_hex_encode(sg->kid, TB_KEYID_LEN, hex);
		for (size_t j = 0; j < i; j++)
			if (memcmp(reg->sigs[j].kid, sg->kid, TB_KEYID_LEN) == 0) {
				rc = tb_diag_set(d, TB_E_REG_DUP_SIGNER, TB_DIAG_NOPOS,
				                 "sigs[%zu] and sigs[%zu] by %.16s...", j, i, hex);
				goto out;
			}
		if ((a = tb_trust_find(trust, sg->kid)) == (size_t)-1) {
			rc = tb_diag_set(d, TB_E_REG_SIGNER, TB_DIAG_NOPOS,
			                 "sigs[%zu] key %.16s... is not an authority", i, hex);
			goto out;
		}
		pub = tb_trust_pub(trust, a);
		if (tb_pub_alg(pub) != sg->alg) {
			rc = tb_diag_set(d, TB_E_SIG_ALG, TB_DIAG_NOPOS,
			                 "sigs[%zu] says %s but the authority's key is %s", i,
			                 tb_alg_name(sg->alg), tb_alg_name(tb_pub_alg(pub)));
			goto out;
		}
		if (msg.len == 0 && (rc = tb_reg_signed_bytes(reg, &msg)) != TB_OK) {
			tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
			goto out;
		}
		if (!tb_pub_verify(pub, msg.data, msg.len, sg->val)) {
			rc = tb_diag_set(d, TB_E_REG_TAMPERED, TB_DIAG_NOPOS,
			                 "sigs[%zu] by %s does not verify", i,
			                 tb_trust_name(trust, a));
			goto out;
		}
		good++;
	}
	if (valid_sigs != NULL)
		*valid_sigs = good;
	if (good < tb_trust_threshold(trust)) {
		rc = tb_diag_set(d, TB_E_REG_THRESHOLD, TB_DIAG_NOPOS,
		                 "%zu of %u required signatures (%zu authorities)", good,
		                 tb_trust_threshold(trust), tb_trust_count(trust));
		goto out;
	}
	if ((rc = check_keys(reg, d)) != TB_OK)
		goto out;
	if (now < reg->issued) {
		rc = tb_diag_set(d, TB_E_REG_NOT_YET_VALID, TB_DIAG_NOPOS, "issued %lld, now %lld",
		                 (long long)reg->issued, (long long)now);
		goto out;
	}
	if (now >= reg->valid_until) {
		rc = tb_diag_set(d, TB_E_REG_EXPIRED, TB_DIAG_NOPOS, "valid until %lld, now %lld",
		                 (long long)reg->valid_until, (long long)now);
		goto out;
	}
	if (previous_serial != 0 && reg->serial <= previous_serial) {
		rc = tb_diag_set(d, TB_E_REG_ROLLBACK, TB_DIAG_NOPOS, "serial %llu, previous %llu",
		                 (unsigned long long)reg->serial,
		                 (unsigned long long)previous_serial);
		goto out;
	}
out:
	tb_buf_free(&msg);
	return rc;
}

/* ---- accessors ---- */

const char *
tb_reg_federation(const struct tb_reg *reg)
{
	return reg->federation;
}

uint64_t
tb_reg_serial(const struct tb_reg *reg)
{
	return reg->serial;
}

int64_t
tb_reg_issued(const struct tb_reg *reg)
{
	return reg->issued;
}

int64_t
tb_reg_valid_until(const struct tb_reg *reg)
{
	return reg->valid_until;
}

size_t
tb_reg_member_count(const struct tb_reg *reg)
{
	return reg->nmembers;
}

const char *
tb_reg_member_id(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].id;
}

const char *
tb_reg_member_name(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].name;
}

enum tb_reg_role
tb_reg_member_role(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].role;
}

const char *
tb_reg_member_parent(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].parent;
}

enum tb_reg_status
tb_reg_member_status(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].status;
}

size_t
tb_reg_endpoint_count(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].endpoints.n;
}

const char *
tb_reg_endpoint(const struct tb_reg *reg, size_t m, size_t i)
{
	return reg->members[m].endpoints.v[i];
}

size_t
tb_reg_key_count(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].nkeys;
}

void
tb_reg_key(const struct tb_reg *reg, size_t m, size_t k, uint8_t kid[TB_KEYID_LEN],
           enum tb_key_use *use, const uint8_t **spki, size_t *spki_len)
{
	const struct reg_key *key = &reg->members[m].keys[k];
	if (kid != NULL)
		memcpy(kid, key->kid, TB_KEYID_LEN);
	if (use != NULL)
		*use = key->use;
	if (spki != NULL)
		*spki = key->spki;
	if (spki_len != NULL)
		*spki_len = key->spki_len;
}

size_t
tb_reg_service_count(const struct tb_reg *reg, size_t m)
{
	return reg->members[m].nservices;
}

const char *
tb_reg_service_code(const struct tb_reg *reg, size_t m, size_t s)
{
	return reg->members[m].services[s].code;
}

size_t
tb_reg_region_count(const struct tb_reg *reg, size_t m, size_t s)
{
	return reg->members[m].services[s].regions.n;
}

const char *
tb_reg_region(const struct tb_reg *reg, size_t m, size_t s, size_t r)
{
	return reg->members[m].services[s].regions.v[r];
}

size_t
tb_reg_revoked_count(const struct tb_reg *reg)
{
	return reg->nrevoked;
}

size_t
tb_reg_sig_count(const struct tb_reg *reg)
{
	return reg->nsigs;
}

void
tb_reg_sig(const struct tb_reg *reg, size_t i, uint8_t kid[TB_KEYID_LEN], enum tb_alg *alg)
{
	memcpy(kid, reg->sigs[i].kid, TB_KEYID_LEN);
	*alg = reg->sigs[i].alg;
}

/* ---- editing ---- */

static int
mark_edited(struct tb_reg *reg, struct tb_diag *d)
{
	if (!reg->edited) {
		if (reg->serial >= (uint64_t)TB_REG_MAX_INT)
			return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                   "serial cannot grow past 2^53-1");
		reg->serial++;
		reg->edited = true;
	}
	tb_buf_free(&reg->received);
	reg->nsigs = 0;
	return TB_OK;
}

static bool
all_pred(const char *const *v, size_t n, str_pred pred)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == NULL || !pred(v[i], strlen(v[i])))
			return false;
	return true;
}

/* The checks of a member spec against its own rules and the registry. */
static int
spec_check(const struct tb_reg *reg, const struct tb_reg_member_spec *sp, struct tb_diag *d)
{
	if (sp->id == NULL || !tb_member_id_valid(sp->id, strlen(sp->id)))
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                   "id must be a 6-digit member id");
	if (sp->name == NULL || strlen(sp->name) > TB_REG_MAX_STRING ||
	    !text_ok(sp->name, strlen(sp->name)))
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                   "name must be 1-%d bytes of text", TB_REG_MAX_STRING);
	if (sp->role != TB_ROLE_CITY && sp->role != TB_ROLE_HUB)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "role must be city or hub");
	if (sp->status < TB_STATUS_ACTIVE || sp->status > TB_STATUS_REVOKED)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "bad status");
	if (sp->nendpoints > TB_REG_MAX_ENDPOINTS || sp->nkeys < 1 || sp->nkeys > TB_REG_MAX_KEYS ||
	    sp->nservices > TB_REG_MAX_SERVICES)
		return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS,
		                   "0-%d endpoints, 1-%d keys, 0-%d services", TB_REG_MAX_ENDPOINTS,
		                   TB_REG_MAX_KEYS, TB_REG_MAX_SERVICES);
	for (size_t i = 0; i < sp->nendpoints; i++)
		if (strlen(sp->endpoints[i]) > TB_REG_MAX_STRING ||
		    !endpoint_ok(sp->endpoints[i], strlen(sp->endpoints[i])))
			return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                   "endpoint '%.60s' is not an absolute URI",
			                   sp->endpoints[i]);
	for (size_t i = 0; i < sp->nservices; i++) {
		const struct tb_reg_service_spec *s = &sp->services[i];
		if (s->code == NULL || !tb_service_code_valid(s->code, strlen(s->code)))
			return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                   "'%.60s' is not a service code", s->code ? s->code : "");
		for (size_t j = 0; j < i; j++)
			if (strcmp(sp->services[j].code, s->code) == 0)
				return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
				                   "service %s listed twice", s->code);
		if (s->nregions < 1 || s->nregions > TB_REG_MAX_REGIONS ||
		    !all_pred(s->regions, s->nregions, region_pred))
			return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                   "service %s needs 1-%d region codes of 2, 4 or 6 digits",
			                   s->code, TB_REG_MAX_REGIONS);
	}
	if (reg->nmembers >= TB_REG_MAX_MEMBERS)
		return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS, "more than %d members",
		                   TB_REG_MAX_MEMBERS);
	if (tb_reg_find_member(reg, sp->id) != TB_REG_NONE)
		return tb_diag_set(d, TB_E_REG_DUP_MEMBER, TB_DIAG_NOPOS, "member %s", sp->id);
	if (sp->parent != NULL) {
		size_t p = tb_reg_find_member(reg, sp->parent);
		if (sp->role == TB_ROLE_HUB)
			return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
			                   "a hub has no parent");
		if (p == TB_REG_NONE || reg->members[p].role != TB_ROLE_HUB)
			return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
			                   "parent %s is not a hub in the registry", sp->parent);
	} else if (sp->nendpoints == 0) {
		return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
		                   "a member without endpoints needs a parent hub");
	}
	return TB_OK;
}

/* Copies the spec's keys into m (m.keys allocated), each with its key
 * id; a key listed twice, here or by another member, is refused. */
static int
copy_keys(const struct tb_reg *reg, const struct tb_reg_member_spec *sp, struct reg_member *m,
          struct tb_diag *d)
{
	int rc = TB_E_NOMEM;

	for (size_t i = 0; i < sp->nkeys; i++) {
		const struct tb_reg_key_spec *k = &sp->keys[i];
		m->nkeys = i + 1;
		if (k->spki_len == 0 || k->spki_len > TB_REG_MAX_SPKI || k->use < TB_USE_TLS ||
		    k->use > TB_USE_BOTH) {
			rc = tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "bad key %zu", i);
			return rc;
		}
		if ((m->keys[i].spki = malloc(k->spki_len)) == NULL)
			return rc;
		memcpy(m->keys[i].spki, k->spki, k->spki_len);
		m->keys[i].spki_len = k->spki_len;
		m->keys[i].use = k->use;
		tb_sha256(k->spki, k->spki_len, m->keys[i].kid);
		for (size_t j = 0; j < i; j++)
			if (memcmp(m->keys[j].kid, m->keys[i].kid, TB_KEYID_LEN) == 0) {
				rc = tb_diag_set(d, TB_E_REG_DUP_KEY, TB_DIAG_NOPOS,
				                 "key listed twice for %s", sp->id);
				return rc;
			}
		size_t om, ok;
		if (tb_reg_find_key(reg, m->keys[i].kid, &om, &ok) == TB_OK) {
			rc = tb_diag_set(d, TB_E_REG_DUP_KEY, TB_DIAG_NOPOS,
			                 "key already listed for member %s", reg->members[om].id);
			return rc;
		}
	}
	return TB_OK;
}

/* Inserts the last member, m, into the sorted indexes. */
static int
index_insert(struct tb_reg *reg, const struct reg_member *m)
{
	uint32_t *bi = realloc(reg->by_id, (reg->nmembers + 1) * sizeof(uint32_t));
	struct kid_ent *bk =
	    realloc(reg->by_kid, (reg->nkids + m->nkeys + 1) * sizeof(struct kid_ent));
	size_t pos = 0;
	if (bi != NULL)
		reg->by_id = bi;
	if (bk != NULL)
		reg->by_kid = bk;
	if (bi == NULL || bk == NULL)
		return TB_E_NOMEM;
	while (pos < reg->nmembers - 1 && reg->members[bi[pos]].idnum < m->idnum)
		pos++;
	memmove(bi + pos + 1, bi + pos, (reg->nmembers - 1 - pos) * sizeof(uint32_t));
	bi[pos] = (uint32_t)(reg->nmembers - 1);
	for (size_t k = 0; k < m->nkeys; k++) {
		size_t q = 0;
		while (q < reg->nkids && memcmp(bk[q].kid, m->keys[k].kid, TB_KEYID_LEN) < 0)
			q++;
		memmove(bk + q + 1, bk + q, (reg->nkids - q) * sizeof(*bk));
		memcpy(bk[q].kid, m->keys[k].kid, TB_KEYID_LEN);
		bk[q].m = (uint32_t)(reg->nmembers - 1);
		bk[q].k = (uint32_t)k;
		reg->nkids++;
	}
	return TB_OK;
}

int
tb_reg_add_member(struct tb_reg *reg, const struct tb_reg_member_spec *sp, struct tb_diag *d)
{
	struct reg_member m;
	int rc;

	tb_diag_clear(d);
	memset(&m, 0, sizeof(m));
	if ((rc = spec_check(reg, sp, d)) != TB_OK)
		return rc;
	memcpy(m.id, sp->id, 7);
	m.idnum = idnum(sp->id);
	m.role = sp->role;
	m.status = sp->status;
	rc = TB_E_NOMEM;
	if ((m.name = dupn(sp->name, strlen(sp->name))) == NULL ||
	    (sp->parent != NULL && (m.parent = dupn(sp->parent, strlen(sp->parent))) == NULL) ||
	    strv_copy(&m.endpoints, sp->endpoints, sp->nendpoints) != TB_OK ||
	    (m.keys = calloc(sp->nkeys, sizeof(*m.keys))) == NULL ||
	    (m.services = calloc(sp->nservices + 1, sizeof(*m.services))) == NULL)
		goto fail;
	if ((rc = copy_keys(reg, sp, &m, d)) != TB_OK)
		goto fail;
	rc = TB_E_NOMEM;
	for (size_t i = 0; i < sp->nservices; i++) {
		m.nservices = i + 1;
		if ((m.services[i].code =
		         dupn(sp->services[i].code, strlen(sp->services[i].code))) == NULL ||
		    strv_copy(&m.services[i].regions, sp->services[i].regions,
		              sp->services[i].nregions) != TB_OK)
			goto fail;
	}
	if (reg->nmembers == reg->capmembers) {
		size_t cap = reg->capmembers < 16 ? 16 : reg->capmembers * 2;
		struct reg_member *nm = realloc(reg->members, cap * sizeof(*nm));
		if (nm == NULL)
			goto fail;
		reg->members = nm;
		reg->capmembers = cap;
	}
	if ((rc = mark_edited(reg, d)) != TB_OK)
		goto fail;
	reg->members[reg->nmembers++] = m;
	if ((rc = index_insert(reg, &m)) != TB_OK) {
		reg->nmembers--;
		goto fail;
	}
	return TB_OK;
fail:
	if (rc == TB_E_NOMEM)
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	member_free(&m);
	return rc;
}

int
tb_reg_set_status(struct tb_reg *reg, const char *id, enum tb_reg_status st, struct tb_diag *d)
{
	size_t m = tb_reg_find_member(reg, id);
	int rc;

	tb_diag_clear(d);
	if (m == TB_REG_NONE)
		return tb_diag_set(d, TB_E_REG_MEMBER, TB_DIAG_NOPOS, "%.16s", id);
	if (st < TB_STATUS_ACTIVE || st > TB_STATUS_REVOKED)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "bad status");
	if ((rc = mark_edited(reg, d)) != TB_OK)
		return rc;
	reg->members[m].status = st;
	return TB_OK;
}

int
tb_reg_set_endpoints(struct tb_reg *reg, const char *id, const char *const *uris, size_t n,
                     struct tb_diag *d)
{
	size_t m = tb_reg_find_member(reg, id);
	struct strv v;
	int rc;

	tb_diag_clear(d);
	if (m == TB_REG_NONE)
		return tb_diag_set(d, TB_E_REG_MEMBER, TB_DIAG_NOPOS, "%.16s", id);
	if (n > TB_REG_MAX_ENDPOINTS)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "%zu endpoints, at most %d", n,
		                   TB_REG_MAX_ENDPOINTS);
	for (size_t i = 0; i < n; i++)
		if (strlen(uris[i]) > TB_REG_MAX_STRING || !endpoint_ok(uris[i], strlen(uris[i])))
			return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                   "endpoint %.64s is not an absolute URI", uris[i]);
	if (n == 0 && reg->members[m].parent == NULL)
		return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
		                   "a member without endpoints needs a parent hub");
	if ((rc = mark_edited(reg, d)) != TB_OK)
		return rc;
	if (strv_copy(&v, uris, n) != TB_OK)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	strv_free(&reg->members[m].endpoints);
	reg->members[m].endpoints = v;
	return TB_OK;
}

int
tb_reg_add_key(struct tb_reg *reg, const char *id, const struct tb_reg_key_spec *k,
               struct tb_diag *d)
{
	size_t m = tb_reg_find_member(reg, id), om, ok;
	struct reg_member *mb;
	struct reg_key *v, nk;
	int rc;

	tb_diag_clear(d);
	if (m == TB_REG_NONE)
		return tb_diag_set(d, TB_E_REG_MEMBER, TB_DIAG_NOPOS, "%.16s", id);
	mb = &reg->members[m];
	if (k->spki_len == 0 || k->spki_len > TB_REG_MAX_SPKI || k->use < TB_USE_TLS ||
	    k->use > TB_USE_BOTH)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "bad key");
	if (mb->nkeys >= TB_REG_MAX_KEYS)
		return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS, "member %s has %d keys",
		                   mb->id, TB_REG_MAX_KEYS);
	tb_sha256(k->spki, k->spki_len, nk.kid);
	if (tb_reg_find_key(reg, nk.kid, &om, &ok) == TB_OK)
		return tb_diag_set(d, TB_E_REG_DUP_KEY, TB_DIAG_NOPOS,
		                   "key already listed for member %s", reg->members[om].id);
	if ((nk.spki = malloc(k->spki_len)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	memcpy(nk.spki, k->spki, k->spki_len);
	nk.spki_len = k->spki_len;
	nk.use = k->use;
	if ((v = realloc(mb->keys, (mb->nkeys + 1) * sizeof(*v))) == NULL) {
		free(nk.spki);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	}
	mb->keys = v;
	if ((rc = mark_edited(reg, d)) != TB_OK) {
		free(nk.spki);
		return rc;
	}
	mb->keys[mb->nkeys++] = nk;
	return build_index(reg, d);
}

int
tb_reg_remove_key(struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN], struct tb_diag *d)
{
	size_t m, k;
	struct reg_member *mb;
	int rc;

	tb_diag_clear(d);
	if (tb_reg_find_key(reg, kid, &m, &k) != TB_OK)
		return tb_diag_set(d, TB_E_SIG_KEYID, TB_DIAG_NOPOS, "key not in the registry");
	mb = &reg->members[m];
	if (mb->nkeys == 1)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "the only key of member %s",
		                   mb->id);
	if ((rc = mark_edited(reg, d)) != TB_OK)
		return rc;
	free(mb->keys[k].spki);
	memmove(mb->keys + k, mb->keys + k + 1, (mb->nkeys - k - 1) * sizeof(*mb->keys));
	mb->nkeys--;
	return build_index(reg, d);
}

int
tb_reg_remove_member(struct tb_reg *reg, const char *id, struct tb_diag *d)
{
	size_t m = tb_reg_find_member(reg, id);
	int rc;

	tb_diag_clear(d);
	if (m == TB_REG_NONE)
		return tb_diag_set(d, TB_E_REG_MEMBER, TB_DIAG_NOPOS, "%.16s", id);
	for (size_t i = 0; i < reg->nmembers; i++)
		if (reg->members[i].parent != NULL && strcmp(reg->members[i].parent, id) == 0)
			return tb_diag_set(d, TB_E_REG_REFERENCE, TB_DIAG_NOPOS,
			                   "member %s is reached through %s; remove it or give it "
			                   "another parent first",
			                   reg->members[i].id, id);
	if ((rc = mark_edited(reg, d)) != TB_OK)
		return rc;
	member_free(&reg->members[m]);
	memmove(reg->members + m, reg->members + m + 1,
	        (reg->nmembers - m - 1) * sizeof(*reg->members));
	reg->nmembers--;
	return build_index(reg, d);
}

int
tb_reg_revoke_key(struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN], struct tb_diag *d)
{
	uint8_t(*nr)[TB_KEYID_LEN];
	int rc;

	tb_diag_clear(d);
	if (tb_reg_key_revoked(reg, kid))
		return TB_OK;
	if (reg->nrevoked >= TB_REG_MAX_REVOKED)
		return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS, "too many revoked keys");
	if ((nr = realloc(reg->revoked, (reg->nrevoked + 1) * TB_KEYID_LEN)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	reg->revoked = nr;
	if ((rc = mark_edited(reg, d)) != TB_OK)
		return rc;
	memcpy(reg->revoked[reg->nrevoked++], kid, TB_KEYID_LEN);
	return build_index(reg, d);
}

int
tb_reg_set_validity(struct tb_reg *reg, int64_t issued, int64_t valid_until, struct tb_diag *d)
{
	int rc;

	tb_diag_clear(d);
	if (issued < 0 || valid_until <= issued || valid_until > TB_REG_MAX_INT)
		return tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                   "valid_until must be after issued (and below 2^53)");
	if ((rc = mark_edited(reg, d)) != TB_OK)
		return rc;
	reg->issued = issued;
	reg->valid_until = valid_until;
	return TB_OK;
}

int
tb_reg_set_policy_default(struct tb_reg *reg, bool allow)
{
	int rc = mark_edited(reg, NULL);
	if (rc == TB_OK)
		reg->policy_allow = allow;
	return rc;
}

int
tb_reg_clear_policy_rules(struct tb_reg *reg)
{
	int rc = mark_edited(reg, NULL);
	if (rc != TB_OK)
		return rc;
	for (size_t i = 0; i < reg->nrules; i++)
		rule_free(&reg->rules[i]);
	reg->nrules = 0;
	return TB_OK;
}

/* Splits "a,b,c" into v (copied); each must satisfy pred. */
static int
split_list(const char *s, size_t n, str_pred pred, struct strv *v)
{
	size_t cnt = 1;

	for (size_t i = 0; i < n; i++)
		cnt += s[i] == ',';
	if (n == 0 || cnt > TB_REG_MAX_RULE_ITEMS)
		return TB_E_FIELD_VALUE;
	if ((v->v = calloc(cnt, sizeof(char *))) == NULL)
		return TB_E_NOMEM;
	v->n = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && s[j] != ',')
			j++;
		if (j == i || !pred(s + i, j - i))
			return TB_E_FIELD_VALUE;
		if ((v->v[v->n] = dupn(s + i, j - i)) == NULL)
			return TB_E_NOMEM;
		v->n++;
		i = j + 1;
		if (j + 1 == n)
			return TB_E_FIELD_VALUE; /* trailing comma */
	}
	return TB_OK;
}


/* One KEY=VALUE item (n bytes at p) of a rule's text into r. */
static int
rule_item(struct reg_rule *r, const char *p, size_t n, bool *have_effect, struct tb_diag *d)
{
	const char *eq = memchr(p, '=', n);
	size_t kl, vl;
	const char *val;
	struct strv *dst = NULL;
	str_pred pred = NULL;
	int rc;

	if (eq == NULL) {
		rc = tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
		                 "rule item '%.*s' is not KEY=VALUE",
		                 (int)(n > 40 ? 40 : n), p);
		return rc;
	}
	kl = (size_t)(eq - p);
	val = eq + 1;
	vl = n - kl - 1;
	if (kl == 6 && strncmp(p, "effect", 6) == 0) {
		if (vl == 5 && strncmp(val, "allow", 5) == 0)
			r->allow = true;
		else if (vl == 4 && strncmp(val, "deny", 4) == 0)
			r->allow = false;
		else {
			rc = tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                 "effect must be allow or deny");
			return rc;
		}
		*have_effect = true;
	} else if (kl == 8 && strncmp(p, "services", 8) == 0) {
		dst = &r->services;
		pred = service_or_any;
	} else if (kl == 3 && strncmp(p, "ids", 3) == 0) {
		dst = &r->ids;
		pred = member_pred;
	} else if (kl == 5 && strncmp(p, "roles", 5) == 0) {
		dst = &r->roles;
		pred = role_pred;
	} else if (kl == 7 && strncmp(p, "regions", 7) == 0) {
		dst = &r->regions;
		pred = region_pred;
	} else {
		rc = tb_diag_set(d, TB_E_FIELD_UNKNOWN, TB_DIAG_NOPOS,
		                 "rule key '%.*s' (effect, services, ids, roles, regions)",
		                 (int)(kl > 20 ? 20 : kl), p);
		return rc;
	}
	if (dst != NULL) {
		if (dst->v != NULL) {
			rc = tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                 "rule key '%.*s' given twice", (int)kl, p);
			return rc;
		}
		if ((rc = split_list(val, vl, pred, dst)) != TB_OK) {
			if (rc != TB_E_NOMEM)
				tb_diag_set(d, rc, TB_DIAG_NOPOS,
				            "rule %.*s: bad list '%.*s'", (int)kl, p,
				            (int)(vl > 60 ? 60 : vl), val);
			return rc;
		}
	}
	return TB_OK;
}

int
tb_reg_add_policy_rule(struct tb_reg *reg, const char *text, struct tb_diag *d)
{
	struct reg_rule r;
	bool have_effect = false;
	const char *p = text;
	struct reg_rule *nr;
	int rc = TB_OK;

	tb_diag_clear(d);
	memset(&r, 0, sizeof(r));
	if (reg->nrules >= TB_REG_MAX_RULES)
		return tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS, "more than %d rules",
		                   TB_REG_MAX_RULES);
	while (*p != '\0') {
		size_t n = strcspn(p, ";");
		if ((rc = rule_item(&r, p, n, &have_effect, d)) != TB_OK)
			goto fail;
		p += n;
		if (*p == ';')
			p++;
	}
	if (!have_effect || r.services.n == 0) {
		rc = tb_diag_set(d, TB_E_FIELD_MISSING, TB_DIAG_NOPOS,
		                 "a rule needs effect= and services=");
		goto fail;
	}
	for (size_t i = 0; i < r.services.n; i++)
		if (strcmp(r.services.v[i], "*") == 0 && r.services.n != 1) {
			rc = tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS,
			                 "services=* cannot be combined with codes");
			goto fail;
		}
	r.has_from = r.ids.n > 0 || r.roles.n > 0 || r.regions.n > 0;
	if (r.roles.n > 2) {
		rc = tb_diag_set(d, TB_E_FIELD_VALUE, TB_DIAG_NOPOS, "at most two roles");
		goto fail;
	}
	if ((nr = realloc(reg->rules, (reg->nrules + 1) * sizeof(*nr))) == NULL) {
		rc = TB_E_NOMEM;
		goto fail;
	}
	reg->rules = nr;
	if ((rc = mark_edited(reg, d)) != TB_OK)
		goto fail;
	reg->rules[reg->nrules++] = r;
	return TB_OK;
fail:
	if (rc == TB_E_NOMEM)
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
	rule_free(&r);
	return rc;
}

int
tb_reg_sign(struct tb_reg *reg, const struct tb_key *key, struct tb_diag *d)
{
	struct tb_buf msg;
	struct reg_sig sg;
	size_t i;
	int rc;

	tb_diag_clear(d);
	tb_buf_init(&msg);
	tb_key_id(key, sg.kid);
	sg.alg = tb_key_alg(key);
	if ((rc = tb_reg_signed_bytes(reg, &msg)) != TB_OK) {
		tb_diag_set(d, rc, TB_DIAG_NOPOS, NULL);
		goto out;
	}
	if (tb_key_sign(key, msg.data, msg.len, sg.val) != TB_OK) {
		rc = tb_diag_set(d, TB_E_CRYPTO, TB_DIAG_NOPOS, "signing failed");
		goto out;
	}
	for (i = 0; i < reg->nsigs; i++)
		if (memcmp(reg->sigs[i].kid, sg.kid, TB_KEYID_LEN) == 0)
			break;
	if (i == TB_REG_MAX_SIGS) {
		rc = tb_diag_set(d, TB_E_REG_LIMIT, TB_DIAG_NOPOS, "more than %d signatures",
		                 TB_REG_MAX_SIGS);
		goto out;
	}
	if (reg->sigs == NULL && (reg->sigs = calloc(TB_REG_MAX_SIGS, sizeof(sg))) == NULL) {
		rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		goto out;
	}
	reg->sigs[i] = sg;
	if (i == reg->nsigs)
		reg->nsigs++;
out:
	tb_buf_free(&msg);
	return rc;
}
