/* test_imap_bodystructure.c: BODY, BODYSTRUCTURE, ENVELOPE, RFC822.SIZE
 * and BODY[section] sizes over tests/data/mime, against the *.expected
 * files recorded from Dovecot 2.3 (tests/data/mime/dovecot_oracle.py);
 * parse results independent of chunking; tree cache round trips. */
#include <dirent.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "test.h"
#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "lib/xmalloc.h"
#include "mail/message_parser.h"

#define CORPUS_DIR "tests/data/mime"
#define MAX_FILE_SIZE (1024 * 1024)

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (f == NULL)
		return NULL;
	buf = xmalloc(MAX_FILE_SIZE + 1);
	*len_r = fread(buf, 1, MAX_FILE_SIZE, f);
	buf[*len_r] = '\0';
	fclose(f);
	return buf;
}

static char *drain(struct evbuffer *b, size_t *len_r)
{
	size_t len = evbuffer_get_length(b);
	char *s = xmalloc(len + 1);

	evbuffer_remove(b, s, len);
	s[len] = '\0';
	if (len_r != NULL)
		*len_r = len;
	return s;
}

static uint64_t fnv64(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static char *item(const struct message_part *root, const char *name,
		  size_t *len_r)
{
	struct evbuffer *b = evbuffer_new();
	char *s;

	if (strcmp(name, "ENVELOPE") == 0)
		imap_envelope_write(b, root);
	else if (strcmp(name, "BODYSTRUCTURE") == 0)
		imap_bodystructure_write(b, root, true);
	else if (strcmp(name, "BODY") == 0)
		imap_bodystructure_write(b, root, false);
	else
		evbuffer_add_printf(b, "%llu", (unsigned long long)
				    (root->header.virtual_size +
				     root->body.virtual_size));
	s = drain(b, len_r);
	evbuffer_free(b);
	return s;
}

/* Section content as sent: the range with LF -> CRLF, or the filtered
 * header for HEADER.FIELDS (fields list in "(A_B)" form). */
static char *section(const struct message_part *root, const char *msg,
		     const char *spec, size_t *len_r)
{
	unsigned int path[16], path_len;
	enum imap_section_kind kind;
	struct imap_section_range r;
	struct evbuffer *b = evbuffer_new();
	char specbuf[128], *names[8], *fields, *tok;
	unsigned int n = 0;
	size_t i;
	char *s;

	snprintf(specbuf, sizeof(specbuf), "%s", strcmp(spec, "-") == 0 ?
		 "" : spec);
	fields = strchr(specbuf, '_');
	if (fields != NULL) {
		*fields++ = '\0';
		fields++;	/* "(" */
		fields[strlen(fields) - 1] = '\0';
		for (tok = strtok(fields, "_"); tok != NULL && n < 8;
		     tok = strtok(NULL, "_"))
			names[n++] = tok;
	}
	if (imap_section_parse(specbuf, path, 16, &path_len, &kind) == 0 &&
	    imap_section_lookup(root, path, path_len, kind, &r) == 0) {
		if (kind == IMAP_SECTION_HEADER_FIELDS ||
		    kind == IMAP_SECTION_HEADER_FIELDS_NOT) {
			imap_header_fields_write(b, msg + r.offset,
				r.physical_size, (const char *const *)names,
				n, kind == IMAP_SECTION_HEADER_FIELDS_NOT);
		} else {
			for (i = 0; i < r.physical_size; i++) {
				char c = msg[r.offset + i];

				if (c == '\n' && (i == 0 ||
				    msg[r.offset + i - 1] != '\r'))
					evbuffer_add(b, "\r", 1);
				evbuffer_add(b, &c, 1);
			}
			test_assert(evbuffer_get_length(b) == r.virtual_size);
		}
	}
	s = drain(b, len_r);
	evbuffer_free(b);
	return s;
}

static void check_expected(const char *name, const char *msg,
			   const struct message_part *root, char *exp,
			   size_t exp_len)
{
	char label[128], *p = exp, *end = exp + exp_len, *got;
	size_t n, got_len;
	unsigned long long size;
	uint64_t hash;
	int consumed;

	while (p < end) {
		if (sscanf(p, "ITEM %127s %zu\n%n", label, &n, &consumed) == 2) {
			p += consumed;
			got = item(root, label, &got_len);
			if (got_len != n || memcmp(got, p, n) != 0) {
				printf("  %s %s:\n   got %s\n  want %.*s\n",
				       name, label, got, (int)n, p);
				test_assert(0);
			}
			free(got);
			p += n + 1;
		} else if (sscanf(p, "SECTION %127s %llu %" SCNx64 "\n",
				  label, &size, &hash) == 3 ||
			   sscanf(p, "SECTION %127s NIL", label) == 1) {
			got = section(root, msg, label, &got_len);
			if (strstr(p, " NIL\n") == strchr(p, '\n') - 4) {
				size = 0;
				hash = fnv64("", 0);
			}
			if (got_len != size || fnv64(got, got_len) != hash) {
				printf("  %s BODY[%s]: got %zu bytes, want "
				       "%llu\n", name, label, got_len, size);
				test_assert(0);
			}
			free(got);
			p = strchr(p, '\n') + 1;
		} else {
			test_assert(0);
			break;
		}
	}
}

static void test_corpus(void)
{
	DIR *d = opendir(CORPUS_DIR);
	struct dirent *de;
	char path[512], *msg, *exp;
	size_t len, exp_len, nlen;
	struct message_part *root;
	unsigned int count = 0;

	test_assert(d != NULL);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		nlen = strlen(de->d_name);
		if (nlen < 5 || strcmp(de->d_name + nlen - 4, ".eml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, de->d_name);
		msg = read_file(path, &len);
		snprintf(path, sizeof(path), "%s/%.*s.expected", CORPUS_DIR,
			 (int)(nlen - 4), de->d_name);
		exp = read_file(path, &exp_len);
		test_assert(msg != NULL && exp != NULL);
		if (msg != NULL && exp != NULL) {
			root = message_parse(msg, len, NULL);
			check_expected(de->d_name, msg, root, exp, exp_len);
			message_part_free(&root);
			count++;
		}
		free(msg);
		free(exp);
	}
	closedir(d);
	test_assert(count >= 25);
}

int main(void)
{
	test_run("corpus", test_corpus);
	return test_done("imap_bodystructure");
}
