/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_flow.h - what the message types mean: body schemas, request/answer
 * pairing, the case-handling lifecycle, and presented licences
 * (docs/PROTOCOL.md section 10).
 *
 * tb_env checks that an envelope is well formed and authentic; this module
 * checks that its body says something meaningful for its type, and which
 * messages may follow which.  It is pure: no sockets, files or clocks
 * (times are parameters) and no state -- the node keeps the open requests
 * and case states and asks these functions for each decision.
 *
 * Every string returned is static (or borrowed from the caller's JSON, as
 * documented), never to be freed.  Every diag is optional (NULL allowed).
 *
 * Thread-safety: pure and stateless: every function may run in any
 * thread; the lookup callback runs in the caller's.
 */
#ifndef TB_FLOW_H
#define TB_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb_env.h" /* tb_env_lookup_fn */
#include "../util/tb_err.h"

struct tb_diag;
struct tb_json;
struct tb_json_doc;
struct tb_key;

/* ---- bodies ---- */

/*
 * Checks body (an envelope's body object, borrowed) against the schema of
 * `type` (section 10.2).  Returns 0, or:
 *   TB_E_TYPE_UNKNOWN  type is not a version 1 type;
 *   TB_E_BODY          ("body.invalid") the body breaks its schema; d's
 *                      detail names the path and the rule, e.g.
 *                      "body.subject.idhash: must be 64 lowercase hex digits",
 *                      "body.materials[2].size: required",
 *                      "body.mode: unknown member"  (first failure only);
 *   TB_E_ARG           type or body is NULL.
 * Licence signatures inside licence.present are checked for form only;
 * see tb_flow_licence_check().
 */
TB_MUST_CHECK int tb_flow_check_body(const char *type, const struct tb_json *body,
                                     struct tb_diag *d);

/*
 * The checks of one envelope (borrowed) that need no state: its body
 * (as tb_flow_check_body) and "corr" present exactly on answers
 * (TB_E_FIELD_MISSING "corr: required on an answer", or TB_E_FIELD_VALUE
 * "corr: only answers carry corr").  What the envelope answers, and the
 * case's state, are the node's to check with the functions below.
 */
TB_MUST_CHECK int tb_flow_check_env(const struct tb_env *env, struct tb_diag *d);

/* ---- pairing (section 10.3) ---- */

enum tb_flow_role {
	TB_FLOW_UNKNOWN = 0, /* not a version 1 type */
	TB_FLOW_REQUEST,     /* opens a request; may be answered */
	TB_FLOW_ANSWER,      /* answers a message: needs "corr" */
	TB_FLOW_NOTICE,      /* stands alone: no "corr", never answered except by a receipt */
};

enum tb_flow_role tb_flow_role(const char *type);
/* True for answers (role TB_FLOW_ANSWER): the envelope must carry "corr",
 * the id of the message answered.  Other types must not carry it. */
bool tb_flow_needs_corr(const char *type);
/*
 * The request type an answer type answers: "case.submit" for
 * "case.result", "*" for "error" (any request) and "receipt" (any message
 * but a receipt); NULL for requests, notices and unknown types.
 */
const char *tb_flow_request_of(const char *answer_type);
/*
 * True when a message of type `answer` may answer (carry as "corr" the id
 * of) a message of type `request`: the pairs of section 10.3 plus the
 * wildcards above.  When false for an answer naming a message the node
 * sent, or when "corr" names no open request, the node refuses with
 * TB_E_FLOW_UNMATCHED ("flow.unmatched").
 */
bool tb_flow_answers(const char *answer, const char *request);
/*
 * True when an answer of this type closes the request it answers (no more
 * answers follow): every answer except case.accept and case.update (more
 * answers follow) and receipt (delivery, not content).
 */
bool tb_flow_is_final(const char *answer_type);

/* ---- the case lifecycle (section 10.4) ---- */

enum tb_case_state {
	TB_CASE_NONE = 0, /* no such case (yet) */
	TB_CASE_SUBMITTED,
	TB_CASE_ACCEPTED,
	TB_CASE_REJECTED, /* final */
	TB_CASE_IN_PROGRESS,
	TB_CASE_COMPLETED, /* final */
};

/* The wire name ("submitted", "in-progress", ...; "unknown" for
 * TB_CASE_NONE and out-of-range values), as used in case.state bodies. */
const char *tb_case_state_name(enum tb_case_state s);
/* The inverse (n bytes, borrowed); false for anything else. */
TB_MUST_CHECK bool tb_case_state_from_name(const char *name, size_t n, enum tb_case_state *out);
/* True for the case.* types that move a case (submit, accept, reject,
 * update, result); case.query and case.state do not. */
bool tb_flow_case_moves(const char *type);
/*
 * The state a case moves to when a message of `type` about it is sent or
 * received in state `cur`.  On success *next is set and 0 returned; for
 * case.query and case.state *next = cur.  A message the lifecycle does not
 * allow is TB_E_FLOW_STATE ("flow.state") with a detail such as
 * "case.result before case.accept"; *next is left alone.  A type that is
 * not a case.* type, or a cur out of range, is TB_E_ARG.
 */
TB_MUST_CHECK int tb_flow_case_next(enum tb_case_state cur, const char *type,
                                    enum tb_case_state *next, struct tb_diag *d);
/* The body's "case_id" (case.* types), borrowed from body; NULL when absent
 * or not a string.  Call after tb_flow_check_body() for a checked value. */
const char *tb_flow_case_id(const struct tb_json *body);

/* ---- licences (section 10.5) ---- */

/*
 * SHA-256 of the RFC 8785 form of the licence object (borrowed) without
 * its "digest" and "issuer_sig" members; SM3 when its issuer_sig names
 * sm2.  0, TB_E_ARG (not an object) or TB_E_NOMEM.  The form of the rest
 * is not checked.
 */
TB_MUST_CHECK int tb_flow_licence_digest(const struct tb_json *licence, uint8_t out[32]);
/*
 * Sets the licence's "digest" and "issuer_sig" (replacing them), signing
 * with key (the issuer's).  licence must live in doc.  The licence's other
 * members should already be complete and valid.  0, TB_E_ARG, TB_E_NOMEM
 * or TB_E_CRYPTO.
 */
TB_MUST_CHECK int tb_flow_licence_sign(struct tb_json_doc *doc, struct tb_json *licence,
                                       const struct tb_key *key, struct tb_diag *d);
/*
 * The registry status of member `issuer` for tb_flow_licence_check: 0
 * when active, TB_E_LICENCE_ISSUER_SUSPENDED or TB_E_LICENCE_ISSUER_REVOKED
 * (a member the registry does not list has no key, so lookup fails first).
 */
typedef int (*tb_flow_issuer_fn)(void *ctx, const char *issuer);
/*
 * Checks a presented licence (borrowed) completely: its form (as inside
 * licence.present), its digest, its issuer signature (the key is looked
 * up as lookup(ctx, issuer, kid): it must be a key of the issuing member),
 * the issuer's registry status (status(ctx, issuer); both callbacks are
 * required) and its validity at `now`.  Returns 0 when the licence is
 * authentic and valid, else the first failure:
 *   TB_E_BODY              malformed (detail names the member);
 *   TB_E_LICENCE_DIGEST    "digest" is not the licence's digest;
 *   TB_E_SIG_KEYID         no key of the issuer has that kid;
 *   TB_E_SIG_ALG           the key is not of the algorithm "alg" names;
 *   TB_E_SIG_BAD           the signature does not verify;
 *   TB_E_LICENCE_ISSUER_SUSPENDED, TB_E_LICENCE_ISSUER_REVOKED
 *                          the issuer is not active (PROTOCOL.md 10.5);
 *   TB_E_LICENCE_REVOKED   status "revoked";
 *   TB_E_LICENCE_EXPIRED   status "expired", or now >= valid_until;
 *   TB_E_LICENCE_NOT_YET_VALID  now < issued.
 */
TB_MUST_CHECK int tb_flow_licence_check(const struct tb_json *licence, tb_env_lookup_fn lookup,
                                        tb_flow_issuer_fn status, void *ctx, int64_t now,
                                        struct tb_diag *d);

/* ---- identifiers (exposed for builders and the CLI) ---- */

/* 64 lowercase hex digits: an idhash or a SHA-256 digest. */
bool tb_flow_hex64_valid(const char *s, size_t n);
/* 1-64 characters of A-Z a-z 0-9 . _ - */
bool tb_flow_case_id_valid(const char *s, size_t n);

#endif
