/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_json.h - strict I-JSON (RFC 7493) parsing and RFC 8785 canonical form.
 *
 * Why not cJSON for signed content: cJSON accepts text that is not JSON
 * (leading "+" or zeros), keeps duplicate member names, cuts numbers after
 * 63 characters, cannot hold U+0000 inside a string, and reports an error
 * position only through a global.  Signed bytes need one exact reading, so
 * this module parses strictly into its own compact tree (one arena per
 * document) and serialises the RFC 8785 form.  cJSON stays in use where
 * nothing is signed.
 *
 * Limits: a document is refused beyond max_size bytes or max_depth nested
 * arrays/objects, before any deeper recursion happens.
 *
 * Thread-safety: no global state.  A document is built by one thread;
 * once complete, reading it (accessors, tb_json_canon) does not change
 * it and may happen in several threads at once.
 *
 * Ownership: a document owns every value in it (they die with
 * tb_json_doc_free); values and strings returned are borrowed from it.
 */
#ifndef TB_JSON_H
#define TB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/tb_err.h"

struct tb_buf;
struct tb_diag;
struct tb_json_doc; /* owns every value parsed or built in it */
struct tb_json;     /* a value inside a document */

enum tb_json_kind {
	TB_JSON_NULL,
	TB_JSON_FALSE,
	TB_JSON_TRUE,
	TB_JSON_NUMBER,
	TB_JSON_STRING,
	TB_JSON_ARRAY,
	TB_JSON_OBJECT,
};

struct tb_json_limits {
	size_t max_size;    /* bytes of input */
	unsigned max_depth; /* nested arrays/objects */
};

/* Defaults: 16 MiB, depth 512 (what `tongban canon` uses). */
extern const struct tb_json_limits tb_json_default_limits;

/*
 * Parses len bytes (borrowed; need not be NUL-terminated) into a new
 * document.  limits may be NULL for the defaults.  On failure returns NULL
 * and fills d: TB_E_JSON_SYNTAX / _UTF8 / _SURROGATE / _DUPKEY / _NUMBER /
 * _DEPTH or TB_E_TOO_LARGE, with the byte offset of the offending input.
 * The caller frees the document with tb_json_doc_free().
 */
TB_MUST_CHECK struct tb_json_doc *tb_json_parse(const uint8_t *text, size_t len,
                                                const struct tb_json_limits *limits,
                                                struct tb_diag *d);
/* An empty document to build values in. NULL on memory error. */
TB_MUST_CHECK struct tb_json_doc *tb_json_doc_new(void);
/* Frees the document and every value in it. NULL allowed. */
void tb_json_doc_free(struct tb_json_doc *doc);
/* The root value (NULL for a new, empty document). Borrowed. */
struct tb_json *tb_json_root(const struct tb_json_doc *doc);
void tb_json_set_root(struct tb_json_doc *doc, struct tb_json *v);

/* Accessors. Values are borrowed from their document. */
enum tb_json_kind tb_json_kind(const struct tb_json *v);
double tb_json_number(const struct tb_json *v);
/* True when v is a number with an integral value in [-2^53, 2^53]. */
TB_MUST_CHECK bool tb_json_integer(const struct tb_json *v, int64_t *out);
/* String bytes (UTF-8, may contain NUL) and length; NUL-terminated too. */
const char *tb_json_string(const struct tb_json *v, size_t *len);
/* Number of elements (array) or members (object); 0 otherwise (also for
 * v NULL: an absent member, as tb_json_get returns it). */
size_t tb_json_count(const struct tb_json *v);
/* Iteration: first child and next sibling, NULL at the end (and for v
 * NULL, so an absent optional member iterates as empty). */
struct tb_json *tb_json_first(const struct tb_json *v);
struct tb_json *tb_json_next(const struct tb_json *v);
/* Member name of an object member (the value returned by first/next). */
const char *tb_json_key(const struct tb_json *member, size_t *len);
/* Member of obj named key (NUL-terminated), or NULL. */
struct tb_json *tb_json_get(const struct tb_json *obj, const char *key);

/* Builders: values live in doc; NULL on memory error. s is copied. */
TB_MUST_CHECK struct tb_json *tb_json_new_object(struct tb_json_doc *doc);
TB_MUST_CHECK struct tb_json *tb_json_new_array(struct tb_json_doc *doc);
TB_MUST_CHECK struct tb_json *tb_json_new_string(struct tb_json_doc *doc, const char *s,
                                                 size_t len);
TB_MUST_CHECK struct tb_json *tb_json_new_number(struct tb_json_doc *doc, double n);
TB_MUST_CHECK struct tb_json *tb_json_new_literal(struct tb_json_doc *doc, enum tb_json_kind k);
/* Appends v (not yet in any container) to an array. */
TB_MUST_CHECK int tb_json_append(struct tb_json *arr, struct tb_json *v);
/* Sets member key of obj to v, replacing (and unlinking) an existing one. */
TB_MUST_CHECK int tb_json_set(struct tb_json_doc *doc, struct tb_json *obj, const char *key,
                              struct tb_json *v);
/* Removes member key from obj if present. */
void tb_json_remove(struct tb_json *obj, const char *key);

/* The number of bytes at the start of p[0..n) that are neither '"' nor
 * '\\' (whole runs of eight and more are found eight bytes at a time): a
 * scanner inside a JSON string can skip them. */
size_t tb_json_string_run(const uint8_t *p, size_t n);

/* Where member m of a parsed object lies in the text it was parsed from:
 * bytes [*from, *to), its name through its value, as parsed (changes
 * made since are not reflected).  false for a value built with the
 * functions above, or not an object's member. */
TB_MUST_CHECK bool tb_json_member_span(const struct tb_json *m, size_t *from, size_t *to);

/*
 * Appends the RFC 8785 canonical form of v to out.  If omit is not NULL
 * and v is an object, its members named in the NULL-terminated list are
 * left out (used to exclude the signature).  0 or TB_E_NOMEM.
 */
TB_MUST_CHECK int tb_json_canon(const struct tb_json *v, const char *const *omit,
                                struct tb_buf *out);

/*
 * Writes the ECMAScript (ES2015+) Number.prototype.toString form of a
 * finite double into out (at least 32 bytes).  Returns the length.
 */
size_t tb_json_fmt_number(double v, char out[32]);

/* True when the n bytes are well-formed UTF-8 (no surrogates, no
 * overlongs, nothing above U+10FFFF). */
bool tb_utf8_valid(const uint8_t *s, size_t n);

#endif
