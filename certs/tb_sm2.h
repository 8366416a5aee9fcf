/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_sm2.h - the SM primitives (GB/T 32918.2 SM2 signatures, GB/T 32905
 * SM3) through OpenSSL 3 libcrypto.  For certs/ only: tb_key.c wraps an
 * SM2 key in its struct tb_key / struct tb_pub, so the layers above see
 * one key API and the algorithm TB_ALG_SM2; tb_sm3() is public through
 * tb_key.h's tb_hash().
 *
 * Signatures are SM2 over SM3 with the signer's Z value computed from the
 * default distinguishing identifier "1234567812345678" (GM/T 0009), on
 * the curve sm2p256v1, as 64 bytes r||s big-endian (TB_SIG_LEN).  Key files
 * are PKCS#8 / SubjectPublicKeyInfo PEM with the SM2 curve OID
 * 1.2.156.10197.1.301, the form `openssl genpkey -algorithm SM2` writes.
 *
 * Thread-safety: one struct tb_sm2 may sign or verify from several threads
 * at once (each call uses its own context); freeing needs it alone.
 *
 * Ownership: constructors return a new object or NULL; the caller frees
 * with tb_sm2_free (NULL allowed).  Byte arguments are borrowed; output is
 * appended to the caller's buffer.
 */
#ifndef TB_SM2_H
#define TB_SM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/tb_err.h"

struct tb_sm2; /* an SM2 key: private (can sign) or public only */
struct tb_buf;
struct tb_diag;

#define TB_SM2_DISTID "1234567812345678"

/* SM3 of n bytes. */
void tb_sm3(const void *data, size_t n, uint8_t out[32]);

/* A new random private key. NULL on failure. */
TB_MUST_CHECK struct tb_sm2 *tb_sm2_generate(struct tb_diag *d);
/* A private key from PEM (PKCS#8, encrypted when password != NULL, or
 * SEC1 "EC PRIVATE KEY").  NULL when the text is not an SM2 private key
 * (d says why). */
TB_MUST_CHECK struct tb_sm2 *tb_sm2_import_key(const uint8_t *pem, size_t len, const char *password,
                                               struct tb_diag *d);
/* A public key from a PEM "PUBLIC KEY" block, or from DER
 * SubjectPublicKeyInfo when der is true.  NULL when not SM2. */
TB_MUST_CHECK struct tb_sm2 *tb_sm2_import_pub(const uint8_t *p, size_t len, bool der,
                                               struct tb_diag *d);
/* The public half of key as a new public-only object. */
TB_MUST_CHECK struct tb_sm2 *tb_sm2_public(const struct tb_sm2 *key);
void tb_sm2_free(struct tb_sm2 *k);

bool tb_sm2_is_private(const struct tb_sm2 *k);
/* Appends PKCS#8 PEM (AES-256-CBC PBES2 when password != NULL). */
TB_MUST_CHECK int tb_sm2_pkcs8_pem(const struct tb_sm2 *key, const char *password,
                                   struct tb_buf *out);
/* Appends DER SubjectPublicKeyInfo / its "PUBLIC KEY" PEM. */
TB_MUST_CHECK int tb_sm2_spki(const struct tb_sm2 *k, struct tb_buf *out);
TB_MUST_CHECK int tb_sm2_pub_pem(const struct tb_sm2 *k, struct tb_buf *out);

/* Signs n bytes (SM3 with Z, distid TB_SM2_DISTID); 64 bytes r||s.
 * 0 or TB_E_CRYPTO. */
TB_MUST_CHECK int tb_sm2_sign(const struct tb_sm2 *key, const void *data, size_t n,
                              uint8_t sig[64]);
/* True when sig (64 bytes r||s) is k's signature over data. */
TB_MUST_CHECK bool tb_sm2_verify(const struct tb_sm2 *k, const void *data, size_t n,
                                 const uint8_t sig[64]);

#endif
