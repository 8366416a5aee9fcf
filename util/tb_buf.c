/* SPDX-License-Identifier: Apache-2.0 */
/* tb_buf.c - growable byte buffer. */
#include "tb_buf.h"
#include "tb_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t empty_byte;

void
tb_buf_init(struct tb_buf *b)
{
	b->data = &empty_byte;
	b->len = 0;
	b->cap = 0;
	b->err = TB_OK;
}

void
tb_buf_free(struct tb_buf *b)
{
	if (b == NULL)
		return;
	if (b->cap != 0)
		free(b->data);
	tb_buf_init(b);
}

void
tb_buf_wipe(struct tb_buf *b)
{
	if (b == NULL)
		return;
	if (b->cap != 0) {
		volatile uint8_t *p = b->data;
		for (size_t i = 0; i < b->cap; i++)
			p[i] = 0;
	}
	tb_buf_free(b);
}

void
tb_buf_reset(struct tb_buf *b)
{
	b->len = 0;
	b->err = TB_OK;
	if (b->cap != 0)
		b->data[0] = '\0';
}

int
tb_buf_error(const struct tb_buf *b)
{
	return b->err;
}

/* Records err as the buffer's sticky error and returns it. */
static int
fail(struct tb_buf *b, int err)
{
	b->err = err;
	return err;
}

int
tb_buf_reserve(struct tb_buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *p;

	if (b->err != TB_OK)
		return b->err;
	if (n > SIZE_MAX - b->len - 1)
		return fail(b, TB_E_NOMEM);
	need = b->len + n + 1;
	if (need <= b->cap)
		return TB_OK;
	ncap = b->cap < 64 ? 64 : b->cap;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	p = b->cap == 0 ? malloc(ncap) : realloc(b->data, ncap);
	if (p == NULL)
		return fail(b, TB_E_NOMEM);
	if (b->cap == 0)
		p[0] = '\0';
	b->data = p;
	b->cap = ncap;
	return TB_OK;
}

int
tb_buf_add(struct tb_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return b->err;
	if (tb_buf_reserve(b, n) != TB_OK)
		return b->err;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return TB_OK;
}

int
tb_buf_addc(struct tb_buf *b, uint8_t c)
{
	if (b->err != TB_OK)
		return b->err;
	if (b->len + 1 >= b->cap && tb_buf_reserve(b, 1) != TB_OK)
		return b->err;
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
	return TB_OK;
}

int
tb_buf_adds(struct tb_buf *b, const char *s)
{
	return tb_buf_add(b, s, strlen(s));
}

int
tb_buf_printf(struct tb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err != TB_OK)
		return b->err;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fail(b, TB_E_ARG);
	if (tb_buf_reserve(b, (size_t)n) != TB_OK)
		return b->err;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return TB_OK;
}
