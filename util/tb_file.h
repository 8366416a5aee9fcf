/*
 * tb_file.h - whole-file reads and atomic writes.
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

#endif
