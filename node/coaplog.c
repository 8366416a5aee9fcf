/* SPDX-License-Identifier: Apache-2.0 */
/* coaplog.c - libcoap's log through the node's logger (log.h): one
 * format, one level.  A file of its own so that log.c links without
 * libcoap (the unit tests that use the journal do not have it). */
#include "log.h"

#include <coap3/coap.h>
#include <stdbool.h>
#include <string.h>

/* libcoap's warnings about one peer's handshake going wrong (an alert, a
 * certificate missing, a replayed or half-open handshake, a record of an
 * epoch the session never had: a datagram forged into it): one a refused
 * handshake, so a flood of them wrote a line each.  The node tells of the
 * same, per source and rate-limited (transport.c, flood.c): these go to
 * debug. */
static bool
handshake_chatter(const char *m)
{
	static const char *const said[] = {
	    "Client Certificate requested and required", "do_gnutls_handshake: session establish",
	    "Insufficient credentials provided",         ": Alert '",
	    "Discarded replayed handshake packet",       "Incomplete session timed out",
	    "with invalid epoch"};

	for (size_t i = 0; i < sizeof(said) / sizeof(said[0]); i++)
		if (strstr(m, said[i]) != NULL)
			return true;
	return false;
}

/* libcoap's lines: its syslog levels mapped to ours, its newline cut. */
static void
coap_line(coap_log_t level, const char *message)
{
	enum tb_log_level lvl = level <= LOG_ERR       ? TB_LOG_ERROR
	                        : level == LOG_WARNING ? TB_LOG_WARN
	                        : level <= LOG_INFO    ? TB_LOG_INFO
	                                               : TB_LOG_DEBUG;
	size_t n = strlen(message);

	if (lvl == TB_LOG_WARN && handshake_chatter(message))
		lvl = TB_LOG_DEBUG;

	while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
		n--;
	if (tb_log_enabled(lvl))
		tb_log(lvl, "libcoap: %.*s", (int)n, message);
}

static void
follow(enum tb_log_level lvl)
{
	static const coap_log_t coap_levels[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};

	coap_set_log_level(coap_levels[lvl]);
}

void
tb_log_attach_coap(void)
{
	coap_set_log_handler(coap_line);
	coap_set_show_pdu_output(0);
	tb_log_set_hook(follow);
}
