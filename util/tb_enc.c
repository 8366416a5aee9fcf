/* SPDX-License-Identifier: Apache-2.0 */
/* tb_enc.c - base64url and hex. */
#include "tb_enc.h"

static const char b64url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
tb_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void
tb_b64url_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i = 0, o = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_alpha[v >> 18 & 63];
		out[o++] = b64url_alpha[v >> 12 & 63];
		out[o++] = b64url_alpha[v >> 6 & 63];
		out[o++] = b64url_alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64url_alpha[v >> 18 & 63];
		out[o++] = b64url_alpha[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64url_alpha[v >> 18 & 63];
		out[o++] = b64url_alpha[v >> 12 & 63];
		out[o++] = b64url_alpha[v >> 6 & 63];
	}
	out[o] = '\0';
}

/* Each byte's value as a base64url digit plus one, 0 for none.  A table,
 * not comparisons: digits of random data defeat branch prediction. */
static const uint8_t b64_value1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

static int
b64val(unsigned char c)
{
	return (int)b64_value1[c] - 1;
}

bool
tb_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outcap, size_t *outlen)
{
	size_t full = len / 4, rem = len % 4, o = 0;
	size_t need = full * 3 + (rem == 0 ? 0 : rem - 1);
	int v[4];

	if (rem == 1 || need > outcap)
		return false;
	for (size_t g = 0; g < full; g++) {
		for (int k = 0; k < 4; k++)
			if ((v[k] = b64val((unsigned char)in[g * 4 + (size_t)k])) < 0)
				return false;
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		out[o++] = (uint8_t)(v[2] << 6 | v[3]);
	}
	if (rem != 0) {
		for (size_t k = 0; k < rem; k++)
			if ((v[k] = b64val((unsigned char)in[full * 4 + k])) < 0)
				return false;
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (rem == 2) {
			if ((v[1] & 0x0f) != 0) /* non-canonical trailing bits */
				return false;
		} else {
			out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
			if ((v[2] & 0x03) != 0)
				return false;
		}
	}
	*outlen = o;
	return true;
}

void
tb_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Lowercase hex digit values plus one, 0 for none (see b64_value). */
static const uint8_t hex_value1[256] = {
    ['0'] = 1, ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

bool
tb_hex_decode(const char *in, size_t len, uint8_t *out, size_t n)
{
	if (len != 2 * n)
		return false;
	unsigned bad = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned hi = hex_value1[(unsigned char)in[2 * i]],
		         lo = hex_value1[(unsigned char)in[2 * i + 1]];
		bad |= (hi == 0) | (lo == 0);
		out[i] = (uint8_t)((hi - 1) << 4 | ((lo - 1) & 15));
	}
	return bad == 0;
}

bool
tb_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}

bool
tb_hex_valid(const char *s, size_t len)
{
	unsigned bad = 0;

	for (size_t i = 0; i < len; i++)
		bad |= hex_value1[(unsigned char)s[i]] == 0;
	return bad == 0;
}
