/* config.c - table-driven configuration parser. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../util/tb_buf.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"

enum ctype { C_STR, C_PATH, C_INT, C_HOSTPORT, C_MEMBER };

struct key {
	const char *name;
	enum ctype type;
	size_t off, off2; /* field offset; off2: port for C_HOSTPORT */
	size_t size;      /* string capacity */
	int64_t min, max;
	const char *def;
	int required;
	const char *help;
};

#define S(f) offsetof(struct tb_config, f), 0, sizeof(((struct tb_config *)0)->f)
#define I(f) offsetof(struct tb_config, f), 0, 0
#define HP(h, p)                                                                                   \
	offsetof(struct tb_config, h), offsetof(struct tb_config, p),                              \
	    sizeof(((struct tb_config *)0)->h)

static const struct key keys[] = {
    {"member_id", C_MEMBER, S(member_id), 0, 0, NULL, 1, "this node's member id (6 digits)"},
    {"listen", C_HOSTPORT, HP(listen_host, listen_port), 1, 65535, "127.0.0.1:5684", 0,
     "CoAP/DTLS address HOST:PORT"},
    {"cert", C_PATH, S(cert), 0, 0, NULL, 1, "node certificate PEM (with its CA chain)"},
    {"key", C_PATH, S(key), 0, 0, NULL, 1, "node private key PEM (P-256)"},
    {"sign_key", C_PATH, S(sign_key), 0, 0, "", 0, "separate message-signing key (default: key)"},
    {"root", C_PATH, S(root), 0, 0, NULL, 1, "federation root CA PEM (may add the province CAs)"},
    {"trust", C_PATH, S(trust), 0, 0, NULL, 1, "trust anchor (trust.json)"},
    {"registry", C_PATH, S(registry), 0, 0, NULL, 1, "registry file, kept current"},
    {"journal", C_PATH, S(journal), 0, 0, "journal.db", 0, "SQLite journal file"},
    {"api", C_HOSTPORT, HP(api_host, api_port), 1, 65535, "127.0.0.1:8080", 0,
     "local HTTP API address (loopback only)"},
    {"api_token_file", C_PATH, S(api_token_file), 0, 0, "api.token", 0,
     "file holding the local API bearer token"},
    {"registry_upstream", C_STR, S(registry_upstream), 0, 0, "", 0,
     "member id whose /fed/registry this node observes (its hub)"},
    {"private_endpoints", C_PATH, S(private_endpoints), 0, 0, "", 0,
     "hub: file of \"MEMBER_ID coaps://HOST:PORT\" lines for members it alone reaches"},
    {"responder", C_PATH, S(responder), 0, 0, "", 0,
     "fixtures file: answer requests automatically (reference responder)"},
    {"webhook", C_STR, S(webhook), 0, 0, "", 0,
     "push received messages to http://127.0.0.1:PORT/PATH (2xx acknowledges)"},
    {"log_level", C_STR, S(log_level), 0, 0, "info", 0, "debug, info, warn or error"},
    {"max_message_size", C_INT, I(max_message_size), 1024, 4194304, "262144", 0,
     "largest request body accepted, bytes (a batch of envelopes)"},
    {"clock_skew", C_INT, I(clock_skew), 0, 3600, "300", 0, "allowed clock skew, seconds"},
    {"retry_min_ms", C_INT, I(retry_min_ms), 10, 600000, "200", 0,
     "first retry delay, milliseconds"},
    {"retry_max_ms", C_INT, I(retry_max_ms), 100, 3600000, "60000", 0,
     "largest retry delay, milliseconds"},
    {"batch_max", C_INT, I(batch_max), 1, 256, "128", 0,
     "envelopes carried in one exchange at most"},
    {"deflate", C_INT, I(deflate), 0, 1, "1", 0,
     "1: send exchanges deflate-compressed (content-format 11050), 0: plain JSON"},
    {"peer_sessions", C_INT, I(peer_sessions), 1, TB_PEER_SESSIONS_MAX, "32", 0,
     "DTLS sessions kept to each peer, one exchange in flight on each"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

void
tb_config_describe(FILE *f)
{
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(f, "  %-18s %s%s%s%s\n", keys[i].name, keys[i].help,
		        keys[i].def && *keys[i].def ? " [" : "", keys[i].def ? keys[i].def : "",
		        keys[i].def && *keys[i].def ? "]"
		                                    : (keys[i].required ? " (required)" : ""));
}

static int
put_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n >= cap)
		return -1;
	memcpy(dst, v, n + 1);
	return 0;
}

/* Applies value v of key k; returns NULL or an error message. */
static const char *
apply(const struct key *k, const char *v, const char *dir, struct tb_config *cfg)
{
	char *base = (char *)cfg, *end;
	long long n;

	switch (k->type) {
	case C_MEMBER:
		if (strlen(v) != 6 || v[0] < '1' || v[0] > '9' || strspn(v, "0123456789") != 6)
			return "must be a 6-digit member id";
		/* fallthrough */
	case C_STR: return put_str(base + k->off, k->size, v) ? "value too long" : NULL;
	case C_PATH:
		if (*v == '\0')
			return put_str(base + k->off, k->size, v) ? "value too long" : NULL;
		if (v[0] == '/' || dir == NULL) {
			if (put_str(base + k->off, k->size, v))
				return "path too long";
		} else {
			int w = snprintf(base + k->off, k->size, "%s/%s", dir, v);
			if (w < 0 || (size_t)w >= k->size)
				return "path too long";
		}
		return NULL;
	case C_INT:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno || end == v || *end != '\0')
			return "must be an integer";
		if (n < k->min || n > k->max)
			return "out of range";
		*(int64_t *)(void *)(base + k->off) = n;
		return NULL;
	case C_HOSTPORT: {
		const char *colon = strrchr(v, ':');
		if (colon == NULL || colon == v)
			return "must be HOST:PORT";
		if ((size_t)(colon - v) >= k->size)
			return "host too long";
		errno = 0;
		n = strtoll(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end != '\0' || n < k->min || n > k->max)
			return "port must be 1..65535";
		memcpy(base + k->off, v, (size_t)(colon - v));
		base[k->off + (size_t)(colon - v)] = '\0';
		*(int *)(void *)(base + k->off2) = (int)n;
		return NULL;
	}
	}
	return "bad key type";
}

int
tb_config_load(const char *path, struct tb_config *cfg, struct tb_diag *d)
{
	struct tb_buf b;
	char dir[TB_CONF_PATH_MAX], *line;
	unsigned char seen[NKEYS];
	int lineno = 0, rc = TB_OK;
	const char *slash;
	const char *msg;

	memset(cfg, 0, sizeof(*cfg));
	memset(seen, 0, sizeof(seen));
	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: path too long", path);
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].def != NULL && (msg = apply(&keys[i], keys[i].def, dir, cfg)) != NULL)
			abort(); /* a default that does not parse is a bug */
	tb_buf_init(&b);
	if ((rc = tb_file_read(path, 1 << 20, &b, d)) != TB_OK)
		goto out;
	if (memchr(b.data, '\0', b.len) != NULL) {
		rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: NUL byte in file", path);
		goto out;
	}
	for (char *p = (char *)b.data, *nl; p != NULL; p = nl) {
		char *eq, *k, *v;
		line = p;
		if ((nl = strchr(p, '\n')) != NULL)
			*nl++ = '\0';
		else if (*p == '\0')
			break;
		lineno++;
		eq = strchr(line, '#');
		if (eq != NULL)
			*eq = '\0';
		k = line;
		while (isspace((unsigned char)*k))
			k++;
		if (*k == '\0')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%d: expected key = value",
			                 path, lineno);
			goto out;
		}
		*eq = '\0';
		v = eq + 1;
		for (char *q = eq - 1; q >= k && isspace((unsigned char)*q); q--)
			*q = '\0';
		while (isspace((unsigned char)*v))
			v++;
		for (char *q = v + strlen(v) - 1; q >= v && isspace((unsigned char)*q); q--)
			*q = '\0';
		size_t i;
		for (i = 0; i < NKEYS; i++)
			if (strcmp(keys[i].name, k) == 0)
				break;
		if (i == NKEYS) {
			rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%d: unknown key '%.64s'",
			                 path, lineno, k);
			goto out;
		}
		if (seen[i]) {
			rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%d: '%s' set twice", path,
			                 lineno, k);
			goto out;
		}
		seen[i] = 1;
		if ((msg = apply(&keys[i], v, dir, cfg)) != NULL) {
			rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s:%d: %s: %s", path, lineno,
			                 k, msg);
			goto out;
		}
	}
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].required && !seen[i]) {
			rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
			                 "%s: required key '%s' missing", path, keys[i].name);
			goto out;
		}
	if (strcmp(cfg->api_host, "127.0.0.1") != 0 && strcmp(cfg->api_host, "::1") != 0 &&
	    strcmp(cfg->api_host, "localhost") != 0) {
		rc = tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS,
		                 "%s: api must be bound to a loopback address", path);
		goto out;
	}
out:
	tb_buf_free(&b);
	return rc;
}
