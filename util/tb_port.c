/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_port.c - free ports: a bind without SO_REUSEADDR, then closed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
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

/* The inode of the socket bound to sa's port (and address, or the
 * wildcard) listed in the /proc/net table path; 0 when none. */
static unsigned long
proc_net_inode(const char *path, const struct sockaddr *sa)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	unsigned port = ntohs(sa->sa_family == AF_INET ? s4->sin_port : s6->sin6_port);
	unsigned long inode = 0, ino;
	char line[512], addr[64];
	unsigned p, st;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (inode == 0 && fgets(line, sizeof(line), f) != NULL) {
		/* sl local rem st tx:rx tr:when retr uid timeout inode */
		if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u %*u %lu", addr, &p,
		           &st, &ino) != 4 ||
		    p != port)
			continue;
		bool zero = strspn(addr, "0") == strlen(addr), same = false;
		if (strlen(addr) == 8 && sa->sa_family == AF_INET)
			same = (uint32_t)strtoul(addr, NULL, 16) == s4->sin_addr.s_addr;
		else if (strlen(addr) == 32 && sa->sa_family == AF_INET6) {
			same = true;
			for (int i = 0; i < 4; i++) {
				char w[9];
				uint32_t v;
				memcpy(w, addr + 8 * i, 8);
				w[8] = '\0';
				v = (uint32_t)strtoul(w, NULL, 16);
				same = same && memcmp(&v, s6->sin6_addr.s6_addr + 4 * i, 4) == 0;
			}
		}
		if (zero || same)
			inode = ino;
	}
	fclose(f);
	return inode;
}

/* The process with a descriptor on socket inode: "pid N (COMM)". */
static bool
inode_holder(unsigned long inode, char *out, size_t outlen)
{
	char want[64], path[300], link[64], comm[64] = "?";
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *e, *fe;
	bool found = false;

	if (proc == NULL)
		return false;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (!found && (e = readdir(proc)) != NULL) {
		if (strspn(e->d_name, "0123456789") != strlen(e->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", e->d_name);
		if ((fds = opendir(path)) == NULL)
			continue;
		while (!found && (fe = readdir(fds)) != NULL) {
			ssize_t n;
			snprintf(path, sizeof(path), "/proc/%s/fd/%s", e->d_name, fe->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			found = n > 0 && (link[n] = '\0', strcmp(link, want) == 0);
		}
		closedir(fds);
		if (found) {
			FILE *f;
			snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
			if ((f = fopen(path, "r")) != NULL) {
				if (fgets(comm, sizeof(comm), f) != NULL)
					comm[strcspn(comm, "\n")] = '\0';
				fclose(f);
			}
			snprintf(out, outlen, "pid %s (%s)", e->d_name, comm);
		}
	}
	closedir(proc);
	return found;
}

bool
tb_port_holder(int socktype, const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	const char *const *t;
	static const char *const udp[] = {"/proc/net/udp", "/proc/net/udp6", NULL};
	static const char *const tcp[] = {"/proc/net/tcp", "/proc/net/tcp6", NULL};
	unsigned long inode = 0;

	if (outlen > 0)
		out[0] = '\0';
	if ((sa->sa_family != AF_INET || len < sizeof(struct sockaddr_in)) &&
	    (sa->sa_family != AF_INET6 || len < sizeof(struct sockaddr_in6)))
		return false;
	for (t = socktype == SOCK_STREAM ? tcp : udp; *t != NULL && inode == 0; t++)
		inode = proc_net_inode(*t, sa);
	return inode != 0 && inode_holder(inode, out, outlen);
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
