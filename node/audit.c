/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit.c - the audit chain's signed head and the node's admin events
 * (see audit.h; formats in docs/PROTOCOL.md, "Audit chain").
 */
#include "node/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "node/config.h"
#include "federation/tb_reg.h"
#include "node/journal.h"
#include "node/log.h"
#include "node/node.h"
#include "protocol/tb_json.h"
#include "util/tb_buf.h"
#include "util/tb_enc.h"
#include "util/tb_file.h"

#define HEAD_TYPE "tongban-audit-head"
#define HEAD_MAX 1024 /* bytes: a head is about 400 */

/* How often the loop writes a head that moved: at most this long may
 * the newest entries go without one (docs/PERFORMANCE.md says why not
 * after every commit). */
#define HEAD_INTERVAL_MS 100

struct tb_audit {
	pthread_mutex_t mu;       /* the fields below, and the file */
	const struct tb_key *key; /* borrowed: n->sign_key, or the rotated one */
	int64_t pending;          /* seq of the newest committed head seen */
	uint8_t pending_hash[32];
	int64_t written;       /* seq of the head last written */
	char written_hash[65]; /* and its hash (hex) */
	struct tb_journal *j;  /* the loop's handle (flush runs on the loop) */
	bool failing;          /* the last write failed (logged once) */
	char member[16];
	char path[TB_CONF_PATH_MAX + 16];
	struct event *timer; /* the loop's: writes a head that moved */
};

/* Unix seconds, as node.c's tb_now: this file sits below node.c
 * (tests/node_layers.sh), so that node.c may record events here. */
static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the head file ---- */

int
tb_audit_head_path(const char *journal, char *out, size_t cap)
{
	if (journal == NULL || journal[0] == '\0' ||
	    (size_t)snprintf(out, cap, "%s.audit-head", journal) >= cap)
		return TB_E_ARG;
	return TB_OK;
}

/* The head in its RFC 8785 form, with "sig" (sig_hex) or without it (NULL):
 * members in code-point order, strings that need no escapes (hex, digits,
 * names), an integer. */
static int
head_format(const struct tb_audit_head *h, const char *sig_hex, struct tb_buf *out)
{
	char line[600];
	const char *alg = tb_alg_name(h->alg);
	int n = snprintf(line, sizeof(line),
	                 "{\"alg\":\"%s\",\"hash\":\"%s\",\"kid\":\"%s\",\"member\":\"%s\","
	                 "\"seq\":%" PRId64 "%s%s%s,\"type\":\"" HEAD_TYPE "\"}",
	                 alg != NULL ? alg : "", h->hash, h->kid, h->member, h->seq,
	                 sig_hex != NULL ? ",\"sig\":\"" : "", sig_hex != NULL ? sig_hex : "",
	                 sig_hex != NULL ? "\"" : "");

	if (n < 0 || (size_t)n >= sizeof(line))
		return TB_E_ARG;
	return tb_buf_add(out, line, (size_t)n) == TB_OK ? TB_OK : TB_E_NOMEM;
}

int
tb_audit_head_signed(const struct tb_audit_head *h, struct tb_buf *out)
{
	return head_format(h, NULL, out);
}

/* String member key of obj into out (cap bytes); false when missing, not
 * a string or too long. */
static bool
get_str(const struct tb_json *obj, const char *key, char *out, size_t cap)
{
	const struct tb_json *v = tb_json_get(obj, key);
	const char *s;
	size_t len;

	if (v == NULL || tb_json_kind(v) != TB_JSON_STRING)
		return false;
	s = tb_json_string(v, &len);
	if (len >= cap || strlen(s) != len)
		return false;
	memcpy(out, s, len + 1);
	return true;
}

/* Fills h from the parsed head object; the name of the bad member, or
 * NULL when all are good. */
static const char *
head_fields(const struct tb_json *o, struct tb_audit_head *h)
{
	char type[32], alg[16], sig[2 * TB_SIG_LEN + 1];
	const struct tb_json *seq = tb_json_get(o, "seq");

	if (tb_json_kind(o) != TB_JSON_OBJECT || tb_json_count(o) != 7)
		return "object (7 members)";
	if (!get_str(o, "type", type, sizeof(type)) || strcmp(type, HEAD_TYPE) != 0)
		return "type";
	if (seq == NULL || !tb_json_integer(seq, &h->seq) || h->seq < 0)
		return "seq";
	if (!get_str(o, "hash", h->hash, sizeof(h->hash)) || !tb_hex_valid(h->hash, 64) ||
	    strlen(h->hash) != 64)
		return "hash";
	if (!get_str(o, "kid", h->kid, sizeof(h->kid)) || strlen(h->kid) != 64 ||
	    !tb_hex_valid(h->kid, 64))
		return "kid";
	if (!get_str(o, "member", h->member, sizeof(h->member)) || h->member[0] == '\0' ||
	    strspn(h->member, "0123456789") != strlen(h->member))
		return "member";
	if (!get_str(o, "alg", alg, sizeof(alg)) || (h->alg = tb_alg_from_name(alg)) == TB_ALG_NONE)
		return "alg";
	if (!get_str(o, "sig", sig, sizeof(sig)) || strlen(sig) != 2 * TB_SIG_LEN ||
	    !tb_hex_decode(sig, 2 * TB_SIG_LEN, h->sig, TB_SIG_LEN))
		return "sig";
	return NULL;
}

int
tb_audit_head_read(const char *path, struct tb_audit_head *h, struct tb_diag *d)
{
	struct tb_json_doc *doc = NULL;
	struct tb_buf b;
	const char *bad;
	int rc;

	memset(h, 0, sizeof(*h));
	tb_buf_init(&b);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		rc = tb_diag_set(d, TB_E_NOTFOUND, TB_DIAG_NOPOS, "%s: no such file", path);
		goto done;
	}
	if ((rc = tb_file_read(path, HEAD_MAX, &b, d)) != TB_OK)
		goto done;
	/* one line: the object and a newline */
	if (b.len == 0 || b.data[b.len - 1] != '\n' ||
	    (doc = tb_json_parse(b.data, b.len - 1, NULL, NULL)) == NULL) {
		rc = tb_diag_set(d, TB_E_AUDIT, TB_DIAG_NOPOS, "%s: not one JSON line", path);
		goto done;
	}
	if ((bad = head_fields(tb_json_root(doc), h)) != NULL) {
		rc =
		    tb_diag_set(d, TB_E_AUDIT, TB_DIAG_NOPOS, "%s: bad head member: %s", path, bad);
		goto done;
	}
	rc = TB_OK;
done:
	tb_json_doc_free(doc);
	tb_buf_free(&b);
	return rc;
}

int
tb_audit_head_parse(const struct tb_json *obj, struct tb_audit_head *h, struct tb_diag *d)
{
	const char *bad;

	memset(h, 0, sizeof(*h));
	if ((bad = head_fields(obj, h)) != NULL)
		return tb_diag_set(d, TB_E_AUDIT, TB_DIAG_NOPOS, "bad head member: %s", bad);
	return TB_OK;
}

bool
tb_audit_head_verify(const struct tb_audit_head *h, const struct tb_pub *pub)
{
	uint8_t kid[TB_KEYID_LEN];
	char kid_hex[2 * TB_KEYID_LEN + 1];
	struct tb_buf b;
	bool ok;

	tb_pub_id(pub, kid);
	tb_hex_encode(kid, TB_KEYID_LEN, kid_hex);
	if (strcmp(kid_hex, h->kid) != 0 || tb_pub_alg(pub) != h->alg)
		return false;
	tb_buf_init(&b);
	ok = tb_audit_head_signed(h, &b) == TB_OK && tb_pub_verify(pub, b.data, b.len, h->sig);
	tb_buf_free(&b);
	return ok;
}

/* Writes the file: temporary, then rename.  No fsync: the head trails
 * the journal by design (it is written after the journal's commit), and
 * a head lost in a power failure only makes the check weaker for the
 * entries since the previous one, never reports a false truncation. */
static int
put_file(const char *path, const char *data, size_t n, struct tb_diag *d)
{
	char tmp[TB_CONF_PATH_MAX + 32];
	int fd = -1;
	ssize_t w;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: path too long", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		goto fail;
	while (n > 0) {
		if ((w = write(fd, data, n)) < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		data += w;
		n -= (size_t)w;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	return TB_OK;
fail : {
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", tmp, strerror(e));
}
}

int
tb_audit_head_write(const char *path, const char *member, const struct tb_key *key, int64_t seq,
                    const char hash_hex[65], struct tb_diag *d)
{
	struct tb_audit_head h;
	uint8_t kid[TB_KEYID_LEN];
	char sig_hex[2 * TB_SIG_LEN + 1];
	struct tb_buf b;
	int rc;

	memset(&h, 0, sizeof(h));
	h.seq = seq;
	h.alg = tb_key_alg(key);
	snprintf(h.hash, sizeof(h.hash), "%s", hash_hex);
	snprintf(h.member, sizeof(h.member), "%s", member);
	tb_key_id(key, kid);
	tb_hex_encode(kid, TB_KEYID_LEN, h.kid);
	tb_buf_init(&b);
	if ((rc = tb_audit_head_signed(&h, &b)) != TB_OK) {
		rc = tb_diag_set(d, rc, TB_DIAG_NOPOS, "audit head");
		goto done;
	}
	if ((rc = tb_key_sign(key, b.data, b.len, h.sig)) != TB_OK) {
		rc = tb_diag_set(d, rc, TB_DIAG_NOPOS, "audit head: signing failed");
		goto done;
	}
	/* the signed object with "sig" in its place, one line */
	tb_hex_encode(h.sig, TB_SIG_LEN, sig_hex);
	tb_buf_reset(&b);
	if ((rc = head_format(&h, sig_hex, &b)) != TB_OK || (rc = tb_buf_addc(&b, '\n')) != TB_OK) {
		rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, NULL);
		goto done;
	}
	rc = put_file(path, (const char *)b.data, b.len, d);
done:
	tb_buf_free(&b);
	return rc;
}

/* ---- the node's side ---- */

/* The head hook (journal.h): any thread, on the commit path, so it only
 * notes the highest head; the loop writes it (flush). */
static void
on_head(void *ctx, int64_t seq, const uint8_t hash[32])
{
	struct tb_audit *a = ctx;

	pthread_mutex_lock(&a->mu);
	if (seq > a->pending) {
		a->pending = seq;
		memcpy(a->pending_hash, hash, 32);
	}
	pthread_mutex_unlock(&a->mu);
}

/* Whether the entry the last written head named is still in the chain,
 * unchanged.  Entries removed while the node runs and then replaced by
 * new ones under the same numbers would otherwise pass under the next
 * head unseen: that is recorded as an audit-gap first. */
static void
check_written(struct tb_audit *a, int64_t written, const char *written_hash)
{
	char hex[65], gap[200];

	if (written == 0)
		return;
	if (tb_journal_audit_hash_at(a->j, written, hex) == TB_OK && strcmp(hex, written_hash) == 0)
		return;
	snprintf(gap, sizeof(gap), "head-mismatch seq=%" PRId64 " head-hash=%s running=1", written,
	         written_hash);
	log_errorx("audit: entry %" PRId64 " of the last signed head is gone or changed while "
	           "running; recorded as an audit-gap entry",
	           written);
	if (tb_journal_audit_admin(a->j, now_s(), "audit-gap", gap) != TB_OK)
		log_errorx("audit: audit-gap not recorded: %s", tb_journal_diag(a->j)->detail);
}

/* Writes the newest head when it moved since the last write (loop). */
static void
flush(struct tb_audit *a)
{
	struct tb_diag d;
	int64_t written;
	char hex[65], written_hash[65];
	bool moved;

	pthread_mutex_lock(&a->mu);
	moved = a->pending > a->written;
	written = a->written;
	memcpy(written_hash, a->written_hash, sizeof(written_hash));
	pthread_mutex_unlock(&a->mu);
	if (!moved)
		return;
	/* outside the lock: recording a gap commits, and the commit calls
	 * on_head */
	check_written(a, written, written_hash);
	tb_diag_clear(&d);
	pthread_mutex_lock(&a->mu);
	tb_hex_encode(a->pending_hash, 32, hex);
	if (tb_audit_head_write(a->path, a->member, a->key, a->pending, hex, &d) == TB_OK) {
		a->written = a->pending;
		memcpy(a->written_hash, hex, sizeof(hex));
		if (a->failing)
			log_info("audit head: %s written again (seq %" PRId64 ")", a->path,
			         a->written);
		a->failing = false;
	} else if (!a->failing) {
		/* once until it works again: the next round retries */
		log_errorx("audit head not written: %s", d.detail);
		a->failing = true;
	}
	pthread_mutex_unlock(&a->mu);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	flush(arg);
}

struct entry_at {
	int64_t seq;
	char hash[65];
	bool found;
};

static int
find_entry(void *ctx, const struct tb_journal_audit_entry *e)
{
	struct entry_at *w = ctx;

	if (e->seq == w->seq) {
		snprintf(w->hash, sizeof(w->hash), "%s", e->hash);
		w->found = true;
	}
	return 1; /* the first entry from seq on is the one */
}

/* Compares the journal's chain (head seq/hex) with the head file; when
 * the journal is behind it or disagrees, a description into gap (empty
 * when they agree). */
static void
compare_head(struct tb_node *n, const char *path, int64_t seq, char *gap, size_t cap)
{
	struct tb_audit_head h;
	struct entry_at w = {0};
	struct tb_diag d;
	int rc;

	gap[0] = '\0';
	tb_diag_clear(&d);
	rc = tb_audit_head_read(path, &h, &d);
	if (rc == TB_E_NOTFOUND) {
		if (seq > 0)
			snprintf(gap, cap, "head=missing entries=%" PRId64, seq);
		return;
	}
	if (rc != TB_OK) {
		log_errorx("audit: %s", d.detail);
		snprintf(gap, cap, "head=unreadable entries=%" PRId64, seq);
		return;
	}
	if (strcmp(h.member, n->cfg.member_id) != 0) {
		snprintf(gap, cap, "head=other-member:%s entries=%" PRId64, h.member, seq);
		return;
	}
	if (h.seq > seq) {
		snprintf(gap, cap, "missing=%" PRId64 "-%" PRId64 " head-hash=%s", seq + 1, h.seq,
		         h.hash);
		return;
	}
	if (h.seq == 0)
		return;
	w.seq = h.seq;
	if (tb_journal_audit_list(n->cfg.journal, h.seq, find_entry, &w, &d) < 0 || !w.found ||
	    strcmp(w.hash, h.hash) != 0)
		snprintf(gap, cap, "head-mismatch seq=%" PRId64 " head-hash=%s", h.seq, h.hash);
}

void
tb_audit_on_registry(void *ctx, const struct tb_reg *reg)
{
	tb_audit_event(ctx, "registry-applied", "serial=%llu valid-until=%lld",
	               (unsigned long long)tb_reg_serial(reg), (long long)tb_reg_valid_until(reg));
}

/* The chain's hash: a new chain's follows the message-signing key, SM3
 * under an sm2 key (so an SM-only node signs no other hash), SHA-256
 * otherwise; an existing chain keeps the hash its entry 1 set
 * (docs/PROTOCOL.md 11.2).  Set before any handle appends, so the
 * stages' handles inherit it. */
static int
chain_hash(struct tb_node *n, const struct tb_key *key, bool starting)
{
	bool sm2 = tb_key_alg(key) == TB_ALG_SM2;
	enum tb_audit_hash h;
	int rc;

	if (starting)
		tb_journal_set_audit_hash(n->journal, sm2 ? TB_AUDIT_SM3 : TB_AUDIT_SHA256);
	if ((rc = tb_journal_audit_chain(n->journal, &h)) != TB_OK)
		return rc;
	if (sm2 && h != TB_AUDIT_SM3)
		log_warnx(
		    "audit: the chain was started with %s, and keeps it under the sm2 key; "
		    "a new journal starts an SM3 chain (docs/ADMIN.md, \"SM2/SM3 signatures\")",
		    tb_journal_audit_hash_name(h));
	else if (starting)
		log_info("audit: chain hashed with %s", tb_journal_audit_hash_name(h));
	return TB_OK;
}

int
tb_audit_start(struct tb_node *n, struct tb_diag *d)
{
	struct tb_audit *a;
	char hex[65], gap[TB_JOURNAL_AUDIT_DETAIL_MAX / 2];
	int64_t seq;
	int rc;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "audit");
	pthread_mutex_init(&a->mu, NULL);
	a->key = n->sign_key;
	a->j = n->journal;
	snprintf(a->member, sizeof(a->member), "%s", n->cfg.member_id);
	/* beside the journal file; a postgresql:// journal has none: beside
	 * the registry file then (one head file per process) */
	if ((rc = tb_audit_head_path(strstr(n->cfg.journal, "://") != NULL ? n->cfg.registry
	                                                                   : n->cfg.journal,
	                             a->path, sizeof(a->path))) != TB_OK) {
		rc = tb_diag_set(d, rc, TB_DIAG_NOPOS, "audit head: journal path too long");
		goto fail;
	}
	if ((rc = tb_journal_audit_head(n->journal, &seq, hex)) != TB_OK ||
	    (rc = chain_hash(n, n->sign_key, true)) != TB_OK) {
		rc = tb_diag_set(d, rc, TB_DIAG_NOPOS, "audit: %s",
		                 tb_journal_diag(n->journal)->detail);
		goto fail;
	}
	/* a journal behind its signed head says so in its own chain before
	 * anything else is appended (which would move the head on) */
	compare_head(n, a->path, seq, gap, sizeof(gap));
	n->audit = a;
	tb_journal_set_head_hook(n->journal, on_head, a);
	if (gap[0] != '\0') {
		log_errorx("audit: the journal is behind its signed head (%s): restored from a "
		           "backup, or entries removed; recorded as an audit-gap entry",
		           gap);
		if ((rc = tb_journal_audit_admin(n->journal, now_s(), "audit-gap", gap)) != TB_OK)
			goto fail_journal;
	}
	snprintf(gap, sizeof(gap), "version=%s serial=%llu", PACKAGE_VERSION,
	         n->reg != NULL ? (unsigned long long)tb_reg_serial(n->reg) : 0ULL);
	if ((rc = tb_journal_audit_admin(n->journal, now_s(), "start", gap)) != TB_OK)
		goto fail_journal;
	flush(a);
	{
		struct timeval tv = {0, HEAD_INTERVAL_MS * 1000};
		if ((a->timer = event_new(n->base, -1, EV_PERSIST, on_timer, a)) == NULL ||
		    event_add(a->timer, &tv) != 0) {
			rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "audit: timer");
			goto fail_timer;
		}
	}
	return TB_OK;
fail_timer:
	if (a->timer != NULL)
		event_free(a->timer);
	tb_journal_set_head_hook(n->journal, NULL, NULL);
	n->audit = NULL;
	goto fail;
fail_journal:
	rc = tb_diag_set(d, rc, TB_DIAG_NOPOS, "audit: %s", tb_journal_diag(n->journal)->detail);
	tb_journal_set_head_hook(n->journal, NULL, NULL);
	n->audit = NULL;
fail:
	pthread_mutex_destroy(&a->mu);
	free(a);
	return rc;
}

void
tb_audit_stop(struct tb_node *n)
{
	struct tb_audit *a = n->audit;
	int64_t seq;
	char hex[65];

	if (a == NULL)
		return;
	tb_audit_event(n, "stop", NULL);
	flush(a);
	if (tb_journal_audit_head(n->journal, &seq, hex) == TB_OK)
		log_info("audit head at stop: seq %" PRId64 " hash %s", seq, hex);
	tb_journal_set_head_hook(n->journal, NULL, NULL);
	if (a->timer != NULL)
		event_free(a->timer);
	n->audit = NULL;
	pthread_mutex_destroy(&a->mu);
	free(a);
}

void
tb_audit_event(struct tb_node *n, const char *event, const char *fmt, ...)
{
	char detail[TB_JOURNAL_AUDIT_DETAIL_MAX + 1] = "";
	va_list ap;

	if (n == NULL || n->audit == NULL)
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
	}
	if (tb_journal_audit_admin(n->journal, now_s(), event, detail) != TB_OK)
		log_errorx("audit: event %s not recorded: %s", event,
		           tb_journal_diag(n->journal)->detail);
}

void
tb_audit_key_rotated(struct tb_node *n, const struct tb_key *key)
{
	uint8_t kid[TB_KEYID_LEN];
	char hex[2 * TB_KEYID_LEN + 1];

	if (n == NULL || n->audit == NULL || key == NULL)
		return;
	pthread_mutex_lock(&n->audit->mu);
	n->audit->key = key;
	pthread_mutex_unlock(&n->audit->mu);
	tb_key_id(key, kid);
	tb_hex_encode(kid, TB_KEYID_LEN, hex);
	tb_audit_event(n, "key-rotated", "kid=%s alg=%s", hex, tb_alg_name(tb_key_alg(key)));
	if (chain_hash(n, key, false) != TB_OK)
		log_errorx("audit: %s", tb_journal_diag(n->journal)->detail);
}

void
tb_audit_recovery(struct tb_node *n, bool entered, const char *why)
{
	char clean[160];
	size_t i = 0;

	/* the reason is free text: keep what an entry may hold */
	for (; why != NULL && why[i] != '\0' && i + 1 < sizeof(clean); i++)
		clean[i] = (why[i] >= 0x20 && why[i] <= 0x7e && why[i] != '"' && why[i] != '\\')
		               ? why[i]
		               : '?';
	clean[i] = '\0';
	if (i > 0)
		tb_audit_event(n, entered ? "recovery-entered" : "recovery-left", "why=%s", clean);
	else
		tb_audit_event(n, entered ? "recovery-entered" : "recovery-left", NULL);
}
