/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_node.c - commands that talk to a running node or read its files:
 * `tongban send`, `tongban status`, `tongban inbox` (through the local
 * HTTP API named in the node's config); `tongban audit` is in cli_audit.c.
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
			    "with its receipt, or failed with the reason) as JSON.\n");
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
