/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_audit.c - `tongban audit verify|show|export`: the node's audit
 * chain, read from its journal file (read-only, beside a running node),
 * checked against the signed head the node keeps beside it
 * (docs/PROTOCOL.md, "Audit chain"; docs/ADMIN.md, "Auditing").
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../certs/tb_key.h"
#include "../federation/tb_reg.h"
#include "../node/audit.h"
#include "../node/config.h"
#include "../node/journal.h"
#include "../protocol/tb_json.h"
#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "../util/tb_err.h"
#include "../util/tb_file.h"
#include "cli.h"

static const char usage_text[] =
    "Usage: tongban audit verify (--node CONFIG | --journal FILE) [--head FILE]\n"
    "                            [--pub FILE | --registry FILE] [--chain-only]\n"
    "       tongban audit verify --export FILE [--pub FILE | --registry FILE]\n"
    "                            [--chain-only]\n"
    "       tongban audit show (--node CONFIG | --journal FILE) [--json] [--since SEQ]\n"
    "       tongban audit export (--node CONFIG | --journal FILE) [--head FILE]\n"
    "                            [-o|--output FILE]\n"
    "verify  recomputes the hash-chained audit log (SHA-256, or SM3 when its\n"
    "        first entry is \"chain hash=sm3\", as a node with an sm2 key starts\n"
    "        it; the output names the hash) and compares it with the\n"
    "        signed head the node keeps beside its journal (JOURNAL.audit-head):\n"
    "        a chain that ends before the head was cut short (\"truncated\").\n"
    "        The head's signature is checked with the node's message-signing\n"
    "        key, found by its key id in the registry (--node: the node's\n"
    "        registry file) or given as a public key or certificate (--pub).\n"
    "        --chain-only checks the chain's links alone, for a copy that has\n"
    "        no head of its own (a backup): whether newer entries were cut\n"
    "        cannot be told then, and the output says so.\n"
    "        --export checks an export file (below) the same way, with its\n"
    "        own last line as the head.\n"
    "        FILE may be a postgresql:// URI: its node keeps the head beside\n"
    "        its registry file (--node finds it); else give --head or\n"
    "        --chain-only.\n"
    "show    lists the entries (from SEQ on): a table, or JSON lines (--json).\n"
    "export  writes every entry as a JSON line and the signed head as the\n"
    "        last line, to FILE or standard output: the format of\n"
    "        docs/PROTOCOL.md, which another tool can verify.\n"
    "Exit status: 0 intact, 1 broken, truncated or not matching its head,\n"
    "2 usage, 3 I/O error.\n";

struct audit_opts {
	const char *node, *journal, *head, *pub, *registry, *output, *export_file;
	bool json, chain_only;
	long long since;
	struct tb_config cfg;
	char head_path[TB_CONF_PATH_MAX + 16];
};

/* Parses the options of every subcommand (argv[0] is the subcommand);
 * which ones a subcommand takes is checked by the caller. */
static int
parse_opts(int argc, char **argv, struct audit_opts *o)
{
	static const struct option opts[] = {
	    {"node", required_argument, NULL, 'n'},     {"journal", required_argument, NULL, 'j'},
	    {"head", required_argument, NULL, 'H'},     {"pub", required_argument, NULL, 'p'},
	    {"registry", required_argument, NULL, 'r'}, {"output", required_argument, NULL, 'o'},
	    {"since", required_argument, NULL, 's'},    {"json", no_argument, NULL, 'J'},
	    {"chain-only", no_argument, NULL, 'C'},     {"export", required_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},           {0, 0, 0, 0}};
	struct tb_diag d;
	int c;

	optind = 0;
	opterr = 0; /* one line: ours, naming the option */
	o->since = 1;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o->node = optarg; break;
		case 'j': o->journal = optarg; break;
		case 'H': o->head = optarg; break;
		case 'p': o->pub = optarg; break;
		case 'r': o->registry = optarg; break;
		case 'o': o->output = optarg; break;
		case 'J': o->json = true; break;
		case 'C': o->chain_only = true; break;
		case 'e': o->export_file = optarg; break;
		case 's':
			if (cli_parse_i64(optarg, &o->since) != 0 || o->since < 1)
				return cli_usage_error("--since needs an entry number (1 or more), "
				                       "not '%s'",
				                       optarg);
			break;
		case 'h': fputs(usage_text, stdout); return -1;
		default:
			return cli_usage_error("unknown option or missing value: '%s'",
			                       argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (o->export_file != NULL) {
		if (o->node != NULL || o->journal != NULL || o->head != NULL)
			return cli_usage_error(
			    "--export FILE takes no --node, --journal or --head");
		if (o->pub != NULL && o->registry != NULL)
			return cli_usage_error("give --pub or --registry, not both");
		return EX_TB_OK;
	}
	if ((o->node == NULL) == (o->journal == NULL))
		return cli_usage_error("give one of --node CONFIG and --journal FILE");
	if (o->pub != NULL && o->registry != NULL)
		return cli_usage_error("give --pub or --registry, not both");
	if (o->node != NULL) {
		if (tb_config_load(o->node, &o->cfg, &d) != TB_OK)
			return cli_fail(d.code == TB_E_IO ? EX_TB_IO : EX_TB_USAGE, "%s", d.detail);
		o->journal = o->cfg.journal;
		if (o->registry == NULL && o->pub == NULL)
			o->registry = o->cfg.registry;
	}
	/* a postgresql:// journal has no file to keep a head beside:
	 * verify and export then need --node or --head */
	if (o->head == NULL && (o->node != NULL || strstr(o->journal, "://") == NULL)) {
		/* a node on a database keeps its signed head beside its
		 * registry file (node/audit.c) */
		if (tb_audit_head_path(strstr(o->journal, "://") != NULL ? o->cfg.registry
		                                                         : o->journal,
		                       o->head_path, sizeof(o->head_path)) != TB_OK)
			return cli_usage_error("journal path too long");
		o->head = o->head_path;
	}
	return EX_TB_OK;
}

/* ---- verify ---- */

/* The public key that should have signed h: from --pub, or by its key
 * id from the registry file (a key of the head's member).  NULL with
 * *rc set on failure; NULL with *rc EX_TB_OK when there is no source. */
static struct tb_pub *
head_key(const struct audit_opts *o, const struct tb_audit_head *h, int *rc)
{
	struct tb_pub *pub = NULL;
	struct tb_reg *reg = NULL;
	struct tb_buf b;
	struct tb_diag d;
	uint8_t kid[TB_KEYID_LEN];
	const uint8_t *spki;
	size_t m, k, len;
	enum tb_key_use use;

	*rc = EX_TB_OK;
	if (o->pub != NULL) {
		if ((pub = tb_pub_load(o->pub, &d)) == NULL)
			*rc = cli_fail_diag(&d);
		return pub;
	}
	if (o->registry == NULL)
		return NULL;
	tb_buf_init(&b);
	if (tb_file_read(o->registry, TB_REG_MAX_SIZE, &b, &d) != TB_OK ||
	    (reg = tb_reg_parse(b.data, b.len, &d)) == NULL) {
		*rc = cli_fail_diag(&d);
		goto done;
	}
	if (!tb_hex_decode(h->kid, 64, kid, sizeof(kid)) ||
	    tb_reg_find_key(reg, kid, &m, &k) != TB_OK ||
	    strcmp(tb_reg_member_id(reg, m), h->member) != 0) {
		*rc = cli_fail(EX_TB_REFUSED,
		               "audit.head-key: the head's key %.16s... is not a key of member %s "
		               "in %s",
		               h->kid, h->member, o->registry);
		goto done;
	}
	tb_reg_key(reg, m, k, kid, &use, &spki, &len);
	if ((pub = tb_pub_import_spki(spki, len, &d)) == NULL)
		*rc = cli_fail_diag(&d);
done:
	tb_reg_free(reg);
	tb_buf_free(&b);
	return pub;
}

struct scan {
	int64_t want;  /* the seq whose hash is wanted (the head's) */
	char hash[65]; /* its hash, when found */
	int gaps;      /* "audit-gap" entries seen */
};

/* Finds the head's entry and reports the gaps the node recorded. */
static int
scan_entry(void *ctx, const struct tb_journal_audit_entry *e)
{
	struct scan *s = ctx;

	if (e->seq == s->want)
		snprintf(s->hash, sizeof(s->hash), "%s", e->hash);
	if (e->dir == 'a' && strcmp(e->event, "audit-gap") == 0) {
		fprintf(stderr,
		        "%s: warning: entry %lld records a gap found at start-up (journal "
		        "restored or cut short): %s\n",
		        cli_cmd, (long long)e->seq, e->detail);
		s->gaps++;
	}
	return 0;
}

/* Entry 1's hash (the chain's, docs/PROTOCOL.md 11.2) into ctx. */
static int
first_entry(void *ctx, const struct tb_journal_audit_entry *e)
{
	enum tb_audit_hash *h = ctx;

	if (tb_journal_audit_chain_hash(e->dir, e->event, e->detail, h) != TB_OK)
		*h = TB_AUDIT_SHA256; /* not reached: verify refused the chain */
	return 1;
}

/* The name of the hash of the chain in journal (verified before). */
static const char *
chain_name(const char *journal)
{
	enum tb_audit_hash h = TB_AUDIT_SHA256;

	if (tb_journal_audit_list(journal, 1, first_entry, &h, NULL) < 0)
		h = TB_AUDIT_SHA256; /* read a moment ago by verify */
	return tb_journal_audit_hash_name(h);
}

/* The chain (entries) against the signed head h. */
static int
compare(const struct audit_opts *o, const struct tb_audit_head *h, int64_t entries, bool signed_ok)
{
	struct scan s = {0};
	struct tb_diag d;

	if (h->seq > entries)
		return cli_fail(
		    EX_TB_REFUSED,
		    "audit.truncated: entries %lld..%lld missing: the chain ends at %lld, "
		    "its signed head (%s) is at %lld",
		    (long long)entries + 1, (long long)h->seq, (long long)entries, o->head,
		    (long long)h->seq);
	s.want = h->seq;
	if (tb_journal_audit_list(o->journal, 1, scan_entry, &s, &d) != TB_OK)
		return cli_fail_diag(&d);
	if (h->seq > 0 && strcmp(s.hash, h->hash) != 0)
		return cli_fail(EX_TB_REFUSED,
		                "audit.head-mismatch: entry %lld's hash is not the one its signed "
		                "head names: the chain was rewritten, or the head is another "
		                "journal's",
		                (long long)h->seq);
	printf("ok: %lld entries, chain intact (%s); signed head at entry %lld (member %s%s)",
	       (long long)entries, chain_name(o->journal), (long long)h->seq, h->member,
	       signed_ok ? ", signature verified" : ", signature NOT checked");
	if (entries > h->seq)
		printf("; %lld newer entries not yet under a head", (long long)(entries - h->seq));
	if (s.gaps > 0)
		printf("; %d recorded gap(s), see above", s.gaps);
	printf("\n");
	return EX_TB_OK;
}

/* Checks h's signature with the key of head_key; *checked says whether
 * there was a key to check it with.  EX_TB_OK or the failure's exit. */
static int
head_signature(const struct audit_opts *o, const struct tb_audit_head *h, const char *what,
               bool *checked)
{
	struct tb_pub *pub;
	int rc;

	*checked = false;
	if ((pub = head_key(o, h, &rc)) == NULL && rc != EX_TB_OK)
		return rc;
	if (pub != NULL && !tb_audit_head_verify(h, pub)) {
		tb_pub_free(pub);
		return cli_fail(
		    EX_TB_REFUSED,
		    "audit.head-signature: %s is not signed by key %.16s... of member %s", what,
		    h->kid, h->member);
	}
	if (pub == NULL)
		fprintf(stderr,
		        "%s: warning: the head's signature is not checked (give --pub or "
		        "--registry)\n",
		        cli_cmd);
	*checked = pub != NULL;
	tb_pub_free(pub);
	return EX_TB_OK;
}

static int audit_verify_export(const struct audit_opts *o);

static int
audit_verify(const struct audit_opts *o)
{
	struct tb_audit_head h;
	struct tb_diag d;
	int64_t bad = 0, entries = 0;
	bool checked;
	int rc;

	if (o->output != NULL || o->json || o->since != 1)
		return cli_usage_error(
		    "verify takes --node/--journal, --head, --pub, --registry, --chain-only");
	if (o->export_file != NULL)
		return audit_verify_export(o);
	if (o->head == NULL && !o->chain_only)
		return cli_usage_error(
		    "a postgresql:// journal keeps no head beside it: give --node "
		    "CONFIG, --head FILE or --chain-only");
	if (tb_journal_audit_verify(o->journal, &bad, &entries, &d) != TB_OK) {
		if (d.code == TB_E_AUDIT)
			return cli_fail(EX_TB_REFUSED, "audit.broken: first broken entry %lld: %s",
			                (long long)bad, d.detail);
		return cli_fail_diag(&d);
	}
	if (o->chain_only) {
		printf("ok: %lld entries, chain intact (%s; no head compared: whether newer "
		       "entries were removed is not checked)\n",
		       (long long)entries, chain_name(o->journal));
		return EX_TB_OK;
	}
	rc = tb_audit_head_read(o->head, &h, &d);
	if (rc == TB_E_NOTFOUND && entries == 0) {
		printf("ok: 0 entries\n");
		return EX_TB_OK;
	}
	if (rc == TB_E_NOTFOUND)
		return cli_fail(EX_TB_REFUSED,
		                "audit.no-head: %s is missing: %lld entries, but whether newer "
		                "ones were removed cannot be told",
		                o->head, (long long)entries);
	if (rc != TB_OK)
		return d.code == TB_E_IO ? cli_fail_diag(&d)
		                         : cli_fail(EX_TB_REFUSED, "audit.bad-head: %s", d.detail);
	if ((rc = head_signature(o, &h, o->head, &checked)) != EX_TB_OK)
		return rc;
	return compare(o, &h, entries, checked);
}

/* ---- verify --export ---- */

/* An export being read: the chain walked so far, every entry's hash
 * (32 bytes each, for the head's), the head once met. */
struct xport {
	struct tb_journal_audit_walk w;
	enum tb_audit_hash chain;
	struct tb_buf hashes;
	struct tb_audit_head h;
	bool have_head;
	int gaps;
};

/* The entry in the export line obj into e (strings borrowed from obj);
 * the name of the first bad member, or NULL. */
static const char *
export_entry(const struct tb_json *obj, struct tb_journal_audit_entry *e)
{
	static const char *const keys[] = {"prev", "dir",   "msgid",  "digest",
	                                   "peer", "event", "detail", "hash"};
	const char *v[8];
	const struct tb_json *x;
	size_t n;

	memset(e, 0, sizeof(*e));
	if (tb_json_kind(obj) != TB_JSON_OBJECT || tb_json_count(obj) != 10)
		return "object (10 members)";
	for (size_t i = 0; i < 8; i++) {
		if ((x = tb_json_get(obj, keys[i])) == NULL || tb_json_kind(x) != TB_JSON_STRING ||
		    (v[i] = tb_json_string(x, &n)) == NULL || strlen(v[i]) != n)
			return keys[i];
	}
	if (strlen(v[1]) != 1)
		return "dir";
	if ((x = tb_json_get(obj, "seq")) == NULL || !tb_json_integer(x, &e->seq))
		return "seq";
	if ((x = tb_json_get(obj, "at")) == NULL || !tb_json_integer(x, &e->at))
		return "at";
	e->prev = v[0];
	e->dir = v[1][0];
	e->msgid = v[2];
	e->digest = v[3];
	e->peer = v[4];
	e->event = v[5];
	e->detail = v[6];
	e->hash = v[7];
	return NULL;
}

/* One line (without its LF) of an export: an entry, or the head. */
static int
export_line(struct xport *x, const char *line, size_t len)
{
	struct tb_journal_audit_entry e;
	struct tb_json_doc *doc = tb_json_parse((const uint8_t *)line, len, NULL, NULL);
	const struct tb_json *root = doc != NULL ? tb_json_root(doc) : NULL;
	struct tb_diag d;
	const char *bad;
	uint8_t hash[32];
	char why[128];
	int rc = EX_TB_OK;

	if (root == NULL || tb_json_kind(root) != TB_JSON_OBJECT) {
		rc = cli_fail(EX_TB_REFUSED, "audit.broken: line %lld is not a JSON object",
		              (long long)x->w.next);
	} else if (x->have_head) {
		rc = cli_fail(EX_TB_REFUSED, "audit.broken: a line after the head");
	} else if (tb_json_get(root, "type") != NULL) {
		if (tb_audit_head_parse(root, &x->h, &d) != TB_OK)
			rc = cli_fail(EX_TB_REFUSED, "audit.bad-head: %s", d.detail);
		x->have_head = true;
	} else if ((bad = export_entry(root, &e)) != NULL) {
		rc = cli_fail(EX_TB_REFUSED, "audit.broken: first broken entry %lld: bad member %s",
		              (long long)x->w.next, bad);
	} else if (!tb_journal_audit_walk_next(&x->w, &e, why, sizeof(why))) {
		rc = cli_fail(EX_TB_REFUSED, "audit.broken: first broken entry %lld: %s",
		              (long long)x->w.next, why);
	} else {
		if (e.seq == 1)
			x->chain = x->w.h;
		if (!tb_hex_decode(e.hash, 64, hash, 32) ||
		    tb_buf_add(&x->hashes, hash, 32) != TB_OK)
			rc = cli_fail(EX_TB_IO, "out of memory");
		else if (e.dir == 'a' && strcmp(e.event, "audit-gap") == 0) {
			fprintf(stderr, "%s: warning: entry %lld records a gap: %s\n", cli_cmd,
			        (long long)e.seq, e.detail);
			x->gaps++;
		}
	}
	tb_json_doc_free(doc);
	return rc;
}

/* The export's chain against its own head (the last line). */
static int
export_compare(const struct audit_opts *o, const struct xport *x, int64_t entries)
{
	uint8_t want[32];
	bool checked;
	int rc;

	if (!x->have_head) {
		if (o->chain_only) {
			printf("ok: %lld entries, chain intact (%s; no head compared)\n",
			       (long long)entries, tb_journal_audit_hash_name(x->chain));
			return EX_TB_OK;
		}
		return cli_fail(EX_TB_REFUSED,
		                "audit.no-head: %s has no head line: %lld entries, but whether "
		                "newer ones were removed cannot be told",
		                o->export_file, (long long)entries);
	}
	if ((rc = head_signature(o, &x->h, o->export_file, &checked)) != EX_TB_OK)
		return rc;
	if (x->h.seq > entries)
		return cli_fail(EX_TB_REFUSED,
		                "audit.truncated: entries %lld..%lld missing: the chain ends at "
		                "%lld, its signed head is at %lld",
		                (long long)entries + 1, (long long)x->h.seq, (long long)entries,
		                (long long)x->h.seq);
	if (x->h.seq > 0 && (!tb_hex_decode(x->h.hash, 64, want, 32) ||
	                     memcmp(x->hashes.data + 32 * (x->h.seq - 1), want, 32) != 0))
		return cli_fail(EX_TB_REFUSED,
		                "audit.head-mismatch: entry %lld's hash is not the one its signed "
		                "head names",
		                (long long)x->h.seq);
	printf("ok: %lld entries, chain intact (%s); signed head at entry %lld (member %s%s)",
	       (long long)entries, tb_journal_audit_hash_name(x->chain), (long long)x->h.seq,
	       x->h.member, checked ? ", signature verified" : ", signature NOT checked");
	if (entries > x->h.seq)
		printf("; %lld newer entries not yet under a head",
		       (long long)(entries - x->h.seq));
	if (x->gaps > 0)
		printf("; %d recorded gap(s), see above", x->gaps);
	printf("\n");
	return EX_TB_OK;
}

static int
audit_verify_export(const struct audit_opts *o)
{
	struct xport x;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = EX_TB_OK;

	memset(&x, 0, sizeof(x));
	tb_journal_audit_walk_init(&x.w);
	tb_buf_init(&x.hashes);
	if ((f = fopen(o->export_file, "r")) == NULL)
		return cli_fail(EX_TB_IO, "%s: %s", o->export_file, strerror(errno));
	while (rc == EX_TB_OK && (n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n') {
			rc = cli_fail(EX_TB_REFUSED, "audit.broken: %s: the last line has no LF",
			              o->export_file);
			break;
		}
		rc = export_line(&x, line, (size_t)n - 1);
	}
	if (rc == EX_TB_OK && ferror(f))
		rc = cli_fail(EX_TB_IO, "%s: read failed", o->export_file);
	if (rc == EX_TB_OK)
		rc = export_compare(o, &x, x.w.next - 1);
	free(line);
	fclose(f);
	tb_buf_free(&x.hashes);
	return rc;
}

/* ---- show and export ---- */

/* One entry in its RFC 8785 form (docs/PROTOCOL.md), appended to out. */
static int
entry_json(const struct tb_journal_audit_entry *e, struct tb_buf *out)
{
	struct tb_json_doc *doc = tb_json_doc_new();
	struct tb_json *obj = doc ? tb_json_new_object(doc) : NULL;
	char dir[2] = {e->dir, '\0'};
	const char *keys[] = {"prev", "dir", "msgid", "digest", "peer", "event", "detail", "hash"};
	const char *vals[] = {e->prev, dir,      e->msgid,  e->digest,
	                      e->peer, e->event, e->detail, e->hash};
	int rc = TB_E_NOMEM;

	if (obj == NULL)
		goto done;
	tb_json_set_root(doc, obj);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (tb_json_set(doc, obj, keys[i],
		                tb_json_new_string(doc, vals[i], strlen(vals[i]))) != TB_OK)
			goto done;
	if (tb_json_set(doc, obj, "seq", tb_json_new_number(doc, (double)e->seq)) != TB_OK ||
	    tb_json_set(doc, obj, "at", tb_json_new_number(doc, (double)e->at)) != TB_OK)
		goto done;
	rc = tb_json_canon(obj, NULL, out);
done:
	tb_json_doc_free(doc);
	return rc;
}

struct lister {
	FILE *f;
	bool json;
	int rc;
};

static int
show_entry(void *ctx, const struct tb_journal_audit_entry *e)
{
	struct lister *l = ctx;
	struct tb_buf b;
	char when[32];
	time_t t = (time_t)e->at;
	struct tm tm;

	if (l->json) {
		tb_buf_init(&b);
		if (entry_json(e, &b) != TB_OK) {
			tb_buf_free(&b);
			l->rc = cli_fail(EX_TB_INTERNAL, "out of memory");
			return 1;
		}
		fprintf(l->f, "%.*s\n", (int)b.len, (const char *)b.data);
		tb_buf_free(&b);
		return 0;
	}
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)e->at);
	fprintf(l->f, "%-8lld %-20s %c %-17s %-7s %-32s %s\n", (long long)e->seq, when, e->dir,
	        e->event, e->peer[0] ? e->peer : "-", e->msgid[0] ? e->msgid : "-", e->detail);
	return 0;
}

static int
audit_show(const struct audit_opts *o)
{
	struct lister l = {stdout, o->json, EX_TB_OK};
	struct tb_diag d;

	if (o->output != NULL || o->pub != NULL || (o->registry != NULL && o->node == NULL) ||
	    (o->head != NULL && o->head != o->head_path) || o->chain_only)
		return cli_usage_error("show takes --node/--journal, --json and --since");
	if (!o->json)
		printf("%-8s %-20s %s %-17s %-7s %-32s %s\n", "SEQ", "TIME (UTC)", "D", "EVENT",
		       "PEER", "MESSAGE", "DETAIL");
	if (tb_journal_audit_list(o->journal, o->since, show_entry, &l, &d) < 0)
		return cli_fail_diag(&d);
	return l.rc;
}

static int
audit_export(const struct audit_opts *o)
{
	struct lister l = {stdout, true, EX_TB_OK};
	struct tb_buf head;
	struct tb_audit_head h;
	struct tb_diag d;
	int rc;

	if (o->json || o->since != 1 || o->pub != NULL || (o->registry != NULL && o->node == NULL) ||
	    o->chain_only)
		return cli_usage_error("export takes --node/--journal, --head and --output");
	if (o->head == NULL)
		return cli_usage_error(
		    "a postgresql:// journal keeps no head beside it: give --node "
		    "CONFIG or --head FILE");
	/* the head first read, then the entries: a node appending meanwhile
	 * only adds entries after the head, which a verifier accepts */
	tb_buf_init(&head);
	rc = tb_audit_head_read(o->head, &h, &d);
	if (rc == TB_OK)
		rc = tb_file_read(o->head, 4096, &head, &d);
	if (rc != TB_OK && rc != TB_E_NOTFOUND) {
		tb_buf_free(&head);
		return d.code == TB_E_IO ? cli_fail_diag(&d)
		                         : cli_fail(EX_TB_REFUSED, "audit.bad-head: %s", d.detail);
	}
	if (o->output != NULL && strcmp(o->output, "-") != 0 &&
	    (l.f = fopen(o->output, "w")) == NULL) {
		tb_buf_free(&head);
		return cli_fail(EX_TB_IO, "%s: %s", o->output, strerror(errno));
	}
	if (rc == TB_E_NOTFOUND)
		fprintf(stderr, "%s: warning: %s is missing: the export has no signed head\n",
		        cli_cmd, o->head);
	if ((rc = tb_journal_audit_list(o->journal, 1, show_entry, &l, &d)) < 0)
		l.rc = cli_fail_diag(&d);
	if (l.rc == EX_TB_OK && head.len > 0)
		fwrite(head.data, 1, head.len, l.f);
	tb_buf_free(&head);
	if (l.f != stdout && (ferror(l.f) | fclose(l.f)) != 0 && l.rc == EX_TB_OK)
		l.rc = cli_fail(EX_TB_IO, "%s: write failed", o->output);
	return l.rc;
}

int
cmd_audit(int argc, char **argv)
{
	struct audit_opts o;
	const char *sub = argc >= 2 ? argv[1] : NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	if (sub != NULL && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
		fputs(usage_text, stdout);
		return EX_TB_OK;
	}
	if (sub == NULL ||
	    (strcmp(sub, "verify") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "export") != 0))
		return cli_usage_error("audit needs verify, show or export%s%s%s",
		                       sub ? " (not '" : "", sub ? sub : "", sub ? "')" : "");
	if ((rc = parse_opts(argc - 1, argv + 1, &o)) != EX_TB_OK)
		return rc < 0 ? EX_TB_OK : rc;
	if (o.export_file != NULL && strcmp(sub, "verify") != 0)
		return cli_usage_error("--export FILE is for verify (%s reads a journal)", sub);
	if (strcmp(sub, "verify") == 0)
		return audit_verify(&o);
	if (strcmp(sub, "show") == 0)
		return audit_show(&o);
	return audit_export(&o);
}
