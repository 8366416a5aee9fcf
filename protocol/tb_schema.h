/*
 * tb_schema.h - one schema engine for every document Tongban reads:
 * envelopes, the registry, the trust anchor, flow bodies, local-API
 * requests (JSON, section "JSON documents"), and the node's configuration
 * file (section "configuration files").
 *
 * A schema is data: a table of field descriptions per object, refusal
 * reasons from the table.  Member names are compared with their lengths
 * (a name holding U+0000 is never taken for a shorter one).
 *
 * Pure: no sockets, files or clocks.  Thread-safety: the tables are
 * constant and the functions reentrant; any number of threads may check
 * documents at once.
 */
#ifndef TB_SCHEMA_H
#define TB_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_diag;
struct tb_json;

/* ---- JSON documents ---- */

/* ---- configuration files (key = value) ---- */

/*
 * A configuration file is lines of "key = value"; '#' starts a comment,
 * blank lines are skipped, spaces around the key and the value dropped.
 * A program describes its keys in a constant table (struct tb_conf_key
 * rows, like Redis's config table) over a plain record of its own, a
 * struct with inline strings and integers whose fields the rows name by
 * offset.  tb_conf_parse() fills such a record from a file's bytes; it
 * refuses, with d->detail "file:line: key: message":
 *   - a line without '=', an unknown key, a key set twice;
 *   - a value that its type (below) or the key's check hook refuses;
 *   - an empty value, unless the key's default is empty (that is "not
 *     set", and neither the type nor the hook is asked);
 *   - a required key that is missing ("file: required key 'k' missing");
 *   - a record the table's cross-key hook refuses: the line is that of
 *     the later of the keys it names that the file sets (with no line,
 *     "file: key: message", when both keep their defaults).
 * The engine reads no file: the caller passes the bytes, the name to
 * print, and the directory relative paths are taken from.
 */

enum tb_conf_type {
	TB_CONF_STR,      /* text, NUL-terminated in `size` bytes */
	TB_CONF_PATH,     /* a file name: a relative one is stored as "dir/value" */
	TB_CONF_INT,      /* decimal integer in min..max, an int64_t */
	TB_CONF_BOOL,     /* yes/no, true/false, on/off, 1/0: an int64_t 1 or 0 */
	TB_CONF_ENUM,     /* one of `words`, stored as text */
	TB_CONF_MEMBER,   /* member id: 6 digits, the first not 0; stored as text */
	TB_CONF_HOSTPORT, /* HOST:PORT split at the last ':', PORT in min..max:
	                   * the host as text at off, the port an int at off2 */
};

/* Row flags.  A running program applies a change to a TB_CONF_RELOAD key
 * on SIGHUP; a change to any other key needs a restart. */
#define TB_CONF_REQUIRED 0x1u /* the file must set it (def is NULL) */
#define TB_CONF_RELOAD 0x2u   /* applied on SIGHUP */
#define TB_CONF_FILE 0x4u     /* names a file the program reads at start */

#define TB_CONF_KEYS_MAX 64    /* keys in one table */
#define TB_CONF_VALUE_MAX 4096 /* bytes of one value */

struct tb_conf_key {
	const char *name;
	enum tb_conf_type type;
	unsigned flags;           /* TB_CONF_* */
	size_t off;               /* the field in the record */
	size_t off2;              /* HOSTPORT: the port's int field */
	size_t size;              /* text capacity, NUL included; INT, BOOL: 8 */
	int64_t min, max;         /* INT: the value; HOSTPORT: the port */
	const char *const *words; /* ENUM: the values allowed, NULL-terminated */
	const char *def;          /* default as a file spells it; NULL if required */
	/* Optional: runs on a value its type accepted, before it is stored;
	 * returns NULL, or why the value is refused (a static string). */
	const char *(*check)(const char *value);
	const char *help; /* one line for --help */
};

struct tb_conf_table {
	const struct tb_conf_key *keys;
	size_t nkeys; /* at most TB_CONF_KEYS_MAX */
	/* Optional: runs on the complete record.  Returns true when its keys
	 * agree; else writes why into why (NUL-terminated) and the names of
	 * the one or two keys concerned into keys[0], keys[1] (NULL: none). */
	bool (*cross)(const void *rec, const char *keys[2], char *why, size_t whylen);
};

/*
 * Parses the configuration text[0..len) (borrowed; need not end in a NUL)
 * into rec (t's record type, owned by the caller): the defaults first,
 * then the file's keys.  name is the file's name as messages print it;
 * dir the directory relative PATH values and defaults are joined to
 * (NULL: kept as written).  lines, when not NULL, receives t->nkeys
 * entries: the line that set each key, 0 for a default.
 * Returns 0, or TB_E_ARG with d's detail saying where and why (above);
 * rec then holds part of the file and is not to be used.  A table row
 * that breaks the engine's rules (a default its own type refuses, an INT
 * row whose size is not 8, too many keys) is a bug: aborts.
 */
int tb_conf_parse(const struct tb_conf_table *t, const char *name, const char *dir,
                  const char *text, size_t len, void *rec, unsigned *lines, struct tb_diag *d)
    __attribute__((warn_unused_result));

/* The row of the key named name[0..len) (compared with its length), or
 * NULL.  Borrowed from t. */
const struct tb_conf_key *tb_conf_find(const struct tb_conf_table *t, const char *name, size_t len);

/* True when records a and b hold the same value for key k. */
bool tb_conf_equal(const struct tb_conf_key *k, const void *a, const void *b);

/* Copies key k's value from record src to record dst. */
void tb_conf_copy(const struct tb_conf_key *k, void *dst, const void *src);

/* Key k's value in rec as a file spells it ("127.0.0.1:5684", "200",
 * "yes"), into out (NUL-terminated, truncated to outlen).  Returns out. */
const char *tb_conf_format(const struct tb_conf_key *k, const void *rec, char *out, size_t outlen);

/* Check hooks for rows (NULL or why refused, as above). */
/* HOST:PORT whose HOST is 127.0.0.1, ::1 or localhost. */
const char *tb_conf_check_loopback(const char *hostport);
/* http://HOST[:PORT][/PATH] with HOST 127.0.0.1, [::1] or localhost,
 * PORT 1..65535, and no space or control character. */
const char *tb_conf_check_loopback_url(const char *url);

#endif
