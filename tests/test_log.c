/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_log.c - node/log: the promises of log.h.  Text lines are
 * "TIMESTAMP LEVEL: msg" with control characters as spaces; json lines
 * are one object each that a strict parser (protocol/tb_json) reads,
 * with quotes, backslashes and control characters escaped and bytes that
 * are not UTF-8 as U+FFFD; a message event carries its fields and the
 * age in its id; a line is at most 4096 bytes, a longer message is cut
 * and marked; lines below the level are not written; lines of threads
 * logging at once into one pipe never mix (one write(2) each).
 * (The journald prefixes are tested on a real node: tests/node_logs.sh.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node/log.h"
#include "protocol/tb_json.h"
#include "util/tb_err.h"

/* Standard error goes to a new temporary file until capture_end. */
struct capture {
	int saved, fd;
	char path[64];
};

static void
capture_begin(struct capture *c)
{
	snprintf(c->path, sizeof(c->path), "/tmp/test_log.XXXXXX");
	c->fd = mkstemp(c->path);
	assert_true(c->fd >= 0);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, 2), 2);
}

/* Restores stderr; returns what was written (caller frees). */
static char *
capture_end(struct capture *c, size_t *len)
{
	char *buf;
	off_t n;

	assert_int_equal(dup2(c->saved, 2), 2);
	close(c->saved);
	n = lseek(c->fd, 0, SEEK_END);
	assert_true(n >= 0);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(pread(c->fd, buf, (size_t)n, 0), n);
	close(c->fd);
	unlink(c->path);
	*len = (size_t)n;
	return buf;
}

static bool
is_timestamp(const char *s)
{
	const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";

	for (size_t i = 0; pat[i] != '\0'; i++)
		if (pat[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != pat[i])
			return false;
	return true;
}

static void
test_text(void **state)
{
	struct capture c;
	size_t len;
	char *out;

	(void)state;
	tb_log_set_format(TB_LOG_TEXT);
	tb_log_set_level(TB_LOG_INFO);
	capture_begin(&c);
	log_debug("not shown");
	log_info("hello %d", 5);
	log_warnx("a\nb\tc\x1b[31md\x7f");
	out = capture_end(&c, &len);
	/* two lines, each "TIMESTAMP LEVEL: msg\n" */
	assert_int_equal(len, 2 * 25 + strlen("info: hello 5\n") + strlen("warn: a b c [31md \n"));
	assert_true(is_timestamp(out));
	assert_memory_equal(out + 24, " info: hello 5\n", 15);
	assert_true(is_timestamp(out + 39));
	assert_string_equal(out + 63, " warn: a b c [31md \n");
	free(out);
}

/* The JSON object of line out (one line, '\n' ended), parsed strictly. */
static struct tb_json_doc *
parse_line(const char *out, size_t len)
{
	struct tb_diag d;
	struct tb_json_doc *doc;

	assert_true(len > 0 && out[len - 1] == '\n');
	assert_null(memchr(out, '\n', len - 1));
	doc = tb_json_parse((const uint8_t *)out, len - 1, NULL, &d);
	if (doc == NULL)
		fail_msg("not JSON (%s at %zu): %s", tb_err_reason(d.code), d.offset, out);
	assert_int_equal(tb_json_kind(tb_json_root(doc)), TB_JSON_OBJECT);
	return doc;
}

static const char *
str(const struct tb_json_doc *doc, const char *key)
{
	const struct tb_json *v = tb_json_get(tb_json_root(doc), key);

	assert_non_null(v);
	assert_int_equal(tb_json_kind(v), TB_JSON_STRING);
	return tb_json_string(v, NULL);
}

static void
test_json_escapes(void **state)
{
	struct capture c;
	struct tb_json_doc *doc;
	size_t len;
	char *out;

	(void)state;
	tb_log_set_format(TB_LOG_JSON);
	tb_log_set_level(TB_LOG_INFO);
	capture_begin(&c);
	log_warnx(
	    "q\" b\\ nl\n c\x01 bad\xff\xc3 ok\xc3\xa9\xe4\xb8\xad over\xc0\xaf sur\xed\xa0\x80");
	out = capture_end(&c, &len);
	doc = parse_line(out, len);
	assert_true(is_timestamp(str(doc, "ts")));
	assert_string_equal(str(doc, "level"), "warn");
	/* each byte of a sequence that is not UTF-8 (bad, cut, overlong,
	 * surrogate) is one U+FFFD */
	assert_string_equal(str(doc, "msg"), "q\" b\\ nl\n c\x01 bad\xef\xbf\xbd\xef\xbf\xbd "
	                                     "ok\xc3\xa9\xe4\xb8\xad over\xef\xbf\xbd\xef\xbf\xbd "
	                                     "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_null(tb_json_get(tb_json_root(doc), "event"));
	tb_json_doc_free(doc);
	free(out);
	tb_log_set_format(TB_LOG_TEXT);
}

static void
test_msg_event(void **state)
{
	struct capture c;
	struct tb_json_doc *doc;
	struct timespec now;
	const struct tb_json *ms;
	int64_t age = 0;
	char id[33];
	size_t len;
	char *out;

	(void)state;
	/* an id made 1.5 s ago: its first 6 bytes are its time in ms */
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t t = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000 - 1500;
	snprintf(id, sizeof(id), "%012llx%020d", (unsigned long long)t, 7);
	tb_log_set_format(TB_LOG_JSON);
	tb_log_set_level(TB_LOG_INFO);
	capture_begin(&c);
	tb_log_msg(TB_MSG_SENT, id, "371300", "case.submit", "via %s", "110000");
	out = capture_end(&c, &len);
	doc = parse_line(out, len);
	assert_string_equal(str(doc, "level"), "info");
	assert_string_equal(str(doc, "event"), "sent");
	assert_string_equal(str(doc, "id"), id);
	assert_string_equal(str(doc, "peer"), "371300");
	assert_string_equal(str(doc, "type"), "case.submit");
	assert_string_equal(str(doc, "outcome"), "via 110000");
	assert_non_null(strstr(str(doc, "msg"), "message sent: id="));
	ms = tb_json_get(tb_json_root(doc), "ms");
	assert_non_null(ms);
	assert_true(tb_json_integer(ms, &age));
	assert_true(age >= 1500 && age < 61500);
	tb_json_doc_free(doc);
	free(out);

	/* text: the same fields in the message; none below info */
	tb_log_set_format(TB_LOG_TEXT);
	capture_begin(&c);
	tb_log_msg(TB_MSG_FAILED, id, NULL, "", "time.expired");
	tb_log_set_level(TB_LOG_WARN);
	tb_log_msg(TB_MSG_DELIVERED, id, "371300", "case.submit", "receipt verified");
	out = capture_end(&c, &len);
	assert_non_null(strstr(out, " info: message failed: id="));
	assert_non_null(strstr(out, " peer=- type=- ms="));
	assert_non_null(strstr(out, " outcome=time.expired\n"));
	assert_null(strstr(out, "delivered"));
	free(out);
	tb_log_set_level(TB_LOG_INFO);
}

static void
test_long_line(void **state)
{
	enum tb_log_format fmts[] = {TB_LOG_TEXT, TB_LOG_JSON};
	char *big = malloc(10001);
	struct capture c;
	size_t len;
	char *out;

	(void)state;
	assert_non_null(big);
	/* escaped in json: each control character takes 6 bytes */
	for (int i = 0; i < 10000; i++)
		big[i] = i % 7 == 0 ? '\x02' : 'x';
	big[10000] = '\0';
	for (int f = 0; f < 2; f++) {
		tb_log_set_format(fmts[f]);
		capture_begin(&c);
		log_info("%s", big);
		out = capture_end(&c, &len);
		assert_true(len <= 4096);
		assert_true(len > 3000);
		if (fmts[f] == TB_LOG_JSON) {
			struct tb_json_doc *doc = parse_line(out, len);
			const char *msg = str(doc, "msg");
			assert_string_equal(msg + strlen(msg) - 3, "...");
			tb_json_doc_free(doc);
		} else {
			assert_string_equal(out + len - 4, "...\n");
		}
		free(out);
	}
	tb_log_set_format(TB_LOG_TEXT);
	free(big);
}

/* ---- threads ---- */

#define NTHREADS 4
#define NLINES 300
#define LINELEN 3000

static void *
writer(void *arg)
{
	char msg[LINELEN + 1];

	memset(msg, 'a' + (int)(intptr_t)arg, LINELEN);
	msg[LINELEN] = '\0';
	for (int i = 0; i < NLINES; i++)
		log_info("%s", msg);
	return NULL;
}

struct sink {
	int fd;
	char *buf;
	size_t len, cap;
};

static void *
reader(void *arg)
{
	struct sink *s = arg;
	ssize_t n;

	while ((n = read(s->fd, s->buf + s->len, s->cap - s->len)) > 0)
		s->len += (size_t)n;
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t w[NTHREADS], r;
	struct sink s = {-1, NULL, 0, (size_t)NTHREADS * NLINES * (LINELEN + 64)};
	int p[2], saved;
	size_t lines = 0;

	(void)state;
	tb_log_set_format(TB_LOG_TEXT);
	tb_log_set_level(TB_LOG_INFO);
	assert_non_null(s.buf = malloc(s.cap));
	assert_int_equal(pipe(p), 0);
	s.fd = p[0];
	assert_int_equal(pthread_create(&r, NULL, reader, &s), 0);
	saved = dup(2);
	assert_int_equal(dup2(p[1], 2), 2);
	close(p[1]);
	for (intptr_t i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, writer, (void *)i), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(w[i], NULL);
	assert_int_equal(dup2(saved, 2), 2); /* the pipe's last writer closes */
	close(saved);
	pthread_join(r, NULL);
	close(p[0]);
	/* every line whole: the prefix, then LINELEN of one letter */
	for (size_t at = 0; at < s.len; lines++) {
		char *eol = memchr(s.buf + at, '\n', s.len - at);
		assert_non_null(eol);
		size_t n = (size_t)(eol - (s.buf + at));
		assert_int_equal(n, 24 + 7 + LINELEN);
		assert_memory_equal(s.buf + at + 24, " info: ", 7);
		char ch = s.buf[at + 31];
		for (size_t k = 31; k < n; k++)
			if (s.buf[at + k] != ch)
				fail_msg("line %zu mixes '%c' and '%c'", lines, ch, s.buf[at + k]);
		at += n + 1;
	}
	assert_int_equal(lines, NTHREADS * NLINES);
	free(s.buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text),      cmocka_unit_test(test_json_escapes),
	    cmocka_unit_test(test_msg_event), cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_threads),
	};
	/* stderr must not be journald's stream here */
	unsetenv("JOURNAL_STREAM");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
