/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal.h - the node's durable journal: inbound store and inbox, outbound
 * queue, replay cache, and a hash-chained audit log, in one SQLite file
 * or, when the path is a postgresql:// URI, in a PostgreSQL database
 * (node/journal_pg.h: the same contract, the differences listed there).
 *
 * "Nothing accepted is lost": an inbound message is put here before its
 * receipt is sent, an outbound one before the local caller hears
 * "accepted".  The file runs in WAL mode with synchronous=FULL, so a
 * committed transaction survives power loss; throughput comes from group
 * commit: the node calls tb_journal_begin(), journals a whole batch (every
 * envelope of one exchange, with their audit entries), tb_journal_commit()
 * once, and only then answers.  Any call made outside begin/commit runs
 * in its own implicit transaction (and pays its own fsync).
 *
 * A handle is used from one thread only.  The node opens three: the
 * event loop's (with the checkpoint thread), the ingest thread's and the
 * answers thread's (tb_journal_open_secondary, answers.c settles the
 * answers to outbound exchanges); SQLite serialises their write
 * transactions.  No global state.  Every
 * operation returns TB_OK (0) or a negative tb_err; after a failure tb_journal_diag() says why
 * (database failures are TB_E_IO with SQLite's message in the detail).
 *
 * Map of the interface:
 *   open/close/diag      handle lifetime
 *   begin/commit/rollback group commit
 *   inbound_*            messages received from peers; the replay cache
 *   inbox_*              the received messages the city's systems collect
 *   outbound_*           the delivery queue and each message's state
 *   prune                forgetting what can no longer matter
 *   retire/vacuum        retention: pruning after a time, archiving first
 *   backup/stats         a consistent copy and the figures, beside the node
 *   audit_*              the tamper-evident chain and its verifier
 */
#ifndef TB_JOURNAL_H
#define TB_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/tb_buf.h"
#include "util/tb_err.h"

struct tb_journal;

/* Schema version kept in PRAGMA user_version.  A file with a higher
 * version is refused (TB_E_JOURNAL_VERSION) rather than misread. */
#define TB_JOURNAL_SCHEMA 4

/*
 * A message as journalled.  Plain value type of borrowed pointers: the
 * journal copies what it keeps, and pointers it hands to a callback are
 * valid only during that call.
 *   id       32 lowercase hex digits (the envelope id)
 *   digest   64 lowercase hex digits (SHA-256 of the signed bytes)
 *   from, to, type   non-empty; service, corr may be NULL
 *   created, expires Unix seconds from the envelope
 *   envelope, envelope_len   the sealed envelope bytes (non-empty)
 *   receipt, receipt_len     inbound: the signed receipt the node sends
 *                            back (non-empty); outbound: ignored on put,
 *                            NULL/0 when listed
 */
struct tb_journal_msg {
	const char *id;
	const char *from;
	const char *to;
	const char *type;
	const char *service;
	const char *corr;
	const char *digest;
	int64_t created;
	int64_t expires;
	const uint8_t *envelope;
	size_t envelope_len;
	const uint8_t *receipt;
	size_t receipt_len;
};

/* An outbound message moves queued -> delivered or queued -> failed; both
 * end states are final.  (Retries keep it queued.) */
enum tb_journal_state {
	TB_JOURNAL_QUEUED = 0,
	TB_JOURNAL_DELIVERED = 1,
	TB_JOURNAL_FAILED = 2,
};

/* "queued", "delivered", "failed"; "unknown" otherwise.  Never NULL. */
const char *tb_journal_state_name(enum tb_journal_state s);

/* An outbound queue entry as listed by tb_journal_outbound_due().
 * Borrowed, valid during the callback only; last_error may be NULL. */
struct tb_journal_out {
	struct tb_journal_msg msg;
	enum tb_journal_state state;
	int64_t attempts;
	int64_t next_attempt;
	const char *last_error;
};

/* One outbound message's status: a plain value the caller owns.  Strings
 * are copied and truncated to fit; empty when not set.  delivered_at and
 * failed_at are 0 unless the message is in that state. */
struct tb_journal_status {
	enum tb_journal_state state;
	int64_t attempts;
	int64_t next_attempt;
	int64_t delivered_at;
	int64_t failed_at;
	char last_error[160];  /* the last tb_journal_outbound_retry() reason */
	char reason[160];      /* the tb_journal_outbound_failed() reason */
	char from[16], to[16]; /* sender (this node, or the origin of a relayed
	                        * message) and recipient */
	char type[48];
	char digest[65];
	char corr[33]; /* the message it answers, or empty */
};

/* ---- lifetime ---- */

/*
 * Opens (creating if missing) the journal at path and returns a new handle
 * the caller frees with tb_journal_close(); NULL on failure with d (may be
 * NULL) saying why: TB_E_ARG (path NULL/empty), TB_E_IO (cannot open or
 * create, cannot enable WAL), TB_E_JOURNAL_CORRUPT (not an SQLite file, or
 * an SQLite database of some other application), TB_E_JOURNAL_VERSION
 * (written by a newer schema), TB_E_NOMEM.  path is borrowed.
 */
TB_MUST_CHECK struct tb_journal *tb_journal_open(const char *path, struct tb_diag *d);
/* Process-wide SQLite settings for a program whose threads write journals
 * at once: memory statistics off (they take a global lock on every
 * allocation).  Call once, before any journal is opened and before other
 * threads start; later calls, or calls after SQLite started, do nothing. */
void tb_journal_library_init(void);
/* The same with flags: TB_JOURNAL_NO_CHECKPOINTS opens a further handle
 * on a journal another handle (with its checkpoint thread) has open, for
 * use by another thread; it never checkpoints.  Handles on one file may
 * write from different threads: SQLite serialises their transactions, and
 * a handle waits (polling, up to 5 s) for another's write lock. */
#define TB_JOURNAL_NO_CHECKPOINTS 1u
TB_MUST_CHECK struct tb_journal *tb_journal_open_ex(const char *path, unsigned flags,
                                                    struct tb_diag *d);
/* A further handle on primary's file (as TB_JOURNAL_NO_CHECKPOINTS) whose
 * commits wake primary's checkpoint thread too, so that the WAL is copied
 * back whichever handle writes.  primary (borrowed) must have its
 * checkpoint thread and stay open until this handle is closed.  NULL on
 * failure as for tb_journal_open (TB_E_ARG: primary NULL or without a
 * checkpoint thread). */
TB_MUST_CHECK struct tb_journal *tb_journal_open_secondary(struct tb_journal *primary,
                                                           struct tb_diag *d);
/* Closes the handle, rolling back an open transaction.  NULL allowed. */
void tb_journal_close(struct tb_journal *j);
/* Checkpoints run so far by the handle's background thread, which copies
 * the WAL into the database file whenever a commit leaves 1,000 pages or
 * more in it (the commits themselves never checkpoint). */
uint64_t tb_journal_checkpoints(struct tb_journal *j);
/* Detail of the last failed operation on j (code TB_OK if none).  Owned by
 * j, valid until the next call on j. */
const struct tb_diag *tb_journal_diag(const struct tb_journal *j);
/* Whether the journal's database answers: TB_OK for a SQLite journal (its
 * file is probed by the caller); on PostgreSQL one round trip outside a
 * transaction, reconnecting first when the connection was lost, else
 * TB_E_JOURNAL_DOWN (or TB_E_IO) with tb_journal_diag saying why.  Inside
 * an open transaction it answers TB_OK without asking.  For lifecycle.c's
 * health probe. */
TB_MUST_CHECK int tb_journal_ping(struct tb_journal *j);

/* ---- group commit ---- */

/*
 * Starts a write transaction (BEGIN IMMEDIATE: the write lock is taken now,
 * so a busy database fails here rather than halfway through a batch).
 * TB_E_ARG when one is already open.  Every call until commit/rollback joins
 * it; a call that fails inside it changes nothing (each change is one SQL
 * statement), so the caller may carry on with the rest of the batch.  If
 * SQLite itself aborted the transaction (disk full, I/O error), commit
 * returns TB_E_IO and the batch must be treated as not stored.
 */
TB_MUST_CHECK int tb_journal_begin(struct tb_journal *j);
/* Makes the transaction durable; only after TB_OK may the batch be
 * answered.  On failure the transaction is rolled back.  TB_E_ARG when
 * none is open. */
TB_MUST_CHECK int tb_journal_commit(struct tb_journal *j);
/* Opens a transaction whose commit does not wait for the disk (no
 * fsync): for changes that may be lost in a crash without harm, such as
 * marking messages as sent (they are then sent again, and receivers are
 * idempotent).  The next durable commit makes them durable too, so a
 * crash never keeps a later durable change and loses an earlier lazy
 * one.  Committed or rolled back as any other; the journal is durable
 * again afterwards.  (SQLite refuses to change its safety level inside a
 * transaction, hence the choice at the start.) */
TB_MUST_CHECK int tb_journal_begin_nosync(struct tb_journal *j);
/* Abandons the transaction.  TB_E_ARG when none is open. */
TB_MUST_CHECK int tb_journal_rollback(struct tb_journal *j);

/* ---- inbound: received messages, and the replay cache ---- */

/*
 * Stores a received message m (copied) with its receipt, unacknowledged.
 * TB_OK when new.  TB_E_REPLAY when the id is already journalled: nothing
 * is stored, and when the stored message has the same digest and sender
 * (a retransmission), orig_receipt (reset first; may be NULL) receives the
 * receipt stored the first time, to be sent back again, so a duplicate is
 * answered identically and never handed on twice.  If the id is reused by
 * a different message (digest or sender differ) orig_receipt stays empty:
 * send an error, not somebody else's receipt.  TB_E_ARG when a field is
 * missing or malformed.
 */
TB_MUST_CHECK int tb_journal_inbound_put(struct tb_journal *j, const struct tb_journal_msg *m,
                                         struct tb_buf *orig_receipt);
/* The stored receipt for inbound id into out (reset first).  TB_E_NOTFOUND
 * when the id is not (or no longer) journalled. */
TB_MUST_CHECK int tb_journal_inbound_receipt(struct tb_journal *j, const char *id,
                                             struct tb_buf *out);
/*
 * A batch's lookups in one round trip, inside a transaction: which of
 * ids[0..n) (32 hex each, borrowed) are journalled inbound, with their
 * receipts.  On PostgreSQL, tb_journal_inbound_receipt of these ids then
 * answers from what was read, without asking the server, until the
 * transaction ends, and tb_journal_inbound_put of an id read as absent
 * sends its row without waiting for the answer: if another process of
 * the member stores a copy meanwhile, the commit fails whole ("nothing
 * stored", as any failure inside a transaction on PostgreSQL) and the
 * sender's retry is answered with the original receipt.  Within the
 * transaction the answers stay right: a receipt lookup of an id put
 * since asks the server again.  TB_E_ARG outside a transaction or for a
 * malformed id; TB_OK without effect on SQLite (whose lookups are
 * local).
 */
TB_MUST_CHECK int tb_journal_inbound_prefetch(struct tb_journal *j, const char *const *ids,
                                              size_t n);

/* ---- inbox: what the city's systems have not yet collected ---- */

/* Called once per message; m is borrowed for the call.  Return 0 to go on;
 * anything else stops the listing, which returns that value.  The callback
 * must not call into the same journal handle (collect ids, act after). */
typedef int (*tb_journal_inbox_cb)(void *ctx, int64_t seq, const struct tb_journal_msg *m);

/*
 * Lists up to limit (0: no limit) unacknowledged inbound messages with
 * arrival sequence > after_seq, in arrival order.  Sequence numbers only
 * grow and are never reused, so the last seq seen is a stable cursor for
 * the next page.
 */
TB_MUST_CHECK int tb_journal_inbox_list(struct tb_journal *j, size_t limit, int64_t after_seq,
                                        tb_journal_inbox_cb cb, void *ctx);
/* Marks inbound id acknowledged (collected).  Acknowledging twice is TB_OK;
 * an unknown id is TB_E_NOTFOUND. */
TB_MUST_CHECK int tb_journal_inbox_ack(struct tb_journal *j, const char *id);
/* Number of unacknowledged inbound messages into *n. */
TB_MUST_CHECK int tb_journal_inbox_count(struct tb_journal *j, int64_t *n);

/* ---- outbound: the delivery queue ---- */

/* Queues m (copied; receipt ignored) for its first attempt at
 * next_attempt.  TB_E_REPLAY when the id is already in the queue's
 * history; TB_E_ARG when a field is missing or malformed. */
TB_MUST_CHECK int tb_journal_outbound_put(struct tb_journal *j, const struct tb_journal_msg *m,
                                          int64_t next_attempt);

/* As tb_journal_outbound_put, for a message this node has just made
 * (its id new: random, never journalled): on PostgreSQL inside a
 * transaction the row is sent without waiting for the answer, and a
 * duplicate id, which a new one is not, fails the commit whole instead
 * of answering TB_E_REPLAY.  Otherwise, and on SQLite, the same as
 * tb_journal_outbound_put. */
TB_MUST_CHECK int tb_journal_outbound_put_new(struct tb_journal *j, const struct tb_journal_msg *m,
                                              int64_t next_attempt);

/* Called once per due message; o is borrowed for the call.  Return value
 * and re-entrancy rule as for tb_journal_inbox_cb. */
typedef int (*tb_journal_out_cb)(void *ctx, const struct tb_journal_out *o);

/* Lists up to limit (0: no limit) queued messages with next_attempt <= now,
 * longest-waiting first (next_attempt, then queue order). */
TB_MUST_CHECK int tb_journal_outbound_due(struct tb_journal *j, int64_t now, size_t limit,
                                          tb_journal_out_cb cb, void *ctx);
/* As tb_journal_outbound_due, for the sender: on a journal several
 * processes share (PostgreSQL) what it lists is claimed for a lease of
 * 10 s (its next attempt moved to the lease's end), so no other process
 * lists it meanwhile; marking it sent, retried or settled replaces the
 * lease, and a process that dies leaves its messages due again when the
 * lease ends.  On SQLite (one process) the same as tb_journal_outbound_due. */
TB_MUST_CHECK int tb_journal_outbound_claim(struct tb_journal *j, int64_t now, size_t limit,
                                            tb_journal_out_cb cb, void *ctx);
/* The lease, s, by which a process holds the messages it sends on a
 * shared journal (above; renewed with tb_journal_outbound_extend while
 * their exchange lives): a process that dies loses them this long
 * after its last renewal. */
#define TB_JOURNAL_LEASE_S 10
/* True when several processes may share j (PostgreSQL). */
bool tb_journal_shared(const struct tb_journal *j);
/* Renews the lease on the queued messages among ids[0..n): a next
 * attempt before until moves to until.  Nothing on SQLite (TB_OK). */
TB_MUST_CHECK int tb_journal_outbound_extend(struct tb_journal *j, const char (*ids)[33], size_t n,
                                             int64_t until);
/*
 * Records delivery of queued id with the peer's receipt (copied; may be
 * empty) at time at; a message delivered counts at least one attempt.  Delivering an already
 * delivered message is TB_OK and keeps the first receipt (a late duplicate receipt after a retry).
 * *fresh (fresh may be NULL) is true only when this call moved the message
 * from queued to delivered, so a second answer for it is not counted, logged
 * or audited again.
 * TB_E_NOTFOUND for an unknown id; TB_E_JOURNAL_STATE if it had failed.
 */
TB_MUST_CHECK int tb_journal_outbound_delivered(struct tb_journal *j, const char *id,
                                                const uint8_t *receipt, size_t receipt_len,
                                                int64_t at, bool *fresh);
/* The states of the outbound messages ids[0..n) in one round trip, inside
 * a transaction, before settling a batch's answers: on PostgreSQL the
 * rows are locked until the transaction ends, and
 * tb_journal_outbound_delivered of one of them then answers from the
 * state read (*fresh included) and sends its change without waiting.
 * TB_E_ARG outside a transaction or for a malformed id; TB_OK without
 * effect on SQLite. */
TB_MUST_CHECK int tb_journal_outbound_prefetch(struct tb_journal *j, const char (*ids)[33],
                                               size_t n);
/* Counts a failed attempt of queued id, records last_error (copied; may be
 * NULL) and schedules the next one.  TB_E_NOTFOUND / TB_E_JOURNAL_STATE
 * (not queued any more). */
TB_MUST_CHECK int tb_journal_outbound_retry(struct tb_journal *j, const char *id,
                                            int64_t next_attempt, const char *last_error);
/* Moves the next attempt of queued id to next_attempt without counting a
 * failure (a message the sender held in memory hands it back to the
 * queue).  TB_E_NOTFOUND / TB_E_JOURNAL_STATE (not queued any more). */
TB_MUST_CHECK int tb_journal_outbound_reschedule(struct tb_journal *j, const char *id,
                                                 int64_t next_attempt);
/* After a restart: every queued message never tried (no last_error) whose
 * next attempt lies after now is due at now; their number into *n (may
 * be NULL).  Such messages were held in memory by a sender that stopped. */
TB_MUST_CHECK int tb_journal_outbound_release_held(struct tb_journal *j, int64_t now, int64_t *n);
/* Gives up on queued id (e.g. it expired) with reason (copied; may be NULL)
 * at time at.  TB_E_NOTFOUND / TB_E_JOURNAL_STATE (not queued any more). */
TB_MUST_CHECK int tb_journal_outbound_failed(struct tb_journal *j, const char *id,
                                             const char *reason, int64_t at);
/* Status of outbound id into *out; when receipt is not NULL it is reset
 * and receives the delivery receipt (empty unless delivered).
 * TB_E_NOTFOUND for an unknown (or pruned) id. */
TB_MUST_CHECK int tb_journal_outbound_status(struct tb_journal *j, const char *id,
                                             struct tb_journal_status *out, struct tb_buf *receipt);
/* Queue depth: number of queued messages into *n. */
TB_MUST_CHECK int tb_journal_outbound_pending(struct tb_journal *j, int64_t *n);
/* Called once per recipient with queued messages (to borrowed for the
 * call); return value and re-entrancy rule as for tb_journal_inbox_cb. */
typedef int (*tb_journal_count_cb)(void *ctx, const char *to, int64_t queued);
/* Queue depth per recipient: cb for each member id that queued messages
 * are addressed to (not the next hop), in id order. */
TB_MUST_CHECK int tb_journal_outbound_queued_by(struct tb_journal *j, tb_journal_count_cb cb,
                                                void *ctx);
/* Earliest next_attempt among queued messages into *when (to arm the retry
 * timer).  TB_E_NOTFOUND when nothing is queued. */
TB_MUST_CHECK int tb_journal_outbound_next_due(struct tb_journal *j, int64_t *when);

/* ---- forgetting ---- */

/*
 * Deletes inbound messages that are acknowledged and expired before
 * now - keep_after_expiry, and outbound messages delivered or failed and
 * expired before the same bound; *removed (may be NULL) gets the count.
 *
 * Why this is safe for replay protection: the inbound table is the replay
 * cache.  A message is refused by the time check once it has expired, so
 * its id need only be remembered while it could still pass that check,
 * i.e. until expires + the allowed clock skew.  keep_after_expiry must be
 * at least that skew.  Unacknowledged messages are never pruned (the city
 * has not collected them), nor are queued ones.  Audit entries are never
 * pruned.
 */
TB_MUST_CHECK int tb_journal_prune(struct tb_journal *j, int64_t now, int64_t keep_after_expiry,
                                   size_t *removed);

/* ---- retention (docs/ADMIN.md, "Retention and archives") ---- */

/* A finished message on its way out of the journal, as handed to an
 * archive.  Borrowed, valid during the call only. */
struct tb_journal_retired {
	char dir;           /* 'i' received, 'o' sent */
	const char *id;     /* 32 hex */
	const char *digest; /* 64 hex: what the audit chain names */
	const char *peer;   /* the sender ('i') or the recipient ('o') */
	const char *type;
	const char *state; /* "acked", "delivered" or "failed" */
	int64_t at;        /* when it reached that state, Unix seconds */
	const uint8_t *envelope;
	size_t envelope_len;
	const uint8_t *receipt; /* the receipt sent ('i') or received ('o');
	                         * empty (NULL/0) for a failed message */
	size_t receipt_len;
};

/* Where pruned messages go first: put() is called once per message, then
 * sync() once, and only when sync() returned TB_OK are they deleted.
 * Both return TB_OK or a negative tb_err; both run on the journal
 * handle's thread and must not call into the journal. */
struct tb_journal_archiver {
	int (*put)(void *ctx, const struct tb_journal_retired *r);
	int (*sync)(void *ctx);
	void *ctx;
};

/*
 * Prunes finished messages -- inbound ones acknowledged, outbound ones
 * delivered or failed -- that finished at or before now - retention and
 * expired before now - keep_after_expiry (the replay rule of
 * tb_journal_prune: an id is remembered while a copy could pass the time
 * check), at most limit (1 .. 2^20) of each direction, oldest first.
 * With a (may be NULL) each goes to the archive first; nothing is
 * deleted unless every put() and the sync() succeeded (so a crash may
 * archive a message twice, never lose one).  The envelope and receipt go
 * with the message; audit entries stay.  *removed (may be NULL) gets the
 * number deleted: call again while it is limit or more (a direction may
 * have more).  Outside the
 * caller's transaction the deletion is one transaction of its own.
 */
TB_MUST_CHECK int tb_journal_retire(struct tb_journal *j, int64_t now, int64_t retention,
                                    int64_t keep_after_expiry, size_t limit,
                                    const struct tb_journal_archiver *a, size_t *removed);
/* Gives free pages back to the file system: on a journal created with
 * auto_vacuum=INCREMENTAL (every journal created by schema 3 or later),
 * once more than a quarter of the file is free, it shrinks to keep free
 * an eighth of what is in use, for the messages to come.  *freed (may be NULL) gets the
 * pages released (they leave the file at the next checkpoint).  Not
 * inside a transaction (TB_E_ARG). */
TB_MUST_CHECK int tb_journal_vacuum(struct tb_journal *j, int64_t *freed);

/* ---- backup and figures (work beside a running node) ---- */

/*
 * Copies the journal at path, as of one commit, to the new file out
 * (mode 0600; an existing out is refused with TB_E_IO, never
 * overwritten), through SQLite's online backup: WAL contents included,
 * the node's writes going on meanwhile.  The copy is checked (it is a
 * journal, quick_check passes) and is one self-contained file.  On
 * failure out is removed.  TB_E_ARG, TB_E_IO, TB_E_JOURNAL_CORRUPT,
 * TB_E_JOURNAL_VERSION, TB_E_NOMEM with d (may be NULL) saying why.
 * Both paths borrowed.
 */
TB_MUST_CHECK int tb_journal_backup(const char *path, const char *out, struct tb_diag *d);

/* What a journal holds, counted in one read transaction. */
struct tb_journal_stats {
	int64_t inbox;                     /* received, not acknowledged */
	int64_t inbound_acked;             /* received, acknowledged, not yet pruned */
	int64_t queued, delivered, failed; /* outbound, by state */
	int64_t audit;                     /* audit entries */
	int64_t bytes;                     /* database size (pages in use and free) */
	int64_t free_bytes;                /* free pages in it */
};

/* Counts the journal at path (borrowed; opened read-only, so it can run
 * beside the node) into *st.  Errors as tb_journal_backup's. */
TB_MUST_CHECK int tb_journal_stats(const char *path, struct tb_journal_stats *st,
                                   struct tb_diag *d);

/* ---- audit chain ---- */

/*
 * Appends an entry to the audit chain (no detail): dir 'i' (inbound) or 'o' (outbound),
 * msgid (32 hex), digest_hex (64 hex), peer (member id, non-empty), at (Unix
 * seconds), event (non-empty, e.g. "received", "queued", "delivered",
 * "failed").  All strings borrowed.  Entries are numbered 1, 2, ... and
 * each one's hash covers the previous one's (see tb_journal_audit_hash),
 * so altering, inserting or deleting an entry breaks the chain from there
 * on.  Call it in the same transaction as the change it records.
 */
TB_MUST_CHECK int tb_journal_audit_append(struct tb_journal *j, char dir, const char *msgid,
                                          const char *digest_hex, const char *peer, int64_t at,
                                          const char *event);
/*
 * A state change and the audit entry that records it, both or neither:
 * they run as one unit (an SQL savepoint inside the caller's transaction,
 * or a transaction of their own), undone whole when either step fails,
 * so the chain never names an event that did not happen and no change
 * is kept without its entry.  Each returns TB_OK, or the error of the
 * step that failed (tb_journal_diag says which):
 *   _put_audit        tb_journal_outbound_put(m, next_attempt), then the
 *                     entry ('o', m->id, m->digest, m->to, at, event),
 *                     e.g. "queued" or "relayed"; a "relayed" entry's
 *                     detail names the origin, "from=<m->from>", so a
 *                     hub's chain holds id, from, to and digest;
 *   _delivered_audit  tb_journal_outbound_delivered(), then "delivered"
 *                     for peer (the recipient); a message that had failed
 *                     is TB_E_JOURNAL_STATE and gets no entry, nor does
 *                     one already delivered (*fresh false, TB_OK);
 *   _failed_audit     tb_journal_outbound_failed(), then "failed";
 *                     TB_E_JOURNAL_STATE / TB_E_NOTFOUND as that one.
 * Strings are borrowed.
 */
TB_MUST_CHECK int tb_journal_outbound_put_audit(struct tb_journal *j,
                                                const struct tb_journal_msg *m,
                                                int64_t next_attempt, int64_t at,
                                                const char *event);
TB_MUST_CHECK int tb_journal_outbound_delivered_audit(struct tb_journal *j, const char *id,
                                                      const uint8_t *receipt, size_t receipt_len,
                                                      int64_t at, const char *digest_hex,
                                                      const char *peer, bool *fresh);
TB_MUST_CHECK int tb_journal_outbound_failed_audit(struct tb_journal *j, const char *id,
                                                   const char *reason, int64_t at,
                                                   const char *digest_hex, const char *peer);
/* The last entry's seq (0 when empty) and hash as 64 hex + NUL (all zeros
 * when empty).  Recording the head elsewhere is what makes truncation of
 * the chain's tail detectable: the chain alone cannot show it. */
TB_MUST_CHECK int tb_journal_audit_head(struct tb_journal *j, int64_t *seq, char hash_hex[65]);

/* The stored hash of entry seq as 64 hex + NUL; TB_E_NOTFOUND when there
 * is no such entry.  (The node checks that the entry its last signed head
 * named is still there, unchanged, before signing a newer one.) */
TB_MUST_CHECK int tb_journal_audit_hash_at(struct tb_journal *j, int64_t seq, char hash_hex[65]);

/*
 * The hash of a chain (docs/PROTOCOL.md 11.2), fixed for the chain by its
 * first entry: SHA-256, unless entry 1 is the node's own entry "chain"
 * with detail "hash=sm3" (then SM3, entry 1 included).  A node whose
 * message-signing key is sm2 starts its chains so, and keeps an existing
 * chain's hash whatever key it later gets: entries, once written, keep
 * their hashes and stay verifiable.
 */
enum tb_audit_hash { TB_AUDIT_SHA256 = 0, TB_AUDIT_SM3 = 1 };

/* "sha256" or "sm3". */
const char *tb_journal_audit_hash_name(enum tb_audit_hash h);
/* The hash a chain whose entry 1 has these fields uses, into *h (borrowed
 * strings): TB_AUDIT_SM3 for ('a', "chain", "hash=sm3"), TB_AUDIT_SHA256
 * for ('a', "chain", "hash=sha256") and for any other entry; TB_E_AUDIT
 * for a "chain" entry naming another hash. */
TB_MUST_CHECK int tb_journal_audit_chain_hash(char dir, const char *event, const char *detail,
                                              enum tb_audit_hash *h);
/* The hash a chain j starts is hashed with (default TB_AUDIT_SHA256).
 * With TB_AUDIT_SM3, the first append to an empty chain first writes
 * the "chain hash=sm3" entry (seq 1) in the same transaction.  No effect
 * on a chain that has entries.  Set it before other threads use j;
 * handles opened afterwards with tb_journal_open_secondary(j) inherit
 * it. */
void tb_journal_set_audit_hash(struct tb_journal *j, enum tb_audit_hash h);
/* The hash of j's chain into *h: its entry 1's, or for an empty chain
 * the one tb_journal_set_audit_hash chose.  TB_OK, or an error as for
 * tb_journal_audit_head. */
TB_MUST_CHECK int tb_journal_audit_chain(struct tb_journal *j, enum tb_audit_hash *h);

/*
 * The entry hash, a fixed serialization so other tools can verify a chain:
 *
 *   SHA-256( "tongban-audit-v1"            16 bytes, no NUL
 *            || u64be(seq)
 *            || prev                       32 bytes (entry 1: all zero)
 *            || u8(dir)                    'i' or 'o'
 *            || lp(msgid) || lp(digest_hex) || lp(peer)
 *            || i64be(at)                  two's complement
 *            || lp(event) )
 *
 * where lp(s) = u32be(strlen(s)) || s.  Length prefixes keep field
 * boundaries unambiguous ("ab"+"c" differs from "a"+"bc").  Writes 32
 * bytes to out.  TB_E_ARG when a string is NULL or longer than 4 GiB.
 */
TB_MUST_CHECK int tb_journal_audit_hash(int64_t seq, const uint8_t prev[32], char dir,
                                        const char *msgid, const char *digest_hex, const char *peer,
                                        int64_t at, const char *event, uint8_t out[32]);

/* The same with a detail (borrowed, "" for none), hashed after the event
 * as lp(detail) when it is not empty (docs/PROTOCOL.md, "Audit chain"),
 * so entries without one keep the hash above. */
TB_MUST_CHECK int tb_journal_audit_hash_ex(int64_t seq, const uint8_t prev[32], char dir,
                                           const char *msgid, const char *digest_hex,
                                           const char *peer, int64_t at, const char *event,
                                           const char *detail, uint8_t out[32]);

/* The same with the chain's hash h: SHA-256 or SM3 over the same bytes. */
TB_MUST_CHECK int tb_journal_audit_hash_h(enum tb_audit_hash h, int64_t seq, const uint8_t prev[32],
                                          char dir, const char *msgid, const char *digest_hex,
                                          const char *peer, int64_t at, const char *event,
                                          const char *detail, uint8_t out[32]);

/* Longest detail of an entry, in bytes. */
#define TB_JOURNAL_AUDIT_DETAIL_MAX 512

/*
 * Appends an entry about the node itself (dir 'a': "start", "stop",
 * "registry-applied", "config-reloaded", "key-rotated", "recovery-entered",
 * "recovery-left", "audit-gap", ...; docs/PROTOCOL.md lists them) at time
 * at, with an optional detail (may be NULL; "key=value" words by
 * convention, e.g. "serial=42").  Its msgid, digest and peer are empty.
 * Event and detail (borrowed) are printable ASCII without '"' and '\\'
 * (as every entry's fields: exported lines need no escapes), the detail
 * at most TB_JOURNAL_AUDIT_DETAIL_MAX bytes; TB_E_ARG otherwise.  Joins
 * the caller's transaction, or commits one of its own.
 */
TB_MUST_CHECK int tb_journal_audit_admin(struct tb_journal *j, int64_t at, const char *event,
                                         const char *detail);

/*
 * Called after every durable commit (of any handle sharing the hook) that
 * appended audit entries, with the chain's committed head: seq and the
 * raw 32-byte hash (borrowed for the call).  A lazy commit's entries are
 * reported after the next durable commit, so a head reported here is
 * never ahead of what a crash keeps.  Runs on the committing handle's
 * thread; two handles may call it at once, and a later call may carry
 * an older head than an earlier one (the callback keeps the highest).
 * It must not call into the journal.
 */
typedef void (*tb_journal_head_fn)(void *ctx, int64_t seq, const uint8_t hash[32]);
/* Sets j's head hook (NULL: none).  Handles opened afterwards with
 * tb_journal_open_secondary(j) inherit it.  Set it before other threads
 * use j. */
void tb_journal_set_head_hook(struct tb_journal *j, tb_journal_head_fn fn, void *ctx);

/* An entry as read back by tb_journal_audit_list.  Borrowed, valid during
 * the callback only; strings are never NULL ("" when empty). */
struct tb_journal_audit_entry {
	int64_t seq;
	const char *prev; /* 64 hex */
	char dir;         /* 'i', 'o' or 'a' */
	const char *msgid, *digest, *peer;
	int64_t at;
	const char *event, *detail;
	const char *hash; /* 64 hex, as stored (tb_journal_audit_verify checks it) */
};
/*
 * A chain checked entry by entry (tb_journal_audit_verify's steps, for
 * any source of entries: a journal of either backend, an export).  Plain
 * value: tb_journal_audit_walk_init, then tb_journal_audit_walk_next for
 * every entry from seq 1 on, in order.
 */
struct tb_journal_audit_walk {
	int64_t next;         /* the seq the next entry must have */
	uint8_t prev[32];     /* the hash the next entry's prev must be */
	enum tb_audit_hash h; /* the chain's hash (known from entry 1 on) */
};
void tb_journal_audit_walk_init(struct tb_journal_audit_walk *w);
/* True when e is the next entry: its seq is w->next, its prev the
 * previous entry's hash (zeros for entry 1), its hash recomputes with the
 * chain's hash (set by entry 1: tb_journal_audit_chain_hash), and it is
 * not a "chain" entry after entry 1.  Then w moves on; otherwise why
 * (whylen bytes) says what is wrong and w is unchanged. */
TB_MUST_CHECK bool tb_journal_audit_walk_next(struct tb_journal_audit_walk *w,
                                              const struct tb_journal_audit_entry *e, char *why,
                                              size_t whylen);

/* Return 0 to go on; anything else stops the listing, which returns it. */
typedef int (*tb_journal_audit_cb)(void *ctx, const struct tb_journal_audit_entry *e);
/*
 * Lists the entries of the journal at path (borrowed) with seq >= since,
 * in order, from one read-only snapshot (beside a running node).  Does
 * not verify them.  TB_OK, the callback's non-zero value, or an error as
 * for tb_journal_audit_verify (d may be NULL).
 */
TB_MUST_CHECK int tb_journal_audit_list(const char *path, int64_t since, tb_journal_audit_cb cb,
                                        void *ctx, struct tb_diag *d);

/*
 * Verifies the audit chain of the journal at path (borrowed), opened
 * read-only so it can run beside the live node.  TB_OK with *entries = the
 * number of entries when every entry's seq follows its predecessor's, its
 * prev equals the predecessor's hash and its hash recomputes with the
 * chain's hash (tb_journal_audit_walk_next).  Otherwise
 * TB_E_AUDIT with *first_bad_seq = the first entry that fails (for a
 * deleted entry, the missing seq) and *entries = the entries checked
 * before it.  TB_E_IO / TB_E_JOURNAL_CORRUPT / TB_E_JOURNAL_VERSION when
 * the file cannot be read as a journal.  Out pointers may be NULL; d may
 * be NULL.  An entry rewritten together with every later hash, or a
 * truncated tail, verifies: compare against a head recorded elsewhere
 * (tb_journal_audit_head; the node's signed head file, node/audit.h) to
 * catch those.
 */
TB_MUST_CHECK int tb_journal_audit_verify(const char *path, int64_t *first_bad_seq,
                                          int64_t *entries, struct tb_diag *d);

/* ---- message flows (docs/PROTOCOL.md section 10) ---- */

/* A received message's routing facts, copied into caller-owned arrays. */
struct tb_journal_inbound {
	char from[16];
	char type[48];
	char service[72];
	char corr[33];
	char digest[65];
	bool acked;
};

/* Facts of inbound message id; its envelope into envelope (reset first)
 * when not NULL.  TB_E_NOTFOUND when unknown. */
TB_MUST_CHECK int tb_journal_inbound_get(struct tb_journal *j, const char *id,
                                         struct tb_journal_inbound *out, struct tb_buf *envelope);
/* The stored envelope of outbound message id into out (reset first).
 * TB_E_NOTFOUND when unknown. */
TB_MUST_CHECK int tb_journal_outbound_envelope(struct tb_journal *j, const char *id,
                                               struct tb_buf *out);
/* Whether request id (a message this node sent) was closed by a final
 * answer; closing twice is harmless. */
TB_MUST_CHECK int tb_journal_request_closed(struct tb_journal *j, const char *id, bool *closed);
TB_MUST_CHECK int tb_journal_request_close(struct tb_journal *j, const char *id, int64_t at);
/* The state (an enum tb_case_state value, 0 when unknown) of a case, keyed
 * by requester member, handler member and case id; and its update. */
TB_MUST_CHECK int tb_journal_case_get(struct tb_journal *j, const char *requester,
                                      const char *handler, const char *case_id, int *state);
TB_MUST_CHECK int tb_journal_case_set(struct tb_journal *j, const char *requester,
                                      const char *handler, const char *case_id, int state,
                                      int64_t at);
/* The states of the cases (req[i], hnd[i], cid[i]) for i in 0..n (all
 * borrowed) in one round trip, inside a transaction, before a batch's
 * flows: on PostgreSQL tb_journal_case_get of one of them then answers
 * from what was read, kept current by tb_journal_case_set, until the
 * transaction ends.  TB_E_ARG outside a transaction; TB_OK without
 * effect on SQLite. */
TB_MUST_CHECK int tb_journal_case_prefetch(struct tb_journal *j, const char *const *req,
                                           const char *const *hnd, const char *const *cid,
                                           size_t n);

#endif
