/* config.c - the node's configuration keys: one table, read by the
 * schema engine (protocol/tb_schema.h) for start-up, -n and SIGHUP. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../certs/tb_cert.h"
#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_trust.h"
#include "../protocol/tb_schema.h"
#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"

/* field f of struct tb_config: its offset and capacity */
#define F(f) .off = offsetof(struct tb_config, f), .size = sizeof(((struct tb_config *)0)->f)
#define HP(h, p) F(h), .off2 = offsetof(struct tb_config, p), .min = 1, .max = 65535
#define REQ .flags = TB_CONF_REQUIRED
#define RELOAD .flags = TB_CONF_RELOAD
#define FILE_REQ .flags = TB_CONF_REQUIRED | TB_CONF_FILE
#define FILE_OPT .flags = TB_CONF_FILE

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const struct tb_conf_key keys[] = {
    {"member_id", TB_CONF_MEMBER, REQ, F(member_id), .help = "this node's member id (6 digits)"},
    {"listen", TB_CONF_HOSTPORT, HP(listen_host, listen_port), .def = "127.0.0.1:5684",
     .help = "CoAP/DTLS address HOST:PORT"},
    {"cert", TB_CONF_PATH, FILE_REQ, F(cert), .help = "node certificate PEM (with its CA chain)"},
    {"key", TB_CONF_PATH, FILE_REQ, F(key), .help = "node private key PEM (P-256)"},
    {"sign_key", TB_CONF_PATH, FILE_OPT, F(sign_key), .def = "",
     .help = "separate message-signing key (default: key)"},
    {"root", TB_CONF_PATH, FILE_REQ, F(root),
     .help = "federation root CA PEM (may add the province CAs)"},
    {"trust", TB_CONF_PATH, FILE_REQ, F(trust), .help = "trust anchor (trust.json)"},
    {"registry", TB_CONF_PATH, FILE_REQ, F(registry), .help = "registry file, kept current"},
    {"journal", TB_CONF_PATH, F(journal), .def = "journal.db",
     .help = "SQLite journal file (created if absent)"},
    {"api", TB_CONF_HOSTPORT, HP(api_host, api_port), .def = "127.0.0.1:8080",
     .check = tb_conf_check_loopback, .help = "local HTTP API address HOST:PORT (loopback only)"},
    {"api_token_file", TB_CONF_PATH, FILE_OPT, F(api_token_file), .def = "api.token",
     .help = "file holding the local API bearer token"},
    {"registry_upstream", TB_CONF_MEMBER, F(registry_upstream), .def = "",
     .help = "member id whose /fed/registry this node observes (its hub)"},
    {"private_endpoints", TB_CONF_PATH, FILE_OPT, F(private_endpoints), .def = "",
     .help = "hub: file of \"MEMBER_ID coaps://HOST:PORT\" lines for members it alone reaches"},
    {"responder", TB_CONF_PATH, FILE_OPT, F(responder), .def = "",
     .help = "fixtures file: answer requests automatically (reference responder)"},
    {"webhook", TB_CONF_STR, F(webhook), .def = "", .check = tb_conf_check_loopback_url,
     .help = "push received messages to http://127.0.0.1:PORT/PATH (2xx acknowledges)"},
    {"log_level", TB_CONF_ENUM, RELOAD, F(log_level), .words = log_levels, .def = "info",
     .help = "debug, info, warn or error"},
    {"max_message_size", TB_CONF_INT, RELOAD, F(max_message_size), .min = 1024, .max = 4194304,
     .def = "262144", .help = "largest request body (a batch of envelopes), bytes"},
    {"clock_skew", TB_CONF_INT, RELOAD, F(clock_skew), .min = 0, .max = 3600, .def = "300",
     .help = "allowed clock skew, seconds"},
    {"retry_min_ms", TB_CONF_INT, RELOAD, F(retry_min_ms), .min = 10, .max = 600000, .def = "200",
     .help = "first retry delay (<= retry_max_ms), ms"},
    {"retry_max_ms", TB_CONF_INT, RELOAD, F(retry_max_ms), .min = 100, .max = 3600000,
     .def = "60000", .help = "largest retry delay, ms"},
    {"batch_max", TB_CONF_INT, RELOAD, F(batch_max), .min = 1, .max = 256, .def = "128",
     .help = "envelopes carried in one exchange at most"},
    {"deflate", TB_CONF_BOOL, RELOAD, F(deflate), .def = "yes",
     .help = "send exchanges deflate-compressed (11050); no: plain JSON"},
    {"peer_sessions", TB_CONF_INT, F(peer_sessions), .min = 1, .max = TB_PEER_SESSIONS_MAX,
     .def = "32", .help = "DTLS sessions to each peer (one exchange in flight on each)"},
    {"answer_timeout", TB_CONF_INT, F(answer_timeout), .min = 1, .max = 600, .def = "30",
     .help = "an exchange without an answer is tried again after this, seconds"},
    {"breaker_open_ms", TB_CONF_INT, RELOAD, F(breaker_open_ms), .min = 100, .max = 600000,
     .def = "10000", .help = "a peer that failed 5 exchanges in a row rests this long, ms"},
    {"retention", TB_CONF_INT, RELOAD, F(retention), .min = 1, .max = 3650 * 86400,
     .def = "2592000", .help = "finished messages are pruned from the journal after this, s"},
    {"archive_dir", TB_CONF_PATH, RELOAD, F(archive_dir), .def = "",
     .help = "archive pruned messages here first (gzip JSON lines; empty: drop)"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The keys that must agree with each other. */
static bool
cross(const void *rec, const char *names[2], char *why, size_t whylen)
{
	const struct tb_config *c = rec;

	if (c->retry_min_ms > c->retry_max_ms) {
		names[0] = "retry_min_ms";
		names[1] = "retry_max_ms";
		snprintf(why, whylen, "retry_min_ms (%lld) is greater than retry_max_ms (%lld)",
		         (long long)c->retry_min_ms, (long long)c->retry_max_ms);
		return false;
	}
	return true;
}

static const struct tb_conf_table table = {keys, NKEYS, cross};

const struct tb_conf_table *
tb_config_table(void)
{
	return &table;
}

void
tb_config_describe(FILE *f)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct tb_conf_key *k = &keys[i];
		fprintf(f, "  %-18s %s", k->name, k->help);
		if (k->type == TB_CONF_INT)
			fprintf(f, ", %lld..%lld", (long long)k->min, (long long)k->max);
		if (k->def == NULL)
			fprintf(f, " (required)");
		else if (*k->def != '\0')
			fprintf(f, " [%s]", k->def);
		fprintf(f, "%s\n", k->flags & TB_CONF_RELOAD ? " (SIGHUP)" : "");
	}
}

/* Reads path into cfg; lines as tb_conf_parse's (NULL allowed). */
static int
load(const char *path, struct tb_config *cfg, unsigned *lines, struct tb_diag *d)
{
	struct tb_buf b;
	char dir[TB_CONF_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: path too long", path);
	tb_buf_init(&b);
	if ((rc = tb_file_read(path, 1 << 20, &b, d)) == TB_OK)
		rc = tb_conf_parse(&table, path, dir, (const char *)b.data, b.len, cfg, lines, d);
	tb_buf_free(&b);
	return rc;
}

int
tb_config_load(const char *path, struct tb_config *cfg, struct tb_diag *d)
{
	return load(path, cfg, NULL, d);
}

/* "path:line: key: " before d's message (no line for a default). */
static int
refuse(struct tb_diag *d, int code, const char *path, unsigned line, const char *key,
       const char *why)
{
	if (line > 0)
		return tb_diag_set(d, code, TB_DIAG_NOPOS, "%s:%u: %s: %s", path, line, key, why);
	return tb_diag_set(d, code, TB_DIAG_NOPOS, "%s: %s: %s", path, key, why);
}

static unsigned
line_of(const unsigned *lines, const char *name)
{
	const struct tb_conf_key *k = tb_conf_find(&table, name, strlen(name));
	return k != NULL ? lines[k - keys] : 0;
}

/* The DTLS identity: key and sign_key load, cert certifies key for
 * member_id, root is a CA certificate. */
static int
check_identity(const char *path, const struct tb_config *c, const unsigned *lines,
               struct tb_diag *d)
{
	struct tb_key *key = NULL, *sign = NULL;
	struct tb_cert *cert = NULL, *root = NULL;
	uint8_t kid[TB_KEYID_LEN], cid[TB_KEYID_LEN];
	char id[TB_MEMBER_ID_MAX], why[300];
	const char *bad = NULL;
	int rc = TB_E_ARG;

	if ((key = tb_key_load(c->key, NULL, d)) == NULL)
		bad = "key";
	else if (c->sign_key[0] != '\0' && (sign = tb_key_load(c->sign_key, NULL, d)) == NULL)
		bad = "sign_key";
	else if ((cert = tb_cert_load(c->cert, d)) == NULL)
		bad = "cert";
	else if ((root = tb_cert_load(c->root, d)) == NULL)
		bad = "root";
	if (bad != NULL) {
		snprintf(why, sizeof(why), "%s", d->detail[0] ? d->detail : tb_err_str(d->code));
		rc = refuse(d, d->code, path, line_of(lines, bad), bad, why);
		goto out;
	}
	tb_key_id(key, kid);
	tb_cert_key_id(cert, cid);
	if (memcmp(kid, cid, sizeof(kid)) != 0)
		rc = refuse(d, TB_E_ARG, path, line_of(lines, "cert"), "cert",
		            "does not certify the key of 'key'");
	else if (tb_cert_member_id(cert, id) != TB_OK || strcmp(id, c->member_id) != 0)
		rc = refuse(d, TB_E_ARG, path, line_of(lines, "cert"), "cert",
		            "is not the certificate of member_id");
	else if (!tb_cert_is_ca(root))
		rc = refuse(d, TB_E_ARG, path, line_of(lines, "root"), "root",
		            "is not a CA certificate");
	else
		rc = TB_OK;
out:
	tb_cert_free(root);
	tb_cert_free(cert);
	tb_key_free(sign);
	tb_key_free(key);
	return rc;
}

/* d's failure as the why of key `name` (it names the file itself). */
static int
refuse_diag(struct tb_diag *d, const char *path, const unsigned *lines, const char *name)
{
	char why[300];

	tb_diag_format(d, why, sizeof(why));
	return refuse(d, d->code, path, line_of(lines, name), name, why);
}

/* The trust anchor and the registry parse, the registry verifies
 * against the trust anchor now and lists member_id. */
static int
check_documents(const char *path, const struct tb_config *c, const unsigned *lines,
                struct tb_diag *d)
{
	struct tb_trust *trust = NULL;
	struct tb_reg *reg = NULL;
	struct tb_buf b;
	int rc;

	tb_buf_init(&b);
	if ((rc = tb_file_read(c->trust, 1 << 20, &b, d)) != TB_OK ||
	    (trust = tb_trust_parse(b.data, b.len, d)) == NULL) {
		rc = refuse_diag(d, path, lines, "trust");
		goto out;
	}
	tb_buf_reset(&b);
	if ((rc = tb_file_read(c->registry, TB_REG_MAX_SIZE, &b, d)) != TB_OK ||
	    (reg = tb_reg_parse(b.data, b.len, d)) == NULL ||
	    (rc = tb_reg_verify(reg, trust, (int64_t)time(NULL), 0, NULL, d)) != TB_OK)
		rc = refuse_diag(d, path, lines, "registry");
	else if (tb_reg_find_member(reg, c->member_id) == TB_REG_NONE)
		rc = refuse(d, TB_E_ARG, path, line_of(lines, "member_id"), "member_id",
		            "not a member of the registry");
out:
	tb_reg_free(reg);
	tb_trust_free(trust);
	tb_buf_free(&b);
	return rc;
}

int
tb_config_check(const char *path, struct tb_diag *d)
{
	struct tb_config c;
	unsigned lines[NKEYS];
	char why[TB_CONF_PATH_MAX + 64];
	int rc;

	if ((rc = load(path, &c, lines, d)) != TB_OK)
		return rc;
	for (size_t i = 0; i < NKEYS; i++) {
		const char *file = (const char *)&c + keys[i].off;
		if (!(keys[i].flags & TB_CONF_FILE) || file[0] == '\0' || access(file, R_OK) == 0)
			continue;
		snprintf(why, sizeof(why), "cannot read %s: %s", file, strerror(errno));
		return refuse(d, TB_E_IO, path, lines[i], keys[i].name, why);
	}
	if ((rc = check_documents(path, &c, lines, d)) != TB_OK)
		return rc;
	return check_identity(path, &c, lines, d);
}
