/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api.h - the top of the sending stage: the local HTTP/JSON API for the
 * city's own systems (evhttp on loopback, bearer token).  Submissions go
 * to ingest.c, replies to an inbox message to tb_outbound_submit; the
 * inbox, status and metrics are read from the journal and the counters.
 * Loop only.
 */
#ifndef TB_API_H
#define TB_API_H

#include "node.h"
#include "../util/tb_err.h"

TB_MUST_CHECK int tb_api_start(struct tb_node *n, struct tb_diag *d);
void tb_api_stop(struct tb_node *n);
#endif
