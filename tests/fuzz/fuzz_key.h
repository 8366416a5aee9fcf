/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_key.h - the one signing key the envelope and flow fuzz targets
 * share: the RFC 8032 section 7.1 TEST 1 secret key as PKCS#8 (key id
 * 06e3fd8fda29bb60ab59557de61edb0aecdb231134be30e75b455f8e1b792fa9),
 * registered for member 320300.  Included by one fuzz target each; the
 * state is that program's own.
 */
#ifndef TB_FUZZ_KEY_H
#define TB_FUZZ_KEY_H

#include <stdlib.h>
#include <string.h>

#include "certs/tb_key.h"
#include "util/tb_err.h"

static const char fuzz_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";
static struct tb_key *key;
static struct tb_pub *pub;
static uint8_t kid[TB_KEYID_LEN];

/* The lookup the targets pass on: the key, for member 320300 only. */
static const struct tb_pub *
lookup(void *ctx, const char *from, const uint8_t id[TB_KEYID_LEN])
{
	(void)ctx;
	if (from == NULL || strcmp(from, "320300") != 0)
		return NULL;
	return memcmp(id, kid, TB_KEYID_LEN) == 0 ? pub : NULL;
}

/* Loads the key once, at start-up; aborts when it cannot. */
static void
fuzz_key_init(void)
{
	if (tb_crypto_init() != TB_OK ||
	    (key = tb_key_import((const uint8_t *)fuzz_key_pem, sizeof(fuzz_key_pem) - 1, NULL,
	                         NULL)) == NULL ||
	    (pub = tb_key_pub(key)) == NULL)
		abort();
	tb_key_id(key, kid);
}

#endif
