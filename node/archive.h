/* SPDX-License-Identifier: Apache-2.0 */
/*
 * archive.h - where pruned messages go: gzip files of JSON lines under a
 * directory, one file per UTC day ("YYYY-MM-DD.jsonl.gz"), the format of
 * docs/ADMIN.md "Retention and archives".  An archive is the
 * tb_journal_archiver that tb_journal_retire() feeds.
 *
 * One archive handle serves one tb_journal_retire() call: open, the
 * journal's put()s and sync(), close.  Each handle appends one gzip
 * member to the day's file (concatenated members are one valid gzip
 * file: zcat and gzip -d read them whole).
 *
 * Thread-safety: a handle is used from one thread; no global state.
 */
#ifndef TB_ARCHIVE_H
#define TB_ARCHIVE_H

#include <stdint.h>

#include "../util/tb_err.h"

struct tb_archive;
struct tb_diag;
struct tb_journal_archiver;

/* An archive writing to the file of now's UTC day under dir (copied).
 * The directory (0700, with its parents) and the file (0600) are made
 * at the first message, so a round with none touches nothing.  NULL
 * with d saying why (TB_E_ARG, TB_E_NOMEM).  Free with
 * tb_archive_close(). */
TB_MUST_CHECK struct tb_archive *tb_archive_open(const char *dir, int64_t now, struct tb_diag *d);
/* The archiver for tb_journal_retire() writing to a (borrowed; a must
 * outlive its use). */
void tb_archive_hook(struct tb_archive *a, struct tb_journal_archiver *out);
/* Messages written through a since it was opened. */
uint64_t tb_archive_count(const struct tb_archive *a);
/* The day file's path (owned by a). */
const char *tb_archive_path(const struct tb_archive *a);
/* Why the last put() or sync() failed (owned by a; code TB_OK if none). */
const struct tb_diag *tb_archive_error(const struct tb_archive *a);
/* Closes a; what was written but not synced is kept (it is complete
 * lines, never half a line, unless the disk failed).  NULL allowed. */
void tb_archive_close(struct tb_archive *a);

#endif
