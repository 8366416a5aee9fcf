/* SPDX-License-Identifier: Apache-2.0 */
/* test_policy.c - access policy evaluation (federation/tb_policy). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/tb_policy.h"
#include "federation/tb_reg.h"
#include "fed_testutil.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

static void
add(struct tb_reg *reg, const char *id, enum tb_reg_role role, enum tb_reg_status st)
{
	static int n;
	uint8_t spki[4] = {9, 9, 9, (uint8_t)++n};
	struct tb_reg_key_spec key = {spki, sizeof(spki), TB_USE_BOTH};
	const char *eps[1] = {"coaps://x"};
	struct tb_reg_member_spec m = {id, "n", NULL, role, st, eps, 1, &key, 1, NULL, 0};
	assert_int_equal(tb_reg_add_member(reg, &m, NULL), TB_OK);
}

static void
test_table(void **state)
{
	struct tb_reg *reg = tb_reg_new("test", 0, 100, NULL);
	static const char *const rules[] = {
	    "effect=deny;services=*;ids=371700",
	    "effect=allow;services=*;roles=hub",
	    "effect=allow;services=hukou.transfer,pension.transfer;roles=city;regions=32,3708",
	    "effect=deny;services=pension.transfer",
	    "effect=allow;services=pension.transfer;regions=34",
	};
	static const struct {
		const char *from, *svc;
		bool allow;
		long rule;
	} cases[] = {
	    {"371700", "hukou.transfer", false, 0}, /* first match wins over rule 2 */
	    {"320000", "anything", true, 1},
	    {"320300", "hukou.transfer", true, 2},
	    {"370800", "pension.transfer", true, 2},
	    {"370400", "hukou.transfer", false, TB_POLICY_DEFAULT}, /* 3704 not in 32/3708 */
	    {"340600", "pension.transfer", false, 3},               /* rule 3 before 4 */
	    {"340600", "other", false, TB_POLICY_DEFAULT},
	    {"999900", "hukou.transfer", false, TB_POLICY_NOT_MEMBER},
	    {"411400", "hukou.transfer", false, TB_POLICY_INACTIVE},
	};
	struct tb_policy_decision dec;
	struct tb_buf b;

	(void)state;
	add(reg, "320000", TB_ROLE_HUB, TB_STATUS_ACTIVE);
	add(reg, "320300", TB_ROLE_CITY, TB_STATUS_ACTIVE);
	add(reg, "370400", TB_ROLE_CITY, TB_STATUS_ACTIVE);
	add(reg, "370800", TB_ROLE_CITY, TB_STATUS_ACTIVE);
	add(reg, "371700", TB_ROLE_HUB, TB_STATUS_ACTIVE);
	add(reg, "340600", TB_ROLE_CITY, TB_STATUS_ACTIVE);
	add(reg, "411400", TB_ROLE_CITY, TB_STATUS_SUSPENDED);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		assert_int_equal(tb_reg_add_policy_rule(reg, rules[i], NULL), TB_OK);
	assert_false(tb_policy_default_allow(reg));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(tb_policy_check(reg, cases[i].from, cases[i].svc, &dec), TB_OK);
		if (dec.allow != cases[i].allow || dec.rule != cases[i].rule)
			fail_msg("case %zu: %s %s -> %d %ld", i, cases[i].from, cases[i].svc,
			         dec.allow, dec.rule);
	}
	/* the text form round-trips */
	tb_buf_init(&b);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		tb_buf_reset(&b);
		assert_int_equal(tb_policy_rule_text(reg, i, &b), TB_OK);
		assert_string_equal((const char *)b.data, rules[i]);
	}
	tb_buf_free(&b);
	/* default allow */
	assert_int_equal(tb_reg_set_policy_default(reg, true), TB_OK);
	assert_int_equal(tb_policy_check(reg, "340600", "other", &dec), TB_OK);
	assert_true(dec.allow);
	assert_int_equal(dec.rule, TB_POLICY_DEFAULT);
	/* and the policy survives serialization */
	tb_buf_init(&b);
	assert_int_equal(tb_reg_serialize(reg, &b), TB_OK);
	struct tb_reg *r2 = tb_reg_parse(b.data, b.len, NULL);
	assert_non_null(r2);
	assert_int_equal(tb_policy_check(r2, "370800", "pension.transfer", &dec), TB_OK);
	assert_true(dec.allow);
	assert_int_equal(dec.rule, 2);
	tb_reg_free(r2);
	tb_buf_free(&b);
	assert_int_equal(tb_policy_check(reg, "32030", "x", &dec), TB_E_ARG);
	assert_int_equal(tb_policy_check(reg, "320300", "*", &dec), TB_E_ARG);
	tb_reg_free(reg);
}

static void
test_bad_rules(void **state)
{
	struct tb_reg *reg = tb_reg_new("test", 0, 100, NULL);
	static const struct {
		const char *text;
		int code;
	} cases[] = {
	    {"services=*", TB_E_FIELD_MISSING},
	    {"effect=allow", TB_E_FIELD_MISSING},
	    {"effect=maybe;services=*", TB_E_FIELD_VALUE},
	    {"effect=allow;services=*,a", TB_E_FIELD_VALUE},
	    {"effect=allow;services=A", TB_E_FIELD_VALUE},
	    {"effect=allow;services=a;roles=mayor", TB_E_FIELD_VALUE},
	    {"effect=allow;services=a;regions=3", TB_E_FIELD_VALUE},
	    {"effect=allow;services=a;ids=12345", TB_E_FIELD_VALUE},
	    {"effect=allow;services=a,", TB_E_FIELD_VALUE},
	    {"effect=allow;services=a;services=b", TB_E_FIELD_VALUE},
	    {"effect=allow;services=a;who=me", TB_E_FIELD_UNKNOWN},
	    {"effect=allow;services", TB_E_FIELD_VALUE},
	};
	struct tb_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = tb_reg_add_policy_rule(reg, cases[i].text, &d);
		if (rc != cases[i].code)
			fail_msg("'%s': %d, wanted %d", cases[i].text, rc, cases[i].code);
	}
	assert_int_equal(tb_policy_rule_count(reg), 0);
	tb_reg_free(reg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_bad_rules),
	};
	if (tb_crypto_init() != TB_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
