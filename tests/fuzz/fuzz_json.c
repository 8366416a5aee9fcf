/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_json.c - libFuzzer target for the strict JSON parser and the RFC 8785
 * serialiser: parse with the default limits; if accepted, canonicalize, parse
 * the canonical text again and require canonical(canonical(x)) ==
 * canonical(x).  Also: a refusal must carry an error code and an offset
 * inside the input.  Build: ./configure CC=clang --enable-fuzzers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/tb_json.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tb_diag d;
	struct tb_json_doc *doc, *doc2;
	struct tb_buf c1, c2;

	doc = tb_json_parse(data, size, NULL, &d);
	if (doc == NULL) {
		if (d.code == TB_OK || (d.offset != TB_DIAG_NOPOS && d.offset > size))
			abort();
		return 0;
	}
	tb_buf_init(&c1);
	tb_buf_init(&c2);
	if (tb_json_canon(tb_json_root(doc), NULL, &c1) != TB_OK)
		abort();
	doc2 = tb_json_parse(c1.data, c1.len, NULL, &d);
	if (doc2 == NULL) {
		fprintf(stderr, "canonical form refused: %s at %zu (%s)\n%.*s\n",
		        tb_err_reason(d.code), d.offset, d.detail, (int)c1.len,
		        (const char *)c1.data);
		abort();
	}
	if (tb_json_canon(tb_json_root(doc2), NULL, &c2) != TB_OK)
		abort();
	if (c1.len != c2.len || memcmp(c1.data, c2.data, c1.len) != 0) {
		fprintf(stderr, "not idempotent:\n%.*s\n%.*s\n", (int)c1.len, (const char *)c1.data,
		        (int)c2.len, (const char *)c2.data);
		abort();
	}
	/* canonical text is valid UTF-8 */
	if (!tb_utf8_valid(c1.data, c1.len))
		abort();
	tb_json_doc_free(doc2);
	tb_json_doc_free(doc);
	tb_buf_free(&c1);
	tb_buf_free(&c2);
	return 0;
}
