/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_enc.h - base64url (RFC 4648 section 5, no padding) and lowercase hex.
 *
 * Decoders are strict: they refuse padding, characters outside the
 * alphabet, and non-canonical trailing bits, so every byte string has
 * exactly one accepted text form (needed for signed content).
 *
 * Thread-safety: pure functions; they read and write only the caller's
 * buffers, which the caller sizes as each function says.
 */
#ifndef TB_ENC_H
#define TB_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb_err.h"

/* Length of the base64url text for n bytes (no padding, no NUL). */
size_t tb_b64url_len(size_t n);
/* Writes tb_b64url_len(n) characters plus a NUL into out. */
void tb_b64url_encode(const uint8_t *in, size_t n, char *out);
/* Decodes len characters into out (capacity outcap). Sets *outlen.
 * Returns false on any invalid input or if out is too small. */
TB_MUST_CHECK bool tb_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outcap,
                                    size_t *outlen);

/* Writes 2n lowercase hex digits plus a NUL into out. */
void tb_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2n lowercase hex digits into n bytes. */
TB_MUST_CHECK bool tb_hex_decode(const char *in, size_t len, uint8_t *out, size_t n);
/* Whether all len bytes of s are lowercase hex digits. */
bool tb_hex_valid(const char *s, size_t len);

/* Constant-time comparison of n bytes. */
bool tb_ct_equal(const void *a, const void *b, size_t n);

#endif
