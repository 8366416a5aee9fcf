/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_schema.c - the schema engine for JSON documents: one table of field
 * descriptions per object, refusal reasons from the table.
 *
 * Every document Tongban signs or reads from a peer or an operator goes
 * through here (envelopes, flow bodies, the registry, the trust anchor,
 * local-API requests), so a member name is compared one way everywhere:
 * with its length.  The parsers that build models from these documents
 * read values only after this check has passed.
 */
#include "tb_schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "tb_env.h"
#include "tb_json.h"

bool
tb_schema_name_is(const char *name, size_t n, const char *lit)
{
	return name != NULL && strlen(lit) == n && memcmp(name, lit, n) == 0;
}

bool
tb_schema_text_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return tb_utf8_valid((const uint8_t *)s, n);
}

int
tb_schema_fail(struct tb_schema_ck *c, int code, const char *fmt, ...)
{
	char rule[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rule, sizeof(rule), fmt, ap);
	va_end(ap);
	if (c->o->code != 0)
		code = c->o->code;
	else if (code == 0)
		code = TB_E_FIELD_VALUE;
	return tb_diag_set(c->d, code, TB_DIAG_NOPOS, "%s: %s", c->len ? c->path : "document",
	                   rule);
}

/* A count or length beyond its maximum: "has N elements, at most M". */
static int
fail_limit(struct tb_schema_ck *c, const char *what, long long n, long long max)
{
	return tb_schema_fail(c, c->o->limit_code, "%s %lld %s, at most %lld",
	                      strcmp(what, "bytes") == 0 ? "is" : "has", n, what, max);
}

static size_t
push_raw(struct tb_schema_ck *c, const char *s, size_t n, bool dot)
{
	size_t old = c->len, room = sizeof(c->path) - 1 - c->len;

	if (dot && c->len > 0 && room > 0) {
		c->path[c->len++] = '.';
		room--;
	}
	if (n > room)
		n = room;
	memcpy(c->path + c->len, s, n);
	c->len += n;
	c->path[c->len] = '\0';
	return old;
}

size_t
tb_schema_push(struct tb_schema_ck *c, const char *name)
{
	return push_raw(c, name, strlen(name), true);
}

void
tb_schema_pop(struct tb_schema_ck *c, size_t old)
{
	c->len = old;
	c->path[old] = '\0';
}

/* A peer's member name, made printable and short: it ends up in logs. */
static size_t
push_name(struct tb_schema_ck *c, const char *k, size_t kl)
{
	char safe[40];
	size_t n = 0;

	for (size_t i = 0; i < kl && n < sizeof(safe) - 4; i++)
		safe[n++] = (k[i] > 0x20 && k[i] < 0x7f) ? k[i] : '?';
	if (n < kl) {
		safe[n++] = '.';
		safe[n++] = '.';
	}
	return push_raw(c, safe, n, true);
}

static size_t
push_index(struct tb_schema_ck *c, size_t i)
{
	char ix[24];
	int n = snprintf(ix, sizeof(ix), "[%zu]", i);
	return push_raw(c, ix, (size_t)n, false);
}

static bool
in_set(const char *s, size_t n, const char *const *set)
{
	for (size_t i = 0; set[i] != NULL; i++)
		if (tb_schema_name_is(s, n, set[i]))
			return true;
	return false;
}

static bool
kind_ok(const struct tb_field *f, const struct tb_json *v, const char **want)
{
	enum tb_json_kind k = tb_json_kind(v);
	int64_t iv;

	switch (f->t) {
	case TB_ST_ANY: return true;
	case TB_ST_INT: *want = "an integer"; return tb_json_integer(v, &iv);
	case TB_ST_OBJ:
	case TB_ST_MAP: *want = "an object"; return k == TB_JSON_OBJECT;
	case TB_ST_ARR: *want = "an array"; return k == TB_JSON_ARRAY;
	default: *want = "a string"; return k == TB_JSON_STRING;
	}
}

static int check_value(struct tb_schema_ck *c, const struct tb_field *f, const struct tb_json *v);

static int
check_unknown(struct tb_schema_ck *c, const struct tb_field *members, const struct tb_json *obj)
{
	for (const struct tb_json *m = tb_json_first(obj); m != NULL; m = tb_json_next(m)) {
		size_t kl;
		const char *k = tb_json_key(m, &kl);
		const struct tb_field *f = members;
		while (f->name != NULL && !tb_schema_name_is(k, kl, f->name))
			f++;
		if (f->name == NULL) {
			push_name(c, k, kl);
			return tb_schema_fail(c, TB_E_FIELD_UNKNOWN, "unknown member");
		}
	}
	return TB_OK;
}

/* Presence and JSON type of member f of obj; *out is NULL when absent. */
static int
check_present(struct tb_schema_ck *c, const struct tb_field *f, const struct tb_json *obj,
              const struct tb_json **out)
{
	const struct tb_json *v = tb_json_get(obj, f->name);
	const char *want = NULL;
	size_t old;

	*out = v;
	if (v == NULL && !f->req)
		return TB_OK;
	old = tb_schema_push(c, f->name);
	if (v == NULL)
		return tb_schema_fail(c, TB_E_FIELD_MISSING, "required");
	if (!kind_ok(f, v, &want))
		return tb_schema_fail(c, TB_E_FIELD_TYPE, "must be %s", want);
	tb_schema_pop(c, old);
	return TB_OK;
}

/* Fields of one object at most (a table longer is a bug). */
#define MAX_FIELDS 32

static int
check_object(struct tb_schema_ck *c, const struct tb_field *members, const struct tb_json *obj,
             bool types_first)
{
	const struct tb_json *vals[MAX_FIELDS], *v;
	size_t i;
	int rc;

	if (members == NULL) /* any members: checked elsewhere */
		return TB_OK;
	if ((rc = check_unknown(c, members, obj)) != TB_OK)
		return rc;
	for (i = 0; types_first && members[i].name != NULL; i++)
		if (i == MAX_FIELDS)
			return tb_schema_fail(c, TB_E_ARG, "internal: schema too long");
		else if ((rc = check_present(c, &members[i], obj, &vals[i])) != TB_OK)
			return rc;
	for (i = 0; members[i].name != NULL; i++) {
		const struct tb_field *f = &members[i];
		size_t old;
		if (types_first)
			v = vals[i];
		else if ((rc = check_present(c, f, obj, &v)) != TB_OK)
			return rc;
		if (v == NULL)
			continue;
		old = tb_schema_push(c, f->name);
		if ((rc = check_value(c, f, v)) != TB_OK)
			return rc;
		tb_schema_pop(c, old);
	}
	return TB_OK;
}

static int
check_map(struct tb_schema_ck *c, const struct tb_field *f, const struct tb_json *v)
{
	if (tb_json_count(v) > (size_t)f->max && c->o->limit_code == 0)
		return tb_schema_fail(c, 0, "at most %lld members", (long long)f->max);
	if (tb_json_count(v) > (size_t)f->max)
		return fail_limit(c, "members", (long long)tb_json_count(v), (long long)f->max);
	for (const struct tb_json *m = tb_json_first(v); m != NULL; m = tb_json_next(m)) {
		size_t kl, vl;
		const char *k = tb_json_key(m, &kl), *s;
		size_t old = push_name(c, k, kl);
		if (kl < 1 || kl > 64 || !tb_schema_text_ok(k, kl))
			return tb_schema_fail(
			    c, 0, "member names must be 1-64 bytes without control characters");
		if ((s = tb_json_string(m, &vl)) == NULL)
			return tb_schema_fail(c, TB_E_FIELD_TYPE, "must be a string");
		if (vl > 1024 || !tb_schema_text_ok(s, vl))
			return tb_schema_fail(c, 0,
			                      "must be 0-1024 bytes without control characters");
		tb_schema_pop(c, old);
	}
	return TB_OK;
}

static bool
repeats(const struct tb_json *arr, const struct tb_json *e)
{
	size_t el, ol;
	const char *es = tb_json_string(e, &el);

	for (const struct tb_json *o = tb_json_first(arr); o != e; o = tb_json_next(o)) {
		const char *os = tb_json_string(o, &ol);
		if (es != NULL && os != NULL && ol == el && memcmp(os, es, el) == 0)
			return true;
	}
	return false;
}

static int
check_array(struct tb_schema_ck *c, const struct tb_field *f, const struct tb_json *v)
{
	size_t n = tb_json_count(v), i = 0;
	const char *want = NULL;
	int rc;

	if (n > (size_t)f->max && c->o->limit_code != 0)
		return fail_limit(c, "elements", (long long)n, (long long)f->max);
	if (n < (size_t)f->min || n > (size_t)f->max)
		return tb_schema_fail(c, f->code, "must have %lld to %lld elements",
		                      (long long)f->min, (long long)f->max);
	for (const struct tb_json *e = tb_json_first(v); e != NULL; e = tb_json_next(e), i++) {
		size_t old = push_index(c, i);
		/* an element of the wrong kind is a bad value of the array */
		if (!kind_ok(&f->sub[0], e, &want))
			return tb_schema_fail(c, f->sub[0].code, "must be %s", want);
		if ((rc = check_value(c, &f->sub[0], e)) != TB_OK)
			return rc;
		if (f->unique && repeats(v, e))
			return tb_schema_fail(c, f->code, "repeats an earlier element");
		tb_schema_pop(c, old);
	}
	return TB_OK;
}

static int
check_enum(struct tb_schema_ck *c, const struct tb_field *f, const char *s, size_t n)
{
	char set[128];
	size_t o = 0;

	if (in_set(s, n, f->one_of))
		return TB_OK;
	for (size_t i = 0; f->one_of[i] != NULL && o < sizeof(set); i++)
		o += (size_t)snprintf(set + o, sizeof(set) - o, "%s\"%s\"", i ? ", " : "",
		                      f->one_of[i]);
	return tb_schema_fail(c, f->code, "must be one of %s", set);
}

static int
check_b64(struct tb_schema_ck *c, const struct tb_field *f, const char *s, size_t n)
{
	uint8_t tmp[1024];
	size_t max = (size_t)f->max, got = 0;

	if (max > sizeof(tmp))
		return tb_schema_fail(c, TB_E_ARG, "internal: base64url field too large");
	/* 4 characters carry 3 bytes */
	if (n > tb_b64url_len(max) && c->o->limit_code == 0)
		goto bad;
	if (n > tb_b64url_len(max))
		return fail_limit(c, "characters", (long long)n, (long long)tb_b64url_len(max));
	if (!tb_b64url_decode(s, n, tmp, sizeof(tmp), &got) || got < (size_t)f->min || got > max)
		goto bad;
	return TB_OK;
bad:
	if (f->min == f->max)
		return tb_schema_fail(c, f->code, "must be %lld bytes in base64url without padding",
		                      (long long)f->min);
	return tb_schema_fail(c, f->code, "must be %lld-%lld bytes in base64url without padding",
	                      (long long)f->min, (long long)f->max);
}

static int
check_string(struct tb_schema_ck *c, const struct tb_field *f, const char *s, size_t n)
{
	switch (f->t) {
	case TB_ST_TEXT:
		if (n > (size_t)f->max && c->o->limit_code != 0)
			return fail_limit(c, "bytes", (long long)n, (long long)f->max);
		if (n < (size_t)f->min || n > (size_t)f->max)
			return tb_schema_fail(c, f->code, "must be %lld-%lld bytes",
			                      (long long)f->min, (long long)f->max);
		if (!tb_schema_text_ok(s, n))
			return tb_schema_fail(c, f->code, "must not contain control characters");
		return TB_OK;
	case TB_ST_STR:
		if (f->max > 0 && n > (size_t)f->max && c->o->limit_code != 0)
			return fail_limit(c, "bytes", (long long)n, (long long)f->max);
		return f->pred(s, n) ? TB_OK : tb_schema_fail(c, f->code, "must be %s", f->what);
	case TB_ST_ENUM: return check_enum(c, f, s, n);
	case TB_ST_HEX:
		return n == (size_t)f->min && tb_hex_valid(s, n)
		           ? TB_OK
		           : tb_schema_fail(c, f->code, "must be %lld lowercase hex digits",
		                            (long long)f->min);
	case TB_ST_CODE:
		return tb_service_code_valid(s, n)
		           ? TB_OK
		           : tb_schema_fail(c, f->code,
		                            "must be 1-64 of a-z 0-9 . - (a service code)");
	case TB_ST_MEMBER:
		return tb_member_id_valid(s, n)
		           ? TB_OK
		           : tb_schema_fail(c, f->code, "must be a member id (6 digits)");
	case TB_ST_REGION:
		return tb_region_code_valid(s, n)
		           ? TB_OK
		           : tb_schema_fail(c, f->code, "must be a 2, 4 or 6-digit region code");
	case TB_ST_B64: return check_b64(c, f, s, n);
	default: return tb_schema_fail(c, TB_E_ARG, "internal: bad schema");
	}
}

static int
check_value(struct tb_schema_ck *c, const struct tb_field *f, const struct tb_json *v)
{
	const char *s;
	size_t n = 0;
	int64_t iv;
	int rc;

	switch (f->t) {
	case TB_ST_ANY: return TB_OK;
	case TB_ST_INT:
		if (!tb_json_integer(v, &iv))
			return tb_schema_fail(c, TB_E_FIELD_TYPE, "must be an integer");
		if (iv < f->min || iv > f->max)
			return tb_schema_fail(c, f->code, "must be in %lld..%lld",
			                      (long long)f->min, (long long)f->max);
		return TB_OK;
	case TB_ST_OBJ:
		if (tb_json_kind(v) != TB_JSON_OBJECT)
			return tb_schema_fail(c, TB_E_FIELD_TYPE, "must be an object");
		if ((rc = check_object(c, f->sub, v, false)) != TB_OK)
			return rc;
		return f->hook != NULL ? f->hook(c, v) : TB_OK;
	case TB_ST_MAP:
		if (tb_json_kind(v) != TB_JSON_OBJECT)
			return tb_schema_fail(c, TB_E_FIELD_TYPE, "must be an object");
		return check_map(c, f, v);
	case TB_ST_ARR:
		if (tb_json_kind(v) != TB_JSON_ARRAY)
			return tb_schema_fail(c, TB_E_FIELD_TYPE, "must be an array");
		return check_array(c, f, v);
	default:
		if ((s = tb_json_string(v, &n)) == NULL)
			return tb_schema_fail(c, TB_E_FIELD_TYPE, "must be a string");
		return check_string(c, f, s, n);
	}
}

int
tb_schema_check(const struct tb_field *f, const struct tb_json *v, const struct tb_schema_opts *o,
                struct tb_diag *d)
{
	struct tb_schema_ck c;
	const char *want = NULL;
	int rc;

	c.d = d;
	c.o = o;
	c.len = 0;
	c.path[0] = '\0';
	push_raw(&c, o->root, strlen(o->root), false);
	if (f == NULL || v == NULL)
		return tb_schema_fail(&c, TB_E_ARG, "no schema or no document");
	if (!kind_ok(f, v, &want))
		return tb_schema_fail(&c, TB_E_FIELD_TYPE, "must be %s", want);
	if (f->t == TB_ST_OBJ) {
		if ((rc = check_object(&c, f->sub, v, o->types_first)) != TB_OK)
			return rc;
		return f->hook != NULL ? f->hook(&c, v) : TB_OK;
	}
	return check_value(&c, f, v);
}

int
tb_schema_version(const struct tb_json *obj, int64_t version, struct tb_diag *d)
{
	const struct tb_json *v = tb_json_get(obj, "v");
	int64_t iv;

	if (v == NULL)
		return tb_diag_set(d, TB_E_FIELD_MISSING, TB_DIAG_NOPOS, "v: required");
	if (!tb_json_integer(v, &iv))
		return tb_diag_set(d, TB_E_FIELD_TYPE, TB_DIAG_NOPOS, "v: must be an integer");
	if (iv != version)
		return tb_diag_set(d, TB_E_VERSION, TB_DIAG_NOPOS, "v: %lld, this version reads %lld",
		                   (long long)iv, (long long)version);
	return TB_OK;
}
