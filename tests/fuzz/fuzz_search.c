/* fuzz_search.c: the SEARCH program parser and evaluator, the streaming
 * base64/QP decoders and the case folding. Input: search keys, a NUL
 * byte, then a message that the parsed program is evaluated against
 * (read in odd-sized pieces). The part after the NUL also goes through
 * both decoders, split at a point taken from the input, and checks that
 * the split does not change the output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "mail/decode.h"
#include "mail/unicode.h"

struct mem {
	const uint8_t *data;
	size_t len;
};

static ssize_t mem_read(void *ctx, uint64_t off, void *buf, size_t size)
{
	struct mem *m = ctx;

	if (off >= m->len)
		return 0;
	if (size > m->len - off)
		size = m->len - (size_t)off;
	if (size > 13)
		size = 13;
	memcpy(buf, m->data + off, size);
	return (ssize_t)size;
}

static int kw(void *ctx, const char *name, unsigned *idx_r)
{
	*idx_r = (unsigned)(strlen(name) % 3);
	return strlen(name) % 2 == 0 ? 0 : -1;
}

static void fuzz_program(const uint8_t *keys, size_t keys_len,
			 const uint8_t *msg, size_t msg_len)
{
	static const uint32_t saved[] = { 1, 3 };
	struct imap_search_env env = { 3, 30, saved, 2, kw, NULL, 1000000 };
	struct imap_parser_settings set;
	struct imap_parser *parser;
	struct imap_search_program *prog = NULL;
	struct store_msg smsg = { 3, 1, 2, msg_len, msg_len, 900000, 7,
				  NULL, NULL };
	struct imap_search_msg m = { 2, &smsg, true };
	struct mem mem = { msg, msg_len };
	const char *error;
	size_t used, pos = 0;
	int ret;

	imap_parser_settings_default(&set, true);
	set.utf8 = true;
	parser = imap_parser_create(&set);
	(void)imap_parser_feed(parser, "t SEARCH ", 9, &used);
	for (;;) {
		ret = imap_parser_feed(parser, keys + pos, keys_len - pos,
				       &used);
		pos += used;
		if (ret != IMAP_PARSE_LITERAL)
			break;
		if (imap_parser_literal_accept(parser,
					       IMAP_LITERAL_MEMORY) < 0)
			break;
	}
	if (ret == IMAP_PARSE_NEED_MORE)
		ret = imap_parser_feed(parser, "\r\n", 2, &used);
	if (ret == IMAP_PARSE_DONE) {
		const struct imap_command *c = imap_parser_command(parser);

		if (imap_search_parse(c->args, c->args_count, &env, &prog,
				      &error) == 0) {
			if (imap_search_eval_cheap(prog, &m) ==
			    IMAP_SEARCH_MAYBE)
				(void)imap_search_eval_content(prog, &m,
							       mem_read, &mem);
			imap_search_free(&prog);
		}
	}
	imap_parser_destroy(&parser);
}

static size_t decode_all(enum decode_type type, const uint8_t *in,
			 size_t len, size_t split, unsigned char *out)
{
	struct decode_state st;
	size_t o;

	decode_init(&st, type);
	o = decode_feed(&st, in, split, out);
	o += decode_feed(&st, in + split, len - split, out + o);
	o += decode_finish(&st, out + o);
	return o;
}

static void fuzz_decoders(const uint8_t *data, size_t len, size_t split)
{
	unsigned char *a = malloc(DECODE_OUT_MAX(len) * 2 + 8);
	unsigned char *b = malloc(DECODE_OUT_MAX(len) * 2 + 8);
	struct unicode_buf fold = { NULL, 0, 0, NULL, 0 };

	for (int t = DECODE_NONE; t <= DECODE_QP; t++) {
		size_t na = decode_all((enum decode_type)t, data, len, 0, a);
		size_t nb = decode_all((enum decode_type)t, data, len, split,
				       b);

		if (na != nb || memcmp(a, b, na) != 0)
			abort();
		if (na > len + DECODE_OUT_MAX(0))
			abort();
	}
	unicode_fold_append(data, len, &fold);
	(void)unicode_fold_safe_len(data, len);
	unicode_buf_free(&fold);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t keys_len = nul != NULL ? (size_t)(nul - data) : size;
	const uint8_t *msg = nul != NULL ? nul + 1 : data + size;
	size_t msg_len = size - keys_len - (nul != NULL ? 1 : 0);

	if (size > 65536)
		return 0;
	fuzz_program(data, keys_len, msg, msg_len);
	fuzz_decoders(msg, msg_len, msg_len > 0 ? data[0] % (msg_len + 1) :
		      0);
	return 0;
}
