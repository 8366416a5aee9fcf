/* SPDX-License-Identifier: Apache-2.0 */
/* config.c - the node's configuration keys: one table, read by the
 * schema engine (protocol/tb_schema.h) for start-up, -n and SIGHUP. */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../certs/tb_ca.h"
#include "../certs/tb_cert.h"
#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../federation/tb_trust.h"
#include "../protocol/tb_schema.h"
#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_enc.h"
#include "../util/tb_file.h"
#include "../util/tb_port.h"

/* field f of struct tb_config: its offset and capacity */
#define F(f) .off = offsetof(struct tb_config, f), .size = sizeof(((struct tb_config *)0)->f)
#define HP(h, p) F(h), .off2 = offsetof(struct tb_config, p), .min = 1, .max = 65535
#define REQ .flags = TB_CONF_REQUIRED
#define RELOAD .flags = TB_CONF_RELOAD
#define FILE_REQ .flags = TB_CONF_REQUIRED | TB_CONF_FILE
#define FILE_OPT .flags = TB_CONF_FILE

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

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
     .help = "SQLite journal file (created if absent), or a postgresql:// URI"},
    {"api", TB_CONF_HOSTPORT, HP(api_host, api_port), .def = "127.0.0.1:8080",
     .check = tb_conf_check_loopback, .help = "local HTTP API address HOST:PORT (loopback only)"},
    {"api_token_file", TB_CONF_PATH, FILE_OPT, F(api_token_file), .def = "api.token",
     .help = "file holding the local API bearer token"},
    {"api_max_connections", TB_CONF_INT, F(api_max_connections), .min = 0, .max = 65536, .def = "0",
     .help = "local API connections held at most, the longest idle closed for a new one "
             "(0: half the open-file limit, at most 1024)"},
    {"api_timeout", TB_CONF_INT, F(api_timeout), .min = 1, .max = 3600, .def = "30",
     .help = "a local API client sends a whole request (or reads an answer) within this, s"},
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
    {"log_format", TB_CONF_ENUM, RELOAD, F(log_format), .words = log_formats, .def = "text",
     .help = "log lines as text or json (one object a line)"},
    {"max_message_size", TB_CONF_INT, RELOAD, F(max_message_size), .min = 1024, .max = 4194304,
     .def = "262144", .help = "largest request body (a batch of envelopes), bytes"},
    {"clock_skew", TB_CONF_INT, RELOAD, F(clock_skew), .min = 0, .max = 3600, .def = "300",
     .help = "allowed clock skew, seconds"},
    {"registry_warn_days", TB_CONF_INT, RELOAD, F(registry_warn_days), .min = 1, .max = 365,
     .def = "30", .help = "warn this many days before the registry (or certificate) expires"},
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
     .def = "10000",
     .help = "a peer that failed 5 attempts in a row (or refused a handshake) rests at least this "
             "long, ms"},
    {"full_retry", TB_CONF_INT, RELOAD, F(full_retry), .min = 1, .max = 3600, .def = "30",
     .help = "journal disk full or its database out of reach: peers are told to retry after "
             "this (5.03 Max-Age), s"},
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

void
tb_config_last_registry(const struct tb_config *cfg, char *out, size_t len)
{
	/* beside the journal file; a postgresql:// journal has none, so
	 * beside the registry file then */
	if (strstr(cfg->journal, "://") != NULL)
		snprintf(out, len, "%s.applied", cfg->registry);
	else
		snprintf(out, len, "%s.registry", cfg->journal);
}

static unsigned
line_of(const unsigned *lines, const char *name)
{
	const struct tb_conf_key *k = tb_conf_find(&table, name, strlen(name));
	return k != NULL ? lines[k - keys] : 0;
}

/* ---- what the node will use: -n, start-up and SIGHUP (tb_config_check) ---- */

/* Expiry is warned of registry_warn_days ahead, as the running node does. */
#define PEM_CERT "-----BEGIN CERTIFICATE-----"
#define MAX_CERTS 8 /* certificates read from one PEM file */

struct ck {
	const char *path; /* the configuration file */
	const struct tb_config *c;
	const unsigned *lines; /* per key; 0: at its default */
	tb_check_fn *fn;
	void *ctx;
	int64_t now;
	int fails;
	bool unreadable[NKEYS]; /* a file the later checks need not try */
};

/* One finding: "path:line: key: why" (no line for a key at its default). */
static void __attribute__((format(printf, 4, 5)))
say(struct ck *k, enum tb_check_sev sev, const char *key, const char *fmt, ...)
{
	char why[600], line[TB_CONF_PATH_MAX + 700];
	unsigned at = line_of(k->lines, key);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (at > 0)
		snprintf(line, sizeof(line), "%s:%u: %s: %s", k->path, at, key, why);
	else
		snprintf(line, sizeof(line), "%s: %s: %s", k->path, key, why);
	if (sev == TB_CHECK_FAIL)
		k->fails++;
	k->fn(k->ctx, sev, line);
}

static bool
readable(const struct ck *k, const char *name)
{
	const struct tb_conf_key *key = tb_conf_find(&table, name, strlen(name));
	return key != NULL && !k->unreadable[key - keys];
}

static const char *
day(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, len, "%lld", (long long)t);
	return out;
}

/* Every file a key names is readable. */
static void
check_files(struct ck *k)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const char *file = (const char *)k->c + keys[i].off;
		if (!(keys[i].flags & TB_CONF_FILE) || file[0] == '\0' || access(file, R_OK) == 0)
			continue;
		k->unreadable[i] = true;
		say(k, TB_CHECK_FAIL, keys[i].name, "cannot read %s: %s", file, strerror(errno));
	}
}

/* Secrets are the owner's alone, as ssh insists for its keys. */
static void
check_modes(struct ck *k)
{
	static const char *const secret[] = {"key", "sign_key", "api_token_file"};
	struct stat st;

	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
		const struct tb_conf_key *key = tb_conf_find(&table, secret[i], strlen(secret[i]));
		const char *file = (const char *)k->c + key->off;
		if (file[0] == '\0' || !readable(k, secret[i]) || stat(file, &st) != 0 ||
		    (st.st_mode & 077) == 0)
			continue;
		say(k, TB_CHECK_FAIL, secret[i],
		    "%s is open to group or others (mode %04o): chmod 600 it", file,
		    (unsigned)(st.st_mode & 07777));
	}
}

/* The journal (or, before it exists, its directory) is writable. */
static void
check_journal(struct ck *k)
{
	char dir[TB_CONF_PATH_MAX];
	const char *j = k->c->journal, *slash = strrchr(j, '/');

	/* a postgresql:// journal: reached (or not) at start-up */
	if (strstr(j, "://") != NULL)
		return;
	if (access(j, F_OK) == 0) {
		if (access(j, R_OK | W_OK) != 0)
			say(k, TB_CHECK_FAIL, "journal", "cannot write %s: %s", j, strerror(errno));
		return;
	}
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == j ? 1 : slash - j), j);
	/* start-up creates the file, and the directory when it is missing */
	while (access(dir, F_OK) != 0 && strrchr(dir, '/') != NULL && strrchr(dir, '/') != dir)
		*strrchr(dir, '/') = '\0';
	if (access(dir, W_OK | X_OK) != 0)
		say(k, TB_CHECK_FAIL, "journal", "cannot create %s: directory %s: %s", j, dir,
		    strerror(errno));
}

/* The certificates of a PEM file (at most max, caller frees them);
 * 0 when it holds none, or is not PEM at all (a JSON file, DER). */
static size_t
load_pems(const char *file, struct tb_cert **out, size_t max)
{
	struct tb_buf b;
	size_t n = 0;

	tb_buf_init(&b);
	if (tb_file_read(file, 1 << 20, &b, NULL) != TB_OK || tb_buf_add(&b, "", 1) != TB_OK)
		goto out;
	for (const char *p = strstr((const char *)b.data, PEM_CERT); p != NULL && n < max;
	     p = strstr(p + 1, PEM_CERT)) {
		const char *end = strstr(p, "-----END CERTIFICATE-----");
		if (end == NULL)
			break;
		end += strlen("-----END CERTIFICATE-----");
		if ((out[n] = tb_cert_import((const uint8_t *)p, (size_t)(end - p), NULL)) != NULL)
			n++;
	}
out:
	tb_buf_free(&b);
	return n;
}

static void
free_certs(struct tb_cert **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tb_cert_free(v[i]);
}

/* The node's own keys in the registry: the certificate's key for DTLS,
 * the message-signing key for signatures, neither revoked. */
static void
check_listed(struct ck *k, const struct tb_reg *reg, const char *name, const uint8_t *kid,
             enum tb_key_use need)
{
	size_t m, i;
	enum tb_key_use use;
	uint8_t id[TB_KEYID_LEN];
	const uint8_t *spki;
	size_t len;
	char hex[2 * TB_KEYID_LEN + 1];

	tb_hex_encode(kid, TB_KEYID_LEN, hex);
	if (tb_reg_key_revoked(reg, kid)) {
		say(k, TB_CHECK_FAIL, name, "key %.16s... is revoked in the registry (serial %llu)",
		    hex, (unsigned long long)tb_reg_serial(reg));
		return;
	}
	if (tb_reg_find_key(reg, kid, &m, &i) == TB_OK &&
	    strcmp(tb_reg_member_id(reg, m), k->c->member_id) == 0) {
		tb_reg_key(reg, m, i, id, &use, &spki, &len);
		if ((use & need) == need)
			return;
	}
	say(k, TB_CHECK_FAIL, name,
	    "key %.16s... is not a %s key of member %s in the registry (serial %llu)", hex,
	    need == TB_USE_TLS ? "DTLS" : "message-signing", k->c->member_id,
	    (unsigned long long)tb_reg_serial(reg));
}

/* The certificate chains to root (through the intermediates its file
 * holds) for a node's use, now; and warns when it expires soon. */
static void
check_chain(struct ck *k, struct tb_cert **certs, size_t ncerts, struct tb_cert **roots,
            size_t nroots)
{
	struct tb_castore *t = tb_castore_new();
	struct tb_diag d;
	char line[300], when[40];
	int64_t left = tb_cert_not_after(certs[0]) - k->now;

	tb_diag_clear(&d);
	for (size_t i = 0; t != NULL && i < nroots; i++)
		if (tb_castore_add_ca(t, roots[i], &d) != TB_OK) {
			say(k, TB_CHECK_FAIL, "root", "%s", tb_diag_format(&d, line, sizeof(line)));
			goto out;
		}
	if (t == NULL) {
		say(k, TB_CHECK_FAIL, "cert", "out of memory");
		goto out;
	}
	if (tb_chain_verify(t, certs[0], (const struct tb_cert *const *)certs + 1, ncerts - 1,
	                    TB_USAGE_NODE, k->now, &d) != TB_OK)
		say(k, TB_CHECK_FAIL, "cert", "%s: %s", k->c->cert,
		    tb_diag_format(&d, line, sizeof(line)));
	else if (left < k->c->registry_warn_days * 86400)
		say(k, TB_CHECK_WARN, "cert", "%s expires on %s, in %lld day(s)", k->c->cert,
		    day(tb_cert_not_after(certs[0]), when, sizeof(when)),
		    (long long)(left / 86400));
out:
	tb_castore_free(t);
}

/* key and sign_key load; cert is a PEM certificate of key for member_id
 * that chains to root, a PEM file of CA certificates; both keys are the
 * member's in reg (NULL: not checked). */
static void
check_identity(struct ck *k, const struct tb_reg *reg)
{
	struct tb_key *key = NULL, *sign = NULL;
	struct tb_cert *certs[MAX_CERTS], *roots[MAX_CERTS];
	size_t ncerts = 0, nroots = 0;
	uint8_t kid[TB_KEYID_LEN], cid[TB_KEYID_LEN];
	char id[TB_MEMBER_ID_MAX];
	struct tb_diag d;

	tb_diag_clear(&d);
	if (readable(k, "key") && (key = tb_key_load(k->c->key, NULL, &d)) == NULL)
		say(k, TB_CHECK_FAIL, "key", "%s", d.detail[0] ? d.detail : tb_err_str(d.code));
	if (k->c->sign_key[0] != '\0' && readable(k, "sign_key") &&
	    (sign = tb_key_load(k->c->sign_key, NULL, &d)) == NULL)
		say(k, TB_CHECK_FAIL, "sign_key", "%s",
		    d.detail[0] ? d.detail : tb_err_str(d.code));
	if (readable(k, "cert") && (ncerts = load_pems(k->c->cert, certs, MAX_CERTS)) == 0)
		say(k, TB_CHECK_FAIL, "cert", "%s is not a PEM certificate", k->c->cert);
	if (readable(k, "root") && (nroots = load_pems(k->c->root, roots, MAX_CERTS)) == 0)
		say(k, TB_CHECK_FAIL, "root", "%s is not a PEM certificate", k->c->root);
	for (size_t i = 0; i < nroots; i++)
		if (!tb_cert_is_ca(roots[i])) {
			say(k, TB_CHECK_FAIL, "root", "%s: %s is not a CA certificate", k->c->root,
			    tb_cert_subject(roots[i]));
			free_certs(roots, nroots);
			nroots = 0;
		}
	if (ncerts > 0) {
		tb_cert_key_id(certs[0], cid);
		if (key != NULL && (tb_key_id(key, kid), memcmp(kid, cid, sizeof(kid)) != 0)) {
			say(k, TB_CHECK_FAIL, "cert", "%s does not certify the key in %s",
			    k->c->cert, k->c->key);
			reg = NULL; /* which keys the registry lists says nothing more */
		}
		if (tb_cert_member_id(certs[0], id) != TB_OK) {
			say(k, TB_CHECK_FAIL, "cert", "%s has no member id (subject serialNumber)",
			    k->c->cert);
			reg = NULL;
		} else if (strcmp(id, k->c->member_id) != 0) {
			say(k, TB_CHECK_FAIL, "member_id",
			    "%s is not the certificate's serialNumber (%s in %s)", k->c->member_id,
			    id, k->c->cert);
			reg = NULL;
		}
		if (nroots > 0)
			check_chain(k, certs, ncerts, roots, nroots);
		if (reg != NULL && tb_reg_find_member(reg, k->c->member_id) != TB_REG_NONE)
			check_listed(k, reg, "cert", cid, TB_USE_TLS);
	}
	if (reg != NULL && tb_reg_find_member(reg, k->c->member_id) != TB_REG_NONE &&
	    (sign != NULL || (k->c->sign_key[0] == '\0' && key != NULL))) {
		tb_key_id(sign != NULL ? sign : key, kid);
		check_listed(k, reg, sign != NULL ? "sign_key" : "key", kid, TB_USE_SIGN);
	}
	free_certs(roots, nroots);
	free_certs(certs, ncerts);
	tb_key_free(sign);
	tb_key_free(key);
}

/* Where a registry file stands for start-up (node.c does the same). */
enum reg_verdict { RV_REFUSED, RV_CURRENT, RV_EXPIRED, RV_AHEAD };

/* Reads, parses and verifies the registry at path under trust at k->now:
 * current (also when issued up to clock_skew ahead), expired, issued
 * further ahead (its signatures hold: the node waits in recovery), or
 * refused with d's reason.  *out gets the parsed registry unless
 * refused (caller frees). */
static enum reg_verdict
reg_verdict(const struct ck *k, const struct tb_trust *trust, const char *path,
            struct tb_reg **out, struct tb_diag *d)
{
	struct tb_buf b;
	struct tb_reg *reg = NULL;
	enum reg_verdict v = RV_REFUSED;
	int64_t at;

	*out = NULL;
	tb_buf_init(&b);
	if (tb_file_read(path, TB_REG_MAX_SIZE, &b, d) != TB_OK ||
	    (reg = tb_reg_parse(b.data, b.len, d)) == NULL)
		goto out;
	/* signatures, keys and the window's shape, judged inside the window */
	at = k->now < tb_reg_issued(reg)         ? tb_reg_issued(reg)
	     : k->now >= tb_reg_valid_until(reg) ? tb_reg_valid_until(reg) - 1
	                                         : k->now;
	if (tb_reg_verify(reg, trust, at, 0, NULL, d) != TB_OK)
		goto out;
	v = k->now >= tb_reg_valid_until(reg)                      ? RV_EXPIRED
	    : tb_reg_issued(reg) - k->c->clock_skew > k->now ? RV_AHEAD
	                                                           : RV_CURRENT;
	*out = reg;
	reg = NULL;
out:
	tb_reg_free(reg);
	tb_buf_free(&b);
	return v;
}

/* The registry start-up will use: the registry file, or the node's last
 * good copy beside the journal when the file is refused or older
 * (docs/ADMIN.md "Operating states"), with a warning saying which.
 * NULL (a failure reported) when neither verifies. */
static struct tb_reg *
pick_registry(struct ck *k, const struct tb_trust *trust, enum reg_verdict *v,
              const char **used)
{
	static char copy[TB_CONF_PATH_MAX + 16];
	struct tb_reg *file = NULL, *last = NULL;
	struct tb_diag d, dc;
	char line[300];
	enum reg_verdict vf, vc;

	vf = reg_verdict(k, trust, k->c->registry, &file, &d);
	tb_config_last_registry(k->c, copy, sizeof(copy));
	vc = access(copy, F_OK) == 0 ? reg_verdict(k, trust, copy, &last, &dc) : RV_REFUSED;
	if (last != NULL && (file == NULL || tb_reg_serial(last) > tb_reg_serial(file))) {
		if (file == NULL)
			say(k, TB_CHECK_WARN, "registry",
			    "%s refused (%s): the node will start on its last good copy %s "
			    "(serial %llu)",
			    k->c->registry, tb_diag_format(&d, line, sizeof(line)), copy,
			    (unsigned long long)tb_reg_serial(last));
		else
			say(k, TB_CHECK_WARN, "registry",
			    "%s holds serial %llu, its last good copy %s serial %llu: the node "
			    "will use the copy",
			    k->c->registry, (unsigned long long)tb_reg_serial(file), copy,
			    (unsigned long long)tb_reg_serial(last));
		tb_reg_free(file);
		*v = vc;
		*used = copy;
		return last;
	}
	tb_reg_free(last);
	if (file == NULL)
		say(k, TB_CHECK_FAIL, "registry", "%s", tb_diag_format(&d, line, sizeof(line)));
	*v = vf;
	*used = k->c->registry;
	return file;
}

/* The trust anchor parses; the registry start-up will use verifies
 * (expired or issued ahead: a warning, the node starts in recovery) and
 * lists member_id; its expiry and the member's status are warned of.
 * Returns that registry (caller frees), else NULL. */
static struct tb_reg *
check_documents(struct ck *k)
{
	struct tb_trust *trust = NULL;
	struct tb_reg *reg = NULL;
	struct tb_buf b;
	struct tb_diag d;
	char line[300], when[40];
	enum reg_verdict v = RV_REFUSED;
	const char *used = k->c->registry;
	size_t m;

	tb_buf_init(&b);
	if (!readable(k, "trust") || !readable(k, "registry"))
		goto out;
	if (tb_file_read(k->c->trust, 1 << 20, &b, &d) != TB_OK ||
	    (trust = tb_trust_parse(b.data, b.len, &d)) == NULL) {
		say(k, TB_CHECK_FAIL, "trust", "%s", tb_diag_format(&d, line, sizeof(line)));
		goto out;
	}
	if ((reg = pick_registry(k, trust, &v, &used)) == NULL)
		goto out;
	if (v == RV_EXPIRED)
		say(k, TB_CHECK_WARN, "registry",
		    "registry expired: %s (serial %llu) expired on %s: the node will start in "
		    "recovery",
		    used, (unsigned long long)tb_reg_serial(reg),
		    day(tb_reg_valid_until(reg), when, sizeof(when)));
	else if (v == RV_AHEAD)
		say(k, TB_CHECK_WARN, "registry",
		    "registry not yet valid: %s (serial %llu) is issued on %s, beyond clock_skew: "
		    "the node will start in recovery",
		    used, (unsigned long long)tb_reg_serial(reg),
		    day(tb_reg_issued(reg), when, sizeof(when)));
	else if (tb_reg_valid_until(reg) - k->now < k->c->registry_warn_days * 86400)
		say(k, TB_CHECK_WARN, "registry", "%s (serial %llu) expires on %s, in %lld day(s)",
		    used, (unsigned long long)tb_reg_serial(reg),
		    day(tb_reg_valid_until(reg), when, sizeof(when)),
		    (long long)((tb_reg_valid_until(reg) - k->now) / 86400));
	if ((m = tb_reg_find_member(reg, k->c->member_id)) == TB_REG_NONE)
		say(k, TB_CHECK_FAIL, "member_id",
		    "%s is not a member of the registry (serial %llu)", k->c->member_id,
		    (unsigned long long)tb_reg_serial(reg));
	else if (tb_reg_member_status(reg, m) != TB_STATUS_ACTIVE)
		say(k, TB_CHECK_WARN, "member_id",
		    "%s is %s in the registry (serial %llu): the node will exchange no messages",
		    k->c->member_id, tb_reg_status_name(tb_reg_member_status(reg, m)),
		    (unsigned long long)tb_reg_serial(reg));
out:
	tb_trust_free(trust);
	tb_buf_free(&b);
	return reg;
}

/* name's HOST:PORT can be bound now, exclusively (tb_port_free). */
static void
check_port(struct ck *k, const char *name, int socktype, const char *host, int port,
           const char *what)
{
	struct addrinfo hints, *res = NULL;
	char p[8], err[120];
	int e = 0;

	snprintf(p, sizeof(p), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
	if (getaddrinfo(host, p, &hints, &res) != 0 || res == NULL) {
		say(k, TB_CHECK_FAIL, name, "%s: bad address %s", what, host);
		return;
	}
	if (!tb_port_free(socktype, res->ai_addr, res->ai_addrlen, &e)) {
		char who[96];
		bool known =
		    tb_port_holder(socktype, res->ai_addr, res->ai_addrlen, who, sizeof(who));
		say(k, TB_CHECK_FAIL, name, "%s %s:%d: %s%s%s", what, host, port,
		    tb_errno_text(e, err, sizeof(err)), known ? ", held by " : "",
		    known ? who : "");
	}
	freeaddrinfo(res);
}

int
tb_config_check(const char *path, unsigned what, const struct tb_reg *in_force, tb_check_fn *fn,
                void *ctx)
{
	struct tb_config c;
	unsigned lines[NKEYS];
	struct ck k = {path, &c, lines, fn, ctx, (int64_t)time(NULL), 0, {false}};
	struct tb_reg *reg = NULL;
	struct tb_diag d;
	int rc;

	if ((rc = load(path, &c, lines, &d)) != TB_OK) {
		fn(ctx, TB_CHECK_FAIL, d.detail);
		return rc;
	}
	check_files(&k);
	check_modes(&k);
	if (!(what & TB_CHECK_IDENTITY_ONLY)) {
		check_journal(&k);
		reg = check_documents(&k);
	}
	check_identity(&k, in_force != NULL ? in_force : reg);
	if (what & TB_CHECK_PORTS) {
		check_port(&k, "listen", SOCK_DGRAM, c.listen_host, (int)c.listen_port,
		           "cannot listen on");
		check_port(&k, "api", SOCK_STREAM, c.api_host, (int)c.api_port,
		           "cannot bind the local API on");
	}
	tb_reg_free(reg);
	return k.fails > 0 ? TB_E_ARG : TB_OK;
}
