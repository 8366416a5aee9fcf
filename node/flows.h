/*
 * flows.h - message flows at the node, and the reference responder.
 */
#ifndef TB_FLOWS_H
#define TB_FLOWS_H

#include "node.h"

struct tb_env;
struct tb_journal;

/* Message-flow checks of a received (for this node) / sent envelope,
 * inside the caller's journal transaction: body schema, answer matched to
 * an open request, case lifecycle (applied).  0 or TB_E_BODY,
 * TB_E_FLOW_UNMATCHED, TB_E_FLOW_STATE, TB_E_IO. */
int tb_flows_inbound(struct tb_node *n, const struct tb_env *e, struct tb_diag *d);
/* The outbound check reads and writes journal j: the loop's n->journal,
 * or the ingest thread's own handle (it reads only immutable parts of n
 * and the registry, under reg_lock). */
int tb_flows_outbound(struct tb_node *n, struct tb_journal *j, const struct tb_env *e,
                      struct tb_diag *d);
int tb_responder_load(struct tb_node *n, struct tb_diag *d);
void tb_responder_free(struct tb_responder *r);
/* Answers a request received for this node from the fixtures (after its
 * transaction is committed). */
void tb_responder_handle(struct tb_node *n, const struct tb_env *e);
/* A message of type with corr was delivered: the responder's case.result
 * follows its case.accept.  Call outside transactions. */
void tb_responder_delivered(struct tb_node *n, const char *type, const char *corr);
/* Queues / runs tb_responder_delivered for deliveries found inside a
 * transaction. */
void tb_responder_note(struct tb_node *n, const char *type, const char *corr);
void tb_responder_run_pending(struct tb_node *n);

#endif
