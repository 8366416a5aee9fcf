/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_deflate.h - the "deflate" content coding (zlib format, RFC 1950,
 * as HTTP and CoAP content-format 11050 use it) for whole buffers.
 *
 * Thread-safety: reentrant: every call has its own (de)compressor
 * state.  Input is borrowed; output is appended to the caller's buffer.
 */
#ifndef TB_DEFLATE_H
#define TB_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "tb_err.h"

struct tb_buf;
struct tb_diag;

/*
 * Compresses len bytes of in (fast level) and appends the zlib stream to
 * out (the caller owns out).  Returns 0, TB_E_NOMEM or TB_E_ARG.
 */
TB_MUST_CHECK int tb_deflate(const uint8_t *in, size_t len, struct tb_buf *out, struct tb_diag *d);

/*
 * Decompresses one complete zlib stream, in[0..len), appending the data
 * to out.  The output is limited to max bytes, checked while inflating,
 * so a small hostile stream cannot make it allocate more.  Returns 0,
 * TB_E_TOO_LARGE (more than max bytes), TB_E_ENCODING (not a zlib
 * stream, corrupt, truncated, or bytes after its end) or TB_E_NOMEM.  On
 * error out may hold part of the data; the caller discards it.
 */
TB_MUST_CHECK int tb_inflate(const uint8_t *in, size_t len, size_t max, struct tb_buf *out,
                             struct tb_diag *d);

#endif
