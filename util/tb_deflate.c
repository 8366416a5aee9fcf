/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_deflate.c - zlib streams for whole buffers (see tb_deflate.h).
 */
#include "util/tb_deflate.h"

#include <libdeflate.h>
#include <limits.h>
#include <zlib.h>

#include "util/tb_buf.h"
#include "util/tb_err.h"

/* Fastest level: batches of envelopes shrink to about a third already
 * (keys, shared signature blocks, hex digests).  libdeflate compresses
 * a 32-envelope batch (53 KB) in about 120 us where zlib's level 1 takes
 * about 500 us (docs/PERFORMANCE.md).  Inflating, libdeflate also
 * goes first (into a buffer bounded by the limit); zlib, streaming, only
 * names what is wrong with a stream libdeflate refused. */
#define LEVEL 1

static void
truncate_to(struct tb_buf *b, size_t len)
{
	if (b->len > len)
		b->len = len;
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

int
tb_deflate(const uint8_t *in, size_t len, struct tb_buf *out, struct tb_diag *d)
{
	struct libdeflate_compressor *c;
	size_t cap, got;

	if (len > UINT_MAX)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%zu bytes to compress", len);
	/* one compressor per call: no state shared between threads; setting
	 * it up costs about 9 us, next to 120 us for a batch */
	if ((c = libdeflate_alloc_compressor(LEVEL)) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "deflate state");
	cap = libdeflate_zlib_compress_bound(c, len);
	if (tb_buf_reserve(out, cap) != TB_OK) {
		libdeflate_free_compressor(c);
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "deflate buffer");
	}
	got = libdeflate_zlib_compress(c, in, len, out->data + out->len, cap);
	libdeflate_free_compressor(c);
	if (got == 0) /* cannot happen with the bound's space */
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "deflate: no room for %zu bytes",
		                   len);
	out->len += got;
	return TB_OK;
}

static int inflate_zlib(const uint8_t *in, size_t len, size_t max, struct tb_buf *out,
                        struct tb_diag *d);

/*
 * libdeflate into one buffer: first of a guessed size, then, if that was
 * too small, of the limit plus one byte (so a stream that fills it is
 * over the limit).  A stream it refuses goes to zlib for the reason.
 * (zlib's streaming inflate was about 3 % of a receiving node's loop;
 * docs/PERFORMANCE.md.)
 */
int
tb_inflate(const uint8_t *in, size_t len, size_t max, struct tb_buf *out, struct tb_diag *d)
{
	struct libdeflate_decompressor *z;
	size_t start = out->len, cap, got = 0, used = 0;
	enum libdeflate_result r = LIBDEFLATE_INSUFFICIENT_SPACE;

	if (len > UINT_MAX || max >= SIZE_MAX / 2)
		return inflate_zlib(in, len, max, out, d);
	if ((z = libdeflate_alloc_decompressor()) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "inflate state");
	/* these JSON batches deflate to a third or a quarter */
	cap = len < 1024 ? 8192 : len * 6;
	for (int round = 0; round < 2 && r == LIBDEFLATE_INSUFFICIENT_SPACE; round++) {
		if (round == 1 || cap > max + 1)
			cap = max + 1;
		if (tb_buf_reserve(out, cap) != TB_OK) {
			libdeflate_free_decompressor(z);
			truncate_to(out, start);
			return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "inflate buffer");
		}
		r = libdeflate_zlib_decompress_ex(z, in, len, out->data + start, cap, &used, &got);
		if (cap == max + 1)
			break;
	}
	libdeflate_free_decompressor(z);
	if (r == LIBDEFLATE_SUCCESS && got <= max && used == len) {
		out->len = start + got;
		out->data[out->len] = '\0';
		return TB_OK;
	}
	if (r == LIBDEFLATE_INSUFFICIENT_SPACE || (r == LIBDEFLATE_SUCCESS && got > max))
		return tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS,
		                   "inflates to more than %zu bytes", max);
	/* corrupt, truncated or followed by other bytes: zlib says which */
	truncate_to(out, start);
	return inflate_zlib(in, len, max, out, d);
}

static int
inflate_zlib(const uint8_t *in, size_t len, size_t max, struct tb_buf *out, struct tb_diag *d)
{
	z_stream z = {0};
	size_t start = out->len, chunk;
	int rc;

	if (len > UINT_MAX)
		return tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS, "%zu compressed bytes", len);
	if (inflateInit(&z) != Z_OK)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "inflate state");
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	do {
		size_t have = out->len - start;
		if (have >= max + 1) {
			rc = Z_BUF_ERROR;
			break;
		}
		/* grow by at least 4 KiB, up to one byte past the limit */
		chunk = len * 4 < 4096 ? 4096 : len * 4;
		if (chunk > max + 1 - have)
			chunk = max + 1 - have;
		if (tb_buf_reserve(out, chunk) != TB_OK) {
			inflateEnd(&z);
			return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "inflate buffer");
		}
		z.next_out = out->data + out->len;
		z.avail_out = (uInt)chunk;
		rc = inflate(&z, Z_NO_FLUSH);
		out->len += chunk - z.avail_out;
	} while (rc == Z_OK);
	inflateEnd(&z);
	if (out->len - start > max)
		return tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS,
		                   "inflates to more than %zu bytes", max);
	if (rc == Z_MEM_ERROR)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "inflate");
	if (rc != Z_STREAM_END)
		return tb_diag_set(d, TB_E_ENCODING, TB_DIAG_NOPOS, "deflate data %s",
		                   rc == Z_BUF_ERROR ? "truncated" : "corrupt");
	if (z.avail_in != 0)
		return tb_diag_set(d, TB_E_ENCODING, TB_DIAG_NOPOS,
		                   "%u bytes after the end of the deflate stream", z.avail_in);
	return TB_OK;
}
