/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_flow.c - libFuzzer target for message bodies (protocol/tb_flow).
 *
 * The input is a body's JSON text, parsed with the envelope limits.  It is
 * checked against the schema of every version 1 type; an accepted body's
 * canonical form must be the input's and be accepted again; a refusal must be
 * TB_E_BODY with a detail naming a path under "body", the same with or
 * without a diag.  An accepted case.* body must yield a valid case id.
 * The input (and each element of its "licences") is also checked as a
 * presented licence with one fixed Ed25519 key registered for issuer
 * 320300 (the RFC 8032 test 1 key, as in fuzz_env_open), so the signed
 * seed in corpus/flow/ lets the fuzzer explore past the signature check;
 * only a licence signed by that key may pass.
 * Build: ./configure CC=clang --enable-fuzzers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/tb_key.h"
#include "protocol/tb_env.h"
#include "protocol/tb_flow.h"
#include "protocol/tb_json.h"
#include "util/tb_err.h"
#include "fuzz_canon.h"
#include "fuzz_key.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_key_init();
	return 0;
}

/* Every issuer is active: the fuzzer explores the licence's own checks. */
static int
status(void *ctx, const char *issuer)
{
	(void)ctx;
	(void)issuer;
	return TB_OK;
}

static void
licence(const struct tb_json *v)
{
	struct tb_diag d;
	uint8_t dg[32];
	int rc = tb_flow_licence_check(v, lookup, status, NULL, 1700000000, &d);

	if (rc != TB_OK && d.code != rc)
		abort();
	if (rc == TB_OK) {
		const struct tb_json *issuer = tb_json_get(v, "issuer");
		if (issuer == NULL || strcmp(tb_json_string(issuer, NULL), "320300") != 0)
			abort();
	}
	if (tb_json_kind(v) == TB_JSON_OBJECT && tb_flow_licence_digest(v, dg) != TB_OK)
		abort();
}

/* A body the type accepts: the body travels as its canonical form, which
 * must be the input's (fuzz_canon.h) and be accepted the same way. */
static void
accepted_as(const char *type, const uint8_t *data, size_t size, const struct tb_json *body)
{
	struct tb_buf c;
	struct tb_json_doc *again;

	tb_buf_init(&c);
	if (tb_json_canon(body, NULL, &c) != TB_OK)
		abort();
	fuzz_canon_equal(data, size, c.data, c.len, type);
	if ((again = tb_json_parse(c.data, c.len, NULL, NULL)) == NULL ||
	    tb_flow_check_body(type, tb_json_root(again), NULL) != TB_OK)
		abort();
	tb_json_doc_free(again);
	tb_buf_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tb_json_limits limits = {TB_ENV_MAX_SIZE, TB_ENV_MAX_DEPTH};
	struct tb_json_doc *doc;
	const struct tb_json *body, *lics;
	struct tb_diag d;

	if ((doc = tb_json_parse(data, size, &limits, &d)) == NULL)
		return 0;
	body = tb_json_root(doc);
	for (const char *const *t = tb_msgtype_all(); *t != NULL; t++) {
		int rc = tb_flow_check_body(*t, body, &d);
		if (rc != TB_OK &&
		    (rc != TB_E_BODY || d.code != rc || strncmp(d.detail, "body", 4) != 0)) {
			fprintf(stderr, "%s: %d %s\n", *t, rc, d.detail);
			abort();
		}
		if (tb_flow_check_body(*t, body, NULL) != rc)
			abort();
		if (rc == TB_OK)
			accepted_as(*t, data, size, body);
		if (rc == TB_OK && strncmp(*t, "case.", 5) == 0) {
			const char *id = tb_flow_case_id(body);
			if (id == NULL || !tb_flow_case_id_valid(id, strlen(id)))
				abort();
		}
	}
	licence(body);
	if ((lics = tb_json_get(body, "licences")) != NULL)
		for (const struct tb_json *l = tb_json_first(lics); l != NULL; l = tb_json_next(l))
			licence(l);
	tb_json_doc_free(doc);
	return 0;
}
