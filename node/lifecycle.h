/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lifecycle.h - the node's lifecycle over time (docs/ADMIN.md "Operating
 * states"): a one-second tick that moves the node into recovery when its
 * registry expires and applies a registry kept until it is valid
 * (node.c); rate-limited warnings as the registry and the certificate
 * near expiry; a probe of the journal's writability; and the verdict
 * /healthz gives (api.c) and /metrics renders.
 *
 * What it owns: n->life (its timer and what it last said).  It reads the
 * registry in force and n->cert_not_after, and calls node.c to change
 * n->state; it sends nothing and writes no journal.  Loop only.
 */
#ifndef TB_LIFECYCLE_H
#define TB_LIFECYCLE_H

#include <stddef.h>

#include "node.h"
#include "../util/tb_err.h"

/* The verdict of /healthz. */
enum tb_health {
	TB_HEALTH_OK = 0,       /* 200 "ok" */
	TB_HEALTH_DEGRADED = 1, /* 200: exchanging, something needs care soon */
	TB_HEALTH_FAILING = 2,  /* 503: not exchanging, or cannot keep what it accepts */
};

/* Starts the tick on n->base, writes the last good copy of the registry
 * if it is missing or stale, and logs what is already near expiry. */
TB_MUST_CHECK int tb_lifecycle_start(struct tb_node *n, struct tb_diag *d);
void tb_lifecycle_stop(struct tb_node *n);
/* The node's health now: the verdict; status receives one word ("ok",
 * "degraded", "recovery", "suspended", "revoked", "certificate",
 * "journal"; the most severe cause) and why the causes as one line,
 * "; "-separated ("" when ok).  Both are truncated to their lengths. */
enum tb_health tb_lifecycle_health(const struct tb_node *n, char *status, size_t slen, char *why,
                                   size_t wlen);
/* False when the last probe (every 10 s) found the journal file, its WAL
 * or its directory not writable, or its filesystem (nearly) full. */
bool tb_lifecycle_journal_writable(const struct tb_node *n);

/*
 * The journal's disk is full (docs/ADMIN.md "A full journal disk"):
 * inbound.c reports each exchange it refused because the journal had no
 * room (5.03 journal.full with Max-Age full_retry), and each exchange it
 * stored.  The first refusal starts the condition: one error line, and
 * /healthz answers 503 "journal" with why; it ends at the next stored
 * exchange, or when the probe (every second while it lasts) can write
 * and fsync a 64 KiB file beside the journal: one line with how many
 * messages were refused meanwhile.  n->m.in_full counts them.
 */
/* count messages were refused: detail is the journal's message (copied). */
void tb_lifecycle_store_full(struct tb_node *n, size_t count, const char *detail);
/* An exchange was stored: the condition ends, if it held. */
void tb_lifecycle_store_ok(struct tb_node *n);
/* True while the condition holds (the tongban_journal_full gauge). */
bool tb_lifecycle_journal_full(const struct tb_node *n);

#endif
