/*
 * tb_deflate.c - zlib streams for whole buffers (see tb_deflate.h).
 */
#include "util/tb_deflate.h"

#include <limits.h>
#include <zlib.h>

#include "util/tb_buf.h"
#include "util/tb_err.h"

/* Fastest level: batches of envelopes shrink to about a third already
 * (keys, shared signature blocks, hex digests), at tens of microseconds. */
#define LEVEL 1

int
tb_deflate(const uint8_t *in, size_t len, struct tb_buf *out, struct tb_diag *d)
{
	uLongf cap;
	size_t at = out->len;
	int rc;

	if (len > UINT_MAX)
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%zu bytes to compress", len);
	cap = compressBound((uLong)len);
	if (tb_buf_reserve(out, (size_t)cap) != TB_OK)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "deflate buffer");
	rc = compress2(out->data + at, &cap, in, (uLong)len, LEVEL);
	if (rc != Z_OK)
		return tb_diag_set(d, rc == Z_MEM_ERROR ? TB_E_NOMEM : TB_E_ARG, TB_DIAG_NOPOS,
		                   "deflate: zlib error %d", rc);
	out->len = at + (size_t)cap;
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
