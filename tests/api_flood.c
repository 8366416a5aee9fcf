/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_flood.c - a client that abuses the node's local HTTP API, for
 * tests/node_apiflood.sh (issue 24 point 5).  On 127.0.0.1:PORT:
 *
 *   api_flood line PORT MIB     a request line MIB MiB long, streamed in
 *   api_flood header PORT MIB   64 KiB writes (never held in memory) until
 *                               the node stops taking it; prints
 *                               "sent=BYTES status=CODE" (status 0: the
 *                               connection was reset before an answer)
 *   api_flood idle PORT N SECS  opens N connections (two processes of N/2,
 *                               each raising its own open-file limit),
 *                               prints "connected=K" once all are up or
 *                               failed, holds them SECS s (or until
 *                               killed), then closes them
 *   api_flood get PORT PATH     one GET on a new connection; prints
 *                               "status=CODE ms=MILLISECONDS"
 *   api_flood slow PORT MS MAX  sends a request line, then one header byte
 *                               every MS ms; prints "closed_after=SECONDS"
 *                               when the node closes it (or MAX s pass:
 *                               "closed_after=-1")
 *
 * Exit 0 when it ran (the test judges the numbers), 2 on bad usage or a
 * failure of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

static int port;

static double
now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
addr_of(struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((unsigned short)port);
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int
dial(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	addr_of(&a);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The status code of an answer read from fd within secs (0: none). */
static int
read_status(int fd, int secs)
{
	char buf[512];
	size_t len = 0;
	int code = 0;
	struct pollfd p = {fd, POLLIN, 0};

	while (len < sizeof(buf) - 1 && poll(&p, 1, secs * 1000) == 1) {
		ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (strchr(buf, '\n') != NULL)
			break;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/%*d.%*d %d", &code) != 1)
		code = 0;
	return code;
}

static int
long_line(int header, long mib)
{
	static char chunk[64 * 1024];
	const char *head =
	    header ? "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " : "GET /";
	unsigned long long sent = 0, total = (unsigned long long)mib << 20;
	struct timeval tv = {10, 0};
	int fd;

	memset(chunk, 'a', sizeof(chunk));
	if ((fd = dial()) < 0) {
		perror("api_flood: connect");
		return 2;
	}
	/* a node that stops reading leaves send blocked: give up after 10 s */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send_all(fd, head, strlen(head)) == 0) {
		while (sent < total && send_all(fd, chunk, sizeof(chunk)) == 0)
			sent += sizeof(chunk);
	}
	printf("sent=%llu status=%d\n", sent, read_status(fd, 5));
	close(fd);
	return 0;
}

static void
raise_nofile(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rl.rlim_cur = (rlim_t)want < rl.rlim_max ? (rlim_t)want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

#define BATCH 256

/* Opens n (at most BATCH) non-blocking connections from fds[0], waits (at most until
 * deadline) for their handshakes; returns how many completed.  A
 * completed one is kept open, its slot set to -2 - fd. */
static int
open_batch(int n, int *fds, double deadline)
{
	struct sockaddr_in a;
	int ok = 0, waiting = 0;

	addr_of(&a);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fds[i] < 0)
			continue;
		if (connect(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0) {
			ok++;
			fds[i] = -2 - fds[i];
		} else if (errno == EINPROGRESS) {
			waiting++;
		} else {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	/* one poll over the pending handshakes at a time: a loop of polls
	 * would take the CPU the node needs to accept them */
	while (waiting > 0 && now_s() < deadline) {
		struct pollfd p[BATCH];
		int k = 0;

		for (int i = 0; i < n && k < BATCH; i++)
			if (fds[i] >= 0)
				p[k++] = (struct pollfd){fds[i], POLLOUT, 0};
		if (poll(p, (nfds_t)k, 100) <= 0)
			continue;
		for (int j = 0; j < k; j++) {
			int err = 0;
			socklen_t el = sizeof(err);

			if (p[j].revents == 0)
				continue;
			getsockopt(p[j].fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err == 0)
				ok++;
			else
				close(p[j].fd);
			waiting--;
			for (int i = 0; i < n; i++)
				if (fds[i] == p[j].fd) {
					fds[i] = -2 - fds[i];
					break;
				}
		}
	}
	return ok;
}

/* Opens n connections, BATCH at a time: more at once would overflow the
 * node's accept queue, and the kernel would then complete handshakes on
 * the client's side that the node never sees. */
static int
open_many(int n, int *fds)
{
	double deadline = now_s() + 120;
	int ok = 0;

	for (int i = 0; i < n; i += BATCH)
		ok += open_batch(n - i < BATCH ? n - i : BATCH, fds + i, deadline);
	return ok;
}

static int
idle(int n, int secs)
{
	int half[2] = {n / 2, n - n / 2}, pipes[2][2], total = 0;
	pid_t kid[2];

	for (int k = 0; k < 2; k++) {
		if (pipe(pipes[k]) != 0 || (kid[k] = fork()) < 0)
			return 2;
		if (kid[k] == 0) {
			int *fds = calloc((size_t)half[k], sizeof(int));
			int ok;

			close(pipes[k][0]);
			/* they go with the parent (the test kills the parent) */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1)
				_exit(0);
			raise_nofile(half[k] + 64);
			ok = fds != NULL ? open_many(half[k], fds) : 0;
			if (write(pipes[k][1], &ok, sizeof(ok)) != sizeof(ok))
				_exit(2);
			/* hold them secs s (or until killed) */
			{
				double end = now_s() + secs;
				while (now_s() < end)
					usleep(200 * 1000);
			}
			_exit(0);
		}
		close(pipes[k][1]);
	}
	for (int k = 0; k < 2; k++) {
		int ok = 0;
		if (read(pipes[k][0], &ok, sizeof(ok)) == sizeof(ok))
			total += ok;
	}
	printf("connected=%d\n", total);
	fflush(stdout);
	for (int k = 0; k < 2; k++)
		waitpid(kid[k], NULL, 0);
	return 0;
}

static int
get(const char *path)
{
	char req[512];
	double t0 = now_s();
	int fd, code;

	snprintf(req, sizeof(req),
	         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if ((fd = dial()) < 0) {
		printf("status=0 ms=-1\n");
		return 0;
	}
	code = send_all(fd, req, strlen(req)) == 0 ? read_status(fd, 10) : 0;
	printf("status=%d ms=%.1f\n", code, (now_s() - t0) * 1000);
	close(fd);
	return 0;
}

static int
slow(int ms, int max)
{
	const char *head = "GET /healthz HTTP/1.1\r\nX-Slow: ";
	double t0 = now_s();
	int fd;

	if ((fd = dial()) < 0 || send_all(fd, head, strlen(head)) != 0)
		return 2;
	while (now_s() - t0 < max) {
		struct pollfd p = {fd, POLLIN, 0};
		char c;

		/* the node closes (EOF or reset), or may answer 408 first */
		if (poll(&p, 1, ms) == 1 && recv(fd, &c, 1, MSG_PEEK) >= 0) {
			printf("closed_after=%.1f\n", now_s() - t0);
			close(fd);
			return 0;
		}
		if (send_all(fd, "a", 1) != 0) {
			printf("closed_after=%.1f\n", now_s() - t0);
			close(fd);
			return 0;
		}
	}
	printf("closed_after=-1\n");
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 3 || (port = atoi(argv[2])) <= 0 || port > 65535) {
		fprintf(stderr, "usage: api_flood line|header|idle|get|slow PORT ...\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((strcmp(argv[1], "line") == 0 || strcmp(argv[1], "header") == 0) && argc == 4)
		return long_line(argv[1][0] == 'h', atol(argv[3]));
	if (strcmp(argv[1], "idle") == 0 && argc == 5)
		return idle(atoi(argv[3]), atoi(argv[4]));
	if (strcmp(argv[1], "get") == 0 && argc == 4)
		return get(argv[3]);
	if (strcmp(argv[1], "slow") == 0 && argc == 5)
		return slow(atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "api_flood: bad arguments for %s\n", argv[1]);
	return 2;
}
