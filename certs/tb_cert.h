/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_cert.h - X.509 certificates of federation members (GnuTLS).
 *
 * A member's id (GB/T 2260 division code) is carried in the subject's
 * serialNumber attribute (OID 2.5.4.5), e.g.
 *   serialNumber=320300, CN=Xuzhou, O=huaihai
 * Key ids are tb_key.h's: SHA-256 over the SubjectPublicKeyInfo.
 *
 * Thread-safety: as tb_key.h: a certificate is read-only after loading,
 * so const accessors may run on one certificate in several threads.
 *
 * Ownership: tb_cert_load/import return a new certificate the caller
 * frees (tb_cert_free, NULL allowed); strings returned are borrowed
 * from the certificate.
 */
#ifndef TB_CERT_H
#define TB_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb_key.h"
#include "../util/tb_err.h"

struct tb_cert;
struct tb_diag;
struct tb_buf;

#define TB_MEMBER_ID_MAX 16

/* Loads the first certificate of a PEM (or DER) file.  NULL on failure
 * with d saying why (TB_E_IO, TB_E_CERT "malformed ...").  Caller frees. */
TB_MUST_CHECK struct tb_cert *tb_cert_load(const char *path, struct tb_diag *d);
/* Same from memory (borrowed). */
TB_MUST_CHECK struct tb_cert *tb_cert_import(const uint8_t *data, size_t len, struct tb_diag *d);
/* Frees. NULL allowed. */
void tb_cert_free(struct tb_cert *cert);

/* The subject's serialNumber as a member id (NUL-terminated into out).
 * TB_E_CERT when absent or not a valid member id. */
TB_MUST_CHECK int tb_cert_member_id(const struct tb_cert *cert, char out[TB_MEMBER_ID_MAX]);
/* Key id of the certified public key. */
void tb_cert_key_id(const struct tb_cert *cert, uint8_t out[TB_KEYID_LEN]);
/* A new public key object for the certified key. NULL on failure
 * (e.g. an algorithm other than Ed25519/P-256). Caller frees. */
TB_MUST_CHECK struct tb_pub *tb_cert_pub(const struct tb_cert *cert, struct tb_diag *d);
/* Validity window, Unix seconds. */
int64_t tb_cert_not_before(const struct tb_cert *cert);
int64_t tb_cert_not_after(const struct tb_cert *cert);
/* True when basicConstraints says CA. */
bool tb_cert_is_ca(const struct tb_cert *cert);
/* Subject DN as text (RFC 4514). Borrowed; valid while cert lives. */
const char *tb_cert_subject(const struct tb_cert *cert);

/* ---- added with issue 3 (PKI); the functions above are unchanged ---- */

/* Issuer DN as text (RFC 4514). Borrowed; valid while cert lives. */
const char *tb_cert_issuer(const struct tb_cert *cert);
/* The serial number as lowercase hex (NUL-terminated into out); at most
 * 20 bytes per RFC 5280, so 41 characters.  TB_E_CERT when unreadable. */
#define TB_CERT_SERIAL_HEX_MAX 41
TB_MUST_CHECK int tb_cert_serial_hex(const struct tb_cert *cert, char out[TB_CERT_SERIAL_HEX_MAX]);
/* SHA-256 over the certificate's DER encoding (its fingerprint). */
void tb_cert_fingerprint(const struct tb_cert *cert, uint8_t out[32]);
/* Describes the certified key, e.g. "p256", "ed25519", "RSA-2048", into
 * out (always NUL-terminated). Returns out. */
const char *tb_cert_key_desc(const struct tb_cert *cert, char *out, size_t outlen);
/* Appends the certificate as PEM text to out. 0, TB_E_NOMEM or TB_E_CERT. */
TB_MUST_CHECK int tb_cert_pem(const struct tb_cert *cert, struct tb_buf *out);
/* True when the certificate's issuer DN equals its subject DN and its own
 * key verifies its signature. */
bool tb_cert_is_self_signed(const struct tb_cert *cert);

#endif
