/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_env.h - the signed message envelope: model, validation, seal, open.
 *
 * An envelope is a JSON object (docs/PROTOCOL.md section 3).  It is
 * signed over the RFC 8785 form of itself without its "sig" and "relay"
 * members, either alone or as one leaf of a batch (one signature over a
 * Merkle root, the envelope carrying its inclusion proof).
 *
 * Pure: the clock ("now") and key lookup are parameters.  Randomness for
 * new message ids comes from certs/ (tb_random).
 *
 * Thread-safety: reentrant; const functions only read the envelope and
 * may share one between threads; seal, add_hop and free need it to
 * themselves.  The lookup and cache callbacks run in the caller's
 * thread.
 *
 * Ownership: an envelope owns its JSON document; tb_env_create/parse/
 * open return one the caller frees with tb_env_free (NULL allowed);
 * strings returned are borrowed from it; input bytes are borrowed;
 * output is appended to the caller's buffer.
 */
#ifndef TB_ENV_H
#define TB_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../certs/tb_key.h"
#include "../util/tb_err.h"

struct tb_buf;
struct tb_diag;
struct tb_json;
struct tb_json_doc;
struct tb_env; /* a parsed or built envelope; owns its JSON document */

#define TB_PROTO_VERSION 1
#define TB_ENV_MAX_SIZE (64 * 1024)      /* bytes of a serialised envelope */
#define TB_ENV_MAX_DEPTH 32              /* JSON nesting inside an envelope */
#define TB_ENV_MAX_LIFETIME (30 * 86400) /* expires - created, seconds */
#define TB_ENV_MAX_HOPS 16
#define TB_ENV_DEFAULT_TTL 86400
#define TB_ENV_DEFAULT_HOPS 4
#define TB_ENV_DEFAULT_SKEW 300
#define TB_BATCH_MAX 65536
#define TB_MSGID_LEN 16     /* bytes; 32 hex digits on the wire */
#define TB_MSGID_TIME_LEN 6 /* leading bytes: milliseconds since the epoch */

/* True for a message type this version defines (docs/PROTOCOL.md 4). */
bool tb_msgtype_known(const char *type);
/* The same for n bytes (borrowed; a NUL among them is never a type). */
bool tb_msgtype_valid(const char *s, size_t n);
/* NULL-terminated list of all defined types. */
const char *const *tb_msgtype_all(void);
/* Syntax predicates for identifiers used in envelopes. */
bool tb_member_id_valid(const char *s, size_t n);
bool tb_service_code_valid(const char *s, size_t n);
bool tb_region_code_valid(const char *s, size_t n);

/* What tb_env_create needs.  Strings are borrowed. */
struct tb_env_fields {
	const char *type;          /* required */
	const char *from;          /* required */
	const char *to;            /* recipient member id, or NULL with route_* */
	const char *service;       /* optional */
	const char *route_service; /* route request (both or neither) */
	const char *route_region;
	const char *corr;    /* optional: id of the message answered */
	const uint8_t *body; /* JSON object text, or NULL for {} */
	size_t body_len;
	/* or the body already parsed (strictly, tb_json_parse): copied, so
	 * the text need not be printed and parsed again; wins over body */
	const struct tb_json *body_json;
	int64_t created; /* seconds since the epoch */
	int64_t id_ms;   /* the id's time: ms since the epoch; 0: created */
	int64_t ttl;     /* 0: TB_ENV_DEFAULT_TTL */
	int hops;        /* 0: TB_ENV_DEFAULT_HOPS */
};

/* A new unsigned envelope.  Its id is id_ms (or created, in ms) in the
 * first TB_MSGID_TIME_LEN bytes, big-endian, then random bytes; ids of
 * one sender thus sort by time.  NULL on failure (d says
 * why: a field's rule, or the body's JSON error).  Caller frees. */
TB_MUST_CHECK struct tb_env *tb_env_create(const struct tb_env_fields *f, struct tb_diag *d);

/* Parses and validates the envelope's structure (sealed or not). NULL on
 * failure with d filled.  buf is borrowed.  Caller frees. */
TB_MUST_CHECK struct tb_env *tb_env_parse(const uint8_t *buf, size_t len, struct tb_diag *d);

/* Frees the envelope and its document. NULL allowed. */
void tb_env_free(struct tb_env *env);

/* Key lookup for opening: the public key with this key id that belongs to
 * member `from`, or NULL when there is none (TB_E_SIG_KEYID).  Borrowed. */
typedef const struct tb_pub *(*tb_env_lookup_fn)(void *ctx, const char *from,
                                                 const uint8_t kid[TB_KEYID_LEN]);

struct tb_env_open_opts {
	tb_env_lookup_fn lookup;
	void *ctx;
	int64_t now;  /* seconds since the epoch */
	int64_t skew; /* allowed clock skew, seconds */
	/* Optional cache of verified signatures (e.g. a batch root seen
	 * before): `known` says whether a tag was verified; `remember` is
	 * called after a successful verification.  Tags bind key id,
	 * signature and signed bytes.  Either may be NULL. */
	bool (*known)(void *ctx, const uint8_t tag[32]);
	void (*remember)(void *ctx, const uint8_t tag[32]);
	/* Optional: counts the envelopes tb_env_open had to canonicalise
	 * because their text was not the canonical form (whose signed bytes
	 * it takes from the text as it is). */
	uint64_t *recanonicalised;
};

/*
 * Opens a sealed envelope: parse, validate, check time (expired / created
 * in the future beyond skew), find the key, verify the signature or the
 * batch proof and its root signature.  On success *out receives the
 * envelope (caller frees) and 0 is returned; otherwise a negative tb_err
 * with d filled.  Replay and access rules are the caller's (they need
 * state); see tb_env_id().  Text in the canonical form (as
 * tb_env_serialize writes it) is opened without canonicalising it again:
 * its signed bytes are the text without "sig" and "relay"; any other text
 * is canonicalised, with the same outcome.
 */
TB_MUST_CHECK int tb_env_open(const uint8_t *buf, size_t len, const struct tb_env_open_opts *o,
                              struct tb_env **out, struct tb_diag *d);

/*
 * Opens the count elements of a batch answer (docs/PROTOCOL.md 9.3), the
 * element k at text + off[k], len[k] bytes: each as tb_env_open would,
 * except that members of one batch whose sig.batch has no "path" (a
 * compact answer) get their proofs recomputed from all of them, which
 * must be exactly the batch's n members (else each fails with
 * TB_E_SIG_PROOF).  out[k] receives the opened envelope (caller frees;
 * a completed member serialises in full, with its path) or NULL, and
 * d[k] the reason.  Elements that are not envelopes (error objects) fail
 * as they would in tb_env_open.
 */
/* Whether env's proof was recomputed by tb_env_open_many (its text on the
 * wire was compact; tb_env_serialize gives the full form). */
bool tb_env_completed(const struct tb_env *env);
void tb_env_open_many(const uint8_t *text, const size_t *off, const size_t *len, size_t count,
                      const struct tb_env_open_opts *o, struct tb_env **out, struct tb_diag *d);

/* Signs env alone with key (replacing any signature). */
TB_MUST_CHECK int tb_env_seal(struct tb_env *env, const struct tb_key *key, struct tb_diag *d);
/* Signs n envelopes with one signature over their Merkle root (RFC 9162
 * tree hash); each gets its inclusion proof.  n = 1 gives a plain seal. */
TB_MUST_CHECK int tb_env_seal_batch(struct tb_env *const *envs, size_t n, const struct tb_key *key,
                                    struct tb_diag *d);

/*
 * Splits the text of a batch (a JSON array of objects) into the byte
 * ranges of its elements, without interpreting them: each element is then
 * parsed strictly on its own.  Returns the count (at most max), or -1 when
 * the text is not an array of 1..max objects.  off/elen have room for max.
 */
TB_MUST_CHECK int tb_env_split_batch(const uint8_t *text, size_t len, size_t *off, size_t *elen,
                                     int max);

/* Appends the canonical serialisation (with sig and relay if present). */
TB_MUST_CHECK int tb_env_serialize(const struct tb_env *env, struct tb_buf *out);
/* Appends the canonical serialisation without sig.batch.path, the compact
 * form of a batch member (docs/PROTOCOL.md 9.3).  Only for envelopes
 * sealed here with tb_env_seal_batch and not relayed; TB_E_ARG otherwise
 * (out unchanged). */
TB_MUST_CHECK int tb_env_serialize_compact(const struct tb_env *env, struct tb_buf *out);
/* Appends the signed bytes: canonical form without "sig" and "relay". */
TB_MUST_CHECK int tb_env_signed_bytes(const struct tb_env *env, struct tb_buf *out);
/* SHA-256 of the signed bytes: the message digest receipts name. */
TB_MUST_CHECK int tb_env_digest(const struct tb_env *env, uint8_t out[32]);

/* Accessors; strings are borrowed from env, NULL when absent. */
const char *tb_env_id(const struct tb_env *env);
const char *tb_env_type(const struct tb_env *env);
const char *tb_env_from(const struct tb_env *env);
const char *tb_env_to(const struct tb_env *env);
const char *tb_env_service(const struct tb_env *env);
const char *tb_env_route_service(const struct tb_env *env);
const char *tb_env_route_region(const struct tb_env *env);
const char *tb_env_corr(const struct tb_env *env);
int64_t tb_env_created(const struct tb_env *env);
int64_t tb_env_expires(const struct tb_env *env);
int tb_env_hops(const struct tb_env *env);
bool tb_env_sealed(const struct tb_env *env);
/* Signing key id (valid when sealed). */
const uint8_t *tb_env_kid(const struct tb_env *env);
enum tb_alg tb_env_alg(const struct tb_env *env);
/* The body object; borrowed. */
const struct tb_json *tb_env_body(const struct tb_env *env);
/* The relay path (member ids of hubs passed), count via *n. */
size_t tb_env_path_len(const struct tb_env *env);
const char *tb_env_path_at(const struct tb_env *env, size_t i);
/* Appends member id `hop` to the unsigned relay path (for hubs).
 * TB_E_HOPS when the path would exceed the hop limit, repeat a member, or
 * name the sender or the recipient (a loop, PROTOCOL.md 3.2). */
TB_MUST_CHECK int tb_env_add_hop(struct tb_env *env, const char *hop);

#endif
