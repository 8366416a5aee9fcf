/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_port.h - is a local port free, and a block of free loopback ports.
 *
 * The node asks before it listens: libcoap binds its UDP endpoint with
 * SO_REUSEADDR, and on Linux two UDP sockets that both set it share a
 * port without an error (the later one takes the datagrams), so a second
 * node, or a stale one, on the same address would not be noticed.  The
 * benchmark and the tests pick their ports with tb_port_block instead of
 * a fixed block, so that runs side by side on one machine do not collide.
 *
 * Nothing is reserved: a port found free may be taken by someone else
 * before the caller binds it.  A caller that loses that race sees
 * EADDRINUSE when it binds, and picks again.
 *
 * Thread-safety: both functions may be called from any thread; they hold
 * no state between calls.
 */
#ifndef TB_PORT_H
#define TB_PORT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "tb_err.h"

/*
 * True when a socket of type socktype (SOCK_DGRAM, SOCK_STREAM) can be
 * bound to sa (borrowed, len bytes) at this moment: no socket of that
 * protocol holds the address, whatever its own options.  A datagram
 * socket is tried without SO_REUSEADDR; a stream socket with it, as a
 * listening server binds (on Linux it passes over connections in
 * TIME_WAIT only, never over a bound or listening socket).  False when
 * the bind fails (*err_out, when not NULL, gets its errno: EADDRINUSE,
 * EACCES ...).
 */
bool tb_port_free(int socktype, const struct sockaddr *sa, socklen_t len, int *err_out);

/*
 * Makes this process's datagram socket bound to exactly sa (borrowed, len
 * bytes) exclusive: clears its SO_REUSEADDR, which libcoap sets, so that
 * a later bind of the same address fails with EADDRINUSE even when that
 * one sets SO_REUSEADDR too (Linux checks both sockets' flags at bind).
 * Finds the socket among /proc/self/fd.  Returns 0, or TB_E_IO when no
 * such socket is found or its option cannot be changed.
 */
TB_MUST_CHECK int tb_port_exclusive(const struct sockaddr *sa, socklen_t len);

/* The descriptor of this process's datagram socket bound to exactly sa
 * (found among /proc/self/fd, as tb_port_exclusive finds it), or -1. */
int tb_port_bound_fd(const struct sockaddr *sa, socklen_t len);

/* errno as text with its name, e.g. "Address already in use
 * (EADDRINUSE)", into out (len bytes, always NUL-terminated); returns out. */
const char *tb_errno_text(int err, char *out, size_t len);

/*
 * Who holds the port of sa (borrowed, len bytes) for socktype: looks up
 * the bound socket in /proc/net/{udp,udp6,tcp,tcp6} (the same address, or
 * the wildcard one, and port) and the process with that socket among
 * /proc/[pid]/fd.  Writes "pid N (COMM)" into out (outlen bytes, always
 * NUL-terminated) and returns true; false when it cannot tell (no such
 * socket, or a process this user may not inspect).  For error messages.
 */
bool tb_port_holder(int socktype, const struct sockaddr *sa, socklen_t len, char *out,
                    size_t outlen);

/*
 * Finds base such that the 2 * span loopback ports base .. base+span-1
 * and base+offset .. base+offset+span-1 are each free for both UDP and
 * TCP on 127.0.0.1.  Bases are tried in random order, below the kernel's
 * ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), where
 * outgoing connections do not take ports, or above it when there is no
 * room below.  span 1..100, offset 0 or span..10000.
 * Returns 0 (TB_OK) with *base set, TB_E_ARG, or TB_E_IO when no free
 * block was found in 200 tries.
 */
TB_MUST_CHECK int tb_port_block(int span, int offset, int *base);

#endif
