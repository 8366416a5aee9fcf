/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_canon.h - the assertion every fuzz target makes of what its parser
 * accepts: signed bytes are the only truth, so the RFC 8785 form of the
 * input itself must equal the serialisation of the parsed model (nothing
 * dropped, nothing added, nothing reordered in meaning).
 */
#ifndef FUZZ_CANON_H
#define FUZZ_CANON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/tb_json.h"
#include "util/tb_buf.h"

/* Aborts unless canonical(input) == model[0..n) (a trailing newline of
 * model, as files are written, is not part of the form). */
static inline void
fuzz_canon_equal(const uint8_t *data, size_t size, const uint8_t *model, size_t n,
                 const char *what)
{
	static const struct tb_json_limits lim = {64u << 20, 512};
	struct tb_json_doc *doc = tb_json_parse(data, size, &lim, NULL);
	struct tb_buf c;

	if (doc == NULL) {
		fprintf(stderr, "%s: accepted input is not JSON\n", what);
		abort();
	}
	tb_buf_init(&c);
	if (tb_json_canon(tb_json_root(doc), NULL, &c) != 0)
		abort();
	if (n > 0 && model[n - 1] == '\n')
		n--;
	if (c.len != n || memcmp(c.data, model, n) != 0) {
		fprintf(stderr, "%s: model does not reproduce the input\n%.*s\n%.*s\n", what,
		        (int)c.len, (const char *)c.data, (int)n, (const char *)model);
		abort();
	}
	tb_buf_free(&c);
	tb_json_doc_free(doc);
}

#endif
