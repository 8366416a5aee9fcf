/* SPDX-License-Identifier: Apache-2.0 */
/* archive.c - gzip files of JSON lines for pruned messages (archive.h). */
#include "archive.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../util/tb_buf.h"
#include "../util/tb_enc.h"
#include "journal.h"

struct tb_archive {
	char dir[1024];
	char path[1200];
	bool started;       /* the file is open (start) */
	struct tb_diag why; /* the last failure */
	int fd;             /* the day file, O_APPEND; kept for fsync */
	gzFile gz;          /* on a dup of fd; NULL once synced */
	int dirfd;          /* the directory, fsynced when the file was created */
	bool created, synced;
	uint64_t count;
	struct tb_buf line;
};

/* mkdir -p for the archive directory (and its parent), mode 0700. */
static int
make_dir(const char *dir, struct tb_diag *d)
{
	char p[1024];
	char *slash;

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "archive directory name too long");
	for (slash = strchr(p + 1, '/');; slash = strchr(slash + 1, '/')) {
		if (slash != NULL)
			*slash = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "archive: mkdir %s: %s", p,
			                   strerror(errno));
		if (slash == NULL)
			return TB_OK;
		*slash = '/';
	}
}

struct tb_archive *
tb_archive_open(const char *dir, int64_t now, struct tb_diag *d)
{
	struct tb_archive *a;
	struct tm tm;
	time_t t = (time_t)now;

	if (dir == NULL || dir[0] == '\0' || strlen(dir) >= sizeof(a->dir) ||
	    gmtime_r(&t, &tm) == NULL) {
		tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "archive: no directory, or bad time");
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "archive");
		return NULL;
	}
	a->fd = a->dirfd = -1;
	tb_buf_init(&a->line);
	snprintf(a->dir, sizeof(a->dir), "%s", dir);
	snprintf(a->path, sizeof(a->path), "%s/%04d-%02d-%02d.jsonl.gz", dir, tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday);
	return a;
}

/* The day file, opened at the first message: a round with nothing to
 * archive touches no file (an empty gzip member is still 20 bytes). */
static int
start(struct tb_archive *a)
{
	int dupfd = -1;

	if (make_dir(a->dir, &a->why) != TB_OK)
		return a->why.code;
	a->created = access(a->path, F_OK) != 0;
	if ((a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    (a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return tb_diag_set(&a->why, TB_E_IO, TB_DIAG_NOPOS, "archive: %s: %s", a->path,
		                   strerror(errno));
	/* gzclose closes its descriptor; fd stays for the fsync */
	if ((dupfd = dup(a->fd)) < 0 || (a->gz = gzdopen(dupfd, "ab")) == NULL) {
		if (dupfd >= 0)
			close(dupfd);
		return tb_diag_set(&a->why, TB_E_IO, TB_DIAG_NOPOS,
		                   "archive: %s: cannot start gzip", a->path);
	}
	a->started = true;
	return TB_OK;
}

/* "name":"text" with JSON escapes (the values are ids, member ids and
 * type names, but the archive must stay valid JSON whatever they hold). */
static void
add_str(struct tb_buf *b, const char *name, const char *v)
{
	tb_buf_printf(b, ",\"%s\":\"", name);
	for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			tb_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20)
			tb_buf_printf(b, "\\u%04x", *p);
		else
			tb_buf_addc(b, (char)*p);
	}
	tb_buf_addc(b, '"');
}

/* "name":"base64url of the bytes" (RFC 4648 section 5, no padding) */
static int
add_b64(struct tb_buf *b, const char *name, const uint8_t *p, size_t n)
{
	size_t len = tb_b64url_len(n);

	tb_buf_printf(b, ",\"%s\":\"", name);
	if (tb_buf_reserve(b, len + 2) != TB_OK)
		return TB_E_NOMEM;
	tb_b64url_encode(p, n, (char *)b->data + b->len);
	b->len += len;
	tb_buf_addc(b, '"');
	return TB_OK;
}

static int
put(void *ctx, const struct tb_journal_retired *r)
{
	struct tb_archive *a = ctx;
	struct tb_buf *b = &a->line;

	if (a->synced)
		return TB_E_ARG; /* a handle serves one call */
	if (!a->started && start(a) != TB_OK)
		return a->why.code;
	tb_buf_reset(b);
	tb_buf_printf(b, "{\"v\":1");
	add_str(b, "id", r->id);
	add_str(b, "dir", r->dir == 'i' ? "in" : "out");
	add_str(b, "peer", r->peer);
	add_str(b, "type", r->type);
	add_str(b, "digest", r->digest);
	add_str(b, "state", r->state);
	tb_buf_printf(b, ",\"at\":%" PRId64, r->at);
	if (add_b64(b, "envelope", r->envelope, r->envelope_len) != TB_OK ||
	    add_b64(b, "receipt", r->receipt, r->receipt_len) != TB_OK)
		return TB_E_NOMEM;
	tb_buf_adds(b, "}\n");
	if (tb_buf_error(b) != TB_OK)
		return TB_E_NOMEM;
	if (gzwrite(a->gz, b->data, (unsigned)b->len) != (int)b->len)
		return tb_diag_set(&a->why, TB_E_IO, TB_DIAG_NOPOS, "archive: %s: write failed",
		                   a->path);
	a->count++;
	return TB_OK;
}

/* Ends the gzip member and puts it, and a new file's name, on disk. */
static int
sync_all(void *ctx)
{
	struct tb_archive *a = ctx;
	int rc;

	if (a->synced)
		return TB_E_ARG;
	a->synced = true;
	if (!a->started)
		return TB_OK; /* nothing was written */
	rc = gzclose(a->gz);
	a->gz = NULL;
	if (rc != Z_OK || fsync(a->fd) != 0 || (a->created && fsync(a->dirfd) != 0))
		return tb_diag_set(&a->why, TB_E_IO, TB_DIAG_NOPOS, "archive: %s: %s", a->path,
		                   rc != Z_OK ? "gzip close failed" : strerror(errno));
	return TB_OK;
}

void
tb_archive_hook(struct tb_archive *a, struct tb_journal_archiver *out)
{
	out->put = put;
	out->sync = sync_all;
	out->ctx = a;
}

uint64_t
tb_archive_count(const struct tb_archive *a)
{
	return a->count;
}

const char *
tb_archive_path(const struct tb_archive *a)
{
	return a->path;
}

const struct tb_diag *
tb_archive_error(const struct tb_archive *a)
{
	return &a->why;
}

void
tb_archive_close(struct tb_archive *a)
{
	if (a == NULL)
		return;
	if (a->gz != NULL)
		(void)gzclose(a->gz);
	if (a->fd >= 0)
		close(a->fd);
	if (a->dirfd >= 0)
		close(a->dirfd);
	tb_buf_free(&a->line);
	free(a);
}
