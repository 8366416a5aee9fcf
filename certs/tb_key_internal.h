/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_key_internal.h - for certs/ only: the GnuTLS handles behind keys, so
 * the X.509 code can sign certificates and CRLs without copying key bytes.
 */
#ifndef TB_KEY_INTERNAL_H
#define TB_KEY_INTERNAL_H

#include <gnutls/abstract.h>

#include "tb_key.h"
#include "../util/tb_err.h"

/* Borrowed; valid while key lives. */
gnutls_privkey_t tb_key_gnutls(const struct tb_key *key);
gnutls_pubkey_t tb_pub_gnutls(const struct tb_pub *pub);
/* Takes ownership of pk (freed with the result, or on failure). */
TB_MUST_CHECK struct tb_pub *tb_pub_wrap(gnutls_pubkey_t pk, struct tb_diag *d);
TB_MUST_CHECK struct tb_key *tb_key_wrap(gnutls_privkey_t pk, struct tb_diag *d);

#endif
