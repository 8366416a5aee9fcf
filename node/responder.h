/* SPDX-License-Identifier: Apache-2.0 */
/*
 * responder.h - the reference responder (responder.c): answers requests
 * received for this node from a fixtures file.  Optional: it exists only
 * with the config key `responder`, and then registers, as a consumer, with
 * the inbound stage (new requests, and case.accept messages settled by
 * receipts that came back through a hub) and with the outbound stage
 * (delivered case.accept messages, whose case.result follows).  Nothing
 * calls it otherwise.  Loop only.
 */
#ifndef TB_RESPONDER_H
#define TB_RESPONDER_H

#include "node.h"
#include "../util/tb_err.h"

struct tb_responder;

/* Reads and checks the fixtures file named by n's config into *r (NULL
 * when the key is empty); borrows n, which must outlive *r. */
TB_MUST_CHECK int tb_responder_load(struct tb_node *n, struct tb_responder **r, struct tb_diag *d);
/* Registers r (NULL: nothing) with the inbound and outbound stages. */
void tb_responder_start(struct tb_responder *r);
void tb_responder_free(struct tb_responder *r);

#endif
