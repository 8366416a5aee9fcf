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
	const char *const *one_of;    /* TB_ST_ENUM */
	const struct tb_field *sub;   /* TB_ST_OBJ: members; TB_ST_ARR: the element */
	bool unique;                  /* TB_ST_ARR of strings: no element twice */
	bool (*pred)(const char *s, size_t n); /* TB_ST_STR */
	const char *what;             /* TB_ST_STR: the rule, e.g. "an absolute URI" */
	int code;                     /* reason for a bad value; 0: TB_E_FIELD_VALUE */
	/* runs after the value passed its own checks (objects) */
	int (*hook)(struct tb_schema_ck *c, const struct tb_json *v);
};

/* Table rows (designated initialisers; unnamed members are zero). */
#define TB_F_END {.name = NULL}
#define TB_F(n, type, r) {.name = (n), .t = (type), .req = (r)}
#define TB_F_TEXT(n, r, lo, hi) {.name = (n), .t = TB_ST_TEXT, .req = (r), .min = (lo), .max = (hi)}
#define TB_F_STR(n, r, hi, p, w)                                                                   \
	{.name = (n), .t = TB_ST_STR, .req = (r), .max = (hi), .pred = (p), .what = (w)}
#define TB_F_ENUM(n, r, set) {.name = (n), .t = TB_ST_ENUM, .req = (r), .one_of = (set)}
#define TB_F_HEX(n, r, digits) {.name = (n), .t = TB_ST_HEX, .req = (r), .min = (digits)}
#define TB_F_B64(n, r, lo, hi) {.name = (n), .t = TB_ST_B64, .req = (r), .min = (lo), .max = (hi)}
#define TB_F_INT(n, r, lo, hi) {.name = (n), .t = TB_ST_INT, .req = (r), .min = (lo), .max = (hi)}
#define TB_F_OBJ(n, r, s, h) {.name = (n), .t = TB_ST_OBJ, .req = (r), .sub = (s), .hook = (h)}
#define TB_F_ARR(n, r, lo, hi, el, u)                                                              \
	{.name = (n), .t = TB_ST_ARR, .req = (r), .min = (lo), .max = (hi), .sub = (el), .unique = (u)}
#define TB_F_MAP(n, r, hi) {.name = (n), .t = TB_ST_MAP, .req = (r), .max = (hi)}

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

#endif
