/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_udp_relay.c - the hostile-network relay (tests/udp_relay.c) does
 * what its scenario says: loss and delay at their rates, duplicates,
 * partition and heal.  Datagrams go client -> relay -> an echo socket ->
 * relay -> client, each carrying its send time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

extern char **environ;

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
udp_socket(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t l = sizeof(a);
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return s;
}

struct run {
	int sent, echoed;
	int64_t min_rtt_us;
	int echoed_early, echoed_late; /* sent before / after `split_us` */
};

/* Starts the relay (scenario text), sends n datagrams every gap_us,
 * echoes what reaches the target, and counts what comes back. */
static void
run_relay(const char *scenario, int n, int64_t gap_us, int64_t split_us, struct run *r)
{
	char scen[] = "/tmp/tb-relay-scenario-XXXXXX", portf[] = "/tmp/tb-relay-port-XXXXXX";
	char target[32], pbuf[16] = "";
	uint16_t eport, rport;
	int echo = udp_socket(&eport), cli, fd;
	struct sockaddr_in ra = {.sin_family = AF_INET};
	pid_t pid;
	int64_t t0, end;
	FILE *f;

	memset(r, 0, sizeof(*r));
	r->min_rtt_us = INT64_MAX;
	assert_true((fd = mkstemp(scen)) >= 0);
	assert_true(write(fd, scenario, strlen(scenario)) == (ssize_t)strlen(scenario));
	close(fd);
	assert_true((fd = mkstemp(portf)) >= 0);
	close(fd);
	unlink(portf);
	snprintf(target, sizeof(target), "127.0.0.1:%u", eport);
	char *argv[] = {"tests/udp_relay", "--listen", "127.0.0.1:0", "--target", target,
	                "--scenario", scen, "--port-file", portf, "--seed", "42", NULL};
	assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
	for (int i = 0; i < 500 && pbuf[0] == '\0'; i++) {
		usleep(10000);
		if ((f = fopen(portf, "r")) != NULL) {
			if (fgets(pbuf, sizeof(pbuf), f) == NULL)
				pbuf[0] = '\0';
			fclose(f);
		}
	}
	assert_true(pbuf[0] != '\0');
	rport = (uint16_t)atoi(pbuf);
	ra.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ra.sin_port = htons(rport);
	cli = udp_socket(&eport);
	t0 = now_us();
	end = t0 + n * gap_us + 1500000;
	while (now_us() < end) {
		uint8_t buf[64];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t k;
		int64_t now = now_us();
		if (r->sent < n && now >= t0 + r->sent * gap_us) {
			int64_t stamp = now;
			assert_true(sendto(cli, &stamp, sizeof(stamp), 0, (struct sockaddr *)&ra,
			                   sizeof(ra)) == sizeof(stamp));
			r->sent++;
		}
		while ((k = recvfrom(echo, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
		                     &fl)) > 0)
			(void)sendto(echo, buf, (size_t)k, 0, (struct sockaddr *)&from, fl);
		while ((k = recv(cli, buf, sizeof(buf), MSG_DONTWAIT)) == sizeof(int64_t)) {
			int64_t stamp;
			memcpy(&stamp, buf, sizeof(stamp));
			r->echoed++;
			if (now_us() - stamp < r->min_rtt_us)
				r->min_rtt_us = now_us() - stamp;
			if (stamp - t0 < split_us)
				r->echoed_early++;
			else
				r->echoed_late++;
		}
		usleep(200);
	}
	kill(pid, SIGTERM);
	assert_int_equal(waitpid(pid, &fd, 0), pid);
	assert_true(WIFEXITED(fd) && WEXITSTATUS(fd) == 0);
	close(cli);
	close(echo);
	unlink(scen);
	unlink(portf);
}

static void
test_loss_and_delay(void **state)
{
	struct run r;

	(void)state;
	/* half lost one way, 40 ms each way: 400 sent, ~200 back after >= 80 ms */
	run_relay("0 a2b.loss=50 delay=40\n", 400, 2000, INT64_MAX, &r);
	assert_int_equal(r.sent, 400);
	if (r.echoed < 150 || r.echoed > 250)
		fail_msg("50%% loss: %d of 400 came back", r.echoed);
	if (r.min_rtt_us < 79000)
		fail_msg("40 ms each way: fastest round trip %lld us", (long long)r.min_rtt_us);
}

static void
test_duplicates(void **state)
{
	struct run r;

	(void)state;
	run_relay("0 b2a.dup=100\n", 200, 2000, INT64_MAX, &r);
	assert_int_equal(r.echoed, 2 * r.sent);
}

static void
test_partition_heal(void **state)
{
	struct run r;

	(void)state;
	/* cut from 0 to 0.5 s: what is sent in the first 0.4 s never arrives,
	 * what is sent after 0.6 s all does */
	run_relay("0 partition\n0.5 heal\n", 500, 2000, 400000, &r);
	if (r.echoed_early != 0)
		fail_msg("%d datagrams crossed a partition", r.echoed_early);
	if (r.echoed < 190 || r.echoed > 300)
		fail_msg("after the heal: %d of ~250 came back", r.echoed);
}

static void
test_bad_scenario(void **state)
{
	char scen[] = "/tmp/tb-relay-bad-XXXXXX";
	int fd, status;
	pid_t pid;

	(void)state;
	assert_true((fd = mkstemp(scen)) >= 0);
	assert_true(write(fd, "0 loss=150\n", 11) == 11);
	close(fd);
	char *argv[] = {"tests/udp_relay", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:9",
	                "--scenario", scen, NULL};
	assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2);
	unlink(scen);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_loss_and_delay),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_partition_heal),
	    cmocka_unit_test(test_bad_scenario),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
