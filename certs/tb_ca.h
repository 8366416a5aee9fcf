/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_ca.h - the federation PKI: certificate authorities, node certificate
 * requests, revocation lists and chain validation (GnuTLS X.509).
 *
 * Shape of the federation PKI:
 *   root CA "CN=NAME"                         (pathLen unlimited)
 *     province CA "CN=NAME, serialNumber=HUB"  (pathLen 0)
 *       node "O=ORG, CN=NAME, serialNumber=MEMBER" (digitalSignature,
 *            EKU serverAuth+clientAuth, SAN = endpoint host + endpoint URI)
 *
 * A CA lives in a directory:
 *   ca.key      the CA's private key (PKCS#8 PEM, 0600, optionally encrypted)
 *   ca.crt      its certificate
 *   index.txt   one line per certificate it issued, tab-separated:
 *               status(V|R) serial-hex member-id not-after revoked-at reason subject
 *               (member-id "-" when the subject has none; revoked-at and
 *               reason "-" while valid; times in Unix seconds)
 *   crlnumber   the last CRL number issued (decimal)
 * Serial numbers are 16 random bytes with the top bit cleared (positive).
 * Operations on a directory are not locked against each other: one
 * administrator works on one CA at a time.
 *
 * Thread-safety: as tb_key.h for the objects here (CA, CSR, CRL, trust
 * store): const operations may share an object between threads, changes
 * need it to themselves.  A CA directory is not locked (above).
 *
 * Ownership: every _new/_open/_load/_import returns an object the
 * caller frees with its _free (NULL allowed); arguments are borrowed
 * unless a function says it copies; output is appended to the caller's
 * buffer.
 */
#ifndef TB_CA_H
#define TB_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb_cert.h"
#include "tb_key.h"
#include "../util/tb_err.h"

struct tb_buf;
struct tb_diag;
struct tb_ca;      /* an open CA directory */
struct tb_csr;     /* a parsed, signature-checked certificate request */
struct tb_crl;     /* a parsed revocation list */
struct tb_castore; /* trust anchors and CRLs for chain validation */

/* What a CA is created with (borrowed strings). */
struct tb_ca_spec {
	const char *name; /* CN, required */
	const char *id;   /* serialNumber (hub member id) or NULL */
	enum tb_alg alg;  /* key algorithm */
	unsigned days;    /* validity */
};

/* Default validity periods, days. */
#define TB_CA_ROOT_DAYS 3650
#define TB_CA_SUB_DAYS 1825
#define TB_CA_NODE_DAYS 365
#define TB_CA_CRL_DAYS 30

/* ---- endpoints ---- */

/* Splits "coaps://HOST:PORT" (HOST a DNS name, dotted IPv4 or [IPv6]) into
 * host (NUL-terminated, without brackets) and port.  TB_E_ARG when the
 * text is not such a URI or host does not fit hostlen. */
TB_MUST_CHECK int tb_endpoint_parse(const char *uri, char *host, size_t hostlen, unsigned *port);

/* ---- certificate authorities ---- */

/*
 * Creates a CA in dir (created with mode 0700 if missing; must not already
 * hold ca.key or ca.crt).  With parent NULL a self-signed root; otherwise
 * an intermediate signed by parent, which records it in its index.
 * password (may be NULL) encrypts the new ca.key.  0 or a tb_err.
 */
TB_MUST_CHECK int tb_ca_create(const char *dir, const struct tb_ca_spec *spec, const char *password,
                               struct tb_ca *parent, struct tb_diag *d);
/* Opens the CA in dir (reads ca.key with password, which may be NULL, and
 * ca.crt; checks they match).  NULL on failure.  Caller frees. */
TB_MUST_CHECK struct tb_ca *tb_ca_open(const char *dir, const char *password, struct tb_diag *d);
/* Wipes the key and frees. NULL allowed. */
void tb_ca_free(struct tb_ca *ca);
/* The CA's certificate. Borrowed; valid while ca lives. */
const struct tb_cert *tb_ca_cert(const struct tb_ca *ca);

/*
 * The division prefix a CA issues under (GB/T 2260): its own id (the
 * subject serialNumber) without trailing "00" pairs, e.g. "32" for a
 * province CA 320000, "3203" for 320300; "" for a CA without an id (the
 * root), which may issue any member id.  out is NUL-terminated.
 */
void tb_ca_division(const struct tb_ca *ca, char out[TB_MEMBER_ID_MAX]);
/* 0 when csr's member id lies in ca's division, else TB_E_CA_PREFIX
 * naming both (the policy tb_ca_issue applies). */
TB_MUST_CHECK int tb_ca_check_request(const struct tb_ca *ca, const struct tb_csr *csr,
                                      struct tb_diag *d);
/* 0 when a certificate valid until `until` (Unix seconds) ends no later
 * than ca's own certificate; else TB_E_CA_VALIDITY with the date it
 * would have been cut to (the CA's expiry) in d. */
TB_MUST_CHECK int tb_ca_check_until(const struct tb_ca *ca, int64_t until, struct tb_diag *d);
/*
 * Issues a node certificate for csr valid for days from now, records it in
 * the index and appends its PEM to out.  Subject and public key come from
 * the CSR; the extensions are the CA's choice (requests cannot ask for
 * CA rights); of the requested subjectAltNames only DNS, IP and URI
 * entries are copied.  A member id outside the CA's division is refused
 * (tb_ca_check_request, TB_E_CA_PREFIX); a validity past the CA's own
 * expiry is cut to it (check first with tb_ca_check_until to refuse
 * instead).  0 or a tb_err.
 */
TB_MUST_CHECK int tb_ca_issue(struct tb_ca *ca, const struct tb_csr *csr, unsigned days,
                              struct tb_buf *out, struct tb_diag *d);
/* Same with an explicit validity window (Unix seconds); for test
 * identities (an expired certificate, a non-member id) and planned
 * rotations: no division check. */
TB_MUST_CHECK int tb_ca_issue_window(struct tb_ca *ca, const struct tb_csr *csr, int64_t not_before,
                                     int64_t not_after, struct tb_buf *out, struct tb_diag *d);

/* RFC 5280 revocation reasons, by name ("unspecified", "keyCompromise",
 * "cACompromise", "affiliationChanged", "superseded",
 * "cessationOfOperation", "certificateHold", "privilegeWithdrawn");
 * -1 when unknown. */
TB_MUST_CHECK int tb_crl_reason_from_name(const char *name);
const char *tb_crl_reason_name(int reason);

/*
 * Marks cert (which ca must have issued) revoked at time now with reason.
 * TB_E_CERT_UNKNOWN_ISSUER when ca did not issue it, TB_E_CERT_REVOKED
 * when it already is.  The reason is kept in the index (GnuTLS cannot
 * write CRL entry extensions, so the CRL carries serial and time only).
 */
TB_MUST_CHECK int tb_ca_revoke(struct tb_ca *ca, const struct tb_cert *cert, int reason,
                               int64_t now, struct tb_diag *d);
/* Signs a CRL of every revoked serial in the index, valid from now for
 * days, with the next CRL number; appends its PEM to out. */
TB_MUST_CHECK int tb_ca_crl(struct tb_ca *ca, unsigned days, int64_t now, struct tb_buf *out,
                            struct tb_diag *d);

/* ---- certificate requests ---- */

/*
 * A CSR for a node: subject "[O=org,] CN=name, serialNumber=member_id",
 * requesting subjectAltNames for the endpoint's host (DNS or IP) and the
 * endpoint URI itself, signed by key (borrowed).  org may be NULL.
 * NULL on failure (TB_E_ARG for a bad id or endpoint).  Caller frees.
 */
TB_MUST_CHECK struct tb_csr *tb_csr_new(const struct tb_key *key, const char *member_id,
                                        const char *name, const char *org, const char *endpoint,
                                        struct tb_diag *d);
/* Parses a PEM or DER CSR and checks it: the self-signature verifies
 * (TB_E_CERT_BAD_SIG), the subject's serialNumber is a member id and the
 * key is Ed25519 or P-256 (TB_E_CSR).  NULL on failure. Caller frees. */
TB_MUST_CHECK struct tb_csr *tb_csr_import(const uint8_t *data, size_t len, struct tb_diag *d);
TB_MUST_CHECK struct tb_csr *tb_csr_load(const char *path, struct tb_diag *d);
/* Frees. NULL allowed. */
void tb_csr_free(struct tb_csr *csr);
/* Appends the CSR as PEM to out. */
TB_MUST_CHECK int tb_csr_pem(const struct tb_csr *csr, struct tb_buf *out);
/* Borrowed; valid while csr lives. */
const char *tb_csr_member_id(const struct tb_csr *csr);
const char *tb_csr_subject(const struct tb_csr *csr);
/* Key id (SHA-256 of the SubjectPublicKeyInfo) of the requested key:
 * 0, or TB_E_CSR / TB_E_NOMEM. */
TB_MUST_CHECK int tb_csr_key_id(const struct tb_csr *csr, uint8_t out[TB_KEYID_LEN]);
/* Algorithm of the requested key (import accepts only Ed25519/P-256). */
enum tb_alg tb_csr_alg(const struct tb_csr *csr);

/* ---- revocation lists ---- */

/* Parses the first CRL of a PEM or DER file. NULL on failure (TB_E_CRL,
 * TB_E_IO). Caller frees. */
TB_MUST_CHECK struct tb_crl *tb_crl_import(const uint8_t *data, size_t len, struct tb_diag *d);
TB_MUST_CHECK struct tb_crl *tb_crl_load(const char *path, struct tb_diag *d);
/* Frees. NULL allowed. */
void tb_crl_free(struct tb_crl *crl);
/* Number of revoked serials listed. */
size_t tb_crl_count(const struct tb_crl *crl);

/* ---- chain validation ---- */

/* What the end certificate must be allowed to do. */
enum tb_usage {
	TB_USAGE_NODE = 0, /* not a CA; digitalSignature; EKU serverAuth and clientAuth */
	TB_USAGE_CA = 1,   /* a CA allowed to sign certificates */
	TB_USAGE_ANY = 2,  /* only chain, time and revocation */
};

/* An empty trust store. NULL on memory failure. Caller frees. */
TB_MUST_CHECK struct tb_castore *tb_castore_new(void);
/* Frees the store and its copies. NULL allowed. */
void tb_castore_free(struct tb_castore *t);
/* Adds a trust anchor (copied).  Anchors are trusted as given: the
 * caller chooses them, typically the federation root. */
TB_MUST_CHECK int tb_castore_add_ca(struct tb_castore *t, const struct tb_cert *ca,
                                    struct tb_diag *d);
/* Adds a CRL (copied).  It is checked when a chain is verified: it must
 * be signed by a CA on that chain's path to be used, and if it is, it
 * must be current (TB_E_CRL otherwise). */
TB_MUST_CHECK int tb_castore_add_crl(struct tb_castore *t, const struct tb_crl *crl,
                                     struct tb_diag *d);

/*
 * Verifies cert against the anchors in t, with untrusted intermediates
 * (borrowed, any order), at time now (Unix seconds), for usage.
 * Returns 0, or the first reason found among: TB_E_CERT_SELF_SIGNED,
 * TB_E_CERT_UNKNOWN_ISSUER, TB_E_CERT_BAD_SIG, TB_E_CERT_REVOKED,
 * TB_E_CERT_EXPIRED, TB_E_CERT_NOT_YET_VALID, TB_E_CERT_USAGE, TB_E_CRL,
 * with d->detail naming the certificate concerned.
 */
TB_MUST_CHECK int tb_chain_verify(const struct tb_castore *t, const struct tb_cert *cert,
                                  const struct tb_cert *const *chain, size_t nchain,
                                  enum tb_usage usage, int64_t now, struct tb_diag *d);

#endif
