/*
 * tb_port.c - free ports: a bind without SO_REUSEADDR, then closed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/random.h>

#include "util/tb_err.h"
#include "util/tb_port.h"

#define TRIES 200
#define LOWEST 10000 /* below: well-known services of all sorts */

bool
tb_port_free(int socktype, const struct sockaddr *sa, socklen_t len, int *err_out)
{
	int s = socket(sa->sa_family, socktype | SOCK_CLOEXEC, 0), err = 0, on = 1;

	if (s < 0)
		err = errno;
	else if (socktype == SOCK_STREAM &&
	         setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0)
		err = errno;
	else if (bind(s, sa, len) != 0)
		err = errno;
	if (s >= 0)
		close(s);
	if (err_out != NULL)
		*err_out = err;
	return err == 0;
}

const char *
tb_errno_text(int err, char *out, size_t len)
{
	const char *name = strerrorname_np(err);

	if (name != NULL)
		snprintf(out, len, "%s (%s)", strerror(err), name);
	else
		snprintf(out, len, "%s (errno %d)", strerror(err), err);
	return out;
}

/* True when fd is a datagram socket bound to exactly sa. */
static bool
bound_to(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	int type = 0;
	socklen_t tlen = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM)
		return false;
	if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0 || alen != len)
		return false;
	return memcmp(&a, sa, len) == 0;
}

int
tb_port_exclusive(const struct sockaddr *sa, socklen_t len)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int off = 0, found = 0;

	if (dir == NULL)
		return TB_E_IO;
	while ((e = readdir(dir)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end != '\0' || end == e->d_name || fd == dirfd(dir) ||
		    !bound_to((int)fd, sa, len))
			continue;
		if (setsockopt((int)fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof(off)) != 0) {
			closedir(dir);
			return TB_E_IO;
		}
		found++;
	}
	closedir(dir);
	return found > 0 ? TB_OK : TB_E_IO;
}

int
tb_port_bound_fd(const struct sockaddr *sa, socklen_t len)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL && found < 0) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end == '\0' && end != e->d_name && fd != dirfd(dir) &&
		    bound_to((int)fd, sa, len))
			found = (int)fd;
	}
	closedir(dir);
	return found;
}

static bool
loopback_free(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return tb_port_free(SOCK_DGRAM, (struct sockaddr *)&a, sizeof(a), NULL) &&
	       tb_port_free(SOCK_STREAM, (struct sockaddr *)&a, sizeof(a), NULL);
}

/* The range bases are drawn from, [*lo, *hi): the whole block inside
 * 10000..65535 and outside the ephemeral range. */
static void
base_range(int need, int *lo, int *hi)
{
	int elo = 32768, ehi = 60999;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");

	if (f != NULL) {
		if (fscanf(f, "%d %d", &elo, &ehi) != 2 || elo > ehi)
			elo = 32768, ehi = 60999;
		fclose(f);
	}
	if (elo - need - LOWEST >= 1000) {
		*lo = LOWEST;
		*hi = elo - need;
	} else if (65536 - need - (ehi + 1) >= 1000) {
		*lo = ehi + 1;
		*hi = 65536 - need;
	} else {
		*lo = LOWEST; /* no room outside it: anywhere */
		*hi = 65536 - need;
	}
}

int
tb_port_block(int span, int offset, int *base)
{
	int lo, hi, need = offset + span;
	uint32_t r;

	if (span < 1 || span > 100 || (offset != 0 && (offset < span || offset > 10000)))
		return TB_E_ARG;
	base_range(need, &lo, &hi);
	for (int t = 0; t < TRIES; t++) {
		bool ok = true;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
			r = (uint32_t)time(NULL) * 2654435761u ^ (uint32_t)getpid() ^ (uint32_t)t;
		int b = lo + (int)(r % (uint32_t)(hi - lo));
		for (int i = 0; i < span && ok; i++)
			ok = loopback_free(b + i) && (offset == 0 || loopback_free(b + offset + i));
		if (ok) {
			*base = b;
			return TB_OK;
		}
	}
	return TB_E_IO;
}
