/* SPDX-License-Identifier: Apache-2.0 */
/* tb_file.c - whole-file reads and atomic writes. */
#include "tb_file.h"
#include "tb_buf.h"
#include "tb_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
tb_file_read(const char *path, size_t max, struct tb_buf *out, struct tb_diag *d)
{
	int fd, rc = TB_OK;
	const char *name = path == NULL || strcmp(path, "-") == 0 ? "<stdin>" : path;
	size_t start = out->len;

	if (path == NULL || strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", name, strerror(errno));
	for (;;) {
		ssize_t r;

		if (tb_buf_reserve(out, 65536) != TB_OK) {
			rc = tb_diag_set(d, TB_E_NOMEM, TB_DIAG_NOPOS, "%s", name);
			break;
		}
		r = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc =
			    tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", name, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		out->len += (size_t)r;
		out->data[out->len] = '\0';
		if (out->len - start > max) {
			rc = tb_diag_set(d, TB_E_TOO_LARGE, TB_DIAG_NOPOS,
			                 "%s is larger than %zu bytes", name, max);
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

int
tb_file_write(const char *path, const void *data, size_t n, mode_t mode, int exclusive,
              struct tb_diag *d)
{
	char tmp[4096];
	const unsigned char *p = data;
	int fd;
	struct stat st;

	if (exclusive && stat(path, &st) == 0)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: file exists", path);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return tb_diag_set(d, TB_E_ARG, TB_DIAG_NOPOS, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", tmp, strerror(errno));
	if (fchmod(fd, mode) != 0)
		goto fail;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += w;
		n -= (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	/* exclusive: link() fails if path exists, atomically (no check-then-
	 * rename race); otherwise rename() replaces atomically */
	if (exclusive) {
		if (link(tmp, path) != 0)
			goto fail;
		unlink(tmp);
	} else if (rename(tmp, path) != 0) {
		goto fail;
	}
	return TB_OK;
fail:
	tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return TB_E_IO;
}

int
tb_file_close_stdout(struct tb_diag *d)
{
	int err = 0;
	bool failed = false;

	if (fflush(stdout) != 0) {
		err = errno;
		failed = true;
	}
	/* an earlier write failed (its errno is gone): the flag stays */
	failed = failed || ferror(stdout);
	if (fclose(stdout) != 0 && !failed) {
		err = errno;
		failed = true;
	}
	if (!failed)
		return TB_OK;
	return tb_diag_set(d, TB_E_IO, TB_DIAG_NOPOS, "%s",
	                   err != 0 ? strerror(err) : "write error");
}
