/* SPDX-License-Identifier: Apache-2.0 */
/*
 * regsync.h - registry distribution: observes (RFC 7641) the upstream
 * hub's /fed/registry over the transport, as one of its clients, and
 * applies a newer valid registry (node.c), which inbound.c then notifies
 * to this node's own observers.  Loop only.
 */
#ifndef TB_REGSYNC_H
#define TB_REGSYNC_H

#include "node.h"
#include "../util/tb_err.h"

/* With registry_upstream set: registers with the transport for the
 * notifications and lost sessions, and starts observing. */
TB_MUST_CHECK int tb_regsync_start(struct tb_node *n);
/* Stops observing (the session goes with the transport). */
void tb_regsync_stop(struct tb_node *n);

#endif
