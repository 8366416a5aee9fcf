/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webhook_sink.c - a test stand-in for a city's own system: an HTTP
 * server on 127.0.0.1:PORT that answers the first FAILS requests with 500
 * and the rest with 200, appending each request body (one line) to FILE.
 * Exits after EXIT_AFTER seconds.  Usage: webhook_sink PORT FILE FAILS EXIT_AFTER
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in a;
	int ls, one = 1, fails, seen = 0;
	time_t end;
	FILE *out;

	if (argc != 5)
		return 2;
	fails = atoi(argv[3]);
	end = time(NULL) + atoi(argv[4]);
	if ((out = fopen(argv[2], "a")) == NULL)
		return 3;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 16) != 0) {
		fprintf(stderr, "webhook_sink: cannot bind 127.0.0.1:%s: %s\n", argv[1],
		        strerror(errno));
		return 3;
	}
	while (time(NULL) < end) {
		struct pollfd p = {ls, POLLIN, 0};
		char buf[1 << 16];
		size_t len = 0;
		int c;
		if (poll(&p, 1, 200) <= 0)
			continue;
		if ((c = accept(ls, NULL, NULL)) < 0)
			continue;
		/* read headers and the Content-Length body */
		for (;;) {
			struct pollfd q = {c, POLLIN, 0};
			ssize_t r;
			if (poll(&q, 1, 2000) <= 0 || len == sizeof(buf) - 1)
				break;
			if ((r = read(c, buf + len, sizeof(buf) - 1 - len)) <= 0)
				break;
			len += (size_t)r;
			buf[len] = '\0';
			char *h = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "Content-Length:");
			if (h != NULL && cl != NULL &&
			    len >= (size_t)(h + 4 - buf) + (size_t)atol(cl + 15))
				break;
		}
		char *body = strstr(buf, "\r\n\r\n");
		int code = seen++ < fails ? 500 : 200;
		if (body != NULL && code == 200) {
			fprintf(out, "%s\n", body + 4);
			fflush(out);
		}
		dprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code,
		        code == 200 ? "OK" : "Internal Server Error");
		close(c);
	}
	fclose(out);
	return 0;
}
