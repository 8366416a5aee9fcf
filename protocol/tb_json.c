/* SPDX-License-Identifier: Apache-2.0 */
/* tb_json.c - strict I-JSON parser, tree, and RFC 8785 serialiser. */
#include "tb_json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_buf.h"
#include "../util/tb_err.h"

const struct tb_json_limits tb_json_default_limits = {16u << 20, 512};

struct tb_json {
	uint8_t kind;
	struct tb_json *next; /* next sibling in the parent container */
	const char *key;      /* member name when the parent is an object */
	size_t keylen;
	/* a parsed member's bytes in the text: [span_from, span_to), the
	 * name through the value; span_to 0 for a built value */
	size_t span_from, span_to;
	union {
		double num;
		struct {
			const char *s;
			size_t len;
		} str;
		struct {
			struct tb_json *first, *last;
			size_t count;
		} c;
	} u;
};

/* Arena: values and strings of a document, freed all at once. */
struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct tb_json_doc {
	struct chunk *chunks;
	struct tb_json *root;
};

#define CHUNK_SIZE 8192

static void *
arena_alloc(struct tb_json_doc *doc, size_t n)
{
	struct chunk *c = doc->chunks;
	size_t align = sizeof(max_align_t);

	n = (n + align - 1) / align * align;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > CHUNK_SIZE / 2 ? n : CHUNK_SIZE;
		struct chunk *nc = malloc(sizeof(*nc) + cap);
		if (nc == NULL)
			return NULL;
		nc->used = 0;
		nc->cap = cap;
		if (c != NULL && n > CHUNK_SIZE / 2) {
			/* keep the current chunk on top: it still has room */
			nc->next = c->next;
			c->next = nc;
		} else {
			nc->next = c;
			doc->chunks = nc;
		}
		c = nc;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

struct tb_json_doc *
tb_json_doc_new(void)
{
	return calloc(1, sizeof(struct tb_json_doc));
}

void
tb_json_doc_free(struct tb_json_doc *doc)
{
	if (doc == NULL)
		return;
	for (struct chunk *c = doc->chunks, *n; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	free(doc);
}

struct tb_json *
tb_json_root(const struct tb_json_doc *doc)
{
	return doc->root;
}

void
tb_json_set_root(struct tb_json_doc *doc, struct tb_json *v)
{
	doc->root = v;
}

static struct tb_json *
new_value(struct tb_json_doc *doc, enum tb_json_kind k)
{
	struct tb_json *v = arena_alloc(doc, sizeof(*v));

	if (v != NULL) {
		memset(v, 0, sizeof(*v));
		v->kind = (uint8_t)k;
	}
	return v;
}

static void
container_add(struct tb_json *c, struct tb_json *v)
{
	v->next = NULL;
	if (c->u.c.last == NULL)
		c->u.c.first = v;
	else
		c->u.c.last->next = v;
	c->u.c.last = v;
	c->u.c.count++;
}

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0
 * when it is not well-formed (Unicode table 3-7). */
static size_t
utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
		               (s[3] & 0xc0) == 0x80
		           ? 4
		           : 0;
	}
	return 0;
}

/* Eight bytes at a time (SWAR).  Each test below sets the high bit of
 * every byte of the kind tested; it may also set it in bytes above such a
 * byte (a borrow carries into them), but never when no byte is of the
 * kind: so a zero result means that none of the eight bytes is. */
#define ONES 0x0101010101010101u
#define HIGHS 0x8080808080808080u

static inline uint64_t
load8(const uint8_t *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return x;
}

/* bytes equal to c */
static inline uint64_t
eq8(uint64_t x, uint8_t c)
{
	uint64_t q = x ^ (ONES * c);

	return (q - ONES) & ~q;
}

/* bytes below 0x20 (or, through ~x, none of the non-ASCII ones) */
static inline uint64_t
ctl8(uint64_t x)
{
	return (x - ONES * 0x20) & ~x;
}

/* Whether the 8 bytes at p are all ASCII. */
static inline bool
ascii8(const uint8_t *p)
{
	return (load8(p) & HIGHS) == 0;
}

/* Whether none of the 8 bytes at p is '"', '\\' or a control byte (any
 * other byte, non-ASCII too, is copied as is by the canonical form). */
static inline bool
nospecial8(const uint8_t *p)
{
	uint64_t x = load8(p);

	return ((eq8(x, '"') | eq8(x, '\\') | ctl8(x)) & HIGHS) == 0;
}

/* Whether the 8 bytes at p are all printable ASCII other than '"' and
 * '\\': a run a string's first pass can skip. */
static inline bool
plain8(const uint8_t *p)
{
	uint64_t x = load8(p);

	return ((eq8(x, '"') | eq8(x, '\\') | ctl8(x) | x) & HIGHS) == 0;
}

size_t
tb_json_string_run(const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (uint64_t x; n - i >= 8; i += 8) {
		x = load8(p + i);
		if (((eq8(x, '"') | eq8(x, '\\')) & HIGHS) != 0)
			break;
	}
	while (i < n && p[i] != '"' && p[i] != '\\')
		i++;
	return i;
}

/* The offset of the first ill-formed UTF-8 sequence in s, or n. */
static size_t
utf8_first_bad(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		while (n - i >= 8 && ascii8(s + i))
			i += 8;
		if (i >= n)
			break;
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0)
			return i;
		i += k;
	}
	return n;
}

bool
tb_utf8_valid(const uint8_t *s, size_t n)
{
	return utf8_first_bad(s, n) == n;
}

/* ---- parser ---- */

struct parser {
	const uint8_t *start, *p, *end;
	struct tb_json_doc *doc;
	unsigned depth, max_depth;
	struct tb_diag *d;
	int err;
};

static int
fail(struct parser *ps, int err, const uint8_t *at, const char *what)
{
	if (ps->err == TB_OK) {
		ps->err = err;
		tb_diag_set(ps->d, err, (size_t)(at - ps->start), "%s", what);
	}
	return err;
}

static void
skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int parse_value(struct parser *ps, struct tb_json **out);

static int
hex4(const uint8_t *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		uint8_t c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Parses a string starting at the opening quote; the decoded bytes go to
 * the arena.  Decoding never makes a string longer than its source. */
/* parse_string's pass 2: decodes the escapes of the checked string text
 * q..s into buf (room for s - q + 1 bytes); *outlen its length. */
static int
decode_escapes(struct parser *ps, const uint8_t *q, const uint8_t *s, char *buf, size_t *outlen)
{
	char *o;

	for (o = buf; q < s;) {
		unsigned cp, lo;
		if (*q != '\\') {
			*o++ = (char)*q++;
			continue;
		}
		switch (q[1]) {
		case '"':
			*o++ = '"';
			q += 2;
			continue;
		case '\\':
			*o++ = '\\';
			q += 2;
			continue;
		case '/':
			*o++ = '/';
			q += 2;
			continue;
		case 'b':
			*o++ = '\b';
			q += 2;
			continue;
		case 'f':
			*o++ = '\f';
			q += 2;
			continue;
		case 'n':
			*o++ = '\n';
			q += 2;
			continue;
		case 'r':
			*o++ = '\r';
			q += 2;
			continue;
		case 't':
			*o++ = '\t';
			q += 2;
			continue;
		case 'u': break;
		default: return fail(ps, TB_E_JSON_SYNTAX, q, "invalid escape");
		}
		if (s - q < 6 || hex4(q + 2, &cp) != 0)
			return fail(ps, TB_E_JSON_SYNTAX, q, "invalid \\u escape");
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return fail(ps, TB_E_JSON_SURROGATE, q, "lone low surrogate");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (s - q < 12 || q[6] != '\\' || q[7] != 'u' || hex4(q + 8, &lo) != 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return fail(ps, TB_E_JSON_SURROGATE, q, "lone high surrogate");
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			q += 12;
		} else {
			q += 6;
		}
		o += put_utf8(o, cp);
	}
	*o = '\0';
	*outlen = (size_t)(o - buf);
	return TB_OK;
}

static int
parse_string(struct parser *ps, const char **out, size_t *outlen)
{
	const uint8_t *q = ps->p + 1, *s;
	bool escapes = false;
	char *buf;

	/* Pass 1: find the end, validate UTF-8 and control characters. */
	for (s = q;;) {
		/* eight plain ASCII bytes at a time (no '"', '\\', control or
		 * non-ASCII byte): the run of hex and base64 most strings are */
		while (ps->end - s >= 8 && plain8(s))
			s += 8;
		if (s >= ps->end)
			return fail(ps, TB_E_JSON_SYNTAX, ps->p, "unterminated string");
		if (*s == '"')
			break;
		if (*s == '\\') {
			escapes = true;
			if (s + 1 >= ps->end)
				return fail(ps, TB_E_JSON_SYNTAX, s, "unterminated string");
			s += 2;
			continue;
		}
		if (*s < 0x20)
			return fail(ps, TB_E_JSON_SYNTAX, s, "control character in string");
		if (*s < 0x80) {
			s++;
			continue;
		}
		size_t k = utf8_seq(s, (size_t)(ps->end - s));
		if (k == 0)
			return fail(ps, TB_E_JSON_UTF8, s, "invalid UTF-8 in string");
		s += k;
	}
	if ((buf = arena_alloc(ps->doc, (size_t)(s - q) + 1)) == NULL)
		return fail(ps, TB_E_NOMEM, q, "out of memory");
	if (!escapes) {
		memcpy(buf, q, (size_t)(s - q));
		buf[s - q] = '\0';
		*out = buf;
		*outlen = (size_t)(s - q);
		ps->p = s + 1;
		return TB_OK;
	}
	/* Pass 2: decode escapes. */
	int rc = decode_escapes(ps, q, s, buf, outlen);
	if (rc != TB_OK)
		return rc;
	*out = buf;
	ps->p = s + 1;
	return TB_OK;
}

static int
parse_number(struct parser *ps, struct tb_json **out)
{
	const uint8_t *s = ps->p, *q = ps->p;
	char small[64], *tmp = small;
	double v;

	if (q < ps->end && *q == '-')
		q++;
	if (q >= ps->end || !(*q >= '0' && *q <= '9'))
		return fail(ps, TB_E_JSON_SYNTAX, q, "invalid number");
	if (*q == '0') {
		q++;
		if (q < ps->end && *q >= '0' && *q <= '9')
			return fail(ps, TB_E_JSON_SYNTAX, q, "leading zero in number");
	} else {
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && *q == '.') {
		q++;
		if (q >= ps->end || !(*q >= '0' && *q <= '9'))
			return fail(ps, TB_E_JSON_SYNTAX, q, "digit expected after '.'");
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || !(*q >= '0' && *q <= '9'))
			return fail(ps, TB_E_JSON_SYNTAX, q, "digit expected in exponent");
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	size_t n = (size_t)(q - s);
	if (n >= sizeof(small) && (tmp = malloc(n + 1)) == NULL)
		return fail(ps, TB_E_NOMEM, s, "out of memory");
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	/* strtod rounds correctly (glibc); the grammar above is stricter
	 * than strtod's, so it consumes exactly n bytes. */
	v = strtod(tmp, NULL);
	if (tmp != small)
		free(tmp);
	if (isinf(v))
		return fail(ps, TB_E_JSON_NUMBER, s, "number outside the double range");
	if ((*out = new_value(ps->doc, TB_JSON_NUMBER)) == NULL)
		return fail(ps, TB_E_NOMEM, s, "out of memory");
	(*out)->u.num = v == 0 ? 0.0 : v; /* -0 is 0 in the canonical form */
	ps->p = q;
	return TB_OK;
}

static bool
key_eq(const struct tb_json *a, const struct tb_json *b)
{
	return a->keylen == b->keylen && memcmp(a->key, b->key, a->keylen) == 0;
}

static int
cmp_raw_key(const void *x, const void *y)
{
	const struct tb_json *a = *(const struct tb_json *const *)x;
	const struct tb_json *b = *(const struct tb_json *const *)y;
	size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
	int c = memcmp(a->key, b->key, n);

	if (c != 0)
		return c;
	return a->keylen < b->keylen ? -1 : a->keylen > b->keylen;
}

/* Finds a duplicate member name; returns the later one or NULL. */
static const struct tb_json *
find_duplicate(const struct tb_json *obj)
{
	size_t n = obj->u.c.count;

	if (n < 2)
		return NULL;
	if (n <= 16) {
		for (const struct tb_json *a = obj->u.c.first; a; a = a->next)
			for (const struct tb_json *b = a->next; b; b = b->next)
				if (key_eq(a, b))
					return b;
		return NULL;
	}
	const struct tb_json **v = malloc(n * sizeof(*v)), *dup = NULL;
	if (v == NULL)
		return obj; /* caller reports; memory error path */
	size_t i = 0;
	for (const struct tb_json *a = obj->u.c.first; a; a = a->next)
		v[i++] = a;
	qsort(v, n, sizeof(*v), cmp_raw_key);
	for (i = 1; i < n && dup == NULL; i++)
		if (key_eq(v[i - 1], v[i]))
			dup = v[i];
	free(v);
	return dup;
}

static int
parse_container(struct parser *ps, struct tb_json **out)
{
	bool is_obj = *ps->p == '{';
	const uint8_t *open = ps->p;
	struct tb_json *c, *v;
	char close = is_obj ? '}' : ']';

	if (++ps->depth > ps->max_depth)
		return fail(ps, TB_E_JSON_DEPTH, ps->p, "nesting deeper than the limit");
	if ((c = new_value(ps->doc, is_obj ? TB_JSON_OBJECT : TB_JSON_ARRAY)) == NULL)
		return fail(ps, TB_E_NOMEM, ps->p, "out of memory");
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		goto done;
	}
	for (;;) {
		const char *key = NULL;
		size_t keylen = 0;
		const uint8_t *keypos = ps->p;

		skip_ws(ps);
		if (is_obj) {
			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, TB_E_JSON_SYNTAX, ps->p, "member name expected");
			keypos = ps->p;
			if (parse_string(ps, &key, &keylen) != TB_OK)
				return ps->err;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return fail(ps, TB_E_JSON_SYNTAX, ps->p, "':' expected");
			ps->p++;
			skip_ws(ps);
		}
		if (parse_value(ps, &v) != TB_OK)
			return ps->err;
		v->key = key;
		v->keylen = keylen;
		if (is_obj) {
			v->span_from = (size_t)(keypos - ps->start);
			v->span_to = (size_t)(ps->p - ps->start);
		}
		container_add(c, v);
		skip_ws(ps);
		if (ps->p >= ps->end)
			return fail(ps, TB_E_JSON_SYNTAX, ps->p,
			            is_obj ? "unterminated object" : "unterminated array");
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			break;
		}
		return fail(ps, TB_E_JSON_SYNTAX, ps->p,
		            is_obj ? "',' or '}' expected" : "',' or ']' expected");
	}
	if (is_obj) {
		const struct tb_json *dup = find_duplicate(c);
		if (dup == c)
			return fail(ps, TB_E_NOMEM, open, "out of memory");
		if (dup != NULL) {
			char what[96];
			snprintf(what, sizeof(what), "duplicate member name \"%.60s\"", dup->key);
			return fail(ps, TB_E_JSON_DUPKEY, open, what);
		}
	}
done:
	ps->depth--;
	*out = c;
	return TB_OK;
}

static int
parse_literal(struct parser *ps, const char *word, enum tb_json_kind k, struct tb_json **out)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, TB_E_JSON_SYNTAX, ps->p, "invalid literal");
	if ((*out = new_value(ps->doc, k)) == NULL)
		return fail(ps, TB_E_NOMEM, ps->p, "out of memory");
	ps->p += n;
	return TB_OK;
}

static int
parse_value(struct parser *ps, struct tb_json **out)
{
	if (ps->p >= ps->end)
		return fail(ps, TB_E_JSON_SYNTAX, ps->p, "value expected");
	switch (*ps->p) {
	case '{':
	case '[': return parse_container(ps, out);
	case '"': {
		const char *s;
		size_t n;
		const uint8_t *at = ps->p;
		if (parse_string(ps, &s, &n) != TB_OK)
			return ps->err;
		if ((*out = new_value(ps->doc, TB_JSON_STRING)) == NULL)
			return fail(ps, TB_E_NOMEM, at, "out of memory");
		(*out)->u.str.s = s;
		(*out)->u.str.len = n;
		return TB_OK;
	}
	case 't': return parse_literal(ps, "true", TB_JSON_TRUE, out);
	case 'f': return parse_literal(ps, "false", TB_JSON_FALSE, out);
	case 'n': return parse_literal(ps, "null", TB_JSON_NULL, out);
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps, out);
		if (*ps->p >= 0x80 && utf8_seq(ps->p, (size_t)(ps->end - ps->p)) == 0)
			return fail(ps, TB_E_JSON_UTF8, ps->p, "invalid UTF-8");
		return fail(ps, TB_E_JSON_SYNTAX, ps->p, "unexpected character");
	}
}

struct tb_json_doc *
tb_json_parse(const uint8_t *text, size_t len, const struct tb_json_limits *limits,
              struct tb_diag *d)
{
	struct parser ps;
	struct tb_json *root;
	size_t bad;

	if (limits == NULL)
		limits = &tb_json_default_limits;
	tb_diag_clear(d);
	if (len > limits->max_size) {
		tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "%zu bytes, limit %zu", len,
		            limits->max_size);
		return NULL;
	}
	memset(&ps, 0, sizeof(ps));
	ps.start = ps.p = text;
	ps.end = text + len;
	ps.max_depth = limits->max_depth;
	ps.d = d;
	if ((ps.doc = tb_json_doc_new()) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		return NULL;
	}
	/* UTF-8 first (PROTOCOL.md 2.1): an input that is not UTF-8 is
	 * json.utf8 whatever else is wrong with it */
	if ((bad = utf8_first_bad(text, len)) < len) {
		fail(&ps, TB_E_JSON_UTF8, text + bad, "invalid UTF-8");
		goto fail;
	}
	if (len >= 3 && text[0] == 0xef && text[1] == 0xbb && text[2] == 0xbf) {
		fail(&ps, TB_E_JSON_SYNTAX, text, "byte order mark not allowed");
		goto fail;
	}
	skip_ws(&ps);
	if (parse_value(&ps, &root) != TB_OK)
		goto fail;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, TB_E_JSON_SYNTAX, ps.p, "trailing data after the JSON value");
		goto fail;
	}
	ps.doc->root = root;
	return ps.doc;
fail:
	tb_json_doc_free(ps.doc);
	return NULL;
}

/* ---- accessors ---- */

enum tb_json_kind
tb_json_kind(const struct tb_json *v)
{
	return (enum tb_json_kind)v->kind;
}

double
tb_json_number(const struct tb_json *v)
{
	return v->kind == TB_JSON_NUMBER ? v->u.num : 0.0;
}

bool
tb_json_integer(const struct tb_json *v, int64_t *out)
{
	double x;

	if (v == NULL || v->kind != TB_JSON_NUMBER)
		return false;
	x = v->u.num;
	if (x != floor(x) || x < -9007199254740992.0 || x > 9007199254740992.0)
		return false;
	*out = (int64_t)x;
	return true;
}

const char *
tb_json_string(const struct tb_json *v, size_t *len)
{
	if (v == NULL || v->kind != TB_JSON_STRING)
		return NULL;
	if (len != NULL)
		*len = v->u.str.len;
	return v->u.str.s;
}

size_t
tb_json_count(const struct tb_json *v)
{
	return v != NULL && (v->kind == TB_JSON_ARRAY || v->kind == TB_JSON_OBJECT) ? v->u.c.count
	                                                                           : 0;
}

struct tb_json *
tb_json_first(const struct tb_json *v)
{
	return v != NULL && (v->kind == TB_JSON_ARRAY || v->kind == TB_JSON_OBJECT) ? v->u.c.first
	                                                                           : NULL;
}

struct tb_json *
tb_json_next(const struct tb_json *v)
{
	return v == NULL ? NULL : v->next;
}

const char *
tb_json_key(const struct tb_json *member, size_t *len)
{
	if (len != NULL)
		*len = member->keylen;
	return member->key;
}

struct tb_json *
tb_json_get(const struct tb_json *obj, const char *key)
{
	size_t n = strlen(key);

	if (obj == NULL || obj->kind != TB_JSON_OBJECT)
		return NULL;
	for (struct tb_json *m = obj->u.c.first; m != NULL; m = m->next)
		if (m->keylen == n && memcmp(m->key, key, n) == 0)
			return m;
	return NULL;
}

/* ---- builders ---- */

struct tb_json *
tb_json_new_object(struct tb_json_doc *doc)
{
	return new_value(doc, TB_JSON_OBJECT);
}

struct tb_json *
tb_json_new_array(struct tb_json_doc *doc)
{
	return new_value(doc, TB_JSON_ARRAY);
}

struct tb_json *
tb_json_new_string(struct tb_json_doc *doc, const char *s, size_t len)
{
	struct tb_json *v = new_value(doc, TB_JSON_STRING);
	char *copy;

	if (!tb_utf8_valid((const uint8_t *)s, len))
		return NULL;
	if (v == NULL || (copy = arena_alloc(doc, len + 1)) == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	v->u.str.s = copy;
	v->u.str.len = len;
	return v;
}

struct tb_json *
tb_json_new_number(struct tb_json_doc *doc, double n)
{
	struct tb_json *v;

	if (!isfinite(n) || (v = new_value(doc, TB_JSON_NUMBER)) == NULL)
		return NULL;
	v->u.num = n == 0 ? 0.0 : n;
	return v;
}

struct tb_json *
tb_json_new_literal(struct tb_json_doc *doc, enum tb_json_kind k)
{
	if (k != TB_JSON_NULL && k != TB_JSON_TRUE && k != TB_JSON_FALSE)
		return NULL;
	return new_value(doc, k);
}

int
tb_json_append(struct tb_json *arr, struct tb_json *v)
{
	if (arr == NULL || v == NULL || arr->kind != TB_JSON_ARRAY)
		return TB_E_ARG;
	v->key = NULL;
	v->keylen = 0;
	container_add(arr, v);
	return TB_OK;
}

void
tb_json_remove(struct tb_json *obj, const char *key)
{
	size_t n = strlen(key);
	struct tb_json *prev = NULL;

	if (obj == NULL || obj->kind != TB_JSON_OBJECT)
		return;
	for (struct tb_json *m = obj->u.c.first; m != NULL; prev = m, m = m->next) {
		if (m->keylen != n || memcmp(m->key, key, n) != 0)
			continue;
		if (prev == NULL)
			obj->u.c.first = m->next;
		else
			prev->next = m->next;
		if (obj->u.c.last == m)
			obj->u.c.last = prev;
		obj->u.c.count--;
		return;
	}
}

int
tb_json_set(struct tb_json_doc *doc, struct tb_json *obj, const char *key, struct tb_json *v)
{
	size_t n;
	char *k;

	if (obj == NULL || v == NULL || obj->kind != TB_JSON_OBJECT)
		return TB_E_ARG;
	n = strlen(key);
	if (!tb_utf8_valid((const uint8_t *)key, n))
		return TB_E_ARG;
	if ((k = arena_alloc(doc, n + 1)) == NULL)
		return TB_E_NOMEM;
	memcpy(k, key, n + 1);
	tb_json_remove(obj, key);
	v->key = k;
	v->keylen = n;
	container_add(obj, v);
	return TB_OK;
}

/* ---- RFC 8785 serialisation ---- */

/* Replaces the p-digit "d.ddde[+-]x" text in e by the next p-digit
 * decimal up (last digit + 1, with carry).  False if e is not of that form. */
static bool
next_up_digits(char *e, size_t esz, int p)
{
	char digits[20];
	int k = 0, exp10;
	const char *c = e;

	for (; *c != 'e'; c++) {
		if (*c == '\0' || k >= p)
			return false;
		if (*c != '.')
			digits[k++] = *c;
	}
	exp10 = atoi(c + 1);
	int i = k - 1;
	while (i >= 0 && digits[i] == '9')
		digits[i--] = '0';
	if (i < 0) {
		digits[0] = '1'; /* 9.99 -> 10.0: one more decade */
		exp10++;
	} else {
		digits[i]++;
	}
	if (k == 1)
		snprintf(e, esz, "%ce%d", digits[0], exp10);
	else
		snprintf(e, esz, "%c.%.*se%d", digits[0], k - 1, digits + 1, exp10);
	return true;
}

size_t
tb_json_fmt_number(double v, char out[32])
{
	char e[40], digits[20];
	int k = 0, exp10, n;
	size_t o = 0;

	if (v == 0 || !isfinite(v)) {
		out[0] = '0';
		out[1] = '\0';
		return 1;
	}
	if (v < 0) {
		out[o++] = '-';
		v = -v;
	}
	if (v < 9007199254740992.0 && v == floor(v)) {
		/* integers below 2^53: plain digits are already the ES form;
		 * written by hand, printf's float path is slow */
		uint64_t u = (uint64_t)v;
		char tmp[20];
		int nd = 0;
		do {
			tmp[nd++] = (char)('0' + u % 10);
			u /= 10;
		} while (u != 0);
		while (nd > 0)
			out[o++] = tmp[--nd];
		out[o] = '\0';
		return o;
	}
	/* Shortest digit string that reads back as v: the correctly rounded
	 * p-digit form for the smallest p that round-trips is the one the
	 * ECMAScript algorithm picks -- except at a power of two, where the
	 * doubles below are twice as dense as above: the closest p-digit
	 * value may fall just outside the narrow lower half-gap while the
	 * next p-digit value up lies inside the wide upper one (2^-1020 is
	 * 8.900295434028806e-308, not the 17-digit ...8058e-308). */
	int mexp;
	bool pow2 = frexp(v, &mexp) == 0.5;
	for (int p = 1; p <= 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p - 1, v);
		if (strtod(e, NULL) == v)
			break;
		if (pow2 && next_up_digits(e, sizeof(e), p) && strtod(e, NULL) == v)
			break;
	}
	/* e is "d[.ddd]e[+-]xx" */
	const char *c = e;
	for (; *c != 'e'; c++)
		if (*c != '.')
			digits[k++] = *c;
	exp10 = atoi(c + 1);
	n = exp10 + 1; /* v = 0.d1d2...dk * 10^n */
	if (k <= n && n <= 21) {
		memcpy(out + o, digits, (size_t)k);
		o += (size_t)k;
		for (int i = 0; i < n - k; i++)
			out[o++] = '0';
	} else if (0 < n && n <= 21) {
		memcpy(out + o, digits, (size_t)n);
		o += (size_t)n;
		out[o++] = '.';
		memcpy(out + o, digits + n, (size_t)(k - n));
		o += (size_t)(k - n);
	} else if (-6 < n && n <= 0) {
		out[o++] = '0';
		out[o++] = '.';
		for (int i = 0; i < -n; i++)
			out[o++] = '0';
		memcpy(out + o, digits, (size_t)k);
		o += (size_t)k;
	} else {
		out[o++] = digits[0];
		if (k > 1) {
			out[o++] = '.';
			memcpy(out + o, digits + 1, (size_t)(k - 1));
			o += (size_t)(k - 1);
		}
		o += (size_t)snprintf(out + o, 32 - o, "e%c%d", n - 1 < 0 ? '-' : '+',
		                      n - 1 < 0 ? 1 - n : n - 1);
	}
	out[o] = '\0';
	return o;
}

static int
canon_string(const char *s, size_t n, struct tb_buf *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;

	if (tb_buf_reserve(out, n + 2) != TB_OK)
		return TB_E_NOMEM;
	tb_buf_addc(out, '"');
	for (size_t i = 0; i < n; i++) {
		while (n - i >= 8 && nospecial8((const uint8_t *)s + i))
			i += 8;
		if (i >= n)
			break;
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (tb_buf_add(out, s + run, i - run) != TB_OK)
			return TB_E_NOMEM;
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
		}
		if (tb_buf_add(out, esc, elen) != TB_OK)
			return TB_E_NOMEM;
	}
	if (tb_buf_add(out, s + run, n - run) != TB_OK || tb_buf_addc(out, '"') != TB_OK)
		return TB_E_NOMEM;
	return TB_OK;
}

/* Next UTF-16 code unit of a UTF-8 string (already validated), with a
 * pending low surrogate kept in *pend. Returns -1 at the end. */
static int
next_unit(const unsigned char **p, const unsigned char *end, unsigned *pend)
{
	unsigned cp;
	const unsigned char *s = *p;

	if (*pend != 0) {
		cp = *pend;
		*pend = 0;
		return (int)cp;
	}
	if (s >= end)
		return -1;
	if (s[0] < 0x80) {
		cp = s[0];
		s += 1;
	} else if (s[0] < 0xe0) {
		cp = (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
		s += 2;
	} else if (s[0] < 0xf0) {
		cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
		s += 3;
	} else {
		cp = (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 |
		     (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
		s += 4;
	}
	*p = s;
	if (cp >= 0x10000) {
		cp -= 0x10000;
		*pend = 0xdc00 | (cp & 0x3ff);
		return (int)(0xd800 | cp >> 10);
	}
	return (int)cp;
}

/* Orders member names by their UTF-16 code units (RFC 8785 3.2.3). */
static int
cmp_utf16(const void *x, const void *y)
{
	const struct tb_json *a = *(const struct tb_json *const *)x;
	const struct tb_json *b = *(const struct tb_json *const *)y;
	const unsigned char *p = (const unsigned char *)a->key, *pe = p + a->keylen;
	const unsigned char *q = (const unsigned char *)b->key, *qe = q + b->keylen;
	unsigned pp = 0, pq = 0;

	/* Skip the common ASCII prefix quickly; UTF-16 order equals byte
	 * order there. */
	while (p < pe && q < qe && *p == *q && *p < 0x80) {
		p++;
		q++;
	}
	for (;;) {
		int u = next_unit(&p, pe, &pp), w = next_unit(&q, qe, &pq);
		if (u != w)
			return u < w ? -1 : 1;
		if (u < 0)
			return 0;
	}
}

static bool
omitted(const struct tb_json *m, const char *const *omit)
{
	for (; omit != NULL && *omit != NULL; omit++)
		if (strlen(*omit) == m->keylen && memcmp(*omit, m->key, m->keylen) == 0)
			return true;
	return false;
}

static int
canon(const struct tb_json *v, const char *const *omit, struct tb_buf *out)
{
	char num[32];
	size_t n;

	switch (v->kind) {
	case TB_JSON_NULL: return tb_buf_add(out, "null", 4);
	case TB_JSON_TRUE: return tb_buf_add(out, "true", 4);
	case TB_JSON_FALSE: return tb_buf_add(out, "false", 5);
	case TB_JSON_NUMBER: n = tb_json_fmt_number(v->u.num, num); return tb_buf_add(out, num, n);
	case TB_JSON_STRING: return canon_string(v->u.str.s, v->u.str.len, out);
	case TB_JSON_ARRAY:
		if (tb_buf_addc(out, '[') != TB_OK)
			return TB_E_NOMEM;
		for (const struct tb_json *e = v->u.c.first; e != NULL; e = e->next) {
			if (e != v->u.c.first && tb_buf_addc(out, ',') != TB_OK)
				return TB_E_NOMEM;
			if (canon(e, NULL, out) != TB_OK)
				return TB_E_NOMEM;
		}
		return tb_buf_addc(out, ']');
	default: break;
	}
	/* object */
	const struct tb_json *stackv[32], **mv = stackv;
	size_t cnt = 0;
	int rc = TB_OK;

	if (v->u.c.count > 32 && (mv = malloc(v->u.c.count * sizeof(*mv))) == NULL)
		return TB_E_NOMEM;
	for (const struct tb_json *m = v->u.c.first; m != NULL; m = m->next)
		if (!omitted(m, omit))
			mv[cnt++] = m;
	/* parsed canonical text (what peers send) is in order already */
	size_t k = 1;
	while (k < cnt && cmp_utf16(&mv[k - 1], &mv[k]) < 0)
		k++;
	if (k < cnt)
		qsort(mv, cnt, sizeof(*mv), cmp_utf16);
	if (tb_buf_addc(out, '{') != TB_OK)
		rc = TB_E_NOMEM;
	for (size_t i = 0; i < cnt && rc == TB_OK; i++) {
		if ((i > 0 && tb_buf_addc(out, ',') != TB_OK) ||
		    canon_string(mv[i]->key, mv[i]->keylen, out) != TB_OK ||
		    tb_buf_addc(out, ':') != TB_OK || canon(mv[i], NULL, out) != TB_OK)
			rc = TB_E_NOMEM;
	}
	if (rc == TB_OK)
		rc = tb_buf_addc(out, '}');
	if (mv != stackv)
		free(mv);
	return rc;
}

bool
tb_json_member_span(const struct tb_json *m, size_t *from, size_t *to)
{
	if (m == NULL || m->span_to == 0)
		return false;
	*from = m->span_from;
	*to = m->span_to;
	return true;
}

int
tb_json_canon(const struct tb_json *v, const char *const *omit, struct tb_buf *out)
{
	return canon(v, omit, out);
}
