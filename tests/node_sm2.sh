#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/node_sm2.sh - tests/node_exchange.sh once with the whole federation
# on SM2/SM3 (issue 21 point 5): dev-federation --alg sm2 gives every
# member an SM2 message-signing key and the registry SM2 authorities, so
# every message, batch, receipt and registry signature between the three
# nodes (over DTLS, which stays P-256) is sm2; node_exchange.sh checks each
# envelope's and receipt's sig.alg, verifies them with the SM2 sign.pub of
# their signer (and not with the other's), and that each receipt names the
# SM3 digest of what its receiver stored.  Only this one node test runs in
# sm2 mode in make check (the CI budget); NL_ALG=sm2 runs any other.
export NL_ALG=sm2
exec bash "${TB_SRCDIR:-.}/tests/node_exchange.sh"
