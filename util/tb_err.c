/* SPDX-License-Identifier: Apache-2.0 */
/* tb_err.c - error reasons and diagnostics. */
#include "tb_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	int code;
	const char *reason;
	const char *text;
} errtab[] = {
    {TB_OK, "ok", "success"},
    {TB_E_NOMEM, "nomem", "out of memory"},
    {TB_E_IO, "io", "input/output error"},
    {TB_E_ARG, "arg", "invalid argument"},
    {TB_E_TOO_LARGE, "too-large", "input exceeds the size limit"},
    {TB_E_ENCODING, "encoding", "invalid content coding"},
    {TB_E_JSON_SYNTAX, "json.syntax", "malformed JSON"},
    {TB_E_JSON_UTF8, "json.utf8", "invalid UTF-8"},
    {TB_E_JSON_SURROGATE, "json.surrogate", "lone UTF-16 surrogate"},
    {TB_E_JSON_DUPKEY, "json.duplicate-key", "duplicate member name"},
    {TB_E_JSON_NUMBER, "json.number-range", "number outside the IEEE 754 double range"},
    {TB_E_JSON_DEPTH, "json.depth", "nesting too deep"},
    {TB_E_FIELD_MISSING, "field.missing", "missing field"},
    {TB_E_FIELD_TYPE, "field.type", "field has the wrong type"},
    {TB_E_FIELD_VALUE, "field.value", "field has an invalid value"},
    {TB_E_FIELD_UNKNOWN, "field.unknown", "unknown field"},
    {TB_E_VERSION, "version", "unsupported protocol version"},
    {TB_E_TYPE_UNKNOWN, "type.unknown", "unknown message type"},
    {TB_E_LOSSY, "doc.lossy", "document holds content its model does not reproduce"},
    {TB_E_SIG_MISSING, "sig.missing", "envelope is not sealed"},
    {TB_E_SIG_ALG, "sig.alg", "unsupported signature algorithm"},
    {TB_E_SIG_KEYID, "sig.unknown-key", "unknown signing key id"},
    {TB_E_SIG_BAD, "sig.bad", "bad signature"},
    {TB_E_SIG_PROOF, "sig.proof", "invalid batch inclusion proof"},
    {TB_E_EXPIRED, "time.expired", "message expired"},
    {TB_E_NOT_YET_VALID, "time.future", "message created in the future"},
    {TB_E_REPLAY, "replay", "message id already seen"},
    {TB_E_HOPS, "hops", "hop limit exceeded or routing loop"},
    {TB_E_KEY, "key", "unusable key"},
    {TB_E_CRYPTO, "crypto", "cryptographic operation failed"},
    {TB_E_CERT, "cert", "unusable certificate"},
    {TB_E_CERT_EXPIRED, "cert.expired", "certificate has expired"},
    {TB_E_CERT_NOT_YET_VALID, "cert.not-yet-valid", "certificate is not yet valid"},
    {TB_E_CERT_UNKNOWN_ISSUER, "cert.unknown-issuer", "certificate issuer is not a trusted CA"},
    {TB_E_CERT_BAD_SIG, "cert.bad-signature", "signature does not verify"},
    {TB_E_CERT_REVOKED, "cert.revoked", "certificate has been revoked"},
    {TB_E_CERT_USAGE, "cert.usage", "certificate is not allowed for this use"},
    {TB_E_CERT_SELF_SIGNED, "cert.self-signed", "self-signed certificate is not trusted"},
    {TB_E_CSR, "csr", "unacceptable certificate request"},
    {TB_E_CRL, "crl", "unusable certificate revocation list"},
    {TB_E_CA_STATE, "ca.state", "unusable CA directory"},
    {TB_E_CA_PREFIX, "ca.prefix", "member id is outside the CA's division"},
    {TB_E_CA_VALIDITY, "ca.validity", "validity would end after the CA's own"},
    {TB_E_REG_THRESHOLD, "reg.threshold", "insufficient registry signatures"},
    {TB_E_REG_SIGNER, "reg.unknown-signer", "registry signed by an unknown authority"},
    {TB_E_REG_DUP_SIGNER, "reg.duplicate-signer", "registry signed twice by one authority"},
    {TB_E_REG_TAMPERED, "reg.bad-signature", "registry signature does not verify (tampered)"},
    {TB_E_REG_EXPIRED, "reg.expired", "registry has expired"},
    {TB_E_REG_NOT_YET_VALID, "reg.not-yet-valid", "registry is not yet valid"},
    {TB_E_REG_ROLLBACK, "reg.serial-not-newer", "registry serial is not newer than the one held"},
    {TB_E_REG_DUP_MEMBER, "reg.duplicate-member", "duplicate member id"},
    {TB_E_REG_DUP_KEY, "reg.duplicate-key", "duplicate key id"},
    {TB_E_REG_LIMIT, "reg.limit", "registry exceeds a limit"},
    {TB_E_REG_FEDERATION, "reg.federation", "registry belongs to another federation"},
    {TB_E_REG_KEY_ID, "reg.key-id", "key id does not match its public key"},
    {TB_E_REG_REFERENCE, "reg.reference", "parent is not a hub of the registry"},
    {TB_E_REG_MEMBER, "reg.unknown-member", "not a member of the registry"},
    {TB_E_NO_ROUTE, "route.none", "no route"},
    {TB_E_REG_KEY, "reg.key", "registry key is not an Ed25519, P-256 or SM2 public key"},
    {TB_E_JOURNAL_CORRUPT, "journal.corrupt", "not a readable Tongban journal"},
    {TB_E_NOTFOUND, "not-found", "not found"},
    {TB_E_AUDIT, "audit.broken", "audit chain is broken"},
    {TB_E_JOURNAL_VERSION, "journal.version", "journal was written by a newer version"},
    {TB_E_JOURNAL_STATE, "journal.state", "not allowed in the message's current state"},
    {TB_E_JOURNAL_FULL, "journal.full", "no room on the journal's disk; retry later"},
    {TB_E_JOURNAL_DOWN, "journal.unavailable",
     "the journal's database cannot be reached; retry later"},
    {TB_E_FORBIDDEN, "forbidden", "not allowed"},
    {TB_E_DRAINING, "draining", "node is shutting down"},
    {TB_E_CONTENT_FORMAT, "content-format", "unsupported content-format"},
    {TB_E_INCOMPLETE, "incomplete", "a block of a body not being received"},
    {TB_E_SERVICE, "service.not-offered", "service not offered by the recipient"},
    {TB_E_RECOVERY, "node.recovery", "node is in recovery: its registry has expired"},
    {TB_E_MEMBER_SUSPENDED, "member.suspended", "this node's member is suspended"},
    {TB_E_MEMBER_REVOKED, "member.revoked", "this node's member is revoked"},
    {TB_E_CLOCK_SKEW, "clock.skew", "peer clock differs by more than the allowed skew"},
    {TB_E_BATCH, "batch.invalid", "a batch is a JSON array of 1 to 256 envelope objects"},
    {TB_E_BODY, "body.invalid", "message body is invalid for its type"},
    {TB_E_FLOW_STATE, "flow.state", "not allowed in the case's current state"},
    {TB_E_FLOW_UNMATCHED, "flow.unmatched", "answer matches no open request"},
    {TB_E_LICENCE_DIGEST, "licence.digest", "licence digest does not match"},
    {TB_E_LICENCE_REVOKED, "licence.revoked", "licence has been revoked"},
    {TB_E_LICENCE_EXPIRED, "licence.expired", "licence has expired"},
    {TB_E_LICENCE_NOT_YET_VALID, "licence.not-yet-valid", "licence is not yet valid"},
    {TB_E_LICENCE_ISSUER_SUSPENDED, "licence.issuer-suspended",
     "licence issuer is suspended in the registry"},
    {TB_E_LICENCE_ISSUER_REVOKED, "licence.issuer-revoked",
     "licence issuer is revoked in the registry"},
};

static size_t
find(int err)
{
	for (size_t i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
		if (errtab[i].code == err)
			return i;
	return (size_t)-1;
}

const char *
tb_err_reason(int err)
{
	size_t i = find(err);
	return i == (size_t)-1 ? "unknown" : errtab[i].reason;
}

const char *
tb_err_str(int err)
{
	size_t i = find(err);
	return i == (size_t)-1 ? "unknown error" : errtab[i].text;
}

void
tb_diag_clear(struct tb_diag *d)
{
	if (d == NULL)
		return;
	d->code = TB_OK;
	d->offset = TB_DIAG_NOPOS;
	d->detail[0] = '\0';
}

int
tb_diag_set(struct tb_diag *d, int err, size_t offset, const char *fmt, ...)
{
	va_list ap;

	if (d == NULL)
		return err;
	d->code = err;
	d->offset = offset;
	d->detail[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
		va_end(ap);
	}
	return err;
}

const char *
tb_diag_format(const struct tb_diag *d, char *out, size_t outlen)
{
	int n;

	if (outlen == 0)
		return out;
	n = snprintf(out, outlen, "%s: %s", tb_err_reason(d->code), tb_err_str(d->code));
	if (n < 0 || (size_t)n >= outlen)
		return out;
	if (d->offset != TB_DIAG_NOPOS) {
		int m = snprintf(out + n, outlen - (size_t)n, " at byte %zu", d->offset);
		if (m < 0 || (size_t)(n + m) >= outlen)
			return out;
		n += m;
	}
	if (d->detail[0] != '\0')
		snprintf(out + n, outlen - (size_t)n, ": %s", d->detail);
	return out;
}

void
tb_diag_prefix(struct tb_diag *d, const char *prefix)
{
	char tmp[sizeof(d->detail)];
	size_t n;

	if (d == NULL)
		return;
	n = strlen(prefix);
	if (n + 2 >= sizeof(tmp))
		n = sizeof(tmp) - 3;
	memcpy(tmp, prefix, n);
	tmp[n++] = ':';
	tmp[n++] = ' ';
	size_t rest = strlen(d->detail);
	if (rest > sizeof(tmp) - 1 - n)
		rest = sizeof(tmp) - 1 - n;
	memcpy(tmp + n, d->detail, rest);
	tmp[n + rest] = '\0';
	memcpy(d->detail, tmp, sizeof(tmp));
}
