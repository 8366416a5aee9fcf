/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_node.c - commands that talk to a running node or read its files:
 * `tongban send`, `tongban status`, `tongban inbox`, `tongban reply`,
 * `tongban peers` (through the local HTTP API named in the node's config); `tongban audit` is in
 * cli_audit.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"
#include "../node/config.h"
#include "../node/journal.h"

#define HTTP_TIMEOUT_MS 30000

/* Writes the whole request to fd. */
static int
write_all(int fd, const struct tb_buf *req)
{
	for (size_t off = 0; off < req->len;) {
		ssize_t w = write(fd, req->data + off, req->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			return cli_fail(EX_TB_IO, "node API: %s", strerror(errno));
		}
		off += (size_t)w;
	}
	return EX_TB_OK;
}

/* One HTTP/1.0 request to the node's local API; the body of the answer
 * goes to out, its status to *status. */
static int
api_call(const struct tb_config *cfg, const char *method, const char *path, const char *body,
         int *status, struct tb_buf *out)
{
	struct tb_buf req, resp, tok;
	struct tb_diag d;
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, rc = EX_TB_IO;

	tb_buf_init(&req);
	tb_buf_init(&resp);
	tb_buf_init(&tok);
	if (tb_file_read(cfg->api_token_file, 1024, &tok, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	tok.len = strcspn((const char *)tok.data, "\r\n");
	snprintf(port, sizeof(port), "%d", cfg->api_port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(cfg->api_host, port, &hints, &res) != 0 || res == NULL) {
		rc = cli_fail(EX_TB_IO, "cannot resolve %s", cfg->api_host);
		goto out;
	}
	if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		rc = cli_fail(EX_TB_IO, "node API at %s:%d: %s (is tongban-node running?)",
		              cfg->api_host, cfg->api_port, strerror(errno));
		goto out;
	}
	tb_buf_printf(&req, "%s %s HTTP/1.0\r\nHost: %s\r\nAuthorization: Bearer %.*s\r\n", method,
	              path, cfg->api_host, (int)tok.len, tok.data);
	if (body != NULL)
		tb_buf_printf(&req,
		              "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		              strlen(body), body);
	else
		tb_buf_adds(&req, "\r\n");
	if (tb_buf_error(&req) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = write_all(fd, &req)) != EX_TB_OK)
		goto out;
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t r;
		if (poll(&pfd, 1, HTTP_TIMEOUT_MS) <= 0) {
			rc = cli_fail(EX_TB_IO, "node API: no answer in %d s",
			              HTTP_TIMEOUT_MS / 1000);
			goto out;
		}
		if (tb_buf_reserve(&resp, 4096) != TB_OK)
			goto out;
		r = read(fd, resp.data + resp.len, 4096);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = cli_fail(EX_TB_IO, "node API: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		resp.len += (size_t)r;
		resp.data[resp.len] = '\0';
		if (resp.len > (16u << 20)) {
			rc = cli_fail(EX_TB_IO, "node API: answer too large");
			goto out;
		}
	}
	const char *hdr_end = strstr((const char *)resp.data, "\r\n\r\n");
	if (resp.len < 12 || strncmp((const char *)resp.data, "HTTP/1.", 7) != 0 ||
	    hdr_end == NULL) {
		rc = cli_fail(EX_TB_IO, "node API: malformed HTTP answer");
		goto out;
	}
	*status = atoi((const char *)resp.data + 9);
	if (tb_buf_add(out, hdr_end + 4,
	               resp.len - (size_t)(hdr_end + 4 - (const char *)resp.data)) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	rc = EX_TB_OK;
out:
	if (res != NULL)
		freeaddrinfo(res);
	if (fd >= 0)
		close(fd);
	tb_buf_free(&req);
	tb_buf_free(&resp);
	tb_buf_wipe(&tok);
	return rc;
}

int
cli_api_call(const struct tb_config *cfg, const char *method, const char *path, const char *body,
             int *status, struct tb_buf *out)
{
	return api_call(cfg, method, path, body, status, out);
}

static int
load_cfg(const char *path, struct tb_config *cfg)
{
	struct tb_diag d;

	if (path == NULL)
		return cli_usage_error("--node CONFIG is required");
	if (tb_config_load(path, cfg, &d) != TB_OK)
		return cli_fail(d.code == TB_E_IO ? EX_TB_IO : EX_TB_USAGE, "%s", d.detail);
	return EX_TB_OK;
}

/* Prints the answer; non-2xx answers become a one-line error. */
static int
finish(int status, struct tb_buf *out)
{
	if (status >= 200 && status < 300) {
		fwrite(out->data, 1, out->len, stdout);
		fputc('\n', stdout);
		return EX_TB_OK;
	}
	return cli_fail(status >= 500 ? EX_TB_IO : EX_TB_REFUSED, "node answered %d: %s", status,
	                out->len ? (const char *)out->data : "");
}

/* True when s (NULL allowed) can go between JSON quotes as is. */
static bool
json_safe(const char *s)
{
	for (; s != NULL && *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return false;
	return true;
}

static void
send_usage(FILE *f)
{
	fprintf(f,
	        "Usage: tongban send --node CONFIG (--to ID | --region CODE) --type TYPE\n"
	        "                    [--service CODE] [--corr ID] [--body FILE] [--ttl SECONDS]\n"
	        "Submits a message through the node's local API; prints its id once the\n"
	        "node has journalled it.  With --region instead of --to the node routes it\n"
	        "to the member that serves --service for that region.\n");
}

int
cmd_send(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"node", required_argument, NULL, 'n'}, {"to", required_argument, NULL, 't'},
	    {"type", required_argument, NULL, 'y'}, {"service", required_argument, NULL, 's'},
	    {"corr", required_argument, NULL, 'c'}, {"body", required_argument, NULL, 'b'},
	    {"ttl", required_argument, NULL, 'l'},  {"region", required_argument, NULL, 'g'},
	    {"help", no_argument, NULL, 'h'},       {0, 0, 0, 0}};
	const char *node = NULL, *to = NULL, *type = NULL, *svc = NULL, *corr = NULL, *bodyf = NULL,
	           *region = NULL;
	long long ttl = 0;
	struct tb_config cfg;
	struct tb_buf body, req, out;
	struct tb_diag d;
	int c, rc, status = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 't': to = optarg; break;
		case 'y': type = optarg; break;
		case 's': svc = optarg; break;
		case 'c': corr = optarg; break;
		case 'b': bodyf = optarg; break;
		case 'g': region = optarg; break;
		case 'l':
			if (cli_parse_i64(optarg, &ttl) != 0 || ttl < 1)
				return cli_usage_error(
				    "--ttl must be a positive number of seconds");
			break;
		case 'h': send_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (type == NULL || (to == NULL && (region == NULL || svc == NULL)))
		return cli_usage_error("--type and --to (or --service with --region) are required");
	if ((rc = load_cfg(node, &cfg)) != EX_TB_OK)
		return rc;
	tb_buf_init(&body);
	tb_buf_init(&req);
	tb_buf_init(&out);
	if (bodyf != NULL && tb_file_read(bodyf, 60000, &body, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	/* the ids and codes are checked by the node; quote-safety here */
	if (!json_safe(to) || !json_safe(type) || !json_safe(svc) || !json_safe(corr) ||
	    !json_safe(region)) {
		rc = cli_usage_error(
		    "arguments may not contain quotes, backslashes or control characters");
		goto out;
	}
	tb_buf_printf(&req, "{\"type\":\"%s\"", type);
	if (to)
		tb_buf_printf(&req, ",\"to\":\"%s\"", to);
	if (region)
		tb_buf_printf(&req, ",\"region\":\"%s\"", region);
	if (svc)
		tb_buf_printf(&req, ",\"service\":\"%s\"", svc);
	if (corr)
		tb_buf_printf(&req, ",\"corr\":\"%s\"", corr);
	if (ttl)
		tb_buf_printf(&req, ",\"ttl\":%lld", ttl);
	if (bodyf)
		tb_buf_printf(&req, ",\"body\":%.*s", (int)body.len, body.data);
	tb_buf_addc(&req, '}');
	if (tb_buf_error(&req) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = api_call(&cfg, "POST", "/v1/messages", (const char *)req.data, &status, &out)) !=
	    EX_TB_OK)
		goto out;
	if (status == 202) {
		const char *p = strstr((const char *)out.data, "\"id\":\"");
		if (p != NULL) {
			printf("%.32s\n", p + 6);
			goto out;
		}
	}
	rc = finish(status, &out);
out:
	tb_buf_free(&body);
	tb_buf_free(&req);
	tb_buf_free(&out);
	return rc;
}

/* True when the JSON answer in out has "state": want. */
static bool
state_is(const struct tb_buf *out, const char *want)
{
	cJSON *doc = cJSON_ParseWithLength((const char *)out->data, out->len);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "state");
	bool is = cJSON_IsString(st) && strcmp(st->valuestring, want) == 0;

	cJSON_Delete(doc);
	return is;
}

int
cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"node", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
	const char *node = NULL;
	struct tb_config cfg;
	struct tb_buf out;
	char path[128];
	int c, rc, status = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'n') {
			node = optarg;
		} else if (c == 'h') {
			printf(
			    "Usage: tongban status --node CONFIG ID\n"
			    "Prints the delivery status of outbound message ID (queued, delivered\n"
			    "with its receipt, or failed with the reason) as JSON.\n"
			    "Exit status: 0 queued or delivered, 1 failed (or the node refused\n"
			    "the request: unknown id), 2 usage, 3 I/O (node not reachable).\n");
			return EX_TB_OK;
		} else {
			return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1 || strlen(argv[optind]) != 32 ||
	    strspn(argv[optind], "0123456789abcdef") != 32)
		return cli_usage_error("one message id (32 hex digits) expected");
	if ((rc = load_cfg(node, &cfg)) != EX_TB_OK)
		return rc;
	snprintf(path, sizeof(path), "/v1/messages/%s", argv[optind]);
	tb_buf_init(&out);
	if ((rc = api_call(&cfg, "GET", path, NULL, &status, &out)) == EX_TB_OK)
		rc = finish(status, &out);
	/* a message the node gave up on is a refusal: scripts see it */
	if (rc == EX_TB_OK && state_is(&out, "failed"))
		rc = EX_TB_REFUSED;
	tb_buf_free(&out);
	return rc;
}

int
cmd_inbox(int argc, char **argv)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
	                                     {"ack", required_argument, NULL, 'a'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *node = NULL, *ack = NULL;
	struct tb_config cfg;
	struct tb_buf out;
	char path[128];
	int c, rc, status = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'a': ack = optarg; break;
		case 'h':
			printf(
			    "Usage: tongban inbox --node CONFIG [--ack ID]\n"
			    "Lists received messages not yet acknowledged (JSON), or acknowledges\n"
			    "one so it is not listed again.\n");
			return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (ack != NULL && (strlen(ack) != 32 || strspn(ack, "0123456789abcdef") != 32))
		return cli_usage_error("--ack needs a message id (32 hex digits)");
	if ((rc = load_cfg(node, &cfg)) != EX_TB_OK)
		return rc;
	tb_buf_init(&out);
	if (ack != NULL) {
		snprintf(path, sizeof(path), "/v1/inbox/%s/ack", ack);
		rc = api_call(&cfg, "POST", path, "{}", &status, &out);
	} else {
		rc = api_call(&cfg, "GET", "/v1/inbox?limit=1000", NULL, &status, &out);
	}
	if (rc == EX_TB_OK)
		rc = finish(status, &out);
	tb_buf_free(&out);
	return rc;
}

static void
reply_usage(FILE *f)
{
	fprintf(f, "Usage: tongban reply --node CONFIG --type TYPE [--service CODE] [--body FILE]\n"
	           "                     [--ttl SECONDS] ID\n"
	           "Answers received message ID (from `tongban inbox`) through the node's local\n"
	           "API: a new message to ID's sender, with corr ID and, unless --service is\n"
	           "given, ID's service.  Prints the answer's id once the node has journalled\n"
	           "it; `tongban status` follows its delivery.\n"
	           "Exit status: 0 queued, 1 refused (unknown ID, a type or body the flow does\n"
	           "not allow, node revoked), 2 usage, 3 I/O (node not reachable).\n");
}

int
cmd_reply(int argc, char **argv)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
	                                     {"type", required_argument, NULL, 'y'},
	                                     {"service", required_argument, NULL, 's'},
	                                     {"body", required_argument, NULL, 'b'},
	                                     {"ttl", required_argument, NULL, 'l'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *node = NULL, *type = NULL, *svc = NULL, *bodyf = NULL, *id;
	long long ttl = 0;
	struct tb_config cfg;
	struct tb_buf body, req, out;
	struct tb_diag d;
	char path[128];
	int c, rc, status = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'y': type = optarg; break;
		case 's': svc = optarg; break;
		case 'b': bodyf = optarg; break;
		case 'l':
			if (cli_parse_i64(optarg, &ttl) != 0 || ttl < 1)
				return cli_usage_error(
				    "--ttl must be a positive number of seconds");
			break;
		case 'h': reply_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (argc - optind != 1 || strlen(argv[optind]) != 32 ||
	    strspn(argv[optind], "0123456789abcdef") != 32)
		return cli_usage_error("one received message id (32 hex digits) expected");
	id = argv[optind];
	if (type == NULL)
		return cli_usage_error("--type is required");
	if (!json_safe(type) || !json_safe(svc))
		return cli_usage_error(
		    "arguments may not contain quotes, backslashes or control characters");
	if ((rc = load_cfg(node, &cfg)) != EX_TB_OK)
		return rc;
	tb_buf_init(&body);
	tb_buf_init(&req);
	tb_buf_init(&out);
	if (bodyf != NULL && tb_file_read(bodyf, 60000, &body, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	tb_buf_printf(&req, "{\"type\":\"%s\"", type);
	if (svc)
		tb_buf_printf(&req, ",\"service\":\"%s\"", svc);
	if (ttl)
		tb_buf_printf(&req, ",\"ttl\":%lld", ttl);
	if (bodyf)
		tb_buf_printf(&req, ",\"body\":%.*s", (int)body.len, body.data);
	tb_buf_addc(&req, '}');
	if (tb_buf_error(&req) != TB_OK) {
		rc = cli_fail(EX_TB_INTERNAL, "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/inbox/%s/reply", id);
	if ((rc = api_call(&cfg, "POST", path, (const char *)req.data, &status, &out)) != EX_TB_OK)
		goto out;
	if (status == 202) {
		const char *p = strstr((const char *)out.data, "\"id\":\"");
		if (p != NULL) {
			printf("%.32s\n", p + 6);
			goto out;
		}
	}
	rc = finish(status, &out);
out:
	tb_buf_free(&body);
	tb_buf_free(&req);
	tb_buf_free(&out);
	return rc;
}

/* ---- tongban peers ---- */

static void
peers_usage(FILE *f)
{
	fprintf(f, "Usage: tongban peers --node CONFIG [--json]\n"
	           "Lists every member of the registry the node has in force, with what the\n"
	           "node knows of reaching it (GET /v1/peers): registry status, endpoint (or\n"
	           "the hub it is reached through), last DTLS handshake, last successful\n"
	           "exchange, outbound messages queued to it, and the circuit (closed,\n"
	           "backoff, open or half-open, with the wait before the next attempt).\n"
	           "--json prints the API's JSON as it came.\n"
	           "Exit status: 0 listed, 1 the node refused the request, 2 usage, 3 I/O\n"
	           "(node not reachable).\n");
}

/* "never", or how long before now t was: "42s", "17m", "5h", "3d". */
static void
age_of(const cJSON *t, double now, char *out, size_t len)
{
	double a;

	if (!cJSON_IsNumber(t)) {
		snprintf(out, len, "never");
		return;
	}
	a = now - t->valuedouble;
	if (a < 0)
		a = 0;
	if (a < 120)
		snprintf(out, len, "%.0fs ago", a);
	else if (a < 7200)
		snprintf(out, len, "%.0fm ago", a / 60);
	else if (a < 172800)
		snprintf(out, len, "%.0fh ago", a / 3600);
	else
		snprintf(out, len, "%.0fd ago", a / 86400);
}

static const char *
str_or(const cJSON *o, const char *key, const char *dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* One row of the table for peer p. */
static void
peers_row(const cJSON *p, double now)
{
	const cJSON *eps = cJSON_GetObjectItemCaseSensitive(p, "endpoints");
	const char *id = str_or(p, "id", "?"), *hop = str_or(p, "next_hop", id);
	char ep[128], hs[24], ok[24], circ[40];
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(p, "queued");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "backoff_s");

	if (cJSON_GetArraySize(eps) > 0 && cJSON_IsString(cJSON_GetArrayItem(eps, 0)))
		snprintf(ep, sizeof(ep), "%s", cJSON_GetArrayItem(eps, 0)->valuestring);
	else if (strcmp(hop, id) != 0)
		snprintf(ep, sizeof(ep), "via %s", hop);
	else
		snprintf(ep, sizeof(ep), "-");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "self"))) {
		printf("%-8s %-20.20s %-9s %-28s %-9s %-9s %6s  %s\n", id, str_or(p, "name", ""),
		       str_or(p, "status", "?"), ep, "-", "-", "-", "(this node)");
		return;
	}
	age_of(cJSON_GetObjectItemCaseSensitive(p, "last_handshake"), now, hs, sizeof(hs));
	age_of(cJSON_GetObjectItemCaseSensitive(p, "last_success"), now, ok, sizeof(ok));
	if (cJSON_IsNumber(b) && b->valuedouble > 0)
		snprintf(circ, sizeof(circ), "%s (%.0fs)", str_or(p, "circuit", "?"),
		         b->valuedouble + 0.5);
	else
		snprintf(circ, sizeof(circ), "%s", str_or(p, "circuit", "?"));
	printf("%-8s %-20.20s %-9s %-28s %-9s %-9s %6.0f  %s\n", id, str_or(p, "name", ""),
	       str_or(p, "status", "?"), ep, hs, ok, cJSON_IsNumber(q) ? q->valuedouble : 0.0,
	       circ);
}

/* The table of GET /v1/peers' answer (out). */
static int
peers_table(const struct tb_buf *out)
{
	cJSON *doc = cJSON_ParseWithLength((const char *)out->data, out->len), *p;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "peers");
	const cJSON *now = cJSON_GetObjectItemCaseSensitive(doc, "now");

	if (!cJSON_IsArray(arr) || !cJSON_IsNumber(now)) {
		cJSON_Delete(doc);
		return cli_fail(EX_TB_IO, "node API: malformed answer to GET /v1/peers");
	}
	printf("%s (registry serial %.0f, %s, state %s)\n", str_or(doc, "member", "?"),
	       cJSON_GetObjectItemCaseSensitive(doc, "serial")
	           ? cJSON_GetObjectItemCaseSensitive(doc, "serial")->valuedouble
	           : 0.0,
	       str_or(doc, "federation", "?"), str_or(doc, "state", "?"));
	printf("%-8s %-20s %-9s %-28s %-9s %-9s %6s  %s\n", "MEMBER", "NAME", "STATUS", "ENDPOINT",
	       "HANDSHAKE", "SUCCESS", "QUEUED", "CIRCUIT");
	cJSON_ArrayForEach(p, arr) peers_row(p, now->valuedouble);
	cJSON_Delete(doc);
	return EX_TB_OK;
}

int
cmd_peers(int argc, char **argv)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
	                                     {"json", no_argument, NULL, 'J'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *node = NULL;
	bool json = false;
	struct tb_config cfg;
	struct tb_buf out;
	int c, rc, status = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'J': json = true; break;
		case 'h': peers_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if ((rc = load_cfg(node, &cfg)) != EX_TB_OK)
		return rc;
	tb_buf_init(&out);
	if ((rc = api_call(&cfg, "GET", "/v1/peers", NULL, &status, &out)) != EX_TB_OK)
		goto out;
	if (json || status != 200)
		rc = finish(status, &out);
	else
		rc = peers_table(&out);
out:
	tb_buf_free(&out);
	return rc;
}
