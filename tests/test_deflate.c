/* SPDX-License-Identifier: Apache-2.0 */
/* test_deflate.c - the deflate content coding (util/tb_deflate). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/tb_buf.h"
#include "util/tb_deflate.h"
#include "util/tb_err.h"

/* A JSON-like text with repeats and hex noise, n bytes. */
static uint8_t *
sample(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n);
	static const char hex[] = "0123456789abcdef";

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (i / 64) % 2 ? (uint8_t) "{\"sha256\":\"\",\"size\":1000}"[i % 26]
		                    : (uint8_t)hex[(seed >> 16) & 15];
	}
	return p;
}

static void
test_roundtrip_sizes(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 2, 100, 1023, 4096, 4097, 65536, 300000};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		uint8_t *in = sample(n ? n : 1, (uint32_t)k);
		struct tb_buf z, out;
		struct tb_diag d;
		tb_buf_init(&z);
		tb_buf_init(&out);
		assert_int_equal(tb_deflate(in, n, &z, &d), TB_OK);
		assert_true(z.len > 0);
		if (n >= 4096) /* the sample is half repeats: it must shrink */
			assert_true(z.len < n * 3 / 4);
		assert_int_equal(tb_inflate(z.data, z.len, n, &out, &d), TB_OK);
		assert_int_equal(out.len, n);
		assert_true(n == 0 || memcmp(out.data, in, n) == 0);
		/* appends: a second stream goes after the first */
		assert_int_equal(tb_inflate(z.data, z.len, n, &out, &d), TB_OK);
		assert_int_equal(out.len, 2 * n);
		tb_buf_free(&z);
		tb_buf_free(&out);
		free(in);
	}
}

static void
test_limit(void **state)
{
	(void)state;
	/* 8 MiB of zeros deflate to some KiB: a "bomb" for a 64 KiB limit */
	size_t n = 8u << 20;
	uint8_t *zero = calloc(1, n);
	struct tb_buf z, out;
	struct tb_diag d;

	assert_non_null(zero);
	tb_buf_init(&z);
	tb_buf_init(&out);
	assert_int_equal(tb_deflate(zero, n, &z, &d), TB_OK);
	assert_true(z.len < 65536);
	assert_int_equal(tb_inflate(z.data, z.len, 65536, &out, &d), TB_E_TOO_LARGE);
	assert_true(out.cap <= 2 * (65536 + 1)); /* never grew far past the limit */
	assert_non_null(strstr(d.detail, "65536"));
	/* exactly at the limit is fine, one byte under is not */
	tb_buf_reset(&z);
	tb_buf_reset(&out);
	assert_int_equal(tb_deflate(zero, 1000, &z, &d), TB_OK);
	assert_int_equal(tb_inflate(z.data, z.len, 1000, &out, &d), TB_OK);
	tb_buf_reset(&out);
	assert_int_equal(tb_inflate(z.data, z.len, 999, &out, &d), TB_E_TOO_LARGE);
	/* far more than the first guess of the output's size, within the
	 * limit: inflated in a second round, into the limit's buffer */
	tb_buf_reset(&z);
	tb_buf_reset(&out);
	assert_int_equal(tb_deflate(zero, 200000, &z, &d), TB_OK);
	assert_true(z.len * 6 < 200000);
	assert_int_equal(tb_inflate(z.data, z.len, 300000, &out, &d), TB_OK);
	assert_int_equal(out.len, 200000);
	assert_int_equal(out.data[199999], 0);
	assert_int_equal(out.data[200000], 0); /* NUL-terminated as any tb_buf */
	tb_buf_free(&z);
	tb_buf_free(&out);
	free(zero);
}

static void
test_bad_streams(void **state)
{
	(void)state;
	uint8_t *in = sample(5000, 7);
	struct tb_buf z, out, t;
	struct tb_diag d;

	tb_buf_init(&z);
	tb_buf_init(&out);
	tb_buf_init(&t);
	assert_int_equal(tb_deflate(in, 5000, &z, &d), TB_OK);
	/* every truncation is refused */
	for (size_t cut = 0; cut < z.len; cut++) {
		tb_buf_reset(&out);
		assert_int_equal(tb_inflate(z.data, cut, 10000, &out, &d), TB_E_ENCODING);
	}
	/* trailing bytes after the stream */
	tb_buf_add(&t, z.data, z.len);
	tb_buf_adds(&t, "x");
	tb_buf_reset(&out);
	assert_int_equal(tb_inflate(t.data, t.len, 10000, &out, &d), TB_E_ENCODING);
	assert_non_null(strstr(d.detail, "after the end"));
	/* plain JSON is not a zlib stream */
	tb_buf_reset(&out);
	assert_int_equal(tb_inflate((const uint8_t *)"{\"a\":1}", 7, 100, &out, &d), TB_E_ENCODING);
	/* a flipped bit in the data or the checksum */
	for (size_t i = 2; i < z.len; i += 97) {
		tb_buf_reset(&t);
		tb_buf_add(&t, z.data, z.len);
		t.data[i] ^= 0x10;
		tb_buf_reset(&out);
		int rc = tb_inflate(t.data, t.len, 10000, &out, &d);
		assert_true(rc == TB_E_ENCODING || rc == TB_E_TOO_LARGE);
	}
	tb_buf_reset(&t);
	tb_buf_add(&t, z.data, z.len);
	t.data[t.len - 1] ^= 1; /* Adler-32 */
	tb_buf_reset(&out);
	assert_int_equal(tb_inflate(t.data, t.len, 10000, &out, &d), TB_E_ENCODING);
	assert_string_equal(tb_err_reason(TB_E_ENCODING), "encoding");
	tb_buf_free(&z);
	tb_buf_free(&out);
	tb_buf_free(&t);
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_sizes),
	    cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_bad_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
