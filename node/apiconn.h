/* SPDX-License-Identifier: Apache-2.0 */
/*
 * apiconn.h - the local API's connections, counted and bounded so that a
 * client without a token cannot exhaust the node (docs/ADMIN.md "The local
 * API's limits"):
 *   - the request line and headers of a request together are at most
 *     TB_APICONN_HEADERS_MAX bytes (evhttp answers a longer line or more
 *     header lines 400 as soon as that many bytes are buffered, and
 *     closes the connection);
 *   - a connection must deliver a whole request (line, headers, body)
 *     within timeout_s of being accepted or of its previous answer, and a
 *     reply that stalls (the client does not read) that long is dropped;
 *   - at most max_conns connections are held: a new one closes the one
 *     that has been idle (no request being answered) the longest, which
 *     is the new one itself when every other is being answered; accept
 *     yields to the loop after 64 connections in a row;
 *   - when accept fails for want of file descriptors (EMFILE, ENFILE),
 *     accept pauses for 100 ms instead of spinning, the cap drops to three
 *     quarters of the connections then open (at least 8) for ten minutes,
 *     and the oldest idle ones beyond it are closed, so accept resumes
 *     and the operator's next request is served;
 *   - what was closed is logged in one line with counts, at most once a
 *     minute, and counted in /metrics.
 * Loop only: every function runs on the event loop's thread.  One per
 * process (the accept error callback finds it in a static).
 */
#ifndef TB_APICONN_H
#define TB_APICONN_H

struct event_base;
struct evbuffer;
struct evhttp;
struct evhttp_request;
struct evconnlistener;
struct tb_apiconn;

/* request line plus headers, bytes */
#define TB_APICONN_HEADERS_MAX (16 * 1024)

/* Takes charge of the connections http accepts on lev (both borrowed;
 * http must be freed before tb_apiconn_free).  max_conns 0: half the
 * soft open-file limit (RLIMIT_NOFILE), at most 1024 and at least 8.
 * Sets http's header limit, timeout and connection callback, and lev's
 * error callback.  NULL on memory error. */
struct tb_apiconn *tb_apiconn_new(struct event_base *base, struct evhttp *http,
                                  struct evconnlistener *lev, int max_conns, int timeout_s);
/* The cap in force (after the auto value or the open-file limit). */
int tb_apiconn_cap(const struct tb_apiconn *c);
/* req (borrowed) is being answered: its connection is not idle until the
 * answer has been sent.  Call once per request, from the request
 * callback. */
void tb_apiconn_busy(struct tb_apiconn *c, struct evhttp_request *req);
/* Appends the tongban_api_connections* metric families to b (Prometheus
 * text, HELP and TYPE included). */
void tb_apiconn_metrics(const struct tb_apiconn *c, struct evbuffer *b);
/* Frees c (NULL: no-op); call after evhttp_free of its evhttp. */
void tb_apiconn_free(struct tb_apiconn *c);
#endif
