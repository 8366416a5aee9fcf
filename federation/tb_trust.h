/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_trust.h - a node's trust anchor for registries (docs/PROTOCOL.md 7.2).
 *
 * Names the federation, its root certificate (PEM, kept for the DTLS layer
 * and for display; not interpreted here), the registry authorities' public
 * keys and the threshold k: a registry is accepted with valid signatures
 * from at least k distinct authorities.
 *
 * Thread-safety: as tb_reg.h: accessors read only; building and
 * freeing need the anchor to themselves.
 *
 * Ownership: tb_trust_new/parse return an anchor the caller frees
 * with tb_trust_free (NULL allowed); setters copy; what accessors
 * return is borrowed from the anchor.
 */
#ifndef TB_TRUST_H
#define TB_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "../certs/tb_key.h"
#include "../util/tb_err.h"

struct tb_trust;
struct tb_buf;
struct tb_diag;

#define TB_TRUST_MAX_SIZE (1u << 20)
#define TB_TRUST_MAX_AUTHORITIES 64
#define TB_TRUST_MAX_ROOT 65536 /* bytes of root certificate PEM */

/* A new, empty anchor for federation (copied). NULL on bad name/memory. */
TB_MUST_CHECK struct tb_trust *tb_trust_new(const char *federation, struct tb_diag *d);
/* Parses a trust anchor document (borrowed).  NULL on failure (d set:
 * TB_E_JSON_*, TB_E_FIELD_*, TB_E_VERSION, TB_E_REG_LIMIT,
 * TB_E_REG_DUP_SIGNER, TB_E_REG_KEY_ID, TB_E_KEY).  Caller frees. */
TB_MUST_CHECK struct tb_trust *tb_trust_parse(const uint8_t *text, size_t len, struct tb_diag *d);
/* Frees. NULL allowed. */
void tb_trust_free(struct tb_trust *t);

/* Sets the root certificate's PEM text (copied) and key id. */
TB_MUST_CHECK int tb_trust_set_root(struct tb_trust *t, const char *pem, size_t len,
                                    const uint8_t kid[TB_KEYID_LEN], struct tb_diag *d);
/* Adds an authority: its DER SPKI (copied) and a display name (copied,
 * may be NULL).  TB_E_REG_DUP_SIGNER if the key is already there,
 * TB_E_KEY if the SPKI is not an Ed25519/P-256 key. */
TB_MUST_CHECK int tb_trust_add_authority(struct tb_trust *t, const uint8_t *spki, size_t spki_len,
                                         const char *name, struct tb_diag *d);
/* 1 <= k <= number of authorities, else TB_E_FIELD_VALUE. */
TB_MUST_CHECK int tb_trust_set_threshold(struct tb_trust *t, unsigned k, struct tb_diag *d);
/* Appends the canonical JSON form.  TB_E_FIELD_VALUE if incomplete. */
TB_MUST_CHECK int tb_trust_serialize(const struct tb_trust *t, struct tb_buf *out,
                                     struct tb_diag *d);

const char *tb_trust_federation(const struct tb_trust *t);
unsigned tb_trust_threshold(const struct tb_trust *t);
size_t tb_trust_count(const struct tb_trust *t);
/* Index of the authority with key id kid, or (size_t)-1. */
size_t tb_trust_find(const struct tb_trust *t, const uint8_t kid[TB_KEYID_LEN]);
/* Authority i's public key and name (borrowed). */
const struct tb_pub *tb_trust_pub(const struct tb_trust *t, size_t i);
const char *tb_trust_name(const struct tb_trust *t, size_t i);
void tb_trust_kid(const struct tb_trust *t, size_t i, uint8_t kid[TB_KEYID_LEN]);
/* The root certificate's PEM text (borrowed; NULL until set). */
const char *tb_trust_root_pem(const struct tb_trust *t);

#endif
