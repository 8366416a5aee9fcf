/* SPDX-License-Identifier: Apache-2.0 */
/* test_json.c - strict I-JSON parser and RFC 8785 serialiser (protocol/tb_json). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/tb_json.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

#ifndef TB_SRCDIR
#define TB_SRCDIR "."
#endif

/* Reads a whole file; aborts the test when it is missing. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	do {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			p = realloc(p, cap);
			assert_non_null(p);
		}
		r = fread(p + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	p[n] = '\0';
	*len = n;
	return p;
}

/* Canonical form of text, or NULL with d filled. Caller frees. */
static char *
canon_of(const char *text, size_t len, const struct tb_json_limits *lim, struct tb_diag *d)
{
	struct tb_json_doc *doc = tb_json_parse((const uint8_t *)text, len, lim, d);
	struct tb_buf b;
	char *s;

	if (doc == NULL)
		return NULL;
	tb_buf_init(&b);
	assert_int_equal(tb_json_canon(tb_json_root(doc), NULL, &b), TB_OK);
	s = malloc(b.len + 1);
	assert_non_null(s);
	memcpy(s, b.data, b.len + 1);
	tb_buf_free(&b);
	tb_json_doc_free(doc);
	return s;
}

static void
expect_canon(const char *in, const char *want)
{
	struct tb_diag d;
	char *got = canon_of(in, strlen(in), NULL, &d);

	if (got == NULL)
		fail_msg("parse of %s failed: %s at %zu (%s)", in, tb_err_reason(d.code), d.offset,
		         d.detail);
	if (strcmp(got, want) != 0)
		fail_msg("canon(%s) = %s, want %s", in, got, want);
	free(got);
}

/* ---- RFC 8785 vectors ---- */

static void
test_jcs_vectors(void **state)
{
	static const char *const names[] = {"arrays",  "french", "structures",
	                                    "unicode", "values", "weird"};
	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char pin[1024], pout[1024];
		size_t lin, lout;
		struct tb_diag d;

		snprintf(pin, sizeof(pin), "%s/interop/vectors/jcs/input/%s.json", TB_SRCDIR,
		         names[i]);
		snprintf(pout, sizeof(pout), "%s/interop/vectors/jcs/output/%s.json", TB_SRCDIR,
		         names[i]);
		uint8_t *in = slurp(pin, &lin), *want = slurp(pout, &lout);
		char *got = canon_of((const char *)in, lin, NULL, &d);
		if (got == NULL)
			fail_msg("%s: %s at %zu", names[i], tb_err_reason(d.code), d.offset);
		if (strlen(got) != lout || memcmp(got, want, lout) != 0)
			fail_msg("%s: got %s\nwant %s", names[i], got, (char *)want);
		/* canonical form is a fixed point */
		char *again = canon_of(got, strlen(got), NULL, &d);
		assert_non_null(again);
		assert_string_equal(again, got);
		free(again);
		free(got);
		free(in);
		free(want);
	}
}

/* ---- ES6 numbers against node.js's output (interop/vectors/numbers.txt) ---- */

static void
test_numbers_oracle(void **state)
{
	char path[1024], line[256];
	FILE *f;
	size_t lines = 0;
	unsigned failures = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/interop/vectors/numbers.txt", TB_SRCDIR);
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("cannot open %s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		char hex[32], want[64], got[32], text[64];
		uint64_t bits;
		double x;
		struct tb_diag d;

		if (line[0] == '#')
			continue;
		if (sscanf(line, "%31s %63s", hex, want) != 2)
			fail_msg("bad line: %s", line);
		bits = strtoull(hex, NULL, 16);
		memcpy(&x, &bits, sizeof(x));
		lines++;
		/* 1: the formatter itself */
		size_t n = tb_json_fmt_number(x, got);
		if (n != strlen(got) || strcmp(got, want) != 0) {
			if (failures++ < 20)
				print_error("fmt %s (%.17g): got %s want %s\n", hex, x, got, want);
			continue;
		}
		/* 2: parsing the expected text gives back the same canonical text */
		char *c = canon_of(want, strlen(want), NULL, &d);
		if (c == NULL || strcmp(c, want) != 0) {
			if (failures++ < 20)
				print_error("canon(%s) = %s\n", want,
				            c ? c : tb_err_reason(d.code));
		}
		free(c);
		/* 3: a different, exact spelling of the same double */
		snprintf(text, sizeof(text), "%.17e", x);
		c = canon_of(text, strlen(text), NULL, &d);
		if (c == NULL || strcmp(c, want) != 0) {
			if (failures++ < 20)
				print_error("canon(%s) = %s want %s\n", text,
				            c ? c : tb_err_reason(d.code), want);
		}
		free(c);
	}
	fclose(f);
	if (lines < 2000)
		fail_msg("only %zu vectors in %s", lines, path);
	if (failures != 0)
		fail_msg("%u of %zu number vectors failed", failures, lines);
}

static void
test_number_spellings(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
	    {"-0", "0"},
	    {"-0.0", "0"},
	    {"0e10", "0"},
	    {"1E2", "100"},
	    {"1.0", "1"},
	    {"0.1e1", "1"},
	    {"1e-400", "0"},
	    {"-1e-400", "0"},
	    {"1e21", "1e+21"},
	    {"1e20", "100000000000000000000"},
	    {"1e-7", "1e-7"},
	    {"0.000001", "0.000001"},
	    {"123456789012345678901234567890", "1.2345678901234568e+29"},
	    {"1.7976931348623157e308", "1.7976931348623157e+308"},
	    {"1.7976931348623158e308", "1.7976931348623157e+308"},
	    {"4.9406564584124654e-324", "5e-324"},
	    {"2e-324", "0"},
	    {"3e-324", "5e-324"},
	    {"[9007199254740993]", "[9007199254740992]"},
	    {"0.30000000000000004", "0.30000000000000004"},
	    {"1E+2", "100"},
	    {"-1e-7", "-1e-7"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		expect_canon(v[i].in, v[i].out);

	/* 1000-digit mantissas: exact rounding, no length limit */
	char big[1100], tiny[1100];
	memset(big, '0', sizeof(big));
	big[0] = '1';
	big[400] = '\0'; /* 1e399: out of range */
	struct tb_diag d;
	assert_null(canon_of(big, strlen(big), NULL, &d));
	assert_int_equal(d.code, TB_E_JSON_NUMBER);
	big[300] = '\0'; /* 1e299 */
	expect_canon(big, "1e+299");
	memset(tiny, '0', sizeof(tiny));
	tiny[1] = '.';
	tiny[1050] = '1';
	tiny[1051] = '\0';
	expect_canon(tiny, "0");
	tiny[1] = '.';
	tiny[2] = '1';
	expect_canon(tiny, "0.1");
}

/* ---- strings and UTF-16 member order ---- */

static void
test_strings(void **state)
{
	(void)state;
	/* U+0000 round-trips as \u0000; controls use the short forms when
	 * RFC 8785 has one, lowercase \u00xx otherwise */
	expect_canon("\"a\\u0000b\"", "\"a\\u0000b\"");
	expect_canon("\"\\u0001\\u001F\\u0008\\u0009\\u000a\\u000C\\u000d\"",
	             "\"\\u0001\\u001f\\b\\t\\n\\f\\r\"");
	expect_canon("\"\\/\\\\\\\"\"", "\"/\\\\\\\"\"");
	expect_canon("\"\\u00e9\\u20AC\\ud83d\\ude00\"",
	             "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	expect_canon("\"\x7f\xe2\x80\xa8\"", "\"\x7f\xe2\x80\xa8\""); /* DEL, U+2028 raw */
	expect_canon("\"\\uDBFF\\uDFFF\"", "\"\xf4\x8f\xbf\xbf\"");
	expect_canon("{\"\\u0000\":1,\"\":2}", "{\"\":2,\"\\u0000\":1}");

	/* the decoded string keeps its NUL and its length */
	struct tb_diag d;
	struct tb_json_doc *doc = tb_json_parse((const uint8_t *)"\"a\\u0000b\"", 10, NULL, &d);
	size_t n = 0;
	assert_non_null(doc);
	const char *s = tb_json_string(tb_json_root(doc), &n);
	assert_int_equal(n, 3);
	assert_memory_equal(s, "a\0b", 4);
	tb_json_doc_free(doc);
}

/* Members' spans in the parsed text: name through value, whitespace
 * outside; none for built values or array elements. */
static void
test_member_span(void **state)
{
	static const char t[] = "{ \"a\" : [1, {\"x\":\"}\"}] ,\"b\\\"c\":\"q\\\\\"}";
	struct tb_diag d;
	struct tb_json_doc *doc = tb_json_parse((const uint8_t *)t, strlen(t), NULL, &d);
	const struct tb_json *a, *b;
	size_t from, to;

	(void)state;
	assert_non_null(doc);
	a = tb_json_get(tb_json_root(doc), "a");
	b = tb_json_get(tb_json_root(doc), "b\"c");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(tb_json_member_span(a, &from, &to));
	assert_int_equal(to - from, strlen("\"a\" : [1, {\"x\":\"}\"}]"));
	assert_memory_equal(t + from, "\"a\" : [1, {\"x\":\"}\"}]", to - from);
	assert_true(tb_json_member_span(b, &from, &to));
	assert_memory_equal(t + from, "\"b\\\"c\":\"q\\\\\"", to - from);
	assert_int_equal(to, strlen(t) - 1);
	/* an array element and the root are no members */
	assert_false(tb_json_member_span(tb_json_first(a), &from, &to));
	assert_false(tb_json_member_span(tb_json_root(doc), &from, &to));
	/* a member set afterwards has no text */
	struct tb_json *n = tb_json_new_string(doc, "v", 1);
	assert_int_equal(tb_json_set(doc, tb_json_root(doc), "n", n), TB_OK);
	assert_false(tb_json_member_span(tb_json_get(tb_json_root(doc), "n"), &from, &to));
	tb_json_doc_free(doc);
}

/* Long strings go through the eight-bytes-at-a-time scan: every special
 * byte is still found wherever it sits in a block of eight. */
static void
test_string_blocks(void **state)
{
	(void)state;
	for (size_t pos = 0; pos < 20; pos++) {
		char in[64], want[64];
		struct tb_diag d;
		/* a quote ends the string early: trailing garbage */
		memset(in, 'a', sizeof(in));
		in[0] = '"';
		in[1 + pos] = '"';
		in[40] = '\0';
		assert_null(tb_json_parse((const uint8_t *)in, 40, NULL, &d));
		/* a control byte is refused */
		memset(in, 'a', sizeof(in));
		in[0] = '"';
		in[1 + pos] = '\x1f';
		in[39] = '"';
		in[40] = '\0';
		assert_null(tb_json_parse((const uint8_t *)in, 40, NULL, &d));
		assert_int_equal(d.code, TB_E_JSON_SYNTAX);
		/* bad UTF-8 is refused, good UTF-8 kept */
		in[1 + pos] = '\xff';
		assert_null(tb_json_parse((const uint8_t *)in, 40, NULL, &d));
		assert_int_equal(d.code, TB_E_JSON_UTF8);
		in[1 + pos] = '\xc3';
		in[2 + pos] = '\xa9';
		snprintf(want, sizeof(want), "\"%.*s\xc3\xa9%.*s\"", (int)pos,
		         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", (int)(36 - pos),
		         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		expect_canon(in, want);
		/* an escaped quote does not end it */
		memset(in, 'a', sizeof(in));
		in[0] = '"';
		in[1 + pos] = '\\';
		in[2 + pos] = '"';
		in[39] = '"';
		in[40] = '\0';
		snprintf(want, sizeof(want), "\"%.*s\\\"%.*s\"", (int)pos,
		         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", (int)(36 - pos),
		         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		expect_canon(in, want);
		/* a control character, escaped: canonical output goes through the
		 * same eight-byte scan */
		memset(in, 'a', sizeof(in));
		in[0] = '"';
		memcpy(in + 1 + pos, "\\u0001", 6);
		in[39] = '"';
		in[40] = '\0';
		snprintf(want, sizeof(want), "\"%.*s\\u0001%.*s\"", (int)pos,
		         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", (int)(32 - pos),
		         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		expect_canon(in, want);
		/* building a string checks its UTF-8 the same way */
		struct tb_json_doc *doc = tb_json_doc_new();
		char raw[40];
		memset(raw, 'b', sizeof(raw));
		assert_non_null(tb_json_new_string(doc, raw, sizeof(raw)));
		raw[pos] = '\x80';
		assert_null(tb_json_new_string(doc, raw, sizeof(raw)));
		raw[pos] = '\xc3';
		raw[pos + 1] = '\xa9';
		assert_non_null(tb_json_new_string(doc, raw, sizeof(raw)));
		raw[pos + 1] = 'b';
		assert_null(tb_json_new_string(doc, raw, sizeof(raw)));
		tb_json_doc_free(doc);
	}
}

static void
test_string_run(void **state)
{
	char b[40];

	(void)state;
	assert_int_equal(tb_json_string_run((const uint8_t *)"", 0), 0);
	for (size_t pos = 0; pos < 24; pos++) {
		memset(b, 'z', sizeof(b));
		b[pos] = '"';
		assert_int_equal(tb_json_string_run((const uint8_t *)b, sizeof(b)), pos);
		b[pos] = '\\';
		assert_int_equal(tb_json_string_run((const uint8_t *)b, sizeof(b)), pos);
		b[pos] = '\x80'; /* anything else runs on */
		assert_int_equal(tb_json_string_run((const uint8_t *)b, sizeof(b)), sizeof(b));
		assert_int_equal(tb_json_string_run((const uint8_t *)b, pos), pos);
	}
}

static void
test_utf16_order(void **state)
{
	(void)state;
	/* UTF-16 code unit order puts U+1F600 (D83D DE00) before U+E000 and
	 * U+FFFF; UTF-8 byte order would put it after them. */
	expect_canon("{\"\\uffff\":6,\"\\ue000\":5,\"\\ud83d\\ude00\":4,\"\\u20ac\":3,"
	             "\"\\u0080\":2,\"a\":1,\"ab\":7,\"\":0}",
	             "{\"\":0,\"a\":1,\"ab\":7,\"\xc2\x80\":2,\"\xe2\x82\xac\":3,"
	             "\"\xf0\x9f\x98\x80\":4,\"\xee\x80\x80\":5,\"\xef\xbf\xbf\":6}");
	/* supplementary characters compare by their surrogates */
	expect_canon("{\"\\udbff\\udfff\":2,\"\\ud800\\udc00\":1,\"\\ud7ff\":0,\"\\ue001\":3}",
	             "{\"\xed\x9f\xbf\":0,\"\xf0\x90\x80\x80\":1,\"\xf4\x8f\xbf\xbf\":2,"
	             "\"\xee\x80\x81\":3}");
	/* common prefix, then a non-ASCII difference */
	expect_canon("{\"x\\uffff\":2,\"x\\ud83d\\ude00\":1,\"x\":0}",
	             "{\"x\":0,\"x\xf0\x9f\x98\x80\":1,\"x\xef\xbf\xbf\":2}");

	/* in order but for the last pair, or the first: the in-order check
	 * that skips sorting must look at every neighbour */
	expect_canon("{\"a\":1,\"b\":2,\"c\":3,\"e\":5,\"d\":4}",
	             "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}");
	expect_canon("{\"b\":2,\"a\":1,\"c\":3}", "{\"a\":1,\"b\":2,\"c\":3}");
	/* in UTF-8 byte order but not in UTF-16 order: still sorted */
	expect_canon("{\"\\ue000\":1,\"\\ud83d\\ude00\":2}",
	             "{\"\xf0\x9f\x98\x80\":2,\"\xee\x80\x80\":1}");

	/* more than 32 members (heap path), given in reverse */
	struct tb_buf in, want;
	tb_buf_init(&in);
	tb_buf_init(&want);
	tb_buf_adds(&in, "{");
	tb_buf_adds(&want, "{");
	for (int i = 99; i >= 0; i--)
		tb_buf_printf(&in, "%s\"k%02d\":%d", i == 99 ? "" : ",", i, i);
	for (int i = 0; i < 100; i++)
		tb_buf_printf(&want, "%s\"k%02d\":%d", i == 0 ? "" : ",", i, i);
	tb_buf_adds(&in, "}");
	tb_buf_adds(&want, "}");
	expect_canon((const char *)in.data, (const char *)want.data);
	tb_buf_free(&in);
	tb_buf_free(&want);
}

/* ---- every error class, with its code and byte offset ---- */

struct errcase {
	const char *in;
	size_t len; /* 0: strlen */
	int code;
	size_t offset;
};

static const struct errcase errcases[] = {
    /* syntax */
    {"", 0, TB_E_JSON_SYNTAX, 0},
    {"   ", 0, TB_E_JSON_SYNTAX, 3},
    {"01", 0, TB_E_JSON_SYNTAX, 1},
    {"-01", 0, TB_E_JSON_SYNTAX, 2},
    {"[00]", 0, TB_E_JSON_SYNTAX, 2},
    {"+1", 0, TB_E_JSON_SYNTAX, 0},
    {"1.", 0, TB_E_JSON_SYNTAX, 2},
    {"1.e5", 0, TB_E_JSON_SYNTAX, 2},
    {".5", 0, TB_E_JSON_SYNTAX, 0},
    {"-", 0, TB_E_JSON_SYNTAX, 1},
    {"--1", 0, TB_E_JSON_SYNTAX, 1},
    {"1e", 0, TB_E_JSON_SYNTAX, 2},
    {"1e+", 0, TB_E_JSON_SYNTAX, 3},
    {"0x10", 0, TB_E_JSON_SYNTAX, 1},
    {"NaN", 0, TB_E_JSON_SYNTAX, 0},
    {"Infinity", 0, TB_E_JSON_SYNTAX, 0},
    {"-Infinity", 0, TB_E_JSON_SYNTAX, 1},
    {"[1,]", 0, TB_E_JSON_SYNTAX, 3},
    {"[1,,2]", 0, TB_E_JSON_SYNTAX, 3},
    {"{\"a\":1,}", 0, TB_E_JSON_SYNTAX, 7},
    {"{,}", 0, TB_E_JSON_SYNTAX, 1},
    {"[1 2]", 0, TB_E_JSON_SYNTAX, 3},
    {"{\"a\" 1}", 0, TB_E_JSON_SYNTAX, 5},
    {"{\"a\":}", 0, TB_E_JSON_SYNTAX, 5},
    {"{1:2}", 0, TB_E_JSON_SYNTAX, 1},
    {"{'a':2}", 0, TB_E_JSON_SYNTAX, 1},
    {"[", 0, TB_E_JSON_SYNTAX, 1},
    {"{", 0, TB_E_JSON_SYNTAX, 1},
    {"[1", 0, TB_E_JSON_SYNTAX, 2},
    {"]", 0, TB_E_JSON_SYNTAX, 0},
    {"\"abc", 0, TB_E_JSON_SYNTAX, 0},
    {"[\"abc]", 0, TB_E_JSON_SYNTAX, 1},
    {"\"a\x01z\"", 0, TB_E_JSON_SYNTAX, 2},
    {"\"a\nz\"", 0, TB_E_JSON_SYNTAX, 2},
    {"\"a\tz\"", 0, TB_E_JSON_SYNTAX, 2},
    {"\"\\x\"", 0, TB_E_JSON_SYNTAX, 1},
    {"\"\\U0041\"", 0, TB_E_JSON_SYNTAX, 1},
    {"\"\\u12\"", 0, TB_E_JSON_SYNTAX, 1},
    {"\"\\u12G4\"", 0, TB_E_JSON_SYNTAX, 1},
    {"\"ab\\'\"", 0, TB_E_JSON_SYNTAX, 3},
    {"1 2", 0, TB_E_JSON_SYNTAX, 2},
    {"{} x", 0, TB_E_JSON_SYNTAX, 3},
    {"[1]\0", 4, TB_E_JSON_SYNTAX, 3},
    {"\xef\xbb\xbf{}", 0, TB_E_JSON_SYNTAX, 0},
    {"tru", 0, TB_E_JSON_SYNTAX, 0},
    {"nul", 0, TB_E_JSON_SYNTAX, 0},
    {"truex", 0, TB_E_JSON_SYNTAX, 4},
    {"True", 0, TB_E_JSON_SYNTAX, 0},
    {"[\xc3\xa9]", 0, TB_E_JSON_SYNTAX, 1}, /* valid UTF-8, not JSON */
    {"\x0c 1", 0, TB_E_JSON_SYNTAX, 0},     /* form feed is not JSON whitespace */
    {"1\xc2\xa0", 0, TB_E_JSON_SYNTAX, 1},  /* nor is U+00A0 */
    /* invalid UTF-8 */
    {"\"\xc0\xaf\"", 0, TB_E_JSON_UTF8, 1},         /* overlong '/' */
    {"\"\xc1\xbf\"", 0, TB_E_JSON_UTF8, 1},         /* overlong */
    {"\"\xe0\x80\xaf\"", 0, TB_E_JSON_UTF8, 1},     /* overlong, 3 bytes */
    {"\"\xf0\x80\x80\xaf\"", 0, TB_E_JSON_UTF8, 1}, /* overlong, 4 bytes */
    {"\"ab\xed\xa0\x80\"", 0, TB_E_JSON_UTF8, 3},   /* U+D800 encoded */
    {"\"\xed\xbf\xbf\"", 0, TB_E_JSON_UTF8, 1},     /* U+DFFF encoded */
    {"\"\xf4\x90\x80\x80\"", 0, TB_E_JSON_UTF8, 1}, /* U+110000 */
    {"\"\xf5\x80\x80\x80\"", 0, TB_E_JSON_UTF8, 1},
    {"\"\xf8\x88\x80\x80\x80\"", 0, TB_E_JSON_UTF8, 1},
    {"\"\xe4\xb8\"", 0, TB_E_JSON_UTF8, 1}, /* truncated, then quote */
    {"\"ab\xe4", 0, TB_E_JSON_UTF8, 3},     /* truncated at the end */
    {"\"\xf0\x9f\x98\"", 0, TB_E_JSON_UTF8, 1},
    {"\"\x80\"", 0, TB_E_JSON_UTF8, 1}, /* lone continuation */
    {"\"\xff\"", 0, TB_E_JSON_UTF8, 1},
    {"\xff", 0, TB_E_JSON_UTF8, 0},
    {"[1,\xfe]", 0, TB_E_JSON_UTF8, 3},
    {"{\"k\xc3\":1}", 0, TB_E_JSON_UTF8, 3}, /* in a member name */
    /* lone surrogates */
    {"\"\\ud800\"", 0, TB_E_JSON_SURROGATE, 1},
    {"\"\\uDBFF\"", 0, TB_E_JSON_SURROGATE, 1},
    {"\"\\udc00\"", 0, TB_E_JSON_SURROGATE, 1},
    {"\"\\ude00\\ud83d\"", 0, TB_E_JSON_SURROGATE, 1}, /* reversed pair */
    {"\"xy\\ud83d\\u0041\"", 0, TB_E_JSON_SURROGATE, 3},
    {"\"\\ud83d\\ud83d\\ude00\"", 0, TB_E_JSON_SURROGATE, 1},
    {"\"\\ud83dx\"", 0, TB_E_JSON_SURROGATE, 1},
    {"\"\\ud83d\\n\"", 0, TB_E_JSON_SURROGATE, 1},
    {"{\"\\udfff\":1}", 0, TB_E_JSON_SURROGATE, 2},
    /* duplicate member names: reported at the object */
    {"{\"a\":1,\"a\":2}", 0, TB_E_JSON_DUPKEY, 0},
    {"{\"a\":1,\"\\u0061\":2}", 0, TB_E_JSON_DUPKEY, 0},
    {"[0,{\"b\":1,\"c\":{},\"b\":{}}]", 0, TB_E_JSON_DUPKEY, 3},
    {"{\"\\u0000\":1,\"\\u0000\":2}", 0, TB_E_JSON_DUPKEY, 0},
    {"{\"a\":{\"x\":1,\"x\":1}}", 0, TB_E_JSON_DUPKEY, 5},
    /* out of range */
    {"1e400", 0, TB_E_JSON_NUMBER, 0},
    {"-1e400", 0, TB_E_JSON_NUMBER, 0},
    {"[1,1e309]", 0, TB_E_JSON_NUMBER, 3},
    {"{\"n\":-1.7976931348623159e308}", 0, TB_E_JSON_NUMBER, 5},
    /* several faults (PROTOCOL.md 2.1): UTF-8 first, over the whole input ... */
    {"{\"a\":1\xff}", 0, TB_E_JSON_UTF8, 6},             /* where ',' is expected */
    {"{\xff:1}", 0, TB_E_JSON_UTF8, 1},                   /* where a name is expected */
    {"{\"a\":1e999,\"b\":\"\xff\"}", 0, TB_E_JSON_UTF8, 16}, /* after a range fault */
    {"[1,,\"\xff\"]", 0, TB_E_JSON_UTF8, 5},               /* after a syntax fault */
    {"\xef\xbb\xbf\xff", 0, TB_E_JSON_UTF8, 3},             /* before the BOM rule */
    /* ... then one pass from the start, the first fault met deciding; a
     * duplicate name is met at its object's closing brace */
    {"{\"a\":1,\"a\":2", 0, TB_E_JSON_SYNTAX, 12},          /* never closed */
    {"{\"a\":1,\"a\":2}x", 0, TB_E_JSON_DUPKEY, 0},         /* closed before the tail */
    {"{\"a\":1,\"a\":1e999}", 0, TB_E_JSON_NUMBER, 11},     /* inside, before the brace */
    {"{\"a\":1,\"a\":\"\\ud800\"}", 0, TB_E_JSON_SURROGATE, 12},
    {"[1e999,tru]", 0, TB_E_JSON_NUMBER, 1},
    {"[tru,1e999]", 0, TB_E_JSON_SYNTAX, 1},
};

static void
check_error(const struct errcase *c, const struct tb_json_limits *lim)
{
	struct tb_diag d;
	size_t len = c->len ? c->len : strlen(c->in);
	struct tb_json_doc *doc;

	tb_diag_set(&d, TB_E_ARG, 12345, "stale");
	doc = tb_json_parse((const uint8_t *)c->in, len, lim, &d);
	if (doc != NULL) {
		tb_json_doc_free(doc);
		fail_msg("accepted %s", c->in);
	}
	if (d.code != c->code || d.offset != c->offset)
		fail_msg("%s: got %s at %zu (%s), want %s at %zu", c->in, tb_err_reason(d.code),
		         d.offset, d.detail, tb_err_reason(c->code), c->offset);
	assert_true(d.detail[0] != '\0');
	/* d == NULL must be safe too */
	assert_null(tb_json_parse((const uint8_t *)c->in, len, lim, NULL));
}

static void
test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(errcases) / sizeof(errcases[0]); i++)
		check_error(&errcases[i], NULL);
}

static void
test_duplicates_large(void **state)
{
	struct tb_buf b;
	struct tb_diag d;
	struct tb_json_doc *doc;

	(void)state;
	/* 17..40 members, duplicate pair at every pair of positions of a 20-member object */
	for (int n = 17; n <= 40; n++) {
		tb_buf_init(&b);
		tb_buf_adds(&b, "{");
		for (int i = 0; i < n; i++)
			tb_buf_printf(&b, "%s\"m%d\":%d", i ? "," : "", i, i);
		tb_buf_adds(&b, "}");
		doc = tb_json_parse(b.data, b.len, NULL, &d);
		assert_non_null(doc);
		assert_int_equal(tb_json_count(tb_json_root(doc)), (size_t)n);
		tb_json_doc_free(doc);
		tb_buf_free(&b);
	}
	for (int x = 0; x < 20; x++) {
		for (int y = x + 1; y < 20; y++) {
			tb_buf_init(&b);
			tb_buf_adds(&b, " {");
			for (int i = 0; i < 20; i++)
				tb_buf_printf(&b, "%s\"m%d\":%d", i ? "," : "", i == y ? x : i, i);
			tb_buf_adds(&b, "}");
			doc = tb_json_parse(b.data, b.len, NULL, &d);
			if (doc != NULL)
				fail_msg("duplicate m%d accepted: %s", x, (char *)b.data);
			assert_int_equal(d.code, TB_E_JSON_DUPKEY);
			assert_int_equal(d.offset, 1);
			tb_buf_free(&b);
		}
	}
	/* names that differ only after a NUL or in length are distinct */
	expect_canon("{\"a\":1,\"a\\u0000\":2,\"a\\u0000b\":3,\"A\":4,\"m1\":0,\"m2\":0,\"m3\":0,"
	             "\"m4\":0,\"m5\":0,\"m6\":0,\"m7\":0,\"m8\":0,\"m9\":0,\"n1\":0,\"n2\":0,"
	             "\"n3\":0,\"n4\":0}",
	             "{\"A\":4,\"a\":1,\"a\\u0000\":2,\"a\\u0000b\":3,\"m1\":0,\"m2\":0,\"m3\":0,"
	             "\"m4\":0,\"m5\":0,\"m6\":0,\"m7\":0,\"m8\":0,\"m9\":0,\"n1\":0,\"n2\":0,"
	             "\"n3\":0,\"n4\":0}");
}

static char *
nest(size_t depth, const char *open, const char *inner, const char *close)
{
	struct tb_buf b;
	char *s;

	tb_buf_init(&b);
	for (size_t i = 0; i < depth; i++)
		tb_buf_adds(&b, open);
	tb_buf_adds(&b, inner);
	for (size_t i = 0; i < depth; i++)
		tb_buf_adds(&b, close);
	s = strdup((const char *)b.data);
	tb_buf_free(&b);
	return s;
}

static void
test_limits(void **state)
{
	struct tb_diag d;
	struct tb_json_limits lim = {1u << 20, 4};
	char *s, *c;

	(void)state;
	/* depth: exactly the limit passes, one more fails at the opening bracket */
	s = nest(4, "[", "1", "]");
	c = canon_of(s, strlen(s), &lim, &d);
	assert_non_null(c);
	assert_string_equal(c, "[[[[1]]]]");
	free(c);
	free(s);
	s = nest(5, "[", "1", "]");
	assert_null(canon_of(s, strlen(s), &lim, &d));
	assert_int_equal(d.code, TB_E_JSON_DEPTH);
	assert_int_equal(d.offset, 4);
	free(s);
	s = nest(5, "{\"a\":", "{}", "}");
	assert_null(canon_of(s, strlen(s), &lim, &d));
	assert_int_equal(d.code, TB_E_JSON_DEPTH);
	assert_int_equal(d.offset, 20);
	free(s);

	/* default limit 512 */
	s = nest(512, "[", "", "]");
	c = canon_of(s, strlen(s), NULL, &d);
	assert_non_null(c);
	assert_string_equal(c, s);
	free(c);
	free(s);
	s = nest(513, "[", "", "]");
	assert_null(canon_of(s, strlen(s), NULL, &d));
	assert_int_equal(d.code, TB_E_JSON_DEPTH);
	assert_int_equal(d.offset, 512);
	free(s);
	/* 100,000 levels, unterminated and terminated: refused, no crash */
	s = nest(100000, "[", "", "");
	assert_null(canon_of(s, strlen(s), NULL, &d));
	assert_int_equal(d.code, TB_E_JSON_DEPTH);
	free(s);
	s = nest(100000, "{\"a\":[", "0", "]}");
	assert_null(canon_of(s, strlen(s), NULL, &d));
	assert_int_equal(d.code, TB_E_JSON_DEPTH);
	free(s);

	/* size */
	lim.max_size = 10;
	lim.max_depth = 512;
	c = canon_of("[1,2,3,45]", 10, &lim, &d);
	assert_non_null(c);
	free(c);
	assert_null(canon_of("[1,2,3,456]", 11, &lim, &d));
	assert_int_equal(d.code, TB_E_TOO_LARGE);
	lim.max_size = 0;
	assert_null(canon_of("1", 1, &lim, &d));
	assert_int_equal(d.code, TB_E_TOO_LARGE);
}

static void
test_diag_format(void **state)
{
	struct tb_diag d;
	char line[256];

	(void)state;
	assert_null(tb_json_parse((const uint8_t *)"[1,]", 4, NULL, &d));
	tb_diag_format(&d, line, sizeof(line));
	assert_non_null(strstr(line, "json.syntax"));
	assert_non_null(strstr(line, "at byte 3"));
	assert_null(tb_json_parse((const uint8_t *)"{\"dup\":1,\"dup\":2}", 17, NULL, &d));
	tb_diag_format(&d, line, sizeof(line));
	assert_non_null(strstr(line, "json.duplicate-key"));
	assert_non_null(strstr(line, "dup"));
}

/* ---- accessors and builders ---- */

static void
test_accessors(void **state)
{
	static const char text[] = "{\"s\":\"x\",\"i\":-42,\"f\":1.5,\"big\":9007199254740993,"
	                           "\"a\":[true,false,null],\"o\":{}}";
	struct tb_diag d;
	struct tb_json_doc *doc = tb_json_parse((const uint8_t *)text, strlen(text), NULL, &d);
	struct tb_json *r;
	int64_t iv = 7;
	size_t n;

	(void)state;
	assert_non_null(doc);
	r = tb_json_root(doc);
	assert_int_equal(tb_json_kind(r), TB_JSON_OBJECT);
	assert_int_equal(tb_json_count(r), 6);
	assert_string_equal(tb_json_string(tb_json_get(r, "s"), &n), "x");
	assert_int_equal(n, 1);
	assert_true(tb_json_integer(tb_json_get(r, "i"), &iv));
	assert_int_equal(iv, -42);
	assert_false(tb_json_integer(tb_json_get(r, "f"), &iv));
	assert_true(tb_json_number(tb_json_get(r, "f")) == 1.5);
	assert_true(tb_json_integer(tb_json_get(r, "big"), &iv)); /* rounds to 2^53 */
	assert_int_equal(iv, 9007199254740992LL);
	assert_false(tb_json_integer(tb_json_get(r, "s"), &iv));
	assert_null(tb_json_string(tb_json_get(r, "i"), &n));
	assert_null(tb_json_get(r, "missing"));
	assert_null(tb_json_get(tb_json_get(r, "a"), "s"));
	struct tb_json *a = tb_json_get(r, "a");
	assert_int_equal(tb_json_count(a), 3);
	assert_int_equal(tb_json_kind(tb_json_first(a)), TB_JSON_TRUE);
	assert_int_equal(tb_json_kind(tb_json_next(tb_json_first(a))), TB_JSON_FALSE);
	assert_null(tb_json_next(tb_json_next(tb_json_next(tb_json_first(a)))));
	const char *k = tb_json_key(tb_json_first(r), &n);
	assert_int_equal(n, 1);
	assert_string_equal(k, "s");
	assert_int_equal(tb_json_count(tb_json_get(r, "o")), 0);
	assert_null(tb_json_first(tb_json_get(r, "o")));
	tb_json_doc_free(doc);
	tb_json_doc_free(NULL);

	/* integers at the 2^53 edges */
	doc = tb_json_parse((const uint8_t *)"[9007199254740992,-9007199254740992,1e16,1e300]", 47,
	                    NULL, &d);
	assert_non_null(doc);
	a = tb_json_first(tb_json_root(doc));
	assert_true(tb_json_integer(a, &iv));
	assert_true(tb_json_integer(tb_json_next(a), &iv));
	assert_int_equal(iv, -9007199254740992LL);
	assert_false(tb_json_integer(tb_json_next(tb_json_next(a)), &iv));
	assert_false(tb_json_integer(tb_json_next(tb_json_next(tb_json_next(a))), &iv));
	tb_json_doc_free(doc);
}

static void
test_builders(void **state)
{
	struct tb_json_doc *doc = tb_json_doc_new();
	struct tb_json *o, *arr;
	struct tb_buf b;
	static const char *const omit[] = {"sig", "relay", NULL};

	(void)state;
	assert_non_null(doc);
	assert_null(tb_json_root(doc));
	o = tb_json_new_object(doc);
	arr = tb_json_new_array(doc);
	assert_non_null(o);
	assert_non_null(arr);
	tb_json_set_root(doc, o);
	assert_ptr_equal(tb_json_root(doc), o);
	assert_int_equal(tb_json_set(doc, o, "z", tb_json_new_number(doc, 1e21)), TB_OK);
	assert_int_equal(tb_json_set(doc, o, "b", tb_json_new_string(doc, "a\0\"\n", 4)), TB_OK);
	assert_int_equal(tb_json_append(arr, tb_json_new_literal(doc, TB_JSON_NULL)), TB_OK);
	assert_int_equal(tb_json_append(arr, tb_json_new_number(doc, -0.0)), TB_OK);
	assert_int_equal(tb_json_append(arr, tb_json_new_number(doc, 0.5)), TB_OK);
	assert_int_equal(tb_json_set(doc, o, "a", arr), TB_OK);
	assert_int_equal(tb_json_set(doc, o, "sig", tb_json_new_literal(doc, TB_JSON_TRUE)), TB_OK);
	/* replacing a member keeps one copy */
	assert_int_equal(tb_json_set(doc, o, "z", tb_json_new_number(doc, 2)), TB_OK);
	assert_int_equal(tb_json_count(o), 4);

	tb_buf_init(&b);
	assert_int_equal(tb_json_canon(o, NULL, &b), TB_OK);
	assert_string_equal((char *)b.data,
	                    "{\"a\":[null,0,0.5],\"b\":\"a\\u0000\\\"\\n\",\"sig\":true,"
	                    "\"z\":2}");
	tb_buf_reset(&b);
	assert_int_equal(tb_json_canon(o, omit, &b), TB_OK);
	assert_string_equal((char *)b.data,
	                    "{\"a\":[null,0,0.5],\"b\":\"a\\u0000\\\"\\n\",\"z\":2}");
	/* omit applies to the top level only */
	tb_buf_reset(&b);
	assert_int_equal(tb_json_canon(arr, omit, &b), TB_OK);
	assert_string_equal((char *)b.data, "[null,0,0.5]");

	tb_json_remove(o, "a");
	tb_json_remove(o, "z"); /* the last member: o's tail must follow */
	tb_json_remove(o, "nope");
	assert_int_equal(tb_json_count(o), 2);
	assert_int_equal(tb_json_set(doc, o, "c", tb_json_new_literal(doc, TB_JSON_FALSE)), TB_OK);
	tb_buf_reset(&b);
	assert_int_equal(tb_json_canon(o, NULL, &b), TB_OK);
	assert_string_equal((char *)b.data, "{\"b\":\"a\\u0000\\\"\\n\",\"c\":false,\"sig\":true}");
	tb_json_remove(o, "b");
	tb_json_remove(o, "c");
	tb_json_remove(o, "sig");
	assert_int_equal(tb_json_count(o), 0);
	assert_int_equal(tb_json_set(doc, o, "x", tb_json_new_number(doc, 1)), TB_OK);
	tb_buf_reset(&b);
	assert_int_equal(tb_json_canon(o, NULL, &b), TB_OK);
	assert_string_equal((char *)b.data, "{\"x\":1}");
	tb_buf_free(&b);

	/* refusals */
	assert_null(tb_json_new_string(doc, "\xff", 1));
	assert_null(tb_json_new_string(doc, "\xed\xa0\x80", 3));
	assert_null(tb_json_new_number(doc, NAN));
	assert_null(tb_json_new_number(doc, INFINITY));
	assert_null(tb_json_new_number(doc, -INFINITY));
	assert_null(tb_json_new_literal(doc, TB_JSON_NUMBER));
	assert_null(tb_json_new_literal(doc, TB_JSON_OBJECT));
	assert_int_equal(tb_json_append(o, tb_json_new_number(doc, 1)), TB_E_ARG);
	assert_int_equal(tb_json_append(arr, NULL), TB_E_ARG);
	assert_int_equal(tb_json_set(doc, arr, "k", tb_json_new_number(doc, 1)), TB_E_ARG);
	assert_int_equal(tb_json_set(doc, o, "\xc3", tb_json_new_number(doc, 1)), TB_E_ARG);
	assert_int_equal(tb_json_set(doc, o, "k", NULL), TB_E_ARG);
	tb_json_doc_free(doc);
}

static void
test_utf8_valid(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} v[] = {
	    {"", true},
	    {"abc", true},
	    {"\xc2\x80", true},
	    {"\xdf\xbf", true},
	    {"\xe0\xa0\x80", true},
	    {"\xed\x9f\xbf", true},
	    {"\xee\x80\x80", true},
	    {"\xef\xbf\xbf", true},
	    {"\xf0\x90\x80\x80", true},
	    {"\xf4\x8f\xbf\xbf", true},
	    {"\xc0\x80", false},
	    {"\xc1\xbf", false},
	    {"\xe0\x9f\xbf", false},
	    {"\xed\xa0\x80", false},
	    {"\xf0\x8f\xbf\xbf", false},
	    {"\xf4\x90\x80\x80", false},
	    {"\xf5\x80\x80\x80", false},
	    {"\x80", false},
	    {"\xc2", false},
	    {"\xe2\x82", false},
	    {"\xc2\x41", false},
	    {"\xfe", false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (tb_utf8_valid((const uint8_t *)v[i].s, strlen(v[i].s)) != v[i].ok)
			fail_msg("case %zu", i);
	assert_true(tb_utf8_valid((const uint8_t *)"a\0b", 3));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jcs_vectors),      cmocka_unit_test(test_numbers_oracle),
	    cmocka_unit_test(test_number_spellings), cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_utf16_order),      cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_member_span),      cmocka_unit_test(test_string_blocks),
	    cmocka_unit_test(test_string_run),       cmocka_unit_test(test_duplicates_large),
	    cmocka_unit_test(test_limits),           cmocka_unit_test(test_diag_format),
	    cmocka_unit_test(test_accessors),        cmocka_unit_test(test_builders),
	    cmocka_unit_test(test_utf8_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
