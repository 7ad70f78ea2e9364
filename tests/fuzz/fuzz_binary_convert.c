/* fuzz_binary_convert.c: binary_convert.c (binary MIME parts -> base64
 * for literal8 APPEND). The first input byte picks the read chunk size,
 * the rest is the message (in a memfd). Checks: "unchanged" writes
 * nothing and the message has no NUL; a converted copy has no NUL, is
 * the same whatever the chunk size, parses to the same part tree as the
 * input with NUL read as a space (the converter's view), each
 * leaf body is either the original (NUL -> space) or base64 that decodes
 * to the original octets, no leaf is left "binary", and converting the
 * copy again changes nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/base64.h"
#include "mail/binary_convert.h"
#include "mail/message_parser.h"

#define FUZZ_MAX_INPUT (256 * 1024)

struct sink {
	unsigned char *data;
	size_t len, cap;
	bool saw_last;
};

static int sink_out(void *ctx, const void *data, size_t size, bool is_last)
{
	struct sink *s = ctx;

	if (s->saw_last)
		abort();	/* nothing after the last call */
	if (s->len + size > s->cap) {
		s->cap = (s->len + size) * 2 + 64;
		s->data = realloc(s->data, s->cap);
	}
	if (size > 0)
		memcpy(s->data + s->len, data, size);
	s->len += size;
	s->saw_last = is_last;
	return 0;
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("fuzz-bc", MFD_CLOEXEC);

	if (fd < 0 || (len > 0 && write(fd, data, len) != (ssize_t)len))
		abort();
	return fd;
}

/* Returns binary_convert_fd's result; *s gets the output. */
static int convert(const void *data, size_t len, size_t chunk,
		   struct sink *s)
{
	const char *error;
	int fd = memfd_with(data, len), ret;

	memset(s, 0, sizeof(*s));
	ret = binary_convert_fd(fd, chunk, sink_out, s, &error);
	close(fd);
	if (ret < 0)
		abort();	/* a memfd never fails */
	if (ret == 0 && (s->len != 0 || s->saw_last))
		abort();
	if (ret == 1 && !s->saw_last)
		abort();
	return ret;
}

static bool cte_is(const struct message_part *part, const char *name)
{
	const char *v = part->fields[MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING];
	size_t n = strlen(name);

	if (v == NULL)
		return false;
	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	return strncasecmp(v, name, n) == 0 &&
		strchr(" \t\r\n(;", v[n]) != NULL;
}

static bool is_leaf(const struct message_part *part)
{
	return (part->flags & (MESSAGE_PART_FLAG_MULTIPART |
			       MESSAGE_PART_FLAG_MESSAGE_RFC822)) == 0;
}

/* Does base64 text b (CRLF lines) decode to o? */
static bool b64_matches(const unsigned char *b, size_t blen,
			const unsigned char *o, size_t olen)
{
	char *text = malloc(blen + 1);
	unsigned char *dec = malloc(blen / 4 * 3 + 1);
	size_t n = 0;
	long dlen;
	bool ok;

	for (size_t i = 0; i < blen; i++) {
		if (b[i] != '\r' && b[i] != '\n')
			text[n++] = (char)b[i];
	}
	dlen = base64_decode(text, n, dec);
	ok = dlen >= 0 && (size_t)dlen == olen &&
		(olen == 0 || memcmp(dec, o, olen) == 0);
	free(text);
	free(dec);
	return ok;
}

/* Same bytes, NUL in a read as a space. */
static bool same_clean(const unsigned char *a, size_t alen,
		       const unsigned char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		if ((a[i] == '\0' ? ' ' : a[i]) != b[i])
			return false;
	}
	return true;
}

static void compare(const struct message_part *a, const unsigned char *ad,
		    const struct message_part *b, const unsigned char *bd)
{
	const unsigned char *abody = ad + a->body_offset;
	const unsigned char *bbody = bd + b->body_offset;

	if (a->flags != b->flags || a->children_count != b->children_count)
		abort();
	if (is_leaf(b) && cte_is(b, "binary"))
		abort();
	if (is_leaf(a) && !same_clean(abody, a->body.physical, bbody,
				      b->body.physical) &&
	    (!cte_is(b, "base64") ||
	     !b64_matches(bbody, b->body.physical, abody, a->body.physical)))
		abort();
	for (a = a->children, b = b->children; a != NULL;
	     a = a->next, b = b->next)
		compare(a, ad, b, bd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message_part *a, *b;
	struct sink s1, s2, s3;
	unsigned char *clean;
	size_t chunk;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	if (convert(data, size, chunk, &s1) == 0) {
		if (memchr(data, '\0', size) != NULL)
			abort();
		free(s1.data);
		return 0;
	}
	if (memchr(s1.data, '\0', s1.len) != NULL)
		abort();
	/* split-independent */
	if (convert(data, size, 0, &s2) != 1 || s2.len != s1.len ||
	    memcmp(s1.data, s2.data, s1.len) != 0)
		abort();
	/* the copy needs nothing more */
	if (convert(s1.data, s1.len, chunk, &s3) != 0)
		abort();
	/* the converter parses with NUL as a space (the copy's view) */
	clean = malloc(size + 1);
	memcpy(clean, data, size);
	for (size_t i = 0; i < size; i++) {
		if (clean[i] == '\0')
			clean[i] = ' ';
	}
	a = message_parse(clean, size, NULL);
	free(clean);
	b = message_parse(s1.data, s1.len, NULL);
	compare(a, data, b, s1.data);
	message_part_free(&a);
	message_part_free(&b);
	free(s1.data);
	free(s2.data);
	free(s3.data);
	return 0;
}
