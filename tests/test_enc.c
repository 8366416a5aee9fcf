/* SPDX-License-Identifier: Apache-2.0 */
/* test_enc.c - base64url, hex and constant-time comparison (util/tb_enc). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/tb_enc.h"

/* An independent, bit-at-a-time base64url encoder used as the oracle. */
static void
ref_b64url(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t nbits = n * 8, o = 0;

	for (size_t bit = 0; bit < nbits; bit += 6) {
		unsigned v = 0;
		for (size_t k = 0; k < 6; k++) {
			size_t b = bit + k;
			unsigned one = b < nbits ? (in[b / 8] >> (7 - b % 8)) & 1 : 0;
			v = v << 1 | one;
		}
		out[o++] = a[v];
	}
	out[o] = '\0';
}

/* RFC 4648 section 10 vectors (base64 = base64url for these, unpadded). */
static void
test_b64url_rfc4648(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
	    {"", ""},
	    {"f", "Zg"},
	    {"fo", "Zm8"},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg"},
	    {"fooba", "Zm9vYmE"},
	    {"foobar", "Zm9vYmFy"},
	    {"\xfb\xff\xbf", "-_-_"}, /* the two url-safe characters */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char out[64];
		uint8_t back[64];
		size_t n = strlen(v[i].in), bl = 99;

		assert_int_equal(tb_b64url_len(n), strlen(v[i].out));
		tb_b64url_encode((const uint8_t *)v[i].in, n, out);
		assert_string_equal(out, v[i].out);
		assert_true(tb_b64url_decode(out, strlen(out), back, sizeof(back), &bl));
		assert_int_equal(bl, n);
		assert_memory_equal(back, v[i].in, n);
	}
}

static void
test_b64url_roundtrip_lengths(void **state)
{
	uint8_t in[40], back[40];
	char out[64], ref[64];

	(void)state;
	for (size_t n = 0; n <= 40; n++) {
		for (int pattern = 0; pattern < 4; pattern++) {
			for (size_t i = 0; i < n; i++)
				in[i] = pattern == 0   ? 0x00
				        : pattern == 1 ? 0xff
				        : pattern == 2 ? (uint8_t)(i * 37 + 11)
				                       : (uint8_t)(0xa5 ^ (i << 3));
			size_t bl = 999;
			tb_b64url_encode(in, n, out);
			ref_b64url(in, n, ref);
			assert_string_equal(out, ref);
			assert_int_equal(strlen(out), tb_b64url_len(n));
			assert_true(tb_b64url_decode(out, strlen(out), back, n, &bl));
			assert_int_equal(bl, n);
			assert_memory_equal(back, in, n);
			/* output buffer one byte too small is refused */
			if (n > 0)
				assert_false(tb_b64url_decode(out, strlen(out), back, n - 1, &bl));
		}
	}
}

static void
test_b64url_rejects(void **state)
{
	static const char *const bad[] = {
	    "Zg==",    /* padding */
	    "Zg=",     /* padding */
	    "Zm8=",    /* padding */
	    "Z",       /* len % 4 == 1 */
	    "Zm9vY",   /* len % 4 == 1 */
	    "Zh",      /* non-canonical trailing bits (1 byte: low 4 bits set) */
	    "Zm9",     /* non-canonical trailing bits (2 bytes: low 2 bits set) */
	    "Zm+v",    /* '+' is base64, not base64url */
	    "Zm/v",    /* '/' likewise */
	    "Zm v",    /* space */
	    "Zm9v\n",  /* newline */
	    "Zm\x80v", /* high byte */
	    "Zm.v",
	};
	uint8_t out[16];
	size_t ol;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tb_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out), &ol))
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* embedded NUL is not an alphabet character */
	assert_false(tb_b64url_decode("Zm\0v", 4, out, sizeof(out), &ol));
	/* every canonical last character for a 1-byte tail is accepted,
	 * every other alphabet character refused */
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	for (int k = 0; k < 64; k++) {
		char t[3] = {'Z', a[k], 0};
		bool ok = tb_b64url_decode(t, 2, out, sizeof(out), &ol);
		assert_int_equal(ok, (k & 0x0f) == 0);
		char u[4] = {'Z', 'm', a[k], 0};
		ok = tb_b64url_decode(u, 3, out, sizeof(out), &ol);
		assert_int_equal(ok, (k & 0x03) == 0);
	}
}

static void
test_hex(void **state)
{
	uint8_t in[256], back[256];
	char out[513], ref[513];

	(void)state;
	for (size_t i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	tb_hex_encode(in, 256, out);
	for (size_t i = 0; i < 256; i++)
		snprintf(ref + 2 * i, 3, "%02x", (unsigned)i);
	assert_string_equal(out, ref);
	assert_true(tb_hex_decode(out, 512, back, 256));
	assert_memory_equal(back, in, 256);
	tb_hex_encode(in, 0, out);
	assert_string_equal(out, "");
	assert_true(tb_hex_decode("", 0, back, 0));

	assert_false(tb_hex_decode("0A", 2, back, 1)); /* uppercase refused */
	assert_false(tb_hex_decode("0g", 2, back, 1));
	assert_false(tb_hex_decode("0", 1, back, 1));    /* odd length */
	assert_false(tb_hex_decode("00", 2, back, 2));   /* too short for n */
	assert_false(tb_hex_decode("0000", 4, back, 1)); /* too long for n */
	assert_false(tb_hex_decode(" 0", 2, back, 1));
	assert_false(tb_hex_decode("0\0", 2, back, 1));
	assert_true(tb_hex_decode("ff00", 4, back, 2));
	assert_int_equal(back[0], 0xff);
	assert_int_equal(back[1], 0x00);

	/* every byte value, in either position (the decoder is a table) */
	static const char digits[] = "0123456789abcdef";
	for (int c = 0; c < 256; c++) {
		const char *at = c ? strchr(digits, c) : NULL;
		char hi[2] = {(char)c, '0'}, lo[2] = {'0', (char)c};
		assert_int_equal(tb_hex_decode(hi, 2, back, 1), at != NULL);
		if (at != NULL)
			assert_int_equal(back[0], (at - digits) << 4);
		assert_int_equal(tb_hex_decode(lo, 2, back, 1), at != NULL);
		if (at != NULL)
			assert_int_equal(back[0], at - digits);
		assert_int_equal(tb_hex_valid(lo, 2), at != NULL);
	}
	assert_true(tb_hex_valid("", 0));
	tb_hex_encode(in, 256, out);
	assert_true(tb_hex_valid(out, 512));
	assert_false(tb_hex_valid("abcdefg", 7));
}

/* every byte value as each of four base64url digits */
static void
test_b64url_every_byte(void **state)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t out[3];
	size_t ol;

	(void)state;
	for (int c = 0; c < 256; c++) {
		const char *at = c ? strchr(alpha, c) : NULL;
		for (int pos = 0; pos < 4; pos++) {
			char in[4] = {'A', 'A', 'A', 'A'};
			in[pos] = (char)c;
			bool ok = tb_b64url_decode(in, 4, out, sizeof(out), &ol);
			assert_int_equal(ok, at != NULL);
			if (!ok)
				continue;
			uint32_t v = (uint32_t)out[0] << 16 | (uint32_t)out[1] << 8 | out[2];
			assert_int_equal(v, (uint32_t)(at - alpha) << (6 * (3 - pos)));
		}
	}
}

static void
test_ct_equal(void **state)
{
	uint8_t a[64], b[64];

	(void)state;
	for (size_t i = 0; i < 64; i++)
		a[i] = b[i] = (uint8_t)(i * 7);
	assert_true(tb_ct_equal(a, b, 64));
	assert_true(tb_ct_equal(a, b, 0));
	for (size_t i = 0; i < 64; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1 << bit);
			assert_false(tb_ct_equal(a, b, 64));
			assert_int_equal(tb_ct_equal(a, b, 10), i >= 10);
			b[i] ^= (uint8_t)(1 << bit);
		}
	}
	/* a difference beyond n is not looked at */
	b[63] ^= 1;
	assert_true(tb_ct_equal(a, b, 63));
	assert_false(tb_ct_equal(a, b, 64));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64url_rfc4648),
	    cmocka_unit_test(test_b64url_roundtrip_lengths),
	    cmocka_unit_test(test_b64url_rejects),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_b64url_every_byte),
	    cmocka_unit_test(test_ct_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
