/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_reginstall.c - `tongban registry install --node CONFIG FILE`: puts
 * a newer registry in place of a node's registry file, atomically, and
 * has the running node apply it (POST /v1/registry/reload on its local
 * API, the registry half of SIGHUP).  The way out of recovery when no
 * hub can hand the node a registry, and how a hub is given a new one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../federation/tb_reg.h"
#include "../federation/tb_trust.h"
#include "../protocol/tb_json.h"
#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"
#include "../node/config.h"

void
registry_install_usage(FILE *f)
{
	fprintf(f, "Usage: tongban registry install --node CONFIG REG\n\n"
	           "Verifies REG against the trust anchor of the node configured in CONFIG\n"
	           "(signatures, threshold, not expired, this node's member listed) and that\n"
	           "its serial is higher than the node's (its registry file and its last good\n"
	           "copy, JOURNAL.registry); then replaces the node's registry file with it\n"
	           "atomically and asks the running node to apply it (POST /v1/registry/reload\n"
	           "on its local API).  Prints one line: what the node did (\"applied\",\n"
	           "\"kept until valid\" for one issued ahead of its clock), or that the node\n"
	           "is not running and reads the file at start.\n"
	           "Exit status: 0 installed, 1 refused (by this check or by the node),\n"
	           "2 usage, 3 I/O error, 4 internal error.\n");
}

/* The serial of the registry in path when it verifies under t (its
 * validity window aside), else 0. */
static uint64_t
held_serial(const char *path, const struct tb_trust *t)
{
	struct tb_buf b;
	struct tb_reg *reg = NULL;
	uint64_t serial = 0;

	tb_buf_init(&b);
	if (tb_file_read(path, TB_REG_MAX_SIZE, &b, NULL) == TB_OK &&
	    (reg = tb_reg_parse(b.data, b.len, NULL)) != NULL &&
	    tb_reg_verify(reg, t, tb_reg_issued(reg), 0, NULL, NULL) == TB_OK)
		serial = tb_reg_serial(reg);
	tb_reg_free(reg);
	tb_buf_free(&b);
	return serial;
}

/* Loads and checks REG for the node; the registry goes to *regp, its
 * bytes to b. */
static int
check_new(const struct tb_config *cfg, const char *path, struct tb_buf *b, struct tb_reg **regp)
{
	struct tb_buf tb;
	struct tb_trust *t = NULL;
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	char gpath[TB_CONF_PATH_MAX + 16];
	int64_t now = (int64_t)time(NULL);
	uint64_t held;
	int rc = EX_TB_OK;

	tb_buf_init(&tb);
	if (tb_file_read(cfg->trust, TB_TRUST_MAX_SIZE, &tb, &d) != TB_OK ||
	    (t = tb_trust_parse(tb.data, tb.len, &d)) == NULL) {
		tb_diag_prefix(&d, cfg->trust);
		rc = cli_fail_diag(&d);
		goto out;
	}
	if (tb_file_read(path, TB_REG_MAX_SIZE, b, &d) != TB_OK ||
	    (reg = tb_reg_parse(b->data, b->len, &d)) == NULL) {
		tb_diag_prefix(&d, path);
		rc = cli_fail_diag(&d);
		goto out;
	}
	/* the window is judged here, with the node's clock_skew: one issued
	 * ahead is kept by the node until it is valid */
	int64_t at = now < tb_reg_issued(reg) ? tb_reg_issued(reg) : now;
	if (tb_reg_verify(reg, t, at, 0, NULL, &d) != TB_OK) {
		tb_diag_prefix(&d, path);
		rc = cli_fail_diag(&d);
		goto out;
	}
	tb_config_last_registry(cfg, gpath, sizeof(gpath));
	held = held_serial(cfg->registry, t);
	if (held_serial(gpath, t) > held)
		held = held_serial(gpath, t);
	if (tb_reg_serial(reg) <= held) {
		rc = cli_fail(EX_TB_REFUSED,
		              "%s: reg.serial-not-newer: serial %llu, the node holds %llu", path,
		              (unsigned long long)tb_reg_serial(reg), (unsigned long long)held);
		goto out;
	}
	if (tb_reg_find_member(reg, cfg->member_id) == TB_REG_NONE) {
		rc = cli_fail(EX_TB_REFUSED,
		              "%s: reg.unknown-member: member %s is not in serial %llu", path,
		              cfg->member_id, (unsigned long long)tb_reg_serial(reg));
		goto out;
	}
	*regp = reg;
	reg = NULL;
out:
	tb_reg_free(reg);
	tb_trust_free(t);
	tb_buf_free(&tb);
	return rc;
}

/* True when something listens on the node's API address. */
static bool
api_up(const struct tb_config *cfg)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1;
	bool up = false;

	snprintf(port, sizeof(port), "%d", cfg->api_port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(cfg->api_host, port, &hints, &res) == 0 && res != NULL &&
	    (fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0)
		up = connect(fd, res->ai_addr, res->ai_addrlen) == 0;
	if (fd >= 0)
		close(fd);
	if (res != NULL)
		freeaddrinfo(res);
	return up;
}

/* A string member of the node's JSON answer ("" when absent). */
static const char *
answer_str(const struct tb_json_doc *doc, const char *key)
{
	const struct tb_json *v = doc ? tb_json_get(tb_json_root(doc), key) : NULL;
	const char *s = v ? tb_json_string(v, NULL) : NULL;

	return s ? s : "";
}

/* Asks the running node to apply the file, and says what it did. */
static int
tell_node(const struct tb_config *cfg, uint64_t serial)
{
	struct tb_buf out;
	struct tb_json_doc *doc = NULL;
	int status = 0, rc;

	tb_buf_init(&out);
	if (!api_up(cfg)) {
		printf("installed serial %llu in %s; the node is not running (it applies the file "
		       "at start)\n",
		       (unsigned long long)serial, cfg->registry);
		rc = EX_TB_OK;
		goto out;
	}
	if ((rc = cli_api_call(cfg, "POST", "/v1/registry/reload", "{}", &status, &out)) !=
	    EX_TB_OK)
		goto out;
	doc = tb_json_parse(out.data, out.len, NULL, NULL);
	if (status == 200 && strcmp(answer_str(doc, "result"), "pending") != 0)
		printf("installed serial %llu in %s; the node applied it (state %s)\n",
		       (unsigned long long)serial, cfg->registry, answer_str(doc, "state"));
	else if (status == 202)
		printf("installed serial %llu in %s; the node keeps it until it is valid: %s\n",
		       (unsigned long long)serial, cfg->registry, answer_str(doc, "detail"));
	else if (status == 409)
		rc = cli_fail(EX_TB_REFUSED, "installed in %s, but the node refused it: %s: %s",
		              cfg->registry, answer_str(doc, "error"), answer_str(doc, "detail"));
	else
		rc =
		    cli_fail(EX_TB_IO, "installed in %s; the node answered %d: %.*s", cfg->registry,
		             status, (int)(out.len > 200 ? 200 : out.len), (const char *)out.data);
out:
	tb_json_doc_free(doc);
	tb_buf_free(&out);
	return rc;
}

int
registry_install(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"node", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
	const char *node = NULL;
	struct tb_config cfg;
	struct tb_buf b;
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': node = optarg; break;
		case 'h': registry_install_usage(stdout); return EX_TB_OK;
		default: return cli_usage_error("unknown option");
		}
	}
	if (node == NULL)
		return cli_usage_error("--node CONFIG is required");
	if (argc - optind != 1)
		return cli_usage_error("exactly one REG file expected");
	if (tb_config_load(node, &cfg, &d) != TB_OK)
		return cli_fail(d.code == TB_E_IO ? EX_TB_IO : EX_TB_USAGE, "%s", d.detail);
	tb_buf_init(&b);
	if ((rc = check_new(&cfg, argv[optind], &b, &reg)) != EX_TB_OK)
		goto out;
	if (tb_file_write(cfg.registry, b.data, b.len, 0644, 0, &d) != TB_OK) {
		rc = cli_fail_diag(&d);
		goto out;
	}
	rc = tell_node(&cfg, tb_reg_serial(reg));
out:
	tb_reg_free(reg);
	tb_buf_free(&b);
	return rc;
}
