/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flood.h - what an unauthenticated source may cost the DTLS endpoint
 * (issue 24 point 4).  Every datagram on the listening socket that is not
 * of a server session libcoap holds is looked at here before libcoap reads
 * it (transport.c's pump peeks at it): a ClientHello from a new port
 * starts a handshake, and one in the cookie exchange is answered, only
 * within its source's rate (TB_FLOOD_HELLO_RATE per address) and a new
 * handshake only within the half-open limits (TB_FLOOD_HALFOPEN_PER_SOURCE per
 * address, TB_FLOOD_HALFOPEN_MAX in all; at either limit the source's, or
 * everyone's, oldest half-open handshake is dropped to make room);
 * anything else is a refused datagram, dropped and counted.  A source
 * whose refused datagrams (ClientHellos included) exceed
 * TB_FLOOD_REFUSED_BURST beyond TB_FLOOD_REFUSED_RATE a second is blocked
 * for TB_FLOOD_BLOCK_S: a socket filter (BPF) drops its datagrams in the
 * kernel, uncounted, before they take room in the socket's buffer; an
 * address holding an established session (a member's, which a forged
 * flood may claim) is never blocked.  Each refusal is one rate-limited log line per source
 * and kind, with a count: at most one a minute.
 *
 * A "source" is an IPv4 address or an IPv6 /64.  Sessions are libcoap's
 * server sessions (SERVER_SESSION_NEW to SERVER_SESSION_DEL); a half-open
 * one is in the cookie exchange (type HELLO) or in its handshake.
 * Loop only.
 */
#ifndef TB_FLOOD_H
#define TB_FLOOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <coap3/coap.h>

#include "../util/tb_err.h"

#define TB_FLOOD_HALFOPEN_MAX 256      /* half-open handshakes, all sources */
#define TB_FLOOD_HALFOPEN_PER_SOURCE 64 /* half-open handshakes of one source (a
                                        * member opens up to peer_sessions,
                                        * at most 64, at once) */
#define TB_FLOOD_HELLO_RATE                                                                        \
	40                         /* ClientHellos a second, one source (a                         \
	                            * handshake sends two: before and                              \
	                            * with the cookie) */
#define TB_FLOOD_HELLO_BURST 80    /* ... of which at once */
#define TB_FLOOD_REFUSED_RATE 100  /* refused datagrams a second, one source */
#define TB_FLOOD_REFUSED_BURST 200 /* ... of which at once */
#define TB_FLOOD_BLOCK_S                                                                           \
	10                           /* a source past its refused burst:                           \
	                              * its datagrams dropped by the kernel */
#define TB_FLOOD_LOG_WINDOW_MS 60000 /* one line per source and kind */

struct tb_flood;

/* Counters since start (all sources). */
struct tb_flood_stats {
	uint64_t hello_refused;    /* ClientHellos over a rate or limit */
	uint64_t dgram_refused;    /* datagrams neither a ClientHello nor a session's */
	uint64_t halfopen_dropped; /* half-open handshakes cut to make room */
	uint64_t blocks;           /* sources blocked (TB_FLOOD_BLOCK_S) */
};

/* A new state, owned by the caller (tb_flood_free); NULL out of memory. */
struct tb_flood *tb_flood_new(void);
void tb_flood_free(struct tb_flood *f);

/* The listening socket, on which a kernel filter drops the datagrams of
 * the sources blocked (IPv4 only); not owned. */
void tb_flood_set_socket(struct tb_flood *f, int fd);

/* libcoap's server session s was created / freed (its event handler). */
void tb_flood_session_new(struct tb_flood *f, coap_session_t *s, int64_t now_ms);
void tb_flood_session_del(struct tb_flood *f, coap_session_t *s);

/* A datagram from sa whose first n bytes are head (n may be less than its
 * length) waits on the listening socket: true when libcoap may read it,
 * false when it is to be dropped (counted and told of here).  May cut a
 * half-open session (coap_session_disconnected): call outside libcoap's
 * callbacks. */
bool tb_flood_admit(struct tb_flood *f, const struct sockaddr *sa, socklen_t salen,
                    const uint8_t *head, size_t n, int64_t now_ms);

/* Writes the held-back counts whose minute ended (call every second), or
 * all of them when all (at exit). */
void tb_flood_flush(struct tb_flood *f, int64_t now_ms, bool all);

void tb_flood_stats(const struct tb_flood *f, struct tb_flood_stats *out);

#endif
