/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_peer.c - a test stand-in for a misbehaving federation member: a
 * CoAP/DTLS server (libcoap, the member's own certificate) whose
 * POST /fed/msg accepts any body and answers 2.04 with a broken answer.
 * MODE "corrupt-deflate": content-format 11050 with bytes that are not a
 * zlib stream; "empty": no payload at all.  Counts the requests it
 * answered in COUNT_FILE.  Exits after EXIT_AFTER seconds.
 * Usage: fake_peer PORT CERT_CHAIN KEY CA_FILE MODE COUNT_FILE EXIT_AFTER
 */
#include <arpa/inet.h>
#include <coap3/coap.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/tb_port.h"

static const char *mode, *count_file;
static int answered;

static void
hnd_msg(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
        coap_pdu_t *resp)
{
	static const uint8_t junk[] = "this is not a zlib stream";
	uint8_t buf[4];
	FILE *f;

	(void)r;
	(void)s;
	(void)req;
	(void)q;
	coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CHANGED);
	if (strcmp(mode, "corrupt-deflate") == 0) {
		coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT,
		                coap_encode_var_safe(buf, sizeof(buf), 11050), buf);
		coap_add_data(resp, sizeof(junk) - 1, junk);
	}
	if ((f = fopen(count_file, "w")) != NULL) {
		fprintf(f, "%d\n", ++answered);
		fclose(f);
	}
}

int
main(int argc, char **argv)
{
	coap_dtls_pki_t pki;
	coap_address_t addr;
	coap_context_t *ctx;
	coap_resource_t *r;
	time_t end;

	if (argc != 8)
		return 2;
	mode = argv[5];
	count_file = argv[6];
	end = time(NULL) + atoi(argv[7]);
	if (strcmp(mode, "corrupt-deflate") != 0 && strcmp(mode, "empty") != 0)
		return 2;
	coap_startup();
	if ((ctx = coap_new_context(NULL)) == NULL)
		return 1;
	coap_context_set_block_mode(ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	memset(&pki, 0, sizeof(pki));
	pki.version = COAP_DTLS_PKI_SETUP_VERSION;
	pki.verify_peer_cert = 1;
	pki.cert_chain_validation = 1;
	pki.cert_chain_verify_depth = 2;
	pki.pki_key.key_type = COAP_PKI_KEY_PEM;
	pki.pki_key.key.pem.public_cert = argv[2];
	pki.pki_key.key.pem.private_key = argv[3];
	pki.pki_key.key.pem.ca_file = argv[4];
	if (!coap_context_set_pki(ctx, &pki))
		return 1;
	coap_address_init(&addr);
	addr.addr.sin.sin_family = AF_INET;
	addr.addr.sin.sin_port = htons((uint16_t)atoi(argv[1]));
	addr.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.size = sizeof(addr.addr.sin);
	/* as the node does: a port another socket holds is not shared */
	int err = 0;
	if (!tb_port_free(SOCK_DGRAM, &addr.addr.sa, addr.size, &err) ||
	    coap_new_endpoint(ctx, &addr, COAP_PROTO_DTLS) == NULL) {
		fprintf(stderr, "fake_peer: cannot listen on 127.0.0.1:%s: %s\n", argv[1],
		        strerror(err != 0 ? err : errno));
		return 1;
	}
	r = coap_resource_init(coap_make_str_const("fed/msg"), 0);
	coap_register_request_handler(r, COAP_REQUEST_POST, hnd_msg);
	coap_add_resource(ctx, r);
	while (time(NULL) < end)
		coap_io_process(ctx, 200);
	coap_free_context(ctx);
	coap_cleanup();
	return 0;
}
