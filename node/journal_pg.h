/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal_pg.h - the journal's PostgreSQL backend (internal to node/;
 * the node uses node/journal.h only).
 *
 * journal.c hands every call on a handle opened on a postgresql:// URI
 * to the function here of the same name, after its own argument checks,
 * so the two backends share one contract (journal.h).  Differences the
 * contract allows, stated here once:
 *   - an SQL error inside begin/commit aborts the whole transaction
 *     (PostgreSQL's rule; SQLite drops only the failed statement): the
 *     following calls fail with TB_E_IO until the caller rolls back, and
 *     commit answers TB_E_IO, "nothing stored";
 *   - begin_nosync is SET LOCAL synchronous_commit = off;
 *   - outbound_claim claims what it lists for TB_JPG_LEASE_S seconds (FOR
 *     UPDATE SKIP LOCKED, next attempt moved): two processes on one
 *     database never list the same message at once, and one that dies
 *     leaves its messages due again when the lease ends;
 *   - the audit chain is one chain for every process on the database:
 *     the entries a transaction appends are written at its commit, under
 *     a transaction-scoped advisory lock taken then, so two connections'
 *     commits take turns for the commit alone; inside a transaction
 *     tb_jpg_audit_add answers seq 0 and tb_jpg_audit_head does not yet
 *     see the transaction's own entries (SQLite's does);
 *   - vacuum is autovacuum's (tb_journal_vacuum answers TB_OK, 0 freed);
 *     a backup is pg_dump's (tb_journal_backup refuses, naming it);
 *   - a lost connection is TB_E_JOURNAL_DOWN ("journal.unavailable"),
 *     and the next call outside a transaction reconnects;
 *   - savepoints, audit rows and flow rows are sent in pipeline mode and
 *     answered with the next statement that waits: when one of them
 *     fails, the transaction is lost whole (commit: "nothing stored");
 *     so are the rows whose answer is known beforehand: outbound_put_new,
 *     inbound_put of an id the transaction's prefetch found absent, and
 *     outbound_delivered of a row its prefetch locked;
 *   - a case's state read by the transaction's case_prefetch is not
 *     read again (as a case_get's answer is not locked either).
 * Built without libpq, tb_jpg_open refuses every URI with TB_E_ARG and a
 * sentence saying so; the other functions are never reached.
 */
#ifndef TB_JOURNAL_PG_H
#define TB_JOURNAL_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/journal.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

struct tb_jpg;

/* PostgreSQL schema version kept in tb_schema.version; the migrations in
 * journal_pg.c bring an older database up to it, a newer one is refused
 * (TB_E_JOURNAL_VERSION). */
#define TB_JOURNAL_PG_SCHEMA 1

/* True when s names a PostgreSQL journal: "postgresql://" or
 * "postgres://" (libpq's connection URIs). */
bool tb_jpg_is_uri(const char *s);

/* Connects to uri (borrowed; libpq reads the password from PGPASSFILE or
 * ~/.pgpass, sslmode and the rest from the URI), creates or migrates the
 * schema, and returns a handle freed with tb_jpg_close(); NULL with d set
 * on failure (TB_E_IO: cannot connect or SQL failed; TB_E_JOURNAL_VERSION;
 * TB_E_ARG: built without libpq).  jdiag is the owning journal's diag
 * (borrowed for the handle's lifetime): later failures are recorded there. */
TB_MUST_CHECK struct tb_jpg *tb_jpg_open(const char *uri, struct tb_diag *jdiag, struct tb_diag *d);
void tb_jpg_close(struct tb_jpg *p);
/* TB_E_ARG with a sentence naming the call: what journal.c answers for a
 * call this backend does not do yet. */
TB_MUST_CHECK int tb_jpg_unsupported(struct tb_jpg *p, const char *what);

TB_MUST_CHECK int tb_jpg_ping(struct tb_jpg *p);
TB_MUST_CHECK int tb_jpg_begin(struct tb_jpg *p, bool lazy);
/* True, with the chain's head it wrote, when the last commit appended
 * audit entries (in a transaction they are written at its commit, and
 * tb_jpg_audit_add answers seq 0 until then). */
bool tb_jpg_committed_head(const struct tb_jpg *p, int64_t *seq, uint8_t hash[32]);
TB_MUST_CHECK int tb_jpg_commit(struct tb_jpg *p);
TB_MUST_CHECK int tb_jpg_rollback(struct tb_jpg *p);

TB_MUST_CHECK int tb_jpg_inbound_put(struct tb_jpg *p, const struct tb_journal_msg *m,
                                     struct tb_buf *orig_receipt);
TB_MUST_CHECK int tb_jpg_inbound_receipt(struct tb_jpg *p, const char *id, struct tb_buf *out);
TB_MUST_CHECK int tb_jpg_inbox_list(struct tb_jpg *p, size_t limit, int64_t after_seq,
                                    tb_journal_inbox_cb cb, void *ctx);
TB_MUST_CHECK int tb_jpg_inbox_ack(struct tb_jpg *p, const char *id);
TB_MUST_CHECK int tb_jpg_inbox_count(struct tb_jpg *p, int64_t *n);

TB_MUST_CHECK int tb_jpg_inbound_prefetch(struct tb_jpg *p, const char *const *ids, size_t n);
TB_MUST_CHECK int tb_jpg_outbound_prefetch(struct tb_jpg *p, const char (*ids)[33], size_t n);
/* True when the open transaction prefetched (and locked) outbound id:
 * its delivery is answered from what was read. */
bool tb_jpg_outbound_known(struct tb_jpg *p, const char *id);
/* The open transaction is lost: its commit stores nothing. */
void tb_jpg_lose(struct tb_jpg *p);
TB_MUST_CHECK int tb_jpg_case_prefetch(struct tb_jpg *p, const char *const *req,
                                       const char *const *hnd, const char *const *cid, size_t n);
TB_MUST_CHECK int tb_jpg_outbound_put_new(struct tb_jpg *p, const struct tb_journal_msg *m,
                                          int64_t next_attempt);
TB_MUST_CHECK int tb_jpg_outbound_put(struct tb_jpg *p, const struct tb_journal_msg *m,
                                      int64_t next_attempt);
/* Listing due messages claims them for this long (seconds): another
 * connection lists them only after it (tb_jpg_outbound_due). */
#define TB_JPG_LEASE_S TB_JOURNAL_LEASE_S
TB_MUST_CHECK int tb_jpg_outbound_due(struct tb_jpg *p, int64_t now, size_t limit, bool claim,
                                      tb_journal_out_cb cb, void *ctx);
TB_MUST_CHECK int tb_jpg_outbound_delivered(struct tb_jpg *p, const char *id,
                                            const uint8_t *receipt, size_t receipt_len, int64_t at,
                                            bool *fresh);
TB_MUST_CHECK int tb_jpg_outbound_retry(struct tb_jpg *p, const char *id, int64_t next_attempt,
                                        const char *last_error);
TB_MUST_CHECK int tb_jpg_outbound_reschedule(struct tb_jpg *p, const char *id,
                                             int64_t next_attempt);
TB_MUST_CHECK int tb_jpg_outbound_release_held(struct tb_jpg *p, int64_t now, int64_t *n);
/* tb_journal_outbound_extend: one statement for all of ids. */
TB_MUST_CHECK int tb_jpg_outbound_extend(struct tb_jpg *p, const char (*ids)[33], size_t n,
                                         int64_t until);
TB_MUST_CHECK int tb_jpg_outbound_failed(struct tb_jpg *p, const char *id, const char *reason,
                                         int64_t at);
TB_MUST_CHECK int tb_jpg_outbound_status(struct tb_jpg *p, const char *id,
                                         struct tb_journal_status *out, struct tb_buf *receipt);
TB_MUST_CHECK int tb_jpg_outbound_pending(struct tb_jpg *p, int64_t *n);
TB_MUST_CHECK int tb_jpg_outbound_next_due(struct tb_jpg *p, int64_t *when);
/* A unit inside the open transaction (journal.c's unit_begin/unit_end):
 * a savepoint, undone (which also lifts an abort an error inside the
 * unit caused) or released. */
enum tb_jpg_unit { TB_JPG_SAVEPOINT, TB_JPG_UNDO, TB_JPG_RELEASE };
TB_MUST_CHECK int tb_jpg_unit(struct tb_jpg *p, enum tb_jpg_unit op);

/* Appends an entry (fields checked by the caller) in the open
 * transaction or one of its own; *seq and hash get the new head.  The
 * chain's hash as journal.c's: start for an empty chain (with SM3, the
 * "chain hash=sm3" entry goes first), else entry 1's, read once into
 * *chain (*known set) and taken from there afterwards. */
TB_MUST_CHECK int tb_jpg_audit_add(struct tb_jpg *p, enum tb_audit_hash start, bool *known,
                                   enum tb_audit_hash *chain, char dir, const char *msgid,
                                   const char *digest_hex, const char *peer, int64_t at,
                                   const char *event, const char *detail, int64_t *seq,
                                   uint8_t hash[32]);
/* tb_journal_audit_chain: the chain's hash into *h (start, known, chain
 * as above). */
TB_MUST_CHECK int tb_jpg_audit_chain(struct tb_jpg *p, enum tb_audit_hash start, bool *known,
                                     enum tb_audit_hash *chain, enum tb_audit_hash *h);
/* The chain's head (0 and zeros when empty); TB_E_AUDIT when its hash is
 * malformed. */
TB_MUST_CHECK int tb_jpg_audit_head(struct tb_jpg *p, int64_t *seq, uint8_t hash[32]);
TB_MUST_CHECK int tb_jpg_audit_hash_at(struct tb_jpg *p, int64_t seq, char hash_hex[65]);
/* Message flows: the statement which (journal.c's flow_exec) with nt text
 * parameters t[], then iv when ni > 0; *row whether a row came, *out its
 * first column. */
enum tb_jpg_flow { TB_JPG_REQ_CLOSED, TB_JPG_REQ_CLOSE, TB_JPG_CASE_GET, TB_JPG_CASE_SET };
TB_MUST_CHECK int tb_jpg_flow(struct tb_jpg *p, enum tb_jpg_flow which, const char *const *t,
                              int nt, int ni, int64_t iv, int64_t *out, bool *row);
TB_MUST_CHECK int tb_jpg_inbound_get(struct tb_jpg *p, const char *id,
                                     struct tb_journal_inbound *out, struct tb_buf *envelope);
TB_MUST_CHECK int tb_jpg_outbound_envelope(struct tb_jpg *p, const char *id, struct tb_buf *out);
/* tb_journal_audit_list on the database at uri (a connection of its
 * own, for the call): entries with seq >= since, in order. */
TB_MUST_CHECK int tb_jpg_audit_list(const char *uri, int64_t since, tb_journal_audit_cb cb,
                                    void *ctx, struct tb_diag *d);
/* tb_journal_audit_verify on the database at uri: the chain as
 * tb_jpg_audit_list reads it (one snapshot), each entry's seq, prev and
 * recomputed hash checked as on SQLite. */
TB_MUST_CHECK int tb_jpg_audit_verify(const char *uri, int64_t *first_bad_seq, int64_t *entries,
                                      struct tb_diag *d);
/* tb_journal_retire's work on PostgreSQL with its bounds computed: the
 * same rows listed (outside a transaction), archived through a (may be
 * NULL) and synced, then deleted in one transaction.  Two processes on
 * one database may archive a message both (each into its own archive);
 * it is deleted once. */
TB_MUST_CHECK int tb_jpg_retire(struct tb_jpg *p, int64_t exp_bound, int64_t done_bound,
                                size_t limit, const struct tb_journal_archiver *a, size_t *removed);
/* tb_journal_stats on the database at uri (a connection of its own, one
 * snapshot): bytes is the database's size (pg_database_size), free_bytes
 * 0 (the space autovacuum keeps for reuse is PostgreSQL's to report). */
TB_MUST_CHECK int tb_jpg_stats(const char *uri, struct tb_journal_stats *st, struct tb_diag *d);
TB_MUST_CHECK int tb_jpg_prune(struct tb_jpg *p, int64_t bound, size_t *removed);

#endif
