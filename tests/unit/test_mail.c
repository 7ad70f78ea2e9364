/* test_mail.c: src/mail: the MIME parser (chunking independence, limits,
 * cache round trip), RFC 2047 / 2231 decoding, dates, addresses, msg-ids,
 * header iteration. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "lib/xmalloc.h"
#include "mail/message_parser.h"
#include "mail/mime_param.h"
#include "mail/rfc2047.h"
#include "mail/rfc5322.h"

#define CORPUS_DIR "tests/data/mime"

static char *blob_of(const struct message_part *root, size_t *len_r)
{
	unsigned char *data;

	message_part_serialize(root, &data, len_r);
	return (char *)data;
}

static void check_splits(const char *name, const char *msg, size_t len)
{
	struct message_part *root = message_parse(msg, len, NULL), *r2;
	struct message_parser *p;
	size_t alen, blen, k, i;
	char *a = blob_of(root, &alen), *b;
	const char *error;

	for (k = 0; k <= len; k++) {
		p = message_parser_create(NULL);
		message_parser_feed(p, msg, k);
		message_parser_feed(p, msg + k, len - k);
		r2 = message_parser_finish(&p);
		b = blob_of(r2, &blen);
		if (blen != alen || memcmp(a, b, alen) != 0) {
			printf("  %s: split at %zu differs\n", name, k);
			test_assert(0);
			k = len;
		}
		free(b);
		message_part_free(&r2);
	}
	p = message_parser_create(NULL);
	for (i = 0; i < len; i++)
		message_parser_feed(p, msg + i, 1);
	r2 = message_parser_finish(&p);
	b = blob_of(r2, &blen);
	test_assert(blen == alen && memcmp(a, b, alen) == 0);
	free(b);
	message_part_free(&r2);
	/* cache round trip */
	test_assert(message_part_deserialize((unsigned char *)a, alen, 100000,
					     1000, &r2, &error) == 0);
	b = blob_of(r2, &blen);
	test_assert(blen == alen && memcmp(a, b, alen) == 0);
	test_assert(message_part_count(r2) == message_part_count(root));
	/* every truncation is rejected cleanly */
	for (k = 0; k < alen; k++) {
		struct message_part *r3;

		test_assert(message_part_deserialize((unsigned char *)a, k,
			100000, 1000, &r3, &error) < 0 && r3 == NULL);
	}
	free(b);
	message_part_free(&r2);
	free(a);
	message_part_free(&root);
}

static void test_parser_splits(void)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *de;
	char path[512], *msg = xmalloc(65536);
	size_t len, n;
	FILE *f;

	test_assert(d != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 4, ".eml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, de->d_name);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		len = fread(msg, 1, 65536, f);
		fclose(f);
		check_splits(de->d_name, msg, len);
	}
	if (d != NULL)
		closedir(d);
	free(msg);
}

static char *gen_many_parts(unsigned int n, size_t *len_r)
{
	size_t cap = 200 + (size_t)n * 40, len = 0;
	char *s = xmalloc(cap);
	unsigned int i;

	len += (size_t)snprintf(s, cap, "Content-Type: multipart/mixed; "
				"boundary=x\n\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "--x\n\npart %u\n",
					i);
	len += (size_t)snprintf(s + len, cap - len, "--x--\n");
	*len_r = len;
	return s;
}

static void test_parser_limits(void)
{
	struct message_parser_limits lim = message_parser_default_limits;
	struct message_part *root, *p;
	size_t len, cap = 100000, i;
	char *s = gen_many_parts(20000, &len);
	unsigned int depth;

	root = message_parse(s, len, NULL);
	test_assert(message_part_count(root) == 10000);
	test_assert((root->flags & MESSAGE_PART_FLAG_LIMITED) != 0);
	test_assert(root->body.physical == len - root->header.physical);
	message_part_free(&root);
	free(s);
	s = gen_many_parts(10000, &len);
	lim.max_parts = 20000;
	root = message_parse(s, len, &lim);
	test_assert(message_part_count(root) == 10001);
	message_part_free(&root);
	free(s);

	/* 150 nested multiparts, each with its own boundary */
	s = xmalloc(cap);
	for (len = 0, i = 0; i < 150; i++)
		len += (size_t)snprintf(s + len, cap - len, "Content-Type: "
			"multipart/mixed; boundary=b%zu\n\n--b%zu\n", i, i);
	len += (size_t)snprintf(s + len, cap - len, "\ninnermost\n");
	for (i = 150; i-- > 0;)
		len += (size_t)snprintf(s + len, cap - len, "--b%zu--\n", i);
	root = message_parse(s, len, NULL);
	for (depth = 0, p = root; p->children != NULL; p = p->children)
		depth++;
	test_assert(depth == MESSAGE_PARSER_DEFAULT_MAX_NESTING);
	test_assert((p->flags & MESSAGE_PART_FLAG_LIMITED) != 0);
	test_assert(root->header.physical + root->body.physical == len);
	message_part_free(&root);
	/* message/rfc822 nesting */
	for (len = 0, i = 0; i < 150; i++)
		len += (size_t)snprintf(s + len, cap - len,
					"Content-Type: message/rfc822\n\n");
	root = message_parse(s, len, NULL);
	for (depth = 0, p = root; p->children != NULL; p = p->children)
		depth++;
	test_assert(depth == MESSAGE_PARSER_DEFAULT_MAX_NESTING);
	message_part_free(&root);
	free(s);
}

static void test_parser_sizes(void)
{
	static const char msg[] = "Subject: x\r\nContent-Type: multipart/"
		"mixed; boundary=\"q\"\n\npre\n--q\n\nab\r\ncd\n--q--\nepi\n";
	struct message_part *root = message_parse(msg, sizeof(msg) - 1, NULL);
	struct message_part *c = root->children;

	test_assert(root->header.physical == 57);
	test_assert(root->header.virtual_size == 59);
	test_assert(root->children_count == 1 && c != NULL);
	test_assert(c->header.physical == 1 && c->header.virtual_size == 2);
	test_assert(c->body.physical == 6 && c->body.virtual_size == 6);
	test_assert(c->body.lines == 1);
	test_assert(root->body.physical == sizeof(msg) - 1 - 57);
	test_assert(strcmp(root->fields[MESSAGE_FIELD_SUBJECT], "x") == 0);
	message_part_free(&root);
}

/* fuzz crasher: a header value with a NUL byte must round trip */
static void test_parser_nul_header(void)
{
	static const char msg[] = "Subject: a\0b\nFrom: x\n\nbody";
	struct message_part *root = message_parse(msg, sizeof(msg) - 1, NULL);
	struct message_part *copy;
	unsigned char *blob;
	size_t len;
	const char *error;

	test_assert(root->field_lens[MESSAGE_FIELD_SUBJECT] == 3);
	message_part_serialize(root, &blob, &len);
	test_assert(message_part_deserialize(blob, len, 10, 10, &copy,
					     &error) == 0);
	test_assert(copy->field_lens[MESSAGE_FIELD_SUBJECT] == 3 &&
		    memcmp(copy->fields[MESSAGE_FIELD_SUBJECT], "a\0b", 3) == 0);
	free(blob);
	message_part_free(&copy);
	message_part_free(&root);
}

static void test_rfc2047(void)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "=?ISO-8859-1?Q?a?=", "a" },
		{ "=?ISO-8859-1?Q?a?= b", "a b" },
		{ "=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab" },
		{ "=?ISO-8859-1?Q?a?=  \r\n  =?ISO-8859-2?Q?_b?=", "a b" },
		{ "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=",
		  "Keld J\xc3\xb8rn Simonsen" },
		{ "=?UTF-8?B?4oKs?= rates", "\xe2\x82\xac rates" },
		/* a character split between two words */
		{ "=?utf-8?b?4oI=?= =?utf-8?b?rA==?=", "\xe2\x82\xac" },
		{ "=?x-unknown?q?abc?= x", "=?x-unknown?q?abc?= x" },
		{ "=?utf-8?q?bad word?=", "=?utf-8?q?bad word?=" },
		{ "plain text", "plain text" },
		{ "=?utf-8*en?q?lang?=", "lang" },
		{ "=?iso-8859-1?b?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=",
		  "If you can read this yo" },
	};
	unsigned int i;
	char *out;
	size_t len;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rfc2047_decode(rows[i].in, strlen(rows[i].in), &out, &len);
		test_assert_streq_idx(out, rows[i].out, i);
		test_assert_idx(len == strlen(out), i);
		free(out);
	}
}

static void test_rfc2231(void)
{
	static const struct {
		const char *in, *params;
	} rows[] = {
		{ "text/plain; charset=us-ascii", "charset=us-ascii;" },
		{ "a/b; title*0=\"x\"; title*1=y", "title=xy;" },
		{ "a/b; t*1*=%41; t*0*=us-ascii''%42; z=1",
		  "z=1;t*=us-ascii''%42%41;" },
		{ "a/b; name*=utf-8''%E2%82%AC", "name*=utf-8''%E2%82%AC;" },
		{ "a/b (c); x = \"q\\\"q\" (c) ;; y=", "x=q\"q;y=;" },
		{ "a/b; bad*x=1", "bad*x=1;" },
		/* RFC 5322 2.2.3: unfolded inside a quoted-string */
		{ "a/b; boundary=\"foo\r\n bar\";\r\n\tx=\"1\n\t2\"",
		  "boundary=foo bar;x=1\t2;" },
	};
	struct mime_params pr;
	char *type, *sub, buf[256];
	unsigned int i, j;
	size_t n;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		mime_content_type_parse(rows[i].in, strlen(rows[i].in), &type,
					&sub, &pr);
		for (n = 0, j = 0; j < pr.count; j++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				"%s=%s;", pr.v[j].name, pr.v[j].value);
		buf[n] = '\0';
		test_assert_streq_idx(buf, rows[i].params, i);
		mime_params_free(&pr);
		free(type);
		free(sub);
	}
	test_assert(rfc2231_decode_value("iso-8859-1'de'M%FCll", &type) == 0);
	test_assert_streq(type, "M\xc3\xbcll");
	free(type);
	test_assert(rfc2231_decode_value("noquote", &type) < 0);
}

static void test_dates(void)
{
	static const struct {
		const char *in;
		long long t;
		int tz;
	} rows[] = {
		{ "Thu, 13 Feb 1969 23:32:54 -0330", -27723426, -210 },
		{ "Mon, 7 Feb 1994 21:52:25 -0800 (PST)", 760686745, -480 },
		{ "21 Nov 97 09:55:06 GMT", 880106106, 0 },
		{ "Thu,\n      13\n        Feb\n          1969\n      23:32\n"
		  "               -0330 (Newfoundland Time)", -27723480, -210 },
		{ "1 Jan 2000 00:00 EST", 946702800, -300 },
		{ "Sat, 1 Jan 100 00:00:00 +0000", 946684800, 0 },
		{ "32 Foo 2024 99:99:99 +9999", -1, 0 },
		{ "", -1, 0 },
	};
	unsigned int i;
	time_t t;
	int tz, ret;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ret = rfc5322_date_parse(rows[i].in, strlen(rows[i].in), &t,
					 &tz);
		if (rows[i].t == -1) {
			test_assert_idx(ret < 0, i);
			continue;
		}
		test_assert_idx(ret == 0 && (long long)t == rows[i].t &&
				tz == rows[i].tz, i);
	}
}

static void test_addresses(void)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "a@b.c", "[|||a|b.c]" },
		{ "A B <a@b>, c@d", "[A B|||a|b][|||c|d]" },
		{ "g: x@y;", "[|||g|][|||x|y][||||]" },
		{ "john@example.com (John Doe)", "[John Doe|||john|example.com]" },
		{ "<@r1,@r2:u@h>", "[||@r1,@r2|u|h]" },
		{ "", "" },
		{ "no-at", "[|||no-at|MISSING_DOMAIN]" },
		{ "a@b <c@d>, e@f", "[|||a|b]" },
		/* fuzz crashers: stale comment length, unterminated comment */
		{ "(x) a@b (unterminated", "[unterminated|||a|b]" },
		{ "(leading) a@b, c@d (", "[|||a|b][|||c|d]" },
	};
	struct rfc5322_address *list, *a;
	char buf[512];
	unsigned int i;
	size_t n;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		list = rfc5322_address_parse(rows[i].in, strlen(rows[i].in));
		for (n = 0, a = list; a != NULL; a = a->next)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				"[%s||%s|%s|%s]", a->name ? a->name : "",
				a->route ? a->route : "",
				a->mailbox ? a->mailbox : "",
				a->domain ? a->domain : "");
		buf[n] = '\0';
		test_assert_streq_idx(buf, rows[i].out, i);
		rfc5322_address_free(&list);
	}
}

static void test_msgid_and_header(void)
{
	static const char refs[] = "<a@b> (c) < x @ y > <noat> <q@r>";
	static const char hdr[] = "A: 1\nB: 2\n 3\nnocolon\nC:4\n\nbody";
	struct rfc5322_field f;
	size_t pos = 0;
	char *id;
	unsigned int n = 0;

	test_assert(rfc5322_msgid_next(refs, strlen(refs), &pos, &id) == 0);
	test_assert_streq(id, "a@b");
	free(id);
	test_assert(rfc5322_msgid_next(refs, strlen(refs), &pos, &id) == 0);
	test_assert_streq(id, "x@y");
	free(id);
	test_assert(rfc5322_msgid_next(refs, strlen(refs), &pos, &id) == 0);
	test_assert_streq(id, "q@r");
	free(id);
	test_assert(rfc5322_msgid_next(refs, strlen(refs), &pos, &id) < 0);

	pos = 0;
	while (rfc5322_header_next(hdr, strlen(hdr), &pos, &f)) {
		if (n == 1)
			test_assert(f.name_len == 1 && f.value_len == 4 &&
				    memcmp(f.value, "2\n 3", 4) == 0);
		if (n == 2)
			test_assert(f.name_len == 0);
		n++;
	}
	test_assert(n == 4);
}

int main(void)
{
	test_run("parser_splits", test_parser_splits);
	test_run("parser_limits", test_parser_limits);
	test_run("parser_sizes", test_parser_sizes);
	test_run("parser_nul_header", test_parser_nul_header);
	test_run("rfc2047", test_rfc2047);
	test_run("rfc2231", test_rfc2231);
	test_run("dates", test_dates);
	test_run("addresses", test_addresses);
	test_run("msgid_header", test_msgid_and_header);
	return test_done("mail");
}
