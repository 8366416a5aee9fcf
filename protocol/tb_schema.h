/* SPDX-License-Identifier: Apache-2.0 */
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

/*
 * A field: one member of an object (name set), or the element of an array
 * (name NULL, as the array's `sub`).  A member list ends with a row whose
 * name is NULL.  What min/max bound depends on the type.
 */
enum tb_stype {
	TB_ST_ANY,    /* any JSON value */
	TB_ST_TEXT,   /* string of min..max bytes of UTF-8, no C0 control character or DEL */
	TB_ST_STR,    /* string of at most max bytes for which pred holds ("must be <what>") */
	TB_ST_ENUM,   /* one of `one_of` (NULL-terminated) */
	TB_ST_HEX,    /* exactly min lowercase hex digits (64: a SHA-256, 32: a message id) */
	TB_ST_CODE,   /* service code syntax (also licence types, reason tokens) */
	TB_ST_MEMBER, /* member id: 6 digits, first 1-9 */
	TB_ST_REGION, /* region prefix: 2, 4 or 6 digits, first 1-9 */
	TB_ST_B64,    /* base64url without padding of min..max bytes */
	TB_ST_INT,    /* integer in min..max */
	TB_ST_OBJ,    /* object with exactly the members `sub` */
	TB_ST_ARR,    /* array of min..max elements, each as sub[0]; `unique` strings */
	TB_ST_MAP,    /* object of at most max members: name text 1..64 -> text 0..1024 */
};

struct tb_schema_ck;

struct tb_field {
	const char *name;
	enum tb_stype t;
	bool req;
	int64_t min, max;
	const char *const *one_of;             /* TB_ST_ENUM */
	const struct tb_field *sub;            /* TB_ST_OBJ: members; TB_ST_ARR: the element */
	bool unique;                           /* TB_ST_ARR of strings: no element twice */
	bool (*pred)(const char *s, size_t n); /* TB_ST_STR */
	const char *what;                      /* TB_ST_STR: the rule, e.g. "an absolute URI" */
	int code;                              /* reason for a bad value; 0: TB_E_FIELD_VALUE */
	/* runs after the value passed its own checks (objects) */
	int (*hook)(struct tb_schema_ck *c, const struct tb_json *v);
};

/* Table rows (designated initialisers; unnamed members are zero). */
#define TB_F_END                                                                                   \
	{                                                                                          \
		.name = NULL                                                                       \
	}
#define TB_F(n, type, r)                                                                           \
	{                                                                                          \
		.name = (n), .t = (type), .req = (r)                                               \
	}
#define TB_F_TEXT(n, r, lo, hi)                                                                    \
	{                                                                                          \
		.name = (n), .t = TB_ST_TEXT, .req = (r), .min = (lo), .max = (hi)                 \
	}
#define TB_F_STR(n, r, hi, p, w)                                                                   \
	{                                                                                          \
		.name = (n), .t = TB_ST_STR, .req = (r), .max = (hi), .pred = (p), .what = (w)     \
	}
#define TB_F_ENUM(n, r, set)                                                                       \
	{                                                                                          \
		.name = (n), .t = TB_ST_ENUM, .req = (r), .one_of = (set)                          \
	}
#define TB_F_HEX(n, r, digits)                                                                     \
	{                                                                                          \
		.name = (n), .t = TB_ST_HEX, .req = (r), .min = (digits)                           \
	}
#define TB_F_B64(n, r, lo, hi)                                                                     \
	{                                                                                          \
		.name = (n), .t = TB_ST_B64, .req = (r), .min = (lo), .max = (hi)                  \
	}
#define TB_F_INT(n, r, lo, hi)                                                                     \
	{                                                                                          \
		.name = (n), .t = TB_ST_INT, .req = (r), .min = (lo), .max = (hi)                  \
	}
#define TB_F_OBJ(n, r, s, h)                                                                       \
	{                                                                                          \
		.name = (n), .t = TB_ST_OBJ, .req = (r), .sub = (s), .hook = (h)                   \
	}
#define TB_F_ARR(n, r, lo, hi, el, u)                                                              \
	{                                                                                          \
		.name = (n), .t = TB_ST_ARR, .req = (r), .min = (lo), .max = (hi), .sub = (el),    \
		.unique = (u)                                                                      \
	}
#define TB_F_MAP(n, r, hi)                                                                         \
	{                                                                                          \
		.name = (n), .t = TB_ST_MAP, .req = (r), .max = (hi)                               \
	}

/* How failures are reported (see tb_schema_check). */
struct tb_schema_opts {
	const char *root; /* the path's start: "body", or "" for a whole document */
	int code;         /* nonzero: every failure has this reason (TB_E_BODY) */
	int limit_code;   /* nonzero: counts and lengths beyond max (TB_E_REG_LIMIT) */
	bool types_first; /* the root object: presence and type of every member,
	                     then the values (the envelope's order, section 3) */
};

/*
 * Checks v (borrowed) against the field f: for an object, its unknown
 * members first (a name matches only with its length: "name\u0000x" is
 * not "name"), then its members in table order (presence, type, value,
 * recursively), then the object's hook.  Returns 0, or the first failure:
 * TB_E_FIELD_UNKNOWN, _MISSING, _TYPE, _VALUE (or the field's code, or
 * o->limit_code for a count or length beyond max; every one replaced by
 * o->code when set), with d's detail "path: rule", e.g.
 * "members[2].endpoints[0]: must be an absolute URI".
 */
int tb_schema_check(const struct tb_field *f, const struct tb_json *v,
                    const struct tb_schema_opts *o, struct tb_diag *d)
    __attribute__((warn_unused_result));

/*
 * The "v" member of a document object (envelope, registry, trust anchor),
 * checked before anything else in it (PROTOCOL.md 2.3): absent is
 * TB_E_FIELD_MISSING, a value that is not an integer (a string, 1.5) is
 * TB_E_FIELD_TYPE, an integer other than version (by value: 1.0 is 1) is
 * TB_E_VERSION; d's detail starts "v: ".  0 when it is version.
 */
int tb_schema_version(const struct tb_json *obj, int64_t version, struct tb_diag *d)
    __attribute__((warn_unused_result));

/* For hooks: the check in progress, its path and its diag. */
struct tb_schema_ck {
	struct tb_diag *d;
	const struct tb_schema_opts *o;
	char path[112];
	size_t len;
};

/* Fails the check at the current path (plus the printf-formatted rule)
 * with reason code (0: TB_E_FIELD_VALUE), as tb_schema_check reports. */
int tb_schema_fail(struct tb_schema_ck *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends ".name" to the path; returns the old length for tb_schema_pop. */
size_t tb_schema_push(struct tb_schema_ck *c, const char *name);
void tb_schema_pop(struct tb_schema_ck *c, size_t old);

/* True when name (n bytes, may hold NUL) is exactly the C string lit. */
bool tb_schema_name_is(const char *name, size_t n, const char *lit);

/* True when the n bytes are text: UTF-8 without C0 controls or DEL. */
bool tb_schema_text_ok(const char *s, size_t n);

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
