/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_inflate.c - libFuzzer target for the deflate content coding
 * (util/tb_deflate), the first thing a node does with a content-format
 * 11050 body: inflate under a 64 KiB limit; a refusal must be one of the
 * documented codes with a detail; an accepted stream's data, deflated
 * again, must inflate back to the same bytes.  Build: ./configure CC=clang
 * --enable-fuzzers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/tb_buf.h"
#include "util/tb_deflate.h"
#include "util/tb_err.h"

#define LIMIT 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tb_buf out, z, back;
	struct tb_diag d;
	int rc;

	tb_buf_init(&out);
	tb_buf_init(&z);
	tb_buf_init(&back);
	rc = tb_inflate(data, size, LIMIT, &out, &d);
	if (rc != TB_OK) {
		if ((rc != TB_E_ENCODING && rc != TB_E_TOO_LARGE) || d.code != rc ||
		    d.detail[0] == '\0')
			abort();
		goto done;
	}
	if (out.len > LIMIT || tb_deflate(out.data, out.len, &z, &d) != TB_OK ||
	    tb_inflate(z.data, z.len, LIMIT, &back, &d) != TB_OK || back.len != out.len ||
	    (out.len > 0 && memcmp(back.data, out.data, out.len) != 0))
		abort();
done:
	tb_buf_free(&out);
	tb_buf_free(&z);
	tb_buf_free(&back);
	return 0;
}
