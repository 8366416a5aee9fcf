/* SPDX-License-Identifier: Apache-2.0 */
/* flood.c - per-source limits on the DTLS endpoint (flood.h). */
#include "flood.h"

#include <errno.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* An address: family, 16 bytes (IPv4 in the first 4), port. */
struct key {
	uint8_t fam; /* 4 or 6; 0: none */
	uint8_t a[16];
};

#define SESS_BUCKETS 4096 /* hash of the server sessions by address and port */
#define SRC_SLOTS 1024    /* sources remembered */
#define SRC_PROBE 8       /* slots a source may sit in; the least recent is reused */

struct sess {
	coap_session_t *s; /* NULL: a free entry */
	struct key k;
	uint16_t port;
	bool dropped; /* cut here, not yet freed by libcoap */
	int64_t since_ms;
	int next; /* hash chain, or free list; -1 ends */
};

enum { R_HELLO, R_DGRAM, R_HALFOPEN, R_BLOCK, R_N };

struct src {
	struct key k;
	int64_t last_ms; /* 0: a free slot */
	int64_t tok_ms;  /* when the buckets were last filled */
	double hello_tok, refused_tok;
	int64_t blocked_until; /* its datagrams dropped by the kernel (0: not) */
	struct tb_report r[R_N];
};

struct tb_flood {
	struct sess *sess;
	int nsess, free_sess; /* entries allocated; head of the free list */
	int bucket[SESS_BUCKETS];
	struct src src[SRC_SLOTS];
	struct tb_report cap; /* the cap of all sources hit */
	int64_t flush_ms;
	int fd; /* the listening socket, for the kernel filter (-1: none) */
	struct tb_flood_stats st;
};

static bool
addr_key(const struct sockaddr *sa, struct key *k, uint16_t *port)
{
	memset(k, 0, sizeof(*k));
	*port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
		k->fam = 4;
		memcpy(k->a, &v4->sin_addr, 4);
		*port = v4->sin_port;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
		k->fam = 6;
		memcpy(k->a, &v6->sin6_addr, 16);
		*port = v6->sin6_port;
		return true;
	}
	return false;
}

/* The source of an address: itself, or its /64. */
static struct key
src_of(const struct key *k)
{
	struct key s = *k;

	if (s.fam == 6)
		memset(s.a + 8, 0, 8);
	return s;
}

static uint32_t
hash(const struct key *k, uint16_t port)
{
	uint32_t h = 2166136261u ^ k->fam;

	for (size_t i = 0; i < sizeof(k->a); i++)
		h = (h ^ k->a[i]) * 16777619u;
	h = (h ^ (port & 0xff)) * 16777619u;
	return (h ^ (port >> 8)) * 16777619u;
}

static bool
key_eq(const struct key *a, const struct key *b)
{
	return a->fam == b->fam && memcmp(a->a, b->a, sizeof(a->a)) == 0;
}

struct tb_flood *
tb_flood_new(void)
{
	struct tb_flood *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	for (int i = 0; i < SESS_BUCKETS; i++)
		f->bucket[i] = -1;
	f->free_sess = -1;
	f->fd = -1;
	return f;
}

void
tb_flood_free(struct tb_flood *f)
{
	if (f == NULL)
		return;
	free(f->sess);
	free(f);
}

static void
src_text(const struct key *k, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (k->fam == 4) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
		v4->sin_family = AF_INET;
		memcpy(&v4->sin_addr, k->a, 4);
		sl = sizeof(*v4);
	} else {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
		v6->sin6_family = AF_INET6;
		memcpy(&v6->sin6_addr, k->a, 16);
		sl = sizeof(*v6);
	}
	if (getnameinfo((struct sockaddr *)&ss, sl, out, len, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, len, "?");
	else if (k->fam == 6)
		snprintf(out + strlen(out), len - strlen(out), "/64");
}

/* The line of kind r of source s: count events in the last span_s s. */
static void
src_line(const struct src *s, int r, uint64_t count, int64_t span_s)
{
	static const char
	    *const
	        what
	            [R_N] =
	                {
	                    "new DTLS handshake(s) refused (over " STR(
	                        TB_FLOOD_HELLO_RATE) "/s, or over the half-open limits, or the "
	                                             "source sends refused datagrams)",
	                    "datagram(s) refused (neither a ClientHello nor of a DTLS session)",
	                    "half-open DTLS handshake(s) dropped, oldest first (more than " STR(
	                        TB_FLOOD_HALFOPEN_PER_SOURCE) " from one source, or the cap "
	                                                      "of " STR(TB_FLOOD_HALFOPEN_MAX) " re"
	                                                                                       "ach"
	                                                                                       "ed"
	                                                                                       ")",
	                    "time(s) over " STR(
	                        TB_FLOOD_REFUSED_RATE) " refused datagrams a second: all its "
	                                               "datagrams dropped by the kernel for " STR(
	                                                   TB_FLOOD_BLOCK_S) " s, uncounted"};
	char host[NI_MAXHOST + 4];

	src_text(&s->k, host, sizeof(host));
	if (span_s == 0)
		log_warnx("flood: from %s: %llu %s; counted for a minute", host,
		          (unsigned long long)count, what[r]);
	else
		log_warnx("flood: from %s: %llu %s in the last %lld s", host,
		          (unsigned long long)count, what[r], (long long)span_s);
}

static void
src_event(struct src *s, int r, int64_t now_ms)
{
	uint64_t count;
	int64_t span;

	if (tb_report_event(&s->r[r], now_ms, TB_FLOOD_LOG_WINDOW_MS, &count, &span))
		src_line(s, r, count, span);
}

/* The slot of source k, made if new (the least recent of its probe
 * window is reused: its held-back counts are lost). */
static struct src *
src_get(struct tb_flood *f, const struct key *k, int64_t now_ms)
{
	uint32_t h = hash(k, 0) % SRC_SLOTS;
	struct src *lru = NULL;

	for (int i = 0; i < SRC_PROBE; i++) {
		struct src *s = &f->src[(h + (uint32_t)i) % SRC_SLOTS];
		if (s->last_ms != 0 && key_eq(&s->k, k)) {
			s->last_ms = now_ms;
			return s;
		}
		if (lru == NULL || s->last_ms < lru->last_ms)
			lru = s;
	}
	memset(lru, 0, sizeof(*lru));
	lru->k = *k;
	lru->last_ms = lru->tok_ms = now_ms;
	lru->hello_tok = TB_FLOOD_HELLO_BURST;
	lru->refused_tok = TB_FLOOD_REFUSED_BURST;
	return lru;
}

static void
src_fill(struct src *s, int64_t now_ms)
{
	double dt = (double)(now_ms - s->tok_ms) / 1000.0;

	if (dt <= 0)
		return;
	s->tok_ms = now_ms;
	s->hello_tok += dt * TB_FLOOD_HELLO_RATE;
	if (s->hello_tok > TB_FLOOD_HELLO_BURST)
		s->hello_tok = TB_FLOOD_HELLO_BURST;
	s->refused_tok += dt * TB_FLOOD_REFUSED_RATE;
	if (s->refused_tok > TB_FLOOD_REFUSED_BURST)
		s->refused_tok = TB_FLOOD_REFUSED_BURST;
}

static int
sess_find(const struct tb_flood *f, const struct key *k, uint16_t port)
{
	for (int i = f->bucket[hash(k, port) % SESS_BUCKETS]; i >= 0; i = f->sess[i].next)
		if (f->sess[i].port == port && key_eq(&f->sess[i].k, k))
			return i;
	return -1;
}

void
tb_flood_session_new(struct tb_flood *f, coap_session_t *s, int64_t now_ms)
{
	const coap_address_t *a = coap_session_get_addr_remote(s);
	struct key k;
	uint16_t port;
	int i;
	uint32_t h;

	if (f == NULL || a == NULL || !addr_key(&a->addr.sa, &k, &port))
		return;
	if (f->free_sess < 0) {
		int n = f->nsess > 0 ? 2 * f->nsess : 256;
		struct sess *v = realloc(f->sess, (size_t)n * sizeof(*v));
		if (v == NULL)
			return; /* untracked: its later datagrams are refused */
		f->sess = v;
		for (int j = n - 1; j >= f->nsess; j--) {
			v[j].s = NULL;
			v[j].next = f->free_sess;
			f->free_sess = j;
		}
		f->nsess = n;
	}
	i = f->free_sess;
	f->free_sess = f->sess[i].next;
	h = hash(&k, port) % SESS_BUCKETS;
	f->sess[i] =
	    (struct sess){.s = s, .k = k, .port = port, .since_ms = now_ms, .next = f->bucket[h]};
	f->bucket[h] = i;
}

void
tb_flood_session_del(struct tb_flood *f, coap_session_t *s)
{
	const coap_address_t *a = coap_session_get_addr_remote(s);
	struct key k;
	uint16_t port;
	int *pi;

	if (f == NULL || a == NULL || !addr_key(&a->addr.sa, &k, &port))
		return;
	for (pi = &f->bucket[hash(&k, port) % SESS_BUCKETS]; *pi >= 0; pi = &f->sess[*pi].next)
		if (f->sess[*pi].s == s) {
			int i = *pi;
			*pi = f->sess[i].next;
			f->sess[i].s = NULL;
			f->sess[i].next = f->free_sess;
			f->free_sess = i;
			return;
		}
}

static bool
half_open(const struct sess *e)
{
	coap_session_state_t st;

	if (e->s == NULL || e->dropped)
		return false;
	if (coap_session_get_type(e->s) == COAP_SESSION_TYPE_HELLO)
		return true;
	st = coap_session_get_state(e->s);
	return st == COAP_SESSION_STATE_HANDSHAKE || st == COAP_SESSION_STATE_CONNECTING;
}

/* Half-open sessions of source src (all when src is NULL): how many, and
 * the oldest that can be cut (a handshake past the cookie exchange:
 * libcoap frees it at its next round; one in the cookie exchange it
 * keeps for 30 s whatever is done).  -1 when none. */
static int
count_open(const struct tb_flood *f, const struct key *src, int *oldest)
{
	int n = 0;

	*oldest = -1;
	for (int i = 0; i < f->nsess; i++) {
		const struct sess *e = &f->sess[i];
		struct key ks;
		if (!half_open(e))
			continue;
		ks = src_of(&e->k);
		if (src != NULL && !key_eq(&ks, src))
			continue;
		n++;
		if (coap_session_get_type(e->s) == COAP_SESSION_TYPE_SERVER &&
		    (*oldest < 0 || e->since_ms < f->sess[*oldest].since_ms))
			*oldest = i;
	}
	return n;
}

static const char cut_mark[] = "";

static void
cut(struct tb_flood *f, int i, int64_t now_ms)
{
	struct key ks = src_of(&f->sess[i].k);

	f->sess[i].dropped = true;
	f->st.halfopen_dropped++;
	src_event(src_get(f, &ks, now_ms), R_HALFOPEN, now_ms);
	/* not a refusal of its certificate: transport.c's event handler
	 * counts and logs a handshake failed only for a session without
	 * app data */
	coap_session_set_app_data(f->sess[i].s, (void *)cut_mark);
	/* its state becomes NONE: libcoap frees it in its next round */
	coap_session_disconnected(f->sess[i].s, COAP_NACK_TLS_FAILED);
}

static bool member_source(const struct tb_flood *f, const struct key *k);

/* A ClientHello from a new port of source s: may it start a handshake? */
static bool
admit_hello(struct tb_flood *f, struct src *s, int64_t now_ms)
{
	int oldest, n;
	uint64_t count;
	int64_t span;

	if (s->refused_tok < 0 || s->hello_tok < 1)
		return false;
	/* a member's address (it holds an established session) is not held
	 * to the per-source limit: a member reconnecting after a crash, on a
	 * slow link or machine, opens many sessions at once (peer_sessions),
	 * whose cookie exchanges libcoap keeps for 30 s; the cap of all
	 * sources still holds */
	if (count_open(f, &s->k, &oldest) >= TB_FLOOD_HALFOPEN_PER_SOURCE &&
	    !member_source(f, &s->k)) {
		if (oldest < 0)
			return false;
		cut(f, oldest, now_ms);
	}
	if ((n = count_open(f, NULL, &oldest)) >= TB_FLOOD_HALFOPEN_MAX) {
		if (tb_report_event(&f->cap, now_ms, TB_FLOOD_LOG_WINDOW_MS, &count, &span))
			log_warnx("flood: %d half-open DTLS handshakes, the cap: the oldest is "
			          "dropped for a new one (%llu time(s)%s)",
			          n, (unsigned long long)count,
			          span > 0 ? " in the last minute" : "");
		if (oldest < 0)
			return false;
		cut(f, oldest, now_ms);
	}
	s->hello_tok -= 1;
	return true;
}

/* The kernel's filter on the listening socket: the datagrams of the
 * blocked IPv4 sources are dropped before they are queued, so that a
 * flood no longer fills the socket's buffer, where members' datagrams
 * wait (the filter sees the UDP datagram; the IP header is at
 * SKF_NET_OFF).  IPv6 sources are screened by tb_flood_admit only. */
#define BLOCK_MAX 64
static void
filter(struct tb_flood *f, int64_t now_ms)
{
	struct sock_filter prog[4 + BLOCK_MAX + 2];
	struct sock_fprog fp;
	uint32_t ip[BLOCK_MAX];
	int n = 0, k = 0;

	if (f->fd < 0)
		return;
	for (int i = 0; i < SRC_SLOTS && n < BLOCK_MAX; i++)
		if (f->src[i].blocked_until > now_ms && f->src[i].k.fam == 4)
			ip[n++] = (uint32_t)f->src[i].k.a[0] << 24 |
			          (uint32_t)f->src[i].k.a[1] << 16 |
			          (uint32_t)f->src[i].k.a[2] << 8 | f->src[i].k.a[3];
	if (n == 0) {
		int zero = 0;
		(void)!setsockopt(f->fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero));
		return;
	}
	/* IPv4?  Its source among the blocked: dropped (0 bytes kept) */
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF);
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4);
	prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, (uint8_t)(n + 1));
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12);
	for (int j = 0; j < n; j++)
		prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ip[j],
		                                         (uint8_t)(n - j), 0);
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	fp.len = (unsigned short)k;
	fp.filter = prog;
	if (setsockopt(f->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0)
		log_warnx("flood: the kernel filter of the DTLS socket was refused: %s",
		          strerror(errno));
}

/* True when source k holds an established session (a member's address:
 * not blocked, whatever arrives "from" it, as a forged source could). */
static bool
member_source(const struct tb_flood *f, const struct key *k)
{
	for (int i = 0; i < f->nsess; i++) {
		const struct sess *e = &f->sess[i];
		struct key ks;
		if (e->s == NULL || e->dropped)
			continue;
		ks = src_of(&e->k);
		if (key_eq(&ks, k) &&
		    coap_session_get_state(e->s) == COAP_SESSION_STATE_ESTABLISHED)
			return true;
	}
	return false;
}

/* A datagram of source s refused: past its burst, the source's datagrams
 * are dropped by the kernel for TB_FLOOD_BLOCK_S. */
static void
refuse(struct tb_flood *f, struct src *s, int64_t now_ms)
{
	if (s->refused_tok > -1)
		s->refused_tok -= 1;
	if (s->refused_tok >= 0 || s->blocked_until != 0 || f->fd < 0 || s->k.fam != 4 ||
	    member_source(f, &s->k))
		return;
	s->blocked_until = now_ms + TB_FLOOD_BLOCK_S * 1000;
	f->st.blocks++;
	src_event(s, R_BLOCK, now_ms);
	filter(f, now_ms);
}

void
tb_flood_set_socket(struct tb_flood *f, int fd)
{
	if (f != NULL)
		f->fd = fd;
}

bool
tb_flood_admit(struct tb_flood *f, const struct sockaddr *sa, socklen_t salen, const uint8_t *head,
               size_t n, int64_t now_ms)
{
	struct key k, ks;
	uint16_t port;
	struct src *s;

	/* DTLS record: content type 22 (handshake), handshake type 1 at 13 */
	bool hello = n >= 14 && head[0] == 22 && head[13] == 1;
	int i;

	(void)salen;
	if (f == NULL || !addr_key(sa, &k, &port))
		return true;
	/* a session's is libcoap's and GnuTLS's to judge, but for the
	 * ClientHellos of one in its cookie exchange: each costs a cookie
	 * and an answer, so they count against the rate of new handshakes */
	if ((i = sess_find(f, &k, port)) >= 0 &&
	    (!hello || coap_session_get_type(f->sess[i].s) != COAP_SESSION_TYPE_HELLO))
		return true;
	ks = src_of(&k);
	s = src_get(f, &ks, now_ms);
	src_fill(s, now_ms);
	if (hello) {
		if (i >= 0 && s->hello_tok >= 1) {
			s->hello_tok -= 1;
			return true;
		}
		if (i < 0 && admit_hello(f, s, now_ms))
			return true;
		f->st.hello_refused++;
		src_event(s, R_HELLO, now_ms);
		refuse(f, s, now_ms);
		return false;
	}
	/* libcoap drops it too (a late alert, a retransmission to a session
	 * gone, garbage): counted, and a source sending many is blocked */
	f->st.dgram_refused++;
	src_event(s, R_DGRAM, now_ms);
	refuse(f, s, now_ms);
	return false;
}

void
tb_flood_flush(struct tb_flood *f, int64_t now_ms, bool all)
{
	int64_t window = all ? 0 : TB_FLOOD_LOG_WINDOW_MS;
	bool unblocked = false;
	uint64_t count;
	int64_t span;

	if (f == NULL || (!all && now_ms - f->flush_ms < 1000))
		return;
	f->flush_ms = now_ms;
	for (int i = 0; i < SRC_SLOTS; i++) {
		struct src *s = &f->src[i];
		if (s->last_ms == 0)
			continue;
		if (s->blocked_until != 0 && s->blocked_until <= now_ms) {
			/* let in again, with no burst: a flood still running is
			 * blocked again after a second's worth */
			s->blocked_until = 0;
			s->refused_tok = 0;
			s->tok_ms = now_ms;
			unblocked = true;
		}
		for (int r = 0; r < R_N; r++)
			if (tb_report_flush(&s->r[r], now_ms, window, &count, &span))
				src_line(s, r, count, span);
	}
	if (unblocked)
		filter(f, now_ms);
	if (tb_report_flush(&f->cap, now_ms, window, &count, &span))
		log_warnx("flood: the cap of %d half-open DTLS handshakes was reached %llu time(s) "
		          "in the last %lld s",
		          TB_FLOOD_HALFOPEN_MAX, (unsigned long long)count, (long long)span);
}

void
tb_flood_stats(const struct tb_flood *f, struct tb_flood_stats *out)
{
	if (f == NULL)
		memset(out, 0, sizeof(*out));
	else
		*out = f->st;
}
