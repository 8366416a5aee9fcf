/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/flood.c - an unauthenticated DTLS flood from one process, for
 * tests/node_flood.sh and the figures in docs/PERFORMANCE.md.
 *
 *   flood MODE --to HOST:PORT [--bind ADDR] [--rate N] [--duration S]
 *         [--ports N] [--size N]
 *
 * MODE garbage: random datagrams of --size bytes (default 100);
 *      hello:   one GnuTLS DTLS ClientHello, sent again and again;
 *      cookie:  a DTLS client per attempt (a new socket, so a new port)
 *               that sends its ClientHello, echoes the server's cookie
 *               (HelloVerifyRequest) and then goes silent, leaving the
 *               server with a half-open handshake (up to 64 attempts
 *               wait for their cookie at once).
 * garbage and hello send from --ports sockets (default 64) in turn.
 * --bind: the source address (default 127.0.0.2, so that a loopback
 * test's flood comes from a source other than its members').  --rate:
 * datagrams (cookie: attempts) a second, 0 as fast as one process can
 * (the default for garbage and hello; cookie defaults to 20).
 * --duration: seconds (default 10).  At the end one line on stdout:
 *   flood MODE: sent N in S s (R/s); cookies echoed E
 * Exit 0, or 2 on bad arguments and 1 when the target is not reachable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 1024

struct opts {
	const char *mode;
	struct sockaddr_in to, from;
	double rate, duration;
	int ports;
	size_t size;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
usage(const char *why)
{
	fprintf(stderr,
	        "flood: %s\nusage: flood garbage|hello|cookie --to HOST:PORT [--bind ADDR] "
	        "[--rate N] [--duration S] [--ports N] [--size N]\n",
	        why);
	return 2;
}

static int
parse_addr(const char *s, struct sockaddr_in *a, int need_port)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl = colon != NULL ? (size_t)(colon - s) : strlen(s);

	if (hl >= sizeof(host) || (need_port && colon == NULL))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -1;
	if (colon != NULL) {
		long p = strtol(colon + 1, NULL, 10);
		if (p <= 0 || p > 65535)
			return -1;
		a->sin_port = htons((uint16_t)p);
	}
	return 0;
}

/* A UDP socket bound to the source address (a new port), connected to
 * the target; -1 on failure. */
static int
new_socket(const struct opts *o)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (const struct sockaddr *)&o->from, sizeof(o->from)) != 0 ||
	    connect(fd, (const struct sockaddr *)&o->to, sizeof(o->to)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits until the i-th send is due at the rate (none: at once). */
static void
pace(const struct opts *o, double t0, unsigned long i)
{
	double due, d;

	if (o->rate <= 0)
		return;
	due = t0 + (double)i / o->rate;
	d = due - now_s();
	if (d > 0) {
		struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

/* The client reads one datagram when allowed (the HelloVerifyRequest),
 * never the server's next flight: a fast server's flight arriving while
 * the cookie goes out would otherwise be answered, and the handshake fail
 * at the server with a refused certificate instead of staying half-open. */
static int pull_allow;

static ssize_t
pull_once(gnutls_transport_ptr_t p, void *data, size_t len)
{
	if (!pull_allow) {
		errno = EAGAIN;
		return -1;
	}
	pull_allow = 0;
	return recv((int)(intptr_t)p, data, len, MSG_DONTWAIT);
}

static int
pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	(void)p;
	(void)ms;
	return pull_allow; /* data "ready" only when allowed */
}

/* A GnuTLS DTLS client on fd; NULL on failure. */
static gnutls_session_t
client(int fd, gnutls_certificate_credentials_t cred)
{
	gnutls_session_t s;

	if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK) < 0)
		return NULL;
	if (gnutls_set_default_priority(s) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
		gnutls_deinit(s);
		return NULL;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_transport_set_pull_function(s, pull_once);
	gnutls_transport_set_pull_timeout_function(s, pull_timeout);
	gnutls_dtls_set_mtu(s, 1200);
	return s;
}

/* Captures the first flight of a GnuTLS client (its ClientHello). */
static uint8_t hello[2048];
static size_t hello_len;

static ssize_t
capture(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	(void)p;
	if (hello_len == 0 && len <= sizeof(hello)) {
		memcpy(hello, data, len);
		hello_len = len;
	}
	return (ssize_t)len;
}

static ssize_t
no_data(gnutls_transport_ptr_t p, void *data, size_t len)
{
	(void)p;
	(void)data;
	(void)len;
	errno = EAGAIN;
	return -1;
}

static int
make_hello(gnutls_certificate_credentials_t cred)
{
	gnutls_session_t s = client(-1, cred);

	if (s == NULL)
		return -1;
	gnutls_transport_set_push_function(s, capture);
	gnutls_transport_set_pull_function(s, no_data);
	(void)gnutls_handshake(s); /* sends the ClientHello, then waits */
	gnutls_deinit(s);
	return hello_len > 0 ? 0 : -1;
}

/* Cookie exchanges under way: each on a new port, its ClientHello sent,
 * waiting for the HelloVerifyRequest; then the cookie is echoed and the
 * attempt goes silent.  Several at once, so that the rate is not bound by
 * the round trip. */
#define PENDING 64
static struct attempt {
	int fd;
	gnutls_session_t s;
	double t;
} pending[PENDING];
static int npending;

/* The sockets of echoed attempts stay open (silent, as a client that
 * went away without a word: a closed port would answer the server's
 * flight with an ICMP error); the oldest is closed past SILENT_MAX. */
#define SILENT_MAX 4000
static int silent[SILENT_MAX], nsilent, silent_max = 64;

static void
keep_silent(int fd)
{
	if (nsilent == silent_max) {
		close(silent[0]);
		memmove(silent, silent + 1, (size_t)(nsilent - 1) * sizeof(*silent));
		nsilent--;
	}
	silent[nsilent++] = fd;
}

static void
attempt_end(int i, bool echoed)
{
	gnutls_deinit(pending[i].s); /* no alert is sent: silent */
	if (echoed)
		keep_silent(pending[i].fd);
	else
		close(pending[i].fd);
	pending[i] = pending[--npending];
}

/* Starts one (dropped when PENDING are under way): 0, or -1. */
static int
cookie_start(const struct opts *o, gnutls_certificate_credentials_t cred)
{
	int fd;
	gnutls_session_t s;

	if (npending == PENDING)
		attempt_end(0, false); /* the oldest got no answer */
	if ((fd = new_socket(o)) < 0)
		return -1;
	if ((s = client(fd, cred)) == NULL) {
		close(fd);
		return -1;
	}
	(void)gnutls_handshake(s); /* ClientHello */
	pending[npending++] = (struct attempt){fd, s, now_s()};
	return 0;
}

/* Waits up to ms for HelloVerifyRequests; echoes each cookie and ends
 * that attempt.  The number of cookies echoed. */
static unsigned long
cookie_poll(int ms)
{
	struct pollfd p[PENDING];
	unsigned long echoed = 0;

	for (int i = 0; i < npending; i++)
		p[i] = (struct pollfd){.fd = pending[i].fd, .events = POLLIN};
	if (poll(p, (nfds_t)npending, ms) <= 0)
		return 0;
	for (int i = npending - 1; i >= 0; i--) {
		int r;
		if (!(p[i].revents & (POLLIN | POLLERR)))
			continue;
		/* reads the HelloVerifyRequest, sends the ClientHello with the
		 * cookie, and waits for the server's flight: not read */
		pull_allow = 1;
		r = gnutls_handshake(pending[i].s);
		pull_allow = 0;
		r = r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED;
		echoed += (unsigned long)r;
		attempt_end(i, r);
	}
	return echoed;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	const char *to = NULL, *bind_to = "127.0.0.2";

	if (argc < 2)
		return usage("a mode is needed");
	o->mode = argv[1];
	o->rate = strcmp(o->mode, "cookie") == 0 ? 20 : 0;
	o->duration = 10;
	o->ports = 64;
	o->size = 100;
	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return usage("an option needs a value");
		if (strcmp(argv[i], "--to") == 0)
			to = v;
		else if (strcmp(argv[i], "--bind") == 0)
			bind_to = v;
		else if (strcmp(argv[i], "--rate") == 0)
			o->rate = atof(v);
		else if (strcmp(argv[i], "--duration") == 0)
			o->duration = atof(v);
		else if (strcmp(argv[i], "--ports") == 0)
			o->ports = atoi(v);
		else if (strcmp(argv[i], "--size") == 0)
			o->size = (size_t)atol(v);
		else
			return usage("unknown option");
		i++;
	}
	if (strcmp(o->mode, "garbage") != 0 && strcmp(o->mode, "hello") != 0 &&
	    strcmp(o->mode, "cookie") != 0)
		return usage("mode is garbage, hello or cookie");
	if (to == NULL || parse_addr(to, &o->to, 1) != 0)
		return usage("--to HOST:PORT (IPv4) is needed");
	if (parse_addr(bind_to, &o->from, 0) != 0)
		return usage("--bind: an IPv4 address");
	if (o->ports < 1 || o->ports > MAX_PORTS || o->size < 1 || o->size > 65000 ||
	    o->duration <= 0 || o->rate < 0)
		return usage("--ports 1..1024, --size 1..65000, --duration > 0, --rate >= 0");
	return 0;
}

int
main(int argc, char **argv)
{
	static int fds[MAX_PORTS];
	static uint8_t buf[65000];
	struct opts o;
	gnutls_certificate_credentials_t cred;
	unsigned long sent = 0, echoed = 0;
	double t0, t;
	int rc = parse(argc, argv, &o);

	if (rc != 0)
		return rc;
	if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&cred) < 0)
		return 1;
	{
		/* as many silent sockets as the descriptors allow */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
			(void)getrlimit(RLIMIT_NOFILE, &rl);
			silent_max = rl.rlim_cur > SILENT_MAX + PENDING + 64 ? SILENT_MAX
			             : rl.rlim_cur > PENDING + 128 ? (int)rl.rlim_cur - PENDING - 64
			                                           : 64;
		}
	}
	if (strcmp(o.mode, "cookie") != 0) {
		for (int i = 0; i < o.ports; i++)
			if ((fds[i] = new_socket(&o)) < 0) {
				perror("flood: socket");
				return 1;
			}
		if (strcmp(o.mode, "hello") == 0) {
			if (make_hello(cred) != 0) {
				fprintf(stderr, "flood: no ClientHello from GnuTLS\n");
				return 1;
			}
			memcpy(buf, hello, hello_len);
			o.size = hello_len;
		}
	}
	t0 = now_s();
	while ((t = now_s()) - t0 < o.duration) {
		if (strcmp(o.mode, "cookie") == 0) {
			/* answers until the next start is due */
			double due = o.rate > 0 ? t0 + (double)sent / o.rate : t;
			int ms = due > t ? (int)((due - t) * 1000) : 0;
			echoed += cookie_poll(ms);
			if (now_s() < due)
				continue;
			if (cookie_start(&o, cred) != 0) {
				perror("flood: socket");
				return 1;
			}
		} else {
			pace(&o, t0, sent);
			if (strcmp(o.mode, "garbage") == 0)
				for (size_t j = 0; j < o.size; j++)
					buf[j] = (uint8_t)rand();
			/* refused (ICMP) or full: counted as sent all the same */
			(void)!send(fds[sent % (unsigned long)o.ports], buf, o.size, MSG_DONTWAIT);
		}
		sent++;
	}
	while (npending > 0 && now_s() - t0 < o.duration + 1) /* the last answers */
		echoed += cookie_poll(100);
	while (npending > 0)
		attempt_end(0, false);
	t = now_s() - t0;
	printf("flood %s: sent %lu in %.1f s (%.0f/s); cookies echoed %lu\n", o.mode, sent, t,
	       (double)sent / t, echoed);
	gnutls_certificate_free_credentials(cred);
	gnutls_global_deinit();
	return 0;
}
