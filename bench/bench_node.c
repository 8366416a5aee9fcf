/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_node.c - `tongban-bench node`: two real tongban-node processes on
 * loopback, messages submitted through the local API (1 KiB bodies, bulk
 * requests), each signed, verified, journalled (fsync) and receipted; and
 * in the same run a bare libcoap DTLS echo of the same payload size
 * (GnuTLS, same certificates, 32 requests in flight) as the baseline.
 */
#include <arpa/inet.h>
#include <coap3/coap.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../util/tb_buf.h"
#include "../util/tb_file.h"

#include "../util/tb_port.h"

/* node_run's result when a node could not bind a port it was given:
 * taken by another process after the block was found free */
#define PORT_TAKEN 75

int bench_node(int argc, char **argv);

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char bindir[1024];

/* CPU seconds (user + system) a process has used so far, or -1. */
static double
cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	r = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[r] = '\0';
	/* fields after the command name, which is in parentheses */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Bytes a process has caused to be written to storage so far
 * (/proc/PID/io write_bytes: page-cache pages it dirtied), or -1. */
static double
written_bytes(pid_t pid)
{
	char path[64], line[256];
	double v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long b;
		if (sscanf(line, "write_bytes: %llu", &b) == 1) {
			v = (double)b;
			break;
		}
	}
	fclose(f);
	return v;
}

/* UDP datagrams sent so far by this host (/proc/net/snmp OutDatagrams),
 * or -1.  Loopback: every datagram of the two nodes counts once. */
static double
udp_out(void)
{
	char line[1024];
	double v = -1;
	bool header = false;
	FILE *f = fopen("/proc/net/snmp", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "Udp: ", 5) != 0)
			continue;
		if (!header) { /* names, then values, in the same order */
			header = true;
			continue;
		}
		unsigned long in, noport, errs, out;
		if (sscanf(line + 5, "%lu %lu %lu %lu", &in, &noport, &errs, &out) == 4)
			v = (double)out;
		break;
	}
	fclose(f);
	return v;
}

static pid_t
spawn(const char *prog, char *const args[], const char *logpath)
{
	char path[1200];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", bindir, prog);
	if ((pid = fork()) == 0) {
		if (logpath != NULL && freopen(logpath, "w", stderr) == NULL)
			_exit(127);
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		/* the nodes do not outlive the benchmark, even if it is killed */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
			_exit(127);
		execv(path, args);
		_exit(127);
	}
	return pid;
}

static int
run(const char *prog, char *const args[])
{
	int st;
	pid_t pid = spawn(prog, args, NULL);

	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One HTTP/1.0 request to 127.0.0.1:port; the answer body into out.
 * Returns the HTTP status or -1. */
static int
http(int port, const char *token, const char *method, const char *path, const char *body,
     size_t blen, struct tb_buf *out)
{
	struct sockaddr_in a;
	struct tb_buf req;
	char buf[65536];
	int fd, status = -1;
	ssize_t r;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	tb_buf_init(&req);
	tb_buf_printf(&req,
	              "%s %s HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Length: %zu\r\n\r\n",
	              method, path, token, blen);
	if (body != NULL)
		tb_buf_add(&req, body, blen);
	if (tb_buf_error(&req) != TB_OK)
		goto out;
	for (size_t off = 0; off < req.len;) {
		ssize_t w = write(fd, req.data + off, req.len - off);
		if (w <= 0)
			goto out;
		off += (size_t)w;
	}
	tb_buf_reset(out);
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		tb_buf_add(out, buf, (size_t)r);
	if (tb_buf_error(out) != TB_OK)
		goto out; /* an answer not read whole has no status */
	if (out->len > 12 && memcmp(out->data, "HTTP/1.", 7) == 0)
		status = atoi((const char *)out->data + 9);
out:
	tb_buf_free(&req);
	close(fd);
	return status;
}

static double
metric(const struct tb_buf *m, const char *name)
{
	const char *p = strstr((const char *)m->data, name);
	return p == NULL ? -1 : atof(p + strlen(name));
}

/* Reads the delivery histogram of m into le[]/cnt[] (ms, cumulative);
 * returns the number of finite buckets. */
static int
histogram(const struct tb_buf *m, double *le, double *cnt, int max)
{
	const char *p = (const char *)m->data;
	int k = 0;

	while (k < max && (p = strstr(p, "tongban_delivery_seconds_bucket{le=\"")) != NULL) {
		p += strlen("tongban_delivery_seconds_bucket{le=\"");
		if (*p == '+')
			break;
		le[k] = atof(p) * 1000.0;
		const char *v = strchr(p, ' ');
		if (v == NULL)
			break;
		cnt[k++] = atof(v + 1);
	}
	return k;
}

/* Quantile q (ms) of the deliveries between snapshots a and b,
 * interpolated linearly inside a bucket. */
static double
quantile(const struct tb_buf *a, const struct tb_buf *b, double q)
{
	double la[64], ca[64], lb[64], cb[64], prev_le = 0, prev_c = 0, total;
	int na = a ? histogram(a, la, ca, 64) : 0, nb = histogram(b, lb, cb, 64);

	if (nb == 0)
		return -1;
	for (int i = 0; i < nb; i++)
		cb[i] -= i < na ? ca[i] : 0;
	total = metric(b, "tongban_delivery_seconds_count ") -
	        (a ? metric(a, "tongban_delivery_seconds_count ") : 0);
	if (total <= 0)
		return -1;
	for (int i = 0; i < nb; i++) {
		if (cb[i] >= q * total) {
			double frac = cb[i] > prev_c ? (q * total - prev_c) / (cb[i] - prev_c) : 1;
			return prev_le + frac * (lb[i] - prev_le);
		}
		prev_le = lb[i];
		prev_c = cb[i];
	}
	return prev_le;
}

/* 64 hex digits from a xorshift generator: digests as random as real
 * ones, so that the deflate coding of exchanges gains no more here than
 * on real traffic. */
static const char *
hex64(char out[65])
{
	static uint64_t x = 0x9e3779b97f4a7c15u;

	for (int i = 0; i < 64; i += 16) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		for (int k = 0; k < 16; k++)
			out[i + k] = "0123456789abcdef"[(x >> (4 * k)) & 15];
	}
	out[64] = '\0';
	return out;
}

/* A stamp of this pass in the case ids (new_stamp, at each federation
 * made): a journal on a database that an earlier run or pass filled
 * knows its cases, and refuses a second case.submit of one. */
static long stamp;

static void
new_stamp(void)
{
	static long passes;

	stamp = (((long)time(NULL) << 20) ^ ((long)getpid() << 4) ^ ++passes) & 0x7fffffffffffL;
}

static long
run_stamp(void)
{
	return stamp;
}

/* ttl of the messages add_cases writes, seconds (0: the node's default) */
static long case_ttl;

/* Appends a JSON array of count case.submit requests of about 1 KiB,
 * case ids from *seq on; returns one message's size. */
static int
add_cases(struct tb_buf *b, long count, long *seq, const char *to)
{
	char one[1600], h[65], ttl[32] = "";
	int ol = 0;

	if (case_ttl > 0)
		snprintf(ttl, sizeof(ttl), "\"ttl\":%ld,", case_ttl);
	tb_buf_addc(b, '[');
	for (long k = 0; k < count; k++) {
		ol = snprintf(
		    one, sizeof(one),
		    "{\"type\":\"case.submit\",\"to\":\"%s\",%s\"service\":\"hukou.transfer\","
		    "\"body\":{\"case_id\":\"BENCH-%lx-%ld\",\"service\":\"hukou.transfer\","
		    "\"mode\":\"online\",\"applicant\":{\"kind\":\"person\",\"idhash\":\"%s\"},"
		    "\"materials\":[",
		    to, ttl, run_stamp(), (*seq)++, hex64(h));
		for (int i = 0; i < 8; i++)
			ol += snprintf(one + ol, sizeof(one) - (size_t)ol,
			               "%s{\"sha256\":\"%s\",\"size\":%d,\"name\":\"m%d.pdf\"}",
			               i ? "," : "", hex64(h), 1000 + i, i);
		ol += snprintf(one + ol, sizeof(one) - (size_t)ol, "]}}");
		if (k > 0)
			tb_buf_addc(b, ',');
		tb_buf_add(b, one, (size_t)ol);
	}
	tb_buf_addc(b, ']');
	if (tb_buf_error(b) != TB_OK) {
		/* a request with cases missing would skew the figures */
		fprintf(stderr, "tongban-bench: out of memory\n");
		exit(1);
	}
	return ol;
}

/* A node the benchmark submits to: its API port, token and the member
 * its messages go to. */
struct side {
	int port;
	const struct tb_buf *tok;
	const char *to;
};

static double
delivered_total(const struct side *sd, int nsides)
{
	struct tb_buf m;
	double sum = 0;

	tb_buf_init(&m);
	for (int i = 0; i < nsides; i++) {
		if (http(sd[i].port, (const char *)sd[i].tok->data, "GET", "/metrics", NULL, 0,
		         &m) != 200) {
			sum = -1;
			break;
		}
		sum += metric(&m, "tongban_messages_out_total{result=\"delivered\"} ");
	}
	tb_buf_free(&m);
	return sum;
}

/*
 * Submits `total` messages spread over the sides (each side's share from
 * its own process, in API requests of per_req) and waits until all are
 * delivered with verified receipts.  0 on success.
 */
static int
saturate(const struct side *sd, int nsides, long total, long per_req, long *seq, double *drain)
{
	double start = delivered_total(sd, nsides), now, deadline;
	pid_t kids[2];
	int ok = 1;

	for (int k = 0; k < nsides; k++) {
		if ((kids[k] = fork()) == 0) {
			struct tb_buf body, out;
			long s = *seq + (long)k * total; /* distinct case ids per side */
			tb_buf_init(&body);
			tb_buf_init(&out);
			for (long sent = 0, c; sent < total / nsides; sent += c) {
				c = total / nsides - sent < per_req ? total / nsides - sent
				                                    : per_req;
				tb_buf_reset(&body);
				add_cases(&body, c, &s, sd[k].to);
				if (http(sd[k].port, (const char *)sd[k].tok->data, "POST",
				         "/v1/messages", (const char *)body.data, body.len,
				         &out) != 202) {
					fprintf(stderr,
					        "tongban-bench node: submit failed: %.200s\n",
					        out.data);
					_exit(1);
				}
			}
			_exit(0);
		}
		if (kids[k] < 0)
			return -1;
	}
	*seq += (long)nsides * total;
	for (int k = 0; k < nsides; k++) {
		int st;
		if (waitpid(kids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			ok = 0;
	}
	if (!ok)
		return -1;
	/* what was still queued when the last submission was answered */
	double t_sub = now_s(),
	       left = start + (double)(total / nsides * nsides) - delivered_total(sd, nsides);
	deadline = now_s() + 300;
	do {
		/* polled at 20 Hz: /metrics counts the queue, which is not free */
		usleep(50000);
		now = delivered_total(sd, nsides);
	} while (now < start + (double)(total / nsides * nsides) && now_s() < deadline);
	if (now < start + (double)(total / nsides * nsides)) {
		fprintf(stderr, "tongban-bench node: only %.0f of %ld delivered\n", now - start,
		        total);
		return -1;
	}
	*drain = left > 0 ? left / (now_s() - t_sub) : 0;
	return 0;
}

/* Rewrites a node.conf for the benchmark: drops the "responder" line (it
 * measures delivery, not the reference responder's answers) and sets the
 * nsets "key = value" lines of --set, replacing the keys' lines. */
static void echo_server(const char *dir, int port);
static double echo_client(const char *dir, int port, size_t len, double secs);

/* One echo measurement of 3 s: its own server process, stopped after. */
static double
baseline_run(const char *dir, int port)
{
	pid_t srv = fork();
	double rate;

	if (srv < 0)
		return -1;
	if (srv == 0)
		echo_server(dir, port);
	usleep(200000);
	rate = echo_client(dir, port, 1024, 3.0);
	kill(srv, SIGKILL);
	waitpid(srv, NULL, 0);
	return rate;
}

static int
edit_conf(const char *conf, const char *member, char **sets, int nsets)
{
	struct tb_buf in, out;
	int rc = -1;

	tb_buf_init(&in);
	tb_buf_init(&out);
	if (tb_file_read(conf, 1 << 20, &in, NULL) == 0) {
		for (char *l = (char *)in.data, *nl; l && *l; l = nl) {
			bool drop = strncmp(l, "responder", 9) == 0;
			if ((nl = strchr(l, '\n')) != NULL)
				*nl++ = '\0';
			for (int i = 0; i < nsets && !drop; i++) {
				size_t k = strcspn(sets[i], " =");
				drop = strncmp(l, sets[i], k) == 0 && strchr(" =", l[k]) != NULL;
			}
			if (!drop) {
				tb_buf_adds(&out, l);
				tb_buf_addc(&out, '\n');
			}
		}
		/* "%m" in a value is the member's id (a database per member) */
		for (int i = 0; i < nsets; i++) {
			for (const char *c = sets[i]; *c != '\0'; c++)
				if (c[0] == '%' && c[1] == 'm')
					tb_buf_adds(&out, member), c++;
				else
					tb_buf_addc(&out, *c);
			tb_buf_addc(&out, '\n');
		}
		rc = tb_buf_error(&out) != TB_OK
		         ? -1
		         : tb_file_write(conf, out.data, out.len, 0644, 0, NULL);
	}
	tb_buf_free(&in);
	tb_buf_free(&out);
	return rc;
}

/* ---- the baseline: bare libcoap DTLS echo ---- */

static void
hnd_echo(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
         coap_pdu_t *resp)
{
	size_t len;
	const uint8_t *data;

	(void)r;
	(void)s;
	(void)q;
	coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CHANGED);
	if (coap_get_data(req, &len, &data))
		coap_add_data(resp, len, data);
}

static void
fill_pki(coap_dtls_pki_t *pki, const char *cert, const char *key, const char *ca)
{
	memset(pki, 0, sizeof(*pki));
	pki->version = COAP_DTLS_PKI_SETUP_VERSION;
	pki->verify_peer_cert = 1;
	pki->cert_chain_validation = 1;
	pki->cert_chain_verify_depth = 2;
	pki->pki_key.key_type = COAP_PKI_KEY_PEM;
	pki->pki_key.key.pem.public_cert = cert;
	pki->pki_key.key.pem.private_key = key;
	pki->pki_key.key.pem.ca_file = ca;
}

static void
echo_server(const char *dir, int port)
{
	char cert[1200], key[1200], ca[1200];
	coap_dtls_pki_t pki;
	coap_address_t addr;
	coap_context_t *ctx;
	coap_resource_t *r;

	snprintf(cert, sizeof(cert), "%s/371300/node-chain.pem", dir);
	snprintf(key, sizeof(key), "%s/371300/node.key", dir);
	snprintf(ca, sizeof(ca), "%s/cas.pem", dir);
	coap_startup();
	ctx = coap_new_context(NULL);
	fill_pki(&pki, cert, key, ca);
	coap_context_set_pki(ctx, &pki);
	coap_address_init(&addr);
	addr.addr.sin.sin_family = AF_INET;
	addr.addr.sin.sin_port = htons((uint16_t)port);
	addr.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.size = sizeof(addr.addr.sin);
	if (coap_new_endpoint(ctx, &addr, COAP_PROTO_DTLS) == NULL)
		_exit(1);
	r = coap_resource_init(coap_make_str_const("echo"), 0);
	coap_register_request_handler(r, COAP_REQUEST_POST, hnd_echo);
	coap_add_resource(ctx, r);
	for (;;)
		coap_io_process(ctx, 1000);
}

static long echo_done;

static coap_response_t
echo_resp(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *recv, const coap_mid_t mid)
{
	(void)s;
	(void)sent;
	(void)recv;
	(void)mid;
	echo_done++;
	return COAP_RESPONSE_OK;
}

static int
echo_send(coap_session_t *s, const uint8_t *payload, size_t len)
{
	coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, s);
	uint8_t tok[8];
	size_t tl;

	if (pdu == NULL)
		return -1;
	coap_session_new_token(s, &tl, tok);
	coap_add_token(pdu, tl, tok);
	coap_add_option(pdu, COAP_OPTION_URI_PATH, 4, (const uint8_t *)"echo");
	coap_add_data(pdu, len, payload);
	return coap_send(s, pdu) == COAP_INVALID_MID ? -1 : 0;
}

static double
echo_client(const char *dir, int port, size_t len, double secs)
{
	char cert[1200], key[1200], ca[1200];
	uint8_t payload[2048];
	coap_dtls_pki_t pki;
	coap_address_t addr;
	coap_context_t *ctx;
	coap_session_t *s;
	long sent = 0;
	double t0, t;

	snprintf(cert, sizeof(cert), "%s/320300/node-chain.pem", dir);
	snprintf(key, sizeof(key), "%s/320300/node.key", dir);
	snprintf(ca, sizeof(ca), "%s/cas.pem", dir);
	memset(payload, 'x', sizeof(payload));
	coap_startup();
	ctx = coap_new_context(NULL);
	coap_register_response_handler(ctx, echo_resp);
	coap_address_init(&addr);
	addr.addr.sin.sin_family = AF_INET;
	addr.addr.sin.sin_port = htons((uint16_t)port);
	addr.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.size = sizeof(addr.addr.sin);
	fill_pki(&pki, cert, key, ca);
	s = coap_new_client_session_pki(ctx, NULL, &addr, COAP_PROTO_DTLS, &pki);
	coap_session_set_max_retransmit(s, 4);
	/* NSTART: allow 32 outstanding confirmable requests */
	coap_session_set_nstart(s, 32);
	echo_send(s, payload, len);
	for (t0 = now_s(); echo_done == 0 && now_s() - t0 < 5;)
		coap_io_process(ctx, 10); /* handshake */
	echo_done = 0;
	t0 = now_s();
	sent = 0;
	do {
		while (sent - echo_done < 32)
			if (echo_send(s, payload, len) == 0)
				sent++;
			else
				break;
		coap_io_process(ctx, COAP_IO_NO_WAIT);
		t = now_s();
	} while (t - t0 < secs);
	double rate = (double)echo_done / (t - t0);
	coap_session_release(s);
	coap_free_context(ctx);
	coap_cleanup();
	return rate;
}

/* --alg of tongban-bench node: p256 (the default) or sm2, passed to
 * dev-federation (SM2 message and receipt keys, SM2 registry). */
static const char *node_alg = "p256";

/* --journal postgresql[=URI]: the journal line of the PostgreSQL pass
 * ("journal = URI"), NULL without it; --pair: the pair's pass too. */
static char pg_journal[1100];
static bool pg_mode, pair_mode;

/* --journal's value: "postgresql" (libpq's defaults: PGHOST, PGPORT,
 * PGUSER, PGPASSFILE from the environment, a database tb<member>) or
 * "postgresql=URI" (%m: the member id). */
static bool
journal_arg(const char *v)
{
	const char *uri = "postgresql:///tb%m";

	if (strncmp(v, "postgresql=", 11) == 0 && strncmp(v + 11, "postgres", 8) == 0)
		uri = v + 11;
	else if (strcmp(v, "postgresql") != 0)
		return false;
	snprintf(pg_journal, sizeof(pg_journal), "journal = %s", uri);
	pg_mode = true;
	return true;
}

/* The options: --messages N, --alg p256|sm2, --set KEY=VALUE (up to 16),
 * --journal postgresql[=URI], --pair (with --journal). */
static int
parse_args(int argc, char **argv, long per_req, long *totalp, char **sets, int *nsetsp)
{
	long total = *totalp;
	int nsets = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc) {
			total = atol(argv[++i]);
		} else if (strcmp(argv[i], "--journal") == 0 && i + 1 < argc) {
			if (!journal_arg(argv[++i])) {
				fprintf(stderr,
				        "tongban-bench node: --journal takes postgresql or "
				        "postgresql=URI, not '%s'\n",
				        argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--pair") == 0) {
			pair_mode = true;
		} else if (strcmp(argv[i], "--alg") == 0 && i + 1 < argc &&
		           (strcmp(argv[i + 1], "p256") == 0 || strcmp(argv[i + 1], "sm2") == 0)) {
			node_alg = argv[++i];
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && nsets < 16 &&
		           strchr(argv[i + 1], '=') != NULL && argv[i + 1][0] != '=') {
			sets[nsets++] = argv[++i];
		} else {
			fprintf(stderr, "tongban-bench node: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (total < per_req || total > 1000000) {
		fprintf(stderr, "tongban-bench node: --messages must be %ld..1000000\n", per_req);
		return 2;
	}
	if (pair_mode && !pg_mode) {
		fprintf(stderr, "tongban-bench node: --pair needs --journal postgresql\n");
		return 2;
	}
	*totalp = total;
	*nsetsp = nsets;
	return 0;
}

/* Latency under a steady load of half the measured capacity: small
 * submissions (10 messages) at a fixed pace for 4 s.  (Under the
 * saturating load above, latency is queueing time.) */
static void
measure_latency(int base, const struct tb_buf *tok, double msgs_per_s, long *seq, double *p50,
                double *p99, double *lat_rate)
{
	struct tb_buf out, m;
	double deadline;

	tb_buf_init(&out);
	tb_buf_init(&m);
	struct tb_buf before, small;
	double rate = msgs_per_s / 2, t, next;
	long n10 = 0;
	tb_buf_init(&before);
	tb_buf_init(&small);

	http(base + 1000, (const char *)tok->data, "GET", "/metrics", NULL, 0, &before);
	double d0 = metric(&before, "tongban_messages_out_total{result=\"delivered\"} ");
	t = now_s();
	next = t;
	while (now_s() - t < 4.0) {
		if (now_s() < next) {
			usleep(500);
			continue;
		}
		tb_buf_reset(&small);
		add_cases(&small, 10, seq, "371300");
		http(base + 1000, (const char *)tok->data, "POST", "/v1/messages",
		     (const char *)small.data, small.len, &out);
		n10++;
		next += 10.0 / rate;
	}
	deadline = now_s() + 60;
	do {
		usleep(50000);
		http(base + 1000, (const char *)tok->data, "GET", "/metrics", NULL, 0, &m);
	} while (metric(&m, "tongban_messages_out_total{result=\"delivered\"} ") <
	             d0 + (double)n10 * 10 &&
	         now_s() < deadline);
	(*p50) = quantile(&before, &m, 0.5);
	(*p99) = quantile(&before, &m, 0.99);
	(*lat_rate) = (double)n10 * 10 / 4.0;
	tb_buf_free(&before);
	tb_buf_free(&small);
	tb_buf_free(&out);
	tb_buf_free(&m);
}

/* Warm-up: the DTLS handshakes, one message each way. */
static void
warm_up(int base, const struct tb_buf *tok, const struct tb_buf *tok2, long *seq)
{
	struct tb_buf small0, out;

	tb_buf_init(&out);
	tb_buf_init(&small0);
	add_cases(&small0, 1, seq, "371300");
	http(base + 1000, (const char *)tok->data, "POST", "/v1/messages",
	     (const char *)small0.data, small0.len, &out);
	tb_buf_reset(&small0);
	add_cases(&small0, 1, seq, "320300");
	http(base + 1001, (const char *)tok2->data, "POST", "/v1/messages",
	     (const char *)small0.data, small0.len, &out);
	tb_buf_free(&small0);
	usleep(300000);
	tb_buf_free(&out);
}

/* What one run measured. */
struct node_results {
	long total;
	double t0, t1, msgs_per_s, c1, c2, drain1, dgrams, w1, w2, both_per_s, b1, b2, p50, p99,
	    lat_rate, baseline, baseline1, baseline2;
};

static void
report(const struct node_results *r)
{
	printf("tongban  : %8.0f msgs/s signed+verified+journalled+receipted (saturated)\n",
	       r->msgs_per_s);
	printf("cpu      : sender %.0f us/msg (%.0f%% of a core), receiver %.0f us/msg (%.0f%%)\n",
	       r->c1 * 1e6 / (double)r->total, 100 * r->c1 / (r->t1 - r->t0),
	       r->c2 * 1e6 / (double)r->total, 100 * r->c2 / (r->t1 - r->t0));
	printf("drain    : %8.0f msgs/s one way once all submissions were in (queue only)\n",
	       r->drain1);
	printf("datagrams: %8.2f UDP datagrams per message one way (both nodes, all blocks "
	       "and acknowledgements)\n",
	       r->dgrams);
	printf("written  : sender %.1f KiB/msg, receiver %.1f KiB/msg to storage one way "
	       "(journal, WAL and checkpoints)\n",
	       r->w1, r->w2);
	printf(
	    "both ways: %8.0f msgs/s in all, each node sending half (sender+receiver CPU %.0f and "
	    "%.0f us/msg)\n",
	    r->both_per_s, r->b1 * 1e6 / (double)r->total, r->b2 * 1e6 / (double)r->total);
	printf("latency  : p50 %.1f ms, p99 %.1f ms submit-to-verified-receipt at %.0f msgs/s\n",
	       r->p50, r->p99, r->lat_rate);
	printf("baseline : %8.0f exchanges/s bare libcoap DTLS echo of 1 KiB, 32 in flight "
	       "(mean of %.0f before the nodes ran and %.0f after)\n",
	       r->baseline, r->baseline1, r->baseline2);
	printf("{\"alg\":\"%s\",\"msgs_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
	       "\"baseline_per_s\":%.0f,"
	       "\"ratio\":%.3f,\"messages\":%ld,\"latency_load_per_s\":%.0f,"
	       "\"sender_cpu_us_per_msg\":%.0f,\"receiver_cpu_us_per_msg\":%.0f,"
	       "\"both_ways_msgs_per_s\":%.0f,\"drain_msgs_per_s\":%.0f,"
	       "\"datagrams_per_msg\":%.2f,\"sender_written_kib_per_msg\":%.1f,"
	       "\"receiver_written_kib_per_msg\":%.1f,\"baseline_before_per_s\":%.0f,"
	       "\"baseline_after_per_s\":%.0f}\n",
	       node_alg, r->msgs_per_s, r->p50, r->p99, r->baseline, r->msgs_per_s / r->baseline,
	       r->total, r->lat_rate, r->c1 * 1e6 / (double)r->total,
	       r->c2 * 1e6 / (double)r->total, r->both_per_s, r->drain1, r->dgrams, r->w1, r->w2,
	       r->baseline1, r->baseline2);
}

/* True when the node *pid has exited (then reaped, *pid -1) and its log
 * says that one of its ports was taken. */
static bool
lost_port(pid_t *pid, const char *log)
{
	struct tb_buf b;
	bool taken;

	if (*pid <= 0 || waitpid(*pid, NULL, WNOHANG) != *pid)
		return false;
	*pid = -1;
	tb_buf_init(&b);
	taken = tb_file_read(log, 1 << 20, &b, NULL) == 0 && tb_buf_addc(&b, 0) == 0 &&
	        strstr((const char *)b.data, "Address already in use") != NULL;
	tb_buf_free(&b);
	return taken;
}

/* Starts the two nodes (logs in dir) and waits until both answer;
 * their API tokens into tok and tok2. */
static int
start_nodes(const char *dir, int base, char *conf1, char *conf2, pid_t *n1, pid_t *n2,
            struct tb_buf *tok, struct tb_buf *tok2)
{
	char log1[1200], log2[1200], tokpath[1200];
	struct tb_buf out;
	int rc = -1;

	tb_buf_init(&out);
	snprintf(log1, sizeof(log1), "%s/320300.log", dir);
	snprintf(log2, sizeof(log2), "%s/371300.log", dir);
	char *a1[] = {"tongban-node", "-c", conf1, NULL},
	     *a2[] = {"tongban-node", "-c", conf2, NULL};
	*n1 = spawn("tongban-node", a1, log1);
	*n2 = spawn("tongban-node", a2, log2);
	snprintf(tokpath, sizeof(tokpath), "%s/320300/api.token", dir);
	if (tb_file_read(tokpath, 1024, tok, NULL) != 0)
		goto fail;
	snprintf(tokpath, sizeof(tokpath), "%s/371300/api.token", dir);
	if (tb_file_read(tokpath, 1024, tok2, NULL) != 0)
		goto fail;
	double deadline = now_s() + 10;
	while (
	    http(base + 1000, (const char *)tok->data, "GET", "/healthz", NULL, 0, &out) != 200 ||
	    http(base + 1001, (const char *)tok2->data, "GET", "/healthz", NULL, 0, &out) != 200) {
		if (lost_port(n1, log1) || lost_port(n2, log2)) {
			fprintf(stderr, "tongban-bench node: a port was taken meanwhile\n");
			rc = PORT_TAKEN;
			goto fail;
		}
		if (now_s() > deadline) {
			fprintf(stderr, "tongban-bench node: node did not start (see %s)\n", log1);
			goto fail;
		}
		usleep(20000);
	}
	rc = 0;
fail:
	tb_buf_free(&out);
	return rc;
}

/* Stops what is left of the nodes and removes dir. */
static void
stop_and_clean(pid_t n1, pid_t n2, char *dir)
{
	if (n1 > 0)
		kill(n1, SIGKILL);
	if (n2 > 0)
		kill(n2, SIGKILL);
	while (wait(NULL) > 0)
		;
	char *rmargs[] = {"rm", "-rf", dir, NULL};
	pid_t rp = fork();
	if (rp == 0) {
		execvp("rm", rmargs);
		_exit(127);
	}
	if (rp > 0)
		waitpid(rp, NULL, 0);
}

/* The two-member federation in dir, the --set keys in both configs
 * (conf1, conf2: 1200 bytes each). */
static int
make_federation(char *dir, int base, char **sets, int nsets, char *conf1, char *conf2)
{
	char ports[16], members[] = "320300,371300";

	new_stamp();
	snprintf(ports, sizeof(ports), "%d", base);
	char *dfargs[] = {"tongban",   "dev-federation", "--dir",       dir,
	                  "--members", members,          "--base-port", ports,
	                  "--alg",     (char *)node_alg, NULL};
	if (run("tongban", dfargs) != 0) {
		fprintf(stderr, "tongban-bench node: dev-federation failed\n");
		return -1;
	}
	snprintf(conf1, 1200, "%s/320300/node.conf", dir);
	snprintf(conf2, 1200, "%s/371300/node.conf", dir);
	if (edit_conf(conf1, "320300", sets, nsets) != 0 ||
	    edit_conf(conf2, "371300", sets, nsets) != 0)
		return -1;
	return 0;
}

/* One run on the ports from base (DTLS base, base+1, the echo baseline
 * base+9; the APIs base+1000, base+1001).  0, 1, 2 (usage) or
 * PORT_TAKEN. */
static int
node_run(int argc, char **argv, int base, const char *journal, struct node_results *res)
{
	long total = 20000, per_req = 200;
	char dir[] = "/tmp/tongban-bench.XXXXXX", self[1024], conf1[1200], conf2[1200];
	pid_t n1 = -1, n2 = -1;
	struct tb_buf tok, tok2, body;
	double baseline1 = 0, baseline2 = 0;
	double t0, t1, msgs_per_s, both_per_s, drain1 = 0, drain2 = 0, p50, p99, baseline,
	                                       lat_rate = 0;
	int rc = 1;

	char *sets[17];
	int nsets = 0;

	if (parse_args(argc, argv, per_req, &total, sets, &nsets) != 0)
		return 2;
	if (journal != NULL)
		sets[nsets++] = (char *)journal;
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		return 1;
	self[sl] = '\0';
	snprintf(bindir, sizeof(bindir), "%s", dirname(self));
	if (mkdtemp(dir) == NULL)
		return 1;
	tb_buf_init(&tok);
	tb_buf_init(&tok2);
	tb_buf_init(&body);
	if (make_federation(dir, base, sets, nsets, conf1, conf2) != 0)
		goto out;
	/* the echo baseline brackets the nodes' runs: once before they
	 * start, once after they stop (the machine's speed drifts) */
	if ((baseline1 = baseline_run(dir, base + 9)) <= 0) {
		fprintf(stderr, "tongban-bench node: the echo baseline failed\n");
		goto out;
	}
	if ((rc = start_nodes(dir, base, conf1, conf2, &n1, &n2, &tok, &tok2)) != 0) {
		rc = rc == PORT_TAKEN ? PORT_TAKEN : 1;
		goto out;
	}
	rc = 1;
	/* 1 KiB bodies: case submissions with material digests, each its own
	 * case (the case lifecycle refuses a second submission of one) */
	long seq = 0;
	int ol = add_cases(&body, per_req, &seq, "371300");
	printf("node: 2 tongban-node processes, %ld messages, body %d bytes, %ld per API request, "
	       "signatures %s\n",
	       total, ol, per_req, node_alg);
	warm_up(base, &tok, &tok2, &seq);
	/* one way: Xuzhou sends, Linyi receives */
	struct side one[1] = {{base + 1000, &tok, "371300"}},
	            both[2] = {{base + 1000, &tok, "371300"}, {base + 1001, &tok2, "320300"}};
	double c1 = cpu_s(n1), c2 = cpu_s(n2), u0 = udp_out(), w1 = written_bytes(n1),
	       w2 = written_bytes(n2);
	t0 = now_s();
	if (saturate(one, 1, total, per_req, &seq, &drain1) != 0)
		goto out;
	t1 = now_s();
	msgs_per_s = (double)total / (t1 - t0);
	c1 = cpu_s(n1) - c1;
	c2 = cpu_s(n2) - c2;
	double dgrams = u0 >= 0 ? (udp_out() - u0) / (double)total : 0;
	/* once every receipt is verified, the sender's last commit is done;
	 * the receiver's, before its answer */
	w1 = w1 >= 0 ? (written_bytes(n1) - w1) / 1024.0 / (double)total : 0;
	w2 = w2 >= 0 ? (written_bytes(n2) - w2) / 1024.0 / (double)total : 0;
	measure_latency(base, &tok, msgs_per_s, &seq, &p50, &p99, &lat_rate);
	/* both ways at once: each node sends half and receives half, as
	 * cities do; each side's submissions come from their own process */
	double b1 = cpu_s(n1), b2 = cpu_s(n2), tb0 = now_s();
	if (saturate(both, 2, total, per_req, &seq, &drain2) != 0)
		goto out;
	both_per_s = (double)total / (now_s() - tb0);
	b1 = cpu_s(n1) - b1;
	b2 = cpu_s(n2) - b2;
	/* baseline in the same run: the nodes are stopped first */
	kill(n1, SIGKILL);
	kill(n2, SIGKILL);
	waitpid(n1, NULL, 0);
	waitpid(n2, NULL, 0);
	n1 = n2 = -1;
	if ((baseline2 = baseline_run(dir, base + 9)) <= 0) {
		fprintf(stderr, "tongban-bench node: the echo baseline failed\n");
		goto out;
	}
	baseline = (baseline1 + baseline2) / 2;
	struct node_results r = {total,  t0,       t1,       msgs_per_s, c1,       c2, drain1,
	                         dgrams, w1,       w2,       both_per_s, b1,       b2, p50,
	                         p99,    lat_rate, baseline, baseline1,  baseline2};
	report(&r);
	*res = r;
	rc = 0;
out:
	stop_and_clean(n1, n2, dir);
	tb_buf_free(&tok);
	tb_buf_free(&tok2);
	tb_buf_free(&body);
	return rc;
}

/* The pair's figure against one process (--pair): 371300 as two
 * processes on its PostgreSQL database (its second, "371300b", on the
 * ports base+2 and base+1002), both endpoints in the registry, sending
 * to 320300: the submissions through one process, then split over
 * both. */
struct pair_results {
	double one_per_s, pair_per_s;
};

/* A system command (from PATH), its output dropped; its exit status. */
static int
run_sys(char *const args[])
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execvp(args[0], args);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* dir/371300 cloned into dir/371300b (conf3) and the registry listing
 * both endpoints for 371300, signed again by the dev federation's
 * authorities and installed for the three processes. */
static int
make_pair(const char *dir, int base, char *conf3)
{
	char from[1200], to[1200], reg[1200], e1[64], e2[64], listen[64], api[64], sh[4000];
	char *set[2] = {listen, api};

	snprintf(from, sizeof(from), "%s/371300/.", dir);
	snprintf(to, sizeof(to), "%s/371300b", dir);
	snprintf(reg, sizeof(reg), "%s/registry.json", dir);
	snprintf(conf3, 1200, "%s/371300b/node.conf", dir);
	snprintf(e1, sizeof(e1), "coaps://127.0.0.1:%d", base + 1);
	snprintf(e2, sizeof(e2), "coaps://127.0.0.1:%d", base + 2);
	snprintf(listen, sizeof(listen), "listen = 127.0.0.1:%d", base + 2);
	snprintf(api, sizeof(api), "api = 127.0.0.1:%d", base + 1002);
	char *mk[] = {"mkdir", to, NULL}, *cp[] = {"cp", "-a", from, to, NULL};
	char *rs[] = {"tongban",    "registry", "set",        reg, "--member", "371300",
	              "--endpoint", e1,         "--endpoint", e2,  NULL};
	if (run_sys(mk) != 0 || run_sys(cp) != 0 || edit_conf(conf3, "371300", set, 2) != 0 ||
	    run("tongban", rs) != 0)
		return -1;
	/* signed by every authority of the dev federation, then installed */
	snprintf(sh, sizeof(sh),
	         "cd '%s' && for ca in ca-*; do '%s/tongban' registry sign registry.json"
	         " --key \"$ca/ca.key\" --cert \"$ca/ca.crt\" >/dev/null || exit 1; done &&"
	         " for m in 320300 371300 371300b; do cp registry.json \"$m/registry.json\""
	         " || exit 1; done",
	         dir, bindir);
	char *shargs[] = {"sh", "-c", sh, NULL};
	return run_sys(shargs);
}

/* Starts the pair's second process (its token is the first one's) and
 * waits until it answers; its pid into *n3. */
static int
start_second(const char *dir, int base, char *conf3, const struct tb_buf *tok, pid_t *n3)
{
	char log3[1200];
	struct tb_buf out;
	double deadline = now_s() + 10;
	int rc = 0;

	tb_buf_init(&out);
	snprintf(log3, sizeof(log3), "%s/371300b.log", dir);
	char *a3[] = {"tongban-node", "-c", conf3, NULL};
	*n3 = spawn("tongban-node", a3, log3);
	while (http(base + 1002, (const char *)tok->data, "GET", "/healthz", NULL, 0, &out) !=
	       200) {
		if (lost_port(n3, log3)) {
			rc = PORT_TAKEN;
			break;
		}
		if (now_s() > deadline) {
			fprintf(stderr,
			        "tongban-bench node: the pair's second process did not start "
			        "(see %s)\n",
			        log3);
			rc = 1;
			break;
		}
		usleep(20000);
	}
	tb_buf_free(&out);
	return rc;
}

/* The pair's run on the ports from base; as node_run. */
static int
pair_run(int argc, char **argv, int base, struct pair_results *res)
{
	long total = 20000, per_req = 200, seq = 0;
	char dir[] = "/tmp/tongban-bench.XXXXXX", conf1[1200], conf2[1200], conf3[1200];
	pid_t n1 = -1, n2 = -1, n3 = -1;
	struct tb_buf tok, tok2, out;
	double drain, t0;
	char *sets[17];
	int nsets = 0, rc = 1;

	if (parse_args(argc, argv, per_req, &total, sets, &nsets) != 0)
		return 2;
	sets[nsets++] = pg_journal;
	if (mkdtemp(dir) == NULL)
		return 1;
	tb_buf_init(&tok);
	tb_buf_init(&tok2);
	tb_buf_init(&out);
	if (make_federation(dir, base, sets, nsets, conf1, conf2) != 0 ||
	    make_pair(dir, base, conf3) != 0) {
		fprintf(stderr, "tongban-bench node: the pair's federation failed\n");
		goto out;
	}
	if ((rc = start_nodes(dir, base, conf1, conf2, &n1, &n2, &tok, &tok2)) != 0)
		goto out;
	rc = 1;
	printf("pair: 371300 as two tongban-node processes on one PostgreSQL database, both "
	       "endpoints in the registry, %ld messages to 320300 in %ld-message submissions\n",
	       total, per_req);
	fflush(stdout); /* before the children are made */
	warm_up(base, &tok, &tok2, &seq);
	/* through one process, the second not started yet */
	struct side one[1] = {{base + 1001, &tok2, "320300"}},
	            two[2] = {{base + 1001, &tok2, "320300"}, {base + 1002, &tok2, "320300"}};
	t0 = now_s();
	if (saturate(one, 1, total, per_req, &seq, &drain) != 0)
		goto out;
	res->one_per_s = (double)total / (now_s() - t0);
	if ((rc = start_second(dir, base, conf3, &tok2, &n3)) != 0)
		goto out;
	rc = 1;
	/* its DTLS session to 320300 */
	tb_buf_reset(&out);
	struct tb_buf small;
	tb_buf_init(&small);
	add_cases(&small, 1, &seq, "320300");
	http(base + 1002, (const char *)tok2.data, "POST", "/v1/messages", (const char *)small.data,
	     small.len, &out);
	tb_buf_free(&small);
	usleep(300000);
	t0 = now_s();
	if (saturate(two, 2, total, per_req, &seq, &drain) != 0)
		goto out;
	res->pair_per_s = (double)total / (now_s() - t0);
	printf("one      : %8.0f msgs/s 371300 -> 320300 submitted to one process\n",
	       res->one_per_s);
	printf("pair     : %8.0f msgs/s submitted to both processes, half each (%.2f of one)\n",
	       res->pair_per_s, res->pair_per_s / res->one_per_s);
	printf("{\"pair_one_process_msgs_per_s\":%.0f,\"pair_msgs_per_s\":%.0f,"
	       "\"pair_ratio\":%.3f}\n",
	       res->one_per_s, res->pair_per_s, res->pair_per_s / res->one_per_s);
	rc = 0;
out:
	if (n3 > 0)
		kill(n3, SIGKILL);
	stop_and_clean(n1, n2, dir);
	tb_buf_free(&tok);
	tb_buf_free(&tok2);
	tb_buf_free(&out);
	return rc;
}

/* Ports from a block found free (util/tb_port.h), not a fixed one, so
 * that runs side by side do not collide; a run whose nodes lose a port
 * to another process is made again on a new block (5 tries).  journal:
 * the PostgreSQL pass's journal line, NULL for SQLite's; pair: the
 * pair's run instead (pr). */
static int
node_pass(int argc, char **argv, const char *journal, struct node_results *r, bool pair,
          struct pair_results *pr)
{
	int base, rc = PORT_TAKEN;

	for (int t = 0; t < 5 && rc == PORT_TAKEN; t++) {
		if (tb_port_block(10, 1000, &base) != 0) {
			fprintf(stderr, "tongban-bench node: no free block of ports\n");
			return 1;
		}
		rc = pair ? pair_run(argc, argv, base, pr) : node_run(argc, argv, base, journal, r);
	}
	return rc == PORT_TAKEN ? 1 : rc;
}

int
bench_node(int argc, char **argv)
{
	struct node_results sq, pg;
	struct pair_results pr;
	char *sets[17];
	long total = 20000;
	int nsets, rc;

	if (parse_args(argc, argv, 200, &total, sets, &nsets) != 0)
		return 2;
	if (!pg_mode)
		return node_pass(argc, argv, NULL, &sq, false, NULL);
	/* both journals in one run, one after the other */
	printf("== SQLite journals\n");
	fflush(stdout);
	if ((rc = node_pass(argc, argv, NULL, &sq, false, NULL)) != 0)
		return rc;
	printf("== PostgreSQL journals (%s)\n", pg_journal);
	fflush(stdout);
	if ((rc = node_pass(argc, argv, pg_journal, &pg, false, NULL)) != 0)
		return rc;
	printf("== PostgreSQL against SQLite\n");
	printf("postgresql: %8.0f msgs/s saturated against SQLite's %.0f: %.2f; both ways %.0f "
	       "against %.0f: %.2f\n",
	       pg.msgs_per_s, sq.msgs_per_s, pg.msgs_per_s / sq.msgs_per_s, pg.both_per_s,
	       sq.both_per_s, pg.both_per_s / sq.both_per_s);
	printf("{\"sqlite_msgs_per_s\":%.0f,\"postgresql_msgs_per_s\":%.0f,\"pg_ratio\":%.3f,"
	       "\"sqlite_both_ways_per_s\":%.0f,\"postgresql_both_ways_per_s\":%.0f,"
	       "\"pg_both_ways_ratio\":%.3f}\n",
	       sq.msgs_per_s, pg.msgs_per_s, pg.msgs_per_s / sq.msgs_per_s, sq.both_per_s,
	       pg.both_per_s, pg.both_per_s / sq.both_per_s);
	if (!pair_mode)
		return 0;
	printf("== The pair on PostgreSQL\n");
	fflush(stdout);
	return node_pass(argc, argv, NULL, NULL, true, &pr);
}

/* ---- tongban-bench journal ---- */

/* The journal figures of one node, from `tongban journal stats`. */
struct jstats {
	double inbox, acked, queued, delivered, failed, audit, bytes, free_bytes;
};

static double
json_num(const char *j, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"%s\":", name);
	return (p = strstr(j, key)) == NULL ? -1 : atof(p + strlen(key));
}

static int
journal_stats(const char *journal, struct jstats *st)
{
	char cmd[2600], line[512];
	FILE *f;
	int ok;

	snprintf(cmd, sizeof(cmd), "'%s/tongban' journal stats --journal '%s'", bindir, journal);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	ok = fgets(line, sizeof(line), f) != NULL;
	if (pclose(f) != 0 || !ok)
		return -1;
	st->inbox = json_num(line, "inbox");
	st->acked = json_num(line, "inbound_acked");
	st->queued = json_num(line, "queued");
	st->delivered = json_num(line, "delivered");
	st->failed = json_num(line, "failed");
	st->audit = json_num(line, "audit");
	st->bytes = json_num(line, "bytes");
	st->free_bytes = json_num(line, "free_bytes");
	return st->bytes < 0 ? -1 : 0;
}

/* Acknowledges what port's inbox holds, up to 1,000 at a time, through
 * POST /v1/inbox/ack; the number acknowledged, -1 on failure. */
static long
ack_inbox(int port, const struct tb_buf *tok)
{
	struct tb_buf list, ids, out;
	long n = 0;
	const char *p;

	tb_buf_init(&list);
	tb_buf_init(&ids);
	tb_buf_init(&out);
	if (http(port, (const char *)tok->data, "GET", "/v1/inbox?limit=1000", NULL, 0, &list) !=
	    200) {
		n = -1;
		goto out;
	}
	tb_buf_adds(&ids, "{\"ids\":[");
	/* each message object begins {"seq":N,"id":"..." */
	for (p = (const char *)list.data; (p = strstr(p, "{\"seq\":")) != NULL; p++) {
		const char *id = strstr(p, "\"id\":\"");
		if (id == NULL)
			break;
		tb_buf_printf(&ids, "%s\"%.32s\"", n ? "," : "", id + 6);
		n++;
	}
	tb_buf_adds(&ids, "]}");
	if (n > 0 && (tb_buf_error(&ids) != TB_OK ||
	              http(port, (const char *)tok->data, "POST", "/v1/inbox/ack",
	                   (const char *)ids.data, ids.len, &out) != 200))
		n = -1;
out:
	tb_buf_free(&list);
	tb_buf_free(&ids);
	tb_buf_free(&out);
	return n;
}

/* The collecting city: acknowledges the inbox every 100 ms until killed. */
static pid_t
start_acker(int port, const struct tb_buf *tok)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		long n = ack_inbox(port, tok);
		if (n < 1000)
			usleep(100000);
	}
}

static double
file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (double)sb.st_size : 0;
}

/* Lines in the gzip files of dir (every pruned message is one line). */
static double
archive_lines(const char *dir)
{
	char cmd[1300], line[64];
	FILE *f;
	double n = -1;

	snprintf(cmd, sizeof(cmd), "cat '%s'/*.jsonl.gz 2>/dev/null | gzip -dc | wc -l", dir);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) != NULL)
		n = atof(line);
	pclose(f);
	return n;
}

struct soak {
	long rate, seconds;
	double sent, max_db[2], max_wal[2], t;
};

/* Largest sizes so far of the two journals (db, -wal). */
static void
sample(struct soak *k, char journals[2][1200])
{
	char p[1300];

	for (int i = 0; i < 2; i++) {
		double db = file_size(journals[i]);
		snprintf(p, sizeof(p), "%s-wal", journals[i]);
		double wal = file_size(p);
		k->max_db[i] = db > k->max_db[i] ? db : k->max_db[i];
		k->max_wal[i] = wal > k->max_wal[i] ? wal : k->max_wal[i];
	}
}

/* Submits one request of count messages from a child process, so that
 * the pace does not wait for the node's answer; the child exits 0 on
 * 202. */
static pid_t
submit_async(int port, const struct tb_buf *tok, long count, long *seq)
{
	struct tb_buf body, out;
	pid_t pid;
	long s = *seq;

	*seq += count;
	if ((pid = fork()) != 0)
		return pid;
	tb_buf_init(&body);
	tb_buf_init(&out);
	add_cases(&body, count, &s, "371300");
	if (http(port, (const char *)tok->data, "POST", "/v1/messages", (const char *)body.data,
	         body.len, &out) != 202) {
		fprintf(stderr, "tongban-bench journal: submit failed: %.200s\n", out.data);
		_exit(1);
	}
	_exit(0);
}

#define SUBMITTERS 16

/* Reaps finished submitters of kids[0..*running) (all of them when
 * wait_all); -1 when one failed. */
static int
reap(pid_t *kids, int *running, bool wait_all)
{
	int st, rc = 0;

	for (int i = 0; i < *running;) {
		pid_t r = waitpid(kids[i], &st, wait_all ? 0 : WNOHANG);
		if (r == 0) {
			i++;
			continue;
		}
		if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			rc = -1;
		kids[i] = kids[--(*running)];
	}
	return rc;
}

/* rate messages a second, for seconds, to the side at port, in ten
 * requests a second, each from a child of its own (up to SUBMITTERS at once:
 * beyond that the node is not keeping up, and the pace slips); the
 * sizes sampled every 5 ms. */
static int
soak_run(struct soak *k, int port, const struct tb_buf *tok, long *seq, char journals[2][1200])
{
	double t0 = now_s(), next = t0;
	long per = k->rate / 10 > 0 ? k->rate / 10 : 1;
	pid_t kids[SUBMITTERS];
	int running = 0, rc = 0;

	while (now_s() - t0 < (double)k->seconds && rc == 0) {
		sample(k, journals);
		rc = reap(kids, &running, false);
		if (now_s() < next || running >= SUBMITTERS) {
			usleep(5000);
			continue;
		}
		if ((kids[running] = submit_async(port, tok, per, seq)) < 0) {
			rc = -1;
			break;
		}
		running++;
		k->sent += (double)per;
		next += 0.1;
	}
	if (reap(kids, &running, true) != 0)
		rc = -1;
	k->t = now_s() - t0;
	return rc;
}

static void
journal_usage(void)
{
	fprintf(stderr, "usage: tongban-bench journal [--messages N] [--soak SECONDS --rate N "
	                "--ttl S --retention S [--archive]] [--dir DIR] [--set KEY=VALUE]...\n");
}

struct jopts {
	long messages, soak, rate, ttl, retention;
	bool archive;
	const char *dir;
	char *sets[24];
	int nsets;
	char setbuf[4][64];
};

static int
journal_args(int argc, char **argv, struct jopts *o)
{
	for (int i = 1; i < argc; i++) {
		long *v = NULL;
		if (strcmp(argv[i], "--messages") == 0)
			v = &o->messages;
		else if (strcmp(argv[i], "--soak") == 0)
			v = &o->soak;
		else if (strcmp(argv[i], "--rate") == 0)
			v = &o->rate;
		else if (strcmp(argv[i], "--ttl") == 0)
			v = &o->ttl;
		else if (strcmp(argv[i], "--retention") == 0)
			v = &o->retention;
		if (v != NULL && i + 1 < argc) {
			*v = atol(argv[++i]);
		} else if (strcmp(argv[i], "--archive") == 0) {
			o->archive = true;
		} else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			o->dir = argv[++i];
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && o->nsets < 16 &&
		           strchr(argv[i + 1], '=') != NULL && argv[i + 1][0] != '=') {
			o->sets[o->nsets++] = argv[++i];
		} else {
			journal_usage();
			return 2;
		}
	}
	if (o->messages < 200 || o->messages > 1000000 || o->soak < 0 || o->soak > 600 ||
	    o->rate < 10 || o->rate > 100000 || o->ttl < 1 || o->retention < 1) {
		fprintf(stderr, "tongban-bench journal: --messages 200..1000000, --soak 0..600, "
		                "--rate 10..100000, --ttl and --retention >= 1\n");
		return 2;
	}
	if (o->soak > 0) {
		/* pruning within the run: short retention, a skew of 1 s (the
		 * replay rule's bound), the ttl on every message */
		snprintf(o->setbuf[0], 64, "retention = %ld", o->retention);
		snprintf(o->setbuf[1], 64, "clock_skew = 1");
		snprintf(o->setbuf[2], 64, "archive_dir = %s", o->archive ? "archive" : "");
		for (int i = 0; i < 3; i++)
			o->sets[o->nsets++] = o->setbuf[i];
		case_ttl = o->ttl;
	}
	return 0;
}

/* Bytes per message: the database pages in use before and after
 * `messages` messages one way, each side (no pruning: retention is far
 * off), the receiver's inbox acknowledged as a city would. */
static int
bytes_per_message(const struct jopts *o, int base, const struct tb_buf *tok,
                  const struct tb_buf *tok2, long *seq, char journals[2][1200], double out[2],
                  double audit[2])
{
	struct jstats a0, b0, a1, b1;
	double drain;

	if (journal_stats(journals[0], &a0) != 0 || journal_stats(journals[1], &b0) != 0)
		return -1;
	struct side one[1] = {{base + 1000, tok, "371300"}};
	if (saturate(one, 1, o->messages, 200, seq, &drain) != 0)
		return -1;
	for (double t = now_s(); ack_inbox(base + 1001, tok2) != 0 && now_s() - t < 60;)
		;
	if (journal_stats(journals[0], &a1) != 0 || journal_stats(journals[1], &b1) != 0)
		return -1;
	out[0] = ((a1.bytes - a1.free_bytes) - (a0.bytes - a0.free_bytes)) / (double)o->messages;
	out[1] = ((b1.bytes - b1.free_bytes) - (b0.bytes - b0.free_bytes)) / (double)o->messages;
	audit[0] = (a1.audit - a0.audit) / (double)o->messages;
	audit[1] = (b1.audit - b0.audit) / (double)o->messages;
	return 0;
}

/* After the soak: everything delivered and collected, then one more
 * pruning round; the sizes sampled meanwhile. */
static int
soak_drain(struct soak *k, int base, const struct tb_buf *tok, char journals[2][1200],
           struct jstats *a, struct jstats *b, double wait_s)
{
	double start = now_s();
	struct side one[1] = {{base + 1000, tok, "371300"}};

	do {
		sample(k, journals);
		usleep(200000);
		if (journal_stats(journals[0], a) != 0 || journal_stats(journals[1], b) != 0)
			return -1;
	} while ((delivered_total(one, 1) < k->sent || b->inbox > 0 || now_s() - start < wait_s) &&
	         now_s() - start < 120);
	return 0;
}

/* The run's directory: --dir (made, kept) or a new temporary one. */
static int
work_dir(const char *given, char *tmp, char *dir, size_t cap)
{
	if (given != NULL) {
		snprintf(dir, cap, "%s", given);
		if (mkdir(dir, 0700) != 0) {
			fprintf(stderr, "tongban-bench journal: --dir %s: %s\n", dir,
			        strerror(errno));
			return 1;
		}
		return 0;
	}
	if (mkdtemp(tmp) == NULL)
		return 1;
	snprintf(dir, cap, "%s", tmp);
	return 0;
}

/* The bytes-per-message figures: a line for people, then JSON. */
static void
bpm_report(const struct jopts *o, const double bpm[2], const double apm[2])
{
	printf("journal: %ld messages one way (1 KiB bodies, receipts, audit entries)\n",
	       o->messages);
	printf("bytes    : sender %.0f B/msg (%.1f audit entries), receiver %.0f B/msg "
	       "(%.1f audit entries), database pages in use\n",
	       bpm[0], apm[0], bpm[1], apm[1]);
	printf("{\"messages\":%ld,\"sender_bytes_per_msg\":%.0f,"
	       "\"receiver_bytes_per_msg\":%.0f,\"sender_audit_per_msg\":%.2f,"
	       "\"receiver_audit_per_msg\":%.2f}\n",
	       o->messages, bpm[0], bpm[1], apm[0], apm[1]);
}

/* The soak's figures (archived: the archive lines of each side). */
static void
soak_report(const struct jopts *o, const struct soak *k, const struct jstats *a,
            const struct jstats *b, const double archived[2], double delivered)
{
	printf("journal soak: %.0f messages in %.1f s (%.0f msg/s asked %ld), ttl %ld s, "
	       "retention %ld s%s\n",
	       k->sent, k->t, k->sent / k->t, o->rate, o->ttl, o->retention,
	       o->archive ? ", archived" : "");
	printf("largest  : sender db %.1f MiB wal %.1f MiB, receiver db %.1f MiB wal %.1f MiB\n",
	       k->max_db[0] / 1048576, k->max_wal[0] / 1048576, k->max_db[1] / 1048576,
	       k->max_wal[1] / 1048576);
	printf("left     : sender %.0f outbound rows, receiver %.0f inbound rows; archived %.0f "
	       "and %.0f\n",
	       a->queued + a->delivered + a->failed, b->inbox + b->acked, archived[0], archived[1]);
	printf("{\"sent\":%.0f,\"seconds\":%.1f,\"msgs_per_s\":%.0f,\"sender_max_db\":%.0f,"
	       "\"sender_max_wal\":%.0f,\"receiver_max_db\":%.0f,\"receiver_max_wal\":%.0f,"
	       "\"sender_rows\":%.0f,\"receiver_rows\":%.0f,\"sender_archived\":%.0f,"
	       "\"receiver_archived\":%.0f,\"sender_audit\":%.0f,\"receiver_audit\":%.0f,"
	       "\"sender_delivered\":%.0f}\n",
	       k->sent, k->t, k->sent / k->t, k->max_db[0], k->max_wal[0], k->max_db[1],
	       k->max_wal[1], a->queued + a->delivered + a->failed, b->inbox + b->acked,
	       archived[0], archived[1], a->audit, b->audit, delivered);
}

static int
journal_run(int argc, char **argv, int base)
{
	struct jopts o = {.messages = 5000, .soak = 0, .rate = 1000, .ttl = 6, .retention = 2};
	char tmp[] = "/tmp/tongban-bench.XXXXXX", dir[1024], self[1024], conf1[1200], conf2[1200];
	char journals[2][1200], arch[2][1300];
	struct tb_buf tok, tok2;
	struct soak k;
	struct jstats a, b;
	double bpm[2] = {0, 0}, apm[2] = {0, 0};
	pid_t n1 = -1, n2 = -1, acker = -1;
	long seq = 0;
	int rc;

	if ((rc = journal_args(argc, argv, &o)) != 0)
		return rc;
	rc = 1;
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		return 1;
	self[sl] = '\0';
	snprintf(bindir, sizeof(bindir), "%s", dirname(self));
	if (work_dir(o.dir, tmp, dir, sizeof(dir)) != 0)
		return 1;
	tb_buf_init(&tok);
	tb_buf_init(&tok2);
	memset(&k, 0, sizeof(k));
	if (make_federation(dir, base, o.sets, o.nsets, conf1, conf2) != 0)
		goto out;
	/* dev-federation's node.conf: journal = journal.db, next to it */
	snprintf(journals[0], sizeof(journals[0]), "%s/320300/journal.db", dir);
	snprintf(journals[1], sizeof(journals[1]), "%s/371300/journal.db", dir);
	snprintf(arch[0], sizeof(arch[0]), "%s/320300/archive", dir);
	snprintf(arch[1], sizeof(arch[1]), "%s/371300/archive", dir);
	if ((rc = start_nodes(dir, base, conf1, conf2, &n1, &n2, &tok, &tok2)) != 0) {
		rc = rc == PORT_TAKEN ? PORT_TAKEN : 1;
		goto out;
	}
	rc = 1;
	warm_up(base, &tok, &tok2, &seq);
	if (o.soak == 0) {
		if (bytes_per_message(&o, base, &tok, &tok2, &seq, journals, bpm, apm) != 0)
			goto out;
		bpm_report(&o, bpm, apm);
		rc = 0;
		goto out;
	}
	k.rate = o.rate;
	k.seconds = o.soak;
	if ((acker = start_acker(base + 1001, &tok2)) < 0)
		goto out;
	if (soak_run(&k, base + 1000, &tok, &seq, journals) != 0)
		goto out;
	/* the last messages pruned too: their ttl, the skew, the retention,
	 * and two pruning rounds */
	if (soak_drain(&k, base, &tok, journals, &a, &b,
	               (double)(o.ttl + 1 + o.retention) + (double)o.retention + 2) != 0)
		goto out;
	double delivered = delivered_total((struct side[1]){{base + 1000, &tok, "371300"}}, 1);
	/* the figures of stopped nodes: no pruning round half done */
	kill(acker, SIGKILL);
	waitpid(acker, NULL, 0);
	acker = -1;
	kill(n1, SIGTERM);
	kill(n2, SIGTERM);
	waitpid(n1, NULL, 0);
	waitpid(n2, NULL, 0);
	n1 = n2 = -1;
	if (journal_stats(journals[0], &a) != 0 || journal_stats(journals[1], &b) != 0)
		goto out;
	double la = o.archive ? archive_lines(arch[0]) : 0,
	       lb = o.archive ? archive_lines(arch[1]) : 0;
	soak_report(&o, &k, &a, &b, (double[]){la, lb}, delivered);
	rc = 0;
out:
	if (acker > 0) {
		kill(acker, SIGKILL);
		waitpid(acker, NULL, 0);
	}
	if (o.dir != NULL) {
		/* kept for the caller to look at: only the nodes stop */
		if (n1 > 0)
			kill(n1, SIGTERM);
		if (n2 > 0)
			kill(n2, SIGTERM);
		while (wait(NULL) > 0)
			;
	} else {
		stop_and_clean(n1, n2, dir);
	}
	tb_buf_free(&tok);
	tb_buf_free(&tok2);
	return rc;
}

int bench_journal(int argc, char **argv);

/* As bench_node: ports from a free block, tried again on a new one. */
int
bench_journal(int argc, char **argv)
{
	int base, rc = PORT_TAKEN;

	for (int t = 0; t < 5 && rc == PORT_TAKEN; t++) {
		if (tb_port_block(10, 1000, &base) != 0) {
			fprintf(stderr, "tongban-bench journal: no free block of ports\n");
			return 1;
		}
		rc = journal_run(argc, argv, base);
	}
	return rc == PORT_TAKEN ? 1 : rc;
}
