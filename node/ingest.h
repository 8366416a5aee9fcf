/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ingest.h - POST /v1/messages off the event loop (api -> ingest ->
 * outbound): one thread parses, routes, seals and journals submissions
 * with tb_outbound_store, then hands them to the loop to send (answers
 * are settled on a thread of their own, answers.c).  Calls outbound.c,
 * apimsg.c, worker.c.  Loop only.
 */
#ifndef TB_INGEST_H
#define TB_INGEST_H

#include "node.h"
#include "../util/tb_err.h"

struct evhttp_request;
struct tb_worker;
struct tb_journal;

/* Starts the ingest thread with its own journal handle and key copy. */
TB_MUST_CHECK int tb_ingest_start(struct tb_node *n, struct tb_diag *d);
/* Queues a POST /v1/messages body (raw, taken over) for the thread; the
 * answer is sent on the loop once it is journalled or refused. */
void tb_ingest_submit(struct tb_node *n, struct evhttp_request *req, char *raw, size_t len);
/* Replaces the thread's message-signing key (takes key; the old one is
 * wiped once no job uses it): submissions sealed from now on use it. */
void tb_ingest_set_key(struct tb_node *n, struct tb_key *key);
/* Requests handed to the thread and not yet answered. */
size_t tb_ingest_pending(const struct tb_node *n);
/* Lets the thread finish the queued requests, joins it and frees it;
 * answers not yet sent are dropped (their messages stay journalled). */
void tb_ingest_stop(struct tb_node *n);

#endif
