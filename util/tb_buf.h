/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_buf.h - a growable byte buffer.
 *
 * A struct tb_buf is a plain value type the caller owns: initialise with
 * tb_buf_init(), release the heap storage with tb_buf_free().  The data is
 * always followed by a NUL byte (not counted in len) so it can be printed.
 *
 * Errors are sticky, like a stdio stream's error flag.  When an append
 * cannot grow the buffer (or tb_buf_printf's format fails), the buffer
 * remembers the error: that append and every later one change nothing
 * and return the same error, until tb_buf_reset() or tb_buf_free().  So
 * a sequence of appends needs no check after each call; whoever uses the
 * bytes (sends, writes, hashes, parses or returns them) calls
 * tb_buf_error() once first, and a failure can never leave content with a
 * piece missing in its middle.  The appends still return the error for a
 * caller that prefers to stop at once.  A function that appends to a
 * buffer it was handed returns tb_buf_error(out) (or its own error), so
 * its caller's check covers it.  tb_buf_reserve() is checked where it is
 * called, since the caller then writes into the space directly.
 *
 * Thread-safety: no shared state; a buffer is used by one thread at a
 * time.
 */
#ifndef TB_BUF_H
#define TB_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "tb_err.h"

struct tb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err; /* 0, or the first append's error (sticky) */
};

void tb_buf_init(struct tb_buf *b);
/* Frees the storage and re-initialises b (clearing its error). NULL allowed. */
void tb_buf_free(struct tb_buf *b);
/* Like tb_buf_free but overwrites the bytes first (secrets). */
void tb_buf_wipe(struct tb_buf *b);
/* Sets len to 0 and clears the error (the content it spoiled is gone);
 * keeps the storage. */
void tb_buf_reset(struct tb_buf *b);
/* 0, or the buffer's sticky error: TB_E_NOMEM (an append could not grow
 * it) or TB_E_ARG (a tb_buf_printf format failed).  Check before using
 * the bytes. */
TB_MUST_CHECK int tb_buf_error(const struct tb_buf *b);
/* Makes room for n more bytes (b->data[b->len .. b->len + n] may then be
 * written).  0, or TB_E_NOMEM (also made the sticky error), or the sticky
 * error already set. */
TB_MUST_CHECK int tb_buf_reserve(struct tb_buf *b, size_t n);
/* Append bytes (copied).  0 or the sticky error (see above); a failed
 * append leaves len unchanged. */
int tb_buf_add(struct tb_buf *b, const void *p, size_t n);
int tb_buf_addc(struct tb_buf *b, uint8_t c);
int tb_buf_adds(struct tb_buf *b, const char *s);
int tb_buf_printf(struct tb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
