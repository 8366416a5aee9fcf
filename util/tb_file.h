/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_file.h - whole-file reads and atomic writes.
 *
 * Thread-safety: reentrant; each call works on its own descriptor.
 * tb_file_close_stdout() acts on the process's standard output: the
 * main thread calls it once, at the end.
 *
 * Ownership: paths are borrowed; output is appended to the caller's
 * buffer.
 */
#ifndef TB_FILE_H
#define TB_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "tb_err.h"

struct tb_buf;
struct tb_diag;

/*
 * Reads all of path ("-" or NULL: standard input) into out (appended;
 * the caller owns out).  Refuses more than max bytes with TB_E_TOO_LARGE.
 * Returns 0, TB_E_IO (detail: strerror) or TB_E_TOO_LARGE.
 */
TB_MUST_CHECK int tb_file_read(const char *path, size_t max, struct tb_buf *out, struct tb_diag *d);

/*
 * Writes n bytes to path atomically (temporary file, fsync, rename) with
 * the given mode.  With exclusive set, refuses to replace an existing
 * file.  Returns 0 or TB_E_IO.
 */
TB_MUST_CHECK int tb_file_write(const char *path, const void *data, size_t n, mode_t mode,
                                int exclusive, struct tb_diag *d);

/*
 * Flushes and closes standard output, so that what stdio still holds is
 * written now and a write error that happened earlier shows: 0, or
 * TB_E_IO (d's detail: the system's reason, when known) when some output
 * did not reach its destination (a full disk, /dev/full, an error at
 * close).  A program calls it last, after its work, and exits with its
 * I/O error status on failure: otherwise `prog > /dev/full` looks
 * successful.
 */
TB_MUST_CHECK int tb_file_close_stdout(struct tb_diag *d);

#endif
