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
 * about 500 us (docs/PERFORMANCE.md); zlib still inflates, streaming,
 * so that the output limit holds while inflating. */
#define LEVEL 1

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

int
tb_inflate(const uint8_t *in, size_t len, size_t max, struct tb_buf *out, struct tb_diag *d)
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
