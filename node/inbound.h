/*
 * inbound.h - the CoAP resources: POST /fed/msg, GET /fed/status,
 * GET /fed/registry.
 */
#ifndef TB_INBOUND_H
#define TB_INBOUND_H

#include "node.h"

int tb_inbound_init(struct tb_node *n);
/* Notifies observers of /fed/registry. */
void tb_inbound_registry_changed(struct tb_node *n);

#endif
