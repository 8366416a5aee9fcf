/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_reg.h - the signed member registry (docs/PROTOCOL.md section 7).
 *
 * A struct tb_reg is the validated model of one registry document:
 * federation name, serial, validity window, members with their keys,
 * endpoints and services, revoked key ids, the access policy and the
 * authorities' signatures.  Parsing checks syntax, every field, the limits
 * below, duplicate member ids and key ids, and parent references; it does
 * not check signatures or time.  tb_reg_verify() does that against a trust
 * anchor, with the current time and the serial the caller already holds
 * passed in: this module reads no clock and no file.
 *
 * The model is lossless: the RFC 8785 canonical form of a parsed document
 * equals the canonical form tb_reg_serialize() produces, so signatures
 * made by any implementation over the document verify here.
 *
 * Members are addressed by index, 0 .. tb_reg_member_count()-1, in
 * document order.  Strings returned are borrowed from the registry and
 * valid until it is freed or edited.
 *
 * Thread-safety: no global state.  Verifying and the accessors only
 * read the registry and may share one between threads (the node's
 * loop and ingest thread do, under its lock); the editing functions
 * and tb_reg_free need it to themselves.
 *
 * Ownership: tb_reg_parse/new return a registry the caller frees with
 * tb_reg_free (NULL allowed); input is borrowed; editing copies what
 * it keeps; output is appended to the caller's buffer.
 */
#ifndef TB_REG_H
#define TB_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../certs/tb_key.h"
#include "../util/tb_err.h"

struct tb_reg;
struct tb_trust;
struct tb_buf;
struct tb_diag;

/* Limits (refused beyond with TB_E_TOO_LARGE or TB_E_REG_LIMIT). */
#define TB_REG_MAX_SIZE (32u << 20) /* bytes of registry text */
#define TB_REG_MAX_DEPTH 16         /* nested arrays/objects */
#define TB_REG_MAX_MEMBERS 100000
#define TB_REG_MAX_STRING 1024  /* bytes: names, endpoints, federation */
#define TB_REG_MAX_ENDPOINTS 8  /* per member */
#define TB_REG_MAX_KEYS 8       /* per member */
#define TB_REG_MAX_SPKI 1024    /* bytes of DER SubjectPublicKeyInfo */
#define TB_REG_MAX_SERVICES 256 /* per member */
#define TB_REG_MAX_REGIONS 64   /* per service of a member */
#define TB_REG_MAX_REVOKED 100000
#define TB_REG_MAX_SIGS 16
#define TB_REG_MAX_RULES 1024
#define TB_REG_MAX_RULE_ITEMS 1024        /* entries of one list in a rule */
#define TB_REG_MAX_INT 9007199254740991LL /* 2^53-1: serial and times */

#define TB_REG_NONE ((size_t)-1)

enum tb_reg_role { TB_ROLE_CITY = 1, TB_ROLE_HUB = 2 };
enum tb_reg_status { TB_STATUS_ACTIVE = 1, TB_STATUS_SUSPENDED = 2, TB_STATUS_REVOKED = 3 };
/* Key use: a bit mask; "both" is TB_USE_TLS | TB_USE_SIGN. */
enum tb_key_use { TB_USE_TLS = 1, TB_USE_SIGN = 2, TB_USE_BOTH = 3 };

const char *tb_reg_role_name(enum tb_reg_role r);
TB_MUST_CHECK enum tb_reg_role tb_reg_role_from_name(const char *s); /* 0 if unknown */
const char *tb_reg_status_name(enum tb_reg_status s);
TB_MUST_CHECK enum tb_reg_status tb_reg_status_from_name(const char *s); /* 0 if unknown */
const char *tb_key_use_name(enum tb_key_use u);
TB_MUST_CHECK enum tb_key_use tb_key_use_from_name(const char *s); /* 0 if unknown */

/*
 * Parses and validates a registry document (len bytes, borrowed).  NULL on
 * failure with d set: TB_E_TOO_LARGE, TB_E_JSON_*, TB_E_FIELD_*,
 * TB_E_VERSION, TB_E_REG_LIMIT, TB_E_REG_DUP_MEMBER, TB_E_REG_DUP_KEY,
 * TB_E_REG_REFERENCE, TB_E_NOMEM.  Caller frees.
 */
TB_MUST_CHECK struct tb_reg *tb_reg_parse(const uint8_t *text, size_t len, struct tb_diag *d);
/* A new, empty registry with serial 1 and no signatures.  federation is
 * copied.  NULL on invalid arguments or memory error.  Caller frees. */
TB_MUST_CHECK struct tb_reg *tb_reg_new(const char *federation, int64_t issued, int64_t valid_until,
                                        struct tb_diag *d);
/* Frees. NULL allowed. */
void tb_reg_free(struct tb_reg *reg);

/*
 * Verifies reg against the trust anchor at time now (Unix seconds).  When
 * previous_serial is non-zero the registry's serial must be greater.  In
 * order (docs/PROTOCOL.md 7.5): federation name (TB_E_REG_FEDERATION);
 * each signature: duplicate signer (TB_E_REG_DUP_SIGNER), unknown signer
 * (TB_E_REG_SIGNER), algorithm (TB_E_SIG_ALG), value (TB_E_REG_TAMPERED);
 * count against the threshold (TB_E_REG_THRESHOLD); key ids against their
 * SPKI (TB_E_REG_KEY_ID); validity window (TB_E_REG_NOT_YET_VALID,
 * TB_E_REG_EXPIRED); serial (TB_E_REG_ROLLBACK).  0 when all hold.
 * *valid_sigs (may be NULL) receives the number of good signatures.
 */
TB_MUST_CHECK int tb_reg_verify(const struct tb_reg *reg, const struct tb_trust *trust, int64_t now,
                                uint64_t previous_serial, size_t *valid_sigs, struct tb_diag *d);

/* Appends the signing input (canonical form without "sigs") to out. */
TB_MUST_CHECK int tb_reg_signed_bytes(const struct tb_reg *reg, struct tb_buf *out);
/* Appends the whole document in canonical form (no trailing newline). */
TB_MUST_CHECK int tb_reg_serialize(const struct tb_reg *reg, struct tb_buf *out);

/* ---- accessors ---- */
const char *tb_reg_federation(const struct tb_reg *reg);
uint64_t tb_reg_serial(const struct tb_reg *reg);
int64_t tb_reg_issued(const struct tb_reg *reg);
int64_t tb_reg_valid_until(const struct tb_reg *reg);
size_t tb_reg_member_count(const struct tb_reg *reg);
/* Index of the member with this id, or TB_REG_NONE. O(log n). */
size_t tb_reg_find_member(const struct tb_reg *reg, const char *id);
const char *tb_reg_member_id(const struct tb_reg *reg, size_t m);
const char *tb_reg_member_name(const struct tb_reg *reg, size_t m);
enum tb_reg_role tb_reg_member_role(const struct tb_reg *reg, size_t m);
const char *tb_reg_member_parent(const struct tb_reg *reg, size_t m); /* NULL if none */
enum tb_reg_status tb_reg_member_status(const struct tb_reg *reg, size_t m);
size_t tb_reg_endpoint_count(const struct tb_reg *reg, size_t m);
const char *tb_reg_endpoint(const struct tb_reg *reg, size_t m, size_t i);
size_t tb_reg_key_count(const struct tb_reg *reg, size_t m);
/* Key k of member m: id, use, and the DER SPKI (borrowed). */
void tb_reg_key(const struct tb_reg *reg, size_t m, size_t k, uint8_t kid[TB_KEYID_LEN],
                enum tb_key_use *use, const uint8_t **spki, size_t *spki_len);
size_t tb_reg_service_count(const struct tb_reg *reg, size_t m);
const char *tb_reg_service_code(const struct tb_reg *reg, size_t m, size_t s);
size_t tb_reg_region_count(const struct tb_reg *reg, size_t m, size_t s);
const char *tb_reg_region(const struct tb_reg *reg, size_t m, size_t s, size_t r);
/* Finds a key id among all members: 0 with *m, *k set, or TB_E_SIG_KEYID
 * when absent.  O(log n). */
TB_MUST_CHECK int tb_reg_find_key(const struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN],
                                  size_t *m, size_t *k);
/* True when kid is on the revoked list. */
bool tb_reg_key_revoked(const struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN]);
size_t tb_reg_revoked_count(const struct tb_reg *reg);
size_t tb_reg_sig_count(const struct tb_reg *reg);
/* Key id and algorithm of signature i. */
void tb_reg_sig(const struct tb_reg *reg, size_t i, uint8_t kid[TB_KEYID_LEN], enum tb_alg *alg);

/* ---- editing (used by the CLI) ----
 * The first edit of a registry's content clears its signatures and adds 1
 * to its serial; later edits of the same object do not bump again. */

struct tb_reg_key_spec {
	const uint8_t *spki; /* DER, borrowed; the key id is computed */
	size_t spki_len;
	enum tb_key_use use;
};
struct tb_reg_service_spec {
	const char *code;
	const char *const *regions; /* nregions prefixes */
	size_t nregions;
};
struct tb_reg_member_spec {
	const char *id, *name, *parent; /* parent may be NULL */
	enum tb_reg_role role;
	enum tb_reg_status status;
	const char *const *endpoints;
	size_t nendpoints;
	const struct tb_reg_key_spec *keys;
	size_t nkeys;
	const struct tb_reg_service_spec *services;
	size_t nservices;
};

/* Adds a member (everything copied), validated like a parsed one.
 * TB_E_REG_DUP_MEMBER / _DUP_KEY / _REFERENCE / TB_E_FIELD_VALUE. */
TB_MUST_CHECK int tb_reg_add_member(struct tb_reg *reg, const struct tb_reg_member_spec *spec,
                                    struct tb_diag *d);
/* TB_E_REG_MEMBER when id is not a member. */
TB_MUST_CHECK int tb_reg_set_status(struct tb_reg *reg, const char *id, enum tb_reg_status st,
                                    struct tb_diag *d);
/* Replaces member id's endpoints with uris[0..n) (copied), in order of
 * preference (PROTOCOL.md 7.1: a sender tries them in this order): e.g.
 * the second process of a member run as a pair.  TB_E_REG_MEMBER,
 * TB_E_FIELD_VALUE (not an absolute URI, more than TB_REG_MAX_ENDPOINTS),
 * TB_E_REG_REFERENCE (none left for a member without a parent hub). */
TB_MUST_CHECK int tb_reg_set_endpoints(struct tb_reg *reg, const char *id,
                                       const char *const *uris, size_t n, struct tb_diag *d);
/* Adds a key (copied) to member id's keys, e.g. a rotation's new one:
 * TB_E_REG_MEMBER, TB_E_REG_DUP_KEY (listed already, by any member),
 * TB_E_REG_LIMIT (TB_REG_MAX_KEYS), TB_E_FIELD_VALUE. */
TB_MUST_CHECK int tb_reg_add_key(struct tb_reg *reg, const char *id,
                                 const struct tb_reg_key_spec *k, struct tb_diag *d);
/* Removes key kid from its member's keys: TB_E_SIG_KEYID when no member
 * lists it, TB_E_FIELD_VALUE when it is the member's only key. */
TB_MUST_CHECK int tb_reg_remove_key(struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN],
                                    struct tb_diag *d);
/* Removes member id and its keys: TB_E_REG_MEMBER when id is not a
 * member, TB_E_REG_REFERENCE when a member names it as its parent hub
 * (remove or move those first).  Its keys are not put on the revoked
 * list (tb_reg_revoke_key does that). */
TB_MUST_CHECK int tb_reg_remove_member(struct tb_reg *reg, const char *id, struct tb_diag *d);
/* Adds kid to the revoked list (no-op if present). */
TB_MUST_CHECK int tb_reg_revoke_key(struct tb_reg *reg, const uint8_t kid[TB_KEYID_LEN],
                                    struct tb_diag *d);
TB_MUST_CHECK int tb_reg_set_validity(struct tb_reg *reg, int64_t issued, int64_t valid_until,
                                      struct tb_diag *d);
/* Sets the policy default (true: allow). */
TB_MUST_CHECK int tb_reg_set_policy_default(struct tb_reg *reg, bool allow);
/* Drops all policy rules. */
TB_MUST_CHECK int tb_reg_clear_policy_rules(struct tb_reg *reg);
/* Appends a rule written as "effect=allow;services=a,b;ids=..;roles=..;
 * regions=.." (docs/PROTOCOL.md 8.3).  TB_E_FIELD_VALUE on bad text. */
TB_MUST_CHECK int tb_reg_add_policy_rule(struct tb_reg *reg, const char *text, struct tb_diag *d);

/* Signs the current content with key and adds the signature (replacing
 * an earlier one by the same key).  Does not count as an edit. */
TB_MUST_CHECK int tb_reg_sign(struct tb_reg *reg, const struct tb_key *key, struct tb_diag *d);

#endif
