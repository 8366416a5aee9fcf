/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flows.h - message flows at the node: the checks of a message received
 * (inbound.c) or sent (outbound.c) against the journal's open requests
 * and cases, inside the caller's journal transaction.  Calls node.c and
 * the journal only; thread: the caller's journal handle's.
 */
#ifndef TB_FLOWS_H
#define TB_FLOWS_H

#include "node.h"
#include "../util/tb_err.h"

struct tb_env;
struct tb_journal;

/* Message-flow checks of a received (for this node) / sent envelope,
 * inside the caller's journal transaction: body schema, answer matched to
 * an open request, case lifecycle (applied).  0 or TB_E_BODY,
 * TB_E_FLOW_UNMATCHED, TB_E_FLOW_STATE, TB_E_IO. */
TB_MUST_CHECK int tb_flows_inbound(struct tb_node *n, const struct tb_env *e, struct tb_diag *d);
/* The outbound check reads and writes journal j: the loop's n->journal,
 * or the ingest thread's own handle (it reads only immutable parts of n
 * and the registry, under reg_lock). */
TB_MUST_CHECK int tb_flows_outbound(struct tb_node *n, struct tb_journal *j, const struct tb_env *e,
                                    struct tb_diag *d);
/* Before the flows of a batch, in its transaction on j: the states of
 * the cases its messages move read in one round trip
 * (tb_journal_case_prefetch).  envs[0..count) are received from their
 * senders by self when sending is false, sent by self to their
 * recipients when true; NULL entries are skipped.  TB_OK, or the
 * journal's error (the transaction is then to be rolled back). */
TB_MUST_CHECK int tb_flows_prefetch(struct tb_journal *j, const char *self,
                                    const struct tb_env *const *envs, size_t count, bool sending);
#endif
