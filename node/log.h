/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - the one logging API of the node: levels, printf checking, one
 * format for the node's own lines and libcoap's (docs/ADMIN.md "Logs").
 *
 * Lines go to standard error, in one of two formats (config key
 * log_format):
 *   text  "2026-01-02T03:04:05.678Z LEVEL: message"
 *   json  {"ts":"2026-01-02T03:04:05.678Z","level":"info",...,"msg":"..."}
 *         one object a line; a message event adds event, id, peer, type,
 *         ms and outcome (tb_log_msg).
 * When standard error is journald's stream (the JOURNAL_STREAM variable
 * names its device and inode, as systemd sets it), each line starts with
 * its syslog priority "<N>" (sd-daemon(3): 3 error, 4 warn, 6 info,
 * 7 debug) and a text line has no timestamp: journald keeps both.
 * libcoap's lines go through the same logger at the mapped level (its
 * own level follows tb_log_set_level), prefixed "libcoap: ".  Control
 * characters in a message are replaced (text) or escaped (json), and
 * bytes that are not UTF-8 become U+FFFD in json, so a peer's text
 * cannot forge a line.  Never pass personal identifiers or key material.
 * The level and format are process state of the daemon (node/ is where
 * such state may live).
 *
 * Thread-safety: every function may be called from any thread; each line
 * is built in a buffer of its own and written whole with one write(2)
 * (at most 4096 bytes, longer messages are cut, so a pipe never
 * interleaves two lines).  Level and format are atomic values:
 * tb_log_set_level and tb_log_set_format may run while others log.
 */
#ifndef TB_LOG_H
#define TB_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "../util/tb_err.h"

enum tb_log_level { TB_LOG_DEBUG, TB_LOG_INFO, TB_LOG_WARN, TB_LOG_ERROR };
enum tb_log_format { TB_LOG_TEXT, TB_LOG_JSON };

/* The node's level; the hook's library follows it (tb_log_set_hook). */
void tb_log_set_level(enum tb_log_level lvl);
/* True when a line at lvl would be written. */
bool tb_log_enabled(enum tb_log_level lvl);
/* fn (or NULL: none) is called with the level now and with each level
 * set after, on the setter's thread: how a library's own log level
 * follows the node's (tb_log_attach_coap). */
void tb_log_set_hook(void (*fn)(enum tb_log_level lvl));
/* "debug", "info", "warn", "error" -> level; false if unknown. */
TB_MUST_CHECK bool tb_log_level_parse(const char *s, enum tb_log_level *out);
void tb_log_set_format(enum tb_log_format f);
/* "json" -> TB_LOG_JSON; anything else TB_LOG_TEXT (the configuration
 * table admits only "text" and "json"). */
enum tb_log_format tb_log_format_of(const char *name);
void tb_log(enum tb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message events, each logged once at info level per message:
 * accepted (a local submission journalled), sent (an attempt handed to
 * the transport), delivered (its receipt verified and journalled),
 * received (an envelope from a peer journalled, or a duplicate of one),
 * failed (given up for good). */
enum tb_msg_event {
	TB_MSG_ACCEPTED,
	TB_MSG_SENT,
	TB_MSG_DELIVERED,
	TB_MSG_RECEIVED,
	TB_MSG_FAILED
};

/* Logs one message event: id (32 hex), peer (the member at the other
 * end: the recipient, or for received the sender), type (NULL or "":
 * unknown), the outcome (printf format).  ms is computed here from the
 * time in the id (docs/PROTOCOL.md 1): milliseconds since the message
 * was accepted by the node that made it, by this node's clock.  All
 * strings are borrowed. */
void tb_log_msg(enum tb_msg_event ev, const char *id, const char *peer, const char *type,
                const char *outcome_fmt, ...) __attribute__((format(printf, 5, 6)));

/* Rate limit of a repeated log line: at most one line per window, the
 * ones held back counted into the next (the transport's per-peer lines,
 * flood.c's per-source ones). */
struct tb_report {
	int64_t last_ms;  /* when a line was last written (0: never) */
	uint64_t pending; /* events since, not yet in a line */
	char why[160];    /* the latest event's reason */
};
/* Counts one event in r: true when a log line is due now (the first
 * event, or the first after window_ms since the last line); *count
 * receives the events the line covers and *span_s the seconds since the
 * last line (0 for a first line). */
bool tb_report_event(struct tb_report *r, int64_t now_ms, int64_t window_ms, uint64_t *count,
                     int64_t *span_s);
/* True when events are held back and window_ms has passed since the last
 * line: a summary line is due (*count, *span_s as above). */
bool tb_report_flush(struct tb_report *r, int64_t now_ms, int64_t window_ms, uint64_t *count,
                     int64_t *span_s);

/* coaplog.c */
/* Routes libcoap's log through tb_log (its PDU dumps too, which libcoap
 * otherwise prints to stdout), prefixed "libcoap: ", and makes its level
 * follow the node's: debug LOG_DEBUG, info LOG_INFO, warn LOG_WARNING,
 * error LOG_ERR.  Called once, by the transport at start. */
void tb_log_attach_coap(void);

#define log_debug(...) tb_log(TB_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) tb_log(TB_LOG_INFO, __VA_ARGS__)
#define log_warnx(...) tb_log(TB_LOG_WARN, __VA_ARGS__)
#define log_errorx(...) tb_log(TB_LOG_ERROR, __VA_ARGS__)

#endif
