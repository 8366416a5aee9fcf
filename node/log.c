/* SPDX-License-Identifier: Apache-2.0 */
/* log.c - levelled logging to standard error: text or JSON lines, syslog
 * priority prefixes under journald. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* set on the loop (start-up, SIGHUP), read by every thread that logs */
static int cur_level = TB_LOG_INFO;
static int cur_format = TB_LOG_TEXT;
/* stderr is journald's stream: decided once (JOURNAL_STREAM) */
static bool journald;
static pthread_once_t journald_once = PTHREAD_ONCE_INIT;
/* told of each level set: a library whose own level follows ours */
static void (*level_hook)(enum tb_log_level lvl);

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const event_names[] = {"accepted", "sent", "delivered", "received", "failed"};

/* One line, written with one write(2): a pipe write of at most PIPE_BUF
 * (4096 on Linux) bytes is atomic, so lines of threads never mix. */
#define LINE_CAP 4096
#define LINE_TAIL 16 /* kept free for the line's end: "...", "\"}", '\n' */

struct line {
	char b[LINE_CAP];
	size_t len;
	bool cut; /* something did not fit */
};

/* Adds n bytes whole, or nothing (then the line is cut): an escape
 * sequence or a character is never split.  Everything before a line's
 * message fits (bounded fields, an outcome of at most 511 bytes), so
 * only the message is ever cut. */
static void
add(struct line *l, const char *s, size_t n)
{
	if (l->len + n > LINE_CAP - LINE_TAIL) {
		l->cut = true;
		return;
	}
	memcpy(l->b + l->len, s, n);
	l->len += n;
}

static void
adds(struct line *l, const char *s)
{
	add(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t k;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, c = s[0] & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* no overlong forms, surrogates or values past U+10FFFF */
	if ((k == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (k == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return k;
}

/* s as the inside of a JSON string: escapes, U+FFFD for bytes that are
 * not UTF-8.  Stops where the rest would not fit. */
static void
add_json_str(struct line *l, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	char esc[8];

	while (n > 0 && !l->cut) {
		size_t k = utf8_len(p, n);
		if (k == 0) {
			add(l, "\\ufffd", 6);
			k = 1;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			add(l, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			add(l, esc, 6);
		} else {
			add(l, (const char *)p, k);
		}
		p += k;
		n -= k;
	}
}

/* s with control characters as spaces (text lines). */
static void
add_text(struct line *l, const char *s)
{
	for (; *s != '\0' && !l->cut; s++) {
		char c = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
		add(l, &c, 1);
	}
}

static void
add_json_field(struct line *l, const char *key, const char *val)
{
	adds(l, ",\"");
	adds(l, key);
	adds(l, "\":\"");
	add_json_str(l, val ? val : "");
	adds(l, "\"");
}

static void
detect_journald(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	journald = e != NULL && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* A message event's fields, for json. */
struct event {
	enum tb_msg_event ev;
	const char *id, *peer, *type, *outcome;
	long long ms;
};

/* Writes one line of msg at lvl (e: a message event's fields, or NULL). */
static void
emit(enum tb_log_level lvl, const struct event *e, const char *msg)
{
	static const char prio[] = {'7', '6', '4', '3'};
	struct line l = {.len = 0, .cut = false};
	char ts[40], num[32];
	struct timespec now;
	struct tm tm;
	ssize_t w;

	pthread_once(&journald_once, detect_journald);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ", now.tv_nsec / 1000000);
	if (journald) {
		char p[3] = {'<', prio[lvl], '>'};
		add(&l, p, 3);
	}
	if (__atomic_load_n(&cur_format, __ATOMIC_RELAXED) == TB_LOG_JSON) {
		adds(&l, "{\"ts\":\"");
		adds(&l, ts);
		adds(&l, "\",\"level\":\"");
		adds(&l, level_names[lvl]);
		adds(&l, "\"");
		if (e != NULL) {
			add_json_field(&l, "event", event_names[e->ev]);
			add_json_field(&l, "id", e->id);
			add_json_field(&l, "peer", e->peer);
			add_json_field(&l, "type", e->type);
			snprintf(num, sizeof(num), ",\"ms\":%lld", e->ms);
			adds(&l, num);
			add_json_field(&l, "outcome", e->outcome);
		}
		adds(&l, ",\"msg\":\"");
		add_json_str(&l, msg);
		l.len +=
		    (size_t)snprintf(l.b + l.len, LINE_CAP - l.len, "%s\"}\n", l.cut ? "..." : "");
	} else {
		if (!journald) {
			adds(&l, ts);
			adds(&l, " ");
		}
		adds(&l, level_names[lvl]);
		adds(&l, ": ");
		add_text(&l, msg);
		l.len +=
		    (size_t)snprintf(l.b + l.len, LINE_CAP - l.len, "%s\n", l.cut ? "..." : "");
	}
	/* nothing to do about a log that cannot be written; a signal before
	 * any byte went out is no reason to lose the line */
	do
		w = write(2, l.b, l.len);
	while (w < 0 && errno == EINTR);
}

static bool
enabled(enum tb_log_level lvl)
{
	return (int)lvl >= __atomic_load_n(&cur_level, __ATOMIC_RELAXED);
}

void
tb_log_set_level(enum tb_log_level lvl)
{
	void (*hook)(enum tb_log_level) = __atomic_load_n(&level_hook, __ATOMIC_ACQUIRE);

	__atomic_store_n(&cur_level, (int)lvl, __ATOMIC_RELAXED);
	if (hook != NULL)
		hook(lvl);
}

bool
tb_log_enabled(enum tb_log_level lvl)
{
	return enabled(lvl);
}

void
tb_log_set_hook(void (*fn)(enum tb_log_level lvl))
{
	__atomic_store_n(&level_hook, fn, __ATOMIC_RELEASE);
	if (fn != NULL)
		fn((enum tb_log_level)__atomic_load_n(&cur_level, __ATOMIC_RELAXED));
}

bool
tb_log_level_parse(const char *s, enum tb_log_level *out)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum tb_log_level)i;
			return true;
		}
	return false;
}

void
tb_log_set_format(enum tb_log_format f)
{
	__atomic_store_n(&cur_format, (int)f, __ATOMIC_RELAXED);
}

enum tb_log_format
tb_log_format_of(const char *name)
{
	return strcmp(name, "json") == 0 ? TB_LOG_JSON : TB_LOG_TEXT;
}

void
tb_log(enum tb_log_level lvl, const char *fmt, ...)
{
	char msg[LINE_CAP];
	va_list ap;

	if (!enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(lvl, NULL, msg);
}

/* Milliseconds since the time in message id's first 6 bytes (-1: not an
 * id). */
static long long
id_age_ms(const char *id)
{
	uint64_t ms = 0;
	struct timespec now;

	for (int i = 0; i < 12; i++) {
		char c = id[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		ms = ms << 4 | (uint64_t)v;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - (long long)ms;
}

void
tb_log_msg(enum tb_msg_event ev, const char *id, const char *peer, const char *type,
           const char *outcome_fmt, ...)
{
	char outcome[512], msg[LINE_CAP];
	struct event e = {
	    ev, id ? id : "", peer && *peer ? peer : "-", type && *type ? type : "-", outcome, 0};
	va_list ap;

	if (!enabled(TB_LOG_INFO))
		return;
	va_start(ap, outcome_fmt);
	vsnprintf(outcome, sizeof(outcome), outcome_fmt, ap);
	va_end(ap);
	e.ms = id_age_ms(e.id);
	snprintf(msg, sizeof(msg), "message %s: id=%s peer=%s type=%s ms=%lld outcome=%s",
	         event_names[ev], e.id, e.peer, e.type, e.ms, outcome);
	emit(TB_LOG_INFO, &e, msg);
}

bool
tb_report_event(struct tb_report *r, int64_t now_ms, int64_t window_ms, uint64_t *count,
                int64_t *span_s)
{
	r->pending++;
	if (r->last_ms != 0 && now_ms - r->last_ms < window_ms)
		return false;
	*count = r->pending;
	*span_s = r->last_ms != 0 ? (now_ms - r->last_ms + 500) / 1000 : 0;
	r->pending = 0;
	r->last_ms = now_ms;
	return true;
}

bool
tb_report_flush(struct tb_report *r, int64_t now_ms, int64_t window_ms, uint64_t *count,
                int64_t *span_s)
{
	if (r->pending == 0 || now_ms - r->last_ms < window_ms)
		return false;
	*count = r->pending;
	*span_s = (now_ms - r->last_ms + 500) / 1000;
	r->pending = 0;
	r->last_ms = now_ms;
	return true;
}
