/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fail_rnd.c - a fault injector for tests/cli_rnd.sh, loaded with
 * LD_PRELOAD: GnuTLS's CSPRNG cannot be made to fail from outside, so
 * this interposes gnutls_rnd() and makes call number $TB_RND_FAIL
 * (counting from 1) fail as GnuTLS reports it; the others are the real
 * function.  When it injects the failure it creates the file
 * $TB_RND_MARK, so the test knows a failure happened.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

int gnutls_rnd(int level, void *data, size_t len);

int
gnutls_rnd(int level, void *data, size_t len)
{
	static int calls;
	static int (*real)(int, void *, size_t);
	const char *at = getenv("TB_RND_FAIL"), *mark = getenv("TB_RND_MARK");

	if (at != NULL && ++calls == atoi(at)) {
		if (mark != NULL) {
			int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (fd >= 0)
				close(fd);
		}
		return -206; /* GNUTLS_E_RANDOM_FAILED */
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "gnutls_rnd");
	return real != NULL ? real(level, data, len) : -206;
}
