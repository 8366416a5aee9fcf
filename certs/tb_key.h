/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_key.h - signing keys, public keys, key ids, sign/verify (GnuTLS).
 *
 * The only module that holds private key material.  A struct tb_key
 * signs on request; nothing outside certs/ reads its bytes.  Three
 * algorithms: Ed25519, ECDSA P-256 with SHA-256 (both through GnuTLS) and
 * SM2 with SM3 (GB/T 32918.2, distid 1234567812345678, through OpenSSL 3
 * libcrypto in tb_sm2.c).  Signatures are raw and fixed-size (64 bytes for
 * all: R||S for Ed25519, r||s big-endian for P-256 as JOSE does, and r||s
 * big-endian for SM2), so their encoding has one form on the wire.
 * SM2 keys have no X.509 certificates here (GnuTLS cannot read them):
 * tb_key_gnutls()/tb_pub_gnutls() return NULL for them.
 *
 * The key id of a public key is SHA-256 over its DER SubjectPublicKeyInfo.
 *
 * Thread-safety: after tb_crypto_init() (once, before other threads
 * start), the functions are reentrant.  Functions taking a const object
 * only read it and may run on one object in several threads at once
 * (the node verifies with one public key from two threads); one that
 * changes or frees an object needs it to itself.  tb_random() may be
 * called from any thread.
 *
 * Ownership: constructors return a new object or NULL, which the caller
 * frees with its _free() (NULL allowed); byte arguments are borrowed;
 * output is appended to the caller's buffer.
 */
#ifndef TB_KEY_H
#define TB_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/tb_err.h"

struct tb_key; /* a private key */
struct tb_pub; /* a public key */
struct tb_buf;
struct tb_diag;

enum tb_alg { TB_ALG_NONE = 0, TB_ALG_ED25519 = 1, TB_ALG_P256 = 2, TB_ALG_SM2 = 3 };

#define TB_KEYID_LEN 32
#define TB_SIG_LEN 64

/* "ed25519" / "p256" / "sm2" <-> enum; TB_ALG_NONE / NULL when unknown. */
TB_MUST_CHECK enum tb_alg tb_alg_from_name(const char *name);
const char *tb_alg_name(enum tb_alg alg);

/* Process-wide GnuTLS initialisation; call once before any other use.
 * 0 or TB_E_CRYPTO. */
TB_MUST_CHECK int tb_crypto_init(void);

/* A new random key. NULL on failure (d says why). Caller frees. */
TB_MUST_CHECK struct tb_key *tb_key_generate(enum tb_alg alg, struct tb_diag *d);
/* Loads a PEM private key (PKCS#8, encrypted when password != NULL, or a
 * plain SEC1/PKCS#8 key). NULL on failure. Caller frees. */
TB_MUST_CHECK struct tb_key *tb_key_load(const char *path, const char *password, struct tb_diag *d);
/* Same from memory (borrowed). */
TB_MUST_CHECK struct tb_key *tb_key_import(const uint8_t *pem, size_t len, const char *password,
                                           struct tb_diag *d);
/* Writes the key as PKCS#8 PEM to path with mode 0600, encrypted with
 * AES-256 (PBES2) when password != NULL.  Refuses to overwrite. */
TB_MUST_CHECK int tb_key_save(const struct tb_key *key, const char *path, const char *password,
                              struct tb_diag *d);
/* Wipes and frees. NULL allowed. */
void tb_key_free(struct tb_key *key);

enum tb_alg tb_key_alg(const struct tb_key *key);
/* The key id of the key's public half. */
void tb_key_id(const struct tb_key *key, uint8_t out[TB_KEYID_LEN]);
/* A new public key object for the key's public half. Caller frees. */
TB_MUST_CHECK struct tb_pub *tb_key_pub(const struct tb_key *key);
/* Signs n bytes; writes TB_SIG_LEN bytes to sig. 0 or TB_E_CRYPTO. */
TB_MUST_CHECK int tb_key_sign(const struct tb_key *key, const void *data, size_t n,
                              uint8_t sig[TB_SIG_LEN]);

/* Loads a public key from PEM: a "PUBLIC KEY" block or a certificate. */
TB_MUST_CHECK struct tb_pub *tb_pub_load(const char *path, struct tb_diag *d);
TB_MUST_CHECK struct tb_pub *tb_pub_import(const uint8_t *pem, size_t len, struct tb_diag *d);
/* From DER SubjectPublicKeyInfo (borrowed). */
TB_MUST_CHECK struct tb_pub *tb_pub_import_spki(const uint8_t *der, size_t len, struct tb_diag *d);
/* Frees. NULL allowed. */
void tb_pub_free(struct tb_pub *pub);

enum tb_alg tb_pub_alg(const struct tb_pub *pub);
void tb_pub_id(const struct tb_pub *pub, uint8_t out[TB_KEYID_LEN]);
/* Appends the DER SubjectPublicKeyInfo to out. 0 or TB_E_CRYPTO/NOMEM. */
TB_MUST_CHECK int tb_pub_spki(const struct tb_pub *pub, struct tb_buf *out);
/* Appends the "PUBLIC KEY" PEM text to out. */
TB_MUST_CHECK int tb_pub_pem(const struct tb_pub *pub, struct tb_buf *out);
/* True when sig (TB_SIG_LEN bytes) is pub's signature over data. */
TB_MUST_CHECK bool tb_pub_verify(const struct tb_pub *pub, const void *data, size_t n,
                                 const uint8_t sig[TB_SIG_LEN]);

/* SHA-256 of n bytes. */
void tb_sha256(const void *data, size_t n, uint8_t out[32]);
/* SM3 of n bytes (GB/T 32905). */
void tb_sm3_hash(const void *data, size_t n, uint8_t out[32]);
/* The hash that goes with a signature algorithm under a signature: SM3
 * for TB_ALG_SM2, SHA-256 for the others. */
void tb_alg_hash(enum tb_alg alg, const void *data, size_t n, uint8_t out[32]);
/* Fills n bytes from the system's CSPRNG. 0 or TB_E_CRYPTO. */
TB_MUST_CHECK int tb_random(void *out, size_t n);

#endif
