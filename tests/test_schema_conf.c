/* SPDX-License-Identifier: Apache-2.0 */
/* test_schema_conf.c - the configuration-file half of the schema engine
 * (protocol/tb_schema.h) on a table of its own, and the node's table
 * (node/config.c) through it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/config.h"
#include "protocol/tb_schema.h"
#include "util/tb_err.h"

/* ---- a table of every type ---- */

struct rec {
	char name[8];
	char path[32];
	int64_t n, flag;
	char level[8];
	char id[8], upstream[8];
	char host[16];
	int port;
	char url[64];
	int64_t lo, hi;
};

static const char *const levels[] = {"a", "bb", "ccc", NULL};

#define F(f) .off = offsetof(struct rec, f), .size = sizeof(((struct rec *)0)->f)

static const struct tb_conf_key rows[] = {
    {"name", TB_CONF_STR, .flags = TB_CONF_REQUIRED, F(name), .help = "a name"},
    {"path", TB_CONF_PATH, .flags = TB_CONF_FILE, F(path), .def = "data.db", .help = "a file"},
    {"n", TB_CONF_INT, F(n), .min = -5, .max = 100, .def = "7", .help = "a number"},
    {"flag", TB_CONF_BOOL, .flags = TB_CONF_RELOAD, F(flag), .def = "no", .help = "a flag"},
    {"level", TB_CONF_ENUM, .flags = TB_CONF_RELOAD, F(level), .words = levels, .def = "bb",
     .help = "a word"},
    {"id", TB_CONF_MEMBER, .flags = TB_CONF_REQUIRED, F(id), .help = "a member id"},
    {"upstream", TB_CONF_MEMBER, F(upstream), .def = "", .help = "a member id or nothing"},
    {"addr", TB_CONF_HOSTPORT, F(host), .off2 = offsetof(struct rec, port), .min = 1, .max = 65535,
     .def = "127.0.0.1:80", .check = tb_conf_check_loopback, .help = "an address"},
    {"url", TB_CONF_STR, F(url), .def = "", .check = tb_conf_check_loopback_url, .help = "a URL"},
    {"lo", TB_CONF_INT, .flags = TB_CONF_RELOAD, F(lo), .min = 0, .max = 1000, .def = "10",
     .help = "low"},
    {"hi", TB_CONF_INT, .flags = TB_CONF_RELOAD, F(hi), .min = 0, .max = 1000, .def = "100",
     .help = "high"},
};

static bool
lo_hi(const void *p, const char *keys[2], char *why, size_t whylen)
{
	const struct rec *r = p;

	if (r->lo <= r->hi)
		return true;
	keys[0] = "lo";
	keys[1] = "hi";
	snprintf(why, whylen, "lo (%lld) > hi (%lld)", (long long)r->lo, (long long)r->hi);
	return false;
}

static const struct tb_conf_table table = {rows, sizeof(rows) / sizeof(rows[0]), lo_hi};

static int
parse(const char *text, struct rec *r, unsigned *lines, struct tb_diag *d)
{
	memset(r, 0xa5, sizeof(*r)); /* the engine must not rely on a cleared record */
	tb_diag_clear(d);
	return tb_conf_parse(&table, "t.conf", "/etc/x", text, strlen(text), r, lines, d);
}

#define B "name = a\nid = 320300\n" /* the required keys, lines 1 and 2 */

static void
test_values(void **state)
{
	struct rec r;
	struct tb_diag d;
	unsigned lines[sizeof(rows) / sizeof(rows[0])];

	(void)state;
	/* defaults */
	assert_int_equal(parse(B, &r, lines, &d), TB_OK);
	assert_string_equal(r.name, "a");
	assert_string_equal(r.id, "320300");
	assert_string_equal(r.path, "/etc/x/data.db");
	assert_int_equal(r.n, 7);
	assert_int_equal(r.flag, 0);
	assert_string_equal(r.level, "bb");
	assert_string_equal(r.upstream, "");
	assert_string_equal(r.host, "127.0.0.1");
	assert_int_equal(r.port, 80);
	assert_string_equal(r.url, "");
	assert_int_equal(lines[0], 1);
	assert_int_equal(lines[5], 2);
	assert_int_equal(lines[1], 0);

	/* comments, blank lines, spaces, CRLF, '=' in a value, no final newline */
	assert_int_equal(
	    parse("# head\n\n  name=b  # tail\r\n\tid =\t371300\r\nn = -5\n"
	          "flag = yes\nlevel = ccc\nupstream = 320000\naddr = ::1:8080\n"
	          "url = http://127.0.0.1:9/hook?a=b\npath = /var/y.db\nlo=0\nhi =1000",
	          &r, lines, &d),
	    TB_OK);
	assert_string_equal(r.name, "b");
	assert_string_equal(r.id, "371300");
	assert_int_equal(r.n, -5);
	assert_int_equal(r.flag, 1);
	assert_string_equal(r.level, "ccc");
	assert_string_equal(r.upstream, "320000");
	assert_string_equal(r.host, "::1");
	assert_int_equal(r.port, 8080);
	assert_string_equal(r.url, "http://127.0.0.1:9/hook?a=b");
	assert_string_equal(r.path, "/var/y.db");
	assert_int_equal(r.lo, 0);
	assert_int_equal(r.hi, 1000);
	assert_int_equal(lines[0], 3);
	assert_int_equal(lines[5], 4);
	assert_int_equal(lines[10], 13);

	/* an empty value where the default is empty: not set */
	assert_int_equal(parse(B "upstream =\nurl = \n", &r, NULL, &d), TB_OK);
	assert_string_equal(r.upstream, "");
	assert_string_equal(r.url, "");

	/* a relative path without a directory stays relative */
	memset(&r, 0, sizeof(r));
	assert_int_equal(
	    tb_conf_parse(&table, "t.conf", NULL, B "path = a/b", strlen(B) + 10, &r, NULL, &d),
	    TB_OK);
	assert_string_equal(r.path, "a/b");

	/* text need not end in a NUL: only len bytes are read */
	assert_int_equal(
	    tb_conf_parse(&table, "t.conf", "/d", B "n = 12345", strlen(B) + 6, &r, NULL, &d),
	    TB_OK);
	assert_int_equal(r.n, 12);
}

static void
test_bool_words(void **state)
{
	static const struct {
		const char *v;
		int64_t want;
	} cases[] = {{"yes", 1}, {"true", 1},  {"on", 1},  {"1", 1},
	             {"no", 0},  {"false", 0}, {"off", 0}, {"0", 0}};
	struct rec r;
	struct tb_diag d;
	char text[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), B "flag = %s\n", cases[i].v);
		assert_int_equal(parse(text, &r, NULL, &d), TB_OK);
		assert_int_equal(r.flag, cases[i].want);
	}
}

static void
test_loopback_urls(void **state)
{
	static const char *const good[] = {
	    "http://127.0.0.1:8080/hook", "http://localhost/x", "http://[::1]:9/p?q=1",
	    "http://127.0.0.1:65535",     "http://127.0.0.1/",
	};
	static const struct {
		const char *url, *why;
	} bad[] = {
	    {"https://127.0.0.1/x", "must be an http:// URL"},
	    {"127.0.0.1:80/x", "must be an http:// URL"},
	    {"http://192.0.2.1:80/x", "loopback"},
	    {"http://127.0.0.1.evil.example/x", "loopback"},
	    {"http://127.0.0.1@evil.example/x", "loopback"},
	    {"http://evil.example/127.0.0.1", "loopback"},
	    {"http://::1/x", "loopback"},
	    {"http://127.0.0.1:0/x", "port"},
	    {"http://127.0.0.1:65536/x", "port"},
	    {"http://127.0.0.1:80x/x", "port"},
	    {"http://127.0.0.1:/x", "port"},
	    {"http://[::1]x/p", "must be http://HOST[:PORT][/PATH]"},
	    {"http://127.0.0.1/a b", "space"},
	    {"http://127.0.0.1/a\tb", "space"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (tb_conf_check_loopback_url(good[i]) != NULL)
			fail_msg("%s refused: %s", good[i], tb_conf_check_loopback_url(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = tb_conf_check_loopback_url(bad[i].url);
		if (why == NULL || strstr(why, bad[i].why) == NULL)
			fail_msg("%s: got %s, want ...%s...", bad[i].url, why ? why : "accepted",
			         bad[i].why);
	}
	assert_null(tb_conf_check_loopback("127.0.0.1:1"));
	assert_null(tb_conf_check_loopback("::1:1"));
	assert_null(tb_conf_check_loopback("localhost:1"));
	assert_non_null(tb_conf_check_loopback("0.0.0.0:1"));
	assert_non_null(tb_conf_check_loopback("[::1]:1")); /* a socket address, not a URL */
	assert_non_null(tb_conf_check_loopback("127.0.0.2:1"));
	assert_non_null(tb_conf_check_loopback("127.0.0.1"));
}

/* Each refusal, with its exact message. */
static void
test_refusals(void **state)
{
	static const struct {
		const char *text, *detail;
	} cases[] = {
	    /* bounds and syntax of each type */
	    {B "n = 101", "t.conf:3: n: must be an integer in -5..100"},
	    {B "n = -6", "t.conf:3: n: must be an integer in -5..100"},
	    {B "n = 12x", "t.conf:3: n: must be an integer in -5..100"},
	    {B "n = 1 2", "t.conf:3: n: must be an integer in -5..100"},
	    {B "n = 99999999999999999999", "t.conf:3: n: must be an integer in -5..100"},
	    {B "n =", "t.conf:3: n: must be an integer in -5..100"},
	    {B "flag = maybe", "t.conf:3: flag: must be yes or no (true/false, on/off, 1/0)"},
	    {B "flag = YES", "t.conf:3: flag: must be yes or no (true/false, on/off, 1/0)"},
	    {B "level = dd", "t.conf:3: level: must be one of a, bb, ccc"},
	    {B "level = b", "t.conf:3: level: must be one of a, bb, ccc"},
	    {B "level =", "t.conf:3: level: must be one of a, bb, ccc"},
	    {B "upstream = hello", "t.conf:3: upstream: must be a 6-digit member id"},
	    {B "upstream = 032030", "t.conf:3: upstream: must be a 6-digit member id"},
	    {B "upstream = 3203001", "t.conf:3: upstream: must be a 6-digit member id"},
	    {B "upstream = 32030", "t.conf:3: upstream: must be a 6-digit member id"},
	    {"name = a\nid =\n", "t.conf:2: id: must be a 6-digit member id"},
	    {B "addr = 10.0.0.1:80",
	     "t.conf:3: addr: must be a loopback address (127.0.0.1, ::1 or localhost)"},
	    {B "addr = 127.0.0.1", "t.conf:3: addr: must be HOST:PORT"},
	    {B "addr = :80", "t.conf:3: addr: must be HOST:PORT"},
	    {B "addr = 127.0.0.1:0", "t.conf:3: addr: port must be an integer in 1..65535"},
	    {B "addr = 127.0.0.1:65536", "t.conf:3: addr: port must be an integer in 1..65535"},
	    {B "addr = 127.0.0.1:http", "t.conf:3: addr: port must be an integer in 1..65535"},
	    {B "addr = 127.0.0.1111111111111:1", "t.conf:3: addr: host too long"},
	    {B "url = http://192.0.2.1/x",
	     "t.conf:3: url: must be on this machine (loopback: 127.0.0.1, [::1] or localhost)"},
	    {B "path =", "t.conf:3: path: must not be empty"},
	    {"name =\n", "t.conf:1: name: must not be empty"},
	    {"name = 12345678\n", "t.conf:1: name: value too long"},
	    {B "path = aaaaaaaaaaaaaaaaaaaaaaaaa", "t.conf:3: path: path too long"},
	    /* the file's shape */
	    {B "bogus = 1", "t.conf:3: unknown key 'bogus'"},
	    {B "nam = 1", "t.conf:3: unknown key 'nam'"},
	    {B "names = 1", "t.conf:3: unknown key 'names'"},
	    {B "N = 1", "t.conf:3: unknown key 'N'"},
	    {B "no equals sign", "t.conf:3: expected key = value"},
	    {B "= 5", "t.conf:3: expected key = value"},
	    {B "# a = b\nn # = 5", "t.conf:4: expected key = value"},
	    {B "id = 320300", "t.conf:3: id: set twice (first on line 2)"},
	    {B "\nn = 1\nn = 1", "t.conf:5: n: set twice (first on line 4)"},
	    /* required keys */
	    {"name = a\n", "t.conf: required key 'id' missing"},
	    {"", "t.conf: required key 'name' missing"},
	    /* across keys: the line of the later key the file sets */
	    {B "lo = 500\nhi = 400", "t.conf:4: hi: lo (500) > hi (400)"},
	    {B "hi = 400\nlo = 500", "t.conf:4: lo: lo (500) > hi (400)"},
	    {B "hi = 5", "t.conf:3: hi: lo (10) > hi (5)"},
	    {B "lo = 101\n\nn = 1", "t.conf:3: lo: lo (101) > hi (100)"},
	};
	struct rec r;
	struct tb_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].text, &r, NULL, &d);
		if (rc != TB_E_ARG || strcmp(d.detail, cases[i].detail) != 0)
			fail_msg("case %zu: %s\n  got %d \"%s\"\n  want \"%s\"", i, cases[i].text,
			         rc, d.detail, cases[i].detail);
	}
}

static void
test_nul_and_long(void **state)
{
	static const char nul[] = B "name\0x = 1\n";
	char text[TB_CONF_VALUE_MAX + 64];
	struct rec r;
	struct tb_diag d;

	(void)state;
	/* a key holding U+0000 is never taken for a shorter one */
	assert_int_equal(tb_conf_parse(&table, "t.conf", NULL, nul, sizeof(nul) - 1, &r, NULL, &d),
	                 TB_E_ARG);
	assert_string_equal(d.detail, "t.conf:3: NUL byte");
	snprintf(text, sizeof(text), B "url = http://127.0.0.1/");
	memset(text + strlen(text), 'x', TB_CONF_VALUE_MAX);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(parse(text, &r, NULL, &d), TB_E_ARG);
	assert_string_equal(d.detail, "t.conf:3: url: value too long");
}

/* Defaults that disagree are reported without a line. */
static void
test_cross_defaults(void **state)
{
	static const struct tb_conf_key two[] = {
	    {"lo", TB_CONF_INT, F(lo), .min = 0, .max = 1000, .def = "50", .help = "low"},
	    {"hi", TB_CONF_INT, F(hi), .min = 0, .max = 1000, .def = "20", .help = "high"},
	};
	static const struct tb_conf_table t2 = {two, 2, lo_hi};
	struct rec r;
	struct tb_diag d;

	(void)state;
	assert_int_equal(tb_conf_parse(&t2, "t.conf", NULL, "", 0, &r, NULL, &d), TB_E_ARG);
	assert_string_equal(d.detail, "t.conf: lo: lo (50) > hi (20)");
	assert_int_equal(tb_conf_parse(&t2, "t.conf", NULL, "hi = 60", 7, &r, NULL, &d), TB_OK);
}

static void
test_compare_copy_format(void **state)
{
	struct rec a, b;
	struct tb_diag d;
	char out[64];
	const struct tb_conf_key *k;

	(void)state;
	assert_int_equal(parse(B "addr = localhost:90\nflag = on\n", &a, NULL, &d), TB_OK);
	assert_int_equal(
	    parse(B "addr = localhost:91\nlevel = a\nurl = http://localhost/x\n", &b, NULL, &d),
	    TB_OK);
	assert_null(tb_conf_find(&table, "nam", 3));
	assert_null(tb_conf_find(&table, "name\0", 5));
	assert_ptr_equal(tb_conf_find(&table, "names", 4), &rows[0]);
	for (size_t i = 0; i < table.nkeys; i++) {
		k = &rows[i];
		bool same = strcmp(k->name, "addr") != 0 && strcmp(k->name, "flag") != 0 &&
		            strcmp(k->name, "level") != 0 && strcmp(k->name, "url") != 0;
		if (tb_conf_equal(k, &a, &b) != same)
			fail_msg("%s: equal should be %d", k->name, same);
	}
	k = tb_conf_find(&table, "addr", 4);
	assert_string_equal(tb_conf_format(k, &a, out, sizeof(out)), "localhost:90");
	tb_conf_copy(k, &a, &b);
	assert_true(tb_conf_equal(k, &a, &b));
	assert_int_equal(a.port, 91);
	assert_string_equal(tb_conf_format(k, &a, out, sizeof(out)), "localhost:91");
	assert_string_equal(tb_conf_format(tb_conf_find(&table, "flag", 4), &a, out, sizeof(out)),
	                    "yes");
	assert_string_equal(tb_conf_format(tb_conf_find(&table, "n", 1), &a, out, sizeof(out)),
	                    "7");
	assert_string_equal(tb_conf_format(tb_conf_find(&table, "level", 5), &b, out, sizeof(out)),
	                    "a");
	assert_string_equal(tb_conf_format(tb_conf_find(&table, "addr", 4), &b, out, 6), "local");
	/* the other keys of a are untouched by the copy */
	assert_string_equal(a.level, "bb");
	assert_int_equal(a.flag, 1);
}

/* ---- the node's table ---- */

#define NODE                                                                                       \
	"member_id = 320300\ncert = c.pem\nkey = k.pem\nroot = r.pem\ntrust = t.json\n"            \
	"registry = g.json\n" /* lines 1-6 */

static int
node_parse(const char *text, struct tb_config *c, struct tb_diag *d)
{
	memset(c, 0, sizeof(*c));
	tb_diag_clear(d);
	return tb_conf_parse(tb_config_table(), "n.conf", "/srv/n", text, strlen(text), c, NULL, d);
}

static void
test_node_table(void **state)
{
	static const struct {
		const char *text, *detail;
	} bad[] = {
	    {NODE "registry_upstream = hello",
	     "n.conf:7: registry_upstream: must be a 6-digit member id"},
	    {NODE "retry_min_ms = 5000\nretry_max_ms = 1000",
	     "n.conf:8: retry_max_ms: retry_min_ms (5000) is greater than retry_max_ms (1000)"},
	    {NODE "retry_max_ms = 1000\nretry_min_ms = 5000",
	     "n.conf:8: retry_min_ms: retry_min_ms (5000) is greater than retry_max_ms (1000)"},
	    {NODE "retry_min_ms = 70000",
	     "n.conf:7: retry_min_ms: retry_min_ms (70000) is greater than retry_max_ms (60000)"},
	    {NODE "webhook = http://192.0.2.1:80/x", "n.conf:7: webhook: must be on this machine "
	                                             "(loopback: 127.0.0.1, [::1] or localhost)"},
	    {NODE "api = 0.0.0.0:8080",
	     "n.conf:7: api: must be a loopback address (127.0.0.1, ::1 or localhost)"},
	    {NODE "log_level = loud",
	     "n.conf:7: log_level: must be one of debug, info, warn, error"},
	    {NODE "peer_sessions = 65", "n.conf:7: peer_sessions: must be an integer in 1..64"},
	    {NODE "deflate = 2", "n.conf:7: deflate: must be yes or no (true/false, on/off, 1/0)"},
	    {NODE "listen = 127.0.0.1:99999",
	     "n.conf:7: listen: port must be an integer in 1..65535"},
	    {"member_id = 32030\n", "n.conf:1: member_id: must be a 6-digit member id"},
	    {"member_id = 320300\n", "n.conf: required key 'cert' missing"},
	};
	struct tb_config c;
	struct tb_diag d;

	(void)state;
	/* every default parses (a bad one aborts), paths are joined to the directory */
	assert_int_equal(node_parse(NODE, &c, &d), TB_OK);
	assert_string_equal(c.cert, "/srv/n/c.pem");
	assert_string_equal(c.journal, "/srv/n/journal.db");
	assert_string_equal(c.api_token_file, "/srv/n/api.token");
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 5684);
	assert_int_equal(c.api_port, 8080);
	assert_int_equal(c.deflate, 1);
	assert_int_equal(c.retry_min_ms, 200);
	assert_int_equal(c.retry_max_ms, 60000);
	assert_int_equal(c.peer_sessions, 32);
	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.registry_upstream, "");
	assert_string_equal(c.sign_key, "");
	assert_int_equal(node_parse(NODE "registry_upstream = 320000\nretry_min_ms = 60000\n"
	                                 "webhook = http://127.0.0.1:9000/in\ndeflate = 0\n",
	                            &c, &d),
	                 TB_OK);
	assert_string_equal(c.registry_upstream, "320000");
	assert_int_equal(c.deflate, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = node_parse(bad[i].text, &c, &d);
		if (rc != TB_E_ARG || strcmp(d.detail, bad[i].detail) != 0)
			fail_msg("case %zu\n  got %d \"%s\"\n  want \"%s\"", i, rc, d.detail,
			         bad[i].detail);
	}
}

/* Exactly the tunables are applied on SIGHUP, and --help says which. */
static void
test_node_reloadable(void **state)
{
	static const char *const reload[] = {
	    "log_level",    "max_message_size", "clock_skew",         "retry_min_ms",
	    "retry_max_ms", "batch_max",        "deflate",            "breaker_open_ms",
	    "log_format",   "registry_warn_days", "retention",        "archive_dir",
	    "full_retry",   NULL};
	const struct tb_conf_table *t = tb_config_table();
	char *help = NULL, line[128];
	size_t helplen = 0, nreload = 0;
	FILE *f = open_memstream(&help, &helplen);

	(void)state;
	assert_non_null(f);
	tb_config_describe(f);
	assert_int_equal(fclose(f), 0);
	for (size_t i = 0; i < t->nkeys; i++) {
		const struct tb_conf_key *k = &t->keys[i];
		bool want = false, said;
		for (size_t j = 0; reload[j] != NULL; j++)
			want = want || strcmp(reload[j], k->name) == 0;
		if (((k->flags & TB_CONF_RELOAD) != 0) != want)
			fail_msg("%s: reloadable should be %d", k->name, want);
		nreload += want;
		/* its --help line */
		snprintf(line, sizeof(line), "  %-18s ", k->name);
		const char *at = help, *eol;
		while (at != NULL && strncmp(at, line, strlen(line)) != 0)
			at = (at = strchr(at, '\n')) != NULL ? at + 1 : NULL;
		assert_non_null(at);
		eol = strchr(at, '\n');
		assert_non_null(eol);
		said = eol - at > 9 && memcmp(eol - 9, " (SIGHUP)", 9) == 0;
		if (said != want)
			fail_msg("--help line of %s: (SIGHUP) should be %d", k->name, want);
	}
	assert_int_equal(nreload, 13);
	free(help);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_bool_words),
	    cmocka_unit_test(test_loopback_urls),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_nul_and_long),
	    cmocka_unit_test(test_cross_defaults),
	    cmocka_unit_test(test_compare_copy_format),
	    cmocka_unit_test(test_node_table),
	    cmocka_unit_test(test_node_reloadable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
