/*
 * log.h - the one logging API of the node: levels, printf checking.
 *
 * Lines go to standard error as "LEVEL component: message".  Never pass
 * personal identifiers or key material.  The level is process state of
 * the daemon (node/ is where such state may live).
 *
 * Thread-safety: tb_log may be called from any thread; each call writes
 * its line whole (stderr is locked for it).  The level is one atomic
 * value: tb_log_set_level may run while others log.
 */
#ifndef TB_LOG_H
#define TB_LOG_H

#include <stdbool.h>

#include "../util/tb_err.h"

enum tb_log_level { TB_LOG_DEBUG, TB_LOG_INFO, TB_LOG_WARN, TB_LOG_ERROR };

void tb_log_set_level(enum tb_log_level lvl);
/* "debug", "info", "warn", "error" -> level; false if unknown. */
TB_MUST_CHECK bool tb_log_level_parse(const char *s, enum tb_log_level *out);
void tb_log(enum tb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) tb_log(TB_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) tb_log(TB_LOG_INFO, __VA_ARGS__)
#define log_warnx(...) tb_log(TB_LOG_WARN, __VA_ARGS__)
#define log_errorx(...) tb_log(TB_LOG_ERROR, __VA_ARGS__)

#endif
