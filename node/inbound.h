/*
 * inbound.h - the CoAP resources: POST /fed/msg, GET /fed/status,
 * GET /fed/registry.
 */
#ifndef TB_INBOUND_H
#define TB_INBOUND_H

#include "node.h"

/* Adds the resources to the transport's context; observers of
 * /fed/registry are notified of each registry applied from then on. */
int tb_inbound_init(struct tb_node *n);

#endif
