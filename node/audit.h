/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.h - the audit chain's signed head, and the node's own events in
 * the chain.
 *
 * The chain (journal.h, "audit chain") shows any entry altered, inserted
 * or removed in its middle, but not its newest entries removed, nor an
 * older copy of the whole journal put back: both leave a shorter chain
 * that verifies.  So the node also keeps the chain's head outside the
 * database: the journal reports every durable commit that added entries
 * (off the commit path, only noted), and the loop writes the newest head
 * (seq, hash), signed with the node's message-signing key, at most 100 ms
 * later (and at stop) to a small file beside the journal,
 * JOURNAL.audit-head (format:
 * docs/PROTOCOL.md, "Audit chain").  `tongban audit verify` compares the
 * two: a journal whose chain ends before the signed head was cut short.
 * At start-up the node makes the same comparison, and a journal that is
 * behind its head (restored from a backup, or truncated while it was
 * stopped) gets an "audit-gap" entry naming what is missing, before
 * anything else is appended: the gap stays visible in the chain itself.
 *
 * Admin events: start, stop, registry-applied, config-reloaded,
 * key-rotated, recovery-entered, recovery-left.  This module records
 * start, stop and registry-applied itself; the callers named below
 * record the others.
 *
 * Threads: the head hook runs on whichever thread committed (the loop
 * or the ingest thread) and serialises itself; the other functions are
 * for the loop's thread.  Ownership: paths and strings are borrowed.
 */
#ifndef TB_AUDIT_H
#define TB_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certs/tb_key.h"
#include "util/tb_err.h"

struct tb_node;
struct tb_pub;
struct tb_reg;
struct tb_diag;
struct tb_json;

/* ---- the head file (also used by `tongban audit`) ---- */

/* A signed head as read from its file.  Plain value. */
struct tb_audit_head {
	int64_t seq;     /* the newest entry when it was written; 0: empty chain */
	char hash[65];   /* that entry's hash, 64 hex (all zeros when seq is 0) */
	char member[16]; /* the node's member id */
	char kid[65];    /* key id of the signing key, 64 hex */
	enum tb_alg alg; /* its algorithm */
	uint8_t sig[TB_SIG_LEN];
};

/* The head file of the journal at journal: "JOURNAL.audit-head" into out
 * (cap bytes).  TB_E_ARG when it does not fit. */
TB_MUST_CHECK int tb_audit_head_path(const char *journal, char *out, size_t cap);
/* Appends the bytes the head's signature covers (the RFC 8785 form of
 * the head without "sig") to out.  TB_OK or TB_E_NOMEM. */
TB_MUST_CHECK int tb_audit_head_signed(const struct tb_audit_head *h, struct tb_buf *out);
/*
 * Reads and parses the head file at path into *h (its signature is not
 * checked: tb_audit_head_verify).  TB_E_NOTFOUND when there is no file,
 * TB_E_IO when it cannot be read, TB_E_AUDIT when it is not a head
 * (d says which member is wrong).
 */
TB_MUST_CHECK int tb_audit_head_read(const char *path, struct tb_audit_head *h, struct tb_diag *d);
/* The head in the parsed JSON object obj (borrowed; a line of an export)
 * into *h, its signature not checked.  TB_E_AUDIT when it is not a head
 * (d says which member is wrong). */
TB_MUST_CHECK int tb_audit_head_parse(const struct tb_json *obj, struct tb_audit_head *h,
                                      struct tb_diag *d);
/* True when pub's key id is h->kid and pub signed h. */
TB_MUST_CHECK bool tb_audit_head_verify(const struct tb_audit_head *h, const struct tb_pub *pub);
/* Signs seq/hash (64 hex) for member with key and writes the head file
 * at path atomically (temporary file, rename; mode 0600).  Not fsynced:
 * see docs/ADMIN.md, "Auditing".  TB_OK, TB_E_CRYPTO or TB_E_IO. */
TB_MUST_CHECK int tb_audit_head_write(const char *path, const char *member,
                                      const struct tb_key *key, int64_t seq,
                                      const char hash_hex[65], struct tb_diag *d);

/* ---- the node's side (loop thread) ---- */

/*
 * After the journal is open and n->base exists, before the stages start
 * (their handles, opened from n->journal, inherit the head hook), on the
 * loop's thread: compares the journal
 * with its head file and records an "audit-gap" when the journal is
 * behind it, installs the head hook, and records "start" (detail: the
 * version and the registry serial).  TB_OK, or an error when
 * the journal cannot be written (the node must not run without its
 * chain); d says why.
 */
TB_MUST_CHECK int tb_audit_start(struct tb_node *n, struct tb_diag *d);
/* A registry was applied: records "registry-applied" (serial, valid
 * until).  ctx is the node; a hook for tb_node_on_registry, which the
 * daemon registers after tb_audit_start (audit.c sits below node.c). */
void tb_audit_on_registry(void *ctx, const struct tb_reg *reg);
/* Records "stop" and logs the final head; frees the state.  Call while
 * the journal is still open.  NULL state (never started) is a no-op. */
void tb_audit_stop(struct tb_node *n);
/*
 * Records an admin event: event, and a detail formatted from fmt (may be
 * NULL), which must be printable ASCII without '"' and '\\'.  A failure is
 * logged at error level (the event happened regardless).  The callers:
 *   "config-reloaded"  tongban-node.c's SIGHUP handler (this part);
 *   "key-rotated"      the SIGHUP rotation (checks part), through
 *                      tb_audit_key_rotated below;
 *   "recovery-entered" / "recovery-left"  the lifecycle part, through
 *                      tb_audit_recovery below.
 * node.c and every stage may call these (audit.c is below node.c in
 * tests/node_layers.sh); they are no-ops before tb_audit_start.
 */
void tb_audit_event(struct tb_node *n, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The message-signing key changed to key (borrowed; must stay valid
 * until the next call or tb_audit_stop): later heads are signed with it,
 * and "key-rotated" (detail: kid=<new key id>) is recorded.  Call it
 * before the old key is freed. */
void tb_audit_key_rotated(struct tb_node *n, const struct tb_key *key);
/* The node entered (true) or left (false) the recovery state; why (may
 * be NULL) goes into the detail. */
void tb_audit_recovery(struct tb_node *n, bool entered, const char *why);

#endif
