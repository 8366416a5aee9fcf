/* SPDX-License-Identifier: Apache-2.0 */
/* test_archive.c - the archive of pruned messages (node/archive): the
 * documented line format, one gzip member per round, files made only
 * when there is something to write, and a failing archive keeping the
 * journal whole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "node/archive.h"
#include "node/journal.h"
#include "util/tb_buf.h"
#include "util/tb_err.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/tbarch.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

/* The whole decompressed file (all members) into buf. */
static size_t
read_gz(const char *path, char *buf, size_t cap)
{
	gzFile g = gzopen(path, "rb");
	int n;

	assert_non_null(g);
	n = gzread(g, buf, (unsigned)cap - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	gzclose(g);
	return (size_t)n;
}

static void
test_lines(void **state)
{
	char sub[128], path[256], buf[4096];
	struct tb_journal_retired r = {0};
	struct tb_journal_archiver h;
	struct tb_archive *a;
	struct stat sb;
	/* 2026-12-05 12:00 UTC */
	int64_t now = 1796472000;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/a/archive", dir);
	/* a round with nothing to archive makes no directory and no file */
	assert_non_null(a = tb_archive_open(sub, now, NULL));
	tb_archive_hook(a, &h);
	assert_int_equal(h.sync(h.ctx), TB_OK);
	tb_archive_close(a);
	assert_int_equal(stat(sub, &sb), -1);

	r.dir = 'i';
	r.id = "0123456789abcdef0123456789abcdef";
	r.digest = "4f43b9b38b0aceb2bfb3ce76b285b543b129b39cbd8011fb1f6b2dfbc58944b0";
	r.peer = "320300";
	r.type = "case.submit";
	r.state = "acked";
	r.at = 1796471000;
	r.envelope = (const uint8_t *)"{\"a\":1}";
	r.envelope_len = 7;
	r.receipt = (const uint8_t *)"\xff\xfe";
	r.receipt_len = 2;
	for (int round = 0; round < 2; round++) {
		assert_non_null(a = tb_archive_open(sub, now, NULL));
		tb_archive_hook(a, &h);
		assert_int_equal(h.put(h.ctx, &r), TB_OK);
		assert_int_equal(h.sync(h.ctx), TB_OK);
		/* one call per handle */
		assert_int_equal(h.put(h.ctx, &r), TB_E_ARG);
		assert_int_equal(tb_archive_count(a), 1);
		tb_archive_close(a);
		r.dir = 'o';
		r.state = "failed";
		r.receipt = NULL;
		r.receipt_len = 0;
		r.type = "odd\"type\\\n";
	}
	snprintf(path, sizeof(path), "%s/2026-12-05.jsonl.gz", sub);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	/* two members, read as one file; base64url without padding */
	read_gz(path, buf, sizeof(buf));
	assert_string_equal(
	    buf, "{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"dir\":\"in\","
	         "\"peer\":\"320300\",\"type\":\"case.submit\","
	         "\"digest\":\"4f43b9b38b0aceb2bfb3ce76b285b543b129b39cbd8011fb1f6b2dfbc58944b0\","
	         "\"state\":\"acked\",\"at\":1796471000,\"envelope\":\"eyJhIjoxfQ\","
	         "\"receipt\":\"__4\"}\n"
	         "{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"dir\":\"out\","
	         "\"peer\":\"320300\",\"type\":\"odd\\\"type\\\\\\u000a\","
	         "\"digest\":\"4f43b9b38b0aceb2bfb3ce76b285b543b129b39cbd8011fb1f6b2dfbc58944b0\","
	         "\"state\":\"failed\",\"at\":1796471000,\"envelope\":\"eyJhIjoxfQ\","
	         "\"receipt\":\"\"}\n");
}

/* An archive that cannot be written: the journal keeps every message. */
static void
test_unwritable(void **state)
{
	char jpath[128], bad[128], blocker[128];
	struct tb_journal_archiver h;
	struct tb_journal_msg m = {0};
	struct tb_journal *j;
	struct tb_archive *a;
	size_t removed = 9;
	struct tb_buf b;
	int64_t now = (int64_t)time(NULL), n;
	FILE *f;

	(void)state;
	snprintf(jpath, sizeof(jpath), "%s/j.db", dir);
	snprintf(blocker, sizeof(blocker), "%s/file", dir);
	snprintf(bad, sizeof(bad), "%s/file/archive", dir);
	assert_non_null(f = fopen(blocker, "w"));
	fclose(f);
	assert_non_null(j = tb_journal_open(jpath, NULL));
	m.id = "0123456789abcdef0123456789abcdef";
	m.digest = "4f43b9b38b0aceb2bfb3ce76b285b543b129b39cbd8011fb1f6b2dfbc58944b0";
	m.from = "320300";
	m.to = "371300";
	m.type = "case.submit";
	m.created = now - 100;
	m.expires = now - 50;
	m.envelope = (const uint8_t *)"{}";
	m.envelope_len = 2;
	m.receipt = (const uint8_t *)"{}";
	m.receipt_len = 2;
	assert_int_equal(tb_journal_inbound_put(j, &m, NULL), TB_OK);
	assert_int_equal(tb_journal_inbox_ack(j, m.id), TB_OK);
	assert_non_null(a = tb_archive_open(bad, now, NULL));
	tb_archive_hook(a, &h);
	assert_int_equal(tb_journal_retire(j, now + 10, 0, 0, 10, &h, &removed), TB_E_IO);
	assert_int_equal(removed, 0);
	assert_non_null(strstr(tb_archive_error(a)->detail, "mkdir"));
	tb_archive_close(a);
	assert_int_equal(tb_journal_inbox_count(j, &n), TB_OK);
	tb_buf_init(&b);
	assert_int_equal(tb_journal_inbound_receipt(j, m.id, &b), TB_OK);
	tb_buf_free(&b);
	tb_journal_close(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines),
	    cmocka_unit_test(test_unwritable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
