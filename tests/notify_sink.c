/* SPDX-License-Identifier: Apache-2.0 */
/* notify_sink.c - stands in for systemd's notification socket in
 * tests/node_notify.sh: binds a unix datagram socket at PATH (given to
 * the node as NOTIFY_SOCKET) and prints each datagram received on one
 * line of standard output, its newlines as spaces, flushed.  Exits 0
 * after 120 s without a datagram (or when killed), 1 on a setup error.
 *
 *   notify_sink PATH */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un sa;
	struct timeval tv = {120, 0};
	char buf[4096];
	ssize_t len;
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_sink PATH (shorter than %zu)\n",
		        sizeof(sa.sun_path));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, argv[1], strlen(argv[1]));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
		fprintf(stderr, "notify_sink: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		if ((len = recv(fd, buf, sizeof(buf) - 1, 0)) < 0) {
			if (errno == EINTR)
				continue;
			break; /* the timeout */
		}
		for (ssize_t i = 0; i < len; i++)
			if (buf[i] == '\n' || buf[i] == '\0')
				buf[i] = ' ';
		buf[len] = '\0';
		printf("%s\n", buf);
		fflush(stdout);
	}
	close(fd);
	return 0;
}
