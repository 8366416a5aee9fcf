/* SPDX-License-Identifier: Apache-2.0 */
/* test_flow.c - message meaning: body schemas, pairing, case lifecycle,
 * licences (protocol/tb_flow). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/tb_key.h"
#include "protocol/tb_env.h"
#include "protocol/tb_flow.h"
#include "protocol/tb_json.h"
#include "util/tb_buf.h"
#include "util/tb_enc.h"
#include "util/tb_err.h"

#define NOW 1700000000LL
#define H "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define H2 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define A10 "AAAAAAAAAA"
#define SIGV A10 A10 A10 A10 A10 A10 A10 A10 "AAAAAA" /* 86 chars: 64 zero bytes */
#define LIC                                                                                        \
	"{'id':'JS-2024-000123','type':'business-license','holder_idhash':'" H "',"                \
	"'issuer':'320300','issued':1600000000,'valid_until':1900000000,'status':'valid',"         \
	"'fields':{'name':'\xe5\xbe\x90\xe5\xb7\x9e\xe5\xb8\x82 Co.','scope':'retail'},"           \
	"'digest':'" H2 "','issuer_sig':{'alg':'ed25519','kid':'" H "','val':'" SIGV "'}}"

/* Parses text with ' standing for " (tables stay readable). */
static struct tb_json_doc *
parse_q(const char *text)
{
	char *s = strdup(text);
	struct tb_json_doc *doc;
	struct tb_diag d;

	assert_non_null(s);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	doc = tb_json_parse((const uint8_t *)s, strlen(s), NULL, &d);
	if (doc == NULL)
		fail_msg("test JSON refused: %s (%s) in %s", tb_err_reason(d.code), d.detail, s);
	free(s);
	return doc;
}

static int
check_q(const char *type, const char *body, struct tb_diag *d)
{
	struct tb_json_doc *doc = parse_q(body);
	int rc = tb_flow_check_body(type, tb_json_root(doc), d);
	tb_json_doc_free(doc);
	return rc;
}

/* ---- valid bodies: at least one per type ---- */

static const struct {
	const char *type, *body;
} good[] = {
    {"identity.verify",
     "{'subject':{'kind':'person','idhash':'" H "'},'purpose':'hukou.transfer'}"},
    {"identity.verify", "{'subject':{'kind':'enterprise','idhash':'" H "'},'purpose':'tax'}"},
    {"identity.result", "{'result':'match','assurance':'substantial'}"},
    {"identity.result",
     "{'result':'match','assurance':'high','attributes':{'name':'\xe5\xbc\xa0\xe4\xb8\x89',"
     "'birth_year':'1980','empty':''}}"},
    {"identity.result", "{'result':'no-match'}"},
    {"identity.result", "{'result':'unknown'}"},
    {"licence.query", "{'holder':{'idhash':'" H "'},'licence':'business-license'}"},
    {"licence.present", "{'licences':[]}"},
    {"licence.present", "{'licences':[" LIC "," LIC "]}"},
    {"licence.verify", "{'licence_id':'JS-2024-000123','digest':'" H "'}"},
    {"licence.status", "{'licence_id':'JS-2024-000123','status':'valid','checked':1700000000}"},
    {"licence.status", "{'licence_id':'x','status':'unknown','checked':0}"},
    {"case.submit",
     "{'case_id':'XZ-2024.0001_a','service':'hukou.transfer','applicant':{'kind':'person',"
     "'idhash':'" H "'},'materials':[{'sha256':'" H "','size':1024,'name':'id-card.pdf'},"
     "{'sha256':'" H2 "','size':0}],'mode':'online'}"},
    {"case.submit",
     "{'case_id':'c1','service':'pension.transfer','applicant':{'kind':'enterprise',"
     "'idhash':'" H "'},'materials':[],'mode':'joint','parties':['320300','370800','371300']}"},
    {"case.submit", "{'case_id':'c2','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
                    "'materials':[],'mode':'proxy'}"},
    /* issue 21: a material's digest may be SM3 instead */
    {"case.submit", "{'case_id':'c3','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
                    "'materials':[{'sm3':'" H2 "','size':7},{'sha256':'" H "','size':1}],"
                    "'mode':'online'}"},
    {"case.accept", "{'case_id':'c1'}"},
    {"case.reject", "{'case_id':'c1','reason':'materials incomplete'}"},
    {"case.update", "{'case_id':'c1','status':'material-review'}"},
    {"case.update",
     "{'case_id':'c1','status':'review','note':'\xe5\xae\xa1\xe6\xa0\xb8\xe4\xb8\xad'}"},
    {"case.result", "{'case_id':'c1','outcome':'approved'}"},
    {"case.result", "{'case_id':'c1','outcome':'denied','documents':[{'sha256':'" H
                    "','size':12,'name':'d.pdf'}]}"},
    {"case.query", "{'case_id':'c1'}"},
    {"case.state", "{'case_id':'c1','state':'in-progress'}"},
    {"case.state", "{'case_id':'c1','state':'unknown'}"},
    {"receipt", "{'digest':'" H "','received':1700000000,'status':'accepted'}"},
    {"error", "{'reason':'flow.state'}"},
    {"error", "{'reason':'case.unknown-service','detail':'no such service here'}"},
    {"control.ping", "{}"},
    {"control.pong", "{}"},
    {"control.status", "{}"},
    {"control.registry", "{'serial':42}"},
};
#define NGOOD (sizeof(good) / sizeof(good[0]))

static void
test_good_bodies(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOOD; i++) {
		struct tb_diag d;
		int rc = check_q(good[i].type, good[i].body, &d);
		if (rc != TB_OK)
			fail_msg("%s refused: %s (%s)", good[i].type, tb_err_reason(rc), d.detail);
		assert_int_equal(d.code, TB_OK);
	}
	/* every type of the version has a valid body above */
	for (const char *const *t = tb_msgtype_all(); *t != NULL; t++) {
		bool found = false;
		for (size_t i = 0; i < NGOOD && !found; i++)
			found = strcmp(good[i].type, *t) == 0;
		if (!found)
			fail_msg("no valid body for %s", *t);
	}
}

/* ---- bad values: explicit table (detail must be exactly this) ---- */

static const struct {
	const char *type, *body, *detail;
} bad[] = {
    {"identity.verify", "{'subject':{'kind':'person','idhash':'" H "A'},'purpose':'x'}",
     "body.subject.idhash: must be 64 lowercase hex digits"},
    {"identity.verify",
     "{'subject':{'kind':'person','idhash':'"
     "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08'},'purpose':'x'}",
     "body.subject.idhash: must be 64 lowercase hex digits"},
    {"identity.verify", "{'subject':{'kind':'robot','idhash':'" H "'},'purpose':'x'}",
     "body.subject.kind: must be one of \"person\", \"enterprise\""},
    {"identity.verify", "{'subject':{'kind':'person','idhash':'" H "'},'purpose':'Hukou'}",
     "body.purpose: must be 1-64 of a-z 0-9 . - (a service code)"},
    {"identity.verify", "{'subject':{'kind':'person','idhash':'" H "'},'purpose':'-x'}",
     "body.purpose: must be 1-64 of a-z 0-9 . - (a service code)"},
    {"identity.result", "{'result':'match'}", "body.assurance: required when result is \"match\""},
    {"identity.result", "{'result':'no-match','assurance':'low'}",
     "body.assurance: only allowed when result is \"match\""},
    {"identity.result", "{'result':'unknown','attributes':{}}",
     "body.attributes: only allowed when result is \"match\""},
    {"identity.result", "{'result':'match','assurance':'medium'}",
     "body.assurance: must be one of \"low\", \"substantial\", \"high\""},
    {"identity.result", "{'result':'match','assurance':'low','attributes':{'a':1}}",
     "body.attributes.a: must be a string"},
    {"identity.result", "{'result':'match','assurance':'low','attributes':{'a':'x\\ny'}}",
     "body.attributes.a: must be 0-1024 bytes without control characters"},
    {"identity.result", "{'result':'match','assurance':'low','attributes':{'':'x'}}",
     "body.attributes.: member names must be 1-64 bytes without control characters"},
    {"identity.result",
     "{'result':'match','assurance':'low','attributes':{'a1':'','a2':'','a3':'','a4':'','a5':'',"
     "'a6':'','a7':'','a8':'','a9':'','b1':'','b2':'','b3':'','b4':'','b5':'','b6':'','b7':'',"
     "'b8':'','b9':'','c1':'','c2':'','c3':'','c4':'','c5':'','c6':'','c7':'','c8':'','c9':'',"
     "'d1':'','d2':'','d3':'','d4':'','d5':'','d6':''}}",
     "body.attributes: at most 32 members"},
    {"licence.query", "{'holder':{'idhash':'" H "','name':'x'},'licence':'x'}",
     "body.holder.name: unknown member"},
    {"licence.query", "{'holder':{'idhash':'" H "'},'licence':''}",
     "body.licence: must be 1-64 of a-z 0-9 . - (a service code)"},
    {"licence.present",
     "{'licences':[" LIC "," LIC "," LIC "," LIC "," LIC "," LIC "," LIC "," LIC "," LIC "," LIC
     "," LIC "," LIC "," LIC "," LIC "," LIC "," LIC "," LIC "]}",
     "body.licences: must have 0 to 16 elements"},
    {"licence.present",
     "{'licences':[{'id':'a','type':'t','holder_idhash':'" H "','issuer':'32030','issued':1,"
     "'valid_until':2,'status':'valid','fields':{},'digest':'" H "','issuer_sig':{'alg':'ed25519',"
     "'kid':'" H "','val':'" SIGV "'}}]}",
     "body.licences[0].issuer: must be a member id (6 digits)"},
    {"licence.present",
     "{'licences':[{'id':'a','type':'t','holder_idhash':'" H "','issuer':'320300','issued':5,"
     "'valid_until':5,'status':'valid','fields':{},'digest':'" H "','issuer_sig':{'alg':'ed25519',"
     "'kid':'" H "','val':'" SIGV "'}}]}",
     "body.licences[0].valid_until: must be after issued"},
    {"licence.present",
     "{'licences':[{'id':'a','type':'t','holder_idhash':'" H "','issuer':'320300','issued':-1,"
     "'valid_until':5,'status':'valid','fields':{},'digest':'" H "','issuer_sig':{'alg':'ed25519',"
     "'kid':'" H "','val':'" SIGV "'}}]}",
     "body.licences[0].issued: must be in 0..9007199254740992"},
    {"licence.present",
     "{'licences':[{'id':'a','type':'t','holder_idhash':'" H "','issuer':'320300','issued':1,"
     "'valid_until':5,'status':'suspended','fields':{},'digest':'" H
     "','issuer_sig':{'alg':'ed25519',"
     "'kid':'" H "','val':'" SIGV "'}}]}",
     "body.licences[0].status: must be one of \"valid\", \"revoked\", \"expired\""},
    {"licence.present",
     "{'licences':[{'id':'a','type':'t','holder_idhash':'" H "','issuer':'320300','issued':1,"
     "'valid_until':5,'status':'valid','fields':{},'digest':'" H "','issuer_sig':{'alg':'rsa',"
     "'kid':'" H "','val':'" SIGV "'}}]}",
     "body.licences[0].issuer_sig.alg: must be one of \"ed25519\", \"p256\""},
    {"licence.present",
     "{'licences':[{'id':'a','type':'t','holder_idhash':'" H "','issuer':'320300','issued':1,"
     "'valid_until':5,'status':'valid','fields':{},'digest':'" H "','issuer_sig':{'alg':'p256',"
     "'kid':'" H "','val':'" SIGV "='}}]}",
     "body.licences[0].issuer_sig.val: must be 64 bytes in base64url without padding"},
    {"licence.verify", "{'licence_id':'','digest':'" H "'}",
     "body.licence_id: must be 1-128 bytes"},
    {"licence.status", "{'licence_id':'a','status':'valid','checked':1.5}",
     "body.checked: must be an integer"},
    {"licence.status", "{'licence_id':'a','status':'valid','checked':'1'}",
     "body.checked: must be an integer"},
    {"case.submit",
     "{'case_id':'a b','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[],'mode':'online'}",
     "body.case_id: must be 1-64 of A-Z a-z 0-9 . _ -"},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[{'sha256':'" H "','size':-1}],'mode':'online'}",
     "body.materials[0].size: must be in 0..9007199254740992"},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[{'sha256':'" H "','size':1},{'sha256':'" H
     "','size':1,'name':''}],'mode':'online'}",
     "body.materials[1].name: must be 1-256 bytes"},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[],'mode':'remote'}",
     "body.mode: must be one of \"online\", \"proxy\", \"joint\""},
    /* exactly one of sha256 and sm3 (issue 21) */
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[{'size':1}],'mode':'online'}",
     "body.materials[0].sha256: required when sm3 is absent"},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[{'sha256':'" H "','sm3':'" H "','size':1}],'mode':'online'}",
     "body.materials[0].sm3: only allowed when sha256 is absent"},
    {"case.result", "{'case_id':'c1','outcome':'approved','documents':[{'sm3':'AB','size':1}]}",
     "body.documents[0].sm3: must be 64 lowercase hex digits"},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[],'mode':'joint'}",
     "body.parties: required when mode is \"joint\""},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[],'mode':'online','parties':['320300','370800']}",
     "body.parties: only allowed when mode is \"joint\""},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[],'mode':'joint','parties':['320300']}",
     "body.parties: must have 2 to 16 elements"},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[],'mode':'joint','parties':['320300','370800','320300']}",
     "body.parties[2]: repeats an earlier element"},
    {"case.submit",
     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
     "'materials':[],'mode':'joint','parties':['320300','070800']}",
     "body.parties[1]: must be a member id (6 digits)"},
    {"case.accept", "{'case_id':'c','reason':'x'}", "body.reason: unknown member"},
    {"case.accept", "{'case_id':'" A10 A10 A10 A10 A10 A10 "ABCDE'}",
     "body.case_id: must be 1-64 of A-Z a-z 0-9 . _ -"},
    {"case.reject", "{'case_id':'c','reason':''}", "body.reason: must be 1-1024 bytes"},
    {"case.reject", "{'case_id':'c','reason':'a\\u0000b'}",
     "body.reason: must not contain control characters"},
    {"case.update", "{'case_id':'c','status':'x','note':'a\\u007fb'}",
     "body.note: must not contain control characters"},
    {"case.result", "{'case_id':'c','outcome':'ok'}",
     "body.outcome: must be one of \"approved\", \"denied\""},
    {"case.state", "{'case_id':'c','state':'none'}",
     "body.state: must be one of \"submitted\", \"accepted\", \"rejected\", \"in-progress\", \""},
    {"receipt", "{'digest':'" H "','received':1,'status':'refused'}",
     "body.status: must be one of \"accepted\""},
    {"error", "{'reason':'Bad Reason'}",
     "body.reason: must be 1-64 of a-z 0-9 . - (a service code)"},
    {"control.ping", "{'x':1}", "body.x: unknown member"},
    /* a name holding U+0000 is not the shorter name (receipts are the proof of delivery) */
    {"receipt", "{'digest':'" H "','received':1,'status':'accepted','status\\u0000':'x'}",
     "body.status?: unknown member"},
    {"case.submit", "{'case_id':'c','case_id\\u0000':'d'}", "body.case_id?: unknown member"},
    {"control.registry", "{'serial':0}", "body.serial: must be in 1..9007199254740991"},
    {"control.registry", "{'serial':9007199254740992}",
     "body.serial: must be in 1..9007199254740991"},
    {"control.registry", "{'serial':1e300}", "body.serial: must be an integer"},
    {"control.status", "[]", "body: must be an object"},
    {"case.query",
     "{'case_id':'c','\\u0001weird name that is really very long indeed, longer than forty':1}",
     "body.?weird?name?that?is?really?very?long..: unknown member"},
};

static void
test_bad_bodies(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tb_diag d;
		int rc = check_q(bad[i].type, bad[i].body, &d);
		if (rc != TB_E_BODY)
			fail_msg("%s %s: got %s, want body.invalid", bad[i].type, bad[i].body,
			         tb_err_reason(rc));
		assert_int_equal(d.code, TB_E_BODY);
		if (strncmp(d.detail, bad[i].detail, strlen(bad[i].detail)) != 0)
			fail_msg("%s: detail \"%s\", want \"%s\"", bad[i].type, d.detail,
			         bad[i].detail);
		/* the same without a diag */
		assert_int_equal(check_q(bad[i].type, bad[i].body, NULL), TB_E_BODY);
	}
	assert_string_equal(tb_err_reason(TB_E_BODY), "body.invalid");
}

static void
test_bad_calls(void **state)
{
	struct tb_json_doc *doc = parse_q("{}");
	struct tb_diag d;

	(void)state;
	assert_int_equal(tb_flow_check_body("case.nonsense", tb_json_root(doc), &d),
	                 TB_E_TYPE_UNKNOWN);
	assert_int_equal(d.code, TB_E_TYPE_UNKNOWN);
	assert_int_equal(tb_flow_check_body(NULL, tb_json_root(doc), &d), TB_E_ARG);
	assert_int_equal(tb_flow_check_body("control.ping", NULL, &d), TB_E_ARG);
	tb_json_doc_free(doc);
}

/* ---- systematic mutations of every valid body ----
 *
 * Each mutation site of a valid body is hit once: a member removed, a
 * member or array element replaced by `true`, an unknown member "zz"
 * added to an object.  Map objects (attributes, fields) take any names, so
 * only the map as a whole is mutated. */

enum mkind { M_REMOVE, M_REPLACE, M_ADD };

struct mut {
	int target, count;
	bool hit;
	enum mkind kind;
	char path[160];
	char name[64];
};

static bool
is_map(const char *name)
{
	return name != NULL && (strcmp(name, "attributes") == 0 || strcmp(name, "fields") == 0);
}

static bool
site(struct mut *m, enum mkind k, const char *path, const char *name)
{
	if (m->count++ != m->target)
		return false;
	m->hit = true;
	m->kind = k;
	snprintf(m->path, sizeof(m->path), "%s", path);
	snprintf(m->name, sizeof(m->name), "%s", name ? name : "");
	return true;
}

static struct tb_json *
copy_mut(struct tb_json_doc *doc, const struct tb_json *v, struct mut *m, const char *path,
         bool map)
{
	char sub[160];
	size_t n, i = 0;
	const char *s;
	struct tb_json *c;

	switch (tb_json_kind(v)) {
	case TB_JSON_NUMBER: return tb_json_new_number(doc, tb_json_number(v));
	case TB_JSON_STRING: s = tb_json_string(v, &n); return tb_json_new_string(doc, s, n);
	case TB_JSON_ARRAY:
		c = tb_json_new_array(doc);
		for (const struct tb_json *e = tb_json_first(v); e; e = tb_json_next(e), i++) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (site(m, M_REPLACE, sub, NULL))
				assert_int_equal(
				    tb_json_append(c, tb_json_new_literal(doc, TB_JSON_TRUE)),
				    TB_OK);
			else
				assert_int_equal(tb_json_append(c, copy_mut(doc, e, m, sub, false)),
				                 TB_OK);
		}
		return c;
	case TB_JSON_OBJECT:
		c = tb_json_new_object(doc);
		for (const struct tb_json *e = tb_json_first(v); e; e = tb_json_next(e)) {
			const char *k = tb_json_key(e, NULL);
			snprintf(sub, sizeof(sub), "%s.%s", path, k);
			if (!map && site(m, M_REMOVE, sub, k))
				continue;
			if (!map && site(m, M_REPLACE, sub, k))
				assert_int_equal(
				    tb_json_set(doc, c, k, tb_json_new_literal(doc, TB_JSON_TRUE)),
				    TB_OK);
			else
				assert_int_equal(
				    tb_json_set(doc, c, k, copy_mut(doc, e, m, sub, is_map(k))),
				    TB_OK);
		}
		snprintf(sub, sizeof(sub), "%s.zz", path);
		if (!map && site(m, M_ADD, sub, "zz"))
			assert_int_equal(tb_json_set(doc, c, "zz", tb_json_new_number(doc, 1)),
			                 TB_OK);
		return c;
	default: return tb_json_new_literal(doc, tb_json_kind(v));
	}
}

static bool
optional_member(const char *name)
{
	static const char *const opt[] = {"assurance", "attributes", "name",   "parties",
	                                  "note",      "documents",  "detail", NULL};
	for (size_t i = 0; opt[i] != NULL; i++)
		if (strcmp(opt[i], name) == 0)
			return true;
	return false;
}

static void
test_mutations(void **state)
{
	size_t total = 0;

	(void)state;
	for (size_t g = 0; g < NGOOD; g++) {
		struct tb_json_doc *src = parse_q(good[g].body);
		for (int t = 0;; t++) {
			struct tb_json_doc *doc = tb_json_doc_new();
			struct mut m = {.target = t};
			struct tb_diag d;
			char want[200];
			bool exact = true;
			int rc;

			tb_json_set_root(doc, copy_mut(doc, tb_json_root(src), &m, "body", false));
			if (!m.hit) {
				tb_json_doc_free(doc);
				break;
			}
			total++;
			rc = tb_flow_check_body(good[g].type, tb_json_root(doc), &d);
			switch (m.kind) {
			case M_ADD:
				snprintf(want, sizeof(want), "%s: unknown member", m.path);
				break;
			case M_REPLACE:
				snprintf(want, sizeof(want), "%s: must be ", m.path);
				exact = false;
				break;
			case M_REMOVE:
				if (strcmp(m.name, "sha256") == 0 || strcmp(m.name, "sm3") == 0) {
					/* a material's digest, one of the two: the rule
					 * names sha256 (PROTOCOL.md 10.2) */
					snprintf(want, sizeof(want),
					         "%.*ssha256: required when sm3 is absent",
					         (int)(strlen(m.path) - strlen(m.name)), m.path);
				} else if (optional_member(m.name)) {
					if (rc == TB_OK)
						goto next;
					snprintf(want, sizeof(want), "%s: required when ", m.path);
					exact = false;
				} else {
					snprintf(want, sizeof(want), "%s: required", m.path);
				}
				break;
			}
			if (rc != TB_E_BODY || strncmp(d.detail, want, strlen(want)) != 0 ||
			    (exact && strlen(d.detail) != strlen(want)))
				fail_msg("%s mutation %d: got %s \"%s\", want \"%s\"", good[g].type,
				         t, tb_err_reason(rc), rc ? d.detail : "", want);
		next:
			tb_json_doc_free(doc);
		}
		tb_json_doc_free(src);
	}
	assert_true(total >= 270); /* every site of every body above */
}

/* ---- pairing ---- */

static const struct {
	const char *type;
	enum tb_flow_role role;
	const char *request; /* tb_flow_request_of */
	bool final;
} roles[] = {
    {"identity.verify", TB_FLOW_REQUEST, NULL, false},
    {"identity.result", TB_FLOW_ANSWER, "identity.verify", true},
    {"licence.query", TB_FLOW_REQUEST, NULL, false},
    {"licence.present", TB_FLOW_ANSWER, "licence.query", true},
    {"licence.verify", TB_FLOW_REQUEST, NULL, false},
    {"licence.status", TB_FLOW_ANSWER, "licence.verify", true},
    {"case.submit", TB_FLOW_REQUEST, NULL, false},
    {"case.accept", TB_FLOW_ANSWER, "case.submit", false},
    {"case.reject", TB_FLOW_ANSWER, "case.submit", true},
    {"case.update", TB_FLOW_ANSWER, "case.submit", false},
    {"case.result", TB_FLOW_ANSWER, "case.submit", true},
    {"case.query", TB_FLOW_REQUEST, NULL, false},
    {"case.state", TB_FLOW_ANSWER, "case.query", true},
    {"receipt", TB_FLOW_ANSWER, "*", false},
    {"error", TB_FLOW_ANSWER, "*", true},
    {"control.ping", TB_FLOW_REQUEST, NULL, false},
    {"control.pong", TB_FLOW_ANSWER, "control.ping", true},
    {"control.status", TB_FLOW_NOTICE, NULL, false},
    {"control.registry", TB_FLOW_NOTICE, NULL, false},
    {"no.such", TB_FLOW_UNKNOWN, NULL, false},
};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

static void
test_pairing(void **state)
{
	(void)state;
	for (size_t i = 0; i < NROLES; i++) {
		const char *r = tb_flow_request_of(roles[i].type);
		assert_int_equal(tb_flow_role(roles[i].type), roles[i].role);
		assert_int_equal(tb_flow_needs_corr(roles[i].type),
		                 roles[i].role == TB_FLOW_ANSWER);
		assert_int_equal(tb_flow_is_final(roles[i].type), roles[i].final);
		if (roles[i].request == NULL)
			assert_null(r);
		else
			assert_string_equal(r, roles[i].request);
	}
	/* the full matrix: answer x message */
	for (size_t a = 0; a < NROLES; a++)
		for (size_t q = 0; q < NROLES; q++) {
			const char *req = roles[a].request;
			bool want;
			if (req == NULL || roles[q].role == TB_FLOW_UNKNOWN)
				want = false;
			else if (strcmp(roles[a].type, "receipt") == 0)
				want = strcmp(roles[q].type, "receipt") != 0;
			else if (strcmp(req, "*") == 0)
				want = roles[q].role == TB_FLOW_REQUEST;
			else
				want = strcmp(req, roles[q].type) == 0;
			if (tb_flow_answers(roles[a].type, roles[q].type) != want)
				fail_msg("%s answers %s: want %d", roles[a].type, roles[q].type,
				         want);
		}
	assert_true(tb_flow_answers("case.result", "case.submit"));
	assert_false(tb_flow_answers("case.result", "case.query"));
	assert_true(tb_flow_answers("error", "control.ping"));
	assert_false(tb_flow_answers("error", "case.accept"));
	assert_true(tb_flow_answers("receipt", "case.accept"));
	assert_false(tb_flow_answers("receipt", "receipt"));
	assert_false(tb_flow_answers(NULL, "case.submit"));
	assert_false(tb_flow_needs_corr(NULL));
	/* every version 1 type has a role */
	for (const char *const *t = tb_msgtype_all(); *t != NULL; t++)
		assert_int_not_equal(tb_flow_role(*t), TB_FLOW_UNKNOWN);
	assert_string_equal(tb_err_reason(TB_E_FLOW_UNMATCHED), "flow.unmatched");
}

static struct tb_env *
env_of(const char *type, const char *corr, const char *body)
{
	struct tb_env_fields f;
	struct tb_diag d;
	struct tb_env *e;
	char *b = strdup(body);

	for (char *p = b; *p; p++)
		if (*p == '\'')
			*p = '"';
	memset(&f, 0, sizeof(f));
	f.type = type;
	f.from = "320300";
	f.to = "370800";
	f.corr = corr;
	f.body = (const uint8_t *)b;
	f.body_len = strlen(b);
	f.created = NOW;
	if ((e = tb_env_create(&f, &d)) == NULL)
		fail_msg("create: %s", d.detail);
	free(b);
	return e;
}

static void
test_check_env(void **state)
{
	static const char *const corr = "00112233445566778899aabbccddeeff";
	static const struct {
		const char *type, *corr, *body;
		int rc;
		const char *detail;
	} t[] = {
	    {"case.result", corr, "{'case_id':'c1','outcome':'approved'}", TB_OK, ""},
	    {"case.result", NULL, "{'case_id':'c1','outcome':'approved'}", TB_E_FIELD_MISSING,
	     "corr: required on an answer (case.result)"},
	    {"receipt", NULL, "{'digest':'" H "','received':1,'status':'accepted'}",
	     TB_E_FIELD_MISSING, "corr: required on an answer (receipt)"},
	    {"case.submit", corr,
	     "{'case_id':'c','service':'x','applicant':{'kind':'person','idhash':'" H "'},"
	     "'materials':[],'mode':'online'}",
	     TB_E_FIELD_VALUE, "corr: only answers carry corr (case.submit is not one)"},
	    {"control.registry", corr, "{'serial':1}", TB_E_FIELD_VALUE,
	     "corr: only answers carry corr (control.registry is not one)"},
	    {"control.registry", NULL, "{'serial':1}", TB_OK, ""},
	    {"case.accept", corr, "{'case_id':'c 1'}", TB_E_BODY,
	     "body.case_id: must be 1-64 of A-Z a-z 0-9 . _ -"},
	};
	struct tb_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct tb_env *e = env_of(t[i].type, t[i].corr, t[i].body);
		int rc = tb_flow_check_env(e, &d);
		if (rc != t[i].rc)
			fail_msg("%zu %s: got %s (%s)", i, t[i].type, tb_err_reason(rc), d.detail);
		if (rc != TB_OK)
			assert_string_equal(d.detail, t[i].detail);
		tb_env_free(e);
	}
	assert_int_equal(tb_flow_check_env(NULL, &d), TB_E_ARG);
}

/* ---- the case lifecycle, every state x every case type ---- */

#define X -1 /* refused: flow.state */
static const char *const ctypes[] = {"case.submit", "case.accept", "case.reject", "case.update",
                                     "case.result", "case.query",  "case.state"};
static const int life[6][7] = {
    /*              submit            accept             reject             update result query
       state */
    [TB_CASE_NONE] = {TB_CASE_SUBMITTED, X, X, X, X, TB_CASE_NONE, TB_CASE_NONE},
    [TB_CASE_SUBMITTED] = {X, TB_CASE_ACCEPTED, TB_CASE_REJECTED, X, X, TB_CASE_SUBMITTED,
                           TB_CASE_SUBMITTED},
    [TB_CASE_ACCEPTED] = {X, X, X, TB_CASE_IN_PROGRESS, TB_CASE_COMPLETED, TB_CASE_ACCEPTED,
                          TB_CASE_ACCEPTED},
    [TB_CASE_REJECTED] = {X, X, X, X, X, TB_CASE_REJECTED, TB_CASE_REJECTED},
    [TB_CASE_IN_PROGRESS] = {X, X, X, TB_CASE_IN_PROGRESS, TB_CASE_COMPLETED, TB_CASE_IN_PROGRESS,
                             TB_CASE_IN_PROGRESS},
    [TB_CASE_COMPLETED] = {X, X, X, X, X, TB_CASE_COMPLETED, TB_CASE_COMPLETED},
};

static void
test_lifecycle(void **state)
{
	struct tb_diag d;
	enum tb_case_state next;

	(void)state;
	for (int s = 0; s < 6; s++)
		for (int t = 0; t < 7; t++) {
			int rc;
			next = (enum tb_case_state)99;
			rc = tb_flow_case_next((enum tb_case_state)s, ctypes[t], &next, &d);
			if (life[s][t] == X) {
				if (rc != TB_E_FLOW_STATE)
					fail_msg("%s in %s: got %s, want flow.state", ctypes[t],
					         tb_case_state_name((enum tb_case_state)s),
					         tb_err_reason(rc));
				assert_int_equal(d.code, TB_E_FLOW_STATE);
				assert_non_null(strstr(d.detail, ctypes[t]));
				assert_int_equal(next, 99);
			} else {
				if (rc != TB_OK)
					fail_msg("%s in %s: refused (%s)", ctypes[t],
					         tb_case_state_name((enum tb_case_state)s),
					         d.detail);
				assert_int_equal(next, life[s][t]);
			}
			assert_int_equal(tb_flow_case_moves(ctypes[t]), t < 5);
		}
	/* the details people read */
	assert_int_equal(tb_flow_case_next(TB_CASE_SUBMITTED, "case.result", &next, &d),
	                 TB_E_FLOW_STATE);
	assert_string_equal(d.detail, "case.result before case.accept");
	assert_int_equal(tb_flow_case_next(TB_CASE_ACCEPTED, "case.submit", &next, &d),
	                 TB_E_FLOW_STATE);
	assert_string_equal(d.detail, "case.submit: case already exists (accepted)");
	assert_int_equal(tb_flow_case_next(TB_CASE_COMPLETED, "case.update", &next, &d),
	                 TB_E_FLOW_STATE);
	assert_string_equal(d.detail, "case.update after the case was completed");
	assert_int_equal(tb_flow_case_next(TB_CASE_NONE, "case.accept", &next, &d),
	                 TB_E_FLOW_STATE);
	assert_string_equal(d.detail, "case.accept for a case never submitted");
	assert_int_equal(tb_flow_case_next(TB_CASE_IN_PROGRESS, "case.reject", &next, &d),
	                 TB_E_FLOW_STATE);
	assert_string_equal(d.detail, "case.reject: case already in-progress");
	/* not case types, bad states */
	assert_int_equal(tb_flow_case_next(TB_CASE_NONE, "receipt", &next, &d), TB_E_ARG);
	assert_int_equal(tb_flow_case_next(TB_CASE_NONE, "error", &next, &d), TB_E_ARG);
	assert_int_equal(tb_flow_case_next((enum tb_case_state)6, "case.submit", &next, &d),
	                 TB_E_ARG);
	assert_int_equal(tb_flow_case_next(TB_CASE_NONE, NULL, &next, NULL), TB_E_ARG);
	assert_false(tb_flow_case_moves("error"));
	assert_false(tb_flow_case_moves(NULL));
	/* names round trip; the names are the case.state values */
	for (int s = 0; s < 6; s++) {
		enum tb_case_state back;
		const char *n = tb_case_state_name((enum tb_case_state)s);
		assert_true(tb_case_state_from_name(n, strlen(n), &back));
		assert_int_equal(back, s);
	}
	assert_string_equal(tb_case_state_name(TB_CASE_NONE), "unknown");
	assert_string_equal(tb_case_state_name(TB_CASE_IN_PROGRESS), "in-progress");
	assert_string_equal(tb_case_state_name((enum tb_case_state)42), "unknown");
	assert_false(tb_case_state_from_name("in-progres", 10, &next));
	assert_string_equal(tb_err_reason(TB_E_FLOW_STATE), "flow.state");
}

static void
test_case_id(void **state)
{
	struct tb_json_doc *doc;

	(void)state;
	doc = parse_q("{'case_id':'XZ-1','outcome':'approved'}");
	assert_string_equal(tb_flow_case_id(tb_json_root(doc)), "XZ-1");
	tb_json_doc_free(doc);
	doc = parse_q("{'case_id':7}");
	assert_null(tb_flow_case_id(tb_json_root(doc)));
	tb_json_doc_free(doc);
	doc = parse_q("{'case_id':'a\\u0000b'}");
	assert_null(tb_flow_case_id(tb_json_root(doc)));
	tb_json_doc_free(doc);
	doc = parse_q("{}");
	assert_null(tb_flow_case_id(tb_json_root(doc)));
	tb_json_doc_free(doc);
	assert_null(tb_flow_case_id(NULL));
	assert_true(tb_flow_case_id_valid("a.b_c-D9", 8));
	assert_false(tb_flow_case_id_valid("", 0));
	assert_false(tb_flow_case_id_valid("a/b", 3));
	assert_true(tb_flow_hex64_valid(H, 64));
	assert_false(tb_flow_hex64_valid(H, 63));
}

/* ---- licences ---- */

static struct tb_key *keys[4]; /* ed25519, p256 of 320300; one of nobody; sm2 of 320300 */
static struct tb_pub *pubs[4];

static int
setup_all(void **state)
{
	(void)state;
	if (tb_crypto_init() != TB_OK)
		return -1;
	keys[0] = tb_key_generate(TB_ALG_ED25519, NULL);
	keys[1] = tb_key_generate(TB_ALG_P256, NULL);
	keys[2] = tb_key_generate(TB_ALG_ED25519, NULL);
	keys[3] = tb_key_generate(TB_ALG_SM2, NULL);
	for (int i = 0; i < 4; i++)
		if (keys[i] == NULL || (pubs[i] = tb_key_pub(keys[i])) == NULL)
			return -1;
	return 0;
}

static int
teardown_all(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++) {
		tb_pub_free(pubs[i]);
		tb_key_free(keys[i]);
	}
	return 0;
}

static const struct tb_pub *
lookup(void *ctx, const char *from, const uint8_t kid[TB_KEYID_LEN])
{
	(void)ctx;
	if (strcmp(from, "320300") != 0)
		return NULL;
	for (int i = 0; i < 4; i++) {
		uint8_t id[TB_KEYID_LEN];
		if (i == 2)
			continue;
		tb_pub_id(pubs[i], id);
		if (memcmp(id, kid, TB_KEYID_LEN) == 0)
			return pubs[i];
	}
	return NULL;
}

/* The issuer status test_licence sets: 0, or the error for 320300. */
static int issuer_status;

static int
status(void *ctx, const char *issuer)
{
	(void)ctx;
	return strcmp(issuer, "320300") == 0 ? issuer_status : TB_OK;
}

/* The licence LIC, with `edit` applied (member -> JSON text, NULL value
 * removes), signed with key k unless k < 0. */
static struct tb_json_doc *
licence(int k, const char *member, const char *value)
{
	struct tb_json_doc *doc = parse_q(LIC);
	struct tb_json *root = tb_json_root(doc);
	struct tb_diag d;

	if (member != NULL) {
		tb_json_remove(root, member);
		if (value != NULL) {
			struct tb_json_doc *v = parse_q(value);
			struct mut m = {.target = -1};
			assert_int_equal(tb_json_set(doc, root, member,
			                             copy_mut(doc, tb_json_root(v), &m, "", false)),
			                 TB_OK);
			tb_json_doc_free(v);
		}
	}
	if (k >= 0 && tb_flow_licence_sign(doc, root, keys[k], &d) != TB_OK)
		fail_msg("sign: %s", d.detail);
	return doc;
}

static int
lcheck(struct tb_json_doc *doc, int64_t now, struct tb_diag *d)
{
	int rc = tb_flow_licence_check(tb_json_root(doc), lookup, status, NULL, now, d);
	if (rc != TB_OK)
		assert_int_equal(d->code, rc);
	return rc;
}

static void
test_licence(void **state)
{
	struct tb_json_doc *doc, *doc2;
	struct tb_diag d;
	uint8_t a[32], b[32];

	(void)state;
	/* all three algorithms; the signed licence is a valid licence.present
	 * element; under sm2 its digest is SM3 (PROTOCOL.md 10.5) */
	for (int k = 0; k < 4; k++) {
		if (k == 2)
			continue;
		struct tb_json_doc *body = tb_json_doc_new();
		struct tb_json *o = tb_json_new_object(body), *arr = tb_json_new_array(body);
		struct mut m = {.target = -1};

		doc = licence(k, NULL, NULL);
		assert_int_equal(lcheck(doc, NOW, &d), TB_OK);
		assert_int_equal(d.code, TB_OK);
		{ /* the digest, recomputed here: the hash of the canonical form
		   * without digest and issuer_sig, SM3 for sm2 */
			struct tb_json_doc *c = licence(-1, NULL, NULL);
			struct tb_buf cb;
			uint8_t want[32], got[32];
			size_t dn;
			const char *dh =
			    tb_json_string(tb_json_get(tb_json_root(doc), "digest"), &dn);
			tb_json_remove(tb_json_root(c), "digest");
			tb_json_remove(tb_json_root(c), "issuer_sig");
			tb_buf_init(&cb);
			assert_int_equal(tb_json_canon(tb_json_root(c), NULL, &cb), TB_OK);
			if (k == 3)
				tb_sm3_hash(cb.data, cb.len, want);
			else
				tb_sha256(cb.data, cb.len, want);
			assert_true(tb_hex_decode(dh, dn, got, 32));
			assert_memory_equal(want, got, 32);
			tb_buf_free(&cb);
			tb_json_doc_free(c);
		}
		assert_int_equal(
		    tb_json_append(arr, copy_mut(body, tb_json_root(doc), &m, "", false)), TB_OK);
		assert_int_equal(tb_json_set(body, o, "licences", arr), TB_OK);
		tb_json_set_root(body, o);
		assert_int_equal(tb_flow_check_body("licence.present", o, &d), TB_OK);
		tb_json_doc_free(body);
		tb_json_doc_free(doc);
	}

	/* the digest ignores digest, issuer_sig and member order */
	doc = licence(-1, NULL, NULL);
	doc2 = licence(0, NULL, NULL);
	assert_int_equal(tb_flow_licence_digest(tb_json_root(doc), a), TB_OK);
	assert_int_equal(tb_flow_licence_digest(tb_json_root(doc2), b), TB_OK);
	assert_memory_equal(a, b, 32);
	tb_json_doc_free(doc2);
	doc2 = parse_q("{'valid_until':1900000000,'type':'business-license','status':'valid',"
	               "'issuer':'320300','issued':1600000000,'id':'JS-2024-000123',"
	               "'holder_idhash':'" H "','fields':{'scope':'retail','name':'\xe5\xbe\x90\xe5"
	               "\xb7\x9e\xe5\xb8\x82 Co.'}}");
	assert_int_equal(tb_flow_licence_digest(tb_json_root(doc2), b), TB_OK);
	assert_memory_equal(a, b, 32);
	tb_json_doc_free(doc2);
	tb_json_doc_free(doc);
	assert_int_equal(tb_flow_licence_digest(NULL, a), TB_E_ARG);

	/* tampered after signing: the digest no longer matches */
	doc = licence(0, NULL, NULL);
	assert_int_equal(
	    tb_json_set(doc, tb_json_root(doc), "valid_until", tb_json_new_number(doc, 2000000000)),
	    TB_OK);
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_LICENCE_DIGEST);
	/* ... and with the digest recomputed, the signature fails */
	{
		char hex[65];
		static const char hx[] = "0123456789abcdef";
		assert_int_equal(tb_flow_licence_digest(tb_json_root(doc), a), TB_OK);
		for (int i = 0; i < 32; i++) {
			hex[2 * i] = hx[a[i] >> 4];
			hex[2 * i + 1] = hx[a[i] & 15];
		}
		hex[64] = '\0';
		assert_int_equal(
		    tb_json_set(doc, tb_json_root(doc), "digest", tb_json_new_string(doc, hex, 64)),
		    TB_OK);
		assert_int_equal(lcheck(doc, NOW, &d), TB_E_SIG_BAD);
	}
	tb_json_doc_free(doc);

	/* a key of nobody, another issuer, a wrong alg name */
	doc = licence(2, NULL, NULL);
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_SIG_KEYID);
	tb_json_doc_free(doc);
	doc = licence(0, "issuer", "'370800'");
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_SIG_KEYID);
	tb_json_doc_free(doc);
	doc = licence(0, NULL, NULL);
	assert_int_equal(tb_json_set(doc, tb_json_get(tb_json_root(doc), "issuer_sig"), "alg",
	                             tb_json_new_string(doc, "p256", 4)),
	                 TB_OK);
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_SIG_ALG);
	tb_json_doc_free(doc);

	/* status and time */
	doc = licence(1, "status", "'revoked'");
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_LICENCE_REVOKED);
	tb_json_doc_free(doc);
	doc = licence(1, "status", "'expired'");
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_LICENCE_EXPIRED);
	tb_json_doc_free(doc);
	doc = licence(0, NULL, NULL);
	assert_int_equal(lcheck(doc, 1900000000 - 1, &d), TB_OK);
	assert_int_equal(lcheck(doc, 1900000000, &d), TB_E_LICENCE_EXPIRED);
	assert_int_equal(lcheck(doc, 1600000000, &d), TB_OK);
	assert_int_equal(lcheck(doc, 1600000000 - 1, &d), TB_E_LICENCE_NOT_YET_VALID);
	tb_json_doc_free(doc);

	/* malformed */
	doc = licence(-1, "issuer_sig", NULL);
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_BODY);
	assert_string_equal(d.detail, "licence.issuer_sig: required");
	tb_json_doc_free(doc);
	doc = licence(0, "fields", "{'a':1}");
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_BODY);
	assert_string_equal(d.detail, "licence.fields.a: must be a string");
	tb_json_doc_free(doc);
	assert_int_equal(tb_flow_licence_check(NULL, lookup, status, NULL, NOW, &d), TB_E_ARG);
	doc = licence(0, NULL, NULL);
	assert_int_equal(tb_flow_licence_check(tb_json_root(doc), lookup, NULL, NULL, NOW, &d),
	                 TB_E_ARG);

	/* an issuer no longer active: its licences do not verify as valid
	 * (checked after the signature, before the licence's own status) */
	issuer_status = TB_E_LICENCE_ISSUER_REVOKED;
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_LICENCE_ISSUER_REVOKED);
	assert_string_equal(d.detail, "issuer 320300 is revoked in the registry");
	issuer_status = TB_E_LICENCE_ISSUER_SUSPENDED;
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_LICENCE_ISSUER_SUSPENDED);
	tb_json_doc_free(doc);
	doc = licence(1, "status", "'revoked'");
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_LICENCE_ISSUER_SUSPENDED);
	tb_json_doc_free(doc);
	doc = licence(2, NULL, NULL);
	assert_int_equal(lcheck(doc, NOW, &d), TB_E_SIG_KEYID);
	tb_json_doc_free(doc);
	issuer_status = TB_OK;
	assert_string_equal(tb_err_reason(TB_E_LICENCE_ISSUER_REVOKED), "licence.issuer-revoked");
	assert_string_equal(tb_err_reason(TB_E_LICENCE_ISSUER_SUSPENDED),
	                    "licence.issuer-suspended");

	assert_string_equal(tb_err_reason(TB_E_LICENCE_DIGEST), "licence.digest");
	assert_string_equal(tb_err_reason(TB_E_LICENCE_REVOKED), "licence.revoked");
	assert_string_equal(tb_err_reason(TB_E_LICENCE_EXPIRED), "licence.expired");
	assert_string_equal(tb_err_reason(TB_E_LICENCE_NOT_YET_VALID), "licence.not-yet-valid");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_bodies), cmocka_unit_test(test_bad_bodies),
	    cmocka_unit_test(test_bad_calls),   cmocka_unit_test(test_mutations),
	    cmocka_unit_test(test_pairing),     cmocka_unit_test(test_lifecycle),
	    cmocka_unit_test(test_case_id),     cmocka_unit_test(test_licence),
	    cmocka_unit_test(test_check_env),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
