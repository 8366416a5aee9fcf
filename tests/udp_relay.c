/* SPDX-License-Identifier: Apache-2.0 */
/*
 * udp_relay.c - a hostile network between two nodes, in user space: a UDP
 * relay that forwards datagrams from its clients to one target and the
 * answers back, dropping, delaying with jitter, reordering and duplicating
 * them at set rates in each direction, and partitioning and healing the
 * link on a schedule (tc netem is not available on every kernel here).
 *
 * Usage: udp_relay --listen HOST:PORT --target HOST:PORT [--scenario FILE]
 *                  [--seed N] [--port-file FILE] [--stats-file FILE]
 *                  [--max-seconds S]
 *
 * Each client address gets its own upstream socket towards the target, so
 * a DTLS session through the relay looks to the target like one peer.
 * "a2b" is client -> target, "b2a" target -> client.  PORT 0 lets the
 * kernel choose; the port is written to --port-file.  --stats-file gets
 * the counts as JSON at exit (SIGTERM, SIGINT, --max-seconds) and on
 * SIGUSR1.
 *
 * Scenario: one step per line, "#" starts a comment:
 *   SECONDS SETTING...
 * a step applies at SECONDS after start (a decimal number); a SETTING is
 *   [a2b.|b2a.]loss=PERCENT     datagrams dropped (0..100, decimals allowed)
 *   [a2b.|b2a.]delay=MS         added latency
 *   [a2b.|b2a.]jitter=MS        +-MS uniform around delay (never below 0)
 *   [a2b.|b2a.]dup=PERCENT      datagrams sent twice (each copy its own delay)
 *   [a2b.|b2a.]reorder=PERCENT  datagrams held back a further 2*jitter+10 ms
 *   [a2b.|b2a.]inorder=0|1      1: jitter keeps each client's datagrams in
 *                               their order (a queue's jitter); 0 (the
 *                               default): each datagram's own delay, so
 *                               datagrams sent within 2*jitter of each
 *                               other often arrive reversed
 *   partition                   everything dropped both ways until "heal"
 *   heal                        the link passes datagrams again
 * without a prefix a setting applies to both directions; unset settings
 * keep their value (all 0 at start).  Example:
 *   0  loss=25 delay=200 jitter=150
 *   60 partition
 *   120 heal
 *
 * Bounds: at most 256 clients, 200,000 datagrams (64 MiB) in flight;
 * beyond that a datagram is dropped and counted as "overflow".
 * Exit status: 0 ended by a signal or --max-seconds, 2 usage or scenario
 * error (one line on stderr), 3 a socket could not be set up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define MAX_QUEUED 200000
#define MAX_BYTES (64u << 20)
#define MAX_STEPS 256
#define DGRAM_MAX 65536

enum { A2B = 0, B2A = 1 };

struct impair {
	double loss, dup, reorder; /* percent */
	double delay, jitter;      /* ms */
	double inorder;            /* 1: jitter keeps a client's datagrams in order */
};

struct step {
	double at; /* s since start */
	struct impair set[2];
	unsigned mask[2];  /* which fields of set[] the step changes */
	int partition;     /* 1 partition, -1 heal, 0 unchanged */
};

enum { F_LOSS = 1, F_DELAY = 2, F_JITTER = 4, F_DUP = 8, F_REORDER = 16, F_INORDER = 32 };

struct pkt {
	int64_t due_us;
	uint64_t seq; /* equal due times leave in arrival order */
	int dir, client;
	size_t len;
	uint8_t *data;
};

struct client {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int up;              /* socket connected to the target */
	int64_t last_due[2]; /* due time of its last datagram each way (inorder) */
};

struct counts {
	uint64_t in, out, dropped, dup, overflow;
};

static struct {
	int lsock;
	struct sockaddr_storage target;
	socklen_t targetlen;
	struct client clients[MAX_CLIENTS];
	int nclients;
	struct pkt *heap;
	size_t nheap, bytes;
	uint64_t seq;
	struct impair cur[2];
	bool partitioned;
	struct step steps[MAX_STEPS];
	int nsteps, next_step;
	struct counts c[2];
	uint64_t rnd;
	const char *stats_file;
	int64_t t0_us;
} R;

static volatile sig_atomic_t stop_flag, stats_flag;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		stats_flag = 1;
	else
		stop_flag = 1;
}

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xorshift64*: reproducible with --seed */
static double
uniform(void)
{
	R.rnd ^= R.rnd >> 12;
	R.rnd ^= R.rnd << 25;
	R.rnd ^= R.rnd >> 27;
	return (double)((R.rnd * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int
usage_error(const char *what, const char *detail)
{
	fprintf(stderr, "udp_relay: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	return 2;
}

/* HOST:PORT (the last ':' splits; [v6]:port too) into a socket address. */
static int
parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *outlen)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints, *res = NULL;
	size_t hl;

	if (colon == NULL || colon == s || (hl = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
		return -1;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*outlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* One "[dir.]key=value" into step s; -1 when malformed. */
static int
parse_setting(struct step *s, const char *tok)
{
	static const struct {
		const char *name;
		unsigned flag;
		size_t off;
		double max;
	} keys[] = {
	    {"loss", F_LOSS, offsetof(struct impair, loss), 100},
	    {"delay", F_DELAY, offsetof(struct impair, delay), 600000},
	    {"jitter", F_JITTER, offsetof(struct impair, jitter), 600000},
	    {"dup", F_DUP, offsetof(struct impair, dup), 100},
	    {"reorder", F_REORDER, offsetof(struct impair, reorder), 100},
	    {"inorder", F_INORDER, offsetof(struct impair, inorder), 1},
	};
	int lo = A2B, hi = B2A;
	const char *eq = strchr(tok, '=');
	char *end;
	double v;

	if (strcmp(tok, "partition") == 0 || strcmp(tok, "heal") == 0) {
		s->partition = tok[0] == 'p' ? 1 : -1;
		return 0;
	}
	if (strncmp(tok, "a2b.", 4) == 0 || strncmp(tok, "b2a.", 4) == 0) {
		lo = hi = tok[0] == 'a' ? A2B : B2A;
		tok += 4;
	}
	if (eq == NULL)
		return -1;
	v = strtod(eq + 1, &end);
	if (end == eq + 1 || *end != '\0' || v < 0)
		return -1;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if (strlen(keys[k].name) != (size_t)(eq - tok) ||
		    strncmp(tok, keys[k].name, (size_t)(eq - tok)) != 0)
			continue;
		if (v > keys[k].max)
			return -1;
		for (int d = lo; d <= hi; d++) {
			*(double *)((char *)&s->set[d] + keys[k].off) = v;
			s->mask[d] |= keys[k].flag;
		}
		return 0;
	}
	return -1;
}

static int
load_scenario(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;

	if (f == NULL) {
		fprintf(stderr, "udp_relay: %s: %s\n", path, strerror(errno));
		return 2;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#'), *tok, *save = NULL, *end;
		struct step *s;

		lineno++;
		if (hash != NULL)
			*hash = '\0';
		if ((tok = strtok_r(line, " \t\r\n", &save)) == NULL)
			continue;
		if (R.nsteps == MAX_STEPS) {
			fclose(f);
			return usage_error("scenario", "more than 256 steps");
		}
		s = &R.steps[R.nsteps];
		memset(s, 0, sizeof(*s));
		s->at = strtod(tok, &end);
		if (*end != '\0' || s->at < 0 || (R.nsteps > 0 && s->at < R.steps[R.nsteps - 1].at)) {
			fprintf(stderr, "udp_relay: %s:%d: a step starts with its time, not before "
			                "the previous step's\n", path, lineno);
			fclose(f);
			return 2;
		}
		while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL)
			if (parse_setting(s, tok) != 0) {
				fprintf(stderr, "udp_relay: %s:%d: bad setting '%s'\n", path, lineno,
				        tok);
				fclose(f);
				return 2;
			}
		R.nsteps++;
	}
	fclose(f);
	return 0;
}

static void
apply_step(const struct step *s)
{
	for (int d = A2B; d <= B2A; d++) {
		if (s->mask[d] & F_LOSS)
			R.cur[d].loss = s->set[d].loss;
		if (s->mask[d] & F_DELAY)
			R.cur[d].delay = s->set[d].delay;
		if (s->mask[d] & F_JITTER)
			R.cur[d].jitter = s->set[d].jitter;
		if (s->mask[d] & F_DUP)
			R.cur[d].dup = s->set[d].dup;
		if (s->mask[d] & F_REORDER)
			R.cur[d].reorder = s->set[d].reorder;
		if (s->mask[d] & F_INORDER)
			R.cur[d].inorder = s->set[d].inorder;
	}
	if (s->partition != 0)
		R.partitioned = s->partition > 0;
}

/* ---- the queue: a binary min-heap on (due, seq) ---- */

static bool
before(const struct pkt *a, const struct pkt *b)
{
	return a->due_us < b->due_us || (a->due_us == b->due_us && a->seq < b->seq);
}

static void
heap_push(struct pkt p)
{
	size_t i = R.nheap++;

	while (i > 0 && before(&p, &R.heap[(i - 1) / 2])) {
		R.heap[i] = R.heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	R.heap[i] = p;
}

static struct pkt
heap_pop(void)
{
	struct pkt top = R.heap[0], last = R.heap[--R.nheap];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m = i;
		const struct pkt *best = &last;
		if (l < R.nheap && before(&R.heap[l], best))
			best = &R.heap[m = l];
		if (l + 1 < R.nheap && before(&R.heap[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		R.heap[i] = R.heap[m];
		i = m;
	}
	if (R.nheap > 0)
		R.heap[i] = last;
	return top;
}

/* Queues one copy of a datagram under the direction's delay. */
static void
enqueue(int dir, int client, const uint8_t *data, size_t len, int64_t now)
{
	const struct impair *im = &R.cur[dir];
	double ms = im->delay + (im->jitter > 0 ? (2 * uniform() - 1) * im->jitter : 0);
	struct pkt p;

	if (R.nheap >= MAX_QUEUED || R.bytes + len > MAX_BYTES ||
	    (p.data = malloc(len ? len : 1)) == NULL) {
		R.c[dir].overflow++;
		return;
	}
	bool held = im->reorder > 0 && uniform() * 100 < im->reorder;
	if (held)
		ms += 2 * im->jitter + 10;
	if (ms < 0)
		ms = 0;
	memcpy(p.data, data, len);
	p.len = len;
	p.dir = dir;
	p.client = client;
	p.seq = R.seq++;
	p.due_us = now + (int64_t)(ms * 1000);
	/* inorder: no earlier than the client's datagram before it in this
	 * direction (a queue's jitter), unless reorder held this one back */
	if (im->inorder > 0 && !held && p.due_us <= R.clients[client].last_due[dir])
		p.due_us = R.clients[client].last_due[dir] + 1;
	if (!held)
		R.clients[client].last_due[dir] = p.due_us;
	R.bytes += len;
	heap_push(p);
}

static void
arrived(int dir, int client, const uint8_t *data, size_t len, int64_t now)
{
	const struct impair *im = &R.cur[dir];

	R.c[dir].in++;
	if (R.partitioned || (im->loss > 0 && uniform() * 100 < im->loss)) {
		R.c[dir].dropped++;
		return;
	}
	enqueue(dir, client, data, len, now);
	if (im->dup > 0 && uniform() * 100 < im->dup) {
		R.c[dir].dup++;
		enqueue(dir, client, data, len, now);
	}
}

static void
send_due(int64_t now)
{
	while (R.nheap > 0 && R.heap[0].due_us <= now) {
		struct pkt p = heap_pop();
		struct client *c = &R.clients[p.client];
		ssize_t n = p.dir == A2B ? send(c->up, p.data, p.len, 0)
		                         : sendto(R.lsock, p.data, p.len, 0,
		                                  (struct sockaddr *)&c->addr, c->addrlen);
		if (n == (ssize_t)p.len)
			R.c[p.dir].out++;
		else
			R.c[p.dir].dropped++; /* the kernel refused it: lost, like on a wire */
		R.bytes -= p.len;
		free(p.data);
	}
}

/* The client index for a source address, opening its upstream socket. */
static int
client_of(const struct sockaddr_storage *from, socklen_t fromlen)
{
	struct client *c;

	for (int i = 0; i < R.nclients; i++)
		if (R.clients[i].addrlen == fromlen && memcmp(&R.clients[i].addr, from, fromlen) == 0)
			return i;
	if (R.nclients == MAX_CLIENTS)
		return -1;
	c = &R.clients[R.nclients];
	c->up = socket(R.target.ss_family, SOCK_DGRAM, 0);
	if (c->up < 0 || connect(c->up, (struct sockaddr *)&R.target, R.targetlen) != 0) {
		if (c->up >= 0)
			close(c->up);
		return -1;
	}
	memcpy(&c->addr, from, fromlen);
	c->addrlen = fromlen;
	return R.nclients++;
}

static void
write_stats(void)
{
	FILE *f;
	char tmp[1100];

	if (R.stats_file == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", R.stats_file);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "{");
	for (int d = A2B; d <= B2A; d++)
		fprintf(f,
		        "%s\"%s\":{\"in\":%llu,\"out\":%llu,\"dropped\":%llu,\"dup\":%llu,"
		        "\"overflow\":%llu}",
		        d ? "," : "", d ? "b2a" : "a2b", (unsigned long long)R.c[d].in,
		        (unsigned long long)R.c[d].out, (unsigned long long)R.c[d].dropped,
		        (unsigned long long)R.c[d].dup, (unsigned long long)R.c[d].overflow);
	fprintf(f, ",\"clients\":%d,\"queued\":%zu}\n", R.nclients, R.nheap);
	if (fclose(f) == 0)
		(void)rename(tmp, R.stats_file);
}

static int
poll_timeout(int64_t now, int64_t end_us)
{
	int64_t next = now + 100000;

	if (R.nheap > 0 && R.heap[0].due_us < next)
		next = R.heap[0].due_us;
	if (R.next_step < R.nsteps) {
		int64_t at = R.t0_us + (int64_t)(R.steps[R.next_step].at * 1e6);
		if (at < next)
			next = at;
	}
	if (end_us > 0 && end_us < next)
		next = end_us;
	return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

/* Reads every datagram waiting on fd (direction dir, client c or -1). */
static void
drain(int fd, int dir, int c, uint8_t *buf)
{
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, DGRAM_MAX, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		int64_t now = now_us();
		if (n < 0)
			return;
		if (dir == A2B && (c = client_of(&from, fl)) < 0) {
			R.c[A2B].overflow++;
			continue;
		}
		arrived(dir, c, buf, (size_t)n, now);
	}
}

static int
run(double max_seconds)
{
	static uint8_t buf[DGRAM_MAX];
	struct pollfd fds[MAX_CLIENTS + 1];
	int64_t end_us = max_seconds > 0 ? R.t0_us + (int64_t)(max_seconds * 1e6) : 0;

	while (!stop_flag) {
		int64_t now = now_us();
		while (R.next_step < R.nsteps &&
		       R.t0_us + (int64_t)(R.steps[R.next_step].at * 1e6) <= now)
			apply_step(&R.steps[R.next_step++]);
		send_due(now);
		if (stats_flag) {
			stats_flag = 0;
			write_stats();
		}
		if (end_us > 0 && now >= end_us)
			break;
		fds[0].fd = R.lsock;
		fds[0].events = POLLIN;
		for (int i = 0; i < R.nclients; i++) {
			fds[i + 1].fd = R.clients[i].up;
			fds[i + 1].events = POLLIN;
		}
		if (poll(fds, (nfds_t)R.nclients + 1, poll_timeout(now, end_us)) < 0) {
			if (errno == EINTR)
				continue;
			return 3;
		}
		int n = R.nclients; /* drain may add clients: their fds are not in fds yet */
		if (fds[0].revents & POLLIN)
			drain(R.lsock, A2B, -1, buf);
		for (int i = 0; i < n; i++)
			if (fds[i + 1].revents & POLLIN)
				drain(R.clients[i].up, B2A, i, buf);
	}
	write_stats();
	return 0;
}

static int
setup(const char *listen_s, const char *target_s, const char *port_file)
{
	struct sockaddr_storage la;
	socklen_t ll;
	FILE *f;

	if (parse_addr(listen_s, &la, &ll) != 0)
		return usage_error("--listen must be HOST:PORT", listen_s);
	if (parse_addr(target_s, &R.target, &R.targetlen) != 0)
		return usage_error("--target must be HOST:PORT", target_s);
	if ((R.lsock = socket(la.ss_family, SOCK_DGRAM, 0)) < 0 ||
	    bind(R.lsock, (struct sockaddr *)&la, ll) != 0) {
		fprintf(stderr, "udp_relay: bind %s: %s\n", listen_s, strerror(errno));
		return 3;
	}
	ll = sizeof(la);
	if (getsockname(R.lsock, (struct sockaddr *)&la, &ll) != 0)
		return 3;
	if (port_file != NULL) {
		unsigned port = ntohs(la.ss_family == AF_INET6
		                          ? ((struct sockaddr_in6 *)&la)->sin6_port
		                          : ((struct sockaddr_in *)&la)->sin_port);
		if ((f = fopen(port_file, "w")) == NULL || fprintf(f, "%u\n", port) < 0 ||
		    fclose(f) != 0) {
			fprintf(stderr, "udp_relay: %s: cannot write the port\n", port_file);
			return 3;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *listen_s = NULL, *target_s = NULL, *scenario = NULL, *port_file = NULL;
	double max_seconds = 0;
	unsigned long long seed = 1;
	struct sigaction sa;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			printf("Usage: udp_relay --listen HOST:PORT --target HOST:PORT "
			       "[--scenario FILE] [--seed N]\n"
			       "                 [--port-file FILE] [--stats-file FILE] "
			       "[--max-seconds S]\n(see the comment at the top of tests/udp_relay.c)\n");
			return 0;
		}
		if (v == NULL)
			return usage_error("option needs a value", a);
		if (strcmp(a, "--listen") == 0)
			listen_s = v;
		else if (strcmp(a, "--target") == 0)
			target_s = v;
		else if (strcmp(a, "--scenario") == 0)
			scenario = v;
		else if (strcmp(a, "--port-file") == 0)
			port_file = v;
		else if (strcmp(a, "--stats-file") == 0)
			R.stats_file = v;
		else if (strcmp(a, "--seed") == 0)
			seed = strtoull(v, NULL, 10);
		else if (strcmp(a, "--max-seconds") == 0)
			max_seconds = atof(v);
		else
			return usage_error("unknown option", a);
		i++;
	}
	if (listen_s == NULL || target_s == NULL)
		return usage_error("--listen and --target are required", NULL);
	R.rnd = seed ? seed : 1;
	if (scenario != NULL && (rc = load_scenario(scenario)) != 0)
		return rc;
	if ((rc = setup(listen_s, target_s, port_file)) != 0)
		return rc;
	if ((R.heap = calloc(MAX_QUEUED, sizeof(*R.heap))) == NULL)
		return 3;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	R.t0_us = now_us();
	rc = run(max_seconds);
	while (R.nheap > 0)
		free(heap_pop().data);
	free(R.heap);
	for (int i = 0; i < R.nclients; i++)
		close(R.clients[i].up);
	close(R.lsock);
	return rc;
}
