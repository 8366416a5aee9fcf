/* SPDX-License-Identifier: Apache-2.0 */
/* test_buf.c - the growable buffer (util/tb_buf) and its sticky error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>
#include <wchar.h>

#include "util/tb_buf.h"
#include "util/tb_err.h"

static void
test_appends(void **state)
{
	struct tb_buf b;

	(void)state;
	tb_buf_init(&b);
	assert_int_equal(tb_buf_error(&b), TB_OK);
	assert_int_equal(tb_buf_adds(&b, "ab"), TB_OK);
	assert_int_equal(tb_buf_addc(&b, 'c'), TB_OK);
	assert_int_equal(tb_buf_add(&b, "de", 2), TB_OK);
	assert_int_equal(tb_buf_printf(&b, "%d", 42), TB_OK);
	assert_int_equal(tb_buf_error(&b), TB_OK);
	assert_int_equal(b.len, 7);
	assert_string_equal((const char *)b.data, "abcde42");
	tb_buf_free(&b);
}

/* An append that cannot grow the buffer (here: a length that overflows
 * the size, refused before any allocation) poisons it: later appends do
 * nothing, so the content never has a hole in its middle, and one check
 * at the end sees the failure. */
static void
test_sticky_nomem(void **state)
{
	struct tb_buf b;

	(void)state;
	tb_buf_init(&b);
	assert_int_equal(tb_buf_adds(&b, "[a,"), TB_OK);
	assert_int_equal(tb_buf_add(&b, "b", SIZE_MAX), TB_E_NOMEM);
	assert_int_equal(tb_buf_error(&b), TB_E_NOMEM);
	assert_int_equal(tb_buf_adds(&b, "c]"), TB_E_NOMEM);
	assert_int_equal(tb_buf_addc(&b, '!'), TB_E_NOMEM);
	assert_int_equal(tb_buf_add(&b, "", 0), TB_E_NOMEM);
	assert_int_equal(tb_buf_printf(&b, "%d", 1), TB_E_NOMEM);
	assert_int_equal(tb_buf_reserve(&b, 1), TB_E_NOMEM);
	assert_int_equal(b.len, 3);
	assert_string_equal((const char *)b.data, "[a,");
	assert_int_equal(tb_buf_error(&b), TB_E_NOMEM);
	/* reset drops the spoilt content and the error with it */
	tb_buf_reset(&b);
	assert_int_equal(tb_buf_error(&b), TB_OK);
	assert_int_equal(tb_buf_adds(&b, "ok"), TB_OK);
	assert_string_equal((const char *)b.data, "ok");
	/* and free re-initialises */
	assert_int_equal(tb_buf_reserve(&b, SIZE_MAX), TB_E_NOMEM);
	tb_buf_free(&b);
	assert_int_equal(tb_buf_error(&b), TB_OK);
	assert_int_equal(b.len, 0);
	tb_buf_free(&b);
}

/* A format vsnprintf cannot convert (a lone surrogate as a wide string
 * in the C locale) is TB_E_ARG, sticky as well. */
static void
test_sticky_format(void **state)
{
	static const wchar_t bad[] = {0xd800, 0};
	struct tb_buf b;

	(void)state;
	tb_buf_init(&b);
	assert_int_equal(tb_buf_adds(&b, "x"), TB_OK);
	assert_int_equal(tb_buf_printf(&b, "%ls", bad), TB_E_ARG);
	assert_int_equal(tb_buf_error(&b), TB_E_ARG);
	assert_int_equal(tb_buf_adds(&b, "y"), TB_E_ARG);
	assert_string_equal((const char *)b.data, "x");
	tb_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_appends),
	    cmocka_unit_test(test_sticky_nomem),
	    cmocka_unit_test(test_sticky_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
