/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_env_open.c - libFuzzer target for envelope parsing and opening.
 *
 * At start-up one fixed Ed25519 key is loaded (the RFC 8032 test 1 key, so
 * the sealed envelopes in corpus/env/ verify and the fuzzer can explore past
 * the signature check); tb_env_open() runs on every input with that key
 * registered for member 320300 at now = 1700000000.  Independently, tb_env_parse() must give an
 * envelope whose serialisation is the canonical form of the input
 * (fuzz_canon.h) and parses again to the same bytes
 * (parse + serialize is idempotent) with the same digest.  An array is
 * also opened as a batch answer (tb_env_open_many): what opens must
 * serialise to an envelope that opens on its own.
 * Build: ./configure CC=clang --enable-fuzzers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/tb_key.h"
#include "protocol/tb_env.h"
#include "util/tb_buf.h"
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tb_env_open_opts o;
	struct tb_env *e = NULL, *e2;
	struct tb_diag d;
	struct tb_buf s1, s2;
	uint8_t dg1[32], dg2[32];
	int rc;

	memset(&o, 0, sizeof(o));
	o.lookup = lookup;
	o.now = 1700000000;
	o.skew = TB_ENV_DEFAULT_SKEW;
	rc = tb_env_open(data, size, &o, &e, &d);
	if ((rc == TB_OK) != (e != NULL) || (rc != TB_OK && d.code != rc))
		abort();
	if (e != NULL) {
		/* only a real signature by our key can get here */
		if (!tb_env_sealed(e) || memcmp(tb_env_kid(e), kid, TB_KEYID_LEN) != 0)
			abort();
		tb_env_free(e);
	}
	/* the same without a diag gives the same code */
	if (tb_env_open(data, size, &o, &e, NULL) != rc)
		abort();
	tb_env_free(e);

	/* as the elements of a batch answer (compact members completed) */
	{
		size_t off[64], len[64];
		int n = tb_env_split_batch(data, size, off, len, 64);
		struct tb_env *out[64];
		struct tb_diag ds[64];
		for (int k = 0; n > 0 && k < n; k++)
			out[k] = (struct tb_env *)1;
		if (n > 0)
			tb_env_open_many(data, off, len, (size_t)n, &o, out, ds);
		for (int k = 0; n > 0 && k < n; k++) {
			if ((out[k] != NULL) != (ds[k].code == TB_OK))
				abort();
			if (out[k] == NULL)
				continue;
			/* a completed member is a whole envelope that opens alone */
			struct tb_buf full;
			struct tb_env *again = NULL;
			tb_buf_init(&full);
			if (tb_env_serialize(out[k], &full) != TB_OK ||
			    tb_env_open(full.data, full.len, &o, &again, &d) != TB_OK)
				abort();
			tb_env_free(again);
			tb_env_free(out[k]);
			tb_buf_free(&full);
		}
	}

	if ((e = tb_env_parse(data, size, &d)) == NULL)
		return 0;
	tb_buf_init(&s1);
	tb_buf_init(&s2);
	if (tb_env_serialize(e, &s1) != TB_OK || tb_env_digest(e, dg1) != TB_OK)
		abort();
	fuzz_canon_equal(data, size, s1.data, s1.len, "envelope");
	if ((e2 = tb_env_parse(s1.data, s1.len, &d)) == NULL) {
		fprintf(stderr, "serialised envelope refused: %s (%s)\n%.*s\n",
		        tb_err_reason(d.code), d.detail, (int)s1.len, (const char *)s1.data);
		abort();
	}
	if (tb_env_serialize(e2, &s2) != TB_OK || tb_env_digest(e2, dg2) != TB_OK)
		abort();
	if (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len) != 0 || memcmp(dg1, dg2, 32) != 0)
		abort();
	/* relaying through a fresh hub must not break validity */
	if (tb_env_add_hop(e2, "410000") == TB_OK) {
		tb_buf_reset(&s2);
		if (tb_env_serialize(e2, &s2) != TB_OK)
			abort();
		tb_env_free(e2);
		if ((e2 = tb_env_parse(s2.data, s2.len, &d)) == NULL && d.code != TB_E_TOO_LARGE) {
			fprintf(stderr, "relayed envelope refused: %s (%s)\n",
			        tb_err_reason(d.code), d.detail);
			abort();
		}
	}
	tb_env_free(e2);
	tb_env_free(e);
	tb_buf_free(&s1);
	tb_buf_free(&s2);
	return 0;
}
