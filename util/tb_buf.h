/*
 * tb_buf.h - a growable byte buffer.
 *
 * A struct tb_buf is a plain value type the caller owns: initialise with
 * tb_buf_init(), release the heap storage with tb_buf_free().  The data is
 * always followed by a NUL byte (not counted in len) so it can be printed.
 */
#ifndef TB_BUF_H
#define TB_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void tb_buf_init(struct tb_buf *b);
/* Frees the storage and re-initialises b. NULL allowed. */
void tb_buf_free(struct tb_buf *b);
/* Like tb_buf_free but overwrites the bytes first (secrets). */
void tb_buf_wipe(struct tb_buf *b);
/* Sets len to 0, keeps the storage. */
void tb_buf_reset(struct tb_buf *b);
/* Makes room for n more bytes. 0 or TB_E_NOMEM. */
int tb_buf_reserve(struct tb_buf *b, size_t n);
/* Appends bytes (copied). 0 or TB_E_NOMEM. */
int tb_buf_add(struct tb_buf *b, const void *p, size_t n);
int tb_buf_addc(struct tb_buf *b, uint8_t c);
int tb_buf_adds(struct tb_buf *b, const char *s);
int tb_buf_printf(struct tb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
