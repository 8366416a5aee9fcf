/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_cert_internal.h - for certs/ only: the GnuTLS handle behind a
 * struct tb_cert, so CA issuing and chain validation (tb_ca.c) work on the
 * parsed certificate instead of re-parsing it.
 */
#ifndef TB_CERT_INTERNAL_H
#define TB_CERT_INTERNAL_H

#include <gnutls/x509.h>

#include "tb_cert.h"
#include "../util/tb_err.h"

/* Borrowed; valid while cert lives. */
gnutls_x509_crt_t tb_cert_gnutls(const struct tb_cert *cert);
/* Takes ownership of crt (freed with the result, or on failure). */
TB_MUST_CHECK struct tb_cert *tb_cert_wrap(gnutls_x509_crt_t crt, struct tb_diag *d);
/* True when id is a member id: six ASCII digits, the first 1-9.  A local
 * copy of protocol/'s rule, since certs/ sits below protocol/. */
bool tb_member_id_ok(const char *id);

#endif
