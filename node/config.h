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
	char registry_upstream[16];               /* member id whose /fed/registry to observe */
	char private_endpoints[TB_CONF_PATH_MAX]; /* hub: endpoints of members it alone reaches */
	char responder[TB_CONF_PATH_MAX];         /* reference responder fixtures, or empty */
	char webhook[TB_CONF_PATH_MAX];           /* http://127.0.0.1:PORT/PATH, or empty */
	char log_level[16];
	int64_t max_message_size;
	int64_t clock_skew;
	int64_t retry_min_ms, retry_max_ms;
	int64_t batch_max;
	int64_t deflate;       /* 1: exchanges sent as content-format 11050 */
	int64_t peer_sessions; /* 1 .. TB_PEER_SESSIONS_MAX */
	int64_t answer_timeout;  /* s: an unanswered exchange is tried again after this */
	int64_t breaker_open_ms; /* a peer that failed BREAKER_AFTER times rests this long */
	int64_t retention;                  /* s: finished messages are pruned after this */
	char archive_dir[TB_CONF_PATH_MAX]; /* pruned messages archived here, or empty */
};

struct tb_diag;
struct tb_conf_table;

/* Parses path into cfg (defaults first).  On failure returns a negative
 * tb_err with d->detail "file:line: key: message" (TB_E_IO: the file
 * cannot be read). */
TB_MUST_CHECK int tb_config_load(const char *path, struct tb_config *cfg, struct tb_diag *d);
/* The checks of `tongban-node -n` beyond tb_config_load, each refusal
 * naming the key: every file a key names that start-up reads exists and
 * is readable; key and sign_key are private keys, cert certifies key for
 * member_id, root is a CA certificate; the trust anchor parses, the
 * registry parses, verifies against it now and lists member_id.  (The
 * token, private endpoints and responder fixtures are parsed by
 * tb_node_new.)  Returns 0 or a negative tb_err with d->detail
 * "file:line: key: why" (no line for a key left at its default). */
TB_MUST_CHECK int tb_config_check(const char *path, struct tb_diag *d);
/* The node's key table over struct tb_config (static). */
const struct tb_conf_table *tb_config_table(void);
/* Prints the key table (name, meaning, default or "required", and
 * "SIGHUP" for keys a reload applies) for --help. */
void tb_config_describe(FILE *f);

#endif
