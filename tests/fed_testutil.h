/* SPDX-License-Identifier: Apache-2.0 */
/* fed_testutil.h - helpers shared by the federation/ unit tests. */
#ifndef FED_TESTUTIL_H
#define FED_TESTUTIL_H

#include <stdint.h>
#include <string.h>

#include "certs/tb_key.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

/* DER SubjectPublicKeyInfo of a key, from its PEM. 0 on success. */
static inline int
fed_key_spki(const struct tb_key *key, struct tb_buf *der)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct tb_pub *pub = tb_key_pub(key);
	struct tb_buf pem;
	uint32_t acc = 0;
	int bits = 0, rc = -1;
	const char *p, *end;

	tb_buf_init(&pem);
	if (pub == NULL || tb_pub_pem(pub, &pem) != TB_OK)
		goto out;
	p = strstr((const char *)pem.data, "-----\n");
	end = strstr((const char *)pem.data, "\n-----END");
	if (p == NULL || end == NULL)
		goto out;
	for (p += 6; p < end; p++) {
		const char *q;
		if (*p == '\n' || *p == '=' || (q = strchr(al, *p)) == NULL)
			continue;
		acc = (acc << 6) | (uint32_t)(q - al);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			tb_buf_addc(der, (uint8_t)(acc >> bits));
		}
	}
	rc = 0;
out:
	tb_pub_free(pub);
	tb_buf_free(&pem);
	return rc;
}

/* A deterministic xorshift generator (tests must be reproducible). */
static inline uint64_t
fed_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#endif
