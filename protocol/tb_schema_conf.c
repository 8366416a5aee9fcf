/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_schema_conf.c - the configuration-file half of the schema engine:
 * "key = value" text checked against a program's table of keys.
 *
 * A row says what a value may be (its type, bounds, words, a check
 * hook) and where it goes in the program's record; the engine does the
 * rest, so that the program's start, its configuration check (-n) and
 * its SIGHUP reload all read the same rules.  Values are checked before
 * they are stored: a record is either the file's or refused.
 */
#include "tb_schema.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_err.h"

#define FIELD(rec, off) ((char *)(rec) + (off))
#define CFIELD(rec, off) ((const char *)(rec) + (off))

static const char *const bool_true[] = {"yes", "true", "on", "1", NULL};
static const char *const bool_false[] = {"no", "false", "off", "0", NULL};

static bool
in_words(const char *const *words, const char *v)
{
	for (; *words != NULL; words++)
		if (strcmp(*words, v) == 0)
			return true;
	return false;
}

static const char *
put_text(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n >= cap)
		return "value too long";
	memcpy(dst, v, n + 1);
	return NULL;
}

/* Parses a decimal integer in min..max into *out; false if it is not one. */
static bool
parse_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long n;

	if (*v == '\0' || isspace((unsigned char)*v))
		return false;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return false;
	*out = n;
	return true;
}

static void
words_list(const char *const *words, char *why, size_t whylen)
{
	size_t used;

	snprintf(why, whylen, "must be one of");
	for (const char *const *w = words; *w != NULL; w++) {
		used = strlen(why);
		snprintf(why + used, whylen - used, "%s %s", w == words ? "" : ",", *w);
	}
}

/* Stores v (its type and hook accepted) as key k of rec.  Returns NULL,
 * or why v is refused (in why when it is built there). */
static const char *
store(const struct tb_conf_key *k, const char *v, const char *dir, void *rec, char *why,
      size_t whylen)
{
	char *dst = FIELD(rec, k->off);
	const char *colon;
	int64_t n;
	int w;

	switch (k->type) {
	case TB_CONF_STR:
	case TB_CONF_ENUM:
	case TB_CONF_MEMBER: return put_text(dst, k->size, v);
	case TB_CONF_PATH:
		/* a URI (journal = postgresql://...) names no file */
		if (v[0] == '/' || dir == NULL || strstr(v, "://") != NULL)
			return put_text(dst, k->size, v) ? "path too long" : NULL;
		w = snprintf(dst, k->size, "%s/%s", dir, v);
		return w < 0 || (size_t)w >= k->size ? "path too long" : NULL;
	case TB_CONF_INT:
		if (!parse_int(v, k->min, k->max, &n)) {
			snprintf(why, whylen, "must be an integer in %lld..%lld", (long long)k->min,
			         (long long)k->max);
			return why;
		}
		memcpy(dst, &n, sizeof(n));
		return NULL;
	case TB_CONF_BOOL:
		n = in_words(bool_true, v);
		if (!n && !in_words(bool_false, v))
			return "must be yes or no (true/false, on/off, 1/0)";
		memcpy(dst, &n, sizeof(n));
		return NULL;
	case TB_CONF_HOSTPORT: {
		int port;
		if ((colon = strrchr(v, ':')) == NULL || colon == v)
			return "must be HOST:PORT";
		if ((size_t)(colon - v) >= k->size)
			return "host too long";
		if (!parse_int(colon + 1, k->min, k->max, &n)) {
			snprintf(why, whylen, "port must be an integer in %lld..%lld",
			         (long long)k->min, (long long)k->max);
			return why;
		}
		memcpy(dst, v, (size_t)(colon - v));
		dst[colon - v] = '\0';
		port = (int)n;
		memcpy(FIELD(rec, k->off2), &port, sizeof(port));
		return NULL;
	}
	}
	return "bad key type";
}

/* Checks value v of key k by its type (what store() cannot see: the
 * member id's and the words' syntax), the key's hook, then stores it. */
static const char *
set_value(const struct tb_conf_key *k, const char *v, const char *dir, void *rec, char *why,
          size_t whylen)
{
	const char *msg;

	if (*v == '\0') {
		if (k->def != NULL && *k->def == '\0' && k->type != TB_CONF_INT &&
		    k->type != TB_CONF_BOOL && k->type != TB_CONF_HOSTPORT) {
			FIELD(rec, k->off)[0] = '\0';
			return NULL;
		}
		if (k->type == TB_CONF_STR || k->type == TB_CONF_PATH)
			return "must not be empty";
	}
	if (k->type == TB_CONF_MEMBER &&
	    (strlen(v) != 6 || v[0] < '1' || v[0] > '9' || strspn(v, "0123456789") != 6))
		return "must be a 6-digit member id";
	if (k->type == TB_CONF_ENUM && !in_words(k->words, v)) {
		words_list(k->words, why, whylen);
		return why;
	}
	if ((msg = store(k, v, dir, rec, why, whylen)) != NULL)
		return msg;
	return k->check != NULL ? k->check(v) : NULL;
}

/* A table row that breaks the engine's rules is a bug in the program. */
static void
check_row(const struct tb_conf_key *k)
{
	bool text = k->type != TB_CONF_INT && k->type != TB_CONF_BOOL;

	if (k->name == NULL || (text && k->size == 0) || (!text && k->size != sizeof(int64_t)) ||
	    (k->type == TB_CONF_ENUM && k->words == NULL) ||
	    ((k->flags & TB_CONF_REQUIRED) != 0) != (k->def == NULL))
		abort();
}

static void
set_defaults(const struct tb_conf_table *t, const char *dir, void *rec)
{
	char why[160];

	if (t->nkeys > TB_CONF_KEYS_MAX)
		abort();
	for (size_t i = 0; i < t->nkeys; i++) {
		const struct tb_conf_key *k = &t->keys[i];
		check_row(k);
		if (k->def != NULL && set_value(k, k->def, dir, rec, why, sizeof(why)) != NULL)
			abort(); /* a default its own row refuses */
	}
}

/* One line [p, e) without its comment, trimmed: the key in [*k, *ke),
 * the value in [*v, *ve).  Returns 0 for a blank line, 1 for a key and
 * value, -1 for a line without '='. */
static int
split_line(const char *p, const char *e, const char **k, const char **ke, const char **v,
           const char **ve)
{
	const char *hash = memchr(p, '#', (size_t)(e - p)), *eq;

	if (hash != NULL)
		e = hash;
	while (p < e && isspace((unsigned char)*p))
		p++;
	while (e > p && isspace((unsigned char)e[-1]))
		e--;
	if (p == e)
		return 0;
	if ((eq = memchr(p, '=', (size_t)(e - p))) == NULL || eq == p)
		return -1;
	*k = p;
	*ke = eq;
	while (*ke > p && isspace((unsigned char)(*ke)[-1]))
		(*ke)--;
	*v = eq + 1;
	while (*v < e && isspace((unsigned char)**v))
		(*v)++;
	*ve = e;
	return 1;
}

/* The keys the file did not set and the cross-key hook: the end of a
 * parse. */
static int
finish(const struct tb_conf_table *t, const char *name, const void *rec, const unsigned *lines,
       struct tb_diag *d)
{
	const char *keys[2] = {NULL, NULL}, *at = NULL;
	char why[160];
	unsigned line = 0;

	for (size_t i = 0; i < t->nkeys; i++)
		if ((t->keys[i].flags & TB_CONF_REQUIRED) && lines[i] == 0)
			return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
			                   "%s: required key '%s' missing", name, t->keys[i].name);
	if (t->cross == NULL || t->cross(rec, keys, why, sizeof(why)))
		return TB_OK;
	for (int j = 0; j < 2; j++) {
		const struct tb_conf_key *k;
		if (keys[j] == NULL || (k = tb_conf_find(t, keys[j], strlen(keys[j]))) == NULL)
			continue;
		if (at == NULL || lines[k - t->keys] > line) {
			at = k->name;
			line = lines[k - t->keys];
		}
	}
	if (line > 0)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%u: %s: %s", name, line, at,
		                   why);
	return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: %s%s%s", name, at ? at : "",
	                   at ? ": " : "", why);
}

/* One "key = value" at line lineno; lines[] records where each key was set. */
static int
parse_pair(const struct tb_conf_table *t, const char *name, unsigned lineno, const char *k,
           size_t klen, const char *v, size_t vlen, const char *dir, void *rec, unsigned *lines,
           struct tb_diag *d)
{
	const struct tb_conf_key *key = tb_conf_find(t, k, klen);
	char value[TB_CONF_VALUE_MAX], why[160];
	const char *msg;
	size_t i;

	if (key == NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%u: unknown key '%.*s'", name,
		                   lineno, klen > 64 ? 64 : (int)klen, k);
	i = (size_t)(key - t->keys);
	if (lines[i] != 0)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                   "%s:%u: %s: set twice (first on line %u)", name, lineno,
		                   key->name, lines[i]);
	lines[i] = lineno;
	if (vlen >= sizeof(value))
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%u: %s: value too long", name,
		                   lineno, key->name);
	memcpy(value, v, vlen);
	value[vlen] = '\0';
	if ((msg = set_value(key, value, dir, rec, why, sizeof(why))) != NULL)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%u: %s: %s", name, lineno,
		                   key->name, msg);
	return TB_OK;
}

int
tb_conf_parse(const struct tb_conf_table *t, const char *name, const char *dir, const char *text,
              size_t len, void *rec, unsigned *lines, struct tb_diag *d)
{
	unsigned seen[TB_CONF_KEYS_MAX], lineno = 0;
	const char *p = text, *end = text + len, *nl;
	int rc;

	set_defaults(t, dir, rec);
	memset(seen, 0, sizeof(seen));
	for (; p < end; p = nl < end ? nl + 1 : end) {
		const char *k, *ke, *v, *ve;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		lineno++;
		if (memchr(p, '\0', (size_t)(nl - p)) != NULL)
			return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%u: NUL byte", name,
			                   lineno);
		switch (split_line(p, nl, &k, &ke, &v, &ve)) {
		case 0: continue;
		case -1:
			return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
			                   "%s:%u: expected key = value", name, lineno);
		}
		rc = parse_pair(t, name, lineno, k, (size_t)(ke - k), v, (size_t)(ve - v), dir, rec,
		                seen, d);
		if (rc != TB_OK)
			return rc;
	}
	if ((rc = finish(t, name, rec, seen, d)) != TB_OK)
		return rc;
	if (lines != NULL)
		memcpy(lines, seen, t->nkeys * sizeof(*lines));
	return TB_OK;
}

const struct tb_conf_key *
tb_conf_find(const struct tb_conf_table *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (strlen(t->keys[i].name) == len && memcmp(t->keys[i].name, name, len) == 0)
			return &t->keys[i];
	return NULL;
}

bool
tb_conf_equal(const struct tb_conf_key *k, const void *a, const void *b)
{
	const char *fa = CFIELD(a, k->off), *fb = CFIELD(b, k->off);

	switch (k->type) {
	case TB_CONF_INT:
	case TB_CONF_BOOL: return memcmp(fa, fb, sizeof(int64_t)) == 0;
	case TB_CONF_HOSTPORT:
		if (memcmp(CFIELD(a, k->off2), CFIELD(b, k->off2), sizeof(int)) != 0)
			return false;
		/* fallthrough */
	default: return strncmp(fa, fb, k->size) == 0;
	}
}

void
tb_conf_copy(const struct tb_conf_key *k, void *dst, const void *src)
{
	memcpy(FIELD(dst, k->off), CFIELD(src, k->off), k->size);
	if (k->type == TB_CONF_HOSTPORT)
		memcpy(FIELD(dst, k->off2), CFIELD(src, k->off2), sizeof(int));
}

const char *
tb_conf_format(const struct tb_conf_key *k, const void *rec, char *out, size_t outlen)
{
	const char *f = CFIELD(rec, k->off);
	int64_t n;
	int port;

	if (outlen == 0)
		return out;
	switch (k->type) {
	case TB_CONF_INT:
		memcpy(&n, f, sizeof(n));
		snprintf(out, outlen, "%lld", (long long)n);
		break;
	case TB_CONF_BOOL:
		memcpy(&n, f, sizeof(n));
		snprintf(out, outlen, "%s", n ? "yes" : "no");
		break;
	case TB_CONF_HOSTPORT:
		memcpy(&port, CFIELD(rec, k->off2), sizeof(port));
		snprintf(out, outlen, "%.*s:%d", (int)strnlen(f, k->size), f, port);
		break;
	default: snprintf(out, outlen, "%.*s", (int)strnlen(f, k->size), f); break;
	}
	return out;
}

/* ---- check hooks ---- */

/* The loopback host names; in a URL, IPv6 addresses are bracketed. */
static bool
loopback_host(const char *h, size_t len, bool url)
{
	const char *const names[] = {"127.0.0.1", "localhost", url ? "[::1]" : "::1"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && memcmp(names[i], h, len) == 0)
			return true;
	return false;
}

const char *
tb_conf_check_loopback(const char *hostport)
{
	const char *colon = strrchr(hostport, ':');

	if (colon == NULL || !loopback_host(hostport, (size_t)(colon - hostport), false))
		return "must be a loopback address (127.0.0.1, ::1 or localhost)";
	return NULL;
}

const char *
tb_conf_check_loopback_url(const char *url)
{
	static const char scheme[] = "http://";
	const char *h = url + sizeof(scheme) - 1, *he, *path;
	int64_t port;
	char digits[8];

	for (const char *c = url; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return "must not hold spaces or control characters";
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return "must be an http:// URL (http://127.0.0.1:PORT/PATH)";
	path = h + strcspn(h, "/?");
	he = *h == '[' ? memchr(h, ']', (size_t)(path - h)) : NULL;
	he = he != NULL ? he + 1 : h + strcspn(h, ":/?");
	if (he > path)
		he = path;
	if (!loopback_host(h, (size_t)(he - h), true))
		return "must be on this machine (loopback: 127.0.0.1, [::1] or localhost)";
	if (*he == ':') {
		size_t n = (size_t)(path - he - 1);
		if (n == 0 || n >= sizeof(digits))
			return "port must be an integer in 1..65535";
		memcpy(digits, he + 1, n);
		digits[n] = '\0';
		if (!parse_int(digits, 1, 65535, &port))
			return "port must be an integer in 1..65535";
	} else if (he != path) {
		return "must be http://HOST[:PORT][/PATH]";
	}
	return NULL;
}
