/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhook.h - pushes received messages to the city's own system: a
 * consumer of the inbound stage that POSTs what is in the inbox (the
 * journal is its queue) to a loopback URL.  Calls inbound.c (to register)
 * and the journal.  Loop only.
 */
#ifndef TB_WEBHOOK_H
#define TB_WEBHOOK_H

#include "node.h"
#include "../util/tb_err.h"

/* Refuses a webhook URL that is not http:// on loopback. */
TB_MUST_CHECK int tb_webhook_check(const char *url, struct tb_diag *d);
/* With the config key `webhook` set: connects (lazily) and registers with
 * the inbound stage, so that each committed exchange prompts a push of
 * what is new in the inbox. */
TB_MUST_CHECK int tb_webhook_start(struct tb_node *n, struct tb_diag *d);
void tb_webhook_stop(struct tb_node *n);

#endif
