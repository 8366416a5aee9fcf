/* SPDX-License-Identifier: Apache-2.0 */
/*
 * port_block.c - prints a base port for a test's nodes (util/tb_port.h).
 *
 *   tests/port_block SPAN [OFFSET]
 *
 * The loopback ports BASE..BASE+SPAN-1 and BASE+OFFSET..BASE+OFFSET+SPAN-1
 * (OFFSET 1000 by default: `tongban dev-federation --base-port BASE` gives
 * member i the DTLS port BASE+i and the local API BASE+1000+i) were free
 * for UDP and TCP when it looked.  Exit 1 when none was found.
 */
#include <stdio.h>
#include <stdlib.h>

#include "util/tb_port.h"

int
main(int argc, char **argv)
{
	int base, span = argc > 1 ? atoi(argv[1]) : 0, offset = argc > 2 ? atoi(argv[2]) : 1000;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: port_block SPAN [OFFSET]\n");
		return 2;
	}
	if (tb_port_block(span, offset, &base) != 0) {
		fprintf(stderr, "port_block: no free block of %d+%d ports (offset %d)\n", span,
		        span, offset);
		return 1;
	}
	printf("%d\n", base);
	return 0;
}
