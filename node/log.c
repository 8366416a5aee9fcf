/* log.c - levelled logging to standard error. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* set on the loop (start-up, SIGHUP), read by every thread that logs */
static int cur_level = TB_LOG_INFO;

void
tb_log_set_level(enum tb_log_level lvl)
{
	__atomic_store_n(&cur_level, (int)lvl, __ATOMIC_RELAXED);
}

bool
tb_log_level_parse(const char *s, enum tb_log_level *out)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum tb_log_level)i;
			return true;
		}
	return false;
}

void
tb_log(enum tb_log_level lvl, const char *fmt, ...)
{
	static const char *const tags[] = {"debug", "info", "warn", "error"};
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if ((int)lvl < __atomic_load_n(&cur_level, __ATOMIC_RELAXED))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* one line whole, though the threads log at once */
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ %s: ", ts, now.tv_nsec / 1000000, tags[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
