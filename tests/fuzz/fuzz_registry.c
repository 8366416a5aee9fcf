/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_registry.c - libFuzzer target for the registry parser
 * (federation/tb_reg) and what is built on it: parse with the registry
 * limits; a refusal must carry an error code; an accepted registry must
 * serialise to exactly the canonical form of the input (fuzz_canon.h) and
 * serialize to a text that parses again and serializes to the same bytes
 * (the model is lossless, so signatures survive); the route table and the
 * policy must answer a few queries without fault.
 * Build: ./configure CC=clang --enable-fuzzers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/tb_policy.h"
#include "federation/tb_reg.h"
#include "federation/tb_route.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"
#include "fuzz_canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const regions[] = {"32", "3203", "320300", "371700", "41"};
	struct tb_diag d;
	struct tb_reg *reg, *reg2;
	struct tb_route *rt;
	struct tb_buf a, b;

	if ((reg = tb_reg_parse(data, size, &d)) == NULL) {
		if (d.code == TB_OK)
			abort();
		return 0;
	}
	tb_buf_init(&a);
	tb_buf_init(&b);
	if (tb_reg_serialize(reg, &a) != TB_OK)
		abort();
	fuzz_canon_equal(data, size, a.data, a.len, "registry");
	if ((reg2 = tb_reg_parse(a.data, a.len, &d)) == NULL) {
		fprintf(stderr, "serialized registry refused: %s (%s)\n", tb_err_reason(d.code),
		        d.detail);
		abort();
	}
	if (tb_reg_serialize(reg2, &b) != TB_OK || a.len != b.len || memcmp(a.data, b.data, a.len))
		abort();
	if ((rt = tb_route_new(reg, NULL)) == NULL)
		abort();
	for (size_t m = 0; m < tb_reg_member_count(reg) && m < 8; m++) {
		struct tb_policy_decision dec;
		for (size_t s = 0; s < tb_reg_service_count(reg, m); s++)
			for (size_t r = 0; r < sizeof(regions) / sizeof(regions[0]); r++) {
				struct tb_route_result res;
				int rc = tb_route_resolve(rt, tb_reg_service_code(reg, m, s),
				                          regions[r], &res);
				if (rc == TB_OK &&
				    (res.path_len < 1 || res.path_len > 2 || res.endpoint == NULL))
					abort();
				if (rc != TB_OK && rc != TB_E_NO_ROUTE)
					abort();
			}
		if (tb_policy_check(reg, tb_reg_member_id(reg, m), "hukou.transfer", &dec) != TB_OK)
			abort();
	}
	tb_route_free(rt);
	tb_reg_free(reg2);
	tb_reg_free(reg);
	tb_buf_free(&a);
	tb_buf_free(&b);
	return 0;
}
