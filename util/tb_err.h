/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tb_err.h - the one project-wide error enum, and diagnostics.
 *
 * Every operation in Tongban returns 0 (TB_OK) or a negative tb_err.
 * Each code has a stable machine-readable reason token (used on the wire
 * and in CLI messages) and a human sentence.  A struct tb_diag, when the
 * caller passes one, receives the code, a byte offset where it applies,
 * and a detail string such as the missing field's name.
 *
 * Thread-safety: no state; the strings returned are static, and a
 * struct tb_diag belongs to its caller (one per thread or operation).
 */
#ifndef TB_ERR_H
#define TB_ERR_H

#include <stddef.h>

/*
 * TB_MUST_CHECK marks a fallible function: one that returns an error code,
 * a pointer that is NULL on failure, or a bool that reports failure (or
 * whose outputs are unset when it is false).  The compiler then refuses
 * (with -Werror) a call whose result is dropped; a (void) cast does not
 * silence it.  Pure predicates and accessors do not carry it.  Where a
 * result may truly be ignored, the call site says why in a comment and
 * tests it all the same.
 */
#if defined(__GNUC__) || defined(__clang__)
#define TB_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TB_MUST_CHECK
#endif

enum tb_err {
	TB_OK = 0,
	TB_E_NOMEM = -1,                /* out of memory */
	TB_E_IO = -2,                   /* file or socket I/O failed */
	TB_E_ARG = -3,                  /* invalid argument from the caller */
	TB_E_TOO_LARGE = -4,            /* input exceeds a size limit */
	TB_E_ENCODING = -5,             /* content coding (deflate) invalid */
	TB_E_JSON_SYNTAX = -10,         /* malformed JSON */
	TB_E_JSON_UTF8 = -11,           /* invalid UTF-8 */
	TB_E_JSON_SURROGATE = -12,      /* lone UTF-16 surrogate in a \u escape */
	TB_E_JSON_DUPKEY = -13,         /* duplicate member name in an object */
	TB_E_JSON_NUMBER = -14,         /* number outside IEEE 754 double range */
	TB_E_JSON_DEPTH = -15,          /* nesting deeper than the limit */
	TB_E_FIELD_MISSING = -20,       /* required envelope field absent */
	TB_E_FIELD_TYPE = -21,          /* field has the wrong JSON type */
	TB_E_FIELD_VALUE = -22,         /* field has an invalid value */
	TB_E_FIELD_UNKNOWN = -23,       /* field not defined by this version */
	TB_E_VERSION = -24,             /* unsupported protocol version */
	TB_E_TYPE_UNKNOWN = -25,        /* unknown message type */
	TB_E_LOSSY = -26,               /* document holds what its model does not reproduce */
	TB_E_SIG_MISSING = -30,         /* envelope is not sealed */
	TB_E_SIG_ALG = -31,             /* unsupported signature algorithm */
	TB_E_SIG_KEYID = -32,           /* signing key id unknown (or not the sender's) */
	TB_E_SIG_BAD = -33,             /* signature does not verify */
	TB_E_SIG_PROOF = -34,           /* batch inclusion proof malformed/invalid */
	TB_E_EXPIRED = -40,             /* message expired */
	TB_E_NOT_YET_VALID = -41,       /* created too far in the future */
	TB_E_REPLAY = -42,              /* message id already seen */
	TB_E_HOPS = -43,                /* hop limit exceeded or routing loop */
	TB_E_KEY = -50,                 /* key file unreadable, wrong type, bad password */
	TB_E_CRYPTO = -51,              /* cryptographic library failure */
	TB_E_CERT = -52,                /* certificate unreadable or unusable */
	TB_E_CERT_EXPIRED = -60,        /* certificate (or an issuer) has expired */
	TB_E_CERT_NOT_YET_VALID = -61,  /* certificate (or an issuer) not yet valid */
	TB_E_CERT_UNKNOWN_ISSUER = -62, /* no trusted CA issued the certificate */
	TB_E_CERT_BAD_SIG = -63,        /* certificate/CSR/CRL signature does not verify */
	TB_E_CERT_REVOKED = -64,        /* certificate (or an issuer) is revoked */
	TB_E_CERT_USAGE = -65,          /* key usage / EKU / CA flag forbid this use */
	TB_E_CERT_SELF_SIGNED = -66,    /* self-signed and not a trust anchor */
	TB_E_CSR = -67,                 /* certificate request unreadable or unacceptable */
	TB_E_CRL = -68,                 /* CRL unreadable, untrusted or out of date */
	TB_E_CA_STATE = -69,            /* CA directory missing, incomplete or inconsistent */
	TB_E_CA_PREFIX = -70,           /* member id outside the issuing CA's division */
	TB_E_CA_VALIDITY = -71,         /* requested validity ends after the CA's own */
	/* federation/: registry, trust anchor, routing (-80..-99) */
	TB_E_REG_THRESHOLD = -80,     /* fewer valid signatures than the threshold */
	TB_E_REG_SIGNER = -81,        /* signature by a key not in the trust anchor */
	TB_E_REG_DUP_SIGNER = -82,    /* two signatures by the same authority */
	TB_E_REG_TAMPERED = -83,      /* a registry signature does not verify */
	TB_E_REG_EXPIRED = -84,       /* now >= valid_until */
	TB_E_REG_NOT_YET_VALID = -85, /* now < issued */
	TB_E_REG_ROLLBACK = -86,      /* serial not newer than the one held */
	TB_E_REG_DUP_MEMBER = -87,    /* two members with one id */
	TB_E_REG_DUP_KEY = -88,       /* one key id listed twice */
	TB_E_REG_LIMIT = -89,         /* a registry/trust anchor count or length limit */
	TB_E_REG_FEDERATION = -90,    /* registry names another federation */
	TB_E_REG_KEY_ID = -91,        /* key id is not SHA-256 of its SPKI */
	TB_E_REG_REFERENCE = -92,     /* parent names no hub of the registry */
	TB_E_REG_MEMBER = -93,        /* member id not in the registry */
	TB_E_NO_ROUTE = -94,          /* no active member serves service x region */
	TB_E_REG_KEY = -95,           /* a registry key is not a supported public key */
	/* node/journal: the durable store and its audit chain (-100..-109) */
	TB_E_JOURNAL_CORRUPT = -100, /* file is not a (readable) Tongban journal */
	TB_E_NOTFOUND = -101,        /* no such message id (or nothing queued) */
	TB_E_AUDIT = -102,           /* audit chain broken: an entry altered or missing */
	TB_E_JOURNAL_VERSION = -103, /* journal schema newer than this build */
	TB_E_JOURNAL_STATE = -104,   /* transition not allowed from the message's state */
	TB_E_JOURNAL_FULL = -105,    /* no room on the journal's disk (SQLITE_FULL, ENOSPC) */
	TB_E_JOURNAL_DOWN = -106,    /* the journal's database server cannot be reached */
	/* node: -110..-119 */
	TB_E_FORBIDDEN = -110,      /* sender not allowed: wrong peer, not addressed here, policy */
	TB_E_DRAINING = -111,       /* node is shutting down */
	TB_E_CONTENT_FORMAT = -112, /* request not in the required content-format */
	TB_E_SERVICE = -113,        /* request for a service the recipient does not offer */
	TB_E_RECOVERY = -114,       /* node's registry expired: no exchanges until a newer one */
	TB_E_MEMBER_SUSPENDED = -115, /* this node's own member is suspended in the registry */
	TB_E_MEMBER_REVOKED = -116,   /* this node's own member is revoked in the registry */
	TB_E_CLOCK_SKEW = -117,       /* a peer's clock differs from ours by more than clock_skew */
	TB_E_BATCH = -118,            /* a JSON array that is not 1..256 envelope objects */
	TB_E_INCOMPLETE = -119,       /* a block of a block-wise body not being received */
	/* protocol/tb_flow: message meaning (-120..-129) */
	TB_E_BODY = -120,                  /* body does not follow its type's schema */
	TB_E_FLOW_STATE = -121,            /* message not allowed in the case's state */
	TB_E_FLOW_UNMATCHED = -122,        /* answer names no open request it may answer */
	TB_E_LICENCE_DIGEST = -123,        /* licence digest does not match its content */
	TB_E_LICENCE_REVOKED = -124,       /* licence revoked by its issuer */
	TB_E_LICENCE_EXPIRED = -125,       /* licence expired */
	TB_E_LICENCE_NOT_YET_VALID = -126, /* licence not yet issued at that time */
	TB_E_LICENCE_ISSUER_SUSPENDED = -127, /* issuing member suspended in the registry */
	TB_E_LICENCE_ISSUER_REVOKED = -128,   /* issuing member revoked in the registry */
};

/* Stable machine-readable token, e.g. "sig.bad". Never NULL. */
const char *tb_err_reason(int err);
/* Human sentence, e.g. "signature does not verify". Never NULL. */
const char *tb_err_str(int err);

/*
 * Optional detail an operation leaves for its caller.  A plain value type:
 * callers declare one on the stack, pass its address (or NULL), and read
 * it after a failure.  offset is (size_t)-1 when no position applies.
 */
struct tb_diag {
	int code;
	size_t offset;
	char detail[160];
};

#define TB_DIAG_NOPOS ((size_t)-1)

/* Clears d (NULL allowed). */
void tb_diag_clear(struct tb_diag *d);
/* Records err with an optional position and printf-style detail; returns
 * err so callers can write "return tb_diag_set(d, ...)". d may be NULL. */
int tb_diag_set(struct tb_diag *d, int err, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prepends "prefix: " to d's detail (truncating). d may be NULL. */
void tb_diag_prefix(struct tb_diag *d, const char *prefix);
/* Formats a one-line message "reason: sentence[ at byte N][: detail]"
 * into out (always NUL-terminated). Returns out. */
const char *tb_diag_format(const struct tb_diag *d, char *out, size_t outlen);

#endif
