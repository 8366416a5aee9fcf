/*
 * regsync.h - registry distribution: observing the upstream hub.
 */
#ifndef TB_REGSYNC_H
#define TB_REGSYNC_H

#include "node.h"

int tb_regsync_start(struct tb_node *n);
/* True when recv was a registry notification (handled). */
bool tb_regsync_response(struct tb_node *n, coap_session_t *s, const coap_pdu_t *recv);
void tb_regsync_lost(struct tb_node *n, coap_session_t *s);

#endif
