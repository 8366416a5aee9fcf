/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_trust.c - libFuzzer target for the trust anchor parser
 * (federation/tb_trust): a refusal must carry an error code; an accepted
 * anchor must serialise to exactly the canonical form of the input
 * (fuzz_canon.h), which parses again to the same bytes.
 * Build: ./configure CC=clang --enable-fuzzers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/tb_trust.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"
#include "fuzz_canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tb_trust *t, *t2;
	struct tb_diag d;
	struct tb_buf a, b;

	if ((t = tb_trust_parse(data, size, &d)) == NULL) {
		if (d.code == TB_OK)
			abort();
		return 0;
	}
	tb_buf_init(&a);
	tb_buf_init(&b);
	if (tb_trust_serialize(t, &a, NULL) != TB_OK)
		abort();
	fuzz_canon_equal(data, size, a.data, a.len, "trust anchor");
	if ((t2 = tb_trust_parse(a.data, a.len, &d)) == NULL) {
		fprintf(stderr, "serialised anchor refused: %s (%s)\n", tb_err_reason(d.code),
		        d.detail);
		abort();
	}
	if (tb_trust_serialize(t2, &b, NULL) != TB_OK || a.len != b.len ||
	    memcmp(a.data, b.data, a.len) != 0)
		abort();
	tb_trust_free(t2);
	tb_trust_free(t);
	tb_buf_free(&a);
	tb_buf_free(&b);
	return 0;
}
