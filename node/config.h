/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - the node's configuration file: declarative, one table of
 * keys (config.c) with type, bounds, default, check hook and whether
 * SIGHUP applies a change, read by the schema engine
 * (protocol/tb_schema.h); errors as "file:line: key: message".
 *
 * Format: one "key = value" per line; '#' starts a comment; blank lines
 * ignored; relative paths are relative to the config file's directory.
 * The keys are documented in man/tongban-node.8 and `tongban-node --help`.
 *
 * Thread-safety: the table is constant; the functions are reentrant (no
 * global state): the caller owns the struct tb_config they fill, and
 * paths are borrowed.
 */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../util/tb_err.h"

#define TB_CONF_PATH_MAX 1024

/* DTLS sessions a node can keep to one peer (config key peer_sessions). */
#define TB_PEER_SESSIONS_MAX 64

/* A plain record owned by the caller; strings are inline. */
struct tb_config {
	char member_id[16];
	char listen_host[64];
	int listen_port;
	char cert[TB_CONF_PATH_MAX];     /* node certificate (+ province CA chain), PEM */
	char key[TB_CONF_PATH_MAX];      /* node private key (DTLS and signing) */
	char sign_key[TB_CONF_PATH_MAX]; /* optional separate message-signing key */
	char root[TB_CONF_PATH_MAX];     /* federation root certificate */
	char trust[TB_CONF_PATH_MAX];    /* trust anchor (trust.json) */
	char registry[TB_CONF_PATH_MAX]; /* current registry (kept up to date) */
	char journal[TB_CONF_PATH_MAX];  /* SQLite journal */
	char api_host[64];
	int api_port;
	char api_token_file[TB_CONF_PATH_MAX];
	int64_t api_max_connections; /* 0: half the open-file limit, at most 1024 */
	int64_t api_timeout;         /* s: a whole request within this */
	char registry_upstream[16];               /* member id whose /fed/registry to observe */
	char private_endpoints[TB_CONF_PATH_MAX]; /* hub: endpoints of members it alone reaches */
	char responder[TB_CONF_PATH_MAX];         /* reference responder fixtures, or empty */
	char webhook[TB_CONF_PATH_MAX];           /* http://127.0.0.1:PORT/PATH, or empty */
	char log_level[16];
	char log_format[8]; /* "text" or "json" */
	int64_t max_message_size;
	int64_t clock_skew;
	int64_t registry_warn_days; /* expiry warnings start this many days ahead */
	int64_t retry_min_ms, retry_max_ms;
	int64_t batch_max;
	int64_t deflate;       /* 1: exchanges sent as content-format 11050 */
	int64_t peer_sessions; /* 1 .. TB_PEER_SESSIONS_MAX */
	int64_t answer_timeout;  /* s: an unanswered exchange is tried again after this */
	int64_t breaker_open_ms; /* a peer that failed BREAKER_AFTER times rests this long */
	int64_t full_retry;      /* s: Max-Age of the 5.03 journal.full answer */
	int64_t retention;                  /* s: finished messages are pruned after this */
	char archive_dir[TB_CONF_PATH_MAX]; /* pruned messages archived here, or empty */
};

struct tb_diag;
struct tb_conf_table;
struct tb_reg;

/* Parses path into cfg (defaults first).  On failure returns a negative
 * tb_err with d->detail "file:line: key: message" (TB_E_IO: the file
 * cannot be read). */
TB_MUST_CHECK int tb_config_load(const char *path, struct tb_config *cfg, struct tb_diag *d);
/* The node's copy of the last registry it applied ("JOURNAL.registry",
 * beside the journal), written into out (len bytes, truncated). */
void tb_config_last_registry(const struct tb_config *cfg, char *out, size_t len);
/* What tb_config_check finds: a warning, or a failure that stops the node. */
enum tb_check_sev { TB_CHECK_WARN, TB_CHECK_FAIL };
/* Called once per finding, in order, with one line (borrowed):
 * "file:line: key: why", or "file: key: why" for a key at its default. */
typedef void tb_check_fn(void *ctx, enum tb_check_sev sev, const char *line);
#define TB_CHECK_PORTS 1u         /* also try binding listen (UDP) and api (TCP) */
#define TB_CHECK_IDENTITY_ONLY 2u /* SIGHUP: files, modes and identity only */

/*
 * Checks what the node will use (`tongban-node -n`, start-up, and on
 * SIGHUP the identity), reporting every finding through fn, not only the
 * first:
 *   failures: a file a key names cannot be read; key, sign_key or
 *   api_token_file open to group or others (mode & 077); the journal (or
 *   its directory) not writable; the trust anchor or the registry does
 *   not parse or verify (except expiry); member_id not in the registry;
 *   key or sign_key not a private key; cert not a PEM certificate of key,
 *   its subject serialNumber not member_id, not chaining to root for a
 *   node's use now (the cert.* reason: cert.expired, cert.unknown-issuer
 *   ...); root not a PEM file of CA certificates (a JSON file is
 *   refused); the certificate's key not a DTLS key, or the signing key
 *   (sign_key, else key) not a signing key, of member_id in the registry
 *   (in_force when not NULL, else the registry file), or revoked there;
 *   with TB_CHECK_PORTS, listen or api cannot be bound now (errno named).
 *   warnings: the certificate or the registry expires within 30 days; the
 *   registry has expired ("the node will start in recovery"); member_id
 *   is suspended or revoked.
 * Returns 0 when nothing failed, TB_E_ARG when something did, or the
 * error of tb_config_load (reported through fn as well).
 */
TB_MUST_CHECK int tb_config_check(const char *path, unsigned what, const struct tb_reg *in_force,
                                  tb_check_fn *fn, void *ctx);
/* The node's key table over struct tb_config (static). */
const struct tb_conf_table *tb_config_table(void);
/* Prints the key table (name, meaning, default or "required", and
 * "SIGHUP" for keys a reload applies) for --help. */
void tb_config_describe(FILE *f);

#endif
