/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inbound.h - the receiving stage (transport -> inbound -> journal): the
 * CoAP resources POST /fed/msg, GET /fed/status and GET /fed/registry.
 * Owns the checks of each received envelope (signature, carrier, policy,
 * flows), its journalling with the receipt in one transaction per
 * exchange, and a hub's relaying into the journal's queue.  It calls
 * transport.c (options), flows.c and the journal; whatever acts on what
 * arrived afterwards is a consumer registered at setup (struct
 * tb_inbound_consumer): the outbound stage, the webhook, the optional
 * reference responder.  Loop only.
 */
#ifndef TB_INBOUND_H
#define TB_INBOUND_H

#include "node.h"
#include "../util/tb_err.h"

struct tb_env;

/* What the inbound stage hands on, to whoever registered for it at
 * setup: the outbound stage (relays to send, receipts that came back
 * through a hub), the webhook, the reference responder.  Each function
 * may be NULL; all run on the loop, in the order registered. */
struct tb_inbound_consumer {
	/* inside an exchange's journal transaction (no journal work here): a
	 * receipt that came back through a hub settled message id, which this
	 * node had sent as type with corr ("" for none) */
	void (*returned)(void *ctx, const char *id, const char *type, const char *corr);
	/* the exchange's transaction is committed; relayed: a hub queued
	 * relays in the journal */
	void (*committed)(void *ctx, bool relayed);
	/* then, for each message new in the inbox (for this node's own
	 * systems), in the order received */
	void (*received)(void *ctx, const struct tb_env *e);
	void *ctx;
};
/* Registers c (copied); setup only, after tb_inbound_init (out of memory
 * aborts). */
void tb_inbound_add_consumer(struct tb_node *n, const struct tb_inbound_consumer *c);
/* Adds the resources to the transport's context; observers of
 * /fed/registry are notified of each registry applied from then on. */
TB_MUST_CHECK int tb_inbound_init(struct tb_node *n);
/* Frees the stage's state (the resources go with the transport's context). */
void tb_inbound_free(struct tb_node *n);

#endif
